"""A sweep directory: its layout, ``manifest.json`` and the lock that keeps one sweep in it.

Output directory
----------------
``DIR/runs/<run id>.h5`` (one file per run, written under ``runs/.tmp/``
and moved in with :func:`os.replace` once complete, so a file there is
always finished; status ``complete`` or ``failed`` with the reason),
``DIR/manifest.json`` (every run of the sweep: id, parameters, replicate,
seed, status ``complete``/``failed``/``pending``, wall time, error text;
rewritten atomically, and rebuilt from the run files when a sweep is run
again), ``DIR/sweep.yaml`` (the experiment the sweep came from) and, after
:func:`closedloop.sweep.summary.summarize_sweep`, ``DIR/summary.h5`` and
``DIR/summary.csv``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from closedloop.io.layout import json_default
from closedloop.io.provenance import utc_now

if TYPE_CHECKING:
    from closedloop.sweep.plan import SweepPlan

__all__ = [
    "MANIFEST",
    "MANIFEST_FORMAT",
    "MANIFEST_VERSION",
    "RUNS_DIR",
    "TMP_DIR",
    "Manifest",
    "SweepBusyError",
    "atomic_write_text",
    "directory_lock",
    "load_manifest",
]

#: Subdirectory of a sweep directory holding one HDF5 file per run.
RUNS_DIR = "runs"
#: Subdirectory of ``runs/`` where files are written before they are complete.
TMP_DIR = ".tmp"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "closedloop-sweep-manifest"
MANIFEST_VERSION = 1
_LOCK = ".sweep.lock"


class SweepBusyError(RuntimeError):
    """Another sweep holds the output directory."""


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file under a temporary name, then move it to ``path``.

    The temporary name is this writer's own (host, process and a random
    token), so writers on several machines sharing the directory (NFS, where
    process ids repeat) never write into each other's file; the last rename
    wins and the file at ``path`` is always one writer's whole text.
    """
    tag = f"{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}"
    tmp = path.with_name(f".{path.name}.{tag}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


class Manifest:
    """The sweep's ``manifest.json``: every run and its status, rewritten atomically.

    Parameters
    ----------
    path : Path
        ``DIR/manifest.json``.
    plan : SweepPlan
        The sweep.
    """

    def __init__(self, path: Path, plan: SweepPlan, min_interval_s: float = 1.0) -> None:
        self.path = path
        self.plan = plan
        self.min_interval_s = min_interval_s
        self.entries: dict[str, dict[str, Any]] = {
            run.run_id: {
                "id": run.run_id,
                "file": f"{RUNS_DIR}/{run.run_id}.h5",
                "params": run.params,
                "replicate": run.replicate,
                "seed": run.seed,
                "status": "pending",
                "wall_s": None,
                "error": "",
            }
            for run in plan.runs
        }
        self.state = "running"
        self._last_write = 0.0

    def set(self, run_id: str, status: str, error: str = "", wall_s: float | None = None) -> None:
        entry = self.entries[run_id]
        entry["status"] = status
        entry["error"] = error
        entry["wall_s"] = None if wall_s is None or not math.isfinite(wall_s) else float(wall_s)

    def counts(self) -> dict[str, int]:
        out = {"complete": 0, "failed": 0, "pending": 0}
        for entry in self.entries.values():
            out[entry["status"]] += 1
        return out

    def write(self, force: bool = True) -> None:
        now = time.monotonic()
        if not force and now - self._last_write < self.min_interval_s:
            return
        self._last_write = now
        counts = self.counts()
        doc = {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "source": self.plan.source,
            "state": self.state,
            "updated": utc_now(),
            "sweep_seed": self.plan.sweep_seed,
            "parameters": self.plan.param_keys,
            "n_runs": len(self.entries),
            "counts": counts,
            "missing": [e["id"] for e in self.entries.values() if e["status"] == "pending"],
            "runs": list(self.entries.values()),
        }
        atomic_write_text(self.path, json.dumps(doc, indent=1, default=json_default) + "\n")


def load_manifest(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``DIR/manifest.json``."""
    return json.loads((Path(out_dir) / MANIFEST).read_text())


@contextlib.contextmanager
def directory_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``DIR/.sweep.lock`` for the block; :class:`SweepBusyError` if another sweep has it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    fh = open(out_dir / _LOCK, "a+")  # noqa: SIM115 - held for the whole sweep
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SweepBusyError(
                f"{out_dir}: another closedloop sweep is running in this directory"
            ) from None
        yield
    finally:
        fh.close()
