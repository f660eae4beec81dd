"""Compiled twins of the built-in controllers, for runs with no Python in the loop.

Each built-in controller can describe itself to the kernels as a *program*:
an integer kind, a per-instance parameter array and a per-instance state
array (:meth:`closedloop.controllers.Controller.compiled`). The fused model
kernels then call :func:`controller_update` at the end of every control
period inside one compiled call per chunk of periods, so a whole second of
closed loop costs one call from Python instead of one per period.

Each twin follows its numpy class step for step; ``tests/test_compiled_twins.py``
checks that both, fed the same biomarker sequence, issue the same commands.
"""

from __future__ import annotations

import math

from closedloop.core import kernel_cache  # noqa: F401  (sets the kernel cache directory first)
from closedloop.core.jit import njit

__all__ = [
    "DUAL_THRESHOLD",
    "LQR",
    "LQR_HEADER",
    "NONE",
    "ON_OFF",
    "OPEN_LOOP",
    "PID",
    "SYMPTOM_TRIGGERED",
    "controller_update",
    "lqr_batch",
    "lqr_update",
]

#: Program kinds. ``NONE``: the controller runs in Python.
NONE, OPEN_LOOP, ON_OFF, DUAL_THRESHOLD, PID, SYMPTOM_TRIGGERED, LQR = -1, 0, 1, 2, 3, 4, 5

# Slack, in seconds, on comparisons of times built from sums of control periods
# (the numpy class's).
_TIME_SLACK_S = 1e-9

#: Scalars at the head of an LQR program's parameter row, in order; the
#: arrays follow: y_offset (p), M (nxa x p), C (p x nxa), A (nxa x nxa),
#: B (nxa), K (nx), x_unit (nx), all row-major.
LQR_HEADER = (
    "nxa",  # estimator order (plant order + p with offset-free estimation)
    "nx",  # plant order
    "p",  # outputs
    "output",  # index of the controlled output
    "offset_free",  # 1.0: states nx .. nx + p - 1 are output disturbances
    "target",  # feature units
    "u_offset",  # mA
    "u_unit",  # input deviation per unit target shift, mA
    "min_amplitude_ma",
    "max_amplitude_ma",
    "frequency_hz",
    "pulse_width_us",
)
_LQR_ARRAYS = len(LQR_HEADER)  # where the arrays start in the row


@njit(cache=True)
def controller_update(i, kind, params, state, biomarker, dt):
    """One control period of instance ``i``.

    Returns (amplitude mA, frequency Hz, pulse width us, pulses), pulses being
    NaN (no change) for every built-in twin but the burst-capable ones.

    Parameters
    ----------
    i : int
        Instance.
    kind : int
        Program kind (module constants).
    params, state : ndarray, shape (n, P) and (n, S)
        The program's parameters and state; ``state`` is updated.
    biomarker : float
        The biomarker at the end of the period.
    dt : float
        Control period, s.
    """
    p = params[i]
    s = state[i]
    if kind == OPEN_LOOP:  # params: amplitude, frequency, width
        return p[0], p[1], p[2], math.nan
    if kind == ON_OFF:  # params: threshold, amplitude, frequency, width, ramp rate mA/s
        step = p[4] * dt
        amp = s[0] + step if biomarker > p[0] else s[0] - step  # NaN counts as below
        amp = max(min(amp, p[1]), 0.0)
        s[0] = amp
        return amp, p[2], p[3], math.nan
    if kind == DUAL_THRESHOLD:
        # params: lower, upper, up rate, down rate, min, max, frequency, width (mA/s, mA)
        amp = s[0]
        if biomarker > p[1]:
            amp += p[2] * dt
        elif biomarker < p[0]:
            amp -= p[3] * dt
        amp = max(min(amp, p[5]), p[4])
        s[0] = amp
        return amp, p[6], p[7], math.nan
    if kind == PID:
        # params: setpoint, kp, ki, kd, min, max, frequency, width, error bound
        # state: integral (mA), previous error, has previous error
        error = biomarker - p[0]
        if p[3] != 0.0:
            error = max(min(error, p[8]), -p[8])
            prop = error * p[1]
            if s[2] != 0.0:
                prop += (error - s[1]) * (p[3] / dt)
            s[1] = error
            s[2] = 1.0
        else:
            prop = error * p[1]
        integral = s[0]
        candidate = integral + error * (p[2] * dt)
        # Conditional integration (NaN-ignoring like numpy's fmin/fmax).
        upper = _fmax(p[5] - prop, integral)
        lower = _fmin(p[4] - prop, integral)
        integral = _fmax(_fmin(candidate, upper), lower)
        s[0] = integral
        amp = max(min(prop + integral, p[5]), p[4])
        if math.isnan(prop + integral):
            amp = math.nan
        return amp, p[6], p[7], math.nan
    if kind == SYMPTOM_TRIGGERED:
        # params: threshold, sign (+1 above, -1 below), min duration s, burst s,
        # amplitude, frequency, width, pulses per burst
        # state: elapsed s, past the threshold since (s, NaN: not), blanked until s, started
        t = s[0] + dt
        s[0] = t
        if t >= s[2] and p[1] * (biomarker - p[0]) > 0.0:  # NaN: False
            if math.isnan(s[1]):
                s[1] = t
        else:
            s[1] = math.nan
        pulses = math.nan if s[3] != 0.0 else 0.0
        s[3] = 1.0
        if not math.isnan(s[1]) and t - s[1] >= p[2] - _TIME_SLACK_S:
            s[1] = math.nan
            s[2] = t + p[3] - _TIME_SLACK_S
            pulses = p[7]
        return p[4], p[5], p[6], pulses
    if kind == LQR:
        s[2 * int(p[0])] = biomarker  # the single output's slot
        return lqr_update(p, s)
    return math.nan, math.nan, math.nan, math.nan


@njit(cache=True)
def lqr_update(p, s):
    """One period of Kalman correction, LQR tracking law and prediction.

    ``p``: the parameter row (:data:`LQR_HEADER`, then the arrays); ``s``:
    state ``x[k|k-1]`` (nxa), ``x[k|k]`` (nxa), then the features ``y``
    (p), written by the caller. A non-finite feature skips the correction.
    Returns (amplitude mA, frequency Hz, pulse width us, NaN pulses).
    """
    nxa, nx, n_out, out = int(p[0]), int(p[1]), int(p[2]), int(p[3])
    y_at = _LQR_ARRAYS
    m_at = y_at + n_out
    c_at = m_at + nxa * n_out
    a_at = c_at + n_out * nxa
    b_at = a_at + nxa * nxa
    k_at = b_at + nxa
    xu_at = k_at + nx
    finite = True
    for o in range(n_out):
        if not math.isfinite(s[2 * nxa + o]):
            finite = False
    for j in range(nxa):
        s[nxa + j] = s[j]
    if finite:
        for o in range(n_out):
            e = s[2 * nxa + o] - p[y_at + o]
            for j in range(nxa):
                e -= p[c_at + o * nxa + j] * s[j]
            for j in range(nxa):
                s[nxa + j] += p[m_at + j * n_out + o] * e
    shift = p[5] - p[y_at + out]
    if p[4] != 0.0:
        shift -= s[nxa + nx + out]
    amp = p[6] + shift * p[7]
    for j in range(nx):
        amp -= p[k_at + j] * (s[nxa + j] - shift * p[xu_at + j])
    if not math.isfinite(amp):
        amp = p[8]
    amp = max(min(amp, p[9]), p[8])
    du = amp - p[6]
    for j in range(nxa):
        acc = p[b_at + j] * du
        for q in range(nxa):
            acc += p[a_at + j * nxa + q] * s[nxa + q]
        s[j] = acc
    return amp, p[10], p[11], math.nan


@njit(cache=True)
def lqr_batch(params, state, y, out):
    """:func:`lqr_update` for every instance; features ``y`` (n, p), amplitudes to ``out``."""
    nxa = int(params[0, 0])
    for i in range(y.shape[0]):
        for o in range(y.shape[1]):
            state[i, 2 * nxa + o] = y[i, o]
        out[i] = lqr_update(params[i], state[i])[0]


@njit(cache=True, inline="always")
def _fmin(a, b):
    if math.isnan(a):
        return b
    if math.isnan(b):
        return a
    return min(a, b)


@njit(cache=True, inline="always")
def _fmax(a, b):
    if math.isnan(a):
        return b
    if math.isnan(b):
        return a
    return max(a, b)
