"""Provenance of a run: what it takes to produce the same run again, and when.

:func:`collect_provenance` describes the software a run is produced with:
the git commit and dirty flag of closedloop's source when it is installed
from a checkout, the hash of the compiled kernels' sources (the name of
their cache directory, :mod:`closedloop.core.kernel_cache`), the version of
Python, of every runtime dependency of closedloop and of the package of each
plugin the config names by dotted path, and the command line. The machine's
hostname is added only when asked for (``output.hostname``): a run file is
often shared, and the name of the machine does not change its result.
``closedloop info RUN.h5`` prints it; ``closedloop rerun RUN.h5`` repeats the
run and compares (:mod:`closedloop.cli.rerun`).
"""

from __future__ import annotations

import datetime as _dt
import functools
import importlib.metadata
import platform
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["collect_provenance", "plugin_packages", "source_checkout", "utc_now"]


def utc_now() -> str:
    """Return the current UTC time in ISO 8601, to the second, with a ``Z``."""
    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    return now.isoformat().replace("+00:00", "Z")


def collect_provenance(*, plugins: Iterable[str] = (), hostname: bool = False) -> dict[str, Any]:
    """Describe the software (and, if asked, the machine) a run is produced on.

    Parameters
    ----------
    plugins : iterable of str
        Dotted paths of plugin classes the run uses (e.g. a controller
        ``mylab.control.MyPID``); the version of each one's distribution is
        recorded under ``plugins``.
    hostname : bool, optional
        Also record the machine's hostname (off by default).

    Returns
    -------
    dict
        ``python``, ``platform``, ``command_line`` (``sys.argv``, shell
        quoted), ``git_commit`` and ``git_dirty`` (None when closedloop is
        not installed from a git checkout), ``kernel_source_hash``,
        ``dependencies`` (distribution name to version, every runtime
        requirement of closedloop plus h5py, numba and brian2; None for
        one not installed), ``plugins`` (dotted path to ``"dist version"``
        or None when it is not from an installed distribution) and, when
        asked, ``hostname``.

    Notes
    -----
    Versions come from installed distributions' metadata, so collecting them
    imports nothing (importing brian2 takes seconds); the git look-up runs
    once per process.
    """
    info: dict[str, Any] = dict(_static_provenance())
    info["dependencies"] = dict(info["dependencies"])
    info["command_line"] = shlex.join(sys.argv) if sys.argv else ""
    info["plugins"] = plugin_packages(plugins)
    if hostname:
        info["hostname"] = socket.gethostname()
    return info


def plugin_packages(paths: Iterable[str]) -> dict[str, str | None]:
    """The distribution and version each dotted path's top-level package comes from.

    Parameters
    ----------
    paths : iterable of str
        Dotted paths, e.g. ``"mylab.control.MyPID"``.

    Returns
    -------
    dict of str to str or None
        Path to ``"<distribution> <version>"``; None for a module found on
        ``sys.path`` but not installed (a file beside the config, say).
    """
    paths = list(paths)
    if not paths:
        return {}
    owners = _owners()  # ~1 s to build: only when a plugin is named, once per process
    out: dict[str, str | None] = {}
    for path in paths:
        dists = owners.get(path.split(".", 1)[0], [])
        if not dists:
            out[path] = None
            continue
        out[path] = f"{dists[0]} {importlib.metadata.version(dists[0])}"
    return out


def source_checkout() -> tuple[str | None, bool | None]:
    """Git commit and dirty flag of the checkout closedloop is imported from.

    Returns
    -------
    (str or None, bool or None)
        The ``HEAD`` commit and whether tracked files differ from it; both
        None when closedloop's source is not in a git work tree (an
        installed wheel) or git is missing.
    """
    return _checkout()


@functools.cache
def _owners() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())


@functools.cache
def _checkout() -> tuple[str | None, bool | None]:
    folder = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(folder), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit, (None if status is None else bool(status))


def _requirements() -> list[str]:
    try:
        reqs = importlib.metadata.requires("closedloop") or []
    except importlib.metadata.PackageNotFoundError:
        reqs = []
    # Runtime requirements only: those without an extra marker.
    names = [re.split(r"[\s<>=!~;\[(]", r, maxsplit=1)[0] for r in reqs if "extra ==" not in r]
    return sorted({*names, "h5py", "numba", "numpy", "brian2"}, key=str.lower)


@functools.cache
def _static_provenance() -> tuple[tuple[str, Any], ...]:
    # Metadata look-ups and git cost ~10-50 ms: once per process, not per run file.
    from closedloop.core.kernel_cache import cache_dir

    deps: dict[str, str | None] = {}
    for package in _requirements():
        try:
            deps[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            deps[package] = None
    commit, dirty = source_checkout()
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": commit,
        "git_dirty": dirty,
        "kernel_source_hash": cache_dir().name,
        "dependencies": tuple(deps.items()),
    }
    return tuple(info.items())
