"""The closed loop: model, sensing chain, device and controller on three clocks.

Clocks, all in seconds: the integration step ``dt_s`` (model and device), the
sensing sample interval ``1 / sensing.rate_hz`` (a whole number of steps) and
the control period (a whole number of sensing samples). At the end of every
control period the controller receives the features sensed up to then; its
command reaches the device ``latency_s`` later (a whole number of steps,
zero meaning the first step of the next period).

Per control period the model, the device and the sensing chain of every
instance advance in one compiled call; only the controller runs in Python
(numpy over the batch), so the Python cost per period is paid once for the
whole batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from closedloop.controllers import compiled as _compiled
from closedloop.controllers.base import COMMAND_KEYS, Controller
from closedloop.core.model import PARALLEL_MIN_BATCH, NumbaModel
from closedloop.core.random import rng_states
from closedloop.device import DEVICE_STATE, Device
from closedloop.metrics import StreamingPSD, band_power
from closedloop.sensing.chain import FIRST_FEATURE_ROW, SensingChain

__all__ = [
    "ClosedLoop",
    "ModelDivergedError",
    "command_array",
    "controller_program",
    "entry_point",
    "summarize",
    "whole_multiple",
]

_PER_PERIOD = ("biomarker", "amplitude", "frequency", "pulse_width", "pulse_count")
_PER_PERIOD_UNITS = ("signal", "mA", "Hz", "us")


class ModelDivergedError(RuntimeError):
    """A model instance produced NaN or infinite values."""


def whole_multiple(value: float, unit: float, what: str, unit_name: str) -> int:
    """Return ``value / unit`` as an int, or raise ValueError naming ``what``."""
    ratio = value / unit
    k = int(round(ratio))
    if k < 1 or abs(ratio - k) > 1e-6 * max(1.0, ratio):
        raise ValueError(
            f"{what} ({value:g} s) must be a whole, positive number of {unit_name} ({unit:g} s)"
        )
    return k


@dataclass
class _Chunk:
    lfp: np.ndarray
    sensed: np.ndarray
    per_period: np.ndarray


class ClosedLoop:
    """Run a controller against a model through a sensing chain and a device.

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
        Root seed: model noise, sensor noise and the controller's generator
        are spawned from it with :class:`numpy.random.SeedSequence`. A
        sequence of ``g`` roots (``g`` dividing ``n``) seeds ``g`` groups of
        ``n / g`` consecutive instances, each group exactly as a loop of
        ``n / g`` instances given that root alone would be seeded (a
        :class:`~numpy.random.SeedSequence` root is used as a fresh copy, its
        own spawn counter untouched). This is how a batch of sweep runs
        simulated together reproduces each run simulated alone, bit for bit.

    Attributes
    ----------
    model_instance_seeds : list of numpy.random.SeedSequence
        Model noise seed of each instance (reuse them for a no-stimulation
        baseline).
    controller_seeds : list of numpy.random.SeedSequence
        Controller generator seed of each seed group (one for an int seed);
        :meth:`reset` gives the controller a generator from the first.
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
    ) -> None:
        self.model = model
        self.sensing = sensing
        self.device = device
        self.controller = controller
        if engine not in ("auto", "python", "compiled"):
            raise ValueError(f"control.engine must be auto, python or compiled, got {engine!r}")
        self.engine = engine
        self.n = model.n
        self.dt_s = model.dt_s
        self.steps_per_sample = whole_multiple(
            1.0 / sensing.rate_hz,
            self.dt_s,
            "the sensing interval 1/sensing.rate_hz",
            "integration steps dt_s",
        )
        self.sample_s = self.steps_per_sample * self.dt_s
        self.samples_per_period = whole_multiple(
            control_period_s, self.sample_s, "control.period_s", "sensing intervals"
        )
        self.steps_per_period = self.steps_per_sample * self.samples_per_period
        self.control_period_s = self.steps_per_period * self.dt_s
        if latency_s < 0 or not math.isfinite(latency_s):
            raise ValueError(f"control.latency_s must be zero or positive, got {latency_s!r}")
        self.latency_steps = (
            0
            if latency_s == 0
            else whole_multiple(latency_s, self.dt_s, "control.latency_s", "integration steps dt_s")
        )
        if isinstance(seed, int | np.integer):
            self.seed = int(seed)
            roots = [np.random.SeedSequence(self.seed)]
        else:
            roots = [
                np.random.SeedSequence(int(s))
                if isinstance(s, int | np.integer)
                else np.random.SeedSequence(s.entropy, spawn_key=s.spawn_key, pool_size=s.pool_size)
                for s in seed
            ]
            if not roots or self.n % len(roots):
                raise ValueError(
                    f"seed: {len(roots)} seed roots cannot split {self.n} instances into "
                    "equal groups"
                )
            self.seed = tuple(seed)
        per_root = self.n // len(roots)
        self.model_instance_seeds = []
        self._sensor_seeds = []
        self.controller_seeds = []
        for root in roots:
            model_seq, sensor_seq, controller_seq = root.spawn(3)
            self.model_instance_seeds += model_seq.spawn(per_root)
            self._sensor_seeds += sensor_seq.spawn(per_root)
            self.controller_seeds.append(controller_seq)
        self._controller_seed = self.controller_seeds[0]

    # -- set-up ---------------------------------------------------------------------
    def reset(self) -> None:
        """Reset model, device, sensing chain and controller for a new run."""
        n = self.n
        self.model.reset(self.model_instance_seeds)
        self.sensing_state = self.sensing.new_state(n, rng_states(self._sensor_seeds))
        queue_len = self.latency_steps // self.steps_per_period + 3
        self.device_state = self.device.kernel_state(n, queue_len)
        self.controller.reset(n, np.random.default_rng(self._controller_seed))
        spp = self.steps_per_period
        self._scratch = (
            np.zeros((n, spp)),
            np.zeros((n, spp)),
            np.zeros((n, spp)),
            np.zeros((n, self.samples_per_period)),
            np.zeros((n, self.samples_per_period)),
        )
        self.time_s = 0.0

    def warm_up(self, seconds: float) -> None:
        """Advance the model open loop, unrecorded, e.g. past its initial transient."""
        if seconds > 0:
            self.model.advance(int(round(seconds / self.dt_s)))
        self.model.step_ = 0  # the recorded run starts at t = 0

    def _program(self) -> tuple[int, np.ndarray, np.ndarray]:
        """The controller's compiled program, or kind ``NONE`` to run it in Python."""
        return controller_program(self.controller, self.engine, self.n)

    # -- running --------------------------------------------------------------------
    def run(
        self,
        duration_s: float,
        *,
        chunk_s: float = 1.0,
        on_chunk: Callable[[float, dict[str, np.ndarray]], None] | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> dict[str, np.ndarray]:
        """Run for ``duration_s`` seconds, handing each chunk to ``on_chunk``.

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
            rate, each of shape ``(n, m)``.
        progress : callable, optional
            Called with the simulated seconds done after each chunk.

        Returns
        -------
        dict of ndarray
            Final device accounting per instance (see
            :data:`closedloop.device.DEVICE_STATE`).

        Raises
        ------
        ModelDivergedError
            When an instance's signal becomes NaN or infinite; the chunks
            before it have been handed over.
        """
        n_periods = int(round(duration_s / self.control_period_s))
        per_chunk = max(1, min(n_periods, int(round(chunk_s / self.control_period_s))))
        kernel = (
            self.model._periods_parallel
            if self.n >= PARALLEL_MIN_BATCH
            else self.model._periods_serial
        )
        program = self._program()
        model_state = self.model.kernel_state()
        device = self.device_state
        sensing = self.sensing_state.as_tuple()
        controller = self.controller
        spp, spk = self.steps_per_period, self.samples_per_period
        shape = (self.n,)
        latency = self.latency_steps
        period_s = self.control_period_s
        dt = self.dt_s
        command = (
            *(self.device_state[0][:, c].copy() for c in (1, 2, 3)),
            np.full(self.n, np.nan),  # pulses: no change
        )
        no_trigger = command[3]
        no_trigger.flags.writeable = False
        keys = tuple(COMMAND_KEYS)
        feature_names = self.sensing.features
        step = 0
        effective = -1  # nothing to queue before the first controller call
        call = kernel
        done = 0
        while done < n_periods:
            m = min(per_chunk, n_periods - done)
            chunk = _Chunk(
                np.empty((self.n, m * spk)),
                np.empty((self.n, m * spk)),
                np.empty((self.n, FIRST_FEATURE_ROW + len(feature_names), m)),
            )
            io = (*self._scratch, chunk.lfp, chunk.sensed, chunk.per_period)
            if program[0] >= 0:
                # Compiled controller: the whole chunk in one call.
                kernel(
                    m,
                    spp,
                    step,
                    dt,
                    model_state,
                    device,
                    sensing,
                    io,
                    0,
                    program,
                    latency,
                    period_s,
                    command,
                    -1,
                )
                step += m * spp
            else:
                # Controllers get read-only views: they cannot corrupt the recording.
                rows = chunk.per_period.view()
                rows.flags.writeable = False
                biomarker_rows = rows[:, 0, :]
                feature_rows = [
                    (name, rows[:, FIRST_FEATURE_ROW + f, :])
                    for f, name in enumerate(feature_names)
                ]
                for k in range(m):
                    args = (
                        1,
                        spp,
                        step,
                        dt,
                        model_state,
                        device,
                        sensing,
                        io,
                        k,
                        program,
                        latency,
                        period_s,
                        command,
                        effective,
                    )
                    if call is kernel and effective >= 0:
                        # Argument types are settled once the controller has answered.
                        call = entry_point(kernel, args)
                    call(*args)
                    step += spp
                    features = {"biomarker": biomarker_rows[:, k]}
                    for name, values in feature_rows:
                        features[name] = values[:, k]
                    out = controller.update(step * dt, features)
                    command = (
                        command_array(out, keys[0], command[0], shape),
                        command_array(out, keys[1], command[1], shape),
                        command_array(out, keys[2], command[2], shape),
                        command_array(out, keys[3], no_trigger, shape),
                    )
                    effective = step + latency
            self.model.step_ = step
            t0 = done * period_s
            _check_finite(chunk.lfp, t0, self.sample_s)
            if on_chunk is not None:
                on_chunk(
                    t0,
                    {
                        "lfp": chunk.lfp,
                        "lfp_sensed": chunk.sensed,
                        **{name: chunk.per_period[:, c, :] for c, name in enumerate(_PER_PERIOD)},
                        **{
                            f"feature_{name}": chunk.per_period[:, FIRST_FEATURE_ROW + f, :]
                            for f, name in enumerate(feature_names)
                        },
                    },
                )
            done += m
            self.time_s = done * period_s
            if progress is not None:
                progress(self.time_s)
        state = device[0]
        return {name: state[:, c].copy() for c, name in enumerate(DEVICE_STATE)}


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
    return (_compiled.NONE, np.zeros((n, 1)), np.zeros((n, 1)))


def entry_point(dispatcher: Any, args: tuple) -> Any:
    """The compiled function for these argument types, skipping Numba's type dispatch.

    Dispatch re-types every argument on every call (about 2 us for the ~30
    arrays of a period kernel, a fifth of a 1 ms period's budget). The loops
    only pass arguments of fixed types: state arrays they own and command
    arrays that :func:`command_array` makes C-contiguous float64 of shape
    ``(n,)`` (read-only or not: both share Numba's data model, and the
    kernels only read commands).
    """
    sig = tuple(numba.typeof(a) for a in args)
    compiled = dispatcher.overloads.get(sig)
    return dispatcher if compiled is None else compiled.entry_point


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


def _check_finite(lfp: np.ndarray, t0: float, sample_s: float) -> None:
    bad = ~np.isfinite(lfp)
    if bad.any():
        inst = int(np.argmax(bad.any(axis=1)))
        first = int(np.argmax(bad[inst]))
        raise ModelDivergedError(
            f"model diverged: instance {inst} produced a non-finite value at "
            f"t = {t0 + (first + 1) * sample_s:.4f} s"
        )


def summarize(
    psd_stim: StreamingPSD,
    psd_base: StreamingPSD | None,
    device_totals: dict,
    mean_amplitude_ma: np.ndarray,
    duration_s: float,
    device: Device,
    reference: dict,
    band_hz: tuple[float, float],
) -> dict[str, np.ndarray]:
    """Compute :data:`closedloop.metrics.METRIC_INFO` metrics for a finished run."""
    f = psd_stim.frequency_hz
    stim = band_power(f, psd_stim.psd(), band_hz)
    out = {"beta_power_stim": stim}
    if psd_base is not None:
        base = band_power(f, psd_base.psd(), band_hz)
        out["beta_power_baseline"] = base
        with np.errstate(divide="ignore", invalid="ignore"):
            out["beta_reduction"] = 1.0 - stim / base
    teed_ref = device.teed_j(
        reference["amplitude_ma"],
        reference["frequency_hz"],
        reference["pulse_width_us"],
        duration_s,
    )
    out["teed_j"] = device_totals["energy_j"]
    out["teed_relative"] = device_totals["energy_j"] / teed_ref
    out["time_on_fraction"] = device_totals["time_on_s"] / duration_s
    out["n_switches"] = device_totals["n_switches"]
    out["mean_amplitude_ma"] = mean_amplitude_ma
    out["charge_uc"] = device_totals["charge_uc"]
    out["n_rejected_commands"] = device_totals["n_rejected"]
    return out
