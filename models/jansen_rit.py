"""Jansen-Rit cortical column: the alpha rhythm of a neural mass.

Three populations, pyramidal cells and excitatory and inhibitory
interneurons, each turning the mean membrane potential it receives into a
mean firing rate through a sigmoid, and each synapse turning a firing rate
into a postsynaptic potential through a second-order kernel (Jansen & Rit
1995)::

    y0'' = A a S(y1 - y2 + g_stim u) - 2a y0' - a^2 y0
    y1'' = A a (p(t) + C2 S(C1 y0)) - 2a y1' - a^2 y1
    y2'' = B b C4 S(C3 y0) - 2b y2' - b^2 y2
    tau_stim u' = I_cath(t) - u

with ``S(v) = 2 e0 / (1 + exp(r (v0 - v)))`` (1/s), ``y0..y2`` in mV,
``C1..C4 = C1_frac*C .. C4_frac*C`` (dimensionless numbers of synapses) and
``p`` the input from other areas (pulses/s). Integration is by Heun's
method with step ``dt`` (its 0.1 ms default resolves the 10 ms synaptic
kernel with room to spare).

Input noise
-----------
Jansen & Rit drive the column with ``p`` uniformly distributed over
120-320 pulses/s. Here ``p`` is Gaussian with the same mean (``p_mean``,
220 pulses/s) and standard deviation (``p_std``, 200/sqrt(12) = 57.7
pulses/s), drawn from each instance's own seeded stream and held for
``p_hold_s`` (1 ms, chosen here; a whole number of steps) before the next
draw: a noise tied to the step would change the column's effective drive
with ``dt``, a held one does not. ``p_std = 0`` gives the deterministic
column under constant input.

Stimulation
-----------
The input is the device's average cathodic current per step ``I_cath`` (mA)
of a transcranial-style montage. Smoothed by a first-order filter ``u`` of
time constant ``tau_stim`` (10 ms, a pyramidal membrane time constant), it
shifts the pyramidal cells' mean membrane potential by ``g_stim`` mV per mA:
weak transcranial currents act by polarising pyramidal somata, which is how
neural mass models of tDCS and tACS represent them (Molaee-Ardekani et al.
2013; Merlet et al. 2013). The sign of ``g_stim`` is the polarity
(positive: depolarising, anodal-like; negative: hyperpolarising). Its value,
50 mV/mA, is set here: one 2 mA, 450 us pulse (0.9 uC) shifts the somata by
up to 4.5 mV, against the sigmoid's 1/r = 1.8 mV scale, and 10 Hz trains of
such pulses entrain and strengthen the alpha rhythm. The stimulation is not
part of the output: recording artefacts belong to the sensing chain.

Signal
------
``eeg``: ``y1 - y2`` (mV), the net postsynaptic potential of the pyramidal
cells, which Jansen & Rit take as the EEG.

Regimes
-------
``alpha`` (default)
    The standard parameters of Jansen & Rit (1995): ``A = 3.25`` mV,
    ``B = 22`` mV, ``a = 100`` 1/s, ``b = 50`` 1/s, ``C = 135``,
    ``C1..C4 = C, 0.8C, 0.25C, 0.25C``, ``e0 = 2.5`` 1/s, ``v0 = 6`` mV,
    ``r = 0.56`` 1/mV. The noise-driven output has its spectral peak near
    10.5 Hz.
``weak_alpha``
    ``A = 3.0`` mV (set here): a weaker excitatory synaptic gain, a stand-in
    for the synaptic loss behind the reduced alpha power of e.g.
    Alzheimer's disease (Jeong 2004). The alpha peak is still there, about
    six times less powerful (8-12 Hz).

References
----------
Jansen BH, Rit VG (1995) Electroencephalogram and visual evoked potential
generation in a mathematical model of coupled cortical columns.
Biol Cybern 73:357-366.
Molaee-Ardekani B et al. (2013) Effects of transcranial direct current
stimulation (tDCS) on cortical activity: a computational modeling study.
Brain Stimul 6:25-39.
Merlet I et al. (2013) From oscillatory transcranial current stimulation to
scalp EEG changes: a biophysical and physiological modeling study.
PLoS One 8:e57315.
Jeong J (2004) EEG dynamics in patients with Alzheimer's disease.
Clin Neurophysiol 115:1490-1505.
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

__all__ = ["JansenRit"]

_JR = "Jansen & Rit 1995"
_HERE = "closedloop (see module notes)"

# Columns of the state array: the three PSPs (mV), their derivatives (mV/s),
# the stimulation filter (mA), the held input p (pulses/s) and the steps
# left before the next draw of p.
_Y0, _Y1, _Y2, _Y3, _Y4, _Y5, _U, _P, _LEFT = range(9)


class JansenRit(NumbaModel):
    """Jansen-Rit cortical column (Jansen & Rit 1995).

    See the module docstring for equations, units, regimes and parameter
    provenance.
    """

    name = "jansen_rit"
    state_variables = {
        "y0": "mV",
        "y1": "mV",
        "y2": "mV",
        "y3": "mV/s",
        "y4": "mV/s",
        "y5": "mV/s",
        "u": "mA",
        "p": "pulses/s",
        "p_steps_left": "1",
    }
    signal_name = "eeg"
    signal_units = "mV"
    signal_description = "y1 - y2, net postsynaptic potential of the pyramidal cells (EEG)"
    stimulation_units = "mA"
    stimulation_description = (
        "average cathodic current per integration step of a transcranial-style montage, mA; "
        "smoothed by a first-order filter (tau_stim), it shifts the pyramidal membrane "
        "potential by g_stim mV per mA"
    )
    parameters = {
        "A": Parameter(3.25, "mV", "excitatory synaptic gain", _JR, positive=True),
        "B": Parameter(22.0, "mV", "inhibitory synaptic gain", _JR, positive=True),
        "a": Parameter(100.0, "1/s", "excitatory synaptic rate constant", _JR, positive=True),
        "b": Parameter(50.0, "1/s", "inhibitory synaptic rate constant", _JR, positive=True),
        "C": Parameter(135.0, "1", "connectivity constant", _JR, minimum=0),
        "C1_frac": Parameter(1.0, "1", "C1 / C, pyramidal to excitatory", _JR, minimum=0),
        "C2_frac": Parameter(0.8, "1", "C2 / C, excitatory to pyramidal", _JR, minimum=0),
        "C3_frac": Parameter(0.25, "1", "C3 / C, pyramidal to inhibitory", _JR, minimum=0),
        "C4_frac": Parameter(0.25, "1", "C4 / C, inhibitory to pyramidal", _JR, minimum=0),
        "e0": Parameter(2.5, "1/s", "half the maximal firing rate", _JR, positive=True),
        "v0": Parameter(6.0, "mV", "potential at half the maximal rate", _JR),
        "r": Parameter(0.56, "1/mV", "sigmoid steepness", _JR, positive=True),
        "p_mean": Parameter(220.0, "pulses/s", "mean input from other areas", _JR, minimum=0),
        "p_std": Parameter(
            57.7,
            "pulses/s",
            "input standard deviation (uniform 120-320 in the paper)",
            _JR,
            minimum=0,
        ),
        "p_hold_s": Parameter(
            1e-3, "s", "time each input draw is held", _HERE, positive=True, whole_steps=True
        ),
        "g_stim": Parameter(
            50.0, "mV/mA", "pyramidal polarisation per mA of mean cathodic current", _HERE
        ),
        "tau_stim": Parameter(
            10e-3, "s", "stimulation input filter time constant", _HERE, positive=True
        ),
    }
    regimes = {"alpha": {}, "weak_alpha": {"A": 3.0}}
    default_regime = "alpha"
    references = ("Jansen BH, Rit VG (1995) Biol Cybern 73:357-366",)
    derived_fields = (("hold_steps", np.int64),)

    def _fill_derived(self, rec: np.ndarray) -> None:
        rec["hold_steps"] = self.steps(rec["p_hold_s"])

    def _initial_state(self) -> dict[str, np.ndarray]:
        # PSPs at rest; the first step draws p.
        return {"x": np.zeros((self.n, 9))}

    def kernel_state(self) -> tuple:
        return (self.state["x"], self.record, self.rng_)


@njit(cache=True, inline="always")
def _rates(rec, c1, c2, c3, c4, y0, y1, y2, y3, y4, y5, u, p):
    """Derivatives of y0..y5 (mV/s and mV/s^2)."""
    two_e0 = 2.0 * rec.e0
    s_pyr = two_e0 / (1.0 + math.exp(rec.r * (rec.v0 - (y1 - y2 + rec.g_stim * u))))
    s_exc = two_e0 / (1.0 + math.exp(rec.r * (rec.v0 - c1 * y0)))
    s_inh = two_e0 / (1.0 + math.exp(rec.r * (rec.v0 - c3 * y0)))
    a = rec.a
    b = rec.b
    d3 = rec.A * a * s_pyr - 2.0 * a * y3 - a * a * y0
    d4 = rec.A * a * (p + c2 * s_exc) - 2.0 * a * y4 - a * a * y1
    d5 = rec.B * b * c4 * s_inh - 2.0 * b * y5 - b * b * y2
    return d3, d4, d5


@njit(cache=True)
def advance_one(i, n_steps, step0, dt, model, drive, out):
    x, params, rng = model
    rec = params[i]
    c1 = rec.C1_frac * rec.C
    c2 = rec.C2_frac * rec.C
    c3 = rec.C3_frac * rec.C
    c4 = rec.C4_frac * rec.C
    y0, y1, y2 = x[i, _Y0], x[i, _Y1], x[i, _Y2]
    y3, y4, y5 = x[i, _Y3], x[i, _Y4], x[i, _Y5]
    u = x[i, _U]
    p = x[i, _P]
    left = int(x[i, _LEFT])
    k_u = dt / rec.tau_stim
    h = 0.5 * dt
    for j in range(n_steps):
        # A countdown rather than a modulo of the global step: chunk invariant
        # and cheaper.
        if left <= 0:
            p = rec.p_mean + rec.p_std * normal(rng, i) if rec.p_std > 0.0 else rec.p_mean
            left = rec.hold_steps
        left -= 1
        u_pred = u + k_u * (drive[i, j] - u)
        d3, d4, d5 = _rates(rec, c1, c2, c3, c4, y0, y1, y2, y3, y4, y5, u, p)
        q0, q1, q2 = y0 + dt * y3, y1 + dt * y4, y2 + dt * y5
        q3, q4, q5 = y3 + dt * d3, y4 + dt * d4, y5 + dt * d5
        e3, e4, e5 = _rates(rec, c1, c2, c3, c4, q0, q1, q2, q3, q4, q5, u_pred, p)
        y0 += h * (y3 + q3)
        y1 += h * (y4 + q4)
        y2 += h * (y5 + q5)
        y3 += h * (d3 + e3)
        y4 += h * (d4 + e4)
        y5 += h * (d5 + e5)
        u += 0.5 * k_u * (2.0 * drive[i, j] - u - u_pred)
        out[i, j] = y1 - y2
    x[i, _Y0], x[i, _Y1], x[i, _Y2] = y0, y1, y2
    x[i, _Y3], x[i, _Y4], x[i, _Y5] = y3, y4, y5
    x[i, _U] = u
    x[i, _P] = p
    x[i, _LEFT] = left


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
