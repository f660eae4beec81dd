"""What each modality delivered, in its own terms: run metrics and series units.

DBS keeps the metrics every run reports (:func:`closedloop.metrics.summarize`:
TEED, charge, time on). The other modalities add their own dose metrics,
named with the modality's prefix, and relabel the per-period stimulation
series whose meaning they change (the TMS "amplitude" is an intensity in
% RMT).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["modality_metrics", "stimulation_series", "summary_metric_info"]

#: Per-modality relabelling of the stimulation series (name -> (units, what)).
_SERIES: dict[str, dict[str, tuple[str, str]]] = {
    "tms": {
        "amplitude": ("%RMT", "highest TMS pulse intensity in the period (0: no pulse)"),
        "frequency": ("Hz", "rTMS frequency (rate of triggered pattern units)"),
        "pulse_width": ("us", "unused by TMS (0)"),
        "pulse_count": ("1", "TMS pulses delivered since the start"),
    },
    "tes": {
        "amplitude": ("mA", "tES current after the ramp: signed (tDCS) or peak (tACS)"),
        "frequency": ("Hz", "tACS frequency, 0 for direct current"),
        "pulse_width": ("us", "unused by tES (0)"),
        "pulse_count": ("1", "unused by tES (0)"),
    },
}


#: Per-modality units and meaning of the run metrics every run reports
#: (:data:`closedloop.metrics.METRIC_INFO`) where the modality changes them.
_SUMMARY: dict[str, dict[str, tuple[str, str]]] = {
    "tms": {
        "mean_amplitude_ma": (
            "%RMT",
            "mean over periods of the recorded intensity (0 without pulses)",
        ),
        "teed_j": ("J", "0: TMS passes no current through electrodes (see tms_* metrics)"),
        "charge_uc": ("uC", "0: TMS passes no current through electrodes"),
    },
    "tes": {
        "mean_amplitude_ma": ("mA", "mean over periods of the current (signed) or its peak (tACS)"),
        "teed_j": ("J", "tES energy I^2 R t at the assumed impedance"),
        "charge_uc": ("uC", "integral of |current| (tES)"),
    },
}


def summary_metric_info(modality: str) -> dict[str, tuple[str, str]]:
    """Units and descriptions of the common run metrics that ``modality`` changes (none for DBS)."""
    return dict(_SUMMARY.get(modality, {}))


def stimulation_series(modality: str) -> dict[str, tuple[str, str]]:
    """Units and descriptions of the stimulation series that ``modality`` changes (none for DBS)."""
    return dict(_SERIES.get(modality, {}))


def modality_metrics(
    modality: str, totals: dict[str, np.ndarray], duration_s: float
) -> dict[str, tuple[np.ndarray, str, str]]:
    """Dose metrics of a run under ``modality``: name -> (per-instance values, units, what).

    Parameters
    ----------
    modality : str
        ``device.modality``.
    totals : dict
        :func:`closedloop.device.device_totals` at the end of the run.
    duration_s : float
        Simulated time, s.
    """
    out: dict[str, tuple[Any, str, str]] = {}
    if modality == "tms":
        pulses = totals["n_pulses"]
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(pulses > 0, totals["dose_pct_rmt"] / pulses, 0.0)
        out["tms_pulses"] = (pulses, "1", "TMS pulses delivered")
        out["tms_pattern_units"] = (totals["n_units"], "1", "pattern units (pulses, pairs, bursts)")
        out["tms_dose_pct_rmt"] = (
            totals["dose_pct_rmt"],
            "%RMT",
            "sum over pulses of each pulse's intensity (pulse-intensity sum)",
        )
        out["tms_mean_intensity_pct_rmt"] = (mean, "%RMT", "mean intensity per pulse")
        out["tms_pulses_withheld"] = (totals["pulses_withheld"], "1", "pulses a daily cap withheld")
    elif modality == "tes":
        out["tes_charge_uc"] = (totals["charge_uc"], "uC", "integral of |current| over the run")
        out["tes_energy_j"] = (totals["energy_j"], "J", "I^2 R t at the assumed impedance")
        out["tes_on_time_s"] = (totals["time_on_s"], "s", "time with a nonzero current")
    elif modality == "vns":
        out["vns_pulses"] = (totals["n_pulses"], "1", "VNS pulses delivered")
        out["vns_charge_uc"] = (totals["charge_uc"], "uC", "cathodic charge delivered")
        out["vns_teed_j"] = (totals["energy_j"], "J", "total electrical energy delivered (TEED)")
        out["vns_pulse_rate_hz"] = (
            totals["n_pulses"] / duration_s,
            "Hz",
            "mean pulse rate over the run (duty cycle included)",
        )
    return out
