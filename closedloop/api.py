"""One call from an experiment (a dict or a YAML path) to its run, for notebooks.

:func:`run` validates the experiment exactly as ``closedloop run`` does
(:func:`closedloop.config.validate_config`), simulates it with its
no-stimulation baseline when the config asks for one, and returns the run in
memory as a :class:`~closedloop.io.RunData` (series, metrics and their
baseline values, config, provenance). Nothing touches the disk: the run file
is written into memory by :class:`~closedloop.io.memory.MemoryRunRecorder`,
the same writer behind the same recorder seam as ``closedloop run``, and
read back with the same reader, so that what the API returns is what
``closedloop run`` would write.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["run"]


def run(
    config: Mapping[str, Any] | str | Path,
    *,
    progress: bool = False,
    **overrides: Any,
) -> Any:
    """Run an experiment and return its run, writing nothing to the disk.

    Parameters
    ----------
    config : dict or str or pathlib.Path
        The experiment: a dict with the keys of an experiment file, or the
        path of a YAML file.
    progress : bool, optional
        Show a progress bar on standard error.
    **overrides
        Values to set before validation, by key path: ``duration_s=2`` for a
        top-level key; ``model__params__w_GS=2.0`` (``__`` for each dot) or
        ``**{"model.params.w_GS": 2.0}`` for a nested one.

    Returns
    -------
    closedloop.io.RunData
        The run: ``metrics`` (with the ``*_baseline`` metrics when
        ``output.record_baseline`` is on), ``timeseries``, ``config``. Its
        ``path`` (``<name>.h5``) names the run; there is no such file.

    Raises
    ------
    closedloop.config.ConfigError
        When the experiment does not validate (each problem with its key path).
    closedloop.core.loop.ModelDivergedError
        When the model diverges.

    Examples
    --------
    >>> import closedloop
    >>> r = closedloop.run("experiments/pd_beta_adbs.yaml", duration_s=2)  # doctest: +SKIP
    >>> r.metrics["long_burst_time_reduction"]  # doctest: +SKIP
    """
    import copy

    from closedloop.config import validate_config
    from closedloop.config.files import load_raw
    from closedloop.experiment import run_experiment
    from closedloop.sweep.spec import set_key_path

    if isinstance(config, str | Path):
        raw, source = load_raw(config), str(config)
    else:
        raw, source = copy.deepcopy(dict(config)), "<dict>"
    for key, value in overrides.items():
        set_key_path(raw, key.replace("__", "."), value)
    output = dict(raw.get("output") or {})
    output["figure"] = False  # drawing is the caller's choice (closedloop.plot_run)
    raw["output"] = output
    exp = validate_config(raw, source)
    return run_experiment(exp, ".", progress=progress, in_memory=True).data
