"""Resident memory of a recorded run against its length (issue 18, gap 2).

A recorded run should hold what it needs for a chunk, not for the run:
:func:`memory_flatness` compares the peak resident memory after the warm-up
of the default experiment recorded for ``seconds`` with the same for four
times as long, each in a fresh process (a process's peak cannot be reset).
:class:`PeakRSS` samples ``/proc/self/statm`` (Linux) every 5 ms.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

__all__ = ["PeakRSS", "memory_flatness", "rss_mib", "run_peak_mib", "watch_after_warm_up"]

EXPERIMENT = Path(__file__).resolve().parents[2] / "experiments" / "pd_beta_adbs.yaml"


def rss_mib() -> float:
    """Resident memory of this process now, MiB (Linux)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


class PeakRSS:
    """Peak resident memory (MiB, :attr:`peak`) while the ``with`` block runs."""

    def restart(self) -> None:
        """Forget the peak so far (e.g. a warm-up's)."""
        self.peak = rss_mib()

    def __enter__(self) -> PeakRSS:
        self.peak = rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_mib())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib())


def watch_after_warm_up(loop: Any, peak: PeakRSS) -> None:
    """Make ``loop.warm_up`` restart ``peak`` when it returns (the warm-up's block is left out)."""
    warm_up = loop.warm_up

    def warm_up_then_watch(seconds: float) -> None:
        warm_up(seconds)
        peak.restart()

    loop.warm_up = warm_up_then_watch


def run_peak_mib(n: int, seconds: float) -> float:
    """Peak RSS (MiB) after the warm-up of the default experiment recorded here."""
    from closedloop.config import load_config
    from closedloop.experiment import run_experiment

    exp = load_config(
        EXPERIMENT, [f"n_instances={n}", f"duration_s={seconds}", "output.figure=false"]
    )
    loop = exp.loop
    loop.reset()  # compile (or load) the kernels outside the measurement
    loop.warm_up(0.01)
    loop.run(4 * loop.control_period_s)
    peak = PeakRSS()
    watch_after_warm_up(loop, peak)
    with tempfile.TemporaryDirectory() as tmp, peak:
        run_experiment(exp, tmp)
    return peak.peak


def memory_flatness(n: int = 256, seconds: float = 1.0) -> float:
    """Peak RSS of a recorded run over that of one four times as long (1: flat).

    Each run in a fresh interpreter; the figure falls below 1 as memory
    grows with run length.
    """
    peaks = []
    for duration in (seconds, 4 * seconds):
        code = (
            "import json; from closedloop.bench.perf_memory import run_peak_mib; "
            f"print(json.dumps(run_peak_mib({int(n)}, {float(duration)})))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        peaks.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return peaks[0] / peaks[1]
