"""Everything one packed period reads, from the loop's pool alone.

``periods_packed`` (:data:`closedloop.core.batch_kernels.PATTERN`) takes the
loop's pool and the pending command; the model's state arrays and the
chunk's record pool ride in the pool by address (a
:class:`~closedloop.core.pool.Lent` table after :data:`closedloop.core.period.PACKED`),
so that a call from Python unboxes five arrays instead of ten: each array
argument costs some 30 ns to unbox and release, a reference to their types
(``lent_types``) nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from closedloop.core.jit import njit
from closedloop.core.period import PACKED, unpack_period
from closedloop.core.pool import LENT_ROW, Lent, lend, lent, unpack

__all__ = ["LENT", "lent_table", "lent_types", "unpack_lent"]

#: Position of the :class:`~closedloop.core.pool.Lent` table in the loop's pool.
LENT = len(PACKED)


def lent_table(model_state: tuple) -> Lent:
    """The table for :func:`unpack_lent`: row 0 the record pool (per chunk), then ``model_state``.

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
def unpack_lent(lent_types, pool):
    """Model state, device, sensing state, :class:`~closedloop.core.period.PeriodIO` and program.

    ``pool`` packs :data:`~closedloop.core.period.PACKED` and then the
    :class:`~closedloop.core.pool.Lent` table of :func:`lent_table`, whose
    row 0 holds the chunk's record pool; ``lent_types`` is
    :func:`lent_types` of the model state. The results are views (see
    :mod:`closedloop.core.pool`).
    """
    arrays = lent(lent_types, unpack(Lent, pool, LENT).table)
    device, sensing, io, program = unpack_period(pool, arrays[0])
    return arrays[1:], device, sensing, io, program
