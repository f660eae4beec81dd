"""``closedloop/Experiment-v0``: one instance of an experiment as a gymnasium environment.

Observation: the sensed features of the last control period (``biomarker``
and the experiment's ``sensing.features``), float64. Action: the command, a
box over amplitude (mA) and optionally frequency (Hz) and pulse width (us)
within the device's limits, or a discrete on/off
(:class:`~closedloop.controllers.policy.ActionSpec`). Reward: a documented
weighted sum of biomarker, energy and switching
(:class:`~closedloop.gym.episode.Reward`). An episode lasts the experiment's
``duration_s``; it is truncated, never terminated.

Seeding follows gymnasium: ``reset(seed=s)`` seeds :attr:`np_random` and
runs the episode with root seed ``s`` (the loop's seed layout); a reset
without a seed draws the episode's seed from :attr:`np_random`, seeded with
the experiment file's ``seed`` if the environment was never seeded, so an
environment made from a file is reproducible as the file's run is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from closedloop.controllers.policy import ActionSpec
from closedloop.gym.episode import Episodes, Reward

__all__ = ["ExperimentEnv", "action_space", "observation_space"]


def action_space(spec: ActionSpec) -> spaces.Space:
    """The gymnasium space of one instance's action."""
    if spec.discrete:
        return spaces.Discrete(2)
    return spaces.Box(spec.low, spec.high, dtype=np.float64)


def observation_space(n_features: int) -> spaces.Box:
    """The gymnasium space of one instance's observation (features, unbounded)."""
    return spaces.Box(-np.inf, np.inf, shape=(n_features,), dtype=np.float64)


class ExperimentEnv(gymnasium.Env):
    """An experiment file as a gymnasium environment of one instance.

    Parameters
    ----------
    config : str, path, dict or ResolvedExperiment
        The experiment (``n_instances`` is set to 1; its controller is unused).
    overrides : sequence of str
        ``key=value`` overrides, as ``closedloop run --set``.
    features : sequence of str, optional
        Observation columns (default ``biomarker`` and ``sensing.features``).
    action : ActionSpec or mapping, optional
        Action space, or keyword arguments of ``ActionSpec.for_device``
        (``controls``, ``discrete``, ``amplitude_ma``, ``frequency_hz``,
        ``pulse_width_us``).
    reward : Reward or mapping, optional
        Reward weights (``biomarker_weight``, ``biomarker_target``,
        ``energy_weight``, ``switching_weight``).
    drift : mapping of str to float, optional
        Between-episode parameter drift (see :class:`Episodes`).
    render_mode : None
        No rendering.

    Attributes
    ----------
    episodes : Episodes
        The loop and its episode bookkeeping (``episodes.loop`` is the live loop).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        config: Any,
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
        self.render_mode = None
        self.episodes = Episodes(
            config,
            1,
            overrides=overrides,
            features=features,
            action=action,
            reward=reward,
            drift=drift,
        )
        self.action_space = action_space(self.episodes.action)
        self.observation_space = observation_space(len(self.episodes.features))
        self._started = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode (see the module's note on seeding).

        Returns
        -------
        observation : ndarray
        info : dict
            ``t_s`` (the time of the observation, s), ``seed`` (the episode's
            root seed) and ``drift`` (the factors drawn, by group).
        """
        if seed is None and not self._started:
            seed = self.episodes.default_seed
        super().reset(seed=seed)
        self._started = True
        episode_seed = int(seed) if seed is not None else int(self.np_random.integers(2**63))
        obs = self.episodes.reset(episode_seed, self.np_random)
        return obs[0], self._info(episode_seed)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One control period with ``action``.

        Returns
        -------
        observation, reward, terminated (always False), truncated, info
        """
        obs, rewards, truncated = self.episodes.step(np.asarray(action)[None])
        return obs[0], float(rewards[0]), False, truncated, self._info(None)

    def _info(self, seed: int | None) -> dict[str, Any]:
        info: dict[str, Any] = {"t_s": self.episodes.loop.time_s}
        if seed is not None:
            info["seed"] = seed
            info["drift"] = {k: float(v[0]) for k, v in self.episodes.factors_.items()}
        return info
