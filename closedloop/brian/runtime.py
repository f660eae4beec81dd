"""Where Brian2 runs: code-generation targets, caches, the clock, sensor probes.

:func:`select_target` chooses the code-generation target (Cython when a C
compiler works, numpy otherwise, with a warning) and points Brian2's Cython
cache at :func:`brian_cache_dir`; :func:`standalone_device` switches to a
``cpp_standalone`` device in its own build directory and back. The helpers
every builder of a loop network shares live here too: :func:`set_default_dt`,
:func:`sensor_probe` (a per-instance sum of a per-neuron running integral),
:func:`raw_array` (a variable's array, read in place) and
:func:`check_clocks`. Depends only on :mod:`closedloop.brian.build`.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

from closedloop.brian.build import CumulativeSource, ModelNetwork
from closedloop.core.kernel_cache import cache_dir as numba_cache_dir

__all__ = [
    "spike_monitors",
    "BRIAN_TARGETS",
    "ORDER_INTEGRATOR",
    "ORDER_OPERATION",
    "ORDER_PROBE",
    "StandaloneBuild",
    "brian_cache_dir",
    "check_clocks",
    "compiler_works",
    "raw_array",
    "select_target",
    "sensor_probe",
    "set_default_dt",
    "standalone_device",
]

log = logging.getLogger("closedloop.brian")

#: Code-generation targets a loop accepts.
BRIAN_TARGETS = ("auto", "cython", "numpy", "cpp_standalone")
#: Scheduling order (``groups`` slot) of a per-instance sensor probe; its
#: summed updaters run at order -10.
ORDER_PROBE = -9
#: Scheduling order of the loop's network operation or generated sensing step:
#: after the probes, before stimulation synapses (-1) and state updates (0).
ORDER_OPERATION = -8
#: Scheduling order of a probe that integrates a state variable (a user
#: network's mean or sum sensor; its summed updater runs at -7): after the
#: operation, so that what the operation reads at the start of a step holds
#: the steps before it, as the models' own running integrals do (and a run
#: split in two reads what one run reads).
ORDER_INTEGRATOR = -6


# --------------------------------------------------------------------------------------
# Targets and caches
# --------------------------------------------------------------------------------------
def brian_cache_dir() -> Path:
    """Directory of Brian2's compiled-code cache for this project.

    Returns
    -------
    pathlib.Path
        ``$CLOSEDLOOP_BRIAN_CACHE`` if set, else ``brian2`` beside the Numba
        kernel cache (``~/.cache/closedloop/brian2`` by default).
    """
    env = os.environ.get("CLOSEDLOOP_BRIAN_CACHE")
    if env:
        return Path(env)
    return numba_cache_dir().parent.parent / "brian2"


_COMPILER_OK: list[bool] = []  # the answer, once known


def compiler_works() -> bool:
    """Whether Cython extensions compile here (tested once per process)."""
    if not _COMPILER_OK:
        from brian2.codegen.runtime.cython_rt import CythonCodeObject

        _COMPILER_OK.append(bool(CythonCodeObject.is_available()))
    return _COMPILER_OK[0]


def select_target(target: str = "auto") -> str:
    """Set Brian2's code-generation target and cache; return the target used.

    Parameters
    ----------
    target : {"auto", "cython", "numpy", "cpp_standalone"}
        ``"auto"``: Cython when a C compiler works, else numpy with a
        :class:`RuntimeWarning` saying so.

    Returns
    -------
    str
        ``"cython"``, ``"numpy"`` or ``"cpp_standalone"``.

    Raises
    ------
    ValueError
        For an unknown target, or ``cython``/``cpp_standalone`` without a
        working compiler.
    """
    from brian2 import prefs

    if target not in BRIAN_TARGETS:
        raise ValueError(f"brian.target must be one of {', '.join(BRIAN_TARGETS)}, got {target!r}")
    cache = brian_cache_dir() / "cython"
    cache.mkdir(parents=True, exist_ok=True)
    prefs.codegen.runtime.cython.cache_dir = str(cache)
    if target == "numpy":
        chosen = "numpy"
    elif compiler_works():
        chosen = "cython" if target in ("auto", "cython") else "cpp_standalone"
    elif target == "auto":
        warnings.warn(
            "Brian2: no working C compiler, so the network runs with the numpy target "
            "(much slower than Cython); install a C compiler (e.g. gcc) for the Cython target",
            RuntimeWarning,
            stacklevel=2,
        )
        chosen = "numpy"
    else:
        raise ValueError(
            f"brian.target {target!r} needs a working C compiler and none was found; "
            "use target numpy (slower) or install gcc"
        )
    if chosen != "cpp_standalone":
        prefs.codegen.target = chosen
    log.info("Brian2 code-generation target: %s (cache %s)", chosen, cache)
    return chosen


def set_default_dt(dt_s: float) -> None:
    """Set Brian2's default clock to ``dt_s`` seconds.

    The default clock is process-wide: every loop sets it again before it
    builds or runs its network, so that loops with different steps coexist.
    """
    from brian2 import defaultclock, second

    defaultclock.dt = dt_s * second


def sensor_probe(source: CumulativeSource, n: int, sample_dt: Any, name: str) -> tuple[list, Any]:
    """Objects that sum a per-neuron running integral per instance on the sensing clock.

    Parameters
    ----------
    source : CumulativeSource
        The running integral, one value per neuron.
    n : int
        Instances in the network.
    sample_dt : brian2.Quantity
        Sensing interval.
    name : str
        Suffix of the objects' names.

    Returns
    -------
    objects : list
        The objects to add to the network (none when ``source.group`` already
        has one row per instance).
    holder : brian2.Group
        The group whose ``cum`` (or ``source.variable`` when ``objects`` is
        empty) holds one running integral per instance.
    """
    from brian2 import NeuronGroup, Synapses

    group = source.group
    inst = np.asarray(source.instance_of)
    if len(group) == n and np.array_equal(inst, np.arange(n)):
        return [], group
    probe = NeuronGroup(n, "cum : 1", dt=sample_dt, order=ORDER_PROBE, name=f"cl_probe_{name}")
    summed = Synapses(
        group,
        probe,
        f"cum_post = {source.variable}_pre : 1 (summed)",
        name=f"cl_probe_{name}_sum",
    )
    summed.connect(i=np.arange(len(group)), j=inst)
    return [probe, summed], probe


def spike_monitors(
    net: ModelNetwork, populations: tuple[str, ...], model_name: str
) -> dict[str, tuple[Any, int]]:
    """A spike monitor for each population in ``populations`` (``brian.record_spikes``).

    Returns
    -------
    dict of str to (brian2.SpikeMonitor, int)
        Each population's monitor and its neurons per instance.

    Raises
    ------
    ValueError
        Naming a population the model does not have.
    """
    from brian2 import SpikeMonitor

    monitors = {}
    for name in populations:
        if name not in net.spike_groups:
            raise ValueError(
                f"brian.record_spikes: {name!r} is not a population of model "
                f"{model_name!r}; populations: {sorted(net.spike_groups)}"
            )
        group, per_inst = net.spike_groups[name]
        monitors[name] = (SpikeMonitor(group, name=f"cl_spikes_{name}"), per_inst)
    return monitors


def raw_array(group: Any, variable: str) -> np.ndarray:
    """The array behind a group variable (runtime device), for reading and writing in place.

    No unit checks and no copy: what the loop's network operation reads at
    every sensing sample.
    """
    return group.variables[variable].get_value()


def check_clocks(net: ModelNetwork, sample_s: float, control_period_s: float) -> None:
    """Refuse a network object whose dt does not divide the sensing interval (named).

    Parameters
    ----------
    net : ModelNetwork
        The built network.
    sample_s, control_period_s : float
        Sensing interval and control period, s.

    Raises
    ------
    ValueError
        Naming the first object whose clock does not fit.
    """
    for obj in net.objects:
        clock = getattr(obj, "clock", None)
        if clock is None:
            continue
        dt = float(clock.dt)
        ratio = sample_s / dt
        if abs(ratio - round(ratio)) > 1e-6 * max(1.0, ratio) or round(ratio) < 1:
            raise ValueError(
                f"object {obj.name!r} of the network runs with dt = {dt:g} s, which does "
                f"not divide the sensing interval ({sample_s:g} s) and control period "
                f"({control_period_s:g} s)"
            )


class StandaloneBuild(Protocol):
    """What :func:`standalone_device` returns to build and run the project."""

    #: The build directory.
    directory: str

    def __call__(self) -> tuple[float, float, float]:
        """Compile and run; compile wall time, run wall time and run CPU time, s."""
        ...


def standalone_device(
    build_dir: str | os.PathLike | None, keep: bool = False
) -> tuple[StandaloneBuild, Callable[[], None]]:
    """Switch to a fresh ``cpp_standalone`` device in its own directory.

    Parameters
    ----------
    build_dir : path, optional
        Parent of the build directory (the system's temporary directory by
        default); each call makes a fresh directory, so that parallel runs
        do not collide.
    keep : bool
        Keep the build directory when restoring.

    Returns
    -------
    build : callable
        ``build()`` compiles and runs the project and returns the
        compilation's wall time, the run's wall time and the run's CPU time
        (s); ``build.directory`` is the build directory.
    restore : callable
        ``restore()`` goes back to the runtime device and removes the
        directory (unless ``keep``).
    """
    from brian2 import set_device
    from brian2.devices.device import all_devices, reset_device

    parent = os.fspath(build_dir) if build_dir is not None else None
    if parent is not None:
        os.makedirs(parent, exist_ok=True)
    directory = tempfile.mkdtemp(prefix="closedloop_brian_", dir=parent)
    standalone = all_devices["cpp_standalone"]
    standalone.reinit()
    set_device("cpp_standalone", directory=directory, build_on_run=False)

    def build() -> tuple[float, float, float]:
        t0 = time.perf_counter()
        standalone.build(directory=directory, compile=True, run=False, with_output=False)
        t1 = time.perf_counter()
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        standalone.run(directory=directory, with_output=False)
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        return t1 - t0, time.perf_counter() - t1, cpu

    def restore() -> None:
        reset_device("runtime")
        standalone.reinit()
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)

    made = cast(StandaloneBuild, build)
    made.directory = directory
    return made, restore
