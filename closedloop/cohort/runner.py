"""Run a cohort: write its definition, run every (arm, patient) run, report.

A cohort directory is a sweep directory (``manifest.json``, ``runs/``,
``summary.h5``/``summary.csv``; resumable: finished runs are skipped) plus
the cohort's own files, each written to a temporary name and renamed:
``cohort.json`` (the block, arms, patients, held-out split), ``patients.csv``
(the patient table, rules applied), ``cohort_runs.csv`` (run id -> arm,
patient), and after :func:`report_cohort` ``cohort_outcomes.csv`` and the
figures ``cohort_waterfall.png`` and ``cohort_responders.png``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from closedloop.cohort.outcomes import (
    PATIENTS_FILE,
    RUNS_TABLE,
    SPEC_FILE,
    CohortResults,
    cohort_results,
    outcome_table,
)
from closedloop.cohort.personalised import personalised_table
from closedloop.cohort.plan import CohortPlan
from closedloop.sweep.runner import SweepResult, run_sweep
from closedloop.sweep.summary import summarize_sweep

__all__ = ["OUTCOMES_FILE", "report_cohort", "run_cohort", "write_cohort_files"]

OUTCOMES_FILE = "cohort_outcomes.csv"


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_cohort_files(plan: CohortPlan, out_dir: str | os.PathLike[str]) -> None:
    """Write ``cohort.json``, ``patients.csv`` and ``cohort_runs.csv`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = plan.spec.model_dump(mode="json")
    spec.update(
        arms=list(plan.spec.arms),
        arm_settings=plan.spec.arms,
        patients=list(plan.table.patient_id),
        held_out=plan.held_out,
        covariates={k: [str(x) for x in v] for k, v in plan.table.covariates.items()},
        table_version=plan.table.version,
        duration_s=float(plan.sweep.base["duration_s"]),
        seed=plan.seed,
        name=plan.sweep.base.get("name", "cohort"),
    )
    _atomic(out / SPEC_FILE, json.dumps(spec, indent=1, default=str))
    plan.table.write_csv(out / PATIENTS_FILE)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["run_id", "arm", "patient_id", "held_out"])
    held = set(plan.held_out)
    for run_id, arm, pid in plan.runs:
        writer.writerow([run_id, arm, pid, int(pid in held)])
    _atomic(out / RUNS_TABLE, buf.getvalue())


def run_cohort(
    plan: CohortPlan, out_dir: str | os.PathLike[str], executor: Any, **sweep_kwargs: Any
) -> SweepResult:
    """Write the cohort's files and run every run not already complete.

    Every arm's runs, the personalised ones included (their loops wrapped in
    the arm's clinic by the worker, see :func:`closedloop.cohort.clinic.clinic_loop`),
    go through :func:`closedloop.sweep.runner.run_sweep` on ``executor`` (a
    local pool or Dask), which skips runs already complete. ``sweep_kwargs``
    go to it (``retry_failed``, ``batch_size``, ``progress``, ``log``).
    """
    write_cohort_files(plan, out_dir)
    return run_sweep(plan.sweep, out_dir, executor, **sweep_kwargs)


def report_cohort(
    out_dir: str | os.PathLike[str], *, figures: bool = True
) -> tuple[CohortResults, str]:
    """Summarise a cohort directory: outcome table (text and CSV) and figures.

    Returns
    -------
    results : CohortResults
    text : str
        The outcome table over all patients, and over the held-out ones when
        there are.
    """
    out = Path(out_dir)
    summarize_sweep(out)
    results = cohort_results(out)
    text = "all patients:\n" + outcome_table(results)
    if results.held_out:
        text += "\nheld-out patients:\n" + outcome_table(results, results.held_out)
    settings = json.loads((out / SPEC_FILE).read_text()).get("arm_settings", {})
    clinic_arms = {
        arm: str(value["clinic"].get("strategy", "?"))
        for arm, value in settings.items()
        if isinstance(value, dict) and isinstance(value.get("clinic"), dict) and arm in results.arms
    }
    if clinic_arms:
        held_out = results.held_out or None
        text += (
            f"\npersonalised arms ({'held-out' if held_out else 'all'} patients; each tuned "
            "on its own visits only):\n" + personalised_table(results, clinic_arms, held_out)
        )
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    metric_names = sorted(results.metrics)
    writer.writerow(
        [
            "subset",
            "arm",
            "n_patients",
            "responder_rate",
            "responder_ci_low",
            "responder_ci_high",
            "remission_rate",
            "remission_ci_low",
            "remission_ci_high",
            *(f"mean_{m}" for m in metric_names),
        ]
    )
    subsets = [("all", None)] + ([("held_out", results.held_out)] if results.held_out else [])
    for subset, patients in subsets:
        for o in results.outcome(patients):
            rem = o.remission_rate or (float("nan"),) * 3
            writer.writerow(
                [
                    subset,
                    o.arm,
                    o.n_patients,
                    *o.responder_rate,
                    *rem,
                    *(o.metric_means[m] for m in metric_names),
                ]
            )
    _atomic(out / OUTCOMES_FILE, buf.getvalue())
    if figures:
        from closedloop.plotting.cohort import save_cohort_figures

        save_cohort_figures(results, out)
    return results, text
