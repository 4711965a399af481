"""Reductions over axes: sum, prod, max, min, argmax, argmin, and mean, var, std built of them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np

from ..graph.basic import Apply, Variable
from ..graph.op import Op
from ..graph.type import TensorType
from .basic import as_tensor, cast, constant
from .elemwise import eq, mul, true_div
from .shape import broadcast_to, dimshuffle, normalize_axes, shape, shape_at, stack


@cache
def _reduced_dtype(ufunc_name: str, dtype: np.dtype | str) -> np.dtype:
    """The dtype numpy's reduction gives (``sum`` of int8 is int64, for example)."""
    reduce = {"sum": np.sum, "prod": np.prod}.get(ufunc_name)
    if reduce is None:
        return np.dtype(dtype)
    return reduce(np.zeros(1, dtype=dtype)).dtype


def _reduced_shape(shape: tuple, axes: tuple, keepdims: bool) -> tuple:
    if keepdims:
        return tuple(1 if axis in axes else length for axis, length in enumerate(shape))
    return tuple(length for axis, length in enumerate(shape) if axis not in axes)


def _restore_axes(g: Variable, axes: tuple, keepdims: bool, ndim: int) -> Variable:
    """A reduction's output gradient with the reduced axes put back as length-1 axes."""
    if keepdims:
        return g
    pattern: list = []
    remaining = iter(range(g.ndim))
    for axis in range(ndim):
        pattern.append("x" if axis in axes else next(remaining))
    return dimshuffle(g, *pattern)


class Reduce(Op):
    """``sum``, ``prod``, ``max`` or ``min`` over ``axes`` (a tuple, sorted, non-negative)."""

    __props__ = ("kind", "axes", "keepdims")
    _UFUNCS = {"sum": np.add, "prod": np.multiply, "max": np.maximum, "min": np.minimum}

    def __init__(self, kind: str, axes: tuple, keepdims: bool):
        self.kind = kind
        self.axes = tuple(axes)
        self.keepdims = bool(keepdims)

    @property
    def name(self) -> str:
        return self.kind

    def output_types(self, x: TensorType) -> list[TensorType]:
        dtype = _reduced_dtype(self.kind, x.dtype)
        return [TensorType(dtype, _reduced_shape(x.shape, self.axes, self.keepdims))]

    def perform(self, x: np.ndarray) -> np.ndarray:
        reduce = self._UFUNCS[self.kind].reduce
        if self.kind in ("sum", "prod"):
            # (the dtype itself, not its name: numpy 2 builds ``dtype.name`` anew, 2 us a call)
            return reduce(x, axis=self.axes, keepdims=self.keepdims, dtype=_reduced_dtype(self.kind, x.dtype))
        return reduce(x, axis=self.axes, keepdims=self.keepdims)

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        (x,) = node.inputs
        if not x.type.is_float:
            return [None]
        g = _restore_axes(output_grads[0], self.axes, self.keepdims, x.ndim)
        if self.kind == "sum":
            return [cast(broadcast_to(g, shape(x), x.type.shape), x.dtype)]
        if self.kind == "prod":
            return [g * ProductOfOthers(self.axes)(x)]
        # max and min: the gradient goes to the elements equal to the result, shared evenly.
        result = _restore_axes(node.outputs[0], self.axes, self.keepdims, x.ndim)
        winners = eq(x, result)
        ties = cast(Reduce("sum", self.axes, True)(winners), g.dtype)
        return [cast(true_div(g * winners, ties), x.dtype)]


class ProductOfOthers(Op):
    """For each element, the product of the other elements of its reduction group: the gradient
    of ``prod``, exact where the input holds zeros (no division)."""

    __props__ = ("axes",)

    def __init__(self, axes: tuple):
        self.axes = tuple(axes)

    def output_types(self, x: TensorType) -> list[TensorType]:
        return [x]

    def perform(self, x: np.ndarray) -> np.ndarray:
        axes = list(self.axes)
        kept = [axis for axis in range(x.ndim) if axis not in axes]
        moved = np.transpose(x, kept + axes)
        # The group length is given, not -1: numpy cannot infer it for an empty array.
        group = math.prod(moved.shape[len(kept) :])
        if group == 0:
            return np.ones_like(x)  # empty groups: nothing to multiply
        groups = moved.reshape(moved.shape[: len(kept)] + (group,))
        ones = np.ones(groups.shape[:-1] + (1,), dtype=x.dtype)
        before = np.cumprod(np.concatenate([ones, groups[..., :-1]], axis=-1), axis=-1)
        after = np.cumprod(np.concatenate([ones, groups[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
        others = (before * after).reshape(moved.shape)
        return np.transpose(others, np.argsort(kept + axes))


class ArgReduce(Op):
    """``argmax`` or ``argmin`` over one axis (or the flattened array when ``axis`` is None)."""

    __props__ = ("kind", "axis", "keepdims")

    def __init__(self, kind: str, axis: int | None, keepdims: bool):
        self.kind = kind
        self.axis = axis
        self.keepdims = bool(keepdims)

    @property
    def name(self) -> str:
        return self.kind

    def output_types(self, x: TensorType) -> list[TensorType]:
        axes = tuple(range(x.ndim)) if self.axis is None else (self.axis,)
        return [TensorType("int64", _reduced_shape(x.shape, axes, self.keepdims))]

    def perform(self, x: np.ndarray) -> np.ndarray:
        function = np.argmax if self.kind == "argmax" else np.argmin
        return function(x, axis=self.axis, keepdims=self.keepdims)

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        return [None]


def _reduce(kind: str, x: Any, axis: Any, keepdims: bool) -> Variable:
    x = as_tensor(x)
    return Reduce(kind, normalize_axes(axis, x.ndim), keepdims)(x)


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """Sum over ``axis`` (``None``: all axes), numpy's meaning."""
    return _reduce("sum", x, axis, keepdims)


def prod(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """Product over ``axis``."""
    return _reduce("prod", x, axis, keepdims)


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """Maximum over ``axis``; the gradient is shared evenly among tied maxima."""
    return _reduce("max", x, axis, keepdims)


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """Minimum over ``axis``; the gradient is shared evenly among tied minima."""
    return _reduce("min", x, axis, keepdims)


def _arg_reduce(kind: str, x: Any, axis: Any, keepdims: bool) -> Variable:
    x = as_tensor(x)
    if axis is not None:
        if not isinstance(axis, (int, np.integer)):
            raise TypeError(f"{kind} takes one axis (an int) or None, as numpy's does, not {axis!r}")
        (axis,) = normalize_axes(axis, x.ndim)
    return ArgReduce(kind, axis, keepdims)(x)


def argmax(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """Index of the maximum along ``axis`` (of the flattened array when ``None``)."""
    return _arg_reduce("argmax", x, axis, keepdims)


def argmin(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """Index of the minimum along ``axis`` (of the flattened array when ``None``)."""
    return _arg_reduce("argmin", x, axis, keepdims)


def count(x: Variable, axes: tuple) -> Variable:
    """The number of elements over ``axes`` (a constant when static), as an int64 scalar."""
    lengths = [x.type.shape[axis] for axis in axes]
    if None not in lengths:
        return constant(np.int64(math.prod(lengths)))
    if len(axes) == 1:
        return shape_at(x, axes[0])
    return _reduce("prod", stack([shape_at(x, axis) for axis in axes]), None, False)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """Arithmetic mean over ``axis``; integers give float64, as in numpy."""
    x = as_tensor(x)
    axes = normalize_axes(axis, x.ndim)
    total = sum(x if x.type.is_float else cast(x, "float64"), axes, keepdims)
    return true_div(total, cast(count(x, axes), total.dtype))


def var(x: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Variable:
    """Variance over ``axis`` (``ddof=0``: biased, as numpy's default)."""
    x = as_tensor(x)
    axes = normalize_axes(axis, x.ndim)
    centered = x - mean(x, axes, keepdims=True)
    squares = sum(mul(centered, centered), axes, keepdims)
    n = cast(count(x, axes), squares.dtype)
    return true_div(squares, n - ddof if ddof else n)


def std(x: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Variable:
    """Standard deviation over ``axis``."""
    from .elemwise import sqrt

    return sqrt(var(x, axis, keepdims, ddof))
