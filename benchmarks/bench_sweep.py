"""Sweep throughput: workers, batching and Dask against the local pool, in one run.

A 200-run sweep (the example ``experiments/pd_beta_sweep.yaml`` widened to
200 points of model coupling and controller thresholds, 2 s of closed loop
each, no figures) is run to completion in fresh directories by:

* the local process pool with 1 and with 2 workers, one run per task (one
  simulation per run, in worker processes that stay up);
* the same pool with runs batched (runs that differ only in model and
  controller parameters simulated together, one file each);
* one fresh ``closedloop run`` process per run, two at a time, timed on
  ``--process-runs`` runs of the sweep and scaled to all of them;
* a Dask LocalCluster of 2 worker processes, per run and batched, against
  the pool's 2 workers: the per-run overhead of the Dask path.

Executors are started and warmed (kernels loaded) before timing; each figure
is the best of ``--repeats`` sweeps, the configurations taken in turn within
each repeat (the machine is shared; interference only slows a sweep down).
Beside wall time it reports the CPU time the sweep process and its workers
used per run (Linux), which load from other processes disturbs far less.
Prints a table and writes a JSON record. Run::

    python benchmarks/bench_sweep.py [--json bench_sweep.json] [--runs 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from closedloop.sweep.executors import DaskExecutor, LocalPool, cpu_count
from closedloop.sweep.plan import expand_sweep
from closedloop.sweep.runner import run_sweep

ROOT = Path(__file__).resolve().parents[1]


def plan_of(n_runs: int, duration_s: float):
    """The example sweep, widened to about ``n_runs`` runs."""
    raw = yaml.safe_load((ROOT / "experiments" / "pd_beta_sweep.yaml").read_text())
    raw["duration_s"] = duration_s
    raw["output"] = {"figure": False}
    n_w = 10
    n_thr = max(1, math.ceil(n_runs / n_w))
    raw["sweep"] = {
        "seed": 5,
        "grid": {
            "model.params.w_GS": {"start": 8.0, "stop": 12.0, "num": n_w},
            "controller.params.upper_threshold": {"start": 30.0, "stop": 60.0, "num": n_thr},
        },
    }
    plan = expand_sweep(raw, "bench")
    plan.runs = plan.runs[:n_runs]
    return plan


def _process_cpu_s(pid: int) -> float:
    """CPU time (user + system, s) a process has used so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _worker_pids(executor) -> list[int]:
    if isinstance(executor, LocalPool):
        return [w.process.pid for w in executor._pool]
    return list(executor.client.run(os.getpid).values())


def _cpu_s(pids: list[int]) -> float:
    return sum(_process_cpu_s(pid) for pid in [os.getpid(), *pids])


def timed_sweep(plan, executor, batch_size: int | None, repeats: int) -> tuple[float, float]:
    """Best wall time (s) of ``repeats`` complete sweeps into fresh directories,
    and the CPU time (s) this process and the workers used for it."""
    best = (math.inf, math.inf)
    pids = _worker_pids(executor)
    for _ in range(repeats):
        out = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
        try:
            cpu = _cpu_s(pids)
            t = time.perf_counter()
            result = run_sweep(plan, out, executor, batch_size=batch_size, log=lambda m: None)
            wall = time.perf_counter() - t
            cpu = _cpu_s(pids) - cpu
            assert result.ok, result.failures
        finally:
            shutil.rmtree(out, ignore_errors=True)
        best = min(best, (wall, cpu))
    return best


def warm(executor, plan) -> None:
    """Start every worker and load the kernels: a small sweep, untimed."""
    small = copy.copy(plan)
    small.runs = plan.runs[: 2 * executor.workers]
    for batch_size in (1, len(small.runs)):
        out = Path(tempfile.mkdtemp(prefix="bench_sweep_warm_"))
        try:
            run_sweep(small, out, executor, batch_size=batch_size, log=lambda m: None)
        finally:
            shutil.rmtree(out, ignore_errors=True)


def process_per_run(plan, workers: int, n_runs: int) -> float:
    """Wall time (s) per run of ``closedloop run`` in a fresh process per run.

    ``n_runs`` runs of the sweep, ``workers`` processes at a time; each
    process imports closedloop, loads the compiled kernels, runs one config.
    """
    tmp = Path(tempfile.mkdtemp(prefix="bench_sweep_proc_"))
    try:
        configs = []
        for k, run in enumerate(plan.runs[:n_runs]):
            path = tmp / f"run{k}.yaml"
            path.write_text(yaml.safe_dump({**run.config, "name": f"run{k}"}))
            configs.append(path)
        t = time.perf_counter()
        running: list[subprocess.Popen] = []
        for path in configs:
            while len(running) >= workers:
                running = [p for p in running if p.poll() is None]
                time.sleep(0.002)
            running.append(
                subprocess.Popen(
                    [sys.executable, "-m", "closedloop.cli.main", "run", str(path), "--out",
                     str(tmp / "out"), "--no-progress"],
                    stdout=subprocess.DEVNULL,
                )
            )  # fmt: skip
        for proc in running:
            proc.wait()
        return (time.perf_counter() - t) / len(configs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="bench_sweep.json", help="where to write the figures")
    ap.add_argument("--runs", type=int, default=200, help="runs in the sweep [200]")
    ap.add_argument("--duration", type=float, default=2.0, help="closed loop per run, s [2]")
    ap.add_argument("--repeats", type=int, default=3, help="best of this many sweeps [3]")
    ap.add_argument("--no-dask", action="store_true", help="skip the Dask measurement")
    ap.add_argument(
        "--process-runs",
        type=int,
        default=12,
        help="runs timed for one fresh process per run (then scaled to the sweep) [12]",
    )
    args = ap.parse_args()

    plan = plan_of(args.runs, args.duration)
    n = len(plan.runs)
    print(f"{n} runs of {args.duration:g} s, {cpu_count()} core(s), best of {args.repeats}")
    # Every executor started and warmed first, then the configurations taken
    # in turn, repeat after repeat: a burst of load from elsewhere on a
    # shared machine then hits one repeat of each, not all repeats of one.
    executors = {"pool_1": LocalPool(1), "pool_2": LocalPool(2)}
    if not args.no_dask:
        executors["dask_2"] = DaskExecutor("local", 2)
    try:
        for executor in executors.values():
            warm(executor, plan)
        times: dict[str, float] = {}
        cpu: dict[str, float] = {}
        for _ in range(args.repeats):
            for name, executor in executors.items():
                for label, size in (("per_run", 1), ("batched", None)):
                    key = f"{name}_{label}"
                    wall, cpu_s = timed_sweep(plan, executor, size, 1)
                    times[key] = min(times.get(key, math.inf), wall)
                    cpu[key] = min(cpu.get(key, math.inf), cpu_s)
            if args.process_runs > 0:
                key = "process_per_run_2_at_a_time (scaled)"
                wall = process_per_run(plan, 2, args.process_runs) * n
                times[key] = min(times.get(key, math.inf), wall)
    finally:
        for executor in executors.values():
            executor.shutdown()

    print(f"\n{'configuration':<38} {'wall s':>8} {'runs/s':>8} {'ms/run':>8} {'cpu ms/run':>11}")
    for key, wall in times.items():
        used = f"{1e3 * cpu[key] / n:>11.1f}" if key in cpu else f"{'':>11}"
        print(f"{key:<38} {wall:>8.2f} {n / wall:>8.1f} {1e3 * wall / n:>8.1f} {used}")
    ratios = {
        "workers_2_over_1_per_run": times["pool_1_per_run"] / times["pool_2_per_run"],
        "workers_2_over_1_batched": times["pool_1_batched"] / times["pool_2_batched"],
        "batched_over_per_run_2_workers": times["pool_2_per_run"] / times["pool_2_batched"],
        "batched_over_per_run_1_worker": times["pool_1_per_run"] / times["pool_1_batched"],
    }
    key = "process_per_run_2_at_a_time (scaled)"
    if key in times:
        ratios["batched_over_process_per_run_2_workers"] = times[key] / times["pool_2_batched"]
    if "dask_2_per_run" in times:
        ratios["dask_over_pool_per_run_2_workers"] = (
            times["dask_2_per_run"] / times["pool_2_per_run"]
        )
        ratios["dask_over_pool_batched_2_workers"] = (
            times["dask_2_batched"] / times["pool_2_batched"]
        )
        ratios["dask_overhead_ms_per_run"] = 1e3 * (
            (times["dask_2_per_run"] - times["pool_2_per_run"]) / n * 2
        )
        ratios["dask_over_pool_cpu_per_run"] = cpu["dask_2_per_run"] / cpu["pool_2_per_run"]
    ratios["batched_over_per_run_cpu"] = cpu["pool_2_per_run"] / cpu["pool_2_batched"]
    print()
    targets = {
        "workers_2_over_1_per_run": "target >= 1.8",
        "dask_over_pool_per_run_2_workers": "target <= 1.10",
    }
    for key, value in ratios.items():
        print(f"{key:<38} {value:>8.3f}  {targets.get(key, '')}")
    record = {
        "benchmark": "sweep",
        "runs": n,
        "duration_s": args.duration,
        "repeats": args.repeats,
        "cores": cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "wall_s": times,
        "cpu_s": cpu,
        "ratios": ratios,
    }
    with open(args.json, "w") as fh:
        json.dump(record, fh, indent=2)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
