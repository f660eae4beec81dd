"""The run file layout: names, version and conventions shared by writers and readers.

File layout, format version 1
-----------------------------
Written by :class:`closedloop.io.hdf5.RunRecorder` (``RunRecorder`` below).
Shapes use ``n`` for the number of instances (the batch axis) and ``T`` for the
number of samples of one time series. Strings are variable-length UTF-8.

``/`` (root) attributes

=====================  =======  ====================================================
name                   type     meaning
=====================  =======  ====================================================
``format_version``     int      layout version, ``1`` (this document)
``closedloop_version`` str      version of closedloop that wrote the file
``config``             str      JSON of the fully resolved config
                                (``json.dumps(config, sort_keys=True)``)
``seed``               int      root random seed of the run
``n_instances``        int      ``n``, the batch size
``status``             str      ``"running"`` while written, then ``"complete"``
                                or ``"failed"``
``message``            str      why the run failed (``""`` when complete); set on close
``created``            str      ISO 8601 UTC time the file was opened
``finished``           str      ISO 8601 UTC time the file was closed
``provenance``         str      JSON object: python, numpy, numba, brian2 and h5py
                                versions, hostname, platform, command line, plus
                                what the caller added
``json_attrs``         str      JSON list of further root attributes stored as JSON
                                (written by :meth:`RunRecorder.set_attr` for dicts)
(any)                  any      further attributes set with
                                :meth:`RunRecorder.set_attr`, e.g. ``thresholds``
                                (JSON object, threshold name to biomarker value),
                                ``band_hz`` (float[2], Hz; ``beta_band_hz`` in
                                version 1), ``failure`` (str)
=====================  =======  ====================================================

``/timeseries/<name>``: float64 (by default) dataset, shape ``(n, T)``, maxshape
``(n, None)``, chunked along time, one per recorded signal (e.g. ``lfp``,
``lfp_sensed``, ``biomarker``, ``amplitude``, ``frequency``). Attributes:

* ``units`` (str): physical units of the values, e.g. ``"mV"``, ``"mA"``,
  ``"Hz"``, ``"1"`` for dimensionless;
* ``sampling_rate_hz`` (float, Hz) and ``sampling_rate`` (float, Hz, same
  number; the name asked for by users);
* ``start_time_s`` (float, s): time of sample 0, default 0. Sample ``k`` is at
  ``start_time_s + k / sampling_rate_hz`` seconds;
* ``description`` (str);
* ``dims`` (str): ``"instance,time"``.

``/metrics/<name>``: float dataset, shape ``(n,)`` (one value per instance) or
``()`` (one value for the run), e.g. ``band_power_reduction``, ``teed_relative``,
``time_on_fraction``. Attributes ``units`` (str) and ``description`` (str).

``/events/<name>/<field>``: growable 1-D datasets of equal length (attribute
``units``; group attribute ``description``), e.g. ``events/spikes_<population>``
with ``time_s`` (s), ``instance`` and ``neuron``.

``/events/triggers/<field>`` (runs whose controller triggers bursts, e.g.
``symptom_triggered``, or whose device sets a lock-out or a daily cap): one
row per burst the controller asked for (:mod:`closedloop.io.triggers`):
``time_s`` (f8, s: the end of the control period after which it was asked
for), ``instance`` (i4), ``biomarker`` (f8, signal units: the value that
fired it) and ``delivered`` (i1: 1 delivered, 0 refused by the device's
lock-out or a daily cap, -1 still on its way at the end of the run), ordered
by instance then time. Such runs also carry the trigger metrics
(``n_triggers_delivered``, ``n_triggers_rejected``, ``triggers_per_day``,
``charge_uc_per_day``, ``pulses_withheld``).

Any other dataset (written by :meth:`RunRecorder.write_array`), e.g.
``/spectra/frequency_hz`` (shape ``(n_freq,)``, Hz), ``/spectra/psd_stim`` and
``/spectra/psd_baseline`` (shape ``(n, n_freq)``, signal units squared per Hz):
attribute ``units`` (str), optionally ``dims`` (str, comma-separated axis names,
e.g. ``"instance,frequency"``) and any caller-given attributes.

Compatibility: readers refuse files whose ``format_version`` is newer than
:data:`FORMAT_VERSION`. Adding attributes or datasets does not change the
version; renaming, removing or changing the meaning of one does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "JSON_ATTRS",
    "METRICS",
    "PARTIAL_SUFFIX",
    "RESERVED_ATTRS",
    "STATUSES",
    "TIMESERIES",
    "attr_value",
    "check_name",
    "json_default",
    "partial_path",
    "plain",
    "to_json",
]

#: Version of the file layout documented here and in docs/hdf5-layout.md.
#: 2 (issue 12): metrics ``beta_power_*``/``beta_reduction`` renamed
#: ``band_power_*``/``band_power_reduction``, ``n_switches`` counts switches of
#: a continuous train after its first turn-on, root attribute ``beta_band_hz``
#: renamed ``band_hz``; burst metrics and ``bursts/*`` arrays added.
#: 3 (issue 17): one time dimension per clock with HDF5 dimension scales
#: (``timeseries/time_sensing``, ``time_control``, ...), ``instance`` and
#: ``frequency`` coordinates, ``spectra/frequency_hz`` renamed ``spectra/frequency``.
FORMAT_VERSION: int = 3

#: Suffix appended to the final file name while a run is being written.
PARTIAL_SUFFIX: str = ".partial"

#: Group of the time series.
TIMESERIES = "timeseries"
#: Group of the metrics.
METRICS = "metrics"
#: Statuses of a finished run file.
STATUSES = ("complete", "failed")
#: Root attribute listing the further root attributes stored as JSON.
JSON_ATTRS = "json_attrs"
#: Root attributes managed by the recorder itself, not settable with set_attr.
RESERVED_ATTRS = frozenset(
    {
        "format_version",
        "closedloop_version",
        "config",
        "seed",
        "n_instances",
        "status",
        "message",
        "created",
        "finished",
        "provenance",
        JSON_ATTRS,
    }
)


def json_default(obj: Any) -> Any:
    """Convert numpy values and paths for :func:`json.dumps`."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def to_json(value: Any) -> str:
    """Sorted-key JSON of ``value`` (numpy values, paths and sets converted)."""
    return json.dumps(value, sort_keys=True, default=json_default)


def partial_path(path: Path) -> Path:
    """The temporary name of ``path`` while its run is written."""
    return path.with_name(path.name + PARTIAL_SUFFIX)


def check_name(name: str, what: str) -> None:
    """Refuse a dataset name that is empty or holds a ``/``."""
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise ValueError(f"{what} name must be a non-empty string without '/', got {name!r}")


def attr_value(value: Any) -> Any:
    """Convert a Python value to something HDF5 stores as an attribute."""
    if isinstance(value, Mapping):
        return to_json(dict(value))
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, list | tuple):
        return np.asarray(value)
    return value


def plain(value: Any) -> Any:
    """Convert an HDF5 attribute value to a plain Python value where possible."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.dtype.kind in ("O", "S"):
        return [plain(v) for v in value.tolist()]
    return value
