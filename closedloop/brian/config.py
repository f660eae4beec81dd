"""Brian2 experiments from files: the ``brian`` section and the loop it describes.

:func:`is_brian_experiment` tells whether an experiment's model runs in
Brian2; :func:`loop_from_config` builds the :class:`~closedloop.brian.loop.BrianLoop`
of a validated experiment (a built-in Brian2 model or a user's network,
:data:`BRIAN_SECTION` giving the keys of the ``brian`` section and their
defaults), or says with the key's path what is wrong.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from closedloop.brian.build import BRIAN_MISSING
from closedloop.brian.loop import BrianLoop
from closedloop.brian.model import BrianModel
from closedloop.brian.network import ExternalNetwork
from closedloop.brian.registry import BRIAN_MODELS, resolve_brian_model
from closedloop.brian.runtime import BRIAN_TARGETS
from closedloop.controllers.base import Controller
from closedloop.core.plugins import did_you_mean
from closedloop.device import Device
from closedloop.sensing.chain import SensingChain

__all__ = ["BRIAN_SECTION", "is_brian_experiment", "loop_from_config"]

#: Keys of an experiment file's ``brian`` section, with defaults.
BRIAN_SECTION: dict[str, Any] = {
    "target": "auto",  # auto | cython | numpy | cpp_standalone
    "record_rates": False,  # rate_<population> time series at the sensing rate
    "record_spikes": [],  # populations whose spikes are recorded
    "build_dir": None,  # parent of cpp_standalone build directories [system temp]
    "keep_build": False,  # keep the cpp_standalone build directory
    "stimulate": None,  # a user network: group, variable, gain, gain_unit, fraction|indices
    "sense": None,  # a user network: group, reduce (rate|mean|sum), variable, unit
}


def is_brian_experiment(model_name: str, brian: Any = None) -> bool:
    """Whether an experiment's model runs in Brian2 (a built-in Brian2 model or a user network)."""
    section = dict(brian or {})
    return model_name in BRIAN_MODELS or bool(section.get("stimulate") or section.get("sense"))


def loop_from_config(
    config: Any, sensing: SensingChain, device: Device, controller: Controller
) -> tuple[BrianLoop | None, list[tuple[str, str]]]:
    """Build the :class:`BrianLoop` of a validated experiment, or say what is wrong.

    Parameters
    ----------
    config : closedloop.config.schema.ExperimentConfig
        The validated file: ``model`` (``name`` a Brian2 model's registry name
        or dotted path, or, with ``brian.stimulate`` and ``brian.sense``, the
        dotted path of a function that builds the user's network), ``seed``,
        ``n_instances``, ``control``, ``output.record_baseline`` and the
        ``brian`` section (:data:`BRIAN_SECTION`, as a dict).
    sensing, device, controller
        Built from their sections.

    Returns
    -------
    loop : BrianLoop or None
    problems : list of (key path, sentence)
        Empty when the loop was built.
    """
    problems: list[tuple[str, str]] = []
    section = dict(getattr(config, "brian", None) or {})
    for key in section:
        if key not in BRIAN_SECTION:
            hint = did_you_mean(key, BRIAN_SECTION)
            problems.append(
                (f"brian.{key}", f"unknown key.{hint} Known keys here: {', '.join(BRIAN_SECTION)}.")
            )
    opts = {**BRIAN_SECTION, **{k: v for k, v in section.items() if k in BRIAN_SECTION}}
    if opts["target"] not in BRIAN_TARGETS:
        problems.append(("brian.target", f"must be one of {', '.join(BRIAN_TARGETS)}"))
    if problems:
        return None, problems
    m = config.model
    if importlib.util.find_spec("brian2") is None:
        return None, [("model.name", f"{m.name!r}: {BRIAN_MISSING}")]
    try:
        if opts["stimulate"] or opts["sense"]:
            if not (opts["stimulate"] and opts["sense"]):
                raise ValueError("a user network needs both brian.stimulate and brian.sense")
            model: BrianModel = ExternalNetwork(
                m.name,
                stimulate=opts["stimulate"],
                sense=opts["sense"],
                dt_s=m.dt_s,
                n=config.n_instances,
                params=dict(m.params),
                regime=m.regime,
            )
        else:
            model = resolve_brian_model(m.name)(
                dt_s=m.dt_s, n=config.n_instances, params=dict(m.params), regime=m.regime
            )
    except ValueError as exc:
        return None, [("model", str(exc))]
    try:
        loop = BrianLoop(
            model,
            sensing,
            device,
            controller,
            control_period_s=config.control.period_s,
            latency_s=config.control.latency_s,
            seed=config.seed,
            engine=config.control.engine,
            target=opts["target"],
            baseline=bool(config.output.record_baseline),
            record_rates=bool(opts["record_rates"]),
            record_spikes=tuple(opts["record_spikes"] or ()),
            build_dir=opts["build_dir"],
            keep_build=bool(opts["keep_build"]),
        )
        if opts["target"] != "cpp_standalone":
            loop.program()
    except ValueError as exc:
        return None, [("control" if "control" in str(exc) else "brian", str(exc))]
    populations = getattr(model, "populations", loop.record_spikes)
    unknown = [p for p in loop.record_spikes if p not in populations]
    if unknown:
        return None, [
            (
                "brian.record_spikes",
                f"{unknown} are not populations of {model.name!r}: {list(populations)}",
            )
        ]
    return loop, []
