"""Device modalities (TMS, tES, VNS): exact patterns and limits under any command sequence.

Every check reads the recorded drive (or net current) and recomputes what was
delivered with plain numpy: pulse onsets, trains, currents, charges; the
device's own counters are only compared with that arithmetic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from closedloop.device import Device, device_fill, device_totals, queue_push
from closedloop.device.tes import TESSettings
from closedloop.device.tms import TMSSettings, safe_train_s
from closedloop.device.vns import VNSSettings

NAN, INF = math.nan, math.inf


def run_device(device, commands, dt, steps_per_period, n_periods=None):
    """Drive ``device`` with one command per control period; return drive, net and totals.

    ``commands`` is a list of (amplitude, frequency, width, pulses); after the
    list runs out, empty commands (all NaN) follow up to ``n_periods``.
    """
    n_periods = len(commands) if n_periods is None else n_periods
    state = device.kernel_state(1, 4)
    drive = np.zeros((1, n_periods * steps_per_period))
    net = np.zeros_like(drive)
    d_buf = np.zeros((1, steps_per_period))
    n_buf = np.zeros((1, steps_per_period))
    for k in range(n_periods):
        cmd = commands[k] if k < len(commands) else (NAN, NAN, NAN, NAN)
        queue_push(state, tuple(np.array([float(v)]) for v in cmd), k * steps_per_period)
        device_fill(0, steps_per_period, k * steps_per_period, dt, state, d_buf, n_buf)
        drive[:, k * steps_per_period : (k + 1) * steps_per_period] = d_buf
        net[:, k * steps_per_period : (k + 1) * steps_per_period] = n_buf
    return drive[0], net[0], {k: v[0] for k, v in device_totals(state).items()}


def onsets(drive, dt):
    """Times (s) of the steps where a pulse's drive starts (rising from zero)."""
    on = drive > 0
    rising = np.flatnonzero(on & ~np.r_[False, on[:-1]])
    return rising * dt


def trains(times, gap_s=1.0):
    """Onset times split into runs whose successive gaps are below ``gap_s``."""
    if len(times) == 0:
        return []
    cuts = np.flatnonzero(np.diff(times) >= gap_s) + 1
    return np.split(times, cuts)


# -- TMS: exact patterns ---------------------------------------------------------------

DT = 2.5e-4  # s; a 1 ms TMS pulse spans four steps


def tms(**kw):
    return Device(modality="tms", tms=TMSSettings(**kw))


def test_itbs_is_triplets_at_50_hz_every_200_ms_2_s_on_8_s_off_600_pulses_in_190_s():
    device = tms(protocol="itbs", intensity_max_pct_rmt=100.0)
    drive, _, totals = run_device(device, [(80.0, NAN, NAN, INF)], DT, 80, n_periods=10_000)
    t = onsets(drive, DT)
    assert len(t) == 600  # Huang et al. 2005: 600 pulses
    bursts = t.reshape(200, 3)
    # 50 Hz triplets: 20 ms between the pulses of a burst.
    np.testing.assert_allclose(np.diff(bursts, axis=1), 0.02, atol=DT)
    starts = bursts[:, 0].reshape(20, 10)
    np.testing.assert_allclose(np.diff(starts, axis=1), 0.2, atol=DT)  # 5 Hz
    np.testing.assert_allclose(np.diff(starts[:, 0]), 10.0, atol=DT)  # 2 s on + 8 s off
    assert t[-1] < 192.0 and starts[-1, 0] == pytest.approx(190.0, abs=DT)
    # Each pulse: 80 % of the drive at RMT for 1 ms.
    per_pulse = drive.sum() * DT / 600
    assert per_pulse == pytest.approx(0.8 * 20.0 * 1e-3, rel=1e-9)
    assert totals["dose_pct_rmt"] == pytest.approx(600 * 80.0)
    assert not drive[int(192.0 / DT) :].any()  # the session ends itself


def test_ctbs_is_600_pulses_in_40_s_without_a_break():
    device = tms(protocol="ctbs", intensity_max_pct_rmt=100.0)
    drive, _, _ = run_device(device, [(70.0, NAN, NAN, INF)], DT, 80, n_periods=2_500)
    t = onsets(drive, DT)
    assert len(t) == 600
    starts = t.reshape(200, 3)[:, 0]
    np.testing.assert_allclose(np.diff(starts), 0.2, atol=DT)
    assert t[-1] == pytest.approx(39.84, abs=DT)


def test_paired_pulse_and_10_hz_rtms_trains():
    paired = tms(pattern="paired", paired_ipi_ms=3.0, protocol="rtms")
    drive, _, _ = run_device(paired, [(110.0, NAN, NAN, 1.0)], DT, 80, n_periods=10)
    np.testing.assert_allclose(onsets(drive, DT), [0.0, 0.003], atol=DT)
    rtms = tms(protocol="rtms", train_duration_s=4.0, inter_train_s=26.0, frequency_max_hz=10.0)
    drive, _, _ = run_device(rtms, [(100.0, 10.0, NAN, INF)], DT, 400, n_periods=700)
    runs = trains(onsets(drive, DT))
    assert [len(r) for r in runs[:2]] == [40, 40]  # 4 s at 10 Hz
    assert runs[1][0] - runs[0][-1] == pytest.approx(26.1, abs=DT)


def test_a_train_longer_than_the_safety_table_allows_is_refused():
    assert safe_train_s(20.0, 110.0) == pytest.approx(1.6)
    with pytest.raises(ValueError, match="device.tms.train_duration_s"):
        TMSSettings(protocol="rtms", frequency_max_hz=20.0, intensity_max_pct_rmt=110.0)
    with pytest.raises(ValueError, match="device.tms.intensity_max_pct_rmt"):
        TMSSettings(protocol="itbs", intensity_max_pct_rmt=130.0)


def test_triggered_pulses_cannot_chain_into_a_train_longer_than_the_limit():
    # A controller asking for one pulse every 100 ms (10 Hz, as rTMS) for 8 s:
    # the device delivers a 2 s train, then waits the 5 s inter-train interval
    # after its last pulse before the next train.
    device = tms(protocol="rtms", train_duration_s=2.0, inter_train_s=5.0)
    asks = [(100.0, 10.0, NAN, 1.0)] * 80  # one command per 100 ms period
    drive, _, totals = run_device(device, asks, DT, 400)
    runs = trains(onsets(drive, DT))
    assert [round(r[-1] - r[0], 6) for r in runs] == [2.0, 0.9]  # the second ends with the asks
    assert runs[1][0] - runs[0][-1] == pytest.approx(5.0, abs=DT)  # the inter-train interval
    # Every ask not delivered is accounted: withheld at its start, or refused.
    refused = totals["pulses_withheld"] + totals["n_triggers_rejected"]
    assert refused == 80 - sum(len(r) for r in runs)


# -- TMS: limits whatever a controller asks ------------------------------------------

value = st.sampled_from([NAN, INF, -INF, -5.0, 0.0, 1e300]) | st.floats(-50.0, 400.0)
pulses = st.sampled_from([NAN, INF, 0.0, -1.0, 1.0, 2.0, 5.0, 1e9])
command = st.tuples(value, value, value, pulses)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(command, min_size=1, max_size=60), st.sampled_from(["single", "burst"]))
def test_tms_limits_hold_under_any_commands(commands, pattern):
    cfg = dict(
        pattern=pattern,
        protocol="rtms",
        train_duration_s=2.0,
        inter_train_s=5.0,
        frequency_max_hz=10.0,
        intensity_max_pct_rmt=110.0,
        pulses_per_session=50,
        max_pulses_per_day=120,
        drive_at_rmt=20.0,
    )
    device = tms(**cfg)
    # Each command is held for 0.5 s: 60 commands span 30 s.
    spread = [c for c in commands for c in (c, *(4 * [(NAN, NAN, NAN, NAN)]))]
    drive, _, totals = run_device(device, spread, DT, 400, n_periods=len(spread) + 40)
    cap = 110.0 / 100.0 * 20.0
    # Pulse edges sit at float times up to 30 s: the overlap with a 0.1 ms step
    # carries about 1e-11 relative rounding, far below any real excess.
    assert drive.max() <= cap * (1 + 1e-9)
    t = onsets(drive, DT)
    assert len(t) <= 120  # pulses per day
    assert len(t) == totals["n_pulses"] or drive.max() == 0.0
    for run in trains(t):
        assert run[-1] - run[0] <= 2.0 + 0.04 + DT  # a train within its limit
    if len(t) > 1:
        assert np.diff(t).min() >= 0.02 - DT  # never faster than the pattern's 50 Hz


# -- tES ----------------------------------------------------------------------------


def test_tacs_current_is_the_programmed_sinusoid_after_the_ramp():
    device = Device(modality="tes", tes=TESSettings(ramp_rate_ma_per_s=2.0))
    dt = 1e-4
    _, net, totals = run_device(device, [(1.0, 10.0, NAN, NAN)], dt, 200, n_periods=200)
    t = (np.arange(net.size) + 0.5) * dt
    late = t > 1.0  # the 0.5 s ramp is over
    np.testing.assert_allclose(net[late], np.sin(2 * np.pi * 10.0 * t[late]), atol=2e-3)
    ramp = net[t < 0.5] / np.maximum(np.abs(np.sin(2 * np.pi * 10.0 * t[t < 0.5])), 1e-9)
    assert np.abs(ramp).max() <= 1.0 + 1e-9
    assert totals["charge_uc"] == pytest.approx(np.abs(net).sum() * dt * 1e3, rel=1e-9)


tes_value = st.sampled_from([NAN, INF, -INF, 0.0, 1e300, -1e300]) | st.floats(-10.0, 10.0)
tes_freq = st.sampled_from([NAN, INF, 0.0, -3.0]) | st.floats(0.0, 500.0)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(tes_value, tes_freq), min_size=1, max_size=40), st.booleans())
def test_tes_current_density_ramp_and_daily_time_hold_under_any_commands(commands, dc):
    cfg = TESSettings(
        max_current_ma=3.0,
        electrode_area_cm2=25.0,
        max_current_density_ma_per_cm2=0.1,  # 2.5 mA over 25 cm^2: the binding cap
        ramp_rate_ma_per_s=5.0,
        max_on_time_s_per_day=4.0,
    )
    device = Device(modality="tes", tes=cfg, day_length_s=1000.0)
    dt = 1e-3
    cmds = [(a, 0.0 if dc else f, NAN, NAN) for a, f in commands]
    cmds = [c for c in cmds for c in (c, *(4 * [(NAN, NAN, NAN, NAN)]))]
    _, net, _ = run_device(device, cmds, dt, 100, n_periods=len(cmds) + 20)
    assert np.abs(net).max() <= 2.5 * (1 + 1e-9)
    assert np.count_nonzero(net) * dt <= 4.0 + 2.5 / 5.0 + dt  # the day's time, then ramp-out
    if dc:  # direct current: the waveform itself moves no faster than the ramp
        assert np.abs(np.diff(np.r_[0.0, net])).max() <= 5.0 * dt * (1 + 1e-9)


# -- VNS ----------------------------------------------------------------------------


def test_cervical_vns_follows_its_duty_cycle():
    vns = VNSSettings(preset="cervical", on_s=2.0, off_s=3.0, ramp_rate_ma_per_s=1e4)
    device = Device(modality="vns", vns=vns)
    dt = 1e-4
    drive, _, totals = run_device(device, [(1.0, 20.0, 250.0, INF)], dt, 200, n_periods=500)
    t = onsets(drive, dt)
    assert len(t) == 2 * 40  # two on-phases of 2 s at 20 Hz
    assert ((t % 5.0) < 2.0).all()
    assert totals["energy_j"] == pytest.approx(
        (1e-3) ** 2 * 3000.0 * 2 * 250e-6 * 80, rel=1e-6
    )  # TEED (Koss et al. 2005): both phases of 80 pulses at 1 mA


vns_pulses = st.sampled_from([NAN, INF, 0.0])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(value, value, value, vns_pulses), min_size=1, max_size=30))
def test_vns_charge_amplitude_and_duty_cycle_hold_under_any_commands(commands):
    vns = VNSSettings(preset="cervical", on_s=1.0, off_s=2.0)
    device = Device(modality="vns", vns=vns)
    dt = 5e-5
    cmds = [c for c in commands for c in (c, *(2 * [(NAN, NAN, NAN, NAN)]))]
    drive, _, _ = run_device(device, cmds, dt, 400, n_periods=len(cmds) + 10)
    q_max = device.vns_charge_limit_uc
    assert drive.max() <= 3.5 * (1 + 1e-9)
    on = drive > 0
    labels = np.cumsum(on & ~np.r_[False, on[:-1]]) * on  # one label per cathodic phase
    charge_uc = np.bincount(labels, weights=drive * dt * 1e3)[1:]
    assert charge_uc.max(initial=0.0) <= q_max * (1 + 1e-9)
    t = onsets(drive, dt)
    assert ((t % 3.0) < 1.0 + dt).all()  # continuous pulses only in the on-phase


# -- the seam: config keys, command aliases, refusals ---------------------------------


@pytest.mark.parametrize(
    ("device", "controller", "path", "words"),
    [
        ({"modality": "tms", "tms": {"pattern": "triple"}}, {}, "device.tms.pattern", "one of"),
        ({"modality": "tms", "tms": {"bogus": 1}}, {}, "device.tms.bogus", "unknown key"),
        (
            {"modality": "tes", "tes": {"max_current_ma": 6.0}},
            {},
            "device.tes.max_current_ma",
            "4.0 mA",
        ),
        ({"tes": {}}, {}, "device.tes", "device.modality"),
        ({"modality": "ecT"}, {}, "device.modality", "one of"),
        (
            {"modality": "tms"},
            {"name": "open_loop", "params": {"amplitude_ma": 1.0}},
            "controller.params.amplitude_ma",
            "intensity_pct_rmt",
        ),
        ({"modality": "vns", "vns": {"preset": "femoral"}}, {}, "device.vns.preset", "one of"),
    ],
)
def test_bad_modality_settings_are_refused_with_their_key_path(device, controller, path, words):
    from closedloop.config.build import validate_config
    from closedloop.config.schema import ConfigError

    raw = {
        "name": "x",
        "duration_s": 1.0,
        "model": {"name": "wilson_cowan"},
        "device": device,
        "controller": controller or {"name": "tms_sessions"},
    }
    with pytest.raises(ConfigError) as info:
        validate_config(raw)
    text = str(info.value)
    assert f"{path}:" in text or f"{path} " in text, text
    assert words in text


def test_the_tms_device_takes_the_intensity_alias_and_refuses_a_current():
    to_slots = Device(modality="tms", tms=TMSSettings()).commands.to_slots
    assert to_slots({"intensity_pct_rmt": 80.0, "pulses": INF}) == {
        "amplitude_ma": 80.0,
        "pulses": INF,
    }
    with pytest.raises(ValueError, match="intensity_pct_rmt"):
        to_slots({"amplitude_ma": 1.0})


def test_every_modality_names_its_command_keys_and_only_tms_renames():
    from closedloop.device.config import MODALITY_COMMANDS
    from closedloop.device.layout import MODALITIES

    assert set(MODALITY_COMMANDS) == set(MODALITIES)
    command = {"amplitude_ma": 1.5, "frequency_hz": 130.0}
    for name, keys in MODALITY_COMMANDS.items():
        if name == "tms":
            assert keys.aliases == {"intensity_pct_rmt": "amplitude_ma"}
            assert keys.refused == ("amplitude_ma",)
        else:  # a current in mA, read as sent
            assert keys.aliases == {} and keys.refused == ()
            assert keys.to_slots(command) == command


def test_brian2_models_refuse_other_modalities_in_one_sentence():
    from closedloop.brian.registry import BRIAN_MODELS
    from closedloop.config.build import validate_config
    from closedloop.config.schema import ConfigError

    raw = {
        "name": "x",
        "duration_s": 1.0,
        "model": {"name": next(iter(BRIAN_MODELS))},
        "device": {"modality": "tes"},
    }
    with pytest.raises(ConfigError) as info:
        validate_config(raw)
    assert "device.modality: 'tes': Brian2 models take DBS only" in str(info.value)
