"""Physiological clocks: breathing and the heart as trigger sources and controller signals.

- :mod:`.respiration`: breaths with breath-to-breath variability (period, Ti/Ttot);
- :mod:`.cardiac`: the heart as an IPFM oscillator with respiratory sinus
  arrhythmia, slow fluctuations, beat jitter and a vagal input; HRV metrics;
- :mod:`.process`: :class:`PhysiologyClock`, the slow process ``physio``
  (features every control period, breath / R-peak / burst events, the
  vagal afferent route to the heart and to a model parameter);
- :mod:`.config`: the ``physiology:`` block.
"""

from closedloop.physiology.cardiac import CardiacParams, Heart, hrv_metrics
from closedloop.physiology.process import PhysiologyClock, VagalParams
from closedloop.physiology.respiration import BreathTable, RespirationParams

__all__ = [
    "BreathTable",
    "CardiacParams",
    "Heart",
    "PhysiologyClock",
    "RespirationParams",
    "VagalParams",
    "hrv_metrics",
]
