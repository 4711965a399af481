"""Merging: nodes that apply equal ops to the same inputs (or to equal constants) are computed
once. Random nodes are never merged: two draws are two draws."""

from __future__ import annotations

from collections.abc import Sequence

from ..graph.basic import Apply, Constant, Variable
from .walk import Rule


def merge_rule() -> Rule:
    """A rule that replaces a node by an equal one seen earlier in the same walk."""
    seen: dict[tuple, Apply] = {}

    def merge(node: Apply) -> Sequence[Variable] | None:
        op = node.op
        if op.stochastic:
            return None
        key = (op, *[value.key() if isinstance(value, Constant) else id(value) for value in node.inputs])
        earlier = seen.setdefault(key, node)
        return None if earlier is node else earlier.outputs

    return merge
