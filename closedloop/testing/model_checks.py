"""The open-loop checks of :func:`closedloop.testing.model.check_model`.

Each check is a function of a :class:`ModelUnderTest` returning a list of
plain sentences, one per problem (empty when the model conforms); the
check's name (the function's name without ``check_``) prefixes each sentence
in the report. The checks only use the public contract of
:class:`closedloop.core.model.NumbaModel`: the declared class attributes,
``reset``, ``advance``, ``state``, ``param_values``, ``like`` and
``describe``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from closedloop.core.model import PARALLEL_MIN_BATCH, NumbaModel, Parameter

__all__ = [
    "LARGE_BATCH",
    "OPEN_LOOP_CHECKS",
    "SMALL_BATCH",
    "UNKNOWN_PARAMETER",
    "ModelFactory",
    "ModelUnderTest",
    "advance_in_chunks",
    "check_advance_output",
    "check_bad_parameters",
    "check_batch_independence",
    "check_chunk_invariance",
    "check_declarations",
    "check_like",
    "check_parameter_defaults",
    "check_seed_determinism",
    "check_seed_sensitivity",
    "check_stimulation_effect",
    "first_difference",
    "out_of_range",
    "state_difference",
    "varied_parameter",
]

#: ``factory(n, params)``: a model of ``n`` instances with these parameter
#: overrides (None: the settings under test).
ModelFactory = Callable[[int, "Mapping[str, Any] | None"], NumbaModel]

#: Batch sizes of the chunked runs: below the parallel threshold.
SMALL_BATCH = 3
#: A batch that runs on the parallel kernels.
LARGE_BATCH = PARALLEL_MIN_BATCH + 8
#: A name no model declares as a parameter.
UNKNOWN_PARAMETER = "no_such_parameter"


@dataclass
class ModelUnderTest:
    """A model kind and the settings the checks run it with.

    Parameters
    ----------
    label : str
        How the report names the model.
    make : callable
        ``make(n, params)`` builds a model of ``n`` instances; ``params``
        overrides parameters (scalars or one value per instance) on top of
        the settings under test.
    cls : type
        The model class (``type(make(1, None))``).
    n_steps : int
        Integration steps per open-loop run.
    seed : int
        Root seed of the runs.
    stimulation : float
        Largest value of the random test stimulation, in the model's
        ``stimulation_units``.
    noisy : bool
        Whether different seeds must give different signals.
    build_regime : callable, optional
        ``build_regime(name)`` builds one instance in a declared regime
        (a class only: a factory takes no regime); None skips that check.
    """

    label: str
    make: ModelFactory
    cls: type[NumbaModel]
    n_steps: int = 600
    seed: int = 0
    stimulation: float = 0.05
    noisy: bool = True
    build_regime: Callable[[str], NumbaModel] | None = None
    _drives: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, repr=False)

    def drive(self, n: int, n_steps: int | None = None) -> np.ndarray:
        """Random stimulation of shape ``(n, n_steps)``, the same on every call."""
        n_steps = self.n_steps if n_steps is None else n_steps
        key = (n, n_steps)
        if key not in self._drives:
            rng = np.random.default_rng([self.seed, n, n_steps])
            self._drives[key] = self.stimulation * rng.uniform(0.0, 1.0, size=key)
        return self._drives[key]

    def run(
        self,
        n: int,
        seeds: int | Sequence[np.random.SeedSequence],
        *,
        params: Mapping[str, Any] | None = None,
        chunk: int | None = None,
        drive: np.ndarray | None = None,
    ) -> tuple[NumbaModel, np.ndarray]:
        """A fresh model reset with ``seeds`` and advanced ``n_steps``, in chunks of ``chunk``."""
        model = self.make(n, params)
        model.reset(seeds)
        drive = self.drive(n) if drive is None else drive
        return model, advance_in_chunks(model, self.n_steps, drive, chunk)


def advance_in_chunks(
    model: NumbaModel, n_steps: int, drive: np.ndarray, chunk: int | None
) -> np.ndarray:
    """``model.advance`` over ``drive`` in one call or in chunks of ``chunk`` steps."""
    if chunk is None:
        return model.advance(n_steps, drive)
    pieces = [
        model.advance(min(chunk, n_steps - s), drive[:, s : s + chunk])
        for s in range(0, n_steps, chunk)
    ]
    return np.hstack(pieces)


def first_difference(got: np.ndarray, expected: np.ndarray) -> str | None:
    """Where two arrays first differ (NaN equal to NaN), or None if identical."""
    got = np.asarray(got)
    expected = np.asarray(expected)
    if got.shape != expected.shape:
        return f"shape {got.shape} against {expected.shape}"
    same = (got == expected) | (np.isnan(got) & np.isnan(expected))
    if same.all():
        return None
    index = np.unravel_index(int(np.argmin(same.ravel())), same.shape)
    where = ", ".join(map(str, index))
    return f"first at index [{where}]: {got[index]!r} against {expected[index]!r}"


def state_difference(a: NumbaModel, b: NumbaModel) -> str | None:
    """Where two models' ``state`` dicts first differ, or None."""
    if set(a.state) != set(b.state):
        return f"state keys {sorted(a.state)} against {sorted(b.state)}"
    for key in a.state:
        diff = first_difference(a.state[key], b.state[key])
        if diff is not None:
            return f"state[{key!r}] {diff}"
    return None


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


# -- declarations -------------------------------------------------------------------


def check_declarations(subject: ModelUnderTest) -> list[str]:
    """Name, state variables, signal, stimulation and parameters declared, with units."""
    cls = subject.cls
    problems = []
    if not issubclass(cls, NumbaModel):
        problems.append(f"{cls.__name__} is not a subclass of closedloop.core.model.NumbaModel")
    for attr in (
        "name",
        "signal_name",
        "signal_units",
        "signal_description",
        "stimulation_units",
        "stimulation_description",
    ):
        value = getattr(cls, attr, None)
        if not _text(value):
            problems.append(f"class attribute {attr!r} must be a non-empty str, got {value!r}")
    states = getattr(cls, "state_variables", None)
    if not isinstance(states, Mapping) or not states:
        problems.append(
            f"state_variables must be a non-empty dict of name to units, got {states!r}"
        )
    else:
        for name, units in states.items():
            if not _text(units):
                problems.append(f"state variable {name!r} has no units (use '1' if dimensionless)")
    params = getattr(cls, "parameters", None)
    if not isinstance(params, Mapping) or not params:
        problems.append(f"parameters must be a non-empty dict of name to Parameter, got {params!r}")
        return problems
    for name, spec in params.items():
        if not isinstance(spec, Parameter):
            problems.append(f"parameter {name!r} is a {type(spec).__name__}, not a Parameter")
            continue
        for attr in ("units", "description", "reference"):
            if not _text(getattr(spec, attr)):
                hint = " (use '1' if dimensionless)" if attr == "units" else ""
                problems.append(f"parameter {name!r} has no {attr}{hint}")
    try:
        described = subject.make(1, None).describe()
    except Exception as exc:
        return [*problems, f"describe() raised {exc!r}"]
    listed = described.get("parameters", {}) if isinstance(described, Mapping) else {}
    if set(listed) != set(params):
        problems.append(
            f"describe() lists parameters {sorted(listed)}, not the declared {sorted(params)}"
        )
    return problems


def check_parameter_defaults(subject: ModelUnderTest) -> list[str]:
    """Every default within its own range; regimes name declared parameters and build."""
    cls = subject.cls
    params = getattr(cls, "parameters", {})
    if not isinstance(params, Mapping):
        return []  # reported by the declarations check
    problems = []
    dt_s = subject.make(1, None).dt_s
    for name, spec in params.items():
        if not isinstance(spec, Parameter):
            continue
        if not isinstance(spec.value, numbers.Real) or isinstance(spec.value, bool):
            problems.append(f"parameter {name!r} default {spec.value!r} is not a number")
            continue
        try:
            spec.check(name, np.array([float(spec.value)]), dt_s)
        except ValueError as exc:
            problems.append(f"parameter {name!r} default is refused by its own range: {exc}")
    regimes = getattr(cls, "regimes", {})
    default = getattr(cls, "default_regime", None)
    if default is not None and default not in regimes:
        problems.append(f"default_regime {default!r} is not one of regimes {sorted(regimes)}")
    for regime, values in regimes.items():
        unknown = sorted(set(values) - set(params))
        if unknown:
            problems.append(f"regime {regime!r} sets undeclared parameter(s) {unknown}")
        elif subject.build_regime is not None:
            try:
                subject.build_regime(regime)
            except Exception as exc:
                problems.append(f"regime {regime!r} cannot be built: {exc!r}")
    return problems


# -- open-loop runs -----------------------------------------------------------------


def check_advance_output(subject: ModelUnderTest) -> list[str]:
    """``advance`` returns a finite float array of shape ``(n, n_steps)``."""
    model = subject.make(SMALL_BATCH, None)
    model.reset(subject.seed)
    out = model.advance(subject.n_steps, subject.drive(SMALL_BATCH))
    expected = (SMALL_BATCH, subject.n_steps)
    if not isinstance(out, np.ndarray) or out.shape != expected:
        shape = getattr(out, "shape", None)
        return [f"advance returned {type(out).__name__} of shape {shape}, expected {expected}"]
    if not np.issubdtype(out.dtype, np.floating):
        return [f"advance returned dtype {out.dtype}, not float64"]
    if not np.isfinite(out).all():
        first = np.argwhere(~np.isfinite(out))[0]
        return [
            f"the signal is not finite (instance {first[0]}, step {first[1]}) under the "
            f"test stimulation (up to {subject.stimulation:g} {subject.cls.stimulation_units})"
        ]
    return []


def check_chunk_invariance(subject: ModelUnderTest) -> list[str]:
    """``advance`` in chunks of several sizes equals one call, bit for bit, with stimulation."""
    n_steps = subject.n_steps
    whole, expected = subject.run(SMALL_BATCH, subject.seed)
    problems = []
    for chunk in sorted({1, 7, n_steps // 3 + 1}):
        parts, got = subject.run(SMALL_BATCH, subject.seed, chunk=chunk)
        diff = first_difference(got, expected) or state_difference(parts, whole)
        if diff is not None:
            problems.append(
                f"advance in chunks of {chunk} steps differs from one call of {n_steps} "
                f"steps ({diff}); carry every state variable (and the noise streams) in "
                "model.state from one call to the next"
            )
    return problems


def check_seed_determinism(subject: ModelUnderTest) -> list[str]:
    """The same seed gives the same signal, from a fresh model or after ``reset``."""
    model, first = subject.run(SMALL_BATCH, subject.seed)
    _, again = subject.run(SMALL_BATCH, subject.seed)
    problems = []
    diff = first_difference(again, first)
    if diff is not None:
        problems.append(
            f"two models reset with seed {subject.seed} differ ({diff}); draw every random "
            "number from the per-instance streams that reset() seeds"
        )
    model.reset(subject.seed)
    diff = first_difference(model.advance(subject.n_steps, subject.drive(SMALL_BATCH)), first)
    if diff is not None:
        problems.append(
            f"a second run after reset({subject.seed}) differs from the first ({diff}); "
            "reset() must restore the initial state"
        )
    return problems


def check_seed_sensitivity(subject: ModelUnderTest) -> list[str]:
    """Different seeds give different signals (noisy models only)."""
    if not subject.noisy:
        return []
    _, first = subject.run(SMALL_BATCH, subject.seed)
    _, other = subject.run(SMALL_BATCH, subject.seed + 1)
    if np.array_equal(first, other):
        return [
            f"seeds {subject.seed} and {subject.seed + 1} give the same signal: the noise "
            "ignores the seed (pass noisy=False for a deterministic model)"
        ]
    problems = []
    for i in range(1, SMALL_BATCH):
        if np.array_equal(first[i], first[0]):
            problems.append(
                f"instances 0 and {i} of one batch have the same signal: each instance "
                "needs its own noise stream"
            )
            break
    return problems


def check_stimulation_effect(subject: ModelUnderTest) -> list[str]:
    """Stimulation changes the signal: the model uses its input."""
    _, stimulated = subject.run(SMALL_BATCH, subject.seed)
    _, quiet = subject.run(
        SMALL_BATCH, subject.seed, drive=np.zeros((SMALL_BATCH, subject.n_steps))
    )
    if np.array_equal(stimulated, quiet):
        return [
            f"stimulation of up to {subject.stimulation:g} {subject.cls.stimulation_units} "
            "leaves the signal unchanged: advance ignores its stimulation argument"
        ]
    return []


def varied_parameter(subject: ModelUnderTest, n: int) -> tuple[str, np.ndarray] | None:
    """A parameter that can take a different value in each of ``n`` instances.

    The first declared parameter (not a whole number of steps, default not
    zero) whose values spread by 1 % over the batch the model accepts.
    """
    base = subject.make(1, None).param_values
    for name, spec in subject.cls.parameters.items():
        value = float(base[name][0])
        if spec.whole_steps or value == 0.0 or not math.isfinite(value):
            continue
        values = value * (1.0 + 0.01 * np.linspace(0.0, 1.0, n))
        try:
            subject.make(n, {name: values})
        except ValueError:
            continue
        return name, values
    return None


def check_batch_independence(subject: ModelUnderTest) -> list[str]:
    """Each instance's signal is independent of batch size and position (serial == parallel)."""
    n_big = LARGE_BATCH
    seeds = np.random.SeedSequence(subject.seed).spawn(n_big)
    varied = varied_parameter(subject, n_big)
    params = None if varied is None else {varied[0]: varied[1]}
    drive = subject.drive(n_big)
    _, big = subject.run(n_big, seeds, params=params, drive=drive)
    picks = [0, n_big // 2, n_big - 1]
    small_params = None if varied is None else {varied[0]: varied[1][picks]}
    _, small = subject.run(
        len(picks), [seeds[i] for i in picks], params=small_params, drive=drive[picks]
    )
    with_params = "" if varied is None else f", parameter {varied[0]!r} varied per instance"
    for j, i in enumerate(picks):
        diff = first_difference(small[j], big[i])
        if diff is not None:
            return [
                f"instance {i} of a batch of {n_big} (parallel kernels) differs from the "
                f"same instance at position {j} of a batch of {len(picks)} (serial "
                f"kernels){with_params} ({diff}); compute each instance from its own "
                "state, parameters and noise stream only"
            ]
    return []


# -- parameters -----------------------------------------------------------------------


def _refused(subject: ModelUnderTest, name: str, value: Any, what: str) -> str | None:
    """None if ``make(2, {name: value})`` raises ValueError naming ``name``."""
    try:
        subject.make(2, {name: value})
    except ValueError as exc:
        if repr(name) in str(exc) or name in str(exc).split():
            return None
        return f"{what} for {name!r} raised ValueError that does not name it: {exc}"
    except Exception as exc:
        return f"{what} for {name!r} raised {type(exc).__name__}, not ValueError: {exc}"
    return f"{what} for {name!r} ({value!r}) was accepted"


def out_of_range(spec: Parameter) -> list[float]:
    """Values just outside a parameter's declared range (none if unbounded)."""
    values = []
    if spec.positive:
        values.append(0.0 if spec.minimum <= 0.0 else spec.minimum - max(1.0, abs(spec.minimum)))
    elif math.isfinite(spec.minimum):
        values.append(spec.minimum - max(1.0, abs(spec.minimum)))
    if math.isfinite(spec.maximum):
        values.append(spec.maximum + max(1.0, abs(spec.maximum)))
    return values


def check_bad_parameters(subject: ModelUnderTest) -> list[str]:
    """Unknown names, wrong shapes, out-of-range and non-finite values refused by name."""
    problems = []
    found = _refused(subject, UNKNOWN_PARAMETER, 1.0, "an unknown parameter name")
    if found is not None:
        problems.append(found)
    base = subject.make(1, None).param_values
    for name, spec in subject.cls.parameters.items():
        value = float(base[name][0])
        cases: list[tuple[Any, str]] = [
            ([value] * 3, "one value per instance for 3 instances in a batch of 2"),
            (math.nan, "NaN"),
            (math.inf, "inf"),
        ]
        cases += [(v, "a value outside the declared range") for v in out_of_range(spec)]
        for bad, what in cases:
            found = _refused(subject, name, bad, what)
            if found is not None:
                problems.append(found)
    return problems


def check_like(subject: ModelUnderTest) -> list[str]:
    """``like()`` builds an equal model; ``like(n=1, params=...)`` one of its instances."""
    model = subject.make(SMALL_BATCH, None)
    twin = model.like()
    problems = []
    if type(twin) is not type(model) or twin.n != model.n or twin.dt_s != model.dt_s:
        problems.append(
            f"like() gave {type(twin).__name__}(n={twin.n}, dt_s={twin.dt_s}), expected "
            f"{type(model).__name__}(n={model.n}, dt_s={model.dt_s})"
        )
        return problems
    for name, values in model.param_values.items():
        if first_difference(twin.param_values.get(name, np.array(np.nan)), values) is not None:
            problems.append(f"like() changed parameter {name!r}")
    drive = subject.drive(SMALL_BATCH)
    for m in (model, twin):
        m.reset(subject.seed)
    diff = first_difference(
        twin.advance(subject.n_steps, drive), model.advance(subject.n_steps, drive)
    )
    if diff is not None:
        problems.append(
            f"like() runs differently from the model it copies ({diff}); override like() "
            "to pass on settings kept outside the parameters"
        )
    first = {name: values[:1] for name, values in model.param_values.items()}
    try:
        single = model.like(n=1, params=first)
    except Exception as exc:
        problems.append(f"like(n=1, params=instance 0's values) raised {exc!r}")
    else:
        if single.n != 1:
            problems.append(f"like(n=1, ...) gave a model of {single.n} instances")
    return problems


#: The open-loop checks, in the order they run.
OPEN_LOOP_CHECKS = (
    check_declarations,
    check_parameter_defaults,
    check_bad_parameters,
    check_advance_output,
    check_chunk_invariance,
    check_seed_determinism,
    check_seed_sensitivity,
    check_stimulation_effect,
    check_batch_independence,
    check_like,
)
