"""The modality experiments run from their files to a complete run file and a figure.

Each runs shortened through the command line (``--set``); what it delivered
is recomputed from the recorded per-period series and compared with the
run's dose metrics.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from closedloop import load_run

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def run_cli(name: str, out: Path, *overrides: str) -> Path:
    args = [sys.executable, "-m", "closedloop.cli.main", "run", str(EXPERIMENTS / f"{name}.yaml")]
    args += ["--out", str(out)]
    for item in overrides:
        args += ["--set", item]
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (out / f"{name}.png").exists()
    return out / f"{name}.h5"


@pytest.mark.slow
def test_accelerated_itbs_delivers_each_session_and_its_dose(tmp_path):
    # Two sessions of 60 pulses (two 2 s trains, 10 s apart), one per epoch.
    path = run_cli(
        "mdd_itbs_accelerated",
        tmp_path,
        "duration_s=7200",
        "slow.epoch_s=20",
        "controller.params.interval_s=20",
        "controller.params.n_sessions=2",
        "device.tms.pulses_per_session=60",
    )
    run = load_run(path)
    assert run.status == "complete"
    assert (
        run.timeseries_attrs["amplitude"]["units"]
        == "%RMT"
        == run.metric_units["mean_amplitude_ma"]
    )
    count = run.timeseries["pulse_count"][0]
    assert count[-1] == 120 == run.metrics["tms_pulses"][0]
    # Intensity recorded only in the periods with pulses, at the commanded 90 % RMT.
    intensity = run.timeseries["amplitude"][0]
    fired = np.diff(np.r_[0.0, count]) > 0
    assert np.all(intensity[fired] == 90.0) and np.all(intensity[~fired] == 0.0)
    assert run.metrics["tms_dose_pct_rmt"][0] == pytest.approx(120 * 90.0)
    assert run.metrics["tms_pattern_units"][0] == 40  # triplets
    # Each session: two trains 10 s apart, then nothing until the next epoch.
    t = np.arange(count.size) * run.config["control"]["period_s"]
    first_pulse = t[np.argmax(count > 0)]
    assert first_pulse == pytest.approx(1.0, abs=0.05)
    assert np.ptp(count[(t > first_pulse + 12.0) & (t < 20.0)]) == 0


@pytest.mark.slow
def test_duty_cycled_vns_pulses_only_in_its_on_phases(tmp_path):
    path = run_cli(
        "mdd_vns_cervical", tmp_path, "duration_s=8", "device.vns.on_s=1", "device.vns.off_s=3"
    )
    run = load_run(path)
    assert run.status == "complete"
    count = run.timeseries["pulse_count"][0]
    t = (np.arange(count.size) + 1) * run.config["control"]["period_s"]
    new = np.diff(np.r_[0.0, count])
    assert np.all(new[(t % 4.0 > 1.0 + 0.05)] == 0)  # off-phases
    # Two 1 s on-phases at 20 Hz; the first pulse falls before the first command.
    assert count[-1] == run.metrics["vns_pulses"][0]
    assert 2 * 20 - 2 <= count[-1] <= 2 * 20
    assert run.metrics["vns_pulse_rate_hz"][0] == pytest.approx(count[-1] / 8.0)
