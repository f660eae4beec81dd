"""The loop and what every model shares: clocks, seeds, kernel cache, random streams.

Modules: :mod:`~closedloop.core.kernel_cache` (where compiled kernels live),
:mod:`~closedloop.core.random` (per-instance noise streams),
:mod:`~closedloop.core.model` (the Numba model contract),
:mod:`~closedloop.core.period` (the model-independent end of a control period),
:mod:`~closedloop.core.loop` (the closed loop). Import from the modules; this
package file imports nothing, so that importing any one of them stays cheap.
"""

__all__: list[str] = []
