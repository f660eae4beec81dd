"""The physiological clock's cost, as ratios measured in one run.

The loop of ``experiments/avns_respiratory_gated.yaml`` (fear/extinction
model, 10 ms control period, Python controller, 3 instances, 19.5 s),
three ways, alternating, several rounds, medians of wall time:

- ``bare``: no ``physiology:`` block, the ``symptom_triggered`` controller
  run in Python (the same per-period Python path without the clock);
- ``physio``: the experiment as written (clock step 0.1 s, periods read
  after each chunk, hearts run ahead);
- ``physio_per_period``: the clock stepping every control period
  (``physiology.period_s = 0.01``), the naive route (every chunk one
  period long).

Run::

    python benchmarks/bench_physiology.py [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

from closedloop.config import load_config

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "experiments" / "avns_respiratory_gated.yaml"
BARE = [
    "sweep=null",
    "physiology=null",
    "controller={name: symptom_triggered, params: {threshold: 0.25, burst_s: 0.5, "
    "amplitude_ma: 1.0, frequency_hz: 25.0, pulse_width_us: 450.0}}",
    "control.engine=python",
]
VARIANTS = {"bare": BARE, "physio": [], "physio_per_period": ["physiology.period_s=0.01"]}


def _time(overrides: list[str], chunk_s: float) -> float:
    loop = load_config(EXPERIMENT, overrides).loop
    loop.reset()
    start = time.perf_counter()
    loop.run(loop_duration(), chunk_s=chunk_s)
    return time.perf_counter() - start


def loop_duration() -> float:
    """Simulated seconds per measurement (the experiment's duration)."""
    return 19.5


def main() -> None:
    """Measure and print the table (and JSON when asked)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    for overrides in VARIANTS.values():  # compile and warm caches
        _time(overrides, 0.5)
    times: dict[str, list[float]] = {k: [] for k in VARIANTS}
    for _ in range(args.rounds):
        for name, overrides in VARIANTS.items():
            times[name].append(_time(overrides, 0.5))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{'variant':<20} {'median s':>9} {'ratio to bare':>14}")
    for name, value in med.items():
        print(f"{name:<20} {value:9.3f} {value / med['bare']:14.2f}")
    if args.json:
        record = {"machine": platform.node(), "rounds": args.rounds, "median_s": med,
                  "times_s": times}  # fmt: skip
        args.json.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
