"""The steady-state Kalman filter over an identified model, as an estimator block.

:class:`KalmanFilter` carries the latent state of an identified
:class:`~closedloop.control.sysid.StateSpaceModel` for a batch of
instances, from the features the sensing chain delivers each control period
and the commands issued. The model-based controllers
(:mod:`closedloop.control.lqr`, :mod:`closedloop.control.mpc`) hold one; a
user's controller can too. Its gains come from ``control.dlqe``
(python-control) with the noise covariances identified with the model.
"""

from __future__ import annotations

import numpy as np

from closedloop.control.sysid import StateSpaceModel, kalman_gains

__all__ = ["KalmanFilter"]


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


def _rows(matrix: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``x @ matrix.T`` row by row, so an instance's result does not depend on the batch.

    A BLAS product of a batch may round differently from the same row alone
    (blocked kernels); einsum's plain loops sum each row in the same order.
    """
    return np.einsum("ij,nj->ni", matrix, x)
