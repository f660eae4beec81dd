"""One writer per run file, and what a failed write leaves behind.

A run is written to ``<path>.partial`` and renamed to ``path`` when it is
finished (:mod:`closedloop.io.hdf5`). Two processes given the same output
path must not share that temporary file: the second one's ``h5py.File(...,
"w")`` would truncate the first one's file under it, and the first would go on
to rename a corrupt file into place. :func:`claim_run_file` therefore takes an
exclusive ``flock`` on a lock file beside it, ``.<name>.lock``, before
anything truncates the ``.partial`` file and holds it until the file has been
renamed (then removes it); a second writer gets :class:`RunBusyError` at
once. A ``.partial`` or lock file left by a killed process holds no lock and
is reused.

Guarantees
----------
On one machine (any local file system): at most one process writes a given
run file at a time, and a file at a final path is always a whole, closed run
(``os.replace`` is atomic). Across machines on NFS, ``flock`` is mapped to
NFS byte-range locks (Linux clients since 2.6.12, NFSv4 or NFSv3 with
``lockd``): the same holds where the server supports locks. Where it does not
(``flock`` fails with ``ENOLCK``, or a ``nolock`` mount that silently grants
every lock), two machines can write the same path at once and the later
rename wins; the final file is then still whole only if the writers do not
share the ``.partial`` name, which is why sweeps write every task into its own
temporary directory (:mod:`closedloop.sweep.worker`).
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import sys
from pathlib import Path

__all__ = [
    "RunBusyError",
    "RunWriteError",
    "MIN_FREE_BYTES",
    "claim_run_file",
    "hdf5_unstable",
    "is_out_of_space",
    "lock_path",
    "mark_hdf5_unstable",
    "quiet_release",
    "release_run_file",
    "room_left",
    "write_failure",
]

#: Free bytes always left on the device (and under a file size limit) beyond
#: what a write needs, plus the recorder's chunk caches: HDF5 must still be
#: able to flush and close the file cleanly once a run is refused for space.
MIN_FREE_BYTES = 4 * 1024 * 1024

_state = {"hdf5_unstable": False}

#: errno values meaning "the file cannot grow": a full disk, a quota, a size limit.
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NO_SPACE_TEXT = ("No space left on device", "Disk quota exceeded", "File too large")


class RunBusyError(OSError):
    """Another process is writing the same run file."""


class RunWriteError(OSError):
    """A run file could not be written (full disk, quota, file size limit, I/O error).

    The temporary ``.partial`` file has been removed; ``path`` is the run's
    final path, which was not written.
    """


def write_failure(final: Path, exc: BaseException) -> RunWriteError:
    # (HDF5 gives errno only inside its message text.)
    """The one-sentence error for a run file that could not be written."""
    text = str(exc)
    if (isinstance(exc, OSError) and exc.errno == errno.EFBIG) or "File too large" in text:
        reason = "the file size limit was reached (File too large)"
    elif (isinstance(exc, OSError) and exc.errno == errno.EDQUOT) or "quota" in text:
        reason = "disk quota exceeded"
    elif is_out_of_space(exc):
        reason = "no space left on device"
    else:
        reason = f"cannot write: {text.splitlines()[0] if text else type(exc).__name__}"
    return RunWriteError(f"{final}: {reason}; the partial file was removed, nothing was written")


def room_left(partial: Path) -> tuple[int, int] | None:
    """Bytes ``partial`` may still grow by, and the errno that would stop it.

    The free space of its file system (``statvfs``, for an unprivileged
    process) and the process's file size limit (``RLIMIT_FSIZE``), whichever
    is smaller; None when neither is known.
    """
    best: tuple[int, int] | None = None
    try:
        st = os.statvfs(partial.parent)
        best = (st.f_bavail * st.f_frsize, errno.ENOSPC)
    except (OSError, AttributeError):
        pass
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY:
            left = limit - os.path.getsize(partial)
            if best is None or left < best[0]:
                best = (left, errno.EFBIG)
    except (ImportError, OSError, ValueError):
        pass
    return best


def mark_hdf5_unstable() -> None:
    """Record that HDF5 failed to close a file: the library may crash at exit."""
    _state["hdf5_unstable"] = True


def hdf5_unstable() -> bool:
    """Whether HDF5 failed to close a file in this process (see :func:`mark_hdf5_unstable`).

    HDF5 retries the failed flush when the interpreter exits and may then
    crash (exit 139); the command line ends such a process with
    :func:`os._exit` once its message is out.
    """
    return _state["hdf5_unstable"]


def is_out_of_space(exc: BaseException) -> bool:
    """Whether ``exc`` says the file could not grow (HDF5 reports errno only in its text)."""
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
        return True
    text = str(exc)
    return any(t in text for t in _NO_SPACE_TEXT) or "errno = 28" in text


def lock_path(final: Path) -> Path:
    """The lock file beside a run file while it is written: ``.<name>.lock``."""
    return final.with_name(f".{final.name}.lock")


def claim_run_file(final: Path) -> int | None:
    """Lock ``final``'s lock file for this process; keep the descriptor until the rename.

    The lock is taken on a file of its own, not on the ``.partial`` file, so
    that HDF5's own lock on the file it writes (and readers' locks) never
    meet it. Release it with :func:`release_run_file`.

    Returns
    -------
    int or None
        The locked descriptor; None where the file system offers no locks
        (the write goes ahead unlocked, see the module docstring).

    Raises
    ------
    RunBusyError
        When another process holds the lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        return None
    lock = lock_path(final)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise RunBusyError(
                    f"{final}: another closedloop process is writing this run file "
                    f"({lock.name} is locked); wait for it to finish or choose another output"
                ) from None
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                return None
            raise
        # The previous holder removes the lock file when it is done: if it did
        # so between our open and our lock, we hold a deleted file. Try again.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def release_run_file(final: Path, fd: int | None) -> None:
    """Remove the lock file (while still holding it) and unlock."""
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.remove(lock_path(final))
    os.close(fd)


def quiet_release(*objects: object) -> bool:
    """Close h5py objects of a file that could not be written; whether they closed cleanly.

    When HDF5 cannot write, every h5py identifier it releases prints an
    "Exception ignored" traceback (and, left to interpreter shutdown, may
    crash it). Collect them now with the unraisable hook silenced: the write
    failure itself is reported by the caller.
    """
    hook = sys.unraisablehook
    sys.unraisablehook = lambda _unraisable: None
    clean = True
    try:
        for obj in objects:
            close = getattr(obj, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    clean = False
        if not clean:
            # Releasing the identifiers of a file HDF5 could not close crashes
            # the library (HDF5 2.0): keep them, and mark the process.
            _KEEP.extend(objects)
            mark_hdf5_unstable()
        del objects
        gc.collect()
    finally:
        sys.unraisablehook = hook
    return clean


#: h5py objects of files HDF5 could not close (never released, see quiet_release).
_KEEP: list[object] = []
