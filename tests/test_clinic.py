"""The clinic loop: strategies on a known optimum, per-patient tuning in a batch,
exact resumption, determinism, and key-path errors for bad clinic blocks."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from closedloop.cohort import expand_cohort
from closedloop.cohort.clinic import ClinicLoop, ClinicSpec
from closedloop.cohort.synthetic import SyntheticPatients, convergence_study
from closedloop.config import ConfigError, validate_config
from closedloop.sweep.batch import batched_loop

DAY_S = 86400.0
WEEK_S = 7 * DAY_S


def test_synthetic_patients_have_their_stated_optimum_and_effect_size():
    p = SyntheticPatients(50, effect_size=0.3, seed=2)
    grid = np.linspace(0.0, 4.0, 4001)
    j = p.objective(grid[None, :].repeat(50, 0))
    np.testing.assert_allclose(grid[j.argmin(axis=1)], p.optimum, atol=1e-3)
    # Every patient meets the common target at the optimum (the self-tuning rule's answer).
    np.testing.assert_allclose(p.mean_measure(p.optimum), p.target, atol=1e-12)
    np.testing.assert_allclose((j.max(axis=1) - j.min(axis=1)) / p.noise_sd, 0.3, rtol=1e-12)


def test_strategies_find_a_known_optimum_within_the_budget():
    """Noise-free, a grid over 0.5 mA steps finds every optimum exactly by the end of
    its review (9 points: 10 visits with the start); with a large effect (d = 10) the
    grid, Optuna's TPE and the self-tuning rule converge for most patients within 12
    visits (measured: 83 %, 91 %, 94 %)."""
    exact = convergence_study("grid", n_patients=40, n_visits=10, effect_size=1e9, seed=0)
    assert exact.rate == 1.0 and np.all(exact.visits_to_converge <= 10)
    assert np.all(exact.regret < 1e-6)
    rates = {}
    for name, settings in (("grid", None), ("optuna", None), ("self_tuning", {"gain": 0.2})):
        r = convergence_study(
            name, n_patients=100, n_visits=12, effect_size=10.0, seed=1, settings=settings
        )
        rates[name] = r.rate
        assert r.median_visits <= 6
    assert rates["grid"] >= 0.75 and rates["optuna"] >= 0.85 and rates["self_tuning"] >= 0.9
    # A small effect (d = 0.1): no strategy converges for most patients.
    small = convergence_study("optuna", n_patients=100, n_visits=12, effect_size=0.1, seed=1)
    assert small.rate < 0.5


def test_bayesian_optimisation_oversamples_the_boundaries_at_small_effects():
    """Dastin-van Rijn & Widge 2025: standard BO over-samples the ends of the range when
    the effect is small. The grid's share is fixed by design (2 of 9 points); TPE puts
    more of its proposals on the ends at d = 0.1 than at d = 10 and than the grid does."""
    grid = convergence_study("grid", n_patients=100, n_visits=12, effect_size=0.1, seed=1)
    small = convergence_study("optuna", n_patients=100, n_visits=12, effect_size=0.1, seed=1)
    large = convergence_study("optuna", n_patients=100, n_visits=12, effect_size=10.0, seed=1)
    assert grid.boundary_fraction == pytest.approx(2 / 9, abs=0.01)
    assert small.boundary_fraction > grid.boundary_fraction + 0.04
    assert small.boundary_fraction > large.boundary_fraction


def _raw(n_patients=3, strategy="grid", **clinic):
    block = {
        "strategy": strategy,
        "every_s": 2 * WEEK_S,
        "n_visits": 4,
        "params": {"amplitude_ma": {"low": 1.0, "high": 4.0, "step": 1.5, "penalty": 3.0}},
        "outcome": {"measure": "reported_score", "process": "mood", "window_s": WEEK_S},
    }
    block.update(clinic)
    return {
        "name": "clinic",
        "seed": 3,
        "duration_s": 10 * WEEK_S,
        "warmup_s": 0.2,
        "model": {"name": "wilson_cowan", "params": {"sigma_E": 0.05, "g_E": 5.0}},
        "control": {"period_s": 0.01},
        "controller": {"name": "open_loop", "params": {"amplitude_ma": 0.0}},
        "symptoms": [
            {
                "readout": "biomarker",
                "healthy_level": 0.005,
                "symptomatic_level": 0.045,
                "tau_s": 3 * DAY_S,
                "report_every_s": DAY_S,
                "report_sd": 3.0,
                "period_s": 3600.0,
            }
        ],
        "slow": {"epoch_s": 0.5, "every_s": DAY_S},
        "output": {"figure": False, "chunk_s": 0.5},
        "cohort": {
            "priors": {
                "n_patients": n_patients,
                "seed": 21,
                "params": {"model.params.g_I": {"dist": "lognormal", "median": 25, "sd_log": 0.5}},
            },
            "arms": {"personalised": {"clinic": block}},
            "responder": {"metric": "mood_score_change", "at_most": -0.5},
        },
    }


def _clinic_loop(g_i, spec=None, seed=3):
    raw = _raw()
    del raw["cohort"]
    raw["n_instances"] = len(g_i)
    raw["model"]["params"]["g_I"] = list(g_i)
    raw["seed"] = seed
    exp = validate_config(raw)
    spec = spec or ClinicSpec.model_validate(_raw()["cohort"]["arms"]["personalised"]["clinic"])
    return ClinicLoop(exp.loop, spec)


def _run(clinic, durations):
    clinic.reset()
    clinic.warm_up(0.2)
    bio = []
    for d in durations:
        clinic.run(d, chunk_s=0.5, on_chunk=lambda t, data: bio.append(data["biomarker"].copy()))
    visits = clinic.drain_events()["clinic_visits"]
    return np.concatenate(bio, axis=1), visits


def test_patients_of_one_batch_are_tuned_to_their_own_settings():
    """Three patients whose electrodes recruit inhibition weakly, moderately and strongly
    (g_I 10, 25, 60 /mA) share one loop; with a cost of 3 points per mA the clinic keeps
    a lower amplitude for the stronger coupling, and each patient's final score is at
    least as good as with the starting setting (no stimulation)."""
    clinic = _clinic_loop([10.0, 25.0, 60.0])
    _, visits = _run(clinic, [8 * WEEK_S])
    final = clinic.extra_metrics()["clinic_amplitude_ma_final"][0]
    assert final[0] >= final[1] >= final[2] and final[0] > final[2], final
    # The visits saw noisy reports, and what they programmed is what ran next.
    assert visits["visit"].max() == 4 and np.all(np.isfinite(visits["measure"]))
    np.testing.assert_array_equal(visits["next_amplitude_ma"][-3:], final)
    score = clinic.extra_metrics()["mood_score_end"][0]
    assert np.all(score < 20.0)


def test_the_clinic_loop_resumes_bit_for_bit_and_is_deterministic_by_seed():
    whole_bio, whole = _run(_clinic_loop([12.0, 40.0]), [8 * WEEK_S])
    split = [3 * DAY_S, 4 * WEEK_S - 3 * DAY_S, 4 * WEEK_S]
    parts_bio, parts = _run(_clinic_loop([12.0, 40.0]), split)
    np.testing.assert_array_equal(parts_bio, whole_bio)
    for key in whole:
        np.testing.assert_array_equal(parts[key], whole[key])
    again_bio, _ = _run(_clinic_loop([12.0, 40.0]), [8 * WEEK_S])
    np.testing.assert_array_equal(again_bio, whole_bio)
    other_bio, _ = _run(_clinic_loop([12.0, 40.0], seed=4), [8 * WEEK_S])
    assert not np.array_equal(other_bio, whole_bio)


def test_a_patient_tuned_alone_or_in_a_batch_gets_the_same_visits():
    """Runs of a cohort arm are batched (sweep.batch.batched_loop): each patient's visits,
    noise and settings are the patient's own, whatever the batch."""
    spec = ClinicSpec.model_validate(_raw()["cohort"]["arms"]["personalised"]["clinic"])
    raw = _raw()
    del raw["cohort"]
    exps = []
    for g_i, seed in ((12.0, 11), (40.0, 12)):
        one = copy.deepcopy(raw)
        one["model"]["params"]["g_I"] = g_i
        one["seed"] = seed
        exps.append(validate_config(one))
    batch_bio, batch = _run(ClinicLoop(batched_loop(exps), spec), [6 * WEEK_S])
    for k, exp in enumerate(exps):
        fresh = validate_config(exp.config.model_dump(mode="json", exclude_none=True))
        bio, alone = _run(ClinicLoop(fresh.loop, spec), [6 * WEEK_S])
        np.testing.assert_array_equal(bio[0], batch_bio[k])
        rows = batch["instance"] == k
        for key in ("time_s", "measure", "amplitude_ma", "next_amplitude_ma"):
            np.testing.assert_array_equal(alone[key], batch[key][rows])


def test_optuna_and_self_tuning_run_in_the_loop():
    for strategy, settings in (
        ("optuna", {"n_startup": 1}),
        ("self_tuning", {"target": 7.0, "gain": 0.2}),
    ):
        spec = ClinicSpec.model_validate(
            {
                **_raw()["cohort"]["arms"]["personalised"]["clinic"],
                "strategy": strategy,
                "settings": settings,
            }
        )
        clinic = _clinic_loop([10.0, 60.0], spec)
        _, visits = _run(clinic, [6 * WEEK_S])
        amps = visits["next_amplitude_ma"]
        assert np.all((amps >= 1.0) & (amps <= 4.0)) and np.all(np.isin(amps, [1.0, 2.5, 4.0]))


@pytest.mark.parametrize(
    ("clinic", "key"),
    [
        ({"strategy": "annealing"}, "cohort.arms.personalised.clinic.strategy"),
        ({"n_visits": 0}, "cohort.arms.personalised.clinic.n_visits"),
        ({"params": {"amplitude_ma": {"low": 4.0, "high": 1.0}}}, "clinic.params.amplitude_ma"),
        ({"params": {"amplitude": {"low": 0.0, "high": 1.0}}}, "clinic.params.amplitude"),
        (
            {"params": {"amplitude_ma": {"low": -1.0, "high": 1.0}}},
            "clinic.params.amplitude_ma.low",
        ),
        (
            {"outcome": {"measure": "reported_score", "process": "anxiety"}},
            "clinic.outcome.process",
        ),
        ({"outcome": {"measure": "mood"}}, "clinic.outcome.measure"),
        ({"every_s": 1000.0}, "clinic.every_s"),
        ({"strategy": "self_tuning"}, "clinic.settings.target"),
        ({"settings": {"gain": 1.0}}, "clinic.settings.gain"),
        ({"colour": "red"}, "clinic.colour"),
    ],
)
def test_bad_clinic_blocks_name_the_key(clinic, key):
    with pytest.raises(ConfigError) as info:
        expand_cohort(_raw(**clinic), "clinic.yaml")
    assert key in str(info.value)


def test_a_personalised_arm_gets_its_own_runs_beside_a_plain_one():
    raw = _raw(n_patients=2)
    raw["cohort"]["arms"]["sham"] = {"controller": {"params": {"amplitude_ma": 0.0}}}
    plan = expand_cohort(copy.deepcopy(raw), "clinic.yaml")
    assert len(plan.runs) == 4 and len({r[0] for r in plan.runs}) == 4
    assert list(plan.clinics) == ["personalised"]
    # The personalised runs carry their clinic for the workers; the plain ones do not,
    # and the two never share a batch.
    wrapped = {r.run_id for r in plan.sweep.runs if r.loop_wrapper is not None}
    assert wrapped == {run_id for run_id, arm, _ in plan.runs if arm == "personalised"}
    assert all(
        r.loop_wrapper["settings"] == plan.clinics["personalised"].model_dump(mode="json")
        for r in plan.sweep.runs
        if r.run_id in wrapped
    )
    arm_of = {run_id: arm for run_id, arm, _ in plan.runs}
    groups: dict[str, set] = {}
    for r in plan.sweep.runs:
        groups.setdefault(arm_of[r.run_id], set()).add(r.group)
    assert not groups["sham"] & groups["personalised"]
    # The same patient has the same seed in both arms.
    seeds = {
        (arm, pid): r.seed for r, (_, arm, pid) in zip(plan.sweep.runs, plan.runs, strict=True)
    }
    assert seeds[("sham", "P0000")] == seeds[("personalised", "P0000")]


def test_the_shipped_clinic_cohort_runs_reports_and_resumes(tmp_path):
    """experiments/cohort_clinic.yaml on 2 patients and 8 weeks: personalised runs are
    written beside the sweep's, reported with the others, and a lost one is redone the
    same."""
    import subprocess
    import sys
    from pathlib import Path

    from closedloop.cohort import cohort_results
    from closedloop.io import load_run

    config = Path(__file__).resolve().parents[1] / "experiments" / "cohort_clinic.yaml"
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "closedloop.cli.main",
        "cohort",
        str(config),
        "--out",
        str(out),
        "--workers",
        "1",
        "--no-progress",
        "--no-figures",
        "--set",
        "cohort.priors.n_patients=2",
        "--set",
        f"duration_s={8 * WEEK_S}",
        "--set",
        "cohort.arms.personalised.clinic.n_visits=3",
    ]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    assert "6 complete, 0 failed" in first.stdout and "personalised" in first.stdout
    results = cohort_results(out)
    final = results.metrics["clinic_amplitude_ma_final"]
    arms = results.arms
    assert np.all(np.isfinite(final[arms.index("personalised")]))
    assert np.all(np.isnan(final[arms.index("sham")]))
    mine = [p for p in sorted((out / "runs").glob("*.h5")) if "clinic" in load_run(p).attrs]
    assert len(mine) == 2
    lost = load_run(mine[0])
    mine[0].unlink()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "1 run now, 5 done before" in again.stdout
    redone = load_run(mine[0])
    np.testing.assert_array_equal(redone.timeseries["biomarker"], lost.timeseries["biomarker"])
    for key, value in lost.metrics.items():
        np.testing.assert_array_equal(redone.metrics[key], value)


def test_reprogramming_is_the_same_with_the_controller_in_python():
    """The compiled program's rows are written in place at visits; the Python path calls
    each patient's own controller: both give the same run."""
    raw = _raw()
    del raw["cohort"]
    raw["n_instances"] = 2
    raw["model"]["params"]["g_I"] = [12.0, 40.0]
    spec = ClinicSpec.model_validate(_raw()["cohort"]["arms"]["personalised"]["clinic"])
    runs = []
    for engine in ("compiled", "python"):
        raw["control"]["engine"] = engine
        runs.append(_run(ClinicLoop(validate_config(copy.deepcopy(raw)).loop, spec), [4 * WEEK_S]))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1]["next_amplitude_ma"], runs[1][1]["next_amplitude_ma"])
    assert len(set(runs[0][1]["next_amplitude_ma"])) > 1
