"""Per-instance series held outside memory while a run goes, read back by rows.

Some run metrics need a whole series per instance at the end (the burst
threshold is a percentile of the whole no-stimulation envelope). Kept in
lists, such a series grows with the run (3.3 MB per simulated second for two
series at 50 Hz over 4,096 instances). :class:`RowSpool` keeps at most a
small buffer in memory and writes the rest to an anonymous temporary file
(deleted when closed, or by the system if the process dies), then hands the
series back a few rows at a time, so that what is held stays flat in run
length.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO

import numpy as np

__all__ = ["SPOOL_BUFFER_BYTES", "RowSpool"]

#: Bytes buffered in memory before a block goes to the file, and the most
#: bytes :meth:`RowSpool.row_blocks` reads at once.
SPOOL_BUFFER_BYTES = 4 * 1024 * 1024


class RowSpool:
    """Columns of ``n`` rows appended over a run, read back a block of rows at a time.

    Parameters
    ----------
    n : int
        Rows (instances).
    in_memory : bool
        Keep everything in memory (nothing touches the disk).
    buffer_bytes : int, optional
        Bytes buffered before a block is written out, and the most read back
        at once (default :data:`SPOOL_BUFFER_BYTES`).

    Notes
    -----
    The file holds the series as blocks of whole columns, each block stored
    row-major: ``rows(a, b)`` then reads one contiguous piece per block.
    """

    def __init__(self, n: int, *, in_memory: bool = False, buffer_bytes: int | None = None) -> None:
        self.n = int(n)
        self.buffer_bytes = int(SPOOL_BUFFER_BYTES if buffer_bytes is None else buffer_bytes)
        self._pending: list[np.ndarray] = []
        self._pending_cols = 0
        self._kept: list[np.ndarray] = []  # the blocks, when in memory
        self._blocks: list[tuple[int, int]] = []  # (byte offset, columns) of each block on file
        self._file: IO[bytes] | None = None if in_memory else tempfile.TemporaryFile()
        self.columns = 0

    def append(self, values: np.ndarray) -> None:
        """Append columns, shape ``(n, k)`` (copied)."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] != self.n:
            raise ValueError(f"expected shape ({self.n}, k), got {values.shape}")
        self._pending.append(values.copy())
        self._pending_cols += values.shape[1]
        self.columns += values.shape[1]
        if self._pending_cols * self.n * 8 >= self.buffer_bytes:
            self._flush()

    def _flush(self) -> None:
        if not self._pending_cols:
            return
        block = np.ascontiguousarray(np.concatenate(self._pending, axis=1))
        self._pending, self._pending_cols = [], 0
        if self._file is None:
            self._kept.append(block)
            return
        self._file.seek(0, 2)
        self._blocks.append((self._file.tell(), block.shape[1]))
        block.tofile(self._file)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Every column of rows ``start:stop``, shape ``(stop - start, columns)``."""
        self._flush()
        if self._file is None:
            if not self._kept:
                return np.empty((stop - start, 0))
            return np.concatenate([b[start:stop] for b in self._kept], axis=1)
        out = np.empty((stop - start, self.columns))
        col = 0
        for offset, k in self._blocks:
            self._file.seek(offset + start * k * 8)
            piece = np.fromfile(self._file, dtype=np.float64, count=(stop - start) * k)
            out[:, col : col + k] = piece.reshape(stop - start, k)
            col += k
        return out

    def row_blocks(self, start: int, stop: int) -> Iterator[tuple[int, int]]:
        """Row ranges covering ``start:stop``, each small enough to read at once."""
        step = max(1, self.buffer_bytes // (8 * max(self.columns, 1)))
        for a in range(start, stop, step):
            yield a, min(stop, a + step)

    def close(self) -> None:
        """Drop what is held (the file is deleted)."""
        if self._file is not None:
            self._file.close()
        self._pending, self._kept, self._blocks = [], [], []
