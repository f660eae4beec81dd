"""Virtual patients: cohorts from tables or priors, arms, responder rates, the clinic loop.

See :mod:`closedloop.cohort.plan` for the ``cohort:`` block and
:mod:`closedloop.cohort.clinic` for per-patient tuning at visits.
"""

from closedloop.cohort.clinic import ClinicLoop, ClinicSpec
from closedloop.cohort.outcomes import CohortResults, bootstrap_ci, cohort_results
from closedloop.cohort.plan import CohortPlan, CohortSpec, expand_cohort
from closedloop.cohort.priors import CohortPriors, draw_cohort
from closedloop.cohort.runner import report_cohort, run_cohort
from closedloop.cohort.strategies import STRATEGIES
from closedloop.cohort.synthetic import SyntheticPatients, convergence_study
from closedloop.cohort.table import PatientTable, read_patient_table
from closedloop.cohort.tuned import TunedController

__all__ = [
    "STRATEGIES",
    "ClinicLoop",
    "ClinicSpec",
    "CohortPlan",
    "CohortPriors",
    "CohortResults",
    "CohortSpec",
    "PatientTable",
    "SyntheticPatients",
    "TunedController",
    "bootstrap_ci",
    "cohort_results",
    "convergence_study",
    "draw_cohort",
    "expand_cohort",
    "read_patient_table",
    "report_cohort",
    "run_cohort",
]
