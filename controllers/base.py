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
  ``(n,)``. Keys left out keep the value last commanded. A device modality
  may read its own key in a slot's place (TMS: ``intensity_pct_rmt`` for the
  amplitude; :data:`closedloop.device.config.MODALITY_COMMANDS`). A controller may
  also command a drug layer's doses (:data:`DOSE_COMMAND`:
  ``dose_<drug>_mg`` and ``dose_<drug>_route``; see
  :mod:`closedloop.drugs.process`), which that layer checks against its
  safety limits.
* Feature arrays belong to the caller and must not be modified.

Commands are requests: the device enforces every limit, ramp and safety
criterion whatever is asked, and records what it delivered.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

import numpy as np

__all__ = [
    "COMMAND_KEYS",
    "DOCS",
    "DOSE_COMMAND",
    "STIMULATION_SETTINGS",
    "Controller",
    "check_order",
    "check_settings",
    "fill_doc",
    "fixed_command",
    "real_parameter",
    "twin_program",
]

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

#: Command keys for a drug layer's doses: ``dose_<drug>_mg`` (amount, mg; 0 for
#: none) and ``dose_<drug>_route`` (0 oral, 1 intravenous).
DOSE_COMMAND = re.compile(r"^dose_[A-Za-z_][A-Za-z0-9_]*_(mg|route)$")

#: Unit and sign of each stimulation setting, checked alike by every controller.
STIMULATION_SETTINGS: dict[str, tuple[str, str]] = {
    "amplitude_ma": ("mA", "non-negative"),
    "min_amplitude_ma": ("mA", "non-negative"),
    "max_amplitude_ma": ("mA", "non-negative"),
    "frequency_hz": ("Hz", "positive"),
    "pulse_width_us": ("microseconds", "positive"),
}

#: Docstring fragments shared by the built-in controllers, MNE-style: a line
#: holding only ``%(key)s`` is replaced by the fragment by :func:`fill_doc`.
DOCS: dict[str, str] = {
    "frequency_hz": """frequency_hz : float, default 130.0
    Pulse frequency in Hz, positive.""",
    "pulse_width_us": """pulse_width_us : float, default 60.0
    Pulse width in microseconds, positive.""",
    "n_": """n_ : int
    Batch size given to :meth:`reset`.""",
    "t_prev_": """t_prev_ : float
    Time in seconds of the last update (0 after :meth:`reset`).""",
    "reset_parameters": """Parameters
----------
n : int
    Batch size.
rng : numpy.random.Generator
    Unused: the controller is deterministic.""",
    "reset_raises": """Raises
------
ValueError
    If a parameter is out of its range.""",
    "update_t": """t : float
    Time in seconds at the end of the control period just sensed.""",
    "update_biomarker": """Parameters
----------
t : float
    Time in seconds at the end of the control period just sensed.
features : mapping of str to ndarray
    Must contain ``biomarker``, shape ``(n,)``.""",
    "update_feature": """Parameters
----------
t : float
    Time in seconds at the end of the control period just sensed.
features : mapping of str to ndarray
    Must contain :attr:`feature`, shape ``(n,)``.""",
    "returns_command": """Returns
-------
dict of str to ndarray
    ``amplitude_ma``, ``frequency_hz`` and ``pulse_width_us``, shape ``(n,)``.""",
}

_PLACEHOLDER = re.compile(r"^([ \t]*)%\((\w+)\)s[ \t]*$", re.MULTILINE)

_Documented = TypeVar("_Documented", bound=Callable[..., Any])


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
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        x = float(value)
    else:
        x = math.nan
    bad_sign = (sign == "non-negative" and x < 0) or (sign == "positive" and x <= 0)
    if not math.isfinite(x) or bad_sign:
        kind = "finite number" if sign == "any" else f"finite {sign} number"
        raise ValueError(f"{name} must be a {kind} of {unit}, got {value!r}.")
    return x


def check_settings(controller: Controller, *names: str) -> dict[str, float]:
    """Check stimulation settings of ``controller`` by name, in the order given.

    Parameters
    ----------
    controller : Controller
        Holds each setting as the attribute of the same name.
    *names : str
        Keys of :data:`STIMULATION_SETTINGS`.

    Returns
    -------
    dict of str to float
        Each setting as a float, in the order of ``names``.

    Raises
    ------
    ValueError
        Naming the first setting that is not a finite number of its sign.
    """
    return {
        name: real_parameter(name, getattr(controller, name), *STIMULATION_SETTINGS[name])
        for name in names
    }


def check_order(low_name: str, low: float, high_name: str, high: float) -> None:
    """Raise ValueError naming both parameters if ``low`` exceeds ``high``."""
    if low > high:
        raise ValueError(f"{low_name} ({low!r}) must not exceed {high_name} ({high!r}).")


def fixed_command(n: int, settings: Mapping[str, float], *names: str) -> dict[str, np.ndarray]:
    """Read-only command arrays of shape ``(n,)``, one per name, in the order given.

    A controller returns the same arrays on every call for the settings that
    do not change during a run, so an update costs no allocation for them.

    Parameters
    ----------
    n : int
        Batch size.
    settings : mapping of str to float
        Value of each setting (e.g. from :func:`check_settings`).
    *names : str
        Command keys to build, all of ``settings`` when none are given.

    Returns
    -------
    dict of str to ndarray
        ``np.full(n, settings[name])`` for each name, not writeable.
    """
    command = {}
    for name in names or tuple(settings):
        value = np.full(n, settings[name])
        value.flags.writeable = False
        command[name] = value
    return command


def twin_program(
    kind: int, row: list[float], state: np.ndarray
) -> tuple[int, np.ndarray, np.ndarray]:
    """The ``(kind, params, state)`` program of :meth:`Controller.compiled`.

    Parameters
    ----------
    kind : int
        Program kind (:mod:`closedloop.controllers.compiled`).
    row : list of float
        Parameters, the same for every instance.
    state : ndarray of shape (n, S)
        Per-instance state.

    Returns
    -------
    tuple
        ``kind``, ``row`` tiled to shape ``(n, P)`` and ``state``.
    """
    params = np.tile(np.asarray(row, dtype=float), (state.shape[0], 1))
    return kind, params, state


def fill_doc(obj: _Documented) -> _Documented:
    """Fill the ``%(key)s`` lines of docstrings with :data:`DOCS` fragments.

    A line holding only ``%(key)s`` becomes the fragment, every line of it
    indented like the placeholder. On a class, the docstrings of the
    methods it defines are filled too.

    Parameters
    ----------
    obj : class or function
        What to document.

    Returns
    -------
    class or function
        ``obj``, its docstrings filled.
    """

    def fill(doc: str | None) -> str | None:
        if doc is None:  # python -OO
            return None

        def fragment(match: re.Match[str]) -> str:
            indent, key = match.groups()
            return "\n".join(indent + line if line else line for line in DOCS[key].splitlines())

        return _PLACEHOLDER.sub(fragment, doc)

    obj.__doc__ = fill(obj.__doc__)
    if isinstance(obj, type):
        for member in vars(obj).values():
            if callable(member) and getattr(member, "__doc__", None):
                member.__doc__ = fill(member.__doc__)
    return obj
