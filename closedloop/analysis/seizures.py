"""Seizures in recorded runs: intervals, durations, detection latency, false detections.

Offline analysis of run files (see :mod:`closedloop.io.layout`): it may look
at the whole record, unlike the causal sensing chain a device runs.

Seizure criterion
-----------------
A seizure is a stretch of signal where a windowed statistic crosses a
threshold (:func:`seizure_intervals`):

1. the statistic, over a centred window of ``window_s`` seconds: the mean of
   the signal (``statistic="mean"``) or its line length per second, the mean
   of ``|x[k] - x[k-1]| * fs`` (``statistic="line_length"``, Esteller et al.
   2001);
2. samples where it is below (``direction="below"``) or above the threshold
   are ictal;
3. ictal stretches separated by less than ``merge_gap_s`` are merged, and
   stretches shorter than ``min_duration_s`` dropped;
4. a stretch that touches the start or end of the record is incomplete and
   left out (its duration is unknown).

The defaults (:data:`EPILEPTOR_CRITERION`) follow the Epileptor's field
potential ``-x1 + x2`` (:mod:`closedloop.models.epileptor`): a seizure is
the negative DC shift during which the fast subsystem discharges (Jirsa et
al. 2014): the 1 s mean of the signal falls below 0 at onset (interictal
level about +0.8, ictal about -1.2) and rises back above it at offset.
Interictal spikes are positive-going and do not count.

Detections
----------
:func:`detection_times` finds when a run's controller detected: for the
``responsive`` controller it replays the controller on the features the run
recorded (exactly what it saw, so exactly its decisions); for any other
controller, the end of the control period before the delivered amplitude rose
from zero (the period whose command switched it on, exact for zero latency).
Detections are counted per trigger, as responsive neurostimulators log them
(Sun & Morrell 2014). The
detection latency of a seizure is the time of the first detection at or
after ``onset - tolerance_s`` and before its offset, minus the onset; a
detection is false when it falls in no seizure widened by ``tolerance_s``
on either side.

References
----------
Esteller R, Echauz J, Tcheng T, Litt B, Pless B (2001) Line length: an
efficient feature for seizure onset detection. Proc 23rd Annu Int Conf IEEE
EMBS 2:1707-1710.
Jirsa VK, Stacey WC, Quilichini PP, Ivanov AI, Bernard C (2014) On the nature
of seizure dynamics. Brain 137:2210-2230.
Sun FT, Morrell MJ (2014) The RNS System: responsive cortical stimulation for
the treatment of refractory partial epilepsy. Expert Rev Med Devices
11:563-572.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import uniform_filter1d

from closedloop.analysis.replay import replay_controller
from closedloop.controllers.responsive import Responsive
from closedloop.io import RunData, load_run

__all__ = [
    "ABORTED_FRACTION",
    "EPILEPTOR_CRITERION",
    "SEIZURE_METRIC_INFO",
    "detection_latencies",
    "detection_times",
    "false_detections",
    "plot_seizures",
    "save_seizures_figure",
    "seizure_durations",
    "seizure_intervals",
    "seizure_metrics",
    "seizure_summary",
]

#: Seizure criterion for the Epileptor's field potential (see the module notes).
EPILEPTOR_CRITERION: dict[str, Any] = {
    "statistic": "mean",
    "direction": "below",
    "threshold": 0.0,
    "window_s": 1.0,
    "merge_gap_s": 1.0,
    "min_duration_s": 1.0,
}

#: Metrics of :func:`seizure_metrics`: name to (units, description).
SEIZURE_METRIC_INFO: dict[str, tuple[str, str]] = {
    "mean_seizure_duration_stim_s": ("s", "mean duration of complete seizures, stimulated"),
    "mean_seizure_duration_baseline_s": ("s", "mean duration of complete seizures, baseline"),
    "n_seizures_stim": ("1", "complete seizures with stimulation"),
    "n_seizures_baseline": ("1", "complete seizures without stimulation, same seed"),
    "seizure_fraction_stim": ("1", "fraction of the time in seizure, stimulated"),
    "seizure_fraction_baseline": ("1", "fraction of the time in seizure, baseline"),
    "mean_detection_latency_s": ("s", "mean of first detection minus onset, per seizure"),
    "n_missed_seizures": ("1", "complete stimulated seizures with no detection"),
    "n_false_detections": ("1", "detections outside every seizure"),
    "n_detections": ("1", "detections (triggers), inside seizures or not"),
    "n_seizures_aborted": (
        "1",
        "detected stimulated seizures shorter than half the mean baseline seizure",
    ),
}

#: A detected seizure counts as aborted when it lasts less than this fraction
#: of the mean baseline seizure (chosen here: RNS trials call a seizure
#: aborted when stimulation ends it early, Sun & Morrell 2014; the model has
#: no other record of what the seizure would have done).
ABORTED_FRACTION = 0.5

_STATISTICS = ("mean", "line_length")
_DIRECTIONS = ("below", "above")


def seizure_intervals(
    signal: np.ndarray,
    fs_hz: float,
    *,
    statistic: str = "mean",
    direction: str = "below",
    threshold: float = 0.0,
    window_s: float = 1.0,
    merge_gap_s: float = 1.0,
    min_duration_s: float = 1.0,
    drop_incomplete: bool = True,
) -> np.ndarray:
    """Find seizures in one signal (criterion in the module notes).

    Parameters
    ----------
    signal : ndarray, shape (T,)
        The signal, sampled at ``fs_hz``; sample ``k`` at ``k / fs_hz`` s.
    fs_hz : float
        Sampling rate, Hz.
    statistic : {"mean", "line_length"}
        Windowed statistic: the mean (signal units) or the line length per
        second (signal units / s).
    direction : {"below", "above"}
        Ictal where the statistic is below, or above, ``threshold``.
    threshold : float
        In the statistic's units.
    window_s : float
        Centred window of the statistic, s.
    merge_gap_s : float
        Ictal stretches closer than this are one seizure, s.
    min_duration_s : float
        Shorter stretches are not seizures, s.
    drop_incomplete : bool
        Leave out seizures that touch the start or end of the record.

    Returns
    -------
    ndarray, shape (k, 2)
        Onset and offset of each seizure, s, in time order.

    Raises
    ------
    ValueError
        For an unknown statistic or direction, a non-positive rate or
        window, or a signal that is not one-dimensional.
    """
    x = np.asarray(signal, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"signal must be one-dimensional, got shape {x.shape}")
    if statistic not in _STATISTICS:
        raise ValueError(f"statistic must be one of {_STATISTICS}, got {statistic!r}")
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be one of {_DIRECTIONS}, got {direction!r}")
    if not fs_hz > 0 or not window_s > 0:
        raise ValueError(f"fs_hz and window_s must be positive, got {fs_hz!r}, {window_s!r}")
    if x.size < 2:
        return np.zeros((0, 2))
    width = max(1, int(round(window_s * fs_hz)))
    if statistic == "mean":
        stat = uniform_filter1d(x, width, mode="nearest")
    else:
        steps = np.abs(np.diff(x, prepend=x[0])) * fs_hz
        steps[0] = steps[1]  # the first sample has no predecessor
        stat = uniform_filter1d(steps, width, mode="nearest")
    ictal = stat < threshold if direction == "below" else stat > threshold
    edges = np.diff(ictal.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)  # one past the last ictal sample
    if starts.size == 0:
        return np.zeros((0, 2))
    # Merge stretches separated by short gaps, then drop short ones.
    gap = int(round(merge_gap_s * fs_hz))
    keep = np.ones(starts.size, dtype=bool)
    keep[1:] = starts[1:] - stops[:-1] >= gap
    merged_starts = starts[keep]
    merged_stops = stops[np.append(keep[1:], True)]
    long_enough = merged_stops - merged_starts >= int(round(min_duration_s * fs_hz))
    merged_starts = merged_starts[long_enough]
    merged_stops = merged_stops[long_enough]
    if drop_incomplete:
        whole = (merged_starts > 0) & (merged_stops < x.size)
        merged_starts = merged_starts[whole]
        merged_stops = merged_stops[whole]
    return np.column_stack([merged_starts, merged_stops]) / fs_hz


def seizure_durations(intervals: np.ndarray) -> np.ndarray:
    """Durations of seizures, s.

    Parameters
    ----------
    intervals : ndarray, shape (k, 2)
        From :func:`seizure_intervals`.

    Returns
    -------
    ndarray, shape (k,)
        Offset minus onset, s.
    """
    iv = np.asarray(intervals, dtype=float).reshape(-1, 2)
    return iv[:, 1] - iv[:, 0]


def detection_latencies(
    intervals: np.ndarray, detections: np.ndarray, tolerance_s: float = 1.0
) -> np.ndarray:
    """Detection latency of each seizure, s (NaN where the seizure was missed).

    Parameters
    ----------
    intervals : ndarray, shape (k, 2)
        Seizure onsets and offsets, s.
    detections : ndarray, shape (m,)
        Detection times, s.
    tolerance_s : float
        Detections up to this long before an onset count for that seizure
        (the criterion's onset is only as precise as its window).

    Returns
    -------
    ndarray, shape (k,)
        First detection in ``[onset - tolerance_s, offset)`` minus the onset.
    """
    iv = np.asarray(intervals, dtype=float).reshape(-1, 2)
    det = np.sort(np.asarray(detections, dtype=float).ravel())
    out = np.full(iv.shape[0], np.nan)
    for k, (onset, offset) in enumerate(iv):
        inside = det[(det >= onset - tolerance_s) & (det < offset)]
        if inside.size:
            out[k] = inside[0] - onset
    return out


def false_detections(
    intervals: np.ndarray, detections: np.ndarray, tolerance_s: float = 1.0
) -> np.ndarray:
    """Detections outside every seizure, s.

    Parameters
    ----------
    intervals : ndarray, shape (k, 2)
        Seizure onsets and offsets, s (incomplete seizures at the record's
        edges should be included here, or detections in them count as false).
    detections : ndarray, shape (m,)
        Detection times, s.
    tolerance_s : float
        Seizures are widened by this much on either side.

    Returns
    -------
    ndarray
        The detection times that fall in no widened seizure.
    """
    iv = np.asarray(intervals, dtype=float).reshape(-1, 2)
    det = np.asarray(detections, dtype=float).ravel()
    inside = np.zeros(det.size, dtype=bool)
    for onset, offset in iv:
        inside |= (det >= onset - tolerance_s) & (det <= offset + tolerance_s)
    return det[~inside]


def _run(run_or_path: RunData | str | Path) -> RunData:
    return run_or_path if isinstance(run_or_path, RunData) else load_run(run_or_path)


def _rate(run: RunData, name: str) -> float:
    return float(run.timeseries_attrs[name]["sampling_rate_hz"])


def detection_times(run_or_path: RunData | str | Path, instance: int = 0) -> np.ndarray:
    """When the run's controller detected, s (see the module notes).

    Parameters
    ----------
    run_or_path : RunData or str or pathlib.Path
        A run file, or its contents.
    instance : int
        Instance (batch index).

    Returns
    -------
    ndarray
        Detection times, s: the end of the control period whose features
        triggered a burst (the burst follows after ``control.latency_s``).
    """
    return _all_detections(_run(run_or_path))[instance]


def _all_detections(run: RunData) -> list[np.ndarray]:
    """Detection times of every instance."""
    controller = run.config.get("controller", {}) if isinstance(run.config, dict) else {}
    if controller.get("name") == "responsive":
        return _replay_responsive(run, dict(controller.get("params", {})))
    amp = np.asarray(run.timeseries["amplitude"])
    rate = _rate(run, "amplitude")
    on = amp > 0
    rising = on & ~np.concatenate([np.zeros((on.shape[0], 1), dtype=bool), on[:, :-1]], axis=1)
    # The amplitude sampled at the end of period k (time (k + 1) / rate)
    # follows the command issued at the end of period k - 1 (time k / rate).
    return [np.flatnonzero(row) / rate for row in rising]


def _replay_responsive(run: RunData, params: Mapping[str, Any]) -> list[np.ndarray]:
    """Detections of every instance, from the features the run recorded."""
    controller = Responsive(**params)
    feature = controller.feature
    name = "biomarker" if feature == "biomarker" else f"feature_{feature}"
    if name not in run.timeseries:
        raise ValueError(f"{run.path}: no timeseries/{name} to replay the responsive detector on")
    hits: list[list[float]] = [[] for _ in range(run.n_instances)]
    for step in replay_controller(run, controller):
        for i in np.flatnonzero(controller.triggered_):
            hits[i].append(step.t_s)
    return [np.asarray(h, dtype=float) for h in hits]


def seizure_summary(
    run_or_path: RunData | str | Path,
    instance: int = 0,
    *,
    criterion: Mapping[str, Any] | None = None,
    tolerance_s: float = 1.0,
) -> dict[str, Any]:
    """Seizures with and without stimulation in one run, and how they were detected.

    Parameters
    ----------
    run_or_path : RunData or str or pathlib.Path
        A run file with ``timeseries/lfp`` and ``timeseries/lfp_baseline``
        (the same seed without stimulation).
    instance : int
        Instance (batch index).
    criterion : mapping, optional
        Keyword arguments of :func:`seizure_intervals`; default
        :data:`EPILEPTOR_CRITERION`.
    tolerance_s : float
        See :func:`detection_latencies` and :func:`false_detections`.

    Returns
    -------
    dict
        ``intervals_stim`` and ``intervals_baseline`` (complete seizures,
        shape (k, 2), s), ``all_intervals_stim`` and ``all_intervals_baseline``
        (incomplete ones at the record's edges too), ``durations_stim_s`` and
        ``durations_baseline_s``, their counts ``n_seizures_stim`` and
        ``n_seizures_baseline`` and means ``mean_duration_stim_s`` and
        ``mean_duration_baseline_s`` (NaN without seizures), ``seizure_fraction_stim`` and
        ``seizure_fraction_baseline`` (fraction of the record in seizures,
        complete or not), ``detections_s``, ``latencies_s`` (per complete
        stimulated seizure, NaN if missed), ``mean_latency_s``,
        ``n_missed``, ``false_detections_s`` and ``n_false_detections``,
        ``n_detections`` and ``n_seizures_aborted`` (detected complete
        stimulated seizures shorter than :data:`ABORTED_FRACTION` of the mean
        baseline seizure; 0 when the baseline has none).
    """
    run = _run(run_or_path)
    return _summary(run, instance, criterion, tolerance_s, _all_detections(run)[instance])


def _summary(
    run: RunData,
    instance: int,
    criterion: Mapping[str, Any] | None,
    tolerance_s: float,
    detections: np.ndarray,
) -> dict[str, Any]:
    for name in ("lfp", "lfp_baseline"):
        if name not in run.timeseries:
            raise ValueError(
                f"{run.path}: no timeseries/{name}; run with output.record_baseline: true"
            )
    crit = dict(EPILEPTOR_CRITERION if criterion is None else criterion)
    fs = _rate(run, "lfp")
    out: dict[str, Any] = {}
    for key, name in (("stim", "lfp"), ("baseline", "lfp_baseline")):
        x = run.timeseries[name][instance]
        complete = seizure_intervals(x, fs, **{**crit, "drop_incomplete": True})
        every = seizure_intervals(x, fs, **{**crit, "drop_incomplete": False})
        durations = seizure_durations(complete)
        out[f"intervals_{key}"] = complete
        out[f"all_intervals_{key}"] = every
        out[f"durations_{key}_s"] = durations
        out[f"mean_duration_{key}_s"] = float(durations.mean()) if durations.size else np.nan
        out[f"n_seizures_{key}"] = int(durations.size)
        out[f"seizure_fraction_{key}"] = float(seizure_durations(every).sum() * fs / x.size)
    latencies = detection_latencies(out["intervals_stim"], detections, tolerance_s)
    false = false_detections(out["all_intervals_stim"], detections, tolerance_s)
    out["detections_s"] = detections
    out["latencies_s"] = latencies
    out["mean_latency_s"] = float(np.nanmean(latencies)) if np.isfinite(latencies).any() else np.nan
    out["n_missed"] = int(np.isnan(latencies).sum())
    out["false_detections_s"] = false
    out["n_false_detections"] = int(false.size)
    out["n_detections"] = int(np.asarray(detections).size)
    base_mean = out["mean_duration_baseline_s"]
    short = (
        out["durations_stim_s"] < ABORTED_FRACTION * base_mean
        if np.isfinite(base_mean)
        else np.zeros(out["durations_stim_s"].shape, dtype=bool)
    )
    out["n_seizures_aborted"] = int((np.isfinite(latencies) & short).sum())
    return out


def seizure_metrics(
    run_or_path: RunData | str | Path,
    *,
    criterion: Mapping[str, Any] | None = None,
    tolerance_s: float = 1.0,
) -> dict[str, np.ndarray]:
    """The numbers of :func:`seizure_summary` for every instance, as run metrics.

    Parameters
    ----------
    run_or_path : RunData or str or pathlib.Path
        A run file, or its contents.
    criterion : mapping, optional
        Keyword arguments of :func:`seizure_intervals`; default
        :data:`EPILEPTOR_CRITERION`.
    tolerance_s : float
        See :func:`seizure_summary`.

    Returns
    -------
    dict of str to ndarray
        Each of :data:`SEIZURE_METRIC_INFO`, shape ``(n,)``.
    """
    run = _run(run_or_path)
    keys = {
        "mean_seizure_duration_stim_s": "mean_duration_stim_s",
        "mean_seizure_duration_baseline_s": "mean_duration_baseline_s",
        "n_seizures_stim": "n_seizures_stim",
        "n_seizures_baseline": "n_seizures_baseline",
        "seizure_fraction_stim": "seizure_fraction_stim",
        "seizure_fraction_baseline": "seizure_fraction_baseline",
        "mean_detection_latency_s": "mean_latency_s",
        "n_missed_seizures": "n_missed",
        "n_false_detections": "n_false_detections",
        "n_detections": "n_detections",
        "n_seizures_aborted": "n_seizures_aborted",
    }
    out = {name: np.empty(run.n_instances) for name in keys}
    detections = _all_detections(run)
    for i in range(run.n_instances):
        summary = _summary(run, i, criterion, tolerance_s, detections[i])
        for name, key in keys.items():
            out[name][i] = summary[key]
    return out


def plot_seizures(
    run_or_path: RunData | str | Path,
    *,
    instance: int = 0,
    criterion: Mapping[str, Any] | None = None,
    tolerance_s: float = 1.0,
    fig: Any = None,
) -> Any:
    """Draw seizures with and without stimulation, and the detections; save nothing.

    Panels: (a) the LFP without stimulation (``timeseries/lfp_baseline``) and
    (b) with it (``timeseries/lfp``), seizures shaded, detections marked
    and the delivered amplitude drawn under (b); (c) every complete seizure's
    duration without and with stimulation, with their means; (d) the slow
    permittivity ``z`` when the file holds ``timeseries/state_z`` (and
    ``state_z_baseline``), between (b) and (c).

    Parameters
    ----------
    run_or_path : RunData or str or pathlib.Path
        A run file, or its contents.
    instance : int
        Instance (batch index) to draw.
    criterion : mapping, optional
        Keyword arguments of :func:`seizure_intervals`; default
        :data:`EPILEPTOR_CRITERION`.
    tolerance_s : float
        See :func:`seizure_summary`.
    fig : matplotlib.figure.Figure or SubFigure, optional
        Where to draw (empty); default a new figure, 11 in wide.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on (the top-level one when ``fig`` is a subfigure);
        :func:`save_seizures_figure` saves it.
    """
    from closedloop.plotting.figures import figure_for, root_figure

    run = _run(run_or_path)
    n = run.n_instances
    if not 0 <= instance < n:
        raise IndexError(f"instance {instance} out of range: {run.path} has {n} instance(s)")
    summary = seizure_summary(run, instance, criterion=criterion, tolerance_s=tolerance_s)
    has_z = "state_z" in run.timeseries
    fig = figure_for(fig, (11, 10 if has_z else 8.5))
    rows = 4 if has_z else 3
    ax_base = fig.add_subplot(rows, 1, 1)
    ax_stim = fig.add_subplot(rows, 1, 2, sharex=ax_base, sharey=ax_base)
    t = run.time("lfp")
    units = str(run.timeseries_attrs["lfp"].get("units", ""))
    ylabel = "LFP" if units in ("", "1") else f"LFP ({units})"
    for ax, name, key, title in (
        (ax_base, "lfp_baseline", "baseline", "(a) without stimulation"),
        (ax_stim, "lfp", "stim", "(b) responsive stimulation, same seed"),
    ):
        ax.plot(t, run.timeseries[name][instance], color="C0", lw=0.4)
        for onset, offset in summary[f"all_intervals_{key}"]:
            ax.axvspan(onset, offset, color="C3", alpha=0.15, lw=0)
        mean = summary[f"mean_duration_{key}_s"]
        ax.set_title(
            f"{title}: {summary[f'n_seizures_{key}']} complete seizures, mean "
            f"{mean:.3g} s, {100 * summary[f'seizure_fraction_{key}']:.0f}% of the time "
            "in seizure (shaded)",
            loc="left",
            fontsize=10,
        )
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.25)
    both = np.concatenate([run.timeseries[k][instance] for k in ("lfp", "lfp_baseline")])
    lo, hi = float(np.nanmin(both)), float(np.nanmax(both))
    span = hi - lo if hi > lo else 1.0
    ax_base.set_ylim(lo - 0.05 * span, hi + 0.35 * span)  # room for the markers and legend
    detections = summary["detections_s"]
    marker_y = hi + 0.12 * span
    if detections.size:
        ax_stim.plot(
            detections,
            np.full(detections.size, marker_y),
            "v",
            color="k",
            ms=4,
            label=f"detection ({detections.size})",
        )
        false = summary["false_detections_s"]
        if false.size:
            ax_stim.plot(
                false,
                np.full(false.size, marker_y),
                "v",
                color="C1",
                ms=6,
                label=f"false detection ({false.size})",
            )
        ax_stim.legend(loc="upper right", fontsize=8, ncol=2)
    if "amplitude" in run.timeseries:
        amp_ax = ax_stim.twinx()
        amp_ax.plot(
            run.time("amplitude"), run.timeseries["amplitude"][instance], color="C3", lw=0.6
        )
        amp_ax.set_ylabel("amplitude (mA)", color="C3")
        top_amp = float(np.nanmax(run.timeseries["amplitude"][instance]))
        amp_ax.set_ylim(0, 4 * top_amp if top_amp > 0 else 1)  # keep bursts below the LFP
    ax_stim.tick_params(labelbottom=not has_z)
    ax_base.tick_params(labelbottom=False)
    if has_z:
        ax_z = fig.add_subplot(rows, 1, 3, sharex=ax_base)
        ax_z.plot(
            run.time("state_z"),
            run.timeseries["state_z"][instance],
            color="C2",
            lw=0.8,
            label="with stimulation",
        )
        if "state_z_baseline" in run.timeseries:
            ax_z.plot(
                run.time("state_z_baseline"),
                run.timeseries["state_z_baseline"][instance],
                color="0.5",
                lw=0.8,
                label="without",
            )
        ax_z.set_title("(c) slow permittivity z", loc="left", fontsize=10)
        ax_z.legend(loc="upper right", fontsize=8)
        ax_z.grid(True, alpha=0.25)
    (ax_z if has_z else ax_stim).set_xlabel("time (s)")
    ax_dur = fig.add_subplot(rows, 1, rows)
    _plot_durations(ax_dur, summary, "(d)" if has_z else "(c)")
    latency = summary["mean_latency_s"]
    fig.suptitle(
        f"seizures with and without responsive stimulation    instance {instance}\n"
        f"mean detection latency {latency:.2g} s, {summary['n_missed']} missed, "
        f"{summary['n_false_detections']} false detections",
        fontsize=11,
    )
    return root_figure(fig)


def save_seizures_figure(
    run_or_path: RunData | str | Path, out: str | Path | None = None, **kwargs: Any
) -> Path:
    """Draw :func:`plot_seizures` and write it as a PNG (what ``closedloop plot`` does).

    Parameters
    ----------
    run_or_path : RunData or str or pathlib.Path
        A run file, or its contents.
    out : str or pathlib.Path, optional
        PNG to write; default ``<run>_seizures.png`` beside the run file.
    **kwargs
        Passed to :func:`plot_seizures`.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    from closedloop.plotting.figures import save_run_plot

    return save_run_plot(plot_seizures, run_or_path, out, "_seizures.png", **kwargs)


def _plot_durations(ax: Any, summary: Mapping[str, Any], letter: str) -> None:
    rng = np.random.default_rng(0)  # jitter only, for overlapping points
    for x, key in ((0, "baseline"), (1, "stim")):
        d = summary[f"durations_{key}_s"]
        if d.size:
            ax.plot(x + rng.uniform(-0.12, 0.12, d.size), d, "o", color=f"C{x}", alpha=0.6, ms=4)
            ax.hlines(d.mean(), x - 0.25, x + 0.25, color="k", lw=2)
            ax.annotate(
                f"mean {d.mean():.3g} s (n = {d.size})",
                (x + 0.28, d.mean()),
                va="center",
                fontsize=9,
            )
        else:
            ax.annotate(
                "no complete seizure",
                (x, 0.5),
                ha="center",
                fontsize=9,
                xycoords=("data", "axes fraction"),
            )
    ax.set_xticks([0, 1], ["without stimulation", "with responsive stimulation"])
    ax.set_xlim(-0.6, 1.9)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("seizure duration (s)")
    ax.set_title(f"{letter} duration of every complete seizure", loc="left", fontsize=10)
    ax.grid(True, axis="y", alpha=0.25)
