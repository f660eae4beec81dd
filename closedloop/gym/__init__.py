"""Gymnasium environments over any experiment file (needs the ``control`` extra).

``import closedloop`` registers ``closedloop/Experiment-v0`` with gymnasium
(when gymnasium is installed), so that::

    env = gymnasium.make("closedloop/Experiment-v0", config="experiments/pd_beta_adbs.yaml")
    envs = gymnasium.make_vec("closedloop/Experiment-v0", num_envs=256, config=...)

work as a gymnasium user expects. :class:`ExperimentEnv` is one instance;
:class:`ExperimentVectorEnv` steps ``num_envs`` instances as the loop's batch
in one compiled call per control period. The names are loaded on first use,
so that registering (at ``import closedloop``) imports neither the loop nor
Numba.
"""

from __future__ import annotations

import importlib
from typing import Any

from closedloop.gym.registration import ENV_ID, register_envs

_EXPORTS = {
    "Episodes": "closedloop.gym.episode",
    "ExperimentEnv": "closedloop.gym.env",
    "ExperimentVectorEnv": "closedloop.gym.vector",
    "Reward": "closedloop.gym.episode",
}

__all__ = ["ENV_ID", "register_envs", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'closedloop.gym' has no attribute {name!r}")
