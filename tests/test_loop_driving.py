"""Driving the Numba loop from outside: resuming runs, step(), misuse.

``run(a)`` then ``run(b)`` must equal ``run(a + b)`` bit for bit: a user who
runs a loop in pieces (a notebook, an agent, a long run checkpointed) must
get the run they would have got in one go, pulse schedule included.
"""

import numpy as np
import pytest

from closedloop.controllers import PID, Controller, OpenLoop
from closedloop.core.loop import ClosedLoop
from closedloop.device import Device
from closedloop.models import STNGPe
from closedloop.sensing import SensingChain


def _loop(controller, *, n=2, latency_s=0.0, features=()):
    model = STNGPe(n=n, dt_s=1e-4)
    sensing = SensingChain(rate_hz=1000.0, features=tuple(features))
    device = Device(ramp_rate_ma_per_s=float("inf"))
    return ClosedLoop(
        model,
        sensing,
        device,
        controller,
        control_period_s=0.01,
        latency_s=latency_s,
        seed=7,
        engine="python" if not isinstance(controller, PID) else "auto",
    )


def _record(loop, pieces, chunk_s=0.05):
    """Run ``loop`` for each duration in ``pieces``; the chunks, stitched, and the totals."""
    loop.reset()
    seen: dict[str, list] = {}
    starts = []

    def on_chunk(t0, data):
        before = sum(b.shape[1] for b in seen.get("lfp", []))
        starts.append((t0, before * loop.sample_s))
        for key, block in data.items():
            seen.setdefault(key, []).append(block.copy())

    totals = None
    for duration in pieces:
        totals = loop.run(duration, chunk_s=chunk_s, on_chunk=on_chunk)
    return {k: np.concatenate(v, axis=1) for k, v in seen.items()}, totals, starts


class _Burst(Controller):
    """A burst of three pulses every fourth period, from a fixed amplitude."""

    name = "burst_test"

    def reset(self, n, rng):
        self.n_ = n
        self.k_ = 0

    def update(self, t, features):
        self.k_ += 1
        pulses = 3.0 if self.k_ % 4 == 0 else np.nan
        return {"amplitude_ma": np.full(self.n_, 1.5), "pulses": np.full(self.n_, pulses)}


@pytest.mark.parametrize(
    "make",
    [
        lambda: OpenLoop(amplitude_ma=2.0),  # continuous pulses (the reported defect)
        lambda: _Burst(),  # bursts filled period by period
        lambda: PID(setpoint=20.0, kp=0.02, ki=0.2),  # compiled twin: chunks in one call
    ],
    ids=["continuous", "bursts", "compiled_pid"],
)
@pytest.mark.parametrize("latency_s", [0.0, 0.025])
def test_run_in_pieces_equals_one_run(make, latency_s):
    whole, totals_whole, starts_whole = _record(_loop(make(), latency_s=latency_s), [1.0])
    parts, totals_parts, starts_parts = _record(
        _loop(make(), latency_s=latency_s), [0.5, 0.13, 0.37]
    )
    for key in whole:
        np.testing.assert_array_equal(parts[key], whole[key], err_msg=key)
    for key in totals_whole:
        np.testing.assert_array_equal(totals_parts[key], totals_whole[key], err_msg=key)
    # Every chunk starts at the time of its first sample: times go on from
    # where the last run stopped.
    for t0, expected in starts_parts + starts_whole:
        assert t0 == pytest.approx(expected, abs=1e-12)


def test_resumed_open_loop_delivers_every_pulse():
    # 130 Hz for 1 s, split in two: every pulse of the whole second is
    # delivered (63 instead of about 128 before runs could resume).
    def make():
        return _loop(OpenLoop(amplitude_ma=2.0, frequency_hz=130.0), n=1)

    halves, totals, _ = _record(make(), [0.5, 0.5])
    whole, expected, _ = _record(make(), [1.0])
    delivered = halves["pulse_count"][0, -1]
    assert delivered == whole["pulse_count"][0, -1]
    assert 125 <= delivered <= 130
    assert totals["charge_uc"][0] == expected["charge_uc"][0] > 0


class _Scripted(Controller):
    """Issues a fixed list of amplitudes, one per period (then the last one)."""

    name = "scripted_test"

    def __init__(self, amplitudes=()):
        self.amplitudes = amplitudes

    def reset(self, n, rng):
        self.n_ = n
        self.k_ = 0

    def update(self, t, features):
        amp = self.amplitudes[min(self.k_, len(self.amplitudes) - 1)]
        self.k_ += 1
        return {"amplitude_ma": np.full(self.n_, amp)}


def test_step_with_commands_equals_a_controller_issuing_them():
    amplitudes = [0.0, 1.0, 2.5, 2.5, 0.5, 3.0, 0.0, 1.5]
    driven = _loop(OpenLoop(amplitude_ma=0.0), latency_s=0.02, features=("line_length",))
    driven.reset()
    first = driven.step()  # the period before any command: the initial settings
    stepped = [first]
    for amp in amplitudes[:-1]:
        stepped.append(driven.step({"amplitude_ma": amp}))
    # A controller answering the same amplitudes after each period.
    reference = _loop(_Scripted(amplitudes), latency_s=0.02, features=("line_length",))
    data, _, _ = _record(reference, [len(amplitudes) * 0.01], chunk_s=1.0)
    biomarker = np.stack([s["biomarker"] for s in stepped], axis=1)
    np.testing.assert_array_equal(biomarker, data["biomarker"])
    line_length = np.stack([s["line_length"] for s in stepped], axis=1)
    np.testing.assert_array_equal(line_length, data["feature_line_length"])
    assert stepped[-1]["t_s"][0] == pytest.approx(len(amplitudes) * 0.01)
    np.testing.assert_array_equal(driven.totals()["charge_uc"], reference.totals()["charge_uc"])
    assert driven.totals()["charge_uc"][0] > 0


def test_run_continues_after_step():
    # Five periods driven from outside, answering as OpenLoop would (nothing
    # before the first period ends), then the controller takes over.
    a = _loop(OpenLoop(amplitude_ma=2.0))
    a.reset()
    a.step()
    for _ in range(4):
        a.step({"amplitude_ma": 2.0})
    a.run(0.25)
    b = _loop(OpenLoop(amplitude_ma=2.0))
    b.reset()
    b.run(0.3)
    assert a.time_s == pytest.approx(b.time_s)
    for key, value in b.totals().items():
        np.testing.assert_array_equal(a.totals()[key], value, err_msg=key)


def test_step_rejects_a_bad_command_by_name():
    loop = _loop(OpenLoop())
    loop.reset()
    with pytest.raises(TypeError, match="amplitude_ma"):
        loop.step({"amplitude_ma": "two"})


@pytest.mark.parametrize("call", ["run", "step", "warm_up"])
def test_using_the_loop_before_reset_says_what_to_call(call):
    loop = _loop(PID(setpoint=20.0))
    args = {"run": (0.1,), "step": (), "warm_up": (0.1,)}[call]
    with pytest.raises(RuntimeError, match=r"call loop\.reset\(\) first"):
        getattr(loop, call)(*args)


def test_a_tms_loop_reads_the_intensity_key_its_device_names_and_refuses_a_current():
    from closedloop.device.tms import TMSSettings

    loop = ClosedLoop(
        STNGPe(n=2, dt_s=1e-4),
        SensingChain(rate_hz=1000.0),
        Device(modality="tms", tms=TMSSettings()),
        OpenLoop(amplitude_ma=0.0),
        control_period_s=0.01,
        seed=7,
        engine="python",
    )
    loop.reset()
    loop.step()
    loop.step({"intensity_pct_rmt": 80.0, "pulses": 1.0})  # one single pulse at 80 % RMT
    for _ in range(5):
        loop.step()
    totals = loop.totals()
    np.testing.assert_array_equal(totals["n_pulses"], [1.0, 1.0])
    np.testing.assert_array_equal(totals["dose_pct_rmt"], [80.0, 80.0])
    with pytest.raises(ValueError, match="intensity_pct_rmt"):
        loop.step({"amplitude_ma": 1.0})
