"""Vagus nerve stimulation (VNS): cervical and auricular (taVNS) presets, duty cycles.

Commands (the controller API is unchanged)
------------------------------------------
As for DBS (:mod:`closedloop.device.kernels`): charge-balanced biphasic pulse
trains, ``amplitude_ma`` (mA), ``frequency_hz`` (Hz), ``pulse_width_us``
(us). Continuous stimulation (``pulses: inf``, the default) follows the duty
cycle: pulses only during the first ``on_s`` of every ``on_s + off_s``
seconds of the device's clock (``off_s: 0`` for none). ``pulses: k`` is a
gated burst of ``k`` pulses, delivered whatever the duty cycle (what a
respiratory- or cardiac-gated controller sends), under the trigger lock-out
and daily caps of the DBS device.

Limits, enforced whatever a controller asks: the amplitude, frequency and
pulse-width ranges of the preset, the ramp rate, Shannon's charge limit over
the electrode area, the daily caps; energy is accounted as TEED (Koss et al.
2005), as for DBS.

Presets (``preset``; any field may be overridden)
-------------------------------------------------
``cervical``: up to 3.5 mA (0.25 mA steps), 1-30 Hz (20-30 Hz typical), 130-1000 us, 30 s on
/ 5 min off: the usual settings of the implanted cervical stimulator for
epilepsy and depression (recalled from the device labelling and reviews,
e.g. Ben-Menachem 2002; unchecked here). Electrode: a helical cuff; its
contact area (0.1 cm^2) is a chosen value.
``auricular``: transcutaneous stimulation of the auricular branch at the
cymba conchae, 25 Hz, 250 us pulses, up to 5 mA (bursts of 0.5-1 s when
respiratory-gated: RAVANS, Napadow et al. 2012; Garcia et al. 2017;
recalled, unchecked). Electrode area 1 cm^2 (chosen).

Mapping to a population model
-----------------------------
As for DBS: the drive is the mean cathodic current per step (mA). The vagal
afferent volley reaches cortex through the nucleus of the solitary tract and
the locus coeruleus; a model without those nodes takes the drive on its
stimulated node directly, a modelling choice to state with any result.

References
----------
Ben-Menachem E (2002) Vagus-nerve stimulation for the treatment of epilepsy.
Lancet Neurol 1:477-482.
Napadow V et al. (2012) Evoked pain analgesia in chronic pelvic pain patients
using respiratory-gated auricular vagal afferent nerve stimulation. Pain Med
13:777-789.
Garcia RG et al. (2017) Modulation of brainstem activity and connectivity by
respiratory-gated auricular vagal afferent nerve stimulation in migraine
patients. Pain 158:1461-1472.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from closedloop.device.layout import (
    P_AMP_MAX,
    P_F_MAX,
    P_F_MIN,
    P_MODE_FIRST,
    P_PW_MAX,
    P_PW_MIN,
    P_QMAX,
    P_R,
    P_RAMP,
)

__all__ = ["PV_OFF_S", "PV_ON_S", "VNS_PRESETS", "VNSSettings"]

PV_ON_S, PV_OFF_S = P_MODE_FIRST, P_MODE_FIRST + 1  # duty cycle, s

#: The presets' values (see the module docstring for their sources).
VNS_PRESETS: dict[str, dict[str, float]] = {
    "cervical": {
        "amplitude_max_ma": 3.5,
        "frequency_min_hz": 1.0,
        "frequency_max_hz": 30.0,
        "pulse_width_min_us": 130.0,
        "pulse_width_max_us": 1000.0,
        "on_s": 30.0,
        "off_s": 300.0,
        "electrode_area_cm2": 0.1,
        "initial_frequency_hz": 20.0,
        "initial_pulse_width_us": 250.0,
    },
    "auricular": {
        "amplitude_max_ma": 5.0,
        "frequency_min_hz": 1.0,
        "frequency_max_hz": 30.0,
        "pulse_width_min_us": 100.0,
        "pulse_width_max_us": 500.0,
        "on_s": 0.0,
        "off_s": 0.0,
        "electrode_area_cm2": 1.0,
        "initial_frequency_hz": 25.0,
        "initial_pulse_width_us": 250.0,
    },
}


@dataclass(frozen=True)
class VNSSettings:
    """The ``device.vns`` block: a vagus nerve stimulator.

    Parameters
    ----------
    preset : {"cervical", "auricular"}
        Values for every field left unset (``nan``).
    amplitude_max_ma : float
        Largest current, mA.
    frequency_min_hz, frequency_max_hz : float
        Pulse rate range, Hz.
    pulse_width_min_us, pulse_width_max_us : float
        Pulse width (per phase) range, us.
    on_s, off_s : float
        Duty cycle of continuous stimulation, s (``off_s`` 0: always on).
    electrode_area_cm2 : float
        Contact area for Shannon's charge limit, cm^2.
    initial_frequency_hz, initial_pulse_width_us : float
        Settings before the first command.
    ramp_rate_ma_per_s : float
        Fastest change of the amplitude, mA/s.
    impedance_ohm : float
        Lead impedance for the energy (TEED), ohm.
    """

    preset: str = "cervical"
    amplitude_max_ma: float = math.nan
    frequency_min_hz: float = math.nan
    frequency_max_hz: float = math.nan
    pulse_width_min_us: float = math.nan
    pulse_width_max_us: float = math.nan
    on_s: float = math.nan
    off_s: float = math.nan
    electrode_area_cm2: float = math.nan
    initial_frequency_hz: float = math.nan
    initial_pulse_width_us: float = math.nan
    ramp_rate_ma_per_s: float = 1.0
    impedance_ohm: float = 3000.0

    def __post_init__(self) -> None:
        where = "device.vns"
        if self.preset not in VNS_PRESETS:
            raise ValueError(
                f"{where}.preset must be one of {tuple(VNS_PRESETS)}, got {self.preset!r}"
            )
        for name, value in VNS_PRESETS[self.preset].items():
            if math.isnan(getattr(self, name)):
                object.__setattr__(self, name, value)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "preset":
                continue
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{where}.{f.name} must be a finite number >= 0, got {value!r}")
        for low, high in (
            ("frequency_min_hz", "frequency_max_hz"),
            ("pulse_width_min_us", "pulse_width_max_us"),
        ):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{where}.{low} exceeds {where}.{high}")
        for name in ("amplitude_max_ma", "frequency_min_hz", "pulse_width_min_us"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{where}.{name} must be positive")
        if 2e-6 * self.pulse_width_max_us * self.frequency_max_hz >= 1.0:
            raise ValueError(f"{where}.pulse_width_max_us is too long for {where}.frequency_max_hz")
        if self.off_s > 0 and self.on_s <= 0:
            raise ValueError(f"{where}.on_s must be positive when {where}.off_s is")

    def to_dict(self) -> dict:
        """The block as a plain dict (the preset's values filled in)."""
        return asdict(self)

    def fill_params(self, row: np.ndarray, charge_limit_uc: float) -> None:
        """Write the VNS columns and its limits into a parameter row."""
        row[P_AMP_MAX] = self.amplitude_max_ma
        row[P_F_MIN] = self.frequency_min_hz
        row[P_F_MAX] = self.frequency_max_hz
        row[P_PW_MIN] = self.pulse_width_min_us
        row[P_PW_MAX] = self.pulse_width_max_us
        row[P_RAMP] = self.ramp_rate_ma_per_s
        row[P_QMAX] = charge_limit_uc
        row[P_R] = self.impedance_ohm
        row[PV_ON_S] = self.on_s
        row[PV_OFF_S] = self.off_s
