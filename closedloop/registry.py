"""Names that experiment files use, resolved to classes; plugins by dotted path."""

from __future__ import annotations

from closedloop.controllers import BUILTIN_CONTROLLERS, Controller
from closedloop.core.model import NumbaModel
from closedloop.core.plugins import resolve_class, resolve_object
from closedloop.models import BUILTIN_MODELS

__all__ = ["resolve_controller", "resolve_model", "resolve_object"]


def resolve_controller(name: str) -> type[Controller]:
    """Return the controller class registered as ``name`` or found at a dotted path."""
    return resolve_class(
        name,
        BUILTIN_CONTROLLERS,
        Controller,
        "closedloop.controllers.Controller",
        kind="controller",
        hint=", or give a dotted path such as mypackage.mymodule.MyController",
    )


def resolve_model(name: str) -> type[NumbaModel]:
    """Return the model class registered as ``name`` or found at a dotted path."""
    return resolve_class(
        name, BUILTIN_MODELS, NumbaModel, "closedloop.core.model.NumbaModel", kind="model"
    )
