"""The no-stimulation copy of a closed loop, run beside it chunk by chunk.

A run's baseline is the same model with the same noise (model and sensor
seeds) and no stimulation, sensed through the same chain: the reference of
the band-power and burst metrics. :class:`UnstimulatedCopy` runs it through
the model's own compiled period kernel with an open-loop controller at
0 mA, so that one compiled call per block samples the signal, runs the
sensing chain and keeps the biomarker at the end of every period, as the
stimulated loop does; no integration step is handed back to Python.

The copy starts from the stimulated loop's warmed-up state (the warm-up is
open loop and unstimulated, so both would reach the same state) instead of
simulating the warm-up a second time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from closedloop.controllers.open_loop import OpenLoop
from closedloop.core.loop import ClosedLoop

__all__ = ["BASELINE_BLOCK_BYTES", "UnstimulatedCopy"]

#: Most bytes of sampled signal a block of the copy produces at once, so that
#: memory stays flat in ``output.chunk_s`` (the run is chunk invariant).
BASELINE_BLOCK_BYTES = 8 * 1024 * 1024


class UnstimulatedCopy:
    """A loop's model, sensing chain and seeds, run with the stimulator at 0 mA.

    Parameters
    ----------
    loop : ClosedLoop
        The stimulated loop (or a wrapper exposing its ``sensing``,
        ``device``, ``seeds`` and clocks).
    model : NumbaModel
        A fresh model like the loop's (``loop.model.like()``, made before the
        loop's ``reset``, so it carries the configured parameters).
    """

    def __init__(self, loop: Any, model: Any) -> None:
        self.source = loop
        self.loop = ClosedLoop(
            model,
            loop.sensing,
            loop.device,
            OpenLoop(amplitude_ma=0.0),
            control_period_s=loop.control_period_s,
            engine="compiled",
        )
        # The same streams as the stimulated loop: model noise and sensor noise.
        self.loop.seeds = loop.seeds
        self._lfp: np.ndarray | None = None
        self._biomarker: np.ndarray | None = None

    @property
    def model(self) -> Any:
        """The unstimulated model."""
        return self.loop.model

    def start(self) -> None:
        """Reset the copy to the stimulated loop's state (call after its warm-up)."""
        self.loop.reset()
        src, dst = self.source.model, self.loop.model
        # In place: the copy's kernels hold these arrays.
        for key, value in src.state.items():
            dst.state[key][...] = value
        dst.rng_[...] = src.rng_

    def advance(self, n_periods: int) -> tuple[np.ndarray, np.ndarray]:
        """Run ``n_periods`` more control periods.

        Returns
        -------
        lfp : ndarray, shape (n, n_periods * samples_per_period)
            The sampled signal (boxcar mean of each sample's integration steps).
        biomarker : ndarray, shape (n, n_periods)
            The sensed biomarker at the end of every period.
        """
        loop = self.loop
        self._lfp = self._biomarker = None
        duration_s = n_periods * loop.control_period_s
        loop.run(duration_s, chunk_s=duration_s, on_chunk=self._keep)  # one chunk: one call
        lfp, biomarker = self._lfp, self._biomarker
        if lfp is None or biomarker is None:
            raise ValueError(f"advance() needs n_periods >= 1, got {n_periods}")
        return lfp, biomarker

    def blocks(self, n_periods: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """:meth:`advance` over ``n_periods`` in blocks of at most :data:`BASELINE_BLOCK_BYTES`.

        Yields ``(first_period, lfp, biomarker)`` per block.
        """
        per_block = max(1, BASELINE_BLOCK_BYTES // (8 * self.loop.n * self.loop.samples_per_period))
        for k in range(0, n_periods, per_block):
            yield (k, *self.advance(min(per_block, n_periods - k)))

    def _keep(self, t0: float, data: dict[str, np.ndarray]) -> None:
        self._lfp, self._biomarker = data["lfp"], data["biomarker"]
