"""mypy finds no error in the package (configuration: ``[tool.mypy]`` in pyproject.toml).

The package is checked as it is installed: ``models/`` and ``controllers/``
are ``closedloop.models`` and ``closedloop.controllers`` (setuptools'
package-dir), a mapping mypy cannot make itself, so the check runs on a tree
of symbolic links laid out as the installed package. One module with two
known type errors is planted in that tree, one in the body of an unannotated
function: mypy must report both and nothing else, which shows that the
package's files were really read and that ``check_untyped_defs`` is on. The tree and
mypy's cache live in ``.mypy_cache/`` at the repository's root, so that a
second run rechecks only what changed.

From the shell (prints mypy's report; exit status 1 on any error)::

    python tests/test_typing.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Directories of the repository that are subpackages of closedloop when installed.
MAPPED = {"models": "models", "controllers": "controllers"}
PLANTED = "typing_probe"
CACHE = ROOT / ".mypy_cache"


def installed_tree(dest: Path = CACHE / "installed") -> Path:
    """Lay out ``dest/closedloop`` as the installed package, of links; return ``dest``."""
    package = dest / "closedloop"
    if package.exists():
        shutil.rmtree(package)  # removes the links, not what they point to
    package.mkdir(parents=True)
    for entry in (ROOT / "closedloop").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for name, source in MAPPED.items():
        (package / name).symlink_to(ROOT / source)
    return dest


def run_mypy(tree: Path) -> subprocess.CompletedProcess[str]:
    """mypy on the package in ``tree`` with the project's configuration."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(CACHE / "cache"),
            "-p",
            "closedloop",
        ],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=600,
    )


def errors(report: str) -> list[str]:
    """mypy's error lines (notes and the summary left out)."""
    return [line for line in report.splitlines() if ": error:" in line]


@pytest.mark.slow
def test_mypy_finds_no_error_in_the_package():
    tree = installed_tree()
    # A wrong return type mypy must catch: proves the check reads the tree;
    # a wrong assignment in an unannotated function: proves check_untyped_defs.
    (tree / "closedloop" / f"{PLANTED}.py").write_text(
        "def half(x: int) -> str:\n    return x // 2\n\n\n"
        "def unannotated():\n    count: int = 'many'\n    return count\n"
    )
    result = run_mypy(tree)
    found = errors(result.stdout)
    planted = [line for line in found if f"{PLANTED}.py" in line]
    codes = [line.rsplit("[", 1)[-1] for line in planted]
    assert codes == ["return-value]", "assignment]"], result.stdout + result.stderr
    rest = [line for line in found if f"{PLANTED}.py" not in line]
    assert not rest, f"{len(rest)} mypy error(s) in the package:\n" + "\n".join(rest)


if __name__ == "__main__":
    tree = installed_tree()
    done = run_mypy(tree)
    print(done.stdout.replace(f"{tree}/", ""), end="")
    print(done.stderr, end="", file=sys.stderr)
    sys.exit(done.returncode)
