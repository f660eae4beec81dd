"""A slow symptom state driven by the fast dynamics, read out as a clinical score.

Depression and PTSD are judged in the clinic by symptom scores collected
days or weeks apart (the 17-item Hamilton depression rating scale, HAMD-17;
a fear-expression index in extinction studies), not by band power. The
patient's state that those scores sample changes over hours to days, far
more slowly than the circuit: decoded mood in intracranial recordings
varies on time scales of hours to days (Sani et al. 2018, Nat Biotechnol
36:954), and symptom-triggered stimulation for depression lowered HAMD-17
over about two weeks (Scangos et al. 2021, Nat Med 27:1696).

Model (a modelling choice, not taken from a paper)
--------------------------------------------------
A latent severity ``s`` in [0, 1] relaxes with time constant ``tau_s``
towards the *drive* ``d``: where one fast readout of the circuit (a model
observable such as the time-averaged vACC activity, or a sensed feature)
stands between its healthy and its symptomatic level::

    d = clip((r - r_healthy) / (r_symptomatic - r_healthy), 0, 1)
    ds/dt = (d - s) / tau_s      (integrated exactly over each slow step)

so a circuit held in its symptomatic state for several ``tau_s`` drives the
patient to full severity, and one held healthy lets it resolve. The clinical
score is linear in ``s`` between a healthy and a severe score. Self-reports
are sparse and noisy, as a patient's are: every ``report_every_s`` the
score plus Gaussian noise (``report_sd``), rounded to whole points and
clipped to the scale, logged as ``events/<name>_reports``.

Scales
------
``hamd17``
    HAMD-17, 0-52 points. Healthy 3 and severe 30 points by default (a
    score of 24 or more is commonly called severe depression, 7 or less
    remission; 50 % reduction from baseline is response: Sellers et al.
    2024, Neuropsychopharmacology 49:163, and the trials it reviews).
``fear_index``
    Fear expression, 0-100 % (a freezing-like percentage): healthy 10 %,
    severe 80 % by default (modelling choice); remission 20 % or less.

The metrics a psychiatrist reads (:meth:`SymptomState.metrics`): the score
at the start and end, its change from baseline, response (at least 50 %
reduction), the time to response, remission, and the fraction of time spent
symptomatic (score above the scale's remission cut-off).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from closedloop.core.slow import SlowProcess

__all__ = ["SCALES", "ClinicalScale", "SymptomState"]


@dataclass(frozen=True)
class ClinicalScale:
    """A clinical rating scale.

    Attributes
    ----------
    name : str
        Short name.
    units : str
        Score units (``"points"``, ``"%"``).
    minimum, maximum : float
        Range of the scale.
    healthy, severe : float
        Default scores at severity 0 and 1.
    remission : float
        Remission cut-off: at or below it a patient counts as remitted, above
        it as symptomatic.
    reference : str
        Source of the cut-offs.
    """

    name: str
    units: str
    minimum: float
    maximum: float
    healthy: float
    severe: float
    remission: float
    reference: str


#: The scales a symptom state can report on.
SCALES: dict[str, ClinicalScale] = {
    "hamd17": ClinicalScale(
        "hamd17",
        "points",
        0.0,
        52.0,
        3.0,
        30.0,
        7.0,
        "HAMD-17 (Hamilton 1960); remission <= 7, response >= 50 % reduction "
        "(Sellers et al. 2024, Neuropsychopharmacology 49:163); healthy/severe defaults chosen",
    ),
    "fear_index": ClinicalScale(
        "fear_index",
        "%",
        0.0,
        100.0,
        10.0,
        80.0,
        20.0,
        "fear expression as a freezing-like percentage; all cut-offs chosen here",
    ),
}


class SymptomState(SlowProcess):
    """A latent symptom severity on a slow clock, read out as a clinical score.

    Parameters
    ----------
    name : str
        Prefix of its series, events and metrics (``"mood"``).
    readout : str
        The readout key that drives it: a model observable (e.g.
        ``"vacc_activity"``), a per-period series (``"biomarker"``) or a
        feature (``"feature_<name>"``).
    healthy_level, symptomatic_level : float or sequence of float
        Readout values of the healthy and the symptomatic circuit (readout
        units); per instance if a sequence. They may be in either order.
    tau_s : float or sequence of float
        Time constant of the severity, s (default 3 days: a modelling choice
        within the hours-to-days range of decoded mood, Sani et al. 2018).
    scale : {"hamd17", "fear_index"}
        The clinical scale.
    initial_severity : float or sequence of float
        Severity at t = 0, in [0, 1] (default 1: a patient enrolled in a
        severe episode).
    report_every_s : float
        Interval between self-reports, s (default 8 h: three a day).
    report_sd : float
        Standard deviation of a report's noise, in score units (default 2
        points: a modelling choice, about the test-retest spread of HAMD-17
        items summed).
    period_s : float
        Slow step, s (a whole number of control periods).
    """

    def __init__(
        self,
        *,
        name: str = "mood",
        readout: str = "biomarker",
        healthy_level: float | Sequence[float] = 0.0,
        symptomatic_level: float | Sequence[float] = 1.0,
        tau_s: float | Sequence[float] = 3 * 86400.0,
        scale: str = "hamd17",
        initial_severity: float | Sequence[float] = 1.0,
        report_every_s: float = 8 * 3600.0,
        report_sd: float = 2.0,
        period_s: float = 60.0,
    ) -> None:
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {sorted(SCALES)}, got {scale!r}")
        self.name = name
        self.readout = readout
        self.healthy_level = healthy_level
        self.symptomatic_level = symptomatic_level
        self.tau_s = tau_s
        self.scale = scale
        self.initial_severity = initial_severity
        self.report_every_s = report_every_s
        self.report_sd = report_sd
        self.period_s = period_s
        for key in ("tau_s", "report_every_s", "period_s"):
            values = np.atleast_1d(np.asarray(getattr(self, key), dtype=float))
            if not np.all(np.isfinite(values) & (values > 0)):
                raise ValueError(f"{key} must be a positive number of seconds, got {values}")
        if not (math.isfinite(report_sd) and report_sd >= 0):
            raise ValueError(f"report_sd must be >= 0, got {report_sd!r}")
        severity = np.atleast_1d(np.asarray(initial_severity, dtype=float))
        if not np.all((severity >= 0) & (severity <= 1)):
            raise ValueError(f"initial_severity must lie in [0, 1], got {severity}")
        if np.any(np.asarray(healthy_level, float) == np.asarray(symptomatic_level, float)):
            raise ValueError("healthy_level and symptomatic_level must differ")

    #: Settings that may differ per instance (the rest must agree to batch).
    PER_INSTANCE = ("healthy_level", "symptomatic_level", "tau_s", "initial_severity")

    @classmethod
    def concatenate(cls, processes: Sequence[SymptomState], sizes: Sequence[int]) -> SymptomState:
        """One symptom state for several runs' instances, each keeping its own settings."""
        first = processes[0]
        shared = ("name", "readout", "scale", "report_every_s", "report_sd", "period_s")
        for other in processes[1:]:
            for key in shared:
                if getattr(other, key) != getattr(first, key):
                    raise ValueError(f"symptom states differ in {key}: they cannot share a batch")
        per_instance = {
            key: np.concatenate(
                [
                    np.broadcast_to(np.asarray(getattr(p, key), dtype=float), (size,))
                    for p, size in zip(processes, sizes, strict=True)
                ]
            )
            for key in cls.PER_INSTANCE
        }
        return cls(**{key: getattr(first, key) for key in shared}, **per_instance)

    # -- the SlowProcess contract ------------------------------------------------
    def reset(self, n: int, seeds: Sequence[np.random.SeedSequence]) -> None:
        """Start ``n`` patients at their initial severity; one report stream each."""
        self.n_ = n
        self.severity_ = np.broadcast_to(np.asarray(self.initial_severity, float), (n,)).copy()
        self.start_score_ = self.score()
        self.rngs_ = [np.random.default_rng(s) for s in seeds]
        self.time_s_ = 0.0
        self.next_report_s_ = self.report_every_s
        self.symptomatic_s_ = np.zeros(n)
        self.reports_: list[tuple[float, np.ndarray]] = []
        self.last_report_ = np.full(n, np.nan)
        self.response_s_ = np.full(n, np.nan)

    def advance(self, t_s: float, dt_s: float, readout: Mapping[str, np.ndarray]) -> None:
        """Relax the severity towards the drive of this step's readout; report if due."""
        if self.readout not in readout:
            raise KeyError(
                f"symptom state {self.name!r} reads {self.readout!r}, which the loop does not "
                f"offer; available: {', '.join(sorted(readout))}"
            )
        r = np.asarray(readout[self.readout], dtype=float)
        lo = np.asarray(self.healthy_level, dtype=float)
        hi = np.asarray(self.symptomatic_level, dtype=float)
        drive = np.clip((r - lo) / (hi - lo), 0.0, 1.0)
        # Exact for a drive held over the step.
        decay = np.exp(-dt_s / np.asarray(self.tau_s, dtype=float))
        before = self.score() > SCALES[self.scale].remission
        self.severity_ = drive + (self.severity_ - drive) * decay
        after = self.score() > SCALES[self.scale].remission
        # Time symptomatic, the step counted by its two ends (trapezoid).
        self.symptomatic_s_ += 0.5 * dt_s * (before.astype(float) + after)
        self.time_s_ = t_s
        # Time to response: the first step end with the score at most half its start.
        responded = np.isnan(self.response_s_) & (self.score() <= 0.5 * self.start_score_)
        self.response_s_[responded] = t_s
        while self.next_report_s_ <= t_s + 1e-9:
            self._report(self.next_report_s_)
            self.next_report_s_ += self.report_every_s

    def _report(self, t_s: float) -> None:
        scale = SCALES[self.scale]
        noise = np.array([rng.normal() for rng in self.rngs_]) * self.report_sd
        reported = np.clip(np.round(self.score() + noise), scale.minimum, scale.maximum)
        self.last_report_ = reported
        self.reports_.append((t_s, reported))

    def score(self) -> np.ndarray:
        """The latent clinical score of every patient now (scale units)."""
        scale = SCALES[self.scale]
        return scale.healthy + (scale.severe - scale.healthy) * self.severity_

    def series(self) -> dict[str, tuple[str, str]]:
        """Severity, latent score and the last self-report, at every slow step."""
        units = SCALES[self.scale].units
        return {
            "severity": ("1", "latent symptom severity, 0 (healthy) to 1 (severe)"),
            "score": (units, f"latent {self.scale} score (what an ideal rater would give)"),
            "reported_score": (units, f"last {self.scale} self-report (NaN before the first)"),
        }

    def values(self) -> dict[str, np.ndarray]:
        """Current severity, latent score and last self-report, each ``(n,)``."""
        return {
            "severity": self.severity_.copy(),
            "score": self.score(),
            "reported_score": self.last_report_.copy(),
        }

    def event_tables(self) -> dict[str, tuple[dict[str, tuple[str, str]], str]]:
        """``reports``: each self-report's time, patient and score."""
        units = SCALES[self.scale].units
        return {
            "reports": (
                {"time_s": ("f8", "s"), "instance": ("i8", "1"), "score": ("f8", units)},
                f"sparse, noisy {self.scale} self-reports (score + noise, whole points)",
            )
        }

    def drain_events(self) -> dict[str, dict[str, np.ndarray]]:
        """Self-reports since the last call."""
        if not self.reports_:
            return {}
        n = self.n_
        cols = {
            "time_s": np.concatenate([np.full(n, t) for t, _ in self.reports_]),
            "instance": np.tile(np.arange(n), len(self.reports_)),
            "score": np.concatenate([s for _, s in self.reports_]),
        }
        self.reports_ = []
        return {"reports": cols}

    def metrics(self) -> dict[str, tuple[np.ndarray, str, str]]:
        """What a psychiatrist reads: score change, response, remission, time symptomatic."""
        scale = SCALES[self.scale]
        end = self.score()
        start = self.start_score_
        change = (end - start) / np.where(start != 0, start, np.nan)
        units = scale.units
        p = self.name
        return {
            f"{p}_score_start": (start.copy(), units, f"latent {self.scale} score at t = 0"),
            f"{p}_score_end": (end, units, f"latent {self.scale} score at the end"),
            f"{p}_score_change": (
                change,
                "1",
                "relative change of the latent score from baseline (negative: improvement)",
            ),
            f"{p}_score_reduction": (
                -change,
                "1",
                "fraction of the baseline score removed (1 - end / start; positive: better)",
            ),
            f"{p}_response": (
                (change <= -0.5).astype(float),
                "1",
                "1 if the score fell by at least 50 % from baseline (response)",
            ),
            f"{p}_time_to_response_days": (
                self.response_s_ / 86400.0,
                "day",
                "slow time until the latent score first fell to half its start or less "
                "(NaN: never; the end of the slow step it happened in)",
            ),
            f"{p}_remission": (
                (end <= scale.remission).astype(float),
                "1",
                f"1 if the final score is at most {scale.remission:g} {units} (remission)",
            ),
            f"{p}_time_symptomatic_fraction": (
                self.symptomatic_s_ / max(self.time_s_, 1e-300),
                "1",
                f"fraction of time with the score above {scale.remission:g} {units}",
            ),
        }
