"""Base class and command contract for closed-loop controllers.

A controller turns biomarker features into stimulation commands, once per
control period, for a whole batch of ``n`` independent instances at a time.

The contract (also checked by :func:`closedloop.testing.controller.check_controller`):

* ``__init__`` only stores its keyword parameters (scikit-learn style); it
  validates nothing that depends on the run.
* ``reset(n, rng)`` is called once before a run with the batch size and a
  :class:`numpy.random.Generator`; state learned while running ends in ``_``.
* ``update(t, features)`` is called at the end of every control period with
  the time ``t`` in seconds (the end of the period just sensed) and a mapping
  from feature name to a float array of shape ``(n,)``. It returns a mapping
  with any of the keys in :data:`COMMAND_KEYS`, each a float array of shape
  ``(n,)``. Keys left out keep the value last commanded.
* Feature arrays belong to the caller and must not be modified.

Commands are requests: the device enforces every limit, ramp and safety
criterion whatever is asked, and records what it delivered.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

__all__ = ["COMMAND_KEYS", "Controller", "real_parameter"]

#: Command keys a controller may return, with their units.
COMMAND_KEYS: dict[str, str] = {
    "amplitude_ma": "mA",
    "frequency_hz": "Hz",
    "pulse_width_us": "us",
    # Pulses to deliver from now on: inf = continuous (the device's default),
    # k = a burst of k pulses (k = 1: a single pulse, e.g. phase-locked), then
    # none; 0 stops. Unlike the other keys, leaving it out (or NaN) changes
    # nothing rather than repeating the last value.
    "pulses": "1",
}


class Controller:
    """Base class of every controller.

    Subclasses set :attr:`name`, :attr:`references` and
    :attr:`required_features`, store their parameters in ``__init__`` and
    implement :meth:`reset` and :meth:`update` vectorised over the batch.

    Attributes
    ----------
    name : str
        Registry name, as used in an experiment file.
    required_features : tuple of str
        Feature names :meth:`update` reads from its ``features`` argument.
    references : tuple of str
        Literature the controller follows.
    """

    name: ClassVar[str] = "controller"
    required_features: ClassVar[tuple[str, ...]] = ("biomarker",)
    references: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: Any) -> None:
        for key, value in params.items():
            setattr(self, key, value)

    def get_params(self) -> dict[str, Any]:
        """Return the constructor parameters (those without a trailing ``_``).

        Returns
        -------
        dict
            Parameter name to value.
        """
        return {
            k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")
        }

    def reset(self, n: int, rng: np.random.Generator) -> None:
        """Prepare for a run of ``n`` instances.

        Parameters
        ----------
        n : int
            Batch size.
        rng : numpy.random.Generator
            Generator for any randomness the controller uses.
        """
        self.n_ = int(n)
        self.rng_ = rng

    def update(self, t: float, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Return the command for the next control period.

        Parameters
        ----------
        t : float
            Time in seconds at the end of the control period just sensed.
        features : mapping of str to ndarray
            Biomarker features, each of shape ``(n,)``.

        Returns
        -------
        dict of str to ndarray
            Any of :data:`COMMAND_KEYS`, each of shape ``(n,)``.
        """
        raise NotImplementedError

    def compiled(self) -> tuple[int, np.ndarray, np.ndarray] | None:
        """The controller as a program for the compiled kernels, or None.

        Called after :meth:`reset`. Built-in controllers return
        ``(kind, params, state)`` (see :mod:`closedloop.controllers.compiled`)
        so the loop can run whole chunks of periods in one compiled call;
        the default, None, keeps :meth:`update` in Python. In a compiled run
        the controller's own ``_``-suffixed state is not updated.

        Returns
        -------
        tuple or None
            Kind, parameters of shape ``(n, P)`` and state of shape ``(n, S)``.
        """
        return None

    def thresholds(self) -> dict[str, float]:
        """Biomarker levels worth drawing on a figure (name to value).

        Returns
        -------
        dict of str to float
            Empty unless the controller has thresholds or a set point.
        """
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def real_parameter(name: str, value: object, unit: str, sign: str = "any") -> float:
    """Return ``value`` as a float, or raise ValueError naming the parameter.

    ``sign`` is ``"any"``, ``"non-negative"`` or ``"positive"``.
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    x = float(value) if ok else math.nan
    bad_sign = (sign == "non-negative" and x < 0) or (sign == "positive" and x <= 0)
    if not math.isfinite(x) or bad_sign:
        kind = "finite number" if sign == "any" else f"finite {sign} number"
        raise ValueError(f"{name} must be a {kind} of {unit}, got {value!r}.")
    return x
