"""Replaying a run's controller on what the run recorded repeats its decisions."""

from pathlib import Path

import numpy as np
import pytest

from closedloop.analysis.replay import replay_controller
from closedloop.config import load_config
from closedloop.experiment import run_experiment
from closedloop.io import load_run

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "pd_beta_adbs.yaml"


@pytest.mark.parametrize("seed", [1, 5])
def test_replayed_commands_are_the_delivered_amplitudes(tmp_path, seed):
    # No ramp or charge limit in the way and no latency: the amplitude
    # delivered in period k + 1 is what the controller commanded after period k.
    exp = load_config(
        EXPERIMENT,
        [
            "duration_s=2.0",
            "output.figure=false",
            "n_instances=2",
            f"seed={seed}",
            "device.ramp_rate_ma_per_s=.inf",
            "control.engine=python",
        ],
    )
    run = load_run(run_experiment(exp, tmp_path).path)
    delivered = run.timeseries["amplitude"]
    commanded = np.stack(
        [np.asarray(s.command["amplitude_ma"]) for s in replay_controller(run)], axis=1
    )
    assert commanded.shape == delivered.shape
    np.testing.assert_array_equal(commanded[:, :-1], delivered[:, 1:])
    assert commanded.max() > 0  # the controller did stimulate


def test_replay_needs_the_biomarker(tmp_path):
    exp = load_config(EXPERIMENT, ["duration_s=1.0", "output.figure=false"])
    run = load_run(run_experiment(exp, tmp_path).path)
    del run.timeseries["biomarker"]
    with pytest.raises(ValueError, match="biomarker"):
        next(replay_controller(run))
