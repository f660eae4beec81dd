"""Start-up of the light commands against bare imports, and of a cold first run.

Every case is a fresh interpreter; the cases alternate round by round and the
figure is the median wall time (and CPU time of the child) over rounds, with
each command's time as a multiple of ``python -c "import numpy"`` and of
``python -c "import numba"`` measured in the same rounds (the floors: every
command imports numpy; a run imports numba).

``--tree DIR`` times another copy of the package laid out as installed
(``DIR/closedloop`` with ``models`` and ``controllers`` inside it, as
``git archive`` plus two moves give) beside this one: a before/after
comparison in one run. ``--cold`` adds a cold first run of the default
experiment (an empty kernel cache per round; minutes on a busy machine) and
the same run again on the cache it filled (warm).

``PYTHONDONTWRITEBYTECODE`` (set on some CI machines) makes every module
compile from source on every start; it is removed here unless ``--no-pyc``.

Usage::

    .venv/bin/python benchmarks/bench_startup.py --rounds 7
    .venv/bin/python benchmarks/bench_startup.py --rounds 5 --tree /tmp/before
    .venv/bin/python benchmarks/bench_startup.py --rounds 1 --cold --duration 6
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "experiments" / "pd_beta_adbs.yaml"
CLI = "from closedloop.cli.main import main; raise SystemExit(main({!r}))"


def _timed(code: str, env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall and child CPU time (s) of ``python -c code`` (which must succeed)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True
    )
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"{code!r} failed:\n{done.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu


def _run_file(tmp: Path, env: dict[str, str]) -> Path:
    """A small run file for ``closedloop info`` (written without the CLI)."""
    path = tmp / "r.h5"
    code = (
        "import numpy as np\nfrom closedloop.io.hdf5 import RunRecorder\n"
        f"with RunRecorder({str(path)!r}, config={{}}, seed=0, n=1, closedloop_version='b') as r:\n"
        "    r.create_timeseries('x', units='1', sampling_rate_hz=1000.0)\n"
        "    r.append('x', np.zeros((1, 100)))\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return path


def main(argv: list[str] | None = None) -> int:
    """Time the cases; print a table and a JSON record."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--tree", type=Path, help="another copy of the package to time beside this one")
    p.add_argument("--cold", action="store_true", help="add a cold first run (empty cache)")
    p.add_argument("--duration", type=float, default=None, help="duration_s of the cold run")
    p.add_argument("--no-pyc", action="store_true", help="keep PYTHONDONTWRITEBYTECODE")
    args = p.parse_args(argv)

    env = dict(os.environ)
    if not args.no_pyc:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    trees = {"this": ROOT}
    if args.tree is not None:
        trees["tree"] = args.tree.resolve()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        run_file = _run_file(tmp, env)
        cases: dict[str, tuple[str, dict[str, str]]] = {
            "import numpy": ("import numpy", env),
            "import numba": ("import numba", env),
        }
        for label, tree in trees.items():
            tree_env = env if label == "this" else {**env, "PYTHONPATH": str(tree)}
            suffix = "" if label == "this" else f" [{tree}]"
            cases[f"validate{suffix}"] = (CLI.format(["validate", str(EXPERIMENT)]), tree_env)
            cases[f"info{suffix}"] = (CLI.format(["info", str(run_file)]), tree_env)
            if args.cold:
                argv_run = ["run", str(EXPERIMENT), "--out", str(tmp / label), "--no-progress"]
                if args.duration is not None:
                    argv_run += ["--set", f"duration_s={args.duration:g}"]
                cold_env = {**tree_env, "CLOSEDLOOP_NUMBA_CACHE": str(tmp / f"cache_{label}")}
                cases[f"cold run{suffix}"] = (CLI.format(argv_run), cold_env)
                cases[f"warm run{suffix}"] = (CLI.format(argv_run), cold_env)  # cache just filled
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, (code, case_env) in cases.items():
                if name.startswith("cold run"):
                    cache = Path(case_env["CLOSEDLOOP_NUMBA_CACHE"])
                    subprocess.run(["rm", "-rf", str(cache)], check=True)
                times[name].append(_timed(code, case_env, tmp))
    med = {
        name: (statistics.median(w for w, _ in ts), statistics.median(c for _, c in ts))
        for name, ts in times.items()
    }
    numpy_s, numba_s = med["import numpy"][0], med["import numba"][0]
    load = os.getloadavg()
    print(f"{args.rounds} interleaved rounds, medians; load average {load[0]:.1f} at the end")
    print(f"{'case':<40} {'wall s':>8} {'cpu s':>8} {'x numpy':>8} {'x numba':>8}")
    for name, (wall, cpu) in med.items():
        print(f"{name:<40} {wall:8.3f} {cpu:8.3f} {wall / numpy_s:8.2f} {wall / numba_s:8.2f}")
    record = {
        "rounds": args.rounds,
        "load_average": load[0],
        "pyc": not args.no_pyc,
        "median_wall_s": {k: v[0] for k, v in med.items()},
        "median_cpu_s": {k: v[1] for k, v in med.items()},
    }
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
