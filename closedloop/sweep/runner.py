"""Run a sweep: every run of a plan not already done, on an executor, with its manifest.

:func:`run_sweep` hands tasks (one run, or a batch of runs simulated
together, see :mod:`closedloop.sweep.worker`) to an executor from
:mod:`closedloop.sweep.executors`: a local process pool by default, a Dask cluster
on request. Completed runs are skipped when a sweep is run again; failed ones
are retried only when asked.

The pieces: :mod:`closedloop.sweep.spec` (the block),
:mod:`closedloop.sweep.plan` (runs, ids, seeds, tasks),
:mod:`closedloop.sweep.manifest` (the directory and its manifest),
:mod:`closedloop.sweep.worker` (what a worker does with a task),
:mod:`closedloop.sweep.executors` (where tasks run) and
:mod:`closedloop.sweep.summary` (one table of all runs).
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from closedloop.io import read_run_status
from closedloop.sweep.executors import TaskError, WorkerLost
from closedloop.sweep.manifest import (
    MANIFEST,
    RUNS_DIR,
    TMP_DIR,
    Manifest,
    atomic_write_text,
    directory_lock,
)
from closedloop.sweep.plan import RunPoint, SweepPlan, make_tasks
from closedloop.sweep.worker import write_failed_run

__all__ = ["SweepInterrupted", "SweepResult", "run_sweep"]


class SweepInterrupted(KeyboardInterrupt):
    """The sweep was stopped (Ctrl-C); finished runs are kept, the manifest says what is missing."""

    def __init__(self, result: SweepResult) -> None:
        super().__init__("interrupted")
        self.result = result


@dataclass
class SweepResult:
    """What a sweep left behind.

    Attributes
    ----------
    out_dir : Path
        The sweep directory.
    counts : dict
        Runs ``complete``, ``failed`` and ``pending`` (not run) at the end.
    n_done : int
        Runs simulated by this call (complete or failed).
    n_skipped : int
        Runs already complete (or failed, without retry) before this call.
    wall_s : float
        Time this call took, s.
    failures : dict
        Run id to error text of every failed run.
    """

    out_dir: Path
    counts: dict[str, int]
    n_done: int = 0
    n_skipped: int = 0
    wall_s: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every run of the sweep is complete."""
        return self.counts["failed"] == 0 and self.counts["pending"] == 0


def run_sweep(
    plan: SweepPlan,
    out_dir: str | os.PathLike[str],
    executor: Any,
    *,
    retry_failed: bool = False,
    batch_size: int | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run every run of a sweep not already done.

    Parameters
    ----------
    plan : SweepPlan
        From :func:`closedloop.sweep.plan.expand_sweep`.
    out_dir : path-like
        The sweep directory (created).
    executor : closedloop.sweep.executors.LocalPool or closedloop.sweep.executors.DaskExecutor
        Where tasks run; left open (the caller shuts it down).
    retry_failed : bool
        Run again the runs whose files say they failed.
    batch_size : int, optional
        Most runs simulated together (1: never batch); default the sweep
        block's ``batch_size``, else automatic (see
        :func:`closedloop.sweep.plan.make_tasks`).
    progress : bool
        Show a progress bar (tqdm) on standard error.
    log : callable, optional
        Receives one-line messages (default: print to standard error).

    Returns
    -------
    SweepResult

    Raises
    ------
    closedloop.sweep.manifest.SweepBusyError
        When another sweep holds the directory.
    SweepInterrupted
        On Ctrl-C, after stopping the workers, removing unfinished files and
        writing the manifest (runs not finished are ``pending``).
    closedloop.sweep.executors.ExecutorError
        When the executor fails (e.g. the Dask scheduler goes away), after
        the same clean-up (manifest state ``stopped``).
    """
    if log is None:

        def log(message: str) -> None:
            print(message, file=sys.stderr)

    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    runs_dir = out_dir / RUNS_DIR
    runs_dir.mkdir(parents=True, exist_ok=True)
    with directory_lock(out_dir):
        # Files left by a killed sweep are unfinished by construction. Each
        # sweep writes under its own scratch directory and removes it when it
        # stops: a task still running elsewhere after that writes nothing.
        shutil.rmtree(runs_dir / TMP_DIR, ignore_errors=True)
        tmp_root = runs_dir / TMP_DIR / f"session-{os.getpid()}-{time.time_ns()}"
        tmp_root.mkdir(parents=True)
        base_text = yaml.safe_dump(plan.base, sort_keys=False)
        atomic_write_text(out_dir / "sweep.yaml", f"# from {plan.source}\n{base_text}")
        manifest = Manifest(out_dir / MANIFEST, plan)
        todo: list[RunPoint] = []
        n_skipped = 0
        for run in plan.runs:
            found = read_run_status(runs_dir / f"{run.run_id}.h5")
            if found is not None:
                manifest.set(run.run_id, found["status"], found["error"], found["wall_s"])
                if found["status"] == "complete" or not retry_failed:
                    n_skipped += 1
                    continue
                manifest.set(run.run_id, "pending")
            todo.append(run)
        manifest.write()
        size = batch_size if batch_size is not None else plan.batch_size
        tasks = make_tasks(todo, executor.workers, size)
        by_id = {run.run_id: run for run in plan.runs}
        log(
            f"sweep: {len(plan.runs)} runs, {n_skipped} already done, {len(todo)} to run "
            f"in {len(tasks)} task(s) on {executor.describe()}"
        )
        outstanding: dict[int, list[RunPoint]] = {}
        next_id = itertools.count()
        payload_common = {
            "runs_dir": str(runs_dir),
            "tmp_dir": str(tmp_root),
            # files an experiment names sit beside it: its absolute path for the workers
            "source": str(Path(plan.source).resolve())
            if plan.source and Path(plan.source).is_file()
            else plan.source,
        }

        def submit(batch: list[RunPoint]) -> None:
            task_id = next(next_id)
            outstanding[task_id] = batch
            executor.submit(task_id, {**payload_common, "runs": [r.payload() for r in batch]})

        bar = None
        if progress and todo:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), unit="run", desc="sweep", dynamic_ncols=True)
        n_done = 0
        n_failed = manifest.counts()["failed"]

        def record(run_id: str, status: str, error: str, wall: float | None) -> None:
            nonlocal n_done, n_failed
            manifest.set(run_id, status, error, wall)
            n_done += 1
            n_failed += status == "failed"
            if bar is not None:
                bar.update(1)
                bar.set_postfix(failed=n_failed, refresh=False)

        try:
            for batch in tasks:
                submit(batch)
            while outstanding:
                task_id, outcome = executor.next_result()
                batch = outstanding.pop(task_id)
                if isinstance(outcome, WorkerLost):
                    if len(batch) > 1:
                        # Which run took the worker down is unknown: try each alone.
                        for run in batch:
                            submit([run])
                    else:
                        run = batch[0]
                        error = f"{outcome.reason} while running this run"
                        _record_failure_file(runs_dir, tmp_root, run, error)
                        record(run.run_id, "failed", error, None)
                elif isinstance(outcome, TaskError):
                    for run in batch:
                        error = f"the task failed outside the run: {outcome.text}"
                        _record_failure_file(runs_dir, tmp_root, run, error)
                        record(run.run_id, "failed", error, None)
                else:
                    for res in outcome:
                        if res["run_id"] in by_id:
                            record(res["run_id"], res["status"], res["error"], res["wall_s"])
                manifest.write(force=False)
        except BaseException as exc:
            # Ctrl-C, or the executor failing (a Dask scheduler gone): stop
            # the workers, keep what finished, say what is missing.
            executor.shutdown(kill=True)
            shutil.rmtree(runs_dir / TMP_DIR, ignore_errors=True)
            # Runs may have finished after their last report: the files say.
            for run_id, entry in manifest.entries.items():
                if entry["status"] == "pending":
                    found = read_run_status(runs_dir / f"{run_id}.h5")
                    if found is not None:
                        manifest.set(run_id, found["status"], found["error"], found["wall_s"])
            interrupted = isinstance(exc, KeyboardInterrupt)
            manifest.state = "interrupted" if interrupted else "stopped"
            manifest.write()
            if bar is not None:
                bar.close()
            if interrupted:
                raise SweepInterrupted(
                    _result(out_dir, manifest, n_done, n_skipped, t_start)
                ) from None
            raise
        if bar is not None:
            bar.close()
        manifest.state = "finished"
        manifest.write()
        shutil.rmtree(runs_dir / TMP_DIR, ignore_errors=True)
        return _result(out_dir, manifest, n_done, n_skipped, t_start)


def _result(
    out_dir: Path, manifest: Manifest, n_done: int, n_skipped: int, t0: float
) -> SweepResult:
    return SweepResult(
        out_dir=out_dir,
        counts=manifest.counts(),
        n_done=n_done,
        n_skipped=n_skipped,
        wall_s=time.perf_counter() - t0,
        failures={
            e["id"]: e["error"] for e in manifest.entries.values() if e["status"] == "failed"
        },
    )


def _record_failure_file(runs_dir: Path, tmp_root: Path, run: RunPoint, error: str) -> None:
    """Write a failed run file for a run whose worker could not (it died)."""
    write_failed_run(runs_dir, run.payload(), error, wall_s=math.nan, tmp_root=tmp_root)
