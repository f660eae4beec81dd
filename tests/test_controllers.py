"""Built-in controllers follow their papers and the contract; the checker finds what breaks it."""

from __future__ import annotations

import inspect
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop.controllers import (
    BUILTIN_CONTROLLERS,
    PID,
    Controller,
    DualThreshold,
    OnOff,
    OpenLoop,
)
from closedloop.testing.controller import ConformanceError, check_controller, conformance_report

DT = 0.01  # control period, s


def drive(controller, biomarker, n=None, t0=0.0):
    """Reset (unless continuing from ``t0``) and feed a biomarker series.

    ``biomarker`` has shape (steps,) or (steps, n); returns the commanded
    amplitude after each step, shape (steps, n).
    """
    biomarker = np.asarray(biomarker, dtype=float)
    if biomarker.ndim == 1:
        biomarker = biomarker[:, None]
    if t0 == 0.0:
        controller.reset(biomarker.shape[1], np.random.default_rng(0))
    out = []
    names = {"biomarker", *controller.required_features}
    for k, row in enumerate(biomarker):
        # Controllers needing other features get the same series under each name.
        features = {name: row.copy() for name in names}
        command = controller.update(t0 + (k + 1) * DT, features)
        # (The TMS intensity travels in the amplitude slot: device.config.MODALITY_COMMANDS.)
        out.append(command.get("amplitude_ma", command.get("intensity_pct_rmt")))
    return np.array(out)


# -- the contract -----------------------------------------------------------------


@pytest.mark.parametrize(
    "controller",
    [
        *BUILTIN_CONTROLLERS.values(),
        OnOff(threshold=0.8, ramp_time_s=0.0),
        DualThreshold(lower_threshold=1.2, upper_threshold=1.2, min_amplitude_ma=0.5),
        PID(kp=0.5, ki=2.0, kd=0.05, min_amplitude_ma=0.2),
    ],
    ids=repr,
)
def test_builtin_controllers_pass_the_conformance_check(controller):
    check_controller(controller)


def test_registry_names_are_the_names_experiment_files_use():
    # Each registry key is the class's own name, and the literature controllers are all there.
    assert all(name == cls.name for name, cls in BUILTIN_CONTROLLERS.items())
    assert {"open_loop", "on_off", "dual_threshold", "pid"} <= set(BUILTIN_CONTROLLERS)
    assert all(cls.references for cls in BUILTIN_CONTROLLERS.values())


@pytest.mark.parametrize("cls", list(BUILTIN_CONTROLLERS.values()), ids=list(BUILTIN_CONTROLLERS))
def test_help_shows_every_parameter_in_full(cls):
    # Shared descriptions are filled in at import (fill_doc): help() shows no
    # placeholder, and each __init__ parameter has its own numpydoc entry.
    docs = [inspect.getdoc(cls), inspect.getdoc(cls.reset), inspect.getdoc(cls.update)]
    assert not any("%(" in doc for doc in docs)
    parameters = docs[0].split("Parameters\n----------\n")[1].split("\n\n")[0]
    for name in inspect.signature(cls).parameters:
        assert re.search(rf"^{name} : \S.*\n    \S", parameters, re.MULTILINE), name
    assert "n : int\n    Batch size.\nrng : numpy.random.Generator\n" in docs[1]


@pytest.mark.parametrize("cls", list(BUILTIN_CONTROLLERS.values()), ids=list(BUILTIN_CONTROLLERS))
def test_every_default_is_the_one_the_docstring_states(cls):
    # A user who leaves a parameter out gets what help() says ("x : float, default 1.0").
    doc = inspect.getdoc(cls).split("Parameters\n----------\n")[1].split("\n\n")[0]
    stated = dict(re.findall(r"^(\w+) : [^\n]*, default ([^\s,]+)$", doc, re.MULTILINE))
    defaults = {
        name: p.default
        for name, p in inspect.signature(cls).parameters.items()
        if isinstance(p.default, int | float) and not isinstance(p.default, bool)
    }
    assert defaults, "no numeric defaults found"
    for name, value in defaults.items():
        assert name in stated, f"{cls.__name__}.{name}: default {value!r} not documented"
        text = stated[name]
        assert (math.pi if text == "pi" else float(text)) == value, (name, text, value)


@pytest.mark.parametrize("cls", list(BUILTIN_CONTROLLERS.values()), ids=list(BUILTIN_CONTROLLERS))
def test_parameters_are_keyword_only(cls):
    # DualThreshold(1.0, 2.0) must not guess which number is which threshold.
    first = next(iter(inspect.signature(cls).parameters))
    with pytest.raises(TypeError, match="positional"):
        cls(getattr(cls(), first))


def test_pid_second_update_at_the_same_time_adds_no_integral_or_derivative_step():
    # No time has passed: kp * e plus the integral so far (not a division by zero).
    c = PID(setpoint=1.0, kp=0.5, ki=2.0, kd=0.3, max_amplitude_ma=3.0)
    c.reset(1, np.random.default_rng(0))
    first = c.update(0.01, {"biomarker": np.array([3.0])})["amplitude_ma"]
    np.testing.assert_allclose(first, [0.5 * 2.0 + 2.0 * 2.0 * 0.01], rtol=1e-12)
    again = c.update(0.01, {"biomarker": np.array([5.0])})["amplitude_ma"]
    np.testing.assert_allclose(again, [0.5 * 4.0 + 0.04], rtol=1e-12)


def test_ramping_controllers_do_not_move_when_no_time_has_passed():
    dual = DualThreshold(lower_threshold=1.0, upper_threshold=2.0, ramp_up_ma_per_s=1.0)
    on_off = OnOff(threshold=1.0, amplitude_ma=2.0, ramp_time_s=1.0)
    for c, after_half_a_second in ((dual, 0.5), (on_off, 1.0)):
        c.reset(1, np.random.default_rng(0))
        high = {"biomarker": np.array([3.0])}
        np.testing.assert_allclose(c.update(0.5, high)["amplitude_ma"], [after_half_a_second])
        np.testing.assert_allclose(c.update(0.5, high)["amplitude_ma"], [after_half_a_second])


def test_dual_threshold_ramps_at_a_one_second_control_period_too():
    c = DualThreshold(lower_threshold=1.0, upper_threshold=2.0, ramp_up_ma_per_s=0.5)
    c.reset(1, np.random.default_rng(0))
    amps = [c.update(t, {"biomarker": np.array([3.0])})["amplitude_ma"][0] for t in (1.0, 2.0)]
    np.testing.assert_allclose(amps, [0.5, 1.0], rtol=1e-12)


def test_on_off_ramps_at_a_one_second_control_period_too():
    c = OnOff(threshold=1.0, amplitude_ma=2.0, ramp_time_s=4.0)
    c.reset(1, np.random.default_rng(0))
    amps = [c.update(t, {"biomarker": np.array([3.0])})["amplitude_ma"][0] for t in (1.0, 2.0)]
    np.testing.assert_allclose(amps, [0.5, 1.0], rtol=1e-12)


@pytest.mark.parametrize(
    ("cls", "params", "words"),
    [
        (OpenLoop, {"frequency_hz": 0.0}, ["frequency_hz", "0.0"]),
        (OpenLoop, {"amplitude_ma": float("nan")}, ["amplitude_ma", "nan"]),
        (OnOff, {"ramp_time_s": -0.1}, ["ramp_time_s", "-0.1"]),
        (OnOff, {"threshold": "high"}, ["threshold", "'high'"]),
        (
            DualThreshold,
            {"lower_threshold": 2.0, "upper_threshold": 1.0},
            ["lower_threshold", "upper_threshold", "2.0", "1.0"],
        ),
        (DualThreshold, {"ramp_up_ma_per_s": -1.0}, ["ramp_up_ma_per_s", "-1.0"]),
        (
            DualThreshold,
            {"min_amplitude_ma": 2.0, "max_amplitude_ma": 1.0},
            ["min_amplitude_ma", "max_amplitude_ma"],
        ),
        (
            PID,
            {"min_amplitude_ma": 3.0, "max_amplitude_ma": 1.0},
            ["min_amplitude_ma", "max_amplitude_ma", "3.0", "1.0"],
        ),
        (PID, {"pulse_width_us": -60.0}, ["pulse_width_us", "-60.0"]),
        (PID, {"ki": float("inf")}, ["ki", "inf"]),
    ],
)
def test_bad_parameters_are_accepted_by_init_and_rejected_by_reset(cls, params, words):
    controller = cls(**params)  # scikit-learn style: __init__ stores, reset validates
    with pytest.raises(ValueError) as info:
        controller.reset(2, np.random.default_rng(0))
    for word in words:
        assert word in str(info.value)


# -- a user's broken controllers ---------------------------------------------------


class Broken(Controller):
    """Three defects at once: scalar frequency, mutates features, uses the batch mean."""

    def __init__(self, *, gain: float = 1.0) -> None:
        self.gain = gain

    def reset(self, n, rng):
        self.n_ = n

    def update(self, t, features):
        b = features["biomarker"]
        b *= self.gain  # mutates the caller's array
        level = float(np.mean(b))  # every instance sees the whole batch
        return {"amplitude_ma": np.full(self.n_, level), "frequency_hz": 130.0}


def test_broken_controller_fails_with_one_message_per_problem():
    with pytest.raises(ConformanceError) as info:
        check_controller(Broken)
    message = str(info.value)
    assert "Broken failed 3 conformance checks" in message
    assert "'frequency_hz' is a float, not a numpy array of shape (4,)" in message
    assert "update modifies its input features" in message
    assert "batch independence: instance 0's commands depend on other instances'" in message
    assert info.value.problems == conformance_report(Broken())


class _Base(Controller):
    """A correct controller (amplitude = gain * biomarker) for the defects below."""

    def __init__(self, *, gain: float = 1.0) -> None:
        self.gain = gain

    def reset(self, n, rng):
        super().reset(n, rng)

    def update(self, t, features):
        return {"amplitude_ma": self.gain * np.abs(features["biomarker"])}


class ScalarAmplitude(_Base):
    def update(self, t, features):
        return {"amplitude_ma": float(features["biomarker"][0])}


class ColumnAmplitude(_Base):
    def update(self, t, features):
        return {"amplitude_ma": np.abs(features["biomarker"])[:, None]}


class IntegerAmplitude(_Base):
    def update(self, t, features):
        return {"amplitude_ma": (features["biomarker"] > 1).astype(int)}


class MisspelledKey(_Base):
    def update(self, t, features):
        return {"amplitude": np.abs(features["biomarker"]), "amplitude_ma": np.zeros(self.n_)}


class ReturnsArray(_Base):
    def update(self, t, features):
        return np.abs(features["biomarker"])


class NaNWhenQuiet(_Base):
    def update(self, t, features):
        b = features["biomarker"]
        return {"amplitude_ma": np.where(b == 0, np.nan, np.abs(b))}


class NegativeWhenLow(_Base):
    def update(self, t, features):
        return {"amplitude_ma": features["biomarker"] - 1.0}


class ClipsInPlace(_Base):
    def update(self, t, features):
        b = features["biomarker"]
        np.minimum(b, 2.0, out=b)
        return {"amplitude_ma": np.abs(b)}


class BatchMean(_Base):
    def update(self, t, features):
        b = features["biomarker"]
        return {"amplitude_ma": np.abs(b - b.mean())}


class Accumulates(_Base):
    """Creates its state lazily, so reset() does not clear it."""

    def update(self, t, features):
        if not hasattr(self, "total_"):
            self.total_ = np.zeros(self.n_)
        self.total_ = self.total_ + np.abs(features["biomarker"]) * 1e-3
        return {"amplitude_ma": self.total_.copy()}


class GlobalRandom(_Base):
    def update(self, t, features):
        return {"amplitude_ma": np.random.random(self.n_)}  # noqa: NPY002


class KeepsReference(_Base):
    """Derivative of the biomarker from a stored reference to the caller's array."""

    def reset(self, n, rng):
        super().reset(n, rng)
        self.previous_ = None

    def update(self, t, features):
        b = features["biomarker"]
        slope = np.zeros(self.n_) if self.previous_ is None else np.abs(b - self.previous_)
        self.previous_ = b
        return {"amplitude_ma": slope}


class StateInInit(_Base):
    def __init__(self, *, gain: float = 1.0) -> None:
        self.gain = gain
        self.calls_ = 0


class ConvertsParameter(_Base):
    def __init__(self, *, gain: float = 1.0) -> None:
        self.gain = 2.0 * gain


class HidesParameter(_Base):
    def __init__(self, *, gain: float = 1.0) -> None:
        self._gain = gain

    def update(self, t, features):
        return {"amplitude_ma": self._gain * np.abs(features["biomarker"])}


class StateWithoutUnderscore(_Base):
    def reset(self, n, rng):
        super().reset(n, rng)
        self.level = np.zeros(n)


class NeedsArgument(_Base):
    def __init__(self, gain: float) -> None:
        self.gain = gain


class NotAController:
    def __init__(self, gain: float = 1.0) -> None:
        self.gain = gain

    def get_params(self):
        return {"gain": self.gain}

    def reset(self, n, rng):
        self.n_ = n

    def update(self, t, features):
        return {"amplitude_ma": np.abs(features["biomarker"])}

    def thresholds(self):
        return {}


class EmptyFirst(_Base):
    def update(self, t, features):
        return {} if t < 0.015 else {"amplitude_ma": np.ones(self.n_)}


class ResetRejectsBatch(_Base):
    def reset(self, n, rng):
        if n > 1:
            raise ValueError("only one instance supported")
        super().reset(n, rng)


@pytest.mark.parametrize(
    ("cls", "words"),
    [
        (ScalarAmplitude, "'amplitude_ma' is a float, not a numpy array of shape (4,)"),
        (ColumnAmplitude, "'amplitude_ma' has shape (4, 1), not (4,)"),
        (IntegerAmplitude, "'amplitude_ma' has dtype int64, not a float dtype"),
        (MisspelledKey, "unknown command key(s) 'amplitude'"),
        (ReturnsArray, "update returned ndarray, not a mapping"),
        (EmptyFirst, "the first command is empty"),
        (NaNWhenQuiet, "'amplitude_ma' is not finite (nan) for a finite biomarker"),
        (NegativeWhenLow, "'amplitude_ma' is negative"),
        (ClipsInPlace, "update modifies its input features"),
        (BatchMean, "batch independence: instance 0's commands depend on other"),
        (Accumulates, "reset does not clear state"),
        (GlobalRandom, "not deterministic"),
        (KeepsReference, "update keeps a reference to a feature array"),
        (StateInInit, "__init__ sets 'calls_'"),
        (ConvertsParameter, "__init__ changes parameter 'gain': given 2.0, it stores 4.0"),
        (HidesParameter, "__init__ parameter 'gain' is not stored as attribute 'gain'"),
        (StateWithoutUnderscore, "reset() or update() sets attribute 'level'"),
        (NeedsArgument, "NeedsArgument() could not be created with default parameters"),
        (NotAController, "NotAController is not a subclass of closedloop.controllers.Controller"),
        (ResetRejectsBatch, "reset(n=4, rng) raised ValueError('only one instance supported')"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_each_defect_gets_exactly_one_message_naming_it(cls, words):
    problems = conformance_report(cls)
    assert len(problems) == 1, problems
    assert words in problems[0]


def test_checker_leaves_a_given_instance_untouched():
    controller = PID()
    check_controller(controller)
    assert not hasattr(controller, "integral_ma_")


# -- on-off (Little et al. 2013) ---------------------------------------------------


def test_on_off_ramps_on_at_the_documented_rate_and_off_again():
    c = OnOff(threshold=1.0, amplitude_ma=2.0, ramp_time_s=0.25)
    up = drive(c, np.full(40, 1.5))[:, 0]
    k = np.arange(1, 41)
    np.testing.assert_allclose(up, np.minimum(k * DT / 0.25, 1.0) * 2.0, rtol=1e-12, atol=1e-12)
    down = drive(c, np.full(30, 0.5), t0=40 * DT)[:, 0]
    np.testing.assert_allclose(
        down, np.maximum(2.0 - np.arange(1, 31) * DT / 0.25 * 2.0, 0.0), rtol=1e-12, atol=1e-12
    )
    assert down[-1] == 0.0


def test_on_off_switches_on_strictly_above_threshold_and_treats_nan_as_below():
    c = OnOff(threshold=1.0, amplitude_ma=2.0, ramp_time_s=0.0)
    amp = drive(c, [[1.0, np.nextafter(1.0, 2.0), np.nan, 5.0]])[0]
    np.testing.assert_array_equal(amp, [0.0, 2.0, 0.0, 2.0])
    ramped = OnOff(threshold=1.0, ramp_time_s=0.25)
    amp = drive(ramped, [2.0] * 10 + [np.nan] * 3)[:, 0]
    assert amp[9] > amp[10] > amp[11] > amp[12]  # NaN ramps off, the safe side


def test_on_off_holds_frequency_and_pulse_width_and_reports_its_threshold():
    c = OnOff(threshold=3.5, frequency_hz=160.0, pulse_width_us=90.0)
    c.reset(3, np.random.default_rng(0))
    command = c.update(DT, {"biomarker": np.array([0.0, 4.0, 9.0])})
    np.testing.assert_array_equal(command["frequency_hz"], [160.0] * 3)
    np.testing.assert_array_equal(command["pulse_width_us"], [90.0] * 3)
    assert c.thresholds() == {"threshold": 3.5}


def test_on_off_ramp_follows_the_period_actually_elapsed():
    c = OnOff(threshold=1.0, amplitude_ma=2.0, ramp_time_s=1.0)
    c.reset(1, np.random.default_rng(0))
    above = {"biomarker": np.array([2.0])}
    assert c.update(0.1, above)["amplitude_ma"][0] == pytest.approx(0.2)
    assert c.update(0.2, above)["amplitude_ma"][0] == pytest.approx(0.4)
    assert c.update(0.5, above)["amplitude_ma"][0] == pytest.approx(1.0)  # period of 0.3 s


# -- dual threshold (Velisar et al. 2019) ------------------------------------------


def test_dual_threshold_raises_holds_and_lowers_in_the_three_regions():
    c = DualThreshold(
        lower_threshold=1.0,
        upper_threshold=2.0,
        ramp_up_ma_per_s=1.0,
        ramp_down_ma_per_s=0.5,
        max_amplitude_ma=3.0,
    )
    start = drive(c, np.full((100, 6), 2.5))[-1]  # 1 s above: 1 mA everywhere
    np.testing.assert_allclose(start, 1.0)
    # below, on the lower threshold, between, on the upper one, above, NaN
    regions = [0.5, 1.0, 1.5, 2.0, 2.5, np.nan]
    amp = drive(c, np.tile(regions, (20, 1)), t0=1.0)[-1]
    np.testing.assert_allclose(amp, [1.0 - 0.2 * 0.5, 1.0, 1.0, 1.0, 1.0 + 0.2 * 1.0, 1.0])
    assert c.thresholds() == {"lower_threshold": 1.0, "upper_threshold": 2.0}


def test_dual_threshold_stops_at_its_bounds():
    c = DualThreshold(
        lower_threshold=1.0,
        upper_threshold=2.0,
        ramp_up_ma_per_s=2.0,
        ramp_down_ma_per_s=2.0,
        min_amplitude_ma=0.5,
        max_amplitude_ma=2.5,
    )
    up = drive(c, np.full(300, 10.0))[:, 0]
    assert up[0] == pytest.approx(0.52)  # starts from min_amplitude_ma
    assert up.max() == 2.5 and up[-1] == 2.5
    down = drive(c, np.full(300, 0.0), t0=3.0)[:, 0]
    assert down.min() == 0.5 and down[-1] == 0.5


# -- PID (Fleming et al. 2020) -----------------------------------------------------


def test_pid_step_response_is_kp_e_plus_ki_e_t_until_saturation():
    kp, ki, e = 0.4, 2.0, 0.5
    c = PID(setpoint=1.0, kp=kp, ki=ki, kd=0.0, max_amplitude_ma=3.0)
    amp = drive(c, np.full(400, 1.0 + e))[:, 0]
    t = np.arange(1, 401) * DT
    np.testing.assert_allclose(amp, np.minimum(kp * e + ki * e * t, 3.0), rtol=1e-9, atol=1e-12)
    assert amp[-1] == 3.0 and amp[200] < 3.0  # saturates at t = 2.8 s


def test_pid_integral_term_alone_is_ki_e_t():
    c = PID(setpoint=2.0, kp=0.0, ki=0.8, max_amplitude_ma=10.0)
    amp = drive(c, np.full(250, 3.0))[:, 0]
    np.testing.assert_allclose(amp, 0.8 * 1.0 * np.arange(1, 251) * DT, rtol=1e-9)


def _naive_pi(kp, ki, setpoint, low, high, biomarker):
    """PI without anti-windup: the integral keeps growing while the output is clamped."""
    integral, out = 0.0, []
    for b in biomarker:
        e = b - setpoint
        integral += e * DT
        out.append(min(max(kp * e + ki * integral, low), high))
    return np.array(out)


@pytest.mark.parametrize(
    ("high_phase", "low_phase", "limit"),
    [(3.0, 0.5, 3.0), (0.0, 1.5, 0.0)],  # saturated at max then at min
    ids=["at-max", "at-min"],
)
def test_pid_leaves_saturation_within_one_period_when_the_error_changes_sign(
    high_phase, low_phase, limit
):
    params = {"kp": 0.5, "ki": 2.0, "setpoint": 1.0}
    series = np.r_[np.full(1000, high_phase), np.full(2000, low_phase)]  # 10 s, then 20 s
    amp = drive(PID(**params, max_amplitude_ma=3.0), series)[:, 0]
    naive = _naive_pi(**params, low=0.0, high=3.0, biomarker=series)
    assert np.all(amp[500:1000] == limit) and np.all(naive[500:1000] == limit)
    assert amp[1000] != limit  # the first period after the sign change
    stuck = np.flatnonzero(naive[1000:] == limit).size
    assert stuck > 100  # the naive integrator stays saturated for seconds


def _pid_trace(controller, biomarker, period_s):
    """Amplitude and integral term after each update, at a fixed period."""
    amplitude, integral = [], []
    for k, b in enumerate(biomarker):
        command = controller.update((k + 1) * period_s, {"biomarker": np.array([b])})
        amplitude.append(command["amplitude_ma"][0])
        integral.append(controller.integral_ma_[0])
    return np.array(amplitude), np.array(integral)


def test_pid_conditional_integration_matches_a_hand_computed_sequence():
    # kp = 1, ki * period = 0.5 mA per unit error, set point 0 (error = biomarker),
    # amplitude in [0, 2] mA. Each row: error, then P, candidate I, the rule that
    # applies, and the resulting I and amplitude A = clip(P + I, 0, 2).
    c = PID(setpoint=0.0, kp=1.0, ki=5.0, kd=0.0, min_amplitude_ma=0.0, max_amplitude_ma=2.0)
    c.reset(1, np.random.default_rng(0))
    rows = [
        # e     I     A      P     cand  rule
        (1.0, 0.5, 1.5),  # 1.0   0.5   in range: integrates
        (1.0, 1.0, 2.0),  # 1.0   1.0   lands exactly on the max: integrates
        (1.0, 1.0, 2.0),  # 1.0   1.5   saturated, error pushes further: frozen
        (1.5, 1.0, 2.0),  # 1.5   1.75  P + I already above the max: frozen
        (0.5, 1.25, 1.75),  # 0.5 1.25  back in range: integrates
        (3.0, 1.25, 2.0),  # 3.0  2.75  saturated again: frozen
        (-0.5, 1.0, 0.5),  # -0.5 1.0   error changes sign: integrates, leaves saturation
        (-2.0, 1.0, 0.0),  # -2.0 0.0   P + I already below the min: frozen
        (-0.2, 0.9, 0.7),  # -0.2 0.9   in range: integrates
        (0.8, 1.2, 2.0),  # 0.8   1.3   would overshoot the max: cut to land on it
        (0.0, 1.2, 1.2),  # 0.0   1.2   on the set point: holds
    ]
    errors = [r[0] for r in rows]
    amplitude, integral = _pid_trace(c, errors, 0.1)
    np.testing.assert_allclose(integral, [r[1] for r in rows], rtol=0, atol=1e-12)
    np.testing.assert_allclose(amplitude, [r[2] for r in rows], rtol=0, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-3.0, 3.0), min_size=2, max_size=60),
    st.floats(0.0, 2.0),
    st.floats(0.1, 20.0),
)
def test_pid_integral_is_frozen_only_while_saturated_in_the_direction_of_the_error(errors, kp, ki):
    low, high, period_s = 0.5, 2.0, 0.02
    c = PID(setpoint=0.0, kp=kp, ki=ki, min_amplitude_ma=low, max_amplitude_ma=high)
    c.reset(1, np.random.default_rng(0))
    _, integral = _pid_trace(c, errors, period_s)
    previous = np.r_[0.0, integral[:-1]]
    for e, before, after in zip(errors, previous, integral, strict=True):
        p = kp * e
        grown = before + ki * e * period_s  # ki > 0: the increment has the sign of e
        if e == 0:
            assert after == before
        elif (e > 0 and p + before >= high) or (e < 0 and p + before <= low):
            assert after == before  # saturated and pushed further: no windup
        elif low <= p + grown <= high or (e > 0) == (p + grown < low):
            # In range, or still short of it coming from outside: plain integration.
            assert after == pytest.approx(grown, rel=1e-12, abs=1e-15)
        else:  # the step would cross a limit: it stops where P + I meets it
            assert p + after == pytest.approx(high if e > 0 else low, rel=1e-12, abs=1e-12)


def test_pid_derivative_on_error_matches_a_hand_computed_sequence():
    # kp = 1, ki = 0, kd / period = 1: A = e + (e - e_prev), no derivative at first.
    c = PID(setpoint=0.5, kp=1.0, ki=0.0, kd=0.1, max_amplitude_ma=3.0)
    c.reset(1, np.random.default_rng(0))
    amplitude, integral = _pid_trace(c, [1.0, 1.5, 1.3, 0.5], 0.1)
    # errors 0.5, 1.0, 0.8, 0.0
    np.testing.assert_allclose(amplitude, [0.5, 1.5, 0.6, 0.0], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(integral, 0.0)


def test_pid_error_bound_keeps_a_falling_huge_biomarker_from_giving_nan():
    # Unbounded, kp * e overflows to +inf while kd * de / dt is -inf: inf - inf = NaN.
    # Bounded to +-1e150 both errors are equal, the derivative is 0 and P is huge.
    big = np.finfo(float).max
    c = PID(setpoint=0.0, kp=10.0, ki=0.0, kd=1.0, max_amplitude_ma=3.0)
    c.reset(1, np.random.default_rng(0))
    amplitude, _ = _pid_trace(c, [big, big / 2, -big, 1.0], 0.01)
    np.testing.assert_array_equal(amplitude, [3.0, 3.0, 0.0, 3.0])  # last: +1e150 / period
    np.testing.assert_array_equal(c.error_prev_, [1.0])


def test_pid_derivative_term_is_kd_times_the_slope():
    c = PID(setpoint=0.0, kp=0.0, ki=0.0, kd=0.2, max_amplitude_ma=5.0)
    slope = 4.0  # biomarker units per second
    amp = drive(c, slope * np.arange(1, 51) * DT)[:, 0]
    assert amp[0] == 0.0  # no derivative before a previous error exists
    np.testing.assert_allclose(amp[1:], 0.2 * slope, rtol=1e-9)


def test_pid_keeps_integrating_after_a_nan_biomarker():
    c = PID(setpoint=1.0, kp=0.0, ki=1.0)
    amp = drive(c, [2.0] * 10 + [np.nan] + [2.0] * 10)[:, 0]
    assert np.isnan(amp[10])
    np.testing.assert_allclose(amp[11:], amp[9] + np.arange(1, 11) * DT, rtol=1e-9)
    assert c.thresholds() == {"setpoint": 1.0}


def test_same_seed_gives_identical_commands_for_every_builtin():
    rng = np.random.default_rng(3)
    series = np.abs(1.0 + np.cumsum(rng.normal(0, 0.1, (300, 8)), axis=0))
    for cls in BUILTIN_CONTROLLERS.values():
        np.testing.assert_array_equal(drive(cls(), series), drive(cls(), series))


# -- bounds for any finite biomarker ------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
series_strategy = st.lists(st.lists(finite, min_size=3, max_size=3), min_size=1, max_size=60)
bounds = st.tuples(st.floats(0.0, 5.0), st.floats(0.0, 5.0)).map(sorted)


@settings(max_examples=150, deadline=None)
@given(
    series=series_strategy,
    bounds=bounds,
    kp=st.floats(0.0, 1e3),
    ki=st.floats(0.0, 1e3),
    kd=st.floats(0.0, 10.0),
    setpoint=st.floats(-1e6, 1e6),
)
def test_pid_amplitude_stays_within_bounds(series, bounds, kp, ki, kd, setpoint):
    low, high = bounds
    c = PID(setpoint=setpoint, kp=kp, ki=ki, kd=kd, min_amplitude_ma=low, max_amplitude_ma=high)
    amp = drive(c, series)
    assert np.all(amp >= low) and np.all(amp <= high)


@settings(max_examples=150, deadline=None)
@given(
    series=series_strategy,
    bounds=bounds,
    thresholds=st.tuples(finite, finite).map(sorted),
    rates=st.tuples(st.floats(0.0, 1e6), st.floats(0.0, 1e6)),
)
def test_dual_threshold_amplitude_stays_within_bounds(series, bounds, thresholds, rates):
    low, high = bounds
    c = DualThreshold(
        lower_threshold=thresholds[0],
        upper_threshold=thresholds[1],
        ramp_up_ma_per_s=rates[0],
        ramp_down_ma_per_s=rates[1],
        min_amplitude_ma=low,
        max_amplitude_ma=high,
    )
    amp = drive(c, series)
    assert np.all(amp >= low) and np.all(amp <= high)


def test_burst_commands_with_nan_and_inf_pulses_conform():
    class Burster(Controller):
        name = "burster"

        def reset(self, n, rng):
            self.k_ = 0
            self.n_ = n

        def update(self, t, features):
            self.k_ += 1
            pulses = np.full(self.n_, np.nan)  # no change ...
            if self.k_ % 10 == 0:
                pulses[:] = 5.0  # ... but a burst of 5 every tenth period
            if self.k_ % 25 == 0:
                pulses[:] = np.inf  # and back to continuous now and then
            return {"amplitude_ma": np.ones(self.n_), "pulses": pulses}

    check_controller(Burster)
