"""Scenario files: the format, its validation and the constants of the format version.

See :mod:`closedloop.bench.scenarios` for the format and the metrics.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from closedloop.config import ConfigError, validate_config
from closedloop.config.files import read_yaml

__all__ = [
    "BENCH_FORMAT_VERSION",
    "CLINICAL_METRICS",
    "DEFAULT_EFFICACY",
    "SCORE_WEIGHTS",
    "Scenario",
    "load_scenario",
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
    "plasticity": "plasticity_change",
    "vagal": "vagal_drive_per_pulse",
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
    "plasticity": ("plasticity_bursts", "tms_pulses"),
    "vagal": (
        "physio_pulses_in_expiration_frac",
        "physio_burst_onset_delay_ms",
        "physio_rr_lengthening_ms",
        "physio_ne_mean",
        "vns_charge_uc",
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
    kind: Literal["beta", "synchrony", "seizure", "mood", "fear", "tracking", "plasticity", "vagal"]
    efficacy: (
        Literal[
            "long_burst_time_reduction",
            "band_power_reduction",
            "seizure_time_reduction",
            "pathological_time_reduction",
            "mood_score_reduction",
            "fear_renewal_reduction",
            "control_error_reduction",
            "plasticity_change",
            "vagal_drive_per_pulse",
        ]
        | None
    ) = None
    pathological_threshold: float | None = None
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
    pathological_threshold: float | None
    quick: dict[str, Any]
    target: dict[str, Any] | None
    controllers: dict[str, dict[str, Any]]
    experiment: dict[str, Any]
    path: Path

    def experiment_for(
        self, controller: str, params: dict[str, Any] | None = None, quick: bool = False
    ) -> dict[str, Any]:
        """The raw experiment config for one controller (validated later).

        ``controller`` is a registry name or dotted path, optionally followed
        by ``@label`` (a scenario's arm: the same controller with other
        parameters, for example ``phase_locked@peak``).
        """
        raw = copy.deepcopy(self.experiment)
        # "name@label": the same controller again under other parameters (an arm).
        name, _, label = controller.partition("@")
        short = name.replace(":", ".").split(".")[-1] + (f"-{label}" if label else "")
        raw["name"] = f"{self.name}__{short}"
        raw["controller"] = {
            "name": name,
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
        invalid = [
            (
                ".".join(map(str, e["loc"])) or "(top level)",
                "unknown key" if e["type"] == "extra_forbidden" else e["msg"],
            )
            for e in exc.errors()
        ]
        raise ConfigError(invalid, str(path)) from None
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
    problems: list[tuple[str, str]] = []
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
