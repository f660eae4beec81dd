"""STN-GPe model: beta in the Parkinsonian regime, DBS suppresses it.

The contract (chunking, seeds, batches, parameter checks) is in test_models_contract.py;
medication (the levodopa preset of the drug layer) in test_drug_presets.py.
"""

import os
import subprocess
import sys
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import signal
from scipy.optimize import fsolve

from closedloop.core.protocol import ModelDivergedError, check_finite
from closedloop.models import STNGPe

DT = 1e-4


def _beta(y, fs):
    f, p = signal.welch(y, fs=fs, nperseg=int(fs))
    band = (f >= 13) & (f <= 30)
    return f, p, p[..., band].sum(axis=-1)


def test_parkinsonian_regime_has_beta_peak_and_healthy_does_not():
    model = STNGPe(
        dt_s=DT, n=2, params={"w_CS": [20.0, 2.0], "w_GS": [10.0, 5.0], "w_SG": [10.0, 5.0]}
    )
    model.reset(3)
    model.advance(5000)
    y = model.advance(40000)[:, ::10]  # 1 kHz
    f, p, beta = _beta(y, 1000.0)
    peak = f[1:][np.argmax(p[0, 1:])]
    assert 13.0 <= peak <= 30.0, f"Parkinsonian spectral peak at {peak} Hz"
    assert beta[0] > 100 * beta[1]


def test_healthy_regime_is_quiet():
    model = STNGPe(dt_s=DT, n=1, regime="healthy")
    model.reset(0)
    model.advance(5000)
    y = model.advance(20000)[0, ::10]
    # A tonic STN rate at the fixed point of the documented equations with
    # the healthy regime's parameters (S = F_S(w_CS*C - w_GS*G),
    # G = F_G(w_SG*S - w_GG*G - Str); 21.5 spikes/s), solved independently.
    # The noise (sigma_S) spreads S by about 2 spikes/s; its 2 s mean stays
    # within 2 % (measured: 0.05 %).
    p = {name: par.value for name, par in STNGPe.parameters.items()}
    p.update(STNGPe.regimes["healthy"])

    def sigmoid(x, m, b):
        return m * b / (b + (m - b) * np.exp(-4.0 * x / m))

    def residual(z):
        s, g = z
        return [
            sigmoid(p["w_CS"] * p["C"] - p["w_GS"] * g, p["M_S"], p["B_S"]) - s,
            sigmoid(p["w_SG"] * s - p["w_GG"] * g - p["Str"], p["M_G"], p["B_G"]) - g,
        ]

    s_fixed, _ = fsolve(residual, [p["B_S"], p["B_G"]])
    assert y.mean() == pytest.approx(s_fixed, rel=0.02)
    assert y.std() < 5


def test_continuous_130hz_dbs_halves_beta_power(pulse_drive):
    n_steps = 40000
    train = pulse_drive(n_steps, DT, np.arange(0, n_steps * DT, 1 / 130.0), 2.5, 60e-6)
    drive = np.vstack([np.zeros(n_steps), train])
    model = STNGPe(dt_s=DT, n=2)  # same seed for both: only stimulation differs
    model.reset([np.random.SeedSequence(5)] * 2)
    model.advance(5000)
    y = model.advance(n_steps, drive)[:, 10000::10]
    _, _, beta = _beta(y, 1000.0)
    reduction = 1 - beta[1] / beta[0]
    assert reduction >= 0.5, f"beta reduced by only {reduction:.0%}"


def test_delays_must_be_whole_steps_of_dt():
    with pytest.raises(ValueError, match="T_CS"):
        STNGPe(dt_s=1e-3)  # 5.5 ms is not a whole number of 1 ms steps
    with pytest.raises(ValueError, match="'T_CS'.*whole number"):
        STNGPe(dt_s=DT, params={"T_CS": 5.55e-3})


# -- the equations, against an independent plain-numpy reference ------------------
#
# The reference follows the module docstring, not the kernel: full histories
# indexed by absolute step (values before the start equal the initial rates)
# instead of ring buffers, the sigmoid written as in the paper.


def _sigmoid_ref(x, m, b):
    """Nevado-Holgado et al. (2010): F(x) = M B / (B + (M - B) exp(-4 x / M))."""
    return m * b / (b + (m - b) * np.exp(-4.0 * x / m))


def _stn_gpe_ref(p, dt, drive, z=None):
    """Euler(-Maruyama) steps of the delayed STN-GPe equations for one parameter set.

    Parameters
    ----------
    p : dict
        Every STNGPe parameter, delays in s.
    dt : float
        Integration step, s.
    drive : ndarray, shape (n_steps,)
        Mean cathodic current per step, mA.
    z : ndarray, shape (n_steps, 2), optional
        Standard normal draws for the S and G noise of each step (required
        when ``sigma_S`` or ``sigma_G`` is not zero).

    Returns
    -------
    S, G, u : ndarray, shape (n_steps + 1,)
        The states at the start and after every step (S, G in spikes/s, u in mA).
    """
    if z is None:
        assert p["sigma_S"] == 0.0 and p["sigma_G"] == 0.0
        z = np.zeros((len(drive), 2))
    n_steps = len(drive)
    d = {k: round(p[f"T_{k}"] / dt) for k in ("SG", "GS", "GG", "CS")}
    for k, steps in d.items():
        assert abs(steps * dt - p[f"T_{k}"]) < 1e-12, f"T_{k} is not a whole number of steps"
    S = np.empty(n_steps + 1)
    G = np.empty(n_steps + 1)
    u = np.empty(n_steps + 1)
    S[0], G[0], u[0] = p["B_S"], p["B_G"], 0.0  # constant history at the baseline rates

    def delayed(x, n, steps):
        return x[max(n - steps, 0)]

    for n in range(n_steps):
        # Cortical input C is constant, so C(t - T_CS) = C: T_CS has no effect.
        w_gs, w_sg = p["w_GS"], p["w_SG"]
        in_s = p["w_CS"] * p["C"] - w_gs * delayed(G, n, d["GS"]) + p["g_DBS"] * u[n]
        in_g = w_sg * delayed(S, n, d["SG"]) - p["w_GG"] * delayed(G, n, d["GG"]) - p["Str"]
        ds = (_sigmoid_ref(in_s, p["M_S"], p["B_S"]) - S[n]) / p["tau_S"]
        dg = (_sigmoid_ref(in_g, p["M_G"], p["B_G"]) - G[n]) / p["tau_G"]
        du = (drive[n] - u[n]) / p["tau_DBS"]
        # Euler-Maruyama: a Wiener increment over dt has standard deviation sqrt(dt).
        S[n + 1] = max(S[n] + dt * ds + p["sigma_S"] * np.sqrt(dt) * z[n, 0], 0.0)
        G[n + 1] = max(G[n] + dt * dg + p["sigma_G"] * np.sqrt(dt) * z[n, 1], 0.0)
        u[n + 1] = u[n] + dt * du
    return S, G, u


QUIET = {"sigma_S": 0.0, "sigma_G": 0.0}
# Parameter sets chosen so that each planted equation bug shows: delays all
# different (a swap of any two changes the result) with T_CS the longest (the
# ring buffer is longer than every delay used), M_S != M_G, B_S != B_G, DBS on,
# and STN or
# GPe time constants shorter than dt so that the clipping of rates at 0 acts
# even without noise.
EQUATION_CASES = {
    "default_delays": {},
    "asymmetric_delays": {
        "T_SG": 7e-3, "T_GS": 3e-3, "T_GG": 1.5e-3, "T_CS": 9e-3,
        "M_S": 250.0, "B_S": 20.0, "M_G": 350.0, "B_G": 60.0, "w_GG": 8.0,
    },
    "reversed_delays": {
        "T_SG": 2e-3, "T_GS": 8e-3, "T_GG": 5e-3, "T_CS": 1e-3, "w_SG": 14.0,
    },
    "clipped_gpe": {"T_SG": 3e-3, "T_GS": 4e-3, "w_GG": 2.0},  # tau_G, T_GG set per dt
    "clipped_stn": {"T_SG": 2.5e-3, "T_GS": 1.5e-3, "w_GS": 40.0},  # tau_S set per dt
}  # fmt: skip


def _equation_drive(n_cases, n_steps, dt, pulse_drive):
    """A different, non-trivial stimulation per case: pulse trains plus slow ramps, mA."""
    rng = np.random.default_rng(11)
    t = np.arange(n_steps) * dt
    rows = []
    for i in range(n_cases):
        freq = 90.0 + 25.0 * i
        onsets = np.arange(0.03, n_steps * dt, 1 / freq)
        train = pulse_drive(n_steps, dt, onsets, 0.2 + 0.05 * i, 60e-6)
        ramp = 4e-4 * np.clip(np.sin(2 * np.pi * 7.0 * t + i), 0, None)
        rows.append(train + ramp + 1e-4 * rng.random(n_steps))
    return np.vstack(rows)


@pytest.mark.parametrize("dt", [1e-4, 5e-4])
def test_stn_gpe_matches_a_plain_numpy_reference_of_its_equations(dt, pulse_drive):
    cases = dict(EQUATION_CASES)  # every delay there is a whole number of 0.5 ms steps
    # Euler overshoots below zero when tau < dt: the rate is clipped in some steps.
    cases["clipped_gpe"] = {**cases["clipped_gpe"], "tau_G": 0.9 * dt, "T_GG": dt}
    cases["clipped_stn"] = {**cases["clipped_stn"], "tau_S": 0.7 * dt}
    names = list(cases)
    base = {**{k: p.value for k, p in STNGPe.parameters.items()}, **QUIET}
    sets = [{**base, **cases[k]} for k in names]
    params = {key: [s[key] for s in sets] for key in base}
    n_steps = round(0.3 / dt)  # 300 ms
    drive = _equation_drive(len(names), n_steps, dt, pulse_drive)

    model = STNGPe(dt_s=dt, n=len(names), params=params)
    model.reset(0)
    # Uneven chunks: the ring buffers wrap at different places within chunks.
    edges = [0, 7, 8, 138, 141, n_steps]
    got = np.hstack([model.advance(b - a, drive[:, a:b]) for a, b in pairwise(edges)])

    for i, name in enumerate(names):
        S, G, u = _stn_gpe_ref(sets[i], dt, drive[i])
        # Rounding differs (dt/tau * (F - x) there, dt * (F - x)/tau here): about
        # 1e-14 apart after 300 ms; overshooting Euler steps (tau < dt) amplify
        # it to about 1e-11. Planted equation bugs move S by far more.
        tol = {"rtol": 1e-9 if name.startswith("clipped") else 1e-12, "atol": 1e-9}
        np.testing.assert_allclose(got[i], S[1:], **tol, err_msg=name)
        np.testing.assert_allclose(model.state["x"][i], [S[-1], G[-1], u[-1]], **tol, err_msg=name)
        assert S.std() > 1.0, f"{name}: the reference is too quiet to test anything"
        if name.startswith("clipped"):
            rate = G if name == "clipped_gpe" else S
            assert np.mean(rate == 0.0) > 0.01, f"{name} no longer clips"


def test_noisy_batch_matches_the_reference_given_each_instances_draws(pulse_drive):
    # A batch of PARALLEL_MIN_BATCH runs the parallel kernel (the test above,
    # the serial one). Each instance draws from its own stream, per step the
    # S deviate (if sigma_S > 0) and then the G deviate (if sigma_G > 0);
    # the reference takes those draws, in that order, from a copy of the
    # streams and applies the documented Euler-Maruyama step. Noise on S only,
    # on G only and on both: a draw taken for a zero sigma shifts the rest.
    from closedloop.core.model import PARALLEL_MIN_BATCH
    from closedloop.core.random import normal, rng_states

    dt, n_steps, n = 1e-4, 400, PARALLEL_MIN_BATCH
    # The reversed case's GPe-to-STN delay is the batch's longest (12 ms, above
    # the asymmetric case's T_CS): the ring buffer is exactly long enough for it.
    cases = {
        **EQUATION_CASES,
        "reversed_delays": {**EQUATION_CASES["reversed_delays"], "T_GS": 12e-3},
    }
    names = list(cases)[:3]
    noise = [(25.0, 0.0), (0.0, 40.0), (60.0, 30.0), (10.0, 90.0)]
    base = {k: p.value for k, p in STNGPe.parameters.items()}
    sets = []
    for i in range(n):
        s_sigma, g_sigma = noise[i % len(noise)]
        sets.append({**base, **cases[names[i % len(names)]], "sigma_S": s_sigma,
                     "sigma_G": g_sigma})  # fmt: skip
    params = {key: [s[key] for s in sets] for key in base}
    drive = _equation_drive(n, n_steps, dt, pulse_drive)
    model = STNGPe(dt_s=dt, n=n, params=params)
    model.reset(3)
    got = np.hstack([model.advance(b - a, drive[:, a:b]) for a, b in pairwise([0, 45, n_steps])])

    streams = rng_states(np.random.SeedSequence(3).spawn(n))
    for i, p in enumerate(sets):
        z = np.zeros((n_steps, 2))
        for step in range(n_steps):
            for col, key in enumerate(("sigma_S", "sigma_G")):
                if p[key] > 0.0:
                    z[step, col] = normal(streams, i)
        S, G, u = _stn_gpe_ref(p, dt, drive[i], z)
        np.testing.assert_allclose(got[i], S[1:], rtol=1e-10, atol=1e-9, err_msg=str(i))
        np.testing.assert_allclose(
            model.state["x"][i], [S[-1], G[-1], u[-1]], rtol=1e-10, atol=1e-9, err_msg=str(i)
        )


@pytest.mark.slow
def test_the_equation_tests_pass_with_the_kernels_run_as_plain_python():
    # tests/mutation/stn_gpe_nojit.toml mutates the kernels without JIT: the
    # model must run as plain Python (its record as a recarray) and still
    # match the reference. NUMBA_DISABLE_JIT is read at import: a new process.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", __file__,
         "-k", "plain_numpy or noisy_batch"],
        env={**os.environ, "NUMBA_DISABLE_JIT": "1"},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    assert "3 passed" in result.stdout


@pytest.mark.parametrize("dt", [1e-4, 5e-4])
def test_noise_increment_has_variance_sigma_squared_dt(dt):
    # Euler-Maruyama: one step adds sigma * sqrt(dt) * N(0, 1) to each rate, so the
    # step with the deterministic part removed (the same step without noise) has
    # variance sigma^2 dt; sigma * dt would give sigma^2 dt^2, 1e3 to 1e4 times less.
    # n = 40000 draws: the sample variance's relative standard error is
    # sqrt(2 / n) = 0.7 %, so the 5 % tolerance is 7 standard errors (and the seed
    # is fixed, so the result cannot change from run to run).
    n, sigma_s, sigma_g = 40000, 30.0, 50.0
    noisy = STNGPe(dt_s=dt, n=n, params={"sigma_S": sigma_s, "sigma_G": sigma_g})
    quiet = STNGPe(dt_s=dt, n=n, params=QUIET)
    for model in (noisy, quiet):
        model.reset(7)
        model.advance(1, np.full((n, 1), 1e-3))
    step = noisy.state["x"][:, :2] - quiet.state["x"][:, :2]  # S and G noise
    assert np.all(noisy.state["x"][:, :2] > 0.0)  # no draw was clipped at 0
    expected = np.array([sigma_s, sigma_g]) ** 2 * dt
    np.testing.assert_allclose(step.var(axis=0), expected, rtol=0.05)
    assert np.all(np.abs(step.mean(axis=0)) < 5 * np.sqrt(expected / n))
    assert abs(np.corrcoef(step.T)[0, 1]) < 5 / np.sqrt(n)  # independent draws


# -- any admissible parameter value: rates never negative, overflow stays in its instance

_FREE = {k: p for k, p in STNGPe.parameters.items() if not p.whole_steps}  # delays: grid only


@st.composite
def _one_parameter(draw):
    name = draw(st.sampled_from(sorted(_FREE)))
    p = _FREE[name]
    low, high = max(p.minimum, 0.0), min(p.maximum, 1e308)
    return name, draw(st.floats(low, high, exclude_min=p.positive, allow_infinity=False))


@settings(max_examples=60, deadline=None)
@given(_one_parameter())
# Overflows found so far (the noise step and the sigmoid's M*B overflow): always tried.
@example(("sigma_S", 1e308))
@example(("sigma_G", 1e308))
@example(("M_S", 1e308))
@example(("M_G", 1e308))
@example(("tau_S", 5e-324))
def test_any_admissible_parameter_keeps_rates_non_negative_and_overflow_in_its_instance(case):
    name, value = case
    n_steps = 2000  # 0.2 s
    default = STNGPe.parameters[name].value
    model = STNGPe(dt_s=DT, n=2, params={name: [default, value]})
    model.reset(0)
    drive = np.full((2, n_steps), 5e-4)
    y = model.advance(n_steps, drive)
    assert not np.any(y < 0.0)  # NaN is not negative: the loop reports it (below)
    # Instance 0 (default values) is untouched by whatever instance 1 does.
    alone = STNGPe(dt_s=DT, n=1, params={name: default})
    alone.reset([np.random.SeedSequence(0).spawn(2)[0]])
    np.testing.assert_array_equal(y[0], alone.advance(n_steps, drive[:1])[0])
    if not np.all(np.isfinite(y)):
        with pytest.raises(ModelDivergedError) as info:
            check_finite(y, 0.0, DT)
        assert info.value.instance == 1


def test_bursty_regime_gives_published_burst_statistics_and_medication_shortens_them():
    # Tinkhauser et al. 2017a, b: threshold at the 75th percentile of the beta
    # envelope OFF medication (common to OFF and ON), bursts of at least
    # 100 ms; OFF, most bursts last 100-200 ms, the count falls with duration
    # and long bursts (here >= 400 ms) are more frequent than ON. Four seeds,
    # 60 s each, OFF (the ``parkinsonian`` regime) and medicated.
    from closedloop.analysis.bursts import (
        burst_statistics,
        burst_threshold,
        detect_bursts,
        duration_histogram,
        offline_envelope,
    )

    off, on = STNGPe.regimes["parkinsonian"], STNGPe.regimes["parkinsonian_medicated"]
    params = {k: [off[k]] * 4 + [on[k]] * 4 for k in off}
    model = STNGPe(dt_s=DT, n=8, params=params)
    model.reset([np.random.SeedSequence(s) for s in (1, 2, 3, 4) * 2])
    model.advance(5000)
    y = model.advance(600_000)[:, ::10]  # 60 s at 1 kHz
    f, p, _ = _beta(y[:4], 1000.0)
    peak = f[1:][np.argmax(p[:, 1:].mean(axis=0))]
    assert 13.0 <= peak <= 30.0, f"spectral peak at {peak} Hz"
    env = offline_envelope(y, 1000.0, (13.0, 30.0), order=2)
    thr = np.tile(burst_threshold(env[:4], 75.0), 2)  # the OFF threshold for both
    bursts = detect_bursts(env, 1000.0, thr, 0.1)
    stats = burst_statistics(bursts, 60.0, 0.4)
    d_off = np.concatenate([b.duration_s for b in bursts[:4]])
    d_on = np.concatenate([b.duration_s for b in bursts[4:]])
    counts = duration_histogram(bursts[:4]).sum(axis=0)
    # OFF: about one burst per second, mostly short, the count falling with
    # duration, some long ones.
    assert np.all((stats["rate_hz"][:4] > 0.5) & (stats["rate_hz"][:4] < 1.5))
    assert 0.15 < d_off.mean() < 0.35
    assert counts[0] > counts[1] > counts[2] > counts[3] > 0
    assert np.mean(d_off >= 0.4) > 0.04
    # Seeded model values (mean 0.228 s, 8.4 % of bursts >= 400 ms), pinned.
    assert d_off.mean() == pytest.approx(0.228, abs=0.005)
    assert np.mean(d_off >= 0.4) == pytest.approx(0.084, abs=0.005)
    # Medicated, same threshold: far fewer bursts, shorter, fewer long ones,
    # and less time in long bursts.
    assert d_on.size < d_off.size / 3
    assert d_on.mean() < d_off.mean()
    assert np.mean(d_on >= 0.4) < np.mean(d_off >= 0.4) / 2
    assert stats["long_time_fraction"][4:].mean() < stats["long_time_fraction"][:4].mean() / 5
