"""closedloop: closed-loop neurostimulation simulation.

Neural population models are driven by swappable controllers through a
causal sensing chain and a virtual stimulator that enforces its safety
limits; results stream to HDF5.

The main entry points are importable from here (loaded on first use)::

    import closedloop
    run = closedloop.run("experiments/pd_beta_adbs.yaml", duration_s=2)  # no file written
    run.metrics["long_burst_time_reduction"]

and the models and controllers by class name (``closedloop.STNGPe``,
``closedloop.PID``, ...), besides ``load_config``, ``run_experiment`` and
``load_run``.
"""

from __future__ import annotations

import importlib
from typing import Any

from closedloop.gym.registration import register_when_imported

__version__ = "0.1.0"

_EXPORTS = {
    "ClosedLoop": "closedloop.core.loop",
    "Controller": "closedloop.controllers",
    "Device": "closedloop.device",
    "SensingChain": "closedloop.sensing",
    "check_controller": "closedloop.testing",
    "check_model": "closedloop.testing",
    "load_config": "closedloop.config",
    "load_run": "closedloop.io",
    "plot_run": "closedloop.plotting",
    "run_experiment": "closedloop.experiment",
    "run": "closedloop.api",
    **dict.fromkeys(("BUILTIN_MODELS", "STNGPe", "WilsonCowan", "JansenRit", "Epileptor",
                     "KuramotoEnsemble"), "closedloop.models"),
    **dict.fromkeys(("BUILTIN_CONTROLLERS", "OpenLoop", "OnOff", "DualThreshold", "PID",
                     "Responsive", "PhaseLocked"), "closedloop.controllers"),
}  # fmt: skip

__all__ = ["__version__", *sorted(_EXPORTS)]


# gymnasium.make("closedloop/Experiment-v0", ...) works once closedloop is
# imported: registered when gymnasium is imported (before or after), so that
# commands that never use an environment do not pay gymnasium's import.
register_when_imported()


def __getattr__(name: str) -> Any:
    # Lazy, so that `import closedloop` stays cheap (no Numba or h5py import).
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'closedloop' has no attribute {name!r}")
