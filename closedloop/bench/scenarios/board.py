"""Running a benchmark and reporting it: results, leaderboard, figure, files.

See :mod:`closedloop.bench.scenarios` for the metrics and the score.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from closedloop.bench.scenarios.scoring import score_run
from closedloop.bench.scenarios.spec import BENCH_FORMAT_VERSION, SCORE_WEIGHTS, Scenario
from closedloop.config import ConfigError, validate_config
from closedloop.io.tables import write_grouped_arrays

__all__ = [
    "BenchResult",
    "leaderboard_markdown",
    "run_bench",
    "versus_continuous",
    "write_results",
]


@dataclass
class BenchResult:
    """One scenario x controller: per-instance metrics, or why it failed."""

    scenario: str
    scenario_version: int
    controller: str
    metrics: dict[str, np.ndarray] = field(default_factory=dict)
    error: str = ""
    run_file: str = ""

    def mean(self, key: str) -> float:
        """Mean over instances (NaN where undefined)."""
        values = self.metrics.get(key)
        if values is None or not np.isfinite(values).any():
            return float("nan")
        return float(np.nanmean(values))


def run_bench(
    scenarios: list[Scenario],
    out_dir: str | Path,
    *,
    controllers: list[str] | None = None,
    quick: bool = False,
    progress: Any = None,
) -> list[BenchResult]:
    """Run every scenario against every controller and score the runs.

    Parameters
    ----------
    scenarios : list of Scenario
        From :func:`load_scenario`.
    out_dir : str or Path
        Where run files go (``<out_dir>/runs/<scenario>/``).
    controllers : list of str, optional
        Controllers to run (registry names or dotted paths); default: each
        scenario's own list. A controller a scenario does not list runs with
        its default parameters.
    quick : bool
        Apply each scenario's ``quick`` overrides.
    progress : callable, optional
        Called with a line of text after each run.
    """
    from closedloop.experiment import run_experiment

    results = []
    for scn in scenarios:
        names = controllers if controllers else list(scn.controllers)
        for ctrl in names:
            res = BenchResult(scn.name, scn.version, ctrl)
            try:
                exp = validate_config(scn.experiment_for(ctrl, quick=quick), str(scn.path))
                outcome = run_experiment(exp, Path(out_dir) / "runs" / scn.name)
                res.run_file = str(outcome.path)
                res.metrics = score_run(outcome.path, scn, exp)
            except ConfigError as exc:
                res.error = str(exc)
            except Exception as exc:  # one failing controller must not stop the board
                res.error = f"{type(exc).__name__}: {exc}"
            results.append(res)
            if progress is not None:
                progress(
                    f"{scn.name} / {ctrl}: "
                    + (f"score {res.mean('score'):.3f}" if not res.error else res.error)
                )
    return results


_COLUMNS = [
    ("score", "score", "{:.3f}"),
    ("efficacy", "efficacy", "{:.2f}"),
    ("long_burst_time_reduction", "long-burst time red.", "{:.2f}"),
    ("band_power_reduction", "band power red.", "{:.2f}"),
    ("control_error", "control error", "{:.3g}"),
    ("control_error_none", "error none", "{:.3g}"),
    ("teed_relative", "TEED rel.", "{:.2f}"),
    ("time_on_fraction", "time on", "{:.2f}"),
    ("switches_per_min", "switches/min", "{:.1f}"),
    ("deliveries_per_min", "deliveries/min", "{:.1f}"),
    ("time_pathological", "time patho.", "{:.2f}"),
    ("pathological_time_reduction", "patho. time red.", "{:.2f}"),
    ("seizures_per_hour", "seizures/h", "{:.0f}"),
    ("mean_seizure_duration_s", "seizure dur. s", "{:.1f}"),
    ("seizure_time_reduction", "seizure time red.", "{:.2f}"),
    ("seizures_aborted", "aborted", "{:.1f}"),
    ("detections_per_hour", "detections/h", "{:.0f}"),
    ("false_detections_per_hour", "false det./h", "{:.0f}"),
    ("stimulation_s_per_hour", "stim. s/h", "{:.0f}"),
    ("detection_latency_s", "latency s", "{:.2f}"),
    ("mood_response", "response", "{:.2f}"),
    ("mood_remission", "remission", "{:.2f}"),
    ("mood_time_symptomatic_fraction", "time sympt.", "{:.2f}"),
    ("triggers_per_day", "triggers/day", "{:.0f}"),
    ("charge_uc_per_day", "charge uC/day", "{:.0f}"),
    ("fear_extinction_trials", "ext. trials", "{:.1f}"),
    ("fear_index_end_extinction", "fear end ext. %", "{:.0f}"),
    ("fear_renewal_index", "fear renewal %", "{:.0f}"),
    ("fear_renewal_index_none", "renewal % none", "{:.0f}"),
    ("plasticity_bursts", "bursts", "{:.0f}"),
    ("tms_pulses", "TMS pulses", "{:.0f}"),
    ("physio_pulses_in_expiration_frac", "in expiration", "{:.2f}"),
    ("physio_burst_onset_delay_ms", "onset delay ms", "{:.0f}"),
    ("physio_rr_lengthening_ms", "RR lengthening ms", "{:.1f}"),
    ("rr_lengthening_ms_per_mc", "RR ms/mC", "{:.2f}"),
    ("physio_ne_mean", "NE trace", "{:.3f}"),
    ("charge_uc_per_min", "charge uC/min", "{:.0f}"),
]


def versus_continuous(
    results: list[BenchResult], scenario: Scenario, continuous: str = "open_loop"
) -> list[dict[str, Any]]:
    """Each other controller against continuous stimulation, on the same seeds.

    For every controller of ``scenario`` other than ``continuous``: the share
    of continuous stimulation's efficacy it reaches (``efficacy_share``, its
    mean efficacy over that of ``continuous``), its TEED over that of
    ``continuous`` (``teed_share``) and its ``time_on_fraction``. Issue 12's
    targets for beta scenarios: efficacy share >= 0.8, TEED share <= 0.5,
    time on <= 0.6 (``meets_targets``). Empty without a successful
    ``continuous`` run.
    """
    rows = {r.controller: r for r in results if r.scenario == scenario.name and not r.error}
    ref = rows.get(continuous)
    if ref is None:
        return []
    out = []
    for name, r in rows.items():
        if name == continuous:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            eff = r.mean("efficacy") / ref.mean("efficacy")
            teed = r.mean("teed_relative") / ref.mean("teed_relative")
        on = r.mean("time_on_fraction")
        out.append(
            {
                "controller": name,
                "efficacy_share": eff,
                "teed_share": teed,
                "time_on_fraction": on,
                "meets_targets": bool(eff >= 0.8 and teed <= 0.5 and on <= 0.6),
            }
        )
    return out


def leaderboard_markdown(results: list[BenchResult], scenarios: list[Scenario]) -> str:
    """One Markdown table per scenario, controllers ranked by score."""
    out = []
    for scn in scenarios:
        rows = [r for r in results if r.scenario == scn.name]
        cols = [c for c in _COLUMNS if any(c[0] in r.metrics for r in rows)]
        none = [r.mean("time_pathological_none") for r in rows if not r.error]
        none = [v for v in none if np.isfinite(v)]
        out.append(f"### {scn.name} (v{scn.version}, {scn.kind})\n")
        out.append(scn.description + "\n")
        out.append(f"Efficacy: `{scn.efficacy}`.")
        if none:
            out.append(
                f"Time in the pathological state without stimulation: {np.nanmean(none):.2f}."
            )
        if scn.kind == "beta" and any("long_burst_time_none" in r.metrics for r in rows):
            long_none = np.nanmean([r.mean("long_burst_time_none") for r in rows if not r.error])
            out.append(f"Time in long bursts without stimulation: {long_none:.3f}.")
        if scn.kind == "seizure":
            ok = [r for r in rows if not r.error]
            if ok:
                out.append(
                    "Without stimulation: "
                    f"{np.nanmean([r.mean('seizures_per_hour_none') for r in ok]):.0f} "
                    "seizures/h of "
                    f"{np.nanmean([r.mean('mean_seizure_duration_s_none') for r in ok]):.1f} s, "
                    f"{np.nanmean([r.mean('seizure_time_none') for r in ok]):.2f} of the time."
                )
        out.append("")
        out.append("| rank | controller | " + " | ".join(c[1] for c in cols) + " |")
        out.append("|---|---|" + "---|" * len(cols))
        ranked = sorted(
            rows, key=lambda r: (bool(r.error), -np.nan_to_num(r.mean("score"), nan=-1e9))
        )
        for rank, r in enumerate(ranked, 1):
            if r.error:
                out.append(f"| - | {r.controller} | failed: {r.error.splitlines()[0][:80]} |")
                continue
            cells = [c[2].format(r.mean(c[0])) for c in cols]
            out.append(f"| {rank} | {r.controller} | " + " | ".join(cells) + " |")
        versus = versus_continuous(results, scn) if scn.kind == "beta" else []
        if versus:
            out.append("")
            out.append(
                "Against continuous DBS (`open_loop`), same seeds; issue 12's targets: "
                "efficacy >= 80 % of its, TEED <= 50 % of its, time on <= 60 %:"
            )
            out.append("")
            for v in versus:
                out.append(
                    f"- {v['controller']}: {v['efficacy_share']:.0%} of its efficacy, "
                    f"{v['teed_share']:.0%} of its TEED, on {v['time_on_fraction']:.0%} "
                    f"of the time ({'meets' if v['meets_targets'] else 'misses'} the targets)"
                )
        out.append("")
    return "\n".join(out)


def write_results(
    results: list[BenchResult],
    scenarios: list[Scenario],
    json_path: str | Path,
    h5_path: str | Path | None = None,
) -> None:
    """Write the results as JSON (and HDF5: one group per scenario and controller)."""
    record = {
        "format_version": BENCH_FORMAT_VERSION,
        "score_weights": SCORE_WEIGHTS,
        "scenarios": {
            s.name: {
                "version": s.version,
                "kind": s.kind,
                "efficacy": s.efficacy,
                "description": s.description,
            }
            for s in scenarios
        },
        "results": [
            {
                "scenario": r.scenario,
                "scenario_version": r.scenario_version,
                "controller": r.controller,
                "error": r.error,
                "run_file": r.run_file,
                "mean": {k: r.mean(k) for k in r.metrics},
                "per_instance": {
                    k: np.asarray(v, dtype=float).tolist() for k, v in r.metrics.items()
                },
            }
            for r in results
        ],
    }
    Path(json_path).parent.mkdir(parents=True, exist_ok=True)
    Path(json_path).write_text(json.dumps(record, indent=2, allow_nan=True))
    if h5_path is not None:
        write_grouped_arrays(
            h5_path,
            {"format_version": BENCH_FORMAT_VERSION, "score_weights": json.dumps(SCORE_WEIGHTS)},
            (
                (
                    f"{r.scenario}/{r.controller.replace('/', '_')}",
                    {"error": r.error, "scenario_version": r.scenario_version},
                    r.metrics,
                )
                for r in results
            ),
        )
