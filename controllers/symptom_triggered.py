"""Symptom-triggered stimulation: a biomarker held past its threshold fires a fixed burst.

The scheme of biomarker-driven closed-loop DBS for depression (Scangos et al.
2021; the workflow is published as Sellers et al. 2023): an implanted
detector watches a personalised biomarker (there, amygdala gamma-band power)
and, when it stays above a threshold for a minimum time (the RNS detector's
"duration" rule), the stimulator delivers one short burst at fixed settings
to another structure (there, the ventral capsule/ventral striatum). Lock-out
and daily caps are the device's (``device.trigger_lockout_s``,
``device.max_triggers_per_day``, ``device.max_charge_uc_per_day``): they
hold whatever a controller asks, and the device counts the triggers it
refuses.
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
from closedloop.controllers.compiled import SYMPTOM_TRIGGERED

__all__ = ["SymptomTriggered"]

# Slack, in seconds, on comparisons of times built from sums of control periods.
_TIME_SLACK_S = 1e-9


@fill_doc
class SymptomTriggered(Controller):
    """Fire a fixed burst when a feature has stayed past a threshold for a minimum time.

    Parameters
    ----------
    feature : str, default "biomarker"
        Feature the detector watches: ``biomarker`` (the sensing chain's band
        envelope; with ``sensing.envelope: power`` and ``sensing.band_hz``
        e.g. ``[25, 40]`` the low-gamma power, ``[4, 8]`` the theta power) or
        any feature listed in ``sensing.features`` (e.g.
        ``aperiodic_exponent``). Only ``biomarker`` has a compiled twin.
    threshold : float, default 1.0
        Detection threshold, in the feature's units.
    direction : {"above", "below"}, default "above"
        Whether the symptomatic state is the feature above or below the
        threshold (strictly; NaN is neither).
    min_duration_s : float, default 0.0
        Time in seconds the feature must have stayed past the threshold, at
        every control period from ``t - min_duration_s`` to ``t``, before a
        burst is asked for; 0 fires at the first period past it.
    burst_s : float, default 6.0
        Burst length in seconds, positive: ``round(burst_s *
        frequency_hz)`` pulses (at least one).
    amplitude_ma : float, default 1.0
        Burst amplitude in mA, non-negative.
    frequency_hz : float, default 100.0
        Pulse frequency in the burst in Hz, positive.
    pulse_width_us : float, default 90.0
        Pulse width per phase in microseconds, positive.

    Attributes
    ----------
    %(n_)s
    %(t_prev_)s
    above_since_s_ : ndarray of shape (n,)
        Time in seconds of the first period of the current run past the
        threshold (NaN when the last period was not past it).
    blanked_until_s_ : ndarray of shape (n,)
        The detector ignores the feature until this time (the burst it
        asked for), s.
    n_requests_ : ndarray of shape (n,)
        Bursts asked for since :meth:`reset` (the device may refuse some).
    triggered_ : ndarray of bool, shape (n,)
        Which instances asked for a burst at the last update.

    Notes
    -----
    At each update at time ``t`` the detector, unless blanked, marks the
    instance past the threshold (``above_since_s_`` set at the first such
    period, cleared at any period not past it) and asks for a burst when
    ``t - above_since_s_ >= min_duration_s``. It then ignores the feature
    for ``burst_s`` (the RNS blanks sensing during its own therapy, Sun &
    Morrell 2014) and starts counting anew. The burst is asked for with
    ``pulses = round(burst_s * frequency_hz)``; the first update also
    commands ``pulses = 0``, which stops the continuous train the device
    starts in, and later updates leave the pulse train alone (NaN), so a
    burst runs its length across control periods. The amplitude,
    frequency and width are commanded at every update: the device ramps
    the amplitude up once, before the first burst. Whether a burst is
    delivered is the device's decision (lock-out, daily caps); the run's
    ``events/triggers`` table says which were.

    The defaults are those reported for the first patient of Scangos et
    al. (2021): bursts of 6 s at 1 mA and 100 Hz to the VC/VS. They are
    taken from the project's literature notes, which mark them as
    recalled: the stored copies of the paper and of the JoVE protocol
    (doi 10.3791/65177) seen while writing this show their abstracts only.
    The pulse width (90 us) is a choice (a common DBS setting), as is the
    default threshold.

    References
    ----------
    .. [1] Scangos K.W. et al. (2021). Closed-loop neuromodulation in an
       individual with treatment-resistant depression. Nature Medicine
       27:1696-1700.
    .. [2] Sellers K.K. et al. (2023). Closed-loop neurostimulation for
       biomarker-driven, personalized treatment of major depressive
       disorder. J Vis Exp 197:e65177.
    .. [3] Sun F.T., Morrell M.J. (2014). The RNS System: responsive cortical
       stimulation for the treatment of refractory partial epilepsy. Expert
       Review of Medical Devices 11(6):563-572.

    Examples
    --------
    >>> import numpy as np
    >>> c = SymptomTriggered(threshold=1.0, min_duration_s=0.2, burst_s=0.5)
    >>> c.reset(1, np.random.default_rng(0))
    >>> [float(c.update(0.1 * k, {"biomarker": np.array([2.0])})["pulses"][0])
    ...  for k in range(1, 6)]
    [0.0, nan, 50.0, nan, nan]
    """

    name: ClassVar[str] = "symptom_triggered"
    #: The runner logs each burst asked for as an event (``events/triggers``).
    logs_triggers: ClassVar[bool] = True
    references: ClassVar[tuple[str, ...]] = (
        "Scangos K.W. et al. (2021). Closed-loop neuromodulation in an individual with "
        "treatment-resistant depression. Nat Med 27:1696-1700.",
        "Sellers K.K. et al. (2023). Closed-loop neurostimulation for biomarker-driven, "
        "personalized treatment of major depressive disorder. J Vis Exp 197:e65177.",
    )

    def __init__(
        self,
        *,
        feature: str = "biomarker",
        threshold: float = 1.0,
        direction: str = "above",
        min_duration_s: float = 0.0,
        burst_s: float = 6.0,
        amplitude_ma: float = 1.0,
        frequency_hz: float = 100.0,
        pulse_width_us: float = 90.0,
    ) -> None:
        self.feature = feature
        self.threshold = threshold
        self.direction = direction
        self.min_duration_s = min_duration_s
        self.burst_s = burst_s
        self.amplitude_ma = amplitude_ma
        self.frequency_hz = frequency_hz
        self.pulse_width_us = pulse_width_us

    @property
    def required_features(self) -> tuple[str, ...]:  # type: ignore[override]
        """The one feature the detector reads."""
        return (self.feature,)

    def reset(self, n: int, rng: np.random.Generator) -> None:
        """Check the parameters and clear every detector.

        %(reset_parameters)s

        %(reset_raises)s
        """
        if not isinstance(self.feature, str) or not self.feature:
            raise ValueError(f"feature must be a feature name, got {self.feature!r}.")
        if self.direction not in ("above", "below"):
            raise ValueError(f"direction must be 'above' or 'below', got {self.direction!r}.")
        self._threshold = _real("threshold", self.threshold, "the feature's units")
        self._min_s = _real("min_duration_s", self.min_duration_s, "s", "non-negative")
        self._burst_s = _real("burst_s", self.burst_s, "s", "positive")
        settings = check_settings(self, "amplitude_ma", "frequency_hz", "pulse_width_us")
        self._pulses = float(max(1, round(self._burst_s * settings["frequency_hz"])))
        self._sign = 1.0 if self.direction == "above" else -1.0
        super().reset(n, rng)
        self.t_prev_ = 0.0
        self.above_since_s_ = np.full(self.n_, math.nan)
        self.blanked_until_s_ = np.full(self.n_, -math.inf)
        self.n_requests_ = np.zeros(self.n_)
        self.triggered_ = np.zeros(self.n_, dtype=bool)
        self._started = False
        self._fixed = fixed_command(self.n_, settings)

    def update(self, t: float, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Detect, and ask for a burst where the feature has stayed past the threshold.

        %(update_feature)s

        Returns
        -------
        dict of str to ndarray
            ``amplitude_ma``, ``frequency_hz``, ``pulse_width_us`` (the
            burst's settings) and ``pulses``: the burst's pulse count where
            a burst is asked for, NaN (no change) elsewhere, 0 at the first
            update.
        """
        x = np.asarray(features[self.feature], dtype=float)
        live = t >= self.blanked_until_s_
        past = live & (self._sign * (x - self._threshold) > 0.0)  # NaN: False
        since = self.above_since_s_
        since[~past] = math.nan
        since[past & np.isnan(since)] = t
        fire = past & (t - since >= self._min_s - _TIME_SLACK_S)
        since[fire] = math.nan
        self.blanked_until_s_[fire] = t + self._burst_s - _TIME_SLACK_S
        self.n_requests_ += fire
        self.triggered_ = fire
        self.t_prev_ = float(t)
        pulses = np.where(fire, self._pulses, math.nan if self._started else 0.0)
        self._started = True
        return {**self._fixed, "pulses": pulses}

    def compiled(self) -> tuple[int, np.ndarray, np.ndarray] | None:
        """Program for the compiled kernels when the detector watches ``biomarker``.

        See :meth:`Controller.compiled`; state: elapsed time (s), start of the
        run past the threshold (s, NaN for none), end of blanking (s),
        whether the first update is done.
        """
        if self.feature != "biomarker":
            return None
        row = [
            self._threshold,
            self._sign,
            self._min_s,
            self._burst_s,
            self._fixed["amplitude_ma"][0],
            self._fixed["frequency_hz"][0],
            self._fixed["pulse_width_us"][0],
            self._pulses,
        ]
        state = np.empty((self.n_, 4))
        state[:, 0] = self.t_prev_
        state[:, 1] = self.above_since_s_
        state[:, 2] = self.blanked_until_s_
        state[:, 3] = 1.0 if self._started else 0.0
        return twin_program(SYMPTOM_TRIGGERED, row, state)

    def thresholds(self) -> dict[str, float]:
        """Return the detection threshold when the detector watches the biomarker.

        Returns
        -------
        dict of str to float
            ``{"threshold": threshold}`` for ``feature="biomarker"``, else empty.
        """
        if self.feature == "biomarker":
            return {"threshold": float(self.threshold)}
        return {}
