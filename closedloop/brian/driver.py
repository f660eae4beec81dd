"""The Python side of the Brian2 loop's network operation, for the runtime targets.

:class:`NetworkDriver` builds a :class:`~closedloop.brian.loop.BrianLoop`'s
network once per :meth:`~closedloop.brian.loop.BrianLoop.reset` and runs it,
a whole :meth:`~closedloop.brian.loop.BrianLoop.run` in one ``Network.run``.
Nothing it adds runs at every integration step:

* **Signal.** The model keeps a running integral of its signal per neuron
  inside its own state update (e.g. ``d lfp_cum/dt = I_syn / (nA*second)``),
  or per instance for a user's network. At every sensing sample the sum of
  each instance's integrals is read and its increment since the previous
  sample, divided by the sampling interval, is the sample: the boxcar mean
  over the interval of :mod:`closedloop.sensing.chain`, with no per-step code.
* **Network operation.** One :class:`brian2.NetworkOperation` on the
  network's own clock (a second clock would cost Brian2's multi-clock
  scheduling at every step, about 10 % at 1,000 neurons) returns at once
  between samples; at a sample it reads the running integrals' raw arrays
  (no unit-checked state access) and makes one compiled call
  (:func:`closedloop.brian.operation.loop_operation`): it takes the samples
  and, at the end of a control period, senses, records, runs a compiled
  controller twin if there is one and lets the device compute the exact
  drive of every step of the next period. A controller without a compiled
  twin is called in Python, once per control period, between two such calls.
* **Drive.** The drive of the coming period is written in place into the
  ring buffer of a :class:`brian2.TimedArray` that the stimulated group's
  equations read (:class:`~closedloop.brian.build.StimulationInput`):
  stimulation costs nothing the open-loop network does not already compute.
  A user's network, whose equations cannot be changed, gets it through a
  code runner that writes the drive times the gain into a parameter it names
  at every step (one assignment per neuron, hoisted out of the loop for one
  instance); its population rate is read from a spike monitor that only
  counts (integer counts, copied into floats at each sample).

A loop of short ``net.run`` calls costs about 500 times a single run, which
is why none is used here. The scheduling slot is ``groups``: the network
operation (order -8), then a user network's integrating sensor probe
(orders -7 and -6), its stimulation writer (order -1) and the network's
own state updates (order 0): at the start of a step the operation reads
running integrals that hold every step before it and none after.

State carried from run to run (so that runs continue one another bit for
bit): the periods done, the last command, the running integrals' last
values, Brian2's network, clocks and random buffers. The device, sensing
and controller states are the loop's (:attr:`BrianLoop.device_state` and
so on), read and updated in place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from closedloop.brian.build import StimulationInput, require_brian
from closedloop.brian.operation import loop_operation
from closedloop.brian.runtime import (
    ORDER_OPERATION,
    check_clocks,
    raw_array,
    select_target,
    set_default_dt,
    spike_monitors,
)
from closedloop.controllers.base import COMMAND_KEYS
from closedloop.core.loop import (
    PER_PERIOD_SERIES,
    command_array,
    entry_point,
    mark_triggers,
    trigger_source,
)
from closedloop.core.protocol import ChunkCallback, SpikeCallback, check_finite
from closedloop.core.record import FIRST_FEATURE_ROW
from closedloop.device import device_targets, queue_push, retract_commands

__all__ = ["NetworkDriver"]

_KEYS = tuple(COMMAND_KEYS)  # amplitude, frequency, pulse width, pulses

#: What the driver copies from its loop once (settings that do not change).
_LOOP_SETTINGS = (
    "baseline",
    "brian_seed",
    "control_period_s",
    "dt_s",
    "latency_steps",
    "model",
    "n",
    "n_total",
    "record_rates",
    "record_spikes",
    "sample_s",
    "samples_per_period",
    "sensing",
    "steps_per_period",
    "steps_per_sample",
    "target",
)


class NetworkDriver:
    """A loop's Brian2 network, built once and run period by period from inside ``Network.run``.

    Parameters
    ----------
    loop : closedloop.brian.loop.BrianLoop
        The loop, already reset (its device, sensing and controller states
        are used in place); only its public attributes are read.

    Attributes
    ----------
    net : brian2.Network
        The network, with the loop's operation and spike monitors.
    monitors : dict of str to (brian2.SpikeMonitor, int)
        Spike monitor of each recorded population, with neurons per instance.
    periods_done : int
        Control periods run since the loop's reset.
    time_s : float
        Simulated time since the reset (after the warm-up), s.
    warm_steps : int
        Integration steps of the warm-up.
    last_period : ndarray, shape (n, rows)
        The per-period record (biomarker, device, features) of the last period.
    source_names : list of str
        Names of the recorded population rates (``rate_<population>``).
    target_ : str
        The code-generation target used.
    profiling_info_ : list of (str, float)
        Brian2's profile of the last run (object name, s), when the loop's
        ``profile`` is set.
    """

    # Settings copied from the loop once (``_LOOP_SETTINGS``), declared for type checkers.
    baseline: bool
    brian_seed: int
    control_period_s: float
    dt_s: float
    latency_steps: int
    model: Any  # closedloop.brian.model.BrianModel
    n: int
    n_total: int
    record_rates: bool
    record_spikes: tuple[str, ...]
    sample_s: float
    samples_per_period: int
    sensing: Any  # closedloop.sensing.SensingChain
    steps_per_period: int
    steps_per_sample: int
    target: str

    def __init__(self, loop: Any) -> None:
        require_brian()
        import brian2
        from brian2 import Network, NetworkOperation

        self.loop = loop
        for name in _LOOP_SETTINGS:
            setattr(self, name, getattr(loop, name))
        self.periods_done = 0
        self.time_s = 0.0
        self.warm_steps = 0
        self.last_period: np.ndarray | None = None
        # The last command: what a command's missing keys keep (pulses: NaN,
        # "no change", never written by the compiled call).
        self._command: tuple[np.ndarray, ...] = (
            *device_targets(loop.device_state),
            np.full(loop.n, np.nan),
        )
        self._no_trigger = self._command[3]
        self._effective = -1  # step from which a command from set_command() applies
        self.profiling_info_: list[tuple[str, float]] = []
        self.target_ = select_target(self.target)
        set_default_dt(self.dt_s)
        brian2.seed(self.brian_seed)
        n_tot, spp = self.n_total, self.steps_per_period
        stim = StimulationInput("ring", steps=spp, columns=n_tot, dt_s=self.dt_s)
        self._ring = stim.ring
        self._n_columns = n_tot
        net = self.model.build(self.loop.build_context(stim))
        check_clocks(net, self.sample_s, self.control_period_s)
        sources = [("signal", net.signal)]
        if self.record_rates:
            sources += [(f"rate_{name}", src) for name, src in net.populations.items()]
        objects = list(net.objects)
        cums, blocks, scales = [], [], []
        self._casts: list[tuple[np.ndarray, np.ndarray]] = []
        for name, src in sources:
            # The operation sums each instance's block of running integrals
            # itself: no probe group, no second clock.
            cum = src.array if src.array is not None else raw_array(src.group, src.variable)
            size = cum.size  # (a spike monitor's len is its spike count)
            block = size // n_tot
            if size % n_tot or not np.array_equal(
                np.asarray(src.instance_of), np.repeat(np.arange(n_tot), block)
            ):
                raise ValueError(
                    f"{name}: group {src.group.name!r} must hold the {n_tot} instances in "
                    "equal consecutive blocks"
                )
            if cum.dtype != np.float64:
                # A spike monitor's integer counts: copied into floats at each
                # sample, as the compiled call takes one array type.
                copy = np.zeros(cum.shape)
                self._casts.append((copy, cum))
                cum = copy
            cums.append(cum)
            blocks.append(block)
            scales.append(src.scale)
        self.source_names = [name for name, _ in sources[1:]]
        self._cums = tuple(cums)
        self._blocks = np.asarray(blocks, dtype=np.int64)
        self._scales = np.asarray(scales, dtype=np.float64)
        self.monitors = spike_monitors(net, self.record_spikes, self.model.name)
        objects += [mon for mon, _ in self.monitors.values()]
        # On the network's own clock: a second clock would cost Brian2's
        # multi-clock scheduling at every step (about 10 % at 1,000 neurons);
        # the operation returns at once between samples.
        self._countdown = 1
        self._direct = net.direct_drive
        self._spike_count = net.spike_count
        self._written = np.nan  # the drive last written into the parameter, mA
        on_step = self._on_step
        if self._direct is not None or self._spike_count is not None:
            on_step = self._on_step_direct
        self._operation_object = NetworkOperation(on_step, when="groups", order=ORDER_OPERATION)
        # The step counter of the network's clock, read in place (the ring's row is step % spp).
        self._timestep = raw_array(self._operation_object.clock, "timestep")
        objects.append(self._operation_object)
        self.net = Network(*objects)
        self._namespace = dict(net.namespace)
        self._prev = np.zeros((len(cums), n_tot))
        self._buf = np.zeros((len(cums), n_tot, self.samples_per_period))

    def warm_up(self, periods: int) -> None:
        """Run the network ``periods`` control periods open loop, unrecorded."""
        from brian2 import second

        set_default_dt(self.dt_s)  # the default clock is process-wide: ours again
        quiet = [self._operation_object, *(mon for mon, _ in self.monitors.values())]
        if self._direct is not None:  # open loop: no drive (as the ring's zeros after reset)
            values, targets, _ = self._direct
            values[targets] = 0.0
            self._written = np.nan
        for obj in quiet:
            obj.active = False
        try:
            self.net.run(periods * self.control_period_s * second, namespace=self._namespace)
        finally:
            for obj in quiet:
                obj.active = True
        self.warm_steps += periods * self.steps_per_period
        # The running integrals grew during the warm-up: start from where they are
        # (with the spikes of its last step, which no operation read).
        if self._spike_count is not None:
            space, count = self._spike_count
            count[0] += space[-1]
        for copy, cum in self._casts:
            copy[:] = cum
        for s, c in enumerate(self._cums):
            self._prev[s] = c.reshape(self.n_total, -1).sum(axis=1)

    def set_command(self, command: Mapping[str, Any]) -> None:
        """Queue ``command`` for the next period, from ``latency_steps`` after its start.

        It replaces the command the controller issued at the end of the last
        period (already queued for the same step); a missing key keeps the
        last command's value, ``pulses`` none.
        """
        effective = self.periods_done * self.steps_per_period + self.latency_steps
        retract_commands(self.loop.device_state, effective)
        prev, shape = self._command, (self.n,)
        self._command = tuple(
            command_array(command, key, old, shape)
            for key, old in zip(_KEYS, (*prev[:3], self._no_trigger), strict=True)
        )
        self._effective = effective

    def run(
        self,
        n_periods: int,
        per_chunk: int,
        program: tuple,
        python: bool,
        on_chunk: ChunkCallback | None,
        progress: Callable[[float], None] | None,
        on_spikes: SpikeCallback | None,
    ) -> None:
        """``n_periods`` control periods in one ``Network.run``.

        Parameters
        ----------
        n_periods, per_chunk : int
            Periods to run, and per chunk handed to ``on_chunk``.
        program : tuple
            The compiled controller (kind ``NONE``: none).
        python : bool
            Ask the loop's controller in Python at the end of every period.
        on_chunk, progress, on_spikes : callable or None
            As for :meth:`closedloop.brian.loop.BrianLoop.run`.
        """
        from brian2 import prefs, second

        prefs.codegen.target = self.target_
        set_default_dt(self.dt_s)  # the default clock is process-wide: ours again
        self._n_periods_run = n_periods
        self._per_chunk = per_chunk
        self._on_chunk = on_chunk
        self._progress = progress
        self._on_spikes = on_spikes
        self._run_program = program
        self._python_controller = python
        self._prepare_run()
        self._error: BaseException | None = None
        try:
            self.net.run(
                n_periods * self.control_period_s * second,
                namespace=self._namespace,
                profile=self.loop.profile,
            )
        finally:
            self._operation_object.active = True
        if self.loop.profile:
            self.profiling_info_ = [(name, float(t)) for name, t in self.net.profiling_info]
        if self._error is not None:
            raise self._error
        # The last sample and period end with the run: no operation call follows.
        self._on_sample()
        if self._error is not None:
            raise self._error
        self._flush()

    def _prepare_run(self) -> None:
        """Counters and buffers of a run whose arguments :meth:`run` has stored."""
        n, m = self.n, self.samples_per_period
        self._first_period = self.periods_done
        self._calls = 0
        self._countdown = 1
        self._chunk_start = self.periods_done
        spp = self.steps_per_period
        self._scratch = (
            np.zeros((n, m)),  # artefact per sample
            np.zeros((n, spp)),  # net current per step
            np.zeros((n, spp)),  # cathodic drive per step
        )
        self._sensing_state = self.loop.sensing_state
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
            np.full((len(self.source_names), n, m * size), np.nan),
            np.full((n, FIRST_FEATURE_ROW + f, size), np.nan),
        )
        self._io = (*self._chunk, *self._scratch)

    def _on_step_direct(self) -> None:
        """:meth:`_on_step` for a user network the operation reads and drives itself.

        First the spikes of the last step into the running count (the spike
        space holds them until this step's threshold), then the sample, then
        this step's drive into the user's parameter if it changed.
        """
        if self._spike_count is not None:
            space, count = self._spike_count
            k = space[-1]
            if k:
                count[0] += k
        self._countdown -= 1
        if self._countdown == 0:
            self._countdown = self.steps_per_sample
            self._on_sample()
        if self._direct is None:
            return
        drive = self._ring[self._timestep[0] % self.steps_per_period]
        if drive != self._written:
            self._written = drive
            values, targets, gain = self._direct
            values[targets] = gain * drive

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
            self.net.stop()

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
        for copy, cum in self._casts:
            copy[:] = cum
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
            self.loop.device_state,
            self._sensing_state,
            self._io,
            chunk_col * m,
            chunk_col,
            self._run_program,
            self.latency_steps,
            self.control_period_s,
            fill and not (end and self._python_controller),
            spp,
            self._ring,
            self.warm_steps % spp,
            self._command,
            self._effective,
        )
        self._dispatch(args)
        if args[22]:  # filled: a command from step() is queued now
            self._effective = -1
        if end and self._python_controller:
            rows = per_period[:, :, chunk_col]
            features = {"biomarker": rows[:, 0].copy()}
            for f, name in enumerate(self.sensing.features):
                features[name] = rows[:, FIRST_FEATURE_ROW + f].copy()
            for v in features.values():
                v.flags.writeable = False
            out = self.loop.controller.update(step_end * self.dt_s, features)
            shape = (self.n,)
            prev = self._command
            self._command = (
                command_array(out, _KEYS[0], prev[0], shape),
                command_array(out, _KEYS[1], prev[1], shape),
                command_array(out, _KEYS[2], prev[2], shape),
                command_array(out, _KEYS[3], self._no_trigger, shape),
            )
            if self._command[3] is not self._no_trigger:
                row = trigger_source(self.loop.controller, self.sensing.features)[1]
                mark_triggers(per_period, chunk_col, self._command[3], row)
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
                queue_push(self.loop.device_state, self._command, step_end + self.latency_steps)
        if end:
            self.periods_done = period_index + 1
            done_in_chunk = self.periods_done - self._chunk_start
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
            loop_operation(*args)
            self._call = entry_point(loop_operation, args)
        else:
            call(*args)

    def _flush(self) -> None:
        """Hand the periods done since the last chunk to ``on_chunk``."""
        done = self.periods_done - self._chunk_start
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
            for c, name in enumerate(PER_PERIOD_SERIES):
                data[name] = per_period[:, c, :done]
            for f, name in enumerate(self.sensing.features):
                data[f"feature_{name}"] = per_period[:, FIRST_FEATURE_ROW + f, :done]
            for s, name in enumerate(self.source_names):
                data[name] = rates[s, :, : done * m]
            self._on_chunk(t0, data)
        self.last_period = per_period[:, :, done - 1].copy()
        self._drain_spikes()
        self._chunk_start = self.periods_done
        self.time_s = self.periods_done * self.control_period_s
        if self._progress is not None:
            self._progress(self.time_s)
        self._new_chunk_buffers()

    def _drain_spikes(self) -> None:
        """Hand recorded spikes to ``on_spikes`` and empty the monitors."""
        for name, (mon, per_inst) in self.monitors.items():
            count = raw_array(mon, "N")
            k = int(count[0])
            if k and self._on_spikes is not None:
                idx = np.array(raw_array(mon, "i")[:k], dtype=np.int64)
                t = np.array(raw_array(mon, "t")[:k]) - self.warm_steps * self.dt_s
                instance = idx // per_inst
                keep = instance < self.n
                self._on_spikes(name, t[keep], instance[keep], idx[keep] % per_inst)
            mon.resize(0)
            count[0] = 0
