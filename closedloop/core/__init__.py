"""The loop and what every model shares: clocks, seeds, kernel cache, random streams.

Modules: :mod:`~closedloop.core.clocks` (the three clocks and the seed
layout), :mod:`~closedloop.core.protocol` (the :class:`Loop` contract),
:mod:`~closedloop.core.loop` (the Numba loop), :mod:`~closedloop.core.model`
(the model contract), :mod:`~closedloop.core.batch_kernels` (the declared
batch-loop pattern of every Numba model), :mod:`~closedloop.core.period`
(the model-independent end of a control period), :mod:`~closedloop.core.record`
(rows of the per-period record), :mod:`~closedloop.core.random` (per-instance
noise streams), :mod:`~closedloop.core.kernel_cache` (where compiled kernels
live) and :mod:`~closedloop.core.plugins` (objects named by dotted path).
Import from the modules; this package file imports nothing, so that importing
any one of them stays cheap.
"""

__all__: list[str] = []
