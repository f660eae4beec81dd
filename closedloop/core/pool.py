"""NamedTuples of state packed in one byte pool, rebuilt as views inside compiled code.

Calling a compiled kernel from Python unboxes every array argument, and the
cost per array grows with their number: about 30 ns each for up to ten, then
about 120 ns each (measured on the project's VM, Numba 0.68: a call with 26
small arrays took 3.2 us against 0.19 us for six). A Python-controller
period passes some fifty (device, sensing chain, period buffers), so the
loop packs them: :func:`pack` copies the fields of one or more NamedTuples
(arrays and scalars alike) into a single ``uint8`` array and hands back the
same NamedTuples made of views into it, which the Python side keeps using;
inside an ``@njit`` kernel :func:`unpack` (compiled by
:mod:`closedloop.core.pool_numba`, loaded with Numba) rebuilds each NamedTuple from the
pool, views again (built directly, about 0.2 us for a period's fifty), so
the kernels that take the NamedTuples stay as they are.

Arrays that live elsewhere for as long as the pool (a model's state, a
chunk's record pool) can ride in it by address instead: :func:`lend` writes
an array's address, shape and strides into a row of a :class:`Lent` table
packed in the pool, and inside compiled code :func:`lent` rebuilds them as
views of the types the caller names (a ``numba`` type passed as an
argument, which costs nothing to unbox). The caller keeps the arrays alive.

Layout of a pool: a header of two ``int64`` per packed NamedTuple, the byte
offset of its table and its :func:`layout_code`; per NamedTuple a table of :data:`ROW` ``int64``
per field (byte offset, a type code, the shape padded with 1s); then the data,
each field aligned to :data:`ALIGN` bytes. Scalars occupy one 8-byte slot
(floats as float64, ints and bools as int64).

The field types of a NamedTuple class must be the same for every instance
(the kernels' caches depend on it anyway): :func:`pack` records them per
class on first use and raises on an instance that differs, and the code
:func:`unpack` compiles checks the NamedTuple's layout code in the header on
every call (one comparison: a check of each field's type code cost 50 ns
of a period's 2 us).
"""

from __future__ import annotations

import zlib
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "ALIGN",
    "LENT_ROW",
    "MAX_DIMS",
    "ROW",
    "Lent",
    "lend",
    "lent",
    "field_specs",
    "layout_code",
    "pack",
    "pool_bytes",
    "recorded_specs",
    "type_code",
    "unpack",
]

#: Byte alignment of each field in the pool (complex128 needs 16).
ALIGN = 16
#: Most dimensions of a packed array.
MAX_DIMS = 4
#: ``int64`` entries per field in a table: offset, type code, shape.
ROW = 2 + MAX_DIMS

# Scalar kinds and the array dtypes a pool holds; the type code is the index.
_SCALARS = ("float", "int", "bool")
_DTYPES = tuple(np.dtype(d) for d in ("f8", "i8", "u8", "c16"))

#: A field's kind: ``("array", dtype, ndim)`` or ``(scalar kind, None, 0)``.
Spec = tuple[str, Any, int]

_SPECS: dict[type, tuple[Spec, ...]] = {}


def _field_spec(cls_name: str, name: str, value: Any) -> Spec:
    if isinstance(value, np.ndarray):
        if value.dtype not in _DTYPES or not 1 <= value.ndim <= MAX_DIMS:
            raise TypeError(
                f"{cls_name}.{name}: cannot pack an array of {value.dtype} with {value.ndim} "
                f"dimensions (packed: {', '.join(map(str, _DTYPES))}; 1 to {MAX_DIMS} dims)"
            )
        return ("array", value.dtype, value.ndim)
    if isinstance(value, bool | np.bool_):
        return ("bool", None, 0)
    if isinstance(value, int | np.integer):
        return ("int", None, 0)
    if isinstance(value, float):
        return ("float", None, 0)
    raise TypeError(f"{cls_name}.{name}: cannot pack a {type(value).__name__}")


def field_specs(instance: NamedTuple) -> tuple[Spec, ...]:
    """Each field's kind of ``instance``: ``("array", dtype, ndim)`` or a scalar kind.

    Raises
    ------
    TypeError
        Naming the field whose type cannot be packed, or that differs from
        an earlier instance of the same class.
    """
    cls = type(instance)
    pairs = zip(cls._fields, instance, strict=True)
    specs = tuple(_field_spec(cls.__name__, f, v) for f, v in pairs)
    known = _SPECS.setdefault(cls, specs)
    if known != specs:
        bad = next(f for f, a, b in zip(cls._fields, known, specs, strict=True) if a != b)
        raise TypeError(f"{cls.__name__}.{bad}: its type differs from an earlier instance's")
    return specs


def type_code(spec: Spec) -> int:
    """The code of a field's kind in a pool's table (checked by the compiled :func:`unpack`)."""
    kind, dtype, _ = spec
    return _SCALARS.index(kind) if dtype is None else len(_SCALARS) + _DTYPES.index(dtype)


def layout_code(cls: type, specs: tuple[Spec, ...]) -> int:
    """A checksum of NamedTuple class ``cls``'s name and field kinds, as :func:`pack` stores it."""
    kinds = tuple((k, None if d is None else np.dtype(d).str, n) for k, d, n in specs)
    return zlib.crc32(repr((cls.__qualname__, kinds)).encode())


def _aligned(nbytes: int) -> int:
    return -(-nbytes // ALIGN) * ALIGN


def pool_bytes(instances: tuple[NamedTuple, ...] | list[NamedTuple]) -> int:
    """Size of the pool :func:`pack` makes for ``instances``, bytes."""
    total = _aligned(16 * len(instances))
    for obj in instances:
        total += _aligned(8 * ROW * len(obj))
        total += sum(_aligned(v.nbytes) if isinstance(v, np.ndarray) else ALIGN for v in obj)
    return total


def pack(*instances: NamedTuple, copy: bool = True) -> tuple[np.ndarray, list[Any]]:
    """Pack NamedTuples of arrays and scalars into one byte pool.

    Parameters
    ----------
    *instances : NamedTuple
        Each field a C-contiguous array of float64, int64, uint64 or
        complex128 (1 to :data:`MAX_DIMS` dimensions) or a Python float,
        int or bool.
    copy : bool
        Copy the arrays' values into the pool (False: leave them
        uninitialised, for output buffers).

    Returns
    -------
    pool : ndarray of uint8
        The packed state; pass it to a kernel that calls :func:`unpack`.
    views : list of NamedTuple
        ``instances`` rebuilt with each array a view into ``pool`` (the
        scalars as they were), in order: keep these, not the originals.
    """
    pool = np.zeros(pool_bytes(instances), dtype=np.uint8)
    header = pool[: 16 * len(instances)].view(np.int64)
    at = _aligned(header.nbytes)
    views = []
    for j, obj in enumerate(instances):
        specs = field_specs(obj)
        header[2 * j], header[2 * j + 1] = at, layout_code(type(obj), specs)
        table = pool[at : at + 8 * ROW * len(obj)].view(np.int64).reshape(len(obj), ROW)
        at += _aligned(table.nbytes)
        fields = []
        for row, value, spec in zip(table, obj, specs, strict=True):
            row[0], row[1], row[2:] = at, type_code(spec), 1
            if spec[1] is None:  # a scalar in an 8-byte slot
                slot = pool[at : at + 8].view(np.float64 if spec[0] == "float" else np.int64)
                slot[0] = value
                fields.append(value)
                at += ALIGN
                continue
            row[2 : 2 + value.ndim] = value.shape
            view = pool[at : at + value.nbytes].view(value.dtype).reshape(value.shape)
            if copy:
                view[...] = value
            fields.append(view)
            at += _aligned(value.nbytes)
        views.append(type(obj)(*fields))
    return pool, views


def unpack(cls: type, pool: np.ndarray, j: int) -> Any:
    """The ``j``-th NamedTuple of class ``cls`` packed in ``pool``, as views (compiled code).

    Called inside ``@njit`` code only (Numba compiles it for ``cls`` from the
    field types :func:`pack` recorded for that class). The views hold no
    reference to ``pool``: use them within the call that received it.
    """
    raise TypeError("unpack() runs inside compiled code only")


def recorded_specs(cls: type) -> tuple[Spec, ...] | None:
    """The field kinds :func:`pack` recorded for NamedTuple class ``cls``, None before any."""
    return _SPECS.get(cls)


#: ``int64`` entries per lent array in a :class:`Lent` table: address, ndim,
#: itemsize (bytes), the shape padded with 1s, the strides (bytes) padded with 0s.
LENT_ROW = 3 + 2 * MAX_DIMS


class Lent(NamedTuple):
    """A table of arrays by address (:func:`lend`), packed in a pool beside the state."""

    table: np.ndarray  #: (arrays, LENT_ROW) int64


def lend(row: np.ndarray, array: np.ndarray) -> None:
    """Write ``array``'s address, shape and strides into ``row`` of a :class:`Lent` table.

    The caller keeps ``array`` alive (and its buffer in place) while compiled
    code may read the row.

    Raises
    ------
    TypeError
        When ``array`` is not an ndarray of 1 to :data:`MAX_DIMS` dimensions.
    """
    if not isinstance(array, np.ndarray) or not 1 <= array.ndim <= MAX_DIMS:
        raise TypeError(
            f"cannot lend a {type(array).__name__} (an ndarray of 1 to {MAX_DIMS} dims)"
        )
    ndim = array.ndim
    row[:] = 0
    row[0], row[1], row[2] = array.__array_interface__["data"][0], ndim, array.itemsize
    row[3 : 3 + MAX_DIMS] = 1
    row[3 : 3 + ndim] = array.shape
    row[3 + MAX_DIMS : 3 + MAX_DIMS + ndim] = array.strides


def lent(types_ref: Any, table: np.ndarray) -> Any:
    """The arrays lent in ``table``'s rows, as a tuple typed ``types_ref`` (compiled code).

    ``types_ref`` is the ``numba`` type of the tuple of arrays (a Numba
    ``Tuple`` passed from Python, typed as a reference to it); row ``j`` of
    ``table`` describes element ``j``. Called inside ``@njit`` code only
    (compiled by :mod:`closedloop.core.pool_numba`), which checks each row's
    ndim and itemsize against the type. The views hold no reference to the
    arrays.
    """
    raise TypeError("lent() runs inside compiled code only")
