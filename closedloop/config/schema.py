"""Experiment files: YAML validated against a schema, then resolved.

Every section rejects keys it does not know. Errors are collected and
reported as ``key.path: plain sentence`` so a user can find and fix them
without reading a traceback; :class:`ConfigError` carries them.

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
    output:     {chunk_s [1.0], record_baseline [true], figure [true]}
    brian:      {target, record_rates, record_spikes, build_dir, keep_build,
                 stimulate, sense}  [none]  Brian2 models, see closedloop.brian.config
    sweep:      {seed, replicates, batch_size, grid, zip, random}  [none]
                parameter sweep, see closedloop.sweep.runner; ignored by a single run
"""

from __future__ import annotations

import copy
import difflib
import functools
import inspect
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields as dc_fields
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field

from closedloop.device import Device
from closedloop.sensing.chain import SensingChain

__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "apply_overrides",
    "load_config",
    "load_raw",
    "validate_config",
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


def _dataclass_section(
    cls: type, values: Mapping[str, Any], where: str, problems: list[tuple[str, str]]
) -> Any:
    """Build a frozen config dataclass, reporting bad keys and values by path."""
    known = {f.name: f for f in dc_fields(cls) if f.init}
    hints = _class_hints(cls)
    ok = True
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            problems.append((f"{where}.{key}", _unknown(key, known)))
            ok = False
            continue
        try:
            clean[key] = _adapter(hints[key]).validate_python(value)
        except pydantic.ValidationError as exc:
            problems.append((f"{where}.{key}", exc.errors()[0]["msg"]))
            ok = False
    if not ok:
        return None
    try:
        return cls(**clean)
    except ValueError as exc:
        problems.append((where, str(exc)))
        return None


def _adapter(hint: Any) -> pydantic.TypeAdapter:
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
def _class_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unknown(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown key.{hint} Known keys here: {', '.join(sorted(known))}."


def _pydantic_problems(exc: pydantic.ValidationError) -> list[tuple[str, str]]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            section: Any = ExperimentConfig
            for part in err["loc"][:-1]:
                field = (
                    section.model_fields.get(str(part))
                    if hasattr(section, "model_fields")
                    else None
                )
                section = field.annotation if field is not None else None
            known = list(section.model_fields) if hasattr(section, "model_fields") else []
            out.append((loc, _unknown(str(err["loc"][-1]), known)))
        elif err["type"] == "missing":
            out.append((loc, "this key is required"))
        else:
            out.append((loc, err["msg"]))
    return out


def validate_config(raw: Any, source: str = "") -> ResolvedExperiment:
    """Validate a parsed experiment and resolve every name in it.

    Parameters
    ----------
    raw : dict
        The parsed YAML.
    source : str
        Where it came from, for messages.

    Returns
    -------
    ResolvedExperiment

    Raises
    ------
    ConfigError
        Listing every problem found, each with its key path.
    """
    from closedloop.registry import resolve_controller, resolve_model

    if not isinstance(raw, dict):
        raise ConfigError([("(top level)", "an experiment file must be a mapping of keys")], source)
    try:
        cfg = ExperimentConfig.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise ConfigError(_pydantic_problems(exc), source) from None
    problems: list[tuple[str, str]] = []
    sensing = _dataclass_section(SensingChain, cfg.sensing, "sensing", problems)
    device = _dataclass_section(Device, cfg.device, "device", problems)
    model_cls = controller_cls = None
    from closedloop.brian.config import is_brian_experiment

    brian = is_brian_experiment(cfg.model.name, cfg.brian)
    if not brian:
        if cfg.brian is not None:
            problems.append(("brian", "this section is only for Brian2 models"))
        try:
            model_cls = resolve_model(cfg.model.name)
        except ValueError as exc:
            problems.append(("model.name", str(exc)))
    try:
        controller_cls = resolve_controller(cfg.controller.name)
    except ValueError as exc:
        problems.append(("controller.name", str(exc)))
    model = None
    if model_cls is not None:
        try:
            model = model_cls(
                dt_s=cfg.model.dt_s,
                n=cfg.n_instances,
                params=cfg.model.params,
                regime=cfg.model.regime,
            )
        except ValueError as exc:
            problems.append(("model", str(exc)))
    controller = None
    if controller_cls is not None:
        controller = _build_controller(controller_cls, cfg, problems)
    if controller is not None and sensing is not None:
        available = {"biomarker", *sensing.features}
        for name in getattr(controller, "required_features", ()):
            if name not in available:
                problems.append(
                    (
                        "sensing.features",
                        f"controller {cfg.controller.name!r} needs feature {name!r}; add it to "
                        f"sensing.features (now {list(sensing.features)})",
                    )
                )
    loop = None
    if not problems and brian:
        from closedloop.brian.config import loop_from_config

        loop, brian_problems = loop_from_config(cfg, sensing, device, controller)
        problems += brian_problems
    elif not problems:
        from closedloop.core.loop import ClosedLoop

        try:
            loop = ClosedLoop(
                model,
                sensing,
                device,
                controller,
                control_period_s=cfg.control.period_s,
                latency_s=cfg.control.latency_s,
                engine=cfg.control.engine,
                seed=cfg.seed,
            )
        except ValueError as exc:
            problems.append(("control", str(exc)))
        else:
            try:
                loop.program()
            except ValueError as exc:
                problems.append(("control.engine", str(exc)))
    if not problems and cfg.metrics.band_hz[1] >= sensing.rate_hz / 2:
        problems.append(("metrics.band_hz", "the band must lie below half the sensing rate"))
    if problems:
        raise ConfigError(problems, source)
    resolved = ResolvedExperiment(cfg, loop)
    if cfg.sweep is not None:
        from closedloop.sweep.runner import check_sweep_block

        problems = check_sweep_block(cfg.sweep, raw, resolved.resolved_dict())
        if problems:
            raise ConfigError(problems, source)
    return resolved


def _build_controller(cls: type, cfg: ExperimentConfig, problems: list[tuple[str, str]]) -> Any:
    sig = inspect.signature(cls.__init__)
    params = {k: p for k, p in sig.parameters.items() if k != "self"}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    hints = _type_hints(cls.__init__)
    clean = {}
    bad = False
    for key, value in cfg.controller.params.items():
        where = f"controller.params.{key}"
        if key not in params and not takes_any:
            problems.append(
                (
                    where,
                    _unknown(key, [k for k, p in params.items() if p.kind is not p.VAR_KEYWORD]),
                )
            )
            bad = True
            continue
        hint = hints.get(key)
        if hint is not None:
            try:
                value = _adapter(hint).validate_python(value)
            except pydantic.ValidationError as exc:
                problems.append((where, exc.errors()[0]["msg"]))
                bad = True
                continue
        clean[key] = value
    if bad:
        return None
    try:
        controller = cls(**clean)
        # reset() validates values that depend on each other (thresholds, bounds).
        controller.reset(cfg.n_instances, np.random.default_rng(0))
    except (TypeError, ValueError) as exc:
        problems.append(("controller.params", str(exc)))
        return None
    return controller


def _type_hints(func: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func)
    except Exception:  # unresolvable annotations in a user's class: skip type checks
        return {}


class ResolvedExperiment:
    """A validated experiment with its components built (nothing compiled yet).

    Attributes
    ----------
    config : ExperimentConfig
        The validated configuration.
    loop : closedloop.core.loop.ClosedLoop
        Model, sensing chain, device and controller, wired up.
    """

    def __init__(self, config: ExperimentConfig, loop: Any) -> None:
        self.config = config
        self.loop = loop

    def resolved_dict(self) -> dict[str, Any]:
        """The full configuration with every default filled in (for the HDF5 file)."""
        out = self.config.model_dump(mode="json")
        if out.get("sweep") is None:
            out.pop("sweep", None)
        out["sensing"] = self.loop.sensing.to_dict()
        out["device"] = self.loop.device.to_dict()
        out["controller"]["params"] = _jsonable(self.loop.controller.get_params())
        out["model"]["regime"] = self.loop.model.regime
        out["model"]["resolved_params"] = {
            k: v.tolist() for k, v in self.loop.model.param_values.items()
        }
        return out


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in params.items():
        out[k] = v.tolist() if isinstance(v, np.ndarray) else v
    return out


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (values parsed as YAML) to a parsed config.

    Raises
    ------
    ConfigError
        For an override without ``=``.
    """
    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError([(item, "an override must look like key.path=value")], "--set")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                node[part] = nxt
            node = nxt
        node[parts[-1]] = yaml.safe_load(text)
    return out


def load_raw(path: str | Path, overrides: Iterable[str] = ()) -> Any:
    """Read an experiment file and apply overrides, validating nothing else.

    Raises
    ------
    ConfigError
        When the file is missing or is not YAML.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError([("(file)", "no such file")], str(path)) from None
    except yaml.YAMLError as exc:
        raise ConfigError([("(file)", f"not valid YAML: {exc}")], str(path)) from None
    if raw is None:
        raw = {}
    if isinstance(raw, dict):
        raw = apply_overrides(raw, overrides)
    return raw


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> ResolvedExperiment:
    """Read, override, validate and resolve an experiment file.

    Raises
    ------
    ConfigError
        When the file is missing, is not YAML, or does not validate.
    """
    return validate_config(load_raw(path, overrides), str(path))
