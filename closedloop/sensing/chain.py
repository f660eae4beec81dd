"""Causal sensing chain: from the model's LFP proxy to biomarker features.

Stages, in order, all causal and stateful, so that a signal processed in
chunks of any size gives exactly what it gives processed whole:

1. **Sampling** at the sensing rate: the mean of the model signal over each
   sampling interval (a boxcar anti-alias filter; the interval is a whole
   number of integration steps).
2. **Sensor**: additive stimulation artefact (``artifact_gain`` times the mean
   net stimulation current over the interval) and white sensor noise of
   standard deviation ``noise_std`` (signal units), from the instance's own
   random stream.
3. **Band-pass**: Butterworth filter as second-order sections, direct form II
   transposed with carried state, the same arithmetic as
   :func:`scipy.signal.sosfilt` with ``zi``.
4. **Envelope**: ``"arv"``, the average rectified value over a sliding window
   (Fleming et al. 2020), or ``"power"``, the squared signal smoothed by a
   first-order low-pass of time constant ``envelope_tau_s``.
5. **Moving average** over ``smoothing_window_s`` (Little et al. 2013 smoothed
   beta amplitude over 400 ms); a window of zero switches it off.
6. **Decimation** to the control period: the controller sees the value at the
   last sample of each period as feature ``"biomarker"``.

Nothing looks ahead: there is no ``filtfilt`` and no FFT over the future.

Features
--------
Besides ``biomarker`` the chain can deliver the features of
:data:`closedloop.sensing.registry.REGISTRY` (``features``), each taken at the
last sample of the period: windowed line length and area
(:mod:`~closedloop.sensing.windowed`), the last sensed or band-passed sample
(:mod:`~closedloop.sensing.instantaneous`), the ecHT phase
(:mod:`~closedloop.sensing.phase`), the phase by autoregressive forward
prediction (:mod:`~closedloop.sensing.phase_ar`), the phase by educated
temporal prediction (:mod:`~closedloop.sensing.phase_etp`) and the aperiodic (1/f) exponent
(:mod:`~closedloop.sensing.aperiodic`). Band power of any band (theta 4-8 Hz,
low gamma 25-40 Hz) is the ``biomarker`` itself with ``band_hz`` set to the
band and ``envelope: power``. The kernels are in
:mod:`~closedloop.sensing.kernels`.

References
----------
Fleming JE, Dunn E, Lowery MM (2020) Simulation of closed-loop deep brain
stimulation control schemes for suppression of pathological beta oscillations
in Parkinson's disease. Front Neurosci 14:166.
Little S et al. (2013) Adaptive deep brain stimulation in advanced Parkinson
disease. Ann Neurol 74:449-457.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from closedloop.sensing.kernels import ENVELOPE_STATE, SensingState, sense_rows
from closedloop.sensing.phase import phase_filter
from closedloop.sensing.phase_ar import AR_METHODS
from closedloop.sensing.registry import FEATURES, new_feature_fields

# FEATURES: imported from here by existing callers; declared in the registry.
__all__ = ["FEATURES", "SensingChain"]

_ENVELOPES = ("arv", "power")


@dataclass(frozen=True)
class SensingChain:
    """Configuration of the sensing chain.

    Parameters
    ----------
    rate_hz : float
        Sensing sample rate, Hz.
    band_hz : tuple of float
        Band-pass edges, Hz (default: the beta band, 13-30 Hz).
    filter_order : int
        Butterworth order of each band edge (the band-pass has
        ``filter_order`` second-order sections).
    noise_std : float
        Sensor noise standard deviation, in the model signal's units.
    artifact_gain : float
        Stimulation artefact, signal units per mA of net current.
    envelope : {"arv", "power"}
        Envelope estimator.
    envelope_window_s : float
        Window of the average rectified value, s.
    envelope_tau_s : float
        Time constant of the power smoother, s.
    smoothing_window_s : float
        Moving average applied to the envelope, s (0 for none).
    features : tuple of str
        Extra features delivered to the controller besides ``biomarker``
        (names in :data:`closedloop.sensing.registry.REGISTRY`), each taken
        at the end of the period.
    feature_window_s : float
        Window of the windowed features (line length, area), s.
    phase_window_s : float
        Window of the endpoint-corrected Hilbert transform behind feature
        ``"phase"``, s (a few cycles of the band's lower edge; 0.25 s holds
        three cycles at 13 Hz).
    aperiodic_band_hz : tuple of float
        Frequency range of feature ``"aperiodic_exponent"``, Hz (a choice:
        2-40 Hz; keep the top well below Nyquist).
    aperiodic_bands : int
        Constant-Q bands tiling that range (at least 2).
    aperiodic_filter_order : int
        Butterworth order of each band edge (1 to 8; the skirts must fall
        faster than the spectrum rises: ``2 * order > chi - 1``).
    aperiodic_window_s : float
        Sliding window of the band powers, s.
    phase_ar_window_s : float
        Window of feature ``"phase_ar"`` (autoregressive forward
        prediction, :mod:`~closedloop.sensing.phase_ar`), s (0.5 s after
        Zrenner et al. 2018 [R]).
    phase_ar_edge_s : float
        Edge its zero-phase FIR leaves unfiltered and the forecast bridges,
        s (64 ms [R]).
    phase_ar_order : int
        Order of its autoregressive model (30 [R]).
    phase_ar_lead_s : float
        How far past the last sample it predicts the phase, s: the latency
        from sample to stimulus it compensates (0: the phase now).
    phase_ar_interval_s : float
        Refit interval, s (a choice: 5 ms); between refits the forecast is used.
    phase_ar_method : {"burg", "yule_walker"}
        How the autoregressive model is fitted: Burg's method (Chen et al.
        2013 [R]; the default, the less biased on windows of a few cycles)
        or Yule-Walker (Zrenner et al. 2018 [R]).
    phase_etp_lead_s : float
        How far past the last sample feature ``"phase_etp"`` (educated
        temporal prediction, :mod:`~closedloop.sensing.phase_etp`) predicts
        the phase, s (0: the phase now).
    """

    rate_hz: float = 1000.0
    band_hz: tuple[float, float] = (13.0, 30.0)
    filter_order: int = 2
    noise_std: float = 0.0
    artifact_gain: float = 0.0
    envelope: str = "arv"
    envelope_window_s: float = 0.1
    envelope_tau_s: float = 0.05
    smoothing_window_s: float = 0.0
    features: tuple[str, ...] = ()
    feature_window_s: float = 0.25
    phase_window_s: float = 0.25
    aperiodic_band_hz: tuple[float, float] = (2.0, 40.0)
    aperiodic_bands: int = 8
    aperiodic_filter_order: int = 3
    aperiodic_window_s: float = 2.0
    phase_ar_window_s: float = 0.5
    phase_ar_edge_s: float = 0.064
    phase_ar_order: int = 30
    phase_ar_lead_s: float = 0.0
    phase_ar_interval_s: float = 0.005
    phase_ar_method: str = "burg"
    phase_etp_lead_s: float = 0.0
    _sos: np.ndarray | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.rate_hz > 0:
            raise ValueError(f"sensing.rate_hz must be positive, got {self.rate_hz!r}")
        lo, hi = self.band_hz
        if not 0 < lo < hi < self.rate_hz / 2:
            raise ValueError(
                f"sensing.band_hz must satisfy 0 < low < high < rate_hz / 2 "
                f"({self.rate_hz / 2:g} Hz), got {list(self.band_hz)}"
            )
        if self.envelope not in _ENVELOPES:
            raise ValueError(
                f"sensing.envelope must be one of {sorted(_ENVELOPES)}, got {self.envelope!r}"
            )
        if not 1 <= self.filter_order <= 8:
            raise ValueError(f"sensing.filter_order must be 1 to 8, got {self.filter_order}")
        for name in ("noise_std", "smoothing_window_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"sensing.{name} must be zero or positive")
        for name in ("envelope_window_s", "envelope_tau_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"sensing.{name} must be positive")
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown or len(set(self.features)) != len(self.features):
            raise ValueError(
                f"sensing.features must be distinct names among {sorted(FEATURES)}, "
                f"got {list(self.features)}"
            )
        if not self.feature_window_s > 0:
            raise ValueError("sensing.feature_window_s must be positive")
        if not self.phase_window_s * self.rate_hz >= 8:
            raise ValueError(
                "sensing.phase_window_s must hold at least 8 sensing samples, got "
                f"{self.phase_window_s!r} s at {self.rate_hz:g} Hz"
            )
        a_lo, a_hi = self.aperiodic_band_hz
        if not 0 < a_lo < a_hi < self.rate_hz / 2:
            raise ValueError(
                f"sensing.aperiodic_band_hz must satisfy 0 < low < high < rate_hz / 2 "
                f"({self.rate_hz / 2:g} Hz), got {list(self.aperiodic_band_hz)}"
            )
        if not 2 <= self.aperiodic_bands <= 64:
            raise ValueError(f"sensing.aperiodic_bands must be 2 to 64, got {self.aperiodic_bands}")
        if not 1 <= self.aperiodic_filter_order <= 8:
            raise ValueError(
                f"sensing.aperiodic_filter_order must be 1 to 8, got {self.aperiodic_filter_order}"
            )
        if not (math.isfinite(self.aperiodic_window_s) and self.aperiodic_window_s > 0):
            raise ValueError("sensing.aperiodic_window_s must be a positive number of seconds")
        self._check_phase_ar()
        if not math.isfinite(self.artifact_gain):
            raise ValueError("sensing.artifact_gain must be finite")
        object.__setattr__(self, "_sos", None)

    def _check_phase_ar(self) -> None:
        for name in ("phase_ar_edge_s", "phase_ar_interval_s"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"sensing.{name} must be a positive number of seconds")
        for name in ("phase_ar_lead_s", "phase_etp_lead_s"):
            if not (math.isfinite(getattr(self, name)) and 0 <= getattr(self, name) <= 0.5):
                raise ValueError(f"sensing.{name} must be 0 to 0.5 s")
        if self.phase_ar_method not in AR_METHODS:
            raise ValueError(
                f"sensing.phase_ar_method must be one of {list(AR_METHODS)}, "
                f"got {self.phase_ar_method!r}"
            )
        if not 1 <= self.phase_ar_order <= 200:
            raise ValueError(f"sensing.phase_ar_order must be 1 to 200, got {self.phase_ar_order}")
        edge = 2 * max(1, round(self.phase_ar_edge_s * self.rate_hz))
        # The window must hold the fit only where the feature is computed: a
        # slowly sampled chain without phase_ar is not refused for it.
        if (
            "phase_ar" in self.features
            and not self.phase_ar_window_s * self.rate_hz >= edge + 2 * self.phase_ar_order + 2
        ):
            raise ValueError(
                "sensing.phase_ar_window_s must exceed twice phase_ar_edge_s by at least "
                f"2 * phase_ar_order + 2 samples, got {self.phase_ar_window_s!r} s"
            )

    @property
    def sos(self) -> np.ndarray:
        """Band-pass second-order sections, shape ``(filter_order, 6)``.

        Designed on first use: ``scipy.signal`` (which imports ``scipy.stats``)
        costs about 0.7 s to import, which ``closedloop validate`` need not pay.
        """
        sos = self._sos
        if sos is None:
            from scipy import signal

            sos = np.ascontiguousarray(
                signal.butter(
                    self.filter_order, self.band_hz, "bandpass", fs=self.rate_hz, output="sos"
                )
            )
            object.__setattr__(self, "_sos", sos)
        return sos

    def window_samples(self, seconds: float) -> int:
        """Whole number of sensing samples in ``seconds`` (at least 1)."""
        return max(1, int(round(seconds * self.rate_hz)))

    def to_dict(self) -> dict:
        """Return the configuration as a plain dict."""
        out = asdict(self)
        out.pop("_sos", None)
        out["band_hz"] = list(self.band_hz)
        out["features"] = list(self.features)
        out["aperiodic_band_hz"] = list(self.aperiodic_band_hz)
        return out

    def new_state(self, n: int, rng_state: np.ndarray) -> SensingState:
        """Return the initial state for ``n`` instances.

        Parameters
        ----------
        n : int
            Batch size.
        rng_state : ndarray of uint64, shape (n, 2)
            Sensor-noise streams (see :func:`closedloop.core.random.rng_states`).
        """
        env_w = self.window_samples(self.envelope_window_s) if self.envelope == "arv" else 1
        sm_w = self.window_samples(self.smoothing_window_s) if self.smoothing_window_s else 1
        return SensingState(
            noise_std=float(self.noise_std),
            artifact_gain=float(self.artifact_gain),
            power=self.envelope == "power",
            alpha=math.exp(-1.0 / (self.rate_hz * self.envelope_tau_s)),
            inv_rate=1.0 / self.rate_hz,
            sos=self.sos,
            zi=np.zeros((n, self.sos.shape[0], 2)),
            env_ring=np.zeros((n, env_w)),
            sm_ring=np.zeros((n, sm_w)),
            envelope=np.zeros((n, len(ENVELOPE_STATE))),
            rng=np.array(rng_state, dtype=np.uint64, copy=True),
            **new_feature_fields(
                self.features,
                n,
                self.rate_hz,
                self.band_hz,
                self.sos,
                self.window_samples(self.feature_window_s),
                self.window_samples(self.phase_window_s),
                (
                    self.aperiodic_band_hz,
                    self.aperiodic_bands,
                    self.aperiodic_filter_order,
                    self.window_samples(self.aperiodic_window_s),
                ),
                (
                    self.phase_ar_window_s,
                    self.phase_ar_edge_s,
                    self.phase_ar_order,
                    self.phase_ar_lead_s,
                    self.phase_ar_interval_s,
                    self.phase_ar_method,
                ),
                self.phase_etp_lead_s,
            ),
        )

    def phase_filter(self) -> tuple[np.ndarray, np.ndarray]:
        """Taps and phase-correction table of the ``"phase"`` feature's estimator.

        See :func:`closedloop.sensing.phase.phase_filter` (window:
        ``phase_window_s``).
        """
        return phase_filter(
            self.rate_hz, self.band_hz, self.sos, self.window_samples(self.phase_window_s)
        )

    def process(
        self, state: SensingState, samples: np.ndarray, artifact_ma: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Run already-sampled signal through the chain, chunk by chunk.

        Parameters
        ----------
        state : SensingState
            Carried state, updated in place.
        samples : ndarray, shape (n, m)
            Signal at the sensing rate, model signal units.
        artifact_ma : ndarray, shape (n, m), optional
            Mean net stimulation current per sample, mA.

        Returns
        -------
        dict
            ``sensed`` (after noise and artefact), ``filtered`` (band-passed)
            and ``envelope`` (after smoothing), and each of :attr:`features`,
            each of shape ``(n, m)``.
        """
        x = np.ascontiguousarray(samples, dtype=np.float64)
        art = (
            np.zeros_like(x)
            if artifact_ma is None
            else np.ascontiguousarray(artifact_ma, dtype=np.float64)
        )
        out = {k: np.empty_like(x) for k in ("sensed", "filtered", "envelope")}
        features = np.empty((x.shape[0], len(self.features), x.shape[1]))
        sense_rows(x, art, state, out["sensed"], out["filtered"], out["envelope"], features)
        for f, name in enumerate(self.features):
            out[name] = features[:, f, :]
        return out
