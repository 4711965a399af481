"""Pooling: ``max_pool2d`` and ``avg_pool2d`` on NCHW images, with PyTorch's defaults (the stride is
the pool size, windows that do not fit are dropped, average pooling counts padded cells).

Each op loops over the ``ph * pw`` offsets of a window, one vectorized numpy call on a strided view
per offset, never over pixels. Results keep the memory layout of their input (channel-major after a
convolution), so the elementwise ops around them stay on contiguous memory.

Gradients are ops again, each with its own gradient, so pooling is differentiable to any order:
``AvgPool2dGrad`` is the adjoint of ``AvgPool2d`` (and the other way round); ``MaxPool2dGrad``
routes the gradient to the first maximum of each window (as PyTorch), and its adjoint,
``MaxPool2dSelect``, reads a tensor at those positions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import ShapeError
from ..graph.basic import Apply, Variable
from ..graph.op import Op
from ..graph.source import in_scope
from ..graph.type import TensorType, format_shape
from ..ops.basic import as_tensor, constant
from ..ops.elemwise import as_float, maximum
from ..ops.shape import concatenate, full, reshape, shape, shape_at, static_shape_value, zeros_like
from .conv import Pair, as_pair, window_count, window_slice

__all__ = [
    "AvgPool2d",
    "AvgPool2dGrad",
    "MaxPool2d",
    "MaxPool2dGrad",
    "MaxPool2dSelect",
    "avg_pool2d",
    "max_pool2d",
    "pool_2d",
]
# (``SameLayout`` is the compiler's: rewrite/fusion.py puts it in compiled graphs.)


class _Pooling(Op):
    """What every pooling op shares: the window geometry and its arithmetic."""

    __props__ = ("pool_size", "stride", "padding")

    def __init__(self, pool_size: Pair, stride: Pair, padding: Pair):
        self.pool_size = pool_size
        self.stride = stride
        self.padding = padding

    def counts(self, height: int | None, width: int | None) -> tuple[int | None, int | None]:
        """The output's spatial lengths for an input of these lengths."""
        return tuple(  # type: ignore[return-value]
            window_count(length, size, step, (pad, pad))
            for length, size, step, pad in zip((height, width), self.pool_size, self.stride, self.padding)
        )

    def pooled_type(self, x: TensorType) -> TensorType:
        counts = self.counts(*x.shape[2:])
        if any(count is not None and count < 1 for count in counts):
            raise ShapeError(
                f"{self.name}: a {self.pool_size} window does not fit in the input of shape "
                f"{format_shape(x.shape)} padded by {self.padding}"
            )
        return TensorType(x.dtype, x.shape[:2] + counts)

    def tiles(self, height: int, width: int) -> bool:
        """Whether the windows cover the input exactly once (each cell in one window)."""
        return (
            self.stride == self.pool_size
            and self.padding == (0, 0)
            and height % self.pool_size[0] == 0
            and width % self.pool_size[1] == 0
        )

    def windows(self, padded: np.ndarray, counts: tuple[int, int]) -> Iterator[np.ndarray]:
        """Strided views of ``padded``: the cells at each window offset, in row-major order."""
        for i in range(self.pool_size[0]):
            rows = window_slice(i, counts[0], self.stride[0])
            for j in range(self.pool_size[1]):
                yield padded[:, :, rows, window_slice(j, counts[1], self.stride[1])]

    def separable(self, combine: np.ufunc, padded: np.ndarray, counts: tuple[int, int]) -> np.ndarray:
        """``combine`` (maximum, add) over each window, rows first: the first pass reads whole
        rows (contiguous memory), the second the columns of an array already ``ph`` times smaller."""
        (ph, pw), (sh, sw) = self.pool_size, self.stride
        rows = [padded[:, :, window_slice(i, counts[0], sh), :] for i in range(ph)]
        combined = rows[0].copy() if ph == 1 else combine(rows[0], rows[1])
        for row in rows[2:]:
            combine(combined, row, out=combined)
        columns = [combined[:, :, :, window_slice(j, counts[1], sw)] for j in range(pw)]
        result = columns[0].copy() if pw == 1 else combine(columns[0], columns[1])
        for column in columns[2:]:
            combine(result, column, out=result)
        return result

    def first_maxima(self, padded: np.ndarray, pooled: np.ndarray, counts: tuple[int, int]) -> Iterator[np.ndarray]:
        """For each window offset, in row-major order, where that cell is its window's first
        maximum (PyTorch's choice among ties): each window has exactly one such cell. The last
        offset needs no comparison: it holds the maximum wherever no earlier cell did. Padding
        cells must hold ``NEVER_A_MAXIMUM`` (NaN, equal to nothing), so that the maximum is always
        a real cell, even when the window's real cells are all ``-inf``."""
        windows = list(self.windows(padded, counts))
        taken = np.empty(pooled.shape, dtype=bool)  # the windows whose maximum came already
        hit = np.empty(pooled.shape, dtype=bool)
        for index, window in enumerate(windows[:-1]):
            if index == 0:
                yield np.equal(window, pooled, out=taken)
                continue
            np.equal(window, pooled, out=hit)
            np.greater(hit, taken, out=hit)  # hit and not taken
            yield hit
            np.logical_or(taken, hit, out=taken)
        yield np.logical_not(taken, out=hit) if len(windows) > 1 else np.ones(pooled.shape, dtype=bool)

    def output_counts(self, x_shape: tuple) -> tuple[int, int]:
        counts = self.counts(*x_shape[2:])
        if min(counts) < 1:  # type: ignore[type-var]
            raise ValueError(f"{self.name}: a {self.pool_size} window does not fit in an input of shape {x_shape}")
        return counts  # type: ignore[return-value]

    def pad(self, x: np.ndarray, fill: float) -> np.ndarray:
        """``x`` padded with ``fill`` (``x`` itself when there is no padding), in ``x``'s layout."""
        ph, pw = self.padding
        if not ph and not pw:
            return x
        n, c, h, w = x.shape
        padded = _buffer_like(x, (n, c, h + 2 * ph, w + 2 * pw), fill)
        padded[:, :, ph : ph + h, pw : pw + w] = x
        return padded

    def crop(self, padded: np.ndarray) -> np.ndarray:
        ph, pw = self.padding
        return padded[:, :, ph : padded.shape[2] - ph, pw : padded.shape[3] - pw]


#: The padding of an input whose first maxima are looked for (see ``first_maxima``); the pooling
#: itself pads with ``-inf``.
NEVER_A_MAXIMUM = np.nan


def _buffer_like(x: np.ndarray, shape: tuple, fill: float | None) -> np.ndarray:
    """A new NCHW array of ``shape`` with the memory layout of ``x`` (its axes stored in the same
    order: channel-major after a convolution, batch-major, or batch innermost), filled with
    ``fill`` (left uninitialized when ``None``)."""
    order = stored_order(x)
    stored = tuple(shape[axis] for axis in order)
    buffer = np.empty(stored, dtype=x.dtype) if fill is None else np.full(stored, fill, dtype=x.dtype)
    return buffer.transpose(np.argsort(order))


def stored_order(x: np.ndarray) -> tuple[int, ...]:
    """The axes of ``x`` from the one with the largest stride (outermost in memory) to the
    smallest; ties (axes of length 1) in the axes' order."""
    return tuple(sorted(range(x.ndim), key=lambda axis: -abs(x.strides[axis])))


def _zeros_unless(tiled: bool, x: np.ndarray, shape: tuple) -> np.ndarray:
    # Tiling windows write every cell, so the buffer needs no zeros.
    return _buffer_like(x, shape, None if tiled else 0)


# --- max pooling --------------------------------------------------------------------------------
class MaxPool2d(_Pooling):
    """The maximum of each window; padding cells are ``-inf``."""

    def output_types(self, x: TensorType) -> list[TensorType]:
        return [self.pooled_type(x)]

    def perform(self, x: np.ndarray) -> np.ndarray:
        return self.separable(np.maximum, self.pad(x, -np.inf), self.output_counts(x.shape))

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        (x,), (out,) = node.inputs, node.outputs
        return [MaxPool2dGrad(self.pool_size, self.stride, self.padding)(x, out, output_grads[0])]


class MaxPool2dGrad(_Pooling):
    """``(x, pooled, g) -> dx``: each window's gradient goes to the first cell holding its maximum
    (PyTorch's rule); overlapping windows add up."""

    def output_types(self, x: TensorType, pooled: TensorType, g: TensorType) -> list[TensorType]:
        return [x]

    def perform(self, x: np.ndarray, pooled: np.ndarray, g: np.ndarray) -> np.ndarray:
        counts = self.output_counts(x.shape)
        tiled = self.tiles(*x.shape[2:])
        padded = self.pad(x, NEVER_A_MAXIMUM)
        result = _zeros_unless(tiled, x, padded.shape)
        targets = self.windows(result, counts)
        for hit, target in zip(self.first_maxima(padded, pooled, counts), targets):
            if tiled:
                np.multiply(g, hit, out=target)
            else:
                target += g * hit
        return self.crop(result)

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        x, pooled, _ = node.inputs
        select = MaxPool2dSelect(self.pool_size, self.stride, self.padding)
        # The routing is piecewise constant in x: only g has a nonzero derivative.
        return [
            zeros_like(x) if needed[0] else None,
            zeros_like(pooled) if needed[1] else None,
            select(x, pooled, output_grads[0]) if needed[2] else None,
        ]


class MaxPool2dSelect(_Pooling):
    """``(x, pooled, h) -> h`` read at the first maximum of each window of ``x``: the adjoint of
    :class:`MaxPool2dGrad` (the gradient of a max pooling's gradient)."""

    def output_types(self, x: TensorType, pooled: TensorType, h: TensorType) -> list[TensorType]:
        return [pooled]

    def perform(self, x: np.ndarray, pooled: np.ndarray, h: np.ndarray) -> np.ndarray:
        counts = self.output_counts(x.shape)
        result = np.zeros(pooled.shape, dtype=h.dtype)
        hits = self.first_maxima(self.pad(x, NEVER_A_MAXIMUM), pooled, counts)
        for hit, values in zip(hits, self.windows(self.pad(h, 0), counts)):
            result += values * hit
        return result

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        x, pooled, _ = node.inputs
        route = MaxPool2dGrad(self.pool_size, self.stride, self.padding)
        return [
            zeros_like(x) if needed[0] else None,
            zeros_like(pooled) if needed[1] else None,
            route(x, pooled, output_grads[0]) if needed[2] else None,
        ]


class SameLayout(Op):
    """``(x, like) -> x``: the value of ``x``, which a backend may store in memory as ``like`` is
    stored (the numpy backend copies it when the two differ: numpy's loops over arrays of
    different layouts are several times slower than a copy). ``like`` has ``x``'s shape."""

    view_map = {0: 0}

    def output_types(self, x: TensorType, like: TensorType) -> list[TensorType]:
        return [x]

    def perform(self, x: np.ndarray, like: np.ndarray) -> np.ndarray:
        return x

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        return [output_grads[0], None]


# --- average pooling ----------------------------------------------------------------------------
class AvgPool2d(_Pooling):
    """The mean of each window, padding cells counted as zeros (``count_include_pad=True``)."""

    def output_types(self, x: TensorType) -> list[TensorType]:
        return [self.pooled_type(x)]

    def perform(self, x: np.ndarray) -> np.ndarray:
        result = self.separable(np.add, self.pad(x, 0), self.output_counts(x.shape))
        result *= x.dtype.type(1.0 / (self.pool_size[0] * self.pool_size[1]))
        return result

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        (x,) = node.inputs
        return [AvgPool2dGrad(self.pool_size, self.stride, self.padding)(output_grads[0], shape(x))]


class AvgPool2dGrad(_Pooling):
    """``(g, image_shape) -> dx``: the adjoint of :class:`AvgPool2d`, each window's gradient spread
    evenly over its cells."""

    def make_node(self, g: Variable, image_shape: Variable) -> Apply:
        static = static_shape_value(image_shape) or (None,) * 4
        return Apply(self, [g, image_shape], [TensorType(g.dtype, tuple(static))])

    def perform(self, g: np.ndarray, image_shape: np.ndarray) -> np.ndarray:
        n, c, h, w = (int(length) for length in image_shape)
        counts = self.output_counts((n, c, h, w))
        if counts != g.shape[2:]:
            raise ValueError(f"a gradient of shape {g.shape} does not fit pooling an input of shape {(n, c, h, w)}")
        tiled = self.tiles(h, w)
        ph, pw = self.padding
        result = _zeros_unless(tiled, g, (n, c, h + 2 * ph, w + 2 * pw))
        share = np.multiply(g, g.dtype.type(1.0 / (self.pool_size[0] * self.pool_size[1])))
        for target in self.windows(result, counts):
            if tiled:
                target[...] = share
            else:
                target += share
        return self.crop(result)

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        return [AvgPool2d(self.pool_size, self.stride, self.padding)(output_grads[0]), None]


# --- the public functions -----------------------------------------------------------------------
def _pooling_arguments(what: str, x: Any, pool_size: Any, stride: Any, padding: Any) -> tuple:
    x = as_float(as_tensor(x))
    if x.ndim != 4:
        raise ShapeError(f"{what} takes an (N, C, H, W) input, got {x.type.describe()}")
    pool = as_pair(pool_size, "pool_size", 1)
    steps = pool if stride is None else as_pair(stride, "stride", 1)
    pads = as_pair(padding, "padding", 0)
    if pads[0] > pool[0] // 2 or pads[1] > pool[1] // 2:
        raise ValueError(f"{what}: padding {padding!r} must be at most half the pool size {pool} (as in PyTorch)")
    return x, pool, steps, pads


def max_pool2d(x: Any, pool_size: Any, stride: Any = None, padding: Any = 0) -> Variable:
    """The maximum over each ``pool_size`` window of NCHW ``x`` (an int or a pair); ``stride``
    defaults to ``pool_size``; windows that do not fit are dropped; padding cells are ``-inf``.
    The gradient goes to the first maximum of each window, as in PyTorch."""
    x, pool, steps, pads = _pooling_arguments("max_pool2d", x, pool_size, stride, padding)
    return MaxPool2d(pool, steps, pads)(x)


def avg_pool2d(x: Any, pool_size: Any, stride: Any = None, padding: Any = 0) -> Variable:
    """The mean over each ``pool_size`` window of NCHW ``x``; ``stride`` defaults to ``pool_size``;
    windows that do not fit are dropped; padded cells count as zeros (PyTorch's default)."""
    x, pool, steps, pads = _pooling_arguments("avg_pool2d", x, pool_size, stride, padding)
    return AvgPool2d(pool, steps, pads)(x)


# --- Theano's pool_2d ---------------------------------------------------------------------------
POOL_MODES = ("max", "sum", "average_inc_pad", "average_exc_pad")


def pool_2d(
    input: Any,
    ws: Any = None,
    ignore_border: bool = True,
    stride: Any = None,
    pad: Any = (0, 0),
    mode: str = "max",
    ds: Any = None,
    st: Any = None,
    padding: Any = None,
) -> Variable:
    """Theano's ``pool_2d``: pooling over the last two axes of ``input`` (two axes or more).

    ``ws``: the window, an int or a pair (``ds`` is its old name); ``stride`` (old name ``st``)
    defaults to ``ws``; ``pad`` (old name ``padding``) adds ``(rows, columns)`` cells on both sides,
    fewer than the window. ``mode``: ``'max'`` and ``'sum'`` (padding never counts),
    ``'average_inc_pad'`` (divides by the whole window) or ``'average_exc_pad'`` (by the cells of
    the input the window covers). ``ignore_border=True`` drops the windows that do not fit, as
    PyTorch; ``False`` keeps the partial windows at the bottom and right (without padding), as
    Theano did. The gradient of ``'max'`` goes to the first maximum of each window.
    """
    ws = _one_of("ws", ws, "ds", ds)
    stride = _one_of("stride", stride, "st", st)
    if padding is not None:
        if pad not in (None, (0, 0), [0, 0], 0):
            raise ValueError("pool_2d: give pad= or its old name padding=, not both")
        pad = padding
    if ws is None:
        raise TypeError("pool_2d needs the window size: ws=(rows, columns)")
    if mode not in POOL_MODES:
        raise ValueError(f"pool_2d: mode must be one of {POOL_MODES}, not {mode!r}")
    x = as_float(as_tensor(input))
    if x.ndim < 2:
        raise ShapeError(f"pool_2d pools the last two axes of its input, which has {x.ndim}: {x.type.describe()}")
    window = as_pair(ws, "ws", 1)
    steps = window if stride is None else as_pair(stride, "stride", 1)
    pads = as_pair(0 if pad is None else pad, "pad", 0)
    if pads != (0, 0) and not ignore_border:
        raise ValueError(f"pool_2d: pad={pad!r} needs ignore_border=True (as in Theano)")
    if pads[0] >= window[0] or pads[1] >= window[1]:
        raise ValueError(f"pool_2d: pad={pad!r} must be smaller than the window {window}")
    with in_scope("pool_2d"):
        images = _as_images(x)
        pooled = _pool_images(images, window, steps, pads, bool(ignore_border), mode)
        return _from_images(pooled, x)


def _one_of(name: str, value: Any, old_name: str, old_value: Any) -> Any:
    if old_value is None:
        return value
    if value is not None:
        raise ValueError(f"pool_2d: give {name}= or its old name {old_name}=, not both")
    return old_value


def _as_images(x: Variable) -> Variable:
    """``x`` as ``(N, C, H, W)``: the leading axes merged, or new ones added."""
    if x.ndim == 4:
        return x
    if x.ndim < 4:
        return x.dimshuffle(*(["x"] * (4 - x.ndim) + list(range(x.ndim))))
    return reshape(x, [-1, 1, shape_at(x, x.ndim - 2), shape_at(x, x.ndim - 1)])


def _from_images(pooled: Variable, x: Variable) -> Variable:
    if x.ndim == 4:
        return pooled
    if x.ndim < 4:
        return pooled.dimshuffle(*range(4 - x.ndim, 4))
    lengths = [shape_at(x, axis) for axis in range(x.ndim - 2)] + [shape_at(pooled, 2), shape_at(pooled, 3)]
    return reshape(pooled, lengths)


def _pool_images(x: Variable, window: Pair, steps: Pair, pads: Pair, ignore_border: bool, mode: str) -> Variable:
    covered = None  # 1 on the input's cells, 0 on the cells added: counts them per window
    if mode == "average_exc_pad" or (mode != "max" and not ignore_border):
        covered = full([1, 1, shape_at(x, 2), shape_at(x, 3)], constant(1), x.dtype)
    if not ignore_border:  # complete the partial windows with cells that change nothing
        extra = [_partial_window_cells(_length(x, axis), window[i], steps[i]) for i, axis in enumerate((2, 3))]
        x = _extend(x, extra, -np.inf if mode == "max" else 0.0)
        if covered is not None:
            covered = _extend(covered, extra, 0.0)
    if mode == "max":
        return MaxPool2d(window, steps, pads)(x)
    average = AvgPool2d(window, steps, pads)
    if mode == "sum":
        return average(x) * float(window[0] * window[1])
    if covered is None:  # average_inc_pad of whole windows
        return average(x)
    return average(x) / average(covered)  # the window's sum over the count of input cells in it


def _length(x: Variable, axis: int) -> Any:
    """A static length as an int, else the symbolic one."""
    length = x.type.shape[axis]
    return length if length is not None else shape_at(x, axis)


def _partial_window_cells(length: Any, window: int, step: int) -> Any:
    """How many cells the last of Theano's windows (``ignore_border=False``: the partial ones kept)
    reaches past the end of an axis of ``length`` (an int or a symbolic scalar)."""
    if step >= window:
        count = (length - 1) // step + 1
    else:
        count = _at_least_zero((length - 1 - window + step) // step) + 1
    return _at_least_zero((count - 1) * step + window - length)


def _at_least_zero(value: Any) -> Any:
    return max(value, 0) if isinstance(value, int) else maximum(value, 0)


def _extend(x: Variable, extra: Sequence[Any], fill: float) -> Variable:
    """``x`` with ``extra[0]`` rows and ``extra[1]`` columns of ``fill`` added at the bottom and right."""
    for axis, cells in zip((2, 3), extra):
        if isinstance(cells, int) and cells == 0:
            continue
        lengths = [_length(x, other) if other != axis else cells for other in range(4)]
        x = concatenate([x, full(lengths, constant(fill), x.dtype)], axis=axis)
    return x
