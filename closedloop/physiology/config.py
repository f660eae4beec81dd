"""The ``physiology:`` block of an experiment file and the clock it builds.

::

    physiology:
      period_s: 0.1            # step of the process, s (series, modulation)
      sensor_delay_s: 0.05     # breath / R-peak detector delay, s
      respiration: {period_s, period_cv, period_autocorr, insp_fraction, insp_fraction_cv}
      cardiac: {rr_s, rsa_fraction, slow_sd, slow_tau_s, beat_jitter_s,
                vagal_gain_per_uc, vagal_latency_s, vagal_tau_s}
      vagal: {inspiration_gain, ne_gain_per_uc, ne_tau_s,
              modulates: {alpha_hz: 2.0}}   # model parameter -> gain on the NE trace

Every key has the default of :class:`~closedloop.physiology.respiration.RespirationParams`,
:class:`~closedloop.physiology.cardiac.CardiacParams` and
:class:`~closedloop.physiology.process.VagalParams` (their sources are
there). Problems are reported with their key path under ``physiology``.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from closedloop.physiology.cardiac import CardiacParams
from closedloop.physiology.process import PhysiologyClock, VagalParams
from closedloop.physiology.respiration import RespirationParams

__all__ = ["PhysiologySection", "physiology_clock"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _defaults(cls: type) -> dict[str, Any]:
    return {f.name: f.default for f in fields(cls)}


_RESP = _defaults(RespirationParams)
_CARD = _defaults(CardiacParams)


class RespirationSection(_Strict):
    """Breathing pattern (see closedloop.physiology.respiration)."""

    period_s: float = Field(_RESP["period_s"], description="mean breath period, s")
    period_cv: float = Field(_RESP["period_cv"], description="breath-to-breath CV of the period")
    period_autocorr: float = Field(_RESP["period_autocorr"], description="lag-1 autocorrelation")
    insp_fraction: float = Field(_RESP["insp_fraction"], description="mean Ti/Ttot")
    insp_fraction_cv: float = Field(_RESP["insp_fraction_cv"], description="CV of Ti/Ttot")


class CardiacSection(_Strict):
    """The IPFM heart (see closedloop.physiology.cardiac)."""

    rr_s: float = Field(_CARD["rr_s"], description="RR interval without modulation, s")
    rsa_fraction: float = _CARD["rsa_fraction"]
    slow_sd: float = _CARD["slow_sd"]
    slow_tau_s: float = Field(_CARD["slow_tau_s"], description="s")
    beat_jitter_s: float = Field(_CARD["beat_jitter_s"], description="s")
    vagal_gain_per_uc: float = Field(_CARD["vagal_gain_per_uc"], description="1/uC")
    vagal_latency_s: float = Field(_CARD["vagal_latency_s"], description="s")
    vagal_tau_s: float = Field(_CARD["vagal_tau_s"], description="s")


class VagalSection(_Strict):
    """The vagal afferent route (see closedloop.physiology.process)."""

    inspiration_gain: float = Field(0.3, ge=0, le=1, description="gate in inspiration")
    ne_gain_per_uc: float = Field(0.02, ge=0, description="NE trace per gated uC, 1/uC")
    ne_tau_s: float = Field(5.0, gt=0, description="NE trace decay, s")
    modulates: dict[str, float] = Field(
        default_factory=dict, description="model parameter -> gain on the NE trace"
    )


class PhysiologySection(_Strict):
    """Respiration and cardiac clocks, and the vagal afferent route."""

    period_s: float = Field(0.1, gt=0, description="step of the process, s")
    sensor_delay_s: float = Field(0.05, ge=0, le=1, description="detector delay, s")
    respiration: RespirationSection = RespirationSection()
    cardiac: CardiacSection = CardiacSection()
    vagal: VagalSection = VagalSection()


def physiology_clock(
    section: PhysiologySection,
    model: Any,
    control_period_s: float,
    problems: list[tuple[str, str]],
) -> PhysiologyClock | None:
    """The clock a ``physiology:`` block asks for, or None (problems appended).

    Parameters
    ----------
    section : PhysiologySection
        The validated block.
    model : NumbaModel
        Declares the parameters the vagal route may modulate.
    control_period_s : float
        The loop's control period, s (the clock's grid).
    problems : list
        ``(key path, message)`` pairs are appended here.
    """
    base = {}
    for key in section.vagal.modulates:
        if key not in getattr(model, "modulatable", ()):
            problems.append(
                (
                    f"physiology.vagal.modulates.{key}",
                    f"model {model.name!r} does not let {key!r} change while it runs; "
                    f"modulatable: {', '.join(model.modulatable) or 'none'}",
                )
            )
        else:
            base[key] = np.array(model.param_values[key], dtype=np.float64)
    try:
        resp = RespirationParams(**section.respiration.model_dump())
        card = CardiacParams(**section.cardiac.model_dump())
        vagal = VagalParams(**section.vagal.model_dump())
        clock = PhysiologyClock(
            control_period_s, section.period_s, resp, card, vagal, section.sensor_delay_s, base
        )
    except ValueError as exc:
        msg = str(exc)
        path = "physiology"
        for sub in ("respiration.", "cardiac.", "physiology."):
            if msg.startswith(sub):
                path = "physiology." + msg.split(" ", 1)[0].removeprefix("physiology.")
        problems.append((path, msg))
        return None
    return clock if base.keys() == section.vagal.modulates.keys() else None
