"""Names that experiment files use, resolved to classes; plugins by dotted path."""

from __future__ import annotations

import importlib

from closedloop.controllers import BUILTIN_CONTROLLERS, Controller
from closedloop.core.model import NumbaModel
from closedloop.models import BUILTIN_MODELS

__all__ = ["resolve_controller", "resolve_model", "resolve_object"]


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
    if name in BUILTIN_CONTROLLERS:
        return BUILTIN_CONTROLLERS[name]
    if "." not in name and ":" not in name:
        raise ValueError(
            f"unknown controller {name!r}; built-in controllers are "
            f"{', '.join(sorted(BUILTIN_CONTROLLERS))}, or give a dotted path "
            "such as mypackage.mymodule.MyController"
        )
    obj = resolve_object(name)
    if not (isinstance(obj, type) and issubclass(obj, Controller)):
        raise ValueError(f"{name!r} is not a subclass of closedloop.controllers.Controller")
    return obj


def resolve_model(name: str) -> type[NumbaModel]:
    """Return the model class registered as ``name`` or found at a dotted path."""
    if name in BUILTIN_MODELS:
        return BUILTIN_MODELS[name]
    if "." not in name and ":" not in name:
        raise ValueError(
            f"unknown model {name!r}; built-in models are {', '.join(sorted(BUILTIN_MODELS))}"
        )
    obj = resolve_object(name)
    if not (isinstance(obj, type) and issubclass(obj, NumbaModel)):
        raise ValueError(f"{name!r} is not a subclass of closedloop.core.model.NumbaModel")
    return obj
