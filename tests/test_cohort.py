"""Cohorts of virtual patients: priors, tables, rules, arms on shared seeds, outcomes, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from scipy import stats

from closedloop.cohort import (
    CohortPriors,
    PatientTable,
    bootstrap_ci,
    draw_cohort,
    expand_cohort,
    read_patient_table,
)
from closedloop.cohort.plan import patient_seed
from closedloop.cohort.priors import CovariateRule, apply_rules
from closedloop.config import ConfigError


def _priors(**extra):
    spec = {
        "n_patients": 4000,
        "seed": 5,
        "params": {
            "model.params.sigma_E": {"dist": "lognormal", "median": 0.05, "sd_log": 0.5},
            "model.params.P": {"dist": "normal", "mean": 1.25, "sd": 0.05},
            "model.params.Q": {"dist": "uniform", "low": -0.2, "high": 0.2},
        },
        "covariates": {
            "cyp2c19": {
                "dist": "categorical",
                "values": ["poor", "normal", "ultrarapid"],
                "p": [0.1, 0.7, 0.2],
            }
        },
        "correlations": [["model.params.sigma_E", "model.params.P", 0.6]],
    }
    spec.update(extra)
    return CohortPriors.model_validate(spec)


def test_priors_give_their_marginals_correlations_and_frequencies():
    table = draw_cohort(_priors())
    sigma = table.params["model.params.sigma_E"]
    p = table.params["model.params.P"]
    q = table.params["model.params.Q"]
    # Marginals: each parameter keeps its own distribution (Kolmogorov-Smirnov).
    assert stats.kstest(np.log(sigma), "norm", args=(np.log(0.05), 0.5)).pvalue > 0.01
    assert stats.kstest(p, "norm", args=(1.25, 0.05)).pvalue > 0.01
    assert stats.kstest(q, "uniform", args=(-0.2, 0.4)).pvalue > 0.01
    # Gaussian copula: Spearman's rho = 6/pi arcsin(R/2) = 0.582 for R = 0.6; 0 elsewhere.
    assert stats.spearmanr(sigma, p)[0] == pytest.approx(6 / np.pi * np.arcsin(0.3), abs=0.03)
    assert abs(stats.spearmanr(sigma, q)[0]) < 0.05
    cats, counts = np.unique(table.covariates["cyp2c19"], return_counts=True)
    freq = dict(zip(cats, counts / counts.sum(), strict=True))
    assert freq["poor"] == pytest.approx(0.1, abs=0.015)
    assert freq["ultrarapid"] == pytest.approx(0.2, abs=0.02)
    # Seeded: the same priors give the same patients.
    again = draw_cohort(_priors())
    np.testing.assert_array_equal(again.params["model.params.P"], p)
    other = draw_cohort(_priors(seed=6))
    assert not np.array_equal(other.params["model.params.P"], p)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"correlations": [["model.params.P", "model.params.nope", 0.5]]}, "not one of params"),
        ({"correlations": [["model.params.P", "model.params.Q", 1.0]]}, "|rho| < 1"),
        ({"params": {"a": {"dist": "normal", "mean": 1.0}}}, "needs sd"),
        ({"covariates": {"c": {"dist": "categorical", "values": ["a"], "p": [0.5]}}}, "sum to 1"),
        ({"params": {"a": {"dist": "uniform", "low": 2.0, "high": 1.0}}}, "low < high"),
    ],
)
def test_bad_priors_say_what_is_wrong(extra, message):
    with pytest.raises(ValueError, match=message.replace("|", r"\|")):
        _priors(**extra)


def test_a_patient_table_round_trips_and_rejects_bad_rows(tmp_path):
    table = draw_cohort(_priors(n_patients=5))
    path = table.write_csv(tmp_path / "patients.csv")
    back = read_patient_table(path)
    assert back.patient_id == table.patient_id
    for key, values in table.params.items():
        np.testing.assert_array_equal(back.params[key], values)  # repr round-trips floats
    np.testing.assert_array_equal(back.covariates["cyp2c19"], table.covariates["cyp2c19"])
    assert back.version == table.version
    bad = tmp_path / "bad.csv"
    bad.write_text("patient_id,model.params.P\nA,1.2\nB,oops\n")
    with pytest.raises(ValueError, match=r"bad.csv: row 3, column 'model.params.P'"):
        read_patient_table(bad)
    bad.write_text("patient_id,model.params.P\nA,1.2\nA,1.3\n")
    with pytest.raises(ValueError, match="appears twice"):
        read_patient_table(bad)
    with pytest.raises(ValueError, match="patient ids may hold only"):
        PatientTable(["a b"], {"x": np.ones(1)})


def test_covariate_rules_scale_their_target():
    table = draw_cohort(_priors(n_patients=50))
    factors = {"poor": 0.5, "normal": 1.0, "ultrarapid": 1.8}
    rule = CovariateRule(covariate="cyp2c19", target="drugs.0.clearance_l_per_h", factors=factors)
    out = apply_rules(table, [rule], {"drugs.0.clearance_l_per_h": 30.0})
    expected = 30.0 * np.array([factors[c] for c in table.covariates["cyp2c19"]])
    np.testing.assert_array_equal(out.params["drugs.0.clearance_l_per_h"], expected)
    with pytest.raises(ValueError, match="no factor for ultrarapid"):
        apply_rules(table, [rule.model_copy(update={"factors": {"poor": 1, "normal": 1}})], {})
    with pytest.raises(ValueError, match="neither a table column nor set"):
        apply_rules(table, [rule], {})


def test_bootstrap_interval_covers_and_pairs():
    rng = np.random.default_rng(0)
    x = (rng.random(400) < 0.3).astype(float)
    mean, lo, hi = bootstrap_ci(x, seed=1)
    assert mean == x.mean() and lo < 0.3 < hi and hi - lo == pytest.approx(0.09, abs=0.02)
    # Paired: a difference of rates measured on the same patients.
    y = np.where(rng.random(400) < 0.8, x, 1.0 - x)
    d, dlo, dhi = bootstrap_ci(np.stack([y, x], axis=1), seed=1)
    assert d == pytest.approx(y.mean() - x.mean()) and dlo < d < dhi


def _cohort_config(tmp_path, n=6, **extra):
    raw = {
        "name": "wc_cohort",
        "duration_s": 2.0,
        "warmup_s": 0.2,
        "model": {"name": "wilson_cowan"},
        "control": {"period_s": 0.01},
        "controller": {"name": "open_loop", "params": {"amplitude_ma": 0.0}},
        "output": {"figure": False},
        "cohort": {
            "priors": {
                "n_patients": n,
                "seed": 3,
                "params": {
                    "model.params.sigma_E": {"dist": "lognormal", "median": 0.05, "sd_log": 0.5}
                },
            },
            "arms": {
                "sham": {"controller": {"params": {"amplitude_ma": 0.0}}},
                "continuous": {"controller": {"params": {"amplitude_ma": 3.0}}},
            },
            "responder": {"metric": "band_power_reduction", "at_least": 0.5},
            "held_out_fraction": 0.5,
        },
    }
    raw["cohort"].update(extra)
    path = tmp_path / "cohort.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return raw, path


def test_cohort_expands_to_one_run_per_patient_and_arm_on_shared_seeds(tmp_path):
    raw, path = _cohort_config(tmp_path)
    plan = expand_cohort(raw, str(path))
    assert len(plan.runs) == 12 and len(plan.held_out) == 3
    by_patient: dict[str, set] = {}
    for run, (run_id, arm, pid) in zip(plan.sweep.runs, plan.runs, strict=True):
        assert run.run_id == run_id and run.n_instances == 1
        assert run.config["name"] == f"wc_cohort-{arm}-{pid}"
        assert (
            run.config["model"]["params"]["sigma_E"]
            == plan.table.params["model.params.sigma_E"][plan.table.patient_id.index(pid)]
        )
        by_patient.setdefault(pid, set()).add(run.seed)
    # Every arm of a patient runs on the patient's seed; patients differ.
    assert all(len(s) == 1 for s in by_patient.values())
    assert len({next(iter(s)) for s in by_patient.values()}) == 6
    assert by_patient["P0000"] == {patient_seed(plan.seed, "P0000")}
    # A table instead of priors, read beside the experiment file.
    plan.table.write_csv(tmp_path / "table.csv")
    cohort = dict(raw["cohort"], table="table.csv")
    del cohort["priors"]
    from_table = expand_cohort(dict(raw, cohort=cohort), str(path))
    assert [r.seed for r in from_table.sweep.runs] == [r.seed for r in plan.sweep.runs]


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"responder": {"metric": "band_power_reduction"}}, "cohort.responder"),
        ({"arms": {}}, "cohort.arms"),
        ({"arms": {"x": {"controller": {"params": {"amplitude_ma": -1}}}}}, "amplitude_ma"),
        ({"table": "missing.csv"}, "cohort"),
        ({"held_out_fraction": 1.0}, "cohort.held_out_fraction"),
    ],
)
def test_bad_cohort_blocks_name_the_key(tmp_path, extra, key):
    raw, path = _cohort_config(tmp_path, **extra)
    with pytest.raises(ConfigError) as info:
        expand_cohort(raw, str(path))
    assert key in str(info.value)


def test_cohort_command_runs_reports_and_resumes(tmp_path):
    _, path = _cohort_config(tmp_path, n=4)
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "closedloop.cli.main",
        "cohort",
        str(path),
        "--out",
        str(out),
        "--workers",
        "1",
        "--no-progress",
    ]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    assert "continuous" in first.stdout and "100 % [100, 100]" in first.stdout
    for name in (
        "cohort.json",
        "patients.csv",
        "cohort_runs.csv",
        "cohort_outcomes.csv",
        "cohort_waterfall.png",
        "cohort_responders.png",
        "summary.csv",
    ):
        assert (out / name).exists(), name
    files = sorted((out / "runs").glob("*.h5"))
    assert len(files) == 8
    from closedloop.io import load_run

    lost = load_run(files[0])
    files[0].unlink()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "1 run now, 7 done before" in again.stdout
    spec = json.loads((out / "cohort.json").read_text())
    assert spec["arms"] == ["sham", "continuous"] and len(spec["patients"]) == 4
    report = subprocess.run(
        [sys.executable, "-m", "closedloop.cli.main", "cohort", "report", str(out), "--no-figures"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert report.returncode == 0 and "held-out patients" in report.stdout
    from closedloop.cohort import cohort_results

    results = cohort_results(out)
    np.testing.assert_array_equal(results.responders(), [[0, 0, 0, 0], [1, 1, 1, 1]])
    # The re-run patient's file has the same data as the one lost.
    redone = load_run(files[0])
    np.testing.assert_array_equal(redone.timeseries["lfp"], lost.timeseries["lfp"])
    for key, value in lost.metrics.items():
        np.testing.assert_array_equal(redone.metrics[key], value)
    frame = results.to_frame()
    assert len(frame) == 8 and set(frame["arm"]) == {"sham", "continuous"}
