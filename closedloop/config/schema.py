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
    model:      {name, dt_s, regime, params}
    sensing:    fields of closedloop.sensing.chain.SensingChain
    control:    {period_s [0.02], latency_s [0], engine [auto]}
    controller: {name, params}         # built-in name or dotted path
    device:     fields of closedloop.device.Device
    metrics:    {band_hz [13, 30], discard_s [0.5], segment_s [1.0],
                 reference: {amplitude_ma [2.0], frequency_hz [130], pulse_width_us [60]}}
    output:     {chunk_s [1.0], record_baseline [true], figure [true], format [hdf5]}
    brian:      {target, record_rates, record_spikes, build_dir, keep_build,
                 stimulate, sense}  [none]  Brian2 models, see closedloop.brian.loop
    sweep:      {seed, replicates, batch_size, grid, zip, random}  [none]
                parameter sweep, see closedloop.sweep.spec; ignored by a single run
    slow:       {epoch_s, every_s}  [none]  explicit time-scale separation for
                long runs: the neural loop runs epoch_s of every every_s of slow
                time (closedloop.core.slow.EpochSchedule); duration_s is then slow time
    drugs:      {period_s, agents: {name: {preset, pk, pd, schedule, route, limits,
                modulates}}}  [none]  the drug layer, see closedloop.drugs.config
"""

from __future__ import annotations

import difflib
import functools
import typing
from collections.abc import Iterable, Sequence
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from closedloop.drugs.config import DrugsSection

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
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSection(_Section):
    """Which model, its integration step and parameter overrides."""

    name: str = "stn_gpe"
    dt_s: float = Field(1e-4, gt=0, description="integration step, s")
    regime: str | None = None
    params: dict[str, float | list[float]] = {}


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


class MetricsSection(_Section):
    """How the metrics are computed."""

    band_hz: tuple[float, float] = (13.0, 30.0)
    discard_s: float = Field(0.5, ge=0, description="initial time left out of spectra, s")
    segment_s: float = Field(1.0, gt=0, description="Welch segment length, s")
    reference: ReferenceSection = ReferenceSection()


class OutputSection(_Section):
    """What is written."""

    chunk_s: float = Field(1.0, gt=0, description="simulated time per HDF5 write, s")
    record_baseline: bool = True
    figure: bool = True
    format: str = Field("hdf5", description="run file format, a key of closedloop.io.RECORDERS")


class SlowSection(_Section):
    """Explicit time-scale separation (see closedloop.core.slow.EpochSchedule)."""

    epoch_s: float = Field(gt=0, description="neural time simulated per slow step, s")
    every_s: float = Field(gt=0, description="slow time covered per epoch, s")


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
    slow: SlowSection | None = None
    drugs: DrugsSection | None = None


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
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown key.{hint} Known keys here: {', '.join(sorted(known))}."


def _model_in(annotation: Any) -> Any:
    """The pydantic model or mapping type inside ``X | None`` (else ``annotation``)."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if hasattr(candidate, "model_fields") or typing.get_origin(candidate) is dict:
            return candidate
    return annotation


def _pydantic_problems(exc: pydantic.ValidationError) -> list[tuple[str, str]]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
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
