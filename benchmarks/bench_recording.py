"""What recording costs: ``run_experiment`` against the bare loop, time and memory.

Each case runs in its own process (so its peak resident memory is its own),
the variants interleaved round by round; the figure is the median over rounds
of the recorded run's wall time over the bare loop's, and of their peak RSS.

The bare loop is what a user of the Python API runs: the experiment's loop,
reset, warmed up and run for ``duration_s`` in ``output.chunk_s`` chunks with
no callback. The recorded run is ``run_experiment`` (the ``closedloop run``
path without the figure) with the output settings of each variant.

Usage::

    .venv/bin/python benchmarks/bench_recording.py --n 4096 --duration 2 --rounds 3
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
    """Run one variant in this process; wall time (s), peak RSS (MB), file size (MB)."""
    from closedloop.config import load_config
    from closedloop.experiment import run_experiment

    base = [f"n_instances={n}", f"duration_s={duration}", "output.figure=false"]
    exp = load_config(EXPERIMENT, [*base, *(VARIANTS[variant] or [])])
    exp.loop.reset()  # compile (or load) the kernels outside the timing
    exp.loop.warm_up(0.01)
    exp.loop.run(4 * exp.config.control.period_s)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        size = 0.0
        if VARIANTS[variant] is None:
            loop = exp.loop
            loop.reset()
            loop.warm_up(exp.config.warmup_s)
            loop.run(exp.config.duration_s, chunk_s=exp.config.output.chunk_s)
        else:
            out = run_experiment(exp, tmp)
            size = out.path.stat().st_size / 1e6
        wall = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"wall_s": wall, "rss_mb": rss, "file_mb": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--child", default=None)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.n, args.duration)))
        return
    names = args.variants.split(",")
    results: dict[str, list[dict]] = {k: [] for k in names}
    for _ in range(args.rounds):
        for name in names:
            cmd = [sys.executable, __file__, "--child", name, "--n", str(args.n)]
            cmd += ["--duration", str(args.duration)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            results[name].append(json.loads(out.strip().splitlines()[-1]))
            print(name, results[name][-1], flush=True)
    bare = [r["wall_s"] for r in results.get("bare", [])]
    print(f"\nn = {args.n}, {args.duration:g} s, medians of {args.rounds} rounds")
    print(f"{'variant':<12} {'wall s':>8} {'x bare':>7} {'RSS MB':>8} {'x bare':>7} {'file MB':>8}")
    for name, rows in results.items():
        wall = statistics.median(r["wall_s"] for r in rows)
        rss = statistics.median(r["rss_mb"] for r in rows)
        ratios = [r["wall_s"] / b for r, b in zip(rows, bare, strict=False)] if bare else []
        rss_bare = statistics.median(r["rss_mb"] for r in results["bare"]) if bare else rss
        size = statistics.median(r["file_mb"] for r in rows)
        ratio = statistics.median(ratios) if ratios else float("nan")
        print(
            f"{name:<12} {wall:>8.2f} {ratio:>7.2f} {rss:>8.0f} {rss / rss_bare:>7.2f} {size:>8.1f}"
        )


if __name__ == "__main__":
    main()
