"""State kick: detect a pathological high-activity state, kick the population out of it.

For models with two stable states, a healthy low-activity one and a
pathological high-activity one that noise switches between (the
``bistable`` regime of :class:`closedloop.models.WilsonCowan`; the
bistable-network account of absence seizures of Suffczynski et al. 2004),
there is nothing to suppress continuously: one well-aimed perturbation
returns the population to the healthy state, where it stays until noise
switches it again. The controller watches a level, declares the
pathological state when the level has stayed above a threshold for a dwell
time, answers with a short stimulation burst (the kick), then waits a
refractory period, as responsive neurostimulators do (Sun & Morrell 2014).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from closedloop.controllers.base import Controller, check_settings, fill_doc, fixed_command
from closedloop.controllers.base import real_parameter as _real
from closedloop.sensing import FEATURES

__all__ = ["StateKick"]

# Slack, in seconds, on comparisons of times built from sums of control periods.
_SLACK_S = 1e-9


@fill_doc
class StateKick(Controller):
    """Kick each instance out of a pathological high state with a stimulation burst.

    Parameters
    ----------
    feature : str, default "signal"
        Feature whose level is watched: ``"signal"`` (the last sensed sample:
        the model's activity level, to be listed in ``sensing.features``),
        ``"biomarker"`` (the band envelope) or another of
        :data:`closedloop.sensing.FEATURES`.
    threshold : float, default 0.2
        Level above which an instance counts as in the pathological state,
        in the feature's units (the default sits between the two states of
        the ``bistable`` Wilson-Cowan regime, E = 0.035 and 0.364).
    dwell_s : float, default 0.02
        Time in seconds the feature must stay above the threshold before a
        kick, non-negative: noise excursions shorter than this are ignored.
    amplitude_ma : float, default 3.0
        Kick amplitude in mA, non-negative.
    frequency_hz : float, default 130.0
        Pulse frequency of the kick in Hz, positive.
    pulse_width_us : float, default 100.0
        Pulse width per phase in microseconds, positive.
    kick_duration_s : float, default 0.05
        Kick duration in seconds, positive; rounded up to whole control
        periods.
    refractory_s : float, default 0.2
        Time in seconds after the end of a kick during which no new kick is
        given, non-negative.
    start_s : float, default 0.0
        Time in seconds before which the controller watches but never kicks,
        non-negative: an untreated stretch at the start of a run, to compare
        with what follows.

    Attributes
    ----------
    %(n_)s
    above_s_ : ndarray of shape (n,)
        Time in seconds the feature has stayed above the threshold.
    kick_end_s_ : ndarray of shape (n,)
        Time in seconds at which the current or last kick ends (``-inf``
        before the first).
    n_kicks_ : ndarray of shape (n,)
        Kicks given since :meth:`reset`.
    %(t_prev_)s

    Notes
    -----
    At each update, at time ``t`` (the end of the period just sensed), an
    instance's time above the threshold grows by the time since the previous
    update if its feature is above the threshold and returns to 0 otherwise
    (a NaN feature counts as below). It is kicked when that time reaches
    ``dwell_s`` and it is neither kicking nor refractory
    (``t >= kick_end_s_ + refractory_s``); the kick sets
    ``kick_end_s_ = t + kick_duration_s``; before ``start_s`` no instance
    is kicked. The commanded amplitude is
    ``amplitude_ma`` while ``t < kick_end_s_`` and 0 otherwise. The time
    above keeps counting through kicks: if a kick fails, the next comes as
    soon as the refractory period ends.

    Why an exciting stimulus can end a high-activity state: stimulation
    recruits inhibitory cells as well as excitatory ones, and in the
    Wilson-Cowan model the inhibition it raises (slower than excitation)
    pulls the excitatory activity below the saddle that separates the two
    states; when the kick ends, excitation settles in the low state (see
    :mod:`closedloop.models.wilson_cowan`). A kick delivered in the low
    state leaves it there, so false detections cost energy, not relapse.

    The kick is gated by the amplitude over the device's continuous pulse
    train: ``pulses`` is not commanded, because every command must be finite
    for :func:`closedloop.testing.controller.check_controller` and no finite
    ``pulses`` value leaves a burst under way alone. The device must
    therefore switch its amplitude fast compared with the kick: give it a
    fast ramp (e.g. ``device.ramp_rate_ma_per_s: 1000``, 3 mA in 3 ms).
    Parameter values are checked by :meth:`reset`.

    References
    ----------
    .. [1] Suffczynski P., Kalitzin S., Lopes da Silva F.H. (2004). Dynamics
       of non-convulsive epileptic phenomena modeled by a bistable neuronal
       network. Neuroscience 126(2):467-484.
    .. [2] Sun F.T., Morrell M.J. (2014). The RNS System: responsive cortical
       stimulation for the treatment of refractory partial epilepsy. Expert
       Review of Medical Devices 11(6):563-572.
    .. [3] Wilson H.R., Cowan J.D. (1972). Excitatory and inhibitory
       interactions in localized populations of model neurons. Biophysical
       Journal 12(1):1-24.

    Examples
    --------
    >>> import numpy as np
    >>> c = StateKick(threshold=0.2, dwell_s=0.02, kick_duration_s=0.02, refractory_s=0.1)
    >>> c.reset(1, np.random.default_rng(0))
    >>> [float(c.update(0.01 * k, {"signal": np.array([0.3])})["amplitude_ma"][0])
    ...  for k in range(1, 6)]
    [0.0, 3.0, 3.0, 0.0, 0.0]
    """

    name: ClassVar[str] = "state_kick"
    references: ClassVar[tuple[str, ...]] = (
        "Suffczynski P., Kalitzin S., Lopes da Silva F.H. (2004). Dynamics of "
        "non-convulsive epileptic phenomena modeled by a bistable neuronal network. "
        "Neuroscience 126(2):467-484.",
        "Sun F.T., Morrell M.J. (2014). The RNS System: responsive cortical stimulation "
        "for the treatment of refractory partial epilepsy. Expert Rev Med Devices "
        "11(6):563-572.",
    )

    def __init__(
        self,
        *,
        feature: str = "signal",
        threshold: float = 0.2,
        dwell_s: float = 0.02,
        amplitude_ma: float = 3.0,
        frequency_hz: float = 130.0,
        pulse_width_us: float = 100.0,
        kick_duration_s: float = 0.05,
        refractory_s: float = 0.2,
        start_s: float = 0.0,
    ) -> None:
        self.feature = feature
        self.threshold = threshold
        self.dwell_s = dwell_s
        self.amplitude_ma = amplitude_ma
        self.frequency_hz = frequency_hz
        self.pulse_width_us = pulse_width_us
        self.kick_duration_s = kick_duration_s
        self.refractory_s = refractory_s
        self.start_s = start_s

    @property
    def required_features(self) -> tuple[str, ...]:  # type: ignore[override]
        """The one feature the detector reads."""
        return (self.feature,)

    def reset(self, n: int, rng: np.random.Generator) -> None:
        """Check the parameters and clear every detector.

        %(reset_parameters)s

        %(reset_raises)s
        """
        known = ("biomarker", *FEATURES)
        if self.feature not in known:
            raise ValueError(f"feature must be one of {', '.join(known)}, got {self.feature!r}.")
        threshold = _real("threshold", self.threshold, "the feature's units")
        dwell = _real("dwell_s", self.dwell_s, "s", "non-negative")
        settings = check_settings(self, "amplitude_ma", "frequency_hz", "pulse_width_us")
        amplitude = settings["amplitude_ma"]
        kick = _real("kick_duration_s", self.kick_duration_s, "s", "positive")
        refractory = _real("refractory_s", self.refractory_s, "s", "non-negative")
        start = _real("start_s", self.start_s, "s", "non-negative")
        super().reset(n, rng)
        self.above_s_ = np.zeros(self.n_)
        self.kick_end_s_ = np.full(self.n_, -math.inf)
        self.n_kicks_ = np.zeros(self.n_)
        self.t_prev_ = 0.0
        self._threshold = threshold
        self._dwell = dwell - _SLACK_S
        self._kick = kick
        self._wait = refractory - _SLACK_S  # after kick_end_s_
        self._start = start - _SLACK_S
        self._amplitude = amplitude
        self._fixed = fixed_command(self.n_, settings, "frequency_hz", "pulse_width_us")

    def update(self, t: float, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Update the detectors and command each instance's kick amplitude.

        %(update_feature)s

        Returns
        -------
        dict of str to ndarray
            ``amplitude_ma``, ``frequency_hz`` and ``pulse_width_us``, shape ``(n,)``.
        """
        dt = t - self.t_prev_
        self.t_prev_ = t
        above = np.greater(features[self.feature], self._threshold)  # False for NaN
        self.above_s_ = np.where(above, self.above_s_ + dt, 0.0)
        ready = t >= self.kick_end_s_ + self._wait
        trigger = ready & (self.above_s_ >= self._dwell) & above
        if t < self._start:
            trigger[:] = False
        self.kick_end_s_ = np.where(trigger, t + self._kick, self.kick_end_s_)
        self.n_kicks_ = self.n_kicks_ + trigger
        kicking = t < self.kick_end_s_ - _SLACK_S
        return {"amplitude_ma": np.where(kicking, self._amplitude, 0.0), **self._fixed}

    def thresholds(self) -> dict[str, float]:
        """Return the detection threshold when the watched feature is the biomarker.

        Returns
        -------
        dict of str to float
            ``{"threshold": threshold}`` for ``feature = "biomarker"`` (the
            level figures draw over the biomarker), empty otherwise.
        """
        return {"threshold": float(self.threshold)} if self.feature == "biomarker" else {}
