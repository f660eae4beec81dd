"""Burst detection and burst metrics (closedloop.analysis.bursts)."""

import numpy as np
import pytest

from closedloop.analysis.bursts import (
    DURATION_EDGES_S,
    BurstSettings,
    CausalBurstDetector,
    burst_metrics,
    burst_threshold,
    detect_bursts,
    duration_histogram,
    offline_envelope,
)
from closedloop.config import ConfigError, load_config

RATE = 50.0  # Hz: one envelope sample per 20 ms control period


def _envelope_with(bursts_s, duration_s=10.0, level=1.0, height=3.0):
    """A flat envelope with rectangular excursions (start s, length s) of ``height``."""
    env = np.full(int(duration_s * RATE), level)
    for start, length in bursts_s:
        a = int(round(start * RATE))
        env[a : a + int(round(length * RATE))] = height
    return env


def test_detect_bursts_finds_the_excursions_at_least_the_minimum_long():
    # 60 ms is too short for a 100 ms minimum; 100 ms is just long enough; the
    # last excursion runs to the end of the record and is closed there.
    env = _envelope_with([(1.0, 0.06), (2.0, 0.1), (4.0, 0.5), (9.8, 0.2)])
    (found,) = detect_bursts(env, RATE, threshold=2.0, min_duration_s=0.1)
    np.testing.assert_allclose(found.start_s, [2.0, 4.0, 9.8])
    np.testing.assert_allclose(found.duration_s, [0.1, 0.5, 0.2])
    np.testing.assert_allclose(found.amplitude, [3.0, 3.0, 3.0])
    counts = duration_histogram([found])[0]
    assert counts.sum() == 3 and counts[0] == 1 and counts[1] == 1 and counts[4] == 1
    assert DURATION_EDGES_S[-1] == np.inf


@pytest.mark.parametrize("chunks", [[500], [1], [7, 93, 1, 250]], ids=["whole", "1", "odd"])
def test_causal_detector_is_chunk_invariant_equal_offline_and_declares_after_the_minimum(chunks):
    rng = np.random.default_rng(4)
    # Rectified noise smoothed over 8 samples: excursions of varied length.
    noise = np.abs(rng.standard_normal((2, 507)))
    env = np.stack([np.convolve(row, np.ones(8) / 8, mode="valid") for row in noise])
    thr = burst_threshold(env, 75.0)
    offline = detect_bursts(env, RATE, thr, 0.1)
    det = CausalBurstDetector(2, RATE, thr, 0.1)
    flags, k, pos = [], 0, 0
    while pos < env.shape[1]:
        size = chunks[k % len(chunks)]
        flags.append(det.feed(env[:, pos : pos + size]))
        pos, k = pos + size, k + 1
    causal = det.finish()
    for a, b in zip(offline, causal, strict=True):
        assert a.duration_s.size > 3
        np.testing.assert_allclose(a.start_s, b.start_s)
        np.testing.assert_allclose(a.duration_s, b.duration_s)
        np.testing.assert_allclose(a.amplitude, b.amplitude)
    # A burst is declared at its 5th sample above threshold (100 ms at 50 Hz),
    # never earlier: flags depend on the past only.
    in_burst = np.concatenate(flags, axis=1)
    for i, found in enumerate(offline):
        expected = np.zeros(env.shape[1], bool)
        for start, dur in zip(found.start_s, found.duration_s, strict=True):
            a, n = int(round(start * RATE)), int(round(dur * RATE))
            expected[a + 4 : a + n] = True
        np.testing.assert_array_equal(in_burst[i], expected)


def test_burst_metrics_by_their_definitions():
    # Baseline: bursts of 0.2, 0.5 and 0.8 s in 10 s; with stimulation the
    # long ones are cut to 0.2 s. The threshold is the baseline's 75th
    # percentile (1.0: three quarters of the samples are at the flat level).
    base = _envelope_with([(1.0, 0.2), (3.0, 0.5), (6.0, 0.8)])
    stim = _envelope_with([(1.0, 0.2), (3.0, 0.2), (6.0, 0.2)], height=2.5)
    m, hist = burst_metrics(stim[None], base[None], RATE, BurstSettings(75.0, 0.1, 0.4))
    assert m["burst_threshold"][0] == 1.0
    assert m["burst_rate_hz"][0] == m["burst_rate_hz_baseline"][0] == pytest.approx(0.3)
    assert m["mean_burst_duration_s_baseline"][0] == pytest.approx(0.5)
    assert m["mean_burst_duration_s"][0] == pytest.approx(0.2)
    assert m["mean_burst_amplitude"][0] == pytest.approx(2.5)
    assert m["long_burst_rate_per_min_baseline"][0] == pytest.approx(2 / 10 * 60)
    assert m["long_burst_time_fraction_baseline"][0] == pytest.approx(1.3 / 10)
    assert m["long_burst_time_fraction"][0] == 0.0
    assert m["long_burst_time_reduction"][0] == pytest.approx(1.0)
    assert hist["duration_counts"][0, 1] == 3 and hist["duration_counts_baseline"].sum() == 3
    # No long bursts without stimulation: the reduction is undefined, not 0 or 1.
    none, _ = burst_metrics(stim[None], stim[None], RATE)
    assert np.isnan(none["long_burst_time_reduction"][0])


def test_offline_envelope_of_a_sine_is_its_amplitude():
    t = np.arange(0, 4.0, 1e-3)
    env = offline_envelope(3.0 * np.sin(2 * np.pi * 20.0 * t), 1000.0, (13.0, 30.0))
    np.testing.assert_allclose(env[500:-500], 3.0, rtol=0.02)


@pytest.mark.parametrize(
    ("override", "path"),
    [
        ("metrics.bursts.percentile=100", "metrics.bursts.percentile"),
        ("metrics.bursts.long_burst_s=0.05", "metrics.bursts"),
        ("metrics.bursts.min_duraton_s=0.1", "metrics.bursts.min_duraton_s"),
    ],
)
def test_bad_burst_settings_name_their_key_path(override, path):
    from pathlib import Path

    experiment = Path(__file__).resolve().parents[1] / "experiments" / "pd_beta_adbs.yaml"
    with pytest.raises(ConfigError) as err:
        load_config(experiment, [override])
    assert any(p.startswith(path) for p, _ in err.value.problems), err.value.problems
