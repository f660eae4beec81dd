"""The drug layer's cost and the error of time-scale separation, measured in one run.

Three figures, each from one run of this script:

1. **Seam cost.** The levodopa experiment's loop (stn_gpe, 20 ms control
   period, compiled open-loop controller) with and without the drug layer,
   slow step 5 s (every 250 control periods) and 20 ms (every period): wall
   time ratio to the bare loop, runs alternating, best of 5.
2. **Long runs.** Wall time per instance of a simulated day and week: fully
   simulated (extrapolated from a measured stretch: the loop's cost is linear
   in neural time) and with the experiment's epoch schedule (5 s of every
   30 min, run in full).
3. **Separation error.** :func:`closedloop.core.epochs.separation_error` on
   the levodopa day (doses at 1 and 6 h; 10 h; one instance): slow series
   (exact, they do not depend on the neural state) and the per-epoch mean of
   the sensed beta envelope, against the fully simulated 10 h.

Run::

    python benchmarks/bench_drugs.py [--json bench_drugs.json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from closedloop.config import load_config
from closedloop.core.epochs import separation_error
from closedloop.core.loop import ClosedLoop
from closedloop.core.slow import EpochSchedule

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "experiments" / "pd_beta_medication.yaml"
OPEN = "controller={name: open_loop, params: {amplitude_ma: 2.5}}"


def _exp(n: int, *extra: str):
    return load_config(EXPERIMENT, [f"n_instances={n}", OPEN, *extra])


def _loop(exp, slow=True, epochs=None) -> ClosedLoop:
    loop0 = exp.loop
    return ClosedLoop(
        loop0.model.like(),
        loop0.sensing,
        loop0.device,
        loop0.controller,
        control_period_s=loop0.control_period_s,
        seed=exp.config.seed,
        slow=list(loop0.slow) if slow else [],
        epochs=epochs,
    )


def _time(loop: ClosedLoop, duration_s: float) -> float:
    loop.reset()
    t = time.perf_counter()
    loop.run(duration_s, chunk_s=5.0)
    return time.perf_counter() - t


def seam_cost(n: int, sim_s: float, repeats: int = 5) -> list[dict]:
    """Wall time with the drug layer over the bare loop (both compiled controller)."""
    rows = []
    bare = _loop(_exp(n, "slow=null"), slow=False)
    _time(bare, 0.2)  # compile or load
    for period in (5.0, 0.02):
        drug = _loop(_exp(n, "slow=null", f"drugs.period_s={period}"))
        _time(drug, 0.2)
        best_bare = best_drug = float("inf")
        for _ in range(repeats):
            best_bare = min(best_bare, _time(bare, sim_s))
            best_drug = min(best_drug, _time(drug, sim_s))
        rows.append(
            {
                "n": n,
                "drug_period_s": period,
                "neural_s": sim_s,
                "bare_wall_s": best_bare,
                "drug_wall_s": best_drug,
                "ratio": best_drug / best_bare,
            }
        )
    return rows


def long_runs(n: int, stretch_s: float) -> list[dict]:
    """Wall seconds per instance for a simulated day and week, full and with epochs."""
    rows = []
    exp = _exp(n, "drugs.period_s=5.0")
    full = _loop(exp)
    _time(full, 0.2)
    per_neural_s = _time(full, stretch_s) / stretch_s  # wall s per neural s, whole batch
    epochs = EpochSchedule(5.0, 1800.0)
    for label, days in (("day", 1), ("week", 7)):
        slow_s = days * 86400.0
        loop = _loop(exp, epochs=epochs)
        wall = _time(loop, slow_s)
        rows.append(
            {
                "simulated": label,
                "n": n,
                "full_wall_s_per_instance (extrapolated)": per_neural_s * slow_s / n,
                "epochs_wall_s_per_instance": wall / n,
                "epoch_neural_s": slow_s * epochs.epoch_s / epochs.every_s,
            }
        )
    return rows


def separation(hours: float) -> dict:
    """Separated against full over ``hours`` of the levodopa day (one instance)."""
    exp = _exp(1, "drugs.period_s=5.0")
    return separation_error(
        lambda epochs: _loop(exp, epochs=epochs), EpochSchedule(5.0, 1800.0), hours * 3600.0
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="bench_drugs.json", help="where to write the figures")
    ap.add_argument("--quick", action="store_true", help="shorter runs (noisier figures)")
    args = ap.parse_args()
    q = 0.25 if args.quick else 1.0
    record = {
        "machine": platform.platform(),
        "seam": seam_cost(8, 20.0 * q),
        "long_runs": long_runs(8, 20.0 * q),
        "separation_error": separation(2.0 if args.quick else 10.0),
    }
    print("seam cost (wall time with the drug layer / bare loop, best of 5):")
    for r in record["seam"]:
        print(
            f"  n={r['n']:<3d} slow step {r['drug_period_s']:>5g} s: ratio {r['ratio']:.3f} "
            f"({r['drug_wall_s']:.3f} s vs {r['bare_wall_s']:.3f} s for {r['neural_s']:g} s)"
        )
    print("wall time per instance of simulated time:")
    for r in record["long_runs"]:
        print(
            f"  a {r['simulated']:<4s}: full {r['full_wall_s_per_instance (extrapolated)']:8.1f} s "
            f"(extrapolated); epochs 5 s / 30 min {r['epochs_wall_s_per_instance']:6.2f} s "
            f"({r['epoch_neural_s']:g} s neural)"
        )
    print("separation error (epochs 5 s / 30 min against full):")
    for k, v in record["separation_error"].items():
        print(f"  {k:<45s} {v:.3g}")
    Path(args.json).write_text(json.dumps(record, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
