"""Phase of an oscillation at given times, from the samples just before each.

Used where a stimulus may change the signal after it (the phase at a pulse,
:mod:`closedloop.analysis.phase`; the plasticity readout,
:mod:`closedloop.analysis.plasticity`): a zero-phase filter around the pulse
would mix the response into the phase at it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["phase_before"]


def phase_before(
    lfp: np.ndarray, rate_hz: float, times: np.ndarray | Sequence[float], f_hz: float
) -> np.ndarray:
    """Phase at each time of a sinusoid at ``f_hz`` fitted to the samples just before it.

    A sinusoid plus a constant is fitted by least squares to the last three
    quarters of a cycle of samples that end by each time (sample ``j`` placed
    at ``(j + 0.5) / rate_hz``, the middle of its interval) and its phase at
    the time taken (0 at peaks).

    Parameters
    ----------
    lfp : ndarray, shape (T,)
        Signal; sample ``j`` is the mean over ``[j, j + 1) / rate_hz`` s.
    rate_hz : float
        Sampling rate, Hz.
    times : array_like, shape (K,)
        Times, s, on the signal's clock.
    f_hz : float
        Frequency of the fitted sinusoid, Hz.

    Returns
    -------
    ndarray, shape (K,)
        Phases, rad in ``[-pi, pi)``; NaN for times without a full window before them.
    """
    width = max(4, int(round(0.75 * rate_hz / f_hz)))
    omega = 2.0 * math.pi * f_hz
    phases = np.full(len(times), np.nan)
    for index, t in enumerate(times):
        end = int(math.floor(t * rate_hz + 1e-9))  # samples 0 .. end-1 end by t
        if end < width or end > lfp.size:
            continue
        rel = (np.arange(end - width, end) + 0.5) / rate_hz - t
        design = np.column_stack([np.ones(width), np.cos(omega * rel), np.sin(omega * rel)])
        coef = np.linalg.lstsq(design, lfp[end - width : end], rcond=None)[0]
        # A cos(omega t' + phi) = A cos(phi) cos(omega t') - A sin(phi) sin(omega t')
        phases[index] = math.atan2(-coef[2], coef[1])
    return np.mod(phases + math.pi, 2 * math.pi) - math.pi
