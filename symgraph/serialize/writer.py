"""From objects to the saved document: tables of functions, variables, ops, nodes, scopes and
arrays, every object written once and referred to by its position, so that what several saved
objects share (a shared variable, a whole forward graph) is shared again when loaded."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from ..backends import BACKENDS
from ..compile.function import NO_DEFAULT, Function
from ..compile.modes import MODES
from ..graph.basic import Constant, SharedVariable, Variable
from ..graph.fgraph import FunctionGraph
from ..graph.op import Op
from ..graph.source import Scope
from ..graph.traversal import postorder
from ..graph.type import TensorType
from ..ops.elemwise import Elemwise
from ..ops.random import GeneratorType
from .archive import ARRAY_KINDS
from .registry import BIT_GENERATORS, OP_CLASSES, elemwise_name, op_class_name

FORMAT_VERSION = 1
#: Constants up to this many elements are written in the document; larger ones as arrays.
INLINE_SIZE = 16


_canonical = json.JSONEncoder(allow_nan=False, sort_keys=True, separators=(",", ":")).encode


class Writer:
    """Collects the tables while objects are encoded; ``document(root)`` gives the whole."""

    def __init__(self) -> None:
        self.functions: list[dict] = []
        self.variables: list[dict] = []
        self.ops: list[dict] = []
        self.nodes: list[dict] = []
        self.scopes: list[dict] = []
        self.array_entries: list[dict] = []
        self.arrays: list[np.ndarray] = []
        self._ids: dict[tuple[str, int], int] = {}  # (table, id(object)) -> position
        self._op_entries: dict[str, int] = {}  # an op entry's JSON text -> its position
        self._alive: list[Any] = []  # keeps every object whose id() is a key above alive

    def document(self, obj: Any) -> dict:
        from .. import __version__

        root = self.value(obj, "the object saved")
        return {
            "format": "symgraph",
            "version": FORMAT_VERSION,
            "written_by": f"symgraph {__version__}",
            "root": root,
            "functions": self.functions,
            "arrays": self.array_entries,
            "variables": self.variables,
            "ops": self.ops,
            "nodes": self.nodes,
            "scopes": self.scopes,
        }

    def _known(self, table: str, obj: Any) -> int | None:
        return self._ids.get((table, id(obj)))

    def _add(self, table: list, name: str, obj: Any, entry: dict) -> int:
        position = len(table)
        table.append(entry)
        self._ids[(name, id(obj))] = position
        self._alive.append(obj)
        return position

    # --- values -------------------------------------------------------------------------------
    def value(self, obj: Any, where: Any) -> Any:
        """``obj`` as JSON: plain values as themselves (a tuple as an array), anything else as a
        one-key object naming what it is. ``where`` (a string, or a function giving one, called
        only for an error message) says what ``obj`` is."""
        if obj is None or isinstance(obj, (bool, str)) or type(obj) is int:
            return obj
        if type(obj) is float:
            return obj if math.isfinite(obj) else {"float": repr(obj)}
        if type(obj) is tuple:
            return [self.value(item, f"{where}[{index}]") for index, item in enumerate(obj)]
        if isinstance(obj, list):
            return {"list": [self.value(item, f"{where}[{index}]") for index, item in enumerate(obj)]}
        if isinstance(obj, dict):
            return {
                "dict": [[self.value(k, f"a key of {where}"), self.value(v, f"{where}[{k!r}]")] for k, v in obj.items()]
            }
        if isinstance(obj, Function):
            return {"function": self.function(obj)}
        if isinstance(obj, Variable):
            return {"variable": self.variable(obj)}
        if isinstance(obj, FunctionGraph):
            return {"graph": self.graph(obj)}
        if isinstance(obj, Op):
            return {"op": self.op(obj)}
        if isinstance(obj, np.ndarray):
            return {"array": self.array(obj, where)}
        if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
            return {"scalar": [obj.dtype.name, self.value(obj.item(), where)]}
        if isinstance(obj, np.dtype) and obj.kind in ARRAY_KINDS:
            return {"dtype": obj.name}
        if isinstance(obj, slice):
            return {"slice": [self.value(part, where) for part in (obj.start, obj.stop, obj.step)]}
        where = where() if callable(where) else where
        raise TypeError(
            f"sg.save cannot save {where}: a {type(obj).__module__}.{type(obj).__qualname__} is not data it "
            "knows (functions, variables, shared variables, numpy arrays, numbers, strings, None, and "
            "lists, tuples and dicts of them)"
        )

    def array(self, array: np.ndarray, where: Any) -> int:
        known = self._known("arrays", array)
        if known is not None:
            return known
        if array.dtype.kind not in ARRAY_KINDS or array.dtype.fields is not None:
            where = where() if callable(where) else where
            raise TypeError(f"sg.save cannot save {where}: an array of dtype {array.dtype} (only numbers are saved)")
        entry = {"dtype": array.dtype.name, "shape": list(array.shape)}
        self.arrays.append(array)
        return self._add(self.array_entries, "arrays", array, entry)

    # --- graphs -------------------------------------------------------------------------------
    def variable(self, variable: Variable) -> int:
        known = self._known("variables", variable)
        if known is not None:
            return known
        if variable.owner is not None:
            self.computed([variable])
            return self._ids[("variables", id(variable))]
        entry: dict[str, Any] = {"kind": variable.kind, "type": self.type(variable), "name": variable.name}
        if isinstance(variable, Constant):
            data = variable.data
            if data.size <= INLINE_SIZE:
                entry["value"] = [
                    item if math.isfinite(item) else {"float": repr(item)} for item in data.ravel().tolist()
                ]
            else:
                entry["array"] = self.array(data, "a constant")
        elif isinstance(variable, SharedVariable):
            value = variable.get_value(borrow=True)
            if isinstance(variable.type, GeneratorType):
                state = value.bit_generator.state
                if state.get("bit_generator") not in BIT_GENERATORS:
                    raise TypeError(
                        f"sg.save cannot save {variable.label()}: bit generator {state.get('bit_generator')!r}"
                    )
                entry["generator"] = self.value(state, f"the state of {variable.label()}")
            else:
                entry["array"] = self.array(value, lambda: f"shared variable {variable.label()}")
        return self._add(self.variables, "variables", variable, entry)

    def type(self, variable: Variable) -> Any:
        if isinstance(variable.type, TensorType):
            return {"dtype": variable.type.dtype, "shape": list(variable.type.shape)}
        if isinstance(variable.type, GeneratorType):
            return "generator"
        raise TypeError(f"sg.save cannot save variable {variable.label()} of type {variable.type!r}")

    def computed(self, outputs: list[Variable]) -> None:
        """The nodes computing ``outputs``, each after those it reads (and after the nodes of the
        inner graphs its op holds)."""
        for node in postorder(outputs):
            if self._known("nodes", node) is not None:
                continue
            op = self.op(node.op)
            inputs = [self.variable(variable) for variable in node.inputs]
            entry: dict[str, Any] = {"op": op, "inputs": inputs, "outputs": []}
            if node.source is not None:
                entry["source"] = [node.source.filename, node.source.lineno]
            if node.scope is not None:
                entry["scope"] = self.scope(node.scope)
            if node.gradient:
                entry["gradient"] = True
            for output in node.outputs:
                output_entry = {"kind": "computed", "type": self.type(output), "name": output.name}
                entry["outputs"].append(self._add(self.variables, "variables", output, output_entry))
            self._add(self.nodes, "nodes", node, entry)

    def graph(self, fgraph: FunctionGraph) -> dict:
        self.computed(fgraph.computed)
        return {
            "inputs": [self.variable(variable) for variable in fgraph.inputs],
            "outputs": [self.variable(variable) for variable in fgraph.outputs],
            "updates": [[self.variable(shared), self.variable(value)] for shared, value in fgraph.updates],
        }

    def op(self, op: Op) -> int:
        known = self._known("ops", op)
        if known is not None:
            return known
        if isinstance(op, Elemwise):
            name = elemwise_name(op)
            if name is None:
                raise TypeError(
                    f"sg.save cannot save the elementwise op {op.name}: it is not registered; call "
                    "symgraph.serialize.register_elemwise(op, 'yourpackage.name') where it is defined"
                )
            return self._add_op(op, {"elemwise": name})
        name = op_class_name(type(op))
        if OP_CLASSES.get(name) is not type(op):
            raise TypeError(
                f"sg.save cannot save op {op.name}: its class {name} is not the one registered under that name"
            )
        state = op.__getstate__()
        if not isinstance(state, dict):
            raise TypeError(f"sg.save cannot save op {op.name}: its __getstate__ gives no dict")
        encoded = {
            key: self.value(value, lambda key=key: f"parameter {key!r} of op {name}") for key, value in state.items()
        }
        return self._add_op(op, {"class": name, "state": encoded})

    def _add_op(self, op: Op, entry: dict) -> int:
        """Ops written alike are one entry: a graph holds many op objects of the same class and
        parameters (a ``Shape`` per use), and a loader rebuilds and checks each entry."""
        text = _canonical(entry)
        position = self._op_entries.get(text)
        if position is None:
            position = self._op_entries[text] = self._add(self.ops, "ops", op, entry)
        else:
            self._ids[("ops", id(op))] = position
            self._alive.append(op)
        return position

    def scope(self, scope: Scope) -> int:
        known = self._known("scopes", scope)
        if known is not None:
            return known
        parent = self.scope(scope.parent) if scope.parent is not None else None
        source = [scope.source.filename, scope.source.lineno] if scope.source is not None else None
        return self._add(self.scopes, "scopes", scope, {"name": scope.name, "parent": parent, "source": source})

    # --- functions ----------------------------------------------------------------------------
    def function(self, function: Function) -> int:
        known = self._known("functions", function)
        if known is not None:
            return known
        record = function._record
        if record is None:
            raise TypeError(f"sg.save cannot save function {function.name}: it was not made by sg.function")
        if MODES.get(record.mode.name) != record.mode:
            raise TypeError(f"sg.save cannot save function {function.name}: its mode is not one of {sorted(MODES)}")
        if record.backend not in BACKENDS:
            raise TypeError(f"sg.save cannot save function {function.name}: backend {record.backend!r} is not built in")
        self.computed(list(record.outputs) + [value for _, value in record.updates])
        entry = {
            "name": record.name,
            "inputs": [self.variable(variable) for variable in record.inputs],
            "input_names": list(record.input_names),
            "defaults": [
                None if default is NO_DEFAULT else self.value(default, f"a default of function {function.name}")
                for default in record.defaults
            ],
            "outputs": [self.variable(variable) for variable in record.outputs],
            "single_output": record.single_output,
            "updates": [[self.variable(shared), self.variable(value)] for shared, value in record.updates],
            "phase": record.phase,
            "mode": record.mode.name,
            "backend": record.backend,
            "on_unused_input": record.on_unused_input,
            "allow_input_downcast": record.allow_input_downcast,
            "apply_updates": record.apply_updates,
        }
        return self._add(self.functions, "functions", function, entry)
