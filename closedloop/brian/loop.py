"""The closed loop inside Brian2: spiking networks under the same controllers.

:class:`BrianLoop` runs a Brian2 network (a :class:`~closedloop.brian.model.BrianModel`:
a built-in model or a user's own network) with the project's sensing chain,
virtual stimulator and controllers, and offers the interface of
:class:`closedloop.core.loop.ClosedLoop` (``reset``, ``warm_up``, ``run`` with
``on_chunk``), so the experiment runner, the recorder and the plots serve it
unchanged.

How the loop runs (runtime targets: Cython, numpy)
--------------------------------------------------
The whole run is **one** ``Network.run`` call. Nothing the loop adds runs at
every integration step:

* **Signal.** The model keeps a running integral of its signal per neuron
  inside its own state update (e.g. ``d lfp_cum/dt = I_syn / (nA*second)``),
  or per instance for a user's network. At every sensing sample the loop
  sums each instance's integrals and takes the increment since the previous
  sample divided by the sampling interval: the boxcar mean over the interval
  of :mod:`closedloop.sensing.chain`, without any per-step code.
* **Network operation.** One :class:`brian2.NetworkOperation` on the
  network's own clock (a second clock would cost Brian2's multi-clock
  scheduling at every step, about 10 % at 1,000 neurons) returns at once
  between samples; at a sample it reads the running integrals' raw arrays
  (no unit-checked state access) and makes one compiled (Numba) call: it
  takes the samples and, at the end of a control period, runs the sensing
  chain (:func:`closedloop.sensing.kernels.sense_samples`), records, runs a compiled
  controller twin if there is one
  (:func:`closedloop.controllers.compiled.controller_update`) and lets the
  device (:func:`closedloop.device.device_fill`) compute the exact drive of
  every step of the next period: limits, ramp, charge limit, pulse edges and
  TEED accounting are the project's own. A controller without a compiled twin
  is called in Python, once per control period, between two such calls.
* **Drive.** The drive of the coming period is written in place into a 2-D
  :class:`brian2.TimedArray` ``(steps per period, instances)`` that the
  stimulated group's equations read as ``cl_drive((t_in_timesteps % steps) * dt,
  cl_instance)``: stimulation costs nothing the open-loop network does not
  already compute. A user's network, whose equations cannot be changed, gets
  it through a summed-variable synapse into a parameter it names.

A loop of short ``net.run`` calls costs about 500 times a single run, which
is why none is used here. The scheduling slot is ``groups``: a user
network's sensor probe (orders -10 and -9), the network operation (order
-8), a user network's stimulation synapses (order -1), then the network's
own state updates (order 0).

cpp_standalone
--------------
With ``target="cpp_standalone"`` there is no Python in the loop: the sensing
chain (sampling, band-pass as the same second-order sections, ``power``
envelope), the controller (:mod:`closedloop.brian.codegen`,
twins of ``open_loop``, ``on_off``, ``dual_threshold`` and ``pid``) and the
device (continuous pulse trains with the same limits, ramp, charge limit and
pulse-edge integration) run as ``run_regularly`` operations of a loop group,
compiled with the network into one C++ program, built in its own temporary
directory (parallel sweeps do not collide). Results come back when the
program ends and are handed to ``on_chunk`` chunk by chunk; the device's
totals (energy, charge, pulses, time on) come from replaying the recorded
commands through :class:`closedloop.device.Device`, whose delivered
amplitude is checked against the generated device's.

Targets and caches
------------------
``target="auto"`` uses Cython when a C compiler works and numpy otherwise,
saying so (a :class:`RuntimeWarning` on the fallback; ``BrianLoop.target_``
records the choice). Compiled Cython modules are cached in
:func:`brian_cache_dir` (``$CLOSEDLOOP_BRIAN_CACHE`` or
``<closedloop cache>/brian2``), so a second run does not compile again.

Seeds
-----
As in :class:`~closedloop.core.loop.ClosedLoop`: each seed root spawns the model
instances' seeds (network structure and initial state), the sensor noise,
the controller's generator and, from the first root, Brian2's own seed
(:func:`brian2.seed`) for the noise drawn while the network runs. Same
config, same seed: the same run, bit for bit.

Baseline
--------
``baseline=True`` adds, for every instance, an unstimulated copy built from
the same seed (same connectivity and initial state) to the same network; its
signal is delivered as ``lfp_baseline``. Its noise is drawn from Brian2's
generator like the rest of the network, so it is not the stimulated copy's
noise realisation: the baseline differs from the stimulated instance by the
stimulation and by the noise.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from closedloop.brian.model import (
    BrianModel,
    BuildContext,
    CumulativeSource,
    ModelNetwork,
    StimulationInput,
)
from closedloop.controllers.base import COMMAND_KEYS, Controller
from closedloop.controllers.compiled import controller_update
from closedloop.core import loop as _loop
from closedloop.core.clocks import Clocks, seed_layout
from closedloop.core.kernel_cache import cache_dir as _numba_cache_dir
from closedloop.core.protocol import Loop, check_finite
from closedloop.core.random import rng_states
from closedloop.core.record import FIRST_FEATURE_ROW
from closedloop.device import DEVICE_STATE, Device, device_fill, device_record, queue_push
from closedloop.device import queue_push_one as _queue_push_one
from closedloop.sensing.chain import SensingChain
from closedloop.sensing.kernels import no_feature_output, record_features, sense_samples

__all__ = [
    "BRIAN_SECTION",
    "BRIAN_TARGETS",
    "BrianLoop",
    "OpenLoopRunner",
    "brian_cache_dir",
    "is_brian_experiment",
    "loop_from_config",
    "select_target",
]

log = logging.getLogger("closedloop.brian")

#: Code-generation targets a loop accepts.
BRIAN_TARGETS = ("auto", "cython", "numpy", "cpp_standalone")
# Scheduling orders inside the ``groups`` slot (see the module notes).
_ORDER_PROBE = -9  # its summed updaters run at order -10
_ORDER_OPERATION = -8


# --------------------------------------------------------------------------------------
# Targets and caches
# --------------------------------------------------------------------------------------
def brian_cache_dir() -> Path:
    """Directory of Brian2's compiled-code cache for this project.

    Returns
    -------
    pathlib.Path
        ``$CLOSEDLOOP_BRIAN_CACHE`` if set, else ``brian2`` beside the Numba
        kernel cache (``~/.cache/closedloop/brian2`` by default).
    """
    env = os.environ.get("CLOSEDLOOP_BRIAN_CACHE")
    if env:
        return Path(env)
    return _numba_cache_dir().parent.parent / "brian2"


_COMPILER_OK: bool | None = None


def _compiler_works() -> bool:
    """Whether Cython extensions compile here (tested once per process)."""
    global _COMPILER_OK
    if _COMPILER_OK is None:
        from brian2.codegen.runtime.cython_rt import CythonCodeObject

        _COMPILER_OK = bool(CythonCodeObject.is_available())
    return _COMPILER_OK


def select_target(target: str = "auto") -> str:
    """Set Brian2's code-generation target and cache; return the target used.

    Parameters
    ----------
    target : {"auto", "cython", "numpy", "cpp_standalone"}
        ``"auto"``: Cython when a C compiler works, else numpy with a
        :class:`RuntimeWarning` saying so.

    Returns
    -------
    str
        ``"cython"``, ``"numpy"`` or ``"cpp_standalone"``.

    Raises
    ------
    ValueError
        For an unknown target, or ``cython``/``cpp_standalone`` without a
        working compiler.
    """
    from brian2 import prefs

    if target not in BRIAN_TARGETS:
        raise ValueError(f"brian.target must be one of {', '.join(BRIAN_TARGETS)}, got {target!r}")
    cache = brian_cache_dir() / "cython"
    cache.mkdir(parents=True, exist_ok=True)
    prefs.codegen.runtime.cython.cache_dir = str(cache)
    if target == "numpy":
        chosen = "numpy"
    elif _compiler_works():
        chosen = "cython" if target in ("auto", "cython") else "cpp_standalone"
    elif target == "auto":
        warnings.warn(
            "Brian2: no working C compiler, so the network runs with the numpy target "
            "(much slower than Cython); install a C compiler (e.g. gcc) for the Cython target",
            RuntimeWarning,
            stacklevel=2,
        )
        chosen = "numpy"
    else:
        raise ValueError(
            f"brian.target {target!r} needs a working C compiler and none was found; "
            "use target numpy (slower) or install gcc"
        )
    if chosen != "cpp_standalone":
        prefs.codegen.target = chosen
    log.info("Brian2 code-generation target: %s (cache %s)", chosen, cache)
    return chosen


def _set_dt(dt_s: float) -> None:
    from brian2 import defaultclock, second

    defaultclock.dt = dt_s * second


def _probe(source: CumulativeSource, n: int, sample_dt: Any, name: str) -> tuple[list, Any]:
    """Objects that sum a per-neuron running integral per instance on the sensing clock.

    Returns the objects to add and the group whose ``cum`` holds one running
    integral per instance (the source group itself when it already has one
    row per instance).
    """
    from brian2 import NeuronGroup, Synapses

    group = source.group
    inst = np.asarray(source.instance_of)
    if len(group) == n and np.array_equal(inst, np.arange(n)):
        return [], group
    probe = NeuronGroup(n, "cum : 1", dt=sample_dt, order=_ORDER_PROBE, name=f"cl_probe_{name}")
    summed = Synapses(
        group,
        probe,
        f"cum_post = {source.variable}_pre : 1 (summed)",
        name=f"cl_probe_{name}_sum",
    )
    summed.connect(i=np.arange(len(group)), j=inst)
    return [probe, summed], probe


def _raw(group: Any, variable: str) -> np.ndarray:
    """The array behind a group variable (runtime device), for reading in place."""
    return group.variables[variable].get_value()


# --------------------------------------------------------------------------------------
# Compiled (Numba) kernel of the network operation
# --------------------------------------------------------------------------------------
@njit(cache=True)
def _operation(
    take,
    cums,
    blocks,
    prev,
    scales,
    inv_sample,
    buf,
    slot,
    end,
    n_loop,
    spk,
    sps,
    step,
    dt,
    device,
    sensing,
    io,
    out_col,
    per_col,
    program,
    latency,
    period_s,
    fill,
    spp,
    ring,
    ring_offset,
    command,
    effective,
):
    """One call of the network operation: sample, end a period, fill the next.

    ``buf[s, i, slot]`` receives source ``s``'s sample for instance ``i``:
    the increment since the previous sample of the sum of the running
    integrals ``cums[s]`` over the instance's ``blocks[s]`` consecutive rows.
    With ``end``, the period in ``buf`` is sensed, recorded (columns
    ``out_col`` at the sensing rate, ``per_col`` at the control rate) and a
    compiled controller's command queued for step ``step + latency``. With
    ``fill``, ``command`` is queued (from ``effective`` on, if not negative)
    and the device fills the ``spp`` steps from ``step`` into the flat
    ``ring`` (row ``step % spp``, column ``instance``).
    """
    lfp_out, sensed_out, base_out, rate_out, per_period, art, net, drive = io
    n_tot = buf.shape[1]
    if take:
        for s in range(len(cums)):
            c = cums[s]
            block = blocks[s]
            scale = scales[s] * inv_sample
            for i in range(n_tot):
                v = 0.0
                for k in range(i * block, (i + 1) * block):
                    v += c[k]
                buf[s, i, slot] = (v - prev[s, i]) * scale
                prev[s, i] = v
    if end:
        kind, c_params, c_state = program
        signal = buf[0]
        empty = signal[:, :0]
        no_features = no_feature_output(sensing)
        inv_sps = 1.0 / sps
        for i in range(n_loop):
            for k in range(spk):
                acc = 0.0
                for j in range(k * sps, (k + 1) * sps):
                    acc += net[i, j]
                art[i, k] = acc * inv_sps
                lfp_out[i, out_col + k] = signal[i, k]
            env = sense_samples(
                i, signal, art, 0, spk, sensing, sensed_out, empty, empty, no_features, out_col
            )
            per_period[i, 0, per_col] = env
            device_record(i, device, per_period, per_col)
            record_features(i, sensing, per_period, per_col)
            if kind >= 0:
                amp, freq, width, pulses = controller_update(
                    i, kind, c_params, c_state, env, period_s
                )
                _queue_push_one(device, i, amp, freq, width, pulses, step + latency)
            for s in range(1, buf.shape[0]):
                for k in range(spk):
                    rate_out[s - 1, i, out_col + k] = buf[s, i, k]
        for i in range(n_loop, n_tot):
            for k in range(spk):
                base_out[i - n_loop, out_col + k] = signal[i, k]
    if fill:
        queue_push(device, command, effective)
        for i in range(n_loop):
            device_fill(i, spp, step, dt, device, drive, net)
            for j in range(spp):
                ring[((ring_offset + j) % spp) * n_tot + i] = drive[i, j]


# --------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------
class BrianLoop(Loop):
    """Run a controller against a Brian2 network through a sensing chain and a device.

    Parameters
    ----------
    model : BrianModel
        The network (its batch size sets ``n``).
    sensing : SensingChain
        Sensing configuration.
    device : Device
        Stimulator configuration.
    controller : Controller
        The controller.
    control_period_s : float
        Control period, s (a whole number of sensing intervals).
    latency_s : float
        Delay from the end of a control period to the command taking effect,
        s (a whole number of integration steps).
    seed : int or sequence
        Root seed(s), as for :class:`closedloop.core.loop.ClosedLoop`.
    engine : {"auto", "python", "compiled"}
        Runtime targets: ``"python"`` calls :meth:`Controller.update` every
        period from the network operation; ``"compiled"`` runs its Numba twin
        inside the operation's compiled call; ``"auto"`` compiles when the
        controller has a twin. ``cpp_standalone`` always runs the controller's
        Brian2 code twin.
    target : {"auto", "cython", "numpy", "cpp_standalone"}
        Code-generation target (see :func:`select_target`).
    baseline : bool
        Simulate an unstimulated copy of every instance in the same network
        and deliver its signal as ``lfp_baseline``.
    record_rates : bool
        Deliver each model population's rate (spikes/s per neuron, at the
        sensing rate) as ``rate_<population>``.
    record_spikes : sequence of str
        Populations (or, for a user network, group names) whose spikes are
        handed to ``on_spikes`` chunk by chunk.
    build_dir : str or path, optional
        Parent directory of the ``cpp_standalone`` build directories (a
        fresh temporary directory per run, removed afterwards unless
        ``keep_build`` is set).
    keep_build : bool
        Keep the ``cpp_standalone`` build directory.

    Attributes
    ----------
    target_ : str
        The target used, set by :meth:`reset`.
    model_instance_seeds : list of numpy.random.SeedSequence
        Seed of each instance's structure.
    compile_s_ : float
        Wall time of the last standalone build (code generation and
        compilation), s; 0 for runtime targets.
    """

    def __init__(
        self,
        model: BrianModel,
        sensing: SensingChain,
        device: Device,
        controller: Controller,
        *,
        control_period_s: float,
        latency_s: float = 0.0,
        seed: int | Sequence = 0,
        engine: str = "auto",
        target: str = "auto",
        baseline: bool = False,
        record_rates: bool = False,
        record_spikes: Sequence[str] = (),
        build_dir: str | os.PathLike | None = None,
        keep_build: bool = False,
    ) -> None:
        if not isinstance(model, BrianModel):
            raise TypeError(f"BrianLoop needs a BrianModel, got {type(model).__name__}")
        if engine not in ("auto", "python", "compiled"):
            raise ValueError(f"control.engine must be auto, python or compiled, got {engine!r}")
        if target not in BRIAN_TARGETS:
            raise ValueError(
                f"brian.target must be one of {', '.join(BRIAN_TARGETS)}, got {target!r}"
            )
        self.model = model
        self.sensing = sensing
        self.device = device
        self.controller = controller
        self.engine = engine
        self.target = target
        self.baseline = bool(baseline)
        self.record_rates = bool(record_rates)
        self.record_spikes = tuple(record_spikes)
        self.build_dir = build_dir
        self.keep_build = keep_build
        self.n = model.n
        self.clocks = Clocks.from_config(model.dt_s, sensing.rate_hz, control_period_s, latency_s)
        # One pulse at most may start per step (the device kernel allows more,
        # the generated device does not).
        if device.frequency_max_hz * self.dt_s >= 1.0:
            raise ValueError(
                f"device.frequency_max_hz ({device.frequency_max_hz:g} Hz) must stay below "
                f"1/dt_s ({1 / self.dt_s:g} Hz) for a spiking network"
            )
        # One further seed child per root: Brian2's own generator (from the first root).
        self.seeds = seed_layout(seed, self.n, extra=1)
        self.seed = self.seeds.seed
        brian_seq = self.seeds.extra[0][0]
        self.brian_seed = int(brian_seq.generate_state(1, np.uint32)[0] % (2**31 - 1))
        if target == "cpp_standalone":
            from closedloop.brian.codegen import standalone_problems

            problems = standalone_problems(self)
            if problems:
                raise ValueError("; ".join(problems))
        self.target_: str | None = None
        #: Time every code object and the network operation (Brian2's profiler);
        #: ``profiling_info_`` then lists (object name, seconds) of the last run.
        self.profile = False
        self.compile_s_ = 0.0
        self.time_s = 0.0
        self._net = None

    # -- declared hooks (closedloop.core.protocol.Loop) -------------------------------
    @property
    def in_loop_baseline(self) -> bool:
        """True: the unstimulated copies run in the same network (``brian.baseline``)."""
        return self.baseline

    def run_attributes(self) -> dict[str, Any]:
        """The Brian2 code-generation target the run used."""
        return {} if self.target_ is None else {"brian_target": self.target_}

    def step(self, command: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
        """Not offered by the Brian2 loop yet."""
        raise NotImplementedError("BrianLoop.step() is not available yet")

    # -- set-up ---------------------------------------------------------------------
    @property
    def n_total(self) -> int:
        """Instances in the network: the loop's, then their unstimulated copies."""
        return self.n * (2 if self.baseline else 1)

    def _build_context(self, stimulation: StimulationInput) -> BuildContext:
        seeds = list(self.model_instance_seeds) * (2 if self.baseline else 1)
        params = {
            k: np.concatenate([v, v]) if self.baseline else v.copy()
            for k, v in self.model.param_values.items()
        }
        return BuildContext(
            n=self.n_total,
            rngs=[np.random.default_rng(s) for s in seeds],
            params=params,
            stimulation=stimulation,
            dt_s=self.dt_s,
        )

    def reset(self) -> None:
        """Build the network (first call) and reset device, sensing chain and controller.

        The runtime network is built once per :meth:`reset`; building it
        costs a few seconds (Brian2 code generation; Cython compiles only what
        its cache does not hold). For ``cpp_standalone`` the network is built
        by :meth:`run`, when the device is switched to standalone.
        """
        n = self.n
        self.sensing_state = self.sensing.new_state(n, rng_states(self.seeds.sensor))
        queue_len = self.latency_steps // self.steps_per_period + 3
        self.device_state = self.device.kernel_state(n, queue_len)
        self.controller.reset(n, np.random.default_rng(self.seeds.controller[0]))
        self.time_s = 0.0
        self._warm_steps = 0
        self._periods_done = 0
        if self.target == "cpp_standalone":
            self.target_ = select_target("cpp_standalone")
            return
        self._build_runtime()

    def _build_runtime(self) -> None:
        import brian2
        from brian2 import Network, NetworkOperation, SpikeMonitor

        self.target_ = select_target(self.target)
        _set_dt(self.dt_s)
        brian2.seed(self.brian_seed)
        n_tot, spp = self.n_total, self.steps_per_period
        stim = StimulationInput("ring", steps=spp, columns=n_tot, dt_s=self.dt_s)
        self._ring = stim.ring
        self._n_columns = n_tot
        net = self.model.build(self._build_context(stim))
        self._check_clocks(net)
        sources = [("signal", net.signal)]
        if self.record_rates:
            sources += [(f"rate_{name}", src) for name, src in net.populations.items()]
        objects = list(net.objects)
        cums, blocks, scales = [], [], []
        for name, src in sources:
            # The operation sums each instance's block of running integrals
            # itself: no probe group, no second clock.
            size = len(src.group)
            block = size // n_tot
            if size % n_tot or not np.array_equal(
                np.asarray(src.instance_of), np.repeat(np.arange(n_tot), block)
            ):
                raise ValueError(
                    f"{name}: group {src.group.name!r} must hold the {n_tot} instances in "
                    "equal consecutive blocks"
                )
            cums.append(_raw(src.group, src.variable))
            blocks.append(block)
            scales.append(src.scale)
        self._source_names = [name for name, _ in sources[1:]]
        self._cums = tuple(cums)
        self._blocks = np.asarray(blocks, dtype=np.int64)
        self._scales = np.asarray(scales, dtype=np.float64)
        self._monitors = {}
        for name in self.record_spikes:
            if name not in net.spike_groups:
                raise ValueError(
                    f"brian.record_spikes: {name!r} is not a population of model "
                    f"{self.model.name!r}; populations: {sorted(net.spike_groups)}"
                )
            group, per_inst = net.spike_groups[name]
            mon = SpikeMonitor(group, name=f"cl_spikes_{name}")
            self._monitors[name] = (mon, per_inst)
            objects.append(mon)
        # On the network's own clock: a second clock would cost Brian2's
        # multi-clock scheduling at every step (about 10 % at 1,000 neurons);
        # the operation returns at once between samples.
        self._countdown = 1
        self._operation_object = NetworkOperation(
            self._on_step, when="groups", order=_ORDER_OPERATION
        )
        objects.append(self._operation_object)
        self._net = Network(*objects)
        self._model_network = net
        self._namespace = dict(net.namespace)
        self._prev = np.zeros((len(cums), n_tot))
        self._buf = np.zeros((len(cums), n_tot, self.samples_per_period))

    def _check_clocks(self, net: ModelNetwork) -> None:
        """Every object's dt must divide the sensing interval (named otherwise)."""
        for obj in net.objects:
            clock = getattr(obj, "clock", None)
            if clock is None:
                continue
            dt = float(clock.dt)
            ratio = self.sample_s / dt
            if abs(ratio - round(ratio)) > 1e-6 * max(1.0, ratio) or round(ratio) < 1:
                raise ValueError(
                    f"object {obj.name!r} of the network runs with dt = {dt:g} s, which does "
                    f"not divide the sensing interval ({self.sample_s:g} s) and control period "
                    f"({self.control_period_s:g} s)"
                )

    def warm_up(self, seconds: float) -> None:
        """Run the network open loop, unrecorded, past its initial transient.

        The time is rounded up to whole control periods, so that the loop's
        periods stay aligned with Brian2's clocks.
        """
        if seconds <= 0:
            return
        periods = int(math.ceil(seconds / self.control_period_s - 1e-9))
        if self.target == "cpp_standalone":
            self._warm_steps = periods * self.steps_per_period
            return
        if self._net is None:
            raise RuntimeError("call reset() before warm_up()")
        from brian2 import second

        _set_dt(self.dt_s)  # the default clock is process-wide: ours again
        quiet = [self._operation_object, *(mon for mon, _ in self._monitors.values())]
        for obj in quiet:
            obj.active = False
        try:
            self._net.run(periods * self.control_period_s * second, namespace=self._namespace)
        finally:
            for obj in quiet:
                obj.active = True
        self._warm_steps += periods * self.steps_per_period
        # The running integrals grew during the warm-up: start from where they are.
        for s, c in enumerate(self._cums):
            self._prev[s] = c.reshape(self.n_total, -1).sum(axis=1)

    def program(self) -> tuple[int, np.ndarray, np.ndarray]:
        """The controller's compiled program, or kind ``NONE`` to run it in Python."""
        return _loop.controller_program(self.controller, self.engine, self.n)

    # -- running --------------------------------------------------------------------
    def run(
        self,
        duration_s: float,
        *,
        chunk_s: float = 1.0,
        on_chunk: Callable[[float, dict[str, np.ndarray]], None] | None = None,
        progress: Callable[[float], None] | None = None,
        on_spikes: Callable[[str, np.ndarray, np.ndarray, np.ndarray], None] | None = None,
    ) -> dict[str, np.ndarray]:
        """Run for ``duration_s`` seconds in one Brian2 run, handing each chunk to ``on_chunk``.

        Parameters
        ----------
        duration_s : float
            Simulated time, s (rounded to whole control periods).
        chunk_s : float
            Simulated time per chunk handed to ``on_chunk``, s.
        on_chunk : callable, optional
            ``on_chunk(t_start_s, data)``: ``lfp``, ``lfp_sensed`` (and
            ``lfp_baseline``, ``rate_<population>`` when asked) at the sensing
            rate, ``biomarker``, ``amplitude``, ``frequency``, ``pulse_width``
            and ``feature_<name>`` at the control rate, each ``(n, m)``.
            Called from inside the run (runtime targets), so memory stays flat.
        progress : callable, optional
            Called with the simulated seconds done after each chunk.
        on_spikes : callable, optional
            ``on_spikes(population, time_s, instance, neuron)`` with the
            spikes of each recorded population since the last call (times
            from the start of the run, neuron index within its instance).

        Returns
        -------
        dict of ndarray
            Final device accounting per instance (see
            :data:`closedloop.device.DEVICE_STATE`).
        """
        if self.target == "cpp_standalone":
            from closedloop.brian.codegen import run_standalone

            return run_standalone(
                self,
                duration_s,
                chunk_s=chunk_s,
                on_chunk=on_chunk,
                progress=progress,
                on_spikes=on_spikes,
            )
        if self._net is None:
            raise RuntimeError("call reset() before run()")
        from brian2 import prefs, second

        prefs.codegen.target = self.target_
        _set_dt(self.dt_s)  # the default clock is process-wide: ours again
        n_periods = int(round(duration_s / self.control_period_s))
        per_chunk = max(1, min(n_periods, int(round(chunk_s / self.control_period_s))))
        self._prepare_run(n_periods, per_chunk, on_chunk, progress, on_spikes)
        self._error: BaseException | None = None
        try:
            self._net.run(
                n_periods * self.control_period_s * second,
                namespace=self._namespace,
                profile=self.profile,
            )
        finally:
            self._operation_object.active = True
        if self.profile:
            self.profiling_info_ = [(name, float(t)) for name, t in self._net.profiling_info]
        if self._error is not None:
            raise self._error
        # The last sample and period end with the run: no operation call follows.
        self._on_sample()
        if self._error is not None:
            raise self._error
        self._flush()
        state = self.device_state[0]
        return {name: state[:, c].copy() for c, name in enumerate(DEVICE_STATE)}

    def _prepare_run(self, n_periods, per_chunk, on_chunk, progress, on_spikes) -> None:
        n, m = self.n, self.samples_per_period
        self._n_periods_run = n_periods
        self._first_period = self._periods_done
        self._per_chunk = per_chunk
        self._on_chunk = on_chunk
        self._progress = progress
        self._on_spikes = on_spikes
        self._program_tuple = self.program()
        self._python_controller = self._program_tuple[0] < 0
        self._calls = 0
        self._countdown = 1
        self._chunk_start = self._periods_done
        state = self.device_state[0]
        # The last command; pulses NaN: "no change" (never written by the compiled call).
        command = (*(state[:, c].copy() for c in (1, 2, 3)), np.full(n, np.nan))
        self._command = command
        self._no_trigger = command[3]
        self._keys = tuple(COMMAND_KEYS)
        spp = self.steps_per_period
        self._scratch = (
            np.zeros((n, m)),  # artefact per sample
            np.zeros((n, spp)),  # net current per step
            np.zeros((n, spp)),  # cathodic drive per step
        )
        self._sensing_tuple = self.sensing_state
        self._new_chunk_buffers()
        self._call = None

    def _new_chunk_buffers(self) -> None:
        n, m, f = self.n, self.samples_per_period, len(self.sensing.features)
        size = min(self._per_chunk, self._first_period + self._n_periods_run - self._chunk_start)
        size = max(size, 1)
        self._chunk = (
            np.full((n, m * size), np.nan),
            np.full((n, m * size), np.nan),
            np.full((n, m * size), np.nan) if self.baseline else np.zeros((n, 0)),
            np.full((len(self._source_names), n, m * size), np.nan),
            np.full((n, FIRST_FEATURE_ROW + f, size), np.nan),
        )
        self._io = (*self._chunk, *self._scratch)

    def _on_step(self) -> None:
        """The network operation, at every step: works at sensing samples only."""
        self._countdown -= 1
        if self._countdown == 0:
            self._countdown = self.steps_per_sample
            self._on_sample()

    def _on_sample(self) -> None:
        """Sample, and at the end of a control period sense, control and fill."""
        try:
            self._sample()
        except BaseException as exc:  # stop the run; re-raised by run()
            self._error = exc
            self._net.stop()

    def _sample(self) -> None:
        m = self.samples_per_period
        # Samples taken in this run so far: the call at sample q takes sample q - 1.
        q = self._calls
        self._calls += 1
        take = q > 0
        k_local = (q - 1) // m if take else -1  # period the sample belongs to
        slot = (q - 1) % m if take else 0
        end = take and slot == m - 1
        period_index = self._first_period + k_local  # since reset
        fill = q % m == 0 and q // m < self._n_periods_run
        if not (take or fill):
            return
        spp = self.steps_per_period
        chunk_col = (period_index - self._chunk_start) if end else 0
        step_end = (period_index + 1) * spp if end else (self._first_period + q // m) * spp
        per_period = self._chunk[4]
        args = (
            take,
            self._cums,
            self._blocks,
            self._prev,
            self._scales,
            1.0 / self.sample_s,
            self._buf,
            slot,
            end,
            self.n,
            m,
            self.steps_per_sample,
            step_end,
            self.dt_s,
            self.device_state,
            self._sensing_tuple,
            self._io,
            chunk_col * m,
            chunk_col,
            self._program_tuple,
            self.latency_steps,
            self.control_period_s,
            fill and not (end and self._python_controller),
            spp,
            self._ring,
            self._warm_steps % spp,
            self._command,
            -1,
        )
        self._dispatch(args)
        if end and self._python_controller:
            rows = per_period[:, :, chunk_col]
            features = {"biomarker": rows[:, 0].copy()}
            for f, name in enumerate(self.sensing.features):
                features[name] = rows[:, FIRST_FEATURE_ROW + f].copy()
            for v in features.values():
                v.flags.writeable = False
            out = self.controller.update(step_end * self.dt_s, features)
            shape = (self.n,)
            prev = self._command
            self._command = (
                _loop.command_array(out, self._keys[0], prev[0], shape),
                _loop.command_array(out, self._keys[1], prev[1], shape),
                _loop.command_array(out, self._keys[2], prev[2], shape),
                _loop.command_array(out, self._keys[3], self._no_trigger, shape),
            )
            if fill:
                # Only the fill now: the sample was taken and the period ended.
                args = (
                    False,
                    *args[1:8],
                    False,
                    *args[9:22],
                    True,
                    *args[23:26],
                    self._command,
                    step_end + self.latency_steps,
                )
                self._dispatch(args)
            else:  # the run ends here: queue the command for a later run
                queue_push(self.device_state, self._command, step_end + self.latency_steps)
        if end:
            self._periods_done = period_index + 1
            done_in_chunk = self._periods_done - self._chunk_start
            if done_in_chunk == self._chunk[4].shape[2]:
                self._flush()

    def _dispatch(self, args: tuple) -> None:
        """Call the compiled operation; Numba's type dispatch only on the first call.

        Every argument keeps its type from call to call (the loop's own
        arrays, and command arrays normalised by
        :func:`closedloop.core.loop.command_array`).
        """
        call = self._call
        if call is None:
            _operation(*args)
            self._call = _loop.entry_point(_operation, args)
        else:
            call(*args)

    def _flush(self) -> None:
        """Hand the periods done since the last chunk to ``on_chunk``."""
        done = self._periods_done - self._chunk_start
        if done <= 0:
            return
        m = self.samples_per_period
        lfp, sensed, base, rates, per_period = self._chunk
        t0 = self._chunk_start * self.control_period_s
        lfp_done = lfp[:, : done * m]
        check_finite(lfp_done, t0, self.sample_s)
        if self._on_chunk is not None:
            data = {"lfp": lfp_done, "lfp_sensed": sensed[:, : done * m]}
            if self.baseline:
                data["lfp_baseline"] = base[:, : done * m]
            # Rows as ClosedLoop delivers them (biomarker, device record).
            for c, name in enumerate(_loop.PER_PERIOD_SERIES):
                data[name] = per_period[:, c, :done]
            for f, name in enumerate(self.sensing.features):
                data[f"feature_{name}"] = per_period[:, FIRST_FEATURE_ROW + f, :done]
            for s, name in enumerate(self._source_names):
                data[name] = rates[s, :, : done * m]
            self._on_chunk(t0, data)
        self._drain_spikes()
        self._chunk_start = self._periods_done
        self.time_s = self._periods_done * self.control_period_s
        if self._progress is not None:
            self._progress(self.time_s)
        self._new_chunk_buffers()

    def _drain_spikes(self) -> None:
        """Hand recorded spikes to ``on_spikes`` and empty the monitors."""
        for name, (mon, per_inst) in self._monitors.items():
            count = _raw(mon, "N")
            k = int(count[0])
            if k and self._on_spikes is not None:
                idx = np.array(_raw(mon, "i")[:k], dtype=np.int64)
                t = np.array(_raw(mon, "t")[:k]) - self._warm_steps * self.dt_s
                instance = idx // per_inst
                keep = instance < self.n
                self._on_spikes(name, t[keep], instance[keep], idx[keep] % per_inst)
            mon.resize(0)
            count[0] = 0

    def extra_timeseries(self) -> dict[str, tuple[str, float, str]]:
        """Further series ``run`` delivers: name to (units, rate Hz, description)."""
        out = {}
        rate = 1.0 / self.sample_s
        if self.baseline:
            out["lfp_baseline"] = (
                self.model.signal_units,
                rate,
                "LFP proxy of an unstimulated copy of the network (same structure)",
            )
        if self.record_rates:
            for name in self._population_names():
                out[f"rate_{name}"] = (
                    "spikes/s",
                    rate,
                    f"population rate of {name}, mean over each sensing interval",
                )
        return out

    def _population_names(self) -> list[str]:
        names = getattr(self.model, "populations", None)
        if names is not None:
            return list(names)
        if self._net is not None:
            return list(self._source_names)
        return []


# --------------------------------------------------------------------------------------
# Open loop (BrianModel.reset / advance)
# --------------------------------------------------------------------------------------
class OpenLoopRunner:
    """A model's network run open loop, for :meth:`BrianModel.advance`.

    The stimulation array is copied into the network block by block (100
    steps at a time) by a network operation; the signal of every step is
    recorded by a monitor on a per-step probe for the duration of the call.
    """

    BLOCK = 100

    def __init__(self, model: BrianModel, seeds: Any, *, target: str = "auto") -> None:
        import brian2
        from brian2 import Network, NetworkOperation, NeuronGroup, Synapses, second

        if target == "cpp_standalone":
            raise ValueError(
                "advance() runs open loop in the runtime; use BrianLoop for standalone"
            )
        if seeds is None or isinstance(seeds, int | np.integer):
            root = np.random.SeedSequence(seeds)
            seeds = root.spawn(model.n)
            brian_seed = int(root.generate_state(1, np.uint32)[0] % (2**31 - 1))
        else:
            seeds = list(seeds)
            if len(seeds) != model.n:
                raise ValueError(f"reset needs {model.n} seed sequences, got {len(seeds)}")
            brian_seed = int(seeds[0].generate_state(1, np.uint32)[0] % (2**31 - 1))
        self.model = model
        self.target_ = select_target(target)
        _set_dt(model.dt_s)
        brian2.seed(brian_seed)
        n = model.n
        stim = StimulationInput("ring", steps=self.BLOCK, columns=n, dt_s=model.dt_s)
        self._ring = stim.view()
        ctx = BuildContext(
            n=n,
            rngs=[np.random.default_rng(s) for s in seeds],
            params={k: v.copy() for k, v in model.param_values.items()},
            stimulation=stim,
            dt_s=model.dt_s,
        )
        net = model.build(ctx)
        src = net.signal
        objects = list(net.objects)
        if len(src.group) == n and np.array_equal(src.instance_of, np.arange(n)):
            self._holder, self._var = src.group, src.variable
        else:
            probe = NeuronGroup(n, "cum : 1", order=_ORDER_PROBE, name="cl_open_probe")
            summed = Synapses(
                src.group, probe, f"cum_post = {src.variable}_pre : 1 (summed)", name="cl_open_sum"
            )
            summed.connect(i=np.arange(len(src.group)), j=np.asarray(src.instance_of))
            objects += [probe, summed]
            self._holder, self._var = probe, "cum"
        self._scale = src.scale
        self._namespace = dict(net.namespace)
        self._op = NetworkOperation(
            self._fill_block, dt=self.BLOCK * model.dt_s * second, when="groups", order=-8
        )
        self._op.active = False
        objects.append(self._op)
        self.net = Network(*objects)
        self.step = 0
        self._abs_step = 0
        self._last = np.zeros(n)
        self._stim: np.ndarray | None = None
        self._stim_start = 0

    def _fill_block(self) -> None:
        stim = self._stim
        b = self.BLOCK
        start = int(round(self.net.t_ / self.model.dt_s))
        self._write(stim, start, start + b)

    def _write(self, stim: np.ndarray, start: int, stop: int) -> None:
        b = self.BLOCK
        lo = start - self._stim_start
        hi = min(stop - self._stim_start, stim.shape[1])
        if hi <= lo:
            return
        rows = (np.arange(start, start + hi - lo)) % b
        self._ring[rows, :] = stim[:, lo:hi].T

    def advance(self, n_steps: int, stimulation: np.ndarray | None) -> np.ndarray:
        from brian2 import StateMonitor, prefs, second

        n = self.model.n
        prefs.codegen.target = self.target_
        _set_dt(self.model.dt_s)
        if stimulation is not None:
            stimulation = np.ascontiguousarray(stimulation, dtype=np.float64)
            if stimulation.shape != (n, n_steps):
                raise ValueError(
                    f"stimulation has shape {stimulation.shape}, expected {(n, n_steps)}"
                )
        self._ring[:] = 0.0
        if stimulation is not None and stimulation.any():
            self._stim = stimulation
            self._stim_start = self._abs_step
            # Up to the next block boundary now, then block by block.
            first_stop = (self._abs_step // self.BLOCK + 1) * self.BLOCK
            self._write(stimulation, self._abs_step, first_stop)
            self._op.active = True
        mon = StateMonitor(self._holder, self._var, record=True, when="end", name="cl_open_mon")
        self.net.add(mon)
        try:
            self.net.run(n_steps * self.model.dt_s * second, namespace=self._namespace)
            values = np.array(mon.variables[self._var].get_value()).T
        finally:
            self.net.remove(mon)
            self._op.active = False
            self._stim = None
        values = values[:, :n_steps]
        cum = np.concatenate([self._last[:, None], values], axis=1)
        self._last = values[:, -1].copy()
        out = np.diff(cum, axis=1) * (self._scale / self.model.dt_s)
        self.step += n_steps
        self._abs_step += n_steps
        return out


# --------------------------------------------------------------------------------------
# Experiment files
# --------------------------------------------------------------------------------------
#: Keys of an experiment file's ``brian`` section, with defaults.
BRIAN_SECTION: dict[str, Any] = {
    "target": "auto",  # auto | cython | numpy | cpp_standalone
    "record_rates": False,  # rate_<population> time series at the sensing rate
    "record_spikes": [],  # populations whose spikes are recorded
    "build_dir": None,  # parent of cpp_standalone build directories [system temp]
    "keep_build": False,  # keep the cpp_standalone build directory
    "stimulate": None,  # a user network: group, variable, gain, gain_unit, fraction|indices
    "sense": None,  # a user network: group, reduce (rate|mean|sum), variable, unit
}


def is_brian_experiment(model_name: str, brian: Any = None) -> bool:
    """Whether an experiment's model runs in Brian2 (a built-in Brian2 model or a user network)."""
    from closedloop.brian.model import BRIAN_MODELS

    section = dict(brian or {})
    return model_name in BRIAN_MODELS or bool(section.get("stimulate") or section.get("sense"))


def loop_from_config(
    config: Any, sensing: SensingChain, device: Device, controller: Controller
) -> tuple[BrianLoop | None, list[tuple[str, str]]]:
    """Build the :class:`BrianLoop` of a validated experiment, or say what is wrong.

    Parameters
    ----------
    config : closedloop.config.schema.ExperimentConfig
        The validated file: ``model`` (``name`` a Brian2 model's registry name
        or dotted path, or, with ``brian.stimulate`` and ``brian.sense``, the
        dotted path of a function that builds the user's network), ``seed``,
        ``n_instances``, ``control``, ``output.record_baseline`` and the
        ``brian`` section (:data:`BRIAN_SECTION`, as a dict).
    sensing, device, controller
        Built from their sections.

    Returns
    -------
    loop : BrianLoop or None
    problems : list of (key path, sentence)
        Empty when the loop was built.
    """
    from closedloop.brian.model import ExternalNetwork, resolve_brian_model

    problems: list[tuple[str, str]] = []
    section = dict(getattr(config, "brian", None) or {})
    for key in section:
        if key not in BRIAN_SECTION:
            import difflib

            close = difflib.get_close_matches(key, list(BRIAN_SECTION), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            problems.append(
                (f"brian.{key}", f"unknown key.{hint} Known keys here: {', '.join(BRIAN_SECTION)}.")
            )
    opts = {**BRIAN_SECTION, **{k: v for k, v in section.items() if k in BRIAN_SECTION}}
    if opts["target"] not in BRIAN_TARGETS:
        problems.append(("brian.target", f"must be one of {', '.join(BRIAN_TARGETS)}"))
    if problems:
        return None, problems
    m = config.model
    try:
        if opts["stimulate"] or opts["sense"]:
            if not (opts["stimulate"] and opts["sense"]):
                raise ValueError("a user network needs both brian.stimulate and brian.sense")
            model: BrianModel = ExternalNetwork(
                m.name,
                stimulate=opts["stimulate"],
                sense=opts["sense"],
                dt_s=m.dt_s,
                n=config.n_instances,
                params=dict(m.params),
                regime=m.regime,
            )
        else:
            model = resolve_brian_model(m.name)(
                dt_s=m.dt_s, n=config.n_instances, params=dict(m.params), regime=m.regime
            )
    except ValueError as exc:
        return None, [("model", str(exc))]
    try:
        loop = BrianLoop(
            model,
            sensing,
            device,
            controller,
            control_period_s=config.control.period_s,
            latency_s=config.control.latency_s,
            seed=config.seed,
            engine=config.control.engine,
            target=opts["target"],
            baseline=bool(config.output.record_baseline),
            record_rates=bool(opts["record_rates"]),
            record_spikes=tuple(opts["record_spikes"] or ()),
            build_dir=opts["build_dir"],
            keep_build=bool(opts["keep_build"]),
        )
        if opts["target"] != "cpp_standalone":
            loop.program()
    except ValueError as exc:
        return None, [("control" if "control" in str(exc) else "brian", str(exc))]
    unknown = [
        p for p in loop.record_spikes if p not in getattr(model, "populations", loop.record_spikes)
    ]
    if unknown:
        return None, [
            (
                "brian.record_spikes",
                f"{unknown} are not populations of {model.name!r}: {list(model.populations)}",
            )
        ]
    return loop, []
