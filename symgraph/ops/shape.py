"""Shape operations: shapes, reshaping, axes, broadcasting, joining and splitting.

Also the one helper every gradient uses to undo broadcasting, :func:`sum_to`, and the one that
normalises an ``axis`` argument, :func:`normalize_axes`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..config import config
from ..errors import DTypeError, ShapeError
from ..graph.basic import Apply, Constant, Variable
from ..graph.op import Op
from ..graph.source import in_scope
from ..graph.type import TensorType, format_shape
from .basic import as_tensor, cast, constant


def normalize_axes(axis: Any, ndim: int, what: str = "axis") -> tuple[int, ...]:
    """``axis`` (``None``, an int or a sequence, negatives counting from the end) as sorted,
    non-negative axes; ``None`` means every axis."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axes = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        raise TypeError(f"{what} must be None, an int or a tuple of ints, not {axis!r}")
    normalized = []
    for item in axes:
        if not isinstance(item, (int, np.integer)) or isinstance(item, bool):
            raise TypeError(f"{what} must be an int or a tuple of ints, not {axis!r}")
        if not -ndim <= item < ndim:
            raise ShapeError(f"{what} {item} is out of range for a tensor of {ndim} dimension(s)")
        normalized.append(int(item) % ndim)
    if len(set(normalized)) != len(normalized):
        raise ShapeError(f"{what} {axis!r} repeats an axis")
    return tuple(sorted(normalized))


def static_shape_value(shape: Variable) -> tuple[int | None, ...] | None:
    """The entries of a symbolic shape vector that are known when building, or ``None``."""
    if isinstance(shape, Constant):
        return tuple(int(length) for length in shape.data)
    if shape.owner is not None and isinstance(shape.owner.op, Shape):
        return shape.owner.inputs[0].type.shape
    if shape.owner is not None and isinstance(shape.owner.op, Stack) and shape.owner.op.axis == 0:
        return tuple(
            int(item.data) if isinstance(item, Constant) else _static_shape_entry(item) for item in shape.owner.inputs
        )
    return (None,) * shape.type.shape[0] if shape.type.shape[0] is not None else None


def _static_shape_entry(item: Variable) -> int | None:
    owner = item.owner
    if owner is not None and isinstance(owner.op, ShapeAt):
        return owner.inputs[0].type.shape[owner.op.axis]
    return None


def static_size(size: Variable, what: str) -> tuple[int | None, ...]:
    """The static shape of an array drawn or made with the shape ``size``, which must have a known
    number of entries (the array's number of dimensions)."""
    static = static_shape_value(size)
    if static is None:
        raise ShapeError(
            f"{what}: the size {size.label()} ({size.type.describe()}) has an unknown number of entries, "
            "so the result's number of dimensions would be unknown; give a tuple of lengths instead"
        )
    return static


def as_shape(shape: Any) -> Variable:
    """A shape given as ints, symbolic scalars, or a symbolic vector, as an int64 vector."""
    if isinstance(shape, Variable):
        if shape.ndim == 0:
            shape = [shape]
        else:
            if shape.ndim != 1 or shape.type.numpy_dtype.kind not in "iu":
                raise TypeError(f"a shape is a vector of integers, not {shape!r}")
            return shape
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    if not isinstance(shape, (tuple, list, np.ndarray)):
        raise TypeError(f"a shape is an int, a tuple of ints and symbolic scalars, or a symbolic vector, not {shape!r}")
    items = list(shape)
    if all(isinstance(item, (int, np.integer)) for item in items):
        return constant(np.array(items, dtype=np.int64))
    variables = []
    for item in items:
        item = as_tensor(item) if not isinstance(item, (int, np.integer)) else constant(np.int64(item))
        if item.ndim != 0 or item.type.numpy_dtype.kind not in "iu":
            raise TypeError(f"each length of a shape must be an integer scalar, not {item!r}")
        variables.append(cast(item, "int64"))
    return stack(variables)


# --- shapes -----------------------------------------------------------------------------------
class Shape(Op):
    """``x.shape`` as an int64 vector."""

    reads_only_shape = True

    def output_types(self, x: TensorType) -> list[TensorType]:
        return [TensorType("int64", (x.ndim,))]

    def perform(self, x: np.ndarray) -> np.ndarray:
        return np.array(x.shape, dtype=np.int64)

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        return [None]


class ShapeAt(Op):
    """``x.shape[axis]`` as an int64 scalar."""

    __props__ = ("axis",)
    reads_only_shape = True

    def __init__(self, axis: int):
        self.axis = axis

    def output_types(self, x: TensorType) -> list[TensorType]:
        return [TensorType("int64", ())]

    def perform(self, x: np.ndarray) -> np.ndarray:
        return np.int64(x.shape[self.axis])

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        return [None]


def shape(x: Any) -> Variable:
    """The shape of ``x`` as a symbolic int64 vector (a constant when every length is static)."""
    x = as_tensor(x)
    if None not in x.type.shape:
        return constant(np.array(x.type.shape, dtype=np.int64))
    return Shape()(x)


def shape_at(x: Variable, axis: int) -> Variable:
    """``x.shape[axis]`` (a constant when static)."""
    (axis,) = normalize_axes(axis, x.ndim)
    if x.type.shape[axis] is not None:
        return constant(np.int64(x.type.shape[axis]))
    return ShapeAt(axis)(x)


# --- undoing broadcasting ---------------------------------------------------------------------
class SumTo(Op):
    """A gradient summed back to the shape of the variable it belongs to (undoes broadcasting).

    Sums the leading axes the variable lacks and the axes where the variable has length 1 and the
    gradient does not, whether or not that length 1 was declared.
    """

    __props__ = ("static_shape",)
    view_map = {0: 0}

    def __init__(self, static_shape: tuple):
        self.static_shape = tuple(static_shape)

    def output_types(self, g: TensorType, target: TensorType) -> list[TensorType]:
        return [TensorType(g.dtype, self.static_shape)]

    def perform(self, g: np.ndarray, target: np.ndarray) -> np.ndarray:
        return self.summer(g.ndim)(g, target)

    def summer(self, g_ndim: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """The sum for gradients of ``g_ndim`` dimensions. What the static shapes settle is settled
        here, once: the leading axes to sum, and the axes that cannot be 1 (whose length is known
        and larger); only the others are tested when it runs. Gradients of bias-adds take this path
        on every training step."""
        lead = g_ndim - len(self.static_shape)
        lead_axes = tuple(range(lead))
        maybe_one = tuple(axis for axis, length in enumerate(self.static_shape) if length in (None, 1))
        reduce = np.add.reduce

        def sum_to(g: np.ndarray, target: np.ndarray) -> np.ndarray:
            axes = lead_axes + tuple(
                lead + axis for axis in maybe_one if target[axis] == 1 and g.shape[lead + axis] != 1
            )
            if not axes:
                return g
            if len(axes) == lead:  # only leading axes: no length-1 axis to keep
                return reduce(g, axis=axes)
            return reduce(g, axis=axes, keepdims=True).reshape(tuple(target.tolist()))

        return sum_to

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        g, _ = node.inputs
        return [broadcast_to(output_grads[0], shape(g), g.type.shape), None]


def sum_to(gradient: Variable, like: Variable) -> Variable:
    """``gradient`` summed to the shape of ``like``: undoes the broadcasting of ``like``."""
    g_shape, like_shape = gradient.type.shape, like.type.shape
    if len(g_shape) == len(like_shape) and all(
        target is not None and (target != 1 or length == 1) for target, length in zip(like_shape, g_shape)
    ):
        return gradient
    return SumTo(like_shape)(gradient, shape(like))


class BroadcastTo(Op):
    """``numpy.broadcast_to(x, shape)``: a read-only view."""

    __props__ = ("static_shape",)
    view_map = {0: 0}
    read_only_output = True

    def __init__(self, static_shape: tuple):
        self.static_shape = tuple(static_shape)

    def output_types(self, x: TensorType, target: TensorType) -> list[TensorType]:
        return [TensorType(x.dtype, self.static_shape)]

    def perform(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        return np.broadcast_to(x, tuple(target.tolist()))

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        return [sum_to(output_grads[0], node.inputs[0]), None]


def broadcast_to(x: Any, target_shape: Any, static: tuple | None = None) -> Variable:
    """``x`` broadcast to ``target_shape`` (ints, symbolic scalars or a symbolic vector)."""
    x = as_tensor(x)
    target = as_shape(target_shape)
    if static is None:
        static = static_shape_value(target) or (None,) * target.type.shape[0]
    if x.type.shape == tuple(static) and None not in static:
        return x
    return BroadcastTo(tuple(static))(x, target)


class Alloc(Op):
    """An array of ``shape`` filled with the scalar ``value`` (``numpy.full``)."""

    __props__ = ("dtype", "static_shape")

    def __init__(self, dtype: str, static_shape: tuple):
        self.dtype = dtype
        self.static_shape = tuple(static_shape)

    def output_types(self, value: TensorType, target: TensorType) -> list[TensorType]:
        return [TensorType(self.dtype, self.static_shape)]

    def perform(self, value: np.ndarray, target: np.ndarray) -> np.ndarray:
        return np.full(tuple(target.tolist()), value, dtype=self.dtype)

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        value = node.inputs[0]
        if not value.type.is_float:
            return [None, None]
        return [cast(output_grads[0].sum(), value.dtype), None]


class AllocEmpty(Op):
    """An array of ``shape`` whose every element is written before anything reads it: what the
    rewrites put under assignments that together cover the whole array (the slices of a gradient
    written into zeros). Its reference computation gives zeros, so that no result ever depends on
    old memory; the numpy backend allocates it uninitialized (``numpy.empty``)."""

    __props__ = ("dtype", "static_shape")

    def __init__(self, dtype: str, static_shape: tuple):
        self.dtype = dtype
        self.static_shape = tuple(static_shape)

    def output_types(self, target: TensorType) -> list[TensorType]:
        return [TensorType(self.dtype, self.static_shape)]

    def perform(self, target: np.ndarray) -> np.ndarray:
        return np.zeros(tuple(target.tolist()), dtype=self.dtype)

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        return [None]


def full(target_shape: Any, value: Any, dtype: Any = None) -> Variable:
    """An array of ``target_shape`` filled with the scalar ``value``."""
    target = as_shape(target_shape)
    value = as_tensor(value)
    if value.ndim != 0:
        raise ShapeError(f"the fill value must be a scalar, got {value!r}")
    if dtype is None:  # a symbolic fill value gives its dtype; a number gives floatX
        dtype = config.floatX if isinstance(value, Constant) else value.dtype
    dtype = np.dtype(dtype).name
    static = static_shape_value(target) or (None,) * target.type.shape[0]
    return Alloc(dtype, tuple(static))(value, target)


def alloc(value: Any, *target_shape: Any) -> Variable:
    """Theano's ``alloc``: ``value`` (a number or a tensor) broadcast to the shape given by the
    other arguments (ints or symbolic scalars): ``sg.alloc(0.0, n, 10)``. The dtype is
    ``value``'s (a Python float gives floatX, an int ``int64``)."""
    if len(target_shape) == 1 and isinstance(target_shape[0], (tuple, list)):
        target_shape = tuple(target_shape[0])
    value = as_tensor(value)
    if value.ndim > len(target_shape):
        raise ShapeError(
            f"alloc: a value of {value.ndim} dimension(s) ({value.type.describe()}) cannot fill a shape "
            f"of {len(target_shape)}"
        )
    if value.ndim == 0:
        return full(target_shape, value, value.dtype)
    return broadcast_to(value, target_shape)


def zeros(target_shape: Any, dtype: Any = None) -> Variable:
    """An array of zeros (floatX unless ``dtype``)."""
    return full(target_shape, constant(0), dtype)


def ones(target_shape: Any, dtype: Any = None) -> Variable:
    """An array of ones (floatX unless ``dtype``)."""
    return full(target_shape, constant(1), dtype)


def zeros_like(x: Any, dtype: Any = None) -> Variable:
    """Zeros of ``x``'s shape, and of its dtype unless ``dtype``."""
    x = as_tensor(x)
    return full(shape(x), constant(0), dtype or x.dtype)


def ones_like(x: Any, dtype: Any = None) -> Variable:
    """Ones of ``x``'s shape, and of its dtype unless ``dtype``."""
    x = as_tensor(x)
    return full(shape(x), constant(1), dtype or x.dtype)


# --- reshaping and axes -----------------------------------------------------------------------
class Reshape(Op):
    """``x.reshape(shape)``; ``shape`` may hold one ``-1``."""

    __props__ = ("static_shape",)
    view_map = {0: 0}

    def __init__(self, static_shape: tuple):
        self.static_shape = tuple(static_shape)

    def output_types(self, x: TensorType, target: TensorType) -> list[TensorType]:
        return [TensorType(x.dtype, self.static_shape)]

    def perform(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        return x.reshape(tuple(target.tolist()))

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        x = node.inputs[0]
        return [reshape(output_grads[0], shape(x)), None]


class SpecifyLength(Op):
    """A vector itself, with its length (checked when the function runs) made static."""

    __props__ = ("length",)
    view_map = {0: 0}

    def __init__(self, length: int):
        self.length = length

    def output_types(self, vector: TensorType) -> list[TensorType]:
        return [TensorType(vector.dtype, (self.length,))]

    def perform(self, vector: np.ndarray) -> np.ndarray:
        if vector.shape != (self.length,):
            raise ValueError(f"expected {self.length} entries, got shape {vector.shape}")
        return vector

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        return [output_grads[0]]


class SpecifyShape(Op):
    """A tensor itself, with the lengths given (``None``: unknown) made static, checked when the
    function runs."""

    __props__ = ("shape",)
    view_map = {0: 0}

    def __init__(self, shape: tuple):
        self.shape = tuple(shape)

    def output_types(self, x: TensorType) -> list[TensorType]:
        if len(self.shape) != x.ndim:
            raise ShapeError(f"a shape of {len(self.shape)} entries cannot describe {x.describe()}")
        for static, given in zip(x.shape, self.shape):
            if static is not None and given is not None and static != given:
                raise ShapeError(f"the shape {format_shape(self.shape)} contradicts {x.describe()}")
        return [TensorType(x.dtype, tuple(g if g is not None else s for s, g in zip(x.shape, self.shape)))]

    def perform(self, x: np.ndarray) -> np.ndarray:
        if any(given is not None and given != actual for given, actual in zip(self.shape, x.shape)):
            raise ValueError(f"expected shape {format_shape(self.shape)}, got {x.shape}")
        return x

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        return [output_grads[0]]


def specify_shape(x: Variable, lengths: Sequence[int | None]) -> Variable:
    """``x`` with the given lengths (ints, or ``None`` for unknown) made static, and checked when
    the function runs; ``x`` itself when they add nothing."""
    lengths = tuple(None if length is None else int(length) for length in lengths)
    node_type = SpecifyShape(lengths).output_types(x.type)[0]
    return x if node_type == x.type else SpecifyShape(lengths)(x)


def reshape(x: Any, new_shape: Any, ndim: int | None = None) -> Variable:
    """``x`` with a new shape of the same size: ints, symbolic scalars or a symbolic vector, with
    at most one ``-1``. ``ndim`` is the number of dimensions, needed (as in Theano) only when the
    shape is a symbolic vector whose length is not known while building."""
    x = as_tensor(x)
    target = as_shape(new_shape)
    length = target.type.shape[0]
    if ndim is not None and length is not None and ndim != length:
        raise ShapeError(f"reshape: ndim={ndim}, but the shape has {length} entries")
    length = length if length is not None else ndim
    if length is None:
        raise ShapeError("reshape needs to know the number of dimensions: give a shape of known length, or ndim=")
    if target.type.shape[0] is None:
        target = SpecifyLength(length)(target)
    static = list(static_shape_value(target) or (None,) * length)
    if static.count(-1) > 1:
        raise ShapeError(f"reshape: at most one length may be -1, got {tuple(static)}")
    known_size = None if None in x.type.shape else math.prod(x.type.shape)
    if -1 in static:
        rest = [length for length in static if length != -1]
        position = static.index(-1)
        if known_size is not None and None not in rest and math.prod(rest) > 0:
            static[position] = known_size // math.prod(rest)
        else:
            static[position] = None
    if known_size is not None and None not in static and math.prod(static) != known_size:
        raise ShapeError(
            f"cannot reshape {x.label()} of shape {format_shape(x.type.shape)} "
            f"({known_size} elements) into {format_shape(static)}"
        )
    if tuple(static) == x.type.shape and None not in static:
        return x
    return Reshape(tuple(static))(x, target)


def flatten(x: Any, ndim: int = 1) -> Variable:
    """``x`` with its trailing axes merged so that it has ``ndim`` dimensions (Theano's meaning)."""
    x = as_tensor(x)
    if not 1 <= ndim <= max(x.ndim, 1):
        raise ShapeError(f"flatten to {ndim} dimension(s) is impossible for {x.label()} of {x.ndim}")
    if ndim == 1:
        return reshape(x, [-1])
    with in_scope("flatten"):  # one box in pictures: the lengths it reads and multiplies, the reshape
        kept = [shape_at(x, axis) for axis in range(ndim - 1)]
        # Not -1: numpy cannot infer it when a kept length is 0 (an empty batch); the product can.
        trailing = x.type.shape[ndim - 1 :]
        if None not in trailing:
            return reshape(x, kept + [math.prod(trailing)])
        from .elemwise import mul  # elemwise imports this module

        merged = shape_at(x, ndim - 1)
        for axis in range(ndim, x.ndim):
            merged = mul(merged, shape_at(x, axis))
        return reshape(x, kept + [merged])


class DimShuffle(Op):
    """Theano's dimshuffle: reorder axes, insert broadcastable ones (``'x'``), drop length-1 ones."""

    __props__ = ("input_ndim", "pattern")
    view_map = {0: 0}

    def __init__(self, input_ndim: int, pattern: Sequence):
        pattern = tuple(pattern)
        kept = [axis for axis in pattern if axis != "x"]
        if any(not isinstance(axis, int) or not 0 <= axis < input_ndim for axis in kept) or len(set(kept)) != len(kept):
            raise ShapeError(
                f"dimshuffle pattern {pattern} does not fit a tensor of {input_ndim} dimension(s): "
                "use each axis 0..ndim-1 at most once, and 'x' for new axes"
            )
        self.input_ndim = input_ndim
        self.pattern = pattern
        self.dropped = tuple(axis for axis in range(input_ndim) if axis not in kept)
        self.permutation = tuple(kept)
        self.expansion = tuple(None if axis == "x" else slice(None) for axis in pattern)
        # The order of operations: drop the length-1 axes, reorder the rest, insert new ones.
        kept_order = [axis for axis in range(input_ndim) if axis not in self.dropped]
        self.order = tuple(kept_order.index(axis) for axis in self.permutation)

    @property
    def name(self) -> str:
        if "x" not in self.pattern and not self.dropped:
            return "transpose"
        return "dimshuffle"

    def output_types(self, x: TensorType) -> list[TensorType]:
        for axis in self.dropped:
            if x.shape[axis] not in (1, None):
                raise ShapeError(
                    f"dimshuffle {self.pattern} drops axis {axis} of a tensor of shape "
                    f"{format_shape(x.shape)}, but only axes of length 1 can be dropped"
                )
        return [TensorType(x.dtype, tuple(1 if axis == "x" else x.shape[axis] for axis in self.pattern))]

    def perform(self, x: np.ndarray) -> np.ndarray:
        if self.dropped:
            x = np.squeeze(x, axis=self.dropped)
        if self.order != tuple(range(len(self.order))):
            x = x.transpose(self.order)
        return x[self.expansion] if None in self.expansion else x

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        (g,) = output_grads
        # Drop the inserted axes, then put the input's axes back in order, with its dropped
        # (length-1) axes restored as new ones.
        kept_positions = [position for position, axis in enumerate(self.pattern) if axis != "x"]
        collapsed = dimshuffle(g, *kept_positions)
        back = ["x" if axis in self.dropped else self.permutation.index(axis) for axis in range(self.input_ndim)]
        return [dimshuffle(collapsed, *back)]


def dimshuffle(x: Any, *pattern: Any) -> Variable:
    """Theano's ``x.dimshuffle(...)``: e.g. ``(1, 0)`` transposes, ``('x', 0)`` makes a row."""
    x = as_tensor(x)
    if len(pattern) == 1 and isinstance(pattern[0], (list, tuple)):
        pattern = tuple(pattern[0])
    pattern = tuple(axis if axis == "x" else int(axis) for axis in pattern)
    if pattern == tuple(range(x.ndim)):
        return x
    return DimShuffle(x.ndim, pattern)(x)


def transpose(x: Any, axes: Sequence[int] | None = None) -> Variable:
    """``numpy.transpose``: axes reversed, or permuted as ``axes`` says."""
    x = as_tensor(x)
    if axes is None:
        axes = tuple(reversed(range(x.ndim)))
    axes = tuple(normalize_axes(axis, x.ndim, "transpose axis")[0] for axis in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ShapeError(f"transpose axes {axes} are not a permutation of the {x.ndim} axes")
    return dimshuffle(x, *axes)


def expand_dims(x: Any, axis: int) -> Variable:
    """``numpy.expand_dims``: ``x`` with a new length-1 axis at position ``axis`` of the result."""
    x = as_tensor(x)
    (axis,) = normalize_axes(axis, x.ndim + 1)
    pattern: list = list(range(x.ndim))
    pattern.insert(axis, "x")
    return dimshuffle(x, *pattern)


def swapaxes(x: Variable, first: int, second: int) -> Variable:
    """``numpy.swapaxes``: ``x`` with two axes exchanged."""
    axes = list(range(x.ndim))
    (first,), (second,) = normalize_axes(first, x.ndim), normalize_axes(second, x.ndim)
    axes[first], axes[second] = axes[second], axes[first]
    return dimshuffle(x, *axes)


# --- joining and splitting --------------------------------------------------------------------
class Join(Op):
    """``numpy.concatenate(inputs, axis)``."""

    __props__ = ("axis",)

    def __init__(self, axis: int):
        self.axis = axis

    def output_types(self, *types: TensorType) -> list[TensorType]:
        ndim = types[0].ndim
        dtype = np.result_type(*[t.numpy_dtype for t in types])
        shape = []
        for axis in range(ndim):
            lengths = [t.shape[axis] for t in types]
            if axis == self.axis:
                shape.append(None if None in lengths else sum(lengths))
                continue
            known = {length for length in lengths if length is not None}
            if len(known) > 1:
                raise ShapeError(
                    "concatenate: shapes "
                    + ", ".join(format_shape(t.shape) for t in types)
                    + f" differ on axis {axis}, which is not the joining axis {self.axis}"
                )
            shape.append(known.pop() if known else None)
        return [TensorType(dtype, tuple(shape))]

    def perform(self, *arrays: np.ndarray) -> np.ndarray:
        return np.concatenate(arrays, axis=self.axis)

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        sizes = stack([shape_at(x, self.axis) for x in node.inputs])
        pieces = Split(self.axis, len(node.inputs))(output_grads[0], sizes)
        pieces = [pieces] if isinstance(pieces, Variable) else pieces
        return [cast(piece, x.dtype) if x.type.is_float else None for piece, x in zip(pieces, node.inputs)]


class Split(Op):
    """``x`` cut along ``axis`` into pieces of the given lengths (views)."""

    __props__ = ("axis", "count")

    def __init__(self, axis: int, count: int):
        self.axis = axis
        self.count = count
        self.view_map = {index: 0 for index in range(count)}

    def output_types(self, x: TensorType, sizes: TensorType) -> list[TensorType]:
        shape = list(x.shape)
        shape[self.axis] = None
        return [TensorType(x.dtype, tuple(shape))] * self.count

    def perform(self, x: np.ndarray, sizes: np.ndarray) -> tuple:
        if int(sizes.sum()) != x.shape[self.axis]:
            raise ValueError(f"split lengths {sizes.tolist()} do not add up to {x.shape[self.axis]}")
        return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=self.axis))

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        _x, _sizes = node.inputs
        pieces = [g if g is not None else zeros_like(output) for g, output in zip(output_grads, node.outputs)]
        return [concatenate(pieces, axis=self.axis), None]


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Variable:
    """``numpy.concatenate``: tensors of equal dimensions joined along ``axis``."""
    tensors = [as_tensor(tensor) for tensor in tensors]
    if not tensors:
        raise ValueError("concatenate needs at least one tensor")
    ndims = {tensor.ndim for tensor in tensors}
    if len(ndims) != 1 or 0 in ndims:
        raise ShapeError(
            "concatenate takes tensors of one number of dimensions (at least 1), got "
            + ", ".join(f"{t.label()} ({t.ndim})" for t in tensors)
        )
    (axis,) = normalize_axes(axis, tensors[0].ndim)
    if len(tensors) == 1:
        return tensors[0]
    return Join(axis)(*tensors)


class Stack(Op):
    """``numpy.stack(inputs, axis)``: tensors of one shape along a new axis."""

    __props__ = ("axis",)

    def __init__(self, axis: int):
        self.axis = axis

    def output_types(self, *types: TensorType) -> list[TensorType]:
        dtype = np.result_type(*[t.numpy_dtype for t in types])
        shape = []
        for axis in range(types[0].ndim):
            known = {t.shape[axis] for t in types if t.shape[axis] is not None}
            if len(known) > 1:
                raise ShapeError("stack: shapes " + ", ".join(format_shape(t.shape) for t in types) + " differ")
            shape.append(known.pop() if known else None)
        shape.insert(self.axis, len(types))
        return [TensorType(dtype, tuple(shape))]

    def perform(self, *arrays: np.ndarray) -> np.ndarray:
        if np.ndim(arrays[0]) == 0:
            return np.array(arrays, dtype=np.result_type(*arrays))
        return np.stack(arrays, axis=self.axis)

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        from .subtensor import take_along

        (g,) = output_grads
        return [
            cast(take_along(g, self.axis, index), x.dtype) if x.type.is_float else None
            for index, x in enumerate(node.inputs)
        ]


def stack(tensors: Sequence[Any], axis: int = 0) -> Variable:
    """``numpy.stack``: tensors of one shape joined along a new axis."""
    tensors = [as_tensor(tensor) for tensor in tensors]
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    ndims = {tensor.ndim for tensor in tensors}
    if len(ndims) != 1:
        raise ShapeError("stack takes tensors of one number of dimensions")
    (axis,) = normalize_axes(axis, tensors[0].ndim + 1)
    if all(isinstance(t, Constant) for t in tensors):
        return constant(np.stack([t.data for t in tensors], axis=axis))
    return Stack(axis)(*tensors)


class ARange(Op):
    """``numpy.arange(start, stop, step)`` of scalars, as a vector of ``dtype``."""

    __props__ = ("dtype",)

    def __init__(self, dtype: str = "int64"):
        self.dtype = dtype

    def output_types(self, start: TensorType, stop: TensorType, step: TensorType) -> list[TensorType]:
        for what, bound in (("start", start), ("stop", stop), ("step", step)):
            if bound.ndim != 0:
                raise ShapeError(f"arange: {what} must be a scalar, not {bound.describe()}")
            if bound.numpy_dtype.kind not in "iuf":
                raise DTypeError(f"arange takes numbers as bounds, but {what} is {bound.describe()}")
        return [TensorType(self.dtype, (None,))]

    def perform(self, start: Any, stop: Any, step: Any) -> np.ndarray:
        if step == 0:
            raise ValueError("arange: step must not be zero")
        return np.arange(start, stop, step, dtype=self.dtype)

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        return [None, None, None]


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None) -> Variable:
    """``numpy.arange`` (Theano's signature) for bounds that may be symbolic scalars
    (``sg.arange(x.shape[0])``). ``dtype=None``: ``int64`` for integer bounds, otherwise the bounds'
    float dtype (floatX for Python floats, which are weak as in numpy 2)."""
    if stop is None:
        start, stop = 0, start
    raw = (start, stop, step)
    bounds = [as_tensor(np.int64(b)) if isinstance(b, (int, np.integer)) else as_tensor(b) for b in raw]
    if dtype is None:
        strong = [b.type.numpy_dtype for b, r in zip(bounds, raw) if b.type.is_float and not isinstance(r, float)]
        if strong:
            dtype = np.result_type(*strong)
        else:
            dtype = config.floatX if any(isinstance(r, float) for r in raw) else "int64"
    return ARange(np.dtype(dtype).name)(*bounds)
