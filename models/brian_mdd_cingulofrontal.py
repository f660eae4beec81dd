"""Spiking cingulo-frontal network of major depression (vACC and dlPFC), in Brian2.

A port of the two-area model of Ramirez-Mahaluf, Roxin, Mayberg & Compte
(2017), written here from the published equations and parameter values (the
values as given in the authors' ModelDB entry 240954; no code is taken from
it). Two cortical areas, the ventral anterior cingulate cortex (vACC,
"emotional") and the dorsolateral prefrontal cortex (dlPFC, "cognitive"), each
of ``N_E`` pyramidal (E) and ``N_I`` inhibitory (I) leaky integrate-and-fire
neurons, all-to-all inside an area (the paper's ``S = 1``, autapses included).
The areas reach each other only through the other area's interneurons
(vACC E -> dlPFC I, dlPFC E -> vACC I): mutual inhibition, so that activating
one area silences the other. Each membrane follows (conductances relative to
the leak, dimensionless)::

    tau_m dv/dt = -g_A v - g_N S v / (1 + exp(-v / 16.129 mV) / 3.57)
                  - g_G (v - E_GABA) - (v - E_L)
    dg_A/dt = -g_A / tau_AMPA     (+= w at each AMPA spike: recurrent, background, task)
    dg_G/dt = -g_G / tau_GABA     (+= w at each GABA spike)
    S = sum over the area's E cells j of s_j, weighted by w_NMDA
    ds_j/dt = -s_j / tau_NMDA + alpha x_j (1 - s_j),   dx_j/dt = -x_j / tau_x,
    x_j += 1 at each spike of E cell j

with threshold -50 mV, reset -55 mV, refractory 2 ms (E) and 1 ms (I); the
NMDA magnesium block is Jahr & Stevens' with [Mg2+] = 1 mM (1 / 0.062 mV^-1 =
16.129 mV). Each E and I cell receives its own background Poisson train
(1800 Hz, weight ``w_ext_E`` / ``w_ext_I`` onto ``g_A``; at most one event
per integration step, as the paper's Poisson generators). Weights inside an
area are the paper's values times ``100 / N_E`` (its rescaling for network
size); the cross-area weight too.

Regimes
-------
Depression is a slower AMPA decay in the vACC (both its E and I cells, as in
the published code; the dlPFC keeps 2 ms): ``healthy`` 2.0 ms, ``mdd_mild``
2.05, ``mdd_moderate`` 2.10, ``mdd_severe`` 2.15 ms (+2.5 / 5 / 7.5 %).

Task inputs
-----------
An emotional ("sadness") burst to every vACC E cell and a cognitive
("working memory") burst to every dlPFC E cell, each an independent Poisson
train of ``task_rate_hz`` (800 Hz) with weight ``w_task`` (0.0955) onto
``g_A``, as in the published code. The schedule, in network time from
:meth:`reset` (a loop's warm-up included), is per instance: the emotional
burst from ``emotional_onset_s`` for ``emotional_duration_s``, the cognitive
one from ``cognitive_onset_s`` for ``cognitive_duration_s``; with
``task_period_s > 0`` both repeat with that period (0: once). Defaults are
the published code's: emotional 4.5-5.525 s, cognitive 6.0-6.525 s, once.

Treatments
----------
*SSRI-like*: the resting potential of the vACC pyramidal cells,
``E_L_vACC_mV`` (the published code's ``Elv``; -70 mV untreated).
*DBS*: the device's pulses onto the vACC interneurons, as a conductance kick
of the same AMPA-like form as the paper's DBS (a regular 130 Hz train onto
``g_A`` of every vACC I cell)::

    dg_A/dt = ... + g_DBS_per_uC * 1000 * dbs_w * I_cath(t) / s

``I_cath``: the device's average cathodic current per step (mA), so a pulse
of charge ``Q`` (uC) adds ``g_DBS_per_uC * Q`` to ``g_A`` whatever ``dt``;
``dbs_w`` is 1 for the first ``dbs_fraction`` of the vACC I cells.

Field-potential proxy
---------------------
``lfp`` is the sum over the E cells of the sensed area of the absolute
synaptic currents, ``sum_k |I_AMPA| + |I_NMDA| + |I_GABA|`` (nA), with
``I_X = g_X (C / tau_m) (v - E_X)`` (leak conductance 25 nS for E cells);
the summed-absolute-current proxy of Mazzoni et al. (2008, 2015). The area
is ``sensed_area`` (0: vACC, the default; 1: dlPFC), one for the whole
batch: DBS goes to the vACC interneurons whichever area is sensed, so with
``sensed_area: 1`` the effect reaches the sensor through the network.
Population rates ``vacc_e``, ``vacc_i``, ``dlpfc_e``, ``dlpfc_i``
(spikes/s per neuron) can be recorded (``brian.record_rates``).

Parameter provenance
--------------------
Every neuron, synapse, input and regime value is the published model's
(ModelDB 240954, the code of Ramirez-Mahaluf et al. 2017), including the
vACC I -> I weight, which the published code sets equal to I -> E (0.005)
while the dlPFC uses 0.004865. Two gains are **not** the paper's and were
calibrated here, because this port with the published values does not show
the paper's result (measured at 80 + 20 cells per area, dt = 0.1 ms):

* ``nmda_gain`` = 6 multiplies both NMDA weights. With gain 1 neither area
  has a persistent state: the emotional burst drives the vACC to about
  57 Hz and it falls back to baseline within 0.25 s of the burst's end in
  every regime; the severe regime only raises the vACC baseline (about
  0.5 -> 2.4 spikes/s). At 6 the healthy vACC still returns to baseline
  (within about 0.5 s of the burst) while the ``mdd_severe`` vACC sits in
  an NMDA-sustained state (about 25-30 spikes/s) that it reaches by itself
  and keeps through a concurrent dlPFC burst; at 7 the healthy vACC becomes
  bistable as well. The paper reports sustained vACC activation with its
  values; the cause of the difference was not found (the published code's
  ``N = 100/NE`` is 1 under Python 2's integer division, which would make
  the weights weaker still, not stronger).
* ``g_DBS_per_uC`` = 4: a 2.5 mA, 60 us pulse (0.15 uC) adds 0.6 to ``g_A``.
  The paper's per-pulse weight, 0.03 (0.2 per uC here), leaves the severe
  vACC state unchanged in this port; 2 per uC about halves it (measured
  once); 4 per uC returns it to baseline (tested).

Also chosen here: the initial membrane potentials (uniform between ``E_L``
and threshold, drawn per instance; the paper does not state them), the
field-potential proxy, the per-instance task schedule and its repetition
(the paper's code hard-codes the times), and the hyperpolarisation that
stands for an SSRI in the tests (-72 mV; the paper's value of ``Elv`` under
treatment was not checked).

References
----------
Ramirez-Mahaluf JP, Roxin A, Mayberg HS, Compte A (2017) A computational
model of major depression: the role of glutamate dysfunction on
cingulo-frontal network dynamics. Cereb Cortex 27:660-679. ModelDB 240954.
Compte A, Brunel N, Goldman-Rakic PS, Wang XJ (2000) Synaptic mechanisms and
network dynamics underlying spatial working memory in a cortical network
model. Cereb Cortex 10:910-923.
Jahr CE, Stevens CF (1990) Voltage dependence of NMDA-activated macroscopic
conductances predicted by single-channel kinetics. J Neurosci 10:3178-3182.
Mazzoni A, Panzeri S, Logothetis NK, Brunel N (2008) PLoS Comput Biol 4:e1000239.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from closedloop.brian.model import BrianModel, BuildContext, CumulativeSource, ModelNetwork
from closedloop.core.model import Parameter

__all__ = ["AREAS", "BrianMDDCinguloFrontal"]

#: Areas in the order ``sensed_area`` numbers them.
AREAS = ("vacc", "dlpfc")

_RM = "Ramirez-Mahaluf et al. 2017 (ModelDB 240954)"
_HERE = "closedloop (see module notes)"

# One membrane for all four populations: what differs is in per-neuron
# constants, so a parameter change never changes the generated code (one
# Cython compile serves every regime, treatment and batch).
_MEMBRANE = """
dv/dt = (-g_ampa * v - g_nmda * S_nmda * v / (1 + exp(-v / V_mg) / 3.57)
         - g_gaba * (v - E_gaba) - (v - E_L)) / tau_m : volt (unless refractory)
dg_gaba/dt = -g_gaba / tau_gaba : 1
S_nmda : 1 (linked)
E_L : volt (constant)
E_gaba : volt (constant)
V_mg : volt (constant)
V_th : volt (constant)
V_reset : volt (constant)
t_ref : second (constant)
tau_m : second (constant)
tau_ampa : second (constant)
tau_gaba : second (constant)
g_nmda : 1 (constant)
w_ext : 1 (constant)
nu_ext : hertz (constant)
nspk : 1
"""
_AMPA = "dg_ampa/dt = -g_ampa / tau_ampa : 1\n"
# vACC interneurons: the device's drive as an AMPA-like conductance.
_AMPA_DBS = """
dg_ampa/dt = -g_ampa / tau_ampa + g_dbs * dbs_w * ({drive}) : 1
g_dbs : hertz (constant)
dbs_w : 1 (constant)
"""
# Pyramidal cells: the presynaptic NMDA gate, the task input and the LFP proxy.
_PYRAMIDAL = """
ds_nmda/dt = -s_nmda / tau_nmda + alpha * x_nmda * (1 - s_nmda) : 1
dx_nmda/dt = -x_nmda / tau_x : 1
d lfp_cum/dt = (abs(g_ampa * v) + abs(g_nmda * S_nmda * v / (1 + exp(-v / V_mg) / 3.57))
                + abs(g_gaba * (v - E_gaba))) * g_leak / (nA * second) : 1
task_on = int(t >= t_on) * int((t - t_on) % t_period < t_dur) : 1
g_leak : siemens (constant)
tau_nmda : second (constant)
tau_x : second (constant)
alpha : hertz (constant)
w_task : 1 (constant)
nu_task : hertz (constant)
t_on : second (constant)
t_dur : second (constant)
t_period : second (constant)
"""


def _all_to_all(n: int, n_pre: int, n_post: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pre to every post cell of the same instance (autapses included)."""
    pre = np.tile(np.arange(n_pre), n_post)
    post = np.repeat(np.arange(n_post), n_pre)
    offsets = np.arange(n)[:, None]
    i = (pre[None, :] + offsets * n_pre).ravel()
    j = (post[None, :] + offsets * n_post).ravel()
    return i.astype(np.int32), j.astype(np.int32)


def _p(value: float, units: str, description: str, reference: str = _RM, **kw: Any) -> Parameter:
    return Parameter(value, units, description, reference, **kw)


class BrianMDDCinguloFrontal(BrianModel):
    """Two-area (vACC, dlPFC) spiking model of major depression (Ramirez-Mahaluf 2017).

    See the module docstring for equations, regimes, task inputs, treatments,
    the field-potential proxy and parameter provenance.
    """

    name = "brian_mdd_cingulofrontal"
    signal_units = "nA"
    signal_description = (
        "summed absolute synaptic currents onto the E cells of the sensed area "
        "(sensed_area: 0 vACC, 1 dlPFC; LFP proxy)"
    )
    stimulation_description = (
        "average cathodic current per step, mA, onto the vACC interneurons as an AMPA-like "
        "conductance of g_DBS_per_uC per uC of charge (fraction dbs_fraction of them)"
    )
    state_variables = {
        "v": "mV",
        "g_ampa": "1 (relative to leak)",
        "g_gaba": "1 (relative to leak)",
        "s_nmda": "1",
        "x_nmda": "1",
    }
    populations = ("vacc_e", "vacc_i", "dlpfc_e", "dlpfc_i")
    shared_parameters = ("N_E", "N_I", "sensed_area")
    parameters = {
        "N_E": _p(80, "1", "pyramidal cells per area (the paper's fast runs)", minimum=1),
        "N_I": _p(20, "1", "interneurons per area (the paper's fast runs)", minimum=1),
        "sensed_area": _p(
            0, "1", "area the LFP proxy reads: 0 vACC, 1 dlPFC", _HERE, minimum=0, maximum=1
        ),
        "C_E_pF": _p(500.0, "pF", "pyramidal membrane capacitance", positive=True),
        "C_I_pF": _p(200.0, "pF", "interneuron membrane capacitance", positive=True),
        "tau_E_s": _p(20e-3, "s", "pyramidal membrane time constant", positive=True),
        "tau_I_s": _p(10e-3, "s", "interneuron membrane time constant", positive=True),
        "E_L_mV": _p(-70.0, "mV", "resting potential (dlPFC, and vACC interneurons)"),
        "E_L_vACC_mV": _p(-70.0, "mV", "resting potential of vACC pyramidal cells (SSRI knob)"),
        "E_GABA_mV": _p(-70.0, "mV", "GABA-A reversal potential"),
        "V_th_mV": _p(-50.0, "mV", "spike threshold"),
        "V_reset_mV": _p(-55.0, "mV", "reset potential"),
        "t_ref_E_s": _p(2e-3, "s", "pyramidal refractory period", minimum=0),
        "t_ref_I_s": _p(1e-3, "s", "interneuron refractory period", minimum=0),
        "V_mg_mV": _p(16.129, "mV", "NMDA Mg block voltage scale (1/0.062)", positive=True),
        "tau_AMPA_vACC_s": _p(2e-3, "s", "AMPA decay in the vACC (the MDD knob)", positive=True),
        "tau_AMPA_dlPFC_s": _p(2e-3, "s", "AMPA decay in the dlPFC", positive=True),
        "tau_NMDA_s": _p(100e-3, "s", "NMDA decay", positive=True),
        "tau_x_s": _p(2e-3, "s", "NMDA rise (presynaptic x decay)", positive=True),
        "alpha_nmda_khz": _p(0.5, "kHz", "NMDA gate opening rate", positive=True),
        "tau_GABA_s": _p(10e-3, "s", "GABA-A decay", positive=True),
        # Weights, relative to the leak, at N_E = 100; scaled by 100 / N_E.
        "w_EE_NMDA": _p(0.001761, "1", "E to E NMDA weight at N_E = 100", minimum=0),
        "nmda_gain": _p(
            6.0, "1", "factor on both NMDA weights (see module notes)", _HERE, minimum=0
        ),
        "w_EE_AMPA": _p(0.0009454, "1", "E to E AMPA weight at N_E = 100", minimum=0),
        "w_EI_NMDA": _p(0.0012, "1", "E to I NMDA weight at N_E = 100", minimum=0),
        "w_EI_AMPA": _p(0.0004, "1", "E to I AMPA weight at N_E = 100", minimum=0),
        "w_IE_GABA": _p(0.005, "1", "I to E GABA weight at N_E = 100", minimum=0),
        "w_II_GABA_vACC": _p(0.005, "1", "vACC I to I GABA weight at N_E = 100", minimum=0),
        "w_II_GABA_dlPFC": _p(0.004865, "1", "dlPFC I to I GABA weight at N_E = 100", minimum=0),
        "w_cross": _p(0.0004, "1", "E to other area's I AMPA weight at N_E = 100", minimum=0),
        "nu_ext_hz": _p(1800.0, "Hz", "background Poisson rate per cell", minimum=0),
        "w_ext_E": _p(0.082708, "1", "background weight onto E cells", minimum=0),
        "w_ext_I": _p(0.081, "1", "background weight onto I cells", minimum=0),
        "task_rate_hz": _p(800.0, "Hz", "task burst Poisson rate per E cell", minimum=0),
        "w_task": _p(0.0955, "1", "task burst weight onto E cells", minimum=0),
        "emotional_onset_s": _p(4.5, "s", "emotional burst onset (vACC E)", minimum=0),
        "emotional_duration_s": _p(1.025, "s", "emotional burst length", minimum=0),
        "cognitive_onset_s": _p(6.0, "s", "cognitive burst onset (dlPFC E)", minimum=0),
        "cognitive_duration_s": _p(0.525, "s", "cognitive burst length", minimum=0),
        "task_period_s": _p(0.0, "s", "repeat period of both bursts (0: once)", _HERE, minimum=0),
        "g_DBS_per_uC": _p(
            4.0, "1/uC", "vACC I conductance (relative to leak) per uC of charge", _HERE, minimum=0
        ),
        "dbs_fraction": _p(1.0, "1", "fraction of vACC I cells stimulated", minimum=0, maximum=1),
    }
    regimes = {
        "healthy": {},
        "mdd_mild": {"tau_AMPA_vACC_s": 2.05e-3},
        "mdd_moderate": {"tau_AMPA_vACC_s": 2.10e-3},
        "mdd_severe": {"tau_AMPA_vACC_s": 2.15e-3},
    }
    default_regime = "healthy"
    references = (
        "Ramirez-Mahaluf JP, Roxin A, Mayberg HS, Compte A (2017) Cereb Cortex 27:660-679",
        "Compte A, Brunel N, Goldman-Rakic PS, Wang XJ (2000) Cereb Cortex 10:910-923",
        "Mazzoni A et al. (2008) PLoS Comput Biol 4:e1000239",
    )

    def _check(self, values: dict[str, np.ndarray]) -> None:
        for key in ("N_E", "N_I", "sensed_area"):
            if np.any(values[key] != np.round(values[key])):
                raise ValueError(f"model parameter {key!r} must be a whole number")
        if np.any(values["V_reset_mV"] >= values["V_th_mV"]):
            raise ValueError("model parameter 'V_reset_mV' must lie below 'V_th_mV'")
        for key in ("E_L_mV", "E_L_vACC_mV"):
            if np.any(values[key] >= values["V_th_mV"]):
                raise ValueError(f"model parameter {key!r} must lie below 'V_th_mV'")

    def build(self, ctx: BuildContext) -> ModelNetwork:
        """Create the four populations, their synapses and inputs for ``ctx.n`` instances."""
        from brian2 import Hz, NeuronGroup, Synapses, linked_var

        p = ctx.params
        n = ctx.n
        size = {"e": int(p["N_E"][0]), "i": int(p["N_I"][0])}
        scale = 100.0 / size["e"]  # the paper's weight rescaling for network size
        stim = ctx.stimulation
        inst = {kind: np.repeat(np.arange(n), size[kind]) for kind in size}
        groups = {}
        for area in AREAS:
            for kind in ("e", "i"):
                name = f"{area}_{kind}"
                namespace = {}
                if kind == "e":
                    eqs = _MEMBRANE + _AMPA + _PYRAMIDAL
                elif area == "vacc":
                    eqs = _MEMBRANE + _AMPA_DBS.format(drive=stim.expression) + stim.equations
                    namespace = dict(stim.namespace)
                else:
                    eqs = _MEMBRANE + _AMPA
                groups[name] = NeuronGroup(
                    n * size[kind],
                    eqs,
                    threshold="v > V_th",
                    reset="v = V_reset; nspk += 1" + ("; x_nmda += 1" if kind == "e" else ""),
                    refractory="t_ref",
                    method="euler",
                    namespace=namespace,
                    name=f"mdd_{name}",
                )
                self._set_constants(groups[name], area, kind, p, inst[kind], ctx, scale)
        vacc_i = groups["vacc_i"]
        vacc_i.g_dbs = p["g_DBS_per_uC"][inst["i"]] * 1e3 * Hz  # 1 mA s = 1000 uC
        n_stim = np.round(p["dbs_fraction"] * size["i"]).astype(int)
        vacc_i.dbs_w = (np.tile(np.arange(size["i"]), n) < n_stim[inst["i"]]).astype(float)
        stim.attach(vacc_i, inst["i"])

        synapses: list[Any] = []

        # The NMDA gate of an area, summed over its E cells once per instance
        # (a pool row), and read by every cell of the area through a linked
        # variable: all-to-all NMDA at the cost of N_E synapses, not N_E * (N_E + N_I).
        pools = {}
        for area in AREAS:
            pool = NeuronGroup(n, "S : 1", name=f"mdd_{area}_nmda")
            summed = Synapses(
                groups[f"{area}_e"], pool, "S_post = s_nmda_pre : 1 (summed)",
                name=f"mdd_{area}_nmda_sum",
            )  # fmt: skip
            summed.connect(i=np.arange(n * size["e"]), j=inst["e"])
            for kind in ("e", "i"):
                groups[f"{area}_{kind}"].S_nmda = linked_var(pool, "S", index=inst[kind])
            pools[area] = [pool, summed]

        synapses = []

        def connect(pre: str, post: str, w: np.ndarray, target: str) -> None:
            i, j = _all_to_all(n, size[pre[-1]], size[post[-1]])
            syn = Synapses(
                groups[pre], groups[post], "w : 1 (constant)", on_pre=f"{target}_post += w",
                name=f"mdd_{pre}_to_{post}",
            )  # fmt: skip
            syn.connect(i=i, j=j)
            syn.w = w[inst[post[-1]][j]] * scale
            synapses.append(syn)

        for area in AREAS:
            tag = "vACC" if area == "vacc" else "dlPFC"
            e, i_ = f"{area}_e", f"{area}_i"
            connect(e, e, p["w_EE_AMPA"], "g_ampa")
            connect(e, i_, p["w_EI_AMPA"], "g_ampa")
            connect(i_, e, p["w_IE_GABA"], "g_gaba")
            connect(i_, i_, p[f"w_II_GABA_{tag}"], "g_gaba")
        connect("vacc_e", "dlpfc_i", p["w_cross"], "g_ampa")
        connect("dlpfc_e", "vacc_i", p["w_cross"], "g_ampa")

        # Background and task trains: at most one event per step and cell, as
        # the paper's PoissonGroups. Written as each group's own per-step code
        # rather than PoissonInput, whose generated code carries a
        # process-wide counter in its function names (a new Cython compile for
        # every network a process builds) and whose order among equals
        # depends on that counter too.
        for name, group in groups.items():
            group.nu_ext = p["nu_ext_hz"][inst[name[-1]]] * Hz
            code = "g_ampa += w_ext * int(rand() < nu_ext * dt)"
            if name.endswith("_e"):
                group.nu_task = p["task_rate_hz"][inst["e"]] * Hz
                code += "\ng_ampa += w_task * task_on * int(rand() < nu_task * dt)"
            group.run_regularly(code, when="synapses", name=f"mdd_{name}_poisson")

        sensed = groups[f"{AREAS[int(p['sensed_area'][0])]}_e"]
        stimulated = np.flatnonzero(np.asarray(vacc_i.dbs_w[:]) > 0)
        return ModelNetwork(
            objects=[*groups.values(), *pools["vacc"], *pools["dlpfc"], *synapses],
            signal=CumulativeSource(
                sensed, "lfp_cum", inst["e"], 1.0, "nA", self.signal_description
            ),
            populations={
                name: CumulativeSource(
                    group,
                    "nspk",
                    inst[name[-1]],
                    1.0 / size[name[-1]],
                    "spikes/s",
                    f"{name} population rate",
                )  # fmt: skip
                for name, group in groups.items()
            },
            spike_groups={name: (g, size[name[-1]]) for name, g in groups.items()},
            stimulated=(vacc_i, stimulated),
        )

    @staticmethod
    def _set_constants(
        group: Any, area: str, kind: str, p: dict, idx: np.ndarray, ctx: BuildContext, scale: float
    ) -> None:
        """Per-neuron constants of one population, from each instance's parameters."""
        from brian2 import Hz, mV, pF, second

        tag = "E" if kind == "e" else "I"
        e_l = p["E_L_vACC_mV"] if (area, kind) == ("vacc", "e") else p["E_L_mV"]
        tau_ampa = p["tau_AMPA_vACC_s"] if area == "vacc" else p["tau_AMPA_dlPFC_s"]
        group.E_L = e_l[idx] * mV
        group.E_gaba = p["E_GABA_mV"][idx] * mV
        group.V_mg = p["V_mg_mV"][idx] * mV
        group.V_th = p["V_th_mV"][idx] * mV
        group.V_reset = p["V_reset_mV"][idx] * mV
        group.t_ref = p[f"t_ref_{tag}_s"][idx] * second
        group.tau_m = p[f"tau_{tag}_s"][idx] * second
        group.tau_ampa = tau_ampa[idx] * second
        group.tau_gaba = p["tau_GABA_s"][idx] * second
        w_nmda = p["w_EE_NMDA"] if kind == "e" else p["w_EI_NMDA"]
        group.g_nmda = (w_nmda * p["nmda_gain"])[idx] * scale
        group.w_ext = p[f"w_ext_{tag}"][idx]
        # Initial potentials uniform between rest and threshold (chosen here).
        per = len(idx) // ctx.n
        u = np.concatenate([rng.random(per) for rng in ctx.rngs])
        group.v = (e_l[idx] + u * (p["V_th_mV"][idx] - e_l[idx])) * mV
        if kind != "e":
            return
        group.g_leak = (p["C_E_pF"] / p["tau_E_s"])[idx] * pF / second
        group.tau_nmda = p["tau_NMDA_s"][idx] * second
        group.tau_x = p["tau_x_s"][idx] * second
        group.alpha = p["alpha_nmda_khz"][idx] * 1e3 * Hz
        group.w_task = p["w_task"][idx]
        prefix = "emotional" if area == "vacc" else "cognitive"
        group.t_on = p[f"{prefix}_onset_s"][idx] * second
        group.t_dur = p[f"{prefix}_duration_s"][idx] * second
        # No repetition: a period far beyond any run (1e9 s).
        period = np.where(p["task_period_s"] > 0, p["task_period_s"], 1e9)
        group.t_period = period[idx] * second
