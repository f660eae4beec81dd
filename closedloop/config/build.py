"""The one step that turns a validated experiment into a runnable loop.

:func:`validate_config` checks a parsed file against the schema
(:mod:`closedloop.config.schema`), then builds its sensing chain, device,
model, controller and loop, reporting every problem by key path. It is the
only factory: the command line, the sweep worker, the benchmark and the
Brian2 side all get their loops from it.
"""

from __future__ import annotations

import functools
import inspect
import re
import typing
from collections.abc import Mapping
from dataclasses import fields as dc_fields
from dataclasses import replace as dc_replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pydantic

from closedloop.brian.config import is_brian_experiment, loop_from_config
from closedloop.config.checks import memory_problem, model_bytes_per_instance, run_problems
from closedloop.config.schema import (
    ConfigError,
    ControlSection,
    ExperimentConfig,
    ModelSection,
    class_hints,
    parse_experiment,
    type_adapter,
    unknown_key,
)
from closedloop.core.loop import ClosedLoop
from closedloop.core.record import PER_PERIOD_SERIES
from closedloop.core.slow import EpochSchedule, SlowProcess, readout_names
from closedloop.device import Device
from closedloop.device.config import MODALITY_BLOCKS, MODALITY_COMMANDS
from closedloop.drift import Drift
from closedloop.drugs.config import drug_layer
from closedloop.io import RECORDERS
from closedloop.neurofeedback.config import neurofeedback_process
from closedloop.physiology.config import physiology_clock
from closedloop.registry import resolve_controller, resolve_model
from closedloop.sensing.chain import SensingChain
from closedloop.sweep.spec import check_sweep_block
from closedloop.symptoms import FearExpression, SymptomState

if TYPE_CHECKING:
    from closedloop.brian.loop import BrianLoop

__all__ = ["ResolvedExperiment", "resolve_beside", "validate_config"]


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
    cfg = parse_experiment(raw, source)
    problems: list[tuple[str, str]] = []
    sensing = _dataclass_section(SensingChain, cfg.sensing, "sensing", problems)
    device = _device_section(cfg.device, problems)
    early = run_problems(cfg, sensing.rate_hz if sensing is not None else None)
    problems += early
    # A step too small to count in, or more instances than memory holds: the
    # model is not built (building it would allocate the arrays).
    unbuildable = any(path == "model.dt_s" for path, _ in early)
    too_many = False
    model_cls = controller_cls = None
    brian = is_brian_experiment(cfg.model.name, cfg.brian)
    modality = cfg.device.get("modality", "dbs")
    if brian and modality != "dbs":
        problems.append(
            ("device.modality", f"{modality!r}: Brian2 models take DBS only; use a Numba model")
        )
    commands = MODALITY_COMMANDS.get(modality)
    if commands is not None and commands.refused:
        # A controller parameter ending in a refused key (max_amplitude_ma) would command it.
        for key in cfg.controller.params or {}:
            refused = [slot for slot in commands.refused if key.endswith(slot)]
            if refused:
                problems.append((f"controller.params.{key}", commands.refusal(refused[0])))
    if brian and cfg.slow is not None:
        problems.append(("slow", "slow processes run only with Numba models for now"))
    if brian and cfg.drugs is not None:
        problems.append(("drugs", "the drug layer runs only with Numba models for now"))
    if brian and cfg.physiology is not None:
        problems.append(("physiology", "physiological clocks run only with Numba models for now"))
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
    # Multi-node plants: the sensed and the stimulated node, checked by the model.
    nodes = {k: v for k in ("sense_node", "stim_node") if (v := getattr(cfg.model, k)) is not None}
    for key, value in nodes.items() if brian else ():
        problems.append(
            (
                f"model.{key}",
                f"{value!r}: Brian2 models choose their sensed and stimulated populations "
                "in the brian: section (brian.sense, brian.stimulate)",
            )
        )
    model = None
    if model_cls is not None and sensing is not None and not unbuildable:
        too_big = memory_problem(
            cfg, 1.0 / sensing.rate_hz, lambda: model_bytes_per_instance(model_cls, cfg)
        )
        if too_big is not None:
            problems.append(too_big)
            unbuildable = too_many = True
    if model_cls is not None and not unbuildable:
        try:
            model = model_cls(
                dt_s=cfg.model.dt_s,
                n=cfg.n_instances,
                params=cfg.model.params,
                regime=cfg.model.regime,
                **nodes,
            )
        except ValueError as exc:
            # a parameter's problem at its own key path (model.params.w_GS)
            named = re.match(r"model parameter '([^']+)'", str(exc))
            problems.append((f"model.params.{named.group(1)}" if named else "model", str(exc)))
    slow: list[SlowProcess] = []
    epochs = None
    if model is not None:
        slow, epochs = slow_processes(cfg, model, problems, source)
    controller = None
    if controller_cls is not None and not too_many:
        controller = _build_controller(controller_cls, cfg, problems, source)
    if controller is not None and sensing is not None:
        # Slow processes' series reach a controller as features too.
        available = {"biomarker", *sensing.features}
        available |= {f"{p.name}_{key}" for p in slow for key in p.series()}
        # A block that failed reports its own problems, not its missing features.
        failed = {
            prefix
            for prefix, block in (("drugs_", cfg.drugs), ("physio_", cfg.physiology))
            if block is not None and not any(f"{p.name}_" == prefix for p in slow)
        }
        for name in getattr(controller, "required_features", ()):
            if any(name.startswith(prefix) for prefix in failed):
                continue
            if name not in available:
                block = {"drugs_": "drugs", "physio_": "physiology"}.get(name.split("_")[0] + "_")
                problems.append(
                    (
                        "sensing.features",
                        f"controller {cfg.controller.name!r} needs feature {name!r}; add it to "
                        f"sensing.features (now {list(sensing.features)})"
                        + (f" or the {block}: block" if block else ""),
                    )
                )
    loop: ClosedLoop | BrianLoop | None = None
    # no problems means a controller (and, for Numba models, a model) was built
    if not problems and brian and controller is not None:
        loop, brian_problems = loop_from_config(cfg, sensing, device, controller)
        problems += brian_problems
    elif not problems and model is not None and controller is not None:
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
                slow=slow,
                epochs=epochs,
            )
        except ValueError as exc:
            msg = str(exc)
            key = "slow" if slow and "slow" in msg else "control"
            if msg.startswith("slow process 'drugs'"):
                key = "drugs.period_s"
            problems.append((key, msg))
        else:
            try:
                loop.program()
            except ValueError as exc:
                problems.append(("control.engine", str(exc)))
    if cfg.output.format not in RECORDERS:
        problems.append(
            (
                "output.format",
                f"unknown run file format {cfg.output.format!r}; known: "
                f"{', '.join(sorted(RECORDERS))}",
            )
        )
    if not problems and cfg.metrics.band_hz[1] >= sensing.rate_hz / 2:
        problems.append(("metrics.band_hz", "the band must lie below half the sensing rate"))
    if problems:
        raise ConfigError([(_key_path(path, msg), msg) for path, msg in problems], source)
    resolved = ResolvedExperiment(cfg, loop)
    if cfg.sweep is not None:
        problems = check_sweep_block(cfg.sweep, raw, resolved.resolved_dict())
        if problems:
            raise ConfigError(problems, source)
    return resolved


def slow_processes(
    cfg: ExperimentConfig, model: Any, problems: list[tuple[str, str]], source: str = ""
) -> tuple[list[SlowProcess], EpochSchedule | None]:
    """The slow processes an experiment asks for, and its epoch schedule.

    Problems are appended to ``problems`` as ``(key path, message)``;
    ``source`` is the experiment file (files it names resolve beside it).
    """
    processes: list[SlowProcess] = []
    epochs = None
    for k, section in enumerate(cfg.symptoms):
        where = f"symptoms.{k}"
        try:
            state = SymptomState(**section.model_dump())
        except ValueError as exc:
            problems.append((where, str(exc)))
            continue
        offered = loop_readouts(cfg, model)
        if offered is not None and state.readout not in offered:
            problems.append(
                (
                    f"{where}.readout",
                    f"{state.readout!r} is not something the loop offers a slow process; "
                    f"known: {', '.join(sorted(offered))}",
                )
            )
            continue
        processes.append(state)
    if cfg.fear_expression is not None:
        offered = loop_readouts(cfg, model) or ()
        if model is not None and "cs_trials" not in offered:
            problems.append(
                (
                    "fear_expression",
                    f"model {model.name!r} has no CS responses to read: use a fear/extinction "
                    "model (fear_extinction)",
                )
            )
        else:
            processes.append(FearExpression(cfg.fear_expression.period_s))
    if cfg.physiology is not None and model is not None:
        if cfg.slow is not None:
            problems.append(("physiology", "physiological clocks run without an epoch schedule"))
        else:
            clock = physiology_clock(cfg.physiology, model, cfg.control.period_s, problems)
            if clock is not None:
                processes.append(clock)
    if cfg.drift is not None and model is not None:
        base = {}
        for k, term in enumerate(cfg.drift.terms):
            for key in term.params:
                if key not in model.modulatable:
                    problems.append(
                        (
                            f"drift.terms.{k}.params",
                            f"model {model.name!r} does not let {key!r} change while it runs; "
                            f"modulatable: {', '.join(model.modulatable) or 'none'}",
                        )
                    )
                else:
                    base[key] = model.param_values[key]
        try:
            processes.append(Drift(cfg.drift.terms, base, cfg.drift.period_s))
        except ValueError as exc:
            problems.append(("drift", str(exc)))
    if cfg.neurofeedback is not None:
        subject = neurofeedback_process(
            cfg.neurofeedback, model, cfg.n_instances, loop_readouts(cfg, model), problems
        )
        if subject is not None:
            processes.append(subject)
    if cfg.kalman is not None:
        kalman = kalman_feature(cfg, model, problems, source)
        if kalman is not None:
            processes.append(kalman)
    if cfg.drugs is not None:
        layer = drug_layer(cfg.drugs, model, cfg.n_instances, problems)
        if layer is not None:
            processes.append(layer)
    if cfg.slow is not None:
        try:
            epochs = EpochSchedule(cfg.slow.epoch_s, cfg.slow.every_s)
        except ValueError as exc:
            problems.append(("slow", str(exc)))
        else:
            n_epochs = cfg.duration_s / epochs.every_s
            if abs(n_epochs - round(n_epochs)) > 1e-9 * max(1.0, n_epochs) or n_epochs < 0.5:
                problems.append(
                    (
                        "duration_s",
                        f"with an epoch schedule duration_s is slow time and must be a whole "
                        f"number of slow.every_s ({epochs.every_s:g} s), got {cfg.duration_s:g}",
                    )
                )
        if not processes and cfg.drugs is None:
            problems.append(
                ("slow", "an epoch schedule needs a slow process (drugs, a symptom state)")
            )
    return processes, epochs


def kalman_feature(
    cfg: ExperimentConfig, model: Any, problems: list[tuple[str, str]], source: str = ""
) -> SlowProcess | None:
    """The ``kalman:`` block's filter, or None after appending its problems."""
    from closedloop.control.estimation import KalmanFeature

    block = cfg.kalman
    if block is None:
        raise ValueError("kalman_feature: the experiment has no kalman: block")
    offered = loop_readouts(cfg, model)
    if offered is not None and block.feature not in offered:
        problems.append(
            (
                "kalman.feature",
                f"{block.feature!r} is not a readout of this loop; known: "
                f"{', '.join(sorted(offered))}",
            )
        )
        return None
    path = resolve_beside(block.model, source)
    try:
        return KalmanFeature(path, block.feature, cfg.control.period_s)
    except FileNotFoundError:
        problems.append(("kalman.model", f"no such file: {path}"))
    except (OSError, KeyError, ValueError) as exc:
        problems.append(("kalman.model", f"{path}: {exc}"))
    return None


def loop_readouts(cfg: ExperimentConfig, model: Any) -> tuple[str, ...] | None:
    """The readout keys a slow process may read in this experiment (None: unknown).

    The per-period series, each configured feature as ``feature_<name>``,
    the model's observables (known after a reset) and ``delivered_charge_uc``.
    """
    if model is None:
        return None
    features = [f"feature_{name}" for name in cfg.sensing.get("features", ())]
    probe = model.like(n=model.n)
    probe.reset(0)
    return readout_names((*PER_PERIOD_SERIES, *features), tuple(probe.observables()))


def resolve_beside(value: Any, source: str) -> Any:
    """A relative file path in an experiment, resolved beside the experiment file.

    A string with a file suffix (``models/plant.npz``) names the file next to
    the experiment file ``source`` when one is there; otherwise it is left as
    written (relative to the working directory, as before), so files written
    with paths from the repository root keep working. Anything else is
    returned unchanged.
    """
    if not isinstance(value, str) or not source or not Path(value).suffix:
        return value
    path = Path(value)
    if path.is_absolute():
        return value
    beside = Path(source).parent / path
    return str(beside) if beside.is_file() else value


def _build_controller(
    cls: type[Any], cfg: ExperimentConfig, problems: list[tuple[str, str]], source: str = ""
) -> Any:
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
                    unknown_key(key, [k for k, p in params.items() if p.kind is not p.VAR_KEYWORD]),
                )
            )
            bad = True
            continue
        hint = hints.get(key)
        if hint is not None:
            try:
                value = type_adapter(hint).validate_python(value)
            except pydantic.ValidationError as exc:
                problems.append((where, exc.errors()[0]["msg"]))
                bad = True
                continue
        # Files a controller reads (an identified model) sit beside the experiment.
        clean[key] = resolve_beside(value, source)
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
        for key in ("sense_node", "stim_node"):
            out["model"].pop(key, None)
        out["model"].update(getattr(self.loop.model, "node_settings", dict)())
        out["model"]["resolved_params"] = {
            k: v.tolist() for k, v in self.loop.model.param_values.items()
        }
        return out


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in params.items():
        out[k] = v.tolist() if isinstance(v, np.ndarray) else v
    return out


def _device_section(values: Mapping[str, Any], problems: list[tuple[str, str]]) -> Any:
    """The device: its DBS keys, then the active modality's block (``device.tms`` ...)."""
    values = dict(values)
    blocks = {name: values.pop(name) for name in MODALITY_BLOCKS if name in values}
    device = _dataclass_section(Device, values, "device", problems)
    built = {}
    for name, block in blocks.items():
        where = f"device.{name}"
        if not isinstance(block, Mapping):
            problems.append((where, f"must be a mapping of settings, got {block!r}"))
            continue
        built[name] = _dataclass_section(MODALITY_BLOCKS[name], block, where, problems)
    if device is None or any(b is None for b in built.values()) or len(built) < len(blocks):
        return None
    try:
        return dc_replace(device, **built)
    except ValueError as exc:
        problems.append(("device", str(exc)))
        return None


def _dataclass_section(
    cls: type, values: Mapping[str, Any], where: str, problems: list[tuple[str, str]]
) -> Any:
    """Build a frozen config dataclass, reporting bad keys and values by path."""
    known = {f.name: f for f in dc_fields(cls) if f.init}
    hints = class_hints(cls)
    ok = True
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            problems.append((f"{where}.{key}", unknown_key(key, known)))
            ok = False
            continue
        try:
            clean[key] = type_adapter(hints[key]).validate_python(value)
        except pydantic.ValidationError as exc:
            problems.append((f"{where}.{key}", exc.errors()[0]["msg"]))
            ok = False
            continue
    if not ok:
        return None
    try:
        built = cls(**clean)
    except ValueError as exc:
        problems.append((where, str(exc)))
        return None
    # What the section's own checks let through: NaN, and inf where it does
    # not mean "no limit" (it would fail mid-run or give NaN metrics).
    non_finite = [(f"{where}.{k}", _non_finite(f"{where}.{k}", v)) for k, v in clean.items()]
    non_finite = [(path, msg) for path, msg in non_finite if msg]
    problems += non_finite
    return None if non_finite else built


#: Keys whose documented value ``inf`` means "no limit".
_INF_MEANS_NONE = frozenset(
    {
        "device.ramp_rate_ma_per_s",
        "device.max_charge_density_uc_per_cm2",
        "device.max_triggers_per_day",
        "device.max_charge_uc_per_day",
        "device.max_on_time_s_per_day",
        "device.tms.max_pulses_per_day",
    }
)


def _non_finite(path: str, value: Any) -> str:
    """The sentence for a NaN (or, but where it means "none", infinite) value; else ""."""
    values = value if isinstance(value, list | tuple) else [value]
    floats = [v for v in values if isinstance(v, float)]
    if any(np.isnan(v) for v in floats):
        return "must be a number, got NaN"
    if path not in _INF_MEANS_NONE and any(np.isinf(v) for v in floats):
        return f"must be finite, got {value!r}"
    return ""


@functools.lru_cache(maxsize=1)
def _section_keys() -> dict[str, frozenset[str]]:
    """The keys of each section whose objects check values that depend on each other."""
    return {
        "sensing": frozenset(f.name for f in dc_fields(SensingChain) if f.init),
        "device": frozenset(f.name for f in dc_fields(Device) if f.init),
        "control": frozenset(ControlSection.model_fields),
        "model": frozenset(ModelSection.model_fields),
    }


_KEY_IN_SENTENCE = re.compile(r"\b(sensing|device|control|model)\.(\w+)")


def _key_path(path: str, message: str) -> str:
    """The key path of a problem filed under a whole section.

    The sensing chain, the device and the loop check values that depend on
    each other and raise sentences that name the key first at fault
    (``sensing.band_hz must satisfy ...``); report that key, not just its
    section, so a user (and a script) finds it by path.
    """
    keys = _section_keys()
    block = (
        MODALITY_BLOCKS.get(path.removeprefix("device.")) if path.startswith("device.") else None
    )
    if block is not None:  # a modality's block: the key its sentence names
        names = {f.name for f in dc_fields(block)}
        for key in re.findall(rf"\b{re.escape(path)}\.(\w+)", message):
            if key in names:
                return f"{path}.{key}"
        return path
    if path not in keys:
        return path
    for match in _KEY_IN_SENTENCE.finditer(message):
        section, key = match.groups()
        if key in keys[section]:
            return f"{section}.{key}"
    return path
