"""The personalised arms against the others: paired differences with intervals.

A personalised arm (an arm with a ``clinic:`` block, see
:mod:`closedloop.cohort.clinic`) runs through the sweep like any arm: each
run carries its clinic as a ``loop_wrapper`` that the worker applies to the
run's loop (one patient, or several batched: each patient's visits do not
depend on the batch it shares), so it runs on the local pool or on Dask and
resumes as the sweep does.

Nothing is learnt across patients: each patient's setting comes from their
own visits, so the held-out patients (the cohort's ``held_out_fraction``)
stay a fair test of personalisation against the one-size-fits-all arms.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from closedloop.cohort.outcomes import CohortResults, bootstrap_ci

__all__ = ["personalised_table"]


def personalised_table(
    results: CohortResults,
    clinic_arms: Mapping[str, str],
    patients: Sequence[str] | None = None,
) -> str:
    """Each personalised arm against every other arm, paired over ``patients``.

    Per pair: the difference (personalised minus other) of the mean of the
    responder metric, of the remission and responder rates, of the mean
    amplitude and of the energy per day, each with its paired 95 %
    percentile-bootstrap interval (patients resampled together).

    Parameters
    ----------
    results : CohortResults
    clinic_arms : mapping of str to str
        Personalised arm to its strategy.
    patients : sequence of str, optional
        The patients compared (default: all; the report passes the held-out ones).
    """
    cols = (
        np.arange(len(results.patients))
        if patients is None
        else np.array([results.patients.index(p) for p in patients], dtype=int)
    )
    rows: list[tuple[str, np.ndarray, float, str]] = [
        (results.responder.metric, results.metrics[results.responder.metric], 1.0, ""),
        ("responders", results.responders(), 100.0, " pp"),
    ]
    remitters = results.remitters()
    if remitters is not None:
        rows.append(("remission", remitters, 100.0, " pp"))
    for name in ("mean_amplitude_ma", "teed_j_per_day"):
        if name in results.metrics:
            rows.append((name, results.metrics[name], 1.0, ""))
    lines = []
    for arm, strategy in clinic_arms.items():
        a = results.arms.index(arm)
        lines.append(
            f"{arm} ({strategy}) on {len(cols)} patients, paired difference "
            "(personalised minus other), 95 % CI:"
        )
        for b, other in enumerate(results.arms):
            if b == a:
                continue
            parts = []
            for name, values, scale, unit in rows:
                d, lo, hi = bootstrap_ci(np.stack([values[a, cols], values[b, cols]], axis=1))
                if math.isfinite(d):
                    parts.append(
                        f"{name} {scale * d:+.3g}{unit} [{scale * lo:+.3g}, {scale * hi:+.3g}]"
                    )
            lines.append(f"  vs {other}: " + "; ".join(parts))
    return "\n".join(lines)
