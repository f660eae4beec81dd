"""Wilson-Cowan model: the equations and each regime's dynamics.

The contract (chunking, seeds, batches, parameter checks) is in test_models_contract.py.
"""

import numpy as np
import pytest
from scipy import optimize, signal
from scipy.integrate import solve_ivp

from closedloop.models import WilsonCowan

DT = 1e-4


def _rhs(model, drive_ma=0.0):
    """The module's equations in plain numpy, (E, I, u) -> d/dt, for instance 0."""
    r = model.record[0]

    def sig(x, a, theta):
        return 1.0 / (1.0 + np.exp(-a * (x - theta))) - 1.0 / (1.0 + np.exp(a * theta))

    k_e = 1.0 - 1.0 / (1.0 + np.exp(r["a_E"] * r["theta_E"]))
    k_i = 1.0 - 1.0 / (1.0 + np.exp(r["a_I"] * r["theta_I"]))

    def f(_t, y):
        e, i, u = y
        x_e = r["c1"] * e - r["c2"] * i + r["P"] + r["g_E"] * u
        x_i = r["c3"] * e - r["c4"] * i + r["Q"] + r["g_I"] * u
        return [
            (-e + (k_e - r["r_E"] * e) * sig(x_e, r["a_E"], r["theta_E"])) / r["tau_E"],
            (-i + (k_i - r["r_I"] * i) * sig(x_i, r["a_I"], r["theta_I"])) / r["tau_I"],
            (drive_ma - u) / r["tau_stim"],
        ]

    return f


def _fixed_point(model, guess):
    f = _rhs(model)
    point = optimize.fsolve(lambda y: f(0, [*y, 0.0])[:2], guess, xtol=1e-13)
    jac = np.empty((2, 2))
    for j in range(2):
        d = np.zeros(2)
        d[j] = 1e-7
        jac[:, j] = np.subtract(f(0, [*(point + d), 0.0])[:2], f(0, [*(point - d), 0.0])[:2]) / 2e-7
    return point, np.linalg.eigvals(jac)


def _model(regime, n=1, dt=DT, **params):
    model = WilsonCowan(dt_s=dt, n=n, regime=regime, params=params)
    model.reset(0)
    return model


@pytest.mark.parametrize("regime", ["oscillatory_beta", "bistable"])
def test_trajectory_matches_solve_ivp_to_second_order(regime):
    # A constant 0.02 mA drive exercises the stimulation path as well. Heun's
    # method is second order: the error must fall about 100-fold when dt falls
    # 10-fold, and at dt = 10 us be far below the signal's scale (~0.1).
    duration = 0.2
    errors = []
    for dt in (1e-4, 1e-5):
        model = _model(regime, dt=dt, sigma_E=0.0)
        model.state["x"][0, :2] = (0.05, 0.02)
        steps = int(round(duration / dt))
        y = model.advance(steps, np.full((1, steps), 0.02))[0]
        t = dt * np.arange(1, steps + 1)
        ref = solve_ivp(
            _rhs(model, 0.02),
            (0, duration),
            [0.05, 0.02, 0.0],
            method="DOP853",
            rtol=1e-11,
            atol=1e-13,
            t_eval=t,
        )
        errors.append(np.max(np.abs(y - ref.y[0])))
    assert errors[1] < 1e-6, errors
    assert 50 < errors[0] / errors[1] < 200, errors


@pytest.mark.parametrize(
    ("regime", "band_hz", "expected_hz"),
    [("oscillatory_beta", (13, 30), 20.0), ("oscillatory_gamma", (30, 80), 40.0)],
)
def test_oscillatory_regimes_are_limit_cycles_in_their_band(regime, band_hz, expected_hz):
    model = _model(regime)
    model.advance(5000)
    y = model.advance(20000)[0]  # 2 s
    x = y - y.mean()
    up = np.flatnonzero((x[:-1] < 0) & (x[1:] >= 0))
    freq = 1.0 / (np.diff(up).mean() * DT)
    f, psd = signal.welch(y[::10], fs=1000.0, nperseg=1000)
    assert band_hz[0] <= f[1:][np.argmax(psd[1:])] <= band_hz[1]  # the spectral peak
    assert band_hz[0] <= freq <= band_hz[1]
    # Period 5.0 time constants (the 1972 limit cycle), to 1 %.
    assert freq == pytest.approx(expected_hz, rel=0.01)
    # Sustained: the last cycles are as large as the first ones.
    first, last = np.ptp(y[:2000]), np.ptp(y[-2000:])
    assert last > 0.1 and last == pytest.approx(first, rel=0.01)


def test_damped_regime_rings_down_at_the_jacobian_eigenvalue():
    model = _model("damped")
    (e_star, i_star), eig = _fixed_point(model, [0.29, 0.28])
    lam = eig[np.argmax(eig.imag)]
    assert lam.real < 0 and lam.imag > 0  # a stable focus
    model.state["x"][0, :2] = (e_star + 1e-3, i_star)
    x = model.advance(3000)[0] - e_star  # 0.3 s
    peaks = signal.find_peaks(x)[0]
    assert len(peaks) > 8
    rate = -np.polyfit(peaks * DT, np.log(x[peaks]), 1)[0]
    freq = 1.0 / (np.diff(peaks).mean() * DT)
    assert rate == pytest.approx(-lam.real, rel=0.02)
    assert freq == pytest.approx(lam.imag / (2 * np.pi), rel=0.01)
    assert abs(x[-1]) < 0.05 * abs(x[peaks[0]])  # it has rung down


def test_bistable_regime_has_two_stable_states():
    model = _model("bistable", n=2, sigma_E=0.0)
    model.state["x"][1, :2] = (0.5, 0.2)
    model.advance(5000)
    e_end = model.state["x"][:, 0]
    for k, guess in enumerate(([0.03, 0.01], [0.36, 0.17])):
        (e_star, _), eig = _fixed_point(model, guess)
        assert np.all(eig.real < 0)
        assert e_end[k] == pytest.approx(e_star, abs=1e-9)
    assert e_end[0] < 0.05 and e_end[1] > 0.3  # healthy low, pathological high


def _in_high_state(e, low=0.12, high=0.25):
    """Which samples are in the high state (hysteresis between the two levels)."""
    state = np.zeros(e.shape, dtype=bool)
    now = e[:, 0] > high
    for k in range(e.shape[1]):
        now = (now | (e[:, k] > high)) & ~(e[:, k] < low)
        state[:, k] = now
    return state


def test_noise_switches_between_the_states_both_ways():
    # At the documented noise level (sigma_E = 0.2 / sqrt(s)) a seeded batch of
    # 8 instances x 20 s switches many times each way and spends roughly 60 %
    # of the time in the high state (dwells of about 1.7 s low, 2.9 s high).
    model = WilsonCowan(dt_s=DT, n=8, regime="bistable")
    model.reset(2024)
    high = _in_high_state(model.advance(200000)[:, ::10])
    ups = np.count_nonzero(~high[:, :-1] & high[:, 1:])
    downs = np.count_nonzero(high[:, :-1] & ~high[:, 1:])
    assert ups >= 20 and downs >= 20
    # Fraction of time high: the value the model gives for this seed (0.586 at
    # commit 9a7b9dd; the 8 instances range 0.43-0.78, so a seeded pin, not
    # the 0.4-0.8 any of them would pass).
    assert high.mean() == pytest.approx(0.586, abs=0.02)
    quiet = _model("bistable", n=8, sigma_E=0.0)
    assert not _in_high_state(quiet.advance(20000)[:, ::10]).any()


def test_unknown_regime_is_refused():
    with pytest.raises(ValueError, match="regime"):
        WilsonCowan(regime="chaotic")
