"""The drug layer: pharmacokinetics, pharmacodynamics and doses on a slow clock.

- :mod:`closedloop.drugs.pk`: linear compartment models advanced exactly
  over any step (one and two compartments, first-order absorption, bolus,
  oral and infusion inputs, an effect compartment).
- :mod:`closedloop.drugs.pd`: sigmoid Emax, a slow adaptation state, and
  the map of a drug's drive onto model parameters.
- :mod:`closedloop.drugs.process`: :class:`DrugLayer`, the slow process
  (schedules, controller-commanded doses within safety limits, dose events).
- :mod:`closedloop.drugs.presets`: SSRI, benzodiazepine and levodopa, with
  sources.
- :mod:`closedloop.drugs.config`: the ``drugs:`` block of an experiment file.
"""

from closedloop.drugs.pk import Compartments, PKParameters, bateman
from closedloop.drugs.presets import PRESETS
from closedloop.drugs.process import DoseLimits, DrugLayer, DrugSpec

__all__ = [
    "PRESETS",
    "Compartments",
    "DoseLimits",
    "DrugLayer",
    "DrugSpec",
    "PKParameters",
    "bateman",
]
