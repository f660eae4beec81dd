"""A cohort killed part-way on a Dask cluster resumes to the files of an uninterrupted run.

The cohort is ``experiments/cohort_clinic.yaml`` shortened: plain arms and a
personalised (clinic-tuned) arm, all through the sweep's executors.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from closedloop.io import load_run

pytest.importorskip("distributed")

CONFIG = Path(__file__).resolve().parents[1] / "experiments" / "cohort_clinic.yaml"
WEEK_S = 7 * 86400.0
N_RUNS = 12  # 4 patients x 3 arms


def _cmd(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "closedloop.cli.main",
        "cohort",
        str(CONFIG),
        "--out",
        str(out),
        "--no-progress",
        "--no-figures",
        "--set",
        "cohort.priors.n_patients=4",
        "--set",
        f"duration_s={4 * WEEK_S}",
        "--set",
        "cohort.arms.personalised.clinic.n_visits=2",
        *extra,
    ]


def _assert_same_runs(a: Path, b: Path) -> None:
    names = sorted(p.name for p in (a / "runs").glob("*.h5"))
    assert names == sorted(p.name for p in (b / "runs").glob("*.h5"))
    assert len(names) == N_RUNS
    for name in names:
        x, y = load_run(a / "runs" / name), load_run(b / "runs" / name)
        assert x.status == y.status == "complete"
        assert set(x.timeseries) == set(y.timeseries)
        for key, value in x.timeseries.items():
            np.testing.assert_array_equal(y.timeseries[key], value, err_msg=f"{name}: {key}")
        assert set(x.metrics) == set(y.metrics)
        for key, value in x.metrics.items():
            np.testing.assert_array_equal(y.metrics[key], value, err_msg=f"{name}: {key}")


@pytest.mark.dask
@pytest.mark.slow
def test_cohort_killed_on_dask_resumes_bit_identical_to_an_uninterrupted_run(tmp_path):
    ref = tmp_path / "ref"
    done = subprocess.run(_cmd(ref, "--workers", "1"), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{N_RUNS} complete, 0 failed" in done.stdout

    out = tmp_path / "dask"
    dask_args = ("--scheduler", "local", "--workers", "2", "--batch-size", "1")
    proc = subprocess.Popen(
        _cmd(out, *dask_args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    family: set[psutil.Process] = set()
    try:
        deadline = time.monotonic() + 300
        while len(list((out / "runs").glob("*.h5"))) < 2:
            assert proc.poll() is None, "the cohort ended before it could be killed"
            assert time.monotonic() < deadline
            family.update(psutil.Process(proc.pid).children(recursive=True))
            time.sleep(0.005)
        family.update(psutil.Process(proc.pid).children(recursive=True))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        # The cluster's worker processes die with the cohort that started them.
        _, alive = psutil.wait_procs(list(family), timeout=30)
        assert not alive, f"Dask processes outlived the killed cohort: {alive}"
    finally:
        for p in family:  # only the processes this test started
            if p.is_running():
                p.kill()
        if proc.poll() is None:
            proc.kill()
    first = sorted(p.name for p in (out / "runs").glob("*.h5"))
    assert 2 <= len(first) < N_RUNS
    for name in first:  # what is there is complete
        assert load_run(out / "runs" / name).status == "complete"

    again = subprocess.run(_cmd(out, *dask_args), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    n_left = N_RUNS - len(first)
    assert f"{N_RUNS} complete, 0 failed ({n_left} run now, {len(first)} done before)" in (
        again.stdout
    )
    _assert_same_runs(ref, out)
    personalised = [
        p for p in (out / "runs").glob("*.h5") if "clinic" in load_run(p, data=False).attrs
    ]
    assert len(personalised) == 4
