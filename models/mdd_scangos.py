"""The Scangos-style plant: sense the amygdala, stimulate the VC/VS, through the mood network.

Scangos et al. (2021) treated depression with a responsive implant that
sensed amygdala gamma-band power (the patient's symptom-state biomarker)
and stimulated the right ventral capsule/ventral striatum (VC/VS), a
different structure: the stimulation reaches the sensed site only through
the network. This model adds two nodes to the cingulo-frontal network of
:mod:`closedloop.models.mdd_cingulofrontal` (whose equations every node
follows, one E-I area each):

``amygdala`` (sensed by default)
    An E-I area with fast rate time constants (``tau_E_amy``,
    ``tau_I_amy``) so that its E-I loop resonates in the gamma band, and
    weak recurrence (``J_NEE_limbic``: no sustained state of its own). It
    receives vACC excitation, ``J_va`` times the vACC NMDA gate, onto its E
    population: when the vACC holds its sustained (symptomatic) state the
    amygdala is driven, its E gain rises and its gamma power with it.
``vcvs`` (stimulated by default)
    An E-I area with weak recurrence whose E population receives the
    device's drive (``g_stim_vcvs`` nA per mA of mean cathodic current,
    through the same input filter): high-frequency stimulation activates
    the structure's output. It projects, ``J_sv`` times its NMDA gate, onto
    the vACC interneurons.

So the only path from the stimulated node to the sensed one is VC/VS ->
vACC I -| vACC E -> amygdala E; with ``J_sv = 0`` stimulation of the VC/VS
leaves the amygdala untouched (a test checks it). ``vacc`` and ``dlpfc``
may also be sensed or stimulated (drive onto their interneurons, as in the
two-area model; onto the amygdala's interneurons when it is stimulated).

The coupling is a modelling choice, not a fit: the vACC/subgenual cingulate
and the amygdala are reciprocally connected and VC/VS stimulation engages
capsular fibres to the medial and orbital prefrontal cortex, but the signs
and weights here are set so the plant shows the behaviour the experiment
needs (symptomatic state -> amygdala gamma up; a VC/VS burst lowers it
through the network), not taken from data.

With the defaults and ``mdd_moderate`` (tests/test_mdd_cingulofrontal.py):
the amygdala's gamma power (30-80 Hz) of its field-potential proxy is 7 to
10 times higher in the symptomatic state (sustained vACC at 52 Hz, amygdala E
at 12 Hz) than at rest; a 6 s burst of 0.016 mA mean cathodic current to the
VC/VS (1 mA, 100 Hz, with a 160 us pulse width chosen here; the amplitude,
rate and burst length are the approximate values of Scangos et al. 2021,
unverified here) ends the sustained vACC state and leaves 10 to 17 % of the
amygdala gamma power.

References
----------
Scangos KW, Khambhati AN, Daly PM, et al. (2021) Closed-loop neuromodulation
in an individual with treatment-resistant depression. Nat Med 27:1696-1700.
Ramirez-Mahaluf JP, Roxin A, Mayberg HS, Compte A (2017) Cereb Cortex
27:660-679.
"""

from __future__ import annotations

import math

import numpy as np

from closedloop.core.jit import njit, prange
from closedloop.core.model import Parameter
from closedloop.core.period import (
    close_period,
    close_plain_period,
    plain_state,
)
from closedloop.core.period_packed import next_period
from closedloop.device import device_fill, pulse_fill, queue_push
from closedloop.models.mdd_cingulofrontal import (
    AREA_WIDTH,
    MddCingulofrontal,
    area_lfp,
    area_step,
    pulse_on,
)

__all__ = ["MddScangosPlant"]

_HERE = "closedloop (modelling choice, see module notes)"


class MddScangosPlant(MddCingulofrontal):
    """vACC-dlPFC network with a sensed amygdala and a stimulated VC/VS node.

    See the module docstring for the coupling and what is chosen here.
    """

    name = "mdd_scangos"
    nodes = ("vacc", "dlpfc", "amygdala", "vcvs")
    node_descriptions = {
        **MddCingulofrontal.node_descriptions,
        "amygdala": "amygdala, driven by vACC E; drive enters its interneurons",
        "vcvs": "ventral capsule/ventral striatum, projects onto vACC I; drive enters its E",
    }
    default_sense_node = "amygdala"
    default_stim_node = "vcvs"
    parameters = {
        **MddCingulofrontal.parameters,
        "tau_E_amy": Parameter(5e-3, "s", "amygdala E rate time constant", _HERE, positive=True),
        "tau_I_amy": Parameter(2.5e-3, "s", "amygdala I rate time constant", _HERE, positive=True),
        "J_NEE_limbic": Parameter(
            0.2, "nA", "recurrent E -> E NMDA of amygdala and VC/VS", _HERE, minimum=0
        ),
        "J_va": Parameter(0.15, "nA", "vACC E -> amygdala E (NMDA gate)", _HERE, minimum=0),
        "J_sv": Parameter(0.3, "nA", "VC/VS E -> vACC I (NMDA gate)", _HERE, minimum=0),
        "g_stim_vcvs": Parameter(
            10.0, "nA/mA", "VC/VS E current per mA of mean cathodic current", _HERE, minimum=0
        ),
    }
    references = (
        "Scangos KW et al. (2021) Nat Med 27:1696-1700",
        *MddCingulofrontal.references,
    )


_W = AREA_WIDTH
_U = 4 * _W
_MEAN = _U + 1


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
    target = rec.stim_node
    sense = rec.sense_node
    for j in range(n_steps):
        t = (step0 + j) * dt
        u = x[i, _U] + k_u * (drive[i, j] - x[i, _U])
        x[i, _U] = u
        onto_i = rec.g_stim * u
        # Inputs from the state at the start of the step (all areas see the same time).
        s_v = x[i, 2]
        s_d = x[i, _W + 2]
        s_s = x[i, 3 * _W + 2]
        ext_ev = rec.emo_amp_na * pulse_on(t, rec.emo_onset_s, rec.emo_dur_s, rec.emo_period_s)
        ext_ev += rec.g_leak_E * rec.ssri_shift_mv
        ext_ed = rec.cog_amp_na * pulse_on(t, rec.cog_onset_s, rec.cog_dur_s, rec.cog_period_s)
        ext_iv = rec.J_X * s_d + rec.J_sv * s_s + (onto_i if target == 0 else 0.0)
        ext_id = rec.J_X * s_v + (onto_i if target == 1 else 0.0)
        ext_ea = rec.J_va * s_v
        ext_ia = onto_i if target == 2 else 0.0
        ext_es = rec.g_stim_vcvs * u if target == 3 else 0.0
        area_step(
            x, i, 0, ext_ev, ext_iv, j_nee_v, tau_a_v, rec.tau_E, rec.tau_I, rec, dt, dec, dec,
            f_e, f_i, rng,
        )  # fmt: skip
        area_step(
            x, i, 1, ext_ed, ext_id, rec.J_NEE, rec.tau_AMPA, rec.tau_E, rec.tau_I, rec, dt,
            dec, dec, f_e, f_i, rng,
        )  # fmt: skip
        area_step(
            x, i, 2, ext_ea, ext_ia, rec.J_NEE_limbic, rec.tau_AMPA, rec.tau_E_amy,
            rec.tau_I_amy, rec, dt, dec, dec, f_e, f_i, rng,
        )  # fmt: skip
        area_step(
            x, i, 3, ext_es, 0.0, rec.J_NEE_limbic, rec.tau_AMPA, rec.tau_E, rec.tau_I, rec, dt,
            dec, dec, f_e, f_i, rng,
        )  # fmt: skip
        for a in range(4):
            x[i, _MEAN + a] += k_m * (x[i, a * _W] - x[i, _MEAN + a])
        if sense == 0:
            out[i, j] = area_lfp(x, i, 0, j_nee_v, rec)
        elif sense == 1:
            out[i, j] = area_lfp(x, i, 1, rec.J_NEE, rec)
        else:
            out[i, j] = area_lfp(x, i, sense, rec.J_NEE_limbic, rec)


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
