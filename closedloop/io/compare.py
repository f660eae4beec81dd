"""Compare the results of two runs: what ``closedloop rerun`` reports.

The result of a run is its data: time series, metrics, spectra, events and
other arrays. Root attributes that say when, where and with what software a
file was written (``created``, ``finished``, ``provenance``, a sweep's wall
time) are not the result and are not compared; :func:`provenance_changes`
lists how the software differs, to explain a difference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from closedloop.io.reader import RunData

__all__ = ["provenance_changes", "result_differences"]


def _differs(a: np.ndarray, b: np.ndarray) -> str | None:
    """Why two arrays differ (shape, dtype or values), None if bit-identical."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return f"shape {a.shape} against {b.shape}"
    if a.dtype != b.dtype:
        return f"dtype {a.dtype} against {b.dtype}"
    if a.dtype.kind in "fc":
        same = np.array_equal(a, b, equal_nan=True)
    else:
        same = np.array_equal(a, b)
    if same:
        return None
    if a.dtype.kind in "fc":
        finite = np.isfinite(a) & np.isfinite(b)
        gap = float(np.max(np.abs(a[finite] - b[finite]), initial=0.0))
        return f"{int(np.sum(a != b))} of {a.size} values differ (largest gap {gap:.3g})"
    return f"{int(np.sum(a != b))} of {a.size} values differ"


def result_differences(first: RunData, second: RunData) -> list[str]:
    """Every way the results of two runs differ, one sentence each.

    Parameters
    ----------
    first, second : RunData
        Runs read with :func:`~closedloop.io.reader.load_run`.

    Returns
    -------
    list of str
        Empty when status, time series, metrics and every other array
        (spectra, events, bursts) are bit-identical (NaN equal to NaN).
    """
    out: list[str] = []
    if first.status != second.status:
        out.append(f"status {first.status!r} against {second.status!r}")
    groups: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("time series", first.timeseries, second.timeseries),
        ("metric", first.metrics, second.metrics),
        ("array", first.arrays, second.arrays),
    ]
    for what, a, b in groups:
        for name in sorted(set(a) ^ set(b)):
            out.append(f"{what} {name!r} is only in the {'first' if name in a else 'second'} run")
        for name in sorted(set(a) & set(b)):
            why = _differs(a[name], b[name])
            if why is not None:
                out.append(f"{what} {name!r}: {why}")
    return out


def provenance_changes(first: RunData, second: RunData) -> list[str]:
    """How the software of two runs differs (versions, commit, kernels), one line each."""

    def flat(run: RunData) -> dict[str, Any]:
        prov = run.attrs.get("provenance")
        prov = prov if isinstance(prov, dict) else {}
        out = {k: v for k, v in prov.items() if k not in ("dependencies", "command_line")}
        deps = prov.get("dependencies")
        if isinstance(deps, dict):
            out.update((f"dependencies.{k}", v) for k, v in deps.items())
        out["closedloop_version"] = run.attrs.get("closedloop_version")
        return out

    a, b = flat(first), flat(second)
    return [
        f"{key}: {a.get(key)!r} -> {b.get(key)!r}"
        for key in sorted(set(a) | set(b))
        if a.get(key) != b.get(key) and key != "hostname"
    ]
