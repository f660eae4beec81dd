"""What the factory builds from a valid file, and where it files what it refuses.

``closedloop.config.build.validate_config`` builds the sensing chain, device,
model, controller, slow processes and loop of an experiment (nothing is
run). Each case here starts from the shipped ``pd_beta_adbs`` experiment
(STN-GPe, on-off aDBS) and changes one thing: what was built must be what the
file asks for (the documented defaults filled in), and a refusal must be
reported under the key path a user would edit.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING

import numpy as np
import pytest

from closedloop.config import ConfigError, load_config, validate_config
from closedloop.controllers import Controller
from closedloop.symptoms import SymptomState

if TYPE_CHECKING:  # a user's annotation that does not resolve at run time
    from decimal import Decimal

BASE = "pd_beta_adbs"


def _problems(raw: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        validate_config(raw)
    return dict(info.value.problems)


def test_the_controllers_documented_defaults_reach_the_resolved_config(experiment_config):
    raw = experiment_config(BASE)
    raw["controller"] = {"name": "open_loop"}
    resolved = validate_config(raw).resolved_dict()
    # OpenLoop's docstring: 2 mA, 130 Hz, 60 us.
    assert resolved["controller"] == {
        "name": "open_loop",
        "params": {"amplitude_ma": 2.0, "frequency_hz": 130.0, "pulse_width_us": 60.0},
    }
    # The file's own values, not the class defaults, when it gives them.
    raw["controller"] = {"name": "open_loop", "params": {"amplitude_ma": 1.25}}
    params = validate_config(raw).resolved_dict()["controller"]["params"]
    assert params["amplitude_ma"] == 1.25


def test_a_symptom_block_becomes_a_slow_process_of_the_loop(experiment_config):
    raw = experiment_config(BASE)
    raw["symptoms"] = [{"name": "mood", "readout": "biomarker", "tau_s": 86400.0}]
    loop = validate_config(raw).loop
    [state] = [p for p in loop.slow if isinstance(p, SymptomState)]
    assert state.name == "mood" and state.readout == "biomarker" and state.tau_s == 86400.0


def test_a_symptom_reading_something_the_loop_does_not_offer_is_refused(experiment_config):
    raw = experiment_config(BASE)
    raw["symptoms"] = [{"readout": "serotonin"}]
    problems = _problems(raw)
    assert set(problems) == {"symptoms.0.readout"}
    assert "'serotonin'" in problems["symptoms.0.readout"]
    assert "biomarker" in problems["symptoms.0.readout"]  # the known readouts are listed


def test_fear_expression_on_a_model_without_cs_trials_is_refused(experiment_config):
    raw = experiment_config(BASE)
    raw["fear_expression"] = {"period_s": 0.05}
    problems = _problems(raw)
    assert set(problems) == {"fear_expression"}
    assert "fear_extinction" in problems["fear_expression"]


def test_drift_of_a_parameter_the_model_cannot_change_is_refused_at_its_term(
    experiment_config,
):
    raw = experiment_config(BASE)
    raw["drift"] = {"terms": [{"kind": "progression", "params": ["no_such_param"]}]}
    problems = _problems(raw)
    assert "drift.terms.0.params" in problems, problems
    assert "'no_such_param'" in problems["drift.terms.0.params"]


def test_an_epoch_schedule_needs_whole_slow_steps_and_a_slow_process(experiment_config):
    raw = experiment_config(BASE)
    raw["slow"] = {"epoch_s": 1.0, "every_s": 60.0}
    raw["duration_s"] = 90.0  # 1.5 slow steps
    raw["symptoms"] = [{"readout": "biomarker"}]
    problems = _problems(raw)
    assert set(problems) == {"duration_s"}
    assert "60 s" in problems["duration_s"]
    raw["duration_s"] = 1e-9  # not even one slow step
    assert "slow.every_s" in _problems(raw).get("duration_s", "")
    raw["duration_s"] = 120.0
    validate_config(raw)
    del raw["symptoms"]  # nothing slow to run between the epochs
    assert set(_problems(raw)) == {"slow"}


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (("model", "name"), "no_such_model", "model.name"),
        (("controller", "name"), "no_such_controller", "controller.name"),
        (("output", "format"), "csv", "output.format"),
        (("brian",), {"target": "numpy"}, "brian"),  # a Brian2 section for a Numba model
        (("device", "modality"), "tms", "controller.params.amplitude_ma"),  # mA under TMS
    ],
)
def test_a_name_the_factory_cannot_resolve_is_reported_at_its_key(
    experiment_config, path, value, where
):
    raw = experiment_config(BASE)
    section = raw
    for part in path[:-1]:
        section = section.setdefault(part, {})
    section[path[-1]] = value
    assert where in _problems(raw)


@pytest.mark.parametrize(
    ("key", "value", "accepted"),
    [
        ("amplitude_max_ma", math.nan, False),
        ("amplitude_max_ma", math.inf, False),
        ("ramp_rate_ma_per_s", math.inf, True),  # documented: inf means no ramp limit
        ("max_charge_uc_per_day", math.inf, True),  # no daily cap
        ("max_charge_uc_per_day", math.nan, False),
    ],
)
def test_a_device_value_that_is_not_finite_is_refused_unless_inf_means_no_limit(
    experiment_config, key, value, accepted
):
    raw = copy.deepcopy(experiment_config(BASE))
    raw["device"][key] = value
    if accepted:
        assert getattr(validate_config(raw).loop.device, key) == value
        return
    problems = _problems(raw)
    assert set(problems) == {f"device.{key}"}
    assert ("nan" if math.isnan(value) else "finite") in problems[f"device.{key}"].lower()


def test_a_kalman_block_becomes_a_feature_process_and_its_problems_have_keys(
    experiment_config, experiment_path
):
    # experiments/models/mdd_mpc_vacc.npz: an identified 4-state model (tests/test_config_paths.py).
    model = experiment_path("mdd_mpc").parent / "models" / "mdd_mpc_vacc.npz"
    raw = experiment_config(BASE)
    raw["kalman"] = {"model": str(model), "feature": "biomarker"}
    [kalman] = validate_config(raw).loop.slow
    assert kalman.name == "kalman" and "y_pred" in kalman.series()
    raw["kalman"] = {"model": str(model), "feature": "serotonin"}
    assert set(_problems(raw)) == {"kalman.feature"}
    raw["kalman"] = {"model": str(model.with_name("no_such_model.npz")), "feature": "biomarker"}
    problems = _problems(raw)
    assert set(problems) == {"kalman.model"} and "no such file" in problems["kalman.model"]


def test_a_drugs_block_becomes_the_drug_layer_of_the_loop(experiment_path):
    # experiments/pd_beta_medication.yaml: levodopa under an epoch schedule.
    [layer] = load_config(experiment_path("pd_beta_medication")).loop.slow
    assert layer.name == "drugs"


def test_more_instances_than_memory_holds_are_refused_before_anything_is_built(
    experiment_config,
):
    raw = experiment_config(BASE)
    raw["n_instances"] = 10**12  # terabytes of state: must not be allocated
    problems = _problems(raw)
    assert set(problems) == {"n_instances"} and "memory" in problems["n_instances"]


def test_a_typo_in_a_sensing_key_is_the_only_problem_reported(experiment_config):
    # sensing.rate_hz misspelt: the chain is not checked against the default
    # 1 kHz rate, under which the 700 Hz band edge would be past Nyquist.
    raw = experiment_config(BASE)
    del raw["sensing"]["rate_hz"]
    raw["sensing"]["rate_hx"] = 2000.0
    raw["sensing"]["band_hz"] = [13.0, 700.0]
    problems = _problems(raw)
    assert set(problems) == {"sensing.rate_hx"}
    assert "Did you mean 'rate_hz'?" in problems["sensing.rate_hx"]


def test_a_modality_block_that_is_not_a_mapping_is_its_only_problem(experiment_config):
    # The block's sentence names what it got; nothing else about the device is reported.
    raw = experiment_config(BASE)
    raw["device"].update(modality="tms", tms=5)
    raw["controller"] = {"name": "open_loop"}
    assert _problems(raw) == {"device.tms": "must be a mapping of settings, got 5"}


def test_a_physiology_block_becomes_the_physiological_clock(experiment_path):
    # experiments/avns_respiratory_gated.yaml: breathing-gated aVNS on a Numba model.
    loop = load_config(experiment_path("avns_respiratory_gated")).loop
    assert "physio" in [p.name for p in loop.slow]


def test_a_brian_experiment_gets_a_brian_loop(experiment_path):
    loop = load_config(experiment_path("brian_stn_beta")).loop
    assert type(loop).__name__ == "BrianLoop"


class Unhinted(Controller):
    """A user's controller whose annotations cannot be resolved: built untyped."""

    def __init__(self, gain: Decimal | float = 1.0) -> None:
        self.gain = gain

    def reset(self, n, rng):
        self.n_ = n

    def update(self, t, features):
        return {"amplitude_ma": np.full(self.n_, float(self.gain))}


def test_a_user_controller_with_unresolvable_annotations_is_built_untyped(experiment_config):
    raw = experiment_config(BASE)
    raw["controller"] = {"name": f"{__name__}.Unhinted", "params": {"gain": 0.5}}
    assert validate_config(raw).loop.controller.gain == 0.5


def test_every_modality_block_is_checked_even_after_a_broken_one(experiment_config):
    raw = experiment_config(BASE)
    raw["device"].update(tms=5, tes={"bogus": 1})  # tms is checked before tes
    problems = _problems(raw)
    assert set(problems) == {"device.tms", "device.tes.bogus"}, problems


@pytest.mark.parametrize(
    ("params", "name"),
    [({"no_such": 1.0}, "no_such"), ({"w_GS": [1.0, 2.0, 3.0]}, "w_GS")],  # one instance
)
def test_a_model_parameter_the_model_refuses_is_reported_under_its_name(
    experiment_config, params, name
):
    raw = experiment_config(BASE)
    raw["model"]["params"] = params
    problems = _problems(raw)
    assert set(problems) == {f"model.params.{name}"}, problems
