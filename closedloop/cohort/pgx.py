"""Pharmacogenomic covariates: CYP2C19 and citalopram, CYP2D6 and paroxetine.

Presets a ``cohort:`` block names, so that a cohort carries a clinic's
genotype result and the drug layer's SSRI (citalopram) follows it::

    cohort:
      priors:
        covariates:
          cyp2c19: {dist: categorical, preset: cyp2c19_european}
      rules:
        - {preset: cyp2c19_citalopram, agent: citalopram}      # clearance, every arm
      arms:
        genotype_informed:
          rules: [{preset: cyp2c19_citalopram_dose, agent: citalopram}]  # this arm's dose

Phenotypes (CPIC terms): ``poor``, ``intermediate``, ``normal``, ``rapid``,
``ultrarapid``.

Clearance factors (``cyp2c19_citalopram``)
    CPIC (Hicks et al. 2015; Bousman et al. 2023) states the direction of the
    exposure change per phenotype (higher in poor and intermediate, lower in
    rapid and ultrarapid metabolisers) but tabulates recommendations, not
    clearances. The factors here are derived from the dose-harmonised serum
    concentrations of escitalopram in 2,087 genotyped patients (Jukic et al.
    2018, Am J Psychiatry 175:463; seen, abstract), relative to
    ``*1/*1``: ``Null/Null`` 3.3-fold, ``Null/*1`` 1.6-fold, ``*1/*17`` 0.9
    (10 % lower), ``*17/*17`` 0.8 (20 % lower). At steady state the mean
    concentration is ``F D / (CL tau)``, so a concentration ratio ``r`` is a
    clearance factor ``1/r``: poor 1/3.3 = 0.303, intermediate 1/1.6 = 0.625,
    normal 1, rapid 1/0.9 = 1.111, ultrarapid 1/0.8 = 1.25. Choices: the
    intermediate factor uses ``Null/*1`` (the commoner intermediate genotype;
    ``Null/*17``, 1.4-fold, is left out), and escitalopram's factors are used
    for racemic citalopram, whose S-enantiomer is the active one and is
    cleared by CYP2C19 the same way (an assumption, not a measurement). All of
    clearance changes, none of volume or bioavailability (also a choice).

Genotype-informed dose (``cyp2c19_citalopram_dose``), a factor on the
experiment's standard dose
    CPIC (Hicks et al. 2015, as quoted in the HL7 genomics-reporting
    implementation guide, seen): poor metabolisers, "a 50 % reduction in
    starting dose ... or select an alternate drug": factor 0.5. Intermediate,
    normal and rapid metabolisers: the recommended starting dose (recalled
    from the CPIC tables, not checked here): factor 1. Ultrarapid
    metabolisers: CPIC recommends an alternative drug not predominantly
    metabolised by CYP2C19 (Hicks 2015); Bousman et al. (2023) add, if
    citalopram is kept, titrating to a higher maintenance dose (recalled).
    A simulation cannot switch drug, so the factor 1.25 is *chosen*: the dose
    that restores the normal metaboliser's mean steady-state concentration
    with the clearance factor above (25 mg for a 20 mg standard dose, within
    the 40 mg/day label maximum of the ``ssri`` preset's limits).

Phenotype frequencies (``cyp2c19_european``, ``cyp2c19_east_asian``)
    Recalled from the CPIC CYP2C19 frequency tables (Europeans: poor 2 %,
    intermediate 26 %, normal 40 %, rapid 27 %, ultrarapid 5 %; East Asians:
    poor 13 %, intermediate 46 %, normal 38 %, rapid 3 %, ultrarapid 0 %,
    rounded to sum to 1); not checked against the tables here.

CYP2D6 and paroxetine (``cyp2d6_paroxetine``, ``cyp2d6_paroxetine_dose``)
    Phenotypes from the activity score (:func:`cyp2d6_phenotype`), the
    CPIC/DPWG consensus that Bousman et al. (2023) use (Caudle et al. 2020;
    thresholds recalled, matching a secondary summary seen): 0 poor,
    0.25 to 1 intermediate, 1.25 to 2.25 normal, above 2.25 ultrarapid; an
    allele scores 0 (no function, e.g. ``*4``), 0.25 (``*10``), 0.5
    (decreased, e.g. ``*41``) or 1 (normal, ``*1``, ``*2``), a duplicated
    allele its score times its copies (recalled). Clearance factors from the
    covariate-adjusted steady-state paroxetine concentrations of 921
    genotyped Chinese Han patients (PMC11141156, 2024, trial
    ChiCTR2000038462; seen, abstract): poor 2.50, intermediate 1.12,
    ultrarapid 0.39 times normal; inverted to clearance as above (poor 0.4,
    intermediate 0.893, ultrarapid 2.564). Paroxetine's kinetics are
    non-linear (CYP2D6 saturates and is inhibited by paroxetine at
    therapeutic doses, recalled): a clearance factor on the drug layer's
    linear PK reproduces the reported ratios at the study's doses only (a
    simplification).
    Genotype-informed dose, a factor on the standard dose: poor 0.5 (CPIC,
    Hicks et al. 2015: a 50 % reduction of the starting dose if paroxetine
    is kept; Bousman et al. 2023: a lower starting dose and slower
    titration; both recalled); intermediate and normal 1 (the recommended
    starting dose, recalled); ultrarapid: CPIC recommends another drug not
    predominantly metabolised by CYP2D6 (recalled). A simulation cannot
    switch drug, so 2.5 is *chosen*: 1/0.39 = 2.56 would restore the normal
    metaboliser's exposure, capped at the 50 mg/day label maximum for 20 mg
    standard (the ``paroxetine`` drug preset's limit).
    Frequencies (``cyp2d6_european``, ``cyp2d6_east_asian``): recalled from
    the CPIC CYP2D6 frequency table after the 2019 consensus (Europeans: poor
    6 %, intermediate 38 %, normal 54 %, ultrarapid 2 %; East Asians: poor
    1 %, intermediate 52 %, normal 46 %, ultrarapid 1 %; indeterminate
    genotypes dropped and the rest rounded to sum to 1); not checked here.

References
----------
Caudle KE et al. (2020) Standardizing CYP2D6 genotype to phenotype
translation: consensus recommendations from CPIC and DPWG. Clin Transl Sci
13:116-124.
Hicks JK et al. (2015) Clinical Pharmacogenetics Implementation Consortium
(CPIC) guideline for CYP2D6 and CYP2C19 genotypes and dosing of selective
serotonin reuptake inhibitors. Clin Pharmacol Ther 98:127-134.
Bousman CA et al. (2023) CPIC guideline for CYP2D6, CYP2C19, CYP2B6, SLC6A4
and HTR2A genotypes and serotonin reuptake inhibitor antidepressants. Clin
Pharmacol Ther 114:51-68.
(2024) CYP2D6 metabolizer phenotype and paroxetine steady-state
concentration, efficacy and adverse reactions in 921 Chinese Han patients
(ChiCTR2000038462). PMCID PMC11141156 (authors and journal not checked here).
Jukic MM, Haslemo T, Molden E, Ingelman-Sundberg M (2018) Impact of CYP2C19
genotype on escitalopram exposure and therapeutic failure: a retrospective
study based on 2,087 patients. Am J Psychiatry 175:463-470.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "COVARIATE_PRESETS",
    "CYP2C19_CITALOPRAM_CL_FACTOR",
    "CYP2C19_CITALOPRAM_DOSE_FACTOR",
    "CYP2C19_PHENOTYPES",
    "CYP2D6_PAROXETINE_CL_FACTOR",
    "CYP2D6_PAROXETINE_DOSE_FACTOR",
    "CYP2D6_PHENOTYPES",
    "RULE_PRESETS",
    "cyp2d6_phenotype",
    "rule_preset",
]

#: CPIC's CYP2C19 phenotypes, slowest first.
CYP2C19_PHENOTYPES = ("poor", "intermediate", "normal", "rapid", "ultrarapid")

_JUKIC = (
    "Jukic et al. 2018, Am J Psychiatry 175:463 (seen, abstract): dose-harmonised concentration"
)
_CPIC = "CPIC: Hicks et al. 2015, Clin Pharmacol Ther 98:127; Bousman et al. 2023, 114:51"

#: Concentration ratio against ``*1/*1`` (Jukic et al. 2018) per phenotype.
_CONCENTRATION_RATIO = {
    "poor": 3.3,
    "intermediate": 1.6,
    "normal": 1.0,
    "rapid": 0.9,
    "ultrarapid": 0.8,
}

#: Citalopram/escitalopram clearance factor (1 / concentration ratio), dimensionless.
CYP2C19_CITALOPRAM_CL_FACTOR = {p: 1.0 / r for p, r in _CONCENTRATION_RATIO.items()}

#: Genotype-informed dose as a factor of the standard dose, dimensionless.
CYP2C19_CITALOPRAM_DOSE_FACTOR = {
    "poor": 0.5,
    "intermediate": 1.0,
    "normal": 1.0,
    "rapid": 1.0,
    "ultrarapid": 1.25,
}

#: CPIC's CYP2D6 phenotypes, slowest first.
CYP2D6_PHENOTYPES = ("poor", "intermediate", "normal", "ultrarapid")

_PAROXETINE_STUDY = (
    "PMC11141156 (921 Chinese Han patients, 2024; seen, abstract): adjusted steady-state "
    "concentration"
)
_CAUDLE = "Caudle et al. 2020, Clin Transl Sci 13:116 (recalled)"

#: Paroxetine steady-state concentration relative to normal metabolisers, per phenotype.
_PAROXETINE_RATIO = {"poor": 2.50, "intermediate": 1.12, "normal": 1.0, "ultrarapid": 0.39}

#: Paroxetine clearance factor (1 / concentration ratio), dimensionless.
CYP2D6_PAROXETINE_CL_FACTOR = {p: 1.0 / r for p, r in _PAROXETINE_RATIO.items()}

#: Genotype-informed paroxetine dose as a factor of the standard dose, dimensionless.
CYP2D6_PAROXETINE_DOSE_FACTOR = {"poor": 0.5, "intermediate": 1.0, "normal": 1.0, "ultrarapid": 2.5}


def cyp2d6_phenotype(activity_score: ArrayLike) -> np.ndarray:
    """CYP2D6 phenotype of an activity score (CPIC/DPWG consensus, Caudle et al. 2020).

    Parameters
    ----------
    activity_score : array_like
        Sum of the two alleles' activity values (0, 0.25, 0.5, 1 each, times
        copies), dimensionless.

    Returns
    -------
    numpy.ndarray of str
        ``poor`` (0), ``intermediate`` (0.25 to 1), ``normal`` (1.25 to
        2.25) or ``ultrarapid`` (above 2.25).

    Raises
    ------
    ValueError
        For a negative or non-finite score.
    """
    score = np.asarray(activity_score, dtype=float)
    if not np.all(np.isfinite(score)) or np.any(score < 0):
        raise ValueError(f"activity score must be finite and >= 0, got {activity_score!r}")
    # Scores come in steps of 0.25: compare against midpoints, robust to rounding.
    index = (score > 0.125).astype(int) + (score > 1.125) + (score > 2.375)
    return np.asarray(np.asarray(CYP2D6_PHENOTYPES)[index])


#: Covariate distributions by name: ``values`` and frequencies ``p``, with their source.
COVARIATE_PRESETS: dict[str, dict[str, Any]] = {
    "cyp2c19_european": {
        "values": list(CYP2C19_PHENOTYPES),
        "p": [0.02, 0.26, 0.40, 0.27, 0.05],
        "reference": "CPIC CYP2C19 frequency table, European (recalled, not checked here)",
    },
    "cyp2c19_east_asian": {
        "values": list(CYP2C19_PHENOTYPES),
        "p": [0.13, 0.46, 0.38, 0.03, 0.0],
        "reference": "CPIC CYP2C19 frequency table, East Asian (recalled, not checked here)",
    },
    "cyp2d6_european": {
        "values": list(CYP2D6_PHENOTYPES),
        "p": [0.06, 0.38, 0.54, 0.02],
        "reference": "CPIC CYP2D6 frequency table, European (recalled, not checked here)",
    },
    "cyp2d6_east_asian": {
        "values": list(CYP2D6_PHENOTYPES),
        "p": [0.01, 0.52, 0.46, 0.01],
        "reference": "CPIC CYP2D6 frequency table, East Asian (recalled, not checked here)",
    },
}

#: Covariate rules by name: the covariate, a target with ``{agent}``, factors, source.
RULE_PRESETS: dict[str, dict[str, Any]] = {
    "cyp2c19_citalopram": {
        "covariate": "cyp2c19",
        "agent": "citalopram",
        "target": "drugs.agents.{agent}.pk.cl_l_per_h",
        "factors": CYP2C19_CITALOPRAM_CL_FACTOR,
        "reference": f"{_JUKIC}, inverted to clearance; phenotypes as in {_CPIC}",
    },
    "cyp2c19_citalopram_dose": {
        "covariate": "cyp2c19",
        "agent": "citalopram",
        "target": "drugs.agents.{agent}.schedule.doses.0.amount_mg",
        "factors": CYP2C19_CITALOPRAM_DOSE_FACTOR,
        "reference": f"{_CPIC} (poor: 50 % of the starting dose); ultrarapid 1.25 chosen",
    },
    "cyp2d6_paroxetine": {
        "covariate": "cyp2d6",
        "agent": "paroxetine",
        "target": "drugs.agents.{agent}.pk.cl_l_per_h",
        "factors": CYP2D6_PAROXETINE_CL_FACTOR,
        "reference": f"{_PAROXETINE_STUDY}, inverted to clearance; phenotypes as in {_CAUDLE}",
    },
    "cyp2d6_paroxetine_dose": {
        "covariate": "cyp2d6",
        "agent": "paroxetine",
        "target": "drugs.agents.{agent}.schedule.doses.0.amount_mg",
        "factors": CYP2D6_PAROXETINE_DOSE_FACTOR,
        "reference": f"{_CPIC} (poor: 50 % of the starting dose, recalled); ultrarapid 2.5 chosen",
    },
}


def rule_preset(name: str, agent: str | None = None) -> dict[str, Any]:
    """The fields of a covariate rule preset, its target naming ``agent``.

    ``agent`` defaults to the preset's drug (``citalopram`` for the CYP2C19
    presets, ``paroxetine`` for the CYP2D6 ones).

    Raises
    ------
    ValueError
        Naming the known presets when ``name`` is not one.
    """
    if name not in RULE_PRESETS:
        raise ValueError(f"unknown rule preset {name!r}; known: {', '.join(RULE_PRESETS)}")
    preset = RULE_PRESETS[name]
    agent = agent or preset.get("agent", "citalopram")
    return {
        "covariate": preset["covariate"],
        "agent": agent,
        "target": preset["target"].format(agent=agent),
        "factors": dict(preset["factors"]),
        "reference": preset["reference"],
    }
