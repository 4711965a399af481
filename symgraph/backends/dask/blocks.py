"""What the dask kernels share: host values and dask arrays, names, whole axes, chunk hints, and
block functions whose errors name their node.

A value in a dask program is either a *host* value, known when the call runs (a shape, a
constant, a shared variable's array, a scalar argument, a random generator), or a
``dask.array.Array``, computed later, chunk by chunk, wherever Dask runs it. Kernels compute on
the host what depends only on host values, and build dask arrays from the rest.
"""

from __future__ import annotations

import copyreg
import itertools
import math
import os
import sys
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import dask.array as da
import numpy as np
from dask.highlevelgraph import HighLevelGraph

from ...errors import NodeError, SymgraphError
from ...graph.basic import Apply, Variable
from ...graph.source import describe
from .. import runtime


class RechunkWarning(UserWarning):
    """An op needs the whole of an axis along which its argument is chunked, so that axis is
    rechunked into one chunk (warned once per node of a compiled function)."""


def is_lazy(value: Any) -> bool:
    """Whether ``value`` is a dask array (computed later) rather than a host value."""
    return isinstance(value, da.Array)


def any_lazy(values: Sequence[Any]) -> bool:
    return any(isinstance(value, da.Array) for value in values)


# --- names ------------------------------------------------------------------------------------------
# Every array a call builds gets a fresh name: no hashing of arguments (Dask's default, which reads
# every byte of a numpy array), and never a clash between calls, processes or machines.
_PREFIX = uuid.uuid4().hex[:12]
_COUNTER = itertools.count()


def fresh_name(label: str) -> str:
    """A new key name for a dask array, ``label-<hex token>`` (the dashboard shows ``label``)."""
    return f"{label}-{_PREFIX}{os.getpid():x}{next(_COUNTER):x}"


#: Host arrays at least this large go to a cluster's workers by ``Client.scatter`` rather than
#: inside the task graph (which Dask warns about, and which passes through the scheduler).
SCATTER_BYTES = 1 << 18


def active_client() -> Any:
    """The ``dask.distributed.Client`` that ``dask.compute`` would use now, or ``None``."""
    if "distributed" not in sys.modules:
        return None
    from dask.base import get_scheduler
    from distributed import Client

    client = getattr(get_scheduler(), "__self__", None)
    return client if isinstance(client, Client) else None


def host_array(value: Any, label: str = "array", client: Any = None) -> da.Array:
    """A dask array of one chunk holding the host value ``value`` (no copy, no hashing): in the
    graph itself, or scattered to the workers of ``client`` when it is large."""
    array = np.asarray(value)
    if client is not None and array.nbytes >= SCATTER_BYTES:
        return scattered(client, [array], label)[0]
    return da.from_array(array, chunks=array.shape, name=fresh_name(label), asarray=False, inline_array=True)


def scattered(client: Any, arrays: Sequence[np.ndarray], label: str, broadcast: bool = False) -> list[da.Array]:
    """Dask arrays of one chunk whose data ``client`` has sent to the workers (to each of them
    when ``broadcast``): the chunk's key is the data's own key, so no task copies it from one
    worker to another before its first use."""
    keys = [(fresh_name(label),) + (0,) * array.ndim for array in arrays]
    futures = client.scatter(dict(zip(keys, arrays)), broadcast=broadcast, hash=False)
    return [
        da.Array(
            HighLevelGraph.from_collections(key[0], {key: futures[key]}, dependencies=[]),
            key[0],
            chunks=tuple((length,) for length in array.shape),
            dtype=array.dtype,
        )
        for key, array in zip(keys, arrays)
    ]


class Call:
    """What the kernels of one call share: the values so far, the host arrays lifted into dask
    arrays (each once), and the chunk hints of the node being computed."""

    __slots__ = ("_lifted", "client", "hints", "values")

    def __init__(self, values: dict[Variable, Any], client: Any = None):
        self.values = values
        self.client = client  #: the distributed client computing this call's arrays, if any
        self._lifted: dict[int, tuple[Any, da.Array]] = {}
        self.hints: list[tuple[int, Any, int]] = []

    def lift(self, value: Any) -> Any:
        """``value`` as a dask array, unless it is already one or a host scalar (0-d), which dask
        takes as it is."""
        if isinstance(value, da.Array) or np.ndim(value) == 0:
            return value
        entry = self._lifted.get(id(value))
        if entry is None:
            # The value is kept with its array: its id stays its own for the whole call.
            entry = self._lifted[id(value)] = (value, host_array(value, client=self.client))
        return entry[1]

    def lift_all(self, values: Sequence[Any]) -> list[Any]:
        return [self.lift(value) for value in values]

    def send(self, state: dict) -> None:
        """Sends the large values among the shared variables' ``state`` (the weights) to every
        worker of the cluster, at once, before any task needs them (each worker would otherwise
        fetch them from another before starting), unless the workers hold them already from the
        call that computed them (``resident.py``)."""
        if self.client is None:
            return
        from . import resident

        large = []
        for variable, value in state.items():
            if not isinstance(value, np.ndarray) or value.nbytes < SCATTER_BYTES:
                continue
            held = resident.lookup(variable, value, self.client)
            if held is not None:
                self._lifted[id(value)] = (value, held)
            else:
                large.append(value)
        if large:
            for value, array in zip(large, scattered(self.client, large, "shared", broadcast=True)):
                self._lifted[id(value)] = (value, array)

    def hinted_chunks(self, shape: Sequence[int]) -> tuple | None:
        """Chunks for a new array of ``shape`` that follow the dask arrays it is made for (the
        array whose shape it takes, the array it is multiplied with): for each axis, the chunks
        of the first hint of that length, else the whole axis; ``None`` when no hint applies."""
        chunks: list[tuple] = [(int(length),) for length in shape]
        hinted = [False] * len(shape)
        for axis, variable_value, variable_axis in self.hints:
            if hinted[axis] or not is_lazy(variable_value):
                continue
            along = variable_value.chunks[variable_axis]
            if sum(along) == shape[axis] and not any(math.isnan(length) for length in along):
                chunks[axis], hinted[axis] = along, True
        return tuple(chunks) if any(hinted) else None

    def anchor(self, shape: Sequence[int], chunks: tuple) -> Any:
        """A hinted dask array of this very shape and chunks, if there is one."""
        for _, value, _ in self.hints:
            if is_lazy(value) and value.shape == tuple(shape) and value.chunks == chunks:
                return value
        return None


# --- chunk hints, found when linking ---------------------------------------------------------------
Hint = tuple[int, Variable, int]  #: (axis of the new array, a variable, the axis of that variable)


def shape_hints(shape: Variable) -> list[Hint]:
    """Where the lengths of a shape vector come from: ``x.shape`` (a ``Shape`` node) gives each
    axis of ``x``; a stack of ``x.shape[k]`` gives axis ``k`` of ``x`` for that entry."""
    from ...ops.basic import Cast
    from ...ops.shape import Shape, ShapeAt, Stack

    owner = shape.owner
    if owner is None:
        return []
    if isinstance(owner.op, Shape):
        return [(axis, owner.inputs[0], axis) for axis in range(owner.inputs[0].ndim)]
    hints: list[Hint] = []
    if isinstance(owner.op, Stack) and owner.op.axis == 0:
        for axis, item in enumerate(owner.inputs):
            while item.owner is not None and isinstance(item.owner.op, Cast):
                item = item.owner.inputs[0]
            if item.owner is not None and isinstance(item.owner.op, ShapeAt):
                hints.append((axis, item.owner.inputs[0], item.owner.op.axis))
    return hints


# --- whole axes ----------------------------------------------------------------------------------------
class WholeAxes:
    """Rechunks arrays along the axes a node needs whole, warning the first time it must."""

    def __init__(self, node: Apply):
        self.node = node
        self.warned = False

    def __call__(self, array: Any, axes: Sequence[int], what: str = "") -> Any:
        if not is_lazy(array):
            return array
        chunked = [axis for axis in axes if len(array.chunks[axis]) > 1]
        if not chunked:
            return array
        if not self.warned:
            self.warned = True
            listed = ", ".join(str(axis) for axis in chunked)
            argument = f" of {what}" if what else ""
            warnings.warn(
                f"{self.node.op.name}, built at {describe(self.node.source)}, needs the whole of axis "
                f"{listed}{argument}, which is chunked ({', '.join(str(array.chunks[a]) for a in chunked)}): "
                "rechunking it into one chunk. Chunk the data along other axes (the batch) to avoid this.",
                RechunkWarning,
                stacklevel=2,
            )
        return array.rechunk({axis: -1 for axis in chunked})


def blockwise(whole: WholeAxes, function: Callable[..., Any], out_index: str, *pairs: Any, **keywords: Any) -> Any:
    """``dask.array.blockwise`` of ``function`` over the ``(argument, index)`` pairs, each index a
    string of axis letters (``None`` for an argument given as it is). The axes whose letters are
    not in ``out_index`` are made whole first (a warning if they were chunked), and their one
    block passed as it is: the function sees whole samples along them."""
    arguments: list[Any] = []
    for argument, index in zip(pairs[::2], pairs[1::2]):
        if index is not None:
            argument = whole(argument, [axis for axis, letter in enumerate(index) if letter not in out_index])
        arguments += [argument, index]
    keywords.setdefault("name", fresh_name(whole.node.op.name))
    keywords.setdefault("meta", empty(len(out_index), keywords["dtype"]))
    return da.blockwise(Unwrapped(function), out_index, *arguments, **keywords)


#: Host arrays up to this size go into the tasks that read them rather than into tasks of their own.
LITERAL_BYTES = 1 << 16


def elementwise(
    function: Callable[..., Any], arguments: Sequence[Any], dtype: Any, label: str, lift: Callable[[Any], Any]
) -> da.Array:
    """``function`` on the blocks of the arguments broadcast together, as numpy broadcasts.

    The arguments chunked along the result's axes are aligned block by block. One that the
    result is not chunked along (a bias, a weight matrix, a scalar) goes whole to every task:
    a small host array inside the task itself, a dask array of one chunk by that chunk's key;
    neither makes a task of its own, nor stops Dask from fusing the chunked arguments' tasks
    with this one. Other host arrays are lifted by ``lift``."""
    ndim = max(np.ndim(argument) for argument in arguments)
    aligned = [argument for argument in arguments if is_lazy(argument) and argument.npartitions > 1]
    if not aligned:  # no argument in several chunks: the first dask array sets the blocks
        aligned = [next(argument for argument in arguments if is_lazy(argument) and argument.ndim == ndim)]
    pairs: list[Any] = []
    for argument in arguments:
        if np.ndim(argument) == 0 and not is_lazy(argument):
            pairs += [argument, None]
        elif any(argument is other for other in aligned) or not _whole_fits(argument, aligned, ndim):
            argument = lift(argument)
            pairs += [argument, tuple(range(ndim - argument.ndim, ndim))]
        elif is_lazy(argument) and not is_root(argument):
            pairs += [argument, tuple(range(ndim - argument.ndim, ndim))]
        elif is_lazy(argument):
            pairs += [whole_chunk(argument), None]
        elif argument.nbytes <= LITERAL_BYTES:
            pairs += [argument, None]
        else:
            pairs += [whole_chunk(lift(argument)), None]
    return da.blockwise(
        function, tuple(range(ndim)), *pairs, dtype=dtype, name=fresh_name(label), meta=empty(ndim, dtype)
    )


def is_root(array: da.Array) -> bool:
    """Whether ``array`` is data rather than computed: a host array lifted or sent to the workers
    (its graph is one layer, not a ``Blockwise`` one, whose one-chunk keys can be referred to
    without stopping Dask's fusion of the tasks around them)."""
    layers = array.dask.layers
    return array.npartitions == 1 and len(layers) == 1 and type(next(iter(layers.values()))).__name__ != "Blockwise"


def whole_chunk(array: da.Array) -> Any:
    """The one chunk of a root array, as an argument every task of a ``blockwise`` receives whole."""
    return array.to_delayed(optimize_graph=False).flat[0]


def _whole_fits(argument: Any, aligned: Sequence[da.Array], ndim: int) -> bool:
    """Whether ``argument`` can go whole to each block: along each of its axes longer than 1,
    some aligned array has that length, and none is chunked."""
    if is_lazy(argument) and argument.npartitions > 1:
        return False
    offset = ndim - np.ndim(argument)
    for axis, length in enumerate(np.shape(argument)):
        if length == 1:
            continue
        matched = False
        for array in aligned:
            position = offset + axis - (ndim - array.ndim)
            if position < 0:
                continue
            if array.shape[position] != 1 and len(array.chunks[position]) > 1:
                return False
            matched = matched or array.shape[position] == length
        if not matched:
            return False
    return True


def empty(ndim: int, dtype: Any) -> np.ndarray:
    """What dask calls an array's ``meta``: given, so that it does not call the function on empty
    arrays to find it."""
    return np.empty((0,) * ndim, dtype=dtype)


# --- block functions ---------------------------------------------------------------------------------
def summary(node: Apply, inputs: Sequence[Variable] | None = None) -> SimpleNamespace:
    """What an error inside a task says about its node (the node itself would carry its whole
    graph into every task): the op's name, the user's line, and the names and types of the inputs
    the task's blocks come from (``inputs``, by default all of the node's)."""
    return SimpleNamespace(
        op=SimpleNamespace(name=node.op.name),
        source=node.source,
        inputs=[Variable(variable.type, name=variable.label()) for variable in (inputs or node.inputs)],
    )


@dataclass(frozen=True)
class Guarded:
    """A function run on blocks inside Dask's tasks; an error names the node, the shapes of the
    blocks it was given and the user's line that built the node (a ``NodeError``, as the numpy
    backend raises, that survives the trip back from a worker process)."""

    function: Callable[..., Any]
    where: SimpleNamespace

    @property
    def __name__(self) -> str:  # what dask calls the tasks
        return self.where.op.name

    def __call__(self, *blocks: Any, **keywords: Any) -> Any:
        try:
            return self.function(*blocks, **keywords)
        except NodeError as error:  # from a program the numpy backend compiled: it names its node
            raise portable(error) from error.__cause__
        except SymgraphError:
            raise
        except Exception as error:
            raise portable(runtime.node_error(self.where, blocks, error)) from error  # type: ignore[arg-type]


@dataclass(frozen=True)
class Unwrapped:
    """``function`` given, for each argument that ``blockwise`` passes as a list of blocks along
    an index absent from the result, its one block (the arrays are one chunk along those
    indices). Unlike ``concatenate=True``, which copies even a single block, this copies nothing."""

    function: Callable[..., Any]

    @property
    def __name__(self) -> str:
        return getattr(self.function, "__name__", "block")

    def __call__(self, *arguments: Any) -> Any:
        return self.function(*[_only_block(argument) for argument in arguments])


def _only_block(argument: Any) -> Any:
    while isinstance(argument, list):
        (argument,) = argument
    return argument


class GuardedChunk(Guarded):
    """A guarded function that makes a chunk from its index and shape (``map_blocks`` passes them
    to functions that name them)."""

    def __call__(self, *blocks: Any, block_id: Any = None, block_info: Any = None) -> Any:
        return super().__call__(*blocks, block_id=block_id, block_info=block_info)


def guard(node: Apply, function: Callable[..., Any], inputs: Sequence[Variable] | None = None) -> Guarded:
    """``function`` run on blocks of ``node``'s inputs (or of ``inputs``), its errors naming ``node``."""
    return Guarded(function, summary(node, inputs))


def portable(error: NodeError) -> NodeError:
    """``error``, whose class (``NodeError[ValueError]``, made on the fly) pickles by the base
    class and the message: distributed sends errors raised in a worker back to the client."""
    copyreg.pickle(type(error), _reduce_node_error)
    return error


def _reduce_node_error(error: NodeError) -> tuple:
    base = next(base for base in type(error).__bases__ if base is not NodeError)
    return _rebuild_node_error, (base, str(error))


def _rebuild_node_error(base: type, message: str) -> NodeError:
    return portable(NodeError.wrapping(base.__new__(base), message))


def probes(values: Sequence[Any]) -> list[Any]:
    """Values as error messages show them: a dask array as an array of its dtype and shape that
    takes no memory, so that ``runtime.describe_failure`` prints both."""
    shown = []
    for value in values:
        if is_lazy(value) and not any(math.isnan(length) for length in value.shape):
            value = np.broadcast_to(np.empty((), dtype=value.dtype), value.shape)
        shown.append(value)
    return shown
