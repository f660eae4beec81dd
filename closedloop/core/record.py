"""Rows of the per-period record: what a loop keeps of every control period.

The record of a chunk has shape ``(n, rows, periods)``: the biomarker, then
what the device delivered (amplitude, frequency, pulse width, pulse count),
then one row per extra sensing feature, in the order of
``SensingChain.features``. Every writer and reader takes the rows from here.
The njit kernels read these as compile-time constants, which is why this
file counts among the kernel sources that key the kernel cache.
"""

from __future__ import annotations

__all__ = [
    "AMPLITUDE_ROW",
    "BIOMARKER_ROW",
    "FIRST_FEATURE_ROW",
    "FREQUENCY_ROW",
    "PER_PERIOD_SERIES",
    "PULSE_COUNT_ROW",
    "PULSE_WIDTH_ROW",
]

#: Rows of the per-period record before the sensing features, in order: the
#: biomarker (signal units), the delivered amplitude (mA), frequency (Hz),
#: pulse width of the last pulse (us) and pulses delivered so far.
PER_PERIOD_SERIES: tuple[str, ...] = (
    "biomarker",
    "amplitude",
    "frequency",
    "pulse_width",
    "pulse_count",
)
BIOMARKER_ROW = PER_PERIOD_SERIES.index("biomarker")
AMPLITUDE_ROW = PER_PERIOD_SERIES.index("amplitude")
FREQUENCY_ROW = PER_PERIOD_SERIES.index("frequency")
PULSE_WIDTH_ROW = PER_PERIOD_SERIES.index("pulse_width")
PULSE_COUNT_ROW = PER_PERIOD_SERIES.index("pulse_count")
#: Row of the first sensing feature; feature ``f`` is row ``FIRST_FEATURE_ROW + f``.
FIRST_FEATURE_ROW = len(PER_PERIOD_SERIES)
