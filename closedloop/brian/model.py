"""Spiking-network models in Brian2: the contract, a registry and your own networks.

A Brian2 model is a recipe, not a network: it declares, as class attributes,
its signal (with units), the stimulation it accepts and its parameters (each
with units and source, :class:`closedloop.core.model.Parameter`), and builds its
Brian2 objects on demand with :meth:`BrianModel.build`. The closed loop
(:class:`closedloop.brian.loop.BrianLoop`) builds the network once, under the
code-generation target it chose, for as many instances as it needs (the
closed-loop instances and, optionally, unstimulated copies of them).

Batch axis
----------
``n`` instances are ``n`` independent copies of the network simulated as one
Brian2 network: every group holds the neurons of all instances in equal,
consecutive blocks (neuron ``k`` of a group of ``n * N`` neurons belongs to
instance ``k // N``), synapses never cross blocks. One network of ``n * N``
neurons pays Brian2's per-step overhead (one code object call per group and
pathway) once instead of ``n`` times, which is what makes a batch faster than
``n`` separate simulations (``benchmarks/bench_brian.py`` measures it).

Seeds
-----
Each instance's structure (connectivity, heterogeneity, initial state) is
drawn from its own :class:`numpy.random.Generator`, seeded from that
instance's :class:`numpy.random.SeedSequence`: an instance has the same
network whatever the batch it is in. The noise drawn while the network runs
comes from Brian2's own generator, seeded from the run's seed
(:func:`brian2.seed`): a run repeats exactly, but an instance's noise depends
on the batch it is simulated in.

What the loop needs from a network
----------------------------------
:meth:`BrianModel.build` returns a :class:`ModelNetwork`: the Brian2 objects,
the signal as a :class:`CumulativeSource` (a running integral per neuron or
per instance that the loop samples at the sensing rate, so that no per-step
code is added to the network) and the populations whose spike counts give
population rates. Stimulation enters through a :class:`StimulationInput`
whose expression the model puts into the stimulated group's equations.

Bring your own network
----------------------
:class:`ExternalNetwork` wraps a function that builds any Brian2 network:
the user names the group and the parameter variable that stimulation drives
(with its gain in the variable's units per mA) and what the sensor reads
(a population rate, or the mean or sum of a state variable over a group).
See ``docs/brian.md``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from closedloop.core.model import Parameter, resolve_parameters

__all__ = [
    "BRIAN_MODELS",
    "BrianModel",
    "BuildContext",
    "CumulativeSource",
    "ExternalNetwork",
    "ModelNetwork",
    "StimulationInput",
    "fixed_indegree",
    "resolve_brian_model",
]


# --------------------------------------------------------------------------------------
# What a build receives and returns
# --------------------------------------------------------------------------------------
class StimulationInput:
    """How a network reads the device's drive (average cathodic current per step, mA).

    The model adds :attr:`equations` to the stimulated group's equations, uses
    :attr:`expression` (dimensionless, the drive in mA) where the stimulation
    current enters, passes :attr:`namespace` to the group and calls
    :meth:`attach` once the group exists.

    Parameters
    ----------
    kind : {"ring", "linked", "zero"}
        ``"ring"``: the drive of the current control period, ``steps`` rows of
        ``columns`` instances, lives in a flat ring buffer read through a 1-D
        :class:`brian2.TimedArray` at index ``(t_in_timesteps % steps) *
        columns + cl_instance``; the loop's network operation rewrites it in
        place once per period (runtime targets). ``"linked"``: a linked
        variable reading variable ``drive`` of ``source``, one row per
        instance (the device runs as generated code, ``cpp_standalone``).
        ``"zero"``: no stimulation.
    steps, columns : int
        Shape of the ring (``"ring"``): steps per period and instances.
    source : brian2.NeuronGroup, optional
        Group holding ``drive`` (``"linked"``).
    dt_s : float
        Integration step, s (``"ring"``).

    Attributes
    ----------
    ring : ndarray, shape (L,)
        The ring buffer (``"ring"``), ``L`` a power of two of at least 65,536
        entries: the generated code depends on ``L`` and on ``dt_s`` only,
        not on the period or the batch size (``steps`` and ``columns`` are
        namespace constants), so Brian2's compiled-code cache serves every
        configuration.
    """

    def __init__(
        self,
        kind: str,
        *,
        steps: int = 1,
        columns: int = 1,
        source: Any = None,
        dt_s: float = 1e-4,
    ) -> None:
        if kind not in ("ring", "linked", "zero"):
            raise ValueError(f"StimulationInput kind must be ring, linked or zero, got {kind!r}")
        self.kind = kind
        self.steps = int(steps)
        self.columns = int(columns)
        self.source = source
        self._function = None
        self.ring = np.zeros(0)
        if kind == "ring":
            from brian2 import TimedArray, second

            size = max(1 << 16, 1 << int(np.ceil(np.log2(max(1, self.steps * self.columns)))))
            self.ring = np.zeros(size)
            # The TimedArray keeps a view of ``ring``: rewriting it in place
            # changes what the generated code reads (checked by the tests).
            self._function = TimedArray(self.ring, dt=dt_s * second, name="cl_drive")

    def view(self) -> np.ndarray:
        """The ring as ``(steps, columns)``, a view for writing (``"ring"``)."""
        return self.ring[: self.steps * self.columns].reshape(self.steps, self.columns)

    @property
    def equations(self) -> str:
        """Equation lines the stimulated group must declare."""
        lines = ["cl_instance : integer (constant)"]
        if self.kind == "linked":
            lines.append("cl_drive_linked : 1 (linked)")
        return "\n".join(lines) + "\n"

    @property
    def expression(self) -> str:
        """The drive of the current step, mA, as a dimensionless expression."""
        if self.kind == "ring":
            return "cl_drive(((t_in_timesteps % cl_steps) * cl_columns + cl_instance) * dt)"
        if self.kind == "linked":
            return "cl_drive_linked"
        return "0.0"

    @property
    def namespace(self) -> dict[str, Any]:
        """Names :attr:`expression` refers to."""
        if self._function is None:
            return {}
        return {"cl_drive": self._function, "cl_steps": self.steps, "cl_columns": self.columns}

    def attach(self, group: Any, instance_of: np.ndarray) -> None:
        """Give each neuron of ``group`` its instance, and link the drive (``"linked"``)."""
        group.cl_instance = np.asarray(instance_of, dtype=np.int32)
        if self.kind == "linked":
            from brian2 import linked_var

            group.cl_drive_linked = linked_var(self.source, "drive", index="cl_instance")


@dataclass
class CumulativeSource:
    """A running integral the loop samples: sample = ``scale * (c(t1) - c(t0)) / (t1 - t0)``.

    Attributes
    ----------
    group : brian2.Group
        Group holding the running integral, one value per neuron or per instance.
    variable : str
        Its name: a dimensionless running integral (e.g. ``lfp_cum``, whose
        rate of change is the signal in its units) or a spike counter.
    instance_of : ndarray of int
        Instance of each row of ``group``.
    scale : float
        Factor from the summed rate of change to the signal (``1 / N`` for a
        population rate per neuron or a mean, 1 for a sum).
    units : str
        Units of the sampled signal.
    description : str
        What the signal is.
    per_step : bool
        The running integral is updated once per integration step, in its own
        state update (``True``), or the group already sums per instance
        (``False`` with one row per instance).
    """

    group: Any
    variable: str
    instance_of: np.ndarray
    scale: float
    units: str
    description: str = ""


@dataclass
class ModelNetwork:
    """What :meth:`BrianModel.build` returns.

    Attributes
    ----------
    objects : list
        Every Brian2 object of the network (groups, synapses, inputs).
    signal : CumulativeSource
        The signal the sensing chain reads (the LFP proxy).
    populations : dict of str to CumulativeSource
        Spike counters of named populations (population rate in spikes/s per
        neuron), for recording.
    spike_groups : dict of str to (brian2.NeuronGroup, int)
        Groups whose spikes can be recorded, with neurons per instance.
    stimulated : tuple of (brian2.NeuronGroup, ndarray)
        The stimulated group and the indices of its stimulated neurons (for
        the record; the model already wired the drive in).
    namespace : dict
        Names the objects' equations use without an explicit namespace of
        their own (a user network's constants); passed to ``Network.run``.
    """

    objects: list
    signal: CumulativeSource
    populations: dict[str, CumulativeSource] = field(default_factory=dict)
    spike_groups: dict[str, tuple[Any, int]] = field(default_factory=dict)
    stimulated: tuple[Any, np.ndarray] | None = None
    namespace: dict[str, Any] = field(default_factory=dict)


@dataclass
class BuildContext:
    """What :meth:`BrianModel.build` receives.

    Attributes
    ----------
    n : int
        Instances to build (closed-loop instances, then any baseline copies).
    rngs : list of numpy.random.Generator
        One generator per instance for its structure and initial state.
    params : dict of str to ndarray
        Parameter values, shape ``(n,)`` each.
    stimulation : StimulationInput
        How the stimulated group reads the device's drive.
    dt_s : float
        Integration step, s.
    """

    n: int
    rngs: list[np.random.Generator]
    params: dict[str, np.ndarray]
    stimulation: StimulationInput
    dt_s: float


def fixed_indegree(
    rngs: Sequence[np.random.Generator], n_pre: int, n_post: int, k: int, *, autapses: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Connections with a fixed in-degree, block-diagonal over instances.

    Every postsynaptic neuron of instance ``b`` receives ``k`` connections from
    presynaptic neurons of the same instance drawn uniformly with replacement
    (multiple contacts allowed) by instance ``b``'s own generator.

    Parameters
    ----------
    rngs : sequence of numpy.random.Generator
        One per instance.
    n_pre, n_post : int
        Neurons per instance in the source and target groups.
    k : int
        Connections per postsynaptic neuron.
    autapses : bool
        Allow a neuron to connect to itself (when source and target are the same group).

    Returns
    -------
    i, j : ndarray of int32
        Global source and target indices.
    """
    if k < 0:
        raise ValueError(f"in-degree must be zero or positive, got {k}")
    pres, posts = [], []
    for b, rng in enumerate(rngs):
        pre = rng.integers(0, n_pre, size=(n_post, k))
        if not autapses and k:
            post_idx = np.arange(n_post)[:, None]
            clash = pre == post_idx
            # Redraw self-connections from the other neurons.
            pre[clash] = (pre[clash] + rng.integers(1, n_pre, size=int(clash.sum()))) % n_pre
        pres.append(pre.ravel() + b * n_pre)
        posts.append(np.repeat(np.arange(n_post), k) + b * n_post)
    return (
        np.concatenate(pres).astype(np.int32) if pres else np.zeros(0, np.int32),
        np.concatenate(posts).astype(np.int32) if posts else np.zeros(0, np.int32),
    )


# --------------------------------------------------------------------------------------
# The model base class
# --------------------------------------------------------------------------------------
class BrianModel:
    """Base class of the Brian2 spiking-network models.

    Parameters
    ----------
    dt_s : float
        Integration step, s.
    n : int
        Number of independent instances.
    params : mapping, optional
        Parameter overrides: a scalar for all instances or a sequence of length ``n``.
    regime : str, optional
        A named parameter set from :attr:`regimes`.

    Notes
    -----
    Subclasses set the class attributes and implement :meth:`build`. The
    constructor only validates; nothing is built or compiled until a loop (or
    :meth:`reset`) needs the network. :meth:`reset` and :meth:`advance` give
    the same open-loop interface as :class:`closedloop.core.model.NumbaModel`.
    """

    name: ClassVar[str]
    signal_name: ClassVar[str] = "lfp"
    signal_units: ClassVar[str]
    signal_description: ClassVar[str]
    stimulation_units: ClassVar[str] = "mA"
    stimulation_description: ClassVar[str]
    state_variables: ClassVar[dict[str, str]] = {}
    parameters: ClassVar[dict[str, Parameter]] = {}
    regimes: ClassVar[dict[str, dict[str, float]]] = {}
    default_regime: ClassVar[str | None] = None
    references: ClassVar[tuple[str, ...]] = ()
    #: Parameters that must be the same for every instance (network sizes).
    shared_parameters: ClassVar[tuple[str, ...]] = ()

    def observables(self) -> dict[str, np.ndarray]:
        """Slow state worth recording beside the signal: none for Brian2 models."""
        return {}

    def __init__(
        self,
        dt_s: float = 1e-4,
        n: int = 1,
        params: Mapping[str, float | Sequence[float]] | None = None,
        regime: str | None = None,
    ) -> None:
        if not (isinstance(dt_s, int | float) and dt_s > 0 and math.isfinite(dt_s)):
            raise ValueError(f"model.dt_s must be a positive number of seconds, got {dt_s!r}")
        if int(n) != n or n < 1:
            raise ValueError(f"model batch size n must be a positive integer, got {n!r}")
        self.dt_s = float(dt_s)
        self.n = int(n)
        self.regime, self.param_values = resolve_parameters(self, params, regime)
        for key in self.shared_parameters:
            if np.ptp(self.param_values[key]) != 0:
                raise ValueError(
                    f"model parameter {key!r} sets the network size and must be the same "
                    f"for every instance, got {self.param_values[key].tolist()}"
                )
        self._check(self.param_values)
        self._runner = None

    def like(
        self, n: int | None = None, params: Mapping[str, float | Sequence[float]] | None = None
    ) -> BrianModel:
        """A new model of the same kind and settings (e.g. a no-stimulation baseline).

        Parameters
        ----------
        n : int, optional
            Batch size (default: this model's).
        params : mapping, optional
            Parameter values (default: this model's, per instance).
        """
        return type(self)(
            dt_s=self.dt_s,
            n=self.n if n is None else n,
            params=self.param_values if params is None else params,
            regime=None,
        )

    def _check(self, values: dict[str, np.ndarray]) -> None:
        """Model-specific checks across parameters (raise ValueError naming them)."""

    def build(self, ctx: BuildContext) -> ModelNetwork:
        """Create the Brian2 objects for ``ctx.n`` instances.

        Parameters
        ----------
        ctx : BuildContext
            Instances, their generators and parameters, and the stimulation input.

        Returns
        -------
        ModelNetwork
        """
        raise NotImplementedError

    # -- open loop ------------------------------------------------------------------
    def reset(
        self, seeds: Sequence[np.random.SeedSequence] | int | None = 0, *, target: str = "auto"
    ) -> None:
        """Build the network for an open-loop run (:meth:`advance`).

        Parameters
        ----------
        seeds : int or sequence of numpy.random.SeedSequence
            An int spawns ``n`` instance seeds from ``SeedSequence(seeds)``
            and seeds Brian2 from the same root; a sequence gives each
            instance's seed, and Brian2 is seeded from the first.
        target : str
            Code-generation target (see :func:`closedloop.brian.loop.select_target`);
            ``cpp_standalone`` is not available open loop.
        """
        from closedloop.brian.loop import OpenLoopRunner

        self._runner = OpenLoopRunner(self, seeds, target=target)

    def advance(self, n_steps: int, stimulation: np.ndarray | None = None) -> np.ndarray:
        """Advance every instance by ``n_steps`` integration steps, open loop.

        Parameters
        ----------
        n_steps : int
            Number of integration steps.
        stimulation : ndarray, shape (n, n_steps), optional
            Average cathodic current per step, mA.

        Returns
        -------
        ndarray, shape (n, n_steps)
            The signal, in :attr:`signal_units`, each step's value being the
            signal at the start of the step (the running integral's increment
            over the step divided by ``dt``).
        """
        if self._runner is None:
            raise RuntimeError("call reset() before advance()")
        return self._runner.advance(int(n_steps), stimulation)

    @property
    def step_(self) -> int:
        """Steps advanced since the last :meth:`reset` (settable, for compatibility)."""
        return 0 if self._runner is None else self._runner.step

    @step_.setter
    def step_(self, value: int) -> None:
        if self._runner is not None:
            self._runner.step = int(value)

    def describe(self) -> dict[str, Any]:
        """Return the model's declaration: signal, input and parameters."""
        return {
            "name": self.name,
            "simulator": "brian2",
            "signal": {
                "name": self.signal_name,
                "units": self.signal_units,
                "description": self.signal_description,
            },
            "stimulation": {
                "units": self.stimulation_units,
                "description": self.stimulation_description,
            },
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
            "references": list(self.references),
        }


# --------------------------------------------------------------------------------------
# Bring your own network
# --------------------------------------------------------------------------------------
_REDUCTIONS = ("rate", "mean", "sum")


def _unit(name: Any, where: str) -> Any:
    """A Brian2 unit from a name such as ``"mV"`` (or a unit/quantity passed through)."""
    import brian2

    if not isinstance(name, str):
        return name
    unit = getattr(brian2.units, name, None)
    if unit is None or not isinstance(unit, brian2.Quantity):
        raise ValueError(f"{where}: {name!r} is not a Brian2 unit name (e.g. mV, nA, pA, Hz)")
    return unit


class ExternalNetwork(BrianModel):
    """A user's own Brian2 network in the closed loop.

    Parameters
    ----------
    builder : callable or str
        ``builder(n_instances=n, **params)`` returning a list of the network's
        Brian2 objects (or a dict with key ``"objects"``), or the dotted path
        of such a function (``package.module.function``). With ``n > 1`` it
        must build ``n`` copies in equal consecutive blocks of every group;
        with ``n = 1`` it may ignore the argument. It is called when the loop
        builds the network, after the code-generation target is chosen, so
        that the same function serves the runtime and ``cpp_standalone``.
    stimulate : mapping
        ``group`` (name of the stimulated NeuronGroup), ``variable`` (a
        parameter of that group, e.g. ``I_stim : amp``, that the membrane
        equation uses), ``gain`` (number) and ``gain_unit`` (Brian2 unit name
        of ``variable`` per mA, e.g. ``pA``: ``gain`` pA per mA of mean
        cathodic current), optional ``fraction`` (of the group's neurons per
        instance, the first ones, default 1) or ``indices`` (per instance).
    sense : mapping
        ``group`` and ``reduce``: ``"rate"`` (population rate, spikes/s per
        neuron), ``"mean"`` or ``"sum"`` of ``variable`` over the group's
        neurons of each instance, in ``unit`` (Brian2 unit name, e.g. ``mV``).
    dt_s : float
        Integration step, s; every object of the network must use it.
    n : int
        Number of instances.
    params : mapping, optional
        Keyword arguments for ``builder``.
    regime : None
        Accepted for interface compatibility; must be None.

    Notes
    -----
    Problems with the names and units are reported, naming the object and
    the mismatch, when the loop builds the network, before anything runs.
    """

    name = "external"
    signal_units = "1"
    signal_description = "sensor reading of a user network"
    stimulation_description = "average cathodic current per step, mA, times the gain"

    def __init__(
        self,
        builder: Callable[..., Any] | str,
        *,
        stimulate: Mapping[str, Any],
        sense: Mapping[str, Any],
        dt_s: float = 1e-4,
        n: int = 1,
        params: Mapping[str, Any] | None = None,
        regime: str | None = None,
    ) -> None:
        if regime is not None:
            raise ValueError("model.regime: a user network has no named regimes")
        if isinstance(builder, str):
            builder = _resolve_callable(builder)
        if not callable(builder):
            raise ValueError(f"brian network builder {builder!r} is not callable")
        self.builder = builder
        self.builder_params = dict(params or {})
        self.stimulate = dict(stimulate)
        self.sense = dict(sense)
        for key in ("group", "variable", "gain", "gain_unit"):
            if key not in self.stimulate:
                raise ValueError(f"stimulate.{key} is required")
        for key in ("group", "reduce"):
            if key not in self.sense:
                raise ValueError(f"sense.{key} is required")
        reduce = self.sense["reduce"]
        if reduce not in _REDUCTIONS:
            raise ValueError(f"sense.reduce must be one of {_REDUCTIONS}, got {reduce!r}")
        if reduce != "rate" and ("variable" not in self.sense or "unit" not in self.sense):
            raise ValueError(f"sense.variable and sense.unit are required for reduce {reduce!r}")
        gain = self.stimulate["gain"]
        if not (isinstance(gain, int | float) and math.isfinite(gain)):
            raise ValueError(f"stimulate.gain must be a finite number, got {gain!r}")
        fraction = self.stimulate.get("fraction", 1.0)
        if not 0 <= fraction <= 1:
            raise ValueError(f"stimulate.fraction must lie in [0, 1], got {fraction!r}")
        # Units are checked now (cheap), names and dimensions at build time.
        _unit(self.stimulate["gain_unit"], "stimulate.gain_unit")
        if reduce != "rate":
            _unit(self.sense["unit"], "sense.unit")
        self.signal_units = "spikes/s" if reduce == "rate" else str(self.sense["unit"])
        what = "population rate" if reduce == "rate" else f"{reduce} of {self.sense['variable']}"
        self.signal_description = f"{what} over group {self.sense['group']!r}"
        self.name = getattr(builder, "__module__", "") + "." + getattr(builder, "__name__", "?")
        super().__init__(dt_s=dt_s, n=n, params=None, regime=None)
        # Keyword arguments of the builder, recorded with the run.
        self.param_values = {
            k: np.full(self.n, float(v))
            for k, v in self.builder_params.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }

    def like(
        self, n: int | None = None, params: Mapping[str, Any] | None = None
    ) -> ExternalNetwork:
        """A new user network of the same builder, specs and settings."""
        return type(self)(
            self.builder,
            stimulate=self.stimulate,
            sense=self.sense,
            dt_s=self.dt_s,
            n=self.n if n is None else n,
            params=self.builder_params if params is None else params,
        )

    def build(self, ctx: BuildContext) -> ModelNetwork:
        """Call the builder and wire stimulation and sensing (see the class notes)."""
        import brian2
        from brian2 import NeuronGroup, Synapses

        try:
            made = self.builder(n_instances=ctx.n, **self.builder_params)
        except TypeError as exc:
            raise ValueError(
                f"brian network builder {self.name}: calling it with n_instances={ctx.n} "
                f"and {sorted(self.builder_params)} failed: {exc}"
            ) from None
        objects = made["objects"] if isinstance(made, Mapping) else made
        namespace = dict(made.get("namespace", {})) if isinstance(made, Mapping) else {}
        if isinstance(objects, brian2.Network):
            objects = list(objects.objects)
        objects = list(objects)
        groups = {o.name: o for o in objects if isinstance(o, NeuronGroup)}
        n = ctx.n
        for key, spec in (("stimulate", self.stimulate), ("sense", self.sense)):
            g = groups.get(spec["group"])
            if g is not None and abs(float(g.clock.dt) - ctx.dt_s) > 1e-9 * ctx.dt_s:
                raise ValueError(
                    f"{key}.group: NeuronGroup {g.name!r} runs with dt = {float(g.clock.dt):g} s "
                    f"but model.dt_s is {ctx.dt_s:g} s; the stimulated and sensed groups must "
                    "use the model's integration step"
                )

        def group(spec: Mapping[str, Any], where: str) -> Any:
            name = spec["group"]
            if name not in groups:
                raise ValueError(
                    f"{where}.group: the user network has no NeuronGroup named {name!r}; "
                    f"its groups are {sorted(groups)}"
                )
            g = groups[name]
            if len(g) % n:
                raise ValueError(
                    f"{where}.group: NeuronGroup {name!r} has {len(g)} neurons, not a "
                    f"multiple of the {n} instances"
                )
            return g

        # -- stimulation: a summed variable from a per-instance drive group -------------
        stim = group(self.stimulate, "stimulate")
        var = self.stimulate["variable"]
        if var not in stim.variables:
            raise ValueError(
                f"stimulate.variable: NeuronGroup {stim.name!r} has no variable {var!r}; "
                "add a parameter such as 'I_stim : amp' that its membrane equation uses"
            )
        gain_unit = _unit(self.stimulate["gain_unit"], "stimulate.gain_unit")
        target_dim = stim.variables[var].dim
        gain_dim = brian2.get_dimensions(gain_unit)
        if target_dim is not gain_dim:
            raise ValueError(
                f"stimulate.gain_unit: variable {var!r} of NeuronGroup {stim.name!r} has "
                f"units of {brian2.get_unit(target_dim)!r} but the gain is in "
                f"{self.stimulate['gain_unit']} per mA ({brian2.get_unit(gain_dim)!r})"
            )
        if var in stim.equations.diff_eq_names or var in stim.equations.subexpr_names:
            raise ValueError(
                f"stimulate.variable: {var!r} of NeuronGroup {stim.name!r} is a state "
                "variable or subexpression; stimulation needs a parameter (e.g. "
                "'I_stim : amp') that the membrane equation uses"
            )
        per_inst = len(stim) // n
        if "indices" in self.stimulate:
            local = np.asarray(self.stimulate["indices"], dtype=int)
            if local.size and (local.min() < 0 or local.max() >= per_inst):
                raise ValueError(
                    f"stimulate.indices must lie in [0, {per_inst}) for NeuronGroup "
                    f"{stim.name!r} ({per_inst} neurons per instance)"
                )
        else:
            local = np.arange(int(round(self.stimulate.get("fraction", 1.0) * per_inst)))
        targets = (np.arange(n)[:, None] * per_inst + local[None, :]).ravel()
        inst = np.repeat(np.arange(n), local.size)
        gain = float(self.stimulate["gain"]) * gain_unit
        extra: list = []
        if ctx.stimulation.kind == "linked":
            # The device runs as generated code in the loop's own group.
            src = ctx.stimulation.source
            expr = "drive_pre"
        else:
            src = NeuronGroup(n, "", name="cl_stim_source")
            extra.append(src)
            expr = ctx.stimulation.expression.replace("cl_instance", "i_pre")
        syn = Synapses(
            src,
            stim,
            f"{var}_post = cl_gain * ({expr}) : {_unit_name(target_dim)} (summed)",
            namespace={"cl_gain": gain, **ctx.stimulation.namespace},
            name="cl_stim_synapses",
        )
        syn.connect(i=inst, j=targets)
        extra.append(syn)

        # -- sensing: a per-instance running integral ------------------------------------
        sensed = group(self.sense, "sense")
        reduce = self.sense["reduce"]
        per_sensed = len(sensed) // n
        probe_inst = np.repeat(np.arange(n), per_sensed)
        if reduce == "rate":
            probe = NeuronGroup(n, "cum : 1", name="cl_sense_probe")
            counter = Synapses(sensed, probe, on_pre="cum_post += 1", name="cl_sense_counter")
            counter.connect(i=np.arange(len(sensed)), j=probe_inst)
            extra += [probe, counter]
            signal = CumulativeSource(
                probe,
                "cum",
                np.arange(n),
                1.0 / per_sensed,
                "spikes/s",
                f"population rate of group {sensed.name!r}",
            )
        else:
            svar = self.sense["variable"]
            if svar not in sensed.variables:
                raise ValueError(
                    f"sense.variable: NeuronGroup {sensed.name!r} has no variable {svar!r}"
                )
            unit = _unit(self.sense["unit"], "sense.unit")
            sdim = sensed.variables[svar].dim
            if sdim is not brian2.get_dimensions(unit):
                raise ValueError(
                    f"sense.unit: variable {svar!r} of NeuronGroup {sensed.name!r} has units "
                    f"of {brian2.get_unit(sdim)!r}, not of {self.sense['unit']}"
                )
            probe = NeuronGroup(
                n,
                f"x : {_unit_name(sdim)}\ndcum/dt = x / (cl_unit * second) : 1",
                method="euler",
                namespace={"cl_unit": unit},
                name="cl_sense_probe",
                order=-9,
            )
            summer = Synapses(
                sensed,
                probe,
                f"x_post = {svar}_pre : {_unit_name(sdim)} (summed)",
                name="cl_sense_summer",
            )
            summer.connect(i=np.arange(len(sensed)), j=probe_inst)
            extra += [probe, summer]
            scale = 1.0 / per_sensed if reduce == "mean" else 1.0
            signal = CumulativeSource(
                probe,
                "cum",
                np.arange(n),
                scale,
                str(self.sense["unit"]),
                f"{reduce} of {svar} over group {sensed.name!r}",
            )
        spike_groups = {name: (g, len(g) // n) for name, g in groups.items() if len(g) % n == 0}
        return ModelNetwork(
            objects=objects + extra,
            signal=signal,
            populations={},
            spike_groups=spike_groups,
            stimulated=(stim, targets),
            namespace=namespace,
        )


def _unit_name(dim: Any) -> str:
    """A unit string Brian2's equation parser accepts for dimension ``dim``."""
    import brian2
    from brian2.units.fundamentalunits import DIMENSIONLESS

    return "1" if dim is DIMENSIONLESS else repr(brian2.get_unit(dim))


def _resolve_callable(path: str) -> Callable[..., Any]:
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"{path!r} is not a dotted path of the form package.module.function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r} for {path!r}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from None


# --------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------
def _registry() -> dict[str, type[BrianModel]]:
    from closedloop.models.brian_ping import BrianPING
    from closedloop.models.brian_stn_gpe import BrianSTNGPe

    return {m.name: m for m in (BrianSTNGPe, BrianPING)}


class _LazyRegistry(dict):
    """The registry, filled on first use (importing the models is cheap, brian2 is not)."""

    def _fill(self) -> None:
        if not super().__len__():
            super().update(_registry())

    def __getitem__(self, key: str) -> type[BrianModel]:
        self._fill()
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self._fill()
        return super().__contains__(key)

    def __iter__(self):
        self._fill()
        return super().__iter__()

    def __len__(self) -> int:
        self._fill()
        return super().__len__()

    def keys(self):
        self._fill()
        return super().keys()

    def items(self):
        self._fill()
        return super().items()

    def values(self):
        self._fill()
        return super().values()

    def get(self, key: str, default: Any = None) -> Any:
        self._fill()
        return super().get(key, default)


#: Registry name to class of every built-in Brian2 model.
BRIAN_MODELS: dict[str, type[BrianModel]] = _LazyRegistry()


def resolve_brian_model(name: str) -> type[BrianModel]:
    """Return the Brian2 model class registered as ``name`` or found at a dotted path.

    Raises
    ------
    ValueError
        With a plain sentence when the name is unknown or not a BrianModel.
    """
    if name in BRIAN_MODELS:
        return BRIAN_MODELS[name]
    if "." not in name and ":" not in name:
        raise ValueError(
            f"unknown Brian2 model {name!r}; built-in Brian2 models are "
            f"{', '.join(sorted(BRIAN_MODELS))}"
        )
    obj = _resolve_callable(name)
    if not (isinstance(obj, type) and issubclass(obj, BrianModel)):
        raise ValueError(f"{name!r} is not a subclass of closedloop.brian.model.BrianModel")
    return obj
