"""The compiled forms of :func:`closedloop.core.pool.unpack` and :func:`~closedloop.core.pool.lent`.

Kept apart from :mod:`closedloop.core.pool` because it needs Numba's
extension API at import, and :mod:`closedloop.core.jit` imports Numba only
when the first kernel is needed: :func:`closedloop.core.jit.load_kernels`
imports this module then, before any ``@njit`` kernel that calls ``unpack``
compiles. Its generated code lands in the kernels' on-disk cache, so this
file counts in the cache key (it names ``njit``).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic, overload
from numba.np.arrayobj import make_array, populate_array

from closedloop.core.pool import (
    MAX_DIMS,
    ROW,
    Spec,
    layout_code,
    lent,
    recorded_specs,
    unpack,
)

__all__: list[str] = []


def _view_at(dtype: np.dtype, ndim: int) -> Any:
    """A compiled ``view_at(pool, offset, shape)``: the C array of ``dtype`` at byte ``offset``.

    Built directly (data pointer, shape, C strides) since Numba's
    ``ndarray.view`` and ``reshape`` cost some 20-60 ns each, a microsecond
    over the fifty arrays of a period; and without a reference count, like
    ``numba.carray`` (the increments and decrements cost another 2-3 us per
    period): the view is valid while the pool lives, i.e. within the call
    that received the pool. The offset and shape come from the table
    :func:`pack` wrote, not checked again here.
    """
    key = (dtype, ndim)
    if key in _VIEWS:
        return _VIEWS[key]
    out_type = types.Array(numba.from_dtype(dtype), ndim, "C")

    @intrinsic
    def view_at(typingctx, pool, offset, shape):  # noqa: ANN001, ANN202, ARG001
        def codegen(context, builder, sig, args):  # noqa: ANN001, ANN202
            src = make_array(sig.args[0])(context, builder, args[0])
            out = make_array(out_type)(context, builder)
            dims = cgutils.unpack_tuple(builder, args[2], ndim)
            itemsize = context.get_constant(types.intp, dtype.itemsize)
            strides: list[Any] = []
            step = itemsize
            for d in reversed(dims):
                strides.insert(0, step)
                step = builder.mul(step, d)
            data = builder.bitcast(builder.gep(src.data, [args[1]]), out.data.type)
            populate_array(
                out, data=data, shape=dims, strides=strides, itemsize=itemsize, meminfo=None
            )
            return impl_ret_borrowed(context, builder, out_type, out._getvalue())

        return out_type(pool, offset, types.UniTuple(types.intp, ndim)), codegen

    _VIEWS[key] = view_at
    return view_at


_VIEWS: dict[tuple[np.dtype, int], Any] = {}


def _unpack_source(cls: type, specs: tuple[Spec, ...]) -> dict[str, Any]:
    """Scope of the compiled :func:`unpack` for ``cls``: ``"source"`` and its view makers."""
    lines = [
        "def impl(cls, pool, j):",
        "    header = I1(pool, 0, (2 * j + 2,))",
        f"    if header[2 * j + 1] != {layout_code(cls, specs)}:",
        f"        raise TypeError('pool does not hold a {cls.__name__}')",
        f"    t = I1(pool, header[2 * j], ({ROW * len(specs)},))",
    ]
    scope: dict[str, Any] = {"I1": _view_at(np.dtype(np.int64), 1)}
    for f, spec in enumerate(specs):
        r = f * ROW
        kind, dtype, ndim = spec
        if dtype is None:
            view = "F1" if kind == "float" else "I1"
            scope["F1"] = _view_at(np.dtype(np.float64), 1)
            value = f"{view}(pool, t[{r}], (1,))[0]"
            lines.append(f"    f{f} = {value if kind != 'bool' else value + ' != 0'}")
            continue
        name = f"V_{dtype.char}{ndim}"
        scope[name] = _view_at(dtype, ndim)
        shape = "".join(f"t[{r + 2 + d}], " for d in range(ndim))
        lines.append(f"    f{f} = {name}(pool, t[{r}], ({shape}))")
    lines.append(f"    return C({', '.join(f'f{f}' for f in range(len(specs)))})")
    scope["source"] = "\n".join(lines)
    return scope


@overload(unpack)
def _unpack_impl(cls, pool, j):  # noqa: ANN001, ANN202 - Numba compares signatures
    if not isinstance(cls, types.NamedTupleClass):
        return None
    klass = cls.instance_class
    specs = recorded_specs(klass)
    if specs is None:
        raise TypeError(f"unpack({klass.__name__}): pack() an instance of it first")
    scope: dict[str, Any] = {**_unpack_source(klass, specs), "C": klass}
    exec(scope.pop("source"), scope)  # noqa: S102 - code made from field types
    return scope["impl"]


def _array_at(out_type: types.Array) -> Any:
    """A compiled ``array_at(address, shape, strides)``: an array of ``out_type`` at ``address``.

    Like :func:`_view_at`, without a reference count: valid while whoever
    lent the array keeps it.
    """
    if out_type in _AT:
        return _AT[out_type]
    ndim = out_type.ndim
    itemsize = _itemsize(out_type)

    @intrinsic
    def array_at(typingctx, address, shape, strides):  # noqa: ANN001, ANN202, ARG001
        def codegen(context, builder, sig, args):  # noqa: ANN001, ANN202
            out = make_array(out_type)(context, builder)
            data = builder.inttoptr(args[0], out.data.type)
            populate_array(
                out,
                data=data,
                shape=cgutils.unpack_tuple(builder, args[1], ndim),
                strides=cgutils.unpack_tuple(builder, args[2], ndim),
                itemsize=context.get_constant(types.intp, itemsize),
                meminfo=None,
            )
            return impl_ret_borrowed(context, builder, out_type, out._getvalue())

        index = types.UniTuple(types.intp, ndim)
        return out_type(address, index, index), codegen

    _AT[out_type] = array_at
    return array_at


_AT: dict[types.Array, Any] = {}


def _itemsize(array_type: types.Array) -> int:
    return int(numba.np.numpy_support.as_dtype(array_type.dtype).itemsize)


@overload(lent)
def _lent_impl(types_ref, table):  # noqa: ANN001, ANN202 - Numba compares signatures
    if not isinstance(types_ref, types.TypeRef) or not isinstance(
        types_ref.instance_type, types.Tuple | types.UniTuple
    ):
        return None
    arrays = types_ref.instance_type.types
    if not all(isinstance(a, types.Array) and 1 <= a.ndim <= MAX_DIMS for a in arrays):
        raise TypeError(f"lent(): not a tuple of arrays of 1 to {MAX_DIMS} dims: {arrays}")
    lines = ["def impl(types_ref, table):"]
    scope: dict[str, Any] = {}
    for j, a in enumerate(arrays):
        lines.append(f"    if table[{j}, 1] != {a.ndim} or table[{j}, 2] != {_itemsize(a)}:")
        lines.append(f"        raise TypeError('lent table row {j} does not hold a {a}')")
        shape = "".join(f"table[{j}, {3 + d}], " for d in range(a.ndim))
        strides = "".join(f"table[{j}, {3 + MAX_DIMS + d}], " for d in range(a.ndim))
        scope[f"A{j}"] = _array_at(a)
        lines.append(f"    a{j} = A{j}(table[{j}, 0], ({shape}), ({strides}))")
    lines.append(f"    return ({''.join(f'a{j}, ' for j in range(len(arrays)))})")
    exec("\n".join(lines), scope)  # noqa: S102 - code made from the arrays' types
    return scope["impl"]
