"""The sensing chain's kernels: a run of samples, a control period, the record.

:func:`sense_samples` is the chain of :mod:`closedloop.sensing.chain` at each
sample (sensor, band-pass, envelope, smoothing, features);
:func:`sense_period` boxcar-samples a period of integration steps first;
:func:`record_features` copies the features into the per-period record. They
take the chain's state as one :class:`SensingState`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from closedloop.core.jit import njit
from closedloop.core.random import normal
from closedloop.core.record import FIRST_FEATURE_ROW
from closedloop.sensing.registry import feature_value

__all__ = [
    "ENVELOPE_STATE",
    "SensingState",
    "no_feature_output",
    "plain_chain",
    "plain_sense",
    "record_features",
    "sense_period",
    "sense_rows",
    "sense_samples",
]


#: Columns of ``SensingState.envelope``, per instance: running sum and count
#: of the rectified-value window and of the smoothing window, the smoothed
#: power, and the envelope at the last sample.
ENVELOPE_STATE = ("env_sum", "env_count", "sm_sum", "sm_count", "power", "last")
_ENV_SUM, _ENV_COUNT, _SM_SUM, _SM_COUNT, _POWER, _LAST = (
    ENVELOPE_STATE.index(c) for c in ENVELOPE_STATE
)


class SensingState(NamedTuple):
    """Carried state of a sensing chain for a batch of ``n`` (arrays updated in place).

    Built by :meth:`closedloop.sensing.chain.SensingChain.new_state`; the
    scalars are settings, fixed for a run. Flat, not nested: Numba's parallel
    loops unpack a tuple argument one level deep only; per-instance scalars
    share one array per stage (named columns), since every array is one more
    argument to unbox and pass on each call. The ``feature_*``,
    ``window_*``, ``phase_*``, ``aperiodic_*``, ``ar_*`` and ``etp_*`` fields belong to the features
    (:mod:`closedloop.sensing.registry`), described where they are made.
    """

    noise_std: float  #: sensor noise, signal units
    artifact_gain: float  #: signal units per mA of net current
    power: bool  #: envelope: power (True) or average rectified value
    alpha: float  #: coefficient of the power smoother
    inv_rate: float  #: sampling interval, s
    sos: np.ndarray  #: (S, 6): band-pass second-order sections
    zi: np.ndarray  #: (n, S, 2): band-pass state
    env_ring: np.ndarray  #: (n, E): window of the average rectified value
    sm_ring: np.ndarray  #: (n, M): window of the moving average (M = 1: off)
    envelope: np.ndarray  #: (n, 6): columns :data:`ENVELOPE_STATE`
    rng: np.ndarray  #: (n, 2) uint64: sensor-noise streams
    # Features: registry.new_feature_fields
    feature_codes: np.ndarray
    feature_values: np.ndarray
    # Windowed features: windowed.new_windowed_fields
    window_ring: np.ndarray
    window_sums: np.ndarray
    # Phase: phase.new_phase_fields
    phase_taps: np.ndarray
    phase_table: np.ndarray
    phase_ring: np.ndarray
    phase_state: np.ndarray
    phase_alpha: float
    phase_f_lo_hz: float
    phase_f_hi_hz: float
    phase_per_hz: float
    # Aperiodic exponent: aperiodic.new_aperiodic_fields
    aperiodic_sos: np.ndarray
    aperiodic_weights: np.ndarray
    aperiodic_offset: float
    aperiodic_zi: np.ndarray
    aperiodic_ring: np.ndarray
    aperiodic_sums: np.ndarray
    # AR-forecast phase: phase_ar.new_ar_fields
    ar_fir: np.ndarray
    ar_analytic: np.ndarray
    ar_ring: np.ndarray
    ar_pred: np.ndarray
    ar_state: np.ndarray
    ar_order: int
    ar_lead: int
    ar_burg: bool
    # ETP phase: phase_etp.new_etp_fields
    etp_table: np.ndarray
    etp_state: np.ndarray
    etp_f_lo_hz: float
    etp_f_hi_hz: float
    etp_per_hz: float
    etp_lead_s: float


@njit(cache=True, inline="always")
def _moving_average(ring, scalars, i, sum_col, count_col, value):
    width = ring.shape[1]
    count = scalars[i, count_col]
    idx = int(count) % width
    scalars[i, sum_col] += value - ring[i, idx]
    ring[i, idx] = value
    count += 1.0
    scalars[i, count_col] = count
    return scalars[i, sum_col] / min(count, width)


@njit(cache=True, inline="always")
def _band_pass(i, y, sos, zi):
    # Direct form II transposed, section by section (scipy's sosfilt with zi).
    for s in range(sos.shape[0]):
        out = sos[s, 0] * y + zi[i, s, 0]
        zi[i, s, 0] = sos[s, 1] * y - sos[s, 4] * out + zi[i, s, 1]
        zi[i, s, 1] = sos[s, 2] * y - sos[s, 5] * out
        y = out
    return y


@njit(cache=True, inline="always")
def _boxcar(i, k, sps, signal, net):
    # Sums of the signal and the net current over sample k's sps steps.
    acc = 0.0
    acc_net = 0.0
    for j in range(k * sps, (k + 1) * sps):
        acc += signal[i, j]
        acc_net += net[i, j]
    return acc, acc_net


@njit(cache=True, inline="always")
def sense_samples(
    i, x, art, start, stop, sensing, sensed_out, filtered_out, envelope_out, features_out, col0
):
    """Process samples ``start .. stop - 1`` of row ``i`` of ``x``.

    Writes sample ``k`` to column ``col0 + k - start`` of the outputs (any
    output may have zero columns to skip it; ``features_out`` has shape
    ``(n, F, m)``) and returns the last envelope. The features' values at the
    last sample stay in the state (``sensing.feature_values``).
    """
    noise = sensing.noise_std
    gain = sensing.artifact_gain
    power = sensing.power
    alpha = sensing.alpha
    inv_rate = sensing.inv_rate
    sos = sensing.sos
    zi = sensing.zi
    rng = sensing.rng
    codes = sensing.feature_codes
    values = sensing.feature_values
    n_feat = codes.shape[0]
    smoothing = sensing.sm_ring.shape[1] > 1
    scalars = sensing.envelope
    env = scalars[i, _LAST]
    for k in range(start, stop):
        v = x[i, k] + gain * art[i, k]
        if noise > 0.0:
            v += noise * normal(rng, i)
        y = _band_pass(i, v, sos, zi)
        if power:
            scalars[i, _POWER] = alpha * scalars[i, _POWER] + (1.0 - alpha) * y * y
            env = scalars[i, _POWER]
        else:
            env = _moving_average(sensing.env_ring, scalars, i, _ENV_SUM, _ENV_COUNT, abs(y))
        if smoothing:
            env = _moving_average(sensing.sm_ring, scalars, i, _SM_SUM, _SM_COUNT, env)
        c = col0 + k - start
        for f in range(n_feat):
            value = feature_value(codes[f], i, f, v, y, inv_rate, sensing)
            values[i, f] = value
            if features_out.shape[2] > 0:
                features_out[i, f, c] = value
        if sensed_out.shape[1] > 0:
            sensed_out[i, c] = v
        if filtered_out.shape[1] > 0:
            filtered_out[i, c] = y
        if envelope_out.shape[1] > 0:
            envelope_out[i, c] = env
    scalars[i, _LAST] = env
    return env


@njit(cache=True, inline="always")
def no_feature_output(sensing):
    """A ``features_out`` of zero columns for :func:`sense_samples`: keep no per-sample features."""
    return sensing.window_ring[:, :, :0]


def plain_chain(sensing: SensingState) -> bool:
    """Whether the chain is the plain one: ARV envelope, no smoothing, no features.

    The default chain of a closed loop; :func:`plain_sense` runs it without
    the general chain's per-sample branches and tuple accesses, which cost
    more than the chain's arithmetic (issue 18, gap 1). Asked in Python, once
    per run (:func:`closedloop.core.period.general_periods`).
    """
    return bool(
        not sensing.power and sensing.sm_ring.shape[1] <= 1 and sensing.feature_codes.shape[0] == 0
    )


@njit(cache=True, inline="always")
def plain_sense(
    i,
    m,
    sps,
    inv,
    signal,
    net,
    samples,
    art,
    gain,
    noise,
    rng,
    sos,
    zi,
    ring,
    scalars,
    lfp_out,
    sensed_out,
    col0,
):
    """:func:`sense_period` for a plain chain (:func:`plain_chain`): the same results.

    The same arithmetic in the same order, so bit-identical; it takes the
    chain's arrays (``gain``: ``artifact_gain``; ``noise``: ``noise_std``;
    ``rng``; ``sos``, ``zi``; ``ring``: ``env_ring``; ``scalars``:
    ``envelope``), ``m`` samples of ``sps`` steps
    and ``inv = 1 / sps``.
    """
    env = scalars[i, _LAST]
    for k in range(m):
        acc, acc_net = _boxcar(i, k, sps, signal, net)
        x = acc * inv
        a = acc_net * inv
        samples[i, k] = x
        art[i, k] = a
        lfp_out[i, col0 + k] = x
        v = x + gain * a
        if noise > 0.0:
            v += noise * normal(rng, i)
        y = _band_pass(i, v, sos, zi)
        env = _moving_average(ring, scalars, i, _ENV_SUM, _ENV_COUNT, abs(y))
        if sensed_out.shape[1] > 0:
            sensed_out[i, col0 + k] = v
    scalars[i, _LAST] = env
    return env


@njit(cache=True, inline="always")
def sense_period(
    i,
    n_steps,
    steps_per_sample,
    signal_steps,
    net_steps,
    samples,
    art_samples,
    sensing,
    lfp_out,
    sensed_out,
    col0,
):
    """Sample one control period of step-level data and run the chain.

    ``signal_steps`` and ``net_steps`` hold the model signal and the net
    stimulation current (mA) of each integration step of the period; the
    boxcar means go to ``samples``/``art_samples`` (scratch) and ``lfp_out``.
    Returns the envelope at the end of the period.
    """
    m = n_steps // steps_per_sample
    inv = 1.0 / steps_per_sample
    for k in range(m):
        acc, acc_net = _boxcar(i, k, steps_per_sample, signal_steps, net_steps)
        samples[i, k] = acc * inv
        art_samples[i, k] = acc_net * inv
        lfp_out[i, col0 + k] = samples[i, k]
    empty = samples[:, :0]
    return sense_samples(
        i,
        samples,
        art_samples,
        0,
        m,
        sensing,
        sensed_out,
        empty,
        empty,
        no_feature_output(sensing),
        col0,
    )


@njit(cache=True, inline="always")
def record_features(i, sensing, per_period, k):
    """Copy instance ``i``'s current features to ``per_period[i, FIRST_FEATURE_ROW + f, k]``."""
    values = sensing.feature_values
    for f in range(values.shape[1]):
        per_period[i, FIRST_FEATURE_ROW + f, k] = values[i, f]


@njit(cache=True)
def sense_rows(x, art, sensing, sensed_out, filtered_out, envelope_out, features_out):
    """:func:`sense_samples` over every row of ``x``, in one call.

    One compiled call for the batch instead of one Python call per instance
    (each costs tens of microseconds of dispatch, more than the work of a
    short block; measured on the no-stimulation copy of a recorded run).
    """
    # Arguments typed as sense_period's call types them (a column that is not
    # a literal, outputs of layout 'A'), so the chain compiles once for both.
    m = x.shape[1]
    col0 = m - m
    filtered = filtered_out[:, :m]
    envelope = envelope_out[:, :m]
    features = features_out[:, :, :m]
    for i in range(x.shape[0]):
        sense_samples(i, x, art, 0, m, sensing, sensed_out, filtered, envelope, features, col0)
