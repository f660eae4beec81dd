"""Episodes of an experiment driven one control period at a time (no gymnasium import).

:class:`Episodes` is what the gymnasium environments (:mod:`closedloop.gym.env`,
:mod:`closedloop.gym.vector`) share: an experiment file built into a
:class:`~closedloop.core.loop.ClosedLoop` of ``n`` instances, reset with a
seed (and, optionally, drifted parameters) per episode, stepped with
commands through :meth:`ClosedLoop.step`, and the reward of each period.

Episode timing follows the loop: :meth:`Episodes.reset` warms the model up
and runs the first control period with the device's initial setting (0 mA),
as :meth:`ClosedLoop.run` does before it first asks its controller; each
:meth:`Episodes.step` then runs one more period with the agent's command.
An episode of ``duration_s`` therefore has ``duration_s / period - 1``
agent steps, and with a fixed policy it is the run of
:class:`~closedloop.controllers.policy.Policy` with the same seed, bit for
bit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from closedloop.config.build import ResolvedExperiment, validate_config
from closedloop.config.files import load_raw
from closedloop.controllers.policy import ActionSpec
from closedloop.core.loop import ClosedLoop

__all__ = ["Episodes", "Reward", "drift_factors"]


@dataclass(frozen=True)
class Reward:
    """The reward of one control period, a weighted sum of the benchmark's costs.

    ``reward = -(biomarker_weight * |biomarker - biomarker_target|
    + energy_weight * energy_uj + switching_weight * switches)``, where
    ``energy_uj`` is the energy the device delivered during the period (uJ,
    the TEED accounting of :mod:`closedloop.device`) and ``switches`` the
    on/off transitions of the stimulation in it.

    Parameters
    ----------
    biomarker_weight : float
        Per unit of the biomarker (the sensing chain's units).
    biomarker_target : float
        Biomarker level that costs nothing (0: suppress the biomarker).
    energy_weight : float
        Per uJ delivered.
    switching_weight : float
        Per on/off switch.

    Notes
    -----
    The default weights are a choice, not from a paper: biomarker first,
    1 uJ costing as much as 0.1 biomarker units, a switch as much as one.
    """

    biomarker_weight: float = 1.0
    biomarker_target: float = 0.0
    energy_weight: float = 0.1
    switching_weight: float = 1.0

    def __post_init__(self) -> None:
        for name in ("biomarker_weight", "energy_weight", "switching_weight"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"reward.{name} must be a finite non-negative number, got {value}")
        if not np.isfinite(self.biomarker_target):
            raise ValueError(f"reward.biomarker_target must be finite, got {self.biomarker_target}")

    def __call__(
        self, biomarker: np.ndarray, energy_uj: np.ndarray, switches: np.ndarray
    ) -> np.ndarray:
        """The reward per instance, shape ``(n,)``."""
        return -(
            self.biomarker_weight * np.abs(biomarker - self.biomarker_target)
            + self.energy_weight * energy_uj
            + self.switching_weight * switches
        )


def drift_factors(
    rng: np.random.Generator, n: int, drift: Mapping[str, float]
) -> dict[str, np.ndarray]:
    """Multiplicative factors per drift group and instance, uniform in ``[1 - w, 1 + w]``.

    Parameters
    ----------
    rng : numpy.random.Generator
        The environment's generator (``np_random``).
    n : int
        Instances.
    drift : mapping of str to float
        Group (parameter names joined by ``+``) to half-width ``w`` in ``[0, 1)``.
    """
    return {group: 1.0 + rng.uniform(-w, w, n) for group, w in drift.items()}


def _experiment(config: Any, overrides: Sequence[str], n: int) -> ResolvedExperiment:
    if isinstance(config, ResolvedExperiment):
        raw = config.config.model_dump(mode="json")
        source = config.config.name
    elif isinstance(config, Mapping):
        raw, source = dict(config), "(config)"
    elif isinstance(config, str | Path):
        raw, source = load_raw(config, overrides), str(config)
    else:
        raise TypeError(f"config must be a file path, a dict or a ResolvedExperiment: {config!r}")
    raw = dict(raw)
    raw["n_instances"] = int(n)
    raw.pop("sweep", None)
    return validate_config(raw, source)


class Episodes:
    """An experiment's loop of ``n`` instances, reset and stepped per episode.

    Parameters
    ----------
    config : str, path, dict or ResolvedExperiment
        The experiment (its controller is not used: the agent controls).
    n : int
        Instances (sub-environments).
    overrides : sequence of str
        ``key=value`` overrides, as ``closedloop run --set``.
    features : sequence of str, optional
        Observation columns; default ``biomarker`` then ``sensing.features``.
    action : ActionSpec or mapping, optional
        The action space, or keyword arguments of :meth:`ActionSpec.for_device`.
    reward : Reward or mapping, optional
        Reward weights.
    drift : mapping of str to float, optional
        Between-episode drift in the spirit of DBS-Gym's robustness protocol:
        model parameter names (several joined by ``+`` share one factor) to
        a half-width ``w``; each episode multiplies them by a factor drawn
        uniformly from ``[1 - w, 1 + w]`` per instance. Electrode coupling
        is a model's stimulation gain (``g_E+g_I`` for ``wilson_cowan``,
        ``g_DBS`` for ``stn_gpe``); the pathological frequency scales
        with the inverse of all its time constants and delays (for
        ``stn_gpe``, ``tau_S+tau_G+T_SG+T_GS+T_GG+T_CS``).
    """

    def __init__(
        self,
        config: Any,
        n: int = 1,
        *,
        overrides: Sequence[str] = (),
        features: Sequence[str] | None = None,
        action: ActionSpec | Mapping[str, Any] | None = None,
        reward: Reward | Mapping[str, float] | None = None,
        drift: Mapping[str, float] | None = None,
    ) -> None:
        self.experiment = _experiment(config, overrides, n)
        self.base_loop: ClosedLoop = self.experiment.loop
        if not isinstance(self.base_loop, ClosedLoop):
            raise ValueError("the gymnasium environments run Numba models (not Brian2) for now")
        self.n = int(n)
        cfg = self.experiment.config
        self.duration_s = cfg.duration_s
        self.warmup_s = cfg.warmup_s
        self.default_seed = cfg.seed
        available = ("biomarker", *self.base_loop.sensing.features)
        self.features = tuple(available if features is None else features)
        for name in self.features:
            if name not in available:
                raise ValueError(
                    f"features: {name!r} is not sensed; add it to sensing.features "
                    f"(sensed: {list(available)})"
                )
        if action is None or isinstance(action, Mapping):
            action = ActionSpec.for_device(self.base_loop.device, **dict(action or {}))
        self.action = action
        self.reward = reward if isinstance(reward, Reward) else Reward(**dict(reward or {}))
        self.drift = dict(drift or {})
        params = self.base_loop.model.param_values
        for group, w in self.drift.items():
            for name in group.split("+"):
                if name not in params:
                    raise ValueError(
                        f"drift.{group}: {name!r} is not a parameter of model "
                        f"{self.base_loop.model.name!r}"
                    )
            if not (0.0 <= w < 1.0):
                raise ValueError(f"drift.{group} must be a half-width in [0, 1), got {w}")
        self.loop = self.base_loop
        self.factors_: dict[str, np.ndarray] = {}
        self.n_periods = self.base_loop.clocks.periods_in(self.duration_s)

    def reset(self, seed: int, rng: np.random.Generator) -> np.ndarray:
        """Start an episode: drift, reset, warm up, run the first period.

        Parameters
        ----------
        seed : int
            The loop's root seed for this episode.
        rng : numpy.random.Generator
            Draws the drift factors.

        Returns
        -------
        ndarray, shape (n, len(features))
            The first observation.
        """
        base = self.base_loop
        if self.drift:
            self.factors_ = drift_factors(rng, self.n, self.drift)
            params = {k: v.copy() for k, v in base.model.param_values.items()}
            decl = base.model.parameters
            dt = base.dt_s
            for group, factor in self.factors_.items():
                for name in group.split("+"):
                    params[name] = params[name] * factor
                    if decl[name].whole_steps:  # delays stay whole integration steps
                        params[name] = np.round(params[name] / dt) * dt
            model = base.model.like(params=params)
        else:
            model = base.model
        self.loop = ClosedLoop(
            model,
            base.sensing,
            base.device,
            base.controller,
            control_period_s=base.control_period_s,
            latency_s=base.latency_steps * base.dt_s,
            seed=int(seed),
            engine="python",
        )
        self.loop.reset()
        self.loop.warm_up(self.warmup_s)
        self.periods_ = 0
        self.totals_ = self.loop.totals()
        return self._observe(self.loop.step(None))

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """One control period with the agents' actions.

        Returns
        -------
        observations : ndarray, shape (n, len(features))
        rewards : ndarray, shape (n,)
        truncated : bool
            The episode's duration is reached.
        """
        features = self.loop.step(self.action.command(actions, self.n))
        totals = self.loop.totals()
        energy_uj = (totals["energy_j"] - self.totals_["energy_j"]) * 1e6
        switches = totals["n_switches"] - self.totals_["n_switches"]
        self.totals_ = totals
        rewards = self.reward(features["biomarker"], energy_uj, switches)
        return self._observe(features), rewards, self.periods_ >= self.n_periods

    def _observe(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        self.periods_ += 1
        return np.stack([features[name] for name in self.features], axis=1)
