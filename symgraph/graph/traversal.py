"""Walking and ordering graphs, without recursion (graphs of 100,000 nodes and more are common).

The execution order is the order of a depth-first walk from the outputs, which computes each
value shortly before it is needed, except that nodes that only read their inputs' shapes
(``op.reads_only_shape``) go right after those inputs are made, so that a shape needed late (by a
gradient) does not keep a large array alive. (That is the lexicographical topological sort that
prefers the walk's order, as networkx's ``lexicographical_topological_sort`` gives it, found with
one sort: see ``schedule``.)
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterable, Sequence
from operator import is_
from typing import Any, TypeVar

from .basic import Apply, Variable
from .op import Op
from .source import build_context

_Result = TypeVar("_Result")


def garbage_collection_paused(builder: Callable[..., _Result]) -> Callable[..., _Result]:
    """``builder`` run with Python's cyclic garbage collector paused (``sg.function``,
    ``sg.grad``). They make many objects in reference cycles (nodes and their outputs) and drop
    few: the collector would rescan the whole heap again and again as they pile up (a quarter of
    ``sg.grad``'s time on a graph of 100,000 nodes), making the time grow faster than the graph.
    The memory is reclaimed when collection resumes.

    (A decorator of our own, not ``contextlib``'s: its frame lies inside symgraph, so the user's
    line that called the builder is still the first frame outside it.)"""

    @functools.wraps(builder)
    def paused(*args: Any, **kwargs: Any) -> _Result:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return builder(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return paused


def postorder(outputs: Iterable[Variable], stop: Iterable[Variable] = ()) -> list[Apply]:
    """The nodes the outputs depend on (not looking past ``stop``), each after its inputs' nodes."""
    # Nodes and variables hash by identity (``object.__hash__``): sets of them are sets of ids.
    stopped = set(stop)
    seen: set[Apply] = set()
    mark = seen.add
    order: list[Apply] = []
    for output in outputs:
        node = output.owner
        if node is None or node in seen or output in stopped:
            continue
        mark(node)
        stack = [(node, iter(node.inputs))]
        while stack:
            node, inputs = stack[-1]
            for variable in inputs:
                owner = variable.owner
                if owner is not None and owner not in seen and variable not in stopped:
                    mark(owner)
                    stack.append((owner, iter(owner.inputs)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


def schedule(
    outputs: Sequence[Variable], stop: Iterable[Variable] = (), nodes: Sequence[Apply] | None = None
) -> list[Apply]:
    """The execution order of the nodes computing ``outputs``: deterministic, same graph same order.

    ``nodes`` is their :func:`postorder`, when already known."""
    if nodes is None:
        nodes = postorder(outputs, stop)
    if not any(node.op.reads_only_shape for node in nodes):
        return list(nodes)  # every node is ready when the walk reaches it: the walk's order
    # A node that reads only shapes is placed half a step after the last node it depends on,
    # every other node where the walk put it. Sorting by that key (stably: ties in the walk's
    # order) keeps every node after the nodes it depends on, and among the orders that do, it is
    # the one that always takes the earliest-placed node whose inputs are ready.
    position = {node: index for index, node in enumerate(nodes)}.get
    key: list[float] = list(range(len(nodes)))
    for index, node in enumerate(nodes):
        if node.op.reads_only_shape:
            producers = [position(variable.owner, -1) for variable in node.inputs if variable.owner is not None]
            key[index] = max(producers, default=-1) + 0.5
    return [nodes[index] for index in sorted(range(len(nodes)), key=key.__getitem__)]


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
    original = {id(node) for node in nodes}
    get = memo.get
    for node in nodes:
        inputs = [get(variable, variable) for variable in node.inputs]
        new_outputs = rewrite(node, inputs) if rewrite is not None else None
        if new_outputs is None:
            if all(map(is_, inputs, node.inputs)):
                continue
            new_outputs = rebuild_node(node, inputs).outputs
        record_replacements(memo, node.outputs, new_outputs, original)
    return [memo.get(output, output) for output in outputs], memo


def record_replacements(
    memo: dict[Variable, Variable], old_outputs: Sequence[Variable], new_outputs: Sequence[Variable], original: set[int]
) -> None:
    """``memo[old] = new`` for each output replaced; a new variable takes the name of the one it
    replaces, unless it is a variable of the original graph (``original``: its nodes' ids), which is
    the user's and must not be renamed."""
    for old, new in zip(old_outputs, new_outputs):
        if new is not old:
            if old.name and not new.name and new.owner is not None and id(new.owner) not in original:
                new.name = old.name
            memo[old] = new


def rebuild_node(node: Apply, inputs: Sequence[Variable]) -> Apply:
    """``node``'s op applied to new ``inputs``, with ``node``'s source line, gradient mark and scope.

    When the op's output types come from its inputs' types alone (it does not override
    ``make_node``) and those types are the same, the output types are too: the node is built
    without asking the op again (rewrites rebuild whole chains of such nodes)."""
    context = build_context
    saved = context.source, context.gradient, context.scope
    if node.source is not None:  # else the line forced now, as ``building`` does
        context.source = node.source
    context.gradient, context.scope = node.gradient, node.scope
    try:
        if type(node.op).make_node is Op.make_node and all(
            map(is_, [new.type for new in inputs], [old.type for old in node.inputs])
        ):
            return Apply(node.op, inputs, [output.type for output in node.outputs])
        return node.op.make_node(*inputs)
    finally:
        context.source, context.gradient, context.scope = saved
