"""Responsive neurostimulation: detect a seizure, answer with a burst.

The scheme of the RNS System (Sun & Morrell 2014): a detector watches one
feature of the sensed signal (line length, area or band power), declares a
detection when the feature stays above a threshold for a number of
consecutive analysis windows, and the stimulator answers with a short burst
of high-frequency pulses; a refractory period follows each burst, during
which no new detection triggers another.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from closedloop.controllers.base import Controller, check_settings, fill_doc, fixed_command
from closedloop.controllers.base import real_parameter as _real

__all__ = ["DETECTION_FEATURES", "Responsive"]

#: Features the detector may watch: the sensing chain's band envelope
#: (``biomarker``; band power with ``sensing.envelope: power``) and its
#: windowed line length and area (:data:`closedloop.sensing.FEATURES`).
DETECTION_FEATURES: tuple[str, ...] = ("biomarker", "line_length", "area")

# Slack, in seconds, on comparisons of times built from sums of control periods.
_TIME_SLACK_S = 1e-9


@fill_doc
class Responsive(Controller):
    """Detect when a feature stays above a threshold, then deliver a burst.

    Parameters
    ----------
    feature : {"biomarker", "line_length", "area"}, default "biomarker"
        Feature the detector watches: ``biomarker`` is the sensing chain's
        band envelope (band power with ``sensing.envelope: power``, the
        RNS bandpass detector); ``line_length`` (Esteller et al. 2001) and
        ``area`` must be listed in ``sensing.features``.
    threshold : float, default 1.0
        Detection threshold, in the feature's units; the feature must
        exceed it.
    detection_periods : int, default 1
        Consecutive control periods the feature must stay above the
        threshold for a detection (the detection window), at least 1.
    amplitude_ma : float, default 2.0
        Burst amplitude in mA, non-negative.
    frequency_hz : float, default 200.0
        Pulse frequency in Hz, positive (RNS: 200 Hz typical).
    pulse_width_us : float, default 160.0
        Pulse width per phase in microseconds, positive (RNS: 160 us typical).
    burst_duration_s : float, default 0.1
        Burst duration in seconds, positive (RNS: 100 to 200 ms typical);
        rounded up to whole control periods.
    refractory_s : float, default 1.0
        Time in seconds after the end of a burst during which no detection
        triggers a burst, non-negative.

    Attributes
    ----------
    %(n_)s
    count_ : ndarray of shape (n,)
        Consecutive periods the feature has been above the threshold.
    burst_end_s_ : ndarray of shape (n,)
        Time in seconds at which the current or last burst ends (``-inf``
        before the first).
    n_detections_ : ndarray of shape (n,)
        Detections that triggered a burst since :meth:`reset`.
    triggered_ : ndarray of bool, shape (n,)
        Which instances triggered a burst at the last update.

    Notes
    -----
    At each update, at time ``t`` (the end of the period just sensed), an
    instance triggers a burst when ``count_ >= detection_periods`` and it is
    neither bursting nor refractory (``t >= burst_end_s_ + refractory_s``).
    A trigger sets ``burst_end_s_ = t + burst_duration_s``. The commanded
    amplitude is ``amplitude_ma`` while ``t < burst_end_s_`` and 0 otherwise,
    so a burst covers ``ceil(burst_duration_s / period)`` control periods
    from the one after the detection. A NaN feature counts as below the
    threshold. The feature keeps being counted during bursts and refractory
    periods: a seizure that outlasts them triggers another burst as soon as
    the refractory period ends, as RNS delivers repeated therapies.

    The burst is gated by the amplitude over the device's continuous pulse
    train (``pulses`` is not commanded: every command must be finite for the
    conformance check, and no finite ``pulses`` value leaves a burst under
    way alone), so the device must switch the amplitude fast compared with
    the burst: give it a fast ramp (e.g. ``device.ramp_rate_ma_per_s:
    1000``, 1 mA in 1 ms). A burst then holds the number of pulses that
    fit in its whole control periods, to within one (20 for 100 ms at
    200 Hz).
    Parameter values are checked by :meth:`reset`.

    References
    ----------
    .. [1] Sun F.T., Morrell M.J. (2014). The RNS System: responsive cortical
       stimulation for the treatment of refractory partial epilepsy. Expert
       Review of Medical Devices 11(6):563-572.
    .. [2] Esteller R., Echauz J., Tcheng T., Litt B., Pless B. (2001). Line
       length: an efficient feature for seizure onset detection. Proceedings
       of the 23rd Annual International Conference of the IEEE EMBS,
       2:1707-1710.
    .. [3] Morrell M.J. (2011). Responsive cortical stimulation for the
       treatment of medically intractable partial epilepsy. Neurology
       77(13):1295-1304.

    Examples
    --------
    >>> import numpy as np
    >>> c = Responsive(threshold=1.0, detection_periods=2, burst_duration_s=0.1)
    >>> c.reset(1, np.random.default_rng(0))
    >>> [float(c.update(0.05 * k, {"biomarker": np.array([2.0])})["amplitude_ma"][0])
    ...  for k in range(1, 6)]
    [0.0, 2.0, 2.0, 0.0, 0.0]
    """

    name: ClassVar[str] = "responsive"
    references: ClassVar[tuple[str, ...]] = (
        "Sun F.T., Morrell M.J. (2014). The RNS System: responsive cortical stimulation "
        "for the treatment of refractory partial epilepsy. Expert Rev Med Devices "
        "11(6):563-572.",
        "Esteller R. et al. (2001). Line length: an efficient feature for seizure onset "
        "detection. Proc 23rd Annu Int Conf IEEE EMBS 2:1707-1710.",
    )

    def __init__(
        self,
        *,
        feature: str = "biomarker",
        threshold: float = 1.0,
        detection_periods: int = 1,
        amplitude_ma: float = 2.0,
        frequency_hz: float = 200.0,
        pulse_width_us: float = 160.0,
        burst_duration_s: float = 0.1,
        refractory_s: float = 1.0,
    ) -> None:
        self.feature = feature
        self.threshold = threshold
        self.detection_periods = detection_periods
        self.amplitude_ma = amplitude_ma
        self.frequency_hz = frequency_hz
        self.pulse_width_us = pulse_width_us
        self.burst_duration_s = burst_duration_s
        self.refractory_s = refractory_s

    @property
    def required_features(self) -> tuple[str, ...]:  # type: ignore[override]
        """The one feature the detector reads."""
        return (self.feature,)

    def reset(self, n: int, rng: np.random.Generator) -> None:
        """Check the parameters and clear every detector.

        %(reset_parameters)s

        %(reset_raises)s
        """
        if self.feature not in DETECTION_FEATURES:
            raise ValueError(
                f"feature must be one of {', '.join(DETECTION_FEATURES)}, got {self.feature!r}."
            )
        self._threshold = _real("threshold", self.threshold, "the feature's units")
        periods = self.detection_periods
        if isinstance(periods, bool) or not isinstance(periods, int | np.integer) or periods < 1:
            raise ValueError(
                f"detection_periods must be a whole number of control periods >= 1, "
                f"got {periods!r}."
            )
        settings = check_settings(self, "amplitude_ma", "frequency_hz", "pulse_width_us")
        amplitude = settings["amplitude_ma"]
        self._burst_s = _real("burst_duration_s", self.burst_duration_s, "s", "positive")
        self._refractory_s = _real("refractory_s", self.refractory_s, "s", "non-negative")
        super().reset(n, rng)
        self.count_ = np.zeros(self.n_)
        self.burst_end_s_ = np.full(self.n_, -math.inf)
        self.n_detections_ = np.zeros(self.n_)
        self.triggered_ = np.zeros(self.n_, dtype=bool)
        self._periods = float(periods)
        self._amplitude = amplitude
        # Times (s) from which each instance may trigger again, and until which
        # it bursts, with the slack applied once here instead of every update.
        self._ready_at = np.full(self.n_, -math.inf)
        self._off_at = np.full(self.n_, -math.inf)
        self._above = np.zeros(self.n_, dtype=bool)
        self._ready = np.zeros(self.n_, dtype=bool)
        self._on = np.zeros(self.n_, dtype=bool)
        self._fixed = fixed_command(self.n_, settings, "frequency_hz", "pulse_width_us")

    def update(self, t: float, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Count, detect, trigger and gate the burst amplitude.

        %(update_feature)s

        Returns
        -------
        dict of str to ndarray
            ``amplitude_ma`` (``amplitude_ma`` during bursts, else 0),
            ``frequency_hz`` and ``pulse_width_us``, shape ``(n,)``.
        """
        # In place on preallocated arrays: a dozen ufunc calls per period.
        above = np.greater(features[self.feature], self._threshold, out=self._above)
        count = self.count_
        count += 1.0
        count *= above  # back to 0 below the threshold (NaN included)
        trigger = np.greater_equal(count, self._periods, out=self.triggered_)
        trigger &= np.greater_equal(t, self._ready_at, out=self._ready)
        if trigger.any():
            self.burst_end_s_[trigger] = t + self._burst_s
            self._off_at[trigger] = t + self._burst_s - _TIME_SLACK_S
            self._ready_at[trigger] = t + self._burst_s + self._refractory_s - _TIME_SLACK_S
            self.n_detections_ += trigger
        on = np.less(t, self._off_at, out=self._on)
        return {"amplitude_ma": on * self._amplitude, **self._fixed}

    def thresholds(self) -> dict[str, float]:
        """Return the detection threshold when the detector watches the biomarker.

        Returns
        -------
        dict of str to float
            ``{"threshold": threshold}`` for ``feature="biomarker"``, else
            empty (the figure's biomarker panel would not show the feature).
        """
        if self.feature == "biomarker":
            return {"threshold": float(self.threshold)}
        return {}
