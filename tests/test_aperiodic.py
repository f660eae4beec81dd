"""The causal 1/f exponent: power-law noise, and FOOOF's offline fit on the same data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import signal

from closedloop.sensing.chain import SensingChain

FS = 500.0  # Hz
DURATION_S = 60.0


def power_law_noise(chi: float, seed: int) -> np.ndarray:
    """Gaussian noise of power spectrum 1/f**chi (shaped white noise), shape (1, m)."""
    n = int(DURATION_S * FS)
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / FS)
    f[0] = np.inf  # no DC
    return np.fft.irfft(spectrum * f ** (-chi / 2.0), n)[None, :]


def streamed(x: np.ndarray, window_s: float = 2.0, chunks: list[int] | None = None) -> np.ndarray:
    """The exponent at every sample, the signal fed whole or in chunks."""
    chain = SensingChain(rate_hz=FS, features=("aperiodic_exponent",), aperiodic_window_s=window_s)
    state = chain.new_state(x.shape[0], np.zeros((x.shape[0], 2), dtype=np.uint64))
    if chunks is None:
        return chain.process(state, x)["aperiodic_exponent"]
    edges = np.cumsum([0, *chunks])
    return np.concatenate(
        [
            chain.process(state, x[:, a:b])["aperiodic_exponent"]
            for a, b in zip(edges[:-1], edges[1:], strict=True)
        ],
        axis=1,
    )


def offline_exponent(x: np.ndarray) -> float:
    """FOOOF's aperiodic exponent ('fixed' mode, no peaks) of the Welch PSD, 2-40 Hz."""
    # fooof 1.1 announces its successor, specparam, on import after calling
    # simplefilter("always"), which defeats an "ignore" filter: record it instead
    with warnings.catch_warnings(record=True):
        from fooof import FOOOF

    f, psd = signal.welch(x[0], fs=FS, nperseg=int(2 * FS))
    fm = FOOOF(aperiodic_mode="fixed", max_n_peaks=0, verbose=False)
    fm.fit(f, psd, [2.0, 40.0])
    return float(fm.get_params("aperiodic_params", "exponent"))


@pytest.mark.parametrize("chi", [1.0, 2.0, 3.0])
def test_exponent_of_power_law_noise_is_recovered(chi):
    x = power_law_noise(chi, seed=1)
    est = streamed(x)[0, int(4 * FS) :]  # past the 2 s window, twice
    # The time-averaged estimate within 0.1 of chi (measured: chi - 0.07); a
    # single sample within 0.6 at least 99 % of the time (sd about 0.18).
    assert abs(est.mean() - chi) < 0.1
    assert np.mean(np.abs(est - chi) < 0.6) > 0.99


@pytest.mark.parametrize("chi", [1.0, 3.0])
def test_bias_against_fooof_on_the_same_data_is_small_and_shrinks_with_the_window(chi):
    x = power_law_noise(chi, seed=2)
    offline = offline_exponent(x)
    assert abs(offline - chi) < 0.05  # the offline fit recovers the data's exponent
    bias = {w: streamed(x, w)[0, int(2 * w * FS) :].mean() - offline for w in (1.0, 2.0, 8.0)}
    # Measured: about -0.15, -0.075 and -0.02 (the mean of a log of a noisy band
    # power is below the log of its mean, most in the narrow low bands, and
    # less as the window grows).
    assert -0.2 < bias[1.0] < bias[2.0] < bias[8.0] < 0.02
    assert bias[2.0] > -0.1


def test_exponent_is_chunk_invariant():
    x = power_law_noise(2.0, seed=3)[:, :5000]
    whole = streamed(x)
    np.testing.assert_array_equal(streamed(x, chunks=[1, 999, 7, 2993, 1000]), whole)
    assert np.isfinite(whole).all()


def test_bad_aperiodic_settings_are_refused_naming_the_key():
    with pytest.raises(ValueError, match="sensing.aperiodic_band_hz"):
        SensingChain(rate_hz=FS, aperiodic_band_hz=(2.0, 300.0))
    with pytest.raises(ValueError, match="sensing.aperiodic_bands"):
        SensingChain(rate_hz=FS, aperiodic_bands=1)
    with pytest.raises(ValueError, match="sensing.aperiodic_window_s"):
        SensingChain(rate_hz=FS, aperiodic_window_s=0.0)
