"""Data-parallel regions: what a graph computes sample by sample, as one numpy program per chunk.

Translated op by op, a training step on a batch of ``P`` chunks is ``P`` dask tasks per op, each
making new arrays. Most of a step works sample by sample: the forward and backward passes
through dense layers, activations, dropout, the per-sample loss; then come sums over the batch
(the mean loss, each weight's gradient). When a call's data is chunked along the batch (its
first axis) only, the region runs, for each chunk, one program compiled by the numpy backend
(in-place elementwise work, its memory plan) computing all of that, and the sums over the chunk;
Dask then sums those partial sums in a tree, as the op-by-op translation does. Everything else
(the optimizer's update, ops that need the whole batch) stays op by op. Which nodes belong is
decided when linking (``membership.py``). Random draws use the chunk's stream of the op-by-op
translation (``random.py``), so they are the same numbers.

A call checks that its values fit (batched arguments chunked alike along the batch only, host
values on the host, broadcast operands one row long); if not, or in debug mode, the region's
nodes run op by op.
"""

from __future__ import annotations

import operator
import threading
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
from dask.highlevelgraph import HighLevelGraph

from ...graph.basic import Apply, Constant, Variable
from ...graph.fgraph import FunctionGraph
from ...graph.op import Op
from ...graph.source import building
from ...graph.type import TensorType
from ...nn.dropout import BernoulliMask
from ...ops.linalg import Dot
from ...ops.random import GeneratorType, RandomOp
from ...ops.shape import Shape, ShapeAt, Stack
from .blocks import LITERAL_BYTES, Call, Guarded, Unwrapped, empty, fresh_name, is_lazy, summary, whole_chunk
from .membership import (
    BATCHED,
    CHUNK,
    WHOLE,
    classify,
    convex,
    expression_nodes,
    reads,
    rebuilt_inputs,
)
from .random import KEY_WORDS, call_key, chunk_generator


# --- the region ------------------------------------------------------------------------------------
class ChunkDraw(Op):
    """Inside a region's program, a random node's draw for one chunk: ``(key, chunk, size,
    *parameters) -> sample``, from the chunk's generator ``SeedSequence(key, spawn_key=(chunk,
    0, ...))`` (a PCG64), as the op-by-op translation draws that chunk."""

    __props__ = ("op",)

    def __init__(self, op: Op):
        self.op = op

    @property
    def name(self) -> str:
        return self.op.name

    def make_node(self, key: Variable, chunk: Variable, size: Variable, *parameters: Variable) -> Apply:
        sample = self.op.make_node(Variable(GeneratorType()), size, *parameters).outputs[1]
        return Apply(self, [key, chunk, size, *parameters], [sample.type])

    def perform(self, key: np.ndarray, chunk: Any, size: np.ndarray, *parameters: Any) -> np.ndarray:
        spawn = (int(chunk),) + (0,) * (len(size) - 1)
        generator = chunk_generator(np.random.PCG64, [int(word) for word in key], spawn)
        return self.op.perform(generator, size, *parameters)[1]


KEY = TensorType("uint64", (KEY_WORDS,))
CHUNK_INDEX = TensorType("int64", ())


# --- running it ------------------------------------------------------------------------------------
class RegionProgram:
    """The region's graph, compiled by the numpy backend once per process (it travels to the
    workers as the graph, which pickles, and is compiled where it runs)."""

    _compiled: dict[str, Callable[..., Sequence[Any]]] = {}
    _lock = threading.Lock()

    def __init__(self, fgraph: FunctionGraph, token: str | None = None):
        self.fgraph = fgraph
        self.token = token or uuid.uuid4().hex

    def __call__(self, *values: Any) -> Sequence[Any]:
        run = self._compiled.get(self.token)
        if run is None:
            from ..numpy import BACKEND as NUMPY
            from ..numpy import workspace

            workspace.keep_freed_memory(worker_memory_limit())
            with self._lock:
                run = self._compiled.get(self.token) or NUMPY.compile_inner(self.fgraph)
                if len(self._compiled) > 256:
                    self._compiled.clear()
                self._compiled[self.token] = run
        return run(*values)

    def __reduce__(self) -> tuple:
        return (RegionProgram, (self.fgraph, self.token))


def worker_memory_limit() -> int | None:
    """The memory limit of the Dask worker this runs on, if it runs on one that has one (what its
    process keeps of freed memory for reuse is scaled to it: ``workspace.keep_freed_memory``)."""
    try:
        from distributed import get_worker

        return get_worker().memory_manager.memory_limit or None
    except (ImportError, ValueError, AttributeError):  # not on a worker (or an older distributed)
        return None


class RegionChunk:
    """One chunk of the region: the chunk's index (in a block of ``arange``), its batched
    inputs' blocks and the host values in; the tuple of the region's outputs out."""

    def __init__(self, program: RegionProgram, keys: list[np.ndarray], length: int):
        self.program, self.keys, self.length = program, keys, length

    @property
    def __name__(self) -> str:
        return "region"

    def __call__(self, index: np.ndarray, *values: Any) -> tuple:
        chunk = int(index[0])
        return tuple(self.program(*values, *self.keys, np.int64(chunk), np.int64(self.length)))


class ShapeOnly:
    """A batched result of the region that nothing outside reads but its shape (``Shape``
    nodes): the shape alone, no data, no task."""

    def __init__(self, shape: tuple):
        self.shape = shape
        self.ndim = len(shape)


#: How many partial results one task of the tree combines (as Dask's reductions, ``split_every``).
SPLIT_EVERY = 4


class _Combine:
    """The partial results of several chunks, combined: each summed (or max, min, prod) over
    them. A chunk's results are the ``count`` after ``offset`` in its tuple."""

    _UFUNCS = {"sum": np.add, "max": np.maximum, "min": np.minimum, "prod": np.multiply}

    def __init__(self, kinds: list[str], offset: int):
        self.kinds, self.offset = kinds, offset

    @property
    def __name__(self) -> str:
        return "combine"

    def __call__(self, *parts: tuple) -> tuple:
        count = len(self.kinds)
        parts = [part[self.offset : self.offset + count] if len(part) != count else part for part in parts]
        combined = [np.array(value, copy=True) for value in parts[0]]
        for part in parts[1:]:
            for total, value, kind in zip(combined, part, self.kinds):
                self._UFUNCS[kind](total, value, out=total)
        return tuple(combined)


def _combine_tree(pieces: da.Array, kinds: list[str], offset: int) -> da.Array:
    """The combination of every chunk's partial results, ``SPLIT_EVERY`` at a time in a tree of
    tasks, as an array of one block: the tuple of the combined results."""
    name = fresh_name("combine")
    keys = [(pieces.name, index) for index in range(pieces.numblocks[0])]
    tasks: dict = {}
    level = 0
    while len(keys) > 1 or level == 0:
        level += 1
        grouped = [keys[start : start + SPLIT_EVERY] for start in range(0, len(keys), SPLIT_EVERY)]
        keys = [(f"{name}-{level}", index) for index in range(len(grouped))]
        for key, group in zip(keys, grouped):
            tasks[key] = (_Combine(kinds, offset if level == 1 else 0), *group)
    tasks[(name, 0)] = tasks.pop(keys[0])
    graph = HighLevelGraph.from_collections(name, tasks, dependencies=[pieces])
    return da.Array(graph, name, chunks=((1,),), dtype=object, meta=np.empty((0,), dtype=object))


def take_whole(combined: da.Array, position: int, shape: tuple, variable: Variable) -> da.Array:
    """Result ``position`` of a task that returns a tuple (a region's combination, the tail), as a
    dask array of one chunk."""
    name = fresh_name(variable.owner.op.name)
    key = (name,) + (0,) * len(shape)
    graph = HighLevelGraph.from_collections(
        name, {key: (operator.getitem, (combined.name, 0), position)}, dependencies=[combined]
    )
    dtype = variable.type.numpy_dtype
    array = da.Array(graph, name, chunks=tuple((n,) for n in shape), dtype=dtype, meta=empty(len(shape), dtype))
    array.tuple_part = (combined, position)  # taken from a task's tuple: others may read it there
    return array


class _Take:
    """Output ``position`` of a region chunk's tuple."""

    def __init__(self, position: int):
        self.position = position

    def __call__(self, results: Any) -> np.ndarray:
        return np.asarray(results[self.position])


@dataclass
class Region:
    """The member nodes, what they read and give, and their program."""

    nodes: list[Apply]
    steps: list  #: the members' own steps, for calls whose values do not fit
    batched_inputs: list[Variable]
    host_inputs: list[Variable]
    draws: list[Apply]
    batched_outputs: list[Variable]
    reduced_outputs: list[tuple[Variable, str]]
    shape_only: list[Variable]  #: batched results read outside only for their shape
    checks: list[tuple[str, Variable, Any]]
    program: RegionProgram
    probe: RegionProgram  #: the program giving the shape-only results too
    shapes: dict = field(default_factory=dict)  #: output shapes found by a probe, per signature

    def run(self, call: Call, values: dict, execute: Callable[[Any], None]) -> None:
        """Computes the members' outputs into ``values``: the region, or its steps op by op."""
        prepared = self._prepare(values)
        if prepared is None or any(
            type(values[node.inputs[0]].bit_generator) is not np.random.PCG64 for node in self.draws
        ):  # a generator of another kind: op by op
            for step in self.steps:
                execute(step)
            return
        batched, hosts, chunks = prepared
        keys = []
        for node in self.draws:
            advanced, key = call_key(values[node.inputs[0]])
            values[node.outputs[0]] = advanced
            keys.append(np.array(key, dtype=np.uint64))
        shapes = self._shapes(batched, hosts, keys, sum(chunks))
        if shapes is None:
            for step in self.steps:  # the draws again, from the generators' state at the call
                execute(step)
            return
        pairs: list[Any] = [da.arange(len(chunks), chunks=1), (0,)]
        axes = iter(range(1, 1 + sum(value.ndim for value in batched)))
        for value in batched:  # the batch is index 0; every other axis its own (one chunk)
            pairs += [value, (0,) + tuple(next(axes) for _ in range(value.ndim - 1))]
        for value in hosts:
            lifted = call.lift(value) if isinstance(value, np.ndarray) and value.nbytes > LITERAL_BYTES else None
            pairs += [whole_chunk(lifted) if lifted is not None else value, None]
        length = sum(chunks)
        chunk = Guarded(RegionChunk(self.program, keys, length), summary(self.nodes[0], self.batched_inputs))
        # Blocks paired by position: the k-th block of the indices with the k-th chunk of the batch.
        pieces = da.blockwise(
            Unwrapped(chunk),
            (0,),
            *pairs,
            dtype=object,
            meta=np.empty((0,), dtype=object),
            name=fresh_name("region"),
            align_arrays=False,
        )
        for position, variable in enumerate(self.batched_outputs):
            rest = shapes[position][1:]
            values[variable] = pieces.map_blocks(
                _Take(position),
                chunks=(chunks,) + tuple((n,) for n in rest),
                new_axis=list(range(1, 1 + len(rest))),
                dtype=variable.type.numpy_dtype,
                meta=empty(variable.ndim, variable.type.numpy_dtype),
                name=fresh_name(variable.owner.op.name),
            )
        offset = len(self.batched_outputs)
        if self.reduced_outputs:
            combined = _combine_tree(pieces, [kind for _, kind in self.reduced_outputs], offset)
            for position, (variable, _) in enumerate(self.reduced_outputs):
                values[variable] = take_whole(combined, position, shapes[offset + position], variable)
        for position, variable in enumerate(self.shape_only, start=offset + len(self.reduced_outputs)):
            values[variable] = ShapeOnly((length,) + tuple(shapes[position][1:]))

    def _prepare(self, values: dict) -> tuple | None:
        """The batched inputs chunked alike along the batch only, and the host values, or
        ``None`` when they do not fit."""
        batched = [values[variable] for variable in self.batched_inputs]
        hosts = [values[variable] for variable in self.host_inputs]
        if not batched or any(not is_lazy(value) for value in batched) or any(is_lazy(value) for value in hosts):
            return None
        if any(len(axis) != 1 for value in batched for axis in value.chunks[1:]):
            return None
        if any(0 in value.chunks[0] for value in batched):  # an empty chunk: its program would see no rows
            return None
        chunks = max((value.chunks[0] for value in batched), key=len)
        length = sum(chunks)
        fitted = []
        for value in batched:
            if value.shape[0] != length:
                return None
            fitted.append(value if value.chunks[0] == chunks else value.rechunk({0: chunks}))
        for condition, variable, node in self.checks:
            value = values.get(variable)
            if value is None or is_lazy(value):
                return None
            if condition == "one row" and np.shape(value)[0] != 1:
                return None
            if condition == "sums the batch":
                target = tuple(np.asarray(value).tolist())
                g_ndim = node.inputs[0].ndim
                if len(target) == g_ndim and target[0] != 1:
                    return None
        return fitted, hosts, chunks

    def _shapes(self, batched: list, hosts: list, keys: list, length: int) -> list | None:
        """The outputs' shapes for one row (a batched output's rows are its chunk's), found once
        per shape of the inputs by running the program on a row of zeros."""
        signature = (
            tuple((value.shape[1:], value.dtype.str) for value in batched),
            tuple((np.shape(value), np.asarray(value).dtype.str) for value in hosts),
        )
        if signature not in self.shapes:
            rows = [np.zeros((1,) + tuple(value.shape[1:]), dtype=value.dtype) for value in batched]
            try:
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    outputs = self.probe(*rows, *hosts, *keys, np.int64(0), np.int64(length))
                self.shapes[signature] = [np.shape(output) for output in outputs]
            except Exception:
                self.shapes[signature] = None  # the members run op by op for these shapes
        return self.shapes[signature]


def find_region(fgraph: FunctionGraph, steps: list) -> tuple[Region | None, list, dict]:
    """The region of ``fgraph`` and the steps with the region among them (the members' steps
    replaced by the region, placed after everything it reads and before everything reading it),
    or ``None`` and the steps as they were; and the kinds of the variables (``membership.py``)."""
    order = [node for node, _, _ in steps]
    kinds, roles = classify(order, fgraph.inputs)
    members = convex(order, roles, kinds)
    if not any(roles[node].reduction or isinstance(node.op, Dot) for node in members):
        return None, steps, kinds  # nothing worth a program per chunk
    nodes = [node for node in order if node in members]
    rebuilt = {node: rebuilt_inputs(node, kinds) for node in nodes}
    computed = {output for node in nodes for output in node.outputs}
    draws = [node for node in nodes if isinstance(node.op, (RandomOp, BernoulliMask))]
    states = {node.outputs[0] for node in draws}  # set by the region at the call, not computed
    # The non-members still needed: those the members rebuild inside are not, on this path.
    wanted = set(fgraph.computed)
    needed_variables = set(wanted)
    needed: set[Apply] = set()
    for node in reversed(order):
        if node in members:
            needed_variables.update(reads(node, rebuilt[node]))
        elif needed_variables.intersection(node.outputs):
            needed.add(node)
            needed_variables.update(node.inputs)
    data_readers: set[Variable] = set()  # member outputs a needed non-member reads as data
    shape_readers: set[Variable] = set()  # ... or only for their shape
    for node in needed:
        (shape_readers if isinstance(node.op, (Shape, ShapeAt)) else data_readers).update(node.inputs)
    outputs = [output for node in nodes for output in node.outputs if output not in states]
    external = [v for v in outputs if v in wanted or v in data_readers]
    shaped = [v for v in outputs if v in shape_readers and v not in set(external)]
    shape_only = [v for v in shaped if kinds[v] == BATCHED]
    batched_outputs = [v for v in external if kinds[v] == BATCHED]
    reduced_outputs = [(v, roles[v.owner].reduction) for v in external if roles[v.owner].reduction]
    if len(batched_outputs) + len(reduced_outputs) != len(external) or len(shape_only) != len(shaped):
        return None, steps, kinds  # a transposed batch, or a sum's partial, would leave the region
    read_batched, read_host = _region_inputs(nodes, rebuilt, computed, kinds, {node.inputs[0] for node in draws})
    program_outputs = batched_outputs + [v for v, _ in reduced_outputs]
    graph = _region_graph(nodes, rebuilt, read_batched, read_host, draws, program_outputs + shape_only, kinds)
    main = FunctionGraph(graph.inputs, graph.outputs[: len(program_outputs)])
    checks = [check for node in nodes for check in roles[node].checks]
    # Op by op, the members need what they rebuild computed from the whole batch's shapes.
    shaping = {n for node in nodes for index in rebuilt[node] for n in expression_nodes(node.inputs[index])}
    region = Region(
        nodes,
        [step for step in steps if step[0] in members or step[0] in shaping],
        read_batched,
        read_host,
        draws,
        batched_outputs,
        reduced_outputs,
        shape_only,
        checks,
        RegionProgram(main),
        RegionProgram(graph),
    )
    after: set[Apply] = set()
    later: set[Variable] = set(computed)
    for node in order:
        if node in needed and later.intersection(node.inputs):
            after.add(node)
            later.update(node.outputs)
    before = [step for step in steps if step[0] in needed and step[0] not in after]
    return region, before + [region] + [step for step in steps if step[0] in after], kinds


def _region_inputs(nodes: list[Apply], rebuilt: dict, computed: set, kinds: dict, generators: set) -> tuple:
    """What the members read from outside: batched variables, and host values (constants stay in
    the program; what is rebuilt inside brings what it is computed from)."""
    batched: dict[Variable, None] = {}
    host: dict[Variable, None] = {}
    for node in nodes:
        for variable in reads(node, rebuilt[node]):
            if variable in computed or isinstance(variable, Constant) or variable in generators:
                continue
            (batched if kinds.get(variable) == BATCHED else host)[variable] = None
    return list(batched), list(host)


#: The batch's length, an input of every region program (for the values computed from it).
BATCH_LENGTH = TensorType("int64", ())


def _region_graph(
    nodes: list[Apply], rebuilt: dict, batched: list, host: list, draws: list, outputs: list, kinds: dict
) -> FunctionGraph:
    """The members rebuilt on placeholders of what they read, a generator of its own for each
    draw, and the batch's length; what is computed from shapes rebuilt inside (``CHUNK``: the
    chunk's shapes; ``WHOLE``: the whole batch's length on the first axis)."""
    placeholders = {variable: Variable(variable.type, name=variable.name) for variable in batched + host}
    keys = {node: Variable(KEY, name=f"key{k}") for k, node in enumerate(draws)}
    chunk = Variable(CHUNK_INDEX, name="chunk")
    length = Variable(BATCH_LENGTH, name="batch_length")
    memo: dict[Variable, Variable] = dict(placeholders)
    expressions: dict[str, dict[Variable, Variable]] = {CHUNK: {}, WHOLE: {}}

    def expression(variable: Variable, mode: str) -> Variable:
        done = expressions[mode]
        if variable in done:
            return done[variable]
        owner = variable.owner
        if owner is None:
            return variable if isinstance(variable, Constant) else memo[variable]
        of = owner.inputs[0] if isinstance(owner.op, (Shape, ShapeAt)) else None
        whole_batch = mode == WHOLE and of is not None and kinds.get(of) == BATCHED
        with building.like(owner):
            if whole_batch and isinstance(owner.op, ShapeAt) and owner.op.axis == 0:
                results = [length]
            elif whole_batch and isinstance(owner.op, Shape):
                lengths = [length] + [ShapeAt(axis)(memo[of]) for axis in range(1, of.ndim)]
                results = [Stack(0)(*lengths)]
            elif of is not None:
                results = owner.op.make_node(memo[of]).outputs
            else:
                results = owner.op.make_node(*[expression(v, mode) for v in owner.inputs]).outputs
        done.update(zip(owner.outputs, results))
        return done[variable]

    for node in nodes:
        inputs = [
            expression(v, rebuilt[node][index])
            if index in rebuilt[node]
            else v
            if isinstance(v, Constant)
            else memo.get(v)
            for index, v in enumerate(node.inputs)
        ]
        with building.like(node):
            if node in keys:  # the generator's state stays outside; the sample is the chunk's draw
                memo[node.outputs[1]] = ChunkDraw(node.op).make_node(keys[node], chunk, *inputs[1:]).outputs[0]
                continue
            new = node.op.make_node(*inputs)
        memo.update(zip(node.outputs, new.outputs))
    graph_inputs = [placeholders[v] for v in batched + host] + list(keys.values()) + [chunk, length]
    return FunctionGraph(graph_inputs, [memo[v] for v in outputs])


__all__ = ["Region", "find_region"]
