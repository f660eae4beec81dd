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

import numpy as np

from closedloop.core import kernel_cache  # noqa: F401  (sets the kernel cache directory first)
from closedloop.core.jit import njit
from closedloop.core.record import (
    AMPLITUDE_ROW,
    FREQUENCY_ROW,
    PULSE_COUNT_ROW,
    PULSE_WIDTH_ROW,
    TRIGGERS_DELIVERED_ROW,
    TRIGGERS_REJECTED_ROW,
)
from closedloop.device.layout import (
    CMD_AMP,
    CMD_FREQ,
    CMD_PULSES,
    CMD_PW,
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
    S_AMP,
    S_CAPPED,
    S_CHARGE,
    S_DAY,
    S_ENERGY,
    S_FREQ,
    S_LOCK_UNTIL,
    S_NBAD,
    S_NDELIV,
    S_NEXT,
    S_NPULSE,
    S_NSW,
    S_NTRAIN,
    S_NTRIG,
    S_NTRIG_BAD,
    S_ON_TODAY,
    S_P_AMP,
    S_P_PW,
    S_P_START,
    S_Q_TODAY,
    S_REMAIN,
    S_TGT_AMP,
    S_TGT_PW,
    S_TON,
    S_TRIG_TODAY,
    S_WITHHELD,
    TES,
    TMS,
    VNS,
)
from closedloop.device.queue import queue_push, queue_push_one
from closedloop.device.tes import tes_fill
from closedloop.device.tms import tms_fill
from closedloop.device.vns import PV_OFF_S, PV_ON_S

__all__ = [
    "apply_command",
    "device_fill",
    "device_record",
    "pulse_fill",
    "queue_push",
    "queue_push_one",
    "trigger_refused",
]


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
        ds[i, S_FREQ] = min(max(frequency_hz, dp[i, P_F_MIN]), dp[i, P_F_MAX])
    else:
        ds[i, S_NBAD] += 1.0
    if math.isfinite(pulse_width_us):
        ds[i, S_TGT_PW] = min(max(pulse_width_us, dp[i, P_PW_MIN]), dp[i, P_PW_MAX])
    else:
        ds[i, S_NBAD] += 1.0
    if math.isfinite(amplitude_ma):
        ds[i, S_TGT_AMP] = max(amplitude_ma, 0.0)
    else:
        ds[i, S_NBAD] += 1.0
    # Cap the target for the charge limit at the (possibly new) pulse width.
    cap = min(dp[i, P_AMP_MAX], dp[i, P_QMAX] / (ds[i, S_TGT_PW] * 1e-3))
    ds[i, S_TGT_AMP] = min(ds[i, S_TGT_AMP], cap)
    if pulses > 0.0 and math.isfinite(pulses) and trigger_refused(ds, dp, i, t_s):
        ds[i, S_NTRIG_BAD] += 1.0  # a refused burst leaves the pulse train as it was
    elif pulses >= 0.0:  # False for NaN: no change
        previous = ds[i, S_REMAIN]
        ds[i, S_REMAIN] = np.floor(pulses)  # float floor: inf stays inf, no int overflow
        if pulses >= 1.0 and math.isfinite(pulses):
            ds[i, S_NDELIV] += 1.0
        if pulses > 0.0 and (math.isfinite(pulses) or math.isfinite(previous)):
            # A burst, or continuous after a burst: the first pulse now, or as
            # soon as a pulse still under way has ended.
            busy_until = ds[i, S_P_START] + 2.0 * ds[i, S_P_PW] if ds[i, S_P_AMP] > 0.0 else t_s
            ds[i, S_NEXT] = max(t_s, busy_until)
        if pulses > 0.0 and math.isfinite(pulses):  # an accepted trigger
            ds[i, S_NTRIG] += 1.0
            ds[i, S_TRIG_TODAY] += 1.0
            if dp[i, P_LOCKOUT] > 0.0:
                burst_end = ds[i, S_NEXT] + ds[i, S_REMAIN] / ds[i, S_FREQ]
                ds[i, S_LOCK_UNTIL] = burst_end + dp[i, P_LOCKOUT]
    elif pulses < 0.0:
        ds[i, S_NBAD] += 1.0


@njit(cache=True, inline="always")
def trigger_refused(ds, dp, i, t_s):
    """Whether instance ``i`` refuses a burst asked for at ``t_s`` (seconds).

    Refused during the lock-out after the last accepted burst, once today's
    accepted triggers, charge (uC) or on-time (s) has reached its daily cap,
    or once a cap has withheld a pulse today. The daily counters must refer
    to the day of ``t_s`` (:func:`device_fill` rolls them over first).
    """
    return (
        t_s < ds[i, S_LOCK_UNTIL]
        or ds[i, S_CAPPED] != 0.0
        or ds[i, S_TRIG_TODAY] >= dp[i, P_MAX_TRIG]
        or ds[i, S_Q_TODAY] >= dp[i, P_MAX_Q_DAY]
        or ds[i, S_ON_TODAY] >= dp[i, P_MAX_ON_DAY]
    )


@njit(cache=True, inline="always")
def _overlap(a, b, t0, t1):
    return max(0.0, min(b, t1) - max(a, t0))


@njit(cache=True, inline="always")
def device_record(i, device, out, k):
    """Write what was delivered to column ``k`` of the per-period record ``out``.

    Amplitude (mA), frequency (Hz), pulse width of the last pulse (us), the
    number of pulses delivered so far and of triggers accepted and refused so
    far, in their rows of :mod:`closedloop.core.record`.
    """
    ds = device.state
    out[i, AMPLITUDE_ROW, k] = ds[i, S_AMP]
    out[i, FREQUENCY_ROW, k] = ds[i, S_FREQ]
    out[i, PULSE_WIDTH_ROW, k] = ds[i, S_P_PW] * 1e6
    out[i, PULSE_COUNT_ROW, k] = ds[i, S_NPULSE]
    out[i, TRIGGERS_DELIVERED_ROW, k] = ds[i, S_NTRIG]
    out[i, TRIGGERS_REJECTED_ROW, k] = ds[i, S_NTRIG_BAD]


@njit(cache=True, inline="always")
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
    # The modalities with their own waveform; VNS is DBS's pulse train with a duty cycle.
    mode = device.params[i, P_MODALITY]
    if mode == TMS:
        tms_fill(i, n_steps, step0, dt, device, drive, net)
    elif mode == TES:
        tes_fill(i, n_steps, step0, dt, device, drive, net)
    else:
        pulse_fill(i, n_steps, step0, dt, device, drive, net)


@njit(cache=True, inline="always")
def pulse_fill(i, n_steps, step0, dt, device, drive, net):
    """DBS and VNS: biphasic pulse trains (arguments of :func:`device_fill`)."""
    ds = device.state
    dp = device.params
    duty = dp[i, P_MODALITY] == VNS and dp[i, PV_OFF_S] > 0.0
    duty_on = dp[i, PV_ON_S]
    duty_cycle = dp[i, PV_ON_S] + dp[i, PV_OFF_S]
    q_eff = device.queue_step
    q_cmd = device.queue_command
    q_len = q_eff.shape[1]
    head = device.queue_head[i]
    q_tail = device.queue_tail[i]
    ramp = dp[i, P_RAMP] * dt
    r_ohm = dp[i, P_R]
    q_max = dp[i, P_QMAX]
    inv_dt = 1.0 / dt
    # Work on locals (kept in registers) and write the state back once.
    amp = ds[i, S_AMP]
    target = ds[i, S_TGT_AMP]
    next_pulse = ds[i, S_NEXT]
    p_start = ds[i, S_P_START]
    p_amp = ds[i, S_P_AMP]
    p_pw = ds[i, S_P_PW]
    remaining = ds[i, S_REMAIN]
    # On or off at the end of the last fill: switches are counted from off, so an
    # odd count means on. (Not from amplitude and pulses left: the last pulse of a
    # burst still under way at the end of a fill counts as on.)
    was_on = ds[i, S_NSW] % 2.0 == 1.0
    # Running totals continue from the state, so chunked runs add in the same order.
    energy = ds[i, S_ENERGY]
    charge = ds[i, S_CHARGE]
    n_pulses = ds[i, S_NPULSE]
    time_on = ds[i, S_TON]
    switches = ds[i, S_NSW]
    # The same parity rule for the continuous train.
    train_was_on = ds[i, S_NTRAIN] % 2.0 == 1.0
    train_switches = ds[i, S_NTRAIN]
    # Daily caps (inf: none) and the counters of the current day.
    day_s = dp[i, P_DAY_S]
    max_q_day = dp[i, P_MAX_Q_DAY]
    max_on_day = dp[i, P_MAX_ON_DAY]
    day_end = (ds[i, S_DAY] + 1.0) * day_s
    q_today = ds[i, S_Q_TODAY]
    on_today = ds[i, S_ON_TODAY]
    withheld = ds[i, S_WITHHELD]
    capped = ds[i, S_CAPPED] != 0.0
    for j in range(n_steps):
        step = step0 + j
        if step * dt >= day_end:  # a new day of the simulated clock
            day = math.floor(step * dt / day_s)
            day_end = (day + 1.0) * day_s
            ds[i, S_DAY] = day
            ds[i, S_TRIG_TODAY] = 0.0
            q_today = 0.0
            on_today = 0.0
            capped = False
        while head < q_tail and q_eff[i, head % q_len] <= step:
            slot = head % q_len
            # apply_command reads and may move the pulse timing: hand it the locals.
            ds[i, S_NEXT] = next_pulse
            ds[i, S_P_START] = p_start
            ds[i, S_P_AMP] = p_amp
            ds[i, S_P_PW] = p_pw
            ds[i, S_REMAIN] = remaining
            ds[i, S_Q_TODAY] = q_today
            ds[i, S_ON_TODAY] = on_today
            ds[i, S_CAPPED] = 1.0 if capped else 0.0
            apply_command(
                ds,
                dp,
                i,
                q_cmd[i, slot, CMD_AMP],
                q_cmd[i, slot, CMD_FREQ],
                q_cmd[i, slot, CMD_PW],
                q_cmd[i, slot, CMD_PULSES],
                step * dt,
            )
            target = ds[i, S_TGT_AMP]
            next_pulse = ds[i, S_NEXT]
            remaining = ds[i, S_REMAIN]
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
            p_pw = ds[i, S_TGT_PW] * 1e-6
            p_amp = amp if remaining > 0.0 else 0.0
            if duty and remaining == math.inf:  # VNS: continuous pulses in the on-phase only
                if p_start - math.floor(p_start / duty_cycle) * duty_cycle >= duty_on:
                    p_amp = 0.0
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
            next_pulse = p_start + 1.0 / ds[i, S_FREQ]
        charge += q_cath * 1e3  # delivered in this step; mA * s = mC = 1e3 uC
        drive[i, j] = q_cath * inv_dt
        net[i, j] = (q_cath - q_anod) * inv_dt
        stimulating = amp > 0.0 and (
            (remaining > 0.0 and not capped) or q_cath > 0.0 or q_anod > 0.0
        )
        if duty and stimulating and remaining == math.inf and q_cath == 0.0 and q_anod == 0.0:
            stimulating = t0 - math.floor(t0 / duty_cycle) * duty_cycle < duty_on
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
    ds[i, S_AMP] = amp
    ds[i, S_NEXT] = next_pulse
    ds[i, S_P_START] = p_start
    ds[i, S_P_AMP] = p_amp
    ds[i, S_P_PW] = p_pw
    ds[i, S_ENERGY] = energy
    ds[i, S_CHARGE] = charge
    ds[i, S_NPULSE] = n_pulses
    ds[i, S_TON] = time_on
    ds[i, S_NSW] = switches
    ds[i, S_NTRAIN] = train_switches
    ds[i, S_REMAIN] = remaining
    ds[i, S_Q_TODAY] = q_today
    ds[i, S_ON_TODAY] = on_today
    ds[i, S_WITHHELD] = withheld
    ds[i, S_CAPPED] = 1.0 if capped else 0.0
    device.queue_head[i] = head
