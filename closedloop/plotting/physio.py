"""Panel of a run figure for physiological clocks: respiration, R-peaks and the pulses.

Drawn by :func:`closedloop.plotting.run.plot_run` when a run has the
``physio`` clock's breath table (``events/physio_breaths``,
:mod:`closedloop.physiology`): the true respiratory phase (cycles,
rebuilt from the breath onsets), expiration shaded, R-peaks as ticks, and
the pulses the device delivered per control period on a twin axis.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from closedloop.plotting.figures import panel

__all__ = ["has_physiology", "plot_physiology"]

_BREATHS = "events/physio_breaths/"


def has_physiology(run: Any) -> bool:
    """Whether the run recorded a breath table."""
    return _BREATHS + "time_s" in run.arrays


def _mine(run: Any, table: str, instance: int) -> dict[str, np.ndarray]:
    prefix = f"events/{table}/"
    cols = {k[len(prefix) :]: np.asarray(v) for k, v in run.arrays.items() if k.startswith(prefix)}
    keep = cols["instance"] == instance if "instance" in cols else slice(None)
    return {k: v[keep] for k, v in cols.items()}


@panel
def plot_physiology(ax: Any, run: Any, instance: int, label: str = "(f)") -> None:
    """Respiratory phase with expiration shaded, R-peaks, and delivered pulses per period."""
    ax.set_title(f"{label} respiration, heartbeats and pulses", loc="left", fontsize=10)
    breaths = _mine(run, "physio_breaths", instance)
    onset, exp_onset = breaths["time_s"], breaths["expiration_onset_s"]
    if onset.size == 0:
        ax.text(0.5, 0.5, "no breaths recorded", transform=ax.transAxes, ha="center")
        return
    ends = np.append(onset[1:], np.nan)
    for k in range(onset.size):
        end = ends[k] if np.isfinite(ends[k]) else exp_onset[k] + (exp_onset[k] - onset[k])
        ax.axvspan(exp_onset[k], end, color="C0", alpha=0.12, lw=0,
                   label="expiration" if k == 0 else None)  # fmt: skip
        # Phase is linear in time within a breath (closedloop.physiology.respiration).
        if np.isfinite(ends[k]):
            ax.plot([onset[k], ends[k]], [0.0, 1.0], color="C0", lw=1.0,
                    label="respiratory phase" if k == 0 else None)  # fmt: skip
    peaks = _mine(run, "physio_r_peaks", instance)
    if peaks:
        ax.plot(peaks["time_s"], np.full(peaks["time_s"].size, 1.05), "|", color="C3", ms=6,
                label="R-peaks")  # fmt: skip
    ax.set_ylabel("phase (cycles)")
    ax.set_ylim(-0.05, 1.12)
    if "pulse_count" in run.timeseries and "amplitude" in run.timeseries:
        count = np.asarray(run.timeseries["pulse_count"])[instance]
        amplitude = np.asarray(run.timeseries["amplitude"])[instance]
        pulses = np.diff(count, prepend=0.0) * (amplitude > 0)
        twin = ax.twinx()
        twin.step(run.time("pulse_count"), pulses, where="post", color="k", lw=0.8,
                  label="pulses per period")  # fmt: skip
        twin.set_ylabel("pulses per period")
        twin.legend(loc="upper left", fontsize=7)
    ax.legend(loc="upper right", fontsize=7)
    ax.set_xlabel("time (s)")
