"""Proportional-integral-derivative amplitude control, after Fleming et al. 2020.

The amplitude follows ``kp * e + ki * integral(e dt) + kd * de/dt`` of the
error between the biomarker and a set point, within amplitude bounds, with
conditional integration against integrator windup.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from closedloop.controllers.base import (
    Controller,
    check_order,
    check_settings,
    fill_doc,
    fixed_command,
    twin_program,
)
from closedloop.controllers.base import real_parameter as _real
from closedloop.controllers.compiled import PID as TWIN_KIND
from closedloop.controllers.scalar import clip, fmax, fmin

__all__ = ["PID"]


@fill_doc
class PID(Controller):
    """PID control of the amplitude towards a biomarker set point.

    Parameters
    ----------
    setpoint : float, default 9.0
        Target biomarker level, in the biomarker's units. The default is the
        median of the default experiment's envelope without stimulation
        (``pd_beta_adbs``: STN-GPe, beta ARV in spikes/s; 9.03 over 4 seeds
        and 19 s, 8.7-9.3 per seed), a choice made here. Set it for any
        other model or sensing chain.
    kp : float, default 0.1
        Proportional gain in mA per biomarker unit (mA per spikes/s for the
        default experiment).
    ki : float, default 2.0
        Integral gain in mA per biomarker unit per second. The default gains
        are a choice made here for the default experiment (those of its
        benchmark scenario): the amplitude follows the bursts (on about two
        thirds of the time, long bursts removed, about 15 % of the energy of
        continuous 2 mA stimulation), where the earlier 1.0/1.0/5.0 held
        the amplitude at its maximum.
    kd : float, default 0.0
        Derivative gain in mA s per biomarker unit.
    min_amplitude_ma : float, default 0.0
        Lowest amplitude in mA, non-negative.
    max_amplitude_ma : float, default 3.0
        Highest amplitude in mA, at least ``min_amplitude_ma``.
    %(frequency_hz)s
    %(pulse_width_us)s

    Attributes
    ----------
    %(n_)s
    integral_ma_ : ndarray of shape (n,)
        Integral term ``ki * integral(e dt)`` in mA, after anti-windup
        (0 after :meth:`reset`).
    error_prev_ : ndarray of shape (n,) or None
        Error at the last update, kept for the derivative term when
        ``kd != 0`` (None after :meth:`reset`).
    %(t_prev_)s

    Notes
    -----
    With ``e = biomarker - setpoint`` and ``dt`` the time since the previous
    update, each update computes

    .. math::

        P = k_p e + k_d (e - e_{prev}) / dt, \\qquad
        I \\leftarrow I + k_i e \\, dt, \\qquad
        A = \\min(\\max(P + I, A_{min}), A_{max})

    The integral is a right-rectangle sum (the error at the end of each
    period times the period), so for a constant error from ``t = 0`` the
    integral term at time ``t`` is exactly ``ki * e * t``. The derivative
    term is 0 on the first update after :meth:`reset` and is not filtered:
    the biomarker should already be smooth (an envelope).

    Anti-windup is conditional integration: the integrator is frozen while
    the output is saturated and the error would push it further into
    saturation. Precisely, an increment that would take ``P + I`` above
    ``max_amplitude_ma`` is cut so that ``P + I`` lands on the limit, and
    if ``P + I`` is already above it the integral term does not move
    (likewise below ``min_amplitude_ma``); increments that bring the output
    back towards the range are always applied. After a long saturation the
    integral term has stopped where ``P + I`` met the limit instead of
    growing, so the output leaves saturation in the first period in which
    the error changes sign (for ``kp, ki >= 0``), where a naive integrator
    would first have to unwind everything accumulated during the
    saturation. See Astrom and Hagglund [2]_ on conditional integration; the
    companion code of Fleming et al. [1]_ undoes the period's integration
    whenever the output saturates, whatever the sign of the error.

    A NaN biomarker gives a NaN amplitude for that period (and the next,
    through the derivative, when ``kd != 0``; the device decides what to
    deliver) and leaves the integral term unchanged. An error so large that
    ``kp * e`` overflows gives the limit and also leaves the integral term
    unchanged. With ``kd != 0`` the error is bounded to +-1e150 biomarker
    units so that the derivative term cannot overflow.

    The default set point and gains fit the default experiment only; they
    must be tuned for another model or patient. Frequency and pulse-width
    commands are the same read-only arrays on every call; the amplitude
    array is new on every call and belongs to the caller. Parameter values
    are checked by :meth:`reset`.

    References
    ----------
    .. [1] Fleming J.E., Dunn E., Lowery M.M. (2020). Simulation of closed-loop
       deep brain stimulation control schemes for suppression of pathological
       beta oscillations in Parkinson's disease. Frontiers in Neuroscience
       14:166.
    .. [2] Astrom K.J., Hagglund T. (2006). Advanced PID Control. ISA
       (chapter on integrator windup).

    Examples
    --------
    >>> import numpy as np
    >>> c = PID(setpoint=1.0, kp=0.0, ki=2.0)
    >>> c.reset(1, np.random.default_rng(0))
    >>> c.update(0.25, {"biomarker": np.array([2.0])})["amplitude_ma"]
    array([0.5])
    """

    name: ClassVar[str] = "pid"
    references: ClassVar[tuple[str, ...]] = (
        "Fleming J.E., Dunn E., Lowery M.M. (2020). Simulation of closed-loop deep "
        "brain stimulation control schemes for suppression of pathological beta "
        "oscillations in Parkinson's disease. Frontiers in Neuroscience 14:166.",
        "Astrom K.J., Hagglund T. (2006). Advanced PID Control. ISA.",
    )

    def __init__(
        self,
        *,
        setpoint: float = 9.0,
        kp: float = 0.1,
        ki: float = 2.0,
        kd: float = 0.0,
        min_amplitude_ma: float = 0.0,
        max_amplitude_ma: float = 3.0,
        frequency_hz: float = 130.0,
        pulse_width_us: float = 60.0,
    ) -> None:
        self.setpoint = setpoint
        self.kp = kp
        self.ki = ki
        self.kd = kd
        self.min_amplitude_ma = min_amplitude_ma
        self.max_amplitude_ma = max_amplitude_ma
        self.frequency_hz = frequency_hz
        self.pulse_width_us = pulse_width_us

    def reset(self, n: int, rng: np.random.Generator) -> None:
        """Check the parameters and clear the integral and derivative state.

        %(reset_parameters)s

        Raises
        ------
        ValueError
            If a parameter is out of its range or ``min_amplitude_ma``
            exceeds ``max_amplitude_ma``.
        """
        setpoint = _real("setpoint", self.setpoint, "the biomarker's units")
        kp = _real("kp", self.kp, "mA per biomarker unit")
        ki = _real("ki", self.ki, "mA per biomarker unit per second")
        kd = _real("kd", self.kd, "mA s per biomarker unit")
        settings = check_settings(
            self, "min_amplitude_ma", "max_amplitude_ma", "frequency_hz", "pulse_width_us"
        )
        low, high = settings["min_amplitude_ma"], settings["max_amplitude_ma"]
        check_order("min_amplitude_ma", low, "max_amplitude_ma", high)
        super().reset(n, rng)
        self.integral_ma_ = np.zeros(self.n_)
        self.error_prev_: np.ndarray | None = None
        self.t_prev_ = 0.0
        self._ki = ki
        self._kd = kd
        self._setpoint = np.full(self.n_, setpoint)
        self._kp = np.full(self.n_, kp)
        # ki * dt and kd / dt for the period _dt (s).
        self._ki_dt = np.zeros(self.n_)
        self._kd_per_dt = np.zeros(self.n_)
        self._dt = 0.0
        self._error_bound = np.full(self.n_, 1e150)
        self._error_bound_neg = np.full(self.n_, -1e150)
        self._low = np.full(self.n_, low)
        self._high = np.full(self.n_, high)
        self._fixed = fixed_command(self.n_, settings, "frequency_hz", "pulse_width_us")
        # The same settings as floats, for the n = 1 path (_update_one).
        self._setpoint_f, self._kp_f = float(setpoint), float(kp)
        self._low_f, self._high_f = float(low), float(high)

    def update(self, t: float, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Compute each instance's amplitude from the biomarker error.

        %(update_biomarker)s

        %(returns_command)s
        """
        dt = t - self.t_prev_
        self.t_prev_ = t
        # Recompute the scaled gains when the period changes, not when t - t_prev merely
        # differs from the last period by rounding (t = k * period often does).
        if abs(dt - self._dt) > 1e-6 * self._dt:
            self._dt = dt
            self._ki_dt.fill(self._ki * dt if dt > 0 else 0.0)
            self._kd_per_dt.fill(self._kd / dt if dt > 0 else 0.0)
        if self.n_ == 1:
            return self._update_one(features["biomarker"])
        error = np.subtract(features["biomarker"], self._setpoint)
        if self._kd != 0.0:
            # Bounded so that kp * e and the derivative term cannot overflow to
            # opposite infinities (inf - inf is NaN); far beyond any biomarker.
            error = np.maximum(np.minimum(error, self._error_bound), self._error_bound_neg)
            p = np.multiply(error, self._kp)
            if self.error_prev_ is not None:
                d = np.subtract(error, self.error_prev_)
                p = np.add(p, np.multiply(d, self._kd_per_dt))
            self.error_prev_ = error
        else:
            p = np.multiply(error, self._kp)
        # Conditional integration: the candidate integral term may not take
        # p + integral beyond a limit (it is cut to land on the limit), nor
        # further beyond it if it already is. fmax/fmin ignore NaN, so a NaN
        # biomarker leaves the integral term unchanged, and an infinite p
        # (overflow) freezes it instead of making it NaN.
        integral = self.integral_ma_
        candidate = np.add(integral, np.multiply(error, self._ki_dt))
        upper = np.fmax(np.subtract(self._high, p), integral)
        lower = np.fmin(np.subtract(self._low, p), integral)
        np.fmax(np.fmin(candidate, upper), lower, integral)
        amplitude = np.maximum(np.minimum(np.add(p, integral), self._high), self._low)
        return {"amplitude_ma": amplitude, **self._fixed}

    def _update_one(self, biomarker: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`update` at n = 1 in float arithmetic, bit for bit the array path's.

        Thirteen ufunc calls on one-element arrays cost about 4.5 us a
        period, half the budget of a 1 ms loop (issue 18, gap 5); the same
        IEEE operations on Python floats cost a fraction of that.
        :mod:`closedloop.controllers.scalar` keeps numpy's NaN rules.
        """
        error = float(biomarker[0]) - self._setpoint_f
        if self._kd != 0.0:
            error = clip(error, -1e150, 1e150)  # the array path's _error_bound
            p = error * self._kp_f
            prev = self.error_prev_
            if prev is not None:
                p = p + (error - float(prev[0])) * float(self._kd_per_dt[0])
            self.error_prev_ = np.array((error,))
        else:
            p = error * self._kp_f
        integral_arr = self.integral_ma_
        integral = float(integral_arr[0])
        candidate = integral + error * float(self._ki_dt[0])
        upper = fmax(self._high_f - p, integral)
        lower = fmin(self._low_f - p, integral)
        integral = fmax(fmin(candidate, upper), lower)
        integral_arr[0] = integral
        amplitude = clip(p + integral, self._low_f, self._high_f)
        return {"amplitude_ma": np.array((amplitude,)), **self._fixed}

    def compiled(self) -> tuple[int, np.ndarray, np.ndarray]:
        """Program for the compiled kernels (see :meth:`Controller.compiled`)."""
        row = [
            self.setpoint,
            self.kp,
            self.ki,
            self.kd,
            self.min_amplitude_ma,
            self.max_amplitude_ma,
            self.frequency_hz,
            self.pulse_width_us,
            1e150,
        ]
        state = np.zeros((self.n_, 3))
        state[:, 0] = self.integral_ma_
        if self.error_prev_ is not None:
            state[:, 1] = self.error_prev_
            state[:, 2] = 1.0
        return twin_program(TWIN_KIND, row, state)

    def thresholds(self) -> dict[str, float]:
        """Return the set point.

        Returns
        -------
        dict of str to float
            ``{"setpoint": setpoint}`` in the biomarker's units.
        """
        return {"setpoint": float(self.setpoint)}
