"""NWB export: what a run file holds, readable by pynwb and clean for the NWB inspector."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pynwb = pytest.importorskip("pynwb")

from closedloop.config import load_config  # noqa: E402
from closedloop.experiment import run_experiment  # noqa: E402
from closedloop.io import load_run  # noqa: E402
from closedloop.io.nwb import export_nwb  # noqa: E402


@pytest.fixture(scope="module")
def fear_run(tmp_path_factory):
    """A fear-extinction session with per-CS events, run with output.format nwb."""
    out = tmp_path_factory.mktemp("nwb")
    exp = load_config(
        "experiments/fear_extinction_open_loop.yaml",
        [
            "output.format=nwb",
            "output.figure=false",
            "fear_expression={period_s: 0.05}",
            "n_instances=2",
        ],
    )
    return run_experiment(exp, out).path


def test_nwb_file_holds_the_runs_series_events_metrics_and_config(fear_run):
    nwb_path = fear_run.with_suffix(".nwb")
    assert nwb_path.exists()  # written beside the HDF5 file by output.format: nwb
    run = load_run(fear_run)
    with pynwb.NWBHDF5IO(str(nwb_path), "r") as io:
        nwb = io.read()
        lfp = nwb.acquisition["lfp"]
        np.testing.assert_array_equal(lfp.data[:], run.timeseries["lfp"].T)
        assert (
            lfp.rate == pytest.approx(1000.0) and lfp.unit == run.timeseries_attrs["lfp"]["units"]
        )
        amp = nwb.stimulus["stimulation_amplitude"]
        np.testing.assert_array_equal(amp.data[:], run.timeseries["amplitude"].T)
        assert amp.unit == "mA"
        on = nwb.intervals["stimulation_on"].to_dataframe()
        assert {i for row in on["instances"] for i in row} == {0, 1}
        assert (on["stop_time"] > on["start_time"]).all()
        module = nwb.processing["closedloop"]
        cs = module["events_fear_cs"].to_dataframe()
        np.testing.assert_array_equal(cs["fear_index"], run.arrays["events/fear_cs/fear_index"])
        metrics = module["metrics"].to_dataframe()
        np.testing.assert_array_equal(metrics["teed_j"], run.metrics["teed_j"])
        assert "fear_extinction_open_loop" in nwb.notes and '"seed": 1' in nwb.notes
        assert "closedloop" in nwb.source_script
        np.testing.assert_array_equal(module["fear_index"].data[:], run.timeseries["fear_index"].T)


def test_nwb_inspector_reports_no_critical_or_best_practice_violation(fear_run):
    from nwbinspector import Importance, inspect_nwbfile

    messages = list(inspect_nwbfile(nwbfile_path=str(fear_run.with_suffix(".nwb"))))
    bad = [
        m
        for m in messages
        if m.importance in (Importance.CRITICAL, Importance.BEST_PRACTICE_VIOLATION)
    ]
    assert not bad, [(m.check_function_name, m.message) for m in bad]


def test_export_command_converts_an_existing_run(fear_run, tmp_path):
    out = tmp_path / "again.nwb"
    done = subprocess.run(
        [sys.executable, "-m", "closedloop.cli.main", "export", str(fear_run), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        assert "lfp" in io.read().acquisition
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    fail = subprocess.run(
        [sys.executable, "-m", "closedloop.cli.main", "export", str(bad)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert fail.returncode == 2 and "Traceback" not in fail.stderr
    assert "closedloop: error:" in fail.stderr


def test_a_failed_run_is_not_exported(tmp_path, fear_run):
    import h5py

    broken = tmp_path / "failed.h5"
    broken.write_bytes(fear_run.read_bytes())
    with h5py.File(broken, "a") as f:
        f.attrs["status"] = "failed"
    with pytest.raises(ValueError, match="not complete"):
        export_nwb(broken)
