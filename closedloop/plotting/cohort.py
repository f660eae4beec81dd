"""Figures of a cohort: a waterfall of per-patient change and responder rates with CIs.

The data are :class:`closedloop.cohort.outcomes.CohortResults`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from closedloop.plotting.figures import axes_for, figure_for, root_figure, save_figure

__all__ = ["plot_cohort_responders", "plot_cohort_waterfall", "save_cohort_figures"]


def plot_cohort_waterfall(results: Any, *, fig: Any = None) -> Any:
    """Every patient's value of the responder metric, per arm, sorted best to worst.

    Responders are green, others grey; the responder threshold is dashed.

    Parameters
    ----------
    results : closedloop.cohort.outcomes.CohortResults
        A cohort's results.
    fig : matplotlib.figure.Figure or SubFigure, optional
        Where to draw (empty); default a new figure, 3.2 in per arm.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on; nothing is saved (:func:`save_cohort_figures` saves).
    """
    rule = results.responder
    values = results.metrics.get(rule.metric, np.full((len(results.arms), 0), np.nan))
    threshold = rule.at_least if rule.at_least is not None else rule.at_most
    fig = figure_for(fig, (3.2 * len(results.arms), 3.2))
    axes = fig.subplots(1, len(results.arms), sharey=True, squeeze=False)
    for ax, arm, row in zip(axes[0], results.arms, values, strict=True):
        v = row[np.isfinite(row)]
        v = np.sort(v)[::-1] if rule.at_least is not None else np.sort(v)
        hit = rule.test(v) == 1.0
        ax.bar(np.arange(len(v)), v, width=1.0, color=np.where(hit, "tab:green", "tab:gray"))
        ax.axhline(threshold, color="k", lw=0.8, ls="--")
        ax.set_title(f"{arm} ({int(hit.sum())}/{len(v)} respond)", fontsize=9)
        ax.set_xlabel("patients, sorted")
    axes[0][0].set_ylabel(rule.metric)
    return root_figure(fig)


def plot_cohort_responders(results: Any, *, ax: Any = None) -> Any:
    """Responder (and remission) rates per arm with their bootstrap 95 % intervals.

    Parameters
    ----------
    results : closedloop.cohort.outcomes.CohortResults
        A cohort's results.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default the axes of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure of the axes drawn on; nothing is saved.
    """
    outcomes = results.outcome()
    fig, ax = axes_for(ax, (1.2 + 1.1 * len(outcomes), 3.2))
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
    return fig


def save_cohort_figures(results: Any, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``cohort_waterfall.png`` and ``cohort_responders.png`` into ``out_dir``.

    Parameters
    ----------
    results : closedloop.cohort.outcomes.CohortResults
        A cohort's results.
    out_dir : path-like
        Directory (created).

    Returns
    -------
    (Path, Path)
        The two figures: :func:`plot_cohort_waterfall` and
        :func:`plot_cohort_responders`.
    """
    out = Path(out_dir)
    return (
        save_figure(plot_cohort_waterfall(results), out / "cohort_waterfall.png"),
        save_figure(plot_cohort_responders(results), out / "cohort_responders.png"),
    )
