"""The clinic loop: per-patient tuning of the controller at programming visits.

Clinicians personalise neuromodulation at visits weeks apart, from what
they can observe then: the patient's self-reported scores since the last
visit, or a biomarker summary read from the device. :class:`ClinicLoop`
puts that outer loop, on a slow clock, around a closed loop whose batch
holds many patients: every ``every_s`` of slow time a visit observes each
patient's outcome (never the model's hidden state), hands it to the
patient's tuning strategy (:mod:`closedloop.cohort.strategies`) and
reprograms the patient's controller with the setting it proposes
(:class:`closedloop.cohort.tuned.TunedController`); after ``n_visits``
visits (the budget) the setting it keeps stays for the rest of the run.

The ``clinic:`` block (an arm of a ``cohort:`` block, or
:meth:`ClinicSpec.model_validate` from Python)::

    clinic:
      strategy: grid                 # grid | optuna | self_tuning
      every_s: 1209600               # a visit every 2 weeks (slow time, s)
      n_visits: 6                    # the budget
      params:                        # controller parameters tuned, with the clinician's steps
        amplitude_ma: {low: 0.0, high: 4.0, step: 0.5, penalty: 1.0}
      outcome: {measure: reported_score, process: mood}
      settings: {}                   # optuna: n_startup; self_tuning: target, gain

Outcome measures
----------------
``reported_score``
    The mean of the patient's self-reports (the symptom state named by
    ``process``, :class:`closedloop.symptoms.SymptomState`) over the last
    ``window_s`` before the visit (default: since the last visit): sparse,
    noisy, whole points, as a diary is. A window of a week is the recall
    period of the HAMD-17 and keeps the wash-in of the last setting change
    out of the measure.
``biomarker``
    The mean of the sensed biomarker over the interval, times
    ``1 + noise_sd * N(0, 1)`` (a device readout with a relative
    measurement error; ``noise_sd`` is a modelling choice).

The loop resumes exactly (:meth:`ClinicLoop.run` for ``a`` then ``b``
seconds equals one run of ``a + b``: visits fall on multiples of
``every_s`` of slow time, the interval's biomarker is summed in a fixed
order) and is deterministic by seed: each patient's strategy and
measurement noise are seeded from the patient's own model seed, so a
patient tuned alone or inside any batch gets the same visits.

What each visit saw and did is recorded as the event table
``clinic_visits``; the metrics ``clinic_<param>_final`` (the setting kept)
and ``clinic_settled_visit`` (the visit after which the setting no longer
changed) go to the run file with the others.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from closedloop.cohort.strategies import ParamRange, ParamSpace, make_strategy
from closedloop.cohort.tuned import TunedController
from closedloop.sweep.batch import ControllerStack

__all__ = [
    "SETTINGS",
    "ClinicLoop",
    "ClinicSpec",
    "OutcomeSpec",
    "RangeSpec",
    "check_clinic",
    "clinic_loop",
]

#: Settings each strategy takes (``clinic.settings``), with whether each is required.
SETTINGS: dict[str, dict[str, bool]] = {
    "grid": {},
    "optuna": {"n_startup": False},
    "self_tuning": {"target": True, "gain": True},
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RangeSpec(_Strict):
    """One tuned parameter's range, step (parameter units) and penalty (objective/unit)."""

    low: float
    high: float
    step: float | None = Field(None, gt=0)
    penalty: float = 0.0

    @model_validator(mode="after")
    def _order(self) -> RangeSpec:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        return self


class OutcomeSpec(_Strict):
    """What a visit observes (see the module docstring)."""

    measure: Literal["reported_score", "biomarker"]
    process: str | None = None
    noise_sd: float = Field(0.0, ge=0)
    window_s: float | None = Field(None, gt=0, description="reports of the last window_s, s")

    @model_validator(mode="after")
    def _process(self) -> OutcomeSpec:
        if self.measure == "reported_score" and not self.process:
            raise ValueError("reported_score needs process: the symptom state's name")
        return self


class ClinicSpec(_Strict):
    """The ``clinic:`` block (see the module docstring)."""

    strategy: Literal["grid", "optuna", "self_tuning"]
    every_s: float = Field(gt=0, description="slow time between visits, s")
    n_visits: int = Field(ge=1, description="visits that may change the setting (the budget)")
    params: dict[str, RangeSpec] = Field(min_length=1)
    outcome: OutcomeSpec
    settings: dict[str, float] = {}

    @model_validator(mode="after")
    def _settings(self) -> ClinicSpec:
        if self.strategy == "optuna" and importlib.util.find_spec("optuna") is None:
            raise ValueError(
                "strategy: optuna is not installed (pip install optuna, or the 'clinic' extra)"
            )
        allowed = SETTINGS[self.strategy]
        for key in self.settings:
            if key not in allowed:
                raise ValueError(
                    f"settings.{key}: not a setting of strategy {self.strategy} "
                    f"(it takes: {', '.join(allowed) or 'none'})"
                )
        for key, required in allowed.items():
            if required and key not in self.settings:
                raise ValueError(f"settings.{key}: strategy {self.strategy} needs it")
        if self.strategy == "self_tuning" and len(self.params) != 1:
            raise ValueError("params: the self_tuning strategy tunes exactly one parameter")
        return self

    def space(self) -> ParamSpace:
        """The tuned parameters as a :class:`ParamSpace`."""
        return ParamSpace(
            {k: ParamRange(r.low, r.high, r.step, r.penalty) for k, r in self.params.items()}
        )


def _templates(controller: Any, n: int) -> tuple[list[Any], list[int]]:
    if isinstance(controller, ControllerStack):
        return list(controller.controllers), list(controller.sizes)
    if isinstance(controller, TunedController):
        return list(controller.templates), list(controller.sizes)
    return [controller], [n]


def check_clinic(spec: ClinicSpec, loop: Any) -> list[tuple[str, str]]:
    """Problems of ``spec`` against a validated run's loop: (key path under clinic, sentence).

    Checks that the controller has every tuned parameter and accepts both
    ends of its range, that the outcome's symptom state exists, and that
    visits fall on whole control periods (and on whole ``slow.every_s``
    with an epoch schedule).
    """
    problems: list[tuple[str, str]] = []
    template = _templates(loop.controller, loop.n)[0][0]
    own = template.get_params()
    for key, rng in spec.params.items():
        if key not in own:
            problems.append(
                (
                    f"params.{key}",
                    f"controller {template.name} has no parameter {key!r} "
                    f"(it has: {', '.join(sorted(own))})",
                )
            )
            continue
        for end in ("low", "high"):
            try:
                type(template)(**{**own, key: getattr(rng, end)}).reset(1, np.random.default_rng(0))
            except (ValueError, TypeError) as exc:
                problems.append((f"params.{key}.{end}", str(exc)))
    if spec.outcome.measure == "reported_score":
        names = [p.name for p in loop.slow]
        if spec.outcome.process not in names:
            problems.append(
                (
                    "outcome.process",
                    f"no symptom state named {spec.outcome.process!r} in this experiment "
                    f"(slow processes: {', '.join(names) or 'none'})",
                )
            )
    period = loop.control_period_s
    epochs = loop.slow_clock.epochs
    unit, what = (epochs.every_s, "slow.every_s") if epochs is not None else (period, "control")
    k = spec.every_s / unit
    if abs(k - round(k)) > 1e-9 * max(1.0, k) or round(k) < 1:
        problems.append(
            (
                "every_s",
                f"must be a whole number of {what} periods ({unit:g} s), got {spec.every_s:g}",
            )
        )
    return problems


class ClinicLoop:
    """A closed loop with programming visits (see the module docstring).

    Parameters
    ----------
    loop : closedloop.core.loop.ClosedLoop
        The patients' loop (one run, or several batched by
        :func:`closedloop.sweep.batch.batched_loop`); its controller is
        replaced by a :class:`TunedController` starting from the same
        settings. Everything not named here is the loop's own (the class
        stands in for it wherever a loop is taken, e.g.
        :func:`closedloop.experiment.simulate_runs`).
    spec : ClinicSpec

    Attributes
    ----------
    strategy_ : Strategy
        The patients' strategy, after :meth:`reset`.
    visits_ : int
        Visits done.
    """

    def __init__(self, loop: Any, spec: ClinicSpec) -> None:
        problems = check_clinic(spec, loop)
        if problems:
            raise ValueError("; ".join(f"clinic.{k}: {m}" for k, m in problems))
        self.loop = loop
        self.spec = spec
        self.space = spec.space()
        templates, sizes = _templates(loop.controller, loop.n)
        self.instance_seeds = [
            np.random.SeedSequence(s.entropy, spawn_key=(*s.spawn_key, 0xC1))
            for s in loop.model_instance_seeds
        ]
        self.controller = TunedController(templates, sizes, self.instance_seeds)
        loop.controller = self.controller

    def __getattr__(self, name: str) -> Any:
        # Only called for what this class does not define: the loop's.
        if name == "loop":
            raise AttributeError(name)
        return getattr(self.loop, name)

    # -- state --------------------------------------------------------------------
    def reset(self) -> None:
        """Reset the loop and every patient's strategy; the configured settings first."""
        self.loop.reset()
        n = self.loop.n
        start = np.array(
            [[self.controller.instance_params(i)[k] for k in self.space.names] for i in range(n)],
            dtype=float,
        )
        strategy_seeds = [
            int(s.generate_state(1, np.uint64)[0] >> np.uint64(1)) for s in self.instance_seeds
        ]
        self.noise_rngs_ = [
            np.random.default_rng(np.random.SeedSequence(s.entropy, spawn_key=(*s.spawn_key, 1)))
            for s in self.instance_seeds
        ]
        settings = dict(self.spec.settings)
        if self.spec.strategy == "grid":
            settings["n_proposals"] = max(self.spec.n_visits - 1, 1)
        self.strategy_ = make_strategy(
            self.spec.strategy, self.space, start, strategy_seeds, **settings
        )
        self.setting_ = self.strategy_.start.copy()
        if not np.array_equal(self.setting_, start):
            self._program(self.setting_, np.ones(n, dtype=bool))
        self.visits_ = 0
        self.settled_visit_ = np.zeros(n)
        self.boundary_ = np.zeros(n)
        self._interval_reset()
        self.events_: dict[str, list[dict[str, np.ndarray]]] = {}

    def _interval_reset(self) -> None:
        n = self.loop.n
        self.bio_sum_ = np.zeros(n)
        self.bio_count_ = 0
        self.reports_: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def _program(self, x: np.ndarray, which: np.ndarray) -> None:
        for i in np.flatnonzero(which):
            self.controller.set_instance_params(
                int(i), {k: float(x[i, j]) for j, k in enumerate(self.space.names)}
            )

    # -- running ------------------------------------------------------------------
    def warm_up(self, seconds: float) -> None:
        """The loop's warm-up (no visit happens during it)."""
        self.loop.warm_up(seconds)

    def run(
        self,
        duration_s: float,
        *,
        chunk_s: float = 1.0,
        on_chunk: Callable[[float, dict[str, np.ndarray]], None] | None = None,
        progress: Callable[[float], None] | None = None,
        on_spikes: Any = None,
    ) -> dict[str, np.ndarray]:
        """Run ``duration_s`` more seconds of slow time, visiting on schedule.

        Same arguments and return value as the loop's ``run``; the loop's
        events (e.g. self-reports) reach ``on_chunk``'s caller through
        :meth:`drain_events` as before.
        """
        every = self.spec.every_s
        t = self.loop.slow_time_s
        end = t + duration_s
        totals: dict[str, np.ndarray] = {}

        def chunk(t0: float, data: dict[str, np.ndarray]) -> None:
            self._observe(data)
            if on_chunk is not None:
                on_chunk(t0, data)

        while True:
            remaining = end - t
            if remaining <= 1e-9 * max(1.0, end):
                break
            if self.visits_ < self.spec.n_visits:
                step = min(remaining, (self.visits_ + 1) * every - t)
            else:
                step = remaining
            totals = self.loop.run(
                step, chunk_s=chunk_s, on_chunk=chunk, progress=progress, on_spikes=on_spikes
            )
            t = self.loop.slow_time_s
            due = (self.visits_ + 1) * every
            if self.visits_ < self.spec.n_visits and abs(t - due) <= 1e-9 * max(1.0, due):
                self._visit(t)
        return totals or self.loop.totals()

    def _observe(self, data: Mapping[str, np.ndarray]) -> None:
        # A sequential sum: the same bits however the interval is chunked.
        block = data["biomarker"]
        acc = np.add.accumulate(np.concatenate([self.bio_sum_[:, None], block], axis=1), axis=1)
        self.bio_sum_ = acc[:, -1]
        self.bio_count_ += block.shape[1]
        reports_name = f"{self.spec.outcome.process}_reports"
        for name, columns in self.loop.drain_events().items():
            self.events_.setdefault(name, []).append(dict(columns))
            if name == reports_name:
                times, instances, scores = (
                    np.asarray(columns[k]) for k in ("time_s", "instance", "score")
                )
                self.reports_.append((times, instances, scores))

    def measure(self, t_s: float) -> np.ndarray:
        """What a visit at slow time ``t_s`` observes, per patient (NaN: nothing observed)."""
        n = self.loop.n
        if self.spec.outcome.measure == "reported_score":
            total, count = np.zeros(n), np.zeros(n)
            since = (
                -math.inf
                if self.spec.outcome.window_s is None
                else t_s - self.spec.outcome.window_s
            )
            for times, inst, score in self.reports_:
                keep = times > since + 1e-9
                np.add.at(total, inst[keep].astype(int), score[keep])
                np.add.at(count, inst[keep].astype(int), 1.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(count > 0, total / count, np.nan)
        mean = self.bio_sum_ / self.bio_count_ if self.bio_count_ else np.full(n, np.nan)
        noise = np.array([rng.standard_normal() for rng in self.noise_rngs_])
        return mean * (1.0 + self.spec.outcome.noise_sd * noise)

    def _visit(self, t_s: float) -> None:
        self.visits_ += 1
        y = self.measure(t_s)
        used = self.setting_.copy()
        self.strategy_.tell(used, y)
        last = self.visits_ == self.spec.n_visits
        new = self.strategy_.final() if last else self.strategy_.ask()
        changed = np.any(new != used, axis=1)
        self._program(new, changed)
        self.setting_ = new.copy()
        self.settled_visit_ = np.where(changed, self.visits_, self.settled_visit_)
        self.boundary_ += self.space.at_boundary(new) if not last else 0.0
        n = self.loop.n
        row = {
            "time_s": np.full(n, t_s),
            "instance": np.arange(n),
            "visit": np.full(n, self.visits_, dtype=float),
            "measure": y,
            "objective": self.space.objective(used, y),
        }
        for j, k in enumerate(self.space.names):
            row[k] = used[:, j]
            row[f"next_{k}"] = new[:, j]
        self.events_.setdefault("clinic_visits", []).append(row)
        self._interval_reset()

    # -- what the run file records -------------------------------------------------
    def event_tables(self) -> dict[str, tuple[dict[str, tuple[str, str]], str]]:
        """The loop's tables and ``clinic_visits``."""
        fields = {
            "time_s": ("f8", "s"),
            "instance": ("i8", "1"),
            "visit": ("f8", "1"),
            "measure": ("f8", self._measure_units()),
            "objective": ("f8", self._measure_units()),
        }
        for k in self.space.names:
            fields[k] = ("f8", "parameter units")
            fields[f"next_{k}"] = ("f8", "parameter units")
        return {
            **self.loop.event_tables(),
            "clinic_visits": (
                fields,
                f"programming visits ({self.spec.strategy}): the outcome observed over the "
                "interval, the setting used then and the setting programmed",
            ),
        }

    def _measure_units(self) -> str:
        return "score" if self.spec.outcome.measure == "reported_score" else "biomarker units"

    def drain_events(self) -> dict[str, dict[str, np.ndarray]]:
        """Events since the last call: the loop's (already taken at chunk ends) and the visits'."""
        for name, columns in self.loop.drain_events().items():
            self.events_.setdefault(name, []).append(dict(columns))
        out = {
            name: {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            for name, parts in self.events_.items()
            if parts
        }
        self.events_ = {}
        return out

    def extra_metrics(self) -> dict[str, tuple[np.ndarray, str, str]]:
        """The loop's metrics and the clinic's: setting kept, visit it settled on."""
        out = dict(self.loop.extra_metrics())
        for j, k in enumerate(self.space.names):
            out[f"clinic_{k}_final"] = (
                self.setting_[:, j].copy(),
                "parameter units",
                f"{k} kept after the clinic's visits ({self.spec.strategy})",
            )
        out["clinic_settled_visit"] = (
            self.settled_visit_.copy(),
            "1",
            "visit after which the setting no longer changed (0: never changed)",
        )
        out["clinic_boundary_fraction"] = (
            self.boundary_ / max(self.spec.n_visits - 1, 1),
            "1",
            "fraction of proposed settings on an end of a tuned parameter's range",
        )
        return out

    def run_attributes(self) -> dict[str, Any]:
        """The loop's attributes and the clinic block."""
        return {**self.loop.run_attributes(), "clinic": self.spec.model_dump(mode="json")}


def clinic_loop(loop: Any, settings: Mapping[str, Any]) -> ClinicLoop:
    """Wrap ``loop`` in the clinic of the ``clinic:`` block ``settings``.

    What a sweep worker calls on a personalised run's loop (the run's
    ``loop_wrapper``, see :class:`closedloop.sweep.plan.RunPoint`).
    """
    return ClinicLoop(loop, ClinicSpec.model_validate(dict(settings)))
