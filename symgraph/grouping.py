"""Groups: the nodes one user-level call built (a ``batch_norm``, a loss, an optimizer's update of
one parameter, a dropout), as ``debugprint``, the pictures and the explorer show them.

A group is a node's ``scope`` (:class:`symgraph.graph.source.Scope`) seen in one graph: its ops,
and the variables that only they touch. A variable belongs to the innermost group holding every
op that makes or reads it, except:

- the inputs of a function and its outputs, which always stay outside, in sight;
- a shared variable read only, never updated (a weight, the running statistics while
  predicting): it stays outside too, so that a picture shows what a group reads;
- a shared variable the group updates and only it reads (an optimizer's moments, a dropout's
  random generator, the running statistics while training) is the group's own state: it goes in
  the group, and the group lists it in ``updates``.

The update edge itself (new value to shared variable) is not a reason to stay outside: a
parameter's new value is inside the group that computes it, and a collapsed group sends its update
straight to the parameter.

The gradient nodes one call of ``sg.grad`` made (directly, or through an optimizer) form a group
too, ``gradients``, as TensorBoard shows them: those of no scope, and the gradient scopes
(``dropout (gradient)``) that hold nothing but gradient nodes, nested in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .graph.basic import Apply, SharedVariable, Variable
from .graph.source import Scope, Source

__all__ = ["Group", "Grouping", "group_graph"]


@dataclass(eq=False)
class Group:
    """One scope as it appears in one graph. ``key`` is ``'group0'``, ``'group1'``... in the order
    the graph first uses them; ``ops`` counts the ops directly in it (not in nested groups)."""

    key: str
    name: str
    parent: Group | None
    source: Source | None
    ops: int = 0
    updates: list[str] = field(default_factory=list)

    @property
    def depth(self) -> int:
        """How many groups hold this one."""
        return len(self.path()) - 1

    def path(self) -> tuple[Group, ...]:
        """The groups from the outermost to this one."""
        chain: list[Group] = []
        group: Group | None = self
        while group is not None:
            chain.append(group)
            group = group.parent
        return tuple(reversed(chain))

    def names(self) -> tuple[str, ...]:
        """The scope names from the outermost to this one: ``('batch_norm',)``."""
        return tuple(group.name for group in self.path())

    def __repr__(self) -> str:
        return f"Group({self.key}: {' / '.join(self.names())})"


@dataclass
class Grouping:
    """The groups of one graph, and the group of each of its nodes and variables (by ``id``;
    ``None``: outside every group)."""

    groups: dict[str, Group]
    of_node: dict[int, Group | None]
    of_variable: dict[int, Group | None]


def lowest_common(groups: Iterable[Group | None]) -> Group | None:
    """The innermost group holding all of ``groups`` (``None`` if one of them is ``None``)."""
    common: tuple[Group, ...] | None = None
    for group in groups:
        if group is None:
            return None
        path = group.path()
        if common is None:
            common = path
            continue
        length = 0
        for mine, theirs in zip(common, path):
            if mine is not theirs:
                break
            length += 1
        common = common[:length]
        if not common:
            return None
    return common[-1] if common else None


def group_graph(
    nodes: Sequence[Apply],
    inputs: Sequence[Variable],
    outputs: Sequence[Variable],
    updates: Sequence[tuple[SharedVariable, Variable]],
) -> Grouping:
    """The groups of the graph made of ``nodes`` (each after the nodes it reads), with its declared
    ``inputs``, its ``outputs`` and its ``updates``."""
    groups: dict[str, Group] = {}
    by_scope: dict[int, Group] = {}

    def group_of(scope: Scope | None) -> Group | None:
        if scope is None:
            return None
        found = by_scope.get(id(scope))
        if found is None:
            parent = group_of(scope.parent)
            key = f"group{len(groups)}"
            found = groups[key] = by_scope[id(scope)] = Group(key, scope.name, parent, scope.source)
        return found

    of_node = {id(node): group_of(node.scope) for node in nodes}
    _gather_gradients(nodes, of_node, groups)
    readers: dict[int, list[Group | None]] = {}
    for node in nodes:
        group = of_node[id(node)]
        if group is not None:
            group.ops += 1
        for variable in node.inputs:
            readers.setdefault(id(variable), []).append(group)

    outside = {id(variable) for variable in (*inputs, *outputs)}
    updated = {id(shared): value for shared, value in updates}
    of_variable: dict[int, Group | None] = {}

    def place(variable: Variable) -> None:
        key = id(variable)
        if key in of_variable:
            return
        if key in outside:
            of_variable[key] = None
        elif variable.owner is not None:
            of_variable[key] = lowest_common([of_node.get(id(variable.owner)), *readers.get(key, [])])
        elif isinstance(variable, SharedVariable):
            value = updated.get(key)
            maker = None if value is None or value.owner is None else of_node.get(id(value.owner))
            group = None if maker is None else lowest_common([maker, *readers.get(key, [])])
            of_variable[key] = group
            if group is not None:
                group.updates.append(variable.label())
        elif key in readers:  # a constant
            of_variable[key] = lowest_common(readers[key])
        else:
            of_variable[key] = None

    for variable in (*inputs, *outputs):
        place(variable)
    for node in nodes:
        for variable in (*node.inputs, *node.outputs):
            place(variable)
    for shared, value in updates:
        place(shared)
        place(value)
    return Grouping(groups, of_node, of_variable)


def _gather_gradients(nodes: Sequence[Apply], of_node: dict[int, Group | None], groups: dict[str, Group]) -> None:
    """Put the gradient nodes of each call of ``sg.grad`` (told apart by the user's line, which
    they all carry) into one ``gradients`` group: the nodes of no scope, and the outermost groups
    that hold gradient nodes only."""
    forward: set[str] = set()  # outermost groups holding a node that is not a gradient
    for node in nodes:
        group = of_node[id(node)]
        if group is not None and not node.gradient:
            forward.add(group.path()[0].key)
    made: dict[Source | None, Group] = {}

    def gradients(source: Source | None) -> Group:
        found = made.get(source)
        if found is None:
            key = f"group{len(groups)}"
            found = made[source] = groups[key] = Group(key, "gradients", None, source)
        return found

    for node in nodes:
        if not node.gradient:
            continue
        group = of_node[id(node)]
        if group is None:
            of_node[id(node)] = gradients(node.source)
            continue
        outermost = group.path()[0]
        if outermost.parent is None and outermost.key not in forward and outermost.name != "gradients":
            outermost.parent = gradients(node.source)
