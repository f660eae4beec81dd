"""Issue 18 gap 1: the batch closed loop against a hand-written kernel, one thread.

STN-GPe at dt 0.1 ms, PID at a 1 ms control period, n = 256 and 4,096, one
Numba thread: the hand-written batched kernel open loop (the ceiling) and
closed by a numpy PI, the model's own open-loop kernel, the compiled loop
(``engine: auto``) and the Python-PID loop, interleaved round by round,
medians (:mod:`closedloop.bench.perf_ceiling`). Prints rates and the
issue's ratios, and writes them as JSON. Run::

    python benchmarks/bench_ceiling.py [--n 256 4096] [--seconds 0.5] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform

from closedloop.bench.perf_ceiling import CEILING_RUNS, ceiling_rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[256, 4096], help="batch sizes")
    ap.add_argument("--seconds", type=float, default=0.5, help="simulated s per run")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--json", default="bench_ceiling.json", help="where to write the figures")
    args = ap.parse_args()
    rows = []
    for n in args.n:
        r = ceiling_rates(n, args.seconds, args.repeats)
        ratios = {
            "compiled/project_open": r["compiled"] / r["project_open"],
            "python/project_open": r["python"] / r["project_open"],
            "compiled/hand_open": r["compiled"] / r["hand_open"],
            "python/hand_open": r["python"] / r["hand_open"],
            "hand_pi/hand_open": r["hand_pi"] / r["hand_open"],
            "project_open/hand_open": r["project_open"] / r["hand_open"],
        }
        rows.append({"n": n, "rates": r, "ratios": ratios})
        rates = ", ".join(f"{k} {r[k]:.0f}" for k in CEILING_RUNS)
        print(f"n = {n} (instance-s per wall s, medians of {args.repeats}): {rates}")
        print("  " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
        print(f"  load average {r['load']:.1f}")
    with open(args.json, "w") as fh:
        json.dump({"machine": platform.platform(), "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
