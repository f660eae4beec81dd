"""Replay a run's controller on the features the run recorded.

A run file holds the features a controller saw (``biomarker`` and each
``feature_<name>``, one value per control period) and the controller's
configuration. Feeding those features to a fresh copy of the controller, in
order and at the same times, repeats its decisions without simulating the
model again: what it commanded (pulses for phase-locked stimulation) and its
internal state (a responsive detector's triggers). The controller's generator
is seeded as the loop seeded it (:func:`closedloop.core.clocks.seed_layout`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from closedloop.controllers import Controller
from closedloop.core.clocks import seed_layout
from closedloop.io import RunData
from closedloop.registry import resolve_controller

__all__ = ["ReplayStep", "replay_controller"]


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


def replay_controller(run: RunData, controller: Controller | None = None) -> Iterator[ReplayStep]:
    """Call the run's controller once per recorded control period, in order.

    Parameters
    ----------
    run : RunData
        A run file read with :func:`closedloop.io.load_run`.
    controller : Controller, optional
        The controller to replay; default: the one in the run's config
        (``controller.name`` and ``controller.params``).

    Yields
    ------
    ReplayStep
        One per recorded control period.

    Raises
    ------
    ValueError
        When the run has no ``biomarker`` series, or its controller cannot be
        resolved.
    """
    if "biomarker" not in run.timeseries:
        raise ValueError(f"{run.path}: no timeseries/biomarker to replay the controller on")
    if controller is None:
        spec = run.config["controller"]
        controller = resolve_controller(spec["name"])(**spec.get("params", {}))
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
