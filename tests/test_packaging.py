"""The distribution ships what the tree holds: every subpackage, one version, the licence."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import closedloop

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _subpackages(top: Path, name: str) -> set[str]:
    return {
        ".".join((name, *init.parent.relative_to(top).parts))
        for init in top.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }


def test_every_subpackage_is_listed_for_the_wheel() -> None:
    # setuptools' explicit package list: a subpackage missing from it is left
    # out of a wheel (an editable install would still find it, hiding the gap).
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    on_disk = (
        _subpackages(ROOT / "closedloop", "closedloop")
        | _subpackages(ROOT / "models", "closedloop.models")
        | _subpackages(ROOT / "controllers", "closedloop.controllers")
    )
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages"
    assert listed - on_disk == set(), "listed packages with no __init__.py"


def test_the_version_is_written_once() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "closedloop.__version__"
    assert importlib.metadata.version("closedloop") == closedloop.__version__


def test_the_licence_file_matches_the_declared_licence() -> None:
    assert PYPROJECT["project"]["license"]["text"] == "BSD-3-Clause"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License")
    cff = (ROOT / "CITATION.cff").read_text()
    assert "license: BSD-3-Clause" in cff
    assert f'version: "{closedloop.__version__}"' in cff
