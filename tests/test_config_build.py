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

import pytest

from closedloop.config import ConfigError, validate_config
from closedloop.symptoms import SymptomState

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
