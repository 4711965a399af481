"""Fusions: rewrites that give the same values in fewer passes over memory.

Each is a small pattern rule on op classes (``tracks``), given the node, its inputs as rebuilt so
far, and how many users (nodes, outputs, updates) each variable of the graph being rewritten has (a
computation something else still reads is not fused away, which would compute it twice):

- ``mask_before_routing``: the ReLU's gradient mask, applied after a max pooling's gradient has
  been routed to the full-size input, ``route(z, pool(z), g) * (z > 0)``, is applied before
  instead, on the pooled gradient: ``route(z, pool(z), g * (pool(z) > 0))``. A routed cell holds
  its window's maximum, so ``z > 0`` there is ``pool(z) > 0``; every other cell is zero either way.
  Two passes over the pooled array replace two over the input, four times larger. The gradient
  is first stored as the pooled array is (``SameLayout``), so that the mask's product does not mix
  layouts (after a convolution the pooled array is stored batch innermost, a gradient coming
  back from a dense layer in C order).
- ``sum_of_routed``: a max pooling's gradient summed over every window's cells (a bias's
  gradient, ``sum_to(route(x, pooled, g), (1, C, 1, 1))``) is ``g`` summed instead: each window
  gives its gradient to exactly one cell. One pass over the pooled array replaces one over the
  input.
- ``pool_first`` (a pass over the whole graph, as it moves a forward computation and rewrites its
  gradient with it): ``max_pool(relu(z + b))`` -> ``relu(max_pool(z) + b)`` for a bias ``b`` that
  is the same in every window (per channel). Adding a window's constant and the ReLU, both
  nondecreasing, commute with taking the window's maximum, so the values are the same; both now
  run on the pooled array. The gradient is routed by ``z``: where the ReLU passes the gradient,
  the first maximum of ``relu(z + b)`` is the first maximum of ``z`` (only a rounding of
  ``z + b`` that made two different cells equal could tell them apart, and then ``z``'s own
  maximum gets the gradient, as exact arithmetic would); where it does not, the gradient is zero
  either way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..graph.basic import Apply, Constant, Variable
from ..graph.fgraph import FunctionGraph
from ..graph.source import building
from ..nn.activations import relu
from ..nn.pool import MaxPool2d, MaxPool2dGrad, SameLayout
from ..ops.elemwise import add, gt, mul
from ..ops.shape import SumTo, sum_to
from .walk import RulesByOp, tracks

Users = Callable[[Variable], int]
FusionRule = Callable[[Apply, list[Variable], Users], Sequence[Variable] | None]


def needs(*op_classes: type) -> Callable[[FusionRule], FusionRule]:
    """Marks a fusion rule as one that can only match in graphs holding nodes of these op
    classes: in other graphs (most of them) it is not even tried."""

    def mark(rule: FusionRule) -> FusionRule:
        rule.needs = op_classes  # type: ignore[attr-defined]
        return rule

    return mark


@needs(MaxPool2dGrad)
@tracks(mul)
def mask_before_routing(node: Apply, inputs: list[Variable], users: Users) -> Sequence[Variable] | None:
    """``route(z, pool(z), g) * (z > 0)`` -> ``route(z, pool(z), g * (pool(z) > 0))``."""
    if node.op != mul:
        return None
    for position in (0, 1):
        routed, mask = inputs[position], inputs[1 - position]
        route, compare = routed.owner, mask.owner
        if route is None or compare is None or not isinstance(route.op, MaxPool2dGrad) or compare.op != gt:
            continue
        x, pooled, g = route.inputs
        z, zero = compare.inputs
        pool = pooled.owner
        if (
            z is not x
            or not _is_zero(zero)
            or pool is None
            or not isinstance(pool.op, MaxPool2d)
            or pool.inputs[0] is not x
            or (pool.op.pool_size, pool.op.stride, pool.op.padding)
            != (route.op.pool_size, route.op.stride, route.op.padding)
            or users(node.inputs[position]) != 1  # the full-size routing is needed elsewhere
            or route.outputs[0].type != node.outputs[0].type
        ):
            continue
        with building.like(node):
            return [route.op(x, pooled, mul(SameLayout()(g, pooled), gt(pooled, zero)))]
    return None


@needs(MaxPool2dGrad)
@tracks(SumTo)
def sum_of_routed(node: Apply, inputs: list[Variable], users: Users) -> Sequence[Variable] | None:
    """``sum_to(route(x, pooled, g), like)`` -> ``sum_to(g, like)`` when ``like`` sums the rows and
    the columns (a bias of one value per channel, or per sample and channel)."""
    routed, like = inputs
    route = routed.owner
    if route is None or not isinstance(route.op, MaxPool2dGrad):
        return None
    kept = (1,) * (routed.ndim - len(node.op.static_shape)) + node.op.static_shape
    if kept[2:] != (1, 1):
        return None
    with building.like(node):
        return [SumTo(node.op.static_shape)(route.inputs[2], like)]


def _is_zero(variable: Variable) -> bool:
    return isinstance(variable, Constant) and variable.data.size == 1 and bool(np.all(variable.data == 0))


FUSIONS: tuple[FusionRule, ...] = (mask_before_routing, sum_of_routed)


# --- pooling before the ReLU and the bias ---------------------------------------------------------
class _Below:
    """What feeds a max pooling: ``relu`` (or not) of ``z`` plus biases the same in every window."""

    def __init__(self, pooled_input: Variable):
        self.relu: Apply | None = None
        self.adds: list[tuple[Apply, int]] = []  # from the top: each add node, and where its z is
        variable = pooled_input
        if variable.owner is not None and variable.owner.op == relu:
            self.relu = variable.owner
            variable = variable.owner.inputs[0]
        while variable.owner is not None and variable.owner.op == add and len(variable.owner.inputs) == 2:
            node = variable.owner
            position = next((p for p in (0, 1) if _same_in_every_window(node.inputs[1 - p])), None)
            if position is None or node.inputs[position].type.dtype != variable.type.dtype:
                break
            self.adds.append((node, position))
            variable = node.inputs[position]
        self.z = variable

    @property
    def nodes(self) -> list[Apply]:
        return ([self.relu] if self.relu is not None else []) + [node for node, _ in self.adds]

    def applied_to(self, pooled: Variable) -> Variable:
        """The same biases and ReLU applied to ``pooled``, each node built as the one it stands for."""
        for node, position in reversed(self.adds):
            with building.like(node):
                operands = [pooled, pooled]
                operands[1 - position] = node.inputs[1 - position]
                pooled = add(*operands)
        if self.relu is not None:
            with building.like(self.relu):
                pooled = relu(pooled)
        return pooled


def _same_in_every_window(bias: Variable) -> bool:
    """Whether ``bias``, broadcast against an NCHW array, is one value along the rows and columns."""
    shape = bias.type.shape
    return len(shape) <= 4 and ((1,) * (4 - len(shape)) + tuple(shape))[2:] == (1, 1)


def _masked_by(g: Variable, pooled: Variable) -> bool:
    """Whether ``g`` is zero wherever ``pooled`` is not positive: ``something * (pooled > 0)``."""
    owner = g.owner
    return (
        owner is not None
        and owner.op == mul
        and any(
            factor.owner is not None
            and factor.owner.op == gt
            and factor.owner.inputs[0] is pooled
            and _is_zero(factor.owner.inputs[1])
            for factor in owner.inputs
        )
    )


def _movable(pool: Apply, fgraph: FunctionGraph, computed: set[int]) -> list[Apply] | None:
    """The pooling's gradients, if the ReLU and biases below ``pool`` can move after it: nothing but
    the pooling and its gradients reads what they compute, and each gradient is zero wherever
    the ReLU is."""
    pooled_input, (pooled,) = pool.inputs[0], pool.outputs
    below = _Below(pooled_input)
    if not below.nodes or below.z.type.ndim != 4:
        return None
    between = [node.outputs[0] for node in below.nodes[1:]]  # read by the next node up only
    if id(pooled_input) in computed or any(id(v) in computed or len(fgraph.clients.get(v, ())) != 1 for v in between):
        return None
    routes = []
    for client, position in fgraph.clients.get(pooled_input, ()):
        if client is pool:
            continue
        if (
            not isinstance(client.op, MaxPool2dGrad)
            or position != 0
            or client.inputs[1] is not pooled
            or client.op != MaxPool2dGrad(pool.op.pool_size, pool.op.stride, pool.op.padding)
            or (below.relu is not None and not _masked_by(client.inputs[2], pooled))
        ):
            return None
        routes.append(client)
    return routes


def pool_first(fgraph: FunctionGraph) -> FunctionGraph:
    """``fgraph`` with every max pooling of ``relu(z + b)`` (or of ``relu(z)``, or of ``z + b``) that
    nothing else reads made ``relu(max_pool(z) + b)``, and its gradients routed by ``z``."""
    computed = {id(variable) for variable in fgraph.computed}
    pools: set[Apply] = set()
    route_of: dict[Apply, Apply] = {}  # each gradient moved, and its pooling
    for node in fgraph.nodes:
        if isinstance(node.op, MaxPool2d):
            routes = _movable(node, fgraph, computed)
            if routes is not None:
                pools.add(node)
                route_of.update((route, node) for route in routes)
    if not pools:
        return fgraph
    pooled_z: dict[Apply, tuple[Variable, Variable]] = {}  # each moved pooling: z and max_pool(z)

    def visit(node: Apply, inputs: list[Variable]) -> Sequence[Variable] | None:
        if node in pools:
            below = _Below(inputs[0])
            with building.like(node):
                pooled = node.op(below.z)
            pooled_z[node] = (below.z, pooled)
            return [below.applied_to(pooled)]
        pool = route_of.get(node)
        if pool is None:
            return None
        z, pooled = pooled_z[pool]
        with building.like(node):
            # sum_to: the bias may broadcast z (one channel made three, say); adding a bias
            # moves no window's maximum, so the gradients of the copies are routed summed.
            return [node.op(z, pooled, sum_to(inputs[2], pooled))]

    return fgraph.rewrite(visit)


def fuse(fgraph: FunctionGraph, rules: Sequence[FusionRule] = FUSIONS) -> FunctionGraph:
    """``fgraph`` with the fusion ``rules`` applied, in one walk in topological order, then the
    poolings moved before what feeds them (``pool_first``)."""
    present = {type(node.op) for node in fgraph.nodes}
    rules = [
        rule
        for rule in rules
        if all(any(issubclass(kind, needed) for kind in present) for needed in getattr(rule, "needs", ()))
    ]
    if rules:
        fgraph = _walk(fgraph, rules)
    if any(issubclass(kind, MaxPool2d) for kind in present):
        fgraph = pool_first(fgraph)
    return fgraph


def _walk(fgraph: FunctionGraph, rules: Sequence[FusionRule]) -> FunctionGraph:
    computed = [id(variable) for variable in fgraph.computed]
    rules_for = RulesByOp(rules)

    def users(variable: Variable) -> int:
        return len(fgraph.clients.get(variable, ())) + computed.count(id(variable))

    def visit(node: Apply, inputs: list[Variable]) -> Sequence[Variable] | None:
        for rule in rules_for(node.op):
            replaced = rule(node, inputs, users)
            if replaced is not None:
                return replaced
        return None

    return fgraph.rewrite(visit)
