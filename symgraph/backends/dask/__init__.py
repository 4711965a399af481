"""The dask backend: the same graph on ``dask.array``, so on any ``dask.distributed`` cluster.

``sg.function(..., backend='dask')`` takes numpy or dask arrays, chunked along any axis. Its table,
``dask_kernel`` (``kernels.py``, ``nn.py``, ``random.py``), maps elementwise ops and reductions to
dask's own, products to its ``tensordot``, and per-sample ops (softmax, convolution, pooling) to
``map_blocks``/``blockwise`` over their own ``perform``. On a batch chunked by rows, what works
sample by sample runs as one numpy-compiled program per chunk (``membership.py``, ``regions.py``).
``program.py`` interprets the graph and computes or returns the result:

- with updates, one ``dask.compute`` of the outputs and the new values, on the active
  ``Client`` if there is one, then the updates committed all or none. A reduction over the batch
  (the mean loss, each weight's gradient) is a tree of partial sums over the batch's chunks: on a
  batch chunked across workers, a train function is data-parallel training;
- without updates, dask arrays, lazily: a predict function applied to ``da.from_zarr(...)``
  streams through data larger than memory, and ``.to_zarr(...)`` stores its result.

Random draws depend on the seed and the chunking only (``random.py``). Needs the ``dask`` extra:
``pip install 'symgraph[dask]'``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

try:
    import dask
    import dask.array  # noqa: F401
except ImportError as error:  # pragma: no cover - what a machine without the extra sees
    raise ImportError(
        "backend 'dask' needs Dask: pip install 'symgraph[dask]' (dask[array], distributed, zarr)"
    ) from error

from ...graph.fgraph import FunctionGraph
from ..base import Backend, LinkOptions, Program
from . import control, nn, random  # noqa: F401  (their entries join the table)
from .blocks import RechunkWarning
from .kernels import Kernel, dask_kernel, register_per_block
from .program import inner, link


class DaskBackend(Backend):
    """The graph interpreted into dask arrays: computed in one ``dask.compute`` when the function
    has updates, returned lazily otherwise."""

    name = "dask"

    def link(self, fgraph: FunctionGraph, options: LinkOptions) -> Program:
        return link(fgraph, options)

    def compile_inner(self, fgraph: FunctionGraph) -> Callable[..., Sequence[Any]]:
        return inner(fgraph)


BACKEND = DaskBackend()

__all__ = ["BACKEND", "DaskBackend", "Kernel", "RechunkWarning", "dask_kernel", "register_per_block"]
