"""The tail of a train step: what is computed from the sums over the batch, as one program.

After the sums over the batch (the loss, each weight's gradient) come small computations on
single arrays: the mean loss, an optimizer's moments and the weights' new values. Op by op, each
is a dask task of its own, each waiting for the scheduler after the one before. The tail runs
them as one program compiled by the numpy backend, in one task, and takes its results apart. Its
nodes are those computing from sums over the batch and host values only (``membership.py``'s
``reduced`` kind), made convex as a region's members are. A call whose lazy inputs to it are
not each one chunk runs them op by op.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
from dask.highlevelgraph import HighLevelGraph

from ...graph.basic import Apply, Constant, Variable
from ...graph.fgraph import FunctionGraph
from ...graph.source import building
from ...graph.type import TensorType
from ...ops.shape import Shape, ShapeAt
from .blocks import LITERAL_BYTES, Call, Guarded, fresh_name, is_lazy, summary
from .membership import HOST, REDUCED
from .regions import Region, RegionProgram, ShapeOnly, take_whole


class TailTask:
    """The tail's program on its inputs' values, giving the tuple of its outputs."""

    def __init__(self, program: RegionProgram):
        self.program = program

    @property
    def __name__(self) -> str:
        return "tail"

    def __call__(self, *values: Any) -> tuple:
        return tuple(self.program(*values))


@dataclass
class Tail:
    """The tail's nodes, what they read and give, and their program."""

    nodes: list[Apply]
    steps: list  #: the nodes' own steps, for calls whose values do not fit
    inputs: list[Variable]
    outputs: list[Variable]
    program: RegionProgram
    shapes: dict = field(default_factory=dict)  #: output shapes, per shape of the inputs

    def run(self, call: Call, values: dict, execute: Callable[[Any], None]) -> None:
        given = [values[variable] for variable in self.inputs]
        lazy = [value for value in given if is_lazy(value)]
        fits = lazy and all(value.npartitions == 1 for value in lazy)
        shapes = self._shapes(given) if fits and not any(isinstance(v, ShapeOnly) for v in given) else None
        if shapes is None:
            for step in self.steps:
                execute(step)
            return
        name = fresh_name("tail")
        arguments, dependencies = [], []
        for value in given:
            if isinstance(value, np.ndarray) and value.nbytes > LITERAL_BYTES:
                value = call.lift(value)
            part = getattr(value, "tuple_part", None)
            if part is not None:  # read in the tuple it is taken from: no task taking it out
                arguments.append((operator.getitem, (part[0].name, 0), part[1]))
                dependencies.append(part[0])
            elif is_lazy(value):
                arguments.append((value.name,) + (0,) * value.ndim)
                dependencies.append(value)
            else:
                arguments.append(value)
        task = Guarded(TailTask(self.program), summary(self.nodes[0], self.inputs))
        graph = HighLevelGraph.from_collections(name, {(name, 0): (task, *arguments)}, dependencies=dependencies)
        results = da.Array(graph, name, chunks=((1,),), dtype=object, meta=np.empty((0,), dtype=object))
        for position, (variable, shape) in enumerate(zip(self.outputs, shapes)):
            values[variable] = take_whole(results, position, shape, variable)

    def _shapes(self, given: list) -> list | None:
        """The outputs' shapes, found once per shape of the inputs by running the program on
        zeros of those shapes (``None`` if it fails: then op by op)."""
        signature = tuple(
            (np.shape(value), str(np.asarray(value).dtype) if not is_lazy(value) else value.dtype.str)
            for value in given
        )
        if signature not in self.shapes:
            zeros = [np.zeros(value.shape, dtype=value.dtype) if is_lazy(value) else value for value in given]
            try:
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self.shapes[signature] = [np.shape(output) for output in self.program(*zeros)]
            except Exception:
                self.shapes[signature] = None
        return self.shapes[signature]


def _reads(step: Any) -> set[Variable]:
    if isinstance(step, Region):
        return set(step.batched_inputs) | set(step.host_inputs) | {node.inputs[0] for node in step.draws}
    return set(step[0].inputs)


def _writes(step: Any) -> set[Variable]:
    if isinstance(step, Region):
        return {output for node in step.nodes for output in node.outputs}
    return set(step[0].outputs)


def find_tail(fgraph: FunctionGraph, steps: list, kinds: dict) -> list:
    """The steps with the tail among them (its nodes' steps replaced by it, placed after
    everything it reads and before everything reading it), or as they were if there is none."""
    chosen = {
        index
        for index, step in enumerate(steps)
        if not isinstance(step, Region)
        and not step[0].op.stochastic
        and not isinstance(step[0].op, (Shape, ShapeAt))  # known when the call runs, as dask knows it
        and all(isinstance(output.type, TensorType) and kinds.get(output) == REDUCED for output in step[0].outputs)
        and all(kinds.get(variable, HOST) in (HOST, REDUCED) for variable in step[0].inputs)
    }
    reads = [_reads(step) for step in steps]
    writes = [_writes(step) for step in steps]
    while True:  # convex: no member reads what a non-member computes from a member
        after: set[Variable] = set()
        produced: set[Variable] = set()
        removed = False
        for index in range(len(steps)):
            if index in chosen:
                if after & reads[index]:
                    chosen.discard(index)
                    removed = True
                else:
                    produced |= writes[index]
                    continue
            if (after | produced) & reads[index]:
                after |= writes[index]
        if not removed:
            break
    if len(chosen) < 2:
        return steps
    nodes = [steps[index][0] for index in sorted(chosen)]
    computed = {output for node in nodes for output in node.outputs}
    read_by_others = {v for index in range(len(steps)) if index not in chosen for v in reads[index]}
    wanted = set(fgraph.computed) | read_by_others
    outputs = [output for node in nodes for output in node.outputs if output in wanted]
    inputs: dict[Variable, None] = {}
    for node in nodes:
        for variable in node.inputs:
            if variable not in computed and not isinstance(variable, Constant):
                inputs[variable] = None
    tail = Tail(
        nodes,
        [steps[index] for index in sorted(chosen)],
        list(inputs),
        outputs,
        RegionProgram(_tail_graph(nodes, list(inputs), outputs)),
    )
    later: set[Variable] = set(computed)
    placed_after = []
    for index in range(len(steps)):
        if index not in chosen and later & reads[index]:
            placed_after.append(index)
            later |= writes[index]
    before = [step for index, step in enumerate(steps) if index not in chosen and index not in placed_after]
    return before + [tail] + [steps[index] for index in placed_after]


def _tail_graph(nodes: list[Apply], inputs: list[Variable], outputs: list[Variable]) -> FunctionGraph:
    placeholders = [Variable(variable.type, name=variable.name) for variable in inputs]
    memo: dict[Variable, Variable] = dict(zip(inputs, placeholders))
    for node in nodes:
        arguments = [variable if isinstance(variable, Constant) else memo[variable] for variable in node.inputs]
        with building.like(node):
            new = node.op.make_node(*arguments)
        memo.update(zip(node.outputs, new.outputs))
    return FunctionGraph(placeholders, [memo[output] for output in outputs])
