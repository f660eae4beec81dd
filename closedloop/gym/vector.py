"""A vector environment whose sub-environments are the loop's batch axis.

``gymnasium.make_vec("closedloop/Experiment-v0", num_envs=256, config=...)``
gives an :class:`ExperimentVectorEnv`: the 256 instances of one
:class:`~closedloop.core.loop.ClosedLoop`, stepped together in one compiled
call per control period. ``reset(seed=s)`` seeds the batch as the loop does
(:func:`closedloop.core.clocks.seed_layout`: instance ``i``'s streams spawned
from root ``s``), so the vector environment stepped with a fixed policy is
the batch run of the experiment with ``n_instances = num_envs``. All
instances share one clock, so their episodes end together; reset follows
gymnasium's default next-step autoreset (the step after the one that
truncated resets every instance and returns the first observations).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from closedloop.controllers.policy import ActionSpec
from closedloop.gym.env import action_space, observation_space
from closedloop.gym.episode import Episodes, Reward

__all__ = ["ExperimentVectorEnv"]


class ExperimentVectorEnv(VectorEnv):
    """``num_envs`` instances of an experiment, stepped in one compiled call per period.

    Parameters
    ----------
    config : str, path, dict or ResolvedExperiment
        The experiment (``n_instances`` is set to ``num_envs``).
    num_envs : int
        Sub-environments (instances).
    overrides, features, action, reward, drift, render_mode
        As in :class:`closedloop.gym.env.ExperimentEnv`; drift factors are
        drawn per instance.
    """

    metadata: dict[str, Any] = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        config: Any,
        num_envs: int = 1,
        *,
        overrides: Sequence[str] = (),
        features: Sequence[str] | None = None,
        action: ActionSpec | Mapping[str, Any] | None = None,
        reward: Reward | Mapping[str, float] | None = None,
        drift: Mapping[str, float] | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode: closedloop environments do not render: {render_mode!r}")
        if int(num_envs) != num_envs or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.render_mode = None
        self.num_envs = int(num_envs)
        self.episodes = Episodes(
            config,
            self.num_envs,
            overrides=overrides,
            features=features,
            action=action,
            reward=reward,
            drift=drift,
        )
        self.single_action_space = action_space(self.episodes.action)
        self.single_observation_space = observation_space(len(self.episodes.features))
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self._started = False
        self._needs_reset = True

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode of every instance (root seed as in :class:`ExperimentEnv`)."""
        if seed is None and not self._started:
            seed = self.episodes.default_seed
        super().reset(seed=seed)
        self._started = True
        episode_seed = int(seed) if seed is not None else int(self.np_random.integers(2**63))
        obs = self.episodes.reset(episode_seed, self.np_random)
        self._needs_reset = False
        info = {"t_s": np.full(self.num_envs, self.episodes.loop.time_s), "seed": episode_seed}
        return obs, info

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One control period of every instance; next-step autoreset after truncation."""
        n = self.num_envs
        if self._needs_reset:
            obs, info = self.reset()
            return obs, np.zeros(n), np.zeros(n, bool), np.zeros(n, bool), info
        obs, rewards, truncated = self.episodes.step(actions)
        self._needs_reset = truncated
        info = {"t_s": np.full(n, self.episodes.loop.time_s)}
        return obs, rewards, np.zeros(n, bool), np.full(n, truncated), info
