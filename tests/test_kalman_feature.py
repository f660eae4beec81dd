"""The Kalman estimate of an identified model as a recorded feature any controller reads.

Independent reference: :class:`closedloop.control.estimation.KalmanFilter` run
offline, period by period, on the feature and the amplitude the run file
recorded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from closedloop.config import ConfigError, load_raw, validate_config
from closedloop.control.estimation import KalmanFilter
from closedloop.control.sysid import StateSpaceModel
from closedloop.controllers import OpenLoop
from closedloop.experiment import run_experiment
from closedloop.io import load_run

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "experiments" / "mdd_mpc.yaml"
MODEL = ROOT / "experiments" / "models" / "mdd_mpc_vacc.npz"


def _raw(**kalman):
    raw = load_raw(CONFIG)
    raw.update(duration_s=2.0, warmup_s=0.0)
    raw["metrics"] = {"discard_s": 0.5}
    raw["output"] = {"figure": False}
    raw["kalman"] = {"model": "models/mdd_mpc_vacc.npz", "feature": "feature_area", **kalman}
    return raw


def test_the_recorded_estimate_equals_the_filter_run_offline(tmp_path):
    """The MPC's own commands move the plant; the feature follows them."""
    exp = validate_config(_raw(), str(CONFIG))
    run = load_run(run_experiment(exp, tmp_path).path)
    ts = run.timeseries
    y, u = np.asarray(ts["feature_area"]), np.asarray(ts["amplitude"])
    n, periods = y.shape
    assert np.ptp(u) > 0.1  # the commands vary: the prediction step is exercised
    model = StateSpaceModel.load(MODEL)
    offline = KalmanFilter(model, n)
    x_filt = np.zeros((n, periods, model.order))
    y_pred = np.zeros((n, periods))
    for k in range(periods):
        x_filt[:, k] = offline.correct(y[:, k : k + 1])
        y_pred[:, k] = offline.output(offline.predict(u[:, k : k + 1]))[:, 0]
    # Sample 0 is the state at the start (reset: zero); sample k + 1 follows period k.
    for i in range(model.order):
        recorded = np.asarray(ts[f"kalman_x{i}"])
        assert recorded.shape == (n, periods + 1)
        np.testing.assert_array_equal(recorded[:, 0], 0.0)
        np.testing.assert_allclose(recorded[:, 1:], x_filt[:, :, i], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.asarray(ts["kalman_y_pred"])[:, 1:], y_pred, rtol=1e-12)
    # One period ahead, the prediction tracks the feature it predicts.
    err = y_pred[:, 10:-1] - y[:, 11:]
    assert np.sqrt(np.mean(err**2)) < 0.5 * np.std(y[:, 11:])


class _Sees(OpenLoop):
    """Open loop that keeps what it was handed as ``kalman_y_pred``."""

    required_features = ("biomarker", "kalman_y_pred")

    def reset(self, n, rng):
        super().reset(n, rng)
        self.seen_ = []

    def update(self, t, features):
        self.seen_.append(np.array(features["kalman_y_pred"]))
        return super().update(t, features)

    def compiled(self):  # None: update() runs in Python, every period
        return None


def test_any_controller_reads_the_estimate_as_a_feature():
    exp = validate_config(_raw(), str(CONFIG))
    loop = exp.loop
    loop.controller = _Sees(amplitude_ma=0.8)
    values = []
    loop.reset()
    loop.run(1.0, on_chunk=lambda t0, d: values.append(np.asarray(d["kalman_y_pred"])))
    recorded = np.concatenate(values, axis=1)
    seen = np.stack(loop.controller.seen_, axis=1)
    # The controller of each period sees the latest prediction (for that period).
    # Sample 0 is the reset state; sample k + 1 follows period k.
    assert seen.shape == (2, 50) and recorded.shape == (2, 51)
    # Period k's controller sees the prediction made at the end of period k - 1.
    np.testing.assert_array_equal(seen, recorded[:, :50])


@pytest.mark.parametrize(
    ("kalman", "key", "words"),
    [
        ({"feature": "feature_nope"}, "kalman.feature", "not a readout"),
        ({"model": "models/none.npz"}, "kalman.model", "no such file"),
        ({"colour": 1}, "kalman.colour", ""),
    ],
)
def test_bad_kalman_blocks_name_the_key(kalman, key, words):
    with pytest.raises(ConfigError) as info:
        validate_config(_raw(**kalman), str(CONFIG))
    assert key in str(info.value) and words in str(info.value)
