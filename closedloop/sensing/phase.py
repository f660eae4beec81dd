"""Feature ``phase``: instantaneous phase of the band-passed signal by the ecHT.

Feature ``"phase"`` (rad, in ``[-pi, pi)``, 0 at the peaks of the band-passed
signal, ``pi`` at its troughs, increasing with time) is the instantaneous
phase of the band-passed signal at the current sample, by the
endpoint-corrected Hilbert transform (ecHT) of Schreglmann et al. (2021): over
a window of the last ``phase_window_s`` seconds of the band-passed signal, the
discrete Fourier transform, the negative frequencies removed, multiplied by
the frequency response of a causal second-order Butterworth band-pass over
``band_hz`` (the correction that keeps the window's end free of the Gibbs
distortion of a plain Hilbert transform), transformed back, and the last
sample taken. That chain of operations is linear and the same for every
window, so it is applied exactly as one complex FIR filter whose taps are
computed once (``W`` multiply-adds per sample instead of two FFTs).

A causal band-pass delays what it passes: the ecHT returns the phase of the
filtered signal, which lags (above the band centre) or leads (below it) the
signal's own phase by ``-arg T(f)``, ``T`` being the response of the sensing
band-pass and the ecHT together (about 60 degrees 3 Hz away from the centre of
a 13-30 Hz band). The estimator removes that bias: it tracks the instantaneous
frequency ``f`` (the phase advance between samples, averaged by a first-order
low-pass of time constant :data:`PHASE_FREQUENCY_TAU_S`, clipped to
``band_hz``) and subtracts ``arg T(f)``. On a sinusoid anywhere in the band
the mean error is then below a few degrees (``tests/test_phase.py``). What
remains is the sampling delay: each sample is the mean over its interval,
half an interval late.

References
----------
Schreglmann SR et al. (2021) Non-invasive suppression of essential tremor via
phase-locked disruption of its temporal coherence. Nat Commun 12:363.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from closedloop.core import kernel_cache  # noqa: F401  (sets the kernel cache directory first)
from closedloop.core.jit import njit

__all__ = [
    "PHASE_FREQUENCY_TAU_S",
    "PHASE_STATE",
    "PHASE_TABLE_POINTS",
    "band_table_value",
    "new_phase_fields",
    "phase_filter",
    "phase_sample",
    "wrap_phase",
]

#: Time constant of the instantaneous-frequency smoother, s.
PHASE_FREQUENCY_TAU_S = 0.05
#: Points of the phase-correction table across the band.
PHASE_TABLE_POINTS = 512
#: Columns of ``phase_state``, per instance: the previous analytic sample
#: (real, imaginary), the smoothed instantaneous frequency (Hz), samples seen.
PHASE_STATE = ("re", "im", "frequency_hz", "count")
_RE, _IM, _FREQ, _COUNT = (PHASE_STATE.index(c) for c in PHASE_STATE)


def phase_filter(
    rate_hz: float, band_hz: tuple[float, float], sos: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Taps and phase-correction table of the estimator.

    Parameters
    ----------
    rate_hz : float
        Sensing rate, Hz.
    band_hz : tuple of float
        Band edges, Hz.
    sos : ndarray
        The sensing band-pass, second-order sections.
    width : int
        Window of the ecHT, samples.

    Returns
    -------
    taps : ndarray of complex, shape (width,)
        The endpoint-corrected Hilbert transform (Schreglmann et al. 2021)
        over a window of ``width`` band-passed samples as one complex FIR
        filter: ``taps[d]`` weighs the sample ``d`` samples ago, and
        ``sum_d taps[d] * y[n - d]`` is the analytic signal at sample ``n``.
    table : ndarray, shape (PHASE_TABLE_POINTS,)
        ``arg T(f)``, rad (unwrapped), on a uniform grid from the band's
        lower to its upper edge: ``T`` is the response from the sensed
        signal to that analytic signal (sensing band-pass, then the FIR).
    """
    w = width
    # Analytic-signal mask: DC and Nyquist once, positive frequencies twice.
    mask = np.zeros(w)
    mask[0] = 1.0
    mask[1 : (w + 1) // 2] = 2.0
    if w % 2 == 0:
        mask[w // 2] = 1.0
    from scipy import signal  # on use: scipy.signal imports scipy.stats (~0.7 s)

    freq = np.abs(np.fft.fftfreq(w, 1.0 / rate_hz))
    ech = signal.butter(2, band_hz, "bandpass", fs=rate_hz, output="sos")
    _, response = signal.sosfreqz(ech, worN=freq, fs=rate_hz)
    # Last sample of ifft(mask * H * fft(window)): weight of the sample d
    # samples before the end is ifft(mask * H)[d].
    taps = np.ascontiguousarray(np.fft.ifft(mask * response))
    grid = np.linspace(band_hz[0], band_hz[1], PHASE_TABLE_POINTS)
    _, chain = signal.sosfreqz(sos, worN=grid, fs=rate_hz)
    fir = np.exp(-2j * np.pi * np.outer(grid, np.arange(w)) / rate_hz) @ taps
    table = np.ascontiguousarray(np.unwrap(np.angle(chain * fir)))
    return taps, table


def new_phase_fields(
    n: int,
    rate_hz: float,
    band_hz: tuple[float, float],
    sos: np.ndarray,
    width: int,
    enabled: bool,
) -> dict[str, Any]:
    """Initial ``phase_*`` fields of :class:`closedloop.sensing.kernels.SensingState`.

    ``phase_taps`` (W,) complex and ``phase_table`` (T,) from
    :func:`phase_filter` (empty unless ``enabled``); per instance
    ``phase_ring`` (n, W), the last band-passed samples, and ``phase_state``
    (n, 4), columns :data:`PHASE_STATE`; and the constants ``phase_alpha`` (frequency smoother),
    ``phase_f_lo_hz``, ``phase_f_hi_hz`` (band edges) and ``phase_per_hz``
    (table points per Hz).
    """
    lo, hi = band_hz
    if enabled:
        taps, table = phase_filter(rate_hz, band_hz, sos, width)
    else:
        taps, table = np.zeros(0, dtype=np.complex128), np.zeros(0)
    state = np.zeros((n, len(PHASE_STATE)))
    state[:, _FREQ] = math.sqrt(lo * hi)
    return {
        "phase_taps": taps,
        "phase_table": table,
        "phase_ring": np.zeros((n, taps.size)),
        "phase_state": state,
        "phase_alpha": math.exp(-1.0 / (rate_hz * PHASE_FREQUENCY_TAU_S)),
        "phase_f_lo_hz": float(lo),
        "phase_f_hi_hz": float(hi),
        "phase_per_hz": (PHASE_TABLE_POINTS - 1) / (hi - lo),
    }


@njit(cache=True)
def phase_sample(i, y, s, rate):
    """Push band-passed sample ``y`` of instance ``i``; return its phase, rad.

    ``s`` is the :class:`~closedloop.sensing.kernels.SensingState` (its
    ``phase_*`` fields) and ``rate`` the sensing rate, Hz.
    """
    taps = s.phase_taps
    table = s.phase_table
    ring = s.phase_ring
    state = s.phase_state
    w = taps.shape[0]
    count = state[i, _COUNT]
    pos = int(count % w)
    ring[i, pos] = y
    state[i, _COUNT] = count + 1.0
    # Analytic signal at this sample: the ecHT as a complex FIR over the ring.
    re = 0.0
    im = 0.0
    for d in range(pos + 1):
        v = ring[i, pos - d]
        re += taps[d].real * v
        im += taps[d].imag * v
    for d in range(pos + 1, w):
        v = ring[i, pos - d + w]
        re += taps[d].real * v
        im += taps[d].imag * v
    # Instantaneous frequency from the phase advance since the last sample.
    p_re = state[i, _RE]
    p_im = state[i, _IM]
    if p_re != 0.0 or p_im != 0.0:
        advance = math.atan2(im * p_re - re * p_im, re * p_re + im * p_im)
        alpha = s.phase_alpha
        freq = alpha * state[i, _FREQ] + (1.0 - alpha) * advance * rate / (2.0 * math.pi)
        state[i, _FREQ] = freq
    state[i, _RE] = re
    state[i, _IM] = im
    # Remove the filters' phase shift at that frequency (table over the band).
    shift = band_table_value(
        table, state[i, _FREQ], s.phase_f_lo_hz, s.phase_f_hi_hz, s.phase_per_hz
    )
    return wrap_phase(math.atan2(im, re) - shift)


@njit(cache=True, inline="always")
def band_table_value(table, f, f_lo, f_hi, per_hz):
    """``table`` (on a uniform grid over ``[f_lo, f_hi]`` Hz) interpolated at ``f``, clipped."""
    x = (min(max(f, f_lo), f_hi) - f_lo) * per_hz  # per_hz: table points per Hz
    k = min(int(x), table.shape[0] - 2)
    return table[k] + (x - k) * (table[k + 1] - table[k])


@njit(cache=True, inline="always")
def wrap_phase(phase):
    """``phase`` (rad) wrapped to ``[-pi, pi)``."""
    return phase - 2.0 * math.pi * math.floor((phase + math.pi) / (2.0 * math.pi))
