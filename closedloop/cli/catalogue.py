"""``closedloop list``: what an experiment file can name, with parameters and sources.

Each entry lists its parameters with units, defaults and description, and the
references it follows, read from the classes themselves (a model's
:class:`~closedloop.core.model.Parameter` table, a controller's ``__init__``
defaults and numpydoc ``Parameters`` section, the sensing feature table, the
benchmark scenario files), so the list cannot drift from the code.
"""

from __future__ import annotations

import argparse
import inspect
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["KINDS", "add_list_parser", "catalogue", "cmd_list", "controller_parameters"]

#: What ``closedloop list`` can list.
KINDS = ("models", "controllers", "features", "scenarios")

_SCENARIOS = Path(__file__).resolve().parents[2] / "benchmarks" / "scenarios"
_PARAM_LINE = re.compile(r"^(\w+)\s*:\s*(.*)$")


def add_list_parser(sub: Any) -> None:
    """Add the ``list`` subcommand to the command line's subparsers."""
    p = sub.add_parser(
        "list",
        help="list the models, controllers, features and scenarios an experiment can name",
        description="List what an experiment file can name, with each entry's parameters "
        "(units, defaults) and references.",
        epilog="example: closedloop list controllers",
    )
    p.add_argument("kind", nargs="?", choices=KINDS, default=None, help="what to list [all]")
    p.add_argument("--brief", action="store_true", help="names and one line each, no parameters")


def _doc_parameters(cls: type) -> dict[str, str]:
    """Descriptions of the numpydoc ``Parameters`` section of ``cls``, by name."""
    doc = inspect.getdoc(cls) or ""
    out: dict[str, str] = {}
    lines = doc.split("Parameters\n----------\n", 1)[-1].splitlines() if "Parameters" in doc else []
    name = None
    for line in lines:
        if line and not line.startswith(" "):
            if re.match(r"^-{3,}$", line) or line in ("Attributes", "Notes", "References"):
                break
            m = _PARAM_LINE.match(line)
            name = m.group(1) if m else None
            if name:
                out[name] = ""
        elif name and line.strip():
            out[name] = (out[name] + " " + line.strip()).strip()
    return out


def controller_parameters(cls: type[Any]) -> dict[str, tuple[Any, str]]:
    """A controller's parameters: ``name -> (default or None, description)``.

    Defaults come from ``__init__``'s signature (``None`` when there is none:
    the user must give it), descriptions from the class docstring.
    """
    docs = _doc_parameters(cls)
    out: dict[str, tuple[Any, str]] = {}
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        default = None if p.default is inspect.Parameter.empty else p.default
        out[name] = (default, docs.get(name, ""))
    return out


def _first_line(obj: Any) -> str:
    return (inspect.getdoc(obj) or "").split("\n", 1)[0]


def _models() -> Iterator[tuple[str, str, list[str], tuple[str, ...]]]:
    from closedloop.brian.registry import BRIAN_MODELS
    from closedloop.models import BUILTIN_MODELS

    for kind, table in (("", BUILTIN_MODELS), (" [Brian2: closedloop[brian]]", BRIAN_MODELS)):
        for name, cls in table.items():
            rows = [
                f"{k} = {p.value:g} {p.units}: {p.description}"
                + (f" ({p.reference})" if p.reference else "")
                for k, p in cls.parameters.items()
            ]
            yield name, _first_line(cls) + kind, rows, tuple(getattr(cls, "references", ()))


def _controllers() -> Iterator[tuple[str, str, list[str], tuple[str, ...]]]:
    from closedloop.controllers import BUILTIN_CONTROLLERS
    from closedloop.registry import TOOLKIT_CONTROLLERS

    for name, cls in BUILTIN_CONTROLLERS.items():
        rows = [
            f"{k} = {'(required)' if d is None else repr(d)}: {text}"
            for k, (d, text) in controller_parameters(cls).items()
        ]
        yield name, _first_line(cls), rows, tuple(cls.references)
    for name, path in TOOLKIT_CONTROLLERS.items():
        yield name, f"{path} (needs the control extra: closedloop[control])", [], ()


def _features() -> Iterator[tuple[str, str, list[str], tuple[str, ...]]]:
    from closedloop.sensing.registry import REGISTRY

    for f in REGISTRY:
        units = "the model signal's units" if f.units == "signal" else f.units
        yield f.name, f"{f.description} ({units})", [], ()


def _scenarios() -> Iterator[tuple[str, str, list[str], tuple[str, ...]]]:
    import yaml

    for path in sorted(_SCENARIOS.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text()) or {}
        sc = raw.get("scenario", {})
        model = raw.get("experiment", {}).get("model", {}).get("name", "?")
        rows = [f"model: {model}", f"controllers: {', '.join(raw.get('controllers', {}))}"]
        text = " ".join(str(sc.get("description", "")).split())
        yield sc.get("name", path.stem), textwrap.shorten(text, 120, placeholder=" ..."), rows, ()


def catalogue(kind: str) -> list[tuple[str, str, list[str], tuple[str, ...]]]:
    """Entries of one :data:`KINDS`: ``(name, summary, parameter lines, references)``."""
    return list({"models": _models, "controllers": _controllers, "features": _features,
                 "scenarios": _scenarios}[kind]())  # fmt: skip


def cmd_list(args: argparse.Namespace) -> int:
    """Print the catalogue; exit status 0."""
    for kind in [args.kind] if args.kind else KINDS:
        print(f"{kind}:")
        for name, summary, rows, refs in catalogue(kind):
            print(f"  {name}: {summary}")
            if args.brief:
                continue
            for row in [*rows, *(f"ref: {ref}" for ref in refs)]:
                print(textwrap.fill(row, 100, initial_indent=" " * 6, subsequent_indent=" " * 8))
        print()
    return 0
