"""Brian2-code twins of the built-in controllers, and the closed loop as generated code.

The built-in controllers whose update is simple arithmetic (``open_loop``,
``on_off``, ``dual_threshold``, ``pid``) describe themselves to the compiled
kernels as a program (:meth:`closedloop.controllers.Controller.compiled`).
:func:`controller_code` turns the same program into Brian2 abstract code, a
``run_regularly`` operation that reads a ``biomarker`` variable and writes
``cmd_amp`` (mA), ``cmd_freq`` (Hz) and ``cmd_pw`` (us), step for step as
:func:`closedloop.controllers.compiled.controller_update` does. Brian2 turns
it into C++ or Cython like any model equation, so with the sensing chain and
the device also written as Brian2 code (:func:`sensing_code`,
:func:`device_code`) a ``cpp_standalone`` program runs the whole closed loop
with no Python in it (:func:`closedloop.brian.standalone.run_standalone`,
used by :class:`closedloop.brian.loop.BrianLoop`).

Brian2's abstract code has no ``if``: choices go through :data:`FUNCTIONS`,
``cl_select(c, a, b)`` (``a`` where ``c != 0``, else ``b``), ``cl_fmin`` and
``cl_fmax`` (NaN-ignoring, like :func:`numpy.fmin`) and ``cl_isfinite``,
each implemented for the C++, Cython and numpy targets.

:func:`simulate_controller_code` feeds a biomarker sequence to a controller's
Brian2 twin and returns its commands; ``tests/test_brian_codegen.py`` checks
them against the Python class, on the runtime targets and in
``cpp_standalone``.

What the generated loop supports
--------------------------------
The generated sensing chain is the project's: the boxcar mean over each
sensing interval, stimulation artefact, sensor noise (drawn with Brian2's
``randn``, so a different stream from the Numba chain's), the same band-pass
second-order sections in direct form II transposed, and the ``power``
envelope (``envelope_tau_s``). The ``arv`` envelope (a sliding window),
the moving-average smoothing and the extra features need per-sample ring
buffers and are refused in ``cpp_standalone`` with a message. The generated
device delivers continuous pulse trains (commands without ``pulses``, which
is what these four controllers issue) with the device's limits, ramp,
charge limit and exact integration of pulse edges over each step; a command
takes effect ``latency_s`` after the end of its period, which must be shorter
than a control period (one pending command per instance).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from closedloop.brian.runtime import select_target, standalone_device
from closedloop.controllers import compiled as compiled_twins
from closedloop.controllers.base import Controller

__all__ = [
    "FUNCTIONS",
    "ControllerCode",
    "controller_code",
    "device_code",
    "device_initial",
    "device_namespace",
    "sensing_code",
    "simulate_controller_code",
    "twin_program",
]

_KINDS = {
    compiled_twins.OPEN_LOOP: "open_loop",
    compiled_twins.ON_OFF: "on_off",
    compiled_twins.DUAL_THRESHOLD: "dual_threshold",
    compiled_twins.PID: "pid",
}


# --------------------------------------------------------------------------------------
# Helper functions for generated code
# --------------------------------------------------------------------------------------
def _make_functions() -> dict[str, Any]:
    from brian2 import Function

    specs = {
        "cl_select": (
            lambda c, a, b: np.where(np.asarray(c) != 0, a, b),
            3,
            "static inline double cl_select(const double c, const double a, const double b)"
            "\n{ return c != 0.0 ? a : b; }",
            "cdef double cl_select(double c, double a, double b):\n"
            "    if c != 0.0:\n        return a\n    return b\n",
        ),
        "cl_fmin": (
            np.fmin,
            2,
            "static inline double cl_fmin(const double a, const double b) { return fmin(a, b); }",
            "cdef double cl_fmin(double a, double b):\n"
            "    if a != a:\n        return b\n    if b != b:\n        return a\n"
            "    if a < b:\n        return a\n    return b\n",
        ),
        "cl_fmax": (
            np.fmax,
            2,
            "static inline double cl_fmax(const double a, const double b) { return fmax(a, b); }",
            "cdef double cl_fmax(double a, double b):\n"
            "    if a != a:\n        return b\n    if b != b:\n        return a\n"
            "    if a > b:\n        return a\n    return b\n",
        ),
        "cl_isfinite": (
            lambda x: np.isfinite(x).astype(np.float64),
            1,
            "static inline double cl_isfinite(const double x) { return isfinite(x) ? 1.0 : 0.0; }",
            "cdef double cl_isfinite(double x):\n"
            "    if x != x or x == float('inf') or x == -float('inf'):\n        return 0.0\n"
            "    return 1.0\n",
        ),
    }
    out = {}
    for name, (pyfunc, n_args, cpp, cython) in specs.items():
        f = Function(
            pyfunc,
            arg_units=[1] * n_args,
            return_unit=1,
            arg_types=["any"] * n_args,
            return_type="float",
            stateless=True,
        )
        f.implementations.add_implementation("cpp", code=cpp, name=name)
        f.implementations.add_implementation("cython", code=cython, name=name)
        out[name] = f
    return out


class _Functions(dict):
    """``cl_select``, ``cl_fmin``, ``cl_fmax``, ``cl_isfinite``, made on first use."""

    def _fill(self) -> None:
        if not super().__len__():
            super().update(_make_functions())

    def __getitem__(self, key: str) -> Any:
        self._fill()
        return super().__getitem__(key)

    def items(self):
        self._fill()
        return super().items()

    def keys(self):
        self._fill()
        return super().keys()

    def __iter__(self):
        self._fill()
        return super().__iter__()

    def __len__(self) -> int:
        self._fill()
        return super().__len__()


#: Brian2 functions the generated code uses, for a group's namespace.
FUNCTIONS: dict[str, Any] = _Functions()


# --------------------------------------------------------------------------------------
# Controller twins
# --------------------------------------------------------------------------------------
@dataclass
class ControllerCode:
    """A controller as Brian2 code for a group with one row per instance.

    Attributes
    ----------
    name : str
        Which twin (``open_loop``, ``on_off``, ``dual_threshold``, ``pid``).
    equations : str
        Variables to declare: parameters ``cp_k`` (constant), state ``cs_k``,
        commands ``cmd_amp`` (mA), ``cmd_freq`` (Hz), ``cmd_pw`` (us).
    code : str
        Abstract code; reads ``biomarker``, ``cl_period`` (s, a namespace
        constant) and a gate ``cl_gate`` (the update happens where it is not
        0, nothing changes elsewhere), defined before it.
    params : ndarray, shape (n, P)
        Values of ``cp_0 .. cp_{P-1}``.
    state : ndarray, shape (n, S)
        Initial values of ``cs_0 .. cs_{S-1}``.
    """

    name: str
    equations: str
    code: str
    params: np.ndarray
    state: np.ndarray

    def initialise(self, group: Any, rows: slice | np.ndarray | None = None) -> None:
        """Set the parameters and state of ``group`` (all rows, or ``rows``)."""
        rows = slice(None) if rows is None else rows
        for k in range(self.params.shape[1]):
            getattr(group, f"cp_{k}")[rows] = self.params[:, k]
        for k in range(self.state.shape[1]):
            getattr(group, f"cs_{k}")[rows] = self.state[:, k]


def twin_program(controller: Controller) -> tuple[int, np.ndarray, np.ndarray]:
    """The controller's compiled program ``(kind, params, state)``, if it has a Brian2 twin.

    Raises
    ------
    ValueError
        Saying which controllers have a twin and what to use instead.
    """
    program = controller.compiled()
    if program is None or int(program[0]) not in _KINDS:
        raise ValueError(
            f"controller {type(controller).__name__} has no Brian2 code twin (the built-in "
            f"{', '.join(sorted(_KINDS.values()))} have one); run it with a runtime target "
            "(cython or numpy), where any controller runs in Python"
        )
    kind, params, state = program
    return int(kind), np.array(params, dtype=float, ndmin=2), np.array(state, dtype=float, ndmin=2)


def controller_code(controller: Controller) -> ControllerCode:
    """The Brian2 twin of a controller (already :meth:`~Controller.reset`).

    Parameters
    ----------
    controller : Controller
        A built-in controller with a compiled program (or a subclass keeping it).

    Returns
    -------
    ControllerCode

    Raises
    ------
    ValueError
        If the controller has no twin.
    """
    kind, params, state = twin_program(controller)
    if kind == compiled_twins.PID:
        # One more parameter: whether the derivative term is on (kd != 0).
        params = np.column_stack([params, (params[:, 3] != 0).astype(float)])
    g = "cl_gate"
    if kind == compiled_twins.OPEN_LOOP:
        code = f"""
        cmd_amp = cl_select({g}, cp_0, cmd_amp)
        cmd_freq = cl_select({g}, cp_1, cmd_freq)
        cmd_pw = cl_select({g}, cp_2, cmd_pw)
        """
    elif kind == compiled_twins.ON_OFF:
        # cp: threshold, amplitude, frequency, width, ramp rate (mA/s); cs: amplitude.
        code = f"""
        cl_up = cs_0 + cp_4 * cl_period
        cl_down = cs_0 - cp_4 * cl_period
        cl_amp = clip(cl_select(int(biomarker > cp_0), cl_up, cl_down), 0, cp_1)
        cs_0 = cl_select({g}, cl_amp, cs_0)
        cmd_amp = cl_select({g}, cs_0, cmd_amp)
        cmd_freq = cl_select({g}, cp_2, cmd_freq)
        cmd_pw = cl_select({g}, cp_3, cmd_pw)
        """
    elif kind == compiled_twins.DUAL_THRESHOLD:
        # cp: lower, upper, up rate, down rate, min, max, frequency, width; cs: amplitude.
        code = f"""
        cl_up = cs_0 + cp_2 * cl_period
        cl_down = cs_0 - cp_3 * cl_period
        cl_hold = cl_select(int(biomarker < cp_0), cl_down, cs_0)
        cl_amp = cl_select(int(biomarker > cp_1), cl_up, cl_hold)
        cs_0 = cl_select({g}, clip(cl_amp, cp_4, cp_5), cs_0)
        cmd_amp = cl_select({g}, cs_0, cmd_amp)
        cmd_freq = cl_select({g}, cp_6, cmd_freq)
        cmd_pw = cl_select({g}, cp_7, cmd_pw)
        """
    else:
        # cp: setpoint, kp, ki, kd, min, max, frequency, width, error bound, kd on;
        # cs: integral term (mA), previous error, has previous error.
        code = f"""
        cl_e0 = biomarker - cp_0
        cl_e = cl_select(cp_9, clip(cl_e0, -cp_8, cp_8), cl_e0)
        cl_d = cl_select(cp_9 * cs_2, (cl_e - cs_1) * (cp_3 / cl_period), 0.0)
        cl_prop = cl_e * cp_1 + cl_d
        cl_cand = cs_0 + cl_e * (cp_2 * cl_period)
        cl_upper = cl_fmax(cp_5 - cl_prop, cs_0)
        cl_lower = cl_fmin(cp_4 - cl_prop, cs_0)
        cl_int = cl_fmax(cl_fmin(cl_cand, cl_upper), cl_lower)
        cl_amp = clip(cl_prop + cl_int, cp_4, cp_5)
        cs_1 = cl_select({g} * cp_9, cl_e, cs_1)
        cs_2 = cl_select({g} * cp_9, 1.0, cs_2)
        cs_0 = cl_select({g}, cl_int, cs_0)
        cmd_amp = cl_select({g}, cl_amp, cmd_amp)
        cmd_freq = cl_select({g}, cp_6, cmd_freq)
        cmd_pw = cl_select({g}, cp_7, cmd_pw)
        """
    lines = [f"cp_{k} : 1 (constant)" for k in range(params.shape[1])]
    lines += [f"cs_{k} : 1" for k in range(state.shape[1])]
    lines += ["cmd_amp : 1", "cmd_freq : 1", "cmd_pw : 1", "biomarker : 1"]
    return ControllerCode(
        name=_KINDS[kind],
        equations="\n".join(lines) + "\n",
        code="\n".join(line.strip() for line in code.strip().splitlines()) + "\n",
        params=params,
        state=state,
    )


def simulate_controller_code(
    controller: Controller,
    biomarker: np.ndarray,
    period_s: float,
    *,
    target: str = "numpy",
    build_dir: str | os.PathLike | None = None,
) -> dict[str, np.ndarray]:
    """Feed a biomarker sequence to a controller's Brian2 twin; return its commands.

    Parameters
    ----------
    controller : Controller
        A built-in controller, already :meth:`~Controller.reset` for ``n``
        instances (its current state is the twin's initial state).
    biomarker : ndarray, shape (T, n)
        Biomarker of each control period.
    period_s : float
        Control period, s.
    target : {"numpy", "cython", "cpp_standalone"}
        Where the generated code runs (``cpp_standalone`` builds in a fresh
        temporary directory under ``build_dir``).
    build_dir : path, optional
        Parent of the standalone build directory.

    Returns
    -------
    dict of ndarray
        ``amplitude_ma``, ``frequency_hz``, ``pulse_width_us``, each ``(T, n)``.
    """
    import brian2
    from brian2 import Network, NeuronGroup, StateMonitor, TimedArray, second

    biomarker = np.ascontiguousarray(biomarker, dtype=np.float64)
    n_periods, n = biomarker.shape
    spec = controller_code(controller)
    chosen = select_target(target)
    standalone = chosen == "cpp_standalone"
    build, restore = standalone_device(build_dir) if standalone else (None, None)
    try:
        period = period_s * second
        feed = TimedArray(biomarker, dt=period, name="cl_feed")
        group = NeuronGroup(
            n,
            spec.equations,
            dt=period,
            namespace={"cl_feed": feed, "cl_period": period_s, **FUNCTIONS},
            name="cl_controller",
        )
        spec.initialise(group)
        group.run_regularly(
            "biomarker = cl_feed(t, i)\ncl_gate = 1.0\n" + spec.code,
            dt=period,
            when="groups",
            name="cl_controller_update",
        )
        mon = StateMonitor(
            group, ["cmd_amp", "cmd_freq", "cmd_pw"], record=True, when="end", name="cl_cmd_mon"
        )
        net = Network(group, mon)
        net.run(n_periods * period, namespace={})
        if build is not None:
            build()
        out = {
            "amplitude_ma": np.array(mon.cmd_amp).T.copy(),
            "frequency_hz": np.array(mon.cmd_freq).T.copy(),
            "pulse_width_us": np.array(mon.cmd_pw).T.copy(),
        }
    finally:
        if restore is not None:
            restore()
    del brian2
    return out


# --------------------------------------------------------------------------------------
# Sensing chain and device as Brian2 code
# --------------------------------------------------------------------------------------
def sensing_code(sos: np.ndarray) -> tuple[str, str, dict[str, float]]:
    """The sensing chain at one sample, as abstract code for the loop group.

    Reads ``cum_src`` (the linked running integral), writes ``lfp_x`` (the
    sample, mean over the interval), ``sensed_v`` (with artefact and noise)
    and ``env`` (``power`` envelope); ``cl_valid`` gates every state update
    (0 at the loop's first tick, where no interval has ended).

    Returns
    -------
    equations, code : str
    namespace : dict
        Filter coefficients ``cl_b{s}{k}``, ``cl_a{s}{k}``.
    """
    eqs = ["cum_src : 1 (linked)", "cum_prev : 1", "art_acc : 1", "lfp_x : 1", "sensed_v : 1"]
    eqs += ["env : 1"]
    ns: dict[str, float] = {}
    code = [
        "cl_x = (cum_src - cum_prev) * cl_scale_per_s",
        "cl_art = art_acc * cl_inv_sps",
        "cl_v = cl_x + cl_gain * cl_art + cl_noise * randn()",
        "lfp_x = cl_select(cl_valid, cl_x, lfp_x)",
        "sensed_v = cl_select(cl_valid, cl_v, sensed_v)",
        "cum_prev = cum_src",
        "art_acc = 0",
        "cl_y = cl_v",
    ]
    for s in range(sos.shape[0]):
        eqs += [f"zi_{s}_0 : 1", f"zi_{s}_1 : 1"]
        for k in range(3):
            ns[f"cl_b{s}{k}"] = float(sos[s, k])
        ns[f"cl_a{s}1"] = float(sos[s, 4])
        ns[f"cl_a{s}2"] = float(sos[s, 5])
        code += [
            f"cl_o = cl_b{s}0 * cl_y + zi_{s}_0",
            f"cl_z = cl_b{s}1 * cl_y - cl_a{s}1 * cl_o + zi_{s}_1",
            f"zi_{s}_0 = cl_select(cl_valid, cl_z, zi_{s}_0)",
            f"zi_{s}_1 = cl_select(cl_valid, cl_b{s}2 * cl_y - cl_a{s}2 * cl_o, zi_{s}_1)",
            "cl_y = cl_o",
        ]
    code.append("env = cl_select(cl_valid, cl_alpha * env + (1.0 - cl_alpha) * cl_y * cl_y, env)")
    return "\n".join(eqs) + "\n", "\n".join(code) + "\n", ns


#: Variables of the generated device, per instance.
_DEVICE_VARS = (
    "d_amp",
    "d_target",
    "d_freq",
    "d_tgtpw",
    "d_next",
    "d_pstart",
    "d_pamp",
    "d_ppw",
    "drive",
    "net_cur",
    "c_amp",
    "c_freq",
    "c_pw",
    "c_has",
    "c_eff",
    "rec_amp",
    "rec_freq",
    "rec_pw",
)


def device_code() -> tuple[str, str]:
    """The device's step, as abstract code (see :func:`closedloop.device.device_fill`).

    Applies the pending command (``c_*``, from step ``c_eff`` on), ramps the
    amplitude, integrates the cathodic and anodic phases of the pulse under
    way and of a pulse starting in the step over the step, and writes
    ``drive`` (average cathodic current, mA) and ``net_cur`` (net current, mA).

    Returns
    -------
    equations, code : str
    """
    eqs = "\n".join(f"{v} : 1" for v in _DEVICE_VARS) + "\ncl_active : 1 (constant)\n"
    code = """
    cl_step = timestep(t, cl_dt) - cl_step0
    cl_t0 = cl_step * cl_dt_s
    cl_t1 = cl_t0 + cl_dt_s
    cl_apply = c_has * int(cl_step >= c_eff)
    d_freq = cl_select(cl_apply * cl_isfinite(c_freq), clip(c_freq, dp_fmin, dp_fmax), d_freq)
    d_tgtpw = cl_select(cl_apply * cl_isfinite(c_pw), clip(c_pw, dp_pwmin, dp_pwmax), d_tgtpw)
    d_target = cl_select(cl_apply * cl_isfinite(c_amp), cl_fmax(c_amp, 0.0), d_target)
    cl_cap = cl_fmin(dp_ampmax, dp_qmax / (d_tgtpw * 0.001))
    d_target = cl_select(cl_apply, cl_fmin(d_target, cl_cap), d_target)
    c_has = cl_select(cl_apply, 0.0, c_has)
    d_amp = d_amp + clip(d_target - d_amp, -dp_ramp_dt, dp_ramp_dt)
    cl_live = int(d_pamp > 0) * int(d_pstart + 2 * d_ppw > cl_t0)
    cl_oc = cl_fmax(0.0, cl_fmin(d_pstart + d_ppw, cl_t1) - cl_fmax(d_pstart, cl_t0))
    cl_oa = cl_fmax(0.0, cl_fmin(d_pstart + 2 * d_ppw, cl_t1) - cl_fmax(d_pstart + d_ppw, cl_t0))
    cl_qc = cl_select(cl_live, d_pamp * cl_oc, 0.0)
    cl_qa = cl_select(cl_live, d_pamp * cl_oa, 0.0)
    cl_start = int(d_next < cl_t1)
    d_pstart = cl_select(cl_start, d_next, d_pstart)
    cl_pw = d_tgtpw * 1e-6
    cl_pw_cap = dp_qmax / cl_fmax(d_amp, 1e-300) * 0.001
    cl_pw = cl_select(int(d_amp > 0), cl_fmin(cl_pw, cl_pw_cap), cl_pw)
    d_ppw = cl_select(cl_start, cl_pw, d_ppw)
    d_pamp = cl_select(cl_start, d_amp, d_pamp)
    d_next = cl_select(cl_start, d_pstart + 1.0 / d_freq, d_next)
    cl_live2 = cl_start * int(d_pamp > 0)
    cl_oc2 = cl_fmax(0.0, cl_fmin(d_pstart + d_ppw, cl_t1) - cl_fmax(d_pstart, cl_t0))
    cl_oa2 = cl_fmax(0.0, cl_fmin(d_pstart + 2 * d_ppw, cl_t1) - cl_fmax(d_pstart + d_ppw, cl_t0))
    cl_qc = cl_select(cl_live2, cl_qc + d_pamp * cl_oc2, cl_qc)
    cl_qa = cl_select(cl_live2, cl_qa + d_pamp * cl_oa2, cl_qa)
    drive = cl_active * (cl_qc * cl_inv_dt)
    net_cur = cl_active * ((cl_qc - cl_qa) * cl_inv_dt)
    art_acc = art_acc + net_cur
    """
    return eqs, "\n".join(line.strip() for line in code.strip().splitlines()) + "\n"


def device_namespace(device: Any, dt_s: float) -> dict[str, float]:
    """Constants of :func:`device_code` for a :class:`closedloop.device.Device`."""
    return {
        "dp_ampmax": float(device.amplitude_max_ma),
        "dp_fmin": float(device.frequency_min_hz),
        "dp_fmax": float(device.frequency_max_hz),
        "dp_pwmin": float(device.pulse_width_min_us),
        "dp_pwmax": float(device.pulse_width_max_us),
        "dp_ramp_dt": float(device.ramp_rate_ma_per_s) * dt_s,
        "dp_qmax": float(device.charge_limit_uc),
        "cl_dt_s": dt_s,
        "cl_inv_dt": 1.0 / dt_s,
    }


def device_initial(device: Any) -> dict[str, float]:
    """Initial values of the generated device's variables (as :meth:`Device.initial_state`)."""
    freq = min(max(device.initial_frequency_hz, device.frequency_min_hz), device.frequency_max_hz)
    pw = min(
        max(device.initial_pulse_width_us, device.pulse_width_min_us), device.pulse_width_max_us
    )
    return {"d_freq": freq, "d_tgtpw": pw, "d_ppw": pw * 1e-6, "d_pstart": -1.0}
