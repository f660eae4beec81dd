"""The ``drugs:`` block of an experiment file: its schema and the layer it builds.

::

    drugs:
      period_s: 60.0                  # slow step, s (a whole number of control periods)
      agents:
        levodopa:                     # the drug's name: series, events, command keys
          preset: levodopa            # closedloop.drugs.presets.PRESETS (optional)
          pk: {ka_per_h, cl_l_per_h, v1_l, q_l_per_h, v2_l, bioavailability, ke0_per_h}
          pd: {emax, ec50_ng_ml, hill, adaptation_tau_days, drive: effect | adaptation}
          schedule:
            doses: [{time_h: 1.0, amount_mg: 100.0, route: oral}]
            repeat_every_h: 24.0      # the dose list again every 24 h ...
            repeat_count: 7           # ... 7 times in all
            infusions: [{start_h: 0.0, duration_h: 2.0, rate_mg_per_h: 70.0}]
          route: oral                 # route of a controller's dose without a route key
          limits: {max_single_mg, min_interval_h, max_daily_mg}
          modulates:                  # model parameter -> how the drive sets it
            w_GS: {mode: linear, to: 5.0}           # from the model's value (or 'from')
            tau_I: {mode: multiplicative, gain: 0.8}

Every PK/PD number may be a list with one value per instance, so a cohort
can vary it. A preset fills what the block leaves out (its ``modulates`` for
the experiment's model, when it knows that model). Problems are reported
with their key path.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from closedloop.drugs.pd import ParameterMap
from closedloop.drugs.pk import PKParameters
from closedloop.drugs.presets import PRESETS
from closedloop.drugs.process import DoseLimits, DrugLayer, DrugSpec

__all__ = ["DrugSection", "DrugsSection", "drug_layer"]

PerInstance = float | list[float]
_PK_KEYS = ("ka_per_h", "cl_l_per_h", "v1_l", "q_l_per_h", "v2_l", "bioavailability", "ke0_per_h")
_PD_KEYS = ("emax", "ec50_ng_ml", "hill", "adaptation_tau_days")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PKSection(_Strict):
    """Compartment parameters (see :class:`closedloop.drugs.pk.PKParameters`)."""

    ka_per_h: PerInstance | None = None
    cl_l_per_h: PerInstance | None = None
    v1_l: PerInstance | None = None
    q_l_per_h: PerInstance | None = None
    v2_l: PerInstance | None = None
    bioavailability: PerInstance | None = None
    ke0_per_h: PerInstance | None = None


class PDSection(_Strict):
    """Sigmoid Emax and adaptation (see :mod:`closedloop.drugs.pd`)."""

    emax: PerInstance | None = None
    ec50_ng_ml: PerInstance | None = None
    hill: PerInstance | None = None
    adaptation_tau_days: PerInstance | None = None
    drive: Literal["effect", "adaptation"] | None = None


class DoseEntry(_Strict):
    time_h: float = Field(ge=0, description="dose time from the start of the run, h")
    amount_mg: float = Field(gt=0, description="dose, mg")
    route: Literal["oral", "iv"] = "oral"


class InfusionEntry(_Strict):
    start_h: float = Field(ge=0)
    duration_h: float = Field(gt=0)
    rate_mg_per_h: float = Field(gt=0)


class ScheduleSection(_Strict):
    doses: list[DoseEntry] = []
    repeat_every_h: float | None = Field(None, gt=0)
    repeat_count: int = Field(1, ge=1)
    infusions: list[InfusionEntry] = []


class LimitsSection(_Strict):
    max_single_mg: float | None = Field(None, gt=0)
    min_interval_h: float | None = Field(None, ge=0)
    max_daily_mg: float | None = Field(None, gt=0)


class ModulateEntry(_Strict):
    mode: Literal["linear", "multiplicative"]
    from_: PerInstance | None = Field(None, alias="from")
    to: PerInstance | None = None
    gain: PerInstance | None = None


class DrugSection(_Strict):
    """One drug."""

    preset: str | None = None
    pk: PKSection = PKSection()
    pd: PDSection = PDSection()
    schedule: ScheduleSection = ScheduleSection()
    route: Literal["oral", "iv"] = "oral"
    limits: LimitsSection = LimitsSection()
    modulates: dict[str, ModulateEntry] | None = None


class DrugsSection(_Strict):
    """The ``drugs:`` block."""

    period_s: float = Field(60.0, gt=0, description="slow step of the drug layer, s")
    agents: dict[str, DrugSection] = Field(min_length=1)


def _per_instance(
    value: Any, n: int, path: str, problems: list, positive: bool = True
) -> np.ndarray | None:
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if arr.ndim != 1 or arr.size not in (1, n):
        problems.append((path, f"give one value or a list of {n} (one per instance)"))
        return None
    if not np.all(np.isfinite(arr)) or (positive and np.any(arr < 0)):
        problems.append((path, "must be finite" + (" and non-negative" if positive else "")))
        return None
    return np.broadcast_to(arr, (n,)).astype(np.float64)


def drug_layer(
    section: DrugsSection, model: Any, n: int, problems: list[tuple[str, str]]
) -> DrugLayer | None:
    """Build the drug layer of an experiment (None if a problem was appended).

    Parameters
    ----------
    section : DrugsSection
        The parsed ``drugs:`` block.
    model : NumbaModel
        The experiment's model (its modulatable parameters and values).
    n : int
        Number of instances.
    problems : list of (key path, message)
        Where problems go.
    """
    before = len(problems)
    specs = []
    modulated: dict[str, str] = {}
    for name, drug in section.agents.items():
        path = f"drugs.agents.{name}"
        if not name.isidentifier():
            problems.append((path, "a drug name must be letters, digits and underscores"))
            continue
        preset: dict[str, Any] = {}
        if drug.preset is not None:
            if drug.preset not in PRESETS:
                problems.append(
                    (f"{path}.preset", f"unknown preset; known: {', '.join(sorted(PRESETS))}")
                )
                continue
            preset = PRESETS[drug.preset]
        values: dict[str, np.ndarray] = {}
        for group, keys, given in (("pk", _PK_KEYS, drug.pk), ("pd", _PD_KEYS, drug.pd)):
            for key in keys:
                v = getattr(given, key)
                if v is None:
                    v = preset.get(group, {}).get(key)
                    v = getattr(v, "value", v)  # a preset's Parameter
                if v is None:
                    if key == "adaptation_tau_days":
                        continue
                    if key in ("q_l_per_h",):
                        v = 0.0
                    elif key == "v2_l":
                        v = 1.0
                    else:
                        problems.append((f"{path}.{group}.{key}", "missing (no preset gives it)"))
                        continue
                arr = _per_instance(v, n, f"{path}.{group}.{key}", problems)
                if arr is not None:
                    values[key] = arr
        for key in ("v1_l", "ec50_ng_ml", "hill"):
            if key in values and np.any(values[key] <= 0):
                group = "pk" if key == "v1_l" else "pd"
                problems.append((f"{path}.{group}.{key}", "must be positive"))
        if "v2_l" in values and np.any((values["v2_l"] <= 0) & (values.get("q_l_per_h", 0) > 0)):
            problems.append((f"{path}.pk.v2_l", "must be positive with a peripheral compartment"))
        if "bioavailability" in values and np.any(values["bioavailability"] > 1):
            problems.append((f"{path}.pk.bioavailability", "must be at most 1"))
        if "adaptation_tau_days" in values and np.any(values["adaptation_tau_days"] <= 0):
            problems.append((f"{path}.pd.adaptation_tau_days", "must be positive"))
        drive = drug.pd.drive or preset.get("pd", {}).get("drive", "effect")
        if drive == "adaptation" and "adaptation_tau_days" not in values:
            problems.append((f"{path}.pd.drive", "'adaptation' needs pd.adaptation_tau_days"))
        maps, base = _maps(drug, preset, model, n, path, modulated, name, problems)
        limits = {**preset.get("limits", {}), **drug.limits.model_dump(exclude_none=True)}
        if len(problems) > before:
            continue
        specs.append(
            DrugSpec(
                name=name,
                pk=PKParameters(**{k: values[k] for k in _PK_KEYS}),
                emax=values["emax"],
                ec50_ng_ml=values["ec50_ng_ml"],
                hill=values["hill"],
                adaptation_tau_s=(
                    values["adaptation_tau_days"] * 86400.0
                    if "adaptation_tau_days" in values
                    else None
                ),
                drive=drive,
                doses=_doses(drug.schedule),
                infusions=[
                    (i.start_h * 3600.0, (i.start_h + i.duration_h) * 3600.0, i.rate_mg_per_h)
                    for i in drug.schedule.infusions
                ],
                limits=DoseLimits(
                    limits.get("max_single_mg", math.inf),
                    limits.get("min_interval_h", 0.0),
                    limits.get("max_daily_mg", math.inf),
                ),
                route_oral=drug.route == "oral",
                maps=maps,
                base=base,
            )
        )
    if len(problems) > before:
        return None
    return DrugLayer(specs, section.period_s)


def _doses(schedule: ScheduleSection) -> list[tuple[float, float, bool]]:
    every = schedule.repeat_every_h or 0.0
    out = [
        ((d.time_h + k * every) * 3600.0, d.amount_mg, d.route == "oral")
        for k in range(schedule.repeat_count if every else 1)
        for d in schedule.doses
    ]
    return sorted(out)


def _maps(
    drug: DrugSection,
    preset: dict[str, Any],
    model: Any,
    n: int,
    path: str,
    modulated: dict[str, str],
    name: str,
    problems: list[tuple[str, str]],
) -> tuple[list[ParameterMap], dict[str, np.ndarray]]:
    entries: dict[str, dict[str, Any]] = {}
    if drug.modulates is not None:
        entries = {k: v.model_dump(by_alias=True) for k, v in drug.modulates.items()}
    else:
        entries = dict(preset.get("modulates_by_model", {}).get(model.name, {}))
        if not entries:
            problems.append(
                (
                    f"{path}.modulates",
                    f"say which parameters of model {model.name!r} the drug sets "
                    f"(modulatable: {', '.join(model.modulatable) or 'none'})",
                )
            )
    maps: list[ParameterMap] = []
    base: dict[str, np.ndarray] = {}
    for param, entry in entries.items():
        where = f"{path}.modulates.{param}"
        if param not in model.modulatable:
            problems.append(
                (
                    where,
                    f"model {model.name!r} does not declare {param!r} modulatable "
                    f"(modulatable: {', '.join(model.modulatable) or 'none'})",
                )
            )
            continue
        if param in modulated:
            problems.append((where, f"already modulated by drug {modulated[param]!r}"))
            continue
        modulated[param] = name
        to = entry.get("to")
        if entry.get("to_regime"):
            regime = model.regimes.get(entry["to_regime"], {})
            to = regime.get(param, model.parameters[param].value)
        mode = entry["mode"]
        arrays = {}
        for key, v in (("from", entry.get("from")), ("to", to), ("gain", entry.get("gain"))):
            if v is not None:
                arrays[key] = _per_instance(v, n, f"{where}.{key}", problems, positive=False)
        if mode == "linear" and to is None:
            problems.append((f"{where}.to", "linear mode needs 'to'"))
            continue
        if mode == "multiplicative" and entry.get("gain") is None:
            problems.append((f"{where}.gain", "multiplicative mode needs 'gain'"))
            continue
        maps.append(
            ParameterMap(param, mode, arrays.get("from"), arrays.get("to"), arrays.get("gain"))
        )
        base[param] = np.array(model.record[param], dtype=np.float64)
    return maps, base
