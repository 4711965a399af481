"""Declaring symbolic inputs and shared state: ``sg.matrix('x')``, ``sg.shared(W)``, ..."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .config import config
from .errors import ShapeError
from .graph.basic import SharedVariable, Variable
from .graph.type import TensorType
from .ops.basic import constant

__all__ = [
    "constant",
    "matrix",
    "scalar",
    "shared",
    "tensor",
    "tensor3",
    "tensor4",
    "vector",
] + [prefix + kind for prefix in "dfilb" for kind in ("scalar", "vector", "matrix", "tensor3", "tensor4")]


def tensor(name: str | None = None, dtype: Any = None, shape: Sequence[int | None] | None = None) -> Variable:
    """A symbolic input of any number of dimensions, given by ``shape`` (``None`` for lengths known
    only at run time): ``sg.tensor('x', shape=(None, 784))``. ``dtype=None`` means floatX."""
    if shape is None:
        raise TypeError("sg.tensor needs shape=, one entry per axis, e.g. shape=(None, 784)")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"a variable's name is a string, not {name!r}")
    return Variable(TensorType(dtype or config.floatX, tuple(shape)), name=name)


def _declarer(ndim: int, default_dtype: str | None, doc: str) -> Any:
    def declare(name: str | None = None, dtype: Any = None, shape: Sequence[int | None] | None = None) -> Variable:
        if shape is None:
            shape = (None,) * ndim
        elif len(shape) != ndim:
            raise ShapeError(f"a {ndim}-dimensional input takes a shape of {ndim} entries, got {tuple(shape)}")
        return tensor(name, dtype or default_dtype, shape)

    declare.__doc__ = doc
    return declare


scalar = _declarer(0, None, "A symbolic 0-d input (floatX unless ``dtype``).")
vector = _declarer(1, None, "A symbolic 1-d input (floatX unless ``dtype``).")
matrix = _declarer(2, None, "A symbolic 2-d input (floatX unless ``dtype``).")
tensor3 = _declarer(3, None, "A symbolic 3-d input (floatX unless ``dtype``).")
tensor4 = _declarer(4, None, "A symbolic 4-d input (floatX unless ``dtype``), e.g. NCHW images.")

# Theano's typed declarations: a prefix for the dtype, a suffix for the number of dimensions.
_PREFIXES = {"d": "float64", "f": "float32", "i": "int32", "l": "int64", "b": "int8"}
_KINDS = {"scalar": 0, "vector": 1, "matrix": 2, "tensor3": 3, "tensor4": 4}


def _typed(prefix: str, kind: str) -> Any:
    dtype, ndim = _PREFIXES[prefix], _KINDS[kind]
    doc = f"A symbolic {dtype} input of {ndim} dimension(s) (Theano's ``T.{prefix}{kind}``)."
    declare = _declarer(ndim, dtype, doc)
    declare.__name__ = declare.__qualname__ = prefix + kind
    return declare


dscalar, dvector, dmatrix, dtensor3, dtensor4 = (_typed("d", kind) for kind in _KINDS)
fscalar, fvector, fmatrix, ftensor3, ftensor4 = (_typed("f", kind) for kind in _KINDS)
iscalar, ivector, imatrix, itensor3, itensor4 = (_typed("i", kind) for kind in _KINDS)
lscalar, lvector, lmatrix, ltensor3, ltensor4 = (_typed("l", kind) for kind in _KINDS)
bscalar, bvector, bmatrix, btensor3, btensor4 = (_typed("b", kind) for kind in _KINDS)


def shared(
    value: Any, name: str | None = None, borrow: bool = False, shape: Sequence[int | None] | None = None
) -> SharedVariable:
    """State that lives between calls (weights, learning rates, statistics).

    A Python float gives floatX, a Python int int64; an array keeps its dtype. The static shape is
    unknown unless ``shape=`` is given, so ``set_value`` may later change the shape (but not the
    dtype or the number of dimensions). The value is copied unless ``borrow=True``.
    """
    if isinstance(value, Variable):
        raise TypeError(f"sg.shared takes a value, not the symbolic variable {value.label()}")
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
    else:
        array = np.asarray(value)
        if array.dtype == np.float64:
            array = array.astype(config.floatX)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"sg.shared holds numbers, not {array.dtype} values")
    if shape is None:
        shape = (None,) * array.ndim
    elif len(shape) != array.ndim:
        raise ShapeError(f"shape={tuple(shape)} does not fit a value of {array.ndim} dimension(s)")
    variable_type = TensorType(array.dtype, tuple(shape))
    # An array made here is ours already; the user's own memory is copied unless borrowed (an
    # ndarray subclass, a memmap say, gives a view of it).
    ours = array is not value and not isinstance(value, np.ndarray)
    return SharedVariable(variable_type, array, name=name, borrow=borrow or ours)
