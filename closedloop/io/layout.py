"""The run file layout: names, version and conventions shared by writers and readers.

The layout itself (groups, datasets, attributes, units, the coordinates of
format version 3 and what changed between versions) is documented once, in
``docs/hdf5-layout.md``; this module holds the names and the version that
writers (:mod:`closedloop.io.hdf5`) and readers (:mod:`closedloop.io.reader`)
share. Readers refuse files whose ``format_version`` is newer than
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
