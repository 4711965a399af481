"""Indexing: ``x[...]`` with ints, slices, ``None``, ``...`` and integer or boolean arrays, and the
functional assignments ``set_subtensor(x[idx], y)`` / ``inc_subtensor(x[idx], y)``.

An index is kept as a *spec*: one entry per index item, ``("int", ref)``, ``("slice", ref, ref,
ref)``, ``("newaxis",)`` or ``("array", ref)``, where a ``ref`` is ``None``, a Python int, or
``("input", k)`` for the k-th symbolic index input of the node. Basic indexing gives views, as in
numpy; any array in the index makes it advanced indexing (a copy).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import ShapeError
from ..graph.basic import Apply, Constant, Variable
from ..graph.op import Op
from ..graph.type import TensorType, broadcast_static_shapes, format_shape
from .basic import as_tensor, cast
from .shape import Shape, shape_at, sum_to, zeros_like

Spec = tuple


def _is_advanced(spec: Spec) -> bool:
    return any(entry[0] == "array" for entry in spec)


def selects_everything(spec: Spec, ndim: int) -> bool:
    """Whether ``spec`` is ``[:]`` on each axis it names (``x[:]``, ``x[...]``): all of ``x``."""
    return len(spec) <= ndim and all(entry == ("slice", None, None, None) for entry in spec)


def parse_index(x: Variable, index: Any) -> tuple[Spec, list[Variable]]:
    """A Python index for ``x`` as a spec and the symbolic inputs it refers to."""
    items = index if isinstance(index, tuple) else (index,)
    inputs: list[Variable] = []

    def ref(value: Any, what: str) -> Any:
        if value is None:
            return None
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            return int(value)
        variable = as_tensor(value)
        if variable.ndim != 0 or variable.type.numpy_dtype.kind not in "iu":
            raise TypeError(f"a {what} must be an integer scalar, not {variable!r}")
        if isinstance(variable, Constant):
            return int(variable.data)
        inputs.append(variable)
        return ("input", len(inputs) - 1)

    consumed = sum(
        1 if not (item is None or item is Ellipsis) else 0 for item in items if not _is_bool_array(item)
    ) + sum(_bool_ndim(item) for item in items if _is_bool_array(item))
    if sum(item is Ellipsis for item in items) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if consumed > x.ndim:
        raise IndexError(f"too many indices for {x.label()}: it has {x.ndim} dimension(s), {consumed} were indexed")
    spec = []
    for item in items:
        if item is Ellipsis:
            spec.extend([("slice", None, None, None)] * (x.ndim - consumed))
        elif item is None:
            spec.append(("newaxis",))
        elif isinstance(item, slice):
            spec.append(
                ("slice", ref(item.start, "slice bound"), ref(item.stop, "slice bound"), ref(item.step, "slice step"))
            )
        elif isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            spec.append(("int", int(item)))
        else:
            variable = as_tensor(item)
            if variable.type.numpy_dtype.kind not in "iub":
                raise TypeError(f"an index array must hold integers or booleans, not {variable.dtype}")
            if variable.ndim == 0 and variable.type.numpy_dtype.kind != "b":
                spec.append(("int", ref(variable, "index")))
            else:
                inputs.append(variable)
                spec.append(("array", ("input", len(inputs) - 1)))
    return tuple(spec), inputs


def _is_bool_array(item: Any) -> bool:
    if isinstance(item, Variable):
        return item.dtype == "bool"
    return isinstance(item, np.ndarray) and item.dtype == bool


def _bool_ndim(item: Any) -> int:
    return item.ndim


def indexer(spec: Spec) -> Callable[[Sequence[Any]], tuple]:
    """A function from the index inputs' values to the numpy index tuple."""

    def resolve(value: Any) -> Callable[[Sequence[Any]], Any]:
        if isinstance(value, tuple):
            position = value[1]
            return lambda values: int(values[position])
        return lambda values: value

    if not any(isinstance(part, tuple) for entry in spec for part in entry[1:]):
        fixed = tuple(_constant_item(entry) for entry in spec)
        return lambda values: fixed
    makers = []
    for entry in spec:
        if entry[0] == "newaxis":
            makers.append(lambda values: None)
        elif entry[0] == "int":
            makers.append(resolve(entry[1]))
        elif entry[0] == "slice":
            start, stop, step = (resolve(part) for part in entry[1:])
            makers.append(lambda values, a=start, b=stop, c=step: slice(a(values), b(values), c(values)))
        else:
            position = entry[1][1]
            makers.append(lambda values, k=position: values[k])
    return lambda values: tuple(maker(values) for maker in makers)


def _constant_item(entry: tuple) -> Any:
    if entry[0] == "newaxis":
        return None
    if entry[0] == "int":
        return entry[1]
    return slice(*entry[1:])


def _static_shape(x: TensorType, spec: Spec, index_types: Sequence[TensorType]) -> tuple:
    shape: list = []
    advanced: list[tuple] = []
    advanced_at = None
    separated = False
    # Next to an array, numpy treats an integer as an advanced index too (a 0-d array): it takes
    # part in deciding where the advanced axes go.
    integers_are_advanced = _is_advanced(spec)
    axis = 0
    for entry in spec:
        kind = entry[0]
        if kind == "newaxis":
            shape.append(1)
            continue
        if kind == "array" or (kind == "int" and integers_are_advanced):
            if advanced_at is None:
                advanced_at = len(shape)
            elif advanced_at != len(shape):
                separated = True
        if kind == "array":
            index_type = index_types[entry[1][1]]
            if index_type.dtype == "bool":
                for offset in range(index_type.ndim):
                    length, wanted = x.shape[axis + offset], index_type.shape[offset]
                    if None not in (length, wanted) and length != wanted:
                        raise ShapeError(
                            f"a boolean index of shape {format_shape(index_type.shape)} does not fit "
                            f"axis {axis + offset} of length {length}"
                        )
                advanced.append((None,))
                axis += index_type.ndim
            else:
                advanced.append(index_type.shape)
                axis += 1
            continue
        length = x.shape[axis]
        if kind == "int":
            if isinstance(entry[1], int) and length is not None and not -length <= entry[1] < length:
                raise IndexError(f"index {entry[1]} is out of bounds for axis {axis} with length {length}")
        else:
            parts = entry[1:]
            if length is not None and all(not isinstance(part, tuple) for part in parts):
                if parts[2] == 0:
                    raise ValueError("a slice step cannot be zero")
                shape.append(len(range(*slice(*parts).indices(length))))
            elif parts == (None, None, None):
                shape.append(length)
            else:
                shape.append(None)
        axis += 1
    shape.extend(x.shape[axis:])
    if advanced:
        broadcast = broadcast_static_shapes(*advanced)
        position = 0 if separated else advanced_at
        shape[position:position] = list(broadcast)
    return tuple(shape)


class Subtensor(Op):
    """``x[index]``; basic indexing gives a view, advanced indexing a copy."""

    __props__ = ("spec",)

    def __init__(self, spec: Spec):
        self.spec = spec
        self.view_map = {} if _is_advanced(spec) else {0: 0}

    @property
    def name(self) -> str:
        return "advanced_subtensor" if _is_advanced(self.spec) else "subtensor"

    def output_types(self, x: TensorType, *index_types: TensorType) -> list[TensorType]:
        return [TensorType(x.dtype, _static_shape(x, self.spec, index_types))]

    def perform(self, x: np.ndarray, *values: Any) -> np.ndarray:
        return x[indexer(self.spec)(values)]

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        x, *index_inputs = node.inputs
        gx = None
        if needed[0] and x.type.is_float and selects_everything(self.spec, x.ndim):
            gx = output_grads[0]  # x[:] is x
        elif needed[0] and x.type.is_float:
            gx = IncSubtensor(self.spec, "inc")(zeros_like(x), output_grads[0], *index_inputs)
        return [gx] + [None] * len(index_inputs)


class IncSubtensor(Op):
    """A copy of ``x`` with ``x[index]`` set to (``mode='set'``) or increased by (``'inc'``) ``y``.

    Repeated indices add up in ``'inc'`` mode (``numpy.add.at``).
    """

    __props__ = ("spec", "mode")

    def __init__(self, spec: Spec, mode: str):
        self.spec = spec
        self.mode = mode

    @property
    def name(self) -> str:
        return f"{self.mode}_subtensor"

    def output_types(self, x: TensorType, y: TensorType, *index_types: TensorType) -> list[TensorType]:
        target = _static_shape(x, self.spec, index_types)
        try:
            broadcast = broadcast_static_shapes(target, y.shape)
        except ShapeError:
            broadcast = None
        if (
            broadcast is None
            or len(y.shape) > len(target)
            or (
                len(broadcast) == len(target)
                and any(b is not None and t is not None and b != t for b, t in zip(broadcast, target))
            )
        ):
            raise ShapeError(
                f"{self.name}: a value of shape {format_shape(y.shape)} cannot be written into "
                f"x[index] of shape {format_shape(target)}"
            )
        return [x]

    def perform(self, x: np.ndarray, y: np.ndarray, *values: Any) -> np.ndarray:
        return self.writer(inplace=False)(x, y, *values)

    def writer(self, inplace: bool) -> Callable[..., np.ndarray]:
        """The computation, writing into ``x`` itself when ``inplace``."""
        index_of = indexer(self.spec)
        mode = self.mode
        accumulate = _is_advanced(self.spec)

        def write(x: np.ndarray, y: np.ndarray, *values: Any) -> np.ndarray:
            out = x if inplace else x.copy()
            index = index_of(values)
            if mode == "set":
                out[index] = y
            elif accumulate:
                np.add.at(out, index, y)
            else:
                out[index] += y
            return out

        return write

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        x, y, *index_inputs = node.inputs
        (g,) = output_grads
        gx = gy = None
        if needed[0] and x.type.is_float:
            gx = g if self.mode == "inc" else IncSubtensor(self.spec, "set")(g, zeros_like(y), *index_inputs)
        if needed[1] and y.type.is_float:
            gy = cast(sum_to(Subtensor(self.spec)(g, *index_inputs), y), y.dtype)
        return [gx, gy] + [None] * len(index_inputs)


def static_index(node: Apply) -> tuple | None:
    """The numpy index of an ``IncSubtensor`` node made of fixed ints and slices only."""
    if len(node.inputs) != 2:
        return None
    for entry in node.op.spec:
        if entry[0] not in ("int", "slice") or any(isinstance(part, tuple) for part in entry[1:]):
            return None
    return indexer(node.op.spec)(())


def index_box(index: tuple, shape: tuple) -> tuple[range, ...] | None:
    """The elements a fixed basic ``index`` (of :func:`static_index`) selects in an array of the
    static ``shape``, as one range per axis (``None``: out of bounds, or not ints and slices)."""
    if len(index) > len(shape):
        return None
    box = []
    for item, length in zip(index, shape):
        if isinstance(item, slice):
            box.append(range(*item.indices(length)))
        elif isinstance(item, int) and -length <= item < length:
            box.append(range(item % length, item % length + 1))
        else:
            return None
    return tuple(box) + tuple(range(length) for length in shape[len(index) :])


def pairwise_disjoint(boxes: Sequence[tuple[range, ...]]) -> bool:
    """Whether no two of ``boxes`` (of :func:`index_box`) provably share an element."""
    return all(boxes_disjoint(box, other) for k, box in enumerate(boxes) for other in boxes[k + 1 :])


def boxes_disjoint(first: tuple[range, ...], second: tuple[range, ...]) -> bool:
    """Whether two boxes of :func:`index_box` provably share no element (strided ranges that might
    interleave count as sharing, unless short enough to compare)."""
    for a, b in zip(first, second):
        if not a or not b:
            return True
        if a.step == 1 and b.step == 1:
            if max(a.start, b.start) >= min(a.stop, b.stop):
                return True
        elif len(a) * len(b) <= 1 << 16 and not set(a) & set(b):
            return True
    return False


def subtensor(x: Variable, index: Any) -> Variable:
    """``x[index]`` (what ``Variable.__getitem__`` builds)."""
    if (
        x.owner is not None
        and isinstance(x.owner.op, Shape)
        and isinstance(index, (int, np.integer))
        and not isinstance(index, bool)
    ):
        return shape_at(x.owner.inputs[0], int(index))
    spec, inputs = parse_index(x, index)
    # Even ``x[:]`` is a node: ``set_subtensor(x[:], y)`` needs to see what was indexed.
    return Subtensor(spec)(x, *inputs)


def take_along(x: Variable, axis: int, position: int) -> Variable:
    """``x`` at index ``position`` of ``axis`` (that axis removed)."""
    return subtensor(x, (slice(None),) * axis + (position,))


def _assign(mode: str, target: Variable, value: Any) -> Variable:
    owner = target.owner
    if owner is None or not isinstance(owner.op, Subtensor):
        raise TypeError(
            f"{mode}_subtensor takes an indexed variable, such as x[0] or x[idx], as its first "
            f"argument; {target.label()} is not one"
        )
    x, *index_inputs = owner.inputs
    value = as_tensor(value)
    if value.dtype != x.dtype:
        value = cast(value, x.dtype)
    return IncSubtensor(owner.op.spec, mode)(x, value, *index_inputs)


def set_subtensor(target: Variable, value: Any) -> Variable:
    """A copy of ``x`` with ``x[idx]`` replaced by ``value``: ``sg.set_subtensor(x[idx], value)``."""
    return _assign("set", target, value)


def inc_subtensor(target: Variable, value: Any) -> Variable:
    """A copy of ``x`` with ``value`` added at ``x[idx]``; repeated indices add up (``numpy.add.at``)."""
    return _assign("inc", target, value)
