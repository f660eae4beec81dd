"""STN-GPe model: beta in the Parkinsonian regime, DBS suppresses it, chunk invariance."""

import numpy as np
import pytest
from scipy import signal

from closedloop.models import STNGPe

DT = 1e-4


def _beta(y, fs):
    f, p = signal.welch(y, fs=fs, nperseg=int(fs))
    band = (f >= 13) & (f <= 30)
    return f, p, p[..., band].sum(axis=-1)


def _pulse_train(n_steps, amplitude_ma, frequency_hz=130.0, width_s=60e-6):
    """Average cathodic current per step of a pulse train (what the device sends)."""
    onsets = np.arange(0, n_steps * DT, 1.0 / frequency_hz)
    drive = np.zeros(n_steps)
    idx = np.floor(onsets / DT + 1e-9).astype(int)
    covered = np.minimum(width_s, (idx + 1) * DT - onsets)
    drive[idx] += amplitude_ma * covered / DT
    spill = width_s - covered
    nxt = idx + 1 < n_steps
    drive[idx[nxt] + 1] += amplitude_ma * spill[nxt] / DT
    return drive


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


def test_continuous_130hz_dbs_halves_beta_power():
    n_steps = 40000
    drive = np.vstack([np.zeros(n_steps), _pulse_train(n_steps, 2.5)])
    model = STNGPe(dt_s=DT, n=2)  # same seed for both: only stimulation differs
    model.reset([np.random.SeedSequence(5)] * 2)
    model.advance(5000)
    y = model.advance(n_steps, drive)[:, 10000::10]
    _, _, beta = _beta(y, 1000.0)
    reduction = 1 - beta[1] / beta[0]
    assert reduction >= 0.5, f"beta reduced by only {reduction:.0%}"


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_chunked_advance_equals_one_call(chunk):
    n_steps = 3000
    rng = np.random.default_rng(0)
    drive = rng.uniform(0, 2, size=(3, n_steps))
    whole = STNGPe(dt_s=DT, n=3)
    whole.reset(11)
    y_whole = whole.advance(n_steps, drive)
    parts = STNGPe(dt_s=DT, n=3)
    parts.reset(11)
    pieces = [
        parts.advance(min(chunk, n_steps - s), drive[:, s : s + chunk])
        for s in range(0, n_steps, chunk)
    ]
    np.testing.assert_array_equal(np.hstack(pieces), y_whole)
    np.testing.assert_array_equal(parts.state["x"], whole.state["x"])


def test_same_seed_same_result_different_seed_different():
    runs = []
    for seed in (1, 1, 2):
        m = STNGPe(dt_s=DT, n=2)
        m.reset(seed)
        runs.append(m.advance(2000))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_parallel_batch_equals_serial_instances():
    seeds = np.random.SeedSequence(9).spawn(40)  # 40 >= the parallel threshold
    big = STNGPe(dt_s=DT, n=40)
    big.reset(seeds)
    y_big = big.advance(2000)
    one = STNGPe(dt_s=DT, n=1)
    one.reset([seeds[17]])
    np.testing.assert_array_equal(one.advance(2000)[0], y_big[17])


@pytest.mark.parametrize(
    ("params", "dt", "message"),
    [
        ({"tau_S": -0.01}, DT, "tau_S"),
        ({"T_CS": 5.55e-3}, DT, "whole number"),
        ({"w_GS": float("nan")}, DT, "w_GS"),
        ({"bogus": 1.0}, DT, "bogus"),
        ({"C": [1.0, 2.0, 3.0]}, DT, "shape"),
    ],
)
def test_bad_parameters_are_refused_with_their_name(params, dt, message):
    with pytest.raises(ValueError, match=message):
        STNGPe(dt_s=dt, n=2, params=params)


def test_delays_must_be_whole_steps_of_dt():
    with pytest.raises(ValueError, match="T_CS"):
        STNGPe(dt_s=1e-3)  # 5.5 ms is not a whole number of 1 ms steps


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
