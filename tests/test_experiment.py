"""The closed loop end to end, through the command line a user runs."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from closedloop.cli.main import main
from closedloop.config import ConfigError, load_config
from closedloop.experiment import run_experiment
from closedloop.io import load_run

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "pd_beta_adbs.yaml"
SHORT = ["duration_s=2.0", "output.figure=false"]


def _run(tmp_path, *overrides, name="run"):
    exp = load_config(EXPERIMENT, [*SHORT, f"name={name}", *overrides])
    return run_experiment(exp, tmp_path)


def _assert_beta_metrics_match_the_lfp(run, band_powers_from_lfp) -> None:
    stim, base = band_powers_from_lfp(run)
    np.testing.assert_allclose(run.metrics["band_power_stim"], stim, rtol=1e-9)
    np.testing.assert_allclose(run.metrics["band_power_baseline"], base, rtol=1e-9)
    np.testing.assert_allclose(
        run.metrics["band_power_reduction"], 1.0 - stim / base, rtol=1e-9, atol=1e-12
    )


def test_default_experiment_writes_file_figure_and_metrics(
    tmp_path, capsys, band_powers_from_lfp, assert_teed_matches_record
):
    # The README's first command, at the experiment's own 20 s.
    code = main(["run", str(EXPERIMENT), "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "band_power_reduction" in out and "(spikes/s)^2" in out
    assert "stimulation: on 31% of the time" in out and "long-burst reduction 100%" in out
    run = load_run(tmp_path / "pd_beta_adbs.h5")
    assert run.status == "complete"
    assert (tmp_path / "pd_beta_adbs.png").stat().st_size > 10_000
    assert run.attrs["format_version"] == 3
    for name in ("lfp", "biomarker", "amplitude", "frequency", "pulse_width"):
        assert run.timeseries[name].shape[0] == 1
        assert "units" in run.timeseries_attrs[name]
    assert run.timeseries["lfp"].shape[1] == 20000  # 20 s at 1 kHz
    assert run.timeseries["amplitude"].shape[1] == 1000  # 20 s at 20 ms
    assert run.config["controller"]["name"] == "on_off"
    # The metrics by their definitions, recomputed from the recorded LFP and
    # the recorded stimulation.
    _assert_beta_metrics_match_the_lfp(run, band_powers_from_lfp)
    assert_teed_matches_record(run)
    # Stimulation follows the bursts: on in every period after one whose
    # envelope was above the threshold (the 250 ms ramp starts at once), off
    # in every period after 13 below it (the ramp down is over).
    bio = run.timeseries["biomarker"][0]
    amp = run.timeseries["amplitude"][0]
    thr = run.config["controller"]["params"]["threshold"]
    above = bio[:-1] > thr
    assert above.sum() > 50 and np.all(amp[1:][above] > 0)
    quiet = np.convolve(bio <= thr, np.ones(13), mode="valid") == 13  # periods k-12..k
    assert quiet.sum() > 100 and np.all(amp[13:][quiet[:-1]] == 0)
    # Issue 12's targets against continuous DBS (which removes all long-burst
    # time): at least 80 % of that, at most 50 % of its TEED, at most 60 % on.
    m = run.metrics
    assert m["long_burst_time_fraction_baseline"][0] > 0.05
    assert m["long_burst_time_reduction"][0] >= 0.8
    assert m["teed_relative"][0] <= 0.5 and m["time_on_fraction"][0] <= 0.6
    assert m["n_switches"][0] > 10
    # Values the model gives (seed 1, 20 s, at issue 12), pinned so a changed
    # model, controller or accounting shows.
    assert m["band_power_reduction"][0] == pytest.approx(0.153, abs=0.02)
    assert m["teed_relative"][0] == pytest.approx(0.0607, abs=0.005)
    assert m["time_on_fraction"][0] == pytest.approx(0.315, abs=0.01)
    assert m["long_burst_time_fraction_baseline"][0] == pytest.approx(0.114, abs=0.005)


def test_open_loop_beats_no_stimulation_and_costs_full_energy(
    tmp_path, band_powers_from_lfp, assert_teed_matches_record
):
    on = _run(
        tmp_path,
        "controller.name=open_loop",
        "controller.params={amplitude_ma: 2.5}",
        name="dbs_on",
    )
    off = _run(
        tmp_path,
        "controller.name=open_loop",
        "controller.params={amplitude_ma: 0.0}",
        name="dbs_off",
    )
    for run in (on, off):
        _assert_beta_metrics_match_the_lfp(load_run(run.path), band_powers_from_lfp)
        assert_teed_matches_record(load_run(run.path))
    # Value the model gives in its bursty regime (seed 1, 2 s; 0.974 at issue 12).
    assert on.metrics["band_power_reduction"][0] == pytest.approx(0.974, abs=0.02)
    assert off.metrics["band_power_reduction"][0] == pytest.approx(0.0, abs=1e-12)
    assert off.metrics["teed_j"][0] == 0.0
    # Continuous DBS at the reference settings, T = 2 s: off for the first
    # control period (0.02 s: the command takes effect at its end), then a
    # linear ramp to 2.5 mA at 10 mA/s (0.25 s) in which I**2 averages a third
    # of its final value. TEED relative 1 - (0.02 + 0.25 * 2 / 3) / 2; to
    # within a pulse in 258 (0.004) since pulses come whole.
    assert on.metrics["teed_relative"][0] == pytest.approx(1 - (0.02 + 0.25 * 2 / 3) / 2, abs=0.004)
    assert on.metrics["time_on_fraction"][0] == pytest.approx(1 - 0.02 / 2, rel=1e-9)
    # On once and never off: no switch (the first turn-on is not one).
    assert on.metrics["n_switches"][0] == 0


def test_same_config_same_seed_bit_identical(tmp_path):
    a = load_run(_run(tmp_path, name="a").path)
    b = load_run(_run(tmp_path, name="b").path)
    for key in a.timeseries:
        np.testing.assert_array_equal(a.timeseries[key], b.timeseries[key])
    c = load_run(_run(tmp_path, "seed=2", name="c").path)
    assert not np.array_equal(a.timeseries["lfp"], c.timeseries["lfp"])


def _assert_same_results(a, b) -> None:
    assert a.timeseries.keys() == b.timeseries.keys() and a.metrics.keys() == b.metrics.keys()
    for group in ("timeseries", "metrics"):
        for key, value in getattr(a, group).items():
            np.testing.assert_array_equal(getattr(b, group)[key], value, err_msg=key)


def test_chunk_size_and_batch_do_not_change_results(tmp_path):
    a = load_run(_run(tmp_path, "output.chunk_s=1.0", name="a").path)
    b = load_run(_run(tmp_path, "output.chunk_s=0.3", name="b").path)
    _assert_same_results(a, b)
    # Runs simulated together in one loop (as a sweep batches runs of equal
    # size), with their own seeds and model and controller parameters, each
    # equal the run alone, bit for bit.
    from closedloop.experiment import RunSpec, simulate_runs
    from closedloop.sweep.batch import batched_loop

    overrides = [
        ["seed=2", "n_instances=2"],
        ["seed=5", "n_instances=2", "model.params.w_GS=5.5"],
        ["seed=7", "n_instances=2", "controller.params.threshold=14"],
    ]
    exps = [
        load_config(EXPERIMENT, [*SHORT, f"name=together{k}", *o]) for k, o in enumerate(overrides)
    ]
    specs = [RunSpec(exp, tmp_path / f"together{k}.h5") for k, exp in enumerate(exps)]
    simulate_runs(batched_loop(exps), specs)
    for k, o in enumerate(overrides):
        alone = load_run(_run(tmp_path, *o, name=f"alone{k}").path)
        _assert_same_results(alone, load_run(specs[k].path))
    assert not np.array_equal(alone.timeseries["lfp"][0], a.timeseries["lfp"][0])


def test_batch_instances_are_independent_and_vary_by_seed(tmp_path):
    run = load_run(_run(tmp_path, "n_instances=3", name="batch").path)
    lfp = run.timeseries["lfp"]
    assert lfp.shape[0] == 3
    assert not np.array_equal(lfp[0], lfp[1])
    assert run.metrics["band_power_reduction"].shape == (3,)


def test_latency_delays_the_delivered_stimulation(tmp_path):
    base = [
        "controller.name=open_loop",
        "controller.params={amplitude_ma: 2.0}",
        "device.ramp_rate_ma_per_s=1000000",
        "control.period_s=0.001",
        "duration_s=0.2",
        "metrics.discard_s=0",  # a run no longer than discard_s is refused (no spectrum)
    ]
    fast = load_run(_run(tmp_path, *base, name="fast").path)
    slow = load_run(_run(tmp_path, *base, "control.latency_s=0.05", name="slow").path)
    first_on = [int(np.argmax(r.timeseries["amplitude"][0] > 0)) for r in (fast, slow)]
    # Command issued at the end of period 1 (t = 1 ms): on within period 2
    # without latency, 50 periods later with 50 ms latency.
    assert first_on[0] == 1
    assert first_on[1] == 51


def test_user_controller_by_dotted_path(tmp_path):
    run = load_run(
        _run(
            tmp_path,
            "controller.name=user_controllers.HalfAmplitude",
            "controller.params={}",
            name="user",
        ).path
    )
    assert run.timeseries["amplitude"][0, -1] == pytest.approx(1.25)


def test_diverging_model_fails_cleanly_with_instance_and_time(tmp_path, capsys):
    code = main(
        [
            "run",
            str(EXPERIMENT),
            "--out",
            str(tmp_path),
            "--set",
            "duration_s=2.0",
            "--set",
            "n_instances=2",
            "--set",
            "model.params.sigma_S=[0.0, 1.0e308]",
            "--set",
            "output.figure=false",
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "instance 1" in err and "t = " in err
    path = tmp_path / "pd_beta_adbs.h5"
    with h5py.File(path) as f:
        assert f.attrs["status"] == "failed"
        assert "instance 1" in f.attrs["message"]
    assert not list(tmp_path.glob("*.partial"))


def test_controller_exception_leaves_a_failed_file(tmp_path):
    with pytest.raises(RuntimeError, match="controller bug"):
        _run(
            tmp_path, "controller.name=user_controllers.Raises", "controller.params={}", name="bug"
        )
    with h5py.File(tmp_path / "bug.h5") as f:
        assert f.attrs["status"] == "failed"


@pytest.mark.parametrize(
    ("override", "path", "words"),
    [
        ("controler.name=pid", "controler", "Did you mean 'controller'"),
        ("duration_s=-1", "duration_s", "greater than 0"),
        ("controller.params.threshold=high", "controller.params.threshold", "valid number"),
        ("controller.name=no_such_controller", "controller.name", "unknown controller"),
        ("controller.name=nowhere.module.Thing", "controller.name", "cannot import"),
        ("sensing.band_hz=[13, 900]", "sensing", "rate_hz / 2"),
        ("control.period_s=0.0105", "control", "whole"),
        ("model.params.tau_S=-1", "model", "tau_S"),
        ("device.amplitude_max_ma=nan", "device", "amplitude_max_ma"),
    ],
)
def test_bad_config_gets_path_sentence_and_exit_2(tmp_path, capsys, override, path, words):
    with pytest.raises(ConfigError) as info:
        load_config(EXPERIMENT, [override])
    assert any(p.startswith(path) and words in m for p, m in info.value.problems), (
        info.value.problems
    )
    code = main(["run", str(EXPERIMENT), "--out", str(tmp_path), "--set", override])
    assert code == 2
    err = capsys.readouterr().err
    assert path in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing written


def test_validate_plot_and_info_commands(tmp_path, capsys):
    assert main(["validate", str(EXPERIMENT)]) == 0
    assert "valid" in capsys.readouterr().out
    out = _run(tmp_path, name="cli")
    assert main(["plot", str(out.path), "-o", str(tmp_path / "fig.png")]) == 0
    assert (tmp_path / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["info", str(out.path)]) == 0
    text = capsys.readouterr().out
    assert "band_power_reduction" in text and "on_off" in text
    assert main(["info", str(tmp_path / "missing.h5")]) == 2


def test_memory_stays_flat_in_run_length(tmp_path):
    import tracemalloc

    peaks = []
    for seconds in (2.0, 8.0):
        _run(tmp_path, f"duration_s={seconds}", "output.chunk_s=0.5", name="warm")
        tracemalloc.start()
        _run(tmp_path, f"duration_s={seconds}", "output.chunk_s=0.5", name=f"m{seconds:g}")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # Four times the simulated time, about the same peak (chunks are streamed out).
    assert peaks[1] < 1.5 * peaks[0], peaks


def test_extra_sensing_features_reach_the_controller_and_the_file(tmp_path):
    from user_controllers import FeatureLogger

    out = _run(
        tmp_path,
        "controller.name=user_controllers.FeatureLogger",
        "controller.params={}",
        "sensing.features=[line_length, area]",
        "n_instances=2",
        name="feat",
    )
    run = load_run(out.path)
    seen = FeatureLogger.log
    assert set(seen[0]) == {"biomarker", "line_length", "area"}
    for name in ("line_length", "area"):
        recorded = run.timeseries[f"feature_{name}"]
        given = np.stack([s[name] for s in seen], axis=1)
        np.testing.assert_array_equal(recorded, given)
        assert np.all(recorded[:, 10:] > 0)


def test_a_controller_needing_an_unsensed_feature_is_refused():
    with pytest.raises(ConfigError) as info:
        load_config(EXPERIMENT, ["controller.name=phase_locked", "controller.params={}"])
    assert any(p == "sensing.features" and "'phase'" in m for p, m in info.value.problems)
