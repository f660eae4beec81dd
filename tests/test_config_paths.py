"""File paths in experiment files resolve beside the experiment file.

``experiments/mdd_mpc.yaml`` names its identified model as
``models/mdd_mpc_vacc.npz``: it must load from any working directory, a copy
of the experiment next to another model must load that model, and a file
written with a path from the repository root must keep working from there.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from closedloop.config import ConfigError, load_raw, validate_config
from closedloop.control.sysid import StateSpaceModel

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "experiments" / "mdd_mpc.yaml"
MODEL = ROOT / "experiments" / "models" / "mdd_mpc_vacc.npz"


def _plant_a(exp) -> np.ndarray:
    """The identified A matrix the controller loaded (its own states come after)."""
    n = StateSpaceModel.load(MODEL).A.shape[0]
    return exp.loop.controller.model_.A[:n, :n]


def test_the_shipped_model_path_resolves_from_any_working_directory(tmp_path, monkeypatch):
    assert load_raw(CONFIG)["controller"]["params"]["model"] == "models/mdd_mpc_vacc.npz"
    monkeypatch.chdir(tmp_path)  # nothing named models/ here
    exp = validate_config(load_raw(CONFIG), str(CONFIG))
    np.testing.assert_array_equal(_plant_a(exp), StateSpaceModel.load(MODEL).A)


def test_a_copied_experiment_reads_the_model_beside_it(tmp_path, monkeypatch):
    shipped = StateSpaceModel.load(MODEL)
    (tmp_path / "models").mkdir()
    other = dataclasses.replace(shipped, A=0.5 * shipped.A)  # another plant, same name
    other.save(tmp_path / "models" / "mdd_mpc_vacc.npz")
    shutil.copy(CONFIG, tmp_path / "exp.yaml")
    monkeypatch.chdir(ROOT)  # where a root-relative path would find the shipped one
    exp = validate_config(load_raw(tmp_path / "exp.yaml"), str(tmp_path / "exp.yaml"))
    np.testing.assert_array_equal(_plant_a(exp), 0.5 * shipped.A)


def test_a_path_from_the_repository_root_still_works_from_the_root(tmp_path, monkeypatch):
    raw = load_raw(CONFIG)
    raw["controller"]["params"]["model"] = "experiments/models/mdd_mpc_vacc.npz"
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(ROOT)
    exp = validate_config(load_raw(path), str(path))
    np.testing.assert_array_equal(_plant_a(exp), StateSpaceModel.load(MODEL).A)


def test_a_missing_model_file_names_the_key(tmp_path):
    raw = load_raw(CONFIG)
    raw["controller"]["params"]["model"] = "models/none.npz"
    with pytest.raises(ConfigError) as info:
        validate_config(raw, str(CONFIG))
    assert "controller.params" in str(info.value) and "none.npz" in str(info.value)
