"""Objects named by dotted path: users' controllers, models and network builders.

An experiment file may name a class or function of the user's own package
(``my_package.my_module.MyController`` or ``my_package.my_module:MyController``);
:func:`resolve_object` imports it, or says in one sentence why it cannot.
"""

from __future__ import annotations

import importlib

__all__ = ["resolve_object"]


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
