"""``sg.export_onnx``: a predict function as an ONNX model, for runtimes without Python.

What is exported is the compiled graph (``f.graph``: phases specialized, rewrites done), with the
current values of the shared variables as the model's initializers. First, every node that does
not depend on an input is computed now, with its op's own computation (the batch-norm scale of
the predict phase, the kernel size of a convolution...), so that what is left reads the inputs.
Then each node is translated by a table keyed by op class (``onnx_nodes``, as a backend's kernel
table is): ``Im2Col`` followed by ``ConvContraction('output')`` becomes one ``Conv``. A loop
(``Scan``) becomes a ``Loop`` and a branch (``IfElse``) an ``If``, their step graph and branches
translated by an inner exporter into ONNX graphs of their own, which read what the step takes
from outside by its name in the outer graph. Axes of unknown length stay dynamic (the first one
is named ``batch``), so one model takes any batch size.

It needs the ``onnx`` extra (``pip install "symgraph[onnx]"``: ``onnx``, and ``onnxruntime`` to
run the result).
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .compile.function import Function
from .errors import ExportError
from .graph.basic import Apply, Constant, SharedVariable, Variable
from .graph.fgraph import FunctionGraph
from .graph.op import Op
from .graph.source import describe
from .nn.activations import LogSoftmax, Softmax, relu, sigmoid, softplus
from .nn.conv import ConvContraction, Im2Col, dilated, resolve_padding
from .nn.dropout import CheckProbability
from .nn.pool import AvgPool2d, MaxPool2d
from .ops import elemwise
from .ops.basic import Cast
from .ops.elemwise import Elemwise
from .ops.ifelse import IfElse
from .ops.linalg import Dot, Matmul, Tensordot
from .ops.reduce import ArgReduce, Reduce
from .ops.scan import Scan
from .ops.shape import (
    Alloc,
    ARange,
    BroadcastTo,
    DimShuffle,
    Join,
    Reshape,
    Shape,
    ShapeAt,
    SpecifyLength,
    SpecifyShape,
    Stack,
)
from .ops.subtensor import Subtensor

__all__ = ["export_onnx", "onnx_nodes"]

OPSET = 18
_INT64_MAX, _INT64_MIN = 2**63 - 1, -(2**63)


def _onnx() -> Any:
    try:
        import onnx
        import onnx.helper
        import onnx.numpy_helper
    except ImportError:
        raise ImportError(
            'sg.export_onnx needs the onnx extra: pip install "symgraph[onnx]" (onnx, and onnxruntime to run the model)'
        ) from None
    return onnx


def export_onnx(
    function: Function, path: str | os.PathLike | None, float_dtype: str | None = None, batch_name: str = "batch"
) -> Any:
    """Write the compiled ``function`` (a predict function: no updates, no random draws) as an ONNX
    model to ``path`` (``None``: do not write), and return the ``onnx.ModelProto``.

    Shared variables become initializers holding their current values. Every axis whose length
    is unknown stays dynamic; the first axis is called ``batch_name``. ``float_dtype='float32'``
    makes every float of the model float32 (onnxruntime convolves and pools float32 only). A
    function with updates or random nodes, or an op that has no ONNX form, raises
    ``sg.errors.ExportError`` naming it.

    >>> sg.export_onnx(predict, "model.onnx")
    """
    onnx = _onnx()
    if not isinstance(function, Function):
        raise TypeError(f"sg.export_onnx takes a compiled function (sg.function), not {function!r}")
    for node in function.nodes:
        if node.op.stochastic:
            raise ExportError(
                f"function {function.name} draws random numbers ({node.op.name}, built at {describe(node.source)}): "
                "an exported model computes without randomness; compile it with phase='predict'"
            )
    if function.updates:
        shared, _ = function.updates[0]
        raise ExportError(
            f"function {function.name} updates {len(function.updates)} shared variable(s) ({shared.label()} first): "
            "only a predict function (compiled with phase='predict' and no updates) can be exported"
        )
    exporter = _Exporter(onnx, function, batch_name, float_dtype)
    model = exporter.model()
    onnx.checker.check_model(model)
    if path is not None:
        onnx.save_model(model, os.fspath(path))
    return model


class _Exporter:
    """Builds the ONNX graph of one function, or of a loop's step or a branch inside it (an inner
    exporter: its own nodes, the outer one's names for what it reads from outside, one set of
    initializers and of fresh names for the whole model): names, initializers and nodes."""

    def __init__(
        self,
        onnx: Any,
        function: Function | None,
        batch_name: str,
        float_dtype: str | None,
        order: Sequence[Apply] | None = None,
        outer: _Exporter | None = None,
    ):
        self.onnx, self.helper = onnx, onnx.helper
        self.float_dtype = np.dtype(float_dtype) if float_dtype is not None else None
        if self.float_dtype is not None and self.float_dtype.kind != "f":
            raise ValueError(f"float_dtype must be a float dtype such as 'float32', not {float_dtype!r}")
        self.function, self.batch_name = function, batch_name
        self.order: Sequence[Apply] = order if order is not None else function.nodes  # type: ignore[union-attr]
        self.names: dict[Variable, str] = {}
        self.values: dict[Variable, np.ndarray] = {}  # what is known before any input is given
        self.initializers: list = outer.initializers if outer is not None else []
        self.nodes: list = []
        self._numbers: Any = outer._numbers if outer is not None else itertools.count(1)
        self.clients: dict[Variable, list[Apply]] = {}
        for node in self.order:
            for variable in node.inputs:
                self.clients.setdefault(variable, []).append(node)

    def model(self) -> Any:
        helper = self.helper
        assert self.function is not None
        inputs = []
        for position, variable in enumerate(self.function.inputs):
            name = self.names[variable] = _input_name(variable, position, self.names.values())
            inputs.append(helper.make_tensor_value_info(name, self.dtype(variable.dtype), self.dims(variable, name)))
        self.translate()
        outputs = []
        for position, variable in enumerate(self.function.outputs):
            name = f"output{position}"
            self.emit("Identity", [self.name(variable)], [name])
            outputs.append(helper.make_tensor_value_info(name, self.dtype(variable.dtype), self.dims(variable, name)))
        graph = helper.make_graph(self.nodes, self.function.name, inputs, outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="symgraph")
        model.ir_version = 8
        return model

    def translate(self) -> None:
        """The ONNX nodes of every node whose results are not known before any input is given."""
        self.fold()
        for node in self.order:
            if not all(output in self.values for output in node.outputs):
                onnx_nodes(node.op, node, self)

    def inner(self, fgraph: FunctionGraph, reads: dict[Variable, str]) -> _Exporter:
        """An exporter of ``fgraph``'s nodes (a loop's step, a branch), its inputs named ``reads``."""
        float_dtype = None if self.float_dtype is None else self.float_dtype.name
        inner = _Exporter(self.onnx, None, self.batch_name, float_dtype, fgraph.order, self)
        inner.names.update(reads)
        return inner

    def subgraph(self, name: str, inputs: Sequence[tuple[str, Any]], outputs: Sequence[tuple[str, Any]]) -> Any:
        """This (inner) exporter's nodes as a graph of inputs and outputs given as ``(name,
        variable)``, or ``(name, dtype)`` for scalars."""
        helper = self.helper

        def described(pairs: Sequence[tuple[str, Any]]) -> list:
            return [
                helper.make_tensor_value_info(item, self.dtype(of.dtype), list(of.type.shape))
                if isinstance(of, Variable)
                else helper.make_tensor_value_info(item, self.dtype(of), [])
                for item, of in pairs
            ]

        return helper.make_graph(self.nodes, self.fresh(_identifier(name)), described(inputs), described(outputs))

    def fold(self) -> None:
        """Compute now every node that reads no input (constants, shared values, their shapes)."""
        for node in self.order:
            for variable in node.inputs:
                if isinstance(variable, Constant):
                    self.values[variable] = variable.data
                elif isinstance(variable, SharedVariable):
                    self.values[variable] = variable.get_value(borrow=True)
            if not all(variable in self.values for variable in node.inputs):
                continue
            try:
                with np.errstate(all="ignore"):
                    results = node.op.perform(*[self.values[variable] for variable in node.inputs])
            except Exception:
                continue
            results = results if len(node.outputs) > 1 else (results,)
            for output, result in zip(node.outputs, results):
                self.values[output] = np.asarray(result, dtype=output.type.numpy_dtype)

    # --- helpers for the table ----------------------------------------------------------------
    def numpy_dtype(self, dtype: Any) -> np.dtype:
        """The dtype the model computes ``dtype`` values in (``float_dtype`` for floats, if given)."""
        dtype = np.dtype(dtype)
        return self.float_dtype if self.float_dtype is not None and dtype.kind == "f" else dtype

    def dtype(self, dtype: Any) -> int:
        return self.helper.np_dtype_to_tensor_dtype(self.numpy_dtype(dtype))

    def dims(self, variable: Variable, name: str) -> list:
        return [
            length if length is not None else self.batch_name if axis == 0 else f"{name}_axis{axis}"
            for axis, length in enumerate(variable.type.shape)
        ]

    def fresh(self, hint: str = "t") -> str:
        return f"{hint}{next(self._numbers)}"

    def name(self, variable: Variable) -> str:
        """The ONNX name of a variable: an input, a computed value, or an initializer."""
        if variable not in self.names:
            if variable not in self.values:
                raise ExportError(f"{variable.label()} is used before it is computed")  # cannot happen in order
            self.names[variable] = self.constant(self.values[variable], variable.name or "c")
        return self.names[variable]

    def constant(self, value: Any, hint: str = "c") -> str:
        name = self.fresh(_identifier(hint))
        value = np.asarray(value)
        value = value.astype(self.numpy_dtype(value.dtype), copy=False)
        self.initializers.append(self.onnx.numpy_helper.from_array(value, name))
        return name

    def known(self, variable: Variable) -> np.ndarray | None:
        return self.values.get(variable)

    def emit(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str] | None = None, **attributes: Any) -> str:
        outputs = list(outputs) if outputs is not None else [self.fresh(op_type.lower())]
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outputs, **attributes))
        return outputs[0]

    def output(self, node: Apply, index: int = 0) -> str:
        variable = node.outputs[index]
        if variable not in self.names:
            self.names[variable] = self.fresh("v")
        return self.names[variable]

    def bind(self, node: Apply, name: str) -> None:
        """``name`` (made by the last node emitted) is the node's output."""
        self.names[node.outputs[0]] = name

    def cast(self, name: str, source: Any, target: Any) -> str:
        if self.numpy_dtype(source) == self.numpy_dtype(target):
            return name
        return self.emit("Cast", [name], to=self.dtype(target))

    def ints(self, values: Sequence[int]) -> str:
        return self.constant(np.array(values, dtype=np.int64), "ints")


def _input_name(variable: Variable, position: int, taken: Any) -> str:
    name = _identifier(variable.name) if variable.name else f"input{position}"
    return name if name not in set(taken) else f"{name}_{position}"


def _identifier(text: str) -> str:
    cleaned = "".join(character if character.isalnum() or character == "_" else "_" for character in text)
    return cleaned or "c"


def _refuse(node: Apply, why: str = "") -> ExportError:
    return ExportError(
        f"{node.op.name} has no ONNX form{why} (the node built at {describe(node.source)}); export a graph "
        "without it, or add an entry for its class to symgraph.onnx.onnx_nodes"
    )


# --- the table ------------------------------------------------------------------------------------------
@functools.singledispatch
def onnx_nodes(op: Op, node: Apply, exporter: _Exporter) -> None:
    """Emit the ONNX nodes computing ``node`` (dispatching on its op's class)."""
    raise _refuse(node)


_ELEMENTWISE = {
    elemwise.add: "Add", elemwise.sub: "Sub", elemwise.mul: "Mul", elemwise.true_div: "Div",
    elemwise.neg: "Neg", elemwise.abs: "Abs", elemwise.sign: "Sign", elemwise.exp: "Exp",
    elemwise.log: "Log", elemwise.sqrt: "Sqrt", elemwise.sin: "Sin", elemwise.cos: "Cos",
    elemwise.tanh: "Tanh", elemwise.floor: "Floor", elemwise.ceil: "Ceil", elemwise.round_half_to_even: "Round",
    elemwise.maximum: "Max", elemwise.minimum: "Min", elemwise.pow: "Pow", elemwise.eq: "Equal",
    elemwise.lt: "Less", elemwise.le: "LessOrEqual", elemwise.gt: "Greater",
    elemwise.ge: "GreaterOrEqual", relu: "Relu", sigmoid: "Sigmoid", softplus: "Softplus",
}  # fmt: skip


@onnx_nodes.register
def _elemwise(op: Elemwise, node: Apply, exporter: _Exporter) -> None:
    dtypes = op.loop_dtypes([variable.type.numpy_dtype for variable in node.inputs])
    operands = [
        exporter.cast(exporter.name(variable), variable.dtype, dtype) for variable, dtype in zip(node.inputs, dtypes)
    ]
    boolean = all(np.dtype(dtype) == np.bool_ for dtype in dtypes[:-1])
    if op in _ELEMENTWISE:
        result = exporter.emit(_ELEMENTWISE[op], operands)
    elif op is elemwise.square:
        result = exporter.emit("Mul", [operands[0], operands[0]])
    elif op is elemwise.log1p:
        result = exporter.emit("Log", [exporter.emit("Add", [operands[0], exporter.constant(np.ones((), dtypes[0]))])])
    elif op is elemwise.expm1:
        result = exporter.emit("Sub", [exporter.emit("Exp", operands), exporter.constant(np.ones((), dtypes[0]))])
    elif op is elemwise.neq:
        result = exporter.emit("Not", [exporter.emit("Equal", operands)])
    elif op is elemwise.clip:
        result = exporter.emit("Min", [exporter.emit("Max", operands[:2]), operands[2]])
    elif op is elemwise._where_op:
        condition = exporter.cast(exporter.name(node.inputs[0]), node.inputs[0].dtype, np.bool_)
        result = exporter.emit("Where", [condition, *operands[1:]])
    elif op in (elemwise.and_, elemwise.or_, elemwise.xor):
        kinds = {elemwise.and_: "And", elemwise.or_: "Or", elemwise.xor: "Xor"}
        result = exporter.emit(kinds[op] if boolean else f"Bitwise{kinds[op]}", operands)
    elif op is elemwise.invert:
        result = exporter.emit("Not" if boolean else "BitwiseNot", operands)
    elif op is elemwise.floor_div and np.dtype(dtypes[0]).kind == "f":
        result = exporter.emit("Floor", [exporter.emit("Div", operands)])
    elif op is elemwise.mod and np.dtype(dtypes[0]).kind == "f":
        quotient = exporter.emit("Floor", [exporter.emit("Div", operands)])
        result = exporter.emit("Sub", [operands[0], exporter.emit("Mul", [quotient, operands[1]])])
    else:
        raise _refuse(node, f" for operands of dtypes {', '.join(v.dtype for v in node.inputs)}")
    exporter.bind(node, exporter.cast(result, dtypes[-1], node.outputs[0].dtype))


@onnx_nodes.register
def _cast(op: Cast, node: Apply, exporter: _Exporter) -> None:
    exporter.emit("Cast", [exporter.name(node.inputs[0])], [exporter.output(node)], to=exporter.dtype(op.dtype))


@onnx_nodes.register(CheckProbability)
@onnx_nodes.register(SpecifyLength)
@onnx_nodes.register(SpecifyShape)
def _identity(op: Op, node: Apply, exporter: _Exporter) -> None:
    exporter.emit("Identity", [exporter.name(node.inputs[0])], [exporter.output(node)])


@onnx_nodes.register(Dot)
@onnx_nodes.register(Matmul)
def _matmul(op: Op, node: Apply, exporter: _Exporter) -> None:
    dtype = node.outputs[0].dtype
    operands = [exporter.cast(exporter.name(v), v.dtype, dtype) for v in node.inputs]
    scaling = any(v.ndim == 0 for v in node.inputs)  # numpy.dot with a number multiplies
    exporter.emit("Mul" if scaling else "MatMul", operands, [exporter.output(node)])


@onnx_nodes.register
def _tensordot(op: Tensordot, node: Apply, exporter: _Exporter) -> None:
    """One ``Einsum``: each axis a letter, the paired axes sharing theirs."""
    x, y = node.inputs
    letters = iter("abcdefghijklmnopqrstuvwxyz")
    x_letters = [next(letters) for _ in range(x.ndim)]
    y_letters = [next(letters) for _ in range(y.ndim)]
    for x_axis, y_axis in zip(op.x_axes, op.y_axes):
        y_letters[y_axis] = x_letters[x_axis]
    free = [x_letters[a] for a in range(x.ndim) if a not in op.x_axes]
    free += [y_letters[a] for a in range(y.ndim) if a not in op.y_axes]
    equation = f"{''.join(x_letters)},{''.join(y_letters)}->{''.join(free)}"
    dtype = node.outputs[0].dtype
    operands = [exporter.cast(exporter.name(v), v.dtype, dtype) for v in node.inputs]
    exporter.emit("Einsum", operands, [exporter.output(node)], equation=equation)


@onnx_nodes.register
def _reduce(op: Reduce, node: Apply, exporter: _Exporter) -> None:
    (x,) = node.inputs
    operand = exporter.cast(exporter.name(x), x.dtype, node.outputs[0].dtype)
    if not op.axes:
        exporter.emit("Identity", [operand], [exporter.output(node)])
        return
    kind = {"sum": "ReduceSum", "prod": "ReduceProd", "max": "ReduceMax", "min": "ReduceMin"}[op.kind]
    axes = exporter.ints(op.axes)
    exporter.emit(kind, [operand, axes], [exporter.output(node)], keepdims=int(op.keepdims))


@onnx_nodes.register
def _arg_reduce(op: ArgReduce, node: Apply, exporter: _Exporter) -> None:
    operand, axis = exporter.name(node.inputs[0]), op.axis
    if axis is None:
        operand, axis = exporter.emit("Reshape", [operand, exporter.ints([-1])]), 0
    kind = "ArgMax" if op.kind == "argmax" else "ArgMin"
    result = exporter.emit(kind, [operand], axis=axis, keepdims=int(op.keepdims), select_last_index=0)
    if op.axis is None and op.keepdims:
        result = exporter.emit("Reshape", [result, exporter.ints([1] * node.inputs[0].ndim)])
    exporter.bind(node, result)


@onnx_nodes.register(Softmax)
@onnx_nodes.register(LogSoftmax)
def _softmax(op: Op, node: Apply, exporter: _Exporter) -> None:
    kind = "Softmax" if isinstance(op, Softmax) else "LogSoftmax"
    exporter.emit(kind, [exporter.name(node.inputs[0])], [exporter.output(node)], axis=op.axis)  # type: ignore[attr-defined]


@onnx_nodes.register
def _im2col(op: Im2Col, node: Apply, exporter: _Exporter) -> None:
    # Nothing of its own: the convolution that reads it is one ONNX Conv (below).
    for client in exporter.clients.get(node.outputs[0], []):
        if not (
            isinstance(client.op, ConvContraction)
            and client.op.result == "output"
            and client.inputs[1] is node.outputs[0]
        ):
            raise _refuse(node, f" when read by {client.op.name} rather than a convolution")


@onnx_nodes.register
def _conv(op: ConvContraction, node: Apply, exporter: _Exporter) -> None:
    filters, columns = node.inputs
    owner = columns.owner
    if op.result != "output" or owner is None or not isinstance(owner.op, Im2Col):
        raise _refuse(node, " unless it is a convolution (the contraction of an im2col)")
    x, kernel = owner.inputs
    known = exporter.known(kernel)
    dilation = tuple(owner.op.dilation)
    attributes: dict[str, Any] = {"strides": list(owner.op.stride), "dilations": list(dilation)}
    if known is not None:
        spread = dilated((int(known[0]), int(known[1])), dilation)
        (top, bottom), (left, right) = resolve_padding(owner.op.padding, spread)
        attributes["pads"] = [top, left, bottom, right]
    elif owner.op.padding == "same":
        attributes["auto_pad"] = "SAME_UPPER"
    else:
        (top, bottom), (left, right) = owner.op.padding
        attributes["pads"] = [top, left, bottom, right]
    exporter.emit("Conv", [exporter.name(x), exporter.name(filters)], [exporter.output(node)], **attributes)


@onnx_nodes.register(MaxPool2d)
@onnx_nodes.register(AvgPool2d)
def _pool(op: Any, node: Apply, exporter: _Exporter) -> None:
    attributes = {
        "kernel_shape": list(op.pool_size),
        "strides": list(op.stride),
        "pads": [op.padding[0], op.padding[1], op.padding[0], op.padding[1]],
    }
    if isinstance(op, AvgPool2d):
        attributes["count_include_pad"] = 1
    kind = "MaxPool" if isinstance(op, MaxPool2d) else "AveragePool"
    exporter.emit(kind, [exporter.name(node.inputs[0])], [exporter.output(node)], **attributes)


@onnx_nodes.register
def _shape(op: Shape, node: Apply, exporter: _Exporter) -> None:
    exporter.emit("Shape", [exporter.name(node.inputs[0])], [exporter.output(node)])


@onnx_nodes.register
def _shape_at(op: ShapeAt, node: Apply, exporter: _Exporter) -> None:
    shape = exporter.emit("Shape", [exporter.name(node.inputs[0])])
    index = exporter.constant(np.int64(op.axis), "axis")
    exporter.emit("Gather", [shape, index], [exporter.output(node)], axis=0)


@onnx_nodes.register
def _stack(op: Stack, node: Apply, exporter: _Exporter) -> None:
    dtype = node.outputs[0].dtype
    axes = exporter.ints([op.axis])
    pieces = [exporter.emit("Unsqueeze", [exporter.cast(exporter.name(v), v.dtype, dtype), axes]) for v in node.inputs]
    exporter.emit("Concat", pieces, [exporter.output(node)], axis=op.axis)


@onnx_nodes.register
def _join(op: Join, node: Apply, exporter: _Exporter) -> None:
    dtype = node.outputs[0].dtype
    pieces = [exporter.cast(exporter.name(v), v.dtype, dtype) for v in node.inputs]
    exporter.emit("Concat", pieces, [exporter.output(node)], axis=op.axis)


@onnx_nodes.register
def _reshape(op: Reshape, node: Apply, exporter: _Exporter) -> None:
    x, target = node.inputs
    exporter.emit("Reshape", [exporter.name(x), exporter.name(target)], [exporter.output(node)], allowzero=1)


@onnx_nodes.register(BroadcastTo)
def _broadcast_to(op: Op, node: Apply, exporter: _Exporter) -> None:
    x, target = node.inputs
    exporter.emit("Expand", [exporter.name(x), exporter.name(target)], [exporter.output(node)])


@onnx_nodes.register
def _alloc(op: Alloc, node: Apply, exporter: _Exporter) -> None:
    value, target = node.inputs
    filled = exporter.cast(exporter.name(value), value.dtype, op.dtype)
    exporter.emit("Expand", [filled, exporter.name(target)], [exporter.output(node)])


@onnx_nodes.register
def _arange(op: ARange, node: Apply, exporter: _Exporter) -> None:
    bounds = [exporter.cast(exporter.name(v), v.dtype, op.dtype) for v in node.inputs]
    exporter.emit("Range", bounds, [exporter.output(node)])


@onnx_nodes.register
def _dimshuffle(op: DimShuffle, node: Apply, exporter: _Exporter) -> None:
    result = exporter.name(node.inputs[0])
    if op.dropped:
        result = exporter.emit("Squeeze", [result, exporter.ints(op.dropped)])
    if op.order != tuple(range(len(op.order))):
        result = exporter.emit("Transpose", [result], perm=list(op.order))
    inserted = [position for position, axis in enumerate(op.pattern) if axis == "x"]
    if inserted:
        result = exporter.emit("Unsqueeze", [result, exporter.ints(inserted)])
    exporter.bind(node, result)


@onnx_nodes.register
def _subtensor(op: Subtensor, node: Apply, exporter: _Exporter) -> None:
    x, *index_inputs = node.inputs
    arrays = [index_inputs[entry[1][1]] for entry in op.spec if entry[0] == "array"]
    if arrays and (
        len(arrays) > 1 or arrays[0].dtype == "bool" or any(entry[0] in ("int", "newaxis") for entry in op.spec)
    ):  # numpy's rules for where the result's axes go, and masks, have no one-node ONNX form
        raise _refuse(node, " for indexing with a boolean array, several arrays, or an array beside ints or newaxis")

    def bound(part: Any, default: int) -> str:
        if part is None:
            return exporter.ints([default])
        if isinstance(part, int):
            return exporter.ints([part])
        variable = index_inputs[part[1]]
        scalar = exporter.cast(exporter.name(variable), variable.dtype, "int64")
        return exporter.emit("Unsqueeze", [scalar, exporter.ints([0])])

    result, axis = exporter.name(x), 0
    for entry in op.spec:
        kind = entry[0]
        if kind == "newaxis":
            result = exporter.emit("Unsqueeze", [result, exporter.ints([axis])])
            axis += 1
        elif kind == "array":  # one integer array (an embedding's lookup): its axes replace the axis
            (index,) = arrays
            result = exporter.emit(
                "Gather", [result, exporter.cast(exporter.name(index), index.dtype, "int64")], axis=axis
            )
            axis += index.ndim
        elif kind == "int":
            ref = entry[1]
            index = (
                exporter.constant(np.int64(ref))
                if isinstance(ref, int)
                else exporter.cast(exporter.name(index_inputs[ref[1]]), index_inputs[ref[1]].dtype, "int64")
            )
            result = exporter.emit("Gather", [result, index], axis=axis)
        else:
            start, stop, step = entry[1:]
            backwards = isinstance(step, int) and step < 0
            if not isinstance(step, (int, type(None))):
                raise _refuse(node, " for a symbolic slice step")
            starts = bound(start, _INT64_MAX if backwards else 0)
            ends = bound(stop, _INT64_MIN if backwards else _INT64_MAX)
            result = exporter.emit("Slice", [result, starts, ends, exporter.ints([axis]), exporter.ints([step or 1])])
            axis += 1
    exporter.bind(node, result)


# --- loops and branches: ONNX Loop and If, their steps and branches as inner graphs ---------------
@onnx_nodes.register
def _scan(op: Scan, node: Apply, exporter: _Exporter) -> None:
    """One ``Loop``: the states carried (each reading its last value only), the stacked outputs
    and every state's values as scan outputs (a state's buffer is its initial window followed by
    them), the sequences' rows taken inside the step, what the step reads from outside by name;
    ``until`` gives the condition to go on (its negation)."""
    if op.sums or op.reverse or any(taps != (-1,) for taps in op.state_taps):
        raise _refuse(node, " for a loop reading a state's earlier steps than the last, or a gradient's loop")
    n_steps, sequences, windows, context = op.outer_parts(node.inputs)
    inner_sequences, inner_taps, inner_context = op.inner_parts()
    states, stacked, _ = op.inner_outputs()
    step, going = exporter.fresh("step"), exporter.fresh("going")
    carried = [exporter.fresh("state") for _ in states]
    reads = {tap: name for (tap,), name in zip(inner_taps, carried)}
    reads.update((inner, exporter.name(outer)) for inner, outer in zip(inner_context, context))
    body = exporter.inner(op.fgraph, reads)
    for inner, outer in zip(inner_sequences, sequences):
        body.names[inner] = body.emit("Gather", [exporter.name(outer), step], axis=0)
    body.translate()
    if op.until is not None:
        go_on = body.emit("Not", [body.name(stacked[op.until])])
    else:
        go_on = body.emit("Identity", [going])
    returned: list[tuple[str, Any]] = [(go_on, "bool")]
    returned += [(body.emit("Identity", [body.name(state)]), state) for state in states]
    returned += [(body.emit("Identity", [body.name(state)]), state) for state in states]
    returned += [(body.emit("Identity", [body.name(output)]), output) for output in stacked]
    inputs = [(step, "int64"), (going, "bool")] + [(name, tap) for name, (tap,) in zip(carried, inner_taps)]
    graph = body.subgraph(op.name, inputs, returned)
    zero = exporter.constant(np.int64(0), "zero") if windows else ""
    initial = [exporter.emit("Gather", [exporter.name(window), zero], axis=0) for window in windows]
    count = exporter.cast(exporter.name(n_steps), n_steps.dtype, "int64")
    finals = [exporter.fresh("final") for _ in states]
    rows = [exporter.fresh("rows") for _ in states]
    outputs = [exporter.output(node, len(states) + k) for k in range(len(stacked))]
    exporter.emit("Loop", [count, "", *initial], finals + rows + outputs, body=graph)
    for k, (window, steps) in enumerate(zip(windows, rows)):
        if op.keeps_last_only(k):  # its buffer is its last row alone
            exporter.emit("Unsqueeze", [finals[k], exporter.ints([0])], [exporter.output(node, k)])
        else:
            exporter.emit("Concat", [exporter.name(window), steps], [exporter.output(node, k)], axis=0)


@onnx_nodes.register
def _ifelse(op: IfElse, node: Apply, exporter: _Exporter) -> None:
    """One ``If``: each branch an inner graph reading the context by name."""
    condition, *context = node.inputs
    branches = []
    for fgraph in op.inner_graphs:
        body = exporter.inner(fgraph, {inner: exporter.name(outer) for inner, outer in zip(fgraph.inputs, context)})
        body.translate()
        returned = [(body.emit("Identity", [body.name(output)]), output) for output in fgraph.outputs]
        branches.append(body.subgraph(op.name, [], returned))
    chosen = exporter.name(condition)
    if condition.dtype != "bool":
        zero = exporter.constant(np.zeros((), condition.dtype), "zero")
        chosen = exporter.emit("Not", [exporter.emit("Equal", [chosen, zero])])
    outputs = [exporter.output(node, k) for k in range(len(node.outputs))]
    exporter.emit("If", [chosen], outputs, then_branch=branches[0], else_branch=branches[1])
