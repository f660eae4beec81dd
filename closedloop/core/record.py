"""Rows of the per-period record: what a loop keeps of every control period.

The record of a chunk has shape ``(n, rows, periods)``: the biomarker, then
what the device delivered (amplitude, frequency, pulse width, pulse count),
then the triggers (the biomarker at which the controller asked for a burst
this period, NaN if it did not; the device's triggers delivered and refused
so far), then one row per extra sensing feature, in the order of
``SensingChain.features``. Every writer and reader takes the rows from here.
The njit kernels read these as compile-time constants, which is why this
file counts among the kernel sources that key the kernel cache.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "AMPLITUDE_ROW",
    "BIOMARKER_ROW",
    "FIRST_FEATURE_ROW",
    "FREQUENCY_ROW",
    "PER_PERIOD_SERIES",
    "PULSE_COUNT_ROW",
    "PULSE_WIDTH_ROW",
    "TRIGGER_BIOMARKER_ROW",
    "TRIGGER_SERIES",
    "TRIGGERS_DELIVERED_ROW",
    "TRIGGERS_REJECTED_ROW",
    "mark_triggers",
    "trigger_source",
]

#: Rows of the per-period record before the sensing features, in order: the
#: biomarker (signal units), the delivered amplitude (mA), frequency (Hz),
#: pulse width of the last pulse (us) and pulses delivered so far; then the
#: rows of :data:`TRIGGER_SERIES`.
PER_PERIOD_SERIES: tuple[str, ...] = (
    "biomarker",
    "amplitude",
    "frequency",
    "pulse_width",
    "pulse_count",
    "trigger_biomarker",
    "triggers_delivered",
    "triggers_rejected",
)
#: The trigger rows: the biomarker (signal units) at the end of a period after
#: which the controller asked for a burst (NaN otherwise), and the bursts the
#: device has accepted and refused so far (:mod:`closedloop.device`). Runners
#: turn them into the ``events/triggers`` table rather than time series.
TRIGGER_SERIES: tuple[str, ...] = PER_PERIOD_SERIES[5:8]
BIOMARKER_ROW = PER_PERIOD_SERIES.index("biomarker")
AMPLITUDE_ROW = PER_PERIOD_SERIES.index("amplitude")
FREQUENCY_ROW = PER_PERIOD_SERIES.index("frequency")
PULSE_WIDTH_ROW = PER_PERIOD_SERIES.index("pulse_width")
PULSE_COUNT_ROW = PER_PERIOD_SERIES.index("pulse_count")
TRIGGER_BIOMARKER_ROW = PER_PERIOD_SERIES.index("trigger_biomarker")
TRIGGERS_DELIVERED_ROW = PER_PERIOD_SERIES.index("triggers_delivered")
TRIGGERS_REJECTED_ROW = PER_PERIOD_SERIES.index("triggers_rejected")
#: Row of the first sensing feature; feature ``f`` is row ``FIRST_FEATURE_ROW + f``.
FIRST_FEATURE_ROW = len(PER_PERIOD_SERIES)


def trigger_source(controller: Any, features: tuple[str, ...]) -> tuple[str, int]:
    """The feature whose value is logged with each trigger, and its record row.

    The first of the controller's ``required_features`` when it is recorded
    (``biomarker`` or one of the sensing chain's ``features``), else
    ``biomarker``.
    """
    name = next(iter(getattr(controller, "required_features", ())), "biomarker")
    if name in features:
        return name, FIRST_FEATURE_ROW + features.index(name)
    return "biomarker", BIOMARKER_ROW


def mark_triggers(per_period: np.ndarray, k: int, pulses: np.ndarray, source_row: int) -> None:
    """Record the detector's feature of period ``k`` where a Python controller asked for a burst.

    ``per_period`` is a chunk's record (:mod:`closedloop.core.record`),
    ``pulses`` the ``pulses`` command (a finite count above 0 is a trigger)
    and ``source_row`` the row of the feature (:func:`trigger_source`).
    """
    fired = (pulses > 0.0) & np.isfinite(pulses)
    if fired.any():
        rows = per_period[fired, :, k]
        rows[:, TRIGGER_BIOMARKER_ROW] = rows[:, source_row]
        per_period[fired, :, k] = rows
