"""Memory planning: which arrays a compiled function may overwrite, which it must copy, and when
it can drop them. Decided once, at compile time, from the schedule.

- *Aliasing.* An op's ``view_map`` says which outputs may share memory with an input; following
  it gives each variable its *root*, the variable whose memory it may be part of.
Which node can write where is the kernel's business (``Kernel.writes_out``: an elementwise
computation taking ``out=``; ``Kernel.destroys``: inputs a variant overwrites).

- *In place.* An elementwise node may write its result into an input array (or a writable view
  of one) that this call made, when nothing uses that array or any view of it later, and it has
  the result's dtype and shape. Where static shapes cannot prove the shape, a cheap run-time test of
  the shapes chooses between writing in place and allocating.
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


@dataclass
class InPlace:
    """Node ``node`` writes into its input at ``position``; when ``guards`` is not empty, only if
    ``input[position].shape[offset:] == input[other].shape`` for each ``(other, offset)``."""

    position: int
    guards: list[tuple[int, int]] = field(default_factory=list)


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
    """Each variable's root, and the ids of the variables that may be read-only views."""
    roots: dict[Variable, Variable] = {}
    read_only: set[int] = set()
    for node in nodes:
        for index, output in enumerate(node.outputs):
            source = node.op.view_map.get(index)
            if source is None:
                roots[output] = output
                continue
            viewed = node.inputs[source]
            roots[output] = roots.get(viewed, viewed)
            if node.op.read_only_output or id(viewed) in read_only:
                read_only.add(id(output))
    return roots, read_only


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
    root = lambda variable: roots.get(variable, variable)  # noqa: E731
    kept = {id(variable) for variable in outputs} | {id(value) for _, value in updates}

    commits = _shared_commits(nodes, outputs, updates, root, kernels) if inplace else {}
    order = [node for node in nodes if id(node) not in commits] + [node for node in nodes if id(node) in commits]
    commit_start = len(order) - len(commits)

    last_use: dict[Variable, float] = {}
    for position, node in enumerate(order):
        for variable in node.inputs:
            last_use[variable] = position
    for variable in list(outputs) + [value for _, value in updates]:
        last_use[variable] = _FOREVER
    group_end: dict[Variable, float] = {}
    for variable, end in last_use.items():
        owner = root(variable)
        group_end[owner] = max(group_end.get(owner, -1), end)

    plan: dict[int, InPlace] = {}
    if inplace:
        for position, node in enumerate(order):
            if id(node) in commits:
                plan[position] = commits[id(node)]
                continue
            choice = _choose_inplace(node, kernels[node], position, root, group_end, read_only)
            if choice is not None:
                plan[position] = choice

    deaths: dict[int, list[Variable]] = {}
    for variable, end in last_use.items():
        if variable.owner is not None and end != _FOREVER and id(variable) not in kept:
            deaths.setdefault(int(end), []).append(variable)

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
    return (
        isinstance(variable.type, TensorType)
        and variable.ndim >= 1
        and variable.ndim == result.ndim
        and variable.type.numpy_dtype == result.type.numpy_dtype
    )


def _shape_guards(node: Apply, position: int) -> list[tuple[int, int]] | None:
    """What proves that broadcasting the inputs gives input ``position``'s shape: ``[]`` when the
    static shapes prove it, run-time tests, or ``None`` when it can never hold."""
    target = node.inputs[position]
    guards = []
    for other_position, other in enumerate(node.inputs):
        if other_position == position or other is target:
            continue
        if other.ndim > target.ndim:
            return None
        if not fits_into(other.type.shape, target.type.shape):
            guards.append((other_position, target.ndim - other.ndim))
    return guards


def _choose_inplace(
    node: Apply, kernel: Kernel, position: int, root, group_end: dict, read_only: set[int]
) -> InPlace | None:
    candidates = range(len(node.inputs)) if kernel.writes_out else kernel.destroys
    if not candidates or len(node.outputs) != 1:
        return None
    result = node.outputs[0]
    for candidate in candidates:
        variable = node.inputs[candidate]
        base = root(variable)
        if (
            base.owner is None  # an input, a shared value or a constant: never ours to overwrite
            or id(variable) in read_only
            or group_end.get(base) != position  # it, or a view of it, is still needed
            or not _writable_tensor(variable, result)
        ):
            continue
        if not kernel.writes_out:
            return InPlace(candidate)
        guards = _shape_guards(node, candidate)
        if guards is not None:
            return InPlace(candidate, guards)
    return None


def _shared_commits(nodes, outputs, updates, root, kernels: dict[Apply, Kernel]) -> dict[int, InPlace]:
    """Update nodes that can write straight into their shared variable's array, by node id."""
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
                guards = _shape_guards(node, position)
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
