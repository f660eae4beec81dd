"""``closedloop rerun RUN.h5``: repeat a run from its file and say whether it is identical.

::

    closedloop rerun RUN.h5 [--out DIR] [--trust-plugins]

The run file holds the fully resolved config (every default filled in) and
its seed; the run is simulated again from them (without a figure), written
to ``DIR`` (a temporary directory by default) and its results compared with
the file's bit for bit (:mod:`closedloop.io.compare`).

Exit codes: 0 identical; 1 the results differ (each difference and how the
software differs are printed) or the run failed; 2 bad input (not a run file,
a config this closedloop refuses, or a plugin named by dotted path without
``--trust-plugins``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from closedloop.cli.report import error as _error
from closedloop.cli.report import report_config_error

__all__ = ["add_rerun_parser", "cmd_rerun"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def add_rerun_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``rerun`` subcommand to the ``closedloop`` parser."""
    p = sub.add_parser(
        "rerun",
        help="repeat a run from its file and report whether the result is identical",
        description="Simulate a run again from the resolved config and seed in its file "
        "and compare the results bit for bit. Example: closedloop rerun results/pd_beta_adbs.h5",
    )
    p.add_argument("run", help="run HDF5 file")
    p.add_argument("--out", default=None, help="directory of the repeated run [a temporary one]")
    p.add_argument(
        "--trust-plugins",
        action="store_true",
        help="let the run's controller or model named by dotted path be imported "
        "(runs that code: only for run files you trust)",
    )


def cmd_rerun(args: argparse.Namespace) -> int:
    """Run ``closedloop rerun``; return the exit code."""
    from closedloop.config import ConfigError
    from closedloop.config.build import validate_config
    from closedloop.experiment import run_experiment
    from closedloop.io import load_run
    from closedloop.io.compare import provenance_changes, result_differences

    try:
        original = load_run(args.run)
    except (OSError, ValueError) as exc:
        _error(f"{args.run}: {exc}")
        return EXIT_BAD_INPUT
    config = dict(original.config)
    if not config:
        _error(f"{args.run}: the file holds no config to repeat the run from")
        return EXIT_BAD_INPUT
    plugins = [
        f"{section}.name = {config[section]['name']}"
        for section in ("model", "controller")
        if "." in str(config.get(section, {}).get("name", ""))
    ]
    if plugins and not args.trust_plugins:
        _error(
            f"{args.run}: the run uses a plugin ({'; '.join(plugins)}); rerunning imports and "
            "runs it: pass --trust-plugins if you trust this file"
        )
        return EXIT_BAD_INPUT
    config["output"] = {**config.get("output", {}), "figure": False}
    # Written for readers; the model's parameters follow from params and regime.
    config["model"] = {k: v for k, v in config.get("model", {}).items() if k != "resolved_params"}
    try:
        exp = validate_config(config, f"{args.run} (config)")
    except ConfigError as exc:
        report_config_error(exc)
        return EXIT_BAD_INPUT
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        if out.resolve() == Path(args.run).resolve().parent:
            _error(f"--out {out}: the repeated run would replace {args.run}; choose another")
            return EXIT_BAD_INPUT
        try:
            repeated = load_run(run_experiment(exp, out).path)
        except Exception as exc:  # a model diverging, a full disk: say so, no traceback
            _error(f"{args.run}: the repeated run failed: {type(exc).__name__}: {exc}")
            return EXIT_FAILED
    differences = result_differences(original, repeated)
    if not differences:
        print(f"{args.run}: identical: the repeated run's results equal the file's bit for bit")
        return EXIT_OK
    print(f"{args.run}: NOT identical: {len(differences)} difference(s)")
    for line in differences:
        print(f"  {line}")
    changes = provenance_changes(original, repeated)
    print("software then -> now:" if changes else "software: the same as when the file was written")
    for line in changes:
        print(f"  {line}")
    return EXIT_FAILED
