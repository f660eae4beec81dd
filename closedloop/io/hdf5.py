"""The HDF5 run file writer: streamed while the run goes, temporary name, then rename.

A :class:`RunRecorder` writes one run (``n`` instances simulated together) to
one HDF5 file while the run goes: time series grow by appending blocks, so
memory stays flat however long the run. The file is written under a temporary
name, ``<path>.partial``, in the same directory and only renamed to ``path``
(atomically, with :func:`os.replace`) by :meth:`RunRecorder.close`. A process
killed mid-run therefore leaves only the ``.partial`` file, never a file at the
final path that looks finished. A run that raised is still closed and renamed,
with ``status = "failed"`` and the reason in ``message``, so a sweep can record
why it failed.

:func:`add_run_attrs` adds root attributes to a finished file (a sweep's run
id and parameters on a file closed as failed). The layout is documented in
:mod:`closedloop.io.layout` and ``docs/hdf5-layout.md``; files are read back
with :func:`closedloop.io.reader.load_run`.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from closedloop.io.atomic import (
    MIN_FREE_BYTES,
    RunWriteError,
    claim_run_file,
    is_out_of_space,
    quiet_release,
    release_run_file,
    room_left,
    write_failure,
)
from closedloop.io.coords import (
    EVENT_DIM,
    attach_dims,
    clock_coordinate,
    event_coordinate,
    extend_clock,
    extend_events,
)
from closedloop.io.layout import (
    FORMAT_VERSION,
    JSON_ATTRS,
    METRICS,
    PARTIAL_SUFFIX,
    RESERVED_ATTRS,
    STATUSES,
    TIMESERIES,
    attr_value,
    check_name,
    partial_path,
    to_json,
)
from closedloop.io.provenance import collect_provenance, utc_now
from closedloop.io.series import SENSING_CLOCK
from closedloop.io.storage import chunk_layout, compression_filter

__all__ = ["RunRecorder", "add_run_attrs"]


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
    dtype : {"float64", "float32"}, optional
        Stored type of the time series (``output.dtype``); float32 keeps about
        7 significant digits, ample for signals and commands, and halves the file.
    compression : {"auto", "lzf", "gzip", "gzip-1" ... "gzip-9", "none"}, optional
        HDF5 filter of the time series (``output.compression``); ``auto``:
        lzf except on the sensing clock (:mod:`closedloop.io.storage`).
    series : sequence of str, optional
        Time series to write (``output.series``); appends to the others are
        dropped. All by default.
    decimate : mapping of str to int, optional
        Keep every ``k``-th sample of a series (``output.decimate``); its
        sampling rate is divided by ``k``.

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
        dtype: str = "float64",
        compression: str = "auto",
        series: Sequence[str] | None = None,
        decimate: Mapping[str, int] | None = None,
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
        self.partial_path = partial_path(self.path)
        self.n = n_int
        self._closed = False
        self._timeseries: dict[str, h5py.Dataset] = {}
        # Per series: its clock coordinate, and (step, samples seen) when decimated.
        self._clocks: dict[str, h5py.Dataset] = {}
        # (rate Hz, start s) per series: read once, as an HDF5 attribute
        # read per append cost as much as writing the clock's values.
        self._clock_params: dict[str, tuple[float, float]] = {}
        self._decimation: dict[str, list[int]] = {}
        self._offered: set[str] = set()
        self._dtype = np.dtype(dtype)
        compression_filter(compression)  # refuse an unknown name now
        self._compression = compression
        self._series = None if series is None else frozenset(series)
        self._decimate = {k: int(v) for k, v in (decimate or {}).items()}
        bad = {k: v for k, v in self._decimate.items() if v < 1}
        if bad:
            raise ValueError(f"decimate: factors must be integers >= 1, got {bad}")
        self._json_attrs: list[str] = []
        self._lock_fd: int | None = None
        self._file: h5py.File | None = None
        # Bytes kept free for HDF5 to flush its caches and close cleanly.
        self._reserve = MIN_FREE_BYTES

        config_json = to_json(config)  # fail before creating any file
        provenance_json = to_json({**collect_provenance(), **(provenance or {})})

        self._file = self._create_file()
        try:
            attrs = self._file.attrs
            attrs["format_version"] = FORMAT_VERSION
            attrs["closedloop_version"] = str(closedloop_version)
            attrs["config"] = config_json
            attrs["seed"] = int(seed)
            attrs["n_instances"] = self.n
            attrs["status"] = "running"
            attrs["message"] = ""
            attrs["created"] = utc_now()
            attrs["provenance"] = provenance_json
            attrs[JSON_ATTRS] = "[]"
            self._file.create_group(TIMESERIES)
            self._file.create_group(METRICS)
            self._file.flush()
        except BaseException as exc:
            self._abandon()
            if isinstance(exc, OSError):
                raise write_failure(self.path, exc) from None
            raise

    def _create_file(self) -> h5py.File:
        """Open the ``.partial`` file for writing (an in-memory recorder overrides this)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Lock the temporary name before truncating it: a second writer of the
        # same path is refused instead of truncating this one's file.
        self._lock_fd = claim_run_file(self.path)
        try:
            return h5py.File(self.partial_path, "w")
        except BaseException:
            self._abandon()
            raise

    def _publish(self) -> None:
        """Move the finished ``.partial`` file to its final path and unlock."""
        try:
            os.replace(self.partial_path, self.path)
        finally:
            self._release_lock()

    # ------------------------------------------------------------------ state

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._closed

    def _require_open(self) -> h5py.File:
        if self._closed:
            raise RuntimeError(f"{self.path}: the recorder is closed")
        if self._file is None or not self._file.id.valid:
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
        dtype: Any = None,
        chunk_samples: int | None = None,
        start_time_s: float = 0.0,
        clock: str | None = None,
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
            Stored type; the recorder's ``dtype`` by default.
        chunk_samples : int, optional
            Samples along time per HDF5 chunk. By default chosen so that one
            chunk holds about 64 KiB, and at least 256 samples.
        start_time_s : float, optional
            Time of the first sample, in seconds (default 0).
        clock : str, optional
            Name of the series' time dimension, e.g. ``"time_sensing"``;
            series of one clock share it. By default the clock of an earlier
            series with the same rate and start, else ``time_<period>s``.

        Raises
        ------
        ValueError
            If the name is invalid or taken, or the rate is not positive.
        """
        f = self._require_open()
        check_name(name, "time series")
        group = f[TIMESERIES]
        if name in group:
            raise ValueError(f"time series {name!r} already exists in {self.partial_path}")
        rate = float(sampling_rate_hz)
        if not np.isfinite(rate) or rate <= 0:
            raise ValueError(
                f"time series {name!r}: sampling_rate_hz must be positive and finite, "
                f"got {sampling_rate_hz!r}"
            )
        self._offered.add(name)
        if self._series is not None and name not in self._series:
            return
        step = self._decimate.get(name, 1)
        if step > 1:
            rate /= step
            clock = f"{clock}_every{step}" if clock else None
            self._decimation[name] = [step, 0]
        dtype = self._dtype if dtype is None else np.dtype(dtype)
        layout = chunk_layout(self.n, dtype.itemsize, chunk_samples)
        ds = group.create_dataset(
            name,
            shape=(self.n, 0),
            maxshape=(self.n, None),
            dtype=dtype,
            **layout,
            **compression_filter(self._compression, sensed=clock == SENSING_CLOCK),
        )
        self._reserve += layout["rdcc_nbytes"]
        clock = clock or self._clock_for(rate, float(start_time_s))
        coord = clock_coordinate(group, clock, rate, float(start_time_s))
        attach_dims(ds, ("instance", clock), self.n)
        self._clocks[name] = coord
        self._clock_params[name] = (float(rate), float(start_time_s))
        ds.attrs["units"] = str(units)
        ds.attrs["sampling_rate_hz"] = rate
        ds.attrs["sampling_rate"] = rate
        ds.attrs["start_time_s"] = float(start_time_s)
        ds.attrs["description"] = str(description)
        ds.attrs["dims"] = f"instance,{clock}"
        ds.attrs["long_name"] = str(description) or name
        self._timeseries[name] = ds

    def check_selection(self) -> None:
        """Refuse ``series`` or ``decimate`` names no created time series has.

        Raises
        ------
        ValueError
            Naming the unknown entries (``output.series``, ``output.decimate``)
            and the series the run offers.
        """
        unknown = {
            "output.series": sorted(set(self._series or ()) - self._offered),
            "output.decimate": sorted(set(self._decimate) - self._offered),
        }
        problems = [
            f"{key}: no time series {', '.join(map(repr, names))}"
            for key, names in unknown.items()
            if names
        ]
        if problems:
            offered = ", ".join(sorted(self._offered))
            raise ValueError("; ".join(problems) + f" (this run records: {offered})")

    def _clock_for(self, rate: float, start: float) -> str:
        """The clock of an earlier series at ``rate`` from ``start``, or a new name."""
        for coord in self._clocks.values():
            if coord.attrs["sampling_rate_hz"] == rate and coord.attrs["start_time_s"] == start:
                return coord.name.rsplit("/", 1)[-1]
        return "time_" + f"{1.0 / rate:g}s".replace(".", "p").replace("-", "m")

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
            if self._series is not None and name not in self._series:
                return  # not selected by output.series
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
        decimation = self._decimation.get(name)
        if decimation is not None:
            step, seen = decimation
            decimation[1] = seen + block.shape[1]
            block = block[:, (-seen) % step :: step]
        m = block.shape[1]
        if m == 0:
            return
        self._check_room(block.size * ds.dtype.itemsize)
        start = ds.shape[1]
        ds.resize(start + m, axis=1)
        ds[:, start : start + m] = block
        rate_hz, start_s = self._clock_params[name]
        extend_clock(self._clocks[name], start + m, rate_hz=rate_hz, start_time_s=start_s)

    # ---------------------------------------------------------------- events

    def create_events(
        self, name: str, fields: Mapping[str, tuple[str, str]], *, description: str = ""
    ) -> None:
        """Create ``events/<name>/<field>``: growable 1-D datasets (dtype, units)."""
        f = self._require_open()
        if EVENT_DIM in fields:
            raise ValueError(f"events/{name}: {EVENT_DIM!r} is the table's dimension, not a field")
        group = f.require_group("events").create_group(name)
        group.attrs["description"] = description
        index = event_coordinate(group)  # so that netCDF readers open the table
        for field_name, (dtype, units) in fields.items():
            ds = group.create_dataset(
                field_name, shape=(0,), maxshape=(None,), chunks=(65536,), dtype=dtype
            )
            ds.attrs["units"] = units
            ds.dims[0].attach_scale(index)

    def append_events(self, name: str, **columns: np.ndarray) -> None:
        """Append equal-length columns to ``events/<name>``."""
        group = self._require_open()["events"][name]
        self._check_room(sum(np.asarray(v).nbytes for v in columns.values()))
        for field_name, values in columns.items():
            ds = group[field_name]
            start = ds.shape[0]
            ds.resize(start + len(values), axis=0)
            ds[start:] = values
            extend_events(group[EVENT_DIM], ds.shape[0])

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
        if top in (TIMESERIES, METRICS):
            raise ValueError(
                f"write_array: {key!r} is inside '{top}/'; use "
                + ("create_timeseries/append" if top == TIMESERIES else "write_metrics")
            )
        if key in f:
            raise ValueError(f"write_array: {key!r} already exists in {self.partial_path}")
        ds = f.create_dataset(key, data=np.asarray(data))
        ds.attrs["units"] = str(units)
        for attr_name, value in attrs.items():
            ds.attrs[attr_name] = attr_value(value)
        dims = tuple(d.strip() for d in str(attrs.get("dims", "")).split(",") if d.strip())
        if dims and len(dims) == ds.ndim and "/" in key:
            attach_dims(ds, dims, self.n)

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
        group = f[METRICS]
        values: dict[str, np.ndarray] = {}
        for name, value in metrics.items():
            check_name(name, "metric")
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
            if arr.ndim == 1:
                attach_dims(ds, ("instance",), self.n)
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
        if key in RESERVED_ATTRS:
            raise ValueError(f"set_attr: {key!r} is managed by the recorder and cannot be set")
        if isinstance(value, Mapping):
            if key not in self._json_attrs:
                self._json_attrs.append(key)
        elif key in self._json_attrs:
            self._json_attrs.remove(key)
        f.attrs[key] = attr_value(value)
        f.attrs[JSON_ATTRS] = json.dumps(self._json_attrs)

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
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        h5 = self._file
        if h5 is None or not h5.id.valid:
            self._closed = True
            self._release_lock()
            raise RuntimeError(
                f"{self.partial_path}: the HDF5 file was closed outside the recorder; "
                "left as a partial file"
            )
        try:
            h5.attrs["status"] = status
            h5.attrs["message"] = str(message)
            h5.attrs["finished"] = utc_now()
            h5.flush()
            self._timeseries.clear()
            self._clocks.clear()
            h5.close()
        except OSError as exc:
            # A full disk, a quota or an I/O error: the file cannot be finished.
            self._abandon()
            raise write_failure(self.path, exc) from None
        except BaseException:
            self._abandon(keep_partial=True)
            raise
        self._closed = True
        self._publish()
        return self.path

    def _check_room(self, nbytes: int) -> None:
        """Refuse a write the disk (or the file size limit) has no room for.

        Checked before HDF5 runs out of space: once it has, it can neither
        finish nor close the file cleanly. The file is then abandoned while
        the reserve still lets HDF5 close it.
        """
        room = room_left(self.partial_path)
        if room is None or room[0] >= nbytes + self._reserve:
            return
        self._abandon()
        raise write_failure(self.path, OSError(room[1], os.strerror(room[1])))

    def _release_lock(self) -> None:
        release_run_file(self.path, self._lock_fd)
        self._lock_fd = None

    def _abandon(self, keep_partial: bool = False) -> None:
        """Close without writing more, remove the temporary file (unless kept), unlock."""
        self._closed = True
        file = getattr(self, "_file", None)
        self._file = None
        datasets = [*self._timeseries.values(), *self._clocks.values()]
        self._timeseries.clear()
        self._clocks.clear()
        if file is not None and not quiet_release(*datasets, file):
            # HDF5 still holds the file: empty it to give back the space.
            with contextlib.suppress(OSError):
                os.truncate(self.partial_path, 0)
        if not keep_partial:
            with contextlib.suppress(OSError):
                os.remove(self.partial_path)
        self._release_lock()

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
        if isinstance(exc, OSError) and is_out_of_space(exc) and not self._closed:
            # Nothing more can be written, not even the failure: remove the
            # partial file and say why in one sentence.
            self._abandon()
            raise write_failure(self.path, exc) from None
        if issubclass(exc_type, KeyboardInterrupt):
            message = "interrupted"
        else:
            message = f"{exc_type.__name__}: {exc}"
        try:
            self.close("failed", message)
        except RunWriteError:
            raise
        except Exception as close_error:  # keep the original exception visible
            warnings.warn(
                f"{self.path}: could not close the run file after a failure: {close_error}",
                RuntimeWarning,
                stacklevel=2,
            )


def add_run_attrs(path: str | os.PathLike[str], attrs: Mapping[str, Any]) -> tuple[str, str]:
    """Add root attributes to a finished run file, as :meth:`RunRecorder.set_attr` would.

    Parameters
    ----------
    path : path-like
        A closed run file (not ``.partial``).
    attrs : mapping
        Attribute name to value; dicts are stored as JSON and listed in
        ``json_attrs``. Names the recorder manages are refused.

    Returns
    -------
    (str, str)
        The file's ``status`` and ``message``.
    """
    reserved = sorted(set(attrs) & RESERVED_ATTRS)
    if reserved:
        raise ValueError(f"add_run_attrs: {', '.join(reserved)} managed by the recorder")
    with h5py.File(path, "r+") as f:
        json_attrs = json.loads(f.attrs.get(JSON_ATTRS, "[]"))
        for key, value in attrs.items():
            if isinstance(value, dict):
                value = json.dumps(value, sort_keys=True)
                if key not in json_attrs:
                    json_attrs.append(key)
            f.attrs[key] = value
        f.attrs[JSON_ATTRS] = json.dumps(json_attrs)
        return str(f.attrs["status"]), str(f.attrs["message"])
