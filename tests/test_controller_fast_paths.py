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

from closedloop.controllers import PID


def biomarker_sequence() -> list[float]:
    """Ordinary values around a setpoint of 30, then the values that break arithmetic."""
    rng = np.random.default_rng(7)
    ordinary = list(30.0 + 20.0 * rng.standard_normal(200))
    hostile = [np.nan, 30.0, np.inf, 31.0, -np.inf, 1e300, -1e300, 29.0, np.nan, np.nan, 0.0]
    return ordinary + hostile + ordinary[:50] + [1e200] * 5 + [-1e200] * 5 + ordinary[:20]


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize(
    "params",
    [
        {"setpoint": 30.0, "kp": 0.02, "ki": 0.2, "max_amplitude_ma": 3.0},
        {"setpoint": 30.0, "kp": 0.05, "ki": 2.0, "kd": 0.003, "max_amplitude_ma": 2.5},
        {"setpoint": 30.0, "kp": -0.1, "ki": 5.0, "min_amplitude_ma": 0.5},
    ],
)
def test_pid_at_one_instance_equals_the_array_path(params: dict) -> None:
    one, many = PID(**params), PID(**params)
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
        np.testing.assert_array_equal(np.repeat(one.integral_ma_, 3), many.integral_ma_)
        amplitudes.add(float(a["amplitude_ma"][0]))
    # The run went through the range, not one saturated value.
    assert len(amplitudes) > 10
