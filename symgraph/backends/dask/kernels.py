"""The dask backend's table: for each op class, how its nodes compute on dask arrays.

``dask_kernel(op, node)`` dispatches on the op's class (``functools.singledispatch``) and gives a
:class:`Kernel`, whose function takes the call's shared state (a :class:`~.blocks.Call`) and the
node's input values. Most entries are registered with :func:`translation`: when every input is a
host value, the op's ``perform`` runs at once, on the host; otherwise the translation builds dask
arrays. Elementwise ops and reductions map to dask's own, products to its ``tensordot``
(a reduction over chunks is a tree of partial sums), and ops that work per sample (softmax over
the last axis, convolution, pooling) run their ``perform`` on each block with ``map_blocks`` or
``blockwise``, after rechunking, with a warning, an axis they need whole.

The neural-network ops' entries are in ``nn.py``, random draws in ``random.py``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import numpy as np

from ...graph.basic import Apply
from ...graph.op import Op
from ...ops.basic import Cast
from ...ops.elemwise import Elemwise
from ...ops.linalg import Dot, Matmul, Tensordot
from ...ops.reduce import ArgReduce, ProductOfOthers, Reduce
from ...ops.shape import (
    Alloc,
    AllocEmpty,
    ARange,
    BroadcastTo,
    DimShuffle,
    Join,
    Reshape,
    Shape,
    ShapeAt,
    SpecifyLength,
    Split,
    Stack,
    SumTo,
)
from ...ops.subgraph import Map, _empty
from ...ops.subtensor import IncSubtensor, Subtensor, indexer
from .blocks import (
    Call,
    Hint,
    Unwrapped,
    WholeAxes,
    any_lazy,
    elementwise,
    empty,
    fresh_name,
    guard,
    host_array,
    is_lazy,
    shape_hints,
)

KernelFunction = Callable[..., Any]  #: ``function(call, *input_values) -> output (a tuple if several)``


@dataclass(frozen=True)
class Kernel:
    """What the program calls for one node."""

    function: KernelFunction
    #: Arrays whose chunks a new array should follow (``Call.hinted_chunks``).
    hints: tuple[Hint, ...] = ()
    #: Computed just before the first node that reads it, so that the arrays it is combined with
    #: exist and lend it their chunks (random draws).
    late: bool = False
    #: Extra hints the linker adds: the other operands of the first elementwise node reading it.
    wants_partners: bool = field(default=False)


@functools.singledispatch
def dask_kernel(op: Op, node: Apply) -> Kernel:
    """The kernel of ``node``. An op whose class has no entry runs its ``perform``: on the host
    when no input is a dask array, else on the single block of each (which is ``perform`` on the
    whole); an input in several chunks is an error naming the node (register a kernel, or
    :func:`~symgraph.backends.dask.register_per_block` for an op that computes each element on
    its own)."""
    return Kernel(_unregistered(op, node))


def translation(op_class: type) -> Callable[[Callable[[Any, Apply], KernelFunction]], Callable]:
    """Registers ``make(op, node) -> function(call, *values)`` as the dask translation of
    ``op_class``, used when some input is a dask array; on host values, ``op.perform`` runs."""

    def register(make: Callable[[Any, Apply], KernelFunction]) -> Callable:
        @dask_kernel.register(op_class)
        def kernel(op: Op, node: Apply) -> Kernel:
            lazy, perform = make(op, node), op.perform

            def run(call: Call, *values: Any) -> Any:
                return lazy(call, *values) if any_lazy(values) else perform(*values)

            return Kernel(run)

        return make

    return register


def host(value: Any, what: str) -> Any:
    """A value that must be known when the call runs (a shape, a count, an index bound)."""
    if is_lazy(value):
        raise ValueError(f"{what} must be known when the call runs, but it is computed from dask arrays")
    return value


def known_shape(value: Any) -> tuple:
    if is_lazy(value) and any(math.isnan(length) for length in value.shape):
        raise ValueError(
            f"an array of unknown shape {value.shape} (dask chunks of unknown lengths): call "
            "its .compute_chunk_sizes() first"
        )
    return tuple(int(length) for length in np.shape(value))


def as_dtype(array: Any, node: Apply, output: int = 0) -> Any:
    dtype = node.outputs[output].type.numpy_dtype
    return array if array.dtype == dtype else array.astype(dtype)


# --- ops without an entry ---------------------------------------------------------------------------
def _unregistered(op: Op, node: Apply) -> KernelFunction:
    perform = guard(node, op.perform)

    def run(call: Call, *values: Any) -> Any:
        if not any_lazy(values):
            return op.perform(*values)
        for variable, value in zip(node.inputs, values):
            if is_lazy(value) and value.npartitions > 1:
                raise NotImplementedError(
                    f"{op.name} has no dask translation, and its perform cannot run on each block of "
                    f"{variable.label()}, which is chunked ({value.chunks}): pass it in one chunk, or "
                    f"register a kernel for {type(op).__name__} (symgraph.backends.dask.dask_kernel."
                    "register; register_per_block for an op that computes each element on its own)"
                )
        # One block each: perform on it is perform on the whole. One task, its results taken apart.
        task = dask.delayed(perform, pure=False)(*values, dask_key_name=fresh_name(op.name))
        results = [task] if len(node.outputs) == 1 else [task[k] for k in range(len(node.outputs))]
        arrays = [
            da.from_delayed(result, shape=_static_or_unknown(output), dtype=output.type.numpy_dtype)
            for result, output in zip(results, node.outputs)
        ]
        return arrays[0] if len(arrays) == 1 else tuple(arrays)

    return run


def _static_or_unknown(output: Any) -> tuple:
    return tuple(math.nan if length is None else length for length in output.type.shape)


def register_per_block(op_class: type) -> type:
    """Declares that ``op_class`` computes each element on its own, with one output broadcast
    from its inputs as an elementwise op's (a user's ``Clamp``, say): on dask arrays its
    ``perform`` runs on each block. Returns the class, so it can decorate it."""

    @dask_kernel.register(op_class)
    def kernel(op: Op, node: Apply) -> Kernel:
        return Kernel(_per_block(op.perform, op.name, node))

    return op_class


def _per_block(function: Callable, label: str, node: Apply) -> KernelFunction:
    dtype = node.outputs[0].type.numpy_dtype
    guarded = guard(node, function)

    def run(call: Call, *values: Any) -> Any:
        if not any_lazy(values):
            return function(*values)
        return elementwise(guarded, values, dtype, label, call.lift)

    return run


# --- elementwise, reductions, products ----------------------------------------------------------
@dask_kernel.register
def _elemwise(op: Elemwise, node: Apply) -> Kernel:
    return Kernel(_per_block(op.function, op.name, node))


@translation(Reduce)
def _reduce(op: Reduce, node: Apply) -> KernelFunction:
    reduce = {"sum": da.sum, "prod": da.prod, "max": da.max, "min": da.min}[op.kind]
    dtype = node.outputs[0].type.numpy_dtype
    extra = {"dtype": dtype} if op.kind in ("sum", "prod") else {}

    def run(call: Call, x: Any) -> Any:
        return reduce(x, axis=op.axes, keepdims=op.keepdims, **extra)

    return run


@translation(ProductOfOthers)
def _product_of_others(op: ProductOfOthers, node: Apply) -> KernelFunction:
    whole, perform = WholeAxes(node), guard(node, op.perform)

    def run(call: Call, x: Any) -> Any:
        x = whole(x, op.axes)
        return x.map_blocks(perform, dtype=x.dtype, name=fresh_name(op.name), meta=empty(x.ndim, x.dtype))

    return run


@translation(ArgReduce)
def _arg_reduce(op: ArgReduce, node: Apply) -> KernelFunction:
    reduce = da.argmax if op.kind == "argmax" else da.argmin

    def run(call: Call, x: Any) -> Any:
        if op.axis is None and op.keepdims:  # numpy keeps every axis, as length 1
            return reduce(x.ravel(), axis=0).reshape((1,) * x.ndim).astype(np.int64)
        return reduce(x, axis=op.axis, keepdims=op.keepdims).astype(np.int64)

    return run


@translation(Dot)
def _dot(op: Dot, node: Apply) -> KernelFunction:
    def run(call: Call, x: Any, y: Any) -> Any:
        x, y = call.lift(x), call.lift(y)
        if x.ndim == 2 and y.ndim == 2:
            return as_dtype(matrix_product(x, y, node.outputs[0].type.numpy_dtype), node)
        return as_dtype(da.dot(x, y), node)

    return run


def matrix_product(x: da.Array, y: da.Array, dtype: np.dtype) -> da.Array:
    """``x @ y``: with ``y`` in one chunk (weights), one product per chunk of ``x``'s rows, which
    Dask fuses with what computes those rows; with the inner axis in one chunk, one product per
    block of the result; else (the batch, for a weight's gradient ``h.T @ g``) a product per chunk
    of the inner axis, summed in a tree."""
    name = fresh_name("dot")
    if y.npartitions == 1 and len(x.chunks[1]) == 1:
        return da.blockwise(
            np.dot,
            "ij",
            x,
            "ij",
            y,
            None,
            adjust_chunks={"j": y.shape[1]},
            dtype=dtype,
            name=name,
            meta=empty(2, dtype),
        )
    x, y = da.core.unify_chunks(x, "ij", y, "jk")[1]
    if len(x.chunks[1]) == 1:
        dot = Unwrapped(np.dot)
        return da.blockwise(dot, "ik", x, "ij", y, "jk", dtype=dtype, name=name, meta=empty(2, dtype))
    partials = da.blockwise(
        _partial_product, "jik", x, "ij", y, "jk", adjust_chunks={"j": 1}, dtype=dtype, name=name, meta=empty(3, dtype)
    )
    return partials.sum(axis=0, dtype=dtype)


def _partial_product(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.dot(x, y)[np.newaxis]


@translation(Matmul)
def _matmul(op: Matmul, node: Apply) -> KernelFunction:
    def run(call: Call, x: Any, y: Any) -> Any:
        return as_dtype(da.matmul(call.lift(x), call.lift(y)), node)

    return run


@translation(Tensordot)
def _tensordot(op: Tensordot, node: Apply) -> KernelFunction:
    axes = (list(op.x_axes), list(op.y_axes))

    def run(call: Call, x: Any, y: Any) -> Any:
        return as_dtype(da.tensordot(call.lift(x), call.lift(y), axes=axes), node)

    return run


@translation(Cast)
def _cast(op: Cast, node: Apply) -> KernelFunction:
    return lambda call, x: x.astype(op.dtype)


# --- shapes -------------------------------------------------------------------------------------------
@dask_kernel.register
def _shape(op: Shape, node: Apply) -> Kernel:
    return Kernel(lambda call, x: np.array(known_shape(x), dtype=np.int64))


@dask_kernel.register
def _shape_at(op: ShapeAt, node: Apply) -> Kernel:
    return Kernel(lambda call, x: np.int64(known_shape(x)[op.axis]))


@translation(SumTo)
def _sum_to(op: SumTo, node: Apply) -> KernelFunction:
    def run(call: Call, g: Any, target: Any) -> Any:
        target = tuple(int(length) for length in host(target, "the shape to sum to"))
        lead = g.ndim - len(target)
        axes = tuple(range(lead)) + tuple(
            lead + axis for axis, length in enumerate(target) if length == 1 and g.shape[lead + axis] != 1
        )
        if not axes:
            return g
        return g.sum(axis=axes, keepdims=True).reshape(target)

    return run


@dask_kernel.register
def _broadcast_to(op: BroadcastTo, node: Apply) -> Kernel:
    def run(call: Call, x: Any, target: Any) -> Any:
        shape = tuple(int(length) for length in host(target, "the shape to broadcast to"))
        chunks = call.hinted_chunks(shape)
        if not is_lazy(x) and chunks is None:
            return op.perform(x, target)
        anchored = _filled(call, shape, chunks, x, node.outputs[0].type.numpy_dtype, op.name)
        if anchored is not None:
            return anchored
        x = call.lift(np.asarray(x)) if not is_lazy(x) else x
        return da.broadcast_to(x, shape, chunks=_broadcast_chunks(x, shape, chunks))

    return Kernel(run, hints=tuple(shape_hints(node.inputs[1])))


def _broadcast_chunks(x: Any, shape: tuple, hinted: tuple | None) -> tuple:
    """The hinted chunks along the axes ``x`` is broadcast along, its own along the others."""
    offset = len(shape) - x.ndim
    chunks = []
    for axis, length in enumerate(shape):
        own = x.chunks[axis - offset] if axis >= offset else None
        if own is not None and x.shape[axis - offset] != 1:
            chunks.append(own)
        else:
            chunks.append(hinted[axis] if hinted is not None else (length,))
    return tuple(chunks)


@dask_kernel.register
def _alloc_empty(op: AllocEmpty, node: Apply) -> Kernel:
    """Zeros, as the op's reference computation: every element is written before it is read, and a
    write into part of a dask array makes a new array anyway (no memory to spare by leaving it
    uninitialized)."""

    def run(call: Call, target: Any) -> Any:
        shape = tuple(int(length) for length in host(target, "the shape to allocate"))
        chunks = call.hinted_chunks(shape)
        if chunks is None:
            return op.perform(target)
        return da.zeros(shape, dtype=op.dtype, chunks=chunks, name=fresh_name("empty"))

    return Kernel(run, hints=tuple(shape_hints(node.inputs[0])))


@dask_kernel.register
def _alloc(op: Alloc, node: Apply) -> Kernel:
    def run(call: Call, value: Any, target: Any) -> Any:
        shape = tuple(int(length) for length in host(target, "the shape to fill"))
        chunks = call.hinted_chunks(shape)
        if not is_lazy(value) and chunks is None:
            return op.perform(value, target)
        value = value.astype(op.dtype) if is_lazy(value) else np.asarray(value, dtype=op.dtype)
        anchored = _filled(call, shape, chunks, value, np.dtype(op.dtype), op.name)
        if anchored is not None:
            return anchored
        if not is_lazy(value):
            return da.full(shape, value, dtype=op.dtype, chunks=chunks or shape, name=fresh_name("full"))
        return da.broadcast_to(value, shape, chunks=chunks or tuple((n,) for n in shape))

    return Kernel(run, hints=tuple(shape_hints(node.inputs[1])))


def _filled(call: Call, shape: tuple, chunks: tuple | None, value: Any, dtype: np.dtype, label: str) -> Any:
    """``value`` broadcast to ``shape``, made chunk by chunk alongside the array whose shape it
    takes (which the tasks do not read: they are placed, and fused, with that array's chunks
    rather than anywhere), or ``None`` when there is no such array or ``value`` is chunked."""
    anchor = call.anchor(shape, chunks) if chunks is not None else None
    if anchor is None or (is_lazy(value) and value.ndim > 0):
        return None
    offset = len(shape) - np.ndim(value)
    if any(length != 1 and len(chunks[offset + axis]) > 1 for axis, length in enumerate(np.shape(value))):
        return None  # a block would need its own part of the value
    return da.map_blocks(_Fill(), anchor, value, dtype=dtype, name=fresh_name(label), meta=empty(len(shape), dtype))


class _Fill:
    """A block of ``value`` broadcast to the shape of the anchor's block (read-only, no memory)."""

    def __call__(self, anchor: np.ndarray, value: Any) -> np.ndarray:
        return np.broadcast_to(value, anchor.shape)


@translation(Reshape)
def _reshape(op: Reshape, node: Apply) -> KernelFunction:
    whole = WholeAxes(node)

    def run(call: Call, x: Any, target: Any) -> Any:
        target = tuple(int(length) for length in host(target, "the new shape"))
        # numpy's checks and its -1, on an array of x's shape that takes no memory
        shape = np.broadcast_to(np.empty((), dtype=bool), known_shape(x)).reshape(target).shape
        kept = 0
        while kept < min(x.ndim, len(shape)) and x.shape[kept] == shape[kept]:
            kept += 1
        # The leading axes that stay as they are may stay chunked; the rest are rearranged whole.
        x = whole(x, range(kept, x.ndim))
        return x.reshape(shape, merge_chunks=False) if kept < x.ndim or kept < len(shape) else x

    return run


@translation(SpecifyLength)
def _specify_length(op: SpecifyLength, node: Apply) -> KernelFunction:
    def run(call: Call, vector: Any) -> Any:
        if known_shape(vector) != (op.length,):
            raise ValueError(f"expected {op.length} entries, got shape {vector.shape}")
        return vector

    return run


@translation(DimShuffle)
def _dimshuffle(op: DimShuffle, node: Apply) -> KernelFunction:
    def run(call: Call, x: Any) -> Any:
        if op.dropped:
            x = da.squeeze(x, axis=op.dropped)
        if op.order != tuple(range(len(op.order))):
            x = x.transpose(op.order)
        return x[op.expansion] if None in op.expansion else x

    return run


@translation(Join)
def _join(op: Join, node: Apply) -> KernelFunction:
    return lambda call, *arrays: as_dtype(da.concatenate(call.lift_all(arrays), axis=op.axis), node)


@translation(Split)
def _split(op: Split, node: Apply) -> KernelFunction:
    def run(call: Call, x: Any, sizes: Any) -> Any:
        sizes = np.asarray(host(sizes, "the lengths to split into"))
        if int(sizes.sum()) != x.shape[op.axis]:
            raise ValueError(f"split lengths {sizes.tolist()} do not add up to {x.shape[op.axis]}")
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        lead = (slice(None),) * op.axis
        return tuple(x[lead + (slice(int(a), int(b)),)] for a, b in zip(bounds[:-1], bounds[1:]))

    return run


@translation(Stack)
def _stack(op: Stack, node: Apply) -> KernelFunction:
    return lambda call, *arrays: as_dtype(da.stack(call.lift_all(arrays), axis=op.axis), node)


@translation(ARange)
def _arange(op: ARange, node: Apply) -> KernelFunction:
    def run(call: Call, *bounds: Any) -> Any:
        raise ValueError("arange's bounds must be known when the call runs, but they are computed from dask arrays")

    return run


# --- indexing -----------------------------------------------------------------------------------------
def _index_kinds(spec: tuple) -> set:
    return {entry[0] for entry in spec}


@translation(Subtensor)
def _subtensor(op: Subtensor, node: Apply) -> KernelFunction:
    index_of, kinds = indexer(op.spec), _index_kinds(op.spec)
    arrays = sum(entry[0] == "array" for entry in op.spec)
    # dask indexes as numpy does with ints, slices and new axes, or one index array among slices;
    # other mixes (numpy's rules on where advanced axes go) run numpy's indexing on the whole.
    native = "array" not in kinds or (arrays == 1 and "int" not in kinds)
    whole = WholeAxes(node)

    def run(call: Call, x: Any, *values: Any) -> Any:
        _host_scalars(values)
        if native:
            return call.lift(x)[index_of(values)]
        return _whole_and_perform(call, whole, node, op.perform, (x, *values), _probe_shape(node, (x, *values)))

    return run


@translation(IncSubtensor)
def _inc_subtensor(op: IncSubtensor, node: Apply) -> KernelFunction:
    index_of = indexer(op.spec)
    native = _index_kinds(op.spec) <= {"int", "slice"}
    whole = WholeAxes(node)

    def run(call: Call, x: Any, y: Any, *values: Any) -> Any:
        _host_scalars(values)
        if native:
            x, index = call.lift(x), index_of(values)
            out = x.copy()  # a new dask array on the same graph: the assignment changes only it
            out[index] = call.lift(y) if op.mode == "set" else x[index] + call.lift(y)
            return out
        return _whole_and_perform(call, whole, node, op.perform, (x, y, *values), known_shape(x))

    return run


def _host_scalars(values: tuple) -> None:
    for value in values:
        if is_lazy(value) and value.ndim == 0:
            host(value, "an index or slice bound")


def _whole_and_perform(
    call: Call, whole: WholeAxes, node: Apply, perform: Callable, values: tuple, shape: tuple
) -> Any:
    """``perform`` in one task on the whole of every argument (rechunked with a warning)."""
    arguments = [
        whole(call.lift(value), range(np.ndim(value)), variable.label()) for variable, value in zip(node.inputs, values)
    ]
    task = dask.delayed(guard(node, perform), pure=False)(*arguments, dask_key_name=fresh_name(node.op.name))
    return da.from_delayed(task, shape=shape, dtype=node.outputs[0].type.numpy_dtype)


def _probe_shape(node: Apply, values: tuple) -> tuple:
    """The shape of ``x[index]``, from numpy indexing an array of ``x``'s shape that takes no
    memory with index arrays of zeros (the result's shape does not depend on their values,
    unless they are boolean: then its length along their axes is unknown)."""
    if any(variable.dtype == "bool" for variable in node.inputs[1:]):
        return tuple(math.nan if length is None else length for length in node.outputs[0].type.shape)
    x, *index = values
    probe = np.broadcast_to(np.zeros((), dtype=node.inputs[0].type.numpy_dtype), known_shape(x))
    index = [np.zeros(known_shape(value), dtype=value.dtype) if np.ndim(value) else int(value) for value in index]
    return np.shape(node.op.perform(probe, *index))


# --- loops --------------------------------------------------------------------------------------------
@dask_kernel.register
def _map(op: Map, node: Apply) -> Kernel:
    from . import BACKEND  # the body is compiled by this very backend

    step = BACKEND.compile_inner(op.fgraph)
    outputs = op.fgraph.outputs

    def run(call: Call, count: Any, *context: Any) -> Any:
        count = int(host(count, "a map's count"))
        if count < 0:
            raise ValueError(f"map: the count must not be negative, got {count}")
        steps = [step(np.int64(index), *context) for index in range(count)]
        results = []
        for k, (output, like) in enumerate(zip(outputs, op.sum_like)):
            values = [computed[k] for computed in steps]
            if count == 0:
                results.append(_empty(output, like, context))
            elif like is not None:
                results.append(functools.reduce(lambda a, b: a + b, values))
            elif any_lazy(values):
                results.append(da.stack(call.lift_all(values)))
            else:
                results.append(np.stack([np.asarray(value) for value in values]))
        return tuple(results) if len(results) > 1 else results[0]

    return Kernel(run)


__all__ = ["Kernel", "dask_kernel", "host_array", "register_per_block", "translation"]
