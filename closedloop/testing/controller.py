"""Conformance checks for controllers.

In the spirit of scikit-learn's ``check_estimator`` and Gymnasium's
``check_env``: :func:`check_controller` runs a controller (a class or an
instance) through short synthetic runs and raises :class:`ConformanceError`
listing everything it gets wrong about the contract of
:class:`closedloop.controllers.Controller`; :func:`conformance_report` returns
the same list without raising.

What is checked
---------------
* The class subclasses :class:`~closedloop.controllers.Controller` and can be
  created with its default parameters.
* ``__init__`` only stores its parameters: every ``__init__`` parameter is an
  attribute of the same name, nothing else is, no attribute ending in ``_``
  is set, and ``type(c)(**c.get_params())`` rebuilds an equal controller.
  Running does not add attributes that ``get_params`` would return.
* ``reset(n, rng)`` is accepted and ``thresholds()`` returns finite numbers.
* ``update`` returns a mapping whose keys are command keys (the first
  command not empty), each value a float :class:`numpy.ndarray` of shape
  ``(n,)``, finite and non-negative, for a random-walk biomarker (stretched
  over the controller's ``thresholds()``, or its parameters named
  ``*threshold*``/``*setpoint*``, from half the lowest to 1.5 times the
  highest so that it crosses each; swept over 1e-2 to 1e4 when there are
  none), a biomarker of zeros and a biomarker of large values (around 1e6).
* ``update`` does not modify its feature arrays (they are passed read-only
  and compared afterwards), nor keep references to them between calls.
* Batch independence: an instance's commands equal those it gets when run
  alone (``n = 1``) on the same features.
* Determinism: two copies reset with the same seed give identical commands.
* ``reset`` clears the state: a second run after ``reset`` equals the first.
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
import types
from collections.abc import Mapping
from typing import Any

import numpy as np

from closedloop.controllers.base import COMMAND_KEYS, DOSE_COMMAND, Controller
from closedloop.device.config import MODALITY_COMMANDS
from closedloop.testing.errors import ConformanceError

__all__ = ["ConformanceError", "check_controller", "conformance_report"]

#: Keys a device modality reads in a slot's place (TMS: ``intensity_pct_rmt``).
_ALIASES = [alias for keys in MODALITY_COMMANDS.values() for alias in keys.aliases]

#: Control period in seconds of the synthetic runs.
_PERIOD_S = 0.01
#: Scale of the "large values" biomarker.
_LARGE = 1e6

#: One run: per step, command name to a copy of the returned array (None
#: where the step returned no usable mapping).
_Run = list[dict[str, np.ndarray] | None]


def check_controller(
    controller_or_class: Controller | type[Controller],
    n: int = 4,
    seed: int = 0,
    n_steps: int = 200,
) -> None:
    """Check that a controller follows the controller contract.

    Parameters
    ----------
    controller_or_class : Controller or type
        A controller instance, or a class to instantiate with its default
        parameters. An instance is not modified: the checks run on copies.
    n : int, default 4
        Batch size of the synthetic runs (at least 2 to check batch
        independence).
    seed : int, default 0
        Seed of the synthetic features and of the generator given to
        ``reset``.
    n_steps : int, default 200
        Control periods per synthetic run (of 10 ms each).

    Raises
    ------
    ConformanceError
        Listing every problem found, if there is any.

    See Also
    --------
    conformance_report : The same checks, returning the problems.

    Notes
    -----
    The checks are listed in the module docstring. A controller that draws
    random numbers passes the batch-independence check only if each
    instance's draws do not depend on ``n`` (for example one generator per
    instance, from ``rng.spawn(n)``).

    Examples
    --------
    >>> from closedloop.controllers import OnOff
    >>> check_controller(OnOff)
    >>> check_controller(OnOff(threshold=2.0, ramp_time_s=0.1))
    """
    problems = conformance_report(controller_or_class, n=n, seed=seed, n_steps=n_steps)
    if problems:
        raise ConformanceError(problems, _label(controller_or_class))


def conformance_report(
    controller_or_class: Controller | type[Controller],
    n: int = 4,
    seed: int = 0,
    n_steps: int = 200,
) -> list[str]:
    """Return the problems :func:`check_controller` would raise for.

    Parameters are those of :func:`check_controller`.

    Returns
    -------
    list of str
        One plain sentence per problem found; empty if the controller
        conforms.

    Raises
    ------
    ValueError
        If ``n`` or ``n_steps`` is not a positive integer.
    """
    if not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    if not isinstance(n_steps, numbers.Integral) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}.")
    return _Checker(int(n), seed, int(n_steps)).run(controller_or_class)


def _mutation_attempt(exc: Exception, where: str) -> str | None:
    """What ``update`` tried on its read-only features, or None for another error."""
    if isinstance(exc, ValueError) and "read-only" in str(exc):
        return f"writing into it raised {exc!r} {where}"
    if isinstance(exc, TypeError) and "item assignment" in str(exc):
        return f"assigning to the features mapping {where}"
    return None


def _label(controller_or_class: object) -> str:
    if isinstance(controller_or_class, type):
        return controller_or_class.__name__
    try:
        return repr(controller_or_class)
    except Exception:  # a broken __repr__ must not hide the real problems
        return type(controller_or_class).__name__


def _same(a: Any, b: Any) -> bool:
    """Parameter equality that tolerates arrays and NaN."""
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        try:
            return bool(np.array_equal(a, b, equal_nan=True))
        except TypeError:
            return bool(np.array_equal(a, b))
    try:
        if bool(a == b):
            return True
    except Exception:
        return False
    return isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)


class _Checker:
    """Runs the checks and collects one message per kind of problem."""

    def __init__(self, n: int, seed: int, n_steps: int) -> None:
        self.n = n
        self.seed = seed
        self.n_steps = n_steps
        self.problems: dict[str, str] = {}  # kind -> first message of that kind

    def report(self, kind: str, message: str) -> None:
        self.problems.setdefault(kind, message)

    # -- construction and parameters ---------------------------------------

    def run(self, controller_or_class: Any) -> list[str]:
        if isinstance(controller_or_class, type):
            cls = controller_or_class
            if not issubclass(cls, Controller):
                self.report(
                    "subclass",
                    f"{cls.__name__} is not a subclass of closedloop.controllers.Controller.",
                )
            try:
                original = cls()
            except Exception as exc:
                self.report(
                    "default",
                    f"{cls.__name__}() could not be created with default parameters "
                    f"({exc!r}); give every __init__ parameter a default.",
                )
                return list(self.problems.values())
            fresh = True
        else:
            original = controller_or_class
            cls = type(original)
            fresh = False
            if not isinstance(original, Controller):
                self.report(
                    "subclass",
                    f"{cls.__name__} is not a subclass of closedloop.controllers.Controller.",
                )
        params = self.check_params(cls, original, fresh)
        self.check_runs(cls, original, params)
        return list(self.problems.values())

    def get_params(self, controller: Any) -> dict[str, Any] | None:
        try:
            params = controller.get_params()
        except Exception as exc:
            self.report("get_params", f"get_params() raised {exc!r}.")
            return None
        if not isinstance(params, Mapping):
            self.report("get_params", f"get_params() returned {type(params).__name__}, not a dict.")
            return None
        return dict(params)

    def check_params(self, cls: type[Any], original: Any, fresh: bool) -> dict[str, Any] | None:
        params = self.get_params(original)
        if params is None:
            return None
        try:
            signature = inspect.signature(cls.__init__)
        except (TypeError, ValueError):  # pragma: no cover - builtins only
            return params
        named = [
            p.name
            for p in list(signature.parameters.values())[1:]
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
        for name in named:
            if name not in params:
                self.report(
                    f"unstored:{name}",
                    f"__init__ parameter {name!r} is not stored as attribute {name!r}, so "
                    "get_params() cannot return it; store every parameter unchanged "
                    "under its own name.",
                )
        if not takes_kwargs:
            for name in params:
                if name not in named:
                    where = "__init__" if fresh else "__init__ (or an earlier run)"
                    self.report(
                        f"extra:{name}",
                        f"attribute {name!r} is set by {where} but is not an __init__ "
                        "parameter; __init__ should only store its parameters, and state "
                        "set in reset() should end in '_'.",
                    )
        try:
            clone = cls(**params)
        except Exception as exc:
            self.report(
                "roundtrip",
                f"type(c)(**c.get_params()) raised {exc!r}; get_params() must return "
                "exactly the __init__ parameters.",
            )
            return params
        if fresh:
            self.check_init_state(original)
        self.check_init_state(clone)
        cloned = self.get_params(clone)
        if cloned is not None:
            for name, value in params.items():
                if name in cloned and not _same(value, cloned[name]):
                    self.report(
                        f"altered:{name}",
                        f"__init__ changes parameter {name!r}: given {value!r}, it stores "
                        f"{cloned[name]!r}; store parameters unchanged and validate them "
                        "in reset().",
                    )
        return params

    def check_init_state(self, controller: Any) -> None:
        for name in getattr(controller, "__dict__", {}):
            if name.endswith("_") and not name.startswith("__"):
                self.report(
                    f"init_state:{name}",
                    f"__init__ sets {name!r}; attributes ending in '_' are state, to be "
                    "set in reset().",
                )

    # -- runs -----------------------------------------------------------------

    def copy_of(self, cls: type, original: Any, params: dict[str, Any] | None) -> Any:
        try:
            return copy.deepcopy(original)
        except Exception:
            pass
        if params is not None:
            try:
                return cls(**params)
            except Exception:
                pass
        return None

    def _series(
        self, rng: np.random.Generator, names: list[str], levels: list[float]
    ) -> dict[str, dict[str, np.ndarray]]:
        """Per series label, feature name to values of shape (n_steps, n).

        The random walk of each instance is stretched over its controller's
        levels (half the lowest to 1.5 times the highest), so that it crosses
        every one of them: a walk of order 1 never reaches a threshold of 40.
        Without known levels it is swept over six decades (1e-2 to 1e4).
        """
        shape = (self.n_steps, self.n)
        raw = {name: np.abs(1.0 + np.cumsum(rng.normal(0.0, 0.1, shape), axis=0)) for name in names}
        walks = {}
        for name, w in raw.items():
            if levels:
                low, high = 0.5 * min(levels), 1.5 * max(levels)
                if high <= low:  # thresholds at 0 or below
                    low, high = min(levels) - 1.0, max(levels) + 1.0
                span = np.ptp(w, axis=0)
                walks[name] = low + (high - low) * (w - w.min(axis=0)) / np.where(
                    span > 0, span, 1.0
                )
            else:
                walks[name] = w * np.logspace(-2.0, 4.0, self.n_steps)[:, None]
        return {
            "random-walk": walks,
            "zeros": {name: np.zeros(shape) for name in names},
            "large-values": {name: _LARGE * (1.0 + raw[name]) for name in names},
        }

    def check_runs(self, cls: type, original: Any, params: dict[str, Any] | None) -> None:
        controller = self.copy_of(cls, original, params)
        if controller is None:
            self.report("copy", "the controller could neither be deep-copied nor rebuilt.")
            return
        names = ["biomarker"]
        required = getattr(controller, "required_features", ("biomarker",))
        if not (isinstance(required, tuple) and all(isinstance(r, str) for r in required)):
            self.report(
                "required_features",
                f"required_features must be a tuple of str, got {required!r}.",
            )
        else:
            names += [r for r in required if r not in names]
        n = self.n
        if not self.reset(controller, n):
            return
        levels = self.check_thresholds(controller) or _level_params(params)
        series = self._series(np.random.default_rng(self.seed), names, levels)
        first = self.run_series(controller, series["random-walk"], "random-walk")
        for label in ("zeros", "large-values"):
            if self.reset(controller, n):
                self.run_series(controller, series[label], label)
        second = None
        if self.reset(controller, n):
            second = self.run_series(controller, series["random-walk"], "random-walk")
        if first is None:
            return

        # Determinism, then reset clearing the state (meaningful only if deterministic).
        runs = []
        for _ in range(2):
            other = self.copy_of(cls, original, params)
            if other is not None and self.reset(other, n):
                runs.append(self.run_series(other, series["random-walk"], "random-walk"))
        deterministic = True
        if len(runs) == 2 and runs[0] is not None and runs[1] is not None:
            diff = _first_difference(runs[0], runs[1], exact=True)
            if diff is not None:
                deterministic = False
                self.report(
                    "determinism",
                    "not deterministic: two copies reset with the same seed gave different "
                    f"commands ({diff}); draw randomness only from the rng given to reset().",
                )
        if deterministic and second is not None:
            diff = _first_difference(first, second, exact=True)
            if diff is not None:
                self.report(
                    "reset_state",
                    "reset does not clear state: a second run after reset(n, rng) with the "
                    f"same seed differs from the first ({diff}); reinitialise every "
                    "attribute that update() changes in reset().",
                )

        # Feature buffers reused by the caller between calls.
        if deterministic:
            other = self.copy_of(cls, original, params)
            if other is not None and self.reset(other, n):
                reused = self.run_series(
                    other, series["random-walk"], "random-walk", reuse_buffers=True
                )
                if reused is not None:
                    diff = _first_difference(first, reused, exact=True)
                    if diff is not None:
                        self.report(
                            "reference",
                            "update keeps a reference to a feature array between calls: "
                            "its commands change when the caller reuses its feature buffers "
                            f"({diff}); copy what you keep (np.copy or out=).",
                        )

        # Batch independence (meaningful only if deterministic): instances 0
        # and n - 1 run alone.
        if deterministic and n >= 2:
            for i in sorted({0, n - 1}):
                other = self.copy_of(cls, original, params)
                if other is None or not self.reset(other, 1):
                    continue
                alone_series = {k: v[:, i : i + 1] for k, v in series["random-walk"].items()}
                alone = self.run_series(other, alone_series, "random-walk")
                if alone is None:
                    continue
                diff = _first_difference(first, alone, instance=i)
                if diff is not None:
                    self.report(
                        "batch",
                        f"batch independence: instance {i}'s commands depend on other "
                        f"instances' features: run alone (n=1) on the same features it gets "
                        f"different commands ({diff}); compute each instance from its own "
                        "features only.",
                    )
                    break

        after = self.get_params(controller)
        if params is not None and after is not None:
            for name in after:
                if name not in params:
                    self.report(
                        f"run_attr:{name}",
                        f"reset() or update() sets attribute {name!r}, which get_params() "
                        "then returns as a parameter; name state with a trailing '_'.",
                    )

    def reset(self, controller: Any, n: int) -> bool:
        try:
            controller.reset(n, np.random.default_rng(self.seed))
        except Exception as exc:
            self.report("reset", f"reset(n={n}, rng) raised {exc!r}.")
            return False
        return True

    def check_thresholds(self, controller: Any) -> list[float]:
        """Check ``thresholds()``; its finite values (empty when it is wrong)."""
        try:
            levels = controller.thresholds()
        except Exception as exc:
            self.report("thresholds", f"thresholds() raised {exc!r}.")
            return []
        if not isinstance(levels, Mapping) or not all(
            isinstance(k, str)
            and isinstance(v, numbers.Real)
            and not isinstance(v, bool)
            and math.isfinite(v)
            for k, v in levels.items()
        ):
            self.report(
                "thresholds",
                f"thresholds() must return a dict of str to finite float, got {levels!r}.",
            )
            return []
        return [float(v) for v in levels.values()]

    def run_series(
        self,
        controller: Any,
        series: dict[str, np.ndarray],
        label: str,
        reuse_buffers: bool = False,
    ) -> _Run | None:
        """Run one series; on a read-only error, report it and rerun writeable."""
        result = self._run(controller, series, label, read_only=True, reuse_buffers=reuse_buffers)
        if isinstance(result, str) and result == "read-only":
            n = series["biomarker"].shape[1]
            if not self.reset(controller, n):
                return None
            result = self._run(
                controller, series, label, read_only=False, reuse_buffers=reuse_buffers
            )
        return None if isinstance(result, str) else result

    def _run(
        self,
        controller: Any,
        series: dict[str, np.ndarray],
        label: str,
        *,
        read_only: bool,
        reuse_buffers: bool,
    ) -> _Run | str | None:
        n = series["biomarker"].shape[1]
        buffers = {name: np.empty(n) for name in series}
        run: _Run = []
        for k in range(self.n_steps):
            where = f"at step {k + 1} of the {label} run"
            if reuse_buffers:
                for name, buffer in buffers.items():
                    buffer.flags.writeable = True
                    buffer[...] = series[name][k]
                    buffer.flags.writeable = not read_only
                arrays = buffers
            else:
                arrays = {name: series[name][k].copy() for name in series}
                for array in arrays.values():
                    array.flags.writeable = not read_only
            features: Mapping[str, np.ndarray] = (
                types.MappingProxyType(dict(arrays)) if read_only else dict(arrays)
            )
            try:
                command = controller.update((k + 1) * _PERIOD_S, features)
            except Exception as exc:
                mutation = _mutation_attempt(exc, where) if read_only else None
                if mutation is not None:
                    self.report_mutation(mutation)
                    return "read-only"
                self.report("update", f"update raised {exc!r} {where}.")
                return "error"
            if not read_only:
                self.check_unmodified(features, series, k, where)
            run.append(self.check_command(command, n, k, where))
        return run

    def report_mutation(self, how: str) -> None:
        self.report(
            "mutation",
            f"update modifies its input features ({how}); feature arrays belong to the "
            "caller: copy before changing them.",
        )

    def check_unmodified(
        self, features: Mapping[str, np.ndarray], series: dict, k: int, where: str
    ) -> None:
        if set(features) != set(series):
            self.report_mutation(f"the features mapping changed keys {where}")
        for name, values in series.items():
            got = features.get(name)
            if got is None or not np.array_equal(got, values[k]):
                self.report_mutation(f"{name!r} changed {where}")

    def check_command(self, command: Any, n: int, k: int, where: str) -> dict | None:
        if not isinstance(command, Mapping):
            self.report(
                "mapping",
                f"update returned {type(command).__name__}, not a mapping of command name "
                f"to array, {where}; return e.g. {{'amplitude_ma': array of shape (n,)}}.",
            )
            return None
        unknown = [
            key
            for key in command
            if key not in COMMAND_KEYS and key not in _ALIASES and not DOSE_COMMAND.match(key)
        ]
        if unknown:
            allowed = ", ".join([*COMMAND_KEYS, *_ALIASES])
            allowed += " and dose_<drug>_mg / dose_<drug>_route"
            self.report(
                "keys",
                f"update returned unknown command key(s) {', '.join(map(repr, unknown))} "
                f"{where}; allowed keys are {allowed}.",
            )
        if k == 0 and not command:
            self.report("empty", "the first command is empty: it must command something.")
        kept: dict[str, np.ndarray] = {}
        for key in COMMAND_KEYS:
            if key not in command:
                continue
            value = command[key]
            if not isinstance(value, np.ndarray):
                self.report(
                    f"type:{key}",
                    f"{key!r} is a {type(value).__name__}, not a numpy array of shape "
                    f"({n},), {where}.",
                )
                continue
            if not np.issubdtype(value.dtype, np.floating):
                self.report(
                    f"dtype:{key}",
                    f"{key!r} has dtype {value.dtype}, not a float dtype (float64), {where}.",
                )
            if value.shape != (n,):
                self.report(
                    f"shape:{key}",
                    f"{key!r} has shape {value.shape}, not ({n},), {where}.",
                )
                continue
            try:
                finite = np.isfinite(value)
            except TypeError:
                continue
            if key == "pulses":
                # NaN means "no change" and inf "continuous": both are valid.
                finite = ~(np.isinf(value) & (value < 0))
            if not finite.all():
                self.report(
                    f"finite:{key}",
                    f"{key!r} is not finite ({float(value[~finite][0])!r}) for a finite biomarker "
                    f"{where}.",
                )
            elif (value < 0).any():
                self.report(
                    f"negative:{key}",
                    f"{key!r} is negative ({float(value.min())!r}) {where}; commands are "
                    "magnitudes.",
                )
            kept[key] = np.array(value, dtype=float, copy=True)
        return kept


def _level_params(params: Mapping[str, Any] | None) -> list[float]:
    """Finite numbers among the parameters named like a level (threshold, set point)."""
    out = []
    for name, value in (params or {}).items():
        if any(word in name for word in ("threshold", "setpoint", "set_point")):
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                if math.isfinite(value):
                    out.append(float(value))
    return out


def _close(a: np.ndarray, b: np.ndarray, exact: bool) -> bool:
    if exact:
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True))


def _first_difference(
    run_a: _Run, run_b: _Run, instance: int | None = None, exact: bool = False
) -> str | None:
    """Describe the first step where two runs' commands differ, or return None.

    With ``instance``, compare that instance of ``run_a`` with the single
    instance of ``run_b``. Comparison is exact, or to a relative 1e-9 (an
    instance alone may take a different SIMD path in transcendental ufuncs).
    """
    for k, (a, b) in enumerate(zip(run_a, run_b, strict=False)):
        if a is None or b is None:
            continue
        if set(a) != set(b):
            return f"step {k + 1}: keys {sorted(a)} against {sorted(b)}"
        for key in a:
            va = a[key] if instance is None else a[key][instance : instance + 1]
            vb = b[key]
            if va.shape != vb.shape or not _close(va, vb, exact):
                if instance is not None:
                    return (
                        f"{key!r} from step {k + 1}: {float(vb[0])!r} alone, "
                        f"{float(va[0])!r} in the batch of {len(a[key])}"
                    )
                return f"{key!r} from step {k + 1}"
    return None
