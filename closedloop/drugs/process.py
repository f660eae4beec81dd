"""The drug layer as a slow process: schedules and commanded doses -> PK -> PD -> parameters.

:class:`DrugLayer` is the :class:`~closedloop.core.slow.SlowProcess` named
``drugs``. Every ``period_s`` it advances each drug's compartments exactly
(:mod:`closedloop.drugs.pk`), splitting the step at every dose and infusion
change, then its effect and adaptation (:mod:`closedloop.drugs.pd`), and
sets the parameters the drugs modulate.

Doses come from the drug's schedule and from a controller, through the
command keys ``dose_<drug>_mg`` (amount, mg; 0 for none) and
``dose_<drug>_route`` (0 oral, 1 intravenous; default the drug's route).
Whatever a controller asks, the layer enforces the drug's limits
(:class:`DoseLimits`): a commanded dose that is not a finite positive number
or not a known route, is larger than ``max_single_mg``, comes less than
``min_interval_h`` after the last dose, or would bring the doses of the last
24 h above ``max_daily_mg``, is refused, counted (series
``<drug>_refused``) and logged. Refused doses are not clipped to the limit:
a dose the controller did not ask for is not given either. Scheduled doses
are the prescription and are given as written; they count towards the
interval and the daily total.

Every dose, given or refused, is an event in ``events/drugs_<drug>_doses``.

How a controller sees the drug state: the loop hands the current values of
every slow series to a controller's ``update`` as features named
``<process>_<series>`` (here ``drugs_<drug>_effect``, ...), held between
slow steps (see :mod:`closedloop.core.slow`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from closedloop.core.slow import SlowProcess
from closedloop.drugs.pd import ParameterMap, adapt, hill
from closedloop.drugs.pk import Compartments, PKParameters

__all__ = ["REFUSAL_REASONS", "DoseLimits", "DrugLayer", "DrugSpec"]

_DAY_S = 86400.0
_H_S = 3600.0

#: Code of the ``reason`` field of a dose event.
REFUSAL_REASONS: dict[int, str] = {
    0: "given",
    1: "not a finite positive amount, or an unknown route",
    2: "above max_single_mg",
    3: "sooner than min_interval_h after the last dose",
    4: "would exceed max_daily_mg over the last 24 h",
}


@dataclass(frozen=True)
class DoseLimits:
    """Safety limits on commanded doses (mg, h); inf/0 for none."""

    max_single_mg: float = np.inf
    min_interval_h: float = 0.0
    max_daily_mg: float = np.inf


@dataclass
class DrugSpec:
    """One drug of the layer, resolved for ``n`` instances (arrays ``(n,)``).

    Attributes
    ----------
    name : str
        Drug name (series and command-key prefix).
    pk : PKParameters
    emax, ec50_ng_ml, hill : ndarray
        Sigmoid Emax parameters (1, ng/mL, 1).
    adaptation_tau_s : ndarray or None
        Time constant of the adaptation state, s; None for none.
    drive : str
        ``"effect"`` or ``"adaptation"``: what sets the parameters.
    doses : list of (time_s, amount_mg, oral)
        The schedule's doses, in slow time.
    infusions : list of (start_s, stop_s, rate_mg_per_h)
    limits : DoseLimits
    route_oral : bool
        Route of a commanded dose without ``dose_<drug>_route``.
    maps : list of ParameterMap
    base : dict of str to ndarray
        The model's own value of every modulated parameter.
    """

    name: str
    pk: PKParameters
    emax: np.ndarray
    ec50_ng_ml: np.ndarray
    hill: np.ndarray
    adaptation_tau_s: np.ndarray | None
    drive: str
    doses: list[tuple[float, float, bool]] = field(default_factory=list)
    infusions: list[tuple[float, float, float]] = field(default_factory=list)
    limits: DoseLimits = DoseLimits()
    route_oral: bool = True
    maps: list[ParameterMap] = field(default_factory=list)
    base: dict[str, np.ndarray] = field(default_factory=dict)


_EVENT_FIELDS = {
    "time_s": ("f8", "s"),
    "instance": ("i8", "1"),
    "amount_mg": ("f8", "mg"),
    "route": ("i1", "1"),
    "given": ("i1", "1"),
    "reason": ("i1", "1"),
    "commanded": ("i1", "1"),
}


class _DrugState:
    """What one drug carries while running (the layer's private bookkeeping)."""

    def __init__(self, spec: DrugSpec, n: int) -> None:
        self.spec = spec
        self.pk = Compartments(spec.pk)
        self.n = n
        self.effect = np.zeros(n)
        self.adaptation = np.zeros(n)
        self.refused = np.zeros(n)
        self.last_dose_s = np.full(n, -np.inf)
        self.history: list[tuple[float, np.ndarray]] = []  # (time_s, amounts (n,)) given
        # [time_s, amount (n,), oral (n,), scheduled and not yet accounted]: doses
        # not yet in the compartments.
        self.pending: list[list] = []
        self.events: list[tuple[np.ndarray, ...]] = []

    def given_in_window(self, t_s: float) -> np.ndarray:
        """Total dose (mg) given in ``(t_s - 24 h, t_s]``; forgets older doses."""
        self.history = [(t, a) for t, a in self.history if t > t_s - _DAY_S]
        total = np.zeros(self.n)
        for _, a in self.history:
            total += a
        return total

    def log(
        self,
        t_s: float,
        who: np.ndarray,
        amount: np.ndarray | float,
        route: np.ndarray | int,
        given: int,
        reason: np.ndarray | int,
        commanded: bool | int,
    ) -> None:
        """Log one dose event per instance in ``who`` (the fields of the dose table).

        ``amount`` in mg, ``route`` 0 oral / 1 intravenous, ``given`` 1 or 0
        (refused), ``reason`` the refusal's code, ``commanded`` 1 when a
        controller asked for the dose (0: the schedule).
        """
        k = int(who.size)
        if k == 0:
            return
        self.events.append(
            (
                np.full(k, t_s),
                who.astype(np.int64),
                np.broadcast_to(np.asarray(amount, dtype=np.float64), (k,)).copy(),
                np.broadcast_to(np.asarray(route, dtype=np.int8), (k,)).copy(),
                np.full(k, given, dtype=np.int8),
                np.broadcast_to(np.asarray(reason, dtype=np.int8), (k,)).copy(),
                np.full(k, commanded, dtype=np.int8),
            )
        )

    def account_schedule(self, t_s: float) -> None:
        """Account the scheduled doses due by ``t_s`` (before a commanded dose is judged)."""
        for entry in self.pending:
            if entry[3] and entry[0] <= t_s:
                self.account(entry[0], entry[1], entry[2], commanded=False)
                entry[3] = False

    def account(self, t_s: float, amount: np.ndarray, oral: np.ndarray, commanded: bool) -> None:
        """Count the doses ``amount > 0`` given at ``t_s`` (interval, daily total, events)."""
        who = np.flatnonzero(amount > 0)
        if who.size == 0:
            return
        self.history.append((t_s, amount.copy()))
        self.last_dose_s[who] = t_s
        self.log(t_s, who, amount[who], np.where(oral[who], 0, 1), 1, 0, commanded)


class DrugLayer(SlowProcess):
    """Drugs on a slow clock: PK, PD and the model parameters they set.

    Parameters
    ----------
    drugs : sequence of DrugSpec
        The drugs (unique names, no parameter modulated by two).
    period_s : float
        Slow step, s (a whole number of control periods).

    Notes
    -----
    See the module docstring for doses, limits, events and how a controller
    reads the drug state.
    """

    name = "drugs"

    def __init__(self, drugs: Sequence[DrugSpec], period_s: float) -> None:
        self.drugs = tuple(drugs)
        self.period_s = float(period_s)
        # per instance: the drugs given decide the dose keys
        self.command_keys = tuple(  # type: ignore[misc]
            key for d in self.drugs for key in (f"dose_{d.name}_mg", f"dose_{d.name}_route")
        )

    # -- the SlowProcess contract ---------------------------------------------------
    def reset(self, n: int, seeds: Sequence[np.random.SeedSequence]) -> None:
        """No drug on board; the schedules start at slow time 0 (no randomness used)."""
        self.n_ = n
        self.state_ = [_DrugState(d, n) for d in self.drugs]
        self.t_s_ = 0.0
        for st in self.state_:
            for t, amount, oral in st.spec.doses:
                st.pending.append([t, np.full(n, amount), np.full(n, oral), True])

    def advance(self, t_s: float, dt_s: float, readout: Mapping[str, np.ndarray]) -> None:
        """Advance every drug from ``t_s - dt_s`` to ``t_s`` (s), exactly between inputs."""
        t0 = t_s - dt_s
        for st in self.state_:
            # Every time inside (t0, t_s) where the input changes.
            cuts = {t for t, _, _, _ in st.pending if t0 < t < t_s}
            for start, stop, _ in st.spec.infusions:
                cuts.update(x for x in (start, stop) if t0 < x < t_s)
            now = t0
            self._inputs_at(st, now)
            for cut in [*sorted(cuts), t_s]:
                self._run(st, now, cut)
                now = cut
                if now < t_s:
                    self._inputs_at(st, now)
        self.t_s_ = t_s

    @staticmethod
    def _inputs_at(st: _DrugState, now: float) -> None:
        """Give the doses due by ``now``; set the infusion rate in force from ``now``."""
        due = [p for p in st.pending if p[0] <= now]
        if due:
            st.account_schedule(now)
            st.pending = [p for p in st.pending if p[0] > now]
            for _, amount, oral, _ in due:
                st.pk.dose(amount, oral)
        st.pk.infusion_mg_per_h[:] = sum((r for a, b, r in st.spec.infusions if a <= now < b), 0.0)

    @staticmethod
    def _run(st: _DrugState, t_from: float, t_to: float) -> None:
        spec = st.spec
        h = t_to - t_from
        if h <= 0:
            return
        e_prev = st.effect
        st.pk.advance(h)
        st.effect = hill(st.pk.effect_site_ng_ml, spec.emax, spec.ec50_ng_ml, spec.hill)
        if spec.adaptation_tau_s is not None:
            st.adaptation = adapt(st.adaptation, e_prev, st.effect, h, spec.adaptation_tau_s)

    def series(self) -> dict[str, tuple[str, str]]:
        """Per drug: plasma and effect-site concentration, effect, adaptation, refusals."""
        out = {}
        for d in self.drugs:
            out[f"{d.name}_plasma_ng_ml"] = ("ng/mL", f"{d.name} plasma concentration")
            out[f"{d.name}_effect_site_ng_ml"] = ("ng/mL", f"{d.name} effect-site concentration")
            out[f"{d.name}_effect"] = ("1", f"{d.name} effect (sigmoid Emax of the effect site)")
            if d.adaptation_tau_s is not None:
                out[f"{d.name}_adaptation"] = ("1", f"{d.name} slow adaptation state")
            out[f"{d.name}_refused"] = ("1", f"{d.name} commanded doses refused so far")
        return out

    def values(self) -> dict[str, np.ndarray]:
        """The current value of every series."""
        out = {}
        for st in self.state_:
            name = st.spec.name
            out[f"{name}_plasma_ng_ml"] = st.pk.plasma_ng_ml
            out[f"{name}_effect_site_ng_ml"] = st.pk.effect_site_ng_ml
            out[f"{name}_effect"] = st.effect.copy()
            if st.spec.adaptation_tau_s is not None:
                out[f"{name}_adaptation"] = st.adaptation.copy()
            out[f"{name}_refused"] = st.refused.copy()
        return out

    def drive(self, name: str) -> np.ndarray:
        """What sets drug ``name``'s parameters now: its effect or its adaptation, ``(n,)``."""
        for st in self.state_:
            if st.spec.name == name:
                return st.adaptation if st.spec.drive == "adaptation" else st.effect
        raise KeyError(name)

    def modulation(self) -> dict[str, np.ndarray]:
        """Every modulated parameter from its drug's drive."""
        out = {}
        for st in self.state_:
            d = self.drive(st.spec.name)
            for m in st.spec.maps:
                out[m.parameter] = m.value(st.spec.base[m.parameter], d)
        return out

    def command(self, t_s: float, command: Mapping[str, np.ndarray]) -> None:
        """Doses a controller asks for at ``t_s`` (slow time, s), within the limits."""
        for st in self.state_:
            key = f"dose_{st.spec.name}_mg"
            if key not in command:
                continue
            self._commanded_dose(st, t_s, command[key], command.get(f"dose_{st.spec.name}_route"))

    def _commanded_dose(
        self, st: _DrugState, t_s: float, amount_in: Any, route_in: Any | None
    ) -> None:
        n = self.n_
        st.account_schedule(t_s)
        lim = st.spec.limits
        with np.errstate(invalid="ignore"):
            amount = np.broadcast_to(np.asarray(amount_in, dtype=np.float64), (n,)).copy()
            if route_in is None:
                route = np.full(n, 0.0 if st.spec.route_oral else 1.0)
            else:
                route = np.broadcast_to(np.asarray(route_in, dtype=np.float64), (n,)).copy()
            asked = ~(amount == 0.0)  # 0: no dose; NaN counts as asked (and refused)
            reason = np.zeros(n, dtype=np.int8)
            bad = ~np.isfinite(amount) | (amount < 0) | ~((route == 0.0) | (route == 1.0))
            reason[asked & bad] = 1
            ok = asked & (reason == 0)
            reason[ok & (amount > lim.max_single_mg)] = 2
            ok = asked & (reason == 0)
            reason[ok & (t_s - st.last_dose_s < lim.min_interval_h * _H_S)] = 3
            ok = asked & (reason == 0)
            total = st.given_in_window(t_s)
            reason[ok & (total + np.where(ok, amount, 0.0) > lim.max_daily_mg)] = 4
        refused = asked & (reason != 0)
        who = np.flatnonzero(refused)
        st.refused[who] += 1
        shown = np.where(np.isfinite(amount[who]), amount[who], np.nan)
        route_code = np.where(route[who] == 1.0, 1, 0)
        st.log(t_s, who, shown, route_code, 0, reason[who], 1)
        give = np.where(asked & (reason == 0), amount, 0.0)
        if give.any():
            st.pending.append([t_s, give, route != 1.0, False])
            st.account(t_s, give, route != 1.0, commanded=True)

    def event_tables(self) -> dict[str, tuple[dict[str, tuple[str, str]], str]]:
        """``<drug>_doses``: every dose, given or refused."""
        what = (
            "doses of {name}: route 0 oral / 1 intravenous; given 1 / refused 0; "
            "commanded 1 (controller) / 0 (schedule); reason: "
            + "; ".join(f"{k} {v}" for k, v in REFUSAL_REASONS.items())
        )
        return {f"{d.name}_doses": (_EVENT_FIELDS, what.format(name=d.name)) for d in self.drugs}

    def drain_events(self) -> dict[str, dict[str, np.ndarray]]:
        """Doses logged since the last call."""
        out = {}
        for st in self.state_:
            if not st.events:
                continue
            cols = [np.concatenate(c) for c in zip(*st.events, strict=True)]
            out[f"{st.spec.name}_doses"] = dict(zip(_EVENT_FIELDS, cols, strict=True))
            st.events = []
        return out
