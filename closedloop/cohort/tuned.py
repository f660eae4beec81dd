"""A controller whose parameters are set per patient between runs of the loop.

The clinic loop (:mod:`closedloop.cohort.clinic`) reprograms each patient's
controller at visits while every patient of a batch shares one loop. A
:class:`TunedController` holds one controller of the same class per
instance; reprogramming instance ``i`` builds a new controller with the new
parameters and resets it, as a programmer's tablet restarts the device's
algorithm with the new settings.

With a compiled twin (every built-in controller has one), the program the
loop's kernels run is made of the instances' own parameter and state rows,
in arrays this controller owns and the loop keeps
(:func:`closedloop.core.loop.controller_program` does not copy a C-contiguous
float64 array): reprogramming writes the new rows in place, so the next
chunk of the loop runs with them, however many patients share the batch.
Without a twin, :meth:`update` calls each instance's controller on its row.
No controller needed a change: any controller class whose constructor
takes its parameters by keyword (``get_params``) can be tuned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from closedloop.controllers.base import Controller

__all__ = ["TunedController"]


class TunedController(Controller):
    """One controller per instance, each reprogrammable (see the module docstring).

    Parameters
    ----------
    controllers : sequence of Controller
        Templates, one per seed group (a run of a batch), all of one class;
        their parameters are each instance's starting settings.
    sizes : sequence of int
        Instances of each template.
    seeds : sequence of numpy.random.SeedSequence, optional
        One per instance: the generator each instance's controller is reset
        with (at :meth:`reset` and at every reprogramming).

    Attributes
    ----------
    controllers_ : list of Controller
        The instances' controllers, after :meth:`reset`.
    params_, state_ : ndarray
        The compiled program's rows ``(n, P)`` and ``(n, S)``, or None
        without a compiled twin.
    """

    name = "tuned"
    controllers_: list[Controller]
    kind_: int | None
    params_: np.ndarray | None
    state_: np.ndarray | None

    def __init__(
        self,
        controllers: Sequence[Controller],
        sizes: Sequence[int],
        seeds: Sequence[np.random.SeedSequence] | None = None,
    ) -> None:
        classes = {type(c) for c in controllers}
        if len(classes) != 1:
            raise ValueError("a tuned batch needs controllers of one class")
        self.templates = list(controllers)
        self.sizes = [int(s) for s in sizes]
        self.seeds = seeds
        # per instance of this class: the templates' class decides
        self.required_features = self.templates[0].required_features  # type: ignore[misc]

    def get_params(self) -> dict[str, Any]:
        """No parameters of its own (each instance's are in :meth:`instance_params`)."""
        return {}

    def instance_params(self, i: int) -> dict[str, Any]:
        """The parameters instance ``i``'s controller runs with now."""
        return self.controllers_[i].get_params()

    def _rng(self, i: int) -> np.random.Generator:
        seed = None if self.seeds is None else self.seeds[i]
        return np.random.default_rng(seed if seed is not None else i)

    def reset(self, n: int, rng: np.random.Generator) -> None:
        """One controller per instance with its template's parameters; build the program."""
        if n != sum(self.sizes):
            raise ValueError(f"the tuned controller covers {sum(self.sizes)} instances, not {n}")
        self.n_ = n
        cls = type(self.templates[0])
        self.controllers_ = []
        for template, size in zip(self.templates, self.sizes, strict=True):
            for _ in range(size):
                c = cls(**template.get_params())
                c.reset(1, self._rng(len(self.controllers_)))
                self.controllers_.append(c)
        programs = [p for c in self.controllers_ if (p := c.compiled()) is not None]
        if len(programs) < len(self.controllers_):
            self.kind_, self.params_, self.state_ = None, None, None
            return
        kinds = {int(p[0]) for p in programs}
        if len(kinds) != 1:
            raise ValueError("the instances' controllers compile to different kinds")
        self.kind_ = kinds.pop()
        self.params_ = np.ascontiguousarray(np.concatenate([p[1] for p in programs]), np.float64)
        self.state_ = np.ascontiguousarray(np.concatenate([p[2] for p in programs]), np.float64)

    def set_instance_params(self, i: int, params: Mapping[str, Any]) -> None:
        """Reprogram instance ``i`` with ``params`` (the others keep theirs).

        Raises
        ------
        ValueError
            From the controller, naming a parameter out of its range.
        """
        old = self.controllers_[i]
        new = type(old)(**{**old.get_params(), **params})
        new.reset(1, self._rng(i))
        self.controllers_[i] = new
        if self.params_ is not None and self.state_ is not None:
            program = new.compiled()
            if program is None:
                raise ValueError(f"instance {i}'s controller with {dict(params)} has no program")
            kind, p, s = program
            self.params_[i] = np.asarray(p, dtype=np.float64)[0]
            self.state_[i] = np.asarray(s, dtype=np.float64)[0]

    def update(self, t: float, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each instance's controller on its own row."""
        out: dict[str, np.ndarray] = {}
        keys = None
        for i, c in enumerate(self.controllers_):
            part = c.update(t, {k: v[i : i + 1] for k, v in features.items()})
            if keys is None:
                keys = set(part)
                out = {k: np.empty(self.n_) for k in keys}
            elif set(part) != keys:
                raise ValueError("the instances' controllers returned different command keys")
            for k, v in part.items():
                out[k][i] = float(np.asarray(v, dtype=np.float64).reshape(-1)[0])
        return out

    def compiled(self) -> tuple[int, np.ndarray, np.ndarray] | None:
        """The instances' rows, in arrays reprogramming writes in place."""
        if self.kind_ is None or self.params_ is None or self.state_ is None:
            return None
        return self.kind_, self.params_, self.state_

    def thresholds(self) -> dict[str, float]:
        """The first template's thresholds."""
        return self.templates[0].thresholds()
