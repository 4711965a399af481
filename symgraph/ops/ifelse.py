"""Branches: ``sg.ifelse(condition, then_branch, else_branch)`` and the ``IfElse`` op.

``IfElse`` holds two inner graphs on the same inputs (its *context*), of which only the one the
condition chooses is computed: the backend compiles both once and runs one per call. What
``ifelse`` moves into a branch is what only that branch needs: the nodes its outputs depend on
that neither the condition nor the other branch needs. Random draws stay outside (drawn whichever
branch is taken), so that a sample used elsewhere too is one sample. The gradient is an
``IfElse`` of the two branches' gradients: it flows through the chosen branch only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import DTypeError, ShapeError
from ..graph.basic import Apply, Constant, Variable
from ..graph.fgraph import FunctionGraph
from ..graph.source import in_scope
from ..graph.traversal import postorder, rebuild
from ..graph.type import TensorType
from .basic import as_tensor, cast
from .subgraph import InnerGraphOp, _inner_graph, _placeholders, describe_type, merged_shape

__all__ = ["IfElse", "ifelse"]


class IfElse(InnerGraphOp):
    """``(condition, *context) -> outputs``: ``then_graph`` of the context when the scalar
    ``condition`` is true (non-zero), else ``else_graph``; only that one is computed."""

    __props__ = ("then_graph", "else_graph", "_name")

    def __init__(self, then_graph: FunctionGraph, else_graph: FunctionGraph, name: str = "ifelse"):
        if len(then_graph.inputs) != len(else_graph.inputs) or len(then_graph.outputs) != len(else_graph.outputs):
            raise ValueError(f"{name}: the two branches must take the same inputs and give as many outputs")
        for position, (first, second) in enumerate(zip(then_graph.outputs, else_graph.outputs)):
            _check_pair(first, second, position, name)
        self.then_graph = then_graph
        self.else_graph = else_graph
        self._name = name
        self._look_inside()

    @property
    def name(self) -> str:
        return self._name

    @property
    def inner_graphs(self) -> list[FunctionGraph]:
        return [self.then_graph, self.else_graph]

    def with_inner_graphs(self, graphs: Sequence[FunctionGraph]) -> "IfElse":
        then_graph, else_graph = graphs
        return IfElse(then_graph, else_graph, self._name)

    def make_node(self, condition: Variable, *context: Variable) -> Apply:
        if not isinstance(condition.type, TensorType) or condition.ndim != 0:
            raise ShapeError(f"{self.name}: the condition must be a scalar, not {condition.type.describe()}")
        self._check_inputs(context, self.then_graph.inputs)
        types = []
        for first, second in zip(self.then_graph.outputs, self.else_graph.outputs):
            shape = merged_shape(first.type.shape, second.type.shape)
            if shape is None:  # known lengths that differ: the output's length is known at run time
                shape = tuple(a if a == b else None for a, b in zip(first.type.shape, second.type.shape))
            types.append(TensorType(first.dtype, shape))
        return Apply(self, [condition, *context], types)

    def perform(self, *inputs: Any) -> Any:
        raise NotImplementedError(f"{self.name} runs through a backend (IfElse.kernel)")

    def kernel(self, compile_inner: Callable[[FunctionGraph], Callable[..., Sequence[Any]]]) -> Callable[..., Any]:
        """The branch, around the two branches compiled by the backend (``compile_inner``)."""
        then_branch = compile_inner(self.then_graph)
        else_branch = compile_inner(self.else_graph)
        single = len(self.then_graph.outputs) == 1

        def run(condition: Any, *context: Any) -> Any:
            values = then_branch(*context) if condition else else_branch(*context)
            return values[0] if single else tuple(values)

        return run

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        from ..grad import vector_jacobian_product
        from .shape import zeros_like

        condition, *context = node.inputs
        wanted = [k for k, want in enumerate(needed[1:]) if want and _differentiable(context[k])]
        given = [k for k, g in enumerate(output_grads) if g is not None and _differentiable(node.outputs[k])]
        if not wanted or not given:
            return [None] * len(node.inputs)
        graphs = []
        for graph in (self.then_graph, self.else_graph):
            cotangents = [Variable(node.outputs[k].type, name=f"d{k}") for k in given]
            gradients = vector_jacobian_product(
                [graph.outputs[k] for k in given], cotangents, [graph.inputs[k] for k in wanted]
            )
            gradients = [
                cast(g, graph.inputs[k].dtype) if g is not None else zeros_like(graph.inputs[k])
                for k, g in zip(wanted, gradients)
            ]
            graphs.append(_inner_graph(list(graph.inputs) + cotangents, gradients))
        gradient_op = IfElse(graphs[0], graphs[1], f"{self.name}_grad")
        results = gradient_op.make_node(condition, *context, *[output_grads[k] for k in given]).outputs
        grads: list[Any] = [None] * len(node.inputs)
        for k, result in zip(wanted, results):
            grads[1 + k] = result
        return grads


def _differentiable(variable: Variable) -> bool:
    return isinstance(variable.type, TensorType) and variable.type.is_float


def _check_pair(first: Variable, second: Variable, position: int, name: str) -> None:
    if (
        not isinstance(first.type, TensorType)
        or not isinstance(second.type, TensorType)
        or first.dtype != second.dtype
        or first.ndim != second.ndim
    ):
        raise DTypeError(
            f"{name}: output {position} of the two branches must have one dtype and number of dimensions; "
            f"the then branch gives {describe_type(first)}, the else branch {describe_type(second)}"
        )


def ifelse(condition: Any, then_branch: Any, else_branch: Any, name: str | None = None) -> Any:
    """``then_branch`` if the scalar ``condition`` is true (non-zero), else ``else_branch``,
    computing only the branch chosen (Theano's lazy ``ifelse``).

    Each branch is a variable or a list of them, of the same length, dtypes and numbers of
    dimensions. The gradient flows through the chosen branch only.

    >>> x = sg.scalar('x')
    >>> safe_log = sg.ifelse(x > 0, sg.log(x), sg.constant(0.0))
    """
    name = name or "ifelse"
    single = not isinstance(then_branch, (list, tuple))
    if single != (not isinstance(else_branch, (list, tuple))):
        raise TypeError(f"{name}: give both branches as one variable each, or both as lists")
    thens = [as_tensor(v) for v in ([then_branch] if single else then_branch)]
    elses = [as_tensor(v) for v in ([else_branch] if single else else_branch)]
    if len(thens) != len(elses) or not thens:
        raise ValueError(
            f"{name}: the branches give {len(thens)} and {len(elses)} outputs; they must give as many (at least one)"
        )
    for position, (first, second) in enumerate(zip(thens, elses)):
        _check_pair(first, second, position, name)
    condition = as_tensor(condition)
    if not isinstance(condition.type, TensorType) or condition.ndim != 0:
        raise ShapeError(f"{name}: the condition must be a scalar, not {condition.type.describe()}")
    with in_scope(name):
        context, branches = _branches(condition, thens, elses)
        node = IfElse(branches[0], branches[1], name).make_node(condition, *context)
    outputs = list(node.outputs)
    return outputs[0] if single else outputs


def _branches(
    condition: Variable, thens: list[Variable], elses: list[Variable]
) -> tuple[list[Variable], list[FunctionGraph]]:
    """The context both branches read, and each branch as a graph on it: the nodes only that
    branch needs (random draws, and what they need, stay outside)."""
    then_nodes, else_nodes = postorder(thens), postorder(elses)
    outside = {id(n) for n in postorder([condition])}
    then_ids = {id(n) for n in then_nodes}
    outside |= {id(n) for n in else_nodes if id(n) in then_ids}
    for node in then_nodes + else_nodes:
        if node.op.stochastic and id(node) not in outside:
            outside |= {id(n) for n in postorder(node.outputs)}
    inner_ids = {id(o) for n in then_nodes + else_nodes if id(n) not in outside for o in n.outputs}
    found: dict[int, Variable] = {}
    for node in then_nodes + else_nodes:
        if id(node) in outside:
            continue
        for variable in node.inputs:
            if id(variable) not in inner_ids and not isinstance(variable, Constant):
                found.setdefault(id(variable), variable)
    for output in thens + elses:
        if id(output) not in inner_ids and not isinstance(output, Constant):
            found.setdefault(id(output), output)
    context = list(found.values())
    graphs = []
    for outputs in (thens, elses):
        placeholders = _placeholders(context)
        rebuilt, _ = rebuild(outputs, dict(zip(context, placeholders)))
        graphs.append(FunctionGraph(placeholders, rebuilt))
    return context, graphs
