"""The control toolkit: excitation, identification, Kalman filter, LQR and MPC.

Identification is checked where the answer is known analytically: a linear
system's poles, and the Wilson-Cowan model's linearisation at its stable
focus (``damped`` regime), identified through the whole loop (device,
pulses, sensing). The controllers are checked against the stimulation
amplitude whose fixed point of the model's equations is the target.
"""

import math

import numpy as np
import pytest
from scipy.optimize import brentq, fsolve

from closedloop.config import ConfigError, validate_config
from closedloop.control.collect import IdData, collect
from closedloop.control.estimation import KalmanFilter
from closedloop.control.excitation import (
    binary_noise,
    check_levels,
    generalized_binary_noise,
)
from closedloop.control.lqr import LQR
from closedloop.control.mpc import MPC
from closedloop.control.sysid import (
    StateSpaceModel,
    explained_variance,
    identify,
    kalman_gains,
    select_order,
)
from closedloop.device import Device

# A damped oscillator (poles 0.9 exp(+-0.3j)) and a slow real pole 0.7.
A_TRUE = np.array([[2 * 0.9 * math.cos(0.3), -0.81, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.7]])
B_TRUE = np.array([[1.0], [0.0], [0.5]])
C_TRUE = np.array([[0.5, 0.2, 1.0]])


def _simulate(trials=4, t_len=1000, seed=0, w=0.02, v=0.05):
    rng = np.random.default_rng(seed)
    u = generalized_binary_noise(t_len, (0.0, 2.0), 0.3, rng, n=trials)[..., None]
    y = np.empty((trials, t_len, 1))
    x_true = np.empty((trials, t_len, 3))
    for r in range(trials):
        x = np.zeros(3)
        for k in range(t_len):
            x_true[r, k] = x
            y[r, k] = C_TRUE @ x + v * rng.normal() + 3.0
            x = A_TRUE @ x + B_TRUE @ u[r, k] + w * rng.normal(size=3)
    return IdData(u, y, ("amplitude_ma",), ("biomarker",), 0.02), x_true


def _matched(found, want):
    """Distance from each wanted pole to the nearest found one."""
    return np.array([np.min(np.abs(found - z)) for z in want])


def test_identification_recovers_the_poles_of_a_known_linear_system():
    data, _ = _simulate()
    train, valid = data.split(0.7)
    model, scores = select_order(train, valid, [1, 2, 3, 4, 5], horizon=10)
    assert model.order == 3
    assert _matched(model.poles(), np.linalg.eigvals(A_TRUE)).max() < 0.01
    want_gain = (C_TRUE @ np.linalg.solve(np.eye(3) - A_TRUE, B_TRUE)).item()
    assert model.dc_gain().item() == pytest.approx(want_gain, rel=0.02)
    ev = explained_variance(model, valid, (1, 5, 10))
    assert ev[1][0] > 0.999 and ev[10][0] > 0.999
    assert scores[1] < 0.9  # one state cannot: the choice is not by default


def test_kalman_filter_error_matches_the_riccati_covariance():
    # With the true model, the filtered error covariance is P - M C P.
    data, x_true = _simulate(trials=1, t_len=4000, seed=1, w=0.05, v=0.1)
    truth = StateSpaceModel(
        A_TRUE,
        B_TRUE,
        C_TRUE,
        0.05**2 * np.eye(3),
        np.array([[0.1**2]]),
        np.zeros(1),
        np.array([3.0]),
        0.02,
    )
    kf = KalmanFilter(truth, 1)
    errors = []
    for k in range(data.u.shape[1]):
        x = kf.correct(data.y[:, k])
        errors.append(x[0] - x_true[0, k])
        kf.predict(data.u[:, k])
    errors = np.array(errors[100:])
    _, gain = kalman_gains(truth)
    import control

    _, prior, _ = control.dlqe(A_TRUE, np.eye(3), C_TRUE, truth.Q, truth.R)
    posterior = prior - gain @ C_TRUE @ prior
    np.testing.assert_allclose(np.diag(np.cov(errors.T)), np.diag(posterior), rtol=0.1)


# -- Wilson-Cowan at its stable focus, through the loop ------------------------------

PERIOD_S, FREQ_HZ, WIDTH_US = 0.004, 250.0, 60.0  # one pulse per control period
LEVELS_MA = (0.0, 0.05)  # small: the linearisation holds


def _wc_config(n):
    return {
        "name": "wc_sysid",
        "seed": 3,
        "n_instances": n,
        "duration_s": 1.0,
        "warmup_s": 0.3,
        "model": {"name": "wilson_cowan", "dt_s": 1e-4, "regime": "damped"},
        "sensing": {
            "rate_hz": 1000.0,
            "band_hz": [4.0, 100.0],
            "noise_std": 1e-4,
            "features": ["signal"],
        },
        "control": {"period_s": PERIOD_S},
        "device": {"ramp_rate_ma_per_s": math.inf, "initial_frequency_hz": FREQ_HZ},
        "metrics": {"band_hz": [4.0, 100.0]},
    }


def _wc_rhs(z, amplitude_ma, p):
    """The documented Wilson-Cowan equations (models/wilson_cowan.py), 1/s."""
    e, i = z
    mean_ma = amplitude_ma * WIDTH_US * 1e-6 * FREQ_HZ  # mean cathodic current

    def sig(x, a, th):
        return 1 / (1 + np.exp(-a * (x - th))) - 1 / (1 + np.exp(a * th))

    k_e, k_i = 1 - 1 / (1 + np.exp(1.3 * 4.0)), 1 - 1 / (1 + np.exp(2.0 * 3.7))
    de = -e + (k_e - e) * sig(16 * e - 12 * i + 2.5 + p["g_E"] * mean_ma, 1.3, 4.0)
    di = -i + (k_i - i) * sig(15 * e - 3 * i + p["g_I"] * mean_ma, 2.0, 3.7)
    return np.array([de, di]) / 0.01


def _wc_fixed_point(amplitude_ma, p):
    return fsolve(lambda z: _wc_rhs(z, amplitude_ma, p), [0.28, 0.28])


@pytest.fixture(scope="module")
def wc_data():
    loop = validate_config(_wc_config(4)).loop
    rng = np.random.default_rng(1)
    design = {"amplitude_ma": generalized_binary_noise(1500, LEVELS_MA, 0.3, rng, n=4)}
    fixed = {"frequency_hz": FREQ_HZ, "pulse_width_us": WIDTH_US}
    data = collect(loop, design, outputs=("signal",), fixed=fixed, warmup_s=0.3)
    return data, loop.model.param_values


def test_identification_through_the_loop_recovers_the_wilson_cowan_linearisation(wc_data):
    data, params = wc_data
    p = {k: float(v[0]) for k, v in params.items()}
    train, valid = data.split(0.7)
    model, _ = select_order(train, valid, [1, 2, 3, 4, 5], horizon=15)
    assert model.order == 3  # E, I and the stimulation filter
    # Analytic: the Jacobian at the fixed point under the mean stimulation.
    z = _wc_fixed_point(float(model.u_offset[0]), p)
    jac = np.empty((2, 2))
    for k in range(2):
        h = np.zeros(2)
        h[k] = 1e-7
        jac[:, k] = (
            _wc_rhs(z + h, model.u_offset[0], p) - _wc_rhs(z - h, model.u_offset[0], p)
        ) / 2e-7
    focus = np.exp(np.linalg.eigvals(jac) * PERIOD_S)
    stim_filter = math.exp(-PERIOD_S / p["tau_stim"])
    # Found (1/s) -13.2 +- 287.3j and -197.7, against -12.3 +- 290.9j and -1/tau_stim = -200.
    assert _matched(model.poles(), focus).max() < 0.03
    assert _matched(model.poles(), [stim_filter]).max() < 0.03
    # The fixed point's slope dE/dA against the identified steady-state gain.
    slope = (_wc_fixed_point(0.05, p)[0] - _wc_fixed_point(0.0, p)[0]) / 0.05
    assert model.dc_gain().item() == pytest.approx(slope, rel=0.1)


def _closed_loop(controller, seconds=1.0):
    loop = validate_config(_wc_config(2)).loop
    loop.controller = controller
    loop.engine = "python"
    rows = []
    loop.reset()
    loop.warm_up(0.3)
    loop.run(seconds, on_chunk=lambda t0, d: rows.append((d["feature_signal"], d["amplitude"])))
    return (np.concatenate([r[k] for r in rows], axis=1) for k in (0, 1))


@pytest.mark.parametrize("kind", ["lqr", "mpc"])
def test_model_based_control_holds_the_target_at_the_fixed_point_amplitude(wc_data, kind):
    data, params = wc_data
    p = {k: float(v[0]) for k, v in params.items()}
    model = identify(data, 3, 15)
    target = 0.278  # E; 0.2887 unstimulated
    common = dict(model=model, target=target, frequency_hz=FREQ_HZ, pulse_width_us=WIDTH_US)
    if kind == "lqr":
        controller = LQR(**common, output_weight=100.0, input_weight=1e-2)
    else:
        controller = MPC(**common, output_weight=100.0, input_weight=1e-4, ramp_ma_per_s=5.0)
    signal, amplitude = _closed_loop(controller)
    settled = signal[:, -100:].mean(axis=1)
    np.testing.assert_allclose(settled, target, atol=3e-4)
    # The amplitude whose fixed point is the target (mean-current equations): 0.0389 mA;
    # both settle at 0.0383 mA (pulses, not their mean, drive the model).
    want = brentq(lambda a: _wc_fixed_point(a, p)[0] - target, 0.0, 0.2)
    np.testing.assert_allclose(amplitude[:, -100:].mean(axis=1), want, rtol=0.05)
    if kind == "mpc":
        assert np.abs(np.diff(amplitude, axis=1)).max() <= 5.0 * PERIOD_S + 1e-9
        assert controller.failures_.sum() == 0


def test_mpc_keeps_the_charge_per_phase_limit_and_its_budget(wc_data):
    model = identify(wc_data[0], 3, 15)
    cap_uc = 0.02 * WIDTH_US * 1e-3  # 0.02 mA at 60 us: below what the target needs
    controller = MPC(
        model=model,
        target=0.278,
        frequency_hz=FREQ_HZ,
        pulse_width_us=WIDTH_US,
        output_weight=100.0,
        input_weight=1e-4,
        charge_per_phase_max_uc=cap_uc,
    )
    _, amplitude = _closed_loop(controller, 0.3)
    assert amplitude.max() <= 0.02 + 1e-6
    assert amplitude[:, -20:].min() >= 0.02 - 1e-4  # pinned at the limit
    # A budget over the horizon (20 periods) that allows 0.01 mA on average.
    budget = MPC(
        model=model,
        target=0.278,
        frequency_hz=FREQ_HZ,
        pulse_width_us=WIDTH_US,
        output_weight=100.0,
        input_weight=1e-4,
        charge_budget_uc=0.01 * WIDTH_US * 1e-3 * FREQ_HZ * PERIOD_S * 20,
    )
    _, amplitude = _closed_loop(budget, 0.3)
    assert amplitude[:, -20:].mean() == pytest.approx(0.01, abs=1e-3)


# -- excitation and bad input --------------------------------------------------------


def test_gbn_mean_dwell_is_the_geometric_mean_and_bn_holds_its_clock():
    rng = np.random.default_rng(0)
    x = generalized_binary_noise(20_000, (0.0, 1.0), 0.25, rng, min_dwell=2)
    runs = np.diff(np.flatnonzero(np.diff(x[0]) != 0))
    # Held 2 periods, then a geometric number of trials: mean 1 + 1 / p.
    assert runs.min() == 2
    assert runs.mean() == pytest.approx(1 + 1 / 0.25, rel=0.05)
    bn = binary_noise(1000, (0.5, 1.5), rng, dwell=5)
    assert set(np.unique(bn)) == {0.5, 1.5}
    np.testing.assert_array_equal(bn[:, ::5], bn[:, 4::5])


def test_designs_beyond_the_device_are_refused_with_the_limit():
    device = Device()  # 5 mA, Shannon k = 1.75 on 0.06 cm^2
    with pytest.raises(ValueError, match=r"device delivers \[0, 5\] mA"):
        check_levels(device, "amplitude_ma", np.array([0.0, 6.0]))
    with pytest.raises(ValueError, match="charge-density"):
        check_levels(device, "amplitude_ma", np.array([0.0, 4.0]), pulse_width_us=450.0)
    with pytest.raises(ValueError, match="outside the device's"):
        check_levels(device, "frequency_hz", np.array([100.0, 300.0]))


def test_model_file_round_trips_and_controllers_report_a_missing_file(tmp_path, wc_data):
    model = identify(wc_data[0], 3, 15)
    path = tmp_path / "wc.npz"
    model.save(path)
    back = StateSpaceModel.load(path)
    np.testing.assert_array_equal(back.A, model.A)
    assert back.inputs == ("amplitude_ma",) and back.outputs == ("signal",)
    cfg = _wc_config(1)
    cfg["controller"] = {
        "name": "mpc",
        "params": {"model": str(path), "target": 0.278, "frequency_hz": FREQ_HZ},
    }
    validate_config(cfg)  # runs from a file
    cfg["controller"]["params"]["model"] = str(tmp_path / "missing.npz")
    with pytest.raises(ConfigError, match="controller.params.*missing.npz"):
        validate_config(cfg)


def test_lqr_compiled_twin_gives_the_python_run_bit_for_bit(wc_data):
    # On the biomarker (the one feature the kernels hand a compiled controller).
    cfg = _wc_config(2)
    loop = validate_config(cfg).loop
    rng = np.random.default_rng(2)
    design = {"amplitude_ma": generalized_binary_noise(600, LEVELS_MA, 0.3, rng, n=2)}
    fixed = {"frequency_hz": FREQ_HZ, "pulse_width_us": WIDTH_US}
    model = identify(collect(loop, design, fixed=fixed, warmup_s=0.3), 2, 10)
    runs = {}
    for engine in ("python", "compiled"):
        loop = validate_config(cfg).loop
        loop.controller = LQR(
            model=model, target=float(model.y_offset[0]), frequency_hz=FREQ_HZ, max_amplitude_ma=0.1
        )
        loop.engine = engine
        rows = []
        loop.reset()
        loop.warm_up(0.3)
        totals = loop.run(0.4, on_chunk=lambda t0, d, rows=rows: rows.append(d["amplitude"]))
        assert (loop.program()[0] >= 0) == (engine == "compiled")
        runs[engine] = (np.concatenate(rows, axis=1), totals)
    np.testing.assert_array_equal(runs["python"][0], runs["compiled"][0])
    assert runs["python"][0].max() > 0.0  # it did stimulate
    for key, value in runs["python"][1].items():
        np.testing.assert_array_equal(runs["compiled"][1][key], value, err_msg=key)
    # A controller on another feature has no twin (the kernels give it the biomarker only).
    other = LQR(model=identify(wc_data[0], 3, 15), target=0.278)
    other.reset(1, np.random.default_rng(0))
    assert other.compiled() is None


def test_toolkit_controllers_pass_the_conformance_check():
    from closedloop.controllers.policy import Policy
    from closedloop.registry import resolve_controller
    from closedloop.testing import check_controller

    model = identify(_simulate(trials=2, t_len=400)[0], 3, 10)
    for controller in (
        LQR(model=model, target=3.0),
        MPC(model=model, target=3.0, horizon=10, ramp_ma_per_s=20.0),
        Policy(policy=lambda obs: np.ones((obs.shape[0], 1))),
    ):
        check_controller(controller)
        assert resolve_controller(controller.name) is type(controller)
