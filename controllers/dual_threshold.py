"""Dual-threshold adaptive deep brain stimulation, after Velisar et al. 2019.

The amplitude ramps up while the biomarker is above an upper threshold, ramps
down while it is below a lower threshold, and holds in the band between them.
"""

from __future__ import annotations

import math
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
from closedloop.controllers.compiled import DUAL_THRESHOLD as TWIN_KIND
from closedloop.controllers.scalar import ramp_level

__all__ = ["DualThreshold"]


@fill_doc
class DualThreshold(Controller):
    """Ramp the amplitude up above one threshold and down below another.

    Parameters
    ----------
    lower_threshold : float, default 9.0
        Biomarker level, in the biomarker's units, below which the amplitude
        ramps down.
    upper_threshold : float, default 11.2
        Biomarker level, in the biomarker's units, above which the amplitude
        ramps up; at least ``lower_threshold``.
    ramp_up_ma_per_s : float, default 5.0
        Rate in mA/s at which the amplitude rises above the upper threshold,
        non-negative.
    ramp_down_ma_per_s : float, default 5.0
        Rate in mA/s at which the amplitude falls below the lower threshold,
        non-negative.
    min_amplitude_ma : float, default 0.0
        Lowest amplitude in mA, non-negative; also the amplitude after
        :meth:`reset`.
    max_amplitude_ma : float, default 3.0
        Highest amplitude in mA, at least ``min_amplitude_ma``.
    %(frequency_hz)s
    %(pulse_width_us)s

    Attributes
    ----------
    %(n_)s
    amplitude_ma_ : ndarray of shape (n,)
        Amplitude in mA commanded at the last update (``min_amplitude_ma``
        after :meth:`reset`).
    %(t_prev_)s

    Notes
    -----
    At each update, with ``dt`` the time since the previous update, each
    instance's amplitude ``A`` becomes

    * ``min(A + ramp_up_ma_per_s * dt, max_amplitude_ma)`` if
      ``biomarker > upper_threshold``,
    * ``max(A - ramp_down_ma_per_s * dt, min_amplitude_ma)`` if
      ``biomarker < lower_threshold``,
    * ``A`` otherwise (the dead band, which includes both thresholds and a
      NaN biomarker).

    Velisar et al. set both thresholds and ramp rates for each patient. The
    defaults fit the default experiment (``pd_beta_adbs``: STN-GPe, beta ARV
    in spikes/s), a choice made here: the median (9.0) and the 75th
    percentile (11.2) of the envelope without stimulation (measured over 19 s
    and four seeds), and ramps of 5 mA/s, fast enough to reach a suppressing
    amplitude within a beta burst (at 0.5 mA/s the amplitude hovers where
    this model's beta grows, and long bursts lengthen). Set them for any
    other model or sensing chain. The dead band between the
    thresholds avoids the rapid switching of a single threshold.

    Frequency and pulse-width commands are the same read-only arrays on
    every call; the amplitude array is new on every call and belongs to the
    caller. Parameter values are checked by :meth:`reset`.

    References
    ----------
    .. [1] Velisar A., Syrkin-Nikolau J., Blumenfeld Z., Trager M.H.,
       Afzal M.F., Prabhakar V., Bronte-Stewart H. (2019). Dual threshold
       neural closed loop deep brain stimulation in Parkinson disease
       patients. Brain Stimulation 12(4):868-876.

    Examples
    --------
    >>> import numpy as np
    >>> c = DualThreshold(lower_threshold=1.0, upper_threshold=2.0, ramp_up_ma_per_s=1.0)
    >>> c.reset(3, np.random.default_rng(0))
    >>> c.update(0.5, {"biomarker": np.array([0.5, 1.5, 2.5])})["amplitude_ma"]
    array([0. , 0. , 0.5])
    """

    name: ClassVar[str] = "dual_threshold"
    references: ClassVar[tuple[str, ...]] = (
        "Velisar A. et al. (2019). Dual threshold neural closed loop deep brain "
        "stimulation in Parkinson disease patients. Brain Stimulation 12(4):868-876.",
    )

    def __init__(
        self,
        *,
        lower_threshold: float = 9.0,
        upper_threshold: float = 11.2,
        ramp_up_ma_per_s: float = 5.0,
        ramp_down_ma_per_s: float = 5.0,
        min_amplitude_ma: float = 0.0,
        max_amplitude_ma: float = 3.0,
        frequency_hz: float = 130.0,
        pulse_width_us: float = 60.0,
    ) -> None:
        self.lower_threshold = lower_threshold
        self.upper_threshold = upper_threshold
        self.ramp_up_ma_per_s = ramp_up_ma_per_s
        self.ramp_down_ma_per_s = ramp_down_ma_per_s
        self.min_amplitude_ma = min_amplitude_ma
        self.max_amplitude_ma = max_amplitude_ma
        self.frequency_hz = frequency_hz
        self.pulse_width_us = pulse_width_us

    def reset(self, n: int, rng: np.random.Generator) -> None:
        """Check the parameters and set every instance to ``min_amplitude_ma``.

        %(reset_parameters)s

        Raises
        ------
        ValueError
            If a parameter is out of its range, ``lower_threshold`` exceeds
            ``upper_threshold`` or ``min_amplitude_ma`` exceeds
            ``max_amplitude_ma``.
        """
        units = "the biomarker's units"
        lower = _real("lower_threshold", self.lower_threshold, units)
        upper = _real("upper_threshold", self.upper_threshold, units)
        up_rate = _real("ramp_up_ma_per_s", self.ramp_up_ma_per_s, "mA/s", "non-negative")
        down_rate = _real("ramp_down_ma_per_s", self.ramp_down_ma_per_s, "mA/s", "non-negative")
        settings = check_settings(
            self, "min_amplitude_ma", "max_amplitude_ma", "frequency_hz", "pulse_width_us"
        )
        low, high = settings["min_amplitude_ma"], settings["max_amplitude_ma"]
        check_order("lower_threshold", lower, "upper_threshold", upper)
        check_order("min_amplitude_ma", low, "max_amplitude_ma", high)
        super().reset(n, rng)
        self.amplitude_ma_ = np.full(self.n_, low)
        self.t_prev_ = 0.0
        self._rates = np.array([-down_rate, 0.0, up_rate, 0.0])
        # searchsorted(edges, b, "right") classifies each biomarker value:
        # 0 for b < lower, 1 for lower <= b <= upper, 2 for b > upper and
        # 3 for NaN (sorted last). _steps holds the amplitude step (mA) of
        # each class for the period _dt (s).
        with np.errstate(over="ignore"):  # nextafter(max float) is inf: fine
            self._edges = np.array([lower, np.nextafter(upper, math.inf), math.nan])
        self._steps = np.zeros(4)
        self._dt = 0.0
        self._low = np.full(self.n_, low)
        self._high = np.full(self.n_, high)
        self._scratch = np.zeros(self.n_)
        self._fixed = fixed_command(self.n_, settings, "frequency_hz", "pulse_width_us")
        # For the n = 1 path: the finite class edges and the limits as floats.
        self._edges_f = tuple(float(e) for e in self._edges[:-1])
        self._limits_f = (float(self._low[0]), float(self._high[0])) if self.n_ else (0.0, 0.0)

    def update(self, t: float, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Ramp, hold or lower each instance's amplitude.

        %(update_biomarker)s

        %(returns_command)s
        """
        b = features["biomarker"]
        dt = t - self.t_prev_
        self.t_prev_ = t
        # Recompute the steps when the period changes, not when t - t_prev merely
        # differs from the last period by rounding (t = k * period often does).
        if abs(dt - self._dt) > 1e-6 * self._dt:
            self._dt = dt
            np.multiply(self._rates, dt if dt > 0 else 0.0, self._steps)
        if self.n_ == 1:  # floats: a third of the ufuncs' time (controllers.scalar)
            amp1 = ramp_level(
                self.amplitude_ma_, self._steps, self._edges_f, float(b[0]), *self._limits_f
            )
            return {"amplitude_ma": amp1, **self._fixed}
        # Ufuncs write to arrays distinct from their inputs: in place is slower for small n.
        level = np.add(self.amplitude_ma_, self._steps.take(self._edges.searchsorted(b, "right")))
        np.minimum(level, self._high, self._scratch)
        amp = np.maximum(self._scratch, self._low, self.amplitude_ma_)
        return {"amplitude_ma": amp.copy(), **self._fixed}

    def compiled(self) -> tuple[int, np.ndarray, np.ndarray]:
        """Program for the compiled kernels (see :meth:`Controller.compiled`)."""
        row = [
            self.lower_threshold,
            self.upper_threshold,
            self.ramp_up_ma_per_s,
            self.ramp_down_ma_per_s,
            self.min_amplitude_ma,
            self.max_amplitude_ma,
            self.frequency_hz,
            self.pulse_width_us,
        ]
        return twin_program(TWIN_KIND, row, self.amplitude_ma_.reshape(-1, 1).copy())

    def thresholds(self) -> dict[str, float]:
        """Return both thresholds.

        Returns
        -------
        dict of str to float
            ``lower_threshold`` and ``upper_threshold`` in the biomarker's units.
        """
        return {
            "lower_threshold": float(self.lower_threshold),
            "upper_threshold": float(self.upper_threshold),
        }
