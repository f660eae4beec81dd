"""The per-instance random streams every noisy kernel draws from."""

import numpy as np
import pytest
from numba import njit, prange
from scipy import stats

from closedloop.core.random import normal, rng_states, uniform


@njit
def _normals(state, m):
    out = np.empty((state.shape[0], m))
    for i in range(state.shape[0]):
        for k in range(m):
            out[i, k] = normal(state, i)
    return out


@njit(parallel=True)
def _normals_parallel(state, m):
    # normal() straight in a prange body: the parfor pass must leave it alone.
    out = np.empty((state.shape[0], m))
    for i in prange(state.shape[0]):
        for k in range(m):
            out[i, k] = normal(state, i)
    return out


@njit
def _uniforms(state, m):
    out = np.empty(m)
    for k in range(m):
        out[k] = uniform(state, 0)
    return out


def _states(n, seed=0):
    return rng_states(np.random.SeedSequence(seed).spawn(n))


def test_normal_deviates_follow_the_standard_normal_distribution():
    z = _normals(_states(1, seed=11), 4_000_000)[0]
    n = z.size
    # Mean and variance within 4 standard errors of 0 and 1.
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1.0) < 4 * np.sqrt(2 / n)
    # Shape: binned counts against the normal's probabilities (chi-square),
    # including the tails the ziggurat draws by its slow branches.
    edges = np.concatenate([[-np.inf], np.linspace(-4.5, 4.5, 91), [np.inf]])
    counts, _ = np.histogram(z, edges)
    expected = np.diff(stats.norm.cdf(edges)) * n
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert stats.chi2.sf(chi2, df=len(counts) - 1) > 1e-4
    beyond = np.mean(np.abs(z) > 3.442619855899)  # the base layer's edge R
    assert beyond == pytest.approx(2 * stats.norm.sf(3.442619855899), rel=0.1)
    assert stats.kstest(z[:500_000], "norm").pvalue > 1e-4


def test_successive_normals_are_uncorrelated():
    z = _normals(_states(1, seed=3), 1_000_000)[0]
    for lag in (1, 2, 7):
        r = np.corrcoef(z[:-lag], z[lag:])[0, 1]
        assert abs(r) < 5 / np.sqrt(z.size)
    # Nor are squares (the layer index and the uniform share one output).
    r2 = np.corrcoef(z[:-1] ** 2, z[1:] ** 2)[0, 1]
    assert abs(r2) < 5 / np.sqrt(z.size)


def test_uniforms_lie_in_the_half_open_unit_interval_and_are_flat():
    u = _uniforms(_states(1, seed=5), 1_000_000)
    assert u.min() > 0.0 and u.max() <= 1.0
    assert stats.kstest(u, "uniform").pvalue > 1e-4


def test_streams_are_per_instance_and_the_same_in_parallel():
    serial = _normals(_states(64, seed=2), 1001)
    parallel = _normals_parallel(_states(64, seed=2), 1001)
    np.testing.assert_array_equal(parallel, serial)
    # Instance 5's stream does not depend on how many instances run beside it.
    alone = rng_states([np.random.SeedSequence(2).spawn(64)[5]])
    np.testing.assert_array_equal(_normals(alone, 1001)[0], serial[5])
    # Different instances draw different numbers.
    assert abs(np.corrcoef(serial[0], serial[1])[0, 1]) < 0.15


def test_the_all_zero_seed_state_is_avoided():
    class Zero:
        def generate_state(self, n, dtype):
            return np.zeros(n, dtype=dtype)

    state = rng_states([Zero()])
    assert state.any()
    assert np.unique(_uniforms(state, 100)).size == 100
