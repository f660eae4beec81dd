"""A sweep's runs: expansion of the block, run ids, seeds, and tasks (batches of runs).

:func:`expand_sweep` turns an experiment with a ``sweep`` block (see
:mod:`closedloop.sweep.spec`) into a :class:`SweepPlan` of validated
:class:`RunPoint` runs; :func:`make_tasks` cuts runs into tasks, batches of
runs that may be simulated together.

Identity and seeds
------------------
A run's id is the first 16 hex digits of the SHA-256 of the canonical JSON
(sorted keys) of its resolved config (the experiment as written, with the
sweep's values set at their key paths; output-only keys ``name``,
``description``, ``output.figure``, ``output.chunk_s`` and ``output.format`` left out), its
replicate index and the sweep seed. Defaults are not part of it, so a run
keeps its id across closedloop versions that add settings; each run file
records the fully resolved config it ran with. Its random seed is drawn from
``numpy.random.SeedSequence(entropy=sweep_seed, spawn_key=<run id as two
32-bit words>)`` and written into the run's config (``seed``), so a run's
results depend on nothing but its id: not on the number of workers, the
order runs are done in, or which runs share a batch; and ``closedloop run``
on the ``run_config`` stored in a run file reproduces it.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from closedloop.config import ConfigError, validate_config
from closedloop.core.model import NumbaModel
from closedloop.core.slow import batchable
from closedloop.drift import PER_INSTANCE as DRIFT_PER_INSTANCE
from closedloop.io.layout import json_default
from closedloop.sweep.spec import drop_key_path, parse_sweep_block, set_key_path
from closedloop.symptoms import SymptomState

__all__ = [
    "AUTO_BATCH_INSTANCES",
    "AUTO_BATCH_RUNS",
    "BATCHABLE_KEYS",
    "OUTPUT_ONLY_KEYS",
    "RunPoint",
    "SweepPlan",
    "canonical_json",
    "derive_seed",
    "expand_sweep",
    "make_tasks",
    "plan_points",
    "run_id_of",
]

#: Keys that change what is written but not a run's results: left out of run ids.
OUTPUT_ONLY_KEYS = ("name", "description", "output.figure", "output.chunk_s", "output.format")
#: Keys whose values may differ between runs simulated together in one batch.
BATCHABLE_KEYS = (
    "name",
    "description",
    "seed",
    "model.params",
    "model.regime",
    "controller.params",
)

# ----------------------------------------------------------------------- expansion


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the form run ids hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=json_default)


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
        drop_key_path(identity, path)
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
    loop_wrapper : dict, optional
        ``{"factory": dotted path, "settings": dict}``: the worker calls
        ``factory(loop, settings)`` on the run's loop and simulates what it
        returns (a cohort's personalised arms wrap their loops in a clinic
        this way); runs share a batch only with the same wrapper.
    """

    run_id: str
    params: dict[str, Any]
    replicate: int
    seed: int
    config: dict[str, Any]
    group: str
    n_instances: int
    loop_wrapper: dict[str, Any] | None = None

    def payload(self) -> dict[str, Any]:
        """What a worker needs to run it."""
        payload = {
            "run_id": self.run_id,
            "params": self.params,
            "replicate": self.replicate,
            "seed": self.seed,
            "config": self.config,
        }
        if self.loop_wrapper is not None:
            payload["loop_wrapper"] = self.loop_wrapper
        return payload


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
    base_exp = validate_config(raw, source)  # checks the block's structure and key paths
    if not isinstance(raw.get("sweep"), dict):
        raise ConfigError([("sweep", "this experiment has no sweep block")], source)
    problems: list[tuple[str, str]] = []
    spec, _ = parse_sweep_block(raw["sweep"], base_exp.config.seed, problems)
    if spec is None:  # pragma: no cover - validate_config reported it
        raise ConfigError(problems, source)
    sweep_seed = spec.seed if spec.seed is not None else base_exp.config.seed
    base = {k: v for k, v in raw.items() if k != "sweep"}
    param_keys = [k for axis in spec.axes for k in axis.keys]
    points = []
    for combo in itertools.product(*(axis.values for axis in spec.axes)):
        params: dict[str, Any] = {}
        for axis, values in zip(spec.axes, combo, strict=True):
            params.update(zip(axis.keys, values, strict=True))
        points.append(params)
    runs, n_dup = plan_points(
        base,
        points,
        source,
        replicates=spec.replicates,
        run_seed=lambda run_id, params: derive_seed(sweep_seed, run_id),
        id_seed=sweep_seed,
        problems=problems,
        max_problems=max_problems,
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


def plan_points(
    base: dict[str, Any],
    points: Sequence[dict[str, Any]],
    source: str,
    *,
    replicates: int,
    run_seed: Any,
    id_seed: int,
    problems: list[tuple[str, str]],
    max_problems: int = 20,
    label: str = "sweep point",
) -> tuple[list[RunPoint], int]:
    """Validated runs of ``base`` with each point's key paths set.

    Parameters
    ----------
    base : dict
        The experiment without its sweep (or cohort) block.
    points : sequence of dict
        Key path to value, one mapping per point.
    source : str
        Where the experiment came from, for messages.
    replicates : int
        Runs per point.
    run_seed : callable
        ``run_seed(run_id, params) -> int``: the seed of a run.
    id_seed : int
        Seed mixed into every run id (:func:`run_id_of`).
    problems : list
        Invalid points append ``(key path, sentence)`` here.
    max_problems : int
        Stop collecting after this many.
    label : str
        How a point is named in messages.

    Returns
    -------
    runs : list of RunPoint
    n_duplicates : int
        Points left out because they resolve to a run already in the list.
    """
    runs: list[RunPoint] = []
    ids: set[str] = set()
    n_dup = 0
    cache: dict[str, Any] = {}
    for n_points, params in enumerate(points, start=1):
        config = copy.deepcopy(base)
        for path, value in params.items():
            set_key_path(config, path, value)
        try:
            exp = validate_config(config, source)
        except ConfigError as exc:
            shown = ", ".join(f"{k}={_short(v)}" for k, v in params.items())
            for path, msg in exc.problems:
                if len(problems) < max_problems:
                    problems.append((path, f"in {label} {n_points} ({shown}): {msg}"))
                elif len(problems) == max_problems:
                    problems.append(("sweep", "more points are invalid; fix the above first"))
            continue
        group_tree = copy.deepcopy(config)
        for path in BATCHABLE_KEYS:
            drop_key_path(group_tree, path)
        # Per-instance symptom and drift settings go on the batch axis too.
        for block in group_tree.get("symptoms") or ():
            for key in SymptomState.PER_INSTANCE:
                block.pop(key, None)
        for block in (group_tree.get("drift") or {}).get("terms") or ():
            for key in DRIFT_PER_INSTANCE:
                block.pop(key, None)
        group = canonical_json(group_tree)
        group = cache.setdefault(group, group)
        batchable = _batchable(exp.loop)
        for replicate in range(replicates):
            run_id = run_id_of(config, replicate, id_seed)
            if run_id in ids:
                n_dup += 1
                continue
            ids.add(run_id)
            seed = int(run_seed(run_id, params))
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
    return runs, n_dup


def _batchable(loop: Any) -> bool:
    """Whether runs of this loop can share one simulation: a Numba model
    (per-instance parameters on the batch axis) that does not opt out
    (:attr:`~closedloop.core.model.NumbaModel.batchable`), with slow
    processes that can be batched (:meth:`SlowProcess.concatenate`)."""
    model = loop.model
    if not (isinstance(model, NumbaModel) and model.batchable):
        return False
    return all(batchable(p) for p in loop.slow)


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
