"""Fixtures shared by the test files.

* ``experiment_path(name)``: the shipped ``experiments/<name>.yaml``.
* ``experiment_config(name)``: that file's content as a fresh dict, to change
  and hand to ``write_experiment``.
* ``write_experiment(config, name="experiment")``: write a dict or YAML text
  to ``<tmp_path>/<name>.yaml`` and return the path.
* ``feed_controller(controller, features, period_s=..., command="amplitude_ma")``:
  reset a controller for the batch, call ``update`` once per period with
  row ``k`` of every feature series and return that command per period.
* ``pulse_drive(n_steps, dt_s, onsets_s, amplitude_ma, width_s)``: the mean
  cathodic current per integration step (mA) of square pulses, what the
  device hands a model; a pulse that straddles a step boundary puts the rest
  of its charge into the next step.

Markers (registered in pyproject.toml): ``slow`` (more than about 5 s),
``brian`` (builds Brian2 networks), ``dask`` (starts a Dask cluster). The
fast suite is ``pytest -m "not slow and not brian and not dask"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def _experiment_path(name: str) -> Path:
    path = EXPERIMENTS / f"{name}.yaml"
    if not path.is_file():
        shipped = sorted(p.stem for p in EXPERIMENTS.glob("*.yaml"))
        raise FileNotFoundError(f"no experiment {name!r} in {EXPERIMENTS}; shipped: {shipped}")
    return path


@pytest.fixture
def experiment_path() -> Callable[[str], Path]:
    """``experiment_path(name)``: the path of ``experiments/<name>.yaml``."""
    return _experiment_path


@pytest.fixture
def experiment_config() -> Callable[[str], dict[str, Any]]:
    """``experiment_config(name)``: ``experiments/<name>.yaml`` as a new dict."""

    def load(name: str) -> dict[str, Any]:
        return yaml.safe_load(_experiment_path(name).read_text())

    return load


@pytest.fixture
def write_experiment(tmp_path: Path) -> Callable[..., Path]:
    """``write_experiment(config, name="experiment")``: a YAML file in ``tmp_path``."""

    def write(config: Mapping[str, Any] | str, name: str = "experiment") -> Path:
        if isinstance(config, str):
            text = config
        else:
            text = yaml.safe_dump(dict(config), sort_keys=False)
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        return path

    return write


def _pulse_drive(
    n_steps: int,
    dt_s: float,
    onsets_s: np.ndarray,
    amplitude_ma: float,
    width_s: float,
) -> np.ndarray:
    onsets = np.asarray(onsets_s, dtype=float)
    drive = np.zeros(n_steps)
    idx = np.floor(onsets / dt_s + 1e-9).astype(int)
    covered = np.minimum(width_s, (idx + 1) * dt_s - onsets)
    drive[idx] += amplitude_ma * covered / dt_s
    spill = width_s - covered
    nxt = idx + 1 < n_steps
    drive[idx[nxt] + 1] += amplitude_ma * spill[nxt] / dt_s
    return drive


@pytest.fixture
def pulse_drive() -> Callable[..., np.ndarray]:
    """``pulse_drive(n_steps, dt_s, onsets_s, amplitude_ma, width_s)``, mA per step."""
    return _pulse_drive


def _feed_controller(
    controller: Any,
    features: Mapping[str, Any],
    *,
    period_s: float,
    command: str = "amplitude_ma",
) -> np.ndarray:
    series = {}
    for name, values in features.items():
        values = np.asarray(values, dtype=float)
        series[name] = values[:, None] if values.ndim == 1 else values
    periods, n = next(iter(series.values())).shape
    controller.reset(n, np.random.default_rng(0))
    out = []
    for k in range(periods):
        rows = {name: values[k].copy() for name, values in series.items()}
        out.append(controller.update((k + 1) * period_s, rows)[command])
    return np.array(out)


@pytest.fixture
def feed_controller() -> Callable[..., np.ndarray]:
    """``feed_controller(controller, {name: (periods, n) or (periods,)}, period_s=...)``.

    Resets the controller for ``n`` instances (generator seeded with 0),
    calls ``update((k + 1) * period_s, row k of each feature)`` for every
    period ``k`` and returns the ``command`` (default ``"amplitude_ma"``) of
    each call, shape ``(periods, n)``.
    """
    return _feed_controller
