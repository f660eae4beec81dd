"""The ``closedloop`` command line.

Exit codes: 0 success, 1 the run failed (the model diverged, the controller
raised, the disk filled up, another process is writing the same run file;
the HDF5 file is written with status ``failed`` when it can be) or, for
``sweep``, some run of the sweep failed, 2 bad input (config, arguments,
output directory or file), with one ``closedloop: error:`` line per problem
and no traceback, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from closedloop import __version__
from closedloop.cli.bench import add_bench_parser, cmd_bench
from closedloop.cli.catalogue import add_list_parser, cmd_list
from closedloop.cli.cohort import add_cohort_parser, cmd_cohort
from closedloop.cli.report import error as _error
from closedloop.cli.report import report_config_error
from closedloop.cli.rerun import add_rerun_parser, cmd_rerun

if TYPE_CHECKING:  # imported on use below: the CLI starts light
    from closedloop.config import ResolvedExperiment
    from closedloop.io.reader import RunData
    from closedloop.sweep.plan import SweepPlan

__all__ = ["console_main", "main"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

_TRUST = (
    "Trust: a dotted path in an experiment file (controller.name, model.name, a Brian2 "
    "builder) imports and runs that module, even under 'validate': run only experiment "
    "files and plugins from trusted sources. Run files are data: reading, plotting or "
    "replaying one never imports code named inside it."
)

_TRUST = textwrap.fill(_TRUST, 79)

_T = TypeVar("_T")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="closedloop", description="Closed-loop neurostimulation simulations.", epilog=_TRUST
    )
    p.add_argument("--version", action="version", version=f"closedloop {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="run an experiment file",
        epilog=_example("closedloop run experiments/pd_beta_adbs.yaml --out results "
                        "--set duration_s=2") + _TRUST,
    )  # fmt: skip
    run.add_argument("config", help="experiment YAML file")
    run.add_argument("--out", default="results", help="output directory [results]")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a config value (repeatable)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    val = sub.add_parser(
        "validate",
        help="check an experiment file without running it",
        epilog=_example("closedloop validate experiments/pd_beta_adbs.yaml --set n_instances=8")
        + _TRUST,
    )
    val.add_argument("config")
    val.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE"
    )
    plot = sub.add_parser(
        "plot",
        help="draw a run file",
        epilog=_example("closedloop plot results/pd_beta_adbs.h5 --kind run -o run.png"),
    )
    plot.add_argument("run", help="run HDF5 file")
    plot.add_argument("-o", "--output", default=None, help="figure path [RUN.png]")
    plot.add_argument("--instance", type=int, default=0)
    plot.add_argument(
        "--import-controller",
        action="store_true",
        help="--kind phase/seizures: let the replay import the controller the run file names "
        "by dotted path (runs that code: only for run files you trust) [built-in only]",
    )
    plot.add_argument(
        "--kind",
        choices=("run", "phase", "seizures"),
        default="run",
        help="run: signals, stimulation and spectra; phase: phase histogram of delivered "
        "pulses; seizures: seizure durations with and without stimulation [run]",
    )
    info = sub.add_parser(
        "info",
        help="print a run's config, provenance and metrics",
        epilog=_example("closedloop info results/pd_beta_adbs.h5"),
    )
    info.add_argument("run", help="run HDF5 file")
    export = sub.add_parser(
        "export",
        help="convert a run file to another format (NWB)",
        description="Write a complete run file's series, events, metrics, config and "
        "provenance as an NWB file (mapping: closedloop.io.nwb).",
        epilog=_example("closedloop export results/pd_beta_adbs.h5 --to nwb"),
    )
    export.add_argument("run", help="run HDF5 file")
    export.add_argument("--to", choices=["nwb"], default="nwb", help="target format [nwb]")
    export.add_argument("-o", "--output", default=None, help="output path [RUN.nwb]")
    sweep = sub.add_parser(
        "sweep",
        help="run an experiment's parameter sweep",
        description="Expand the experiment's sweep block and run every run not already "
        "complete in DIR, on a local process pool or a Dask cluster.",
        epilog=_example("closedloop sweep experiments/pd_beta_sweep.yaml --out results/sweep"),
    )
    sweep.add_argument("config", help="experiment YAML file with a sweep block")
    sweep.add_argument("--out", default=None, help="sweep directory [results/<name>]")
    sweep.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE"
    )
    sweep.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes of the local pool or of --scheduler local [every core]; "
        "with a remote scheduler, the workers to plan batches for [those connected]",
    )
    sweep.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run on Dask: tcp://host:port of a scheduler, or 'local' for a LocalCluster",
    )
    sweep.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to try to reach the Dask scheduler [10]",
    )
    sweep.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="most runs simulated together [sweep.batch_size, else automatic]; 1: never batch",
    )
    sweep.add_argument(
        "--retry-failed", action="store_true", help="run again the runs that failed before"
    )
    sweep.add_argument(
        "--dry-run", action="store_true", help="print the runs it expands to; run nothing"
    )
    sweep.add_argument(
        "--show", type=int, default=3, help="resolved configs printed by --dry-run [3]"
    )
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    summ = sub.add_parser(
        "summarize",
        help="gather a sweep's runs into DIR/summary.h5 and DIR/summary.csv",
        epilog=_example("closedloop summarize results/sweep"),
    )
    summ.add_argument("dir", help="sweep directory")
    psw = sub.add_parser(
        "plot-sweep",
        help="draw a sweep: heatmap over two parameters, line over one, or the Pareto front",
        epilog=_example("closedloop plot-sweep results/sweep --kind pareto"),
    )
    psw.add_argument("dir", help="sweep directory")
    psw.add_argument("--x", default=None, help="swept parameter (key path) on the x axis")
    psw.add_argument("--y", default=None, help="swept parameter on the y axis (heatmap)")
    psw.add_argument(
        "--metric", default="band_power_reduction", help="metric [band_power_reduction]"
    )
    psw.add_argument(
        "--kind",
        default="auto",
        choices=("auto", "heatmap", "line", "pareto"),
        help="auto: heatmap with --x and --y, line with --x, else pareto",
    )
    psw.add_argument(
        "--efficacy",
        default="band_power_reduction",
        help="Pareto: higher is better [band_power_reduction]",
    )
    psw.add_argument(
        "--energy", default="teed_relative", help="Pareto: lower is better [teed_relative]"
    )
    psw.add_argument("-o", "--output", default=None, help="figure path [DIR/sweep_*.png]")
    add_bench_parser(sub)
    add_cohort_parser(sub)
    add_rerun_parser(sub)
    add_list_parser(sub)
    for command in sub.choices.values():  # keep each example on its own line
        command.formatter_class = argparse.RawDescriptionHelpFormatter
    return p


def _example(command: str) -> str:
    return f"example:\n  {command}\n\n"


class _BadInput(Exception):
    """Bad input whose problems are already reported: :func:`main` exits with 2."""


def _config_or_exit(read: Callable[[], _T]) -> _T:
    """``read()``, or each problem of its ConfigError reported and :class:`_BadInput`."""
    from closedloop.config import ConfigError

    try:
        return read()
    except ConfigError as exc:
        report_config_error(exc)
        raise _BadInput from exc


def _load(args: argparse.Namespace) -> ResolvedExperiment:
    from closedloop.config import load_config

    return _config_or_exit(lambda: load_config(args.config, args.overrides))


def _check_out_dir(out: Path) -> str | None:
    """Why runs cannot be written into ``out``, or None; creates it if missing."""
    if out.exists() and not out.is_dir():
        return f"--out {out}: exists and is not a directory"
    try:
        out.mkdir(parents=True, exist_ok=True)
        # Write a probe: os.access says yes to root on a read-only mount.
        probe = out / f".closedloop-write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        return f"--out {out}: cannot write there ({exc.strerror or exc})"
    return None


def _where(exc: BaseException) -> str:
    """``file:line in function`` of the innermost frame of ``exc`` (a user's code, mostly)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" (at {last.filename}:{last.lineno} in {last.name})"


def _cmd_run(args: argparse.Namespace) -> int:
    exp = _load(args)
    from closedloop.core.loop import ModelDivergedError
    from closedloop.experiment import metrics_table, run_experiment, stimulation_summary
    from closedloop.io.atomic import RunBusyError, RunWriteError

    if exp.config.sweep is not None:
        print(
            f"closedloop: note: {args.config} has a sweep block; 'run' runs the experiment "
            "without it (use 'closedloop sweep')",
            file=sys.stderr,
        )
    out = Path(args.out)
    problem = _check_out_dir(out)
    if problem is not None:
        _error(problem)
        return EXIT_BAD_INPUT
    path = out / (exp.config.name + ".h5")
    written = f"run written with status 'failed' to {path}"
    try:
        outcome = run_experiment(
            exp, args.out, progress=not args.no_progress and sys.stderr.isatty()
        )
    except ModelDivergedError as exc:
        _error(f"{exc} ({'no run file written' if exc.warmup_s is not None else written})")
        return EXIT_FAILED
    except (RunBusyError, RunWriteError) as exc:
        _error(str(exc))
        return EXIT_FAILED
    except OSError as exc:
        _error(f"{path}: cannot write the run file: {exc}")
        return EXIT_FAILED
    except Exception as exc:  # a user's controller or model raising mid-run
        status = written if path.exists() else "no run file written"
        _error(
            f"{args.config}: the run failed: {type(exc).__name__}: {exc}{_where(exc)} ({status})"
        )
        return EXIT_FAILED
    print(f"wrote {outcome.path}")
    if outcome.figure is not None:
        print(f"wrote {outcome.figure}")
    print(metrics_table(outcome.metrics, outcome.units))
    print(stimulation_summary(outcome.metrics))
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace) -> int:
    exp = _load(args)
    cfg = exp.config
    loop = exp.loop
    print(
        f"{args.config}: valid. {cfg.name}: model {cfg.model.name}, controller "
        f"{cfg.controller.name}, {cfg.n_instances} instance(s), {cfg.duration_s:g} s; "
        f"dt {loop.dt_s:g} s, sensing {1 / loop.sample_s:g} Hz, control period "
        f"{loop.control_period_s:g} s, latency {loop.latency_steps * loop.dt_s:g} s"
    )
    if cfg.sweep is not None:
        print(f"sweep: {_plan_size(_expand(args))}")
    return EXIT_OK


def _open_run(path: str) -> RunData:
    from closedloop.io import load_run

    try:
        return load_run(path)
    except (OSError, ValueError, KeyError) as exc:
        _error(f"{path}: {exc}")
        raise _BadInput from exc
    except Exception as exc:  # a damaged or foreign file h5py cannot parse
        _error(f"{path}: not a readable run file ({type(exc).__name__}: {exc})")
        raise _BadInput from exc


def _cmd_plot(args: argparse.Namespace) -> int:
    run = _open_run(args.run)
    kwargs: dict[str, Any] = {}
    draw: Callable[..., Path]
    if args.kind == "phase":
        from closedloop.analysis.phase import save_phase_histogram as draw
    elif args.kind == "seizures":
        from closedloop.analysis.seizures import save_seizures_figure as draw
    else:
        from closedloop.plotting.run import save_run_figure as draw
    if args.kind == "phase":
        from closedloop.analysis.replay import controller_from_run

        try:
            kwargs["controller"] = controller_from_run(run, allow_import=args.import_controller)
        except ValueError as exc:
            _error(f"{args.run}: {exc}")
            return EXIT_BAD_INPUT
    refusal = _plot_refusal(run.config, args.kind)
    if refusal:
        _error(f"{args.run}: {refusal}")
        return EXIT_BAD_INPUT
    try:
        out = draw(run, args.output, instance=args.instance, **kwargs)
    except (IndexError, KeyError, ValueError) as exc:
        _error(f"{args.run}: {exc}")
        return EXIT_BAD_INPUT
    print(f"wrote {out}")
    return EXIT_OK


#: Models whose signal has seizures that the seizure criterion is calibrated for
#: (closedloop.analysis.seizures.EPILEPTOR_CRITERION).
_SEIZURE_MODELS = ("epileptor",)


def _plot_refusal(config: dict, kind: str) -> str | None:
    """Why a run cannot be drawn as ``kind`` (an empty figure would mislead), or None."""
    model = str(config.get("model", {}).get("name", "?"))
    if kind == "phase" and "phase" not in config.get("sensing", {}).get("features", []):
        return (
            "--kind phase draws the sensed phase at each delivered pulse, and this run has "
            "no phase feature (sensing.features has no 'phase'); use --kind run"
        )
    if kind == "seizures" and model not in _SEIZURE_MODELS:
        return (
            f"--kind seizures needs a model with seizures ({', '.join(_SEIZURE_MODELS)}: the "
            f"seizure criterion is calibrated for its field potential); this run's model is "
            f"{model!r}; use --kind run"
        )
    return None


def _cmd_export(args: argparse.Namespace) -> int:
    _open_run(args.run)  # a clear message for a missing or broken file
    from closedloop.io.nwb import export_nwb

    try:
        path = export_nwb(args.run, args.output)
    except ImportError:
        _error("NWB export needs pynwb: pip install 'closedloop[nwb]'")
        return EXIT_BAD_INPUT
    except (ValueError, OSError) as exc:
        _error(str(exc))
        return EXIT_BAD_INPUT
    print(f"wrote {path}")
    return EXIT_OK


def _cmd_info(args: argparse.Namespace) -> int:
    run = _open_run(args.run)
    from closedloop.plotting.run import format_info

    print(format_info(run))
    return EXIT_OK


def _expand(args: argparse.Namespace) -> SweepPlan:
    from closedloop.config import load_raw
    from closedloop.sweep.plan import expand_sweep

    return _config_or_exit(lambda: expand_sweep(load_raw(args.config, args.overrides), args.config))


def _plan_size(plan: SweepPlan) -> str:
    points = " x ".join(f"{n} ({', '.join(keys)})" for keys, n in plan.axes)
    text = f"{len(plan.runs)} runs = {points} x {plan.replicates} replicate(s)"
    if plan.n_duplicates:
        text += f", less {plan.n_duplicates} duplicate(s)"
    return text + f"; sweep seed {plan.sweep_seed}"


def _cmd_sweep(args: argparse.Namespace) -> int:
    for flag, value in (("--workers", args.workers), ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            _error(f"{args.config}: {flag}: must be 1 or more, got {value}")
            return EXIT_BAD_INPUT
    plan = _expand(args)
    name = plan.base.get("name", "sweep")
    out = Path(args.out) if args.out else Path("results") / str(name)
    if args.dry_run:
        import yaml

        from closedloop.sweep.executors import cpu_count
        from closedloop.sweep.plan import make_tasks

        workers = args.workers or cpu_count()
        size = args.batch_size if args.batch_size is not None else plan.batch_size
        tasks = make_tasks(plan.runs, workers, size)
        print(f"{args.config}: sweep of {_plan_size(plan)}")
        print(
            f"{len(tasks)} task(s) for {workers} worker(s) (largest batch "
            f"{max((len(t) for t in tasks), default=0)} runs); output in {out}"
        )
        for run in plan.runs[: max(0, args.show)]:
            print(f"--- run {run.run_id} (replicate {run.replicate})")
            print(yaml.safe_dump({"params": run.params}, sort_keys=False).rstrip())
            print(yaml.safe_dump(run.config, sort_keys=False).rstrip())
        return EXIT_OK

    from closedloop.sweep.executors import DaskExecutor, ExecutorError, LocalPool
    from closedloop.sweep.manifest import SweepBusyError
    from closedloop.sweep.runner import SweepInterrupted, run_sweep
    from closedloop.sweep.summary import summarize_sweep

    executor: DaskExecutor | LocalPool
    try:
        if args.scheduler:
            executor = DaskExecutor(args.scheduler, args.workers, timeout_s=args.connect_timeout)
        else:
            executor = LocalPool(args.workers)
    except ExecutorError as exc:
        _error(f"{args.config}: --scheduler: {exc}")
        return EXIT_BAD_INPUT
    try:
        result = run_sweep(
            plan,
            out,
            executor,
            retry_failed=args.retry_failed,
            batch_size=args.batch_size,
            progress=not args.no_progress and sys.stderr.isatty(),
        )
    except SweepBusyError as exc:
        _error(str(exc))
        return EXIT_BAD_INPUT
    except ExecutorError as exc:
        _error(f"{exc}; finished runs are kept, run the same command again to finish")
        return EXIT_FAILED
    except SweepInterrupted as exc:
        counts = exc.result.counts
        _error(
            f"interrupted: {counts['complete']} complete, {counts['failed']} failed, "
            f"{counts['pending']} not run (listed under 'missing' in {out / 'manifest.json'}); "
            "run the same command again to finish"
        )
        return 130
    finally:
        executor.shutdown()
    h5_path, csv_path = summarize_sweep(out)
    counts = result.counts
    print(
        f"{out}: {counts['complete']} complete, {counts['failed']} failed "
        f"({result.n_done} run now, {result.n_skipped} done before) in {result.wall_s:.1f} s"
    )
    print(f"wrote {h5_path} and {csv_path}")
    if result.failures:
        for run_id, error in list(result.failures.items())[:10]:
            _error(f"run {run_id} failed: {error}")
        if len(result.failures) > 10:
            _error(f"... and {len(result.failures) - 10} more (see {out / 'manifest.json'})")
        if not args.retry_failed:
            print("re-run with --retry-failed to run the failed runs again", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _cmd_summarize(args: argparse.Namespace) -> int:
    from closedloop.sweep.summary import load_summary, summarize_sweep

    try:
        h5_path, csv_path = summarize_sweep(args.dir)
    except FileNotFoundError as exc:
        _error(str(exc))
        return EXIT_BAD_INPUT
    columns = load_summary(h5_path, as_frame=False)
    status = list(columns["status"])
    print(
        f"{args.dir}: {len(status)} runs, {status.count('complete')} complete, "
        f"{status.count('failed')} failed"
    )
    print(f"wrote {h5_path} and {csv_path}")
    return EXIT_OK


def _cmd_plot_sweep(args: argparse.Namespace) -> int:
    from closedloop.plotting.sweep import save_sweep_figure

    try:
        out = save_sweep_figure(
            args.dir,
            x=args.x,
            y=args.y,
            metric=args.metric,
            kind=args.kind,
            efficacy=args.efficacy,
            energy=args.energy,
            output=args.output,
        )
    except (FileNotFoundError, ValueError) as exc:
        _error(f"{args.dir}: {exc}")
        return EXIT_BAD_INPUT
    print(f"wrote {out}")
    return EXIT_OK


def _quiet_h5py_teardown(hook: Callable) -> Callable:
    """An unraisable hook that drops h5py's identifier teardown errors.

    After a write failed (a full disk), every h5py object released prints a
    traceback "ignored in ObjectID.__dealloc__"; the failure itself is
    reported in one line. Anything else goes to ``hook``.
    """
    if getattr(hook, "closedloop_quiet", False):
        return hook

    def quiet(unraisable: sys.UnraisableHookArgs) -> None:
        if "h5py" not in repr(unraisable.object) and "h5py" not in str(unraisable.err_msg):
            hook(unraisable)

    quiet.closedloop_quiet = True  # type: ignore[attr-defined]
    return quiet


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``closedloop`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    # The working directory is searched for users' plugins by
    # closedloop.core.plugins only, after the installed packages.
    sys.unraisablehook = _quiet_h5py_teardown(sys.unraisablehook)
    handler = {
        "run": _cmd_run,
        "validate": _cmd_validate,
        "plot": _cmd_plot,
        "info": _cmd_info,
        "export": _cmd_export,
        "sweep": _cmd_sweep,
        "summarize": _cmd_summarize,
        "plot-sweep": _cmd_plot_sweep,
        "bench": cmd_bench,
        "cohort": cmd_cohort,
        "rerun": cmd_rerun,
        "list": cmd_list,
    }[args.command]
    try:
        return handler(args)
    except _BadInput:
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


def console_main() -> None:
    """The console script: :func:`main`, then exit with its code."""
    from closedloop.io.atomic import hdf5_unstable

    code = main()
    if hdf5_unstable():
        # HDF5 could not close a file (a full disk): it would retry at exit
        # and may crash the interpreter. The message is out; leave now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    console_main()
