"""The closed loop inside Brian2: spiking networks under the same controllers.

:class:`BrianLoop` runs a Brian2 network (a :class:`~closedloop.brian.model.BrianModel`:
a built-in model or a user's own network) with the project's sensing chain,
virtual stimulator and controllers, and offers the interface of
:class:`closedloop.core.loop.ClosedLoop` (``reset``, ``warm_up``, ``run`` with
``on_chunk``), so the experiment runner, the recorder and the plots serve it
unchanged.

How the loop runs
-----------------
The whole run is **one** ``Network.run`` call, inside which one network
operation senses, controls and fills the next period's drive at the end of
every control period, and nothing the loop adds runs at every integration
step (runtime targets, Cython and numpy: :mod:`closedloop.brian.driver`,
with its compiled body in :mod:`closedloop.brian.operation`). Limits, ramp,
charge limit, pulse edges and TEED accounting are the project's own
(:mod:`closedloop.device`). A loop of short ``net.run`` calls costs about
500 times a single run, which is why none is used.

Driving it
----------
:meth:`BrianLoop.run` continues where the last :meth:`~BrianLoop.run` or
:meth:`~BrianLoop.step` stopped (``run(a)`` then ``run(b)`` equals
``run(a + b)`` bit for bit), each call one ``Network.run``;
:meth:`~BrianLoop.step` runs one control period with a command from outside
(an agent, a notebook) instead of the controller's.

Other targets, and where the pieces live
----------------------------------------
With ``target="cpp_standalone"`` the whole loop is generated code, compiled
into one program per run (:mod:`closedloop.brian.standalone`). Targets and
caches: :mod:`closedloop.brian.runtime`.

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

import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from closedloop.brian.build import BuildContext, StimulationInput
from closedloop.brian.driver import NetworkDriver
from closedloop.brian.model import BrianModel
from closedloop.brian.runtime import BRIAN_TARGETS, select_target
from closedloop.brian.standalone import run_standalone, standalone_problems
from closedloop.controllers import compiled as compiled_twins
from closedloop.controllers.base import Controller
from closedloop.core import loop as core_loop
from closedloop.core.clocks import Clocks, seed_layout
from closedloop.core.protocol import ChunkCallback, Loop, SpikeCallback
from closedloop.core.random import rng_states
from closedloop.core.record import FIRST_FEATURE_ROW
from closedloop.device import Device, device_totals
from closedloop.sensing.chain import SensingChain

__all__ = ["BrianLoop"]


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
        Code-generation target (see :func:`closedloop.brian.runtime.select_target`).
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
    time_s : float
        Simulated time since :meth:`reset` (after any warm-up), s.
    model_instance_seeds : list of numpy.random.SeedSequence
        Seed of each instance's structure.
    compile_s_ : float
        Wall time of the last standalone build (code generation and
        compilation), s; 0 for runtime targets.

    Notes
    -----
    :meth:`reset` first, then optionally :meth:`warm_up`, then any sequence
    of :meth:`run` and :meth:`step`: each continues where the last stopped,
    so ``run(a)`` then ``run(b)`` hands over and returns, bit for bit, what
    ``run(a + b)`` does (the device's pulse schedule, the controller's ``t``
    and the chunks' times go on from there). Each call is one
    ``Network.run``. With ``cpp_standalone`` a run is one compiled program:
    :meth:`run` once per :meth:`reset`, and no :meth:`step`.
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
            problems = standalone_problems(self)
            if problems:
                raise ValueError("; ".join(problems))
        self.target_: str | None = None
        #: Time every code object and the network operation (Brian2's profiler);
        #: ``profiling_info_`` then lists (object name, seconds) of the last run.
        self.profile = False
        self.compile_s_ = 0.0
        self.profiling_info_: list[tuple[str, float]] = []
        self._reset_done = False
        self._driver: NetworkDriver | None = None  # runtime targets, from reset()
        self._standalone_periods = 0  # periods run by cpp_standalone since reset()
        self._standalone_warm_steps = 0

    # -- declared hooks (closedloop.core.protocol.Loop) -------------------------------
    @property
    def in_loop_baseline(self) -> bool:
        """True: the unstimulated copies run in the same network (``brian.baseline``)."""
        return self.baseline

    def run_attributes(self) -> dict[str, Any]:
        """The Brian2 code-generation target the run used."""
        return {} if self.target_ is None else {"brian_target": self.target_}

    # -- set-up ---------------------------------------------------------------------
    @property
    def n_total(self) -> int:
        """Instances in the network: the loop's, then their unstimulated copies."""
        return self.n * (2 if self.baseline else 1)

    @property
    def spike_monitors(self) -> dict[str, Any]:
        """The :class:`brian2.SpikeMonitor` of each recorded population (runtime targets).

        Emptied every time the spikes are handed to ``on_spikes``, so that
        memory stays flat however long the run.
        """
        if self._driver is None:
            return {}
        return {name: mon for name, (mon, _) in self._driver.monitors.items()}

    @property
    def time_s(self) -> float:  # type: ignore[override]  # read-only: the driver keeps time
        """Simulated time since :meth:`reset` (after any warm-up), s."""
        if self._driver is not None:
            return self._driver.time_s
        return self._standalone_periods * self.control_period_s

    @property
    def periods_done(self) -> int:
        """Control periods run (by :meth:`run` and :meth:`step`) since :meth:`reset`."""
        if self._driver is not None:
            return self._driver.periods_done
        return self._standalone_periods

    def build_context(self, stimulation: StimulationInput) -> BuildContext:
        """What :meth:`BrianModel.build` receives from this loop.

        Every instance's generator comes from its model seed; with
        ``baseline`` the unstimulated copies follow, with the same seeds and
        parameters as the instances they copy.

        Parameters
        ----------
        stimulation : StimulationInput
            How the stimulated group reads the device's drive.

        Returns
        -------
        BuildContext
            For :attr:`n_total` instances.
        """
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
        # The compiled controller's program: made at the first run, its state
        # then carried from run to run.
        self._program_tuple: tuple | None = None
        self._standalone_periods = 0
        self._standalone_warm_steps = 0
        self._driver = None
        self._reset_done = True
        if self.target == "cpp_standalone":
            self.target_ = select_target("cpp_standalone")
            return
        self._driver = NetworkDriver(self)
        self.target_ = self._driver.target_

    def warm_up(self, seconds: float) -> None:
        """Run the network open loop, unrecorded, past its initial transient.

        The time is rounded up to whole control periods, so that the loop's
        periods stay aligned with Brian2's clocks.

        Raises
        ------
        RuntimeError
            Before :meth:`reset`, or after the first :meth:`run` or :meth:`step`.
        """
        self._require_reset("warm_up")
        if self.periods_done:
            raise RuntimeError(
                "BrianLoop.warm_up() after run() or step(): the warm-up comes before the "
                "recorded run; call reset() to start again"
            )
        if seconds <= 0:
            return
        periods = int(math.ceil(seconds / self.control_period_s - 1e-9))
        if self._driver is None:
            self._standalone_warm_steps += periods * self.steps_per_period
        else:
            self._driver.warm_up(periods)

    def program(self) -> tuple[int, np.ndarray, np.ndarray]:
        """The controller's compiled program, or kind ``NONE`` to run it in Python."""
        return core_loop.controller_program(self.controller, self.engine, self.n)

    def _runtime_driver(self, what: str) -> NetworkDriver:
        """The runtime targets' driver, made by :meth:`reset`."""
        if self._driver is None:
            raise RuntimeError(f"BrianLoop.{what}() before reset(): call loop.reset() first")
        return self._driver

    def _require_reset(self, what: str) -> None:
        if not self._reset_done:
            raise RuntimeError(
                f"BrianLoop.{what}() before reset(): call loop.reset() first "
                "(and warm_up(seconds) if the run should start past the initial transient)"
            )

    # -- running --------------------------------------------------------------------
    def run(
        self,
        duration_s: float,
        *,
        chunk_s: float = 1.0,
        on_chunk: ChunkCallback | None = None,
        progress: Callable[[float], None] | None = None,
        on_spikes: SpikeCallback | None = None,
    ) -> dict[str, np.ndarray]:
        """Run ``duration_s`` more seconds in one Brian2 run, handing each chunk to ``on_chunk``.

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
            and ``feature_<name>`` at the control rate, each ``(n, m)``;
            ``t_start_s`` counts from :meth:`reset`. Called from inside the
            run (runtime targets), so memory stays flat.
        progress : callable, optional
            Called with the simulated seconds since :meth:`reset` after each chunk.
        on_spikes : callable, optional
            ``on_spikes(population, time_s, instance, neuron)`` with the
            spikes of each recorded population since the last call (times
            since :meth:`reset`, neuron index within its instance).

        Returns
        -------
        dict of ndarray
            Device accounting per instance since :meth:`reset` (see
            :data:`closedloop.device.DEVICE_STATE`).

        Raises
        ------
        RuntimeError
            Before :meth:`reset`; with ``cpp_standalone``, a second run
            after one :meth:`reset` (one compiled program per run).
        ModelDivergedError
            When an instance's signal becomes NaN or infinite.
        """
        self._require_reset("run")
        n_periods = self.clocks.periods_in(duration_s)
        per_chunk = max(1, min(n_periods, int(round(chunk_s / self.control_period_s))))
        if self.target == "cpp_standalone":
            return self._run_standalone(n_periods, per_chunk, on_chunk, progress, on_spikes)
        if self._program_tuple is None:
            self._program_tuple = self.program()
        program = self._program_tuple
        python = program[0] < 0
        driver = self._runtime_driver("run")
        driver.run(n_periods, per_chunk, program, python, on_chunk, progress, on_spikes)
        self.profiling_info_ = driver.profiling_info_
        return self.totals()

    def step(self, command: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
        """Run one control period with ``command`` instead of the controller's.

        One ``Network.run`` of one control period (runtime targets): the
        controller is not asked at its end, and nothing is handed to
        ``on_chunk`` (spikes recorded in the period are dropped). A later
        :meth:`run` continues from there, the controller first asked at the
        end of the run's first period.

        Parameters
        ----------
        command : mapping, optional
            As a controller returns it (``amplitude_ma``, ``frequency_hz``,
            ``pulse_width_us``, ``pulses``; arrays over the batch or
            scalars). It takes effect ``latency_s`` from now and replaces any
            command the controller issued at the end of the last period and
            not yet delivered; a missing key keeps the last command's value
            (``pulses``: no new burst). None keeps the last command.

        Returns
        -------
        dict of ndarray
            The features at the end of the period, each ``(n,)``:
            ``biomarker`` and each of ``sensing.features``, as a controller
            would receive them, plus ``t_s`` (the period's end, s since
            :meth:`reset`).

        Raises
        ------
        RuntimeError
            Before :meth:`reset`, or with ``cpp_standalone`` (no Python in its loop).
        TypeError
            Naming the command key whose value is not a float array over the batch.
        """
        self._require_reset("step")
        if self.target == "cpp_standalone":
            raise RuntimeError(
                "BrianLoop.step() needs Python in the loop and cpp_standalone has none; "
                "use target auto, cython or numpy to drive the network period by period"
            )
        driver = self._runtime_driver("step")
        if command is not None:
            driver.set_command(command)
        no_program = (compiled_twins.NONE, np.zeros((self.n, 1)), np.zeros((self.n, 1)))
        driver.run(1, 1, no_program, False, None, None, None)
        rows = driver.last_period
        if rows is None:
            raise RuntimeError("BrianLoop.step(): the network ran no control period")
        features = {"biomarker": rows[:, 0].copy(), "t_s": np.full(self.n, self.time_s)}
        for f, name in enumerate(self.sensing.features):
            features[name] = rows[:, FIRST_FEATURE_ROW + f].copy()
        return features

    def totals(self) -> dict[str, np.ndarray]:
        """Device accounting per instance since :meth:`reset` (:data:`DEVICE_STATE`)."""
        return device_totals(self.device_state)

    def _run_standalone(
        self,
        n_periods: int,
        per_chunk: int,
        on_chunk: ChunkCallback | None,
        progress: Callable[[float], None] | None,
        on_spikes: SpikeCallback | None,
    ) -> dict:
        if self._standalone_periods:
            raise RuntimeError(
                "BrianLoop.run() twice with cpp_standalone: each run is one compiled program "
                "that starts from t = 0; call reset() first, and run the whole duration at once"
            )
        out = run_standalone(
            self,
            n_periods,
            warm_steps=self._standalone_warm_steps,
            chunk_periods=per_chunk,
            on_chunk=on_chunk,
            progress=progress,
            on_spikes=on_spikes,
        )
        self.device_state = out.device_state
        self.commands_ = out.commands
        self.device_mismatch_ma_ = out.device_mismatch_ma
        self.build_directory_ = out.build_directory
        self.compile_s_, self.run_wall_s_, self.run_cpu_s_ = out.times_s
        self._standalone_periods = n_periods
        return self.totals()

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
        if self._driver is not None:
            return list(self._driver.source_names)
        return []
