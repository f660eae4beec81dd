"""Streaming spectra and the per-instance metrics of a closed-loop run.

Spectra are Welch estimates (Hann window, 50 % overlap, constant detrend,
one-sided power spectral density) accumulated segment by segment while the
run goes, so memory does not grow with run length. On a signal whose length
is a whole number of hops they equal :func:`scipy.signal.welch`.

Metrics (each an array over instances):

``band_power_stim``, ``band_power_baseline``
    Power in ``metrics.band_hz`` (integral of the PSD over the band, in the
    model's signal units squared, e.g. ``(spikes/s)^2``) of the model's
    signal with stimulation and in the no-stimulation baseline run with the
    same seed. "Band", not "beta": the band is configurable.
``band_power_reduction``
    ``1 - band_power_stim / band_power_baseline`` (1 = all band power
    removed, 0 = none, negative = more than without stimulation).
``teed_j``, ``teed_relative``
    Total electrical energy delivered (J), and its ratio to continuous
    stimulation at the reference settings over the same time.
``time_on_fraction``
    Fraction of time stimulation was delivered (a continuous train above zero
    amplitude, or a pulse of a burst under way).
``n_switches``, ``n_deliveries``
    On/off transitions of a continuous stimulation train after its first
    turn-on (continuous DBS: 0; on, off, on again: 2), and bursts or single
    pulses commanded (responsive, phase-locked stimulation), which are
    deliveries, not switches.
``mean_amplitude_ma``
    Mean delivered amplitude, mA (sampled at the control rate).
``charge_uc``, ``n_rejected_commands``
    Total cathodic charge delivered (uC); command values the device ignored
    for being NaN or infinite.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "METRIC_INFO",
    "MIN_PSD_SAMPLES",
    "TRIGGER_METRIC_INFO",
    "StreamingPSD",
    "band_power",
    "metric_units",
    "summarize",
    "trigger_metrics",
]

#: Metric name to (units, description); ``{u}`` stands for the model's signal units.
METRIC_INFO: dict[str, tuple[str, str]] = {
    "band_power_stim": ("({u})^2", "power in metrics.band_hz of the signal with stimulation"),
    "band_power_baseline": ("({u})^2", "band power without stimulation, same seed"),
    "band_power_reduction": ("1", "1 - band_power_stim / band_power_baseline"),
    "teed_j": ("J", "total electrical energy delivered"),
    "teed_relative": ("1", "TEED over that of continuous stimulation at the reference"),
    "time_on_fraction": ("1", "fraction of time stimulation was delivered"),
    "n_switches": ("1", "on/off transitions of a continuous train after its first turn-on"),
    "n_deliveries": ("1", "bursts and single pulses commanded (not switches)"),
    "mean_amplitude_ma": ("mA", "mean delivered amplitude"),
    "charge_uc": ("uC", "total cathodic charge delivered"),
    "n_rejected_commands": ("1", "command values ignored for being NaN or infinite"),
}

#: Metrics of runs that log triggers (:func:`trigger_metrics`): name to (units, description).
TRIGGER_METRIC_INFO: dict[str, tuple[str, str]] = {
    "n_triggers_delivered": ("1", "bursts the device accepted and delivered"),
    "n_triggers_rejected": ("1", "bursts the device refused (lock-out or a daily cap)"),
    "triggers_per_day": ("1/day", "bursts delivered per day of the simulated clock (mean)"),
    "charge_uc_per_day": ("uC/day", "cathodic charge delivered per simulated day (mean)"),
    "pulses_withheld": ("1", "pulses the device withheld for a daily charge or on-time cap"),
}


#: Fewest samples a spectrum is estimated from (also the shortest segment).
MIN_PSD_SAMPLES = 8


def _hann_window(m: int) -> np.ndarray:
    # scipy.signal.get_window("hann", m) (periodic, the DFT-even Hann), written
    # out so that metrics need not import scipy.signal (~0.7 s with scipy.stats)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(m) / m)


#: Most bytes of a segment's spectrum computed at once by :class:`StreamingPSD`.
_SEGMENT_BLOCK_BYTES = 4 * 1024 * 1024


class StreamingPSD:
    """Welch power spectral density accumulated chunk by chunk.

    Parameters
    ----------
    n : int
        Batch size.
    fs_hz : float
        Sample rate, Hz.
    segment_s : float
        Segment length, s (frequency resolution ``1 / segment_s`` Hz).
    """

    def __init__(self, n: int, fs_hz: float, segment_s: float = 1.0) -> None:
        self.fs_hz = float(fs_hz)
        self.nperseg = max(MIN_PSD_SAMPLES, int(round(segment_s * fs_hz)))
        self.hop = self.nperseg - self.nperseg // 2  # scipy's noverlap = nperseg // 2
        self.window = _hann_window(self.nperseg)
        self.scale = 1.0 / (self.fs_hz * np.sum(self.window**2))
        self.frequency_hz = np.fft.rfftfreq(self.nperseg, 1.0 / self.fs_hz)
        # Samples of the segment being filled: a fixed buffer, so feeding short
        # blocks copies each sample in once, never the whole buffer again.
        self._buffer = np.empty((n, self.nperseg))
        self._fill = 0
        self._sum = np.zeros((n, self.frequency_hz.size))
        self.n_segments = 0

    def feed(self, x: np.ndarray) -> None:
        """Add samples, shape ``(n, m)``."""
        pos, m = 0, x.shape[1]
        while pos < m:
            take = min(self.nperseg - self._fill, m - pos)
            self._buffer[:, self._fill : self._fill + take] = x[:, pos : pos + take]
            self._fill += take
            pos += take
            if self._fill == self.nperseg:
                # A few rows at a time: the temporaries of a segment over the
                # whole batch (4,096 x 1,000 samples: ~100 MB) would set the
                # run's peak memory. Every step is row by row: same values.
                rows = max(1, _SEGMENT_BLOCK_BYTES // (16 * self.nperseg))
                for a in range(0, self._buffer.shape[0], rows):
                    buf = self._buffer[a : a + rows]
                    seg = buf - buf.mean(axis=-1, keepdims=True)
                    seg *= self.window
                    spec = np.fft.rfft(seg, axis=-1)
                    self._sum[a : a + rows] += spec.real**2 + spec.imag**2
                self.n_segments += 1
                # Segments overlap by nperseg - hop samples: keep those.
                keep = self.nperseg - self.hop
                self._buffer[:, :keep] = self._buffer[:, self.hop :].copy()
                self._fill = keep

    def psd(self) -> np.ndarray:
        """One-sided PSD, shape ``(n, n_freq)``, signal units squared per Hz."""
        if self.n_segments == 0:
            return self._short_psd()
        out = self._sum / self.n_segments * self.scale
        out[:, 1:] *= 2.0
        if self.nperseg % 2 == 0:
            out[:, -1] /= 2.0
        return out

    def _short_psd(self) -> np.ndarray:
        """The PSD of a recording shorter than one segment: one shorter segment.

        Our choice, not a paper's: rather than NaN, the samples there are
        (at least 8) form one Hann-windowed segment, zero-padded to the
        segment length so the frequency bins stay those of a full segment
        (scipy's ``welch`` instead shrinks the segment and its bins). The
        frequency resolution is that of the shorter segment, ``fs / m``.
        """
        m = self._fill
        if m < MIN_PSD_SAMPLES:
            return np.full_like(self._sum, np.nan)
        window = _hann_window(m)
        buffer = self._buffer[:, :m]
        seg = buffer - buffer.mean(axis=-1, keepdims=True)
        out = np.abs(np.fft.rfft(seg * window, n=self.nperseg, axis=-1)) ** 2
        out *= 1.0 / (self.fs_hz * np.sum(window**2))
        out[:, 1:] *= 2.0
        if self.nperseg % 2 == 0:
            out[:, -1] /= 2.0
        return out


def band_power(
    frequency_hz: np.ndarray, psd: np.ndarray, band_hz: tuple[float, float]
) -> np.ndarray:
    """Integrate a PSD over a band (rectangle rule over the bins inside it).

    Parameters
    ----------
    frequency_hz : ndarray
        Bin frequencies, Hz.
    psd : ndarray, shape (n, n_freq)
        Power spectral density.
    band_hz : tuple of float
        Band edges, Hz, inclusive.

    Returns
    -------
    ndarray, shape (n,)
    """
    sel = (frequency_hz >= band_hz[0]) & (frequency_hz <= band_hz[1])
    return psd[:, sel].sum(axis=1) * (frequency_hz[1] - frequency_hz[0])


def metric_units(name: str, signal_units: str) -> str:
    """Units of metric ``name`` (:data:`METRIC_INFO`) for a model's signal units."""
    return METRIC_INFO[name][0].replace("{u}", signal_units)


def summarize(
    psd_stim: StreamingPSD,
    psd_base: StreamingPSD | None,
    device_totals: dict,
    mean_amplitude_ma: np.ndarray,
    duration_s: float,
    device: Any,
    reference: dict,
    band_hz: tuple[float, float],
) -> dict[str, np.ndarray]:
    """Compute :data:`closedloop.metrics.METRIC_INFO` metrics for a finished run."""
    f = psd_stim.frequency_hz
    stim = band_power(f, psd_stim.psd(), band_hz)
    out = {"band_power_stim": stim}
    if psd_base is not None:
        base = band_power(f, psd_base.psd(), band_hz)
        out["band_power_baseline"] = base
        with np.errstate(divide="ignore", invalid="ignore"):
            out["band_power_reduction"] = 1.0 - stim / base
    teed_ref = device.teed_j(
        reference["amplitude_ma"],
        reference["frequency_hz"],
        reference["pulse_width_us"],
        duration_s,
    )
    out["teed_j"] = device_totals["energy_j"]
    out["teed_relative"] = device_totals["energy_j"] / teed_ref
    out["time_on_fraction"] = device_totals["time_on_s"] / duration_s
    # The device counts the first turn-on too (its count starts from off).
    out["n_switches"] = np.maximum(device_totals["n_train_switches"] - 1.0, 0.0)
    out["n_deliveries"] = device_totals["n_deliveries"]
    out["mean_amplitude_ma"] = mean_amplitude_ma
    out["charge_uc"] = device_totals["charge_uc"]
    out["n_rejected_commands"] = device_totals["n_rejected"]
    return out


def trigger_metrics(
    device_totals: dict, duration_s: float, day_length_s: float
) -> dict[str, np.ndarray]:
    """The trigger metrics of a run (see :data:`TRIGGER_METRIC_INFO`).

    Parameters
    ----------
    device_totals : dict
        :func:`closedloop.device.device_totals` at the end of the run.
    duration_s : float
        Simulated time, s.
    day_length_s : float
        The device's day, s (``device.day_length_s``): per-day values are
        totals over ``duration_s / day_length_s`` days.
    """
    days = duration_s / day_length_s
    return {
        "n_triggers_delivered": device_totals["n_triggers"],
        "n_triggers_rejected": device_totals["n_triggers_rejected"],
        "triggers_per_day": device_totals["n_triggers"] / days,
        "charge_uc_per_day": device_totals["charge_uc"] / days,
        "pulses_withheld": device_totals["pulses_withheld"],
    }
