"""The n = 1 float paths of the built-in controllers equal their array paths bit for bit.

Issue 18, gap 5: at n = 1 a controller's ``update`` runs on Python floats
instead of one-element arrays. The reference is the same controller at
n = 3 (the array path), every row fed the same biomarker: the n = 1 answer
must equal each row exactly, through NaN, infinities, huge values, saturation
at both limits and a change of control period.
"""

from __future__ import annotations

import numpy as np
import pytest

from closedloop.controllers import PID, DualThreshold, OnOff


def biomarker_sequence() -> list[float]:
    """Ordinary values around a setpoint of 30, then the values that break arithmetic."""
    rng = np.random.default_rng(7)
    ordinary = list(30.0 + 20.0 * rng.standard_normal(200))
    hostile = [np.nan, 30.0, np.inf, 31.0, -np.inf, 1e300, -1e300, 29.0, np.nan, np.nan, 0.0]
    return ordinary + hostile + ordinary[:50] + [1e200] * 5 + [-1e200] * 5 + ordinary[:20]


CASES = [
    (PID, {"setpoint": 30.0, "kp": 0.02, "ki": 0.2, "max_amplitude_ma": 3.0}),
    (PID, {"setpoint": 30.0, "kp": 0.05, "ki": 2.0, "kd": 0.003, "max_amplitude_ma": 2.5}),
    (PID, {"setpoint": 30.0, "kp": -0.1, "ki": 5.0, "min_amplitude_ma": 0.5}),
    (OnOff, {"threshold": 30.0, "amplitude_ma": 2.0, "ramp_time_s": 0.05}),
    (OnOff, {"threshold": 30.0, "ramp_time_s": 0.0}),
    (DualThreshold, {"lower_threshold": 25.0, "upper_threshold": 35.0, "min_amplitude_ma": 0.2}),
]


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize(("cls", "params"), CASES)
def test_one_instance_equals_the_array_path(cls: type, params: dict) -> None:
    one, many = cls(**params), cls(**params)
    one.reset(1, np.random.default_rng(0))
    many.reset(3, np.random.default_rng(0))
    t = 0.0
    amplitudes = set()
    for k, b in enumerate(biomarker_sequence()):
        t += 0.001 if k < 150 else 0.004  # the period changes mid-run
        a = one.update(t, {"biomarker": np.array([b])})
        m = many.update(t, {"biomarker": np.full(3, b)})
        for key, value in m.items():
            assert a[key].shape == (1,) and a[key].dtype == np.float64
            np.testing.assert_array_equal(np.repeat(a[key], 3), value, err_msg=f"{key} at {k}")
        state = "integral_ma_" if cls is PID else "amplitude_ma_"
        np.testing.assert_array_equal(np.repeat(getattr(one, state), 3), getattr(many, state))
        amplitudes.add(float(a["amplitude_ma"][0]))
    # The run went through the range, not one saturated value.
    assert len(amplitudes) > (10 if params.get("ramp_time_s", 1.0) > 0 else 1)
