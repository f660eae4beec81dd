"""Run a cohort's personalised arms: each arm's patients as one batch with visits.

A personalised arm (an arm with a ``clinic:`` block, see
:mod:`closedloop.cohort.clinic`) cannot go through the sweep's workers,
which build plain loops: its runs are simulated here, in the calling
process, each arm's patients batched into one loop
(:func:`closedloop.sweep.batch.batched_loop`) wrapped in a
:class:`~closedloop.cohort.clinic.ClinicLoop`, and written as the sweep
writes its runs (``runs/<run_id>.h5`` with the same attributes, under a
scratch name first and moved in when complete), so the cohort's summary and
report read them like the other arms'. It resumes as the sweep does: a run
whose file is in ``runs/`` and complete is not run again; each patient's
visits do not depend on the batch it shares, so the patients redone give
the files they gave before.

Nothing is learnt across patients: each patient's setting comes from their
own visits, so the held-out patients (the cohort's ``held_out_fraction``)
stay a fair test of personalisation against the one-size-fits-all arms.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from closedloop.cohort.clinic import ClinicLoop
from closedloop.cohort.outcomes import CohortResults, bootstrap_ci
from closedloop.cohort.plan import CohortPlan
from closedloop.config import validate_config
from closedloop.experiment import RunSpec, simulate_runs
from closedloop.io import load_run
from closedloop.sweep.batch import batched_loop

__all__ = ["ClinicArmResult", "personalised_table", "run_clinic_arms"]

RUNS_DIR = "runs"


class ClinicArmResult:
    """What :func:`run_clinic_arms` did: runs simulated now and runs found complete."""

    def __init__(self) -> None:
        self.n_done = 0
        self.n_skipped = 0
        self.failures: dict[str, str] = {}
        self.wall_s = 0.0


def _complete(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        return str(load_run(path, data=False).attrs.get("status", "")) == "complete"
    except (OSError, ValueError):
        return False


def _attrs(run: Any, batch_size: int, wall: Callable[[], float]) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "sweep_params": dict(run.params),
        "run_config": dict(run.config),
        "replicate": int(run.replicate),
        "batch_size": int(batch_size),
        "wall_s": wall,
    }


def run_clinic_arms(
    plan: CohortPlan,
    out_dir: str | os.PathLike[str],
    *,
    batch_size: int | None = None,
    log: Callable[[str], None] | None = None,
) -> ClinicArmResult:
    """Simulate every personalised run of ``plan`` not already complete in ``out_dir``.

    Parameters
    ----------
    plan : CohortPlan
    out_dir : path-like
        The cohort directory.
    batch_size : int, optional
        Most patients simulated together (default: the whole arm).
    log : callable, optional
        Called with a line per batch.

    Returns
    -------
    ClinicArmResult
    """
    out = Path(out_dir)
    runs_dir = out / RUNS_DIR
    runs_dir.mkdir(parents=True, exist_ok=True)
    result = ClinicArmResult()
    t_start = time.perf_counter()
    for arm, clinic in plan.clinics.items():
        mine = [r for r, (_, a, _) in zip(plan.sweep.runs, plan.runs, strict=True) if a == arm]
        todo = []
        for run in mine:
            if _complete(runs_dir / f"{run.run_id}.h5"):
                result.n_skipped += 1
            else:
                todo.append(run)
        size = batch_size or max(len(todo), 1)
        for k in range(0, len(todo), size):
            group = todo[k : k + size]
            t0 = time.perf_counter()
            exps = [validate_config(r.config, plan.sweep.source) for r in group]
            try:
                loop = batched_loop(exps) if len(exps) > 1 else exps[0].loop
                groups = [(group, exps, loop)]
            except (ValueError, NotImplementedError):
                groups = [([r], [e], e.loop) for r, e in zip(group, exps, strict=True)]
            for runs, run_exps, run_loop in groups:
                _simulate(runs, run_exps, run_loop, clinic, runs_dir, t0, result)
            if log is not None:
                log(f"{arm}: {len(group)} patients tuned in {time.perf_counter() - t0:.1f} s")
    result.wall_s = time.perf_counter() - t_start
    return result


def _simulate(
    runs: list[Any],
    exps: list[Any],
    loop: Any,
    clinic: Any,
    runs_dir: Path,
    t0: float,
    result: ClinicArmResult,
) -> None:
    tmp_root = runs_dir / ".tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=tmp_root))
    try:

        def wall() -> float:
            return (time.perf_counter() - t0) / len(runs)

        specs = [
            RunSpec(exp, tmp / f"{run.run_id}.h5", _attrs(run, len(runs), wall))
            for run, exp in zip(runs, exps, strict=True)
        ]
        try:
            simulate_runs(ClinicLoop(loop, clinic), specs)
        except Exception as exc:  # recorded per run, as the sweep records failures
            for run in runs:
                result.failures[run.run_id] = f"{type(exc).__name__}: {exc}"
            return
        for spec in specs:
            figure = spec.path.with_suffix(".png")
            if figure.exists():
                os.replace(figure, runs_dir / figure.name)
            os.replace(spec.path, runs_dir / spec.path.name)
        result.n_done += len(runs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def personalised_table(
    results: CohortResults,
    clinic_arms: Mapping[str, str],
    patients: Sequence[str] | None = None,
) -> str:
    """Each personalised arm against every other arm, paired over ``patients``.

    Per pair: the difference (personalised minus other) of the mean of the
    responder metric, of the remission and responder rates, of the mean
    amplitude and of the energy per day, each with its paired 95 %
    percentile-bootstrap interval (patients resampled together).

    Parameters
    ----------
    results : CohortResults
    clinic_arms : mapping of str to str
        Personalised arm to its strategy.
    patients : sequence of str, optional
        The patients compared (default: all; the report passes the held-out ones).
    """
    cols = (
        np.arange(len(results.patients))
        if patients is None
        else np.array([results.patients.index(p) for p in patients], dtype=int)
    )
    rows: list[tuple[str, np.ndarray, float, str]] = [
        (results.responder.metric, results.metrics[results.responder.metric], 1.0, ""),
        ("responders", results.responders(), 100.0, " pp"),
    ]
    remitters = results.remitters()
    if remitters is not None:
        rows.append(("remission", remitters, 100.0, " pp"))
    for name in ("mean_amplitude_ma", "teed_j_per_day"):
        if name in results.metrics:
            rows.append((name, results.metrics[name], 1.0, ""))
    lines = []
    for arm, strategy in clinic_arms.items():
        a = results.arms.index(arm)
        lines.append(
            f"{arm} ({strategy}) on {len(cols)} patients, paired difference "
            "(personalised minus other), 95 % CI:"
        )
        for b, other in enumerate(results.arms):
            if b == a:
                continue
            parts = []
            for name, values, scale, unit in rows:
                d, lo, hi = bootstrap_ci(np.stack([values[a, cols], values[b, cols]], axis=1))
                if math.isfinite(d):
                    parts.append(
                        f"{name} {scale * d:+.3g}{unit} [{scale * lo:+.3g}, {scale * hi:+.3g}]"
                    )
            lines.append(f"  vs {other}: " + "; ".join(parts))
    return "\n".join(lines)
