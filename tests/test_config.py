"""Experiment files at the edges of what is valid: refused by key path, exit code 2.

Each case sets one key of the shipped ``pd_beta_adbs`` experiment (sensing at
1 kHz, integration step 0.1 ms) to a value just past its limit and checks the
problem is reported under that key, whatever the sentence says; its partner
just inside the limit must validate.
"""

from __future__ import annotations

import copy

import pydantic
import pytest

from closedloop.cli.main import main
from closedloop.config import ConfigError, load_config

BASE = "pd_beta_adbs"

# (key path, refused value, accepted value just inside the limit)
EDGES = [
    ("duration_s", 0.0, 0.51),  # positive, with samples for the spectrum after discard_s
    ("duration_s", -1.0, 6.0),
    ("metrics.band_hz", [13.0, 500.0], [13.0, 499.0]),  # exactly Nyquist is out
    ("metrics.band_hz", [13.0, 800.0], [13.0, 499.0]),
    ("control.latency_s", -1e-4, 0.0),  # zero latency is allowed, negative is not
    ("control.latency_s", 2.5e-4, 3e-4),  # a whole number of integration steps
    ("sensing.band_hz", [13.0, 600.0], [13.0, 499.0]),  # above Nyquist
    ("sensing.band_hz", [13.0, 500.0], [13.0, 499.0]),  # on Nyquist
    ("control.period_s", 0.0205, 0.021),  # a whole number of sensing samples
    ("control.period_s", 0.0, 0.001),
    ("sensing.rate_hz", 999.0, 1250.0),  # the sensing interval: whole integration steps
    ("seed", -1, 0),
    ("n_instances", 0, 2),
    # Every bound the schema declares, at the bound: gt refuses it, ge takes it.
    ("model.dt_s", 0.0, 5e-5),
    ("warmup_s", -0.01, 0.0),
    ("metrics.discard_s", -0.01, 0.0),
    ("metrics.segment_s", 0.0, 0.25),
    ("metrics.reference.amplitude_ma", -0.1, 0.0),
    ("metrics.reference.frequency_hz", 0.0, 1.0),
    ("metrics.reference.pulse_width_us", 0.0, 1.0),
    ("metrics.bursts.percentile", 0.0, 1.0),
    ("metrics.bursts.percentile", 100.0, 99.0),
    ("metrics.bursts.min_duration_s", -0.01, 0.0),
    ("metrics.bursts.long_burst_s", 0.0, 0.1),  # equal to min_duration_s (0.1 s) is allowed
    ("output.chunk_s", 0.0, 0.5),
]


def _with(config: dict, path: str, value: object) -> dict:
    out = copy.deepcopy(config)
    *parents, key = path.split(".")
    section = out
    for part in parents:
        section = section.setdefault(part, {})
    section[key] = value
    return out


@pytest.mark.parametrize(("path", "bad", "good"), EDGES, ids=[f"{p}={b}" for p, b, _ in EDGES])
def test_value_past_the_limit_is_refused_under_its_key_path(
    path, bad, good, experiment_config, write_experiment, capsys
):
    config = experiment_config(BASE)
    refused = write_experiment(_with(config, path, bad), name="refused")
    with pytest.raises(ConfigError) as info:
        load_config(refused)
    assert [p for p, _ in info.value.problems] == [path], info.value.problems
    assert main(["validate", str(refused)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:" in err and "Traceback" not in err

    accepted = write_experiment(_with(config, path, good), name="accepted")
    load_config(accepted)
    assert main(["validate", str(accepted)]) == 0
    assert "valid" in capsys.readouterr().out


def test_every_problem_of_a_file_is_reported_by_its_own_key_path(experiment_path, capsys):
    overrides = ["duration_s=0", "control.latency_s=-0.01", "metrics.discard_s=-1"]
    with pytest.raises(ConfigError) as info:
        load_config(experiment_path(BASE), overrides)
    assert sorted(p for p, _ in info.value.problems) == [
        "control.latency_s",
        "duration_s",
        "metrics.discard_s",
    ]
    args = ["validate", str(experiment_path(BASE))]
    for override in overrides:
        args += ["--set", override]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert all(f"{path}:" in err for path in ("duration_s", "control.latency_s"))


def test_every_problem_names_its_key_with_the_right_kind_of_sentence(
    experiment_config, write_experiment
):
    config = experiment_config(BASE)
    # The schema's problems come first: a typo three levels down and a value past a limit.
    schema_bad = _with(config, "metrics.reference.amplitud_ma", 2.0)
    schema_bad = _with(schema_bad, "control.period_s", -1.0)
    with pytest.raises(ConfigError) as info:
        load_config(write_experiment(schema_bad, name="schema_bad"))
    problems = dict(info.value.problems)
    assert set(problems) == {"metrics.reference.amplitud_ma", "control.period_s"}, problems
    assert "Did you mean 'amplitude_ma'?" in problems["metrics.reference.amplitud_ma"]
    # A value past a limit is not an unknown key: pydantic's sentence names the bound.
    assert "greater than 0" in problems["control.period_s"]
    # Then the built objects' values: a controller parameter and a sensing field of a wrong type.
    build_bad = _with(config, "controller.params.threshold", "high")
    build_bad = _with(build_bad, "sensing.rate_hz", "fast")
    build_bad = _with(build_bad, "controller.params.treshold", 40.0)  # a typo
    with pytest.raises(ConfigError) as info:
        load_config(write_experiment(build_bad, name="build_bad"))
    problems = dict(info.value.problems)
    typo = problems.pop("controller.params.treshold", "")
    assert "Did you mean 'threshold'?" in typo, info.value.problems
    assert set(problems) == {"controller.params.threshold", "sensing.rate_hz"}, problems
    assert all("valid number" in message for message in problems.values()), problems
    # A required key left out, and a controller that needs a feature the chain does not compute.
    missing = {k: v for k, v in config.items() if k != "duration_s"}
    with pytest.raises(ConfigError) as info:
        load_config(write_experiment(missing, name="missing"))
    assert info.value.problems == [("duration_s", "this key is required")]
    phase_locked = experiment_config("kuramoto_phase_locked")
    phase_locked["sensing"]["features"] = []
    with pytest.raises(ConfigError) as info:
        load_config(write_experiment(phase_locked, name="no_phase"))
    [(path, message)] = info.value.problems
    assert path == "sensing.features" and "'phase'" in message


def test_defaults_are_the_ones_the_schema_documents(experiment_config, write_experiment):
    # Defaults in brackets in closedloop/config/schema.py's docstring.
    minimal = {
        "name": "minimal",
        "duration_s": 1.0,
        "model": {"name": "stn_gpe"},
        "controller": {"name": "open_loop"},
    }
    resolved = load_config(write_experiment(minimal, name="minimal")).resolved_dict()
    assert "sweep" not in resolved  # no sweep block: none written to the run file
    assert (resolved["description"], resolved["seed"], resolved["n_instances"]) == ("", 0, 1)
    assert resolved["warmup_s"] == 0.5
    assert resolved["control"] == {"period_s": 0.02, "latency_s": 0.0, "engine": "auto"}
    assert resolved["metrics"] == {
        "band_hz": [13.0, 30.0],
        "discard_s": 0.5,
        "segment_s": 1.0,
        "reference": {"amplitude_ma": 2.0, "frequency_hz": 130.0, "pulse_width_us": 60.0},
        "bursts": {"percentile": 75.0, "min_duration_s": 0.1, "long_burst_s": 0.4},
    }
    assert resolved["output"] == {
        "chunk_s": 1.0,
        "record_baseline": True,
        "figure": True,
        "format": "hdf5",
        "dtype": "float64",
        "compression": "auto",
        "series": None,
        "decimate": {},
        "hostname": False,
    }
    assert resolved["brian"] is None


def test_a_loaded_config_cannot_be_changed_behind_the_run_files_back(experiment_path):
    # The run file records the config the run used: sections are frozen.
    config = load_config(experiment_path(BASE)).config
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        config.control.period_s = 0.001
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        config.seed = 7
