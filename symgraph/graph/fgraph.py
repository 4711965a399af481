"""``FunctionGraph``: the graph one compiled function computes, as the compiler sees it.

Compiling is a pipeline of passes over one ``FunctionGraph``: each pass takes it and returns a new
one (or the same, when it changes nothing). It knows its inputs, its outputs and its updates, and,
computed once when first asked, its nodes, their execution order and each variable's clients.
Inner graphs (the body of an ``OpFromGraph``, of a loop or a branch) are ``FunctionGraph``\\ s too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .basic import Apply, SharedVariable, Variable
from .traversal import postorder, rebuild, schedule

Update = tuple[SharedVariable, Variable]


class FunctionGraph:
    """The inputs, the outputs, the ``(shared variable, new value)`` updates, and the nodes
    between them.

    Immutable: ``replace`` and ``rewrite`` return a new ``FunctionGraph``. ``nodes`` is a
    topological order found cheaply; ``order`` the execution order; ``clients``
    who uses each variable.
    """

    def __init__(
        self,
        inputs: Sequence[Variable],
        outputs: Sequence[Variable],
        updates: Sequence[Update] = (),
        nodes: Sequence[Apply] | None = None,
    ):
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.updates = list(updates)
        self._nodes: list[Apply] | None = list(nodes) if nodes is not None else None
        self._order: list[Apply] | None = None
        self._clients: dict[Variable, list[tuple[Apply, int]]] | None = None

    @property
    def computed(self) -> list[Variable]:
        """Every variable the graph computes: the outputs, then the updates' new values."""
        return self.outputs + [value for _, value in self.updates]

    @property
    def nodes(self) -> list[Apply]:
        """The nodes between the inputs and what is computed, each after the nodes it reads."""
        if self._nodes is None:
            self._nodes = postorder(self.computed, self.inputs)
        return self._nodes

    @property
    def order(self) -> list[Apply]:
        """The nodes in execution order (see :func:`symgraph.graph.traversal.schedule`)."""
        if self._order is None:
            self._order = schedule(self.computed, self.inputs, self.nodes)
        return self._order

    @property
    def clients(self) -> dict[Variable, list[tuple[Apply, int]]]:
        """For each variable of the graph, the nodes that use it and at which input position."""
        if self._clients is None:
            clients: dict[Variable, list[tuple[Apply, int]]] = {}
            for node in self.nodes:
                for position, variable in enumerate(node.inputs):
                    clients.setdefault(variable, []).append((node, position))
            self._clients = clients
        return self._clients

    def with_computed(self, computed: Sequence[Variable], updates: Sequence[Update] | None = None) -> "FunctionGraph":
        """The same inputs with new outputs and update values (``computed``: outputs, then one
        value per update), keeping the update targets unless ``updates`` gives new ones."""
        targets = [shared for shared, _ in (self.updates if updates is None else updates)]
        count = len(computed) - len(targets)
        return FunctionGraph(self.inputs, computed[:count], list(zip(targets, computed[count:])))

    def replace(self, replacements: dict[Variable, Variable]) -> "FunctionGraph":
        """A new graph where the given variables are replaced (``givens``)."""
        computed, _ = rebuild(self.computed, replacements)
        return self.with_computed(computed)

    def rewrite(self, rule: Callable[[Apply, list[Variable]], Sequence[Variable] | None]) -> "FunctionGraph":
        """A new graph where ``rule(node, new_inputs)`` may replace each node's outputs."""
        computed, _ = rebuild(self.computed, rewrite=rule, nodes=self.nodes)
        if all(new is old for new, old in zip(computed, self.computed)):
            return self
        return self.with_computed(computed)

    def __getstate__(self) -> dict:
        # What is computed on demand is not part of the graph.
        return {"inputs": self.inputs, "outputs": self.outputs, "updates": self.updates}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["inputs"], state["outputs"], state["updates"])  # type: ignore[misc]

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        return (
            f"FunctionGraph({len(self.inputs)} inputs, {len(self.outputs)} outputs, "
            f"{len(self.updates)} updates, {len(self.nodes)} nodes)"
        )
