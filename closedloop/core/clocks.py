"""The loop's three clocks and its seed layout, written once for every loop.

Clocks, all in seconds: the integration step ``dt_s`` (model and device), the
sensing sample interval ``1 / sensing.rate_hz`` (a whole number of steps) and
the control period (a whole number of sensing samples). A command reaches the
device ``latency_s`` after the end of the period that produced it (a whole
number of steps; zero means the first step of the next period).

Seeds: a root seed (or one root per group of instances) spawns, in this
order, the model-noise, sensor-noise and controller seed sequences, then any
further children a loop asks for (the Brian2 loop takes one for Brian2's own
generator). Changing this order changes every result: the Numba loop, the
Brian2 loop and any replay of a run use :func:`seed_layout` alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Clocks", "SeedLayout", "seed_layout", "whole_multiple"]


def whole_multiple(value: float, unit: float, what: str, unit_name: str) -> int:
    """Return ``value / unit`` as an int, or raise ValueError naming ``what``."""
    ratio = value / unit
    k = int(round(ratio))
    if k < 1 or abs(ratio - k) > 1e-6 * max(1.0, ratio):
        raise ValueError(
            f"{what} ({value:g} s) must be a whole, positive number of {unit_name} ({unit:g} s)"
        )
    return k


@dataclass(frozen=True)
class Clocks:
    """Integration step, sensing interval, control period and latency, checked.

    Build with :meth:`from_config`; every interval is a whole number of the
    one below it.

    Attributes
    ----------
    dt_s : float
        Integration step, s.
    steps_per_sample : int
        Integration steps per sensing sample.
    samples_per_period : int
        Sensing samples per control period.
    latency_steps : int
        Integration steps from the end of a period to its command taking effect.
    """

    dt_s: float
    steps_per_sample: int
    samples_per_period: int
    latency_steps: int

    @classmethod
    def from_config(
        cls, dt_s: float, sensing_rate_hz: float, control_period_s: float, latency_s: float
    ) -> Clocks:
        """Check the clocks against each other.

        Parameters
        ----------
        dt_s : float
            Integration step, s.
        sensing_rate_hz : float
            Sensing rate, Hz.
        control_period_s : float
            Control period, s.
        latency_s : float
            Sensing-to-stimulation delay, s.

        Raises
        ------
        ValueError
            Naming the config key whose value is not a whole multiple of the
            clock below it, or a negative latency.
        """
        steps_per_sample = whole_multiple(
            1.0 / sensing_rate_hz,
            dt_s,
            "the sensing interval 1/sensing.rate_hz",
            "integration steps dt_s",
        )
        samples_per_period = whole_multiple(
            control_period_s, steps_per_sample * dt_s, "control.period_s", "sensing intervals"
        )
        if latency_s < 0 or not math.isfinite(latency_s):
            raise ValueError(f"control.latency_s must be zero or positive, got {latency_s!r}")
        latency_steps = (
            0
            if latency_s == 0
            else whole_multiple(latency_s, dt_s, "control.latency_s", "integration steps dt_s")
        )
        return cls(float(dt_s), steps_per_sample, samples_per_period, latency_steps)

    @property
    def sample_s(self) -> float:
        """Sensing interval, s."""
        return self.steps_per_sample * self.dt_s

    @property
    def steps_per_period(self) -> int:
        """Integration steps per control period."""
        return self.steps_per_sample * self.samples_per_period

    @property
    def control_period_s(self) -> float:
        """Control period, s."""
        return self.steps_per_period * self.dt_s

    def periods_in(self, duration_s: float) -> int:
        """Whole control periods in ``duration_s`` (rounded to the nearest)."""
        return int(round(duration_s / self.control_period_s))


@dataclass(frozen=True)
class SeedLayout:
    """Seed sequences of a loop's instances (see the module notes).

    Attributes
    ----------
    seed : int or tuple
        The seed as given (an int, or the tuple of roots).
    model : list of numpy.random.SeedSequence
        Model-noise seed of each instance (reuse them for a no-stimulation
        baseline).
    sensor : list of numpy.random.SeedSequence
        Sensor-noise seed of each instance.
    controller : list of numpy.random.SeedSequence
        Controller seed of each group of instances.
    extra : list of list of numpy.random.SeedSequence
        The further children of each root, in order.
    """

    seed: Any
    model: list
    sensor: list
    controller: list
    extra: list


def seed_layout(seed: int | Sequence, n: int, extra: int = 0) -> SeedLayout:
    """Spawn the seeds of ``n`` instances from one root or from one root per group.

    Parameters
    ----------
    seed : int or sequence of int or numpy.random.SeedSequence
        One root for all instances, or ``g`` roots (``g`` dividing ``n``)
        seeding ``g`` groups of ``n / g`` consecutive instances, each group
        exactly as a loop of ``n / g`` instances given that root alone (a
        :class:`~numpy.random.SeedSequence` root is used as a fresh copy, its
        own spawn counter untouched). This is how a batch of sweep runs
        simulated together reproduces each run simulated alone, bit for bit.
    n : int
        Instances.
    extra : int
        Further children to spawn from each root after the three standard ones.

    Returns
    -------
    SeedLayout

    Raises
    ------
    ValueError
        When the roots cannot split ``n`` instances into equal groups.
    """
    if isinstance(seed, int | np.integer):
        given: Any = int(seed)
        roots = [np.random.SeedSequence(int(seed))]
    else:
        roots = [
            np.random.SeedSequence(int(s))
            if isinstance(s, int | np.integer)
            else np.random.SeedSequence(s.entropy, spawn_key=s.spawn_key, pool_size=s.pool_size)
            for s in seed
        ]
        if not roots or n % len(roots):
            raise ValueError(
                f"seed: {len(roots)} seed roots cannot split {n} instances into equal groups"
            )
        given = tuple(seed)
    per_root = n // len(roots)
    model, sensor, controller, further = [], [], [], []
    for root in roots:
        model_seq, sensor_seq, controller_seq, *rest = root.spawn(3 + extra)
        model += model_seq.spawn(per_root)
        sensor += sensor_seq.spawn(per_root)
        controller.append(controller_seq)
        further.append(rest)
    return SeedLayout(given, model, sensor, controller, further)
