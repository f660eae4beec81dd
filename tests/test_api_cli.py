"""The Python API and the discoverable command line: what a new user meets first.

``closedloop.run`` (one call, no file), a run's compact repr, ``--version``,
``closedloop list``, did-you-mean suggestions, the light install (no Brian2)
and a start-up that does not import what a command does not use.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import closedloop
from closedloop.brian.registry import BRIAN_MODELS
from closedloop.cli.main import main
from closedloop.controllers import BUILTIN_CONTROLLERS
from closedloop.io import load_run
from closedloop.models import BUILTIN_MODELS

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "experiments" / "pd_beta_adbs.yaml"
SHORT = {"duration_s": 1.0, "n_instances": 2}


# --------------------------------------------------------------------------------------
# The one-call API
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def api_run():
    return closedloop.run(EXPERIMENT, **SHORT, controller__params__threshold=40.0)


def test_run_returns_what_the_command_line_writes(api_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(
        ["run", str(EXPERIMENT), "--out", "cli", "--no-progress", "--set", "duration_s=1.0",
         "--set", "n_instances=2", "--set", "controller.params.threshold=40.0"]
    )  # fmt: skip
    assert code == 0
    written = load_run(tmp_path / "cli" / "pd_beta_adbs.h5")
    # the same seed and config: bit-identical metrics, baseline included
    assert set(api_run.metrics) == set(written.metrics)
    assert "band_power_baseline" in api_run.metrics
    for name, value in written.metrics.items():
        np.testing.assert_array_equal(api_run.metrics[name], value, err_msg=name)
    np.testing.assert_array_equal(api_run.timeseries["lfp"], written.timeseries["lfp"])
    assert api_run.config["controller"]["params"]["threshold"] == 40.0


def test_run_writes_nothing_to_the_disk(tmp_path, monkeypatch):
    import tempfile

    import h5py

    # Watch the working directory and the temporary directory, and every
    # HDF5 file opened: a run in memory opens none by name.
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir(), tmp.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setenv("TMPDIR", str(tmp))
    opened = []
    real_file = h5py.File

    def spy(name, *args, **kwargs):
        opened.append(name)
        return real_file(name, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", spy)
    cfg = {**__import__("yaml").safe_load(EXPERIMENT.read_text())}
    run = closedloop.run(cfg, duration_s=1.0, **{"output.record_baseline": False})
    assert run.status == "complete" and run.n_instances == 1
    assert "band_power_baseline" not in run.metrics
    assert list(cwd.iterdir()) == [] and list(tmp.iterdir()) == []
    assert opened and not any(isinstance(name, str | os.PathLike) for name in opened), opened
    assert not run.path.exists()  # the path only names the run


def test_memory_recorder_writes_the_file_a_disk_recorder_writes(tmp_path):
    from closedloop.io import MEMORY_FORMAT, open_recorder

    runs = []
    for fmt, path in (("hdf5", tmp_path / "r.h5"), (MEMORY_FORMAT, tmp_path / "m" / "r.h5")):
        with open_recorder(fmt, path, config={"a": 1}, seed=3, n=2,
                           closedloop_version="x") as rec:  # fmt: skip
            rec.create_timeseries("lfp", units="mV", sampling_rate_hz=100.0)
            rec.append("lfp", np.arange(10.0).reshape(2, 5))
            rec.write_metrics({"m": np.array([1.0, 2.0])}, {"m": "1"}, {"m": "a metric"})
        runs.append(load_run(path) if fmt == "hdf5" else rec.run_data())
    disk, memory = runs
    assert not (tmp_path / "m").exists()  # nothing created, not even the directory
    np.testing.assert_array_equal(memory.timeseries["lfp"], np.arange(10.0).reshape(2, 5))
    np.testing.assert_array_equal(memory.time("lfp"), disk.time("lfp"))
    assert memory.metrics.keys() == disk.metrics.keys() == {"m"}
    assert memory.config == disk.config == {"a": 1} and memory.status == "complete"


# --------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------
def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"closedloop {closedloop.__version__}"


def test_list_shows_every_model_and_controller_with_units_defaults_and_sources(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    names = [*BUILTIN_MODELS, *BRIAN_MODELS, *BUILTIN_CONTROLLERS, "phase", "pd_beta_adbs"]
    for name in names:
        assert f"\n  {name}: " in out, name
    # a model parameter with its value, units and source, from the model's table
    p = BUILTIN_MODELS["stn_gpe"].parameters["tau_S"]
    assert f"tau_S = {p.value:g} {p.units}: {p.description} ({p.reference})" in out
    # a controller parameter with its default and its documented units
    default = inspect.signature(BUILTIN_CONTROLLERS["dual_threshold"]).parameters
    assert f"ramp_up_ma_per_s = {default['ramp_up_ma_per_s'].default!r}: Rate in mA/s" in out
    refs = BUILTIN_CONTROLLERS["pid"].references
    assert refs and refs[0].split()[0] in out


def test_every_subcommand_has_help_and_an_example(capsys):
    commands = ["run", "validate", "plot", "info", "export", "sweep", "summarize",
                "plot-sweep", "list", "bench", "cohort"]  # fmt: skip
    for command in commands:
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert "example:" in out and f"closedloop {command}" in out, command


@pytest.mark.parametrize(
    ("override", "suggestion"),
    [
        ("model.params.w_gs=1", "model.params.w_gs: model parameter 'w_gs' is unknown"),
        ("model.params.w_gs=1", "Did you mean 'w_GS'?"),
        ("controller.name=pdi", "Did you mean 'pid'?"),
        ("controller.name=PID", "Did you mean 'pid'?"),
        ("sensing.BAND_HZ=[10, 20]", "Did you mean 'band_hz'?"),
    ],
)
def test_did_you_mean_ignores_case(override, suggestion, capsys):
    assert main(["validate", str(EXPERIMENT), "--set", override]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and suggestion in err[0]
    assert err[0].count(str(EXPERIMENT)) == 1  # the file is named once
    assert "Traceback" not in err[0]


def test_brian_model_without_brian2_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "brian2", None)  # as on a light install
    path = ROOT / "experiments" / "brian_ping_gamma.yaml"
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "model.name" in err[0] and "pip install 'closedloop[brian]'" in err[0]


# --------------------------------------------------------------------------------------
# Start-up: a command imports only what it uses
# --------------------------------------------------------------------------------------
_HEAVY = ("matplotlib", "scipy.signal", "scipy.stats", "gymnasium", "brian2")


def _modules_after(argv: list[str], tmp: Path) -> set[str]:
    code = (
        "import sys, json\n"
        "from closedloop.cli.main import main\n"
        f"code = main({argv!r})\n"
        "print(json.dumps([code, sorted(sys.modules)]))\n"
    )
    env = {**os.environ, "MPLBACKEND": "Agg"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp, env=env
    )
    code_, modules = json.loads(out.stdout.strip().splitlines()[-1])
    assert code_ == 0, out.stderr
    return set(modules)


def test_validate_and_info_import_neither_numba_nor_plotting_scipy_signal_or_gymnasium(
    api_run, tmp_path
):
    loaded = _modules_after(["validate", str(EXPERIMENT)], tmp_path)
    assert not loaded & set(_HEAVY), sorted(loaded & set(_HEAVY))
    # the loop is built (kernels declared, closedloop.core.jit) but nothing compiles
    assert "numba" not in loaded and "closedloop.core.loop" in loaded
    main(["run", str(EXPERIMENT), "--out", str(tmp_path), "--no-progress",
          "--set", "duration_s=1.0", "--set", "output.figure=false"])  # fmt: skip
    loaded = _modules_after(["info", str(tmp_path / "pd_beta_adbs.h5")], tmp_path)
    assert not loaded & set(_HEAVY), sorted(loaded & set(_HEAVY))
    assert "numba" not in loaded  # reading a run file compiles nothing


@pytest.mark.parametrize(
    "imports",
    [
        "import gymnasium, closedloop",
        "import closedloop, gymnasium",
        # a look-up without an import must not use up the registration
        "import importlib.util as u, closedloop; u.find_spec('gymnasium'); import gymnasium",
    ],
)
def test_gym_env_registered_whichever_package_is_imported_first(imports):
    pytest.importorskip("gymnasium")
    code = (
        f"{imports}; import sys, gymnasium; "
        "print('closedloop/Experiment-v0' in gymnasium.registry, 'numba' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]


def test_startup_case_measures_commands_against_importing_numpy():
    from closedloop.bench.perf import startup_ratios

    ratios = startup_ratios(1)
    assert set(ratios) == {"startup/validate", "startup/info"}
    # every command imports numpy and more: the ratio lies in (0, 1)
    assert all(0.0 < r < 1.0 for r in ratios.values()), ratios


# --------------------------------------------------------------------------------------
# Figures: returned, not saved; plots that would mislead are refused
# --------------------------------------------------------------------------------------
def test_plot_run_returns_a_figure_draws_into_a_given_one_and_saves_nothing(
    api_run, tmp_path, monkeypatch
):
    from matplotlib.figure import Figure

    monkeypatch.chdir(tmp_path)
    fig = closedloop.plot_run(api_run, instance=1)
    assert isinstance(fig, Figure) and list(tmp_path.iterdir()) == []
    signal_ax = fig.axes[0]
    labels = [line.get_label() for line in signal_ax.get_lines()]
    assert "no stimulation (same seed)" in labels and "with stimulation" in labels
    # the zoomed inset: raw samples of a few cycles at the band's centre
    (inset,) = signal_ax.child_axes
    lo, hi = api_run.attrs.get("band_hz", (13.0, 30.0))
    x = inset.get_lines()[-1].get_xdata()
    rate = api_run.timeseries_attrs["lfp"]["sampling_rate_hz"]
    assert abs((x[-1] - x[0]) - 5 / (0.5 * (lo + hi))) <= 1.5 / rate
    title = fig._suptitle.get_text()
    assert "band power reduced by" in title and "band_power_reduction" not in title
    # into a subfigure of the caller's figure
    outer = Figure(figsize=(20, 12))
    left, _right = outer.subfigures(1, 2)
    assert closedloop.plot_run(api_run, fig=left) is outer
    assert len(left.axes) >= 5


def test_plot_refuses_a_phase_or_seizure_figure_the_run_cannot_support(api_run, tmp_path, capsys):
    main(["run", str(EXPERIMENT), "--out", str(tmp_path), "--no-progress",
          "--set", "duration_s=1.0", "--set", "output.figure=false"])  # fmt: skip
    capsys.readouterr()
    path = tmp_path / "pd_beta_adbs.h5"
    for kind, words in (("phase", "no phase feature"), ("seizures", "needs a model with seizures")):
        assert main(["plot", str(path), "--kind", kind]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".h5"]  # no figure drawn


@pytest.mark.slow
@pytest.mark.parametrize("name", ["on_off", "dual_threshold", "pid"])
def test_threshold_controllers_defaults_fit_the_default_experiment(name):
    # With no parameters at all, a threshold controller (or the PID, whose
    # earlier defaults held 3 mA all the time) on the default model switches
    # with the bursts (neither always on nor never on) and removes the long
    # bursts, as the experiment's own tuned on_off does.
    run = closedloop.run(EXPERIMENT, duration_s=10.0, n_instances=2,
                         controller={"name": name, "params": {}})  # fmt: skip
    on = run.metrics["time_on_fraction"]
    assert np.all((on > 0.1) & (on < 0.9)), on
    assert np.all(run.metrics["long_burst_time_reduction"] > 0.5)
    assert np.all(run.metrics["teed_relative"] < 0.5)  # far less energy than continuous DBS


def test_a_first_run_says_that_kernels_are_compiling(tmp_path, monkeypatch, capsys):
    from closedloop.core.kernel_cache import kernels_cached

    args = ["run", str(EXPERIMENT), "--out", str(tmp_path), "--set", "duration_s=1.0",
            "--set", "output.figure=false"]  # fmt: skip
    assert main(args) == 0  # warm: the kernels are on disk, nothing to say
    assert kernels_cached("stn_gpe")
    assert "compiling" not in capsys.readouterr().err
    # An empty cache directory is what a fresh install sees (the kernels this
    # process already loaded still run: only the check looks there).
    monkeypatch.setenv("CLOSEDLOOP_NUMBA_CACHE", str(tmp_path / "empty"))
    assert not kernels_cached("stn_gpe")
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "compiling the stn_gpe kernels for this machine" in err and "usually" in err


@pytest.mark.slow
def test_the_default_experiment_runs_without_brian2(tmp_path):
    # A light install (no brian extra), as a blocked import: the rate models
    # never import Brian2.
    code = (
        "import sys; sys.modules['brian2'] = None\n"
        "from closedloop.cli.main import main\n"
        f"code = main(['run', {str(EXPERIMENT)!r}, '--out', {str(tmp_path)!r}, "
        "'--set', 'duration_s=1.0', '--no-progress'])\n"
        "assert 'brian2' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "raise SystemExit(code)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "pd_beta_adbs.h5").exists() and (tmp_path / "pd_beta_adbs.png").exists()
