"""Virtual patients: cohorts from tables or priors, arms, responder rates.

See :mod:`closedloop.cohort.plan` for the ``cohort:`` block.
"""

from closedloop.cohort.outcomes import CohortResults, bootstrap_ci, cohort_results
from closedloop.cohort.plan import CohortPlan, CohortSpec, expand_cohort
from closedloop.cohort.priors import CohortPriors, draw_cohort
from closedloop.cohort.runner import report_cohort, run_cohort
from closedloop.cohort.table import PatientTable, read_patient_table

__all__ = [
    "CohortPlan",
    "CohortPriors",
    "CohortResults",
    "CohortSpec",
    "PatientTable",
    "bootstrap_ci",
    "cohort_results",
    "draw_cohort",
    "expand_cohort",
    "read_patient_table",
    "report_cohort",
    "run_cohort",
]
