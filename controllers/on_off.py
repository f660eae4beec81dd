"""Single-threshold (on-off) adaptive deep brain stimulation, after Little et al. 2013.

Stimulation is ramped on while the biomarker is above a threshold and ramped
off while it is at or below it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from closedloop.controllers.base import (
    Controller,
    check_settings,
    fill_doc,
    fixed_command,
    twin_program,
)
from closedloop.controllers.base import real_parameter as _real
from closedloop.controllers.compiled import ON_OFF as TWIN_KIND
from closedloop.controllers.scalar import ramp_level

__all__ = ["OnOff"]


@fill_doc
class OnOff(Controller):
    """Switch stimulation on above a biomarker threshold, with ramped transitions.

    Parameters
    ----------
    threshold : float, default 11.2
        Biomarker level, in the biomarker's units, above which stimulation is
        switched on. Little et al. set it at the 75th percentile of the beta
        amplitude recorded without stimulation; the default is that
        percentile for the default experiment (``pd_beta_adbs``: STN-GPe,
        beta ARV in spikes/s; 11.07-11.41 over seeds, metric
        ``burst_threshold``). Set it for any other model or sensing chain.
    amplitude_ma : float, default 2.0
        Amplitude in mA when stimulation is fully on, non-negative.
    %(frequency_hz)s
    %(pulse_width_us)s
    ramp_time_s : float, default 0.25
        Time in seconds for the commanded amplitude to go from 0 to
        ``amplitude_ma`` (and back), non-negative; 0 switches instantly.

    Attributes
    ----------
    %(n_)s
    amplitude_ma_ : ndarray of shape (n,)
        Amplitude in mA commanded at the last update (0 after :meth:`reset`).
    %(t_prev_)s

    Notes
    -----
    At each update, with ``dt`` the time since the previous update, the
    commanded amplitude of each instance moves towards ``amplitude_ma`` when
    ``biomarker > threshold`` and towards 0 otherwise, by at most
    ``amplitude_ma * dt / ramp_time_s``. It starts at 0, so after ``k``
    periods above threshold it is ``min(k * dt / ramp_time_s, 1) * amplitude_ma``.
    A NaN biomarker counts as below threshold (stimulation ramps off).

    The ramp is the controller's own, as in Little et al. (250 ms on and
    off); the device applies its own ramp-rate limit on top. No minimum on
    time or hysteresis is applied: see ``DualThreshold`` for a dead band.

    Frequency and pulse-width commands are the same read-only arrays on
    every call; the amplitude array is new on every call and belongs to the
    caller. Parameter values are checked by :meth:`reset`.

    References
    ----------
    .. [1] Little S., Pogosyan A., Neal S., Zavala B., Zrinzo L., Hariz M.,
       Foltynie T., Limousin P., Ashkan K., FitzGerald J., Green A.L.,
       Aziz T.Z., Brown P. (2013). Adaptive deep brain stimulation in advanced
       Parkinson disease. Annals of Neurology 74(3):449-457.

    Examples
    --------
    >>> import numpy as np
    >>> c = OnOff(threshold=1.0, amplitude_ma=2.0, ramp_time_s=0.25)
    >>> c.reset(1, np.random.default_rng(0))
    >>> c.update(0.05, {"biomarker": np.array([3.0])})["amplitude_ma"]
    array([0.4])
    """

    name: ClassVar[str] = "on_off"
    references: ClassVar[tuple[str, ...]] = (
        "Little S. et al. (2013). Adaptive deep brain stimulation in advanced "
        "Parkinson disease. Annals of Neurology 74(3):449-457.",
    )

    def __init__(
        self,
        *,
        threshold: float = 11.2,
        amplitude_ma: float = 2.0,
        frequency_hz: float = 130.0,
        pulse_width_us: float = 60.0,
        ramp_time_s: float = 0.25,
    ) -> None:
        self.threshold = threshold
        self.amplitude_ma = amplitude_ma
        self.frequency_hz = frequency_hz
        self.pulse_width_us = pulse_width_us
        self.ramp_time_s = ramp_time_s

    def reset(self, n: int, rng: np.random.Generator) -> None:
        """Check the parameters and switch every instance off.

        %(reset_parameters)s

        %(reset_raises)s
        """
        threshold = _real("threshold", self.threshold, "the biomarker's units")
        settings = check_settings(self, "amplitude_ma", "frequency_hz", "pulse_width_us")
        amplitude_ma = settings["amplitude_ma"]
        ramp_time_s = _real("ramp_time_s", self.ramp_time_s, "s", "non-negative")
        super().reset(n, rng)
        self.amplitude_ma_ = np.zeros(self.n_)
        self.t_prev_ = 0.0
        # Ramp rate in mA/s; infinite for an instant switch.
        self._rate = amplitude_ma / ramp_time_s if ramp_time_s > 0 else math.inf
        # searchsorted(edges, b, "right") classifies each biomarker value:
        # 0 for b <= threshold, 1 for b > threshold, 2 for NaN (sorted last).
        with np.errstate(over="ignore"):  # nextafter(max float) is inf: fine
            self._edges = np.array([np.nextafter(threshold, math.inf), math.nan])
        # Amplitude step (mA) of each class for the period _dt (s).
        self._steps = np.zeros(3)
        self._dt = 0.0
        self._zero = np.zeros(self.n_)
        self._scratch = np.zeros(self.n_)
        self._full = np.full(self.n_, amplitude_ma)
        self._fixed = fixed_command(self.n_, settings, "frequency_hz", "pulse_width_us")
        # For the n = 1 path: the finite class edges and the limits as floats.
        self._edges_f = tuple(float(e) for e in self._edges[:-1])
        self._limits_f = (float(self._zero[0]), float(self._full[0])) if self.n_ else (0.0, 0.0)

    def update(self, t: float, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Ramp each instance's amplitude towards on or off.

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
            step = self._rate * dt if dt > 0 else 0.0
            steps = self._steps
            steps[0] = -step
            steps[1] = step
            steps[2] = -step
        if self.n_ == 1:  # floats: a third of the ufuncs' time (controllers.scalar)
            amp1 = ramp_level(
                self.amplitude_ma_, self._steps, self._edges_f, float(b[0]), *self._limits_f
            )
            return {"amplitude_ma": amp1, **self._fixed}
        # Ufuncs write to arrays distinct from their inputs: in place is slower for small n.
        level = np.add(self.amplitude_ma_, self._steps.take(self._edges.searchsorted(b, "right")))
        np.minimum(level, self._full, self._scratch)
        amp = np.maximum(self._scratch, self._zero, self.amplitude_ma_)
        return {"amplitude_ma": amp.copy(), **self._fixed}

    def compiled(self) -> tuple[int, np.ndarray, np.ndarray]:
        """Program for the compiled kernels (see :meth:`Controller.compiled`)."""
        row = [
            self.threshold,
            self.amplitude_ma,
            self.frequency_hz,
            self.pulse_width_us,
            self._rate,
        ]
        return twin_program(TWIN_KIND, row, self.amplitude_ma_.reshape(-1, 1).copy())

    def thresholds(self) -> dict[str, float]:
        """Return the switching threshold.

        Returns
        -------
        dict of str to float
            ``{"threshold": threshold}`` in the biomarker's units.
        """
        return {"threshold": float(self.threshold)}
