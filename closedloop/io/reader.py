"""Read run files back: :func:`load_run` into a :class:`RunData`, the xarray export,
and the light look-ups a sweep needs (:func:`read_run_status`).

The layout is documented in :mod:`closedloop.io.layout` and
``docs/hdf5-layout.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from closedloop.io.coords import COORDINATE_ATTR, SCALE_ATTRS
from closedloop.io.layout import (
    FORMAT_VERSION,
    JSON_ATTRS,
    METRICS,
    PARTIAL_SUFFIX,
    STATUSES,
    TIMESERIES,
    partial_path,
    plain,
    to_json,
)

__all__ = ["FREQUENCY", "RunData", "load_run", "read_run_status"]

#: Frequency axis of the spectra (Hz), ``spectra/frequency_hz`` before version 3.
FREQUENCY = "spectra/frequency"
OLD_FREQUENCY = "spectra/frequency_hz"


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
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

    def _summary_rows(self) -> list[tuple[str, str]]:
        # (label, value) rows shared by the text and the HTML summaries
        cfg = self.config
        rows = [
            ("status", self.status),
            ("model", str(cfg.get("model", {}).get("name", "?"))),
            ("controller", str(cfg.get("controller", {}).get("name", "?"))),
            ("instances", str(self.attrs.get("n_instances", "?"))),
            ("duration", f"{cfg.get('duration_s', '?')} s"),
            ("series", ", ".join(self.timeseries) or "none"),
        ]
        for name, value in list(self.metrics.items())[:8]:
            v = np.asarray(value, dtype=float)
            shown = f"{float(np.nanmean(v)):.4g}" if v.size and np.isfinite(v).any() else "nan"
            unit = self.metric_units.get(name, "")
            rows.append((name, f"{shown} {unit}".strip() + (" (mean)" if v.size > 1 else "")))
        if len(self.metrics) > 8:
            rows.append(("...", f"{len(self.metrics) - 8} more metrics in .metrics"))
        return rows

    def __repr__(self) -> str:
        """A compact summary: status, model, controller, size, series and the first metrics."""
        body = "; ".join(f"{k}={v}" for k, v in self._summary_rows()[:6])
        name = self.config.get("name", self.path.stem)
        return f"<RunData {name!r}: {body}; {len(self.metrics)} metrics>"

    def _repr_html_(self) -> str:
        """The summary as an HTML table (Jupyter)."""
        import html

        cells = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in self._summary_rows()
        )
        name = html.escape(str(self.config.get("name", self.path.stem)))
        return f"<table><caption>RunData {name}</caption>{cells}</table>"

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
        rate_hz = ts_attrs.get("sampling_rate_hz", ts_attrs.get("sampling_rate"))
        if rate_hz is None:
            raise KeyError(f"time series {name!r} in {self.path} has no sampling_rate_hz")
        rate = float(rate_hz)
        start = float(ts_attrs.get("start_time_s", 0.0))
        return start + np.arange(self.timeseries[name].shape[-1]) / rate

    def to_xarray(self) -> Any:
        """Return the run as an :class:`xarray.Dataset`, one dimension per clock.

        Time series have dims ``("instance", <clock>)``, the clock being the
        one named in their ``dims`` attribute (``time_sensing``,
        ``time_control``, ``time_state``, ...; ``time_<name>`` for files before
        format version 3 or a series whose length differs from its clock's),
        with that clock's times in seconds as its coordinate; metrics have
        dims ``("instance",)`` or none (a metric whose name clashes with a
        time series is called ``metric_<name>``); other arrays are named by
        their path with ``/`` replaced by ``_`` and take their dims from their
        ``dims`` attribute when it has one, so the spectra have a frequency
        coordinate (Hz; ``spectra_frequency`` when the run records a
        ``frequency`` series, as closed-loop runs do) and
        ``.sel(spectra_frequency=20, method="nearest")`` works. Units and descriptions are in each
        variable's ``attrs``; root attributes in the dataset's ``attrs``
        (dicts as JSON strings).

        Returns
        -------
        xarray.Dataset

        Raises
        ------
        ImportError
            If xarray is not installed.
        """
        xr = _xarray("RunData.to_xarray")
        n = self.n_instances
        data_vars: dict[str, Any] = {}
        coords: dict[str, Any] = {"instance": np.arange(n)}
        for name, values in self.timeseries.items():
            ts_attrs = {k: plain(v) for k, v in self.timeseries_attrs[name].items()}
            dims_attr = str(ts_attrs.get("dims", ""))
            clock = dims_attr.split(",")[-1].strip() if "," in dims_attr else "time"
            times = self.time(name)
            if clock == "time" or (clock in coords and len(coords[clock][1]) != len(times)):
                clock = f"time_{name}"
            coords.setdefault(clock, (clock, times, {"units": "s", "long_name": "time"}))
            data_vars[name] = (("instance", clock), values, ts_attrs)
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
            attrs = {k: plain(v) for k, v in self.array_attrs.get(key, {}).items()}
            array_dims = attrs.get("dims")
            dims = tuple(d.strip() for d in array_dims.split(",")) if array_dims else ()
            if key == FREQUENCY:
                dims = ("frequency",)  # also in files older than version 3
            if len(dims) != values.ndim:
                dims = tuple(f"{var}_dim_{i}" for i in range(values.ndim))
            # A dimension named like a variable would turn that variable into a
            # coordinate: prefix such a dimension with the array's group.
            group = key.rsplit("/", 1)[0].replace("/", "_") if "/" in key else var
            own = dims == (key.rsplit("/", 1)[-1],)
            dims = tuple(f"{group}_{d}" if d in taken and d != "instance" else d for d in dims)
            if own:
                coords[dims[0]] = (dims, values, attrs)  # a coordinate, e.g. frequency
            else:
                data_vars[var] = (dims, values, attrs)
        attrs = {
            k: (to_json(v) if isinstance(v, dict | list) else v) for k, v in self.attrs.items()
        }
        return xr.Dataset(data_vars=data_vars, coords=coords, attrs=attrs)

    def to_dataframe(self, clock: str = "time_control") -> Any:
        """The time series of one clock as a long :class:`pandas.DataFrame`.

        Parameters
        ----------
        clock : str, optional
            A time dimension of :meth:`to_xarray`, e.g. ``"time_sensing"``
            or ``"time_control"`` (default).

        Returns
        -------
        pandas.DataFrame
            Indexed by ``(instance, <clock>)`` (times in s), one column per
            series of that clock: ``n * T`` rows, never a product of clocks.

        Raises
        ------
        KeyError
            If the run has no such clock (the message lists those it has).
        """
        ds = self.to_xarray()
        clocks = sorted(d for d in ds.dims if d.startswith("time"))
        if clock not in clocks:
            raise KeyError(f"{self.path}: no clock {clock!r}; clocks: {', '.join(clocks)}")
        names = [k for k, v in ds.data_vars.items() if v.dims == ("instance", clock)]
        return ds[names].to_dataframe()


def _xarray(what: str) -> Any:
    try:
        import xarray as xr
    except ImportError as err:
        raise ImportError(
            f"{what} needs xarray, which is not installed: pip install 'closedloop[xarray]'"
        ) from err
    return xr


def _check_finished(path: Path) -> None:
    """Refuse a ``.partial`` or missing run file with a sentence saying why."""
    if path.name.endswith(PARTIAL_SUFFIX):
        raise ValueError(
            f"{path} is a partial file: the run did not finish (it is still running, "
            "or its process was killed); there are no complete results to load"
        )
    if not path.exists():
        partial = partial_path(path)
        if partial.exists():
            raise FileNotFoundError(
                f"{path} does not exist, but {partial.name} does: the run did not finish "
                "(it is still running, or its process was killed)"
            )
        raise FileNotFoundError(f"{path}: no such run file")


def load_run(path: str | os.PathLike[str], *, data: bool = True, image: Any = None) -> RunData:
    """Read a finished run file.

    Parameters
    ----------
    path : str or path-like
        File written by :class:`~closedloop.io.hdf5.RunRecorder`.
    data : bool, optional
        Read the time series and other arrays (default). With False, only
        the root attributes and the metrics are read (fast, for tables of
        many runs); :attr:`RunData.timeseries` and :attr:`RunData.arrays`
        are then empty.
    image : file-like, optional
        A binary buffer (e.g. :class:`io.BytesIO`) holding the HDF5 file,
        as :class:`~closedloop.io.memory.MemoryRunRecorder` writes it; then
        ``path`` only names the run and the disk is not read.

    Returns
    -------
    RunData
        Everything in the file (or its attributes and metrics), in memory.

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
    if image is None:
        _check_finished(path)
    with h5py.File(path if image is None else image, "r") as f:
        raw_attrs = {k: plain(v) for k, v in f.attrs.items()}
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
            json_keys += list(json.loads(raw_attrs.get(JSON_ATTRS, "[]")))
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
            if not isinstance(obj, h5py.Dataset) or COORDINATE_ATTR in obj.attrs:
                return
            ds_attrs = {k: plain(v) for k, v in obj.attrs.items() if k not in SCALE_ATTRS}
            top, _, rest = name.partition("/")
            if top == TIMESERIES and rest and "/" not in rest:
                timeseries[rest] = obj[()]
                timeseries_attrs[rest] = ds_attrs
            elif top == METRICS and rest and "/" not in rest:
                metrics[rest] = np.asarray(obj[()])
                metric_units[rest] = str(ds_attrs.get("units", ""))
                metric_descriptions[rest] = str(ds_attrs.get("description", ""))
            else:
                arrays[name] = np.asarray(obj[()])
                array_attrs[name] = ds_attrs

        if data:
            f.visititems(visit)
        elif METRICS in f:
            f[METRICS].visititems(lambda name, obj: visit(f"{METRICS}/{name}", obj))

    if int(version) < 3 and OLD_FREQUENCY in arrays:
        # Version 3 renamed the spectra's frequency axis to be its coordinate.
        arrays[FREQUENCY] = arrays.pop(OLD_FREQUENCY)
        array_attrs[FREQUENCY] = array_attrs.pop(OLD_FREQUENCY)
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


def read_run_status(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Status, message and wall time of a finished run file, without reading its data.

    Parameters
    ----------
    path : path-like
        A run file.

    Returns
    -------
    dict or None
        ``status`` (``"complete"`` or ``"failed"``), ``error`` (the file's
        ``message``) and ``wall_s`` (the ``wall_s`` attribute a sweep adds, s;
        NaN without it); None when the file is missing, unreadable or not
        finished.
    """
    try:
        with h5py.File(path, "r") as f:
            attrs = f.attrs
            status = plain(attrs.get("status", ""))
            message = plain(attrs.get("message", ""))
            wall = attrs.get("wall_s", math.nan)
    except (OSError, KeyError):
        return None
    if str(status) not in STATUSES:
        return None
    return {"status": str(status), "error": str(message), "wall_s": float(wall)}
