"""Virtual stimulator: turns controller commands into the delivered waveform.

The device is the only path from a controller to a model, and it enforces its
limits whatever it is asked: NaN or infinite commands are ignored (the last
valid value is kept and the rejection counted), every value is clamped to its
configured range, the amplitude moves no faster than the ramp rate, and the
charge per phase never exceeds the safety limit. What it records is what it
delivered, not what was asked.

Waveform
--------
Charge-balanced biphasic current pulses: a cathodic (stimulating) phase of the
programmed pulse width, then an anodic recovery phase of equal width and
amplitude, with no interphase gap. For each integration step of length ``dt``
the device reports the average cathodic current over the step (the charge the
cathodic phase delivered in the step divided by ``dt``, in mA) and the average
net current (cathodic minus anodic, in mA, which a sensing electrode sees as
stimulation artefact). Pulse edges are placed in continuous time and the
overlap of each phase with each step is integrated exactly, so a pulse shorter
than ``dt`` loses no charge.

Safety limit
------------
Shannon's criterion (Shannon 1992) bounds the charge per phase ``Q`` (uC) and
the charge density ``D = Q / A`` (uC/cm^2 per phase) by
``log10(D) = k - log10(Q)``, i.e. ``Q <= sqrt(10**k * A)``. The device also
applies an optional plain charge-density ceiling (30 uC/cm^2 per phase is the
limit Medtronic gives for its 3389 lead, Kuncel & Grill 2004). The amplitude
target is capped at ``Q_max / pulse width``; if the pulse width is raised while
the amplitude is still high, the pulse width is shortened instead, so that the
limit holds at every pulse without breaking the amplitude ramp.

Triggers, lock-out and daily caps
---------------------------------
A command asking for a finite burst of ``k > 0`` pulses is a *trigger*
(responsive and symptom-triggered stimulation). The device refuses a trigger
(keeping the pulse train as it was, counting it in ``n_triggers_rejected``)
while a lock-out runs (``trigger_lockout_s`` after the nominal end of the last
accepted burst, ``k`` pulse periods after its first pulse) or once a daily cap
is reached: ``max_triggers_per_day`` accepted triggers,
``max_charge_uc_per_day`` of cathodic charge or ``max_on_time_s_per_day`` of
stimulation. The charge and on-time caps bind every pulse, continuous
stimulation included: a pulse that would take the day's charge past its cap,
or start once the day's on-time is used up, is withheld (counted in
``pulses_withheld``), which ends a burst under way; stimulation resumes the
next day. A day is ``day_length_s`` of the simulated clock (86,400 s by
default; shorter in tests), day ``d`` being ``[d, d + 1) * day_length_s``; a
pulse's charge counts to the day it starts in. The defaults refuse nothing.
(RNS has a daily therapy limit, Sun & Morrell 2014.)

Energy
------
Total electrical energy delivered (TEED, Koss et al. 2005) is accounted as
``sum I**2 * R * t_phase`` over both phases of every pulse, with ``R`` the
electrode impedance the device assumes (``impedance_ohm``), in joules.

References
----------
Shannon RV (1992) A model of safe levels for electrical stimulation. IEEE Trans
Biomed Eng 39:424-426.
Kuncel AM, Grill WM (2004) Selection of stimulus parameters for deep brain
stimulation. Clin Neurophysiol 115:2431-2441.
Koss AM, Alterman RL, Tagliati M, Shils JL (2005) Calculating total electrical
energy delivered by deep brain stimulation systems. Ann Neurol 58:168-169.
Sun FT, Morrell MJ (2014) The RNS System: responsive cortical stimulation for
the treatment of refractory partial epilepsy. Expert Rev Med Devices 11:563-572.
Scangos KW et al. (2021) Closed-loop neuromodulation in an individual with
treatment-resistant depression. Nat Med 27:1696-1700.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
from numba import njit

from closedloop.core import kernel_cache  # noqa: F401  (sets the kernel cache directory first)
from closedloop.core.record import (
    AMPLITUDE_ROW,
    FREQUENCY_ROW,
    PULSE_COUNT_ROW,
    PULSE_WIDTH_ROW,
    TRIGGERS_DELIVERED_ROW,
    TRIGGERS_REJECTED_ROW,
)

__all__ = [
    "DEVICE_STATE",
    "Device",
    "DeviceState",
    "apply_command",
    "device_targets",
    "trigger_refused",
    "device_totals",
    "retract_commands",
    "device_fill",
    "device_record",
    "queue_push",
    "queue_push_one",
]

# Columns of the per-instance device parameter array; then lock-out (s), day
# length (s), daily caps (triggers, uC, s).
_AMP_MAX, _F_MIN, _F_MAX, _PW_MIN, _PW_MAX, _RAMP, _QMAX, _R = range(8)
_LOCKOUT, _DAY_S, _MAX_TRIG, _MAX_Q_DAY, _MAX_ON_DAY = range(8, 13)
_N_PARAMS = 13
_CMD_AMP, _CMD_FREQ, _CMD_PW, _CMD_PULSES = range(4)

#: Columns of the per-instance device state array, with units.
DEVICE_STATE: dict[str, str] = {
    "amplitude_ma": "mA",  # delivered amplitude now (after ramp)
    "target_amplitude_ma": "mA",
    "frequency_hz": "Hz",
    "target_pulse_width_us": "us",
    "next_pulse_s": "s",
    "pulse_start_s": "s",
    "pulse_amplitude_ma": "mA",
    "pulse_width_s": "s",  # pulse width of the last pulse delivered
    "energy_j": "J",
    "charge_uc": "uC",  # total cathodic charge delivered
    "n_pulses": "1",
    "n_rejected": "1",  # command values ignored for being NaN or infinite
    "time_on_s": "s",
    "n_switches": "1",  # on/off transitions of the stimulation, bursts' included
    "pulses_remaining": "1",  # pulses still to deliver; inf: continuous
    # On/off transitions of a continuous train (amplitude above zero, no pulse
    # count), its first turn-on included; bursts and single pulses are
    # deliveries, counted apart.
    "n_train_switches": "1",
    "n_deliveries": "1",  # commands of k >= 1 pulses (bursts, single pulses) applied
    "n_triggers": "1",  # bursts (finite pulse counts) accepted
    "n_triggers_rejected": "1",  # bursts refused: lock-out or a daily cap
    "pulses_withheld": "1",  # pulses not delivered for a daily charge or on-time cap
    "day_index": "1",  # day of the simulated clock the daily counters refer to
    "triggers_today": "1",
    "charge_today_uc": "uC",  # cathodic charge of the pulses started today
    "time_on_today_s": "s",
    "lockout_until_s": "s",  # no trigger accepted before this time
    "capped": "1",  # 1 once a daily charge or on-time cap has withheld a pulse today
}
(
    _AMP,
    _TGT_AMP,
    _FREQ,
    _TGT_PW,
    _NEXT,
    _P_START,
    _P_AMP,
    _P_PW,
    _ENERGY,
    _CHARGE,
    _NPULSE,
    _NBAD,
    _TON,
    _NSW,
    _REMAIN,
    _NTRAIN,
    _NDELIV,
) = range(17)
_NTRIG, _NTRIG_BAD, _WITHHELD, _DAY, _TRIG_TODAY = range(17, 22)
_Q_TODAY, _ON_TODAY, _LOCK_UNTIL, _CAPPED = range(22, len(DEVICE_STATE))


class DeviceState(NamedTuple):
    """What the device kernels carry for a batch of ``n`` (arrays updated in place).

    Made by :meth:`Device.kernel_state`. Commands wait in a ring per instance
    until their step: entries ``head .. tail - 1`` (mod ``Q``) are pending.
    """

    state: np.ndarray  #: (n, len(DEVICE_STATE)): columns of :data:`DEVICE_STATE`
    params: np.ndarray  #: (n, 13): limits (amplitude, frequency, width, ramp, charge, impedance,
    #: lock-out, day length, daily caps)
    queue_step: np.ndarray  #: (n, Q) int64: step from which each entry applies
    queue_command: np.ndarray  #: (n, Q, 4): amplitude mA, frequency Hz, width us, pulses
    queue_head: np.ndarray  #: (n,) int64: next entry to apply
    queue_tail: np.ndarray  #: (n,) int64: next free entry


# Queue field positions for queue_push_one, inlined in parallel loops where Numba
# loses writes through NamedTuple attributes (numba#5872, numba#7135).
_Q_STEP, _Q_COMMAND, _Q_TAIL = (
    DeviceState._fields.index(name) for name in ("queue_step", "queue_command", "queue_tail")
)


def device_targets(device: DeviceState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Copies of the programmed amplitude (mA), frequency (Hz) and pulse width (us)."""
    ds = device.state
    return ds[:, _TGT_AMP].copy(), ds[:, _FREQ].copy(), ds[:, _TGT_PW].copy()


def retract_commands(device: DeviceState, from_step: int) -> None:
    """Drop the queued commands that would apply from ``from_step`` on (not yet applied).

    Each instance's queue holds its pending commands in order of their steps;
    the last ones are dropped (a command from outside replacing the
    controller's, e.g. :meth:`closedloop.brian.loop.BrianLoop.step`).
    """
    steps, head, tail = device.queue_step, device.queue_head, device.queue_tail
    q_len = steps.shape[1]
    for i in range(tail.shape[0]):
        while tail[i] > head[i] and steps[i, (tail[i] - 1) % q_len] >= from_step:
            tail[i] -= 1


def device_totals(device: DeviceState) -> dict[str, np.ndarray]:
    """Each column of :data:`DEVICE_STATE` per instance, copied."""
    return {name: device.state[:, c].copy() for c, name in enumerate(DEVICE_STATE)}


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

    def __post_init__(self) -> None:
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

    def to_dict(self) -> dict[str, float]:
        """Return the configuration as a plain dict."""
        return asdict(self)

    def param_array(self, n: int) -> np.ndarray:
        """Per-instance parameter array for the kernels, shape ``(n, 13)``."""
        row = np.empty(_N_PARAMS)
        row[_AMP_MAX] = self.amplitude_max_ma
        row[_F_MIN] = self.frequency_min_hz
        row[_F_MAX] = self.frequency_max_hz
        row[_PW_MIN] = self.pulse_width_min_us
        row[_PW_MAX] = self.pulse_width_max_us
        row[_RAMP] = self.ramp_rate_ma_per_s
        row[_QMAX] = self.charge_limit_uc
        row[_R] = self.impedance_ohm
        row[_LOCKOUT] = self.trigger_lockout_s
        row[_DAY_S] = self.day_length_s
        row[_MAX_TRIG] = self.max_triggers_per_day
        row[_MAX_Q_DAY] = self.max_charge_uc_per_day
        row[_MAX_ON_DAY] = self.max_on_time_s_per_day
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
        state[:, _FREQ] = freq
        state[:, _TGT_PW] = pw
        state[:, _P_PW] = pw * 1e-6
        state[:, _P_START] = -1.0  # no pulse in progress
        state[:, _REMAIN] = math.inf  # continuous stimulation until told otherwise
        return state


@njit(cache=True)
def apply_command(ds, dp, i, amplitude_ma, frequency_hz, pulse_width_us, pulses, t_s):
    """Clamp a command to the limits of instance ``i`` and make it the target.

    Non-finite amplitude, frequency or width values are ignored (previous
    target kept) and counted. ``pulses``: NaN leaves the pulse train as it
    is; ``inf`` makes it continuous; a whole number ``k >= 0`` delivers ``k``
    pulses from ``t_s`` on (a burst at the programmed frequency, or single
    pulses for phase-locked stimulation) and then none; negative is rejected.
    A burst (``k > 0``) is a trigger: refused, and counted, during a lock-out
    or once a daily cap is reached (:func:`trigger_refused`).
    """
    if math.isfinite(frequency_hz):
        ds[i, _FREQ] = min(max(frequency_hz, dp[i, _F_MIN]), dp[i, _F_MAX])
    else:
        ds[i, _NBAD] += 1.0
    if math.isfinite(pulse_width_us):
        ds[i, _TGT_PW] = min(max(pulse_width_us, dp[i, _PW_MIN]), dp[i, _PW_MAX])
    else:
        ds[i, _NBAD] += 1.0
    if math.isfinite(amplitude_ma):
        ds[i, _TGT_AMP] = max(amplitude_ma, 0.0)
    else:
        ds[i, _NBAD] += 1.0
    # Cap the target for the charge limit at the (possibly new) pulse width.
    cap = min(dp[i, _AMP_MAX], dp[i, _QMAX] / (ds[i, _TGT_PW] * 1e-3))
    ds[i, _TGT_AMP] = min(ds[i, _TGT_AMP], cap)
    if pulses > 0.0 and math.isfinite(pulses) and trigger_refused(ds, dp, i, t_s):
        ds[i, _NTRIG_BAD] += 1.0  # a refused burst leaves the pulse train as it was
    elif pulses >= 0.0:  # False for NaN: no change
        previous = ds[i, _REMAIN]
        ds[i, _REMAIN] = np.floor(pulses)  # float floor: inf stays inf, no int overflow
        if pulses >= 1.0 and math.isfinite(pulses):
            ds[i, _NDELIV] += 1.0
        if pulses > 0.0 and (math.isfinite(pulses) or math.isfinite(previous)):
            # A burst, or continuous after a burst: the first pulse now, or as
            # soon as a pulse still under way has ended.
            busy_until = ds[i, _P_START] + 2.0 * ds[i, _P_PW] if ds[i, _P_AMP] > 0.0 else t_s
            ds[i, _NEXT] = max(t_s, busy_until)
        if pulses > 0.0 and math.isfinite(pulses):  # an accepted trigger
            ds[i, _NTRIG] += 1.0
            ds[i, _TRIG_TODAY] += 1.0
            if dp[i, _LOCKOUT] > 0.0:
                burst_end = ds[i, _NEXT] + ds[i, _REMAIN] / ds[i, _FREQ]
                ds[i, _LOCK_UNTIL] = burst_end + dp[i, _LOCKOUT]
    elif pulses < 0.0:
        ds[i, _NBAD] += 1.0


@njit(cache=True, inline="always")
def trigger_refused(ds, dp, i, t_s):
    """Whether instance ``i`` refuses a burst asked for at ``t_s`` (seconds).

    Refused during the lock-out after the last accepted burst, once today's
    accepted triggers, charge (uC) or on-time (s) has reached its daily cap,
    or once a cap has withheld a pulse today. The daily counters must refer
    to the day of ``t_s`` (:func:`device_fill` rolls them over first).
    """
    return (
        t_s < ds[i, _LOCK_UNTIL]
        or ds[i, _CAPPED] != 0.0
        or ds[i, _TRIG_TODAY] >= dp[i, _MAX_TRIG]
        or ds[i, _Q_TODAY] >= dp[i, _MAX_Q_DAY]
        or ds[i, _ON_TODAY] >= dp[i, _MAX_ON_DAY]
    )


@njit(cache=True, inline="always")
def _overlap(a, b, t0, t1):
    return max(0.0, min(b, t1) - max(a, t0))


@njit(cache=True, inline="always")
def queue_push_one(device, i, amplitude_ma, frequency_hz, pulse_width_us, pulses, effective_step):
    """Queue a command for instance ``i`` from step ``effective_step`` on.

    Commands apply in order, each from its step on, which is how the
    sensing-to-stimulation latency is kept.
    """
    q_eff = device[_Q_STEP]
    q_cmd = device[_Q_COMMAND]
    tail = device[_Q_TAIL]
    q_len = q_eff.shape[1]
    # No overflow check here: raising inside a prange body keeps Numba from
    # parallelising it. The loop sizes the queue for its latency (one command
    # per period, latency / period + 3 entries); queue_push checks.
    slot = tail[i] % q_len
    q_eff[i, slot] = effective_step
    q_cmd[i, slot, _CMD_AMP] = amplitude_ma
    q_cmd[i, slot, _CMD_FREQ] = frequency_hz
    q_cmd[i, slot, _CMD_PW] = pulse_width_us
    q_cmd[i, slot, _CMD_PULSES] = pulses
    tail[i] += 1


@njit(cache=True)
def queue_push(device, command, effective_step):
    """Queue ``command`` (amplitude mA, frequency Hz, width us, pulses) for every instance.

    A negative ``effective_step`` queues nothing.
    """
    if effective_step < 0:
        return
    q_len = device.queue_step.shape[1]
    n = device.state.shape[0]
    for i in range(n):
        if device.queue_tail[i] - device.queue_head[i] >= q_len:
            raise ValueError("device command queue is full")
    # Unpacked one by one: the three arrays may differ in type (e.g. read-only).
    amplitude, frequency, width, pulses = command
    for i in range(n):
        queue_push_one(device, i, amplitude[i], frequency[i], width[i], pulses[i], effective_step)


@njit(cache=True, inline="always")
def device_record(i, device, out, k):
    """Write what was delivered to column ``k`` of the per-period record ``out``.

    Amplitude (mA), frequency (Hz), pulse width of the last pulse (us), the
    number of pulses delivered so far and of triggers accepted and refused so
    far, in their rows of :mod:`closedloop.core.record`.
    """
    ds = device.state
    out[i, AMPLITUDE_ROW, k] = ds[i, _AMP]
    out[i, FREQUENCY_ROW, k] = ds[i, _FREQ]
    out[i, PULSE_WIDTH_ROW, k] = ds[i, _P_PW] * 1e6
    out[i, PULSE_COUNT_ROW, k] = ds[i, _NPULSE]
    out[i, TRIGGERS_DELIVERED_ROW, k] = ds[i, _NTRIG]
    out[i, TRIGGERS_REJECTED_ROW, k] = ds[i, _NTRIG_BAD]


@njit(cache=True)
def device_fill(i, n_steps, step0, dt, device, drive, net):
    """Advance instance ``i``'s device by ``n_steps`` steps of ``dt`` seconds.

    Parameters
    ----------
    i : int
        Instance.
    n_steps : int
        Steps to fill.
    step0 : int
        Global index of the first step (time ``step0 * dt`` seconds).
    dt : float
        Integration step, s.
    device : DeviceState
        From :meth:`Device.kernel_state`: state, limits and command queue.
    drive, net : ndarray
        Output, shape ``(n, >= n_steps)``: average cathodic current and
        average net current over each step, mA.
    """
    ds = device.state
    dp = device.params
    q_eff = device.queue_step
    q_cmd = device.queue_command
    q_len = q_eff.shape[1]
    head = device.queue_head[i]
    q_tail = device.queue_tail[i]
    ramp = dp[i, _RAMP] * dt
    r_ohm = dp[i, _R]
    q_max = dp[i, _QMAX]
    inv_dt = 1.0 / dt
    # Work on locals (kept in registers) and write the state back once.
    amp = ds[i, _AMP]
    target = ds[i, _TGT_AMP]
    next_pulse = ds[i, _NEXT]
    p_start = ds[i, _P_START]
    p_amp = ds[i, _P_AMP]
    p_pw = ds[i, _P_PW]
    remaining = ds[i, _REMAIN]
    # On or off at the end of the last fill: switches are counted from off, so an
    # odd count means on. (Not from amplitude and pulses left: the last pulse of a
    # burst still under way at the end of a fill counts as on.)
    was_on = ds[i, _NSW] % 2.0 == 1.0
    # Running totals continue from the state, so chunked runs add in the same order.
    energy = ds[i, _ENERGY]
    charge = ds[i, _CHARGE]
    n_pulses = ds[i, _NPULSE]
    time_on = ds[i, _TON]
    switches = ds[i, _NSW]
    # The same parity rule for the continuous train.
    train_was_on = ds[i, _NTRAIN] % 2.0 == 1.0
    train_switches = ds[i, _NTRAIN]
    # Daily caps (inf: none) and the counters of the current day.
    day_s = dp[i, _DAY_S]
    max_q_day = dp[i, _MAX_Q_DAY]
    max_on_day = dp[i, _MAX_ON_DAY]
    day_end = (ds[i, _DAY] + 1.0) * day_s
    q_today = ds[i, _Q_TODAY]
    on_today = ds[i, _ON_TODAY]
    withheld = ds[i, _WITHHELD]
    capped = ds[i, _CAPPED] != 0.0
    for j in range(n_steps):
        step = step0 + j
        if step * dt >= day_end:  # a new day of the simulated clock
            day = math.floor(step * dt / day_s)
            day_end = (day + 1.0) * day_s
            ds[i, _DAY] = day
            ds[i, _TRIG_TODAY] = 0.0
            q_today = 0.0
            on_today = 0.0
            capped = False
        while head < q_tail and q_eff[i, head % q_len] <= step:
            slot = head % q_len
            # apply_command reads and may move the pulse timing: hand it the locals.
            ds[i, _NEXT] = next_pulse
            ds[i, _P_START] = p_start
            ds[i, _P_AMP] = p_amp
            ds[i, _P_PW] = p_pw
            ds[i, _REMAIN] = remaining
            ds[i, _Q_TODAY] = q_today
            ds[i, _ON_TODAY] = on_today
            ds[i, _CAPPED] = 1.0 if capped else 0.0
            apply_command(
                ds,
                dp,
                i,
                q_cmd[i, slot, _CMD_AMP],
                q_cmd[i, slot, _CMD_FREQ],
                q_cmd[i, slot, _CMD_PW],
                q_cmd[i, slot, _CMD_PULSES],
                step * dt,
            )
            target = ds[i, _TGT_AMP]
            next_pulse = ds[i, _NEXT]
            remaining = ds[i, _REMAIN]
            head += 1
        t0 = step * dt
        t1 = t0 + dt
        amp = amp + min(max(target - amp, -ramp), ramp)
        q_cath = 0.0
        q_anod = 0.0
        # Phases of the pulse under way, then of any pulse starting in this step.
        while True:
            # Most steps fall between pulses: only a pulse still under way counts.
            if p_amp > 0.0 and p_start + 2.0 * p_pw > t0:
                oc = _overlap(p_start, p_start + p_pw, t0, t1)
                oa = _overlap(p_start + p_pw, p_start + 2.0 * p_pw, t0, t1)
                q_cath += p_amp * oc
                q_anod += p_amp * oa
                energy += (p_amp * 1e-3) ** 2 * r_ohm * (oc + oa)
            if next_pulse >= t1:
                break
            p_start = next_pulse
            p_pw = ds[i, _TGT_PW] * 1e-6
            p_amp = amp if remaining > 0.0 else 0.0
            if p_amp > 0.0:
                # Never exceed the charge limit, even mid-ramp after a width change.
                p_pw = min(p_pw, q_max / amp * 1e-3)  # uC / mA = ms
                q_pulse = p_amp * p_pw * 1e3  # cathodic charge of the pulse, uC
                # (1 + 1e-12: a cap a whole number of pulses holds despite rounding.)
                if q_today + q_pulse > max_q_day * (1.0 + 1e-12) or on_today >= max_on_day:
                    # A daily cap: the pulse is withheld and a burst ends here.
                    p_amp = 0.0
                    withheld += 1.0
                    capped = True
                    if math.isfinite(remaining):
                        remaining = 0.0
                else:
                    q_today += q_pulse
                    n_pulses += 1.0
                    remaining -= 1.0  # inf stays inf
            next_pulse = p_start + 1.0 / ds[i, _FREQ]
        charge += q_cath * 1e3  # delivered in this step; mA * s = mC = 1e3 uC
        drive[i, j] = q_cath * inv_dt
        net[i, j] = (q_cath - q_anod) * inv_dt
        stimulating = amp > 0.0 and (
            (remaining > 0.0 and not capped) or q_cath > 0.0 or q_anod > 0.0
        )
        if stimulating:
            time_on += dt
            on_today += dt
        if stimulating != was_on:
            switches += 1.0
        was_on = stimulating
        train_on = amp > 0.0 and remaining == math.inf
        if train_on != train_was_on:
            train_switches += 1.0
        train_was_on = train_on
    ds[i, _AMP] = amp
    ds[i, _NEXT] = next_pulse
    ds[i, _P_START] = p_start
    ds[i, _P_AMP] = p_amp
    ds[i, _P_PW] = p_pw
    ds[i, _ENERGY] = energy
    ds[i, _CHARGE] = charge
    ds[i, _NPULSE] = n_pulses
    ds[i, _TON] = time_on
    ds[i, _NSW] = switches
    ds[i, _NTRAIN] = train_switches
    ds[i, _REMAIN] = remaining
    ds[i, _Q_TODAY] = q_today
    ds[i, _ON_TODAY] = on_today
    ds[i, _WITHHELD] = withheld
    ds[i, _CAPPED] = 1.0 if capped else 0.0
    device.queue_head[i] = head
