"""Dropout: a mask drawn from a random stream while training, and no mask at all when predicting.

``dropout(x)`` is ``x * mask``, where the mask is a phase-dependent node. Compiled for
``'train'``, the mask becomes a Bernoulli draw (``0`` or ``1/keep_prob`` for inverted dropout,
``0`` or ``1`` for the classic form); for ``'predict'``, a constant (``1``, or ``keep_prob`` for the
classic form), which the compiler then folds away. The gradient multiplies by the same mask
variable, so it uses the very draw of the forward pass.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..graph.basic import Apply, Constant, Variable
from ..graph.op import Op
from ..graph.type import TensorType
from ..ops.basic import as_tensor, cast, constant
from ..ops.elemwise import as_float, gt
from ..ops.random import RandomStreams, default_stream
from ..ops.shape import as_shape, shape_at, static_shape_value

_SCALES = ("inverted", "classic")
_UINT32_RANGE = 2.0**32


def _check_keep(keep: float) -> None:
    if not 0.0 <= keep <= 1.0:
        raise ValueError(f"dropout's keep_prob must be in [0, 1], got {keep} (rate = 1 - keep_prob)")


class DropoutMask(Op):
    """The mask dropout multiplies by: drawn when training, constant when predicting."""

    __props__ = ("scale", "dtype", "key")
    stochastic = True
    phase_dependent = True

    def __init__(self, scale: str, dtype: str):
        self.scale = scale
        self.dtype = dtype
        self.key = id(self)  # two dropouts are two masks: never merged

    @property
    def name(self) -> str:
        return "dropout_mask"

    def make_node(self, state: Variable, size: Variable, keep: Variable) -> Apply:
        static = static_shape_value(size) or (None,) * (size.type.shape[0] or 0)
        return Apply(self, [state, size, keep], [TensorType(self.dtype, tuple(static))])

    def specialize(self, node: Apply, phase: str) -> tuple[list[Variable], list]:
        state, size, keep = node.inputs
        if phase == "train":
            _, mask = BernoulliMask(self.scale, self.dtype)(state, size, keep)
            return [mask], []
        if isinstance(keep, Constant):
            value = float(keep.data)
            if self.scale == "inverted":
                value = 1.0 if value > 0 else 0.0
            return [constant(np.array(value, dtype=self.dtype))], []
        keep = CheckProbability()(keep)
        mask = cast(gt(keep, 0), self.dtype) if self.scale == "inverted" else cast(keep, self.dtype)
        return [mask], []

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        return [None, None, None]


class BernoulliMask(Op):
    """``(generator, size, keep) -> (generator, mask)``: each element kept with probability
    ``keep``, its value then ``1/keep`` (inverted) or ``1`` (classic), else 0.

    Drawn from 32 random bits per element compared with ``keep * 2**32``: an exact Bernoulli up to
    2**-32, cheaper than drawing floats, and in the activation's dtype throughout.
    """

    __props__ = ("scale", "dtype")
    stochastic = True

    def __init__(self, scale: str, dtype: str):
        self.scale = scale
        self.dtype = dtype

    @property
    def name(self) -> str:
        return "bernoulli_mask"

    def make_node(self, state: Variable, size: Variable, keep: Variable) -> Apply:
        static = static_shape_value(size) or (None,) * (size.type.shape[0] or 0)
        return Apply(self, [state, size, keep], [state.type, TensorType(self.dtype, tuple(static))])

    def state_updates(self, node: Apply) -> list:
        return [(node.inputs[0], node.outputs[0])]

    def impl(self, node: Apply) -> Callable:
        dtype = np.dtype(self.dtype)
        inverted = self.scale == "inverted"

        def bernoulli_mask(generator: np.random.Generator, size: np.ndarray, keep: Any) -> tuple:
            keep = float(keep)
            _check_keep(keep)
            shape = tuple(size.tolist())
            count = int(np.prod(shape))
            if keep == 0.0:
                return generator, np.zeros(shape, dtype=dtype)
            value = dtype.type(1.0 / keep if inverted else 1.0)
            if keep == 1.0:
                return generator, np.full(shape, value, dtype=dtype)
            bits = generator.bit_generator.random_raw((count + 1) // 2).view(np.uint32)[:count]
            threshold = np.uint32(min(round(keep * _UINT32_RANGE), _UINT32_RANGE - 1))
            kept = np.less(bits, threshold).reshape(shape)
            return generator, np.multiply(kept, value, dtype=dtype)

        return bernoulli_mask

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        return [None, None, None]


class CheckProbability(Op):
    """``keep`` itself, after checking at run time that it lies in [0, 1]."""

    view_map = {0: 0}

    def output_types(self, keep: TensorType) -> list[TensorType]:
        return [keep]

    def perform(self, keep: Any) -> Any:
        _check_keep(float(keep))
        return keep

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        return [output_grads[0]]


def dropout(
    x: Any,
    rate: Any = None,
    keep_prob: Any = None,
    rng: RandomStreams | None = None,
    scale: str = "inverted",
    noise_shape: Sequence | None = None,
) -> Variable:
    """Randomly zero elements of ``x`` while training; leave it whole when predicting.

    Give exactly one of ``rate`` (the probability to drop) or ``keep_prob`` (the probability to
    keep); either may be a symbolic scalar (a shared variable, for schedules). ``scale='inverted'``
    divides the kept elements by ``keep_prob`` while training and leaves prediction alone;
    ``'classic'`` keeps them as they are and multiplies by ``keep_prob`` when predicting. Either
    way the training output's expectation is the prediction. ``noise_shape`` shapes the mask for
    broadcasting (``(batch, channels, 1, 1)`` drops whole feature maps; ``None`` entries follow
    ``x``). ``rng`` is a ``RandomStreams`` (the module-wide default one when ``None``).

    Compile the graph with ``phase='train'`` or ``phase='predict'``.
    """
    if (rate is None) == (keep_prob is None):
        raise ValueError("dropout takes exactly one of rate= (the probability to drop) or keep_prob= (to keep)")
    if scale not in _SCALES:
        raise ValueError(f"dropout's scale must be 'inverted' or 'classic', not {scale!r}")
    given, what = (rate, "rate") if rate is not None else (keep_prob, "keep_prob")
    if not isinstance(given, Variable):
        try:
            number = float(given)
        except (TypeError, ValueError):
            raise ValueError(f"dropout's {what} must be a number in [0, 1] or a symbolic scalar, not {given!r}") from None
        if not 0.0 <= number <= 1.0:
            raise ValueError(f"dropout's {what} must be in [0, 1], got {number}")
        keep: Variable = constant(np.float64(1.0 - number if what == "rate" else number))
    else:
        if given.ndim != 0:
            raise ValueError(f"dropout's {what} must be a scalar, got {given.type.describe()}")
        keep = 1.0 - as_float(given) if what == "rate" else as_float(given)
    if rng is not None and not isinstance(rng, RandomStreams):
        raise TypeError(f"dropout's rng is a sg.RandomStreams, not {type(rng).__name__}")
    x = as_float(as_tensor(x))
    stream = rng or default_stream()
    if noise_shape is None:
        size = as_shape(x.shape) if None in x.type.shape else as_shape(x.type.shape)
    else:
        if len(noise_shape) != x.ndim:
            raise ValueError(f"noise_shape {tuple(noise_shape)} must have one entry per axis of x ({x.ndim})")
        size = as_shape([shape_at(x, axis) if length is None else length for axis, length in enumerate(noise_shape)])
    mask = DropoutMask(scale, x.dtype)(stream.new_state(), size, keep)
    return x * mask
