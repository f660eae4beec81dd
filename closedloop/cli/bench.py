"""``closedloop bench``: the controller leaderboard and the performance comparison.

::

    closedloop bench [--quick] [--controllers a,b,pkg.mod.Class] [--scenarios DIR_OR_FILES]
                     [--out DIR] [--json FILE]
    closedloop bench --perf [--quick] [--json FILE] [--compare BASELINE] [--tolerance 0.35]

Exit codes: 0 done; 1 a performance ratio regressed beyond the tolerance (or,
for the leaderboard, a controller failed in some scenario); 2 bad input (a
scenario that does not validate, a controller path that does not import, a
baseline of another format version).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from closedloop.cli.report import error as _error
from closedloop.cli.report import report_config_error

__all__ = ["add_bench_parser", "cmd_bench"]

_DEFAULT_SCENARIOS = Path(__file__).resolve().parents[2] / "benchmarks" / "scenarios"


def add_bench_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``bench`` subcommand to the ``closedloop`` parser."""
    p = sub.add_parser(
        "bench",
        help="controller leaderboard, or --perf for the speed suite",
        epilog="example:\n  closedloop bench --quick --controllers on_off,pid\n"
        "  closedloop bench --perf --quick --compare benchmarks/perf_baseline.json",
    )
    p.add_argument("--quick", action="store_true", help="short runs (about two minutes)")
    p.add_argument(
        "--controllers",
        default=None,
        help="comma-separated registry names or dotted paths [each scenario's own]",
    )
    p.add_argument(
        "--scenarios",
        nargs="*",
        default=None,
        help=f"scenario files or folders [{_DEFAULT_SCENARIOS}]",
    )
    p.add_argument("--out", default="bench_results", help="output folder [bench_results]")
    p.add_argument("--json", default=None, help="write the figures as JSON here")
    p.add_argument("--perf", action="store_true", help="run the performance suite instead")
    p.add_argument(
        "--compare",
        default=None,
        metavar="BASELINE",
        help="with --perf: compare ratios with a baseline JSON file",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="with --compare: largest accepted fall of a ratio [0.35]",
    )


def _scenario_files(items: list[str] | None) -> list[Path]:
    paths = [Path(p) for p in (items or [str(_DEFAULT_SCENARIOS)])]
    files: list[Path] = []
    for p in paths:
        files += sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    return files


def _cmd_perf(args: argparse.Namespace) -> int:
    from closedloop.bench.perf import TOLERANCE, compare, load_baseline, run_perf

    baseline = None
    if args.compare:
        try:
            baseline = load_baseline(args.compare)
        except ValueError as exc:
            _error(str(exc))
            return 2
    record = run_perf(quick=args.quick, progress=lambda line: print(line, flush=True))
    print(f"{'case':<34} {'ratio':>9}")
    for case, ratio in record["ratios"].items():
        print(f"{case:<34} {ratio:>9.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2))
        print(f"wrote {args.json}")
    if baseline is None:
        return 0
    tolerance = TOLERANCE if args.tolerance is None else args.tolerance
    table, regressed = compare(record, baseline, tolerance)
    print(f"\nagainst {args.compare} (tolerance {tolerance:.0%}):\n{table}")
    return 1 if regressed else 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Run ``closedloop bench``; returns the exit code."""
    if args.perf:
        return _cmd_perf(args)
    from closedloop.bench.scenarios import (
        leaderboard_markdown,
        load_scenario,
        run_bench,
        write_results,
    )
    from closedloop.config import ConfigError
    from closedloop.plotting.bench import save_scenario_figure
    from closedloop.registry import resolve_controller

    controllers = [c.strip() for c in args.controllers.split(",")] if args.controllers else None
    bad = False
    for name in controllers or []:
        try:
            resolve_controller(name)
        except ValueError as exc:
            _error(f"--controllers: {exc}")
            bad = True
    scenarios = []
    for path in _scenario_files(args.scenarios):
        try:
            scenarios.append(load_scenario(path))
        except ConfigError as exc:
            report_config_error(exc)
            bad = True
    if bad:
        return 2
    if not scenarios:
        _error("no scenario files found")
        return 2
    out = Path(args.out)
    results = run_bench(
        scenarios,
        out,
        controllers=controllers,
        quick=args.quick,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    board = leaderboard_markdown(results, scenarios)
    print(board)
    (out / "leaderboard.md").write_text(board)
    write_results(results, scenarios, args.json or out / "bench.json", out / "bench.h5")
    for scn in scenarios:
        save_scenario_figure(results, scn, out / f"{scn.name}.png")
    print(
        f"wrote {out / 'leaderboard.md'}, {args.json or out / 'bench.json'}, "
        f"{out / 'bench.h5'} and one figure per scenario in {out}"
    )
    return 1 if any(r.error for r in results) else 0
