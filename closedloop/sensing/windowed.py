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
from numba import njit

from closedloop.core import kernel_cache  # noqa: F401  (sets the kernel cache directory first)

__all__ = ["area", "line_length", "moving_sum", "new_windowed_fields"]


def new_windowed_fields(n: int, n_features: int, width: int) -> dict[str, np.ndarray]:
    """Empty windows of ``width`` samples for ``n_features`` slots of ``n`` instances.

    Returns the ``window_*`` fields of
    :class:`closedloop.sensing.kernels.SensingState`: ``window_ring`` (n, F,
    W), the window's last terms; ``window_total`` (n, F), its running sum;
    ``window_count`` (n, F), terms pushed so far; ``window_previous`` (n, F),
    the previous sample (for line length).
    """
    return {
        "window_ring": np.zeros((n, n_features, width)),
        "window_total": np.zeros((n, n_features)),
        "window_count": np.zeros((n, n_features)),
        "window_previous": np.zeros((n, n_features)),
    }


@njit(cache=True, inline="always")
def moving_sum(s, i, f, value):
    """Push ``value`` into window ``f`` of instance ``i``; return the window's sum.

    ``s`` is the :class:`~closedloop.sensing.kernels.SensingState` (its
    ``window_*`` fields).
    """
    ring = s.window_ring
    width = ring.shape[2]
    count = s.window_count[i, f]
    idx = int(count) % width
    s.window_total[i, f] += value - ring[i, f, idx]
    ring[i, f, idx] = value
    s.window_count[i, f] = count + 1.0
    return s.window_total[i, f]


@njit(cache=True, inline="always")
def line_length(s, i, f, v):
    """Line length over the window after sensed sample ``v``, signal units."""
    step = abs(v - s.window_previous[i, f]) if s.window_count[i, f] > 0 else 0.0
    s.window_previous[i, f] = v
    return moving_sum(s, i, f, step)


@njit(cache=True, inline="always")
def area(s, i, f, v, inv_rate):
    """Area over the window after sensed sample ``v``, signal units x s."""
    return moving_sum(s, i, f, abs(v) * inv_rate)
