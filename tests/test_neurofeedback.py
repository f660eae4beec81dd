"""Neurofeedback: the subject's learning rule against its definition, sham and
transfer on the fear model's experiment, invariants and the command line
(feedback timing: tests/test_neurofeedback_timing.py)."""

from pathlib import Path

import numpy as np
import pytest

from closedloop.cli.main import main
from closedloop.config import load_config
from closedloop.experiment import run_experiment
from closedloop.io import load_run
from closedloop.neurofeedback import TraceLearner, TrainingSchedule, softmax

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "neurofeedback_amygdala.yaml"
NO_FIGURE = ["output.figure=false"]


# -- the rule on toy cases with closed forms ---------------------------------------
def test_single_action_value_is_the_incremental_mean_closed_form():
    alpha, r = 0.15, 0.7
    learner = TraceLearner(1, alpha, trace_decay=0.5, temperature=1.0)
    learner.reset(3)
    everyone = np.ones(3, dtype=bool)
    for m in range(1, 30):
        learner.act(np.zeros(3, dtype=int), everyone)
        learner.credit(np.full(3, r), everyone)
        np.testing.assert_allclose(learner.values_[:, 0], r * (1 - (1 - alpha) ** m), rtol=1e-12)


@pytest.mark.parametrize("latency", [0, 1])
def test_alternating_actions_reach_the_two_cycle_fixed_point(latency):
    # Actions alternate 0, 1, 0, ...; the reward of frame t is R[a(t - latency)].
    # In the stationary regime the accumulating trace just after choosing a is
    # (1, lam) / (1 - lam^2) (own, other): the weights are (1, lam) / (1 + lam).
    # Each value then follows a two-step affine map whose fixed point is exact.
    alpha, lam, big_r = 0.1, 0.6, np.array([1.0, -0.5])
    learner = TraceLearner(2, alpha, lam, temperature=1.0)
    learner.reset(1)
    one = np.ones(1, dtype=bool)
    actions = [t % 2 for t in range(1000)]
    for t, a in enumerate(actions):
        learner.act(np.array([a]), one)
        cause = actions[t - latency] if t >= latency else None
        learner.credit(np.array([big_r[cause] if cause is not None else np.nan]), one)
    own, other = 1 / (1 + lam), lam / (1 + lam)
    r_after_0 = big_r[0] if latency == 0 else big_r[1]  # reward on frames choosing 0
    r_after_1 = big_r[1] if latency == 0 else big_r[0]

    def fixed_point(w1, r1, w2, r2):  # Q after step 1 (w1, r1) then step 2 (w2, r2)
        a1, a2 = alpha * w1, alpha * w2
        return ((1 - a2) * a1 * r1 + a2 * r2) / (1 - (1 - a1) * (1 - a2))

    # The last frame chose action 1 (t = 999): the cycle ends there.
    q0 = fixed_point(own, r_after_0, other, r_after_1)
    q1 = fixed_point(other, r_after_0, own, r_after_1)
    np.testing.assert_allclose(learner.values_[0], [q0, q1], rtol=1e-9)
    # One frame of latency with actions switching every frame reverses the credit.
    assert (q0 > q1) == (latency == 0)


def test_softmax_and_choice_frequencies():
    q = np.array([[0.0, 0.1, 0.3, 1000.0], [0.2, 0.2, 0.2, 0.2]])
    p = softmax(q, 0.1)
    assert np.all(np.isfinite(p)) and p[0, 3] == pytest.approx(1.0)
    np.testing.assert_allclose(p[1], 0.25)
    learner = TraceLearner(3, 0.1, 0.0, temperature=0.05)
    learner.reset(20_000)
    learner.values_[:] = [0.0, 0.05, 0.1]
    expect = np.exp(np.array([0.0, 1.0, 2.0])) / np.exp([0.0, 1.0, 2.0]).sum()
    counts = np.bincount(learner.choose(np.random.default_rng(0).random(20_000)), minlength=3)
    np.testing.assert_allclose(counts / 20_000, expect, atol=4 * np.sqrt(0.25 / 20_000))


def test_schedule_counts_blocks_runs_and_transfer():
    s = TrainingSchedule(2, 3, blocks_per_run=2, runs_per_session=2, sessions=2, transfer_runs=1)
    frames = [s.frame(f) for f in range(s.total_frames)]
    assert s.total_frames == 5 * 10
    assert sum(fr.regulate for fr in frames) == 5 * 2 * 3
    assert sum(fr.regulate and fr.feedback for fr in frames) == 4 * 2 * 3
    assert [fr.session for fr in frames if fr.run_end] == [0, 0, 1, 1, 2]
    assert sum(fr.block_start for fr in frames) == 10
    assert s.frame(s.total_frames).run == -1 and not s.frame(-1).regulate


# -- the experiment: sham and transfer over 8 + 8 subjects -------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The shipped experiment: 8 real-feedback and 8 yoked-sham subjects."""
    exp = load_config(EXPERIMENT, NO_FIGURE)
    return load_run(run_experiment(exp, tmp_path_factory.mktemp("nf")).path)


def _arm(run, metric, sham):
    return run.metrics[metric][run.metrics["nf_sham"] == sham]


@pytest.mark.slow
def test_sham_feedback_gives_no_specific_learning(trained):
    run = trained
    real = _arm(run, "nf_regulation_last_pct", 0)
    sham = _arm(run, "nf_regulation_last_pct", 1)
    assert real.mean() < sham.mean() - 8.0
    # the sham arm does not improve from its first to its last run
    sham_learning = _arm(run, "nf_learning_pct", 1).mean()
    assert abs(sham_learning) < abs(_arm(run, "nf_learning_pct", 0).mean()) / 2
    # and its choices stay near uniform (4 actions)
    p_final = np.stack([run.timeseries[f"nf_p_action{k}"][:, -1] for k in range(4)])
    assert p_final[:, run.metrics["nf_sham"] == 1].max(axis=0).mean() < 0.6
    assert p_final[3, run.metrics["nf_sham"] == 0].mean() > 0.8  # the most effective


@pytest.mark.slow
def test_learned_regulation_transfers_without_feedback(trained):
    run = trained
    transfer = _arm(run, "nf_transfer_pct", 0)
    last = _arm(run, "nf_regulation_last_pct", 0)
    assert transfer.mean() < -10.0
    # The model keeps its learnt values without feedback: transfer is nearly
    # complete (studies report partial transfer; see the README).
    ratio = transfer.mean() / last.mean()
    assert 0.7 < ratio < 1.2


@pytest.mark.slow
def test_the_events_give_the_learning_curve(trained):
    run = trained
    ev = {k: np.asarray(run.arrays[f"events/nf_runs/{k}"]) for k in ("run", "instance",
          "regulation_pct", "baseline_mean", "regulate_mean", "feedback")}  # fmt: skip
    assert len(ev["run"]) == 16 * 7 and set(ev["feedback"][ev["run"] == 6]) == {0}
    # the regulation of each run by its definition, from the recorded frames
    t = run.time("nf_measured")
    y = run.timeseries["nf_measured"]
    action = run.timeseries["nf_action"]
    regulating = np.concatenate([np.zeros((16, 1), bool), action[:, :-1] >= 0], axis=1)
    run_of = ((t - 1e-9) // 60).astype(int)
    for i in (0, 9):
        for k in (0, 6):
            sel = run_of == k
            base = y[i, sel & ~regulating[i]].mean()
            reg = y[i, sel & regulating[i]].mean()
            row = (ev["instance"] == i) & (ev["run"] == k)
            assert ev["regulation_pct"][row][0] == pytest.approx(100 * (reg - base) / base)


@pytest.mark.slow
def test_time_shuffled_sham_gives_no_specific_learning(tmp_path):
    # The other sham: each sham subject sees its own display from a random
    # earlier frame, so the feedback has the right statistics but no contingency.
    exp = load_config(
        EXPERIMENT, [*NO_FIGURE, "name=shuffled", "neurofeedback.sham.source=shuffled"]
    )
    m = load_run(run_experiment(exp, tmp_path).path).metrics
    real, sham = m["nf_sham"] == 0, m["nf_sham"] == 1
    assert m["nf_regulation_last_pct"][real].mean() < m["nf_regulation_last_pct"][sham].mean() - 8
    assert abs(m["nf_learning_pct"][sham].mean()) < abs(m["nf_learning_pct"][real].mean()) / 2


# -- invariants and the command line ----------------------------------------------
SHORT = [*NO_FIGURE, "duration_s=30.0", "n_instances=3", "neurofeedback.sham.instances=1",
         "neurofeedback.rest_s=2.0", "neurofeedback.regulate_s=3.0",
         "neurofeedback.blocks_per_run=2", "neurofeedback.sessions=1",
         "neurofeedback.runs_per_session=2", "neurofeedback.learning_rate=0.5"]  # fmt: skip


def _short_run(tmp_path, *overrides):
    return load_run(run_experiment(load_config(EXPERIMENT, [*SHORT, *overrides]), tmp_path).path)


def _nf_series(run):
    return {k: np.asarray(v) for k, v in run.timeseries.items() if k.startswith("nf_")}


def test_determinism_chunk_invariance_and_instances_independent_of_batch(tmp_path):
    a = _short_run(tmp_path, "name=a")
    b = _short_run(tmp_path, "name=b", "output.chunk_s=3.0")
    sa, sb = _nf_series(a), _nf_series(b)
    assert sa.keys() == sb.keys() and "nf_input" in sa
    for key in sa:
        np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)
    assert np.any(sa["nf_input"] != 0)
    # A real subject's course does not depend on the batch it ran in.
    c = _short_run(tmp_path, "name=c", "n_instances=1", "neurofeedback.sham.instances=0")
    np.testing.assert_array_equal(_nf_series(c)["nf_input"][0], sa["nf_input"][0])
    # The input reaches the model: frames after a strongly inhibiting action
    # (input recorded at a frame's end acts over the next frame) read lower.
    u, y = sa["nf_input"][:, :-1], sa["nf_measured"][:, 1:]
    assert y[u > 0.3].mean() < 0.9 * y[u == 0.0].mean()


@pytest.mark.slow
def test_experiment_file_to_complete_run_file_and_figure(tmp_path, capsys):
    sets = [x for s in SHORT if s != "output.figure=false" for x in ("--set", s)]
    code = main(["run", str(EXPERIMENT), "--out", str(tmp_path), *sets])
    assert code == 0
    run = load_run(tmp_path / "neurofeedback_amygdala.h5")
    assert run.status == "complete"
    assert (tmp_path / "neurofeedback_amygdala.png").stat().st_size > 20_000
    assert "events/nf_runs/regulation_pct" in run.arrays
    for name in ("nf_regulation_last_pct", "nf_transfer_pct", "nf_sham"):
        assert run.metrics[name].shape == (3,)
    assert np.isfinite(run.metrics["nf_transfer_pct"]).all()
    assert "nf_transfer_pct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("override", "path", "words"),
    [
        ("neurofeedback.parameter=k", "neurofeedback.parameter", "modulatable"),
        ("neurofeedback.latency_s=0.5", "neurofeedback.latency_s", "whole number"),
        ("neurofeedback.sham.instances=16", "neurofeedback.sham.instances", "real-feedback"),
        ("neurofeedback.readout=feature_beta", "neurofeedback.readout", "offers"),
        ("neurofeedback.temperature=0", "neurofeedback.temperature", "greater than"),
    ],
)
def test_bad_neurofeedback_blocks_are_refused_with_their_key(
    tmp_path, capsys, override, path, words
):
    code = main(["run", str(EXPERIMENT), "--out", str(tmp_path), "--set", override])
    err = capsys.readouterr().err
    assert code == 2 and path in err and words in err and "Traceback" not in err
