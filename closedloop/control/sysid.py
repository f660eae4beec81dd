"""Linear state-space identification by a subspace method, with held-out validation.

The model, in deviations from the training data's mean input and output::

    x[k+1] = A x[k] + B u[k] + w[k]        (w: process noise, covariance Q)
    y[k]   = C x[k] + v[k]                 (v: measurement noise, covariance R)

``u[k]`` is the command issued at the end of period ``k`` and ``y[k]`` the
features sensed in it, so ``u[k]`` cannot act on ``y[k]``: there is no
feedthrough term (D = 0), by causality of the loop.

:func:`identify` is a subspace method in the N4SID family (Van Overschee
and De Moor 1994): the oblique projection of future outputs along future
inputs onto past inputs and outputs, its SVD (whose singular values guide
the choice of latent dimension), the state sequence, then A, B, C and the
noise covariances by least squares. Written here rather than taken from
``nfoursid`` because that package works on one pandas DataFrame at a time,
while identification data here come as trials over the batch axis (one per
instance) that must not be joined end to end; the method is about a
hundred lines of numpy. :func:`explained_variance` validates on held-out
data by k-step-ahead prediction through the steady-state Kalman predictor;
:func:`select_order` picks the latent dimension by it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from closedloop.control.collect import IdData

__all__ = [
    "StateSpaceModel",
    "explained_variance",
    "identify",
    "identify_orders",
    "kalman_gains",
    "select_order",
    "with_output_disturbance",
]


@dataclass(frozen=True)
class StateSpaceModel:
    """An identified discrete-time linear model of a stimulated plant.

    Attributes
    ----------
    A, B, C : ndarray
        ``(nx, nx)``, ``(nx, m)``, ``(p, nx)``.
    Q, R : ndarray
        Process ``(nx, nx)`` and measurement ``(p, p)`` noise covariances.
    u_offset, y_offset : ndarray
        Mean input ``(m,)`` (command units) and output ``(p,)`` (feature
        units) the model's deviations are taken from.
    period_s : float
        Sample period, s (the control period).
    inputs, outputs : tuple of str
        Command keys and feature names.
    singular_values : ndarray
        Of the projection (the order choice).
    """

    A: np.ndarray
    B: np.ndarray
    C: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    u_offset: np.ndarray
    y_offset: np.ndarray
    period_s: float
    inputs: tuple[str, ...] = ("amplitude_ma",)
    outputs: tuple[str, ...] = ("biomarker",)
    singular_values: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def order(self) -> int:
        """Latent dimension."""
        return self.A.shape[0]

    def poles(self) -> np.ndarray:
        """Eigenvalues of A (discrete time), sorted by decreasing magnitude."""
        eig = np.linalg.eigvals(self.A)
        return eig[np.argsort(-np.abs(eig))]

    def continuous_poles_per_s(self) -> np.ndarray:
        """``log(eig(A)) / period_s``: the poles in 1/s."""
        return np.log(self.poles().astype(complex)) / self.period_s

    def dc_gain(self) -> np.ndarray:
        """Steady-state output change per unit input, ``C (I - A)^-1 B``, shape ``(p, m)``."""
        return self.C @ np.linalg.solve(np.eye(self.order) - self.A, self.B)

    def save(self, path: str | Path) -> None:
        """Write the model to an ``.npz`` file (read back with :meth:`load`)."""
        np.savez(
            path,
            A=self.A,
            B=self.B,
            C=self.C,
            Q=self.Q,
            R=self.R,
            u_offset=self.u_offset,
            y_offset=self.y_offset,
            period_s=self.period_s,
            inputs=np.array(self.inputs),
            outputs=np.array(self.outputs),
            singular_values=self.singular_values,
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> StateSpaceModel:
        """Read a model written by :meth:`save`."""
        with np.load(path) as f:
            return cls(
                **{k: f[k] for k in ("A", "B", "C", "Q", "R", "u_offset", "y_offset")},
                period_s=float(f["period_s"]),
                inputs=tuple(str(s) for s in f["inputs"]),
                outputs=tuple(str(s) for s in f["outputs"]),
                singular_values=f["singular_values"],
            )


def _hankel(z: np.ndarray, first: int, rows: int, cols: int) -> np.ndarray:
    """Block Hankel matrix: block row ``r`` holds ``z[first + r : first + r + cols]``."""
    return np.vstack([z[first + r : first + r + cols].T for r in range(rows)])


def identify(data: IdData, order: int, horizon: int = 10) -> StateSpaceModel:
    """Identify a linear state-space model of latent dimension ``order``.

    Parameters
    ----------
    data : IdData
        Training data (trials are never joined end to end).
    order : int
        Latent dimension ``nx``, at most ``horizon * p``.
    horizon : int
        Past and future block rows of the Hankel matrices, periods; longer
        than the slowest response of interest (in periods) and above ``order / p``.

    Returns
    -------
    StateSpaceModel
    """
    return identify_orders(data, (order,), horizon)[order]


def identify_orders(
    data: IdData, orders: Sequence[int], horizon: int = 10
) -> dict[int, StateSpaceModel]:
    """:func:`identify` for several orders, the projection and its SVD computed once."""
    trials, t_len, m = data.u.shape
    p = data.y.shape[2]
    i = int(horizon)
    for order in orders:
        if not 1 <= order <= i * p:
            raise ValueError(
                f"order must lie in [1, horizon * outputs] = [1, {i * p}], got {order}"
            )
    cols = t_len - 2 * i + 1
    if cols < 2 * i * (m + p):
        raise ValueError(
            f"{t_len} periods per trial are too few for horizon {i}: give at least "
            f"{2 * i * (m + p) + 2 * i - 1}"
        )
    u_off = data.u.reshape(-1, m).mean(axis=0)
    y_off = data.y.reshape(-1, p).mean(axis=0)
    past, future = [], []
    for r in range(trials):
        u, y = data.u[r] - u_off, data.y[r] - y_off
        past.append(np.vstack([_hankel(u, 0, i, cols), _hankel(y, 0, i, cols)]))
        future.append((_hankel(u, i, i, cols), _hankel(y, i, i, cols)))
    wp = np.hstack(past)
    uf = np.hstack([f[0] for f in future])
    yf = np.hstack([f[1] for f in future])
    # Oblique projection of Yf along Uf onto Wp, by least squares on [Wp; Uf].
    regressors = np.vstack([wp, uf])
    theta = np.linalg.lstsq(regressors.T, yf.T, rcond=None)[0].T
    projection = theta[:, : wp.shape[0]] @ wp
    left, sv, _ = np.linalg.svd(projection, full_matrices=False)
    u_now = np.hstack([(data.u[r, i : i + cols - 1] - u_off).T for r in range(trials)])
    y_all = np.hstack([(data.y[r, i : i + cols] - y_off).T for r in range(trials)])
    models = {}
    for order in orders:
        gamma = left[:, :order] * np.sqrt(sv[:order])
        states = np.linalg.pinv(gamma) @ projection  # (nx, trials * cols), trial by trial
        x0 = np.hstack([states[:, r * cols : (r + 1) * cols - 1] for r in range(trials)])
        x1 = np.hstack([states[:, r * cols + 1 : (r + 1) * cols] for r in range(trials)])
        ab = np.linalg.lstsq(np.vstack([x0, u_now]).T, x1.T, rcond=None)[0].T
        a, b = ab[:, :order], ab[:, order:]
        c = np.linalg.lstsq(states.T, y_all.T, rcond=None)[0].T
        w = x1 - a @ x0 - b @ u_now
        v = y_all - c @ states
        q = np.atleast_2d(np.cov(w)) + 1e-12 * np.eye(order)
        r_cov = np.atleast_2d(np.cov(v)) + 1e-12 * np.eye(p)
        models[order] = StateSpaceModel(
            a, b, c, q, r_cov, u_off, y_off, data.period_s, data.inputs, data.outputs, sv
        )
    return models


def with_output_disturbance(
    model: StateSpaceModel, relative_variance: float = 0.01
) -> StateSpaceModel:
    """The model with a constant disturbance on each output, as extra states.

    ``d[k+1] = d[k] + w_d``, ``y = C x + d + v``: the standard device of
    offset-free model-predictive control (Pannocchia & Rawlings 2003). The
    random walk's variance is ``relative_variance`` times the measurement
    noise's (a choice made here: the offset is learnt over about ten periods,
    slowly against the noise).
    """
    nx, p = model.order, model.C.shape[0]
    a = np.block([[model.A, np.zeros((nx, p))], [np.zeros((p, nx)), np.eye(p)]])
    b = np.vstack([model.B, np.zeros((p, model.B.shape[1]))])
    c = np.hstack([model.C, np.eye(p)])
    q = np.block(
        [
            [model.Q, np.zeros((nx, p))],
            [np.zeros((p, nx)), relative_variance * np.diag(np.diag(model.R))],
        ]
    )
    return StateSpaceModel(
        a,
        b,
        c,
        q,
        model.R,
        model.u_offset,
        model.y_offset,
        model.period_s,
        model.inputs,
        model.outputs,
        model.singular_values,
    )


def kalman_gains(model: StateSpaceModel) -> tuple[np.ndarray, np.ndarray]:
    """Steady-state Kalman gains through ``control.dlqe``.

    Returns
    -------
    predictor : ndarray, shape (nx, p)
        ``L`` of ``x[k+1|k] = A x[k|k-1] + B u[k] + L (y[k] - C x[k|k-1])``.
    filter : ndarray, shape (nx, p)
        ``M`` of ``x[k|k] = x[k|k-1] + M (y[k] - C x[k|k-1])``.
    """
    import control  # the optional dependency (the 'control' extra)

    nx = model.order
    gain, prior, _ = control.dlqe(model.A, np.eye(nx), model.C, model.Q, model.R)
    innovation = model.C @ prior @ model.C.T + model.R
    return np.asarray(gain), prior @ model.C.T @ np.linalg.inv(innovation)


def explained_variance(
    model: StateSpaceModel, data: IdData, horizons: Sequence[int] = (1, 5, 10)
) -> dict[int, np.ndarray]:
    """Explained variance of k-step-ahead predictions on (held-out) data.

    For each period ``k`` the steady-state Kalman predictor's state
    ``x[k|k-1]`` (measurements up to ``k - 1``) is propagated ``h - 1``
    periods with the known inputs; ``1 - sum((y - yhat)^2) / sum((y - mean)^2)``
    per output, over all trials, the first ``max(horizons) + 20`` periods of
    each (the predictor's transient) left out.

    Returns
    -------
    dict of int to ndarray
        Horizon (periods) to explained variance per output, shape ``(p,)``.
    """
    gain, _ = kalman_gains(model)
    a, b, c = model.A, model.B, model.C
    skip = max(horizons) + 20
    errors: dict[int, list[np.ndarray]] = {h: [] for h in horizons}
    centred = []
    for r in range(data.u.shape[0]):
        u = data.u[r] - model.u_offset
        y = data.y[r] - model.y_offset
        t_len = len(u)
        x_pred = np.zeros((t_len, model.order))
        x = np.zeros(model.order)
        for k in range(t_len):
            x_pred[k] = x
            x = a @ x + b @ u[k] + gain @ (y[k] - c @ x)
        for h in horizons:
            x = x_pred[: t_len - h + 1].copy()
            for j in range(h - 1):
                x = x @ a.T + u[j : t_len - h + 1 + j] @ b.T
            y_hat = x @ c.T
            errors[h].append((y[h - 1 :] - y_hat)[skip:])
        centred.append(y[skip:])
    total = np.concatenate(centred)
    variance = ((total - total.mean(axis=0)) ** 2).sum(axis=0)
    return {h: 1.0 - (np.concatenate(errors[h]) ** 2).sum(axis=0) / variance for h in horizons}


def select_order(
    train: IdData,
    valid: IdData,
    orders: Sequence[int],
    *,
    horizon: int = 10,
    prediction_horizon: int = 1,
    tolerance: float = 0.1,
) -> tuple[StateSpaceModel, dict[int, float]]:
    """The smallest order that predicts held-out data about as well as the best.

    Parameters
    ----------
    train, valid : IdData
        Identification and held-out data.
    orders : sequence of int
        Candidate latent dimensions.
    horizon : int
        Hankel horizon of :func:`identify`.
    prediction_horizon : int
        Periods ahead the candidates are compared at.
    tolerance : float
        Relative excess of unexplained variance accepted for a smaller model:
        an order is good enough when ``1 - ev <= (1 + tolerance) * (1 - best ev)``.

    Returns
    -------
    model : StateSpaceModel
        The chosen model.
    scores : dict of int to float
        Held-out explained variance (mean over outputs) of each order.
    """
    models, scores = identify_orders(train, orders, horizon), {}
    for order in orders:
        ev = explained_variance(models[order], valid, (prediction_horizon,))
        scores[order] = float(np.mean(ev[prediction_horizon]))
    least = 1.0 - max(scores.values())
    chosen = min(o for o, s in scores.items() if 1.0 - s <= (1.0 + tolerance) * least)
    return models[chosen], scores
