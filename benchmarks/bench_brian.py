"""The closed loop inside Brian2 against the same network run open loop, measured in one run.

For the PING E-I network (:class:`closedloop.models.brian_ping.BrianPING`) at
1,000 and 10,000 neurons (80 % excitatory, fixed in-degrees) it prints the
real-time factor (simulated seconds per wall second) of

* ``open``: the network alone, run open loop in one ``Network.run`` (the
  same objects the loop builds, stimulation input included, driven by zeros);
* ``closed, twin``: :class:`~closedloop.brian.loop.BrianLoop` with a PI
  controller at a 1 ms control period and 1 kHz sensing, the controller's
  Numba twin inside the network operation's compiled call;
* ``closed, python``: the same with the controller's ``update`` in Python;

each with its cost: the median over repeats of the ratio of its CPU time to
the open loop's measured just before (Brian2's runtime and the loop are
single-threaded, so on an idle machine CPU time is wall time, and on a shared
one it is what other processes inflate least); the real-time factors are the
best of the repeats, wall-clock beside CPU. Brian2's profiler then gives the
share of the closed loop's run time spent in what the loop adds, a
decomposition within one run that interference cannot bias. The first run of each (building the
network: code generation and, with an empty cache, Cython compilation) is
reported separately. Then, for 1,000 neurons, the whole closed loop as one
``cpp_standalone`` program (compilation time, then run time), and a batch of
4 instances in one network against 4 networks one after the other. Run::

    python benchmarks/bench_brian.py [--json bench_brian.json] [--quick] [--cold]

``--cold`` compiles into a fresh, empty Cython cache to show the first-run
compilation cost; by default the project's cache is used, as a second run
of any experiment uses it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import numpy as np

from closedloop.bench.perf import BrianOpenLoop
from closedloop.brian.loop import BrianLoop
from closedloop.controllers import PID
from closedloop.device import Device
from closedloop.models.brian_ping import BrianPING
from closedloop.sensing.chain import SensingChain

DT = 1e-4
PERIOD = 1e-3
#: Each figure is the best of this many runs.
REPEATS = 9


def _params(n_neurons: int) -> dict[str, int]:
    n_e = int(round(0.8 * n_neurons))
    return {"N_E": n_e, "N_I": n_neurons - n_e}


def _controller() -> PID:
    # Regulates gamma power towards a level the network exceeds: always acting.
    return PID(setpoint=50.0, kp=0.001, ki=0.01, max_amplitude_ma=2.0)


def _loop(n_neurons: int, engine: str, target: str = "auto", n: int = 1) -> BrianLoop:
    # The generated sensing chain of cpp_standalone offers the power envelope.
    envelope = "power" if target == "cpp_standalone" else "arv"
    return BrianLoop(
        BrianPING(dt_s=DT, n=n, params=_params(n_neurons)),
        SensingChain(band_hz=(30.0, 50.0), envelope=envelope),
        Device(),
        _controller(),
        control_period_s=PERIOD,
        seed=0,
        engine=engine,
        target=target,
    )


def _open_loop(n_neurons: int) -> BrianOpenLoop:
    """The network alone, as the loop builds it (plain Brian2)."""
    return BrianOpenLoop(_loop(n_neurons, "auto"))


def _first(make, seconds: float):
    """Build and run briefly: the first-run cost (code generation, compilation)."""
    t = time.perf_counter()
    obj = make()
    if isinstance(obj, BrianLoop):
        obj.reset()
        obj.run(seconds)
    else:
        obj.run(seconds)
    return obj, time.perf_counter() - t


def _timed_run(obj, seconds: float) -> tuple[float, float]:
    """Wall and CPU seconds of one run (CPU time: what other processes cannot inflate)."""
    if isinstance(obj, BrianLoop):
        obj.reset()
    t, c = time.perf_counter(), time.process_time()
    obj.run(seconds)
    return time.perf_counter() - t, time.process_time() - c


def runtime_rows(n_neurons: int, seconds: float) -> list[dict]:
    """Open loop and both closed loops, interleaved, best of REPEATS."""
    cases = {
        "open": lambda: _open_loop(n_neurons),
        "closed, twin": lambda: _loop(n_neurons, "auto"),
        "closed, python": lambda: _loop(n_neurons, "python"),
    }
    objects, first = {}, {}
    for name, make in cases.items():
        objects[name], first[name] = _first(make, 0.05)
    wall = {name: float("inf") for name in cases}
    cpu = {name: float("inf") for name in cases}
    paired: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(REPEATS):
        this = {}
        for name, obj in objects.items():
            w, c = _timed_run(obj, seconds)
            wall[name] = min(wall[name], w)
            cpu[name] = min(cpu[name], c)
            this[name] = c
        for name in cases:
            # Runs side by side share the machine's state: their ratio is
            # steadier than a ratio of separate minima.
            paired[name].append(this[name] / this["open"])
    rows = []
    for name in cases:
        rows.append(
            {
                "neurons": n_neurons,
                "case": name,
                "target": objects[name].target_ if name != "open" else "cython",
                "simulated_s": seconds,
                "wall_s": wall[name],
                "cpu_s": cpu[name],
                "x_real_time": seconds / wall[name],
                "x_real_time_cpu": seconds / cpu[name],
                "ratio_to_open_loop": float(np.median(paired[name])),
                "ratio_of_best_runs": cpu[name] / cpu["open"],
                "wall_ratio_to_open_loop": wall[name] / wall["open"],
                "first_run_s": first[name],
            }
        )
    return rows


def standalone_row(n_neurons: int, seconds: float) -> dict:
    """The whole closed loop as one cpp_standalone program."""
    loop = _loop(n_neurons, "auto", target="cpp_standalone")
    loop.reset()
    loop.run(seconds)
    return {
        "neurons": n_neurons,
        "case": "closed, generated code",
        "target": "cpp_standalone",
        "simulated_s": seconds,
        "wall_s": loop.run_wall_s_,
        "cpu_s": loop.run_cpu_s_,
        "x_real_time": seconds / loop.run_wall_s_,
        "x_real_time_cpu": seconds / loop.run_cpu_s_,
        "ratio_to_open_loop": float("nan"),
        "wall_ratio_to_open_loop": float("nan"),
        "first_run_s": loop.compile_s_,
    }


def loop_share(n_neurons: int, seconds: float) -> dict:
    """Share of the closed loop's run time spent in what the loop adds (Brian2's profiler).

    The probes' summed updates and the network operation, against every code
    object of the run: a cost decomposition that other processes on a shared
    machine cannot bias the way they bias a ratio of two separate runs.
    """
    loop = _loop(n_neurons, "auto")
    loop.reset()
    loop.run(0.05)
    loop.profile = True
    loop.reset()
    loop.run(seconds)
    total = sum(t for _, t in loop.profiling_info_)
    added = sum(
        t for name, t in loop.profiling_info_ if name.startswith(("cl_", "networkoperation"))
    )
    return {
        "neurons": n_neurons,
        "loop_share_of_run_time": added / total,
        "overhead_vs_open_loop": added / (total - added),
        "by_object": dict(loop.profiling_info_),
    }


def batch_rows(n_neurons: int, seconds: float, n: int = 4) -> list[dict]:
    """n instances in one network against n networks one after the other."""
    batched, first_b = _first(lambda: _loop(n_neurons, "auto", n=n), 0.05)
    single, first_s = _first(lambda: _loop(n_neurons, "auto", n=1), 0.05)
    best_b = best_s = float("inf")
    for _ in range(REPEATS):
        best_b = min(best_b, _timed_run(batched, seconds)[1])
        best_s = min(best_s, n * _timed_run(single, seconds)[1])
    return [
        {
            "neurons": n_neurons,
            "case": f"batch of {n} in one network",
            "instance_s_per_cpu_s": n * seconds / best_b,
            "first_run_s": first_b,
        },
        {
            "neurons": n_neurons,
            "case": f"{n} networks one after the other",
            "instance_s_per_cpu_s": n * seconds / best_s,
            "first_run_s": first_s,
        },
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="bench_brian.json", help="where to write the figures")
    ap.add_argument("--quick", action="store_true", help="shorter runs, no 10,000 neurons")
    ap.add_argument("--cold", action="store_true", help="compile into an empty Cython cache")
    ap.add_argument("--no-standalone", action="store_true", help="skip cpp_standalone")
    args = ap.parse_args()
    if args.cold:
        os.environ["CLOSEDLOOP_BRIAN_CACHE"] = tempfile.mkdtemp(prefix="bench_brian_cache_")
    sizes = ((1000, 0.5),) if args.quick else ((1000, 1.0), (10000, 0.5))
    rows = []
    for n_neurons, seconds in sizes:
        rows += runtime_rows(n_neurons, seconds)
    standalone = [] if args.no_standalone else [standalone_row(1000, 1.0 if args.quick else 2.0)]
    batch = batch_rows(1000, 0.5 if args.quick else 1.0)
    shares = [loop_share(n_neurons, seconds) for n_neurons, seconds in sizes]

    print(
        f"{'neurons':>8} {'case':<24} {'target':<15} {'x RT (cpu)':>10} {'x RT (wall)':>11} "
        f"{'ratio':>7} {'first run s':>12}"
    )
    for r in rows + standalone:
        print(
            f"{r['neurons']:>8} {r['case']:<24} {r['target']:<15} {r['x_real_time_cpu']:>10.2f} "
            f"{r['x_real_time']:>11.2f} {r['ratio_to_open_loop']:>7.3f} {r['first_run_s']:>12.2f}"
        )
    print("x RT: simulated s per CPU s (per wall s), best run; ratio: median of CPU time / the")
    print("open loop's, same network, run side by side; first run: building the network (and")
    print("compiling what the cache lacks); cpp_standalone: the compiled program's run, first")
    print("run = its compilation.")
    for r in shares:
        print(
            f"{r['neurons']:>8} loop's own objects (probes, network operation): "
            f"{100 * r['loop_share_of_run_time']:.1f} % of the closed loop's run time, "
            f"{100 * r['overhead_vs_open_loop']:.1f} % on top of the network (Brian2 profiler)"
        )
    for r in batch:
        print(
            f"{r['neurons']:>8} {r['case']:<32} {r['instance_s_per_cpu_s']:>8.2f} instance-s/cpu-s"
        )
    record = {
        "benchmark": "bench_brian",
        "machine": platform.platform(),
        "processor": platform.processor(),
        "cold_cache": args.cold,
        "control_period_s": PERIOD,
        "dt_s": DT,
        "repeats": REPEATS,
        "rows": rows + standalone,
        "batch": batch,
        "loop_share": shares,
    }
    with open(args.json, "w") as fh:
        json.dump(record, fh, indent=2)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
