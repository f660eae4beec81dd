"""Panels of a run figure for neurofeedback training (:mod:`closedloop.neurofeedback`).

Drawn by :func:`closedloop.plotting.run.plot_run` when a run has a
neurofeedback subject (series ``nf_measured``): (left) the learning curve,
regulation per run (``events/nf_runs``) as the mean and standard error over
each arm's instances (real feedback, sham), the transfer runs without
feedback after the dashed line; (right) the drawn instance's displayed
readout per frame, regulate blocks with feedback shaded green and without
feedback (transfer) orange.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from closedloop.plotting.figures import panel

__all__ = ["has_neurofeedback", "plot_learning_curve", "plot_regulation_trace"]

_RUNS = "events/nf_runs/"


def has_neurofeedback(run: Any) -> bool:
    """Whether the run recorded a neurofeedback subject."""
    return "nf_measured" in run.timeseries


@panel
def plot_learning_curve(ax: Any, run: Any, label: str = "(h)") -> None:
    """Regulation per run, mean +- s.e.m. over each arm's instances."""
    ax.set_title(f"{label} neurofeedback learning curve", loc="left", fontsize=10)
    if _RUNS + "run" not in run.arrays:
        ax.text(0.5, 0.5, "no complete run", ha="center", va="center", transform=ax.transAxes)
        return
    col = {k: np.asarray(run.arrays[_RUNS + k]) for k in ("run", "sham", "feedback")}
    pct = np.asarray(run.arrays[_RUNS + "regulation_pct"], dtype=float)
    runs = np.unique(col["run"])
    for sham, name, color in ((0, "real feedback", "C2"), (1, "sham feedback", "C7")):
        rows = col["sham"] == sham
        if not np.any(rows):
            continue
        mean = np.array([np.mean(pct[rows & (col["run"] == k)]) for k in runs])
        sem = np.array(
            [np.std(pct[rows & (col["run"] == k)]) / np.sqrt(np.sum(rows & (col["run"] == k)))
             for k in runs]
        )  # fmt: skip
        ax.errorbar(runs + 1, mean, sem, color=color, marker="o", ms=4, capsize=2, label=name)
    transfer = col["run"][col["feedback"] == 0]
    if transfer.size:
        ax.axvline(transfer.min() + 0.5, color="0.4", ls="--", lw=0.8)
        ax.text(transfer.min() + 0.6, ax.get_ylim()[1], "transfer (no feedback)", fontsize=7,
                va="top")  # fmt: skip
    ax.axhline(0.0, color="0.6", lw=0.6)
    ax.set_xlabel("run")
    ax.set_ylabel("regulation (% change from baseline)")
    ax.legend(loc="lower left", fontsize=7)


@panel
def plot_regulation_trace(ax: Any, run: Any, instance: int, label: str = "(i)") -> None:
    """The displayed readout per frame; regulate blocks shaded by feedback."""
    ax.set_title(f"{label} biomarker per display frame, instance {instance}", loc="left",
                 fontsize=10)  # fmt: skip
    t = run.time("nf_measured")
    y = np.asarray(run.timeseries["nf_measured"])[instance]
    action = np.asarray(run.timeseries["nf_action"])[instance]
    ax.plot(t, y, color="k", lw=0.7)
    frame = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    fb = np.isfinite(np.asarray(run.timeseries["nf_display_pct"])[instance])
    # action >= 0 is the action chosen for the next frame: the frame after it regulates.
    regulating = np.concatenate([[False], action[:-1] >= 0])
    span_color = {True: ("C2", "regulate, feedback"), False: ("C1", "regulate, no feedback")}
    transfer_start = _transfer_start(run)
    drawn = set()
    for k in np.flatnonzero(regulating):
        with_fb = bool(fb[k]) or (transfer_start is None or t[k] < transfer_start)
        color, name = span_color[with_fb]
        ax.axvspan(t[k] - frame, t[k], color=color, alpha=0.15, lw=0,
                   label=None if with_fb in drawn else name)  # fmt: skip
        drawn.add(with_fb)
    ax.set_xlabel("time (s)")
    units = run.timeseries_attrs.get("nf_measured", {}).get("units", "")
    ax.set_ylabel(f"readout ({units})")
    ax.legend(loc="upper right", fontsize=7)


def _transfer_start(run: Any) -> float | None:
    """Start of the first transfer run, s (None without one)."""
    if _RUNS + "feedback" not in run.arrays:
        return None
    fb = np.asarray(run.arrays[_RUNS + "feedback"])
    times = np.asarray(run.arrays[_RUNS + "time_s"], dtype=float)
    if not np.any(fb == 0):
        return None
    return float(times[fb == 1].max()) if np.any(fb == 1) else 0.0
