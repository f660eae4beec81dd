"""Pharmacogenomic covariates: CYP2C19 phenotypes scaling citalopram clearance and dose."""

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from closedloop.cohort.pgx import (
    COVARIATE_PRESETS,
    CYP2C19_CITALOPRAM_CL_FACTOR,
    CYP2C19_PHENOTYPES,
    CYP2D6_PHENOTYPES,
    cyp2d6_phenotype,
)
from closedloop.cohort.plan import expand_cohort
from closedloop.cohort.priors import CohortPriors, CovariateRule, apply_rules, draw_cohort
from closedloop.config import ConfigError, validate_config
from closedloop.drugs.presets import PRESETS

EXPERIMENT = Path(__file__).parents[1] / "experiments" / "mdd_ssri_cohort.yaml"
PAROXETINE = Path(__file__).parents[1] / "experiments" / "mdd_paroxetine_cohort.yaml"
CL_NM = PRESETS["ssri"]["pk"]["cl_l_per_h"].value
CL_KEY = "drugs.agents.citalopram.pk.cl_l_per_h"
DOSE_KEY = "drugs.agents.citalopram.schedule.doses.0.amount_mg"
# Jukic et al. 2018 (Am J Psychiatry 175:463): dose-harmonised escitalopram
# concentration relative to *1/*1, per phenotype.
JUKIC_RATIO = {"poor": 3.3, "intermediate": 1.6, "normal": 1.0, "rapid": 0.9, "ultrarapid": 0.8}


@pytest.mark.parametrize(
    ("gene", "preset", "phenotypes"),
    [
        ("cyp2c19", "cyp2c19_european", CYP2C19_PHENOTYPES),
        ("cyp2d6", "cyp2d6_european", CYP2D6_PHENOTYPES),
        ("cyp2d6", "cyp2d6_east_asian", CYP2D6_PHENOTYPES),
    ],
)
def test_phenotypes_are_drawn_with_the_preset_frequencies(gene, preset, phenotypes):
    priors = CohortPriors.model_validate(
        {"n_patients": 20000, "seed": 5, "covariates": {
            gene: {"dist": "categorical", "preset": preset}}}
    )  # fmt: skip
    drawn = draw_cohort(priors).covariates[gene]
    p = dict(zip(phenotypes, COVARIATE_PRESETS[preset]["p"], strict=True))
    assert sum(p.values()) == pytest.approx(1.0)
    for phenotype, q in p.items():
        got = np.mean(drawn == phenotype)
        assert abs(got - q) < 4 * np.sqrt(q * (1 - q) / len(drawn)) + 1e-12, phenotype


def test_clearance_rule_preset_scales_each_phenotype():
    priors = CohortPriors.model_validate(
        {"n_patients": 200, "seed": 1, "covariates": {
            "cyp2c19": {"dist": "categorical", "preset": "cyp2c19_european"}}}
    )  # fmt: skip
    table = draw_cohort(priors)
    rule = CovariateRule.model_validate({"preset": "cyp2c19_citalopram", "agent": "cit"})
    assert rule.target == "drugs.agents.cit.pk.cl_l_per_h"
    out = apply_rules(table, [rule], {"drugs.agents.cit.pk.cl_l_per_h": CL_NM})
    cl = out.params["drugs.agents.cit.pk.cl_l_per_h"]
    for phenotype, ratio in JUKIC_RATIO.items():
        mine = table.covariates["cyp2c19"] == phenotype
        assert np.allclose(cl[mine], CL_NM / ratio), phenotype


def _cohort(tmp_path, n_per_phenotype=1, experiment=EXPERIMENT, gene="cyp2c19"):
    """A shipped experiment on a table of known phenotypes (no other spread)."""
    phenotypes = CYP2C19_PHENOTYPES if gene == "cyp2c19" else CYP2D6_PHENOTYPES
    rows = [f"{p[:2]}{k},{p}" for p in phenotypes for k in range(n_per_phenotype)]
    (tmp_path / "t.csv").write_text(
        f"# closedloop patient table\n# version: 1\npatient_id,covariate:{gene}\n"
        + "\n".join(rows)
        + "\n"
    )
    raw = yaml.safe_load(experiment.read_text())
    raw["cohort"].pop("priors")
    raw["cohort"]["table"] = str(tmp_path / "t.csv")
    return raw, expand_cohort(raw, str(experiment))


def _mean_concentration(raw, cl, days=40, drug="citalopram", dose_mg=None):
    """Mean plasma concentration over the last day of daily dosing (ng/mL), per patient."""
    cfg = {k: copy.deepcopy(v) for k, v in raw.items() if k != "cohort"}
    cfg["n_instances"] = len(cl)
    agent = cfg["drugs"]["agents"][drug]
    agent["pk"] = {"cl_l_per_h": list(cl)}
    agent["schedule"]["repeat_count"] = days
    if dose_mg is not None:
        agent["schedule"]["doses"][0]["amount_mg"] = dose_mg
    layer = next(p for p in validate_config(cfg).loop.slow if p.name == "drugs")
    layer.reset(len(cl), [])
    period = 600.0
    samples = []
    for k in range(1, int(days * 86400 / period) + 1):
        layer.advance(k * period, period, {})
        if k * period > (days - 1) * 86400:
            samples.append(layer.values()[f"{drug}_plasma_ng_ml"].copy())
    return np.mean(samples, axis=0)


def test_expanded_cohort_sets_clearance_in_every_arm_and_dose_in_the_genotype_arm(tmp_path):
    raw, plan = _cohort(tmp_path)
    by = {(arm, pid): run for (_, arm, pid), run in zip(plan.runs, plan.sweep.runs, strict=True)}
    for pid, phenotype in zip(plan.table.patient_id, plan.table.covariates["cyp2c19"], strict=True):
        cls = [by[(arm, pid)].params[CL_KEY] for arm in plan.spec.arms]
        assert cls == [pytest.approx(CL_NM / JUKIC_RATIO[phenotype])] * 3  # same in all arms
        assert DOSE_KEY not in by[("one_size", pid)].params
        dose = by[("genotype_informed", pid)].params[DOSE_KEY]
        # CPIC: poor metabolisers half the starting dose; ultrarapid 25 mg (chosen).
        assert dose == {"poor": 10.0, "ultrarapid": 25.0}.get(phenotype, 20.0)
        doses = by[("genotype_informed", pid)].config["drugs"]["agents"]["citalopram"]
        assert doses["schedule"]["doses"][0]["amount_mg"] == dose


def test_steady_state_exposure_reproduces_the_reported_concentration_ratios(tmp_path):
    raw, plan = _cohort(tmp_path)
    cl = plan.table.params[CL_KEY]
    conc = _mean_concentration(raw, cl)
    # Analytic mean steady state F D / (CL tau) of a normal metaboliser: 40 ng/mL.
    normal = list(plan.table.covariates["cyp2c19"]).index("normal")
    assert conc[normal] == pytest.approx(1000 * 0.8 * 20.0 / (CL_NM * 24.0), rel=0.01)
    for k, phenotype in enumerate(plan.table.covariates["cyp2c19"]):
        assert conc[k] / conc[normal] == pytest.approx(JUKIC_RATIO[phenotype], rel=0.01)
    # The genotype-informed dose brings the ultrarapid metaboliser back to normal
    # exposure (linear PK: the concentration scales with the dose).
    ultra = list(plan.table.covariates["cyp2c19"]).index("ultrarapid")
    assert conc[ultra] * 25.0 / 20.0 == pytest.approx(conc[normal], rel=0.01)
    assert CYP2C19_CITALOPRAM_CL_FACTOR["ultrarapid"] == pytest.approx(1.25)


def test_bad_presets_name_their_key_path(tmp_path):
    raw, _ = _cohort(tmp_path)
    bad = copy.deepcopy(raw)
    bad["cohort"]["arms"]["genotype_informed"]["rules"] = [{"preset": "cyp2c19_nope"}]
    with pytest.raises(ConfigError) as exc:
        expand_cohort(bad, str(EXPERIMENT))
    (path, msg), *_ = exc.value.problems
    assert path.startswith("cohort.arms.genotype_informed.rules.0")
    assert "cyp2c19_citalopram_dose" in msg  # the known presets are listed
    bad = yaml.safe_load(EXPERIMENT.read_text())
    bad["cohort"]["priors"]["covariates"]["cyp2c19"] = {"dist": "categorical", "preset": "x"}
    with pytest.raises(ConfigError) as exc:
        expand_cohort(bad, str(EXPERIMENT))
    assert any(p.startswith("cohort.priors.covariates.cyp2c19") for p, _ in exc.value.problems)
    bad = copy.deepcopy(raw)
    bad["cohort"]["rules"] = [{"preset": "cyp2c19_citalopram", "agent": "sertraline"}]
    with pytest.raises(ConfigError) as exc:
        expand_cohort(bad, str(EXPERIMENT))
    assert "drugs.agents.sertraline.pk.cl_l_per_h" in str(exc.value)


@pytest.mark.slow
def test_shipped_cohort_runs_and_exposure_orders_the_outcome(tmp_path):
    """Three patients of equal severity, poor / normal / ultrarapid, 8 weeks.

    Near the edge of response the higher exposure of a poor metaboliser on
    20 mg/day lowers the final score (on these seeds 24.0, 24.3 and 28.2
    points; the noise of the network near its fold makes single patients
    vary by several points); placebo leaves every score at its start.
    """
    import subprocess
    import sys

    from closedloop.cohort import cohort_results

    rows = "\n".join(f"{p[:2]},0.072,{p}" for p in ("poor", "normal", "ultrarapid"))
    (tmp_path / "t.csv").write_text(
        "# closedloop patient table\n# version: 1\n"
        "patient_id,model.params.ampa_slowing,covariate:cyp2c19\n" + rows + "\n"
    )
    raw = yaml.safe_load(EXPERIMENT.read_text())
    raw["cohort"].pop("priors")
    raw["cohort"]["table"] = str(tmp_path / "t.csv")
    del raw["cohort"]["arms"]["genotype_informed"]
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "closedloop.cli.main", "cohort", str(path), "--out", str(out),
           "--workers", "1", "--no-progress", "--no-figures"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    df = cohort_results(out).to_frame().set_index(["arm", "patient_id"])
    end = df["mood_score_end"]
    assert np.allclose(end["placebo"], df.loc["placebo", "mood_score_start"])
    assert end["one_size", "po"] < end["one_size", "no"] < end["one_size", "ul"] - 3
    assert (end["one_size"] < 29.0).all()  # the drug acts in every phenotype


# ----------------------------------------------------------------------- CYP2D6, paroxetine

#: Allele activity values (CPIC/DPWG, Caudle et al. 2020, recalled) and example
#: diplotypes with the phenotype the consensus assigns them.
ALLELE = {"*1": 1.0, "*2": 1.0, "*41": 0.5, "*10": 0.25, "*4": 0.0, "*5": 0.0}
DIPLOTYPES = [
    (("*4", "*4"), 1, "poor"),
    (("*4", "*5"), 1, "poor"),
    (("*4", "*10"), 1, "intermediate"),
    (("*10", "*10"), 1, "intermediate"),
    (("*4", "*41"), 1, "intermediate"),
    (("*1", "*4"), 1, "intermediate"),  # AS 1: intermediate since the 2019 consensus
    (("*1", "*10"), 1, "normal"),  # AS 1.25
    (("*1", "*41"), 1, "normal"),
    (("*1", "*2"), 1, "normal"),
    (("*1", "*41"), 2, "normal"),  # *1/*41x2: AS 2
    (("*2", "*1"), 2, "ultrarapid"),  # *2/*1x2: AS 3
]
# Paroxetine steady-state concentration over normal metabolisers (921 patients,
# PMC11141156, abstract seen).
PAROXETINE_RATIO = {"poor": 2.50, "intermediate": 1.12, "normal": 1.0, "ultrarapid": 0.39}


def test_cyp2d6_activity_scores_give_the_consensus_phenotypes():
    for (a, b), copies_of_b, phenotype in DIPLOTYPES:
        score = ALLELE[a] + copies_of_b * ALLELE[b]
        assert cyp2d6_phenotype(score) == phenotype, (a, b, copies_of_b, score)
    scores = np.arange(0, 13) * 0.25
    expected = ["poor"] + ["intermediate"] * 4 + ["normal"] * 5 + ["ultrarapid"] * 3
    assert list(cyp2d6_phenotype(scores)) == expected
    with pytest.raises(ValueError, match="activity score"):
        cyp2d6_phenotype([1.0, -0.25])


def test_paroxetine_exposure_reproduces_the_reported_concentration_ratios(tmp_path):
    raw, plan = _cohort(tmp_path, experiment=PAROXETINE, gene="cyp2d6")
    phenotypes = list(plan.table.covariates["cyp2d6"])
    cl = plan.table.params["drugs.agents.paroxetine.pk.cl_l_per_h"]
    conc = _mean_concentration(raw, cl, days=20, drug="paroxetine")
    normal = phenotypes.index("normal")
    preset = PRESETS["paroxetine"]
    f, cl_nm = preset["pk"]["bioavailability"].value, preset["pk"]["cl_l_per_h"].value
    # Analytic mean steady state F D / (CL tau) of a normal metaboliser on 20 mg/day.
    assert conc[normal] == pytest.approx(1000 * f * 20.0 / (cl_nm * 24.0), rel=0.01)
    for k, phenotype in enumerate(phenotypes):
        assert conc[k] / conc[normal] == pytest.approx(PAROXETINE_RATIO[phenotype], rel=0.01)
    # 83 % SERT occupancy at the normal metaboliser's 20 mg/day (Meyer et al. 2004).
    emax, ec50 = preset["pd"]["emax"].value, preset["pd"]["ec50_ng_ml"].value
    assert emax * conc[normal] / (conc[normal] + ec50) == pytest.approx(0.83, abs=0.005)
    # The genotype-informed arm's doses: poor 10 mg (CPIC), ultrarapid 50 mg (chosen:
    # the label maximum), the others 20 mg; the ultrarapid exposure comes back to 98 %.
    by = {(arm, pid): run for (_, arm, pid), run in zip(plan.runs, plan.sweep.runs, strict=True)}
    doses = [
        by[("genotype_informed", pid)].params["drugs.agents.paroxetine.schedule.doses.0.amount_mg"]
        for pid in plan.table.patient_id
    ]
    expected = {"poor": 10.0, "intermediate": 20.0, "normal": 20.0, "ultrarapid": 50.0}
    assert doses == [expected[p] for p in phenotypes]
    ultra = phenotypes.index("ultrarapid")
    informed = _mean_concentration(raw, cl[[ultra]], days=20, drug="paroxetine", dose_mg=50.0)
    assert informed[0] / conc[normal] == pytest.approx(2.5 * 0.39, rel=0.01)
    assert all(
        "drugs.agents.paroxetine.schedule.doses.0.amount_mg" not in by[("one_size", pid)].params
        for pid in plan.table.patient_id
    )


@pytest.mark.slow
def test_the_paroxetine_cohort_runs_from_the_cli(tmp_path):
    """The shipped file, on one normal metaboliser of average severity, 4 weeks."""
    import subprocess
    import sys

    from closedloop.cohort import cohort_results

    (tmp_path / "t.csv").write_text(
        "# closedloop patient table\n# version: 1\n"
        "patient_id,model.params.ampa_slowing,covariate:cyp2d6\nno,0.066,normal\n"
    )
    raw = yaml.safe_load(PAROXETINE.read_text())
    raw["cohort"].pop("priors")
    raw["cohort"]["table"] = str(tmp_path / "t.csv")
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "closedloop.cli.main", "cohort", str(path), "--out", str(out),
           "--workers", "1", "--no-progress", "--set", "duration_s=2419200"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    # A normal metaboliser's genotype-informed run is the one-size run: same
    # config, same id, simulated once and reported in both arms.
    assert "2 complete, 0 failed" in done.stdout
    assert (out / "cohort_waterfall.png").exists()
    df = cohort_results(out).to_frame().set_index(["arm", "patient_id"])
    start, end = df["mood_score_start"], df["mood_score_end"]
    assert end["genotype_informed", "no"] == end["one_size", "no"]
    # Placebo leaves the score where it started; 4 weeks of the drug lower it.
    assert end["placebo", "no"] == start["placebo", "no"]
    assert end["one_size", "no"] < start["one_size", "no"] - 1.0
