"""How a run file stores its time series: chunk shape, chunk cache, compression.

Time series grow along time in appended blocks, so they are chunked; a chunk
holds about 64 KiB, at least 256 samples along time. ``output.compression``
chooses the HDF5 filter (:func:`compression_filter`). The default, ``auto``,
is lzf for every series but those on the sensing clock: measured side by side
on the default experiment at 4,096 instances (README, performance:
``benchmarks/bench_recording.py``), lzf shrank the noisy float64 sensed
signals by only a quarter and made the recorded run 1.5 times slower, while
the stimulation series (piecewise constant) shrink many times at no
measurable cost.
"""

from __future__ import annotations

from typing import Any

__all__ = ["COMPRESSIONS", "chunk_layout", "compression_filter"]

#: Values of ``output.compression``.
COMPRESSIONS = ("auto", "none", "lzf", "gzip", *(f"gzip-{k}" for k in range(1, 10)))
#: Target size of one chunk of a time series, in bytes.
CHUNK_BYTES = 64 * 1024
#: Fewest samples along time in one chunk (when many instances share a chunk row).
MIN_CHUNK_SAMPLES = 256
#: Bounds of the per-dataset HDF5 chunk cache, in bytes.
MIN_CACHE_BYTES = 1024 * 1024
MAX_CACHE_BYTES = 64 * 1024 * 1024


def compression_filter(name: str, *, sensed: bool = False) -> dict[str, Any]:
    """h5py ``create_dataset`` keywords of an ``output.compression`` value.

    ``"gzip"`` is gzip at level 4 (h5py's default), ``"gzip-k"`` at level k;
    lzf and gzip run after the byte shuffle, which groups the similar high
    bytes of neighbouring floats. ``"auto"`` is lzf, or no filter for a
    series on the sensing clock (``sensed``).

    Raises
    ------
    ValueError
        For a name not in :data:`COMPRESSIONS`.
    """
    if name not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}; got {name!r}")
    if name == "auto":
        name = "none" if sensed else "lzf"
    if name == "none":
        return {}
    if name == "lzf":
        return {"compression": "lzf", "shuffle": True}
    level = int(name.partition("-")[2] or 4)
    return {"compression": "gzip", "compression_opts": level, "shuffle": True}


def chunk_layout(n: int, itemsize: int, chunk_samples: int | None = None) -> dict[str, Any]:
    """Chunk shape and chunk cache of an ``(n, T)`` time series.

    Parameters
    ----------
    n : int
        Instances (rows).
    itemsize : int
        Bytes per value.
    chunk_samples : int, optional
        Samples along time per chunk; by default about 64 KiB per chunk and
        at least 256 samples.

    Returns
    -------
    dict
        ``chunks``, ``rdcc_nbytes`` and ``rdcc_nslots`` for h5py.
    """
    if chunk_samples is None:
        samples = max(MIN_CHUNK_SAMPLES, CHUNK_BYTES // (n * itemsize))
        samples = min(samples, max(1, CHUNK_BYTES // itemsize))
    else:
        samples = int(chunk_samples)
        if samples < 1:
            raise ValueError(f"chunk_samples must be at least 1, got {chunk_samples!r}")
    rows = min(n, max(1, CHUNK_BYTES // (samples * itemsize)))
    # The cache must hold one time-column of chunks (all instances), else
    # every append re-reads and re-writes partly filled chunks; one column
    # (plus a chunk) is enough, as appends run along time: the last, partly
    # filled column is the one the next append continues.
    column_bytes = n * samples * itemsize
    chunk_bytes = rows * samples * itemsize
    cache_bytes = int(min(MAX_CACHE_BYTES, max(MIN_CACHE_BYTES, column_bytes + chunk_bytes)))
    chunks_in_cache = max(1, cache_bytes // chunk_bytes)
    return {
        "chunks": (rows, samples),
        "rdcc_nbytes": cache_bytes,
        "rdcc_nslots": max(521, 100 * chunks_in_cache + 1),
    }
