"""Numba set-up shared by every compiled kernel: on-disk cache and random numbers.

Kernels compile once per machine and load from disk afterwards. Numba's cache
index only watches the file that defines a function, not the helpers it calls,
so the cache lives in a directory named after a hash of every kernel source
file: editing any of them moves to a fresh cache instead of loading stale code.
Set ``CLOSEDLOOP_NUMBA_CACHE`` (or numba's own ``NUMBA_CACHE_DIR``) to choose
the parent directory.

Random numbers come from one xoroshiro128+ stream per instance (two uint64
words, plus a spare normal deviate), seeded through :class:`numpy.random.SeedSequence`, so results
do not depend on the number of threads or on how a run is chunked.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import numba
import numpy as np
from numba import njit

__all__ = [
    "cache_dir",
    "normal",
    "rng_states",
    "uniform",
]

_PKG = Path(__file__).resolve().parent


def cache_dir() -> Path:
    """Return the directory that holds this version's compiled kernels.

    Returns
    -------
    pathlib.Path
        ``<parent>/<hash of kernel sources>``.
    """
    parent = os.environ.get("CLOSEDLOOP_NUMBA_CACHE") or os.environ.get("NUMBA_CACHE_DIR")
    if not parent:
        parent = str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "closedloop")
    digest = hashlib.sha256()
    # closedloop.models is mapped from another folder: find it without importing it.
    models = Path(importlib.util.find_spec("closedloop.models").origin).parent
    files = sorted({*_PKG.glob("*.py"), *models.glob("*.py")})
    for path in files:
        source = path.read_bytes()
        if b"njit" in source:  # only files that define kernels
            digest.update(path.name.encode())
            digest.update(source)
    return Path(parent) / "numba" / digest.hexdigest()[:16]


# Must be set before any kernel is decorated: numba reads it when it builds a
# function's cache locator.
numba.config.CACHE_DIR = str(cache_dir())

_U53 = 1.0 / 9007199254740992.0  # 2**-53


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, inline="always")
def _next(state, i):
    s0 = state[i, 0]
    s1 = state[i, 1]
    result = s0 + s1
    s1 ^= s0
    state[i, 0] = _rotl(s0, 24) ^ s1 ^ (s1 << np.uint64(16))
    state[i, 1] = _rotl(s1, 37)
    return result


@njit(cache=True, inline="always")
def uniform(state, i):
    """Uniform deviate in (0, 1] from instance ``i``'s stream."""
    return (float(_next(state, i) >> np.uint64(11)) + 1.0) * _U53


@njit(cache=True, inline="always")
def normal(state, i):
    """Standard normal deviate from instance ``i``'s stream.

    Box-Muller yields deviates in pairs: the second is kept in the state
    (column 2 flags it, column 3 holds its bits) for the next call, so chunked
    and whole runs draw the same sequence.
    """
    if state[i, 2] != 0:
        state[i, 2] = 0
        return state.view(np.float64)[i, 3]
    u1 = uniform(state, i)
    u2 = uniform(state, i)
    r = np.sqrt(-2.0 * np.log(u1))
    state.view(np.float64)[i, 3] = r * np.sin(2.0 * np.pi * u2)
    state[i, 2] = 1
    return r * np.cos(2.0 * np.pi * u2)


def rng_states(seeds: Sequence[np.random.SeedSequence]) -> np.ndarray:
    """Return xoroshiro128+ states, one row per seed sequence.

    Parameters
    ----------
    seeds : sequence of numpy.random.SeedSequence
        One per instance.

    Returns
    -------
    ndarray of uint64, shape (len(seeds), 4)
        Generator words in columns 0 and 1; columns 2 and 3 hold the spare
        normal deviate of :func:`normal`.
    """
    out = np.zeros((len(seeds), 4), dtype=np.uint64)
    for i, seq in enumerate(seeds):
        words = seq.generate_state(2, np.uint64)
        if not words.any():  # the all-zero state is a fixed point of the generator
            words[0] = np.uint64(0x9E3779B97F4A7C15)
        out[i, :2] = words
    return out
