"""Parameter sweeps: expand an experiment's ``sweep`` block to runs and run them all.

A sweep block in an experiment file names the config keys to vary and how::

    sweep:
      seed: 7                   # sweep seed [the experiment's seed]
      replicates: 3             # noise seeds per parameter point [1]
      batch_size: auto          # most runs simulated together [auto]; 1: never batch
      grid:                     # Cartesian product of these axes
        model.params.w_GS: [8.0, 10.0, 12.0]                       # a list
        controller.params.upper_threshold: {start: 30, stop: 50, num: 5}   # linspace
        model.params.g_DBS: {start: 1.0e4, stop: 1.0e6, num: 3, log: true}  # log range
        device.ramp_rate_ma_per_s: {start: 2, stop: 10, step: 4}  # 2, 6, 10
      zip:                      # keys that vary together, one product axis per group
        - controller.params.lower_threshold: [20.0, 25.0]
          controller.params.upper_threshold: [30.0, 35.0]
      random:                   # n joint draws, one product axis
        n: 8
        params:
          model.params.sigma_S: {dist: uniform, low: 10, high: 30}
          model.params.C: {dist: loguniform, low: 50, high: 200}
          controller.params.setpoint: {dist: normal, mean: 30, std: 2}

Runs are the product of the grid axes (in file order, the last varying
fastest), the zip groups and the random draws, each repeated ``replicates``
times. Any key path of the experiment may be swept, including ones only set
by a default (``model.params.<name>`` for every model parameter,
``controller.params.<name>`` for every controller argument, every sensing
and device field).

Identity and seeds
------------------
A run's id is the first 16 hex digits of the SHA-256 of the canonical JSON
(sorted keys) of its resolved config (the experiment as written, with the
sweep's values set at their key paths; output-only keys ``name``,
``description``, ``output.figure`` and ``output.chunk_s`` left out), its
replicate index and the sweep seed. Defaults are not part of it, so a run
keeps its id across closedloop versions that add settings; each run file
records the fully resolved config it ran with. Its random seed is drawn from
``numpy.random.SeedSequence(entropy=sweep_seed, spawn_key=<run id as two
32-bit words>)`` and written into the run's config (``seed``), so a run's
results depend on nothing but its id: not on the number of workers, the
order runs are done in, or which runs share a batch; and ``closedloop run``
on the ``run_config`` stored in a run file reproduces it.

Output directory
----------------
``DIR/runs/<run id>.h5`` (one file per run, written under ``runs/.tmp/``
and moved in with :func:`os.replace` once complete, so a file there is
always finished; status ``complete`` or ``failed`` with the reason),
``DIR/manifest.json`` (every run of the sweep: id, parameters, replicate,
seed, status ``complete``/``failed``/``pending``, wall time, error text;
rewritten atomically, and rebuilt from the run files when a sweep is run
again), ``DIR/sweep.yaml`` (the experiment the sweep came from) and, after
:func:`closedloop.sweep.summary.summarize_sweep`, ``DIR/summary.h5`` and
``DIR/summary.csv``.

Running
-------
:func:`run_sweep` hands tasks (one run, or a batch of runs simulated
together, see :mod:`closedloop.sweep.worker`) to an executor from
:mod:`closedloop.sweep.executors`: a local process pool by default, a Dask cluster
on request. Completed runs are skipped when a sweep is run again; failed ones
are retried only when asked.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import difflib
import hashlib
import itertools
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

__all__ = [
    "RUNS_DIR",
    "TMP_DIR",
    "RunPoint",
    "SweepBusyError",
    "SweepInterrupted",
    "SweepPlan",
    "SweepResult",
    "check_sweep_block",
    "derive_seed",
    "expand_sweep",
    "make_tasks",
    "run_id_of",
    "run_sweep",
]

#: Subdirectory of a sweep directory holding one HDF5 file per run.
RUNS_DIR = "runs"
#: Subdirectory of ``runs/`` where files are written before they are complete.
TMP_DIR = ".tmp"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "closedloop-sweep-manifest"
MANIFEST_VERSION = 1
_LOCK = ".sweep.lock"

#: Keys that change what is written but not a run's results: left out of run ids.
OUTPUT_ONLY_KEYS = ("name", "description", "output.figure", "output.chunk_s")
#: Keys whose values may differ between runs simulated together in one batch.
BATCHABLE_KEYS = (
    "name",
    "description",
    "seed",
    "model.params",
    "model.regime",
    "controller.params",
)

_SWEEP_KEYS = ("seed", "replicates", "batch_size", "grid", "zip", "random")
_RANGE_KEYS = ("start", "stop", "num", "step", "log")
_DISTRIBUTIONS = {
    "uniform": ("low", "high"),
    "loguniform": ("low", "high"),
    "normal": ("mean", "std"),
}
#: Most values one axis may expand to (a guard against typos like step: 1e-9).
MAX_AXIS_VALUES = 1_000_000
#: Most runs in one sweep.
MAX_RUNS = 10_000_000


class SweepBusyError(RuntimeError):
    """Another sweep holds the output directory."""


class SweepInterrupted(KeyboardInterrupt):
    """The sweep was stopped (Ctrl-C); finished runs are kept, the manifest says what is missing."""

    def __init__(self, result: SweepResult) -> None:
        super().__init__("interrupted")
        self.result = result


# ----------------------------------------------------------------------- the block


@dataclass(frozen=True)
class _Axis:
    """One product axis: keys that vary together and their value tuples."""

    keys: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]


@dataclass
class _Spec:
    axes: list[_Axis]
    replicates: int
    seed: int | None
    batch_size: int | None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _clean_float(x: float) -> float:
    """Round to 12 significant digits: 0.30000000000000004 becomes 0.3."""
    return float(f"{x:.12g}")


def _axis_values(spec: Any, where: str, problems: list[tuple[str, str]]) -> list[Any] | None:
    """Values of one axis: a non-empty list, or a range mapping."""
    if isinstance(spec, list):
        if not spec:
            problems.append((where, "the list of values is empty"))
            return None
        return copy.deepcopy(spec)
    if not isinstance(spec, dict):
        problems.append(
            (
                where,
                "give a list of values or a range {start, stop, num} or {start, stop, step}, "
                f"got {spec!r}",
            )
        )
        return None
    if "dist" in spec:
        problems.append((where, "distributions belong under sweep.random.params"))
        return None
    bad = [k for k in spec if k not in _RANGE_KEYS]
    if bad:
        problems.append((f"{where}.{bad[0]}", _unknown(str(bad[0]), _RANGE_KEYS)))
        return None
    ok = True
    for key in ("start", "stop"):
        if key not in spec:
            problems.append((f"{where}.{key}", "a range needs start and stop"))
            ok = False
        elif not _is_number(spec[key]) or not math.isfinite(spec[key]):
            problems.append((f"{where}.{key}", f"must be a finite number, got {spec[key]!r}"))
            ok = False
    if ("num" in spec) == ("step" in spec):
        problems.append((where, "a range needs exactly one of num (how many values) or step"))
        ok = False
    log = spec.get("log", False)
    if not isinstance(log, bool):
        problems.append((f"{where}.log", f"must be true or false, got {log!r}"))
        ok = False
    if not ok:
        return None
    start, stop = spec["start"], spec["stop"]
    if "num" in spec:
        num = spec["num"]
        if not isinstance(num, int) or isinstance(num, bool):
            problems.append((f"{where}.num", f"must be a whole number, got {num!r}"))
            return None
        if num < 1:
            problems.append((f"{where}.num", f"the range is empty: num is {num}; give 1 or more"))
            return None
        if num > MAX_AXIS_VALUES:
            problems.append((f"{where}.num", f"{num} values is more than {MAX_AXIS_VALUES}"))
            return None
        if log:
            if start <= 0 or stop <= 0:
                problems.append(
                    (where, f"a log range needs start and stop above 0, got {start!r}, {stop!r}")
                )
                return None
            values = np.geomspace(start, stop, num)
        else:
            values = np.linspace(start, stop, num)
        return [_clean_float(v) for v in values]
    step = spec["step"]
    if log:
        problems.append((f"{where}.log", "a log range takes num, not step"))
        return None
    if not _is_number(step) or not math.isfinite(step) or step == 0:
        problems.append((f"{where}.step", f"must be a finite non-zero number, got {step!r}"))
        return None
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count < 1:
        problems.append(
            (
                where,
                f"the range is empty: no value from start {start!r} towards stop {stop!r} "
                f"in steps of {step!r}",
            )
        )
        return None
    if count > MAX_AXIS_VALUES:
        problems.append((where, f"{count} values is more than {MAX_AXIS_VALUES}"))
        return None
    if all(isinstance(v, int) for v in (start, stop, step)):
        return [start + k * step for k in range(count)]
    return [_clean_float(start + k * step) for k in range(count)]


def _distribution(spec: Any, where: str, problems: list[tuple[str, str]]) -> tuple | None:
    """Check a distribution mapping; return ``(name, a, b)``."""
    if not isinstance(spec, dict) or "dist" not in spec:
        problems.append(
            (
                where,
                "give a distribution such as {dist: uniform, low: 0, high: 1}, "
                "{dist: loguniform, low: 1e-3, high: 1} or {dist: normal, mean: 0, std: 1}",
            )
        )
        return None
    name = spec["dist"]
    if name not in _DISTRIBUTIONS:
        problems.append((f"{where}.dist", _unknown(str(name), _DISTRIBUTIONS, "distribution")))
        return None
    a_key, b_key = _DISTRIBUTIONS[name]
    bad = [k for k in spec if k not in ("dist", a_key, b_key)]
    if bad:
        problems.append((f"{where}.{bad[0]}", _unknown(str(bad[0]), ("dist", a_key, b_key))))
        return None
    values = []
    for key in (a_key, b_key):
        if key not in spec:
            problems.append((f"{where}.{key}", f"a {name} distribution needs {a_key} and {b_key}"))
            return None
        v = spec[key]
        if not _is_number(v) or not math.isfinite(v):
            problems.append((f"{where}.{key}", f"must be a finite number, got {v!r}"))
            return None
        values.append(float(v))
    a, b = values
    if name == "normal":
        if b <= 0:
            problems.append((f"{where}.std", f"must be above 0, got {spec['std']!r}"))
            return None
    else:
        if name == "loguniform" and a <= 0:
            problems.append(
                (f"{where}.low", f"a loguniform distribution needs low above 0, got {a!r}")
            )
            return None
        if not a < b:
            problems.append((where, f"low ({a!r}) must be below high ({b!r})"))
            return None
    return name, a, b


def _draw(dist: tuple, rng: np.random.Generator, n: int) -> list[float]:
    name, a, b = dist
    if name == "uniform":
        values = rng.uniform(a, b, n)
    elif name == "loguniform":
        values = np.exp(rng.uniform(math.log(a), math.log(b), n))
    else:
        values = rng.normal(a, b, n)
    return [float(v) for v in values]


def _unknown(key: str, known: Sequence[str] | Mapping[str, Any], what: str = "key") -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown {what} {key!r}.{hint} Known: {', '.join(known)}."


def _parse_block(
    block: Any, base_seed: int, problems: list[tuple[str, str]]
) -> tuple[_Spec | None, list[tuple[str, str]]]:
    """Parse a sweep block; return the spec and the ``(where, key path)`` of every axis key."""
    if not isinstance(block, dict):
        problems.append(("sweep", "must be a mapping with grid, zip, random, replicates or seed"))
        return None, []
    n_before = len(problems)
    for key in block:
        if key not in _SWEEP_KEYS:
            problems.append((f"sweep.{key}", _unknown(str(key), _SWEEP_KEYS)))
    seed = block.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        problems.append(("sweep.seed", f"must be a whole number, 0 or more, got {seed!r}"))
    replicates = block.get("replicates", 1)
    if not isinstance(replicates, int) or isinstance(replicates, bool) or replicates < 1:
        problems.append(
            ("sweep.replicates", f"must be a whole number, 1 or more, got {replicates!r}")
        )
    batch_size = block.get("batch_size", "auto")
    if batch_size == "auto" or batch_size is None:
        batch_size = None
    elif not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        problems.append(
            ("sweep.batch_size", f"must be auto or a whole number, 1 or more, got {batch_size!r}")
        )
    sweep_seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else base_seed
    axes: list[_Axis] = []
    keys: list[tuple[str, str]] = []

    grid = block.get("grid", {})
    if grid is None:
        grid = {}
    if not isinstance(grid, dict):
        problems.append(("sweep.grid", "must be a mapping of key path to values or range"))
        grid = {}
    for path, spec in grid.items():
        where = f"sweep.grid.{path}"
        keys.append((where, str(path)))
        values = _axis_values(spec, where, problems)
        if values is not None:
            axes.append(_Axis((str(path),), tuple((v,) for v in values)))

    zipped = block.get("zip", [])
    if zipped is None:
        zipped = []
    if isinstance(zipped, dict):
        zipped = [zipped]
    if not isinstance(zipped, list):
        problems.append(("sweep.zip", "must be a list of mappings of key path to values"))
        zipped = []
    for i, group in enumerate(zipped):
        gwhere = f"sweep.zip[{i}]"
        if not isinstance(group, dict) or not group:
            problems.append((gwhere, "must be a non-empty mapping of key path to values"))
            continue
        columns = {}
        for path, spec in group.items():
            where = f"{gwhere}.{path}"
            keys.append((where, str(path)))
            values = _axis_values(spec, where, problems)
            if values is not None:
                columns[str(path)] = values
        if len(columns) != len(group):
            continue
        lengths = {k: len(v) for k, v in columns.items()}
        if len(set(lengths.values())) > 1:
            problems.append(
                (
                    gwhere,
                    "zipped keys need the same number of values, got "
                    + ", ".join(f"{k}: {n}" for k, n in lengths.items()),
                )
            )
            continue
        axes.append(_Axis(tuple(columns), tuple(zip(*columns.values(), strict=True))))

    rand = block.get("random")
    if rand is not None:
        if not isinstance(rand, dict):
            problems.append(("sweep.random", "must be a mapping with n and params"))
        else:
            for key in rand:
                if key not in ("n", "params"):
                    problems.append((f"sweep.random.{key}", _unknown(str(key), ("n", "params"))))
            n = rand.get("n")
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                problems.append(("sweep.random.n", f"must be a whole number, 1 or more, got {n!r}"))
                n = None
            params = rand.get("params")
            if not isinstance(params, dict) or not params:
                problems.append(
                    (
                        "sweep.random.params",
                        "must be a non-empty mapping of key path to distribution",
                    )
                )
                params = {}
            dists = {}
            for path, spec in params.items():
                where = f"sweep.random.params.{path}"
                keys.append((where, str(path)))
                dist = _distribution(spec, where, problems)
                if dist is not None:
                    dists[str(path)] = dist
            if n is not None and dists and len(dists) == len(params):
                rng = np.random.default_rng(np.random.SeedSequence(sweep_seed, spawn_key=(0,)))
                columns = {path: _draw(dist, rng, n) for path, dist in dists.items()}
                axes.append(_Axis(tuple(columns), tuple(zip(*columns.values(), strict=True))))

    seen: dict[str, str] = {}
    for where, path in keys:
        if path in seen:
            problems.append((where, f"{path!r} is swept twice (also at {seen[path]})"))
        else:
            seen[path] = where
    if not keys and len(problems) == n_before:
        problems.append(("sweep", "sweeps nothing: give grid, zip or random axes"))
    if len(problems) > n_before:
        return None, keys
    total = math.prod(len(a.values) for a in axes) * replicates
    if total > MAX_RUNS:
        problems.append(("sweep", f"expands to {total} runs, more than {MAX_RUNS}"))
        return None, keys
    return _Spec(axes, replicates, seed, batch_size), keys


# ----------------------------------------------------------------------- key paths


def _walk(tree: Any, parts: Sequence[str]) -> bool:
    node = tree
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _key_problem(path: str, raw: dict, resolved: dict) -> str | None:
    """Why ``path`` cannot be swept, or None when it names a key of the experiment."""
    parts = path.split(".")
    if not path or any(not p for p in parts):
        return f"{path!r} is not a key path like model.params.w_GS"
    if parts[0] == "sweep":
        return "the sweep block itself cannot be swept"
    if parts[:2] == ["model", "resolved_params"]:
        return "sweep model.params.<name> instead"
    if _walk(raw, parts) or _walk(resolved, parts):
        return None
    if len(parts) == 3 and parts[:2] == ["model", "params"]:
        if parts[2] in resolved.get("model", {}).get("resolved_params", {}):
            return None
        known = list(resolved.get("model", {}).get("resolved_params", {}))
        return _unknown(parts[2], known, "model parameter")
    # The deepest existing prefix, for a hint.
    node: Any = _merged(resolved, raw)
    for i, part in enumerate(parts):
        if not isinstance(node, dict):
            where = ".".join(parts[:i])
            return f"{where} is a value, not a section: it has no key {part!r}"
        if part not in node:
            known = [k for k in node if k != "sweep"]
            if parts[: i + 1] == ["model", "params"]:
                known = list(node)
            return "not in the experiment nor its defaults: " + _unknown(part, known)
        node = node[part]
    return None


def _merged(a: Any, b: Any) -> Any:
    """``b`` over ``a``, mappings merged key by key."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, value in b.items():
            out[key] = _merged(a.get(key), value)
        return out
    return b


def _set_path(tree: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    node = tree
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[parts[-1]] = copy.deepcopy(value)


def _drop_path(tree: dict, path: str) -> None:
    parts = path.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.get(part)
        if not isinstance(node, dict):
            return
    node.pop(parts[-1], None)


def check_sweep_block(block: Any, raw: dict, resolved: dict) -> list[tuple[str, str]]:
    """Problems with a sweep block, each ``(key.path, sentence)``.

    Parameters
    ----------
    block : object
        The parsed ``sweep`` block.
    raw : dict
        The experiment as written (with overrides).
    resolved : dict
        :meth:`closedloop.config.schema.ResolvedExperiment.resolved_dict` of the
        experiment, for the keys only set by defaults.
    """
    problems: list[tuple[str, str]] = []
    _, keys = _parse_block(block, int(raw.get("seed", 0) or 0), problems)
    for where, path in keys:
        why = _key_problem(path, raw, resolved)
        if why is not None:
            problems.append((where, why))
    return problems


# ----------------------------------------------------------------------- expansion


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the form run ids hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def run_id_of(config: dict, replicate: int, sweep_seed: int) -> str:
    """Stable id of a run: a hash of its resolved config, replicate and sweep seed.

    Parameters
    ----------
    config : dict
        The run's experiment: the base experiment with the sweep's values
        set at their key paths (no sweep block), before its seed is derived.
        Keys in :data:`OUTPUT_ONLY_KEYS` are left out of the hash.
    replicate : int
        Replicate index.
    sweep_seed : int
        The sweep's seed.

    Returns
    -------
    str
        16 hex digits.
    """
    identity = copy.deepcopy(config)
    identity.pop("sweep", None)
    for path in OUTPUT_ONLY_KEYS:
        _drop_path(identity, path)
    if identity.get("output") == {}:
        del identity["output"]
    text = canonical_json({"config": identity, "replicate": replicate, "sweep_seed": sweep_seed})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def derive_seed(sweep_seed: int, run_id: str) -> int:
    """The root seed of run ``run_id``: from ``SeedSequence(sweep_seed, spawn_key=id)``.

    Returns
    -------
    int
        In ``[0, 2**63)``.
    """
    key = (int(run_id[:8], 16), int(run_id[8:16], 16))
    seq = np.random.SeedSequence(entropy=int(sweep_seed), spawn_key=key)
    return int(seq.generate_state(1, np.uint64)[0]) >> 1


@dataclass
class RunPoint:
    """One run of a sweep.

    Attributes
    ----------
    run_id : str
        Stable id (see :func:`run_id_of`).
    params : dict
        Swept key path to value.
    replicate : int
        Replicate index.
    seed : int
        The run's root seed, derived from the sweep seed and the id.
    config : dict
        The experiment as the run gets it (no sweep block; ``seed`` set).
    group : str
        Runs with the same group may be simulated together in one batch.
    n_instances : int
        Instances in the run.
    """

    run_id: str
    params: dict[str, Any]
    replicate: int
    seed: int
    config: dict[str, Any]
    group: str
    n_instances: int

    def payload(self) -> dict[str, Any]:
        """What a worker needs to run it."""
        return {
            "run_id": self.run_id,
            "params": self.params,
            "replicate": self.replicate,
            "seed": self.seed,
            "config": self.config,
        }


@dataclass
class SweepPlan:
    """An expanded sweep.

    Attributes
    ----------
    source : str
        Where the experiment came from.
    base : dict
        The experiment as written, with overrides and its sweep block.
    sweep_seed : int
        Seed of random draws and of every run's seed.
    param_keys : list of str
        Swept key paths, in file order.
    runs : list of RunPoint
        Every run, in order (grid axes in file order, then zip groups, then
        random draws, last varying fastest, replicates innermost).
    batch_size : int or None
        From the block (None: automatic).
    n_duplicates : int
        Points left out because they resolve to a run already in the list.
    axes : list of (tuple of str, int)
        Each product axis: its keys and number of values.
    replicates : int
        Runs per parameter point.
    """

    source: str
    base: dict[str, Any]
    sweep_seed: int
    param_keys: list[str]
    runs: list[RunPoint]
    batch_size: int | None = None
    n_duplicates: int = 0
    axes: list[tuple[tuple[str, ...], int]] = field(default_factory=list)
    replicates: int = 1


def expand_sweep(raw: dict[str, Any], source: str = "", *, max_problems: int = 20) -> SweepPlan:
    """Expand an experiment's sweep block to runs, each validated.

    Parameters
    ----------
    raw : dict
        The parsed experiment (with ``--set`` overrides applied).
    source : str
        Where it came from, for messages.
    max_problems : int
        Stop collecting problems of individual points after this many.

    Returns
    -------
    SweepPlan

    Raises
    ------
    closedloop.config.schema.ConfigError
        When the experiment, the sweep block or any expanded point is
        invalid; nothing has run.
    """
    from closedloop.config import ConfigError, validate_config

    base_exp = validate_config(raw, source)  # checks the block's structure and key paths
    if not isinstance(raw.get("sweep"), dict):
        raise ConfigError([("sweep", "this experiment has no sweep block")], source)
    problems: list[tuple[str, str]] = []
    spec, _ = _parse_block(raw["sweep"], base_exp.config.seed, problems)
    if spec is None:  # pragma: no cover - validate_config reported it
        raise ConfigError(problems, source)
    sweep_seed = spec.seed if spec.seed is not None else base_exp.config.seed
    base = {k: v for k, v in raw.items() if k != "sweep"}
    param_keys = [k for axis in spec.axes for k in axis.keys]
    runs: list[RunPoint] = []
    ids: set[str] = set()
    n_dup = 0
    cache: dict[str, Any] = {}
    n_points = 0
    for combo in itertools.product(*(axis.values for axis in spec.axes)):
        n_points += 1
        params: dict[str, Any] = {}
        for axis, values in zip(spec.axes, combo, strict=True):
            params.update(zip(axis.keys, values, strict=True))
        config = copy.deepcopy(base)
        for path, value in params.items():
            _set_path(config, path, value)
        try:
            exp = validate_config(config, source)
        except ConfigError as exc:
            shown = ", ".join(f"{k}={_short(v)}" for k, v in params.items())
            for path, msg in exc.problems:
                if len(problems) < max_problems:
                    problems.append((path, f"in sweep point {n_points} ({shown}): {msg}"))
                elif len(problems) == max_problems:
                    problems.append(("sweep", "more points are invalid; fix the above first"))
            continue
        group_tree = copy.deepcopy(config)
        for path in BATCHABLE_KEYS:
            _drop_path(group_tree, path)
        group = canonical_json(group_tree)
        group = cache.setdefault(group, group)
        batchable = _batchable(exp.loop.model)
        for replicate in range(spec.replicates):
            run_id = run_id_of(config, replicate, sweep_seed)
            if run_id in ids:
                n_dup += 1
                continue
            ids.add(run_id)
            seed = derive_seed(sweep_seed, run_id)
            run_config = copy.deepcopy(config)
            run_config["seed"] = seed
            runs.append(
                RunPoint(
                    run_id=run_id,
                    params=copy.deepcopy(params),
                    replicate=replicate,
                    seed=seed,
                    config=run_config,
                    group=group if batchable else run_id,
                    n_instances=exp.config.n_instances,
                )
            )
    if problems:
        raise ConfigError(problems, source)
    return SweepPlan(
        source=source,
        base=copy.deepcopy(raw),
        sweep_seed=sweep_seed,
        param_keys=param_keys,
        runs=runs,
        batch_size=spec.batch_size,
        n_duplicates=n_dup,
        axes=[(axis.keys, len(axis.values)) for axis in spec.axes],
        replicates=spec.replicates,
    )


def _batchable(model: Any) -> bool:
    """Whether runs of this model can share one simulation: a Numba model
    (per-instance parameters on the batch axis) that does not opt out
    (:attr:`~closedloop.core.model.NumbaModel.batchable`)."""
    from closedloop.core.model import NumbaModel

    return isinstance(model, NumbaModel) and model.batchable


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


# ----------------------------------------------------------------------- tasks

#: Most runs simulated together in one batch when the batch size is automatic.
AUTO_BATCH_RUNS = 32
#: Most instances in one batch when the batch size is automatic.
AUTO_BATCH_INSTANCES = 1024


def make_tasks(
    runs: Sequence[RunPoint], workers: int, batch_size: int | None = None
) -> list[list[RunPoint]]:
    """Split runs into tasks: batches of runs that may be simulated together.

    Runs of one group (equal configs but for model and controller parameters
    and seeds) are cut, in order, into batches of nearly equal size, at most
    ``batch_size`` runs. The automatic size aims at about four tasks per
    worker, with at most :data:`AUTO_BATCH_RUNS` runs and
    :data:`AUTO_BATCH_INSTANCES` instances per batch. Which runs share a
    batch never changes their results.

    Returns
    -------
    list of list of RunPoint
    """
    groups: dict[str, list[RunPoint]] = {}
    for run in runs:
        groups.setdefault(run.group, []).append(run)
    if batch_size is None:
        size = math.ceil(len(runs) / (4 * max(1, workers))) if runs else 1
        n_max = max(r.n_instances for r in runs) if runs else 1
        size = max(1, min(size, AUTO_BATCH_RUNS, AUTO_BATCH_INSTANCES // n_max))
    else:
        size = max(1, int(batch_size))
    tasks: list[list[RunPoint]] = []
    for members in groups.values():
        # Cut into batches of nearly equal size, none above ``size``.
        n_chunks = math.ceil(len(members) / size)
        bounds = [round(i * len(members) / n_chunks) for i in range(n_chunks + 1)]
        tasks += [members[a:b] for a, b in itertools.pairwise(bounds)]
    return tasks


# ----------------------------------------------------------------------- manifest


def _utc_now() -> str:
    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    return now.isoformat().replace("+00:00", "Z")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_run_status(path: Path) -> dict[str, Any] | None:
    """Status, message and wall time of a run file; None if it is missing or unreadable."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            attrs = f.attrs
            status = attrs.get("status", "")
            message = attrs.get("message", "")
            wall = attrs.get("wall_s", math.nan)
    except (OSError, KeyError):
        return None
    status = status.decode() if isinstance(status, bytes) else str(status)
    message = message.decode() if isinstance(message, bytes) else str(message)
    if status not in ("complete", "failed"):
        return None
    return {"status": status, "error": message, "wall_s": float(wall)}


class Manifest:
    """The sweep's ``manifest.json``: every run and its status, rewritten atomically.

    Parameters
    ----------
    path : Path
        ``DIR/manifest.json``.
    plan : SweepPlan
        The sweep.
    """

    def __init__(self, path: Path, plan: SweepPlan, min_interval_s: float = 1.0) -> None:
        self.path = path
        self.plan = plan
        self.min_interval_s = min_interval_s
        self.entries: dict[str, dict[str, Any]] = {
            run.run_id: {
                "id": run.run_id,
                "file": f"{RUNS_DIR}/{run.run_id}.h5",
                "params": run.params,
                "replicate": run.replicate,
                "seed": run.seed,
                "status": "pending",
                "wall_s": None,
                "error": "",
            }
            for run in plan.runs
        }
        self.state = "running"
        self._last_write = 0.0

    def set(self, run_id: str, status: str, error: str = "", wall_s: float | None = None) -> None:
        entry = self.entries[run_id]
        entry["status"] = status
        entry["error"] = error
        entry["wall_s"] = None if wall_s is None or not math.isfinite(wall_s) else float(wall_s)

    def counts(self) -> dict[str, int]:
        out = {"complete": 0, "failed": 0, "pending": 0}
        for entry in self.entries.values():
            out[entry["status"]] += 1
        return out

    def write(self, force: bool = True) -> None:
        now = time.monotonic()
        if not force and now - self._last_write < self.min_interval_s:
            return
        self._last_write = now
        counts = self.counts()
        doc = {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "source": self.plan.source,
            "state": self.state,
            "updated": _utc_now(),
            "sweep_seed": self.plan.sweep_seed,
            "parameters": self.plan.param_keys,
            "n_runs": len(self.entries),
            "counts": counts,
            "missing": [e["id"] for e in self.entries.values() if e["status"] == "pending"],
            "runs": list(self.entries.values()),
        }
        _atomic_write(self.path, json.dumps(doc, indent=1, default=_json_default) + "\n")


def load_manifest(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``DIR/manifest.json``."""
    return json.loads((Path(out_dir) / MANIFEST).read_text())


# ----------------------------------------------------------------------- running


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


@contextlib.contextmanager
def _directory_lock(out_dir: Path):
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    fh = open(out_dir / _LOCK, "a+")  # noqa: SIM115 - held for the whole sweep
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SweepBusyError(
                f"{out_dir}: another closedloop sweep is running in this directory"
            ) from None
        yield
    finally:
        fh.close()


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
        From :func:`expand_sweep`.
    out_dir : path-like
        The sweep directory (created).
    executor : closedloop.sweep.executors.LocalPool or closedloop.sweep.executors.DaskExecutor
        Where tasks run; left open (the caller shuts it down).
    retry_failed : bool
        Run again the runs whose files say they failed.
    batch_size : int, optional
        Most runs simulated together (1: never batch); default the sweep
        block's ``batch_size``, else automatic (see :func:`make_tasks`).
    progress : bool
        Show a progress bar (tqdm) on standard error.
    log : callable, optional
        Receives one-line messages (default: print to standard error).

    Returns
    -------
    SweepResult

    Raises
    ------
    SweepBusyError
        When another sweep holds the directory.
    SweepInterrupted
        On Ctrl-C, after stopping the workers, removing unfinished files and
        writing the manifest (runs not finished are ``pending``).
    closedloop.sweep.executors.ExecutorError
        When the executor fails (e.g. the Dask scheduler goes away), after
        the same clean-up (manifest state ``stopped``).
    """
    from closedloop.sweep.executors import TaskError, WorkerLost

    if log is None:

        def log(message: str) -> None:
            print(message, file=sys.stderr)

    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    runs_dir = out_dir / RUNS_DIR
    runs_dir.mkdir(parents=True, exist_ok=True)
    with _directory_lock(out_dir):
        # Files left by a killed sweep are unfinished by construction. Each
        # sweep writes under its own scratch directory and removes it when it
        # stops: a task still running elsewhere after that writes nothing.
        shutil.rmtree(runs_dir / TMP_DIR, ignore_errors=True)
        tmp_root = runs_dir / TMP_DIR / f"session-{os.getpid()}-{time.time_ns()}"
        tmp_root.mkdir(parents=True)
        base_text = yaml.safe_dump(plan.base, sort_keys=False)
        _atomic_write(out_dir / "sweep.yaml", f"# from {plan.source}\n{base_text}")
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
        payload_common = {"runs_dir": str(runs_dir), "tmp_dir": str(tmp_root)}

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
    from closedloop.sweep.worker import write_failed_run

    write_failed_run(runs_dir, run.payload(), error, wall_s=math.nan, tmp_root=tmp_root)
