"""Objects named by dotted path: users' controllers, models and network builders.

An experiment file may name a class or function of the user's own package
(``my_package.my_module.MyController`` or ``my_package.my_module:MyController``);
:func:`resolve_object` imports it, or says in one sentence why it cannot.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TypeVar

__all__ = ["resolve_class", "resolve_object"]

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


def resolve_class(
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
