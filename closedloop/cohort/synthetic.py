"""Synthetic patients with a known optimum: how often a clinic strategy converges.

Dastin-van Rijn & Widge (2025, J Neural Eng 22:036038) test Bayesian
optimisation of neuromodulation on simulated patients whose stimulation
effect has a given standardised size, and report that standard BO fails
for effect sizes below d = 0.3 because it over-samples the boundaries of
the parameter range. This module builds such patients for one parameter (an
amplitude, say) so that every strategy of :mod:`closedloop.cohort.strategies`
has the same, known answer, and measures convergence and boundary sampling.

The patients (a modelling choice, not taken from the paper)
-----------------------------------------------------------
A saturating dose-response with a stimulation cost: the mean measure at
setting ``x`` is ``m(x) = b - E (1 - exp(-x / x50))`` and the objective
``J(x) = m(x) + penalty * x``. Each patient's optimum ``x*`` is drawn
uniformly from the interior of the range (whole steps), and ``E`` and ``b``
are set so that ``J`` is minimal at ``x*`` (``E = penalty x50 exp(x*/x50)``)
and ``m(x*)`` equals a common ``target``: the grid and BO (minimising
``J``) and the self-tuning rule (driving ``m`` to the target) all have the
answer ``x*``. A visit measures ``m(x)`` plus Gaussian noise whose standard
deviation is ``(max J - min J) / d`` over the range: ``d`` is the effect of
the best setting against the worst, in units of one visit's noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from closedloop.cohort.strategies import ParamRange, ParamSpace, make_strategy

__all__ = ["ConvergenceResult", "SyntheticPatients", "convergence_study"]


@dataclass
class SyntheticPatients:
    """Patients with a known optimum (see the module docstring).

    Parameters
    ----------
    n : int
        Patients.
    effect_size : float
        ``d``: best against worst setting, in SDs of one visit's measure.
    seed : int
        Draws the optima and the measurement noise.
    low, high, step : float
        The parameter's range and step (default 0-4 mA in 0.5 mA steps).
    x50 : float
        Dose-response scale, parameter units.
    penalty : float
        Objective units per parameter unit.
    target : float
        The measure every patient reaches at their optimum.
    """

    n: int
    effect_size: float
    seed: int = 0
    low: float = 0.0
    high: float = 4.0
    step: float = 0.5
    x50: float = 1.0
    penalty: float = 1.0
    target: float = 10.0

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        interior = np.arange(self.low + self.step, self.high - self.step / 2, self.step)
        self.optimum = rng.choice(interior, size=self.n)
        self.E = self.penalty * self.x50 * np.exp(self.optimum / self.x50)
        self.b = self.target + self.E * (1 - np.exp(-self.optimum / self.x50))
        grid = np.linspace(self.low, self.high, 401)
        j = self.objective(grid[None, :].repeat(self.n, 0))
        self.noise_sd = (j.max(axis=1) - j.min(axis=1)) / self.effect_size
        self.rng = rng

    def mean_measure(self, x: np.ndarray) -> np.ndarray:
        """``m(x)`` per patient (``x`` of shape ``(n,)`` or ``(n, k)``)."""
        E = self.E.reshape(-1, *([1] * (np.ndim(x) - 1)))
        b = self.b.reshape(E.shape)
        return b - E * (1 - np.exp(-np.asarray(x) / self.x50))

    def objective(self, x: np.ndarray) -> np.ndarray:
        """``J(x) = m(x) + penalty x``."""
        return self.mean_measure(x) + self.penalty * np.asarray(x)

    def measure(self, x: np.ndarray) -> np.ndarray:
        """One visit's noisy measure at settings ``x`` ``(n,)``."""
        return self.mean_measure(x) + self.noise_sd * self.rng.standard_normal(self.n)

    def space(self) -> ParamSpace:
        """The one-parameter space, with the penalty."""
        return ParamSpace({"x": ParamRange(self.low, self.high, self.step, self.penalty)})


@dataclass
class ConvergenceResult:
    """How a strategy did on synthetic patients.

    Attributes
    ----------
    strategy : str
    effect_size : float
    n_visits : int
    converged : ndarray of bool, shape (n,)
        The setting kept at the last visit is within ``tol`` of the optimum.
    visits_to_converge : ndarray of float, shape (n,)
        First visit from which the setting kept stays within ``tol`` to the
        end (NaN when not converged).
    boundary_fraction : float
        Fraction of proposed settings on an end of the range.
    regret : ndarray, shape (n,)
        ``J(kept) - J(x*)`` at the end, as a fraction of ``max J - min J``
        over the range (0: the optimum; 1: the worst setting).
    """

    strategy: str
    effect_size: float
    n_visits: int
    converged: np.ndarray
    visits_to_converge: np.ndarray
    boundary_fraction: float
    regret: np.ndarray

    @property
    def rate(self) -> float:
        """Fraction of patients converged."""
        return float(self.converged.mean())

    @property
    def median_visits(self) -> float:
        """Median visits to converge among the converged (NaN if none)."""
        v = self.visits_to_converge[self.converged]
        return float(np.median(v)) if v.size else float("nan")


def convergence_study(
    strategy: str,
    *,
    n_patients: int = 100,
    n_visits: int = 12,
    effect_size: float = 1.0,
    seed: int = 0,
    start: float = 0.0,
    tol: float | None = None,
    settings: Mapping[str, Any] | None = None,
) -> ConvergenceResult:
    """Run ``strategy`` on synthetic patients for a budget of ``n_visits``.

    Parameters
    ----------
    strategy : str
        ``grid``, ``optuna`` or ``self_tuning``.
    n_patients, n_visits : int
    effect_size : float
        ``d`` (see :class:`SyntheticPatients`).
    seed : int
    start : float
        Every patient's setting before the first visit.
    tol : float, optional
        Distance to the optimum that counts as converged (default one step).
    settings : mapping, optional
        The strategy's settings; ``self_tuning`` defaults to the common
        target and a gain of 0.5 (the inverse of twice the dose-response
        slope at the optimum, which equals the penalty there).

    Returns
    -------
    ConvergenceResult
    """
    patients = SyntheticPatients(n_patients, effect_size, seed)
    space = patients.space()
    tol = patients.step if tol is None else tol
    opts = dict(settings or {})
    if strategy == "self_tuning":
        opts.setdefault("target", patients.target)
        opts.setdefault("gain", 0.5 / patients.penalty)
    if strategy == "grid":
        opts.setdefault("n_proposals", n_visits - 1)
    seeds = np.random.SeedSequence(seed).generate_state(n_patients, np.uint64) >> np.uint64(1)
    strat = make_strategy(strategy, space, np.full((n_patients, 1), start), seeds.tolist(), **opts)
    x = strat.start.copy()
    kept, proposed = [], []
    for visit in range(1, n_visits + 1):
        strat.tell(x, patients.measure(x[:, 0]))
        x = strat.ask() if visit < n_visits else strat.final()
        if visit < n_visits:
            proposed.append(x[:, 0].copy())
        kept.append(strat.recommend()[:, 0] if visit < n_visits else x[:, 0].copy())
    kept_arr = np.stack(kept, axis=1)  # (n, visits)
    close = np.abs(kept_arr - patients.optimum[:, None]) <= tol + 1e-9
    converged = close[:, -1]
    # First visit from which it stays close to the end.
    stays = np.flip(np.logical_and.accumulate(np.flip(close, axis=1), axis=1), axis=1)
    first = np.where(stays.any(axis=1), stays.argmax(axis=1) + 1, -1).astype(float)
    first[~converged] = np.nan
    props = np.concatenate(proposed) if proposed else np.zeros(0)
    boundary = float(space.at_boundary(props[:, None]).mean()) if props.size else float("nan")
    final = kept_arr[:, -1]
    span = patients.noise_sd * patients.effect_size
    regret = (patients.objective(final) - patients.objective(patients.optimum)) / span
    return ConvergenceResult(strategy, effect_size, n_visits, converged, first, boundary, regret)
