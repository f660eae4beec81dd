"""Delayed STN-GPe firing-rate model of Parkinsonian beta oscillations.

Two populations, the subthalamic nucleus (STN, rate ``S``) and the external
globus pallidus (GPe, rate ``G``), coupled with transmission delays
(Nevado-Holgado et al. 2010; Pavlides et al. 2015)::

    tau_S dS/dt = F_S(w_CS*C - w_GS*G(t - T_GS) + g_DBS*u(t)) - S
    tau_G dG/dt = F_G(w_SG*S(t - T_SG) - w_GG*G(t - T_GG) - Str) - G
    tau_DBS du/dt = I_cath(t) - u

with the sigmoid ``F(x) = M*B / (B + (M - B)*exp(-4x/M))`` (``F(0) = B``, the
baseline rate, and ``F -> M``, the maximal rate), integrated by the Euler
method with step ``dt``; delays live in per-instance ring buffers and must be
whole numbers of steps. Optional white noise (standard deviation
``sigma_S``/``sigma_G`` in (spikes/s)/sqrt(s), Euler-Maruyama) is drawn from
each instance's own seeded stream. Rates are kept non-negative.

Cortical input ``C`` is a constant here (the "resonance" account of
Pavlides et al. 2015: the STN-GPe loop generates beta by itself), so the
cortical delay ``T_CS`` has no effect while ``C`` is constant; it is kept for
models that make ``C`` time-varying.

Stimulation
-----------
The input is the device's average cathodic current per step ``I_cath`` (mA).
It excites STN through ``u``, a first-order filter of time constant
``tau_DBS`` (the synaptic and membrane smoothing of the pulse train), scaled
by ``g_DBS`` (spikes/s of STN input per mA of mean cathodic current). A rate
model has no electrode geometry: ``g_DBS`` is phenomenological, chosen so that
continuous 130 Hz, 60 us DBS of 1.5 to 3 mA, a clinical range, suppresses the
beta oscillation as it does in patients (Kühn et al. 2008). Filtering the
charge rather than feeding pulses straight into the sigmoid keeps the result
independent of ``dt`` for pulses shorter than a step.

LFP proxy
---------
``lfp`` is the STN population rate ``S`` (spikes/s). STN LFP beta power
follows the synchronised STN activity that this rate stands for; the sensing
chain's band-pass removes its mean.

Parameter provenance
--------------------
Delays and time constants: Pavlides et al. (2015), as the issue asks
(T_SG = T_GS = 6 ms, T_GG = 4 ms, T_CS = 5.5 ms, tau_S = 12.8 ms,
tau_G = 20 ms). Sigmoid maxima and baseline rates: Nevado-Holgado et al.
(2010) (M_S = 300, B_S = 17, M_G = 400, B_G = 75 spikes/s). The coupling
weights and inputs of the ``parkinsonian`` and ``healthy`` regimes are set
here, not taken from either paper: with the time constants above the two
papers' fitted weights belong to other model variants (Pavlides' best fit
oscillates only with its cortical loop), so the weights were chosen on either
side of the loop's Hopf bifurcation, which Nevado-Holgado et al. (2010)
derive as the condition for beta (strong STN-GPe coupling, ``w_GS*w_SG``).
The ``parkinsonian_limit_cycle`` regime oscillates in the beta band; the
healthy one is a stable fixed point. Both are tested.

Beta bursts (the ``parkinsonian`` regime)
-----------------------------------------
Parkinsonian STN beta comes in bursts of variable duration, and the long ones
track rigidity and bradykinesia (Tinkhauser et al. 2017a, b: bursts above the
75th percentile of the beta envelope, at least 100 ms long). Fitted
neural-mass models produce such bursts when a noisy population sits close to
the onset of the oscillation (Duchet et al. 2021). The ``parkinsonian``
regime does that here: with ``w_GS = w_SG = 5`` the loop's Hopf bifurcation
lies between cortical weights ``w_CS`` of 3.5 and 4.0 (measured here with
weak noise: the STN rate's standard deviation jumps from 3 to 16 spikes/s);
``w_CS = 3.8`` puts the loop just below or at it, and STN noise
``sigma_S = 40`` (spikes/s)/sqrt(s) excites bursts at about 21 Hz. With the
envelope of a 13-30 Hz band-pass thresholded at its 75th percentile and a
100 ms minimum, it gives about one burst per second, mean duration about
0.23 s, median about 0.19 s, some 8 % longer than 400 ms (seeded values,
tested). All four numbers were chosen here by a scan of ``w_CS`` and
``sigma_S`` against those statistics, not taken from a paper.
``parkinsonian_medicated`` weakens the STN-GPe coupling by 10 %: with the
same (OFF) threshold its bursts are rarer and shorter and none lasts 400 ms,
the direction levodopa moves them (Tinkhauser et al. 2017b). It is a
setting, not a fit to patients' ON state.

References
----------
Nevado-Holgado AJ, Terry JR, Bogacz R (2010) Conditions for the generation of
beta oscillations in the subthalamic nucleus-globus pallidus network.
J Neurosci 30:12340-12352.
Pavlides A, Hogan SJ, Bogacz R (2015) Computational models describing possible
mechanisms for generation of excessive beta oscillations in Parkinson's
disease. PLoS Comput Biol 11:e1004609.
Tinkhauser G et al. (2017a) The modulatory effect of adaptive deep brain
stimulation on beta bursts in Parkinson's disease. Brain 140:1053-1067.
Tinkhauser G et al. (2017b) Beta burst dynamics in Parkinson's disease OFF
and ON dopaminergic medication. Brain 140:2968-2981.
Duchet B et al. (2021) Average beta burst duration profiles provide a
signature of dynamical changes between the ON and OFF medication states in
Parkinson's disease. PLoS Comput Biol 17:e1009116.
Kühn AA et al. (2008) High-frequency stimulation of the subthalamic nucleus
suppresses oscillatory beta activity in patients with Parkinson's disease in
parallel with improvement in motor performance. J Neurosci 28:6165-6173.
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

__all__ = ["STNGPe"]

_NH = "Nevado-Holgado et al. 2010"
_PAV = "Pavlides et al. 2015"
_HERE = "closedloop (see module notes)"


class STNGPe(NumbaModel):
    """Delayed STN-GPe rate model (Nevado-Holgado 2010; Pavlides 2015).

    See the module docstring for equations, units and parameter provenance.
    """

    name = "stn_gpe"
    state_variables = {"S": "spikes/s", "G": "spikes/s", "u": "mA"}
    signal_name = "lfp"
    signal_units = "spikes/s"
    signal_description = "STN population firing rate S, the LFP proxy"
    stimulation_units = "mA"
    stimulation_description = (
        "average cathodic current per integration step delivered to STN, mA; "
        "excites STN through a first-order filter (tau_DBS) with gain g_DBS"
    )
    parameters = {
        "tau_S": Parameter(12.8e-3, "s", "STN membrane time constant", _PAV, positive=True),
        "tau_G": Parameter(20e-3, "s", "GPe membrane time constant", _PAV, positive=True),
        "T_SG": Parameter(6e-3, "s", "STN to GPe delay", _PAV, minimum=0, whole_steps=True),
        "T_GS": Parameter(6e-3, "s", "GPe to STN delay", _PAV, minimum=0, whole_steps=True),
        "T_GG": Parameter(4e-3, "s", "GPe to GPe delay", _PAV, minimum=0, whole_steps=True),
        "T_CS": Parameter(5.5e-3, "s", "cortex to STN delay", _PAV, minimum=0, whole_steps=True),
        "M_S": Parameter(300.0, "spikes/s", "STN maximal rate", _NH, positive=True),
        "B_S": Parameter(17.0, "spikes/s", "STN baseline rate F_S(0)", _NH, positive=True),
        "M_G": Parameter(400.0, "spikes/s", "GPe maximal rate", _NH, positive=True),
        "B_G": Parameter(75.0, "spikes/s", "GPe baseline rate F_G(0)", _NH, positive=True),
        "w_GS": Parameter(10.0, "1", "GPe to STN weight (inhibitory)", _HERE, minimum=0),
        "w_SG": Parameter(10.0, "1", "STN to GPe weight (excitatory)", _HERE, minimum=0),
        "w_GG": Parameter(5.0, "1", "GPe to GPe weight (inhibitory)", _HERE, minimum=0),
        "w_CS": Parameter(20.0, "1", "cortex to STN weight (excitatory)", _HERE, minimum=0),
        "C": Parameter(100.0, "spikes/s", "cortical input rate", _HERE, minimum=0),
        "Str": Parameter(10.0, "spikes/s", "striatal inhibition of GPe", _HERE, minimum=0),
        "sigma_S": Parameter(0.0, "(spikes/s)/sqrt(s)", "STN noise intensity", _HERE, minimum=0),
        "sigma_G": Parameter(0.0, "(spikes/s)/sqrt(s)", "GPe noise intensity", _HERE, minimum=0),
        "g_DBS": Parameter(
            1e5, "(spikes/s)/mA", "STN input per mA of mean cathodic current", _HERE, minimum=0
        ),
        "tau_DBS": Parameter(5e-3, "s", "DBS input filter time constant", _HERE, positive=True),
    }
    regimes = {
        # Noise-driven beta bursts just below the onset of the oscillation
        # (see "Beta bursts" in the module notes): about one burst per second
        # above the 75th percentile, 8 % of them longer than 400 ms.
        "parkinsonian": {"w_CS": 3.8, "w_GS": 5.0, "w_SG": 5.0, "sigma_S": 40.0},
        # The same with the STN-GPe coupling 10 % weaker (dopamine weakens it;
        # Nevado-Holgado et al. 2010): further from the onset, beta lower and
        # bursts shorter. A setting chosen here, not a fitted ON state.
        "parkinsonian_medicated": {"w_CS": 3.8, "w_GS": 4.5, "w_SG": 4.5, "sigma_S": 40.0},
        # Beta limit cycle near 20 Hz, mean STN rate near 130 spikes/s: the
        # sustained oscillation, never below its envelope's lower quartile
        # for long (the regime that was "parkinsonian" before issue 12).
        "parkinsonian_limit_cycle": {"sigma_S": 20.0},
        # Weaker cortical drive and STN-GPe coupling: stable fixed point near
        # 20 spikes/s, no beta peak (dopamine loss strengthens both;
        # Nevado-Holgado et al. 2010).
        "healthy": {"w_CS": 2.0, "w_GS": 5.0, "w_SG": 5.0, "sigma_S": 20.0},
    }
    default_regime = "parkinsonian_limit_cycle"
    #: Read from the record at every call of the kernel: the drug layer
    #: (closedloop.drugs; levodopa moves w_GS and w_SG towards the healthy
    #: regime's) may change them while the model runs.
    modulatable = ("w_GS", "w_SG", "w_CS", "C")
    references = (
        "Nevado-Holgado AJ, Terry JR, Bogacz R (2010) J Neurosci 30:12340-12352",
        "Pavlides A, Hogan SJ, Bogacz R (2015) PLoS Comput Biol 11:e1004609",
        "Tinkhauser G et al. (2017) Brain 140:2968-2981",
        "Duchet B et al. (2021) PLoS Comput Biol 17:e1009116",
    )
    derived_fields = (
        ("d_SG", np.int64),
        ("d_GS", np.int64),
        ("d_GG", np.int64),
        ("d_CS", np.int64),
    )

    def _fill_derived(self, rec: np.ndarray) -> None:
        for name in ("SG", "GS", "GG", "CS"):
            rec[f"d_{name}"] = self.steps(rec[f"T_{name}"])

    @property
    def history_steps(self) -> int:
        """Length of the delay ring buffers, steps."""
        return int(max(self.record[f"d_{k}"].max() for k in ("SG", "GS", "GG", "CS"))) + 1

    def _initial_state(self) -> dict[str, np.ndarray]:
        # Start at the baseline rates with a constant history.
        x = np.zeros((self.n, 3))
        x[:, 0] = self.param_values["B_S"]
        x[:, 1] = self.param_values["B_G"]
        hist = np.repeat(x[:, :2, None], self.history_steps, axis=2)
        return {"x": x, "history": np.ascontiguousarray(hist)}

    def kernel_state(self) -> tuple:
        return (self.state["x"], self.state["history"], self.record, self.rng_)


@njit(cache=True, inline="always")
def _sigmoid(x, mb, m_minus_b, b, minus_4_over_m):
    """Nevado-Holgado's F(x) = M B / (B + (M - B) exp(-4x/M)), constants precomputed."""
    return mb / (b + m_minus_b * math.exp(minus_4_over_m * x))


@njit(cache=True)
def advance_one(i, n_steps, step0, dt, model, drive, out):
    x, hist, p, rng = model
    rec = p[i]
    h_len = hist.shape[2]
    s_rate = x[i, 0]
    g_rate = x[i, 1]
    u = x[i, 2]
    k_s = dt / rec.tau_S
    k_g = dt / rec.tau_G
    k_u = dt / rec.tau_DBS
    noise_s = rec.sigma_S * math.sqrt(dt)
    noise_g = rec.sigma_G * math.sqrt(dt)
    cortex = rec.w_CS * rec.C
    w_gs = rec.w_GS
    w_sg = rec.w_SG
    d_gs = rec.d_GS
    d_sg = rec.d_SG
    d_gg = rec.d_GG
    s_mb, s_mmb, s_b, s_k = rec.M_S * rec.B_S, rec.M_S - rec.B_S, rec.B_S, -4.0 / rec.M_S
    g_mb, g_mmb, g_b, g_k = rec.M_G * rec.B_G, rec.M_G - rec.B_G, rec.B_G, -4.0 / rec.M_G
    pos = step0 % h_len
    for j in range(n_steps):
        hist[i, 0, pos] = s_rate
        hist[i, 1, pos] = g_rate
        # Ring indices by wrap-around, not %: integer modulo costs more than the
        # rest of the step.
        k_gs = pos - d_gs if pos >= d_gs else pos - d_gs + h_len
        k_sg = pos - d_sg if pos >= d_sg else pos - d_sg + h_len
        k_gg = pos - d_gg if pos >= d_gg else pos - d_gg + h_len
        g_del_gs = hist[i, 1, k_gs]
        s_del_sg = hist[i, 0, k_sg]
        g_del_gg = hist[i, 1, k_gg]
        in_s = cortex - w_gs * g_del_gs + rec.g_DBS * u
        in_g = w_sg * s_del_sg - rec.w_GG * g_del_gg - rec.Str
        u += k_u * (drive[i, j] - u)
        s_new = s_rate + k_s * (_sigmoid(in_s, s_mb, s_mmb, s_b, s_k) - s_rate)
        g_new = g_rate + k_g * (_sigmoid(in_g, g_mb, g_mmb, g_b, g_k) - g_rate)
        if noise_s > 0.0:
            s_new += noise_s * normal(rng, i)
        if noise_g > 0.0:
            g_new += noise_g * normal(rng, i)
        s_rate = max(s_new, 0.0)
        g_rate = max(g_new, 0.0)
        out[i, j] = s_rate
        pos = pos + 1 if pos + 1 < h_len else 0
    x[i, 0] = s_rate
    x[i, 1] = g_rate
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
