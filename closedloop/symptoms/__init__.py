"""Slow symptom states read out as clinical scores (HAMD-17-like, fear index).

See :mod:`closedloop.symptoms.state`.
"""

from closedloop.symptoms.state import SCALES, ClinicalScale, SymptomState

__all__ = ["SCALES", "ClinicalScale", "SymptomState"]
