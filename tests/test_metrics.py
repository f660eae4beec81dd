"""Tests of the streaming Welch spectrum and band power."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from closedloop.metrics import StreamingPSD, band_power


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


def test_psd_before_a_full_segment_is_nan():
    psd = StreamingPSD(2, 1000.0, 1.0)
    psd.feed(np.ones((2, 999)))
    assert psd.n_segments == 0
    assert np.all(np.isnan(psd.psd()))


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
