"""Gymnasium environments over any experiment file (needs the ``control`` extra).

``import closedloop`` registers ``closedloop/Experiment-v0`` with gymnasium
(when gymnasium is installed), so that::

    env = gymnasium.make("closedloop/Experiment-v0", config="experiments/pd_beta_adbs.yaml")
    envs = gymnasium.make_vec("closedloop/Experiment-v0", num_envs=256, config=...)

work as a gymnasium user expects. :class:`ExperimentEnv` is one instance;
:class:`ExperimentVectorEnv` steps ``num_envs`` instances as the loop's batch
in one compiled call per control period.
"""

from closedloop.gym.env import ExperimentEnv
from closedloop.gym.episode import Episodes, Reward
from closedloop.gym.registration import ENV_ID, register_envs
from closedloop.gym.vector import ExperimentVectorEnv

__all__ = ["ENV_ID", "Episodes", "ExperimentEnv", "ExperimentVectorEnv", "Reward", "register_envs"]
