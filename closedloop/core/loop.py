"""The closed loop of a Numba model: model, sensing chain, device and controller.

Clocks and seeds follow :mod:`closedloop.core.clocks`; the contract is
:class:`closedloop.core.protocol.Loop`. Per control period the model, the
device and the sensing chain of every instance advance in one compiled call;
only the controller runs in Python (numpy over the batch), so the Python cost
per period is paid once for the whole batch. A controller with a compiled
twin runs inside the kernels instead, a whole chunk of periods per call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from closedloop.controllers import compiled as compiled_twins
from closedloop.controllers.base import COMMAND_KEYS, Controller
from closedloop.core.clocks import Clocks, seed_layout
from closedloop.core.kernel_choice import KernelChoice, entry_point, on_one_thread
from closedloop.core.model import PARALLEL_MIN_BATCH, NumbaModel
from closedloop.core.period import (
    PeriodIO,
    PeriodRecord,
    PeriodScratch,
    ProgramArrays,
    general_periods,
)
from closedloop.core.period_packed import PeriodClock, lent_table, lent_types
from closedloop.core.pool import Lent, lend, pack
from closedloop.core.protocol import (
    ChunkCallback,
    Loop,
    ModelDivergedError,
    SpikeCallback,
    check_finite,
)
from closedloop.core.random import rng_states
from closedloop.core.record import (
    BIOMARKER_ROW,
    FIRST_FEATURE_ROW,
    PER_PERIOD_SERIES,
    mark_triggers,
    trigger_source,
)
from closedloop.core.slow import EpochSchedule, SlowProcess
from closedloop.core.slow_clock import SlowClock
from closedloop.device import Device, device_targets, device_totals
from closedloop.device.dose import modality_metrics
from closedloop.sensing.chain import SensingChain

__all__ = [
    "PER_PERIOD_SERIES",
    "ClosedLoop",
    "ModelDivergedError",
    "command_array",
    "controller_program",
    "entry_point",
    "mark_triggers",
    "trigger_source",
]

#: Integration steps per model call during the warm-up (1 s at dt = 0.1 ms).
WARM_UP_STEPS = 10_000


@dataclass
class _Chunk:
    lfp: np.ndarray
    sensed: np.ndarray
    per_period: np.ndarray
    pool: np.ndarray  # the three above packed (PeriodRecord), for periods_packed


class ClosedLoop(Loop):
    """Run a controller against a Numba model through a sensing chain and a device.

    Parameters
    ----------
    model : NumbaModel
        The model (its batch size sets ``n``).
    sensing : SensingChain
        Sensing configuration.
    device : Device
        Stimulator configuration.
    controller : Controller
        The controller.
    control_period_s : float
        Control period, s.
    latency_s : float
        Delay from the end of a control period to the command taking effect, s.
    engine : {"auto", "python", "compiled"}
        Where the controller runs: ``"python"`` calls :meth:`update` every
        period; ``"compiled"`` runs its compiled twin inside the kernels, a
        whole chunk of periods per call; ``"auto"`` compiles when the
        controller offers a twin.
    seed : int or sequence of int or numpy.random.SeedSequence
        Root seed, or one root per group of instances
        (:func:`closedloop.core.clocks.seed_layout`).
    slow : sequence of SlowProcess
        States on slow clocks beside the neural one (drugs, symptom states;
        see :mod:`closedloop.core.slow`).
    epochs : EpochSchedule, optional
        Explicit time-scale separation for long runs: with it, ``run(d)``
        covers ``d`` s of slow time and simulates ``d / epochs.compression``
        s of neural time (:attr:`time_s` counts neural time,
        :attr:`slow_time_s` slow time).

    Notes
    -----
    :meth:`run` continues where the last :meth:`run` or :meth:`step` stopped:
    ``run(a)`` then ``run(b)`` equals ``run(a + b)`` bit for bit, and the
    device's pulse schedule, the recorded times and the controller's ``t``
    go on from there. :meth:`step` drives one period with a command from
    outside (an agent, a notebook) instead of the controller.
    """

    def __init__(
        self,
        model: NumbaModel,
        sensing: SensingChain,
        device: Device,
        controller: Controller,
        *,
        control_period_s: float,
        latency_s: float = 0.0,
        seed: int | list | tuple = 0,
        engine: str = "auto",
        slow: tuple[SlowProcess, ...] | list[SlowProcess] = (),
        epochs: EpochSchedule | None = None,
    ) -> None:
        self.model = model
        self.sensing = sensing
        self.device = device
        # Asked once, not per period: the modality's own keys (TMS: the
        # intensity in % RMT) renamed to the slots the kernels read, or None.
        commands = device.commands
        self._to_slots = commands.to_slots if commands.aliases else None
        self.controller = controller
        if engine not in ("auto", "python", "compiled"):
            raise ValueError(f"control.engine must be auto, python or compiled, got {engine!r}")
        self.engine = engine
        self.n = model.n
        self.clocks = Clocks.from_config(model.dt_s, sensing.rate_hz, control_period_s, latency_s)
        # The fourth child of each root seeds the slow processes.
        self.seeds = seed_layout(seed, self.n, extra=1)
        self.seed = self.seeds.seed
        self.slow_clock = SlowClock(tuple(slow), epochs, self.clocks.control_period_s, model)
        self.time_s = 0.0
        self._choice: KernelChoice | None = None  # serial or parallel periods (n >= 32)
        self._step: int | None = None  # integration steps since t = 0; None before reset()

    # -- set-up ---------------------------------------------------------------------
    def reset(self) -> None:
        """Reset model, device, sensing chain and controller for a new run."""
        n = self.n
        self.model.reset(self.seeds.model)
        queue_len = self.latency_steps // self.steps_per_period + 3
        self.controller.reset(n, np.random.default_rng(self.seeds.controller[0]))
        spp = self.steps_per_period
        spk = self.samples_per_period
        # Device, sensing state, the scratch part of the io buffers (PeriodIO,
        # reused by every period) and the program of a controller in Python,
        # packed in one pool: a period's call from Python then unboxes a few
        # arrays instead of fifty (closedloop.core.pool). The NamedTuples kept
        # here are views into it.
        # The model state and each chunk's record ride in it by address, and
        # the constants and the period's place too (closedloop.core.period_packed).
        self._model_state = self.model.kernel_state()  # updated in place from here on
        try:
            clock = PeriodClock(
                spp, self.dt_s, self.latency_steps, self.control_period_s, np.zeros(2, np.int64)
            )
            lent: list[Any] = [lent_table(self._model_state), clock]
        except TypeError:  # not all arrays: periods_serial takes it (see _kernel)
            lent = []
        self._pool, (self.device_state, self.sensing_state, self._scratch, no_program, *lent) = (
            pack(
                self.device.kernel_state(n, queue_len),
                self.sensing.new_state(n, rng_states(self.seeds.sensor)),
                PeriodScratch(*(np.zeros((n, w)) for w in (spp, spp, spp, spk, spk))),
                ProgramArrays(compiled_twins.NONE, np.zeros((n, 1)), np.zeros((n, 1))),
                *lent,
            )
        )
        # None: every period plain, kernels compiled without the general code.
        self._general = general_periods(self.device_state, self.sensing_state)
        self._lent: Lent | None = lent[0] if lent else None
        self._clock_at = lent[1].at if lent else np.zeros(2, np.int64)
        self._lent_record: np.ndarray | None = None  # the record pool in its row 0
        self._io: PeriodIO | None = None
        # The last command issued and not yet queued (the Python controller's
        # answer at the end of the last period), and the step it takes effect.
        self._command = (
            *device_targets(self.device_state),
            np.full(n, np.nan),  # pulses: no change
        )
        # Pulses the controller leaves out mean "no change" (NaN), every period.
        self._no_trigger = np.full(n, np.nan)
        self._no_trigger.flags.writeable = False
        self._effective = -1
        self._program: tuple | None = None
        self._no_program = tuple(no_program)
        self._entry = None
        self._packed: Any = None  # periods_packed's entry point, once types settle
        self._lent_types: Any = None  # the Numba type of what the lent table holds
        self._step = 0
        self._periods = 0
        self.time_s = 0.0
        self.slow_clock.reset(self.seeds, self.device_state)

    @property
    def kernel_choice(self) -> KernelChoice | None:
        """Serial or parallel periods for a Python controller (n >= 32), once chosen."""
        return self._choice

    @property
    def slow(self) -> tuple[SlowProcess, ...]:
        """The slow processes beside the neural clock."""
        return self.slow_clock.processes

    @property
    def slow_time_s(self) -> float:
        """Slow time since :meth:`reset`, s (:attr:`time_s` without an epoch schedule)."""
        return self.time_s + self.slow_clock.offset_s

    def warm_up(self, seconds: float) -> None:
        """Advance the model open loop, unrecorded, e.g. past its initial transient."""
        self._require_reset("warm_up")
        total = int(round(seconds / self.dt_s)) if seconds > 0 else 0
        done = 0
        while done < total:
            # In pieces (chunk invariance makes them free): the raw signal of a
            # long warm-up over a large batch need not be held at once, and a
            # divergence is reported when it happens, as part of the warm-up.
            m = min(WARM_UP_STEPS, total - done)
            raw = self.model.advance(m)
            try:
                check_finite(raw, done * self.dt_s, self.dt_s)
            except ModelDivergedError as exc:
                raise ModelDivergedError(exc.instance, exc.time_s, warmup_s=seconds) from None
            done += m
        self.model.step_ = 0  # the recorded run starts at t = 0

    def program(self) -> tuple[int, np.ndarray, np.ndarray]:
        """The controller's compiled program, or kind ``NONE`` to run it in Python."""
        return controller_program(self.controller, self.engine, self.n)

    def _require_reset(self, what: str) -> int:
        """Integration steps since t = 0; RuntimeError before :meth:`reset`."""
        if self._step is None:
            raise RuntimeError(
                f"{type(self).__name__}.{what}() before reset(): call loop.reset() first "
                "(and warm_up(seconds) if the run should start past the initial transient)"
            )
        return self._step

    def _kernel(self, m: int, args: tuple) -> Any:
        """The period kernel for a call of ``m`` periods with ``args``.

        A chunk of compiled periods opens one parallel region for the whole
        chunk (the serial kernel below :data:`PARALLEL_MIN_BATCH`). One period per
        call (a Python controller, :meth:`step`) runs serial below
        :data:`PARALLEL_MIN_BATCH`, and above it on one thread or all,
        whichever is faster on this machine now
        (:class:`~closedloop.core.kernel_choice.KernelChoice`): a parallel
        region per period collapses on a loaded machine.
        """
        kernels = self.model.kernels
        if m > 1:
            if self.n >= PARALLEL_MIN_BATCH:
                return kernels.periods_parallel
            # The serial kernel runs the parallel one's blocks of 16 one after
            # another (as fast as it on one thread) and compiles without the
            # parallel loop: a cold first run of the default experiment took
            # 27 s of CPU instead of 33 s (issue 18, gap 4).
            return kernels.periods_serial
        if self.n < PARALLEL_MIN_BATCH and args[9][0] < 0 and self._lent is not None:
            # A controller in Python (or step()): one period through the
            # packed kernel (_call, _periods_python), compiled for the types
            # of now; command arrays keep theirs (see entry_point).
            import numba  # loaded by now: the kernels were asked for (closedloop.core.jit)

            self._lent_types = lent_types(self._model_state)
            packed_args = self._packed_args(args, None)  # the types only
            kernels.periods_packed.compile(tuple(numba.typeof(a) for a in packed_args))
            self._packed = self._entry = entry_point(kernels.periods_packed, packed_args)
            return self._packed
        call = kernels.periods_serial  # until a command settles the argument types
        if self._effective >= 0:
            # Argument types are settled once a command exists: skip the
            # dispatcher's re-typing from now on (see entry_point).
            call = entry_point(call, args)
            if self.n >= PARALLEL_MIN_BATCH:
                # Kept across reset(): what it learned is about the machine, not the run.
                if self._choice is None:
                    parallel = entry_point(kernels.periods_parallel, args)
                    self._choice = KernelChoice(on_one_thread(parallel), parallel)
                call = self._choice
            self._entry = call
        return call

    def _packed_args(self, args: tuple, record: np.ndarray | None) -> tuple:
        """The arguments of ``periods_packed`` (one period), ``record`` and the place set."""
        if record is not None:
            self._place(record, args[2], args[8])
        return (self._lent_types, self._pool, args[12], args[13], args[14])

    def _place(self, record: np.ndarray, step: int, k: int) -> None:
        """Tell the packed kernel the record pool and the next period's first step and column."""
        if record is not self._lent_record and self._lent is not None:
            lend(self._lent.table[0], record)  # kept alive here while the table points at it
            self._lent_record = record
        self._clock_at[0], self._clock_at[1] = step, k

    def _chunk(self, m: int) -> _Chunk:
        spk = self.samples_per_period
        rows = FIRST_FEATURE_ROW + len(self.sensing.features)
        pool, (record,) = pack(
            PeriodRecord(
                np.empty((self.n, m * spk)),
                np.empty((self.n, m * spk)),
                np.empty((self.n, rows, m)),
            ),
            copy=False,
        )
        return _Chunk(record.lfp_out, record.sensed_out, record.per_period, pool)

    def _series(self, chunk: _Chunk) -> dict[str, np.ndarray]:
        per_period = chunk.per_period
        return {
            "lfp": chunk.lfp,
            "lfp_sensed": chunk.sensed,
            **{name: per_period[:, c, :] for c, name in enumerate(PER_PERIOD_SERIES)},
            **{
                f"feature_{name}": per_period[:, FIRST_FEATURE_ROW + f, :]
                for f, name in enumerate(self.sensing.features)
            },
        }

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
        """Run ``duration_s`` more seconds, handing each chunk to ``on_chunk``.

        Parameters
        ----------
        duration_s : float
            Simulated time, s (rounded to whole control periods).
        chunk_s : float
            Simulated time per chunk handed to ``on_chunk``, s.
        on_chunk : callable, optional
            ``on_chunk(t_start_s, data)`` with ``lfp`` and ``lfp_sensed`` at the
            sensing rate and ``biomarker``, ``amplitude``, ``frequency``,
            ``pulse_width``, ``pulse_count`` (pulses delivered so far) and
            ``feature_<name>`` for each extra sensing feature at the control
            rate, each of shape ``(n, m)``; ``t_start_s`` counts from the
            start of the run (the first :meth:`run` after :meth:`reset`).
        progress : callable, optional
            Called with the simulated seconds done so far after each chunk.
        on_spikes : callable, optional
            Not used: a rate model has no spikes.

        Returns
        -------
        dict of ndarray
            Device accounting per instance since :meth:`reset` (see
            :data:`closedloop.device.DEVICE_STATE`).

        Raises
        ------
        RuntimeError
            Before :meth:`reset`.
        ModelDivergedError
            When an instance's signal becomes NaN or infinite; the chunks
            before it have been handed over.
        """
        self._require_reset("run")
        n_periods = self.clocks.periods_in(self.slow_clock.neural_s(duration_s))
        per_chunk = max(1, min(n_periods, int(round(chunk_s / self.control_period_s))))
        program = self._program
        if program is None:
            program = self._program = self.program()
        done = 0
        while done < n_periods:
            # What the slow processes set at the end of the last chunk holds
            # from this one on (once per chunk, not per period).
            self.slow_clock.apply_pending()
            # Chunks end on every slow step: slow steps fall on the same
            # periods however the run is chunked.
            m = self.slow_clock.periods_to_boundary(self._periods, min(per_chunk, n_periods - done))
            chunk = self._chunk(m)
            if program[0] >= 0:
                # Compiled controller: the whole chunk in one call.
                self._call(chunk, m, 0, program)
            else:
                self._periods_python(chunk, m, program)
            self._hand_over(chunk, on_chunk)
            done += m
            if progress is not None:
                progress(self.time_s)
        # What the slow processes set at the last step holds from now on.
        self.slow_clock.apply_pending()
        return self.totals()

    def step(self, command: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
        """Run one control period with ``command`` instead of the controller's.

        Parameters
        ----------
        command : mapping, optional
            As a controller returns it (``amplitude_ma``, ``frequency_hz``,
            ``pulse_width_us``, ``pulses``; arrays over the batch or
            scalars). It takes effect ``latency_s`` from now and replaces any
            command the controller issued at the end of the last period and
            not yet delivered; a missing key keeps the last command's value.
            None keeps the last command.

        Returns
        -------
        dict of ndarray
            The features at the end of the period, each ``(n,)``:
            ``biomarker`` and each of ``sensing.features``, as a controller
            would receive them, plus ``t_s`` (the period's end, s) and, with
            slow processes, their latest values (``<process>_<series>``).

        Raises
        ------
        RuntimeError
            Before :meth:`reset`.
        TypeError
            Naming the command key whose value is not a float array over the batch.
        """
        step = self._require_reset("step")
        if command is not None:
            self._command = self._checked_command(command, self._command)
            self._effective = step + self.latency_steps
            self.slow_clock.command(self.slow_time_s, command)
        chunk = self._chunk(1)
        self._call(chunk, 1, 0, self._no_program)
        self._hand_over(chunk, None)
        self.slow_clock.apply_pending()
        rows = chunk.per_period[:, :, 0]
        out = {"biomarker": rows[:, BIOMARKER_ROW].copy(), "t_s": np.full(self.n, self.time_s)}
        for f, name in enumerate(self.sensing.features):
            out[name] = rows[:, FIRST_FEATURE_ROW + f].copy()
        if self.slow_clock.processes:
            out.update({k: v.copy() for k, v in self.slow_clock.features().items()})
            out.update(self.slow_clock.live_features(self.slow_time_s))
        return out

    def totals(self) -> dict[str, np.ndarray]:
        """Device accounting per instance since :meth:`reset`.

        See :data:`closedloop.device.DEVICE_STATE`.
        """
        return device_totals(self.device_state)

    # -- the periods ------------------------------------------------------------------
    def _call(self, chunk: _Chunk, m: int, k: int, program: tuple) -> None:
        """Periods ``k .. k + m - 1`` of ``chunk``, the pending command queued first."""
        step = self._require_reset("run")
        io = self._io
        if io is None or io.per_period is not chunk.per_period:  # made once per chunk
            io = self._io = PeriodIO._make(
                (*self._scratch, chunk.lfp, chunk.sensed, chunk.per_period)
            )
        args = (
            m,
            self.steps_per_period,
            step,
            self.dt_s,
            self._model_state,
            self.device_state,
            self.sensing_state,
            io,
            k,
            program,
            self.latency_steps,
            self.control_period_s,
            self._command,
            self._effective,
            self._general,
        )
        call = self._entry
        if call is None or m > 1:
            call = self._kernel(m, args)
        if call is self._packed and m == 1:
            call(*self._packed_args(args, chunk.pool))
        else:
            call(*args)
        self._effective = -1
        self._step = step + m * self.steps_per_period

    def _periods_python(self, chunk: _Chunk, m: int, program: tuple) -> None:
        """A chunk one period at a time, the controller called after each."""
        # Controllers get read-only views: they cannot corrupt the recording.
        rows = chunk.per_period.view()
        rows.flags.writeable = False
        # Every period's (n,) views at once: iterating makes a view in about
        # half the time that slicing one out per period does.
        biomarkers = list(rows[:, BIOMARKER_ROW, :].T)
        feature_rows = [
            (name, list(rows[:, FIRST_FEATURE_ROW + f, :].T))
            for f, name in enumerate(self.sensing.features)
        ]
        dt = self.dt_s
        latency = self.latency_steps
        slow_keys = self.slow_clock.command_keys
        # Chunks end on slow steps: the slow values are constant within one.
        slow_features = self.slow_clock.features() if self.slow_clock.processes else {}
        live = self.slow_clock.live_features if self.slow_clock.live else None
        source_row = trigger_source(self.controller, self.sensing.features)[1]
        offset_s = self.slow_clock.offset_s  # constant within a chunk (chunks end on slow steps)
        spp = self.steps_per_period
        types, pool = self._lent_types, self._pool
        # Looked up once per chunk, not per period; the loop's state in locals,
        # stored back when the chunk ends or fails (three attribute stores a
        # period measured about 50 ns).
        update, checked = self.controller.update, self._checked_command
        no_trigger = self._no_trigger
        amplitude, frequency, width, pulses = _KEYS
        renames = self._to_slots is not None
        packed, general = self._packed, self._general
        command, effective = self._command, self._effective
        now = self._require_reset("run")  # the step at the end of each period, below
        self._place(chunk.pool, now, 0)  # the packed kernel advances it from here
        try:
            for k in range(m):
                if packed is None:  # until the argument types settle (or a hook chose)
                    self._command, self._effective, self._step = command, effective, now
                    self._call(chunk, 1, k, program)
                    packed, types = self._packed, self._lent_types
                else:
                    packed(types, pool, command, effective, general)
                effective = -1  # queued
                now += spp
                t = now * dt
                features = {"biomarker": biomarkers[k]}
                for name, views in feature_rows:
                    features[name] = views[k]
                if slow_features:
                    features.update(slow_features)
                if live is not None:  # values that change every period (a respiratory phase)
                    features.update(live(t + offset_s))
                out = update(t, features)
                get = out.get
                # The same command objects as last period were checked then
                # (_checked_command's first test, without the call).
                if (
                    renames
                    or get(amplitude, command[0]) is not command[0]
                    or get(frequency, command[1]) is not command[1]
                    or get(width, command[2]) is not command[2]
                    or get(pulses, no_trigger) is not no_trigger
                    or command[3] is not no_trigger
                ):
                    command = checked(out, command)
                if slow_keys:
                    self.slow_clock.command(t + offset_s, out)
                effective = now + latency
                if command[3] is not no_trigger:  # the controller may have asked for bursts
                    mark_triggers(chunk.per_period, k, command[3], source_row)
        finally:
            self._command, self._effective, self._step = command, effective, now

    def _checked_command(self, out: Mapping[str, Any], previous: tuple) -> tuple:
        """The command arrays of ``out``; a missing key keeps ``previous`` (pulses: NaN)."""
        amplitude, frequency, width, pulses = _KEYS
        if self._to_slots is not None:
            out = self._to_slots(out)
        get = out.get
        if (
            get(amplitude, previous[0]) is previous[0]
            and get(frequency, previous[1]) is previous[1]
            and get(width, previous[2]) is previous[2]
            and get(pulses, self._no_trigger) is self._no_trigger
            and previous[3] is self._no_trigger
        ):
            return previous  # the same command objects as last period: checked then
        shape = (self.n,)
        return (
            command_array(out, amplitude, previous[0], shape),
            command_array(out, frequency, previous[1], shape),
            command_array(out, width, previous[2], shape),
            command_array(out, pulses, self._no_trigger, shape),
        )

    def _hand_over(self, chunk: _Chunk, on_chunk: ChunkCallback | None) -> None:
        """Check the chunk, advance the clock, hand it over."""
        self.model.step_ = self._step
        t0 = self.time_s
        check_finite(chunk.lfp, t0, self.sample_s)
        self._periods += chunk.per_period.shape[2]
        self.time_s = self._periods * self.control_period_s
        series = self._series(chunk)
        if self.slow_clock.processes:
            series.update(self.slow_clock.after_chunk(self._periods, series, self.device_state))
        if on_chunk is not None:
            on_chunk(t0, series)

    # -- optional hooks of the Loop contract ---------------------------------------
    def extra_timeseries(self) -> dict[str, tuple[str, float, str]]:
        """The slow processes' series, at their own rates (see :mod:`closedloop.core.slow`)."""
        return self.slow_clock.timeseries()

    def event_tables(self) -> dict[str, tuple[dict[str, tuple[str, str]], str]]:
        """The slow processes' event tables, named ``<process>_<table>``."""
        return self.slow_clock.event_tables()

    def drain_events(self) -> dict[str, dict[str, np.ndarray]]:
        """Events logged since the last call, per table."""
        return self.slow_clock.drain_events()

    def extra_metrics(self) -> dict[str, tuple[np.ndarray, str, str]]:
        """The slow processes' summary metrics and a non-DBS modality's dose metrics."""
        out = self.slow_clock.metrics()
        out.update(modality_metrics(self.device.modality, self.totals(), self.time_s))
        return out

    def run_attributes(self) -> dict[str, Any]:
        """The epoch schedule, when the run separates time scales."""
        return self.slow_clock.run_attributes()


_KEYS = tuple(COMMAND_KEYS)  # amplitude, frequency, pulse width, pulses


def controller_program(controller: Any, engine: str, n: int) -> tuple[int, np.ndarray, np.ndarray]:
    """The controller's compiled program, or kind ``NONE`` to run it in Python.

    Parameters
    ----------
    controller : closedloop.controllers.Controller
        The loop's controller.
    engine : {"auto", "compiled", "python"}
        ``control.engine``: ``"python"`` always runs ``update()``; ``"compiled"``
        requires a compiled twin.
    n : int
        Batch size (shape of the placeholder program).

    Returns
    -------
    tuple
        ``(kind, params, state)`` as the compiled kernels take them.
    """
    if engine != "python":
        program = controller.compiled()
        if program is not None:
            kind, params, state = program
            return (
                int(kind),
                np.ascontiguousarray(params, dtype=np.float64),
                np.ascontiguousarray(state, dtype=np.float64),
            )
        if engine == "compiled":
            raise ValueError(
                f"control.engine is 'compiled' but controller {type(controller).__name__}"
                " has no compiled twin; use 'auto' or 'python'"
            )
    return (compiled_twins.NONE, np.zeros((n, 1)), np.zeros((n, 1)))


def command_array(
    out: Mapping[str, Any], key: str, previous: np.ndarray, shape: tuple
) -> np.ndarray:
    """The command array for ``key``: C-contiguous float64 of shape ``shape``.

    ``out`` is what the controller returned; a missing key keeps ``previous``.
    Raises TypeError naming the key when the value is not a float array of
    that shape (or a scalar).
    """
    value = out.get(key, previous)
    if value is previous:  # checked last period (controllers often return the same array)
        return value
    if (
        type(value) is np.ndarray
        and value.shape == shape
        and value.dtype == np.float64
        and value.flags.c_contiguous
    ):
        return value
    try:
        arr = np.broadcast_to(np.asarray(value, dtype=np.float64), shape)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"controller returned {key!r} that is not a float array of shape {shape}: {value!r}"
        ) from exc
    return np.ascontiguousarray(arr)
