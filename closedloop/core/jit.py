"""Compiled kernels declared at import, Numba imported when the first one is needed.

Importing Numba costs about as much as everything else a light command does
(1 to 2 s on a busy 2-core machine), and ``closedloop validate`` imports every
module that defines a kernel without running one. Kernel modules therefore
decorate with this module's :func:`njit` and loop with its :data:`prange`:
until a kernel is called (or :func:`load_kernels` is), each kernel is a
:class:`LazyKernel` that holds the Python function and its options.

:func:`load_kernels` imports Numba, points its cache at
:func:`closedloop.core.kernel_cache.cache_dir`, turns every pending kernel
into a Numba dispatcher and puts the dispatchers (and ``numba.prange``) in
place of the stand-ins in every loaded module's namespace, so that a kernel
compiled afterwards finds real dispatchers among its globals (Numba resolves a
kernel's callees from its module's globals when it compiles it). From then
on :func:`njit` decorates at once. A stand-in still held elsewhere (an
attribute, a table, a kernel decorated with Numba's own ``njit`` before the
swap) forwards calls and attribute reads to its dispatcher, and Numba types
it as that dispatcher.
"""

from __future__ import annotations

import functools
import importlib
import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["EXTENSIONS", "LazyKernel", "kernels_loaded", "load_kernels", "njit", "prange"]

#: Modules that extend Numba (``@overload``, ``@intrinsic``) for the kernels,
#: imported by :func:`load_kernels` right after Numba.
EXTENSIONS = ("closedloop.core.pool_numba",)

_LOCK = threading.RLock()
_PENDING: list[LazyKernel] = []
_STATE = {"loaded": False}


def prange(*args: int) -> range:
    """Stand-in for ``numba.prange`` (a plain ``range``) until :func:`load_kernels`."""
    return range(*args)


class LazyKernel:
    """A kernel's Python function and Numba options, compiled on first use.

    Parameters
    ----------
    py_func : callable
        The function to compile.
    options : dict
        Keyword arguments for ``numba.njit`` (``cache``, ``parallel``,
        ``inline``, ...).
    """

    def __init__(self, py_func: Callable[..., Any], options: dict[str, Any]) -> None:
        functools.update_wrapper(self, py_func)
        self.py_func = py_func
        self.options = options
        self.dispatcher: Any = None

    def resolve(self) -> Any:
        """The Numba dispatcher (importing Numba and loading every kernel if needed)."""
        if self.dispatcher is None:
            load_kernels()
        if self.dispatcher is None:  # a copy (pickle, deepcopy) that was never pending
            import numba

            self.dispatcher = numba.njit(**self.options)(self.py_func)
        return self.dispatcher

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    @property
    def _numba_type_(self) -> Any:
        # How Numba types a stand-in it meets among the globals of a kernel
        # decorated with Numba's own njit before load_kernels ran (a user's).
        return self.resolve()._numba_type_

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the stand-in lacks (overloads, signatures, ...).
        if name.startswith("__") or name in ("dispatcher", "options", "py_func"):
            raise AttributeError(name)
        return getattr(self.resolve(), name)

    def __repr__(self) -> str:
        state = "loaded" if self.dispatcher is not None else "pending"
        return f"<LazyKernel {self.py_func.__module__}.{self.py_func.__qualname__} ({state})>"


def njit(*args: Any, **options: Any) -> Any:
    """``numba.njit`` with Numba imported when the first kernel is needed.

    Used as ``@njit`` or ``@njit(cache=True, ...)``, like Numba's. Before
    :func:`load_kernels` it returns a :class:`LazyKernel`; afterwards, the
    Numba dispatcher itself.
    """
    if args and callable(args[0]) and not options:
        return njit()(args[0])

    def decorate(py_func: Callable[..., Any]) -> Any:
        with _LOCK:
            if _STATE["loaded"]:
                import numba

                return numba.njit(**options)(py_func)
            kernel = LazyKernel(py_func, options)
            _PENDING.append(kernel)
            return kernel

    return decorate


def kernels_loaded() -> bool:
    """Whether :func:`load_kernels` has run (Numba imported, kernels in place)."""
    return _STATE["loaded"]


def load_kernels() -> None:
    """Import Numba and turn every kernel declared so far into a dispatcher.

    Idempotent and thread-safe. Nothing compiles here: each dispatcher
    compiles (or loads from the on-disk cache) on its first call, as usual.
    """
    if _STATE["loaded"]:
        return
    with _LOCK:
        if _STATE["loaded"]:
            return
        import numba

        from closedloop.core.kernel_cache import cache_dir

        numba.config.CACHE_DIR = str(cache_dir())  # type: ignore[attr-defined]  # set at import
        for module in EXTENSIONS:  # before any kernel that uses them compiles
            importlib.import_module(module)
        for kernel in _PENDING:
            kernel.dispatcher = numba.njit(**kernel.options)(kernel.py_func)
        _swap_stand_ins(numba.prange)
        _PENDING.clear()
        _STATE["loaded"] = True


def _swap_stand_ins(numba_prange: Any) -> None:
    """Replace stand-ins by dispatchers (and ``numba.prange``) in every module's globals."""
    stand_in = prange  # this module's own name is swapped too
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for name, value in list(namespace.items()):
            if type(value) is LazyKernel and value.dispatcher is not None:
                namespace[name] = value.dispatcher
            elif value is stand_in:
                namespace[name] = numba_prange
