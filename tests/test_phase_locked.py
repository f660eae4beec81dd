"""Phase-locked stimulation: the controller, and its effect on a synchronised Kuramoto ensemble."""

import math
from pathlib import Path

import numpy as np
import pytest

from closedloop.analysis.phase import plot_phase_histogram, pulse_phases, save_phase_histogram
from closedloop.cli.main import main
from closedloop.config import load_config
from closedloop.controllers import BUILTIN_CONTROLLERS, PhaseLocked
from closedloop.experiment import run_experiment
from closedloop.io import load_run
from closedloop.testing.controller import check_controller

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "kuramoto_phase_locked.yaml"
# Instant device ramp: every pulse at the full 1 mA, so pulses can be counted
# from the delivered charge.
SHORT = ["duration_s=3.0", "warmup_s=1.0", "device.ramp_rate_ma_per_s=1.0e6"]


def _circular_mean_and_length(angles):
    mean = np.mean(np.exp(1j * np.asarray(angles)))
    return math.degrees(np.angle(mean)), abs(mean)


def _drive(controller, phases, period_s=1e-3, biomarker=None):
    """Feed per-period phases, shape (periods, n); return the pulses commanded."""
    n = phases.shape[1]
    controller.reset(n, np.random.default_rng(0))
    bio = np.ones_like(phases) if biomarker is None else biomarker
    out = []
    for k in range(phases.shape[0]):
        command = controller.update((k + 1) * period_s, {"biomarker": bio[k], "phase": phases[k]})
        out.append(command["pulses"])
    return np.array(out)


def _ramp(freq_hz=20.0, seconds=1.0, period_s=1e-3, offsets=(0.0,)):
    t = (np.arange(int(seconds / period_s)) + 1) * period_s
    return np.mod(2 * np.pi * freq_hz * t[:, None] + np.array(offsets) + np.pi, 2 * np.pi) - np.pi


def test_conforms_and_is_registered():
    check_controller(PhaseLocked)
    check_controller(
        PhaseLocked(target_phase_rad=0.5, threshold=0.2, lead_s=0.003, pulses_per_trigger=3)
    )
    assert BUILTIN_CONTROLLERS["phase_locked"] is PhaseLocked


def test_one_pulse_per_cycle_just_after_the_target_phase():
    # A clean 20 Hz phase, sampled every 1 ms, three instances out of phase:
    # one trigger per cycle, in the first period at or past the target, so
    # the triggering phase lies within one period's advance (7.2 degrees).
    phases = _ramp(offsets=(0.0, 2.0, -1.0))
    target = 1.0
    pulses = _drive(PhaseLocked(target_phase_rad=target), phases)
    assert set(np.unique(pulses)) == {0.0, 1.0}
    assert np.all(np.abs(pulses.sum(axis=0) - 20) <= 1)
    fired = phases[pulses > 0]
    lag = np.mod(fired - target, 2 * np.pi)
    assert np.all(lag < 2 * np.pi * 20 * 1e-3 + 1e-9)


def test_lead_moves_the_trigger_earlier_by_the_lead_time():
    phases = _ramp(seconds=2.0)
    lead_s = 0.006  # 43 degrees of a 20 Hz cycle
    pulses = _drive(PhaseLocked(target_phase_rad=0.0, lead_s=lead_s), phases)
    fired = phases[pulses > 0][5:]  # after the frequency estimate has settled
    mean_deg, _ = _circular_mean_and_length(fired)
    expected = math.degrees(-2 * np.pi * 20 * lead_s) + 3.6  # + half a period's advance
    assert abs(mean_deg - expected) < 1.0


def test_biomarker_gate_and_minimum_interval():
    phases = _ramp(seconds=1.0)
    low = np.ones_like(phases)
    low[:500] = 0.1  # below the threshold for the first half second
    pulses = _drive(PhaseLocked(threshold=0.5), phases, biomarker=low)
    assert pulses[:500].sum() == 0 and pulses[500:].sum() >= 9
    # A phase estimate jittering back and forth across the target triggers
    # once per min_interval_s, not at every crossing.
    jitter = np.tile([[np.pi - 0.05], [-np.pi + 0.05]], (200, 1))
    pulses = _drive(PhaseLocked(min_interval_s=0.05), jitter)
    assert pulses.sum() == pytest.approx(400 * 1e-3 / 0.05, abs=1)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"pulses_per_trigger": 1.5}, "pulses_per_trigger"),
        ({"amplitude_ma": -1.0}, "amplitude_ma"),
        ({"pulse_width_us": 0.0}, "pulse_width_us"),
        ({"lead_s": -0.001}, "lead_s"),
        ({"min_interval_s": float("nan")}, "min_interval_s"),
        ({"target_phase_rad": float("inf")}, "target_phase_rad"),
    ],
)
def test_bad_parameters_are_refused_with_their_name(params, name):
    with pytest.raises(ValueError, match=name):
        PhaseLocked(**params).reset(1, np.random.default_rng(0))


@pytest.mark.slow
def test_trough_stimulation_desynchronises_and_peak_stimulation_synchronises(tmp_path, capsys):
    # Same seeds, same three ensembles: band power (<r^2>/2 of the mean field)
    # against the no-stimulation baseline. Pulses at the trough (pi) spread
    # the phases (Z(theta) = -sin(theta)); at the peak (0) they gather them.
    # Over seeds 3 to 6 the trough runs removed 29 to 91 % of the band power
    # per ensemble (mean 40 to 71 %), the peak runs added 12 to 27 %.
    short = [*SHORT, "n_instances=3"]
    sets = [arg for item in short for arg in ("--set", item)]
    code = main(["run", str(EXPERIMENT), "--out", str(tmp_path), *sets])
    assert code == 0
    assert "band_power_reduction" in capsys.readouterr().out
    assert (tmp_path / "kuramoto_phase_locked.png").stat().st_size > 10_000
    trough = load_run(tmp_path / "kuramoto_phase_locked.h5")
    exp = load_config(EXPERIMENT, [*short, "name=peak", "controller.params.target_phase_rad=0.0"])
    peak = load_run(run_experiment(exp, tmp_path).path)
    suppressed = trough.metrics["band_power_reduction"]
    amplified = -peak.metrics["band_power_reduction"]
    assert np.all(suppressed > 0.2) and suppressed.mean() > 0.35, suppressed
    assert np.all(amplified > 0.08) and amplified.mean() > 0.1, amplified
    for run, target in ((trough, math.pi), (peak, 0.0)):
        for i in range(3):
            info = pulse_phases(run, instance=i)
            # About one pulse per 20 Hz cycle, and every one the device
            # delivered (1 mA x 60 us = 0.06 uC each) found.
            n_pulses = info["time_s"].size
            assert 0.85 * 20 * 3.0 < n_pulses < 1.1 * 20 * 3.0
            assert n_pulses == round(run.metrics["charge_uc"][i] / 0.06)
            # Single pulses are deliveries, not switches of a train.
            assert run.metrics["n_deliveries"][i] == n_pulses
            assert run.metrics["n_switches"][i] == 0
            # The causal estimate at the trigger sits on the target: the lead
            # (1 ms) offsets the mean detection delay.
            est_deg, est_len = _circular_mean_and_length(info["estimated_rad"] - target)
            assert abs(est_deg) < 6.0 and est_len > 0.99
            if target == 0.0:
                # Near the peak the oscillation is large and regular: the
                # phase at each pulse (from the LFP before it) is on target.
                deg, length = _circular_mean_and_length(info["phase_rad"][2:] - target)
                assert abs(deg) < 10.0 and length > 0.95
    figure = save_phase_histogram(trough, tmp_path / "phase.png", instance=1)
    assert figure.stat().st_size > 10_000
    # Drawn without saving: the three panels, the polar one counting every pulse.
    before = sorted(tmp_path.rglob("*"))
    fig = plot_phase_histogram(trough, instance=1)
    assert sorted(tmp_path.rglob("*")) == before
    amp, polar, err = fig.axes
    assert polar.name == "polar" and err.get_xlabel() == "phase error (degrees)"
    n_pulses = np.isfinite(pulse_phases(trough, 1)["phase_rad"]).sum()
    assert sum(p.get_height() for p in polar.patches) == n_pulses


def test_latency_delays_the_pulses_and_lead_compensates(tmp_path):
    # A 5 ms latency lands pulses 2*pi*20 Hz*(5 + 0.5 + 0.5) ms = 43 degrees
    # late (latency, half a control period, half a sensing interval);
    # lead_s = 6 ms brings them back onto the target.
    base = [
        *SHORT,
        "duration_s=3.0",
        "output.figure=false",
        "output.record_baseline=false",
        "controller.params.target_phase_rad=0.0",
        "control.latency_s=0.005",
    ]
    errors = {}
    for lead in (0.0, 0.006):
        exp = load_config(EXPERIMENT, [*base, f"controller.params.lead_s={lead}", f"name=l{lead}"])
        info = pulse_phases(run_experiment(exp, tmp_path).path)
        errors[lead] = _circular_mean_and_length(info["phase_rad"][2:])[0]
    # Measured over seeds 3 to 6: 41.5 to 43.2 degrees, and -0.5 to 1.3.
    assert abs(errors[0.0] - 43.2) < 5.0, errors
    assert abs(errors[0.006]) < 4.0, errors


def test_a_missing_phase_feature_is_named():
    controller = PhaseLocked()
    controller.reset(1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="sensing feature 'phase'"):
        controller.update(0.001, {"biomarker": np.ones(1)})


def test_closed_loop_is_deterministic_and_chunk_invariant(tmp_path):
    common = [
        *SHORT,
        "duration_s=1.5",
        "output.figure=false",
        "output.record_baseline=false",
    ]
    runs = [
        load_run(run_experiment(load_config(EXPERIMENT, [*common, *extra]), tmp_path).path)
        for extra in (["name=a"], ["name=b", "output.chunk_s=0.37"], ["name=c", "seed=4"])
    ]
    for key in ("lfp", "feature_phase", "amplitude"):
        np.testing.assert_array_equal(runs[0].timeseries[key], runs[1].timeseries[key])
    assert not np.array_equal(runs[0].timeseries["lfp"], runs[2].timeseries["lfp"])
