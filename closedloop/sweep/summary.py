"""A sweep's results in one table, and the figures drawn from it.

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

:func:`plot_sweep` draws a heatmap of a metric over two swept parameters, a
line over one, or efficacy against energy with the Pareto front marked.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "SUMMARY_CSV",
    "SUMMARY_H5",
    "collect_summary",
    "load_summary",
    "load_summary_meta",
    "pareto_front",
    "plot_sweep",
    "summarize_sweep",
]

SUMMARY_H5 = "summary.h5"
SUMMARY_CSV = "summary.csv"
SUMMARY_FORMAT = "closedloop-sweep-summary"
SUMMARY_VERSION = 1
#: Columns before the parameters, in order.
RUN_COLUMNS = ("run_id", "status", "error", "replicate", "seed", "n_instances", "wall_s")


def _attr(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_run(path: Path) -> dict[str, Any] | None:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            attrs = {k: _attr(v) for k, v in f.attrs.items()}
            metrics = {}
            units = {}
            if "metrics" in f:
                for name, ds in f["metrics"].items():
                    values = np.asarray(ds[()], dtype=float)
                    metrics[name] = (
                        float(np.nanmean(values))
                        if values.size and np.isfinite(values).any()
                        else math.nan
                    )
                    units[name] = _attr(ds.attrs.get("units", ""))
    except OSError:
        return None
    if "run_id" not in attrs:
        return None
    try:
        params = json.loads(attrs.get("sweep_params", "{}"))
    except (TypeError, json.JSONDecodeError):
        params = {}
    return {
        "run_id": str(attrs["run_id"]),
        "status": str(attrs.get("status", "")),
        "error": str(attrs.get("message", "")),
        "replicate": attrs.get("replicate", math.nan),
        "seed": str(attrs.get("seed", "")),
        "n_instances": attrs.get("n_instances", math.nan),
        "wall_s": attrs.get("wall_s", math.nan),
        "params": params,
        "metrics": metrics,
        "units": units,
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
    from closedloop.metrics import METRIC_INFO

    known = [m for m in METRIC_INFO if m in names]
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
    runs_dir = out_dir / "runs"
    rows = []
    for path in sorted(runs_dir.glob("*.h5")):
        row = _read_run(path)
        if row is not None:
            rows.append(row)
    rows.sort(key=lambda r: r["run_id"])
    param_order: list[str] = []
    manifest = out_dir / "manifest.json"
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
    import h5py

    out_dir = Path(out_dir)
    if not (out_dir / "runs").is_dir():
        raise FileNotFoundError(f"{out_dir}: not a sweep directory (no runs/ in it)")
    columns, meta = collect_summary(out_dir)
    h5_path = out_dir / SUMMARY_H5
    tmp = h5_path.with_name(f".{SUMMARY_H5}.{os.getpid()}.tmp")
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = SUMMARY_FORMAT
        f.attrs["format_version"] = SUMMARY_VERSION
        f.attrs["columns"] = json.dumps(list(columns))
        f.attrs["param_columns"] = json.dumps(meta["param_columns"])
        f.attrs["metric_columns"] = json.dumps(meta["metric_columns"])
        f.attrs["metric_units"] = json.dumps(meta["metric_units"])
        now = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
        f.attrs["created"] = now.isoformat().replace("+00:00", "Z")
        group = f.create_group("columns")
        for name, values in columns.items():
            if values.dtype == object:
                group.create_dataset(
                    name, data=values.astype(str).tolist(), dtype=h5py.string_dtype()
                )
            else:
                group.create_dataset(name, data=values)
    os.replace(tmp, h5_path)
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
    import h5py

    path = Path(path)
    if path.is_dir():
        path = path / SUMMARY_H5
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no sweep summary; run: closedloop summarize {path.parent}"
        )
    with h5py.File(path, "r") as f:
        names = json.loads(f.attrs["columns"])
        columns = {}
        for name in names:
            ds = f["columns"][name]
            if h5py.check_string_dtype(ds.dtype) is not None:
                columns[name] = np.array(ds.asstr()[()], dtype=object)
            else:
                columns[name] = ds[()]
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
    import h5py

    path = Path(path)
    if path.is_dir():
        path = path / SUMMARY_H5
    with h5py.File(path, "r") as f:
        return {
            key: json.loads(f.attrs[key])
            for key in ("param_columns", "metric_columns", "metric_units")
        }


# ----------------------------------------------------------------------- figures


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


def _aggregate(
    columns: dict[str, np.ndarray], keys: Sequence[str], metric: str
) -> tuple[list[tuple], np.ndarray, np.ndarray, np.ndarray]:
    """Mean, standard deviation and count of ``metric`` for each distinct value of ``keys``."""
    complete = columns["status"] == "complete"
    groups: dict[tuple, list[float]] = {}
    for i in np.flatnonzero(complete):
        key = tuple(columns[k][i] for k in keys)
        groups.setdefault(key, []).append(float(columns[metric][i]))
    order = sorted(groups, key=lambda t: tuple(_sort_key(v) for v in t))
    mean = np.array(
        [np.nanmean(groups[k]) if np.isfinite(groups[k]).any() else np.nan for k in order]
    )
    std = np.array(
        [np.nanstd(groups[k]) if np.isfinite(groups[k]).any() else np.nan for k in order]
    )
    count = np.array([len(groups[k]) for k in order])
    return order, mean, std, count


def _sort_key(value: Any) -> tuple:
    if isinstance(value, float | np.floating | int):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _label(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:.4g}"
    return str(value)


def plot_sweep(
    out_dir: str | os.PathLike[str],
    *,
    x: str | None = None,
    y: str | None = None,
    metric: str = "beta_reduction",
    kind: str = "auto",
    efficacy: str = "beta_reduction",
    energy: str = "teed_relative",
    output: str | os.PathLike[str] | None = None,
) -> Path:
    """Draw a sweep's summary.

    Parameters
    ----------
    out_dir : path-like
        A sweep directory (its summary is built from the run files if missing).
    x, y : str, optional
        Swept parameters (key paths).
    metric : str
        Metric drawn by heatmaps and lines.
    kind : {"auto", "heatmap", "line", "pareto"}
        ``heatmap``: mean ``metric`` over ``x`` and ``y`` (other parameters
        and replicates averaged). ``line``: mean and standard deviation of
        ``metric`` against ``x``. ``pareto``: ``efficacy`` against
        ``energy`` for each parameter point (mean over replicates) with the
        Pareto front (least energy for the efficacy) marked. ``auto``:
        heatmap with ``x`` and ``y``, line with ``x`` only, else pareto.
    efficacy, energy : str
        Metrics of the Pareto plot (higher and lower is better).
    output : path-like, optional
        Figure file (default ``DIR/sweep_<kind>_<names>.png``).

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        For a name that is not a swept parameter or a metric of the summary.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    if not (out_dir / SUMMARY_H5).exists():
        summarize_sweep(out_dir)
    columns = load_summary(out_dir, as_frame=False)
    meta = load_summary_meta(out_dir)
    params, metrics, units = meta["param_columns"], meta["metric_columns"], meta["metric_units"]
    if kind == "auto":
        kind = "heatmap" if x and y else "line" if x else "pareto"
    if kind not in ("heatmap", "line", "pareto"):
        raise ValueError(f"kind must be auto, heatmap, line or pareto, got {kind!r}")

    def need_param(name: str | None, flag: str) -> str:
        if not name:
            raise ValueError(f"a {kind} plot needs {flag} PARAM; swept: {', '.join(params)}")
        if name not in params:
            raise ValueError(
                f"{flag} {name!r} is not a swept parameter; swept: {', '.join(params)}"
            )
        return name

    def need_metric(name: str, flag: str) -> str:
        if name not in metrics:
            raise ValueError(f"{flag} {name!r} is not a metric; metrics: {', '.join(metrics)}")
        return name

    fig, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
    n_complete = int(np.sum(columns["status"] == "complete"))
    if kind == "heatmap":
        x, y = need_param(x, "--x"), need_param(y, "--y")
        metric = need_metric(metric, "--metric")
        keys, mean, _, _ = _aggregate(columns, [x, y], metric)
        xs = sorted({k[0] for k in keys}, key=_sort_key)
        ys = sorted({k[1] for k in keys}, key=_sort_key)
        grid = np.full((len(ys), len(xs)), np.nan)
        for (vx, vy), value in zip(keys, mean, strict=True):
            grid[ys.index(vy), xs.index(vx)] = value
        image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
        ax.set_xticks(range(len(xs)), [_label(v) for v in xs], rotation=45 if len(xs) > 6 else 0)
        ax.set_yticks(range(len(ys)), [_label(v) for v in ys])
        if len(xs) * len(ys) <= 64:
            for (i, j), value in np.ndenumerate(grid):
                if np.isfinite(value):
                    ax.text(j, i, f"{value:.3g}", ha="center", va="center", color="w", fontsize=8)
        fig.colorbar(image, ax=ax, label=f"{metric} ({units.get(metric, '')})")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(f"{metric}, mean over the other parameters and replicates")
        name = f"heatmap_{metric}_{x}_{y}"
    elif kind == "line":
        x = need_param(x, "--x")
        metric = need_metric(metric, "--metric")
        keys, mean, std, _ = _aggregate(columns, [x], metric)
        xs = [k[0] for k in keys]
        numeric = all(isinstance(v, float | np.floating) for v in xs)
        pos = np.asarray(xs, dtype=float) if numeric else np.arange(len(xs))
        ax.plot(pos, mean, "o-", color="C0", label="mean")
        ax.fill_between(pos, mean - std, mean + std, color="C0", alpha=0.25, label="± 1 s.d.")
        if not numeric:
            ax.set_xticks(pos, [_label(v) for v in xs])
        elif len(xs) > 2 and np.all(pos > 0) and pos.max() / pos.min() > 50:
            ax.set_xscale("log")
        ax.set_xlabel(x)
        ax.set_ylabel(f"{metric} ({units.get(metric, '')})")
        ax.legend()
        ax.set_title(f"{metric} over {x}")
        name = f"line_{metric}_{x}"
    else:
        efficacy = need_metric(efficacy, "--efficacy")
        energy = need_metric(energy, "--energy")
        keys_e, eff, _, _ = _aggregate(columns, params, efficacy)
        keys_n, eng, _, _ = _aggregate(columns, params, energy)
        assert keys_e == keys_n
        front = pareto_front(eng, eff)
        ax.scatter(eng[~front], eff[~front], color="0.6", s=18, label="parameter point")
        order = np.flatnonzero(front)[np.argsort(eng[front])]
        ax.plot(eng[order], eff[order], "o-", color="C3", label="Pareto front")
        ax.set_xlabel(f"{energy} ({units.get(energy, '')}), lower is better")
        ax.set_ylabel(f"{efficacy} ({units.get(efficacy, '')}), higher is better")
        ax.legend()
        ax.set_title(f"efficacy against energy, {len(keys_e)} parameter points")
        name = f"pareto_{efficacy}_{energy}"
    fig.suptitle(f"{out_dir.name}: {n_complete} complete runs", fontsize=9)
    path = Path(output) if output is not None else out_dir / f"sweep_{_safe(name)}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)
