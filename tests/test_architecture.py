"""The package's shape: no import cycles, no private names across modules,
modules of readable size, the declared batch-kernel pattern, and a kernel
cache keyed on every file that holds compiled code."""

from __future__ import annotations

import ast
import importlib
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numba
import numpy as np
import pytest

import closedloop
from closedloop.core import batch_kernels
from closedloop.core.jit import load_kernels
from closedloop.core.kernel_cache import kernel_sources
from closedloop.models import BUILTIN_MODELS

ROOT = Path(__file__).resolve().parents[1]
#: Source folder of each package as installed (setuptools' package-dir mapping).
FOLDERS = {
    "closedloop": ROOT / "closedloop",
    "closedloop.models": ROOT / "models",
    "closedloop.controllers": ROOT / "controllers",
}
MAX_LINES = 700


def _modules() -> dict[str, Path]:
    """Every module of the distribution: import name to file."""
    out = {}
    for package, folder in FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([package, *parts])] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """Modules of the package that ``name`` imports (function-level ones included)."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            # "from package import module" imports the module; otherwise the name's module.
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.append((target, node.lineno))
    return found


def test_no_import_cycles():
    graph = {name: {t for t, _ in _imports(name, path)} for name, path in MODULES.items()}
    # Tarjan's strongly connected components: any component of two or more is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_cycle_finder_finds_a_planted_cycle(tmp_path, monkeypatch):
    # A check that cannot fail proves nothing: plant a -> b -> a and look.
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("def f():\n    from closedloop.b import g\n")
    b.write_text("from closedloop import a\n")
    monkeypatch.setitem(MODULES, "closedloop.a", a)
    monkeypatch.setitem(MODULES, "closedloop.b", b)
    assert ("closedloop.b", 2) in _imports("closedloop.a", a)
    assert ("closedloop.a", 1) in _imports("closedloop.b", b)
    with pytest.raises(AssertionError, match="import cycles"):
        test_no_import_cycles()


def _private_uses(name: str, path: Path) -> list[str]:
    """Private names of other package modules that ``name`` imports or reads."""
    tree = ast.parse(path.read_text())
    out = []
    aliases = {}  # local name bound to a package module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in MODULES:
                    aliases[alias.asname or alias.name] = full
                elif node.module in MODULES and node.module != name:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        out.append(f"line {node.lineno}: from {node.module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES and alias.asname:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and aliases[node.value.id] != name
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            out.append(f"line {node.lineno}: {aliases[node.value.id]}.{node.attr}")
    return out


def test_no_module_uses_another_modules_private_names():
    problems = {name: p for name, path in MODULES.items() if (p := _private_uses(name, path))}
    assert not problems, problems


def test_no_module_is_over_700_lines():
    long = {
        name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > 700
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_every_model_holds_the_declared_batch_kernels_verbatim():
    for cls in BUILTIN_MODELS.values():
        module = sys.modules[cls.__module__]
        source = Path(module.__file__).read_text()
        marker, _, copy = source.partition(batch_kernels.MARKER + "\n\n\n")
        assert marker, f"{cls.__module__} lacks the marker line {batch_kernels.MARKER!r}"
        assert copy == batch_kernels.PATTERN, (
            f"{cls.__module__}: its batch kernels differ from "
            "closedloop.core.batch_kernels.PATTERN; copy the pattern verbatim"
        )
        kernels = cls(n=1).kernels
        assert kernels.advance_one is module.advance_one
        assert all(isinstance(k, numba.core.dispatcher.Dispatcher) for k in kernels)


def test_a_model_module_with_an_older_pattern_copy_is_told_to_copy_it_again(monkeypatch):
    # A user's model module copied before the kernels took `general`: named
    # when the loop asks for its kernels, not a Numba typing error mid-run.
    pattern = batch_kernels.PATTERN.replace(", general)", ")").replace("    general,\n", "")
    module = types.ModuleType("old_pattern_model")
    namespace = module.__dict__
    namespace.update(np=np, njit=lambda *a, **k: lambda f: f, prange=range)
    exec("def advance_one(i, n_steps, step0, dt, model, drive, out):\n    pass\n", namespace)
    exec(pattern, namespace)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(batch_kernels, "_BY_MODULE", {})
    with pytest.raises(
        TypeError,
        match=r"'old_pattern_model': periods_serial\(n_periods.*effective_step\) is an older"
        r" copy.*effective_step, general\)",
    ):
        batch_kernels.model_kernels(module.__name__)
    exec(batch_kernels.PATTERN, namespace)  # the current copy is taken
    assert (
        batch_kernels.model_kernels(module.__name__).periods_serial is namespace["periods_serial"]
    )


def _compiled_modules() -> set[Path]:
    """Files that define a Numba kernel, found by importing every module."""
    modules = {
        name: (importlib.import_module(name), path)
        for name, path in MODULES.items()
        if ".brian" not in name or importlib.util.find_spec("brian2") is not None
    }
    load_kernels()  # stand-ins become dispatchers in every module's namespace
    out = set()
    for name, (module, path) in modules.items():
        for value in vars(module).values():
            if isinstance(value, numba.core.dispatcher.Dispatcher):
                if value.py_func.__module__ == name:
                    out.add(path.resolve())
    return out


def test_kernel_cache_is_keyed_on_every_file_with_compiled_code():
    compiled = _compiled_modules()
    keyed = set(kernel_sources())
    assert Path(sys.modules["closedloop.controllers.compiled"].__file__).resolve() in compiled
    missing = sorted(str(p.relative_to(ROOT)) for p in compiled - keyed)
    assert not missing, f"files with compiled kernels left out of the cache key: {missing}"


def _cache_dir_of(tree: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(tree), "CLOSEDLOOP_NUMBA_CACHE": str(tree / "cache")}
    code = (
        "import closedloop, pathlib, sys;"
        f"assert pathlib.Path(closedloop.__file__).is_relative_to({str(tree)!r});"
        "from closedloop.core.kernel_cache import cache_dir; print(cache_dir())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tree, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_editing_a_compiled_controller_twin_moves_to_a_fresh_cache(tmp_path):
    # The stale-kernel defect: the twins are inlined into every model's period
    # kernels, so editing one must not load the old compiled code.
    tree = tmp_path / "site"
    shutil.copytree(FOLDERS["closedloop"], tree / "closedloop")
    shutil.copytree(FOLDERS["closedloop.models"], tree / "closedloop" / "models")
    shutil.copytree(FOLDERS["closedloop.controllers"], tree / "closedloop" / "controllers")
    before = _cache_dir_of(tree)
    twin = tree / "closedloop" / "controllers" / "compiled.py"
    text = twin.read_text()
    assert "return amp, p[6], p[7], math.nan" in text
    twin.write_text(
        text.replace("return amp, p[6], p[7], math.nan", "return 0.0, p[6], p[7], math.nan")
    )
    after = _cache_dir_of(tree)
    assert before != after
    # A file without kernels does not move the cache (it would only cost compile time).
    (tree / "closedloop" / "plotting" / "run.py").write_text("# edited\n")
    assert _cache_dir_of(tree) == after


def test_public_names_users_import_keep_working():
    from closedloop import controllers, models

    for name in ("ClosedLoop", "SensingChain", "Device", "load_run", "Controller"):
        assert getattr(closedloop, name) is not None
    assert {"PID", "DualThreshold", "OnOff", "OpenLoop"} <= set(controllers.__all__)
    assert {"STNGPe", "Epileptor", "KuramotoEnsemble", "WilsonCowan", "JansenRit"} <= set(
        models.__all__
    )
