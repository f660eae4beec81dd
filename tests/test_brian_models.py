"""Brian2 spiking models: beta and gamma rhythms, stimulation suppresses them, chunking, seeds."""

import numpy as np
import pytest
from brian2 import nA
from scipy import signal

from closedloop.brian.network import ExternalNetwork
from closedloop.brian.open_loop import OpenLoopRunner
from closedloop.brian.registry import BRIAN_MODELS, resolve_brian_model
from closedloop.models.brian_ping import BrianPING
from closedloop.models.brian_stn_gpe import BrianSTNGPe

pytestmark = pytest.mark.brian

DT = 1e-4


def _spectrum(y_steps, band):
    """Welch spectrum at 1 kHz of per-step signals; peak frequency and band power."""
    y = y_steps.reshape(y_steps.shape[0], -1, 10).mean(axis=2)
    f, p = signal.welch(y, fs=1000.0, nperseg=500)
    sel = (f >= band[0]) & (f <= band[1])
    peak = f[1:][np.argmax(p[:, 1:], axis=1)]
    return peak, p[:, sel].sum(axis=1)


def _pulse_train(pulse_drive, n_steps, amplitude_ma, frequency_hz=130.0, width_s=60e-6):
    """Average cathodic current per step of a pulse train (what the device sends)."""
    onsets = np.arange(0, n_steps * DT, 1.0 / frequency_hz)
    return pulse_drive(n_steps, DT, onsets, amplitude_ma, width_s)


def test_registry_names_both_models():
    assert resolve_brian_model("brian_stn_gpe") is BrianSTNGPe
    assert resolve_brian_model("brian_ping") is BrianPING
    assert set(BRIAN_MODELS) == {"brian_stn_gpe", "brian_ping", "brian_mdd_cingulofrontal"}
    with pytest.raises(ValueError, match="unknown Brian2 model"):
        resolve_brian_model("stn_gpe")


@pytest.mark.slow
def test_stn_gpe_parkinsonian_beta_peak_healthy_little_beta_and_rates():
    # Instance 0 Parkinsonian, instance 1 healthy, in one network.
    healthy = BrianSTNGPe.regimes["healthy"]
    params = {k: [BrianSTNGPe.parameters[k].value, v] for k, v in healthy.items()}
    model = BrianSTNGPe(dt_s=DT, n=2, params=params)
    # What model.reset(3) builds, held here to read the network's state.
    runner = OpenLoopRunner(model, 3)
    gpe, stn, gpe_stn = (runner.net[name] for name in ("gpe", "stn", "gpe_stn"))
    lag = 60  # T_GS = 6 ms, in steps: a GPe spike reaches STN 60 steps later
    runner.advance(3000 - lag, None)
    spikes_before = np.asarray(gpe.nspk[:]).copy()
    runner.advance(lag, None)
    i_gs_start = np.asarray(stn.I_gs[:] / nA).reshape(2, -1).sum(axis=1)
    lfp = runner.advance(20000 - lag, None)
    spikes = np.asarray(gpe.nspk[:]) - spikes_before
    lfp = np.hstack([lfp, runner.advance(lag, None)])
    i_gs_end = np.asarray(stn.I_gs[:] / nA).reshape(2, -1).sum(axis=1)
    peak, beta = _spectrum(lfp, (13, 30))
    assert 13.0 <= peak[0] <= 30.0, f"Parkinsonian spectral peak at {peak[0]} Hz"
    assert beta[0] > 5 * beta[1]
    # The LFP proxy by its definition, the summed I_GS onto each instance's
    # STN neurons: with dI/dt = -I / tau_GABA plus a jump of w at each spike
    # arriving, its integral over the window is tau_GABA * (sum of the weights
    # of the GPe spikes arriving in it - the rise of I over it). Spikes arrive
    # T_GS after they are fired, hence the window of GPe spikes shifted by lag.
    pre, post = np.asarray(gpe_stn.i[:]), np.asarray(gpe_stn.j[:])
    n_stn = BrianSTNGPe.parameters["N_STN"].value  # STN neurons of instance k come k-th
    arrived_na = np.bincount(
        post // n_stn, weights=np.asarray(gpe_stn.w[:] / nA) * spikes[pre], minlength=2
    )
    tau_s = BrianSTNGPe.parameters["tau_GABA_s"].value
    expected = tau_s * (arrived_na - (i_gs_end - i_gs_start)) / (lfp.shape[1] * DT)
    # Within 1e-3: the order, within a step, of an arriving jump and the Euler
    # update of I and of its running integral (measured: 5e-5).
    np.testing.assert_allclose(lfp.mean(axis=1), expected, rtol=1e-3)


def test_stn_gpe_firing_rates_lie_in_recorded_ranges():
    from closedloop.brian.loop import BrianLoop
    from closedloop.controllers import OpenLoop
    from closedloop.device import Device
    from closedloop.sensing.chain import SensingChain

    loop = BrianLoop(
        BrianSTNGPe(dt_s=DT, n=1),
        SensingChain(),
        Device(),
        OpenLoop(amplitude_ma=0.0),
        control_period_s=0.02,
        seed=5,
        record_rates=True,
    )
    loop.reset()
    loop.warm_up(0.2)
    rates = {"rate_stn": [], "rate_gpe": []}
    loop.run(1.0, on_chunk=lambda t0, d: [rates[k].append(d[k]) for k in rates])
    stn = np.hstack(rates["rate_stn"]).mean()
    gpe = np.hstack(rates["rate_gpe"]).mean()
    # Parkinsonian primates: STN about 20-40 spikes/s (Bergman et al. 1994),
    # GPe 30-90 spikes/s, GPe faster than STN.
    assert 15 < stn < 45, stn
    assert 30 < gpe < 90, gpe
    assert gpe > stn


def test_continuous_130hz_dbs_suppresses_stn_beta(pulse_drive):
    n_steps = 15000
    drive = np.vstack([np.zeros(n_steps), _pulse_train(pulse_drive, n_steps, 2.5)])
    model = BrianSTNGPe(dt_s=DT, n=2)
    seq = np.random.SeedSequence(7)
    model.reset([seq, seq])  # the same network twice: only stimulation differs
    model.advance(2000)
    lfp = model.advance(n_steps, drive)[:, 3000:]
    _, beta = _spectrum(lfp, (13, 30))
    reduction = 1 - beta[1] / beta[0]
    assert reduction >= 0.5, f"beta reduced by only {reduction:.0%}"


@pytest.mark.slow
def test_ping_gamma_peak_asynchronous_regime_and_interneuron_stimulation(pulse_drive):
    asynchronous = BrianPING.regimes["asynchronous"]
    params = {k: [BrianPING.parameters[k].value] * 2 + [v] for k, v in asynchronous.items()}
    n_steps = 12000
    drive = np.vstack(
        [np.zeros(n_steps), _pulse_train(pulse_drive, n_steps, 2.5), np.zeros(n_steps)]
    )
    model = BrianPING(dt_s=DT, n=3, params=params)
    seq = np.random.SeedSequence(2)
    model.reset([seq, seq, seq])
    model.advance(2000)
    lfp = model.advance(n_steps, drive)[:, 2000:]
    peak, gamma = _spectrum(lfp, (30, 80))
    assert 30.0 <= peak[0] <= 50.0, f"gamma peak at {peak[0]} Hz"
    assert gamma[2] < 0.05 * gamma[0], "the asynchronous regime has little gamma"
    assert gamma[1] < 0.3 * gamma[0], "130 Hz pulses to interneurons suppress gamma"


@pytest.mark.parametrize("chunks", [[1000, 1000], [1, 999, 250, 750]])
def test_advance_in_chunks_equals_one_call(chunks):
    params = {"N_STN": 30, "N_GPe": 30}
    rng = np.random.default_rng(0)
    drive = rng.uniform(0, 2, size=(2, sum(chunks)))
    whole = BrianSTNGPe(dt_s=DT, n=2, params=params)
    whole.reset(11)
    y_whole = whole.advance(sum(chunks), drive)
    parts = BrianSTNGPe(dt_s=DT, n=2, params=params)
    parts.reset(11)
    pieces, start = [], 0
    for c in chunks:
        pieces.append(parts.advance(c, drive[:, start : start + c]))
        start += c
    np.testing.assert_array_equal(np.hstack(pieces), y_whole)


def test_same_seed_same_result_different_seed_different():
    params = {"N_STN": 30, "N_GPe": 30}
    runs = []
    for seed in (1, 1, 2):
        m = BrianSTNGPe(dt_s=DT, n=2, params=params)
        m.reset(seed)
        runs.append(m.advance(1500))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_instance_structure_does_not_depend_on_the_batch():
    from brian2 import BrianLogger

    from closedloop.brian.build import BuildContext, StimulationInput

    # The networks are built, not run: Brian2 would warn about unused objects.
    BrianLogger.suppress_name("unused_brian_object")
    seeds = np.random.SeedSequence(4).spawn(3)

    def synapses(n):
        model = BrianPING(dt_s=DT, n=n, params={"N_E": 40, "N_I": 10, "K_EE": 8, "K_IE": 4})
        ctx = BuildContext(
            n=n,
            rngs=[np.random.default_rng(s) for s in seeds[:n]],
            params=model.param_values,
            stimulation=StimulationInput("zero"),
            dt_s=DT,
        )
        net = model.build(ctx)
        ie = next(o for o in net.objects if o.name == "ping_ie")
        e = next(o for o in net.objects if o.name == "ping_e")
        return np.asarray(ie.i[:]), np.asarray(ie.j[:]), np.asarray(e.v[:])

    i3, j3, v3 = synapses(3)
    i1, j1, v1 = synapses(1)
    first = j3 < 40  # instance 0's targets
    np.testing.assert_array_equal(i3[first], i1)
    np.testing.assert_array_equal(j3[first], j1)
    np.testing.assert_array_equal(v3[:40], v1)
    assert np.all((i3 // 10) == (j3 // 40)), "synapses stay inside their instance"


@pytest.mark.parametrize(
    ("cls", "params", "message"),
    [
        (BrianSTNGPe, {"tau_STN_s": -0.01}, "tau_STN_s"),
        (BrianSTNGPe, {"T_GS_s": 6.05e-3}, "whole number"),
        (BrianSTNGPe, {"w_GS_nA": float("nan")}, "w_GS_nA"),
        (BrianSTNGPe, {"bogus": 1.0}, "bogus"),
        (BrianSTNGPe, {"I_ctx_nA": [0.1, 0.2, 0.3]}, "shape"),
        (BrianSTNGPe, {"N_STN": [100, 50]}, "N_STN"),
        (BrianSTNGPe, {"N_GPe": 10.5}, "N_GPe"),
        (BrianPING, {"dbs_fraction_I": 1.5}, "dbs_fraction_I"),
        (BrianPING, {"V_reset_mV": -40.0}, "V_reset_mV"),
    ],
)
def test_bad_parameters_are_refused_with_their_name(cls, params, message):
    with pytest.raises(ValueError, match=message):
        cls(dt_s=DT, n=2, params=params)


def test_external_network_spec_errors_are_plain():
    def build(n_instances=1):
        return []

    with pytest.raises(ValueError, match="stimulate.gain_unit"):
        ExternalNetwork(
            build,
            stimulate={"group": "E", "variable": "I", "gain": 1.0, "gain_unit": "furlong"},
            sense={"group": "E", "reduce": "rate"},
        )
    with pytest.raises(ValueError, match="sense.reduce"):
        ExternalNetwork(
            build,
            stimulate={"group": "E", "variable": "I", "gain": 1.0, "gain_unit": "pA"},
            sense={"group": "E", "reduce": "median"},
        )
    with pytest.raises(ValueError, match="cannot import"):
        ExternalNetwork(
            "no_such_module.build",
            stimulate={"group": "E", "variable": "I", "gain": 1.0, "gain_unit": "pA"},
            sense={"group": "E", "reduce": "rate"},
        )
