"""Tests of the HDF5 run recorder, the loader and the run figures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest

from closedloop.io import FORMAT_VERSION, RunData, RunRecorder, load_run
from closedloop.plotting.run import format_info, save_run_figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CONFIG = {
    "model": {"name": "delayed_rate", "params": {"tau_e_s": 0.01}},
    "controller": {"name": "dual_threshold", "params": {"low": 0.4, "high": 0.8}},
    "run": {"duration_s": 4.0, "dt_s": 1e-3},
}


def _recorder(path: Path, n: int = 3) -> RunRecorder:
    return RunRecorder(path, config=CONFIG, seed=7, n=n, closedloop_version="0.1.0")


def _synthetic_run(path: Path, *, n: int = 3, spectra: bool = True) -> Path:
    """Write a plausible aDBS run: beta bursts, envelope, dual-threshold stimulation."""
    from scipy import signal as sps

    fs = 1000.0
    rng = np.random.default_rng(0)
    t = np.arange(int(4 * fs)) / fs
    bursts = 1.0 + 0.8 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6, (n, 1)))
    lfp = 0.05 * bursts * np.sin(2 * np.pi * 20 * t) + 0.01 * rng.standard_normal((n, t.size))
    sensed = lfp + 0.005 * rng.standard_normal(lfp.shape)
    biomarker = sps.lfilter([0.02], [1, -0.98], np.abs(lfp), axis=1) * 25
    amplitude = np.where(biomarker > 0.8, 2.5, 0.0)
    frequency = np.where(t < 2.0, 130.0, 160.0) * np.ones((n, 1))
    with _recorder(path, n=n) as rec:
        rec.create_timeseries("lfp", units="mV", sampling_rate_hz=fs, description="model LFP")
        rec.create_timeseries("lfp_sensed", units="mV", sampling_rate_hz=fs)
        rec.create_timeseries("biomarker", units="1", sampling_rate_hz=fs)
        rec.create_timeseries("amplitude", units="mA", sampling_rate_hz=fs)
        rec.create_timeseries("frequency", units="Hz", sampling_rate_hz=fs)
        for start in range(0, t.size, 500):
            stop = start + 500
            rec.append("lfp", lfp[:, start:stop])
            rec.append("lfp_sensed", sensed[:, start:stop])
            rec.append("biomarker", biomarker[:, start:stop])
            rec.append("amplitude", amplitude[:, start:stop])
            rec.append("frequency", frequency[:, start:stop])
        if spectra:
            f, psd_stim = sps.welch(lfp * 0.5, fs=fs, nperseg=512, axis=1)
            _, psd_base = sps.welch(lfp, fs=fs, nperseg=512, axis=1)
            rec.write_array("spectra/frequency", f, units="Hz", dims="frequency")
            rec.write_array(
                "spectra/psd_stim", psd_stim, units="mV^2/Hz", dims="instance,frequency"
            )
            rec.write_array(
                "spectra/psd_baseline", psd_base, units="mV^2/Hz", dims="instance,frequency"
            )
        rec.set_attr("thresholds", {"lower": 0.4, "upper": 0.8})
        rec.set_attr("band_hz", [13.0, 30.0])
        rec.write_metrics(
            {
                "band_power_reduction": np.linspace(0.3, 0.6, n),
                "teed_relative": np.full(n, 0.42),
                "time_on_fraction": (amplitude > 0).mean(axis=1),
                "wall_time_s": 1.5,
            },
            units={
                "band_power_reduction": "1",
                "teed_relative": "1",
                "time_on_fraction": "1",
                "wall_time_s": "s",
            },
            descriptions={"band_power_reduction": "1 - beta power with / without stimulation"},
        )
    return path


# ---------------------------------------------------------------- recording


def test_round_trip_keeps_data_attrs_and_units(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "run.h5"
    rng = np.random.default_rng(1)
    blocks = [rng.standard_normal((3, m)) for m in (5, 0, 17, 1, 100)]
    with _recorder(path) as rec:
        rec.create_timeseries("lfp", units="mV", sampling_rate_hz=2000.0, description="LFP")
        rec.create_timeseries("amplitude", units="mA", sampling_rate_hz=100.0, start_time_s=0.5)
        for block in blocks:
            rec.append("lfp", block)
        rec.append("amplitude", np.ones((3, 4)))
        rec.write_array("spectra/psd_stim", np.ones((3, 8)), units="mV^2/Hz")
        rec.write_metrics(
            {"band_power_reduction": [0.1, 0.2, 0.3]}, units={"band_power_reduction": "1"}
        )
        rec.set_attr("failure", "")

    run = load_run(path)
    np.testing.assert_array_equal(run.timeseries["lfp"], np.concatenate(blocks, axis=1))
    assert run.status == "complete"
    assert run.config == CONFIG
    assert run.attrs["seed"] == 7
    assert run.attrs["n_instances"] == 3
    assert run.attrs["format_version"] == FORMAT_VERSION
    assert run.attrs["closedloop_version"] == "0.1.0"
    assert run.attrs["created"].endswith("Z")
    provenance = run.attrs["provenance"]
    for key in ("python", "command_line", "git_commit", "git_dirty", "kernel_source_hash"):
        assert key in provenance
    # Versions of the runtime dependencies as installed, read from metadata.
    assert provenance["dependencies"]["numpy"] == np.__version__
    assert provenance["dependencies"]["h5py"] == h5py.__version__
    assert "hostname" not in provenance  # only when asked for (output.hostname)
    lfp_attrs = run.timeseries_attrs["lfp"]
    assert lfp_attrs["units"] == "mV"
    assert lfp_attrs["sampling_rate_hz"] == lfp_attrs["sampling_rate"] == 2000.0
    assert lfp_attrs["dims"] == "instance,time_0p0005s"  # the clock named by its period
    np.testing.assert_allclose(run.time("lfp")[:3], [0.0, 0.0005, 0.001])
    np.testing.assert_allclose(run.time("amplitude"), 0.5 + np.arange(4) / 100.0)
    np.testing.assert_array_equal(run.metrics["band_power_reduction"], [0.1, 0.2, 0.3])
    assert run.metric_units == {"band_power_reduction": "1"}
    np.testing.assert_array_equal(run.arrays["spectra/psd_stim"], np.ones((3, 8)))
    assert run.array_attrs["spectra/psd_stim"]["units"] == "mV^2/Hz"
    # The config attribute is the sorted-key JSON of the resolved config.
    with h5py.File(path, "r") as f:
        assert f.attrs["config"] == json.dumps(CONFIG, sort_keys=True)


def test_blocks_and_events_append_in_order_for_a_batch_of_any_size(tmp_path: Path) -> None:
    # A batch larger than Python's small-integer cache (256), series appended in
    # blocks and event columns appended twice: the file holds exactly the
    # concatenation, in order.
    path = tmp_path / "run.h5"
    n = 300
    rng = np.random.default_rng(2)
    blocks = [rng.standard_normal((n, m)) for m in (4, 1, 9)]
    times = [np.array([0.1, 0.25, 0.5]), np.array([1.0, 1.5])]
    kinds = [np.array([1, 0, 1], dtype=np.int8), np.array([0, 1], dtype=np.int8)]
    with _recorder(path, n=n) as rec:
        rec.create_timeseries("lfp", units="mV", sampling_rate_hz=1000.0)
        for block in blocks:
            rec.append("lfp", block)
        rec.create_events("triggers", {"time_s": ("f8", "s"), "kind": ("i1", "1")})
        for t, k in zip(times, kinds, strict=True):
            rec.append_events("triggers", time_s=t, kind=k)
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["timeseries/lfp"][()], np.hstack(blocks))
        np.testing.assert_array_equal(f["events/triggers/time_s"][()], np.hstack(times))
        np.testing.assert_array_equal(f["events/triggers/kind"][()], np.hstack(kinds))
        assert f["events/triggers/time_s"].attrs["units"] == "s"


def test_caller_provenance_is_merged(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    RunRecorder(
        path,
        config={},
        seed=0,
        n=1,
        closedloop_version="0.1.0",
        provenance={"git_commit": "abc123", "hostname": "node-7"},
    ).close()
    provenance = load_run(path).attrs["provenance"]
    assert provenance["git_commit"] == "abc123"
    assert provenance["hostname"] == "node-7"
    assert provenance["dependencies"]["numpy"] == np.__version__


def test_final_path_appears_only_on_close(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    rec = _recorder(path)
    rec.create_timeseries("lfp", units="mV", sampling_rate_hz=1000.0)
    rec.append("lfp", np.zeros((3, 10)))
    assert not path.exists()
    assert rec.partial_path.exists()
    assert rec.partial_path == tmp_path / "run.h5.partial"
    assert rec._file.attrs["status"] == "running"
    rec.close()
    assert path.exists()
    assert not rec.partial_path.exists()
    rec.close()  # idempotent
    assert load_run(path).status == "complete"


def test_exception_in_block_closes_as_failed_and_reraises(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with pytest.raises(RuntimeError, match="model diverged"), _recorder(path) as rec:
        rec.create_timeseries("lfp", units="mV", sampling_rate_hz=1000.0)
        rec.append("lfp", np.ones((3, 5)))
        raise RuntimeError("model diverged at t = 1.2 s")
    run = load_run(path)
    assert run.status == "failed"
    assert "model diverged at t = 1.2 s" in run.attrs["message"]
    assert "RuntimeError" in run.attrs["message"]
    assert run.timeseries["lfp"].shape == (3, 5)  # what was recorded is kept


def test_keyboard_interrupt_closes_as_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with pytest.raises(KeyboardInterrupt), _recorder(path):
        raise KeyboardInterrupt
    run = load_run(path)
    assert run.status == "failed"
    assert run.attrs["message"] == "interrupted"


def test_abandoned_recorder_leaves_no_final_file(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    rec = _recorder(path)
    rec.create_timeseries("lfp", units="mV", sampling_rate_hz=1000.0)
    rec.append("lfp", np.zeros((3, 10)))
    rec._file.close()  # the handle dies without the recorder finishing the run
    del rec
    assert not path.exists()
    assert (tmp_path / "run.h5.partial").exists()
    with pytest.raises(FileNotFoundError, match="did not finish"):
        load_run(path)
    with pytest.raises(ValueError, match="did not finish"):
        load_run(tmp_path / "run.h5.partial")


def test_close_after_handle_lost_refuses_to_publish(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    rec = _recorder(path)
    rec._file.close()
    with pytest.raises(RuntimeError, match="partial"):
        rec.close()
    assert not path.exists()
    rec.close()  # closing again (a with block's exit after it) is quiet, and publishes nothing
    assert not path.exists()


def test_a_close_that_cannot_write_releases_the_file_and_removes_the_partial(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.h5"
    rec = _recorder(path)
    rec.create_timeseries("lfp", units="mV", sampling_rate_hz=1000.0)
    rec.append("lfp", np.zeros((3, 10)))
    handle = rec._file

    def full_disk() -> None:
        raise OSError(28, "No space left on device")

    handle.flush = full_disk  # the final flush fails as on a full disk
    with pytest.raises(OSError, match="no space left on device"):
        rec.close()
    assert not handle.id.valid  # HDF5's handle is released, not leaked
    assert not path.exists() and not (tmp_path / "run.h5.partial").exists()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killed_process_leaves_only_partial(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    script = textwrap.dedent(
        f"""
        import os, signal
        import numpy as np
        from closedloop.io.hdf5 import RunRecorder
        rec = RunRecorder({str(path)!r}, config={{}}, seed=0, n=2, closedloop_version="0")
        rec.create_timeseries("lfp", units="mV", sampling_rate_hz=1000.0)
        for _ in range(10):
            rec.append("lfp", np.ones((2, 1000)))
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert not path.exists()
    assert (tmp_path / "run.h5.partial").exists()


class _Crash(BaseException):
    """A process dying at an injected point (not an Exception: nothing may catch it)."""


@pytest.mark.parametrize("outcome", ["complete", "failed"])
def test_a_crash_at_any_point_of_close_never_leaves_a_running_file_at_the_final_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outcome: str
) -> None:
    # Every write close() makes (attributes, flush, close, rename) is a crash
    # point: crash at the k-th, for every k, then look at the disk. The file
    # at the final name must say how the run ended, or not be there at all.
    import closedloop.io.hdf5 as hdf5

    calls: list[str] = []
    crash_at = [-1]

    def crash_point(name: str, real, *, after: bool = False):
        def wrapped(*args, **kwargs):
            calls.append(name)
            if len(calls) - 1 == crash_at[0] and not after:
                raise _Crash(name)
            result = real(*args, **kwargs)
            if len(calls) - 1 == crash_at[0]:
                raise _Crash(name)
            return result

        return wrapped

    def rename_spy(src, dst):
        # What is about to take the final name is finished, and closed.
        with h5py.File(src, "r") as f:
            assert f.attrs["status"] == outcome
        assert not os.path.exists(dst)
        return real_replace(src, dst)

    real_replace = os.replace
    crashes: list[str] = []
    for k in range(20):
        path = tmp_path / f"run{k}.h5"
        rec = _recorder(path)
        rec.create_timeseries("lfp", units="mV", sampling_rate_hz=1000.0)
        rec.append("lfp", np.ones((3, 10)))
        calls.clear()
        crash_at[0] = k
        with monkeypatch.context() as m:
            m.setattr(h5py.AttributeManager, "__setitem__",
                      crash_point("attr", h5py.AttributeManager.__setitem__))  # fmt: skip
            m.setattr(h5py.File, "flush", crash_point("flush", h5py.File.flush))
            # A crash right after the handle is closed, before the rename.
            m.setattr(h5py.File, "close", crash_point("close", h5py.File.close, after=True))
            m.setattr(hdf5.os, "replace", crash_point("replace", rename_spy))
            try:
                rec.close(outcome, "diverged" if outcome == "failed" else "")
            except _Crash as crash:
                crashes.append(str(crash))
            else:
                break
        if path.exists():
            with h5py.File(path, "r") as f:
                assert f.attrs["status"] == outcome, (k, calls)
        else:
            assert rec.partial_path.exists()
            with pytest.raises(FileNotFoundError, match="did not finish"):
                load_run(path)
    else:
        pytest.fail("close() never finished")
    # Every kind of step was a crash point once, and the last run got through.
    assert {"attr", "flush", "close", "replace"} <= set(crashes), crashes
    assert load_run(path).status == outcome


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("when", ["before", "after"])
def test_a_process_killed_at_the_rename_leaves_a_finished_file_or_none(
    tmp_path: Path, when: str
) -> None:
    path = tmp_path / "run.h5"
    script = textwrap.dedent(
        f"""
        import os, signal
        import numpy as np
        import closedloop.io.hdf5 as hdf5
        real = os.replace
        def replace(src, dst):
            if {when!r} == "after":
                real(src, dst)
            os.kill(os.getpid(), signal.SIGKILL)
        hdf5.os.replace = replace
        rec = hdf5.RunRecorder({str(path)!r}, config={{}}, seed=0, n=2, closedloop_version="0")
        rec.create_timeseries("lfp", units="mV", sampling_rate_hz=1000.0)
        rec.append("lfp", np.ones((2, 1000)))
        rec.close()
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    if when == "before":
        assert not path.exists()
        with h5py.File(tmp_path / "run.h5.partial", "r") as f:
            assert f.attrs["status"] == "complete"
    else:
        assert not (tmp_path / "run.h5.partial").exists()
        run = load_run(path)
        assert run.status == "complete"
        np.testing.assert_array_equal(run.timeseries["lfp"], np.ones((2, 1000)))


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    _recorder(path).close()
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(ValueError, match="newer") as info:
        load_run(path)
    message = str(info.value)
    assert str(path) in message
    assert str(FORMAT_VERSION + 1) in message and f"({FORMAT_VERSION})" in message

    with h5py.File(path, "r+") as f:
        del f.attrs["format_version"]
    with pytest.raises(ValueError, match="format_version"):
        load_run(path)


def test_bad_input_is_rejected_with_clear_errors(tmp_path: Path) -> None:
    with _recorder(tmp_path / "run.h5") as rec:
        rec.create_timeseries("lfp", units="mV", sampling_rate_hz=1000.0)
        with pytest.raises(ValueError, match=r"\(3, m\).*\(2, 10\)"):
            rec.append("lfp", np.zeros((2, 10)))
        with pytest.raises(ValueError, match="shape"):
            rec.append("lfp", np.zeros(10))
        with pytest.raises(KeyError, match="create_timeseries"):
            rec.append("nope", np.zeros((3, 1)))
        with pytest.raises(ValueError, match="already exists"):
            rec.create_timeseries("lfp", units="mV", sampling_rate_hz=1000.0)
        with pytest.raises(ValueError, match="sampling_rate_hz"):
            rec.create_timeseries("x", units="mV", sampling_rate_hz=0.0)
        with pytest.raises(ValueError, match="no units"):
            rec.write_metrics({"teed": [1.0, 2.0, 3.0]}, units={})
        with pytest.raises(ValueError, match="shape"):
            rec.write_metrics({"teed": [1.0, 2.0]}, units={"teed": "J"})
        with pytest.raises(ValueError, match="managed"):
            rec.set_attr("status", "complete")
        with pytest.raises(ValueError, match="create_timeseries"):
            rec.write_array("timeseries/extra", np.zeros((3, 2)), units="mV")


def test_memory_stays_flat_over_long_run(tmp_path: Path) -> None:
    n, m, n_blocks = 4, 10_000, 200
    block = np.random.default_rng(0).standard_normal((n, m))
    total_bytes = block.nbytes * n_blocks  # 64 MB
    rec = _recorder(tmp_path / "long.h5", n=n)
    rec.create_timeseries("lfp", units="mV", sampling_rate_hz=10_000.0)
    tracemalloc.start()
    try:
        for _ in range(n_blocks):
            rec.append("lfp", block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rec.close()
    assert peak < 0.1 * total_bytes, f"peak {peak / 1e6:.1f} MB for {total_bytes / 1e6:.0f} MB"
    with h5py.File(tmp_path / "long.h5", "r") as f:
        assert f["timeseries/lfp"].shape == (n, m * n_blocks)
        np.testing.assert_array_equal(f["timeseries/lfp"][:, -m:], block)


# ----------------------------------------------------------------- plotting


def _assert_png(path: Path) -> None:
    assert path.exists()
    data = path.read_bytes()
    assert len(data) > 1000
    assert data[:8] == PNG_SIGNATURE


def test_plot_run_writes_png(tmp_path: Path) -> None:
    path = _synthetic_run(tmp_path / "run.h5")
    out = save_run_figure(path)
    assert out == tmp_path / "run.png"
    _assert_png(out)
    out2 = save_run_figure(load_run(path), tmp_path / "figs" / "i2.png", instance=2)
    _assert_png(out2)
    with pytest.raises(IndexError):
        save_run_figure(path, tmp_path / "bad.png", instance=3)


def test_plot_run_tolerates_missing_optional_data(tmp_path: Path) -> None:
    path = _synthetic_run(tmp_path / "nospec.h5", spectra=False)
    _assert_png(save_run_figure(path))
    # A run with nothing but the root attributes still gives a figure.
    empty = tmp_path / "empty.h5"
    RunRecorder(empty, config={}, seed=0, n=1, closedloop_version="0.1.0").close()
    _assert_png(save_run_figure(empty))


def test_format_info_lists_status_config_and_metrics(tmp_path: Path) -> None:
    run = load_run(_synthetic_run(tmp_path / "run.h5"))
    text = format_info(run)
    assert "status: complete" in text
    for name in ("band_power_reduction", "teed_relative", "time_on_fraction", "wall_time_s"):
        assert name in text
    assert "dual_threshold" in text and "delayed_rate" in text
    assert "lfp" in text and "mV" in text and "1000 Hz" in text
    assert "[2]" in text  # per-instance columns for a small batch


def test_format_info_reports_failure(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with pytest.raises(ValueError), _recorder(path):
        raise ValueError("amplitude NaN")
    assert "status: failed (ValueError: amplitude NaN)" in format_info(load_run(path))


# ------------------------------------------------------------------- xarray


def test_to_xarray(tmp_path: Path) -> None:
    import xarray as xr  # in the test extra: this test must run, not skip

    run = load_run(_synthetic_run(tmp_path / "run.h5"))
    ds = run.to_xarray()
    assert isinstance(ds, xr.Dataset)
    # One dimension per clock: the five series sampled at 1 kHz share one.
    assert ds["lfp"].dims == ("instance", "time_0p001s")
    assert ds.sizes["time_0p001s"] == run.timeseries["lfp"].shape[1]
    np.testing.assert_array_equal(ds["lfp"].values, run.timeseries["lfp"])
    np.testing.assert_array_equal(
        ds["band_power_reduction"].values, run.metrics["band_power_reduction"]
    )
    assert ds["lfp"].attrs["units"] == "mV"
    np.testing.assert_allclose(ds["time_0p001s"].values, np.arange(4000) / 1000.0)
    assert ds["band_power_reduction"].dims == ("instance",)
    # The timeseries "frequency" stays a variable; the spectra's dim is renamed.
    assert ds["frequency"].dims == ("instance", "time_0p001s")
    assert ds["spectra_psd_stim"].dims == ("instance", "spectra_frequency")
    f = ds["spectra_frequency"].values
    assert f[0] == 0.0 and np.allclose(np.diff(f), 1000.0 / 512)  # Welch, nperseg 512
    near = ds["spectra_psd_stim"].sel(spectra_frequency=20.0, method="nearest")
    np.testing.assert_array_equal(near.values, run.arrays["spectra/psd_stim"][:, 10])


def test_to_xarray_without_xarray_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run.h5"
    _recorder(path).close()
    monkeypatch.setitem(sys.modules, "xarray", None)  # import xarray now fails
    with pytest.raises(ImportError, match="pip install"):
        load_run(path).to_xarray()


def test_rundata_is_frozen(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    _recorder(path).close()
    run = load_run(path)
    assert isinstance(run, RunData)
    with pytest.raises(AttributeError):
        run.status = "complete"  # type: ignore[misc]
    assert os.fspath(run.path) == os.fspath(path)


# ----------------------------------------------------------------- the io seams


def test_open_recorder_picks_the_writer_by_format_and_names_the_known_ones(
    tmp_path: Path,
) -> None:
    from closedloop.io import RECORDERS, open_recorder

    with open_recorder(
        "hdf5", tmp_path / "r.h5", config=CONFIG, seed=3, n=2, closedloop_version="0.1.0"
    ) as rec:
        assert isinstance(rec, RECORDERS["hdf5"])
        rec.create_timeseries("lfp", units="mV", sampling_rate_hz=100.0)
        rec.append("lfp", np.ones((2, 5)))
    run = load_run(tmp_path / "r.h5")
    assert run.status == "complete"
    assert run.timeseries["lfp"].shape == (2, 5)
    with pytest.raises(ValueError, match=r"output format 'zarr'.*known: hdf5, nwb"):
        open_recorder(
            "zarr", tmp_path / "r.zarr", config=CONFIG, seed=3, n=2, closedloop_version="0"
        )
    assert not (tmp_path / "r.zarr").exists()


def test_load_run_without_data_reads_attributes_and_metrics_only(tmp_path: Path) -> None:
    path = _synthetic_run(tmp_path / "run.h5")
    full = load_run(path)
    light = load_run(path, data=False)
    assert light.timeseries == {} and light.arrays == {}
    assert light.config == CONFIG and light.status == full.status == "complete"
    assert set(light.attrs) == set(full.attrs)
    assert set(light.metrics) == set(full.metrics) != set()
    for name in full.metrics:
        np.testing.assert_array_equal(light.metrics[name], full.metrics[name])
        assert light.metric_units[name] == full.metric_units[name]


def test_add_run_attrs_adds_to_a_finished_file_and_keeps_managed_names(tmp_path: Path) -> None:
    from closedloop.io import add_run_attrs

    path = tmp_path / "failed.h5"
    _recorder(path).close("failed", "diverged")
    status = add_run_attrs(path, {"run_id": "abc", "sweep_params": {"x": 1.5}, "wall_s": 2.0})
    assert status == ("failed", "diverged")
    run = load_run(path)
    assert run.attrs["run_id"] == "abc"
    assert run.attrs["sweep_params"] == {"x": 1.5}
    assert run.attrs["wall_s"] == 2.0
    with pytest.raises(ValueError, match="status"):
        add_run_attrs(path, {"status": "complete"})
    assert load_run(path).status == "failed"


def test_read_run_status_sees_only_finished_files(tmp_path: Path) -> None:
    from closedloop.io import read_run_status

    path = tmp_path / "run.h5"
    rec = _recorder(path)
    assert read_run_status(path) is None  # only the .partial file exists
    assert read_run_status(rec.partial_path) is None  # status "running"
    rec.close("failed", "boom")
    found = read_run_status(path)
    assert found["status"] == "failed" and found["error"] == "boom"
    assert np.isnan(found["wall_s"])


def test_a_run_file_holds_exactly_the_series_io_series_defines(tmp_path: Path) -> None:
    """Names, units, rates and descriptions of a real run's series come from one place."""
    from closedloop.config import load_config
    from closedloop.experiment import run_experiment
    from closedloop.io.series import run_series, state_series
    from closedloop.sensing.chain import FEATURES

    root = Path(__file__).resolve().parents[1]
    exp = load_config(
        root / "experiments" / "epileptor_responsive.yaml",
        ["duration_s=2.0", "output.figure=false"],
    )
    run = load_run(run_experiment(exp, tmp_path).path)
    loop = exp.loop
    specs = run_series(
        signal_units=loop.model.signal_units,
        signal_description=loop.model.signal_description,
        sensing_rate_hz=1.0 / loop.sample_s,
        control_rate_hz=1.0 / loop.control_period_s,
        envelope=loop.sensing.envelope,
        band_hz=loop.sensing.band_hz,
        features={name: FEATURES[name] for name in loop.sensing.features},
        baseline=True,
    )
    for name in loop.observables():
        units = loop.model.state_variables.get(name, "1")
        specs += state_series(name, units, exp.config.output.chunk_s, baseline=True)
    assert "feature_line_length" in {s.name for s in specs}
    assert "state_z_baseline" in {s.name for s in specs}
    assert set(run.timeseries) == {s.name for s in specs}
    for spec in specs:
        attrs = run.timeseries_attrs[spec.name]
        assert attrs["units"] == spec.units, spec.name
        assert attrs["sampling_rate_hz"] == spec.rate_hz, spec.name
        assert attrs["description"] == spec.description, spec.name
        assert attrs["start_time_s"] == spec.start_time_s, spec.name


def test_output_format_chooses_the_writer_and_an_unknown_one_is_refused_by_key_path(
    tmp_path, experiment_path
):
    from closedloop.config import ConfigError, load_config
    from closedloop.experiment import run_experiment

    path = experiment_path("pd_beta_adbs")
    exp = load_config(path, ["duration_s=1.0", "output.figure=false", "output.format=hdf5"])
    run = load_run(run_experiment(exp, tmp_path).path)
    assert run.status == "complete" and run.config["output"]["format"] == "hdf5"
    with pytest.raises(ConfigError) as err:
        load_config(path, ["output.format=zarr"])
    assert [p for p, _ in err.value.problems] == ["output.format"]
    assert "hdf5" in err.value.problems[0][1]
