"""Drift over days: encapsulation, progression, circadian factors, and their effect on a run."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from closedloop.config import ConfigError, validate_config
from closedloop.drift import DAY_S, Drift, DriftTerm
from closedloop.experiment import run_experiment


def _drift(*terms, n=2):
    base = {"g_E": np.array([1.0, 2.0]), "g_I": np.array([4.0, 8.0]), "c2": np.array([12.0, 12.0])}
    d = Drift([DriftTerm.model_validate(t) for t in terms], base)
    d.reset(n, np.random.SeedSequence(0).spawn(n))
    return d


def test_each_term_follows_its_time_course():
    d = _drift(
        {
            "kind": "encapsulation",
            "params": ["g_E", "g_I"],
            "c_inf": [0.5, 0.8],
            "tau_s": 5 * DAY_S,
        },
        {"kind": "progression", "params": ["c2"], "rate_per_day": 0.01},
        {"kind": "circadian", "params": ["g_E"], "amplitude": 0.2, "peak_s": 6 * 3600.0},
    )
    t = 7.25 * DAY_S
    d.advance(t, 3600.0, {})
    c = np.array([0.5, 0.8]) + (1 - np.array([0.5, 0.8])) * np.exp(-7.25 / 5)
    circ = 1 + 0.2 * np.cos(2 * np.pi * (t - 6 * 3600.0) / DAY_S)
    m = d.modulation()
    np.testing.assert_allclose(m["g_E"], np.array([1.0, 2.0]) * c * circ, rtol=1e-12)
    np.testing.assert_allclose(m["g_I"], np.array([4.0, 8.0]) * c, rtol=1e-12)
    np.testing.assert_allclose(m["c2"], 12.0 * (1 + 0.01 * 7.25), rtol=1e-12)
    values = d.values()
    np.testing.assert_allclose(values["encapsulation_0"], c, rtol=1e-12)
    np.testing.assert_allclose(values["progression_1"], 0.0725, rtol=1e-12)


def _experiment(**extra):
    raw = {
        "name": "drift",
        "duration_s": 30 * DAY_S,
        "model": {"name": "wilson_cowan", "params": {"sigma_E": 0.05}},
        "control": {"period_s": 0.01},
        "controller": {"name": "open_loop", "params": {"amplitude_ma": 1.0}},
        "drift": {
            "period_s": 3600.0,
            "terms": [
                {
                    "kind": "encapsulation",
                    "params": ["g_E", "g_I"],
                    "c_inf": 0.5,
                    "tau_s": 5 * DAY_S,
                }
            ],
        },
        "slow": {"epoch_s": 2.0, "every_s": DAY_S},
        "output": {"figure": False, "chunk_s": 2.0},
    }
    raw.update(extra)
    return raw


def test_stimulation_tuned_on_day_one_loses_efficacy_under_encapsulation(tmp_path):
    """Continuous 1 mA stimulation holds the beta biomarker down on day 1; as the coupling
    falls to half over the first weeks, the same setting leaves it much higher.

    Thirty days of slow time with a 2 s neural epoch per day (60 s of neural time).
    """
    out = run_experiment(validate_config(_experiment()), tmp_path)
    with h5py.File(out.path) as f:
        biomarker = f["timeseries/biomarker"][0].reshape(30, -1)
        coupling = f["timeseries/drift_encapsulation_0"][0]
        assert coupling.shape == (30 * 24 + 1,)
        np.testing.assert_allclose(coupling[-1], 0.5 + 0.5 * np.exp(-6.0), rtol=1e-12)
    # Second half of each day's epoch (past the start's transient).
    daily = biomarker[:, biomarker.shape[1] // 2 :].mean(axis=1)
    assert daily[-1] > 1.8 * daily[1]  # measured 2.4x with 1 h epochs
    unstimulated = run_experiment(
        validate_config(
            _experiment(
                name="nostim", controller={"name": "open_loop", "params": {"amplitude_ma": 0.0}}
            )
        ),
        tmp_path,
    )
    with h5py.File(unstimulated.path) as f:
        free = f["timeseries/biomarker"][0].reshape(30, -1)
    free_daily = free[:, free.shape[1] // 2 :].mean(axis=1)
    # Without stimulation encapsulation changes nothing: the drift acts on coupling only.
    np.testing.assert_allclose(free_daily[-1], free_daily[1], rtol=0.3)


@pytest.mark.parametrize(
    ("drift", "key"),
    [
        ({"terms": [{"kind": "encapsulation", "params": ["tau_E"]}]}, "drift.terms.0.params"),
        ({"terms": [{"kind": "sideways", "params": ["g_E"]}]}, "drift.terms.0.kind"),
        ({"terms": []}, "drift.terms"),
        ({"terms": [{"kind": "circadian", "params": ["g_E"], "amplitude": 1.5}]}, "drift"),
    ],
)
def test_bad_drift_blocks_name_the_key(drift, key):
    with pytest.raises(ConfigError) as info:
        validate_config(_experiment(drift=drift))
    assert key in str(info.value)
