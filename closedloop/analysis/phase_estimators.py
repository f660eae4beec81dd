"""Phase estimators compared on a known signal: error versus signal-to-noise ratio.

Three estimators of the phase an oscillation will have when a stimulus
lands, ``latency_s`` after the last sample the estimator saw (each run
exactly as in the loop, through :class:`~closedloop.sensing.chain.SensingChain`):

``echt``
    The causal endpoint-corrected Hilbert transform (feature ``"phase"``,
    :mod:`closedloop.sensing.phase`), extrapolated over the latency at its
    own tracked frequency (the frequency of the phase advance, smoothed with
    a 0.1 s time constant), as :class:`closedloop.controllers.PhaseLocked`
    does with ``lead_s``.
``ar``
    Autoregressive forward prediction (feature ``"phase_ar"``,
    :mod:`closedloop.sensing.phase_ar`, Zrenner et al. 2018), forecasting
    through the latency (``phase_ar_lead_s = latency_s``), the model fitted
    by Burg's method (the default).
``ar_yw``
    The same with the model fitted by Yule-Walker (as Zrenner et al. [R]).
``etp``
    Educated temporal prediction (feature ``"phase_etp"``,
    :mod:`closedloop.sensing.phase_etp`, Shirinpour et al. 2020): the last
    peak of the band-passed signal plus the mean inter-peak interval,
    predicting through the latency (``phase_etp_lead_s = latency_s``).
``oracle``
    "Perfect" phase: the non-causal, zero-phase phase of the *clean* rhythm
    (no background, no sensor noise) at the stimulus time (a zero-phase
    band-pass and the Hilbert transform over the whole record). It is what a
    simulation can know and a device cannot; on the synthetic signal it
    differs from the generating phase only by the band-pass's effect on the
    rhythm's slow amplitude and frequency changes. In a closed-loop run the
    same definition, applied to the recorded noise-free model signal
    (``timeseries/lfp``), scores the other estimators at the delivered pulses.

The known signal (:func:`mu_rhythm`, a choice made here): a mu-like rhythm
``a(t) cos(phi(t))`` whose frequency wanders around 10 Hz (a first-order
random process, 0.5 Hz SD, 1 s time constant) and whose amplitude wanders by
about 30 %, in a 1/f background plus white noise of equal power. The SNR is
the rhythm's power over the background's power *within the sensing band*
(dB), a definition chosen here (Shirinpour et al. 2020 used the alpha peak
over the 1/f fit of the spectrum, which is close to it). The true phase is
``phi``.

The summary of each estimator at each SNR (:func:`phase_error_table`): the
circular mean of the error (estimate minus truth, degrees: the bias), the
circular standard deviation (degrees) and the fraction of samples within
+-``tolerance_deg``.

References
----------
Zrenner C et al. (2018) Brain Stimul 11:374-389.
Shirinpour S et al. (2020) Experimental evaluation of methods for real-time
EEG phase-specific transcranial magnetic stimulation. J Neural Eng 17:046002.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import signal

from closedloop.sensing.chain import SensingChain

__all__ = [
    "ESTIMATORS",
    "circular_summary",
    "estimate_phases",
    "markdown_table",
    "mu_rhythm",
    "oracle_phase",
    "phase_error_table",
    "plot_phase_errors",
]

#: The estimators compared, in table order.
ESTIMATORS = ("oracle", "echt", "ar", "ar_yw", "etp")
#: Time constant of the ecHT's frequency estimate used to extrapolate it, s.
ECHT_FREQUENCY_TAU_S = 0.1


def mu_rhythm(
    duration_s: float,
    rate_hz: float,
    snr_db: float,
    seed: int,
    frequency_hz: float = 10.0,
    band_hz: tuple[float, float] = (8.0, 13.0),
) -> dict[str, np.ndarray]:
    """A mu-like rhythm in 1/f and white noise, with its true phase.

    Parameters
    ----------
    duration_s : float
        Length, s.
    rate_hz : float
        Sampling rate, Hz.
    snr_db : float
        Rhythm power over background power within ``band_hz``, dB.
    seed : int
        Seed of the random streams.
    frequency_hz : float
        Mean frequency of the rhythm, Hz.
    band_hz : tuple of float
        Band over which the SNR is defined, Hz.

    Returns
    -------
    dict
        ``observed`` (rhythm plus background), ``clean`` (the rhythm) and
        ``phase`` (its true phase, rad, 0 at peaks), each of shape (T,).
    """
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * rate_hz))
    dt = 1.0 / rate_hz
    # Frequency and log-amplitude: first-order random processes (1 s).
    decay = math.exp(-dt / 1.0)
    drive = math.sqrt(1.0 - decay * decay)
    f = np.empty(n)
    g = np.empty(n)
    f_dev = g_dev = 0.0
    w = rng.standard_normal((2, n))
    for k in range(n):
        f_dev = decay * f_dev + drive * w[0, k]
        g_dev = decay * g_dev + drive * w[1, k]
        f[k] = frequency_hz + 0.5 * f_dev
        g[k] = 0.3 * g_dev
    phase = 2.0 * np.pi * np.cumsum(f) * dt + rng.uniform(0, 2 * np.pi)
    clean = np.exp(g) * np.cos(phase)
    # Background: 1/f (pink, shaped in frequency) plus white of equal power.
    spec = np.fft.rfft(rng.standard_normal(n))
    freq = np.fft.rfftfreq(n, dt)
    spec[1:] /= np.sqrt(freq[1:])
    spec[0] = 0.0
    pink = np.fft.irfft(spec, n)
    pink /= pink.std()
    noise = pink + rng.standard_normal(n)
    sos = signal.butter(4, band_hz, "bandpass", fs=rate_hz, output="sos")
    p_rhythm = np.mean(signal.sosfiltfilt(sos, clean) ** 2)
    p_noise = np.mean(signal.sosfiltfilt(sos, noise) ** 2)
    noise *= math.sqrt(p_rhythm / p_noise / 10.0 ** (snr_db / 10.0))
    return {"observed": clean + noise, "clean": clean, "phase": np.angle(np.exp(1j * phase))}


def oracle_phase(clean: np.ndarray, rate_hz: float, band_hz: tuple[float, float]) -> np.ndarray:
    """Non-causal phase of a clean signal (zero-phase band-pass, Hilbert), rad, 0 at peaks."""
    sos = signal.butter(2, band_hz, "bandpass", fs=rate_hz, output="sos")
    return np.angle(signal.hilbert(signal.sosfiltfilt(sos, np.asarray(clean, float), axis=-1)))


def estimate_phases(
    observed: np.ndarray,
    clean: np.ndarray,
    rate_hz: float,
    band_hz: tuple[float, float],
    latency_s: float,
    chain: SensingChain | None = None,
) -> dict[str, np.ndarray]:
    """Each estimator's phase for ``latency_s`` after every sample, rad.

    Parameters
    ----------
    observed, clean : ndarray, shape (T,)
        What the sensor sees, and the rhythm alone (for the oracle).
    rate_hz : float
        Sampling rate, Hz.
    band_hz : tuple of float
        Band of the rhythm, Hz.
    latency_s : float
        From the last sample to the stimulus, s.
    chain : SensingChain, optional
        Settings of the causal estimators (its ``rate_hz``, ``band_hz``,
        ``features`` and ``phase_ar_lead_s`` are set here).

    Returns
    -------
    dict of str to ndarray
        Each of :data:`ESTIMATORS`, of shape (T,): value ``k`` is
        the estimate, made at sample ``k``, of the phase at ``k + latency``.
    """
    base = chain or SensingChain()
    settings = {**base.to_dict(), "rate_hz": rate_hz, "band_hz": tuple(band_hz)}
    settings.update(
        features=("phase", "phase_ar", "phase_etp"),
        phase_ar_lead_s=latency_s,
        phase_etp_lead_s=latency_s,
        aperiodic_band_hz=tuple(settings["aperiodic_band_hz"]),
    )
    x = np.asarray(observed, float)[None, :]
    sensing = SensingChain(**settings)
    out = sensing.process(sensing.new_state(1, np.ones((1, 2), dtype=np.uint64)), x)
    settings.update(features=("phase_ar",), phase_ar_method="yule_walker")
    yule = SensingChain(**settings)
    out_yw = yule.process(yule.new_state(1, np.ones((1, 2), dtype=np.uint64)), x)
    echt = out["phase"][0]
    advance = np.angle(np.exp(1j * np.diff(echt, prepend=echt[0])))
    alpha = math.exp(-1.0 / (rate_hz * ECHT_FREQUENCY_TAU_S))
    omega = signal.lfilter([1.0 - alpha], [1.0, -alpha], advance, zi=[alpha * advance[0]])[0]
    lag = int(round(latency_s * rate_hz))
    truth_ahead = oracle_phase(clean, rate_hz, band_hz)
    oracle = np.roll(truth_ahead, -lag)
    return {
        "oracle": oracle,
        "echt": np.angle(np.exp(1j * (echt + omega * lag))),
        "ar": out["phase_ar"][0],
        "ar_yw": out_yw["phase_ar"][0],
        "etp": out["phase_etp"][0],
    }


def circular_summary(error_rad: np.ndarray, tolerance_deg: float) -> dict[str, float]:
    """Circular mean (deg), circular SD (deg) and fraction within +-``tolerance_deg``."""
    e = np.asarray(error_rad, float)
    resultant = np.mean(np.exp(1j * e))
    r = min(abs(resultant), 1.0)
    wrapped = np.degrees(np.angle(np.exp(1j * e)))
    return {
        "mean_deg": float(np.degrees(np.angle(resultant))),
        "sd_deg": float(np.degrees(math.sqrt(-2.0 * math.log(max(r, 1e-300))))),
        "within": float(np.mean(np.abs(wrapped) <= tolerance_deg)),
    }


def phase_error_table(
    snr_db: Sequence[float] = (20.0, 10.0, 5.0, 0.0, -5.0),
    latency_s: float = 0.005,
    duration_s: float = 30.0,
    rate_hz: float = 1000.0,
    band_hz: tuple[float, float] = (8.0, 13.0),
    tolerance_deg: float = 30.0,
    seed: int = 0,
    discard_s: float = 2.0,
) -> list[dict[str, float | str]]:
    """Phase error of every estimator at every SNR on :func:`mu_rhythm`.

    The error is scored at every sample after ``discard_s`` (and before the
    last ``latency_s + 1`` s, where the oracle would wrap around) against
    the true phase at ``k + latency``.

    Returns
    -------
    list of dict
        One row per (estimator, SNR): ``estimator``, ``snr_db``,
        ``mean_deg``, ``sd_deg``, ``within`` (fraction within
        +-``tolerance_deg``).
    """
    rows: list[dict[str, float | str]] = []
    lag = int(round(latency_s * rate_hz))
    start = int(round(discard_s * rate_hz))
    for k, snr in enumerate(snr_db):
        sig = mu_rhythm(duration_s, rate_hz, snr, seed + k, band_hz=band_hz)
        est = estimate_phases(sig["observed"], sig["clean"], rate_hz, band_hz, latency_s)
        stop = sig["phase"].size - lag - int(rate_hz)
        truth = np.roll(sig["phase"], -lag)[start:stop]
        for name in ESTIMATORS:
            row: dict[str, float | str] = {"estimator": name, "snr_db": float(snr)}
            row.update(circular_summary(est[name][start:stop] - truth, tolerance_deg))
            rows.append(row)
    return rows


def markdown_table(rows: Sequence[dict], columns: Sequence[tuple[str, str, str]]) -> str:
    """A Markdown table of ``rows``; ``columns`` are (header, key, format), e.g. ``"{:.1f}"``.

    The first column is left-aligned, the others right-aligned (numbers).
    """
    lines = [
        "| " + " | ".join(c[0] for c in columns) + " |",
        "|---|" + "---:|" * (len(columns) - 1),
    ]
    for row in rows:
        lines.append("| " + " | ".join(fmt.format(row[key]) for _, key, fmt in columns) + " |")
    return "\n".join(lines)


def plot_phase_errors(rows: Sequence[dict], tolerance_deg: float = 30.0, *, fig: Any = None) -> Any:
    """Circular mean error, SD and fraction within tolerance versus SNR, a line per estimator.

    Parameters
    ----------
    rows : sequence of dict
        Rows of :func:`phase_error_table` (``estimator``, ``snr_db``, ``mean_deg``,
        ``sd_deg``, ``within``).
    tolerance_deg : float
        The tolerance the ``within`` column was counted with, degrees.
    fig : matplotlib.figure.Figure or SubFigure, optional
        Where to draw (empty); default a new figure, 9 in by 3.5 in.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on; nothing is saved.
    """
    from closedloop.plotting.figures import figure_for, root_figure

    fig = figure_for(fig, (9, 3.5))
    axes = fig.subplots(1, 3)
    for name in ESTIMATORS:
        mine = sorted((r for r in rows if r["estimator"] == name), key=lambda r: r["snr_db"])
        snr = [r["snr_db"] for r in mine]
        axes[0].plot(snr, [r["mean_deg"] for r in mine], "o-", label=name)
        axes[1].plot(snr, [r["sd_deg"] for r in mine], "o-", label=name)
        axes[2].plot(snr, [100 * r["within"] for r in mine], "o-", label=name)
    for ax, what in zip(
        axes,
        ("circular mean error (deg)", "circular SD (deg)", f"within +-{tolerance_deg:g} deg (%)"),
        strict=True,
    ):
        ax.set_xlabel("SNR in band (dB)")
        ax.set_ylabel(what)
    axes[0].legend()
    return root_figure(fig)
