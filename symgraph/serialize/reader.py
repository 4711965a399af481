"""From a saved document back to objects, trusting nothing in it.

Every field is checked for its JSON type and range before it is used, every reference for its
table (variables computed by a later node, or by none, are a cycle or a missing node), ops are
found in the registry of op classes and rebuilt from data (``cls.__new__`` and their saved state,
as pickle does, but with nothing but data in that state), and every node is rebuilt through its
op's ``make_node``, which checks its inputs' types as when the graph was first built. Functions
are compiled again from the saved graph. Objects are only handed back when all of this
succeeded.
"""

from __future__ import annotations

import functools
import keyword
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..compile.function import Function, In, function
from ..errors import LoadError
from ..graph.basic import Apply, Constant, SharedVariable, Variable
from ..graph.fgraph import FunctionGraph
from ..graph.op import Op
from ..graph.source import Scope, Source, building
from ..graph.type import TensorType, Type, largest_finite
from ..ops.elemwise import Elemwise
from ..ops.random import GeneratorType
from ..ops.shape import Split
from .archive import Archive, check_array_dtype
from .registry import BIT_GENERATORS, OP_CLASSES, elemwise_by_name
from .writer import FORMAT_VERSION


class SavedSource(Source):
    """The user's line that built a loaded node, as the file recorded it: shown by its file name
    and line number only. Its text is never read, for the file may name any path."""

    __slots__ = ()

    @property
    def code(self) -> str:
        return ""


# --- checking JSON values ---------------------------------------------------------------------------
def _what(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"[:80]
    if isinstance(value, str):
        return f"the string {value!r}"[:80]
    return "an array" if isinstance(value, list) else "an object"


def _int(value: Any, where: str, minimum: int = 0) -> int:
    if type(value) is not int or value < minimum:
        raise LoadError(f"{where} must be an integer of at least {minimum}, not {_what(value)}")
    return value


def _index(value: Any, table: list, where: str, what: str, field: str = "") -> int:
    if type(value) is not int or not 0 <= value < len(table):
        raise LoadError(f"{where}{field} refers to {what} {_what(value)[:40]}, but the file has {len(table)} {what}(s)")
    return value


def _str(value: Any, where: str, optional: bool = False) -> Any:
    if not (isinstance(value, str) or (optional and value is None)):
        raise LoadError(f"{where} must be a string{' or null' if optional else ''}, not {_what(value)}")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise LoadError(f"{where} must be true or false, not {_what(value)}")
    return value


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise LoadError(f"{where} must be an array, not {_what(value)}")
    return value


def _fields(value: Any, where: str, required: tuple, optional: tuple = ()) -> dict:
    if type(value) is dict:
        needed, allowed = _key_sets(required, optional)
        keys = value.keys()
        if keys >= needed and keys <= allowed:
            return value
    if not isinstance(value, dict):
        raise LoadError(f"{where} must be an object, not {_what(value)}")
    missing = [key for key in required if key not in value]
    if missing:
        raise LoadError(f"{where} lacks {', '.join(repr(key) for key in missing)}")
    unknown = [key for key in value if key not in required and key not in optional]
    raise LoadError(f"{where} has unknown field(s) {', '.join(repr(key) for key in unknown)[:200]}")


@functools.cache
def _key_sets(required: tuple, optional: tuple) -> tuple[frozenset, frozenset]:
    return frozenset(required), frozenset(required + optional)


def _shape(value: Any, where: str, allow_none: bool) -> tuple:
    lengths = _list(value, where)
    for length in lengths:
        if not ((allow_none and length is None) or (type(length) is int and length >= 0)):
            raise LoadError(
                f"{where} must hold lengths (integers of at least 0{' or null' if allow_none else ''}), "
                f"not {_what(length)}"
            )
    return tuple(lengths)


def _scalar(value: Any, dtype: np.dtype, where: str) -> Any:
    """A JSON number or boolean as a value of ``dtype``, checked to fit."""
    if isinstance(value, dict) and dtype.kind == "f":
        value = _non_finite(value, where)
    if dtype.kind == "b":
        if not isinstance(value, bool):
            raise LoadError(f"{where}: a {dtype} value must be true or false, not {_what(value)}")
    elif dtype.kind in "iu":
        if type(value) is not int or not np.iinfo(dtype).min <= value <= np.iinfo(dtype).max:
            raise LoadError(f"{where}: {_what(value)} is not a {dtype} value")
    elif type(value) not in (int, float):
        raise LoadError(f"{where}: {_what(value)} is not a {dtype} value")
    elif (
        not -largest_finite(dtype) <= value <= largest_finite(dtype)  # else it fits: numpy need not be asked
        and math.isfinite(value)
        and not math.isfinite(_as_float(value, dtype))
    ):
        raise LoadError(f"{where}: {_what(value)} does not fit a {dtype}")
    return value


def _as_float(value: int | float, dtype: np.dtype) -> float:
    with np.errstate(over="ignore"):
        try:
            return float(dtype.type(value))
        except OverflowError:  # an integer too large for a Python float
            return math.inf


def _non_finite(value: Any, where: str) -> float:
    fields = _fields(value, where, ("float",))
    if fields["float"] not in ("nan", "inf", "-inf"):
        raise LoadError(f"{where}: {{'float': ...}} holds 'nan', 'inf' or '-inf', not {_what(fields['float'])}")
    return float(fields["float"])


def _dtype(value: Any, where: str, kinds: str = "biuf") -> np.dtype:
    dtype = check_array_dtype(value, where)
    if dtype.kind not in kinds:
        raise LoadError(f"{where}: dtype {dtype} is not allowed here")
    return dtype


_NODE_FIELDS, _NODE_OPTIONAL = ("op", "inputs", "outputs"), ("source", "scope", "gradient")
_NODE_NEEDED, _NODE_ALLOWED = frozenset(_NODE_FIELDS), frozenset(_NODE_FIELDS + _NODE_OPTIONAL)

#: The fields a variable of each kind may have beyond ``kind``, ``type`` and ``name``.
_VARIABLE_FIELDS = {"input": (), "computed": (), "constant": ("value", "array"), "shared": ("array", "generator")}


# --- the reader ---------------------------------------------------------------------------------------
class Reader:
    """Rebuilds the objects of one document; ``where`` says what it is reading, for errors."""

    def __init__(self, document: Any, archive: Archive):
        self.archive = archive
        self.where = "the document"
        if not isinstance(document, dict) or document.get("format") != "symgraph":
            raise LoadError('this is not a symgraph file: its document does not say "format": "symgraph"')
        version = document.get("version")
        if type(version) is not int or version < 1:
            raise LoadError(f"the document's format version must be an integer of at least 1, not {_what(version)}")
        if version > FORMAT_VERSION:
            raise LoadError(
                f"this file was written by a newer symgraph ({str(document.get('written_by'))[:40]}), in format "
                f"version {version}; this symgraph reads versions up to {FORMAT_VERSION}: upgrade symgraph to load it"
            )
        tables = ("functions", "arrays", "variables", "ops", "nodes", "scopes")
        fields = _fields(document, "the document", ("format", "version", "root", *tables), ("written_by",))
        self.document = fields
        self.tables = {name: _list(fields[name], f"the document's {name!r}") for name in tables}
        self.arrays: dict[int, np.ndarray] = {}
        self.variables: list[Variable | None] = [None] * len(self.tables["variables"])
        self.types: list[Type | None] = [None] * len(self.variables)
        self.known_types: dict[tuple, TensorType] = {}
        self.sources: dict[tuple, SavedSource] = {}
        self.output_types: dict[tuple, list[Type]] = {}  # ids of (op, *input types) -> output types
        self.ops: dict[int, Op] = {}
        self.building_ops: set[int] = set()
        self.scopes: list[Scope] = []
        self.functions: list[Function] = []

    def load(self) -> Any:
        self.read_scopes()
        for index, entry in enumerate(self.tables["variables"]):
            self.where = f"variable {index}"
            self.read_variable(index, entry)
        # Each node's line is the file's (set below), not found by walking the stack.
        with building(source=SavedSource("<sg.load>", 0), gradient=False, scope=None):
            for index, entry in enumerate(self.tables["nodes"]):
                self.where = f"node {index}"
                self.read_node(index, entry)
        for index, entry in enumerate(self.tables["functions"]):
            self.where = f"function {index}"
            self.functions.append(self.read_function(index, entry))
        self.where = "the root object"
        return self.value(self.document["root"], "the root object", in_op=False)

    # --- values -------------------------------------------------------------------------------
    def value(self, data: Any, where: str, in_op: bool) -> Any:
        if data is None or isinstance(data, (bool, str, int, float)):
            return data
        if isinstance(data, list):
            return tuple(self.value(item, f"{where}[{index}]", in_op) for index, item in enumerate(data))
        if not isinstance(data, dict) or len(data) != 1:
            raise LoadError(
                f"{where}: an object standing for a value has one key saying what it is, not {sorted(data)[:5]}"
            )
        ((tag, body),) = data.items()
        read = self._TAGS.get(tag)
        if read is None or (tag == "function" and in_op):
            raise LoadError(f"{where}: {tag[:40]!r} is not a kind of value{' an op may hold' if in_op else ''}")
        return read(self, body, f"{where}.{tag}", in_op)

    def _list_value(self, body: Any, where: str, in_op: bool) -> list:
        return [self.value(item, f"{where}[{index}]", in_op) for index, item in enumerate(_list(body, where))]

    def _dict_value(self, body: Any, where: str, in_op: bool) -> dict:
        result = {}
        for index, pair in enumerate(_list(body, where)):
            if not isinstance(pair, list) or len(pair) != 2:
                raise LoadError(f"{where}[{index}] must be a [key, value] pair, not {_what(pair)}")
            key = self.value(pair[0], f"{where}[{index}] key", in_op)
            try:
                hash(key)
            except TypeError:
                raise LoadError(f"{where}[{index}]: a dict key cannot be {_what(pair[0])}") from None
            result[key] = self.value(pair[1], f"{where}[{index}]", in_op)
        return result

    def _float_value(self, body: Any, where: str, in_op: bool) -> float:
        return _non_finite({"float": body}, where)

    def _scalar_value(self, body: Any, where: str, in_op: bool) -> np.generic:
        if not isinstance(body, list) or len(body) != 2:
            raise LoadError(f"{where} must be a [dtype, value] pair, not {_what(body)}")
        dtype = _dtype(body[0], where)
        return dtype.type(_scalar(body[1], dtype, where))

    def _dtype_value(self, body: Any, where: str, in_op: bool) -> np.dtype:
        return _dtype(body, where, "biufc")

    def _slice_value(self, body: Any, where: str, in_op: bool) -> slice:
        parts = _list(body, where)
        if len(parts) != 3 or not all(part is None or type(part) is int for part in parts):
            raise LoadError(f"{where} must be [start, stop, step] of integers or nulls")
        return slice(*parts)

    def _array_value(self, body: Any, where: str, in_op: bool) -> np.ndarray:
        return self.array(_index(body, self.tables["arrays"], where, "array"), where)

    def _variable_value(self, body: Any, where: str, in_op: bool) -> Variable:
        return self.available(body, where)

    def _graph_value(self, body: Any, where: str, in_op: bool) -> FunctionGraph:
        fields = _fields(body, where, ("inputs", "outputs", "updates"))
        inputs = [self.available(item, f"{where}.inputs") for item in _list(fields["inputs"], f"{where}.inputs")]
        outputs = [self.available(item, f"{where}.outputs") for item in _list(fields["outputs"], f"{where}.outputs")]
        return FunctionGraph(inputs, outputs, self.updates(fields["updates"], f"{where}.updates"))

    def _op_value(self, body: Any, where: str, in_op: bool) -> Op:
        return self.op(_index(body, self.tables["ops"], where, "op"))

    def _function_value(self, body: Any, where: str, in_op: bool) -> Function:
        return self.functions[_index(body, self.functions, where, "function")]

    _TAGS: dict[str, Callable[..., Any]] = {
        "list": _list_value,
        "dict": _dict_value,
        "float": _float_value,
        "scalar": _scalar_value,
        "dtype": _dtype_value,
        "slice": _slice_value,
        "array": _array_value,
        "variable": _variable_value,
        "graph": _graph_value,
        "op": _op_value,
        "function": _function_value,
    }

    def array(self, index: int, where: str) -> np.ndarray:
        if index not in self.arrays:
            entry = _fields(self.tables["arrays"][index], f"array {index}", ("dtype", "shape"))
            dtype = _dtype(entry["dtype"], f"array {index}'s dtype", "biufc")
            shape = _shape(entry["shape"], f"array {index}'s shape", allow_none=False)
            self.arrays[index] = self.archive.array(index, dtype, shape)
        return self.arrays[index]

    # --- variables ----------------------------------------------------------------------------
    def type(self, data: Any, where: str) -> Type:
        # The types of a graph repeat: each distinct entry is checked once. The key holds the
        # Python types of the lengths too, so that `true` never passes for a length of 1.
        if type(data) is dict and len(data) == 2:
            dtype, shape = data.get("dtype"), data.get("shape")
            if type(dtype) is str and type(shape) is list:
                key = (dtype, tuple(shape), tuple(map(type, shape)))
                try:
                    known = self.known_types.get(key)
                except TypeError:  # a length that is a list or an object: refused below
                    key, known = None, None
                if known is not None:
                    return known
        if data == "generator":
            return GeneratorType()
        fields = _fields(data, where, ("dtype", "shape"))
        known = TensorType(
            _dtype(fields["dtype"], f"{where}'s dtype"), _shape(fields["shape"], f"{where}'s shape", allow_none=True)
        )
        self.known_types[(fields["dtype"], tuple(fields["shape"]), tuple(map(type, fields["shape"])))] = known
        return known

    def read_variable(self, index: int, entry: Any) -> None:
        if type(entry) is dict and entry.get("kind") == "computed" and len(entry) == 3:  # most of them
            name = entry.get("name")
            if "type" in entry and (name is None or type(name) is str):
                data, known = entry["type"], None
                shape = data.get("shape") if type(data) is dict and len(data) == 2 else None
                if type(shape) is list:  # a type met before? (the lookup of Reader.type, inlined)
                    try:
                        known = self.known_types.get((data.get("dtype"), tuple(shape), tuple(map(type, shape))))
                    except TypeError:  # an unhashable dtype or length: Reader.type says what is wrong
                        known = None
                self.types[index] = known if known is not None else self.type(data, f"variable {index}'s type")
                return
        where = f"variable {index}"
        kind = entry.get("kind") if isinstance(entry, dict) else None
        extra = _VARIABLE_FIELDS.get(kind) if isinstance(kind, str) else None
        if extra is None:
            raise LoadError(f"{where}'s kind must be 'input', 'constant', 'shared' or 'computed', not {_what(kind)}")
        fields = _fields(entry, where, ("kind", "type", "name"), extra)
        variable_type = self.types[index] = self.type(fields["type"], f"{where}'s type")
        name = fields["name"]
        if name is not None and not isinstance(name, str):
            raise LoadError(f"{where}'s name must be a string or null, not {_what(name)}")
        if kind == "computed":
            return
        if kind == "input":
            self.variables[index] = Variable(variable_type, name=name)
        elif kind == "constant":
            self.variables[index] = self.constant(fields, variable_type, name, where)
        else:
            self.variables[index] = self.shared(fields, variable_type, name, where)

    def constant(self, fields: dict, variable_type: Type, name: str | None, where: str) -> Constant:
        if not isinstance(variable_type, TensorType) or ("value" in fields) == ("array" in fields):
            raise LoadError(f"{where}: a constant is a tensor with either 'value' or 'array'")
        if "array" in fields:
            data = self.array(_index(fields["array"], self.tables["arrays"], where, "array"), where)
        else:
            values = _list(fields["value"], f"{where}'s value")
            if None in variable_type.shape or len(values) != math.prod(variable_type.shape):
                raise LoadError(f"{where}: {len(values)} values do not fill shape {variable_type.shape}")
            dtype = variable_type.numpy_dtype
            data = np.array([_scalar(value, dtype, f"{where}'s value") for value in values], dtype=dtype)
            data = data.reshape(variable_type.shape)
        if data.dtype != variable_type.numpy_dtype or not variable_type.accepts_shape(data.shape):
            raise LoadError(
                f"{where}: an array of {data.dtype} {data.shape} is not a {variable_type.describe()} constant"
            )
        return Constant(variable_type, data, name=name)

    def shared(self, fields: dict, variable_type: Type, name: str | None, where: str) -> SharedVariable:
        if isinstance(variable_type, GeneratorType):
            if "generator" not in fields or "array" in fields:
                raise LoadError(f"{where}: a random generator's state is given as 'generator'")
            return SharedVariable(
                variable_type, self.generator(fields["generator"], f"{where}'s generator"), name, borrow=True
            )
        if "array" not in fields or "generator" in fields:
            raise LoadError(f"{where}: a shared tensor's value is given as 'array'")
        value = self.array(_index(fields["array"], self.tables["arrays"], where, "array"), where)
        if value.dtype != variable_type.numpy_dtype or not variable_type.accepts_shape(value.shape):  # type: ignore[attr-defined]
            raise LoadError(
                f"{where}: an array of {value.dtype} {value.shape} is not a {variable_type.describe()} value"
            )
        return SharedVariable(variable_type, value, name, borrow=True)

    def generator(self, data: Any, where: str) -> np.random.Generator:
        state = self.value(data, where, in_op=True)
        name = state.get("bit_generator") if isinstance(state, dict) else None
        bit_generator_class = BIT_GENERATORS.get(name) if isinstance(name, str) else None
        if bit_generator_class is None:
            raise LoadError(f"{where}: the state names no known bit generator ({', '.join(BIT_GENERATORS)})")
        bit_generator = bit_generator_class()
        try:
            bit_generator.state = state
        except (TypeError, ValueError, KeyError, OverflowError) as error:
            raise LoadError(f"{where}: not a valid {name} state: {error}") from None
        return np.random.Generator(bit_generator)

    def available(self, data: Any, where: str, field: str = "") -> Variable:
        variable = self.variables[data] if type(data) is int and 0 <= data < len(self.variables) else None
        if variable is None:
            index = _index(data, self.variables, where, "variable", field)
            raise LoadError(
                f"{where}{field} uses variable {index}, which no earlier node computes (a cycle, or nodes out of order)"
            )
        return variable

    def updates(self, data: Any, where: str) -> list[tuple[SharedVariable, Variable]]:
        pairs = []
        for index, pair in enumerate(_list(data, where)):
            if not isinstance(pair, list) or len(pair) != 2:
                raise LoadError(f"{where}[{index}] must be a [shared variable, new value] pair")
            shared, value = (self.available(item, f"{where}[{index}]") for item in pair)
            if not isinstance(shared, SharedVariable):
                raise LoadError(f"{where}[{index}] updates variable {pair[0]}, which is not a shared variable")
            pairs.append((shared, value))
        return pairs

    # --- ops and nodes ------------------------------------------------------------------------
    def op(self, index: int) -> Op:
        if index in self.ops:
            return self.ops[index]
        if index in self.building_ops:
            raise LoadError(f"op {index} holds itself")
        self.building_ops.add(index)
        where = f"op {index}"
        entry = self.tables["ops"][index]
        if isinstance(entry, dict) and "elemwise" in entry:
            name = _str(_fields(entry, where, ("elemwise",))["elemwise"], f"{where}'s name")
            op = elemwise_by_name(name)
            if op is None:
                raise LoadError(
                    f"{where} is the elementwise op {name[:80]!r}, which is not registered: import the module that "
                    "registers it (symgraph.serialize.register_elemwise) before loading"
                )
        else:
            fields = _fields(entry, where, ("class", "state"))
            op = self.op_of_class(_str(fields["class"], f"{where}'s class"), fields["state"], where)
        self.building_ops.discard(index)
        self.ops[index] = op
        return op

    def op_of_class(self, name: str, state_data: Any, where: str) -> Op:
        cls = OP_CLASSES.get(name)
        if cls is None:
            raise LoadError(
                f"{where} is of class {name[:120]!r}, which is not a known op: import the module that defines it "
                "before loading (symgraph never imports a module that a file names)"
            )
        if issubclass(cls, Elemwise):  # its computation is code: only ever found by its registered name
            raise LoadError(f'{where}: an elementwise op is given by name ({{"elemwise": ...}}), not by class')
        if not isinstance(state_data, dict):
            raise LoadError(f"{where}'s state must be an object of parameters, not {_what(state_data)}")
        state = {}
        for key, value in state_data.items():
            if not _may_be_parameter(cls, key):
                raise LoadError(f"{where}: {key[:80]!r} cannot be a parameter of {name}")
            if value is None or type(value) in (bool, str, int, float):  # a plain value, as most are
                state[key] = value
            else:
                state[key] = self.value(value, f"{where}'s parameter {key!r}", in_op=True)
        op = cls.__new__(cls)
        if hasattr(cls, "__setstate__"):
            op.__setstate__(state)  # type: ignore[attr-defined]
        else:
            op.__dict__.update(state)
        missing = [prop for prop in cls.__props__ if not hasattr(op, prop)]
        if missing:
            raise LoadError(f"{where} ({name}) lacks parameter(s) {', '.join(missing)}")
        try:
            hash(op)
        except TypeError as error:
            raise LoadError(f"{where} ({name}) has parameters that are not plain values: {error}") from None
        return op

    def read_scopes(self) -> None:
        for index, entry in enumerate(self.tables["scopes"]):
            where = f"scope {index}"
            fields = _fields(entry, where, ("name", "parent", "source"))
            parent = fields["parent"]
            if parent is not None:
                parent = self.scopes[_index(parent, self.scopes, f"{where}'s parent", "earlier scope")]
            source = self.source(fields["source"], where) if fields["source"] is not None else None
            self.scopes.append(Scope(_str(fields["name"], f"{where}'s name"), parent, source))

    def source(self, data: Any, where: str) -> SavedSource:
        if not isinstance(data, list) or len(data) != 2:
            raise LoadError(f"{where}'s source must be a [file, line] pair, not {_what(data)}")
        key = (data[0], data[1])
        source = self.sources.get(key) if type(data[0]) is str and type(data[1]) is int else None
        if source is None:
            source = self.sources[key] = SavedSource(_str(data[0], where), _int(data[1], where))
        return source

    def read_node(self, index: int, entry: Any) -> None:
        where = f"node {index}"
        if type(entry) is dict and _NODE_NEEDED <= entry.keys() <= _NODE_ALLOWED:  # as _fields checks, inlined
            fields = entry
        else:
            fields = _fields(entry, where, _NODE_FIELDS, _NODE_OPTIONAL)
        op = self.ops.get(fields["op"]) if type(fields["op"]) is int else None  # read already
        if op is None:
            op = self.op(_index(fields["op"], self.tables["ops"], where, "op", "'s op"))
        variables = self.variables
        inputs = [
            variables[item] if type(item) is int and 0 <= item < len(variables) and variables[item] is not None
            else self.available(item, where, "'s inputs")
            for item in _list(fields["inputs"], where)
        ]  # fmt: skip
        count = len(variables)
        outputs = [
            item
            if type(item) is int and 0 <= item < count
            else _index(item, variables, where, "variable", "'s outputs")
            for item in _list(fields["outputs"], where)
        ]
        types = self.types
        for output in outputs:
            if types[output] is None or variables[output] is not None:
                raise LoadError(
                    f"{where} computes variable {output}, which is not a variable left for a node to compute"
                )
        if len(set(outputs)) != len(outputs):
            raise LoadError(f"{where} lists an output twice")
        if isinstance(op, Split) and op.count != len(outputs):  # a count that would build that many outputs
            raise LoadError(f"{where}: a split into {op.count} pieces cannot give {len(outputs)} outputs")
        source = self.source(fields["source"], where) if "source" in fields else None
        scope = (
            self.scopes[_index(fields["scope"], self.scopes, where, "scope", "'s scope")] if "scope" in fields else None
        )
        gradient = fields.get("gradient", False)
        if not isinstance(gradient, bool):
            raise LoadError(f"{where}'s gradient mark must be true or false, not {_what(gradient)}")
        if type(op).make_node is Op.make_node:  # output types depend on the op and input types only
            # Keyed by identities (the op is this reader's, types are interned and held by the
            # variables): hashing ops and types asks Python methods, for every node.
            input_types = [variable.type for variable in inputs]
            key = (id(op), *map(id, input_types))
            output_types = self.output_types.get(key)
            if output_types is None:
                output_types = self.output_types[key] = list(op.output_types(*input_types))
            node = Apply(op, inputs, output_types)
        else:
            node = op.make_node(*inputs)
        if not isinstance(node, Apply) or len(node.outputs) != len(outputs):
            raise LoadError(
                f"{where}: {op.name} on these inputs gives {len(getattr(node, 'outputs', ()))} outputs, "
                f"the file lists {len(outputs)}"
            )
        node.source, node.gradient, node.scope = source, gradient, scope
        entries = self.tables["variables"]
        for variable, output in zip(node.outputs, outputs):
            expected = types[output]
            if variable.type is not expected and not _same_kind(variable.type, expected):  # types are interned
                raise LoadError(
                    f"{where}: {op.name} gives {variable.type.describe()} for variable {output}, which the file "
                    f"says is {expected.describe()}"  # type: ignore[union-attr]
                )
            variable.name = entries[output]["name"]
            variables[output] = variable

    # --- functions ----------------------------------------------------------------------------
    def read_function(self, index: int, entry: Any) -> Function:
        keys = ("name", "inputs", "input_names", "defaults", "outputs", "single_output", "updates", "phase", "mode",
                "backend", "on_unused_input", "allow_input_downcast", "apply_updates")  # fmt: skip
        fields = _fields(entry, f"function {index}", keys)
        name = _str(fields["name"], f"function {index}'s name")
        where = f"function {index} ({name[:80]})"
        inputs = [self.available(item, f"{where}'s inputs") for item in _list(fields["inputs"], f"{where}'s inputs")]
        outputs = [
            self.available(item, f"{where}'s outputs") for item in _list(fields["outputs"], f"{where}'s outputs")
        ]
        names, defaults = _list(fields["input_names"], where), _list(fields["defaults"], where)
        if len(names) != len(inputs) or len(defaults) != len(inputs):
            raise LoadError(f"{where}: {len(inputs)} inputs, but {len(names)} input names and {len(defaults)} defaults")
        for position, (variable, input_name, default) in enumerate(zip(inputs, names, defaults)):
            _str(input_name, f"{where}'s input name {position}", optional=True)
            if input_name != variable.name or default is not None:
                default = None if default is None else self.value(default, f"{where}'s default {position}", in_op=True)
                if default is not None and not isinstance(default, np.ndarray):
                    raise LoadError(f"{where}'s default {position} must be an array, not {_what(default)}")
                inputs[position] = In(variable, default, input_name)  # type: ignore[call-overload]
        single = fields["single_output"]
        if single not in (True, False, None) or (single is None and outputs) or (single is True and len(outputs) != 1):
            raise LoadError(f"{where}: single_output {_what(single)} does not fit its {len(outputs)} output(s)")
        try:
            return function(
                inputs,
                None if single is None else outputs[0] if single else outputs,
                updates=self.updates(fields["updates"], f"{where}'s updates"),
                phase=_str(fields["phase"], f"{where}'s phase", optional=True),
                mode=_str(fields["mode"], f"{where}'s mode"),
                name=name,
                on_unused_input=_str(fields["on_unused_input"], f"{where}'s on_unused_input"),
                allow_input_downcast=_bool(fields["allow_input_downcast"], f"{where}'s allow_input_downcast"),
                backend=_str(fields["backend"], f"{where}'s backend"),
                apply_updates=_bool(fields["apply_updates"], f"{where}'s apply_updates"),
            )
        except LoadError:
            raise
        except Exception as error:
            raise LoadError(f"{where} does not compile: {type(error).__name__}: {error}") from error


@functools.lru_cache(maxsize=4096)
def _may_be_parameter(cls: type, key: str) -> bool:
    """Whether a saved op state may set attribute ``key`` of an op of class ``cls``: a name, not
    a keyword, a dunder, a method or a property (checked once per class and name)."""
    attribute = getattr(cls, key, None)
    return (
        key.isidentifier()
        and not keyword.iskeyword(key)
        and not key.startswith("__")
        and not callable(attribute)
        and not isinstance(attribute, property)
    )


def _same_kind(actual: Type, expected: Type | None) -> bool:
    """The same type, but for static lengths (which a newer symgraph may know more of)."""
    if isinstance(actual, TensorType) and isinstance(expected, TensorType):
        return actual.dtype == expected.dtype and actual.ndim == expected.ndim
    return actual == expected
