"""Batch normalization: ``batch_norm``, a phase-dependent op.

``BatchNorm`` stays one node until a function is compiled for a phase; then it becomes ordinary
ops. Training normalizes with the batch's mean and biased variance and asks for two automatic
updates of the running statistics (``(1 - momentum) * old + momentum * batch``, with the unbiased
variance for ``running_var``, as PyTorch); predicting normalizes with the running statistics.

``sg.grad`` runs before the phase is known, so the gradient is a phase-dependent node as well,
``PhaseGradient``: specialized, it is the gradient of that phase's expression (through the batch
statistics when training). Its own gradient is again a ``PhaseGradient``, so batch norm is
differentiable to any order in both phases.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import ShapeError
from ..graph.basic import Apply, SharedVariable, Variable
from ..graph.op import Op
from ..graph.traversal import rebuild
from ..graph.type import TensorType, format_shape
from ..ops.basic import as_tensor, cast
from ..ops.elemwise import as_float, maximum, sqrt
from ..ops.shape import normalize_axes, shape_at, zeros_like

__all__ = ["BatchNorm", "PhaseGradient", "batch_norm"]

_PARAMETERS = ("gamma", "beta", "running_mean", "running_var")


class BatchNorm(Op):
    """``(x, gamma, beta, running_mean, running_var) -> y``, normalized over ``axes``."""

    __props__ = ("axes", "momentum", "eps")
    phase_dependent = True

    def __init__(self, axes: tuple[int, ...], momentum: float, eps: float):
        self.axes = axes
        self.momentum = momentum
        self.eps = eps

    def output_types(self, x: TensorType, *parameters: TensorType) -> list[TensorType]:
        kept = tuple(length for axis, length in enumerate(x.shape) if axis not in self.axes)
        for what, parameter in zip(_PARAMETERS, parameters):
            fits = parameter.ndim == len(kept) and all(
                a is None or b is None or a == b for a, b in zip(parameter.shape, kept)
            )
            if not fits:
                raise ShapeError(
                    f"batch_norm: {what} of shape {format_shape(parameter.shape)} does not fit an input of "
                    f"shape {format_shape(x.shape)} normalized over axes {self.axes} (expected {format_shape(kept)})"
                )
        return [x]

    def _broadcast(self, parameter: Variable, ndim: int) -> Variable:
        """A parameter of the kept axes' shape, broadcastable against the input."""
        kept = iter(range(parameter.ndim))
        return parameter.dimshuffle(*["x" if axis in self.axes else next(kept) for axis in range(ndim)])

    def phase_outputs(self, inputs: Sequence[Variable], phase: str) -> list[Variable]:
        """The output in ``phase``, built of ordinary ops on ``inputs``."""
        return [self._normalize(inputs, phase)[0]]

    def _normalize(self, inputs: Sequence[Variable], phase: str) -> tuple[Variable, list]:
        x, gamma, beta, running_mean, running_var = inputs
        gamma, beta, running_mean, running_var = (cast(p, x.dtype) for p in (gamma, beta, running_mean, running_var))
        if phase == "predict":
            scale = gamma / sqrt(running_var + self.eps)
            shift = beta - running_mean * scale
            return x * self._broadcast(scale, x.ndim) + self._broadcast(shift, x.ndim), []
        mean = x.mean(axis=self.axes)
        centered = x - self._broadcast(mean, x.ndim)
        variance = (centered * centered).mean(axis=self.axes)
        scale = gamma / sqrt(variance + self.eps)
        output = centered * self._broadcast(scale, x.ndim) + self._broadcast(beta, x.ndim)
        return output, [mean, variance]

    def specialize(self, node: Apply, phase: str) -> tuple[list[Variable], list]:
        output, statistics = self._normalize(node.inputs, phase)
        if phase == "predict":
            return [output], []
        x, _, _, running_mean, running_var = node.inputs
        mean, variance = statistics
        count = shape_at(x, self.axes[0])
        for axis in self.axes[1:]:
            count = count * shape_at(x, axis)
        # n / (n - 1), and 1 for a single value (whose unbiased variance is undefined).
        correction = cast(count, x.dtype) / cast(maximum(count - 1, 1), x.dtype)
        m = self.momentum
        updates = [
            (running_mean, (1.0 - m) * running_mean + m * cast(mean, running_mean.dtype)),
            (running_var, (1.0 - m) * running_var + m * cast(variance * correction, running_var.dtype)),
        ]
        return [output], updates

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        return phase_gradient(self, node, output_grads)


class PhaseGradient(Op):
    """``(*inputs, *output_grads) -> one gradient per input`` of the phase-dependent op
    ``forward``: once the phase is known, the gradient of what ``forward`` computes in it."""

    __props__ = ("forward", "count")
    phase_dependent = True

    def __init__(self, forward: Op, count: int):
        self.forward = forward
        self.count = count  # how many of the inputs are the forward op's

    @property
    def name(self) -> str:
        return f"{self.forward.name}_grad"

    def output_types(self, *types: TensorType) -> list[TensorType]:
        return list(types[: self.count])

    def phase_outputs(self, inputs: Sequence[Variable], phase: str) -> list[Variable]:
        from ..grad import grad

        primal, output_grads = list(inputs[: self.count]), inputs[self.count :]
        # Differentiate on stand-ins, so that only this op's own dependence on its inputs counts
        # (the paths through their ancestors are the outer gradient's business).
        stand_ins = [Variable(variable.type, name=variable.name) for variable in primal]
        outputs = self.forward.phase_outputs(stand_ins, phase)
        known = {output: g for output, g in zip(outputs, output_grads)}
        gradients = grad(None, stand_ins, known_grads=known, disconnected_inputs="ignore")
        return rebuild(gradients, dict(zip(stand_ins, primal)))[0]

    def specialize(self, node: Apply, phase: str) -> tuple[list[Variable], list]:
        return self.phase_outputs(node.inputs, phase), []

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        return phase_gradient(self, node, output_grads)


def phase_gradient(op: Op, node: Apply, output_grads: Sequence) -> list:
    """The gradients of a phase-dependent ``node``'s inputs, as one ``PhaseGradient`` node."""
    output_grads = [g if g is not None else zeros_like(output) for g, output in zip(output_grads, node.outputs)]
    gradients = PhaseGradient(op, len(node.inputs))(*node.inputs, *output_grads)
    return list(gradients) if isinstance(gradients, (list, tuple)) else [gradients]


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
    return BatchNorm(axes, float(momentum), float(eps))(x, gamma, beta, running_mean, running_var)
