"""The loop's side of the slow clocks: stepping slow processes at chunk ends.

:class:`SlowClock` is what a loop holds of its slow processes
(:class:`closedloop.core.slow.SlowProcess`): it checks their periods
against the control period, tells the loop where chunks must end, sums the
per-period series over each process's step in a fixed order (so the
readout is bit-identical however a run is chunked), advances the processes
at their step ends, applies their modulation to the model before the next
period (so that what was in force during a chunk is still in the model's
record when the chunk is handed over), runs the gaps of an
:class:`~closedloop.core.slow.EpochSchedule`, and gathers the series and
events the run file records.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from closedloop.core.clocks import SeedLayout, whole_multiple
from closedloop.core.slow import EpochSchedule, SlowProcess, check_modulation
from closedloop.device import device_totals

__all__ = ["SlowClock"]


class SlowClock:
    """The slow processes of one loop, on the loop's control periods.

    Parameters
    ----------
    processes : tuple of SlowProcess
        The processes (unique names).
    epochs : EpochSchedule or None
        Time-scale separation, or None for a full simulation.
    control_period_s : float
        The loop's control period, s.
    model : NumbaModel
        The model whose modulatable parameters the processes set.

    Raises
    ------
    ValueError
        Naming the process whose period is not a whole number of control
        periods, a repeated name, or an epoch schedule that does not fit the
        processes' periods.
    """

    def __init__(
        self,
        processes: tuple[SlowProcess, ...],
        epochs: EpochSchedule | None,
        control_period_s: float,
        model: Any,
    ) -> None:
        self.processes = processes
        self.epochs = epochs if processes else None
        self.model = model
        names = [p.name for p in processes]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"two slow processes are both named {name!r}")
        self.steps = [
            whole_multiple(
                p.period_s, control_period_s, f"slow process {p.name!r} period_s", "control periods"
            )
            for p in processes
        ]
        self.epoch_periods = 0
        self.gap_steps: list[int] = []
        # Whether a process steps inside the neural epochs (always without a
        # schedule); one whose step is longer than an epoch steps only at
        # epoch ends, through the whole gap, on the epoch's readout.
        self.in_epoch = [True] * len(processes)
        self.boundaries = list(self.steps)
        if self.epochs is not None:
            e = self.epochs
            self.epoch_periods = whole_multiple(
                e.epoch_s, control_period_s, "slow.epoch_s", "control periods"
            )
            self.in_epoch = [k <= self.epoch_periods for k in self.steps]
            for p, k, inside in zip(processes, self.steps, self.in_epoch, strict=True):
                if inside and self.epoch_periods % k:
                    raise ValueError(
                        f"slow.epoch_s ({e.epoch_s:g} s) must be a whole number of slow "
                        f"process {p.name!r}'s period_s ({p.period_s:g} s) when it is longer"
                    )
            self.gap_steps = [
                whole_multiple(e.every_s, p.period_s, "slow.every_s", f"{p.name!r} periods")
                - (self.epoch_periods // k if inside else 0)
                for p, k, inside in zip(processes, self.steps, self.in_epoch, strict=True)
            ]
            self.boundaries = [
                k for k, inside in zip(self.steps, self.in_epoch, strict=True) if inside
            ] + [self.epoch_periods]
        self.command_keys = tuple(key for p in processes for key in p.command_keys)
        self.offset_s = 0.0
        self.control_period_s = control_period_s
        # Processes with values a controller reads at every control period.
        self.live = tuple(
            p for p in processes if type(p).live_features is not SlowProcess.live_features
        )
        self.observers = tuple(p for p in processes if type(p).observe is not SlowProcess.observe)

    # -- clocks -------------------------------------------------------------------
    def neural_s(self, duration_s: float) -> float:
        """Neural time a run of ``duration_s`` (slow time with epochs) simulates, s."""
        if self.epochs is None:
            return duration_s
        every = self.epochs.every_s
        n_epochs = duration_s / every
        if abs(n_epochs - round(n_epochs)) > 1e-9 * max(1.0, n_epochs):
            raise ValueError(
                f"duration_s ({duration_s:g} s) must be a whole number of slow.every_s "
                f"({every:g} s) with an epoch schedule"
            )
        return round(n_epochs) * self.epochs.epoch_s

    def periods_to_boundary(self, periods_done: int, m: int) -> int:
        """At most ``m`` periods, ending no later than the next slow step of any process."""
        for k in self.boundaries:
            m = min(m, k - periods_done % k)
        return m

    # -- state --------------------------------------------------------------------
    def reset(self, seeds: SeedLayout, device_state: Any) -> None:
        """Reset every process with its own per-instance seeds; apply its modulation."""
        n = self.model.n
        per_root = n // len(seeds.extra)
        # Fixed children (what spawn() would give first, without advancing its
        # counter): a second reset gets the same seeds.
        instance_seeds = [
            np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, i))
            for root in (rest[0] for rest in seeds.extra)
            for i in range(per_root)
        ]
        self.offset_s = 0.0
        self.ticks = [0] * len(self.processes)
        self.sums: list[np.ndarray | None] = [None] * len(self.processes)
        self.counts = [0] * len(self.processes)
        charge = device_totals(device_state)["charge_uc"] if self.processes else None
        self.charge_at = [charge] * len(self.processes)
        # Sum and count of each process's step readouts within the current
        # epoch: their mean is what the gap's steps are given.
        self.epoch_sums: list[dict[str, np.ndarray]] = [{} for _ in self.processes]
        self.epoch_counts = [0] * len(self.processes)
        self.pending: dict[str, np.ndarray] | None = None
        for j, p in enumerate(self.processes):
            p.reset(
                n,
                [
                    np.random.SeedSequence(s.entropy, spawn_key=(*s.spawn_key, j))
                    for s in instance_seeds
                ],
            )
        self.pending = self._modulation()
        self.apply_pending()
        # Sample 0 of every series is the state at t = 0, handed over with the first chunk.
        self.initial: list[list[list[np.ndarray]]] | None = [
            [[np.asarray(p.values()[s], dtype=np.float64) for s in p.series()]]
            for p in self.processes
        ]
        self.latest = {
            key: col[0]
            for p, columns in zip(self.processes, self.initial, strict=True)
            for key, col in zip(self._series_names(p), zip(*columns, strict=True), strict=True)
        }

    def apply_pending(self) -> None:
        """Write the modulation the processes asked for into the model's record."""
        if self.pending is None:
            return
        record = self.model.record
        for key, value in self.pending.items():
            record[key] = value
        self.pending = None

    def _modulation(self) -> dict[str, np.ndarray] | None:
        merged: dict[str, np.ndarray] = {}
        for p in self.processes:
            values = p.modulation()
            for key in values:
                if key in merged:
                    raise ValueError(f"two slow processes both modulate model parameter {key!r}")
            check_modulation(self.model, p, values)
            merged.update({k: np.asarray(v, dtype=np.float64) for k, v in values.items()})
        return merged or None

    def command(self, t_s: float, command: Mapping[str, Any]) -> None:
        """Hand a controller's command to the processes that take its keys."""
        for p in self.processes:
            if p.command_keys:
                mine = {k: command[k] for k in p.command_keys if k in command}
                if mine:
                    p.command(t_s, mine)

    def features(self) -> dict[str, np.ndarray]:
        """The latest value of every slow series, ``<process>_<series>``: ``(n,)`` each.

        The loop adds them to the features a controller's ``update`` receives
        (held between slow steps), so a controller can read a drug's effect
        or a symptom state the way it reads a biomarker.
        """
        return self.latest

    def live_features(self, t_s: float) -> dict[str, np.ndarray]:
        """The values of the processes that offer them at any control period's end ``t_s``."""
        out: dict[str, np.ndarray] = {}
        for p in self.live:
            out.update({f"{p.name}_{k}": v for k, v in p.live_features(t_s).items()})
        return out

    # -- chunk ends ---------------------------------------------------------------
    def after_chunk(
        self, periods_done: int, series: Mapping[str, np.ndarray], device_state: Any
    ) -> dict[str, np.ndarray]:
        """Account a chunk; step the processes whose step ended; their new values.

        Returns
        -------
        dict of ndarray
            ``<process>_<series>``: shape ``(n, k)``, one column per slow
            step that ended in this chunk (``k`` is 0, 1, or, at the end of
            an epoch, 1 plus the steps of the gap), after the state at
            ``t = 0`` in the first chunk after :meth:`reset` (so sample ``k``
            of a series is at ``k * period_s`` of slow time).
        """
        n = self.model.n
        rows = {k: v for k, v in series.items() if v.ndim == 2 and k not in ("lfp", "lfp_sensed")}
        if self.observers:
            m = next(iter(rows.values())).shape[1]
            t0 = (periods_done - m) * self.control_period_s + self.offset_s
            for p in self.observers:
                p.observe(t0, self.control_period_s, rows)
        names = list(rows)
        block = np.stack([rows[k] for k in names], axis=1)  # (n, rows, m)
        out: dict[str, list[np.ndarray]] = {}
        if self.initial is not None:
            for p, columns in zip(self.processes, self.initial, strict=True):
                for key, col in zip(self._series_names(p), zip(*columns, strict=True), strict=True):
                    out[key] = list(col)
            self.initial = None
        stepped = False
        charge = None
        for j, p in enumerate(self.processes):
            # A sequential sum (add.accumulate), not a pairwise one: the same
            # bits however the step is split into chunks.
            start = self.sums[j]
            if start is None:
                start = np.zeros((n, len(names)))
            acc = np.add.accumulate(np.concatenate([start[:, :, None], block], axis=2), axis=2)
            total = self.sums[j] = acc[:, :, -1]
            self.counts[j] += block.shape[2]
            epoch_end = self.epochs is not None and periods_done % self.epoch_periods == 0
            due = periods_done % self.steps[j] == 0 if self.in_epoch[j] else epoch_end
            if not due:
                continue
            if charge is None:
                charge = device_totals(device_state)["charge_uc"]
            readout = {k: total[:, c] / self.counts[j] for c, k in enumerate(names)}
            readout.update(self.model.observables())
            readout["delivered_charge_uc"] = charge - self.charge_at[j]
            self.charge_at[j] = charge
            self.sums[j] = None
            self.counts[j] = 0
            # Its own step (inside an epoch), then the gap's steps on the mean
            # readout of the epoch's steps, held (the charge counted once).
            columns = self._tick(j, readout) if self.in_epoch[j] else []
            if self.epochs is not None:
                sums = self.epoch_sums[j]
                for key, value in readout.items():
                    sums[key] = sums[key] + value if key in sums else np.array(value, float)
                self.epoch_counts[j] += 1
            if epoch_end:
                count = self.epoch_counts[j]
                held = {key: value / count for key, value in self.epoch_sums[j].items()}
                held["delivered_charge_uc"] = np.zeros(n)
                first = not self.in_epoch[j]
                for tick in range(self.gap_steps[j]):
                    columns += self._tick(j, readout if first and tick == 0 else held)
                self.epoch_sums[j] = {}
                self.epoch_counts[j] = 0
            for key, col in zip(self._series_names(p), zip(*columns, strict=True), strict=True):
                out.setdefault(key, []).extend(col)
            stepped = True
        if self.epochs is not None and periods_done % self.epoch_periods == 0:
            self.offset_s += self.epochs.every_s - self.epochs.epoch_s
        if stepped:
            self.pending = self._modulation()
        empty = np.zeros((n, 0))
        result = {}
        for p in self.processes:
            for key in self._series_names(p):
                cols = out.get(key)
                result[key] = np.stack(cols, axis=1) if cols else empty
        return result

    def _tick(self, j: int, readout: dict[str, np.ndarray]) -> list[list[np.ndarray]]:
        p = self.processes[j]
        self.ticks[j] += 1
        p.advance(self.ticks[j] * p.period_s, p.period_s, readout)
        values = p.values()
        row = [np.asarray(values[s], dtype=np.float64) for s in p.series()]
        self.latest.update(zip(self._series_names(p), row, strict=True))
        return [row]

    @staticmethod
    def _series_names(p: SlowProcess) -> list[str]:
        return [f"{p.name}_{s}" for s in p.series()]

    # -- what the run file records ------------------------------------------------
    def timeseries(self) -> dict[str, tuple[str, float, str]]:
        """Series name to (units, rate Hz, description), at each process's rate."""
        out = {}
        for p in self.processes:
            for s, (units, what) in p.series().items():
                out[f"{p.name}_{s}"] = (units, 1.0 / p.period_s, what)
        return out

    def event_tables(self) -> dict[str, tuple[dict[str, tuple[str, str]], str]]:
        """Event tables of every process, named ``<process>_<table>``."""
        return {
            f"{p.name}_{name}": table
            for p in self.processes
            for name, table in p.event_tables().items()
        }

    def drain_events(self) -> dict[str, dict[str, np.ndarray]]:
        """Every process's events since the last call."""
        return {
            f"{p.name}_{name}": cols
            for p in self.processes
            for name, cols in p.drain_events().items()
        }

    def metrics(self) -> dict[str, tuple[np.ndarray, str, str]]:
        """Every process's summary metrics (names are the processes' own)."""
        out: dict[str, tuple[np.ndarray, str, str]] = {}
        for p in self.processes:
            for key, value in p.metrics().items():
                if key in out:
                    raise ValueError(f"two slow processes both report metric {key!r}")
                out[key] = value
        return out

    def run_attributes(self) -> dict[str, Any]:
        """The epoch schedule (``slow_epoch_s``, ``slow_every_s``) when one is used."""
        if self.epochs is None:
            return {}
        return {"slow_epoch_s": self.epochs.epoch_s, "slow_every_s": self.epochs.every_s}
