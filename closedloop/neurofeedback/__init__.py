"""Neurofeedback: the patient as a learner in the loop.

A simulated subject sees a display of its own biomarker and learns, by a
documented reinforcement-learning rule, which mental action moves it.

- :mod:`~closedloop.neurofeedback.learner`: the rule (softmax choice, values
  from delayed feedback shared by an eligibility trace);
- :mod:`~closedloop.neurofeedback.schedule`: sessions of runs of baseline and
  regulate blocks, then transfer runs without feedback;
- :mod:`~closedloop.neurofeedback.process`: :class:`Neurofeedback`, the slow
  process on the display's clock (feedback latency, display rate, sham arm);
- :mod:`~closedloop.neurofeedback.config`: the ``neurofeedback:`` block.
"""

from closedloop.neurofeedback.learner import TraceLearner, softmax
from closedloop.neurofeedback.process import SHAM_SOURCES, Neurofeedback
from closedloop.neurofeedback.schedule import Frame, TrainingSchedule

__all__ = [
    "SHAM_SOURCES",
    "Frame",
    "Neurofeedback",
    "TraceLearner",
    "TrainingSchedule",
    "softmax",
]
