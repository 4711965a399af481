"""The numpy backend, the default: one straight-line Python function generated per graph.

``kernels.py`` is its table of op kernels, ``memory.py`` plans which arrays may be overwritten,
``linker.py`` writes the program.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ...graph.fgraph import FunctionGraph
from ..base import Backend, LinkOptions, Program
from . import linker
from .kernels import Kernel, numpy_kernel
from .memory import plan_memory


class NumpyBackend(Backend):
    """Generated Python code calling numpy, with in-place computation planned at compile time."""

    name = "numpy"

    def link(self, fgraph: FunctionGraph, options: LinkOptions) -> Program:
        order = fgraph.order
        kernels = {node: numpy_kernel(node.op, node) for node in order}
        plan = plan_memory(order, fgraph.outputs, fgraph.updates, kernels, options.inplace)
        return linker.link(fgraph, plan, kernels, options)

    def compile_inner(self, fgraph: FunctionGraph) -> Callable[..., Sequence[Any]]:
        run = self.link(fgraph, LinkOptions(name="inner graph", apply_updates=False)).run
        return lambda *values: run(values)


BACKEND = NumpyBackend()

__all__ = ["BACKEND", "Kernel", "NumpyBackend", "numpy_kernel"]
