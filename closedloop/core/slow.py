"""Slow clocks: states that change over minutes to weeks beside the neural clock.

Drugs (pharmacokinetics and pharmacodynamics), symptom states, plasticity
read out as a clinical score, electrode drift and clinic visits change far
more slowly than a neural population. Each is a :class:`SlowProcess`: a
batched state with its own step ``period_s`` (a whole number of control
periods) that the loop advances at the end of every one of its steps, from
what the fast loop did over that step (the *readout*), and that may change
the model's declared-modulatable parameters (:attr:`NumbaModel.modulatable`)
from then on.

The loop's side (:class:`closedloop.core.loop.ClosedLoop`):

- chunks end on every slow step boundary, so the slow steps fall on the
  same control periods however a run is chunked (chunk invariance and
  resumption hold for slow states as for the model);
- at :meth:`~closedloop.core.loop.ClosedLoop.reset` each process is reset
  with its own per-instance seeds and its initial :meth:`SlowProcess.modulation`
  is applied to the model;
- at the end of each slow step it calls :meth:`SlowProcess.advance` with the
  readout (the means over the step of the per-period series, and the
  model's observables at its end), applies :meth:`SlowProcess.modulation`,
  and hands :meth:`SlowProcess.values` over with the chunk as series named
  ``<process>_<series>`` at the slow rate;
- a controller's command keys that a process declares in
  :attr:`SlowProcess.command_keys` (a dose, say) are handed to
  :meth:`SlowProcess.command` at the end of each control period;
- events a process logs (doses given, doses refused) are drained after each
  chunk into the run file's ``events/<process>_<table>`` tables.

Explicit time-scale separation for runs of days and weeks is
:class:`EpochSchedule`: the neural loop runs for ``epoch_s`` out of every
``every_s`` of slow time, and the slow processes cover the gaps with the
readout of the last epoch held (see its notes for the error this makes and
how it is measured).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MethodType
from typing import Any, ClassVar, Self, cast

import numpy as np

__all__ = ["EpochSchedule", "SlowProcess", "batchable", "check_modulation", "readout_names"]


class SlowProcess(ABC):
    """A batched state on a slow clock beside the neural loop.

    Subclasses set :attr:`name` and :attr:`period_s` in ``__init__`` (which
    only stores its parameters) and implement :meth:`reset`,
    :meth:`advance`, :meth:`series` and :meth:`values`; :meth:`modulation`,
    :meth:`command`, :meth:`event_tables` and :meth:`drain_events` have the
    defaults of a process that changes no parameter, takes no command and
    logs no event.

    Attributes
    ----------
    name : str
        Short name (``"drugs"``, ``"mood"``): the prefix of its recorded
        series and event tables.
    period_s : float
        Its step, s: a whole number of the loop's control periods.
    command_keys : tuple of str
        Keys of a controller's command this process takes (e.g.
        ``"dose_levodopa_mg"``); the loop hands them to :meth:`command`.
    """

    name: str
    period_s: float
    command_keys: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def reset(self, n: int, seeds: Sequence[np.random.SeedSequence]) -> None:
        """Start ``n`` instances at slow time 0 (one seed sequence per instance)."""

    @abstractmethod
    def advance(self, t_s: float, dt_s: float, readout: Mapping[str, np.ndarray]) -> None:
        """Advance from ``t_s - dt_s`` to ``t_s`` (s).

        Parameters
        ----------
        t_s : float
            Slow time at the end of the step, s.
        dt_s : float
            Length of the step, s (``period_s``, or longer across an
            :class:`EpochSchedule` gap).
        readout : mapping of str to ndarray
            Per-instance values, each ``(n,)``: the means over the step of
            the loop's per-period series (``biomarker``, ``amplitude``,
            ``frequency``, ``pulse_width``, ``feature_<name>``), the model's
            observables at the step's end (under their own names), and
            ``delivered_charge_uc`` (charge delivered during the step, uC).
        """

    @abstractmethod
    def series(self) -> dict[str, tuple[str, str]]:
        """Series recorded at the end of every step: name to (units, description)."""

    @abstractmethod
    def values(self) -> dict[str, np.ndarray]:
        """The current value of every series of :meth:`series`, each ``(n,)``."""

    def modulation(self) -> dict[str, np.ndarray]:
        """Model parameters to use from now on: name to per-instance values ``(n,)``."""
        return {}

    def command(self, t_s: float, command: Mapping[str, np.ndarray]) -> None:
        """Take a controller's command at time ``t_s`` (s): only :attr:`command_keys`."""
        if self.command_keys:
            raise NotImplementedError(
                f"slow process {self.name!r} declares command keys but does not take commands"
            )

    def event_tables(self) -> dict[str, tuple[dict[str, tuple[str, str]], str]]:
        """Event tables it logs: name to (``{field: (dtype, units)}``, description).

        Every table has the fields ``time_s`` and ``instance``.
        """
        return {}

    def drain_events(self) -> dict[str, dict[str, np.ndarray]]:
        """Events since the last call: table name to equal-length columns."""
        return {}

    def metrics(self) -> dict[str, tuple[np.ndarray, str, str]]:
        """Summary metrics at the end of a run: name to (value per instance, units, description)."""
        return {}

    def observe(self, t0_s: float, period_s: float, series: Mapping[str, np.ndarray]) -> None:
        """See every control period of a chunk, before any step that ends with it.

        For a process that needs what happened within its step at the
        control period's resolution (a physiological clock timing the
        pulses it is given). The default ignores it.

        Parameters
        ----------
        t0_s : float
            Time at the start of the chunk, s.
        period_s : float
            The control period, s.
        series : mapping of str to ndarray
            The chunk's per-period series (``amplitude``, ``pulse_count``,
            ``feature_<name>``, ...), each ``(n, periods)``.
        """
        return None

    def live_features(self, t_s: float) -> dict[str, np.ndarray]:
        """Values of some :meth:`series` at any control period's end ``t_s`` (s).

        A controller reads them every control period instead of the value
        held since the last step (a respiratory phase, say). Times do not
        decrease between calls within a run; the default has none.
        """
        return {}

    @classmethod
    def concatenate(cls, processes: Sequence[Self], sizes: Sequence[int]) -> Self:
        """One process for several runs simulated as one batch (a sweep, a cohort).

        ``processes[k]`` was configured for ``sizes[k]`` instances; the
        result serves their concatenation, instance for instance. The
        default refuses: runs with this process are then simulated one at a
        time.

        Raises
        ------
        NotImplementedError
            When the process cannot be batched.
        """
        raise NotImplementedError(f"{cls.__name__} cannot be batched across runs")


def batchable(process: SlowProcess) -> bool:
    """Whether ``process`` can serve several runs in one batch (it overrides ``concatenate``)."""
    own = cast(MethodType, type(process).concatenate).__func__
    return own is not cast(MethodType, SlowProcess.concatenate).__func__


def readout_names(per_period: Sequence[str], observables: Sequence[str]) -> tuple[str, ...]:
    """The keys of a slow process's readout (see :meth:`SlowProcess.advance`)."""
    return (*per_period, *observables, "delivered_charge_uc")


def check_modulation(model: Any, process: SlowProcess, values: Mapping[str, np.ndarray]) -> None:
    """Raise ValueError unless every modulated parameter is declared and in range.

    Parameters
    ----------
    model : NumbaModel
        Declares :attr:`modulatable` and each :class:`Parameter`'s range.
    process : SlowProcess
        The process that asks (named in the message).
    values : mapping of str to ndarray
        Parameter name to per-instance values.
    """
    allowed = getattr(model, "modulatable", ())
    for key, value in values.items():
        if key not in allowed:
            raise ValueError(
                f"slow process {process.name!r} modulates model parameter {key!r}, which "
                f"model {model.name!r} does not declare modulatable "
                f"(modulatable: {', '.join(allowed) or 'none'})"
            )
        arr = np.asarray(value, dtype=np.float64)
        if arr.shape != (model.n,):
            raise ValueError(
                f"slow process {process.name!r} gave {arr.shape} values for model "
                f"parameter {key!r}; expected one per instance ({model.n})"
            )
        model.parameters[key].check(key, arr, model.dt_s)


@dataclass(frozen=True)
class EpochSchedule:
    """Explicit time-scale separation: neural epochs inside longer slow steps.

    The neural loop (model, sensing, device, controller) runs for
    ``epoch_s`` at the start of every ``every_s`` of slow time; the slow
    processes step as usual inside the epoch and through the gap on the
    mean readout of the epoch's steps, as if the fast dynamics were
    stationary over the gap (a process whose step is longer than the epoch
    steps only at epoch ends, on the whole epoch's readout). The
    neural state carries over from one epoch to the next (the fast dynamics
    resume where they stopped, with the parameters the slow processes set
    in the meantime), so one run of ``D`` s of slow time simulates only
    ``D * epoch_s / every_s`` s of neural time.

    Parameters
    ----------
    epoch_s : float
        Neural time simulated per slow step, s (a whole number of control
        periods, and of every slow process's ``period_s``).
    every_s : float
        Slow time covered per epoch, s (at least ``epoch_s``).

    Notes
    -----
    The error this makes is that of holding the readout over a gap: small
    when the fast dynamics settle within an epoch and the slow states move
    little over ``every_s``. It is measured, not assumed:
    :func:`closedloop.core.epochs.separation_error` runs the same
    experiment fully simulated and with the schedule, and reports the
    largest difference of every slow series. ``every_s == epoch_s`` is a
    full simulation.
    """

    epoch_s: float
    every_s: float

    def __post_init__(self) -> None:
        for key in ("epoch_s", "every_s"):
            value = getattr(self, key)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"slow.{key} must be a positive number of seconds, got {value!r}")
        if self.every_s < self.epoch_s:
            raise ValueError(
                f"slow.every_s ({self.every_s:g} s) must be at least slow.epoch_s "
                f"({self.epoch_s:g} s)"
            )

    @property
    def compression(self) -> float:
        """Slow time per neural time (1 for a full simulation)."""
        return self.every_s / self.epoch_s
