"""Pharmacokinetics: linear compartment models, advanced exactly over any step.

One state vector per instance, ``x = (gut, central, peripheral, effect)``:
the drug amount in the absorption depot (mg), in the central and peripheral
compartments (mg), and the effect-site concentration (ng/mL)::

    d gut/dt        = -ka gut
    d central/dt    =  ka gut - (k10 + k12) central + k21 peripheral + R(t)
    d peripheral/dt =  k12 central - k21 peripheral
    d Ce/dt         =  ke0 (Cp - Ce),        Cp = 1000 central / V1 (ng/mL)

with ``k10 = CL/V1``, ``k12 = Q/V1``, ``k21 = Q/V2`` (a one-compartment
model has ``Q = 0``) and ``R`` an infusion rate (mg/h). An oral dose ``D``
adds ``F D`` to the depot, an intravenous bolus ``D`` to the central
compartment. The effect compartment (Sheiner et al. 1979) is part of the
same linear system, so it is advanced exactly too.

Between inputs the system is linear with a constant infusion rate, so one
step of length ``h`` is exact whatever ``h``::

    x(t + h) = Phi(h) x(t) + Gamma(h) R,    [Phi Gamma; 0 1] = expm([A b; 0 0] h)

(the augmented matrix exponential, Van Loan 1978). :class:`Compartments`
splits a step at every dose and every infusion change, so doses inside a
slow step land at their own time.

References
----------
Rowland M, Tozer TN (2011) Clinical Pharmacokinetics and
Pharmacodynamics, 4th ed. Lippincott Williams & Wilkins (ch. 6, 19).
Sheiner LB, Stanski DR, Vozeh S, Miller RD, Ham J (1979) Simultaneous
modeling of pharmacokinetics and pharmacodynamics: application to
d-tubocurarine. Clin Pharmacol Ther 25:358-371.
Van Loan CF (1978) Computing integrals involving the matrix exponential.
IEEE Trans Automat Control 23:395-404.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "CENTRAL",
    "EFFECT",
    "GUT",
    "PERIPHERAL",
    "Compartments",
    "PKParameters",
    "bateman",
    "expm_small",
]

GUT, CENTRAL, PERIPHERAL, EFFECT = 0, 1, 2, 3
_S_PER_H = 3600.0
_NG_ML_PER_MG_L = 1000.0


@dataclass(frozen=True)
class PKParameters:
    """Per-instance PK/effect-compartment parameters, each an array ``(n,)``.

    Attributes
    ----------
    ka_per_h : ndarray
        First-order absorption rate constant, 1/h.
    cl_l_per_h : ndarray
        Clearance from the central compartment, L/h.
    v1_l : ndarray
        Central volume of distribution, L.
    q_l_per_h : ndarray
        Inter-compartmental clearance, L/h (0: one compartment).
    v2_l : ndarray
        Peripheral volume, L (unused when ``q_l_per_h`` is 0).
    bioavailability : ndarray
        Fraction of an oral dose that reaches the circulation, 1.
    ke0_per_h : ndarray
        Effect-compartment equilibration rate constant, 1/h.
    """

    ka_per_h: np.ndarray
    cl_l_per_h: np.ndarray
    v1_l: np.ndarray
    q_l_per_h: np.ndarray
    v2_l: np.ndarray
    bioavailability: np.ndarray
    ke0_per_h: np.ndarray

    def matrix(self) -> np.ndarray:
        """The rate matrices ``A`` (1/s), shape ``(n, 4, 4)``."""
        n = self.v1_l.shape[0]
        k10 = self.cl_l_per_h / self.v1_l / _S_PER_H
        k12 = self.q_l_per_h / self.v1_l / _S_PER_H
        k21 = np.where(self.q_l_per_h > 0, self.q_l_per_h / self.v2_l, 0.0) / _S_PER_H
        ka = self.ka_per_h / _S_PER_H
        ke0 = self.ke0_per_h / _S_PER_H
        a = np.zeros((n, 4, 4))
        a[:, GUT, GUT] = -ka
        a[:, CENTRAL, GUT] = ka
        a[:, CENTRAL, CENTRAL] = -(k10 + k12)
        a[:, CENTRAL, PERIPHERAL] = k21
        a[:, PERIPHERAL, CENTRAL] = k12
        a[:, PERIPHERAL, PERIPHERAL] = -k21
        a[:, EFFECT, CENTRAL] = ke0 * _NG_ML_PER_MG_L / self.v1_l
        a[:, EFFECT, EFFECT] = -ke0
        return a


class Compartments:
    """The PK state of ``n`` instances of one drug, advanced exactly.

    Parameters
    ----------
    params : PKParameters
        Per-instance parameters.

    Attributes
    ----------
    x : ndarray
        ``(n, 4)``: gut (mg), central (mg), peripheral (mg), effect site (ng/mL).
    infusion_mg_per_h : ndarray
        ``(n,)``: the infusion rate in force, mg/h.
    """

    def __init__(self, params: PKParameters) -> None:
        self.params = params
        self.n = params.v1_l.shape[0]
        a = params.matrix()
        unique, which = np.unique(a.reshape(self.n, -1), axis=0, return_inverse=True)
        self._unique = unique.reshape(-1, 4, 4)
        self._which = which.reshape(-1)
        self._cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self.x = np.zeros((self.n, 4))
        self.infusion_mg_per_h = np.zeros(self.n)

    def reset(self) -> None:
        """No drug anywhere, no infusion."""
        self.x[:] = 0.0
        self.infusion_mg_per_h[:] = 0.0

    def propagators(self, h_s: float) -> tuple[np.ndarray, np.ndarray]:
        """``Phi(h)`` ``(n, 4, 4)`` and ``Gamma(h)`` ``(n, 4)`` (per mg/h of infusion)."""
        key = float(h_s)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        aug = np.zeros((self._unique.shape[0], 5, 5))
        aug[:, :4, :4] = self._unique * h_s
        aug[:, CENTRAL, 4] = h_s / _S_PER_H  # R in mg/h enters at R/3600 mg/s
        e = expm_small(aug)[self._which]  # one per distinct parameter set
        out = (np.ascontiguousarray(e[:, :4, :4]), np.ascontiguousarray(e[:, :4, 4]))
        if len(self._cache) > 64:  # uneven split steps: keep the cache small
            self._cache.clear()
        self._cache[key] = out
        return out

    def advance(self, h_s: float) -> None:
        """Advance every instance by ``h_s`` seconds with the current infusion."""
        if h_s <= 0.0:
            return
        phi, gamma = self.propagators(h_s)
        x = np.einsum("nij,nj->ni", phi, self.x) + gamma * self.infusion_mg_per_h[:, None]
        # The exact solution is non-negative; round-off of a long step is not.
        self.x = np.maximum(x, 0.0)

    def dose(self, amount_mg: np.ndarray, oral: np.ndarray) -> None:
        """Give a dose (mg, per instance; 0 for none): oral to the depot, else intravenous."""
        amount = np.asarray(amount_mg, dtype=np.float64)
        oral = np.asarray(oral, dtype=bool)
        self.x[:, GUT] += np.where(oral, amount * self.params.bioavailability, 0.0)
        self.x[:, CENTRAL] += np.where(oral, 0.0, amount)

    @property
    def plasma_ng_ml(self) -> np.ndarray:
        """Central (plasma) concentration, ng/mL."""
        return self.x[:, CENTRAL] / self.params.v1_l * _NG_ML_PER_MG_L

    @property
    def effect_site_ng_ml(self) -> np.ndarray:
        """Effect-site concentration, ng/mL."""
        return self.x[:, EFFECT].copy()


_PADE13 = (
    64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0,
    129060195264000.0, 10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0,
    40840800.0, 960960.0, 16380.0, 182.0, 1.0,
)  # fmt: skip
_THETA13 = 5.371920351148152


def _mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("kij,kjl->kil", a, b)


def expm_small(a: np.ndarray) -> np.ndarray:
    """Matrix exponentials of a stack of small matrices ``(k, m, m)``.

    Scaling and squaring with the degree-13 Pade approximant (Higham 2005),
    products by ``einsum``: scipy's ``expm`` goes through threaded BLAS,
    which was measured here up to 1000 times slower on 5 x 5 matrices when
    the cores are busy.
    """
    norm = np.abs(a).sum(axis=1).max(axis=1)  # 1-norm of each matrix
    s = np.maximum(0, np.ceil(np.log2(np.maximum(norm, 1e-300) / _THETA13))).astype(int)
    a = a / (2.0**s)[:, None, None]
    b = _PADE13
    eye = np.broadcast_to(np.eye(a.shape[1]), a.shape)
    a2 = _mm(a, a)
    a4 = _mm(a2, a2)
    a6 = _mm(a4, a2)
    u = _mm(
        a,
        _mm(a6, b[13] * a6 + b[11] * a4 + b[9] * a2)
        + b[7] * a6
        + b[5] * a4
        + b[3] * a2
        + b[1] * eye,
    )
    v = (
        _mm(a6, b[12] * a6 + b[10] * a4 + b[8] * a2)
        + b[6] * a6
        + b[4] * a4
        + b[2] * a2
        + b[0] * eye
    )
    r = np.linalg.solve(v - u, v + u)
    for k in range(int(s.max(initial=0))):
        square = _mm(r, r)
        r = np.where((s > k)[:, None, None], square, r)
    return r


def bateman(
    t_h: np.ndarray, dose_mg: float, f: float, ka_per_h: float, ke_per_h: float, v_l: float
) -> np.ndarray:
    """Plasma concentration (ng/mL) after one oral dose, one compartment (Bateman 1910).

    ``C(t) = F D ka / (V (ka - ke)) (exp(-ke t) - exp(-ka t))`` for ``ka != ke``.
    """
    t = np.asarray(t_h, dtype=np.float64)
    c = f * dose_mg * ka_per_h / (v_l * (ka_per_h - ke_per_h))
    return _NG_ML_PER_MG_L * c * (np.exp(-ke_per_h * t) - np.exp(-ka_per_h * t))
