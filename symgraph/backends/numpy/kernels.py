"""The numpy backend's table: for each op class, the kernel its nodes run.

``numpy_kernel(op, node)`` dispatches on the op's class (``functools.singledispatch``); an op
without an entry runs its ``perform``. Entries exist where the numpy backend can do better than
the reference computation: elementwise computations that write into a given array (``out=``),
indexed assignments that overwrite their input, work settled once per node from static shapes,
and ops holding an inner graph, which the backend compiles.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...graph.basic import Apply
from ...graph.op import Op
from ...ops.elemwise import Elemwise
from ...ops.ifelse import IfElse
from ...ops.linalg import Dot, Matmul
from ...ops.scan import Scan
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
    #: The same computation as a Python expression on numpy scalars (``"{0} + {1}"``): inside
    #: loops, arithmetic on 0-d values is written so, several times faster than a ufunc call.
    scalar_expression: str | None = None


@functools.singledispatch
def numpy_kernel(op: Op, node: Apply) -> Kernel:
    """The kernel of ``node``: its op's ``perform`` unless the op's class has an entry."""
    return Kernel(op.perform)


# numpy scalars follow the ufuncs' dtype rules in these operators (numpy >= 2)
_SCALAR_EXPRESSIONS = {
    np.add: "{0} + {1}",
    np.subtract: "{0} - {1}",
    np.multiply: "{0} * {1}",
    np.true_divide: "{0} / {1}",
    np.negative: "-{0}",
    np.less: "{0} < {1}",
    np.less_equal: "{0} <= {1}",
    np.greater: "{0} > {1}",
    np.greater_equal: "{0} >= {1}",
}


@numpy_kernel.register
def _elemwise(op: Elemwise, node: Apply) -> Kernel:
    output = node.outputs[0]
    scalar = output.ndim == 0 and output.type.numpy_dtype.kind in "fb" and all(v.ndim == 0 for v in node.inputs)
    expression = _SCALAR_EXPRESSIONS.get(op.function) if scalar else None
    return Kernel(op.function, writes_out=op.accepts_out, scalar_expression=expression)


@numpy_kernel.register
def _dot(op: Dot, node: Apply) -> Kernel:
    return Kernel(np.dot)


@numpy_kernel.register
def _matmul(op: Matmul, node: Apply) -> Kernel:
    return Kernel(np.matmul)


@numpy_kernel.register
def _sum_to(op: SumTo, node: Apply) -> Kernel:
    return Kernel(op.summer(node.inputs[0].ndim))


@numpy_kernel.register
def _subtensor(op: Subtensor, node: Apply) -> Kernel:
    index_of = indexer(op.spec)
    if len(node.inputs) == 1:  # a fixed index: built once (itemgetter: no Python frame per call)
        return Kernel(operator.itemgetter(index_of(())))
    return Kernel(lambda x, *values: x[index_of(values)])


@numpy_kernel.register
def _inc_subtensor(op: IncSubtensor, node: Apply) -> Kernel:
    return Kernel(op.writer(inplace=False), destroys=(0,), inplace_function=op.writer(inplace=True))


@numpy_kernel.register
def _map(op: Map, node: Apply) -> Kernel:
    from . import BACKEND  # the inner graph is compiled by this very backend

    return Kernel(op.kernel(BACKEND.compile_inner))


@numpy_kernel.register
def _scan(op: Scan, node: Apply) -> Kernel:
    from .loop import link_scan  # the loop's body is linked by this very backend

    return Kernel(link_scan(op))


@numpy_kernel.register
def _ifelse(op: IfElse, node: Apply) -> Kernel:
    from . import BACKEND

    return Kernel(op.kernel(BACKEND.compile_inner))
