"""The optimizing rewrites a mode runs, in order."""

from __future__ import annotations

from ..graph.fgraph import FunctionGraph
from .algebraic import ALGEBRAIC_RULES
from .constant_folding import fold_constants
from .fusion import fuse
from .merge import merge_rule
from .walk import rewrite_locally, transform_inner_graphs


def optimize(fgraph: FunctionGraph) -> FunctionGraph:
    """Constant folding, algebraic simplification and merging, in one walk over the graph (and
    over the inner graphs of loops); then the fusions, which need to know each value's users."""
    fgraph = transform_inner_graphs(fgraph, optimize)
    fgraph = rewrite_locally(fgraph, [fold_constants, *ALGEBRAIC_RULES, merge_rule()])
    return fuse(fgraph)
