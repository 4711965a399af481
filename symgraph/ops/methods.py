"""The tensor methods and operators of :class:`~symgraph.graph.basic.Variable`.

The graph package defines variables without knowing any op; this table gives them ``+``, ``@``,
indexing, ``.sum()`` and the rest, in one place, when symgraph is imported.
"""

from __future__ import annotations

from typing import Any

from ..graph.basic import Variable
from . import elemwise, linalg, reduce, shape, subtensor
from .basic import cast


def _method(operation: Any) -> Any:
    """A function (which binds ``self``) calling ``operation``, which may be a callable op."""
    return lambda self, *args: operation(self, *args)


def _reflected(operation: Any) -> Any:
    return lambda self, other: operation(other, self)


def _astype(self: Variable, dtype: Any) -> Variable:
    """``x.astype(dtype)``: ``sg.cast(x, dtype)``."""
    return cast(self, dtype)


def _reshape(self: Variable, *new_shape: Any, ndim: int | None = None) -> Variable:
    """``x.reshape(shape)`` or ``x.reshape(n0, n1, ...)``: ``sg.reshape``."""
    if len(new_shape) == 1:
        new_shape = new_shape[0]
    return shape.reshape(self, new_shape, ndim)


def _transpose(self: Variable, *axes: Any) -> Variable:
    """``x.transpose(*axes)``, the axes as arguments or one tuple; none reverses them."""
    if len(axes) == 1 and isinstance(axes[0], (list, tuple)):
        axes = tuple(axes[0])
    return shape.transpose(self, axes or None)


TENSOR_METHODS = {
    "__add__": _method(elemwise.add),
    "__radd__": _reflected(elemwise.add),
    "__sub__": _method(elemwise.sub),
    "__rsub__": _reflected(elemwise.sub),
    "__mul__": _method(elemwise.mul),
    "__rmul__": _reflected(elemwise.mul),
    "__truediv__": _method(elemwise.true_div),
    "__rtruediv__": _reflected(elemwise.true_div),
    "__floordiv__": _method(elemwise.floor_div),
    "__rfloordiv__": _reflected(elemwise.floor_div),
    "__mod__": _method(elemwise.mod),
    "__rmod__": _reflected(elemwise.mod),
    "__pow__": _method(elemwise.pow),
    "__rpow__": _reflected(elemwise.pow),
    "__matmul__": _method(linalg.matmul),
    "__rmatmul__": _reflected(linalg.matmul),
    "__neg__": _method(elemwise.neg),
    "__pos__": lambda self: self,
    "__abs__": _method(elemwise.abs),
    "__invert__": _method(elemwise.invert),
    "__and__": _method(elemwise.and_),
    "__rand__": _reflected(elemwise.and_),
    "__or__": _method(elemwise.or_),
    "__ror__": _reflected(elemwise.or_),
    "__xor__": _method(elemwise.xor),
    "__rxor__": _reflected(elemwise.xor),
    "__lt__": _method(elemwise.lt),
    "__le__": _method(elemwise.le),
    "__gt__": _method(elemwise.gt),
    "__ge__": _method(elemwise.ge),
    "__eq__": _method(elemwise.eq),
    "__ne__": _method(elemwise.neq),
    "__getitem__": subtensor.subtensor,
    "T": property(lambda self: shape.transpose(self)),
    "shape": property(shape.shape),
    "sum": reduce.sum,
    "mean": reduce.mean,
    "max": reduce.max,
    "min": reduce.min,
    "prod": reduce.prod,
    "std": reduce.std,
    "var": reduce.var,
    "argmax": reduce.argmax,
    "argmin": reduce.argmin,
    "reshape": _reshape,
    "flatten": shape.flatten,
    "dimshuffle": shape.dimshuffle,
    "transpose": _transpose,
    "astype": _astype,
    "dot": linalg.dot,
}


def install() -> None:
    """Put the operators and methods of ``TENSOR_METHODS`` on :class:`Variable` (at import)."""
    for name, method in TENSOR_METHODS.items():
        setattr(Variable, name, method)
    # Defining __eq__ removes the inherited __hash__; variables hash by identity.
    Variable.__hash__ = object.__hash__  # type: ignore[method-assign]
