"""Float arithmetic with numpy's rules, for the controllers' n = 1 paths.

At n = 1 a controller's ``update`` is a dozen ufunc calls on one-element
arrays, about 4.5 us a period, half the budget of a 1 ms loop (issue 18,
gap 5). The same IEEE operations on Python floats cost a fraction of that
and give the same bits, provided NaN follows numpy's rules: ``fmax``/``fmin``
ignore a NaN, ``maximum``/``minimum`` propagate it, ``searchsorted`` sorts
it last. ``tests/test_controller_fast_paths.py`` checks each n = 1 path
against the controller's own array path at n = 3.
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np

__all__ = ["clip", "fmax", "fmin", "ramp_level"]


def fmax(a: float, b: float) -> float:
    """``numpy.fmax`` on floats: the larger, ignoring a NaN."""
    if a != a:
        return b
    return a if a >= b or b != b else b


def fmin(a: float, b: float) -> float:
    """``numpy.fmin`` on floats: the smaller, ignoring a NaN."""
    if a != a:
        return b
    return a if a <= b or b != b else b


def clip(x: float, low: float, high: float) -> float:
    """``maximum(minimum(x, high), low)`` on floats: a NaN stays NaN."""
    if x > high:
        return high
    if x < low:
        return low
    return x


def ramp_level(
    level: np.ndarray,
    steps: np.ndarray,
    edges: tuple[float, ...],
    b: float,
    low: float,
    high: float,
) -> np.ndarray:
    """One ramp step of a threshold controller at n = 1, ``level`` updated in place.

    ``edges`` are the finite class edges (the controller's ``searchsorted``
    edges without the trailing NaN), ``steps`` the amplitude step of each
    class, mA (the last for a NaN biomarker), ``low`` and ``high`` the
    amplitude limits, mA. Returns a new one-element array of the new level.
    """
    k = bisect_right(edges, b) if b == b else len(steps) - 1
    value = clip(float(level[0]) + float(steps[k]), low, high)
    level[0] = value
    return np.array((value,))
