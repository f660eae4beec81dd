"""Cohorts drawn from priors: distributions, correlations and covariate rules.

A generator draws every patient's parameters from distributions, seeded, so
that responders and non-responders emerge from the parameters rather than
being assigned. Correlations between continuous parameters are imposed with
a Gaussian copula: a correlated standard normal vector ``z ~ N(0, R)`` is
mapped through the standard normal CDF to uniforms and then through each
marginal's inverse CDF, so each parameter keeps its own distribution
exactly and ``R`` is the correlation of the normal scores (Spearman's rho of
the parameters is ``6/pi * arcsin(R/2)``, within 0.02 of ``R``).

Covariates (categorical: metaboliser phenotypes, sex, a severity band) are
drawn with given frequencies, and *rules* turn them into parameters: a rule
multiplies a key path's value (the patient's own, or the experiment's when
the table has no such column) by a factor per category, e.g. a poor
CYP2C19 metaboliser's SSRI clearance. Factors are the user's, with their
source, or a documented preset (:mod:`closedloop.cohort.pgx`:
``{preset: cyp2c19_citalopram, agent: citalopram}``), and a covariate's
frequencies may name a preset too (``{dist: categorical, preset:
cyp2c19_european}``).

Distributions (``dist:``)
-------------------------
``normal``: ``mean``, ``sd``; ``lognormal``: ``median``, ``sd_log`` (sd of
the natural log); ``uniform``: ``low``, ``high``; each may carry ``min`` and
``max`` (values outside are clipped, and the generator says how many were).
``categorical``: ``values``, ``p`` (frequencies summing to 1), or ``preset``
(a name in :data:`closedloop.cohort.pgx.COVARIATE_PRESETS`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import stats

from closedloop.cohort.pgx import COVARIATE_PRESETS, rule_preset
from closedloop.cohort.table import PatientTable

__all__ = ["CohortPriors", "CovariateRule", "Distribution", "apply_rules", "draw_cohort"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Distribution(_Strict):
    """One parameter's (or covariate's) distribution."""

    dist: Literal["normal", "lognormal", "uniform", "categorical"]
    mean: float | None = None
    sd: float | None = Field(None, ge=0)
    median: float | None = Field(None, gt=0)
    sd_log: float | None = Field(None, ge=0)
    low: float | None = None
    high: float | None = None
    min: float | None = None
    max: float | None = None
    values: list[str] | None = None
    p: list[float] | None = None
    preset: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Distribution:
        if self.preset is not None:
            if self.dist != "categorical":
                raise ValueError("preset: only a categorical distribution names a preset")
            if self.preset not in COVARIATE_PRESETS:
                raise ValueError(
                    f"preset: unknown covariate preset {self.preset!r}; known: "
                    + ", ".join(COVARIATE_PRESETS)
                )
            if self.values is not None or self.p is not None:
                raise ValueError("preset: give either preset or values and p, not both")
            self.values = list(COVARIATE_PRESETS[self.preset]["values"])
            self.p = list(COVARIATE_PRESETS[self.preset]["p"])
        need = {
            "normal": ("mean", "sd"),
            "lognormal": ("median", "sd_log"),
            "uniform": ("low", "high"),
            "categorical": ("values", "p"),
        }[self.dist]
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f"a {self.dist} distribution needs {', '.join(missing)}")
        if self.dist == "uniform" and not self.given("low") < self.given("high"):
            raise ValueError("uniform needs low < high")
        if self.dist == "categorical":
            values, p = self.categories()
            if len(values) != len(p) or not values:
                raise ValueError("categorical needs as many frequencies p as values")
            if any(q < 0 for q in p) or abs(sum(p) - 1.0) > 1e-6:
                raise ValueError(f"categorical frequencies p must be >= 0 and sum to 1, got {p}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not exceed max")
        return self

    def given(self, field: str) -> float:
        """The value of numeric ``field``; ValueError naming it when it is not set."""
        value = getattr(self, field)
        if value is None:
            raise ValueError(f"a {self.dist} distribution needs {field}")
        return float(value)

    def categories(self) -> tuple[list[str], list[float]]:
        """``values`` and their frequencies ``p``; ValueError when either is not set."""
        if self.values is None or self.p is None:
            raise ValueError(f"a {self.dist} distribution needs values and p")
        return self.values, self.p

    def quantile(self, u: np.ndarray) -> np.ndarray:
        """Inverse CDF at ``u`` in (0, 1) (continuous distributions)."""
        if self.dist == "normal":
            x = stats.norm.ppf(u, loc=self.given("mean"), scale=self.given("sd"))
        elif self.dist == "lognormal":
            x = self.given("median") * np.exp(self.given("sd_log") * stats.norm.ppf(u))
        else:
            low, high = self.given("low"), self.given("high")
            x = low + (high - low) * u
        return np.clip(
            x,
            -math.inf if self.min is None else self.min,
            math.inf if self.max is None else self.max,
        )


class CovariateRule(_Strict):
    """Multiply ``target`` (a key path) by ``factors[category]`` of ``covariate``.

    ``preset`` (a name in :data:`closedloop.cohort.pgx.RULE_PRESETS`) fills
    ``covariate``, ``target`` (naming the drug ``agent``), ``factors`` and
    ``reference``; a field given beside it overrides the preset's.
    """

    covariate: str | None = None
    target: str | None = None
    factors: dict[str, float] | None = None
    reference: str = ""
    preset: str | None = None
    agent: str = Field("citalopram", pattern=r"^[A-Za-z0-9_]+$")

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("preset") is not None:
            filled = rule_preset(str(data["preset"]), data.get("agent"))
            data = {**filled, **{k: v for k, v in data.items() if v is not None}}
        return data

    @model_validator(mode="after")
    def _complete(self) -> CovariateRule:
        missing = [k for k in ("covariate", "target", "factors") if getattr(self, k) is None]
        if missing:
            raise ValueError(f"a rule needs {', '.join(missing)} (or a preset)")
        if any(not (f >= 0.0 and math.isfinite(f)) for f in self.parts()[2].values()):
            raise ValueError("factors: every factor must be finite and >= 0")
        return self

    def parts(self) -> tuple[str, str, dict[str, float]]:
        """``covariate``, ``target`` and ``factors``; ValueError when any is not set."""
        if self.covariate is None or self.target is None or self.factors is None:
            raise ValueError("a rule needs covariate, target and factors (or a preset)")
        return self.covariate, self.target, self.factors


class CohortPriors(_Strict):
    """A cohort generator: how many patients, their distributions, seeded."""

    n_patients: int = Field(ge=1, le=1_000_000)
    seed: int = Field(0, ge=0)
    id_prefix: str = Field("P", pattern=r"^[A-Za-z0-9_.-]*$")
    params: dict[str, Distribution] = {}
    covariates: dict[str, Distribution] = {}
    correlations: list[tuple[str, str, float]] = []
    version: str = "1"
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> CohortPriors:
        for name, d in self.params.items():
            if d.dist == "categorical":
                raise ValueError(f"params.{name}: a parameter needs a continuous distribution")
        for name, d in self.covariates.items():
            if d.dist != "categorical":
                raise ValueError(f"covariates.{name}: a covariate is categorical")
        for a, b, rho in self.correlations:
            for key in (a, b):
                if key not in self.params:
                    raise ValueError(f"correlations: {key!r} is not one of params")
            if a == b or not -1.0 < rho < 1.0:
                raise ValueError(f"correlations: ({a}, {b}, {rho}) needs two keys and |rho| < 1")
        self.correlation_matrix()  # positive definite
        return self

    def correlation_matrix(self) -> np.ndarray:
        """The normal-score correlation matrix over :attr:`params`, in order."""
        keys = list(self.params)
        r = np.eye(len(keys))
        for a, b, rho in self.correlations:
            i, j = keys.index(a), keys.index(b)
            r[i, j] = r[j, i] = rho
        if keys and np.linalg.eigvalsh(r).min() <= 0:
            raise ValueError("correlations: the correlation matrix is not positive definite")
        return r


def draw_cohort(priors: CohortPriors) -> PatientTable:
    """Draw a patient table from ``priors`` (the same seed gives the same table)."""
    n = priors.n_patients
    root = np.random.SeedSequence(priors.seed)
    params_seq, cov_seq = root.spawn(2)
    keys = list(priors.params)
    params: dict[str, np.ndarray] = {}
    if keys:
        rng = np.random.default_rng(params_seq)
        chol = np.linalg.cholesky(priors.correlation_matrix())
        z = rng.standard_normal((n, len(keys))) @ chol.T
        u = stats.norm.cdf(z)
        for k, key in enumerate(keys):
            params[key] = priors.params[key].quantile(u[:, k])
    covariates = {}
    for name, seq in zip(priors.covariates, cov_seq.spawn(len(priors.covariates)), strict=True):
        d = priors.covariates[name]
        rng = np.random.default_rng(seq)
        values, p = d.categories()
        covariates[name] = np.array(rng.choice(values, size=n, p=p), dtype=object)
    width = max(4, len(str(n - 1)))
    ids = [f"{priors.id_prefix}{i:0{width}d}" for i in range(n)]
    return PatientTable(ids, params, covariates, priors.version, priors.description)


def apply_rules(
    table: PatientTable, rules: Sequence[CovariateRule], base: Mapping[str, float]
) -> PatientTable:
    """A table with every rule's factor applied to its target.

    Parameters
    ----------
    table : PatientTable
    rules : sequence of CovariateRule
    base : mapping of str to float
        The experiment's value of each rule target that is not a table
        column.

    Raises
    ------
    ValueError
        Naming an unknown covariate, a category without a factor, or a
        target with no value.
    """
    params = {k: v.copy() for k, v in table.params.items()}
    for k, rule in enumerate(rules):
        where = f"rules.{k}"
        covariate, target, factors = rule.parts()
        if covariate not in table.covariates:
            raise ValueError(f"{where}.covariate: the table has no covariate {covariate!r}")
        cats = table.covariates[covariate]
        missing = sorted(set(cats) - set(factors))
        if missing:
            raise ValueError(f"{where}.factors: no factor for {', '.join(map(str, missing))}")
        if target in params:
            values = params[target]
        elif target in base:
            values = np.full(len(table), float(base[target]))
        else:
            raise ValueError(
                f"{where}.target: {target!r} is neither a table column nor set in the experiment"
            )
        params[target] = values * np.array([factors[c] for c in cats])
    return PatientTable(
        list(table.patient_id), params, dict(table.covariates), table.version, table.description
    )
