"""Triggered bursts: the device's lock-out and daily caps, symptom_triggered, events/triggers."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_device import COL, fill, new_device, push

from closedloop.config import ConfigError, load_config
from closedloop.controllers import SymptomTriggered
from closedloop.core.loop import ClosedLoop
from closedloop.device import Device
from closedloop.experiment import run_experiment
from closedloop.io.triggers import TriggerLog
from closedloop.models import WilsonCowan
from closedloop.sensing import SensingChain

DT = 1e-4


def _onsets(drive: np.ndarray) -> np.ndarray:
    on = drive > 0
    return np.flatnonzero(on & ~np.concatenate(([False], on[:-1])))


# ---------------------------------------------------------------------------
# The device


def test_lockout_refuses_bursts_until_it_has_passed_the_end_of_the_last_one():
    # Bursts of 5 pulses at 100 Hz (50 ms) with a 0.2 s lock-out: the burst at
    # 0.1 s locks triggers out until 0.1 + 0.05 + 0.2 = 0.35 s.
    dev = Device(ramp_rate_ma_per_s=math.inf, trigger_lockout_s=0.2)
    device = new_device(dev, queue_len=8)
    push(device, 1.0, 100.0, 60.0, 0, pulses=0)
    for step in (1000, 1200, 3000, 3500, 3600):  # 0.1, 0.12, 0.3, 0.35, 0.36 s
        push(device, 1.0, 100.0, 60.0, step, pulses=5)
    drive, _ = fill(device, 0, 8000, DT)
    onsets = _onsets(drive[0])
    # Delivered: the bursts at 0.1 s and 0.35 s, five pulses each, nothing else.
    assert device.state[0, COL["n_triggers"]] == 2
    assert device.state[0, COL["n_triggers_rejected"]] == 3
    assert device.state[0, COL["n_pulses"]] == 10
    assert onsets[0] == 1000 and onsets[5] == 3500 and len(onsets) == 10


def test_daily_trigger_cap_holds_each_day_and_resets_with_the_next():
    # Days of 1 s; at most 2 triggers a day; a burst asked for every 0.2 s.
    dev = Device(ramp_rate_ma_per_s=math.inf, day_length_s=1.0, max_triggers_per_day=2)
    device = new_device(dev, queue_len=32)
    push(device, 1.0, 100.0, 60.0, 0, pulses=0)
    for step in range(1000, 30000, 2000):
        push(device, 1.0, 100.0, 60.0, step, pulses=3)
    drive, _ = fill(device, 0, 30000, DT)
    days = _onsets(drive[0]) * DT // 1.0
    per_day = np.bincount(days.astype(int), minlength=3)
    np.testing.assert_array_equal(per_day, [6, 6, 6])  # 2 bursts of 3 pulses a day
    assert device.state[0, COL["n_triggers"]] == 6
    assert device.state[0, COL["n_triggers_rejected"]] == 15 - 6
    assert device.state[0, COL["day_index"]] == 2


def test_daily_charge_cap_withholds_continuous_pulses_until_the_next_day():
    # Continuous 2 mA, 100 us at 100 Hz: 0.2 uC a pulse; 5 uC a day of 1 s.
    dev = Device(ramp_rate_ma_per_s=math.inf, day_length_s=1.0, max_charge_uc_per_day=5.0)
    device = new_device(dev)
    push(device, 2.0, 100.0, 100.0, 0)
    drive, _ = fill(device, 0, 25000, DT)
    charge_by_day = np.add.reduceat(drive[0] * DT * 1e3, [0, 10000, 20000])
    np.testing.assert_allclose(charge_by_day, [5.0, 5.0, 5.0], rtol=1e-9)
    assert device.state[0, COL["n_pulses"]] == 3 * 25
    # The other pulse times of the 2.5 s are withheld (pulse times are sums of
    # 1/f, so one may fall either side of the end: 250 or 251 of them).
    assert device.state[0, COL["pulses_withheld"]] in (250 - 75, 251 - 75)
    # Time on counts the 25 pulse periods delivered each day, not the withheld ones.
    np.testing.assert_allclose(device.state[0, COL["time_on_s"]], 3 * 0.25, atol=2 * DT)


def test_daily_on_time_cap_ends_a_burst_and_refuses_the_next_trigger():
    # 0.295 s of stimulation a day (off the 10 ms pulse grid): a 0.5 s burst at
    # 100 Hz is cut after 30 pulses (0.3 s on), then a trigger is refused.
    dev = Device(ramp_rate_ma_per_s=math.inf, day_length_s=2.0, max_on_time_s_per_day=0.295)
    device = new_device(dev)
    push(device, 1.0, 100.0, 60.0, 0, pulses=0)
    push(device, 1.0, 100.0, 60.0, 1000, pulses=50)
    push(device, 1.0, 100.0, 60.0, 8000, pulses=5)
    push(device, 1.0, 100.0, 60.0, 21000, pulses=5)  # the next day
    fill(device, 0, 25000, DT)
    assert device.state[0, COL["n_pulses"]] == 30 + 5
    assert device.state[0, COL["n_triggers"]] == 2
    assert device.state[0, COL["n_triggers_rejected"]] == 1
    # 0.3 s, then the next day's burst: four pulse periods and a last pulse (120 us).
    np.testing.assert_allclose(device.state[0, COL["time_on_s"]], 0.34012, atol=2 * DT)


wild = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e300, 0.0, 1.0, 3.0, 40.0, 1e9]),
)
capped_devices = st.sampled_from(
    [
        Device(day_length_s=0.05, max_triggers_per_day=2, trigger_lockout_s=0.004),
        Device(ramp_rate_ma_per_s=math.inf, day_length_s=0.03, max_charge_uc_per_day=1.0),
        Device(ramp_rate_ma_per_s=1e4, day_length_s=0.02, max_on_time_s_per_day=0.004),
        Device(
            ramp_rate_ma_per_s=math.inf,
            day_length_s=0.04,
            max_triggers_per_day=3,
            max_charge_uc_per_day=2.0,
            max_on_time_s_per_day=0.01,
            trigger_lockout_s=0.002,
        ),
    ]
)


@settings(max_examples=80, deadline=None)
@given(
    dev=capped_devices,
    cmds=st.lists(st.tuples(wild, wild, wild, wild, st.integers(1, 300)), min_size=1, max_size=30),
    chunks=st.lists(st.integers(1, 700), min_size=1, max_size=6),
)
def test_daily_caps_hold_whatever_is_asked_in_any_chunking(dev, cmds, chunks):
    dt = 1e-4
    # Commands: amplitude, frequency, width, pulses (NaN, inf, huge, negative too).
    total = sum(hold for *_, hold in cmds)
    whole = new_device(dev, queue_len=len(cmds) + 1)
    chunked = new_device(dev, queue_len=len(cmds) + 1)
    step = 0
    for amp, freq, width, pulses, hold in cmds:
        push(whole, amp, freq, width, step, pulses=pulses)
        push(chunked, amp, freq, width, step, pulses=pulses)
        step += hold
    drive_w, _ = fill(whole, 0, total, dt)
    drives, done, k = [], 0, 0
    while done < total:
        size = min(chunks[k % len(chunks)], total - done)
        drives.append(fill(chunked, done, size, dt)[0][0])
        done += size
        k += 1
    # Chunk invariance, caps and lock-out included.
    np.testing.assert_array_equal(np.concatenate(drives), drive_w[0])
    np.testing.assert_array_equal(chunked.state, whole.state)
    state = whole.state[0]
    # Each day's charge (a pulse counts to the day it starts: one pulse may spill over).
    day = (np.arange(total) * dt // dev.day_length_s).astype(int)
    by_day = np.bincount(day, weights=drive_w[0] * dt * 1e3)
    assert np.all(by_day <= dev.max_charge_uc_per_day + dev.charge_limit_uc + 1e-9)
    assert state[COL["charge_today_uc"]] <= dev.max_charge_uc_per_day * (1 + 1e-12)
    assert state[COL["triggers_today"]] <= dev.max_triggers_per_day
    days_seen = state[COL["day_index"]] + 1
    assert state[COL["n_triggers"]] <= dev.max_triggers_per_day * days_seen
    assert np.all(np.isfinite(np.delete(state, COL["pulses_remaining"])))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("trigger_lockout_s", -1.0),
        ("trigger_lockout_s", math.inf),
        ("day_length_s", 0.0),
        ("max_triggers_per_day", -1.0),
        ("max_charge_uc_per_day", math.nan),
    ],
)
def test_bad_trigger_limits_are_refused_under_their_key_path(
    key, value, experiment_config, write_experiment
):
    config = experiment_config("wc_symptom_triggered")
    config["device"][key] = value
    with pytest.raises(ConfigError) as info:
        load_config(write_experiment(config))
    assert [p for p, _ in info.value.problems] == [f"device.{key}"], info.value.problems


# ---------------------------------------------------------------------------
# The controller and the loop


def _loop(engine: str, device: Device, n: int = 2) -> ClosedLoop:
    model = WilsonCowan(n=n, dt_s=DT, regime="bistable")
    controller = SymptomTriggered(
        threshold=0.08, min_duration_s=0.05, burst_s=0.2, amplitude_ma=3.0, frequency_hz=130.0
    )
    return ClosedLoop(
        model,
        SensingChain(rate_hz=1000.0, band_hz=(0.5, 20.0), noise_std=0.01),
        device,
        controller,
        control_period_s=0.01,
        latency_s=0.002,
        seed=5,
        engine=engine,
    )


def _run(loop: ClosedLoop, pieces: list[float]) -> tuple[dict, dict]:
    loop.reset()
    kept: dict[str, list] = {}

    def keep(t0, data):
        for key, value in data.items():
            kept.setdefault(key, []).append(value.copy())

    for piece in pieces:
        totals = loop.run(piece, chunk_s=0.37, on_chunk=keep)
    return {k: np.concatenate(v, axis=1) for k, v in kept.items()}, totals


def test_symptom_triggered_runs_resume_and_give_the_same_triggers_with_either_engine():
    device = Device(ramp_rate_ma_per_s=1000.0, trigger_lockout_s=0.5, day_length_s=1.0)
    device = Device(**{**device.to_dict(), "max_triggers_per_day": 2})
    whole, totals = _run(_loop("python", device), [3.0])
    resumed, totals_r = _run(_loop("python", device), [1.3, 1.7])
    compiled, totals_c = _run(_loop("compiled", device), [3.0])
    for key in whole:
        np.testing.assert_array_equal(resumed[key], whole[key], err_msg=key)
        np.testing.assert_array_equal(compiled[key], whole[key], err_msg=key)
    for key in totals:
        np.testing.assert_array_equal(totals_r[key], totals[key])
        np.testing.assert_array_equal(totals_c[key], totals[key])
    asked = np.isfinite(whole["trigger_biomarker"]).sum(axis=1)
    delivered = totals["n_triggers"]
    # The detector fired on the biomarker past its threshold; the caps held.
    assert np.all(whole["trigger_biomarker"][np.isfinite(whole["trigger_biomarker"])] > 0.08)
    assert np.all(delivered >= 1) and np.all(delivered <= 2 * 3)
    assert np.all(asked == delivered + totals["n_triggers_rejected"])
    # Each delivered burst: round(0.2 s * 130 Hz) = 26 pulses.
    np.testing.assert_array_equal(totals["n_pulses"], 26 * delivered)


def test_trigger_log_pairs_requests_with_the_device_outcomes_across_chunks():
    log = TriggerLog(2, 0.1)
    nan = math.nan
    bio = np.array([[nan, 5.0, nan, 6.0, nan, nan], [7.0, nan, nan, nan, nan, 8.0]])
    delivered = np.array([[0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]], dtype=float)
    rejected = np.array([[0, 0, 0, 0, 0, 1], [0, 1, 1, 1, 1, 1]], dtype=float)
    first = log.feed(bio[:, :3], delivered[:, :3], rejected[:, :3])
    second = log.feed(bio[:, 3:], delivered[:, 3:], rejected[:, 3:])
    last = log.finish()
    rows = {
        k: np.concatenate([first[k], second[k], last[k]]).tolist() for k in ("time_s", "delivered")
    }
    assert first["instance"].tolist() == [0, 1]
    np.testing.assert_allclose(rows["time_s"], [0.2, 0.1, 0.4, 0.6])
    assert rows["delivered"] == [1, 0, 0, -1]


def test_the_example_writes_each_trigger_and_the_daily_metrics(experiment_config, tmp_path):
    config = experiment_config("wc_symptom_triggered")
    config.update(duration_s=12.0)
    config["device"]["day_length_s"] = 6.0
    config["output"].update(figure=False, record_baseline=False)
    from closedloop.config import validate_config

    out = run_experiment(validate_config(config), tmp_path)
    with h5py.File(out.path) as f:
        events = {k: f["events/triggers"][k][:] for k in f["events/triggers"]}
        level = f["timeseries/feature_signal"][0]
        assert f["events/triggers/biomarker"].attrs["units"] == "1"
    m = out.metrics
    # Pinned to the seeded run: 3 bursts delivered, 5 detections refused.
    assert m["n_triggers_delivered"][0] == 3 and m["n_triggers_rejected"][0] == 5
    # Delivered bursts are a burst plus the lock-out apart (0.5 + 2 s; times are
    # the requests', which reach the device a fixed latency later).
    assert np.all(np.diff(events["time_s"][events["delivered"] == 1]) >= 2.5 - 1e-9)
    assert (events["delivered"] == 1).sum() == m["n_triggers_delivered"][0]
    assert (events["delivered"] == 0).sum() == m["n_triggers_rejected"][0]
    assert m["triggers_per_day"][0] == m["n_triggers_delivered"][0] / 2.0 <= 4
    assert m["charge_uc_per_day"][0] == pytest.approx(m["charge_uc"][0] / 2.0)
    # Each event's value is the level at the end of the period it names, past 0.2.
    k = np.round(events["time_s"] / 0.01).astype(int) - 1
    np.testing.assert_array_equal(events["biomarker"], level[k])
    assert np.all(events["biomarker"] > 0.2)
