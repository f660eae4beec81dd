"""The drug layer in the loop: config, dose limits, recording, controllers, time scales."""

import copy
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop.config import ConfigError, validate_config
from closedloop.core.epochs import separation_error
from closedloop.core.loop import ClosedLoop
from closedloop.core.slow import EpochSchedule
from closedloop.drugs.pk import PKParameters
from closedloop.drugs.process import DoseLimits, DrugLayer, DrugSpec

H = 3600.0

# A drug acting over seconds (rates in 1/h), so that a few seconds of neural
# time show a whole dose.
FAST = {
    "pk": {"ka_per_h": 7200.0, "cl_l_per_h": 3600.0, "v1_l": 1.0, "bioavailability": 1.0,
           "ke0_per_h": 7200.0},
    "pd": {"emax": 1.0, "ec50_ng_ml": 200.0, "hill": 2.0},
    "modulates": {"w_GS": {"mode": "linear", "to": 5.0}, "w_SG": {"mode": "linear", "to": 5.0}},
}  # fmt: skip

BASE = {
    "name": "drug_test",
    "seed": 3,
    "n_instances": 2,
    "duration_s": 5.0,
    "warmup_s": 0.0,
    "model": {"name": "stn_gpe", "dt_s": 1e-4, "regime": "parkinsonian"},
    "sensing": {"rate_hz": 1000.0, "band_hz": [13.0, 30.0], "envelope": "arv",
                "envelope_window_s": 0.1},
    "control": {"period_s": 0.02},
    "controller": {"name": "open_loop", "params": {"amplitude_ma": 0.0}},
    "drugs": {"period_s": 0.1, "agents": {"fast": {**FAST, "schedule": {"doses": [
        {"time_h": 1.0 / H, "amount_mg": 1.0}]}}}},
    "output": {"figure": False},
}  # fmt: skip


def _config(**changes):
    raw = copy.deepcopy(BASE)
    raw.update(changes)
    return raw


def _problems(raw):
    with pytest.raises(ConfigError) as info:
        validate_config(raw)
    return dict(info.value.problems)


def test_config_errors_name_their_key_path():
    bad = _config()
    agent = bad["drugs"]["agents"]["fast"]
    agent["preset"] = "aspirin"
    assert "drugs.agents.fast.preset" in _problems(bad)
    bad = _config()
    bad["drugs"]["agents"]["fast"]["pk"]["v1_l"] = [1.0, 2.0, 3.0]  # 2 instances
    assert "one per instance" in _problems(bad)["drugs.agents.fast.pk.v1_l"]
    bad = _config()
    bad["drugs"]["agents"]["fast"]["modulates"] = {"tau_S": {"mode": "linear", "to": 0.01}}
    assert "modulatable" in _problems(bad)["drugs.agents.fast.modulates.tau_S"]
    bad = _config()
    bad["drugs"]["agents"]["fast"]["pd"]["ec50_ng_mL"] = 3.0
    assert "ec50_ng_ml" in _problems(bad)["drugs.agents.fast.pd.ec50_ng_mL"]  # did you mean
    bad = _config()
    bad["drugs"]["agents"]["fast"]["limits"] = {"max_single": 3.0}
    assert "max_single_mg" in _problems(bad)["drugs.agents.fast.limits.max_single"]
    bad = _config()
    bad["drugs"]["period_s"] = 0.03  # not a whole number of 20 ms periods
    assert "drugs.period_s" in _problems(bad)
    bad = _config()
    bad["drugs"]["agents"]["fast"]["pd"]["hill"] = -1.0
    assert "drugs.agents.fast.pd.hill" in _problems(bad)
    bad = _config(model={"name": "jansen_rit", "dt_s": 1e-4})
    bad["drugs"]["agents"]["fast"]["preset"] = "levodopa"
    del bad["drugs"]["agents"]["fast"]["modulates"]
    assert "drugs.agents.fast.modulates" in _problems(bad)


def _record(loop, duration_s, chunk_s):
    out = {}

    def keep(t0, series):
        for k, v in series.items():
            out.setdefault(k, []).append(np.array(v))

    loop.run(duration_s, on_chunk=keep, chunk_s=chunk_s)
    return {k: np.concatenate(v, axis=-1) for k, v in out.items()}


def test_a_dose_weakens_beta_while_it_acts_and_chunking_changes_nothing():
    exp = validate_config(_config())
    loop = exp.loop
    loop.reset()
    whole = _record(loop, 5.0, 5.0)
    loop.reset()
    parts = _record(loop, 1.3, 0.26)
    parts2 = _record(loop, 3.7, 1.0)
    for key in ("lfp", "drugs_fast_plasma_ng_ml", "drugs_fast_effect"):
        assert np.array_equal(whole[key], np.concatenate([parts[key], parts2[key]], axis=-1))
    effect = whole["drugs_fast_effect"]
    assert effect.shape == (2, 51)  # t = 0, 0.1, ..., 5 s
    assert effect[:, :11].max() == 0.0 and effect.max() > 0.75 and effect[:, -1].max() < 0.1
    # The biomarker (beta envelope) falls while the drug acts, and recovers.
    b = whole["biomarker"].mean(axis=0)  # 50 periods per s
    before, peak, late = b[25:50].mean(), b[75:115].mean(), b[225:250].mean()
    assert peak < 0.65 * before
    assert late > 0.8 * before


def test_run_file_holds_concentrations_with_units_and_dose_events(tmp_path):
    from closedloop.experiment import run_experiment
    from closedloop.io import load_run

    raw = _config(duration_s=2.0, output={"figure": True})
    raw["controller"] = {
        "name": "dose_and_stimulate",
        "params": {"drug": "fast", "dose_mg": 0.5, "trough_ng_ml": 50.0, "amplitude_ma": 2.0},
    }
    raw["drugs"]["agents"]["fast"]["limits"] = {"max_single_mg": 1.0, "min_interval_h": 0.5 / H}
    outcome = run_experiment(validate_config(raw), tmp_path)
    run = load_run(outcome.path)
    assert run.timeseries_attrs["drugs_fast_plasma_ng_ml"]["units"] == "ng/mL"
    assert run.timeseries_attrs["drugs_fast_effect_site_ng_ml"]["units"] == "ng/mL"
    prefix = "events/drugs_fast_doses/"
    ev = {k[len(prefix) :]: v for k, v in run.arrays.items() if k.startswith(prefix)}
    assert run.array_attrs[prefix + "amount_mg"]["units"] == "mg"
    scheduled = ev["commanded"] == 0
    assert np.array_equal(ev["time_s"][scheduled], [1.0, 1.0])
    # The controller dosed at once (plasma 0 < trough), then again only after the
    # scheduled dose had worn off, never sooner than min_interval_h.
    asked = (ev["commanded"] == 1) & (ev["given"] == 1)
    for i in range(2):
        times = np.sort(ev["time_s"][(ev["instance"] == i) & asked])
        assert times[0] == pytest.approx(0.02)
        assert np.all(np.diff(times) >= 0.5)
    assert (tmp_path / "drug_test.png").exists()


LIMITS = DoseLimits(max_single_mg=200.0, min_interval_h=3.0, max_daily_mg=500.0)
_AMOUNTS = st.one_of(
    st.sampled_from([0.0, math.nan, math.inf, -math.inf, -5.0, 1e300, 200.0, 200.0000001]),
    st.floats(min_value=-1e6, max_value=1e6),
)


def _limited_layer(n):
    values = {"ka_per_h": 2.0, "cl_l_per_h": 30.0, "v1_l": 11.0, "q_l_per_h": 0.0, "v2_l": 1.0,
              "bioavailability": 0.9, "ke0_per_h": 1.0}  # fmt: skip
    p = {k: np.full(n, v) for k, v in values.items()}
    spec = DrugSpec(
        name="ldopa",
        pk=PKParameters(**p),
        emax=np.ones(n),
        ec50_ng_ml=np.full(n, 700.0),
        hill=np.full(n, 4.0),
        adaptation_tau_s=None,
        drive="effect",
        doses=[(2 * H, 150.0, True)],  # the prescription counts towards the limits too
        limits=LIMITS,
    )
    layer = DrugLayer([spec], 600.0)
    layer.reset(n, [])
    return layer


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=8 * H),  # time to the next command, s
            st.lists(_AMOUNTS, min_size=2, max_size=2),  # per instance
            st.sampled_from([0.0, 1.0, math.nan, 2.0, -1.0]),  # route
        ),
        max_size=25,
    )
)
def test_dose_limits_hold_for_any_command_sequence(commands):
    layer = _limited_layer(2)
    t = 0.0
    asked = np.zeros(2)
    for gap, amounts, route in commands:
        t += gap
        while layer.t_s_ + layer.period_s <= t:  # the slow steps before the command
            layer.advance(layer.t_s_ + layer.period_s, layer.period_s, {})
        layer.command(t, {"dose_ldopa_mg": np.array(amounts), "dose_ldopa_route": np.array(route)})
        asked += np.array(amounts) != 0.0
    layer.advance(layer.t_s_ + 48 * H, 48 * H, {})
    v = layer.values()
    assert np.all(np.isfinite(v["ldopa_plasma_ng_ml"])) and np.all(v["ldopa_plasma_ng_ml"] >= 0)
    ev = layer.drain_events()["ldopa_doses"]
    commanded = ev["commanded"] == 1
    # Every commanded dose is logged once, given or refused; refusals are counted.
    for i in range(2):
        mine = ev["instance"] == i
        assert np.sum(mine & commanded) == asked[i]
        assert np.sum(mine & commanded & (ev["given"] == 0)) == v["ldopa_refused"][i]
        given = mine & (ev["given"] == 1)
        times, amounts = ev["time_s"][given], ev["amount_mg"][given]
        assert np.all(np.isfinite(amounts)) and np.all(amounts > 0)
        assert np.all(amounts[ev["commanded"][given] == 1] <= LIMITS.max_single_mg)
        order = np.argsort(times, kind="stable")
        times, amounts, by = times[order], amounts[order], ev["commanded"][given][order]
        # A commanded dose comes at least min_interval_h after any earlier dose.
        gaps = np.diff(times)
        assert np.all(gaps[by[1:] == 1] >= LIMITS.min_interval_h * H)
        # Doses in any 24 h window ending at a commanded dose stay within the daily limit.
        for j in np.flatnonzero(by == 1):
            window = (times > times[j] - 86400.0) & (times <= times[j])
            assert amounts[window].sum() <= LIMITS.max_daily_mg + 1e-9
        assert np.all(ev["reason"][mine & (ev["given"] == 1)] == 0)
        assert np.all(ev["reason"][mine & (ev["given"] == 0)] > 0)


def test_controllers_see_the_drug_state_and_back_off_while_it_acts():
    raw = _config()
    raw["controller"] = {"name": "medication_aware", "params": {
        "drug": "fast", "threshold": -1.0, "amplitude_ma": 2.0, "full_effect": 0.5}}  # fmt: skip
    loop = validate_config(raw).loop
    loop.reset()
    out = _record(loop, 5.0, 1.0)
    effect = out["drugs_fast_effect"]
    # The controller read the effect the layer held at its last slow step (4.9 s).
    assert loop.controller.amplitude_ma_ == pytest.approx(2.0 * (1.0 - effect[:, -2] / 0.5))
    amp = out["amplitude"]  # delivered, after the device's ramp
    assert amp[:, 10:50] == pytest.approx(2.0)  # no drug yet: full amplitude
    assert effect[:, 16:37].min() > 0.5 and amp[:, 85:185].max() == 0.0  # the drug acts: off
    assert amp[:, -1].min() > 1.2  # wearing off: back


def test_separation_error_is_measured_and_small_for_a_slow_drug():
    # A drug over minutes; the neural loop 0.5 s of every 30 s.
    raw = _config(n_instances=1)
    agent = raw["drugs"]["agents"]["fast"]
    agent["pk"] = {"ka_per_h": 60.0, "cl_l_per_h": 30.0, "v1_l": 1.0, "bioavailability": 1.0,
                   "ke0_per_h": 60.0}  # fmt: skip
    agent["schedule"] = {"doses": [{"time_h": 0.0, "amount_mg": 1.0}]}
    raw["drugs"]["period_s"] = 0.5
    exp = validate_config(raw)
    loop0 = exp.loop

    def make(epochs):
        return ClosedLoop(
            loop0.model.like(),
            loop0.sensing,
            loop0.device,
            loop0.controller,
            control_period_s=loop0.control_period_s,
            seed=exp.config.seed,
            slow=[validate_config(raw).loop.slow[0]],
            epochs=epochs,
        )

    err = separation_error(make, EpochSchedule(0.5, 30.0), 120.0)
    # The PK does not depend on the neural state: exact whatever the schedule.
    assert err["drugs_fast_plasma_ng_ml"] == 0.0
    assert err["drugs_fast_effect"] == 0.0
    assert set(err) >= {"drugs_fast_refused", "drugs_fast_effect_relative"}
    # The neural side: beta per epoch against the full run's over the same
    # 0.5 s; the drug's effect changes beta by far more than this error.
    assert 0.0 < err["epoch_mean_biomarker_relative"] < 0.5
