"""Algebraic simplifications that never change a result: ``x * 1``, ``x + 0``, ``-(-x)``, two
dimshuffles in a row, ``x[:]``, sums of slices written into the same zeros. (The predict phase of
inverted dropout leaves ``x * 1``: this removes it.)"""

from __future__ import annotations

from collections.abc import Sequence

from ..graph.basic import Apply, Constant, Variable
from ..ops.elemwise import Elemwise, add, mul, neg, sub, true_div
from ..ops.shape import Alloc, DimShuffle, dimshuffle
from ..ops.subtensor import IncSubtensor, Subtensor, selects_everything
from .walk import tracks

# op -> (positions the identity element may take, the identity element)
_IDENTITIES = {add: ((0, 1), 0), sub: ((1,), 0), mul: ((0, 1), 1), true_div: ((1,), 1)}


@tracks(Elemwise)
def remove_identity_elements(node: Apply) -> Sequence[Variable] | None:
    """``x + 0``, ``x - 0``, ``x * 1``, ``x / 1`` -> ``x``, when that changes neither dtype nor shape."""
    if len(node.inputs) != 2 or not any(isinstance(variable, Constant) for variable in node.inputs):
        return None
    rule = _IDENTITIES.get(node.op)
    if rule is None:
        return None
    positions, identity = rule
    output = node.outputs[0]
    for position in positions:
        element = node.inputs[position]
        kept = node.inputs[1 - position]
        if (
            isinstance(element, Constant)
            and element.data.size == 1
            and element.ndim <= kept.ndim
            and kept.type.numpy_dtype == output.type.numpy_dtype
            and element.data.reshape(()) == identity
        ):
            return [kept]
    return None


@tracks(Elemwise)
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


@tracks(Elemwise)
def chain_slices_into_zeros(node: Apply) -> Sequence[Variable] | None:
    """``inc(Z, a)[i] + inc(Z, b)[j]`` -> ``inc(inc(Z, a)[i], b)[j]`` for the same zeros ``Z``: the
    gradient of several slices of one variable (an LSTM's gates), written into one array instead
    of one array per slice, added up."""
    if node.op != add:
        return None
    for first, second in (node.inputs, node.inputs[::-1]):
        scatter = second.owner
        if scatter is None or not isinstance(scatter.op, IncSubtensor) or scatter.op.mode != "inc":
            continue
        zeros = scatter.inputs[0]
        if _is_zeros(zeros) and _scatter_base(first) is zeros and first.type.dtype == node.outputs[0].dtype:
            _, value, *indices = scatter.inputs
            return [IncSubtensor(scatter.op.spec, "inc")(first, value, *indices)]
    return None


def _scatter_base(variable: Variable) -> Variable:
    while (
        variable.owner is not None and isinstance(variable.owner.op, IncSubtensor) and variable.owner.op.mode == "inc"
    ):
        variable = variable.owner.inputs[0]
    return variable


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


ALGEBRAIC_RULES = (
    remove_identity_elements,
    remove_double_negation,
    merge_dimshuffles,
    remove_whole_subtensor,
    chain_slices_into_zeros,
)
