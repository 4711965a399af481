"""Which nodes of a graph run in a data-parallel region (``regions.py``), decided when linking.

A *batched* variable has the batch on its first axis: the function's inputs with axes, and what
row-wise ops make of them. A node is a member when it computes each row of its batched outputs
from the same rows of its batched inputs and from *host* values (weights, shapes, scalars: known
at the call), or when it sums (max, min, prod) a batched input over the batch; the region is
then made *convex*: no member reads, through a non-member, what another member computes. Shapes
of batched variables that members read are rebuilt inside the region's program (``CHUNK``, as a
shape argument: the chunk's own; ``WHOLE``, as a value: the whole batch's length).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ...graph.basic import Apply, Variable
from ...nn.activations import LogSoftmax, Softmax
from ...nn.batchnorm import CheckBatch
from ...nn.dropout import BernoulliMask
from ...nn.losses import OneHot, SoftmaxCrossEntropy
from ...nn.pool import AvgPool2d, AvgPool2dGrad, MaxPool2d, MaxPool2dGrad, MaxPool2dSelect, SameLayout
from ...ops.basic import Cast
from ...ops.elemwise import Elemwise
from ...ops.linalg import Dot
from ...ops.random import RandomOp
from ...ops.reduce import ArgReduce, Reduce
from ...ops.shape import Alloc, AllocEmpty, BroadcastTo, DimShuffle, Reshape, Shape, ShapeAt, SpecifyShape, Stack, SumTo
from ...ops.subtensor import Subtensor

#: Kinds of variables: the batch on the first axis; known at the call; the batch on the second
#: axis (``h.T``, read by a product summing the batch); summed over the batch by a member (lazy,
#: and the same for every chunk only once the chunks' sums are combined); anything else.
BATCHED, HOST, TRANSPOSED, REDUCED, OTHER = "batched", "host", "transposed", "reduced", "other"

#: Ops that take a shape (their input at this position) and make an array of it.
_SHAPE_INPUT = {
    BroadcastTo: 1,
    Alloc: 1,
    AllocEmpty: 0,
    Reshape: 1,
    SumTo: 1,
    AvgPool2dGrad: 1,
    BernoulliMask: 1,
    RandomOp: 1,
}
#: How a host value computed from batched variables' shapes is rebuilt inside the region: a shape
#: argument from the chunk's own shapes; a value (the batch's length in a mean's gradient) with
#: the whole batch's length on the first axis (the other lengths are the same for every chunk).
CHUNK, WHOLE = "chunk", "whole"


def _shape_position(op: Any) -> int | None:
    return next((position for kind, position in _SHAPE_INPUT.items() if isinstance(op, kind)), None)


# --- which nodes ---------------------------------------------------------------------------------------
@dataclass
class Membership:
    """What a node is to the region: a member or not, the kind of its outputs, and for members
    that sum over the batch, the reduction combining their per-chunk results."""

    member: bool
    kind: str
    reduction: str | None = None
    checks: list[tuple[str, Variable, Any]] = field(default_factory=list)  #: run-time conditions


def classify(order: Sequence[Apply], inputs: Sequence[Variable]) -> tuple[dict, dict]:
    """The kind of every variable and what each node is to the region (before the region is made
    convex)."""
    kinds: dict[Variable, str] = {variable: BATCHED if variable.ndim >= 1 else HOST for variable in inputs}

    def kind(variable: Variable) -> str:
        if variable in kinds:
            return kinds[variable]
        if variable.owner is None:  # constants, shared variables (weights, generators)
            return HOST
        return OTHER

    roles: dict[Apply, Membership] = {}
    for node in order:
        input_kinds = [kind(variable) for variable in node.inputs]
        role = _role(node, input_kinds, kinds)
        roles[node] = role
        for output in node.outputs:
            kinds[output] = role.kind
        if role.member and isinstance(node.op, (RandomOp, BernoulliMask)):
            kinds[node.outputs[0]] = HOST  # the generator's new state, known at the call
    return kinds, roles


def _role(node: Apply, input_kinds: list[str], kinds: dict) -> Membership:
    op = node.op
    out = node.outputs[0]
    if isinstance(op, (RandomOp, BernoulliMask)):
        size_fits = _chunk_local_shape(node.inputs[1], kinds) and all(k == HOST for k in input_kinds[2:])
        return Membership(True, BATCHED) if size_fits else Membership(False, OTHER)
    position = _shape_position(op)
    if position is not None and not isinstance(op, SumTo) and _chunk_local_shape(node.inputs[position], kinds):
        # An array of the chunk's shape: a broadcast, a fill, a reshape keeping the batch first.
        values = [(v, k) for index, (v, k) in enumerate(zip(node.inputs, input_kinds)) if index != position]
        if any(k not in (BATCHED, HOST) for _, k in values):
            return Membership(False, OTHER)
        if isinstance(op, (Reshape, AvgPool2dGrad)) and values[0][1] != BATCHED:
            return Membership(False, OTHER)
        broadcast = isinstance(op, BroadcastTo)
        checks = [("one row", v, None) for v, k in values if k == HOST and broadcast and v.ndim == out.ndim]
        if any(v.type.shape[0] not in (None, 1) for _, v, _ in checks):
            return Membership(False, OTHER)
        return Membership(True, BATCHED, checks=[c for c in checks if c[1].type.shape[0] is None])
    if isinstance(op, Dot) and input_kinds == [TRANSPOSED, BATCHED] and node.inputs[1].ndim == 2:
        return Membership(True, REDUCED, reduction="sum")  # h.T @ g: a sum over the batch
    if all(k in (HOST, REDUCED) for k in input_kinds):
        return Membership(False, REDUCED if REDUCED in input_kinds else HOST)
    if isinstance(op, (Shape, ShapeAt)) and input_kinds == [BATCHED]:
        return Membership(False, HOST)  # the whole batch's shape, known at the call
    if any(k not in (BATCHED, HOST) for k in input_kinds):
        return Membership(False, OTHER)
    batched = [variable for variable, k in zip(node.inputs, input_kinds) if k == BATCHED]
    hosts = [variable for variable, k in zip(node.inputs, input_kinds) if k == HOST]
    if isinstance(op, Elemwise):
        if out.ndim == 0 or any(variable.ndim != out.ndim for variable in batched):
            return Membership(False, OTHER)
        # Host operands broadcast along the batch: fewer axes, or a first axis of length 1.
        checks = [("one row", variable, None) for variable in hosts if variable.ndim == out.ndim]
        if any(variable.type.shape[0] not in (None, 1) for _, variable, _ in checks):
            return Membership(False, OTHER)
        checks = [check for check in checks if check[1].type.shape[0] is None]
        return Membership(True, BATCHED, checks=checks)
    if isinstance(op, Dot):
        fits = input_kinds == [BATCHED, HOST] and node.inputs[0].ndim == 2
        return Membership(fits, BATCHED if fits else OTHER)
    if isinstance(op, DimShuffle) and input_kinds == [BATCHED]:
        if op.pattern and op.pattern[0] == 0:
            return Membership(True, BATCHED)
        if op.pattern == (1, 0):
            return Membership(True, TRANSPOSED)
        return Membership(False, OTHER)
    if isinstance(op, (Softmax, LogSoftmax)):
        return Membership(op.axis != 0, BATCHED if op.axis != 0 else OTHER)
    if isinstance(op, ArgReduce):
        fits = op.axis not in (None, 0)
        return Membership(fits, BATCHED if fits else OTHER)
    if isinstance(op, SoftmaxCrossEntropy) and input_kinds == [BATCHED, BATCHED]:
        return Membership(True, BATCHED)
    if isinstance(op, OneHot) and input_kinds == [BATCHED, HOST]:
        return Membership(True, BATCHED)
    row_local = (Cast, CheckBatch, MaxPool2d, AvgPool2d, MaxPool2dGrad, MaxPool2dSelect, SameLayout)
    if isinstance(op, row_local) and not hosts:
        return Membership(True, BATCHED)
    if isinstance(op, SpecifyShape) and input_kinds == [BATCHED]:
        fits = not op.shape or op.shape[0] is None  # a chunk has its own number of rows
        return Membership(fits, BATCHED if fits else OTHER)
    if isinstance(op, Subtensor) and input_kinds[0] == BATCHED and not batched[1:]:
        fits = op.spec and op.spec[0] == ("slice", None, None, None) and all(e[0] != "array" for e in op.spec)
        return Membership(bool(fits), BATCHED if fits else OTHER)
    if isinstance(op, Reduce) and input_kinds == [BATCHED]:
        if 0 in op.axes:
            return Membership(True, REDUCED, reduction=op.kind)
        return Membership(True, BATCHED)
    if isinstance(op, SumTo) and input_kinds[0] == BATCHED:
        if _chunk_local_shape(node.inputs[1], kinds):
            return Membership(True, BATCHED)
        if input_kinds[1] == HOST and not _reads_batch_length(node.inputs[1], kinds):
            # Summed to a host shape: over the batch, if that shape has no batch axis (checked).
            return Membership(True, REDUCED, reduction="sum", checks=[("sums the batch", node.inputs[1], node)])
    return Membership(False, OTHER)


def _shape_sources(shape: Variable) -> list[tuple[Variable, int]]:
    """The ``(variable, axis)`` whose lengths a shape vector reads: its ``Shape``/``ShapeAt``
    ancestors, through the arithmetic that combines them."""
    found: list[tuple[Variable, int]] = []
    stack, seen = [shape], set()
    while stack:
        variable = stack.pop()
        owner = variable.owner
        if owner is None or id(variable) in seen:
            continue
        seen.add(id(variable))
        if isinstance(owner.op, Shape):
            found += [(owner.inputs[0], axis) for axis in range(owner.inputs[0].ndim)]
        elif isinstance(owner.op, ShapeAt):
            found.append((owner.inputs[0], owner.op.axis))
        else:
            stack.extend(owner.inputs)
    return found


def _reads_batch_length(shape: Variable, kinds: dict) -> bool:
    return any(kinds.get(variable) == BATCHED and axis == 0 for variable, axis in _shape_sources(shape))


def _chunk_local_shape(shape: Variable, kinds: dict) -> bool:
    """Whether ``shape`` has the batch's length as its first entry, straight from a batched
    variable's shape, and not elsewhere: computed from the chunk's own shapes, it is the chunk's."""
    owner = shape.owner
    if owner is None:
        return False
    if isinstance(owner.op, Shape):
        first = owner.inputs[0]
    elif isinstance(owner.op, Stack) and owner.op.axis == 0:
        first = owner.inputs[0]
        while first.owner is not None and isinstance(first.owner.op, Cast):
            first = first.owner.inputs[0]
        if first.owner is None or not isinstance(first.owner.op, ShapeAt) or first.owner.op.axis != 0:
            return False
        if any(_reads_batch_length(item, kinds) for item in owner.inputs[1:]):
            return False
        first = first.owner.inputs[0]
    else:
        return False
    return kinds.get(first) == BATCHED


def rebuilt_inputs(node: Apply, kinds: dict) -> dict[int, str]:
    """The positions of a member's inputs rebuilt inside the region, and how (``CHUNK``,
    ``WHOLE``): its shape argument, host values computed from batched variables' shapes, and
    views of host arrays (a weight's transpose: a view inside costs nothing, where sending it
    to the workers besides the weight itself would cost its size again)."""
    found: dict[int, str] = {}
    position = _shape_position(node.op)
    for index, variable in enumerate(node.inputs):
        owner = variable.owner
        if owner is None:
            continue
        if index == position and _chunk_local_shape(variable, kinds):
            found[index] = CHUNK
        else:
            from_shapes = kinds.get(variable) == HOST and any(
                kinds.get(source) == BATCHED for source, _ in _shape_sources(variable)
            )
            view_of_host = isinstance(owner.op, DimShuffle) and owner.inputs[0].owner is None
            if from_shapes or view_of_host:
                found[index] = WHOLE
    return found


def reads(node: Apply, rebuilt: dict[int, str] | None) -> list[Variable]:
    """What a node needs computed before it: its inputs, except that what a member rebuilds
    inside the region is replaced by what that is computed from."""
    if not rebuilt:
        return list(node.inputs)
    needed = [variable for index, variable in enumerate(node.inputs) if index not in rebuilt]
    for index in rebuilt:
        needed += _shape_leaves(node.inputs[index])
    return needed


def convex(order: Sequence[Apply], roles: dict, kinds: dict) -> set[Apply]:
    """The member nodes that can run as one step: none reads, through non-members, what another
    member computes; a transposed batch is only read by members (products summing the batch)."""
    members = {node for node in order if roles[node].member}
    rebuilt = {node: rebuilt_inputs(node, kinds) for node in members}
    while True:
        after: set[Variable] = set()  # computed by non-members that read members' results
        produced: set[Variable] = set()
        for node in order:
            if node in members:
                if after.intersection(reads(node, rebuilt[node])):
                    members.discard(node)
                else:
                    produced.update(node.outputs)
                    continue
            needed = reads(node, None)
            if after.intersection(needed) or produced.intersection(needed):
                after.update(node.outputs)
        removed = False
        for node in order:
            if node not in members:
                continue
            transposed = {v for v in node.outputs if kinds.get(v) == TRANSPOSED}
            readers = [n for n in order if transposed.intersection(n.inputs)]
            inputs_in = all(variable.owner in members for variable in node.inputs if kinds.get(variable) == TRANSPOSED)
            if any(reader not in members for reader in readers) or not inputs_in:
                members.discard(node)
                removed = True
        if not removed:
            return members


def expression_nodes(variable: Variable) -> list[Apply]:
    """The nodes computing a value from shapes, down to the ``Shape`` nodes."""
    found, stack = [], [variable]
    while stack:
        owner = stack.pop().owner
        if owner is None or owner in found:
            continue
        found.append(owner)
        if not isinstance(owner.op, (Shape, ShapeAt)):
            stack.extend(owner.inputs)
    return found


def _shape_leaves(shape: Variable) -> list[Variable]:
    """What a value computed from shapes reads: the variables whose shapes it takes, and other
    roots."""
    leaves, stack, seen = [], [shape], set()
    while stack:
        variable = stack.pop()
        if id(variable) in seen:
            continue
        seen.add(id(variable))
        owner = variable.owner
        if owner is None:
            leaves.append(variable)
        elif isinstance(owner.op, (Shape, ShapeAt)):
            leaves.append(owner.inputs[0])
        else:
            stack.extend(owner.inputs)
    return leaves
