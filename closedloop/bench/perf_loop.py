"""Performance cases of the Python-controller loop: threads under load, cost per period.

Cases (added to :func:`closedloop.bench.perf.run_perf`)
-----------------------------------------------------
``threads/python/<n>``
    The closed loop (STN-GPe, PID in Python, 1 ms period, dt 0.1 ms) at
    batch ``n`` with all of Numba's threads against the same loop on one
    thread, interleaved in the same run: instance-seconds per wall second,
    best of ``repeats`` each. Issue 18's gap 6 asks for at least 1 (two
    threads never below one), whatever the machine's load: a parallel region
    per period collapsed to 0.03-0.1 of one thread at load average 10
    before the loop chose its kernel from measured times
    (:mod:`closedloop.core.kernel_choice`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

__all__ = ["DT_S", "closed_loop_runner", "threads_ratio"]

#: Integration step of the loop cases, s.
DT_S = 1e-4


def closed_loop_runner(n: int, period_s: float, seconds: float, engine: str) -> Callable[[], float]:
    """A function that runs the closed loop (STN-GPe, PID) and returns its rate.

    The rate is instance-seconds simulated per wall second, from a reset; the
    loop has run a few periods (compiling or loading its kernels) before the
    function is returned.
    """
    from closedloop.controllers import PID
    from closedloop.core.loop import ClosedLoop
    from closedloop.device import Device
    from closedloop.models import STNGPe
    from closedloop.sensing.chain import SensingChain

    loop = ClosedLoop(
        STNGPe(dt_s=DT_S, n=n),
        SensingChain(),
        Device(),
        PID(setpoint=30.0, kp=0.02, ki=0.2, max_amplitude_ma=3.0),
        control_period_s=period_s,
        seed=0,
        engine=engine,
    )
    loop.reset()
    loop.run(3 * period_s)  # argument types settle once the controller has answered

    def once() -> float:
        loop.reset()
        t = time.perf_counter()
        loop.run(seconds, chunk_s=1.0)
        return n * seconds / (time.perf_counter() - t)

    return once


def threads_ratio(n: int, seconds: float, repeats: int) -> dict[str, float]:
    """Python-controller loop throughput with all threads over one thread, same run.

    Parameters
    ----------
    n : int
        Batch size.
    seconds : float
        Simulated time per run, s.
    repeats : int
        Interleaved runs of each side; the best of each is kept.

    Returns
    -------
    dict
        ``ratio`` (all threads / one thread), ``one`` and ``all``
        (instance-seconds per wall second), ``threads`` and ``load`` (the
        1-minute load average at the end).
    """
    import numba

    threads = numba.get_num_threads()
    # One loop per thread count: each learns its own kernel choice.
    runners: dict[int, Callable[[], float]] = {
        k: closed_loop_runner(n, 0.001, seconds, "python") for k in (1, threads)
    }
    best = dict.fromkeys(runners, 0.0)
    try:
        for _ in range(repeats):
            for k, runner in runners.items():
                numba.set_num_threads(k)
                best[k] = max(best[k], runner())
    finally:
        numba.set_num_threads(threads)
    return {
        "ratio": best[threads] / best[1],
        "one": best[1],
        "all": best[threads],
        "threads": threads,
        "load": os.getloadavg()[0],
    }
