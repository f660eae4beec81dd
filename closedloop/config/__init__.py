"""Experiment files: the schema (pure data), and the one step that builds a run from it.

:mod:`~closedloop.config.schema` says what a file may contain;
:mod:`~closedloop.config.build` turns a validated file into model, sensing
chain, device, controller and loop; :mod:`~closedloop.config.files` reads
files and applies ``--set`` overrides.
"""

from closedloop.config.build import ResolvedExperiment, validate_config
from closedloop.config.files import apply_overrides, load_config, load_raw
from closedloop.config.schema import ConfigError, ExperimentConfig, parse_experiment

__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "ResolvedExperiment",
    "apply_overrides",
    "load_config",
    "load_raw",
    "parse_experiment",
    "validate_config",
]
