"""Scoring one run of a scenario: the standard metrics, by scenario kind.

See :mod:`closedloop.bench.scenarios` for the definitions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from closedloop.bench.scenarios.spec import CLINICAL_METRICS, SCORE_WEIGHTS, Scenario
from closedloop.io import load_run

__all__ = ["score_run"]


def _biomarker_without_stimulation(run: Any, exp: Any, key: str = "envelope") -> np.ndarray:
    """The biomarker (or feature ``key``) the controller would have seen without stimulation.

    ``lfp_baseline`` (same model seed) through the same sensing chain with the
    same sensor-noise seeds, sampled at the end of each control period.
    """
    from closedloop.core.random import rng_states

    loop = exp.loop
    base = run.timeseries["lfp_baseline"]
    state = loop.sensing.new_state(loop.n, rng_states(loop.seeds.sensor))
    env = loop.sensing.process(state, base)[key]
    return env[:, loop.samples_per_period - 1 :: loop.samples_per_period]


def _renewal_index_without_stimulation(run: Any) -> np.ndarray:
    """Fear index (%) at the renewal CS of the no-stimulation copy, same seed.

    Read from the copy's recorded per-CS responses (``state_cs_phase``,
    ``state_cs_rate_A``/``_B`` ``_baseline``, sampled every chunk): the first
    sample after the renewal CS (phase 2) completes. NaN without them.
    """
    try:
        phase = run.timeseries["state_cs_phase_baseline"]
        a = run.timeseries["state_cs_rate_A_baseline"]
        b = run.timeseries["state_cs_rate_B_baseline"]
    except KeyError:
        return np.full(run.timeseries["amplitude"].shape[0], np.nan)
    out = np.full(phase.shape[0], np.nan)
    for i in range(phase.shape[0]):
        hit = np.flatnonzero(phase[i] == 2.0)
        if hit.size:
            k = hit[0]
            out[i] = 100.0 * a[i, k] / (a[i, k] + b[i, k])
    return out


def _vagal_metrics(m: dict[str, Any], exp: Any, duration_s: float) -> dict[str, np.ndarray]:
    """The vagal afferent drive per delivered pulse, and RR lengthening per charge.

    The vagal route weighs a pulse 1 in expiration and ``inspiration_gain``
    in inspiration (:mod:`closedloop.physiology.process`), so with a fraction
    ``f`` of the pulses in expiration the drive per pulse, relative to all of
    them in expiration, is ``f + g (1 - f)``: the noradrenergic trace per
    delivered charge over that of expiration-only delivery (exact for pulses
    of equal charge; the ramp's first pulses carry less).
    """
    f = np.asarray(m["physio_pulses_in_expiration_frac"], dtype=float)
    g = exp.config.physiology.vagal.inspiration_gain
    out = {"vagal_drive_per_pulse": f + g * (1.0 - f)}
    if "vns_charge_uc" in m:
        charge = np.asarray(m["vns_charge_uc"], dtype=float)
        out["charge_uc_per_min"] = charge * 60.0 / duration_s
        with np.errstate(divide="ignore", invalid="ignore"):
            out["rr_lengthening_ms_per_mc"] = np.where(
                charge > 0, np.asarray(m["physio_rr_lengthening_ms"]) / (charge * 1e-3), np.nan
            )
    return out


def _time_pathological(run: Any, exp: Any, thr: float) -> dict[str, np.ndarray]:
    """Fraction of periods above ``thr``, with stimulation and without, and the reduction."""
    out: dict[str, np.ndarray] = {}
    out["time_pathological"] = np.mean(run.timeseries["biomarker"] > thr, axis=1)
    out["time_pathological_none"] = np.mean(_biomarker_without_stimulation(run, exp) > thr, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["pathological_time_reduction"] = np.where(
            out["time_pathological_none"] > 0,
            1.0 - out["time_pathological"] / out["time_pathological_none"],
            np.nan,
        )
    return out


def score_run(path: str | Path, scenario: Scenario, exp: Any) -> dict[str, np.ndarray]:
    """Standard metrics of one run file (see the module docstring)."""
    run = load_run(path)
    m = run.metrics
    duration_s = run.timeseries["amplitude"].shape[1] * exp.loop.control_period_s
    per_min, per_hour = 60.0 / duration_s, 3600.0 / duration_s
    out = {
        "band_power_reduction": m["band_power_reduction"],
        "teed_relative": m["teed_relative"],
        "time_on_fraction": m["time_on_fraction"],
        "switches_per_min": m["n_switches"] * per_min,
        "deliveries_per_min": m["n_deliveries"] * per_min,
    }
    if scenario.kind == "beta" and "long_burst_time_reduction" in m:
        out["long_burst_time_reduction"] = m["long_burst_time_reduction"]
        out["long_burst_time"] = m["long_burst_time_fraction"]
        out["long_burst_time_none"] = m["long_burst_time_fraction_baseline"]
    thr = scenario.pathological_threshold
    if thr is not None:  # scenarios without a pathological biomarker level omit it
        out.update(_time_pathological(run, exp, thr))
    if scenario.kind == "seizure":
        from closedloop.analysis.seizures import seizure_metrics

        sz = seizure_metrics(run)
        out["seizures_per_hour"] = sz["n_seizures_stim"] * per_hour
        out["seizures_per_hour_none"] = sz["n_seizures_baseline"] * per_hour
        out["mean_seizure_duration_s"] = sz["mean_seizure_duration_stim_s"]
        out["mean_seizure_duration_s_none"] = sz["mean_seizure_duration_baseline_s"]
        out["seizure_time"] = sz["seizure_fraction_stim"]
        out["seizure_time_none"] = sz["seizure_fraction_baseline"]
        with np.errstate(divide="ignore", invalid="ignore"):
            out["seizure_time_reduction"] = np.where(
                sz["seizure_fraction_baseline"] > 0,
                1.0 - sz["seizure_fraction_stim"] / sz["seizure_fraction_baseline"],
                np.nan,
            )
        out["seizures_aborted"] = sz["n_seizures_aborted"]
        out["detections_per_hour"] = sz["n_detections"] * per_hour
        out["false_detections_per_hour"] = sz["n_false_detections"] * per_hour
        out["stimulation_s_per_hour"] = m["time_on_fraction"] * 3600.0
        out["detection_latency_s"] = sz["mean_detection_latency_s"]
    if scenario.target is not None:
        name, level = scenario.target["feature"], scenario.target["level"]
        k0 = int(round(exp.config.metrics.discard_s / exp.loop.control_period_s))
        seen = run.timeseries["biomarker" if name == "biomarker" else f"feature_{name}"]
        none = _biomarker_without_stimulation(run, exp, "envelope" if name == "biomarker" else name)
        out["control_error"] = np.sqrt(np.mean((seen[:, k0:] - level) ** 2, axis=1))
        out["control_error_none"] = np.sqrt(np.mean((none[:, k0:] - level) ** 2, axis=1))
        out["control_error_reduction"] = 1.0 - out["control_error"] / out["control_error_none"]
    for key in CLINICAL_METRICS.get(scenario.kind, ()):
        if key in m:
            out[key] = np.asarray(m[key], dtype=float)
    if scenario.kind == "fear" and "fear_renewal_index" in m:
        none = _renewal_index_without_stimulation(run)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["fear_renewal_index_none"] = none
            out["fear_renewal_reduction"] = 1.0 - np.asarray(m["fear_renewal_index"]) / none
    if scenario.kind == "plasticity" and "plasticity_response_change_pct" in m:
        out["plasticity_change"] = np.asarray(m["plasticity_response_change_pct"], float) / 100.0
    if scenario.kind == "vagal" and "physio_pulses_in_expiration_frac" in m:
        out.update(_vagal_metrics(m, exp, duration_s))
    if scenario.efficacy not in out:
        raise ValueError(
            f"scenario {scenario.name}: efficacy metric {scenario.efficacy!r} is not computed "
            "for this run (long-burst metrics need output.record_baseline: true)"
        )
    out["efficacy"] = out[scenario.efficacy]
    switching = np.minimum(1.0, out["switches_per_min"] / 60.0)
    out["score"] = (
        out["efficacy"]
        - SCORE_WEIGHTS["energy"] * out["teed_relative"]
        - SCORE_WEIGHTS["switching"] * switching
    )
    return out
