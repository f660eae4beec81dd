"""Feature ``phase_ar``: phase by autoregressive forward prediction (EEG-phase-triggered TMS).

The estimator of Zrenner et al. (2018) and Chen et al. (2013), as run at
every refit of a real-time system, over the last ``phase_ar_window_s`` of the
*sensed* signal (it does its own filtering, not the chain's causal band-pass):

1. the window, its mean removed, is band-passed by a zero-phase (symmetric,
   centred) FIR of ``K`` taps over the sensing band (Hamming window): no
   phase shift, but its last ``(K - 1) / 2`` samples (the *edge*) cannot be
   filtered and are dropped;
2. an autoregressive model of order ``phase_ar_order`` is fitted to the
   filtered segment by Yule-Walker (biased autocorrelation,
   Levinson-Durbin recursion: the model is always stable);
3. the model forecasts the filtered signal forward across the edge, up to
   ``phase_ar_lead_s`` past the last sample and on to cover the refit
   interval and the analytic filter below;
4. the phase at each target sample is the argument of a centred complex
   band-pass (a Hann-windowed complex exponential at the band's centre,
   ``2 M + 1`` taps, ``M`` one period of the band's lower edge) over the
   filtered-and-forecast series. Centred and symmetric, its phase response
   is zero across the band: it stands in for the Hilbert transform of the
   forecast that the published systems take by FFT (Numba has none), with
   the negative frequencies suppressed by the window's sidelobes (about
   -31 dB for a Hann window: at most about 2 degrees of ripple).

The value at sample ``n`` is the predicted phase at ``n + lead`` (rad, in
``[-pi, pi)``, 0 at the peaks, pi at the troughs, as the ecHT's
``"phase"``): ``phase_ar_lead_s`` is the latency the estimate compensates,
the delay from the last sample to the stimulus in the real system (Zrenner
et al. report a few ms end to end [R]). Between refits (every
``phase_ar_interval_s``) the values come from the last forecast, as in a
system that refits less often than it samples. Before the window has filled
the value is 0.

Parameters and sources. Published settings (recalled, not checked against
the papers here: [R]): Zrenner et al. (2018) used a 500 ms window, a FIR
band-pass of the mu band with 64 ms edges removed, a Yule-Walker AR model of
order 30 and forward prediction to the stimulus; Chen et al. (2013) fitted
AR models (Burg) of similar orders to theta. The defaults of
:class:`~closedloop.sensing.chain.SensingChain` (window 0.5 s, edge 64 ms,
i.e. ``K = 129`` taps at 1 kHz, order 30) follow those; the refit interval
(5 ms) and the analytic filter are choices made here.

References
----------
Zrenner C, Desideri D, Belardinelli P, Ziemann U (2018) Real-time
EEG-defined excitability states determine efficacy of TMS-induced plasticity
in human motor cortex. Brain Stimul 11:374-389.
Chen LL, Madhavan R, Rapoport BI, Anderson WS (2013) Real-time brain
oscillation detection and phase-locked stimulation using autoregressive
spectral estimation and time-series forward prediction. IEEE Trans Biomed
Eng 60:753-762.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from closedloop.core import kernel_cache  # noqa: F401  (sets the kernel cache directory first)
from closedloop.core.jit import njit

__all__ = ["AR_METHODS", "AR_STATE", "ar_design", "new_ar_fields", "phase_ar_sample"]

#: Ways of fitting the autoregressive model.
AR_METHODS = ("burg", "yule_walker")
#: Columns of ``ar_state``, per instance: samples seen, samples since the
#: last refit.
AR_STATE = ("count", "since")
_COUNT, _SINCE = (AR_STATE.index(c) for c in AR_STATE)


def ar_design(
    rate_hz: float, band_hz: tuple[float, float], edge_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Zero-phase band-pass FIR and the centred complex analytic filter.

    Parameters
    ----------
    rate_hz, band_hz : float, tuple of float
        Sensing rate and band edges, Hz.
    edge_s : float
        Edge the FIR leaves unfiltered at each end of the window, s: the FIR
        has ``2 round(edge_s * rate_hz) + 1`` taps.

    Returns
    -------
    fir : ndarray, shape (K,)
        Symmetric band-pass taps (Hamming window), unit gain at the band centre.
    analytic : ndarray of complex, shape (2 M + 1,)
        ``w[k] exp(2 pi i f_c (k - M) / rate)``, ``w`` a Hann window of
        ``2 M + 1`` points, ``f_c`` the band centre, ``M`` one period of the
        lower band edge in samples; normalised to unit gain at ``f_c``.
    """
    lo, hi = band_hz
    half = max(1, int(round(edge_s * rate_hz)))
    from scipy import signal  # on use: scipy.signal imports scipy.stats (slow start-up)

    fir = signal.firwin(2 * half + 1, [lo, hi], pass_zero=False, fs=rate_hz, window="hamming")
    centre = 0.5 * (lo + hi)
    k = np.arange(2 * half + 1) - half
    fir = fir / abs(np.sum(fir * np.exp(-2j * np.pi * centre * k / rate_hz)))
    m = max(2, int(math.ceil(rate_hz / lo)))
    k = np.arange(2 * m + 1) - m
    analytic = np.hanning(2 * m + 3)[1:-1] * np.exp(2j * np.pi * centre * k / rate_hz)
    analytic = analytic / np.sum(np.hanning(2 * m + 3)[1:-1])
    return np.ascontiguousarray(fir), np.ascontiguousarray(analytic)


def new_ar_fields(
    n: int,
    rate_hz: float,
    band_hz: tuple[float, float],
    settings: tuple[float, float, int, float, float, str],
    enabled: bool,
) -> dict[str, Any]:
    """Initial ``ar_*`` fields of :class:`closedloop.sensing.kernels.SensingState`.

    ``settings`` is ``(window_s, edge_s, order, lead_s, interval_s, method)``. The
    fields: ``ar_fir`` (K,) and ``ar_analytic`` (2M+1,) complex from
    :func:`ar_design`; per instance ``ar_ring`` (n, W), the last sensed
    samples, ``ar_pred`` (n, S), the phases forecast for the next ``S``
    samples (``S`` the refit interval in samples), and ``ar_state`` (n, 2),
    columns :data:`AR_STATE`; the constants ``ar_order``, ``ar_lead``
    (samples) and ``ar_burg`` (Burg's method, else Yule-Walker). Empty arrays unless ``enabled``.
    """
    window_s, edge_s, order, lead_s, interval_s, method = settings
    width = max(1, int(round(window_s * rate_hz)))
    stride = max(1, int(round(interval_s * rate_hz)))
    if enabled:
        fir, analytic = ar_design(rate_hz, band_hz, edge_s)
    else:
        fir, analytic = np.zeros(0), np.zeros(0, dtype=np.complex128)
        width = stride = 0
    return {
        "ar_fir": fir,
        "ar_analytic": analytic,
        "ar_ring": np.zeros((n, width)),
        "ar_pred": np.zeros((n, stride)),
        "ar_state": np.zeros((n, len(AR_STATE))),
        "ar_order": int(order),
        "ar_lead": int(round(lead_s * rate_hz)),
        "ar_burg": method == "burg",
    }


@njit(cache=True)
def _levinson(r, p):
    """AR coefficients ``a`` (x[n] = sum_k a[k] x[n-1-k]) from autocorrelation ``r``."""
    a = np.zeros(p)
    tmp = np.zeros(p)
    err = r[0]
    if err <= 0.0:
        return a
    for m in range(p):
        acc = r[m + 1]
        for k in range(m):
            acc -= a[k] * r[m - k]
        refl = acc / err
        for k in range(m):
            tmp[k] = a[k] - refl * a[m - 1 - k]
        for k in range(m):
            a[k] = tmp[k]
        a[m] = refl
        err *= 1.0 - refl * refl
        if err <= 0.0:
            break
    return a


@njit(cache=True)
def _burg(y, n, p):
    """AR coefficients (as :func:`_levinson`) of ``y[:n]`` by Burg's method."""
    f = y[:n].copy()
    b = y[:n].copy()
    a = np.zeros(p)
    tmp = np.zeros(p)
    for m in range(p):
        num = 0.0
        den = 0.0
        for j in range(m + 1, n):
            num += f[j] * b[j - 1]
            den += f[j] * f[j] + b[j - 1] * b[j - 1]
        if den <= 0.0:
            break
        refl = 2.0 * num / den
        for k in range(m):
            tmp[k] = a[k] - refl * a[m - 1 - k]
        for k in range(m):
            a[k] = tmp[k]
        a[m] = refl
        for j in range(n - 1, m, -1):
            fj = f[j]
            f[j] = fj - refl * b[j - 1]
            b[j] = b[j - 1] - refl * fj
    return a


@njit(cache=True)
def _refit(i, s):
    """Filter, fit, forecast and fill ``ar_pred[i]`` with the phases to come."""
    ring = s.ar_ring
    fir = s.ar_fir
    an = s.ar_analytic
    w = ring.shape[1]
    pos = int(s.ar_state[i, _COUNT] % w)  # oldest sample's slot
    x = np.empty(w)
    mean = 0.0
    for j in range(w):
        x[j] = ring[i, (pos + j) % w]
        mean += x[j]
    mean /= w
    for j in range(w):
        x[j] -= mean
    half = (fir.shape[0] - 1) // 2
    valid = w - 2 * half
    m = (an.shape[0] - 1) // 2
    stride = s.ar_pred.shape[1]
    lead = s.ar_lead
    # Series: the filtered valid segment, then the forecast up to the last
    # target sample (last sample + lead + stride - 1) plus m for the analytic filter.
    total = valid + half + lead + stride + m
    y = np.zeros(total)
    for j in range(valid):
        acc = 0.0
        for k in range(fir.shape[0]):
            acc += fir[k] * x[j + k]
        y[j] = acc
    p = min(s.ar_order, valid - 1)
    if s.ar_burg:
        a = _burg(y, valid, p)
    else:
        r = np.zeros(p + 1)
        for lag in range(p + 1):
            acc = 0.0
            for j in range(lag, valid):
                acc += y[j] * y[j - lag]
            r[lag] = acc / valid
        a = _levinson(r, p)
    for j in range(valid, total):
        acc = 0.0
        for k in range(p):
            acc += a[k] * y[j - 1 - k]
        y[j] = acc
    # Target q: the sample (last sample + lead + q), at index valid + half - 1 + lead + q.
    for q in range(stride):
        c = valid + half - 1 + lead + q
        re = 0.0
        im = 0.0
        for k in range(an.shape[0]):
            j = c + m - k
            if j >= 0:
                v = y[j]
                re += an[k].real * v
                im += an[k].imag * v
        ph = math.atan2(im, re)
        s.ar_pred[i, q] = ph - 2.0 * math.pi * math.floor((ph + math.pi) / (2.0 * math.pi))


@njit(cache=True)
def phase_ar_sample(i, v, s):
    """Push sensed sample ``v`` of instance ``i``; return the forecast phase, rad.

    ``s`` is the :class:`~closedloop.sensing.kernels.SensingState` (its
    ``ar_*`` fields).
    """
    ring = s.ar_ring
    state = s.ar_state
    w = ring.shape[1]
    count = state[i, _COUNT]
    ring[i, int(count % w)] = v
    count += 1.0
    state[i, _COUNT] = count
    if count < w:
        return 0.0
    since = state[i, _SINCE]
    if count == w or since >= s.ar_pred.shape[1]:
        _refit(i, s)
        since = 0.0
    state[i, _SINCE] = since + 1.0
    return s.ar_pred[i, int(since)]
