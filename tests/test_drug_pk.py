"""Drug layer PK/PD against analytic solutions (closedloop.drugs.pk, closedloop.drugs.pd)."""

import math

import numpy as np
import pytest

from closedloop.drugs.pd import adapt, hill
from closedloop.drugs.pk import Compartments, PKParameters, bateman
from closedloop.drugs.process import DrugLayer, DrugSpec

H = 3600.0


def _params(n=1, **kw):
    base = {
        "ka_per_h": 1.2,
        "cl_l_per_h": 10.0,
        "v1_l": 50.0,
        "q_l_per_h": 0.0,
        "v2_l": 1.0,
        "bioavailability": 0.8,
        "ke0_per_h": 0.9,
    }
    base.update(kw)
    return PKParameters(
        **{k: np.broadcast_to(np.asarray(v, float), (n,)).copy() for k, v in base.items()}
    )


def _rel(a, b):
    return np.max(np.abs(np.asarray(a) / np.asarray(b) - 1.0))


def test_oral_one_compartment_is_the_bateman_function_whatever_the_steps():
    # Per-instance absorption and clearance; steps from 0.1 s to 7 h, uneven.
    ka = np.array([0.3, 1.2, 4.0])
    cl = np.array([5.0, 10.0, 30.0])
    c = Compartments(_params(3, ka_per_h=ka, cl_l_per_h=cl))
    c.dose(np.full(3, 200.0), np.ones(3, bool))
    t = 0.0
    for h in (0.1, 59.9, 1800.0, 7 * H, 123.4, 3 * H):
        c.advance(h)
        t += h
        ref = [bateman(t / H, 200.0, 0.8, ka[i], cl[i] / 50.0, 50.0) for i in range(3)]
        assert _rel(c.plasma_ng_ml, ref) < 1e-9


def test_iv_bolus_effect_site_matches_its_closed_form():
    # Ce(t) = C0 ke0/(ke0 - k) (exp(-k t) - exp(-ke0 t)) (Sheiner et al. 1979).
    c = Compartments(_params(ke0_per_h=2.5))
    c.dose(np.array([100.0]), np.zeros(1, bool))
    k, ke0, c0 = 10.0 / 50.0, 2.5, 1000.0 * 100.0 / 50.0
    for t_h in (0.25, 1.0, 6.0):
        c.advance(t_h * H - (0.0 if t_h == 0.25 else {1.0: 0.25, 6.0: 1.0}[t_h] * H))
        ref = c0 * ke0 / (ke0 - k) * (math.exp(-k * t_h) - math.exp(-ke0 * t_h))
        assert _rel(c.effect_site_ng_ml, [ref]) < 1e-9
        assert _rel(c.plasma_ng_ml, [c0 * math.exp(-k * t_h)]) < 1e-9


def test_two_compartment_bolus_is_biexponential_and_infusion_reaches_r_over_cl():
    v1, v2, cl, q = 11.4, 27.3, 30.9, 34.6  # Chan, Nutt & Holford 2005 (levodopa)
    p = _params(v1_l=v1, v2_l=v2, cl_l_per_h=cl, q_l_per_h=q)
    k10, k12, k21 = cl / v1, q / v1, q / v2
    s = k10 + k12 + k21
    alpha = (s + math.sqrt(s * s - 4 * k10 * k21)) / 2
    beta = (s - math.sqrt(s * s - 4 * k10 * k21)) / 2
    c0 = 1000.0 * 50.0 / v1
    a_coef = c0 * (alpha - k21) / (alpha - beta)
    b_coef = c0 * (k21 - beta) / (alpha - beta)
    c = Compartments(p)
    c.dose(np.array([50.0]), np.zeros(1, bool))
    t = 0.0
    for h in (600.0, 1234.5, 2 * H, 5 * H):
        c.advance(h)
        t += h / H
        assert (
            _rel(c.plasma_ng_ml, [a_coef * math.exp(-alpha * t) + b_coef * math.exp(-beta * t)])
            < 1e-9
        )
    # Terminal half-life of these parameters, h: about 1.3 (1.5 h is the usual figure).
    assert math.log(2) / beta == pytest.approx(1.31, abs=0.01)
    inf = Compartments(p)
    inf.infusion_mg_per_h[:] = 70.0
    inf.advance(48 * H)
    assert _rel(inf.plasma_ng_ml, [1000.0 * 70.0 / cl]) < 1e-9


def _layer(doses, period_s, n=1, **pk):
    spec = DrugSpec(
        name="d",
        pk=_params(n, **pk),
        emax=np.ones(n),
        ec50_ng_ml=np.ones(n),
        hill=np.ones(n),
        adaptation_tau_s=None,
        drive="effect",
        doses=doses,
    )
    layer = DrugLayer([spec], period_s)
    layer.reset(n, [])
    return layer


def _run(layer, until_s):
    out = []
    t = 0.0
    while t < until_s - 1e-9:
        t += layer.period_s
        layer.advance(t, layer.period_s, {})
        out.append(layer.values()["d_plasma_ng_ml"][0])
    return np.array(out)


def test_repeated_oral_doses_superpose_bateman_curves_at_any_step():
    # Doses off the step grid, one of a different size.
    doses = [(0.0, 100.0, True), (5.3 * H, 100.0, True), (11.0 * H + 17.0, 50.0, True)]
    for period in (420.0, 3600.0):
        got = _run(_layer(doses, period), 24 * H)
        t = np.arange(1, len(got) + 1) * period
        ref = sum(
            bateman(np.maximum(t - td, 0.0) / H, a, 0.8, 1.2, 0.2, 50.0) for td, a, _ in doses
        )
        assert _rel(got, ref) < 1e-9


def test_accumulation_ratio_of_repeated_boluses():
    # Just after the n-th bolus every tau: C0 (1 - r^n)/(1 - r), r = exp(-k tau),
    # -> the accumulation ratio 1/(1 - exp(-k tau)) at steady state.
    k, tau_h, n_doses = 10.0 / 50.0, 6.0, 30
    doses = [(i * tau_h * H, 80.0, False) for i in range(n_doses)]
    layer = _layer(doses, 60.0)
    peaks = []
    for j in range(n_doses):
        t_dose = j * tau_h * H
        if t_dose > layer.t_s_:  # up to the dose (a step of any length), then one minute
            layer.advance(t_dose, t_dose - layer.t_s_, {})
        layer.advance(t_dose + 60.0, 60.0, {})
        peaks.append(layer.values()["d_plasma_ng_ml"][0] * math.exp(k * 60.0 / H))
    peaks = np.array(peaks) / peaks[0]
    r = math.exp(-k * tau_h)
    n = np.arange(1, n_doses + 1)
    assert _rel(peaks, (1 - r**n) / (1 - r)) < 1e-9
    assert peaks[-1] == pytest.approx(1 / (1 - r), rel=1e-9 + r**n_doses)


def test_hill_and_adaptation():
    assert hill(np.array([0.0, 2.0, 1e9]), 0.85, 2.0, 1.0) == pytest.approx([0.0, 0.425, 0.85])
    # Constant E: A relaxes exponentially; linear E: the exact ramp solution.
    tau = 7 * 86400.0
    a = adapt(np.zeros(1), np.ones(1), np.ones(1), tau, np.array([tau]))
    assert a[0] == pytest.approx(1 - math.exp(-1), rel=1e-12)
    h = 3600.0
    a = adapt(np.zeros(1), np.zeros(1), np.ones(1), h, np.array([tau]))
    x = h / tau
    assert a[0] == pytest.approx(1 - (1 - math.exp(-x)) / x, rel=1e-9)


def test_small_matrix_exponential_matches_scipy():
    from scipy.linalg import expm

    from closedloop.drugs.pk import expm_small

    rng = np.random.default_rng(5)
    a = rng.normal(size=(6, 5, 5)) * np.array([1e-3, 0.1, 1.0, 10.0, 100.0, 0.0])[:, None, None]
    got = expm_small(a)
    for k in range(6):
        ref = expm(a[k])
        assert np.max(np.abs(got[k] - ref)) <= 1e-12 * max(1.0, np.max(np.abs(ref)))


def test_scheduled_infusion_inside_long_steps_is_exact():
    # One compartment, 70 mg/h from 0.5 h to 2.5 h, hourly slow steps (the
    # infusion starts and stops inside a step): C = R/CL (1 - exp(-k t)), then decay.
    spec = DrugSpec(
        name="d",
        pk=_params(),
        emax=np.ones(1),
        ec50_ng_ml=np.ones(1),
        hill=np.ones(1),
        adaptation_tau_s=None,
        drive="effect",
        infusions=[(0.5 * H, 2.5 * H, 70.0)],
    )
    layer = DrugLayer([spec], H)
    layer.reset(1, [])
    got = _run(layer, 6 * H)
    k, cl = 10.0 / 50.0, 10.0
    t = np.arange(1, 7) - 0.5  # h since the start of the infusion
    during = 1000.0 * 70.0 / cl * (1 - np.exp(-k * np.minimum(t, 2.0)))
    ref = during * np.exp(-k * np.maximum(t - 2.0, 0.0))
    assert _rel(got, ref) < 1e-9


def test_per_instance_parameters_from_the_config():
    from closedloop.config import validate_config

    raw = {
        "name": "cohort",
        "duration_s": 1.0,
        "n_instances": 3,
        "model": {"name": "stn_gpe", "dt_s": 1e-4},
        "controller": {"name": "open_loop", "params": {"amplitude_ma": 0.0}},
        "drugs": {"period_s": 1.0, "agents": {"ldopa": {
            "preset": "levodopa", "pk": {"v1_l": [8.0, 11.4, 16.0]}}}},
    }  # fmt: skip
    layer = validate_config(raw).loop.slow[0]
    layer.reset(3, [])
    layer.command(0.0, {"dose_ldopa_mg": np.array([100.0, 100.0, 100.0])})
    layer.advance(600.0, 600.0, {})
    c = layer.values()["ldopa_plasma_ng_ml"]
    assert c[0] > c[1] > c[2] > 0  # early on, a smaller central volume: a higher level
    assert np.array_equal(layer.drugs[0].pk.cl_l_per_h, [30.9, 30.9, 30.9])  # preset elsewhere
