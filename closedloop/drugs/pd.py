"""Pharmacodynamics: Hill/Emax response, slow adaptation, and the map onto model parameters.

The effect-site concentration ``Ce`` (ng/mL, from :mod:`closedloop.drugs.pk`)
gives the effect by the sigmoid Emax (Hill) model::

    E = Emax Ce^h / (EC50^h + Ce^h)

An optional slow adaptation state ``A`` follows ``E`` with time constant
``tau`` (days to weeks)::

    dA/dt = (E - A) / tau

the common phenomenological account of effects that build over weeks, such
as the delayed antidepressant response to SSRIs attributed to 5-HT1A
autoreceptor desensitisation (Blier & de Montigny 1994). Over one step ``E``
is taken linear in time between its values at the step's ends (first-order
hold), and ``A`` advanced by the exact solution of that linear ODE; the
error this leaves is of order ``(h/tau)^2`` times the change of ``E`` over
the step, about 1e-8 for a 1 min step against a one-week ``tau``.

The drive ``d`` (``E``, or ``A`` when the drug declares adaptation) sets
named model parameters, each either linearly between two settings or
multiplicatively::

    linear:          p = p_from + (p_to - p_from) d
    multiplicative:  p = p_base (1 + gain d)

References
----------
Holford NHG, Sheiner LB (1981) Understanding the dose-effect relationship:
clinical application of pharmacokinetic-pharmacodynamic models. Clin
Pharmacokinet 6:429-453.
Blier P, de Montigny C (1994) Current advances and trends in the treatment of
depression. Trends Pharmacol Sci 15:220-226.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ParameterMap", "adapt", "hill"]


def hill(ce: np.ndarray, emax: np.ndarray, ec50: np.ndarray, n_hill: np.ndarray) -> np.ndarray:
    """Sigmoid Emax: ``Emax Ce^h / (EC50^h + Ce^h)`` (``Ce`` and ``EC50`` in ng/mL)."""
    c = np.maximum(np.asarray(ce, dtype=np.float64), 0.0)
    r = (c / ec50) ** n_hill
    return emax * r / (1.0 + r)


def adapt(
    a0: np.ndarray, e0: np.ndarray, e1: np.ndarray, h_s: float, tau_s: np.ndarray
) -> np.ndarray:
    """``A`` after ``h_s`` s of ``dA/dt = (E - A)/tau``, ``E`` linear from ``e0`` to ``e1``.

    Exact for an ``E`` linear in time over the step (see the module notes).
    """
    if h_s <= 0.0:
        return a0
    x = h_s / tau_s
    decay = np.exp(-x)
    # (1 - decay)/x without cancellation for small x.
    ramp = np.where(x > 1e-6, -np.expm1(-x) / np.where(x > 1e-6, x, 1.0), 1.0 - 0.5 * x)
    return e1 - (e1 - e0) * ramp + (a0 - e0) * decay


@dataclass(frozen=True)
class ParameterMap:
    """How a drug's drive sets one model parameter.

    Attributes
    ----------
    parameter : str
        Model parameter name (declared in the model's ``modulatable``).
    mode : str
        ``"linear"`` (between ``p_from`` and ``p_to``) or ``"multiplicative"``.
    p_from : ndarray or None
        Value at no effect, ``(n,)``; None: the model's own value.
    p_to : ndarray or None
        Value at drive 1 (linear mode), ``(n,)``.
    gain : ndarray or None
        Relative change at drive 1 (multiplicative mode), ``(n,)``.
    """

    parameter: str
    mode: str
    p_from: np.ndarray | None = None
    p_to: np.ndarray | None = None
    gain: np.ndarray | None = None

    def value(self, base: np.ndarray, drive: np.ndarray) -> np.ndarray:
        """The parameter for ``drive`` (``(n,)``), ``base`` being the model's own value."""
        if self.mode == "linear":
            start = base if self.p_from is None else self.p_from
            return start + (self.p_to - start) * drive
        start = base if self.p_from is None else self.p_from
        return start * (1.0 + self.gain * drive)
