"""Drift over days and months: electrode encapsulation, disease progression, circadian rhythm.

Adaptive controllers matter because patients are not stationary. A
:class:`Drift` is a slow process (:mod:`closedloop.core.slow`) that moves
declared-modulatable model parameters away from their configured values
along documented time courses, each *term* acting on one or more
parameters:

``encapsulation``
    The tissue around a new electrode encapsulates over the first weeks,
    impedance rises and the same current reaches fewer neurons. The
    stimulation-coupling parameters are scaled by
    ``c(t) = c_inf + (1 - c_inf) exp(-t / tau_s)``: ``c_inf`` (default
    0.75) and ``tau_s`` (default 10 days) are modelling choices in the range
    of the impedance rise reported over the first weeks after implantation
    (recalled: check against Lempka et al. 2009 and Sillay et al. 2013
    before quoting), and of DBS-Gym's protocol (conductance -25 % every 5
    episodes).
``progression``
    Disease progression: the parameters change linearly by ``rate_per_day``
    (a fraction of their configured value per day), e.g. a slowly
    strengthening pathological coupling.
``circadian``
    A 24-h rhythm: the parameters are scaled by
    ``1 + amplitude cos(2 pi (t - peak_s) / 86400 s)`` (the beta biomarker
    of Parkinson's patients and mood both vary over the day).

Terms multiply (encapsulation, circadian) or add (progression) onto the
configured value; every parameter stays within its documented range (an
excursion is an error naming the term). Each term's factor is recorded as
``drift_<term>_<k>`` at the slow rate, so a run file shows what drifted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from closedloop.core.slow import SlowProcess

__all__ = ["DAY_S", "PER_INSTANCE", "Drift", "DriftTerm"]

DAY_S = 86400.0


class DriftTerm(BaseModel):
    """One drift term (see the module docstring); per-instance values may be lists."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["encapsulation", "progression", "circadian"]
    params: list[str] = Field(min_length=1)
    c_inf: float | list[float] = 0.75
    tau_s: float | list[float] = 10 * DAY_S
    rate_per_day: float | list[float] = 0.0
    amplitude: float | list[float] = 0.1
    peak_s: float | list[float] = 0.0


#: Term settings that may differ per instance.
PER_INSTANCE = ("c_inf", "tau_s", "rate_per_day", "amplitude", "peak_s")


class Drift(SlowProcess):
    """Model parameters drifting along documented time courses.

    Parameters
    ----------
    terms : sequence of DriftTerm
        The terms, applied in order.
    base : mapping of str to array_like
        Each drifting parameter's configured value (per instance).
    period_s : float
        Slow step, s.
    """

    def __init__(
        self,
        terms: Sequence[DriftTerm],
        base: Mapping[str, Any],
        period_s: float = 3600.0,
    ) -> None:
        self.name = "drift"
        self.terms = [DriftTerm.model_validate(t) for t in terms]
        self.base = {k: np.asarray(v, dtype=float) for k, v in base.items()}
        self.period_s = period_s
        for k, term in enumerate(self.terms):
            for key in term.params:
                if key not in self.base:
                    raise ValueError(f"drift.{k}.params: no configured value for {key!r}")
            tau = np.asarray(term.tau_s, dtype=float)
            c_inf = np.asarray(term.c_inf, dtype=float)
            if np.any(tau <= 0) or np.any(c_inf < 0):
                raise ValueError(f"drift.{k}: tau_s must be > 0 and c_inf >= 0")
            if np.any(np.abs(np.asarray(term.amplitude, dtype=float)) >= 1):
                raise ValueError(f"drift.{k}.amplitude: |amplitude| must be below 1")

    # -- the SlowProcess contract ------------------------------------------------
    def reset(self, n: int, seeds: Sequence[np.random.SeedSequence]) -> None:
        """Start at t = 0 (every factor at its initial value)."""
        self.n_ = n
        self.t_s_ = 0.0

    def advance(self, t_s: float, dt_s: float, readout: Mapping[str, np.ndarray]) -> None:
        """Move the clock: drift depends on time only."""
        self.t_s_ = t_s

    def factors(self) -> list[np.ndarray]:
        """Each term's factor now (multiplicative terms) or added fraction (progression)."""
        t = self.t_s_
        out = []
        for term in self.terms:
            if term.kind == "encapsulation":
                c_inf = np.asarray(term.c_inf, dtype=float)
                f = c_inf + (1.0 - c_inf) * np.exp(-t / np.asarray(term.tau_s, dtype=float))
            elif term.kind == "progression":
                f = np.asarray(term.rate_per_day, dtype=float) * (t / DAY_S)
            else:
                phase = 2.0 * math.pi * (t - np.asarray(term.peak_s, dtype=float)) / DAY_S
                f = 1.0 + np.asarray(term.amplitude, dtype=float) * np.cos(phase)
            out.append(np.broadcast_to(f, (self.n_,)).astype(float))
        return out

    def modulation(self) -> dict[str, np.ndarray]:
        """Every drifting parameter's value now."""
        values = {k: np.broadcast_to(v, (self.n_,)).astype(float) for k, v in self.base.items()}
        scale = {k: np.ones(self.n_) for k in values}
        added = {k: np.zeros(self.n_) for k in values}
        for term, f in zip(self.terms, self.factors(), strict=True):
            for key in term.params:
                if term.kind == "progression":
                    added[key] = added[key] + f
                else:
                    scale[key] = scale[key] * f
        return {k: values[k] * (scale[k] + added[k]) for k in values}

    def series(self) -> dict[str, tuple[str, str]]:
        """Each term's factor, recorded at the slow rate."""
        what = {
            "encapsulation": "stimulation coupling factor c(t)",
            "progression": "added fraction of the configured value",
            "circadian": "circadian factor",
        }
        return {
            f"{t.kind}_{k}": ("1", f"{what[t.kind]} on {', '.join(t.params)}")
            for k, t in enumerate(self.terms)
        }

    def values(self) -> dict[str, np.ndarray]:
        """Each term's factor now, ``(n,)``."""
        return {
            f"{t.kind}_{k}": f.copy()
            for k, (t, f) in enumerate(zip(self.terms, self.factors(), strict=True))
        }

    @classmethod
    def concatenate(cls, processes: Sequence[Drift], sizes: Sequence[int]) -> Drift:
        """One drift for several runs' instances, each keeping its own settings."""
        first = processes[0]
        for other in processes[1:]:
            if [(t.kind, t.params) for t in other.terms] != [
                (t.kind, t.params) for t in first.terms
            ] or other.period_s != first.period_s:
                raise ValueError("drift terms differ: they cannot share a batch")

        def cat(values: Sequence[Any]) -> np.ndarray:
            return np.concatenate(
                [
                    np.broadcast_to(np.asarray(v, dtype=float), (size,))
                    for v, size in zip(values, sizes, strict=True)
                ]
            )

        terms = [
            DriftTerm(
                kind=t.kind,
                params=list(t.params),
                **{
                    key: cat([getattr(p.terms[k], key) for p in processes]).tolist()
                    for key in PER_INSTANCE
                },
            )
            for k, t in enumerate(first.terms)
        ]
        base = {key: cat([p.base[key] for p in processes]) for key in first.base}
        return cls(terms, base, first.period_s)
