"""Kuramoto ensemble of phase (or Stuart-Landau) oscillators with stimulation.

Each instance is a population of ``N`` oscillators (``n_oscillators``) with
natural frequencies drawn from a Lorentzian (Cauchy) distribution, coupled
all to all (Kuramoto 1975; Strogatz 2000)::

    dtheta_j/dt = omega_j + (K/N) sum_k A_jk sin(theta_k - theta_j)
                  + g_stim * I(t) * Z(theta_j) + sigma * xi_j(t)

    Z(theta) = -sin(theta - prc_shift_rad)

``omega_j = 2*pi*f_j`` rad/s with ``f_j`` drawn from a Cauchy distribution of
centre ``f0_hz`` and half-width at half-maximum ``gamma_hz`` (both in Hz;
the angular half-width is ``2*pi*gamma_hz`` rad/s). ``K`` is in rad/s.
``A`` is all ones unless a coupling matrix is given (Python API only, see
:class:`KuramotoEnsemble`). ``xi_j`` is unit white noise, ``sigma`` in
rad/sqrt(s) (Euler-Maruyama).

Synchrony is measured by the complex order parameter
``r * exp(i*psi) = (1/N) sum_k exp(i*theta_k)``. For Lorentzian frequencies
and ``N -> infinity`` the incoherent state ``r = 0`` loses stability at
``K_c = 2 * (2*pi*gamma_hz)`` and the locked state has
``r = sqrt(1 - K_c/K)`` (Kuramoto 1975; exact on the Ott-Antonsen manifold,
Ott & Antonsen 2008). With finite ``N``, ``r`` fluctuates around that value,
and below ``K_c`` it is of order ``1/sqrt(N)``.

Stuart-Landau mode
------------------
With ``stuart_landau = 1`` each oscillator has an amplitude as well,
``z_j = x_j + i*y_j`` (dimensionless, 1 on the limit cycle)::

    dz_j/dt = (lambda_sl*(1 - |z_j|^2) + i*omega_j) z_j
              + (K/N) sum_k A_jk (z_k - z_j)
              + g_stim * I(t) * exp(i*prc_shift_rad) + sigma * (xi_j + i*eta_j)

Its phase obeys the Kuramoto equation above when ``|z_j| = 1`` (the limit
``lambda_sl -> infinity``), with the same phase response ``-sin(theta -
prc_shift_rad) / |z_j|``; at finite ``lambda_sl`` stimulation and coupling
also move amplitudes. The natural rotation is applied exactly each step
(``exp(i*omega_j*dt)``), the rest by the Euler method.

Stimulation
-----------
``I(t)`` is the device's average cathodic current per integration step (mA).
Through the phase response curve (PRC) ``Z`` every oscillator's phase moves
by ``g_stim * Q * Z(theta_j)`` rad for a pulse of cathodic charge ``Q`` (mC):
``g_stim`` is in rad/s per mA (= rad per mC). ``Z(theta) = -sin(theta)`` is
the type-II PRC of an oscillator near a Hopf bifurcation (Hoppensteadt &
Izhikevich 1997; Brown et al. 2004); ``prc_shift_rad`` shifts it. A pulse at
mean-field phase ``psi`` changes the order parameter by
``dr = (eps/2) (1 - r^2) cos(psi - prc_shift_rad)`` to first order in the
kick ``eps = g_stim * Q`` (on the Ott-Antonsen manifold): pulses at the peak
of the mean field (``psi = 0``) synchronise, pulses at its trough
(``psi = pi``) desynchronise. This is the mechanism phase-locked
stimulation exploits (Tass 2003; Cagnan et al. 2017).

LFP proxy
---------
``lfp`` is the mean field ``x(t) = (1/N) sum_k cos(theta_k) = r cos(psi)``
(Stuart-Landau: ``(1/N) sum_k Re z_k``), dimensionless. Its analytic
amplitude is ``r`` and its band power ``<r^2>/2``, so the metrics' band power
with and without stimulation compares synchrony; :meth:`order_parameter`
gives the exact ``r`` of the current state and :func:`order_parameter_from_lfp`
estimates ``r(t)`` from a recorded mean field (offline).

Parameter provenance
--------------------
The model and its analytic results are Kuramoto's (1975) and Strogatz's
(2000). The numbers are set here, not taken from a fit to data: ``f0_hz =
20`` Hz puts the oscillation in the beta band; ``gamma_hz = 1`` Hz gives
``K_c = 4*pi = 12.57`` rad/s; the ``synchronous`` regime (default) uses
``K = 25`` rad/s, about ``2 K_c`` (``r = 0.70``), a stand-in for pathological
synchrony, the ``incoherent`` one ``K = 6`` rad/s (``r ~ 1/sqrt(N)``).
``g_stim = 4000`` rad/s per mA makes a 2 mA, 60 us pulse (120 nC) kick
phases by up to 0.48 rad, enough for phase-locked pulses once a cycle to
move ``r`` by tens of percent, as phase-locked DBS moved tremor amplitude
in Cagnan et al. (2017). ``lambda_sl = 100`` 1/s makes amplitudes relax in
10 ms.

References
----------
Kuramoto Y (1975) Self-entrainment of a population of coupled non-linear
oscillators. In: International Symposium on Mathematical Problems in
Theoretical Physics, Lecture Notes in Physics 39:420-422. Springer.
Strogatz SH (2000) From Kuramoto to Crawford: exploring the onset of
synchronization in populations of coupled oscillators. Physica D 143:1-20.
Ott E, Antonsen TM (2008) Low dimensional behavior of large systems of
globally coupled oscillators. Chaos 18:037113.
Hoppensteadt FC, Izhikevich EM (1997) Weakly Connected Neural Networks.
Springer.
Brown E, Moehlis J, Holmes P (2004) On the phase reduction and response
dynamics of neural oscillator populations. Neural Comput 16:673-715.
Tass PA (2003) A model of desynchronizing deep brain stimulation with a
demand-controlled coordinated reset of neural subpopulations. Biol Cybern
89:81-88.
Cagnan H et al. (2017) Stimulating at the right time: phase-specific deep
brain stimulation. Brain 140:132-145.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from closedloop.core.jit import njit, prange
from closedloop.core.model import NumbaModel, Parameter
from closedloop.core.period import (
    close_period,
    close_plain_period,
    plain_state,
)
from closedloop.core.period_packed import next_period
from closedloop.core.random import normal, uniform
from closedloop.device import device_fill, pulse_fill, queue_push

__all__ = ["KuramotoEnsemble", "order_parameter_from_lfp"]

_KUR = "Kuramoto 1975; Strogatz 2000"
_HERE = "closedloop (chosen here, see module notes)"
_TWO_PI = 2.0 * math.pi

#: Largest ``rate * dt`` accepted for the Euler terms (coupling, amplitude relaxation).
_MAX_RATE_DT = 0.5


class KuramotoEnsemble(NumbaModel):
    """Kuramoto (or Stuart-Landau) oscillator ensemble with a PRC stimulation input.

    See the module docstring for the equations, units and parameter
    provenance.

    Parameters
    ----------
    dt_s : float
        Integration step, s.
    n : int
        Number of independent instances (ensembles).
    params : mapping, optional
        Parameter overrides (:attr:`parameters`): a scalar for all instances
        or one value per instance. ``n_oscillators`` may differ between
        instances.
    regime : {"synchronous", "incoherent", "stuart_landau"}, optional
        Named parameter set; default ``"synchronous"``.
    coupling_matrix : array_like, optional
        Coupling weights ``A_jk`` (dimensionless; row ``j`` receives from
        column ``k``), shape ``(N, N)`` shared by every instance or
        ``(n, N, N)``, with ``N`` the (common) ``n_oscillators``. Default: all
        to all (``A_jk = 1``), computed through the mean field in ``O(N)``
        per step instead of ``O(N^2)``. Python API only: experiment files
        take scalar or per-instance parameters.

    Raises
    ------
    ValueError
        Naming the parameter, for values out of range: ``n_oscillators`` not
        a whole number, ``stuart_landau`` not 0 or 1, ``K * dt_s`` or
        ``lambda_sl * dt_s`` above 0.5 (Euler step too coarse), or a
        coupling matrix of the wrong shape or with non-finite entries.

    Notes
    -----
    State (per instance, the first ``n_oscillators`` entries used): ``z``,
    shape ``(n, max N, 2)``, each oscillator as a point of the plane:
    ``(cos theta_j, sin theta_j)`` for phase oscillators (turned each step
    by the phase increment, so no phase ever grows large; :meth:`phases`
    returns ``theta``), ``(x_j, y_j)`` for Stuart-Landau ones; ``omega``,
    the natural angular frequencies (rad/s), drawn at :meth:`reset` from the
    instance's own random stream, with uniformly random initial phases.
    """

    name = "kuramoto"
    state_variables = {
        "z": "1",
        "omega": "rad/s",
    }
    signal_name = "lfp"
    signal_units = "1"
    signal_description = "mean field r*cos(psi) of the oscillator ensemble, the LFP proxy"
    stimulation_units = "mA"
    stimulation_description = (
        "average cathodic current per integration step, mA; moves every phase by "
        "g_stim * I * dt * Z(theta) rad through the PRC Z(theta) = -sin(theta - prc_shift_rad)"
    )
    parameters = {
        "n_oscillators": Parameter(
            200.0, "1", "oscillators per instance N (whole number)", _HERE, minimum=1
        ),
        "f0_hz": Parameter(
            20.0, "Hz", "centre of the Lorentzian natural-frequency distribution", _HERE, minimum=0
        ),
        "gamma_hz": Parameter(
            1.0,
            "Hz",
            "half-width at half-maximum of the Lorentzian (angular: 2*pi*gamma_hz rad/s); "
            "critical coupling K_c = 4*pi*gamma_hz rad/s",
            _HERE,
            positive=True,
        ),
        "K": Parameter(
            25.0, "rad/s", "global coupling strength", _KUR + "; value: " + _HERE, minimum=0
        ),
        "sigma": Parameter(
            0.0,
            "rad/sqrt(s)",
            "phase noise intensity (Stuart-Landau: per Cartesian component, 1/sqrt(s))",
            _HERE,
            minimum=0,
        ),
        "g_stim": Parameter(
            4000.0,
            "rad/(s*mA)",
            "stimulation gain: phase velocity per mA of mean cathodic current (rad per mC)",
            _HERE,
            minimum=0,
        ),
        "prc_shift_rad": Parameter(
            0.0,
            "rad",
            "shift beta of the phase response curve Z(theta) = -sin(theta - beta)",
            _HERE,
            minimum=-math.pi,
            maximum=math.pi,
        ),
        "stuart_landau": Parameter(
            0.0,
            "1",
            "0: phase oscillators; 1: Stuart-Landau oscillators",
            _HERE,
            minimum=0,
            maximum=1,
        ),
        "lambda_sl": Parameter(
            100.0, "1/s", "Stuart-Landau amplitude relaxation rate", _HERE, positive=True
        ),
    }
    regimes = {
        # K about 2 K_c: r = sqrt(1 - K_c/K) = 0.70, pathological synchrony.
        "synchronous": {"K": 25.0},
        # K below K_c = 12.57 rad/s: incoherent, r of order 1/sqrt(N).
        "incoherent": {"K": 6.0},
        "stuart_landau": {"K": 25.0, "stuart_landau": 1.0},
    }
    default_regime = "synchronous"
    references = (
        "Kuramoto Y (1975) Lecture Notes in Physics 39:420-422",
        "Strogatz SH (2000) Physica D 143:1-20",
        "Ott E, Antonsen TM (2008) Chaos 18:037113",
        "Cagnan H et al. (2017) Brain 140:132-145",
    )

    def __init__(
        self,
        dt_s: float = 1e-4,
        n: int = 1,
        params: Mapping[str, float | Sequence[float] | np.ndarray] | None = None,
        regime: str | None = None,
        coupling_matrix: ArrayLike | None = None,
    ) -> None:
        super().__init__(dt_s=dt_s, n=n, params=params, regime=regime)
        values = self.param_values
        n_osc = values["n_oscillators"]
        if np.any(n_osc != np.round(n_osc)):
            raise ValueError(
                f"model parameter 'n_oscillators' must be a whole number, got {n_osc.tolist()}"
            )
        mode = values["stuart_landau"]
        if np.any((mode != 0.0) & (mode != 1.0)):
            raise ValueError(
                f"model parameter 'stuart_landau' must be 0 (phase oscillators) or 1 "
                f"(Stuart-Landau), got {mode.tolist()}"
            )
        for key, units in (("K", "rad/s"), ("lambda_sl", "1/s")):
            worst = float(np.max(values[key])) * self.dt_s
            if key == "lambda_sl" and not np.any(mode == 1.0):
                continue
            if worst > _MAX_RATE_DT:
                raise ValueError(
                    f"model parameter {key!r} ({float(np.max(values[key])):g} {units}) is too "
                    f"large for dt = {self.dt_s:g} s: {key} * dt must be at most {_MAX_RATE_DT} "
                    "for the Euler step; lower it or dt_s"
                )
        self.n_max = int(n_osc.max())
        self.coupling_matrix = self._check_matrix(coupling_matrix)

    def like(
        self,
        n: int | None = None,
        params: Mapping[str, float | Sequence[float] | np.ndarray] | None = None,
    ) -> KuramotoEnsemble:
        """A new ensemble of the same settings, coupling matrix included."""
        n = self.n if n is None else n
        matrix: np.ndarray | None = self.coupling_matrix
        if self.coupling_matrix.shape[0] == 0:
            matrix = None
        elif self.coupling_matrix.shape[0] != 1 and n != self.n:
            raise ValueError("a per-instance coupling_matrix cannot be given to another batch size")
        return type(self)(
            dt_s=self.dt_s,
            n=n,
            params=self.param_values if params is None else params,
            regime=None,
            coupling_matrix=matrix,
        )

    def _check_matrix(self, matrix: ArrayLike | None) -> np.ndarray:
        """The coupling matrix as an ``(m, N, N)`` array (``m`` 1 or ``n``; empty if none)."""
        if matrix is None:
            return np.zeros((0, 0, 0))
        a = np.asarray(matrix, dtype=np.float64)
        n_osc = self.param_values["n_oscillators"]
        if np.any(n_osc != n_osc[0]):
            raise ValueError(
                "coupling_matrix needs the same n_oscillators in every instance, got "
                f"{n_osc.tolist()}"
            )
        big_n = int(n_osc[0])
        if a.shape == (big_n, big_n):
            a = a[None]
        if a.shape not in ((1, big_n, big_n), (self.n, big_n, big_n)):
            raise ValueError(
                f"coupling_matrix has shape {np.shape(matrix)}; expected (N, N) or (n, N, N) "
                f"with N = n_oscillators = {big_n} and n = {self.n}"
            )
        if not np.all(np.isfinite(a)):
            raise ValueError("coupling_matrix must be finite")
        return np.ascontiguousarray(a)

    def _initial_state(self) -> dict[str, np.ndarray]:
        theta = np.zeros((self.n, self.n_max))
        omega = np.zeros((self.n, self.n_max))
        _draw_ensembles(
            self.rng_,
            self.param_values["n_oscillators"].astype(np.int64),
            self.param_values["f0_hz"],
            self.param_values["gamma_hz"],
            theta,
            omega,
        )
        # Natural rotation per step as (cos, sin) of omega*dt reduced modulo
        # 2*pi: exact for any frequency, Cauchy tails included.
        omega_dt = np.remainder(omega * self.dt_s, _TWO_PI)
        rotation = np.stack([np.cos(omega_dt), np.sin(omega_dt)], axis=2)
        z = np.stack([np.cos(theta), np.sin(theta)], axis=2)
        return {
            "z": np.ascontiguousarray(z),
            "omega": omega,
            "rotation": np.ascontiguousarray(rotation),
        }

    def kernel_state(self) -> tuple:
        return (
            self.state["z"],
            self.state["rotation"],
            self.coupling_matrix,
            self.record,
            self.rng_,
        )

    def phases(self) -> np.ndarray:
        """Phases of the oscillators, rad in ``(-pi, pi]``, shape ``(n, max N)``.

        Entries past an instance's ``n_oscillators`` are meaningless.
        """
        if not self.state:
            raise RuntimeError("call reset() before phases()")
        return np.arctan2(self.state["z"][..., 1], self.state["z"][..., 0])

    def order_parameter(self) -> tuple[np.ndarray, np.ndarray]:
        """Kuramoto order parameter of the current state, per instance.

        Returns
        -------
        r : ndarray, shape (n,)
            ``|(1/N) sum_k exp(i theta_k)|`` (Stuart-Landau: ``|(1/N) sum_k z_k|``),
            dimensionless, in ``[0, 1]`` for phase oscillators.
        psi : ndarray, shape (n,)
            Mean-field phase, rad.
        """
        if not self.state:
            raise RuntimeError("call reset() before order_parameter()")
        out_r = np.empty(self.n)
        out_psi = np.empty(self.n)
        for i in range(self.n):
            zi = self.state["z"][i, : int(self.param_values["n_oscillators"][i])]
            mean = np.mean(zi[:, 0] + 1j * zi[:, 1])
            out_r[i] = abs(mean)
            out_psi[i] = np.angle(mean)
        return out_r, out_psi


def order_parameter_from_lfp(
    lfp: ArrayLike, rate_hz: float, band_hz: tuple[float, float] = (10.0, 30.0)
) -> np.ndarray:
    """Estimate ``r(t)`` from a recorded mean field ``x = r cos(psi)`` (offline).

    The analytic amplitude of the band-passed mean field (zero-phase
    Butterworth, order 2, then :func:`scipy.signal.hilbert`). This looks at
    the whole record, future included: it is for analysis, not for a
    controller.

    Parameters
    ----------
    lfp : array_like, shape (..., T)
        Mean field (model signal ``lfp``), dimensionless.
    rate_hz : float
        Its sampling rate, Hz.
    band_hz : tuple of float
        Band holding the ensemble's frequencies, Hz.

    Returns
    -------
    ndarray, shape (..., T)
        Order parameter estimate, dimensionless.
    """
    from scipy import signal as _signal  # on use: it imports scipy.stats (~0.7 s)

    x = np.asarray(lfp, dtype=np.float64)
    sos = _signal.butter(2, band_hz, "bandpass", fs=rate_hz, output="sos")
    y = _signal.sosfiltfilt(sos, x, axis=-1)
    return np.abs(_signal.hilbert(y, axis=-1))


@njit(cache=True)
def _draw_ensembles(rng, n_osc, f0_hz, gamma_hz, theta, omega):
    """Natural frequencies (Cauchy, rad/s) and uniform initial phases, per instance stream."""
    for i in range(theta.shape[0]):
        for j in range(n_osc[i]):
            u = uniform(rng, i)  # (0, 1]: tan stays finite
            omega[i, j] = _TWO_PI * (f0_hz[i] + gamma_hz[i] * math.tan(math.pi * (u - 0.5)))
        for j in range(n_osc[i]):
            theta[i, j] = _TWO_PI * uniform(rng, i) - math.pi


@njit(cache=True, inline="always")
def _rotation(d):
    """cos and sin of a small angle by their Taylor series (error < 1e-15 below 0.05 rad)."""
    if abs(d) < 0.05:
        d2 = d * d
        c = 1.0 - d2 * (0.5 - d2 * (1.0 / 24.0 - d2 * (1.0 / 720.0)))
        s = d * (1.0 - d2 * (1.0 / 6.0 - d2 * (1.0 / 120.0 - d2 * (1.0 / 5040.0))))
        return c, s
    return math.cos(d), math.sin(d)


@njit(cache=True)
def advance_one(i, n_steps, step0, dt, model, drive, out):
    z, rotation, coupling, p, rng = model
    rec = p[i]
    n_osc = int(rec.n_oscillators)
    inv_n = 1.0 / n_osc
    k_dt = rec.K * dt
    g_dt = rec.g_stim * dt
    cos_b = math.cos(rec.prc_shift_rad)
    sin_b = math.sin(rec.prc_shift_rad)
    noise = rec.sigma * math.sqrt(dt)
    landau = rec.stuart_landau != 0.0
    lam_dt = rec.lambda_sl * dt
    has_matrix = coupling.shape[0] > 0
    m = np.int64(i) if coupling.shape[0] > 1 else np.int64(0)
    # The field each oscillator feels: the mean field, or its row of the matrix.
    field = np.empty((n_osc if has_matrix else 0, 2))
    degree = np.ones(n_osc)
    if has_matrix:
        for j in range(n_osc):
            acc = 0.0
            for k in range(n_osc):
                acc += coupling[m, j, k]
            degree[j] = acc * inv_n
    sum_x = 0.0
    sum_y = 0.0
    for j in range(n_osc):
        sum_x += z[i, j, 0]
        sum_y += z[i, j, 1]
    for step in range(n_steps):
        stim = g_dt * drive[i, step]
        mean_x = sum_x * inv_n
        mean_y = sum_y * inv_n
        if has_matrix:
            for j in range(n_osc):
                fx = 0.0
                fy = 0.0
                for k in range(n_osc):
                    a = coupling[m, j, k]
                    fx += a * z[i, k, 0]
                    fy += a * z[i, k, 1]
                field[j, 0] = fx * inv_n
                field[j, 1] = fy * inv_n
        sum_x = 0.0
        sum_y = 0.0
        for j in range(n_osc):
            ux = z[i, j, 0]
            uy = z[i, j, 1]
            if has_matrix:
                fx = field[j, 0]
                fy = field[j, 1]
            else:
                fx = mean_x
                fy = mean_y
            cr = rotation[i, j, 0]
            sr = rotation[i, j, 1]
            if landau:
                growth = lam_dt * (1.0 - (ux * ux + uy * uy))
                vx = ux + growth * ux + k_dt * (fx - degree[j] * ux) + stim * cos_b
                vy = uy + growth * uy + k_dt * (fy - degree[j] * uy) + stim * sin_b
                if noise > 0.0:
                    vx += noise * normal(rng, i)
                    vy += noise * normal(rng, i)
            else:
                # Phase oscillator as the unit vector (cos, sin) of its phase,
                # turned each step by the Euler increment of the phase:
                # sum_k sin(theta_k - theta_j) / N = fy cos(theta_j) - fx sin(theta_j),
                # Z(theta) = -sin(theta - beta) = cos(theta) sin(beta) - sin(theta) cos(beta).
                d = k_dt * (fy * ux - fx * uy) + stim * (ux * sin_b - uy * cos_b)
                if noise > 0.0:
                    d += noise * normal(rng, i)
                cd, sd = _rotation(d)
                vx = ux * cd - uy * sd
                vy = ux * sd + uy * cd
            # Natural rotation exp(i omega_j dt), exact for any frequency.
            ux = cr * vx - sr * vy
            uy = sr * vx + cr * vy
            if not landau:
                # One Newton step back to |u| = 1: rounding never accumulates.
                scale = 1.5 - 0.5 * (ux * ux + uy * uy)
                ux *= scale
                uy *= scale
            z[i, j, 0] = ux
            z[i, j, 1] = uy
            sum_x += ux
            sum_y += uy
        out[i, step] = sum_x * inv_n


# Batch kernels: closedloop.core.batch_kernels.PATTERN, verbatim (tests check it).


@njit(cache=True)
def advance_serial(n_steps, step0, dt, model, drive, out):
    for i in range(out.shape[0]):
        advance_one(i, n_steps, step0, dt, model, drive, out)


@njit(cache=True, parallel=True)
def advance_parallel(n_steps, step0, dt, model, drive, out):
    for i in prange(out.shape[0]):
        advance_one(np.int64(i), n_steps, step0, dt, model, drive, out)


@njit(cache=True, inline="always")
def _plain_one(i, n_periods, k0, step0, times, state):
    spp, dt, latency_steps, period_s = times
    model, device, sensing, io, program = state
    drive, net, signal = io[0], io[1], io[2]
    plain = plain_state(sensing, io, spp)
    step = step0
    for k in range(k0, k0 + n_periods):
        pulse_fill(i, spp, step, dt, device, drive, net)
        advance_one(i, spp, step, dt, model, drive, signal)
        step += spp
        close_plain_period(i, k, step, device, plain, program, latency_steps, period_s)


@njit(cache=True, inline="always")
def _general_one(i, n_periods, k0, step0, times, state):
    spp, dt, latency_steps, period_s = times
    model, device, sensing, io, program = state
    drive, net, signal = io[0], io[1], io[2]
    step = step0
    for k in range(k0, k0 + n_periods):
        device_fill(i, spp, step, dt, device, drive, net)
        advance_one(i, spp, step, dt, model, drive, signal)
        step += spp
        close_period(i, k, spp, step, device, sensing, io, program, latency_steps, period_s)


@njit(cache=True)
def _periods_block(lo, hi, n_periods, k0, step0, times, state, general):
    for i in range(lo, hi):
        if general is None:  # every period plain: the general code is not compiled
            _plain_one(i, n_periods, k0, step0, times, state)
        else:
            _general_one(i, n_periods, k0, step0, times, state)


@njit(cache=True)
def periods_serial(
    n_periods,
    spp,
    step0,
    dt,
    model,
    device,
    sensing,
    io,
    k0,
    program,
    latency_steps,
    period_s,
    command,
    effective_step,
    general,
):
    queue_push(device, command, effective_step)
    times = (spp, dt, latency_steps, period_s)
    state = (model, device, sensing, io, program)
    n = io[0].shape[0]
    for b in range((n + 15) // 16):  # the parallel kernel's blocks, one after another
        lo = np.int64(b) * 16
        _periods_block(lo, min(n, lo + 16), n_periods, k0, step0, times, state, general)


@njit(cache=True)
def periods_packed(lent_types, pool, command, effective_step, general):
    state, times, step0, k0 = next_period(lent_types, pool)
    device, io = state[1], state[3]
    queue_push(device, command, effective_step)
    for i in range(io[0].shape[0]):
        if general is None:
            _plain_one(i, 1, k0, step0, times, state)
        else:
            _general_one(i, 1, k0, step0, times, state)


@njit(cache=True, parallel=True)
def periods_parallel(
    n_periods,
    spp,
    step0,
    dt,
    model,
    device,
    sensing,
    io,
    k0,
    program,
    latency_steps,
    period_s,
    command,
    effective_step,
    general,
):
    queue_push(device, command, effective_step)
    n = io[0].shape[0]
    for b in prange((n + 15) // 16):  # blocks of 16 instances
        lo = np.int64(b) * 16  # int64 like the serial loop's: one compilation
        times = (spp, dt, latency_steps, period_s)  # made here: a parfor takes no nested tuple
        state = (model, device, sensing, io, program)
        _periods_block(lo, min(n, lo + 16), n_periods, k0, step0, times, state, general)
