"""``specialize_phase``: phase-dependent nodes become what they compute in ``'train'`` or
``'predict'``. Part of a graph's meaning, so it runs in every mode (and in ``.eval()``).

Also the updates that advance random state (``state_updates``): each stochastic node asks for
its generator's new value, with no update written by the user.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import PhaseError
from ..graph.basic import Apply, SharedVariable, Variable
from ..graph.fgraph import FunctionGraph
from ..graph.op import Op
from ..graph.source import building, describe
from ..graph.traversal import postorder, rebuild
from ..ops.subgraph import InnerGraphOp

PHASES = ("train", "predict")

AutomaticUpdate = tuple  # (shared variable, new value, the node that asked for it)


def check_phase(phase: str | None) -> None:
    if phase is not None and phase not in PHASES:
        raise ValueError(f"phase must be 'train', 'predict' or None, not {phase!r}")


def phase_dependent_nodes(outputs: Sequence[Variable]) -> list[Apply]:
    """The phase-dependent nodes (dropout, batch norm, subgraphs holding them) the outputs
    depend on."""
    return [node for node in postorder(outputs) if node.op.phase_dependent]


def missing_phase_message(nodes: Sequence[Apply], where: str) -> str:
    """The error message for ``where`` (``sg.function``, ``.eval()``) given no phase: the nodes, where
    they were built, and the two phases to choose from."""
    listed = "\n".join(f"  - {node.op.name}, built at {describe(node.source)}{_holding(node)}" for node in nodes)
    return (
        f"this graph holds {len(nodes)} phase-dependent node(s), which compute differently when "
        f"training and when predicting:\n{listed}\n"
        f"Give {where} phase='train' (dropout masks drawn, batch statistics, automatic updates "
        "of running statistics) or phase='predict' (no dropout, running statistics, no automatic "
        "updates)."
    )


def _holding(node: Apply) -> str:
    """For a loop or branch holding phase-dependent nodes: which, and where the user built them."""
    if not isinstance(node.op, InnerGraphOp):
        return ""
    inner = [n for graph in node.op.inner_graphs for n in graph.nodes if n.op.phase_dependent]
    held = "; ".join(f"{n.op.name}, built at {describe(n.source)}{_holding(n)}" for n in inner[:3])
    return f", holding {held}" if held else ""


def specialize_phase(
    fgraph: FunctionGraph, phase: str | None, where: str = "sg.function"
) -> tuple[FunctionGraph, list[AutomaticUpdate]]:
    """``fgraph`` with every phase-dependent node specialized to ``phase``, and the automatic
    updates that phase asks for (not yet among ``fgraph``'s updates)."""
    check_phase(phase)
    dependent = [node for node in fgraph.nodes if node.op.phase_dependent]
    if not dependent:
        return fgraph, []
    if phase is None:
        raise PhaseError(missing_phase_message(dependent, where))
    updates: list[AutomaticUpdate] = []

    def specialize(node: Apply, inputs: list[Variable]) -> Sequence[Variable] | None:
        op = node.op
        if not op.phase_dependent:
            return None
        with building.like(node):
            if isinstance(op, InnerGraphOp) and type(op).specialize is Op.specialize:
                # A loop body holding dropout, say: the phase reaches inside.
                replacements, node_updates = _specialize_inner(node, inputs, phase)
                updates.extend((shared, value, node) for shared, value in node_updates)
                return replacements
            current = node
            if any(new is not old for new, old in zip(inputs, node.inputs)):
                current = op.make_node(*inputs)
            replacements, node_updates = op.specialize(current, phase)
        # What a specialization builds may hold phase-dependent nodes again (a subgraph's
        # gradient, say): specialize those too.
        replacements, nested = _specialize_all(list(replacements), phase, inputs)
        updates.extend((shared, value, node) for shared, value in node_updates)
        updates.extend(nested)
        return replacements

    computed, _ = rebuild(fgraph.computed, rewrite=specialize, nodes=fgraph.nodes)
    return fgraph.with_computed(computed), updates


def _specialize_inner(node: Apply, inputs: list[Variable], phase: str) -> tuple[Sequence[Variable], list]:
    """The outputs of ``node`` (an op holding graphs) with its inner graphs specialized, and the
    automatic updates that asks for. Updates inside (a batch norm's running statistics in a loop's
    step) are carried by the op when it can (a loop makes them states: each step reads the last
    step's value, the update is the value after the last step); else they are refused."""
    op = node.op
    results = [specialize_phase(graph, phase) for graph in op.inner_graphs]
    graphs = [graph for graph, _ in results]
    inner_updates = [update for _, found in results for update in found]
    if not inner_updates:
        return op.with_inner_graphs(graphs).make_node(*inputs).outputs, []
    carrying = getattr(op, "carrying_updates", None)
    carried = carrying(graphs, inner_updates, inputs) if carrying is not None else None
    if carried is None:
        raise PhaseError(
            f"{op.name}, built at {describe(node.source)}, holds nodes that update shared variables "
            f"by themselves in the {phase} phase ({', '.join(update[2].op.name for update in inner_updates)}); "
            f"{op.name} cannot carry those updates (they are supported in a loop reading the shared variable "
            "itself, not in a branch or a loop inside a loop)"
        )
    return carried


def _specialize_all(
    variables: list[Variable], phase: str, inputs: Sequence[Variable]
) -> tuple[list[Variable], list[AutomaticUpdate]]:
    """``variables``, built on ``inputs`` (specialized already), with the phase-dependent nodes
    between specialized too (only those: the walk stops at ``inputs``)."""
    if not any(node.op.phase_dependent for node in postorder(variables, inputs)):
        return variables, []
    specialized, updates = specialize_phase(FunctionGraph(inputs, variables), phase)
    return specialized.outputs, updates


def state_updates(nodes: Sequence[Apply]) -> list[AutomaticUpdate]:
    """The updates that advance the random state of the stochastic nodes among ``nodes``."""
    updates: list[AutomaticUpdate] = []
    seen: set[int] = set()
    for node in nodes:
        if node.op.stochastic:
            for shared, value in node.op.state_updates(node):
                if isinstance(shared, SharedVariable) and id(shared) not in seen:
                    seen.add(id(shared))
                    updates.append((shared, value, node))
    return updates
