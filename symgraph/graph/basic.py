"""The graph: variables, and the nodes (``Apply``) that compute them.

This is symgraph's own intermediate representation. A :class:`Variable` has a type, and an owner
(the :class:`Apply` node that computes it) or none (a root: an input, a constant or a shared
variable). A node knows its op, its inputs and its outputs. Nodes are never changed once built:
rewrites build new nodes and leave the user's graph as it was, so one graph can be compiled many
times. Nothing else lives on the graph: who uses a variable (its clients) is computed for the graph
being compiled (``FunctionGraph.clients``), and compiled functions are cached elsewhere, so graphs
deep-copy and pickle as plain data (without recursing along them: ``graph/pickling.py``).

Operators such as ``x + y`` are installed on :class:`Variable` by ``symgraph.ops.methods``, so
that this module depends on no op.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .source import Scope, Source, build_context, describe, user_source
from .type import TensorType, Type, format_shape

if TYPE_CHECKING:
    from .op import Op


class Variable:
    """A symbolic value: an input, a constant, a shared variable, or the output of a node."""

    __slots__ = ("__weakref__", "index", "name", "owner", "type")
    # Make numpy defer to our reflected operators: ``array + variable`` builds a node.
    __array_ufunc__ = None

    def __init__(self, type: Type, owner: "Apply | None" = None, index: int = 0, name: str | None = None):
        self.type = type
        self.owner = owner
        self.index = index
        self.name = name

    # --- what a variable is -------------------------------------------------------------------
    @property
    def dtype(self) -> str:
        return self.type.dtype

    @property
    def ndim(self) -> int:
        return self.type.ndim

    @property
    def kind(self) -> str:
        """``'input'``, ``'constant'``, ``'shared'`` or ``'intermediate'``."""
        return "intermediate" if self.owner is not None else "input"

    @property
    def source(self) -> Source | None:
        """The user's line that built this variable (its node's), if it has an owner."""
        return self.owner.source if self.owner is not None else None

    def label(self) -> str:
        """A short human name: the variable's name, or ``op.out`` for unnamed intermediates."""
        if self.name:
            return self.name
        if self.owner is not None:
            suffix = f".{self.index}" if len(self.owner.outputs) > 1 else ""
            return f"{self.owner.op.name}{suffix}"
        return f"<{self.kind}>"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label()}: {self.type.describe()})"

    def _repr_html_(self) -> str | None:
        """Jupyter shows the graph explorer of a computed variable (symgraph.explorer)."""
        from ..explorer import repr_html

        return repr_html(self)

    def __hash__(self) -> int:
        return id(self)

    # Pickling and deep-copying a computed variable goes through its node's ancestors in
    # topological order, not along its links (graph/pickling.py): graphs are deeper than the
    # recursion limit. Roots (inputs, constants, shared variables) pickle as plain objects.
    def __reduce_ex__(self, protocol: int) -> Any:
        if self.owner is None:  # (protocol 2's form: protocols 0 and 1 cannot pickle slots)
            return super().__reduce_ex__(max(protocol, 2))
        from .pickling import reduce_variable

        return reduce_variable(self)

    def __copy__(self) -> "Variable":
        return _copy_slots(self)

    def __bool__(self) -> bool:
        """True, as in Theano (so that ``if not W:`` tests whether ``W`` was given), except for the
        result of a comparison, whose truth value is only known when the graph runs."""
        owner = self.owner
        if owner is not None and owner.op.boolean_result and self.type.dtype == "bool":
            raise TypeError(
                f"the truth value of the comparison {self.label()} is unknown until the graph runs "
                "(a chained comparison such as a < b < c asks for it too); use "
                "sg.switch(condition, a, b) (or sg.where) to choose elementwise inside the graph, or "
                "sg.ifelse(condition, then_branch, else_branch) to compute one branch only"
            )
        return True

    def __iter__(self):
        raise TypeError(
            f"symbolic variable {self.label()} cannot be iterated over: its length is only known "
            "when the graph runs; index it (x[i]) instead"
        )

    def __len__(self) -> int:
        raise TypeError(f"len() of symbolic variable {self.label()}: use {self.label()}.shape[0]")

    def eval(self, inputs_to_values: dict | None = None, phase: str | None = None) -> Any:
        """Compile (once, cached) and compute this variable; never changes any state.

        ``inputs_to_values`` maps the input variables it depends on to values. No update is
        applied and no random stream advances.
        """
        from ..compile.function import evaluate  # the graph must not depend on the compiler

        return evaluate(self, inputs_to_values, phase)


class Constant(Variable):
    """A fixed value, stored read-only in the graph."""

    __slots__ = ("_signature", "data")

    def __init__(self, type: TensorType, data: np.ndarray, name: str | None = None):
        super().__init__(type, None, 0, name)
        data = np.array(data, dtype=type.numpy_dtype, copy=True)
        data.flags.writeable = False
        self.data = data
        self._signature = None

    def __reduce_ex__(self, protocol: int) -> tuple:
        # Built again on loading: read-only as before (numpy loads arrays writeable), and without
        # the cached signature (which would store the values a second time).
        return (_constant, (self.type, self.data, self.name))

    @property
    def kind(self) -> str:
        return "constant"

    def signature(self) -> tuple:
        """Equal for constants of equal dtype, shape and values (used to merge them)."""
        if self._signature is None:
            self._signature = (self.data.dtype.str, self.data.shape, self.data.tobytes())
        return self._signature

    def key(self) -> object:
        """Equal for small constants (64 values at most) of equal dtype, shape and values; a larger
        one is equal to itself only (comparing its bytes would cost more than it saves)."""
        return self.signature() if self.data.size <= 64 else id(self)

    def label(self) -> str:
        if self.name:
            return self.name
        if self.data.size <= 4:
            text = np.array2string(self.data, separator=", ")
            return text if self.data.ndim else repr(self.data.item())
        return f"constant{format_shape(self.data.shape)}"


#: Held while shared state is read or written: by every call of a compiled function that touches
#: shared variables (so concurrent calls behave as if made one after another), and by
#: ``get_value``, ``set_value`` and the random streams when they reseed their generators.
STATE_LOCK = threading.RLock()


class SharedVariable(Variable):
    """State that lives between calls of compiled functions (weights, statistics, random state).

    Read and write its value with :meth:`get_value` and :meth:`set_value`. A compiled function
    reads every shared value at the start of a call and commits its updates at the end, all of
    them or (when the call raises) none. A tensor update of unchanged shape is written into the
    shared variable's own array, in every mode, so an array taken with ``get_value(borrow=True)``
    follows the updates; ``get_value()`` (a copy) is a snapshot.
    """

    __slots__ = ("_value",)

    def __init__(self, type: Type, value: Any, name: str | None = None, borrow: bool = False):
        super().__init__(type, None, 0, name)
        self._value = self._filter(value, borrow)

    @property
    def kind(self) -> str:
        return "shared"

    def _filter(self, value: Any, borrow: bool) -> Any:
        if isinstance(value, Variable):
            raise TypeError(f"shared variable {self.label()} takes a value, not the symbolic variable {value.label()}")
        filtered = self.type.filter(value, what=f"shared variable {self.label()}")
        # The user's memory: ``value`` itself, or a view of it (an ndarray subclass made plain).
        users = filtered is value or (isinstance(value, np.ndarray) and np.may_share_memory(filtered, value))
        # Compiled functions update shared arrays in place: a read-only one is copied even if borrowed.
        read_only = isinstance(filtered, np.ndarray) and not filtered.flags.writeable
        if users and (not borrow or read_only):
            filtered = self.type.copy_value(filtered)
        return filtered

    def get_value(self, borrow: bool = False) -> Any:
        """The current value: a copy, taken between calls (never half-updated by a call that is
        committing), or with ``borrow=True`` the shared variable's own array, which later calls
        update in place (while its shape stays the same)."""
        with STATE_LOCK:
            return self._value if borrow else self.type.copy_value(self._value)

    def set_value(self, value: Any, borrow: bool = False) -> None:
        """Replace the value. Its dtype and number of dimensions must stay; the shape may change
        (unless it was declared with ``shape=``). The array is copied unless ``borrow=True``, in
        which case compiled functions will update the given array in place."""
        filtered = self._filter(value, borrow)
        with STATE_LOCK:  # never in the middle of a call that reads it
            self._value = filtered


class Apply:
    """One application of an op to input variables, giving output variables.

    ``source`` is the user's line that built it; ``gradient`` says whether ``sg.grad`` made it;
    ``scope`` is the user-level call that built it (a ``batch_norm``, a loss...), or ``None``.
    """

    __slots__ = ("gradient", "inputs", "op", "outputs", "scope", "source")

    def __init__(
        self,
        op: "Op",
        inputs: Sequence[Variable],
        output_types: Sequence[Type],
        output_names: Sequence[str | None] | None = None,
    ):
        self.op = op
        self.inputs = tuple(inputs)
        if output_names:
            self.outputs = tuple(
                [
                    Variable(output_type, self, index, name)
                    for index, (output_type, name) in enumerate(zip(output_types, output_names))
                ]
            )
        # Most nodes: built for every node of every pass, so kept cheap (one output most of all).
        elif type(output_types) is list and len(output_types) == 1:
            self.outputs = (Variable(output_types[0], self),)
        else:
            self.outputs = tuple([Variable(output_type, self, index) for index, output_type in enumerate(output_types)])
        context = build_context  # a forced line (as rewrites give) is read here, sparing a call
        source = context.source
        self.source = source if source is not None else user_source()
        self.gradient = context.gradient
        self.scope: Scope | None = context.scope

    def __reduce_ex__(self, protocol: int) -> tuple:
        from .pickling import reduce_node

        return reduce_node(self)

    def __copy__(self) -> "Apply":
        return _copy_slots(self)

    @property
    def out(self) -> Variable:
        (output,) = self.outputs
        return output

    def describe(self) -> str:
        """``op(input shapes) built at file:line: code``, for error messages."""
        inputs = ", ".join(f"{v.label()}: {v.type.describe()}" for v in self.inputs)
        return f"{self.op.name}({inputs}), built at {describe(self.source)}"

    def __repr__(self) -> str:
        inputs = ", ".join(variable.label() for variable in self.inputs)
        return f"Apply({self.op.name}({inputs}))"


def _constant(type: TensorType, data: np.ndarray, name: str | None) -> Constant:
    return Constant(type, data, name)


def _copy_slots(obj: Any) -> Any:
    """A shallow copy of a variable or node (what ``copy.copy`` gave before they had a
    ``__reduce_ex__`` of their own)."""
    cls = type(obj)
    new = cls.__new__(cls)
    for klass in cls.__mro__:
        for slot in klass.__dict__.get("__slots__", ()):
            if slot != "__weakref__" and hasattr(obj, slot):
                setattr(new, slot, getattr(obj, slot))
    return new
