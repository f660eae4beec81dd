"""The hand-written STN-GPe ceiling of the perf suite (issue 18 gap 1) is a fair reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from closedloop.bench.handwritten import from_model, hand_advance
from closedloop.models import STNGPe

# Compiling the hand-written kernel and the loop takes 10-15 s on a busy 2-core machine.
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("regime", ["parkinsonian", "parkinsonian_limit_cycle"])
def test_handwritten_kernel_reproduces_the_model_bit_for_bit(regime: str) -> None:
    # Same equations, delays and noise streams: the ceiling does the model's
    # work, so a ratio against it measures only what the loop adds.
    n, dt = 5, 1e-4
    model = STNGPe(n=n, dt_s=dt, regime=regime)
    model.reset(7)
    state = from_model(model)
    drive = np.random.default_rng(2).uniform(0.0, 0.02, size=(n, 1300))  # mA
    expected = np.concatenate(
        [model.advance(600, drive[:, :600]), model.advance(700, drive[:, 600:])], axis=1
    )
    got = np.empty((n, 1300))
    # Chunked differently from the model, and across the ring buffers' wrap.
    for a, b in ((0, 250), (250, 1300)):
        part = np.empty((n, b - a))
        hand_advance(b - a, a, dt, state, np.ascontiguousarray(drive[:, a:b]), part)
        got[:, a:b] = part
    np.testing.assert_array_equal(got, expected)
    assert np.ptp(expected) > 10.0  # the noise and the oscillation moved the rate


def test_ceiling_rates_time_every_run() -> None:
    from closedloop.bench.perf_ceiling import CEILING_RUNS, ceiling_rates

    rates = ceiling_rates(4, 0.1, 1)
    for name in CEILING_RUNS:
        assert math.isfinite(rates[name]) and rates[name] > 0.0, name
