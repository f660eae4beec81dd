"""Transcranial magnetic stimulation (TMS): pulses, pairs, bursts, rTMS and theta-burst.

Commands (the controller API is unchanged; :mod:`closedloop.controllers.base`)
------------------------------------------------------------------------------
- amplitude slot (``intensity_pct_rmt``): stimulator intensity in percent of
  the resting motor threshold (% RMT), capped at ``intensity_max_pct_rmt``.
  Takes effect at the next pulse (a stimulator recharges between pulses; no
  ramp).
- ``frequency_hz``: the rTMS pulse rate (``protocol: rtms``), clamped to
  ``[frequency_min_hz, frequency_max_hz]``; unused by theta-burst.
- ``pulse_width_us``: ignored (the coil's pulse shape is fixed).
- ``pulses: k`` (finite): ``k`` *pattern units* from now (``pattern``: a single
  pulse, a paired pulse ``paired_ipi_ms`` apart, or a burst of
  ``burst_pulses`` at ``burst_frequency_hz``), one unit every
  ``1 / frequency_hz`` s; a trigger, refused during ``trigger_lockout_s``
  after the last accepted one and once a daily cap is reached.
  ``pulses: inf`` starts the repetitive ``protocol`` (``rtms``: trains of
  single pulses at ``frequency_hz``; ``itbs``: 50 Hz triplets at 5 Hz, 2 s on,
  8 s off; ``ctbs``: the triplets for 40 s without a break) until
  ``pulses_per_session`` pulses, or ``pulses: 0``. A new protocol waits for
  the inter-train interval after the last train.
- ``pulses: 0`` stops after the pattern unit under way: a pair, a triplet or
  a theta-burst triplet already started is delivered whole (on a stimulator
  a burst is one hardware-timed sequence, and a cut triplet is not the
  pattern any protocol prescribes), and no further unit starts. A controller
  may so send 0 between triggers; ``NaN`` ("no change") works as well.

Limits, enforced whatever a controller asks
-------------------------------------------
Intensity cap; frequency range; train duration (``train_duration_s``) and
inter-train interval (``inter_train_s``) of the protocol, checked at
configuration against the safety table below; pulses per session and per
day; trigger lock-out. Pulses withheld by a cap are counted
(``pulses_withheld``).

Safety table (:data:`SAFE_TRAIN_S`): longest single rTMS train (s) without
spread of excitation, by frequency (Hz) and intensity (% MT), from
Wassermann (1998, Table 4, as carried over by Rossi et al. 2009 and 2021).
The values were recalled and could not be checked against the table here
(treat them as approximate), except the 20 Hz, 110 % entry (1.6 s), which
Chen et al. (1997) tested; they also advise trains 25 % shorter than the
table and at least 5 s between trains (:data:`MIN_INTER_TRAIN_S`, enforced
for ``rtms``). A configured train longer than the table allows at
``intensity_max_pct_rmt`` (at the highest tabulated frequency at or above
``frequency_max_hz``, the most restrictive one) is refused. Theta-burst at up
to 120 % RMT (:data:`TBS_MAX_PCT_RMT`) is accepted; above it, ``itbs`` and
``ctbs`` are refused (recalled, unchecked).

Dose: pulses delivered, pattern units, the sum of the pulses' intensities
(% RMT x pulses, ``dose_pct_rmt``). TMS delivers no current through
electrodes: energy and charge stay 0.

Mapping to a population model (a modelling choice)
---------------------------------------------------
Each pulse is a brief, strong input to the whole stimulated population: the
device writes ``drive = (intensity / 100) * drive_at_rmt`` for
``pulse_duration_s`` after the pulse (integrated exactly over each step, as
DBS pulses are), in the model's stimulation units. The induced electric field
lasts about 0.3 ms; its effect on a population is the synchronous
depolarisation of many axons, which a neural-mass model sees as a
short distributed input. ``drive_at_rmt`` is a per-model calibration: the
value at which 100 % RMT evokes a threshold-level response in that model
(the default is chosen, not derived; calibrate it for your model).
``net`` (artefact) equals the drive.

References
----------
Wassermann EM (1998) Risk and safety of repetitive transcranial magnetic
stimulation. Electroencephalogr Clin Neurophysiol 108:1-16.
Rossi S et al. (2009) Safety, ethical considerations, and application
guidelines for the use of TMS. Clin Neurophysiol 120:2008-2039.
Rossi S et al. (2021) Safety and recommendations for TMS use in healthy
subjects and patient populations. Clin Neurophysiol 132:269-306.
Chen R et al. (1997) Safety of different inter-train intervals for
repetitive transcranial magnetic stimulation and recommendations for safe
ranges of stimulation parameters. Electroencephalogr Clin Neurophysiol
105:415-421.
Huang YZ et al. (2005) Theta burst stimulation of the human motor cortex.
Neuron 45:201-206 (iTBS: 2 s trains every 10 s, 600 pulses; cTBS: 40 s).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from closedloop.core import kernel_cache  # noqa: F401  (sets the kernel cache directory first)
from closedloop.core.jit import njit
from closedloop.device.commands import ModalityCommands
from closedloop.device.layout import (
    CMD_AMP,
    CMD_FREQ,
    CMD_PULSES,
    P_AMP_MAX,
    P_DAY_S,
    P_F_MAX,
    P_F_MIN,
    P_LOCKOUT,
    P_MAX_TRIG,
    P_MODE_FIRST,
    P_PW_MAX,
    S_AMP,
    S_CAPPED,
    S_DAY,
    S_DOSE,
    S_FREQ,
    S_LOCK_UNTIL,
    S_NBAD,
    S_NDELIV,
    S_NEXT,
    S_NPULSE,
    S_NSW,
    S_NTRIG,
    S_NTRIG_BAD,
    S_NUNITS,
    S_P_AMP,
    S_P_START,
    S_PULSES_TODAY,
    S_REMAIN,
    S_SAFE_START,
    S_SESSION,
    S_TGT_AMP,
    S_TON,
    S_TRAIN_READY,
    S_TRAIN_START,
    S_TRIG_TODAY,
    S_UNIT_LEFT,
    S_UNIT_START,
    S_WITHHELD,
)
from closedloop.device.queue import due_slot

__all__ = [
    "PATTERNS",
    "PROTOCOLS",
    "SAFE_TRAIN_S",
    "TMS_COMMANDS",
    "TMSSettings",
    "safe_train_s",
    "tms_fill",
]

#: The TMS command keys: the intensity (% RMT) travels in the amplitude slot
#: as ``intensity_pct_rmt``; ``amplitude_ma`` is refused (a current in mA means
#: nothing to a TMS stimulator).
TMS_COMMANDS = ModalityCommands(
    "tms",
    amplitude_key="intensity_pct_rmt",
    amplitude_meaning="the intensity in percent of resting motor threshold (% RMT)",
)

#: Pulses less than this apart belong to one train, s (a chosen boundary: the
#: safety table starts at 1 Hz).
TRAIN_GAP_S = 1.0

#: ``S_REMAIN`` of a protocol told to stop while a unit is under way: the unit
#: finishes with the protocol's timing, then nothing more starts.
_STOPPING = -1.0

#: Shortest pause between rTMS trains accepted, s: 20 Hz trains of 1.6 s at
#: 110 % MT were safe 5 s apart, and 1 s or less apart unsafe above 100 % MT
#: (Chen et al. 1997, Electroencephalogr Clin Neurophysiol 105:415; abstract
#: checked).
MIN_INTER_TRAIN_S = 5.0

#: Pattern units a command ``pulses: k`` asks for.
PATTERNS = ("single", "paired", "burst")
#: Repetitive protocols ``pulses: inf`` runs.
PROTOCOLS = ("rtms", "itbs", "ctbs")

# The TMS columns of the parameter array.
(
    PT_UNIT_PULSES,  # pulses per pattern unit (triggered units)
    PT_INTRA_S,  # interval between the pulses of a triggered unit, s
    PT_PROTO_UNIT_PULSES,  # pulses per unit of the protocol
    PT_PROTO_INTRA_S,  # interval between the pulses of a protocol unit, s
    PT_PROTO_UNIT_S,  # interval between protocol units, s (0: 1 / frequency)
    PT_TRAIN_S,  # train duration, s
    PT_INTER_TRAIN_S,  # pause between trains, s
    PT_SESSION_PULSES,  # pulses per session
    PT_DAY_PULSES,  # pulses per day
    PT_DRIVE,  # drive at 100 % RMT, model stimulation units
) = range(P_MODE_FIRST, P_MODE_FIRST + 10)
PT_PULSE_S = P_PW_MAX  # the pulse duration, s, in the width-range column TMS does not use

#: Safe single-train durations (s) after Wassermann (1998, Table 4): rows are
#: frequencies (Hz), columns intensities (% MT) 90, 100, ..., 150. Recalled,
#: unchecked here (see the module docstring); "longer than tested" entries
#: are given as the longest tested duration.
SAFE_TRAIN_S: dict[float, tuple[float, ...]] = {
    1.0: (1800.0, 1800.0, 360.0, 50.0, 50.0, 50.0, 50.0),
    5.0: (10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 7.6),
    10.0: (5.0, 5.0, 5.0, 4.2, 2.9, 1.3, 0.8),
    20.0: (2.05, 2.05, 1.6, 1.0, 0.55, 0.35, 0.25),
    25.0: (1.28, 1.28, 0.84, 0.4, 0.24, 0.2, 0.24),
}
#: Highest theta-burst intensity accepted, % RMT: iTBS at 120 % RMT was
#: tolerated in the THREE-D trial (Blumberger et al. 2018, Lancet 391:1683;
#: recalled, unchecked); most TBS studies use 70-100 % RMT.
TBS_MAX_PCT_RMT = 120.0
_TABLE_INTENSITIES = (90.0, 100.0, 110.0, 120.0, 130.0, 140.0, 150.0)


def safe_train_s(frequency_hz: float, intensity_pct_mt: float) -> float:
    """Longest safe rTMS train (s) at a frequency and intensity, after Wassermann (1998).

    Conservative: the table's row at the lowest tabulated frequency at or
    above ``frequency_hz`` and its column at the lowest tabulated intensity at
    or above ``intensity_pct_mt``. Beyond the table (above 25 Hz or 150 %
    MT): 0 (not covered by the guidelines).
    """
    rows = [f for f in SAFE_TRAIN_S if f >= frequency_hz]
    cols = [k for k, v in enumerate(_TABLE_INTENSITIES) if v >= intensity_pct_mt]
    if not rows or not cols:
        return 0.0
    return SAFE_TRAIN_S[min(rows)][cols[0]]


@dataclass(frozen=True)
class TMSSettings:
    """The ``device.tms`` block: a TMS stimulator and its protocol.

    Parameters
    ----------
    pattern : {"single", "paired", "burst"}
        The unit ``pulses: k`` asks for.
    paired_ipi_ms : float
        Inter-pulse interval of a paired pulse, ms (3 ms: short-interval
        intracortical inhibition; 10-15 ms: facilitation).
    burst_pulses : int
        Pulses per burst (3 for theta-burst).
    burst_frequency_hz : float
        Pulse rate within a burst, Hz (50 Hz, Huang et al. 2005).
    protocol : {"rtms", "itbs", "ctbs"}
        What ``pulses: inf`` runs.
    train_duration_s, inter_train_s : float
        rTMS train length and pause between trains, s (4 s on, 26 s off: the
        10 Hz, 120 % MT, 3000-pulse protocol of O'Reardon et al. 2007). Theta-burst sets
        its own (iTBS 2 s / 8 s, cTBS 40 s / none).
    pulses_per_session : float
        Pulses after which a protocol ends (600: a standard TBS session).
    max_pulses_per_day : float
        Pulses per day of the simulated clock (``inf`` for no cap).
    intensity_max_pct_rmt : float
        Intensity cap, % RMT.
    frequency_min_hz, frequency_max_hz : float
        rTMS frequency range, Hz; also the rate of triggered units.
    drive_at_rmt : float
        Drive during a pulse at 100 % RMT, in the model's stimulation units
        (a per-model calibration; 20 is a chosen default).
    pulse_duration_s : float
        How long a pulse's drive lasts, s (1 ms: a modelling choice, longer
        than the ~0.3 ms field so that a 0.1 ms step resolves it).
    """

    pattern: str = "single"
    paired_ipi_ms: float = 3.0
    burst_pulses: int = 3
    burst_frequency_hz: float = 50.0
    protocol: str = "itbs"
    train_duration_s: float = 4.0
    inter_train_s: float = 26.0
    pulses_per_session: float = 600.0
    max_pulses_per_day: float = math.inf
    intensity_max_pct_rmt: float = 120.0
    frequency_min_hz: float = 0.1
    frequency_max_hz: float = 10.0
    drive_at_rmt: float = 20.0
    pulse_duration_s: float = 1e-3

    def __post_init__(self) -> None:
        where = "device.tms"
        if self.pattern not in PATTERNS:
            raise ValueError(f"{where}.pattern must be one of {PATTERNS}, got {self.pattern!r}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"{where}.protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        for name in (
            "paired_ipi_ms",
            "burst_frequency_hz",
            "train_duration_s",
            "pulses_per_session",
            "max_pulses_per_day",
            "intensity_max_pct_rmt",
            "frequency_min_hz",
            "frequency_max_hz",
            "drive_at_rmt",
            "pulse_duration_s",
        ):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{where}.{name} must be positive, got {value!r}")
        if not (self.inter_train_s >= 0 and math.isfinite(self.inter_train_s)):
            raise ValueError(f"{where}.inter_train_s must be >= 0 s, got {self.inter_train_s!r}")
        if not 1 <= self.burst_pulses <= 10:
            raise ValueError(f"{where}.burst_pulses must be 1 to 10, got {self.burst_pulses!r}")
        if self.frequency_min_hz > self.frequency_max_hz:
            raise ValueError(f"{where}.frequency_min_hz exceeds {where}.frequency_max_hz")
        gaps = [self.paired_ipi_ms * 1e-3, 1.0 / self.burst_frequency_hz]
        if self.pulse_duration_s > min(gaps):
            raise ValueError(
                f"{where}.pulse_duration_s ({self.pulse_duration_s} s) must not exceed the "
                f"shortest interval between pulses ({min(gaps)} s)"
            )
        unit = self.burst_pulses / self.burst_frequency_hz
        if unit >= 1.0 / self.frequency_max_hz and self.pattern == "burst":
            raise ValueError(
                f"{where}.burst_pulses at {where}.burst_frequency_hz last {unit} s, longer than "
                f"a unit period at {where}.frequency_max_hz: lower one of them"
            )
        if self.protocol == "rtms" and self.inter_train_s < MIN_INTER_TRAIN_S:
            raise ValueError(
                f"{where}.inter_train_s ({self.inter_train_s} s) is below the "
                f"{MIN_INTER_TRAIN_S} s between rTMS trains found safe (Chen et al. 1997)"
            )
        if self.protocol == "rtms":
            safe = safe_train_s(self.frequency_max_hz, self.intensity_max_pct_rmt)
            if self.train_duration_s > safe:
                raise ValueError(
                    f"{where}.train_duration_s ({self.train_duration_s} s) exceeds the safe train "
                    f"duration at {where}.frequency_max_hz = {self.frequency_max_hz} Hz and "
                    f"{where}.intensity_max_pct_rmt = {self.intensity_max_pct_rmt} % "
                    f"({safe} s; Wassermann 1998 via Rossi et al. 2021)"
                )
        elif self.intensity_max_pct_rmt > TBS_MAX_PCT_RMT:
            raise ValueError(
                f"{where}.intensity_max_pct_rmt ({self.intensity_max_pct_rmt}) is above "
                f"{TBS_MAX_PCT_RMT} % RMT, beyond the theta-burst intensities of the studies "
                "Rossi et al. (2021) review"
            )

    def protocol_timing(self) -> tuple[int, float, float, float, float]:
        """The protocol's unit: pulses, pulse interval (s), unit interval (s; 0: 1 / frequency),
        train duration (s) and pause between trains (s)."""
        if self.protocol == "rtms":
            return 1, 0.0, 0.0, self.train_duration_s, self.inter_train_s
        intra = 1.0 / self.burst_frequency_hz
        if self.protocol == "itbs":
            return self.burst_pulses, intra, 0.2, 2.0, 8.0
        return self.burst_pulses, intra, 0.2, 40.0, 0.0  # ctbs

    def to_dict(self) -> dict:
        """The block as a plain dict."""
        return asdict(self)

    def fill_params(self, row: np.ndarray) -> None:
        """Write the TMS columns (and the shared limits it sets) into a parameter row."""
        unit_pulses = {"single": 1, "paired": 2, "burst": self.burst_pulses}[self.pattern]
        intra = (
            self.paired_ipi_ms * 1e-3 if self.pattern == "paired" else 1.0 / self.burst_frequency_hz
        )
        pulses, p_intra, unit_s, train_s, pause_s = self.protocol_timing()
        row[P_AMP_MAX] = self.intensity_max_pct_rmt
        row[P_F_MIN] = self.frequency_min_hz
        row[P_F_MAX] = self.frequency_max_hz
        row[PT_UNIT_PULSES] = unit_pulses
        row[PT_INTRA_S] = intra
        row[PT_PROTO_UNIT_PULSES] = pulses
        row[PT_PROTO_INTRA_S] = p_intra
        row[PT_PROTO_UNIT_S] = unit_s
        row[PT_TRAIN_S] = train_s
        row[PT_INTER_TRAIN_S] = pause_s
        row[PT_SESSION_PULSES] = self.pulses_per_session
        row[PT_DAY_PULSES] = self.max_pulses_per_day
        row[PT_DRIVE] = self.drive_at_rmt
        row[PT_PULSE_S] = self.pulse_duration_s


@njit(cache=True)
def tms_command(ds, dp, i, intensity, frequency_hz, pulses, t_s):
    """Apply one command to instance ``i``'s TMS state at time ``t_s`` (s)."""
    if math.isfinite(intensity):
        ds[i, S_TGT_AMP] = min(max(intensity, 0.0), dp[i, P_AMP_MAX])
    else:
        ds[i, S_NBAD] += 1.0
    if math.isfinite(frequency_hz):
        ds[i, S_FREQ] = min(max(frequency_hz, dp[i, P_F_MIN]), dp[i, P_F_MAX])
    else:
        ds[i, S_NBAD] += 1.0
    busy = ds[i, S_REMAIN] > 0.0 or ds[i, S_UNIT_LEFT] > 0.0
    if pulses == 0.0:  # stop after the unit under way (S_UNIT_LEFT is left to run)
        if ds[i, S_REMAIN] == math.inf:  # a protocol stops: the next waits for the pause
            ds[i, S_TRAIN_READY] = t_s + dp[i, PT_INTER_TRAIN_S]
            ds[i, S_REMAIN] = _STOPPING if ds[i, S_UNIT_LEFT] > 0.0 else 0.0
        elif ds[i, S_REMAIN] > 0.0:
            ds[i, S_REMAIN] = 0.0
    elif pulses == math.inf:
        if ds[i, S_REMAIN] != math.inf:  # asking again while it runs changes nothing
            start = max(t_s, ds[i, S_TRAIN_READY], ds[i, S_NEXT] if busy else t_s)
            ds[i, S_REMAIN] = math.inf
            ds[i, S_UNIT_LEFT] = 0.0
            ds[i, S_NEXT] = start
            ds[i, S_TRAIN_START] = start
            ds[i, S_SESSION] = 0.0
    elif pulses > 0.0:  # finite: a trigger of k units
        refused = (
            busy
            or t_s < ds[i, S_LOCK_UNTIL]
            or ds[i, S_CAPPED] != 0.0
            or ds[i, S_TRIG_TODAY] >= dp[i, P_MAX_TRIG]
            or t_s < ds[i, S_TRAIN_READY]
        )
        if refused:
            ds[i, S_NTRIG_BAD] += 1.0
        else:
            k = np.floor(pulses)
            ds[i, S_REMAIN] = k
            ds[i, S_NEXT] = t_s
            ds[i, S_NTRIG] += 1.0
            ds[i, S_TRIG_TODAY] += 1.0
            ds[i, S_NDELIV] += 1.0
            ds[i, S_LOCK_UNTIL] = t_s + k / ds[i, S_FREQ] + dp[i, P_LOCKOUT]
    elif pulses < 0.0:
        ds[i, S_NBAD] += 1.0


@njit(cache=True)
def tms_fill(i, n_steps, step0, dt, device, drive, net):
    """Advance instance ``i``'s TMS stimulator by ``n_steps`` steps of ``dt`` s.

    Same arguments as :func:`closedloop.device.kernels.device_fill`; writes
    each step's mean drive (model units) to ``drive`` and ``net``.
    """
    ds = device.state
    dp = device.params
    q_cmd = device.queue_command
    head = device.queue_head[i]
    pulse_s = dp[i, PT_PULSE_S]
    gain = dp[i, PT_DRIVE] / 100.0
    day_s = dp[i, P_DAY_S]
    delivered = 0.0  # highest intensity of the pulses of this call (one control period)
    for j in range(n_steps):
        step = step0 + j
        t0 = step * dt
        t1 = t0 + dt
        if t0 >= (ds[i, S_DAY] + 1.0) * day_s:  # a new day of the simulated clock
            ds[i, S_DAY] = math.floor(t0 / day_s)
            ds[i, S_TRIG_TODAY] = 0.0
            ds[i, S_PULSES_TODAY] = 0.0
            ds[i, S_CAPPED] = 0.0
        slot = due_slot(device, i, head, step)
        while slot >= 0:
            tms_command(
                ds,
                dp,
                i,
                q_cmd[i, slot, CMD_AMP],
                q_cmd[i, slot, CMD_FREQ],
                q_cmd[i, slot, CMD_PULSES],
                t0,
            )
            head += 1
            slot = due_slot(device, i, head, step)
        level = 0.0  # intensity x time over the step
        # The pulse under way, then any pulse starting in this step.
        p_start = ds[i, S_P_START]
        if ds[i, S_P_AMP] > 0.0 and p_start + pulse_s > t0:
            level += ds[i, S_P_AMP] * max(0.0, min(p_start + pulse_s, t1) - max(p_start, t0))
        protocol = ds[i, S_REMAIN] == math.inf or ds[i, S_REMAIN] == _STOPPING
        while ds[i, S_NEXT] < t1 and (ds[i, S_UNIT_LEFT] > 0.0 or ds[i, S_REMAIN] > 0.0):
            t_p = ds[i, S_NEXT]
            if protocol:
                n_unit = dp[i, PT_PROTO_UNIT_PULSES]
                intra = dp[i, PT_PROTO_INTRA_S]
                unit_s = dp[i, PT_PROTO_UNIT_S]
            else:
                n_unit = dp[i, PT_UNIT_PULSES]
                intra = dp[i, PT_INTRA_S]
                unit_s = 0.0
            if unit_s == 0.0:
                unit_s = 1.0 / ds[i, S_FREQ]
            if ds[i, S_UNIT_LEFT] == 0.0:  # a new unit starts at t_p
                if protocol:
                    if ds[i, S_SESSION] + n_unit > dp[i, PT_SESSION_PULSES] + 1e-9:
                        ds[i, S_REMAIN] = 0.0  # the session is complete
                        ds[i, S_TRAIN_READY] = t_p + dp[i, PT_INTER_TRAIN_S]
                        break
                    if t_p >= ds[i, S_TRAIN_START] + dp[i, PT_TRAIN_S] - 1e-9:
                        # The train is over: the next starts after the pause.
                        nxt = ds[i, S_TRAIN_START] + dp[i, PT_TRAIN_S] + dp[i, PT_INTER_TRAIN_S]
                        ds[i, S_TRAIN_START] = nxt
                        ds[i, S_NEXT] = nxt
                        continue
                # Whatever the pattern: pulses less than TRAIN_GAP_S apart form a
                # train no longer than train_duration_s; one that would grow
                # longer ends, and the next waits the inter-train interval.
                if t_p - ds[i, S_P_START] >= TRAIN_GAP_S:
                    ds[i, S_SAFE_START] = t_p
                too_long = (
                    t_p + (n_unit - 1.0) * intra - ds[i, S_SAFE_START] > dp[i, PT_TRAIN_S] + 1e-9
                )
                if too_long:
                    pause = max(dp[i, PT_INTER_TRAIN_S], TRAIN_GAP_S)
                    ds[i, S_TRAIN_READY] = ds[i, S_P_START] + pause
                if too_long or t_p < ds[i, S_TRAIN_READY] - 1e-9:
                    if protocol:  # the protocol waits
                        ds[i, S_NEXT] = ds[i, S_TRAIN_READY]
                        ds[i, S_TRAIN_START] = ds[i, S_TRAIN_READY]
                        continue
                    ds[i, S_WITHHELD] += n_unit  # a triggered unit is dropped
                    ds[i, S_REMAIN] = 0.0
                    break
                if ds[i, S_PULSES_TODAY] + n_unit > dp[i, PT_DAY_PULSES] + 1e-9:
                    ds[i, S_WITHHELD] += n_unit
                    ds[i, S_CAPPED] = 1.0
                    ds[i, S_REMAIN] = 0.0
                    break
                ds[i, S_UNIT_LEFT] = n_unit
                ds[i, S_UNIT_START] = t_p
                ds[i, S_NUNITS] += 1.0
                ds[i, S_REMAIN] -= 1.0  # inf stays inf
            amp = ds[i, S_TGT_AMP]
            ds[i, S_P_START] = t_p
            ds[i, S_P_AMP] = amp
            level += amp * max(0.0, min(t_p + pulse_s, t1) - t_p)
            ds[i, S_UNIT_LEFT] -= 1.0
            delivered = max(delivered, amp)
            if amp > 0.0:
                ds[i, S_NPULSE] += 1.0
                ds[i, S_SESSION] += 1.0
                ds[i, S_PULSES_TODAY] += 1.0
                ds[i, S_DOSE] += amp
            if ds[i, S_UNIT_LEFT] > 0.0:
                ds[i, S_NEXT] = t_p + intra
            else:
                ds[i, S_NEXT] = ds[i, S_UNIT_START] + unit_s
        value = level * gain / dt
        drive[i, j] = value
        net[i, j] = value
        on = ds[i, S_REMAIN] > 0.0 or ds[i, S_UNIT_LEFT] > 0.0
        if on:
            ds[i, S_TON] += dt
        if on != (ds[i, S_NSW] % 2.0 == 1.0):
            ds[i, S_NSW] += 1.0
    ds[i, S_AMP] = delivered
    device.queue_head[i] = head
