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

__all__ = ["MAX_CONFIG_BYTES", "apply_overrides", "load_config", "load_raw", "read_yaml"]

#: Largest experiment file read, bytes. The biggest shipped experiment is a few
#: KiB; a sweep over thousands of explicit points stays well under 1 MiB. A
#: larger file is almost certainly not an experiment (a run file, a data set)
#: and takes PyYAML tens of seconds to refuse.
MAX_CONFIG_BYTES = 4 * 1024 * 1024


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
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            # safe_load refuses !!python tags with a YAMLError too: nothing is constructed.
            reason = str(exc).splitlines()[0]
            if "!!python" in text:
                reason = "tags that build Python objects, such as !!python, are refused"
            raise ConfigError(
                [(key, f"the value {text!r} is not valid YAML ({reason})")], "--set"
            ) from None
        set_key_path(out, key, value)
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

    def refuse(message: str) -> ConfigError:
        return ConfigError([("(file)", message)], str(path))

    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise refuse(f"no such {what}") from None
    except IsADirectoryError:
        raise refuse(f"is a directory; give the {what} itself") from None
    except OSError as exc:
        raise refuse(f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise refuse(
            f"larger than {MAX_CONFIG_BYTES // (1024 * 1024)} MiB: not an experiment file "
            "(a run file or data set?)"
        )
    if b"\0" in data:
        raise refuse("is a binary file, not a YAML text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse(f"is not UTF-8 text (byte {exc.start}): not a YAML file") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise refuse(f"not valid YAML: {' '.join(str(exc).split())}") from None


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
