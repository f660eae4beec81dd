"""Run files: the only code that writes or reads them.

Modules: :mod:`~closedloop.io.layout` (the documented layout, its version and
names), :mod:`~closedloop.io.series` (the series of a run, defined once),
:mod:`~closedloop.io.hdf5` (the HDF5 writer), :mod:`~closedloop.io.reader`
(:func:`load_run` and friends), :mod:`~closedloop.io.provenance` and
:mod:`~closedloop.io.tables` (column tables: sweep summaries, benchmark
results).

A writer is chosen by ``output.format`` through :data:`RECORDERS`: a new
format is one module with a recorder class (the :class:`RunRecorder`
interface) plus one line in that mapping. :func:`open_recorder` also opens
:class:`~closedloop.io.memory.MemoryRunRecorder` (format
:data:`MEMORY_FORMAT`), which writes the same file into memory for
:func:`closedloop.run`.
"""

from __future__ import annotations

import os
from typing import Any

from closedloop.io.hdf5 import RunRecorder, add_run_attrs
from closedloop.io.layout import FORMAT_VERSION
from closedloop.io.memory import MEMORY_FORMAT, MemoryRunRecorder
from closedloop.io.nwb import NWBRunRecorder, export_nwb
from closedloop.io.provenance import collect_provenance
from closedloop.io.reader import RunData, load_run, read_run_status

__all__ = [
    "DEFAULT_FORMAT",
    "FORMAT_VERSION",
    "MEMORY_FORMAT",
    "MemoryRunRecorder",
    "RECORDERS",
    "RunData",
    "RunRecorder",
    "NWBRunRecorder",
    "add_run_attrs",
    "export_nwb",
    "load_run",
    "open_recorder",
    "recorder_options",
    "read_run_status",
]

#: Output format name to recorder class (``nwb``: the HDF5 run file and its
#: NWB export beside it, :mod:`closedloop.io.nwb`; needs pynwb).
RECORDERS: dict[str, type] = {"hdf5": RunRecorder, "nwb": NWBRunRecorder}
#: Format written when a config names none.
DEFAULT_FORMAT = "hdf5"


def recorder_options(config: Any) -> dict[str, Any]:
    """Recorder keywords of a validated config (output settings and provenance).

    Parameters
    ----------
    config : closedloop.config.schema.ExperimentConfig
        The run's config.

    Returns
    -------
    dict
        ``dtype``, ``compression``, ``series`` and ``decimate`` (from
        ``output``) and ``provenance`` (with the packages of the plugins the
        config names by dotted path, and the hostname if ``output.hostname``)
        for :class:`~closedloop.io.hdf5.RunRecorder`.
    """
    output = config.output
    plugins = [
        name
        for name in (config.model.name, config.controller.name)
        if isinstance(name, str) and "." in name
    ]
    return {
        "provenance": collect_provenance(plugins=plugins, hostname=output.hostname),
        "dtype": output.dtype,
        "compression": output.compression,
        "series": output.series,
        "decimate": dict(output.decimate),
    }


def open_recorder(fmt: str, path: str | os.PathLike[str], **kwargs: Any) -> Any:
    """Open a recorder of output format ``fmt`` for one run.

    Parameters
    ----------
    fmt : str
        A key of :data:`RECORDERS`, e.g. ``"hdf5"``, or :data:`MEMORY_FORMAT`.
    path : path-like
        The run's final file path.
    **kwargs
        ``config``, ``seed``, ``n``, ``closedloop_version`` and optionally
        ``provenance``: see :class:`~closedloop.io.hdf5.RunRecorder`.

    Returns
    -------
    RunRecorder or another recorder of the same interface

    Raises
    ------
    ValueError
        For a format with no recorder.
    """
    try:
        cls = MemoryRunRecorder if fmt == MEMORY_FORMAT else RECORDERS[fmt]
    except KeyError:
        known = ", ".join(sorted(RECORDERS))
        raise ValueError(f"no recorder for output format {fmt!r}; known: {known}") from None
    return cls(path, **kwargs)
