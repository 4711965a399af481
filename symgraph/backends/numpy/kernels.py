"""The numpy backend's table: for each op class, the kernel its nodes run.

``numpy_kernel(op, node)`` dispatches on the op's class (``functools.singledispatch``); an op
without an entry runs its ``perform``. Entries exist where the numpy backend can do better than
the reference computation: elementwise computations that write into a given array (``out=``),
indexed assignments that overwrite their input, work settled once per node from static shapes,
and ops holding an inner graph, which the backend compiles.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...graph.basic import Apply
from ...graph.op import Op
from ...ops.elemwise import Elemwise
from ...ops.shape import SumTo
from ...ops.subgraph import Map
from ...ops.subtensor import IncSubtensor, Subtensor, indexer


@dataclass(frozen=True)
class Kernel:
    """What the generated program calls for one node."""

    function: Callable[..., Any]  #: input values in, the output (a tuple if several) out
    #: ``function(*inputs, out=array)`` writes its single result into ``array``, an input of the
    #: result's dtype and broadcast shape (elementwise computations).
    writes_out: bool = False
    #: Inputs that ``inplace_function`` overwrites to make its result (``set_subtensor``).
    destroys: tuple[int, ...] = ()
    inplace_function: Callable[..., Any] | None = None


@functools.singledispatch
def numpy_kernel(op: Op, node: Apply) -> Kernel:
    """The kernel of ``node``: its op's ``perform`` unless the op's class has an entry."""
    return Kernel(op.perform)


@numpy_kernel.register
def _elemwise(op: Elemwise, node: Apply) -> Kernel:
    return Kernel(op.function, writes_out=op.accepts_out)


@numpy_kernel.register
def _sum_to(op: SumTo, node: Apply) -> Kernel:
    return Kernel(op.summer(node.inputs[0].ndim))


@numpy_kernel.register
def _subtensor(op: Subtensor, node: Apply) -> Kernel:
    index_of = indexer(op.spec)
    if len(node.inputs) == 1:  # a fixed index: built once
        index = index_of(())
        return Kernel(lambda x: x[index])
    return Kernel(lambda x, *values: x[index_of(values)])


@numpy_kernel.register
def _inc_subtensor(op: IncSubtensor, node: Apply) -> Kernel:
    return Kernel(op.writer(inplace=False), destroys=(0,), inplace_function=op.writer(inplace=True))


@numpy_kernel.register
def _map(op: Map, node: Apply) -> Kernel:
    from . import BACKEND  # the inner graph is compiled by this very backend

    return Kernel(op.kernel(BACKEND.compile_inner))
