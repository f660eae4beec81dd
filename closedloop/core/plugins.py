"""Objects named by dotted path: users' controllers, models and network builders.

An experiment file may name a class or function of the user's own package
(``my_package.my_module.MyController`` or ``my_package.my_module:MyController``);
:func:`resolve_object` imports it, or says in one sentence why it cannot.

Importing a module runs its code: a dotted path in an experiment file is code
the file makes run, even under ``closedloop validate``. Experiment files and
plugins must come from trusted sources. Run files are data: nothing read from
one is ever imported (see :mod:`closedloop.analysis.replay`).

The working directory is searched for a user's module, as ``python -m`` would,
but only here and after the installed packages (it is appended to
``sys.path``, never put first), so a stray ``h5py.py`` or ``pydantic.py``
where a user runs ``closedloop`` cannot replace a library.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from collections.abc import Iterable, Mapping
from typing import TypeVar

__all__ = ["did_you_mean", "resolve_class", "resolve_object"]

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
    _search_working_directory()
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r} for {path!r}: {exc}") from None
    except SyntaxError as exc:
        where = f"{exc.filename}, line {exc.lineno}" if exc.filename else module_name
        raise ValueError(
            f"module {module_name!r} for {path!r} has a syntax error ({where}): {exc.msg}"
        ) from None
    except Exception as exc:  # a user's module that raises while it is imported
        raise ValueError(
            f"module {module_name!r} for {path!r} raised {type(exc).__name__} when imported: {exc}"
        ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from None


def _search_working_directory() -> None:
    """Let users' modules beside the experiment be found, after the installed packages."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)


def resolve_class(
    name: str,
    builtins: Mapping[str, type[_C] | None],
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
    builtin = builtins.get(name)
    if builtin is not None:  # a None entry: a name only listed (resolved elsewhere)
        return builtin
    if "." not in name and ":" not in name:
        raise ValueError(
            f"unknown {kind} {name!r}.{did_you_mean(name, builtins)} "
            f"Built-in {kind}s are {', '.join(sorted(builtins))}{hint}"
        )
    obj = resolve_object(name)
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise ValueError(f"{name!r} is not a subclass of {base_path}")
    return obj


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``" Did you mean 'x'?"`` for the known name closest to ``word``, or ``""``.

    Case is ignored when matching (``w_gs`` finds ``w_GS``, ``PID`` finds
    ``pid``) and a swap of letters still matches (``pdi`` finds ``pid``);
    the suggestion is spelled as the known name is.
    """
    by_lower: dict[str, str] = {}
    for k in known:
        by_lower.setdefault(k.lower(), k)
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1)
    return f" Did you mean {by_lower[close[0]]!r}?" if close else ""
