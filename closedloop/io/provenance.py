"""Provenance of a run: the software and machine it was produced on, and when."""

from __future__ import annotations

import datetime as _dt
import functools
import importlib.metadata
import platform
import shlex
import socket
import sys

__all__ = ["collect_provenance", "utc_now"]

_PACKAGES = ("numpy", "numba", "brian2", "h5py")


def utc_now() -> str:
    """Return the current UTC time in ISO 8601, to the second, with a ``Z``."""
    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    return now.isoformat().replace("+00:00", "Z")


def collect_provenance() -> dict[str, str | None]:
    """Describe the software and machine a run is produced on.

    Returns
    -------
    dict
        ``python``, ``numpy``, ``numba``, ``brian2`` and ``h5py`` versions
        (``None`` for a package that is not installed), ``hostname``,
        ``platform`` and ``command_line`` (the process's ``sys.argv``, shell
        quoted).

    Notes
    -----
    Package versions come from the installed distributions' metadata, so
    collecting them imports nothing (importing brian2 takes seconds).
    """
    info = dict(_static_provenance())
    info["command_line"] = shlex.join(sys.argv) if sys.argv else ""
    return info


@functools.cache
def _static_provenance() -> tuple[tuple[str, str | None], ...]:
    # Metadata look-ups cost ~10 ms: once per process, not once per run file.
    info: dict[str, str | None] = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = None
    info["hostname"] = socket.gethostname()
    info["platform"] = platform.platform()
    return tuple(info.items())
