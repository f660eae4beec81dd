"""Run sweep tasks: one run alone, or several runs simulated together as one batch.

Runs that may share a simulation (see :mod:`closedloop.sweep.batch`) are run
as one batch; each run's file is bit for bit what the run writes alone.

A batch that fails (a run diverges, a controller raises) is not recorded as
such: the culprit is run alone (and recorded with its own reason) and the
others are batched again; after a second failure, or when the culprit is
unknown, every run of the batch is run alone. Run files are written under
``runs/.tmp/`` and moved into ``runs/`` only when finished.

:func:`execute_task` is what a worker (local process or Dask) calls.
"""

from __future__ import annotations

import importlib
import math
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import closedloop
from closedloop.config import ConfigError, validate_config
from closedloop.core.protocol import ModelDivergedError
from closedloop.experiment import RunSpec, simulate_runs
from closedloop.io import DEFAULT_FORMAT, RECORDERS, add_run_attrs, open_recorder
from closedloop.sweep.batch import batched_loop
from closedloop.sweep.manifest import TMP_DIR

__all__ = ["MAX_BATCH_RETRIES", "execute_task", "wrap_loop", "write_failed_run"]

#: Divergences tolerated in one batch before its remaining runs are run alone.
MAX_BATCH_RETRIES = 2

# ----------------------------------------------------------------------- files


class _WallShare:
    """Wall time since ``t0`` divided among ``k`` runs, s; remembers what it said."""

    def __init__(self, t0: float, k: int) -> None:
        self.t0 = t0
        self.k = k
        self.value = math.nan

    def __call__(self) -> float:
        self.value = (time.perf_counter() - self.t0) / self.k
        return self.value


def _sweep_attrs(run: Mapping[str, Any], wall_s: Any, batch_size: int) -> dict[str, Any]:
    """Root attributes a sweep adds to a run file (``wall_s`` may be a callable)."""
    return {
        "run_id": run["run_id"],
        "sweep_params": dict(run["params"]),
        "run_config": dict(run["config"]),
        "replicate": int(run["replicate"]),
        "batch_size": int(batch_size),
        "wall_s": wall_s,
    }


def _move(tmp_path: Path, runs_dir: Path) -> None:
    """Move a finished run file (and its figure) into ``runs/``: the file last."""
    figure = tmp_path.with_suffix(".png")
    if figure.exists():
        os.replace(figure, runs_dir / figure.name)
    os.replace(tmp_path, runs_dir / tmp_path.name)


def _finish(
    tmp_path: Path, runs_dir: Path, run: Mapping[str, Any], wall_s: float, k: int
) -> tuple[str, str]:
    """Add the sweep's attributes to a closed run file and move it into ``runs/``.

    For files closed before the attributes could be set (failed runs).
    Returns the file's ``status`` and ``message``: the file is the record.
    """
    status, message = add_run_attrs(tmp_path, _sweep_attrs(run, float(wall_s), k))
    _move(tmp_path, runs_dir)
    return status, message


def write_failed_run(
    runs_dir: str | os.PathLike[str],
    run: Mapping[str, Any],
    error: str,
    *,
    wall_s: float = math.nan,
    batch_size: int = 1,
    tmp_root: str | os.PathLike[str] | None = None,
) -> Path:
    """Write ``runs/<id>.h5`` with status ``failed`` for a run that left no file.

    Parameters
    ----------
    runs_dir : path-like
        The sweep's ``runs/`` directory.
    run : mapping
        The run (``run_id``, ``params``, ``replicate``, ``seed``, ``config``).
    error : str
        Why it failed.
    tmp_root : path-like, optional
        Scratch directory for the file while it is written (default
        ``runs/.tmp``).

    Returns
    -------
    Path
        The file.
    """
    runs_dir = Path(runs_dir)
    try:
        config = validate_config(run["config"]).resolved_dict()
    except ConfigError:
        config = run["config"]
    # A config that does not validate may name no usable format: the default then.
    fmt = (config.get("output") or {}).get("format", DEFAULT_FORMAT)
    fmt = fmt if fmt in RECORDERS else DEFAULT_FORMAT
    n = int(run["config"].get("n_instances", 1))
    tmp_dir = Path(tempfile.mkdtemp(dir=tmp_root if tmp_root is not None else runs_dir / TMP_DIR))
    try:
        path = tmp_dir / f"{run['run_id']}.h5"
        rec = open_recorder(
            fmt,
            path,
            config=config,
            seed=run["seed"],
            n=n,
            closedloop_version=closedloop.__version__,
        )
        rec.close("failed", error)
        _finish(path, runs_dir, run, wall_s, batch_size)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return runs_dir / f"{run['run_id']}.h5"


# ----------------------------------------------------------------------- running


def wrap_loop(loop: Any, run: Mapping[str, Any]) -> Any:
    """The loop a run simulates: ``loop`` through the run's ``loop_wrapper``, if any.

    The factory is imported by its dotted path here, in the worker, so the
    sweep depends on no layer that wraps loops (e.g. the cohort's clinic).
    """
    wrapper = run.get("loop_wrapper")
    if not wrapper:
        return loop
    module, _, name = str(wrapper["factory"]).rpartition(".")
    factory = getattr(importlib.import_module(module), name)
    return factory(loop, wrapper.get("settings") or {})


class _BatchFailed(Exception):
    def __init__(self, culprit: int | None, reason: str) -> None:
        super().__init__(reason)
        self.culprit = culprit


def _run_alone(
    run: Mapping[str, Any], runs_dir: Path, tmp_root: Path, source: str = ""
) -> dict[str, Any]:
    t0 = time.perf_counter()
    tmp_dir = Path(tempfile.mkdtemp(dir=tmp_root))
    path = tmp_dir / f"{run['run_id']}.h5"
    status, error = "complete", ""
    wall = _WallShare(t0, 1)
    try:
        try:
            exp = validate_config(run["config"], source)
            simulate_runs(
                wrap_loop(exp.loop, run), [RunSpec(exp, path, _sweep_attrs(run, wall, 1))]
            )
        except Exception as exc:
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        if status == "complete":
            _move(path, runs_dir)
        elif path.exists():
            status, error = _finish(path, runs_dir, run, wall(), 1)
        else:
            write_failed_run(runs_dir, run, error, wall_s=wall(), tmp_root=tmp_root)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return {"run_id": run["run_id"], "status": status, "error": error, "wall_s": wall.value}


def _run_batch(
    runs: Sequence[Mapping[str, Any]], runs_dir: Path, tmp_root: Path, source: str = ""
) -> list[dict[str, Any]]:
    t0 = time.perf_counter()
    exps = [validate_config(run["config"], source) for run in runs]
    loop = wrap_loop(batched_loop(exps), runs[0])
    tmp_dir = Path(tempfile.mkdtemp(dir=tmp_root))
    try:
        walls = [_WallShare(t0, len(runs)) for _ in runs]
        specs = [
            RunSpec(exp, tmp_dir / f"{run['run_id']}.h5", _sweep_attrs(run, wall, len(runs)))
            for exp, run, wall in zip(exps, runs, walls, strict=True)
        ]
        try:
            simulate_runs(loop, specs)
        except ModelDivergedError as exc:
            bounds = np.cumsum([exp.config.n_instances for exp in exps])
            culprit = int(np.searchsorted(bounds, exc.instance, side="right"))
            raise _BatchFailed(culprit, str(exc)) from exc
        except Exception as exc:
            raise _BatchFailed(None, str(exc)) from exc
        results = []
        for spec, run, wall in zip(specs, runs, walls, strict=True):
            _move(spec.path, runs_dir)
            results.append(
                {"run_id": run["run_id"], "status": "complete", "error": "", "wall_s": wall.value}
            )
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return results


def execute_task(task: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Run one sweep task and write its run files; what a worker calls.

    Parameters
    ----------
    task : mapping
        ``runs_dir`` (the sweep's ``runs/`` directory, shared with the
        workers), ``runs``: run payloads
        (:meth:`closedloop.sweep.plan.RunPoint.payload`) to simulate together when
        there are several, and optionally ``tmp_dir``: the sweep's scratch
        directory, which must exist (a sweep removes it when it stops, so a
        task still running after that writes nothing), and ``source``: the
        experiment file, beside which relative file paths resolve.

    Returns
    -------
    list of dict
        Per run: ``run_id``, ``status`` (``complete`` or ``failed``),
        ``error`` and ``wall_s``.
    """
    runs_dir = Path(task["runs_dir"])
    if task.get("tmp_dir"):
        tmp_root = Path(task["tmp_dir"])
        if not tmp_root.is_dir():
            raise FileNotFoundError(f"{tmp_root}: the sweep that sent this task has stopped")
    else:
        tmp_root = runs_dir / TMP_DIR
        tmp_root.mkdir(parents=True, exist_ok=True)
    source = str(task.get("source") or "")
    pending = list(task["runs"])
    results: list[dict[str, Any]] = []
    retries = 0
    while pending:
        if len(pending) == 1:
            results.append(_run_alone(pending[0], runs_dir, tmp_root, source))
            break
        try:
            results += _run_batch(pending, runs_dir, tmp_root, source)
            break
        except _BatchFailed as failure:
            if failure.culprit is None or retries >= MAX_BATCH_RETRIES:
                results += [_run_alone(run, runs_dir, tmp_root, source) for run in pending]
                break
            results.append(_run_alone(pending.pop(failure.culprit), runs_dir, tmp_root, source))
            retries += 1
        except Exception:  # not batchable after all: one by one
            results += [_run_alone(run, runs_dir, tmp_root, source) for run in pending]
            break
    return results
