"""Losses: ``categorical_crossentropy`` and ``binary_crossentropy``.

Stability is part of their meaning, not an optional rewrite: when the predictions are the output
of ``softmax`` (or ``sigmoid``), the loss is built from the logits when the graph is built, so every
mode, ``.eval()`` and gradients of gradients compute it stably. The gradient of the softmax
cross-entropy is ``softmax(z) - onehot``, with no division by a probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DTypeError, ShapeError
from ..graph.basic import Apply, Variable
from ..graph.op import Op
from ..graph.source import in_scope
from ..graph.type import TensorType
from ..ops.basic import as_tensor, cast
from ..ops.elemwise import Elemwise, add_build_rule, as_float, eq, float_result_rule, le, log, maximum, where
from ..ops.shape import arange, shape_at
from .activations import Softmax, log_softmax, sigmoid, softmax, softplus


class OneHot(Op):
    """Rows of ``depth`` zeros with a one at each class index."""

    __props__ = ("dtype",)

    def __init__(self, dtype: str):
        self.dtype = dtype

    def output_types(self, indices: TensorType, depth: TensorType) -> list[TensorType]:
        return [TensorType(self.dtype, (indices.shape[0], None))]

    def perform(self, indices: np.ndarray, depth: Any) -> np.ndarray:
        rows = np.zeros((indices.shape[0], int(depth)), dtype=self.dtype)
        rows[np.arange(indices.shape[0]), indices] = 1
        return rows

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        return [None, None]


def one_hot(indices: Any, depth: Any, dtype: Any) -> Variable:
    """Rows of ``depth`` zeros of ``dtype``, with a one at each of ``indices``."""
    return OneHot(np.dtype(dtype).name)(as_tensor(indices), as_tensor(depth))


class SoftmaxCrossEntropy(Op):
    """``categorical_crossentropy(softmax(z), targets)`` per row, from the logits ``z``:
    ``logsumexp(z) - z[target]`` for class indices, ``logsumexp(z) * sum(t) - sum(t * z)`` for rows
    of probabilities."""

    __props__ = ("indices",)

    def __init__(self, indices: bool):
        self.indices = indices

    @property
    def name(self) -> str:
        return "softmax_crossentropy"

    def output_types(self, logits: TensorType, targets: TensorType) -> list[TensorType]:
        if self.indices and targets.shape[0] is not None and logits.shape[0] not in (None, targets.shape[0]):
            raise ShapeError(
                f"categorical_crossentropy: {logits.shape[0]} rows of predictions, {targets.shape[0]} targets"
            )
        return [TensorType(logits.dtype, (logits.shape[0],))]

    def perform(self, z: np.ndarray, targets: np.ndarray) -> np.ndarray:
        top = z.max(axis=1, keepdims=True)
        log_total = np.log(np.exp(z - top).sum(axis=1)) + top[:, 0]
        if self.indices:
            check_class_indices(z, targets)
            return log_total - z[np.arange(z.shape[0]), targets]
        return log_total * targets.sum(axis=1) - (targets * z).sum(axis=1)

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        z, targets = node.inputs
        g = output_grads[0].dimshuffle(0, "x")
        probabilities = softmax(z)
        if self.indices:
            gz = (probabilities - one_hot(targets, shape_at(z, 1), z.dtype)) * g
            return [gz, None]
        gz = (probabilities * targets.sum(axis=1, keepdims=True) - targets) * g
        gt = -log_softmax(z) * g if needed[1] and targets.type.is_float else None
        return [gz, gt]


def check_class_indices(z: np.ndarray, targets: np.ndarray) -> None:
    """One class index per row of ``z``, each a column of it."""
    if targets.shape != (z.shape[0],):
        raise ValueError(f"{z.shape[0]} rows of predictions but targets of shape {targets.shape}")
    if targets.size and (targets.min() < 0 or targets.max() >= z.shape[1]):
        raise IndexError(f"class indices must be in [0, {z.shape[1]}), got {targets.min()}..{targets.max()}")


def categorical_crossentropy(predictions: Any, targets: Any) -> Variable:
    """Cross-entropy of each row of ``predictions`` (probabilities) with its target: a class index
    (int vector) or a row of probabilities (one-hot, say). One value per row.

    When ``predictions`` is a ``softmax``, the stable form from its logits is used.
    """
    with in_scope("categorical_crossentropy"):
        return _categorical_crossentropy(predictions, targets)


def _categorical_crossentropy(predictions: Any, targets: Any) -> Variable:
    predictions = as_float(as_tensor(predictions))
    targets = as_tensor(targets)
    if predictions.ndim != 2:
        raise ShapeError(
            f"categorical_crossentropy takes predictions of shape (rows, classes), got {predictions.type.describe()}"
        )
    if targets.ndim == 1:
        if targets.type.numpy_dtype.kind not in "iu":
            raise DTypeError(f"class-index targets must be integers, got {targets.dtype}")
        indices = True
    elif targets.ndim == 2:
        targets = cast(targets, predictions.dtype)
        indices = False
    else:
        raise ShapeError(
            f"targets are class indices (a vector) or rows of probabilities (a matrix), got {targets.type.describe()}"
        )
    owner = predictions.owner
    if owner is not None and isinstance(owner.op, Softmax) and owner.op.axis == 1:
        return SoftmaxCrossEntropy(indices)(owner.inputs[0], targets)
    if indices:
        picked = predictions[arange(shape_at(predictions, 0)), targets]
        return -log(picked)
    safe = where(eq(targets, 0), 1.0, predictions)
    return -(targets * log(safe)).sum(axis=1)


# --- binary cross-entropy of probabilities: logarithms clamped at -100, as PyTorch's -------------
LOG_FLOOR = -100.0


def _clamped_log(p: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    with np.errstate(divide="ignore"):  # log(0) is -inf, clamped: a value, not an error
        result = np.log(p, out=out)
    return np.maximum(result, LOG_FLOOR, out=out)  # (out=result fails for 0-d: a numpy scalar)


def _clamped_log1m(p: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    with np.errstate(divide="ignore"):
        result = np.log1p(np.negative(p, out=out), out=out)
    return np.maximum(result, LOG_FLOOR, out=out)


def _smallest_divisor(dtype: str) -> float:
    """Where ``log(p)`` is not clamped, ``p`` is at least exp(-100); in float32 and float16 that is
    below the smallest normal number, whose reciprocal is the largest finite derivative."""
    return float(max(np.exp(LOG_FLOOR), np.finfo(dtype).tiny))


def _clamped_log_grad(p, z, g):
    # 1/p where the log is not clamped, 0 where it is (the clamped loss is flat there); never
    # 0 * inf. A NaN p keeps its NaN.
    return where(le(z, LOG_FLOOR), 0.0, g / maximum(p, _smallest_divisor(p.dtype)))


def _clamped_log1m_grad(p, z, g):
    # 1 - p is 0 or at least half an ulp of 1 for p <= 1, so -1/(1 - p) is finite where not clamped.
    return where(le(z, LOG_FLOOR), 0.0, -g / maximum(1 - p, _smallest_divisor(p.dtype)))


clamped_log = Elemwise(
    "clamped_log",
    _clamped_log,
    [_clamped_log_grad],
    dtype_rule=float_result_rule,
    doc="``maximum(log(p), -100)``; its gradient is ``1/p`` where the log is not clamped, else 0.",
)
clamped_log1m = Elemwise(
    "clamped_log1m",
    _clamped_log1m,
    [_clamped_log1m_grad],
    dtype_rule=float_result_rule,
    doc="``maximum(log(1 - p), -100)``; its gradient is ``-1/(1 - p)`` where not clamped, else 0.",
)


def _stable_clamped_log(p: Any) -> Variable | None:
    """Where ``log`` has a stable form for ``p`` (``1 - sigmoid(z)``, ``softmax(z)``: see
    ``nn/stabilize.py``), that form clamped: it divides by no probability at all."""
    for rule in log.build_rules:
        stable = rule(p)
        if stable is not None:
            return maximum(stable, LOG_FLOOR)
    return None


add_build_rule(clamped_log, _stable_clamped_log)


def binary_crossentropy(predictions: Any, targets: Any) -> Variable:
    """Elementwise ``-(t log p + (1 - t) log(1 - p))``. When ``predictions`` is a ``sigmoid``, the
    stable form from its logits, ``softplus(z) - t z``; otherwise each log is clamped at -100, as
    PyTorch does, so that ``p`` of exactly 0 or 1 gives a finite loss. The gradient is the
    derivative of that clamped loss: zero where a log is clamped, so it is finite at ``p`` = 0 and
    1 too (PyTorch divides by ``max(p (1 - p), 1e-12)`` instead)."""
    with in_scope("binary_crossentropy"):
        return _binary_crossentropy(predictions, targets)


def _binary_crossentropy(predictions: Any, targets: Any) -> Variable:
    predictions = as_float(as_tensor(predictions))
    targets = as_tensor(targets)
    owner = predictions.owner
    if owner is not None and owner.op is sigmoid:
        logits = owner.inputs[0]
        return softplus(logits) - targets * logits
    return -(targets * clamped_log(predictions) + (1 - targets) * clamped_log1m(predictions))
