"""State kicks: the controller's logic, the mechanism, and the closed loop on bistable WC."""

import numpy as np
import pytest

from closedloop.cli.main import main
from closedloop.controllers import BUILTIN_CONTROLLERS, OpenLoop, StateKick
from closedloop.core.loop import ClosedLoop
from closedloop.device import Device
from closedloop.io import load_run
from closedloop.models import WilsonCowan
from closedloop.sensing.chain import SensingChain
from closedloop.testing.controller import check_controller

DT = 1e-4
LOW_E, HIGH_E = 0.035, 0.364  # the bistable regime's stable states (tests/test_wilson_cowan.py)


def test_registered_and_conforms():
    assert BUILTIN_CONTROLLERS["state_kick"] is StateKick
    check_controller(StateKick)
    check_controller(StateKick(feature="biomarker", dwell_s=0.0, refractory_s=0.0))


PERIOD_S = 0.01


def test_dwell_kick_duration_and_refractory_per_instance(feed_controller):
    c = StateKick(threshold=0.2, dwell_s=0.02, kick_duration_s=0.03, refractory_s=0.05)
    high, low = 0.3, 0.0
    values = np.array(
        [
            # instance 0: always high; 1: a 10 ms blip, too short; 2: high from period 4
            [high, high, low],
            [high, low, low],
            [high, low, low],
            [high, low, high],
            [high, low, high],
            [high, low, high],
        ]
        + [[high, low, high]] * 8
    )
    amp = feed_controller(c, {"signal": values}, period_s=PERIOD_S)
    # Instance 0: kicked at the 2nd period (20 ms above) for 3 periods, then
    # refractory for 50 ms after the kick ends (t = 0.05 s), kicked again at 0.10 s.
    np.testing.assert_array_equal(amp[:, 0], [0, 3, 3, 3, 0, 0, 0, 0, 0, 3, 3, 3, 0, 0])
    assert not amp[:, 1].any()
    # Instance 2 is on its own clock: above from t = 0.04 s, kicked at 0.05 s
    # and again once refractory, at 0.13 s.
    np.testing.assert_array_equal(amp[:, 2], [0, 0, 0, 0, 3, 3, 3, 0, 0, 0, 0, 0, 3, 3])
    np.testing.assert_array_equal(c.n_kicks_, [2, 0, 2])


def test_nan_counts_as_below_and_start_s_holds_kicks_back(feed_controller):
    c = StateKick(threshold=0.2, dwell_s=0.0, kick_duration_s=0.01, start_s=0.05)
    amp = feed_controller(c, {"signal": [[np.nan, 0.3]] * 8}, period_s=PERIOD_S)
    assert not amp[:, 0].any()
    np.testing.assert_array_equal(amp[:, 1], [0, 0, 0, 0, 3, 0, 0, 0])  # first at t = 0.05 s


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"feature": "beta"}, "feature"),
        ({"dwell_s": -0.01}, "dwell_s"),
        ({"kick_duration_s": 0.0}, "kick_duration_s"),
        ({"amplitude_ma": float("nan")}, "amplitude_ma"),
        ({"refractory_s": -1.0}, "refractory_s"),
    ],
)
def test_bad_parameters_are_refused_with_their_name(params, message):
    with pytest.raises(ValueError, match=message):
        StateKick(**params).reset(2, np.random.default_rng(0))


def test_a_burst_ends_the_high_state_through_inhibition_and_spares_the_low_one(pulse_drive):
    # Deterministic: the two states and a 50 ms, 3 mA, 130 Hz burst. Row 2
    # recruits only E (g_I = 0): then the burst cannot end the high state,
    # which is why the model lets stimulation recruit I.
    model = WilsonCowan(
        dt_s=DT,
        n=3,
        regime="bistable",
        params={"sigma_E": 0.0, "g_I": [200.0, 200.0, 0.0]},
    )
    model.reset(0)
    model.state["x"][:, :2] = [[0.5, 0.2], [0.0, 0.0], [0.5, 0.2]]
    model.advance(3000)  # settle in each state
    assert model.state["x"][:, 0] == pytest.approx([HIGH_E, LOW_E, HIGH_E], abs=1e-3)
    # 3 mA, 100 us pulses at 130 Hz from 50 ms for 50 ms.
    onsets = np.arange(0.05, 0.1 - 1e-12, 1.0 / 130.0)
    drive = np.tile(pulse_drive(5000, DT, onsets, 3.0, 100e-6), (3, 1))
    e = model.advance(5000, drive)
    assert e[:, -1] == pytest.approx([LOW_E, LOW_E, HIGH_E], abs=1e-3)


def test_closed_loop_returns_instances_to_low_state_and_cuts_time_in_high_state():
    n = 8
    runs = {}
    for label, controller in (
        ("kick", StateKick(threshold=0.2, dwell_s=0.02, kick_duration_s=0.05)),
        ("none", OpenLoop(amplitude_ma=0.0)),
    ):
        loop = ClosedLoop(
            WilsonCowan(dt_s=DT, n=n, regime="bistable"),
            SensingChain(band_hz=(0.5, 20.0), features=("signal",)),
            Device(ramp_rate_ma_per_s=1000.0),
            controller,
            control_period_s=0.01,
            seed=3,  # the same model noise for both
        )
        loop.reset()
        loop.model.state["x"][:, :2] = (HIGH_E, 0.175)  # every instance starts pathological
        chunks: list[np.ndarray] = []

        def keep(t0, data, chunks=chunks):
            chunks.append(data["lfp"].copy())

        loop.run(6.0, on_chunk=keep)
        runs[label] = np.hstack(chunks)  # E at 1 kHz
    # Kicked back to the low state within 100 ms (20 ms dwell + 50 ms kick + settling).
    assert np.all(runs["kick"][:, 100] < 0.12)
    assert np.all(runs["none"][:, 100] > 0.25)
    frac = {k: np.mean(v > 0.2) for k, v in runs.items()}
    assert frac["none"] > 0.4
    assert frac["kick"] < 0.1 * frac["none"], frac


def test_experiment_runs_and_shows_kicks(tmp_path, experiment_path):
    code = main(
        [
            "run",
            str(experiment_path("wc_bistable_kick")),
            "--out",
            str(tmp_path),
            "--set",
            "duration_s=6.0",
            "--set",
            "controller.params.start_s=2.0",
        ]
    )
    assert code == 0
    run = load_run(tmp_path / "wc_bistable_kick.h5")
    assert run.status == "complete"
    assert (tmp_path / "wc_bistable_kick.png").stat().st_size > 10_000
    amp = run.timeseries["amplitude"][0]
    on = np.flatnonzero(amp > 0)
    assert on.size and on[0] >= 200  # kicks, none before start_s = 2 s (200 periods)
    assert run.metrics["time_on_fraction"][0] < 0.1
