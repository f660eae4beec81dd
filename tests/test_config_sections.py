"""The optional sections of an experiment file: their bounds and their defaults.

``tests/test_config.py`` tries every bound of the sections the default
experiment uses, through a whole load. The optional blocks (``slow:``,
``symptoms:``, ``plasticity:``, ``fear_expression:``, ``drift:``) and the
file's name are checked here by the schema alone (:func:`parse_experiment`,
nothing built): a value just past a bound is refused under its own key path,
the value at or just inside it is taken, and a block that names only its
required keys gets the defaults its documentation states.
"""

from __future__ import annotations

import copy
import math

import pytest

from closedloop.config import ConfigError
from closedloop.config.schema import parse_experiment

MINIMAL = {"name": "sections", "duration_s": 1.0}
# Each optional block with its required keys only.
BLOCKS = {
    "slow": {"epoch_s": 1.0, "every_s": 60.0},
    "symptoms": [{}],
    "plasticity": {},
    "fear_expression": {},
    "drift": {"terms": [{"kind": "progression", "params": ["w_GS"]}]},
}

# (key path, refused value, accepted value at or just inside the bound)
EDGES = [
    ("slow.epoch_s", 0.0, 1e-3),  # neural time per slow step: positive
    ("slow.every_s", 0.0, 1e-3),
    ("symptoms.0.report_every_s", 0.0, 1.0),
    ("symptoms.0.report_sd", -0.1, 0.0),  # noise-free reports are allowed
    ("symptoms.0.period_s", 0.0, 1.0),
    ("symptoms.0.name", "1mood", "mood_1"),  # an identifier: it names series
    ("symptoms.0.scale", "madrs", "fear_index"),
    ("plasticity.kappa", -0.1, 0.0),  # von Mises concentration in [0, 50]
    ("plasticity.kappa", 50.1, 50.0),
    ("plasticity.tau_s", 0.0, 1.0),
    ("plasticity.tau_s", math.inf, 1e9),
    ("plasticity.gain_pct", math.nan, -1.0),  # depression is a negative gain
    ("plasticity.frequency_hz", 0.0, 0.5),
    ("plasticity.max_gap_s", 0.0, 1e-3),
    ("fear_expression.period_s", 0.0, 0.01),
    ("drift.period_s", 0.0, 60.0),
    ("drift.terms", [], [{"kind": "progression", "params": ["w_GS"]}]),
    ("output.decimate", {"lfp": 0}, {"lfp": 1}),  # keep every k-th sample, k >= 1
    ("name", "..", "run.v2"),  # dots alone would name a directory
    ("name", "a/b", "a-b_c"),  # a file name: no path separator
]


def _with(path: str, value: object) -> dict:
    """The minimal experiment with the block ``path`` starts in and ``path`` set."""
    config = copy.deepcopy(MINIMAL)
    head = path.split(".")[0]
    if head in BLOCKS:
        config[head] = copy.deepcopy(BLOCKS[head])
    *parents, key = path.split(".")
    section = config
    for part in parents:
        section = section[int(part)] if isinstance(section, list) else section.setdefault(part, {})
    section[key] = value
    return config


@pytest.mark.parametrize(("path", "bad", "good"), EDGES, ids=[f"{p}={b}" for p, b, _ in EDGES])
def test_optional_section_value_past_its_bound_is_refused_under_its_key_path(path, bad, good):
    with pytest.raises(ConfigError) as info:
        parse_experiment(_with(path, bad))
    assert [p for p, _ in info.value.problems] == [path], info.value.problems
    parse_experiment(_with(path, good))


def test_optional_blocks_left_to_defaults_get_the_documented_values():
    config = copy.deepcopy(MINIMAL)
    config.update(copy.deepcopy({k: BLOCKS[k] for k in ("symptoms", "plasticity")}))
    config["fear_expression"] = {}
    config["drift"] = copy.deepcopy(BLOCKS["drift"])
    cfg = parse_experiment(config)
    # closedloop.symptoms.SymptomState: 3 days, reports every 8 h with 2 points of noise.
    [symptom] = cfg.symptoms
    assert (symptom.name, symptom.readout, symptom.scale) == ("mood", "biomarker", "hamd17")
    assert (symptom.healthy_level, symptom.symptomatic_level) == (0.0, 1.0)
    assert (symptom.tau_s, symptom.initial_severity) == (3 * 86400.0, 1.0)
    assert (symptom.report_every_s, symptom.report_sd, symptom.period_s) == (28800.0, 2.0, 60.0)
    # closedloop.analysis.plasticity: phase pi, kappa 2, 0.5 % per burst, 1800 s.
    p = cfg.plasticity
    assert (p.preferred_phase_rad, p.kappa, p.gain_pct, p.tau_s) == (math.pi, 2.0, 0.5, 1800.0)
    assert p.frequency_hz is None  # the metrics band's centre
    # closedloop.symptoms.FearExpression reads the CS counter every 50 ms; drift steps hourly.
    assert cfg.fear_expression.period_s == 0.05
    assert cfg.drift.period_s == 3600.0
    # The model block's documented step: 0.1 ms.
    assert cfg.model.dt_s == 1e-4 and cfg.model.name == "stn_gpe"


def test_a_block_missing_its_required_keys_names_each_of_them():
    with pytest.raises(ConfigError) as info:
        parse_experiment({**MINIMAL, "slow": {}, "kalman": {}, "drift": {}})
    problems = dict(info.value.problems)
    assert set(problems) == {"slow.epoch_s", "slow.every_s", "kalman.model", "drift.terms"}
    assert all(m == "this key is required" for m in problems.values()), problems


def test_a_value_of_a_union_type_is_reported_at_its_key_not_its_branch():
    # symptoms.0.tau_s takes a number or a list of numbers: one problem, at the key.
    with pytest.raises(ConfigError) as info:
        parse_experiment(_with("symptoms.0.tau_s", "long"))
    assert [p for p, _ in info.value.problems] == ["symptoms.0.tau_s"]


@pytest.mark.parametrize(
    ("extra", "path", "known"),
    [
        # A key spelled like a type name is still a key (not a union branch).
        ({"control": {"int": 1}}, "control.int", "engine, latency_s, period_s"),
        # Inside a mapping of sections: the keys of the section under the name.
        (
            {"drugs": {"agents": {"levodopa": {"bogus": 1}}}},
            "drugs.agents.levodopa.bogus",
            "limits, modulates, pd, pk, preset, route, schedule",
        ),
    ],
)
def test_an_unknown_key_is_reported_at_its_path_with_the_keys_known_there(extra, path, known):
    with pytest.raises(ConfigError) as info:
        parse_experiment({**MINIMAL, **extra})
    problems = dict(info.value.problems)
    assert path in problems, problems
    assert problems[path].endswith(f"Known keys here: {known}.")


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [("output.record_baseline", "maybe", "boolean"), ("output.decimate", 5, "dictionary")],
)
def test_a_value_of_the_wrong_type_is_not_called_an_unknown_key(path, value, words):
    with pytest.raises(ConfigError) as info:
        parse_experiment(_with(path, value))
    [(where, message)] = info.value.problems
    assert where == path and words in message and "unknown key" not in message


def test_a_validators_sentence_is_reported_as_written():
    # The section's own check, not pydantic's "Value error, ..." wrapping of it.
    with pytest.raises(ConfigError) as info:
        parse_experiment(_with("name", "..."))
    [(path, message)] = info.value.problems
    assert path == "name"
    assert message == "a name made only of dots would name a directory, not a file"


def test_a_file_that_is_not_a_mapping_is_refused_at_the_top_level():
    with pytest.raises(ConfigError) as info:
        parse_experiment(["name", "duration_s"], source="list.yaml")
    assert info.value.problems == [("(top level)", "an experiment file must be a mapping of keys")]
    assert str(info.value).startswith("list.yaml: (top level): ")
