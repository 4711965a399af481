"""Memory planning: which arrays a compiled function may overwrite, which it must copy, and when
it can drop them. Decided once, at compile time, from the schedule.

- *Aliasing.* An op's ``view_map`` says which outputs may share memory with an input; following
  it gives each variable its *root*, the variable whose memory it may be part of.
Which node can write where is the kernel's business (``Kernel.writes_out``: an elementwise
computation taking ``out=``; ``Kernel.destroys``: inputs a variant overwrites with its result;
``Kernel.scratches``: inputs a variant uses as working memory).

- *In place.* An elementwise node may write its result into an input array (or a writable view
  of one) that this call made, when nothing uses that array or any view of it later, and it has
  the result's dtype and shape. Where neither static shapes nor the graph (two arrays computed
  elementwise from one, or made of the same ``x.shape``: ``same_shapes``) prove the shape, a
  cheap run-time test of the shapes chooses between writing in place and allocating.
- *Shared updates in place.* ``W <- W - step`` is computed at the end of the call straight into
  ``W``'s array, as hand-written SGD does, once every output has been taken.
- *Copies.* An output that may alias an input, a shared value, a constant, a read-only view or
  another output is copied, so that the arrays returned are the caller's to keep.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ...graph.basic import Apply, SharedVariable, Variable
from ...graph.type import TensorType, fits_into
from .kernels import Kernel

_FOREVER = math.inf


@dataclass(frozen=True)
class InPlace:
    """Node ``node`` writes into its input at ``position``; when ``guards`` is not empty, only if
    for each ``(other, offset, axes)``, ``input[position].shape[offset + axis] ==
    input[other].shape[axis]`` for each of ``axes`` (``None``: every axis, the whole shape)."""

    position: int
    guards: list[tuple[int, int, tuple[int, ...] | None]] = field(default_factory=list)


_UNGUARDED: dict[int, InPlace] = {}  #: one ``InPlace(position)`` per position, shared (most choices)


def _unguarded(position: int) -> InPlace:
    choice = _UNGUARDED.get(position)
    if choice is None:
        choice = _UNGUARDED[position] = InPlace(position)
    return choice


@dataclass
class MemoryPlan:
    """What the linker needs to know about memory: the order, the in-place writes, when each
    intermediate can be dropped, and which outputs and update values to copy."""

    order: list[Apply]  #: execution order; nodes committing shared updates in place come last
    commit_start: int  #: ``order[commit_start:]`` compute shared updates in place
    inplace: dict[int, InPlace]  #: by position in ``order``
    deaths: dict[int, list[Variable]]  #: intermediates to drop after the node at that position
    copied_outputs: set[int]  #: user outputs to copy before returning
    copied_updates: set[int]  #: update values to copy before committing

    def commits(self) -> list[tuple[int, InPlace]]:
        """The positions and in-place choices of the nodes computing updates into shared arrays."""
        return [(position, self.inplace[position]) for position in range(self.commit_start, len(self.order))]


def alias_roots(nodes: Sequence[Apply]) -> tuple[dict[Variable, Variable], set[int]]:
    """The root of each variable that may be a view (others are their own: ``roots.get(variable,
    variable)``), and the ids of the variables that may be read-only views."""
    roots: dict[Variable, Variable] = {}
    read_only: set[int] = set()
    for node in nodes:
        view_map = node.op.view_map
        if not view_map:
            continue
        for index, output in enumerate(node.outputs):
            source = view_map.get(index)
            if source is None:
                continue
            viewed = node.inputs[source]
            roots[output] = roots.get(viewed, viewed)
            if node.op.read_only_output or id(viewed) in read_only:
                read_only.add(id(output))
    return roots, read_only


def same_shapes(nodes: Sequence[Apply], kernels: dict[Apply, Kernel]) -> dict[int, int]:
    """Classes of variables whose arrays certainly have the same shape when the graph runs, whatever
    the unknown lengths: ``id(variable) -> id`` of the first variable of its class (a variable
    missing is alone in its). An elementwise result has the shape of an input that the others
    broadcast into without changing it; ``x.shape`` carries ``x``'s class to what is shaped by it."""
    classes: dict[int, int] = {}
    kind = classes.get  # kind(id(variable), id(variable)): a variable's class (run for every node)
    shape_values: dict[int, int] = {}  # id of a shape vector -> the class of the array it measures
    for node in nodes:
        kernel = kernels[node]
        inputs = node.inputs
        if kernel.writes_out and len(node.outputs) == 1:
            output_shape = node.outputs[0].type.shape
            if len(inputs) == 1:
                if len(inputs[0].type.shape) == len(output_shape):
                    classes[id(node.outputs[0])] = kind(id(inputs[0]), id(inputs[0]))
                continue
            for variable in inputs:
                shape = variable.type.shape
                if len(shape) != len(output_shape):
                    continue
                variable_kind = kind(id(variable), id(variable))
                for other in inputs:
                    if not (
                        other is variable
                        or not (other_shape := other.type.shape)  # 0-d: broadcasts into anything
                        or fits_into(other_shape, shape)
                        or kind(id(other), id(other)) == variable_kind
                    ):
                        break
                else:
                    classes[id(node.outputs[0])] = variable_kind
                    break
        elif kernel.shape_value_of is not None:
            measuring = inputs[kernel.shape_value_of]
            shape_values[id(node.outputs[0])] = kind(id(measuring), id(measuring))
        if kernel.shaped_by is not None:
            output_index, input_index = kernel.shaped_by
            measured = shape_values.get(id(inputs[input_index]))
            if measured is not None:
                classes[id(node.outputs[output_index])] = measured
    return classes


def plan_memory(
    nodes: Sequence[Apply],
    outputs: Sequence[Variable],
    updates: Sequence[tuple[SharedVariable, Variable]],
    kernels: dict[Apply, Kernel],
    inplace: bool,
) -> MemoryPlan:
    """The memory plan of ``nodes`` (in execution order, each run by ``kernels[node]``) computing
    ``outputs`` and ``updates``; ``inplace=False`` (modes without in-place computation) plans no
    overwrite at all."""
    roots, read_only = alias_roots(nodes)
    root_of = roots.get
    root = lambda variable: root_of(variable, variable)  # noqa: E731
    classes = same_shapes(nodes, kernels) if inplace else {}
    kept = {id(variable) for variable in outputs} | {id(value) for _, value in updates}

    commits = _shared_commits(nodes, outputs, updates, root, kernels, classes) if inplace else {}
    if commits:
        order = [node for node in nodes if id(node) not in commits] + [node for node in nodes if id(node) in commits]
    else:
        order = list(nodes)
    commit_start = len(order) - len(commits)

    # Run once per node of every graph compiled, so written for speed.
    last_use: dict[Variable, int] = {}  # where each variable is read last
    for position, node in enumerate(order):
        for variable in node.inputs:
            last_use[variable] = position
    # Where each group of arrays that may share memory (a root and its views) is read last.
    group_end: dict[Variable, float] = dict(last_use)
    for view, owner in roots.items():
        end = group_end.pop(view, None)
        if end is not None and group_end.get(owner, -1) < end:
            group_end[owner] = end
    for variable in list(outputs) + [value for _, value in updates]:  # read after the last node
        group_end[root_of(variable, variable)] = _FOREVER

    plan: dict[int, InPlace] = {}
    if inplace:
        # A node can only overwrite an array whose group ends there: elsewhere nothing is asked.
        ending = set(group_end.values())
        for position, node in enumerate(order):
            if position not in ending:
                continue
            if commits and id(node) in commits:
                continue
            choice = _choose_inplace(node, kernels[node], position, roots, group_end, read_only, classes)
            if choice is not None:
                plan[position] = choice
        for position in range(commit_start, len(order)):
            plan[position] = commits[id(order[position])]

    deaths: dict[int, list[Variable]] = {}
    dying_at = deaths.get
    for variable, end in last_use.items():
        if variable.owner is not None and id(variable) not in kept:
            dying = dying_at(end)
            if dying is None:
                deaths[end] = [variable]
            else:
                dying.append(variable)

    copied_outputs: set[int] = set()
    claimed: set[int] = set()  # roots already handed to the caller or to a shared variable
    update_roots = {id(root(value)) for _, value in updates}
    for index, output in enumerate(outputs):
        owner = root(output)
        if owner.owner is None or id(owner) in claimed or id(owner) in update_roots or id(output) in read_only:
            copied_outputs.add(index)
        claimed.add(id(owner))
    copied_updates: set[int] = set()
    for index, (shared, value) in enumerate(updates):
        committed_in_place = value.owner is not None and id(value.owner) in commits
        if committed_in_place or not isinstance(shared.type, TensorType):
            continue
        owner = root(value)
        if owner.owner is None or id(owner) in claimed or id(value) in read_only:
            copied_updates.add(index)
        claimed.add(id(owner))
    return MemoryPlan(order, commit_start, plan, deaths, copied_outputs, copied_updates)


def _writable_tensor(variable: Variable, result: Variable) -> bool:
    variable_type, result_type = variable.type, result.type
    if variable_type is result_type:  # (types are interned: most in-place candidates)
        return isinstance(variable_type, TensorType) and len(variable_type.shape) >= 1
    return (
        isinstance(variable_type, TensorType)
        and len(variable_type.shape) == len(result_type.shape) >= 1
        and variable_type.dtype == result_type.dtype
    )


def _shape_guards(node: Apply, position: int, classes: dict[int, int]) -> list[tuple] | None:
    """What proves that broadcasting the inputs gives input ``position``'s shape: ``[]`` when the
    static shapes or the shape classes prove it, run-time tests, or ``None`` when it can never
    hold. Only the axes the static shapes leave open are tested (a bias of static shape
    ``(1, ?, 1, 1)`` is tested on its second axis alone)."""
    target = node.inputs[position]
    target_shape = target.type.shape
    kind = None  # the target's shape class, looked up when static shapes do not settle it
    guards = []
    for other_position, other in enumerate(node.inputs):
        if other_position == position or other is target:
            continue
        other_shape = other.type.shape
        if not other_shape:  # 0-d: broadcasts into anything
            continue
        offset = len(target_shape) - len(other_shape)
        if offset < 0:
            return None
        if fits_into(other_shape, target_shape):
            continue
        if kind is None:
            kind = classes.get(id(target), id(target))
        if classes.get(id(other), id(other)) == kind:
            continue
        axes = tuple(
            axis
            for axis, length in enumerate(other_shape)
            if length != 1 and (length is None or length != target_shape[offset + axis])
        )
        guards.append((other_position, offset, None if len(axes) == len(other_shape) else axes))
    return guards


def _choose_inplace(
    node: Apply, kernel: Kernel, position: int, roots: dict, group_end: dict, read_only: set[int], classes: dict
) -> InPlace | None:
    # Run for most nodes of every graph compiled, so written for speed.
    outputs = node.outputs
    if len(outputs) != 1:
        return None
    inputs = node.inputs
    writes_out = kernel.writes_out
    if writes_out:
        candidates: Sequence[int] = range(len(inputs)) if len(inputs) > 1 else (0,)
    elif kernel.destroys:
        candidates = kernel.destroys
    elif kernel.scratches:
        candidates = kernel.scratches
    else:
        return None
    result = outputs[0]
    result_type = result.type
    get_root = roots.get
    for candidate in candidates:
        variable = inputs[candidate]
        base = get_root(variable, variable)
        if (
            group_end.get(base) != position  # it, or a view of it, is still needed
            or base.owner is None  # an input, a shared value or a constant: never ours to overwrite
            or (read_only and id(variable) in read_only)
        ):
            continue
        variable_type = variable.type
        if kernel.scratches:  # working memory: any array of ours will do
            if isinstance(variable_type, TensorType) and variable_type.shape:
                return _unguarded(candidate)
            continue
        if variable_type is result_type:  # (types are interned: most in-place candidates)
            if not (isinstance(variable_type, TensorType) and variable_type.shape):
                continue
        elif not _writable_tensor(variable, result):
            continue
        if not writes_out or len(inputs) == 1:
            return _unguarded(candidate)
        guards = _shape_guards(node, candidate, classes)
        if guards is not None:
            return InPlace(candidate, guards) if guards else _unguarded(candidate)
    return None


def _shared_commits(nodes, outputs, updates, root, kernels: dict[Apply, Kernel], classes: dict) -> dict[int, InPlace]:
    """Update nodes that can write straight into their shared variable's array, by node id."""
    if not updates:
        return {}
    used = {id(variable) for node in nodes for variable in node.inputs}
    used |= {id(variable) for variable in outputs}
    values = [value for _, value in updates]
    # Update values that are a shared array (or a view of one) are copied after the commits run,
    # so a commit must not overwrite such an array first.
    read_by_updates = {id(root(value)) for value in values}
    commits: dict[int, InPlace] = {}
    targets: set[int] = set()
    for shared, value in updates:
        node = value.owner
        if (
            node is None
            or not kernels[node].writes_out
            or len(node.outputs) != 1
            or id(value) in used
            or id(shared) in read_by_updates
            or sum(other is value for other in values) != 1
            or not isinstance(shared.type, TensorType)
        ):
            continue
        for position, variable in enumerate(node.inputs):
            if variable is shared and _writable_tensor(shared, value):
                guards = _shape_guards(node, position, classes)
                if guards is not None:
                    commits[id(node)] = InPlace(position, guards)
                    targets.add(id(shared))
                break
    # A commit must not read an array another commit has already overwritten.
    for shared, value in updates:
        node = value.owner
        if node is not None and id(node) in commits:
            reads_other = any(
                id(root(variable)) in targets and root(variable) is not shared for variable in node.inputs
            )
            if reads_other:
                del commits[id(node)]
    return commits
