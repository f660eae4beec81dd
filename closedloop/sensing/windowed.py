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

import numpy as np

from closedloop.core import kernel_cache  # noqa: F401  (sets the kernel cache directory first)
from closedloop.core.jit import njit

__all__ = ["WINDOW_SUMS", "area", "line_length", "moving_sum", "new_windowed_fields"]

#: Columns of ``window_sums``: running sum of the window, terms pushed so far,
#: previous sample (for line length).
WINDOW_SUMS = ("total", "count", "previous")
_TOTAL, _COUNT, _PREVIOUS = (WINDOW_SUMS.index(c) for c in WINDOW_SUMS)


def new_windowed_fields(n: int, n_features: int, width: int) -> dict[str, np.ndarray]:
    """Empty windows of ``width`` samples for ``n_features`` slots of ``n`` instances.

    Returns the ``window_*`` fields of
    :class:`closedloop.sensing.kernels.SensingState`: ``window_ring`` (n, F,
    W), the window's last terms, and ``window_sums`` (n, F, 3), columns
    :data:`WINDOW_SUMS`.
    """
    return {
        "window_ring": np.zeros((n, n_features, width)),
        "window_sums": np.zeros((n, n_features, len(WINDOW_SUMS))),
    }


@njit(cache=True, inline="always")
def moving_sum(s, i, f, value):
    """Push ``value`` into window ``f`` of instance ``i``; return the window's sum.

    ``s`` is the :class:`~closedloop.sensing.kernels.SensingState` (its
    ``window_*`` fields).
    """
    ring = s.window_ring
    sums = s.window_sums
    width = ring.shape[2]
    count = sums[i, f, _COUNT]
    idx = int(count) % width
    sums[i, f, _TOTAL] += value - ring[i, f, idx]
    ring[i, f, idx] = value
    sums[i, f, _COUNT] = count + 1.0
    return sums[i, f, _TOTAL]


@njit(cache=True, inline="always")
def line_length(s, i, f, v):
    """Line length over the window after sensed sample ``v``, signal units."""
    sums = s.window_sums
    step = abs(v - sums[i, f, _PREVIOUS]) if sums[i, f, _COUNT] > 0 else 0.0
    sums[i, f, _PREVIOUS] = v
    return moving_sum(s, i, f, step)


@njit(cache=True, inline="always")
def area(s, i, f, v, inv_rate):
    """Area over the window after sensed sample ``v``, signal units x s."""
    return moving_sum(s, i, f, abs(v) * inv_rate)
