"""Algebraic simplifications that never change a result: ``x * 1``, ``x + 0``, ``-(-x)``, two
dimshuffles in a row, ``x[:]``, sums of slices written into the same zeros, slices added into zeros
written instead, and an array all of whose elements are written anew never filled first. (The
predict phase of inverted dropout leaves ``x * 1``: this removes it.)"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..graph.basic import Apply, Constant, Variable
from ..ops.basic import as_tensor
from ..ops.elemwise import add, mul, neg, sub, true_div
from ..ops.shape import Alloc, AllocEmpty, DimShuffle, Shape, ShapeAt, SumTo, dimshuffle, static_shape_value
from ..ops.subtensor import (
    IncSubtensor,
    Subtensor,
    boxes_disjoint,
    index_box,
    pairwise_disjoint,
    selects_everything,
    static_index,
)
from .walk import tracks

# op -> (positions the identity element may take, the identity element)
_IDENTITIES = {add: ((0, 1), 0), sub: ((1,), 0), mul: ((0, 1), 1), true_div: ((1,), 1)}


@tracks(add, sub, mul, true_div)
def remove_identity_elements(node: Apply) -> Sequence[Variable] | None:
    """``x + 0``, ``x - 0``, ``x * 1``, ``x / 1`` -> ``x``, when that changes neither dtype nor shape."""
    # Tried on every addition and product of a graph: the common cases leave at the first test.
    inputs = node.inputs
    if len(inputs) != 2 or not (isinstance(inputs[0], Constant) or isinstance(inputs[1], Constant)):
        return None
    rule = _IDENTITIES.get(node.op)
    if rule is None:
        return None
    positions, identity = rule
    output = node.outputs[0]
    for position in positions:
        element = inputs[position]
        kept = inputs[1 - position]
        if (
            isinstance(element, Constant)
            and element.data.size == 1
            and element.data.item() == identity  # (a Python number: quicker than numpy's ==)
            and element.ndim <= kept.ndim
            and kept.type.numpy_dtype == output.type.numpy_dtype
        ):
            return [kept]
    return None


@tracks(neg)
def remove_double_negation(node: Apply) -> Sequence[Variable] | None:
    """``-(-x)`` -> ``x``."""
    if len(node.inputs) == 1 and node.op == neg:
        inner = node.inputs[0].owner
        if inner is not None and inner.op == neg:
            return [inner.inputs[0]]
    return None


@tracks(DimShuffle)
def merge_dimshuffles(node: Apply) -> Sequence[Variable] | None:
    """Two dimshuffles (transposes, new axes) in a row -> one."""
    if not isinstance(node.op, DimShuffle):
        return None
    inner = node.inputs[0].owner
    if inner is None or not isinstance(inner.op, DimShuffle):
        return None
    inner_pattern = inner.op.pattern
    pattern = tuple("x" if axis == "x" else inner_pattern[axis] for axis in node.op.pattern)
    return [dimshuffle(inner.inputs[0], *pattern)]


@tracks(Subtensor)
def remove_whole_subtensor(node: Apply) -> Sequence[Variable] | None:
    """``x[:]``, ``x[...]`` -> ``x``."""
    if isinstance(node.op, Subtensor) and selects_everything(node.op.spec, node.inputs[0].ndim):
        return [node.inputs[0]]
    return None


@tracks(add)
def chain_slices_into_zeros(node: Apply) -> Sequence[Variable] | None:
    """``inc(Z, a)[i] + inc(Z, b)[j]`` -> ``inc(inc(Z, a)[i], b)[j]`` for the same zeros ``Z``: the
    gradient of several slices of one variable (an LSTM's gates), written into one array instead
    of one array per slice, added up."""
    if node.op != add:
        return None
    for first, second in (node.inputs, node.inputs[::-1]):
        scatter = second.owner
        if scatter is None or not isinstance(scatter.op, IncSubtensor):
            continue  # (written into zeros, 'set' is 'inc': see set_slices_into_zeros)
        zeros = scatter.inputs[0]
        if _is_zeros(zeros) and _same_zeros(_scatter_base(first), zeros) and first.type.dtype == node.outputs[0].dtype:
            _, value, *indices = scatter.inputs
            return [IncSubtensor(scatter.op.spec, "inc")(first, value, *indices)]
    return None


def _scatter_base(variable: Variable) -> Variable:
    while variable.owner is not None and isinstance(variable.owner.op, IncSubtensor):
        variable = variable.owner.inputs[0]
    return variable


def _same_zeros(variable: Variable, zeros: Variable) -> bool:
    """Whether ``variable`` is the zeros ``zeros``, or zeros of the same static type (folded
    constants are not merged)."""
    if variable is zeros:
        return True
    return None not in zeros.type.shape and variable.type == zeros.type and _is_zeros(variable)


def _is_zeros(variable: Variable) -> bool:
    if isinstance(variable, Constant):
        return not variable.data.any()
    owner = variable.owner
    return (
        owner is not None
        and isinstance(owner.op, Alloc)
        and isinstance(owner.inputs[0], Constant)
        and not owner.inputs[0].data.any()
    )


@tracks(Shape, ShapeAt)
def fold_static_shapes(node: Apply) -> Sequence[Variable] | None:
    """``x.shape`` (or one of its lengths) -> a constant, when ``x``'s static shape gives it: a
    step of a loop reads rows whose shape is static even where the graph it was built from (the
    gradient of a step, written for any shape) was not."""
    x = node.inputs[0]
    if isinstance(node.op, Shape) and None not in x.type.shape:
        return [as_tensor(np.array(x.type.shape, dtype=np.int64))]
    if isinstance(node.op, ShapeAt) and x.type.shape[node.op.axis] is not None:
        return [as_tensor(np.int64(x.type.shape[node.op.axis]))]
    return None


@tracks(SumTo)
def remove_sums_to_the_same_shape(node: Apply) -> Sequence[Variable] | None:
    """``sum_to(g, shape)`` -> ``g`` when static shapes say that ``g`` has that shape already (the
    gradient of an operand that was not broadcast)."""
    g, target = node.inputs
    wanted = static_shape_value(target)
    if None in g.type.shape or wanted is None or tuple(wanted) != g.type.shape:
        return None
    if any(s is not None and s != length for s, length in zip(node.op.static_shape, g.type.shape)):
        return None
    return [g]


@tracks(IncSubtensor)
def set_slices_into_zeros(node: Apply) -> Sequence[Variable] | None:
    """``inc(x, y)[i]`` -> ``set(x, y)[i]`` when ``x[i]`` is still zeros: ``x`` is zeros with
    slices written into it elsewhere (static slices disjoint from ``i``). Writing is cheaper than
    adding, and a chain of writes covering the whole array needs no zeros under it (next rule)."""
    op = node.op
    if not isinstance(op, IncSubtensor) or op.mode != "inc":
        return None
    x, y = node.inputs[0], node.inputs[1]
    index = static_index(node)
    shape = x.type.shape
    if index is None or None in shape or not np.can_cast(y.type.numpy_dtype, x.type.numpy_dtype, "same_kind"):
        return None
    box = index_box(index, shape)
    below = _written_boxes(x, shape)
    if box is None or below is None or not _is_zeros(below[1]):
        return None
    if not all(boxes_disjoint(box, other) for other in below[0]):
        return None
    return [IncSubtensor(op.spec, "set")(x, y)]


@tracks(IncSubtensor)
def fill_nothing_under_covering_slices(node: Apply) -> Sequence[Variable] | None:
    """``set(set(x, a)[i], b)[j]`` -> the same writes into an uninitialized array when the static
    slices ``i, j, ...`` are disjoint and cover every element of ``x``: no value of ``x``
    survives, so ``x`` is neither computed nor copied (the numpy backend writes into
    ``numpy.empty``)."""
    op = node.op
    if not isinstance(op, IncSubtensor) or op.mode != "set" or static_index(node) is None:
        return None
    shape = node.inputs[0].type.shape
    if None in shape:
        return None
    chain = [node]
    while True:
        below = chain[-1].inputs[0].owner
        if below is None or not isinstance(below.op, IncSubtensor) or below.op.mode != "set":
            break
        if static_index(below) is None:
            break
        chain.append(below)
    base = chain[-1].inputs[0]
    if base.owner is not None and isinstance(base.owner.op, AllocEmpty):
        return None
    boxes = [index_box(static_index(link), shape) for link in chain]
    if not _tile(boxes, shape):
        return None
    target = as_tensor(np.array(shape, dtype="int64"))
    value = AllocEmpty(base.type.dtype, tuple(shape))(target)
    for link in reversed(chain):
        value = IncSubtensor(link.op.spec, "set")(value, link.inputs[1])
    return [value]


def _tile(boxes: Sequence[tuple[range, ...] | None], shape: tuple) -> bool:
    """Whether the boxes are pairwise disjoint and together cover an array of ``shape``."""
    if any(box is None for box in boxes) or not pairwise_disjoint(boxes):
        return False
    return sum(math.prod(len(axis) for axis in box) for box in boxes) == math.prod(shape)


def _written_boxes(variable: Variable, shape: tuple) -> tuple[list, Variable] | None:
    """The boxes written by the chain of fixed-slice assignments (or increments) ending at
    ``variable``, and the array under the chain."""
    boxes = []
    while variable.owner is not None and isinstance(variable.owner.op, IncSubtensor):
        index = static_index(variable.owner)
        box = index_box(index, shape) if index is not None else None
        if box is None:
            return None
        boxes.append(box)
        variable = variable.owner.inputs[0]
    return boxes, variable


ALGEBRAIC_RULES = (
    remove_identity_elements,
    remove_double_negation,
    merge_dimshuffles,
    remove_whole_subtensor,
    chain_slices_into_zeros,
    set_slices_into_zeros,
    fill_nothing_under_covering_slices,
    fold_static_shapes,
    remove_sums_to_the_same_shape,
)
