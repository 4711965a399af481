"""The driver of local rewrites: one walk over the graph in topological order.

At each node, the node is first rebuilt on its rewritten inputs, then the rules are tried in turn;
a rule returns the variables that replace the node's outputs, or ``None``. A replacement built by
one node is tried again, so rules compose (``x * 1 * 1`` becomes ``x``). The new nodes carry the
source line of the node they stand for.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

from ..graph.basic import Apply, Variable
from ..graph.fgraph import FunctionGraph
from ..graph.source import building
from ..graph.traversal import rebuild_node, record_replacements

Rule = Callable[[Apply], Sequence[Variable] | None]
_MAX_CHAINED = 8


def tracks(*targets: Any) -> Callable[[Rule], Rule]:
    """Marks a rule as one for nodes of these op classes (and their subclasses) or of these very
    ops (``tracks(add, mul)``: equal ops) only, as PyTensor's ``node_rewriter(tracks=[...])``: the
    walk tries it on no other node. A rule without this mark is tried on every node."""

    def mark(rule: Rule) -> Rule:
        rule.tracks = targets  # type: ignore[attr-defined]
        return rule

    return mark


def _tracked(rule: Rule, op: Any) -> bool:
    targets = getattr(rule, "tracks", None)
    if targets is None:
        return True
    return any(isinstance(op, target) if isinstance(target, type) else op == target for target in targets)


class RulesByOp:
    """The rules to try on a node, by its op (looked up once per op: ops are values, equal ops
    one key)."""

    def __init__(self, rules: Sequence[Rule]):
        self.rules = list(rules)
        self.by_op: dict[Any, tuple[Rule, ...]] = {}

    def __call__(self, op: Any) -> tuple[Rule, ...]:
        found = self.by_op.get(op)
        if found is None:
            found = self.by_op[op] = tuple(rule for rule in self.rules if _tracked(rule, op))
        return found


def rewrite_locally(fgraph: FunctionGraph, rules: Sequence[Rule]) -> FunctionGraph:
    """``fgraph`` with ``rules`` applied to every node, in one walk in topological order."""
    # ``fgraph.rewrite`` with the walk written out: it is most of the time of rewriting a large
    # graph, and its common cases (no rule applies; a node is only rebuilt on new inputs, as
    # everything after a change near the inputs is) are taken with no call that can be saved.
    rules_for = RulesByOp(rules)
    by_op = rules_for.by_op
    is_not = operator.is_not
    nodes = fgraph.nodes
    memo: dict[Variable, Variable] = {}  # replaced variable -> its replacement
    get = memo.get
    original: set[int] | None = None  # the ids of the graph's nodes, when first needed
    for node in nodes:
        node_inputs = node.inputs
        changed = False
        if memo:
            inputs = [get(variable, variable) for variable in node_inputs]
            changed = any(map(is_not, inputs, node_inputs))
        current = rebuild_node(node, inputs) if changed else node
        for rule in by_op.get(current.op) or rules_for(current.op):
            # Tried outside a build context, which only a rule that applies needs: that rule runs
            # again inside one (what it built here is dropped). Few nodes get that far.
            if rule(current) is not None:
                outputs = _apply_rules(node, current, rules_for)
                break
        else:
            outputs = current.outputs
        if outputs is node.outputs:
            continue
        if original is None:
            original = {id(node) for node in nodes}
        record_replacements(memo, node.outputs, outputs, original)
    computed = [get(variable, variable) for variable in fgraph.computed]
    if all(map(operator.is_, computed, fgraph.computed)):
        return fgraph
    return fgraph.with_computed(computed)


def _apply_rules(node: Apply, current: Apply, rules_for: RulesByOp) -> Sequence[Variable]:
    """What replaces ``node``'s outputs: the rules applied to ``current`` (``node`` or ``node``
    rebuilt on new inputs), and again to what replaces it, in ``node``'s build context."""
    outputs: Sequence[Variable] = current.outputs
    with building.like(node):
        for _ in range(_MAX_CHAINED):
            replaced = _first_match(current, rules_for)
            if replaced is None:
                break
            outputs = replaced
            owner = outputs[0].owner
            if owner is None or owner is current or not _are(owner.outputs, outputs):
                break
            current = owner
    return outputs


def _first_match(node: Apply, rules_for: RulesByOp) -> Sequence[Variable] | None:
    for rule in rules_for(node.op):
        replaced = rule(node)
        if replaced is not None:
            return replaced
    return None


def _are(first: Sequence[Variable], second: Sequence[Variable]) -> bool:
    """Identity of two lists of variables (``==`` on variables builds a graph)."""
    return len(first) == len(second) and all(a is b for a, b in zip(first, second))


def transform_inner_graphs(fgraph: FunctionGraph, transform: Callable[[FunctionGraph], FunctionGraph]) -> FunctionGraph:
    """``fgraph`` with ``transform`` applied to the inner graphs of its nodes that hold some (loop
    bodies, phase graphs), each such node rebuilt on the transformed graphs."""
    from ..ops.subgraph import InnerGraphOp

    changed: dict[Apply, list[FunctionGraph]] = {}  # the nodes whose inner graphs the transform changes
    for node in fgraph.nodes:
        if isinstance(node.op, InnerGraphOp):
            graphs = [transform(graph) for graph in node.op.inner_graphs]
            if not all(new is old for new, old in zip(graphs, node.op.inner_graphs)):
                changed[node] = graphs
    if not changed:
        return fgraph  # no walk rebuilding nothing

    def visit(node: Apply, inputs: list[Variable]) -> Sequence[Variable] | None:
        graphs = changed.get(node)
        if graphs is None:
            return None
        with building.like(node):
            return node.op.with_inner_graphs(graphs).make_node(*inputs).outputs

    return fgraph.rewrite(visit)
