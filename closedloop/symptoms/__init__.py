"""Slow symptom states read out as clinical scores (HAMD-17-like, fear index), and the
per-CS fear expression of a conditioning-extinction session.

See :mod:`closedloop.symptoms.state`.
"""

from closedloop.symptoms.fear import FearExpression
from closedloop.symptoms.state import SCALES, ClinicalScale, SymptomState

__all__ = ["SCALES", "ClinicalScale", "FearExpression", "SymptomState"]
