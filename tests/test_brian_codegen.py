"""Controllers, sensing chain and device as Brian2 generated code, and the standalone loop."""

import math
from pathlib import Path

import numpy as np
import pytest
from twin_cases import BRIAN_CODE_TWIN_CONTROLLERS

from closedloop.brian.codegen import (
    FUNCTIONS,
    device_code,
    device_initial,
    device_namespace,
    sensing_code,
    simulate_controller_code,
)
from closedloop.brian.loop import BrianLoop
from closedloop.controllers import PID, Controller
from closedloop.device import Device, device_fill, queue_push
from closedloop.models.brian_stn_gpe import BrianSTNGPe
from closedloop.sensing.chain import SensingChain

pytestmark = pytest.mark.brian

DT = 1e-4
CONTROLLERS = BRIAN_CODE_TWIN_CONTROLLERS


def _python_commands(controller, biomarker, period_s):
    controller.reset(biomarker.shape[1], np.random.default_rng(0))
    out = {k: np.zeros(biomarker.shape) for k in ("amplitude_ma", "frequency_hz", "pulse_width_us")}
    for k in range(biomarker.shape[0]):
        command = controller.update((k + 1) * period_s, {"biomarker": biomarker[k]})
        for key in out:
            out[key][k] = command[key]
    return out


def _biomarker(n_periods=300, n=3):
    rng = np.random.default_rng(4)
    # Random walks crossing thresholds and set points, with NaN and huge values.
    b = 30 + np.cumsum(rng.normal(0, 3, size=(n_periods, n)), axis=0)
    b[50, 0] = np.nan
    b[60, 1] = 1e300
    return b


@pytest.mark.parametrize("controller", CONTROLLERS, ids=lambda c: repr(c)[:40])
def test_brian_code_twin_issues_the_same_commands(controller):
    biomarker, period_s = _biomarker(), 0.005
    expected = _python_commands(controller, biomarker, period_s)
    controller.reset(biomarker.shape[1], np.random.default_rng(0))
    got = simulate_controller_code(controller, biomarker, period_s, target="numpy")
    for key, want in expected.items():
        np.testing.assert_allclose(got[key], want, rtol=1e-12, atol=1e-12, err_msg=key)


@pytest.mark.slow
def test_brian_code_twin_in_cython():
    controller = CONTROLLERS[-1]
    biomarker, period_s = _biomarker(100), 0.01
    expected = _python_commands(controller, biomarker, period_s)
    controller.reset(biomarker.shape[1], np.random.default_rng(0))
    got = simulate_controller_code(controller, biomarker, period_s, target="cython")
    np.testing.assert_allclose(got["amplitude_ma"], expected["amplitude_ma"], rtol=1e-9)


def test_controllers_without_a_twin_are_refused_plainly():
    class Mine(Controller):
        def reset(self, n, rng):
            super().reset(n, rng)

        def update(self, t, features):
            return {"amplitude_ma": np.zeros(self.n_)}

    c = Mine()
    c.reset(1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="has no Brian2 code twin"):
        simulate_controller_code(c, np.zeros((3, 1)), 0.01)


@pytest.mark.slow
def test_generated_device_delivers_what_the_reference_device_delivers():
    from brian2 import Network, NeuronGroup, StateMonitor, TimedArray, second

    from closedloop.brian.runtime import select_target

    select_target("numpy")
    device = Device(ramp_rate_ma_per_s=20.0)
    n, spp, n_periods = 2, 100, 30  # 10 ms periods at 0.1 ms
    rng = np.random.default_rng(1)
    amp = rng.uniform(0, 6, size=(n_periods, n))  # beyond the 5 mA limit too
    freq = rng.choice([60.0, 130.0, 185.0, 300.0], size=(n_periods, n))  # 300: clipped
    width = rng.choice([60.0, 120.0, 450.0], size=(n_periods, n))  # 450 us: charge cap
    amp[5, 0] = np.nan  # rejected: previous target kept
    freq[7, 1] = np.inf
    eqs, code = device_code()
    period = spp * DT * second
    feeds = {
        name: TimedArray(np.vstack([values, values[-1:]]), dt=period, name=f"feed_{name}")
        for name, values in (("amp", amp), ("freq", freq), ("pw", width))
    }
    ns = {
        **FUNCTIONS,
        **device_namespace(device, DT),
        **{f"feed_{k}": v for k, v in feeds.items()},
        "cl_dt": DT * second,
        "cl_step0": 0,
        "cl_period_dt": period,
    }
    group = NeuronGroup(n, eqs + "art_acc : 1\n", namespace=ns, name="cl_loop")
    for key, value in device_initial(device).items():
        setattr(group, key, value)
    group.cl_active = 1.0
    # Command k arrives at the end of period k, as the loop's controller issues it.
    group.run_regularly(
        "cl_k = timestep(t, cl_period_dt)\n"
        "c_amp = feed_amp(t - cl_period_dt, i)\n"
        "c_freq = feed_freq(t - cl_period_dt, i)\n"
        "c_pw = feed_pw(t - cl_period_dt, i)\n"
        "c_eff = timestep(t, cl_dt)\n"
        "c_has = int(cl_k > 0)\n",
        dt=period,
        when="groups",
        order=-7,
    )
    group.run_regularly(code, dt=DT * second, when="groups", order=-6)
    mon = StateMonitor(group, ["drive", "net_cur"], record=True, when="end")
    Network(group, mon).run(n_periods * period, namespace={})

    state = device.kernel_state(n, 3)
    drive = np.zeros((n, n_periods * spp))
    net = np.zeros((n, n_periods * spp))
    for k in range(n_periods):
        for i in range(n):
            device_fill(i, spp, k * spp, DT, state, drive[:, k * spp :], net[:, k * spp :])
        command = tuple(np.ascontiguousarray(x[k]) for x in (amp, freq, width))
        queue_push(state, (*command, np.full(n, np.nan)), (k + 1) * spp)
    np.testing.assert_allclose(np.asarray(mon.drive), drive, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.asarray(mon.net_cur), net, rtol=1e-9, atol=1e-9)
    assert drive.max() > 1.0  # pulses were delivered
    # The charge limit holds for every pulse (steps of one pulse are adjacent).
    for row in drive:
        on = row > 0
        starts = np.flatnonzero(on & ~np.concatenate([[False], on[:-1]]))
        charge_uc = np.add.reduceat(row, starts) * DT * 1e3 if starts.size else []
        assert np.all(np.asarray(charge_uc) <= device.charge_limit_uc * (1 + 1e-9))


def test_generated_sensing_chain_matches_the_sensing_chain():
    from brian2 import Network, NeuronGroup, StateMonitor, TimedArray, second

    from closedloop.brian.runtime import select_target

    select_target("numpy")
    chain = SensingChain(envelope="power", envelope_tau_s=0.03, band_hz=(13.0, 30.0))
    rate, n_samples = chain.rate_hz, 600
    t = np.arange(n_samples) / rate
    rng = np.random.default_rng(0)
    x = 20 * np.sin(2 * np.pi * 21 * t) + rng.normal(0, 5, n_samples) + 50
    cum = np.concatenate([[0.0], np.cumsum(x) / rate])
    eqs, code, ns = sensing_code(chain.sos)
    sample = 1 / rate * second
    feed = TimedArray(cum, dt=sample, name="feed_cum")
    group = NeuronGroup(
        1,
        eqs.replace("cum_src : 1 (linked)", "cum_src : 1") + "cl_scale_per_s : 1\n",
        namespace={
            **FUNCTIONS,
            **ns,
            "feed_cum": feed,
            "cl_sample_dt": sample,
            "cl_q0": 0,
            "cl_inv_sps": 0.1,
            "cl_gain": 0.0,
            "cl_noise": 0.0,
            "cl_alpha": math.exp(-1.0 / (rate * chain.envelope_tau_s)),
        },
        name="cl_loop",
    )
    group.cl_scale_per_s = rate
    group.run_regularly("cum_src = feed_cum(t)", dt=sample, when="groups", order=-9)
    group.run_regularly(
        "cl_valid = int(timestep(t, cl_sample_dt) > cl_q0)\n" + code,
        dt=sample,
        when="groups",
        order=-8,
    )
    mon = StateMonitor(group, ["lfp_x", "env"], record=0, when="end", dt=sample)
    Network(group, mon).run((n_samples + 1) * sample, namespace={})
    expected = chain.process(chain.new_state(1, np.zeros((1, 4), np.uint64)), x[None, :])
    np.testing.assert_allclose(np.asarray(mon.lfp_x)[0, 1:], x, rtol=1e-9)
    np.testing.assert_allclose(
        np.asarray(mon.env)[0, 1:], expected["envelope"][0], rtol=1e-7, atol=1e-9
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sensing": SensingChain()}, "envelope must be 'power'"),
        ({"engine": "python"}, "needs Python in the loop"),
        ({"latency_s": 0.01}, "latency_s must be shorter"),
        ({"sensing": SensingChain(envelope="power", features=("line_length",))}, "features"),
    ],
)
def test_standalone_refuses_what_it_cannot_generate(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BrianLoop(
            BrianSTNGPe(dt_s=DT),
            kwargs.pop("sensing", SensingChain(envelope="power")),
            Device(),
            PID(),
            control_period_s=0.01,
            target="cpp_standalone",
            **kwargs,
        )


@pytest.mark.slow
def test_standalone_closed_loop_runs_without_python_and_matches_its_twins(tmp_path):
    controller = PID(setpoint=50.0, kp=0.001, ki=0.02, max_amplitude_ma=3.0)
    loop = BrianLoop(
        BrianSTNGPe(dt_s=DT, params={"N_STN": 50, "N_GPe": 50, "K_SG": 10, "K_GS": 10, "K_GG": 10}),
        SensingChain(envelope="power", envelope_tau_s=0.05),
        Device(),
        controller,
        control_period_s=0.01,
        seed=2,
        target="cpp_standalone",
        baseline=True,
        record_rates=True,
        build_dir=tmp_path,
    )
    loop.reset()
    loop.warm_up(0.1)
    chunks = []
    totals = loop.run(0.6, chunk_s=0.3, on_chunk=lambda t0, d: chunks.append((t0, dict(d))))
    assert loop.target_ == "cpp_standalone"
    assert [c[0] for c in chunks] == pytest.approx([0.0, 0.3])
    data = {k: np.hstack([c[1][k] for c in chunks]) for k in chunks[0][1]}
    assert data["lfp"].shape == (1, 600) and data["lfp_baseline"].shape == (1, 600)
    assert data["biomarker"].shape == (1, 60) and data["rate_stn"].shape == (1, 600)
    assert np.all(np.isfinite(data["lfp"])) and data["rate_stn"].mean() > 5
    # Built in its own directory, removed afterwards.
    assert Path(loop.build_directory_).parent == tmp_path
    assert not Path(loop.build_directory_).exists()
    # The generated device delivered what the reference device delivers...
    assert loop.device_mismatch_ma_ < 1e-9
    # ...for the commands the generated PID issued, which are the Python PID's.
    expected = _python_commands(controller, data["biomarker"].T, 0.01)
    np.testing.assert_allclose(
        loop.commands_["amplitude_ma"], expected["amplitude_ma"].T, rtol=1e-9, atol=1e-12
    )
    assert data["amplitude"].max() > 0.05 and totals["energy_j"][0] > 0
    # One compiled program per run: a second run, or a step, is refused plainly.
    with pytest.raises(RuntimeError, match=r"run\(\) twice with cpp_standalone.*reset\(\) first"):
        loop.run(0.1)
    with pytest.raises(RuntimeError, match="step.*needs Python in the loop"):
        loop.step({"amplitude_ma": 1.0})
    assert loop.time_s == pytest.approx(0.6)
