"""Streaming HDF5 output for closed-loop runs, and loading it back.

A :class:`RunRecorder` writes one run (``n`` instances simulated together) to
one HDF5 file while the run goes: time series grow by appending blocks, so
memory stays flat however long the run. The file is written under a temporary
name, ``<path>.partial``, in the same directory and only renamed to ``path``
(atomically, with :func:`os.replace`) by :meth:`RunRecorder.close`. A process
killed mid-run therefore leaves only the ``.partial`` file, never a file at the
final path that looks finished. A run that raised is still closed and renamed,
with ``status = "failed"`` and the reason in ``message``, so a sweep can record
why it failed.

:func:`load_run` reads a finished file into a :class:`RunData`.

File layout, format version 1
-----------------------------
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
                                ``beta_band_hz`` (float[2], Hz), ``failure`` (str)
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
``()`` (one value for the run), e.g. ``beta_reduction``, ``teed_relative``,
``time_on_fraction``. Attributes ``units`` (str) and ``description`` (str).

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

import contextlib
import dataclasses
import datetime as _dt
import functools
import importlib.metadata
import json
import os
import platform
import shlex
import socket
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "PARTIAL_SUFFIX",
    "RunData",
    "RunRecorder",
    "collect_provenance",
    "load_run",
]

#: Version of the file layout documented in this module and docs/hdf5-layout.md.
FORMAT_VERSION: int = 1

#: Suffix appended to the final file name while a run is being written.
PARTIAL_SUFFIX: str = ".partial"

_TIMESERIES = "timeseries"
_METRICS = "metrics"
_STATUSES = ("complete", "failed")
#: Root attributes managed by the recorder itself, not settable with set_attr.
_RESERVED_ATTRS = frozenset(
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
        "json_attrs",
    }
)
#: Target size of one chunk of a time series, in bytes.
_CHUNK_BYTES = 64 * 1024
#: Fewest samples along time in one chunk (when many instances share a chunk row).
_MIN_CHUNK_SAMPLES = 256
#: Bounds of the per-dataset HDF5 chunk cache, in bytes.
_MIN_CACHE_BYTES = 1024 * 1024
_MAX_CACHE_BYTES = 64 * 1024 * 1024

_PACKAGES = ("numpy", "numba", "brian2", "h5py")


def _utc_now() -> str:
    """Return the current UTC time in ISO 8601, to the second, with a ``Z``."""
    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    return now.isoformat().replace("+00:00", "Z")


def _json_default(obj: Any) -> Any:
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


def _to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=_json_default)


def collect_provenance() -> dict[str, str | None]:
    """Describe the software and machine a run is produced on.

    Returns
    -------
    dict
        ``python``, ``numpy``, ``numba``, ``brian2`` and ``h5py`` versions
        (``None`` for a package that is not installed), ``hostname``,
        ``platform`` and ``command_line`` (the process's ``sys.argv``, shell
        quoted).

    Notes
    -----
    Package versions come from the installed distributions' metadata, so
    collecting them imports nothing (importing brian2 takes seconds).
    """
    info = dict(_static_provenance())
    info["command_line"] = shlex.join(sys.argv) if sys.argv else ""
    return info


@functools.cache
def _static_provenance() -> tuple[tuple[str, str | None], ...]:
    # Metadata look-ups cost ~10 ms: once per process, not once per run file.
    info: dict[str, str | None] = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = None
    info["hostname"] = socket.gethostname()
    info["platform"] = platform.platform()
    return tuple(info.items())


def _partial_path(path: Path) -> Path:
    return path.with_name(path.name + PARTIAL_SUFFIX)


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise ValueError(f"{what} name must be a non-empty string without '/', got {name!r}")


def _attr_value(value: Any) -> Any:
    """Convert a Python value to something h5py stores as an attribute."""
    if isinstance(value, Mapping):
        return _to_json(dict(value))
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, list | tuple):
        return np.asarray(value)
    return value


class RunRecorder:
    """Stream one run's results to an HDF5 file.

    The file is written as ``<path>.partial`` and renamed to ``path`` by
    :meth:`close`. Used as a context manager, the recorder closes itself on
    exit: with ``status="complete"`` normally, with ``status="failed"`` and
    the exception text if the block raised (the exception propagates), and
    with ``status="failed"``, ``message="interrupted"`` on
    :class:`KeyboardInterrupt`.

    Parameters
    ----------
    path : str or path-like
        Final file path, conventionally ending in ``.h5``. Parent directories
        are created. An existing file at ``path`` is replaced on close.
    config : dict
        Fully resolved config of the run, stored as sorted-key JSON.
    seed : int
        Root random seed of the run.
    n : int
        Number of instances (the batch size); first axis of every time series.
    closedloop_version : str
        Version of closedloop producing the run.
    provenance : dict, optional
        Extra provenance entries, merged over :func:`collect_provenance`.

    Attributes
    ----------
    path : pathlib.Path
        Final file path.
    partial_path : pathlib.Path
        Temporary path written while the run goes.
    n : int
        Number of instances.

    Examples
    --------
    >>> with RunRecorder("run.h5", config={}, seed=1, n=2,
    ...                  closedloop_version="0.1.0") as rec:  # doctest: +SKIP
    ...     rec.create_timeseries("lfp", units="mV", sampling_rate_hz=1000.0)
    ...     rec.append("lfp", np.zeros((2, 100)))
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        config: dict[str, Any],
        seed: int,
        n: int,
        closedloop_version: str,
        provenance: dict[str, Any] | None = None,
    ) -> None:
        n_int = int(n)
        if n_int != n or n_int < 1:
            raise ValueError(f"n (number of instances) must be a positive integer, got {n!r}")
        self.path = Path(path)
        if self.path.name.endswith(PARTIAL_SUFFIX):
            raise ValueError(
                f"{self.path}: the final path must not end in {PARTIAL_SUFFIX!r}; "
                "that suffix is reserved for the file while it is written"
            )
        self.partial_path = _partial_path(self.path)
        self.n = n_int
        self._closed = False
        self._timeseries: dict[str, h5py.Dataset] = {}
        self._json_attrs: list[str] = []

        config_json = _to_json(config)  # fail before creating any file
        provenance_json = _to_json({**collect_provenance(), **(provenance or {})})

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = h5py.File(self.partial_path, "w")
        try:
            attrs = self._file.attrs
            attrs["format_version"] = FORMAT_VERSION
            attrs["closedloop_version"] = str(closedloop_version)
            attrs["config"] = config_json
            attrs["seed"] = int(seed)
            attrs["n_instances"] = self.n
            attrs["status"] = "running"
            attrs["message"] = ""
            attrs["created"] = _utc_now()
            attrs["provenance"] = provenance_json
            attrs["json_attrs"] = "[]"
            self._file.create_group(_TIMESERIES)
            self._file.create_group(_METRICS)
            self._file.flush()
        except BaseException:
            self._file.close()
            self._closed = True
            raise

    # ------------------------------------------------------------------ state

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._closed

    def _require_open(self) -> h5py.File:
        if self._closed:
            raise RuntimeError(f"{self.path}: the recorder is closed")
        if not self._file.id.valid:
            raise RuntimeError(
                f"{self.partial_path}: the HDF5 file was closed outside the recorder"
            )
        return self._file

    # ------------------------------------------------------------ time series

    def create_timeseries(
        self,
        name: str,
        *,
        units: str,
        sampling_rate_hz: float,
        description: str = "",
        dtype: Any = np.float64,
        chunk_samples: int | None = None,
        start_time_s: float = 0.0,
    ) -> None:
        """Create an empty time series ``timeseries/<name>`` of shape ``(n, 0)``.

        Parameters
        ----------
        name : str
            Name of the signal, e.g. ``"lfp"``; no ``/``.
        units : str
            Physical units of the values, e.g. ``"mV"``; ``"1"`` if dimensionless.
        sampling_rate_hz : float
            Samples per second, in Hz; positive and finite.
        description : str, optional
            One sentence on what the signal is.
        dtype : numpy dtype, optional
            Stored type, float64 by default.
        chunk_samples : int, optional
            Samples along time per HDF5 chunk. By default chosen so that one
            chunk holds about 64 KiB, and at least 256 samples.
        start_time_s : float, optional
            Time of the first sample, in seconds (default 0).

        Raises
        ------
        ValueError
            If the name is invalid or taken, or the rate is not positive.
        """
        f = self._require_open()
        _check_name(name, "time series")
        group = f[_TIMESERIES]
        if name in group:
            raise ValueError(f"time series {name!r} already exists in {self.partial_path}")
        rate = float(sampling_rate_hz)
        if not np.isfinite(rate) or rate <= 0:
            raise ValueError(
                f"time series {name!r}: sampling_rate_hz must be positive and finite, "
                f"got {sampling_rate_hz!r}"
            )
        dtype = np.dtype(dtype)
        itemsize = dtype.itemsize
        if chunk_samples is None:
            samples = max(_MIN_CHUNK_SAMPLES, _CHUNK_BYTES // (self.n * itemsize))
            samples = min(samples, max(1, _CHUNK_BYTES // itemsize))
        else:
            samples = int(chunk_samples)
            if samples < 1:
                raise ValueError(f"chunk_samples must be at least 1, got {chunk_samples!r}")
        rows = min(self.n, max(1, _CHUNK_BYTES // (samples * itemsize)))
        # The cache must hold one time-column of chunks (all instances), else
        # every append re-reads and re-writes partly filled chunks.
        column_bytes = self.n * samples * itemsize
        cache_bytes = int(min(_MAX_CACHE_BYTES, max(_MIN_CACHE_BYTES, 2 * column_bytes)))
        chunks_in_cache = max(1, cache_bytes // (rows * samples * itemsize))
        ds = group.create_dataset(
            name,
            shape=(self.n, 0),
            maxshape=(self.n, None),
            chunks=(rows, samples),
            dtype=dtype,
            rdcc_nbytes=cache_bytes,
            rdcc_nslots=max(521, 100 * chunks_in_cache + 1),
        )
        ds.attrs["units"] = str(units)
        ds.attrs["sampling_rate_hz"] = rate
        ds.attrs["sampling_rate"] = rate
        ds.attrs["start_time_s"] = float(start_time_s)
        ds.attrs["description"] = str(description)
        ds.attrs["dims"] = "instance,time"
        self._timeseries[name] = ds

    def append(self, name: str, block: np.ndarray) -> None:
        """Append samples to a time series, writing them to the file now.

        Parameters
        ----------
        name : str
            Time series created with :meth:`create_timeseries`.
        block : array_like, shape (n, m)
            ``m`` new samples for each of the ``n`` instances.

        Raises
        ------
        KeyError
            If no time series has that name.
        ValueError
            If the block does not have shape ``(n, m)``.
        """
        self._require_open()
        try:
            ds = self._timeseries[name]
        except KeyError:
            known = ", ".join(sorted(self._timeseries)) or "none"
            raise KeyError(
                f"no time series {name!r}; create it with create_timeseries first "
                f"(existing: {known})"
            ) from None
        block = np.asarray(block)
        if block.ndim != 2 or block.shape[0] != self.n:
            raise ValueError(
                f"append to time series {name!r}: expected a block of shape (n, m) = "
                f"({self.n}, m), got shape {block.shape}"
            )
        m = block.shape[1]
        if m == 0:
            return
        start = ds.shape[1]
        ds.resize(start + m, axis=1)
        ds[:, start : start + m] = block

    # ---------------------------------------------------------------- events

    def create_events(
        self, name: str, fields: Mapping[str, tuple[str, str]], *, description: str = ""
    ) -> None:
        """Create ``events/<name>/<field>``: growable 1-D datasets (dtype, units)."""
        f = self._require_open()
        group = f.require_group("events").create_group(name)
        group.attrs["description"] = description
        for field_name, (dtype, units) in fields.items():
            ds = group.create_dataset(
                field_name, shape=(0,), maxshape=(None,), chunks=(65536,), dtype=dtype
            )
            ds.attrs["units"] = units

    def append_events(self, name: str, **columns: np.ndarray) -> None:
        """Append equal-length columns to ``events/<name>``."""
        group = self._require_open()["events"][name]
        for field_name, values in columns.items():
            ds = group[field_name]
            start = ds.shape[0]
            ds.resize(start + len(values), axis=0)
            ds[start:] = values

    # ------------------------------------------------------- other datasets

    def write_array(self, path_in_file: str, data: Any, *, units: str, **attrs: Any) -> None:
        """Write a dataset outside ``timeseries/`` and ``metrics/`` in one go.

        Parameters
        ----------
        path_in_file : str
            Dataset path, e.g. ``"spectra/psd_stim"``; groups are created.
        data : array_like
            Values to store.
        units : str
            Physical units of the values.
        **attrs
            Further attributes, e.g. ``dims="instance,frequency"`` or
            ``description="..."``. Dicts are stored as JSON strings.

        Raises
        ------
        ValueError
            If the path is empty, already used, or inside ``timeseries/`` or
            ``metrics/`` (use :meth:`create_timeseries` / :meth:`write_metrics`).
        """
        f = self._require_open()
        key = str(path_in_file).strip("/")
        if not key:
            raise ValueError("write_array: path_in_file must not be empty")
        top = key.split("/", 1)[0]
        if top in (_TIMESERIES, _METRICS):
            raise ValueError(
                f"write_array: {key!r} is inside '{top}/'; use "
                + ("create_timeseries/append" if top == _TIMESERIES else "write_metrics")
            )
        if key in f:
            raise ValueError(f"write_array: {key!r} already exists in {self.partial_path}")
        ds = f.create_dataset(key, data=np.asarray(data))
        ds.attrs["units"] = str(units)
        for attr_name, value in attrs.items():
            ds.attrs[attr_name] = _attr_value(value)

    def write_metrics(
        self,
        metrics: Mapping[str, np.ndarray | float],
        units: Mapping[str, str],
        descriptions: Mapping[str, str] | None = None,
    ) -> None:
        """Write summary metrics under ``metrics/``.

        Parameters
        ----------
        metrics : mapping of str to array_like
            Metric name to a value per instance (shape ``(n,)``) or one value
            for the run (a scalar).
        units : mapping of str to str
            Units of every metric (``"1"`` for a dimensionless ratio).
        descriptions : mapping of str to str, optional
            One sentence per metric.

        Raises
        ------
        ValueError
            If a metric lacks units, has the wrong shape or already exists.
        """
        f = self._require_open()
        descriptions = descriptions or {}
        missing = sorted(set(metrics) - set(units))
        if missing:
            raise ValueError(f"write_metrics: no units given for {', '.join(missing)}")
        group = f[_METRICS]
        values: dict[str, np.ndarray] = {}
        for name, value in metrics.items():
            _check_name(name, "metric")
            arr = np.asarray(value)
            if arr.shape not in ((), (self.n,)):
                raise ValueError(
                    f"metric {name!r}: expected a scalar or shape ({self.n},), got {arr.shape}"
                )
            if name in group:
                raise ValueError(f"metric {name!r} already exists in {self.partial_path}")
            values[name] = arr
        for name, arr in values.items():
            ds = group.create_dataset(name, data=arr)
            ds.attrs["units"] = str(units[name])
            ds.attrs["description"] = str(descriptions.get(name, ""))

    def set_attr(self, key: str, value: Any) -> None:
        """Set a root attribute, e.g. ``thresholds`` or ``failure``.

        Parameters
        ----------
        key : str
            Attribute name; not one the recorder manages (``status``,
            ``config``, ...).
        value : object
            str, number, array, list (stored as an array) or dict (stored as
            JSON, decoded again by :func:`load_run`).
        """
        f = self._require_open()
        if key in _RESERVED_ATTRS:
            raise ValueError(f"set_attr: {key!r} is managed by the recorder and cannot be set")
        if isinstance(value, Mapping):
            if key not in self._json_attrs:
                self._json_attrs.append(key)
        elif key in self._json_attrs:
            self._json_attrs.remove(key)
        f.attrs[key] = _attr_value(value)
        f.attrs["json_attrs"] = json.dumps(self._json_attrs)

    # ------------------------------------------------------------------ close

    def close(self, status: str = "complete", message: str = "") -> Path:
        """Finish the file and move it to its final path.

        Sets ``status`` and ``message``, flushes and closes the file, then
        renames ``<path>.partial`` to ``path`` with :func:`os.replace`.
        Calling it again does nothing.

        Parameters
        ----------
        status : {"complete", "failed"}
            Outcome of the run.
        message : str, optional
            Why the run failed.

        Returns
        -------
        pathlib.Path
            The final path.

        Raises
        ------
        RuntimeError
            If the HDF5 file was closed behind the recorder's back; the
            ``.partial`` file is left where it is.
        """
        if self._closed:
            return self.path
        if status not in _STATUSES:
            raise ValueError(f"status must be one of {_STATUSES}, got {status!r}")
        if not self._file.id.valid:
            self._closed = True
            raise RuntimeError(
                f"{self.partial_path}: the HDF5 file was closed outside the recorder; "
                "left as a partial file"
            )
        try:
            self._file.attrs["status"] = status
            self._file.attrs["message"] = str(message)
            self._file.attrs["finished"] = _utc_now()
            self._file.flush()
        finally:
            self._file.close()
            self._timeseries.clear()
            self._closed = True
        os.replace(self.partial_path, self.path)
        return self.path

    def __enter__(self) -> RunRecorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close("complete")
            return
        if issubclass(exc_type, KeyboardInterrupt):
            message = "interrupted"
        else:
            message = f"{exc_type.__name__}: {exc}"
        try:
            self.close("failed", message)
        except Exception as close_error:  # keep the original exception visible
            warnings.warn(
                f"{self.path}: could not close the run file after a failure: {close_error}",
                RuntimeWarning,
                stacklevel=2,
            )


# ---------------------------------------------------------------------- load


def _plain(value: Any) -> Any:
    """Convert an h5py attribute value to a plain Python value where possible."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.dtype.kind in ("O", "S"):
        return [_plain(v) for v in value.tolist()]
    return value


@dataclasses.dataclass(frozen=True, eq=False)
class RunData:
    """Contents of a run file, as read by :func:`load_run`.

    Attributes
    ----------
    path : pathlib.Path
        File read.
    attrs : dict
        Root attributes; JSON ones (``config``, ``provenance``, and those in
        ``json_attrs``) decoded.
    config : dict
        Fully resolved config of the run.
    status : str
        ``"complete"`` or ``"failed"``.
    timeseries : dict of str to ndarray
        Time series by name, each of shape ``(n, T)``.
    timeseries_attrs : dict of str to dict
        Attributes of each time series (``units``, ``sampling_rate_hz``, ...).
    metrics : dict of str to ndarray
        Metrics by name, shape ``(n,)`` or ``()``.
    metric_units : dict of str to str
        Units of each metric.
    metric_descriptions : dict of str to str
        Description of each metric.
    arrays : dict of str to ndarray
        Every other dataset, keyed by its path in the file (``"spectra/psd_stim"``).
    array_attrs : dict of str to dict
        Attributes of each of :attr:`arrays` (``units``, ...).
    """

    path: Path
    attrs: dict[str, Any]
    config: dict[str, Any]
    status: str
    timeseries: dict[str, np.ndarray]
    timeseries_attrs: dict[str, dict[str, Any]]
    metrics: dict[str, np.ndarray]
    metric_units: dict[str, str]
    metric_descriptions: dict[str, str] = dataclasses.field(default_factory=dict)
    arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    array_attrs: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    @property
    def n_instances(self) -> int:
        """Number of instances ``n``."""
        return int(self.attrs["n_instances"])

    def time(self, name: str) -> np.ndarray:
        """Sample times of a time series.

        Parameters
        ----------
        name : str
            Time series name.

        Returns
        -------
        ndarray, shape (T,)
            Times in seconds: ``start_time_s + k / sampling_rate_hz``.
        """
        if name not in self.timeseries:
            known = ", ".join(sorted(self.timeseries)) or "none"
            raise KeyError(f"no time series {name!r} in {self.path} (present: {known})")
        ts_attrs = self.timeseries_attrs[name]
        rate = float(ts_attrs.get("sampling_rate_hz", ts_attrs.get("sampling_rate")))
        start = float(ts_attrs.get("start_time_s", 0.0))
        return start + np.arange(self.timeseries[name].shape[-1]) / rate

    def to_xarray(self) -> Any:
        """Return the run as an :class:`xarray.Dataset`.

        Time series ``<name>`` have dims ``("instance", "time_<name>")`` with a
        ``time_<name>`` coordinate in seconds; metrics have dims
        ``("instance",)`` or none (a metric whose name clashes with a time
        series is called ``metric_<name>``); other arrays are named by their
        path with ``/`` replaced by ``_`` and take their dims from their
        ``dims`` attribute when it has one (a dim named like a variable is
        prefixed with the array's group, e.g. ``spectra_frequency``). Units
        and descriptions are in each variable's ``attrs``; root attributes in
        the dataset's ``attrs`` (dicts as JSON strings).

        Returns
        -------
        xarray.Dataset

        Raises
        ------
        ImportError
            If xarray is not installed.
        """
        try:
            import xarray as xr
        except ImportError as err:
            raise ImportError(
                "RunData.to_xarray needs xarray, which is not installed: pip install xarray"
            ) from err
        n = self.n_instances
        data_vars: dict[str, Any] = {}
        coords: dict[str, Any] = {"instance": np.arange(n)}
        for name, values in self.timeseries.items():
            time_dim = f"time_{name}"
            coords[time_dim] = (time_dim, self.time(name), {"units": "s"})
            data_vars[name] = (
                ("instance", time_dim),
                values,
                {k: _plain(v) for k, v in self.timeseries_attrs[name].items()},
            )
        for name, values in self.metrics.items():
            var = f"metric_{name}" if name in data_vars else name
            dims: tuple[str, ...] = ("instance",) if values.ndim == 1 else ()
            data_vars[var] = (
                dims,
                values,
                {
                    "units": self.metric_units.get(name, ""),
                    "description": self.metric_descriptions.get(name, ""),
                },
            )
        taken = set(data_vars) | {key.replace("/", "_") for key in self.arrays}
        for key, values in self.arrays.items():
            var = key.replace("/", "_")
            attrs = {k: _plain(v) for k, v in self.array_attrs.get(key, {}).items()}
            dims_attr = attrs.get("dims")
            dims = tuple(d.strip() for d in dims_attr.split(",")) if dims_attr else ()
            if len(dims) != values.ndim:
                dims = tuple(f"{var}_dim_{i}" for i in range(values.ndim))
            # A dimension named like a variable would turn that variable into a
            # coordinate: prefix such a dimension with the array's group.
            group = key.rsplit("/", 1)[0].replace("/", "_") if "/" in key else var
            dims = tuple(f"{group}_{d}" if d in taken and d != "instance" else d for d in dims)
            data_vars[var] = (dims, values, attrs)
        attrs = {
            k: (_to_json(v) if isinstance(v, dict | list) else v) for k, v in self.attrs.items()
        }
        return xr.Dataset(data_vars=data_vars, coords=coords, attrs=attrs)


def load_run(path: str | os.PathLike[str]) -> RunData:
    """Read a finished run file.

    Parameters
    ----------
    path : str or path-like
        File written by :class:`RunRecorder`.

    Returns
    -------
    RunData
        Everything in the file, in memory.

    Raises
    ------
    ValueError
        If ``path`` is a ``.partial`` file (the run did not finish), has no
        ``format_version``, or a ``format_version`` newer than
        :data:`FORMAT_VERSION`.
    FileNotFoundError
        If there is no file at ``path``.
    """
    path = Path(path)
    if path.name.endswith(PARTIAL_SUFFIX):
        raise ValueError(
            f"{path} is a partial file: the run did not finish (it is still running, "
            "or its process was killed); there are no complete results to load"
        )
    if not path.exists():
        partial = _partial_path(path)
        if partial.exists():
            raise FileNotFoundError(
                f"{path} does not exist, but {partial.name} does: the run did not finish "
                "(it is still running, or its process was killed)"
            )
        raise FileNotFoundError(f"{path}: no such run file")

    with h5py.File(path, "r") as f:
        raw_attrs = {k: _plain(v) for k, v in f.attrs.items()}
        version = raw_attrs.get("format_version")
        if version is None:
            raise ValueError(
                f"{path} has no 'format_version' attribute: not a closedloop run file "
                f"(this closedloop reads format versions up to {FORMAT_VERSION})"
            )
        if int(version) > FORMAT_VERSION:
            raise ValueError(
                f"{path} has format_version {int(version)}, newer than this closedloop "
                f"reads ({FORMAT_VERSION}); upgrade closedloop to load it"
            )

        json_keys = ["config", "provenance"]
        with contextlib.suppress(TypeError, ValueError):
            json_keys += list(json.loads(raw_attrs.get("json_attrs", "[]")))
        attrs = dict(raw_attrs)
        for key in json_keys:
            if isinstance(attrs.get(key), str):
                try:
                    attrs[key] = json.loads(attrs[key])
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}: root attribute {key!r} is not valid JSON") from err

        timeseries: dict[str, np.ndarray] = {}
        timeseries_attrs: dict[str, dict[str, Any]] = {}
        metrics: dict[str, np.ndarray] = {}
        metric_units: dict[str, str] = {}
        metric_descriptions: dict[str, str] = {}
        arrays: dict[str, np.ndarray] = {}
        array_attrs: dict[str, dict[str, Any]] = {}

        def visit(name: str, obj: Any) -> None:
            if not isinstance(obj, h5py.Dataset):
                return
            ds_attrs = {k: _plain(v) for k, v in obj.attrs.items()}
            top, _, rest = name.partition("/")
            if top == _TIMESERIES and rest and "/" not in rest:
                timeseries[rest] = obj[()]
                timeseries_attrs[rest] = ds_attrs
            elif top == _METRICS and rest and "/" not in rest:
                metrics[rest] = np.asarray(obj[()])
                metric_units[rest] = str(ds_attrs.get("units", ""))
                metric_descriptions[rest] = str(ds_attrs.get("description", ""))
            else:
                arrays[name] = np.asarray(obj[()])
                array_attrs[name] = ds_attrs

        f.visititems(visit)

    config = attrs.get("config")
    return RunData(
        path=path,
        attrs=attrs,
        config=config if isinstance(config, dict) else {},
        status=str(attrs.get("status", "")),
        timeseries=timeseries,
        timeseries_attrs=timeseries_attrs,
        metrics=metrics,
        metric_units=metric_units,
        metric_descriptions=metric_descriptions,
        arrays=arrays,
        array_attrs=array_attrs,
    )
