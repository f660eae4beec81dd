"""Run one experiment file end to end: simulate, stream to HDF5, score, draw.

:func:`run_experiment` runs one experiment into one file.
:func:`simulate_runs` is the same machinery for several runs simulated
together as one batch (sweep points that differ only in model or controller
parameters and seeds): one loop over all their instances, one file per run,
each file exactly what the run simulated alone writes.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import closedloop
from closedloop.analysis.bursts import BURST_METRIC_INFO, BurstSettings, burst_metrics
from closedloop.analysis.plasticity import (
    BURST_EVENTS,
    BURST_FIELDS,
    PLASTICITY_METRIC_INFO,
    PLASTICITY_SERIES,
    PhasePlasticity,
    PlasticityReadout,
)
from closedloop.config import ResolvedExperiment
from closedloop.core.baseline import BASELINE_BLOCK_BYTES, UnstimulatedCopy
from closedloop.core.loop import trigger_source
from closedloop.core.random import rng_states
from closedloop.core.record import TRIGGER_SERIES
from closedloop.device.dose import stimulation_series, summary_metric_info
from closedloop.io import MEMORY_FORMAT, open_recorder, recorder_options
from closedloop.io.series import create_series, run_series, spike_events, state_series
from closedloop.io.spool import RowSpool
from closedloop.io.triggers import TRIGGER_EVENTS, TRIGGER_FIELDS, TriggerLog
from closedloop.metrics import (
    METRIC_INFO,
    TRIGGER_METRIC_INFO,
    StreamingPSD,
    metric_units,
    summarize,
    trigger_metrics,
)
from closedloop.sensing.chain import FEATURES

__all__ = [
    "RunOutcome",
    "RunSpec",
    "metrics_table",
    "run_experiment",
    "simulate_runs",
    "stimulation_summary",
]

# Units and description of every metric a run may write.
_INFO = {**METRIC_INFO, **TRIGGER_METRIC_INFO}


@dataclass
class RunOutcome:
    """What a finished run left behind."""

    path: Path
    figure: Path | None
    metrics: dict[str, np.ndarray]
    units: dict[str, str] = field(default_factory=dict)  #: metric name -> units
    #: The run read back from memory when it was simulated ``in_memory`` (no file).
    data: Any = None


@dataclass
class RunSpec:
    """One run's share of a simulation (see :func:`simulate_runs`).

    Attributes
    ----------
    exp : ResolvedExperiment
        The run's own validated experiment: its config, seed and controller
        are what its file records.
    path : Path
        The run's HDF5 file.
    attrs : dict
        Further root attributes for the file (e.g. a sweep's run id), set
        once the run is complete; a callable value is called then (e.g. for
        a wall time).
    """

    exp: ResolvedExperiment
    path: Path
    attrs: dict[str, Any] = field(default_factory=dict)


def run_experiment(
    exp: ResolvedExperiment,
    out_dir: str | Path,
    *,
    progress: bool = False,
    in_memory: bool = False,
) -> RunOutcome:
    """Run a resolved experiment and write ``<out_dir>/<name>.h5`` (and ``.png``).

    Parameters
    ----------
    exp : ResolvedExperiment
        From :func:`closedloop.config.load_config`.
    out_dir : str or Path
        Output directory (created).
    progress : bool
        Show a progress bar (tqdm) on standard error.
    in_memory : bool
        Write the run file into memory only (see :func:`simulate_runs`):
        ``out_dir`` then only names the run, nothing is written to it.

    Returns
    -------
    RunOutcome

    Raises
    ------
    closedloop.core.loop.ModelDivergedError
        After writing the file with status ``failed``.
    """
    path = Path(out_dir) / f"{exp.config.name}.h5"
    return simulate_runs(exp.loop, [RunSpec(exp, path)], progress=progress, in_memory=in_memory)[0]


def simulate_runs(
    loop: Any, runs: Sequence[RunSpec], *, progress: bool = False, in_memory: bool = False
) -> list[RunOutcome]:
    """Simulate runs together in one loop, writing one file per run.

    Parameters
    ----------
    loop : closedloop.core.loop.ClosedLoop
        The loop to run: its instances are the runs' instances, in order
        (run ``k`` owns the ``n_instances`` rows after those of runs
        ``0..k-1``). For a single run, the run's own ``exp.loop``.
    runs : sequence of RunSpec
        The runs. Everything but model parameters, controller parameters and
        seeds must be the same for all of them (durations, sensing, device,
        metrics and output settings are taken from the first).
    progress : bool
        Show a progress bar (tqdm) on standard error.
    in_memory : bool
        Write each run's file into memory
        (:class:`~closedloop.io.memory.MemoryRunRecorder`) instead of to its
        path, draw no figure, and return the run as
        :attr:`RunOutcome.data`: nothing touches the disk.

    Returns
    -------
    list of RunOutcome
        One per run, in order.

    Raises
    ------
    closedloop.core.loop.ModelDivergedError
        After writing every run's file with status ``failed``.
    """
    if not runs:
        raise ValueError("simulate_runs needs at least one run")
    cfg = runs[0].exp.config
    sizes = [r.exp.config.n_instances for r in runs]
    if sum(sizes) != loop.n:
        raise ValueError(f"the runs have {sum(sizes)} instances but the loop has {loop.n}")
    bounds = np.cumsum([0, *sizes])
    slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    model = loop.model
    n = loop.n
    sensing_rate = 1.0 / loop.sample_s
    control_rate = 1.0 / loop.control_period_s
    units = model.signal_units
    # A loop may simulate unstimulated copies itself (the Brian2 loop, in its
    # own network) and deliver their signal as "lfp_baseline"; otherwise an
    # unstimulated copy of the loop runs beside it, chunk by chunk.
    in_loop_baseline = loop.in_loop_baseline
    copy = None
    if cfg.output.record_baseline and not in_loop_baseline:
        copy = UnstimulatedCopy(loop, model.like())  # before reset: the configured parameters
    baseline = copy.model if copy is not None else None
    loop.reset()
    loop.warm_up(cfg.warmup_s)
    if copy is not None:
        copy.start()  # from the loop's warmed-up state
    # One spectrum per run: each run's metrics are computed on arrays of the
    # shape it has alone, so batching cannot change a bit of them.
    psd_stim = [StreamingPSD(size, sensing_rate, cfg.metrics.segment_s) for size in sizes]
    psd_base = (
        [StreamingPSD(size, sensing_rate, cfg.metrics.segment_s) for size in sizes]
        if baseline or in_loop_baseline
        else None
    )
    discard = int(round(cfg.metrics.discard_s * sensing_rate))
    seen = 0
    amp_sum = np.zeros(n)
    amp_count = 0
    # Burst metrics: the biomarker with stimulation and the same sensing chain
    # (same sensor-noise seeds) run over the no-stimulation signal, both at the
    # end of each control period. The threshold is a percentile of the whole
    # baseline: both are spooled to a temporary file and read back a few rows
    # at a time, so memory stays flat in run length.
    spp = loop.samples_per_period
    bio_stim = RowSpool(n, in_memory=in_memory)
    bio_base = RowSpool(n, in_memory=in_memory) if copy is not None or in_loop_baseline else None
    base_sensing = (
        loop.sensing.new_state(n, rng_states(loop.seeds.sensor)) if in_loop_baseline else None
    )
    bar = None
    _say_if_compiling(model)  # also without a bar: a log says why the start was slow
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=round(cfg.duration_s, 6), unit="sim s", desc=cfg.name, leave=False)

    # Slow state a model offers (e.g. the Epileptor's permittivity z), sampled
    # at the end of every recorded chunk on a regular grid.
    chunk_s = cfg.output.chunk_s
    observed = list(loop.observables())
    # Parameters a slow process may have changed (none without slow processes).
    modulated = model.modulatable if loop.slow else ()
    # Bursts asked for and the device's answers, as events/triggers, when the
    # controller triggers bursts or the device limits them.
    trigger_logs = None
    if loop.device.limits_triggers or getattr(loop.controller, "logs_triggers", False):
        trigger_logs = [TriggerLog(size, loop.control_period_s) for size in sizes]
    plasticity = _plasticity_readout(cfg, n, sensing_rate, loop.control_period_s)

    with contextlib.ExitStack() as stack:
        stack.callback(bio_stim.close)
        if bio_base is not None:
            stack.callback(bio_base.close)
        recorders = []
        for run in runs:
            rec = stack.enter_context(
                open_recorder(
                    MEMORY_FORMAT if in_memory else run.exp.config.output.format,
                    run.path,
                    config=run.exp.resolved_dict(),
                    seed=run.exp.config.seed,
                    n=run.exp.config.n_instances,
                    closedloop_version=closedloop.__version__,
                    **recorder_options(run.exp.config),
                )
            )
            recorders.append(rec)
            _create_datasets(
                rec,
                run.exp,
                loop,
                sensing_rate,
                control_rate,
                units,
                baseline if baseline is not None else (in_loop_baseline or None),
            )
            for name, (unit, rate, what) in loop.extra_timeseries().items():
                if name != "lfp_baseline":
                    rec.create_timeseries(name, units=unit, sampling_rate_hz=rate, description=what)
            for name in observed:
                unit = model.state_variables.get(name, "1")
                create_series(rec, state_series(name, unit, chunk_s, baseline=baseline is not None))
            for name in loop.record_spikes:
                events, fields, what = spike_events(name)
                rec.create_events(events, fields, description=what)
            for name, (fields, what) in loop.event_tables().items():
                rec.create_events(name, fields, description=what)
            if trigger_logs is not None:
                source = trigger_source(loop.controller, tuple(loop.sensing.features))[0]
                fields = dict(TRIGGER_FIELDS)
                source_units = FEATURES.get(source, "signal").replace("signal", units)
                fields["biomarker"] = ("f8", source_units)
                rec.create_events(
                    TRIGGER_EVENTS,
                    fields,
                    description=f"bursts asked for: time, instance, value of {source!r} that "
                    "fired each, delivered (1), refused by the device (0) or pending (-1)",
                )
            for key, value in loop.run_attributes().items():
                rec.set_attr(key, value)
            if plasticity is not None:
                rec.create_timeseries(
                    PLASTICITY_SERIES,
                    units="%",
                    sampling_rate_hz=1.0 / chunk_s,
                    description="MEP-like response change by the phase-dependent plasticity "
                    "readout, at the end of every chunk",
                )
                rec.create_events(
                    BURST_EVENTS,
                    BURST_FIELDS,
                    description="bursts the plasticity readout counted: onset, instance, phase "
                    "of the rhythm before it, the change it made",
                )
            rec.check_selection()

        def on_chunk(t0: float, data: dict[str, np.ndarray]) -> None:
            nonlocal seen, amp_count
            trig = [data.pop(key) for key in TRIGGER_SERIES if key in data]
            for rec, sl in zip(recorders, slices, strict=True):
                for key, values in data.items():
                    rec.append(key, values[sl])
            if trigger_logs is not None and trig:
                for rec, log, sl in zip(recorders, trigger_logs, slices, strict=True):
                    rec.append_events(TRIGGER_EVENTS, **log.feed(*(t[sl] for t in trig)))
            lfp = data["lfp"]
            m = lfp.shape[1]
            skip = max(0, min(m, discard - seen))
            for psd, sl in zip(psd_stim, slices, strict=True):
                psd.feed(lfp[sl, skip:])
            if in_loop_baseline and psd_base is not None:
                for psd, sl in zip(psd_base, slices, strict=True):
                    psd.feed(data["lfp_baseline"][sl, skip:])
            for name, columns in loop.drain_events().items():
                instance = np.asarray(columns["instance"])
                for rec, sl in zip(recorders, slices, strict=True):
                    keep = (instance >= sl.start) & (instance < sl.stop)
                    rec.append_events(
                        name,
                        **{k: np.asarray(v)[keep] for k, v in columns.items() if k != "instance"},
                        instance=instance[keep] - sl.start,
                    )
            if copy is not None and bio_base is not None and psd_base is not None:
                # The no-stimulation copy sees what the slow processes (a
                # drug's effect, say) set in the model during this chunk.
                for key in modulated:
                    copy.model.record[key] = model.record[key]
                # In blocks of a few MB: memory stays flat in the chunk length
                # (the loop and the spectrum are chunk invariant).
                for k, base, bio in copy.blocks(m // spp):
                    cut = max(0, min(base.shape[1], discard - seen - k * spp))
                    for rec, psd, sl in zip(recorders, psd_base, slices, strict=True):
                        rec.append("lfp_baseline", base[sl])
                        psd.feed(base[sl, cut:])
                    bio_base.append(bio)
            elif base_sensing is not None and bio_base is not None:
                block = max(1, BASELINE_BLOCK_BYTES // (8 * n))
                for a in range(0, m, block):
                    b = min(m, a + block)
                    raw_base = data["lfp_baseline"][:, a:b]
                    env = loop.sensing.process(base_sensing, raw_base)["envelope"]
                    ends = np.flatnonzero((seen + a + np.arange(b - a) + 1) % spp == 0)
                    bio_base.append(env[:, ends])
            bio_stim.append(data["biomarker"])
            seen += m
            if observed:
                # A last, shorter chunk would break the regular grid: left out.
                end = seen / sensing_rate
                if abs(end / chunk_s - round(end / chunk_s)) < 1e-9:
                    states = {f"state_{k}": v for k, v in loop.observables().items()}
                    if baseline is not None:
                        states.update(
                            (f"state_{k}_baseline", v) for k, v in baseline.observables().items()
                        )
                    for rec, sl in zip(recorders, slices, strict=True):
                        for key, value in states.items():
                            rec.append(key, value[sl, None])
            amp_sum[:] += data["amplitude"].sum(axis=1)
            amp_count += data["amplitude"].shape[1]
            if plasticity is not None:
                value = plasticity.feed(lfp, data["pulse_count"])
                bursts = plasticity.drain_events()
                for rec, sl in zip(recorders, slices, strict=True):
                    rec.append(PLASTICITY_SERIES, value[sl, None])
                    keep = (bursts["instance"] >= sl.start) & (bursts["instance"] < sl.stop)
                    columns = {k: v[keep] for k, v in bursts.items()}
                    columns["instance"] = columns["instance"] - sl.start
                    rec.append_events(BURST_EVENTS, **columns)

        def tick(t: float) -> None:
            if bar is not None:
                bar.update(round(t - bar.n, 6))

        def on_spikes(name: str, t: np.ndarray, instance: np.ndarray, neuron: np.ndarray) -> None:
            for rec, sl in zip(recorders, slices, strict=True):
                keep = (instance >= sl.start) & (instance < sl.stop)
                rec.append_events(
                    f"spikes_{name}",
                    time_s=t[keep],
                    instance=instance[keep] - sl.start,
                    neuron=neuron[keep],
                )

        try:
            totals = loop.run(
                cfg.duration_s,
                chunk_s=cfg.output.chunk_s,
                on_chunk=on_chunk,
                progress=tick,
                on_spikes=on_spikes if loop.record_spikes else None,
            )
        finally:
            if bar is not None:
                bar.close()
        ref = cfg.metrics.reference
        extra = loop.extra_metrics()
        all_metrics = []
        all_units = []
        env_units = f"({units})^2" if loop.sensing.envelope == "power" else units
        discard_periods = int(round(cfg.metrics.discard_s * control_rate))
        for k, (rec, sl) in enumerate(zip(recorders, slices, strict=True)):
            metrics = summarize(
                psd_stim[k],
                psd_base[k] if psd_base is not None else None,
                {key: value[sl] for key, value in totals.items()},
                amp_sum[sl] / max(amp_count, 1),
                loop.time_s,
                loop.device,
                ref.model_dump(),
                cfg.metrics.band_hz,
            )
            if trigger_logs is not None:
                rec.append_events(TRIGGER_EVENTS, **trigger_logs[k].finish())
                metrics.update(
                    trigger_metrics(
                        {key: value[sl] for key, value in totals.items()},
                        loop.time_s,
                        loop.device.day_length_s,
                    )
                )
            info = {k2: (metric_units(k2, units), v[1]) for k2, v in METRIC_INFO.items()}
            if bio_base is not None and bio_base.columns > discard_periods:
                b = cfg.metrics.bursts
                found, hist = _spooled_burst_metrics(
                    bio_stim,
                    bio_base,
                    sl,
                    discard_periods,
                    control_rate,
                    BurstSettings(b.percentile, b.min_duration_s, b.long_burst_s),
                )
                metrics.update(found)
                info.update(
                    (k2, (v[0].replace("{u}", env_units), v[1]))
                    for k2, v in BURST_METRIC_INFO.items()
                )
                rec.write_array(
                    "bursts/duration_edges_s", hist["duration_edges_s"], units="s", dims="edge"
                )
                for key in ("duration_counts", "duration_counts_baseline"):
                    rec.write_array(f"bursts/{key}", hist[key], units="1", dims="instance,bin")
            info.update(TRIGGER_METRIC_INFO)
            info.update(summary_metric_info(getattr(loop.device, "modality", "dbs")))
            if plasticity is not None:
                metrics.update((k2, v[sl]) for k2, v in plasticity.metrics().items())
                info.update(PLASTICITY_METRIC_INFO)
            for key, (value, unit, what) in extra.items():
                metrics[key] = np.asarray(value)[sl]
                info[key] = (unit, what)
            all_metrics.append(metrics)
            all_units.append({key: info[key][0] for key in metrics})
            rec.write_metrics(
                metrics,
                {key: info[key][0] for key in metrics},
                {key: info[key][1] for key in metrics},
            )
            rec.write_array(
                "spectra/frequency", psd_stim[k].frequency_hz, units="Hz", dims="frequency"
            )
            rec.write_array(
                "spectra/psd_stim",
                psd_stim[k].psd(),
                units=f"({units})^2/Hz",
                dims="instance,frequency",
            )
            if psd_base is not None:
                rec.write_array(
                    "spectra/psd_baseline",
                    psd_base[k].psd(),
                    units=f"({units})^2/Hz",
                    dims="instance,frequency",
                )
            for key, value in runs[k].attrs.items():
                rec.set_attr(key, value() if callable(value) else value)
    outcomes = []
    for run, rec, metrics, run_units in zip(runs, recorders, all_metrics, all_units, strict=True):
        figure = None
        if run.exp.config.output.figure and not in_memory:
            from closedloop.plotting.run import save_run_figure

            figure = save_run_figure(run.path)
        outcomes.append(
            RunOutcome(
                path=run.path,
                figure=figure,
                metrics=metrics,
                units=run_units,
                data=rec.run_data() if in_memory else None,
            )
        )
    return outcomes


def _spooled_burst_metrics(
    stim: RowSpool,
    base: RowSpool,
    rows: slice,
    skip: int,
    rate_hz: float,
    settings: BurstSettings,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """:func:`burst_metrics` of rows ``rows`` (columns from ``skip``), a block of rows at a time.

    Every burst metric is computed row by row (the threshold is each
    instance's own percentile), so the blocks give the values of one call.
    """
    parts = [
        burst_metrics(stim.rows(a, b)[:, skip:], base.rows(a, b)[:, skip:], rate_hz, settings)
        for a, b in base.row_blocks(rows.start, rows.stop)
    ]
    metrics = {key: np.concatenate([p[0][key] for p in parts]) for key in parts[0][0]}
    hist = {key: np.concatenate([p[1][key] for p in parts]) for key in parts[0][1]}
    hist["duration_edges_s"] = parts[0][1]["duration_edges_s"]
    return metrics, hist


def _plasticity_readout(
    cfg: Any, n: int, rate_hz: float, period_s: float
) -> PlasticityReadout | None:
    """The readout of the ``plasticity:`` block, or None without one."""
    block = cfg.plasticity
    if block is None:
        return None
    rule = PhasePlasticity(block.preferred_phase_rad, block.kappa, block.gain_pct, block.tau_s)
    lo, hi = cfg.metrics.band_hz
    freq = block.frequency_hz or 0.5 * (lo + hi)
    return PlasticityReadout(rule, n, rate_hz, period_s, freq, block.max_gap_s)


def _create_datasets(
    rec: Any,
    exp: ResolvedExperiment,
    loop: Any,
    sensing_rate: float,
    control_rate: float,
    units: str,
    baseline: Any,
) -> None:
    """Root attributes and the empty time series of one run's file."""
    cfg = exp.config
    rec.set_attr("thresholds", exp.loop.controller.thresholds())
    rec.set_attr("band_hz", list(cfg.metrics.band_hz))
    create_series(
        rec,
        run_series(
            signal_units=units,
            signal_description=loop.model.signal_description,
            sensing_rate_hz=sensing_rate,
            control_rate_hz=control_rate,
            envelope=loop.sensing.envelope,
            band_hz=loop.sensing.band_hz,
            features={name: FEATURES[name] for name in loop.sensing.features},
            baseline=baseline is not None,
            stimulation=stimulation_series(getattr(loop.device, "modality", "dbs")),
        ),
    )


def _say_if_compiling(model: Any) -> None:
    # The first run on a machine compiles the model's kernels before the bar
    # moves: say so, so that a silent wait does not look like a hang.
    from closedloop.core.kernel_cache import (
        FIRST_COMPILE_GENERAL_S,
        FIRST_COMPILE_S,
        kernels_cached,
    )
    from closedloop.core.model import NumbaModel

    module = type(model).__module__.rsplit(".", 1)[-1]
    if isinstance(model, NumbaModel) and not kernels_cached(module):
        lo, hi = FIRST_COMPILE_S
        glo, ghi = FIRST_COMPILE_GENERAL_S
        print(
            f"compiling the {model.name} kernels for this machine (first run after an "
            f"install or an upgrade; usually {lo}-{hi} s, {glo}-{ghi} s with TMS, tES or "
            "extra sensing features; cached afterwards)",
            file=sys.stderr,
            flush=True,
        )


def metrics_table(metrics: dict[str, Any], units: dict[str, str] | None = None) -> str:
    """Plain-text table of metrics: mean, min and max over instances.

    ``units`` maps metric names to units (a run's :attr:`RunOutcome.units`);
    without it the generic units of the metric tables are shown.
    """
    generic = {k: v[0] for k, v in {**_INFO, **BURST_METRIC_INFO}.items()}
    units = {**generic, **(units or {})}
    width = max([32, *(len(k) for k in metrics)])
    lines = [f"{'metric':<{width}} {'units':<14} {'mean':>12} {'min':>12} {'max':>12}"]
    for key, values in metrics.items():
        arr = np.atleast_1d(np.asarray(values, dtype=float))
        unit = units.get(key, "")
        if np.isfinite(arr).any():
            stats = f"{np.nanmean(arr):>12.4g} {np.nanmin(arr):>12.4g} {np.nanmax(arr):>12.4g}"
        else:
            stats = f"{'nan':>12} {'nan':>12} {'nan':>12}"
        lines.append(f"{key:<{width}} {unit:<14} {stats}")
    return "\n".join(lines)


def stimulation_summary(metrics: dict[str, Any]) -> str:
    """Two plain sentences: how much stimulation was given and what it removed.

    Means over instances of ``time_on_fraction``, ``teed_relative``,
    ``n_switches`` and, when the run has them, ``band_power_reduction`` and the
    long-burst metrics (``long_burst_time_fraction`` with and without
    stimulation, ``long_burst_time_reduction``).
    """

    def mean(key: str) -> float:
        arr = np.asarray(metrics.get(key, np.nan), dtype=float)
        return float(np.nanmean(arr)) if np.isfinite(arr).any() else float("nan")

    lines = [
        f"stimulation: on {mean('time_on_fraction'):.0%} of the time, energy (TEED) "
        f"{mean('teed_relative'):.0%} of continuous stimulation at the reference, "
        f"{mean('n_switches'):.3g} switches"
    ]
    effect = []
    if "band_power_reduction" in metrics:
        effect.append(f"band power reduced by {mean('band_power_reduction'):.0%}")
    if "long_burst_time_reduction" in metrics:
        effect.append(
            f"time in long bursts {mean('long_burst_time_fraction_baseline'):.1%} without "
            f"stimulation, {mean('long_burst_time_fraction'):.1%} with "
            f"(long-burst reduction {mean('long_burst_time_reduction'):.0%})"
        )
    if effect:
        lines.append("effect: " + "; ".join(effect))
    return "\n".join(lines)
