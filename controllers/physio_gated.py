"""Physiologically gated bursts: VNS timed to the breath or the heartbeat.

Respiratory-gated auricular VNS (RAVANS, Napadow et al. 2012; Garcia et
al. 2017; Sclocco et al. 2019) delivers a short train of pulses in every
expiration, when the nucleus of the solitary tract is most receptive;
cardiac-gated aVNS (Tischer et al. 2024) delivers it at a chosen delay
after each R-peak (systole or diastole). This controller reads the
physiological clock's features (``physio_*``, see
:mod:`closedloop.physiology.process`) every control period and asks the
device for a burst of ``round(burst_s * frequency_hz)`` pulses (``pulses:
k``) once per target window, optionally only while a neural feature is
past a threshold and only within a session window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from closedloop.controllers.base import Controller, check_settings, fill_doc, fixed_command
from closedloop.controllers.base import real_parameter as _real

__all__ = ["GATES", "PhysioGated"]

#: The gates: respiratory halves, a delay after the R-peak, or none (a fixed interval).
GATES = ("expiration", "inspiration", "cardiac", "none")


@fill_doc
class PhysioGated(Controller):
    """A burst of pulses once per breath half or heartbeat, at a set delay.

    Parameters
    ----------
    gate : {"expiration", "inspiration", "cardiac", "none"}, default "expiration"
        ``expiration`` or ``inspiration`` (a burst ``delay_s`` after the
        start of every such half breath), ``cardiac`` (``delay_s`` after
        every R-peak), ``none`` (every ``interval_s``, whatever the
        breath: the ungated control). One gate for every instance, so an
        instance's commands depend on its own features only (compare
        gates across runs: a sweep over ``controller.params.gate``).
    delay_s : float, default 0.0
        Delay from the start of the target window, s (as the features
        arrive, ``physiology.sensor_delay_s`` after the event).
    burst_s : float, default 0.5
        Burst length, s: ``round(burst_s * frequency_hz)`` pulses.
    interval_s : float, default 4.0
        Interval of the ungated bursts, s (the mean breath period).
    amplitude_ma : float, default 1.0
        Burst amplitude in mA, non-negative.
    frequency_hz : float, default 25.0
        Pulse frequency in the burst in Hz, positive.
    pulse_width_us : float, default 450.0
        Pulse width per phase in microseconds, positive.
    start_s : float, default 0.0
        Start of the session window, s: no burst before it.
    stop_s : float, default inf
        End of the session window, s: no burst from then on.
    feature : str or None, default None
        A neural feature (``biomarker`` or a sensing feature) that must
        also be past ``threshold`` for a burst; None for none.
    threshold : float, default 0.0
        Threshold of ``feature``, in its units.
    direction : {"above", "below"}, default "above"
        Whether ``feature`` must be above or below ``threshold`` (strictly).

    Attributes
    ----------
    %(n_)s
    armed_ : ndarray of bool, shape (n,)
        Whether the current window still awaits its burst.
    n_requests_ : ndarray of shape (n,)
        Bursts asked for since :meth:`reset`.

    Notes
    -----
    A window opens when the target half breath begins (the feature
    ``physio_resp_expiring`` changes to the target, or
    ``physio_resp_time_in_phase_s`` falls) or at an R-peak
    (``physio_cardiac_time_since_r_s`` falls); the burst is asked for at
    the first control period with the time in the window at least
    ``delay_s``, and not again before the next window. The defaults follow
    RAVANS: 0.5 s trains in early expiration at 25 Hz and 450 us (recalled
    from the RAVANS papers, unchecked; Sclocco et al. 2020, abstract seen,
    found 100 Hz evoking the strongest NTS response of 2-100 Hz, beyond
    the auricular preset's 30 Hz ceiling); 1 mA is a choice (taVNS is set per subject near
    the perception threshold).

    References
    ----------
    .. [1] Sclocco R. et al. (2019). Brain Stimul 12:911-921.
    .. [2] Sclocco R. et al. (2020). Stimulus frequency modulates brainstem
       response to respiratory-gated transcutaneous auricular vagus nerve
       stimulation. Brain Stimul 13:970-978.
    .. [3] Garcia R.G. et al. (2017). Modulation of brainstem activity and
       connectivity by respiratory-gated auricular vagal afferent nerve
       stimulation in migraine patients. Pain 158:1461-1472.
    .. [4] Tischer J. et al. (2024). Front Physiol, doi 10.3389/fphys.2024.1495868.
    """

    name: ClassVar[str] = "physio_gated"
    logs_triggers: ClassVar[bool] = True
    references: ClassVar[tuple[str, ...]] = (
        "Sclocco R. et al. (2019). Brain Stimul 12:911-921.",
        "Garcia R.G. et al. (2017). Pain 158:1461-1472.",
    )

    def __init__(
        self,
        *,
        gate: str = "expiration",
        delay_s: float = 0.0,
        burst_s: float = 0.5,
        interval_s: float = 4.0,
        amplitude_ma: float = 1.0,
        frequency_hz: float = 25.0,
        pulse_width_us: float = 450.0,
        start_s: float = 0.0,
        stop_s: float = math.inf,
        feature: str | None = None,
        threshold: float = 0.0,
        direction: str = "above",
    ) -> None:
        self.gate = gate
        self.delay_s = delay_s
        self.burst_s = burst_s
        self.interval_s = interval_s
        self.amplitude_ma = amplitude_ma
        self.frequency_hz = frequency_hz
        self.pulse_width_us = pulse_width_us
        self.start_s = start_s
        self.stop_s = stop_s
        self.feature = feature
        self.threshold = threshold
        self.direction = direction

    def _gate(self) -> str:
        if self.gate not in GATES:
            raise ValueError(f"gate must be one of {', '.join(GATES)}, got {self.gate!r}.")
        return self.gate

    @property
    def required_features(self) -> tuple[str, ...]:  # type: ignore[override]
        """The physiological features the gates read, and the neural one if any."""
        gate = self._gate()
        out: list[str] = [self.feature] if self.feature else []
        if gate in ("expiration", "inspiration"):
            out += ["physio_resp_expiring", "physio_resp_time_in_phase_s"]
        if gate == "cardiac":
            out.append("physio_cardiac_time_since_r_s")
        return tuple(out) or ("biomarker",)

    def reset(self, n: int, rng: np.random.Generator) -> None:
        """Check the parameters; every window closed.

        %(reset_parameters)s

        %(reset_raises)s
        """
        gate = self._gate()
        self._delay = _real("delay_s", self.delay_s, "s", "non-negative")
        self._interval = _real("interval_s", self.interval_s, "s", "positive")
        self._burst = _real("burst_s", self.burst_s, "s", "positive")
        self._start = _real("start_s", self.start_s, "s", "non-negative")
        if not (isinstance(self.stop_s, int | float) and self.stop_s >= self._start):
            raise ValueError(f"stop_s must be a time in s at least start_s, got {self.stop_s!r}.")
        if self.direction not in ("above", "below"):
            raise ValueError(f"direction must be 'above' or 'below', got {self.direction!r}.")
        self._threshold = _real("threshold", self.threshold, "the feature's units")
        settings = check_settings(self, "amplitude_ma", "frequency_hz", "pulse_width_us")
        self._pulses = float(max(1, round(self._burst * settings["frequency_hz"])))
        super().reset(n, rng)
        # Boolean masks over the batch (one gate for all): one code path per gate.
        self._resp = np.full(self.n_, gate in ("expiration", "inspiration"))
        self._target = 1.0 if gate == "expiration" else 0.0
        self._cardiac = np.full(self.n_, gate == "cardiac")
        self._none = np.full(self.n_, gate == "none")
        self.armed_ = np.zeros(self.n_, dtype=bool)
        self.n_requests_ = np.zeros(self.n_)
        self._last_in = np.full(self.n_, math.inf)
        self._next_free = np.full(self.n_, self._start)
        self._started = False
        self._fixed = fixed_command(self.n_, settings)

    def update(self, t: float, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Open windows, and ask for a burst where one has reached its delay.

        %(update_feature)s

        Returns
        -------
        dict of str to ndarray
            The burst settings and ``pulses``: the burst's count where one
            is asked for, NaN elsewhere, 0 at the first update.
        """
        n = self.n_
        in_window = np.full(n, math.nan)
        opened = np.zeros(n, dtype=bool)
        if self._resp.any():
            exp = np.asarray(features["physio_resp_expiring"], dtype=float)
            since = np.asarray(features["physio_resp_time_in_phase_s"], dtype=float)
            on_target = self._resp & (exp == self._target)
            opened |= on_target & (since < self._last_in)
            in_window = np.where(on_target, since, in_window)
        if self._cardiac.any():
            since = np.asarray(features["physio_cardiac_time_since_r_s"], dtype=float)
            opened |= self._cardiac & (since < self._last_in)
            in_window = np.where(self._cardiac, since, in_window)
        # Ungated: a window every interval_s from start_s.
        due = self._none & (t >= self._next_free)
        self._next_free = np.where(due, self._next_free + self._interval, self._next_free)
        opened |= due
        in_window = np.where(self._none, np.where(due, self._delay, math.nan), in_window)
        self._last_in = np.where(np.isnan(in_window), math.inf, in_window)
        self.armed_ = (self.armed_ | opened) & ~np.isnan(in_window)
        fire = self.armed_ & (in_window >= self._delay - 1e-9)
        fire &= (t >= self._start) & (t < self.stop_s)
        if self.feature:
            x = np.asarray(features[self.feature], dtype=float)
            sign = 1.0 if self.direction == "above" else -1.0
            fire &= sign * (x - self._threshold) > 0.0
        self.armed_ &= ~fire
        self.n_requests_ += fire
        pulses = np.where(fire, self._pulses, math.nan if self._started else 0.0)
        self._started = True
        return {**self._fixed, "pulses": pulses}
