"""Phase-triggered triplets: the plasticity rule, the experiment file and the arms compared."""

from __future__ import annotations

import math
import subprocess
import sys

import h5py
import numpy as np
import pytest
from scipy import integrate, special

from closedloop.analysis.phase_triggered import compare_arms
from closedloop.analysis.plasticity import PhasePlasticity, burst_onsets


def test_rule_is_zero_on_average_over_random_phases_and_signed_at_trough_and_peak():
    rule = PhasePlasticity(kappa=2.0, gain_pct=1.0)
    mean, _ = integrate.quad(lambda p: float(rule.change_pct(np.array(p))), -math.pi, math.pi)
    assert mean / (2 * math.pi) == pytest.approx(0.0, abs=1e-9)
    # Analytic: K(pi) = 1 and K(0) = exp(-2 kappa); <K> = exp(-kappa) I0(kappa).
    k_mean = math.exp(-2.0) * special.iv(0, 2.0)
    assert float(rule.change_pct(np.array(math.pi))) == pytest.approx(1.0 - k_mean)
    assert float(rule.change_pct(np.array(0.0))) == pytest.approx(math.exp(-4.0) - k_mean)


def test_readout_sums_decaying_changes():
    rule = PhasePlasticity(gain_pct=2.0, tau_s=10.0)
    step = float(rule.change_pct(np.array(math.pi)))
    t = np.array([0.5, 1.0, 5.0, 21.0])
    e = rule.excitability_pct(np.array([1.0, 11.0]), np.array([math.pi, math.pi]), t)
    expected = [0.0, step, step * math.exp(-0.4), step * (math.exp(-2.0) + math.exp(-1.0))]
    np.testing.assert_allclose(e, expected)


def test_burst_onsets_group_triplets():
    times = np.array([1.0, 1.01, 1.02, 2.0, 2.01, 2.02, 2.5])
    np.testing.assert_array_equal(burst_onsets(times), [0, 3, 6])


def test_rule_parameters_are_checked():
    with pytest.raises(ValueError, match="tau_s"):
        PhasePlasticity(tau_s=0.0)
    with pytest.raises(ValueError, match="kappa"):
        PhasePlasticity(kappa=-1.0)


@pytest.mark.slow
def test_experiment_file_runs_from_the_cli(tmp_path, experiment_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "closedloop.cli.main",
            "run",
            str(experiment_path("tms_phase_triggered")),
            "--out",
            str(tmp_path),
            "--set",
            "duration_s=4.0",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    with h5py.File(tmp_path / "tms_phase_triggered.h5") as f:
        assert f.attrs["status"] == "complete"
        # The plasticity readout: one value per 1 s chunk, the bursts it counted, the metric.
        assert f["timeseries/plasticity_excitability_pct"].shape == (1, 4)
        bursts = f["events/plasticity_bursts/phase_rad"][:]
        assert bursts.size >= 4
        change = f["events/plasticity_bursts/change_pct"][:]
        final = f["metrics/plasticity_response_change_pct"][()]
        # With tau_s = 1800 s, 4 s of decay is negligible: the end value is the sum.
        assert np.ravel(final)[0] == pytest.approx(change.sum(), rel=1e-2)
    assert (tmp_path / "tms_phase_triggered.png").stat().st_size > 0


@pytest.mark.slow
def test_triplets_land_at_their_target_and_the_readout_follows(tmp_path, experiment_path):
    rows = compare_arms(
        experiment_path("tms_phase_triggered"),
        tmp_path,
        ["duration_s=10.0", "output.figure=false", "output.record_baseline=false"],
        arms=("trough", "peak"),
        estimators=("phase_ar",),
    )
    by_arm = {r["arm"]: r for r in rows}
    for r in rows:
        assert r["bursts"] >= 7, r["bursts"]  # at most one a second, 1 s warm-up
        assert abs(r["mean_error_deg"]) < 30.0 and r["within"] > 0.8, r
    assert by_arm["trough"]["response_change_pct"] > 0 > by_arm["peak"]["response_change_pct"]


def _crossings(controller, n_cycles=400, steps=40):
    """Drive a controller with a clean phase ramp; the commands of every period."""
    controller.reset(1, np.random.default_rng(3))
    out = []
    for k in range(n_cycles * steps):
        phase = np.array([(2 * np.pi * k / steps + np.pi) % (2 * np.pi) - np.pi])
        feats = {"biomarker": np.ones(1), controller.phase_feature: phase}
        out.append((phase[0], controller.update(0.001 * (k + 1), feats)))
    return out


def test_phase_locked_under_tms_sends_intensity_and_leaves_bursts_alone():
    from closedloop.controllers import PhaseLocked

    c = PhaseLocked(intensity_pct_rmt=100.0, phase_feature="phase_ar", min_interval_s=0.0)
    commands = [cmd for _, cmd in _crossings(c, n_cycles=3)]
    assert all(
        "amplitude_ma" not in cmd and cmd["intensity_pct_rmt"][0] == 100.0 for cmd in commands
    )
    pulses = np.array([cmd["pulses"][0] for cmd in commands])
    # One trigger a cycle; NaN ("no change") between, never a 0 that would stop a triplet.
    assert np.sum(pulses == 1.0) in (2, 3) and np.isnan(pulses[pulses != 1.0]).all()


def test_random_target_fires_at_uniform_phases():
    from closedloop.controllers import PhaseLocked

    c = PhaseLocked(random_target=True, min_interval_s=0.0)
    fired = np.array([phase for phase, cmd in _crossings(c) if cmd["pulses"][0] > 0])
    assert fired.size > 300
    # Uniform on the circle: small resultant, and every quarter visited.
    assert abs(np.mean(np.exp(1j * fired))) < 0.15
    counts = np.histogram(fired, bins=4, range=(-np.pi, np.pi))[0]
    assert counts.min() > 0.15 * fired.size


@pytest.mark.parametrize("chunk", [37, 1000, 4000])
def test_streaming_readout_finds_bursts_and_their_phase_on_a_known_signal(chunk):
    from closedloop.analysis.plasticity import PlasticityReadout

    rate, period, f = 1000.0, 0.001, 10.0
    t = np.arange(4000) / rate
    # Each sample is the mean over its interval: the cosine's mean over [j, j+1) / rate.
    w = 2 * np.pi * f
    lfp = (np.sin(w * (t + 1 / rate)) - np.sin(w * t)) / (w / rate)
    onsets = np.array([500, 1230, 2015, 3333])  # periods where a triplet starts
    count = np.zeros(4000)
    for k in onsets:
        count[k : k + 10] += 1
        count[k + 10 : k + 20] += 1
        count[k + 20 :] += 1
    count = np.cumsum(np.diff(count, prepend=0) > 0)  # pulses so far, three per triplet
    rule = PhasePlasticity(gain_pct=1.0, tau_s=5.0)
    readout = PlasticityReadout(rule, 1, rate, period, f)
    for a in range(0, 4000, chunk):
        value = readout.feed(lfp[None, a : a + chunk], count[None, a : a + chunk].astype(float))
    true_phase = np.angle(np.exp(1j * w * onsets * period))
    np.testing.assert_allclose(readout.times_[0], onsets * period)
    np.testing.assert_allclose(
        np.exp(1j * np.array(readout.phases_[0])), np.exp(1j * true_phase), atol=1e-6
    )
    expected = rule.excitability_pct(onsets * period, true_phase, np.array([4.0]))[0]
    assert value[0] == pytest.approx(expected, rel=1e-6)
    assert readout.metrics()["plasticity_bursts"][0] == 4


def test_plasticity_block_errors_name_the_key(tmp_path, experiment_config, write_experiment):
    from closedloop.config import ConfigError, load_config

    cfg = experiment_config("tms_phase_triggered")
    cfg["plasticity"]["tau_s"] = 0.0
    with pytest.raises(ConfigError, match="plasticity.tau_s"):
        load_config(write_experiment(cfg, name="bad_plasticity"))
