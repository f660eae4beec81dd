"""Figures of a cohort: a waterfall of per-patient change and responder rates with CIs.

The data are :class:`closedloop.cohort.outcomes.CohortResults`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_cohort"]


def plot_cohort(results: Any, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``cohort_waterfall.png`` and ``cohort_responders.png`` into ``out_dir``.

    The waterfall shows, per arm, every patient's value of the responder
    metric sorted from best to worst, with the responder threshold drawn;
    the bar chart shows responder (and remission) rates per arm with their
    bootstrap 95 % intervals.

    Returns
    -------
    (Path, Path)
        The two figures.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    rule = results.responder
    values = results.metrics.get(rule.metric, np.full((len(results.arms), 0), np.nan))
    threshold = rule.at_least if rule.at_least is not None else rule.at_most
    fig, axes = plt.subplots(
        1, len(results.arms), figsize=(3.2 * len(results.arms), 3.2), sharey=True, squeeze=False
    )
    for ax, arm, row in zip(axes[0], results.arms, values, strict=True):
        v = row[np.isfinite(row)]
        v = np.sort(v)[::-1] if rule.at_least is not None else np.sort(v)
        hit = rule.test(v) == 1.0
        ax.bar(np.arange(len(v)), v, width=1.0, color=np.where(hit, "tab:green", "tab:gray"))
        ax.axhline(threshold, color="k", lw=0.8, ls="--")
        ax.set_title(f"{arm} ({int(hit.sum())}/{len(v)} respond)", fontsize=9)
        ax.set_xlabel("patients, sorted")
    axes[0][0].set_ylabel(rule.metric)
    fig.tight_layout()
    waterfall = out / "cohort_waterfall.png"
    fig.savefig(waterfall, dpi=110)
    plt.close(fig)

    outcomes = results.outcome()
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(outcomes), 3.2))
    x = np.arange(len(outcomes))
    series = [("responders", [o.responder_rate for o in outcomes], "tab:green")]
    if results.remission is not None:
        series.append(("remission", [o.remission_rate for o in outcomes], "tab:blue"))
    width = 0.8 / len(series)
    for k, (label, cis, color) in enumerate(series):
        mid = np.array([c[0] for c in cis])
        err = np.array([[c[0] - c[1] for c in cis], [c[2] - c[0] for c in cis]])
        ax.bar(
            x + (k - (len(series) - 1) / 2) * width,
            100 * mid,
            width,
            yerr=100 * err,
            color=color,
            capsize=3,
            label=label,
        )
    ax.set_xticks(x, [o.arm for o in outcomes], rotation=30, ha="right")
    ax.set_ylabel("patients (%), 95 % CI")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    fig.tight_layout()
    bars = out / "cohort_responders.png"
    fig.savefig(bars, dpi=110)
    plt.close(fig)
    return waterfall, bars
