"""Kuramoto ensemble: analytic order parameter, PRC kicks, ensemble sizes, its own checks.

The contract (chunking, seeds, batches, like(), parameter checks) is in
test_models_contract.py, with and without a coupling matrix.
"""

import math

import numpy as np
import pytest

from closedloop.models import BUILTIN_MODELS, KuramotoEnsemble


def _mean_r(model: KuramotoEnsemble, transient_steps: int, samples: int, every: int) -> np.ndarray:
    """Order parameter per instance, averaged over ``samples`` states after a transient."""
    model.advance(transient_steps)
    total = np.zeros(model.n)
    for _ in range(samples):
        model.advance(every)
        total += model.order_parameter()[0]
    return total / samples


def test_order_parameter_matches_the_lorentzian_analytic_result():
    # Kuramoto (1975): with Lorentzian natural frequencies of angular
    # half-width g, r = sqrt(1 - K_c/K) above K_c = 2 g and r = 0 below, for
    # N -> infinity. With N = 2000 random frequencies per ensemble the sample
    # of frequencies itself moves r by up to about 0.04 from one ensemble to
    # the next (measured over seeds), so each ensemble is held to 0.07 and the
    # mean of three to 0.03. Below K_c, r is a finite-size fluctuation of
    # order 1/sqrt(N) = 0.022. Ensembles above K_c start in phase, so that
    # r relaxes to its value within the 0.7 s left out.
    gamma_hz = 1.0
    k_c = 2 * (2 * math.pi * gamma_hz)
    ratios = np.repeat([0.5, 1.5, 2.0, 4.0], 3)
    model = KuramotoEnsemble(
        dt_s=1e-3,
        n=ratios.size,
        params={"n_oscillators": 2000, "gamma_hz": gamma_hz, "K": ratios * k_c},
    )
    model.reset(7)
    model.state["z"][3:] = [1.0, 0.0]
    r = _mean_r(model, transient_steps=700, samples=25, every=100).reshape(4, 3)
    assert np.all(r[0] < 3 / math.sqrt(2000)), f"below K_c: r = {r[0]}"
    for ratio, r_k in zip((1.5, 2.0, 4.0), r[1:], strict=True):
        expected = math.sqrt(1 - 1 / ratio)
        assert abs(r_k.mean() - expected) < 0.03, f"K = {ratio} K_c: r = {r_k}, {expected:.3f}"
        assert np.all(np.abs(r_k - expected) < 0.07), f"K = {ratio} K_c: r = {r_k}"


def test_stuart_landau_regime_synchronises_like_its_phase_reduction():
    model = KuramotoEnsemble(dt_s=1e-4, n=2, params={"n_oscillators": 1000}, regime="stuart_landau")
    model.reset(1)
    model.state["z"][:] = [1.0, 0.0]  # start in phase: r relaxes within 0.5 s
    r = _mean_r(model, transient_steps=5000, samples=10, every=500)
    expected = math.sqrt(1 - 4 * math.pi / 25.0)  # K = 25 rad/s, gamma = 1 Hz
    assert np.all(np.abs(r - expected) < 0.05), f"r = {r}, phase model: {expected:.3f}"
    # Amplitudes stay near the limit cycle |z| = 1: the diffusive coupling
    # pulls a locked oscillator in by about K (1 - r) / (2 lambda_sl) = 0.04.
    amplitude = np.abs(model.state["z"] @ [1, 1j])
    assert 0.93 < amplitude.mean() < 0.99 and amplitude.min() > 0.7


@pytest.mark.parametrize(("stuart_landau", "shift"), [(0.0, 0.0), (0.0, 1.0), (1.0, 0.7)])
def test_a_pulse_moves_the_order_parameter_as_the_prc_predicts(stuart_landau, shift):
    # A kick eps = g_stim * Q (rad) through Z(theta) = -sin(theta - beta)
    # changes Z = <exp(i theta)> by (eps/2)(exp(i beta) - Z2 exp(-i beta)) to
    # first order, Z2 = <exp(2 i theta)> (on the Ott-Antonsen manifold:
    # dr = (eps/2)(1 - r^2) cos(psi - beta)); a Stuart-Landau ensemble is
    # pushed by eps * exp(i beta) as a whole. Compared with the same ensemble
    # without the pulse, and rotated by the step's mean natural rotation.
    dt = 1e-4
    params = {"n_oscillators": 1000, "stuart_landau": stuart_landau, "prc_shift_rad": shift}
    kicked, free = (KuramotoEnsemble(dt_s=dt, n=1, params=params) for _ in range(2))
    for m in (kicked, free):
        m.reset(2)
        m.state["z"][:] = [1.0, 0.0]
        m.advance(5000)
    z = kicked.state["z"][0, :, 0] + 1j * kicked.state["z"][0, :, 1]
    current_ma = 0.05  # over one step: 5 nC of charge
    eps = kicked.param_values["g_stim"][0] * current_ma * dt  # rad
    kicked.advance(1, np.array([[current_ma]]))
    free.advance(1)
    dz = np.mean(kicked.state["z"][0] @ [1, 1j]) - np.mean(free.state["z"][0] @ [1, 1j])
    if stuart_landau:
        predicted = eps * np.exp(1j * shift)
    else:
        predicted = eps / 2 * (np.exp(1j * shift) - np.mean(z**2) * np.exp(-1j * shift))
    predicted *= np.exp(2j * math.pi * 20.0 * dt)
    assert abs(dz - predicted) < 0.02 * abs(predicted), f"{dz} against {predicted}"


def test_all_ones_matrix_is_the_mean_field_coupling():
    params = {"n_oscillators": 60}
    a = KuramotoEnsemble(dt_s=1e-4, n=2, params=params)
    b = KuramotoEnsemble(dt_s=1e-4, n=2, params=params, coupling_matrix=np.ones((2, 60, 60)))
    a.reset(5)
    b.reset(5)
    np.testing.assert_allclose(b.advance(3000), a.advance(3000), rtol=0, atol=1e-9)


def test_instances_may_have_different_sizes():
    m = KuramotoEnsemble(dt_s=1e-3, n=2, params={"n_oscillators": [10, 300]})
    m.reset(0)
    m.advance(5000)
    r, _ = m.order_parameter()
    assert m.state["z"].shape == (2, 300, 2)
    assert 0 <= r[0] <= 1
    # The large one synchronises to Kuramoto's r = sqrt(1 - K_c/K) (default
    # K = 25 rad/s, K_c = 4 pi rad/s: 0.705), give or take the ensemble-to-
    # ensemble spread of 0.04 measured at N = 2000, scaled to N = 300 (0.1).
    # With this seed's frequencies, r is 0.739 (at commit 9a7b9dd), pinned
    # within 0.02 (a coupling 25 % too weak gives about 0.62).
    assert abs(r[1] - math.sqrt(1 - 4 * math.pi / 25.0)) < 0.1, r[1]
    assert r[1] == pytest.approx(0.739, abs=0.02)


def test_registered_and_declares_units():
    assert BUILTIN_MODELS["kuramoto"] is KuramotoEnsemble
    described = KuramotoEnsemble(n=1).describe()
    assert described["signal"]["units"] == "1"
    assert described["parameters"]["K"]["units"] == "rad/s"
    assert described["parameters"]["gamma_hz"]["units"] == "Hz"


# Refusals beyond the declared ranges that test_models_contract.py checks.
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"params": {"n_oscillators": 2.5}}, "'n_oscillators'.*whole number"),
        ({"params": {"stuart_landau": 0.5}}, "'stuart_landau'"),
        ({"params": {"K": 1e4}}, "'K'.*too large"),
        ({"params": {"stuart_landau": 1.0, "lambda_sl": 1e4}}, "'lambda_sl'"),
        ({"coupling_matrix": np.ones((3, 3))}, "coupling_matrix.*shape"),
        ({"coupling_matrix": np.full((200, 200), np.nan)}, "coupling_matrix"),
    ],
)
def test_bad_parameters_are_refused_with_their_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        KuramotoEnsemble(dt_s=1e-4, n=2, **kwargs)
