"""The device's configuration: limits, safety rules and their parameter array.

See :mod:`closedloop.device.kernels` for what the limits mean at each pulse
(Shannon's charge-density rule, the trigger lock-out and daily caps) and their
sources.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from closedloop.device.commands import ModalityCommands
from closedloop.device.layout import (
    DEVICE_STATE,
    MODALITIES,
    N_PARAMS,
    P_AMP_MAX,
    P_DAY_S,
    P_F_MAX,
    P_F_MIN,
    P_LOCKOUT,
    P_MAX_ON_DAY,
    P_MAX_Q_DAY,
    P_MAX_TRIG,
    P_MODALITY,
    P_PW_MAX,
    P_PW_MIN,
    P_QMAX,
    P_R,
    P_RAMP,
    S_FREQ,
    S_P_PW,
    S_P_START,
    S_REMAIN,
    S_TGT_AMP,
    S_TGT_PW,
    DeviceState,
)
from closedloop.device.tes import TESSettings
from closedloop.device.tms import TMS_COMMANDS, TMSSettings
from closedloop.device.vns import VNSSettings

__all__ = [
    "MODALITY_BLOCKS",
    "MODALITY_COMMANDS",
    "Device",
    "TESSettings",
    "TMSSettings",
    "VNSSettings",
]

#: The blocks of the modalities other than DBS, by ``device.modality``.
MODALITY_BLOCKS = {"tms": TMSSettings, "tes": TESSettings, "vns": VNSSettings}

#: The command keys each modality reads, by ``device.modality``: DBS, tES and
#: VNS take the amplitude as a current (``amplitude_ma``); TMS names its own.
MODALITY_COMMANDS: dict[str, ModalityCommands] = {
    "dbs": ModalityCommands("dbs"),
    "tms": TMS_COMMANDS,
    "tes": ModalityCommands("tes"),
    "vns": ModalityCommands("vns"),
}


@dataclass(frozen=True)
class Device:
    """Configuration of the virtual stimulator.

    Parameters
    ----------
    amplitude_max_ma : float
        Largest amplitude, mA.
    frequency_min_hz, frequency_max_hz : float
        Pulse frequency range, Hz.
    pulse_width_min_us, pulse_width_max_us : float
        Pulse width (per phase) range, microseconds.
    ramp_rate_ma_per_s : float
        Fastest change of the delivered amplitude, mA/s (``inf`` for none).
    shannon_k : float
        Shannon's k (dimensionless); 1.75 is the value commonly used for DBS.
    electrode_area_cm2 : float
        Geometric contact area, cm^2 (0.06 cm^2: Medtronic 3389 contact).
    max_charge_density_uc_per_cm2 : float
        Plain charge-density ceiling, uC/cm^2 per phase (``inf`` for none).
    impedance_ohm : float
        Electrode impedance assumed for energy accounting, ohm.
    initial_frequency_hz, initial_pulse_width_us : float
        Settings before the first command; the amplitude starts at 0 mA.
    trigger_lockout_s : float
        Lock-out after each accepted burst, s: no trigger is accepted until
        this long after the burst's nominal end (0: none).
    day_length_s : float
        Length of a day of the simulated clock for the daily caps, s.
    max_triggers_per_day : float
        Accepted triggers per day (``inf`` for no cap).
    max_charge_uc_per_day : float
        Cathodic charge per day, uC (``inf`` for no cap).
    max_on_time_s_per_day : float
        Stimulation on-time per day, s (``inf`` for no cap).
    modality : {"dbs", "tms", "tes", "vns"}
        What the device is. ``dbs`` (the default) uses the fields above;
        the others read their own block (the fields above keep only the
        trigger lock-out, the day length and the daily trigger cap; VNS also
        Shannon's k and the charge-density ceiling).
    tms, tes, vns : TMSSettings, TESSettings, VNSSettings or None
        The block of each modality (its defaults when left out):
        :mod:`closedloop.device.tms`, :mod:`~closedloop.device.tes`,
        :mod:`~closedloop.device.vns`.
    """

    amplitude_max_ma: float = 5.0
    frequency_min_hz: float = 2.0
    frequency_max_hz: float = 250.0
    pulse_width_min_us: float = 20.0
    pulse_width_max_us: float = 450.0
    ramp_rate_ma_per_s: float = 10.0
    shannon_k: float = 1.75
    electrode_area_cm2: float = 0.06
    max_charge_density_uc_per_cm2: float = 30.0
    impedance_ohm: float = 1000.0
    initial_frequency_hz: float = 130.0
    initial_pulse_width_us: float = 60.0
    trigger_lockout_s: float = 0.0
    day_length_s: float = 86400.0
    max_triggers_per_day: float = math.inf
    max_charge_uc_per_day: float = math.inf
    max_on_time_s_per_day: float = math.inf
    modality: str = "dbs"
    tms: TMSSettings | None = None
    tes: TESSettings | None = None
    vns: VNSSettings | None = None

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(
                f"device.modality must be one of {tuple(MODALITIES)}, got {self.modality!r}"
            )
        for name, cls in MODALITY_BLOCKS.items():
            block = getattr(self, name)
            if block is not None and name != self.modality:
                raise ValueError(
                    f"device.{name} is set but device.modality is {self.modality!r}: "
                    f"set device.modality: {name}, or remove the block"
                )
            if block is None and name == self.modality:
                object.__setattr__(self, name, cls())
        positive = (
            "amplitude_max_ma",
            "frequency_min_hz",
            "frequency_max_hz",
            "pulse_width_min_us",
            "pulse_width_max_us",
            "ramp_rate_ma_per_s",
            "electrode_area_cm2",
            "max_charge_density_uc_per_cm2",
            "impedance_ohm",
        )
        for name in positive:
            value = getattr(self, name)
            if not value > 0:  # also catches NaN
                raise ValueError(f"device.{name} must be positive, got {value!r}")
        if self.frequency_min_hz > self.frequency_max_hz:
            raise ValueError(
                f"device.frequency_min_hz ({self.frequency_min_hz}) exceeds "
                f"device.frequency_max_hz ({self.frequency_max_hz})"
            )
        if self.pulse_width_min_us > self.pulse_width_max_us:
            raise ValueError(
                f"device.pulse_width_min_us ({self.pulse_width_min_us}) exceeds "
                f"device.pulse_width_max_us ({self.pulse_width_max_us})"
            )
        # Consecutive biphasic pulses must not overlap.
        if 2e-6 * self.pulse_width_max_us * self.frequency_max_hz >= 1.0:
            raise ValueError(
                "device.pulse_width_max_us and device.frequency_max_hz allow biphasic "
                "pulses longer than the pulse period: lower one of them"
            )
        for name in ("shannon_k", "initial_frequency_hz", "initial_pulse_width_us"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"device.{name} must be finite")
        if not (math.isfinite(self.trigger_lockout_s) and self.trigger_lockout_s >= 0):
            raise ValueError(
                "device.trigger_lockout_s must be a finite number of seconds >= 0, "
                f"got {self.trigger_lockout_s!r}"
            )
        if not (math.isfinite(self.day_length_s) and self.day_length_s > 0):
            raise ValueError(
                f"device.day_length_s must be a finite positive number of seconds, "
                f"got {self.day_length_s!r}"
            )
        for name in ("max_triggers_per_day", "max_charge_uc_per_day", "max_on_time_s_per_day"):
            if not getattr(self, name) >= 0:  # also catches NaN; inf: no cap
                raise ValueError(
                    f"device.{name} must be >= 0 (inf for no cap), got {getattr(self, name)!r}"
                )

    @property
    def limits_triggers(self) -> bool:
        """Whether a lock-out or a daily cap is set (the trigger limits are in use)."""
        return (
            self.trigger_lockout_s > 0
            or math.isfinite(self.max_triggers_per_day)
            or math.isfinite(self.max_charge_uc_per_day)
            or math.isfinite(self.max_on_time_s_per_day)
        )

    @property
    def charge_limit_uc(self) -> float:
        """Largest charge per phase, uC: Shannon's limit or the density ceiling."""
        shannon = math.sqrt(10.0**self.shannon_k * self.electrode_area_cm2)
        return min(shannon, self.max_charge_density_uc_per_cm2 * self.electrode_area_cm2)

    def max_amplitude_ma(self, pulse_width_us: float) -> float:
        """Largest amplitude the device delivers at a pulse width, mA."""
        return min(self.amplitude_max_ma, self.charge_limit_uc / (pulse_width_us * 1e-3))

    def teed_j(
        self, amplitude_ma: float, frequency_hz: float, pulse_width_us: float, duration_s: float
    ) -> float:
        """Energy of continuous stimulation at fixed settings, J (both phases)."""
        return (
            (amplitude_ma * 1e-3) ** 2
            * self.impedance_ohm
            * (2.0 * pulse_width_us * 1e-6 * frequency_hz * duration_s)
        )

    @property
    def commands(self) -> ModalityCommands:
        """Which command keys the modality reads, and into which slot."""
        return MODALITY_COMMANDS[self.modality]

    @property
    def block(self) -> TMSSettings | TESSettings | VNSSettings | None:
        """The active modality's block (None for DBS)."""
        return getattr(self, self.modality, None)

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as a plain dict (the modality keys only when not DBS)."""
        out = asdict(self)
        for name in MODALITY_BLOCKS:
            if out[name] is None:
                del out[name]
        if self.modality == "dbs":
            del out["modality"]
        return out

    @property
    def vns_charge_limit_uc(self) -> float:
        """Largest charge per phase of the VNS electrode, uC (Shannon and the density ceiling)."""
        if self.vns is None:
            raise ValueError(f"device.vns: no VNS block (device.modality is {self.modality!r})")
        area = self.vns.electrode_area_cm2
        shannon = math.sqrt(10.0**self.shannon_k * area)
        return min(shannon, self.max_charge_density_uc_per_cm2 * area)

    def param_array(self, n: int) -> np.ndarray:
        """Per-instance parameter array for the kernels, shape ``(n, N_PARAMS)``."""
        row = np.zeros(N_PARAMS)
        row[P_AMP_MAX] = self.amplitude_max_ma
        row[P_F_MIN] = self.frequency_min_hz
        row[P_F_MAX] = self.frequency_max_hz
        row[P_PW_MIN] = self.pulse_width_min_us
        row[P_PW_MAX] = self.pulse_width_max_us
        row[P_RAMP] = self.ramp_rate_ma_per_s
        row[P_QMAX] = self.charge_limit_uc
        row[P_R] = self.impedance_ohm
        row[P_LOCKOUT] = self.trigger_lockout_s
        row[P_DAY_S] = self.day_length_s
        row[P_MAX_TRIG] = self.max_triggers_per_day
        row[P_MAX_Q_DAY] = self.max_charge_uc_per_day
        row[P_MAX_ON_DAY] = self.max_on_time_s_per_day
        row[P_MODALITY] = MODALITIES[self.modality]
        block = self.block
        if isinstance(block, VNSSettings):
            block.fill_params(row, self.vns_charge_limit_uc)
        elif block is not None:
            row[P_MAX_Q_DAY] = row[P_MAX_ON_DAY] = math.inf  # DBS caps: not these modalities'
            block.fill_params(row)
        return np.tile(row, (n, 1))

    def kernel_state(self, n: int, queue_len: int) -> DeviceState:
        """Arrays the kernels take: state, parameters and an empty command queue.

        Parameters
        ----------
        n : int
            Batch size.
        queue_len : int
            Commands that may be pending at once (latency / control period + 2).
        """
        return DeviceState(
            state=self.initial_state(n),
            params=self.param_array(n),
            queue_step=np.zeros((n, queue_len), dtype=np.int64),
            queue_command=np.zeros((n, queue_len, 4)),
            queue_head=np.zeros(n, dtype=np.int64),
            queue_tail=np.zeros(n, dtype=np.int64),
        )

    def initial_state(self, n: int) -> np.ndarray:
        """Device state before the first command, shape ``(n, len(DEVICE_STATE))``."""
        state = np.zeros((n, len(DEVICE_STATE)))
        freq = min(max(self.initial_frequency_hz, self.frequency_min_hz), self.frequency_max_hz)
        pw = min(max(self.initial_pulse_width_us, self.pulse_width_min_us), self.pulse_width_max_us)
        v = self.block
        if isinstance(v, VNSSettings):
            freq = min(max(v.initial_frequency_hz, v.frequency_min_hz), v.frequency_max_hz)
            pw = min(max(v.initial_pulse_width_us, v.pulse_width_min_us), v.pulse_width_max_us)
        elif isinstance(v, TMSSettings):
            freq = min(max(10.0, v.frequency_min_hz), v.frequency_max_hz)
            pw = 0.0
        elif self.modality == "tes":
            freq = 0.0  # direct current until told otherwise
            pw = 0.0
        state[:, S_FREQ] = freq
        state[:, S_TGT_PW] = pw
        state[:, S_P_PW] = pw * 1e-6
        state[:, S_P_START] = -1.0  # no pulse in progress
        state[:, S_REMAIN] = math.inf  # continuous stimulation until told otherwise
        if self.modality == "tms":
            state[:, S_REMAIN] = 0.0  # a TMS stimulator waits for pulses: k or inf
            state[:, S_TGT_AMP] = 0.0
        return state
