"""Windowed features: sums over the last ``feature_window_s`` of the sensed signal.

Both are detectors of responsive neurostimulators (Esteller et al. 2001),
computed on the sensed (broadband, after noise and artefact) signal:

- ``line_length``: sum of ``|x_k - x_{k-1}|`` over the window, signal units;
  the first sample has no predecessor and adds nothing.
- ``area``: sum of ``|x_k| / rate`` over the window, signal units x s.

References
----------
Esteller R et al. (2001) Line length: an efficient feature for seizure onset
detection. Proc 23rd IEEE EMBS 2:1707-1710.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from closedloop.core import kernel_cache  # noqa: F401  (sets the kernel cache directory first)

__all__ = ["WindowedState", "area", "line_length", "moving_sum", "new_windowed_state"]


class WindowedState(NamedTuple):
    """Per-instance state of the windowed features (one slot ``f`` per feature)."""

    ring: np.ndarray  #: (n, F, W): the window's last W terms
    total: np.ndarray  #: (n, F): running sum of the window
    count: np.ndarray  #: (n, F): terms pushed so far (float)
    previous: np.ndarray  #: (n, F): the previous sample (line length)


def new_windowed_state(n: int, n_features: int, width: int) -> WindowedState:
    """Empty windows of ``width`` samples for ``n_features`` slots of ``n`` instances."""
    return WindowedState(
        ring=np.zeros((n, n_features, width)),
        total=np.zeros((n, n_features)),
        count=np.zeros((n, n_features)),
        previous=np.zeros((n, n_features)),
    )


@njit(cache=True, inline="always")
def moving_sum(state, i, f, value):
    """Push ``value`` into window ``f`` of instance ``i``; return the window's sum."""
    ring = state.ring
    width = ring.shape[2]
    count = state.count[i, f]
    idx = int(count) % width
    state.total[i, f] += value - ring[i, f, idx]
    ring[i, f, idx] = value
    state.count[i, f] = count + 1.0
    return state.total[i, f]


@njit(cache=True, inline="always")
def line_length(state, i, f, v):
    """Line length over the window after sensed sample ``v``, signal units."""
    step = abs(v - state.previous[i, f]) if state.count[i, f] > 0 else 0.0
    state.previous[i, f] = v
    return moving_sum(state, i, f, step)


@njit(cache=True, inline="always")
def area(state, i, f, v, inv_rate):
    """Area over the window after sensed sample ``v``, signal units x s."""
    return moving_sum(state, i, f, abs(v) * inv_rate)
