"""Names that experiment files use, resolved to classes; plugins by dotted path."""

from __future__ import annotations

from closedloop.controllers import BUILTIN_CONTROLLERS, Controller
from closedloop.core.model import NumbaModel
from closedloop.core.plugins import resolve_class, resolve_object
from closedloop.models import BUILTIN_MODELS

__all__ = ["TOOLKIT_CONTROLLERS", "resolve_controller", "resolve_model", "resolve_object"]

#: Controllers of the control toolkit, by registry name: the dotted path of
#: each, resolved on use (they need the ``control`` extra, and
#: :mod:`closedloop.control` builds on the loop, which imports the built-in
#: controllers: a path, not an import, keeps the import graph acyclic).
TOOLKIT_CONTROLLERS: dict[str, str] = {
    "policy": "closedloop.controllers.policy.Policy",
    "lqr": "closedloop.control.lqr.LQR",
    "mpc": "closedloop.control.mpc.MPC",
}


def resolve_controller(name: str) -> type[Controller]:
    """Return the controller class registered as ``name`` or found at a dotted path."""
    if name in TOOLKIT_CONTROLLERS:
        try:
            return resolve_class(
                TOOLKIT_CONTROLLERS[name],
                {},
                Controller,
                "closedloop.controllers.Controller",
                kind="controller",
            )
        except ValueError as exc:
            raise ValueError(
                f"controller {name!r} needs the control extra "
                f"(pip install 'closedloop[control]'): {exc}"
            ) from None
    return resolve_class(
        name,
        {**BUILTIN_CONTROLLERS, **dict.fromkeys(TOOLKIT_CONTROLLERS)},
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
