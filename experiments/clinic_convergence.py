"""How often each clinic strategy converges, on how many visits, by effect size.

Synthetic patients with a known optimum (closedloop.cohort.synthetic): one
amplitude-like parameter, 0-4 in 0.5 steps, a saturating dose-response with
a cost per unit, and a visit's measure whose noise makes the best setting's
advantage over the worst ``d`` standard deviations (the standardised effect
of Dastin-van Rijn & Widge 2025). Each strategy has a budget of 12 visits
from a start at 0; "converged" means the setting kept at the end lies within
one step of the optimum, "visits" is the median visit from which it stayed
there, "boundary" the fraction of proposed settings at an end of the range
(the grid's is 2/9 by design), "regret" the mean excess objective of the
setting kept, as a fraction of the objective's range (0: the optimum).

    python experiments/clinic_convergence.py [--patients 200] [--visits 12]
"""

from __future__ import annotations

import argparse
import time

from closedloop.cohort.synthetic import convergence_study

STRATEGIES = (("grid", None), ("optuna", None), ("self_tuning", {"gain": 0.2}))


def main() -> None:
    """Print the convergence table (Markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--visits", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print("| d | strategy | converged | visits (median) | boundary | regret |")
    print("|---|---|---|---|---|---|")
    t0 = time.perf_counter()
    for d in (0.1, 0.3, 1.0, 3.0, 10.0):
        for name, settings in STRATEGIES:
            r = convergence_study(
                name,
                n_patients=args.patients,
                n_visits=args.visits,
                effect_size=d,
                seed=args.seed,
                settings=settings,
            )
            print(
                f"| {d:g} | {name} | {100 * r.rate:.0f} % | {r.median_visits:.0f} | "
                f"{r.boundary_fraction:.2f} | {r.regret.mean():.3f} |"
            )
    wall = time.perf_counter() - t0
    print(f"\n{args.patients} patients per cell, {args.visits} visits, {wall:.0f} s")


if __name__ == "__main__":
    main()
