"""Controllers a user might write, referenced from experiment files by dotted path."""

import numpy as np

from closedloop.controllers import Controller


class HalfAmplitude(Controller):
    """Constant 1.25 mA, to show a user's class runs from YAML."""

    name = "half_amplitude"

    def __init__(self, amplitude_ma: float = 1.25) -> None:
        self.amplitude_ma = amplitude_ma

    def reset(self, n, rng):
        self.amp_ = np.full(n, float(self.amplitude_ma))

    def update(self, t, features):
        return {"amplitude_ma": self.amp_}


class Raises(Controller):
    """Fails on its third call."""

    def reset(self, n, rng):
        self.calls_ = 0

    def update(self, t, features):
        self.calls_ += 1
        if self.calls_ == 3:
            raise RuntimeError("controller bug")
        return {"amplitude_ma": np.zeros(len(features["biomarker"]))}


class FeatureLogger(Controller):
    """Logs every feature it is given (to check what controllers see)."""

    log: list = []

    def reset(self, n, rng):
        FeatureLogger.log = []
        self.zero_ = np.zeros(n)

    def update(self, t, features):
        FeatureLogger.log.append({k: np.array(v) for k, v in features.items()})
        return {"amplitude_ma": self.zero_}
