"""Coordinates of a run file: HDF5 dimension scales that netCDF readers understand.

Each axis of a dataset in ``timeseries/``, ``metrics/``, ``spectra/`` and
``bursts/`` is attached (``h5py`` ``dims[i].attach_scale``) to a 1-D
coordinate dataset in the same group whose name is the dimension's name:
``instance`` (``0..n-1``), one time coordinate per clock (``time_sensing``,
``time_control``, ...; seconds, grown as the series grow), ``frequency`` (Hz)
for spectra, and ``event`` (``0..m-1``, grown as events are appended) for the
columns of each ``events/<name>`` table. ``xarray.open_dataset(path,
group="timeseries", engine="h5netcdf")`` (or any other group) then gives
labelled dimensions and coordinates without closedloop installed. The
layout is documented in :mod:`closedloop.io.layout`.
"""

from __future__ import annotations

import h5py
import numpy as np

__all__ = [
    "COORDINATE_ATTR",
    "SCALE_ATTRS",
    "attach_dims",
    "EVENT_DIM",
    "clock_coordinate",
    "event_coordinate",
    "extend_clock",
    "extend_events",
    "index_coordinate",
]

#: Dimension of every column of an events table (``events/<name>/event``).
EVENT_DIM = "event"

#: Attribute marking a coordinate the recorder made (readers skip these datasets).
COORDINATE_ATTR = "closedloop_coordinate"
#: HDF5/netCDF bookkeeping attributes readers leave out of a dataset's attributes.
SCALE_ATTRS = frozenset(
    {
        "CLASS",
        "NAME",
        "DIMENSION_LIST",
        "REFERENCE_LIST",
        "_Netcdf4Dimid",
        "_Netcdf4Coordinates",
        COORDINATE_ATTR,
    }
)


def index_coordinate(group: h5py.Group, name: str, size: int, long_name: str) -> h5py.Dataset:
    """The coordinate ``group/<name>`` = ``0..size-1``, made once per group.

    Parameters
    ----------
    group : h5py.Group
        Group the coordinate lives in (netCDF dimensions are per group here).
    name : str
        Dimension name, e.g. ``"instance"``.
    size : int
        Its length.
    long_name : str
        What the index counts.

    Returns
    -------
    h5py.Dataset
        The dimension scale.
    """
    if name in group:
        return group[name]
    ds = group.create_dataset(name, data=np.arange(int(size), dtype=np.int64))
    ds.make_scale(name)
    ds.attrs["units"] = "1"
    ds.attrs["long_name"] = long_name
    ds.attrs[COORDINATE_ATTR] = 1
    return ds


def clock_coordinate(
    group: h5py.Group, name: str, rate_hz: float, start_time_s: float
) -> h5py.Dataset:
    """The growable time coordinate of one clock, ``group/<name>`` in seconds.

    Sample ``k`` is at ``start_time_s + k / rate_hz``; the values are written
    by :func:`extend_clock` as the series of the clock grow.

    Raises
    ------
    ValueError
        If a clock of that name exists with another rate or start.
    """
    if name in group:
        ds = group[name]
        if float(ds.attrs["sampling_rate_hz"]) != float(rate_hz) or float(
            ds.attrs["start_time_s"]
        ) != float(start_time_s):
            raise ValueError(
                f"clock {name!r} runs at {ds.attrs['sampling_rate_hz']} Hz from "
                f"{ds.attrs['start_time_s']} s; a series at {rate_hz} Hz from "
                f"{start_time_s} s needs another clock name"
            )
        return ds
    ds = group.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(4096,), dtype="f8")
    ds.make_scale(name)
    ds.attrs["units"] = "s"
    ds.attrs["long_name"] = f"time of the {name.removeprefix('time_')} clock"
    ds.attrs["sampling_rate_hz"] = float(rate_hz)
    ds.attrs["start_time_s"] = float(start_time_s)
    ds.attrs[COORDINATE_ATTR] = 1
    return ds


def extend_clock(
    coord: h5py.Dataset,
    length: int,
    *,
    rate_hz: float | None = None,
    start_time_s: float | None = None,
) -> None:
    """Grow a clock coordinate to ``length`` samples (no-op if it is as long already).

    ``rate_hz`` (Hz) and ``start_time_s`` (s), when given, must be the
    clock's own attributes; a writer appending often passes them to skip
    reading the attributes on every call.
    """
    have = coord.shape[0]
    if length <= have:
        return
    rate = float(coord.attrs["sampling_rate_hz"]) if rate_hz is None else rate_hz
    start = float(coord.attrs["start_time_s"]) if start_time_s is None else start_time_s
    coord.resize(length, axis=0)
    # Same formula as RunData.time, so file and reader agree to the bit.
    coord[have:length] = start + np.arange(have, length) / rate


def event_coordinate(group: h5py.Group) -> h5py.Dataset:
    """The growable index coordinate ``group/event`` of an events table (empty at first).

    Parameters
    ----------
    group : h5py.Group
        The table's group, ``events/<name>``.

    Returns
    -------
    h5py.Dataset
        The dimension scale; :func:`extend_events` grows it.
    """
    ds = group.create_dataset(
        EVENT_DIM, shape=(0,), maxshape=(None,), chunks=(65536,), dtype=np.int64
    )
    ds.make_scale(EVENT_DIM)
    ds.attrs["units"] = "1"
    ds.attrs["long_name"] = "event index, in the order recorded"
    ds.attrs[COORDINATE_ATTR] = 1
    return ds


def extend_events(coord: h5py.Dataset, length: int) -> None:
    """Grow an events table's index coordinate to ``length`` (no-op if as long already)."""
    have = coord.shape[0]
    if length > have:
        coord.resize(length, axis=0)
        coord[have:length] = np.arange(have, length)


def attach_dims(ds: h5py.Dataset, dims: tuple[str, ...], n: int) -> None:
    """Attach each axis of ``ds`` to the coordinate named by ``dims``, in its group.

    ``instance`` is made when missing (length ``n``); a 1-D dataset whose
    name is its own dimension becomes that dimension's coordinate; any other
    missing dimension gets an index coordinate of the axis's length.
    """
    group = ds.parent
    own = ds.name.rsplit("/", 1)[-1]
    for axis, dim in enumerate(dims):
        if dim == own and ds.ndim == 1:
            ds.make_scale(dim)
            continue
        if dim == "instance":
            scale = index_coordinate(group, "instance", n, "instance (batch index)")
        elif dim in group:
            scale = group[dim]
        else:
            scale = index_coordinate(group, dim, ds.shape[axis], f"{dim} index")
        ds.dims[axis].attach_scale(scale)
