"""Tests of the streaming Welch spectrum and band power."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import signal

from closedloop.device import Device
from closedloop.metrics import METRIC_INFO, StreamingPSD, band_power, summarize


def feed_in_random_chunks(psd: StreamingPSD, x: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    start = 0
    while start < x.shape[1]:
        stop = min(start + int(rng.integers(0, 3 * psd.nperseg)), x.shape[1])
        psd.feed(x[:, start:stop])  # empty chunks included
        start = stop


def welch(x: np.ndarray, fs: float, nperseg: int) -> tuple[np.ndarray, np.ndarray]:
    return signal.welch(
        x,
        fs,
        window="hann",
        nperseg=nperseg,
        noverlap=nperseg // 2,
        detrend="constant",
        scaling="density",
        axis=-1,
    )


@pytest.mark.parametrize(
    ("fs", "segment_s", "seed"),
    [(1000.0, 1.0, 0), (1000.0, 0.256, 1), (250.0, 2.0, 2), (2048.0, 0.5, 3)],
)
def test_streaming_psd_equals_welch(fs, segment_s, seed):
    psd = StreamingPSD(3, fs, segment_s)
    nperseg = psd.nperseg
    hop = nperseg - nperseg // 2  # scipy's step between segments
    rng = np.random.default_rng(seed)
    m = nperseg + 17 * hop
    t = np.arange(m) / fs
    x = rng.standard_normal((3, m)) + np.sin(2 * np.pi * 20.0 * t) + 3.0  # DC: detrended
    feed_in_random_chunks(psd, x, seed)
    f, expected = welch(x, fs, nperseg)
    np.testing.assert_allclose(psd.frequency_hz, f, rtol=0, atol=1e-12)
    assert psd.n_segments == 18
    np.testing.assert_allclose(psd.psd(), expected, rtol=1e-10, atol=1e-10 * expected.max())


def test_streaming_psd_odd_segment_length_equals_welch():
    # nperseg = 255: scipy steps by nperseg - nperseg // 2 = 128 samples.
    fs = 1000.0
    psd = StreamingPSD(2, fs, 0.255)
    nperseg = psd.nperseg
    assert nperseg == 255
    hop = nperseg - nperseg // 2
    x = np.random.default_rng(4).standard_normal((2, nperseg + 20 * hop))
    feed_in_random_chunks(psd, x, 4)
    _, expected = welch(x, fs, nperseg)
    np.testing.assert_allclose(psd.psd(), expected, rtol=1e-10, atol=1e-10 * expected.max())


def test_streaming_psd_chunking_does_not_matter():
    fs = 500.0
    x = np.random.default_rng(5).standard_normal((2, 5000))
    whole = StreamingPSD(2, fs, 1.0)
    whole.feed(x)
    for seed in range(3):
        chunked = StreamingPSD(2, fs, 1.0)
        feed_in_random_chunks(chunked, x, seed)
        assert chunked.n_segments == whole.n_segments
        np.testing.assert_allclose(chunked.psd(), whole.psd(), rtol=1e-13, atol=0)


def test_psd_of_fewer_than_eight_samples_is_nan_without_a_warning():
    psd = StreamingPSD(2, 1000.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NaN by design, not by a 0 / 0 that warns
        assert np.all(np.isnan(psd.psd()))
        psd.feed(np.ones((2, 7)))  # too few samples for any spectrum
        assert psd.n_segments == 0
        assert np.all(np.isnan(psd.psd()))


@pytest.mark.parametrize("m", [250, 500, 999])
def test_a_recording_shorter_than_a_segment_keeps_the_power_of_a_sine(m):
    # Parseval: a sine of amplitude A carries power A**2 / 2, whatever the
    # window; one short zero-padded segment must keep it (within the Hann
    # leakage outside a band 10 Hz either side of 20 Hz).
    fs, amplitude = 1000.0, 3.0
    t = np.arange(m) / fs
    psd = StreamingPSD(1, fs, 1.0)
    psd.feed(amplitude * np.sin(2 * np.pi * 20.0 * t + 0.3)[None, :])
    assert psd.n_segments == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        power = band_power(psd.frequency_hz, psd.psd(), (10.0, 30.0))[0]
    assert power == pytest.approx(amplitude**2 / 2, rel=0.03)
    assert psd.frequency_hz[1] == pytest.approx(1.0)  # the bins of a full 1 s segment


def test_one_full_segment_gives_the_welch_estimate_of_that_segment():
    fs = 1000.0
    x = np.random.default_rng(8).standard_normal((2, 1000))
    psd = StreamingPSD(2, fs, 1.0)
    psd.feed(x[:, :10])  # a first chunk much shorter than a hop
    psd.feed(x[:, 10:])
    assert psd.n_segments == 1
    _, expected = welch(x, fs, 1000)
    np.testing.assert_allclose(psd.psd(), expected, rtol=1e-10, atol=1e-10 * expected.max())


def test_default_segment_is_one_second_and_never_shorter_than_eight_samples():
    psd = StreamingPSD(1, 250.0)
    assert psd.nperseg == 250
    np.testing.assert_allclose(np.diff(psd.frequency_hz), 1.0, rtol=1e-12)  # 1 Hz bins
    assert StreamingPSD(1, 1000.0, 0.007).nperseg == 8
    assert StreamingPSD(1, 1000.0, 0.009).nperseg == 9


@pytest.mark.parametrize("freq_hz", [20.0, 21.3])  # on a bin and between bins
def test_band_power_of_sine_is_half_amplitude_squared(freq_hz):
    fs = 1000.0
    amplitude = np.array([[0.5], [2.0]])
    psd = StreamingPSD(2, fs, 1.0)
    hop = psd.nperseg - psd.nperseg // 2
    t = np.arange(psd.nperseg + 19 * hop) / fs
    feed_in_random_chunks(psd, amplitude * np.sin(2 * np.pi * freq_hz * t), 6)
    power = band_power(psd.frequency_hz, psd.psd(), (13.0, 30.0))
    np.testing.assert_allclose(power, amplitude[:, 0] ** 2 / 2, rtol=0.02)
    # Out of band: next to nothing.
    assert np.all(band_power(psd.frequency_hz, psd.psd(), (60.0, 200.0)) < 1e-3 * power)


def test_band_power_of_white_noise_is_variance_times_band_fraction():
    fs = 1000.0
    std = 1.5
    x = std * np.random.default_rng(7).standard_normal((2, 200_000))
    psd = StreamingPSD(2, fs, 1.0)
    psd.feed(x)
    power = band_power(psd.frequency_hz, psd.psd(), (100.0, 299.0))  # 200 bins of 1 Hz
    np.testing.assert_allclose(power, std**2 * 200 / (fs / 2), rtol=0.05)


# -- band power and the per-run metrics on spectra with known values ---------------------


def test_band_power_counts_exactly_the_bins_within_the_edges_both_included():
    # Bin k holds 2**k, so each sum says exactly which bins it took; bins 0.5 Hz apart.
    frequency_hz = np.arange(21) * 0.5
    psd = np.array([2.0 ** np.arange(21), 3 * 2.0 ** np.arange(21)])
    # 1.0 and 2.5 Hz are bins 2 and 5: both ends count, the bin on the upper edge too.
    np.testing.assert_array_equal(
        band_power(frequency_hz, psd, (1.0, 2.5)), np.array([1, 3]) * (4 + 8 + 16 + 32) * 0.5
    )
    # Edges between bins: bins 3 and 4 (1.5 and 2.0 Hz) only.
    np.testing.assert_array_equal(
        band_power(frequency_hz, psd, (1.25, 2.25)), np.array([1, 3]) * (8 + 16) * 0.5
    )
    # A band of one bin, the last bin, and a band between two bins.
    assert band_power(frequency_hz, psd, (2.5, 2.5))[0] == 32 * 0.5
    assert band_power(frequency_hz, psd, (9.5, 10.0))[0] == (2.0**19 + 2.0**20) * 0.5
    np.testing.assert_array_equal(band_power(frequency_hz, psd, (2.6, 2.9)), [0.0, 0.0])


def test_band_power_uses_the_bin_width_on_an_axis_that_does_not_start_at_zero():
    # A zoomed spectrum, bins 0.25 Hz apart from 10 Hz: the width is f[1] - f[0].
    frequency_hz = 10.0 + 0.25 * np.arange(8)
    psd = np.ones((1, 8))
    np.testing.assert_array_equal(band_power(frequency_hz, psd, (10.5, 11.0)), [3 * 0.25])


def _spectra(scale: float, fs: float = 500.0, seed: int = 3) -> StreamingPSD:
    """Welch spectra of one fixed noisy signal times ``scale`` (power scales by scale**2)."""
    x = np.random.default_rng(seed).standard_normal((2, 6000))
    x += np.sin(2 * np.pi * 20.0 * np.arange(6000) / fs)
    psd = StreamingPSD(2, fs, 1.0)
    psd.feed(np.array([[scale], [2 * scale]]) * x)
    return psd


def test_summarize_gives_the_documented_definition_of_every_metric():
    device = Device()
    base, stim = _spectra(2.0), _spectra(1.0)  # a quarter of the baseline power
    reference = {"amplitude_ma": 2.5, "frequency_hz": 130.0, "pulse_width_us": 60.0}
    duration_s = 6.0
    teed_ref = device.teed_j(2.5, 130.0, 60.0, duration_s)
    totals = {
        "energy_j": np.array([0.4, 0.0]) * teed_ref,
        "time_on_s": np.array([1.5, 0.0]),
        "n_switches": np.array([9, 0]),
        # On at the start, then off and on twice: five transitions from off.
        "n_train_switches": np.array([5, 0]),
        "n_deliveries": np.array([3, 0]),
        "charge_uc": np.array([12.0, 0.0]),
        "n_rejected": np.array([2, 0]),
    }
    mean_amplitude = np.array([0.7, 0.0])
    band = (13.0, 30.0)
    out = summarize(stim, base, totals, mean_amplitude, duration_s, device, reference, band)
    assert set(out) == set(METRIC_INFO)
    p_stim = band_power(stim.frequency_hz, stim.psd(), band)
    p_base = band_power(base.frequency_hz, base.psd(), band)
    np.testing.assert_allclose(p_stim / p_base, 0.25, rtol=1e-12)  # the premise
    np.testing.assert_array_equal(out["band_power_stim"], p_stim)
    np.testing.assert_array_equal(out["band_power_baseline"], p_base)
    # 1 - P_stim / P_base: a quarter of the power left is a reduction of 0.75,
    # not (base - stim) / stim = 3 nor stim / base = 0.25.
    np.testing.assert_allclose(out["band_power_reduction"], 0.75, rtol=1e-12)
    # Relative to continuous stimulation at the reference settings, not the device's.
    np.testing.assert_allclose(out["teed_relative"], [0.4, 0.0], rtol=1e-12)
    np.testing.assert_array_equal(out["teed_j"], totals["energy_j"])
    np.testing.assert_allclose(out["time_on_fraction"], [0.25, 0.0], rtol=1e-12)
    # Switches of the train after its first turn-on; bursts are deliveries.
    np.testing.assert_array_equal(out["n_switches"], [4, 0])
    np.testing.assert_array_equal(out["n_deliveries"], [3, 0])
    np.testing.assert_array_equal(out["mean_amplitude_ma"], mean_amplitude)
    np.testing.assert_array_equal(out["charge_uc"], [12.0, 0.0])
    np.testing.assert_array_equal(out["n_rejected_commands"], [2, 0])


def test_summarize_reports_no_reduction_without_a_baseline_and_negative_for_more_beta():
    device = Device()
    totals = {
        "energy_j": np.zeros(2),
        "time_on_s": np.zeros(2),
        "n_switches": np.zeros(2),
        "n_train_switches": np.zeros(2),
        "n_deliveries": np.zeros(2),
        "charge_uc": np.zeros(2),
        "n_rejected": np.zeros(2),
    }
    reference = {"amplitude_ma": 2.0, "frequency_hz": 130.0, "pulse_width_us": 60.0}
    out = summarize(_spectra(1.0), None, totals, np.zeros(2), 2.0, device, reference, (13, 30))
    assert "band_power_reduction" not in out and "band_power_baseline" not in out
    # Stimulation that leaves four times the baseline power: a reduction of -3.
    more = summarize(
        _spectra(2.0), _spectra(1.0), totals, np.zeros(2), 2.0, device, reference, (13, 30)
    )
    np.testing.assert_allclose(more["band_power_reduction"], -3.0, rtol=1e-12)
