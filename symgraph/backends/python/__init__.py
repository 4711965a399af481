"""The python backend, the reference: every node's ``perform``, in order, nothing in place.

It interprets the compiled graph node by node (no generated code), which makes it slow and
simple: what it computes is what the ops say they compute. Mode ``'debug'`` runs on it and checks
every result (dtype, static shape, NaN and Inf). Its table, ``python_kernel``, gives each node its
op's ``perform``, and ops holding an inner graph a kernel running that graph on this backend.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...errors import SymgraphError
from ...graph.basic import STATE_LOCK, Apply, Constant, SharedVariable, Variable
from ...graph.fgraph import FunctionGraph
from ...graph.op import Op
from ...graph.type import TensorType
from ...ops.ifelse import IfElse
from ...ops.scan import Scan
from ...ops.subgraph import Map
from .. import runtime
from ..base import Backend, LinkOptions, Program
from ..profile import Profile, clock, shapes_of


@functools.singledispatch
def python_kernel(op: Op, node: Apply) -> Callable[..., Any]:
    """What computes ``node``: its op's ``perform`` unless the op's class has an entry."""
    return op.perform


@python_kernel.register
def _map(op: Map, node: Apply) -> Callable[..., Any]:
    return op.kernel(BACKEND.compile_inner)


@python_kernel.register
def _scan(op: Scan, node: Apply) -> Callable[..., Any]:
    return op.loop(BACKEND.compile_inner)


@python_kernel.register
def _ifelse(op: IfElse, node: Apply) -> Callable[..., Any]:
    return op.kernel(BACKEND.compile_inner)


class PythonBackend(Backend):
    """Interprets the graph, calling each node's ``perform``."""

    name = "python"

    def link(self, fgraph: FunctionGraph, options: LinkOptions) -> Program:
        steps = [(node, python_kernel(node.op, node)) for node in fgraph.order]
        order = [node for node, _ in steps]
        profile = Profile(order) if options.profile else None
        if profile is not None:  # each kernel timed, the loop unchanged
            steps = [(node, _timed(kernel, index, profile)) for index, (node, kernel) in enumerate(steps)]
        return Program(_interpreter(fgraph, steps, options), order, profile=profile)

    def compile_inner(self, fgraph: FunctionGraph) -> Callable[..., Sequence[Any]]:
        run = self.link(fgraph, LinkOptions(name="inner graph", apply_updates=False)).run
        return lambda *values: run(values)


def _interpreter(fgraph: FunctionGraph, steps: list, options: LinkOptions) -> Callable[[tuple], Any]:
    inputs, outputs, updates = fgraph.inputs, fgraph.outputs, fgraph.updates
    wrong_count = runtime.count_checker(inputs, options.name)
    converters = [
        runtime.argument_converter(variable, position, options.name, options.allow_downcast)
        for position, variable in enumerate(inputs)
    ]
    roots = {
        id(variable): variable
        for variable in [v for node, _ in steps for v in node.inputs] + fgraph.computed
        if variable.owner is None
    }
    constants = [variable for variable in roots.values() if isinstance(variable, Constant)]
    shared = [variable for variable in roots.values() if isinstance(variable, SharedVariable)]
    shared += [target for target, _ in updates if id(target) not in roots]
    mutable = [variable for variable in shared if getattr(variable.type, "mutable", False)]

    def run(args: tuple) -> Any:
        if len(args) != len(inputs):
            wrong_count(len(args))
        values: dict[Variable, Any] = {v: convert(a) for v, convert, a in zip(inputs, converters, args)}
        values.update((constant, constant.data) for constant in constants)
        with STATE_LOCK:
            values.update((variable, variable._value) for variable in shared)
            saved = [(variable, variable.type.snapshot(values[variable])) for variable in mutable]
            try:
                for node, kernel in steps:
                    arguments = [values[variable] for variable in node.inputs]
                    results = _call(node, kernel, arguments, options.debug)
                    values.update(zip(node.outputs, results))
                returned = [np.array(values[variable], copy=True) for variable in outputs]
                prepared = [_prepared(target, values[value]) for target, value in updates]
            except BaseException:
                _restore(saved)
                raise
            if not options.apply_updates:
                _restore(saved)
            else:
                for (target, _), value in zip(updates, prepared):
                    runtime.commit(target, value)
        if options.single_output:
            return returned[0]
        return None if options.single_output is None else returned

    return run


def _timed(kernel: Callable[..., Any], index: int, profile: Profile) -> Callable[..., Any]:
    """``kernel``, adding its time, a run and its arguments' shapes to node ``index`` of ``profile``."""
    times, counts, shapes = profile.times, profile.counts, profile.shapes

    def timed(*arguments: Any) -> Any:
        shapes[index] = shapes_of(*arguments)
        start = clock()
        result = kernel(*arguments)
        times[index] += clock() - start
        counts[index] += 1
        return result

    return timed


def _call(node: Apply, kernel: Callable[..., Any], arguments: list, debug: bool) -> Sequence[Any]:
    """The node's results, as a sequence; an error names the node (and, in debug mode, so does a
    result of the wrong dtype or shape, or holding NaN or Inf)."""
    try:
        result = kernel(*arguments)
        results = result if len(node.outputs) > 1 else (result,)
        if debug:
            runtime.debug_check(node, results)
    except SymgraphError:
        raise
    except Exception as error:
        raise runtime.node_error(node, arguments, error) from error
    return results


def _prepared(target: SharedVariable, value: Any) -> Any:
    """The new value of ``target``: of its dtype, and an array of its own."""
    if isinstance(target.type, TensorType):
        return np.array(value, dtype=target.type.numpy_dtype, copy=True)
    return value


def _restore(saved: list) -> None:
    for variable, state in saved:
        variable.type.restore(variable._value, state)


BACKEND = PythonBackend()

__all__ = ["BACKEND", "PythonBackend", "python_kernel"]
