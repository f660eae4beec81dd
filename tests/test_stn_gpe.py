"""STN-GPe model: beta in the Parkinsonian regime, DBS and medication suppress it.

The contract (chunking, seeds, batches, parameter checks) is in test_models_contract.py.
"""

import numpy as np
import pytest
from scipy import signal

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
    assert 5 < y.mean() < 60  # a tonic, physiological STN rate, spikes/s
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


def test_medication_dose_suppresses_beta_while_it_acts():
    model = STNGPe(
        dt_s=DT,
        n=1,
        params={"med_depth": 0.8, "med_onset_s": 2.0, "med_rise_s": 0.3, "med_decay_s": 2.0},
    )
    model.reset(0)
    y = model.advance(80000)[0, ::10]  # 8 s at 1 kHz
    before = y[1000:2000]  # 1-2 s: no drug yet
    peak = y[2800:3800]  # around the peak effect
    late = y[7000:8000]  # largely worn off
    assert before.std() > 5 * peak.std()
    assert late.std() > 2 * peak.std()
