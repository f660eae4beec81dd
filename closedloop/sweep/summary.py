"""A sweep's results in one table.

:func:`summarize_sweep` reads every run file of a sweep directory
(``DIR/runs/*.h5``, nothing else, so the table can always be rebuilt) into
one row per run: its id, status, error text, replicate, seed, instances,
wall time, swept parameters (one column per key path) and metrics (the mean
over the run's instances). It writes ``DIR/summary.h5`` and
``DIR/summary.csv``; :func:`load_summary` reads the table back as a pandas
DataFrame when pandas is installed, else as a dict of numpy arrays.

``summary.h5`` layout (format version 1): root attributes ``format``
(``"closedloop-sweep-summary"``), ``format_version`` (1), ``columns``,
``param_columns`` and ``metric_columns`` (JSON lists of column names, in
order), ``metric_units`` (JSON object) and ``created``; one dataset per
column under ``/columns/<name>``, shape ``(n_runs,)``, float64 for numbers
(NaN where missing) or variable-length UTF-8 strings (lists and mappings as
JSON). Rows are sorted by run id.


Figures of a summary are drawn by :func:`closedloop.plotting.sweep.plot_sweep`.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from closedloop.io import load_run
from closedloop.io.provenance import utc_now
from closedloop.io.tables import read_column_table, read_table_attrs, write_column_table
from closedloop.metrics import METRIC_INFO, TRIGGER_METRIC_INFO
from closedloop.sweep.manifest import MANIFEST, RUNS_DIR

__all__ = [
    "RUN_COLUMNS",
    "SUMMARY_CSV",
    "SUMMARY_FORMAT",
    "SUMMARY_H5",
    "SUMMARY_VERSION",
    "collect_summary",
    "load_summary",
    "load_summary_meta",
    "pareto_front",
    "summarize_sweep",
]

SUMMARY_H5 = "summary.h5"
SUMMARY_CSV = "summary.csv"
SUMMARY_FORMAT = "closedloop-sweep-summary"
SUMMARY_VERSION = 1
#: Columns before the parameters, in order.
RUN_COLUMNS = ("run_id", "status", "error", "replicate", "seed", "n_instances", "wall_s")


def _read_run(path: Path) -> dict[str, Any] | None:
    """One row of the table from a run file; None for a file that is not a sweep's run."""
    try:
        run = load_run(path, data=False)
    except (OSError, ValueError):
        return None
    attrs = run.attrs
    if "run_id" not in attrs:
        return None
    params = attrs.get("sweep_params", {})
    metrics = {}
    for name, value in run.metrics.items():
        values = np.asarray(value, dtype=float)
        metrics[name] = (
            float(np.nanmean(values)) if values.size and np.isfinite(values).any() else math.nan
        )
    return {
        "run_id": str(attrs["run_id"]),
        "status": str(attrs.get("status", "")),
        "error": str(attrs.get("message", "")),
        "replicate": attrs.get("replicate", math.nan),
        "seed": str(attrs.get("seed", "")),
        "n_instances": attrs.get("n_instances", math.nan),
        "wall_s": attrs.get("wall_s", math.nan),
        "params": params if isinstance(params, dict) else {},
        "metrics": metrics,
        "units": dict(run.metric_units),
    }


def _column(values: Sequence[Any]) -> np.ndarray:
    """A float column when every present value is a number, else strings."""
    present = [v for v in values if v is not None]
    if all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in present):
        return np.array([math.nan if v is None else float(v) for v in values], dtype=float)
    out = []
    for v in values:
        if v is None:
            out.append("")
        elif isinstance(v, str):
            out.append(v)
        else:
            out.append(json.dumps(v, sort_keys=True))
    return np.array(out, dtype=object)


def _int_or(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _metric_order(names: set[str]) -> list[str]:
    known = [m for m in (*METRIC_INFO, *TRIGGER_METRIC_INFO) if m in names]
    return known + sorted(names - set(known))


def collect_summary(
    out_dir: str | os.PathLike[str],
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read every run file of a sweep into columns.

    Returns
    -------
    columns : dict of str to ndarray
        Column name to values, in order (see the module docstring).
    meta : dict
        ``param_columns``, ``metric_columns`` and ``metric_units``.
    """
    out_dir = Path(out_dir)
    runs_dir = out_dir / RUNS_DIR
    rows = []
    for path in sorted(runs_dir.glob("*.h5")):
        row = _read_run(path)
        if row is not None:
            rows.append(row)
    rows.sort(key=lambda r: r["run_id"])
    param_order: list[str] = []
    manifest = out_dir / MANIFEST
    if manifest.exists():
        try:
            param_order = list(json.loads(manifest.read_text()).get("parameters", []))
        except (OSError, json.JSONDecodeError):
            param_order = []
    all_params = {k for r in rows for k in r["params"]}
    params = [k for k in param_order if k in all_params] + sorted(all_params - set(param_order))
    metric_names = _metric_order({k for r in rows for k in r["metrics"]})
    units: dict[str, str] = {}
    for r in rows:
        for k, u in r["units"].items():
            units.setdefault(k, u)
    columns: dict[str, np.ndarray] = {}
    for name in RUN_COLUMNS:
        values = [r[name] for r in rows]
        if name in ("run_id", "status", "error", "seed"):
            columns[name] = np.array([str(v) for v in values], dtype=object)
        elif name in ("replicate", "n_instances"):
            columns[name] = np.array([_int_or(v, -1) for v in values], dtype=np.int64)
        else:
            columns[name] = np.array([float(v) for v in values], dtype=float)
    for key in params:
        columns[key] = _column([r["params"].get(key) for r in rows])
    for key in metric_names:
        columns[key] = np.array([r["metrics"].get(key, math.nan) for r in rows], dtype=float)
    meta = {"param_columns": params, "metric_columns": metric_names, "metric_units": units}
    return columns, meta


def summarize_sweep(out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``DIR/summary.h5`` and ``DIR/summary.csv`` from the run files.

    Parameters
    ----------
    out_dir : path-like
        A sweep directory.

    Returns
    -------
    (Path, Path)
        The HDF5 and CSV files.

    Raises
    ------
    FileNotFoundError
        When the directory has no ``runs/`` subdirectory.
    """
    out_dir = Path(out_dir)
    if not (out_dir / RUNS_DIR).is_dir():
        raise FileNotFoundError(f"{out_dir}: not a sweep directory (no runs/ in it)")
    columns, meta = collect_summary(out_dir)
    h5_path = write_column_table(
        out_dir / SUMMARY_H5,
        columns,
        {
            "format": SUMMARY_FORMAT,
            "format_version": SUMMARY_VERSION,
            "columns": json.dumps(list(columns)),
            "param_columns": json.dumps(meta["param_columns"]),
            "metric_columns": json.dumps(meta["metric_columns"]),
            "metric_units": json.dumps(meta["metric_units"]),
            "created": utc_now(),
        },
    )
    csv_path = out_dir / SUMMARY_CSV
    tmp = csv_path.with_name(f".{SUMMARY_CSV}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(list(columns))
        for i in range(len(columns["run_id"])):
            writer.writerow([_csv_cell(values[i]) for values in columns.values()])
    os.replace(tmp, csv_path)
    return h5_path, csv_path


def _csv_cell(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return "" if math.isnan(value) else repr(float(value))
    return str(value)


def load_summary(path: str | os.PathLike[str], *, as_frame: bool | None = None) -> Any:
    """Read a sweep's ``summary.h5``.

    Parameters
    ----------
    path : path-like
        The sweep directory or its ``summary.h5``.
    as_frame : bool, optional
        Return a :class:`pandas.DataFrame` (True), a dict of numpy arrays
        (False), or a DataFrame when pandas is installed (None, default).

    Returns
    -------
    pandas.DataFrame or dict of str to ndarray
        One row per run, columns in the order written (see the module
        docstring); :func:`load_summary_meta` tells parameter columns from
        metric columns.

    Raises
    ------
    FileNotFoundError
        When there is no summary (run ``closedloop summarize DIR``).
    ImportError
        When ``as_frame=True`` and pandas is not installed.
    """
    path = Path(path)
    if path.is_dir():
        path = path / SUMMARY_H5
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no sweep summary; run: closedloop summarize {path.parent}"
        )
    columns, _ = read_column_table(path)
    names = list(columns)
    if as_frame is False:
        return columns
    try:
        import pandas as pd
    except ImportError:
        if as_frame:
            raise ImportError(
                "load_summary(as_frame=True) needs pandas: pip install 'closedloop[pandas]'"
            ) from None
        return columns
    return pd.DataFrame(columns, columns=names)


def load_summary_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Column groups of a summary: ``param_columns``, ``metric_columns``, ``metric_units``."""
    path = Path(path)
    if path.is_dir():
        path = path / SUMMARY_H5
    attrs = read_table_attrs(path)
    return {
        key: json.loads(attrs[key]) for key in ("param_columns", "metric_columns", "metric_units")
    }


def pareto_front(energy: np.ndarray, efficacy: np.ndarray) -> np.ndarray:
    """Which points no other point beats on both energy (lower) and efficacy (higher).

    Parameters
    ----------
    energy, efficacy : ndarray, shape (m,)
        NaN points are never on the front.

    Returns
    -------
    ndarray of bool, shape (m,)
    """
    energy = np.asarray(energy, dtype=float)
    efficacy = np.asarray(efficacy, dtype=float)
    ok = np.isfinite(energy) & np.isfinite(efficacy)
    front = np.zeros(energy.shape, dtype=bool)
    best = -math.inf
    # Ascending energy, ties by descending efficacy: a point is on the front
    # when it is more effective than every cheaper one.
    for i in np.lexsort((-efficacy, energy)):
        if ok[i] and efficacy[i] > best:
            front[i] = True
            best = efficacy[i]
    return front
