"""The series of a run file, defined once: names, units, sampling clocks, descriptions.

A run file (any format) holds the time series listed by :func:`run_series`
(signal, sensed signal, baseline, biomarker, delivered stimulation, sensing
features), by :func:`state_series` (slow model state, sampled once per
recorded chunk) and the spike events of :func:`spike_events`. Writers create
them with :func:`create_series`; readers and figures find them by these names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "BASELINE_SUFFIX",
    "CONTROL_CLOCK",
    "SENSING_CLOCK",
    "STATE_CLOCK",
    "FEATURE_PREFIX",
    "SPIKE_FIELDS",
    "STATE_PREFIX",
    "STIMULATION_SERIES",
    "SeriesSpec",
    "create_series",
    "run_series",
    "spike_events",
    "state_series",
]

#: Prefix of the series of sensing feature ``<name>``.
FEATURE_PREFIX = "feature_"
#: Prefix of the series of model state variable ``<name>``.
STATE_PREFIX = "state_"
#: Suffix of a series simulated without stimulation (same seed).
BASELINE_SUFFIX = "_baseline"
#: Time dimension of the series sampled once per sensing sample.
SENSING_CLOCK = "time_sensing"
#: Time dimension of the series sampled at the end of each control period.
CONTROL_CLOCK = "time_control"
#: Time dimension of slow model state, sampled at the end of each recorded chunk.
STATE_CLOCK = "time_state"
#: Delivered stimulation, one sample per control period: name to (units, what).
STIMULATION_SERIES: dict[str, tuple[str, str]] = {
    "amplitude": ("mA", "delivered amplitude"),
    "frequency": ("Hz", "delivered pulse frequency"),
    "pulse_width": ("us", "delivered pulse width per phase"),
    "pulse_count": ("1", "pulses delivered since the start"),
}
#: Columns of a spike event table: name to (dtype, units).
SPIKE_FIELDS: dict[str, tuple[str, str]] = {
    "time_s": ("f8", "s"),
    "instance": ("i4", "1"),
    "neuron": ("i4", "1"),
}


@dataclass(frozen=True)
class SeriesSpec:
    """One time series of a run file.

    Attributes
    ----------
    name : str
        Name in the file, e.g. ``"lfp"``.
    units : str
        Physical units of the values (``"1"`` if dimensionless).
    rate_hz : float
        Samples per second, Hz.
    description : str
        One sentence on what the series is.
    start_time_s : float
        Time of the first sample, s.
    clock : str or None
        Name of its time dimension in the file (:data:`SENSING_CLOCK`,
        :data:`CONTROL_CLOCK`, :data:`STATE_CLOCK`); None lets the writer
        choose by rate.
    """

    name: str
    units: str
    rate_hz: float
    description: str
    start_time_s: float = 0.0
    clock: str | None = None


class _SeriesWriter(Protocol):
    def create_timeseries(
        self,
        name: str,
        *,
        units: str,
        sampling_rate_hz: float,
        description: str = "",
        start_time_s: float = 0.0,
        clock: str | None = None,
    ) -> Any: ...


def run_series(
    *,
    signal_units: str,
    signal_description: str,
    sensing_rate_hz: float,
    control_rate_hz: float,
    envelope: str,
    band_hz: Sequence[float],
    features: Mapping[str, str],
    baseline: bool,
    stimulation: Mapping[str, tuple[str, str]] | None = None,
) -> list[SeriesSpec]:
    """The time series every closed-loop run records, in the order they are created.

    Parameters
    ----------
    signal_units : str
        Units of the model's signal, e.g. ``"mV"``.
    signal_description : str
        What the model's signal is.
    sensing_rate_hz, control_rate_hz : float
        Sensing rate and control rate (one over the control period), Hz.
    envelope : str
        The sensing chain's envelope method.
    band_hz : sequence of float
        The sensing chain's band, Hz.
    features : mapping of str to str
        Sensing feature name to its units, where ``"signal"`` stands for the
        signal's units (as in :data:`closedloop.sensing.chain.FEATURES`).
    baseline : bool
        Whether the run records its signal without stimulation too.
    stimulation : mapping, optional
        Units and descriptions replacing those of :data:`STIMULATION_SERIES`
        for a device modality that gives them another meaning
        (:func:`closedloop.device.dose.stimulation_series`).

    Returns
    -------
    list of SeriesSpec
    """
    sensing = float(sensing_rate_hz)
    control = float(control_rate_hz)
    sensed = [
        ("lfp", f"{signal_description}, mean over each sensing interval"),
        ("lfp_sensed", "LFP proxy with sensor noise and artefact"),
    ]
    if baseline:
        sensed.append((f"lfp{BASELINE_SUFFIX}", "LFP proxy without stimulation, same seed"))
    controlled = [
        (
            "biomarker",
            signal_units,
            f"{envelope} envelope of the {list(band_hz)} Hz band, end of each period",
        )
    ]
    controlled += [
        (name, units, f"{what}, end of each control period")
        for name, (units, what) in {**STIMULATION_SERIES, **(stimulation or {})}.items()
    ]
    controlled += [
        (
            f"{FEATURE_PREFIX}{name}",
            units.replace("signal", signal_units),
            f"sensing feature {name!r}, end of each control period",
        )
        for name, units in features.items()
    ]
    specs = [
        SeriesSpec(name, signal_units, sensing, what, clock=SENSING_CLOCK) for name, what in sensed
    ]
    specs += [
        SeriesSpec(name, units, control, what, clock=CONTROL_CLOCK)
        for name, units, what in controlled
    ]
    return specs


def state_series(name: str, units: str, chunk_s: float, *, baseline: bool) -> list[SeriesSpec]:
    """Series of a slow model state variable, sampled at the end of every chunk.

    Parameters
    ----------
    name : str
        State variable, e.g. ``"z"``.
    units : str
        Its units.
    chunk_s : float
        Simulated time per recorded chunk, s: the sampling interval.
    baseline : bool
        Also the state of the unstimulated copy.

    Returns
    -------
    list of SeriesSpec
    """
    kinds = [("", "")]
    if baseline:
        kinds.append((BASELINE_SUFFIX, " without stimulation, same seed"))
    return [
        SeriesSpec(
            f"{STATE_PREFIX}{name}{suffix}",
            units,
            1.0 / chunk_s,
            f"model state {name!r}{what}, end of each {chunk_s:g} s chunk",
            start_time_s=chunk_s,
            clock=STATE_CLOCK,
        )
        for suffix, what in kinds
    ]


def spike_events(population: str) -> tuple[str, dict[str, tuple[str, str]], str]:
    """Name, fields (name to dtype and units) and description of a population's spikes."""
    return (
        f"spikes_{population}",
        dict(SPIKE_FIELDS),
        f"spikes of population {population!r}; neuron index within its instance",
    )


def create_series(recorder: _SeriesWriter, specs: Iterable[SeriesSpec]) -> None:
    """Create empty time series in a recorder, one per spec, in order."""
    for spec in specs:
        recorder.create_timeseries(
            spec.name,
            units=spec.units,
            sampling_rate_hz=spec.rate_hz,
            description=spec.description,
            start_time_s=spec.start_time_s,
            clock=spec.clock,
        )
