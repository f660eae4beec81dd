"""Constrained model-predictive control of a biomarker through an identified model (OSQP).

Each control period :class:`MPC` corrects its Kalman estimate, then solves,
per instance, the quadratic program over the next ``horizon`` amplitudes
``a_0 .. a_{N-1}`` (mA)::

    minimise   sum_j q (y_{j+1} - target)^2 + r a_j^2 + d (a_j - a_{j-1})^2
    subject to a_min <= a_j <= a_max'                       (amplitude, charge per phase)
               |a_j - a_{j-1}| <= ramp * period             (ramp)
               sum_j a_j * pw * f * period <= charge budget (charge over the horizon)

with ``y`` predicted by the identified model from the estimated state,
``a_{-1}`` the amplitude issued last, ``a_max' = min(a_max, Q_max / pw)``
(Shannon's charge-per-phase limit when ``charge_per_phase_max_uc`` is
given), and issues ``a_0`` (receding horizon). The QP is condensed (the
amplitudes are the only variables); its matrix and constraint rows do not
change, so each instance keeps one OSQP solver, set up once and warm
started, whose linear cost and bounds are updated each period.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from closedloop.control.lqr import ModelBased
from closedloop.controllers.base import real_parameter

__all__ = ["MPC", "prediction_matrices"]


def prediction_matrices(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """``Phi`` (N, nx) and ``Gamma`` (N, N): ``y_{j+1} = Phi[j] x_0 + sum_l Gamma[j, l] u_l``.

    For one output row ``c`` (1, nx) and one input column ``b`` (nx, 1).
    """
    nx = a.shape[0]
    phi = np.empty((horizon, nx))
    markov = np.empty(horizon)  # c A^j b
    power = np.eye(nx)
    for j in range(horizon):
        markov[j] = (c @ power @ b).item()
        power = a @ power
        phi[j] = (c @ power)[0]
    gamma = np.zeros((horizon, horizon))
    for j in range(horizon):
        gamma[j, : j + 1] = markov[: j + 1][::-1]
    return phi, gamma


class MPC(ModelBased):
    """Model-predictive amplitude control with amplitude, ramp and charge constraints.

    Parameters
    ----------
    model : StateSpaceModel or str, default ""
        The identified model, or the path of its ``.npz`` file; its first
        input is ``amplitude_ma``.
    feature : str, default ""
        The controlled output (default: the model's first).
    target : float, default 0.0
        Target level of ``feature``, in its units.
    horizon : int, default 20
        Prediction horizon, control periods.
    output_weight : float, default 1.0
        ``q``, per squared feature unit.
    input_weight : float, default 0.01
        ``r``, per mA squared (energy grows with the amplitude squared).
    ramp_weight : float, default 0.0
        ``d``, per (mA per period) squared.
    min_amplitude_ma : float, default 0.0
        Lowest amplitude in mA, non-negative.
    max_amplitude_ma : float, default 3.0
        Highest amplitude in mA.
    ramp_ma_per_s : float, default inf
        Fastest amplitude change, mA/s (the device's ramp rate, say).
    charge_per_phase_max_uc : float, default inf
        Largest charge per phase, uC (the device's ``charge_limit_uc``).
    charge_budget_uc : float, default inf
        Largest cathodic charge over the horizon, uC.
    frequency_hz : float, default 130.0
        Pulse frequency in Hz (that of the identification).
    pulse_width_us : float, default 60.0
        Pulse width in microseconds (that of the identification).
    offset_free : bool, default True
        Estimate a constant output disturbance with the state (predictions
        include it), so that the feature settles at the target despite
        model mismatch.

    Notes
    -----
    Weights are the user's choice; the defaults are not from a paper. An
    infeasible QP (a charge budget that the ramp cannot reach in time, say)
    or one OSQP does not solve gives the previous amplitude, ramp-limited
    towards ``min_amplitude_ma``; :attr:`failures_` counts them per instance.
    """

    name = "mpc"
    references = (
        *ModelBased.references,
        "Fang & Yang 2023, Front Comput Neurosci 17:1119685 (MPC of cingulo-frontal dynamics)",
        "Stellato et al. 2020, Math Program Comput 12:637-672 (OSQP)",
    )

    def __init__(
        self,
        *,
        model: Any = "",
        feature: str = "",
        target: float = 0.0,
        horizon: int = 20,
        output_weight: float = 1.0,
        input_weight: float = 0.01,
        ramp_weight: float = 0.0,
        min_amplitude_ma: float = 0.0,
        max_amplitude_ma: float = 3.0,
        ramp_ma_per_s: float = math.inf,
        charge_per_phase_max_uc: float = math.inf,
        charge_budget_uc: float = math.inf,
        frequency_hz: float = 130.0,
        pulse_width_us: float = 60.0,
        offset_free: bool = True,
    ) -> None:
        self.model = model
        self.feature = feature
        self.target = target
        self.horizon = horizon
        self.output_weight = output_weight
        self.input_weight = input_weight
        self.ramp_weight = ramp_weight
        self.min_amplitude_ma = min_amplitude_ma
        self.max_amplitude_ma = max_amplitude_ma
        self.ramp_ma_per_s = ramp_ma_per_s
        self.charge_per_phase_max_uc = charge_per_phase_max_uc
        self.charge_budget_uc = charge_budget_uc
        self.frequency_hz = frequency_hz
        self.pulse_width_us = pulse_width_us
        self.offset_free = offset_free

    def reset(self, n: int, rng: np.random.Generator) -> None:
        """Load the model, build the QP and one OSQP solver per instance.

        Parameters
        ----------
        n : int
            Batch size.
        rng : numpy.random.Generator
            Unused: the controller is deterministic.

        Raises
        ------
        ValueError
            If the model cannot be loaded or a parameter is out of range.
        """
        import osqp  # the optional dependency (the 'control' extra)

        self.setup_model(n)
        if int(self.horizon) != self.horizon or self.horizon < 1:
            raise ValueError(
                f"horizon must be a positive whole number of periods, got {self.horizon!r}"
            )
        horizon = int(self.horizon)
        q = real_parameter("output_weight", self.output_weight, "per feature unit^2", "positive")
        r = real_parameter("input_weight", self.input_weight, "per mA^2", "non-negative")
        d = real_parameter("ramp_weight", self.ramp_weight, "per mA^2", "non-negative")
        for name in ("ramp_ma_per_s", "charge_per_phase_max_uc", "charge_budget_uc"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0):
                raise ValueError(f"{name} must be a positive number (inf for none), got {value!r}")
        m = self.model_
        s = self.settings_
        c = m.C[self.output_ : self.output_ + 1]
        self.phi_, self.gamma_ = prediction_matrices(m.A, m.B[:, :1], c, horizon)
        diff = np.eye(horizon) - np.eye(horizon, k=-1)
        hessian = 2.0 * (q * self.gamma_.T @ self.gamma_ + r * np.eye(horizon) + d * diff.T @ diff)
        self.q_, self.d_, self.diff_ = q, d, diff
        width_ms = s["pulse_width_us"] * 1e-3
        top = min(s["max_amplitude_ma"], self.charge_per_phase_max_uc / width_ms)
        self.top_ = max(top, s["min_amplitude_ma"])
        self.step_ma_ = self.ramp_ma_per_s * m.period_s
        # uC per mA of amplitude held one period: charge per phase x pulses per period.
        charge_row = np.full((1, horizon), width_ms * s["frequency_hz"] * m.period_s)
        rows = [np.eye(horizon), diff, charge_row]
        self.constraints_ = np.vstack(rows)
        self.lower_ = np.concatenate(
            [np.full(horizon, s["min_amplitude_ma"]), np.full(horizon, -self.step_ma_), [-np.inf]]
        )
        self.upper_ = np.concatenate(
            [np.full(horizon, self.top_), np.full(horizon, self.step_ma_), [self.charge_budget_uc]]
        )
        self.solvers_ = []
        for _ in range(n):
            solver = osqp.OSQP()
            solver.setup(
                sp.csc_matrix(np.triu(hessian)),
                np.zeros(horizon),
                sp.csc_matrix(self.constraints_),
                np.nan_to_num(self.lower_, neginf=-1e30),
                np.nan_to_num(self.upper_, posinf=1e30),
                verbose=False,
                warm_starting=True,
                eps_abs=1e-6,
                eps_rel=1e-6,
                max_iter=4000,
            )
            self.solvers_.append(solver)
        self.failures_ = np.zeros(n, dtype=np.int64)
        self.horizon_ = horizon

    def choose(self, x: np.ndarray) -> np.ndarray:
        """The first amplitude of each instance's optimal plan, mA."""
        m = self.model_
        horizon = self.horizon_
        # Free response to the target, the mean input removed (decisions are absolute mA).
        reference = self.target_ - m.y_offset[self.output_]
        offset = self.gamma_ @ np.full(horizon, m.u_offset[0])
        out = np.empty(self.n_)
        for i, solver in enumerate(self.solvers_):
            prev = self.amplitude_[i]
            error = self.phi_ @ x[i] - offset - reference
            first = np.zeros(horizon)
            first[0] = prev
            linear = 2.0 * (self.q_ * self.gamma_.T @ error - self.d_ * self.diff_.T @ first)
            lower, upper = self.lower_.copy(), self.upper_.copy()
            lower[horizon] += prev  # the ramp row of a_0 is a_0 - a_{-1}
            upper[horizon] += prev
            solver.update(
                q=linear,
                l=np.nan_to_num(lower, neginf=-1e30),
                u=np.nan_to_num(upper, posinf=1e30),
            )
            result = solver.solve(raise_error=False)
            if result.info.status_val in (1, 2):  # solved, solved inaccurate
                # Within the solver's tolerance of the bounds: clip onto them exactly.
                a0 = min(max(result.x[0], prev - self.step_ma_), prev + self.step_ma_)
                out[i] = min(max(a0, self.settings_["min_amplitude_ma"]), self.top_)
            else:
                self.failures_[i] += 1
                out[i] = max(prev - self.step_ma_, self.settings_["min_amplitude_ma"])
        return out
