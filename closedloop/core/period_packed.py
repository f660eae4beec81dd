"""Everything one packed period reads, from the loop's pool alone.

``periods_packed`` (:data:`closedloop.core.batch_kernels.PATTERN`) takes the
loop's pool and the pending command. The model's state arrays and the
chunk's record pool ride in the pool by address (a
:class:`~closedloop.core.pool.Lent` table after
:data:`closedloop.core.period.PACKED`), and the run's constants and the
period's place in a :class:`PeriodClock` after it, which the kernel
advances by one period per call. A call from Python then unboxes five
arrays and no scalar but the command's effective step: each array argument
costs some 30 ns to unbox and release, each scalar some 8, a reference to
the lent arrays' types (``lent_types``) nothing.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from closedloop.core.jit import njit
from closedloop.core.period import PACKED, unpack_period
from closedloop.core.pool import LENT_ROW, Lent, lend, lent, unpack

__all__ = ["CLOCK", "LENT", "PeriodClock", "lent_table", "lent_types", "next_period"]

#: Position of the :class:`~closedloop.core.pool.Lent` table in the loop's pool.
LENT = len(PACKED)
#: Position of the :class:`PeriodClock`, after it.
CLOCK = LENT + 1


class PeriodClock(NamedTuple):
    """The run's constants and the next period's place, packed after the lent table."""

    steps_per_period: int
    dt_s: float  #: integration step, s
    latency_steps: int  #: from a period's end to its command taking effect, steps
    control_period_s: float  #: s
    at: np.ndarray  #: int64 (2,): the next period's first step and its column in the record


def lent_table(model_state: tuple) -> Lent:
    """The table for :func:`next_period`: row 0 the record pool (per chunk), then ``model_state``.

    Raises
    ------
    TypeError
        When an element of ``model_state`` is not an array of 1 to 4 dims.
    """
    table = np.zeros((1 + len(model_state), LENT_ROW), dtype=np.int64)
    for row, array in zip(table[1:], model_state, strict=True):
        lend(row, array)
    return Lent(table)


def lent_types(model_state: tuple) -> Any:
    """The Numba type of what the table lends: ``(record pool, *model_state)``."""
    import numba  # the kernels are loaded when this is asked (closedloop.core.jit)

    return numba.typeof((np.zeros(0, dtype=np.uint8), *model_state))


@njit(cache=True, inline="always")
def next_period(lent_types, pool):
    """What the next packed period reads, the pool's :class:`PeriodClock` advanced past it.

    ``pool`` packs :data:`~closedloop.core.period.PACKED`, the
    :class:`~closedloop.core.pool.Lent` table of :func:`lent_table` (row 0
    the chunk's record pool) and a :class:`PeriodClock`; ``lent_types`` is
    :func:`lent_types` of the model state. Returns, as the period loops take
    them, ``state``: (model state, device, sensing state,
    :class:`~closedloop.core.period.PeriodIO`, program), the arrays as views
    (see :mod:`closedloop.core.pool`); ``times``: (steps_per_period, dt_s,
    latency_steps, control_period_s); and the period's first step and record
    column.
    """
    arrays = lent(lent_types, unpack(Lent, pool, LENT).table)
    device, sensing, io, program = unpack_period(pool, arrays[0])
    c = unpack(PeriodClock, pool, CLOCK)
    spp, step0, k0 = c.steps_per_period, c.at[0], c.at[1]
    c.at[0] = step0 + spp
    c.at[1] = k0 + 1
    times = (spp, c.dt_s, c.latency_steps, c.control_period_s)
    return (arrays[1:], device, sensing, io, program), times, step0, k0
