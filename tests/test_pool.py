"""State packed in one byte pool (closedloop.core.pool) and the loop's packed period kernel."""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
import pytest

from closedloop.core.jit import load_kernels
from closedloop.core.pool import LENT_ROW, lend, lent, pack, unpack
from closedloop.core.random import rng_states
from closedloop.device import Device
from closedloop.sensing.chain import SensingChain
from closedloop.sensing.registry import REGISTRY

load_kernels()  # unpack's compiled form, for the kernels this file compiles itself


class Small(NamedTuple):
    gain: float
    order: int
    on: bool
    x: np.ndarray
    codes: np.ndarray


def _sensing_and_device(n: int = 3) -> tuple:
    chain = SensingChain(features=tuple(f.name for f in REGISTRY))
    seeds = np.random.SeedSequence(0).spawn(n)
    return chain.new_state(n, rng_states(seeds)), Device().kernel_state(n, 5)


@numba.njit(cache=False)
def _unpack_both(pool):
    return unpack(type_sensing, pool, 0), unpack(type_device, pool, 1)


type_sensing, type_device = (type(s) for s in _sensing_and_device())


@numba.njit(cache=False)
def _bump(pool):
    s = unpack(Small, pool, 0)
    s.x[1, 2] += s.gain * s.order
    s.codes[0] = 7 if s.on else -7


@pytest.mark.slow  # compiles the unpacking of the whole sensing state (about 10 s)
def test_views_keep_every_field_and_share_the_pool_with_compiled_code():
    sensing, device = _sensing_and_device()
    pool, (s_view, d_view) = pack(sensing, device)
    s_jit, d_jit = _unpack_both(pool)
    fields = [*zip(sensing, s_view, s_jit, strict=True), *zip(device, d_view, d_jit, strict=True)]
    for original, view, rebuilt in fields:
        if isinstance(original, np.ndarray):
            assert rebuilt.dtype == original.dtype and rebuilt.shape == original.shape
            np.testing.assert_array_equal(rebuilt, original)
            np.testing.assert_array_equal(view, original)
            assert original.size == 0 or np.shares_memory(rebuilt, pool)
            assert original.size == 0 or np.shares_memory(view, pool)
        else:
            assert type(rebuilt) is type(original) and rebuilt == original == view
    # Same Numba types as the unpacked states: the existing kernels serve both.
    assert numba.typeof(s_jit) == numba.typeof(sensing)
    assert numba.typeof(d_jit) == numba.typeof(device)


def test_writes_go_both_ways():
    pool, (small,) = pack(Small(2.5, 3, True, np.arange(12.0).reshape(3, 4), np.zeros(2, np.int64)))
    small.x[1, 2] = 100.0  # written from Python, read by compiled code
    _bump(pool)
    assert small.x[1, 2] == 100.0 + 2.5 * 3  # written by compiled code, seen from Python
    assert small.codes[0] == 7


def test_fields_that_cannot_be_packed_are_named():
    with pytest.raises(TypeError, match=r"Small\.x: cannot pack an array of float32"):
        pack(Small(1.0, 1, False, np.zeros(2, np.float32), np.zeros(1, np.int64)))
    with pytest.raises(TypeError, match=r"Small\.codes: its type differs"):
        pack(Small(1.0, 1, False, np.zeros((2, 2)), np.zeros((1, 1), np.int64)))
    with pytest.raises(TypeError, match="compiled code only"):
        unpack(Small, np.zeros(8, np.uint8), 0)


class Other(NamedTuple):
    y: np.ndarray


@numba.njit(cache=False)
def _other_length(pool):
    return unpack(Other, pool, 0).y.shape[0]


def test_a_pool_that_holds_another_namedtuple_is_refused():
    pool, _ = pack(Other(np.zeros(3)))
    assert _other_length(pool) == 3
    small, _ = pack(Small(1.0, 1, False, np.zeros((2, 2)), np.zeros(1, np.int64)))
    with pytest.raises(TypeError, match="pool does not hold a Other"):
        _other_length(small)


@numba.njit(cache=False)
def _lent_sum_and_bump(types_ref, table):
    x, params, every_other, frozen = lent(types_ref, table)
    x[1, 2] += 1.0  # written through the address, seen from Python
    total = 0.0
    for i in range(params.shape[0]):
        total += params[i].gain * params[i].order
    for j in range(every_other.shape[0]):
        total += every_other[j]
    return total + frozen.sum() + x.shape[0] * 1000.0 + x.shape[1] * 100.0


def _lent_arrays() -> tuple:
    params = np.zeros(3, dtype=np.dtype([("gain", "f8"), ("order", "i8")], align=True))
    params["gain"], params["order"] = (0.5, 1.5, 2.5), (1, 2, 3)
    frozen = np.array([7.0, 8.0])
    frozen.flags.writeable = False
    strided = np.arange(10.0)[::2]  # not contiguous: lent with its own strides
    return np.zeros((2, 4)), params, strided, frozen


def test_lent_arrays_are_the_originals_in_compiled_code():
    arrays = _lent_arrays()
    table = np.zeros((len(arrays), LENT_ROW), dtype=np.int64)
    for row, a in zip(table, arrays, strict=True):
        lend(row, a)
    total = _lent_sum_and_bump(numba.typeof(arrays), table)
    # By hand: sum(gain * order) + the strided elements + frozen + the shape.
    expected = (0.5 * 1 + 1.5 * 2 + 2.5 * 3) + (0 + 2 + 4 + 6 + 8) + 15.0 + 2000.0 + 400.0
    assert total == expected
    assert arrays[0][1, 2] == 1.0 and arrays[0].sum() == 1.0


def test_a_table_that_does_not_match_the_types_is_refused():
    arrays = _lent_arrays()
    table = np.zeros((len(arrays), LENT_ROW), dtype=np.int64)
    for row, a in zip(table, (arrays[0][0], *arrays[1:]), strict=True):  # row 0: 1-d, not 2-d
        lend(row, a)
    with pytest.raises(TypeError, match="lent table row 0 does not hold"):
        _lent_sum_and_bump(numba.typeof(arrays), table)
    with pytest.raises(TypeError, match="cannot lend a float"):
        lend(table[0], 1.0)
    with pytest.raises(TypeError, match="compiled code only"):
        lent(numba.typeof(arrays), table)


@pytest.mark.slow
def test_python_controller_periods_through_the_pool_equal_the_unpacked_kernel(monkeypatch):
    # The packed kernel must change nothing but the cost of the call: same
    # record, bit for bit, as the kernel taking the NamedTuples, and as the
    # controller's compiled twin (every sensing feature on, a latency of two
    # periods so that commands wait in the device queue). A model state that
    # cannot be lent by address falls back to the kernel taking it whole.
    from closedloop.controllers import PID
    from closedloop.core import loop as loop_module
    from closedloop.core.loop import ClosedLoop
    from closedloop.core.period_packed import lent_table
    from closedloop.models import STNGPe

    def run(engine: str, packed: bool, lendable: bool = True) -> tuple[dict, bool]:
        loop = ClosedLoop(
            STNGPe(dt_s=1e-4, n=2),
            SensingChain(features=tuple(f.name for f in REGISTRY), noise_std=0.1),
            Device(),
            PID(setpoint=10.0, kp=0.01, ki=0.1, max_amplitude_ma=2.0),
            control_period_s=1e-3,
            seed=3,
            engine=engine,
            latency_s=2e-3,
        )
        if not packed:  # every period through the kernel that takes the NamedTuples
            serial = loop.model.kernels.periods_serial
            loop._kernel = lambda m, args: serial  # type: ignore[method-assign]
        if not lendable:
            with monkeypatch.context() as patch:
                # As if the model's kernel state held a scalar: lend() refuses it.
                patch.setattr(loop_module, "lent_table", lambda state: lent_table((*state, 1.0)))
                loop.reset()
        else:
            loop.reset()
        chunks: list[dict] = []
        totals = loop.run(0.2, chunk_s=0.05, on_chunk=lambda t0, d: chunks.append(dict(d)))
        series = {k: np.concatenate([c[k] for c in chunks], axis=-1) for k in chunks[0]}
        series.update({f"total_{k}": v for k, v in totals.items()})
        return series, loop._packed is not None

    (packed, used), (plain, _), (twin, _), (unlent, unlent_used) = (
        run("python", True),
        run("python", False),
        run("compiled", True),
        run("python", True, lendable=False),
    )
    assert used and not unlent_used  # periods_packed, then periods_serial
    for key, values in unlent.items():
        np.testing.assert_array_equal(packed[key], values, err_msg=f"unlent {key}")
    assert np.ptp(packed["amplitude"]) > 0  # the controller acted
    for key, values in plain.items():
        np.testing.assert_array_equal(packed[key], values, err_msg=key)
        np.testing.assert_array_equal(packed[key], twin[key], err_msg=f"twin {key}")
