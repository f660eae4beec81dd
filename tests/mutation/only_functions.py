"""Keep a cosmic-ray session's mutants inside named functions; skip the rest.

A module such as ``closedloop/sweep/plan.py`` mixes result-bearing code (run
ids, seeds) with plumbing (task batching, messages). This filter marks every
pending mutant outside the named functions or classes as skipped, so a session
spends its time where a change alters results. Names are looked up with
``ast`` (line numbers follow the file as it is), so the list survives edits.

Usage (after ``cosmic-ray init``, before ``exec``)::

    .venv/bin/python tests/mutation/only_functions.py SESSION.sqlite \\
        closedloop/sweep/plan.py run_id_of derive_seed canonical_json

Names may be ``function``, ``Class`` or ``Class.method``; mutants of other
modules in the session are left alone. ``--sample N`` then keeps a seeded
random sample of N of the module's remaining mutants (``--seed``, default 0):
an unbiased estimate of the score when the whole set would take hours.
``--skip-done OTHER.sqlite`` first skips the mutants another session of the
same source has run, so that a second sample adds new mutants only.
"""

from __future__ import annotations

import argparse
import ast
import random
import sys
from pathlib import Path

from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import WorkerOutcome, WorkResult

__all__ = ["line_ranges", "main", "run_mutants"]


def line_ranges(path: Path, names: list[str]) -> list[tuple[int, int]]:
    """Return the (first, last) source lines of each named definition in ``path``.

    Raises
    ------
    SystemExit
        If a name is not defined in the file.
    """
    tree = ast.parse(path.read_text())
    found: dict[str, tuple[int, int]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = prefix + child.name
                first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                found[name] = (first, child.end_lineno or child.lineno)
                visit(child, name + ".")

    visit(tree, "")
    missing = [n for n in names if n not in found]
    if missing:
        raise SystemExit(f"{path}: no definition named {', '.join(missing)}")
    return [found[n] for n in names]


def run_mutants(session: Path, module: Path) -> set[str]:
    """Keys (as in :func:`main`) of the mutants of ``module`` that ``session`` has run."""
    with use_db(str(session), WorkDB.Mode.open) as db:
        return {
            repr([(m.start_pos, m.operator_name, m.occurrence) for m in item.mutations])
            for item, result in db.completed_work_items
            if result.worker_outcome != WorkerOutcome.SKIPPED
            and all(Path(m.module_path).resolve() == module for m in item.mutations)
        }


def main(argv: list[str]) -> int:
    """Skip the session's pending mutants of ``module`` outside the named definitions."""
    parser = argparse.ArgumentParser(description="Keep mutants inside named definitions.")
    parser.add_argument("session")
    parser.add_argument("module", type=Path)
    parser.add_argument("names", nargs="+")
    parser.add_argument("--sample", type=int, default=None, help="keep N at random")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample")
    parser.add_argument(
        "--skip-done",
        type=Path,
        default=None,
        help="another session of the same source: skip the mutants it has run (a second sample)",
    )
    args = parser.parse_args(argv)
    module = args.module.resolve()
    ranges = line_ranges(args.module, args.names)
    done = set() if args.skip_done is None else run_mutants(args.skip_done, module)
    with use_db(args.session, WorkDB.Mode.open) as db:
        skip, inside = [], []
        for item in db.pending_work_items:
            mine = [m for m in item.mutations if Path(m.module_path).resolve() == module]
            if not mine:
                continue
            if any(a <= m.start_pos[0] <= b for m in mine for a, b in ranges):
                # Keyed by what the mutant is (job ids are random): the same
                # sample from every init of the same source.
                key = [(m.start_pos, m.operator_name, m.occurrence) for m in mine]
                inside.append((key, item.job_id))
            else:
                skip.append(item.job_id)
        inside.sort()
        # Sampled after the skip: a second sample is as unbiased as the first.
        skip += [job for key, job in inside if repr(key) in done]
        inside = [(key, job) for key, job in inside if repr(key) not in done]
        if args.sample is not None and args.sample < len(inside):
            kept = set(random.Random(args.seed).sample(range(len(inside)), args.sample))
            skip += [job for k, (_, job) in enumerate(inside) if k not in kept]
        if skip:
            db.set_multiple_results(
                skip,
                WorkResult(
                    output="outside " + " ".join(args.names) + " or not sampled",
                    worker_outcome=WorkerOutcome.SKIPPED,
                ),
            )
        pending = sum(1 for _ in db.pending_work_items)
    print(f"{args.module}: {len(inside)} mutants inside {', '.join(args.names)}; {pending} pending")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
