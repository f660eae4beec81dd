"""Experiment files on disk: read them, apply ``--set`` overrides, validate."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from closedloop.config.build import ResolvedExperiment, validate_config
from closedloop.config.schema import ConfigError
from closedloop.sweep.spec import set_key_path

__all__ = ["apply_overrides", "load_config", "load_raw", "read_yaml"]


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (values parsed as YAML) to a parsed config.

    Raises
    ------
    ConfigError
        For an override without ``=``.
    """
    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError([(item, "an override must look like key.path=value")], "--set")
        set_key_path(out, key, yaml.safe_load(text))
    return out


def read_yaml(path: str | Path, what: str = "file") -> Any:
    """Parse a YAML file.

    Parameters
    ----------
    path : str or pathlib.Path
        The file.
    what : str, default "file"
        What the file is, for the message when it is missing (``"no such <what>"``).

    Returns
    -------
    object
        The parsed document (None for an empty file).

    Raises
    ------
    ConfigError
        When the file is missing or is not YAML, with the path as its source.
    """
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError([("(file)", f"no such {what}")], str(path)) from None
    except yaml.YAMLError as exc:
        raise ConfigError([("(file)", f"not valid YAML: {exc}")], str(path)) from None


def load_raw(path: str | Path, overrides: Iterable[str] = ()) -> Any:
    """Read an experiment file and apply overrides, validating nothing else.

    Raises
    ------
    ConfigError
        When the file is missing or is not YAML.
    """
    raw = read_yaml(path)
    if raw is None:
        raw = {}
    if isinstance(raw, dict):
        raw = apply_overrides(raw, overrides)
    return raw


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> ResolvedExperiment:
    """Read, override, validate and resolve an experiment file.

    Raises
    ------
    ConfigError
        When the file is missing, is not YAML, or does not validate.
    """
    return validate_config(load_raw(path, overrides), str(path))
