"""Figures and text summaries of recorded runs.

:func:`plot_run` draws one instance of a run file (see
:mod:`closedloop.io.layout` for the layout) as a five-panel PNG: the signal,
the biomarker with its thresholds and bursts, the delivered stimulation, the
power spectral density with and without stimulation and the burst-duration
histograms with and without stimulation. :func:`format_info` is the text behind
``closedloop info RUN.h5``.

Figures are drawn with matplotlib's object-oriented API on an Agg canvas, so
nothing here needs a display or changes pyplot's global backend.
"""

from __future__ import annotations

import json
import textwrap
import warnings
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from closedloop.analysis.bursts import detect_bursts
from closedloop.io import RunData, load_run
from closedloop.plotting.figures import save_run_plot
from closedloop.plotting.neurofeedback import (
    has_neurofeedback,
    plot_learning_curve,
    plot_regulation_trace,
)
from closedloop.plotting.physio import has_physiology, plot_physiology
from closedloop.plotting.plasticity import has_plasticity, plot_plasticity
from closedloop.plotting.slow import plot_symptoms, symptom_names

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn, not for `closedloop info`
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["TITLE_METRICS", "ZOOM_CYCLES", "format_info", "plot_run", "save_run_figure"]

#: Default band, in Hz, when the run file gives neither ``band_hz`` nor the
#: older ``beta_band_hz``.
DEFAULT_BAND_HZ: tuple[float, float] = (13.0, 30.0)
#: Metrics shown in the figure title when present, in this order.
TITLE_METRICS: dict[str, str] = {
    "band_power_reduction": "band power reduced by",
    "long_burst_time_reduction": "time in long bursts reduced by",
    "teed_relative": "energy (TEED) relative to continuous stimulation",
    "time_on_fraction": "stimulation on",
}
#: Oscillation cycles (at the band's centre) shown in the zoomed inset.
ZOOM_CYCLES = 5
#: Most points drawn per line; longer signals are reduced to a min/max envelope.
_MAX_POINTS = 20_000
_NOTE_STYLE: dict[str, Any] = {"ha": "center", "va": "center", "color": "0.45", "fontsize": 10}


def _note(ax: Axes, text: str) -> None:
    """Say in an empty panel why it is empty."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, **_NOTE_STYLE)
    ax.set_yticks([])


def _envelope(
    t: np.ndarray, y: np.ndarray, max_points: int = _MAX_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a long trace to interleaved per-bin minima and maxima.

    Keeps every peak visible (unlike taking every k-th sample) while bounding
    the number of points drawn.
    """
    if y.size <= max_points:
        return t, y
    # Bins of ceil(size / bins) samples, the last one padded with NaN: every
    # sample is drawn (flooring dropped up to a bin's worth from the end).
    per_bin = -(-y.size // (max_points // 2))
    n_bins = -(-y.size // per_bin)
    pad = n_bins * per_bin - y.size
    yb = np.concatenate([y, np.full(pad, np.nan)]).reshape(n_bins, per_bin)
    tb = np.concatenate([t, np.full(pad, t[-1])]).reshape(n_bins, per_bin)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bins
        lo, hi = np.nanmin(yb, axis=1), np.nanmax(yb, axis=1)
    t_out = np.repeat(tb[:, 0], 2)
    y_out = np.column_stack([lo, hi]).ravel()
    return t_out, y_out


def _json_attr(value: Any) -> Any:
    """Decode an attribute that may still be a JSON string."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return None
    return value


def _row(values: np.ndarray, instance: int) -> np.ndarray:
    values = np.asarray(values)
    return values[instance] if values.ndim >= 2 else values


def _instance_value(value: Any, instance: int) -> float | None:
    """A scalar for one instance from a scalar or per-instance value."""
    arr = np.asarray(value, dtype=float) if value is not None else None
    if arr is None:
        return None
    if arr.ndim == 0:
        out = float(arr)
    elif arr.ndim == 1 and arr.size > instance:
        out = float(arr[instance])
    else:
        return None
    return out if np.isfinite(out) else None


def _units(run: RunData, name: str, default: str = "") -> str:
    return str(run.timeseries_attrs.get(name, {}).get("units", default))


def _label(quantity: str, units: str) -> str:
    return f"{quantity} ({units})" if units and units != "1" else quantity


def _band(run: RunData) -> tuple[float, float]:
    band = _json_attr(run.attrs.get("band_hz", run.attrs.get("beta_band_hz")))
    try:
        lo, hi = (float(x) for x in np.asarray(band, dtype=float).ravel())
    except (TypeError, ValueError):
        return DEFAULT_BAND_HZ
    return (lo, hi) if 0 <= lo < hi else DEFAULT_BAND_HZ


def _burst_settings(run: RunData) -> tuple[float, float]:
    """Minimum and long burst durations, s, from the run's config (defaults 0.1, 0.4)."""
    config = run.config if isinstance(run.config, dict) else {}
    bursts = (config.get("metrics") or {}).get("bursts") or {}
    return float(bursts.get("min_duration_s", 0.1)), float(bursts.get("long_burst_s", 0.4))


def _title(run: RunData, instance: int) -> str:
    config = run.config if isinstance(run.config, dict) else {}
    controller = config.get("controller")
    model = config.get("model")
    controller_name = controller.get("name", "?") if isinstance(controller, dict) else "?"
    model_name = model.get("name", "?") if isinstance(model, dict) else "?"
    head = f"controller: {controller_name}    model: {model_name}    instance {instance}"
    if run.status and run.status != "complete":
        head += f"    [{run.status}]"
    parts = []
    for name, words in TITLE_METRICS.items():
        if name not in run.metrics:
            continue
        value = _instance_value(run.metrics[name], instance)
        if value is None:
            continue
        # the fractions and reductions as percentages, in words
        parts.append(f"{words} {100 * value:.0f}%")
    return "\n".join([head, *textwrap.wrap(";  ".join(parts), 110)])


def _plot_lfp(ax: Axes, run: RunData, instance: int) -> None:
    ax.set_title("(a) signal, with and without stimulation", loc="left", fontsize=10)
    if "lfp" not in run.timeseries:
        _note(ax, "no timeseries/lfp in this file")
        return
    units = _units(run, "lfp")
    traces = [("lfp", "with stimulation", "C0", 1.0)]
    if "lfp_baseline" in run.timeseries:
        traces.insert(0, ("lfp_baseline", "no stimulation (same seed)", "0.55", 0.8))
    if "lfp_sensed" in run.timeseries and _units(run, "lfp_sensed") == units:
        traces.append(("lfp_sensed", "sensed", "C1", 0.5))
    for key, label, color, alpha in traces:
        t, y = run.time(key), _row(run.timeseries[key], instance)
        ax.plot(*_envelope(t, y), color=color, lw=0.6, alpha=alpha, label=label)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_ylabel(_label("signal", units))
    _zoom_inset(ax, run, instance, [tr for tr in traces if tr[0] != "lfp_sensed"])


def _zoom_inset(ax: Axes, run: RunData, instance: int, traces: list) -> None:
    """A few cycles at the band's centre frequency, raw samples, in the panel's corner."""
    t = run.time("lfp")
    lo, hi = _band(run)
    width_s = ZOOM_CYCLES / (0.5 * (lo + hi))
    if t.size < 3 or t[-1] - t[0] < 4 * width_s:
        return
    start = t[0] + 0.5 * (t[-1] - t[0])
    inset = ax.inset_axes((0.68, 0.55, 0.31, 0.42))
    for key, _, color, alpha in traces:
        tk = run.time(key)
        sel = (tk >= start) & (tk <= start + width_s)
        inset.plot(tk[sel], _row(run.timeseries[key], instance)[sel], color=color, lw=0.8,
                   alpha=alpha)  # fmt: skip
    inset.set_title(f"{ZOOM_CYCLES} cycles at {0.5 * (lo + hi):.3g} Hz", fontsize=7)
    inset.tick_params(labelsize=6)
    ax.indicate_inset_zoom(inset, edgecolor="0.4")


def _plot_biomarker(ax: Axes, run: RunData, instance: int) -> None:
    ax.set_title("(b) biomarker and its bursts", loc="left", fontsize=10)
    if "biomarker" not in run.timeseries:
        _note(ax, "no timeseries/biomarker in this file")
        return
    t = run.time("biomarker")
    bio = _row(run.timeseries["biomarker"], instance)
    ax.plot(*_envelope(t, bio), color="C2", lw=0.8, label="biomarker")
    level = _instance_value(run.metrics.get("burst_threshold"), instance)
    if level is not None and t.size > 1:
        # Bursts with stimulation against the no-stimulation threshold; long
        # ones darker (closedloop.analysis.bursts, the run's settings).
        min_s, long_s = _burst_settings(run)
        rate = 1.0 / float(t[1] - t[0])
        found = detect_bursts(bio, rate, level, min_s)[0]
        labelled: set[str] = set()
        for start, dur in zip(found.start_s, found.duration_s, strict=True):
            long = bool(dur >= long_s - 1e-12)
            label = f"burst >= {long_s:g} s" if long else "burst"
            ax.axvspan(
                t[0] + start,
                t[0] + start + dur,
                color="C3" if long else "C1",
                alpha=0.3 if long else 0.15,
                lw=0,
                label=None if label in labelled else label,
            )
            labelled.add(label)
        ax.axhline(level, color="k", ls="-", lw=0.8, label=f"burst threshold = {level:.3g}")
    thresholds = _json_attr(run.attrs.get("thresholds"))
    if isinstance(thresholds, dict):
        styles = ("--", ":", "-.")
        for i, (name, value) in enumerate(thresholds.items()):
            level = _instance_value(value, instance)
            if level is None:
                continue
            ax.axhline(
                level, color="C3", ls=styles[i % len(styles)], lw=1.0, label=f"{name} = {level:.3g}"
            )
    ax.legend(loc="best", fontsize=8)
    ax.set_ylabel(_label("biomarker", _units(run, "biomarker")))


def _plot_stimulation(ax: Axes, run: RunData, instance: int) -> None:
    ax.set_title("(c) delivered stimulation", loc="left", fontsize=10)
    if "amplitude" not in run.timeseries:
        _note(ax, "no timeseries/amplitude in this file")
        return
    amplitude_units = _units(run, "amplitude", "mA")
    lines = ax.plot(
        *_envelope(run.time("amplitude"), _row(run.timeseries["amplitude"], instance)),
        color="C4",
        lw=0.9,
        drawstyle="steps-post",
        label="amplitude",
    )
    ax.set_ylabel(_label("amplitude", amplitude_units))
    name = next((k for k in ("frequency", "frequency_hz") if k in run.timeseries), None)
    if name is not None and _frequency_in_use(run):
        freq = _row(run.timeseries[name], instance)
        freq_units = _units(run, name, "Hz")
        finite = freq[np.isfinite(freq)]
        if finite.size and np.ptp(finite) > 0:
            twin = ax.twinx()
            lines += twin.plot(
                *_envelope(run.time(name), freq),
                color="C1",
                lw=1.0,
                ls="--",
                drawstyle="steps-post",
                label="frequency",
            )
            twin.set_ylabel(_label("frequency", freq_units), color="C1")
            twin.tick_params(axis="y", colors="C1")
        elif finite.size:
            lines[0].set_label(f"amplitude (frequency {finite[0]:g} {freq_units})")
    lines += _plot_triggers(ax, run, instance)
    ax.legend(handles=lines, loc="best", fontsize=8)


def _frequency_in_use(run: RunData) -> bool:
    """Whether the frequency series means something for the run's device.

    Under TMS it is the rTMS pulse rate: theta-burst protocols and triggered
    patterns (pairs, triplets) keep their own timing, and a legend showing the
    frequency there would name a rate nothing was delivered at.
    """
    config = run.attrs.get("config")
    device = config.get("device") if isinstance(config, dict) else None
    if not isinstance(device, dict) or device.get("modality") != "tms":
        return True
    return (device.get("tms") or {}).get("protocol") == "rtms"


def _plot_triggers(ax: Axes, run: RunData, instance: int) -> list:
    """Mark the bursts asked for (``events/triggers``): delivered, refused by the device."""
    if "events/triggers/time_s" not in run.arrays:
        return []
    mine = run.arrays["events/triggers/instance"] == instance
    times = run.arrays["events/triggers/time_s"][mine]
    delivered = run.arrays["events/triggers/delivered"][mine]
    top = ax.get_ylim()[1]
    marks = []
    for outcome, marker, color, label in (
        (1, "v", "C2", "burst delivered"),
        (0, "x", "C3", "refused"),
    ):
        at = times[delivered == outcome]
        if at.size:
            marks += ax.plot(
                at, np.full(at.size, top), marker, color=color, ms=5, ls="", label=label
            )
    return marks


def _plot_psd(ax: Axes, run: RunData, instance: int, max_frequency_hz: float | None) -> None:
    ax.set_title("(d) power spectral density", loc="left", fontsize=10)
    ax.set_xlabel("frequency (Hz)")
    freq = run.arrays.get("spectra/frequency")
    curves = [
        (key, label, color)
        for key, label, color in (
            ("spectra/psd_stim", "with stimulation", "C0"),
            ("spectra/psd_baseline", "no stimulation", "0.3"),
        )
        if key in run.arrays
    ]
    if freq is None or not curves:
        _note(ax, "no spectra in this file")
        ax.set_xticks([])
        return
    f = _row(freq, instance)
    drawn = False
    for key, label, color in curves:
        psd = _row(run.arrays[key], instance)
        if psd.shape != f.shape:
            continue
        positive = np.where(psd > 0, psd, np.nan)
        ax.plot(f, positive, color=color, lw=1.0, label=label)
        drawn = drawn or bool(np.isfinite(positive).any())
    if not drawn:
        _note(ax, "spectra present but empty or of mismatched shape")
        return
    ax.set_yscale("log")
    lo, hi = _band(run)
    ax.axvspan(lo, hi, color="C3", alpha=0.12, lw=0, label=f"band {lo:g}-{hi:g} Hz")
    f_max = float(np.nanmax(f))
    if max_frequency_hz is not None:
        f_max = min(f_max, float(max_frequency_hz))
    ax.set_xlim(max(0.0, float(np.nanmin(f))), f_max)
    units = run.array_attrs.get("spectra/psd_stim", {}).get("units", "")
    ax.set_ylabel(_label("PSD", units))
    ax.legend(loc="upper right", fontsize=8)


def _plot_burst_durations(ax: Axes, run: RunData, instance: int) -> None:
    ax.set_title("(e) burst durations", loc="left", fontsize=10)
    edges = run.arrays.get("bursts/duration_edges_s")
    curves = [
        (key, label, color)
        for key, label, color in (
            ("bursts/duration_counts_baseline", "no stimulation", "0.5"),
            ("bursts/duration_counts", "with stimulation", "C0"),
        )
        if key in run.arrays
    ]
    if edges is None or not curves:
        _note(ax, "no burst histograms in this file")
        ax.set_xticks([])
        return
    edges = np.asarray(edges, dtype=float)
    labels = [f"{a:g}-{b:g}" if np.isfinite(b) else f">{a:g}" for a, b in pairwise(edges)]
    x = np.arange(len(labels))
    width = 0.8 / len(curves)
    for k, (key, label, color) in enumerate(curves):
        counts = _row(run.arrays[key], instance)
        ax.bar(x + (k - (len(curves) - 1) / 2) * width, counts, width, color=color, label=label)
    ax.set_xticks(x, labels, rotation=45, fontsize=7)
    ax.set_xlabel("burst duration (s)")
    ax.set_ylabel("bursts")
    ax.legend(loc="upper right", fontsize=8)


def _drug_names(run: RunData) -> list[str]:
    """Drugs with a plasma series in the run (``drugs_<name>_plasma_ng_ml``)."""
    return [
        k[len("drugs_") : -len("_plasma_ng_ml")]
        for k in run.timeseries
        if k.startswith("drugs_") and k.endswith("_plasma_ng_ml")
    ]


def _plot_drugs(ax: Axes, run: RunData, instance: int) -> None:
    ax.set_title("(f) drugs (slow time)", loc="left", fontsize=10)
    names = _drug_names(run)
    t_end = max(float(run.time(f"drugs_{d}_plasma_ng_ml")[-1]) for d in names)
    scale, unit = (3600.0, "h") if t_end > 7200.0 else (1.0, "s")
    twin = ax.twinx()
    lines = []
    for j, d in enumerate(names):
        key = f"drugs_{d}"
        t = run.time(f"{key}_plasma_ng_ml") / scale
        lines += ax.plot(
            t, _row(run.timeseries[f"{key}_plasma_ng_ml"], instance), color=f"C{2 * j}", lw=1.0,
            label=f"{d} plasma",
        )  # fmt: skip
        lines += ax.plot(
            t, _row(run.timeseries[f"{key}_effect_site_ng_ml"], instance), color=f"C{2 * j}",
            lw=1.0, ls="--", label=f"{d} effect site",
        )  # fmt: skip
        for series, style in (("effect", "-"), ("adaptation", ":")):
            if f"{key}_{series}" in run.timeseries:
                lines += twin.plot(
                    t, _row(run.timeseries[f"{key}_{series}"], instance), color=f"C{2 * j + 1}",
                    lw=1.0, ls=style, label=f"{d} {series}",
                )  # fmt: skip
        prefix = f"events/{key}_doses/"
        if prefix + "time_s" in run.arrays:
            mine = run.arrays[prefix + "instance"] == instance
            times = run.arrays[prefix + "time_s"][mine] / scale
            given = run.arrays[prefix + "given"][mine] == 1
            for ok, marker, what in ((True, "v", "given"), (False, "x", "refused")):
                sel = given == ok
                if sel.any():
                    lines += ax.plot(
                        times[sel], np.zeros(int(sel.sum())), marker, color=f"C{2 * j}",
                        ms=7, clip_on=False, label=f"{d} doses {what}",
                    )  # fmt: skip
    ax.set_ylabel("concentration (ng/mL)")
    twin.set_ylabel("effect (1)")
    twin.set_ylim(0.0, 1.05)
    ax.set_xlabel(f"slow time ({unit})")
    ax.legend(handles=lines, loc="upper right", fontsize=7)


def plot_run(
    run: RunData | str | Path,
    *,
    instance: int = 0,
    max_frequency_hz: float | None = 200.0,
    fig: Any = None,
) -> Figure:
    """Draw one instance of a run as a five-panel (six with drugs) figure.

    Returns the figure and saves nothing (:func:`save_run_figure` saves, as
    the command line does), so that it shows inline in a notebook.

    Panels, top to bottom: (a) ``timeseries/lfp`` with the no-stimulation
    baseline ``lfp_baseline`` (grey) and ``lfp_sensed`` (lighter), and an
    inset zoomed on :data:`ZOOM_CYCLES` cycles at the band's centre; (b)
    ``timeseries/biomarker`` with a line per threshold in the root attribute
    ``thresholds``, the burst threshold (metric ``burst_threshold``) and the
    bursts with stimulation shaded, long ones darker; (c) ``timeseries/amplitude`` (delivered,
    mA), with ``timeseries/frequency`` on a twin axis when it varies; (d)
    ``spectra/psd_stim`` and ``spectra/psd_baseline`` against
    ``spectra/frequency_hz`` on a log axis, the band (root attribute
    ``band_hz``, or ``beta_band_hz`` in older files, default 13-30 Hz)
    shaded; beside it (e) the burst-duration histograms ``bursts/*`` with and
    without stimulation; and, when the run has a drug layer, (f) each drug's
    plasma and effect-site concentrations (ng/mL), its effect (and
    adaptation) on a twin axis, and its doses (given and refused) against
    slow time; and, with a symptom state, its latent score and self-reports
    against days with the triggers delivered per day
    (:mod:`closedloop.plotting.slow`); with physiological clocks, the
    respiratory phase, R-peaks and delivered pulses
    (:mod:`closedloop.plotting.physio`); with a plasticity readout, the phase at
    each burst and the readout over time (:mod:`closedloop.plotting.plasticity`);
    and, with a neurofeedback subject, (n1) its learning curve per arm and (n2)
    its displayed readout per frame (:mod:`closedloop.plotting.neurofeedback`).
    A panel whose data is missing says so instead of failing.

    Parameters
    ----------
    run : RunData or str or pathlib.Path
        Loaded run, or the path of a run file.
    instance : int, optional
        Instance (batch index) to draw.
    max_frequency_hz : float or None, optional
        Upper limit of the PSD panel's frequency axis, in Hz; ``None`` for
        the whole spectrum.
    fig : matplotlib.figure.Figure or SubFigure, optional
        Where to draw (empty); default a new figure, 10 in wide.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on (``fig``'s parent figure when ``fig`` is a subfigure).
    """
    if not isinstance(run, RunData):
        run = load_run(run)
    n = run.n_instances
    if not 0 <= instance < n:
        raise IndexError(f"instance {instance} out of range: {run.path} has {n} instance(s)")
    drugs = bool(_drug_names(run))
    symptoms = bool(symptom_names(run))
    nf = has_neurofeedback(run)
    physio = has_physiology(run)
    plastic = has_plasticity(run)
    rows = 4 + int(drugs) + int(physio) + int(symptoms) + int(plastic) + int(nf)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if fig is None:
        fig = Figure(figsize=(10, 11 + 2.5 * (rows - 4)), layout="constrained")
        FigureCanvasAgg(fig)
    grid = fig.add_gridspec(rows, 2)
    ax_lfp = fig.add_subplot(grid[0, :])
    ax_bio = fig.add_subplot(grid[1, :], sharex=ax_lfp)
    ax_stim = fig.add_subplot(grid[2, :], sharex=ax_lfp)
    ax_psd = fig.add_subplot(grid[3, 0])
    ax_hist = fig.add_subplot(grid[3, 1])
    if drugs:
        ax_drug = fig.add_subplot(grid[4, :])
        _plot_drugs(ax_drug, run, instance)
        ax_drug.grid(True, alpha=0.25)
    if physio:
        ax_phys = fig.add_subplot(grid[4 + int(drugs), :], sharex=ax_lfp)
        plot_physiology(ax_phys, run, instance, "(g)" if drugs else "(f)")
        ax_phys.grid(True, alpha=0.25)
    if symptoms:
        ax_sym = fig.add_subplot(grid[4 + int(drugs) + int(physio), :])
        plot_symptoms(ax_sym, run, instance, "(g)" if drugs else "(f)")
        ax_sym.grid(True, alpha=0.25)
    if plastic:
        row = 4 + int(drugs) + int(physio) + int(symptoms)
        axes = (fig.add_subplot(grid[row, 0]), fig.add_subplot(grid[row, 1]))
        plot_plasticity(*axes, run, instance, "(p)")
        for ax in axes:
            ax.grid(True, alpha=0.25)
    if nf:
        row = 4 + int(drugs) + int(physio) + int(symptoms) + int(plastic)
        ax_curve, ax_trace = fig.add_subplot(grid[row, 0]), fig.add_subplot(grid[row, 1])
        plot_learning_curve(ax_curve, run, "(n1)")
        plot_regulation_trace(ax_trace, run, instance, "(n2)")
        for ax in (ax_curve, ax_trace):
            ax.grid(True, alpha=0.25)

    _plot_lfp(ax_lfp, run, instance)
    _plot_biomarker(ax_bio, run, instance)
    _plot_stimulation(ax_stim, run, instance)
    every = run.attrs.get("slow_every_s")
    ax_stim.set_xlabel(
        "time (s)"
        if every is None
        else f"neural time (s): {run.attrs['slow_epoch_s']:g} s of every {every:g} s simulated"
    )
    _plot_psd(ax_psd, run, instance, max_frequency_hz)
    _plot_burst_durations(ax_hist, run, instance)
    for ax in (ax_lfp, ax_bio):
        ax.tick_params(labelbottom=False)
    for ax in (ax_lfp, ax_bio, ax_stim, ax_psd, ax_hist):
        ax.grid(True, alpha=0.25)
    fig.suptitle(_title(run, instance), fontsize=11)
    return fig.figure if hasattr(fig, "figure") and fig.figure is not None else fig


def save_run_figure(
    run: RunData | str | Path, out: str | Path | None = None, **kwargs: Any
) -> Path:
    """Draw a run with :func:`plot_run` and write it as a PNG (what the command line does).

    Parameters
    ----------
    run : RunData or str or pathlib.Path
        Loaded run, or the path of a run file.
    out : str or pathlib.Path, optional
        PNG to write; default the run file's path with suffix ``.png``.
    **kwargs
        Passed to :func:`plot_run` (``instance``, ``max_frequency_hz``).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    return save_run_plot(plot_run, run, out, ".png", **kwargs)


def _fmt(value: float) -> str:
    return "nan" if not np.isfinite(value) else f"{value:.4g}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    lines = []
    for i, row in enumerate([header, *rows]):
        cells = [
            str(c).ljust(w) if j < 2 else str(c).rjust(w)
            for j, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append(indent + "  ".join(cells).rstrip())
        if i == 0:
            lines.append(indent + "  ".join("-" * w for w in widths))
    return lines


def format_info(run: RunData) -> str:
    """Describe a run file as text, for ``closedloop info RUN.h5``.

    Parameters
    ----------
    run : RunData
        Loaded run.

    Returns
    -------
    str
        File, status, versions, creation time, seed, number of instances,
        provenance, the config as YAML, the time series (shape, units,
        sampling rate), other arrays, and a metrics table (units, mean, min,
        max over instances, and each instance's value when there are at most
        eight).
    """
    attrs = run.attrs
    n = run.n_instances
    status = run.status
    if attrs.get("message"):
        status += f" ({attrs['message']})"
    lines = [
        f"file: {run.path}",
        f"status: {status}",
        f"format version: {attrs.get('format_version', '?')}",
        f"closedloop version: {attrs.get('closedloop_version', '?')}",
        f"created: {attrs.get('created', '?')}",
    ]
    if "finished" in attrs:
        lines.append(f"finished: {attrs['finished']}")
    lines += [f"seed: {attrs.get('seed', '?')}", f"instances: {n}"]

    provenance = attrs.get("provenance")
    lines.append("provenance:")
    if isinstance(provenance, dict) and provenance:
        for key, value in provenance.items():
            if isinstance(value, dict):  # dependency and plugin versions, one a line
                lines.append(f"  {key}:" + ("" if value else " (none)"))
                lines += [f"    {k}: {v}" for k, v in value.items()]
            else:
                lines.append(f"  {key}: {value}")
    else:
        lines.append("  (none)")

    lines.append("config:")
    config_yaml = yaml.safe_dump(run.config, sort_keys=False, default_flow_style=False)
    lines += ["  " + line for line in config_yaml.rstrip("\n").splitlines()]

    lines.append("timeseries:")
    if run.timeseries:
        rows = []
        for name, values in run.timeseries.items():
            ts_attrs = run.timeseries_attrs.get(name, {})
            rate = ts_attrs.get("sampling_rate_hz", ts_attrs.get("sampling_rate", float("nan")))
            rows.append([name, ts_attrs.get("units", ""), str(values.shape), f"{float(rate):g} Hz"])
        lines += _table(["name", "units", "shape", "rate"], rows)
    else:
        lines.append("  (none)")

    if run.arrays:
        lines.append("arrays:")
        rows = [
            [key, str(run.array_attrs.get(key, {}).get("units", "")), str(values.shape)]
            for key, values in run.arrays.items()
        ]
        lines += _table(["path", "units", "shape"], rows)

    lines.append("metrics:")
    if run.metrics:
        per_instance = n <= 8
        header = ["metric", "units", "mean", "min", "max"]
        if per_instance:
            header += [f"[{i}]" for i in range(n)]
        rows = []
        for name, values in run.metrics.items():
            values = np.asarray(values, dtype=float)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN metric
                stats = [np.nanmean(values), np.nanmin(values), np.nanmax(values)]
            row = [name, run.metric_units.get(name, "")] + [_fmt(v) for v in stats]
            if per_instance:
                if values.ndim == 1 and values.size == n:
                    row += [_fmt(v) for v in values]
                else:
                    row += ["-"] * n
            rows.append(row)
        lines += _table(header, rows)
    else:
        lines.append("  (none)")
    return "\n".join(lines) + "\n"
