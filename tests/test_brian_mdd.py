"""Spiking cingulo-frontal model of depression: switching, MDD, SSRI and DBS rescue, the loop."""

from pathlib import Path

import numpy as np
import pytest

from closedloop.brian.open_loop import OpenLoopRunner
from closedloop.models.brian_mdd_cingulofrontal import BrianMDDCinguloFrontal

pytestmark = pytest.mark.brian

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"

DT = 1e-4
# A shortened version of the published schedule (emotional burst, then a
# cognitive burst 0.75 s after its end): emotional 0.75-1.25 s, cognitive 2.0-2.5 s.
SCHEDULE = {
    "emotional_onset_s": 0.75,
    "emotional_duration_s": 0.5,
    "cognitive_onset_s": 2.0,
    "cognitive_duration_s": 0.5,
}
WINDOWS = {  # s, network time
    "baseline": (0.25, 0.75),
    "emotional": (0.8, 1.25),
    "gap": (1.75, 2.0),
    "cognitive": (2.05, 2.5),
    "after": (2.5, 3.0),
}
CASES = ("healthy", "severe", "severe_ssri", "severe_dbs")


def _dbs_drive(start_step, n_steps, amplitude_ma=2.5, frequency_hz=130.0, width_s=60e-6):
    """Mean cathodic current per step (mA) of pulses from t = 0, steps start..start+n.

    What the device hands a model: a pulse straddling a step boundary puts
    the rest of its charge into the next step.
    """
    edges = (start_step + np.arange(n_steps + 1)) * DT
    onsets = np.arange(np.floor(edges[0] * frequency_hz), np.ceil(edges[-1] * frequency_hz) + 1)
    onsets = onsets / frequency_hz
    lo = np.maximum(edges[:-1, None], onsets[None, :])
    hi = np.minimum(edges[1:, None], onsets[None, :] + width_s)
    return amplitude_ma * np.clip(hi - lo, 0.0, None).sum(axis=1) / DT


@pytest.fixture(scope="module")
def rates():
    """Population rates (spikes/s) per case, area and window, from one batched network."""
    severe = BrianMDDCinguloFrontal.regimes["mdd_severe"]["tau_AMPA_vACC_s"]
    params = dict(
        SCHEDULE,
        tau_AMPA_vACC_s=[2e-3, severe, severe, severe],
        E_L_vACC_mV=[-70.0, -70.0, -72.0, -70.0],  # SSRI-like hyperpolarisation of vACC E
    )
    model = BrianMDDCinguloFrontal(dt_s=DT, n=4, params=params)
    runner = OpenLoopRunner(model, 3)
    groups = {area: runner.net[f"mdd_{area}_e"] for area in ("vacc", "dlpfc")}
    edges = sorted({t for w in WINDOWS.values() for t in w} | {0.0})
    counts = {}
    step = 0
    for t in edges[1:]:
        n_steps = int(round(t / DT)) - step
        drive = np.zeros((4, n_steps))
        drive[3] = _dbs_drive(step, n_steps)
        runner.advance(n_steps, drive)
        step += n_steps
        counts[t] = {a: np.asarray(g.nspk[:]).reshape(4, -1).mean(1) for a, g in groups.items()}
    counts[0.0] = {a: np.zeros(4) for a in groups}
    out = {}
    for name, (t0, t1) in WINDOWS.items():
        for area in groups:
            rate = (counts[t1][area] - counts[t0][area]) / (t1 - t0)
            for case, value in zip(CASES, rate, strict=True):
                out[case, area, name] = float(value)
    return out


@pytest.mark.slow
def test_healthy_emotional_input_activates_vacc_and_cognitive_input_switches_to_dlpfc(rates):
    r = {(a, w): rates["healthy", a, w] for a in ("vacc", "dlpfc") for w in WINDOWS}
    # Low spontaneous activity in both areas (the paper's low state, a few spikes/s).
    assert r["vacc", "baseline"] < 3.0 and r["dlpfc", "baseline"] < 3.0, r
    # The emotional burst activates the vACC only (measured about 95 vs 0.5 spikes/s).
    assert r["vacc", "emotional"] > 40.0 and r["dlpfc", "emotional"] < 3.0, r
    # After it, and while the cognitive burst drives the dlPFC, the vACC is
    # back at its low state: activity has switched to the dlPFC.
    assert r["vacc", "gap"] < 5.0, r
    assert r["dlpfc", "cognitive"] > 40.0 and r["vacc", "cognitive"] < 5.0, r


@pytest.mark.slow
def test_severe_mdd_vacc_activity_is_sustained_and_not_suppressed_by_dlpfc(rates):
    r = {(a, w): rates["severe", a, w] for a in ("vacc", "dlpfc") for w in WINDOWS}
    # tau_AMPA,vACC = 2.15 ms: the vACC stays active after the emotional burst
    # (measured about 25-30 spikes/s) ...
    assert r["vacc", "gap"] > 12.0, r
    # ... and a concurrent, equally strong dlPFC activation does not suppress it.
    assert r["dlpfc", "cognitive"] > 40.0, r
    assert r["vacc", "cognitive"] > 12.0 and r["vacc", "after"] > 12.0, r
    assert r["vacc", "cognitive"] > 0.5 * r["vacc", "gap"], r
    assert r["vacc", "cognitive"] > 4 * rates["healthy", "vacc", "cognitive"], r


@pytest.mark.slow
@pytest.mark.parametrize("treated", ["severe_ssri", "severe_dbs"])
def test_ssri_or_vacc_interneuron_dbs_restores_the_switch(rates, treated):
    r = {(a, w): rates[treated, a, w] for a in ("vacc", "dlpfc") for w in WINDOWS}
    # The emotional burst still activates the vACC (treatment does not silence it) ...
    assert r["vacc", "emotional"] > 40.0, r
    # ... and activity switches to the dlPFC with the cognitive burst, as in health.
    assert r["dlpfc", "cognitive"] > 40.0, r
    assert r["vacc", "cognitive"] < 5.0, r
    assert r["vacc", "cognitive"] < 0.3 * rates["severe", "vacc", "cognitive"], r


def test_regimes_are_the_published_vacc_ampa_decays():
    taus = {k: BrianMDDCinguloFrontal(n=1, regime=k).param_values["tau_AMPA_vACC_s"][0]
            for k in BrianMDDCinguloFrontal.regimes}  # fmt: skip
    assert taus == pytest.approx(
        {"healthy": 2.0e-3, "mdd_mild": 2.05e-3, "mdd_moderate": 2.10e-3, "mdd_severe": 2.15e-3}
    )
    # The dlPFC keeps 2 ms in every regime.
    for k in taus:
        assert BrianMDDCinguloFrontal(n=1, regime=k).param_values["tau_AMPA_dlPFC_s"][0] == 2e-3


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sensed_area": 2}, "sensed_area"),
        ({"sensed_area": 0.5}, "sensed_area"),
        ({"sensed_area": [0, 1]}, "sensed_area"),
        ({"N_E": 10.5}, "N_E"),
        ({"tau_AMPA_vACC_s": 0.0}, "tau_AMPA_vACC_s"),
        ({"E_L_vACC_mV": -45.0}, "E_L_vACC_mV"),
        ({"dbs_fraction": 1.5}, "dbs_fraction"),
    ],
)
def test_bad_parameters_are_refused_with_their_name(params, message):
    with pytest.raises(ValueError, match=message):
        BrianMDDCinguloFrontal(dt_s=DT, n=2, params=params)


def test_sensed_area_chooses_the_proxy_and_dbs_always_reaches_vacc_interneurons():
    from brian2 import BrianLogger

    from closedloop.brian.build import BuildContext, StimulationInput
    from closedloop.brian.runtime import select_target

    BrianLogger.suppress_name("unused_brian_object")  # built, not run
    select_target("auto")  # the project's Cython cache for the connect/set code
    for area, group in ((0, "mdd_vacc_e"), (1, "mdd_dlpfc_e")):
        model = BrianMDDCinguloFrontal(dt_s=DT, n=2, params={"sensed_area": area})
        ctx = BuildContext(
            n=2,
            rngs=[np.random.default_rng(k) for k in range(2)],
            params=model.param_values,
            stimulation=StimulationInput("zero"),
            dt_s=DT,
        )
        net = model.build(ctx)
        assert net.signal.group.name == group
        stimulated_group, idx = net.stimulated
        assert stimulated_group.name == "mdd_vacc_i"
        np.testing.assert_array_equal(idx, np.arange(40))  # all 20 + 20 vACC interneurons


def test_closed_loop_theta_triggered_dbs_switches_the_severe_vacc_state_off(tmp_path):
    from closedloop.config import load_config
    from closedloop.experiment import run_experiment
    from closedloop.io import load_run

    exp = load_config(
        EXPERIMENTS / "brian_mdd_vacc_dbs.yaml", ["duration_s=2.0", "output.figure=false"]
    )
    run = load_run(run_experiment(exp, tmp_path).path)
    assert run.status == "complete"
    amplitude = run.timeseries["amplitude"][0]
    # Stimulation came on after the emotional burst and went off again.
    assert amplitude.max() == pytest.approx(2.5)
    assert 0.0 < run.metrics["time_on_fraction"][0] < 1.0
    # The unstimulated copy stays in the sustained vACC state; the stimulated
    # one was switched to the low state (lower summed synaptic current:
    # measured about 38 against 45 nA).
    last = slice(-500, None)  # the last 0.5 s at 1 kHz
    assert (
        run.timeseries["lfp"][0][last].mean() < run.timeseries["lfp_baseline"][0][last].mean() - 3.0
    )
    assert run.timeseries["rate_vacc_e"][0][last].mean() < 8.0


@pytest.mark.parametrize("chunks", [[1500], [1, 499, 250, 750]])
def test_advance_in_chunks_equals_one_call_and_seeds_repeat(chunks):
    # A task burst and DBS pulses inside the window, small areas to stay cheap.
    params = {"N_E": 20, "N_I": 5, "emotional_onset_s": 0.05, "emotional_duration_s": 0.05,
              "cognitive_onset_s": 0.1, "cognitive_duration_s": 0.02}  # fmt: skip
    drive = np.vstack([_dbs_drive(0, 1500), np.zeros(1500)])
    whole = BrianMDDCinguloFrontal(dt_s=DT, n=2, params=params)
    whole.reset(5)
    y_whole = whole.advance(1500, drive)
    parts = BrianMDDCinguloFrontal(dt_s=DT, n=2, params=params)
    parts.reset(5)
    pieces, start = [], 0
    for c in chunks:
        pieces.append(parts.advance(c, drive[:, start : start + c]))
        start += c
    np.testing.assert_array_equal(np.hstack(pieces), y_whole)
    other = BrianMDDCinguloFrontal(dt_s=DT, n=2, params=params)
    other.reset(6)
    assert not np.array_equal(other.advance(1500, drive), y_whole)
