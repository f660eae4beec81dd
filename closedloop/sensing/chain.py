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

Phase
-----
Feature ``"phase"`` (rad, in ``[-pi, pi)``, 0 at the peaks of the band-passed
signal, ``pi`` at its troughs, increasing with time) is the instantaneous
phase of the band-passed signal at the current sample, by the
endpoint-corrected Hilbert transform (ecHT) of Schreglmann et al. (2021): over
a window of the last ``phase_window_s`` seconds of the band-passed signal, the
discrete Fourier transform, the negative frequencies removed, multiplied by
the frequency response of a causal second-order Butterworth band-pass over
``band_hz`` (the correction that keeps the window's end free of the Gibbs
distortion of a plain Hilbert transform), transformed back, and the last
sample taken. That chain of operations is linear and the same for every
window, so it is applied exactly as one complex FIR filter whose taps are
computed once (``W`` multiply-adds per sample instead of two FFTs).

A causal band-pass delays what it passes: the ecHT returns the phase of the
filtered signal, which lags (above the band centre) or leads (below it) the
signal's own phase by ``-arg T(f)``, ``T`` being the response of the sensing
band-pass and the ecHT together (about 60 degrees 3 Hz away from the centre of
a 13-30 Hz band). The chain removes that bias: it tracks the instantaneous
frequency ``f`` (the phase advance between samples, averaged by a first-order
low-pass of time constant 50 ms, clipped to ``band_hz``) and subtracts
``arg T(f)``. On a sinusoid anywhere in the band the mean error is then below
a few degrees (``tests/test_phase.py``). What remains is the sampling delay:
each sample is the mean over its interval, half an interval late.

References
----------
Fleming JE, Dunn E, Lowery MM (2020) Simulation of closed-loop deep brain
stimulation control schemes for suppression of pathological beta oscillations
in Parkinson's disease. Front Neurosci 14:166.
Little S et al. (2013) Adaptive deep brain stimulation in advanced Parkinson
disease. Ann Neurol 74:449-457.
Schreglmann SR et al. (2021) Non-invasive suppression of essential tremor via
phase-locked disruption of its temporal coherence. Nat Commun 12:363.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from numba import njit
from scipy import signal

from closedloop.core.random import normal

__all__ = [
    "FEATURES",
    "PHASE_FREQUENCY_TAU_S",
    "SensingChain",
    "SensingState",
    "record_features",
    "sense_period",
    "sense_samples",
]

_ENVELOPES = {"arv": 0, "power": 1}
#: Extra features the chain can deliver besides ``biomarker``, with units.
FEATURES: dict[str, str] = {
    # Sum of |x_k - x_{k-1}| of the sensed (broadband) signal over the feature
    # window: the line length of responsive neurostimulators (Esteller et al.
    # 2001), signal units.
    "line_length": "signal",
    # Sum of |x_k| / rate over the feature window: the "area" detector of the
    # same devices, signal units x s.
    "area": "signal*s",
    # The last sensed sample and the last band-passed sample, signal units.
    "signal": "signal",
    "filtered": "signal",
    # Instantaneous phase of the band-passed signal by the endpoint-corrected
    # Hilbert transform (Schreglmann et al. 2021), rad (see the module notes).
    "phase": "rad",
}
#: Row of the first feature in the loop's per-period record (rows 0-4: biomarker,
#: then the device's amplitude, frequency, pulse width and pulse count).
FIRST_FEATURE_ROW = 5
_LINE_LENGTH, _AREA, _SIGNAL, _FILTERED, _PHASE = range(5)
# Columns of the per-instance scalar state.
_ENV_SUM, _ENV_COUNT, _SM_SUM, _SM_COUNT, _POWER, _LAST = range(6)
# Entries of the shared parameter vector.
_NOISE, _ART, _KIND, _ALPHA, _INV_RATE = range(5)
# ... and of the phase estimator: frequency smoother coefficient, band edges
# (Hz) and grid points per Hz of the phase-correction table.
_PH_ALPHA, _PH_F_LO, _PH_F_HI, _PH_PER_HZ = range(5, 9)
# Columns of the per-instance phase state: previous analytic sample (real,
# imaginary), smoothed instantaneous frequency (Hz), samples seen.
_PH_RE, _PH_IM, _PH_FREQ, _PH_COUNT = range(4)
#: Time constant of the instantaneous-frequency smoother of the phase feature, s.
PHASE_FREQUENCY_TAU_S = 0.05
# Points of the phase-correction table across the band.
_PH_TABLE = 512


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
        (keys of :data:`FEATURES`), each taken at the end of the period.
    feature_window_s : float
        Window of the windowed features (line length, area), s.
    phase_window_s : float
        Window of the endpoint-corrected Hilbert transform behind feature
        ``"phase"``, s (a few cycles of the band's lower edge; 0.25 s holds
        three cycles at 13 Hz).
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
    _sos: np.ndarray = field(init=False, repr=False, compare=False)

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
        if not math.isfinite(self.artifact_gain):
            raise ValueError("sensing.artifact_gain must be finite")
        sos = signal.butter(
            self.filter_order, self.band_hz, "bandpass", fs=self.rate_hz, output="sos"
        )
        object.__setattr__(self, "_sos", np.ascontiguousarray(sos))

    @property
    def sos(self) -> np.ndarray:
        """Band-pass second-order sections, shape ``(filter_order, 6)``."""
        return self._sos

    def window_samples(self, seconds: float) -> int:
        """Whole number of sensing samples in ``seconds`` (at least 1)."""
        return max(1, int(round(seconds * self.rate_hz)))

    def to_dict(self) -> dict:
        """Return the configuration as a plain dict."""
        out = asdict(self)
        out.pop("_sos", None)
        out["band_hz"] = list(self.band_hz)
        out["features"] = list(self.features)
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
        params = np.zeros(9)
        params[_INV_RATE] = 1.0 / self.rate_hz
        params[_NOISE] = self.noise_std
        params[_ART] = self.artifact_gain
        params[_KIND] = _ENVELOPES[self.envelope]
        params[_ALPHA] = math.exp(-1.0 / (self.rate_hz * self.envelope_tau_s))
        env_w = self.window_samples(self.envelope_window_s) if self.envelope == "arv" else 1
        sm_w = self.window_samples(self.smoothing_window_s) if self.smoothing_window_s else 1
        n_feat = len(self.features)
        feat_w = self.window_samples(self.feature_window_s)
        lo, hi = self.band_hz
        params[_PH_ALPHA] = math.exp(-1.0 / (self.rate_hz * PHASE_FREQUENCY_TAU_S))
        params[_PH_F_LO] = lo
        params[_PH_F_HI] = hi
        params[_PH_PER_HZ] = (_PH_TABLE - 1) / (hi - lo)
        phase_state = np.zeros((n, 4))
        phase_state[:, _PH_FREQ] = math.sqrt(lo * hi)
        if "phase" in self.features:
            taps, table = self.phase_filter()
            phase_ring = np.zeros((n, taps.size))
        else:
            taps, table = np.zeros(0, dtype=np.complex128), np.zeros(0)
            phase_ring = np.zeros((n, 0))
        return SensingState(
            sos=self.sos,
            params=params,
            zi=np.zeros((n, self.sos.shape[0], 2)),
            env_ring=np.zeros((n, env_w)),
            sm_ring=np.zeros((n, sm_w)),
            scalars=np.zeros((n, 6)),
            rng=np.array(rng_state, dtype=np.uint64, copy=True),
            feature_codes=np.array(
                [list(FEATURES).index(f) for f in self.features], dtype=np.int64
            ),
            feature_values=np.zeros((n, n_feat)),
            feature_ring=np.zeros((n, n_feat, feat_w)),
            feature_sums=np.zeros((n, n_feat, 3)),  # running sum, count, previous sample
            phase_taps=taps,
            phase_table=table,
            phase_ring=phase_ring,
            phase_state=phase_state,
        )

    def phase_filter(self) -> tuple[np.ndarray, np.ndarray]:
        """Taps and phase-correction table of the ``"phase"`` feature's estimator.

        Returns
        -------
        taps : ndarray of complex, shape (W,)
            The endpoint-corrected Hilbert transform (Schreglmann et al. 2021)
            over a window of ``W`` band-passed samples as one complex FIR
            filter: ``taps[d]`` weighs the sample ``d`` samples ago, and
            ``sum_d taps[d] * y[n - d]`` is the analytic signal at sample ``n``.
        table : ndarray, shape (512,)
            ``arg T(f)``, rad (unwrapped), on a uniform grid from the band's
            lower to its upper edge: ``T`` is the response from the sensed
            signal to that analytic signal (sensing band-pass, then the FIR).
        """
        w = self.window_samples(self.phase_window_s)
        # Analytic-signal mask: DC and Nyquist once, positive frequencies twice.
        mask = np.zeros(w)
        mask[0] = 1.0
        mask[1 : (w + 1) // 2] = 2.0
        if w % 2 == 0:
            mask[w // 2] = 1.0
        freq = np.abs(np.fft.fftfreq(w, 1.0 / self.rate_hz))
        ech = signal.butter(2, self.band_hz, "bandpass", fs=self.rate_hz, output="sos")
        _, response = signal.sosfreqz(ech, worN=freq, fs=self.rate_hz)
        # Last sample of ifft(mask * H * fft(window)): weight of the sample d
        # samples before the end is ifft(mask * H)[d].
        taps = np.ascontiguousarray(np.fft.ifft(mask * response))
        grid = np.linspace(self.band_hz[0], self.band_hz[1], _PH_TABLE)
        _, chain = signal.sosfreqz(self.sos, worN=grid, fs=self.rate_hz)
        fir = np.exp(-2j * np.pi * np.outer(grid, np.arange(w)) / self.rate_hz) @ taps
        table = np.ascontiguousarray(np.unwrap(np.angle(chain * fir)))
        return taps, table

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
        sensing = state.as_tuple()
        for i in range(x.shape[0]):
            sense_samples(
                i,
                x,
                art,
                0,
                x.shape[1],
                sensing,
                out["sensed"],
                out["filtered"],
                out["envelope"],
                features,
                0,
            )
        for f, name in enumerate(self.features):
            out[name] = features[:, f, :]
        return out


@dataclass
class SensingState:
    """Carried state of a sensing chain for a batch (arrays updated in place)."""

    sos: np.ndarray
    params: np.ndarray
    zi: np.ndarray
    env_ring: np.ndarray
    sm_ring: np.ndarray
    scalars: np.ndarray
    rng: np.ndarray
    feature_codes: np.ndarray
    feature_values: np.ndarray
    feature_ring: np.ndarray
    feature_sums: np.ndarray
    phase_taps: np.ndarray
    phase_table: np.ndarray
    phase_ring: np.ndarray
    phase_state: np.ndarray

    def as_tuple(self) -> tuple:
        """Arrays in the order the kernels take them."""
        return (
            self.sos,
            self.params,
            self.zi,
            self.env_ring,
            self.sm_ring,
            self.scalars,
            self.rng,
            self.feature_codes,
            self.feature_values,
            self.feature_ring,
            self.feature_sums,
            self.phase_taps,
            self.phase_table,
            self.phase_ring,
            self.phase_state,
        )


@njit(cache=True, inline="always")
def _moving_average(ring, scalars, i, sum_col, value):
    width = ring.shape[1]
    count = scalars[i, sum_col + 1]
    idx = int(count) % width
    scalars[i, sum_col] += value - ring[i, idx]
    ring[i, idx] = value
    count += 1.0
    scalars[i, sum_col + 1] = count
    return scalars[i, sum_col] / min(count, width)


@njit(cache=True, inline="always")
def _moving_sum(ring, sums, i, f, value):
    width = ring.shape[2]
    count = sums[i, f, 1]
    idx = int(count) % width
    sums[i, f, 0] += value - ring[i, f, idx]
    ring[i, f, idx] = value
    sums[i, f, 1] = count + 1.0
    return sums[i, f, 0]


@njit(cache=True)
def _phase_sample(i, y, taps, table, ring, state, params, rate):
    """Push band-passed sample ``y`` of instance ``i``; return its phase, rad."""
    w = taps.shape[0]
    count = state[i, _PH_COUNT]
    pos = int(count % w)
    ring[i, pos] = y
    state[i, _PH_COUNT] = count + 1.0
    # Analytic signal at this sample: the ecHT as a complex FIR over the ring.
    re = 0.0
    im = 0.0
    for d in range(pos + 1):
        v = ring[i, pos - d]
        re += taps[d].real * v
        im += taps[d].imag * v
    for d in range(pos + 1, w):
        v = ring[i, pos - d + w]
        re += taps[d].real * v
        im += taps[d].imag * v
    # Instantaneous frequency from the phase advance since the last sample.
    p_re = state[i, _PH_RE]
    p_im = state[i, _PH_IM]
    if p_re != 0.0 or p_im != 0.0:
        advance = math.atan2(im * p_re - re * p_im, re * p_re + im * p_im)
        alpha = params[_PH_ALPHA]
        freq = alpha * state[i, _PH_FREQ] + (1.0 - alpha) * advance * rate / (2.0 * math.pi)
        state[i, _PH_FREQ] = freq
    state[i, _PH_RE] = re
    state[i, _PH_IM] = im
    # Remove the filters' phase shift at that frequency (table over the band).
    f_lo = params[_PH_F_LO]
    f = min(max(state[i, _PH_FREQ], f_lo), params[_PH_F_HI])
    x = (f - f_lo) * params[_PH_PER_HZ]
    k = min(int(x), table.shape[0] - 2)
    shift = table[k] + (x - k) * (table[k + 1] - table[k])
    phase = math.atan2(im, re) - shift
    return phase - 2.0 * math.pi * math.floor((phase + math.pi) / (2.0 * math.pi))


@njit(cache=True)
def sense_samples(
    i, x, art, start, stop, sensing, sensed_out, filtered_out, envelope_out, features_out, col0
):
    """Process samples ``start .. stop - 1`` of row ``i`` of ``x``.

    Writes sample ``k`` to column ``col0 + k - start`` of the outputs (any
    output may have zero columns to skip it; ``features_out`` has shape
    ``(n, F, m)``) and returns the last envelope. The features' values at the
    last sample stay in the state (``feature_values``).
    """
    (
        sos,
        params,
        zi,
        env_ring,
        sm_ring,
        scalars,
        rng,
        codes,
        feat,
        feat_ring,
        feat_sums,
        ph_taps,
        ph_table,
        ph_ring,
        ph_state,
    ) = sensing
    noise = params[_NOISE]
    gain = params[_ART]
    power = params[_KIND] == 1.0
    alpha = params[_ALPHA]
    inv_rate = params[_INV_RATE]
    n_sec = sos.shape[0]
    n_feat = codes.shape[0]
    env = scalars[i, _LAST]
    for k in range(start, stop):
        v = x[i, k] + gain * art[i, k]
        if noise > 0.0:
            v += noise * normal(rng, i)
        y = v
        for s in range(n_sec):
            out = sos[s, 0] * y + zi[i, s, 0]
            zi[i, s, 0] = sos[s, 1] * y - sos[s, 4] * out + zi[i, s, 1]
            zi[i, s, 1] = sos[s, 2] * y - sos[s, 5] * out
            y = out
        if power:
            scalars[i, _POWER] = alpha * scalars[i, _POWER] + (1.0 - alpha) * y * y
            env = scalars[i, _POWER]
        else:
            env = _moving_average(env_ring, scalars, i, _ENV_SUM, abs(y))
        if sm_ring.shape[1] > 1:
            env = _moving_average(sm_ring, scalars, i, _SM_SUM, env)
        c = col0 + k - start
        for f in range(n_feat):
            code = codes[f]
            if code == _LINE_LENGTH:
                # The first sample has no predecessor: it adds nothing.
                step = abs(v - feat_sums[i, f, 2]) if feat_sums[i, f, 1] > 0 else 0.0
                feat_sums[i, f, 2] = v
                value = _moving_sum(feat_ring, feat_sums, i, f, step)
            elif code == _AREA:
                value = _moving_sum(feat_ring, feat_sums, i, f, abs(v) * inv_rate)
            elif code == _SIGNAL:
                value = v
            elif code == _PHASE:
                value = _phase_sample(
                    i, y, ph_taps, ph_table, ph_ring, ph_state, params, 1.0 / inv_rate
                )
            else:  # _FILTERED
                value = y
            feat[i, f] = value
            if features_out.shape[2] > 0:
                features_out[i, f, c] = value
        if sensed_out.shape[1] > 0:
            sensed_out[i, c] = v
        if filtered_out.shape[1] > 0:
            filtered_out[i, c] = y
        if envelope_out.shape[1] > 0:
            envelope_out[i, c] = env
    scalars[i, _LAST] = env
    return env


@njit(cache=True)
def sense_period(
    i,
    n_steps,
    steps_per_sample,
    signal_steps,
    net_steps,
    samples,
    art_samples,
    sensing,
    lfp_out,
    sensed_out,
    col0,
):
    """Sample one control period of step-level data and run the chain.

    ``signal_steps`` and ``net_steps`` hold the model signal and the net
    stimulation current (mA) of each integration step of the period; the
    boxcar means go to ``samples``/``art_samples`` (scratch) and ``lfp_out``.
    Returns the envelope at the end of the period.
    """
    m = n_steps // steps_per_sample
    inv = 1.0 / steps_per_sample
    for k in range(m):
        acc = 0.0
        acc_net = 0.0
        for j in range(k * steps_per_sample, (k + 1) * steps_per_sample):
            acc += signal_steps[i, j]
            acc_net += net_steps[i, j]
        samples[i, k] = acc * inv
        art_samples[i, k] = acc_net * inv
        lfp_out[i, col0 + k] = samples[i, k]
    empty = samples[:, :0]
    no_features = sensing[9][:, :, :0]  # per-sample features are not kept here
    return sense_samples(
        i, samples, art_samples, 0, m, sensing, sensed_out, empty, empty, no_features, col0
    )


@njit(cache=True, inline="always")
def record_features(i, sensing, per_period, k):
    """Copy instance ``i``'s current features to ``per_period[i, FIRST_FEATURE_ROW + f, k]``."""
    values = sensing[8]
    for f in range(values.shape[1]):
        per_period[i, FIRST_FEATURE_ROW + f, k] = values[i, f]
