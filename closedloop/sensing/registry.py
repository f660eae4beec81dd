"""The features the sensing chain can deliver besides ``biomarker``: one table, one dispatch.

Each feature is computed at every sensing sample by a kernel of its family's
module (:mod:`~closedloop.sensing.windowed`,
:mod:`~closedloop.sensing.instantaneous`, :mod:`~closedloop.sensing.phase`,
:mod:`~closedloop.sensing.aperiodic`, :mod:`~closedloop.sensing.phase_ar`,
:mod:`~closedloop.sensing.phase_etp`);
the controller sees its value at the last sample of each period.

Numba cannot take compiled functions as arguments of a cached kernel, so the
sample kernel picks each feature's function by an integer code:
:func:`feature_value` is that dispatch, the one place besides :data:`REGISTRY`
that names every feature. Adding a feature:

- to an existing family: its kernel in the family's module, a line in
  :data:`REGISTRY`, a branch in :func:`feature_value`;
- in a new family: a new module with its kernel and a constructor of its
  state fields, then here a line in :data:`REGISTRY`, a line in
  :func:`new_feature_fields` and a branch in :func:`feature_value`, and its
  fields in :class:`closedloop.sensing.kernels.SensingState`.

The state is one flat NamedTuple: Numba's parallel loops (``prange``) unpack
a tuple argument one level deep only, so the families' fields sit side by
side in it, each family's under its own prefix.

``tests/test_sensing.py`` checks every registered feature against a NumPy
reference, so a feature registered without its branch fails there.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from closedloop.core import kernel_cache  # noqa: F401  (sets the kernel cache directory first)
from closedloop.core.jit import njit
from closedloop.sensing import instantaneous, windowed
from closedloop.sensing.aperiodic import aperiodic_exponent, new_aperiodic_fields
from closedloop.sensing.phase import new_phase_fields, phase_sample
from closedloop.sensing.phase_ar import new_ar_fields, phase_ar_sample
from closedloop.sensing.phase_etp import new_etp_fields, phase_etp_sample
from closedloop.sensing.windowed import new_windowed_fields

__all__ = [
    "APERIODIC_EXPONENT",
    "AREA",
    "CODES",
    "FEATURES",
    "FILTERED",
    "LINE_LENGTH",
    "PHASE",
    "PHASE_AR",
    "PHASE_ETP",
    "REGISTRY",
    "SIGNAL",
    "Feature",
    "feature_value",
    "new_feature_fields",
]


class Feature(NamedTuple):
    """A feature the chain can deliver."""

    name: str  #: key in ``SensingChain.features`` and ``feature_<name>`` in the results
    units: str  #: "signal" stands for the model signal's units
    family: str  #: the module under closedloop.sensing that computes it
    description: str


#: Every feature, in code order (a feature's code is its index here).
REGISTRY: tuple[Feature, ...] = (
    Feature("line_length", "signal", "windowed", "sum of |x_k - x_{k-1}| over the window"),
    Feature("area", "signal*s", "windowed", "sum of |x_k| / rate over the window"),
    Feature("signal", "signal", "instantaneous", "the last sensed sample"),
    Feature("filtered", "signal", "instantaneous", "the last band-passed sample"),
    Feature("phase", "rad", "phase", "phase of the band-passed signal by the ecHT"),
    Feature(
        "aperiodic_exponent",
        "1",
        "aperiodic",
        "exponent chi of the 1/f**chi power spectrum, by a causal constant-Q filter bank",
    ),
    Feature(
        "phase_ar",
        "rad",
        "phase_ar",
        "phase forecast phase_ar_lead_s ahead by autoregressive forward prediction",
    ),
    Feature(
        "phase_etp",
        "rad",
        "phase_etp",
        "phase phase_etp_lead_s ahead by educated temporal prediction from the last peak",
    ),
)
#: Units of each feature, by name.
FEATURES: dict[str, str] = {f.name: f.units for f in REGISTRY}
#: Code of each feature, by name.
CODES: dict[str, int] = {f.name: code for code, f in enumerate(REGISTRY)}
LINE_LENGTH = CODES["line_length"]
AREA = CODES["area"]
SIGNAL = CODES["signal"]
FILTERED = CODES["filtered"]
PHASE = CODES["phase"]
APERIODIC_EXPONENT = CODES["aperiodic_exponent"]
PHASE_AR = CODES["phase_ar"]
PHASE_ETP = CODES["phase_etp"]


def new_feature_fields(
    names: tuple[str, ...],
    n: int,
    rate_hz: float,
    band_hz: tuple[float, float],
    sos: np.ndarray,
    window_samples: int,
    phase_window_samples: int,
    aperiodic: tuple[tuple[float, float], int, int, int] = ((1.0, 2.0), 2, 1, 1),
    ar: tuple[float, float, int, float, float, str] = (0.5, 0.064, 30, 0.0, 0.005, "burg"),
    etp_lead_s: float = 0.0,
) -> dict[str, Any]:
    """Initial feature fields of the sensing state for features ``names``, ``n`` instances.

    ``feature_codes`` (F,) int64, the code of each requested feature (slot
    ``f``); ``feature_values`` (n, F), each at the last sample; then each
    family's fields. ``window_samples`` is the window of the windowed
    features and ``phase_window_samples`` that of the phase estimator, in
    sensing samples. ``aperiodic`` is the aperiodic exponent's range (Hz),
    bands, filter order and window (sensing samples); ``ar`` the settings of
    feature ``"phase_ar"`` (:func:`~closedloop.sensing.phase_ar.new_ar_fields`)
    and ``etp_lead_s`` the lead of ``"phase_etp"``, s.
    """
    f = len(names)
    return {
        "feature_codes": np.array([CODES[name] for name in names], dtype=np.int64),
        "feature_values": np.zeros((n, f)),
        **new_windowed_fields(n, f, window_samples),
        **new_phase_fields(n, rate_hz, band_hz, sos, phase_window_samples, "phase" in names),
        **new_aperiodic_fields(n, rate_hz, *aperiodic, "aperiodic_exponent" in names),
        **new_ar_fields(n, rate_hz, band_hz, ar, "phase_ar" in names),
        **new_etp_fields(n, rate_hz, band_hz, sos, lead_s=etp_lead_s, enabled="phase_etp" in names),
    }


@njit(cache=True, inline="always")
def feature_value(code, i, f, v, y, inv_rate, s):
    """Feature ``code`` in slot ``f`` of instance ``i`` after one sample.

    ``v`` is the sensed sample, ``y`` the band-passed one, ``inv_rate`` the
    sampling interval (s) and ``s`` the
    :class:`~closedloop.sensing.kernels.SensingState`. An unregistered code
    gives NaN.
    """
    if code == LINE_LENGTH:
        return windowed.line_length(s, i, f, v)
    elif code == AREA:
        return windowed.area(s, i, f, v, inv_rate)
    elif code == SIGNAL:
        return instantaneous.signal(v, y)
    elif code == PHASE:
        return phase_sample(i, y, s, 1.0 / inv_rate)
    elif code == FILTERED:
        return instantaneous.filtered(v, y)
    elif code == APERIODIC_EXPONENT:
        return aperiodic_exponent(s, i, v)
    elif code == PHASE_AR:
        return phase_ar_sample(i, v, s)
    elif code == PHASE_ETP:
        return phase_etp_sample(i, y, s, 1.0 / inv_rate)
    return np.nan
