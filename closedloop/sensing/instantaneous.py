"""Instantaneous features: the chain's value at the last sample, no memory.

- ``signal``: the sensed sample (after noise and artefact), signal units.
- ``filtered``: the band-passed sample, signal units.
"""

from __future__ import annotations

from closedloop.core import kernel_cache  # noqa: F401  (sets the kernel cache directory first)
from closedloop.core.jit import njit

__all__ = ["filtered", "signal"]


@njit(cache=True, inline="always")
def signal(v, y):
    """The sensed sample ``v`` (``y``: the band-passed one), signal units."""
    return v


@njit(cache=True, inline="always")
def filtered(v, y):
    """The band-passed sample ``y`` (``v``: the sensed one), signal units."""
    return y
