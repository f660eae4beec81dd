"""The batch loops every Numba model spells out around its own per-instance step.

A Numba model module defines ``advance_one(i, n_steps, step0, dt, model,
drive, out)``: advance instance ``i`` by ``n_steps`` integration steps,
reading the stimulation ``drive[i, j]`` (the model's stimulation units) and
writing its signal to ``out[i, j]``. The
loops over the batch around it (open loop, and control periods of device,
model and sensing chain with :func:`closedloop.core.period.close_period`)
are the same for every model, but Numba cannot cache a kernel that takes or
closes over another compiled function, so they cannot be written once and
handed a model's step. Each model module therefore holds a verbatim copy of
:data:`PATTERN` after the marker line :data:`MARKER`, with these imports::

    import numpy as np
    from closedloop.core.jit import njit, prange
    from closedloop.core.period import (
        close_period,
        close_plain_period,
        plain_state,
    )
    from closedloop.core.period_packed import next_period
    from closedloop.device import device_fill, pulse_fill, queue_push

``tests/test_kernel_pattern.py`` checks that every registered model's copy
equals :data:`PATTERN`, so the copies cannot drift apart. A model finds its
kernels through :func:`model_kernels` (by default in the module that defines
the model class).

The entry points: ``advance_serial`` / ``advance_parallel`` run open loop over
a chunk; ``periods_serial`` / ``periods_parallel`` run control periods of
every instance, one period per call when the controller runs in Python (its
command arrives as ``command``), a whole chunk per call when it is compiled
(``program``). The parallel ones spread instances over threads (prange).
They hand the instance index on as ``np.int64``: Numba types a ``prange``
index as int64 when it types the kernel and as uint64 when it builds the
parallel loop, and without the cast every function the loop calls (device,
model step, sensing chain, controller twins) compiled twice, once per
index type, on a cold cache.
``periods_packed`` is ``periods_serial`` for one period with the device,
sensing and buffer state packed in the loop's byte pool, the model state
and the chunk's record lent to it by address, and the run's constants and
the period's first step and record column in the pool too
(:func:`closedloop.core.period_packed.next_period`, which advances them):
a call from Python unboxes the pool, the four command arrays and the
command's effective step instead of fifty arrays and eight scalars
(:mod:`closedloop.core.pool`). It spells
the loop out rather than call
``periods_serial`` (a call between kernels
passing the fifty arrays cost 0.7 us per period).

Both period loops hand blocks of 16 instances to ``_periods_block`` (the
serial one a block after another, so both run one compiled specialisation), a plain
compiled function into which the device fill, the sensing chain and the
record are inlined. Passing the loop's state (a sensing tuple of some forty
arrays) into a compiled call cost about 2 us, more than a 1 ms period of the
model itself, so it is paid once per block of 16 instances, not once per
instance and period (``_plain_one`` and ``_general_one``, inlined into the
block, are one instance's periods); and the inlined code stays out of the
prange body, where Numba's parfor passes made the period 30 times slower
(issue 18, gap 1; ``benchmarks/bench_ceiling.py``). The parallel loop builds
the ``times`` and ``state`` tuples inside its body: a parfor cannot take a
tuple that holds tuples.

Every kernel takes ``general`` last
(:func:`closedloop.core.period.general_periods`): ``None`` when every
period of the run is *plain* (a pulse train and the plain sensing chain: the
default loop), ``True`` otherwise. ``_plain_one`` runs plain periods with the
chain's arrays taken out of their tuples once: in one loop with the other
modalities' fills and the general chain, code that never ran, the default
period ran 1.4 times slower. ``general is None`` is settled when Numba types
the kernel, before it inlines anything (its first dead-branch pass), so a
plain run compiles no line of the general period: a cold first run of the
default experiment took 12-14 s of CPU instead of 35 s (gap 4), and a
period of a controller in Python lost 0.3-0.4 us (gap 5). The branch must
stay in the kernels that take ``general``: inside an inlined function it is
pruned only after the whole function was copied in, which cost 8 s.
"""

from __future__ import annotations

import ast
import functools
import inspect
import sys
from types import ModuleType
from typing import Any, NamedTuple

from closedloop.core.jit import load_kernels

__all__ = ["KERNEL_NAMES", "MARKER", "PATTERN", "ModelKernels", "has_kernels", "model_kernels"]

#: The line after which a model module holds its copy of :data:`PATTERN`.
MARKER = "# Batch kernels: closedloop.core.batch_kernels.PATTERN, verbatim (tests check it)."

#: The batch loops, as every model module spells them out.
PATTERN = """\
@njit(cache=True)
def advance_serial(n_steps, step0, dt, model, drive, out):
    for i in range(out.shape[0]):
        advance_one(i, n_steps, step0, dt, model, drive, out)


@njit(cache=True, parallel=True)
def advance_parallel(n_steps, step0, dt, model, drive, out):
    for i in prange(out.shape[0]):
        advance_one(np.int64(i), n_steps, step0, dt, model, drive, out)


@njit(cache=True, inline="always")
def _plain_one(i, n_periods, k0, step0, times, state):
    spp, dt, latency_steps, period_s = times
    model, device, sensing, io, program = state
    drive, net, signal = io[0], io[1], io[2]
    plain = plain_state(sensing, io, spp)
    step = step0
    for k in range(k0, k0 + n_periods):
        pulse_fill(i, spp, step, dt, device, drive, net)
        advance_one(i, spp, step, dt, model, drive, signal)
        step += spp
        close_plain_period(i, k, step, device, plain, program, latency_steps, period_s)


@njit(cache=True, inline="always")
def _general_one(i, n_periods, k0, step0, times, state):
    spp, dt, latency_steps, period_s = times
    model, device, sensing, io, program = state
    drive, net, signal = io[0], io[1], io[2]
    step = step0
    for k in range(k0, k0 + n_periods):
        device_fill(i, spp, step, dt, device, drive, net)
        advance_one(i, spp, step, dt, model, drive, signal)
        step += spp
        close_period(i, k, spp, step, device, sensing, io, program, latency_steps, period_s)


@njit(cache=True)
def _periods_block(lo, hi, n_periods, k0, step0, times, state, general):
    for i in range(lo, hi):
        if general is None:  # every period plain: the general code is not compiled
            _plain_one(i, n_periods, k0, step0, times, state)
        else:
            _general_one(i, n_periods, k0, step0, times, state)


@njit(cache=True)
def periods_serial(
    n_periods,
    spp,
    step0,
    dt,
    model,
    device,
    sensing,
    io,
    k0,
    program,
    latency_steps,
    period_s,
    command,
    effective_step,
    general,
):
    queue_push(device, command, effective_step)
    times = (spp, dt, latency_steps, period_s)
    state = (model, device, sensing, io, program)
    n = io[0].shape[0]
    for b in range((n + 15) // 16):  # the parallel kernel's blocks, one after another
        lo = np.int64(b) * 16
        _periods_block(lo, min(n, lo + 16), n_periods, k0, step0, times, state, general)


@njit(cache=True)
def periods_packed(lent_types, pool, command, effective_step, general):
    state, times, step0, k0 = next_period(lent_types, pool)
    device, io = state[1], state[3]
    queue_push(device, command, effective_step)
    for i in range(io[0].shape[0]):
        if general is None:
            _plain_one(i, 1, k0, step0, times, state)
        else:
            _general_one(i, 1, k0, step0, times, state)


@njit(cache=True, parallel=True)
def periods_parallel(
    n_periods,
    spp,
    step0,
    dt,
    model,
    device,
    sensing,
    io,
    k0,
    program,
    latency_steps,
    period_s,
    command,
    effective_step,
    general,
):
    queue_push(device, command, effective_step)
    n = io[0].shape[0]
    for b in prange((n + 15) // 16):  # blocks of 16 instances
        lo = np.int64(b) * 16  # int64 like the serial loop's: one compilation
        times = (spp, dt, latency_steps, period_s)  # made here: a parfor takes no nested tuple
        state = (model, device, sensing, io, program)
        _periods_block(lo, min(n, lo + 16), n_periods, k0, step0, times, state, general)
"""


class ModelKernels(NamedTuple):
    """A model's compiled kernels: its per-instance step and the batch loops."""

    advance_one: Any
    advance_serial: Any
    advance_parallel: Any
    periods_serial: Any
    periods_packed: Any
    periods_parallel: Any


#: Entry-point names a model module defines (the fields of :class:`ModelKernels`).
KERNEL_NAMES = ModelKernels._fields

_BY_MODULE: dict[str, ModelKernels] = {}


def has_kernels(module: str) -> bool:
    """Whether the module ``module`` (an import name) defines every kernel."""
    mod = sys.modules.get(module)
    return mod is not None and all(hasattr(mod, k) for k in KERNEL_NAMES)


def model_kernels(module: str | ModuleType) -> ModelKernels:
    """The batch kernels defined in ``module`` (a module or its import name).

    Raises
    ------
    AttributeError
        Naming the kernels the module lacks, and what to copy there.
    TypeError
        When an entry point takes other arguments than :data:`PATTERN`'s
        (a copy made before the pattern changed), naming it.
    """
    load_kernels()  # dispatchers, not stand-ins, for the loops to call and time
    name = module if isinstance(module, str) else module.__name__
    kernels = _BY_MODULE.get(name)
    if kernels is None:
        mod = sys.modules[name]
        missing = [k for k in KERNEL_NAMES if not hasattr(mod, k)]
        if missing:
            raise AttributeError(
                f"module {name!r} defines no {', '.join(missing)}: a Numba model module "
                "holds a copy of closedloop.core.batch_kernels.PATTERN after its "
                "advance_one (see that module)"
            )
        for k in KERNEL_NAMES[1:]:  # advance_one is the model's own
            _check_copy(name, k, getattr(mod, k))
        kernels = _BY_MODULE[name] = ModelKernels(*(getattr(mod, k) for k in KERNEL_NAMES))
    return kernels


@functools.cache
def _pattern_parameters() -> dict[str, tuple[str, ...]]:
    """The parameter names of each function :data:`PATTERN` defines."""
    tree = ast.parse(PATTERN)
    return {
        node.name: tuple(a.arg for a in node.args.args)
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }


def _check_copy(module: str, kernel: str, dispatcher: Any) -> None:
    # A model module copied before the pattern changed would fail inside Numba
    # at its first period, with a message about types; say what to do instead.
    want = _pattern_parameters()[kernel]
    py_func = getattr(dispatcher, "py_func", dispatcher)
    have = tuple(inspect.signature(py_func).parameters)
    if have != want:
        raise TypeError(
            f"module {module!r}: {kernel}({', '.join(have)}) is an older copy of "
            f"closedloop.core.batch_kernels.PATTERN, which has {kernel}({', '.join(want)}): "
            "copy the pattern again after the module's advance_one"
        )
