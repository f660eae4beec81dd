"""The causal phase feature: accuracy on noisy sinusoids, the ecHT itself, chunking, causality."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from closedloop.core.random import rng_states
from closedloop.sensing.chain import SensingChain

FS = 1000.0


def _state(chain: SensingChain, n: int):
    return chain.new_state(n, rng_states(np.random.SeedSequence(0).spawn(n)))


def _noisy_sine(freq_hz: float, snr_db: float, seconds: float, seed: int = 0):
    """Unit cosine plus white noise at ``snr_db`` (power over 0 to FS/2), and its phase."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    phase = 2 * np.pi * freq_hz * t + rng.uniform(0, 2 * np.pi)
    noise_std = np.sqrt(0.5 / 10 ** (snr_db / 10))
    return np.cos(phase) + noise_std * rng.standard_normal(t.size), phase


def _circular_stats_deg(error_rad: np.ndarray) -> tuple[float, float]:
    """Circular mean and circular standard deviation sqrt(-2 ln R), degrees."""
    mean = np.mean(np.exp(1j * error_rad))
    return float(np.degrees(np.angle(mean))), float(np.degrees(np.sqrt(-2 * np.log(abs(mean)))))


@pytest.mark.parametrize("freq_hz", [15.0, 20.0, 26.0])
def test_phase_of_a_noisy_sinusoid_is_accurate_across_the_band(freq_hz):
    # SNR 0 dB over the whole 0-500 Hz band (the sinusoid as strong as the
    # broadband noise): 20 deg of circular spread is 1.1 ms at 20 Hz, well
    # inside a beta cycle, which is what phase-locked stimulation needs.
    chain = SensingChain(rate_hz=FS, band_hz=(13.0, 30.0), features=("phase",))
    x, true_phase = _noisy_sine(freq_hz, 0.0, 12.0)
    est = chain.process(_state(chain, 1), x[None])["phase"][0]
    # Leave out the first second: window filling, frequency tracker settling.
    error = np.angle(np.exp(1j * (est - true_phase)))[1000:]
    mean_deg, std_deg = _circular_stats_deg(error)
    assert abs(mean_deg) < 5.0, f"{freq_hz} Hz: mean error {mean_deg:.1f} deg"
    assert std_deg < 25.0, f"{freq_hz} Hz: circular std {std_deg:.1f} deg"


def test_frequency_correction_removes_the_band_pass_phase_shift():
    # Without the correction the ecHT reports the phase of the causally
    # filtered signal, about 60 degrees off 3 Hz away from the band centre.
    chain = SensingChain(rate_hz=FS, band_hz=(13.0, 30.0), features=("phase",))
    x, true_phase = _noisy_sine(23.0, 20.0, 6.0, seed=3)
    taps, _ = chain.phase_filter()
    analytic = signal.lfilter(taps, [1.0], signal.sosfilt(chain.sos, x).astype(complex))
    raw_error = np.angle(np.exp(1j * (np.angle(analytic) - true_phase)))[1000:]
    est = chain.process(_state(chain, 1), x[None])["phase"][0]
    error = np.angle(np.exp(1j * (est - true_phase)))[1000:]
    assert abs(_circular_stats_deg(raw_error)[0]) > 45.0
    assert abs(_circular_stats_deg(error)[0]) < 3.0


def test_taps_equal_the_endpoint_corrected_hilbert_transform_of_each_window():
    # The FIR shortcut must be exactly Schreglmann et al.'s procedure: FFT of
    # the window, negative frequencies removed, times the causal band-pass
    # response, inverse FFT, last sample.
    chain = SensingChain(rate_hz=FS, band_hz=(13.0, 30.0), features=("phase",), phase_window_s=0.2)
    taps, _ = chain.phase_filter()
    w = taps.size
    y = np.random.default_rng(4).standard_normal(3 * w)
    ech = signal.butter(2, (13.0, 30.0), "bandpass", fs=FS, output="sos")
    _, response = signal.sosfreqz(ech, worN=np.abs(np.fft.fftfreq(w, 1 / FS)), fs=FS)
    mask = np.r_[
        1.0, np.full((w - 1) // 2, 2.0), [1.0] if w % 2 == 0 else [], np.zeros((w - 1) // 2)
    ]
    for end in (w - 1, 2 * w + 17, 3 * w - 1):
        window = y[end - w + 1 : end + 1]
        reference = np.fft.ifft(np.fft.fft(window) * mask * response)[-1]
        fir = np.sum(taps * y[end - np.arange(w)])
        np.testing.assert_allclose(fir, reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("chunk", [1, 7, 333])
def test_phase_in_chunks_equals_phase_in_one_go(chunk):
    chain = SensingChain(rate_hz=FS, features=("phase", "filtered"), noise_std=0.3)
    x = np.vstack([_noisy_sine(f, 5.0, 2.0, seed=s)[0] for s, f in enumerate((18.0, 24.0))])
    whole = chain.process(_state(chain, 2), x)
    state = _state(chain, 2)
    parts = [chain.process(state, x[:, s : s + chunk]) for s in range(0, x.shape[1], chunk)]
    for name in ("phase", "filtered"):
        np.testing.assert_array_equal(np.hstack([p[name] for p in parts]), whole[name])


def test_phase_is_causal():
    chain = SensingChain(rate_hz=FS, features=("phase",))
    x, _ = _noisy_sine(20.0, 10.0, 2.0)
    changed = x.copy()
    changed[1200:] = np.random.default_rng(9).standard_normal(800)
    a = chain.process(_state(chain, 1), x[None])["phase"][0]
    b = chain.process(_state(chain, 1), changed[None])["phase"][0]
    np.testing.assert_array_equal(a[:1200], b[:1200])
    assert not np.array_equal(a[1200:], b[1200:])


def test_phase_window_must_hold_enough_samples():
    with pytest.raises(ValueError, match="sensing.phase_window_s"):
        SensingChain(rate_hz=FS, phase_window_s=0.005)
