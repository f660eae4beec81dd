"""The closed loop inside Brian2: controllers, sensing, device, recording, your own network."""

import warnings

import numpy as np
import pytest
from brian2 import mV
from scipy import signal

from closedloop.brian import runtime
from closedloop.brian.config import is_brian_experiment, loop_from_config
from closedloop.brian.loop import BrianLoop
from closedloop.brian.network import ExternalNetwork
from closedloop.brian.runtime import brian_cache_dir, select_target
from closedloop.controllers import PID, Controller, DualThreshold, OnOff, OpenLoop
from closedloop.device import Device
from closedloop.models.brian_stn_gpe import BrianSTNGPe
from closedloop.sensing.chain import SensingChain

pytestmark = pytest.mark.brian

DT = 1e-4
SMALL = {"N_STN": 50, "N_GPe": 50, "K_SG": 10, "K_GS": 10, "K_GG": 10}


def _loop(controller, *, n=1, seed=1, params=None, **kwargs):
    model = BrianSTNGPe(dt_s=DT, n=n, params=params)
    return BrianLoop(
        model,
        kwargs.pop("sensing", SensingChain()),
        kwargs.pop("device", Device()),
        controller,
        control_period_s=kwargs.pop("control_period_s", 0.02),
        seed=seed,
        **kwargs,
    )


def _collect(loop, duration_s, chunk_s=1.0, warm_up_s=0.2, **kwargs):
    loop.reset()
    loop.warm_up(warm_up_s)
    chunks = []

    def on_chunk(t0, data):
        chunks.append((t0, {k: v.copy() for k, v in data.items()}))

    totals = loop.run(duration_s, chunk_s=chunk_s, on_chunk=on_chunk, **kwargs)
    data = {k: np.hstack([c[1][k] for c in chunks]) for k in chunks[0][1]}
    return data, totals, [c[0] for c in chunks]


def _band_power(y, band=(13, 30)):
    f, p = signal.welch(y, fs=1000.0, nperseg=500)
    sel = (f >= band[0]) & (f <= band[1])
    return p[..., sel].sum(axis=-1)


def test_adaptive_dbs_reduces_beta_for_less_energy_than_continuous(teed_bounds_from_series):
    controller = DualThreshold(
        lower_threshold=40.0,
        upper_threshold=60.0,
        ramp_up_ma_per_s=5.0,
        ramp_down_ma_per_s=2.0,
        max_amplitude_ma=2.5,
    )
    loop = _loop(controller, baseline=True)
    data, totals, _ = _collect(loop, 3.0)
    beta = _band_power(data["lfp"][:, 500:])
    base = _band_power(data["lfp_baseline"][:, 500:])
    assert 1 - beta[0] / base[0] > 0.3
    # The energy by the device's formula from what the record says it
    # delivered; less than continuous DBS at the maximum amplitude.
    lower, upper = teed_bounds_from_series(data, loop.device.impedance_ohm)
    assert lower[0] <= totals["energy_j"][0] <= upper[0], (lower, totals["energy_j"], upper)
    continuous = loop.device.teed_j(2.5, 130.0, 60.0, 3.0)
    assert totals["energy_j"][0] < continuous
    # What was delivered never leaves the device's limits.
    assert data["amplitude"].max() <= 2.5 + 1e-12
    assert np.all(data["frequency"] == 130.0)
    assert data["lfp"].shape == (1, 3000) and data["biomarker"].shape == (1, 150)


def test_chunk_size_does_not_change_a_run_and_seeds_repeat_exactly():
    def run(seed, chunk_s):
        loop = _loop(OnOff(threshold=50.0, amplitude_ma=2.0), n=2, seed=seed, params=SMALL)
        data, _, starts = _collect(loop, 1.0, chunk_s=chunk_s)
        return data, starts

    a, starts_a = run(3, 1.0)
    b, starts_b = run(3, 0.24)  # 12 periods per chunk: chunks end mid-way
    assert starts_a == [0.0] and starts_b[:3] == pytest.approx([0.0, 0.24, 0.48])
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    c, _ = run(4, 1.0)
    assert not np.array_equal(a["lfp"], c["lfp"])


def test_python_and_compiled_controller_engines_give_the_same_run():
    runs = {}
    for engine in ("python", "compiled"):
        loop = _loop(
            PID(setpoint=10.0, kp=0.02, ki=0.5, max_amplitude_ma=3.0),
            n=2,
            params=SMALL,
            engine=engine,
            control_period_s=0.005,
        )
        runs[engine], _, _ = _collect(loop, 0.6)
    for key in ("amplitude", "biomarker", "lfp"):
        np.testing.assert_allclose(runs["python"][key], runs["compiled"][key], rtol=1e-9)
    assert runs["python"]["amplitude"].max() > 0.1


def test_rates_and_spikes_are_streamed_chunk_by_chunk():
    loop = _loop(
        OpenLoop(amplitude_ma=2.0), n=2, params=SMALL, record_rates=True, record_spikes=["stn"]
    )
    spikes = []
    data, _, starts = _collect(loop, 1.0, chunk_s=0.2, on_spikes=lambda *args: spikes.append(args))
    assert len(spikes) == len(starts) == 5
    for (name, t, inst, neuron), t0 in zip(spikes, starts, strict=True):
        assert name == "stn"
        assert np.all((t >= t0 - 1e-9) & (t < t0 + 0.2 + 1e-9))
        assert set(np.unique(inst)) <= {0, 1} and neuron.max() < 50
    # The monitor is emptied at every chunk: memory does not grow with the run.
    mon = loop.spike_monitors["stn"]
    assert len(mon.i[:]) < sum(len(s[1]) for s in spikes) / 2
    # The population rate is the spike count per neuron per second.
    counts = np.bincount(np.concatenate([s[2] for s in spikes]), minlength=2)
    np.testing.assert_allclose(data["rate_stn"].mean(axis=1), counts / 50 / 1.0, rtol=0.02)
    # Half the STN neurons follow the 130 Hz pulses: far above the unstimulated rate.
    assert data["rate_stn"].mean() > 50


def test_commands_take_effect_after_the_latency():
    loop = _loop(
        OpenLoop(amplitude_ma=2.0),
        params=SMALL,
        device=Device(ramp_rate_ma_per_s=1e9),
        control_period_s=0.01,
        latency_s=0.0,
    )
    data, totals, _ = _collect(loop, 0.1, warm_up_s=0.0)
    # The first command, at the end of the first period, acts from the second on.
    assert data["amplitude"][0, 0] == 0.0
    assert np.all(data["amplitude"][0, 1:] == 2.0)
    assert totals["n_pulses"][0] == pytest.approx(0.09 * 130, abs=1)


# -- bring your own network ----------------------------------------------------------------
def build_user_network(n_instances=1, n_exc=40, n_inh=10, drive_na=0.6):
    """A small E-I network, written the way a Brian2 user writes one."""
    from brian2 import NeuronGroup, Synapses, ms, mV, nA

    eqs = """
    dv/dt = (-65*mV - v) / (10*ms)
            + (I_drive + I_stim - I_inh) / (100*pfarad) : volt (unless refractory)
    dI_inh/dt = -I_inh / (4*ms) : amp
    dI_exc/dt = -I_exc / (2*ms) : amp
    I_stim : amp
    I_drive : amp (constant)
    """
    exc = NeuronGroup(
        n_instances * n_exc,
        eqs.replace("- I_inh", "- I_inh + I_exc"),
        threshold="v > -50*mV",
        reset="v = -65*mV",
        refractory=2 * ms,
        method="euler",
        name="exc",
    )
    inh = NeuronGroup(
        n_instances * n_inh,
        eqs.replace("- I_inh", "- I_inh + I_exc"),
        threshold="v > -50*mV",
        reset="v = -65*mV",
        refractory=1 * ms,
        method="euler",
        name="inh",
    )
    exc.I_drive = drive_na * nA
    exc.v = -60 * mV
    rng = np.random.default_rng(0)
    ei = Synapses(exc, inh, on_pre="I_exc_post += 0.05*nA", delay=1 * ms, name="ei")
    ie = Synapses(inh, exc, on_pre="I_inh_post += 0.1*nA", delay=1 * ms, name="ie")
    for syn, n_pre, n_post in ((ei, n_exc, n_inh), (ie, n_inh, n_exc)):
        pre, post = [], []
        for b in range(n_instances):
            k = max(1, n_pre // 4)
            pre.append(rng.integers(0, n_pre, size=(n_post, k)).ravel() + b * n_pre)
            post.append(np.repeat(np.arange(n_post), k) + b * n_post)
        syn.connect(i=np.concatenate(pre), j=np.concatenate(post))
    return {"objects": [exc, inh, ei, ie], "namespace": {}}


STIM = {"group": "inh", "variable": "I_stim", "gain": 40.0, "gain_unit": "nA", "fraction": 0.5}
SENSE = {"group": "exc", "reduce": "mean", "variable": "v", "unit": "mV"}


#: StateMonitors of the E cells' v that build_monitored_user_network made, newest last.
V_MONITORS: list = []


def build_monitored_user_network(n_instances=1, **params):
    """:func:`build_user_network` with every E cell's v recorded at every step."""
    from brian2 import StateMonitor

    net = build_user_network(n_instances, **params)
    monitor = StateMonitor(net["objects"][0], "v", record=True, name="v_monitor")
    V_MONITORS.append(monitor)
    net["objects"].append(monitor)
    return net


@pytest.mark.slow
@pytest.mark.parametrize(
    "builder", [build_monitored_user_network, "test_brian_loop.build_monitored_user_network"]
)
def test_user_network_runs_under_any_controller(builder):
    V_MONITORS.clear()
    model = ExternalNetwork(builder, stimulate=STIM, sense=SENSE, dt_s=DT, n=2)
    loop = BrianLoop(
        model,
        SensingChain(band_hz=(30.0, 80.0)),
        Device(),
        PID(setpoint=0.5, kp=0.5, ki=5.0, max_amplitude_ma=2.0),
        control_period_s=0.001,
        seed=2,
    )
    data, totals, _ = _collect(loop, 0.3)
    assert loop.model.signal_units == "mV"
    # The sensed signal is what SENSE asks for, recomputed from the recorded
    # v: each 1 ms sample the mean over its 10 steps of the mean v of the
    # instance's 40 E cells (the monitor also holds the warm-up).
    v_mv = np.asarray(V_MONITORS[-1].v[:] / mV)[:, -data["lfp"].shape[1] * 10 :]
    expected = v_mv.reshape(2, 40, -1, 10).mean(axis=(1, 3))
    np.testing.assert_allclose(data["lfp"], expected, rtol=0, atol=1e-9)
    assert data["amplitude"].max() > 0 and totals["n_pulses"].min() > 0


@pytest.mark.slow
def test_user_network_rate_sensor_counts_the_spikes_stimulation_evokes():
    rates = []
    for amplitude in (0.0, 2.5):
        model = ExternalNetwork(
            build_user_network,
            stimulate={**STIM, "group": "exc", "fraction": 1.0},
            sense={"group": "exc", "reduce": "rate"},
            dt_s=DT,
            params={"drive_na": 0.12},  # below rheobase: silent unless stimulated
        )
        loop = BrianLoop(
            model,
            SensingChain(),
            Device(),
            OpenLoop(amplitude_ma=amplitude),
            control_period_s=0.01,
            seed=0,
        )
        data, _, _ = _collect(loop, 0.5)
        rates.append(data["lfp"][:, 100:].mean())
    assert model.signal_units == "spikes/s"
    assert rates[0] == 0.0
    # Every E cell follows the 130 Hz pulses.
    assert 120 < rates[1] <= 131


@pytest.mark.parametrize(
    ("stimulate", "sense", "message"),
    [
        ({**STIM, "group": "pyramidal"}, SENSE, "no NeuronGroup named 'pyramidal'"),
        ({**STIM, "variable": "I_dbs"}, SENSE, "'inh' has no variable 'I_dbs'"),
        ({**STIM, "gain_unit": "mV"}, SENSE, "units of amp"),
        ({**STIM, "variable": "I_inh"}, SENSE, "state variable or subexpression"),
        (STIM, {**SENSE, "unit": "nA"}, "'v' of NeuronGroup 'exc' has units of volt"),
        (STIM, {**SENSE, "variable": "w"}, "'exc' has no variable 'w'"),
    ],
)
def test_user_network_mistakes_are_named_before_the_run(stimulate, sense, message):
    model = ExternalNetwork(build_user_network, stimulate=stimulate, sense=sense, dt_s=DT)
    loop = BrianLoop(model, SensingChain(), Device(), OpenLoop(), control_period_s=0.01)
    with pytest.raises(ValueError, match=message):
        loop.reset()


def test_objects_whose_dt_does_not_divide_the_sensing_interval_are_named():
    def build(n_instances=1):
        from brian2 import StateMonitor, ms

        net = build_user_network(n_instances)
        exc = net["objects"][0]
        net["objects"].append(StateMonitor(exc, "v", record=0, dt=0.3 * ms, name="slow_mon"))
        return net

    model = ExternalNetwork(build, stimulate={**STIM, "group": "exc"}, sense=SENSE, dt_s=DT)
    loop = BrianLoop(model, SensingChain(), Device(), OpenLoop(), control_period_s=0.01)
    with pytest.raises(ValueError, match="'slow_mon'.*0.0003 s.*does not divide"):
        loop.reset()


# -- targets, caches, bad configurations -----------------------------------------------
def test_numpy_fallback_is_announced_and_explicit_cython_refused(monkeypatch):
    monkeypatch.setattr(runtime, "compiler_works", lambda: False)
    with pytest.warns(RuntimeWarning, match="numpy target"):
        assert select_target("auto") == "numpy"
    with pytest.raises(ValueError, match="needs a working C compiler"):
        select_target("cython")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert select_target("numpy") == "numpy"


def test_brian_cache_directory_is_the_projects(monkeypatch, tmp_path):
    monkeypatch.setenv("CLOSEDLOOP_BRIAN_CACHE", str(tmp_path / "b2"))
    from brian2 import prefs

    assert brian_cache_dir() == tmp_path / "b2"
    select_target("numpy")
    assert prefs.codegen.runtime.cython.cache_dir == str(tmp_path / "b2" / "cython")
    monkeypatch.delenv("CLOSEDLOOP_BRIAN_CACHE")
    assert brian_cache_dir().name == "brian2"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"control_period_s": 0.0105}, "control.period_s"),
        ({"latency_s": 0.00015}, "control.latency_s"),
        ({"target": "cuda"}, "brian.target"),
        ({"engine": "gpu"}, "control.engine"),
        ({"device": Device(frequency_max_hz=250.0), "dt_s": 5e-3}, "frequency_max_hz"),
    ],
)
def test_bad_loop_settings_are_refused_before_building(kwargs, message):
    dt = kwargs.pop("dt_s", DT)
    model = BrianSTNGPe(dt_s=dt, params={"T_SG_s": 0.01, "T_GS_s": 0.01, "T_GG_s": 0.01})
    with pytest.raises(ValueError, match=message):
        BrianLoop(
            model,
            SensingChain(rate_hz=100.0, band_hz=(13.0, 30.0)) if dt > DT else SensingChain(),
            kwargs.pop("device", Device()),
            OpenLoop(),
            control_period_s=kwargs.pop("control_period_s", 0.01),
            **kwargs,
        )


# -- experiment files -----------------------------------------------------------------
def _config(name="brian_stn_gpe", brian=None, params=None, period=0.02):
    from types import SimpleNamespace as NS

    return NS(
        model=NS(name=name, dt_s=DT, regime=None, params=params or {}),
        n_instances=2,
        seed=3,
        control=NS(period_s=period, latency_s=0.0, engine="auto"),
        output=NS(record_baseline=True),
        brian=brian,
    )


def test_experiment_sections_build_the_loop_or_name_the_problem():
    controller = OpenLoop()
    controller.reset(2, np.random.default_rng(0))  # as the config validation does
    args = (SensingChain(), Device(), controller)
    loop, problems = loop_from_config(_config(brian={"record_rates": True}), *args)
    assert problems == [] and isinstance(loop, BrianLoop)
    assert loop.baseline and loop.record_rates and loop.n == 2
    assert set(loop.extra_timeseries()) == {"lfp_baseline", "rate_stn", "rate_gpe"}
    assert is_brian_experiment("brian_ping") and not is_brian_experiment("stn_gpe")
    assert is_brian_experiment("pkg.build", {"stimulate": STIM, "sense": SENSE})

    _, problems = loop_from_config(_config(brian={"targt": "numpy"}), *args)
    assert problems[0][0] == "brian.targt" and "Did you mean 'target'" in problems[0][1]
    _, problems = loop_from_config(_config(brian={"target": "gpu"}), *args)
    assert problems[0][0] == "brian.target"
    _, problems = loop_from_config(_config(params={"w_GS_nA": -1.0}), *args)
    assert problems[0][0] == "model" and "w_GS_nA" in problems[0][1]
    _, problems = loop_from_config(_config(period=0.0105), *args)
    assert problems[0][0] == "control" and "control.period_s" in problems[0][1]
    _, problems = loop_from_config(_config(brian={"record_spikes": ["snr"]}), *args)
    assert problems[0][0] == "brian.record_spikes"
    user = _config("test_brian_loop.build_user_network", brian={"stimulate": STIM, "sense": SENSE})
    loop, problems = loop_from_config(user, *args)
    assert problems == [] and loop.model.signal_units == "mV"


# -- driving the loop: resumption, step(), reset() first -------------------------------
class Scripted(Controller):
    """Issues ``script(k)`` at the end of period ``k - 1`` (time ``k * period_s``); logs ``t``."""

    def __init__(self, script, period_s):
        self.script = script
        self.period_s = period_s

    def reset(self, n, rng):
        super().reset(n, rng)
        self.t_ = []

    def update(self, t, features):
        self.t_.append(t)
        return self.script(int(round(t / self.period_s)))


def _drive(loop, calls, chunk_s=0.05):
    """Reset, warm up, then ``calls`` (durations for run, or ("step", command)).

    Returns what run() handed over (joined), the chunk start times, the
    spikes, the features step() returned and the final totals.
    """
    loop.reset()
    loop.warm_up(0.05)
    chunks, spikes, features = [], [], []

    def on_chunk(t0, data):
        chunks.append((t0, {k: v.copy() for k, v in data.items()}))

    for call in calls:
        if isinstance(call, tuple):
            features.append(loop.step(call[1]))
        else:
            loop.run(
                call, chunk_s=chunk_s, on_chunk=on_chunk, on_spikes=lambda *a: spikes.append(a)
            )
    data = {k: np.hstack([c[1][k] for c in chunks]) for k in chunks[0][1]}
    spikes = {
        "t": np.concatenate([s[1] for s in spikes] or [[]]),
        "neuron": np.concatenate([s[3] for s in spikes] or [[]]),
    }
    return data, [c[0] for c in chunks], spikes, features, loop.totals()


@pytest.mark.parametrize("engine", ["python", "compiled"])
def test_run_continues_where_the_last_run_stopped(engine):
    def loop():
        return _loop(
            PID(setpoint=10.0, kp=0.02, ki=0.5, max_amplitude_ma=3.0),
            n=2,
            params=SMALL,
            engine=engine,
            control_period_s=0.005,
            latency_s=0.002,
            record_rates=True,
            record_spikes=["stn"],
        )

    whole = _drive(loop(), [0.3])
    parts = _drive(loop(), [0.125, 0.1, 0.075])
    for key in whole[0]:
        np.testing.assert_array_equal(parts[0][key], whole[0][key], err_msg=key)
    for key in whole[4]:
        np.testing.assert_array_equal(parts[4][key], whole[4][key], err_msg=key)
    for key in ("t", "neuron"):
        np.testing.assert_array_equal(parts[2][key], whole[2][key])
    # Chunk times go on from where the last run stopped.
    assert whole[1] == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2, 0.25])
    assert parts[1] == pytest.approx([0.0, 0.05, 0.1, 0.125, 0.175, 0.225, 0.275])
    assert whole[4]["n_pulses"].min() > 10 and whole[0]["amplitude"].max() > 0.1
    assert whole[2]["t"].size > 100


@pytest.mark.parametrize("sense", [SENSE, {"group": "exc", "reduce": "rate"}], ids=["mean", "rate"])
def test_user_network_run_continues_where_the_last_run_stopped(sense):
    def loop():
        return BrianLoop(
            ExternalNetwork(build_user_network, stimulate=STIM, sense=sense, dt_s=DT, n=2),
            SensingChain(band_hz=(30.0, 80.0)),
            Device(),
            PID(setpoint=0.5, kp=0.5, ki=5.0, max_amplitude_ma=2.0),
            control_period_s=0.001,
            seed=2,
        )

    whole = _drive(loop(), [0.2])
    parts = _drive(loop(), [0.1, 0.1])
    for key in whole[0]:
        np.testing.assert_array_equal(parts[0][key], whole[0][key], err_msg=key)
    for key in whole[4]:
        np.testing.assert_array_equal(parts[4][key], whole[4][key], err_msg=key)


def test_run_after_steps_equals_a_run_whose_controller_issued_those_commands():
    period = 0.01

    def script(k):
        amplitudes = {1: 1.0, 2: 2.0, 3: 2.0, 4: 0.5, 5: 1.5}
        frequency = 100.0 if k in (2, 3) else 130.0
        return {
            "amplitude_ma": np.full(2, amplitudes.get(k, 1.0 + 0.1 * k)),
            "frequency_hz": frequency,
        }

    def loop():
        return _loop(
            Scripted(script, period),
            n=2,
            params=SMALL,
            engine="python",
            control_period_s=period,
            latency_s=0.002,
            device=Device(ramp_rate_ma_per_s=1e9),
        )

    # Period 0 without a command, 1 and 2 with the script's, then the controller
    # from the end of period 3 on. The script repeats at k = 3 what step() said
    # last, since nothing is issued at the end of period 2 in the stepped run.
    stepped_loop = loop()
    stepped = _drive(stepped_loop, [("step", None), ("step", script(1)), ("step", script(2)), 0.2])
    ruled_loop = loop()
    ruled = _drive(ruled_loop, [0.23])
    for key in ruled[0]:
        np.testing.assert_array_equal(
            stepped[0][key], ruled[0][key][..., -stepped[0][key].shape[-1] :]
        )
    for key in ruled[4]:
        np.testing.assert_array_equal(stepped[4][key], ruled[4][key], err_msg=key)
    # step() returned what the controller was handed, at the periods' ends.
    for k, features in enumerate(stepped[3]):
        np.testing.assert_array_equal(features["biomarker"], ruled[0]["biomarker"][:, k])
        np.testing.assert_allclose(features["t_s"], (k + 1) * period)
    assert stepped_loop.controller.t_ == pytest.approx(ruled_loop.controller.t_[3:])
    assert np.unique(ruled[0]["amplitude"]).size > 4


def test_step_replaces_the_command_the_controller_left_pending():
    period = 0.05  # 6 to 7 pulses at 130 Hz

    def burst_then(later):
        # A burst of three pulses at the end of period 0; ``later`` at the end of period 1.
        return lambda k: {"amplitude_ma": 2.0, "pulses": 3.0} if k == 1 else later

    def drive(script, command):
        loop = _loop(
            Scripted(script, period),
            params=SMALL,
            control_period_s=period,
            latency_s=0.002,
            device=Device(ramp_rate_ma_per_s=1e9),
        )
        loop.reset()
        loop.run(2 * period)  # the controller's command of period 1's end is pending
        loop.step(command)
        return loop.totals()

    replaced = drive(burst_then({"amplitude_ma": 2.0, "pulses": 3.0}), {"amplitude_ma": 2.0})
    asked = drive(burst_then({"amplitude_ma": 2.0}), None)
    for key in asked:
        np.testing.assert_array_equal(replaced[key], asked[key], err_msg=key)
    # One burst of three: the second burst the controller asked for never came.
    assert asked["n_pulses"][0] == 3


def test_run_step_and_warm_up_before_reset_say_to_call_reset():
    for target in ("auto", "cpp_standalone"):
        loop = _loop(
            OpenLoop(), params=SMALL, target=target, sensing=SensingChain(envelope="power")
        )
        calls = {"run": (loop.run, 0.1), "warm_up": (loop.warm_up, 0.1), "step": (loop.step, None)}
        for name, (method, arg) in calls.items():
            with pytest.raises(
                RuntimeError, match=rf"{name}\(\) before reset\(\): call loop.reset"
            ):
                method(arg)
    loop = _loop(OpenLoop(), params=SMALL)
    loop.reset()
    loop.run(0.02)
    with pytest.raises(RuntimeError, match=r"warm_up\(\) after run\(\) or step\(\)"):
        loop.warm_up(0.1)


#: Monitors that build_probed_user_network made (I_stim of inh, spikes of exc), newest last.
PROBES: list = []


def build_probed_user_network(n_instances=1, **params):
    """:func:`build_user_network` with inh's I_stim and exc's spikes recorded."""
    from brian2 import SpikeMonitor, StateMonitor

    net = build_user_network(n_instances, **params)
    exc, inh = net["objects"][:2]
    probes = (
        StateMonitor(inh, "I_stim", record=True, name="stim_monitor", when="end"),
        SpikeMonitor(exc, name="exc_spikes"),
    )
    PROBES.append(probes)
    net["objects"].extend(probes)
    return net


@pytest.mark.slow
@pytest.mark.parametrize("n", [1, 2])  # written by the loop's operation; by a code runner
def test_user_network_drive_reaches_only_the_named_neurons_and_rate_counts_every_spike(n):
    """Stimulation into chosen neurons of two instances, population rate of another group.

    Independent definitions: continuous 130 Hz DBS at 1 mA with 60 us
    cathodic phases averages 1 mA * 60 us * 130 Hz = 7.8 uA, times the gain
    (40 nA per mA) in the stimulated neurons and 0 elsewhere; the rate is
    each instance's spikes (from a SpikeMonitor of all spikes) per 1 ms
    sample divided by its 40 neurons.
    """
    from brian2 import nA, second

    PROBES.clear()
    model = ExternalNetwork(
        build_probed_user_network,
        stimulate={**STIM, "indices": [1, 3]},
        sense={"group": "exc", "reduce": "rate"},
        dt_s=DT,
        n=n,
    )
    loop = BrianLoop(
        model,
        SensingChain(),
        Device(),
        OpenLoop(amplitude_ma=1.0),
        control_period_s=0.01,
        seed=0,
    )
    data, _, _ = _collect(loop, 0.3, warm_up_s=0.0)
    stim_mon, spike_mon = PROBES[-1]
    i_stim = np.asarray(stim_mon.I_stim / nA)  # (10 n neurons, steps)
    stimulated = np.zeros(10 * n, bool)
    stimulated[[k + 10 * b for b in range(n) for k in (1, 3)]] = True
    assert np.all(i_stim[~stimulated] == 0.0)
    late = i_stim[stimulated][:, 1000:]  # after the first 0.1 s
    np.testing.assert_allclose(late.mean(axis=1), 40.0 * 1.0 * 60e-6 * 130, rtol=0.03)
    assert late.max() > late.mean()  # pulses, not a constant
    steps = np.asarray(spike_mon.t / (DT * second)).round().astype(int)
    inst = np.asarray(spike_mon.i) // 40
    n_samples = data["lfp"].shape[1]
    counts = np.zeros((n, n_samples))
    np.add.at(counts, (inst, steps // 10), 1)
    np.testing.assert_allclose(data["lfp"], counts / 40 / 1e-3, rtol=0, atol=1e-9)
    assert counts.sum() > 0
