"""The dask translations of loops, branches and run-time checks: ``Scan``, ``IfElse``, and the
ops that check a shape (``SpecifyShape``, ``CheckLength``, ``CheckBatch``) or place rows
(``PlaceRows``).

- A check reads only shapes, which a dask array knows: it is made when the call runs, and the
  array is given back as it is.
- A branch's condition is a scalar: when it is computed from dask arrays, it is computed then (a
  small ``compute``, the only one a function without updates makes); then only the chosen
  branch is built, by this backend (``compile_inner``).
- A loop runs the numpy backend's loop: on the host when its inputs are, else as one task on
  whole arrays (a dask array chunked along any axis is rechunked into one chunk, with a
  warning: the steps follow each other). Its outputs' shapes are found by one step on zeros.
  Random draws inside a loop are refused under dask, for now: the loop would draw from the
  generators in place, in a task.
"""

from __future__ import annotations

import warnings
from typing import Any

import dask
import dask.array as da
import numpy as np

from ...graph.basic import Apply
from ...nn.batchnorm import CheckBatch
from ...ops.ifelse import IfElse
from ...ops.scan import CheckLength, PlaceRows, Scan
from ...ops.shape import SpecifyShape
from .blocks import Call, WholeAxes, any_lazy, fresh_name, guard, is_lazy
from .kernels import Kernel, KernelFunction, dask_kernel, host, known_shape, translation


@translation(SpecifyShape)
def _specify_shape(op: SpecifyShape, node: Apply) -> KernelFunction:
    def run(call: Call, x: Any) -> Any:
        shape = known_shape(x)
        if any(given is not None and given != actual for given, actual in zip(op.shape, shape)):
            raise ValueError(f"expected shape {op.shape}, got {shape}")
        return x

    return run


@translation(CheckBatch)
def _check_batch(op: CheckBatch, node: Apply) -> KernelFunction:
    def run(call: Call, x: Any) -> Any:
        op.perform(np.broadcast_to(np.empty((), dtype=x.dtype), known_shape(x)))  # its checks, on the shape
        return x

    return run


@translation(CheckLength)
def _check_length(op: CheckLength, node: Apply) -> KernelFunction:
    def run(call: Call, x: Any, needed: Any) -> Any:
        rows, needed = known_shape(x)[0], int(host(needed, "the rows needed"))
        if rows < needed:
            raise ValueError(op.message.format(rows=rows, needed=needed))
        return x

    return run


@translation(PlaceRows)
def _place_rows(op: PlaceRows, node: Apply) -> KernelFunction:
    def run(call: Call, values: Any, like: Any, start: Any) -> Any:
        start = int(host(start, "the first row"))
        values, shape = call.lift(values), known_shape(like)
        if start == 0 and known_shape(values) == shape:
            return values
        rows = known_shape(values)[0]
        rest = tuple((length,) for length in shape[1:])
        zeros = [
            da.zeros((count,) + shape[1:], dtype=values.dtype, chunks=((count,),) + rest)
            for count in (start, shape[0] - start - rows)
        ]
        return da.concatenate([zeros[0], values.rechunk({axis: -1 for axis in range(1, values.ndim)}), zeros[1]])

    return run


@dask_kernel.register
def _ifelse(op: IfElse, node: Apply) -> Kernel:
    from . import BACKEND  # the branches are compiled by this very backend

    branches = (BACKEND.compile_inner(op.else_graph), BACKEND.compile_inner(op.then_graph))
    single = len(op.then_graph.outputs) == 1

    def run(call: Call, condition: Any, *context: Any) -> Any:
        if is_lazy(condition):
            (condition,) = dask.compute(condition)
        values = branches[bool(np.asarray(condition))](*context)
        return values[0] if single else tuple(values)

    return Kernel(run)


@dask_kernel.register
def _scan(op: Scan, node: Apply) -> Kernel:
    from ..numpy.loop import link_scan

    loop = link_scan(op)
    whole = WholeAxes(node)
    perform = guard(node, loop)
    shapes: dict = {}

    def run(call: Call, n_steps: Any, *inputs: Any) -> Any:
        if not any_lazy((n_steps, *inputs)):
            return loop(n_steps, *inputs)
        if op.until is not None:
            raise NotImplementedError(
                f"{op.name} stops at a condition (sg.until), so its outputs' lengths are known only "
                "once it has run: the dask backend cannot run it on dask arrays yet (compile it with "
                "the numpy backend)"
            )
        if op.stochastic:
            raise NotImplementedError(
                f"{op.name} draws random numbers inside its steps: the dask backend cannot run it yet "
                "(compile it with the numpy backend, or draw the masks outside the loop)"
            )
        count = int(host(n_steps, "a loop's number of steps"))
        arguments = [
            whole(value, range(value.ndim), "a loop's inputs") if is_lazy(value) else value for value in inputs
        ]
        results = _loop_shapes(op, loop, count, arguments, shapes)
        task = dask.delayed(perform, pure=False)(count, *arguments, dask_key_name=fresh_name(op.name))
        parts = [task] if len(node.outputs) == 1 else [task[k] for k in range(len(node.outputs))]
        arrays = [
            da.from_delayed(part, shape=shape, dtype=output.type.numpy_dtype)
            for part, shape, output in zip(parts, results, node.outputs)
        ]
        return arrays[0] if len(arrays) == 1 else tuple(arrays)

    return Kernel(run)


def _loop_shapes(op: Scan, loop: Any, count: int, arguments: list, found: dict) -> list[tuple]:
    """The loop's outputs' shapes for ``count`` steps: those of one step on zeros of the inputs'
    shapes, with the steps' rows (the buffers' windows, then the steps) put back."""
    signature = (count, tuple((np.shape(value), str(getattr(value, "dtype", ""))) for value in arguments))
    if signature not in found:
        zeros = [np.zeros(np.shape(value), dtype=value.dtype) if is_lazy(value) else value for value in arguments]
        one = min(count, 1)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outputs = loop(np.int64(one), *zeros)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        states, stacked = len(op.state_taps), op.n_stacked
        shapes = []
        for index, output in enumerate(outputs):
            shape = np.shape(output)
            if index < states and op.keeps_last_only(index):
                shape = (1,) + shape[1:]
            elif index < states:
                shape = (op.window_lengths[index] + count,) + shape[1:]
            elif index < states + stacked:
                shape = (count,) + shape[1:]
            shapes.append(shape)
        found[signature] = shapes
    return found[signature]
