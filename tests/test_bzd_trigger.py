"""A benzodiazepine lowers a gamma-triggered detector's trigger rate while it acts."""

from __future__ import annotations

import numpy as np

from closedloop.config import load_config
from closedloop.experiment import run_experiment
from closedloop.io import load_run


def test_midazolam_lowers_the_trigger_rate_of_a_gamma_detector_and_it_recovers(tmp_path):
    exp = load_config("experiments/bzd_gamma_trigger.yaml", ["output.figure=false"])
    run = load_run(run_experiment(exp, tmp_path).path)
    # Trigger times are neural time: epoch k (30 s) covers slow time [k, k + 1) * 10 min.
    epoch = (run.arrays["events/triggers/time_s"] // 30.0).astype(int)
    per_min = np.bincount(epoch, minlength=24) / exp.config.n_instances / 0.5
    before = per_min[:6].mean()  # the first hour, no drug
    acting = per_min[9:15].mean()  # 0.5-1.5 h after the 1 h dose (effect near its peak)
    worn_off = per_min[18:24].mean()  # 2-3 h after
    effect = run.timeseries["drugs_midazolam_effect"][0]
    assert effect[: 6 * 60].max() == 0.0 and effect.max() > 0.2
    assert before > 15.0
    assert acting < 0.4 * before  # measured 0.21
    assert worn_off > 0.7 * before  # measured 0.89
