"""Parameter sweeps: expand a config to runs, run them on a pool or Dask, summarise.

Import from the modules (:mod:`~closedloop.sweep.runner`,
:mod:`~closedloop.sweep.worker`, :mod:`~closedloop.sweep.executors`,
:mod:`~closedloop.sweep.summary`); this package file imports nothing.
"""

__all__: list[str] = []
