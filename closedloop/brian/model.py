"""Spiking-network models in Brian2: the contract every Brian2 model follows.

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

Where the rest lives
--------------------
What a build receives and returns: :mod:`closedloop.brian.build` (re-exported
here for model authors). A user's own network: :mod:`closedloop.brian.network`.
The registry of built-in models: :mod:`closedloop.brian.registry`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from closedloop.brian.build import (
    BuildContext,
    CumulativeSource,
    ModelNetwork,
    StimulationInput,
    fixed_indegree,
)
from closedloop.brian.open_loop import OpenLoopRunner
from closedloop.core.model import PopulationModel

__all__ = [
    "BrianModel",
    # Re-exported from closedloop.brian.build, for model authors:
    "BuildContext",
    "CumulativeSource",
    "ModelNetwork",
    "StimulationInput",
    "fixed_indegree",
]


# --------------------------------------------------------------------------------------
# The model base class
# --------------------------------------------------------------------------------------
class BrianModel(PopulationModel):
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

    #: Parameters that must be the same for every instance (network sizes).
    shared_parameters: ClassVar[tuple[str, ...]] = ()
    description_extra: ClassVar[dict[str, str]] = {"simulator": "brian2"}

    def __init__(
        self,
        dt_s: float = 1e-4,
        n: int = 1,
        params: Mapping[str, float | Sequence[float] | np.ndarray] | None = None,
        regime: str | None = None,
    ) -> None:
        super().__init__(dt_s, n, params, regime)
        for key in self.shared_parameters:
            if np.ptp(self.param_values[key]) != 0:
                raise ValueError(
                    f"model parameter {key!r} sets the network size and must be the same "
                    f"for every instance, got {self.param_values[key].tolist()}"
                )
        self._check(self.param_values)
        self._runner: OpenLoopRunner | None = None

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
            Code-generation target (see :func:`closedloop.brian.runtime.select_target`);
            ``cpp_standalone`` is not available open loop.
        """
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
