"""Feature ``phase_etp``: phase by educated temporal prediction (ETP), online.

After Shirinpour et al. (2020), who predict the next peak of the alpha/mu
rhythm from the last peak and the mean inter-peak interval learnt on
training data, with a bias correction. Here, on the chain's causal
band-passed signal ``y``, at every sample:

1. a peak of ``y`` is found at the previous sample when it is positive and
   above both neighbours;
2. the mean inter-peak interval ``T`` is a running mean of the intervals
   that lie within the band's periods, over about the last
   :data:`ETP_INTERVALS` (10, a choice: the "training" is the recent data,
   an online version of the published training period, which lets ``T``
   follow a slow drift of frequency; ``1 / f_c`` until the first interval,
   ``f_c`` the band's geometric centre);
3. the phase now is ``2 pi (t - t_peak) / T - arg H(1 / T)``, ``t_peak`` the
   last peak of ``y`` and ``arg H`` the phase response of the sensing
   band-pass at the rhythm's frequency: the bias correction, here analytic
   (the causal filter delays the peaks of ``y`` by ``-arg H / (2 pi f)``)
   rather than fitted on training data;
4. the value is that phase advanced by ``2 pi phase_etp_lead_s / T``, the
   latency it compensates (0: the phase now).

Rad in ``[-pi, pi)``, 0 at the peaks, pi at the troughs (as ``"phase"``); 0
until the first peak. Cost: a few operations per sample.

References
----------
Shirinpour S, Alekseichuk I, Mantell K, Opitz A (2020) Experimental
evaluation of methods for real-time EEG phase-specific transcranial
magnetic stimulation. J Neural Eng 17:046002.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from closedloop.core import kernel_cache  # noqa: F401  (sets the kernel cache directory first)
from closedloop.core.jit import njit
from closedloop.sensing.phase import band_table_value, wrap_phase

__all__ = ["ETP_INTERVALS", "ETP_STATE", "new_etp_fields", "phase_etp_sample"]

#: Points of the band-pass phase table across the band.
_TABLE_POINTS = 256
#: Inter-peak intervals the mean period is (about) the mean of: a choice.
ETP_INTERVALS = 10.0
#: Columns of ``etp_state``, per instance: the two previous band-passed
#: samples, samples seen, sample of the last peak (-1: none yet), mean
#: inter-peak interval (samples) and intervals in it (at most ETP_INTERVALS).
ETP_STATE = ("y1", "y2", "count", "peak", "mean", "n")
_Y1, _Y2, _COUNT, _PEAK, _MEAN, _N = (ETP_STATE.index(c) for c in ETP_STATE)


def new_etp_fields(
    n: int,
    rate_hz: float,
    band_hz: tuple[float, float],
    sos: np.ndarray,
    *,
    lead_s: float,
    enabled: bool,
) -> dict[str, Any]:
    """Initial ``etp_*`` fields of :class:`closedloop.sensing.kernels.SensingState`.

    ``etp_table`` (T,): ``arg H(f)`` (rad, unwrapped) of the sensing band-pass
    ``sos`` on a uniform grid over ``band_hz`` (empty unless ``enabled``);
    ``etp_state`` (n, 6), columns :data:`ETP_STATE`; the constants
    ``etp_f_lo_hz``, ``etp_f_hi_hz``, ``etp_per_hz`` (table points per Hz)
    and ``etp_lead_s``.
    """
    lo, hi = band_hz
    if enabled:
        grid = np.linspace(lo, hi, _TABLE_POINTS)
        from scipy import signal  # on use: scipy.signal imports scipy.stats (slow start-up)

        _, response = signal.sosfreqz(sos, worN=grid, fs=rate_hz)
        table = np.ascontiguousarray(np.unwrap(np.angle(response)))
    else:
        table = np.zeros(0)
    state = np.zeros((n, len(ETP_STATE)))
    state[:, _PEAK] = -1.0
    return {
        "etp_table": table,
        "etp_state": state,
        "etp_f_lo_hz": float(lo),
        "etp_f_hi_hz": float(hi),
        "etp_per_hz": (_TABLE_POINTS - 1) / (hi - lo),
        "etp_lead_s": float(lead_s),
    }


@njit(cache=True)
def phase_etp_sample(i, y, s, rate):
    """The predicted phase (rad) after band-passed sample ``y`` of instance ``i`` (``rate``: Hz).

    ``s``: the sensing state (:class:`~closedloop.sensing.kernels.SensingState`), its ``etp_*``.
    """
    st = s.etp_state
    f_lo = s.etp_f_lo_hz
    f_hi = s.etp_f_hi_hz
    y1 = st[i, _Y1]
    count = st[i, _COUNT]
    if count >= 2.0 and y1 > 0.0 and y1 > st[i, _Y2] and y1 >= y:
        peak = count - 1.0
        last = st[i, _PEAK]
        if last >= 0.0:
            interval = peak - last
            if rate / f_hi <= interval <= rate / f_lo:
                # Running mean of the last ETP_INTERVALS intervals or so (all of
                # them while fewer): recent enough to follow a slow drift.
                n_kept = min(st[i, _N] + 1.0, ETP_INTERVALS)
                st[i, _MEAN] += (interval - st[i, _MEAN]) / n_kept
                st[i, _N] = n_kept
        st[i, _PEAK] = peak
    st[i, _Y2] = y1
    st[i, _Y1] = y
    st[i, _COUNT] = count + 1.0
    if st[i, _PEAK] < 0.0:
        return 0.0
    if st[i, _N] > 0.0:
        period = st[i, _MEAN] / rate
    else:
        period = 1.0 / math.sqrt(f_lo * f_hi)
    shift = band_table_value(s.etp_table, 1.0 / period, f_lo, f_hi, s.etp_per_hz)
    elapsed = (count - st[i, _PEAK]) / rate + s.etp_lead_s
    return wrap_phase(2.0 * math.pi * elapsed / period - shift)
