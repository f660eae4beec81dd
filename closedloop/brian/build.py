"""What a Brian2 model's build receives and returns: the seam between a model and a loop.

:meth:`closedloop.brian.model.BrianModel.build` receives a :class:`BuildContext`
(instances, their generators and parameters, and the :class:`StimulationInput`
through which the stimulated group reads the device's drive) and returns a
:class:`ModelNetwork` (the Brian2 objects, the signal as a
:class:`CumulativeSource`, the populations). :func:`fixed_indegree` draws the
block-diagonal connectivity of a batch of instances. This module imports no
other module of :mod:`closedloop.brian`; Brian2 itself is imported only when a
stimulation input is made.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "BRIAN_MISSING",
    "BuildContext",
    "CumulativeSource",
    "ModelNetwork",
    "StimulationInput",
    "fixed_indegree",
    "require_brian",
]

#: The one sentence a user reads when a Brian2 model is asked for on a light install.
BRIAN_MISSING = (
    "Brian2 models need the brian extra, which is not installed: pip install 'closedloop[brian]'"
)


def require_brian() -> None:
    """Raise :class:`ImportError` saying what to install when Brian2 is missing.

    Raises
    ------
    ImportError
        With :data:`BRIAN_MISSING` as its message.
    """
    if importlib.util.find_spec("brian2") is None:
        raise ImportError(BRIAN_MISSING)


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
    array : ndarray, optional
        The running integral itself when the loop keeps it (not a variable
        of ``group``; see :attr:`ModelNetwork.spike_count`).
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
    array: np.ndarray | None = None


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
    direct_drive : tuple of (ndarray, ndarray, float), optional
        A parameter array of the stimulated group (SI units), the indices of
        its stimulated neurons and the gain (SI units per mA): the loop's
        network operation writes ``gain * drive`` into them itself at the
        steps where the drive changes (one instance, runtime targets; the
        model then adds no stimulation object of its own).
    spike_count : tuple of (ndarray, ndarray), optional
        A group's spike space (Brian2's ``_spikespace``: its last entry is the
        number of neurons that spiked at the last step) and a one-element
        float array that the loop's network operation increases by that
        number at every step: the signal's running integral (one instance,
        runtime targets).
    """

    objects: list
    signal: CumulativeSource
    populations: dict[str, CumulativeSource] = field(default_factory=dict)
    spike_groups: dict[str, tuple[Any, int]] = field(default_factory=dict)
    stimulated: tuple[Any, np.ndarray] | None = None
    namespace: dict[str, Any] = field(default_factory=dict)
    direct_drive: tuple[np.ndarray, np.ndarray, float] | None = None
    spike_count: tuple[np.ndarray, np.ndarray] | None = None


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
