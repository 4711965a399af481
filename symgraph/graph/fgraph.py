"""``FunctionGraph``: the graph one compiled function computes, as the compiler sees it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .basic import Apply, Variable
from .traversal import postorder, rebuild, schedule


class FunctionGraph:
    """The inputs, the variables computed (outputs and update values) and the nodes between them.

    Immutable: a rewrite returns a new ``FunctionGraph``. ``nodes`` is a topological order found
    cheaply; ``schedule()`` is the execution order, from networkx.
    """

    def __init__(self, inputs: Sequence[Variable], outputs: Sequence[Variable], nodes: Sequence[Apply] | None = None):
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self._nodes: list[Apply] | None = list(nodes) if nodes is not None else None

    @property
    def nodes(self) -> list[Apply]:
        """The nodes between the inputs and the outputs, each after the nodes it reads from."""
        if self._nodes is None:
            self._nodes = postorder(self.outputs, self.inputs)
        return self._nodes

    def schedule(self) -> list[Apply]:
        """The nodes in execution order (see :func:`symgraph.graph.traversal.schedule`)."""
        return schedule(self.outputs, self.inputs)

    def rewrite(self, rule: Callable[[Apply, list[Variable]], Sequence[Variable] | None]) -> "FunctionGraph":
        """A new graph where ``rule(node, new_inputs)`` may replace each node's outputs."""
        outputs, _ = rebuild(self.outputs, rewrite=rule, nodes=self.nodes)
        if all(new is old for new, old in zip(outputs, self.outputs)):
            return self
        return FunctionGraph(self.inputs, outputs)

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        return f"FunctionGraph({len(self.inputs)} inputs, {len(self.outputs)} outputs, {len(self.nodes)} nodes)"
