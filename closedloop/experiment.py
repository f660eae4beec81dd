"""Run one experiment file end to end: simulate, stream to HDF5, score, draw."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import closedloop
from closedloop.config import ResolvedExperiment
from closedloop.loop import summarize
from closedloop.metrics import METRIC_INFO, StreamingPSD
from closedloop.recording import RunRecorder

__all__ = ["RunOutcome", "metrics_table", "run_experiment"]


@dataclass
class RunOutcome:
    """What a finished run left behind."""

    path: Path
    figure: Path | None
    metrics: dict[str, np.ndarray]


def run_experiment(
    exp: ResolvedExperiment, out_dir: str | Path, *, progress: bool = False
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

    Returns
    -------
    RunOutcome

    Raises
    ------
    closedloop.loop.ModelDivergedError
        After writing the file with status ``failed``.
    """
    cfg = exp.config
    loop = exp.loop
    out_dir = Path(out_dir)
    path = out_dir / f"{cfg.name}.h5"
    model = loop.model
    n = loop.n
    sensing_rate = 1.0 / loop.sample_s
    control_rate = 1.0 / loop.control_period_s
    units = model.signal_units
    baseline = None
    if cfg.output.record_baseline:
        baseline = type(model)(dt_s=model.dt_s, n=n, params=model.param_values, regime=None)
    loop.reset()
    loop.warm_up(cfg.warmup_s)
    if baseline is not None:
        baseline.reset(loop.model_instance_seeds)
        if cfg.warmup_s > 0:
            baseline.advance(int(round(cfg.warmup_s / model.dt_s)))
        baseline.step_ = 0
    psd_stim = StreamingPSD(n, sensing_rate, cfg.metrics.segment_s)
    psd_base = StreamingPSD(n, sensing_rate, cfg.metrics.segment_s) if baseline else None
    discard = int(round(cfg.metrics.discard_s * sensing_rate))
    seen = 0
    amp_sum = np.zeros(n)
    amp_count = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=round(cfg.duration_s, 6), unit="sim s", desc=cfg.name, leave=False)

    with RunRecorder(
        path,
        config=exp.resolved_dict(),
        seed=cfg.seed,
        n=n,
        closedloop_version=closedloop.__version__,
    ) as rec:
        rec.set_attr("thresholds", exp.loop.controller.thresholds())
        rec.set_attr("beta_band_hz", list(cfg.metrics.band_hz))
        desc = model.signal_description
        rec.create_timeseries(
            "lfp",
            units=units,
            sampling_rate_hz=sensing_rate,
            description=f"{desc}, mean over each sensing interval",
        )
        rec.create_timeseries(
            "lfp_sensed",
            units=units,
            sampling_rate_hz=sensing_rate,
            description="LFP proxy with sensor noise and artefact",
        )
        if baseline is not None:
            rec.create_timeseries(
                "lfp_baseline",
                units=units,
                sampling_rate_hz=sensing_rate,
                description="LFP proxy without stimulation, same seed",
            )
        rec.create_timeseries(
            "biomarker",
            units=units,
            sampling_rate_hz=control_rate,
            description=f"{loop.sensing.envelope} envelope of the "
            f"{list(loop.sensing.band_hz)} Hz band, end of each period",
        )
        for name, unit, what in (
            ("amplitude", "mA", "delivered amplitude"),
            ("frequency", "Hz", "delivered pulse frequency"),
            ("pulse_width", "us", "delivered pulse width per phase"),
        ):
            rec.create_timeseries(
                name,
                units=unit,
                sampling_rate_hz=control_rate,
                description=f"{what}, end of each control period",
            )

        def on_chunk(t0: float, data: dict[str, np.ndarray]) -> None:
            nonlocal seen, amp_count
            for key, block in data.items():
                rec.append(key, block)
            lfp = data["lfp"]
            m = lfp.shape[1]
            skip = max(0, min(m, discard - seen))
            psd_stim.feed(lfp[:, skip:])
            if baseline is not None:
                steps = m * loop.steps_per_sample
                raw = baseline.advance(steps)
                base = raw.reshape(n, m, loop.steps_per_sample).mean(axis=2)
                rec.append("lfp_baseline", base)
                psd_base.feed(base[:, skip:])
            seen += m
            amp_sum[:] += data["amplitude"].sum(axis=1)
            amp_count += data["amplitude"].shape[1]

        def tick(t: float) -> None:
            if bar is not None:
                bar.update(round(t - bar.n, 6))

        try:
            totals = loop.run(
                cfg.duration_s, chunk_s=cfg.output.chunk_s, on_chunk=on_chunk, progress=tick
            )
        finally:
            if bar is not None:
                bar.close()
        ref = cfg.metrics.reference
        metrics = summarize(
            psd_stim,
            psd_base,
            totals,
            amp_sum / max(amp_count, 1),
            loop.time_s,
            loop.device,
            ref.model_dump(),
            cfg.metrics.band_hz,
        )
        rec.write_metrics(
            metrics,
            {k: METRIC_INFO[k][0] for k in metrics},
            {k: METRIC_INFO[k][1] for k in metrics},
        )
        rec.write_array("spectra/frequency_hz", psd_stim.frequency_hz, units="Hz")
        rec.write_array(
            "spectra/psd_stim", psd_stim.psd(), units=f"({units})^2/Hz", dims="instance,frequency"
        )
        if psd_base is not None:
            rec.write_array(
                "spectra/psd_baseline",
                psd_base.psd(),
                units=f"({units})^2/Hz",
                dims="instance,frequency",
            )
    figure = None
    if cfg.output.figure:
        from closedloop.plotting import plot_run

        figure = plot_run(path)
    return RunOutcome(path=path, figure=figure, metrics=metrics)


def metrics_table(metrics: dict[str, Any]) -> str:
    """Plain-text table of metrics: mean, min and max over instances."""
    lines = [f"{'metric':<22} {'units':<9} {'mean':>12} {'min':>12} {'max':>12}"]
    for key, values in metrics.items():
        arr = np.atleast_1d(np.asarray(values, dtype=float))
        unit = METRIC_INFO.get(key, ("", ""))[0]
        lines.append(
            f"{key:<22} {unit:<9} {np.nanmean(arr):>12.4g} {np.nanmin(arr):>12.4g} "
            f"{np.nanmax(arr):>12.4g}"
        )
    return "\n".join(lines)
