"""The dask translations of the neural-network ops.

They work per sample: each runs its op's ``perform`` on blocks that hold whole samples (whole rows
for softmax and the cross-entropy, whole images for convolution and pooling), so the data can be
chunked along the batch, and along the channels for convolution and pooling. An axis they need
whole is rechunked, with a warning. The filters' gradient of a convolution sums over the batch:
one partial sum per chunk, then a tree of sums.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...graph.basic import Apply
from ...graph.op import Op
from ...nn.activations import LogSoftmax, Softmax
from ...nn.conv import Col2Im, ConvContraction, Im2Col
from ...nn.dropout import CheckProbability
from ...nn.losses import OneHot, SoftmaxCrossEntropy
from ...nn.pool import AvgPool2d, AvgPool2dGrad, MaxPool2d, MaxPool2dGrad, MaxPool2dSelect, SameLayout
from .blocks import Call, WholeAxes, blockwise, empty, fresh_name, guard
from .kernels import KernelFunction, host, translation


def _per_sample_axis(op: Any, node: Apply) -> KernelFunction:
    """Softmax and its logarithm: each block holds whole lines along the op's axis."""
    whole, perform = WholeAxes(node), guard(node, op.perform)

    def run(call: Call, x: Any) -> Any:
        x = whole(x, [op.axis])
        return x.map_blocks(perform, dtype=x.dtype, name=fresh_name(op.name), meta=empty(x.ndim, x.dtype))

    return run


translation(Softmax)(_per_sample_axis)
translation(LogSoftmax)(_per_sample_axis)


@translation(SameLayout)
def _same_layout(op: SameLayout, node: Apply) -> KernelFunction:
    """``x`` itself: dask leaves the memory layout of each block to the kernels that make it."""

    def run(call: Call, x: Any, like: Any) -> Any:
        return x

    return run


@translation(CheckProbability)
def _check_probability(op: CheckProbability, node: Apply) -> KernelFunction:
    perform = guard(node, op.perform)
    return lambda call, value: value.map_blocks(perform, dtype=value.dtype, name=fresh_name(op.name), meta=value._meta)


# --- losses -----------------------------------------------------------------------------------------
@translation(OneHot)
def _one_hot(op: OneHot, node: Apply) -> KernelFunction:
    perform = guard(node, op.perform)

    def run(call: Call, indices: Any, depth: Any) -> Any:
        depth = int(host(depth, "one_hot's depth"))
        chunks = (indices.chunks[0], (depth,))
        return indices.map_blocks(
            perform, depth, new_axis=1, chunks=chunks, dtype=op.dtype, name=fresh_name(op.name), meta=empty(2, op.dtype)
        )

    return run


@translation(SoftmaxCrossEntropy)
def _softmax_crossentropy(op: SoftmaxCrossEntropy, node: Apply) -> KernelFunction:
    whole, perform = WholeAxes(node), guard(node, op.perform)
    dtype = node.outputs[0].type.numpy_dtype

    def run(call: Call, logits: Any, targets: Any) -> Any:
        targets_index = "i" if op.indices else "ij"
        return blockwise(whole, perform, "i", call.lift(logits), "ij", call.lift(targets), targets_index, dtype=dtype)

    return run


# --- convolution -----------------------------------------------------------------------------------
# Axis letters: n the batch, c the channels, o the output channels, i and j the kernel's offsets,
# h and w the output's rows and columns, y and x the input's.
@translation(Im2Col)
def _im2col(op: Im2Col, node: Apply) -> KernelFunction:
    whole, perform = WholeAxes(node), guard(node, op.perform)

    def run(call: Call, x: Any, kernel: Any) -> Any:
        kernel = np.asarray(host(kernel, "the kernel size"))
        (kh, kw), _, (rows, columns) = op.geometry(tuple(int(length) for length in x.shape), kernel)
        new_axes = {"i": kh, "j": kw, "h": rows, "w": columns}
        return blockwise(whole, perform, "ijcnhw", x, "ncyx", kernel, None, new_axes=new_axes, dtype=x.dtype)

    return run


def _to_images(op: Op, node: Apply, index: str, batch_channels: Callable[[np.ndarray], tuple]) -> KernelFunction:
    """An op that makes, block by block, images of the height and width its second input gives
    (col2im, the average pooling's gradient): for dask, the image's axes are new axes of the block;
    ``batch_channels`` reads the images' batch and channels from a block of the first input."""
    whole = WholeAxes(node)

    def block(array: np.ndarray, height: int, width: int) -> np.ndarray:
        return op.perform(array, np.array([*batch_channels(array), height, width]))

    perform = guard(node, block)

    def run(call: Call, array: Any, image_shape: Any) -> Any:
        _, _, height, width = (int(length) for length in host(image_shape, "the image shape"))
        new_axes = {"y": height, "x": width}
        return blockwise(
            whole, perform, "ncyx", array, index, height, None, width, None, new_axes=new_axes, dtype=array.dtype
        )

    return run


@translation(Col2Im)
def _col2im(op: Col2Im, node: Apply) -> KernelFunction:
    return _to_images(op, node, "ijcnhw", lambda columns: (columns.shape[3], columns.shape[2]))


@translation(ConvContraction)
def _conv_contraction(op: ConvContraction, node: Apply) -> KernelFunction:
    whole, perform = WholeAxes(node), guard(node, op.perform)
    partial = guard(node, _PartialSum(op))
    dtype = node.outputs[0].type.numpy_dtype

    def run(call: Call, a: Any, b: Any) -> Any:
        a, b = call.lift(a), call.lift(b)
        if op.result == "output":  # filters (o c i j), columns (i j c n h w) -> (n o h w)
            return blockwise(whole, perform, "nohw", a, "ocij", b, "ijcnhw", dtype=dtype)
        if op.result == "columns":  # filters, output gradient (n o h w) -> columns
            return blockwise(whole, perform, "ijcnhw", a, "ocij", b, "nohw", dtype=dtype)
        # The filters' gradient (o c i j) sums over the batch: a partial sum per chunk of the
        # batch (a new leading axis of one per chunk), then a tree of sums.
        partials = blockwise(whole, partial, "nocij", a, "ijcnhw", b, "nohw", adjust_chunks={"n": 1}, dtype=dtype)
        return partials.sum(axis=0, dtype=dtype)

    return run


class _PartialSum:
    """An op's result on one chunk of the batch, with a leading axis of length one."""

    def __init__(self, op: Any):
        self.op = op

    def __call__(self, *arrays: np.ndarray) -> np.ndarray:
        return self.op.perform(*arrays)[np.newaxis]


# --- pooling -------------------------------------------------------------------------------------------
def _pool(op: Any, node: Apply) -> KernelFunction:
    whole, perform = WholeAxes(node), guard(node, op.perform)

    def run(call: Call, x: Any) -> Any:
        rows, columns = op.output_counts(tuple(int(length) for length in x.shape))
        return blockwise(whole, perform, "nchw", x, "ncyx", new_axes={"h": rows, "w": columns}, dtype=x.dtype)

    return run


def _pool_routing(result: str, last: str):
    """``(x, pooled, g)``: the images, the pooled images, and an array of the shape ``last``
    (``'nchw'``: pooled, ``'ncyx'``: the images'), aligned per sample and channel; the result has
    the images' shape (``'ncyx'``) or the pooled one (``'nchw'``)."""

    def make(op: Any, node: Apply) -> KernelFunction:
        whole, perform = WholeAxes(node), guard(node, op.perform)
        dtype = node.outputs[0].type.numpy_dtype

        def run(call: Call, x: Any, pooled: Any, g: Any) -> Any:
            # The spatial axes are whole in every argument, so each block is whole images.
            x, pooled, g = (whole(value, [2, 3]) for value in call.lift_all([x, pooled, g]))
            return blockwise(whole, perform, result, x, "ncyx", pooled, "nchw", g, last, dtype=dtype)

        return run

    return make


translation(MaxPool2d)(_pool)
translation(AvgPool2d)(_pool)
translation(MaxPool2dGrad)(_pool_routing("ncyx", "nchw"))  # (x, pooled, g) -> dx
translation(MaxPool2dSelect)(_pool_routing("nchw", "ncyx"))  # (x, pooled, h) -> h at the maxima


@translation(AvgPool2dGrad)
def _avg_pool_grad(op: AvgPool2dGrad, node: Apply) -> KernelFunction:
    return _to_images(op, node, "nchw", lambda g: g.shape[:2])
