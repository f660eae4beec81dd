"""Physiological clocks: breathing and heart statistics, determinism, gating, vagal effects."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from closedloop import check_controller
from closedloop.config import ConfigError, load_config
from closedloop.controllers import PhysioGated
from closedloop.experiment import run_experiment
from closedloop.physiology import (
    BreathTable,
    CardiacParams,
    Heart,
    PhysiologyClock,
    RespirationParams,
    hrv_metrics,
)

EXPERIMENT = "experiments/avns_respiratory_gated.yaml"


def _seeds(n, root=7):
    return np.random.SeedSequence(root).spawn(n)


def _beats(n, seconds, grid_s=0.01, root=7, vagal_uc=0.0, **cardiac):
    """R-peak times of ``n`` subjects and the respiratory phase at each beat's midpoint."""
    seeds = _seeds(n, root)
    breaths = BreathTable(RespirationParams(), [s.spawn(1)[0] for s in _seeds(n, root + 1)])
    heart = Heart(CardiacParams(**cardiac), grid_s, seeds)
    cursor = breaths.cursor()
    peaks: list[list[float]] = [[] for _ in range(n)]
    for h in range(int(round(seconds / grid_s))):
        r = heart.advance(breaths.state(h * grid_s, cursor)["phase"], np.full(n, vagal_uc))
        for i in np.flatnonzero(~np.isnan(r)):
            peaks[i].append(r[i])
    return [np.array(p) for p in peaks], breaths


def _phase_at(breaths, i, t):
    """True respiratory phase (cycles) of subject ``i`` at times ``t``, from its breath table."""
    k = np.searchsorted(breaths.onsets[i], t, side="right") - 1
    return (t - breaths.onsets[i, k]) / (breaths.ends[i, k] - breaths.onsets[i, k])


def test_breathing_has_the_documented_mean_variability_and_memory():
    """Over 200 subjects x 64 breaths: mean period 4 s, CV 0.2 (Tobin et al. 1988: 20.8 %),
    Ti/Ttot 0.42 with CV about 0.18 (17.9 %), lag-one autocorrelation 0.25."""
    table = BreathTable(RespirationParams(), _seeds(200))
    period = table.ends - table.onsets
    assert period.mean() == pytest.approx(4.0, rel=0.02)
    cv = period.std(axis=1) / period.mean(axis=1)
    assert np.median(cv) == pytest.approx(0.2, abs=0.02)
    assert table.fractions.mean() == pytest.approx(0.42, abs=0.01)
    f_cv = table.fractions.std(axis=1) / table.fractions.mean(axis=1)
    assert np.median(f_cv) == pytest.approx(0.18, abs=0.02)
    logp = np.log(period)
    x = logp - logp.mean(axis=1, keepdims=True)
    r1 = (x[:, 1:] * x[:, :-1]).sum(axis=1) / (x * x).sum(axis=1)
    assert np.mean(r1) == pytest.approx(0.25, abs=0.05)
    # Breaths tile time: each starts where the last ended.
    np.testing.assert_array_equal(table.onsets[:, 1:], table.ends[:, :-1])


@pytest.mark.slow
def test_heart_rate_variability_meets_healthy_adult_norms():
    """Five minutes of 24 subjects: mean RR, SDNN and RMSSD near the pooled short-term norms
    (926 ms, 50 ms, 42 ms; Nunan et al. 2010, recalled), computed here from the R-peaks."""
    peaks, _ = _beats(24, 300.0)
    rr = [np.diff(p) * 1e3 for p in peaks]
    mean_rr = np.mean([r.mean() for r in rr])
    sdnn = np.median([r.std(ddof=1) for r in rr])
    rmssd = np.median([np.sqrt(np.mean(np.diff(r) ** 2)) for r in rr])
    assert mean_rr == pytest.approx(926.0, rel=0.03)
    assert sdnn == pytest.approx(50.0, rel=0.15)
    assert rmssd == pytest.approx(42.0, rel=0.15)
    # hrv_metrics is the same arithmetic on its own.
    assert hrv_metrics(peaks[0])["rmssd_ms"] == pytest.approx(np.sqrt(np.mean(np.diff(rr[0]) ** 2)))


def test_respiratory_sinus_arrhythmia_shortens_beats_around_end_of_inspiration():
    """RR against -cos(2 pi phase) at the beat's midpoint: slope about -a RR0 (IPFM with a
    small modulation, RR = RR0 / (1 + a c)), here without other variability."""
    a = 0.04
    peaks, breaths = _beats(8, 120.0, slow_sd=0.0, beat_jitter_s=0.0, rsa_fraction=a)
    slopes = []
    for i, p in enumerate(peaks):
        mid = 0.5 * (p[1:] + p[:-1])
        c = -np.cos(2 * math.pi * _phase_at(breaths, i, mid))
        slopes.append(np.polyfit(c, np.diff(p), 1)[0])
    # The rate is averaged over a beat (about a quarter breath): attenuated by ~10 %.
    assert np.mean(slopes) == pytest.approx(-a * 0.93, rel=0.25)
    assert max(slopes) < 0


def test_a_steady_vagal_tone_lengthens_rr_by_one_plus_the_tone():
    """A constant input u (uC per step) settles the tone at v = g u / (1 - exp(-dt/tau));
    the IPFM rate is divided by 1 + v, so the mean RR is multiplied by it."""
    g, u, dt, tau = 0.002, 0.5, 0.01, 1.5
    v = g * u / (1.0 - math.exp(-dt / tau))
    sham, _ = _beats(6, 120.0, vagal_gain_per_uc=g, vagal_tau_s=tau)
    stim, _ = _beats(6, 120.0, vagal_uc=u, vagal_gain_per_uc=g, vagal_tau_s=tau)
    late = [np.diff(p[p > 20.0]).mean() for p in stim]  # after the tone settled
    late_sham = [np.diff(p[p > 20.0]).mean() for p in sham]
    ratio = np.mean(late) / np.mean(late_sham)
    assert ratio == pytest.approx(1.0 + v, rel=0.02)


def _pulses(n, m, every=7):
    """Synthetic chunk rows: a pulse every ``every`` periods, 1 mA, 450 us."""
    count = np.cumsum((np.arange(m) % every == 0)[None, :].repeat(n, 0), axis=1).astype(float)
    return {
        "pulse_count": count,
        "amplitude": np.ones((n, m)),
        "pulse_width": np.full((n, m), 450.0),
    }


def _drive(clock, rows, chunks):
    """Feed ``rows`` to ``clock`` in chunks of the given sizes, reading features each period."""
    clock.reset(3, _seeds(3, 11))
    seen = []
    start = 0
    for m in chunks:
        for k in range(start, start + m):
            seen.append(clock.live_features((k + 1) * 0.01))
        part = {key: v[:, start : start + m] for key, v in rows.items()}
        clock.observe(start * 0.01, 0.01, part)
        start += m
    return seen, clock.drain_events(), clock.metrics()


def test_clock_is_deterministic_and_chunk_invariant():
    """The same seeds and pulses give bit-identical features, events and metrics whether
    the periods arrive in chunks of 10 or of 1, 3 and 6."""
    rows = _pulses(3, 600)
    a = _drive(PhysiologyClock(0.01), rows, [10] * 60)
    b = _drive(PhysiologyClock(0.01), rows, [1, 3, 6] * 60)
    for fa, fb in zip(a[0], b[0], strict=True):
        for key in fa:
            np.testing.assert_array_equal(fa[key], fb[key])
    for table in a[1]:
        for col in a[1][table]:
            np.testing.assert_array_equal(a[1][table][col], b[1][table][col])
    for key in a[2]:
        np.testing.assert_array_equal(a[2][key][0], b[2][key][0])
    assert a[1]["r_peaks"]["time_s"].size >= 3 * 5  # the hearts beat


def test_heartbeats_and_bursts_do_not_depend_on_the_clock_step(tmp_path):
    """In the loop: the clock stepping every 0.1 s or every 0.2 s (its hearts then run
    0.2 s ahead of the loop either way) gives the same R-peaks, breaths and bursts, bit
    for bit: the controller reads the same live features every period."""
    tables = {}
    for step in (0.1, 0.2):
        out = _run(
            tmp_path, "cardiac", f"s{step}", 4.0,
            **{"controller.params.start_s": 0.0, "physiology.period_s": step},
        )  # fmt: skip
        with h5py.File(out.path) as f:
            tables[step] = {
                k: f[f"events/physio_{k}/time_s"][:] for k in ("r_peaks", "breaths", "bursts")
            }
    for k, times in tables[0.1].items():
        assert times.size > 0
        np.testing.assert_array_equal(times, tables[0.2][k])


def test_heart_latency_must_cover_the_step():
    with pytest.raises(ValueError, match="vagal_latency_s"):
        PhysiologyClock(0.01, period_s=0.5)


def _run(tmp_path, gate, name, duration_s=19.5, **extra):
    exp = load_config(
        EXPERIMENT,
        [
            "n_instances=1",
            f"duration_s={duration_s}",
            f"controller.params.gate={gate}",
            "output.figure=false",
            "output.record_baseline=false",
            *(f"{k}={v}" for k, v in extra.items()),
        ],
    )
    return run_experiment(exp, tmp_path / name)


@pytest.mark.slow
def test_gated_bursts_land_in_the_target_phase_within_100_ms(tmp_path):
    """Against the breath table in the run file (the true onsets): every burst of the
    expiration arm starts in expiration, within 100 ms of its onset (Dabiri et al. 2022's
    accuracy); the inspiration arm's in inspiration; every delivered pulse is in phase."""
    for gate, expiring in (("expiration", True), ("inspiration", False)):
        out = _run(tmp_path, gate, gate, 12.0, **{"controller.params.start_s": 0.0})
        with h5py.File(out.path) as f:
            onset = f["events/physio_breaths/time_s"][:]
            exp_onset = f["events/physio_breaths/expiration_onset_s"][:]
            bursts = f["events/physio_bursts/time_s"][:]
            count = f["timeseries/pulse_count"][0]
            amplitude = f["timeseries/amplitude"][0]
        assert bursts.size >= 3
        # Period k of the record covers [k, k + 1) control periods.
        t_pulse = np.flatnonzero((np.diff(count, prepend=0.0) > 0) & (amplitude > 0)) * 0.01
        starts = exp_onset if expiring else onset
        for times in (bursts, t_pulse):
            k = np.searchsorted(onset, times, side="right") - 1
            in_exp = times >= exp_onset[k]
            assert np.all(in_exp == expiring)
        k = np.searchsorted(starts, bursts, side="right") - 1
        delay = bursts - starts[k]
        assert np.all((delay >= 0) & (delay <= 0.1))
        assert out.metrics["physio_pulses_in_expiration_frac"][0] == float(expiring)


@pytest.mark.slow
def test_cardiac_gated_bursts_follow_each_r_peak_by_the_delay_plus_the_sensor_delay(tmp_path):
    """Against the R-peaks in the run file: a burst 0.1 s after every R-peak starts
    0.15-0.17 s after it (0.05 s sensor delay, one 10 ms control period of quantisation)."""
    out = _run(
        tmp_path, "cardiac", "cardiac", 6.0,
        **{"controller.params.start_s": 0.0, "controller.params.delay_s": 0.1},
    )  # fmt: skip
    with h5py.File(out.path) as f:
        peaks = f["events/physio_r_peaks/time_s"][:]
        bursts = f["events/physio_bursts/time_s"][:]
    assert bursts.size >= 4
    k = np.searchsorted(peaks, bursts, side="right") - 1
    delay = bursts - peaks[k]
    assert np.all((delay >= 0.15 - 1e-9) & (delay <= 0.17 + 1e-9))
    # One burst per beat after the first detected one.
    assert bursts.size >= np.count_nonzero(peaks < 6.0 - 0.7) - 1


@pytest.mark.parametrize("gate", ["expiration", "cardiac", "none"])
def test_the_gated_controller_passes_the_conformance_checks(gate):
    assert check_controller(PhysioGated(gate=gate)) is None


def test_an_unknown_gate_is_refused_by_name():
    with pytest.raises(ConfigError, match="controller.params.*gate must be one of"):
        load_config(EXPERIMENT, ["controller.params.gate=systole"])


@pytest.mark.slow
def test_expiration_gated_vns_beats_inspiration_gated_on_heart_and_extinction(tmp_path):
    """The same subject and the same burst schedule per breath: expiration-gated bursts
    raise the noradrenergic trace more, lengthen RR intervals more and leave less fear at
    the end of extinction than inspiration-gated ones (the direction of eRAVANS > iRAVANS,
    Sclocco et al. 2019, as the gate of the vagal route makes it)."""
    m = {g: _run(tmp_path, g, g).metrics for g in ("expiration", "inspiration")}
    e, i = m["expiration"], m["inspiration"]
    assert e["physio_ne_mean"][0] > i["physio_ne_mean"][0]
    assert e["physio_rr_lengthening_ms"][0] > i["physio_rr_lengthening_ms"][0] > 0
    assert e["fear_index_end_extinction"][0] < i["fear_index_end_extinction"][0]


@pytest.mark.slow
def test_experiment_runs_from_the_cli_to_a_complete_file_and_figure(tmp_path):
    cmd = [str(Path(sys.executable).parent / "closedloop"), "run", EXPERIMENT, "--out"]
    done = subprocess.run(
        [*cmd, str(tmp_path), "--set", "duration_s=6.0", "--set", "n_instances=2"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    path = tmp_path / "avns_respiratory_gated.h5"
    with h5py.File(path) as f:
        assert f.attrs["status"] == "complete"
        assert f["events/physio_r_peaks/time_s"].size > 2 * 5  # two hearts, 6 s
        assert f["timeseries/physio_resp_phase"].shape == (2, 61)
    assert path.with_suffix(".png").stat().st_size > 10_000


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ("physiology.vagal.modulates={k_il: 1.0}", "physiology.vagal.modulates.k_il"),
        ("physiology.respiration.period_s=-1", "physiology.respiration.period_s"),
        ("physiology.cardiac.vagal_latency_s=0.05", "physiology.cardiac.vagal_latency_s"),
        ("physiology.rate_hz=3", "physiology"),
    ],
)
def test_bad_physiology_blocks_name_their_key(override, where):
    with pytest.raises(ConfigError) as err:
        load_config(EXPERIMENT, [override])
    assert where in str(err.value)
    # The block's own problem only: not the features the controller then lacks.
    assert "needs feature" not in str(err.value)


def test_bursts_wait_for_the_session_and_the_neural_gate():
    """Expiration windows every 10 periods; bursts only from start_s, and only while the
    biomarker is above its threshold (a window stays armed until it is)."""
    c = PhysioGated(gate="expiration", start_s=0.2, feature="biomarker", threshold=1.0)
    c.reset(1, np.random.default_rng(0))
    fired = []
    for k in range(60):
        t = 0.01 * (k + 1)
        since = 0.01 * (k % 10)  # a new expiration starts every 0.1 s
        bio = 2.0 if k >= 45 or k in (5, 33) else 0.0
        out = c.update(
            t,
            {
                "physio_resp_expiring": np.array([1.0]),
                "physio_resp_time_in_phase_s": np.array([since]),
                "biomarker": np.array([bio]),
            },
        )
        if out["pulses"][0] > 0:
            fired.append(k)
    # k = 5 is before start_s; at k = 33 the window armed since k = 30 fires; from k = 45
    # the biomarker stays high: the window of k = 40 fires at 45, the next at its start, 50.
    assert fired == [33, 45, 50]
