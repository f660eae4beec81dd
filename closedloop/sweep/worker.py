"""Run sweep tasks: one run alone, or several runs simulated together as one batch.

Runs of a sweep that differ only in model parameters, controller parameters
and seeds can share one simulation: one model of all their instances (model
parameters are per instance already), one :class:`ControllerStack` of their
controllers, one :class:`~closedloop.core.loop.ClosedLoop` whose seed groups are
the runs' own seeds, so each run's instances get exactly the noise streams
they get alone. Each run's file is then bit for bit what the run writes
simulated alone (:func:`closedloop.experiment.simulate_runs` computes each
run's metrics on its own rows).

Controller parameters: when every controller of the batch has a compiled
twin of the same kind (the built-in controllers do), the stack hands the
kernels one program whose parameter rows are the runs' own, so the whole
batch runs in one compiled call per chunk. Otherwise each run's controller
is called in Python on its own rows every period, which still shares the
kernel calls.

A batch that fails (a run diverges, a controller raises) is not recorded as
such: the culprit is run alone (and recorded with its own reason) and the
others are batched again; after a second failure, or when the culprit is
unknown, every run of the batch is run alone. Run files are written under
``runs/.tmp/`` and moved into ``runs/`` only when finished.

:func:`execute_task` is what a worker (local process or Dask) calls.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from closedloop.controllers.base import Controller

__all__ = ["ControllerStack", "batched_loop", "execute_task", "write_failed_run"]

#: Divergences tolerated in one batch before its remaining runs are run alone.
MAX_BATCH_RETRIES = 2


class ControllerStack(Controller):
    """Several controllers side by side over consecutive slices of the batch.

    Parameters
    ----------
    controllers : sequence of Controller
        One per run, in instance order.
    sizes : sequence of int
        Instances of each.

    Attributes
    ----------
    seeds : list of numpy.random.SeedSequence or None
        One per controller: :meth:`reset` gives controller ``k`` a generator
        from ``seeds[k]`` (what it gets in a run of its own), ignoring the
        generator it is given. Set from
        :attr:`closedloop.core.loop.ClosedLoop.controller_seeds`.
    """

    name = "stack"

    def __init__(self, controllers: Sequence[Controller], sizes: Sequence[int]) -> None:
        if len(controllers) != len(sizes) or not controllers:
            raise ValueError("ControllerStack needs one size per controller")
        self.controllers = list(controllers)
        self.sizes = [int(s) for s in sizes]
        self.seeds: list[np.random.SeedSequence] | None = None

    def get_params(self) -> dict[str, Any]:
        return {}

    def reset(self, n: int, rng: np.random.Generator) -> None:
        if n != sum(self.sizes):
            raise ValueError(f"the stack covers {sum(self.sizes)} instances, not {n}")
        bounds = np.cumsum([0, *self.sizes])
        self.slices_ = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        seeds = self.seeds if self.seeds is not None else [None] * len(self.controllers)
        for controller, size, seed in zip(self.controllers, self.sizes, seeds, strict=True):
            controller.reset(size, rng if seed is None else np.random.default_rng(seed))
        self.n_ = n

    def update(self, t: float, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        keys = None
        for k, (controller, sl) in enumerate(zip(self.controllers, self.slices_, strict=True)):
            part = controller.update(t, {name: value[sl] for name, value in features.items()})
            if keys is None:
                keys = set(part)
                for key in keys:
                    out[key] = np.empty(self.n_)
            elif set(part) != keys:
                # Alone, a left-out key keeps each run's own last command; a
                # stack cannot tell the loop that for some rows only.
                raise ValueError(
                    f"controllers of one batch returned different command keys "
                    f"({sorted(keys)} and {sorted(part)}); run them one by one"
                )
            for key, value in part.items():
                out[key][sl] = np.broadcast_to(
                    np.asarray(value, dtype=np.float64), (self.sizes[k],)
                )
        return out

    def compiled(self) -> tuple[int, np.ndarray, np.ndarray] | None:
        """One program for the kernels from the controllers' own, row blocks stacked."""
        programs = [c.compiled() for c in self.controllers]
        if all(p is None for p in programs):
            return None
        if any(p is None for p in programs):
            raise ValueError("some controllers of the batch have a compiled twin and some not")
        kinds = {int(p[0]) for p in programs}
        if len(kinds) != 1:
            raise ValueError("controllers of one batch compile to different kinds")
        params = [np.asarray(p[1], dtype=np.float64) for p in programs]
        states = [np.asarray(p[2], dtype=np.float64) for p in programs]
        if len({a.shape[1:] for a in params}) != 1 or len({a.shape[1:] for a in states}) != 1:
            raise ValueError("controllers of one batch compile to programs of different shapes")
        return kinds.pop(), np.concatenate(params), np.concatenate(states)


def batched_loop(exps: Sequence[Any]) -> Any:
    """One loop simulating several validated experiments' runs together.

    Parameters
    ----------
    exps : sequence of closedloop.config.schema.ResolvedExperiment
        Runs that differ only in model parameters, controller parameters and
        seeds.

    Returns
    -------
    closedloop.core.loop.ClosedLoop

    Raises
    ------
    ValueError
        When the runs cannot share a simulation.
    """
    from closedloop.core.loop import ClosedLoop

    first = exps[0]
    loop0 = first.loop
    model0 = loop0.model
    for exp in exps[1:]:
        loop = exp.loop
        if (
            type(loop.model) is not type(model0)
            or loop.model.dt_s != model0.dt_s
            or loop.sensing != loop0.sensing
            or loop.device != loop0.device
            or type(loop.controller) is not type(loop0.controller)
            or loop.control_period_s != loop0.control_period_s
            or loop.latency_steps != loop0.latency_steps
            or loop.engine != loop0.engine
        ):
            raise ValueError("these runs differ in more than model and controller parameters")
    sizes = [exp.loop.n for exp in exps]
    params = {
        key: np.concatenate([exp.loop.model.param_values[key] for exp in exps])
        for key in model0.param_values
    }
    # like() carries settings outside the parameters (and refuses what it cannot).
    model = model0.like(n=sum(sizes), params=params)
    stack = ControllerStack([exp.loop.controller for exp in exps], sizes)
    loop = ClosedLoop(
        model,
        loop0.sensing,
        loop0.device,
        stack,
        control_period_s=first.config.control.period_s,
        latency_s=first.config.control.latency_s,
        seed=[exp.config.seed for exp in exps],
        engine=loop0.engine,
    )
    stack.seeds = loop.controller_seeds
    return loop


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
    import h5py

    with h5py.File(tmp_path, "r+") as f:
        json_attrs = json.loads(f.attrs.get("json_attrs", "[]"))
        for key, value in _sweep_attrs(run, float(wall_s), k).items():
            if isinstance(value, dict):
                value = json.dumps(value, sort_keys=True)
                if key not in json_attrs:
                    json_attrs.append(key)
            f.attrs[key] = value
        f.attrs["json_attrs"] = json.dumps(json_attrs)
        status, message = (str(f.attrs["status"]), str(f.attrs["message"]))
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
    import closedloop
    from closedloop.config import ConfigError, validate_config
    from closedloop.io.hdf5 import RunRecorder

    runs_dir = Path(runs_dir)
    try:
        config = validate_config(run["config"]).resolved_dict()
    except ConfigError:
        config = run["config"]
    n = int(run["config"].get("n_instances", 1))
    tmp_dir = Path(tempfile.mkdtemp(dir=tmp_root if tmp_root is not None else runs_dir / ".tmp"))
    try:
        path = tmp_dir / f"{run['run_id']}.h5"
        rec = RunRecorder(
            path, config=config, seed=run["seed"], n=n, closedloop_version=closedloop.__version__
        )
        rec.close("failed", error)
        _finish(path, runs_dir, run, wall_s, batch_size)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return runs_dir / f"{run['run_id']}.h5"


# ----------------------------------------------------------------------- running


class _BatchFailed(Exception):
    def __init__(self, culprit: int | None, reason: str) -> None:
        super().__init__(reason)
        self.culprit = culprit


def _run_alone(run: Mapping[str, Any], runs_dir: Path, tmp_root: Path) -> dict[str, Any]:
    from closedloop.config import validate_config
    from closedloop.experiment import RunSpec, simulate_runs

    t0 = time.perf_counter()
    tmp_dir = Path(tempfile.mkdtemp(dir=tmp_root))
    path = tmp_dir / f"{run['run_id']}.h5"
    status, error = "complete", ""
    wall = _WallShare(t0, 1)
    try:
        try:
            exp = validate_config(run["config"])
            simulate_runs(exp.loop, [RunSpec(exp, path, _sweep_attrs(run, wall, 1))])
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
    runs: Sequence[Mapping[str, Any]], runs_dir: Path, tmp_root: Path
) -> list[dict[str, Any]]:
    from closedloop.config import validate_config
    from closedloop.core.protocol import ModelDivergedError
    from closedloop.experiment import RunSpec, simulate_runs

    t0 = time.perf_counter()
    exps = [validate_config(run["config"]) for run in runs]
    loop = batched_loop(exps)
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
        (:meth:`closedloop.sweep.runner.RunPoint.payload`) to simulate together when
        there are several, and optionally ``tmp_dir``: the sweep's scratch
        directory, which must exist (a sweep removes it when it stops, so a
        task still running after that writes nothing).

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
        tmp_root = runs_dir / ".tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
    pending = list(task["runs"])
    results: list[dict[str, Any]] = []
    retries = 0
    while pending:
        if len(pending) == 1:
            results.append(_run_alone(pending[0], runs_dir, tmp_root))
            break
        try:
            results += _run_batch(pending, runs_dir, tmp_root)
            break
        except _BatchFailed as failure:
            if failure.culprit is None or retries >= MAX_BATCH_RETRIES:
                results += [_run_alone(run, runs_dir, tmp_root) for run in pending]
                break
            results.append(_run_alone(pending.pop(failure.culprit), runs_dir, tmp_root))
            retries += 1
        except Exception:  # not batchable after all: one by one
            results += [_run_alone(run, runs_dir, tmp_root) for run in pending]
            break
    return results
