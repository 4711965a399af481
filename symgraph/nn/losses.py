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
from ..ops.elemwise import as_float, eq, log, log1p, maximum, where
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
            if targets.shape != (z.shape[0],):
                raise ValueError(f"{z.shape[0]} rows of predictions but targets of shape {targets.shape}")
            if targets.size and (targets.min() < 0 or targets.max() >= z.shape[1]):
                raise IndexError(f"class indices must be in [0, {z.shape[1]}), got {targets.min()}..{targets.max()}")
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


def binary_crossentropy(predictions: Any, targets: Any) -> Variable:
    """Elementwise ``-(t log p + (1 - t) log(1 - p))``. When ``predictions`` is a ``sigmoid``, the
    stable form from its logits, ``softplus(z) - t z``; otherwise each log is clamped at -100, as
    PyTorch does, so that ``p`` of exactly 0 or 1 gives a finite loss."""
    with in_scope("binary_crossentropy"):
        return _binary_crossentropy(predictions, targets)


def _binary_crossentropy(predictions: Any, targets: Any) -> Variable:
    predictions = as_float(as_tensor(predictions))
    targets = as_tensor(targets)
    owner = predictions.owner
    if owner is not None and owner.op is sigmoid:
        logits = owner.inputs[0]
        return softplus(logits) - targets * logits
    floor = -100.0
    return -(targets * maximum(log(predictions), floor) + (1 - targets) * maximum(log1p(-predictions), floor))
