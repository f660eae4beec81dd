"""The error of explicit time-scale separation, measured against a full simulation.

:func:`separation_error` runs one loop twice over the same slow time, once
fully simulated and once with an :class:`~closedloop.core.slow.EpochSchedule`,
and compares every slow series sample by sample (both record at each
process's ``period_s``, so the samples fall at the same slow times), and the
per-period series (``biomarker``, ``amplitude``) averaged over each epoch
against the full run's average over the same stretch of slow time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from closedloop.core.slow import EpochSchedule

__all__ = ["separation_error", "slow_series"]

_PER_PERIOD = ("biomarker", "amplitude")


def slow_series(loop: Any, duration_s: float, chunk_s: float = 1.0) -> dict[str, np.ndarray]:
    """Reset ``loop``, run it for ``duration_s`` (slow time) and return its slow series.

    Parameters
    ----------
    loop : ClosedLoop
        With slow processes.
    duration_s : float
        Slow time to cover, s.
    chunk_s : float
        Chunk length, s (chunks end on slow steps anyway).

    Returns
    -------
    dict of str to ndarray
        ``<process>_<series>``: ``(n, samples)``, sample ``k`` at ``k * period_s``;
    and the per-period ``biomarker`` and ``amplitude`` (neural time).
    """
    names = [*loop.slow_clock.timeseries(), *_PER_PERIOD]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in names}

    def keep(t0: float, series: dict[str, np.ndarray]) -> None:
        for k in names:
            parts[k].append(series[k])

    loop.reset()
    loop.run(duration_s, on_chunk=keep, chunk_s=chunk_s)
    return {k: np.concatenate(v, axis=1) for k, v in parts.items()}


def separation_error(
    make_loop: Callable[[EpochSchedule | None], Any],
    epochs: EpochSchedule,
    duration_s: float,
) -> dict[str, float]:
    """Largest absolute difference of every slow series, separated against full.

    Parameters
    ----------
    make_loop : callable
        ``make_loop(epochs)`` returns a fresh loop: fully simulated for
        ``None``, with the schedule otherwise (same model, seed and processes).
    epochs : EpochSchedule
        The schedule whose error is measured.
    duration_s : float
        Slow time of both runs, s (a whole number of ``epochs.every_s``).

    Returns
    -------
    dict of str to float
        Series name to ``max |separated - full|`` over instances and samples,
        in the series' units; ``<name>_relative``: the same over the full
        run's largest absolute value (0 when that is 0). For ``biomarker``
        and ``amplitude`` (``epoch_mean_<name>``): the difference of their
        means over each epoch against the full run's means over the same
        slow time.
    """
    loop = make_loop(None)
    period = loop.control_period_s
    full = slow_series(loop, duration_s)
    separated = slow_series(make_loop(epochs), duration_s)
    n_epochs = round(duration_s / epochs.every_s)
    k_epoch = round(epochs.epoch_s / period)
    k_every = round(epochs.every_s / period)
    for key in _PER_PERIOD:
        ref, got = full.pop(key), separated.pop(key)
        n = ref.shape[0]
        full[f"epoch_mean_{key}"] = ref.reshape(n, n_epochs, k_every)[:, :, :k_epoch].mean(axis=2)
        separated[f"epoch_mean_{key}"] = got.reshape(n, n_epochs, k_epoch).mean(axis=2)
    out: dict[str, float] = {}
    for key, ref in full.items():
        got = separated[key]
        if got.shape != ref.shape:
            raise ValueError(f"series {key!r}: {got.shape} samples separated, {ref.shape} full")
        err = float(np.max(np.abs(got - ref))) if ref.size else 0.0
        scale = float(np.max(np.abs(ref))) if ref.size else 0.0
        out[key] = err
        out[f"{key}_relative"] = err / scale if scale > 0 else 0.0
    return out
