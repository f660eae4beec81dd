"""Plasticity readout: a slow excitability changed by the phase of stimulation.

What phase-triggered protocols change is corticospinal excitability, read out
as the MEP amplitude after the intervention: Zrenner et al. (2018) gave 100 Hz
triplets of TMS at the negative peak of the sensorimotor mu rhythm and the
MEP amplitude rose (LTP-like), while the same triplets at the positive peak or
at random phase left it unchanged (REFERENCES.md 1.4 [V]). This module turns
the bursts a run delivered, and the phase of the rhythm at each, into that
outcome.

The rule (:class:`PhasePlasticity`), a modelling choice made here that
reproduces the direction of those results, not their size:

- each burst ``k`` (a triplet, or a single pulse) at phase ``phi_k`` changes
  the excitability by ``gain_pct * (K(phi_k) - <K>)``, where
  ``K(phi) = exp(kappa (cos(phi - preferred_phase_rad) - 1))`` is a von Mises
  kernel peaking at the preferred (most excitable) phase, and ``<K> =
  exp(-kappa) I0(kappa)`` is its mean over the circle: bursts at uniformly
  random phases change nothing on average, bursts at the preferred phase
  potentiate by ``gain_pct (1 - <K>)`` each, bursts at the opposite phase
  depress by ``gain_pct <K>`` minus a little (with ``kappa = 2``: +0.69 and
  -0.29 times ``gain_pct``);
- each change decays with the time constant of the after-effect,
  ``tau_s``: ``E(t) = sum_k dE_k exp(-(t - t_k) / tau_s)`` for ``t >= t_k``,
  in percent of the baseline MEP amplitude.

Defaults, all chosen here: preferred phase pi (the negative peak, 0 being the
positive peak as in :mod:`closedloop.sensing.phase`), ``kappa = 2``, ``gain_pct
= 0.5`` % per burst (200 triplets at the trough then give about +60 %,
the order of the rises Zrenner et al. report [R]), ``tau_s = 1800`` s (after-effects of
TMS plasticity protocols last tens of minutes, Huang et al. 2005 [R]).

Where it lives: a readout beside the loop, not a model state.
:class:`PlasticityReadout` follows a run chunk by chunk (an experiment's
``plasticity:`` block): it finds the bursts in the per-period pulse count
(the device's record of what it delivered; a burst starts at a pulse more
than ``max_gap_s`` after the previous one, its time the start of that
control period) and the phase at each from the noise-free model signal
(``timeseries/lfp``) before it (:func:`~closedloop.analysis.phase_fit.phase_before`,
a sinusoid at the band's centre frequency over the last three quarters of a
cycle). It needs the phase the brain had at each pulse, which the loop's
causal estimators only approximate (that gap is what the phase estimators
are compared on), and no model here has its own excitability variable. It
does not act back on the model: a readout, not a feedback. The run file gets
the series ``plasticity_excitability_pct`` (at the end of every chunk), the
event table ``events/plasticity_bursts`` (each burst's time, phase and
change) and the metrics ``plasticity_response_change_pct`` and
``plasticity_bursts``.

References
----------
Zrenner C, Desideri D, Belardinelli P, Ziemann U (2018) Real-time
EEG-defined excitability states determine efficacy of TMS-induced plasticity
in human motor cortex. Brain Stimul 11:374-389.
Huang YZ, Edwards MJ, Rounis E, Bhatia KP, Rothwell JC (2005) Theta burst
stimulation of the human motor cortex. Neuron 45:201-206.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from closedloop.analysis.phase_fit import phase_before

__all__ = [
    "BURST_EVENTS",
    "BURST_FIELDS",
    "PLASTICITY_METRIC_INFO",
    "PLASTICITY_SERIES",
    "PhasePlasticity",
    "PlasticityReadout",
    "burst_onsets",
]

#: The readout's event table (``events/plasticity_bursts``) and its columns: name to (dtype, units).
BURST_EVENTS = "plasticity_bursts"
BURST_FIELDS: dict[str, tuple[str, str]] = {
    "time_s": ("f8", "s"),
    "instance": ("i4", "1"),
    "phase_rad": ("f8", "rad"),  # phase of the rhythm at the burst (0 peak, pi trough)
    "change_pct": ("f8", "%"),  # the excitability change it made
}

#: The readout's series in a run file (at the end of every chunk).
PLASTICITY_SERIES = "plasticity_excitability_pct"
#: Metrics of the readout: name to (units, description).
PLASTICITY_METRIC_INFO = {
    "plasticity_response_change_pct": (
        "%",
        "MEP-like response change at the end of the run (phase-dependent plasticity readout)",
    ),
    "plasticity_bursts": ("1", "bursts the plasticity readout counted"),
}


@dataclass(frozen=True)
class PhasePlasticity:
    """Phase-dependent potentiation and depression of a slow excitability.

    Parameters
    ----------
    preferred_phase_rad : float
        Phase at which a burst potentiates most, rad (pi: the negative peak).
    kappa : float
        Concentration of the von Mises kernel (dimensionless, >= 0).
    gain_pct : float
        Scale of the change per burst, percent of the baseline response.
    tau_s : float
        Decay time constant of the after-effect, s.
    """

    preferred_phase_rad: float = math.pi
    kappa: float = 2.0
    gain_pct: float = 0.5
    tau_s: float = 1800.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.kappa) and self.kappa >= 0):
            raise ValueError(f"kappa must be a finite number >= 0, got {self.kappa!r}")
        if not (math.isfinite(self.tau_s) and self.tau_s > 0):
            raise ValueError(f"tau_s must be a positive number of seconds, got {self.tau_s!r}")
        if not math.isfinite(self.gain_pct):
            raise ValueError(f"gain_pct must be finite, got {self.gain_pct!r}")

    def change_pct(self, phase_rad: np.ndarray) -> np.ndarray:
        """Change of excitability per burst at each phase, percent (NaN phases: 0)."""
        from scipy import special  # on use: keeps `closedloop info` light

        phi = np.asarray(phase_rad, dtype=float)
        mean = special.i0e(self.kappa)  # exp(-kappa) I0(kappa)
        kernel = np.exp(self.kappa * (np.cos(phi - self.preferred_phase_rad) - 1.0))
        return np.nan_to_num(self.gain_pct * (kernel - mean), nan=0.0)

    def excitability_pct(
        self, burst_times_s: np.ndarray, burst_phases_rad: np.ndarray, t_s: np.ndarray
    ) -> np.ndarray:
        """Excitability change (MEP-like response change, %) at times ``t_s``.

        Parameters
        ----------
        burst_times_s, burst_phases_rad : ndarray, shape (K,)
            Onset of each burst, s, and the phase of the rhythm at it, rad.
        t_s : ndarray, shape (T,)
            Times to read it at, s.

        Returns
        -------
        ndarray, shape (T,)
            ``sum_k dE_k exp(-(t - t_k) / tau_s)`` over bursts with ``t_k <= t``.
        """
        times = np.asarray(burst_times_s, dtype=float)
        delta = self.change_pct(burst_phases_rad)
        t = np.asarray(t_s, dtype=float)
        lag = t[:, None] - times[None, :]
        return np.where(lag >= 0, delta * np.exp(-np.maximum(lag, 0.0) / self.tau_s), 0.0).sum(1)


def burst_onsets(pulse_times_s: np.ndarray, max_gap_s: float = 0.05) -> np.ndarray:
    """Indices of the first pulse of each burst: pulses more than ``max_gap_s`` after the last."""
    times = np.asarray(pulse_times_s, dtype=float)
    if times.size == 0:
        return np.zeros(0, dtype=int)
    gaps = np.diff(times, prepend=-np.inf)
    return np.flatnonzero(gaps > max_gap_s)


class PlasticityReadout:
    """The readout of :class:`PhasePlasticity` over a run, fed chunk by chunk.

    Parameters
    ----------
    rule : PhasePlasticity
        The rule.
    n : int
        Instances.
    rate_hz : float
        Rate of the model signal fed (the sensing rate), Hz.
    period_s : float
        Control period, s (the pulse count is one value per period).
    frequency_hz : float
        Frequency of the sinusoid fitted before each burst, Hz.
    max_gap_s : float
        Pulses closer than this belong to one burst, s.
    """

    def __init__(
        self,
        rule: PhasePlasticity,
        n: int,
        rate_hz: float,
        period_s: float,
        frequency_hz: float,
        max_gap_s: float = 0.05,
    ) -> None:
        self.rule = rule
        self.rate_hz = float(rate_hz)
        self.period_s = float(period_s)
        self.frequency_hz = float(frequency_hz)
        self.max_gap_s = float(max_gap_s)
        self.width_ = int(math.ceil(self.rate_hz / self.frequency_hz)) + 2
        self.tail_ = np.zeros((n, 0))
        self.samples_ = 0  # samples seen before the tail's end
        self.periods_ = 0
        self.count_ = np.zeros(n)
        self.last_pulse_s_ = np.full(n, -np.inf)
        self.value_ = np.zeros(n)  # excitability change at time_s_, %
        self.time_s_ = 0.0
        self.times_: list[list[float]] = [[] for _ in range(n)]
        self.phases_: list[list[float]] = [[] for _ in range(n)]
        self.drained_ = [0] * n

    def feed(self, lfp: np.ndarray, pulse_count: np.ndarray) -> np.ndarray:
        """Take the next chunk; return the excitability change at its end, %, shape (n,).

        Parameters
        ----------
        lfp : ndarray, shape (n, m)
            Noise-free model signal at ``rate_hz``.
        pulse_count : ndarray, shape (n, p)
            Pulses delivered so far at the end of each control period.
        """
        signal = np.concatenate([self.tail_, np.asarray(lfp, float)], axis=1)
        offset_s = (self.samples_ - self.tail_.shape[1]) / self.rate_hz
        new = np.diff(pulse_count, axis=1, prepend=self.count_[:, None]) > 0
        decay_to = self.time_s_
        for i in range(signal.shape[0]):
            for k in np.flatnonzero(new[i]):
                t = (self.periods_ + k) * self.period_s
                if t - self.last_pulse_s_[i] > self.max_gap_s:
                    phase = phase_before(signal[i], self.rate_hz, [t - offset_s], self.frequency_hz)
                    self.times_[i].append(t)
                    self.phases_[i].append(float(phase[0]))
                self.last_pulse_s_[i] = t
        end_s = (self.periods_ + pulse_count.shape[1]) * self.period_s
        for i in range(signal.shape[0]):
            times = np.asarray(self.times_[i])
            fresh = times >= decay_to
            carried = self.value_[i] * math.exp(-(end_s - decay_to) / self.rule.tau_s)
            self.value_[i] = (
                carried
                + self.rule.excitability_pct(
                    times[fresh], np.asarray(self.phases_[i])[fresh], np.array([end_s])
                )[0]
            )
        self.time_s_ = end_s
        self.count_ = np.asarray(pulse_count[:, -1], float).copy()
        self.periods_ += pulse_count.shape[1]
        self.samples_ += lfp.shape[1]
        self.tail_ = signal[:, -self.width_ :]
        return self.value_.copy()

    def drain_events(self) -> dict[str, np.ndarray]:
        """Bursts found since the last call: the columns of :data:`BURST_FIELDS`."""
        cols: dict[str, list] = {k: [] for k in BURST_FIELDS}
        for i, (times, phases) in enumerate(zip(self.times_, self.phases_, strict=True)):
            new = slice(self.drained_[i], len(times))
            cols["time_s"] += times[new]
            cols["phase_rad"] += phases[new]
            cols["instance"] += [i] * (len(times) - self.drained_[i])
            self.drained_[i] = len(times)
        out = {k: np.asarray(v, dtype=BURST_FIELDS[k][0]) for k, v in cols.items()}
        out["change_pct"] = self.rule.change_pct(out["phase_rad"])
        return out

    def metrics(self) -> dict[str, np.ndarray]:
        """``plasticity_response_change_pct`` and ``plasticity_bursts``, per instance."""
        return {
            "plasticity_response_change_pct": self.value_.copy(),
            "plasticity_bursts": np.array([len(t) for t in self.times_], dtype=float),
        }
