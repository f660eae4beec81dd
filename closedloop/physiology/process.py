"""Physiological clocks beside the neural loop: breathing, the heart, the vagal afferent route.

:class:`PhysiologyClock` is a :class:`~closedloop.core.slow.SlowProcess`
named ``physio``. It holds, per instance, a breath table
(:mod:`.respiration`) and an IPFM heart (:mod:`.cardiac`) on a grid of one
control period, and it gives them to the loop two ways:

- as **signals a controller reads every control period**
  (:meth:`PhysiologyClock.live_features`, features ``physio_<name>``):
  ``resp_phase`` (cycles), ``resp_expiring`` (1 in expiration),
  ``resp_time_in_phase_s``, ``cardiac_phase`` (time since the last R-peak
  over the last RR interval, cycles), ``cardiac_time_since_r_s``,
  ``rr_ms`` (the last RR interval), and ``vagal_tone`` and ``ne_level``
  (held from the last step); the first six are seen ``sensor_delay_s``
  late (the breath or R-peak detector's delay). They are also recorded
  at the process's step as series;
- as **trigger sources**: every breath onset (``events/physio_breaths``),
  R-peak (``events/physio_r_peaks``) and stimulation burst with the
  respiratory phase it began in (``events/physio_bursts``).

Cost. A slow process that steps every control period makes every chunk
one period long (measured here: a 20 s fear-extinction run took about
2.1 times as long with a 10 ms step as with 50 ms). This process instead
steps at ``period_s`` (0.1 s by default) and reads the chunk's periods
after the fact (:meth:`~closedloop.core.slow.SlowProcess.observe`): the
heart is simulated ``vagal_latency_s`` ahead of the loop, which is exact as
long as the latency is at least the step (enforced), because no pulse
delivered later can reach the sinus node before then.

The vagal afferent route (a modelling choice)
---------------------------------------------
Auricular VNS reaches the brain through the nucleus of the solitary tract
(NTS), whose output drives the locus coeruleus (LC, noradrenaline) and the
cardiac vagal motoneurons. The charge the device delivers in a period
(pulses x amplitude x pulse width, uC) is weighted by a **respiratory
gate**, 1 in expiration and ``inspiration_gain`` in inspiration: NTS and
cardiovagal neurons are inhibited during inspiration (the "respiratory
gate", Eckberg 2003, recalled), and Sclocco et al. (2019, abstract seen)
found exhalation-gated aVNS (eRAVANS) evoking larger NTS, LC and raphe
fMRI responses than inhalation-gated (iRAVANS), and only eRAVANS raising
cardiovagal modulation. ``inspiration_gain = 0.3`` is a choice. The gated
charge then

- adds to the heart's vagal tone (:mod:`.cardiac`): RR intervals lengthen;
- adds ``ne_gain_per_uc`` to a noradrenergic trace ``ne`` that decays with
  ``ne_tau_s`` (5 s: tVNS pupil dilation, an LC readout, peaks 4-5 s after
  a 3.4 s train, Sharon et al. 2021, abstract seen); ``ne`` multiplies the
  model parameters named in ``modulates`` by ``1 + gain * ne``. For the
  fear/extinction model the parameter is the CS learning rate
  ``alpha_hz``: noradrenaline in the infralimbic cortex and amygdala
  promotes extinction learning, and VNS paired with extinction trials
  speeds extinction in rats (Pena et al. 2013, recalled). The gain is a
  choice.

The direct electrical route of the device into the model (its ``drive``)
is left as the model defines it; an experiment of aVNS switches it off
(for ``fear_extinction``: ``g_il: 0``), since the ear electrode does not
reach the brain.

References
----------
.. [1] Sclocco R. et al. (2019). The influence of respiration on brainstem
   and cardiovagal response to auricular vagus nerve stimulation: a
   multimodal ultrahigh-field (7T) fMRI study. Brain Stimul 12:911-921.
.. [2] Eckberg D.L. (2003). The human respiratory gate. J Physiol
   548:339-352.
.. [3] Sharon O., Fahoum F., Nir Y. (2021). Transcutaneous vagus nerve
   stimulation in humans induces pupil dilation and attenuates alpha
   oscillations. J Neurosci 41:320-330.
.. [4] Pena D.F. et al. (2013). Vagus nerve stimulation enhances
   extinction of conditioned fear and modulates plasticity in the pathway
   from the ventromedial prefrontal cortex to the amygdala. Front Behav
   Neurosci 8:327 (2014); Biol Psychiatry 73:1071-1077 (2013).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from closedloop.core.slow import SlowProcess
from closedloop.physiology.cardiac import CardiacParams, Heart, children, hrv_metrics
from closedloop.physiology.respiration import BreathTable, RespirationParams

__all__ = ["BURST_GAP_S", "PhysiologyClock", "VagalParams"]

#: Pulses separated by less than this belong to one burst, s.
BURST_GAP_S = 0.1


@dataclass(frozen=True)
class VagalParams:
    """The vagal afferent route (module notes: a modelling choice throughout).

    Parameters
    ----------
    inspiration_gain : float
        Weight of charge delivered during inspiration (expiration: 1).
    ne_gain_per_uc : float
        Noradrenergic trace added per gated uC, 1/uC.
    ne_tau_s : float
        Its decay time constant, s.
    modulates : dict of str to float
        Model parameter to gain: the parameter becomes ``base * (1 + gain * ne)``.
    """

    inspiration_gain: float = 0.3
    ne_gain_per_uc: float = 0.02
    ne_tau_s: float = 5.0
    modulates: dict[str, float] = field(default_factory=dict)


class PhysiologyClock(SlowProcess):
    """Breathing and heart clocks with the vagal afferent route (see the module notes).

    Parameters
    ----------
    grid_s : float
        The loop's control period, s: the grid of the heart and of the
        features.
    period_s : float, default 0.1
        Step of the process, s (series, modulation), a whole number of
        control periods, at most ``cardiac.vagal_latency_s``.
    respiration, cardiac, vagal : parameter records
        See :class:`RespirationParams`, :class:`CardiacParams`, :class:`VagalParams`.
    sensor_delay_s : float, default 0.05
        Delay of the breath and R-peak detectors, s (a choice).
    base : dict of str to float or ndarray
        The model's values (per instance) of the parameters in ``vagal.modulates``.
    """

    def __init__(
        self,
        grid_s: float,
        period_s: float = 0.1,
        respiration: RespirationParams | None = None,
        cardiac: CardiacParams | None = None,
        vagal: VagalParams | None = None,
        sensor_delay_s: float = 0.05,
        base: Mapping[str, float | np.ndarray] | None = None,
    ) -> None:
        self.name = "physio"
        self.grid_s = grid_s
        self.period_s = period_s
        self.respiration = respiration or RespirationParams()
        self.cardiac = cardiac or CardiacParams()
        self.vagal = vagal or VagalParams()
        self.sensor_delay_s = sensor_delay_s
        self.base = dict(base or {})
        self.latency_steps = round(self.cardiac.vagal_latency_s / grid_s)
        if self.latency_steps * grid_s < period_s - 1e-12:
            raise ValueError(
                f"physiology.cardiac.vagal_latency_s ({self.cardiac.vagal_latency_s:g} s) must be "
                f"at least physiology.period_s ({period_s:g} s): the heart runs that far ahead"
            )
        if not (0.0 <= sensor_delay_s <= 1.0):
            raise ValueError(f"physiology.sensor_delay_s must be in [0, 1] s, got {sensor_delay_s}")

    # -- state ----------------------------------------------------------------------
    def reset(self, n: int, seeds: Sequence[np.random.SeedSequence]) -> None:
        """Start ``n`` subjects at t = 0 (breaths, hearts from their own seeds)."""
        streams = [children(s, 2) for s in seeds]
        self.n_ = n
        self.breaths_ = BreathTable(self.respiration, [a for a, _ in streams])
        hearts = [b for _, b in streams]
        # The same heart without stimulation, seeded alike: the counterfactual RR.
        self.heart_ = Heart(self.cardiac, self.grid_s, hearts)
        self.sham_ = Heart(self.cardiac, self.grid_s, hearts)
        self.feature_cursor_ = self.breaths_.cursor()
        self.pending_ = [np.zeros(n) for _ in range(self.latency_steps)]
        # The last four R-peaks (oldest first): features at a time the heart has passed.
        self.peaks_ = np.full((n, 4), math.nan)
        # The vagal tone of the last grid steps: its value at the loop's time.
        self.tone_ = [np.zeros(n)]
        self.held_ = {"vagal_tone": np.zeros(n), "ne_level": np.zeros(n)}
        self.r_peaks_: list[tuple[np.ndarray, np.ndarray]] = []
        self.sham_r_: list[tuple[np.ndarray, np.ndarray]] = []
        self.ne_ = np.zeros(n)
        self.observed_ = 0
        self.last_count_ = np.zeros(n)
        self.last_pulse_s_ = np.full(n, -math.inf)
        self.pulses_ = np.zeros(n)
        self.pulses_exp_ = np.zeros(n)
        self.ne_sum_ = np.zeros(n)
        self.events_: dict[str, list[dict[str, np.ndarray]]] = {
            "breaths": [],
            "r_peaks": [],
            "bursts": [],
        }
        self.onset_delays_: list[list[float]] = [[] for _ in range(n)]
        self.breath_t_ = 0.0
        if self.latency_steps:
            ahead = self.breaths_.states_at(np.arange(self.latency_steps) * self.grid_s)["phase"]
            for k in range(self.latency_steps):
                self._beat(np.zeros(n), ahead[:, k])
        self.latest_ = self.live_features(0.0)

    def _beat(self, vagal_uc: np.ndarray, phase: np.ndarray) -> None:
        """One grid step of both hearts at respiratory phase ``phase``; log their R-peaks."""
        r = self.heart_.advance(phase, vagal_uc)
        fired = ~np.isnan(r)
        if fired.any():
            self.peaks_[fired] = np.column_stack([self.peaks_[fired, 1:], r[fired]])
            inst = np.nonzero(fired)[0]
            self.r_peaks_.append((inst, r[fired]))
            rr = self.heart_.last_rr_s[fired] * 1e3
            self.events_["r_peaks"].append({"time_s": r[fired], "instance": inst, "rr_ms": rr})
        self.tone_ = [*self.tone_[-self.latency_steps - 1 :], self.heart_.v.copy()]
        s = self.sham_.advance(phase, np.zeros(self.n_))
        if (~np.isnan(s)).any():
            inst = np.nonzero(~np.isnan(s))[0]
            self.sham_r_.append((inst, s[inst]))

    def observe(self, t0_s: float, period_s: float, series: Mapping[str, np.ndarray]) -> None:
        """Gate and account every period's delivered charge; run the hearts ahead."""
        count = series["pulse_count"]
        charge = series["amplitude"] * series["pulse_width"] * 1e-3  # uC per pulse
        decay = math.exp(-period_s / self.vagal.ne_tau_s)
        m = count.shape[1]
        steps = np.arange(m)
        # The breath at every period of the chunk, and at every step the hearts take.
        resps = self.breaths_.states_at((self.observed_ + steps) * period_s)
        ahead = self.breaths_.states_at((self.heart_.step + steps) * self.grid_s)["phase"]
        for k in range(m):
            t = (self.observed_ + k) * period_s
            resp = {key: v[:, k] for key, v in resps.items()}
            # Pulses at zero amplitude deliver nothing (the device's idle train).
            pulses = np.maximum(count[:, k] - self.last_count_, 0.0) * (charge[:, k] > 0)
            self.last_count_ = count[:, k].copy()
            on = pulses > 0
            expiring = resp["expiring"] > 0.5
            gate = np.where(expiring, 1.0, self.vagal.inspiration_gain)
            gated = pulses * charge[:, k] * gate
            self.ne_ = decay * self.ne_ + self.vagal.ne_gain_per_uc * gated
            self.ne_sum_ += self.ne_
            self.pulses_ += pulses
            self.pulses_exp_ += pulses * expiring
            # A burst: pulses after at least BURST_GAP_S without any.
            start = on & (t - self.last_pulse_s_ >= BURST_GAP_S - 1e-9)
            self.last_pulse_s_ = np.where(on, t, self.last_pulse_s_)
            if start.any():
                inst = np.nonzero(start)[0]
                self.events_["bursts"].append(
                    {
                        "time_s": np.full(inst.size, t),
                        "instance": inst,
                        "resp_phase": resp["phase"][inst],
                        "expiring": resp["expiring"][inst],
                        "time_in_phase_ms": resp["time_in_phase_s"][inst] * 1e3,
                    }
                )
                for i in inst:
                    self.onset_delays_[i].append(float(resp["time_in_phase_s"][i]) * 1e3)
            self.pending_.append(gated)
            self._beat(self.pending_.pop(0), ahead[:, k])
        self.observed_ += count.shape[1]
        t1 = self.observed_ * period_s
        inst, onset, exp_onset = self.breaths_.events_between(self.breath_t_, t1)
        self.breath_t_ = t1
        if inst.size:
            self.events_["breaths"].append(
                {"time_s": onset, "instance": inst, "expiration_onset_s": exp_onset}
            )

    def advance(self, t_s: float, dt_s: float, readout: Mapping[str, np.ndarray]) -> None:
        """Nothing to integrate at the step (:meth:`observe` did it): record the values.

        The vagal tone and the noradrenergic trace are held from one step to
        the next (the loop's time is the step's end here; the heart is
        ``vagal_latency_s`` ahead).
        """
        self.held_ = {
            "vagal_tone": self.tone_[-self.latency_steps - 1].copy(),
            "ne_level": self.ne_.copy(),
        }
        self.latest_ = self.live_features(t_s)

    def live_features(self, t_s: float) -> dict[str, np.ndarray]:
        """What a controller reads at ``t_s`` (s), ``sensor_delay_s`` late (module notes)."""
        t = max(t_s - self.sensor_delay_s, 0.0)
        resp = self.breaths_.state(t, self.feature_cursor_)
        # The heart runs ahead of the loop: the last beats at or before t.
        p = self.peaks_
        idx = np.count_nonzero(~(p > t), axis=1) - 1  # NaNs (no beat yet) are leftmost
        rows = np.arange(self.n_)
        last = np.where(idx >= 0, p[rows, idx], math.nan)
        prev = np.where(idx >= 1, p[rows, idx - 1], math.nan)
        rr = last - prev
        since = t - last
        return {
            "resp_phase": resp["phase"],
            "resp_expiring": resp["expiring"],
            "resp_time_in_phase_s": resp["time_in_phase_s"],
            "cardiac_phase": since / rr,
            "cardiac_time_since_r_s": since,
            "rr_ms": rr * 1e3,
            **{k: v.copy() for k, v in self.held_.items()},
        }

    def modulation(self) -> dict[str, np.ndarray]:
        """``base * (1 + gain * ne)`` for every parameter in ``vagal.modulates``."""
        ne = getattr(self, "ne_", None)
        if ne is None:
            return {}
        return {k: self.base[k] * (1.0 + g * ne) for k, g in self.vagal.modulates.items()}

    # -- what is recorded ------------------------------------------------------------
    def series(self) -> dict[str, tuple[str, str]]:
        """Recorded at every step; a controller reads them every period (live)."""
        return {
            "resp_phase": ("cycles", "respiratory phase: inspiration from 0, expiration to 1"),
            "resp_expiring": ("1", "1 during expiration, 0 during inspiration"),
            "resp_time_in_phase_s": ("s", "time since the current inspiration/expiration began"),
            "cardiac_phase": ("cycles", "time since the last R-peak over the last RR interval"),
            "cardiac_time_since_r_s": ("s", "time since the last R-peak"),
            "rr_ms": ("ms", "the last RR interval"),
            "vagal_tone": ("1", "cardiac vagal tone from stimulation (RR lengthened by 1 + it)"),
            "ne_level": ("1", "noradrenergic (LC) trace from gated vagal afferent input"),
        }

    def values(self) -> dict[str, np.ndarray]:
        """The values at the last step (the sensor's view)."""
        return self.latest_

    def event_tables(self) -> dict[str, tuple[dict[str, tuple[str, str]], str]]:
        """Breath onsets, R-peaks and stimulation bursts."""
        return {
            "breaths": (
                {
                    "time_s": ("f8", "s"),
                    "instance": ("i8", "1"),
                    "expiration_onset_s": ("f8", "s"),
                },
                "breath (inspiration) onsets and the expiration onset of the same breath",
            ),
            "r_peaks": (
                {"time_s": ("f8", "s"), "instance": ("i8", "1"), "rr_ms": ("f8", "ms")},
                "R-peaks of the stimulated heart and the RR interval they end",
            ),
            "bursts": (
                {
                    "time_s": ("f8", "s"),
                    "instance": ("i8", "1"),
                    "resp_phase": ("f8", "cycles"),
                    "expiring": ("f8", "1"),
                    "time_in_phase_ms": ("f8", "ms"),
                },
                "first period of each stimulation burst, with the respiratory phase it began in",
            ),
        }

    def drain_events(self) -> dict[str, dict[str, np.ndarray]]:
        """Events since the last call, in time order per table."""
        out = {}
        for name, parts in self.events_.items():
            if parts:
                cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
                order = np.argsort(cols["time_s"], kind="stable")
                out[name] = {k: v[order] for k, v in cols.items()}
            self.events_[name] = []
        return out

    def metrics(self) -> dict[str, tuple[np.ndarray, str, str]]:
        """Heart-rate variability, RR lengthening, gating accuracy and the NE trace."""
        n = self.n_
        t_end = self.observed_ * self.grid_s

        def per_instance(log: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
            times: list[list[float]] = [[] for _ in range(n)]
            for inst, r in log:
                for i, x in zip(inst, r, strict=True):
                    if x <= t_end:
                        times[i].append(float(x))
            return [np.asarray(t) for t in times]

        hrv = [hrv_metrics(t) for t in per_instance(self.r_peaks_)]
        sham = [hrv_metrics(t) for t in per_instance(self.sham_r_)]
        col = lambda rows, k: np.array([r[k] for r in rows])  # noqa: E731
        delays = [np.asarray(d) for d in self.onset_delays_]
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = self.pulses_exp_ / self.pulses_
        return {
            "physio_mean_rr_ms": (col(hrv, "mean_rr_ms"), "ms", "mean RR interval"),
            "physio_sdnn_ms": (col(hrv, "sdnn_ms"), "ms", "SD of the RR intervals (SDNN)"),
            "physio_rmssd_ms": (col(hrv, "rmssd_ms"), "ms", "RMSSD of the RR intervals"),
            "physio_rr_lengthening_ms": (
                col(hrv, "mean_rr_ms") - col(sham, "mean_rr_ms"),
                "ms",
                "mean RR minus that of the same heart without stimulation",
            ),
            "physio_pulses_in_expiration_frac": (
                frac,
                "1",
                "fraction of delivered pulses that fell in expiration",
            ),
            "physio_burst_onset_delay_ms": (
                np.array([np.median(d) if d.size else math.nan for d in delays]),
                "ms",
                "median time from the start of the respiratory half (inspiration or "
                "expiration) to a burst's first pulse period",
            ),
            "physio_bursts_within_100ms_frac": (
                np.array([np.mean(d <= 100.0) if d.size else math.nan for d in delays]),
                "1",
                "fraction of bursts starting within 100 ms of the start of their respiratory "
                "half (Dabiri et al. 2022 timed stimulation within +-100 ms)",
            ),
            "physio_ne_mean": (
                self.ne_sum_ / max(self.observed_, 1),
                "1",
                "mean noradrenergic trace over the run",
            ),
        }
