"""Bring your own network: a user's Brian2 network in the closed loop.

:class:`ExternalNetwork` wraps a function that builds any Brian2 network:
the user names the group and the parameter variable that stimulation drives
(with its gain in the variable's units per mA) and what the sensor reads
(a population rate, or the mean or sum of a state variable over a group).
The names and units are checked when the loop builds the network, before
anything runs, and every mistake is named. See ``docs/brian.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from closedloop.brian.build import BuildContext, CumulativeSource, ModelNetwork
from closedloop.brian.model import BrianModel
from closedloop.brian.runtime import ORDER_INTEGRATOR, raw_array
from closedloop.core.plugins import resolve_object

__all__ = ["ExternalNetwork"]

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
        fn = resolve_object(builder) if isinstance(builder, str) else builder
        if not callable(fn):
            raise ValueError(f"brian network builder {fn!r} is not callable")
        self.builder = fn
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
        # Declared per class elsewhere; a user's network sets them per instance.
        units = "spikes/s" if reduce == "rate" else str(self.sense["unit"])
        self.signal_units = units  # type: ignore[misc]
        what = "population rate" if reduce == "rate" else f"{reduce} of {self.sense['variable']}"
        description = f"{what} over group {self.sense['group']!r}"
        self.signal_description = description  # type: ignore[misc]
        name = getattr(fn, "__module__", "") + "." + getattr(fn, "__name__", "?")
        self.name = name  # type: ignore[misc]
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
        from brian2 import NeuronGroup, SpikeMonitor, Synapses

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
        direct = None
        namespace = {**namespace, "cl_gain": gain, **ctx.stimulation.namespace}
        if ctx.stimulation.kind == "linked":
            # cpp_standalone: the device runs as generated code in the loop's
            # own group, which a summed-variable synapse reads.
            syn = Synapses(
                ctx.stimulation.source,
                stim,
                f"{var}_post = cl_gain * drive_pre : {_unit_name(target_dim)} (summed)",
                namespace={"cl_gain": gain},
                name="cl_stim_synapses",
            )
            syn.connect(i=inst, j=targets)
            extra.append(syn)
        elif n == 1:
            # One instance: the loop's network operation writes the parameter
            # itself, at the steps where the drive changes (a pulse train's
            # edges), so no code runs over the neurons at the other steps.
            direct = (raw_array(stim, var), targets, float(gain))
        else:
            extra.append(_stimulation_writer(stim, var, ctx, n, per_inst, local, namespace))

        # -- sensing: a per-instance running integral ------------------------------------
        sensed = group(self.sense, "sense")
        reduce = self.sense["reduce"]
        per_sensed = len(sensed) // n
        spike_count = None
        rate_description = f"population rate of group {sensed.name!r}"
        if reduce == "rate" and ctx.stimulation.kind == "linked":
            # cpp_standalone sums per instance in generated code: a counting synapse.
            probe = NeuronGroup(n, "cum : 1", name="cl_sense_probe")
            counter = Synapses(sensed, probe, on_pre="cum_post += 1", name="cl_sense_counter")
            counter.connect(i=np.arange(len(sensed)), j=np.repeat(np.arange(n), per_sensed))
            extra += [probe, counter]
            signal = CumulativeSource(
                probe, "cum", np.arange(n), 1.0 / per_sensed, "spikes/s", rate_description
            )
        elif reduce == "rate" and n == 1:
            # The loop's network operation adds up the spike space's count at
            # every step: no code object of its own.
            spike_count = (raw_array(sensed, "_spikespace"), np.zeros(1))
            signal = CumulativeSource(
                sensed,
                "",
                np.zeros(1, int),
                1.0 / per_sensed,
                "spikes/s",
                rate_description,
                array=spike_count[1],
            )
        elif reduce == "rate":
            # A spike monitor that only counts (no spike times kept): its code
            # runs over the step's spikes alone, where a counting synapse
            # pushes every spike through a spike queue. The loop sums each
            # instance's block of counts at its samples.
            counter = SpikeMonitor(sensed, record=False, name="cl_sense_counter")
            extra.append(counter)
            signal = CumulativeSource(
                counter,
                "count",
                np.repeat(np.arange(n), per_sensed),
                1.0 / per_sensed,
                "spikes/s",
                rate_description,
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
                order=ORDER_INTEGRATOR,
            )
            summer = Synapses(
                sensed,
                probe,
                f"x_post = {svar}_pre : {_unit_name(sdim)} (summed)",
                name="cl_sense_summer",
            )
            summer.connect(i=np.arange(len(sensed)), j=np.repeat(np.arange(n), per_sensed))
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
            direct_drive=direct,
            spike_count=spike_count,
        )


def _unit_name(dim: Any) -> str:
    """A unit string Brian2's equation parser accepts for dimension ``dim``."""
    import brian2
    from brian2.units.fundamentalunits import DIMENSIONLESS

    return "1" if dim is DIMENSIONLESS else repr(brian2.get_unit(dim))


def _stimulation_writer(
    stim: Any,
    var: str,
    ctx: BuildContext,
    n: int,
    per_inst: int,
    local: np.ndarray,
    namespace: dict[str, Any],
) -> Any:
    """A code runner that writes the drive times the gain into ``stim``'s ``var`` every step.

    One assignment per neuron, before the state update (where a summed-variable
    synapse zeroed the variable and added one term per synapse); neurons that
    are not stimulated get 0, as the summed variable gave them. The names
    the code uses are added to ``namespace``.
    """
    from brian2 import TimedArray, second
    from brian2.groups.group import CodeRunner

    instance = "(i // cl_per_inst)"
    drive = ctx.stimulation.expression.replace("cl_instance", instance)
    namespace["cl_per_inst"] = per_inst
    if np.array_equal(local, np.arange(per_inst)):
        mask = ""
    elif np.array_equal(local, np.arange(local.size)):
        mask = " * int((i % cl_per_inst) < cl_n_stimulated)"
        namespace["cl_n_stimulated"] = int(local.size)
    else:
        # A one-row table of the stimulated neurons (a TimedArray clamps t to its row).
        values = np.zeros((1, per_inst))
        values[0, local] = 1.0
        namespace["cl_mask"] = TimedArray(values, dt=ctx.dt_s * second, name="cl_mask")
        mask = " * cl_mask(t, i % cl_per_inst)"
    return CodeRunner(
        stim,
        "stateupdate",
        code=f"{var} = cl_gain * ({drive}){mask}",
        when="groups",
        order=-1,
        name="cl_stim_writer",
    )
