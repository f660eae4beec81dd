"""What recording costs: ``run_experiment`` against the bare loop, time and memory.

Each case runs in its own process (so its peak resident memory is its own),
the variants interleaved round by round; the figure is the median over rounds
of the recorded run's wall time over the bare loop's, and of their peak RSS.

The bare loop is what a user of the Python API runs: the experiment's loop,
reset, warmed up and run for ``duration_s`` in ``output.chunk_s`` chunks with
no callback. The recorded run is ``run_experiment`` (the ``closedloop run``
path without the figure) with the output settings of each variant.

``run MB`` is the peak resident memory after the warm-up (sampled every
5 ms from ``/proc/self/statm``), which the warm-up's own peak (a block of
raw integration steps, the same in both cases) does not hide; with
``--duration 2,4,8`` it shows whether memory grows with run length.

Usage::

    .venv/bin/python benchmarks/bench_recording.py --n 4096 --duration 2 --rounds 3
    .venv/bin/python benchmarks/bench_recording.py --n 1024 --duration 2,4,8 --variants auto
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "pd_beta_adbs.yaml"

#: Variant name to config overrides (all: n_instances, duration_s, no figure).
VARIANTS = {
    "bare": None,
    "auto": [],  # the defaults: lzf except the sensed signals, float64
    "none": ["output.compression=none"],
    "lzf": ["output.compression=lzf"],
    "gzip-1": ["output.compression=gzip-1"],
    "auto_f32": ["output.dtype=float32"],
    "auto_nobase": ["output.record_baseline=false"],
}


def child(variant: str, n: int, duration: float) -> dict:
    """Run one variant in this process; wall time (s), peak RSS (MB), file size (MB).

    ``run_mb`` is the peak while the run (after the warm-up) goes.
    """
    from closedloop.bench.perf_memory import PeakRSS, watch_after_warm_up
    from closedloop.config import load_config
    from closedloop.experiment import run_experiment

    base = [f"n_instances={n}", f"duration_s={duration}", "output.figure=false"]
    exp = load_config(EXPERIMENT, [*base, *(VARIANTS[variant] or [])])
    exp.loop.reset()  # compile (or load) the kernels outside the timing
    exp.loop.warm_up(0.01)
    exp.loop.run(4 * exp.config.control.period_s)
    loop = exp.loop
    run_peak = PeakRSS()
    watch_after_warm_up(loop, run_peak)
    with tempfile.TemporaryDirectory() as tmp, run_peak:
        t = time.perf_counter()
        size = 0.0
        if VARIANTS[variant] is None:
            loop.reset()
            loop.warm_up(exp.config.warmup_s)
            loop.run(exp.config.duration_s, chunk_s=exp.config.output.chunk_s)
        else:
            out = run_experiment(exp, tmp)
            size = out.path.stat().st_size / 1e6
        wall = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"wall_s": wall, "rss_mb": rss, "run_mb": run_peak.peak, "file_mb": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--duration", default="2", help="s; several: comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--child", default=None)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.n, float(args.duration))))
        return
    cases = [(v, d) for d in args.duration.split(",") for v in args.variants.split(",")]
    results: dict[tuple[str, str], list[dict]] = {c: [] for c in cases}
    for _ in range(args.rounds):
        for name, duration in cases:
            cmd = [sys.executable, __file__, "--child", name, "--n", str(args.n)]
            cmd += ["--duration", duration]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            results[name, duration].append(json.loads(out.strip().splitlines()[-1]))
            print(name, duration, results[name, duration][-1], flush=True)
    print(f"\nn = {args.n}, medians of {args.rounds} rounds (MB: MiB)")
    print(
        f"{'variant':<12} {'dur s':>6} {'wall s':>8} {'x bare':>7} {'RSS MB':>8} {'x bare':>7} "
        f"{'run MB':>8} {'x bare':>7} {'file MB':>8}"
    )
    for (name, duration), rows in results.items():
        bare = results.get(("bare", duration), [])
        walls = [r["wall_s"] / b["wall_s"] for r, b in zip(rows, bare, strict=False)]

        def med(key: str, rows: list[dict] = rows) -> float:
            return statistics.median(r[key] for r in rows)

        def x_bare(key: str, bare: list[dict] = bare) -> float:
            return med(key) / statistics.median(r[key] for r in bare) if bare else float("nan")

        ratio = statistics.median(walls) if walls else float("nan")
        print(
            f"{name:<12} {duration:>6} {med('wall_s'):>8.2f} {ratio:>7.2f} {med('rss_mb'):>8.0f} "
            f"{x_bare('rss_mb'):>7.2f} {med('run_mb'):>8.0f} {x_bare('run_mb'):>7.2f} "
            f"{med('file_mb'):>8.1f}"
        )


if __name__ == "__main__":
    main()
