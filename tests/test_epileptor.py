"""Epileptor: recurrent seizures driven by z, a burst ends one once bistable.

The contract (chunking, seeds, batches, parameter checks) is in test_models_contract.py.
"""

import numpy as np
import pytest

from closedloop.analysis.seizures import EPILEPTOR_CRITERION, seizure_durations, seizure_intervals
from closedloop.models import Epileptor

DT = 2e-4  # s: 0.01 model time units at 20 ms per unit
FS = 250.0  # Hz, the rate the LFP is analysed at
STEPS_PER_SAMPLE = int(round(1.0 / (FS * DT)))
# Fold of the fast subsystem's resting branch, z = y0 + Irest1 - 2 x^2 - x^3
# at x = -4/3: below it the resting state no longer exists (seizure onset).
Z_FOLD = 1.0 + 3.1 - 2.0 * (4.0 / 3.0) ** 2 + (4.0 / 3.0) ** 3


def _run(model, seconds, chunk_s=0.2, drive=None):
    """Advance in chunks; return the LFP at FS and z at the end of every chunk."""
    chunk = int(round(chunk_s / DT))
    lfp, z = [], []
    for k in range(int(round(seconds / chunk_s))):
        d = None if drive is None else drive[:, k * chunk : (k + 1) * chunk]
        y = model.advance(chunk, d)
        lfp.append(y.reshape(model.n, -1, STEPS_PER_SAMPLE).mean(axis=2))
        z.append(model.z)
    times = np.arange(1, len(z) + 1) * chunk_s
    return np.hstack(lfp), np.array(z).T, times


def _seizures(lfp_row):
    return seizure_intervals(lfp_row, FS, **EPILEPTOR_CRITERION)


def test_seizures_start_and_stop_on_their_own_driven_by_z():
    model = Epileptor(dt_s=DT, n=2)
    model.reset(0)
    lfp, z, tz = _run(model, 150.0)
    for i in range(2):
        seizures = _seizures(lfp[i])
        assert len(seizures) >= 3, f"instance {i}: {len(seizures)} complete seizures in 150 s"
        durations = seizure_durations(seizures)
        assert np.all((durations > 15.0) & (durations < 23.0)), durations
        recurrence = np.diff(seizures[:, 0])
        assert np.all((recurrence > 32.0) & (recurrence < 43.0)), recurrence
        # Onset once z has fallen past the fold (saddle-node, with its slow
        # passage), offset after z has risen far above it during the seizure.
        z_on = np.interp(seizures[:, 0], tz, z[i])
        z_off = np.interp(seizures[:, 1], tz, z[i])
        assert np.all((z_on < Z_FOLD) & (z_on > Z_FOLD - 0.1)), (z_on, Z_FOLD)
        assert np.all((z_off > 3.9) & (z_off < 4.3)), z_off


def test_interictal_regime_below_the_x0_threshold_never_seizes():
    model = Epileptor(dt_s=DT, n=1, regime="interictal")
    model.reset(1)
    lfp, z, _ = _run(model, 100.0)
    everything = seizure_intervals(lfp[0], FS, **{**EPILEPTOR_CRITERION, "drop_incomplete": False})
    assert everything.size == 0
    assert z.min() > Z_FOLD  # the resting state never disappears


def test_signal_is_x2_minus_x1_and_z_is_exposed():
    model = Epileptor(dt_s=DT, n=3)
    model.reset(2)
    y = model.advance(500)
    x = model.state["x"]
    np.testing.assert_array_equal(y[:, -1], x[:, 3] - x[:, 0])
    np.testing.assert_array_equal(model.z, x[:, 2])
    np.testing.assert_array_equal(model.observables()["z"], x[:, 2])
    assert "z" in model.state_variables and model.describe()["signal"]["units"] == "1"


def _burst(pulse_drive, n_steps, start_s, amplitude_ma):
    """Mean cathodic current per step of 20 pulses of 160 us at 200 Hz (each within one step)."""
    return pulse_drive(n_steps, DT, start_s + np.arange(20) / 200.0, amplitude_ma, 160e-6)


def test_burst_ends_a_seizure_once_bistable_but_not_at_onset(pulse_drive):
    seed = [np.random.SeedSequence(4)]
    probe = Epileptor(dt_s=DT, n=1)
    probe.reset(seed)
    lfp, _, _ = _run(probe, 60.0)
    onset, offset = _seizures(lfp[0])[0]
    n_steps = int(round(60.0 / DT))
    # A burst 0.3 s in (z still below the fold: no resting state) and one 5 s
    # in (bistable: the burst reaches rest).
    drive = np.vstack(
        [
            np.zeros(n_steps),
            _burst(pulse_drive, n_steps, onset + 0.3, 2.0),
            _burst(pulse_drive, n_steps, onset + 5.0, 2.0),
        ]
    )
    model = Epileptor(dt_s=DT, n=3)  # the same noise for all three
    model.reset(seed * 3)
    lfp, _, _ = _run(model, 60.0, drive=drive)
    first = [_seizures(row)[0] for row in lfp]
    np.testing.assert_array_equal(first[0], [onset, offset])
    assert first[1][1] - first[1][0] > 15.0, "a burst at onset should not end the seizure"
    assert first[2][0] == pytest.approx(onset, abs=0.1)
    assert first[2][1] < onset + 5.0 + 1.0, "the burst 5 s in should end the seizure"
    assert offset - onset > 15.0


@pytest.mark.parametrize(
    ("params", "dt"),
    [
        ({}, 2e-3),  # 0.1 model time units per step: the Euler step is too coarse
        ({"time_unit_s": 1e-3}, DT),  # the same with a faster time scale
    ],
)
def test_a_step_too_coarse_for_the_time_scale_is_refused(params, dt):
    with pytest.raises(ValueError, match="'time_unit_s' and 'tau1'"):
        Epileptor(dt_s=dt, n=2, params=params)
