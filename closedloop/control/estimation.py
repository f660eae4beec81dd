"""The steady-state Kalman filter over an identified model, as an estimator block.

:class:`KalmanFilter` carries the latent state of an identified
:class:`~closedloop.control.sysid.StateSpaceModel` for a batch of
instances, from the features the sensing chain delivers each control period
and the commands issued. The model-based controllers
(:mod:`closedloop.control.lqr`, :mod:`closedloop.control.mpc`) hold one; a
user's controller can too. Its gains come from ``control.dlqe``
(python-control) with the noise covariances identified with the model.

:class:`KalmanFeature` runs the same filter as a sensing feature: a slow
process stepped every control period (the ``kalman:`` block of an
experiment) whose state estimate and predicted output are recorded and
handed to whatever controller runs, as the features ``kalman_x<i>`` and
``kalman_y_pred``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from closedloop.control.sysid import StateSpaceModel, kalman_gains
from closedloop.core.slow import SlowProcess

__all__ = ["KalmanFeature", "KalmanFilter"]


class KalmanFilter:
    """Steady-state Kalman filter for ``n`` instances of an identified model.

    Parameters
    ----------
    model : StateSpaceModel
        The identified model (its offsets are handled here: give commands
        and features in their own units).
    n : int
        Batch size.

    Attributes
    ----------
    x_pred : ndarray, shape (n, nx)
        ``x[k|k-1]``: the state predicted for the coming period.
    x_filt : ndarray, shape (n, nx)
        ``x[k|k]``: the state after the last measurement.

    Notes
    -----
    Per control period, with ``y[k]`` the features just sensed and ``u[k]``
    the command then issued: :meth:`correct` gives
    ``x[k|k] = x[k|k-1] + M (y[k] - C x[k|k-1])``, and :meth:`predict`
    ``x[k+1|k] = A x[k|k] + B u[k]``, the steady-state filter (``M`` the
    filter gain from the Riccati solution of ``dlqe``).
    """

    def __init__(self, model: StateSpaceModel, n: int) -> None:
        self.model = model
        self.n = int(n)
        _, self.gain = kalman_gains(model)
        self.x_pred = np.zeros((self.n, model.order))
        self.x_filt = np.zeros((self.n, model.order))

    def correct(self, y: np.ndarray) -> np.ndarray:
        """Measurement update with the features ``y``, shape ``(n, p)``; returns ``x[k|k]``.

        A NaN feature (a dropped sample) skips the update for that instance.
        """
        m = self.model
        innovation = (y - m.y_offset) - _rows(m.C, self.x_pred)
        bad = ~np.isfinite(innovation).all(axis=1)
        innovation[bad] = 0.0
        self.x_filt = self.x_pred + _rows(self.gain, innovation)
        return self.x_filt

    def predict(self, u: np.ndarray) -> np.ndarray:
        """Time update with the command ``u`` issued, shape ``(n, m)``; returns ``x[k+1|k]``."""
        m = self.model
        self.x_pred = _rows(m.A, self.x_filt) + _rows(m.B, u - m.u_offset)
        return self.x_pred

    def output(self, x: np.ndarray) -> np.ndarray:
        """The features a state means, in their units, shape ``(n, p)``."""
        return _rows(self.model.C, x) + self.model.y_offset


class KalmanFeature(SlowProcess):
    """The Kalman filter of an identified model as features every controller can read.

    Each control period (its step), with ``y`` the period's value of the
    sensed feature the model was identified on and ``u`` the amplitude
    delivered in it: ``x[k|k]`` = :meth:`KalmanFilter.correct` ``(y)``, then
    ``x[k+1|k]`` = :meth:`KalmanFilter.predict` ``(u)``. Its series (and
    features, prefixed ``kalman_``): ``x0`` ... ``x<order-1>``, the filtered
    state ``x[k|k]`` (the model's latent units), and ``y_pred``, the feature
    predicted for the coming period, ``C x[k+1|k] + y_offset``, in the
    feature's units. The controller of period ``k + 1`` sees them.

    Parameters
    ----------
    model : StateSpaceModel or path-like
        The identified model or its ``.npz`` file
        (:meth:`closedloop.control.sysid.StateSpaceModel.save`); one output
        and one input (amplitude, mA).
    feature : str
        The loop readout the model's output is: ``biomarker`` or
        ``feature_<name>`` (a ``sensing.features`` entry).
    period_s : float
        The loop's control period, s; must equal the model's ``period_s``.
    """

    def __init__(
        self, model: StateSpaceModel | str | os.PathLike[str], feature: str, period_s: float
    ) -> None:
        self.name = "kalman"
        self.model = model if isinstance(model, StateSpaceModel) else StateSpaceModel.load(model)
        self.feature = feature
        self.period_s = float(period_s)
        m = self.model
        if m.C.shape[0] != 1 or m.B.shape[1] != 1:
            raise ValueError(
                f"model: one output and one input (amplitude) needed, got {m.C.shape[0]} "
                f"output(s) and {m.B.shape[1]} input(s)"
            )
        if not np.isclose(m.period_s, self.period_s, rtol=1e-9, atol=0.0):
            raise ValueError(
                f"model: identified at a period of {m.period_s:g} s, the loop's control "
                f"period is {self.period_s:g} s"
            )

    def reset(self, n: int, seeds: Sequence[np.random.SeedSequence]) -> None:
        self.filter_ = KalmanFilter(self.model, n)
        self.y_pred_ = self.filter_.output(self.filter_.x_pred)[:, 0]

    def advance(self, t_s: float, dt_s: float, readout: Mapping[str, np.ndarray]) -> None:
        y = np.asarray(readout[self.feature], dtype=float)[:, None]
        u = np.asarray(readout["amplitude"], dtype=float)[:, None]
        self.filter_.correct(y)
        self.y_pred_ = self.filter_.output(self.filter_.predict(u))[:, 0]

    def series(self) -> dict[str, tuple[str, str]]:
        out = {
            f"x{i}": ("1", f"filtered state x[k|k], component {i} (identified model units)")
            for i in range(self.model.order)
        }
        out["y_pred"] = ("feature units", f"{self.feature} predicted for the coming period")
        return out

    def values(self) -> dict[str, np.ndarray]:
        out = {f"x{i}": self.filter_.x_filt[:, i].copy() for i in range(self.model.order)}
        out["y_pred"] = self.y_pred_.copy()
        return out


def _rows(matrix: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``x @ matrix.T`` row by row, so an instance's result does not depend on the batch.

    A BLAS product of a batch may round differently from the same row alone
    (blocked kernels); einsum's plain loops sum each row in the same order.
    """
    return np.einsum("ij,nj->ni", matrix, x)
