"""The numpy backend, the default: one straight-line Python function generated per graph.

``kernels.py`` is its table of op kernels, ``memory.py`` plans which arrays may be overwritten,
``linker.py`` writes the program.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ...graph.fgraph import FunctionGraph
from ..base import Backend, LinkOptions, Program
from . import linker, workspace
from .kernels import Kernel, kernels_of, numpy_kernel
from .memory import plan_memory


class NumpyBackend(Backend):
    """Generated Python code calling numpy, with in-place computation planned at compile time."""

    name = "numpy"

    def link(self, fgraph: FunctionGraph, options: LinkOptions) -> Program:
        # Not for the programs other backends run (compile_inner): those say how much their
        # process may keep (a Dask worker: in proportion to its memory limit).
        workspace.keep_freed_memory()
        return self._link(fgraph, options)

    def _link(self, fgraph: FunctionGraph, options: LinkOptions) -> Program:
        started = time.perf_counter()
        order = fgraph.order
        scheduled = time.perf_counter()
        kernels = kernels_of(order)
        chosen = time.perf_counter()
        plan = plan_memory(order, fgraph.outputs, fgraph.updates, kernels, options.inplace)
        planned = time.perf_counter()
        program = linker.link(fgraph, plan, kernels, options)
        times = {"schedule": scheduled - started, "kernels": chosen - scheduled, "memory plan": planned - chosen}
        program.pass_times = {**times, **program.pass_times}
        return program

    def compile_inner(self, fgraph: FunctionGraph) -> Callable[..., Sequence[Any]]:
        run = self._link(fgraph, LinkOptions(name="inner graph", apply_updates=False)).run
        return lambda *values: run(values)


BACKEND = NumpyBackend()

__all__ = ["BACKEND", "Kernel", "NumpyBackend", "numpy_kernel"]
