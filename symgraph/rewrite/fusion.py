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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..graph.basic import Apply, Constant, Variable
from ..graph.fgraph import FunctionGraph
from ..graph.source import building
from ..nn.pool import MaxPool2d, MaxPool2dGrad, SameLayout
from ..ops.elemwise import gt, mul
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
        with building(source=node.source, gradient=node.gradient, scope=node.scope):
            return [route.op(x, pooled, mul(SameLayout()(g, pooled), gt(pooled, zero)))]
    return None


def _is_zero(variable: Variable) -> bool:
    return isinstance(variable, Constant) and variable.data.size == 1 and bool(np.all(variable.data == 0))


FUSIONS: tuple[FusionRule, ...] = (mask_before_routing,)


def fuse(fgraph: FunctionGraph, rules: Sequence[FusionRule] = FUSIONS) -> FunctionGraph:
    """``fgraph`` with the fusion ``rules`` applied, in one walk in topological order."""
    present = {type(node.op) for node in fgraph.nodes}
    rules = [
        rule
        for rule in rules
        if all(any(issubclass(kind, needed) for kind in present) for needed in getattr(rule, "needs", ()))
    ]
    if not rules:
        return fgraph
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
