"""The ``cohort:`` block: patients x arms expanded to runs of a sweep directory.

A cohort experiment is an ordinary experiment file with a ``cohort:``
block::

    cohort:
      table: cohorts/pd_beta.csv        # a patient table (relative to this file), or
      priors: {n_patients: 200, seed: 7, params: {...}, covariates: {...}, correlations: [...]}
      rules: [{covariate: cyp2c19, target: drugs.0.clearance_l_per_h, factors: {...}}]
      arms:                              # key paths each arm sets (nested or dotted)
        sham: {controller: {name: open_loop, params: {amplitude_ma: 0.0}}}
        continuous: {controller: {name: open_loop}}
        adaptive: {controller: {name: dual_threshold, params: {...}}}
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
"""

from __future__ import annotations

import copy
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from closedloop.cohort.priors import CohortPriors, CovariateRule, apply_rules, draw_cohort
from closedloop.cohort.table import PatientTable, read_patient_table
from closedloop.config import ConfigError, validate_config
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
    """

    spec: CohortSpec
    table: PatientTable
    sweep: SweepPlan
    runs: list[tuple[str, str, str]]
    held_out: list[str]
    seed: int


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


def patient_seed(cohort_seed: int, patient_id: str) -> int:
    """The seed of every run of one patient, in ``[0, 2**63)``."""
    seq = np.random.SeedSequence(int(cohort_seed), spawn_key=(zlib.crc32(patient_id.encode()),))
    return int(seq.generate_state(1, np.uint64)[0]) >> 1


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
        problems = [
            (".".join(["cohort", *map(str, e["loc"])]), e["msg"].removeprefix("Value error, "))
            for e in exc.errors()
        ]
        raise ConfigError(problems, source) from None
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
        else:
            table = draw_cohort(spec.priors)
        resolved = flatten(base_exp.resolved_dict())
        table = apply_rules(table, spec.rules, {**resolved, **flatten(base)})
        held_out = table.split(spec.held_out_fraction, seed)[1]
    except ValueError as exc:
        raise ConfigError([("cohort", str(exc))], source) from None
    name = base_exp.config.name
    points, labels = [], []
    for arm, overrides in spec.arms.items():
        arm_params = flatten(overrides)
        for i, pid in enumerate(table.patient_id):
            params = {
                "name": f"{name}-{arm}-{pid}",
                "description": f"cohort {name}, arm {arm}, patient {pid} "
                f"(table version {table.version})",
                **arm_params,
                **table.row(i),
            }
            points.append(params)
            labels.append((arm, pid))
    seeds = {p["name"]: patient_seed(seed, pid) for p, (_, pid) in zip(points, labels, strict=True)}
    problems: list[tuple[str, str]] = []
    runs, n_dup = plan_points(
        base,
        points,
        source,
        replicates=1,
        run_seed=lambda run_id, params: seeds[params["name"]],
        id_seed=seed,
        problems=problems,
        label="cohort run",
    )
    if problems:
        raise ConfigError(problems, source)
    by_name = dict(zip((p["name"] for p in points), labels, strict=True))
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
    )
