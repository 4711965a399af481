"""Walking and ordering graphs, without recursion (graphs of 10,000 nodes and more are common).

The execution order comes from networkx: the nodes and their data dependencies go into a
``DiGraph`` and ``lexicographical_topological_sort`` orders them, preferring the order of a
depth-first walk from the outputs, which computes each value shortly before it is needed. Nodes
that only read their inputs' shapes (``op.reads_only_shape``) go right after those inputs are
made, so that a shape needed late (by a gradient) does not keep a large array alive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import networkx as nx

from .basic import Apply, Variable
from .source import building


def postorder(outputs: Iterable[Variable], stop: Iterable[Variable] = ()) -> list[Apply]:
    """The nodes the outputs depend on (not looking past ``stop``), each after its inputs' nodes."""
    stopped = {id(variable) for variable in stop}
    seen: set[int] = set()
    order: list[Apply] = []
    for output in outputs:
        if output.owner is None or id(output) in stopped or id(output.owner) in seen:
            continue
        seen.add(id(output.owner))
        stack = [(output.owner, iter(output.owner.inputs))]
        while stack:
            node, inputs = stack[-1]
            for variable in inputs:
                owner = variable.owner
                if owner is not None and id(owner) not in seen and id(variable) not in stopped:
                    seen.add(id(owner))
                    stack.append((owner, iter(owner.inputs)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


def schedule(outputs: Sequence[Variable], stop: Iterable[Variable] = ()) -> list[Apply]:
    """The execution order of the nodes computing ``outputs``: deterministic, same graph same order."""
    nodes = postorder(outputs, stop)
    position = {id(node): index for index, node in enumerate(nodes)}
    preference = [float(index) for index in range(len(nodes))]
    for index, node in enumerate(nodes):
        if node.op.reads_only_shape:
            producers = [position.get(id(v.owner), -1) for v in node.inputs if v.owner is not None]
            preference[index] = max(producers, default=-1) + 0.5
    dependencies = nx.DiGraph()
    dependencies.add_nodes_from(range(len(nodes)))
    dependencies.add_edges_from(
        (position[id(variable.owner)], index)
        for index, node in enumerate(nodes)
        for variable in node.inputs
        if variable.owner is not None and id(variable.owner) in position
    )
    order = nx.lexicographical_topological_sort(dependencies, key=preference.__getitem__)
    return [nodes[index] for index in order]


def roots(outputs: Iterable[Variable], stop: Iterable[Variable] = ()) -> list[Variable]:
    """The variables without owner (or in ``stop``) that the outputs depend on, in first-use order."""
    stopped = {id(variable) for variable in stop}
    found: dict[int, Variable] = {}
    for output in outputs:
        if output.owner is None or id(output) in stopped:
            found.setdefault(id(output), output)
    for node in postorder(outputs, stop):
        for variable in node.inputs:
            if variable.owner is None or id(variable) in stopped:
                found.setdefault(id(variable), variable)
    return list(found.values())


def rebuild(
    outputs: Sequence[Variable],
    replacements: dict[Variable, Variable] | None = None,
    rewrite: Callable[[Apply, list[Variable]], Sequence[Variable] | None] | None = None,
    nodes: Sequence[Apply] | None = None,
) -> tuple[list[Variable], dict[Variable, Variable]]:
    """The outputs rebuilt with variables replaced and nodes rewritten, the original untouched.

    Walks the nodes in order; a node whose inputs changed is built again with the new inputs (and
    the source line of the old one); ``rewrite(node, new_inputs)`` may return the variables that
    replace the node's outputs, or ``None`` to keep it. Returns the new outputs and the map from
    old variables to new ones.
    """
    memo: dict[Variable, Variable] = dict(replacements or {})
    if nodes is None:
        nodes = schedule(outputs, stop=list(memo))
    # Variables of the original graph are the user's: a rewrite that reuses one must not rename it.
    original = {id(node) for node in nodes}
    for node in nodes:
        inputs = [memo.get(variable, variable) for variable in node.inputs]
        new_outputs = rewrite(node, inputs) if rewrite is not None else None
        if new_outputs is None:
            if all(new is old for new, old in zip(inputs, node.inputs)):
                continue
            with building(source=node.source, gradient=node.gradient, scope=node.scope):
                new_outputs = node.op.make_node(*inputs).outputs
        for old, new in zip(node.outputs, new_outputs):
            if new is not old:
                if old.name and not new.name and new.owner is not None and id(new.owner) not in original:
                    new.name = old.name
                memo[old] = new
    return [memo.get(output, output) for output in outputs], memo
