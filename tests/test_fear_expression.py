"""The PTSD readout: per-CS fear index, extinction speed and renewal of a session."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from closedloop.config import ConfigError, load_config, validate_config
from closedloop.experiment import run_experiment


def _session(tmp_path, amplitude_ma, duration_s=3.2, **params):
    exp = load_config(
        "experiments/fear_extinction_open_loop.yaml",
        [
            "fear_expression={period_s: 0.05}",
            "output.figure=false",
            f"duration_s={duration_s}",
            "output.record_baseline=false",
            f"controller.params.amplitude_ma={amplitude_ma}",
            *(f"model.params.{k}={v}" for k, v in params.items()),
        ],
    )
    return run_experiment(exp, tmp_path / f"a{amplitude_ma}")


def test_session_outcomes_match_the_models_per_cs_responses(tmp_path):
    """Five extinction CS without stimulation: B overtakes A at none of them (it takes
    six, as the mean-field figure shows), and fear is renewed back in context A."""
    out = _session(tmp_path, 0.0)
    with h5py.File(out.path) as f:
        cs = {
            k: f[f"events/fear_cs/{k}"][:]
            for k in ("trial", "phase", "fear_index", "rate_fear", "rate_extinction")
        }
        index = f["timeseries/fear_index"][0]
        assert f["timeseries/fear_index"].attrs["units"] == "%"
    np.testing.assert_array_equal(cs["trial"], np.arange(1, 12))
    np.testing.assert_array_equal(cs["phase"], [0] * 5 + [1] * 5 + [2])
    np.testing.assert_allclose(
        cs["fear_index"], 100 * cs["rate_fear"] / (cs["rate_fear"] + cs["rate_extinction"])
    )
    # Conditioning: pure fear grows; the first CS's rate is the published 0.107.
    assert cs["rate_fear"][0] == pytest.approx(0.107, abs=0.005)
    assert np.all(np.diff(cs["rate_fear"][:5]) > 0)
    m = out.metrics
    assert np.isnan(m["fear_extinction_trials"][0])  # not extinguished within 5 CS
    assert m["fear_index_end_extinction"][0] == pytest.approx(cs["fear_index"][9])
    assert m["fear_renewal_index"][0] > 50.0  # renewal: fear returns in context A
    assert index[-1] == pytest.approx(cs["fear_index"][-1])


def test_stimulating_the_infralimbic_node_speeds_extinction_and_blocks_renewal(tmp_path):
    none = _session(tmp_path, 0.0, duration_s=3.8, n_extinction=8).metrics
    stim = _session(tmp_path, 1.0, duration_s=3.8, n_extinction=8).metrics
    assert none["fear_extinction_trials"][0] == 6  # the mean-field figure's sixth CS
    assert stim["fear_extinction_trials"][0] < 6
    assert stim["fear_renewal_index"][0] < none["fear_renewal_index"][0]


def test_fear_expression_needs_a_fear_model():
    with pytest.raises(ConfigError) as info:
        validate_config(
            {
                "name": "x",
                "duration_s": 1.0,
                "model": {"name": "wilson_cowan"},
                "fear_expression": {"period_s": 0.05},
            }
        )
    assert "fear_expression" in str(info.value) and "fear_extinction" in str(info.value)
