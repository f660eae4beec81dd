"""Neurofeedback: feedback timing (latency, a strategy held per block, intermittent
feedback) on the fear model's experiment, real-feedback subjects only."""

from pathlib import Path

import numpy as np
import pytest

from closedloop.config import load_config
from closedloop.experiment import run_experiment
from closedloop.io import load_run

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "neurofeedback_amygdala.yaml"
REAL_ONLY = ["output.figure=false", "n_instances=8", "neurofeedback.sham.instances=0"]


def _last_run_regulation(tmp_path, name, *overrides):
    exp = load_config(EXPERIMENT, [*REAL_ONLY, f"name={name}", *overrides])
    return load_run(run_experiment(exp, tmp_path).path).metrics["nf_regulation_last_pct"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Last-run regulation of 8 subjects at latency 1 s (the experiment's), at 6 s,
    and at 6 s with each strategy held for a whole 10 s regulate block."""
    d = tmp_path_factory.mktemp("nf")
    return {
        1.0: _last_run_regulation(d, "l1", "neurofeedback.latency_s=1.0"),
        6.0: _last_run_regulation(d, "l6", "neurofeedback.latency_s=6.0"),
        (6.0, 10.0): _last_run_regulation(
            d, "l6h", "neurofeedback.latency_s=6.0", "neurofeedback.hold_s=10"
        ),
    }


@pytest.mark.slow
def test_learning_fails_with_long_feedback_latency(trained):
    # Oblak et al. 2017: delayed feedback makes temporal credit assignment
    # harder. With an action per 1 s frame, 6 s of latency leaves the subject
    # near its naive (random-action) regulation; 1 s lets it learn.
    fast, slow = trained[1.0], trained[6.0]
    assert fast.mean() < -12.0
    assert fast.mean() < slow.mean() - 6.0
    # per subject: most fast learners beat the slow arm's mean
    assert np.mean(fast < slow.mean()) >= 0.75


@pytest.mark.slow
def test_holding_a_strategy_per_block_removes_the_latency_penalty(trained):
    # Credit assignment, not latency as such: a strategy kept for the whole
    # block is still eligible when its feedback arrives 6 s later.
    held, switching, fast = trained[(6.0, 10.0)], trained[6.0], trained[1.0]
    assert held.mean() < switching.mean() - 6.0
    assert abs(held.mean() - fast.mean()) < 4.0


@pytest.mark.slow
def test_intermittent_feedback_needs_a_strategy_held_through_the_block(tmp_path):
    # One value per block, shown 5 s after it: the eligibility at the block's
    # end covers only its last frames, so a subject switching every frame
    # cannot learn, and one holding its strategy for the block can.
    common = ["neurofeedback.feedback=intermittent", "neurofeedback.latency_s=5.0"]
    held = _last_run_regulation(tmp_path, "h", *common, "neurofeedback.hold_s=10")
    switching = _last_run_regulation(tmp_path, "s", *common)
    assert held.mean() < -12.0
    assert switching.mean() > -9.0
    assert held.mean() < switching.mean() - 5.0
