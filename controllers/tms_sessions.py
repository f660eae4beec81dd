"""Scheduled TMS sessions: a repetitive protocol started at fixed times (open loop).

What accelerated protocols do: several sessions a day at fixed intervals
(SAINT: ten iTBS sessions a day, 50 min apart, Cole et al. 2020, 2022). The
controller starts the device's configured protocol (``device.tms.protocol``,
``pulses: inf``) at each session's start; the device ends the session after
``device.tms.pulses_per_session`` pulses and enforces every limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from closedloop.controllers.base import Controller, real_parameter

__all__ = ["TMSSessions"]


class TMSSessions(Controller):
    """Start the device's TMS protocol every ``interval_s`` seconds.

    Parameters
    ----------
    intensity_pct_rmt : float, default 90.0
        Stimulator intensity, % of resting motor threshold (SAINT: 90 %,
        adjusted for scalp-to-cortex depth; Cole et al. 2020).
    n_sessions : int, default 10
        Sessions to start.
    interval_s : float, default 3000.0
        From the start of one session to the start of the next, s (50 min).
    first_session_s : float, default 0.0
        Start of the first session, s of the run.

    Notes
    -----
    Sends ``intensity_pct_rmt`` and ``pulses: inf`` at each session start,
    nothing otherwise (an empty command changes nothing). Under any modality
    but TMS the intensity key is refused by the loop.

    References
    ----------
    .. [1] Cole E.J. et al. (2020). Stanford Accelerated Intelligent
       Neuromodulation Therapy for treatment-resistant depression. Am J
       Psychiatry 177:716-726.
    .. [2] Cole E.J. et al. (2022). Stanford Neuromodulation Therapy (SNT): a
       double-blind randomized controlled trial. Am J Psychiatry 179:132-141.
    """

    name: ClassVar[str] = "tms_sessions"
    required_features: ClassVar[tuple[str, ...]] = ()
    references: ClassVar[tuple[str, ...]] = (
        "Cole E.J. et al. (2020). Stanford Accelerated Intelligent Neuromodulation Therapy "
        "for treatment-resistant depression. Am J Psychiatry 177:716-726.",
    )

    def __init__(
        self,
        *,
        intensity_pct_rmt: float = 90.0,
        n_sessions: int = 10,
        interval_s: float = 3000.0,
        first_session_s: float = 0.0,
    ) -> None:
        self.intensity_pct_rmt = intensity_pct_rmt
        self.n_sessions = n_sessions
        self.interval_s = interval_s
        self.first_session_s = first_session_s

    def reset(self, n: int, rng: np.random.Generator) -> None:
        """Check the parameters and start before the first session.

        Parameters
        ----------
        n : int
            Batch size.
        rng : numpy.random.Generator
            Unused (the schedule is fixed).
        """
        real_parameter("intensity_pct_rmt", self.intensity_pct_rmt, "% RMT", "non-negative")
        real_parameter("interval_s", self.interval_s, "s", "positive")
        real_parameter("first_session_s", self.first_session_s, "s", "non-negative")
        if int(self.n_sessions) != self.n_sessions or self.n_sessions < 0:
            raise ValueError(f"n_sessions must be a whole number >= 0, got {self.n_sessions!r}")
        super().reset(n, rng)
        self.sessions_started_ = 0

    def update(self, t: float, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """At a session's start, the intensity and ``pulses: inf``; else nothing.

        Parameters
        ----------
        t : float
            Time in seconds at the end of the control period.
        features : mapping of str to ndarray
            Unused.

        Returns
        -------
        dict of str to ndarray
        """
        due = self.first_session_s + self.sessions_started_ * self.interval_s
        if self.sessions_started_ >= self.n_sessions or t < due:
            return {}
        self.sessions_started_ += 1
        return {
            "intensity_pct_rmt": np.full(self.n_, float(self.intensity_pct_rmt)),
            "pulses": np.full(self.n_, np.inf),
        }
