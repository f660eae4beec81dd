"""Several runs of a sweep simulated together as one batch.

Runs of a sweep that differ only in model parameters, controller parameters
and seeds can share one simulation: one model of all their instances (model
parameters are per instance already), one :class:`ControllerStack` of their
controllers, one :class:`~closedloop.core.loop.ClosedLoop` whose seed groups are
the runs' own seeds, so each run's instances get exactly the noise streams
they get alone. Each run's file is then bit for bit what the run writes
simulated alone (:func:`closedloop.experiment.simulate_runs` computes each
run's metrics on its own rows).

Controller parameters: when every controller of the batch has a compiled
twin of the same kind (the built-in controllers do), the stack hands the
kernels one program whose parameter rows are the runs' own, so the whole
batch runs in one compiled call per chunk. Otherwise each run's controller
is called in Python on its own rows every period, which still shares the
kernel calls.

:func:`batched_loop` builds that loop; :mod:`closedloop.sweep.worker` runs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from closedloop.controllers.base import Controller
from closedloop.core.loop import ClosedLoop

__all__ = ["ControllerStack", "batched_loop"]


class ControllerStack(Controller):
    """Several controllers side by side over consecutive slices of the batch.

    Parameters
    ----------
    controllers : sequence of Controller
        One per run, in instance order.
    sizes : sequence of int
        Instances of each.

    Attributes
    ----------
    seeds : list of numpy.random.SeedSequence or None
        One per controller: :meth:`reset` gives controller ``k`` a generator
        from ``seeds[k]`` (what it gets in a run of its own), ignoring the
        generator it is given. Set from
        :attr:`closedloop.core.loop.ClosedLoop.controller_seeds`.
    """

    name = "stack"

    def __init__(self, controllers: Sequence[Controller], sizes: Sequence[int]) -> None:
        if len(controllers) != len(sizes) or not controllers:
            raise ValueError("ControllerStack needs one size per controller")
        self.controllers = list(controllers)
        self.sizes = [int(s) for s in sizes]
        self.seeds: list[np.random.SeedSequence] | None = None

    def get_params(self) -> dict[str, Any]:
        return {}

    def reset(self, n: int, rng: np.random.Generator) -> None:
        if n != sum(self.sizes):
            raise ValueError(f"the stack covers {sum(self.sizes)} instances, not {n}")
        bounds = np.cumsum([0, *self.sizes])
        self.slices_ = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        seeds = self.seeds if self.seeds is not None else [None] * len(self.controllers)
        for controller, size, seed in zip(self.controllers, self.sizes, seeds, strict=True):
            controller.reset(size, rng if seed is None else np.random.default_rng(seed))
        self.n_ = n

    def update(self, t: float, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        keys = None
        for k, (controller, sl) in enumerate(zip(self.controllers, self.slices_, strict=True)):
            part = controller.update(t, {name: value[sl] for name, value in features.items()})
            if keys is None:
                keys = set(part)
                for key in keys:
                    out[key] = np.empty(self.n_)
            elif set(part) != keys:
                # Alone, a left-out key keeps each run's own last command; a
                # stack cannot tell the loop that for some rows only.
                raise ValueError(
                    f"controllers of one batch returned different command keys "
                    f"({sorted(keys)} and {sorted(part)}); run them one by one"
                )
            for key, value in part.items():
                out[key][sl] = np.broadcast_to(
                    np.asarray(value, dtype=np.float64), (self.sizes[k],)
                )
        return out

    def compiled(self) -> tuple[int, np.ndarray, np.ndarray] | None:
        """One program for the kernels from the controllers' own, row blocks stacked."""
        compiled = [c.compiled() for c in self.controllers]
        programs = [p for p in compiled if p is not None]
        if not programs:
            return None
        if len(programs) < len(compiled):
            raise ValueError("some controllers of the batch have a compiled twin and some not")
        kinds = {int(p[0]) for p in programs}
        if len(kinds) != 1:
            raise ValueError("controllers of one batch compile to different kinds")
        params = [np.asarray(p[1], dtype=np.float64) for p in programs]
        states = [np.asarray(p[2], dtype=np.float64) for p in programs]
        if len({a.shape[1:] for a in params}) != 1 or len({a.shape[1:] for a in states}) != 1:
            raise ValueError("controllers of one batch compile to programs of different shapes")
        return kinds.pop(), np.concatenate(params), np.concatenate(states)


def batched_loop(exps: Sequence[Any]) -> Any:
    """One loop simulating several validated experiments' runs together.

    Parameters
    ----------
    exps : sequence of closedloop.config.schema.ResolvedExperiment
        Runs that differ only in model parameters, controller parameters and
        seeds.

    Returns
    -------
    closedloop.core.loop.ClosedLoop

    Raises
    ------
    ValueError
        When the runs cannot share a simulation.
    """
    first = exps[0]
    loop0 = first.loop
    model0 = loop0.model
    kinds = {tuple((type(p), p.name) for p in exp.loop.slow) for exp in exps}
    if len(kinds) > 1:
        raise ValueError("these runs have different slow processes")
    for exp in exps[1:]:
        loop = exp.loop
        if (
            type(loop.model) is not type(model0)
            or loop.model.dt_s != model0.dt_s
            or loop.sensing != loop0.sensing
            or loop.device != loop0.device
            or type(loop.controller) is not type(loop0.controller)
            or loop.control_period_s != loop0.control_period_s
            or loop.latency_steps != loop0.latency_steps
            or loop.engine != loop0.engine
        ):
            raise ValueError("these runs differ in more than model and controller parameters")
    sizes = [exp.loop.n for exp in exps]
    params = {
        key: np.concatenate([exp.loop.model.param_values[key] for exp in exps])
        for key in model0.param_values
    }
    # like() carries settings outside the parameters (and refuses what it cannot).
    model = model0.like(n=sum(sizes), params=params)
    stack = ControllerStack([exp.loop.controller for exp in exps], sizes)
    # Each slow process for all runs' instances (raises NotImplementedError
    # for one that cannot be batched: the plan then never groups its runs).
    slow = [
        type(group[0]).concatenate(group, sizes)
        for group in zip(*(exp.loop.slow for exp in exps), strict=True)
    ]
    loop = ClosedLoop(
        model,
        loop0.sensing,
        loop0.device,
        stack,
        control_period_s=first.config.control.period_s,
        latency_s=first.config.control.latency_s,
        seed=[exp.config.seed for exp in exps],
        engine=loop0.engine,
        slow=slow,
        epochs=loop0.slow_clock.epochs,
    )
    stack.seeds = loop.controller_seeds
    return loop
