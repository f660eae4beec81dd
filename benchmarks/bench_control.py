"""Per-period cost of the model-based controllers against the loop they run in, in one run.

Identifies the Wilson-Cowan model at its stable focus (the setting of
``tests/test_control.py``: 4 ms control period, one 250 Hz pulse per
period), then times, per control period and for batches of 1 and 256:

- ``update()`` of :class:`~closedloop.control.lqr.LQR` and
  :class:`~closedloop.control.mpc.MPC` (Kalman correction, decision,
  prediction; the MPC solves one OSQP problem per instance),
- the loop's own period (model, device and sensing in one compiled call,
  measured as :meth:`ClosedLoop.step`),

and prints the ratio: above 1, the controller, not the model, bounds the
loop. Best of 7 (the machine is shared). Run::

    python benchmarks/bench_control.py [--json bench_control.json]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
import warnings

import numpy as np

from closedloop.config import validate_config
from closedloop.control.collect import collect
from closedloop.control.excitation import generalized_binary_noise
from closedloop.control.lqr import LQR
from closedloop.control.mpc import MPC
from closedloop.control.sysid import identify

REPEATS = 7


def config(n: int) -> dict:
    """The Wilson-Cowan identification experiment of tests/test_control.py."""
    return {
        "name": "bench_control",
        "seed": 3,
        "n_instances": n,
        "duration_s": 1.0,
        "warmup_s": 0.3,
        "model": {"name": "wilson_cowan", "dt_s": 1e-4, "regime": "damped"},
        "sensing": {
            "rate_hz": 1000.0,
            "band_hz": [4.0, 100.0],
            "noise_std": 1e-4,
            "features": ["signal"],
        },
        "control": {"period_s": 0.004},
        "device": {"ramp_rate_ma_per_s": math.inf, "initial_frequency_hz": 250.0},
        "metrics": {"band_hz": [4.0, 100.0]},
    }


def best_per_call(fn, calls: int) -> float:
    """Best-of-REPEATS wall time per call of ``fn``, s."""
    best = math.inf
    for _ in range(REPEATS):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t) / calls)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="bench_control.json", help="where to write the figures")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    loop = validate_config(config(4)).loop
    rng = np.random.default_rng(1)
    design = {"amplitude_ma": generalized_binary_noise(1500, (0.0, 0.05), 0.3, rng, n=4)}
    fixed = {"frequency_hz": 250.0, "pulse_width_us": 60.0}
    model = identify(collect(loop, design, outputs=("signal",), fixed=fixed), 3, 15)
    common = dict(model=model, target=0.278, frequency_hz=250.0, pulse_width_us=60.0)
    rows = []
    for n in (1, 256):
        loop = validate_config(config(n)).loop
        loop.reset()
        loop.warm_up(0.1)
        command = {"amplitude_ma": np.full(n, 0.03)}
        loop.step(command)
        period_s = best_per_call(lambda lp=loop, c=command: lp.step(c), 50)
        features = {"signal": np.full(n, 0.28), "biomarker": np.zeros(n)}
        for controller in (
            LQR(**common, output_weight=100.0, input_weight=1e-2),
            MPC(**common, output_weight=100.0, input_weight=1e-4, ramp_ma_per_s=5.0),
        ):
            controller.reset(n, np.random.default_rng(0))
            calls = 200 if n == 1 or isinstance(controller, LQR) else 5
            update_s = best_per_call(lambda c=controller, f=features: c.update(0.0, f), calls)
            rows.append(
                {
                    "controller": controller.name,
                    "n": n,
                    "update_us": update_s * 1e6,
                    "loop_period_us": period_s * 1e6,
                    "ratio_update_to_period": update_s / period_s,
                }
            )
    print(f"{'controller':>10} {'n':>5} {'update us':>11} {'loop period us':>15} {'ratio':>7}")
    for r in rows:
        print(
            f"{r['controller']:>10} {r['n']:>5} {r['update_us']:>11.1f} "
            f"{r['loop_period_us']:>15.1f} {r['ratio_update_to_period']:>7.2f}"
        )
    with open(args.json, "w") as f:
        json.dump({"machine": platform.node(), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
