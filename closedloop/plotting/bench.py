"""The benchmark's figure: efficacy against energy per controller of a scenario.

The results are :class:`closedloop.bench.scenarios.BenchResult`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from closedloop.plotting.figures import axes_for, save_figure

__all__ = ["plot_scenario", "save_scenario_figure"]


def plot_scenario(results: Sequence[Any], scenario: Any, *, ax: Any = None) -> Any:
    """Efficacy versus energy: one point per controller (mean, with instance spread).

    Parameters
    ----------
    results : list of closedloop.bench.scenarios.BenchResult
        Results; those of other scenarios and failed ones are left out.
    scenario : closedloop.bench.scenarios.Scenario
        The scenario drawn.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default the axes of a new figure, 6 in by 4.5 in.

    Returns
    -------
    matplotlib.figure.Figure
        The figure of the axes drawn on; nothing is saved
        (:func:`save_scenario_figure` saves).
    """
    fig, ax = axes_for(ax, (6, 4.5))
    eff_key = "efficacy"
    shown = [r for r in results if r.scenario == scenario.name and not r.error]
    for k, r in enumerate(shown):  # each controller's instances in the colour of its mean
        x, y, colour = r.metrics["teed_relative"], r.metrics[eff_key], f"C{k % 10}"
        ax.scatter(x, y, s=12, alpha=0.4, color=colour)
        ax.scatter([r.mean("teed_relative")], [r.mean(eff_key)], s=60, color=colour,
                   label=f"{r.controller} (mean; dots: instances)", edgecolors="k")  # fmt: skip
    ax.set_xlabel("TEED relative to continuous stimulation")
    ax.set_ylabel(f"efficacy ({scenario.efficacy.replace('_', ' ')})")
    ax.set_title(f"{scenario.name}: efficacy versus energy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def save_scenario_figure(results: Sequence[Any], scenario: Any, out: str | Path) -> Path:
    """Draw :func:`plot_scenario` and write it to ``out`` (what ``closedloop bench`` does)."""
    return save_figure(plot_scenario(results, scenario), out, bbox_inches="tight")
