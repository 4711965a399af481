"""Convolution: ``conv2d`` on NCHW images with OIHW filters (cross-correlation, as PyTorch).

A convolution is two nodes. ``Im2Col`` gathers the input's windows into columns, one strided copy
per kernel offset; ``ConvContraction('output')`` multiplies the columns by the filters, one GEMM.
The filters' gradient needs those very columns, so the forward and the backward pass share that
node, as hand-written code shares its buffer. The input's gradient is ``Col2Im`` (one slice-add per
kernel offset) of ``ConvContraction('columns')``.

``Im2Col`` and ``Col2Im`` are each other's adjoint, and the three contractions are the three
partial derivatives of one trilinear form ``sum filters * columns * output_grad``, so the gradient of
each of these ops is made of these ops again: a convolution is differentiable to any order.

Memory layouts are the ops' own business behind the NCHW meaning of their results: columns are
``(kh, kw, C, N, Ho, Wo)``, so that each kernel offset is one contiguous block and the GEMM needs
no copy; the contraction's output is an ``(O, N, Ho, Wo)`` array returned as an NCHW view, which
keeps the following elementwise ops, pooling and the next convolution on channel-major memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DTypeError, ShapeError
from ..graph.basic import Apply, Variable
from ..graph.op import Op
from ..graph.source import in_scope
from ..graph.type import TensorType, format_shape
from ..ops.basic import as_tensor, cast, constant
from ..ops.elemwise import as_float
from ..ops.shape import as_shape, shape, shape_at, specify_shape, static_shape_value, zeros
from ..ops.subtensor import set_subtensor

__all__ = ["Col2Im", "ConvContraction", "Im2Col", "conv2d"]

Pair = tuple[int, int]
#: ``((top, bottom), (left, right))``, or ``'same'`` when it depends on the kernel's size.
Padding = tuple[Pair, Pair] | str


# --- arguments ----------------------------------------------------------------------------------
def as_pair(value: Any, what: str, minimum: int) -> Pair:
    """An int or a pair of ints as a pair, each at least ``minimum``."""
    items = None
    if isinstance(value, (int, np.integer)):
        items = (value, value)
    elif isinstance(value, (tuple, list)):
        items = tuple(value)
    if (
        items is None
        or len(items) != 2
        or not all(isinstance(item, (int, np.integer)) and not isinstance(item, bool) for item in items)
    ):
        raise TypeError(f"{what} must be an int or a pair of ints, not {value!r}")
    if min(items) < minimum:
        raise ValueError(f"{what} must be at least {minimum}, got {value!r}")
    return int(items[0]), int(items[1])


def conv_padding(padding: Any, stride: Pair) -> Padding:
    """``padding`` of ``conv2d`` (an int, a pair, ``'valid'`` or ``'same'``) in the ops' form."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"padding='same' needs stride 1 (as in PyTorch), got stride {stride}")
            return "same"
        raise ValueError(
            f"padding (border_mode) must be an int, a pair, 'valid', 'same', 'full' or 'half', not {padding!r}"
        )
    rows, columns = as_pair(padding, "padding", 0)
    return ((rows, rows), (columns, columns))


def resolve_padding(padding: Padding, kernel: Pair) -> tuple[Pair, Pair]:
    """Explicit padding; ``'same'`` pads ``k - 1`` in all, the extra cell of even kernels at the
    bottom and right (PyTorch's placement)."""
    if padding != "same":
        return padding  # type: ignore[return-value]
    return tuple((total // 2, total - total // 2) for total in (kernel[0] - 1, kernel[1] - 1))  # type: ignore[return-value]


def dilated(kernel: tuple, dilation: Pair) -> tuple:
    """The extent of a kernel whose cells are ``dilation`` apart: ``(k - 1) * d + 1`` per axis."""
    return tuple(None if size is None else (size - 1) * step + 1 for size, step in zip(kernel, dilation))


def window_count(length: int | None, kernel: int | None, stride: int, pads: Pair) -> int | None:
    """How many whole windows fit along an axis (those that do not fit are dropped)."""
    if length is None or kernel is None:
        return None
    return (length + pads[0] + pads[1] - kernel) // stride + 1


def window_slice(offset: int, count: int, stride: int) -> slice:
    """The slice of a padded axis that the windows' cells at ``offset`` cover."""
    return slice(offset, offset + stride * (count - 1) + 1, stride)


def _static_pair(variable: Variable) -> tuple[int | None, int | None]:
    static = static_shape_value(variable)
    return (static[0], static[1]) if static is not None and len(static) == 2 else (None, None)


def _window_counts(what: str, image: TensorType, kernel: tuple, stride: Pair, padding: Padding) -> tuple:
    """Static output lengths of a window operation, or a ``ShapeError`` if no window fits."""
    if padding == "same":  # stride 1: as large as the input, whatever the kernel
        return tuple(image.shape[2:])
    counts = []
    for axis, (length, size, step) in enumerate(zip(image.shape[2:], kernel, stride)):
        if size is None:
            counts.append(None)
            continue
        count = window_count(length, size, step, padding[axis])
        if count is not None and count < 1:
            raise ShapeError(
                f"{what}: a window of {tuple(kernel)} does not fit in the input of shape "
                f"{format_shape(image.shape)} padded by {padding}"
            )
        counts.append(count)
    return tuple(counts)


def _check_fits(what: str, image_shape: tuple, kernel: Pair, counts: Sequence[int], padding: Any) -> None:
    if min(counts) < 1:
        raise ValueError(
            f"{what}: a window of {kernel} does not fit in the input of shape {image_shape} padded by {padding}"
        )


# --- gathering windows: im2col and its adjoint --------------------------------------------------
class Im2Col(Op):
    """``(x, kernel_size) -> columns``: ``columns[i, j, c, n, h, w] = padded_x[n, c, h*sh + i*dh, w*sw + j*dw]``,
    of shape ``(kh, kw, C, N, Ho, Wo)`` (``dilation`` ``(dh, dw)`` spreads the kernel's cells)."""

    __props__ = ("stride", "padding", "dilation")

    def __init__(self, stride: Pair, padding: Padding, dilation: Pair = (1, 1)):
        self.stride = stride
        self.padding = padding
        self.dilation = dilation

    @property
    def name(self) -> str:
        return "im2col"

    def make_node(self, x: Variable, kernel: Variable) -> Apply:
        kernel_size = _static_pair(kernel)
        spread = dilated(kernel_size, self.dilation)
        counts = _window_counts("conv2d", x.type, spread, self.stride, self.padding)
        n, c = x.type.shape[:2]
        return Apply(self, [x, kernel], [TensorType(x.dtype, kernel_size + (c, n) + counts)])

    def geometry(self, x_shape: tuple, kernel: np.ndarray) -> tuple:
        """``(kh, kw), ((top, bottom), (left, right)), (ho, wo)`` for an input of ``x_shape``,
        or a ``ValueError`` when no window fits."""
        kh, kw = int(kernel[0]), int(kernel[1])
        spread = dilated((kh, kw), self.dilation)
        pads = resolve_padding(self.padding, spread)
        counts = tuple(
            window_count(length, size, step, pad)
            for length, size, step, pad in zip(x_shape[2:], spread, self.stride, pads)
        )
        _check_fits("conv2d", x_shape, spread, counts, self.padding)
        return (kh, kw), pads, counts

    def perform(self, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        stride, (dh, dw) = self.stride, self.dilation
        (kh, kw), ((top, bottom), (left, right)), (ho, wo) = self.geometry(x.shape, kernel)
        n, c, h, w = x.shape
        source = x.transpose(1, 0, 2, 3)  # channel-major: each offset's copy is one block
        if top or bottom or left or right:
            padded = np.zeros((c, n, h + top + bottom, w + left + right), dtype=x.dtype)
            padded[:, :, top : top + h, left : left + w] = source
            source = padded
        columns = np.empty((kh, kw, c, n, ho, wo), dtype=x.dtype)
        for i in range(kh):
            rows = window_slice(i * dh, ho, stride[0])
            for j in range(kw):
                columns[i, j] = source[:, :, rows, window_slice(j * dw, wo, stride[1])]
        return columns

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        x, _ = node.inputs
        return [Col2Im(self.stride, self.padding, self.dilation)(output_grads[0], shape(x)), None]


class Col2Im(Op):
    """``(columns, image_shape) -> x``: the adjoint of :class:`Im2Col`; each column is added back
    to the cells of its window (overlapping windows add up; padding is dropped)."""

    __props__ = ("stride", "padding", "dilation")

    def __init__(self, stride: Pair, padding: Padding, dilation: Pair = (1, 1)):
        self.stride = stride
        self.padding = padding
        self.dilation = dilation

    @property
    def name(self) -> str:
        return "col2im"

    def make_node(self, columns: Variable, image_shape: Variable) -> Apply:
        static = static_shape_value(image_shape) or (None,) * 4
        if columns.ndim != 6 or len(static) != 4:
            raise ShapeError("col2im takes (kh, kw, C, N, Ho, Wo) columns and a 4-long image shape")
        return Apply(self, [columns, image_shape], [TensorType(columns.dtype, tuple(static))])

    def perform(self, columns: np.ndarray, image_shape: np.ndarray) -> np.ndarray:
        stride, (dh, dw) = self.stride, self.dilation
        n, c, h, w = (int(length) for length in image_shape)
        kh, kw, _, _, ho, wo = columns.shape
        (top, bottom), (left, right) = resolve_padding(self.padding, dilated((kh, kw), self.dilation))
        padded = np.zeros((c, n, h + top + bottom, w + left + right), dtype=columns.dtype)
        for i in range(kh):
            rows = window_slice(i * dh, ho, stride[0])
            for j in range(kw):
                padded[:, :, rows, window_slice(j * dw, wo, stride[1])] += columns[i, j]
        return padded[:, :, top : top + h, left : left + w].transpose(1, 0, 2, 3)

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        columns, _ = node.inputs
        kernel = as_shape([shape_at(columns, 0), shape_at(columns, 1)])
        return [Im2Col(self.stride, self.padding, self.dilation)(output_grads[0], kernel), None]


# --- the contractions ---------------------------------------------------------------------------
_RESULTS = ("output", "columns", "filters")


def filter_matrix(filters: np.ndarray) -> np.ndarray:
    """``(O, C, kh, kw)`` filters as an ``(O, kh*kw*C)`` matrix in the columns' order."""
    o, c, kh, kw = filters.shape
    return filters.transpose(0, 2, 3, 1).reshape(o, kh * kw * c)


def _channel_major(grad: np.ndarray) -> np.ndarray:
    """An ``(N, O, Ho, Wo)`` array as an ``(O, N*Ho*Wo)`` matrix (no copy when it is channel-major)."""
    n, o, ho, wo = grad.shape
    return grad.transpose(1, 0, 2, 3).reshape(o, n * ho * wo)


def _check_match(what: str, first: tuple, second: tuple, pairs: Sequence[tuple[int, int]]) -> None:
    """Raises naming both shapes if an axis of ``first`` and one of ``second`` certainly differ."""
    for a, b in pairs:
        if first[a] is not None and second[b] is not None and first[a] != second[b]:
            raise ShapeError(f"conv2d ({what}): shapes {format_shape(first)} and {format_shape(second)} do not fit")


class ConvContraction(Op):
    """One partial derivative of ``T(F, X, G) = sum F[o,c,i,j] X[i,j,c,n,h,w] G[n,o,h,w]`` (filters
    ``F``, columns ``X``, output gradient ``G``):

    - ``'output'``: ``(F, X) -> (N, O, Ho, Wo)``, the convolution itself;
    - ``'columns'``: ``(F, G) -> (kh, kw, C, N, Ho, Wo)``, towards the input's gradient;
    - ``'filters'``: ``(X, G) -> (O, C, kh, kw)``, the filters' gradient.
    """

    __props__ = ("result",)

    def __init__(self, result: str):
        if result not in _RESULTS:
            raise ValueError(f"result must be one of {_RESULTS}, not {result!r}")
        self.result = result

    @property
    def name(self) -> str:
        return f"conv2d_{self.result}" if self.result != "output" else "conv2d"

    def output_types(self, a: TensorType, b: TensorType) -> list[TensorType]:
        if a.numpy_dtype != b.numpy_dtype or not a.is_float:
            raise DTypeError(f"{self.name} takes two operands of one float dtype, got {a.dtype} and {b.dtype}")
        if self.result == "output":  # filters (O, C, kh, kw), columns (kh, kw, C, N, Ho, Wo)
            _check_match("filters and columns", a.shape, b.shape, [(1, 2), (2, 0), (3, 1)])
            shape = (b.shape[3], a.shape[0]) + b.shape[4:]
        elif self.result == "columns":  # filters, output grad (N, O, Ho, Wo)
            _check_match("filters and output", a.shape, b.shape, [(0, 1)])
            shape = (a.shape[2], a.shape[3], a.shape[1], b.shape[0]) + b.shape[2:]
        else:  # columns, output grad
            _check_match("columns and output", a.shape, b.shape, [(3, 0), (4, 2), (5, 3)])
            shape = (b.shape[1], a.shape[2], a.shape[0], a.shape[1])
        return [TensorType(a.dtype, shape)]

    def perform(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return _CONTRACTIONS[self.result](a, b)

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        a, b = node.inputs
        (h,) = output_grads
        if self.result == "output":  # a = filters, b = columns
            return [_contract("filters", b, h, needed[0]), _contract("columns", a, h, needed[1])]
        if self.result == "columns":  # a = filters, b = output grad
            return [_contract("filters", h, b, needed[0]), _contract("output", a, h, needed[1])]
        # a = columns, b = output grad
        return [_contract("columns", h, b, needed[0]), _contract("output", h, a, needed[1])]


def _contract(result: str, a: Variable, b: Variable, wanted: bool) -> Variable | None:
    return ConvContraction(result)(a, b) if wanted else None


def check_output_operands(filters: np.ndarray, columns: np.ndarray) -> None:
    """A ``ValueError`` when the filters do not fit the columns (``'output'``)."""
    kh, kw, c = columns.shape[:3]
    if filters.shape[1:] != (c, kh, kw):
        raise ValueError(f"filters of shape {filters.shape} do not fit an input of {c} channels and a {kh}x{kw} kernel")


def check_columns_operands(filters: np.ndarray, grad: np.ndarray) -> None:
    """A ``ValueError`` when the output gradient does not fit the filters (``'columns'``)."""
    if grad.shape[1] != filters.shape[0]:
        raise ValueError(f"an output gradient of shape {grad.shape} does not fit filters of shape {filters.shape}")


def check_filters_operands(columns: np.ndarray, grad: np.ndarray) -> None:
    """A ``ValueError`` when the output gradient does not fit the columns (``'filters'``)."""
    if (grad.shape[0],) + grad.shape[2:] != columns.shape[3:]:
        raise ValueError(f"an output gradient of shape {grad.shape} does not fit columns of shape {columns.shape}")


def _conv_output(filters: np.ndarray, columns: np.ndarray) -> np.ndarray:
    check_output_operands(filters, columns)
    kh, kw, c, n, ho, wo = columns.shape
    product = filter_matrix(filters) @ columns.reshape(kh * kw * c, n * ho * wo)
    return product.reshape(filters.shape[0], n, ho, wo).transpose(1, 0, 2, 3)


def _conv_columns(filters: np.ndarray, grad: np.ndarray) -> np.ndarray:
    check_columns_operands(filters, grad)
    _, c, kh, kw = filters.shape
    n, _, ho, wo = grad.shape
    product = filter_matrix(filters).T @ _channel_major(grad)
    return product.reshape(kh, kw, c, n, ho, wo)


def _conv_filters(columns: np.ndarray, grad: np.ndarray) -> np.ndarray:
    check_filters_operands(columns, grad)
    kh, kw, c, n, ho, wo = columns.shape
    product = _channel_major(grad) @ columns.reshape(kh * kw * c, n * ho * wo).T
    return product.reshape(grad.shape[1], kh, kw, c).transpose(0, 3, 1, 2)


_CONTRACTIONS = {"output": _conv_output, "columns": _conv_columns, "filters": _conv_filters}


# --- the public function ------------------------------------------------------------------------
def kernel_size(filters: Variable) -> Variable:
    """``filters.shape[2:]`` as an int64 vector (a constant when the static shape knows it)."""
    kh, kw = filters.type.shape[2:]
    if kh is not None and kw is not None:
        return constant(np.array([kh, kw], dtype=np.int64))
    return as_shape([shape_at(filters, 2), shape_at(filters, 3)])


def conv2d(
    x: Any = None,
    filters: Any = None,
    stride: Any = None,
    padding: Any = None,
    *,
    input: Any = None,
    input_shape: Sequence[int | None] | None = None,
    filter_shape: Sequence[int | None] | None = None,
    border_mode: Any = None,
    subsample: Any = None,
    filter_dilation: Any = None,
    filter_flip: bool = False,
    image_shape: Sequence[int | None] | None = None,
    num_groups: int = 1,
) -> Variable:
    """2-D convolution (cross-correlation, no kernel flip, as PyTorch) of NCHW images ``x`` with
    OIHW ``filters``, giving ``(N, O, Ho, Wo)``.

    ``stride``: an int or a pair (default 1). ``padding``: an int, a pair (rows, columns),
    ``'valid'`` (none, the default) or ``'same'`` (output as large as the input; needs stride 1;
    even kernels get their extra padding at the bottom and right, as PyTorch). Windows that do not
    fit are dropped.

    Theano's keywords work too: ``input=`` (for ``x``), ``border_mode=`` (``'valid'``, ``'full'``,
    ``'half'``, an int or a pair), ``subsample=`` (the stride), ``filter_dilation=`` (an int or a
    pair: the kernel's cells that far apart), ``input_shape=``/``filter_shape=`` (static lengths,
    ``None`` for unknown, checked when the function runs) and ``filter_flip=True`` (flip the
    kernels: a true convolution, Theano's default; give it for weights trained with Theano).

    >>> y = sg.nn.conv2d(sg.tensor4('x'), W, padding='same')
    >>> y = sg.nn.conv2d(input=x, filters=W, filter_shape=(8, 1, 5, 5), border_mode='full', filter_flip=True)
    """
    x = _one_of("x", x, "input", input, required=True)
    if filters is None:
        raise TypeError("conv2d needs filters")
    stride = _one_of("stride", stride, "subsample", subsample, default=1)
    padding = _one_of("padding", padding, "border_mode", border_mode, default=0)
    input_shape = _one_of("input_shape", input_shape, "image_shape", image_shape)
    if num_groups != 1:
        raise NotImplementedError("conv2d: grouped convolutions (num_groups > 1) are not implemented")
    x, filters = as_float(as_tensor(x)), as_float(as_tensor(filters))
    if x.ndim != 4 or filters.ndim != 4:
        raise ShapeError(
            f"conv2d takes an (N, C, H, W) input and (O, C, kh, kw) filters, got {x.type.describe()} "
            f"and {filters.type.describe()}"
        )
    with in_scope("conv2d"):  # one box in pictures: its casts, shapes, columns and product
        dtype = np.result_type(x.type.numpy_dtype, filters.type.numpy_dtype).name
        x, filters = cast(x, dtype), cast(filters, dtype)
        if input_shape is not None:
            x = _with_shape(x, input_shape, "input_shape")
        if filter_shape is not None:
            filters = _with_shape(filters, filter_shape, "filter_shape")
        if filter_flip:
            filters = filters[:, :, ::-1, ::-1]
        stride = as_pair(stride, "stride", 1)
        dilation = as_pair(1 if filter_dilation is None else filter_dilation, "filter_dilation", 1)
        channels, expected = x.type.shape[1], filters.type.shape[1]
        if channels is not None and expected is not None and channels != expected:
            raise ShapeError(
                f"conv2d: the input {format_shape(x.type.shape)} has {channels} channel(s) but the filters "
                f"{format_shape(filters.type.shape)} expect {expected}"
            )
        if isinstance(padding, str) and padding in ("full", "half"):
            pads = _border(padding, _kernel_lengths(filters), dilation)
            if all(isinstance(pad, int) for pad in pads):
                padding = pads
            else:  # the kernel's size is known only at run time: pad in the graph
                x, padding = _pad_in_graph(x, pads), 0
        padding = conv_padding(padding, stride)
        columns = Im2Col(stride, padding, dilation)(x, kernel_size(filters))
        return ConvContraction("output")(filters, columns)


def _one_of(
    name: str, value: Any, theano_name: str, theano_value: Any, default: Any = None, required: bool = False
) -> Any:
    """The argument given under its name or Theano's (not both)."""
    if value is not None and theano_value is not None:
        raise TypeError(f"conv2d: give {name}= or {theano_name}=, not both")
    chosen = value if value is not None else theano_value
    if chosen is None and required:
        raise TypeError(f"conv2d needs its input ({name}= or {theano_name}=)")
    return default if chosen is None else chosen


def _with_shape(x: Variable, lengths: Any, what: str) -> Variable:
    if not isinstance(lengths, (tuple, list)) or len(lengths) != 4:
        raise ValueError(f"conv2d: {what} is a tuple of 4 lengths (None for unknown), not {lengths!r}")
    try:
        return specify_shape(x, lengths)
    except ShapeError as error:
        raise ShapeError(f"conv2d: {what}={tuple(lengths)!r} does not fit: {error}") from None


def _kernel_lengths(filters: Variable) -> tuple:
    """The kernel's lengths: ints where static, symbolic scalars elsewhere."""
    return tuple(
        filters.type.shape[axis] if filters.type.shape[axis] is not None else shape_at(filters, axis) for axis in (2, 3)
    )


def _border(border_mode: str, kernel: tuple, dilation: Pair) -> tuple:
    """Theano's padding per axis for ``'full'`` (every partial overlap: ``extent - 1``) and
    ``'half'`` (``extent // 2``), ``extent = (k - 1) * d + 1``; the lengths may be symbolic."""
    extents = [(size - 1) * step + 1 for size, step in zip(kernel, dilation)]
    return tuple(extent - 1 if border_mode == "full" else extent // 2 for extent in extents)


def _pad_in_graph(x: Variable, pads: tuple) -> Variable:
    """``x`` with ``pads[0]`` rows and ``pads[1]`` columns of zeros on both sides (symbolic pads)."""
    n, c, h, w = (shape_at(x, axis) for axis in range(4))
    rows, columns = pads
    padded = zeros([n, c, h + 2 * rows, w + 2 * columns], x.dtype)
    return set_subtensor(padded[:, :, rows : rows + h, columns : columns + w], x)
