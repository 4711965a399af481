"""Activations: ``sigmoid``, ``relu``, ``softplus``, ``softmax``, ``log_softmax`` (and ``tanh``).

Each is numerically stable: no overflow, NaN or Inf for logits of +-1e4, in float32 and float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..graph.basic import Apply, Variable
from ..graph.op import Op
from ..graph.type import TensorType
from ..ops.basic import as_tensor
from ..ops.elemwise import Elemwise, as_float, exp, float_result_rule, gt, same_dtype_rule, tanh
from ..ops.shape import normalize_axes

__all__ = ["LogSoftmax", "Softmax", "log_softmax", "relu", "sigmoid", "softmax", "softplus", "tanh"]


def _floating(x: np.ndarray) -> np.ndarray:
    """``x`` itself if it holds floats, else ``x`` in the float the op declares for it
    (``float_result_rule``: float16 for booleans and 8-bit integers, float64 for wider ones), so
    that ``-x`` neither wraps around (uint8) nor fails (bool)."""
    if x.dtype.kind == "f":
        return x
    return x.astype(float_result_rule([x.dtype])[-1])


def _sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    # 1 / (1 + exp(-x)), where exp(-x) may overflow to inf for very negative x: the result is
    # then 0, as it should be, so the overflow is no error. (numpy's logaddexp, the obvious
    # stable form, is dozens of times slower in float32.)
    x = _floating(x)
    if out is None and x.ndim == 0:  # one number: Python's arithmetic, not five numpy calls
        value = float(x)
        if value < 0:  # exp of a negative number cannot overflow
            small = math.exp(value)
            return x.dtype.type(small / (1.0 + small))
        return x.dtype.type(1.0 / (1.0 + math.exp(-value)))
    if out is None:  # an array to work in
        out = np.empty_like(x)
    np.negative(x, out=out)
    with np.errstate(over="ignore", under="ignore"):
        np.exp(out, out=out)
    out += 1
    return np.reciprocal(out, out=out)


def _relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    # False, not 0: a Python bool keeps every dtype, where a Python int makes booleans int64.
    return np.maximum(x, False, out=out)


def _softplus(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    x = _floating(x)
    if out is None and x.ndim == 0:  # one number: log(1 + exp(v)) without overflow, in Python
        value = float(x)
        return x.dtype.type(math.log1p(math.exp(-abs(value))) + max(value, 0.0))
    return np.logaddexp(0, x, out=out)


def _sigmoid_grad(x, z, g):
    return g * (z * (1 - z))


def _softplus_grad(x, z, g):
    return g * sigmoid(x)


def _relu_grad(x, z, g):
    # relu'(0) = 0, as PyTorch; the rule reads the output, so the input's array can be reused.
    return g * gt(z, 0)


sigmoid = Elemwise(
    "sigmoid",
    _sigmoid,
    [_sigmoid_grad],
    dtype_rule=float_result_rule,
    doc="``sigmoid(x)``: ``1 / (1 + exp(-x))`` elementwise, without overflow for any ``x``.",
)
softplus = Elemwise(
    "softplus",
    _softplus,
    [_softplus_grad],
    dtype_rule=float_result_rule,
    doc="``softplus(x)``: ``log(1 + exp(x))`` elementwise, without overflow for any ``x``.",
)
relu = Elemwise(
    "relu",
    _relu,
    [_relu_grad],
    dtype_rule=same_dtype_rule,
    doc="``relu(x)``: ``maximum(x, 0)`` elementwise, in ``x``'s dtype; its gradient at 0 is 0.",
)


class Softmax(Op):
    """``exp(x) / exp(x).sum(axis)``, computed from ``x - max(x)`` so that it never overflows."""

    __props__ = ("axis",)

    def __init__(self, axis: int):
        self.axis = axis

    def output_types(self, x: TensorType) -> list[TensorType]:
        return [x]

    def perform(self, x: np.ndarray) -> np.ndarray:
        if not x.shape[self.axis]:  # no classes: nothing to normalize (as PyTorch), not max's error
            return x.copy()
        e = np.subtract(x, np.max(x, axis=self.axis, keepdims=True))
        np.exp(e, out=e)
        e /= np.sum(e, axis=self.axis, keepdims=True)
        return e

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        (g,) = output_grads
        z = node.outputs[0]
        return [z * (g - (g * z).sum(axis=self.axis, keepdims=True))]


class LogSoftmax(Op):
    """``x - log(exp(x).sum(axis))``, computed from ``x - max(x)``."""

    __props__ = ("axis",)

    def __init__(self, axis: int):
        self.axis = axis

    def output_types(self, x: TensorType) -> list[TensorType]:
        return [x]

    def perform(self, x: np.ndarray) -> np.ndarray:
        if not x.shape[self.axis]:
            return x.copy()
        shifted = np.subtract(x, np.max(x, axis=self.axis, keepdims=True))
        shifted -= np.log(np.sum(np.exp(shifted), axis=self.axis, keepdims=True))
        return shifted

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        (g,) = output_grads
        z = node.outputs[0]
        return [g - exp(z) * g.sum(axis=self.axis, keepdims=True)]


def softmax(x: Any, axis: int = -1) -> Variable:
    """The softmax along ``axis`` (the last by default): rows of probabilities summing to 1."""
    x = as_float(as_tensor(x))
    (axis,) = normalize_axes(axis, x.ndim)
    return Softmax(axis)(x)


def log_softmax(x: Any, axis: int = -1) -> Variable:
    """The logarithm of the softmax along ``axis``, computed stably."""
    x = as_float(as_tensor(x))
    (axis,) = normalize_axes(axis, x.ndim)
    return LogSoftmax(axis)(x)
