"""The experiment schema: what an experiment file may say, as pure data.

Every section rejects keys it does not know. Errors are collected and
reported as ``key.path: plain sentence`` so a user can find and fix them
without reading a traceback; :class:`ConfigError` carries them. Nothing here
builds a model or a loop: :mod:`closedloop.config.build` does that.

Schema (defaults in brackets)::

    name: str                          # run name, used for output file names
    description: str                   [""]
    seed: int >= 0                     [0]
    n_instances: int >= 1              [1]   batch of independent instances
    duration_s: float > 0                    recorded, closed-loop time, s
    warmup_s: float >= 0               [0.5] unrecorded open-loop settling, s
    model:      {name, dt_s, regime, params, sense_node, stim_node}
    sensing:    fields of closedloop.sensing.chain.SensingChain
    control:    {period_s [0.02], latency_s [0], engine [auto]}
    controller: {name, params}         # built-in name or dotted path
    device:     fields of closedloop.device.Device
    metrics:    {band_hz [13, 30], discard_s [0.5], segment_s [1.0],
                 reference: {amplitude_ma [2.0], frequency_hz [130], pulse_width_us [60]},
                 bursts: {percentile [75], min_duration_s [0.1], long_burst_s [0.4]}}
    output:     {chunk_s [1.0], record_baseline [true], figure [true], format [hdf5],
                 dtype [float64], compression [auto], series [all], decimate [{}],
                 hostname [false]}
    brian:      {target, record_rates, record_spikes, build_dir, keep_build,
                 stimulate, sense}  [none]  Brian2 models, see closedloop.brian.loop
    sweep:      {seed, replicates, batch_size, grid, zip, random}  [none]
                parameter sweep, see closedloop.sweep.spec; ignored by a single run
    cohort:     {table | priors, rules, arms, responder, remission, held_out_fraction,
                 seed}  [none]  virtual patients, see closedloop.cohort.plan; run by
                `closedloop cohort`, ignored by a single run
    symptoms:   list of {name, readout, healthy_level, symptomatic_level, tau_s,
                scale, initial_severity, report_every_s, report_sd, period_s}  [none]
                slow symptom states read out as clinical scores
                (closedloop.symptoms.SymptomState)
    kalman: {model, feature}  [none]  Kalman estimate of an identified model as features
                (kalman_x<i>, kalman_y_pred; closedloop.control.estimation.KalmanFeature)
    fear_expression: {period_s}  [none]  per-CS fear index, extinction speed, renewal
                (closedloop.symptoms.FearExpression; fear/extinction models)
    drift:      {period_s, terms: [{kind, params, ...}]}  [none]  electrode encapsulation,
                disease progression, circadian rhythm (closedloop.drift.Drift)
    slow:       {epoch_s, every_s}  [none]  explicit time-scale separation for
                long runs: the neural loop runs epoch_s of every every_s of slow
                time (closedloop.core.slow.EpochSchedule); duration_s is then slow time
    physiology: {period_s, sensor_delay_s, respiration, cardiac, vagal}  [none]
                breathing and heart clocks (controller features, breath / R-peak
                events) and the vagal afferent route, see closedloop.physiology.config
    drugs:      {period_s, agents: {name: {preset, pk, pd, schedule, route, limits,
                modulates}}}  [none]  the drug layer, see closedloop.drugs.config
    neurofeedback: {parameter, effects, readout, display_rate_hz, latency_s, ...,
                sham: {instances, source}}  [none]  a simulated subject learning to
                regulate a biomarker, see closedloop.neurofeedback.config
    plasticity: {preferred_phase_rad, kappa, gain_pct, tau_s, frequency_hz, max_gap_s}
                [none]  phase-dependent plasticity readout over the delivered bursts
                (closedloop.analysis.plasticity)
"""

from __future__ import annotations

import functools
import re
import typing
from collections.abc import Iterable, Sequence
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from closedloop.core.plugins import did_you_mean
from closedloop.drift import DriftTerm
from closedloop.drugs.config import DrugsSection
from closedloop.neurofeedback.config import NeurofeedbackSection
from closedloop.physiology.config import PhysiologySection

__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "class_hints",
    "parse_experiment",
    "type_adapter",
    "unknown_key",
]


class ConfigError(ValueError):
    """An experiment file is invalid: ``problems`` lists ``(key.path, sentence)``."""

    def __init__(self, problems: Sequence[tuple[str, str]], source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__("\n".join(f"{prefix}{path}: {msg}" for path, msg in self.problems))


class _Section(BaseModel):
    # inf and NaN are never a sensible duration, step or limit: refused here
    # rather than failing mid-run (an infinite duration_s overflows the step count).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ModelSection(_Section):
    """Which model, its integration step and parameter overrides."""

    name: str = "stn_gpe"
    dt_s: float = Field(1e-4, gt=0, description="integration step, s")
    regime: str | None = None
    params: dict[str, float | list[float]] = {}
    sense_node: str | None = Field(
        None, description="multi-node models: the node whose signal the sensing chain reads"
    )
    stim_node: str | None = Field(
        None, description="multi-node models: the node the device's drive enters"
    )


class ControlSection(_Section):
    """Control clock and sensing-to-stimulation latency."""

    period_s: float = Field(0.02, gt=0, description="control period, s")
    latency_s: float = Field(0.0, ge=0, description="sensing-to-stimulation delay, s")
    engine: typing.Literal["auto", "python", "compiled"] = Field(
        "auto", description="run the controller in Python or as its compiled twin"
    )


class ControllerSection(_Section):
    """Controller by registry name or dotted path, with its parameters."""

    name: str = "open_loop"
    params: dict[str, Any] = {}


class ReferenceSection(_Section):
    """Continuous stimulation that TEED is compared with."""

    amplitude_ma: float = Field(2.0, ge=0)
    frequency_hz: float = Field(130.0, gt=0)
    pulse_width_us: float = Field(60.0, gt=0)


class BurstsSection(_Section):
    """How bursts of the sensed envelope are defined (closedloop.analysis.bursts)."""

    percentile: float = Field(
        75.0, gt=0, lt=100, description="threshold: percentile of the no-stimulation envelope"
    )
    min_duration_s: float = Field(0.1, ge=0, description="shortest burst, s")
    long_burst_s: float = Field(0.4, gt=0, description="a burst at least this long is long, s")

    @pydantic.model_validator(mode="after")
    def _long_not_shorter_than_min(self) -> BurstsSection:
        if self.long_burst_s < self.min_duration_s:
            raise ValueError(
                f"long_burst_s ({self.long_burst_s} s) must be at least min_duration_s "
                f"({self.min_duration_s} s)"
            )
        return self


class MetricsSection(_Section):
    """How the metrics are computed."""

    band_hz: tuple[float, float] = (13.0, 30.0)
    discard_s: float = Field(0.5, ge=0, description="initial time left out of spectra, s")
    segment_s: float = Field(1.0, gt=0, description="Welch segment length, s")
    reference: ReferenceSection = ReferenceSection()
    bursts: BurstsSection = BurstsSection()


class OutputSection(_Section):
    """What is written."""

    chunk_s: float = Field(1.0, gt=0, description="simulated time per HDF5 write, s")
    record_baseline: bool = True
    figure: bool = True
    format: str = Field("hdf5", description="run file format, a key of closedloop.io.RECORDERS")
    dtype: typing.Literal["float64", "float32"] = Field(
        "float64", description="stored type of the time series (float32: about 7 digits)"
    )
    compression: typing.Literal[
        "auto",
        "none",
        "lzf",
        "gzip",
        "gzip-1",
        "gzip-2",
        "gzip-3",
        "gzip-4",
        "gzip-5",
        "gzip-6",
        "gzip-7",
        "gzip-8",
        "gzip-9",
    ] = Field(
        "auto",
        description="HDF5 filter of the time series; auto: lzf except on the sensing clock "
        "(closedloop.io.storage)",
    )
    series: list[str] | None = Field(
        None, description="time series to write, e.g. [amplitude, biomarker]; all when unset"
    )
    decimate: dict[str, int] = Field(
        {}, description="series name to k: keep every k-th sample (rate divided by k)"
    )
    hostname: bool = Field(False, description="record the machine's hostname in provenance")

    @pydantic.field_validator("decimate")
    @classmethod
    def _positive_factors(cls, value: dict[str, int]) -> dict[str, int]:
        bad = {k: v for k, v in value.items() if v < 1}
        if bad:
            raise ValueError(f"decimation factors must be integers >= 1, got {bad}")
        return value


class FearExpressionSection(_Section):
    """Per-CS fear index and extinction outcomes (closedloop.symptoms.FearExpression)."""

    period_s: float = Field(0.05, gt=0, description="how often CS responses are read, s")


class DriftSection(_Section):
    """Parameter drift over days (see closedloop.drift)."""

    period_s: float = Field(3600.0, gt=0, description="slow step, s")
    terms: list[DriftTerm] = Field(min_length=1)


class KalmanSection(_Section):
    """The Kalman estimate of an identified model as features (closedloop.control.estimation)."""

    model: str = Field(description="identified model .npz, relative to the experiment file")
    feature: str = Field("biomarker", description="the readout the model's output is")


class SlowSection(_Section):
    """Explicit time-scale separation (see closedloop.core.slow.EpochSchedule)."""

    epoch_s: float = Field(gt=0, description="neural time simulated per slow step, s")
    every_s: float = Field(gt=0, description="slow time covered per epoch, s")


class SymptomSection(_Section):
    """A slow symptom state (see closedloop.symptoms.SymptomState)."""

    name: str = Field("mood", pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    readout: str = "biomarker"
    healthy_level: float | list[float] = 0.0
    symptomatic_level: float | list[float] = 1.0
    tau_s: float | list[float] = Field(3 * 86400.0, description="severity time constant, s")
    scale: typing.Literal["hamd17", "fear_index"] = "hamd17"
    initial_severity: float | list[float] = 1.0
    report_every_s: float = Field(8 * 3600.0, gt=0, description="self-report interval, s")
    report_sd: float = Field(2.0, ge=0, description="self-report noise, score units")
    period_s: float = Field(60.0, gt=0, description="slow step, s")


class PlasticitySection(_Section):
    """The phase-dependent plasticity readout (see closedloop.analysis.plasticity)."""

    preferred_phase_rad: float = Field(
        3.141592653589793, description="phase at which a burst potentiates most, rad"
    )
    kappa: float = Field(2.0, ge=0, le=50, description="von Mises concentration, 1")
    gain_pct: float = Field(0.5, allow_inf_nan=False, description="change per burst scale, %")
    tau_s: float = Field(1800.0, gt=0, allow_inf_nan=False, description="after-effect decay, s")
    frequency_hz: float | None = Field(
        None, gt=0, description="frequency of the phase fit, Hz (default: metrics band centre)"
    )
    max_gap_s: float = Field(0.05, gt=0, description="pulses closer than this form a burst, s")


class ExperimentConfig(_Section):
    """A whole experiment file (see the module docstring)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    seed: int = Field(0, ge=0)
    n_instances: int = Field(1, ge=1)
    duration_s: float = Field(gt=0)
    warmup_s: float = Field(0.5, ge=0)
    model: ModelSection = ModelSection()
    sensing: dict[str, Any] = {}
    control: ControlSection = ControlSection()
    controller: ControllerSection = ControllerSection()
    device: dict[str, Any] = {}
    metrics: MetricsSection = MetricsSection()
    output: OutputSection = OutputSection()
    brian: dict[str, Any] | None = None
    sweep: dict[str, Any] | None = None
    cohort: dict[str, Any] | None = None
    symptoms: list[SymptomSection] = []
    drift: DriftSection | None = None
    fear_expression: FearExpressionSection | None = None
    slow: SlowSection | None = None
    drugs: DrugsSection | None = None
    neurofeedback: NeurofeedbackSection | None = None
    physiology: PhysiologySection | None = None
    kalman: KalmanSection | None = None
    plasticity: PlasticitySection | None = None

    @pydantic.field_validator("name")
    @classmethod
    def _not_a_directory_alias(cls, value: str) -> str:
        # The name becomes a file or directory name: '.' and '..' would write
        # into the output directory itself or its parent.
        if set(value) == {"."}:
            raise ValueError("a name made only of dots would name a directory, not a file")
        return value


def type_adapter(hint: Any) -> pydantic.TypeAdapter:
    """A validator for a type hint, cached: building one costs more than using it
    (sweeps validate thousands of configs)."""
    try:
        return _cached_adapter(hint)
    except TypeError:  # an unhashable hint
        return pydantic.TypeAdapter(hint)


@functools.lru_cache(maxsize=256)
def _cached_adapter(hint: Any) -> pydantic.TypeAdapter:
    return pydantic.TypeAdapter(hint)


@functools.lru_cache(maxsize=64)
def class_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def unknown_key(key: str, known: Iterable[str]) -> str:
    """The sentence for an unknown key: the closest known one, and all of them."""
    known = list(known)
    return f"unknown key.{did_you_mean(key, known)} Known keys here: {', '.join(sorted(known))}."


#: Parts of a pydantic error location that name a branch of a union type
#: (``float``, ``list[float]``), not a key: left out of the key path.
_UNION_BRANCH = re.compile(r"^(float|int|str|bool|(list|dict|tuple)\[.*\])$")


def _model_in(annotation: Any) -> Any:
    """The pydantic model or mapping type inside ``X | None`` (else ``annotation``)."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if hasattr(candidate, "model_fields") or typing.get_origin(candidate) is dict:
            return candidate
    return annotation


def _pydantic_problems(exc: pydantic.ValidationError) -> list[tuple[str, str]]:
    out = []
    seen = set()
    for err in exc.errors():
        parts = [
            str(p) for k, p in enumerate(err["loc"]) if k < 2 or not _UNION_BRANCH.match(str(p))
        ]
        loc = ".".join(parts) or "(top level)"
        if loc in seen:  # one problem per key, not one per branch of a union
            continue
        seen.add(loc)
        if err["type"] == "extra_forbidden":
            section: Any = ExperimentConfig
            for part in err["loc"][:-1]:
                if typing.get_origin(section) is dict:  # part is a key of a mapping
                    section = _model_in(typing.get_args(section)[1])
                    continue
                field = (
                    section.model_fields.get(str(part))
                    if hasattr(section, "model_fields")
                    else None
                )
                section = _model_in(field.annotation) if field is not None else None
            known = (
                [f.alias or name for name, f in section.model_fields.items()]
                if hasattr(section, "model_fields")
                else []
            )
            out.append((loc, unknown_key(str(err["loc"][-1]), known)))
        elif err["type"] == "missing":
            out.append((loc, "this key is required"))
        elif err["type"] == "value_error":
            out.append((loc, str(err["ctx"]["error"]) if "ctx" in err else err["msg"]))
        else:
            out.append((loc, err["msg"]))
    return out


def parse_experiment(raw: Any, source: str = "") -> ExperimentConfig:
    """Check a parsed experiment file against the schema (nothing is built).

    Raises
    ------
    ConfigError
        Listing every problem found, each with its key path.
    """
    if not isinstance(raw, dict):
        raise ConfigError([("(top level)", "an experiment file must be a mapping of keys")], source)
    try:
        return ExperimentConfig.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise ConfigError(_pydantic_problems(exc), source) from None
