"""The ``cohort:`` block: patients x arms expanded to runs of a sweep directory.

A cohort experiment is an ordinary experiment file with a ``cohort:``
block::

    cohort:
      table: cohorts/pd_beta.csv        # a patient table (relative to this file), or
      priors: {n_patients: 200, seed: 7, params: {...}, covariates: {...}, correlations: [...]}
      rules: [{covariate: cyp2c19, target: drugs.agents.citalopram.pk.cl_l_per_h,
               factors: {...}}]          # or {preset: cyp2c19_citalopram, agent: citalopram}
      arms:                              # key paths each arm sets (nested or dotted);
                                         # an arm naming controller.name replaces the controller
        sham: {controller: {name: open_loop, params: {amplitude_ma: 0.0}}}
        genotyped: {rules: [{preset: cyp2c19_citalopram_dose}]}  # rules of this arm only
        continuous: {controller: {name: open_loop}}
        adaptive: {controller: {name: dual_threshold, params: {...}}}
        personalised: {clinic: {strategy: optuna, every_s: 1209600, n_visits: 6,
                                params: {amplitude_ma: {low: 0, high: 4, step: 0.5}},
                                outcome: {measure: reported_score, process: mood}}}
      responder: {metric: band_power_reduction, at_least: 0.5}
      remission: {metric: mood_score_end, at_most: 7}        # optional
      held_out_fraction: 0.3                                 # optional
      seed: 11                                               # optional: patient seeds, split

Every (arm, patient) pair is one run with one instance, so every patient
has their own run file (``runs/<run_id>.h5``, named
``<name>-<arm>-<patient>``), and a patient's runs in all arms share one seed
(derived from the cohort seed and the patient id): arms are compared on the
same noise, as a crossover trial would. The runs go through the sweep
machinery (:mod:`closedloop.sweep`), so a cohort is resumable, runs on a
process pool or a Dask cluster, and patients of one arm are simulated as one
batch when their configs differ only on the batch axis.

An arm's own ``rules:`` apply to its patients only, after the cohort's
rules: a genotype-informed arm sets each patient's dose from the phenotype
(:mod:`closedloop.cohort.pgx`). A rule's target that the experiment leaves to
a drug preset (``drugs.agents.<name>.pk.cl_l_per_h``) starts from the
preset's value.

An arm with a ``clinic:`` key is *personalised*: its runs start from the
arm's settings and are tuned per patient at programming visits
(:mod:`closedloop.cohort.clinic`). Their runs go through the sweep's
executor with the others, carrying the clinic block as their
``loop_wrapper`` (:func:`closedloop.cohort.clinic.clinic_loop`), batched
only with runs of the same clinic.
"""

from __future__ import annotations

import copy
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from closedloop.cohort.clinic import ClinicSpec, check_clinic
from closedloop.cohort.priors import CohortPriors, CovariateRule, apply_rules, draw_cohort
from closedloop.cohort.table import PatientTable, read_patient_table
from closedloop.config import ConfigError, validate_config
from closedloop.drugs.presets import PRESETS
from closedloop.sweep.plan import SweepPlan, plan_points

__all__ = ["CohortPlan", "CohortSpec", "OutcomeRule", "expand_cohort", "flatten", "patient_seed"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutcomeRule(_Strict):
    """A patient counts when ``metric`` is at least / at most ``threshold``."""

    metric: str
    at_least: float | None = None
    at_most: float | None = None

    @model_validator(mode="after")
    def _one(self) -> OutcomeRule:
        if (self.at_least is None) == (self.at_most is None):
            raise ValueError("give exactly one of at_least and at_most")
        return self

    def test(self, values: np.ndarray) -> np.ndarray:
        """1.0 where the rule holds, 0.0 where not, NaN where the metric is missing."""
        values = np.asarray(values, dtype=float)
        hit = values >= self.at_least if self.at_least is not None else values <= self.at_most
        return np.where(np.isfinite(values), hit.astype(float), np.nan)

    def describe(self) -> str:
        """The rule in words."""
        if self.at_least is not None:
            return f"{self.metric} >= {self.at_least:g}"
        return f"{self.metric} <= {self.at_most:g}"


class CohortSpec(_Strict):
    """The ``cohort:`` block (see the module docstring)."""

    table: str | None = None
    priors: CohortPriors | None = None
    rules: list[CovariateRule] = []
    arms: dict[str, dict[str, Any]] = Field(min_length=1)
    responder: OutcomeRule
    remission: OutcomeRule | None = None
    held_out_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    seed: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _source(self) -> CohortSpec:
        if (self.table is None) == (self.priors is None):
            raise ValueError("give exactly one of table and priors")
        for arm in self.arms:
            if not arm.replace("_", "").isalnum():
                raise ValueError(f"arm name {arm!r} may hold only letters, digits and '_'")
        return self


@dataclass
class CohortPlan:
    """An expanded cohort.

    Attributes
    ----------
    spec : CohortSpec
    table : PatientTable
        The patients (rules applied).
    sweep : SweepPlan
        Every (arm, patient) run.
    runs : list of (str, str, str)
        ``(run_id, arm, patient_id)`` of every run, in order.
    held_out : list of str
        Patients held out from tuning (empty without a split).
    seed : int
        The cohort seed.
    clinics : dict of str to ClinicSpec
        The personalised arms' clinic blocks, by arm.
    """

    spec: CohortSpec
    table: PatientTable
    sweep: SweepPlan
    runs: list[tuple[str, str, str]]
    held_out: list[str]
    seed: int
    clinics: dict[str, ClinicSpec] = field(default_factory=dict)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings to dotted key paths (``{a: {b: 1}}`` -> ``{"a.b": 1}``)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def _leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Like :func:`flatten`, descending into lists too (``doses.0.amount_mg``)."""
    if isinstance(tree, Mapping):
        items = [(str(k), v) for k, v in tree.items()]
    elif isinstance(tree, list):
        items = [(str(i), v) for i, v in enumerate(tree)]
    else:
        return {prefix[:-1]: tree} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in items:
        out.update(_leaves(value, f"{prefix}{key}."))
    return out


def _rule_base(resolved: dict[str, Any], raw: dict[str, Any]) -> dict[str, float]:
    """Every numeric value a rule may scale: the experiment's, then its drug presets'."""
    base = {**_leaves(resolved), **_leaves(raw)}
    agents = (resolved.get("drugs") or {}).get("agents") or {}
    for name, agent in agents.items():
        preset = PRESETS.get(agent.get("preset") or "", {})
        for section in ("pk", "pd"):
            for key, value in preset.get(section, {}).items():
                path = f"drugs.agents.{name}.{section}.{key}"
                if base.get(path) is None and hasattr(value, "value"):
                    base[path] = value.value
    return {
        k: float(v)
        for k, v in base.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _arm_rules(spec: CohortSpec, source: str) -> dict[str, list[CovariateRule]]:
    """Validate each arm's ``rules:``; errors name ``cohort.arms.<arm>.rules...``."""
    out: dict[str, list[CovariateRule]] = {}
    problems: list[tuple[str, str]] = []
    for arm, overrides in spec.arms.items():
        if not isinstance(overrides, Mapping) or "rules" not in overrides:
            continue
        raw = overrides["rules"]
        if not isinstance(raw, list):
            problems.append((f"cohort.arms.{arm}.rules", "must be a list of rules"))
            continue
        out[arm] = []
        for k, rule in enumerate(raw):
            try:
                out[arm].append(CovariateRule.model_validate(rule))
            except (pydantic.ValidationError, ValueError) as exc:
                errors: list[tuple[tuple[int | str, ...], str]] = (
                    [(e["loc"], e["msg"]) for e in exc.errors()]
                    if isinstance(exc, pydantic.ValidationError)
                    else [((), str(exc))]
                )
                for loc, msg in errors:
                    path = ".".join(["cohort", "arms", arm, "rules", str(k), *map(str, loc)])
                    problems.append((path, msg.removeprefix("Value error, ")))
    if problems:
        raise ConfigError(problems, source)
    return out


def patient_seed(cohort_seed: int, patient_id: str) -> int:
    """The seed of every run of one patient, in ``[0, 2**63)``."""
    seq = np.random.SeedSequence(int(cohort_seed), spawn_key=(zlib.crc32(patient_id.encode()),))
    return int(seq.generate_state(1, np.uint64)[0]) >> 1


def _clinics(spec: CohortSpec, source: str) -> dict[str, ClinicSpec]:
    """Validate each arm's ``clinic:`` block; errors name ``cohort.arms.<arm>.clinic...``."""
    clinics: dict[str, ClinicSpec] = {}
    problems: list[tuple[str, str]] = []
    for arm, overrides in spec.arms.items():
        if not isinstance(overrides, Mapping) or "clinic" not in overrides:
            continue
        try:
            clinics[arm] = ClinicSpec.model_validate(overrides["clinic"])
        except pydantic.ValidationError as exc:
            for e in exc.errors():
                msg = e["msg"].removeprefix("Value error, ")
                loc = [str(x) for x in e["loc"]]
                # A sentence that names its own key ("settings.gain: ...") goes on the path.
                head, sep, rest = msg.partition(": ")
                if sep and not loc and " " not in head:
                    loc, msg = head.split("."), rest
                path = ".".join(["cohort", "arms", arm, "clinic", *loc])
                problems.append((path, msg))
    if problems:
        raise ConfigError(problems, source)
    return clinics


def expand_cohort(raw: dict[str, Any], source: str = "") -> CohortPlan:
    """Expand an experiment's cohort block to runs, each validated.

    Parameters
    ----------
    raw : dict
        The parsed experiment (with ``--set`` overrides applied).
    source : str
        The experiment file (a relative ``table`` path is read beside it).

    Raises
    ------
    closedloop.config.schema.ConfigError
        Naming the key path of every problem; nothing has run.
    """
    block = raw.get("cohort")
    if not isinstance(block, dict):
        raise ConfigError([("cohort", "this experiment has no cohort block")], source)
    if raw.get("sweep") is not None:
        raise ConfigError([("sweep", "a cohort experiment cannot also sweep")], source)
    try:
        spec = CohortSpec.model_validate(block)
    except pydantic.ValidationError as exc:
        problems: list[tuple[str, str]] = [
            (".".join(["cohort", *map(str, e["loc"])]), e["msg"].removeprefix("Value error, "))
            for e in exc.errors()
        ]
        raise ConfigError(problems, source) from None
    clinics = _clinics(spec, source)
    arm_rules = _arm_rules(spec, source)
    base = {k: copy.deepcopy(v) for k, v in raw.items() if k not in ("cohort", "sweep")}
    base["n_instances"] = 1  # one patient per run: per-patient files
    base_exp = validate_config(base, source)
    seed = spec.seed if spec.seed is not None else base_exp.config.seed
    try:
        if spec.table is not None:
            path = Path(spec.table)
            if not path.is_absolute() and source:
                path = Path(source).parent / path
            table = read_patient_table(path)
        elif spec.priors is not None:  # the schema asks for exactly one of table and priors
            table = draw_cohort(spec.priors)
        else:
            raise ConfigError([("cohort", "give exactly one of table and priors")], source)
        rule_base = _rule_base(base_exp.resolved_dict(), base)
        table = apply_rules(table, spec.rules, rule_base)
        held_out = table.split(spec.held_out_fraction, seed)[1]
    except ValueError as exc:
        raise ConfigError([("cohort", str(exc))], source) from None
    arm_tables = {}
    for arm, rules in arm_rules.items():
        try:
            arm_tables[arm] = apply_rules(table, rules, rule_base)
        except ValueError as exc:
            raise ConfigError([(f"cohort.arms.{arm}", str(exc))], source) from None
    name = base_exp.config.name
    points, labels = [], []
    for arm, overrides in spec.arms.items():
        arm_params = flatten({k: v for k, v in overrides.items() if k not in ("clinic", "rules")})
        arm_table = arm_tables.get(arm, table)
        for i, pid in enumerate(table.patient_id):
            params = {
                "name": f"{name}-{arm}-{pid}",
                "description": f"cohort {name}, arm {arm}, patient {pid} "
                f"(table version {table.version})",
                **arm_params,
                **arm_table.row(i),
            }
            points.append(params)
            labels.append((arm, pid))
    seeds = {p["name"]: patient_seed(seed, pid) for p, (_, pid) in zip(points, labels, strict=True)}
    problems = []
    # A personalised arm's runs are told apart from a plain arm with the
    # same starting settings by their clinic block, mixed into their ids.
    id_seeds = {arm: seed for arm in spec.arms}
    clinic_texts = {}
    for arm, clinic in clinics.items():
        clinic_texts[arm] = json.dumps(clinic.model_dump(mode="json"), sort_keys=True)
        id_seeds[arm] = seed ^ zlib.crc32(clinic_texts[arm].encode())
    runs, n_dup = [], 0
    for arm, overrides in spec.arms.items():
        mine = [p for p, (a, _) in zip(points, labels, strict=True) if a == arm]
        # An arm naming a controller replaces the experiment's controller (its
        # parameters are the arm's, not merged with another controller's).
        arm_base = base
        controller = overrides.get("controller")
        if isinstance(controller, dict) and "name" in controller:
            arm_base = copy.deepcopy(base)
            arm_base["controller"] = {"name": controller["name"], "params": {}}
        arm_runs, arm_dup = plan_points(
            arm_base,
            mine,
            source,
            replicates=1,
            run_seed=lambda run_id, params: seeds[params["name"]],
            id_seed=id_seeds[arm],
            problems=problems,
            label="cohort run",
        )
        if arm in clinics:  # run by the workers inside the arm's clinic loop
            wrapper = {
                "factory": "closedloop.cohort.clinic.clinic_loop",
                "settings": clinics[arm].model_dump(mode="json"),
            }
            arm_runs = [
                replace(r, group=f"{r.group}|clinic:{clinic_texts[arm]}", loop_wrapper=wrapper)
                for r in arm_runs
            ]
        runs += arm_runs
        n_dup += arm_dup
    if problems:
        raise ConfigError(problems, source)
    by_name = dict(zip((p["name"] for p in points), labels, strict=True))
    for arm, clinic in clinics.items():
        first = next(r for r in runs if by_name[r.params["name"]][0] == arm)
        loop = validate_config(first.config, source).loop
        problems += [
            (f"cohort.arms.{arm}.clinic.{key}", msg) for key, msg in check_clinic(clinic, loop)
        ]
    if problems:
        raise ConfigError(problems, source)
    sweep = SweepPlan(
        source=source,
        base=copy.deepcopy(base),
        sweep_seed=seed,
        param_keys=[k for k in (points[0] if points else {}) if k not in ("name", "description")],
        runs=runs,
        n_duplicates=n_dup,
        axes=[(("arm",), len(spec.arms)), (("patient",), len(table))],
    )
    return CohortPlan(
        spec=spec,
        table=table,
        sweep=sweep,
        runs=[(r.run_id, *by_name[r.params["name"]]) for r in runs],
        held_out=held_out,
        seed=seed,
        clinics=clinics,
    )
