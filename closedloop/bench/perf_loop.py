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
``period/framework_n1``, ``period/update_<controller>_n1``
    What a 1 ms period costs at n = 1 with a controller in Python
    (:func:`period_costs`), as ratios to references timed in the same run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from closedloop.controllers.base import Controller

__all__ = ["DT_S", "closed_loop_runner", "period_costs", "threads_ratio"]

#: Integration step of the loop cases, s.
DT_S = 1e-4


def closed_loop_runner(
    n: int,
    period_s: float,
    seconds: float,
    engine: str,
    controller: Controller | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Callable[[], float]:
    """A function that runs the closed loop (STN-GPe, PID) and returns its rate.

    The rate is instance-seconds simulated per second of ``clock`` (wall
    time by default; ``time.thread_time`` leaves out the time a loaded
    machine makes the thread wait), from a reset; the loop has run a few
    periods (compiling or loading its kernels) before the function is
    returned.
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
        controller or PID(setpoint=30.0, kp=0.02, ki=0.2, max_amplitude_ma=3.0),
        control_period_s=period_s,
        seed=0,
        engine=engine,
    )
    loop.reset()
    loop.run(3 * period_s)  # argument types settle once the controller has answered

    def once() -> float:
        loop.reset()
        t = clock()
        loop.run(seconds, chunk_s=1.0)
        return n * seconds / (clock() - t)

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


def _per_call_ns(fn: Callable[[], object], calls: int, repeats: int) -> float:
    """Median over ``repeats`` rounds of the mean wall time of one call of ``fn``, ns."""
    rounds = []
    for _ in range(repeats):
        t = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        rounds.append((time.perf_counter_ns() - t) / calls)
    return float(np.median(rounds))


def period_costs(repeats: int, periods: int = 2000, cpu: bool = False) -> dict[str, float]:
    """What one 1 ms control period costs at n = 1 with a controller in Python, ns.

    Interleaved rounds, medians. ``loop``: a period of the Python-controller
    loop (STN-GPe, dt 0.1 ms) whose controller returns a fixed command (its
    ``update`` costs next to nothing); ``twin``: a period of the same work
    inside the compiled kernel (PID twin, a chunk of periods per call);
    ``framework`` = ``loop - twin``: crossing into the kernel and the loop's
    own Python, issue 18 gap 5's target under 1,500 ns; ``update_<name>``:
    the built-in controllers' ``update`` at n = 1 (target under 2,000 ns);
    ``bare_call``: a Numba function called with one array, the reference the
    ratios divide by. ``cpu``: the loop and the twin timed by the thread's
    CPU time instead of wall time (on a loaded machine wall time counts the
    waits for a core, which a long loop of short calls collects and a short
    compiled chunk escapes).
    """
    import numba

    from closedloop.controllers import PID, Controller, DualThreshold, OnOff

    class Hold(Controller):
        """A fixed command: a period's cost without a controller's own."""

        def update(self, t: float, features: object) -> dict[str, np.ndarray]:
            return self.command_

        def reset(self, n: int, rng: np.random.Generator) -> None:
            super().reset(n, rng)
            self.command_ = {"amplitude_ma": np.full(n, 1.0)}

    @numba.njit(cache=False)
    def bare(a: np.ndarray) -> None:
        a[0] += 1.0

    one = np.zeros(1)
    bare(one)
    seconds = periods * 1e-3
    clock = time.thread_time if cpu else time.perf_counter
    hold = closed_loop_runner(1, 0.001, seconds, "python", controller=Hold(), clock=clock)
    twin = closed_loop_runner(1, 0.001, seconds, "compiled", clock=clock)
    controllers = {
        "pid": PID(setpoint=30.0, kp=0.02, ki=0.2, max_amplitude_ma=3.0),
        "on_off": OnOff(threshold=30.0),
        "dual_threshold": DualThreshold(lower_threshold=25.0, upper_threshold=35.0),
    }
    features = {"biomarker": np.array([31.0])}
    updates = {}
    for name, c in controllers.items():
        c.reset(1, np.random.default_rng(0))
        times = iter(np.arange(1, 10**7) * 1e-3)
        updates[name] = lambda c=c, times=times: c.update(next(times), features)
    figures: dict[str, list[float]] = {"loop": [], "twin": [], "bare_call": []}
    figures.update({f"update_{name}": [] for name in updates})
    for _ in range(repeats):
        figures["loop"].append(1e9 * seconds / (hold() * periods))
        figures["twin"].append(1e9 * seconds / (twin() * periods))
        figures["bare_call"].append(_per_call_ns(lambda: bare(one), 20_000, 1))
        for name, fn in updates.items():
            figures[f"update_{name}"].append(_per_call_ns(fn, 5_000, 1))
    out = {k: float(np.median(v)) for k, v in figures.items()}
    out["framework"] = out["loop"] - out["twin"]
    return out
