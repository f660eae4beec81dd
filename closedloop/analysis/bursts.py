"""Bursts of a band envelope: detection (offline and causal), statistics, metrics.

A burst is an excursion of a band envelope above a threshold that lasts at
least a minimum duration. Following Tinkhauser et al. (2017a, b) the
threshold is a percentile (75th by default) of the envelope *without
stimulation* (the run's no-stimulation baseline, same seed), and the minimum
duration is 100 ms; bursts longer than ``long_burst_s`` (400 ms by default)
are the "long" bursts that track rigidity and bradykinesia and that adaptive
DBS shortens. Nothing here is specific to beta: any band envelope at any rate
will do, in its own units.

- :func:`offline_envelope`: zero-phase band-pass and Hilbert amplitude of a
  whole recording (offline only: it sees the future).
- :func:`detect_bursts`: bursts of an envelope seen whole (offline); a burst
  still under way at the end is closed there.
- :class:`CausalBurstDetector`: the same bursts found sample by sample, as a
  device could: a burst is declared once it has lasted the minimum duration;
  feeding the envelope in chunks gives the bursts of feeding it whole.
- :func:`burst_statistics`, :func:`burst_metrics`: per-instance statistics and
  the run metrics of :data:`BURST_METRIC_INFO`; :func:`duration_histogram`.

References
----------
Tinkhauser G et al. (2017a) The modulatory effect of adaptive deep brain
stimulation on beta bursts in Parkinson's disease. Brain 140:1053-1067.
Tinkhauser G et al. (2017b) Beta burst dynamics in Parkinson's disease OFF and
ON dopaminergic medication. Brain 140:2968-2981.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "BURST_METRIC_INFO",
    "DURATION_EDGES_S",
    "BurstSettings",
    "Bursts",
    "CausalBurstDetector",
    "burst_metrics",
    "burst_statistics",
    "burst_threshold",
    "detect_bursts",
    "duration_histogram",
    "offline_envelope",
]

#: Edges of the burst-duration histogram, s: 100 ms bins from 0.1 to 1 s,
#: then everything longer (Tinkhauser et al. 2017b bin durations this way).
DURATION_EDGES_S = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, np.inf])

#: Burst metric name to (units, description); ``{u}`` is the envelope's units.
BURST_METRIC_INFO: dict[str, tuple[str, str]] = {
    "burst_threshold": ("{u}", "burst threshold: a percentile of the no-stimulation envelope"),
    "burst_rate_hz": ("Hz", "bursts per second with stimulation"),
    "burst_rate_hz_baseline": ("Hz", "bursts per second without stimulation"),
    "mean_burst_duration_s": ("s", "mean burst duration with stimulation"),
    "mean_burst_duration_s_baseline": ("s", "mean burst duration without stimulation"),
    "mean_burst_amplitude": ("{u}", "mean envelope inside bursts with stimulation"),
    "mean_burst_amplitude_baseline": ("{u}", "mean envelope inside bursts without stimulation"),
    "long_burst_rate_per_min": ("1/min", "long bursts per minute with stimulation"),
    "long_burst_rate_per_min_baseline": ("1/min", "long bursts per minute without stimulation"),
    "long_burst_time_fraction": ("1", "fraction of time in long bursts with stimulation"),
    "long_burst_time_fraction_baseline": ("1", "fraction of time in long bursts without"),
    "long_burst_time_reduction": (
        "1",
        "1 - long-burst time with / without stimulation (1: all removed; < 0: more)",
    ),
}


@dataclass(frozen=True)
class BurstSettings:
    """How bursts are defined.

    Parameters
    ----------
    percentile : float
        Threshold percentile of the no-stimulation envelope (Tinkhauser et al.
        2017a, b: 75).
    min_duration_s : float
        Shortest burst, s (Tinkhauser et al.: 0.1).
    long_burst_s : float
        A burst at least this long is "long", s (0.4, chosen here: the
        duration beyond which Tinkhauser et al. 2017b found bursts more
        frequent OFF than ON medication).
    """

    percentile: float = 75.0
    min_duration_s: float = 0.1
    long_burst_s: float = 0.4

    def __post_init__(self) -> None:
        if not 0.0 < self.percentile < 100.0:
            raise ValueError(f"percentile must lie in (0, 100), got {self.percentile}")
        if not self.min_duration_s >= 0.0:
            raise ValueError(f"min_duration_s must be >= 0 s, got {self.min_duration_s}")
        if not self.long_burst_s >= self.min_duration_s:
            raise ValueError(
                f"long_burst_s ({self.long_burst_s} s) must be >= min_duration_s "
                f"({self.min_duration_s} s)"
            )


@dataclass(frozen=True)
class Bursts:
    """The bursts of one instance: arrays of equal length, one entry per burst.

    Attributes
    ----------
    start_s : ndarray
        Onset (first sample above threshold), s from the first sample.
    duration_s : ndarray
        Duration, s (samples above threshold / rate).
    amplitude : ndarray
        Mean envelope inside the burst, envelope units.
    """

    start_s: np.ndarray
    duration_s: np.ndarray
    amplitude: np.ndarray


def offline_envelope(
    x: np.ndarray, rate_hz: float, band_hz: tuple[float, float], order: int = 4
) -> np.ndarray:
    """Zero-phase Butterworth band-pass and Hilbert amplitude, along the last axis.

    Offline only: both steps use the whole recording, future included.
    """
    from scipy import signal as _signal  # on use: it imports scipy.stats (~0.7 s)

    sos = _signal.butter(order, band_hz, btype="bandpass", fs=rate_hz, output="sos")
    x = np.asarray(x, dtype=float)
    filtered = _signal.sosfiltfilt(sos, x - x.mean(axis=-1, keepdims=True), axis=-1)
    return np.abs(_signal.hilbert(filtered, axis=-1))


def burst_threshold(baseline_envelope: np.ndarray, percentile: float = 75.0) -> np.ndarray:
    """Per-instance threshold: ``percentile`` of the envelope along the last axis."""
    return np.percentile(np.atleast_2d(baseline_envelope), percentile, axis=-1)


def detect_bursts(
    envelope: np.ndarray, rate_hz: float, threshold: float | np.ndarray, min_duration_s: float
) -> list[Bursts]:
    """Bursts of an envelope seen whole, one :class:`Bursts` per instance.

    Parameters
    ----------
    envelope : ndarray, shape (n, m) or (m,)
        Band envelope sampled at ``rate_hz``.
    rate_hz : float
        Sample rate, Hz.
    threshold : float or ndarray, shape (n,)
        Envelope units; a sample strictly above it is in a burst.
    min_duration_s : float
        Shorter excursions are not bursts, s.
    """
    env = np.atleast_2d(np.asarray(envelope, dtype=float))
    thr = np.broadcast_to(np.asarray(threshold, dtype=float), (env.shape[0],))
    min_samples = _min_samples(min_duration_s, rate_hz)
    # Every row at once (a loop over 4,096 rows cost a second): the edges of
    # the excursions of the padded rows, in row-major order, so that onsets
    # and ends pair up within each row.
    n, m = env.shape
    above = np.zeros((n, m + 2), dtype=np.int8)
    above[:, 1:-1] = env > thr[:, None]
    edges = np.diff(above, axis=1)
    row, on = np.nonzero(edges == 1)
    off = np.nonzero(edges == -1)[1]
    keep = off - on >= min_samples
    row, on, off = row[keep], on[keep], off[keep]
    csum = np.zeros((n, m + 1))
    np.cumsum(env, axis=1, out=csum[:, 1:])
    n_samp = off - on
    amp = (csum[row, off] - csum[row, on]) / np.maximum(n_samp, 1)
    start_s, duration_s = on / rate_hz, n_samp / rate_hz
    bounds = np.searchsorted(row, np.arange(n + 1)).tolist()
    return [
        Bursts(start_s[a:b], duration_s[a:b], amp[a:b])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def _min_samples(min_duration_s: float, rate_hz: float) -> int:
    # A tolerance so that 0.1 s at 50 Hz is 5 samples, not 6 by rounding error.
    return max(1, int(np.ceil(min_duration_s * rate_hz - 1e-9)))


class CausalBurstDetector:
    """Bursts found sample by sample, with no look-ahead.

    A burst is *declared* at the sample where it reaches the minimum duration
    (``in_burst`` is True from then until it ends); its duration and amplitude
    are known when it ends. Chunked feeding equals feeding whole.

    Parameters
    ----------
    n : int
        Batch size.
    rate_hz : float
        Envelope sample rate, Hz.
    threshold : float or ndarray, shape (n,)
        Envelope units.
    min_duration_s : float
        Shortest burst, s.
    """

    def __init__(
        self, n: int, rate_hz: float, threshold: float | np.ndarray, min_duration_s: float
    ) -> None:
        self.n = int(n)
        self.rate_hz = float(rate_hz)
        self.threshold = np.broadcast_to(np.asarray(threshold, dtype=float), (self.n,)).copy()
        self.min_samples = _min_samples(min_duration_s, rate_hz)
        self._run = np.zeros(self.n, dtype=np.int64)  # samples above threshold so far
        self._sum = np.zeros(self.n)  # envelope summed over the current excursion
        self._seen = 0
        self._done: list[list[tuple[float, float, float]]] = [[] for _ in range(self.n)]

    def feed(self, envelope: np.ndarray) -> np.ndarray:
        """Process samples, shape ``(n, m)``; return ``in_burst``, shape ``(n, m)``."""
        env = np.atleast_2d(np.asarray(envelope, dtype=float))
        in_burst = np.zeros(env.shape, dtype=bool)
        for i in range(self.n):
            run, acc, row, thr = int(self._run[i]), float(self._sum[i]), env[i], self.threshold[i]
            for j in range(row.shape[0]):
                if row[j] > thr:
                    run += 1
                    acc += row[j]
                    in_burst[i, j] = run >= self.min_samples
                else:
                    self._close(i, run, acc, self._seen + j)
                    run, acc = 0, 0.0
            self._run[i], self._sum[i] = run, acc
        self._seen += env.shape[1]
        return in_burst

    def _close(self, i: int, run: int, acc: float, end_sample: int) -> None:
        if run >= self.min_samples:
            self._done[i].append(((end_sample - run) / self.rate_hz, run / self.rate_hz, acc / run))

    def finish(self) -> list[Bursts]:
        """Close the bursts under way and return every burst, one :class:`Bursts` each."""
        for i in range(self.n):
            self._close(i, int(self._run[i]), float(self._sum[i]), self._seen)
            self._run[i], self._sum[i] = 0, 0.0
        out = []
        for found in self._done:
            a = np.array(found, dtype=float).reshape(-1, 3)
            out.append(Bursts(a[:, 0], a[:, 1], a[:, 2]))
        return out


def duration_histogram(bursts: list[Bursts], edges_s: np.ndarray = DURATION_EDGES_S) -> np.ndarray:
    """Burst counts per duration bin, shape ``(n, len(edges_s) - 1)``."""
    # np.histogram's bins, for every instance at once: [edge_i, edge_i+1), the last closed.
    edges_s = np.asarray(edges_s, dtype=float)
    bins = edges_s.size - 1
    d = np.concatenate([b.duration_s for b in bursts]) if bursts else np.empty(0)
    row = np.repeat(np.arange(len(bursts)), [b.duration_s.size for b in bursts])
    idx = np.searchsorted(edges_s, d, side="right") - 1
    idx[d == edges_s[-1]] = bins - 1
    ok = (idx >= 0) & (idx < bins)
    counts = np.bincount(row[ok] * bins + idx[ok], minlength=len(bursts) * bins)
    return counts.reshape(len(bursts), bins).astype(np.int64)


def burst_statistics(bursts: list[Bursts], duration_s: float, long_burst_s: float) -> dict:
    """Rate, mean duration and amplitude, long-burst rate and time, per instance.

    Returns
    -------
    dict of ndarray, shape (n,)
        ``rate_hz``, ``mean_duration_s`` and ``mean_amplitude`` (NaN without
        bursts), ``long_rate_per_min``, ``long_time_fraction``.
    """

    def mean(a: np.ndarray) -> float:
        return float(a.mean()) if a.size else float("nan")

    long = [b.duration_s[b.duration_s >= long_burst_s - 1e-12] for b in bursts]
    return {
        "rate_hz": np.array([b.duration_s.size / duration_s for b in bursts]),
        "mean_duration_s": np.array([mean(b.duration_s) for b in bursts]),
        "mean_amplitude": np.array([mean(b.amplitude) for b in bursts]),
        "long_rate_per_min": np.array([x.size / duration_s * 60.0 for x in long]),
        "long_time_fraction": np.array([x.sum() / duration_s for x in long]),
    }


def burst_metrics(
    envelope: np.ndarray,
    baseline_envelope: np.ndarray,
    rate_hz: float,
    settings: BurstSettings = BurstSettings(),
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The :data:`BURST_METRIC_INFO` metrics of a run, and its duration histograms.

    Parameters
    ----------
    envelope, baseline_envelope : ndarray, shape (n, m)
        The sensed band envelope with stimulation and without (same seed),
        sampled at ``rate_hz``, transient already left out.
    rate_hz : float
        Sample rate, Hz.
    settings : BurstSettings
        Threshold percentile, minimum and long durations.

    Returns
    -------
    metrics : dict of ndarray, shape (n,)
    histograms : dict
        ``duration_edges_s`` and the counts ``duration_counts`` and
        ``duration_counts_baseline``, shape ``(n, bins)``.
    """
    env = np.atleast_2d(np.asarray(envelope, dtype=float))
    base = np.atleast_2d(np.asarray(baseline_envelope, dtype=float))
    thr = burst_threshold(base, settings.percentile)
    found = detect_bursts(env, rate_hz, thr, settings.min_duration_s)
    found_base = detect_bursts(base, rate_hz, thr, settings.min_duration_s)
    stim = burst_statistics(found, env.shape[1] / rate_hz, settings.long_burst_s)
    none = burst_statistics(found_base, base.shape[1] / rate_hz, settings.long_burst_s)
    out = {"burst_threshold": thr}
    for key, name in (
        ("rate_hz", "burst_rate_hz"),
        ("mean_duration_s", "mean_burst_duration_s"),
        ("mean_amplitude", "mean_burst_amplitude"),
        ("long_rate_per_min", "long_burst_rate_per_min"),
        ("long_time_fraction", "long_burst_time_fraction"),
    ):
        out[name] = stim[key]
        out[f"{name}_baseline"] = none[key]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["long_burst_time_reduction"] = np.where(
            none["long_time_fraction"] > 0,
            1.0 - stim["long_time_fraction"] / none["long_time_fraction"],
            np.nan,
        )
    hist = {
        "duration_edges_s": DURATION_EDGES_S,
        "duration_counts": duration_histogram(found),
        "duration_counts_baseline": duration_histogram(found_base),
    }
    return out, hist
