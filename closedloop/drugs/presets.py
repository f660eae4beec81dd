"""Drug presets: PK/PD parameters with their sources.

Each preset is a dict with the keys of a ``drugs.agents.<name>`` block
(:mod:`closedloop.drugs.config`): ``pk``, ``pd``, ``limits`` and, per model it
is known to act on, ``modulates``. A value marked *chosen* was set here (for
a model or a scenario), not taken from a paper; *recalled* values are
textbook figures not checked against a primary source here. What was checked
(abstracts seen, June 2026 search) is marked *seen*.

``ssri`` (citalopram)
    PK, recalled: one compartment, oral, terminal half-life about 35 h,
    apparent volume about 12 L/kg (840 L at 70 kg), bioavailability 0.8,
    absorption 0.7 1/h (peak 2 to 4 h). PD: SERT occupancy
    ``O = Omax C/(C + EC50)``; ``Omax = 0.85`` from the plateau near 85 %
    that Meyer et al. (2001) saw above 28 ug/L of paroxetine (seen); EC50 set
    so that the mean steady-state concentration of the minimum therapeutic
    dose (20 mg/day; 40 ng/mL with this PK) occupies 80 % of SERT, the figure
    Meyer et al. (2001, 2004) report for five SSRIs at their minimum
    therapeutic doses (seen: 77 % for citalopram 20 mg, 83 % for paroxetine
    20 mg). Adaptation: time constant 14 days (chosen, within the 1 to 3
    weeks of the autoreceptor-desensitisation account); the drive is the
    adaptation state. It modulates whatever SSRI-like parameter a model
    declares: give ``modulates`` in the experiment.
``paroxetine``
    PK, recalled: one compartment, oral, half-life about 21 h, apparent
    volume about 8.7 L/kg (609 L at 70 kg), bioavailability 0.5 (extensive,
    saturable first pass; chosen within the reported 0.3 to 0.6), absorption
    0.5 1/h (peak about 5 h). Linear: paroxetine's own kinetics are not
    (CYP2D6 saturates and is inhibited by paroxetine at therapeutic doses,
    recalled), so exposure is right near the 20 mg/day it is anchored on and
    not above. PD as ``ssri``: ``Omax = 0.85`` and EC50 set so that the mean
    steady state of 20 mg/day (20.7 ng/mL with this PK, within the 10 to
    50 ng/mL usually reported at that dose, recalled) occupies 83 % of SERT,
    Meyer et al.'s (2004) figure for paroxetine 20 mg (seen): occupancy is
    near its plateau at therapeutic doses. Limits: 50 mg a day (the usual
    label maximum for depression, recalled). CYP2D6 phenotypes scale its
    clearance and dose through :mod:`closedloop.cohort.pgx`.
``benzodiazepine`` (midazolam)
    PK, recalled: one compartment, half-life 2.5 h (1.5 to 3 h), volume
    1 L/kg (70 L), oral bioavailability 0.4 (45 % in rats, Mandema et al.
    1991, seen), absorption 1.5 1/h; effect-site equilibration half-time 5
    min (recalled). PD: EC50 120 ng/mL, the mean EC50 of midazolam for EEG
    beta amplitude (FFT) in van Steveninck et al. (1993) (seen); Hill 1.5
    chosen. On ``wilson_cowan`` it lengthens the inhibitory time constant
    ``tau_I`` by up to 80 % (chosen): GABA-A positive allosteric modulators
    prolong the IPSC decay, and in this model a longer inhibitory time
    constant slows the E-I rhythm from gamma into beta, so beta power rises
    with concentration as in pharmaco-EEG (tested). Scaling the I->E weight
    ``c2`` instead lowers beta power in this model (measured), so it is not
    used.
``levodopa`` (with carbidopa)
    PK: two compartments, Chan, Nutt & Holford (2005, 32:307; seen):
    V1 11.4 L, CL 30.9 L/h, V2 27.3 L, inter-compartmental clearance
    34.6 L/h per 70 kg (terminal half-life 1.3 h with these, against the
    usual 1.5 h with carbidopa, Nutt 2008). Oral absorption 2.5 1/h and
    bioavailability 0.85 are recalled. PD: one effect compartment and a
    sigmoid Emax, the structure of Chan, Nutt & Holford (2005, 32:459;
    seen, abstract: sigmoid Emax on tapping rate, fast effect compartment for
    the short-duration response). Their parameter values were not available
    here: equilibration half-time 0.7 h, EC50 700 ng/mL and Hill 4 (the
    steep, threshold-like response, Khor & Hsu 2007) are chosen. On
    ``stn_gpe`` the effect (0 to 1) moves the STN-GPe weights ``w_GS`` and
    ``w_SG`` and the cortical drive ``w_CS`` linearly from the model's values
    towards those of its ``healthy`` regime (dopamine loss strengthens the
    loop, Nevado-Holgado et al. 2010): at full effect the model is in its
    healthy regime. Measured here (4 s, 1 instance): beta power falls by
    about 25 % at effect 0.5, 65 % at 0.8, and vanishes at 1. Limits:
    250 mg per dose, 2 h apart, 2000 mg/day (chosen; 2000 mg is the usual
    label maximum of carbidopa-levodopa).

References
----------
Meyer JH et al. (2001) Occupancy of serotonin transporters by paroxetine and
citalopram during treatment of depression: a [11C]DASB PET imaging study.
Am J Psychiatry 158:1843-1849.
Meyer JH et al. (2004) Serotonin transporter occupancy of five selective
serotonin reuptake inhibitors at different doses: an [11C]DASB positron
emission tomography study. Am J Psychiatry 161:826-835.
van Steveninck AL et al. (1993) A comparison of the concentration-effect
relationships of midazolam for EEG-derived parameters and saccadic peak
velocity. Br J Clin Pharmacol 36:109-115.
Mandema JW, Tukker E, Danhof M (1991) Br J Pharmacol 102:663-668.
Chan PLS, Nutt JG, Holford NHG (2005) Importance of within subject variation
in levodopa pharmacokinetics: a 4 year cohort study in Parkinson's disease.
J Pharmacokinet Pharmacodyn 32:307-331.
Chan PLS, Nutt JG, Holford NHG (2005) Pharmacokinetic and pharmacodynamic
changes during the first four years of levodopa treatment in Parkinson's
disease. J Pharmacokinet Pharmacodyn 32:459-484.
Khor SP, Hsu A (2007) The pharmacokinetics and pharmacodynamics of levodopa
in the treatment of Parkinson's disease. Curr Clin Pharmacol 2:234-243.
Nutt JG (2008) Pharmacokinetics and pharmacodynamics of levodopa. Mov Disord
23 Suppl 3:S580-S584.
"""

from __future__ import annotations

import math
from typing import Any

from closedloop.core.model import Parameter

__all__ = ["PRESETS", "citalopram_ec50_ng_ml", "paroxetine_ec50_ng_ml"]

_LN2 = math.log(2.0)

_CIT_V_L = 840.0
_CIT_CL_L_PER_H = _LN2 / 35.0 * _CIT_V_L
_CIT_F = 0.8
_CIT_OMAX = 0.85


_PAR_V_L = 8.7 * 70.0
_PAR_CL_L_PER_H = _LN2 / 21.0 * _PAR_V_L
_PAR_F = 0.5


def _ec50_at_steady_state(
    f: float, cl_l_per_h: float, dose_mg_per_day: float, occupancy: float
) -> float:
    """EC50 (ng/mL) giving ``occupancy`` at the mean steady state of a daily dose.

    ``C_ss = F D / (CL tau)`` (mg/L, times 1000 for ng/mL); ``O = Omax C/(C + EC50)``.
    """
    css = 1000.0 * f * dose_mg_per_day / (cl_l_per_h * 24.0)
    return css * (_CIT_OMAX / occupancy - 1.0)


def citalopram_ec50_ng_ml(dose_mg_per_day: float = 20.0, occupancy: float = 0.80) -> float:
    """EC50 (ng/mL) that gives ``occupancy`` at the mean steady state of a daily citalopram dose."""
    return _ec50_at_steady_state(_CIT_F, _CIT_CL_L_PER_H, dose_mg_per_day, occupancy)


def paroxetine_ec50_ng_ml(dose_mg_per_day: float = 20.0, occupancy: float = 0.83) -> float:
    """EC50 (ng/mL) that gives ``occupancy`` at the mean steady state of a daily paroxetine dose."""
    return _ec50_at_steady_state(_PAR_F, _PAR_CL_L_PER_H, dose_mg_per_day, occupancy)


_MEYER = "Meyer et al. 2001, Am J Psychiatry 158:1843 (seen); 2004, 161:826 (seen)"
_R = "recalled, not checked here"
_CHOSEN = "chosen here"
_VS = "van Steveninck et al. 1993, Br J Clin Pharmacol 36:109 (seen)"
_CHAN_PK = "Chan, Nutt & Holford 2005, J Pharmacokinet Pharmacodyn 32:307 (seen), per 70 kg"


def _p(value: float, units: str, what: str, ref: str) -> Parameter:
    return Parameter(value, units, what, ref)


#: Preset name to its block (see the module docstring for every source). PK/PD
#: values are :class:`~closedloop.core.model.Parameter` (value, units, source).
PRESETS: dict[str, dict[str, Any]] = {
    "ssri": {
        "pk": {
            "ka_per_h": _p(0.7, "1/h", "oral absorption rate (peak 2-4 h)", _R),
            "cl_l_per_h": _p(_CIT_CL_L_PER_H, "L/h", "clearance: ln2/35 h x 840 L", _R),
            "v1_l": _p(_CIT_V_L, "L", "apparent volume, 12 L/kg x 70 kg", _R),
            "q_l_per_h": _p(0.0, "L/h", "one compartment", _R),
            "v2_l": _p(1.0, "L", "unused (one compartment)", _CHOSEN),
            "bioavailability": _p(_CIT_F, "1", "oral bioavailability", _R),
            "ke0_per_h": _p(0.5, "1/h", "effect-site equilibration", _R),
        },
        "pd": {
            "emax": _p(_CIT_OMAX, "1", "maximal SERT occupancy (plateau near 85 %)", _MEYER),
            "ec50_ng_ml": _p(
                citalopram_ec50_ng_ml(),
                "ng/mL",
                "80 % occupancy at the mean steady state of 20 mg/day",
                _MEYER,
            ),
            "hill": _p(1.0, "1", "occupancy O = Omax C/(C + EC50)", _MEYER),
            "adaptation_tau_days": _p(14.0, "days", "autoreceptor desensitisation", _CHOSEN),
            "drive": "adaptation",
        },
        "limits": {"max_single_mg": 40.0, "min_interval_h": 20.0, "max_daily_mg": 40.0},
        "modulates_by_model": {},
    },
    "paroxetine": {
        "pk": {
            "ka_per_h": _p(0.5, "1/h", "oral absorption rate (peak about 5 h)", _R),
            "cl_l_per_h": _p(_PAR_CL_L_PER_H, "L/h", "clearance: ln2/21 h x 609 L", _R),
            "v1_l": _p(_PAR_V_L, "L", "apparent volume, 8.7 L/kg x 70 kg", _R),
            "q_l_per_h": _p(0.0, "L/h", "one compartment", _R),
            "v2_l": _p(1.0, "L", "unused (one compartment)", _CHOSEN),
            "bioavailability": _p(_PAR_F, "1", "oral bioavailability (0.3-0.6)", _CHOSEN),
            "ke0_per_h": _p(0.5, "1/h", "effect-site equilibration", _R),
        },
        "pd": {
            "emax": _p(_CIT_OMAX, "1", "maximal SERT occupancy (plateau near 85 %)", _MEYER),
            "ec50_ng_ml": _p(
                paroxetine_ec50_ng_ml(),
                "ng/mL",
                "83 % occupancy at the mean steady state of 20 mg/day",
                _MEYER,
            ),
            "hill": _p(1.0, "1", "occupancy O = Omax C/(C + EC50)", _MEYER),
            "adaptation_tau_days": _p(14.0, "days", "autoreceptor desensitisation", _CHOSEN),
            "drive": "adaptation",
        },
        "limits": {"max_single_mg": 50.0, "min_interval_h": 20.0, "max_daily_mg": 50.0},
        "modulates_by_model": {},
    },
    "benzodiazepine": {
        "pk": {
            "ka_per_h": _p(1.5, "1/h", "oral absorption rate", _R),
            "cl_l_per_h": _p(_LN2 / 2.5 * 70.0, "L/h", "clearance: t1/2 2.5 h, 70 L", _R),
            "v1_l": _p(70.0, "L", "volume, 1 L/kg x 70 kg", _R),
            "q_l_per_h": _p(0.0, "L/h", "one compartment", _R),
            "v2_l": _p(1.0, "L", "unused (one compartment)", _CHOSEN),
            "bioavailability": _p(0.4, "1", "oral bioavailability (45 % in rats)", _R),
            "ke0_per_h": _p(_LN2 / (5.0 / 60.0), "1/h", "effect-site t1/2 5 min", _R),
        },
        "pd": {
            "emax": _p(1.0, "1", "effect fraction", _CHOSEN),
            "ec50_ng_ml": _p(120.0, "ng/mL", "EC50 for EEG beta amplitude (FFT)", _VS),
            "hill": _p(1.5, "1", "Hill coefficient", _CHOSEN),
            "drive": "effect",
        },
        "limits": {"max_single_mg": 5.0, "min_interval_h": 0.25, "max_daily_mg": 20.0},
        "modulates_by_model": {
            "wilson_cowan": {"tau_I": {"mode": "multiplicative", "gain": 0.8}},
        },
    },
    "levodopa": {
        "pk": {
            "ka_per_h": _p(2.5, "1/h", "oral absorption rate", _R),
            "cl_l_per_h": _p(30.9, "L/h", "clearance", _CHAN_PK),
            "v1_l": _p(11.4, "L", "central volume", _CHAN_PK),
            "q_l_per_h": _p(34.6, "L/h", "inter-compartmental clearance", _CHAN_PK),
            "v2_l": _p(27.3, "L", "peripheral volume", _CHAN_PK),
            "bioavailability": _p(0.85, "1", "oral bioavailability with carbidopa", _R),
            "ke0_per_h": _p(_LN2 / 0.7, "1/h", "effect-site t1/2 0.7 h", _CHOSEN),
        },
        "pd": {
            "emax": _p(1.0, "1", "effect fraction (1: healthy regime)", _CHOSEN),
            "ec50_ng_ml": _p(700.0, "ng/mL", "EC50 of the short-duration response", _CHOSEN),
            "hill": _p(4.0, "1", "steep, threshold-like response", _CHOSEN),
            "drive": "effect",
        },
        "limits": {"max_single_mg": 250.0, "min_interval_h": 2.0, "max_daily_mg": 2000.0},
        "modulates_by_model": {
            "stn_gpe": {
                "w_GS": {"mode": "linear", "to_regime": "healthy"},
                "w_SG": {"mode": "linear", "to_regime": "healthy"},
                "w_CS": {"mode": "linear", "to_regime": "healthy"},
            },
        },
    },
}
