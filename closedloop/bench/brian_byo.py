"""The Brian2 loop's overhead on a network the user brings, against that network alone.

:func:`ei_lif_network` is an E-I network of leaky integrate-and-fire neurons
written the way a Brian2 user writes one (two groups, two synapse objects, a
parameter ``I_stim`` for the stimulation), after the current-based benchmark
network of Brette et al. (2007, J Comput Neurosci 23:349, benchmark 2, from
Vogels & Abbott 2005): tau_m 20 ms, tau_e 5 ms, tau_i 10 ms, threshold
-50 mV, reset -60 mV, rest -49 mV (above threshold: the neurons fire without
input), refractory 5 ms, weights 1.62 mV (E) and -9 mV (I). These values
are recalled from Brian2's ``CUBA`` example, not checked against the paper;
the fixed in-degree of 80 (4,000 neurons at p = 0.02 in the original) is
chosen here so that the synaptic load per neuron does not change with size.

:func:`byo_overhead_ratio` runs it inside
:class:`~closedloop.brian.loop.BrianLoop` through
:class:`~closedloop.brian.network.ExternalNetwork` (stimulation into
``exc.I_stim``, population-rate sensing of ``exc``, PID every 1 ms) and
alone in one ``Network.run`` (the user's objects and nothing else), and
returns plain CPU time over the loop's: issue 18's gap 3 (targets 0.87 at
1,000 neurons, 0.93 at 10,000).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "IN_DEGREE",
    "byo_loop",
    "byo_overhead_ratio",
    "ei_lif_network",
    "paired_cpu_ratio",
    "pid_loop",
]

#: Synapses per neuron (80 % from E, 20 % from I); chosen, see the module notes.
IN_DEGREE = 80
_EQS = """
dv/dt = (ge + gi - (v - El) + I_stim) / taum : volt (unless refractory)
dge/dt = -ge / taue : volt
dgi/dt = -gi / taui : volt
I_stim : volt
"""


def ei_lif_network(n_instances: int = 1, n_neurons: int = 1000, seed: int = 0) -> dict:
    """The E-I LIF network of the module notes (80 % E, 20 % I).

    Parameters
    ----------
    n_instances : int
        Must be 1 (the benchmark network is a single instance).
    n_neurons : int
        Neurons in total.
    seed : int
        Seed of the connectivity and initial voltages.

    Returns
    -------
    dict
        ``objects`` (the groups ``exc`` and ``inh`` and their synapses) and
        ``namespace`` (the constants the equations use).
    """
    from brian2 import NeuronGroup, Synapses, ms, mV

    if n_instances != 1:
        raise ValueError("ei_lif_network builds one instance")
    namespace = {
        "taum": 20 * ms,
        "taue": 5 * ms,
        "taui": 10 * ms,
        "El": -49 * mV,
        "we": 60 * 0.27 / 10 * mV,
        "wi": -20 * 4.5 / 10 * mV,
    }
    n_exc = int(round(0.8 * n_neurons))
    groups = []
    for name, size in (("exc", n_exc), ("inh", n_neurons - n_exc)):
        g = NeuronGroup(
            size,
            _EQS,
            threshold="v > -50*mV",
            reset="v = -60*mV",
            refractory=5 * ms,
            method="exact",
            name=name,
        )
        groups.append(g)
    rng = np.random.default_rng(seed)
    for g in groups:
        g.v = (-60 + 10 * rng.random(len(g))) * mV
    exc, inh = groups
    objects: list[Any] = [exc, inh]
    k_exc = int(round(0.8 * IN_DEGREE))
    for pre, k, code in ((exc, k_exc, "ge += we"), (inh, IN_DEGREE - k_exc, "gi += wi")):
        for post in groups:
            syn = Synapses(pre, post, on_pre=code, name=f"{pre.name}_{post.name}")
            syn.connect(
                i=rng.integers(0, len(pre), size=len(post) * k),
                j=np.repeat(np.arange(len(post)), k),
            )
            objects.append(syn)
    return {"objects": objects, "namespace": namespace}


def pid_loop(model: Any, band_hz: tuple[float, float], setpoint: float, engine: str) -> Any:
    """``model`` in a :class:`BrianLoop`: PI(D) every 1 ms, pulses up to 2 mA.

    The setpoint is one the network's biomarker exceeds, so that the
    controller always acts (gains 0.001 mA and 0.01 mA/s per unit of error:
    chosen, not from a paper; the timing, not the control, is measured).
    """
    from closedloop.brian.loop import BrianLoop
    from closedloop.controllers import PID
    from closedloop.device import Device
    from closedloop.sensing.chain import SensingChain

    return BrianLoop(
        model,
        SensingChain(band_hz=band_hz),
        Device(),
        PID(setpoint=setpoint, kp=0.001, ki=0.01, max_amplitude_ma=2.0),
        control_period_s=1e-3,
        seed=0,
        engine=engine,
    )


def byo_loop(n_neurons: int, engine: str) -> Any:
    """:func:`ei_lif_network` in :func:`pid_loop` (stimulation into ``exc``, its rate sensed)."""
    from closedloop.brian.network import ExternalNetwork

    model = ExternalNetwork(
        ei_lif_network,
        stimulate={"group": "exc", "variable": "I_stim", "gain": 1.0, "gain_unit": "mV"},
        sense={"group": "exc", "reduce": "rate"},
        dt_s=1e-4,
        params={"n_neurons": n_neurons},
    )
    return pid_loop(model, (10.0, 40.0), 1.0, engine)


class _Bare:
    """The user's network alone, run in one ``Network.run`` (plain Brian2)."""

    def __init__(self, n_neurons: int, target: str) -> None:
        import brian2

        from closedloop.brian.runtime import select_target, set_default_dt

        select_target(target)
        set_default_dt(1e-4)
        made = ei_lif_network(n_neurons=n_neurons)
        self.namespace = made["namespace"]
        self.net = brian2.Network(*made["objects"])

    def run(self, seconds: float) -> None:
        from brian2 import second

        self.net.run(seconds * second, namespace=self.namespace)


def byo_overhead_ratio(
    n_neurons: int, seconds: float, engine: str = "auto", repeats: int = 3
) -> float:
    """Plain Brian2 CPU time over the closed loop's on :func:`ei_lif_network`.

    Parameters
    ----------
    n_neurons : int
        Size of the network.
    seconds : float
        Simulated time per timed run, s.
    engine : {"auto", "python"}
        The loop's controller engine (``auto``: the PID's compiled twin).
    repeats : int
        Side-by-side pairs; the median of their ratios is returned.

    Returns
    -------
    float
        1 when the loop costs nothing, 0.8 when it adds 25 %.
    """
    loop = byo_loop(n_neurons, engine)
    loop.reset()
    loop.run(0.02)  # builds and compiles
    bare = _Bare(n_neurons, loop.target)
    bare.run(0.02)
    return paired_cpu_ratio(bare.run, loop, seconds, repeats)


def paired_cpu_ratio(
    plain: Callable[[float], None], loop: Any, seconds: float, repeats: int
) -> float:
    """Median over ``repeats`` side-by-side pairs of plain CPU time over the loop's.

    Parameters
    ----------
    plain : callable
        ``plain(seconds)`` advances the reference network by ``seconds`` (s).
    loop : closedloop.brian.loop.BrianLoop
        The loop, built and compiled; reset (untimed) before each of its runs.
    seconds : float
        Simulated time per timed run, s.
    repeats : int
        Number of pairs.

    Returns
    -------
    float
        CPU time, as Brian2's runtime is single-threaded and other processes
        inflate it least; 1 when the loop costs nothing.
    """
    from closedloop.brian.runtime import set_default_dt

    def cpu(run: Callable[[float], None]) -> float:
        c = time.process_time()
        run(seconds)
        return time.process_time() - c

    pairs = []
    for _ in range(repeats):
        loop.reset()  # not timed: the plain network has nothing to reset
        set_default_dt(loop.dt_s)  # the default clock is process-wide
        reference = cpu(plain)
        pairs.append(reference / cpu(loop.run))
    return float(np.median(pairs))
