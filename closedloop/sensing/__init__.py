"""The causal sensing chain: from a model signal to the features a controller reads."""

from closedloop.sensing.chain import FEATURES, SensingChain, SensingState

__all__ = ["FEATURES", "SensingChain", "SensingState"]
