"""Cingulo-frontal network of major depression: vACC and dlPFC, a rate reduction.

A population-rate reduction of the spiking network of Ramirez-Mahaluf et al.
(2017): two cortical areas, the ventral anterior cingulate (``vacc``,
emotional processing) and the dorsolateral prefrontal cortex (``dlpfc``,
cognitive processing), each with an excitatory (E) and an inhibitory (I)
population. As in the paper, the areas interact only through E -> I
projections (vACC E onto dlPFC I and dlPFC E onto vACC I), so each inhibits
the other through the other's interneurons and one area's sustained activity
suppresses the other's.

Equations (per area; rates in Hz, currents in nA, time in s)::

    I_E = I0_E + J_NEE S_N + J_AEE S_A - J_IE S_G + I_task + I_ssri + eta_E
    I_I = I0_I + J_NEI S_N + J_AEI S_A - J_II S_G + J_X S_N' + I_dbs + eta_I
    tau_E dr_E/dt = -r_E + phi_E(I_E)        tau_I dr_I/dt = -r_I + phi_I(I_I)
    dS_N/dt = -S_N / tau_NMDA + gamma (1 - S_N) r_E      (slow NMDA gate)
    dS_A/dt = -S_A / tau_AMPA + r_E                       (AMPA, S_A = tau_AMPA r_E at rest)
    dS_G/dt = -S_G / tau_GABA + r_I                       (GABA)
    phi(I) = (a I - b) / (1 - exp(-d (a I - b)))          (Abbott-Chance / Wong-Wang)

``S_N'`` is the other area's NMDA gate (the cross-area E -> I projection is
carried by the slow gate so that a sustained state holds the other area
down). ``eta`` are Ornstein-Uhlenbeck background currents (time constant
``tau_AMPA``, standard deviation ``sigma_E``/``sigma_I``), the rate form of
the paper's Poisson background filtered by AMPA synapses, drawn from each
instance's own seeded stream. Euler integration (the fastest time constant,
2 ms, is 20 steps of the default 0.1 ms step); the OU terms are updated
exactly.

The slow NMDA gate with recurrent excitation makes each area bistable
(a low spontaneous state and a sustained "active" state, as in Wong & Wang
2006); the fast loop E -(AMPA)-> I -(GABA)-> E through the two membrane
time constants resonates in the beta/gamma range, more strongly where the
E population's gain is high (the active state).

What is taken and what is chosen here
-------------------------------------
Taken from the paper [Ramirez-Mahaluf 2017, its ModelDB code 240954]:
two areas of E and I, cross-area coupling only E -> other area's I, the
synaptic time constants (tau_AMPA 2 ms, tau_GABA 10 ms, tau_NMDA 100 ms),
the membrane time constants (20 ms E, 10 ms I, used here as the rate time
constants), the E leak conductance C_m / tau_m = 500 pF / 20 ms = 25 nS
(used to turn the SSRI's shift of resting potential into a current), the
MDD knob (vACC AMPA decay slower by 2.5 / 5 / 7.5 %), DBS as drive onto vACC
interneurons and the SSRI as a change of vACC resting potential. The
transfer functions are those of Wong & Wang (2006) (E) and Deco et al.
(2014) (I). The weights and background currents are set here (the spiking
weights do not carry over to a rate model), chosen so that both areas are
bistable, the cross-area inhibition lets a task pulse to one area end the
other's sustained state in the healthy regime, and the regimes behave as the
paper reports (tests in ``tests/test_mdd_cingulofrontal.py``).

The MDD knob (a choice). ``ampa_slowing`` (dimensionless, 0 / 0.025 / 0.05 /
0.075 in the four regimes) lengthens vACC tau_AMPA by that fraction, which
raises the vACC AMPA charge per spike in proportion. In the spiking network
that small change tips the vACC past a tipping point because the AMPA charge
is amplified by the voltage-dependent NMDA current; a rate model lacks that
amplification, so the slowing also scales the vACC recurrent NMDA weights
(E -> E) by ``1 + ampa_gain * ampa_slowing`` with ``ampa_gain`` set here.

Field potential (the signal)
----------------------------
Of the sensed node: the sum of the absolute synaptic currents onto its E
population, ``J_NEE S_N + J_AEE S_A + J_IE S_G`` (nA), the LFP proxy of
Mazzoni et al. (2008). Its slow part follows the NMDA gate (theta and lower:
the state itself and its noise-driven wandering), its fast part the E-I
resonance (beta/gamma).

Inputs
------
Task pulses from a protocol in the parameters, timed by the model's step
count (so chunking does not matter; the loop restarts the count after its
warm-up, so in an experiment the times are those of the recorded run, and a
pulse scheduled before ``warmup_s`` also fires during the warm-up):
emotional pulses of ``emo_amp_na`` onto vACC E from ``emo_onset_s`` for
``emo_dur_s``, repeated every ``emo_period_s`` (0: once); cognitive pulses onto dlPFC E likewise
(``cog_*``). The device's drive (mean cathodic current per step, mA),
smoothed by a first-order filter (``tau_stim``), adds ``g_stim`` nA per mA
to the interneurons of the stimulated node (``model.stim_node``, vACC by
default: DBS onto vACC interneurons, as in the paper). The SSRI-like
parameter ``ssri_shift_mv`` is a shift of the vACC E resting potential (mV,
negative hyperpolarizes), entering as ``25 nS * shift``; it is
:attr:`MddCingulofrontal.modulatable`, read from the record every step.

What it reproduces (tests/test_mdd_cingulofrontal.py)
------------------------------------------------------
The paper's abstract [V] reports: in MDD, sustained vACC activation not
suppressed by concurrent dlPFC activation, disrupting dlPFC responses to
cognitive input; SSRI or DBS counteracting it; theta and beta/gamma
oscillations correlating with network function. With the defaults here:

- Bistability: the documented equations' vACC low state exists up to
  ``ampa_slowing`` = 0.077 and its sustained state down to -0.018
  (numerical continuation), so all four regimes (0 ... 0.075) are bistable;
  a quasi-static sweep of the noisy model jumps up at 0.11 and falls back at
  -0.03 (hysteresis). ``mdd_severe`` sits just below the low state's fold:
  noise ignites the sustained vACC state within seconds (first ignition 3 to
  16 s in 8 instances) without any emotional input.
- Switching: in ``healthy`` a 0.16 nA, 0.2 s cognitive pulse to the dlPFC
  hands dominance from a sustained vACC state (29 Hz) to the dlPFC (29 Hz)
  and an emotional pulse switches it back; in the three MDD regimes the vACC
  stays active (42 / 55 / 66 Hz) and the dlPFC does not respond.
- Rescue: an SSRI-like shift of -1 mV (mild) or -3 mV (severe), or DBS of
  0.02 mA mean cathodic current (130 Hz, 60 us, 2.56 mA) onto vACC
  interneurons (severe), lets the cognitive pulse end the sustained state.
- Oscillatory markers: in the sustained vACC state the vACC field potential
  carries about 9 times the theta (4-8 Hz) and 8 times the beta/gamma
  (15-40 Hz) power of the low state, with a spectral peak near 30 Hz. The
  direction and size of the paper's band-power differences could not be
  checked here (full text not accessible); these are the model's.

References
----------
Ramirez-Mahaluf JP, Roxin A, Mayberg HS, Compte A (2017) A computational
model of major depression: the role of glutamate dysfunction on
cingulo-frontal network dynamics. Cereb Cortex 27:660-679.
Wong KF, Wang XJ (2006) A recurrent network mechanism of time integration
in perceptual decisions. J Neurosci 26:1314-1328.
Deco G, Ponce-Alvarez A, Hagmann P, Romani GL, Mantini D, Corbetta M (2014)
How local excitation-inhibition ratio impacts the whole brain dynamics.
J Neurosci 34:7886-7898.
Mazzoni A, Panzeri S, Logothetis NK, Brunel N (2008) Encoding of naturalistic
stimuli by local field potential spectra in networks of excitatory and
inhibitory neurons. PLoS Comput Biol 4:e1000239.
"""

from __future__ import annotations

import math
from typing import ClassVar

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

__all__ = [
    "AREA_FIELDS",
    "AREA_WIDTH",
    "MddCingulofrontal",
    "area_lfp",
    "area_step",
    "pulse_on",
    "transfer",
]

_RM = "Ramirez-Mahaluf et al. 2017 (ModelDB 240954)"
_WW = "Wong & Wang 2006"
_DECO = "Deco et al. 2014"
_HERE = "closedloop (set here, see module notes)"

#: The variables of one area, in the order they sit in the state row.
AREA_FIELDS = ("r_E", "r_I", "S_N", "S_A", "S_G", "eta_E", "eta_I")
AREA_WIDTH = len(AREA_FIELDS)
_W = AREA_WIDTH
#: State columns after the four area blocks: the stimulation filter, then one
#: running mean of each area's E rate.
_U = 4 * _W
_MEAN = _U + 1
_N_STATE = _MEAN + 4


def _p(value, units, text, ref=_HERE, **kw):
    return Parameter(value, units, text, ref, **kw)


class MddCingulofrontal(NumbaModel):
    """vACC-dlPFC mutual-inhibition network of major depression (rate reduction).

    After Ramirez-Mahaluf et al. (2017); see the module docstring for the
    equations, what is taken from the paper and what is chosen here.
    """

    name = "mdd_cingulofrontal"
    nodes: ClassVar[tuple[str, ...]] = ("vacc", "dlpfc")
    node_descriptions = {
        "vacc": "ventral anterior cingulate (emotional); drive enters its interneurons (DBS)",
        "dlpfc": "dorsolateral prefrontal cortex (cognitive); drive enters its interneurons",
    }
    default_sense_node = "vacc"
    default_stim_node = "vacc"
    modulatable = ("ssri_shift_mv",)
    state_variables = {
        **{f"rate_{a}_hz": "Hz" for a in ("vacc", "dlpfc", "amygdala", "vcvs")},
        **{f"mean_rate_{a}_hz": "Hz" for a in ("vacc", "dlpfc", "amygdala", "vcvs")},
    }
    signal_name = "lfp"
    signal_units = "nA"
    signal_description = (
        "field-potential proxy of the sensed node: summed absolute synaptic currents onto "
        "its E population, J_NEE S_N + J_AEE S_A + J_IE S_G (Mazzoni et al. 2008)"
    )
    stimulation_units = "mA"
    stimulation_description = (
        "average cathodic current per integration step, mA; smoothed by a first-order filter "
        "(tau_stim), it adds g_stim nA per mA to the stimulated node's interneurons"
    )
    parameters = {
        # Synaptic and membrane time constants (the paper's).
        "tau_E": _p(20e-3, "s", "E rate time constant (E membrane tau_m)", _RM, positive=True),
        "tau_I": _p(10e-3, "s", "I rate time constant (I membrane tau_m)", _RM, positive=True),
        "tau_NMDA": _p(100e-3, "s", "NMDA gate decay", _RM, positive=True),
        "tau_AMPA": _p(2e-3, "s", "AMPA decay (dlPFC; vACC before slowing)", _RM, positive=True),
        "tau_GABA": _p(10e-3, "s", "GABA decay", _RM, positive=True),
        "gamma": _p(0.641, "1", "NMDA gate saturation factor (per Hz of rate, per s)", _WW),
        # Transfer functions.
        "a_E": _p(270.0, "Hz/nA", "E transfer gain", _WW, positive=True),
        "b_E": _p(108.0, "Hz", "E transfer threshold", _WW),
        "d_E": _p(0.154, "s", "E transfer curvature", _WW, positive=True),
        "a_I": _p(615.0, "Hz/nA", "I transfer gain", _DECO, positive=True),
        "b_I": _p(177.0, "Hz", "I transfer threshold", _DECO),
        "d_I": _p(0.087, "s", "I transfer curvature", _DECO, positive=True),
        # Weights and background (set here).
        "J_NEE": _p(0.52, "nA", "recurrent E -> E, NMDA", minimum=0),
        "J_AEE": _p(0.5, "nA", "recurrent E -> E, AMPA", minimum=0),
        "J_IE": _p(1.2, "nA", "I -> E, GABA", minimum=0),
        "J_NEI": _p(0.2, "nA", "E -> I, NMDA", minimum=0),
        "J_AEI": _p(1.0, "nA", "E -> I, AMPA", minimum=0),
        "J_II": _p(1.0, "nA", "I -> I, GABA", minimum=0),
        "J_X": _p(0.15, "nA", "cross-area E -> other area's I (NMDA gate)", minimum=0),
        "I0_E": _p(0.33, "nA", "background current to E"),
        "I0_I": _p(0.27, "nA", "background current to I"),
        "sigma_E": _p(0.01, "nA", "background fluctuation (OU s.d.) onto E", minimum=0),
        "sigma_I": _p(0.01, "nA", "background fluctuation (OU s.d.) onto I", minimum=0),
        # Depression and treatment.
        "ampa_slowing": _p(
            0.0,
            "1",
            "fractional slowing of vACC AMPA decay (MDD knob)",
            _RM,
            minimum=-0.5,
            maximum=1,
        ),
        "ampa_gain": _p(4.0, "1", "vACC recurrent NMDA scale per unit of AMPA slowing", minimum=0),
        "ssri_shift_mv": _p(
            0.0, "mV", "SSRI-like shift of vACC E resting potential (negative: hyperpolarized)", _RM
        ),
        "g_leak_E": _p(25e-3, "nA/mV", "E leak conductance C_m/tau_m (500 pF / 20 ms)", _RM),
        "g_stim": _p(4.0, "nA/mA", "interneuron current per mA of mean cathodic current"),
        "tau_stim": _p(5e-3, "s", "stimulation input filter time constant", positive=True),
        "tau_mean": _p(1.0, "s", "time constant of the running mean rates (observables)"),
        # Task protocol.
        "emo_onset_s": _p(1e9, "s", "first emotional pulse onto vACC E (1e9: none)", minimum=0),
        "emo_dur_s": _p(0.2, "s", "emotional pulse duration", minimum=0),
        "emo_period_s": _p(0.0, "s", "emotional pulse repetition period (0: once)", minimum=0),
        "emo_amp_na": _p(0.15, "nA", "emotional pulse amplitude"),
        "cog_onset_s": _p(1e9, "s", "first cognitive pulse onto dlPFC E (1e9: none)", minimum=0),
        "cog_dur_s": _p(0.2, "s", "cognitive pulse duration", minimum=0),
        "cog_period_s": _p(0.0, "s", "cognitive pulse repetition period (0: once)", minimum=0),
        "cog_amp_na": _p(0.16, "nA", "cognitive pulse amplitude"),
    }
    regimes = {
        "healthy": {},
        "mdd_mild": {"ampa_slowing": 0.025},
        "mdd_moderate": {"ampa_slowing": 0.05},
        "mdd_severe": {"ampa_slowing": 0.075},
    }
    default_regime = "healthy"
    references: ClassVar[tuple[str, ...]] = (
        "Ramirez-Mahaluf JP, Roxin A, Mayberg HS, Compte A (2017) Cereb Cortex 27:660-679",
        "Wong KF, Wang XJ (2006) J Neurosci 26:1314-1328",
        "Deco G et al. (2014) J Neurosci 34:7886-7898",
        "Mazzoni A et al. (2008) PLoS Comput Biol 4:e1000239",
    )
    derived_fields = (("n_areas", np.int64),)

    def _fill_derived(self, rec: np.ndarray) -> None:
        rec["n_areas"] = len(self.nodes)

    def _initial_state(self) -> dict[str, np.ndarray]:
        x = np.zeros((self.n, _N_STATE))
        p = self.param_values
        for a in range(4):
            # Start at the low (spontaneous) state's neighbourhood: S_N small, I firing.
            x[:, a * _W + 1] = 10.0
            x[:, a * _W + 4] = 10.0 * p["tau_GABA"]
        return {"x": x}

    def kernel_state(self) -> tuple:
        return (self.state["x"], self.record, self.rng_)

    def observables(self) -> dict[str, np.ndarray]:
        """Each node's E rate now and its running mean (time constant ``tau_mean``), Hz.

        ``mean_rate_vacc_hz`` is the slow readout of the symptomatic state
        (sustained vACC activity) for a slower layer.
        """
        if not self.state:
            return {}
        x = self.state["x"]
        out = {}
        for a, node in enumerate(self.nodes):
            out[f"rate_{node}_hz"] = x[:, a * _W].copy()
            out[f"mean_rate_{node}_hz"] = x[:, _MEAN + a].copy()
        return out

    def node_rates(self) -> dict[str, np.ndarray]:
        """Each node's E rate now, Hz, shape ``(n,)`` (for tests and notebooks)."""
        x = self.state["x"]
        return {node: x[:, a * _W].copy() for a, node in enumerate(self.nodes)}


@njit(cache=True, inline="always")
def transfer(current, a, b, d):
    """Abbott-Chance rate of a population for an input current (nA) -> Hz."""
    y = a * current - b
    if abs(y) < 1e-9:
        return 1.0 / d
    return y / (1.0 - math.exp(-d * y))


@njit(cache=True, inline="always")
def pulse_on(t, onset, dur, period):
    """1 while a pulse of the schedule (onset, duration, period; 0 = once) is on."""
    if t < onset:
        return 0.0
    s = t - onset
    if period > 0.0:
        s = s % period
    return 1.0 if s < dur else 0.0


@njit(cache=True, inline="always")
def area_step(
    x, i, a, ext_e, ext_i, j_nee, tau_a, tau_e, tau_i, p, dt, dec_e, dec_i, f_e, f_i, rng
):
    """One Euler step of area ``a`` of instance ``i`` (OU noise updated exactly)."""
    k = a * _W
    r_e = x[i, k]
    r_i = x[i, k + 1]
    s_n = x[i, k + 2]
    s_a = x[i, k + 3]
    s_g = x[i, k + 4]
    eta_e = x[i, k + 5]
    eta_i = x[i, k + 6]
    i_e = p.I0_E + j_nee * s_n + p.J_AEE * s_a - p.J_IE * s_g + ext_e + eta_e
    i_i = p.I0_I + p.J_NEI * s_n + p.J_AEI * s_a - p.J_II * s_g + ext_i + eta_i
    x[i, k] = r_e + dt / tau_e * (transfer(i_e, p.a_E, p.b_E, p.d_E) - r_e)
    x[i, k + 1] = r_i + dt / tau_i * (transfer(i_i, p.a_I, p.b_I, p.d_I) - r_i)
    x[i, k + 2] = s_n + dt * (-s_n / p.tau_NMDA + p.gamma * (1.0 - s_n) * r_e)
    x[i, k + 3] = s_a + dt * (-s_a / tau_a + r_e)
    x[i, k + 4] = s_g + dt * (-s_g / p.tau_GABA + r_i)
    x[i, k + 5] = eta_e * dec_e + f_e * normal(rng, i)
    x[i, k + 6] = eta_i * dec_i + f_i * normal(rng, i)


@njit(cache=True, inline="always")
def area_lfp(x, i, a, j_nee, p):
    """The field-potential proxy of area ``a``: summed absolute synaptic currents onto E, nA."""
    k = a * _W
    return j_nee * x[i, k + 2] + p.J_AEE * x[i, k + 3] + p.J_IE * x[i, k + 4]


@njit(cache=True)
def advance_one(i, n_steps, step0, dt, model, drive, out):
    x, p, rng = model
    rec = p[i]
    slowing = rec.ampa_slowing
    tau_a_v = rec.tau_AMPA * (1.0 + slowing)
    j_nee_v = rec.J_NEE * (1.0 + rec.ampa_gain * slowing)
    dec = math.exp(-dt / rec.tau_AMPA)
    f_e = rec.sigma_E * math.sqrt(1.0 - dec * dec)
    f_i = rec.sigma_I * math.sqrt(1.0 - dec * dec)
    k_u = dt / rec.tau_stim
    k_m = dt / rec.tau_mean
    stim_v = 1.0 if rec.stim_node == 0 else 0.0
    sense_v = rec.sense_node == 0
    for j in range(n_steps):
        t = (step0 + j) * dt
        u = x[i, _U] + k_u * (drive[i, j] - x[i, _U])
        x[i, _U] = u
        stim = rec.g_stim * u
        # The SSRI term is read from the record every step (modulatable).
        ext_ev = rec.emo_amp_na * pulse_on(t, rec.emo_onset_s, rec.emo_dur_s, rec.emo_period_s)
        ext_ev += rec.g_leak_E * rec.ssri_shift_mv
        ext_ed = rec.cog_amp_na * pulse_on(t, rec.cog_onset_s, rec.cog_dur_s, rec.cog_period_s)
        cross_v = rec.J_X * x[i, _W + 2]  # dlPFC E -> vACC I
        cross_d = rec.J_X * x[i, 2]  # vACC E -> dlPFC I
        ext_iv = cross_v + stim_v * stim
        ext_id = cross_d + (1.0 - stim_v) * stim
        area_step(
            x,
            i,
            0,
            ext_ev,
            ext_iv,
            j_nee_v,
            tau_a_v,
            rec.tau_E,
            rec.tau_I,
            rec,
            dt,
            dec,
            dec,
            f_e,
            f_i,
            rng,
        )
        area_step(
            x,
            i,
            1,
            ext_ed,
            ext_id,
            rec.J_NEE,
            rec.tau_AMPA,
            rec.tau_E,
            rec.tau_I,
            rec,
            dt,
            dec,
            dec,
            f_e,
            f_i,
            rng,
        )
        x[i, _MEAN] += k_m * (x[i, 0] - x[i, _MEAN])
        x[i, _MEAN + 1] += k_m * (x[i, _W] - x[i, _MEAN + 1])
        if sense_v:
            out[i, j] = area_lfp(x, i, 0, j_nee_v, rec)
        else:
            out[i, j] = area_lfp(x, i, 1, rec.J_NEE, rec)


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
