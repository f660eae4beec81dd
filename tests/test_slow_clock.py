"""Slow clocks: slow processes beside the neural loop (closedloop.core.slow).

A toy process tracks the biomarker with a first-order filter, lowers the
Wilson-Cowan excitatory input ``P`` with it, draws noise from its own
seeds, takes a ``dose`` command and logs an event at every step: enough
to pin what every real one (drugs, symptom states) relies on.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from closedloop.config import ConfigError, validate_config
from closedloop.controllers.open_loop import OpenLoop
from closedloop.core.loop import ClosedLoop
from closedloop.core.slow import EpochSchedule, SlowProcess
from closedloop.device import Device
from closedloop.experiment import RunSpec, simulate_runs
from closedloop.models.wilson_cowan import WilsonCowan
from closedloop.sensing.chain import SensingChain

PERIOD_S = 0.01  # control period


class Tracker(SlowProcess):
    """x relaxes towards the step's mean biomarker (time constant ``tau_s``); P = P0 - gain x."""

    command_keys = ("dose",)

    def __init__(
        self,
        period_s: float = 0.1,
        tau_s: float = 0.5,
        gain: float = 2.0,
        param: str = "P",
        noise: float = 0.0,
        name: str = "track",
    ) -> None:
        self.name = name
        self.period_s = period_s
        self.tau_s = tau_s
        self.gain = gain
        self.param = param
        self.noise = noise

    def reset(self, n, seeds):
        self.x = np.zeros(n)
        self.dosed = np.zeros(n)
        self.rngs = [np.random.default_rng(s) for s in seeds]
        self.readouts = []
        self.events = []

    def advance(self, t_s, dt_s, readout):
        self.readouts.append((t_s, dt_s, {k: v.copy() for k, v in readout.items()}))
        target = readout["biomarker"] + self.noise * np.array([r.normal() for r in self.rngs])
        self.x = self.x + (1.0 - np.exp(-dt_s / self.tau_s)) * (target - self.x)
        self.events.append((t_s, self.x.copy()))

    def series(self):
        return {"x": ("signal", "tracked biomarker"), "dosed": ("mg", "doses taken so far")}

    def values(self):
        return {"x": self.x.copy(), "dosed": self.dosed.copy()}

    def modulation(self):
        return {self.param: 1.25 - self.gain * self.x}

    def command(self, t_s, command):
        self.dosed = self.dosed + np.nan_to_num(np.asarray(command["dose"], dtype=float))

    def event_tables(self):
        return {
            "step": (
                {"time_s": ("f8", "s"), "instance": ("i8", "1"), "x": ("f8", "signal")},
                "one row per instance and slow step",
            )
        }

    def drain_events(self):
        if not self.events:
            return {}
        t = np.concatenate([np.full(len(x), t) for t, x in self.events])
        x = np.concatenate([x for _, x in self.events])
        inst = np.concatenate([np.arange(len(x)) for _, x in self.events])
        self.events = []
        return {"step": {"time_s": t, "instance": inst, "x": x}}


def _loop(slow=(), epochs=None, n=3, seed=1, amplitude_ma=0.0, sigma_e=(0.1, 0.3)):
    model = WilsonCowan(n=n, params={"sigma_E": list(np.linspace(*sigma_e, n))})
    controller = OpenLoop(amplitude_ma=amplitude_ma) if amplitude_ma else OpenLoop()
    return ClosedLoop(
        model,
        SensingChain(),
        Device(),
        controller,
        control_period_s=PERIOD_S,
        seed=seed,
        slow=slow,
        epochs=epochs,
    )


def _run(loop, durations, chunk_s):
    loop.reset()
    out: dict[str, list] = {}

    def keep(t0, data):
        for k, v in data.items():
            out.setdefault(k, []).append(v.copy())

    for d in durations:
        loop.run(d, chunk_s=chunk_s, on_chunk=keep)
    return {k: np.concatenate(v, axis=1) for k, v in out.items()}


def test_slow_states_are_chunk_invariant_and_resumable():
    """Slow steps fall on the same periods however the run is chunked or split."""
    runs = [_run(_loop([Tracker(noise=0.01)]), [2.0], chunk_s) for chunk_s in (0.05, 0.3, 1.0)]
    runs.append(_run(_loop([Tracker(noise=0.01)]), [0.73, 1.27], 0.3))
    for other in runs[1:]:
        assert other.keys() == runs[0].keys()
        for key in runs[0]:
            np.testing.assert_array_equal(other[key], runs[0][key], err_msg=key)
    # Sample 0 is the state at t = 0, then one per 0.1 s step.
    assert runs[0]["track_x"].shape == (3, 21)
    np.testing.assert_array_equal(runs[0]["track_x"][:, 0], 0.0)
    assert np.all(runs[0]["track_x"][:, -1] != 0.0)


def test_readout_is_the_mean_over_each_step_and_charge_delivered():
    """The readout is the mean of every per-period series over the step; charge is per step."""
    proc = Tracker(period_s=0.1)
    loop = _loop([proc], amplitude_ma=2.0)
    data = _run(loop, [1.0], 0.25)
    assert len(proc.readouts) == 10
    per_step = 10  # control periods per slow step
    for k, (t_s, dt_s, readout) in enumerate(proc.readouts):
        assert t_s == pytest.approx((k + 1) * 0.1) and dt_s == 0.1
        window = slice(k * per_step, (k + 1) * per_step)
        for key in ("biomarker", "amplitude", "frequency"):
            np.testing.assert_allclose(readout[key], data[key][:, window].mean(axis=1), rtol=1e-12)
    total = sum(r["delivered_charge_uc"] for _, _, r in proc.readouts)
    np.testing.assert_allclose(total, loop.totals()["charge_uc"], rtol=1e-12)
    assert np.all(proc.readouts[-1][2]["delivered_charge_uc"] > 0)


def test_modulation_takes_effect_after_the_step_that_set_it():
    """Until the first slow step the model runs as without the process; after it, with P changed."""
    plain = _run(_loop(), [0.5], 0.1)
    slow = _run(_loop([Tracker(period_s=0.2, gain=50.0)]), [0.5], 0.1)
    first = int(round(0.2 / 1e-3))  # sensing samples before the first slow step ends
    np.testing.assert_array_equal(slow["lfp"][:, :first], plain["lfp"][:, :first])
    assert not np.array_equal(slow["lfp"][:, first:], plain["lfp"][:, first:])
    loop = _loop([Tracker(period_s=0.2, gain=50.0)])
    _run(loop, [0.4], 0.1)
    np.testing.assert_array_equal(loop.model.record["P"], 1.25 - 50.0 * loop.slow[0].x)


def test_commands_reach_the_process_and_reset_repeats_seeds():
    proc = Tracker(noise=0.05)
    loop = _loop([proc])
    loop.reset()
    loop.step({"dose": np.array([1.0, 0.0, 2.5])})
    loop.step({"amplitude_ma": 1.0})  # no dose key: nothing taken
    np.testing.assert_array_equal(proc.dosed, [1.0, 0.0, 2.5])
    first = _run(loop, [0.5], 0.5)["track_x"]
    again = _run(loop, [0.5], 0.5)["track_x"]
    np.testing.assert_array_equal(first, again)
    other_seed = _run(_loop([Tracker(noise=0.05)], seed=2), [0.5], 0.5)["track_x"]
    assert not np.array_equal(first, other_seed)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"slow": [Tracker(param="tau_E")]}, "does not declare modulatable"),
        ({"slow": [Tracker(period_s=0.015)]}, "whole, positive number of control periods"),
        ({"slow": [Tracker(), Tracker()]}, "both named 'track'"),
        ({"slow": [Tracker(), Tracker(name="other")]}, "both modulate model parameter 'P'"),
        ({"slow": [Tracker(period_s=0.2)], "epochs": EpochSchedule(0.3, 1.0)}, "epoch_s"),
        ({"slow": [Tracker(gain=np.nan)]}, "model parameter 'P' must be finite"),
    ],
)
def test_bad_slow_processes_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        loop = _loop(**kwargs)
        loop.reset()
        loop.run(0.3, chunk_s=0.1)


def test_epoch_schedule_covers_slow_time_and_its_error_is_small():
    """Neural epochs of 0.5 s every 5 s: 10x less neural time, the slow state close to full.

    The fast dynamics (a noise-free 20 Hz limit cycle) are stationary over
    a gap, which is when holding an epoch's readout is accurate. The start's
    transient (sensing filters settling) is held ten times as long with the
    schedule; with a slow time constant of 5 s it has washed out by 60 s.
    """
    tau_s = 5.0
    quiet = {"sigma_e": (0.0, 0.0)}
    full = _run(_loop([Tracker(period_s=0.5, tau_s=tau_s, gain=0.0)], **quiet), [60.0], 5.0)
    same = _run(
        _loop([Tracker(period_s=0.5, tau_s=tau_s, gain=0.0)], EpochSchedule(0.5, 0.5), **quiet),
        [60.0],
        5.0,
    )
    np.testing.assert_array_equal(same["track_x"], full["track_x"])
    loop = _loop([Tracker(period_s=0.5, tau_s=tau_s, gain=0.0)], EpochSchedule(0.5, 5.0), **quiet)
    sep = _run(loop, [60.0], 5.0)
    assert loop.time_s == pytest.approx(6.0) and loop.slow_time_s == pytest.approx(60.0)
    assert sep["track_x"].shape == full["track_x"].shape == (3, 121)
    assert sep["lfp"].shape[1] == full["lfp"].shape[1] // 10
    # The tracked mean biomarker converges to the same level either way.
    err = np.abs(sep["track_x"][:, -1] - full["track_x"][:, -1]) / np.abs(full["track_x"][:, -1])
    assert np.all(err < 0.01), err  # measured 0.3 %


def test_run_file_records_slow_series_events_and_baseline_sees_the_modulation(tmp_path):
    exp = validate_config(
        {
            "name": "slow",
            "duration_s": 1.0,
            "warmup_s": 0.0,
            "model": {"name": "wilson_cowan"},
            "control": {"period_s": PERIOD_S},
            "output": {"figure": False, "chunk_s": 0.25},
        }
    )
    proc = Tracker(period_s=0.1, gain=500.0)
    loop = ClosedLoop(
        WilsonCowan(n=1),
        SensingChain(),
        Device(),
        OpenLoop(amplitude_ma=0.0),
        control_period_s=PERIOD_S,
        slow=[proc],
    )
    path = tmp_path / "slow.h5"
    simulate_runs(loop, [RunSpec(exp, path)])
    with h5py.File(path) as f:
        x = f["timeseries/track_x"]
        assert x.shape == (1, 11) and x.attrs["sampling_rate_hz"] == pytest.approx(10.0)
        assert x.attrs["units"] == "signal"
        np.testing.assert_array_equal(x[0, -1], proc.x[0])
        events = f["events/track_step"]
        assert events["time_s"].shape == (10,) and events["time_s"].attrs["units"] == "s"
        np.testing.assert_allclose(events["time_s"][:], np.arange(1, 11) * 0.1)
        np.testing.assert_array_equal(events["instance"][:], 0)
        # The no-stimulation baseline ran with the same modulated P: with no
        # stimulation the two are the same simulation.
        # (up to the rounding of averaging over sensing intervals two ways).
        base = f["timeseries/lfp_baseline"][:]
        np.testing.assert_allclose(base, f["timeseries/lfp"][:], rtol=1e-12, atol=1e-15)
    # Without the modulation the baseline would differ: P did change.
    plain = WilsonCowan(n=1)
    plain.reset(loop.model_instance_seeds)
    unmodulated = plain.advance(10_000).reshape(1, 1000, 10).mean(axis=2)
    assert np.max(np.abs(unmodulated - base)) > 1e-6


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"slow": {"epoch_s": 1.0, "every_s": 10.0}}, "slow"),
        ({"slow": {"epoch_s": 2.0, "every_s": 1.0}}, "slow"),
        ({"slow": {"epoch_s": 1.0}}, "slow.every_s"),
    ],
)
def test_slow_config_errors_name_the_key(extra, key):
    raw = {"name": "x", "duration_s": 10.0, "model": {"name": "wilson_cowan"}, **extra}
    with pytest.raises(ConfigError) as info:
        validate_config(raw)
    assert key in str(info.value)
