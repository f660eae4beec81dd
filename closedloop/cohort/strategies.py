"""Tuning strategies of the clinic loop: what a programmer changes at each visit.

At every visit a strategy is told, per patient, the setting used since the
last visit and the outcome a clinician observed over that interval (a
noisy measure: the mean of the patient's self-reported scores, or a noisy
biomarker summary); it proposes the setting until the next visit. All
strategies minimise the *objective*

    J(x) = measure + sum_p penalty_p * x_p

(the penalty, in measure units per parameter unit, is the clinic's
trade-off between benefit and stimulation cost or side effects: a
modelling choice, 0 by default). Every strategy is batched over patients,
each with its own state and seed, and deterministic by seed.

``grid``
    A clinician's review over the usual steps (e.g. amplitude in 0.5 mA
    steps): the grid points in ascending order, thinned evenly to the visits
    the budget allows; once every point is tried, the best point so far is
    measured again (repeated measures average the noise). The setting kept
    is the point with the lowest mean observed objective.
``optuna``
    Sequential model-based (Bayesian) optimisation with Optuna's
    tree-structured Parzen estimator (:class:`optuna.samplers.TPESampler`),
    one study per patient seeded by the patient's seed, the configured
    starting setting given to it as the first trial. Optuna's Gaussian-
    process sampler would need PyTorch; TPE is Optuna's default and needs
    nothing more. The setting kept is, as for the grid, the point with the
    lowest mean observed objective.
``self_tuning``
    A self-tuning rule after the adaptive gain law of Fleming, Orlowski,
    Lowery & Chaillet 2020 (Front Neurosci 14:639; seen: the abstract),
    which adapts a controller parameter slowly so that the biomarker meets
    its target despite slow changes of the patient. What is implemented here
    is our own discrete form on the visit clock, not their continuous law:
    one parameter ``x`` moves by ``gain * (measure - target)`` at each visit
    (up while the patient is worse than the target, down while better, so
    the rule settles on the least setting that meets the target), clipped
    to its range and rounded to its step. It ignores the penalty: its
    trade-off is the target.

References
----------
Grado L.L., Johnson M.D., Netoff T.I. (2018). Bayesian adaptive dual
control of deep brain stimulation in a computational model of Parkinson's
disease. PLoS Comput Biol 14:e1006606.

Dastin-van Rijn E.M., Widge A.S. (2025). Failure modes and mitigations for
Bayesian optimization of neuromodulation parameters. J Neural Eng
22:036038.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "STRATEGIES",
    "GridStrategy",
    "OptunaStrategy",
    "ParamRange",
    "ParamSpace",
    "SelfTuningStrategy",
    "Strategy",
    "make_strategy",
]


@dataclass(frozen=True)
class ParamRange:
    """One tuned parameter: its range, the clinician's step and its penalty.

    Attributes
    ----------
    low, high : float
        Range, in the parameter's units.
    step : float or None
        The clinician's step (e.g. 0.5 mA); None for a continuous range.
    penalty : float
        Objective units per parameter unit (see the module docstring).
    """

    low: float
    high: float
    step: float | None = None
    penalty: float = 0.0

    def grid(self) -> np.ndarray:
        """The clinician's settings from ``low`` to ``high`` (11 points without a step)."""
        if self.step is None:
            return np.linspace(self.low, self.high, 11)
        k = int(math.floor((self.high - self.low) / self.step + 1e-9))
        return self.low + self.step * np.arange(k + 1)

    def snap(self, x: np.ndarray) -> np.ndarray:
        """Clip to the range and round to the step."""
        x = np.clip(x, self.low, self.high)
        if self.step is not None:
            x = self.low + self.step * np.round((x - self.low) / self.step)
            x = np.clip(x, self.low, self.high)
        return x


@dataclass(frozen=True)
class ParamSpace:
    """The tuned parameters, in order (name to :class:`ParamRange`)."""

    ranges: Mapping[str, ParamRange]
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.ranges))

    @property
    def d(self) -> int:
        """Number of tuned parameters."""
        return len(self.names)

    def objective(self, x: np.ndarray, measure: np.ndarray) -> np.ndarray:
        """``measure + sum_p penalty_p x_p`` per patient (``x`` is ``(n, d)``)."""
        pen = np.array([self.ranges[k].penalty for k in self.names])
        return np.asarray(measure, dtype=float) + x @ pen

    def snap(self, x: np.ndarray) -> np.ndarray:
        """Every column clipped to its range and rounded to its step."""
        return np.stack([self.ranges[k].snap(x[:, j]) for j, k in enumerate(self.names)], axis=1)

    def at_boundary(self, x: np.ndarray, tol: float = 1e-9) -> np.ndarray:
        """Whether each row lies on the low or high end of any parameter."""
        lo = np.array([self.ranges[k].low for k in self.names])
        hi = np.array([self.ranges[k].high for k in self.names])
        span = np.maximum(hi - lo, 1e-300)
        return ((np.abs(x - lo) <= tol * span) | (np.abs(x - hi) <= tol * span)).any(axis=1)


class Strategy(ABC):
    """A batched tuning strategy (see the module docstring).

    Parameters
    ----------
    space : ParamSpace
    start : ndarray of shape (n, d)
        Each patient's setting before the first visit.
    seeds : sequence of int
        One seed per patient.
    **settings
        The strategy's own settings.

    Attributes
    ----------
    xs_, objectives_ : list of ndarray
        The settings ``(n, d)`` and objectives ``(n,)`` told so far, by visit.
    """

    name = "strategy"

    def __init__(
        self, space: ParamSpace, start: np.ndarray, seeds: Sequence[int], **settings: Any
    ) -> None:
        self.space = space
        self.start = space.snap(np.asarray(start, dtype=float).reshape(len(seeds), space.d))
        self.seeds = [int(s) for s in seeds]
        self.n = len(self.seeds)
        self.settings = settings
        self.xs_: list[np.ndarray] = []
        self.measures_: list[np.ndarray] = []
        self.objectives_: list[np.ndarray] = []

    def tell(self, x: np.ndarray, measure: np.ndarray) -> None:
        """The settings used since the last visit and the measure observed, per patient.

        A NaN measure (nothing observed) is kept and ignored by every choice.
        """
        x = np.asarray(x, dtype=float)
        measure = np.asarray(measure, dtype=float)
        self.xs_.append(x.copy())
        self.measures_.append(measure.copy())
        self.objectives_.append(self.space.objective(x, measure))
        self._told(x, measure)

    def _told(self, x: np.ndarray, measure: np.ndarray) -> None:  # noqa: B027 (optional hook)
        """Hook for strategies with state of their own."""

    @abstractmethod
    def ask(self) -> np.ndarray:
        """The setting until the next visit, ``(n, d)``."""

    def final(self) -> np.ndarray:
        """The setting programmed at the last visit of the budget (:meth:`recommend`)."""
        return self.recommend()

    def recommend(self) -> np.ndarray:
        """The setting to keep when the budget is spent: lowest mean observed objective.

        Repeated measurements of one setting are averaged; a patient with no
        finite observation keeps the starting setting.
        """
        out = self.start.copy()
        if not self.xs_:
            return out
        xs = np.stack(self.xs_, axis=1)  # (n, v, d)
        js = np.stack(self.objectives_, axis=1)  # (n, v)
        for i in range(self.n):
            means: dict[tuple[float, ...], list[float]] = {}
            for x, j in zip(xs[i], js[i], strict=True):
                if math.isfinite(j):
                    means.setdefault(tuple(np.round(x, 12)), []).append(float(j))
            if means:
                best = min(means, key=lambda k: (float(np.mean(means[k])), k))
                out[i] = best
        return out


class GridStrategy(Strategy):
    """A clinician's review over the usual steps (see the module docstring).

    Settings
    --------
    n_proposals : int
        Visits available for new settings (the budget less the last visit);
        the grid is thinned evenly to this many points when it is larger.
    """

    name = "grid"

    def __init__(
        self, space: ParamSpace, start: np.ndarray, seeds: Sequence[int], **settings: Any
    ) -> None:
        super().__init__(space, start, seeds, **settings)
        axes = [space.ranges[k].grid() for k in space.names]
        points = np.array(list(itertools.product(*axes)), dtype=float)
        budget = int(settings.get("n_proposals", len(points)))
        if budget < len(points):
            keep = np.unique(np.round(np.linspace(0, len(points) - 1, max(budget, 1))).astype(int))
            points = points[keep]
        self.points = points
        self.next_ = np.zeros(self.n, dtype=int)

    def ask(self) -> np.ndarray:
        """The next grid point, or the best point so far once the grid is done."""
        best = self.recommend()
        out = np.empty((self.n, self.space.d))
        for i in range(self.n):
            if self.next_[i] < len(self.points):
                out[i] = self.points[self.next_[i]]
                self.next_[i] += 1
            else:
                out[i] = best[i]
        return out


class OptunaStrategy(Strategy):
    """Bayesian optimisation per patient with Optuna's TPE sampler (see the module docstring).

    Settings
    --------
    n_startup : int
        Random trials before the Parzen estimators are used (default 3;
        Optuna's own default, 10, is more than a clinic's budget).
    """

    name = "optuna"

    def __init__(
        self, space: ParamSpace, start: np.ndarray, seeds: Sequence[int], **settings: Any
    ) -> None:
        super().__init__(space, start, seeds, **settings)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.distributions: dict[str, optuna.distributions.BaseDistribution] = {
            k: optuna.distributions.FloatDistribution(r.low, r.high, step=r.step)
            for k, r in space.ranges.items()
        }
        n_startup = int(settings.get("n_startup", 3))
        self.studies = [
            optuna.create_study(
                direction="minimize",
                sampler=optuna.samplers.TPESampler(seed=s % 2**32, n_startup_trials=n_startup),
            )
            for s in self.seeds
        ]
        self.pending_: list[Any] = [None] * self.n

    def _told(self, x: np.ndarray, measure: np.ndarray) -> None:
        j = self.objectives_[-1]
        for i, study in enumerate(self.studies):
            trial = self.pending_[i]
            value = float(j[i])
            state = self.optuna.trial.TrialState.COMPLETE if math.isfinite(value) else None
            if trial is None:
                # A setting the study did not propose (the start): add it as a trial.
                if state is None:
                    continue
                params = dict(zip(self.space.names, (float(v) for v in x[i]), strict=True))
                study.add_trial(
                    self.optuna.trial.create_trial(
                        params=params, distributions=self.distributions, value=value
                    )
                )
            elif state is None:
                study.tell(trial, state=self.optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, value)
            self.pending_[i] = None

    def ask(self) -> np.ndarray:
        """Each patient's study proposes its next trial."""
        out = np.empty((self.n, self.space.d))
        for i, study in enumerate(self.studies):
            trial = study.ask(self.distributions)
            self.pending_[i] = trial
            out[i] = [trial.params[k] for k in self.space.names]
        return self.space.snap(out)


class SelfTuningStrategy(Strategy):
    """A visit-clock self-tuning rule after Fleming et al. 2020 (see the module docstring).

    Settings
    --------
    target : float
        The measure to reach (measure units).
    gain : float
        Parameter units per measure unit per visit; positive when raising
        the parameter lowers the measure.
    """

    name = "self_tuning"

    def __init__(
        self, space: ParamSpace, start: np.ndarray, seeds: Sequence[int], **settings: Any
    ) -> None:
        super().__init__(space, start, seeds, **settings)
        if space.d != 1:
            raise ValueError("the self_tuning strategy tunes exactly one parameter")
        self.target = float(settings["target"])
        self.gain = float(settings["gain"])
        self.current_ = self.start.copy()

    def ask(self) -> np.ndarray:
        """Move the setting by ``gain * (measure - target)``; hold it without a measure."""
        if self.measures_:
            err = self.measures_[-1] - self.target
            step = np.where(np.isfinite(err), self.gain * err, 0.0)
            self.current_ = self.space.snap(self.current_ + step[:, None])
        return self.current_.copy()

    def recommend(self) -> np.ndarray:
        """The rule's current setting (it has no notion of a best point)."""
        return self.current_.copy()

    def final(self) -> np.ndarray:
        """At the last visit the rule makes its last adjustment."""
        return self.ask()


#: Strategy name (``clinic.strategy``) to class.
STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (GridStrategy, OptunaStrategy, SelfTuningStrategy)
}


def make_strategy(
    name: str,
    space: ParamSpace,
    start: np.ndarray,
    seeds: Sequence[int],
    **settings: Any,
) -> Strategy:
    """A strategy by name (see :data:`STRATEGIES`)."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise ValueError(f"strategy must be one of {sorted(STRATEGIES)}, got {name!r}") from None
    return cls(space, start, seeds, **settings)
