"""``inline_subgraphs``: each ``OpFromGraph`` node replaced by its inner graph, so that the rest
of the compiler (phases, random state, rewrites, memory planning, the backend) sees inside it.

The inlined nodes keep the subgraph as their scope, so that printing and pictures of the compiled
function still show it as one box. Subgraphs inside subgraphs are inlined too, and so are those
inside the inner graphs of loops and phase graphs.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..graph.basic import Apply, Variable
from ..graph.fgraph import FunctionGraph
from ..graph.source import Scope, building
from ..ops.subgraph import OpFromGraph, instantiate
from .walk import transform_inner_graphs


def inline_subgraphs(fgraph: FunctionGraph) -> FunctionGraph:
    """``fgraph`` with every ``OpFromGraph`` node (at any depth) replaced by its inner graph."""
    fgraph = transform_inner_graphs(fgraph, inline_subgraphs)
    if not any(isinstance(node.op, OpFromGraph) for node in fgraph.nodes):
        return fgraph

    def inline(node: Apply, inputs: list[Variable]) -> Sequence[Variable] | None:
        if not isinstance(node.op, OpFromGraph):
            return None
        inner = inline_subgraphs(node.op.fgraph)
        with building(gradient=node.gradient):
            return instantiate(inner, inputs, Scope(node.op.name, node.scope, node.source))

    return fgraph.rewrite(inline)
