"""Replay a run's controller on the features the run recorded.

A run file holds the features a controller saw (``biomarker`` and each
``feature_<name>``, one value per control period) and the controller's
configuration. Feeding those features to a fresh copy of the controller, in
order and at the same times, repeats its decisions without simulating the
model again: what it commanded (pulses for phase-locked stimulation) and its
internal state (a responsive detector's triggers). The controller's generator
is seeded as the loop seeded it (:func:`closedloop.core.clocks.seed_layout`).

A run file is data, and may come from anyone: reading it must never import
code it names. The controller is rebuilt from the file only when it is a
built-in one; a user's controller (a dotted path in the file's config) is
imported only when the caller asks for it (``allow_import=True``, the
command line's ``--import-controller``) or passes the controller itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from closedloop.controllers import BUILTIN_CONTROLLERS, Controller
from closedloop.core.clocks import seed_layout
from closedloop.io import RunData
from closedloop.registry import resolve_controller

__all__ = ["ReplayStep", "controller_from_run", "replay_controller"]


@dataclass
class ReplayStep:
    """One control period of a replay.

    Attributes
    ----------
    period : int
        Control period index (0 for the first recorded period).
    t_s : float
        Time the controller was called, s: the end of the period.
    features : dict of ndarray
        What it was given, each ``(n,)``.
    command : mapping
        What it returned.
    controller : Controller
        The controller itself, after the call (for its state, e.g. ``triggered_``).
    """

    period: int
    t_s: float
    features: dict[str, np.ndarray]
    command: Mapping[str, Any]
    controller: Controller


def controller_from_run(run: RunData, *, allow_import: bool = False) -> Controller:
    """A fresh copy of the controller a run file's config names.

    Parameters
    ----------
    run : RunData
        A run file read with :func:`closedloop.io.load_run`.
    allow_import : bool, default False
        Also resolve a dotted path, importing (and so running) the module the
        file names. Only for run files from a trusted source.

    Raises
    ------
    ValueError
        When the controller is not built in and ``allow_import`` is False,
        or it cannot be built from the file's parameters.
    """
    spec = run.config.get("controller") if isinstance(run.config, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ValueError(f"{run.path}: the run's config names no controller to replay")
    name = spec["name"]
    if name not in BUILTIN_CONTROLLERS and not allow_import:
        raise ValueError(
            f"the run's controller {name!r} is not built in; replaying it would import and run "
            "the code the run file names. Pass the controller yourself "
            "(replay_controller(run, controller)) or, for a run file you trust, "
            "allow_import=True (closedloop plot --import-controller)"
        )
    params = spec.get("params", {})
    try:
        return resolve_controller(name)(**(params if isinstance(params, dict) else {}))
    except TypeError as exc:
        raise ValueError(f"{run.path}: controller {name!r}: {exc}") from None


def replay_controller(run: RunData, controller: Controller | None = None) -> Iterator[ReplayStep]:
    """Call the run's controller once per recorded control period, in order.

    Parameters
    ----------
    run : RunData
        A run file read with :func:`closedloop.io.load_run`.
    controller : Controller, optional
        The controller to replay; default: the one in the run's config
        (``controller.name`` and ``controller.params``) when it is built in
        (see :func:`controller_from_run`; nothing named in a file is imported).

    Yields
    ------
    ReplayStep
        One per recorded control period.

    Raises
    ------
    ValueError
        When the run has no ``biomarker`` series, or its controller is not
        built in (and none is given) or cannot be built.
    """
    if "biomarker" not in run.timeseries:
        raise ValueError(f"{run.path}: no timeseries/biomarker to replay the controller on")
    if controller is None:
        controller = controller_from_run(run)
    n = run.n_instances
    seed = run.config.get("seed", 0)
    controller.reset(n, np.random.default_rng(seed_layout(seed, n).controller[0]))
    biomarker = np.asarray(run.timeseries["biomarker"], dtype=float)
    rate_hz = float(run.timeseries_attrs["biomarker"]["sampling_rate_hz"])
    features = {
        name[len("feature_") :]: np.asarray(run.timeseries[name], dtype=float)
        for name in run.timeseries
        if name.startswith("feature_")
    }
    for k in range(biomarker.shape[1]):
        now = {"biomarker": biomarker[:, k].copy()}
        for name, values in features.items():
            now[name] = values[:, k].copy()
        t_s = (k + 1) / rate_hz
        command = controller.update(t_s, now)
        yield ReplayStep(k, t_s, now, command, controller)
