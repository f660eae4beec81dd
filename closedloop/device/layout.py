"""Layout of the device's arrays: parameter, state and command columns.

The kernels of every modality index the same per-instance arrays through the
constants here; :class:`DeviceState` bundles them with the command queue.
Column names carry their units in :data:`DEVICE_STATE`. No compiled code
here: the kernels read these as compile-time constants.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "CMD_AMP",
    "CMD_FREQ",
    "CMD_PULSES",
    "CMD_PW",
    "DBS",
    "MODALITIES",
    "N_MODE_PARAMS",
    "P_MODALITY",
    "P_MODE_FIRST",
    "TES",
    "TMS",
    "VNS",
    "DEVICE_STATE",
    "DeviceState",
    "N_PARAMS",
    "QUEUE_COMMAND",
    "QUEUE_STEP",
    "QUEUE_TAIL",
    "device_targets",
    "device_totals",
    "retract_commands",
]

# Columns of the per-instance device parameter array; then lock-out (s), day
# length (s), daily caps (triggers, uC, s).
P_AMP_MAX, P_F_MIN, P_F_MAX, P_PW_MIN, P_PW_MAX, P_RAMP, P_QMAX, P_R = range(8)
P_LOCKOUT, P_DAY_S, P_MAX_TRIG, P_MAX_Q_DAY, P_MAX_ON_DAY = range(8, 13)
#: The modality's code (:data:`MODALITIES`), then columns each modality reads
#: in its own terms (named in its module: ``closedloop.device.tms`` and so on).
P_MODALITY = 13
P_MODE_FIRST = 14
N_MODE_PARAMS = 10
N_PARAMS = P_MODE_FIRST + N_MODE_PARAMS
#: Modality names and their codes in the ``P_MODALITY`` column.
MODALITIES: dict[str, int] = {"dbs": 0, "tms": 1, "tes": 2, "vns": 3}
DBS, TMS, TES, VNS = range(4)
CMD_AMP, CMD_FREQ, CMD_PW, CMD_PULSES = range(4)

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
    # Modalities' own columns (zero under DBS). TMS: pulses left in the pattern
    # unit under way, the current train's start, pulses of the running session,
    # pattern units delivered, pulses delivered today, and the intensity dose.
    "unit_pulses_left": "1",
    "unit_start_s": "s",
    "train_start_s": "s",
    "train_ready_s": "s",  # TMS: no new train before this time (inter-train interval)
    "session_pulses": "1",
    "n_units": "1",
    "pulses_today": "1",
    "dose_pct_rmt": "%RMT",  # TMS: sum over pulses of each pulse's intensity
    "phase_rad": "rad",  # tACS: phase of the alternating current
}
(
    S_AMP,
    S_TGT_AMP,
    S_FREQ,
    S_TGT_PW,
    S_NEXT,
    S_P_START,
    S_P_AMP,
    S_P_PW,
    S_ENERGY,
    S_CHARGE,
    S_NPULSE,
    S_NBAD,
    S_TON,
    S_NSW,
    S_REMAIN,
    S_NTRAIN,
    S_NDELIV,
) = range(17)
S_NTRIG, S_NTRIG_BAD, S_WITHHELD, S_DAY, S_TRIG_TODAY = range(17, 22)
S_Q_TODAY, S_ON_TODAY, S_LOCK_UNTIL, S_CAPPED = range(22, 26)
S_UNIT_LEFT, S_UNIT_START, S_TRAIN_START, S_TRAIN_READY, S_SESSION = range(26, 31)
S_NUNITS, S_PULSES_TODAY, S_DOSE, S_PHASE = range(31, len(DEVICE_STATE))


class DeviceState(NamedTuple):
    """What the device kernels carry for a batch of ``n`` (arrays updated in place).

    Made by :meth:`Device.kernel_state`. Commands wait in a ring per instance
    until their step: entries ``head .. tail - 1`` (mod ``Q``) are pending.
    """

    state: np.ndarray  #: (n, len(DEVICE_STATE)): columns of :data:`DEVICE_STATE`
    params: np.ndarray  #: (n, N_PARAMS): limits (amplitude, frequency, width, ramp, charge,
    #: impedance, lock-out, day length, daily caps), the modality and its own columns
    queue_step: np.ndarray  #: (n, Q) int64: step from which each entry applies
    queue_command: np.ndarray  #: (n, Q, 4): amplitude mA, frequency Hz, width us, pulses
    queue_head: np.ndarray  #: (n,) int64: next entry to apply
    queue_tail: np.ndarray  #: (n,) int64: next free entry


# Queue field positions for queue_push_one, inlined in parallel loops where Numba
# loses writes through NamedTuple attributes (numba#5872, numba#7135).
QUEUE_STEP, QUEUE_COMMAND, QUEUE_TAIL = (
    DeviceState._fields.index(name) for name in ("queue_step", "queue_command", "queue_tail")
)


def device_targets(device: DeviceState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Copies of the programmed amplitude (mA), frequency (Hz) and pulse width (us)."""
    ds = device.state
    return ds[:, S_TGT_AMP].copy(), ds[:, S_FREQ].copy(), ds[:, S_TGT_PW].copy()


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
