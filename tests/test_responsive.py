"""Responsive stimulation: detector, bursts, refractory; seizure analysis; the Epileptor demo."""

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from matplotlib.image import imread

from closedloop.analysis.seizures import (
    detection_latencies,
    detection_times,
    false_detections,
    plot_seizures,
    save_seizures_figure,
    seizure_durations,
    seizure_intervals,
    seizure_metrics,
    seizure_summary,
)
from closedloop.cli.main import main
from closedloop.config import load_config
from closedloop.controllers import BUILTIN_CONTROLLERS, Responsive
from closedloop.experiment import run_experiment
from closedloop.io import RunData, load_run
from closedloop.testing.controller import check_controller

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "epileptor_responsive.yaml"
PERIOD = 0.02  # s


# -- the controller ------------------------------------------------------------------


@pytest.mark.parametrize(
    "controller",
    [
        Responsive(),
        Responsive(feature="line_length", threshold=3.0, detection_periods=3, refractory_s=0.0),
        Responsive(feature="area", threshold=0.5, burst_duration_s=0.5, refractory_s=2.0),
    ],
    ids=repr,
)
def test_passes_the_conformance_check(controller):
    check_controller(controller)


def test_registered_for_experiment_files():
    assert BUILTIN_CONTROLLERS["responsive"] is Responsive
    assert Responsive(feature="line_length").required_features == ("line_length",)


def test_detection_needs_n_consecutive_periods_then_bursts_for_its_duration(feed_controller):
    c = Responsive(
        threshold=1.0, detection_periods=3, amplitude_ma=1.5, burst_duration_s=0.1, refractory_s=0.0
    )
    # Above threshold for 2 periods (no detection), a dip, then for good;
    # NaN and the threshold itself count as below.
    feature = [2, 2, 0.5, 2, np.nan, 2, 2, 1.0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]
    amp = feed_controller(c, {"biomarker": feature}, period_s=PERIOD)[:, 0]
    # Third consecutive period above at index 10: burst of 0.1 s = 5 periods
    # (10..14); the feature is still above, so the next detection comes as soon
    # as the burst is over (no refractory): index 15 again.
    expected = np.zeros(len(feature))
    expected[10:] = 1.5
    np.testing.assert_array_equal(amp, expected)
    assert c.n_detections_[0] == 2


def test_refractory_period_blocks_new_detections(feed_controller):
    c = Responsive(threshold=1.0, detection_periods=1, burst_duration_s=0.04, refractory_s=0.1)
    amp = feed_controller(c, {"biomarker": np.full(20, 5.0)}, period_s=PERIOD)[:, 0]
    # Burst of 2 periods, refractory of 5 periods, burst again: a cycle of 7.
    on = np.flatnonzero(amp > 0)
    np.testing.assert_array_equal(on, [0, 1, 7, 8, 14, 15])
    assert c.n_detections_[0] == 3


def test_instances_detect_independently_and_frequency_width_are_fixed(feed_controller):
    c = Responsive(threshold=1.0, detection_periods=2, burst_duration_s=0.02, refractory_s=1.0)
    values = np.zeros((6, 3))
    values[1:3, 0] = 2.0  # detects at index 2
    values[3:5, 2] = 2.0  # detects at index 4
    amp = feed_controller(c, {"biomarker": values}, period_s=PERIOD)
    np.testing.assert_array_equal(np.flatnonzero(amp[:, 0]), [2])
    np.testing.assert_array_equal(np.flatnonzero(amp[:, 1]), [])
    np.testing.assert_array_equal(np.flatnonzero(amp[:, 2]), [4])
    command = c.update(1.0, {"biomarker": np.zeros(3)})
    np.testing.assert_array_equal(command["frequency_hz"], [200.0] * 3)
    np.testing.assert_array_equal(command["pulse_width_us"], [160.0] * 3)


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"feature": "beta"}, "feature"),
        ({"detection_periods": 0}, "detection_periods"),
        ({"detection_periods": 2.5}, "detection_periods"),
        ({"amplitude_ma": -1.0}, "amplitude_ma"),
        ({"burst_duration_s": 0.0}, "burst_duration_s"),
        ({"refractory_s": -1.0}, "refractory_s"),
        ({"threshold": float("nan")}, "threshold"),
    ],
)
def test_bad_parameters_are_refused_with_their_name(params, word):
    with pytest.raises(ValueError, match=word):
        Responsive(**params).reset(1, np.random.default_rng(0))


# -- seizure analysis ----------------------------------------------------------------


def test_seizure_intervals_of_known_dc_shifts():
    fs = 100.0
    x = np.full(6000, 1.0)  # 60 s
    x[1000:2800] = -1.0  # 10 s to 28 s
    x[3000:3040] = -1.0  # 0.4 s: too short
    x[4000:4300] = -1.0  # 40 s to 43 s ...
    x[4350:4600] = -1.0  # ... and 43.5 s to 46 s, a 0.5 s gap: one seizure
    x[5700:] = -1.0  # runs to the end: incomplete
    iv = seizure_intervals(x, fs)
    np.testing.assert_allclose(iv, [[10.0, 28.0], [40.0, 46.0]], atol=1.5 / fs)
    np.testing.assert_allclose(seizure_durations(iv), [18.0, 6.0], atol=3 / fs)
    every = seizure_intervals(x, fs, drop_incomplete=False)
    assert every.shape == (3, 2) and every[-1, 1] == pytest.approx(60.0)


def test_line_length_criterion_finds_fast_activity():
    fs = 250.0
    t = np.arange(int(40 * fs)) / fs
    x = np.where((t >= 12) & (t < 20), np.sin(2 * np.pi * 10 * t), 0.0)  # 40 /s line length
    iv = seizure_intervals(x, fs, statistic="line_length", direction="above", threshold=20.0)
    np.testing.assert_allclose(iv, [[12.0, 20.0]], atol=0.05)


def test_latency_and_false_detections():
    seizures = np.array([[10.0, 20.0], [40.0, 50.0], [70.0, 80.0]])
    detections = np.array([5.0, 9.5, 12.0, 41.5, 60.0, 80.5, 81.5])
    # Within the 1 s tolerance before an onset or after an offset counts as in.
    np.testing.assert_allclose(detection_latencies(seizures, detections), [-0.5, 1.5, np.nan])
    np.testing.assert_array_equal(false_detections(seizures, detections), [5.0, 60.0, 81.5])


# -- the Epileptor demonstration, through the command line ----------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("epileptor")
    args = ["run", str(EXPERIMENT), "--out", str(out), "--no-progress"]
    code = main([*args, "--set", "duration_s=120.0", "--set", "n_instances=2"])
    assert code == 0
    return load_run(out / "epileptor_responsive.h5")


def test_responsive_stimulation_shortens_seizures_same_seed(demo):
    metrics = seizure_metrics(demo)
    assert all(v.shape == (2,) for v in metrics.values())
    for i in range(2):
        s = seizure_summary(demo, i)
        # 120 s from the same seed: 3 complete seizures of about 18 s without
        # stimulation; with it, every seizure is detected within a second and
        # ended after a few bursts.
        assert s["n_seizures_baseline"] >= 2
        assert s["mean_duration_baseline_s"] > 15.0
        assert s["n_seizures_stim"] >= 2
        assert s["mean_duration_stim_s"] < 0.5 * s["mean_duration_baseline_s"]
        assert s["durations_stim_s"].max() < 12.0
        assert s["n_missed"] == 0
        assert np.all(np.abs(s["latencies_s"]) < 1.0)
        assert s["n_false_detections"] <= 2
        # The time in seizure falls less than the durations: seizures cut short
        # come back sooner (the slow permittivity z was not raised).
        assert s["seizure_fraction_stim"] < s["seizure_fraction_baseline"]
        assert s["n_seizures_stim"] > s["n_seizures_baseline"]
        assert metrics["mean_seizure_duration_stim_s"][i] == s["mean_duration_stim_s"]
        # RNS-trial counts: every trigger is a detection; a detected seizure
        # cut below half the mean unstimulated one is aborted (all of them here).
        assert metrics["n_detections"][i] == detection_times(demo, i).size
        short = s["durations_stim_s"] < 0.5 * s["mean_duration_baseline_s"]
        assert metrics["n_seizures_aborted"][i] == np.sum(short & np.isfinite(s["latencies_s"]))
        assert metrics["n_seizures_aborted"][i] >= 2


def test_replayed_detections_are_the_bursts_the_device_delivered(demo):
    rate = demo.timeseries_attrs["amplitude"]["sampling_rate_hz"]
    for i in range(2):
        detections = detection_times(demo, i)
        amp = demo.timeseries["amplitude"][i]
        # Period k ends at (k + 1) / rate; a detection at the end of period k
        # switches the amplitude on through the next period, k + 1.
        k = np.rint(detections * rate).astype(int) - 1
        assert detections.size > 5
        assert np.all(amp[k + 1] == pytest.approx(1.0))
        assert np.all(amp[k] == 0.0)  # each burst starts from off (1 s refractory)
        on = np.flatnonzero((amp > 0) & (np.concatenate([[0.0], amp[:-1]]) == 0))
        np.testing.assert_array_equal(on, k + 1)  # and no burst without a detection
        # 100 ms at 200 Hz: 20 pulses per burst (the last may be cut by the run's end).
        delivered = demo.timeseries["pulse_count"][i][-1]
        assert 20 * (detections.size - 1) < delivered <= 20 * detections.size


def test_the_permittivity_z_is_recorded_with_and_without_stimulation(demo):
    # One sample at the end of every 1 s chunk, both runs from the same state.
    z, z0 = demo.timeseries["state_z"], demo.timeseries["state_z_baseline"]
    assert z.shape == z0.shape == (2, 120)
    np.testing.assert_allclose(demo.time("state_z"), np.arange(1.0, 121.0))
    # Without stimulation z follows the Epileptor's slow cycle (Jirsa et al.
    # 2014): it falls during seizures and recovers between them.
    assert z0.min() < 3.0 < 3.6 < z0.max()
    # Until the first burst the two runs are the same simulation.
    first_on = demo.time("amplitude")[np.argmax(demo.timeseries["amplitude"][0] > 0)]
    before = demo.time("state_z") < first_on
    assert before.any()
    np.testing.assert_array_equal(z[0, before], z0[0, before])
    assert not np.array_equal(z[0], z0[0])


def test_plot_seizures_draws_both_runs_and_z_when_recorded(demo, tmp_path):
    fig = plot_seizures(demo, instance=1)  # returned, not saved
    assert list(tmp_path.iterdir()) == []
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles[0].startswith("(a) without stimulation")
    assert any(t.startswith("(c) slow permittivity z") for t in titles)
    out = save_seizures_figure(demo, tmp_path / "seizures.png", instance=1)
    assert out.stat().st_size > 20_000
    with pytest.raises(IndexError):
        save_seizures_figure(demo, tmp_path / "bad.png", instance=2)
    assert not (tmp_path / "bad.png").exists()
    # Without z in the file, the z panel is left out and the figure is shorter.
    copy = tmp_path / "without_z.h5"
    shutil.copy(demo.path, copy)
    with h5py.File(copy, "a") as f:
        del f["timeseries/state_z"], f["timeseries/state_z_baseline"]
    shorter = save_seizures_figure(copy, tmp_path / "without_z.png", instance=1)
    # The z panel makes the figure taller (10 in against 8.5 in).
    height = imread(out).shape[0]
    assert imread(shorter).shape[0] == pytest.approx(height * 8.5 / 10, rel=0.02)


def test_closed_loop_chunking_does_not_change_the_run(tmp_path):
    runs = []
    for chunk in (5.0, 0.3):
        exp = load_config(
            EXPERIMENT,
            ["duration_s=20.0", f"output.chunk_s={chunk}", "output.figure=false", f"name=c{chunk}"],
        )
        runs.append(load_run(run_experiment(exp, tmp_path).path))
    for key in ("lfp", "amplitude", "feature_line_length", "lfp_baseline"):
        np.testing.assert_array_equal(runs[0].timeseries[key], runs[1].timeseries[key])
    assert runs[0].timeseries["amplitude"].max() > 0  # a seizure was answered


def test_other_controllers_detect_where_the_amplitude_switches_on():
    rate = 50.0
    amp = np.array([[0, 0, 1, 1, 0, 2, 2, 2], [1, 0, 0, 0, 0, 0, 0, 1.0]])
    run = RunData(
        path=Path("synthetic.h5"),
        attrs={"n_instances": 2},
        config={"controller": {"name": "on_off", "params": {}}},
        status="complete",
        timeseries={"amplitude": amp},
        timeseries_attrs={"amplitude": {"sampling_rate_hz": rate, "units": "mA"}},
        metrics={},
        metric_units={},
    )
    # The amplitude at the end of period k follows the command of period k - 1.
    np.testing.assert_allclose(detection_times(run, 0), [2 / rate, 5 / rate])
    np.testing.assert_allclose(detection_times(run, 1), [0.0, 7 / rate])
