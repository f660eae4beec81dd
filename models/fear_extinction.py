"""Fear and extinction populations of the basal amygdala, with CS plasticity in the kernel.

The mean-field (rate) form of Vlachos, Herry, Luethi, Aertsen & Kumar (2011):
two populations of basal amygdala (BA) principal cells, fear neurons (``A``)
and extinction neurons (``B``), inhibit each other (feedback inhibition
through the BA interneurons, reduced to a direct negative weight), both
receive the conditioned stimulus (CS), and each receives its own context
input (``A`` the conditioning context, ``B`` the extinction context, carried
by hippocampal and prefrontal afferents). The CS weight of a population
grows whenever CS and that population's context coincide, so the
population whose context accompanied most CS presentations wins the
competition: ``A`` during conditioning in context A, ``B`` after enough CS
presentations in context B. Equations 1-4 of the paper, as given in
Carvalho et al. (2021)::

    tau dR_i/dt   = -R_i + eta + (k - r R_i) f(I_i)
    f(x)          = 1 / (1 + exp(-p (x - theta)))
    I_i           = -w_inh R_j + w_CS,i CS + w_ctx CTX_i        (j the partner of i)
    dw_CS,i/dt    = alpha CS CTX_i

Indices. The published mean-field script (Carvalho et al. 2021,
``code/mean_field_model.py``) computes the input of population ``i`` from
the partner's CS weight and context, ``w_cs[j] CS + CTX[j]``, and updates
``w_cs[j]``; its plot then labels row 1 "pop A" and row 0 "pop B". The two
swaps cancel: the script is equations 1-4 with the rows named the other way
round. This module uses the paper's indices (each population its own CS
weight and context), which gives the script's figure with the rows named as
in the paper.

Units and time. The script's time unit is the millisecond (its figure's
axis, and CS pulses of 50 at 200 intervals match the spiking model's 50 ms
CS every 200 ms), so ``tau = 10`` is 10 ms and ``alpha = 0.15`` per ms is
150 1/s here. Rates ``R``, inputs, weights and the CS and context
amplitudes are dimensionless: the script divides the spiking model's input
rates (CS 500 Hz, context 300 Hz) by 1000 to get 0.5 and 0.3. The script's
noise, ``N(0.02, 0.002)`` drawn each 0.1 ms step and integrated with weight
``dt/tau``, is a constant drive ``eta = 0.02`` plus white noise of intensity
``sigma = 0.002`` 1/sqrt(s) at ``dt = 0.1`` ms; this module keeps the drive
and makes the noise a proper Wiener increment (``sigma sqrt(dt)`` per step,
independent of ``dt``). Integration is Heun's method (the script: Euler, the
same within 1e-3 here).

Protocol
--------
The CS and context inputs follow a schedule given by parameters (all times
in s, whole integration steps). Four phases, each skipped when its trial
count is 0: conditioning in context A (``n_conditioning`` CS), extinction
in context B (``n_extinction``), a renewal test back in context A
(``n_renewal``), and after ``recovery_delay_s`` a spontaneous-recovery test
in context B (``n_recovery``). The first context starts at t = 0 with its
first CS at ``first_cs_s``; later phases switch their context on ``lead_s``
before their first CS. CS pulses last ``cs_duration_s`` every
``cs_period_s``; a context stays on ``tail_s`` after its last CS ends, then
no context is on for ``gap_s`` (or ``recovery_delay_s`` before the recovery
test). The defaults are the script's protocol: context A from 0 s, 5 CS at
0.5-1.3 s, A off at 1.4 s, B on at 1.45 s, 6 CS at 1.55-2.55 s (the script
leaves B on to the end; here B goes off at 2.65 s). Time counts from the
start of the recorded run: ``loop.warm_up`` resets the step count, but the
protocol runs during a warm-up too, so keep ``warmup_s`` below
``first_cs_s`` (0 is best: the model starts at rest).

Stimulation: an IL/vmPFC node
-----------------------------
Nodes: ``basal_amygdala`` (sensed, the two populations) and ``il`` (the
infralimbic cortex, stimulated). The device's average cathodic current per
step ``I_cath`` (mA) drives the IL node, a leaky rate unit::

    tau_il dR_il/dt = -R_il + g_il I_cath

IL projects onto BA extinction neurons (Senn et al. 2014; extinction needs
IL activity, Milad & Quirk 2002) and is one of the prefrontal sources of the
context input the paper names, so here its output adds to the extinction
context line: ``CTX_B -> CTX_B + w_il R_il`` in the input of ``B`` and,
scaled by ``il_plasticity`` (0 to 1), in its learning rule. Stimulation
therefore excites extinction neurons while it lasts and, paired with CS
presentations, speeds the growth of their CS weight, so extinction learned
with stimulation persists after it. This pathway and its numbers are a
modelling choice, not from the paper: ``tau_il = 10`` ms (the BA time
constant) and ``g_il = 23`` per mA, so that a 1 mA, 100 us, 130 Hz train
(0.013 mA mean cathodic current) gives ``R_il = 0.3``, as strong as a
context input.

Signal
------
A field-potential proxy of basal amygdala activity weighted towards fear
neurons: ``R_A + lfp_weight_B R_B`` (dimensionless rate units). The
populations are equally large (20 % of BA principal cells each in the
spiking model); ``lfp_weight_B = 0.25`` (a choice) puts the electrode
nearer the fear ensemble, so the signal tracks fear expression.

Learned state
-------------
The CS weights ``w_cs_A``, ``w_cs_B`` are state, carried across
``advance`` calls, restored to ``w_cs0`` by ``reset`` and independent per
instance. So is each population's mean rate during the last complete CS
presentation (``cs_rate_A``, ``cs_rate_B``: the per-CS response of the
paper's Figure 4A, freezing's proxy) and the number of CS presentations so
far; :meth:`FearExtinction.observables` returns them for the recorder.

What this model can and cannot do
---------------------------------
- Context decides which population wins for equal CS weights; renewal
  (fear returning when the CS comes back in context A) needs the extinction
  weight to stay within the context drive of the fear weight,
  ``|w_cs_B - w_cs_A| CS < w_ctx CTX`` (0.6 in weight with the defaults,
  about half of one trial's growth of 1.125). As many extinction as
  conditioning trials give renewal (fear neurons 0.56 against 0.41 on the
  test CS in context A); the script's 6 extinction trials after 5
  conditioning trials leave the two tied there (0.537 against 0.541), and 8
  leave ``B`` clearly ahead. In the spiking model the context weights are
  plastic as well; in this mean-field form they are fixed.
- Published result reproduced (tests): the mean rates during each of the 5
  conditioning and 6 extinction CS of Carvalho et al. (2021) Figure 1A (the
  re-implementation of Vlachos et al. 2011 Figure 4), fear neurons 0.107 ->
  0.515 in context A, then 0.513 -> 0.410 in context B while extinction
  neurons rise 0.078 -> 0.561, overtaking at the 6th extinction CS; this
  module gives 0.107 -> 0.516, 0.514 -> 0.410 and 0.078 -> 0.562, with the
  CS weights of their Figure 1B (6.625 and 7.75).
- No spontaneous recovery: the weights only grow and nothing in the model
  depends on elapsed time, so after any delay the CS evokes what it evoked
  at the end of extinction. The schedule keeps the recovery test for
  models or controllers that add forgetting.

References
----------
Vlachos I, Herry C, Luethi A, Aertsen A, Kumar A (2011) Context-dependent
encoding of fear and extinction memories in a large-scale network model of
the basal amygdala. PLoS Comput Biol 7:e1001104.
Carvalho TTA, Domingos LB, Shimoura RO, Kamiji NL, Lima V, Copelli M, Roque
AC (2021) [Re] Context-dependent encoding of fear and extinction memories in
a large-scale network model of the basal amygdala. ReScience C 7(1):#4
(code: github.com/tawantayron/RE-Fear-and-extinction-in-a-BA-net-model).
Milad MR, Quirk GJ (2002) Neurons in medial prefrontal cortex signal memory
for fear extinction. Nature 420:70-74.
Senn V, Wolff SBE, Herry C, et al. (2014) Long-range connectivity defines
behavioral specificity of amygdala neurons. Neuron 81:428-437.
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

__all__ = ["PHASES", "FearExtinction"]

_VL = "Vlachos et al. 2011, mean-field values of Carvalho et al. 2021 (ReScience C 7:4)"
_VL_MS = _VL + "; script time unit ms mapped to s"
_SCRIPT = "Carvalho et al. 2021, mean_field_model.py protocol (ms mapped to s)"
_HERE = "closedloop (modelling choice, see module notes)"

#: The protocol's phases in order: (name, context, trial-count parameter).
PHASES = (
    ("conditioning", "A", "n_conditioning"),
    ("extinction", "B", "n_extinction"),
    ("renewal", "A", "n_renewal"),
    ("recovery", "B", "n_recovery"),
)

# Columns of the state array x (n, _N_STATE).
_RA, _RB, _RIL, _WA, _WB, _SUMA, _SUMB, _CNT, _LASTA, _LASTB, _TRIALS = range(11)
_N_STATE = 11

_DURATIONS = (
    "first_cs_s",
    "lead_s",
    "cs_duration_s",
    "cs_period_s",
    "tail_s",
    "gap_s",
    "recovery_delay_s",
)


def _steps_parameter(value: float, description: str, reference: str = _SCRIPT) -> Parameter:
    return Parameter(value, "s", description, reference, minimum=0.0, whole_steps=True)


def _count_parameter(value: float, description: str) -> Parameter:
    return Parameter(value, "1", description, _SCRIPT, minimum=0.0, maximum=1e6)


class FearExtinction(NumbaModel):
    """Basal amygdala fear/extinction competition with context-gated CS learning.

    Mean-field form of Vlachos et al. (2011), plus an infralimbic (IL)
    node that receives the stimulation. See the module docstring for the
    equations, the protocol schedule, units, the stimulation pathway and
    what the model cannot do (no spontaneous recovery).
    """

    name = "fear_extinction"
    #: Named nodes and their fixed roles: the signal is sensed from
    #: ``sense_node`` and the device stimulates ``stim_node``; the effect
    #: reaches the amygdala through the IL -> extinction-neuron projection.
    nodes: ClassVar[tuple[str, ...]] = ("basal_amygdala", "il")
    default_sense_node: ClassVar[str] = "basal_amygdala"
    default_stim_node: ClassVar[str] = "il"
    fixed_node_roles: ClassVar[bool] = True
    #: Parameters a drug layer may change while running (read by the kernel at
    #: every advance): excitability, feedback inhibition (GABAergic drugs),
    #: extinction learning rate (e.g. D-cycloserine), background drive.
    modulatable: ClassVar[tuple[str, ...]] = ("theta", "w_inh", "alpha_hz", "eta")
    state_variables = {
        "R_A": "1",
        "R_B": "1",
        "R_il": "1",
        "w_cs_A": "1",
        "w_cs_B": "1",
        "cs_sum_A": "1",
        "cs_sum_B": "1",
        "cs_count": "1",
        "cs_rate_A": "1",
        "cs_rate_B": "1",
        "cs_trials": "1",
    }
    signal_name = "ba_lfp"
    signal_units = "1"
    signal_description = (
        "basal amygdala field-potential proxy R_A + lfp_weight_B R_B (dimensionless rates, "
        "weighted towards fear neurons)"
    )
    stimulation_units = "mA"
    stimulation_description = (
        "average cathodic current per integration step into the IL/vmPFC node, mA; the IL "
        "rate (tau_il, g_il per mA) adds w_il R_il to the extinction neurons' context input "
        "and, scaled by il_plasticity, to their CS learning"
    )
    parameters = {
        "tau_s": Parameter(10e-3, "s", "population time constant tau", _VL_MS, positive=True),
        "k": Parameter(0.97, "1", "maximum rate factor k", _VL, positive=True),
        "r": Parameter(1e-3, "1", "refractoriness r", _VL, minimum=0.0),
        "p": Parameter(1.2, "1", "sigmoid steepness", _VL, positive=True),
        "theta": Parameter(2.8, "1", "sigmoid threshold", _VL),
        "w_inh": Parameter(1.0, "1", "mutual inhibition weight (I_i gets -w_inh R_j)", _VL),
        "w_ctx": Parameter(1.0, "1", "context weight", _VL, minimum=0.0),
        "w_cs0": Parameter(1.0, "1", "initial CS weight of both populations", _VL, minimum=0.0),
        "alpha_hz": Parameter(150.0, "1/s", "CS learning rate (0.15 per ms)", _VL_MS, minimum=0.0),
        "cs_amplitude": Parameter(0.5, "1", "CS input (500 Hz / 1000)", _VL, minimum=0.0),
        "ctx_amplitude": Parameter(0.3, "1", "context input (300 Hz / 1000)", _VL, minimum=0.0),
        "eta": Parameter(0.02, "1", "constant background drive (noise mean)", _VL),
        "sigma": Parameter(
            2e-3, "1/sqrt(s)", "white-noise intensity (the script's at dt = 0.1 ms)", _VL, minimum=0
        ),
        "first_cs_s": _steps_parameter(0.5, "first CS onset (context A on from 0 s)"),
        "lead_s": _steps_parameter(0.1, "context onset to first CS, later phases"),
        "cs_duration_s": Parameter(
            0.05, "s", "CS pulse duration", _SCRIPT, positive=True, whole_steps=True
        ),
        "cs_period_s": Parameter(
            0.2, "s", "CS onset-to-onset interval", _SCRIPT, positive=True, whole_steps=True
        ),
        "tail_s": _steps_parameter(0.05, "context stays on after the last CS ends"),
        "gap_s": _steps_parameter(0.05, "no context between phases"),
        "recovery_delay_s": _steps_parameter(
            10.0, "no input between the last phase and the recovery test", _HERE
        ),
        "n_conditioning": _count_parameter(5, "CS presentations in context A"),
        "n_extinction": _count_parameter(6, "CS presentations in context B"),
        "n_renewal": _count_parameter(0, "renewal-test CS back in context A"),
        "n_recovery": _count_parameter(0, "recovery-test CS in context B after the delay"),
        "tau_il_s": Parameter(10e-3, "s", "IL node time constant", _HERE, positive=True),
        "g_il": Parameter(
            23.0, "1/mA", "IL rate per mA of mean cathodic current", _HERE, minimum=0
        ),
        "w_il": Parameter(1.0, "1", "IL to extinction-context weight", _HERE, minimum=0.0),
        "il_plasticity": Parameter(
            1.0, "1", "share of IL input that gates CS learning of B", _HERE, minimum=0, maximum=1
        ),
        "lfp_weight_B": Parameter(
            0.25, "1", "extinction-population weight in the signal", _HERE, minimum=0.0
        ),
    }
    references = (
        "Vlachos I, Herry C, Luethi A, Aertsen A, Kumar A (2011) PLoS Comput Biol 7:e1001104",
        "Carvalho TTA et al. (2021) ReScience C 7(1):#4",
        "Milad MR, Quirk GJ (2002) Nature 420:70-74",
        "Senn V et al. (2014) Neuron 81:428-437",
    )
    derived_fields = (
        ("cs_steps_", np.int64),
        ("period_steps_", np.int64),
        *((f"{kind}{k}_", np.int64) for k in range(4) for kind in ("start", "first", "end", "n")),
    )

    def _fill_derived(self, rec: np.ndarray) -> None:
        for key in ("n_conditioning", "n_extinction", "n_renewal", "n_recovery"):
            if np.any(rec[key] != np.round(rec[key])):
                raise ValueError(
                    f"model parameter {key!r} must be a whole number of CS presentations, "
                    f"got {rec[key].tolist()}"
                )
        if np.any(rec["cs_duration_s"] > rec["cs_period_s"]):
            raise ValueError(
                "model parameter 'cs_duration_s' must not exceed 'cs_period_s' "
                f"({rec['cs_duration_s'].tolist()} > {rec['cs_period_s'].tolist()} s)"
            )
        steps = {key: self.steps(rec[key]) for key in _DURATIONS}
        rec["cs_steps_"] = steps["cs_duration_s"]
        rec["period_steps_"] = steps["cs_period_s"]
        cursor = np.zeros(self.n, dtype=np.int64)
        for k, (_, _, count) in enumerate(PHASES):
            n = np.round(rec[count]).astype(np.int64)
            if k == 3:  # the recovery test waits recovery_delay_s, not gap_s
                cursor = cursor - steps["gap_s"] * (cursor > 0) + steps["recovery_delay_s"]
            first = cursor + (steps["first_cs_s"] if k == 0 else steps["lead_s"])
            end = first + (n - 1) * steps["cs_period_s"] + steps["cs_duration_s"] + steps["tail_s"]
            on = n > 0
            rec[f"start{k}_"] = cursor
            rec[f"first{k}_"] = np.where(on, first, cursor)
            rec[f"end{k}_"] = np.where(on, end, cursor)
            rec[f"n{k}_"] = n
            cursor = np.where(on, end + steps["gap_s"], cursor)

    def _initial_state(self) -> dict[str, np.ndarray]:
        x = np.zeros((self.n, _N_STATE))
        x[:, _WA] = self.param_values["w_cs0"]
        x[:, _WB] = self.param_values["w_cs0"]
        return {"x": x}

    def kernel_state(self) -> tuple:
        return (self.state["x"], self.record, self.rng_)

    def cs_trials(self, instance: int = 0) -> list[tuple[str, str, float]]:
        """The CS presentations of the protocol, in order.

        Parameters
        ----------
        instance : int
            Which instance's schedule (parameters may differ per instance).

        Returns
        -------
        list of (phase, context, onset_s)
            Phase name (:data:`PHASES`), its context (``"A"`` or ``"B"``)
            and the CS onset, s from the start of the run.
        """
        rec = self.record[instance]
        trials = []
        for k, (phase, context, _) in enumerate(PHASES):
            for m in range(int(rec[f"n{k}_"])):
                onset = int(rec[f"first{k}_"]) + m * int(rec["period_steps_"])
                trials.append((phase, context, onset * self.dt_s))
        return trials

    def observables(self) -> dict[str, np.ndarray]:
        """Learned weights and the last CS response, now, shape ``(n,)`` each.

        Returns
        -------
        dict of str to ndarray
            ``w_cs_A``, ``w_cs_B``: the CS weights of fear and extinction
            neurons (dimensionless); ``cs_rate_A``, ``cs_rate_B``: each
            population's mean rate over the last complete CS presentation
            (0 before the first); ``cs_trials``: CS presentations completed;
            ``cs_phase``: the :data:`PHASES` index of the last one (-1 before).
        """
        x = self.state["x"]
        return {
            "w_cs_A": x[:, _WA].copy(),
            "w_cs_B": x[:, _WB].copy(),
            "cs_rate_A": x[:, _LASTA].copy(),
            "cs_rate_B": x[:, _LASTB].copy(),
            "cs_trials": x[:, _TRIALS].copy(),
            "cs_phase": self._phase_of(x[:, _TRIALS]),
        }

    def _phase_of(self, trials: np.ndarray) -> np.ndarray:
        """Index into :data:`PHASES` of the last completed CS (-1 before the first)."""
        counts = np.stack([self.record[f"n{k}_"] for k in range(len(PHASES))], axis=1)
        ends = np.cumsum(counts, axis=1)  # trials completed at the end of each phase
        phase = (trials[:, None] > ends).sum(axis=1).astype(float)
        return np.where(trials > 0, phase, -1.0)


@njit(cache=True, inline="always")
def _in_phase(step, start, first, end, n, cs_steps, period):
    """(context on, CS on) of one phase at integration step ``step``."""
    if step < start or step >= end:
        return False, False
    rel = step - first
    if rel < 0:
        return True, False
    m = rel // period
    return True, m < n and rel - m * period < cs_steps


@njit(cache=True)
def _protocol(rec, step):
    """Whether the CS is on, and the CS, context A and context B inputs, at ``step``."""
    cs_steps = rec.cs_steps_
    period = rec.period_steps_
    ctx0, cs0 = _in_phase(step, rec.start0_, rec.first0_, rec.end0_, rec.n0_, cs_steps, period)
    ctx1, cs1 = _in_phase(step, rec.start1_, rec.first1_, rec.end1_, rec.n1_, cs_steps, period)
    ctx2, cs2 = _in_phase(step, rec.start2_, rec.first2_, rec.end2_, rec.n2_, cs_steps, period)
    ctx3, cs3 = _in_phase(step, rec.start3_, rec.first3_, rec.end3_, rec.n3_, cs_steps, period)
    cs_on = cs0 or cs1 or cs2 or cs3
    cs = rec.cs_amplitude if cs_on else 0.0
    ctx_a = rec.ctx_amplitude if (ctx0 or ctx2) else 0.0
    ctx_b = rec.ctx_amplitude if (ctx1 or ctx3) else 0.0
    return cs_on, cs, ctx_a, ctx_b


@njit(cache=True, inline="always")
def _derivatives(rec, r_a, r_b, r_il, w_a, w_b, cs, ctx_a, ctx_b, drive):
    """d/dt of (R_A, R_B, R_il, w_cs_A, w_cs_B), 1/s."""
    il = rec.w_il * r_il
    in_a = -rec.w_inh * r_b + w_a * cs + rec.w_ctx * ctx_a
    in_b = -rec.w_inh * r_a + w_b * cs + rec.w_ctx * (ctx_b + il)
    f_a = 1.0 / (1.0 + math.exp(-rec.p * (in_a - rec.theta)))
    f_b = 1.0 / (1.0 + math.exp(-rec.p * (in_b - rec.theta)))
    d_a = (-r_a + rec.eta + (rec.k - rec.r * r_a) * f_a) / rec.tau_s
    d_b = (-r_b + rec.eta + (rec.k - rec.r * r_b) * f_b) / rec.tau_s
    d_il = (rec.g_il * drive - r_il) / rec.tau_il_s
    d_wa = rec.alpha_hz * cs * ctx_a
    d_wb = rec.alpha_hz * cs * (ctx_b + rec.il_plasticity * il)
    return d_a, d_b, d_il, d_wa, d_wb


@njit(cache=True)
def advance_one(i, n_steps, step0, dt, model, drive, out):
    # Heun's method on all five variables (stochastic Heun for the additive
    # noise: the same increments in predictor and corrector). The protocol
    # and the drive are constant over a step.
    x, p, rng = model
    rec = p[i]
    r_a, r_b, r_il = x[i, _RA], x[i, _RB], x[i, _RIL]
    w_a, w_b = x[i, _WA], x[i, _WB]
    noise = rec.sigma * math.sqrt(dt)
    for j in range(n_steps):
        cs_on, cs, ctx_a, ctx_b = _protocol(rec, step0 + j)
        u = drive[i, j]
        n_a = noise * normal(rng, i) if noise > 0.0 else 0.0
        n_b = noise * normal(rng, i) if noise > 0.0 else 0.0
        k_a, k_b, k_il, k_wa, k_wb = _derivatives(
            rec, r_a, r_b, r_il, w_a, w_b, cs, ctx_a, ctx_b, u
        )
        pa = r_a + dt * k_a + n_a
        pb = r_b + dt * k_b + n_b
        pil = r_il + dt * k_il
        pwa = w_a + dt * k_wa
        pwb = w_b + dt * k_wb
        l_a, l_b, l_il, l_wa, l_wb = _derivatives(rec, pa, pb, pil, pwa, pwb, cs, ctx_a, ctx_b, u)
        h = 0.5 * dt
        r_a += h * (k_a + l_a) + n_a
        r_b += h * (k_b + l_b) + n_b
        r_il += h * (k_il + l_il)
        w_a += h * (k_wa + l_wa)
        w_b += h * (k_wb + l_wb)
        # The response to each CS: mean rates while it is on, kept at its end.
        if cs_on:
            x[i, _SUMA] += r_a
            x[i, _SUMB] += r_b
            x[i, _CNT] += 1.0
        elif x[i, _CNT] > 0.0:
            x[i, _LASTA] = x[i, _SUMA] / x[i, _CNT]
            x[i, _LASTB] = x[i, _SUMB] / x[i, _CNT]
            x[i, _TRIALS] += 1.0
            x[i, _SUMA] = 0.0
            x[i, _SUMB] = 0.0
            x[i, _CNT] = 0.0
        out[i, j] = r_a + rec.lfp_weight_B * r_b
    x[i, _RA], x[i, _RB], x[i, _RIL] = r_a, r_b, r_il
    x[i, _WA], x[i, _WB] = w_a, w_b


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
