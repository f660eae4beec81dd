"""The closed-loop checks of :func:`closedloop.testing.model.check_model`.

A model's period kernels (``_periods_serial`` and ``_periods_parallel``) run
model, device and sensing together for every control period; they are only
reached through :class:`closedloop.core.loop.ClosedLoop`, so these checks
drive a short closed loop: a PID controller on the sensed beta envelope
(amplitude follows the biomarker), sensor noise, and the phase and line
length features, with the controller in Python and compiled.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from closedloop.controllers import PID
from closedloop.core.loop import ClosedLoop
from closedloop.core.model import NumbaModel
from closedloop.core.protocol import ModelDivergedError
from closedloop.device import Device
from closedloop.sensing.chain import SensingChain
from closedloop.testing.model_checks import (
    LARGE_BATCH,
    SMALL_BATCH,
    ModelUnderTest,
    first_difference,
)

__all__ = ["CLOSED_LOOP_CHECKS", "check_closed_loop_batch", "check_closed_loop_chunks"]

#: Control period of the test loops, s.
PERIOD_S = 0.01
#: Simulated time of a test loop, s (split in two for the chunk check).
DURATION_S = 0.4
#: Chunk handed to on_chunk, s (not a divisor of the half, to cross chunk edges).
CHUNK_S = 0.07


def _loop(model: NumbaModel, engine: str, seed: Any) -> ClosedLoop:
    # amplitude = clip(kp * biomarker, 0, 3 mA): the stimulation follows the
    # model's own signal, so any state the kernels drop shows in the commands.
    loop = ClosedLoop(
        model,
        SensingChain(noise_std=0.01, features=("line_length", "phase")),
        Device(),
        PID(setpoint=0.0, kp=1.0, ki=0.0, max_amplitude_ma=3.0),
        control_period_s=PERIOD_S,
        latency_s=2 * model.dt_s,
        seed=seed,
        engine=engine,
    )
    loop.reset()
    return loop


def _record(loop: ClosedLoop, *durations: float) -> dict[str, np.ndarray]:
    """Every series handed over by ``run(d)`` for each ``d``, joined, and the totals."""
    chunks: dict[str, list[np.ndarray]] = {}

    def keep(_t0: float, data: dict[str, np.ndarray]) -> None:
        for name, values in data.items():
            chunks.setdefault(name, []).append(np.array(values, copy=True))

    totals: dict[str, np.ndarray] = {}
    for duration in durations:
        totals = loop.run(duration, chunk_s=CHUNK_S, on_chunk=keep)
    out = {name: np.concatenate(parts, axis=1) for name, parts in chunks.items()}
    out.update({f"totals_{k}": v for k, v in totals.items()})
    return out


def _series_difference(got: dict, expected: dict) -> str | None:
    if set(got) != set(expected):
        return f"series {sorted(got)} against {sorted(expected)}"
    for name, values in expected.items():
        diff = first_difference(got[name], values)
        if diff is not None:
            return f"{name!r} {diff}"
    return None


def check_closed_loop_chunks(subject: ModelUnderTest) -> list[str]:
    """A closed loop run in two parts equals one run, serial and parallel, both engines."""
    problems = []
    half = DURATION_S / 2
    for n in (SMALL_BATCH, LARGE_BATCH):
        for engine in ("python", "compiled"):
            where = f"n = {n}, controller engine {engine!r}"
            try:
                whole = _record(_loop(subject.make(n, None), engine, subject.seed), DURATION_S)
                parts = _record(_loop(subject.make(n, None), engine, subject.seed), half, half)
            except ModelDivergedError as exc:
                problems.append(f"the closed loop diverged ({where}): {exc}")
                continue
            diff = _series_difference(parts, whole)
            if diff is not None:
                problems.append(
                    f"run({half:g}) then run({half:g}) differs from run({DURATION_S:g}) "
                    f"({where}): {diff}; the period kernels must leave every state "
                    "variable in model.kernel_state() for the next call"
                )
    return problems


def check_closed_loop_batch(subject: ModelUnderTest) -> list[str]:
    """In a closed loop, each instance is independent of batch size and position."""
    roots = list(range(subject.seed, subject.seed + LARGE_BATCH))
    picks = [0, LARGE_BATCH // 2, LARGE_BATCH - 1]
    try:
        big = _record(_loop(subject.make(LARGE_BATCH, None), "compiled", roots), DURATION_S)
        small = _record(
            _loop(subject.make(len(picks), None), "compiled", [roots[i] for i in picks]),
            DURATION_S,
        )
    except ModelDivergedError as exc:
        return [f"the closed loop diverged: {exc}"]
    for j, i in enumerate(picks):
        diff = _series_difference(
            {k: v[j : j + 1] for k, v in small.items()},
            {k: v[i : i + 1] for k, v in big.items()},
        )
        if diff is not None:
            return [
                f"in a closed loop, instance {i} of a batch of {LARGE_BATCH} (parallel "
                f"period kernels) differs from the same instance, same seed, at position "
                f"{j} of a batch of {len(picks)} (serial period kernels): {diff}"
            ]
    return []


#: The closed-loop checks, in the order they run.
CLOSED_LOOP_CHECKS = (check_closed_loop_chunks, check_closed_loop_batch)
