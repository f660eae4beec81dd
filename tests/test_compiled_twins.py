"""Compiled controller twins issue the commands of their numpy classes."""

import math

import numpy as np
import pytest
from test_experiment import EXPERIMENT
from twin_cases import TWIN_CONTROLLERS

from closedloop.config import ConfigError, load_config
from closedloop.controllers import PID, DualThreshold, OnOff, OpenLoop
from closedloop.controllers.compiled import controller_update
from closedloop.core.loop import ClosedLoop
from closedloop.device import Device
from closedloop.models import STNGPe
from closedloop.sensing.chain import SensingChain

CONTROLLERS = TWIN_CONTROLLERS


@pytest.mark.parametrize("controller", CONTROLLERS, ids=lambda c: repr(c)[:40])
def test_twin_issues_the_same_commands(controller):
    n, period_s, n_periods = 3, 0.005, 400
    rng = np.random.default_rng(4)
    # Random walks crossing thresholds and set points, with NaN and huge values.
    biomarker = 30 + np.cumsum(rng.normal(0, 3, size=(n_periods, n)), axis=0)
    biomarker[50, 0] = np.nan
    biomarker[60, 1] = 1e300
    controller.reset(n, np.random.default_rng(0))
    kind, params, state = controller.compiled()
    for k in range(n_periods):
        expected = controller.update((k + 1) * period_s, {"biomarker": biomarker[k]})
        for i in range(n):
            got = controller_update(i, kind, params, state, biomarker[k, i], period_s)
            for value, key in zip(
                got, ("amplitude_ma", "frequency_hz", "pulse_width_us", "pulses"), strict=True
            ):
                # A key left out means "no change", which the twin says with NaN.
                want = expected[key][i] if key in expected else math.nan
                if math.isnan(want):
                    assert math.isnan(value), (k, i, key)
                else:
                    assert value == pytest.approx(want, rel=1e-12, abs=1e-12), (k, i, key)


@pytest.mark.parametrize("controller", CONTROLLERS, ids=lambda c: repr(c)[:40])
def test_twin_taken_over_mid_run_continues_with_the_class_commands(controller):
    # run() after run() hands the controller's state to the twin: integral, last error, ramps.
    n, period_s = 2, 0.005
    rng = np.random.default_rng(9)
    biomarker = 30 + np.cumsum(rng.normal(0, 3, size=(300, n)), axis=0)
    controller.reset(n, np.random.default_rng(0))
    for k in range(150):
        controller.update((k + 1) * period_s, {"biomarker": biomarker[k]})
    kind, params, state = controller.compiled()
    for k in range(150, 300):
        expected = controller.update((k + 1) * period_s, {"biomarker": biomarker[k]})
        for i in range(n):
            got = controller_update(i, kind, params, state, biomarker[k, i], period_s)
            assert got[0] == pytest.approx(expected["amplitude_ma"][i], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("controller", CONTROLLERS[1:4], ids=lambda c: type(c).__name__)
def test_closed_loop_gives_the_same_run_with_either_engine(controller):
    runs = {}
    for engine in ("python", "compiled"):
        loop = ClosedLoop(
            STNGPe(dt_s=1e-4, n=2),
            SensingChain(noise_std=2.0),
            Device(),
            controller,
            control_period_s=0.002,
            latency_s=0.003,
            seed=7,
            engine=engine,
        )
        loop.reset()
        chunks: list = []

        def keep(t0, d, chunks=chunks):
            chunks.append((d["lfp"].copy(), d["amplitude"].copy()))

        totals = loop.run(
            1.0,
            chunk_s=0.25,
            on_chunk=keep,
        )
        runs[engine] = (
            np.hstack([c[0] for c in chunks]),
            np.hstack([c[1] for c in chunks]),
            totals["energy_j"],
        )
    for a, b in zip(runs["python"], runs["compiled"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert runs["python"][1].max() > 0  # the controller did stimulate


def test_compiled_engine_needs_a_twin():
    with pytest.raises(ConfigError) as info:
        load_config(
            EXPERIMENT,
            [
                "control.engine=compiled",
                "controller.name=user_controllers.HalfAmplitude",
                "controller.params={}",
            ],
        )
    assert any(p == "control.engine" and "no compiled twin" in m for p, m in info.value.problems)


# -- edge inputs: thresholds and set points hit exactly, zero, infinities, NaN --------

BIG = np.finfo(float).max
PERIOD_S = 0.01


def _edges(level: float) -> list[float]:
    """Biomarker values at and around ``level`` and the extremes of a float."""
    with np.errstate(over="ignore"):  # the neighbour of the largest float is inf: fine
        above, below = np.nextafter(level, math.inf), np.nextafter(level, -math.inf)
    return [
        level,
        float(above),
        float(below),
        0.0,
        -0.0,
        math.inf,
        -math.inf,
        math.nan,
        1e300,
        -1e300,
        BIG,
        -BIG,
    ]


def _both_engines(controller, biomarker):
    """Commands of the class and of its twin, shape (periods, n, 4), fed the same series.

    The twin starts from the state ``compiled()`` reports after ``reset``; a key
    the class leaves out is NaN (no change), as the twin says it. Also returns
    the twin's final state.
    """
    biomarker = np.asarray(biomarker, dtype=float)
    n_periods, n = biomarker.shape
    controller.reset(n, np.random.default_rng(0))
    kind, params, state = controller.compiled()
    keys = ("amplitude_ma", "frequency_hz", "pulse_width_us", "pulses")
    numpy_out = np.full((n_periods, n, 4), np.nan)
    twin_out = np.full((n_periods, n, 4), np.nan)
    for k in range(n_periods):
        with np.errstate(invalid="ignore"):  # kp = 0 times an infinite error: NaN
            command = controller.update((k + 1) * PERIOD_S, {"biomarker": biomarker[k].copy()})
        for j, key in enumerate(keys):
            if key in command:
                numpy_out[k, :, j] = command[key]
        for i in range(n):
            twin_out[k, i] = controller_update(i, kind, params, state, biomarker[k, i], PERIOD_S)
    return numpy_out, twin_out, state


EDGE_CONTROLLERS = [
    OpenLoop(amplitude_ma=1.25, frequency_hz=140.0, pulse_width_us=90.0),
    OnOff(threshold=1.0, amplitude_ma=2.0, ramp_time_s=0.1),
    OnOff(threshold=0.0, amplitude_ma=2.0, ramp_time_s=0.0),  # instant switch, at zero
    OnOff(threshold=-BIG, amplitude_ma=1.0, ramp_time_s=0.05),
    DualThreshold(lower_threshold=1.0, upper_threshold=2.0, min_amplitude_ma=0.5),
    DualThreshold(lower_threshold=0.0, upper_threshold=0.0, ramp_up_ma_per_s=4.0),
    DualThreshold(lower_threshold=-1.0, upper_threshold=BIG, ramp_down_ma_per_s=0.0),
    PID(setpoint=1.0, kp=0.5, ki=2.0, max_amplitude_ma=3.0),
    PID(setpoint=0.0, kp=0.0, ki=5.0, min_amplitude_ma=0.5, max_amplitude_ma=2.5),
    PID(setpoint=1.0, kp=0.5, ki=2.0, kd=0.05, min_amplitude_ma=0.2),
    PID(setpoint=-3.0, kp=-0.5, ki=-2.0, kd=-0.01, max_amplitude_ma=3.0),
]


def _levels(controller) -> list[float]:
    return [float(v) for v in getattr(controller, "thresholds", dict)().values()] or [1.0]


@pytest.mark.parametrize("controller", EDGE_CONTROLLERS, ids=lambda c: repr(c)[:60])
def test_twin_matches_the_class_bit_for_bit_on_edge_inputs(controller):
    values = sorted({v for level in _levels(controller) for v in _edges(level)}, key=repr)
    # Each instance sees every edge value, in its own order, several times over, so
    # that each value is met from every kind of state (ramping, saturated, frozen).
    rng = np.random.default_rng(11)
    n = 6
    series = (
        np.array([rng.permutation(values) for _ in range(4 * n)]).reshape(n, -1).T
    )  # (periods, n)
    series = np.r_[np.full((20, n), 1e3), series, np.full((20, n), -1e3), series[::-1]]
    numpy_out, twin_out, _ = _both_engines(controller, series)
    # Bit for bit, NaN where the class gives NaN: the twin is the same arithmetic.
    np.testing.assert_array_equal(twin_out, numpy_out)


def _steps_after_settling(controller, settle, edge_values):
    """Amplitude change of one period at each edge value, from a settled amplitude."""
    n = len(edge_values)
    series = np.r_[np.full((settle[1], n), settle[0]), [edge_values]]
    numpy_out, twin_out, _ = _both_engines(controller, series)
    np.testing.assert_array_equal(twin_out, numpy_out)
    before, after = numpy_out[-2, :, 0], numpy_out[-1, :, 0]
    return before, after


def test_on_off_is_on_strictly_above_its_threshold_in_both_engines():
    threshold = 1.0
    c = OnOff(threshold=threshold, amplitude_ma=2.0, ramp_time_s=0.1)  # 0.2 mA per period
    values = _edges(threshold)
    before, after = _steps_after_settling(c, (threshold + 1.0, 5), values)  # half on: 1 mA
    np.testing.assert_array_equal(before, 1.0)
    up = {float(np.nextafter(threshold, math.inf)), math.inf, 1e300, BIG}
    expected = [1.2 if v in up else 0.8 for v in values]  # at threshold, NaN, -inf: down
    np.testing.assert_allclose(after, expected, rtol=1e-12)


def test_dual_threshold_ramps_above_upper_lowers_below_lower_and_holds_on_both():
    lower, upper = 1.0, 2.0
    c = DualThreshold(
        lower_threshold=lower,
        upper_threshold=upper,
        ramp_up_ma_per_s=10.0,  # 0.1 mA per period
        ramp_down_ma_per_s=20.0,  # 0.2 mA per period
        min_amplitude_ma=0.0,
        max_amplitude_ma=3.0,
    )
    values = sorted(set(_edges(lower) + _edges(upper)), key=repr)
    before, after = _steps_after_settling(c, (upper + 1.0, 10), values)  # 1 mA
    np.testing.assert_allclose(before, 1.0, rtol=1e-12)
    for value, amp in zip(values, after, strict=True):
        if value > upper:
            want = 1.1
        elif value < lower:
            want = 0.8
        else:  # both thresholds, the band between them and NaN hold
            want = 1.0
        assert amp == pytest.approx(want, rel=1e-12), value


def test_dual_threshold_with_equal_thresholds_holds_only_on_the_threshold():
    c = DualThreshold(
        lower_threshold=0.0, upper_threshold=0.0, ramp_up_ma_per_s=10.0, ramp_down_ma_per_s=10.0
    )
    values = [0.0, -0.0, 5e-324, -5e-324, math.nan]
    before, after = _steps_after_settling(c, (1.0, 10), values)
    np.testing.assert_allclose(before, 1.0, rtol=1e-12)
    np.testing.assert_allclose(after, [1.0, 1.0, 1.1, 0.9, 1.0], rtol=1e-12)


def test_pid_at_its_set_point_and_at_infinite_errors_in_both_engines():
    setpoint, kp, ki = 1.0, 0.5, 2.0  # ki * period = 0.02 mA per unit error
    for kd in (0.0, 0.05):
        c = PID(setpoint=setpoint, kp=kp, ki=ki, kd=kd, max_amplitude_ma=3.0)
        values = [setpoint, math.inf, -math.inf, math.nan, BIG, -BIG]
        # 50 periods at error 1: integral term 1 mA, amplitude 1.5 mA.
        n = len(values)
        series = np.r_[np.full((50, n), setpoint + 1.0), [values]]
        numpy_out, twin_out, twin_state = _both_engines(c, series)
        np.testing.assert_array_equal(twin_out, numpy_out)
        np.testing.assert_allclose(numpy_out[-2, :, 0], 1.5, rtol=1e-12)
        amp = numpy_out[-1, :, 0]
        # On the set point: the integral holds, P falls to 0 (plus the derivative
        # term, kd * (0 - 1) / period, when there is one).
        assert amp[0] == pytest.approx(max(1.0 - kd / PERIOD_S, 0.0), rel=1e-12)
        # Infinite or huge errors give the limits, NaN gives NaN (the device decides).
        np.testing.assert_array_equal(amp[1:], [3.0, 0.0, math.nan, 3.0, 0.0])
        # ... and none of them moved the integral term, in either engine.
        np.testing.assert_allclose(c.integral_ma_, 1.0, rtol=1e-12)
        np.testing.assert_array_equal(twin_state[:, 0], c.integral_ma_)
