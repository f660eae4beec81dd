"""Phase-locked stimulation: pulses at a chosen phase of the oscillation, after Cagnan et al. 2017.

Each control period the controller reads the instantaneous phase of the
band-passed signal (sensing feature ``"phase"``) and, in the period where it
crosses the target phase, commands a single pulse (or a short burst).
Stimulation timed to one phase of a pathological oscillation can suppress it
while the opposite phase amplifies it (Cagnan et al. 2013, 2017; in a
Kuramoto ensemble: Tass 2003).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from closedloop.controllers.base import Controller, check_settings, fill_doc, fixed_command
from closedloop.controllers.base import real_parameter as _real

__all__ = ["PhaseLocked"]

_TWO_PI = 2.0 * math.pi
#: Sensing features that estimate the phase (closedloop.sensing.registry).
_PHASE_FEATURES = ("phase", "phase_ar", "phase_etp")
#: Time constant of the controller's oscillation-frequency estimate, s.
_FREQUENCY_TAU_S = 0.1


def _wrap(angle: np.ndarray) -> np.ndarray:
    """Angles wrapped to ``[-pi, pi)``."""
    return np.mod(angle + math.pi, _TWO_PI) - math.pi


@fill_doc
class PhaseLocked(Controller):
    """Deliver a pulse each time the oscillation's phase crosses a target phase.

    Parameters
    ----------
    target_phase_rad : float, default pi
        Phase of the band-passed signal at which to stimulate, rad, in the
        sensing chain's convention (0 at the peaks, pi at the troughs,
        increasing with time; see :mod:`closedloop.sensing.phase`). Any finite
        value, taken modulo 2 pi.
    amplitude_ma : float, default 2.0
        Pulse amplitude, mA, non-negative.
    pulse_width_us : float, default 60.0
        Pulse width per phase, microseconds, positive.
    pulses_per_trigger : int, default 1
        Pulses per crossing: 1 for a single pulse, more for a burst at
        ``frequency_hz``.
    frequency_hz : float, default 130.0
        Pulse frequency within a burst, Hz, positive (unused for single pulses).
    threshold : float, default 0.0
        Stimulate only while the biomarker exceeds this level (biomarker
        units). The default lets every cycle through: band envelopes are
        positive whenever there is signal.
    lead_s : float, default 0.0
        Fire this much earlier than the target phase, s, non-negative: the
        trigger phase is ``target_phase_rad - 2 pi f lead_s`` with ``f`` the
        oscillation frequency the controller tracks from the phase advance
        between periods (first-order smoothing, time constant 0.1 s). Set it to
        the mean delay (see Notes) to centre the pulses on the target.
    min_interval_s : float, default 0.025
        Shortest time between triggers, s, non-negative: keeps noise in the
        phase estimate from triggering twice in one cycle (half a 20 Hz cycle
        by default).
    phase_feature : str, default "phase"
        The sensing feature that estimates the phase: ``"phase"`` (the
        ecHT) or ``"phase_ar"`` (autoregressive forward prediction, which
        compensates latency itself through ``sensing.phase_ar_lead_s``:
        leave ``lead_s`` at 0 with it) or ``"phase_etp"`` (educated temporal
        prediction, through ``sensing.phase_etp_lead_s``).
    intensity_pct_rmt : float, optional
        Under ``device.modality: tms``: the stimulator intensity, percent of
        resting motor threshold, sent as ``intensity_pct_rmt`` instead of
        ``amplitude_ma`` (a burst is then ``pulses_per_trigger`` pattern
        units of ``device.tms.pattern``; 1 for one triplet). Positive. The
        command between triggers is then ``pulses = NaN`` ("no change"): a 0
        would end a trigger of several units after its first (a TMS device
        finishes the unit under way, :mod:`closedloop.device.tms`).
    random_target : bool, default False
        Draw a new target phase, uniform on the circle, from the
        controller's random stream at reset and after each trigger: the
        random-phase control arm of phase-triggered protocols (Zrenner et
        al. 2018), with the same gating and minimum interval.

    Attributes
    ----------
    %(n_)s
    previous_phase_ : ndarray of shape (n,)
        Phase at the last update, rad (NaN after :meth:`reset`).
    frequency_hz_ : ndarray of shape (n,)
        Tracked oscillation frequency, Hz (NaN until two phases are seen).
    last_trigger_s_ : ndarray of shape (n,)
        Time of the last trigger, s (-inf after :meth:`reset`).
    n_triggers_ : ndarray of shape (n,)
        Triggers so far.

    Notes
    -----
    A trigger fires in the period whose end-of-period phase ``phi_k`` has
    passed the trigger phase ``phi_t`` since the previous period, moving
    forward by less than half a cycle:
    ``0 <= wrap(phi_k - phi_t) < wrap(phi_k - phi_{k-1})``, where ``wrap``
    maps to ``[-pi, pi)``. This
    needs a control period well below half the oscillation period (1 ms with
    1 kHz sensing for beta), and the phase feature in the sensing chain
    (``sensing.features: [phase]``).

    The command is ``pulses = pulses_per_trigger`` in a triggering period and
    ``pulses = 0`` otherwise, with the amplitude, width and frequency always
    set. Zero rather than NaN ("no change") keeps the device from the
    continuous pulse train it starts in (``pulses = inf``) once the amplitude
    is set, and cannot cut short a pulse already delivered; it also keeps
    every command finite, as :func:`closedloop.testing.controller.check_controller`
    requires.

    Timing. The crossing happens somewhere in the period before the one in
    which it is seen, so a pulse follows it by ``D`` between ``L`` and
    ``L + T`` (``T`` the control period, ``L`` the loop latency; with
    ``L = 0`` the pulse starts in the first integration step of the next
    period), plus half a sensing interval (each sample is the mean over its
    interval). At oscillation frequency ``f`` the pulse lands
    ``2 pi f D`` late: on average ``2 pi f (L + T/2 + 1/(2 f_s))``, spread
    uniformly over ``2 pi f T``. For 20 Hz, ``T = 1`` ms, ``L = 0`` and
    ``f_s = 1`` kHz that is 7.2 degrees late on average, within +-3.6 degrees;
    ``L = 10`` ms adds 72 degrees, which ``lead_s = L + T/2 + 1/(2 f_s)``
    removes as long as the frequency holds over ``lead_s``. Errors of the
    phase estimate itself add to these (see ``tests/test_phase.py``).

    There is no compiled twin: the controller runs in Python, once per period.

    References
    ----------
    .. [1] Cagnan H., Pedrosa D., Little S., Pogosyan A., Cheeran B., Aziz T.,
       Green A., Fitzgerald J., Foltynie T., Limousin P., Zrinzo L., Hariz M.,
       Friston K.J., Denison T., Brown P. (2017). Stimulating at the right
       time: phase-specific deep brain stimulation. Brain 140(1):132-145.
    .. [2] Cagnan H. et al. (2013). Phase dependent modulation of tremor
       amplitude in essential tremor through thalamic stimulation. Brain
       136(10):3062-3075.
    .. [3] Tass P.A. (2003). A model of desynchronizing deep brain stimulation
       with a demand-controlled coordinated reset of neural subpopulations.
       Biological Cybernetics 89:81-88.

    Examples
    --------
    >>> import numpy as np
    >>> c = PhaseLocked(target_phase_rad=np.pi, amplitude_ma=2.0)
    >>> c.reset(1, np.random.default_rng(0))
    >>> c.update(0.001, {"biomarker": np.ones(1), "phase": np.array([3.0])})["pulses"]
    array([0.])
    >>> c.update(0.002, {"biomarker": np.ones(1), "phase": np.array([-3.1])})["pulses"]
    array([1.])
    """

    name: ClassVar[str] = "phase_locked"
    references: ClassVar[tuple[str, ...]] = (
        "Cagnan H. et al. (2017). Stimulating at the right time: phase-specific deep "
        "brain stimulation. Brain 140(1):132-145.",
    )

    def __init__(
        self,
        *,
        target_phase_rad: float = math.pi,
        amplitude_ma: float = 2.0,
        pulse_width_us: float = 60.0,
        pulses_per_trigger: int = 1,
        frequency_hz: float = 130.0,
        threshold: float = 0.0,
        lead_s: float = 0.0,
        min_interval_s: float = 0.025,
        phase_feature: str = "phase",
        intensity_pct_rmt: float | None = None,
        random_target: bool = False,
    ) -> None:
        self.target_phase_rad = target_phase_rad
        self.amplitude_ma = amplitude_ma
        self.pulse_width_us = pulse_width_us
        self.pulses_per_trigger = pulses_per_trigger
        self.frequency_hz = frequency_hz
        self.threshold = threshold
        self.lead_s = lead_s
        self.min_interval_s = min_interval_s
        self.phase_feature = phase_feature
        self.intensity_pct_rmt = intensity_pct_rmt
        self.random_target = random_target

    @property
    def required_features(self) -> tuple[str, ...]:  # type: ignore[override]
        """The biomarker and the phase feature it reads."""
        return ("biomarker", str(self.phase_feature))

    def reset(self, n: int, rng: np.random.Generator) -> None:
        """Check the parameters and forget the phase history.

        %(reset_parameters)s

        %(reset_raises)s
        """
        target = _real("target_phase_rad", self.target_phase_rad, "rad")
        settings = check_settings(self, "amplitude_ma", "pulse_width_us", "frequency_hz")
        burst = _real("pulses_per_trigger", self.pulses_per_trigger, "pulses", "positive")
        if burst != round(burst):
            raise ValueError(
                "pulses_per_trigger must be a whole number of pulses, got "
                f"{self.pulses_per_trigger!r}."
            )
        self._threshold = _real("threshold", self.threshold, "the biomarker's units")
        self._lead = _real("lead_s", self.lead_s, "s", "non-negative")
        self._min_interval = _real("min_interval_s", self.min_interval_s, "s", "non-negative")
        if self.phase_feature not in _PHASE_FEATURES:
            raise ValueError(
                f"phase_feature must be one of {list(_PHASE_FEATURES)}, got {self.phase_feature!r}."
            )
        if not isinstance(self.random_target, bool):
            raise ValueError(f"random_target must be true or false, got {self.random_target!r}.")
        super().reset(n, rng)
        self._rng = rng
        self._target = np.full(self.n_, float(_wrap(np.array(target, dtype=np.float64))))
        if self.random_target:
            self._target = rng.uniform(-math.pi, math.pi, self.n_)
        self._burst = float(burst)
        self.previous_phase_ = np.full(self.n_, np.nan)
        self.frequency_hz_ = np.full(self.n_, np.nan)
        self.last_trigger_s_ = np.full(self.n_, -np.inf)
        self.n_triggers_ = np.zeros(self.n_)
        self.t_prev_ = math.nan
        if self.intensity_pct_rmt is not None:
            intensity = _real("intensity_pct_rmt", self.intensity_pct_rmt, "% RMT", "positive")
            settings.pop("amplitude_ma")
            settings["intensity_pct_rmt"] = intensity
        self._idle = math.nan if self.intensity_pct_rmt is not None else 0.0
        self._fixed = fixed_command(self.n_, settings)

    def update(self, t: float, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Command a pulse where the phase crossed the trigger phase this period.

        Parameters
        ----------
        %(update_t)s
        features : mapping of str to ndarray
            ``biomarker`` and ``phase`` (rad), each of shape ``(n,)``.

        Returns
        -------
        dict of str to ndarray
            ``amplitude_ma``, ``pulse_width_us``, ``frequency_hz`` and
            ``pulses`` (``pulses_per_trigger`` or 0), shape ``(n,)``.

        Raises
        ------
        ValueError
            If ``features`` has no ``phase`` (the sensing chain does not
            compute it).
        """
        key = self.phase_feature
        if key not in features:
            raise ValueError(
                f"phase_locked needs the sensing feature {key!r}: add it to sensing.features "
                f"(e.g. features: [{key}]) in the experiment file"
            )
        phase = np.asarray(features[key], dtype=np.float64)
        biomarker = features["biomarker"]
        # Phase advance since the last period, in [-pi, pi) (NaN on the first call).
        step = _wrap(phase - self.previous_phase_)
        dt = t - self.t_prev_
        if dt > 0:
            inst = step * (1.0 / (_TWO_PI * dt))
            alpha = math.exp(-dt / _FREQUENCY_TAU_S)
            tracked = alpha * self.frequency_hz_ + (1.0 - alpha) * inst
            np.copyto(tracked, inst, where=np.isnan(self.frequency_hz_))
            np.copyto(tracked, self.frequency_hz_, where=np.isnan(inst))
            self.frequency_hz_ = tracked
        if self._lead > 0:
            # NaN until a frequency is known: no trigger before then.
            trigger = self._target - (_TWO_PI * self._lead) * self.frequency_hz_
        else:
            trigger = self._target
        # The trigger phase lies on the arc swept since the last period
        # (forward, less than half a cycle) iff 0 <= wrap(phase - trigger) < step.
        after = _wrap(phase - trigger)
        fire = (
            (after >= 0.0)
            & (after < step)
            & (biomarker > self._threshold)
            & (t - self.last_trigger_s_ >= self._min_interval)
        )
        self.last_trigger_s_ = np.where(fire, t, self.last_trigger_s_)
        self.n_triggers_ = self.n_triggers_ + fire
        if self.random_target and fire.any():
            self._target = np.where(
                fire, self._rng.uniform(-math.pi, math.pi, self.n_), self._target
            )
        self.previous_phase_ = phase.copy()
        self.t_prev_ = t
        return {**self._fixed, "pulses": np.where(fire, self._burst, self._idle)}

    def thresholds(self) -> dict[str, float]:
        """Return the biomarker gate, if any.

        Returns
        -------
        dict of str to float
            ``{"threshold": threshold}`` when it is above 0, else empty.
        """
        value = float(self.threshold)
        return {"threshold": value} if value > 0 else {}
