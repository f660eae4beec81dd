"""Experiment files: the schema (pure data) and the one step that builds a run from it."""

from closedloop.config.schema import (
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    load_config,
    load_raw,
    validate_config,
)

__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "apply_overrides",
    "load_config",
    "load_raw",
    "validate_config",
]
