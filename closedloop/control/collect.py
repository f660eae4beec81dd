"""Identification data from any model, through the loop (sensing chain and device included).

:func:`collect` drives a :class:`~closedloop.core.loop.ClosedLoop` one
control period at a time with an excitation design
(:mod:`closedloop.control.excitation`) and keeps, per period, the command
issued and the features sensed: the data a clinician's system would have,
not the model's hidden state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from closedloop.control.excitation import check_levels
from closedloop.core.loop import ClosedLoop

__all__ = ["IdData", "collect"]


@dataclass(frozen=True)
class IdData:
    """Input-output records for identification, one trial per instance.

    Attributes
    ----------
    u : ndarray, shape (trials, T, m)
        The command issued at the end of period ``k`` (takes effect after it).
    y : ndarray, shape (trials, T, p)
        The features sensed at the end of period ``k`` (before ``u[k]``).
    inputs, outputs : tuple of str
        Command keys and feature names, the columns of ``u`` and ``y``.
    period_s : float
        Control period, s.
    """

    u: np.ndarray
    y: np.ndarray
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    period_s: float

    def split(self, fraction: float) -> tuple[IdData, IdData]:
        """The first ``fraction`` of every trial, and the rest (held out)."""
        cut = int(round(self.u.shape[1] * fraction))
        if not 0 < cut < self.u.shape[1]:
            raise ValueError(f"fraction {fraction} leaves nothing on one side of the split")
        first = IdData(self.u[:, :cut], self.y[:, :cut], self.inputs, self.outputs, self.period_s)
        rest = IdData(self.u[:, cut:], self.y[:, cut:], self.inputs, self.outputs, self.period_s)
        return first, rest


def collect(
    loop: ClosedLoop,
    design: Mapping[str, np.ndarray],
    *,
    outputs: Sequence[str] = ("biomarker",),
    fixed: Mapping[str, float] | None = None,
    warmup_s: float = 0.5,
    discard_periods: int = 0,
) -> IdData:
    """Run ``loop`` under an excitation design and keep commands and features.

    Parameters
    ----------
    loop : ClosedLoop
        The loop (its controller is not used); it is reset here.
    design : mapping of str to ndarray
        Command key to settings per instance and period, shape ``(n, T)``.
    outputs : sequence of str
        Features to keep (``biomarker`` and names of ``sensing.features``).
    fixed : mapping of str to float, optional
        Settings held constant (e.g. ``frequency_hz``, ``pulse_width_us``).
    warmup_s : float
        Open-loop settling before the first period, s.
    discard_periods : int
        Leading periods left out of the data (the response to switching on).

    Returns
    -------
    IdData

    Raises
    ------
    ValueError
        When a design's shape is not ``(n, T)``, or it asks for settings the
        device would not deliver (:func:`~closedloop.control.excitation.check_levels`).
    """
    n = loop.n
    fixed = dict(fixed or {})
    keys = tuple(design)
    arrays = [np.asarray(design[k], dtype=float) for k in keys]
    if not arrays:
        raise ValueError("design is empty: give at least one command key")
    n_periods = arrays[0].shape[-1]
    for key, arr in zip(keys, arrays, strict=True):
        if arr.shape != (n, n_periods):
            raise ValueError(f"design[{key!r}] has shape {arr.shape}, expected {(n, n_periods)}")
        width = fixed.get("pulse_width_us", loop.device.initial_pulse_width_us)
        check_levels(loop.device, key, arr, pulse_width_us=width)
    loop.reset()
    loop.warm_up(warmup_s)
    features = loop.step(None)
    u = np.empty((n, n_periods, len(keys)))
    y = np.empty((n, n_periods, len(outputs)))
    for k in range(n_periods):
        for j, name in enumerate(outputs):
            y[:, k, j] = features[name]
        command = {key: np.full(n, value) for key, value in fixed.items()}
        for j, (key, arr) in enumerate(zip(keys, arrays, strict=True)):
            command[key] = np.ascontiguousarray(arr[:, k])
            u[:, k, j] = arr[:, k]
        features = loop.step(command)
    d = int(discard_periods)
    return IdData(u[:, d:], y[:, d:], keys, tuple(outputs), loop.control_period_s)
