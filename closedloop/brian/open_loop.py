"""A Brian2 model run open loop: what :meth:`BrianModel.reset` and :meth:`BrianModel.advance` use.

:class:`OpenLoopRunner` builds a model's network once under the chosen
runtime target and advances it by any number of integration steps with a
given stimulation array, returning the signal of every step, so that a
Brian2 model offers the open-loop interface of the Numba models
(chunk-invariant: advancing in pieces gives what advancing in one go gives).
It knows a model only through that model's public attributes (``n``,
``dt_s``, ``param_values``, ``build``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from closedloop.brian.build import BuildContext, StimulationInput, require_brian
from closedloop.brian.runtime import ORDER_OPERATION, ORDER_PROBE, select_target, set_default_dt

__all__ = ["OpenLoopRunner"]


class OpenLoopRunner:
    """A model's network run open loop, for :meth:`BrianModel.advance`.

    The stimulation array is copied into the network block by block (100
    steps at a time) by a network operation; the signal of every step is
    recorded by a monitor on a per-step probe for the duration of the call.

    Parameters
    ----------
    model : BrianModel
        The model (its ``n``, ``dt_s``, ``param_values`` and ``build`` are used).
    seeds : int or sequence of numpy.random.SeedSequence
        As for :meth:`BrianModel.reset`.
    target : {"auto", "cython", "numpy"}
        Code-generation target (:func:`closedloop.brian.runtime.select_target`).
    """

    BLOCK = 100

    def __init__(self, model: Any, seeds: Any, *, target: str = "auto") -> None:
        require_brian()
        import brian2
        from brian2 import Network, NetworkOperation, NeuronGroup, Synapses, second

        if target == "cpp_standalone":
            raise ValueError(
                "advance() runs open loop in the runtime; use BrianLoop for standalone"
            )
        if seeds is None or isinstance(seeds, int | np.integer):
            root = np.random.SeedSequence(seeds)
            seeds = root.spawn(model.n)
            brian_seed = int(root.generate_state(1, np.uint32)[0] % (2**31 - 1))
        else:
            seeds = list(seeds)
            if len(seeds) != model.n:
                raise ValueError(f"reset needs {model.n} seed sequences, got {len(seeds)}")
            brian_seed = int(seeds[0].generate_state(1, np.uint32)[0] % (2**31 - 1))
        self.model = model
        self.target_ = select_target(target)
        set_default_dt(model.dt_s)
        brian2.seed(brian_seed)
        n = model.n
        stim = StimulationInput("ring", steps=self.BLOCK, columns=n, dt_s=model.dt_s)
        self._ring = stim.view()
        ctx = BuildContext(
            n=n,
            rngs=[np.random.default_rng(s) for s in seeds],
            params={k: v.copy() for k, v in model.param_values.items()},
            stimulation=stim,
            dt_s=model.dt_s,
        )
        net = model.build(ctx)
        src = net.signal
        objects = list(net.objects)
        if len(src.group) == n and np.array_equal(src.instance_of, np.arange(n)):
            self._holder, self._var = src.group, src.variable
        else:
            probe = NeuronGroup(n, "cum : 1", order=ORDER_PROBE, name="cl_open_probe")
            summed = Synapses(
                src.group, probe, f"cum_post = {src.variable}_pre : 1 (summed)", name="cl_open_sum"
            )
            summed.connect(i=np.arange(len(src.group)), j=np.asarray(src.instance_of))
            objects += [probe, summed]
            self._holder, self._var = probe, "cum"
        self._scale = src.scale
        self._namespace = dict(net.namespace)
        self._op = NetworkOperation(
            self._fill_block,
            dt=self.BLOCK * model.dt_s * second,
            when="groups",
            order=ORDER_OPERATION,
        )
        self._op.active = False
        objects.append(self._op)
        self.net = Network(*objects)
        self.step = 0
        self._abs_step = 0
        self._last = np.zeros(n)
        self._stim: np.ndarray | None = None
        self._stim_start = 0

    def _fill_block(self) -> None:
        stim = self._stim
        if stim is None:  # the operation is active only while a stimulation is set
            return
        b = self.BLOCK
        start = int(round(self.net.t_ / self.model.dt_s))
        self._write(stim, start, start + b)

    def _write(self, stim: np.ndarray, start: int, stop: int) -> None:
        b = self.BLOCK
        lo = start - self._stim_start
        hi = min(stop - self._stim_start, stim.shape[1])
        if hi <= lo:
            return
        rows = (np.arange(start, start + hi - lo)) % b
        self._ring[rows, :] = stim[:, lo:hi].T

    def advance(self, n_steps: int, stimulation: np.ndarray | None) -> np.ndarray:
        from brian2 import StateMonitor, prefs, second

        n = self.model.n
        prefs.codegen.target = self.target_
        set_default_dt(self.model.dt_s)
        if stimulation is not None:
            stimulation = np.ascontiguousarray(stimulation, dtype=np.float64)
            if stimulation.shape != (n, n_steps):
                raise ValueError(
                    f"stimulation has shape {stimulation.shape}, expected {(n, n_steps)}"
                )
        self._ring[:] = 0.0
        if stimulation is not None and stimulation.any():
            self._stim = stimulation
            self._stim_start = self._abs_step
            # Up to the next block boundary now, then block by block.
            first_stop = (self._abs_step // self.BLOCK + 1) * self.BLOCK
            self._write(stimulation, self._abs_step, first_stop)
            self._op.active = True
        mon = StateMonitor(self._holder, self._var, record=True, when="end", name="cl_open_mon")
        self.net.add(mon)
        try:
            self.net.run(n_steps * self.model.dt_s * second, namespace=self._namespace)
            values = np.array(mon.variables[self._var].get_value()).T
        finally:
            self.net.remove(mon)
            self._op.active = False
            self._stim = None
        values = values[:, :n_steps]
        cum = np.concatenate([self._last[:, None], values], axis=1)
        self._last = values[:, -1].copy()
        out = np.diff(cum, axis=1) * (self._scale / self.model.dt_s)
        self.step += n_steps
        self._abs_step += n_steps
        return out
