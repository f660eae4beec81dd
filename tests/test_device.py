"""Tests of the virtual stimulator: limits, ramps, charge safety, energy, queue."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop.controllers import Controller
from closedloop.core.loop import ClosedLoop
from closedloop.device import (
    DEVICE_STATE,
    Device,
    DeviceState,
    device_fill,
    device_targets,
    device_totals,
    queue_push,
)
from closedloop.models import STNGPe
from closedloop.sensing import SensingChain

COL = {name: k for k, name in enumerate(DEVICE_STATE)}
AMP = COL["amplitude_ma"]
TGT_AMP = COL["target_amplitude_ma"]
FREQ = COL["frequency_hz"]
TGT_PW = COL["target_pulse_width_us"]
P_AMP = COL["pulse_amplitude_ma"]
P_PW = COL["pulse_width_s"]
ENERGY = COL["energy_j"]
CHARGE = COL["charge_uc"]
N_PULSES = COL["n_pulses"]
N_REJECTED = COL["n_rejected"]

# Relative slack for results that are a product or a sum of a few roundings.
ULP_TOL = 1e-12
# The per-step drive is a pulse's overlap with [t0, t0 + dt] in absolute time over dt,
# so it carries a relative rounding error of about ulp(t) / dt (1e-11 at t = 1 s, dt =
# 10 us): far below anything physical, but above ULP_TOL.
DRIVE_TOL = 1e-9


def new_device(dev: Device, n: int = 1, queue_len: int = 8) -> DeviceState:
    """Device kernel state as the loop builds it: state, limits, command queue."""
    return dev.kernel_state(n, queue_len)


def push(
    device: DeviceState, amplitude_ma, frequency_hz, pulse_width_us, step: int, pulses=math.nan
) -> None:
    n = device.state.shape[0]
    command = tuple(
        np.full(n, v, dtype=np.float64)
        for v in (amplitude_ma, frequency_hz, pulse_width_us, pulses)
    )
    queue_push(device, command, step)


def fill(device: DeviceState, step0: int, n_steps: int, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Fill ``n_steps`` steps for every instance (which drops the commands used)."""
    n = device.state.shape[0]
    drive = np.full((n, n_steps), np.nan)
    net = np.full((n, n_steps), np.nan)
    for i in range(n):
        device_fill(i, n_steps, step0, dt, device, drive, net)
    return drive, net


def run_constant(dev: Device, amplitude_ma, frequency_hz, pulse_width_us, dt, n_steps):
    device = new_device(dev)
    push(device, amplitude_ma, frequency_hz, pulse_width_us, 0)
    drive, net = fill(device, 0, n_steps, dt)
    return device.state[0], drive[0], net[0]


# ---------------------------------------------------------------------------
# Safety whatever the controller asks


wild = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -1e300, 0.0, -0.0, -1.0, 5e-324]),
    st.floats(-10.0, 1000.0),
)
commands = st.lists(
    st.tuples(wild, wild, wild, st.integers(1, 4)),  # amplitude, frequency, width, hold steps
    min_size=1,
    max_size=40,
)
devices = st.sampled_from(
    [
        Device(),
        Device(ramp_rate_ma_per_s=math.inf),
        Device(
            ramp_rate_ma_per_s=1e4,
            amplitude_max_ma=10.0,
            frequency_max_hz=1000.0,
            pulse_width_max_us=300.0,
        ),
        Device(
            amplitude_max_ma=8.0,
            shannon_k=1.5,
            electrode_area_cm2=0.01,
            max_charge_density_uc_per_cm2=math.inf,
            ramp_rate_ma_per_s=500.0,
        ),
    ]
)


def check_safe(dev: Device, state: np.ndarray, before: np.ndarray, n_steps: int, dt: float):
    """Delivered values after a fill of ``n_steps`` respect every limit."""
    remaining = state[list(DEVICE_STATE).index("pulses_remaining")]
    finite = np.delete(state, list(DEVICE_STATE).index("pulses_remaining"))
    assert np.all(np.isfinite(finite)), dict(zip(DEVICE_STATE, state, strict=True))
    # Pulses still to deliver: continuous (inf) or a whole, non-negative count.
    assert remaining == math.inf or (remaining >= 0 and remaining == math.floor(remaining))
    amp = state[AMP]
    assert 0.0 <= amp <= dev.amplitude_max_ma
    ramp = dev.ramp_rate_ma_per_s * dt * n_steps
    assert abs(amp - before[AMP]) <= ramp * (1 + ULP_TOL)
    assert dev.frequency_min_hz <= state[FREQ] <= dev.frequency_max_hz
    pw_us = state[P_PW] * 1e6
    assert dev.pulse_width_min_us * (1 - ULP_TOL) <= pw_us
    assert pw_us <= dev.pulse_width_max_us * (1 + ULP_TOL)
    assert 0.0 <= state[P_AMP] <= dev.amplitude_max_ma
    charge_per_phase_uc = state[P_AMP] * state[P_PW] * 1e3
    assert charge_per_phase_uc <= dev.charge_limit_uc * (1 + ULP_TOL)


@settings(max_examples=150, deadline=None)
@given(
    dev=devices,
    cmds=commands,
    dt=st.sampled_from([1e-5, 1e-4, 1e-3]),
    chunks=st.lists(st.integers(1, 9), min_size=1, max_size=8),
)
def test_delivered_stimulation_stays_within_limits(dev, cmds, dt, chunks):
    # Step by step, one command per hold period, checking every step.
    device = new_device(dev, queue_len=len(cmds) + 1)
    drives, nets = [], []
    step = 0
    expected_rejected = 0
    schedule = []  # (effective step, command)
    for amp, freq, pw, hold in cmds:
        schedule.append((step, (amp, freq, pw)))
        expected_rejected += sum(not math.isfinite(v) for v in (amp, freq, pw))
        push(device, amp, freq, pw, step)
        for _ in range(hold):
            before = device.state[0].copy()
            drive, net = fill(device, step, 1, dt)
            check_safe(dev, device.state[0], before, 1, dt)
            assert np.all(np.isfinite(drive)) and np.all(np.isfinite(net))
            assert 0.0 <= drive[0, 0] <= dev.amplitude_max_ma * (1 + DRIVE_TOL)
            drives.append(drive[0, 0])
            nets.append(net[0, 0])
            step += 1
    n_total = step
    assert device.state[0, N_REJECTED] == expected_rejected

    # The same commands queued ahead and filled in chunks of several steps.
    chunked = new_device(dev, queue_len=len(cmds) + 1)
    for eff, (amp, freq, pw) in schedule:
        push(chunked, amp, freq, pw, eff)
    drive_c, net_c = [], []
    step = 0
    k = 0
    while step < n_total:
        size = min(chunks[k % len(chunks)], n_total - step)
        before = chunked.state[0].copy()
        drive, net = fill(chunked, step, size, dt)
        check_safe(dev, chunked.state[0], before, size, dt)
        drive_c.extend(drive[0])
        net_c.extend(net[0])
        step += size
        k += 1
    np.testing.assert_array_equal(drive_c, drives)
    np.testing.assert_array_equal(net_c, nets)
    np.testing.assert_array_equal(chunked.state, device.state)


def test_ramp_reaches_target_at_the_ramp_rate():
    dev = Device(ramp_rate_ma_per_s=10.0)
    dt = 1e-4
    device = new_device(dev)
    push(device, 3.0, 130.0, 60.0, 0)
    amps = []
    for step in range(4000):
        fill(device, step, 1, dt)
        amps.append(device.state[0, AMP])
    amps = np.array(amps)
    # 10 mA/s: 3 mA is reached after 0.3 s (3000 steps), not before.
    assert amps[2990] < 3.0
    np.testing.assert_allclose(amps[3000:], 3.0, rtol=1e-9)
    np.testing.assert_allclose(np.diff(amps[:2900]), 10.0 * dt, rtol=1e-6)


# ---------------------------------------------------------------------------
# Charge and energy accounting


@pytest.mark.parametrize("dt", [1e-4, 1e-5])
def test_pulses_shorter_than_dt_lose_no_charge(dt):
    dev = Device(ramp_rate_ma_per_s=math.inf)
    amp, freq, pw_us = 2.5, 130.0, 60.0
    # 1 s of pulses at k / 130 s, k = 0..130, plus 2 ms so that the one at 1 s ends too.
    n_steps = int(round(1.002 / dt))
    state, drive, net = run_constant(dev, amp, freq, pw_us, dt, n_steps)
    n_pulses = state[N_PULSES]
    assert n_pulses == 131
    expected = amp * pw_us * 1e-6 * n_pulses  # mA * s
    delivered = drive.sum() * dt
    assert delivered == pytest.approx(expected, rel=1e-9)
    # Charge balance: every pulse ended within the second, anodic phase included.
    assert abs(net.sum() * dt) <= 1e-9 * expected
    # The device's own charge counter agrees (uC = mA * s * 1e3).
    assert state[CHARGE] == pytest.approx(expected * 1e3, rel=1e-9)
    # The cathodic current never exceeds the amplitude in any step.
    assert drive.max() <= amp * (1 + DRIVE_TOL)


def test_delivered_charge_does_not_depend_on_dt():
    dev = Device(ramp_rate_ma_per_s=math.inf)
    totals = []
    for dt in (1e-3, 1e-4, 1e-5):
        _, drive, _ = run_constant(dev, 1.7, 130.0, 90.0, dt, int(round(1.0 / dt)))
        totals.append(drive.sum() * dt)
    np.testing.assert_allclose(totals, totals[0], rtol=1e-9)


@pytest.mark.parametrize(
    ("amp", "freq", "pw_us", "duration_s"),
    [(2.0, 130.0, 60.0, 2.0), (3.5, 185.0, 90.0, 1.0), (1.0, 20.0, 200.0, 3.0)],
)
def test_energy_matches_teed(amp, freq, pw_us, duration_s):
    dev = Device(ramp_rate_ma_per_s=math.inf)
    dt = 1e-4
    state, _, _ = run_constant(dev, amp, freq, pw_us, dt, int(round(duration_s / dt)))
    one_pulse_j = (amp * 1e-3) ** 2 * dev.impedance_ohm * 2 * pw_us * 1e-6
    expected = dev.teed_j(amp, freq, pw_us, duration_s)
    assert abs(state[ENERGY] - expected) <= one_pulse_j
    assert state[ENERGY] > 0.5 * expected


# ---------------------------------------------------------------------------
# Shannon limit


def test_shannon_charge_limit():
    dev = Device(shannon_k=1.75, electrode_area_cm2=0.06)
    expected = min(math.sqrt(10**1.75 * 0.06), 30 * 0.06)
    assert dev.charge_limit_uc == pytest.approx(expected, rel=1e-12)
    shannon_only = Device(
        shannon_k=1.75, electrode_area_cm2=0.06, max_charge_density_uc_per_cm2=math.inf
    )
    assert shannon_only.charge_limit_uc == pytest.approx(math.sqrt(10**1.75 * 0.06), rel=1e-12)


@pytest.mark.parametrize("density_max", [30.0, math.inf])
def test_amplitude_capped_by_charge_limit(density_max):
    dev = Device(
        shannon_k=1.75,
        electrode_area_cm2=0.06,
        ramp_rate_ma_per_s=math.inf,
        max_charge_density_uc_per_cm2=density_max,
    )
    pw_us = 450.0
    cap = dev.charge_limit_uc / (pw_us * 1e-3)  # mA
    assert cap < dev.amplitude_max_ma  # the test is about the charge limit
    state, drive, _ = run_constant(dev, dev.amplitude_max_ma, 130.0, pw_us, 1e-4, 2000)
    assert state[AMP] == pytest.approx(cap, rel=1e-12)
    assert state[P_AMP] * state[P_PW] * 1e3 <= dev.charge_limit_uc * (1 + ULP_TOL)
    assert drive.max() <= cap * (1 + DRIVE_TOL)


def test_width_raised_at_high_amplitude_is_shortened_to_the_limit():
    dev = Device(ramp_rate_ma_per_s=10.0)
    dt = 1e-4
    device = new_device(dev)
    push(device, 4.5, 130.0, 60.0, 0)  # 0.27 uC per phase: within the 1.8 uC limit
    fill(device, 0, 5000, dt)
    assert device.state[0, AMP] == pytest.approx(4.5)
    # 450 us allows 1.8 uC / 450 us = 4 mA: the target drops at once, the amplitude
    # ramps down over 50 ms, and the pulses meanwhile are shortened instead.
    push(device, 5.0, 130.0, 450.0, 5000)
    widths = []
    for step in range(5000, 6000):
        fill(device, step, 1, dt)
        state = device.state[0]
        assert state[P_AMP] * state[P_PW] * 1e3 <= dev.charge_limit_uc * (1 + ULP_TOL)
        widths.append(state[P_PW] * 1e6)
    cap = dev.charge_limit_uc / 0.45
    assert device.state[0, TGT_AMP] == pytest.approx(cap, rel=1e-12)
    assert device.state[0, AMP] == pytest.approx(cap, rel=1e-12)
    assert min(widths) < 450.0 * (1 - 1e-3)  # shortened during the ramp
    assert widths[-1] == pytest.approx(450.0, rel=1e-9)


# ---------------------------------------------------------------------------
# Command queue (sensing-to-stimulation latency)


def test_command_takes_effect_at_its_step():
    dev = Device()
    dt = 1e-4
    device = new_device(dev, n=2)
    effective = 37
    push(device, 2.0, 100.0, 90.0, effective)
    before = device.state.copy()
    for step in range(effective):
        fill(device, step, 1, dt)
        np.testing.assert_array_equal(device.state[:, TGT_AMP], before[:, TGT_AMP])
        np.testing.assert_array_equal(device.state[:, FREQ], before[:, FREQ])
        np.testing.assert_array_equal(device.state[:, TGT_PW], before[:, TGT_PW])
        assert np.all(device.state[:, AMP] == 0.0)
    fill(device, effective, 1, dt)
    np.testing.assert_array_equal(device.state[:, TGT_AMP], 2.0)
    np.testing.assert_array_equal(device.state[:, FREQ], 100.0)
    np.testing.assert_array_equal(device.state[:, TGT_PW], 90.0)
    assert np.all(device.state[:, AMP] > 0.0)


def test_queued_commands_apply_in_order_inside_one_fill():
    dev = Device(ramp_rate_ma_per_s=math.inf)
    device = new_device(dev)
    push(device, 1.0, 130.0, 60.0, 10)
    push(device, 2.0, 130.0, 60.0, 20)
    push(device, 3.0, 130.0, 60.0, 30)
    reference = new_device(dev)
    push(reference, 1.0, 130.0, 60.0, 10)
    push(reference, 2.0, 130.0, 60.0, 20)
    push(reference, 3.0, 130.0, 60.0, 30)
    amps = []
    for step in range(40):
        fill(reference, step, 1, 1e-4)
        amps.append(reference.state[0, AMP])
    assert amps[9] == 0.0 and amps[10] == 1.0 and amps[20] == 2.0 and amps[39] == 3.0
    fill(device, 0, 40, 1e-4)
    np.testing.assert_array_equal(device.state, reference.state)
    assert device.queue_head[0] == device.queue_tail[0]  # every command used and dropped


def test_negative_effective_step_queues_nothing():
    device = new_device(Device())
    push(device, 2.0, 130.0, 60.0, -1)
    assert device.queue_tail[0] == 0


def test_full_queue_raises():
    device = new_device(Device(), queue_len=2)
    push(device, 1.0, 130.0, 60.0, 0)
    push(device, 1.0, 130.0, 60.0, 1)
    with pytest.raises(ValueError, match="queue is full"):
        push(device, 1.0, 130.0, 60.0, 2)


def test_chunked_fill_is_bit_identical():
    dev = Device(ramp_rate_ma_per_s=20.0)
    dt = 1e-4
    schedule = [
        (0, 3.0, 130.0, 60.0),
        (150, 1.0, 185.0, 120.0),
        (333, 4.5, 20.0, 300.0),
        (777, 0.0, 130.0, 60.0),
        (901, 2.0, 250.0, 90.0),
    ]

    def make():
        device = new_device(dev, n=3, queue_len=len(schedule) + 1)
        for step, amp, freq, pw in schedule:
            device_cmd = (
                np.array([amp, amp / 2, 0.3]),
                np.array([freq, freq, 40.0]),
                np.array([pw, pw * 1.5, 200.0]),
                np.full(3, np.nan),
            )
            queue_push(device, device_cmd, step)
        return device

    whole = make()
    drive_w, net_w = fill(whole, 0, 1000, dt)
    chunked = make()
    parts = [fill(chunked, 100 * k, 100, dt) for k in range(10)]
    drive_c = np.concatenate([p[0] for p in parts], axis=1)
    net_c = np.concatenate([p[1] for p in parts], axis=1)
    np.testing.assert_array_equal(drive_c, drive_w)
    np.testing.assert_array_equal(net_c, net_w)
    np.testing.assert_array_equal(chunked.state, whole.state)
    assert drive_w.max() > 0


def test_targets_and_totals_report_the_clamped_command_and_what_was_delivered():
    dev = Device(amplitude_max_ma=3.0, frequency_max_hz=200.0, ramp_rate_ma_per_s=math.inf)
    device = new_device(dev, n=2)
    push(device, 9.0, 500.0, 60.0, 0)  # above the amplitude and frequency limits
    fill(device, 0, 1000, 1e-4)  # 0.1 s at 200 Hz: 20 pulses
    amplitude, frequency, width = device_targets(device)
    np.testing.assert_array_equal(amplitude, 3.0)
    np.testing.assert_array_equal(frequency, 200.0)
    np.testing.assert_array_equal(width, 60.0)
    totals = device_totals(device)
    assert list(totals) == list(DEVICE_STATE)
    np.testing.assert_array_equal(totals["n_pulses"], 20.0)
    # Copies: a caller cannot change the device's state through them.
    amplitude[:] = 0.0
    totals["n_pulses"][:] = 0.0
    assert device.state[0, TGT_AMP] == 3.0 and device.state[0, N_PULSES] == 20.0


# ---------------------------------------------------------------------------
# Configuration


POSITIVE_FIELDS = [
    "amplitude_max_ma",
    "frequency_min_hz",
    "frequency_max_hz",
    "pulse_width_min_us",
    "pulse_width_max_us",
    "ramp_rate_ma_per_s",
    "electrode_area_cm2",
    "max_charge_density_uc_per_cm2",
    "impedance_ohm",
]


@pytest.mark.parametrize("value", [-1.0, 0.0, math.nan])
@pytest.mark.parametrize("name", POSITIVE_FIELDS)
def test_bad_limit_rejected(name, value):
    kwargs = {name: value}
    if name == "frequency_min_hz":
        kwargs["frequency_max_hz"] = 250.0
    with pytest.raises(ValueError, match=name):
        Device(**kwargs)


def test_min_above_max_rejected():
    with pytest.raises(ValueError, match="frequency_min_hz"):
        Device(frequency_min_hz=200.0, frequency_max_hz=100.0)
    with pytest.raises(ValueError, match="pulse_width_min_us"):
        Device(pulse_width_min_us=300.0, pulse_width_max_us=100.0)


def test_overlapping_biphasic_pulses_rejected():
    # 2 * 1000 us * 500 Hz = 1: the recovery phase would run into the next pulse.
    with pytest.raises(ValueError, match="pulse_width_max_us"):
        Device(pulse_width_max_us=1000.0, frequency_max_hz=500.0)
    Device(pulse_width_max_us=999.0, frequency_max_hz=500.0)  # just below is fine


@pytest.mark.parametrize("name", ["initial_frequency_hz", "initial_pulse_width_us"])
def test_non_finite_initial_setting_rejected(name):
    with pytest.raises(ValueError, match=name):
        Device(**{name: math.nan})


def test_nan_shannon_k_rejected():
    with pytest.raises(ValueError, match="shannon_k"):
        Device(shannon_k=math.nan)


# -- pulse trains: bursts, single pulses, continuous --------------------------------


def _pulse_onsets(drive: np.ndarray) -> np.ndarray:
    """Steps where a cathodic phase begins (drive rises from zero)."""
    on = drive > 0
    return np.flatnonzero(on & ~np.r_[False, on[:-1]])


def test_burst_delivers_exactly_k_pulses_then_stops():
    dev = Device(ramp_rate_ma_per_s=math.inf)
    device = new_device(dev)
    push(device, 2.0, 100.0, 60.0, 0, pulses=0)  # amplitude set, no pulses
    push(device, 2.0, 100.0, 60.0, 1000, pulses=3)  # a burst at t = 0.1 s
    drive, _ = fill(device, 0, 5000, 1e-4)
    onsets = _pulse_onsets(drive[0])
    # 100 Hz from the trigger (a pulse edge on a step boundary may round either way).
    np.testing.assert_allclose(onsets, [1000, 1100, 1200], atol=1)
    assert onsets[0] == 1000
    assert device.state[0, N_PULSES] == 3
    assert device.state[0, COL["pulses_remaining"]] == 0


def test_single_pulses_on_demand_and_continuous_again():
    dev = Device(ramp_rate_ma_per_s=math.inf)
    device = new_device(dev)
    push(device, 1.0, 130.0, 60.0, 0, pulses=0)
    for step in (500, 1234, 2001):
        push(device, 1.0, 130.0, 60.0, step, pulses=1)
    push(device, 1.0, 130.0, 60.0, 3000, pulses=math.inf)
    drive, _ = fill(device, 0, 4000, 1e-4)
    onsets = _pulse_onsets(drive[0])
    np.testing.assert_array_equal(onsets[:3], [500, 1234, 2001])
    # Continuous 130 Hz again from step 3000 (onsets 76 or 77 steps of 0.1 ms apart).
    assert onsets[3] == 3000 and len(onsets[3:]) >= 13
    assert set(np.diff(onsets[3:])) <= {76, 77}


@pytest.mark.parametrize("amplitude_ma", [0.5, 2.0])  # below and above 1 mA
def test_a_burst_asked_during_a_pulse_starts_when_that_pulse_has_ended(amplitude_ma):
    # A 200 us biphasic pulse starts at t = 0 (cathodic 0-200 us, anodic 200-400 us);
    # a 3-pulse burst asked at 100 us must not overlap it: its first pulse starts at
    # 400 us, so the cathodic current never exceeds the amplitude.
    dt = 1e-5
    dev = Device(ramp_rate_ma_per_s=math.inf)
    device = new_device(dev)
    push(device, amplitude_ma, 100.0, 200.0, 0, pulses=1)
    push(device, amplitude_ma, 100.0, 200.0, 10, pulses=3)
    drive, net = fill(device, 0, 4000, dt)
    assert drive.max() <= amplitude_ma * (1 + DRIVE_TOL)
    np.testing.assert_allclose(_pulse_onsets(drive[0]), [0, 40, 1040, 2040], atol=1)
    assert device.state[0, N_PULSES] == 4
    # Every pulse is charge-balanced: the net charge over the run is zero.
    assert abs(net.sum() * dt) < 1e-9 * amplitude_ma


def test_zero_pulses_stops_and_negative_is_rejected():
    dev = Device(ramp_rate_ma_per_s=math.inf)
    device = new_device(dev)
    push(device, 2.0, 130.0, 60.0, 0)
    push(device, 2.0, 130.0, 60.0, 1000, pulses=0)
    push(device, 2.0, 130.0, 60.0, 1500, pulses=-4)
    drive, _ = fill(device, 0, 3000, 1e-4)
    assert _pulse_onsets(drive[0]).max() < 1000
    assert device.state[0, N_REJECTED] == 1
    # Stopped pulses count as stimulation off: one switch on, one off.
    assert device.state[0, COL["n_switches"]] == 2


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(allow_nan=True, allow_infinity=True, width=64),
            st.integers(min_value=1, max_value=300),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_any_pulse_counts_keep_limits(commands):
    dev = Device()
    device = new_device(dev, queue_len=len(commands) + 1)
    step = 0
    for pulses, gap in commands:
        push(device, 3.0, 200.0, 90.0, step, pulses=pulses)
        step += gap
    drive, net = fill(device, 0, step + 500, 1e-4)
    state = device.state[0]
    remaining = state[COL["pulses_remaining"]]
    assert remaining == math.inf or (remaining >= 0 and remaining == math.floor(remaining))
    assert np.all(np.isfinite(drive)) and drive.max() <= dev.amplitude_max_ma + DRIVE_TOL
    assert abs(net.sum()) * 1e-4 <= 3.0 * 90e-6 + 1e-12  # charge-balanced but the last pulse


# -- accounting that must follow each delivered pulse -----------------------------


def _pulse_groups(drive: np.ndarray) -> list[np.ndarray]:
    """The steps of each cathodic phase: runs of consecutive steps with drive > 0."""
    steps = np.flatnonzero(drive > 0)
    return np.split(steps, np.flatnonzero(np.diff(steps) > 1) + 1)


def test_energy_and_charge_during_a_ramp_follow_each_pulse():
    # 10 mA/s up to 3 mA (0.3 s, about 39 pulses at 130 Hz), then down to 0.5 mA
    # (0.25 s), filled one 10 ms control period at a time as the loop does. Each
    # pulse has the amplitude reached when it starts, neither the target nor the
    # amplitude at the end of its period: TEED and charge must add up pulse by pulse.
    dev = Device(ramp_rate_ma_per_s=10.0, impedance_ohm=1200.0)
    dt, period_steps, pw_us, freq = 1e-4, 100, 60.0, 130.0
    ramp_per_step = dev.ramp_rate_ma_per_s * dt
    device = new_device(dev)
    push(device, 3.0, freq, pw_us, 0)
    push(device, 0.5, freq, pw_us, 3500)
    n_steps = 7050  # 0.705 s: the last pulse (onset 91 / 130 s = 0.7 s) ends before
    drives, nets = [], []
    for step0 in range(0, n_steps, period_steps):  # the last period: 50 steps
        size = min(period_steps, n_steps - step0)
        drive, net = fill(device, step0, size, dt)
        drives.append(drive[0])
        nets.append(net[0])
    drive = np.concatenate(drives)
    net = np.concatenate(nets)
    state = device.state[0]
    groups = _pulse_groups(drive)
    assert len(groups) == state[N_PULSES] == 92
    assert abs(net.sum()) * dt <= 1e-9 * drive.sum() * dt  # every pulse complete

    # Each pulse's amplitude, from the charge of its cathodic phase in the drive
    # trace, and from first principles: the ramped amplitude of its onset step.
    pw_s = pw_us * 1e-6
    charge_per_pulse = np.array([drive[g].sum() * dt for g in groups])  # mA * s
    amplitude = charge_per_pulse / pw_s  # mA
    onset = np.array([g[0] for g in groups])
    ramped = np.where(
        onset < 3500,
        np.minimum(3.0, (onset + 1) * ramp_per_step),
        np.maximum(0.5, 3.0 - (onset - 3499) * ramp_per_step),
    )
    np.testing.assert_allclose(amplitude, ramped, rtol=1e-9)
    ramping = (onset < 2999) | ((onset >= 3500) & (onset < 5999))
    assert ramping.sum() >= 60  # most pulses fall in a ramp

    # Biphasic: I^2 R over both phases of pw each.
    expected_j = np.sum((amplitude * 1e-3) ** 2 * dev.impedance_ohm * 2.0 * pw_s)
    assert state[ENERGY] == pytest.approx(expected_j, rel=1e-9)
    assert state[CHARGE] == pytest.approx(charge_per_pulse.sum() * 1e3, rel=1e-9)  # uC

    # What the accounting would give from the ramp target or from the amplitude at
    # the end of each pulse's period: far outside the tolerance above.
    target = np.where(onset < 3500, 3.0, 0.5)
    end_of_period = ((onset // period_steps + 1) * period_steps).astype(float)
    at_period_end = np.where(
        onset < 3500,
        np.minimum(3.0, end_of_period * ramp_per_step),
        np.maximum(0.5, 3.0 - (end_of_period - 3500) * ramp_per_step),
    )
    for wrong in (target, at_period_end):
        wrong_j = np.sum((wrong * 1e-3) ** 2 * dev.impedance_ohm * 2.0 * pw_s)
        assert abs(wrong_j - expected_j) > 1e-4 * expected_j
        assert abs(wrong.sum() * pw_s - charge_per_pulse.sum()) > 1e-4 * charge_per_pulse.sum()


# Bursts (step of the trigger, pulses, Hz) placed so that the last pulse of a burst
# ends in, or runs across, the last step of a 10 ms control period (100 steps of 0.1 ms).
BURSTS = [
    (146, 3, 130.0),  # last pulse at step 299.85: runs across the boundary at step 300
    (498, 1, 130.0),  # a single pulse ending in step 499, the last of its period
    (1250, 5, 130.0),  # 5 pulses over four periods
    (2040, 4, 100.0),  # pulses at steps 2040, 2140, 2240, 2340
    (2945, 2, 185.0),  # last pulse at step 2999.05: runs across the boundary at step 3000
]


def _burst_device(dev: Device) -> DeviceState:
    device = new_device(dev, queue_len=len(BURSTS) + 2)
    push(device, 1.5, 130.0, 60.0, 0, pulses=0)  # amplitude set, no pulses
    for step, pulses, freq in BURSTS:
        push(device, 1.5, freq, 60.0, step, pulses=pulses)
    return device


def _switches_by_step(drive: np.ndarray, net: np.ndarray, n_steps: int) -> np.ndarray:
    """Switches counted once steps ``0 .. e - 1`` are filled, for every ``e`` (index ``e``).

    From the schedule: each burst switches on at its trigger step and off at the
    step after the last one in which its last pulse still carries current.
    """
    active = (drive > 0) | (net != 0)
    count = np.zeros(n_steps + 1)
    for b, (step, _, _) in enumerate(BURSTS):
        end = BURSTS[b + 1][0] if b + 1 < len(BURSTS) else n_steps
        off = step + np.flatnonzero(active[step:end])[-1] + 1
        assert off < end  # the burst is over before the next one (or the end)
        count[step + 1 :] += 1.0
        count[off + 1 :] += 1.0
    return count


@pytest.mark.parametrize(
    "chunks",
    [[100], [1], [37, 100, 3, 250, 61], [50]],
    ids=["periods", "steps", "irregular", "half_periods"],
)
def test_each_burst_counts_one_switch_on_and_one_off_in_any_chunking(chunks):
    dev = Device(ramp_rate_ma_per_s=math.inf)
    dt, n_steps = 1e-4, 3500
    whole = _burst_device(dev)
    drive_w, net_w = fill(whole, 0, n_steps, dt)
    # The schedule as planned: every pulse delivered, from each trigger on.
    assert whole.state[0, N_PULSES] == sum(pulses for _, pulses, _ in BURSTS)
    onsets = _pulse_onsets(drive_w[0])
    for step, _, _ in BURSTS:
        assert step in onsets
    expected = _switches_by_step(drive_w[0], net_w[0], n_steps)
    assert expected[-1] == 2 * len(BURSTS) == whole.state[0, COL["n_switches"]]

    # Filled in chunks: after every chunk, the switches so far of the schedule.
    chunked = _burst_device(dev)
    step, k = 0, 0
    drives = []
    while step < n_steps:
        size = min(chunks[k % len(chunks)], n_steps - step)
        drives.append(fill(chunked, step, size, dt)[0][0])
        step += size
        k += 1
        assert chunked.state[0, COL["n_switches"]] == expected[step], f"after step {step}"
    np.testing.assert_array_equal(np.concatenate(drives), drive_w[0])
    np.testing.assert_array_equal(chunked.state, whole.state)


class _Bursts(Controller):
    """A burst of 3 pulses at 130 Hz after periods 1, 5, 9, ... (1.5 mA)."""

    name = "bursts_switch_test"

    def reset(self, n, rng):
        self.n_ = n
        self.k_ = 0

    def update(self, t, features):
        self.k_ += 1
        pulses = 3.0 if self.k_ % 4 == 1 else np.nan
        return {
            "amplitude_ma": np.full(self.n_, 1.5),
            "frequency_hz": np.full(self.n_, 130.0),
            "pulses": np.full(self.n_, pulses),
        }


def test_the_loop_counts_two_switches_per_burst():
    # A burst of 3 pulses at 130 Hz lasts 15.4 ms, across 10 ms control periods;
    # with a 4.6 ms latency each burst's last pulse runs across a period boundary.
    loop = ClosedLoop(
        STNGPe(n=1, dt_s=1e-4),
        SensingChain(rate_hz=1000.0),
        Device(ramp_rate_ma_per_s=math.inf),
        _Bursts(),
        control_period_s=0.01,
        latency_s=0.0046,
        seed=3,
        engine="python",
    )
    loop.reset()
    totals = loop.run(0.4, chunk_s=0.07)
    # Commands after periods 1, 5, ..., 37 (t = 0.01 .. 0.37 s): ten bursts, all
    # delivered within the 0.4 s.
    assert totals["n_pulses"][0] == 30
    assert totals["n_switches"][0] == 20


@pytest.mark.parametrize("chunks", [[4000], [1], [333, 17, 1000]], ids=["whole", "steps", "odd"])
def test_train_switches_count_the_continuous_train_and_deliveries_the_bursts(chunks):
    # Continuous from step 0, off at 1000, a burst of 3 pulses and a single
    # pulse while off, continuous again from 3000: the train goes on, off, on
    # (3 transitions from off), two deliveries; the device's raw transition
    # count also counts each burst on and off.
    dev = Device(ramp_rate_ma_per_s=math.inf)
    device = new_device(dev)
    push(device, 2.0, 130.0, 60.0, 0)
    push(device, 0.0, 130.0, 60.0, 1000)
    push(device, 2.0, 130.0, 60.0, 1500, pulses=3)
    push(device, 2.0, 130.0, 60.0, 2200, pulses=1)
    push(device, 2.0, 130.0, 60.0, 3000, pulses=math.inf)
    step = k = 0
    while step < 4000:
        size = min(chunks[k % len(chunks)], 4000 - step)
        fill(device, step, size, 1e-4)
        step, k = step + size, k + 1
    assert device.state[0, COL["n_train_switches"]] == 3
    assert device.state[0, COL["n_deliveries"]] == 2
    assert device.state[0, COL["n_switches"]] == 3 + 2 * 2
