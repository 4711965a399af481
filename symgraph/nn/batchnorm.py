"""Batch normalization: ``batch_norm``, a phase-dependent subgraph.

``batch_norm`` builds one :class:`~symgraph.ops.subgraph.PhaseGraph` node holding two graphs of
ordinary ops on ``(x, gamma, beta, running_mean, running_var)``. Training normalizes with the
batch's mean and biased variance and updates the running statistics by itself (``(1 - momentum) *
old + momentum * batch``, with the unbiased variance for ``running_var``, as PyTorch); predicting
normalizes with the running statistics. Compiled for a phase, the node becomes that phase's graph.

``sg.grad`` runs before the phase is known, so the gradient is a ``PhaseGraph`` as well: the
gradient of each phase's graph (through the batch statistics when training). Its own gradient is
again one, so batch norm is differentiable to any order in both phases.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from ..errors import ShapeError
from ..graph.basic import Apply, SharedVariable, Variable
from ..graph.op import Op
from ..graph.type import TensorType, format_shape
from ..ops.basic import as_tensor, cast
from ..ops.elemwise import as_float, maximum, sqrt
from ..ops.shape import normalize_axes, shape_at
from ..ops.subgraph import PhaseGraph

__all__ = ["batch_norm"]

_PARAMETERS = ("gamma", "beta", "running_mean", "running_var")


def _broadcast(parameter: Variable, axes: tuple[int, ...], ndim: int) -> Variable:
    """A parameter of the kept axes' shape, broadcastable against the input."""
    kept = iter(range(parameter.ndim))
    return parameter.dimshuffle(*["x" if axis in axes else next(kept) for axis in range(ndim)])


class CheckBatch(Op):
    """The input itself, after checking at run time that the axes the statistics are taken over
    hold values: the mean of an empty batch is NaN, and would become the running statistics.
    (The error names the node through the user's line that built the batch_norm.)"""

    __props__ = ("axes",)
    view_map: ClassVar[dict[int, int]] = {0: 0}

    def __init__(self, axes: tuple[int, ...]):
        self.axes = tuple(axes)

    @property
    def name(self) -> str:
        return "check_batch"

    def output_types(self, x: TensorType) -> list[TensorType]:
        return [x]

    def perform(self, x: np.ndarray) -> np.ndarray:
        empty = [axis for axis in self.axes if x.shape[axis] == 0]
        if empty:
            raise ValueError(
                f"batch_norm in the train phase got an input of shape {x.shape}, with no value along "
                f"axis {empty[0]} to take the batch statistics from (they would be NaN, and so would the "
                "running statistics); give it at least one example, or skip empty batches"
            )
        return x

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        return [output_grads[0]]


def _train_graph(x, gamma, beta, running_mean, running_var, axes, momentum, eps):
    """The output normalized with the batch's statistics, and the running statistics' updates."""
    x = CheckBatch(axes)(x)
    mean = x.mean(axis=axes)
    centered = x - _broadcast(mean, axes, x.ndim)
    variance = (centered * centered).mean(axis=axes)
    output = centered * _broadcast(gamma / sqrt(variance + eps), axes, x.ndim) + _broadcast(beta, axes, x.ndim)
    count = shape_at(x, axes[0])
    for axis in axes[1:]:
        count = count * shape_at(x, axis)
    # n / (n - 1), and 1 for a single value (whose unbiased variance is undefined).
    correction = cast(count, x.dtype) / cast(maximum(count - 1, 1), x.dtype)
    new_mean = (1.0 - momentum) * running_mean + momentum * cast(mean, running_mean.dtype)
    new_var = (1.0 - momentum) * running_var + momentum * cast(variance * correction, running_var.dtype)
    return output, [new_mean, new_var]


def _predict_graph(x, gamma, beta, running_mean, running_var, axes, eps):
    """The output normalized with the running statistics, folded into one scale and one shift."""
    scale = gamma / sqrt(running_var + eps)
    shift = beta - running_mean * scale
    return x * _broadcast(scale, axes, x.ndim) + _broadcast(shift, axes, x.ndim)


def batch_norm(
    x: Any,
    gamma: Any,
    beta: Any,
    running_mean: SharedVariable,
    running_var: SharedVariable,
    axes: Any = None,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Variable:
    """Batch normalization of ``x`` over ``axes`` (``None``: every axis but axis 1, so per feature
    for ``(N, C)`` and per channel for ``(N, C, H, W)``); ``gamma``, ``beta`` and the running
    statistics (shared variables) have the shape of the remaining axes, ``(C,)``.

    Compiled with ``phase='train'``: ``(x - mean) / sqrt(var + eps) * gamma + beta`` with the
    batch's mean and biased variance, and the function updates the running statistics by itself
    (``new = (1 - momentum) * old + momentum * batch``, unbiased variance for ``running_var``).
    With ``phase='predict'``: the same with the running statistics, and no update.
    """
    x = as_float(as_tensor(x))
    if x.ndim < 2 and axes is None:
        raise ShapeError(f"batch_norm with axes=None needs an input of 2 or more dimensions, got {x.type.describe()}")
    axes = tuple(a for a in range(x.ndim) if a != 1) if axes is None else normalize_axes(axes, x.ndim, "axes")
    if not axes:
        raise ValueError("batch_norm needs at least one axis to normalize over")
    for what, statistic in (("running_mean", running_mean), ("running_var", running_var)):
        if not isinstance(statistic, SharedVariable):
            raise TypeError(
                f"batch_norm's {what} must be a shared variable (sg.shared), so that training can update it"
            )
        if not statistic.type.is_float:
            raise TypeError(f"batch_norm's {what} must hold floats, not {statistic.dtype}")
    if not 0.0 <= float(momentum) <= 1.0:
        raise ValueError(f"batch_norm's momentum must be in [0, 1], got {momentum}")
    if not float(eps) >= 0.0:
        raise ValueError(f"batch_norm's eps must be at least 0, got {eps}")
    gamma, beta = as_float(as_tensor(gamma)), as_float(as_tensor(beta))
    kept = tuple(length for axis, length in enumerate(x.type.shape) if axis not in axes)
    for what, parameter in zip(_PARAMETERS, (gamma, beta, running_mean, running_var)):
        fits = parameter.ndim == len(kept) and all(
            a is None or b is None or a == b for a, b in zip(parameter.type.shape, kept)
        )
        if not fits:
            raise ShapeError(
                f"batch_norm: {what} of shape {format_shape(parameter.type.shape)} does not fit an input of "
                f"shape {format_shape(x.type.shape)} normalized over axes {axes} (expected {format_shape(kept)})"
            )
    inputs = [x, gamma, beta, running_mean, running_var]
    # The graphs are built on stand-ins of the inputs, in x's dtype; PhaseGraph.build puts them
    # on placeholders of their own. The updates' targets are the shared variables themselves.
    stand_ins = [Variable(variable.type, name=variable.name) for variable in inputs]
    sx, sgamma, sbeta, smean, svar = stand_ins
    in_x_dtype = [cast(p, x.dtype) for p in (sgamma, sbeta, smean, svar)]
    output, new_statistics = _train_graph(sx, *in_x_dtype[:2], smean, svar, axes, float(momentum), float(eps))
    predicted = _predict_graph(sx, *in_x_dtype, axes, float(eps))
    op = PhaseGraph.build(
        stand_ins,
        [output],
        [predicted],
        list(zip([running_mean, running_var], new_statistics)),
        name="batch_norm",
    )
    return op(*inputs)
