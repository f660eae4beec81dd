"""Closed-loop speed against the compiled open-loop ceiling, measured in one run.

For each case (controller PID, run in Python every period or as its compiled
twin inside the kernel; control period 1 ms or 20 ms; batch n = 1 or 256) it
prints simulated seconds per wall second (instance-seconds for a
batch) and the ratio to the same model kernel advanced open loop in one call,
measured in the same run. First-call compilation (or cache load) time is
reported separately. Run::

    python benchmarks/bench_loop.py [--json bench_loop.json] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import time

import numpy as np

from closedloop.controllers import PID
from closedloop.device import Device
from closedloop.loop import ClosedLoop
from closedloop.models import STNGPe
from closedloop.sensing import SensingChain

DT = 1e-4
#: Each figure is the best of this many runs: the machine is shared, and
#: interference only ever slows a run down.
REPEATS = 5


def _loop(n: int, period_s: float, engine: str) -> ClosedLoop:
    model = STNGPe(dt_s=DT, n=n)
    ctrl = PID(setpoint=30.0, kp=0.02, ki=0.2, max_amplitude_ma=3.0)
    return ClosedLoop(
        model, SensingChain(), Device(), ctrl, control_period_s=period_s, seed=0, engine=engine
    )


def ceiling(n: int, seconds: float) -> tuple[float, float]:
    """Open-loop instance-seconds per wall second, and the first-call time (s)."""
    model = STNGPe(dt_s=DT, n=n)
    model.reset(0)
    t = time.perf_counter()
    model.advance(10)
    first = time.perf_counter() - t
    steps = int(round(seconds / DT))
    best = 0.0
    for _ in range(REPEATS):
        t = time.perf_counter()
        model.advance(steps)
        best = max(best, n * seconds / (time.perf_counter() - t))
    return best, first


def closed(n: int, period_s: float, seconds: float, engine: str) -> tuple[float, float]:
    """Closed-loop instance-seconds per wall second, and the first-call time (s).

    The first call covers three periods: the kernel's argument types settle
    once the controller has answered (compiled, or loaded from the cache, once
    per machine).
    """
    loop = _loop(n, period_s, engine)
    loop.reset()
    t = time.perf_counter()
    loop.run(3 * period_s)
    first = time.perf_counter() - t
    best = 0.0
    for _ in range(REPEATS):
        loop.reset()
        t = time.perf_counter()
        loop.run(seconds, chunk_s=1.0)
        best = max(best, n * seconds / (time.perf_counter() - t))
    return best, first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="bench_loop.json", help="where to write the figures")
    ap.add_argument("--quick", action="store_true", help="shorter runs (noisier figures)")
    args = ap.parse_args()
    scale = 0.25 if args.quick else 0.5
    rows = []
    for n, sim_s in ((1, 4.0 * scale), (256, 1.0 * scale)):
        ceil, ceil_first = ceiling(n, sim_s)
        for period, engine in itertools.product((0.020, 0.001), ("python", "compiled")):
            rate, first = closed(n, period, sim_s, engine)
            rows.append(
                {
                    "n": n,
                    "control_period_s": period,
                    "controller": engine,
                    "simulated_s": sim_s,
                    "closed_loop_instance_s_per_s": rate,
                    "open_loop_instance_s_per_s": ceil,
                    "ratio_to_open_loop": rate / ceil,
                    "first_call_s": first,
                    "open_loop_first_call_s": ceil_first,
                }
            )
    print(
        f"{'n':>5} {'period':>8} {'controller':>10} {'closed x RT':>12} {'open x RT':>10} "
        f"{'ratio':>7} {'first call s':>13}"
    )
    for r in rows:
        print(
            f"{r['n']:>5} {r['control_period_s'] * 1e3:>6.0f}ms {r['controller']:>10} "
            f"{r['closed_loop_instance_s_per_s']:>12.0f} {r['open_loop_instance_s_per_s']:>10.0f}"
            f" {r['ratio_to_open_loop']:>7.2f} {r['first_call_s']:>13.3f}"
        )
    print("x RT: simulated instance-seconds per wall second; ratio: closed / open loop.")
    print("controller python: numpy update() every period; compiled: its twin in the kernel.")
    record = {
        "benchmark": "bench_loop",
        "machine": platform.platform(),
        "processor": platform.processor(),
        "rows": rows,
    }
    with open(args.json, "w") as fh:
        json.dump(record, fh, indent=2)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
