"""A hand-written batched STN-GPe kernel: the ceiling the closed loop is measured against.

Issue 18 (gap 1) compares the framework's closed loop with what a modeller
would write by hand for one experiment: one plain ``@njit`` function that
advances a batch of the delayed STN-GPe rate model
(:mod:`closedloop.models.stn_gpe`: same equations, delays, sigmoid and
Euler-Maruyama noise), the step loop outside and the instances inside, the
delay lines in ``(history, n)`` arrays; and the same kernel closed by a
plain numpy PI controller every control period. No device limits, no
sensing chain, no recording: what such a script does without a framework.

The noise comes from :func:`closedloop.core.random.normal` on each instance's
own stream, so from the model's state (:func:`from_model`) the kernel gives
the model's own output to the last bit (``tests/test_bench_ceiling.py``):
the reference does the same arithmetic, only written plainly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numba import njit

from closedloop.core.random import normal

__all__ = [
    "HandState",
    "from_model",
    "hand_advance",
    "hand_closed_loop_runner",
    "hand_open_loop_runner",
]


class HandState(NamedTuple):
    """State of the hand-written kernel for a batch of ``n`` (arrays updated in place)."""

    rates: np.ndarray  #: (3, n): S and G (spikes/s), u (mA)
    hist: np.ndarray  #: (2, H, n): S and G over the last H steps, spikes/s
    rng: np.ndarray  #: (n, 2) uint64: the instances' noise streams
    p: np.ndarray  #: (19,): the constants, see :func:`from_model`
    delays: np.ndarray  #: (3,) int64: d_GS, d_SG, d_GG, steps


@njit(cache=True)
def hand_advance(n_steps, step0, dt, st, drive, out):
    """Advance every instance ``n_steps`` steps of ``dt`` s; ``out[i, j]`` = S (spikes/s).

    ``drive[i, j]`` is the mean cathodic current of step ``j`` (mA), as the
    model takes it; ``step0`` the global index of the first step (it places
    the ring buffers' write position).
    """
    rates, hist, rng, p, delays = st
    n = rates.shape[1]
    h_len = hist.shape[1]
    k_s, k_g, k_u = dt / p[0], dt / p[1], dt / p[2]
    noise_s, noise_g = p[3] * math.sqrt(dt), p[4] * math.sqrt(dt)
    cortex, w_gs, w_sg, w_gg, stri, g_dbs = p[5], p[6], p[7], p[8], p[9], p[10]
    s_mb, s_mmb, s_b, s_k = p[11], p[12], p[13], p[14]
    g_mb, g_mmb, g_b, g_k = p[15], p[16], p[17], p[18]
    d_gs, d_sg, d_gg = delays[0], delays[1], delays[2]
    for j in range(n_steps):
        pos = (step0 + j) % h_len
        k_gs = (pos - d_gs) % h_len
        k_sg = (pos - d_sg) % h_len
        k_gg = (pos - d_gg) % h_len
        for i in range(n):
            s = rates[0, i]
            g = rates[1, i]
            u = rates[2, i]
            hist[0, pos, i] = s
            hist[1, pos, i] = g
            in_s = cortex - w_gs * hist[1, k_gs, i] + g_dbs * u
            in_g = w_sg * hist[0, k_sg, i] - w_gg * hist[1, k_gg, i] - stri
            rates[2, i] = u + k_u * (drive[i, j] - u)
            s_new = s + k_s * (s_mb / (s_b + s_mmb * math.exp(s_k * in_s)) - s)
            g_new = g + k_g * (g_mb / (g_b + g_mmb * math.exp(g_k * in_g)) - g)
            if noise_s > 0.0:
                s_new += noise_s * normal(rng, i)
            if noise_g > 0.0:
                g_new += noise_g * normal(rng, i)
            s = max(s_new, 0.0)
            rates[0, i] = s
            rates[1, i] = max(g_new, 0.0)
            out[i, j] = s


def from_model(model: object) -> HandState:
    """The hand-written kernel's state copied from a reset STN-GPe model.

    Takes instance 0's parameters for the whole batch (the hand-written
    kernel has one parameter set), and copies the model's rates, delay
    lines (their positions unchanged: the kernel indexes them by the global
    step as the model does) and noise streams.
    """
    rec = model.record[0]  # type: ignore[attr-defined]
    x = model.state["x"]  # type: ignore[attr-defined]
    hist = model.state["history"]  # type: ignore[attr-defined]
    p = np.array(
        [
            rec["tau_S"],
            rec["tau_G"],
            rec["tau_DBS"],
            rec["sigma_S"],
            rec["sigma_G"],
            rec["w_CS"] * rec["C"],
            rec["w_GS"],
            rec["w_SG"],
            rec["w_GG"],
            rec["Str"],
            rec["g_DBS"],
            rec["M_S"] * rec["B_S"],
            rec["M_S"] - rec["B_S"],
            rec["B_S"],
            -4.0 / rec["M_S"],
            rec["M_G"] * rec["B_G"],
            rec["M_G"] - rec["B_G"],
            rec["B_G"],
            -4.0 / rec["M_G"],
        ],
        dtype=np.float64,
    )
    return HandState(
        rates=np.ascontiguousarray(x.T),
        hist=np.ascontiguousarray(hist.transpose(1, 2, 0)),
        rng=model.rng_.copy(),  # type: ignore[attr-defined]
        p=p,
        delays=np.array([rec["d_GS"], rec["d_SG"], rec["d_GG"]], dtype=np.int64),
    )


def _hand_model(n: int, dt_s: float) -> HandState:
    from closedloop.models import STNGPe

    model = STNGPe(n=n, dt_s=dt_s)
    model.reset(0)
    return from_model(model)


def hand_open_loop_runner(n: int, dt_s: float, seconds: float) -> Callable[[], float]:
    """A function that runs the hand-written kernel open loop and returns its rate.

    Runs ``seconds`` of simulated time in 0.1 s calls into preallocated
    arrays; the rate is instance-seconds per wall second. Compiled (or loaded)
    before the function is returned.
    """
    st = _hand_model(n, dt_s)
    chunk = max(1, int(round(0.1 / dt_s)))
    calls = max(1, int(round(seconds / (chunk * dt_s))))
    drive = np.zeros((n, chunk))
    out = np.empty((n, chunk))
    hand_advance(1, 0, dt_s, st, drive, out)
    step = [1]

    def once() -> float:
        t = time.perf_counter()
        for _ in range(calls):
            hand_advance(chunk, step[0], dt_s, st, drive, out)
            step[0] += chunk
        return n * calls * chunk * dt_s / (time.perf_counter() - t)

    return once


def hand_closed_loop_runner(
    n: int, dt_s: float, period_s: float, seconds: float
) -> Callable[[], float]:
    """The hand-written kernel closed by a plain numpy PI every ``period_s``; returns its rate.

    Each period: continuous 130 Hz, 60 us pulses whose mean cathodic current
    (amplitude x width x frequency, mA) drives the next ``period_s`` of the
    kernel; the period's mean STN rate (a 1/``period_s`` sample of the LFP
    proxy) feeds a one-pole estimate of its mean and of its power about it
    (20 ms time constant), and a PI (the same gains as the perf suite's PID:
    setpoint 30, kp 0.02, ki 0.2 /s, clipped to 0..3 mA, conditional
    integration) sets the amplitude. Settings chosen here: the work a
    modeller's own script does per period, not a published controller.
    """
    st = _hand_model(n, dt_s)
    spp = max(1, int(round(period_s / dt_s)))
    periods = max(1, int(round(seconds / period_s)))
    drive = np.zeros((n, spp))
    out = np.empty((n, spp))
    hand_advance(1, 0, dt_s, st, drive, out)
    charge_rate = 60e-6 * 130.0  # s of cathodic phase per s: mean current per mA
    alpha = math.exp(-period_s / 0.02)
    step = [1]

    def once() -> float:
        mean = np.full(n, 100.0)
        power = np.zeros(n)
        integral = np.zeros(n)
        amp = np.zeros(n)
        t = time.perf_counter()
        for _ in range(periods):
            drive[:] = (amp * charge_rate)[:, None]
            hand_advance(spp, step[0], dt_s, st, drive, out)
            step[0] += spp
            sample = out.mean(axis=1)
            mean *= alpha
            mean += (1.0 - alpha) * sample
            dev = sample - mean
            power *= alpha
            power += (1.0 - alpha) * dev * dev
            error = np.sqrt(power) - 30.0
            candidate = integral + 0.2 * period_s * error
            integral = np.where((candidate >= 0.0) & (candidate <= 3.0), candidate, integral)
            amp = np.clip(0.02 * error + integral, 0.0, 3.0)
        return n * periods * period_s / (time.perf_counter() - t)

    return once
