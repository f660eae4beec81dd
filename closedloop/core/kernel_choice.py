"""Serial or parallel, chosen from the time each actually takes, period by period.

With a controller in Python every control period is one kernel call, and a
parallel kernel opens a thread team (an OpenMP parallel region) per call. On
a quiet machine that pays from a few dozen instances on; on a shared one it
collapses: a region waits for its slowest thread, and a thread the scheduler
has parked costs a whole time slice. Measured on the project's 2-core VM at
load average 10-12 (STN-GPe, PID in Python, 1 ms period, n = 256): 9-29
instance-s/s with two threads against 196-304 with one in the same run
(issue 18, gap 6).

No fixed threshold on the work per period is right on both machines, so
:class:`KernelChoice` times the calls it makes between the parallel kernel
on one thread (:func:`on_one_thread`; faster than the serial kernel) and
on all threads: it runs one, probes
the other for a few periods now and then, and keeps whichever delivered
more periods per wall second over its latest calls, stalls included. A probe that loses
waits at least twice as long before the next one, and long enough that the
probe's lost time is :data:`PROBE_BUDGET` of the periods between (up to
:data:`MAX_PROBE_GAP` periods), so that a collapsing parallel region costs
a few per cent of a run.
Both kernels compute every instance identically (the kernel pattern tests
check serial == parallel bit for bit), so the choice changes only speed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "entry_point",
    "on_one_thread",
    "FIRST_PROBE",
    "MAX_PROBE_GAP",
    "PROBE_BUDGET",
    "PROBE_PERIODS",
    "STALL",
    "WINDOW",
    "KernelChoice",
]

#: Periods run on the serial kernel before the parallel one is first tried
#: (chosen: long enough for the timings to settle past the first calls).
FIRST_PROBE = 8
#: Periods of each probe; their mean time is compared (the mean, not the
#: best: a region that is fast most of the time and stalls now and then
#: delivers what its mean says). Chosen.
PROBE_PERIODS = 4
#: Share of the run a lost probe may cost (chosen): after a loss the next
#: probe waits until the periods between take this share's inverse times the
#: probe's excess time.
PROBE_BUDGET = 0.02
#: Longest wait between probes, periods (chosen: a quiet machine gets the
#: parallel kernel back within 16 s of 1 ms periods).
MAX_PROBE_GAP = 16_384
#: Calls over which each kernel's mean time is kept (older ones weigh less).
WINDOW = 256
#: A single call this many times the other kernel's mean abandons the kernel
#: at once (chosen: above the spread of a serial call preempted once).
STALL = 8.0


class KernelChoice:
    """Pick the faster of a serial and a parallel kernel from timed calls.

    Parameters
    ----------
    serial, parallel : callable
        Two kernels computing the same thing, one thread and all threads
        (the loop passes the parallel kernel both ways, see
        :func:`on_one_thread`); called with the same arguments.
    clock : callable
        Wall clock, ns (tests pass a simulated one).

    Notes
    -----
    Call :meth:`__call__` in place of either kernel. It starts on ``serial``
    (never slower than one thread) and probes ``parallel`` after
    :data:`FIRST_PROBE` periods. Each kernel's figure is its mean wall time
    per call (ns) over its latest :data:`WINDOW` calls or so, stalls
    included: a parallel region that is fast most of the time and now and
    then waits a whole time slice for a parked thread delivers what that
    mean says, so one fast probe does not bring it back.
    """

    def __init__(
        self, serial: Any, parallel: Any, clock: Callable[[], int] = time.perf_counter_ns
    ) -> None:
        self.kernels = (serial, parallel)
        self.clock = clock
        self.current = 0  # index into kernels: 0 serial, 1 parallel
        self._total_ns = [0, 0]
        self._calls = [0, 0]
        self._warm = [False, False]
        self._group = 0  # calls of the current kernel since the last decision
        self._group_ns = 0  # and their time, ns
        self._probing = False
        self._gap = FIRST_PROBE
        self._until_probe = FIRST_PROBE
        self.switches = 0

    @property
    def name(self) -> str:
        """``"serial"`` or ``"parallel"``: the kernel now in use."""
        return ("serial", "parallel")[self.current]

    def mean_ns(self, kernel: int) -> float:
        """Mean wall time per call of ``kernel`` (0 serial, 1 parallel), ns; 0 before any."""
        calls = self._calls[kernel]
        return self._total_ns[kernel] / calls if calls else 0.0

    def __call__(self, *args: Any) -> None:
        """Run the chosen kernel (or a probe of the other) on ``args``."""
        clock = self.clock
        k = self.current
        t0 = clock()
        self.kernels[k](*args)
        elapsed = clock() - t0
        if not self._warm[k]:  # a first call may compile or load the kernel: not counted
            self._warm[k] = True
            return
        self._total_ns[k] += elapsed
        self._calls[k] += 1
        if self._calls[k] > WINDOW:  # forget slowly: the machine's load changes
            self._total_ns[k] //= 2
            self._calls[k] //= 2
        self._group += 1
        self._group_ns += elapsed
        other_ns = self.mean_ns(1 - k)
        if elapsed > STALL * other_ns > 0.0:
            # One call took several of the other kernel's: a stalled region
            # costs tens of periods, so do not wait for the rest of the group.
            self._decide()
        elif self._group >= PROBE_PERIODS:
            if self._probing or self.mean_ns(k) > other_ns > 0.0:
                self._decide()
            else:
                self._group = 0
                self._group_ns = 0
                self._until_probe -= PROBE_PERIODS
                if self._until_probe <= 0:  # probe the other kernel
                    self._probing = True
                    self.current = 1 - k

    def _decide(self) -> None:
        """Keep the current kernel if it is the faster, else go back and wait longer."""
        k = self.current
        other_ns = self.mean_ns(1 - k)
        if other_ns == 0.0 or self.mean_ns(k) < other_ns:
            if k == 1:
                self.switches += 1
            self._gap = FIRST_PROBE
        else:
            # The next probe waits long enough for this group's excess time
            # to be PROBE_BUDGET of the periods between (a 25 ms stall against
            # 1 ms periods: 1,250 periods), and at least twice the last wait.
            excess = self._group_ns - self._group * other_ns
            budget = int(excess / (PROBE_BUDGET * other_ns))
            self.current = 1 - k
            self._gap = min(max(2 * self._gap, budget), MAX_PROBE_GAP)
        self._probing = False
        self._group = 0
        self._group_ns = 0
        self._until_probe = self._gap


def on_one_thread(kernel: Any) -> Callable[..., None]:
    """``kernel`` (a parallel one) run on one thread: the serial side of the choice.

    A model's parallel period kernel on one thread ran 1.6 times faster than
    its serial kernel (STN-GPe, n = 256, PID in Python, 1 ms periods: 227
    against 139 instance-s/s, medians of 7 interleaved runs at load average
    10): Numba compiles the two loops differently. Setting the thread count
    costs about 2-6 us a call, small against a period of 32 instances or more.
    """
    import numba

    get, set_ = numba.get_num_threads, numba.set_num_threads

    def one_thread(*args: Any) -> None:
        threads = get()
        set_(1)
        try:
            kernel(*args)
        finally:
            set_(threads)

    return one_thread


def entry_point(dispatcher: Any, args: tuple) -> Any:
    """The compiled function for these argument types, skipping Numba's type dispatch.

    Dispatch re-types every argument on every call (about 2 us for the ~30
    arrays of a period kernel, a fifth of a 1 ms period's budget). The loops
    only pass arguments of fixed types: state arrays they own and command
    arrays that :func:`closedloop.core.loop.command_array` makes C-contiguous float64 of shape
    ``(n,)`` (read-only or not: both share Numba's data model, and the
    kernels only read commands).
    """
    import numba

    sig = tuple(numba.typeof(a) for a in args)
    compiled = dispatcher.overloads.get(sig)
    return dispatcher if compiled is None else compiled.entry_point
