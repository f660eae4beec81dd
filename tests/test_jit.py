"""Kernels declared before Numba is imported (closedloop.core.jit) and compiled once."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from closedloop.core.jit import load_kernels
from closedloop.models import STNGPe


@pytest.mark.slow  # a fresh interpreter compiling on an empty cache
def test_a_users_numba_kernel_calls_closedloop_kernels_declared_before_numba_loaded(tmp_path):
    # A fresh interpreter: closedloop's kernels are still stand-ins when the
    # user's own numba.njit kernel (which calls one) compiles.
    code = (
        "import sys, numpy as np, numba\n"
        "import closedloop.core.random as r\n"
        "from closedloop.core.jit import kernels_loaded\n"
        "assert not kernels_loaded()\n"
        "@numba.njit\n"
        "def draws(state, m):\n"
        "    out = np.empty(m)\n"
        "    for k in range(m):\n"
        "        out[k] = r.uniform(state, 0)\n"
        "    return out\n"
        "seed = np.random.SeedSequence(3).spawn(1)\n"
        "got = draws(r.rng_states(seed), 5)\n"
        # xoroshiro128+ in plain Python; a draw is (53 high bits + 1) / 2**53, in (0, 1]
        "s0, s1 = (int(v) for v in r.rng_states(seed)[0])\n"
        "M = 2**64 - 1\n"
        "rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M\n"
        "want = []\n"
        "for _ in range(5):\n"
        "    res = (s0 + s1) & M\n"
        "    s1 ^= s0\n"
        "    s0 = rotl(s0, 24) ^ s1 ^ ((s1 << 16) & M)\n"
        "    s1 = rotl(s1, 37)\n"
        "    want.append(((res >> 11) + 1.0) * 2.0**-53)\n"
        "print(kernels_loaded(), np.array_equal(got, want))\n"
    )
    env = {**os.environ, "CLOSEDLOOP_NUMBA_CACHE": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]


@pytest.mark.slow  # compiles the model step on a cold cache
def test_parallel_kernel_compiles_the_model_step_for_one_index_type_and_matches_serial():
    load_kernels()
    model = STNGPe(n=3, regime="parkinsonian")
    kernels = model.kernels
    outs = []
    for kernel in (kernels.advance_serial, kernels.advance_parallel):
        model.reset(7)
        out = np.empty((3, 200))
        kernel(200, 0, model.dt_s, model.kernel_state(), np.zeros((3, 200)), out)
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])
    # prange indices are uint64 in the parallel loop: cast, or the step compiles twice
    assert {str(sig[0]) for sig in kernels.advance_one.signatures} == {"int64"}


@pytest.mark.slow  # a fresh interpreter compiling the period kernel on an empty cache
def test_a_plain_run_compiles_without_the_general_period(tmp_path):
    # The default experiment's periods are plain (pulses, ARV chain with
    # noise): its kernels are typed with general=None, and the other
    # modalities' fills and the general chain's feature kernels are never
    # compiled (issue 18, gap 4: a cold first run compiled them all).
    code = (
        "from closedloop.controllers import OnOff\n"
        "from closedloop.core.loop import ClosedLoop\n"
        "from closedloop.device import Device\n"
        "from closedloop.models import STNGPe\n"
        "from closedloop.sensing.chain import SensingChain\n"
        "loop = ClosedLoop(STNGPe(n=2), SensingChain(noise_std=2.0), Device(),\n"
        "                  OnOff(threshold=1.0, amplitude_ma=1.0), control_period_s=0.02)\n"
        "loop.reset()\n"
        "loop.run(0.1)\n"
        "import closedloop.device.tes as tes, closedloop.device.tms as tms\n"
        "import closedloop.sensing.phase_ar as ar\n"
        "print(len(loop.model.kernels.periods_serial.signatures),\n"
        "      len(tms.tms_fill.signatures), len(tes.tes_fill.signatures),\n"
        "      len(ar.phase_ar_sample.signatures))\n"
    )
    env = {**os.environ, "CLOSEDLOOP_NUMBA_CACHE": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "0", "0", "0"]
