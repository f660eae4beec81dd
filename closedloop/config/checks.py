"""Checks across keys of an experiment: values each valid alone that cannot run together.

The schema (:mod:`closedloop.config.schema`) checks each value on its own.
These checks catch combinations that would make a run fail part-way or end
with NaN metrics (a run shorter than one control period, no samples left
for the spectrum after ``metrics.discard_s``, a reversed band, an
integration step too small to count steps in, more instances than the
memory holds), so that validation refuses them before anything is built.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from closedloop.metrics import MIN_PSD_SAMPLES

__all__ = [
    "available_memory_bytes",
    "format_bytes",
    "memory_problem",
    "model_bytes_per_instance",
    "run_problems",
]

#: Steps of a run must stay exact integers in float64 arithmetic (2**53).
MAX_STEPS = 2**53
#: Below this many instances the model's own state is not probed (it is small
#: next to the chunk buffers, which are always counted).
_PROBE_MIN_INSTANCES = 64
#: Share of the available memory a run may plan to use: the estimate leaves out
#: Python objects, HDF5 caches and the compiled code.
_MEMORY_SHARE = 0.8


def run_problems(cfg: Any, sensing_rate_hz: float | None) -> list[tuple[str, str]]:
    """Problems of the run's length, clocks and metrics band, as ``(key.path, sentence)``.

    Parameters
    ----------
    cfg : closedloop.config.schema.ExperimentConfig
        The parsed experiment.
    sensing_rate_hz : float or None
        The sensing rate, Hz (None when the sensing section is itself invalid).
    """
    problems: list[tuple[str, str]] = []
    duration = cfg.duration_s
    period = cfg.control.period_s
    metrics = cfg.metrics
    total_s = cfg.warmup_s + duration
    if total_s / cfg.model.dt_s >= MAX_STEPS:
        problems.append(
            (
                "model.dt_s",
                f"{cfg.model.dt_s:g} s is too small: the warm-up and run of {total_s:g} s "
                f"would take more than 2**53 steps; use a step of at least "
                f"{total_s / MAX_STEPS:.3g} s (typically 1e-5 to 1e-3 s)",
            )
        )
    if duration < period:
        problems.append(
            (
                "duration_s",
                f"{duration:g} s is shorter than one control period (control.period_s = "
                f"{period:g} s): nothing would be run",
            )
        )
    elif sensing_rate_hz is not None and (
        (duration - metrics.discard_s) * sensing_rate_hz < MIN_PSD_SAMPLES - 1e-9
    ):
        problems.append(
            (
                "duration_s",
                f"{duration:g} s leaves no time for the spectrum after metrics.discard_s = "
                f"{metrics.discard_s:g} s (it needs {MIN_PSD_SAMPLES} sensing samples): the "
                "band-power metrics would be NaN; run longer or lower metrics.discard_s",
            )
        )
    low, high = metrics.band_hz
    if not low < high:
        problems.append(
            (
                "metrics.band_hz",
                f"[{low:g}, {high:g}]: the lower edge must be below the upper edge "
                "(e.g. [13, 30] for the beta band)",
            )
        )
    elif low < 0:
        problems.append(("metrics.band_hz", f"[{low:g}, {high:g}]: frequencies must be 0 or more"))
    elif math.floor(high * metrics.segment_s + 1e-9) < math.ceil(low * metrics.segment_s - 1e-9):
        # Welch bins sit at multiples of 1 / segment_s: a band between two bins is empty.
        problems.append(
            (
                "metrics.band_hz",
                f"[{low:g}, {high:g}] Hz holds no frequency of the spectrum, whose bins are "
                f"{1 / metrics.segment_s:g} Hz apart (metrics.segment_s = "
                f"{metrics.segment_s:g} s): "
                "the band power would be NaN; widen the band or lengthen metrics.segment_s",
            )
        )
    return problems


def available_memory_bytes() -> int | None:
    """Memory available to a new run, bytes (``MemAvailable`` on Linux), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None


def format_bytes(n: float) -> str:
    """``n`` bytes in the largest binary unit that keeps the number at or above 1."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} TiB"  # pragma: no cover - the loop always returns


def memory_problem(
    cfg: Any,
    sample_s: float,
    model_bytes_per_instance: Callable[[], int] | None = None,
    available: int | None = None,
) -> tuple[str, str] | None:
    """The ``n_instances`` problem when a run would need more memory than is available.

    The estimate counts, per instance, the buffers of one recorded chunk (the
    signal and its sensed copy at the sensing rate, the per-period rows, the
    unstimulated baseline's signal at the integration step), the streaming
    spectra and, for batches of 64 instances or more, the model's own state
    (twice with a baseline), measured on a one-instance copy.

    Parameters
    ----------
    cfg : ExperimentConfig
        The parsed experiment.
    sample_s : float
        The sensing interval, s.
    model_bytes_per_instance : callable, optional
        Returns the bytes of one instance's model state; called only for
        large batches.
    available : int, optional
        Bytes available; by default :func:`available_memory_bytes`.
    """
    n = cfg.n_instances
    chunk_s = min(cfg.output.chunk_s, cfg.duration_s)
    samples = chunk_s / sample_s
    periods = chunk_s / cfg.control.period_s
    per_instance = 8.0 * (3 * samples + 16 * periods)  # lfp, sensed, its copy; period rows
    baseline = cfg.output.record_baseline
    if baseline:
        per_instance += 8.0 * (chunk_s / cfg.model.dt_s + 2 * samples)
    segment = cfg.metrics.segment_s / sample_s
    per_instance += 8.0 * (2 if baseline else 1) * 2.5 * segment
    if model_bytes_per_instance is not None and n >= _PROBE_MIN_INSTANCES:
        per_instance += (2 if baseline else 1) * model_bytes_per_instance()
    need = n * per_instance
    if available is None:
        available = available_memory_bytes()
    if available is None or (np.isfinite(need) and need <= _MEMORY_SHARE * available):
        return None
    return (
        "n_instances",
        f"{n} instances need about {format_bytes(need)} of memory "
        f"({format_bytes(per_instance)} each, with output.chunk_s = {cfg.output.chunk_s:g} s), "
        f"more than the {format_bytes(available)} available on this machine; use fewer "
        "instances (or split them into a sweep's replicates) or a shorter output.chunk_s",
    )


def model_bytes_per_instance(cls: type, cfg: Any) -> int:
    """Bytes of one instance's model state, measured on a one-instance copy (0 if it fails).

    Per-instance parameter lists are cut to their first value for the copy.
    """
    params = {k: (v[0] if isinstance(v, list) and v else v) for k, v in cfg.model.params.items()}
    try:
        probe = cls(dt_s=cfg.model.dt_s, n=1, params=params, regime=cfg.model.regime)
        probe.reset(0)
        state = probe.kernel_state()
    except Exception:  # the real build reports what is wrong
        return 0
    return int(sum(getattr(a, "nbytes", 0) for a in state))
