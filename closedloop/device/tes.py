"""Transcranial electrical stimulation (tES): direct current (tDCS) and alternating current (tACS).

Commands (the controller API is unchanged)
------------------------------------------
- ``amplitude_ma``: the current, mA: signed for tDCS (positive anodal over
  the target, negative cathodal), the peak of the sinusoid for tACS. Clamped
  to ``+-min(max_current_ma, max_current_density_ma_per_cm2 * electrode_area_cm2)``.
- ``frequency_hz``: 0 for direct current, else the tACS frequency, clamped to
  ``[frequency_min_hz, frequency_max_hz]``. The phase runs on continuously
  when the frequency changes.
- ``pulse_width_us``, ``pulses``: unused.

Limits, enforced whatever a controller asks
-------------------------------------------
The current moves toward its target no faster than ``ramp_rate_ma_per_s``
(ramps in and out; 30 s ramps of 1-2 mA are usual); the current cap above;
at most ``max_on_time_s_per_day`` of stimulation per day of the simulated
clock, after which the current ramps out and stays at zero until the next day.
Defaults: 2 mA over 25 cm^2 sponges (0.08 mA/cm^2), a configured ceiling of 4 mA
and 40 min a day: the range Bikson et al. (2016) report without serious
adverse effects in humans (recalled, unchecked here).

Dose: charge (uC, the integral of ``|I|``), on-time, and energy ``I^2 R t``
(J) with ``impedance_ohm`` the assumed electrode-skin impedance (5 kOhm, a
chosen typical value).

Mapping to a population model (a modelling choice)
--------------------------------------------------
Weak transcranial currents do not fire neurons; they polarise them, the
pyramidal somata most, in proportion to the field. The device writes the
mean current over each step times ``drive_per_ma`` as the drive: a continuous
sub-threshold input that follows the waveform (constant for tDCS, sinusoidal
for tACS), exactly averaged over the step. ``drive_per_ma`` converts the
scalp current to the model's stimulation units; models that take a
polarisation (Jansen-Rit's ``g_stim`` mV per mA) need it small: about
0.25 V/m of cortical field per mA (a recalled order of magnitude) times
about 0.2 mV of somatic polarisation per V/m (Radman et al. 2009, recalled)
is about 0.05 mV per mA. The default 1.0 passes the current unchanged.
``net`` (the artefact a sensing electrode sees) is the current, mA.

References
----------
Bikson M et al. (2016) Safety of transcranial direct current stimulation:
evidence based update 2016. Brain Stimul 9:641-661.
Radman T, Ramos RL, Brumberg JC, Bikson M (2009) Role of cortical cell type
and morphology in subthreshold and suprathreshold uniform electric field
stimulation in vitro. Brain Stimul 2:215-228.
Nitsche MA, Paulus W (2000) Excitability changes induced in the human motor
cortex by weak transcranial direct current stimulation. J Physiol 527:633-639.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from closedloop.core import kernel_cache  # noqa: F401  (sets the kernel cache directory first)
from closedloop.core.jit import njit
from closedloop.device.layout import (
    CMD_AMP,
    CMD_FREQ,
    P_AMP_MAX,
    P_DAY_S,
    P_F_MAX,
    P_F_MIN,
    P_MAX_ON_DAY,
    P_MODE_FIRST,
    P_R,
    P_RAMP,
    S_AMP,
    S_CAPPED,
    S_CHARGE,
    S_DAY,
    S_ENERGY,
    S_FREQ,
    S_NBAD,
    S_NSW,
    S_ON_TODAY,
    S_PHASE,
    S_TGT_AMP,
    S_TON,
)
from closedloop.device.queue import due_slot

__all__ = ["TESSettings", "tes_fill"]

#: Ceiling no configuration may exceed, mA (Bikson et al. 2016; recalled).
CURRENT_CEILING_MA = 4.0

PE_DRIVE_PER_MA = P_MODE_FIRST  # drive per mA of current, model units / mA


@dataclass(frozen=True)
class TESSettings:
    """The ``device.tes`` block: a tDCS/tACS stimulator.

    Parameters
    ----------
    max_current_ma : float
        Largest current magnitude, mA (at most 4 mA).
    electrode_area_cm2 : float
        Area of the smaller electrode, cm^2 (25: 5 x 5 cm sponges).
    max_current_density_ma_per_cm2 : float
        Current density cap over that area, mA/cm^2.
    ramp_rate_ma_per_s : float
        Fastest change of the current, mA/s (2 mA in 30 s: 0.0667).
    frequency_min_hz, frequency_max_hz : float
        tACS frequency range, Hz (0 is always allowed: direct current).
    max_on_time_s_per_day : float
        Stimulation time per day of the simulated clock, s (40 min).
    impedance_ohm : float
        Electrode-skin impedance for the energy, ohm.
    drive_per_ma : float
        Model drive per mA of current (see the module docstring).
    """

    max_current_ma: float = 2.0
    electrode_area_cm2: float = 25.0
    max_current_density_ma_per_cm2: float = 0.08
    ramp_rate_ma_per_s: float = 2.0 / 30.0
    frequency_min_hz: float = 0.5
    frequency_max_hz: float = 150.0
    max_on_time_s_per_day: float = 2400.0
    impedance_ohm: float = 5000.0
    drive_per_ma: float = 1.0

    def __post_init__(self) -> None:
        where = "device.tes"
        for name in (
            "max_current_ma",
            "electrode_area_cm2",
            "max_current_density_ma_per_cm2",
            "ramp_rate_ma_per_s",
            "frequency_min_hz",
            "frequency_max_hz",
            "max_on_time_s_per_day",
            "impedance_ohm",
        ):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{where}.{name} must be positive, got {value!r}")
        if self.max_current_ma > CURRENT_CEILING_MA:
            raise ValueError(
                f"{where}.max_current_ma ({self.max_current_ma} mA) is above the "
                f"{CURRENT_CEILING_MA} mA ceiling of tES in humans (Bikson et al. 2016)"
            )
        if self.frequency_min_hz > self.frequency_max_hz:
            raise ValueError(f"{where}.frequency_min_hz exceeds {where}.frequency_max_hz")
        if not math.isfinite(self.drive_per_ma):
            raise ValueError(f"{where}.drive_per_ma must be finite, got {self.drive_per_ma!r}")

    @property
    def current_limit_ma(self) -> float:
        """Largest current magnitude the device delivers, mA (current and density caps)."""
        return min(
            self.max_current_ma, self.max_current_density_ma_per_cm2 * self.electrode_area_cm2
        )

    def to_dict(self) -> dict:
        """The block as a plain dict."""
        return asdict(self)

    def fill_params(self, row: np.ndarray) -> None:
        """Write the tES columns (and the shared limits it sets) into a parameter row."""
        row[P_AMP_MAX] = self.current_limit_ma
        row[P_RAMP] = self.ramp_rate_ma_per_s
        row[P_F_MIN] = self.frequency_min_hz
        row[P_F_MAX] = self.frequency_max_hz
        row[P_MAX_ON_DAY] = self.max_on_time_s_per_day
        row[P_R] = self.impedance_ohm
        row[PE_DRIVE_PER_MA] = self.drive_per_ma


@njit(cache=True)
def tes_command(ds, dp, i, current_ma, frequency_hz):
    """Clamp a command to instance ``i``'s limits and make it the target."""
    cap = dp[i, P_AMP_MAX]
    if math.isfinite(current_ma):
        ds[i, S_TGT_AMP] = min(max(current_ma, -cap), cap)
    else:
        ds[i, S_NBAD] += 1.0
    if math.isfinite(frequency_hz):
        f = 0.0 if frequency_hz <= 0.0 else min(max(frequency_hz, dp[i, P_F_MIN]), dp[i, P_F_MAX])
        ds[i, S_FREQ] = f
    else:
        ds[i, S_NBAD] += 1.0


@njit(cache=True)
def tes_fill(i, n_steps, step0, dt, device, drive, net):
    """Advance instance ``i``'s tES stimulator by ``n_steps`` steps of ``dt`` s.

    Same arguments as :func:`closedloop.device.kernels.device_fill`; ``drive``
    gets the mean current over each step times ``drive_per_ma``, ``net`` the
    mean current (mA).
    """
    ds = device.state
    dp = device.params
    q_cmd = device.queue_command
    head = device.queue_head[i]
    ramp = dp[i, P_RAMP] * dt
    gain = dp[i, PE_DRIVE_PER_MA]
    r_ohm = dp[i, P_R]
    day_s = dp[i, P_DAY_S]
    max_on = dp[i, P_MAX_ON_DAY]
    amp = ds[i, S_AMP]
    phase = ds[i, S_PHASE]
    for j in range(n_steps):
        step = step0 + j
        t0 = step * dt
        if t0 >= (ds[i, S_DAY] + 1.0) * day_s:  # a new day of the simulated clock
            ds[i, S_DAY] = math.floor(t0 / day_s)
            ds[i, S_ON_TODAY] = 0.0
            ds[i, S_CAPPED] = 0.0
        slot = due_slot(device, i, head, step)
        while slot >= 0:
            tes_command(ds, dp, i, q_cmd[i, slot, CMD_AMP], q_cmd[i, slot, CMD_FREQ])
            head += 1
            slot = due_slot(device, i, head, step)
        if ds[i, S_ON_TODAY] >= max_on:
            ds[i, S_CAPPED] = 1.0
        target = 0.0 if ds[i, S_CAPPED] != 0.0 else ds[i, S_TGT_AMP]
        amp = amp + min(max(target - amp, -ramp), ramp)
        f = ds[i, S_FREQ]
        if f > 0.0:
            # Exact means of sin and sin^2 over the step.
            w_dt = 2.0 * math.pi * f * dt
            p1 = phase + w_dt
            mean_i = amp * (math.cos(phase) - math.cos(p1)) / w_dt
            mean_i2 = (
                amp
                * amp
                * 0.5
                * (1.0 - (math.sin(2.0 * p1) - math.sin(2.0 * phase)) / (2.0 * w_dt))
            )
            phase = p1 - 2.0 * math.pi * math.floor(p1 / (2.0 * math.pi))
        else:
            mean_i = amp
            mean_i2 = amp * amp
        drive[i, j] = mean_i * gain
        net[i, j] = mean_i
        ds[i, S_CHARGE] += abs(mean_i) * dt * 1e3  # mA * s = mC = 1e3 uC
        ds[i, S_ENERGY] += mean_i2 * 1e-6 * r_ohm * dt
        on = amp != 0.0
        if on:
            ds[i, S_TON] += dt
            ds[i, S_ON_TODAY] += dt
        if on != (ds[i, S_NSW] % 2.0 == 1.0):
            ds[i, S_NSW] += 1.0
    ds[i, S_AMP] = amp
    ds[i, S_PHASE] = phase
    device.queue_head[i] = head
