"""Parameter sweeps: expand a config to runs, run them on a pool or Dask, summarise.

Import from the modules; this package file imports nothing.

- :mod:`~closedloop.sweep.spec`: the ``sweep:`` block (axes, checks); imports
  nothing of closedloop, so the config schema can use it.
- :mod:`~closedloop.sweep.plan`: runs, their ids and seeds, tasks (batches).
- :mod:`~closedloop.sweep.manifest`: the sweep directory, ``manifest.json``
  and its lock.
- :mod:`~closedloop.sweep.batch`: several runs simulated as one loop.
- :mod:`~closedloop.sweep.worker`: what a worker does with a task.
- :mod:`~closedloop.sweep.executors`: where tasks run (local pool, Dask); a
  new executor is a class with ``submit``, ``next_result``, ``describe``,
  ``shutdown`` and ``workers``.
- :mod:`~closedloop.sweep.runner`: :func:`~closedloop.sweep.runner.run_sweep`.
- :mod:`~closedloop.sweep.summary`: one table of all runs (figures in
  :mod:`closedloop.plotting.sweep`).
"""

__all__: list[str] = []
