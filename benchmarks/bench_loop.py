"""Closed-loop speed against the compiled open-loop ceiling, measured in one run.

For each case (controller PID, run in Python every period or as its compiled
twin inside the kernel; control period 1 ms or 20 ms; batch n = 1 or 256) it
prints simulated seconds per wall second (instance-seconds for a batch) and
the ratio to the same model kernel advanced open loop in one call, measured in
the same run, closed and open runs alternating, best of 7 each (the machine
is a shared VM: interference only ever slows a run down, and alternating
spreads slow spells over both sides). The first call of each case (compile, or load from the
on-disk cache) is timed separately. Run::

    python benchmarks/bench_loop.py [--json bench_loop.json] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import time

from closedloop.bench.perf import closed_loop_runner, open_loop_runner
from closedloop.models import STNGPe

DT = 1e-4
REPEATS = 7


def first_call_s(n: int) -> float:
    """Time of the first open-loop call (compiles, or loads the cached kernel)."""
    model = STNGPe(dt_s=DT, n=n)
    model.reset(0)
    t = time.perf_counter()
    model.advance(10)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="bench_loop.json", help="where to write the figures")
    ap.add_argument("--quick", action="store_true", help="shorter runs (noisier figures)")
    args = ap.parse_args()
    scale = 0.25 if args.quick else 0.5
    rows = []
    # n = 1 runs thousands of times faster than real time: simulate long
    # enough for runs of some milliseconds.
    for n, sim_s in ((1, 20.0 * scale), (256, 1.0 * scale)):
        first = first_call_s(n)
        open_run = open_loop_runner(STNGPe, n, sim_s, dt_s=DT)
        for period, engine in itertools.product((0.020, 0.001), ("python", "compiled")):
            closed_run = closed_loop_runner(n, period, sim_s, engine)
            rate = ceiling = 0.0
            for _ in range(REPEATS):
                rate = max(rate, closed_run())
                ceiling = max(ceiling, open_run())
            rows.append(
                {
                    "n": n,
                    "control_period_s": period,
                    "controller": engine,
                    "simulated_s": sim_s,
                    "closed_loop_instance_s_per_s": rate,
                    "open_loop_instance_s_per_s": ceiling,
                    "ratio_to_open_loop": rate / ceiling,
                    "open_loop_first_call_s": first,
                }
            )
    print(
        f"{'n':>5} {'period':>8} {'controller':>10} {'closed x RT':>12} {'open x RT':>10} "
        f"{'ratio':>7}"
    )
    for r in rows:
        print(
            f"{r['n']:>5} {r['control_period_s'] * 1e3:>6.0f}ms {r['controller']:>10} "
            f"{r['closed_loop_instance_s_per_s']:>12.0f} "
            f"{r['open_loop_instance_s_per_s']:>10.0f} {r['ratio_to_open_loop']:>7.2f}"
        )
    print("x RT: simulated instance-seconds per wall second; ratio: closed / open loop.")
    print("controller python: numpy update() every period; compiled: its twin in the kernel.")
    print(
        "first call (compile or cache load): "
        + ", ".join(f"n={r['n']}: {r['open_loop_first_call_s']:.3f} s" for r in rows[::4])
    )
    record = {"benchmark": "bench_loop", "machine": platform.platform(), "rows": rows}
    with open(args.json, "w") as fh:
        json.dump(record, fh, indent=2)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
