"""Jansen-Rit column: alpha rhythm, the equations, input noise, stimulation.

The contract (chunking, seeds, batches, parameter checks) is in test_models_contract.py.
"""

import numpy as np
import pytest
from scipy import signal
from scipy.integrate import solve_ivp

from closedloop.config import load_config
from closedloop.experiment import run_experiment
from closedloop.io import load_run
from closedloop.models import JansenRit

DT = 1e-4


def _rhs(model, drive_ma=0.0):
    """The module's equations in plain numpy, for instance 0 under constant input p_mean."""
    r = model.record[0]
    c = r["C"]
    c1, c2, c3, c4 = (r[f"C{k}_frac"] * c for k in range(1, 5))

    def sig(v):
        return 2 * r["e0"] / (1 + np.exp(r["r"] * (r["v0"] - v)))

    def f(_t, y):
        y0, y1, y2, y3, y4, y5, u = y
        a, b = r["a"], r["b"]
        return [
            y3,
            y4,
            y5,
            r["A"] * a * sig(y1 - y2 + r["g_stim"] * u) - 2 * a * y3 - a * a * y0,
            r["A"] * a * (r["p_mean"] + c2 * sig(c1 * y0)) - 2 * a * y4 - a * a * y1,
            r["B"] * b * c4 * sig(c3 * y0) - 2 * b * y5 - b * b * y2,
            (drive_ma - u) / r["tau_stim"],
        ]

    return f


def _alpha(y, fs=1000.0):
    f, p = signal.welch(y, fs=fs, nperseg=int(2 * fs))
    peak = f[2:][np.argmax(p.mean(axis=0)[2:])]  # above 1 Hz: skip the mean
    return peak, p[:, (f >= 8) & (f <= 12)].sum(axis=1).mean()


def test_standard_parameters_give_an_alpha_peak():
    model = JansenRit(dt_s=DT, n=4)
    model.reset(7)
    model.advance(10000)
    peak, _ = _alpha(model.advance(100000)[:, ::10])  # 4 x 10 s at 1 kHz
    assert 8.0 <= peak <= 12.0, f"spectral peak at {peak} Hz"


def test_deterministic_column_matches_solve_ivp_and_oscillates_at_alpha():
    # Constant input p = 220 pulses/s lies inside the alpha limit-cycle range.
    # Heun's method is second order: 10 times smaller steps, about 100 times
    # smaller error.
    duration = 1.0
    errors = []
    for dt in (1e-4, 1e-5):
        model = JansenRit(dt_s=dt, n=1, params={"p_std": 0.0})
        model.reset(0)
        steps = int(round(duration / dt))
        y = model.advance(steps, np.full((1, steps), 0.01))[0]
        t = dt * np.arange(1, steps + 1)
        ref = solve_ivp(
            _rhs(model, 0.01),
            (0, duration),
            np.zeros(7),
            method="DOP853",
            rtol=1e-11,
            atol=1e-12,
            t_eval=t,
        )
        errors.append(np.max(np.abs(y - (ref.y[1] - ref.y[2]))))
    assert errors[1] < 5e-5, errors  # mV, against a 14 mV swing (7e-6 measured)
    assert 50 < errors[0] / errors[1] < 200, errors
    x = y[len(y) // 2 :] - y[len(y) // 2 :].mean()
    up = np.flatnonzero((x[:-1] < 0) & (x[1:] >= 0))
    assert 8.0 <= 1.0 / (np.diff(up).mean() * 1e-5) <= 12.0


def test_input_noise_has_the_documented_mean_and_spread_held_for_p_hold_s():
    model = JansenRit(dt_s=DT, n=1)
    model.reset(3)
    held = []
    for _ in range(4000):  # one draw per call of 1 ms = p_hold_s
        model.advance(10)
        held.append(model.state["x"][0, 7])
    held = np.array(held)
    assert held.mean() == pytest.approx(220.0, abs=3 * 57.7 / np.sqrt(held.size))
    assert held.std() == pytest.approx(200 / np.sqrt(12), rel=0.05)
    assert np.all(np.diff(held) != 0)  # a new draw every 1 ms
    model.advance(1)  # the first step of a window draws...
    drawn = model.state["x"][0, 7]
    assert drawn != held[-1]
    model.advance(9)  # ...and the value holds for the rest of it
    assert model.state["x"][0, 7] == drawn


def test_weak_alpha_regime_has_less_alpha_and_10hz_trains_restore_it():
    # The experiment's claim (experiments/jr_alpha_tacs.yaml): 2 mA, 450 us
    # pulses at 10 Hz entrain the weakened column and raise its alpha power
    # above that of the healthy one; same noise seeds everywhere.
    n_steps = 60000
    seeds = np.random.SeedSequence(5).spawn(4)
    train = np.zeros(n_steps)
    train[(np.arange(n_steps) % 1000) < 4] = 2.0  # 400 us of each 100 ms at 2 mA
    train[(np.arange(n_steps) % 1000) == 4] = 1.0  # and half of the next step
    powers = {}
    for label, regime, drive in (
        ("healthy", "alpha", None),
        ("weak", "weak_alpha", None),
        ("weak_stimulated", "weak_alpha", np.tile(train, (4, 1))),
    ):
        model = JansenRit(dt_s=DT, n=4, regime=regime)
        model.reset(seeds)
        y = model.advance(n_steps, drive)[:, 10000::10]
        powers[label] = _alpha(y)[1]
    assert powers["weak"] < 0.4 * powers["healthy"]
    assert powers["weak_stimulated"] > 3 * powers["weak"]
    assert powers["weak_stimulated"] > powers["healthy"]


@pytest.mark.parametrize(
    ("p_hold_s", "dt"),
    [(1.05e-3, DT), (1e-3, 3e-4)],
    ids=["not-whole-steps", "dt-does-not-divide"],
)
def test_input_hold_must_be_whole_steps(p_hold_s, dt):
    with pytest.raises(ValueError, match="'p_hold_s'.*whole number"):
        JansenRit(dt_s=dt, n=2, params={"p_hold_s": p_hold_s})


def test_experiment_restores_alpha_in_closed_loop(
    tmp_path,
    experiment_config,
    write_experiment,
    band_powers_from_lfp,
):
    config = experiment_config("jr_alpha_tacs")
    config["duration_s"] = 6.0
    config["output"]["figure"] = False
    exp = load_config(write_experiment(config))
    run = load_run(run_experiment(exp, tmp_path).path)
    metrics = run.metrics
    # The metrics by their definitions, recomputed from the recorded LFP and
    # stimulation.
    stim, base = band_powers_from_lfp(run)
    np.testing.assert_allclose(metrics["band_power_reduction"], 1 - stim / base, rtol=1e-9)
    # tACS charge: the mean of |A sin| over a cycle is 2A/pi; the recorded
    # peak current of each 20 ms period (two periods per 10 Hz cycle) gives it.
    peak = run.timeseries["amplitude"][0]
    period_s = config["control"]["period_s"]
    expected_uc = np.abs(peak).sum() * period_s * 2.0 / np.pi * 1e3
    assert metrics["tes_charge_uc"][0] == pytest.approx(expected_uc, rel=0.05)
    assert np.abs(peak).max() <= 2.0  # the device's current cap
    # Alpha (8-12 Hz) power nearly quadrupled against the same seed unstimulated. Value
    # the model gives (6 s, the file's seed).
    assert metrics["band_power_reduction"][0] == pytest.approx(-2.79, abs=0.15)
