"""Fixtures shared by the test files.

* ``experiment_path(name)``: the shipped ``experiments/<name>.yaml``.
* ``experiment_config(name)``: that file's content as a fresh dict, to change
  and hand to ``write_experiment``.
* ``write_experiment(config, name="experiment")``: write a dict or YAML text
  to ``<tmp_path>/<name>.yaml`` and return the path.
* ``feed_controller(controller, features, period_s=..., command="amplitude_ma")``:
  reset a controller for the batch, call ``update`` once per period with
  row ``k`` of every feature series and return that command per period.
* ``pulse_drive(n_steps, dt_s, onsets_s, amplitude_ma, width_s)``: the mean
  cathodic current per integration step (mA) of square pulses, what the
  device hands a model; a pulse that straddles a step boundary puts the rest
  of its charge into the next step.
* ``band_powers_from_lfp(run)``: (stimulated, baseline) band power per
  instance of a loaded run, recomputed from its recorded LFP with scipy.
* ``teed_bounds_from_series(series, impedance_ohm)``: (lower, upper) bounds
  on the TEED (J) per instance from recorded ``amplitude``, ``pulse_width``
  and ``pulse_count`` series (per control period), by the device's formula.
* ``assert_teed_matches_record(run)``: a loaded run's ``teed_j`` lies within
  the bounds its recorded amplitude, pulse width and pulse count series give
  by the device's documented formula, and ``teed_relative`` is ``teed_j``
  over continuous stimulation at ``metrics.reference``.

Markers (registered in pyproject.toml): ``slow`` (more than about 5 s),
``brian`` (builds Brian2 networks), ``dask`` (starts a Dask cluster). The
fast suite is ``pytest -m "not slow and not brian and not dask"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def _experiment_path(name: str) -> Path:
    path = EXPERIMENTS / f"{name}.yaml"
    if not path.is_file():
        shipped = sorted(p.stem for p in EXPERIMENTS.glob("*.yaml"))
        raise FileNotFoundError(f"no experiment {name!r} in {EXPERIMENTS}; shipped: {shipped}")
    return path


@pytest.fixture
def experiment_path() -> Callable[[str], Path]:
    """``experiment_path(name)``: the path of ``experiments/<name>.yaml``."""
    return _experiment_path


@pytest.fixture
def experiment_config() -> Callable[[str], dict[str, Any]]:
    """``experiment_config(name)``: ``experiments/<name>.yaml`` as a new dict."""

    def load(name: str) -> dict[str, Any]:
        return yaml.safe_load(_experiment_path(name).read_text())

    return load


@pytest.fixture
def write_experiment(tmp_path: Path) -> Callable[..., Path]:
    """``write_experiment(config, name="experiment")``: a YAML file in ``tmp_path``."""

    def write(config: Mapping[str, Any] | str, name: str = "experiment") -> Path:
        if isinstance(config, str):
            text = config
        else:
            text = yaml.safe_dump(dict(config), sort_keys=False)
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        return path

    return write


def _pulse_drive(
    n_steps: int,
    dt_s: float,
    onsets_s: np.ndarray,
    amplitude_ma: float,
    width_s: float,
) -> np.ndarray:
    onsets = np.asarray(onsets_s, dtype=float)
    drive = np.zeros(n_steps)
    idx = np.floor(onsets / dt_s + 1e-9).astype(int)
    covered = np.minimum(width_s, (idx + 1) * dt_s - onsets)
    drive[idx] += amplitude_ma * covered / dt_s
    spill = width_s - covered
    nxt = idx + 1 < n_steps
    drive[idx[nxt] + 1] += amplitude_ma * spill[nxt] / dt_s
    return drive


@pytest.fixture
def pulse_drive() -> Callable[..., np.ndarray]:
    """``pulse_drive(n_steps, dt_s, onsets_s, amplitude_ma, width_s)``, mA per step."""
    return _pulse_drive


def _feed_controller(
    controller: Any,
    features: Mapping[str, Any],
    *,
    period_s: float,
    command: str = "amplitude_ma",
) -> np.ndarray:
    series = {}
    for name, values in features.items():
        values = np.asarray(values, dtype=float)
        series[name] = values[:, None] if values.ndim == 1 else values
    periods, n = next(iter(series.values())).shape
    controller.reset(n, np.random.default_rng(0))
    out = []
    for k in range(periods):
        rows = {name: values[k].copy() for name, values in series.items()}
        out.append(controller.update((k + 1) * period_s, rows)[command])
    return np.array(out)


@pytest.fixture
def feed_controller() -> Callable[..., np.ndarray]:
    """``feed_controller(controller, {name: (periods, n) or (periods,)}, period_s=...)``.

    Resets the controller for ``n`` instances (generator seeded with 0),
    calls ``update((k + 1) * period_s, row k of each feature)`` for every
    period ``k`` and returns the ``command`` (default ``"amplitude_ma"``) of
    each call, shape ``(periods, n)``.
    """
    return _feed_controller


def _band_powers_from_lfp(run: Any) -> tuple[np.ndarray, np.ndarray]:
    """(stimulated, baseline) band power per instance, recomputed with scipy.

    The metrics' definition (closedloop.metrics) applied independently to the
    LFP the run file holds: Welch PSD (Hann, 50 % overlap, constant detrend)
    after ``metrics.discard_s``, integrated over the closed band ``band_hz``.
    """
    from scipy import signal

    fs = run.timeseries_attrs["lfp"]["sampling_rate_hz"]
    m = run.config["metrics"]
    skip = int(round(m["discard_s"] * fs))
    nperseg = int(round(m["segment_s"] * fs))
    lo, hi = m["band_hz"]

    def band_power(x: np.ndarray) -> np.ndarray:
        f, psd = signal.welch(x[:, skip:], fs=fs, window="hann", nperseg=nperseg,
                              noverlap=nperseg // 2, detrend="constant", axis=1)  # fmt: skip
        return psd[:, (f >= lo) & (f <= hi)].sum(axis=1) * (f[1] - f[0])

    return band_power(run.timeseries["lfp"]), band_power(run.timeseries["lfp_baseline"])


@pytest.fixture
def band_powers_from_lfp() -> Callable[[Any], tuple[np.ndarray, np.ndarray]]:
    """``band_powers_from_lfp(run)``: (stimulated, baseline) band power per instance."""
    return _band_powers_from_lfp


def _teed_bounds_from_series(
    series: Mapping[str, np.ndarray], impedance_ohm: float
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on the TEED (J) each instance's device delivered, from its record.

    The documented formula (Koss et al. 2005; closedloop.device): each
    biphasic pulse costs ``I**2 * R * 2 * pw``. The record holds, at the end
    of every control period, the delivered amplitude, the pulse width and the
    number of pulses so far; the amplitude starts at 0 mA. Within a period
    with one command in force the amplitude moves monotonically, so each of
    the period's pulses lies between the amplitudes (and widths) at the
    period's two ends. The lower bound leaves out one pulse at the largest
    amplitude: the run may end inside a pulse, and a pulse may straddle a
    period boundary.
    """
    amp = series["amplitude"] * 1e-3  # A
    width = series["pulse_width"] * 1e-6  # s, per phase
    n = amp.shape[0]
    amp_before = np.hstack([np.zeros((n, 1)), amp[:, :-1]])
    width_before = np.hstack([width[:, :1], width[:, :-1]])
    pulses = np.diff(series["pulse_count"], axis=1, prepend=0.0)
    lo = np.minimum(amp, amp_before) ** 2 * np.minimum(width, width_before)
    hi = np.maximum(amp, amp_before) ** 2 * np.maximum(width, width_before)
    lower = impedance_ohm * 2.0 * ((pulses * lo).sum(axis=1) - hi.max(axis=1))
    upper = impedance_ohm * 2.0 * (pulses * hi).sum(axis=1)
    return lower, upper


def _assert_teed_matches_record(run: Any) -> None:
    lower, upper = _teed_bounds_from_series(run.timeseries, run.config["device"]["impedance_ohm"])
    teed = run.metrics["teed_j"]
    assert np.all((lower <= teed) & (teed <= upper)), (lower, teed, upper)
    # Continuous biphasic pulses at the reference settings for the run's
    # duration: I**2 * R * (2 * pw) * f * T.
    ref = run.config["metrics"]["reference"]
    reference_j = (
        (ref["amplitude_ma"] * 1e-3) ** 2
        * run.config["device"]["impedance_ohm"]
        * 2.0
        * ref["pulse_width_us"]
        * 1e-6
        * ref["frequency_hz"]
        * run.config["duration_s"]
    )
    np.testing.assert_allclose(run.metrics["teed_relative"], teed / reference_j, rtol=1e-12)


@pytest.fixture
def teed_bounds_from_series() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """``teed_bounds_from_series(series, impedance_ohm)``: (lower, upper) TEED, J."""
    return _teed_bounds_from_series


@pytest.fixture
def assert_teed_matches_record() -> Callable[[Any], None]:
    """``assert_teed_matches_record(run)``: TEED metrics recomputed from the record."""
    return _assert_teed_matches_record
