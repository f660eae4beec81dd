"""Fear/extinction mean-field model: the published dynamics, the protocol, learned state.

The generic contract (chunking, seeds, batches, bad parameters) is also run on
this model in test_models_contract.py; here: the science, and the learned
weights as state (chunk invariance, reset, batching, determinism).
"""

from pathlib import Path

import h5py
import numpy as np
import pytest

from closedloop.config import ConfigError, load_config
from closedloop.experiment import run_experiment
from closedloop.io import load_run
from closedloop.models import BUILTIN_MODELS, FearExtinction

#: Mean rate of each population during each CS presentation, read by eye
#: (+- 0.005) from Figure 1A of Carvalho et al. 2021 (ReScience C 7:4), the
#: re-implementation of Vlachos et al. 2011 Figure 4: 5 CS in context A, then
#: 6 in context B.
PUBLISHED_FEAR = [0.107, 0.169, 0.264, 0.386, 0.515, 0.513, 0.505, 0.490, 0.467, 0.437, 0.410]
PUBLISHED_EXTINCTION = [0.067, 0.064, 0.060, 0.056, 0.053, 0.078, 0.120, 0.192, 0.300, 0.432, 0.561]

#: A 1 mA, 100 us, 130 Hz train as mean cathodic current, mA.
TRAIN_MA = 1.0 * 100e-6 * 130.0


def run_trials(model, stim_ma=0.0, stim_phases=("extinction",), stim_offset_s=0.0, seeds=0):
    """Run the protocol CS by CS; per-CS mean rates and CS weights, shape (n, trials).

    Stimulation (mA mean cathodic current) is given for one CS duration from
    each CS onset plus ``stim_offset_s`` in the phases named.
    """
    model.reset(seeds)
    cs_steps = int(round(model.param_values["cs_duration_s"][0] / model.dt_s))
    offset = int(round(stim_offset_s / model.dt_s))
    rows = {k: [] for k in ("cs_rate_A", "cs_rate_B", "w_cs_A", "w_cs_B")}
    phases = []
    for phase, _context, onset_s in model.cs_trials():
        onset = int(round(onset_s / model.dt_s))
        end = onset + 2 * cs_steps  # past the CS end: its response is stored
        if onset > model.step_:
            model.advance(onset - model.step_)
        drive = np.zeros((model.n, end - model.step_))
        if phase in stim_phases:
            drive[:, offset : offset + cs_steps] = stim_ma
        model.advance(drive.shape[1], drive)
        obs = model.observables()
        for key, values in rows.items():
            values.append(obs[key])
        phases.append(phase)
    out = {k: np.stack(v, axis=1) for k, v in rows.items()}
    out["phase"] = np.array(phases)
    return out


def trials_to_extinction(trials):
    """First extinction CS (1-based) at which extinction neurons outfire fear neurons."""
    ext = trials["phase"] == "extinction"
    wins = trials["cs_rate_B"][0, ext] > trials["cs_rate_A"][0, ext]
    return int(np.argmax(wins)) + 1 if wins.any() else None


def test_registered():
    assert BUILTIN_MODELS["fear_extinction"] is FearExtinction
    model = FearExtinction()
    assert (model.sense_node, model.stim_node) == ("basal_amygdala", "il")
    # Fixed roles: the kernel senses the amygdala and drives IL whatever is asked.
    with pytest.raises(ValueError, match="fixed roles"):
        FearExtinction(sense_node="il")
    assert set(FearExtinction.modulatable) <= set(FearExtinction.parameters)


def test_reproduces_the_published_conditioning_and_extinction_figure():
    trials = run_trials(FearExtinction())
    np.testing.assert_allclose(trials["cs_rate_A"][0], PUBLISHED_FEAR, atol=0.01)
    np.testing.assert_allclose(trials["cs_rate_B"][0], PUBLISHED_EXTINCTION, atol=0.01)
    # dw/dt = alpha CS CTX over a 50 ms CS: 150 * 0.5 * 0.3 * 0.05 = 1.125 a trial,
    # only in the population's own context (Figure 1B: 6.625 and 7.75).
    steps = 1.0 + 1.125 * np.arange(1, 6)
    np.testing.assert_allclose(trials["w_cs_A"][0, :5], steps, rtol=1e-9)
    np.testing.assert_allclose(trials["w_cs_A"][0, 5:], 6.625, rtol=1e-9)
    np.testing.assert_allclose(trials["w_cs_B"][0, :5], 1.0, rtol=1e-9)
    np.testing.assert_allclose(trials["w_cs_B"][0, 5:], 1.0 + 1.125 * np.arange(1, 7), rtol=1e-9)


def test_context_decides_which_population_wins():
    trials = run_trials(FearExtinction())
    cond = trials["phase"] == "conditioning"
    ext = trials["phase"] == "extinction"
    a, b = trials["cs_rate_A"][0], trials["cs_rate_B"][0]
    # Fear neurons win every CS in context A and keep winning early in context B ...
    assert np.all(a[cond] > b[cond] + 0.04)
    assert a[ext][0] > 5 * b[ext][0]
    # ... until extinction neurons take over: fear falls, extinction rises.
    assert b[ext][-1] > a[ext][-1] + 0.1
    assert np.all(np.diff(a[ext]) < 0) and np.all(np.diff(b[ext]) > 0)
    assert trials_to_extinction(trials) == 6


def test_renewal_when_the_cs_returns_to_context_a():
    # Two instances, as many extinction CS as conditioning CS (equal CS
    # weights): one tested back in context A (renewal), one in context B.
    model = FearExtinction(
        n=2,
        params={
            "n_extinction": 5,
            "n_renewal": [1, 0],
            "n_recovery": [0, 1],
            "recovery_delay_s": 0.05,
        },
    )
    trials = run_trials(model)
    a, b = trials["cs_rate_A"][:, -1], trials["cs_rate_B"][:, -1]
    np.testing.assert_allclose(trials["w_cs_A"][:, 9], trials["w_cs_B"][:, 9], rtol=1e-9)
    assert a[0] > b[0] + 0.1  # context A: fear returns
    assert b[1] > a[1] + 0.1  # context B: extinction holds


def test_over_extinction_abolishes_renewal():
    # The extinction weight outgrows the context drive of the fear weight.
    trials = run_trials(FearExtinction(params={"n_extinction": 8, "n_renewal": 1}))
    assert trials["phase"][-1] == "renewal"
    assert trials["cs_rate_B"][0, -1] > trials["cs_rate_A"][0, -1] + 0.1


def test_no_spontaneous_recovery_whatever_the_delay():
    # Documented limitation: weights only grow and nothing depends on
    # elapsed time, so a CS after a minute evokes what it evoked right after
    # extinction (noise off so that both runs draw nothing).
    results = []
    for delay_s in (5.0, 60.0):
        model = FearExtinction(params={"n_recovery": 1, "recovery_delay_s": delay_s, "sigma": 0.0})
        results.append(run_trials(model))
    short, long = results
    assert long["phase"][-1] == "recovery"
    for key in ("cs_rate_A", "cs_rate_B", "w_cs_A", "w_cs_B"):
        np.testing.assert_allclose(long[key][0, -1], short[key][0, -1], rtol=1e-9)
    assert long["cs_rate_B"][0, -1] > long["cs_rate_A"][0, -1] + 0.1


def test_stimulation_paired_with_extinction_trials_speeds_extinction():
    base = run_trials(FearExtinction(), stim_ma=0.0)
    paired = run_trials(FearExtinction(), stim_ma=TRAIN_MA)
    # The same stimulation between CS (50 ms after each ends) does not pair with it.
    unpaired = run_trials(FearExtinction(), stim_ma=TRAIN_MA, stim_offset_s=0.1)
    # Excitation of extinction neurons only, no IL-gated learning.
    expression = run_trials(FearExtinction(params={"il_plasticity": 0.0}), stim_ma=TRAIN_MA)
    assert trials_to_extinction(base) == 6
    assert trials_to_extinction(paired) == 3
    assert trials_to_extinction(unpaired) == 6
    assert trials_to_extinction(expression) == 5
    # Paired stimulation is learned: the extinction weight ends far ahead, and
    # stimulation during the ITI or without IL-gated learning leaves it as it was.
    assert paired["w_cs_B"][0, -1] > base["w_cs_B"][0, -1] + 4.0
    assert unpaired["w_cs_B"][0, -1] == pytest.approx(base["w_cs_B"][0, -1], rel=1e-3)
    assert expression["w_cs_B"][0, -1] == base["w_cs_B"][0, -1]
    # Extinction learned with stimulation holds back in context A (no renewal).
    params = {"n_renewal": 1, "n_extinction": 5}
    plain = run_trials(FearExtinction(params=params))
    treated = run_trials(FearExtinction(params=params), stim_ma=TRAIN_MA)
    assert plain["cs_rate_A"][0, -1] > plain["cs_rate_B"][0, -1]
    assert treated["cs_rate_B"][0, -1] > treated["cs_rate_A"][0, -1] + 0.1


def _full_run(model, drive, chunks=None, seeds=0):
    model.reset(seeds)
    total = drive.shape[1]
    bounds = [0, *(chunks or []), total]
    signal = np.concatenate(
        [model.advance(b - a, drive[:, a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)],
        axis=1,
    )
    return signal, model.state["x"].copy()


def _protocol_drive(n, dt_s, total):
    # Paired stimulation over the extinction CS (1.55-2.6 s), ragged in time.
    drive = np.zeros((n, total))
    drive[:, int(1.55 / dt_s) : int(2.6 / dt_s)] = TRAIN_MA
    drive[:, ::7] = 0.0
    return drive


def test_chunk_invariance_covers_learned_weights():
    model = FearExtinction(n=2, params={"n_renewal": 1})
    total = int(round(3.0 / model.dt_s))
    drive = _protocol_drive(2, model.dt_s, total)
    whole, state_whole = _full_run(model, drive)
    # Chunk edges inside CS pulses, at CS offsets and inside the context gap.
    cuts = [1, 5003, 5500, 7001, 14000, 14100, 15500, 16001, 21777, 26000]
    chunked, state_chunked = _full_run(model, drive, cuts)
    np.testing.assert_array_equal(chunked, whole)
    np.testing.assert_array_equal(state_chunked, state_whole)
    obs = model.observables()
    assert obs["cs_trials"].tolist() == [12.0, 12.0]
    assert np.all(obs["w_cs_B"] > obs["w_cs_A"])  # weights learned


def test_reset_restores_learned_weights_and_determinism():
    model = FearExtinction(params={"w_cs0": 1.5})
    total = int(round(3.0 / model.dt_s))
    drive = _protocol_drive(1, model.dt_s, total)
    first, _ = _full_run(model, drive, seeds=3)
    assert model.observables()["w_cs_A"][0] > 1.5
    model.reset(3)
    obs = model.observables()
    assert obs["w_cs_A"][0] == obs["w_cs_B"][0] == 1.5
    assert obs["cs_trials"][0] == 0.0 and obs["cs_rate_A"][0] == 0.0
    again, _ = _full_run(model, drive, seeds=3)
    np.testing.assert_array_equal(again, first)
    other, _ = _full_run(model, drive, seeds=4)
    assert not np.array_equal(other, first)  # the noise follows the seed


def test_batch_equals_separate_runs():
    params = {"n_extinction": [6.0, 4.0, 8.0], "w_cs0": [1.0, 1.2, 0.8], "g_il": [23.0, 0.0, 40.0]}
    seeds = np.random.SeedSequence(11).spawn(3)
    batch = FearExtinction(n=3, params=params)
    total = int(round(3.0 / batch.dt_s))
    drive = _protocol_drive(3, batch.dt_s, total)
    drive[1] *= 0.5
    together, state = _full_run(batch, drive, [12345], seeds=seeds)
    for i in range(3):
        single = FearExtinction(params={k: v[i] for k, v in params.items()})
        alone, state_alone = _full_run(single, drive[i : i + 1], seeds=[seeds[i]])
        np.testing.assert_array_equal(alone[0], together[i])
        np.testing.assert_array_equal(state_alone[0], state[i])


def test_schedule_follows_the_parameters():
    model = FearExtinction(
        params={"n_renewal": 2, "n_recovery": 1, "recovery_delay_s": 30.0, "cs_period_s": 0.3}
    )
    trials = model.cs_trials()
    assert [t[0] for t in trials] == ["conditioning"] * 5 + ["extinction"] * 6 + ["renewal"] * 2 + [
        "recovery"
    ]
    assert [t[1] for t in trials[:5]] == ["A"] * 5 and trials[-1][1] == "B"
    onsets = np.array([t[2] for t in trials])
    np.testing.assert_allclose(onsets[:5], 0.5 + 0.3 * np.arange(5))
    # context A off 0.1 s after the last CS ends, 0.05 s gap, 0.1 s lead.
    assert onsets[5] == pytest.approx(0.5 + 1.2 + 0.05 + 0.05 + 0.05 + 0.1)
    assert onsets[-1] - onsets[-2] == pytest.approx(0.05 + 0.05 + 30.0 + 0.1)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_extinction": 2.5}, "'n_extinction' must be a whole number"),
        ({"cs_duration_s": 0.3}, "'cs_duration_s' must not exceed 'cs_period_s'"),
        ({"cs_period_s": 0.20005}, "'cs_period_s'"),
        ({"il_plasticity": 2.0}, "'il_plasticity' must lie in"),
    ],
)
def test_bad_protocol_parameters_are_refused_by_name(params, message):
    with pytest.raises(ValueError, match=message):
        FearExtinction(params=params)


EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "fear_extinction_open_loop.yaml"


def test_example_experiment_records_learned_weights_and_renewal(tmp_path):
    exp = load_config(EXPERIMENT, ["output.figure=false"])
    run_experiment(exp, tmp_path)
    assert load_run(tmp_path / "fear_extinction_open_loop.h5").status == "complete"
    with h5py.File(tmp_path / "fear_extinction_open_loop.h5") as f:
        series = {k: f["timeseries"][k][0] for k in f["timeseries"]}
    # The baseline (no stimulation) renews fear in context A; continuous IL
    # stimulation leaves the extinction neurons ahead there.
    assert series["state_cs_trials_baseline"][-1] == 11
    assert series["state_cs_rate_A_baseline"][-1] > series["state_cs_rate_B_baseline"][-1] + 0.1
    assert series["state_cs_rate_B"][-1] > series["state_cs_rate_A"][-1] + 0.1
    assert series["state_w_cs_B"][-1] > series["state_w_cs_B_baseline"][-1]


def test_bad_model_parameter_in_an_experiment_names_its_key(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(EXPERIMENT, ["model.params.n_extinction=2.5"])
    problems = dict(info.value.problems)
    assert any("n_extinction" in f"{k} {v}" for k, v in problems.items()), problems


def test_modulatable_parameters_act_when_changed_while_running():
    # A drug layer writes the parameter record between advances: blocking
    # CS learning (alpha_hz = 0) after conditioning freezes the weights, so
    # extinction never takes over.
    model = FearExtinction(params={"sigma": 0.0})
    model.reset(0)
    model.advance(int(round(1.45 / model.dt_s)))
    assert model.observables()["w_cs_A"][0] == pytest.approx(6.625)
    model.record["alpha_hz"][:] = 0.0
    model.advance(int(round(1.3 / model.dt_s)))
    obs = model.observables()
    assert obs["w_cs_B"][0] == 1.0 and obs["cs_trials"][0] == 11
    assert obs["cs_rate_A"][0] > 0.5 > 0.1 > obs["cs_rate_B"][0]
