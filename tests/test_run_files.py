"""Run files others can open (one dimension per clock), choose what to write, and repeat.

The default experiment, shortened, is written once; xarray opens it in a
process that never imports closedloop; output settings change what is
written but never what is simulated; provenance names the software; and
``closedloop rerun`` repeats the run bit for bit (and says when it does not).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from closedloop.cli.main import main
from closedloop.config import load_config
from closedloop.experiment import run_experiment
from closedloop.io import load_run
from closedloop.io.provenance import plugin_packages

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "pd_beta_adbs.yaml"
#: 1 s at a 1 kHz sensing rate and a 20 ms control period: 1,000 and 50 samples.
SHORT = ["duration_s=1.0", "n_instances=2", "output.figure=false"]


def _run(out: Path, *overrides: str) -> Path:
    exp = load_config(EXPERIMENT, [*SHORT, *overrides])
    return run_experiment(exp, out).path


@pytest.fixture(scope="module")
def run_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run(tmp_path_factory.mktemp("default"))


# Runs in a fresh interpreter where importing closedloop fails: a
# collaborator without closedloop installed.
_OPEN_WITHOUT_CLOSEDLOOP = """
import json, sys
sys.modules["closedloop"] = None
import xarray as xr
path = sys.argv[1]
ts = xr.open_dataset(path, group="timeseries", engine="h5netcdf")
sp = xr.open_dataset(path, group="spectra", engine="h5netcdf")
me = xr.open_dataset(path, group="metrics", engine="h5netcdf")
print(json.dumps({
    "sizes": dict(ts.sizes),
    "dims": {k: list(v.dims) for k, v in ts.data_vars.items()},
    "time_sensing": ts["time_sensing"].values.tolist(),
    "time_control": ts["time_control"].values.tolist(),
    "time_units": ts["time_sensing"].attrs["units"],
    "lfp": ts["lfp"].values.tolist(),
    "psd_20": sp["psd_stim"].sel(frequency=20.0, method="nearest").values.tolist(),
    "frequency_units": sp["frequency"].attrs["units"],
    "metric_dims": list(me["band_power_reduction"].dims),
    "bursts": dict(xr.open_dataset(path, group="bursts", engine="h5netcdf").sizes),
    "imported": "closedloop" in sys.modules and sys.modules["closedloop"] is not None,
}))
"""


def _without_closedloop(script: str, path: Path) -> dict:
    """Run ``script`` on ``path`` in a fresh interpreter; the JSON it prints."""
    out = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


@pytest.mark.slow
def test_xarray_opens_a_run_file_with_one_dimension_per_clock(run_file: Path) -> None:
    got = _without_closedloop(_OPEN_WITHOUT_CLOSEDLOOP, run_file)
    assert not got["imported"]
    # Two clocks, two time dimensions: no Cartesian product of per-series axes.
    assert got["sizes"] == {"instance": 2, "time_sensing": 1000, "time_control": 50}
    for name in ("lfp", "lfp_sensed", "lfp_baseline"):
        assert got["dims"][name] == ["instance", "time_sensing"]
    for name in ("biomarker", "amplitude", "frequency", "pulse_width", "pulse_count"):
        assert got["dims"][name] == ["instance", "time_control"]
    # Sample k at k / rate: 1 kHz sensing, 20 ms control period.
    np.testing.assert_allclose(got["time_sensing"], np.arange(1000) / 1000.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["time_control"], np.arange(50) * 0.02, rtol=0, atol=1e-12)
    assert got["time_units"] == "s" and got["frequency_units"] == "Hz"
    run = load_run(run_file)
    np.testing.assert_array_equal(got["lfp"], run.timeseries["lfp"])
    # Welch segments of 1 s: 1 Hz bins, so 20 Hz is bin 20.
    np.testing.assert_array_equal(got["psd_20"], run.arrays["spectra/psd_stim"][:, 20])
    assert got["metric_dims"] == ["instance"]
    # Burst-duration histogram: bins and their edges, one more edge than bins.
    assert got["bursts"]["edge"] == got["bursts"]["bin"] + 1 and got["bursts"]["instance"] == 2


def test_to_dataframe_has_one_row_per_instance_and_sample(run_file: Path) -> None:
    run = load_run(run_file)
    frame = run.to_dataframe("time_control")
    assert len(frame) == 2 * 50  # not 2 * 50 * 50 as with one time axis per series
    np.testing.assert_array_equal(
        frame["amplitude"].to_numpy().reshape(2, 50), run.timeseries["amplitude"]
    )
    with pytest.raises(KeyError, match="time_sensing"):
        run.to_dataframe("time_integration")


def test_output_settings_change_what_is_written_not_what_is_simulated(
    run_file: Path, tmp_path: Path
) -> None:
    path = _run(
        tmp_path,
        "output.dtype=float32",
        "output.compression=gzip-1",
        "output.series=[lfp, amplitude]",
        "output.decimate={lfp: 4}",
    )
    full, small = load_run(run_file), load_run(path)
    assert set(small.timeseries) == {"lfp", "amplitude"}
    # Every 4th sample of the full-rate signal, stored as float32 (rounded once).
    expected = full.timeseries["lfp"][:, ::4].astype(np.float32)
    np.testing.assert_array_equal(small.timeseries["lfp"], expected)
    assert small.timeseries["lfp"].dtype == np.float32
    np.testing.assert_allclose(small.time("lfp"), np.arange(250) * 0.004, atol=1e-12)
    # Metrics come from the simulation, not from the file: unchanged.
    np.testing.assert_array_equal(
        small.metrics["band_power_reduction"], full.metrics["band_power_reduction"]
    )
    with h5py.File(path, "r") as f:
        assert f["timeseries/lfp"].compression == "gzip"
        assert f["timeseries/lfp"].compression_opts == 1
    with h5py.File(run_file, "r") as f:
        # The default: lzf where it costs nothing measurable, raw sensed signals.
        assert f["timeseries/amplitude"].compression == "lzf"
        assert f["timeseries/lfp"].compression is None


def test_an_unknown_series_name_fails_the_run_with_its_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "run",
            str(EXPERIMENT),
            "--out",
            str(tmp_path),
            *(x for o in [*SHORT, "output.series=[lfp, amplitud]"] for x in ("--set", o)),
        ]
    )
    assert code != 0
    err = capsys.readouterr().err
    assert "output.series: no time series 'amplitud'" in err
    assert "Traceback" not in err


def test_files_of_format_version_2_still_load(tmp_path: Path) -> None:
    path = tmp_path / "old.h5"
    with h5py.File(path, "w") as f:
        f.attrs.update({"format_version": 2, "config": "{}", "n_instances": 2})
        f.attrs.update({"status": "complete", "provenance": "{}"})
        lfp = f.create_dataset("timeseries/lfp", data=np.ones((2, 10)))
        lfp.attrs.update({"units": "mV", "sampling_rate_hz": 100.0, "dims": "instance,time"})
        f.create_dataset("spectra/frequency_hz", data=np.arange(5.0)).attrs["units"] = "Hz"
        psd = f.create_dataset("spectra/psd_stim", data=np.ones((2, 5)))
        psd.attrs.update({"units": "mV^2/Hz", "dims": "instance,frequency"})
    ds = load_run(path).to_xarray()
    assert ds["lfp"].dims == ("instance", "time_lfp")
    np.testing.assert_array_equal(ds["time_lfp"].values, np.arange(10) / 100.0)
    assert ds["spectra_psd_stim"].dims == ("instance", "frequency")
    np.testing.assert_array_equal(ds["frequency"].values, np.arange(5.0))


@pytest.mark.slow
def test_provenance_names_the_source_and_software(run_file: Path, tmp_path: Path) -> None:
    import numba
    import pydantic
    import scipy

    prov = load_run(run_file).attrs["provenance"]
    repo = Path(__file__).resolve().parents[1]
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    if head.returncode == 0:
        assert prov["git_commit"] == head.stdout.strip()
        assert isinstance(prov["git_dirty"], bool)
    for module in (np, numba, pydantic, scipy, h5py):
        assert prov["dependencies"][module.__name__] == module.__version__
    # The kernels' cache directory is named after the hash of their sources.
    assert Path(numba.config.CACHE_DIR).name == prov["kernel_source_hash"]
    assert "hostname" not in prov and prov["plugins"] == {}
    asked = load_run(_run(tmp_path, "output.hostname=true")).attrs["provenance"]
    assert asked["hostname"] == socket.gethostname()
    # A plugin's package: its distribution and version, None for a file on sys.path.
    assert plugin_packages(["numpy.linalg.norm", "user_controllers.HalfAmplitude"]) == {
        "numpy.linalg.norm": f"numpy {np.__version__}",
        "user_controllers.HalfAmplitude": None,
    }


def test_info_shows_provenance(run_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(run_file)]) == 0
    out = capsys.readouterr().out
    assert "kernel_source_hash:" in out and "git_commit:" in out


@pytest.mark.slow
def test_rerun_reports_identical_and_different_results(
    run_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rerun", str(run_file)]) == 0
    assert "identical" in capsys.readouterr().out
    # The same file with one delivered amplitude changed is not what the config gives.
    changed = tmp_path / "changed.h5"
    shutil.copy(run_file, changed)
    with h5py.File(changed, "r+") as f:
        f["timeseries/amplitude"][1, 7] += 0.5
    assert main(["rerun", str(changed)]) == 1
    out = capsys.readouterr().out
    assert "NOT identical" in out
    assert "time series 'amplitude': 1 of 100 values differ (largest gap 0.5)" in out


def test_rerun_refuses_a_plugin_unless_trusted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "plugin.h5"
    with h5py.File(path, "w") as f:
        config = {"name": "x", "duration_s": 1.0, "controller": {"name": "evil.module.Ctrl"}}
        f.attrs.update({"format_version": 3, "config": json.dumps(config), "n_instances": 1})
        f.attrs.update({"status": "complete", "provenance": "{}"})
    assert main(["rerun", str(path)]) == 2
    err = capsys.readouterr().err
    assert "controller.name = evil.module.Ctrl" in err and "--trust-plugins" in err


def test_the_baseline_in_small_blocks_gives_the_same_run(
    run_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import closedloop.core.baseline
    import closedloop.io.spool

    # The unstimulated copy in blocks of 3 control periods (2 instances, 20
    # samples a period), not dividing the 50-period chunk; the burst series
    # spooled to the file every 7 periods and read back one row at a time.
    monkeypatch.setattr(closedloop.core.baseline, "BASELINE_BLOCK_BYTES", 8 * 2 * 20 * 3)
    monkeypatch.setattr(closedloop.io.spool, "SPOOL_BUFFER_BYTES", 8 * 2 * 7)
    blocked, whole = load_run(_run(tmp_path)), load_run(run_file)
    for name in ("lfp_baseline", "lfp", "amplitude"):
        np.testing.assert_array_equal(blocked.timeseries[name], whole.timeseries[name])
    for name, value in whole.metrics.items():
        np.testing.assert_array_equal(blocked.metrics[name], value, err_msg=name)
    np.testing.assert_array_equal(
        blocked.arrays["spectra/psd_baseline"], whole.arrays["spectra/psd_baseline"]
    )


_OPEN_EVENTS_WITHOUT_CLOSEDLOOP = """
import json, sys
sys.modules["closedloop"] = None
import xarray as xr
ev = xr.open_dataset(sys.argv[1], group="events/doses", engine="h5netcdf")
print(json.dumps({
    "sizes": dict(ev.sizes),
    "dims": {k: list(v.dims) for k, v in ev.data_vars.items()},
    "event": ev["event"].values.tolist(),
    "time_s": ev["time_s"].values.tolist(),
    "units": ev["amount_mg"].attrs["units"],
    "imported": "closedloop" in sys.modules and sys.modules["closedloop"] is not None,
}))
"""


def test_xarray_opens_an_events_table_on_its_event_dimension(tmp_path: Path) -> None:
    from closedloop.io import RunRecorder

    path = tmp_path / "events.h5"
    fields = {"time_s": ("f8", "s"), "instance": ("i8", "1"), "amount_mg": ("f8", "mg")}
    with RunRecorder(path, config={}, seed=0, n=2, closedloop_version="x") as rec:
        rec.create_events("doses", fields, description="doses given")
        rec.create_events("empty", fields)  # a table with no events opens too
        # Two appends: the event coordinate grows with the columns.
        rec.append_events("doses", time_s=np.array([0.5, 1.0]), instance=np.array([0, 1]),
                          amount_mg=np.array([10.0, 20.0]))  # fmt: skip
        rec.append_events("doses", time_s=np.array([2.0]), instance=np.array([0]),
                          amount_mg=np.array([10.0]))  # fmt: skip
        with pytest.raises(ValueError, match="'event' is the table's dimension"):
            rec.create_events("bad", {"event": ("i8", "1")})
    got = _without_closedloop(_OPEN_EVENTS_WITHOUT_CLOSEDLOOP, path)
    assert not got["imported"]
    assert got["sizes"] == {"event": 3}
    assert got["dims"] == {name: ["event"] for name in fields}
    assert got["event"] == [0, 1, 2] and got["time_s"] == [0.5, 1.0, 2.0]
    assert got["units"] == "mg"
    # The coordinate is bookkeeping: closedloop's own reader shows the columns only.
    run = load_run(path)
    assert sorted(k for k in run.arrays if k.startswith("events/doses/")) == [
        "events/doses/amount_mg", "events/doses/instance", "events/doses/time_s"]  # fmt: skip
    import xarray as xr

    assert dict(xr.open_dataset(path, group="events/empty", engine="h5netcdf").sizes) == {
        "event": 0
    }
