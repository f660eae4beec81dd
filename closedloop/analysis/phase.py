"""Phase of the oscillation at each delivered pulse: analysis and figure of a run.

:func:`pulse_phases` finds the pulses a run delivered and the phase of the
oscillation at each; :func:`plot_phase_histogram` draws them, with the band
amplitude of the LFP with and without stimulation, as a three-panel PNG.

Where the pulses come from
--------------------------
Run files record the device state once per control period (``amplitude``,
``frequency``, ``pulse_width``), not single pulses. The pulses are
reconstructed by replaying the recorded controller (``config.controller``,
rebuilt through the registry and reset with the run's controller seed) on the recorded features
(``biomarker`` and ``feature_<name>``): a command ``pulses = k > 0`` issued
at the end of control period ``j`` delivers ``k`` pulses from
``(j + 1) * period + latency`` on, at the delivered frequency, if the
delivered amplitude is above zero. This is exact for deterministic
controllers that issue bursts no longer than a control period, which
:class:`closedloop.controllers.PhaseLocked` is; it ignores commands the
device rejects.

Which phase
-----------
The phase of the oscillation at a pulse is measured offline from the recorded
LFP proxy (``timeseries/lfp``), from the samples *before* the pulse only: a
sinusoid at the dominant frequency of the LFP (the peak of its Welch
spectrum in the sensing band, ``config.sensing.band_hz``) plus a constant is
fitted by least squares to the last three quarters of a cycle of samples
that end before the pulse (each sample placed at the middle of its sampling
interval, as it is the mean over it), and its phase at the pulse time taken.
A pulse can move the phase and amplitude of the oscillation at once (it
does, in the Kuramoto model, most where stimulation has made the
oscillation small), so a zero-phase filter around the pulse would mix the
phase after the pulse into the phase at it. The controller's own, causal
estimate (``feature_phase`` of the triggering period) is returned too.
Phase convention: 0 at the peaks of the oscillation, pi at its troughs (as
:mod:`closedloop.sensing.phase`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from matplotlib.figure import Figure
from scipy import signal as _signal

from closedloop.analysis.phase_fit import phase_before
from closedloop.analysis.replay import replay_controller
from closedloop.controllers import Controller
from closedloop.io import RunData, load_run
from closedloop.plotting.figures import figure_for, root_figure, save_run_plot

if TYPE_CHECKING:
    from matplotlib.projections.polar import PolarAxes

__all__ = ["band_amplitude", "plot_phase_histogram", "pulse_phases", "save_phase_histogram"]

_DEFAULT_BAND_HZ = (13.0, 30.0)


def band_amplitude(x: np.ndarray, rate_hz: float, band_hz: tuple[float, float]) -> np.ndarray:
    """Analytic amplitude of ``x`` in a band, offline (zero-phase band-pass, Hilbert).

    For the Kuramoto mean field ``r cos(psi)`` this is the order parameter
    ``r(t)``.

    Parameters
    ----------
    x : ndarray, shape (..., T)
        Signal.
    rate_hz : float
        Sampling rate, Hz.
    band_hz : tuple of float
        Band edges, Hz.

    Returns
    -------
    ndarray, shape (..., T)
        Amplitude, in the units of ``x``.
    """
    return np.abs(_analytic(x, rate_hz, band_hz))


def _analytic(x: np.ndarray, rate_hz: float, band_hz: tuple[float, float]) -> np.ndarray:
    sos = _signal.butter(2, band_hz, "bandpass", fs=rate_hz, output="sos")
    return _signal.hilbert(_signal.sosfiltfilt(sos, np.asarray(x, dtype=float), axis=-1), axis=-1)


def _band(run: RunData) -> tuple[float, float]:
    sensing = run.config.get("sensing", {}) if isinstance(run.config, dict) else {}
    band = sensing.get("band_hz", _DEFAULT_BAND_HZ)
    lo, hi = (float(v) for v in band)
    return lo, hi


def _replayed_commands(run: RunData, controller: Controller | None = None) -> np.ndarray:
    """``pulses`` commands of the recorded controller replayed on the recorded features.

    Returns an array of shape ``(n, periods)``: the pulses commanded at the
    end of each control period (0 where none).
    """
    out = np.zeros(run.timeseries["biomarker"].shape)
    for step in replay_controller(run, controller):
        pulses = step.command.get("pulses")
        if pulses is not None:
            out[:, step.period] = np.nan_to_num(
                np.asarray(pulses, dtype=float), nan=0.0, posinf=0.0
            )
    return out


def pulse_phases(
    run_or_path: RunData | str | Path, instance: int = 0, controller: Controller | None = None
) -> dict[str, Any]:
    """Delivered pulses of one instance and the oscillation's phase at each.

    Parameters
    ----------
    run_or_path : RunData or str or pathlib.Path
        Loaded run, or the path of a run file with ``timeseries/lfp``,
        ``timeseries/biomarker`` and ``timeseries/amplitude``.
    instance : int
        Instance (batch index).
    controller : Controller, optional
        The controller to replay; default the run's own when it is built in
        (see :func:`closedloop.analysis.replay.controller_from_run`).

    Returns
    -------
    dict
        ``time_s`` (pulse onsets, s), ``phase_rad`` (phase of the
        oscillation at each, from the LFP before it, rad in ``[-pi, pi)``;
        NaN for pulses in the first three quarters of a cycle; see the
        module notes), ``estimated_rad``
        (the causal ``feature_phase`` of the period that triggered the pulse,
        NaN if not recorded), ``target_rad`` (the controller's
        ``target_phase_rad``, NaN if it has none).
    """
    run = run_or_path if isinstance(run_or_path, RunData) else load_run(run_or_path)
    if not 0 <= instance < run.n_instances:
        raise IndexError(f"instance {instance} out of range: {run.path} has {run.n_instances}")
    ts = run.timeseries
    period_s = 1.0 / float(run.timeseries_attrs["biomarker"]["sampling_rate_hz"])
    latency_s = float(run.config.get("control", {}).get("latency_s", 0.0))
    amplitude = ts["amplitude"][instance]
    frequency = ts["frequency"][instance] if "frequency" in ts else None
    commanded = _replayed_commands(run, controller)[instance]
    times_list: list[float] = []
    trig_list: list[int] = []
    end_s = amplitude.size * period_s
    for k in np.flatnonzero(commanded > 0):
        start = (k + 1) * period_s + latency_s
        if start >= end_s:  # commanded, but the run ended first
            continue
        # Delivered amplitude at the end of the period the burst starts in.
        after = min(int((start + 1e-9) / period_s), amplitude.size - 1)
        if amplitude[after] <= 0.0:
            continue
        rate = float(frequency[after]) if frequency is not None else math.inf
        for m in range(int(commanded[k])):
            if start + m / rate < end_s:
                times_list.append(start + m / rate)
                trig_list.append(int(k))
    times = np.array(times_list)
    trig = np.array(trig_list, dtype=int)
    lfp = ts["lfp"][instance]
    rate_hz = float(run.timeseries_attrs["lfp"]["sampling_rate_hz"])
    phase = _phase_before(lfp, rate_hz, times, _band(run))
    estimated = (
        ts["feature_phase"][instance][trig]
        if "feature_phase" in ts
        else np.full(phase.size, np.nan)
    )
    params = run.config.get("controller", {}).get("params", {})
    target = float(params.get("target_phase_rad", math.nan))
    return {
        "time_s": times,
        "phase_rad": phase,
        "estimated_rad": np.asarray(estimated, dtype=float),
        "target_rad": target,
    }


def _phase_before(
    lfp: np.ndarray, rate_hz: float, times: np.ndarray, band: tuple[float, float]
) -> np.ndarray:
    """Phase at each time of a sinusoid fitted to the LFP just before it (module notes).

    Returns the phases, rad in ``[-pi, pi)``, NaN for times without a full
    window of samples before them.
    """
    freq, power = _signal.welch(lfp, fs=rate_hz, nperseg=min(lfp.size, int(2 * rate_hz)))
    inside = (freq >= band[0]) & (freq <= band[1])
    f_peak = float(freq[inside][np.argmax(power[inside])]) if inside.any() else float(np.mean(band))
    return phase_before(lfp, rate_hz, times, f_peak)


def _circular(angles: np.ndarray) -> tuple[float, float, float]:
    """Circular mean (rad), resultant length and circular std (rad)."""
    if angles.size == 0:
        return math.nan, math.nan, math.nan
    mean = np.mean(np.exp(1j * angles))
    length = float(abs(mean))
    std = math.sqrt(-2.0 * math.log(length)) if length > 0 else math.inf
    return float(np.angle(mean)), length, std


def plot_phase_histogram(
    run_or_path: RunData | str | Path,
    *,
    instance: int = 0,
    n_bins: int = 36,
    controller: Controller | None = None,
    fig: Any = None,
) -> Figure:
    """Draw the phase of the oscillation at each delivered pulse of a run; save nothing.

    Panels: (a) band amplitude of the LFP (``timeseries/lfp``) and, if
    recorded, of the no-stimulation baseline (``lfp_baseline``), offline
    (for the Kuramoto model this is the order parameter ``r``); (b) polar
    histogram of the phase at each pulse (see :func:`pulse_phases`),
    with the target phase and the mean resultant vector; (c) histogram of
    the phase error, phase minus target (or minus the causal estimate when
    the controller has no target), in degrees.

    Parameters
    ----------
    run_or_path : RunData or str or pathlib.Path
        Loaded run, or the path of a run file.
    instance : int
        Instance (batch index) to draw.
    n_bins : int
        Phase bins of the histograms.
    controller : Controller, optional
        The controller to replay (see :func:`pulse_phases`).
    fig : matplotlib.figure.Figure or SubFigure, optional
        Where to draw (empty); default a new figure, 10 in by 8 in.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on (the top-level one when ``fig`` is a subfigure);
        :func:`save_phase_histogram` saves it.
    """
    run = run_or_path if isinstance(run_or_path, RunData) else load_run(run_or_path)
    info = pulse_phases(run, instance, controller)
    band = _band(run)
    rate_hz = float(run.timeseries_attrs["lfp"]["sampling_rate_hz"])

    fig = figure_for(fig, (10, 8))
    grid = fig.add_gridspec(2, 2, height_ratios=(1.0, 1.3))
    ax_amp = fig.add_subplot(grid[0, :])
    ax_polar = cast("PolarAxes", fig.add_subplot(grid[1, 0], projection="polar"))
    ax_err = fig.add_subplot(grid[1, 1])

    ax_amp.set_title("(a) band amplitude of the LFP (offline)", loc="left", fontsize=10)
    t = run.time("lfp")
    for key, label, color in (
        ("lfp_baseline", "no stimulation", "0.4"),
        ("lfp", "with stimulation", "C0"),
    ):
        if key in run.timeseries:
            amp = band_amplitude(run.timeseries[key][instance], rate_hz, band)
            ax_amp.plot(t, amp, color=color, lw=0.8, label=f"{label} (mean {amp.mean():.3g})")
    ax_amp.set_xlabel("time (s)")
    units = run.timeseries_attrs["lfp"].get("units", "")
    ax_amp.set_ylabel(f"amplitude ({units})" if units and units != "1" else "amplitude")
    ax_amp.legend(loc="upper right", fontsize=8)
    ax_amp.grid(True, alpha=0.25)

    phases = info["phase_rad"][np.isfinite(info["phase_rad"])]
    target = info["target_rad"]
    mean, length, std = _circular(phases)
    ax_polar.set_title(
        f"(b) phase of the oscillation at {phases.size} delivered pulses", loc="left", fontsize=10
    )
    edges = np.linspace(-math.pi, math.pi, n_bins + 1)
    counts, _ = np.histogram(phases, bins=edges)
    ax_polar.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="C0", alpha=0.7)
    top = max(1, int(counts.max()) if counts.size else 1)
    if math.isfinite(target):
        ax_polar.plot([target, target], [0, top], color="C3", lw=2, label="target")
    if math.isfinite(mean):
        ax_polar.plot(
            [mean, mean], [0, length * top], color="k", lw=2, label=f"mean (R = {length:.2f})"
        )
    ax_polar.set_theta_zero_location("N")
    ax_polar.set_theta_direction(-1)
    if ax_polar.get_legend_handles_labels()[0]:
        ax_polar.legend(loc="lower left", bbox_to_anchor=(-0.15, -0.15), fontsize=8)
    if phases.size == 0:
        ax_polar.text(0.5, 0.5, "no pulses", transform=ax_polar.transAxes, ha="center")

    finite = np.isfinite(info["phase_rad"])
    reference = target if math.isfinite(target) else info["estimated_rad"][finite]
    error = np.degrees(np.mod(phases - reference + math.pi, 2 * math.pi) - math.pi)
    e_mean, _, e_std = _circular(np.radians(error))
    what = "target" if math.isfinite(target) else "causal estimate"
    ax_err.set_title(f"(c) phase at pulse minus {what}", loc="left", fontsize=10)
    ax_err.hist(error, bins=np.linspace(-180, 180, n_bins + 1).tolist(), color="C0", alpha=0.7)
    ax_err.axvline(0, color="C3", lw=1)
    ax_err.set_xlabel("phase error (degrees)")
    ax_err.set_ylabel("pulses")
    ax_err.set_xlim(-180, 180)
    if error.size:
        ax_err.text(
            0.02,
            0.95,
            f"circular mean {math.degrees(e_mean):.1f} deg\n"
            f"circular std {math.degrees(e_std):.1f} deg",
            transform=ax_err.transAxes,
            va="top",
            fontsize=9,
        )
    ax_err.grid(True, alpha=0.25)
    fig.suptitle(
        f"phase-locked stimulation: {Path(run.path).name}, instance {instance}", fontsize=11
    )
    return root_figure(fig)


def save_phase_histogram(
    run_or_path: RunData | str | Path, out: str | Path | None = None, **kwargs: Any
) -> Path:
    """Draw :func:`plot_phase_histogram` and write it as a PNG (what ``closedloop plot`` does).

    Parameters
    ----------
    run_or_path : RunData or str or pathlib.Path
        Loaded run, or the path of a run file.
    out : str or pathlib.Path, optional
        PNG to write; default the run file's path with suffix ``_phase.png``.
    **kwargs
        Passed to :func:`plot_phase_histogram` (``instance``, ``n_bins``,
        ``controller``).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    return save_run_plot(plot_phase_histogram, run_or_path, out, "_phase.png", **kwargs)
