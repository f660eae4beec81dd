"""Names that experiment files use, resolved to classes; plugins by dotted path."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TypeVar

from closedloop.controllers import BUILTIN_CONTROLLERS, Controller
from closedloop.core.model import NumbaModel
from closedloop.models import BUILTIN_MODELS

__all__ = ["resolve_controller", "resolve_model", "resolve_object"]

_C = TypeVar("_C")


def resolve_object(path: str) -> object:
    """Import ``package.module:Name`` or ``package.module.Name``.

    Raises
    ------
    ValueError
        With a plain sentence when the module or the name cannot be found.
    """
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"{path!r} is not a dotted path of the form package.module.Name")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r} for {path!r}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from None


def resolve_controller(name: str) -> type[Controller]:
    """Return the controller class registered as ``name`` or found at a dotted path."""
    return _resolve_class(
        name,
        BUILTIN_CONTROLLERS,
        Controller,
        "closedloop.controllers.Controller",
        kind="controller",
        hint=", or give a dotted path such as mypackage.mymodule.MyController",
    )


def resolve_model(name: str) -> type[NumbaModel]:
    """Return the model class registered as ``name`` or found at a dotted path."""
    return _resolve_class(
        name, BUILTIN_MODELS, NumbaModel, "closedloop.core.model.NumbaModel", kind="model"
    )


def _resolve_class(
    name: str,
    builtins: Mapping[str, type[_C]],
    base: type[_C],
    base_path: str,
    *,
    kind: str,
    hint: str = "",
) -> type[_C]:
    """The class registered as ``name`` in ``builtins``, or a subclass of ``base`` at a dotted path.

    ``kind`` names what is resolved in messages ("unknown {kind} ..."); ``hint``
    ends the message for an unknown bare name.
    """
    if name in builtins:
        return builtins[name]
    if "." not in name and ":" not in name:
        raise ValueError(
            f"unknown {kind} {name!r}; built-in {kind}s are {', '.join(sorted(builtins))}{hint}"
        )
    obj = resolve_object(name)
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise ValueError(f"{name!r} is not a subclass of {base_path}")
    return obj
