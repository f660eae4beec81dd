"""The heart as an integral pulse frequency modulation (IPFM) oscillator.

The sinus node is an integrator: its instantaneous rate ``m(t)`` (beats/s)
is integrated and an R-peak fires when the integral reaches a threshold,
which then restarts (the IPFM model of heart-rate variability, Mateo &
Laguna 2000). Here::

    m(t) = (1 + a_rsa * (-cos 2 pi phi(t))) * exp(x(t)) / (rr_s * (1 + v(t)))

- ``phi`` is the respiratory phase (cycles, :mod:`.respiration`): the rate
  is highest around the end of inspiration and lowest around the end of
  expiration, respiratory sinus arrhythmia (RSA), relative amplitude
  ``rsa_fraction``;
- ``x`` is an Ornstein-Uhlenbeck process (SD ``slow_sd``, time constant
  ``slow_tau_s``): the slower, non-respiratory fluctuations (baroreflex,
  LF and VLF bands);
- the threshold of each beat is ``1 + beat_jitter_s / rr_s * e`` (``e``
  standard normal): beat-to-beat jitter;
- ``v`` is the cardiac vagal tone added by stimulation: each delivered
  charge ``q`` (uC, already weighted by the respiratory gate, see
  :mod:`.process`) adds ``vagal_gain_per_uc * q`` to ``v`` after
  ``vagal_latency_s``, and ``v`` decays with ``vagal_tau_s``. A tone ``v``
  lengthens the RR interval by the factor ``1 + v``.

Numbers
-------
Targets: short-term (5 min) resting HRV of healthy adults, mean RR 926 ms,
SDNN 50 ms, RMSSD 42 ms (Nunan et al. 2010's pooled values, recalled and
unchecked: the stored copies show only the abstract). ``rr_s = 0.93``;
``rsa_fraction``, ``slow_sd``, ``slow_tau_s`` and ``beat_jitter_s`` are
chosen (not taken from a paper) so that the model meets these targets with
the default breathing (tested over many seeds in
``tests/test_physiology.py``).

The vagal mapping is a modelling choice. That cardiac vagal effects are
fast (onset within a beat or two, gone within seconds) is textbook; the
numbers ``vagal_latency_s = 0.2``, ``vagal_tau_s = 1.5`` and the gain
(``0.008`` per uC: a 0.5 s, 25 Hz, 1 mA, 450 us burst, about 5.6 uC, gated
fully, lengthens the RR interval by about 4.5 %, some 40 ms) are chosen,
not fitted: taVNS's effect on human heart rate is small and varies between
studies (Tischer et al. 2024 report systole- and diastole-gated aVNS
changing the following RR intervals, abstract seen; their size is not used).

References
----------
.. [1] Mateo J., Laguna P. (2000). Improved heart rate variability signal
   analysis from the beat occurrence times according to the IPFM model.
   IEEE Trans Biomed Eng 47:985-996.
.. [2] Nunan D., Sandercock G.R.H., Brodie D.A. (2010). A quantitative
   systematic review of normal values for short-term heart rate
   variability in healthy adults. Pacing Clin Electrophysiol 33:1407-1417.
.. [3] Tischer J. et al. (2024). Personalized auricular vagus nerve
   stimulation: beat-to-beat deceleration dominates in systole-gated
   stimulation during inspiration. Front Physiol, doi
   10.3389/fphys.2024.1495868.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["CardiacParams", "Heart", "children", "hrv_metrics"]

#: Noise values drawn at a time per instance and stream.
_PAGE = 4096


@dataclass(frozen=True)
class CardiacParams:
    """The heart of one subject (see the module notes for sources and choices).

    Parameters
    ----------
    rr_s : float
        RR interval without modulation, s.
    rsa_fraction : float
        Relative amplitude of the respiratory modulation of the rate.
    slow_sd : float
        SD of the slow log-rate fluctuation.
    slow_tau_s : float
        Its time constant, s.
    beat_jitter_s : float
        SD of the beat-to-beat jitter, s.
    vagal_gain_per_uc : float
        Vagal tone added per uC of (gated) delivered charge, 1/uC.
    vagal_latency_s : float
        Delay from stimulation to its effect on the sinus node, s.
    vagal_tau_s : float
        Decay time constant of the vagal tone, s.
    """

    rr_s: float = 0.93
    rsa_fraction: float = 0.038
    slow_sd: float = 0.05
    slow_tau_s: float = 6.0
    beat_jitter_s: float = 0.016
    vagal_gain_per_uc: float = 0.008
    vagal_latency_s: float = 0.2
    vagal_tau_s: float = 1.5

    def __post_init__(self) -> None:
        checks = {
            "rr_s": (self.rr_s, 0.3, 2.0),
            "rsa_fraction": (self.rsa_fraction, 0.0, 0.5),
            "slow_sd": (self.slow_sd, 0.0, 0.5),
            "slow_tau_s": (self.slow_tau_s, 0.1, 600.0),
            "beat_jitter_s": (self.beat_jitter_s, 0.0, 0.2),
            "vagal_gain_per_uc": (self.vagal_gain_per_uc, 0.0, 10.0),
            "vagal_latency_s": (self.vagal_latency_s, 0.0, 5.0),
            "vagal_tau_s": (self.vagal_tau_s, 0.01, 600.0),
        }
        for key, (value, low, high) in checks.items():
            if not (isinstance(value, int | float) and low <= value <= high):
                raise ValueError(f"cardiac.{key} must be in [{low:g}, {high:g}], got {value!r}")


def children(seed: np.random.SeedSequence, k: int) -> list[np.random.SeedSequence]:
    """The first ``k`` children of ``seed``, the same at every call."""
    return [np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, j)) for j in range(k)]


class Heart:
    """``n`` IPFM hearts on a fixed grid, advanced one grid step at a time.

    Parameters
    ----------
    params : CardiacParams
        The heart (the same for every instance).
    grid_s : float
        The grid step, s (the loop's control period).
    seeds : sequence of SeedSequence
        One per instance (two streams are spawned from each: slow noise and
        beat jitter).
    """

    def __init__(
        self, params: CardiacParams, grid_s: float, seeds: Sequence[np.random.SeedSequence]
    ) -> None:
        self.params = params
        self.grid_s = grid_s
        n = len(seeds)
        self.n = n
        # Fixed children (not spawn(), which advances a counter): two hearts
        # built from the same seeds are the same heart.
        streams = [children(s, 2) for s in seeds]
        self.slow_rngs = [np.random.default_rng(a) for a, _ in streams]
        self.beat_rngs = [np.random.default_rng(b) for _, b in streams]
        self.slow_noise = np.zeros((n, 0))
        self.jitter = np.zeros((n, 0))
        self.step = 0  # grid steps simulated
        self.beats = np.zeros(n, dtype=np.int64)
        self.x = self._page(self.slow_rngs, 1)[:, 0] * params.slow_sd  # stationary start
        self.v = np.zeros(n)
        self.integral = np.zeros(n)
        self.threshold = self._next_threshold(np.ones(n, dtype=bool))
        self.last_r_s = np.full(n, math.nan)
        self.last_rr_s = np.full(n, math.nan)
        self.decay_slow = math.exp(-grid_s / params.slow_tau_s)
        self.decay_vagal = math.exp(-grid_s / params.vagal_tau_s)

    @staticmethod
    def _page(rngs: list[np.random.Generator], size: int) -> np.ndarray:
        return np.stack([rng.standard_normal(size) for rng in rngs])

    def _next_threshold(self, which: np.ndarray) -> np.ndarray:
        """Thresholds of the next beat of the instances in ``which`` (in order of beats)."""
        need = int(self.beats.max()) + 1
        while self.jitter.shape[1] < need:
            self.jitter = np.concatenate([self.jitter, self._page(self.beat_rngs, _PAGE)], axis=1)
        e = self.jitter[np.arange(self.n), self.beats]
        th = 1.0 + self.params.beat_jitter_s / self.params.rr_s * e
        out = getattr(self, "threshold", th).copy()
        out[which] = np.maximum(th[which], 0.2)
        return out

    def advance(self, resp_phase: np.ndarray, vagal_input_uc: np.ndarray) -> np.ndarray:
        """One grid step; the R-peak times in it (NaN where there is none).

        Parameters
        ----------
        resp_phase : ndarray of shape (n,)
            Respiratory phase at the step's start, cycles.
        vagal_input_uc : ndarray of shape (n,)
            Gated charge, uC, whose effect arrives at this step (the caller
            applies ``vagal_latency_s``).

        Returns
        -------
        ndarray of shape (n,)
            Time of the R-peak fired during the step, s, or NaN.
        """
        p = self.params
        if self.step % _PAGE == 0:
            self.slow_noise = self._page(self.slow_rngs, _PAGE)
        k = self.step % _PAGE
        self.x = (
            self.decay_slow * self.x
            + p.slow_sd * math.sqrt(1.0 - self.decay_slow**2) * self.slow_noise[:, k]
        )
        self.v = self.decay_vagal * self.v + p.vagal_gain_per_uc * vagal_input_uc
        rate = (1.0 + p.rsa_fraction * -np.cos(2 * math.pi * resp_phase)) * np.exp(self.x)
        rate /= p.rr_s * (1.0 + self.v)
        before = self.integral
        self.integral = before + rate * self.grid_s
        fired = self.integral >= self.threshold
        t0 = self.step * self.grid_s
        self.step += 1
        r_s = np.full(self.n, math.nan)
        if fired.any():
            frac = (self.threshold - before) / (rate * self.grid_s)
            r_s[fired] = t0 + frac[fired] * self.grid_s
            self.integral = np.where(fired, self.integral - self.threshold, self.integral)
            rr = r_s - self.last_r_s
            self.last_rr_s = np.where(fired, rr, self.last_rr_s)
            self.last_r_s = np.where(fired, r_s, self.last_r_s)
            self.beats += fired
            self.threshold = self._next_threshold(fired)
        return r_s


def hrv_metrics(r_peaks_s: np.ndarray) -> dict[str, float]:
    """Time-domain HRV of one series of R-peak times (s), in ms.

    Returns
    -------
    dict of float
        ``mean_rr_ms``, ``sdnn_ms`` (SD of the RR intervals, ``ddof=1``)
        and ``rmssd_ms`` (root mean square of successive differences), the
        Task Force (1996) definitions; NaN with fewer than three beats.
    """
    rr = np.diff(np.asarray(r_peaks_s, dtype=float)) * 1e3
    if rr.size < 2:
        return {"mean_rr_ms": math.nan, "sdnn_ms": math.nan, "rmssd_ms": math.nan}
    return {
        "mean_rr_ms": float(rr.mean()),
        "sdnn_ms": float(rr.std(ddof=1)),
        "rmssd_ms": float(np.sqrt(np.mean(np.diff(rr) ** 2))),
    }
