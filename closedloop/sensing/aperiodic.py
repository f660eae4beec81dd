"""Feature ``aperiodic_exponent``: the 1/f exponent of the sensed signal, causal and streaming.

The field potential's power spectrum falls off as ``P(f) ~ 1 / f**chi``; the
exponent ``chi`` (the negative of the log-log slope) changed with response to
subcallosal cingulate DBS for depression (Veerakumar et al. 2019) and is what
offline tools such as FOOOF/specparam fit as the "aperiodic exponent"
(Donoghue et al. 2020). A device cannot run an FFT over the future, so here
it comes from a causal filter bank, sample by sample:

1. ``B`` constant-Q bands tile ``aperiodic_band_hz`` in equal steps of
   ``log f`` (edges ``f_lo * r**b``, ``r = (f_hi / f_lo)**(1 / B)``), each a
   Butterworth band-pass of ``aperiodic_filter_order`` sections (direct form
   II transposed with carried state, as the main band-pass).
2. Each band's power is the mean of its squared output over the last
   ``aperiodic_window_s`` (a sliding window; fewer samples until it fills),
   divided by the band's width: a PSD estimate at the band's geometric centre.
3. ``chi`` is minus the least-squares slope of ``log10`` of these estimates
   against ``log10`` of the centres (weights fixed in advance, so a sample
   costs ``B`` filters and ``B`` logarithms).

Why it is unbiased for a power law, and where it is not: with constant-Q
bands the response of band ``b`` is ``H(f / f_b)``, so for ``P = c f**-chi``
its power is ``c f_b**(1 - chi) * integral |H(u)|**2 u**-chi du``; divided by
a width proportional to ``f_b`` the constant is the same for every band and
the log-log slope is exactly ``-chi``. The digital filters depart from
constant Q near Nyquist (bilinear warping; keep ``f_hi`` well below it), a
finite window adds variance (the lowest band, narrowest, dominates it: a
band of width ``w`` Hz averaged over ``T`` s has about ``w T`` degrees of
freedom), peaks inside the range bias it as they bias any single-slope fit,
and the integral converges only while the band-pass skirts fall faster than
the spectrum rises (``2 * order > chi - 1``). The estimator and the offline
fit are compared on the same data in ``tests/test_aperiodic.py``. The filter
bank and its defaults are this project's choice, not a published design.

References
----------
Donoghue T et al. (2020) Parameterizing neural power spectra into periodic
and aperiodic components. Nat Neurosci 23:1655-1665.
Veerakumar A et al. (2019) Field potential 1/f activity in the subcallosal
cingulate region as a candidate signal for monitoring deep brain
stimulation for treatment-resistant depression. J Neurophysiol 122:1023-1035.
"""

from __future__ import annotations

import math

import numpy as np

from closedloop.core import kernel_cache  # noqa: F401  (sets the kernel cache directory first)
from closedloop.core.jit import njit

__all__ = ["aperiodic_bank", "aperiodic_exponent", "new_aperiodic_fields"]


def aperiodic_bank(
    rate_hz: float, band_hz: tuple[float, float], n_bands: int, order: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The filter bank: sections, band centres and widths.

    Parameters
    ----------
    rate_hz : float
        Sensing rate, Hz.
    band_hz : tuple of float
        Lowest and highest edge of the fitted range, Hz.
    n_bands : int
        Bands.
    order : int
        Butterworth order of each band edge (sections per band).

    Returns
    -------
    sos : ndarray, shape (n_bands, order, 6)
    centre_hz, width_hz : ndarray, shape (n_bands,)
    """
    from scipy import signal  # on use: scipy.signal imports scipy.stats (~0.7 s)

    lo, hi = band_hz
    edges = lo * (hi / lo) ** (np.arange(n_bands + 1) / n_bands)
    sos = np.stack(
        [
            signal.butter(order, (edges[b], edges[b + 1]), "bandpass", fs=rate_hz, output="sos")
            for b in range(n_bands)
        ]
    )
    return np.ascontiguousarray(sos), np.sqrt(edges[:-1] * edges[1:]), np.diff(edges)


def new_aperiodic_fields(
    n: int,
    rate_hz: float,
    band_hz: tuple[float, float],
    n_bands: int,
    order: int,
    window: int,
    enabled: bool,
) -> dict[str, object]:
    """Initial ``aperiodic_*`` fields of :class:`closedloop.sensing.kernels.SensingState`.

    ``aperiodic_sos`` (B, S, 6), the bank (B = 0 unless ``enabled``);
    ``aperiodic_weights`` (B,), the least-squares slope weights on
    ``log10`` of the band powers; ``aperiodic_offset``, what the widths add
    to the slope; per instance ``aperiodic_zi`` (n, B, S, 2), the filters'
    state, ``aperiodic_ring`` (n, B, W), the last ``window`` squared
    outputs, and ``aperiodic_sums`` (n, B + 1), their running sums and the
    samples seen (last column).
    """
    if enabled:
        sos, centre, width = aperiodic_bank(rate_hz, band_hz, n_bands, order)
    else:
        sos, centre, width = np.zeros((0, 1, 6)), np.ones(0), np.ones(0)
        window = 1
    x = np.log10(centre)
    dx = x - x.mean() if x.size else x
    weights = dx / np.sum(dx * dx) if x.size else dx
    return {
        "aperiodic_sos": sos,
        "aperiodic_weights": weights,
        "aperiodic_offset": float(np.sum(weights * np.log10(width))),
        "aperiodic_zi": np.zeros((n, sos.shape[0], sos.shape[1], 2)),
        "aperiodic_ring": np.zeros((n, sos.shape[0], window)),
        "aperiodic_sums": np.zeros((n, sos.shape[0] + 1)),
    }


@njit(cache=True)
def aperiodic_exponent(s, i, v):
    """Push sensed sample ``v`` of instance ``i``; return the exponent ``chi`` (1).

    ``s`` is the :class:`~closedloop.sensing.kernels.SensingState`. NaN
    while a band has no power yet.
    """
    sos = s.aperiodic_sos
    zi = s.aperiodic_zi
    ring = s.aperiodic_ring
    sums = s.aperiodic_sums
    weights = s.aperiodic_weights
    n_bands = sos.shape[0]
    n_sec = sos.shape[1]
    width = ring.shape[2]
    count = sums[i, n_bands]
    idx = int(count) % width
    inv_n = 1.0 / min(count + 1.0, width)
    slope = 0.0
    ok = True
    for b in range(n_bands):
        y = v
        for k in range(n_sec):
            out = sos[b, k, 0] * y + zi[i, b, k, 0]
            zi[i, b, k, 0] = sos[b, k, 1] * y - sos[b, k, 4] * out + zi[i, b, k, 1]
            zi[i, b, k, 1] = sos[b, k, 2] * y - sos[b, k, 5] * out
            y = out
        p = y * y
        sums[i, b] += p - ring[i, b, idx]
        ring[i, b, idx] = p
        mean = sums[i, b] * inv_n
        if mean > 0.0:
            slope += weights[b] * math.log10(mean)
        else:
            ok = False
    sums[i, n_bands] = count + 1.0
    if not ok:
        return math.nan
    return s.aperiodic_offset - slope  # chi = -(slope of log(P / width))
