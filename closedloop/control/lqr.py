"""Model-based controllers' shared part, and LQR tracking of a biomarker target.

A model-based controller here holds an identified
:class:`~closedloop.control.sysid.StateSpaceModel` (input: amplitude, mA;
outputs: sensing features) and a :class:`~closedloop.control.estimation.KalmanFilter`
over it. Each control period it corrects the state estimate with the
features just sensed, chooses the amplitude, and predicts the next state
with the amplitude it issued (after its own bounds: the filter must know
what was asked for, which is what the model was identified from).

:class:`LQR` regulates the estimated state to the steady state ``(x_s,
u_s)`` whose output is the target, ``u = u_s - K (x - x_s)``, with ``K``
from ``control.dlqr`` (python-control) for the cost
``sum q (y - target)^2 + r u^2``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from closedloop.control.estimation import KalmanFilter
from closedloop.control.sysid import StateSpaceModel, with_output_disturbance
from closedloop.controllers import compiled as twins
from closedloop.controllers.base import Controller, check_order, check_settings, real_parameter

__all__ = ["LQR", "ModelBased", "steady_state"]


def steady_state(model: StateSpaceModel, output: int, target: float) -> tuple[np.ndarray, float]:
    """The state and input deviations whose output ``output`` stays at ``target``.

    Solves ``x = A x + B u``, ``C[output] x = target - y_offset[output]``
    (least squares if the model has more inputs than the one).
    """
    nx = model.order
    lhs = np.zeros((nx + 1, nx + 1))
    lhs[:nx, :nx] = model.A - np.eye(nx)
    lhs[:nx, nx:] = model.B[:, :1]
    lhs[nx, :nx] = model.C[output]
    rhs = np.zeros(nx + 1)
    rhs[nx] = target - model.y_offset[output]
    sol = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
    return sol[:nx], float(sol[nx])


class ModelBased(Controller):
    """Base of the controllers that act through an identified model and a Kalman filter.

    Subclasses implement :meth:`choose` (amplitudes from the filtered state).
    """

    name = "model_based"
    references: ClassVar[tuple[str, ...]] = (
        "Yang et al. 2018, J Neural Eng 15(6), doi 10.1088/1741-2552/aad1a8 "
        "(identified model, estimator, controller)",
    )
    # Settings each subclass's __init__ stores (read by setup_model).
    model: StateSpaceModel | str | Path
    feature: str
    target: float
    offset_free: bool

    def setup_model(self, n: int) -> None:
        """Load the model, check the settings, start the Kalman filter (from :meth:`reset`)."""
        model = self.model
        if isinstance(model, str | Path):
            if not str(model):
                raise ValueError(
                    "model is required: an identified StateSpaceModel or its .npz file"
                )
            try:
                model = StateSpaceModel.load(model)
            except OSError as exc:
                raise ValueError(f"model file {str(self.model)!r} cannot be read: {exc}") from None
        if not isinstance(model, StateSpaceModel):
            raise ValueError(f"model must be a StateSpaceModel or a .npz path, got {model!r}")
        if model.inputs[:1] != ("amplitude_ma",):
            raise ValueError(
                f"model's first input must be amplitude_ma, it has {list(model.inputs)}"
            )
        feature = self.feature or model.outputs[0]
        if feature not in model.outputs:
            raise ValueError(f"feature {feature!r} is not an output of the model {model.outputs}")
        s = check_settings(
            self, "min_amplitude_ma", "max_amplitude_ma", "frequency_hz", "pulse_width_us"
        )
        check_order(
            "min_amplitude_ma", s["min_amplitude_ma"], "max_amplitude_ma", s["max_amplitude_ma"]
        )
        self.settings_ = s
        self.target_ = real_parameter("target", self.target, "feature units")
        self.plant_ = model
        self.output_ = model.outputs.index(feature)
        # Offset-free: a constant output disturbance in the estimator absorbs
        # the steady-state mismatch between the linear model and the plant.
        self.model_ = with_output_disturbance(model) if self.offset_free else model
        self.n_ = int(n)
        self.filter_ = KalmanFilter(self.model_, n)
        self.amplitude_ = np.zeros(n)
        # Steady state per unit of (target - y_offset - disturbance): it is linear.
        self.x_unit_, self.u_unit_ = steady_state(
            model, self.output_, model.y_offset[self.output_] + 1.0
        )

    def steady_target(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """State ``(n, nx)`` and input ``(n,)`` deviations holding the feature at the target.

        ``x`` is the estimator's state; with ``offset_free`` its disturbance
        of the controlled feature is taken off the target.
        """
        plant = self.plant_
        shift = np.full(x.shape[0], self.target_ - plant.y_offset[self.output_])
        if self.offset_free:
            shift = shift - x[:, plant.order + self.output_]
        return np.outer(shift, self.x_unit_), shift * self.u_unit_

    @property
    def required_features(self) -> tuple[str, ...]:  # type: ignore[override]
        """The model's outputs, all used by the Kalman filter."""
        model = self.model
        if isinstance(model, StateSpaceModel):
            return model.outputs
        return (self.feature,) if self.feature else ("biomarker",)

    def update(self, t: float, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Estimate, choose the amplitude, predict.

        Parameters
        ----------
        t : float
            Time in seconds at the end of the control period just sensed.
        features : mapping of str to ndarray
            The model's outputs, each of shape ``(n,)``.

        Returns
        -------
        dict of str to ndarray
            ``amplitude_ma``, ``frequency_hz`` and ``pulse_width_us``, shape ``(n,)``.
        """
        m = self.model_
        y = np.stack([features[name] for name in m.outputs], axis=1)
        x = self.filter_.correct(y)
        s = self.settings_
        amp = np.clip(self.choose(x), s["min_amplitude_ma"], s["max_amplitude_ma"])
        amp = np.where(np.isfinite(amp), amp, s["min_amplitude_ma"])
        self.amplitude_ = amp
        u = np.zeros((self.n_, m.B.shape[1]))
        u[:, 0] = amp
        u[:, 1:] = m.u_offset[1:]  # other inputs held at their identification means
        self.filter_.predict(u)
        return {
            "amplitude_ma": amp,
            "frequency_hz": np.full(self.n_, s["frequency_hz"]),
            "pulse_width_us": np.full(self.n_, s["pulse_width_us"]),
        }

    def choose(self, x: np.ndarray) -> np.ndarray:
        """Amplitudes (mA) from the filtered state deviations ``x`` of shape ``(n, nx)``."""
        raise NotImplementedError

    def thresholds(self) -> dict[str, float]:
        """The target, for figures."""
        return {"target": float(self.target)}


class LQR(ModelBased):
    """Linear-quadratic regulation of an identified model to a biomarker target.

    Parameters
    ----------
    model : StateSpaceModel or str, default ""
        The identified model, or the path of its ``.npz`` file
        (:meth:`StateSpaceModel.save`); its first input is ``amplitude_ma``.
    feature : str, default ""
        The controlled output (default: the model's first).
    target : float, default 0.0
        Target level of ``feature``, in its units.
    output_weight : float, default 1.0
        ``q``, per squared feature unit.
    input_weight : float, default 0.1
        ``r``, per mA squared (of the deviation from the identification mean).
    min_amplitude_ma : float, default 0.0
        Lowest amplitude in mA, non-negative.
    max_amplitude_ma : float, default 3.0
        Highest amplitude in mA.
    frequency_hz : float, default 130.0
        Pulse frequency in Hz (that of the identification).
    pulse_width_us : float, default 60.0
        Pulse width in microseconds (that of the identification).
    offset_free : bool, default True
        Estimate a constant output disturbance with the state, so that the
        feature settles at the target despite model mismatch.

    Notes
    -----
    ``K = dlqr(A, B, C_f^T q C_f, r)`` with ``C_f`` the row of the controlled
    feature; the command is ``u_s - K (x[k|k] - x_s)`` plus the
    identification's mean amplitude, clipped to the bounds. The weights are
    the user's choice; the defaults are not from a paper.
    """

    name = "lqr"
    references = (
        *ModelBased.references,
        "Fang & Yang 2023, Front Comput Neurosci 17:1119685 (model-based control of MDD)",
    )

    def __init__(
        self,
        *,
        model: Any = "",
        feature: str = "",
        target: float = 0.0,
        output_weight: float = 1.0,
        input_weight: float = 0.1,
        min_amplitude_ma: float = 0.0,
        max_amplitude_ma: float = 3.0,
        frequency_hz: float = 130.0,
        pulse_width_us: float = 60.0,
        offset_free: bool = True,
    ) -> None:
        self.model = model
        self.feature = feature
        self.target = target
        self.output_weight = output_weight
        self.input_weight = input_weight
        self.min_amplitude_ma = min_amplitude_ma
        self.max_amplitude_ma = max_amplitude_ma
        self.frequency_hz = frequency_hz
        self.pulse_width_us = pulse_width_us
        self.offset_free = offset_free

    def reset(self, n: int, rng: np.random.Generator) -> None:
        """Load the model, design the gain, zero the estimate.

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
        import control  # the optional dependency (the 'control' extra)

        self.setup_model(n)
        q = real_parameter("output_weight", self.output_weight, "per feature unit^2", "positive")
        r = real_parameter("input_weight", self.input_weight, "per mA^2", "positive")
        m = self.plant_
        c = m.C[self.output_ : self.output_ + 1]
        weight = q * (c.T @ c)
        gain, _, _ = control.dlqr(m.A, m.B[:, :1], 0.5 * (weight + weight.T), np.array([[r]]))
        self.gain_ = np.asarray(gain)[0]
        self.params_, self.state_ = self._program_arrays(n)

    def _program_arrays(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The parameter rows and state of :func:`closedloop.controllers.compiled.lqr_update`."""
        est, plant, s = self.model_, self.plant_, self.settings_
        n_out = est.C.shape[0]
        header = {
            "nxa": est.order,
            "nx": plant.order,
            "p": n_out,
            "output": self.output_,
            "offset_free": 1.0 if self.offset_free else 0.0,
            "target": self.target_,
            "u_offset": plant.u_offset[0],
            "u_unit": self.u_unit_,
            **{key: s[key] for key in twins.LQR_HEADER[8:]},
        }
        row = np.concatenate(
            [
                [float(header[key]) for key in twins.LQR_HEADER],
                est.y_offset,
                self.filter_.gain.ravel(),  # M, (nxa, p)
                est.C.ravel(),
                est.A.ravel(),
                est.B[:, 0],
                self.gain_,
                self.x_unit_,
            ]
        )
        state = np.zeros((n, 2 * est.order + n_out))
        return np.tile(row, (n, 1)), state

    def update(self, t: float, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Correct the estimate, apply the tracking law, predict (compiled, one call).

        Parameters
        ----------
        t : float
            Time in seconds at the end of the control period just sensed.
        features : mapping of str to ndarray
            The model's outputs, each of shape ``(n,)``.

        Returns
        -------
        dict of str to ndarray
            ``amplitude_ma``, ``frequency_hz`` and ``pulse_width_us``, shape ``(n,)``.
        """
        y = np.stack([features[name] for name in self.model_.outputs], axis=1)
        amp = np.empty(self.n_)
        twins.lqr_batch(self.params_, self.state_, y, amp)
        self.amplitude_ = amp
        s = self.settings_
        return {
            "amplitude_ma": amp,
            "frequency_hz": np.full(self.n_, s["frequency_hz"]),
            "pulse_width_us": np.full(self.n_, s["pulse_width_us"]),
        }

    def compiled(self) -> tuple[int, np.ndarray, np.ndarray] | None:
        """The compiled twin when the model's one output is the biomarker, else None.

        The kernels hand a compiled controller the biomarker only; with other
        features the controller runs in Python (one compiled call per period).
        """
        if self.model_.outputs != ("biomarker",):
            return None
        return twins.LQR, self.params_, self.state_

    def choose(self, x: np.ndarray) -> np.ndarray:
        """``u_s - K (x - x_s)`` plus the mean amplitude, mA (numpy; :meth:`update` is compiled)."""
        x_s, u_s = self.steady_target(x)
        plant = self.plant_
        return plant.u_offset[0] + u_s - (x[:, : plant.order] - x_s) @ self.gain_
