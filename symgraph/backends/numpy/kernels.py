"""The numpy backend's table: for each op class, the kernel its nodes run.

``numpy_kernel(op, node)`` dispatches on the op's class (``functools.singledispatch``); an op
without an entry runs its ``perform``. Entries exist where the numpy backend can do better than
the reference computation: elementwise computations that write into a given array (``out=``),
indexed assignments that overwrite their input, work settled once per node from static shapes,
and ops holding an inner graph, which the backend compiles.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...graph.basic import Apply
from ...graph.op import Op
from ...nn.activations import Softmax
from ...nn.conv import (
    Col2Im,
    ConvContraction,
    Im2Col,
    check_columns_operands,
    check_filters_operands,
    check_output_operands,
    dilated,
    filter_matrix,
    resolve_padding,
    window_slice,
)
from ...nn.dropout import BernoulliMask
from ...nn.losses import SoftmaxCrossEntropy, check_class_indices
from ...nn.pool import MaxPool2d, MaxPool2dGrad, SameLayout, stored_order
from ...ops.elemwise import Elemwise
from ...ops.ifelse import IfElse
from ...ops.linalg import Dot, Matmul
from ...ops.random import RandomOp
from ...ops.reduce import Reduce
from ...ops.scan import Scan
from ...ops.shape import Alloc, AllocEmpty, BroadcastTo, Reshape, Shape, SumTo
from ...ops.subgraph import Map
from ...ops.subtensor import IncSubtensor, Subtensor, indexer
from . import threads, workspace


@dataclass(slots=True)  # not frozen: a frozen dataclass is slow to build, one per node
class Kernel:
    """What the generated program calls for one node."""

    function: Callable[..., Any]  #: input values in, the output (a tuple if several) out
    #: ``function(*inputs, out=array)`` writes its single result into ``array``, an input of the
    #: result's dtype and broadcast shape (elementwise computations).
    writes_out: bool = False
    #: ``function`` takes that array as its last positional argument (a numpy ufunc: faster to
    #: call than with the keyword, and quicker to compile).
    out_positional: bool = False
    #: Inputs that ``inplace_function`` overwrites to make its result (``set_subtensor``).
    destroys: tuple[int, ...] = ()
    #: Inputs that ``inplace_function`` may scribble on as working memory, its result a new array
    #: (``col2im`` zeroes the cells it would otherwise have to skip).
    scratches: tuple[int, ...] = ()
    inplace_function: Callable[..., Any] | None = None
    #: Facts about shapes, so that memory planning knows two arrays have the same shape without
    #: testing it at run time: ``shape_value_of`` is the input whose shape the (single) output
    #: holds (``x.shape``); ``shaped_by`` is ``(output, input)`` when that output's shape is that
    #: input's value (``broadcast_to(g, x.shape)``, ``zeros(x.shape)``, a mask of ``x.shape``).
    shape_value_of: int | None = None
    shaped_by: tuple[int, int] | None = None
    #: The same computation as a Python expression on numpy scalars (``"{0} + {1}"``): inside
    #: loops, arithmetic on 0-d values is written so, several times faster than a ufunc call.
    scalar_expression: str | None = None


@functools.singledispatch
def numpy_kernel(op: Op, node: Apply) -> Kernel:
    """The kernel of ``node``: its op's ``perform`` unless the op's class has an entry."""
    return Kernel(op.perform)


def kernels_of(nodes: Sequence[Apply]) -> dict[Apply, Kernel]:
    """Each node's kernel, ``numpy_kernel(node.op, node)``, with the table's entry looked up once
    per op class (the dispatch is a good part of choosing the kernels of a large graph)."""
    entries: dict[type, Callable[..., Kernel]] = {}
    kernels = {}
    for node in nodes:
        op = node.op
        entry = entries.get(op.__class__)
        if entry is None:
            entry = entries[op.__class__] = numpy_kernel.dispatch(op.__class__)
        kernels[node] = entry(op, node)
    return kernels


# numpy scalars follow the ufuncs' dtype rules in these operators (numpy >= 2)
_SCALAR_EXPRESSIONS = {
    np.add: "{0} + {1}",
    np.subtract: "{0} - {1}",
    np.multiply: "{0} * {1}",
    np.true_divide: "{0} / {1}",
    np.negative: "-{0}",
    np.less: "{0} < {1}",
    np.less_equal: "{0} <= {1}",
    np.greater: "{0} > {1}",
    np.greater_equal: "{0} >= {1}",
}


@numpy_kernel.register
def _elemwise(op: Elemwise, node: Apply) -> Kernel:
    output = node.outputs[0]
    scalar = output.ndim == 0 and output.type.numpy_dtype.kind in "fb" and all(v.ndim == 0 for v in node.inputs)
    expression = _SCALAR_EXPRESSIONS.get(op.function) if scalar else None
    positional = isinstance(op.function, np.ufunc) and op.function not in _OUT_BY_KEYWORD_ONLY
    return Kernel(op.function, writes_out=op.accepts_out, out_positional=positional, scalar_expression=expression)


#: numpy deprecates a third positional argument of these two (too often meant as a third operand).
_OUT_BY_KEYWORD_ONLY = (np.maximum, np.minimum)


@numpy_kernel.register
def _dot(op: Dot, node: Apply) -> Kernel:
    """``numpy.matmul`` where it means the same as ``numpy.dot`` (no 0-d operand): BLAS the same,
    but a few microseconds less per call (29 against 26 us for a 64x64 by 64x256 float32 product,
    and 423 against 307 us for 1600x64 by 64x256 with 2 BLAS threads). Matrices whose static
    shapes give a small result: ``_product``, which splits a long inner axis."""
    x, y = node.inputs
    if x.ndim == 2 and y.ndim == 2 and _small_result(x.type.shape[0], y.type.shape[1]):
        return Kernel(_product)
    return Kernel(np.matmul if x.ndim and y.ndim else np.dot)


# --- matrix products ----------------------------------------------------------------------------
#: The most multiply-adds (m * n * k) for which OpenBLAS's AVX-512 kernels (the ones numpy's wheels
#: run on this project's machine) take their small-product path, which does not pack the operands
#: (``gemm_small_kernel_permit_skylakex.c``: at most 100**3). A product with a small result over a
#: long inner axis (a first convolution's filter gradient: 16x50,176 by 50,176x9) ran 3x longer per
#: inner element on the packing path: 640 us whole, 318 us as 8 blocks of the inner axis, summed.
#: Where a BLAS has no such path, the blocks cost a few calls and small sums.
SMALL_PRODUCT = 1_000_000
#: Blocks of the inner axis shorter than this cost more in calls than they save.
SHORTEST_BLOCK = 1024


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` of two matrices, into recycled memory; a small result over a long inner axis as the
    sum of products of blocks of that axis, each small enough for the BLAS's small-product kernel
    (``SMALL_PRODUCT``)."""
    (m, k), n = a.shape, b.shape[1]
    result = workspace.empty((m, n), np.result_type(a, b))
    longest = SMALL_PRODUCT // (m * n) if _small_result(m, n) else k
    if k <= longest:
        return np.matmul(a, b, out=result)
    count = -(-k // longest)
    bounds = [k * block // count for block in range(count + 1)]
    np.matmul(a[:, : bounds[1]], b[: bounds[1]], out=result)
    partial = np.empty_like(result)
    for start, stop in zip(bounds[1:], bounds[2:]):
        result += np.matmul(a[:, start:stop], b[start:stop], out=partial)
    return result


def _small_result(m: int | None, n: int | None) -> bool:
    """Whether an ``m x n`` result leaves blocks of at least ``SHORTEST_BLOCK`` of the inner axis
    in a small product (a matrix times a vector is not one: BLAS has its own kernel for it)."""
    return m is not None and n is not None and min(m, n) > 1 and m * n * SHORTEST_BLOCK <= SMALL_PRODUCT


@numpy_kernel.register
def _matmul(op: Matmul, node: Apply) -> Kernel:
    return Kernel(np.matmul)


@numpy_kernel.register
def _sum_to(op: SumTo, node: Apply) -> Kernel:
    return Kernel(op.summer(node.inputs[0].ndim), shaped_by=(0, 1))


def _extremes(ufunc: np.ufunc, x: np.ndarray, axis: int, keepdims: bool = True) -> np.ndarray:
    """``ufunc.reduce(x, axis, keepdims=keepdims)`` for ``numpy.maximum`` or ``numpy.minimum``.
    Many short rows (a batch of class scores) are reduced from a transposed copy: numpy runs its
    inner loop once per row, and a maximum of 256 rows of 10 took 19 us that way, against 3 us
    over the columns of the copy. (The same values: a maximum does not depend on the order.)"""
    if x.ndim == 2 and axis % 2 == 1 and x.shape[1] <= 32 and x.shape[0] >= 16:
        result = ufunc.reduce(np.ascontiguousarray(x.T), axis=0)
        return result[:, np.newaxis] if keepdims else result
    return ufunc.reduce(x, axis=axis, keepdims=keepdims)


@numpy_kernel.register
def _reduce(op: Reduce, node: Apply) -> Kernel:
    """Maxima and minima of each row of a matrix by ``_extremes``; the rest, the op's own."""
    if op.kind not in ("max", "min") or node.inputs[0].ndim != 2 or op.axes != (1,):
        return Kernel(op.perform)
    ufunc, keepdims = (np.maximum if op.kind == "max" else np.minimum), op.keepdims
    return Kernel(lambda x: _extremes(ufunc, x, 1, keepdims))


@numpy_kernel.register
def _softmax(op: Softmax, node: Apply) -> Kernel:
    """The op's computation with the ufuncs' own reductions (``numpy.max`` and ``numpy.sum`` cost a
    few microseconds of Python each: a prediction's whole softmax takes ten), and a variant that
    overwrites its input when nothing else needs it."""
    axis = op.axis
    total = np.add.reduce

    def softmax(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if not x.shape[axis]:
            return x.copy() if out is None else out
        e = np.subtract(x, _extremes(np.maximum, x, axis), out=out)
        np.exp(e, out=e)
        e /= total(e, axis=axis, keepdims=True)
        return e

    return Kernel(softmax, destroys=(0,), inplace_function=lambda x: softmax(x, out=x))


@numpy_kernel.register
def _softmax_crossentropy(op: SoftmaxCrossEntropy, node: Apply) -> Kernel:
    """Class indices: the op's computation with the row maxima of ``_extremes``, the targets' scores
    picked before the exponential overwrites the shifted logits (one temporary, not three)."""
    if not op.indices:
        return Kernel(op.perform)

    def crossentropy(z: np.ndarray, targets: np.ndarray) -> np.ndarray:
        check_class_indices(z, targets)
        shifted = np.subtract(z, _extremes(np.maximum, z, 1))
        picked = shifted[np.arange(z.shape[0]), targets]
        np.exp(shifted, out=shifted)
        result = np.log(np.add.reduce(shifted, axis=1))
        result -= picked
        return result

    return Kernel(crossentropy)


@numpy_kernel.register
def _reshape(op: Reshape, node: Apply) -> Kernel:
    def reshape(x: np.ndarray, target: np.ndarray) -> np.ndarray:
        result = x.reshape(tuple(target.tolist()))
        # A view in an order of its own (flattening an image stored batch innermost) would make
        # every elementwise op on it mix layouts with arrays in C order, and crawl: C order.
        return result if result.flags.c_contiguous else _copy(result)

    return Kernel(reshape)


@numpy_kernel.register
def _shape(op: Shape, node: Apply) -> Kernel:
    return Kernel(op.perform, shape_value_of=0)


@numpy_kernel.register(BroadcastTo)
@numpy_kernel.register(Alloc)
def _shaped_by_second_input(op: Op, node: Apply) -> Kernel:
    return Kernel(op.perform, shaped_by=(0, 1))


@numpy_kernel.register
def _alloc_empty(op: AllocEmpty, node: Apply) -> Kernel:
    dtype = np.dtype(op.dtype)

    def alloc_empty(target: np.ndarray) -> np.ndarray:
        return np.empty(tuple(target.tolist()), dtype)  # every element is written before it is read

    return Kernel(alloc_empty, shaped_by=(0, 0))


@numpy_kernel.register
def _random(op: RandomOp, node: Apply) -> Kernel:
    return Kernel(op.perform, shaped_by=(1, 1))  # (generator, size, ...) -> (generator, sample)


@numpy_kernel.register
def _bernoulli_mask(op: BernoulliMask, node: Apply) -> Kernel:
    def bernoulli_mask(generator: np.random.Generator, size: np.ndarray, keep: Any) -> tuple:
        return op.perform(generator, size, keep, workspace.empty)

    return Kernel(bernoulli_mask, shaped_by=(1, 1))


@numpy_kernel.register
def _subtensor(op: Subtensor, node: Apply) -> Kernel:
    index_of = indexer(op.spec)
    if len(node.inputs) == 1:  # a fixed index: built once (itemgetter: no Python frame per call)
        return Kernel(operator.itemgetter(index_of(())))
    return Kernel(lambda x, *values: x[index_of(values)])


@numpy_kernel.register
def _inc_subtensor(op: IncSubtensor, node: Apply) -> Kernel:
    return Kernel(op.writer(inplace=False), destroys=(0,), inplace_function=op.writer(inplace=True))


@numpy_kernel.register
def _map(op: Map, node: Apply) -> Kernel:
    from . import BACKEND  # the inner graph is compiled by this very backend

    return Kernel(op.kernel(BACKEND.compile_inner))


@numpy_kernel.register
def _scan(op: Scan, node: Apply) -> Kernel:
    from .loop import link_scan  # the loop's body is linked by this very backend

    return Kernel(link_scan(op))


@numpy_kernel.register
def _ifelse(op: IfElse, node: Apply) -> Kernel:
    from . import BACKEND

    return Kernel(op.kernel(BACKEND.compile_inner))


# --- convolution: batch-innermost memory --------------------------------------------------------
# Behind the NCHW meaning of their values, the numpy kernels of the convolution keep memory in
# (C, H, W, N) order, the batch innermost: an image row of every sample is then one contiguous
# run, so that gathering windows (im2col), adding them back (col2im) and pooling copy long runs
# instead of rows of a few cells; columns are stored (kh, kw, C, Ho, Wo, N), GEMM-ready, and the
# contraction writes its (O, Ho*Wo*N) product, which the bias, the ReLU and the pooling that follow
# read and write in that same order, without a transpose. Each kernel accepts any layout (a
# value that comes from elsewhere is copied into this one once).
def _hwn_view(array: np.ndarray) -> np.ndarray:
    """An ``(N, C, H, W)`` array (or ``(kh, kw, C, N, Ho, Wo)`` columns) seen with N last."""
    if array.ndim == 4:
        return array.transpose(1, 2, 3, 0)
    return array.transpose(0, 1, 2, 4, 5, 3)


def _from_hwn(stored: np.ndarray) -> np.ndarray:
    """The NCHW (or columns') view of an array stored with N last: the inverse of ``_hwn_view``."""
    if stored.ndim == 4:
        return stored.transpose(3, 0, 1, 2)
    return stored.transpose(0, 1, 2, 5, 3, 4)


def _hwn_matrix(array: np.ndarray, axes: int) -> np.ndarray:
    """``array`` stored N last, as a matrix whose rows run over its first ``axes`` stored axes
    (copied when it is stored otherwise)."""
    stored = _hwn_view(array)
    if not stored.flags.c_contiguous:
        stored = _copy(stored)
    return stored.reshape(math.prod(stored.shape[:axes]), math.prod(stored.shape[axes:]))


def _copy(array: np.ndarray) -> np.ndarray:
    """A C-ordered copy of ``array``."""
    copied = workspace.empty(array.shape, array.dtype)
    copied[...] = array
    return copied


def _inside(offset: int, count: int, step: int, pad: int, length: int) -> tuple[int, int, slice]:
    """Along one axis, for the window cell at ``offset``: the outputs ``[first, last)`` whose cell
    lies in the image rather than in its padding, and the slice of the image they read."""
    first = min(count, max(0, -((offset - pad) // step)))  # ceil((pad - offset) / step)
    last = min(count, max(first, (length - 1 - offset + pad) // step + 1))
    start = first * step + offset - pad
    return first, last, slice(start, start + (last - first - 1) * step + 1, step) if last > first else slice(0, 0)


@numpy_kernel.register
def _im2col(op: Im2Col, node: Apply) -> Kernel:
    """Each window cell's block copied straight from the image, its padding written as zeros (no
    padded copy of the image), the channels split across the cores."""
    (sh, sw), (dh, dw) = op.stride, op.dilation

    def im2col(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        (kh, kw), ((top, _), (left, _)), (ho, wo) = op.geometry(x.shape, kernel)
        n, c, h, w = x.shape
        source = _contiguous(_hwn_view(x))
        columns = workspace.empty((kh, kw, c, ho, wo, n), x.dtype)
        spans = [
            (_inside(i * dh, ho, sh, top, h), _inside(j * dw, wo, sw, left, w)) for i in range(kh) for j in range(kw)
        ]

        def gather(part: slice) -> None:  # the channels from part.start to part.stop
            for (i, j), ((r0, r1, rows), (c0, c1, cells)) in zip(np.ndindex(kh, kw), spans):
                block = columns[i, j, part]
                block[:, r0:r1, c0:c1] = source[part, rows, cells]
                for border in (block[:, :r0], block[:, r1:], block[:, r0:r1, :c0], block[:, r0:r1, c1:]):
                    if border.size:
                        border.fill(0)

        threads.in_parts(gather, c, columns.nbytes)
        return _from_hwn(columns)

    return Kernel(im2col)


@numpy_kernel.register
def _col2im(op: Col2Im, node: Apply) -> Kernel:
    """Each window cell's block added straight into the image, what falls in the padding left out
    (a cell whose block covers the whole image is copied first, instead of zeros), the channels
    split across the cores. Where the columns are this call's to scribble on and the windows step
    by one over an image of the output's size, ``_add_back_shifted``: the same sums, in a third less time."""
    (sh, sw), (dh, dw) = op.stride, op.dilation

    def col2im(columns: np.ndarray, image_shape: np.ndarray, scratch: bool = False) -> np.ndarray:
        n, c, h, w = (int(length) for length in image_shape)
        kh, kw, _, _, ho, wo = columns.shape
        (top, _), (left, _) = resolve_padding(op.padding, dilated((kh, kw), op.dilation))
        stored = _hwn_view(columns)
        runs = (sh, sw, ho, wo) == (1, 1, h, w) and columns.size and stored.flags.c_contiguous
        if scratch and runs and stored.flags.writeable:
            return _from_hwn(_add_back_shifted(stored, (top, left), (dh, dw)))
        blocks = [
            (_inside(i * dh, ho, sh, top, h), _inside(j * dw, wo, sw, left, w), stored[i, j])
            for i in range(kh)
            for j in range(kw)
        ]
        covering = [(rows, cells) == (slice(0, h, 1), slice(0, w, 1)) for (_, _, rows), (_, _, cells), _ in blocks]
        first = blocks.pop(covering.index(True)) if any(covering) else None
        image = workspace.empty((c, h, w, n), columns.dtype)

        def add_back(part: slice) -> None:  # the channels from part.start to part.stop
            if first is None:
                image[part].fill(0)
            else:
                (r0, r1, _), (c0, c1, _), block = first
                image[part] = block[part, r0:r1, c0:c1]
            for (r0, r1, rows), (c0, c1, cells), block in blocks:
                if r1 > r0 and c1 > c0:
                    image[part, rows, cells] += block[part, r0:r1, c0:c1]

        threads.in_parts(add_back, c, columns.nbytes)
        return _from_hwn(image)

    return Kernel(col2im, scratches=(0,), inplace_function=lambda columns, shape: col2im(columns, shape, scratch=True))


def _add_back_shifted(stored: np.ndarray, padding: tuple[int, int], dilation: tuple[int, int]) -> np.ndarray:
    """col2im of columns ``stored`` as ``(kh, kw, C, H, W, N)``, C order, windows stepping by one
    over an ``(H, W)`` image: each window cell's block, seen as one run per channel, added to the
    image seen so, shifted by the cell's offset. numpy adds such runs up to 4x faster than the
    rows of an image cut short (runs of ``(W - 1) * N`` values). A row's cells that fall left or right of the
    image would land in the row beside: they are zeroed in ``stored`` first (adding a zero changes
    no sum), and rows that fall above or below are left out with the ends of the runs."""
    kh, kw, c, h, w, n = stored.shape
    (top, left), (dh, dw) = padding, dilation
    length = h * w * n
    image = workspace.empty((c, h, w, n), stored.dtype)
    runs = image.reshape(c, length)
    # How far each window cell's block lies below and right of the image, in the order col2im's
    # other path adds them (the block that covers the image first): the same sums, bit for bit.
    offsets = [(i, j, i * dh - top, j * dw - left) for i in range(kh) for j in range(kw)]
    offsets.sort(key=lambda offset: offset[2:] != (0, 0))
    covering = offsets[0][2:] == (0, 0)

    def add_back(part: slice) -> None:  # the channels from part.start to part.stop
        if covering:
            runs[part] = stored[offsets[0][0], offsets[0][1], part].reshape(-1, length)
        else:
            runs[part].fill(0)
        for i, j, down, across in offsets[1:] if covering else offsets:
            if abs(down) >= h or abs(across) >= w:
                continue
            block = stored[i, j, part]
            if across < 0:
                block[:, :, :-across] = 0
            elif across > 0:
                block[:, :, w - across :] = 0
            source, shift = block.reshape(-1, length), (down * w + across) * n
            if shift >= 0:
                runs[part, shift:] += source[:, : length - shift]
            else:
                runs[part, :shift] += source[:, -shift:]

    threads.in_parts(add_back, c, stored.nbytes)
    return image


@numpy_kernel.register
def _conv_contraction(op: ConvContraction, node: Apply) -> Kernel:
    return Kernel(_CONTRACTIONS[op.result])


def _conv_output(filters: np.ndarray, columns: np.ndarray) -> np.ndarray:
    check_output_operands(filters, columns)
    n, ho, wo = columns.shape[3:]
    product = _product(filter_matrix(filters), _hwn_matrix(columns, 3))
    return _from_hwn(product.reshape(filters.shape[0], ho, wo, n))


def _conv_columns(filters: np.ndarray, grad: np.ndarray) -> np.ndarray:
    check_columns_operands(filters, grad)
    _, c, kh, kw = filters.shape
    n, _, ho, wo = grad.shape
    product = _product(filter_matrix(filters).T, _hwn_matrix(grad, 1))
    return _from_hwn(product.reshape(kh, kw, c, ho, wo, n))


def _conv_filters(columns: np.ndarray, grad: np.ndarray) -> np.ndarray:
    check_filters_operands(columns, grad)
    kh, kw, c = columns.shape[:3]
    o = grad.shape[1]
    # (columns @ grad.T), of shape (kh*kw*C, O): the long axis the product sums over is then the
    # rows' of both operands, which BLAS splits across its threads far better (about 1.5x with two)
    # than for grad @ columns.T.
    product = _product(_hwn_matrix(columns, 3), _hwn_matrix(grad, 1).T)
    return product.reshape(kh, kw, c, o).transpose(3, 2, 0, 1)


_CONTRACTIONS = {"output": _conv_output, "columns": _conv_columns, "filters": _conv_filters}


# --- pooling --------------------------------------------------------------------------------
@numpy_kernel.register
def _max_pool_grad(op: MaxPool2dGrad, node: Apply) -> Kernel:
    """Windows that tile the input: each cell gets its window's gradient if it is the window's
    first maximum (as the op's ``perform``), computed on the arrays seen in the order their
    memory is stored, with temporaries stored the same way (arrays of different layouts in one
    numpy call make it crawl). Other windows: the op's own computation."""
    (ph, pw), perform = op.pool_size, op.perform

    def max_pool_grad(x: np.ndarray, pooled: np.ndarray, g: np.ndarray) -> np.ndarray:
        if not op.tiles(*x.shape[2:]) or g.shape != pooled.shape or pooled.shape[2:] != op.output_counts(x.shape):
            return perform(x, pooled, g)
        order = stored_order(x)
        # The stored axes, H and W each split into (windows, cells): every window offset is then
        # one view, indexed at the two cell axes.
        split: list[int] = []
        for axis in order:
            split += (
                [x.shape[axis] // ph, ph] if axis == 2 else [x.shape[axis] // pw, pw] if axis == 3 else [x.shape[axis]]
            )
        rows, columns = _cell_axis(order, 2), _cell_axis(order, 3)
        windows = _contiguous(x.transpose(order)).reshape(split)
        result = workspace.empty(tuple(split), x.dtype)
        pooled, g = _in_order(pooled.transpose(order)), _in_order(g.transpose(order))
        taken, hit = np.empty(pooled.shape, dtype=bool), np.empty(pooled.shape, dtype=bool)
        offsets = [(i, j) for i in range(ph) for j in range(pw)]

        def route(part: slice) -> None:  # the outermost stored axis, from part.start to part.stop
            for index, (i, j) in enumerate(offsets):
                cell: list = [slice(None)] * len(split)
                cell[0], cell[rows], cell[columns] = part, i, j
                window, target = windows[tuple(cell)], result[tuple(cell)]
                values, best, seen, found = g[part], pooled[part], taken[part], hit[part]
                if len(offsets) == 1:  # every cell is its window's maximum
                    target[...] = values
                elif index == 0:
                    np.multiply(values, np.equal(window, best, out=seen), out=target)
                elif index == len(offsets) - 1:  # the maximum wherever no earlier cell held it
                    np.multiply(values, np.logical_not(seen, out=found), out=target)
                else:
                    np.equal(window, best, out=found)
                    np.greater(found, seen, out=found)  # a maximum, and none came before
                    np.logical_or(seen, found, out=seen)
                    np.multiply(values, found, out=target)

        threads.in_parts(route, split[0], result.nbytes)
        stored_shape = tuple(x.shape[axis] for axis in order)
        return result.reshape(stored_shape).transpose(np.argsort(order))

    return Kernel(max_pool_grad)


@numpy_kernel.register
def _same_layout(op: SameLayout, node: Apply) -> Kernel:
    def same_layout(x: np.ndarray, like: np.ndarray) -> np.ndarray:
        if not isinstance(x, np.ndarray) or x.ndim < 2 or x.shape != like.shape:
            return x
        order = stored_order(like)
        if stored_order(x) == order:
            return x
        copied = workspace.empty(tuple(x.shape[axis] for axis in order), x.dtype).transpose(np.argsort(order))
        copied[...] = x
        return copied

    return Kernel(same_layout)


def _contiguous(array: np.ndarray) -> np.ndarray:
    return array if array.flags.c_contiguous else _copy(array)


def _in_order(array: np.ndarray) -> np.ndarray:
    """``array`` itself if its axes are stored in their order (contiguous or not), else a copy."""
    return array if stored_order(array) == tuple(range(array.ndim)) else _copy(array)


@numpy_kernel.register
def _max_pool(op: MaxPool2d, node: Apply) -> Kernel:
    """Without padding: the maximum of each window, rows first (as the op's ``perform``), into
    arrays stored as the input is. With padding: the op's own computation."""
    (ph, pw), (sh, sw), perform = op.pool_size, op.stride, op.perform

    def max_pool(x: np.ndarray) -> np.ndarray:
        if op.padding != (0, 0):
            return perform(x)
        counts = op.output_counts(x.shape)
        rows = [x[:, :, window_slice(i, counts[0], sh), :] for i in range(ph)]
        combined = _maximum(rows)
        return _maximum([combined[:, :, :, window_slice(j, counts[1], sw)] for j in range(pw)])

    return Kernel(max_pool)


def _maximum(arrays: list[np.ndarray]) -> np.ndarray:
    """The elementwise maximum of ``arrays`` into a new array stored as the first is."""
    order = stored_order(arrays[0])
    result = workspace.empty(tuple(arrays[0].shape[axis] for axis in order), arrays[0].dtype)
    result = result.transpose(np.argsort(order))
    outermost = order[0]

    def combine(part: slice) -> None:  # along the outermost stored axis
        index: list = [slice(None)] * result.ndim
        index[outermost] = part
        where = tuple(index)
        if len(arrays) == 1:
            result[where] = arrays[0][where]
            return
        np.maximum(arrays[0][where], arrays[1][where], out=result[where])
        for array in arrays[2:]:
            np.maximum(result[where], array[where], out=result[where])

    threads.in_parts(combine, result.shape[outermost], sum(array.nbytes for array in arrays))
    return result


def _cell_axis(order: tuple[int, ...], axis: int) -> int:
    """The position of the cell axis of NCHW axis ``axis`` (2: H, 3: W) among the stored axes
    once H and W are each split into (windows, cells)."""
    position = order.index(axis)
    return position + sum(1 for earlier in order[:position] if earlier in (2, 3)) + 1
