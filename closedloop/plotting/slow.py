"""Panels of a run figure for slow states: a symptom score over days, triggers per day.

Drawn by :func:`closedloop.plotting.run.plot_run` when a run has a symptom
state (series ``<name>_score``, :mod:`closedloop.symptoms`): the latent
clinical score against days of slow time, the sparse self-reports as dots,
and, when the run logged detector triggers (``events/triggers``), the
delivered triggers per simulated day as bars on a twin axis.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from closedloop.plotting.figures import panel

__all__ = ["plot_symptoms", "slow_time_of", "symptom_names"]

DAY_S = 86400.0


def symptom_names(run: Any) -> list[str]:
    """Symptom states with a score series in the run (``<name>_score`` and ``_severity``)."""
    return [
        k[: -len("_score")]
        for k in run.timeseries
        if k.endswith("_score") and f"{k[: -len('_score')]}_severity" in run.timeseries
    ]


def slow_time_of(run: Any, neural_s: np.ndarray) -> np.ndarray:
    """Slow time (s) of neural times ``neural_s`` (the same without an epoch schedule).

    With ``slow_epoch_s`` / ``slow_every_s``, neural time ``t`` lies in epoch
    ``floor(t / epoch)``, which starts at ``floor(t / epoch) * every`` of slow time.
    """
    epoch = run.attrs.get("slow_epoch_s")
    every = run.attrs.get("slow_every_s")
    t = np.asarray(neural_s, dtype=float)
    if epoch is None or every is None:
        return t
    k = np.floor(t / float(epoch))
    return k * float(every) + (t - k * float(epoch))


@panel
def plot_symptoms(ax: Any, run: Any, instance: int, label: str = "(g)") -> None:
    """Latent scores and self-reports against days; triggers per day on a twin axis."""
    ax.set_title(f"{label} symptom state (slow time)", loc="left", fontsize=10)
    for j, name in enumerate(symptom_names(run)):
        key = f"{name}_score"
        units = run.timeseries_attrs.get(key, {}).get("units", "")
        t = run.time(key) / DAY_S
        ax.plot(t, np.asarray(run.timeseries[key])[instance], color=f"C{j}", lw=1.2,
                label=f"{name} latent score")  # fmt: skip
        prefix = f"events/{name}_reports/"
        if prefix + "time_s" in run.arrays:
            mine = np.asarray(run.arrays[prefix + "instance"]) == instance
            ax.plot(np.asarray(run.arrays[prefix + "time_s"])[mine] / DAY_S,
                    np.asarray(run.arrays[prefix + "score"])[mine], "o", color=f"C{j}", ms=3,
                    alpha=0.6, label=f"{name} self-reports")  # fmt: skip
        ax.set_ylabel(f"score ({units})")
    if "events/triggers/time_s" in run.arrays:
        mine = (np.asarray(run.arrays["events/triggers/instance"]) == instance) & (
            np.asarray(run.arrays["events/triggers/delivered"]) == 1
        )
        days = slow_time_of(run, np.asarray(run.arrays["events/triggers/time_s"])[mine]) / DAY_S
        if days.size:
            twin = ax.twinx()
            edges = np.arange(0.0, np.ceil(days.max()) + 1.0)
            counts, _ = np.histogram(days, edges)
            twin.bar(edges[:-1] + 0.5, counts, width=0.8, color="0.6", alpha=0.35,
                     label="triggers per day")  # fmt: skip
            twin.set_ylabel("triggers per day")
    ax.set_xlabel("days")
    ax.legend(loc="upper right", fontsize=7)
