"""Experiment files at the edges of what is valid: refused by key path, exit code 2.

Each case sets one key of the shipped ``pd_beta_adbs`` experiment (sensing at
1 kHz, integration step 0.1 ms) to a value just past its limit and checks the
problem is reported under that key, whatever the sentence says; its partner
just inside the limit must validate.
"""

from __future__ import annotations

import copy

import pytest

from closedloop.cli.main import main
from closedloop.config import ConfigError, load_config

BASE = "pd_beta_adbs"

# (key path, refused value, accepted value just inside the limit)
EDGES = [
    ("duration_s", 0.0, 1e-3),  # the recorded time must be positive
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
