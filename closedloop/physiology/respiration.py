"""Respiration as a sequence of breaths with breath-to-breath variability.

A breath ``k`` starts (inspiration onset) at ``onset_k``, lasts ``T_k`` s
and inspires for the fraction ``f_k`` of it (``Ti/Ttot``); expiration fills
the rest. Breath periods are log-normal with mean ``period_s`` and
coefficient of variation ``period_cv``, successive ones correlated (AR(1)
on the log period, coefficient ``period_autocorr``); the inspiratory
fraction is normal with mean ``insp_fraction`` and coefficient of
variation ``insp_fraction_cv``, clipped to [0.2, 0.7].

Respiratory phase, in cycles (0 to 1), is linear in time within each half
of a breath: inspiration covers ``[0, f_k)`` and expiration ``[f_k, 1)``.
The phase of a breath is known only at its end; what a device can read
causally is the half it is in (from the flow's sign) and the time since
that half began (:meth:`BreathTable.state`).

Numbers (healthy adults, quiet breathing at rest)
-------------------------------------------------
- Breath-to-breath coefficient of variation of the breathing frequency
  20.8 +- 11.5 % and of ``Ti/Ttot`` 17.9 +- 6.5 % (Tobin et al. 1988,
  abstract seen): ``period_cv = 0.2``, ``insp_fraction_cv = 0.18``.
- Lag-one autocorrelation of inspiratory and expiratory times 0.20 and
  0.26 (Am J Respir Crit Care Med 1995;152:1967, abstract seen):
  ``period_autocorr = 0.25``.
- Mean ``Ti/Ttot`` about 0.42 and rate about 15-17 breaths/min (Tobin et
  al. 1983, recalled, unchecked): ``insp_fraction = 0.42``,
  ``period_s = 4.0`` (15 breaths/min, a choice in that range).

Determinism: each instance draws its breaths from its own generator, in
pages of :data:`PAGE` breaths generated when first needed, so a breath's
values do not depend on how a run is chunked.

References
----------
.. [1] Tobin M.J., Mador M.J., Guenther S.M., Lodato R.F., Sackner M.A.
   (1988). Variability of resting respiratory drive and timing in healthy
   subjects. J Appl Physiol 65:309-317.
.. [2] Tobin M.J. et al. (1983). Breathing patterns. 1. Normal subjects.
   Chest 84:202-205.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PAGE", "BreathTable", "RespirationParams"]

#: Breaths generated at a time per instance.
PAGE = 64


@dataclass(frozen=True)
class RespirationParams:
    """Breathing pattern of one subject (see the module notes for sources).

    Parameters
    ----------
    period_s : float
        Mean breath period ``Ttot``, s.
    period_cv : float
        Breath-to-breath coefficient of variation of the period (0 to 1).
    period_autocorr : float
        Lag-one autocorrelation of the log period (0 to 0.95).
    insp_fraction : float
        Mean inspiratory fraction ``Ti/Ttot``.
    insp_fraction_cv : float
        Its breath-to-breath coefficient of variation.
    """

    period_s: float = 4.0
    period_cv: float = 0.2
    period_autocorr: float = 0.25
    insp_fraction: float = 0.42
    insp_fraction_cv: float = 0.18

    def __post_init__(self) -> None:
        checks = {
            "period_s": (self.period_s, 0.5, 30.0),
            "period_cv": (self.period_cv, 0.0, 1.0),
            "period_autocorr": (self.period_autocorr, 0.0, 0.95),
            "insp_fraction": (self.insp_fraction, 0.2, 0.7),
            "insp_fraction_cv": (self.insp_fraction_cv, 0.0, 0.5),
        }
        for key, (value, low, high) in checks.items():
            if not (isinstance(value, int | float) and low <= value <= high):
                raise ValueError(f"respiration.{key} must be in [{low:g}, {high:g}], got {value!r}")


class BreathTable:
    """The breaths of ``n`` instances, generated ahead as time goes on.

    Parameters
    ----------
    params : RespirationParams
        The breathing pattern (the same for every instance).
    seeds : sequence of SeedSequence
        One per instance.
    """

    def __init__(self, params: RespirationParams, seeds: Sequence[np.random.SeedSequence]) -> None:
        self.params = params
        self.rngs = [np.random.default_rng(s) for s in seeds]
        n = len(seeds)
        self.onsets = np.zeros((n, 0))
        self.ends = np.zeros((n, 0))
        self.fractions = np.zeros((n, 0))
        self.z = np.zeros(n)
        self.first = True
        self._grow()

    def _grow(self) -> None:
        """One more page of breaths for every instance."""
        p = self.params
        sigma = math.sqrt(math.log1p(p.period_cv**2))
        rho = p.period_autocorr
        n = len(self.rngs)
        z = np.empty((n, PAGE))
        eps_f = np.empty((n, PAGE))
        for i, rng in enumerate(self.rngs):
            eps = rng.standard_normal(PAGE)
            eps_f[i] = rng.standard_normal(PAGE)
            zi = eps[0] if self.first else rho * self.z[i] + math.sqrt(1 - rho**2) * eps[0]
            for k in range(PAGE):
                if k:
                    zi = rho * zi + math.sqrt(1 - rho**2) * eps[k]
                z[i, k] = zi
        self.first = False
        self.z = z[:, -1].copy()
        periods = p.period_s * np.exp(sigma * z - 0.5 * sigma**2)
        fractions = np.clip(p.insp_fraction * (1.0 + p.insp_fraction_cv * eps_f), 0.2, 0.7)
        start = self.ends[:, -1:] if self.ends.shape[1] else np.zeros((n, 1))
        ends = start + np.cumsum(periods, axis=1)
        onsets = np.concatenate([start, ends[:, :-1]], axis=1)  # breaths tile time exactly
        self.onsets = np.concatenate([self.onsets, onsets], axis=1)
        self.ends = np.concatenate([self.ends, ends], axis=1)
        self.fractions = np.concatenate([self.fractions, fractions], axis=1)

    def cursor(self) -> np.ndarray:
        """A fresh cursor (the breath each instance is in) for :meth:`state`."""
        return np.zeros(len(self.rngs), dtype=np.int64)

    def state(self, t_s: float, cursor: np.ndarray) -> dict[str, np.ndarray]:
        """Respiration at time ``t_s``, each ``(n,)``; ``cursor`` is moved on in place.

        Times must not decrease from one call to the next with the same
        cursor (each consumer keeps its own, from :meth:`cursor`).

        Returns
        -------
        dict of ndarray
            ``phase`` (cycles, 0 to 1: the true phase, known to a device only
            after the breath), ``expiring`` (1 during expiration, 0 during
            inspiration), ``time_in_phase_s`` (since the current half began,
            s) and ``period_s`` (the length of the breath in progress, s).
        """
        while np.any(self.ends[:, -1] <= t_s):
            self._grow()
        rows = np.arange(len(self.rngs))
        while True:
            step = self.ends[rows, cursor] <= t_s
            if not step.any():
                break
            cursor += step
        return self._describe(t_s, rows, cursor)

    def states_at(self, times_s: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`state` at several increasing times at once, each ``(n, len(times_s))``."""
        times_s = np.asarray(times_s, dtype=np.float64)
        while np.any(self.ends[:, -1] <= times_s[-1]):
            self._grow()
        # The breath in progress: the number of breaths ended by then (as the cursor counts).
        idx = np.stack([np.searchsorted(row, times_s, side="right") for row in self.ends])
        return self._describe(times_s[None, :], np.arange(len(self.rngs))[:, None], idx)

    def _describe(self, t_s: Any, rows: np.ndarray, idx: np.ndarray) -> dict[str, np.ndarray]:
        onset = self.onsets[rows, idx]
        period = self.ends[rows, idx] - onset
        frac = self.fractions[rows, idx]
        x = (t_s - onset) / period
        expiring = x >= frac
        since = np.where(expiring, t_s - (onset + frac * period), t_s - onset)
        return {
            "phase": x,
            "expiring": expiring.astype(np.float64),
            "time_in_phase_s": since,
            "period_s": period,
        }

    def events_between(self, t0_s: float, t1_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Breath onsets in ``[t0_s, t1_s)``: (instance, onset s, expiration onset s)."""
        while np.any(self.ends[:, -1] <= t1_s):
            self._grow()
        inst, k = np.nonzero((self.onsets >= t0_s) & (self.onsets < t1_s))
        onset = self.onsets[inst, k]
        exp_onset = onset + self.fractions[inst, k] * (self.ends[inst, k] - onset)
        return inst, onset, exp_onset
