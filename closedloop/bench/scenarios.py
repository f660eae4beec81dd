"""Controller benchmark: fixed scenarios, standard metrics and a leaderboard.

A *scenario* is a versioned YAML file in ``benchmarks/scenarios/``: a clinical
situation in one paragraph, a complete experiment (model, seed set through
``n_instances``, duration, sensing chain, device) and the parameters each
built-in controller uses there. :func:`run_bench` runs every scenario against
every controller and scores each run with the standard metrics below, the
same for every controller, so that results are comparable.

Scenario file (format version 1)::

    scenario:
      name: pd_beta_adbs
      version: 1
      description: one paragraph on the clinical situation
      kind: beta                 # beta | synchrony | seizure
      pathological_threshold: 40 # biomarker level counted as pathological
      quick: {duration_s: 3.0, n_instances: 2}   # overrides for --quick
    controllers:                 # registry name or dotted path -> parameters
      open_loop: {amplitude_ma: 2.5}
      dual_threshold: {lower_threshold: 25.0, upper_threshold: 35.0}
    experiment: {...}            # a full experiment (closedloop.config.schema schema)

Standard metrics (per instance; the leaderboard shows means over instances)
--------------------------------------------------------------------------
``biomarker_reduction``
    ``1 - P_stim / P_none``: band power of the model's LFP proxy in
    ``metrics.band_hz`` with stimulation over the same without stimulation,
    same seed (the run's ``band_power_reduction``).
``teed_relative``
    Total electrical energy delivered over that of continuous stimulation at
    ``metrics.reference`` for the same time (Koss et al. 2005).
``time_on_fraction``
    Fraction of time stimulation was delivered.
``switches_per_min``
    On/off transitions per minute.
``time_pathological`` and ``time_pathological_none``
    Fraction of control periods whose biomarker exceeds the scenario's
    ``pathological_threshold``, with stimulation and without (the no-stimulation
    biomarker is the run's ``lfp_baseline`` through the same sensing chain,
    same sensor-noise seeds).
``detection_latency_s``, ``false_detections``, ``seizure_time_reduction`` (seizure scenarios)
    Mean delay from seizure onset to the first stimulation, detections
    outside seizures, and ``1 - seizure time with / without stimulation``
    by the model's seizure criterion (:mod:`closedloop.analysis.seizures`).
``pathological_time_reduction`` (seizure scenarios)
    ``1 - time_pathological / time_pathological_none``: judged on the sensed
    band power, so discharges that stimulation provokes count against it.
``score``
    ``efficacy - 0.3 * teed_relative - 0.1 * min(1, switches_per_min / 60)``,
    efficacy being ``pathological_time_reduction`` for seizure scenarios and
    ``biomarker_reduction`` otherwise: removing all pathology with continuous
    stimulation scores 0.7; doing as well with a third of the energy scores 0.9.
    The weights (``SCORE_WEIGHTS``) are part of the format version.

References
----------
Koss AM et al. (2005) Calculating total electrical energy delivered by deep
brain stimulation systems. Ann Neurol 58:168-169.
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
    "BENCH_FORMAT_VERSION",
    "SCORE_WEIGHTS",
    "BenchResult",
    "Scenario",
    "leaderboard_markdown",
    "load_scenario",
    "plot_scenario",
    "run_bench",
    "score_run",
    "write_results",
]

BENCH_FORMAT_VERSION = 1
#: Weights of the combined score: energy (TEED relative) and switching.
SCORE_WEIGHTS = {"energy": 0.3, "switching": 0.1}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _QuickSection(_Strict):
    duration_s: float | None = Field(None, gt=0)
    n_instances: int | None = Field(None, ge=1)


class _ScenarioSection(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    version: int = Field(ge=1)
    description: str = Field(min_length=20)
    kind: Literal["beta", "synchrony", "seizure"]
    pathological_threshold: float
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
    pathological_threshold: float
    quick: dict[str, Any]
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
        problems = [
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
        pathological_threshold=s.pathological_threshold,
        quick=s.quick.model_dump(),
        controllers=parsed.controllers,
        experiment=parsed.experiment,
        path=path,
    )
    problems: list[tuple[str, str]] = []
    for ctrl in scn.controllers:
        try:
            validate_config(scn.experiment_for(ctrl), str(path))
        except ConfigError as exc:
            problems += [(f"experiment (with controller {ctrl}): {p}", m) for p, m in exc.problems]
    if problems:
        raise ConfigError(problems, str(path))
    return scn


def _biomarker_without_stimulation(run: Any, exp: Any) -> np.ndarray:
    """The biomarker the controller would have seen without stimulation.

    ``lfp_baseline`` (same model seed) through the same sensing chain with the
    same sensor-noise seeds, sampled at the end of each control period.
    """
    from closedloop.core.random import rng_states

    loop = exp.loop
    base = run.timeseries["lfp_baseline"]
    state = loop.sensing.new_state(loop.n, rng_states(loop.seeds.sensor))
    env = loop.sensing.process(state, base)["envelope"]
    return env[:, loop.samples_per_period - 1 :: loop.samples_per_period]


def score_run(path: str | Path, scenario: Scenario, exp: Any) -> dict[str, np.ndarray]:
    """Standard metrics of one run file (see the module docstring)."""
    run = load_run(path)
    m = run.metrics
    duration_min = run.timeseries["amplitude"].shape[1] * exp.loop.control_period_s / 60.0
    out = {
        "biomarker_reduction": m["band_power_reduction"],
        "teed_relative": m["teed_relative"],
        "time_on_fraction": m["time_on_fraction"],
        "switches_per_min": m["n_switches"] / duration_min,
    }
    thr = scenario.pathological_threshold
    out["time_pathological"] = np.mean(run.timeseries["biomarker"] > thr, axis=1)
    out["time_pathological_none"] = np.mean(_biomarker_without_stimulation(run, exp) > thr, axis=1)
    efficacy = out["biomarker_reduction"]
    if scenario.kind == "seizure":
        from closedloop.analysis.seizures import seizure_metrics

        sz = seizure_metrics(run)
        out["detection_latency_s"] = sz["mean_detection_latency_s"]
        out["false_detections"] = sz["n_false_detections"]
        with np.errstate(divide="ignore", invalid="ignore"):
            out["seizure_time_reduction"] = (
                1.0 - sz["seizure_fraction_stim"] / sz["seizure_fraction_baseline"]
            )
            # Efficacy from the sensed band power, not the model-specific seizure
            # criterion: it also counts discharges that stimulation itself provokes.
            efficacy = 1.0 - out["time_pathological"] / out["time_pathological_none"]
        out["pathological_time_reduction"] = efficacy
    switching = np.minimum(1.0, out["switches_per_min"] / 60.0)
    out["score"] = (
        efficacy
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
    ("biomarker_reduction", "biomarker reduction", "{:.2f}"),
    ("teed_relative", "TEED rel.", "{:.2f}"),
    ("time_on_fraction", "time on", "{:.2f}"),
    ("switches_per_min", "switches/min", "{:.1f}"),
    ("time_pathological", "time patho.", "{:.2f}"),
    ("seizure_time_reduction", "seizure time red.", "{:.2f}"),
    ("detection_latency_s", "latency s", "{:.2f}"),
    ("false_detections", "false det.", "{:.1f}"),
]


def leaderboard_markdown(results: list[BenchResult], scenarios: list[Scenario]) -> str:
    """One Markdown table per scenario, controllers ranked by score."""
    out = []
    for scn in scenarios:
        rows = [r for r in results if r.scenario == scn.name]
        cols = [c for c in _COLUMNS if any(c[0] in r.metrics for r in rows)]
        none = [r.mean("time_pathological_none") for r in rows if not r.error]
        out.append(f"### {scn.name} (v{scn.version}, {scn.kind})\n")
        out.append(scn.description + "\n")
        if none:
            out.append(
                f"Time in the pathological state without stimulation: {np.nanmean(none):.2f}.\n"
            )
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
        out.append("")
    return "\n".join(out)


def plot_scenario(results: list[BenchResult], scenario: Scenario, out: str | Path) -> Path:
    """Efficacy versus energy: one point per controller (mean, with instance spread)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    eff_key = "pathological_time_reduction" if scenario.kind == "seizure" else "biomarker_reduction"
    for r in results:
        if r.scenario != scenario.name or r.error:
            continue
        x, y = r.metrics["teed_relative"], r.metrics[eff_key]
        ax.scatter(x, y, s=12, alpha=0.4)
        ax.scatter([np.nanmean(x)], [np.nanmean(y)], s=60, label=r.controller, edgecolors="k")
    ax.set_xlabel("TEED relative to continuous stimulation")
    ax.set_ylabel(eff_key.replace("_", " "))
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
            s.name: {"version": s.version, "kind": s.kind, "description": s.description}
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
