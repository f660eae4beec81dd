"""Tests of the causal sensing chain: filter, envelopes, noise, chunking, causality."""

from __future__ import annotations

import importlib
import math
from itertools import pairwise

import numpy as np
import pytest
from scipy import signal

from closedloop.controllers import OpenLoop
from closedloop.core.loop import ClosedLoop
from closedloop.core.random import rng_states
from closedloop.device import Device
from closedloop.models import STNGPe
from closedloop.sensing.aperiodic import aperiodic_bank
from closedloop.sensing.chain import SensingChain
from closedloop.sensing.registry import CODES, FEATURES, REGISTRY

FS = 1000.0


def new_state(chain: SensingChain, n: int, seed: int = 0):
    return chain.new_state(n, rng_states(np.random.SeedSequence(seed).spawn(n)))


def process_in_chunks(
    chain: SensingChain, x: np.ndarray, sizes, seed: int = 0, artifact_ma: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Process ``x`` in chunks whose sizes cycle through ``sizes``."""
    state = new_state(chain, x.shape[0], seed)
    parts: dict[str, list[np.ndarray]] = {"sensed": [], "filtered": [], "envelope": []}
    start = 0
    k = 0
    while start < x.shape[1]:
        stop = min(start + sizes[k % len(sizes)], x.shape[1])
        art = None if artifact_ma is None else artifact_ma[:, start:stop]
        out = chain.process(state, x[:, start:stop], art)
        for key in parts:
            parts[key].append(out[key])
        start = stop
        k += 1
    return {key: np.concatenate(v, axis=1) for key, v in parts.items()}


def random_signal(n: int = 3, m: int = 3000, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(m) / FS
    beta = np.sin(2 * np.pi * 21.0 * t + rng.uniform(0, 2 * np.pi, (n, 1)))
    return beta + rng.standard_normal((n, m)) + 0.5  # with a DC offset for the high-pass


def sine(amplitude: float, freq_hz: float, m: int, n: int = 2) -> np.ndarray:
    t = np.arange(m) / FS
    return np.tile(amplitude * np.sin(2 * np.pi * freq_hz * t), (n, 1))


# ---------------------------------------------------------------------------
# Band-pass filter


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_chunked_filter_equals_sosfilt_on_whole_signal(chunk):
    chain = SensingChain(rate_hz=FS, band_hz=(13, 30), filter_order=2, noise_std=0)
    x = random_signal()
    out = process_in_chunks(chain, x, [chunk])
    expected = signal.sosfilt(chain.sos, x, axis=-1)
    np.testing.assert_allclose(out["filtered"], expected, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(out["sensed"], x)  # no noise, no artefact


@pytest.mark.parametrize("order", [1, 4])
def test_filter_order_matches_sosfilt(order):
    chain = SensingChain(rate_hz=FS, band_hz=(8, 12), filter_order=order)
    assert chain.sos.shape == (order, 6)
    x = random_signal(n=2, m=2000, seed=5)
    out = process_in_chunks(chain, x, [13, 1, 250])
    np.testing.assert_allclose(
        out["filtered"], signal.sosfilt(chain.sos, x, axis=-1), rtol=0, atol=1e-10
    )


# ---------------------------------------------------------------------------
# Envelopes


def reference_envelope(chain: SensingChain, filtered: np.ndarray) -> np.ndarray:
    """Envelope computed independently from the filtered signal (numpy/scipy)."""

    def moving_average(v: np.ndarray, width: int) -> np.ndarray:
        # Mean over the last ``width`` samples, fewer at the start.
        c = np.cumsum(v, axis=1)
        out = np.empty_like(v)
        out[:, :width] = c[:, :width] / np.arange(1, min(width, v.shape[1]) + 1)
        out[:, width:] = (c[:, width:] - c[:, :-width]) / width
        return out

    if chain.envelope == "arv":
        env = moving_average(np.abs(filtered), chain.window_samples(chain.envelope_window_s))
    else:
        alpha = math.exp(-1.0 / (chain.rate_hz * chain.envelope_tau_s))
        env = signal.lfilter([1 - alpha], [1, -alpha], filtered**2, axis=1)
    if chain.smoothing_window_s > 0:
        width = chain.window_samples(chain.smoothing_window_s)
        if width > 1:
            env = moving_average(env, width)
    return env


# 2 ms: a smoothing window of 2 samples, the narrowest that smooths at all.
@pytest.mark.parametrize("smoothing_s", [0.0, 0.002, 0.4])
@pytest.mark.parametrize("envelope", ["arv", "power"])
def test_envelope_is_chunk_invariant_and_correct(envelope, smoothing_s):
    chain = SensingChain(
        rate_hz=FS,
        envelope=envelope,
        smoothing_window_s=smoothing_s,
        envelope_window_s=0.05,
        envelope_tau_s=0.02,
    )
    x = random_signal(m=4000)
    whole = process_in_chunks(chain, x, [x.shape[1]])
    for sizes in ([1], [7], [1000], [3, 250, 1, 64, 999]):
        chunked = process_in_chunks(chain, x, sizes)
        for key in whole:
            np.testing.assert_array_equal(chunked[key], whole[key], err_msg=f"{key} {sizes}")
    expected = reference_envelope(chain, whole["filtered"])
    np.testing.assert_allclose(whole["envelope"], expected, rtol=1e-9, atol=1e-12)


def test_noise_and_artifact_are_chunk_invariant():
    chain = SensingChain(rate_hz=FS, noise_std=0.3, artifact_gain=0.2, smoothing_window_s=0.1)
    x = random_signal(m=3001)
    art = np.random.default_rng(3).uniform(-1, 1, x.shape)
    whole = process_in_chunks(chain, x, [x.shape[1]], seed=4, artifact_ma=art)
    for sizes in ([1], [7], [3, 1, 500, 2]):  # chunk edges anywhere in the noise stream
        chunked = process_in_chunks(chain, x, sizes, seed=4, artifact_ma=art)
        for key in whole:
            np.testing.assert_array_equal(chunked[key], whole[key], err_msg=f"{key} {sizes}")


def test_artifact_adds_gain_times_net_current():
    chain = SensingChain(rate_hz=FS, artifact_gain=0.25)
    x = random_signal(m=500)
    art = np.random.default_rng(2).uniform(-2, 2, x.shape)
    out = process_in_chunks(chain, x, [64], artifact_ma=art)
    np.testing.assert_allclose(out["sensed"], x + 0.25 * art, rtol=0, atol=1e-15)
    np.testing.assert_allclose(
        out["filtered"], signal.sosfilt(chain.sos, x + 0.25 * art), rtol=0, atol=1e-10
    )


@pytest.mark.parametrize("envelope", ["arv", "power"])
def test_outputs_are_causal(envelope):
    chain = SensingChain(
        rate_hz=FS, envelope=envelope, noise_std=0.2, artifact_gain=0.1, smoothing_window_s=0.2
    )
    x = random_signal(m=2000)
    art = np.zeros_like(x)
    base = process_in_chunks(chain, x, [2000], artifact_ma=art)
    rng = np.random.default_rng(9)
    for cut in (1, 500, 1999):
        future = x.copy()
        future[:, cut:] = 100.0 * rng.standard_normal((x.shape[0], x.shape[1] - cut))
        art_future = art.copy()
        art_future[:, cut:] = 5.0
        changed = process_in_chunks(chain, future, [2000], artifact_ma=art_future)
        for key in base:
            np.testing.assert_array_equal(changed[key][:, :cut], base[key][:, :cut])
            assert not np.array_equal(changed[key][:, cut:], base[key][:, cut:])


def test_arv_of_sine_is_two_over_pi_amplitude():
    amplitude = 3.0
    chain = SensingChain(rate_hz=FS, band_hz=(13, 30), envelope="arv")
    x = sine(amplitude, 20.0, 3000)
    env = process_in_chunks(chain, x, [100])["envelope"]
    settled = env[:, 1000:]  # 1 s: the filter and the 100 ms window have settled
    np.testing.assert_allclose(settled, 2 * amplitude / np.pi, rtol=0.02)


def test_power_envelope_of_sine_is_half_amplitude_squared():
    amplitude = 2.0
    chain = SensingChain(rate_hz=FS, band_hz=(13, 30), envelope="power", envelope_tau_s=0.05)
    x = sine(amplitude, 20.0, 4000)
    env = process_in_chunks(chain, x, [128])["envelope"]
    # The first-order smoother leaves a ripple at 40 Hz: average whole periods.
    settled = env[:, 2000:]
    np.testing.assert_allclose(settled.mean(axis=1), amplitude**2 / 2, rtol=0.02)
    np.testing.assert_allclose(settled, amplitude**2 / 2, rtol=0.15)


def test_sine_outside_band_is_attenuated():
    chain = SensingChain(rate_hz=FS, band_hz=(13, 30))
    env_in = process_in_chunks(chain, sine(1.0, 20.0, 3000), [3000])["envelope"][:, -1]
    env_out = process_in_chunks(chain, sine(1.0, 150.0, 3000), [3000])["envelope"][:, -1]
    assert np.all(env_out < 0.05 * env_in)


# ---------------------------------------------------------------------------
# Sensor noise


def test_sensor_noise_reproducible_and_of_configured_std():
    std = 0.7
    chain = SensingChain(rate_hz=FS, noise_std=std)
    x = np.zeros((3, 20000))
    a = process_in_chunks(chain, x, [20000], seed=11)
    b = process_in_chunks(chain, x, [333], seed=11)
    c = process_in_chunks(chain, x, [20000], seed=12)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["sensed"], c["sensed"])
    noise = a["sensed"]
    np.testing.assert_allclose(noise.std(axis=1), std, rtol=0.05)
    np.testing.assert_allclose(noise.mean(axis=1), 0.0, atol=5 * std / math.sqrt(20000))
    # Instances have their own streams: no two rows alike or correlated.
    corr = np.corrcoef(noise)
    assert np.all(np.abs(corr[np.triu_indices(3, 1)]) < 0.05)
    # White: consecutive samples uncorrelated.
    lag1 = np.mean(noise[:, 1:] * noise[:, :-1], axis=1) / noise.var(axis=1)
    assert np.all(np.abs(lag1) < 0.05)
    # Gaussian: about 68 % within one standard deviation, 95 % within two.
    assert abs(np.mean(np.abs(noise) < std) - 0.6827) < 0.02
    assert abs(np.mean(np.abs(noise) < 2 * std) - 0.9545) < 0.01


def test_noise_leaves_the_input_untouched():
    chain = SensingChain(rate_hz=FS, noise_std=1.0)
    x = random_signal(m=100)
    copy = x.copy()
    state = new_state(chain, 3)
    chain.process(state, x)
    np.testing.assert_array_equal(x, copy)


# ---------------------------------------------------------------------------
# Configuration


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"band_hz": (13.0, 600.0)}, "band_hz"),  # above Nyquist (500 Hz)
        ({"band_hz": (13.0, 500.0)}, "band_hz"),  # at Nyquist
        ({"band_hz": (30.0, 13.0)}, "band_hz"),
        ({"band_hz": (0.0, 30.0)}, "band_hz"),
        ({"band_hz": (math.nan, 30.0)}, "band_hz"),
        ({"envelope": "hilbert"}, "envelope"),
        ({"noise_std": -0.1}, "noise_std"),
        ({"noise_std": math.nan}, "noise_std"),
        ({"rate_hz": 0.0}, "rate_hz"),
        ({"rate_hz": -1000.0}, "rate_hz"),
        ({"filter_order": 0}, "filter_order"),
        ({"smoothing_window_s": -0.4}, "smoothing_window_s"),
        ({"envelope_window_s": 0.0}, "envelope_window_s"),
        ({"envelope_tau_s": -1.0}, "envelope_tau_s"),
        ({"artifact_gain": math.inf}, "artifact_gain"),
    ],
)
def test_bad_config_rejected_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SensingChain(**kwargs)


def test_line_length_and_area_match_their_definitions_in_any_chunking():
    rate = 1000.0
    chain = SensingChain(
        rate_hz=rate, features=("line_length", "area", "signal", "filtered"), feature_window_s=0.05
    )
    x = np.random.default_rng(3).normal(size=(2, 700)) * 5
    w = chain.window_samples(0.05)
    whole = chain.process(new_state(chain, 2), x)
    steps = np.abs(np.diff(x, axis=1, prepend=x[:, :1]))
    for k in (0, 10, 49, 50, 300, 699):
        lo = max(0, k - w + 1)
        np.testing.assert_allclose(
            whole["line_length"][:, k], steps[:, lo : k + 1].sum(axis=1), rtol=1e-9, atol=1e-9
        )
        np.testing.assert_allclose(
            whole["area"][:, k], np.abs(x[:, lo : k + 1]).sum(axis=1) / rate, rtol=1e-9, atol=1e-12
        )
    np.testing.assert_array_equal(whole["signal"], x)
    state = new_state(chain, 2)
    edges = [0, 1, 2, *range(9, 700, 7), 700]  # chunks of one sample too
    parts = [chain.process(state, x[:, a:b]) for a, b in pairwise(edges)]
    for name in chain.features:
        np.testing.assert_array_equal(np.hstack([p[name] for p in parts]), whole[name])


def test_unknown_feature_is_refused():
    with pytest.raises(ValueError, match="sensing.features"):
        SensingChain(features=("spikiness",))


def test_filtered_feature_is_the_band_passed_signal():
    chain = SensingChain(features=("filtered",))
    x = np.random.default_rng(8).normal(size=(1, 500))
    out = chain.process(new_state(chain, 1), x)
    np.testing.assert_allclose(out["filtered"], signal.sosfilt(chain.sos, x), atol=1e-10)


# ---------------------------------------------------------------------------
# The feature registry and the kernel's dispatch


def _windowed_sum(terms: np.ndarray, width: int) -> np.ndarray:
    """Sum of the last ``width`` terms at every sample (fewer at the start)."""
    c = np.cumsum(terms, axis=1)
    out = c.copy()
    out[:, width:] -= c[:, :-width]
    return out


def _aperiodic_reference(v: np.ndarray) -> np.ndarray:
    """The 1/f exponent by scipy's sosfilt per band and a log-log fit per sample."""
    chain = SensingChain(rate_hz=FS)
    sos, centre, width = aperiodic_bank(
        FS, chain.aperiodic_band_hz, chain.aperiodic_bands, chain.aperiodic_filter_order
    )
    w = chain.window_samples(chain.aperiodic_window_s)
    count = np.minimum(np.arange(1, v.shape[1] + 1), w)
    log_psd = np.stack(
        [
            np.log10(_windowed_sum(signal.sosfilt(sos[b], v, axis=1) ** 2, w) / count / width[b])
            for b in range(len(centre))
        ]
    )
    x = np.log10(centre)
    slope = np.polyfit(x, log_psd.reshape(len(x), -1), 1)[0].reshape(v.shape)
    return -slope


# NumPy reference of every registered feature on the sensed signal ``v`` (n, m)
# and the band-passed signal ``y``, for a chain with window ``w`` samples, at
# rate FS; ``phase`` gives the true phase of the test cosine.
FEATURE_REFERENCES = {
    "line_length": lambda v, y, w, phase: _windowed_sum(
        np.abs(np.diff(v, axis=1, prepend=v[:, :1])), w
    ),
    "area": lambda v, y, w, phase: _windowed_sum(np.abs(v) / FS, w),
    "signal": lambda v, y, w, phase: v,
    "filtered": lambda v, y, w, phase: y,
    "phase": lambda v, y, w, phase: np.angle(np.exp(1j * phase)),
    "aperiodic_exponent": lambda v, y, w, phase: _aperiodic_reference(v),
    "phase_ar": lambda v, y, w, phase: np.angle(np.exp(1j * phase)),
    "phase_etp": lambda v, y, w, phase: np.angle(np.exp(1j * phase)),
}


def test_registry_codes_units_and_families_are_consistent():
    assert [CODES[f.name] for f in REGISTRY] == list(range(len(REGISTRY)))
    assert FEATURES == {f.name: f.units for f in REGISTRY}
    for feature in REGISTRY:
        # The family names the module that computes the feature.
        module = importlib.import_module(f"closedloop.sensing.{feature.family}")
        assert module.__doc__ and feature.name in module.__doc__, feature
        assert feature.units.startswith(("signal", "rad")) or feature.units == "1", feature


@pytest.mark.parametrize("order", ["registry", "reversed"])
def test_every_registered_feature_computes_its_own_values(order):
    # A registered feature without its branch in the kernel's dispatch, or a
    # branch computing another feature, fails here: every feature differs
    # from every other on this signal (a cosine in the band, an offset and
    # noise), and each is checked in every slot.
    assert set(FEATURE_REFERENCES) == set(FEATURES), "add a reference for each new feature"
    names = tuple(f.name for f in REGISTRY)
    if order == "reversed":
        names = names[::-1]
    chain = SensingChain(rate_hz=FS, features=names, feature_window_s=0.05, noise_std=0.05)
    m = 3000
    phase = 2 * np.pi * 20.0 * np.arange(m) / FS + np.array([[0.3], [2.0]])
    x = np.cos(phase) + 0.5
    out = chain.process(new_state(chain, 2), x)
    w = chain.window_samples(chain.feature_window_s)
    for name in names:
        expected = FEATURE_REFERENCES[name](out["sensed"], out["filtered"], w, phase)
        if name in ("phase", "phase_ar", "phase_etp"):
            # After the window fills and the frequency tracker settles.
            error = np.angle(np.exp(1j * (out[name] - expected)))[:, 1000:]
            # ETP times peaks to the sample: 7.2 degrees at 20 Hz and 1 kHz.
            assert np.max(np.abs(error)) < (0.2 if name == "phase_etp" else 0.15), name
        else:
            np.testing.assert_allclose(out[name], expected, rtol=1e-9, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("engine", ["compiled", "python"])
def test_features_are_the_same_through_the_parallel_and_the_serial_kernel(monkeypatch, engine):
    # Batches of PARALLEL_MIN_BATCH and more run the model's prange kernel,
    # which takes the states apart and puts them back together (Numba
    # unpacks tuple arguments of parallel loops, and loses writes through
    # NamedTuple attributes there, numba#5872): instances must not notice.
    from closedloop.controllers import PID
    from closedloop.core import loop as loop_module
    from closedloop.core.model import PARALLEL_MIN_BATCH
    from closedloop.device import Device
    from closedloop.models import STNGPe

    def run(parallel: bool) -> dict[str, np.ndarray]:
        loop = loop_module.ClosedLoop(
            STNGPe(dt_s=1e-4, n=PARALLEL_MIN_BATCH),
            SensingChain(features=tuple(f.name for f in REGISTRY), noise_std=0.1),
            Device(),
            PID(setpoint=10.0, kp=0.01, ki=0.1, max_amplitude_ma=2.0),
            control_period_s=0.01,
            seed=4,
            engine=engine,
        )
        # The loop picks its kernel by batch size and, for a Python controller,
        # by measured speed (KernelChoice): force one kernel for every call.
        kernels = loop.model.kernels
        forced = kernels.periods_parallel if parallel else kernels.periods_serial
        calls: list[int] = []

        def kernel(m: int, args: tuple) -> object:
            calls.append(m)
            return forced

        monkeypatch.setattr(loop, "_kernel", kernel)
        loop.reset()
        chunks: list[dict[str, np.ndarray]] = []
        loop.run(0.3, on_chunk=lambda t0, data: chunks.append(dict(data)))
        assert sum(calls) == 30  # every period of the 0.3 s went through the forced kernel
        return {k: np.concatenate([c[k] for c in chunks], axis=-1) for k in chunks[0]}

    parallel, serial = run(True), run(False)
    assert set(parallel) >= {f"feature_{f.name}" for f in REGISTRY}
    for key, values in serial.items():
        np.testing.assert_array_equal(parallel[key], values, err_msg=key)
    assert np.ptp(parallel["amplitude"]) > 0  # the controller acted on what was sensed


# ---------------------------------------------------------------------------
# Stimulation artefact in the closed loop


def _net_current(n_steps: int, dt: float, onsets_s, amplitude_ma: float, width_s: float):
    """Mean net current per step (mA) of biphasic pulses: cathodic, then anodic."""
    t0 = np.arange(n_steps)[:, None] * dt
    t1 = t0 + dt
    on = np.asarray(onsets_s)[None, :]

    def overlap(a, b):
        return np.clip(np.minimum(b, t1) - np.maximum(a, t0), 0.0, None).sum(axis=1)

    cathodic = overlap(on, on + width_s)
    anodic = overlap(on + width_s, on + 2 * width_s)
    return amplitude_ma * (cathodic - anodic) / dt


def test_loop_artifact_is_gain_times_mean_net_current_per_sample():
    # dt = 0.1 ms and 1 kHz sensing: 10 integration steps per sample. Wide
    # biphasic pulses (2 x 450 us) at 130 Hz often straddle a sample boundary, so
    # many samples see net current of one sign. The artefact is the MEAN net
    # current over the sample times the gain (a sum would be 10 times larger).
    dt, gain, amp, freq, pw_s = 1e-4, 3.0, 2.0, 130.0, 450e-6
    loop = ClosedLoop(
        STNGPe(n=1, dt_s=dt),
        SensingChain(rate_hz=FS, artifact_gain=gain),  # no sensor noise
        Device(ramp_rate_ma_per_s=math.inf),
        OpenLoop(amplitude_ma=amp, frequency_hz=freq, pulse_width_us=pw_s * 1e6),
        control_period_s=0.01,
        seed=5,
        engine="python",
    )
    seen = {"lfp": [], "lfp_sensed": []}

    def on_chunk(t0, data):
        for key in seen:
            seen[key].append(data[key].copy())

    loop.reset()
    duration_s = 0.31
    totals = loop.run(duration_s, chunk_s=0.1, on_chunk=on_chunk)
    lfp, sensed = (np.concatenate(seen[key], axis=1)[0] for key in ("lfp", "lfp_sensed"))
    # The pulse clock runs from t = 0 at 130 Hz; OpenLoop's command, at the end of
    # the first 10 ms period, sets the amplitude: pulses at k / 130 s from 10 ms on.
    n_steps = int(round(duration_s / dt))
    onsets = np.arange(2, 2 + int(totals["n_pulses"][0])) / freq
    assert onsets[0] > 0.01 > onsets[0] - 1 / freq
    assert onsets[-1] < duration_s - 2 * pw_s  # every pulse complete within the run
    net = _net_current(n_steps, dt, onsets, amp, pw_s)
    expected = gain * net.reshape(-1, 10).mean(axis=1)  # mA per sample, times the gain
    assert lfp.shape == expected.shape
    assert np.count_nonzero(np.abs(expected) > 0.1 * gain * amp) > 20
    np.testing.assert_allclose(sensed - lfp, expected, rtol=0, atol=1e-9 * gain * amp)


# ---------------------------------------------------------------------------
# One control period of step-level data (the loop's sensing kernel)


@pytest.mark.parametrize("envelope", ["arv", "power"])
def test_period_kernel_boxcar_samples_steps_and_senses_them_as_the_chain_defines(envelope):
    # The loop hands the chain integration steps: each sensing sample is the
    # mean of its steps (signal and net current alike), then artefact, filter,
    # envelope and features as defined for sampled data (reference_envelope,
    # scipy's sosfilt, line length as a plain sum). Called directly, one period
    # and one instance at a time as the compiled loop does.
    from closedloop.core.record import FIRST_FEATURE_ROW
    from closedloop.sensing.kernels import record_features, sense_period

    gain, n, sps, spk, periods = 0.5, 2, 10, 4, 40  # 10 steps per sample, 4 samples a period
    chain = SensingChain(
        rate_hz=FS,
        envelope=envelope,
        envelope_window_s=0.02,
        envelope_tau_s=0.01,
        smoothing_window_s=0.005,
        artifact_gain=gain,
        features=("signal", "line_length"),
        feature_window_s=0.01,
    )
    rng = np.random.default_rng(6)
    steps = spk * sps * periods
    t = np.arange(steps) / (FS * sps)
    sig = np.sin(2 * np.pi * 20.0 * t) + rng.normal(size=(n, steps))
    net = rng.uniform(-1.0, 1.0, (n, steps))
    state = new_state(chain, n)
    samples, art = np.zeros((n, spk)), np.zeros((n, spk))
    lfp_out, sensed_out = np.full((n, spk * periods), np.nan), np.full((n, spk * periods), np.nan)
    per_period = np.full((n, FIRST_FEATURE_ROW + 2, periods), np.nan)
    env = np.empty((n, periods))
    for k in range(periods):
        block = slice(k * spk * sps, (k + 1) * spk * sps)
        sig_k, net_k = np.ascontiguousarray(sig[:, block]), np.ascontiguousarray(net[:, block])
        for i in range(n):
            env[i, k] = sense_period(
                i, spk * sps, sps, sig_k, net_k, samples, art, state, lfp_out, sensed_out, k * spk
            )
            record_features(i, state, per_period, k)

    lfp = sig.reshape(n, -1, sps).mean(axis=2)
    sensed = lfp + gain * net.reshape(n, -1, sps).mean(axis=2)
    np.testing.assert_allclose(lfp_out, lfp, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sensed_out, sensed, rtol=1e-12, atol=1e-12)
    last = slice(spk - 1, None, spk)  # the last sample of each period
    expected = reference_envelope(chain, signal.sosfilt(chain.sos, sensed, axis=1))[:, last]
    np.testing.assert_allclose(env, expected, rtol=1e-9, atol=1e-12)
    w = chain.window_samples(chain.feature_window_s)
    steps_abs = np.abs(np.diff(sensed, axis=1, prepend=sensed[:, :1]))
    line_length = np.array(
        [[r[max(0, c - w + 1) : c + 1].sum() for c in range(r.size)] for r in steps_abs]
    )
    np.testing.assert_allclose(per_period[:, FIRST_FEATURE_ROW], sensed[:, last], rtol=1e-12)
    np.testing.assert_allclose(
        per_period[:, FIRST_FEATURE_ROW + 1], line_length[:, last], rtol=1e-9, atol=1e-9
    )


def test_sample_kernel_writes_sample_k_to_column_col0_plus_k_minus_start():
    # sense_samples' documented contract, for a caller that hands it pieces of
    # one buffer (start > 0) into outputs at an offset (col0): pieces written
    # where the docstring says give the chain's definitions on the whole.
    from closedloop.sensing.kernels import sense_samples

    chain = SensingChain(rate_hz=FS, artifact_gain=0.3, features=("signal", "filtered"))
    n, m, col0 = 2, 600, 5
    x = random_signal(n=n, m=m, seed=7)
    art = np.random.default_rng(7).uniform(-1.0, 1.0, (n, m))
    state = new_state(chain, n)
    cols = col0 + m
    sensed, filtered, env = (np.full((n, cols), np.nan) for _ in range(3))
    features = np.full((n, 2, cols), np.nan)
    for start, stop in ((0, 1), (1, 250), (250, m)):
        # Each piece's columns: col0 + (start .. stop - 1) of the whole.
        for i in range(n):
            sense_samples(
                i, x, art, start, stop, state, sensed[:, start:], filtered[:, start:],
                env[:, start:], features[:, :, start:], col0,
            )  # fmt: skip
    whole = x + 0.3 * art
    expected = signal.sosfilt(chain.sos, whole, axis=1)
    assert np.all(np.isnan(sensed[:, :col0]))
    np.testing.assert_allclose(sensed[:, col0:], whole, rtol=0, atol=1e-15)
    np.testing.assert_allclose(filtered[:, col0:], expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(
        env[:, col0:], reference_envelope(chain, expected), rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(features[:, 0, col0:], whole, rtol=0, atol=1e-15)
    np.testing.assert_allclose(features[:, 1, col0:], expected, rtol=0, atol=1e-10)
    # Outputs of zero columns are skipped (the docstring's "to skip it"): the
    # chain's state, its returned envelope and its last features are the same.
    state = new_state(chain, n)
    empty = x[:, :0]
    for i in range(n):
        last = sense_samples(i, x, art, 0, m, state, empty, empty, empty, features[:, :, :0], 0)
        assert last == env[i, -1]
    np.testing.assert_array_equal(state.feature_values, features[:, :, -1])
