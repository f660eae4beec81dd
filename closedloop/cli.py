"""The ``closedloop`` command line.

Exit codes: 0 success, 1 the run failed (e.g. the model diverged; the HDF5
file is written with status ``failed``), 2 bad input (config, arguments or
file), with one message per problem and no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="closedloop", description="Closed-loop neurostimulation simulations."
    )
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run an experiment file")
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
    val = sub.add_parser("validate", help="check an experiment file without running it")
    val.add_argument("config")
    val.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE"
    )
    plot = sub.add_parser("plot", help="draw a run file")
    plot.add_argument("run", help="run HDF5 file")
    plot.add_argument("-o", "--output", default=None, help="figure path [RUN.png]")
    plot.add_argument("--instance", type=int, default=0)
    info = sub.add_parser("info", help="print a run's config, provenance and metrics")
    info.add_argument("run", help="run HDF5 file")
    return p


def _error(message: str) -> None:
    print(f"closedloop: error: {message}", file=sys.stderr)


def _load(args: argparse.Namespace):
    from closedloop.config import ConfigError, load_config

    try:
        return load_config(args.config, args.overrides)
    except ConfigError as exc:
        for path, msg in exc.problems:
            _error(f"{exc.source}: {path}: {msg}")
        return None


def _cmd_run(args: argparse.Namespace) -> int:
    exp = _load(args)
    if exp is None:
        return EXIT_BAD_INPUT
    from closedloop.experiment import metrics_table, run_experiment
    from closedloop.loop import ModelDivergedError

    try:
        outcome = run_experiment(
            exp, args.out, progress=not args.no_progress and sys.stderr.isatty()
        )
    except ModelDivergedError as exc:
        _error(
            f"{exc} (run written with status 'failed' to "
            f"{Path(args.out) / (exp.config.name + '.h5')})"
        )
        return EXIT_FAILED
    print(f"wrote {outcome.path}")
    if outcome.figure is not None:
        print(f"wrote {outcome.figure}")
    print(metrics_table(outcome.metrics))
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace) -> int:
    exp = _load(args)
    if exp is None:
        return EXIT_BAD_INPUT
    cfg = exp.config
    loop = exp.loop
    print(
        f"{args.config}: valid. {cfg.name}: model {cfg.model.name}, controller "
        f"{cfg.controller.name}, {cfg.n_instances} instance(s), {cfg.duration_s:g} s; "
        f"dt {loop.dt_s:g} s, sensing {1 / loop.sample_s:g} Hz, control period "
        f"{loop.control_period_s:g} s, latency {loop.latency_steps * loop.dt_s:g} s"
    )
    return EXIT_OK


def _open_run(path: str):
    from closedloop.recording import load_run

    try:
        return load_run(path)
    except (OSError, ValueError, KeyError) as exc:
        _error(f"{path}: {exc}")
        return None


def _cmd_plot(args: argparse.Namespace) -> int:
    run = _open_run(args.run)
    if run is None:
        return EXIT_BAD_INPUT
    from closedloop.plotting import plot_run

    try:
        out = plot_run(run, args.output, instance=args.instance)
    except IndexError as exc:
        _error(f"{args.run}: {exc}")
        return EXIT_BAD_INPUT
    print(f"wrote {out}")
    return EXIT_OK


def _cmd_info(args: argparse.Namespace) -> int:
    run = _open_run(args.run)
    if run is None:
        return EXIT_BAD_INPUT
    from closedloop.plotting import format_info

    print(format_info(run))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``closedloop`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    handler = {"run": _cmd_run, "validate": _cmd_validate, "plot": _cmd_plot, "info": _cmd_info}[
        args.command
    ]
    try:
        return handler(args)
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
