"""The causal sensing chain: from a model signal to the features a controller reads.

Modules: :mod:`~closedloop.sensing.chain` (the configuration and the state it builds),
:mod:`~closedloop.sensing.kernels` (the compiled chain and its state),
:mod:`~closedloop.sensing.registry` (the features and their dispatch), and one
module per feature family: :mod:`~closedloop.sensing.windowed`,
:mod:`~closedloop.sensing.instantaneous`, :mod:`~closedloop.sensing.phase`.
"""

from closedloop.sensing.chain import SensingChain
from closedloop.sensing.kernels import SensingState
from closedloop.sensing.registry import FEATURES, REGISTRY, Feature

__all__ = ["FEATURES", "REGISTRY", "Feature", "SensingChain", "SensingState"]
