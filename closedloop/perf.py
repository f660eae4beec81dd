"""Performance suite: every figure a ratio to a reference measured in the same run.

Absolute timings on a shared machine move by a factor of two from one minute
to the next; a ratio of two measurements taken side by side does not. Each
case below times a piece of closedloop and a reference doing the same work
the plain way, interleaved, best of ``repeats`` (interference only ever slows
a run down), and reports ``closedloop / reference`` as a throughput ratio
(higher is better).

Cases
-----
``closed_loop/<period>/<engine>``
    Closed loop (PID, n = 1) against the same model kernel advanced open loop
    in one call (the compiled ceiling), simulated seconds per wall second.
``closed_loop_batch/1ms/<engine>``
    The same at n = 256.
``parallel_speedup/<model>``
    Batch throughput (n = 256) of each built-in Numba model on all threads
    against one thread.
``hdf5_write``
    Streaming a run's time series through :class:`RunRecorder` against
    writing the same bytes with ``numpy.ndarray.tofile``.
``sweep/2_workers``
    Throughput of a 12-run sweep (one run per task) on a local pool of two
    workers against one worker.

A baseline (``benchmarks/perf_baseline.json``) records the ratios of a
reference run; :func:`compare` flags a case whose ratio fell below
``(1 - tolerance)`` times its baseline. The default tolerance, 0.35, is above
the spread of best-of-5 ratios measured on the project's 2-core machine
(about +-20 %) and well below the slowdowns worth catching (a lost
parallel loop halves a ratio; Python back in a compiled loop divides one by
ten).
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = [
    "PERF_FORMAT_VERSION",
    "TOLERANCE",
    "closed_loop_rate",
    "compare",
    "load_baseline",
    "open_loop_rate",
    "run_perf",
]

PERF_FORMAT_VERSION = 1
TOLERANCE = 0.35
_DT = 1e-4


def _best(fn: Callable[[], float], repeats: int) -> float:
    """Best (highest) of ``repeats`` calls returning a rate."""
    return max(fn() for _ in range(repeats))


def open_loop_rate(
    model_cls: type, n: int, seconds: float, repeats: int = 3, **model_kw: object
) -> float:
    """Open-loop instance-seconds per wall second of a model kernel, one call per run."""
    model = model_cls(n=n, **model_kw)
    model.reset(0)
    model.advance(10)  # compile or load from the cache
    steps = int(round(seconds / model.dt_s))

    def once() -> float:
        t = time.perf_counter()
        model.advance(steps)
        return n * seconds / (time.perf_counter() - t)

    return _best(once, repeats)


def closed_loop_rate(
    n: int, period_s: float, seconds: float, engine: str, repeats: int = 3
) -> float:
    """Closed-loop (STN-GPe, PID) instance-seconds per wall second."""
    from closedloop.controllers import PID
    from closedloop.device import Device
    from closedloop.loop import ClosedLoop
    from closedloop.models import STNGPe
    from closedloop.sensing import SensingChain

    loop = ClosedLoop(
        STNGPe(dt_s=_DT, n=n),
        SensingChain(),
        Device(),
        PID(setpoint=30.0, kp=0.02, ki=0.2, max_amplitude_ma=3.0),
        control_period_s=period_s,
        seed=0,
        engine=engine,
    )
    loop.reset()
    loop.run(3 * period_s)  # argument types settle once the controller has answered

    def once() -> float:
        loop.reset()
        t = time.perf_counter()
        loop.run(seconds, chunk_s=1.0)
        return n * seconds / (time.perf_counter() - t)

    return _best(once, repeats)


def _parallel_speedup(model_cls: type, seconds: float, repeats: int) -> float:
    import numba

    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = open_loop_rate(model_cls, 256, seconds, repeats)
        numba.set_num_threads(threads)
        many = open_loop_rate(model_cls, 256, seconds, repeats)
    finally:
        numba.set_num_threads(threads)
    return many / one


def _hdf5_ratio(repeats: int) -> float:
    from closedloop.recording import RunRecorder

    n, block, blocks = 16, 2000, 50
    data = np.random.default_rng(0).normal(size=(n, block))
    with tempfile.TemporaryDirectory() as tmp:

        def recorder() -> float:
            t = time.perf_counter()
            with RunRecorder(
                Path(tmp) / "r.h5", config={}, seed=0, n=n, closedloop_version="perf"
            ) as rec:
                rec.create_timeseries("x", units="1", sampling_rate_hz=1000.0)
                for _ in range(blocks):
                    rec.append("x", data)
            return data.nbytes * blocks / (time.perf_counter() - t)

        def plain() -> float:
            t = time.perf_counter()
            with open(Path(tmp) / "r.bin", "wb") as fh:
                for _ in range(blocks):
                    data.tofile(fh)
            return data.nbytes * blocks / (time.perf_counter() - t)

        return _best(recorder, repeats) / _best(plain, repeats)


def _sweep_speedup(repeats: int) -> float:
    import shutil

    import yaml

    from closedloop.executors import LocalPool
    from closedloop.sweep import expand_sweep, run_sweep

    experiments = Path(__file__).resolve().parents[1] / "experiments"
    raw = yaml.safe_load((experiments / "pd_beta_sweep.yaml").read_text())
    raw["duration_s"] = 1.0
    raw["output"] = {"figure": False}
    raw["sweep"] = {"seed": 5, "grid": {"model.params.w_GS": {"start": 8, "stop": 12, "num": 12}}}
    plan = expand_sweep(raw, "perf")
    rate = {}
    for workers in (1, 2):
        with LocalPool(workers) as pool:
            best = 0.0
            for k in range(repeats + 1):  # the first sweep starts workers and loads kernels
                out = Path(tempfile.mkdtemp(prefix="perf_sweep_"))
                try:
                    t = time.perf_counter()
                    run_sweep(plan, out, pool, batch_size=1, log=lambda m: None)
                    if k:
                        best = max(best, len(plan.runs) / (time.perf_counter() - t))
                finally:
                    shutil.rmtree(out, ignore_errors=True)
            rate[workers] = best
    return rate[2] / rate[1]


def run_perf(
    quick: bool = False, repeats: int | None = None, progress: Callable[[str], None] | None = None
) -> dict:
    """Run every case; return a record with the ratios (see the module docstring)."""
    from closedloop.models import BUILTIN_MODELS, STNGPe

    repeats = repeats or (3 if quick else 5)
    sim = 1.0 if quick else 2.0
    ratios: dict[str, float] = {}
    ceiling_1 = open_loop_rate(STNGPe, 1, sim, repeats, dt_s=_DT)
    ceiling_256 = open_loop_rate(STNGPe, 256, sim / 4, repeats, dt_s=_DT)
    for period, label in ((0.02, "20ms"), (0.001, "1ms")):
        for engine in ("python", "compiled"):
            rate = closed_loop_rate(1, period, sim, engine, repeats)
            ratios[f"closed_loop/{label}/{engine}"] = rate / ceiling_1
            if progress:
                progress(f"closed_loop/{label}/{engine}: {rate:.0f} x real time")
    for engine in ("python", "compiled"):
        rate = closed_loop_rate(256, 0.001, sim / 4, engine, repeats)
        ratios[f"closed_loop_batch/1ms/{engine}"] = rate / ceiling_256
    for name, cls in sorted(BUILTIN_MODELS.items()):
        ratios[f"parallel_speedup/{name}"] = _parallel_speedup(cls, sim / 4, repeats)
    ratios["hdf5_write"] = _hdf5_ratio(repeats)
    ratios["sweep/2_workers"] = _sweep_speedup(2 if quick else 3)
    return {
        "format_version": PERF_FORMAT_VERSION,
        "machine": platform.platform(),
        "quick": quick,
        "repeats": repeats,
        "ratios": ratios,
    }


def load_baseline(path: str | Path) -> dict:
    """Read a baseline record, refusing other format versions with a clear message."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no such baseline file") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a JSON baseline ({exc})") from None
    version = record.get("format_version") if isinstance(record, dict) else None
    if version != PERF_FORMAT_VERSION:
        raise ValueError(
            f"{path}: baseline format version {version!r} is not this suite's "
            f"({PERF_FORMAT_VERSION}); record a new baseline with "
            "`closedloop bench --perf --json FILE`"
        )
    return record


def compare(record: dict, baseline: dict, tolerance: float = TOLERANCE) -> tuple[str, bool]:
    """Table of each ratio against the baseline, and whether any regressed."""
    lines = [f"{'case':<34} {'baseline':>9} {'now':>9} {'change':>8}  verdict"]
    regressed = False
    for case, now in record["ratios"].items():
        base = baseline["ratios"].get(case)
        if base is None:
            lines.append(f"{case:<34} {'-':>9} {now:>9.3f} {'':>8}  new")
            continue
        change = now / base - 1.0
        bad = now < (1.0 - tolerance) * base
        regressed |= bad
        verdict = f"REGRESSED (more than {tolerance:.0%} below)" if bad else "ok"
        lines.append(f"{case:<34} {base:>9.3f} {now:>9.3f} {change:>+8.1%}  {verdict}")
    return "\n".join(lines), regressed
