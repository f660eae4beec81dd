"""Neurofeedback: what the display shows and asks. The haemodynamic display
(fMRI): the response function against its definition and what the blur does
to learning; the instructed direction (up-regulation)."""

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from closedloop.config import load_config
from closedloop.experiment import run_experiment
from closedloop.io import load_run
from closedloop.neurofeedback.process import hrf_weights

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "neurofeedback_amygdala.yaml"
REAL_ONLY = ["output.figure=false", "n_instances=8", "neurofeedback.sham.instances=0"]


def test_hrf_is_the_canonical_double_gamma():
    # Independent definition: scipy's gamma densities (shape 6 and 16, scale 1 s).
    for frame_s in (0.5, 1.0, 2.0):
        t = np.arange(0.0, 32.0 + 1e-9, frame_s)
        ref = stats.gamma.pdf(t, 6) - stats.gamma.pdf(t, 16) / 6.0
        np.testing.assert_allclose(hrf_weights(frame_s), ref / ref.sum(), rtol=1e-10, atol=1e-15)
    h = hrf_weights(0.5)
    assert np.argmax(h) * 0.5 == pytest.approx(5.0)  # peak 5 s after the activity
    assert 13.0 <= np.argmin(h) * 0.5 <= 17.0 and h.min() < 0  # the undershoot


@pytest.mark.slow
def test_the_haemodynamic_blur_defeats_a_subject_who_switches_every_frame(tmp_path):
    # The display lags about 5 s and mixes several frames (Oblak et al. 2017's
    # delayed and blurred signal): a subject changing strategy every 1 s frame
    # learns nothing; one holding it through the 10 s block learns.
    def last(name, *overrides):
        exp = load_config(EXPERIMENT, [*REAL_ONLY, f"name={name}",
                                       "neurofeedback.hemodynamic=true", *overrides])  # fmt: skip
        return load_run(run_experiment(exp, tmp_path).path).metrics["nf_regulation_last_pct"]

    switching = last("s")
    held = last("h", "neurofeedback.hold_s=10")
    assert switching.mean() > -8.0
    assert held.mean() < -10.0
    assert held.mean() < switching.mean() - 5.0


@pytest.mark.slow
def test_an_up_regulating_subject_learns_the_opposite_strategy(tmp_path):
    # direction: up rewards a rise: the subject comes to prefer action 0, the
    # one that lowers theta (-0.25, about +8 % on the biomarker: the only one
    # that raises it), and its regulation moves up from the random-policy level.
    sets = [*REAL_ONLY, "name=up", "neurofeedback.direction=up"]
    run = load_run(run_experiment(load_config(EXPERIMENT, sets), tmp_path).path)
    assert run.metrics["nf_regulation_last_pct"].mean() > 0.0
    assert run.metrics["nf_learning_pct"].mean() > 4.0
    p_final = np.stack([run.timeseries[f"nf_p_action{k}"][:, -1] for k in range(4)])
    assert np.mean(np.argmax(p_final, axis=0) == 0) >= 0.75
