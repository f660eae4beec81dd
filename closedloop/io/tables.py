"""HDF5 files that are tables rather than runs: a sweep's summary, benchmark results.

A column table holds root attributes and one dataset per column under
``/columns/<name>``, shape ``(n_rows,)``: float64 or int64 for numbers,
variable-length UTF-8 strings for text (numpy object arrays). The column
order is the JSON list in the root attribute ``columns`` when the writer
gives one.

A grouped file holds root attributes and, per group path (e.g.
``<scenario>/<controller>``), group attributes and float datasets.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from closedloop.io.layout import plain

__all__ = [
    "read_column_table",
    "read_table_attrs",
    "write_column_table",
    "write_grouped_arrays",
]

_COLUMNS = "columns"


def write_column_table(
    path: str | os.PathLike[str], columns: Mapping[str, np.ndarray], attrs: Mapping[str, Any]
) -> Path:
    """Write a column table atomically (temporary name, then :func:`os.replace`).

    Parameters
    ----------
    path : path-like
        The file.
    columns : mapping of str to ndarray
        Column name to values, all of one length; object arrays are stored
        as strings.
    attrs : mapping
        Root attributes, written in order (str, numbers).

    Returns
    -------
    Path
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with h5py.File(tmp, "w") as f:
        for key, value in attrs.items():
            f.attrs[key] = value
        group = f.create_group(_COLUMNS)
        for name, values in columns.items():
            if values.dtype == object:
                group.create_dataset(
                    name, data=values.astype(str).tolist(), dtype=h5py.string_dtype()
                )
            else:
                group.create_dataset(name, data=values)
    os.replace(tmp, path)
    return path


def read_table_attrs(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Root attributes of a table file, as plain Python values."""
    with h5py.File(path, "r") as f:
        return {key: plain(value) for key, value in f.attrs.items()}


def read_column_table(
    path: str | os.PathLike[str],
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a column table.

    Returns
    -------
    columns : dict of str to ndarray
        In the order of the ``columns`` attribute when there is one; strings
        as object arrays.
    attrs : dict
        Root attributes, as plain Python values.
    """
    with h5py.File(path, "r") as f:
        attrs = {key: plain(value) for key, value in f.attrs.items()}
        group = f[_COLUMNS]
        names = json.loads(attrs[_COLUMNS]) if _COLUMNS in attrs else list(group)
        columns = {}
        for name in names:
            ds = group[name]
            if h5py.check_string_dtype(ds.dtype) is not None:
                columns[name] = np.array(ds.asstr()[()], dtype=object)
            else:
                columns[name] = ds[()]
    return columns, attrs


def write_grouped_arrays(
    path: str | os.PathLike[str],
    attrs: Mapping[str, Any],
    groups: Iterable[tuple[str, Mapping[str, Any], Mapping[str, Any]]],
) -> None:
    """Write a file of groups of float arrays.

    Parameters
    ----------
    path : path-like
        The file (replaced).
    attrs : mapping
        Root attributes.
    groups : iterable of (str, mapping, mapping)
        Group path (created with its parents), its attributes and its
        datasets (name to array-like, stored as float64).
    """
    with h5py.File(path, "w") as f:
        for key, value in attrs.items():
            f.attrs[key] = value
        for group_path, group_attrs, arrays in groups:
            group = f.require_group(group_path)
            for key, value in group_attrs.items():
                group.attrs[key] = value
            for name, values in arrays.items():
                group.create_dataset(name, data=np.asarray(values, dtype=float))
