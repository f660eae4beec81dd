"""Issue 18 gap 1: the batch closed loop against a hand-written kernel, one thread.

Five runs of STN-GPe at dt 0.1 ms, interleaved round by round on one Numba
thread, each a rate in instance-seconds per wall second:

``hand_open``
    The hand-written batched kernel (:mod:`closedloop.bench.handwritten`)
    open loop: the ceiling.
``hand_pi``
    The same closed by a plain numpy PI every 1 ms.
``project_open``
    The model's own open-loop kernel (what ``model.advance`` runs for
    n >= 32) on preallocated 0.1 s chunks.
``compiled``
    :class:`~closedloop.core.loop.ClosedLoop` with ``engine: auto`` (the PID
    twin inside the compiled kernel), 1 ms control period, default sensing
    chain and device.
``python``
    The same loop with the PID's ``update`` in Python every period.

:func:`ceiling_rates` returns the medians over the rounds; the ratios of
issue 18 are ``compiled / project_open`` (target 0.6), ``python /
project_open`` (0.45), and each over ``hand_open``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np

from closedloop.bench.handwritten import hand_closed_loop_runner, hand_open_loop_runner
from closedloop.bench.perf_loop import DT_S, closed_loop_runner

__all__ = ["CEILING_RUNS", "ceiling_rates", "project_open_loop_runner"]

#: The runs :func:`ceiling_rates` times, in the order of each round.
CEILING_RUNS = ("hand_open", "hand_pi", "project_open", "compiled", "python")


def project_open_loop_runner(n: int, seconds: float) -> Callable[[], float]:
    """STN-GPe's own open-loop kernel on preallocated 0.1 s chunks; returns its rate.

    The kernel ``model.advance`` calls for n >= 32 (the parallel one), called
    directly so that allocating each call's output does not count.
    """
    from closedloop.models import STNGPe

    model = STNGPe(n=n, dt_s=DT_S)
    model.reset(0)
    model.advance(10)  # compile or load
    chunk = int(round(0.1 / DT_S))
    calls = max(1, int(round(seconds / 0.1)))
    drive = np.zeros((n, chunk))
    out = np.empty((n, chunk))
    kernel = model.kernels.advance_parallel
    state = model.kernel_state()

    def once() -> float:
        t = time.perf_counter()
        for _ in range(calls):
            kernel(chunk, model.step_, DT_S, state, drive, out)
            model.step_ += chunk
        return n * calls * chunk * DT_S / (time.perf_counter() - t)

    return once


def ceiling_rates(
    n: int, seconds: float, repeats: int, threads: int = 1, runs: tuple[str, ...] = CEILING_RUNS
) -> dict[str, float]:
    """Median rates of the runs of the module docstring, interleaved, on ``threads`` threads.

    Parameters
    ----------
    n : int
        Batch size.
    seconds : float
        Simulated time per run, s (a multiple of 0.1 s).
    repeats : int
        Rounds; each round runs every run once, in order.
    threads : int
        Numba threads during the timing (1: the issue's figures).
    runs : tuple of str
        Which of :data:`CEILING_RUNS` to time.

    Returns
    -------
    dict
        Median instance-seconds per wall second of each run, and ``load``:
        the 1-minute load average at the end.
    """
    import numba

    makers: dict[str, Callable[[], Callable[[], float]]] = {
        "hand_open": lambda: hand_open_loop_runner(n, DT_S, seconds),
        "hand_pi": lambda: hand_closed_loop_runner(n, DT_S, 0.001, seconds),
        "project_open": lambda: project_open_loop_runner(n, seconds),
        "compiled": lambda: closed_loop_runner(n, 0.001, seconds, "auto"),
        "python": lambda: closed_loop_runner(n, 0.001, seconds, "python"),
    }
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        runners = {name: makers[name]() for name in runs}
        rates: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(repeats):
            for name, runner in runners.items():
                rates[name].append(runner())
    finally:
        numba.set_num_threads(before)
    out = {name: float(np.median(v)) for name, v in rates.items()}
    out["load"] = os.getloadavg()[0]
    return out
