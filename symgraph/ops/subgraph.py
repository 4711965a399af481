"""Ops that hold a graph: ``sg.OpFromGraph``, batch normalization's ``PhaseGraph``, and ``Map``
(one inner graph applied to each index of a range, what ``sg.jacobian`` loops with).

An inner graph is a :class:`FunctionGraph` whose inputs are placeholders of their own. Every
compiler pass looks inside (``InnerGraphOp.inner_graphs`` / ``with_inner_graphs``):

- ``OpFromGraph`` is inlined before anything else (``rewrite/inline.py``), so the phase, random
  state, rewrites, memory planning and the backend see its nodes as any others; they keep the
  subgraph as their scope, so pictures still show it as one box.
- ``PhaseGraph`` holds one graph per phase and becomes one of them when the phase is known.
- ``Map`` is not inlined: the backend compiles its inner graph once and calls it in a loop. Loops
  (``scan``) and branches (``ifelse``) are ops of this kind.

Random draws and gradients. A subgraph that draws (a dropout inside) gives the samples it drew as
hidden outputs, after the ones it was asked for: its gradient, itself an ``OpFromGraph``, takes
them as inputs instead of drawing again, so it uses the very masks of the forward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import is_
from typing import Any

import numpy as np

from ..graph.basic import Apply, Constant, SharedVariable, Variable
from ..graph.fgraph import FunctionGraph
from ..graph.op import Op
from ..graph.source import Scope, build_context, building
from ..graph.traversal import postorder, rebuild
from ..graph.type import TensorType, format_shape

__all__ = ["InnerGraphOp", "Map", "OpFromGraph", "PhaseGraph", "instantiate"]


def _placeholders(variables: Sequence[Variable]) -> list[Variable]:
    """New root variables of the same types and names, for an inner graph's inputs."""
    return [Variable(variable.type, name=variable.name) for variable in variables]


def _inner_graph(inputs: Sequence[Variable], outputs: Sequence[Variable]) -> FunctionGraph:
    """A graph of its own: ``outputs`` rebuilt on placeholders standing for ``inputs``."""
    placeholders = _placeholders(inputs)
    rebuilt, _ = rebuild(list(outputs), dict(zip(inputs, placeholders)))
    return FunctionGraph(placeholders, rebuilt)


def instantiate(fgraph: FunctionGraph, inputs: Sequence[Variable], scope: Scope | None) -> list[Variable]:
    """``fgraph``'s outputs built anew on ``inputs`` (each node copied, even those that do not
    depend on the inputs: a subgraph used twice draws twice), inside ``scope``: each node's own
    scope path goes on below it."""
    memo: dict[Variable, Variable] = dict(zip(fgraph.inputs, inputs))
    scopes: dict[int, Scope | None] = {}

    def moved(inner: Scope | None) -> Scope | None:
        if inner is None:
            return scope
        if id(inner) not in scopes:
            scopes[id(inner)] = Scope(inner.name, moved(inner.parent), inner.source)
        return scopes[id(inner)]

    gradient = build_context.gradient
    for node in postorder(fgraph.outputs, fgraph.inputs):
        new_inputs = [memo.get(variable, variable) for variable in node.inputs]
        op = node.op
        with building(source=node.source, gradient=node.gradient or gradient, scope=moved(node.scope)):
            if type(op).make_node is Op.make_node and all(
                map(is_, [new.type for new in new_inputs], [old.type for old in node.inputs])
            ):  # the same input types: the same output types (see ``rebuild_node``)
                new_node = Apply(op, new_inputs, [output.type for output in node.outputs])
            else:
                new_node = op.make_node(*new_inputs)
        memo.update(zip(node.outputs, new_node.outputs))
    return [memo.get(output, output) for output in fgraph.outputs]


def _compatible(outer: Variable, inner: Variable) -> bool:
    if not isinstance(inner.type, TensorType):
        return outer.type == inner.type
    if not isinstance(outer.type, TensorType) or outer.dtype != inner.dtype or outer.ndim != inner.ndim:
        return False
    return all(a is None or b is None or a == b for a, b in zip(outer.type.shape, inner.type.shape))


def merged_shape(first: tuple, second: tuple) -> tuple | None:
    """The static shape both may have (``None`` where either is unknown), or ``None`` when two
    known lengths differ."""
    if len(first) != len(second):
        return None
    merged = []
    for a, b in zip(first, second):
        if a is not None and b is not None and a != b:
            return None
        merged.append(a if a is not None else b)
    return tuple(merged)


def describe_type(variable: Variable) -> str:
    if isinstance(variable.type, TensorType):
        return f"{variable.dtype} with {variable.ndim} dimension(s) {format_shape(variable.type.shape)}"
    return variable.type.describe()


class InnerGraphOp(Op):
    """An op holding one or more inner graphs (``inner_graphs``), which passes look into. It
    draws random numbers, or depends on the phase, when a node of its inner graphs does."""

    @property
    def inner_graphs(self) -> list[FunctionGraph]:
        raise NotImplementedError

    def with_inner_graphs(self, graphs: Sequence[FunctionGraph]) -> "InnerGraphOp":
        """The same op holding ``graphs`` (the inner graphs, transformed by a pass)."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.name

    def _look_inside(self) -> None:
        nodes = [node for graph in self.inner_graphs for node in graph.nodes]
        self.stochastic = any(node.op.stochastic for node in nodes)
        self.phase_dependent = type(self).phase_dependent or any(node.op.phase_dependent for node in nodes)

    def _check_inputs(self, inputs: Sequence[Variable], placeholders: Sequence[Variable]) -> None:
        if len(inputs) != len(placeholders):
            raise TypeError(f"{self.name} takes {len(placeholders)} input(s), got {len(inputs)}")
        for position, (outer, inner) in enumerate(zip(inputs, placeholders)):
            if not _compatible(outer, inner):
                raise TypeError(
                    f"{self.name}: input {position} ({outer.label()}) is {outer.type.describe()}, "
                    f"but the subgraph takes {inner.type.describe()}"
                )


class OpFromGraph(InnerGraphOp):
    """A graph packaged as one op, called on variables like a function::

        x, y = sg.vector("x"), sg.vector("y")
        scaled_sum = sg.OpFromGraph([x, y], [x * 2 + y], name="scaled_sum")
        z = scaled_sum(a, b)  # one node; differentiable; inlined when compiled

    ``inputs`` are the variables the graph takes (declared inputs, not shared variables or
    constants, which the graph may use freely); ``outputs`` what it gives (a variable or a list).
    It may hold anything a graph holds, dropout and batch normalization included; compiled, it is
    inlined (rewritten, memory-planned and linked with the outer graph). Its gradient is an
    ``OpFromGraph`` too.
    """

    __props__ = ("fgraph", "visible")

    def __init__(self, inputs: Sequence[Variable], outputs: Variable | Sequence[Variable], name: str | None = None):
        single = isinstance(outputs, Variable)
        outputs = [outputs] if single else list(outputs)
        _check_subgraph_inputs(inputs)
        for position, output in enumerate(outputs):
            if not isinstance(output, Variable):
                raise TypeError(f"OpFromGraph: output {position} is {output!r}, not a variable")
        # The samples drawn inside are hidden outputs (see the module's docstring).
        samples = [
            output
            for node in postorder(outputs, inputs)
            if node.op.stochastic
            for output in node.outputs
            if isinstance(output.type, TensorType)
        ]
        self.fgraph = _inner_graph(list(inputs), outputs + samples)
        self.visible = len(outputs)
        self.single = single
        self._name = name or "op_from_graph"
        self._look_inside()

    @classmethod
    def _of(cls, fgraph: FunctionGraph, visible: int, name: str, single: bool = False) -> "OpFromGraph":
        op = cls.__new__(cls)
        op.fgraph, op.visible, op.single, op._name = fgraph, visible, single, name
        op._look_inside()
        return op

    @property
    def name(self) -> str:
        return self._name

    @property
    def inner_graphs(self) -> list[FunctionGraph]:
        return [self.fgraph]

    def with_inner_graphs(self, graphs: Sequence[FunctionGraph]) -> "OpFromGraph":
        (fgraph,) = graphs
        return OpFromGraph._of(fgraph, self.visible, self._name, self.single)

    def make_node(self, *inputs: Variable) -> Apply:
        self._check_inputs(inputs, self.fgraph.inputs)
        return Apply(self, inputs, [output.type for output in self.fgraph.outputs])

    def __call__(self, *inputs: Any) -> Any:
        from .basic import as_tensor

        node = self.make_node(*[as_tensor(variable) for variable in inputs])
        visible = list(node.outputs[: self.visible])
        return visible[0] if self.single or len(visible) == 1 else visible

    def perform(self, *inputs: Any) -> Any:
        raise NotImplementedError(f"{self.name} is inlined when compiled; it has no computation of its own")

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        from .shape import zeros_like

        inner = self.fgraph
        outputs, samples = inner.outputs[: self.visible], inner.outputs[self.visible :]
        cotangents = _placeholders(outputs)
        drawn = _placeholders(samples)
        wanted = [p for p, want in zip(inner.inputs, needed) if want and _differentiable(p)]
        gradients = _input_gradients(outputs, cotangents, wanted)
        # The gradient reads the forward pass's samples instead of drawing again.
        gradients, _ = rebuild(list(gradients), dict(zip(samples, drawn)))
        gradient_op = OpFromGraph._of(
            _inner_graph(inner.inputs + cotangents + drawn, gradients), len(gradients), f"{self.name}_grad"
        )
        given = [g if g is not None else zeros_like(output) for g, output in zip(output_grads, node.outputs)]
        results = gradient_op.make_node(*node.inputs, *given[: self.visible], *node.outputs[self.visible :]).outputs
        found = iter(results)
        return [next(found) if want and _differentiable(p) else None for p, want in zip(inner.inputs, needed)]


def _input_gradients(outputs: Sequence[Variable], cotangents: Sequence[Variable], wanted: list[Variable]) -> list:
    """The gradients of ``wanted`` inner inputs given the outputs' cotangents (zeros where none
    flows). A cotangent adds to what flows into its output from the other outputs."""
    from ..grad import vector_jacobian_product
    from .shape import zeros_like

    if not wanted:
        return []
    gradients = vector_jacobian_product(outputs, cotangents, wanted)
    return [g if g is not None else zeros_like(p) for g, p in zip(gradients, wanted)]


def _differentiable(variable: Variable) -> bool:
    return isinstance(variable.type, TensorType) and variable.type.is_float


def _check_subgraph_inputs(inputs: Sequence[Variable]) -> None:
    if isinstance(inputs, Variable) or not isinstance(inputs, (list, tuple)):
        raise TypeError("OpFromGraph takes a list of input variables, e.g. sg.OpFromGraph([x, y], [x * y])")
    for position, variable in enumerate(inputs):
        if not isinstance(variable, Variable) or isinstance(variable, (SharedVariable, Constant)):
            raise TypeError(
                f"OpFromGraph: input {position} must be a declared variable such as sg.vector('x'), not "
                f"{variable!r} (shared variables and constants may be used inside without being inputs)"
            )


class PhaseGraph(InnerGraphOp):
    """One graph per phase on the same inputs: what batch normalization is. The ``'train'`` graph
    may hold updates (running statistics), which become automatic updates of the function; once
    the phase is known, the node becomes that phase's graph. Its gradient is a ``PhaseGraph`` of
    the two graphs' gradients, so it is differentiable to any order in both phases."""

    __props__ = ("train", "predict", "_name")
    phase_dependent = True

    def __init__(self, train: FunctionGraph, predict: FunctionGraph, name: str = "phase_graph"):
        self.train = train
        self.predict = predict
        self._name = name
        self._look_inside()
        if self.stochastic:
            raise ValueError(f"{name}: a phase-dependent subgraph cannot draw random numbers")

    @classmethod
    def build(
        cls,
        inputs: Sequence[Variable],
        train_outputs: Sequence[Variable],
        predict_outputs: Sequence[Variable],
        train_updates: Sequence[tuple[SharedVariable, Variable]] = (),
        name: str = "phase_graph",
    ) -> "PhaseGraph":
        """From graphs built on ``inputs``, a ``PhaseGraph`` holding copies on placeholders."""
        placeholders = _placeholders(inputs)
        replacements = dict(zip(inputs, placeholders))
        train, _ = rebuild(list(train_outputs) + [value for _, value in train_updates], replacements)
        predict, _ = rebuild(list(predict_outputs), replacements)
        count = len(predict_outputs)
        targets = [shared for shared, _ in train_updates]
        return cls(
            FunctionGraph(placeholders, train[:count], list(zip(targets, train[count:]))),
            FunctionGraph(placeholders, predict),
            name,
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def inner_graphs(self) -> list[FunctionGraph]:
        return [self.train, self.predict]

    def with_inner_graphs(self, graphs: Sequence[FunctionGraph]) -> "PhaseGraph":
        train, predict = graphs
        return PhaseGraph(train, predict, self._name)

    def make_node(self, *inputs: Variable) -> Apply:
        self._check_inputs(inputs, self.predict.inputs)
        return Apply(self, inputs, [output.type for output in self.predict.outputs])

    def specialize(self, node: Apply, phase: str) -> tuple[list[Variable], list]:
        graph = self.train if phase == "train" else self.predict
        scope = Scope(self.name, node.scope, node.source)
        values = instantiate(FunctionGraph(graph.inputs, graph.computed), node.inputs, scope)
        count = len(graph.outputs)
        return values[:count], list(zip([shared for shared, _ in graph.updates], values[count:]))

    def perform(self, *inputs: Any) -> Any:
        raise NotImplementedError(f"{self.name} computes only once its phase is known")

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        from .shape import zeros_like

        cotangents = _placeholders(self.predict.outputs)
        graphs = [_gradient_graph(graph, cotangents, needed) for graph in (self.train, self.predict)]
        gradient_op = PhaseGraph(graphs[0], graphs[1], f"{self.name}_grad")
        given = [g if g is not None else zeros_like(output) for g, output in zip(output_grads, node.outputs)]
        results = iter(gradient_op.make_node(*node.inputs, *given).outputs)
        return [next(results) if want and _differentiable(p) else None for p, want in zip(self.predict.inputs, needed)]


def _gradient_graph(graph: FunctionGraph, cotangents: Sequence[Variable], needed: Sequence[bool]) -> FunctionGraph:
    """The gradient of ``graph``'s outputs given ``cotangents`` with respect to its wanted float
    inputs, as a graph on ``graph.inputs + cotangents``."""
    wanted = [p for p, want in zip(graph.inputs, needed) if want and _differentiable(p)]
    gradients = _input_gradients(graph.outputs, cotangents, wanted)
    # The cotangents are shared by both phases' graphs: each graph gets its own placeholders.
    return _inner_graph(list(graph.inputs) + list(cotangents), list(gradients))


class Map(InnerGraphOp):
    """``(count, *context) -> outputs``: the inner graph ``(index, *context) -> values`` computed
    for each index in ``range(count)``; each output is the values stacked along a new first axis,
    or summed (``sum_like[k]``: the position among the context of the input whose shape and dtype
    the sum has, ``None`` to stack). The backend compiles the inner graph once and loops."""

    __props__ = ("fgraph", "sum_like")

    def __init__(self, fgraph: FunctionGraph, sum_like: Sequence[int | None] | None = None):
        self.fgraph = fgraph
        self.sum_like = tuple(sum_like) if sum_like is not None else (None,) * len(fgraph.outputs)
        self._look_inside()
        if self.stochastic:
            raise ValueError("map: the inner graph of a loop cannot draw random numbers yet")

    @classmethod
    def over(cls, index: Variable, outputs: Sequence[Variable], count: Variable) -> list[Variable]:
        """``outputs`` (expressions of the int64 scalar ``index``) for each index in
        ``range(count)``, stacked. What does not depend on ``index`` is computed once, outside."""
        context = _context(index, outputs)
        placeholders = _placeholders([index] + context)
        rebuilt, _ = rebuild(list(outputs), dict(zip([index] + context, placeholders)))
        op = cls(FunctionGraph(placeholders, rebuilt))
        results = op.make_node(count, *context).outputs
        return list(results)

    @property
    def inner_graphs(self) -> list[FunctionGraph]:
        return [self.fgraph]

    def with_inner_graphs(self, graphs: Sequence[FunctionGraph]) -> "Map":
        (fgraph,) = graphs
        return Map(fgraph, self.sum_like)

    @property
    def name(self) -> str:
        return "map"

    def make_node(self, count: Variable, *context: Variable) -> Apply:
        if count.ndim != 0 or count.type.numpy_dtype.kind not in "iu":
            raise TypeError(f"map: the count must be an integer scalar, not {count.type.describe()}")
        self._check_inputs(context, self.fgraph.inputs[1:])
        static = count.data.item() if isinstance(count, Constant) else None
        types = []
        for output, like in zip(self.fgraph.outputs, self.sum_like):
            if like is None:
                types.append(TensorType(output.dtype, (static,) + output.type.shape))
            else:
                types.append(context[like].type)
        return Apply(self, [count, *context], types)

    def kernel(self, compile_inner: Callable[[FunctionGraph], Callable[..., Sequence[Any]]]) -> Callable[..., Any]:
        """The loop, around the inner graph compiled by the backend (``compile_inner``)."""
        step = compile_inner(self.fgraph)
        outputs, sum_like = self.fgraph.outputs, self.sum_like
        several = len(outputs) > 1

        def run(count: Any, *context: Any) -> Any:
            count = int(count)
            if count < 0:
                raise ValueError(f"map: the count must not be negative, got {count}")
            results: list[Any] = []
            for index in range(count):
                values = step(np.int64(index), *context)
                if index == 0:
                    results = [
                        np.array(value, copy=True) if like is not None else _stacked(value, count)
                        for value, like in zip(values, sum_like)
                    ]
                    continue
                for result, value, like in zip(results, values, sum_like):
                    if like is None:
                        result[index] = value
                    else:
                        result += value
            if count == 0:
                results = [_empty(output, like, context) for output, like in zip(outputs, sum_like)]
            return tuple(results) if several else results[0]

        return run

    def perform(self, count: Any, *context: Any) -> Any:
        raise NotImplementedError("map runs through the backend's compiled inner graph (Map.kernel)")

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        from ..grad import grad
        from .shape import zeros_like
        from .subtensor import subtensor

        inner = self.fgraph
        index, context = inner.inputs[0], inner.inputs[1:]
        given = [g if g is not None else zeros_like(output) for g, output in zip(output_grads, node.outputs)]
        whole = _placeholders(given)
        per_step = [subtensor(g, index) if like is None else g for g, like in zip(whole, self.sum_like)]
        positions = [k for k, (p, want) in enumerate(zip(context, needed[1:])) if want and _differentiable(p)]
        if not positions:
            return [None] * len(node.inputs)
        known = dict(zip(inner.outputs, per_step))
        gradients = grad(None, [context[k] for k in positions], known_grads=known, disconnected_inputs="ignore")
        gradient_op = Map(FunctionGraph([index, *context, *whole], list(gradients)), positions)
        results = iter(gradient_op.make_node(node.inputs[0], *node.inputs[1:], *given).outputs)
        return [None] + [next(results) if k in positions else None for k in range(len(context))]


def _stacked(value: Any, count: int) -> np.ndarray:
    value = np.asarray(value)
    result = np.empty((count,) + value.shape, dtype=value.dtype)
    result[0] = value
    return result


def _empty(output: Variable, like: int | None, context: Sequence[Any]) -> np.ndarray:
    if like is not None:
        return np.zeros(np.shape(context[like]), dtype=output.type.numpy_dtype)
    trailing = tuple(length or 0 for length in output.type.shape)
    return np.zeros((0,) + trailing, dtype=output.type.numpy_dtype)


def _context(index: Variable, outputs: Sequence[Variable]) -> list[Variable]:
    """What the part of ``outputs`` that depends on ``index`` reads from outside it: the inputs
    of a loop body (constants stay inside)."""
    nodes = postorder(outputs)
    depends = {id(index)}
    inside: list[Apply] = []
    for node in nodes:
        if any(id(variable) in depends for variable in node.inputs):
            inside.append(node)
            depends.update(id(output) for output in node.outputs)
    found: dict[int, Variable] = {}
    for node in inside:
        for variable in node.inputs:
            if id(variable) not in depends and not isinstance(variable, Constant):
                found.setdefault(id(variable), variable)
    for output in outputs:
        if id(output) not in depends and not isinstance(output, Constant):
            found.setdefault(id(output), output)
    return list(found.values())
