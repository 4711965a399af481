"""The dask backend's program: arguments in, the graph interpreted into dask arrays, then either one
``dask.compute`` and the updates committed, or the dask arrays returned as they are.

A call converts its arguments (numpy arrays become dask arrays of one chunk, dask arrays keep
their chunks, scalars stay on the host), reads the shared values, and runs each step in order: a
node's kernel (host values are computed at once, dask arrays only described), a region (what
works sample by sample, one program per chunk: ``regions.py``) or a tail (what follows the sums
over the batch, one program: ``tail.py``). Then:

- a function with updates (of tensors: weights, optimizer state, statistics) computes its outputs
  and the new values in one ``dask.compute`` (on the active ``dask.distributed.Client`` if any:
  one submission, whose new weights stay on the workers for the next call, ``resident.py``), and
  commits them all, or none if anything fails; it returns numpy arrays;
- a function without updates returns dask arrays, computed when the caller asks (``.compute()``,
  ``.to_zarr(...)``); it reads the shared values as they are at the call (a copy of each).

Random generators advance once per call in both cases (``random.py``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np

from ...errors import InputError, SymgraphError
from ...graph.basic import STATE_LOCK, Apply, Constant, SharedVariable, Variable
from ...graph.fgraph import FunctionGraph
from ...graph.type import TensorType, format_shape
from ...ops.elemwise import Elemwise
from .. import runtime
from ..base import LinkOptions, Program
from ..profile import Profile
from . import resident
from .blocks import Call, active_client, host_array, is_lazy, probes
from .kernels import Kernel, dask_kernel
from .regions import Region, find_region
from .tail import Tail, find_tail

Step = tuple[Apply, Kernel, tuple]  #: a node, its kernel, and the chunk hints it is given


#: Whether functions run the part of their graph that works sample by sample as one program per
#: chunk of the batch (``regions.py``); tests turn it off to check the op-by-op translation.
REGIONS = True


def link(fgraph: FunctionGraph, options: LinkOptions) -> Program:
    """The callable computing ``fgraph`` on dask arrays (see the module's docstring)."""
    steps = plan(fgraph)
    nodes = [node for node, _, _ in steps]
    if REGIONS and not options.debug:  # debug mode checks every node: op by op
        _, steps, kinds = find_region(fgraph, steps)
        steps = find_tail(fgraph, steps, kinds)
    interpret = interpreter(fgraph, steps, options.debug)
    inputs, outputs, updates = fgraph.inputs, fgraph.outputs, fgraph.updates
    wrong_count = runtime.count_checker(inputs, options.name)
    converters = [
        argument_converter(variable, position, options.name, options.allow_downcast)
        for position, variable in enumerate(inputs)
    ]
    shared = _shared_roots(fgraph, nodes)
    # Updates of tensors make a call compute; a generator's new state is known at the call.
    computes = options.apply_updates and any(isinstance(target.type, TensorType) for target, _ in updates)

    def run(args: tuple) -> Any:
        if len(args) != len(inputs):
            wrong_count(len(args))
        # A call that computes sends the large host arrays (the weights, a numpy batch) to the
        # cluster's workers directly; lazy results keep them in their graphs instead, from which
        # the scheduler can send them again if a worker is lost during a long computation.
        client = active_client() if computes else None
        arguments = [convert(argument, client) for convert, argument in zip(converters, args)]
        with STATE_LOCK:
            state = {variable: variable._value for variable in shared}
            if not computes:  # the arrays returned are computed later: from the values of now
                state = {
                    variable: variable.type.copy_value(value) if isinstance(variable.type, TensorType) else value
                    for variable, value in state.items()
                }
            # The call holds the arrays it sent to the workers until they are computed.
            call = Call({}, client)
            values = interpret(call, arguments, state)
            returned = [values[variable] for variable in outputs]
            new_values = [values[value] for _, value in updates] if options.apply_updates else []
            if computes:
                returned, new_values, kept = _compute(returned, new_values, updates, [*state.values(), *args], client)
            else:
                returned = [
                    value if is_lazy(value) else host_array(np.array(value, copy=True), client=client)
                    for value in returned
                ]
            for (target, _), value in zip(updates, new_values):
                runtime.commit(target, value)
            if computes and client is not None:
                _keep_on_workers(updates, new_values, kept, client)
        if options.single_output:
            return returned[0]
        return None if options.single_output is None else returned

    return Program(run, nodes, profile=_profile(nodes, options))


def _profile(nodes: list[Apply], options: LinkOptions) -> Profile | None:
    """With ``profile=True``: a profile of the calls (their count and time; a call that returns
    dask arrays only builds their graph), its nodes untimed, and a warning saying so."""
    if not options.profile:
        return None
    warnings.warn(
        f"{options.name}: the dask backend times its calls but not its nodes, which run later as "
        "Dask tasks: Dask's dashboard (client.dashboard_link) or dask.diagnostics.Profiler shows "
        "where their time goes",
        stacklevel=6,
    )
    return Profile(nodes)


def inner(fgraph: FunctionGraph) -> Callable[..., Sequence[Any]]:
    """An inner graph (a loop's body) as a function of its inputs' values, giving its outputs'
    values, host values or dask arrays, as they come."""
    steps = plan(fgraph)
    interpret = interpreter(fgraph, steps, debug=False)
    shared = _shared_roots(fgraph, [node for node, _, _ in steps])

    def run(*values: Any) -> list[Any]:
        if not shared:
            computed = interpret(Call({}), list(values), {})
        else:
            with STATE_LOCK:
                computed = interpret(Call({}), list(values), {variable: variable._value for variable in shared})
        return [computed[variable] for variable in fgraph.outputs]

    return run


# --- planning ------------------------------------------------------------------------------------------
def plan(fgraph: FunctionGraph) -> list[Step]:
    """Each node with its kernel, in an order where a late node (a random draw) comes just before
    the first node that reads it, so that the arrays it is combined with exist already and lend it
    their chunks."""
    order = fgraph.order
    kernels = {node: dask_kernel(node.op, node) for node in order}
    producer = {output: node for node in order for output in node.outputs}
    pending: dict[Apply, None] = {}
    scheduled: list[Apply] = []

    def emit(node: Apply) -> None:
        for variable in node.inputs:
            waiting = producer.get(variable)
            if waiting in pending:
                del pending[waiting]
                emit(waiting)
        scheduled.append(node)

    for node in order:
        if kernels[node].late:
            pending[node] = None
        else:
            emit(node)
    for node in list(pending):
        if node in pending:
            del pending[node]
            emit(node)
    return [(node, kernels[node], _hints(node, kernels[node], scheduled)) for node in scheduled]


def _hints(node: Apply, kernel: Kernel, scheduled: list[Apply]) -> tuple:
    """The kernel's own hints, then, if it wants them, the other operands of the first
    elementwise node reading its outputs (an array a dropout mask multiplies)."""
    hints = list(kernel.hints)
    if kernel.wants_partners:
        produced = set(node.outputs)
        ndim = max((output.ndim for output in node.outputs if isinstance(output.type, TensorType)), default=0)
        for reader in scheduled[scheduled.index(node) + 1 :]:
            if not produced.intersection(reader.inputs):
                continue
            if isinstance(reader.op, Elemwise):
                for operand in reader.inputs:
                    if operand not in produced and isinstance(operand.type, TensorType):
                        offset = ndim - operand.ndim
                        hints += [(axis, operand, axis - offset) for axis in range(max(offset, 0), ndim)]
            break
    return tuple(hints)


def _shared_roots(fgraph: FunctionGraph, nodes: list[Apply]) -> list[SharedVariable]:
    found: dict[int, SharedVariable] = {}
    candidates = [variable for node in nodes for variable in node.inputs] + fgraph.computed
    for variable in candidates + [target for target, _ in fgraph.updates]:
        if isinstance(variable, SharedVariable):
            found.setdefault(id(variable), variable)
    return list(found.values())


# --- interpreting ----------------------------------------------------------------------------------------
def interpreter(fgraph: FunctionGraph, steps: list, debug: bool) -> Callable[[Call, list, dict], dict]:
    """A function of the arguments and the shared values giving every variable's value. A step is
    a node with its kernel and hints, or a region (``regions.py``)."""
    nodes = [
        node
        for step in steps
        for node in ([s[0] for s in step.steps] if isinstance(step, (Region, Tail)) else [step[0]])
    ]
    read = [variable for node in nodes for variable in node.inputs] + fgraph.computed
    constants = {variable: variable.data for variable in read if isinstance(variable, Constant)}
    inputs = fgraph.inputs

    def interpret(call: Call, arguments: list, state: dict) -> dict[Variable, Any]:
        values: dict[Variable, Any] = dict(zip(inputs, arguments))
        values.update(constants)
        values.update(state)
        call.values = values
        call.send(state)

        def execute(step: Step) -> None:
            node, kernel, hints = step
            arguments = [values[variable] for variable in node.inputs]
            call.hints = [(axis, values.get(variable), variable_axis) for axis, variable, variable_axis in hints]
            try:
                result = kernel.function(call, *arguments)
                results = result if len(node.outputs) > 1 else (result,)
                if debug:
                    _debug_check(node, results)
            except SymgraphError:
                raise
            except Exception as error:
                raise runtime.node_error(node, probes(arguments), error) from error
            values.update(zip(node.outputs, results))

        for step in steps:
            if isinstance(step, (Region, Tail)):
                step.run(call, values, execute)
            else:
                execute(step)
        return values

    return interpret


def _debug_check(node: Apply, results: Sequence[Any]) -> None:
    """Debug mode: each result's declared dtype and static shape (on a dask array's description;
    NaN and Inf, which need the values, are checked on host values only)."""
    if not any(is_lazy(value) for value in results):
        runtime.debug_check(node, results)
        return
    for output, value in zip(node.outputs, results):
        if not is_lazy(value) or not isinstance(output.type, TensorType):
            continue
        if value.dtype != output.type.numpy_dtype:
            raise TypeError(f"debug mode: {node.op.name} gave dtype {value.dtype}, declared {output.type.dtype}")
        shape = tuple(None if math.isnan(length) else int(length) for length in value.shape)
        fits = len(shape) == output.ndim and all(
            static is None or actual is None or static == actual for static, actual in zip(output.type.shape, shape)
        )
        if not fits:
            raise ValueError(
                f"debug mode: {node.op.name} gave shape {value.shape}, declared {format_shape(output.type.shape)}"
            )


# --- computing and committing --------------------------------------------------------------------------
def _compute(returned: list, new_values: list, updates: Sequence, host: Sequence[Any], client: Any) -> tuple:
    """The outputs and the updates' new values as numpy arrays, every dask array among them
    computed at once (one ``dask.compute``; on a cluster, one submission whose results of one
    chunk stay on the workers: their futures are returned too). Each is an array of its own (the
    new values in their targets' dtypes), copied only if it may share memory with a ``host``
    array (the shared values, the arguments) or with another result, as a block that a task
    returned as it was would."""
    wanted = returned + new_values
    futures: list[Any] = [None] * len(wanted)
    lazy = [position for position, value in enumerate(wanted) if is_lazy(value)]
    if lazy:
        arrays = [wanted[position] for position in lazy]
        on_cluster = resident.compute(client, arrays) if client is not None else None
        computed, kept = on_cluster if on_cluster is not None else (dask.compute(*arrays), [None] * len(lazy))
        for position, value, future in zip(lazy, computed, kept):
            wanted[position], futures[position] = value, future
    dtypes = [None] * len(returned) + [
        target.type.numpy_dtype if isinstance(target.type, TensorType) else None for target, _ in updates
    ]
    arrays = [array for array in host if isinstance(array, np.ndarray)]
    owned: list[Any] = []
    for position, (value, dtype) in enumerate(zip(wanted, dtypes)):
        if position >= len(returned) and dtype is None:  # a random generator's new state
            owned.append(value)
            continue
        value = np.asarray(value)
        if dtype is not None and value.dtype != dtype:
            value, futures[position] = value.astype(dtype), None  # the workers' copy is not this
        shared = not value.flags.owndata or any(np.may_share_memory(value, other) for other in arrays + owned)
        owned.append(np.array(value, copy=True) if shared else value)
    return owned[: len(returned)], owned[len(returned) :], futures[len(returned) :]


def _keep_on_workers(updates: Sequence, new_values: list, futures: list, client: Any) -> None:
    """Remembers the workers' copies of the values just committed (``resident.py``)."""
    for (target, _), value, future in zip(updates, new_values, futures):
        if future is not None and isinstance(target.type, TensorType):
            # The value kept for comparison must be ours: a copy if it became the shared array.
            resident.keep(target, client, future, value.copy() if target._value is value else value)


# --- arguments -------------------------------------------------------------------------------------------
def argument_converter(variable: Variable, position: int, name: str, allow_downcast: bool) -> Callable[[Any], Any]:
    """The conversion of one argument: a dask array is checked (dtype, number of axes, static
    lengths) and cast if it must be; anything else is converted as the other backends do, and
    becomes a dask array of one chunk unless it is a scalar."""
    convert = runtime.argument_converter(variable, position, name, allow_downcast)
    what = f"argument {position} ({variable.label()}) of function {name}"

    def converter(value: Any, client: Any = None) -> Any:
        if is_lazy(value):
            return _checked(variable, value, what, allow_downcast)
        array = convert(value)
        if not isinstance(variable.type, TensorType) or array.ndim == 0:
            return array
        return host_array(array, variable.name or "argument", client)

    return converter


def _checked(variable: Variable, value: da.Array, what: str, allow_downcast: bool) -> da.Array:
    if any(math.isnan(length) for length in value.shape):
        raise InputError(
            f"{what} is a dask array of unknown shape {value.shape}: call its .compute_chunk_sizes() first"
        )
    target = variable.type.numpy_dtype
    # The other backends' checks and messages, on an array of the argument's dtype and shape that
    # takes no memory (cast first, if it may be, so that the check converts nothing).
    dtype = value.dtype if not (allow_downcast or np.can_cast(value.dtype, target, "safe")) else target
    variable.type.filter(np.broadcast_to(np.empty((), dtype=dtype), value.shape), what=what)
    return value if value.dtype == target else value.astype(target)
