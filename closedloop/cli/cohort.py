"""``closedloop cohort CONFIG`` and ``closedloop cohort report DIR``.

Runs every (arm, patient) run of an experiment's ``cohort:`` block not
already complete in the cohort directory (resumable, on a local process
pool or a Dask cluster, as a sweep), then prints and writes the outcome
table (responder and remission rates with 95 % bootstrap intervals, per
arm) and draws the figures. ``report`` redoes the summary from a directory.
Exit codes as for ``closedloop sweep``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from closedloop.cli.report import error, report_config_error

__all__ = ["add_cohort_parser", "cmd_cohort"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def add_cohort_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``cohort`` subcommand to the top-level parser."""
    p = sub.add_parser(
        "cohort",
        help="run an experiment's cohort of virtual patients (or: cohort report DIR)",
        description="Run every arm of the experiment's cohort block on every patient "
        "(one run file per patient and arm, resumable), then report responder and "
        "remission rates with 95 %% bootstrap intervals. 'closedloop cohort report DIR' "
        "reports a cohort directory again.",
        epilog="example:\n"
        "  closedloop cohort experiments/pd_beta_cohort.yaml --out results/cohort\n"
        "  closedloop cohort report results/cohort",
    )
    p.add_argument("config", help="experiment YAML file with a cohort block, or 'report'")
    p.add_argument("dir", nargs="?", default=None, help="with 'report': the cohort directory")
    p.add_argument("--out", default=None, help="cohort directory [results/<name>]")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    p.add_argument("--workers", type=int, default=None, help="worker processes [every core]")
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run on Dask: tcp://host:port of a scheduler, or 'local'",
    )
    p.add_argument("--batch-size", type=int, default=None, help="most runs simulated together")
    p.add_argument("--retry-failed", action="store_true", help="run failed runs again")
    p.add_argument("--no-figures", action="store_true", help="no figures")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _report(out: Path, figures: bool) -> int:
    from closedloop.cohort.runner import OUTCOMES_FILE, report_cohort

    try:
        _, text = report_cohort(out, figures=figures)
    except FileNotFoundError as exc:
        error(str(exc))
        return EXIT_BAD_INPUT
    print(text)
    print(f"wrote {out / OUTCOMES_FILE}" + ("" if not figures else " and the cohort figures"))
    return EXIT_OK


def cmd_cohort(args: argparse.Namespace) -> int:
    """Run (or report) a cohort; return the exit code."""
    if args.config == "report":
        if args.dir is None:
            error("cohort report: give the cohort directory")
            return EXIT_BAD_INPUT
        return _report(Path(args.dir), not args.no_figures)
    if args.dir is not None:
        error(f"cohort: unexpected argument {args.dir!r} (use --out for the directory)")
        return EXIT_BAD_INPUT
    from closedloop.cohort.plan import expand_cohort
    from closedloop.cohort.runner import run_cohort
    from closedloop.config import ConfigError, load_raw
    from closedloop.sweep.executors import DaskExecutor, ExecutorError, LocalPool
    from closedloop.sweep.manifest import SweepBusyError
    from closedloop.sweep.runner import SweepInterrupted

    for flag, value in (("--workers", args.workers), ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            error(f"{args.config}: {flag}: must be 1 or more, got {value}")
            return EXIT_BAD_INPUT
    try:
        plan = expand_cohort(load_raw(args.config, args.overrides), args.config)
    except ConfigError as exc:
        report_config_error(exc)
        return EXIT_BAD_INPUT
    out = Path(args.out) if args.out else Path("results") / str(plan.sweep.base.get("name"))
    print(
        f"{args.config}: cohort of {len(plan.table)} patients x {len(plan.spec.arms)} arms "
        f"= {len(plan.runs)} runs; output in {out}"
    )
    try:
        executor = (
            DaskExecutor(args.scheduler, args.workers)
            if args.scheduler
            else LocalPool(args.workers)
        )
    except ExecutorError as exc:
        error(f"{args.config}: --scheduler: {exc}")
        return EXIT_BAD_INPUT
    try:
        result = run_cohort(
            plan,
            out,
            executor,
            retry_failed=args.retry_failed,
            batch_size=args.batch_size,
            progress=not args.no_progress and sys.stderr.isatty(),
        )
    except SweepBusyError as exc:
        error(str(exc))
        return EXIT_BAD_INPUT
    except ExecutorError as exc:
        error(f"{exc}; finished runs are kept, run the same command again to finish")
        return EXIT_FAILED
    except SweepInterrupted:
        error(f"interrupted; finished runs are kept in {out}: run the same command again")
        return 130
    finally:
        executor.shutdown()
    counts = result.counts
    print(
        f"{out}: {counts['complete']} complete, {counts['failed']} failed "
        f"({result.n_done} run now, {result.n_skipped} done before) in {result.wall_s:.1f} s"
    )
    code = _report(out, not args.no_figures)
    for run_id, message in list(result.failures.items())[:10]:
        error(f"run {run_id} failed: {message}")
    return EXIT_FAILED if result.failures else code
