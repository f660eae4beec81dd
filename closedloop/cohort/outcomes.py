"""Cohort outcomes as clinical trials report them.

Per arm: the responder rate (the cohort's ``responder`` rule, e.g. at
least 50 % reduction of the symptom score or biomarker from baseline), the
remission rate, with percentile-bootstrap 95 % confidence intervals over
patients; the mean of every metric; energy and charge per day; and, against
each other arm, the paired difference of responder rates (patients
resampled together across arms, since every arm ran on the same patients
and seeds) with its interval. Held-out patients (the cohort's
``held_out_fraction``) are reported on their own as well: tuning may only
use the others.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from closedloop.cohort.plan import OutcomeRule
from closedloop.sweep.summary import collect_summary

__all__ = [
    "ArmOutcome",
    "CohortResults",
    "RUNS_TABLE",
    "SPEC_FILE",
    "bootstrap_ci",
    "cohort_results",
    "outcome_table",
]

#: Files a cohort directory holds beside the sweep's.
RUNS_TABLE = "cohort_runs.csv"
SPEC_FILE = "cohort.json"
PATIENTS_FILE = "patients.csv"
N_BOOT = 2000


def bootstrap_ci(
    values: np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """Mean of ``values`` and its percentile-bootstrap interval (NaNs left out).

    ``values`` may be ``(n,)`` (one sample per patient) or ``(n, k)``: then
    the statistic is the mean of column 0 minus the mean of column 1, with
    rows (patients) resampled together (a paired difference).
    """
    values = np.asarray(values, dtype=float)
    paired = values.ndim == 2
    keep = np.isfinite(values).all(axis=1) if paired else np.isfinite(values)
    values = values[keep]
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan

    def stat(v: np.ndarray) -> np.ndarray:
        return v[..., 0].mean(axis=-1) - v[..., 1].mean(axis=-1) if paired else v.mean(axis=-1)

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    boot = stat(values[idx])
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return float(stat(values)), float(lo), float(hi)


@dataclass
class ArmOutcome:
    """One arm's outcome over a set of patients."""

    arm: str
    n_patients: int
    responder_rate: tuple[float, float, float]
    remission_rate: tuple[float, float, float] | None
    metric_means: dict[str, float]
    versus: dict[str, tuple[float, float, float]]


@dataclass
class CohortResults:
    """A cohort directory's results.

    Attributes
    ----------
    arms : list of str
    patients : list of str
        Patient ids, in table order.
    held_out : list of str
    metrics : dict of str to ndarray
        Metric name to ``(n_arms, n_patients)`` values (NaN: run missing).
    responder : OutcomeRule
    remission : OutcomeRule or None
    covariates : dict of str to list of str
    duration_days : float
        Simulated (slow) time per run, days.
    """

    arms: list[str]
    patients: list[str]
    held_out: list[str]
    metrics: dict[str, np.ndarray]
    responder: OutcomeRule
    remission: OutcomeRule | None
    covariates: dict[str, list[str]]
    duration_days: float

    def responders(self) -> np.ndarray:
        """1/0/NaN per arm and patient."""
        return self.responder.test(self.metrics.get(self.responder.metric, self._nan()))

    def remitters(self) -> np.ndarray | None:
        """1/0/NaN per arm and patient, or None without a remission rule."""
        if self.remission is None:
            return None
        return self.remission.test(self.metrics.get(self.remission.metric, self._nan()))

    def _nan(self) -> np.ndarray:
        return np.full((len(self.arms), len(self.patients)), np.nan)

    def outcome(self, patients: Sequence[str] | None = None, seed: int = 0) -> list[ArmOutcome]:
        """Every arm's outcome over ``patients`` (default: all)."""
        cols = (
            np.arange(len(self.patients))
            if patients is None
            else np.array([self.patients.index(p) for p in patients], dtype=int)
        )
        resp = self.responders()[:, cols]
        rem = self.remitters()
        out = []
        for a, arm in enumerate(self.arms):
            versus = {
                other: bootstrap_ci(np.stack([resp[a], resp[b]], axis=1), seed=seed)
                for b, other in enumerate(self.arms)
                if b != a
            }
            out.append(
                ArmOutcome(
                    arm=arm,
                    n_patients=int(np.isfinite(resp[a]).sum()),
                    responder_rate=bootstrap_ci(resp[a], seed=seed),
                    remission_rate=None if rem is None else bootstrap_ci(rem[a, cols], seed=seed),
                    metric_means={
                        k: float(np.nanmean(v[a, cols]))
                        if np.isfinite(v[a, cols]).any()
                        else math.nan
                        for k, v in self.metrics.items()
                    },
                    versus=versus,
                )
            )
        return out

    def to_frame(self) -> Any:
        """One row per (arm, patient): metrics, responder, remission, covariates (pandas)."""
        import pandas as pd

        rows = []
        resp = self.responders()
        rem = self.remitters()
        for a, arm in enumerate(self.arms):
            for i, pid in enumerate(self.patients):
                row = {"arm": arm, "patient_id": pid, "held_out": pid in self.held_out}
                row.update({f"covariate:{k}": v[i] for k, v in self.covariates.items()})
                row.update({k: v[a, i] for k, v in self.metrics.items()})
                row["responder"] = resp[a, i]
                if rem is not None:
                    row["remission"] = rem[a, i]
                rows.append(row)
        return pd.DataFrame(rows)


def cohort_results(out_dir: str | os.PathLike[str]) -> CohortResults:
    """Read a cohort directory (after ``closedloop cohort``) into :class:`CohortResults`.

    Raises
    ------
    FileNotFoundError
        When the directory holds no cohort.
    """
    out_dir = Path(out_dir)
    spec_path = out_dir / SPEC_FILE
    if not spec_path.exists():
        raise FileNotFoundError(f"{out_dir}: not a cohort directory (no {SPEC_FILE})")
    spec = json.loads(spec_path.read_text())
    with open(out_dir / RUNS_TABLE, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    arms = list(spec["arms"])
    patients = list(spec["patients"])
    columns, meta = collect_summary(out_dir)
    where = {rid: k for k, rid in enumerate(columns["run_id"])}
    metrics = {name: np.full((len(arms), len(patients)), np.nan) for name in meta["metric_columns"]}
    for row in rows:
        k = where.get(row["run_id"])
        if k is None or columns["status"][k] != "complete":
            continue
        a, i = arms.index(row["arm"]), patients.index(row["patient_id"])
        for name in meta["metric_columns"]:
            metrics[name][a, i] = columns[name][k]
    days = spec["duration_s"] / 86400.0
    for name, per_day in (("teed_j", "teed_j_per_day"), ("charge_uc", "charge_uc_per_day")):
        if name in metrics:
            metrics[per_day] = metrics[name] / days
    return CohortResults(
        arms=arms,
        patients=patients,
        held_out=list(spec.get("held_out", [])),
        metrics=metrics,
        responder=OutcomeRule.model_validate(spec["responder"]),
        remission=None
        if spec.get("remission") is None
        else OutcomeRule.model_validate(spec["remission"]),
        covariates={k: list(v) for k, v in spec.get("covariates", {}).items()},
        duration_days=days,
    )


def _mean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.isfinite(values).any() else math.nan


def _pct(ci: tuple[float, float, float] | None) -> str:
    if ci is None or not math.isfinite(ci[0]):
        return "-"
    return f"{100 * ci[0]:.0f} % [{100 * ci[1]:.0f}, {100 * ci[2]:.0f}]"


def outcome_table(results: CohortResults, patients: Sequence[str] | None = None) -> str:
    """Plain-text table: responder and remission rates with 95 % CIs, per arm."""
    outcomes = results.outcome(patients)
    rule = results.responder.describe()
    lines = [
        f"{'arm':<16} {'n':>5}  {'responders (' + rule + ')':<36} {'remission':<20}",
    ]
    for o in outcomes:
        lines.append(
            f"{o.arm:<16} {o.n_patients:>5}  {_pct(o.responder_rate):<36} "
            f"{_pct(o.remission_rate):<20}"
        )
    if len(outcomes) > 1:
        lines.append("paired difference in responder rate (row minus column), 95 % CI:")
        for o in outcomes:
            diffs = ", ".join(
                f"vs {other}: {100 * d[0]:+.0f} pp [{100 * d[1]:+.0f}, {100 * d[2]:+.0f}]"
                for other, d in o.versus.items()
                if math.isfinite(d[0])
            )
            lines.append(f"  {o.arm}: {diffs}")
    return "\n".join(lines)
