"""What every loop offers: the seam between a loop and what runs it.

:class:`Loop` is the contract shared by the Numba loop
(:class:`closedloop.core.loop.ClosedLoop`) and the Brian2 loop
(:class:`closedloop.brian.loop.BrianLoop`). The experiment runner, the sweep
worker and any replay talk to a loop only through it: the required methods,
the clock and seed attributes, and the optional hooks declared here with the
defaults a loop without them has (so no caller probes with ``getattr``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from closedloop.core.clocks import Clocks, SeedLayout

__all__ = ["ChunkCallback", "Loop", "ModelDivergedError", "SpikeCallback", "check_finite"]

#: ``on_chunk(t_start_s, data)``: one chunk of recorded series, each ``(n, m)``.
ChunkCallback = Callable[[float, dict[str, np.ndarray]], None]
#: ``on_spikes(population, time_s, instance, neuron)``: spikes since the last call.
SpikeCallback = Callable[[str, np.ndarray, np.ndarray, np.ndarray], None]


class ModelDivergedError(RuntimeError):
    """A model instance produced NaN or infinite values.

    Attributes
    ----------
    instance : int
        The first instance (in the loop's batch) that diverged.
    time_s : float
        Simulated time of its first non-finite sample, s: from the start of
        the recorded run, or from the start of the warm-up when
        ``warmup_s`` is set.
    warmup_s : float or None
        The length of the warm-up, s, when the model diverged during it
        (before anything was recorded); None during the run.
    """

    def __init__(self, instance: int, time_s: float, warmup_s: float | None = None) -> None:
        if warmup_s is None:
            text = f"instance {instance} produced a non-finite value at t = {time_s:.4f} s"
        else:
            text = (
                f"instance {instance} produced a non-finite value {time_s:.4f} s into the "
                f"{warmup_s:g} s warm-up (warmup_s), before the recorded run"
            )
        super().__init__(f"model diverged: {text}")
        self.instance = int(instance)
        self.time_s = float(time_s)
        self.warmup_s = None if warmup_s is None else float(warmup_s)

    def __reduce__(self) -> tuple:  # keeps the attributes across process boundaries
        return (type(self), (self.instance, self.time_s, self.warmup_s))


def check_finite(signal: np.ndarray, t0_s: float, sample_s: float) -> None:
    """Raise :class:`ModelDivergedError` for the first instance with a non-finite sample.

    ``signal`` has shape ``(n, m)``, sample ``j`` ending at ``t0_s + (j + 1) * sample_s``.
    """
    bad = ~np.isfinite(signal)
    if bad.any():
        inst = int(np.argmax(bad.any(axis=1)))
        first = int(np.argmax(bad[inst]))
        raise ModelDivergedError(inst, t0_s + (first + 1) * sample_s)


class Loop(ABC):
    """A model, sensing chain, device and controller on three clocks.

    Attributes (set by every loop)
    ------------------------------
    model, sensing, device, controller
        The components.
    n : int
        Instances in the batch.
    clocks : Clocks
        Integration step, sensing interval, control period, latency.
    seeds : SeedLayout
        Seed sequences of every instance.
    engine : {"auto", "python", "compiled"}
        Where the controller runs.
    time_s : float
        Simulated time since :meth:`reset` (after any warm-up), s.

    Notes
    -----
    Contract: :meth:`reset` before anything else; :meth:`run` continues where
    the last :meth:`run` or :meth:`step` stopped, so ``run(a)`` then
    ``run(b)`` gives bit for bit what ``run(a + b)`` gives (whole control
    periods; chunk boundaries do not matter).
    """

    model: Any
    sensing: Any
    device: Any
    controller: Any
    n: int
    clocks: Clocks
    seeds: SeedLayout
    engine: str
    time_s: float

    # -- clocks, as attributes (s and whole counts) ---------------------------------
    @property
    def dt_s(self) -> float:
        """Integration step, s."""
        return self.clocks.dt_s

    @property
    def sample_s(self) -> float:
        """Sensing interval, s."""
        return self.clocks.sample_s

    @property
    def steps_per_sample(self) -> int:
        """Integration steps per sensing sample."""
        return self.clocks.steps_per_sample

    @property
    def samples_per_period(self) -> int:
        """Sensing samples per control period."""
        return self.clocks.samples_per_period

    @property
    def steps_per_period(self) -> int:
        """Integration steps per control period."""
        return self.clocks.steps_per_period

    @property
    def control_period_s(self) -> float:
        """Control period, s."""
        return self.clocks.control_period_s

    @property
    def latency_steps(self) -> int:
        """Integration steps from the end of a period to its command taking effect."""
        return self.clocks.latency_steps

    @property
    def model_instance_seeds(self) -> list:
        """Model-noise seed of each instance (reuse them for a no-stimulation baseline)."""
        return self.seeds.model

    @property
    def controller_seeds(self) -> list:
        """Controller seed of each seed group."""
        return self.seeds.controller

    # -- required -------------------------------------------------------------------
    @abstractmethod
    def reset(self) -> None:
        """Reset model, device, sensing chain and controller for a new run."""

    @abstractmethod
    def warm_up(self, seconds: float) -> None:
        """Advance the model open loop, unrecorded, before the recorded run (t = 0)."""

    @abstractmethod
    def run(
        self,
        duration_s: float,
        *,
        chunk_s: float = 1.0,
        on_chunk: ChunkCallback | None = None,
        progress: Callable[[float], None] | None = None,
        on_spikes: SpikeCallback | None = None,
    ) -> dict[str, np.ndarray]:
        """Run ``duration_s`` more seconds (whole control periods) with the controller.

        Returns the device's totals per instance so far
        (:data:`closedloop.device.DEVICE_STATE`).
        """

    @abstractmethod
    def step(self, command: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
        """One control period with ``command`` instead of the controller's; its features."""

    @abstractmethod
    def program(self) -> tuple[int, np.ndarray, np.ndarray]:
        """The controller's compiled program (kind, params, state), or kind ``NONE``.

        Raises ValueError when ``engine`` is ``"compiled"`` and the controller
        has no compiled twin.
        """

    # -- optional hooks, with the defaults of a loop that has none -------------------
    @property
    def in_loop_baseline(self) -> bool:
        """True when the loop simulates unstimulated copies itself.

        Such a loop delivers their signal as ``lfp_baseline`` in every chunk;
        otherwise the runner simulates a baseline with ``model.like()``.
        """
        return False

    #: Populations whose spikes :meth:`run` hands to ``on_spikes``.
    record_spikes: tuple[str, ...] = ()

    @property
    def slow(self) -> tuple[Any, ...]:
        """Slow processes beside the neural clock (:mod:`closedloop.core.slow`)."""
        return ()

    def extra_timeseries(self) -> dict[str, tuple[str, float, str]]:
        """Further series in every chunk: name to (units, rate Hz, description)."""
        return {}

    def observables(self) -> dict[str, np.ndarray]:
        """The model's slow state worth recording, each ``(n,)`` (see the model)."""
        return self.model.observables()

    def run_attributes(self) -> dict[str, Any]:
        """Attributes a run file records about how this loop ran (after :meth:`run`)."""
        return {}

    def event_tables(self) -> dict[str, tuple[dict[str, tuple[str, str]], str]]:
        """Event tables the run file holds: name to (``{field: (dtype, units)}``, description).

        Every table has ``time_s`` and ``instance`` fields; the runner
        appends what :meth:`drain_events` returns after every chunk.
        """
        return {}

    def drain_events(self) -> dict[str, dict[str, np.ndarray]]:
        """Events logged since the last call: table name to equal-length columns."""
        return {}

    def extra_metrics(self) -> dict[str, tuple[np.ndarray, str, str]]:
        """Further summary metrics after :meth:`run`: name to (per instance, units, description)."""
        return {}
