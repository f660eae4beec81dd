"""Where sweep tasks run: a local process pool, or a Dask cluster.

Both executors take tasks with :meth:`submit` and hand back, one at a time
from :meth:`next_result`, ``(task_id, outcome)`` where the outcome is the
list of per-run results of :func:`closedloop.sweep.worker.execute_task`, a
:class:`WorkerLost` (the process running the task died: killed, out of
memory, segfault) or a :class:`TaskError` (the task raised outside any run).

:class:`LocalPool` keeps one process per worker (forked where that is
safe, else from a fork server), each fed one task at a time over its own pipe, so the pool always
knows which task a dead worker was running; a dead worker is replaced.
Workers ignore Ctrl-C (the sweep stops them) and die with the sweep process
(``PR_SET_PDEATHSIG`` on Linux), so a killed sweep leaves no workers
writing behind it.

:class:`DaskExecutor` submits the same tasks to a ``dask.distributed``
scheduler: a ``tcp://host:port`` address (e.g. of a dask-jobqueue SLURM
cluster) or ``"local"`` for a :class:`distributed.LocalCluster` of worker
processes. The sweep directory must be on a file system the workers share.
"""

from __future__ import annotations

import collections
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import traceback
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from closedloop.sweep.worker import execute_task

__all__ = ["DaskExecutor", "ExecutorError", "LocalPool", "TaskError", "WorkerLost", "cpu_count"]


class ExecutorError(RuntimeError):
    """An executor could not start (e.g. the scheduler cannot be reached)."""


@dataclass
class WorkerLost:
    """The worker running a task died."""

    reason: str


@dataclass
class TaskError:
    """A task raised outside any run (a bug, or a file system error)."""

    text: str


def cpu_count() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# ----------------------------------------------------------------------- local pool


#: Modules a fork server imports once, so that the workers it forks start ready.
_PRELOAD = ["closedloop.sweep.worker", "closedloop.experiment", "closedloop.registry"]


def _start_method() -> str:
    """``fork`` where safe, else ``forkserver`` (POSIX), else ``spawn``.

    Forking is safe on Linux from a process with a single thread whose Numba
    thread pool, if started, is fork-safe (GNU OpenMP's is not).
    """
    if not sys.platform.startswith("linux"):
        return "spawn"
    if threading.active_count() == 1:
        parallel = sys.modules.get("numba.np.ufunc.parallel")
        if parallel is None or not getattr(parallel, "_is_initialized", True):
            return "fork"
        try:
            import numba

            if numba.threading_layer() in ("tbb", "workqueue"):
                return "fork"
        except Exception:  # pragma: no cover
            pass
    return "forkserver"


def _die_with_parent(parent_pid: int | None) -> None:
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    if parent_pid is not None and os.getppid() != parent_pid:  # it died before prctl
        os._exit(1)


def _worker_main(conn: Any, parent_pid: int | None, numba_threads: int | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent_pid)
    if numba_threads:  # the worker's share of the cores for parallel kernels
        import numba

        cores = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]  # set at import
        numba.set_num_threads(max(1, min(numba_threads, cores)))

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        task_id, task = message
        try:
            outcome: Any = execute_task(task)
        except Exception:
            outcome = TaskError(traceback.format_exc(limit=8))
        try:
            conn.send((task_id, outcome))
        except (BrokenPipeError, OSError):
            return


class _Worker:
    def __init__(self, process: Any, conn: Any) -> None:
        self.process = process
        self.conn = conn
        self.task: int | None = None


class LocalPool:
    """A pool of worker processes on this machine.

    Parameters
    ----------
    workers : int, optional
        Number of processes (default: every core this process may use).
    numba_threads : int, optional
        Threads each worker's parallel kernels may use (default: the cores
        divided among the workers, at least 1).
    start_method : {"fork", "forkserver", "spawn"}, optional
        How workers start. By default ``fork`` where it is safe (Linux, no
        other thread in this process, no fork-unsafe Numba thread pool
        started): workers then begin with everything imported and the
        kernels loaded, instead of importing it all again (seconds each).
        Else ``forkserver`` with closedloop preloaded (one import for all the
        workers this process ever starts), or ``spawn`` off POSIX.
    """

    def __init__(
        self,
        workers: int | None = None,
        numba_threads: int | None = None,
        start_method: str | None = None,
    ) -> None:
        self.workers = int(workers or cpu_count())
        if self.workers < 1:
            raise ValueError(f"workers must be 1 or more, got {workers!r}")
        self.numba_threads = numba_threads or max(1, cpu_count() // self.workers)
        self.start_method = start_method or _start_method()
        # fork, spawn or forkserver: typeshed's BaseContext lacks their Process
        self._ctx: Any = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            self._ctx.set_forkserver_preload(_PRELOAD)
        self._queue: collections.deque = collections.deque()
        self._pool = [self._start() for _ in range(self.workers)]

    def describe(self) -> str:
        return f"a local pool of {self.workers} worker process(es) ({self.start_method})"

    def _start(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_worker_main,
            # A fork server's children have the server as parent; it dies
            # with this process, and they with it.
            args=(
                child,
                None if self.start_method == "forkserver" else os.getpid(),
                self.numba_threads,
            ),
            daemon=True,
            name="closedloop-sweep-worker",
        )
        process.start()
        child.close()
        return _Worker(process, parent)

    def _dispatch(self) -> None:
        for worker in self._pool:
            if not self._queue:
                return
            if worker.task is None:
                task_id, task = self._queue.popleft()
                worker.task = task_id
                worker.conn.send((task_id, task))

    def submit(self, task_id: int, task: dict[str, Any]) -> None:
        """Queue a task; it starts when a worker is free."""
        self._queue.append((task_id, task))
        self._dispatch()

    def next_result(self) -> tuple[int, Any]:
        """Wait for the next task to finish (or its worker to die)."""
        while True:
            busy = [w for w in self._pool if w.task is not None]
            if not busy:
                raise RuntimeError("no task is running")
            ready = multiprocessing.connection.wait(
                [w.conn for w in busy] + [w.process.sentinel for w in busy]
            )
            for worker in busy:
                if worker.conn in ready or worker.process.sentinel in ready:
                    got = None
                    try:
                        if worker.conn.poll():
                            got = worker.conn.recv()
                    except (EOFError, OSError):
                        got = None
                    task_id = worker.task
                    if task_id is None:  # never: busy workers hold a task
                        continue
                    if got is not None:
                        worker.task = None
                        self._dispatch()
                        return got
                    if worker.process.sentinel in ready or not worker.process.is_alive():
                        return task_id, self._replace(worker)

    def _replace(self, worker: _Worker) -> WorkerLost:
        worker.process.join(timeout=5)
        code = worker.process.exitcode
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            reason = f"worker process died (killed by {name})"
        else:
            reason = f"worker process died (exit code {code})"
        worker.conn.close()
        index = self._pool.index(worker)
        self._pool[index] = self._start()
        self._dispatch()
        return WorkerLost(reason)

    def shutdown(self, kill: bool = False) -> None:
        """Stop the workers: at once (``kill``), or after their current task."""
        for worker in self._pool:
            if kill:
                worker.process.kill()
            else:
                try:
                    worker.conn.send(None)
                except (BrokenPipeError, OSError):
                    worker.process.kill()
        for worker in self._pool:
            worker.process.join(timeout=None if not kill else 10)
            worker.conn.close()
        self._pool = []
        self._queue.clear()

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(kill=exc[0] is not None)


# ----------------------------------------------------------------------- dask


class DaskExecutor:
    """Run tasks on a ``dask.distributed`` cluster.

    Parameters
    ----------
    address : str
        ``tcp://host:port`` of a running scheduler, or ``"local"`` to start a
        :class:`distributed.LocalCluster` here.
    workers : int, optional
        Worker processes of a local cluster (default: every core); for a
        remote scheduler, how many workers to plan batches for (default: the
        workers connected when asked).
    timeout_s : float
        How long to try to reach a scheduler, s.
    processes : bool
        Local cluster only: worker processes (True) or threads in this
        process (False).

    Raises
    ------
    ExecutorError
        When dask.distributed is not installed or the scheduler cannot be
        reached.
    """

    def __init__(
        self,
        address: str,
        workers: int | None = None,
        *,
        timeout_s: float = 10.0,
        processes: bool = True,
    ) -> None:
        try:
            import distributed
        except ImportError as exc:
            raise ExecutorError(
                "--scheduler needs dask.distributed, which is not installed: "
                "pip install 'closedloop[dask]'"
            ) from exc
        self.address = address
        self.cluster = None
        self._workers_hint = int(workers) if workers else None
        self._closed = False
        try:
            if address == "local":
                self.cluster = distributed.LocalCluster(
                    n_workers=int(workers or cpu_count()),
                    threads_per_worker=1,
                    processes=processes,
                    dashboard_address=None,
                    silence_logs=40,  # logging.ERROR
                )
                self.client = distributed.Client(self.cluster, timeout=f"{timeout_s}s")
            else:
                self.client = distributed.Client(address, timeout=f"{timeout_s}s")
        except Exception as exc:
            if self.cluster is not None:
                self.cluster.close()
            raise ExecutorError(
                f"cannot reach the Dask scheduler at {address}: {type(exc).__name__}: {exc}"
            ) from None
        self._ac = distributed.as_completed()
        self._task_of: dict[Hashable, int] = {}
        self._futures: dict[Hashable, Any] = {}
        self._killed_worker = distributed.KilledWorker

    @property
    def workers(self) -> int:
        """The ``workers`` given, else the workers connected now (at least 1)."""
        if self._workers_hint:
            return self._workers_hint
        try:
            return max(1, len(self.client.scheduler_info()["workers"]))
        except Exception:  # pragma: no cover
            return 1

    def describe(self) -> str:
        where = "a local Dask cluster" if self.cluster is not None else f"Dask at {self.address}"
        return f"{where} ({self.workers} worker(s))"

    def submit(self, task_id: int, task: dict[str, Any]) -> None:
        future = self.client.submit(execute_task, task, pure=False, retries=0)
        self._task_of[future.key] = task_id
        self._futures[future.key] = future
        self._ac.add(future)

    def next_result(self) -> tuple[int, Any]:
        future = next(self._ac)
        task_id = self._task_of.pop(future.key)
        self._futures.pop(future.key, None)
        if future.status == "finished":
            return task_id, future.result()
        if future.cancelled():
            raise ExecutorError(
                f"the Dask scheduler at {self.address} cancelled the sweep's tasks "
                "(did it stop, or lose this client?)"
            )
        exc = future.exception()
        if isinstance(exc, self._killed_worker):
            return task_id, WorkerLost(f"Dask worker died ({exc})")
        return task_id, TaskError(f"{type(exc).__name__}: {exc}")

    def shutdown(self, kill: bool = False) -> None:
        """Close the client (and the local cluster); ``kill`` cancels pending tasks."""
        if self._closed:
            return
        self._closed = True
        if kill and self._futures:
            try:
                self.client.cancel(list(self._futures.values()), force=True)
            except Exception:  # pragma: no cover
                pass
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(kill=exc[0] is not None)
