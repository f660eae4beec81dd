"""NWB export of run files (Neurodata Without Borders, through pynwb).

The mapping, one NWB file per run (instances are columns):

- ``acquisition``: the model signal (``lfp``, in the model's signal units)
  and what the sensing chain saw (``lfp_sensed``) as ``TimeSeries`` of shape
  ``(time, instance)`` at the sensing rate; the no-stimulation baseline
  (``lfp_baseline``) likewise when recorded.
- ``stimulus``: the delivered stimulation (``stimulation_amplitude``, mA;
  ``stimulation_frequency``, Hz; ``stimulation_pulse_width``, us) at the
  control rate: what the device delivered, not what was asked.
- ``intervals/stimulation_on``: one row per stretch of non-zero delivered
  amplitude, with the instances it holds for (ragged ``instances`` column).
- processing module ``closedloop``: every other series (the biomarker, each
  sensing feature, slow states such as drug concentrations or symptom
  scores, the model's recorded state) as ``TimeSeries``; every event table of
  the run (detector triggers, doses, self-reports, CS responses) as a
  ``DynamicTable`` named ``events_<name>``; the metrics as a ``DynamicTable``
  ``metrics`` (one row per instance, units in each column's description);
  spectra as ``spectra_psd_stim`` / ``spectra_psd_baseline`` tables.
- ``units``: spikes of Brian2 runs, one unit per (population, instance,
  neuron) with spikes, up to :data:`MAX_UNITS` (beyond that they stay in the
  HDF5 run file only, and the file's ``notes`` say so).
- metadata: the resolved experiment config (JSON) in ``notes``, the
  provenance (software, machine) in ``source_script``, the run's
  description in ``session_description`` and ``experiment_description``.

:func:`export_nwb` converts a finished run file (``closedloop export RUN.h5
--to nwb``); :class:`NWBRunRecorder` (``output.format: nwb``) writes the HDF5
run file as usual and, when the run completes, the NWB file beside it. Both
write to a temporary name and rename, so an NWB file at its final path is
always complete.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from closedloop.io.hdf5 import RunRecorder
from closedloop.io.reader import load_run

__all__ = ["MAX_UNITS", "NWBRunRecorder", "export_nwb"]

#: Most spiking units written to the ``units`` table.
MAX_UNITS = 5000

_ACQUISITION = ("lfp", "lfp_sensed", "lfp_baseline")
_STIMULUS = {
    "amplitude": "stimulation_amplitude",
    "frequency": "stimulation_frequency",
    "pulse_width": "stimulation_pulse_width",
}


def _time_series(name: str, data: np.ndarray, attrs: dict[str, Any]) -> Any:
    from pynwb import TimeSeries

    rate = float(attrs.get("sampling_rate_hz", 1.0))
    return TimeSeries(
        name=name,
        data=np.ascontiguousarray(np.asarray(data, dtype=float).T),  # (time, instance)
        unit=str(attrs.get("units", "n.a.")) or "n.a.",
        rate=rate,
        starting_time=float(attrs.get("start_time_s", 0.0)),
        description=str(attrs.get("description", name)) or name,
        comments="columns are the run's instances (batch index)",
    )


def _on_intervals(amplitude: np.ndarray, rate_hz: float) -> list[tuple[float, float, int]]:
    """Stretches of non-zero delivered amplitude: (start s, stop s, instance)."""
    out = []
    for i, row in enumerate(np.asarray(amplitude)):
        on = np.concatenate([[False], row > 0, [False]])
        edges = np.flatnonzero(np.diff(on.astype(np.int8)))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            out.append((a / rate_hz, b / rate_hz, i))
    out.sort()
    return out


def _table(name: str, description: str, columns: dict[str, tuple[np.ndarray, str]]) -> Any:
    from hdmf.common import DynamicTable, VectorData

    return DynamicTable(
        name=name,
        description=description,
        columns=[
            VectorData(name=col, description=what, data=np.asarray(values))
            for col, (values, what) in columns.items()
        ],
    )


def export_nwb(
    run_path: str | os.PathLike[str], nwb_path: str | os.PathLike[str] | None = None
) -> Path:
    """Write a run file's contents as an NWB file (see the module docstring).

    Parameters
    ----------
    run_path : path-like
        A complete HDF5 run file.
    nwb_path : path-like, optional
        Output path (default: the run file with suffix ``.nwb``).

    Returns
    -------
    pathlib.Path
        The NWB file.

    Raises
    ------
    ValueError
        When the run file is not a complete run.
    """
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.file import Subject

    run = load_run(run_path)
    if run.status != "complete":
        raise ValueError(f"{run_path}: the run is {run.status!r}, not complete: nothing to export")
    out = Path(nwb_path) if nwb_path is not None else Path(run_path).with_suffix(".nwb")
    config = run.config
    created = run.attrs.get("created")
    try:
        start = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    except ValueError:
        start = datetime.now(UTC)
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    description = str(config.get("description") or config.get("name", "closedloop run"))
    notes = ["resolved experiment config (JSON): " + json.dumps(config, default=str)]
    nwb = NWBFile(
        session_description=description,
        identifier=str(run.attrs.get("run_id") or uuid.uuid4()),
        session_start_time=start,
        experiment_description=(
            f"closedloop simulation {config.get('name', '')}: model "
            f"{config.get('model', {}).get('name', '?')}, controller "
            f"{config.get('controller', {}).get('name', '?')}, seed {config.get('seed', '?')}"
        ),
        source_script=json.dumps(
            {
                "closedloop_version": str(run.attrs.get("closedloop_version", "")),
                **dict(run.attrs.get("provenance", {}) or {}),
            },
            default=str,
        ),
        source_script_file_name="closedloop",
        keywords=["closed-loop neuromodulation", "simulation", "closedloop"],
        subject=Subject(
            subject_id=str(config.get("name", "virtual")),
            description="in-silico virtual patient(s): a closedloop simulation, one per "
            "instance (no human or animal data)",
            species="Homo sapiens",
            sex="U",
            age="P0D/",
        ),
    )
    module = nwb.create_processing_module("closedloop", "closedloop's recorded series and tables")
    for name, data in run.timeseries.items():
        attrs = run.timeseries_attrs.get(name, {})
        if name in _ACQUISITION:
            nwb.add_acquisition(_time_series(name, data, attrs))
        elif name in _STIMULUS:
            nwb.add_stimulus(_time_series(_STIMULUS[name], data, attrs))
        else:
            module.add(_time_series(name, data, attrs))
    if "amplitude" in run.timeseries:
        rate = float(run.timeseries_attrs["amplitude"].get("sampling_rate_hz", 1.0))
        intervals = _on_intervals(run.timeseries["amplitude"], rate)
        if intervals:
            from pynwb.epoch import TimeIntervals

            table = TimeIntervals(
                name="stimulation_on", description="stretches of non-zero delivered amplitude"
            )
            table.add_column(
                "instances", "batch indices of the instances stimulated over it", index=True
            )
            # One row per distinct stretch, listing every instance it holds for.
            grouped: dict[tuple[float, float], list[int]] = {}
            for a, b, i in intervals:
                grouped.setdefault((a, b), []).append(i)
            for (a, b), members in sorted(grouped.items()):
                table.add_row(start_time=a, stop_time=b, instances=members)
            nwb.add_time_intervals(table)
    events: dict[str, dict[str, np.ndarray]] = {}
    for key, values in run.arrays.items():
        parts = key.split("/")
        if parts[0] == "events" and len(parts) == 3:
            events.setdefault(parts[1], {})[parts[2]] = values
    spikes = {k: v for k, v in events.items() if k.startswith("spikes_")}
    for name, cols in events.items():
        if name in spikes or not cols or len(next(iter(cols.values()))) == 0:
            continue
        units = {f: run.array_attrs.get(f"events/{name}/{f}", {}).get("units", "") for f in cols}
        nwb_cols = {f: (v, f"{f} ({units[f] or 'n.a.'})") for f, v in cols.items()}
        module.add(_table(f"events_{name}", f"closedloop event table {name!r}", nwb_cols))
    per_instance = {
        k: np.asarray(v, dtype=float) for k, v in run.metrics.items() if np.ndim(v) == 1
    }
    if per_instance:
        module.add(
            _table(
                "metrics",
                "run metrics, one row per instance",
                {
                    k: (v, f"{run.metric_descriptions.get(k, k)} ({run.metric_units.get(k, '')})")
                    for k, v in per_instance.items()
                },
            )
        )
    for key in ("spectra/psd_stim", "spectra/psd_baseline"):
        if key in run.arrays and "spectra/frequency" in run.arrays:
            psd = np.asarray(run.arrays[key], dtype=float)
            freq = np.asarray(run.arrays["spectra/frequency"], dtype=float)
            units = run.array_attrs.get(key, {}).get("units", "")
            module.add(
                _table(
                    key.replace("/", "_"),
                    f"Welch power spectral density per instance ({units}) at frequency_hz",
                    {
                        "frequency_hz": (np.tile(freq, (psd.shape[0], 1)), "frequency, Hz"),
                        "psd": (psd, f"power spectral density ({units})"),
                    },
                )
            )
    n_units = 0
    skipped = []
    for name, cols in spikes.items():
        t = cols.get("time_s")
        if t is None or len(t) == 0:
            continue
        inst, neuron = cols["instance"], cols["neuron"]
        keys = np.unique(np.stack([inst, neuron], axis=1), axis=0)
        if n_units + len(keys) > MAX_UNITS:
            skipped.append(name)
            continue
        if n_units == 0:
            nwb.add_unit_column("population", "spiking population")
            nwb.add_unit_column("instance", "batch index of the instance")
            nwb.add_unit_column("neuron", "neuron index within its population and instance")
        order = np.lexsort((t, neuron, inst))
        t, inst, neuron = t[order], inst[order], neuron[order]
        for i, j in keys:
            sel = (inst == i) & (neuron == j)
            nwb.add_unit(spike_times=t[sel], population=name[7:], instance=int(i), neuron=int(j))
        n_units += len(keys)
    if skipped:
        notes.append(
            f"spikes of {', '.join(skipped)} exceed {MAX_UNITS} units: see the HDF5 run file"
        )
    nwb.notes = "\n".join(notes)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.nwb")
    try:
        with NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwb)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


class NWBRunRecorder(RunRecorder):
    """``output.format: nwb``: the HDF5 run file as usual, and its NWB export when complete.

    The HDF5 file stays: it is what ``closedloop info``, ``plot`` and the
    sweep and cohort summaries read. The NWB file is written beside it
    (same name, suffix ``.nwb``) only for a complete run.
    """

    def close(self, status: str = "complete", message: str = "") -> Path:
        """Close the HDF5 file; on success write the NWB file beside it."""
        was_closed = self.closed
        path = super().close(status, message)
        if not was_closed and status == "complete":
            export_nwb(path, path.with_suffix(".nwb"))
        return path
