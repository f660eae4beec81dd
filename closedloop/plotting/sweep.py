"""Figures of a sweep's summary: a heatmap over two swept parameters, a line over
one, or efficacy against energy with the Pareto front marked.

The table is :func:`closedloop.sweep.summary.load_summary`'s.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from closedloop.plotting.figures import axes_for, save_figure
from closedloop.sweep.summary import (
    SUMMARY_H5,
    load_summary,
    load_summary_meta,
    pareto_front,
    summarize_sweep,
)

__all__ = ["plot_sweep", "save_sweep_figure"]


def _aggregate(
    columns: dict[str, np.ndarray], keys: Sequence[str], metric: str
) -> tuple[list[tuple], np.ndarray, np.ndarray, np.ndarray]:
    """Mean, standard deviation and count of ``metric`` for each distinct value of ``keys``."""
    complete = columns["status"] == "complete"
    groups: dict[tuple, list[float]] = {}
    for i in np.flatnonzero(complete):
        key = tuple(columns[k][i] for k in keys)
        groups.setdefault(key, []).append(float(columns[metric][i]))
    order = sorted(groups, key=lambda t: tuple(_sort_key(v) for v in t))
    mean = np.array(
        [np.nanmean(groups[k]) if np.isfinite(groups[k]).any() else np.nan for k in order]
    )
    std = np.array(
        [np.nanstd(groups[k]) if np.isfinite(groups[k]).any() else np.nan for k in order]
    )
    count = np.array([len(groups[k]) for k in order])
    return order, mean, std, count


def _sort_key(value: Any) -> tuple:
    if isinstance(value, float | np.floating | int):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _label(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:.4g}"
    return str(value)


def plot_sweep(
    out_dir: str | os.PathLike[str],
    *,
    x: str | None = None,
    y: str | None = None,
    metric: str = "band_power_reduction",
    kind: str = "auto",
    efficacy: str = "band_power_reduction",
    energy: str = "teed_relative",
    ax: Any = None,
) -> Any:
    """Draw a sweep's summary; save nothing (:func:`save_sweep_figure` saves).

    Parameters
    ----------
    out_dir : path-like
        A sweep directory (its summary is built from the run files if missing).
    x, y : str, optional
        Swept parameters (key paths).
    metric : str
        Metric drawn by heatmaps and lines.
    kind : {"auto", "heatmap", "line", "pareto"}
        ``heatmap``: mean ``metric`` over ``x`` and ``y`` (other parameters
        and replicates averaged). ``line``: mean and standard deviation of
        ``metric`` against ``x``. ``pareto``: ``efficacy`` against
        ``energy`` for each parameter point (mean over replicates) with the
        Pareto front (least energy for the efficacy) marked. ``auto``:
        heatmap with ``x`` and ``y``, line with ``x`` only, else pareto.
    efficacy, energy : str
        Metrics of the Pareto plot (higher and lower is better).
    ax : matplotlib.axes.Axes, optional
        Where to draw; default the axes of a new figure, 6.4 in by 4.8 in
        (titled with the sweep's name and its number of complete runs).

    Returns
    -------
    matplotlib.figure.Figure
        The figure of the axes drawn on.

    Raises
    ------
    ValueError
        For a name that is not a swept parameter or a metric of the summary.
    """
    out_dir = Path(out_dir)
    if not (out_dir / SUMMARY_H5).exists():
        summarize_sweep(out_dir)
    columns = load_summary(out_dir, as_frame=False)
    meta = load_summary_meta(out_dir)
    params, metrics, units = meta["param_columns"], meta["metric_columns"], meta["metric_units"]
    kind = _resolve_kind(kind, x, y)

    def need_param(name: str | None, flag: str) -> str:
        if not name:
            raise ValueError(f"a {kind} plot needs {flag} PARAM; swept: {', '.join(params)}")
        if name not in params:
            raise ValueError(
                f"{flag} {name!r} is not a swept parameter; swept: {', '.join(params)}"
            )
        return name

    def need_metric(name: str, flag: str) -> str:
        if name not in metrics:
            raise ValueError(f"{flag} {name!r} is not a metric; metrics: {', '.join(metrics)}")
        return name

    titled = ax is None
    fig, ax = axes_for(ax, (6.4, 4.8))
    n_complete = int(np.sum(columns["status"] == "complete"))
    if kind == "heatmap":
        x, y = need_param(x, "--x"), need_param(y, "--y")
        metric = need_metric(metric, "--metric")
        keys, mean, _, _ = _aggregate(columns, [x, y], metric)
        xs = sorted({k[0] for k in keys}, key=_sort_key)
        ys = sorted({k[1] for k in keys}, key=_sort_key)
        grid = np.full((len(ys), len(xs)), np.nan)
        for (vx, vy), value in zip(keys, mean, strict=True):
            grid[ys.index(vy), xs.index(vx)] = value
        image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
        ax.set_xticks(range(len(xs)), [_label(v) for v in xs], rotation=45 if len(xs) > 6 else 0)
        ax.set_yticks(range(len(ys)), [_label(v) for v in ys])
        if len(xs) * len(ys) <= 64:
            for (i, j), value in np.ndenumerate(grid):
                if np.isfinite(value):
                    ax.text(j, i, f"{value:.3g}", ha="center", va="center", color="w", fontsize=8)
        fig.colorbar(image, ax=ax, label=f"{metric} ({units.get(metric, '')})")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(f"{metric}, mean over the other parameters and replicates")
    elif kind == "line":
        x = need_param(x, "--x")
        metric = need_metric(metric, "--metric")
        keys, mean, std, _ = _aggregate(columns, [x], metric)
        xs = [k[0] for k in keys]
        numeric = all(isinstance(v, float | np.floating) for v in xs)
        pos = np.asarray(xs, dtype=float) if numeric else np.arange(len(xs))
        ax.plot(pos, mean, "o-", color="C0", label="mean")
        ax.fill_between(pos, mean - std, mean + std, color="C0", alpha=0.25, label="± 1 s.d.")
        if not numeric:
            ax.set_xticks(pos, [_label(v) for v in xs])
        elif len(xs) > 2 and np.all(pos > 0) and pos.max() / pos.min() > 50:
            ax.set_xscale("log")
        ax.set_xlabel(x)
        ax.set_ylabel(f"{metric} ({units.get(metric, '')})")
        ax.legend()
        ax.set_title(f"{metric} over {x}")
    else:
        efficacy = need_metric(efficacy, "--efficacy")
        energy = need_metric(energy, "--energy")
        keys_e, eff, _, _ = _aggregate(columns, params, efficacy)
        keys_n, eng, _, _ = _aggregate(columns, params, energy)
        assert keys_e == keys_n
        front = pareto_front(eng, eff)
        ax.scatter(eng[~front], eff[~front], color="0.6", s=18, label="parameter point")
        order = np.flatnonzero(front)[np.argsort(eng[front])]
        ax.plot(eng[order], eff[order], "o-", color="C3", label="Pareto front")
        for i in order:  # each point of the front labelled with its parameters
            ax.annotate(
                _point_label(params, keys_e[i]),
                (eng[i], eff[i]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
            )
        ax.set_xlabel(f"{energy} ({units.get(energy, '')}), lower is better")
        ax.set_ylabel(f"{efficacy} ({units.get(efficacy, '')}), higher is better")
        ax.legend()
        ax.set_title(f"efficacy against energy, {len(keys_e)} parameter points")
    if titled:
        fig.suptitle(f"{out_dir.name}: {n_complete} complete runs", fontsize=9)
    return fig


def save_sweep_figure(
    out_dir: str | os.PathLike[str], *, output: str | os.PathLike[str] | None = None, **kwargs: Any
) -> Path:
    """Draw :func:`plot_sweep` and write it (what ``closedloop plot-sweep`` does).

    Parameters
    ----------
    out_dir : path-like
        A sweep directory.
    output : path-like, optional
        Figure file (default ``DIR/sweep_<kind>_<names>.png``).
    **kwargs
        Passed to :func:`plot_sweep` (``x``, ``y``, ``metric``, ``kind``,
        ``efficacy``, ``energy``).

    Returns
    -------
    Path
        The file written.
    """
    fig = plot_sweep(out_dir, **kwargs)  # first: a bad name writes nothing
    if output is None:
        kind = _resolve_kind(kwargs.get("kind", "auto"), kwargs.get("x"), kwargs.get("y"))
        names = {
            "heatmap": ("metric", "x", "y"),
            "line": ("metric", "x"),
            "pareto": ("efficacy", "energy"),
        }[kind]
        defaults = {"metric": "band_power_reduction", "efficacy": "band_power_reduction",
                    "energy": "teed_relative"}  # fmt: skip
        parts = [str(kwargs.get(k) or defaults.get(k)) for k in names]
        output = Path(out_dir) / f"sweep_{_safe('_'.join([kind, *parts]))}.png"
    return save_figure(fig, output, dpi=120)


def _resolve_kind(kind: str, x: str | None, y: str | None) -> str:
    """``auto``: heatmap with ``x`` and ``y``, line with ``x`` only, else pareto."""
    if kind == "auto":
        kind = "heatmap" if x and y else "line" if x else "pareto"
    if kind not in ("heatmap", "line", "pareto"):
        raise ValueError(f"kind must be auto, heatmap, line or pareto, got {kind!r}")
    return kind


def _point_label(params: Sequence[str], values: tuple) -> str:
    # "w_GS=9, upper_threshold=30": the last part of each key path
    parts = []
    for key, value in zip(params, values, strict=True):
        shown = f"{value:g}" if isinstance(value, float | int | np.number) else str(value)
        parts.append(f"{key.rsplit('.', 1)[-1]}={shown}")
    return ", ".join(parts)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)
