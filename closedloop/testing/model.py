"""Conformance checks for Numba models.

The :func:`~closedloop.testing.controller.check_controller` counterpart, in
the spirit of scikit-learn's ``check_estimator``: :func:`check_model` runs a
model class (or a factory of model instances) through short open-loop and
closed-loop runs and raises :class:`ConformanceError` listing everything it
gets wrong about the contract of :class:`closedloop.core.model.NumbaModel`;
:func:`model_report` returns the same list without raising. Each problem
starts with the name of the check that found it.

What is checked
---------------
``declarations``
    ``name``, ``state_variables`` (with units), ``signal_name``,
    ``signal_units``, ``signal_description``, ``stimulation_units``,
    ``stimulation_description``, and every :class:`~closedloop.core.model.Parameter`
    with units, description and reference; ``describe()`` lists them.
``parameter_defaults``
    Every default lies in its own declared range; regimes only set declared
    parameters and can be built; ``default_regime`` is one of them.
``bad_parameters``
    An unknown name, one value per instance for the wrong batch size, NaN,
    inf and values outside the declared range are refused with a
    ``ValueError`` whose message names the parameter.
``advance_output``
    ``advance`` returns a finite float array of shape ``(n, n_steps)`` under
    the test stimulation.
``chunk_invariance``
    ``advance`` in chunks of 1, 7 and about a third of the run equals one
    call, bit for bit, with stimulation, output and final ``state`` alike.
``seed_determinism``
    The same seed gives the same signal, from a fresh model and after a
    second ``reset``.
``seed_sensitivity``
    Different seeds, and different instances of a batch, give different
    signals (skipped with ``noisy=False``).
``stimulation_effect``
    Stimulation changes the signal.
``batch_independence``
    An instance of a batch at or above
    :data:`~closedloop.core.model.PARALLEL_MIN_BATCH` (parallel kernels), with
    one parameter varied per instance, equals the same instance, same noise
    stream, in a small batch (serial kernels) at another position.
``like``
    ``like()`` builds a model of the same kind, batch, step and parameters
    that runs identically; ``like(n=1, params=...)`` a single instance.
``closed_loop_chunks``
    A :class:`~closedloop.core.loop.ClosedLoop` (PID on the sensed envelope,
    Python and compiled controller, serial and parallel period kernels) run
    in two parts equals one run, every recorded series and the device totals.
``closed_loop_batch``
    In that closed loop, each instance is independent of batch size and
    position.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any

from closedloop.core.model import NumbaModel
from closedloop.testing.errors import ConformanceError
from closedloop.testing.loop_checks import CLOSED_LOOP_CHECKS
from closedloop.testing.model_checks import OPEN_LOOP_CHECKS, ModelUnderTest

__all__ = ["MODEL_CHECKS", "ConformanceError", "check_model", "model_report"]

#: Every check, in the order it runs; each takes a ModelUnderTest and
#: returns its problems.
MODEL_CHECKS: tuple[Callable[[ModelUnderTest], list[str]], ...] = (
    *OPEN_LOOP_CHECKS,
    *CLOSED_LOOP_CHECKS,
)


def check_name(check: Callable[..., Any]) -> str:
    """How the report names a check: its function name without ``check_``."""
    return check.__name__.removeprefix("check_")


def check_model(
    model: type[NumbaModel] | Callable[..., NumbaModel],
    *,
    params: Mapping[str, Any] | None = None,
    dt_s: float | None = None,
    n_steps: int = 600,
    seed: int = 0,
    stimulation: float = 0.05,
    noisy: bool = True,
    closed_loop: bool = True,
) -> None:
    """Check that a Numba model follows the model contract.

    Parameters
    ----------
    model : type or callable
        A :class:`~closedloop.core.model.NumbaModel` subclass, built as
        ``model(dt_s=dt_s, n=n, params={**params, **overrides})``, or a
        factory ``model(n, overrides)`` returning a model of ``n`` instances
        with the parameter overrides ``overrides`` (a mapping, or None) applied
        on top of the settings to check.
    params : mapping, optional
        Parameter values to check the class with (e.g. some noise, or fewer
        oscillators to keep the runs short). Only with a class.
    dt_s : float, optional
        Integration step, s (default: the class's). Only with a class.
    n_steps : int, default 600
        Integration steps per open-loop run.
    seed : int, default 0
        Root seed of the runs.
    stimulation : float, default 0.05
        Largest value of the random test stimulation, in the model's
        ``stimulation_units``.
    noisy : bool, default True
        Whether different seeds must give different signals; pass False for
        a deterministic model (with random initial state or not).
    closed_loop : bool, default True
        Also run the closed-loop checks (they drive the model's period kernels).

    Raises
    ------
    ConformanceError
        Listing every problem found, each prefixed by its check's name.

    See Also
    --------
    model_report : The same checks, returning the problems.

    Examples
    --------
    >>> from closedloop.models import WilsonCowan
    >>> check_model(WilsonCowan, params={"sigma_E": 0.3})  # doctest: +SKIP
    """
    problems = model_report(
        model,
        params=params,
        dt_s=dt_s,
        n_steps=n_steps,
        seed=seed,
        stimulation=stimulation,
        noisy=noisy,
        closed_loop=closed_loop,
    )
    if problems:
        label = model.__name__ if isinstance(model, type) else repr(model)
        raise ConformanceError(problems, label)


def model_report(
    model: type[NumbaModel] | Callable[..., NumbaModel],
    *,
    params: Mapping[str, Any] | None = None,
    dt_s: float | None = None,
    n_steps: int = 600,
    seed: int = 0,
    stimulation: float = 0.05,
    noisy: bool = True,
    closed_loop: bool = True,
) -> list[str]:
    """Return the problems :func:`check_model` would raise for.

    Parameters are those of :func:`check_model`.

    Returns
    -------
    list of str
        One sentence per problem, ``"<check>: <what is wrong>"``; empty if
        the model conforms.

    Raises
    ------
    ValueError
        If ``n_steps`` is not a whole number of at least 10, or ``params``
        or ``dt_s`` is given with a factory.
    """
    if not isinstance(n_steps, numbers.Integral) or n_steps < 10:
        raise ValueError(f"n_steps must be a whole number of at least 10, got {n_steps!r}")
    if not isinstance(model, type) and (params is not None or dt_s is not None):
        raise ValueError("params and dt_s are for a model class; a factory sets its own")
    try:
        subject = _subject(model, params, dt_s, int(n_steps), seed, stimulation, noisy)
    except Exception as exc:
        return [f"construction: the model could not be built with its defaults ({exc!r})"]
    checks = MODEL_CHECKS if closed_loop else OPEN_LOOP_CHECKS
    problems = []
    for check in checks:
        try:
            found = check(subject)
        except Exception as exc:
            found = [f"raised {exc!r}"]
        problems += [f"{check_name(check)}: {p}" for p in found]
    return problems


def _subject(
    model: Any,
    params: Mapping[str, Any] | None,
    dt_s: float | None,
    n_steps: int,
    seed: int,
    stimulation: float,
    noisy: bool,
) -> ModelUnderTest:
    """The model under test; raises whatever building it with its settings raises."""
    label = getattr(model, "__name__", repr(model))
    if isinstance(model, type):
        cls = model
        settings = {} if dt_s is None else {"dt_s": float(dt_s)}
        base = dict(params or {})

        def make(n: int, overrides: Mapping[str, Any] | None = None) -> NumbaModel:
            return cls(n=n, params={**base, **(overrides or {})}, **settings)

        def regime_model(regime: str) -> NumbaModel:
            return cls(n=1, params=base, regime=regime, **settings)

        build_regime: Callable[[str], NumbaModel] | None = regime_model
    else:
        make, build_regime = model, None
    cls = type(make(1, None))
    return ModelUnderTest(
        label=label,
        make=make,
        cls=cls,
        n_steps=n_steps,
        seed=seed,
        stimulation=stimulation,
        noisy=noisy,
        build_regime=build_regime,
    )
