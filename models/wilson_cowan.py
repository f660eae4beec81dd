"""Wilson-Cowan excitatory-inhibitory population model.

Two populations, excitatory (``E``) and inhibitory (``I``), each the
proportion of its cells firing per unit time, measured from rest (Wilson &
Cowan 1972)::

    tau_E dE/dt = -E + (k_E - r_E*E) S_E(c1*E - c2*I + P + g_E*u)
    tau_I dI/dt = -I + (k_I - r_I*I) S_I(c3*E - c4*I + Q + g_I*u)
    tau_stim du/dt = I_cath(t) - u

with the sigmoid shifted so that ``S(0) = 0``,
``S(x) = 1/(1 + exp(-a(x - theta))) - 1/(1 + exp(a*theta))``, and
``k = S(+inf) = 1 - 1/(1 + exp(a*theta))``, so that ``E = I = 0`` is the
resting state when ``P = Q = 0``; ``E`` and ``I`` may dip slightly below
zero, as in the paper. Weights ``c1..c4``, inputs ``P``, ``Q`` and the
sigmoids' ``a``, ``theta`` are dimensionless (input units), ``r_E``, ``r_I``
are the refractory factors of the paper (dimensionless). Integration is by
Heun's method with step ``dt`` (second order: the Euler method at
``dt = 0.1`` ms would run the 20 Hz cycle below at 19 Hz); optional additive
white noise (``sigma_E``, ``sigma_I``, in 1/sqrt(s), stochastic Heun) is
drawn from each instance's own seeded stream. The initial state is the
resting state ``E = I = u = 0``; to start elsewhere, set
``model.state["x"][:, 0]`` (E) and ``[:, 1]`` (I) after
:meth:`~closedloop.core.model.NumbaModel.reset`.

Stimulation
-----------
The input is the device's average cathodic current per step ``I_cath`` (mA),
smoothed by a first-order filter ``u`` of time constant ``tau_stim`` (as the
STN-GPe model does, so that pulses shorter than a step act independently of
``dt``). It drives both populations, ``g_E`` and ``g_I`` input units per mA
of mean cathodic current: extracellular stimulation recruits excitatory and
inhibitory cells alike, and in cortex the response to a stimulus train is a
brief excitation followed by a longer-lasting inhibition (Chung & Ferster
1998; Butovas & Schwarz 2003). The gains are phenomenological, set here
(``g_I = 4 g_E``): a 3 mA, 100 us, 130 Hz train (0.039 mA mean cathodic
current) adds 7.8 input units to ``I`` and 2 to ``E``.

That inhibitory bias is what lets an excitatory device switch the
``bistable`` regime from its high state to its low one: a burst of a few
tens of ms (50 ms in the tests) raises ``I`` (slow there,
``tau_I = 2 tau_E``), ``E`` falls below the
saddle's stable manifold, and when the burst ends the inhibition decays
more slowly than ``E`` can recover, so the population settles in the low
state. The same burst given in the low state leaves it there. A burst that
recruited only ``E`` would instead hold the high state.

Signal
------
``E``, the excitatory activity (dimensionless, proportion of E cells active
per unit time relative to rest), taken here as the field-potential proxy.

Regimes
-------
``oscillatory_beta`` (default)
    The limit-cycle parameter set of Wilson & Cowan (1972): ``c1..c4 = 16,
    12, 15, 3``, ``a_E = 1.3``, ``theta_E = 4``, ``a_I = 2``,
    ``theta_I = 3.7``, ``r_E = r_I = 1``, ``P = 1.25``, ``Q = 0``. Its
    period is 5.0 time constants, so ``tau_E = tau_I = 10`` ms (set here)
    puts the cycle at 20 Hz.
``oscillatory_gamma``
    The same with ``tau_E = tau_I = 5`` ms: 40 Hz.
``damped``
    The same with ``P = 2.5``: past the upper Hopf bifurcation the limit
    cycle has shrunk to a stable focus (eigenvalues ``(-0.133 +- 2.915j) /
    tau``, a 46 Hz oscillation decaying at 13.3 1/s): perturbations ring
    down.
``bistable``
    The multiple-steady-state ("hysteresis") set of Wilson & Cowan (1972),
    ``c1, c3, c4 = 12, 13, 11``, ``a_E = 1.2``, ``theta_E = 2.8``,
    ``a_I = 1``, ``theta_I = 4``, with three changes made here: ``c2 = 8``
    (the paper's 4 doubled: stronger inhibition onto ``E`` lets a burst that
    recruits both populations end the high state), ``P = 0.3`` (two stable
    nodes, ``E = 0.035`` and ``E = 0.364``, either side of a saddle at
    ``E = 0.167``) and ``tau_I = 20`` ms with ``tau_E = 10`` ms. White noise
    ``sigma_E = 0.2`` 1/sqrt(s) switches the population between them: mean
    dwell about 1.7 s in the low (healthy) state and 2.9 s in the high
    (pathological) one, so that without stimulation it spends about 60 % of
    the time in the high state (estimated here from 100 instances x 40 s).

References
----------
Wilson HR, Cowan JD (1972) Excitatory and inhibitory interactions in
localized populations of model neurons. Biophys J 12:1-24.
Chung S, Ferster D (1998) Strength and orientation tuning of the thalamic
input to simple cells revealed by electrically evoked cortical suppression.
Neuron 20:1177-1189.
Butovas S, Schwarz C (2003) Spatiotemporal effects of microstimulation in rat
neocortex: a parametric study using multielectrode recordings.
J Neurophysiol 90:3024-3039.
"""

from __future__ import annotations

import math

import numpy as np

from closedloop.core.jit import njit, prange
from closedloop.core.model import NumbaModel, Parameter
from closedloop.core.period import (
    close_period,
    close_plain_period,
    plain_state,
)
from closedloop.core.period_packed import next_period
from closedloop.core.random import normal
from closedloop.device import device_fill, pulse_fill, queue_push

__all__ = ["WilsonCowan"]

_WC = "Wilson & Cowan 1972"
_HERE = "closedloop (see module notes)"


class WilsonCowan(NumbaModel):
    """Wilson-Cowan E-I population model (Wilson & Cowan 1972).

    See the module docstring for equations, units, regimes and parameter
    provenance.
    """

    name = "wilson_cowan"
    state_variables = {"E": "1", "I": "1", "u": "mA"}
    signal_name = "E"
    signal_units = "1"
    signal_description = (
        "excitatory activity E (proportion of E cells active per unit time, from rest)"
    )
    stimulation_units = "mA"
    stimulation_description = (
        "average cathodic current per integration step, mA; smoothed by a first-order "
        "filter (tau_stim), it adds g_E per mA to the input of E and g_I per mA to that of I"
    )
    parameters = {
        "tau_E": Parameter(10e-3, "s", "E time constant", _HERE, positive=True),
        "tau_I": Parameter(10e-3, "s", "I time constant", _HERE, positive=True),
        "c1": Parameter(16.0, "1", "E to E weight", _WC, minimum=0),
        "c2": Parameter(12.0, "1", "I to E weight (inhibitory)", _WC, minimum=0),
        "c3": Parameter(15.0, "1", "E to I weight", _WC, minimum=0),
        "c4": Parameter(3.0, "1", "I to I weight (inhibitory)", _WC, minimum=0),
        "a_E": Parameter(1.3, "1", "E sigmoid slope", _WC, positive=True),
        "theta_E": Parameter(4.0, "1", "E sigmoid threshold", _WC, minimum=0),
        "a_I": Parameter(2.0, "1", "I sigmoid slope", _WC, positive=True),
        "theta_I": Parameter(3.7, "1", "I sigmoid threshold", _WC, minimum=0),
        "r_E": Parameter(1.0, "1", "E refractory factor", _WC, minimum=0),
        "r_I": Parameter(1.0, "1", "I refractory factor", _WC, minimum=0),
        "P": Parameter(1.25, "1", "external input to E", _WC),
        "Q": Parameter(0.0, "1", "external input to I", _WC),
        "sigma_E": Parameter(0.0, "1/sqrt(s)", "E noise intensity", _HERE, minimum=0),
        "sigma_I": Parameter(0.0, "1/sqrt(s)", "I noise intensity", _HERE, minimum=0),
        "g_E": Parameter(50.0, "1/mA", "E input per mA of mean cathodic current", _HERE, minimum=0),
        "g_I": Parameter(
            200.0, "1/mA", "I input per mA of mean cathodic current", _HERE, minimum=0
        ),
        "tau_stim": Parameter(
            5e-3, "s", "stimulation input filter time constant", _HERE, positive=True
        ),
    }
    regimes = {
        "oscillatory_beta": {},
        "oscillatory_gamma": {"tau_E": 5e-3, "tau_I": 5e-3},
        "damped": {"P": 2.5},
        "bistable": {
            "c1": 12.0,
            "c2": 8.0,
            "c3": 13.0,
            "c4": 11.0,
            "a_E": 1.2,
            "theta_E": 2.8,
            "a_I": 1.0,
            "theta_I": 4.0,
            "P": 0.3,
            "tau_I": 20e-3,
            "sigma_E": 0.2,
        },
    }
    default_regime = "oscillatory_beta"
    references = ("Wilson HR, Cowan JD (1972) Biophys J 12:1-24",)
    #: Read from the record at every call of the kernel (inputs, weights and
    #: the inhibitory time constant, which the benzodiazepine preset of
    #: closedloop.drugs lengthens): a slow process may change them while the
    #: model runs.
    modulatable = ("P", "Q", "c1", "c2", "c3", "c4", "g_E", "g_I", "tau_I")
    derived_fields = (
        ("k_E", np.float64),
        ("k_I", np.float64),
        ("s0_E", np.float64),
        ("s0_I", np.float64),
    )

    def _fill_derived(self, rec: np.ndarray) -> None:
        # S(-inf) = -s0 and S(+inf) = k = 1 - s0, with s0 = 1/(1 + exp(a theta)).
        for pop in ("E", "I"):
            s0 = 1.0 / (1.0 + np.exp(rec[f"a_{pop}"] * rec[f"theta_{pop}"]))
            rec[f"s0_{pop}"] = s0
            rec[f"k_{pop}"] = 1.0 - s0

    def _initial_state(self) -> dict[str, np.ndarray]:
        return {"x": np.zeros((self.n, 3))}

    def kernel_state(self) -> tuple:
        return (self.state["x"], self.record, self.rng_)


@njit(cache=True, inline="always")
def _sigmoid(x, a, theta, s0):
    """Wilson-Cowan's shifted logistic, S(0) = 0."""
    return 1.0 / (1.0 + math.exp(-a * (x - theta))) - s0


@njit(cache=True, inline="always")
def _rates(rec, e, inh, u):
    """Right-hand sides (tau_E dE/dt, tau_I dI/dt) at one state."""
    in_e = rec.c1 * e - rec.c2 * inh + rec.P + rec.g_E * u
    in_i = rec.c3 * e - rec.c4 * inh + rec.Q + rec.g_I * u
    f_e = -e + (rec.k_E - rec.r_E * e) * _sigmoid(in_e, rec.a_E, rec.theta_E, rec.s0_E)
    f_i = -inh + (rec.k_I - rec.r_I * inh) * _sigmoid(in_i, rec.a_I, rec.theta_I, rec.s0_I)
    return f_e, f_i


@njit(cache=True)
def advance_one(i, n_steps, step0, dt, model, drive, out):
    # Heun's method (stochastic Heun for additive noise: the same increments in
    # predictor and corrector). Euler at dt = 0.1 ms runs the 20 Hz cycle at
    # 19 Hz; Heun keeps the frequency within 0.1 %.
    x, p, rng = model
    rec = p[i]
    e = x[i, 0]
    inh = x[i, 1]
    u = x[i, 2]
    h_e = 0.5 * dt / rec.tau_E
    h_i = 0.5 * dt / rec.tau_I
    k_u = dt / rec.tau_stim
    noise_e = rec.sigma_E * math.sqrt(dt)
    noise_i = rec.sigma_I * math.sqrt(dt)
    for j in range(n_steps):
        d_e = noise_e * normal(rng, i) if noise_e > 0.0 else 0.0
        d_i = noise_i * normal(rng, i) if noise_i > 0.0 else 0.0
        # The filter is linear with the drive constant over the step: Heun on
        # it is exact to second order too.
        u_pred = u + k_u * (drive[i, j] - u)
        u_new = u + 0.5 * k_u * (2.0 * drive[i, j] - u - u_pred)
        f_e, f_i = _rates(rec, e, inh, u)
        e_pred = e + 2.0 * h_e * f_e + d_e
        i_pred = inh + 2.0 * h_i * f_i + d_i
        g_e, g_i = _rates(rec, e_pred, i_pred, u_pred)
        e = e + h_e * (f_e + g_e) + d_e
        inh = inh + h_i * (f_i + g_i) + d_i
        u = u_new
        out[i, j] = e
    x[i, 0] = e
    x[i, 1] = inh
    x[i, 2] = u


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
