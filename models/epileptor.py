"""The Epileptor: recurrent seizures from a slow permittivity variable.

Six state variables on three time scales (Jirsa et al. 2014): a fast
subsystem ``(x1, y1)`` that generates the ictal discharges, an intermediate
one ``(x2, y2)`` that generates spike-and-wave events, low-pass coupled to the
first through ``g``, and the slow *permittivity* variable ``z`` that drives
the alternation between interictal and ictal periods::

    tau1 dx1/dt = y1 - f1(x1, x2, z) - z + Irest1 + I_stim
    tau1 dy1/dt = y0 - 5 x1^2 - y1
    tau0 dz/dt  = 4 (x1 - x0) - z
         dx2/dt = -x2^3 + x2 - y2 + Irest2 + 2 g - 0.3 (z - 3.5)
    tau2 dy2/dt = -y2 + f2(x2)
         dg/dt  = -gamma (g - 0.1 x1)

    f1 = x1^3 - 3 x1^2               if x1 < 0
         (x2 - 0.6 (z - 4)^2) x1     if x1 >= 0
    f2 = 0                           if x2 < -0.25
         6 (x2 + 0.25)               if x2 >= -0.25

``g`` is the paper's integral ``g(x1)`` written as the equivalent first-order
filter, as The Virtual Brain (TVB) implements it. While the fast subsystem
rests, ``z`` falls until the resting state disappears in a saddle-node
bifurcation (seizure onset); during the seizure ``z`` rises until the limit
cycle ends in a homoclinic bifurcation (offset). In between, rest and seizure
coexist (bistability), which is what lets a stimulus end a seizure early.

Time
----
The equations are in the model's own time unit; ``time_unit_s`` maps it to
seconds, and every framework-facing quantity (``dt_s``, the signal's sampling,
``tau_stim_s``) is in seconds. The integration step in model units is
``h = dt_s / time_unit_s`` (Euler-Maruyama); ``h / tau1`` above 0.05 is
refused because Euler then misses the seizure durations by more than a few
percent (measured here: 988 model units at h = 0.005, 1008 at 0.02, 1160 at
0.1). ``time_unit_s = 20 ms`` is chosen here, not taken from the paper: with
the standard parameters a seizure then lasts about 19 s and recurs about every
38 s, the fast discharges run at about 6 to 14 Hz and slow into spike-and-wave
complexes near 1.5 Hz before offset.

Noise
-----
Additive white noise on ``x2`` and ``y2`` of intensity ``nsig`` = 1e-3 (model
units squared per model time unit), as in the Epileptor's default table in
TVB: each step adds ``sqrt(2 nsig h)`` times a standard normal deviate (TVB's
``Additive`` noise, ``g(x) = sqrt(2 D)``), drawn from the instance's own
seeded stream. ``nsig_x1`` and ``nsig_y1`` default to 0.

Signal
------
``lfp`` is ``-x1 + x2``, the Epileptor's field-potential proxy (Jirsa et al.
2014; TVB's variable of interest ``x2 - x1``), dimensionless.

Stimulation
-----------
The input is the device's average cathodic current per step ``I_cath``
(mA), smoothed by a first-order filter ``u`` of time constant
``tau_stim_s`` (s): ``I_stim = stim_gain * u`` enters the fast subsystem's
``x1`` equation, in the same place as ``Irest1``. The sign and the gain are
chosen here: ``stim_gain < 0`` makes a burst a hyperpolarising input to the
fast subsystem, which pushes ``(x1, y1)`` off the seizure limit cycle. The
seizure ends if the trajectory lands in the basin of the resting state, which
exists only once ``z`` has risen back above the fold of the resting branch
(``z = 2.915`` with the standard parameters), where rest and seizure coexist:
Jirsa et al. (2014) propose that normal and ictal states coexist, and Taylor
et al. (2014) showed that a pulse can abate a seizure in such a bistable
setting, with timing and amplitude deciding whether it succeeds. Measured
here with the standard parameters and the default gain (-40 per mA), a
single 100 ms burst of 200 Hz, 160 us pulses (responsive neurostimulation
settings, Sun & Morrell 2014) ends a seizure of about 19 s within 0.1 s when
delivered 1 s or more after onset at 2 mA, 5 s or more at 1 mA; earlier
bursts only delay it. A positive gain would instead trigger seizures.

Stimulation does not act on ``z``, and ``z`` rises only while the fast
subsystem seizes: a seizure cut short leaves ``z`` low, so the next one comes
sooner (measured: the interictal interval that follows lasts 1.2 to 1.8
times as long as the shortened seizure did, against about 1 for a full
one). Bursts strong enough to stop seizures right at onset (2 mA at 1 s
intervals) hold the fast subsystem near rest while ``z`` keeps falling below
the fold, and the seizure restarts within a second of every burst.
``experiments/epileptor_responsive.yaml`` uses 1 mA, where early bursts fail
and a later one ends the seizure.

Parameter provenance
--------------------
``x0 = -1.6``, ``y0 = 1``, ``tau0 = 2857``, ``tau1 = 1``, ``tau2 = 10``,
``Irest1 = 3.1``, ``Irest2 = 0.45``, ``gamma = 0.01`` and the fixed
coefficients of the equations: Jirsa et al. (2014), the same as TVB's
defaults (``r = 0.00035 = 1/tau0``). Noise: TVB's Epileptor defaults.
``time_unit_s``, ``stim_gain`` and ``tau_stim_s``: chosen here (see above).
The ``interictal`` regime (``x0 = -2.2``) lies below the seizure threshold of
``x0``, about -2.06 (where the ``z`` nullcline ``z = 4 (x1 - x0)`` meets the
fold of the fast subsystem's resting branch, ``x1 = -4/3``, ``z = 2.92``), so
the resting state never disappears: no seizures, only interictal spikes of
the ``x2`` subsystem.

References
----------
Jirsa VK, Stacey WC, Quilichini PP, Ivanov AI, Bernard C (2014) On the nature
of seizure dynamics. Brain 137:2210-2230.
Sanz Leon P et al. (2013) The Virtual Brain: a simulator of primate brain
network dynamics. Front Neuroinform 7:10 (``tvb.simulator.models.Epileptor``).
Taylor PN, Wang Y, Goodfellow M, Dauwels J, Moeller F, Stephani U, Baier G
(2014) A computational study of stimulus driven epileptic seizure abatement.
PLoS One 9:e114316.
Sun FT, Morrell MJ (2014) The RNS System: responsive cortical stimulation for
the treatment of refractory partial epilepsy. Expert Rev Med Devices
11:563-572.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from closedloop.core.jit import njit, prange
from closedloop.core.model import NumbaModel, Parameter
from closedloop.core.period import (
    close_period,
    close_plain_period,
    plain_state,
)
from closedloop.core.period_packed import next_period
from closedloop.core.random import normal
from closedloop.device import device_fill, pulse_fill, queue_push

__all__ = ["Epileptor"]

_JIRSA = "Jirsa et al. 2014"
_TVB = "The Virtual Brain, Epileptor defaults"
_HERE = "closedloop (see module notes)"
_MU = "model time units"

#: Largest integration step, in units of tau1, that the model accepts.
MAX_STEP_OVER_TAU1 = 0.05

# Columns of the state array.
_X1, _Y1, _Z, _X2, _Y2, _G, _U = range(7)


class Epileptor(NumbaModel):
    """The Epileptor of Jirsa et al. (2014), batched, with a stimulation input.

    See the module docstring for equations, time scale, units, stimulation
    and parameter provenance.

    Parameters
    ----------
    dt_s : float
        Integration step, s; ``dt_s / time_unit_s`` must not exceed
        ``0.05 * tau1`` (model units).
    n : int
        Number of independent instances.
    params : mapping, optional
        Parameter overrides (scalars or one value per instance).
    regime : {"epileptogenic", "interictal"}, optional
        ``epileptogenic`` (default): the paper's parameters, recurrent
        seizures; ``interictal``: ``x0 = -2.2``, no seizures.

    Raises
    ------
    ValueError
        Naming the parameter, for values out of range or a step too long
        for the time scale.

    References
    ----------
    .. [1] Jirsa VK, Stacey WC, Quilichini PP, Ivanov AI, Bernard C (2014)
       On the nature of seizure dynamics. Brain 137:2210-2230.
    """

    name = "epileptor"
    state_variables = {
        "x1": "1",  # fast subsystem, ictal discharges
        "y1": "1",
        "z": "1",  # slow permittivity variable
        "x2": "1",  # intermediate subsystem, spike-and-wave events
        "y2": "1",
        "g": "1",  # low-pass filter of x1 coupling it to x2
        "u": "mA",  # filtered mean cathodic current
    }
    signal_name = "lfp"
    signal_units = "1"
    signal_description = "Epileptor field potential proxy -x1 + x2 (dimensionless)"
    stimulation_units = "mA"
    stimulation_description = (
        "average cathodic current per integration step, mA; enters the x1 equation "
        "as stim_gain * u, u its first-order filter (tau_stim_s)"
    )
    parameters = {
        "x0": Parameter(
            -1.6, "1", "epileptogenicity (excitability threshold)", _JIRSA, minimum=-5, maximum=0
        ),
        "y0": Parameter(1.0, "1", "y1 offset", _JIRSA, minimum=-10, maximum=10),
        "tau0": Parameter(
            2857.0, _MU, "time constant of the permittivity z", _JIRSA, positive=True
        ),
        "tau1": Parameter(1.0, _MU, "time constant of the fast subsystem", _JIRSA, positive=True),
        "tau2": Parameter(10.0, _MU, "time constant of y2", _JIRSA, positive=True),
        "Irest1": Parameter(
            3.1, "1", "input current to the fast subsystem", _JIRSA, minimum=-10, maximum=10
        ),
        "Irest2": Parameter(
            0.45, "1", "input current to the x2 subsystem", _JIRSA, minimum=-10, maximum=10
        ),
        "gamma": Parameter(
            0.01, f"1/({_MU})", "decay rate of the x1 filter g", _JIRSA, positive=True
        ),
        "nsig_x1": Parameter(0.0, f"1/({_MU})", "noise intensity D on x1", _TVB, minimum=0),
        "nsig_y1": Parameter(0.0, f"1/({_MU})", "noise intensity D on y1", _TVB, minimum=0),
        "nsig_x2": Parameter(1e-3, f"1/({_MU})", "noise intensity D on x2", _TVB, minimum=0),
        "nsig_y2": Parameter(1e-3, f"1/({_MU})", "noise intensity D on y2", _TVB, minimum=0),
        "time_unit_s": Parameter(0.02, "s", "seconds per model time unit", _HERE, positive=True),
        "stim_gain": Parameter(
            -40.0,
            "1/mA",
            "x1 input per mA of filtered mean cathodic current",
            _HERE,
            minimum=-1e4,
            maximum=1e4,
        ),
        "tau_stim_s": Parameter(
            0.01, "s", "stimulation input filter time constant", _HERE, positive=True
        ),
    }
    regimes = {
        "epileptogenic": {},
        # Below the seizure threshold of x0: the resting state never disappears.
        "interictal": {"x0": -2.2},
    }
    default_regime = "epileptogenic"
    references = (
        "Jirsa VK, Stacey WC, Quilichini PP, Ivanov AI, Bernard C (2014) Brain 137:2210-2230",
        "Sanz Leon P et al. (2013) Front Neuroinform 7:10 (TVB Epileptor defaults)",
        "Taylor PN et al. (2014) PLoS One 9:e114316",
    )

    def __init__(
        self,
        dt_s: float = 2e-4,
        n: int = 1,
        params: Mapping[str, float | Sequence[float] | np.ndarray] | None = None,
        regime: str | None = None,
    ) -> None:
        super().__init__(dt_s=dt_s, n=n, params=params, regime=regime)
        h = self.dt_s / (self.param_values["time_unit_s"] * self.param_values["tau1"])
        if np.any(h > MAX_STEP_OVER_TAU1 * (1.0 + 1e-9)):
            raise ValueError(
                f"model.dt_s = {self.dt_s:g} s is too long for model parameters 'time_unit_s' "
                f"and 'tau1': dt_s / (time_unit_s * tau1) must not exceed "
                f"{MAX_STEP_OVER_TAU1:g}, got {float(h.max()):.3g}"
            )

    def _initial_state(self) -> dict[str, np.ndarray]:
        # Interictal rest, z part-way down its interictal descent: with the
        # standard parameters the first seizure comes after about 13 s.
        x = np.zeros((self.n, 7))
        x[:, _X1] = -1.8
        x[:, _Y1] = self.param_values["y0"] - 5.0 * 1.8**2
        x[:, _Z] = 3.6
        x[:, _X2] = -0.97
        x[:, _G] = -0.18
        return {"x": x}

    def kernel_state(self) -> tuple:
        return (self.state["x"], self.record, self.rng_)

    @property
    def z(self) -> np.ndarray:
        """The slow permittivity variable of every instance now, shape ``(n,)``."""
        return self.state["x"][:, _Z].copy()

    def observables(self) -> dict[str, np.ndarray]:
        """Slow state worth recording alongside the signal, now, shape ``(n,)`` each.

        Returns
        -------
        dict of str to ndarray
            ``z``, the slow permittivity variable (dimensionless; units in
            :attr:`state_variables`). It changes over tens of seconds, so
            sampling it once per recorded chunk (1 s) is enough to draw it.
        """
        return {"z": self.z}


@njit(cache=True)
def advance_one(i, n_steps, step0, dt, model, drive, out):
    x, p, rng = model
    rec = p[i]
    x1 = x[i, _X1]
    y1 = x[i, _Y1]
    z = x[i, _Z]
    x2 = x[i, _X2]
    y2 = x[i, _Y2]
    g = x[i, _G]
    u = x[i, _U]
    h = dt / rec.time_unit_s  # step in model time units
    h1 = h / rec.tau1
    h0 = h / rec.tau0
    h2 = h / rec.tau2
    hg = h * rec.gamma
    k_u = dt / rec.tau_stim_s
    gain = rec.stim_gain
    i1 = rec.Irest1
    i2 = rec.Irest2
    y0 = rec.y0
    x0 = rec.x0
    s_x1 = math.sqrt(2.0 * rec.nsig_x1 * h)
    s_y1 = math.sqrt(2.0 * rec.nsig_y1 * h)
    s_x2 = math.sqrt(2.0 * rec.nsig_x2 * h)
    s_y2 = math.sqrt(2.0 * rec.nsig_y2 * h)
    for j in range(n_steps):
        if x1 < 0.0:
            f1 = x1 * x1 * (x1 - 3.0)
        else:
            zz = z - 4.0
            f1 = (x2 - 0.6 * zz * zz) * x1
        f2 = 0.0 if x2 < -0.25 else 6.0 * (x2 + 0.25)
        dx1 = y1 - f1 - z + i1 + gain * u
        dy1 = y0 - 5.0 * x1 * x1 - y1
        dz = 4.0 * (x1 - x0) - z
        dx2 = -x2 * x2 * x2 + x2 - y2 + i2 + 2.0 * g - 0.3 * (z - 3.5)
        dy2 = f2 - y2
        dg = 0.1 * x1 - g
        u += k_u * (drive[i, j] - u)
        x1 += h1 * dx1
        y1 += h1 * dy1
        z += h0 * dz
        x2 += h * dx2
        y2 += h2 * dy2
        g += hg * dg
        # Draw order fixed (x1, y1, x2, y2), skipping zero intensities.
        if s_x1 > 0.0:
            x1 += s_x1 * normal(rng, i)
        if s_y1 > 0.0:
            y1 += s_y1 * normal(rng, i)
        if s_x2 > 0.0:
            x2 += s_x2 * normal(rng, i)
        if s_y2 > 0.0:
            y2 += s_y2 * normal(rng, i)
        out[i, j] = x2 - x1
    x[i, _X1] = x1
    x[i, _Y1] = y1
    x[i, _Z] = z
    x[i, _X2] = x2
    x[i, _Y2] = y2
    x[i, _G] = g
    x[i, _U] = u


# Batch kernels: closedloop.core.batch_kernels.PATTERN, verbatim (tests check it).


@njit(cache=True)
def advance_serial(n_steps, step0, dt, model, drive, out):
    for i in range(out.shape[0]):
        advance_one(i, n_steps, step0, dt, model, drive, out)


@njit(cache=True, parallel=True)
def advance_parallel(n_steps, step0, dt, model, drive, out):
    for i in prange(out.shape[0]):
        advance_one(np.int64(i), n_steps, step0, dt, model, drive, out)


@njit(cache=True, inline="always")
def _plain_one(i, n_periods, k0, step0, times, state):
    spp, dt, latency_steps, period_s = times
    model, device, sensing, io, program = state
    drive, net, signal = io[0], io[1], io[2]
    plain = plain_state(sensing, io, spp)
    step = step0
    for k in range(k0, k0 + n_periods):
        pulse_fill(i, spp, step, dt, device, drive, net)
        advance_one(i, spp, step, dt, model, drive, signal)
        step += spp
        close_plain_period(i, k, step, device, plain, program, latency_steps, period_s)


@njit(cache=True, inline="always")
def _general_one(i, n_periods, k0, step0, times, state):
    spp, dt, latency_steps, period_s = times
    model, device, sensing, io, program = state
    drive, net, signal = io[0], io[1], io[2]
    step = step0
    for k in range(k0, k0 + n_periods):
        device_fill(i, spp, step, dt, device, drive, net)
        advance_one(i, spp, step, dt, model, drive, signal)
        step += spp
        close_period(i, k, spp, step, device, sensing, io, program, latency_steps, period_s)


@njit(cache=True)
def _periods_block(lo, hi, n_periods, k0, step0, times, state, general):
    for i in range(lo, hi):
        if general is None:  # every period plain: the general code is not compiled
            _plain_one(i, n_periods, k0, step0, times, state)
        else:
            _general_one(i, n_periods, k0, step0, times, state)


@njit(cache=True)
def periods_serial(
    n_periods,
    spp,
    step0,
    dt,
    model,
    device,
    sensing,
    io,
    k0,
    program,
    latency_steps,
    period_s,
    command,
    effective_step,
    general,
):
    queue_push(device, command, effective_step)
    times = (spp, dt, latency_steps, period_s)
    state = (model, device, sensing, io, program)
    n = io[0].shape[0]
    for b in range((n + 15) // 16):  # the parallel kernel's blocks, one after another
        lo = np.int64(b) * 16
        _periods_block(lo, min(n, lo + 16), n_periods, k0, step0, times, state, general)


@njit(cache=True)
def periods_packed(lent_types, pool, command, effective_step, general):
    state, times, step0, k0 = next_period(lent_types, pool)
    device, io = state[1], state[3]
    queue_push(device, command, effective_step)
    for i in range(io[0].shape[0]):
        if general is None:
            _plain_one(i, 1, k0, step0, times, state)
        else:
            _general_one(i, 1, k0, step0, times, state)


@njit(cache=True, parallel=True)
def periods_parallel(
    n_periods,
    spp,
    step0,
    dt,
    model,
    device,
    sensing,
    io,
    k0,
    program,
    latency_steps,
    period_s,
    command,
    effective_step,
    general,
):
    queue_push(device, command, effective_step)
    n = io[0].shape[0]
    for b in prange((n + 15) // 16):  # blocks of 16 instances
        lo = np.int64(b) * 16  # int64 like the serial loop's: one compilation
        times = (spp, dt, latency_steps, period_s)  # made here: a parfor takes no nested tuple
        state = (model, device, sensing, io, program)
        _periods_block(lo, min(n, lo + 16), n_periods, k0, step0, times, state, general)
