"""Panels of a run figure for the plasticity readout: phases at the bursts, the readout over time.

Drawn by :func:`closedloop.plotting.run.plot_run` when a run has the series
``plasticity_excitability_pct`` (an experiment's ``plasticity:`` block,
:mod:`closedloop.analysis.plasticity`): the histogram of the rhythm's phase
at each burst (``events/plasticity_bursts``), with the rule's preferred phase
marked, and the MEP-like response change against time.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from closedloop.analysis.plasticity import PLASTICITY_SERIES
from closedloop.plotting.figures import panel

__all__ = ["has_plasticity", "plot_plasticity"]


def has_plasticity(run: Any) -> bool:
    """Whether the run recorded the plasticity readout."""
    return PLASTICITY_SERIES in run.timeseries


@panel
def plot_plasticity(ax_hist: Any, ax_series: Any, run: Any, instance: int, label: str) -> None:
    """Phase histogram at the bursts (``ax_hist``) and the readout over time (``ax_series``)."""
    ax_hist.set_title(f"{label} phase at each burst", loc="left", fontsize=10)
    key = "events/plasticity_bursts/phase_rad"
    if key in run.arrays:
        mine = run.arrays["events/plasticity_bursts/instance"] == instance
        phases = np.asarray(run.arrays[key])[mine]
        phases = phases[np.isfinite(phases)]
        ax_hist.hist(np.degrees(phases), bins=np.linspace(-180, 180, 19), color="C0")
        block = run.config.get("plasticity") or {}
        preferred = float(block.get("preferred_phase_rad", math.pi))
        wrapped = math.degrees(math.remainder(preferred, 2 * math.pi))
        ax_hist.axvline(wrapped, color="C3", ls="--", label="preferred phase")
        ax_hist.legend(fontsize=8)
    ax_hist.set_xlabel("phase (deg; 0 peak, +-180 trough)")
    ax_hist.set_ylabel("bursts")
    ax_series.set_title(f"{label} plasticity readout", loc="left", fontsize=10)
    values = np.asarray(run.timeseries[PLASTICITY_SERIES])[instance]
    rate = float(run.timeseries_attrs[PLASTICITY_SERIES]["sampling_rate_hz"])
    # Each value is taken at the end of its chunk.
    ends = run.time(PLASTICITY_SERIES) + 1.0 / rate
    ax_series.plot(ends, values, color="C2", marker=".", drawstyle="steps-pre")
    ax_series.set_xlabel("time (s)")
    ax_series.set_ylabel("MEP-like response change (%)")
