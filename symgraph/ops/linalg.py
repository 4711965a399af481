"""Products of tensors: ``dot``, ``matmul``, ``outer``, ``tensordot``; numpy's meanings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ShapeError
from ..graph.basic import Apply, Variable
from ..graph.op import Op
from ..graph.type import TensorType, broadcast_static_shapes, format_shape
from .basic import as_tensor, cast, promote_operands
from .elemwise import mul, ufunc_rule
from .shape import dimshuffle, flatten, normalize_axes, sum_to, swapaxes, transpose

_matmul_dtypes = ufunc_rule(np.matmul)


def _check_inner(op: str, x: TensorType, y: TensorType, x_axis: int, y_axis: int) -> None:
    left, right = x.shape[x_axis], y.shape[y_axis]
    if left is not None and right is not None and left != right:
        raise ShapeError(
            f"{op}: shapes {format_shape(x.shape)} and {format_shape(y.shape)} do not fit: "
            f"axis {x_axis} of the first has length {left}, axis {y_axis} of the second {right}"
        )


class Dot(Op):
    """``numpy.dot`` of tensors of at most 2 dimensions: matrix and vector products."""

    def output_types(self, x: TensorType, y: TensorType) -> list[TensorType]:
        dtype = _matmul_dtypes([x.numpy_dtype, y.numpy_dtype])[-1]
        if x.ndim == 0 or y.ndim == 0:
            return [TensorType(dtype, x.shape if y.ndim == 0 else y.shape)]
        _check_inner("dot", x, y, x.ndim - 1, 0)
        return [TensorType(dtype, x.shape[:-1] + y.shape[1:])]

    def perform(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.dot(x, y)

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        x, y = node.inputs
        (g,) = output_grads
        if x.ndim == 0 or y.ndim == 0:
            gx, gy = (g * y).sum() if x.ndim == 0 else g * y, (g * x).sum() if y.ndim == 0 else g * x
        elif x.ndim == 1 and y.ndim == 1:
            gx, gy = g * y, g * x
        elif x.ndim == 2 and y.ndim == 1:
            gx, gy = outer(g, y), dot(transpose(x), g)
        elif x.ndim == 1 and y.ndim == 2:
            gx, gy = dot(y, g), outer(x, g)
        else:
            gx, gy = dot(g, transpose(y)), dot(transpose(x), g)
        return [
            cast(gx, x.dtype) if needed[0] and x.type.is_float else None,
            cast(gy, y.dtype) if needed[1] and y.type.is_float else None,
        ]


class Matmul(Op):
    """``numpy.matmul`` of tensors of 2 or more dimensions, broadcasting the leading axes."""

    def output_types(self, x: TensorType, y: TensorType) -> list[TensorType]:
        dtype = _matmul_dtypes([x.numpy_dtype, y.numpy_dtype])[-1]
        _check_inner("matmul", x, y, x.ndim - 1, y.ndim - 2)
        batch = broadcast_static_shapes(x.shape[:-2], y.shape[:-2])
        return [TensorType(dtype, batch + (x.shape[-2], y.shape[-1]))]

    def perform(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.matmul(x, y)

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        x, y = node.inputs
        (g,) = output_grads
        gx = sum_to(matmul(g, swapaxes(y, -1, -2)), x) if needed[0] and x.type.is_float else None
        gy = sum_to(matmul(swapaxes(x, -1, -2), g), y) if needed[1] and y.type.is_float else None
        return [cast(gx, x.dtype) if gx is not None else None, cast(gy, y.dtype) if gy is not None else None]


class Tensordot(Op):
    """``numpy.tensordot(x, y, axes=(x_axes, y_axes))``."""

    __props__ = ("x_axes", "y_axes")

    def __init__(self, x_axes: tuple, y_axes: tuple):
        self.x_axes = tuple(x_axes)
        self.y_axes = tuple(y_axes)

    def output_types(self, x: TensorType, y: TensorType) -> list[TensorType]:
        dtype = _matmul_dtypes([x.numpy_dtype, y.numpy_dtype])[-1]
        for x_axis, y_axis in zip(self.x_axes, self.y_axes):
            _check_inner("tensordot", x, y, x_axis, y_axis)
        x_free = [x.shape[a] for a in range(x.ndim) if a not in self.x_axes]
        y_free = [y.shape[a] for a in range(y.ndim) if a not in self.y_axes]
        return [TensorType(dtype, tuple(x_free + y_free))]

    def perform(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.tensordot(x, y, axes=(list(self.x_axes), list(self.y_axes)))

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        x, y = node.inputs
        (g,) = output_grads
        x_free = [a for a in range(x.ndim) if a not in self.x_axes]
        y_free = [a for a in range(y.ndim) if a not in self.y_axes]
        g_x_part = list(range(len(x_free)))
        g_y_part = list(range(len(x_free), g.ndim))
        gx = gy = None
        # numpy.tensordot puts the first operand's free axes first, then the second's, each in
        # its own axis order; x_axes[k] pairs with y_axes[k].
        if needed[0] and x.type.is_float:
            raw = Tensordot(tuple(g_y_part), tuple(y_free))(g, y)  # x_free, then the x_axes by y order
            order = x_free + [x_axis for _, x_axis in sorted(zip(self.y_axes, self.x_axes))]
            gx = cast(transpose(raw, [order.index(a) for a in range(x.ndim)]), x.dtype)
        if needed[1] and y.type.is_float:
            raw = Tensordot(tuple(x_free), tuple(g_x_part))(x, g)  # the y_axes by x order, then y_free
            order = [y_axis for _, y_axis in sorted(zip(self.x_axes, self.y_axes))] + y_free
            gy = cast(transpose(raw, [order.index(a) for a in range(y.ndim)]), y.dtype)
        return [gx, gy]


def _product_operands(name: str, x: Any, y: Any) -> tuple[Variable, Variable]:
    x, y = promote_operands(name, [x, y], lambda dtypes: _matmul_dtypes(dtypes)[:2])
    return x, y


def dot(x: Any, y: Any) -> Variable:
    """``numpy.dot``: matrix and vector products; for more dimensions, a sum over the last axis of
    ``x`` and the second-to-last of ``y``."""
    x, y = _product_operands("dot", x, y)
    if x.ndim <= 2 and y.ndim <= 2:
        if x.ndim == 0 or y.ndim == 0:
            return mul(x, y)
        return Dot()(x, y)
    return tensordot(x, y, axes=([x.ndim - 1], [max(y.ndim - 2, 0)]))


def matmul(x: Any, y: Any) -> Variable:
    """``numpy.matmul`` (the ``@`` operator): batched matrix products broadcasting leading axes."""
    x, y = _product_operands("matmul", x, y)
    if x.ndim == 0 or y.ndim == 0:
        raise ShapeError("matmul (@) does not take scalars: use * to scale a tensor")
    if x.ndim <= 2 and y.ndim <= 2:
        return Dot()(x, y)
    if x.ndim == 1:
        return dimshuffle(Matmul()(dimshuffle(x, "x", 0), y), *_drop_axis(y.ndim, -2))
    if y.ndim == 1:
        return dimshuffle(Matmul()(x, dimshuffle(y, 0, "x")), *_drop_axis(x.ndim, -1))
    return Matmul()(x, y)


def _drop_axis(ndim: int, axis: int) -> list[int]:
    axis %= ndim
    return [a for a in range(ndim) if a != axis]


def outer(x: Any, y: Any) -> Variable:
    """``numpy.outer``: the product of every element of ``x`` with every element of ``y``."""
    x, y = as_tensor(x), as_tensor(y)
    x = flatten(x) if x.ndim != 1 else x
    y = flatten(y) if y.ndim != 1 else y
    return mul(dimshuffle(x, 0, "x"), dimshuffle(y, "x", 0))


def tensordot(x: Any, y: Any, axes: Any = 2) -> Variable:
    """``numpy.tensordot``: ``axes`` is a count (the last of ``x`` with the first of ``y``) or a pair
    of axis lists."""
    x, y = _product_operands("tensordot", x, y)
    if isinstance(axes, (int, np.integer)):
        x_axes = tuple(range(x.ndim - axes, x.ndim))
        y_axes = tuple(range(axes))
    else:
        x_list, y_list = axes
        x_list = [x_list] if isinstance(x_list, (int, np.integer)) else list(x_list)
        y_list = [y_list] if isinstance(y_list, (int, np.integer)) else list(y_list)
        if len(x_list) != len(y_list):
            raise ShapeError(f"tensordot axes {axes} pair {len(x_list)} axes with {len(y_list)}")
        x_axes = tuple(normalize_axes(a, x.ndim)[0] for a in x_list)
        y_axes = tuple(normalize_axes(a, y.ndim)[0] for a in y_list)
    return Tensordot(x_axes, y_axes)(x, y)
