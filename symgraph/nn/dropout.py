"""Dropout: a mask drawn from a random stream while training, and no mask at all when predicting.

``dropout(x)`` is ``x * mask``, where the mask is a phase-dependent node. Compiled for
``'train'``, the mask becomes a Bernoulli draw (``0`` or ``1/keep_prob`` for inverted dropout,
``0`` or ``1`` for the classic form); for ``'predict'``, a scalar (``1``, or ``keep_prob`` for the
classic form; ``0`` when ``keep_prob`` is 0), which the compiler folds away when it is a constant.
The gradient multiplies by the same mask variable, so it uses the very draw of the forward pass.
A symbolic ``rate`` or ``keep_prob`` passes through ``CheckProbability``, which raises at run
time, in both phases, when it leaves [0, 1].
"""

from __future__ import annotations

import numbers
import uuid
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from ..graph.basic import Apply, Constant, Variable
from ..graph.op import Op
from ..graph.source import in_scope
from ..graph.type import TensorType, largest_finite
from ..ops.basic import as_tensor, cast, constant
from ..ops.elemwise import as_float, gt
from ..ops.random import RandomStreams, bernoulli, default_stream
from ..ops.shape import as_shape, shape_at, static_size

_SCALES = ("inverted", "classic")


def _check_keep(value: float, what: str) -> None:
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise ValueError(f"dropout's {what} must be in [0, 1], got {value}")


def inverted_scale(keep: float, dtype: np.dtype) -> np.generic:
    """``1 / keep`` in ``dtype``, or the dtype's largest finite number where ``1 / keep`` overflows
    it (``keep_prob=1e-5`` in float16): kept elements stay finite and dropped ones exactly 0,
    never ``0 * inf``."""
    return dtype.type(min(1.0 / keep, largest_finite(dtype)))


class DropoutMask(Op):
    """The mask dropout multiplies by: drawn when training, constant when predicting."""

    __props__ = ("scale", "dtype", "key")
    stochastic = True
    phase_dependent = True

    def __init__(self, scale: str, dtype: str):
        self.scale = scale
        self.dtype = dtype
        # Two dropouts are two masks: never equal, never merged. Not ``id(self)``: an address is
        # reused once its object is gone, and a saved or pickled op brings its key to another
        # process, where a new dropout may sit at that address.
        self.key = uuid.uuid4().hex

    @property
    def name(self) -> str:
        return "dropout_mask"

    def make_node(self, state: Variable, size: Variable, keep: Variable) -> Apply:
        return Apply(self, [state, size, keep], [TensorType(self.dtype, static_size(size, "dropout"))])

    def specialize(self, node: Apply, phase: str) -> tuple[list[Variable], list]:
        state, size, keep = node.inputs
        if phase == "train":
            _, mask = BernoulliMask(self.scale, self.dtype)(state, size, keep)
            return [mask], []
        # Predicting: no draw at all, a value of length 1 on every axis (so that the mask keeps
        # its number of axes). A symbolic keep was checked upstream (CheckProbability).
        ndim = node.outputs[0].ndim
        if isinstance(keep, Constant):
            value = float(keep.data)
            if self.scale == "inverted":
                value = 1.0 if value > 0 else 0.0
            return [constant(np.full((1,) * ndim, value, dtype=self.dtype))], []
        mask = cast(gt(keep, 0), self.dtype) if self.scale == "inverted" else cast(keep, self.dtype)
        return [mask.dimshuffle(*["x"] * ndim)], []

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        return [None, None, None]


class BernoulliMask(Op):
    """``(generator, size, keep) -> (generator, mask)``: each element kept with probability
    ``keep``, its value then ``1/keep`` (inverted) or ``1`` (classic), else 0.

    An exact Bernoulli draw from about 8 random bits per element (``ops.random.bernoulli``), made
    in the activation's dtype (no float64 detour for float32 models).
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
        return Apply(self, [state, size, keep], [state.type, TensorType(self.dtype, static_size(size, "dropout"))])

    def state_updates(self, node: Apply) -> list:
        return [(node.inputs[0], node.outputs[0])]

    def perform(self, generator: np.random.Generator, size: np.ndarray, keep: Any, empty: Callable = np.empty) -> tuple:
        """The mask, in an array from ``empty(shape, dtype)`` (a backend's allocator)."""
        dtype = np.dtype(self.dtype)
        keep = float(keep)
        _check_keep(keep, "keep_prob")
        shape = tuple(size.tolist())
        mask = empty(shape, dtype)
        if keep == 0.0:  # no 1/keep: zeros, never NaN
            mask.fill(0)
            return generator, mask
        kept = bernoulli(generator.bit_generator, shape, keep)
        if self.scale == "inverted" and keep != 1.0:
            np.multiply(kept, inverted_scale(keep, dtype), out=mask)  # 0 or 1/keep, in one pass
        else:
            np.copyto(mask, kept)
        return generator, mask

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        return [None, None, None]


class CheckProbability(Op):
    """A symbolic ``rate`` or ``keep_prob`` itself, after checking at run time that it lies in
    [0, 1] (the error names the dropout node through the line that built it)."""

    __props__ = ("what",)
    view_map: ClassVar[dict[int, int]] = {0: 0}

    def __init__(self, what: str):
        self.what = what

    def output_types(self, value: TensorType) -> list[TensorType]:
        return [value]

    def perform(self, value: Any) -> Any:
        _check_keep(float(value), self.what)
        return value

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        return [output_grads[0]]


def dropout(
    x: Any,
    rate: Any = None,
    keep_prob: Any = None,
    rng: RandomStreams | None = None,
    scale: str = "inverted",
    noise_shape: Sequence | Variable | None = None,
) -> Variable:
    """Randomly zero elements of ``x`` while training; leave it whole when predicting.

    Give exactly one of ``rate`` (the probability to drop) or ``keep_prob`` (the probability to
    keep); either may be a symbolic scalar (a shared variable, for schedules). ``scale='inverted'``
    divides the kept elements by ``keep_prob`` while training (multiplies them by the dtype's
    largest finite number where ``1/keep_prob`` is not finite in it, as for ``keep_prob=1e-5`` in
    float16: dropped elements are exactly 0, never NaN) and leaves prediction alone;
    ``'classic'`` keeps them as they are and multiplies by ``keep_prob`` when predicting. Either
    way the training output's expectation is the prediction. ``noise_shape`` shapes the mask for
    broadcasting (``(batch, channels, 1, 1)`` drops whole feature maps; ``None`` entries follow
    ``x``). ``rng`` is a ``RandomStreams`` (the module-wide default one when ``None``).

    Compile the graph with ``phase='train'`` or ``phase='predict'``:

    >>> h = sg.nn.dropout(sg.nn.relu(x @ W), rate=0.5)
    >>> train = sg.function([x], h, phase='train'); predict = sg.function([x], h, phase='predict')
    """
    if (rate is None) == (keep_prob is None):
        raise ValueError("dropout takes exactly one of rate= (the probability to drop) or keep_prob= (to keep)")
    if scale not in _SCALES:
        raise ValueError(f"dropout's scale must be 'inverted' or 'classic', not {scale!r}")
    if rng is not None and not isinstance(rng, RandomStreams):
        raise TypeError(f"dropout's rng is a sg.RandomStreams, not {type(rng).__name__}")
    with in_scope("dropout"):
        keep = _keep_probability(rate, keep_prob)
        x = as_float(as_tensor(x))
        size = _mask_size(x, noise_shape)
        mask = DropoutMask(scale, x.dtype)((rng or default_stream()).new_state(), size, keep)
        return x * mask


def _keep_probability(rate: Any, keep_prob: Any) -> Variable:
    """The probability to keep, as a float64 constant, or a checked symbolic scalar."""
    given, what = (rate, "rate") if rate is not None else (keep_prob, "keep_prob")
    if isinstance(given, Constant):
        given = given.data
    if not isinstance(given, Variable):
        number = _as_number(given, what)
        _check_keep(number, what)
        return constant(np.float64(1.0 - number if what == "rate" else number))
    if given.ndim != 0:
        raise ValueError(f"dropout's {what} must be a scalar, got {given.type.describe()}")
    checked = CheckProbability(what)(as_float(given))
    return 1.0 - checked if what == "rate" else checked


def _as_number(value: Any, what: str) -> float:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        # ValueError, as for a number out of range: the API promises one error type for both.
        raise ValueError(f"dropout's {what} must be a number in [0, 1] or a symbolic scalar, not {value!r}")
    return float(value)


def _mask_size(x: Variable, noise_shape: Any) -> Variable:
    """The mask's shape: ``x``'s, or ``noise_shape`` with its ``None`` entries filled from ``x``."""
    if noise_shape is None:
        return as_shape(x.shape) if None in x.type.shape else as_shape(x.type.shape)
    if isinstance(noise_shape, Variable):
        size = as_shape(noise_shape)
        if size.type.shape[0] != x.ndim:  # unknown too: the mask's number of axes must be known
            raise ValueError(f"noise_shape must have {x.ndim} entries, one per axis of x, got {size.type.describe()}")
        return size
    noise_shape = tuple(noise_shape)
    if len(noise_shape) != x.ndim:
        raise ValueError(f"noise_shape {noise_shape} must have one entry per axis of x ({x.ndim})")
    for axis, (length, static) in enumerate(zip(noise_shape, x.type.shape)):
        if isinstance(length, (int, np.integer)) and length != 1 and static is not None and length != static:
            raise ValueError(
                f"noise_shape {noise_shape}: entry {axis} must be 1 (shared along that axis) or "
                f"x's length {static}, not {length}"
            )
    return as_shape([shape_at(x, axis) if length is None else length for axis, length in enumerate(noise_shape)])
