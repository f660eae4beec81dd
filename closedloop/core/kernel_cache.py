"""Where compiled kernels live on disk: one cache directory per version of their sources.

Kernels compile once per machine and load from disk afterwards. Numba's cache
index only watches the file that defines a function, not the helpers it calls
(the compiled controller twins, the device and the sensing chain are inlined
into every model's period kernels), so the cache lives in a directory named
after a hash of every source file that holds compiled code, in
``closedloop/``, ``models/`` and ``controllers/`` alike: editing any of them
moves to a fresh cache instead of loading stale code. Set
``CLOSEDLOOP_NUMBA_CACHE`` (or numba's own ``NUMBA_CACHE_DIR``) to choose the
parent directory.

Numba is pointed at the directory when :func:`closedloop.core.jit.load_kernels`
imports it, before it builds any kernel's cache locator (and at once when
this module is imported after Numba, for kernels decorated with Numba's own
``njit``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

__all__ = [
    "FIRST_COMPILE_GENERAL_S",
    "FIRST_COMPILE_S",
    "cache_dir",
    "kernel_sources",
    "kernels_cached",
]

#: Packages whose source files may hold compiled kernels (each may be mapped
#: from its own folder, so they are found through the import system).
KERNEL_PACKAGES = ("closedloop", "closedloop.models", "closedloop.controllers")


def kernel_sources() -> list[Path]:
    """Every source file of the packages that defines a compiled kernel.

    Returns
    -------
    list of pathlib.Path
        Files under :data:`KERNEL_PACKAGES` (subpackages included) whose
        text contains ``njit``, sorted.
    """
    files: set[Path] = set()
    for name in KERNEL_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None:
            raise ImportError(f"kernel package {name!r} is not importable")
        for folder in spec.submodule_search_locations or ():
            files.update(p.resolve() for p in Path(folder).rglob("*.py"))
    return sorted(p for p in files if b"njit" in p.read_bytes())


def cache_dir() -> Path:
    """Return the directory that holds this version's compiled kernels.

    Returns
    -------
    pathlib.Path
        ``<parent>/<hash of kernel sources>``.
    """
    parent = os.environ.get("CLOSEDLOOP_NUMBA_CACHE") or os.environ.get("NUMBA_CACHE_DIR")
    if not parent:
        parent = str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "closedloop")
    digest = hashlib.sha256()
    for path in kernel_sources():
        digest.update(f"{path.parent.name}/{path.name}".encode())
        digest.update(path.read_bytes())
    return Path(parent) / "numba" / digest.hexdigest()[:16]


#: What a first run's compilation of one model's kernels usually costs (s of
#: CPU time), measured here (issue 18, gap 4): 8.5-10 s for STN-GPe's plain
#: periods (pulses, the plain chain; the default experiment) on a quiet 2-core
#: VM; periods that need the general code (TMS, tES, extra features, a power
#: envelope, smoothing) compile it too, about 30 s.
FIRST_COMPILE_S = (8, 15)
#: The same with the general period's code (see :data:`FIRST_COMPILE_S`).
FIRST_COMPILE_GENERAL_S = (25, 45)


def kernels_cached(module: str) -> bool:
    """Whether kernels of model module ``module`` (``"stn_gpe"``) are compiled on disk.

    Parameters
    ----------
    module : str
        The last part of the model's module name.

    Returns
    -------
    bool
        True when this version's cache holds an index of one of its kernels
        (numba writes ``<module>.<function>-<line>.py<ver>.nbi``).
    """
    return any(cache_dir().glob(f"*/{module}.*.nbi"))


if "numba" in sys.modules:
    # Numba reads it when it builds a function's cache locator, at decoration.
    sys.modules["numba"].config.CACHE_DIR = str(cache_dir())
