"""Fear expression through a conditioning-extinction protocol: the PTSD readout.

PTSD is failed or fragile extinction: fear returns when the context
changes (renewal) or with time (spontaneous recovery). What an
experimenter reads off a session is the fear response to each conditioned
stimulus (CS) and how fast it gives way to extinction. :class:`FearExpression`
watches a fear/extinction model's per-CS responses (the observables
``cs_trials``, ``cs_phase``, ``cs_rate_A`` (fear) and ``cs_rate_B``
(extinction) of :class:`closedloop.models.fear_extinction.FearExtinction`),
logs every CS as an event, and reports the session's outcomes:

fear index
    ``100 * A / (A + B)`` (%) of the fear and extinction populations' mean
    rates over a CS: 100 % is pure fear, below 50 % extinction dominates (a
    freezing-like percentage; the mapping is a modelling choice).
``fear_extinction_trials``
    Extinction CS presentations until the fear index first falls below
    50 % (NaN if it never does): the extinction speed.
``fear_index_end_extinction``
    The fear index at the last extinction CS (retention at the end of the
    session).
``fear_renewal_index`` / ``fear_recovery_index``
    The fear index at the first renewal (back in the conditioning context)
    and recovery (after a delay) CS, when the protocol has them: fear that
    returns reads above 50 %.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from closedloop.core.slow import SlowProcess

__all__ = ["FearExpression"]

_PHASES = ("conditioning", "extinction", "renewal", "recovery")


class FearExpression(SlowProcess):
    """Per-CS fear index and extinction outcomes of a fear/extinction model.

    Parameters
    ----------
    period_s : float
        How often the CS counter is read, s: at most the CS period of the
        protocol, so that no CS is missed (a whole number of control
        periods).
    """

    def __init__(self, period_s: float = 0.05) -> None:
        self.name = "fear"
        self.period_s = period_s

    def reset(self, n: int, seeds: Sequence[np.random.SeedSequence]) -> None:
        """Start a session: no CS seen."""
        self.n_ = n
        self.seen_ = np.zeros(n)
        self.index_ = np.full(n, np.nan)
        self.first_: dict[str, np.ndarray] = {
            "extinction_trials": np.full(n, np.nan),
            "end_extinction": np.full(n, np.nan),
            "renewal": np.full(n, np.nan),
            "recovery": np.full(n, np.nan),
        }
        self.extinction_seen_ = np.zeros(n)
        self.events_: list[tuple] = []

    def advance(self, t_s: float, dt_s: float, readout: Mapping[str, np.ndarray]) -> None:
        """Log every CS completed since the last step."""
        for key in ("cs_trials", "cs_phase", "cs_rate_A", "cs_rate_B"):
            if key not in readout:
                raise KeyError(
                    f"fear expression reads {key!r}: the model must be a fear/extinction "
                    "model (fear_extinction)"
                )
        trials = readout["cs_trials"]
        new = np.flatnonzero(trials > self.seen_)
        if np.any(trials[new] > self.seen_[new] + 1):
            raise ValueError(
                f"fear expression missed a CS: read it more often than every {self.period_s:g} s"
            )
        for i in new:
            a, b = float(readout["cs_rate_A"][i]), float(readout["cs_rate_B"][i])
            index = 100.0 * a / (a + b) if a + b > 0 else np.nan
            phase = int(readout["cs_phase"][i])
            self.index_[i] = index
            self.seen_[i] = trials[i]
            self.events_.append((t_s, i, trials[i], phase, a, b, index))
            name = _PHASES[phase] if 0 <= phase < len(_PHASES) else ""
            if name == "extinction":
                self.extinction_seen_[i] += 1
                self.first_["end_extinction"][i] = index
                if index < 50.0 and np.isnan(self.first_["extinction_trials"][i]):
                    self.first_["extinction_trials"][i] = self.extinction_seen_[i]
            elif name in ("renewal", "recovery") and np.isnan(self.first_[name][i]):
                self.first_[name][i] = index

    def series(self) -> dict[str, tuple[str, str]]:
        """The fear index of the last CS."""
        return {"index": ("%", "fear index 100 A/(A+B) of the last CS (NaN before the first)")}

    def values(self) -> dict[str, np.ndarray]:
        """The fear index of the last CS, ``(n,)``."""
        return {"index": self.index_.copy()}

    def event_tables(self) -> dict[str, tuple[dict[str, tuple[str, str]], str]]:
        """``cs``: one row per CS presentation."""
        return {
            "cs": (
                {
                    "time_s": ("f8", "s"),
                    "instance": ("i8", "1"),
                    "trial": ("i8", "1"),
                    "phase": ("i8", "1"),
                    "rate_fear": ("f8", "1"),
                    "rate_extinction": ("f8", "1"),
                    "fear_index": ("f8", "%"),
                },
                "each CS: phase index (0 conditioning, 1 extinction, 2 renewal, 3 recovery), "
                "mean rates of the fear and extinction populations, fear index; time_s is "
                "when it was read (the end of the slow step after the CS)",
            )
        }

    def drain_events(self) -> dict[str, dict[str, np.ndarray]]:
        """CS presentations since the last call."""
        if not self.events_:
            return {}
        cols = list(zip(*self.events_, strict=True))
        self.events_ = []
        names = ("time_s", "instance", "trial", "phase", "rate_fear", "rate_extinction")
        out = {k: np.asarray(v) for k, v in zip(names, cols[:6], strict=True)}
        out["fear_index"] = np.asarray(cols[6], dtype=float)
        return {"cs": out}

    def metrics(self) -> dict[str, tuple[np.ndarray, str, str]]:
        """Extinction speed, retention, renewal and recovery."""
        f = self.first_
        return {
            "fear_extinction_trials": (
                f["extinction_trials"].copy(),
                "1",
                "extinction CS until the fear index first fell below 50 % (NaN: never)",
            ),
            "fear_index_end_extinction": (
                f["end_extinction"].copy(),
                "%",
                "fear index at the last extinction CS",
            ),
            "fear_renewal_index": (
                f["renewal"].copy(),
                "%",
                "fear index at the first CS back in the conditioning context (renewal)",
            ),
            "fear_renewal_suppression": (
                1.0 - f["renewal"] / 100.0,
                "1",
                "1 - fear index at renewal / 100: how little fear returns in the "
                "conditioning context (higher: better)",
            ),
            "fear_recovery_index": (
                f["recovery"].copy(),
                "%",
                "fear index at the first CS after the delay (spontaneous recovery)",
            ),
        }

    @classmethod
    def concatenate(
        cls, processes: Sequence[FearExpression], sizes: Sequence[int]
    ) -> FearExpression:
        """One monitor for several runs' instances (it has no per-instance settings)."""
        if len({p.period_s for p in processes}) > 1:
            raise ValueError("fear expression monitors differ in period_s")
        return cls(processes[0].period_s)
