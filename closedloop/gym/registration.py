"""Registration of the environments with gymnasium (imports nothing of the loop)."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

__all__ = ["ENV_ID", "register_envs", "register_when_imported"]

#: The gymnasium id of an experiment environment.
ENV_ID = "closedloop/Experiment-v0"


def register_envs() -> None:
    """Register :data:`ENV_ID` with gymnasium (idempotent).

    The entry points are strings, so nothing of the loop is imported until
    ``gymnasium.make`` or ``gymnasium.make_vec`` builds an environment.
    """
    import gymnasium  # the optional dependency, imported only here

    if ENV_ID in gymnasium.registry:
        return
    gymnasium.register(
        id=ENV_ID,
        entry_point="closedloop.gym.env:ExperimentEnv",
        vector_entry_point="closedloop.gym.vector:ExperimentVectorEnv",
    )


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Finds gymnasium, and registers the env when its import completes (then leaves)."""

    def __init__(self) -> None:
        self._finding = False

    def find_spec(
        self, fullname: str, path: object, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "gymnasium" or self._finding:
            return None
        self._finding = True  # the real finders find it: ask them, not this one again
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._finding = False
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module  # each find_spec makes a fresh loader: patch this one only

        def exec_then_register(module: ModuleType) -> None:
            run(module)
            if self in sys.meta_path:  # a find_spec without an import leaves the hook in place
                sys.meta_path.remove(self)
            register_envs()

        loader.exec_module = exec_then_register  # type: ignore[method-assign]
        return spec


def register_when_imported() -> None:
    """Register :data:`ENV_ID` now if gymnasium is imported, else when it is.

    ``import closedloop`` calls this: importing gymnasium costs about 0.2 s
    (0.7 s on a loaded machine), which every command-line call would pay
    whether or not it uses an environment. Instead, a one-shot import hook
    registers the env the moment gymnasium's own import completes, so
    ``gymnasium.make("closedloop/Experiment-v0")`` works whichever of the two
    packages is imported first.
    """
    if "gymnasium" in sys.modules:
        register_envs()
    elif importlib.util.find_spec("gymnasium") is not None and not any(
        isinstance(f, _RegisterAfterImport) for f in sys.meta_path
    ):
        sys.meta_path.insert(0, _RegisterAfterImport())
