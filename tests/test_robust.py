"""No file that lies, no traceback for a user's mistake (issue 11).

Each case here was first reproduced on the command line: a traceback, a
segfault, exit 0 with NaN metrics or a corrupt file marked complete. Bad
input is a table of inputs and the one ``closedloop: error:`` line expected,
so the next case is one more line. Writers that collide, fill the disk or are
killed are real processes.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from closedloop.cli.main import main
from closedloop.config.files import MAX_CONFIG_BYTES
from closedloop.controllers import Controller
from closedloop.io import load_run
from closedloop.testing.controller import conformance_report

CLI = [sys.executable, "-P", "-c", "from closedloop.cli.main import console_main; console_main()"]

#: A quick valid experiment: 1.5 s of the default STN-GPe model, no figure.
BASE = {
    "name": "quick",
    "duration_s": 1.5,
    "warmup_s": 0.1,
    "output": {"figure": False, "record_baseline": False},
}


def _one_error(err: str, *needles: str) -> str:
    """The single ``closedloop: error:`` line of ``err``, holding every needle."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("closedloop: error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding ``base.yaml`` and a plugin package ``plug``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    plug = tmp_path / "plug"
    plug.mkdir()
    (plug / "__init__.py").write_text("")
    (plug / "badsyntax.py").write_text("def f(:\n    pass\n")
    (plug / "raises.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (tmp_path / "huge.yaml").write_bytes(b"a" * (MAX_CONFIG_BYTES + 1))
    return tmp_path


# (case, argv, exit code, what the error line must say). Every value here
# passed validation, then failed mid-run or ran to NaN metrics, or crashed
# the reading of the file.
BAD_INPUT = [
    ("inf duration", ["validate", "base.yaml", "--set", "duration_s=.inf"], 2,
     ["base.yaml: duration_s:", "finite"]),
    ("nan warm-up", ["validate", "base.yaml", "--set", "warmup_s=.nan"], 2,
     ["warmup_s:", "finite"]),
    ("shorter than a period", ["validate", "base.yaml", "--set", "duration_s=0.01"], 2,
     ["duration_s:", "shorter than one control period"]),
    ("no longer than discard_s", ["validate", "base.yaml", "--set", "duration_s=0.5"], 2,
     ["duration_s:", "metrics.discard_s"]),
    ("reversed band", ["validate", "base.yaml", "--set", "metrics.band_hz=[30, 13]"], 2,
     ["metrics.band_hz:", "lower edge must be below"]),
    ("band between bins", ["validate", "base.yaml", "--set", "metrics.segment_s=0.01"], 2,
     ["metrics.band_hz:", "holds no frequency"]),
    ("tiny dt", ["validate", "base.yaml", "--set", "model.dt_s=1e-300"], 2,
     ["model.dt_s:", "too small"]),
    ("huge batch", ["validate", "base.yaml", "--set", "n_instances=100000000000"], 2,
     ["n_instances:", "need about", "available"]),
    ("name ..", ["validate", "base.yaml", "--set", "name=.."], 2,
     ["name:", "only of dots"]),
    ("sweep named ..", ["sweep", "base.yaml", "--dry-run", "--set", "name=..",
                        "--set", "sweep={grid: {seed: [1, 2]}}"], 2, ["name:", "only of dots"]),
    ("inf window", ["validate", "base.yaml", "--set", "sensing.envelope_window_s=.inf"], 2,
     ["sensing.envelope_window_s:", "finite"]),
    ("inf impedance", ["validate", "base.yaml", "--set", "device.impedance_ohm=.inf"], 2,
     ["device.impedance_ohm:", "finite"]),
    ("nan in a band", ["validate", "base.yaml", "--set", "sensing.band_hz=[13, .nan]"], 2,
     ["sensing.band_hz:", "nan"]),
    ("nan parameter", ["validate", "base.yaml", "--set", "model.params={w_GS: .nan}"], 2,
     ["model.params.w_GS:", "finite"]),
    ("--set not YAML", ["validate", "base.yaml", "--set", "duration_s=[1"], 2,
     ["--set: duration_s:", "not valid YAML"]),
    ("--set python tag", ["validate", "base.yaml", "--set", "duration_s=!!python/name:os.system"],
     2, ["--set: duration_s:", "!!python"]),
    ("binary file", ["validate", "binary.yaml"], 2, ["binary.yaml: (file):", "binary"]),
    ("not UTF-8", ["validate", "latin1.yaml"], 2, ["latin1.yaml: (file):", "not UTF-8"]),
    ("directory", ["validate", "plug"], 2, ["plug: (file):", "is a directory"]),
    ("huge file", ["validate", "huge.yaml"], 2, ["huge.yaml: (file):", "larger than 4 MiB"]),
    ("plugin syntax error", ["validate", "base.yaml", "--set", "controller.name=plug.badsyntax.C"],
     2, ["controller.name:", "syntax error", "badsyntax.py, line 1"]),
    ("plugin raises", ["validate", "base.yaml", "--set", "controller.name=plug.raises.C"], 2,
     ["controller.name:", "raised RuntimeError when imported: boom at import"]),
    ("--out is a file", ["run", "base.yaml", "--out", "base.yaml"], 2,
     ["--out base.yaml:", "not a directory"]),
    ("damaged run file", ["info", "binary.yaml"], 2, ["binary.yaml:"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "code", "needles"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT]
)
def test_bad_input_gets_one_line_naming_the_key(workdir, capsys, argv, code, needles):
    started = time.perf_counter()
    assert main(argv) == code
    _one_error(capsys.readouterr().err, *needles)
    assert time.perf_counter() - started < 10.0  # refused before anything heavy runs
    assert not (workdir / "results").exists()


def test_a_short_run_has_finite_band_metrics(workdir, capsys):
    # 0.9 s leaves 0.4 s after discard_s: less than one 1 s Welch segment,
    # which gave NaN beta metrics and RuntimeWarning lines before.
    args = ["run", "base.yaml", "--out", "out", "--set", "duration_s=0.9"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "RuntimeWarning" not in captured.err and " nan " not in captured.out
    metrics = load_run(workdir / "out" / "quick.h5").metrics
    assert np.all(np.isfinite(metrics["band_power_stim"]))


class RaisesLate(Controller):
    """Raises inside update() after 0.5 s, as a user's bug would."""

    def reset(self, n, rng):
        self.n_ = n

    def update(self, t, features):
        if t > 0.5:
            raise ZeroDivisionError("a user's bug")
        return {"amplitude_ma": np.zeros(self.n_)}


def test_a_controller_raising_mid_run_is_one_line_and_a_failed_file(workdir, capsys):
    name = f"{__name__}.RaisesLate"
    assert main(["run", "base.yaml", "--out", "out", "--set", f"controller.name={name}"]) == 1
    _one_error(
        capsys.readouterr().err,
        "the run failed: ZeroDivisionError: a user's bug",
        "test_robust.py",  # where, in the user's code
        "status 'failed'",
    )
    run = load_run(workdir / "out" / "quick.h5")
    assert run.status == "failed" and "a user's bug" in run.attrs["message"]


def test_divergence_in_the_warm_up_is_reported_in_the_warm_up(workdir, capsys, monkeypatch):
    # A model that blows up 0.66 s into a 1 s warm-up was reported at
    # t = 0.007 s of the run, the warm-up unmentioned.
    from closedloop.core.model import NumbaModel

    real = NumbaModel.advance
    done = {"steps": 0}

    def advance(self, n_steps, stimulation=None):
        out = real(self, n_steps, stimulation)
        first = done["steps"]
        done["steps"] += n_steps
        k = 6600 - first  # step 6600 at dt = 0.1 ms: 0.66 s
        if 0 <= k < n_steps:
            out[0, k:] = np.nan
        return out

    monkeypatch.setattr(NumbaModel, "advance", advance)
    assert main(["run", "base.yaml", "--out", "out", "--set", "warmup_s=1.0"]) == 1
    _one_error(
        capsys.readouterr().err,
        "0.6601 s into the 1 s warm-up",
        "no run file written",
    )
    assert not (workdir / "out" / "quick.h5").exists()


def _mount_tmpfs(where: Path, *options: str) -> bool:
    """Mount a tmpfs at ``where`` (as root, where allowed); whether it worked."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    where.mkdir(parents=True, exist_ok=True)
    opts = ",".join(("size=12m", *options))
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True
    )
    return proc.returncode == 0


def _umount(where: Path) -> None:
    subprocess.run(["umount", str(where)], capture_output=True, check=False)


def test_a_read_only_output_directory_is_bad_input(workdir, capsys):
    out = workdir / "ro"
    if _mount_tmpfs(out, "ro"):
        try:
            assert main(["run", "base.yaml", "--out", str(out)]) == 2
        finally:
            _umount(out)
    elif os.geteuid() != 0:
        out.mkdir()
        out.chmod(0o555)
        assert main(["run", "base.yaml", "--out", str(out)]) == 2
    else:
        pytest.skip("root without mount: no read-only directory to be had")
    _one_error(capsys.readouterr().err, f"--out {out}", "cannot write there")


@pytest.mark.slow
def test_a_full_disk_is_one_line_exit_1_and_no_file(workdir):
    # 64 instances for 30 s write about 60 MB: far more than the 12 MB the
    # disk (a tmpfs) or the file size limit (RLIMIT_FSIZE) allows. Before,
    # h5py printed ~30 chained tracebacks and the process died with SIGSEGV.
    out = workdir / "disk"
    mounted = _mount_tmpfs(out)

    def limit_file_size() -> None:
        if not mounted:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death
            resource.setrlimit(resource.RLIMIT_FSIZE, (12 << 20, 12 << 20))

    argv = ["run", "base.yaml", "--out", str(out), "--no-progress", "--set", "duration_s=30",
            "--set", "n_instances=64", "--set", "output.chunk_s=0.5"]  # fmt: skip
    try:
        proc = subprocess.run(
            [*CLI, *argv], capture_output=True, text=True, preexec_fn=limit_file_size, timeout=300
        )
        left = sorted(p.name for p in out.iterdir())
    finally:
        if mounted:
            _umount(out)
    assert proc.returncode == 1, proc.stderr
    reason = "no space left on device" if mounted else "file size limit"
    _one_error(proc.stderr, f"{out / 'quick.h5'}: {reason}", "partial file was removed")
    assert left == []  # no final file, no .partial, no lock


HOLD = '''
import os, time
import numpy as np
from closedloop.controllers import Controller

class Hold(Controller):
    """Waits in its first update() until the file 'release' exists (or 60 s)."""

    def reset(self, n, rng):
        self.n_ = n

    def update(self, t, features):
        end = time.monotonic() + 60
        open("holding", "w").close()
        while not os.path.exists("release") and time.monotonic() < end:
            time.sleep(0.02)
        return {"amplitude_ma": np.full(self.n_, 1.0)}
'''


def _wait_for(path: Path, proc: subprocess.Popen, timeout_s: float = 120.0) -> None:
    end = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "the first writer never started its run"
        time.sleep(0.05)


@pytest.mark.slow
def test_concurrent_and_killed_writers_never_leave_a_bad_file(workdir):
    # Two runs on one --out: the second used to truncate the first's
    # .partial file, which the first then renamed into place as "complete".
    (workdir / "hold.py").write_text(HOLD)
    argv = [*CLI, "run", "base.yaml", "--out", "out", "--no-progress"]
    first = subprocess.Popen(
        [*argv, "--set", "controller.name=hold.Hold"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(workdir / "holding", first)
        partial = workdir / "out" / "quick.h5.partial"
        size = partial.stat().st_size
        second = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        assert second.returncode == 1, second.stderr
        _one_error(second.stderr, "out/quick.h5: another closedloop process is writing")
        assert partial.stat().st_size >= size  # the first writer's file was not truncated
        assert first.poll() is None
    finally:
        # Killed while writing: its .partial and lock file hold no lock any more.
        first.kill()
        first.wait(timeout=60)
    assert not (workdir / "out" / "quick.h5").exists()
    third = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr
    assert load_run(workdir / "out" / "quick.h5").status == "complete"
    assert sorted(p.name for p in (workdir / "out").iterdir()) == ["quick.h5"]


def test_libraries_in_the_working_directory_are_not_imported(workdir):
    # cli.main() used to put the working directory first on sys.path.
    for lib in ("h5py", "pydantic", "numpy"):
        (workdir / f"{lib}.py").write_text(f"open('imported_{lib}', 'w').close()\n")
    proc = subprocess.run([*CLI, "validate", "base.yaml"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert not list(workdir.glob("imported_*"))


def test_help_says_configs_run_code(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "imports and runs" in out and "trusted sources" in out


def test_reading_a_run_file_never_imports_code_named_in_it(workdir, capsys):
    assert main(["run", "base.yaml", "--out", "out"]) == 0
    path = workdir / "out" / "quick.h5"
    (workdir / "evil.py").write_text("open('evil_ran', 'w').close()\nclass Evil: pass\n")
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["config"])
        config["controller"] = {"name": "evil.Evil", "params": {}}
        f.attrs["config"] = json.dumps(config)
    capsys.readouterr()
    assert main(["info", str(path)]) == 0
    assert main(["plot", str(path), "--kind", "phase"]) == 2
    _one_error(capsys.readouterr().err, "'evil.Evil' is not built in", "--import-controller")
    assert not (workdir / "evil_ran").exists()
    # Asked for explicitly, the import happens (and is refused as no Controller).
    assert main(["plot", str(path), "--kind", "phase", "--import-controller"]) == 2
    assert (workdir / "evil_ran").exists()
    # A damaged run file (cut in half) is one line too, for info and plot.
    cut = workdir / "cut.h5"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    capsys.readouterr()
    for argv in (["info", str(cut)], ["plot", str(cut)]):
        assert main(argv) == 2
        _one_error(capsys.readouterr().err, "cut.h5:")


# --- the conformance checker at thresholds far from 1 ------------------------


class FromInstanceZero(Controller):
    """The README's example with a defect: every instance decided from instance 0."""

    def __init__(self, threshold: float = 40.0) -> None:
        self.threshold = threshold

    def reset(self, n, rng):
        self.n_ = n

    def update(self, t, features):
        on = features["biomarker"][0] > self.threshold
        return {"amplitude_ma": np.full(self.n_, 2.0 if on else 0.0)}


class KeepsReference(Controller):
    """Acts on the previous period's features, kept by reference (not copied)."""

    def __init__(self, threshold: float = 40.0) -> None:
        self.threshold = threshold

    def reset(self, n, rng):
        self.previous_ = None

    def update(self, t, features):
        b = features["biomarker"]
        before = b if self.previous_ is None else self.previous_
        self.previous_ = b
        return {"amplitude_ma": np.where(before > self.threshold, 2.0, 0.0)}


class DualFromInstanceZero(Controller):
    """Dual threshold (the shipped configs' 25 / 35) deciding from instance 0."""

    def __init__(self, lower: float = 25.0, upper: float = 35.0) -> None:
        self.lower = lower
        self.upper = upper

    def reset(self, n, rng):
        self.on_ = np.zeros(n, dtype=bool)

    def update(self, t, features):
        b = features["biomarker"][0]
        self.on_ = np.full(
            self.on_.shape, (bool(self.on_[0]) or b > self.upper) and b >= self.lower
        )
        return {"amplitude_ma": np.where(self.on_, 2.0, 0.0)}

    def thresholds(self):
        return {"lower": self.lower, "upper": self.upper}


@pytest.mark.parametrize(
    ("controller", "defect"),
    [
        (FromInstanceZero(), "batch independence"),
        (FromInstanceZero(threshold=2500.0), "batch independence"),
        (KeepsReference(), "keeps a reference"),
        (DualFromInstanceZero(), "batch independence"),
        (DualFromInstanceZero(lower=0.002, upper=0.003), "batch independence"),
    ],
    ids=["threshold40", "threshold2500", "reference40", "dual25-35", "dual-milli"],
)
def test_check_controller_finds_defects_at_any_threshold(controller, defect):
    problems = conformance_report(controller)
    assert any(defect in p for p in problems), problems


# --- sweeps sharing a directory -----------------------------------------------


def test_a_second_sweep_process_is_refused_the_directory(tmp_path):
    # The flock a sweep holds on DIR/.sweep.lock, taken from another process
    # (what two machines on an NFS mount with lock support see).
    from closedloop.sweep.manifest import SweepBusyError, atomic_write_text, directory_lock

    holder = subprocess.Popen(
        [sys.executable, "-P", "-c",
         "import sys, pathlib, time\n"
         "from closedloop.sweep.manifest import directory_lock\n"
         "d = pathlib.Path(sys.argv[1])\n"
         "with directory_lock(d):\n"
         "    (d / 'held').touch()\n"
         "    while not (d / 'done').exists(): time.sleep(0.02)\n",
         str(tmp_path)],
    )  # fmt: skip
    try:
        _wait_for(tmp_path / "held", holder)
        with pytest.raises(SweepBusyError, match="another closedloop sweep"):
            with directory_lock(tmp_path):
                pass
    finally:
        (tmp_path / "done").touch()
        holder.wait(timeout=60)
    with directory_lock(tmp_path):  # free again once the holder is gone
        atomic_write_text(tmp_path / "manifest.json", "{}\n")
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".sweep")) == [
        "done",
        "held",
        "manifest.json",
    ]
