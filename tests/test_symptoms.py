"""Slow symptom states: exact relaxation, sparse noisy reports, clinical metrics, config."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from closedloop.config import ConfigError, validate_config
from closedloop.experiment import run_experiment
from closedloop.symptoms import SCALES, SymptomState

DAY_S = 86400.0


def _seeds(n, root=0):
    return np.random.SeedSequence(root).spawn(n)


def _drive(state, level, days, step_s=3600.0):
    """Advance ``state`` with the readout held at ``level`` for ``days``."""
    t = state.time_s_
    for _ in range(int(round(days * DAY_S / step_s))):
        t += step_s
        state.advance(t, step_s, {"activity": np.asarray(level, dtype=float)})


def test_severity_relaxes_exactly_towards_the_drive():
    """ds/dt = (d - s)/tau with d held: s(t) = d + (s0 - d) exp(-t/tau), whatever the step."""
    tau_s = 2 * DAY_S
    results = []
    for step_s in (600.0, 3600.0, 21600.0):
        state = SymptomState(
            readout="activity",
            healthy_level=0.2,
            symptomatic_level=0.8,
            tau_s=tau_s,
            initial_severity=1.0,
            period_s=step_s,
        )
        state.reset(3, _seeds(3))
        # Readouts 0.2 (healthy), 0.5 (half way) and 1.0 (beyond symptomatic: clipped to 1).
        _drive(state, [0.2, 0.5, 1.0], days=3, step_s=step_s)
        results.append(state.severity_.copy())
    expected = np.array([0.0, 0.5, 1.0]) + (1.0 - np.array([0.0, 0.5, 1.0])) * np.exp(-1.5)
    for got in results:
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    hamd = SCALES["hamd17"]
    np.testing.assert_allclose(
        state.score(), hamd.healthy + (hamd.severe - hamd.healthy) * expected
    )


def test_reports_are_sparse_noisy_whole_points_on_the_scale():
    n = 400
    state = SymptomState(
        readout="activity",
        tau_s=1e12,
        initial_severity=0.5,
        report_every_s=8 * 3600.0,
        report_sd=2.0,
        period_s=3600.0,
    )
    state.reset(n, _seeds(n))
    _drive(state, np.full(n, 0.5), days=2)
    reports = state.drain_events()["reports"]
    assert state.drain_events() == {}  # drained
    assert reports["time_s"].shape == (6 * n,)  # three a day for two days
    np.testing.assert_allclose(np.unique(reports["time_s"]), np.arange(1, 7) * 8 * 3600.0)
    scores = reports["score"]
    np.testing.assert_array_equal(scores, np.round(scores))
    latent = 3.0 + 27.0 * 0.5
    assert abs(scores.mean() - latent) < 0.3
    # Rounding adds 1/12 point^2 of variance to the noise's 4.
    assert abs(scores.var() - (4.0 + 1.0 / 12.0)) < 0.6
    # Reports of a patient at the top of the scale are clipped to it.
    top = SymptomState(
        readout="activity", scale="fear_index", report_sd=50.0, tau_s=1.0, period_s=3600.0
    )
    top.reset(50, _seeds(50))
    _drive(top, np.full(50, 1.0), days=1)
    scores = top.drain_events()["reports"]["score"]
    assert scores.max() == 100.0 and scores.min() >= 0.0


def test_clinical_metrics_response_remission_and_time_symptomatic():
    """A patient driven healthy for 3 tau responds and remits; one held symptomatic does neither."""
    state = SymptomState(
        readout="activity",
        healthy_level=0.0,
        symptomatic_level=1.0,
        tau_s=DAY_S,
        initial_severity=1.0,
        period_s=600.0,
    )
    state.reset(2, _seeds(2))
    _drive(state, [0.0, 1.0], days=6, step_s=600.0)
    m = {k: v[0] for k, v in state.metrics().items()}
    np.testing.assert_array_equal(m["mood_score_start"], [30.0, 30.0])
    assert m["mood_score_end"][0] == pytest.approx(3.0 + 27.0 * np.exp(-6.0), rel=1e-9)
    assert m["mood_score_change"][0] == pytest.approx(-0.9, abs=0.01)
    np.testing.assert_array_equal(m["mood_response"], [1.0, 0.0])
    np.testing.assert_array_equal(m["mood_remission"], [1.0, 0.0])
    # Score above 7 until 3 + 27 exp(-t/tau) = 7, t = tau ln(27/4) = 1.91 days of 6.
    # Response when 3 + 27 exp(-t/tau) <= 15: t = tau ln(27/12) = 0.81 days, to one step.
    assert m["mood_time_to_response_days"][0] == pytest.approx(np.log(27 / 12), abs=600 / DAY_S)
    assert np.isnan(m["mood_time_to_response_days"][1])
    symptomatic = m["mood_time_symptomatic_fraction"]
    assert symptomatic[0] == pytest.approx(np.log(27 / 4) / 6, abs=600 / 6 / DAY_S)
    assert symptomatic[1] == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale": "beck"}, "scale must be one of"),
        ({"tau_s": 0.0}, "tau_s must be a positive"),
        ({"initial_severity": 1.5}, "initial_severity must lie in"),
        ({"healthy_level": 1.0, "symptomatic_level": 1.0}, "must differ"),
    ],
)
def test_bad_symptom_parameters_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SymptomState(**kwargs)


def _experiment(**extra):
    raw = {
        "name": "mood",
        "duration_s": 7200.0,
        "model": {"name": "wilson_cowan", "params": {"sigma_E": 0.05}},
        "control": {"period_s": 0.01},
        "symptoms": [
            {
                "readout": "biomarker",
                "healthy_level": 0.0,
                "symptomatic_level": 2e-5,
                "tau_s": 3600.0,
                "report_every_s": 1800.0,
                "period_s": 10.0,
            }
        ],
        "slow": {"epoch_s": 10.0, "every_s": 600.0},
        "output": {"figure": False},
    }
    raw.update(extra)
    return raw


def test_a_symptom_state_runs_from_a_config_and_is_recorded(tmp_path):
    """Two hours of slow time with 10 s neural epochs every 10 min: 2 min of neural time."""
    outcome = run_experiment(validate_config(_experiment()), tmp_path)
    with h5py.File(outcome.path) as f:
        assert f["timeseries/lfp"].shape == (1, 120_000)  # 12 epochs of 10 s at 1 kHz
        score = f["timeseries/mood_score"]
        assert score.shape == (1, 721) and score.attrs["units"] == "points"
        assert f.attrs["slow_every_s"] == 600.0
        reports = f["events/mood_reports"]
        np.testing.assert_allclose(reports["time_s"][:], [1800.0, 3600.0, 5400.0, 7200.0])
        assert f["metrics/mood_score_start"][0] == 30.0
        assert f["metrics/mood_score_change"].attrs["units"] == "1"
        np.testing.assert_allclose(f["metrics/mood_score_end"][0], score[0, -1])


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"symptoms": [{"readout": "vacc_activity"}]}, "symptoms.0.readout"),
        ({"symptoms": [{"scale": "beck"}]}, "symptoms.0.scale"),
        ({"symptoms": [{"tau_s": -1.0}]}, "symptoms.0"),
        ({"duration_s": 7000.0}, "duration_s"),
    ],
)
def test_symptom_config_errors_name_the_key(extra, key):
    with pytest.raises(ConfigError) as info:
        validate_config(_experiment(**extra))
    assert key in str(info.value)


def test_runs_with_symptom_states_batch_bit_identically(tmp_path):
    """Three patients with their own noise and severity time constant, simulated as one
    batch (as a sweep or a cohort groups them), give each run's file bit for bit."""
    from closedloop.sweep.batch import batched_loop
    from closedloop.sweep.plan import expand_sweep

    raw = _experiment(duration_s=3600.0)
    raw["symptoms"][0]["symptomatic_level"] = 1.0  # a small drive: severity falls
    raw["sweep"] = {
        "zip": {
            "model.params.sigma_E": [0.02, 0.05, 0.08],
            "symptoms.0.tau_s": [1800.0, 3600.0, 7200.0],
        }
    }
    plan = expand_sweep(raw)
    assert len({run.group for run in plan.runs}) == 1  # one batch
    exps = [validate_config(run.config) for run in plan.runs]
    alone = [run_experiment(exp, tmp_path / f"alone{k}") for k, exp in enumerate(exps)]
    from closedloop.experiment import RunSpec, simulate_runs

    together = simulate_runs(
        batched_loop(exps), [RunSpec(e, tmp_path / f"batch{k}.h5") for k, e in enumerate(exps)]
    )
    for a, b in zip(alone, together, strict=True):
        with h5py.File(a.path) as fa, h5py.File(b.path) as fb:
            for key in (
                "timeseries/mood_score",
                "timeseries/lfp",
                "events/mood_reports/score",
                "events/mood_reports/instance",
                "metrics/mood_score_end",
            ):
                np.testing.assert_array_equal(fa[key][()], fb[key][()], err_msg=key)
    ends = [o.metrics["mood_score_end"][0] for o in alone]
    assert len(set(ends)) == 3


def test_the_run_figure_draws_the_score_over_days(tmp_path):
    from closedloop.plotting.run import save_run_figure
    from closedloop.plotting.slow import slow_time_of, symptom_names

    outcome = run_experiment(validate_config(_experiment()), tmp_path)
    from closedloop.io import load_run

    run = load_run(outcome.path)
    assert symptom_names(run) == ["mood"]
    # 12 epochs of 10 s every 600 s: neural 25 s is 5 s into the third epoch.
    np.testing.assert_allclose(slow_time_of(run, np.array([0.0, 25.0])), [0.0, 1205.0])
    png = save_run_figure(run, tmp_path / "fig.png")
    assert png.stat().st_size > 20_000
