"""The ``sweep:`` block of an experiment file: its axes, checked and parsed.

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

:func:`parse_sweep_block` turns a block into a :class:`SweepSpec` (its
product axes), :func:`check_sweep_block` says what is wrong with one (the
config schema calls it); :func:`closedloop.sweep.plan.expand_sweep` expands
a spec to runs. This module imports nothing of closedloop.
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "MAX_AXIS_VALUES",
    "MAX_RUNS",
    "SweepAxis",
    "SweepSpec",
    "check_sweep_block",
    "drop_key_path",
    "parse_sweep_block",
    "set_key_path",
]

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


# ----------------------------------------------------------------------- the block


@dataclass(frozen=True)
class SweepAxis:
    """One product axis: keys that vary together and their value tuples.

    Attributes
    ----------
    keys : tuple of str
        Key paths of the axis (one for a grid axis, several for a zip group or
        the random draws).
    values : tuple of tuple
        One value per key for each point of the axis.
    """

    keys: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]


@dataclass
class SweepSpec:
    """A parsed sweep block.

    Attributes
    ----------
    axes : list of SweepAxis
        Product axes, in file order (grid, zip groups, random draws).
    replicates : int
        Runs per parameter point.
    seed : int or None
        The block's seed (None: the experiment's).
    batch_size : int or None
        Most runs simulated together (None: automatic).
    """

    axes: list[SweepAxis]
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
    # Case is ignored, as in closedloop.core.plugins.did_you_mean (not imported:
    # this module imports nothing of closedloop).
    spelled = {k.lower(): k for k in reversed(list(known))}
    close = difflib.get_close_matches(key.lower(), list(spelled), n=1)
    hint = f" Did you mean {spelled[close[0]]!r}?" if close else ""
    return f"unknown {what} {key!r}.{hint} Known: {', '.join(known)}."


def _parse_paths(
    group: Mapping[Any, Any],
    prefix: str,
    parse: Callable[[Any, str, list[tuple[str, str]]], Any],
    keys: list[tuple[str, str]],
    problems: list[tuple[str, str]],
) -> dict[str, Any]:
    """Parse the spec of each key path in ``group``, recording the path in ``keys``.

    Returns the parsed value of each key path that parsed; ``parse`` adds the
    problems of the others to ``problems`` and returns None for them.
    """
    parsed = {}
    for path, spec in group.items():
        where = f"{prefix}.{path}"
        keys.append((where, str(path)))
        value = parse(spec, where, problems)
        if value is not None:
            parsed[str(path)] = value
    return parsed


def _zipped_axis(columns: Mapping[str, Sequence[Any]]) -> SweepAxis:
    """One axis whose i-th point sets every key path to its i-th value."""
    return SweepAxis(tuple(columns), tuple(zip(*columns.values(), strict=True)))


def parse_sweep_block(
    block: Any, base_seed: int, problems: list[tuple[str, str]]
) -> tuple[SweepSpec | None, list[tuple[str, str]]]:
    """Parse a sweep block.

    Parameters
    ----------
    block : object
        The parsed ``sweep`` block.
    base_seed : int
        The experiment's seed: the sweep seed when the block gives none (it
        seeds the random draws).
    problems : list of (str, str)
        Receives ``(key.path, sentence)`` for everything wrong.

    Returns
    -------
    spec : SweepSpec or None
        None when the block has problems.
    keys : list of (str, str)
        ``(where in the block, key path)`` of every swept key.
    """
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
    axes: list[SweepAxis] = []
    keys: list[tuple[str, str]] = []

    grid = block.get("grid", {})
    if grid is None:
        grid = {}
    if not isinstance(grid, dict):
        problems.append(("sweep.grid", "must be a mapping of key path to values or range"))
        grid = {}
    for path, values in _parse_paths(grid, "sweep.grid", _axis_values, keys, problems).items():
        axes.append(SweepAxis((path,), tuple((v,) for v in values)))

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
        columns = _parse_paths(group, gwhere, _axis_values, keys, problems)
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
        axes.append(_zipped_axis(columns))

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
            dists = _parse_paths(params, "sweep.random.params", _distribution, keys, problems)
            if n is not None and dists and len(dists) == len(params):
                rng = np.random.default_rng(np.random.SeedSequence(sweep_seed, spawn_key=(0,)))
                axes.append(_zipped_axis({p: _draw(d, rng, n) for p, d in dists.items()}))

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
    return SweepSpec(axes, replicates, seed, batch_size), keys


# ----------------------------------------------------------------------- key paths


def _is_index(node: Any, part: str) -> bool:
    """Whether ``part`` indexes the list ``node`` (``symptoms.0.tau_s``)."""
    return isinstance(node, list) and part.isdigit() and int(part) < len(node)


def _walk(tree: Any, parts: Sequence[str]) -> bool:
    node = tree
    for part in parts:
        if _is_index(node, part):
            node = node[int(part)]
            continue
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
        if _is_index(node, part):
            node = node[int(part)]
            continue
        if isinstance(node, list):
            where = ".".join(parts[:i])
            return f"{where} is a list of {len(node)}: {part!r} is not an index of it"
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


def set_key_path(tree: dict, path: str, value: Any) -> None:
    """Set ``tree[a][b][c] = value`` for ``path`` ``"a.b.c"``, creating mappings on the way.

    A part that indexes an existing list (``symptoms.0.tau_s``) descends into it.
    """
    parts = path.split(".")
    node: Any = tree
    for part in parts[:-1]:
        if _is_index(node, part):
            node = node[int(part)]
            continue
        nxt = node.get(part)
        if not isinstance(nxt, dict | list):
            nxt = {}
            node[part] = nxt
        node = nxt
    if _is_index(node, parts[-1]):
        node[int(parts[-1])] = copy.deepcopy(value)
    else:
        node[parts[-1]] = copy.deepcopy(value)


def drop_key_path(tree: dict, path: str) -> None:
    """Remove the key at ``path`` (``"a.b.c"``) if it is there."""
    parts = path.split(".")
    node: Any = tree
    for part in parts[:-1]:
        node = node[int(part)] if _is_index(node, part) else node.get(part)
        if not isinstance(node, dict | list):
            return
    if isinstance(node, dict):
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
    _, keys = parse_sweep_block(block, int(raw.get("seed", 0) or 0), problems)
    for where, path in keys:
        why = _key_problem(path, raw, resolved)
        if why is not None:
            problems.append((where, why))
    return problems
