"""Phase-triggered stimulation compared across target phases and phase estimators.

:func:`compare_arms` runs one experiment file (a ``phase_locked`` controller
delivering bursts, e.g. ``experiments/tms_phase_triggered.yaml``) under each
arm (target at the negative peak, at the positive peak, at random phase) and
each phase estimator (``phase``: the ecHT, latency compensated by the
controller's ``lead_s``; ``phase_ar``: autoregressive forward prediction,
compensated by ``sensing.phase_ar_lead_s``; ``phase_etp``: educated
temporal prediction, by ``sensing.phase_etp_lead_s``), and reports for each run:

- accuracy at the delivered bursts: the circular mean and SD of the phase of
  the rhythm at each burst's first pulse minus the target (NaN for the
  random arm), and the fraction within +-``tolerance_deg``. The phase "the
  brain had" is measured on the noise-free model signal, from the samples
  before the pulse (:func:`closedloop.analysis.phase.pulse_phases`), so the
  response to earlier pulses does not leak into it;
- the effect: the plasticity readout the run recorded (the experiment's
  ``plasticity:`` block, :mod:`closedloop.analysis.plasticity`): the
  MEP-like response change at the end of the run, percent, and its series.

:func:`plot_arms` draws the phase histograms at the bursts and the readout over time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from closedloop.analysis.phase import pulse_phases
from closedloop.analysis.phase_estimators import circular_summary
from closedloop.analysis.plasticity import PLASTICITY_SERIES, burst_onsets
from closedloop.config import load_config
from closedloop.experiment import run_experiment
from closedloop.io import load_run

__all__ = ["ARMS", "ESTIMATOR_SETTINGS", "compare_arms", "plot_arms"]

#: Arms: name to controller overrides.
ARMS: dict[str, tuple[str, ...]] = {
    "trough": ("controller.params.target_phase_rad=3.141592653589793",),
    "peak": ("controller.params.target_phase_rad=0.0",),
    "random": ("controller.params.random_target=true",),
}


def ESTIMATOR_SETTINGS(lead_s: float) -> dict[str, tuple[str, ...]]:  # noqa: N802  (a table)
    """Overrides selecting each estimator, both compensating ``lead_s`` seconds."""
    return {
        "phase": ("controller.params.phase_feature=phase", f"controller.params.lead_s={lead_s}"),
        "phase_ar": (
            "controller.params.phase_feature=phase_ar",
            "controller.params.lead_s=0.0",
            f"sensing.phase_ar_lead_s={lead_s}",
        ),
        "phase_etp": (
            "controller.params.phase_feature=phase_etp",
            "controller.params.lead_s=0.0",
            f"sensing.phase_etp_lead_s={lead_s}",
        ),
    }


def compare_arms(
    experiment: str | Path,
    out_dir: str | Path,
    overrides: Sequence[str] = (),
    arms: Sequence[str] = tuple(ARMS),
    estimators: Sequence[str] = ("phase", "phase_ar", "phase_etp"),
    lead_s: float = 0.006,
    tolerance_deg: float = 45.0,
) -> list[dict[str, Any]]:
    """Run every arm with every estimator; accuracy at the bursts and the readout.

    Parameters
    ----------
    experiment : str or Path
        Experiment file with a ``phase_locked`` controller, both phase
        features and a ``plasticity:`` block.
    out_dir : str or Path
        Where the run files go (``<arm>_<estimator>/``).
    overrides : sequence of str
        ``--set`` overrides applied to every run (e.g. a shorter ``duration_s``).
    arms, estimators : sequence of str
        Keys of :data:`ARMS` and of :func:`ESTIMATOR_SETTINGS`.
    lead_s : float
        Latency each estimator compensates, s.
    tolerance_deg : float
        Half-width of the accuracy window, degrees.

    Returns
    -------
    list of dict
        One row per run: ``arm``, ``estimator``, ``bursts``, ``mean_error_deg``,
        ``sd_error_deg``, ``within`` (NaN for the random arm),
        ``response_change_pct``, and the arrays ``burst_times_s``,
        ``burst_phases_rad``, ``t_s``, ``excitability_pct``.
    """
    rows = []
    for arm in arms:
        for est in estimators:
            sets = (*overrides, *ARMS[arm], *ESTIMATOR_SETTINGS(lead_s)[est])
            exp = load_config(experiment, [*sets, f"name={arm}_{est}"])
            outcome = run_experiment(exp, Path(out_dir) / f"{arm}_{est}")
            run = load_run(outcome.path)
            info = pulse_phases(run)
            first = burst_onsets(info["time_s"])
            times = info["time_s"][first]
            phases = info["phase_rad"][first]
            excitability = run.timeseries[PLASTICITY_SERIES][0]
            rate = float(run.timeseries_attrs[PLASTICITY_SERIES]["sampling_rate_hz"])
            t = np.arange(1, excitability.size + 1) / rate
            row: dict[str, Any] = {"arm": arm, "estimator": est, "bursts": int(times.size)}
            finite = np.isfinite(phases)
            if arm == "random":
                row.update(mean_error_deg=math.nan, sd_error_deg=math.nan, within=math.nan)
            else:
                target = float(exp.resolved_dict()["controller"]["params"]["target_phase_rad"])
                s = circular_summary(phases[finite] - target, tolerance_deg)
                row.update(mean_error_deg=s["mean_deg"], sd_error_deg=s["sd_deg"])
                row["within"] = s["within"]
            row.update(
                response_change_pct=float(run.metrics["plasticity_response_change_pct"][0]),
                burst_times_s=times,
                burst_phases_rad=phases,
                t_s=t,
                excitability_pct=excitability,
            )
            rows.append(row)
    return rows


def plot_arms(rows: Sequence[dict[str, Any]], *, fig: Any = None) -> Any:
    """Phase histograms at the bursts (one panel per estimator) and the readout over time.

    Parameters
    ----------
    rows : sequence of dict
        Rows of :func:`compare_arms`.
    fig : matplotlib.figure.Figure or SubFigure, optional
        Where to draw (empty); default a new figure, 4 in wide per panel.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on; nothing is saved.
    """
    from closedloop.plotting.figures import figure_for, root_figure

    estimators = list(dict.fromkeys(r["estimator"] for r in rows))
    fig = figure_for(fig, (4 * (len(estimators) + 1), 3.6))
    axes = fig.subplots(1, len(estimators) + 1)
    edges = np.linspace(-180, 180, 19)
    styles = {"phase": "-", "phase_ar": "--", "phase_etp": ":"}
    for ax, est in zip(axes[:-1], estimators, strict=True):
        for r in rows:
            if r["estimator"] == est:
                deg = np.degrees(r["burst_phases_rad"][np.isfinite(r["burst_phases_rad"])])
                ax.hist(deg, bins=edges, histtype="step", label=r["arm"])
        ax.set_xlabel("phase at burst (deg; 0 peak, +-180 trough)")
        ax.set_ylabel("bursts")
        ax.set_title(f"estimator: {est}")
        ax.legend(fontsize=8)
    ax = axes[-1]
    for r in rows:
        ax.plot(
            r["t_s"],
            r["excitability_pct"],
            styles.get(r["estimator"], ":"),
            label=f"{r['arm']} ({r['estimator']})",
        )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("MEP-like response change (%)")
    ax.legend(fontsize=7)
    return root_figure(fig)
