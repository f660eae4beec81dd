"""The serial/parallel choice for per-period kernels (issue 18, gap 6).

Fake kernels that take known times on a simulated clock stand in for the
model's kernels, so that what the chooser does is checked against a schedule
known in advance, whatever the machine's load: a parallel kernel that stalls now
and then must lose to a steady serial one, a faster one must win, and the
loop's results must not depend on which ran.
"""

from __future__ import annotations

import numpy as np
import pytest

from closedloop.core.kernel_choice import MAX_PROBE_GAP, KernelChoice


class Clock:
    """A simulated wall clock, ns: the fake kernels advance it by their own times."""

    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        return self.ns


class Kernel:
    """A fake kernel whose calls take the times in ``schedule_us`` (cycled), and counts them."""

    def __init__(self, clock: Clock, schedule_us: list[int]) -> None:
        self.clock = clock
        self.schedule_us = schedule_us
        self.calls = 0

    def __call__(self) -> None:
        self.clock.ns += 1000 * self.schedule_us[self.calls % len(self.schedule_us)]
        self.calls += 1


def kernels(serial_us: list[int], parallel_us: list[int]) -> tuple[Kernel, Kernel, KernelChoice]:
    """Two fake kernels on one simulated clock, and the choice between them."""
    clock = Clock()
    serial, parallel = Kernel(clock, serial_us), Kernel(clock, parallel_us)
    return serial, parallel, KernelChoice(serial, parallel, clock=clock)


def test_a_stalling_parallel_kernel_loses_to_serial() -> None:
    # Parallel: 50 us per call, but every fourth call waits 5 ms for a parked
    # thread (mean 1.29 ms); serial: a steady 200 us. The mean decides.
    serial, parallel, choice = kernels([200], [50, 50, 50, 5000])
    for _ in range(600):
        choice()
    assert choice.name == "serial"
    # Probes back off: the parallel kernel ran a few per cent of the periods.
    assert parallel.calls < 0.05 * 600
    assert choice.mean_ns(1) > 3 * choice.mean_ns(0)


def test_a_faster_parallel_kernel_is_kept() -> None:
    serial, parallel, choice = kernels([400], [150])
    for _ in range(300):
        choice()
    assert choice.name == "parallel"
    assert parallel.calls > 0.8 * 300


def test_a_kernel_that_starts_stalling_is_left_at_once() -> None:
    serial, parallel, choice = kernels([300], [100])
    for _ in range(100):
        choice()
    assert choice.name == "parallel"
    parallel.schedule_us = [20_000]  # the machine got busy: every region stalls
    before = parallel.calls
    for _ in range(20):
        choice()
    assert choice.name == "serial"
    assert parallel.calls - before == 1  # one stalled call, not a group of them


def test_probe_gap_is_bounded() -> None:
    # Whatever the history, the parallel kernel is tried again within
    # MAX_PROBE_GAP periods (plus a group): a quiet machine gets it back.
    serial, parallel, choice = kernels([1], [5])
    for _ in range(40_000):
        choice()
    calls = parallel.calls
    for _ in range(MAX_PROBE_GAP + 64):
        choice()
    assert parallel.calls > calls


@pytest.mark.parametrize("n", [40])
def test_loop_results_do_not_depend_on_the_kernel_chosen(n: int) -> None:
    """A Python-controller loop gives the same record with the choice forced either way."""
    from closedloop.controllers import PID
    from closedloop.core.loop import ClosedLoop
    from closedloop.device import Device
    from closedloop.models import STNGPe
    from closedloop.sensing.chain import SensingChain

    def run(force: int | None) -> np.ndarray:
        loop = ClosedLoop(
            STNGPe(dt_s=1e-4, n=n),
            SensingChain(),
            Device(),
            PID(setpoint=30.0, kp=0.02, ki=0.2, max_amplitude_ma=3.0),
            control_period_s=0.001,
            seed=3,
            engine="python",
        )
        loop.reset()
        out = []
        loop.run(0.002, on_chunk=lambda t, d: out.append(d["amplitude"].copy()))
        if force is not None:
            choice = loop.kernel_choice
            choice.kernels = (choice.kernels[force],) * 2
        loop.run(0.05, chunk_s=0.01, on_chunk=lambda t, d: out.append(d["lfp"].copy()))
        return np.concatenate([o.ravel() for o in out])

    serial, parallel = run(0), run(1)
    np.testing.assert_array_equal(serial, parallel)
    assert np.isfinite(serial).all()


def test_probes_of_a_collapsed_parallel_kernel_cost_a_few_per_cent() -> None:
    # Load average 10 on 2 cores: each parallel region waits ~25 ms for a
    # parked thread, against 1 ms of serial work per period (measured, n = 256).
    serial, parallel, choice = kernels([1000], [25_000])
    periods = 20_000
    for _ in range(periods):
        choice()
    serial_only_ns = periods * 1000 * 1000
    assert choice.clock() < 1.05 * serial_only_ns
