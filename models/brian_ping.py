"""Excitatory-inhibitory spiking network with a PING gamma rhythm, in Brian2.

Pyramidal-interneuron network gamma (PING; Whittington et al. 2000, Börgers &
Kopell 2003): excitatory cells (E) driven by a constant current excite the
inhibitory cells (I), whose synchronous volley silences the E cells for a few
GABA-A decay times, after which they fire again. With the default
parameters the network oscillates near 40 Hz, E and I cells firing on most
cycles ("strong PING"). Neurons are leaky integrate-and-fire with exponential
current synapses, in the style of Brunel & Wang (2003)::

    C dv/dt = C (E_L - v) / tau_m + I_ext + I_AMPA - I_GABA + I_DBS
              + C sigma sqrt(2 / tau_m) xi
    dI_AMPA/dt = -I_AMPA / tau_AMPA,   dI_GABA/dt = -I_GABA / tau_GABA

with threshold ``V_th``, reset
``V_reset`` and refractory periods 2 ms (E) and 1 ms (I). Each neuron
receives a fixed number of synapses from each population of its own instance
(``K_EE``, ``K_EI`` (E to I), ``K_IE`` (I to E), ``K_II``; the defaults are
20 % of a 800 + 200 network), all with delay ``T_syn_s``. Scaling ``N_E`` and
``N_I`` with fixed in-degrees keeps the dynamics while the cost grows with
the neuron count, which is how ``benchmarks/bench_brian.py`` compares 1,000
and 10,000 neurons.

LFP proxy
---------
``lfp`` is the sum over the E cells of an instance of the absolute synaptic
currents, ``sum_k |I_AMPA,k| + |I_GABA,k|`` (nA), the proxy of Mazzoni et al.
(2008, 2015) for the LFP of a cortical column; both currents are positive
here. Each E cell integrates it in its own state update (``lfp_cum``), and
the loop samples the per-instance sum at the sensing rate.

Stimulation
-----------
Current pulses ``I_DBS = g_DBS * I_cath(t)`` into the first ``dbs_fraction_I``
of the I cells and the first ``dbs_fraction_E`` of the E cells of each
instance (``I_cath``: the device's average cathodic current per step, mA;
``g_DBS``: nA per mA). A pulse of charge ``Q`` moves a stimulated membrane
by ``g_DBS * Q / C``: 60 mV for 2.5 mA and 60 us with the defaults, as in
:mod:`closedloop.models.brian_stn_gpe`. High-frequency pulses to a fraction
of the interneurons make them fire tonically, and the tonic inhibition
replaces the rhythmic one: gamma power falls (tested). This is a minimal
model of gamma-band closed-loop stimulation, for gamma-power biomarkers, not
of a particular disease.

Parameter provenance
--------------------
Membrane time constants (20 ms E, 10 ms I), AMPA decay (2 ms) and the LIF
form follow Brunel & Wang (2003); a GABA-A decay of 4 ms, the drive, the
weights and the stimulation gain are set here (closedloop), chosen so that
the ``gamma`` regime shows a spectral peak in 30-50 Hz and the
``asynchronous`` regime (weaker E to I coupling, more noise) little gamma.

References
----------
Whittington MA, Traub RD, Kopell N, Ermentrout B, Buhl EH (2000)
Inhibition-based rhythms: experimental and mathematical observations on
network dynamics. Int J Psychophysiol 38:315-336.
Börgers C, Kopell N (2003) Synchronization in networks of excitatory and
inhibitory neurons with sparse, random connectivity. Neural Comput 15:509-538.
Brunel N, Wang XJ (2003) What determines the frequency of fast network
oscillations with irregular neural discharges? J Neurophysiol 90:415-430.
Mazzoni A, Panzeri S, Logothetis NK, Brunel N (2008) Encoding of naturalistic
stimuli by local field potential spectra in networks of excitatory and
inhibitory neurons. PLoS Comput Biol 4:e1000239.
"""

from __future__ import annotations

import numpy as np

from closedloop.brian.model import (
    BrianModel,
    BuildContext,
    CumulativeSource,
    ModelNetwork,
    fixed_indegree,
)
from closedloop.core.model import Parameter

__all__ = ["BrianPING"]

_BW = "Brunel & Wang 2003"
_HERE = "closedloop (see module notes)"

_EQUATIONS = """
dv/dt = (E_L - v) / tau_m + (I_ext + I_dbs + I_ampa - I_gaba) / C
        + sigma * sqrt(2 / tau_m) * xi : volt (unless refractory)
dI_ampa/dt = -I_ampa / tau_ampa : amp
dI_gaba/dt = -I_gaba / tau_gaba : amp
I_dbs = g_dbs * dbs_w * ({drive}) : amp
E_L : volt (constant)
V_th : volt (constant)
V_reset : volt (constant)
t_ref : second (constant)
tau_m : second (constant)
C : farad (constant)
sigma : volt (constant)
I_ext : amp (constant)
tau_ampa : second (constant)
tau_gaba : second (constant)
g_dbs : amp (constant)
dbs_w : 1 (constant)
nspk : 1
"""


class BrianPING(BrianModel):
    """Excitatory-inhibitory LIF network with a PING gamma rhythm.

    See the module docstring for equations, the LFP proxy, stimulation and
    parameter provenance.
    """

    name = "brian_ping"
    signal_units = "nA"
    signal_description = "summed absolute synaptic currents onto E cells (LFP proxy)"
    stimulation_description = (
        "average cathodic current per step, mA, injected into fractions dbs_fraction_I "
        "of I cells and dbs_fraction_E of E cells with gain g_DBS_nA_per_mA"
    )
    state_variables = {"v": "mV", "I_AMPA": "nA", "I_GABA": "nA"}
    populations = ("e", "i")
    shared_parameters = ("N_E", "N_I", "K_EE", "K_EI", "K_IE", "K_II")
    parameters = {
        "N_E": Parameter(800, "1", "excitatory cells per instance", _HERE, minimum=1),
        "N_I": Parameter(200, "1", "inhibitory cells per instance", _HERE, minimum=1),
        "K_EE": Parameter(160, "1", "E inputs per E cell", _HERE, minimum=0),
        "K_EI": Parameter(160, "1", "E inputs per I cell", _HERE, minimum=0),
        "K_IE": Parameter(40, "1", "I inputs per E cell", _HERE, minimum=0),
        "K_II": Parameter(40, "1", "I inputs per I cell", _HERE, minimum=0),
        "tau_E_s": Parameter(20e-3, "s", "E membrane time constant", _BW, positive=True),
        "tau_I_s": Parameter(10e-3, "s", "I membrane time constant", _BW, positive=True),
        "C_pF": Parameter(100.0, "pF", "membrane capacitance", _HERE, positive=True),
        "E_L_mV": Parameter(-65.0, "mV", "resting potential", _BW),
        "V_th_mV": Parameter(-50.0, "mV", "spike threshold", _BW),
        "V_reset_mV": Parameter(-65.0, "mV", "reset potential", _HERE),
        "t_ref_E_s": Parameter(2e-3, "s", "E refractory period", _BW, minimum=0),
        "t_ref_I_s": Parameter(1e-3, "s", "I refractory period", _BW, minimum=0),
        "sigma_mV": Parameter(2.0, "mV", "membrane noise (std of v)", _HERE, minimum=0),
        "I_ext_E_nA": Parameter(0.6, "nA", "constant drive to E cells", _HERE),
        "I_ext_I_nA": Parameter(0.0, "nA", "constant drive to I cells", _HERE),
        "w_EE_nA": Parameter(0.02, "nA", "E to E weight", _HERE, minimum=0),
        "w_EI_nA": Parameter(0.05, "nA", "E to I weight", _HERE, minimum=0),
        "w_IE_nA": Parameter(0.1, "nA", "I to E weight", _HERE, minimum=0),
        "w_II_nA": Parameter(0.1, "nA", "I to I weight", _HERE, minimum=0),
        "tau_AMPA_s": Parameter(2e-3, "s", "AMPA decay", _BW, positive=True),
        "tau_GABA_s": Parameter(4e-3, "s", "GABA-A decay", _HERE, positive=True),
        "T_syn_s": Parameter(1e-3, "s", "synaptic delay", _HERE, minimum=0, whole_steps=True),
        "g_DBS_nA_per_mA": Parameter(
            40.0, "nA/mA", "current injected per mA of mean cathodic current", _HERE, minimum=0
        ),
        "dbs_fraction_I": Parameter(
            0.3, "1", "fraction of I cells stimulated", _HERE, minimum=0, maximum=1
        ),
        "dbs_fraction_E": Parameter(
            0.0, "1", "fraction of E cells stimulated", _HERE, minimum=0, maximum=1
        ),
    }
    regimes = {
        # Strong PING: a gamma peak near 40 Hz.
        "gamma": {},
        # Weak E to I coupling and more noise: irregular firing, little gamma.
        "asynchronous": {"w_EI_nA": 0.01, "sigma_mV": 4.0},
    }
    default_regime = "gamma"
    references = (
        "Börgers C, Kopell N (2003) Neural Comput 15:509-538",
        "Brunel N, Wang XJ (2003) J Neurophysiol 90:415-430",
        "Mazzoni A et al. (2008) PLoS Comput Biol 4:e1000239",
    )

    def _check(self, values: dict[str, np.ndarray]) -> None:
        for key in self.shared_parameters:
            if np.any(values[key] != np.round(values[key])):
                raise ValueError(f"model parameter {key!r} must be a whole number")
        if np.any(values["V_reset_mV"] >= values["V_th_mV"]):
            raise ValueError("model parameter 'V_reset_mV' must lie below 'V_th_mV'")

    def build(self, ctx: BuildContext) -> ModelNetwork:
        """Create the E and I groups and their synapses for ``ctx.n`` instances."""
        from brian2 import NeuronGroup, Synapses, mV, nA, pF, second

        p = ctx.params
        n = ctx.n
        n_e = int(p["N_E"][0])
        n_i = int(p["N_I"][0])
        stim = ctx.stimulation
        groups = {}
        for name, size, extra in (
            ("e", n_e, "d lfp_cum/dt = (I_ampa + I_gaba) / (nA * second) : 1\n"),
            ("i", n_i, ""),
        ):
            groups[name] = NeuronGroup(
                n * size,
                _EQUATIONS.format(drive=stim.expression) + extra + stim.equations,
                threshold="v > V_th",
                reset="v = V_reset; nspk += 1",
                refractory="t_ref",
                method="euler",
                namespace=dict(stim.namespace),
                name=f"ping_{name}",
            )
        e, i = groups["e"], groups["i"]
        inst_e = np.repeat(np.arange(n), n_e)
        inst_i = np.repeat(np.arange(n), n_i)
        for group, per, inst, tag in ((e, n_e, inst_e, "E"), (i, n_i, inst_i, "I")):
            group.E_L = p["E_L_mV"][inst] * mV
            group.V_th = p["V_th_mV"][inst] * mV
            group.V_reset = p["V_reset_mV"][inst] * mV
            group.t_ref = p[f"t_ref_{tag}_s"][inst] * second
            group.tau_m = p[f"tau_{tag}_s"][inst] * second
            group.C = p["C_pF"][inst] * pF
            group.sigma = p["sigma_mV"][inst] * mV
            group.I_ext = p[f"I_ext_{tag}_nA"][inst] * nA
            group.tau_ampa = p["tau_AMPA_s"][inst] * second
            group.tau_gaba = p["tau_GABA_s"][inst] * second
            group.g_dbs = p["g_DBS_nA_per_mA"][inst] * nA
            n_stim = np.round(p[f"dbs_fraction_{tag}"] * per).astype(int)
            group.dbs_w = (np.tile(np.arange(per), n) < n_stim[inst]).astype(float)
            stim.attach(group, inst)
            u = np.concatenate([rng.random(per) for rng in ctx.rngs])
            lo, hi = p["V_reset_mV"][inst], p["V_th_mV"][inst]
            group.v = (lo + u * (hi - lo)) * mV
        delays = p["T_syn_s"]
        same_delay = bool(np.all(delays == delays[0]))
        synapses = []
        for pre_name, post_name, target, k_key, w_key in (
            ("e", "e", "I_ampa", "K_EE", "w_EE_nA"),
            ("e", "i", "I_ampa", "K_EI", "w_EI_nA"),
            ("i", "e", "I_gaba", "K_IE", "w_IE_nA"),
            ("i", "i", "I_gaba", "K_II", "w_II_nA"),
        ):
            pre, post = groups[pre_name], groups[post_name]
            n_pre = n_e if pre_name == "e" else n_i
            n_post = n_e if post_name == "e" else n_i
            inst_post = inst_e if post_name == "e" else inst_i
            ii, jj = fixed_indegree(
                ctx.rngs, n_pre, n_post, int(p[k_key][0]), autapses=pre is not post
            )
            syn = Synapses(
                pre,
                post,
                "w : amp (constant)",
                on_pre=f"{target}_post += w",
                delay=float(delays[0]) * second if same_delay else None,
                name=f"ping_{pre_name}{post_name}",
            )
            syn.connect(i=ii, j=jj)
            syn.w = p[w_key][inst_post[jj]] * nA
            if not same_delay:
                syn.delay = delays[inst_post[jj]] * second
            synapses.append(syn)
        stimulated = np.flatnonzero(np.asarray(i.dbs_w[:]) > 0)
        return ModelNetwork(
            objects=[e, i, *synapses],
            signal=CumulativeSource(e, "lfp_cum", inst_e, 1.0, "nA", self.signal_description),
            populations={
                "e": CumulativeSource(e, "nspk", inst_e, 1.0 / n_e, "spikes/s", "E rate"),
                "i": CumulativeSource(i, "nspk", inst_i, 1.0 / n_i, "spikes/s", "I rate"),
            },
            spike_groups={"e": (e, n_e), "i": (i, n_i)},
            stimulated=(i, stimulated),
        )
