"""A trained policy as a controller, and the action spaces agents act in.

:class:`ActionSpec` says which stimulation settings an agent chooses (a box
over amplitude, optionally frequency and pulse width, or a discrete on/off)
and turns an action into a command. The gymnasium environments
(:mod:`closedloop.gym`) and :class:`Policy` share it, so that a policy
stepped through an environment and the same policy run as a controller send
the device the same commands, bit for bit.

:class:`Policy` wraps any callable ``policy(observations) -> actions`` (for
example ``lambda obs: sb3_model.predict(obs, deterministic=True)[0]``) as a
:class:`~closedloop.controllers.Controller`, so that it runs from an
experiment file (``controller.params.policy`` as a dotted path) and enters
the leaderboard.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from closedloop.controllers.base import Controller, real_parameter
from closedloop.core.plugins import resolve_object

__all__ = ["CONTROLS", "ActionSpec", "Policy"]

#: Settings an agent may choose, in the order they appear in a box action.
CONTROLS: tuple[str, ...] = ("amplitude_ma", "frequency_hz", "pulse_width_us")


class ActionSpec:
    """What an agent chooses, its bounds, and the command an action means.

    Parameters
    ----------
    controls : sequence of str
        Settings in a box action, a non-empty ordered subset of
        :data:`CONTROLS` (``amplitude_ma`` first when present).
    discrete : bool
        A discrete on/off action instead of a box: 1 stimulates at
        ``amplitude_ma``, 0 stops (amplitude 0 mA).
    amplitude_ma : float
        The on amplitude of a discrete action, mA.
    frequency_hz, pulse_width_us : float
        The settings the agent does not choose (Hz, us).
    amplitude_max_ma : float
        Upper bound of the amplitude box, mA (the device's ``amplitude_max_ma``).
    frequency_range_hz, pulse_width_range_us : tuple of float
        Bounds of the frequency (Hz) and pulse-width (us) boxes (the device's limits).

    Notes
    -----
    A box action outside its bounds is clipped to them, NaN to the lower
    bound; the device enforces its own limits (ramp, charge density) on top.
    """

    def __init__(
        self,
        controls: Sequence[str] = ("amplitude_ma",),
        *,
        discrete: bool = False,
        amplitude_ma: float = 2.0,
        frequency_hz: float = 130.0,
        pulse_width_us: float = 60.0,
        amplitude_max_ma: float = 5.0,
        frequency_range_hz: tuple[float, float] = (2.0, 250.0),
        pulse_width_range_us: tuple[float, float] = (20.0, 450.0),
    ) -> None:
        controls = tuple(controls)
        if discrete:
            controls = ()
        elif not controls or any(c not in CONTROLS for c in controls):
            raise ValueError(
                f"controls must be a non-empty subset of {list(CONTROLS)}, got {list(controls)}"
            )
        elif len(set(controls)) != len(controls):
            raise ValueError(f"controls lists a setting twice: {list(controls)}")
        self.controls = controls
        self.discrete = bool(discrete)
        self.fixed = {
            "amplitude_ma": real_parameter("amplitude_ma", amplitude_ma, "mA", "non-negative"),
            "frequency_hz": real_parameter("frequency_hz", frequency_hz, "Hz", "positive"),
            "pulse_width_us": real_parameter("pulse_width_us", pulse_width_us, "us", "positive"),
        }
        bounds = {
            "amplitude_ma": (0.0, real_parameter("amplitude_max_ma", amplitude_max_ma, "mA")),
            "frequency_hz": tuple(float(v) for v in frequency_range_hz),
            "pulse_width_us": tuple(float(v) for v in pulse_width_range_us),
        }
        self.low = np.array([bounds[c][0] for c in controls])
        self.high = np.array([bounds[c][1] for c in controls])

    @classmethod
    def for_device(cls, device: Any, **kwargs: Any) -> ActionSpec:
        """An action spec whose box bounds are the limits of ``device``."""
        return cls(
            amplitude_max_ma=device.amplitude_max_ma,
            frequency_range_hz=(device.frequency_min_hz, device.frequency_max_hz),
            pulse_width_range_us=(device.pulse_width_min_us, device.pulse_width_max_us),
            **kwargs,
        )

    def command(self, actions: np.ndarray, n: int) -> dict[str, np.ndarray]:
        """The command of a batch of actions.

        Parameters
        ----------
        actions : ndarray
            Shape ``(n, len(controls))`` for a box, ``(n,)`` of 0/1 for on/off.
        n : int
            Batch size.

        Returns
        -------
        dict of str to ndarray
            ``amplitude_ma``, ``frequency_hz`` and ``pulse_width_us``, each ``(n,)``.
        """
        out = {key: np.full(n, value) for key, value in self.fixed.items()}
        if self.discrete:
            on = np.asarray(actions).reshape(n) != 0
            out["amplitude_ma"] = np.where(on, self.fixed["amplitude_ma"], 0.0)
            return out
        a = np.asarray(actions, dtype=np.float64).reshape(n, len(self.controls))
        a = np.clip(np.nan_to_num(a, nan=-math.inf), self.low, self.high)
        for c, key in enumerate(self.controls):
            out[key] = np.ascontiguousarray(a[:, c])
        return out


class Policy(Controller):
    """Any callable policy (observations to actions) as a controller.

    Parameters
    ----------
    policy : callable or str
        ``policy(observations) -> actions`` over the batch: observations of
        shape ``(n, len(features))`` in the order of ``features``; actions of
        shape ``(n, len(controls))`` (box) or ``(n,)`` (on/off). A string is
        a dotted path to such a callable (or to a class or factory taking no
        argument that returns one).
    features : sequence of str
        Observation columns, ``biomarker`` and sensing features, in order.
    controls, discrete, amplitude_ma, frequency_hz, pulse_width_us
        As in :class:`ActionSpec`.
    amplitude_max_ma : float
        Upper bound of the amplitude box, mA.

    Notes
    -----
    With the same ``features`` and action settings as an environment of
    :mod:`closedloop.gym`, a run with this controller equals, bit for bit,
    the episode of that environment stepped with the same policy
    (``tests/test_gym.py``).
    """

    name = "policy"
    references = (
        "Raffin et al. 2021, J Mach Learn Res 22:1-8 (Stable-Baselines3, whose "
        "predict() is such a callable)",
    )

    def __init__(
        self,
        *,
        policy: Callable[[np.ndarray], Any] | str = "",
        features: Sequence[str] = ("biomarker",),
        controls: Sequence[str] = ("amplitude_ma",),
        discrete: bool = False,
        amplitude_ma: float = 2.0,
        frequency_hz: float = 130.0,
        pulse_width_us: float = 60.0,
        amplitude_max_ma: float = 5.0,
    ) -> None:
        self.policy = policy
        self.features = tuple(features)
        self.controls = tuple(controls)
        self.discrete = discrete
        self.amplitude_ma = amplitude_ma
        self.frequency_hz = frequency_hz
        self.pulse_width_us = pulse_width_us
        self.amplitude_max_ma = amplitude_max_ma

    @property
    def required_features(self) -> tuple[str, ...]:  # type: ignore[override]
        """The observation columns."""
        return self.features

    def reset(self, n: int, rng: np.random.Generator) -> None:
        """Resolve the policy and the action spec.

        Parameters
        ----------
        n : int
            Batch size.
        rng : numpy.random.Generator
            Unused: a stochastic policy carries its own generator.

        Raises
        ------
        ValueError
            If the policy cannot be resolved or a setting is out of range.
        """
        self.n_ = int(n)
        if not self.features:
            raise ValueError("features must name at least one feature")
        self.policy_ = _callable(self.policy)
        self.spec_ = ActionSpec(
            self.controls,
            discrete=bool(self.discrete),
            amplitude_ma=self.amplitude_ma,
            frequency_hz=self.frequency_hz,
            pulse_width_us=self.pulse_width_us,
            amplitude_max_ma=self.amplitude_max_ma,
        )

    def update(self, t: float, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Ask the policy for the next action.

        Parameters
        ----------
        t : float
            Time in seconds at the end of the control period just sensed.
        features : mapping of str to ndarray
            Must contain every name of :attr:`features`, shape ``(n,)``.

        Returns
        -------
        dict of str to ndarray
            ``amplitude_ma``, ``frequency_hz`` and ``pulse_width_us``, shape ``(n,)``.
        """
        obs = np.stack([features[name] for name in self.features], axis=1)
        return self.spec_.command(self.policy_(obs), self.n_)


def _callable(policy: Any) -> Callable[[np.ndarray], Any]:
    if isinstance(policy, str):
        if not policy:
            raise ValueError("policy is required: a callable or a dotted path to one")
        try:
            policy = resolve_object(policy)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ValueError(f"policy {policy!r} cannot be imported: {exc}") from None
        if isinstance(policy, type):
            policy = policy()
    if not callable(policy):
        raise ValueError(f"policy must be callable, got {policy!r}")
    return policy
