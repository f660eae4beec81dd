"""Compiled controller twins issue the commands of their numpy classes."""

import math

import numpy as np
import pytest
from test_experiment import EXPERIMENT

from closedloop.config import ConfigError, load_config
from closedloop.controllers import PID, DualThreshold, OnOff, OpenLoop
from closedloop.controllers.compiled import controller_update
from closedloop.core.loop import ClosedLoop
from closedloop.device import Device
from closedloop.models import STNGPe
from closedloop.sensing.chain import SensingChain

CONTROLLERS = [
    OpenLoop(amplitude_ma=1.7, frequency_hz=140.0, pulse_width_us=90.0),
    OnOff(threshold=30.0, amplitude_ma=2.5, ramp_time_s=0.1),
    DualThreshold(
        lower_threshold=20.0,
        upper_threshold=35.0,
        ramp_up_ma_per_s=3.0,
        ramp_down_ma_per_s=1.5,
        min_amplitude_ma=0.2,
        max_amplitude_ma=3.0,
    ),
    PID(setpoint=30.0, kp=0.05, ki=0.4, max_amplitude_ma=3.0),
    PID(setpoint=30.0, kp=0.05, ki=0.4, kd=0.002, min_amplitude_ma=0.5, max_amplitude_ma=2.5),
]


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
