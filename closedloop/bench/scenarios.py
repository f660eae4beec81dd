"""Controller benchmark: fixed scenarios, standard metrics and a leaderboard.

A *scenario* is a versioned YAML file in ``benchmarks/scenarios/``: a clinical
situation in one paragraph, a complete experiment (model, seed set through
``n_instances``, duration, sensing chain, device) and the parameters each
built-in controller uses there. :func:`run_bench` runs every scenario against
every controller and scores each run with the standard metrics below, the
same for every controller, so that results are comparable.

Scenario file (format version 2)::

    scenario:
      name: pd_beta_adbs
      version: 2
      description: one paragraph on the clinical situation
      kind: beta                 # beta | synchrony | seizure | mood | fear | tracking
      efficacy: long_burst_time_reduction   # optional; default by kind (below)
      pathological_threshold: 40 # biomarker level counted as pathological
      target: {feature: area, level: 0.063}  # optional: a tracking target (control error)
      quick: {duration_s: 3.0, n_instances: 2}   # overrides for --quick
    controllers:                 # registry name or dotted path -> parameters
      open_loop: {amplitude_ma: 2.5}
      on_off: {threshold: 11.2}
    experiment: {...}            # a full experiment (closedloop.config.schema schema)

Standard metrics (per instance; the leaderboard shows means over instances)
--------------------------------------------------------------------------
``band_power_reduction``
    ``1 - P_stim / P_none``: power of the model's signal in ``metrics.band_hz``
    with stimulation over the same without stimulation, same seed (the run's
    ``band_power_reduction``).
``long_burst_time_reduction``, ``long_burst_time`` (beta scenarios)
    ``1 - T_stim / T_none``, ``T`` the fraction of time in bursts of the
    sensed envelope at least ``metrics.bursts.long_burst_s`` long, the burst
    threshold a percentile of the no-stimulation envelope
    (:mod:`closedloop.analysis.bursts`; Tinkhauser et al. 2017); and
    ``T_stim``.
``teed_relative``
    Total electrical energy delivered over that of continuous stimulation at
    ``metrics.reference`` for the same time (Koss et al. 2005).
``time_on_fraction``
    Fraction of time stimulation was delivered.
``switches_per_min``, ``deliveries_per_min``
    On/off transitions of a continuous train after its first turn-on, and
    bursts or single pulses commanded, per minute (the run's ``n_switches``
    and ``n_deliveries``).
``time_pathological`` and ``time_pathological_none``
    Fraction of control periods whose biomarker exceeds the scenario's
    ``pathological_threshold``, with stimulation and without (the no-stimulation
    biomarker is the run's ``lfp_baseline`` through the same sensing chain,
    same sensor-noise seeds), and ``pathological_time_reduction``
    (``1 - time_pathological / time_pathological_none``).
Seizure scenarios (as RNS trials report them: Morrell 2011; Sun & Morrell 2014)
    ``seizures_per_hour`` and ``seizures_per_hour_none`` (complete seizures),
    ``mean_seizure_duration_s`` and ``..._none``, ``seizure_time`` and
    ``seizure_time_none`` (fraction of time in seizure),
    ``seizure_time_reduction`` (``1 - seizure_time / seizure_time_none``:
    positive is less time in seizure), ``seizures_aborted`` (detected
    seizures cut below half the mean unstimulated one),
    ``detections_per_hour``, ``false_detections_per_hour``,
    ``stimulation_s_per_hour`` and ``detection_latency_s``, by the model's
    seizure criterion (:mod:`closedloop.analysis.seizures`).
``efficacy``
    The scenario's ``efficacy`` metric; by default ``long_burst_time_reduction``
    for beta scenarios (the long bursts, not the mean power, track rigidity
    and bradykinesia), ``pathological_time_reduction`` for seizure scenarios
    (judged on the sensed band power, it counts seizures and the discharges
    that stimulation itself provokes alike, where the model's seizure
    criterion sees only seizures) and ``band_power_reduction`` for
    synchrony; for psychiatric scenarios ``mood_score_reduction`` (mood:
    the fraction of the baseline HAMD-17-like score removed, from the slow
    symptom state, :mod:`closedloop.symptoms`) and ``fear_renewal_reduction``
    (fear: ``1 - renewal fear index / that of the no-stimulation copy, same
    seed``, how much less fear returns in the conditioning context).
    Positive is better, 1 is all of the pathology removed, negative is worse
    than no stimulation.
``control_error``, ``control_error_none``, ``control_error_reduction`` (with a ``target``)
    RMS distance of the target feature from its level over the control
    periods after ``metrics.discard_s``, with stimulation and without (the
    no-stimulation signal through the same chain), and ``1 - control_error /
    control_error_none``: the criterion of model-based control (Fang & Yang
    2023), the default efficacy of ``tracking`` scenarios.
``mood_*``, ``triggers_per_day``, ``charge_uc_per_day`` (mood) and ``fear_*`` (fear)
    The clinical read-outs of the run (response, remission, time
    symptomatic, extinction trials, fear index at the end of extinction and
    at renewal), copied from its metrics (:data:`CLINICAL_METRICS`).
``score``
    ``efficacy - 0.3 * teed_relative - 0.1 * min(1, switches_per_min / 60)``.
    Efficacy has weight 1: it is what the therapy is for. Energy 0.3:
    continuous stimulation that removes everything scores 0.7, and a
    controller that does as well with a third of the energy 0.9, a
    difference worth a battery replacement or recharge interval without
    outweighing efficacy (a controller that does nothing scores 0). Switching
    0.1, saturating at one switch per second: switching transients cause
    paraesthesiae and dyskinesia-like side effects in patients (Little et al.
    2013 ramped over 250 ms for this reason), a real but secondary cost;
    deliveries (bursts, single pulses) are the therapy itself and are not
    penalised. The weights (``SCORE_WEIGHTS``) are part of the format version.

References
----------
Koss AM et al. (2005) Calculating total electrical energy delivered by deep
brain stimulation systems. Ann Neurol 58:168-169.
Little S et al. (2013) Adaptive deep brain stimulation in advanced Parkinson
disease. Ann Neurol 74:449-457.
Tinkhauser G et al. (2017) The modulatory effect of adaptive deep brain
stimulation on beta bursts in Parkinson's disease. Brain 140:1053-1067.
Morrell MJ (2011) Responsive cortical stimulation for the treatment of
medically intractable partial epilepsy. Neurology 77:1295-1304.
Sun FT, Morrell MJ (2014) The RNS System: responsive cortical stimulation for
the treatment of refractory partial epilepsy. Expert Rev Med Devices
11:563-572.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydantic
from pydantic import BaseModel, ConfigDict, Field

from closedloop.config import ConfigError, validate_config
from closedloop.config.files import read_yaml
from closedloop.io import load_run
from closedloop.io.tables import write_grouped_arrays

__all__ = [
    "CLINICAL_METRICS",
    "BENCH_FORMAT_VERSION",
    "DEFAULT_EFFICACY",
    "SCORE_WEIGHTS",
    "BenchResult",
    "Scenario",
    "leaderboard_markdown",
    "load_scenario",
    "plot_scenario",
    "run_bench",
    "score_run",
    "versus_continuous",
    "write_results",
]

BENCH_FORMAT_VERSION = 2
#: Efficacy metric of each scenario kind unless the scenario names one.
DEFAULT_EFFICACY = {
    "beta": "long_burst_time_reduction",
    "synchrony": "band_power_reduction",
    "seizure": "pathological_time_reduction",
    "mood": "mood_score_reduction",
    "fear": "fear_renewal_reduction",
    "tracking": "control_error_reduction",
}
#: Run metrics a psychiatric scenario reports beside the standard ones, by kind.
CLINICAL_METRICS = {
    "mood": (
        "mood_score_reduction",
        "mood_response",
        "mood_remission",
        "mood_time_symptomatic_fraction",
        "triggers_per_day",
        "charge_uc_per_day",
    ),
    "fear": (
        "fear_renewal_reduction",
        "fear_extinction_trials",
        "fear_index_end_extinction",
        "fear_renewal_index",
    ),
}
#: Weights of the combined score: energy (TEED relative) and switching.
SCORE_WEIGHTS = {"energy": 0.3, "switching": 0.1}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _QuickSection(_Strict):
    duration_s: float | None = Field(None, gt=0)
    n_instances: int | None = Field(None, ge=1)


class _TargetSection(_Strict):
    feature: str = "biomarker"
    level: float


class _ScenarioSection(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    version: int = Field(ge=1)
    description: str = Field(min_length=20)
    kind: Literal["beta", "synchrony", "seizure", "mood", "fear", "tracking"]
    efficacy: (
        Literal[
            "long_burst_time_reduction",
            "band_power_reduction",
            "seizure_time_reduction",
            "pathological_time_reduction",
            "mood_score_reduction",
            "fear_renewal_reduction",
            "control_error_reduction",
        ]
        | None
    ) = None
    pathological_threshold: float
    target: _TargetSection | None = None
    quick: _QuickSection = _QuickSection()


class _ScenarioFile(_Strict):
    scenario: _ScenarioSection
    controllers: dict[str, dict[str, Any]] = Field(min_length=1)
    experiment: dict[str, Any]


@dataclass(frozen=True)
class Scenario:
    """A validated scenario file."""

    name: str
    version: int
    description: str
    kind: str
    efficacy: str
    pathological_threshold: float
    quick: dict[str, Any]
    target: dict[str, Any] | None
    controllers: dict[str, dict[str, Any]]
    experiment: dict[str, Any]
    path: Path

    def experiment_for(
        self, controller: str, params: dict[str, Any] | None = None, quick: bool = False
    ) -> dict[str, Any]:
        """The raw experiment config for one controller (validated later)."""
        raw = copy.deepcopy(self.experiment)
        raw["name"] = f"{self.name}__{controller.replace(':', '.').split('.')[-1]}"
        raw["controller"] = {
            "name": controller,
            "params": dict(params if params is not None else self.controllers.get(controller, {})),
        }
        output = dict(raw.get("output", {}))
        output["figure"] = False
        output["record_baseline"] = True
        raw["output"] = output
        if quick:
            raw.update({k: v for k, v in self.quick.items() if v is not None})
        return raw


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file.

    Raises
    ------
    closedloop.config.schema.ConfigError
        Naming the key path of every problem, including in the experiment
        with each of the scenario's controllers.
    """
    path = Path(path)
    raw = read_yaml(path, "scenario file")
    try:
        parsed = _ScenarioFile.model_validate(raw)
    except pydantic.ValidationError as exc:
        problems: list[tuple[str, str]] = [
            (
                ".".join(map(str, e["loc"])) or "(top level)",
                "unknown key" if e["type"] == "extra_forbidden" else e["msg"],
            )
            for e in exc.errors()
        ]
        raise ConfigError(problems, str(path)) from None
    s = parsed.scenario
    scn = Scenario(
        name=s.name,
        version=s.version,
        description=" ".join(s.description.split()),
        kind=s.kind,
        efficacy=s.efficacy or DEFAULT_EFFICACY[s.kind],
        pathological_threshold=s.pathological_threshold,
        quick=s.quick.model_dump(),
        target=s.target.model_dump() if s.target else None,
        controllers=parsed.controllers,
        experiment=parsed.experiment,
        path=path,
    )
    problems = []
    if scn.efficacy == "control_error_reduction" and scn.target is None:
        problems.append(("scenario.target", "control_error_reduction needs a target"))
    for ctrl in scn.controllers:
        try:
            validate_config(scn.experiment_for(ctrl), str(path))
        except ConfigError as exc:
            problems += [(f"experiment (with controller {ctrl}): {p}", m) for p, m in exc.problems]
    if problems:
        raise ConfigError(problems, str(path))
    return scn


def _biomarker_without_stimulation(run: Any, exp: Any, key: str = "envelope") -> np.ndarray:
    """The biomarker (or feature ``key``) the controller would have seen without stimulation.

    ``lfp_baseline`` (same model seed) through the same sensing chain with the
    same sensor-noise seeds, sampled at the end of each control period.
    """
    from closedloop.core.random import rng_states

    loop = exp.loop
    base = run.timeseries["lfp_baseline"]
    state = loop.sensing.new_state(loop.n, rng_states(loop.seeds.sensor))
    env = loop.sensing.process(state, base)[key]
    return env[:, loop.samples_per_period - 1 :: loop.samples_per_period]


def _renewal_index_without_stimulation(run: Any) -> np.ndarray:
    """Fear index (%) at the renewal CS of the no-stimulation copy, same seed.

    Read from the copy's recorded per-CS responses (``state_cs_phase``,
    ``state_cs_rate_A``/``_B`` ``_baseline``, sampled every chunk): the first
    sample after the renewal CS (phase 2) completes. NaN without them.
    """
    try:
        phase = run.timeseries["state_cs_phase_baseline"]
        a = run.timeseries["state_cs_rate_A_baseline"]
        b = run.timeseries["state_cs_rate_B_baseline"]
    except KeyError:
        return np.full(run.timeseries["amplitude"].shape[0], np.nan)
    out = np.full(phase.shape[0], np.nan)
    for i in range(phase.shape[0]):
        hit = np.flatnonzero(phase[i] == 2.0)
        if hit.size:
            k = hit[0]
            out[i] = 100.0 * a[i, k] / (a[i, k] + b[i, k])
    return out


def score_run(path: str | Path, scenario: Scenario, exp: Any) -> dict[str, np.ndarray]:
    """Standard metrics of one run file (see the module docstring)."""
    run = load_run(path)
    m = run.metrics
    duration_s = run.timeseries["amplitude"].shape[1] * exp.loop.control_period_s
    per_min, per_hour = 60.0 / duration_s, 3600.0 / duration_s
    out = {
        "band_power_reduction": m["band_power_reduction"],
        "teed_relative": m["teed_relative"],
        "time_on_fraction": m["time_on_fraction"],
        "switches_per_min": m["n_switches"] * per_min,
        "deliveries_per_min": m["n_deliveries"] * per_min,
    }
    if scenario.kind == "beta" and "long_burst_time_reduction" in m:
        out["long_burst_time_reduction"] = m["long_burst_time_reduction"]
        out["long_burst_time"] = m["long_burst_time_fraction"]
        out["long_burst_time_none"] = m["long_burst_time_fraction_baseline"]
    thr = scenario.pathological_threshold
    out["time_pathological"] = np.mean(run.timeseries["biomarker"] > thr, axis=1)
    out["time_pathological_none"] = np.mean(_biomarker_without_stimulation(run, exp) > thr, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["pathological_time_reduction"] = np.where(
            out["time_pathological_none"] > 0,
            1.0 - out["time_pathological"] / out["time_pathological_none"],
            np.nan,
        )
    if scenario.kind == "seizure":
        from closedloop.analysis.seizures import seizure_metrics

        sz = seizure_metrics(run)
        out["seizures_per_hour"] = sz["n_seizures_stim"] * per_hour
        out["seizures_per_hour_none"] = sz["n_seizures_baseline"] * per_hour
        out["mean_seizure_duration_s"] = sz["mean_seizure_duration_stim_s"]
        out["mean_seizure_duration_s_none"] = sz["mean_seizure_duration_baseline_s"]
        out["seizure_time"] = sz["seizure_fraction_stim"]
        out["seizure_time_none"] = sz["seizure_fraction_baseline"]
        with np.errstate(divide="ignore", invalid="ignore"):
            out["seizure_time_reduction"] = np.where(
                sz["seizure_fraction_baseline"] > 0,
                1.0 - sz["seizure_fraction_stim"] / sz["seizure_fraction_baseline"],
                np.nan,
            )
        out["seizures_aborted"] = sz["n_seizures_aborted"]
        out["detections_per_hour"] = sz["n_detections"] * per_hour
        out["false_detections_per_hour"] = sz["n_false_detections"] * per_hour
        out["stimulation_s_per_hour"] = m["time_on_fraction"] * 3600.0
        out["detection_latency_s"] = sz["mean_detection_latency_s"]
    if scenario.target is not None:
        name, level = scenario.target["feature"], scenario.target["level"]
        k0 = int(round(exp.config.metrics.discard_s / exp.loop.control_period_s))
        seen = run.timeseries["biomarker" if name == "biomarker" else f"feature_{name}"]
        none = _biomarker_without_stimulation(run, exp, "envelope" if name == "biomarker" else name)
        out["control_error"] = np.sqrt(np.mean((seen[:, k0:] - level) ** 2, axis=1))
        out["control_error_none"] = np.sqrt(np.mean((none[:, k0:] - level) ** 2, axis=1))
        out["control_error_reduction"] = 1.0 - out["control_error"] / out["control_error_none"]
    for key in CLINICAL_METRICS.get(scenario.kind, ()):
        if key in m:
            out[key] = np.asarray(m[key], dtype=float)
    if scenario.kind == "fear" and "fear_renewal_index" in m:
        none = _renewal_index_without_stimulation(run)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["fear_renewal_index_none"] = none
            out["fear_renewal_reduction"] = 1.0 - np.asarray(m["fear_renewal_index"]) / none
    if scenario.efficacy not in out:
        raise ValueError(
            f"scenario {scenario.name}: efficacy metric {scenario.efficacy!r} is not computed "
            "for this run (long-burst metrics need output.record_baseline: true)"
        )
    out["efficacy"] = out[scenario.efficacy]
    switching = np.minimum(1.0, out["switches_per_min"] / 60.0)
    out["score"] = (
        out["efficacy"]
        - SCORE_WEIGHTS["energy"] * out["teed_relative"]
        - SCORE_WEIGHTS["switching"] * switching
    )
    return out


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


def plot_scenario(results: list[BenchResult], scenario: Scenario, out: str | Path) -> Path:
    """Efficacy versus energy: one point per controller (mean, with instance spread)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    eff_key = "efficacy"
    shown = [r for r in results if r.scenario == scenario.name and not r.error]
    for k, r in enumerate(shown):  # each controller's instances in the colour of its mean
        x, y, colour = r.metrics["teed_relative"], r.metrics[eff_key], f"C{k % 10}"
        ax.scatter(x, y, s=12, alpha=0.4, color=colour)
        ax.scatter([r.mean("teed_relative")], [r.mean(eff_key)], s=60, color=colour,
                   label=f"{r.controller} (mean; dots: instances)", edgecolors="k")  # fmt: skip
    ax.set_xlabel("TEED relative to continuous stimulation")
    ax.set_ylabel(f"efficacy ({scenario.efficacy.replace('_', ' ')})")
    ax.set_title(f"{scenario.name}: efficacy versus energy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    return out


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
