"""Constant folding: a node whose inputs are all constants is computed once, when compiling."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..graph.basic import Apply, Constant, Variable
from ..graph.type import TensorType
from ..ops.shape import AllocEmpty

#: Larger results stay in the graph: embedding them would cost memory for every compiled function.
MAX_FOLDED_SIZE = 10_000


def fold_constants(node: Apply) -> Sequence[Variable] | None:
    """The node's outputs as constants, computed now, when all its inputs are constants (and the
    results are small); never for random or phase-dependent nodes."""
    if not node.inputs:
        return None
    for variable in node.inputs:
        if not isinstance(variable, Constant):
            return None
    if node.op.stochastic or node.op.phase_dependent:
        return None
    if isinstance(node.op, AllocEmpty):  # a buffer to write into: as a constant, it would be copied
        return None
    if not all(isinstance(output.type, TensorType) for output in node.outputs):
        return None
    for output in node.outputs:
        if None not in output.type.shape and int(np.prod(output.type.shape)) > MAX_FOLDED_SIZE:
            return None
    try:
        with np.errstate(all="ignore"):
            values = node.op.perform(*[variable.data for variable in node.inputs])
    except Exception:
        return None
    values = values if len(node.outputs) > 1 else (values,)
    folded = []
    for output, value in zip(node.outputs, values):
        value = np.asarray(value)
        if value.size > MAX_FOLDED_SIZE or value.dtype != output.type.numpy_dtype:
            return None
        folded.append(Constant(TensorType(value.dtype, value.shape), value, name=output.name))
    return folded
