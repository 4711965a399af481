"""The optimizing rewrites a mode runs, in order."""

from __future__ import annotations

from ..graph.fgraph import FunctionGraph
from .algebraic import ALGEBRAIC_RULES
from .constant_folding import fold_constants
from .fusion import fuse
from .merge import merge_rule
from .scan import hoist_invariants, keep_last_rows, prune_scans, push_out_products
from .walk import rewrite_locally, transform_inner_graphs


def optimize(fgraph: FunctionGraph) -> FunctionGraph:
    """Constant folding, algebraic simplification and merging, in one walk over the graph (and
    over the inner graphs of loops), and the loops' own rewrites; then the fusions, which need to
    know each value's users."""
    # Loops first drop the outputs nobody reads, so that their step graphs (optimized next)
    # compute no more than that.
    fgraph = prune_scans(fgraph)
    fgraph = keep_last_rows(fgraph)
    fgraph = transform_inner_graphs(fgraph, optimize)
    fgraph = rewrite_locally(
        fgraph, [fold_constants, *ALGEBRAIC_RULES, merge_rule(), hoist_invariants, push_out_products]
    )
    return fuse(fgraph)
