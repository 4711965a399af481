"""The op: one kind of operation, with its rules side by side.

``sg.Op`` is public: a subclass names its parameters in ``__props__`` and gives

- ``output_types(*input_types)`` (or a whole ``make_node``): the types of its outputs, checked
  while the graph is built (dtype promotion, static shapes);
- ``perform(*inputs)``: the reference computation on numpy arrays, returning the output (a tuple
  when there are several);
- ``grad(node, output_grads, needed)``: the gradients of its inputs, built of other ops, so that a
  gradient is a graph like any other.

Two ops are equal exactly when they are the same class with equal ``__props__`` values: equal
nodes are merged by the compiler, so ``__props__`` must name every parameter that changes the
computation. Ops are plain data: they pickle and deep-copy.

Every subclass registers itself in ``OP_CLASSES`` under ``module.qualname`` when its class
statement runs: that is how ``sg.load`` finds an op's class by the name a file gives, never by
importing a module the file names (so a user's ops must be imported before loading).

Optional facts about the computation: ``view_map`` (outputs that may share memory with an input),
``stochastic`` (draws random numbers), ``phase_dependent`` (computes differently in ``'train'``
and ``'predict'``: ``specialize`` says how). How a backend runs an op is the backend's business:
each has a table from op classes to kernels (``symgraph/backends/``), and an op without an entry
runs its ``perform``.

    class Cube(sg.Op):
        __props__ = ()
        def output_types(self, x):
            return [x]
        def perform(self, x):
            return x ** 3
        def grad(self, node, output_grads, needed):
            (x,), (g,) = node.inputs, output_grads
            return [g * 3 * x * x]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .basic import Apply, SharedVariable, Variable
from .type import Type

#: Every ``Op`` subclass by its name, ``module.qualname`` (the latest class of a name wins, as
#: when a notebook runs a class statement again).
OP_CLASSES: dict[str, type["Op"]] = {}


def op_class_name(cls: type) -> str:
    """The name a saved file gives an op's class: ``module.qualname``."""
    return f"{cls.__module__}.{cls.__qualname__}"


class Op:
    """One kind of operation. Subclass it to add an op (see the module's docstring)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        OP_CLASSES[op_class_name(cls)] = cls

    #: Attributes that, with the class, make two ops equal (so that equal nodes can be merged).
    __props__: tuple[str, ...] = ()
    #: Draws random numbers: never merged with another node; its state is updated by the function.
    stochastic = False
    #: Computes differently when training and predicting: ``specialize`` says how.
    phase_dependent = False
    #: ``{output index: input index}`` for outputs that may be a view of (share memory with) an input.
    view_map: dict[int, int] = {}
    #: Its ``view_map`` outputs are read-only views (``numpy.broadcast_to``): never written into.
    read_only_output = False
    #: Reads nothing of its inputs but their shapes: scheduled as soon as they exist.
    reads_only_shape = False
    #: Its boolean outputs are truth values (comparisons, and logical combinations of them): their
    #: Python truth value raises, so that ``if x > 0:`` cannot pass silently (every other variable
    #: is true, as in Theano).
    boolean_result = False

    @property
    def name(self) -> str:
        """How printing and error messages call it (never used to compare ops)."""
        return _snake_case(type(self).__name__)

    # --- building -----------------------------------------------------------------------------
    def output_types(self, *input_types: Type) -> Sequence[Type]:
        """The types of the outputs, from the types of the inputs; raises on what cannot work."""
        raise NotImplementedError(f"{type(self).__name__} must define output_types or make_node")

    def make_node(self, *inputs: Variable) -> Apply:
        return Apply(self, inputs, self.output_types(*[variable.type for variable in inputs]))

    def __call__(self, *inputs: Variable) -> Any:
        node = self.make_node(*inputs)
        return node.outputs[0] if len(node.outputs) == 1 else node.outputs

    # --- computing ----------------------------------------------------------------------------
    def perform(self, *inputs: Any) -> Any:
        """The reference computation: input values in, the output value (a tuple if several) out."""
        raise NotImplementedError(f"{type(self).__name__} must define perform")

    # --- differentiating ----------------------------------------------------------------------
    def grad(
        self, node: Apply, output_grads: Sequence[Variable | None], needed: Sequence[bool]
    ) -> Sequence[Variable | None]:
        """The gradient with respect to each input, given those of the outputs (``None`` for an
        output the cost does not depend on); ``needed[i]`` says whether input ``i``'s is wanted.
        ``None`` for an input means no gradient flows."""
        raise NotImplementedError(f"the operation {self.name} has no gradient: cannot differentiate {node.describe()}")

    # --- phases and state ---------------------------------------------------------------------
    def specialize(self, node: Apply, phase: str) -> tuple[Sequence[Variable], Sequence[tuple]]:
        """For phase-dependent ops: the variables that replace the node's outputs in ``phase``,
        and the automatic ``(shared variable, new value)`` updates that phase needs."""
        raise NotImplementedError

    def state_updates(self, node: Apply) -> list[tuple[SharedVariable, Variable]]:
        """For stochastic ops: the updates that advance their random state after a call."""
        return []

    # --- identity -----------------------------------------------------------------------------
    def _identity(self) -> tuple:
        # Ops are immutable once built, so their identity is computed once (and not pickled).
        identity = self.__dict__.get("_identity_memo")
        if identity is None:
            identity = (type(self),) + tuple(_hashable(getattr(self, prop)) for prop in self.__props__)
            self.__dict__["_identity_memo"] = identity
        return identity

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_identity_memo", None)
        state.pop("_hash_memo", None)
        return state

    def __eq__(self, other: object) -> bool:
        return self is other or (
            type(self) is type(other)
            and hash(self) == hash(other)  # unequal ops (nearly always) differ here, cheaply
            and self._identity() == other._identity()  # type: ignore[attr-defined]
        )

    def __hash__(self) -> int:
        # Compilers hash ops for every node (merging, rules, kernels), several times: computed
        # once, and read back as a plain attribute (the quickest read Python has).
        try:
            return self._hash_memo
        except AttributeError:
            memo = self.__dict__["_hash_memo"] = hash(self._identity())
            return memo

    def __str__(self) -> str:
        # Left out: identity tokens (``key``), and parameters that are functions (an elementwise
        # op's computation and gradient rules) or only repeat the op's name (``kind='sum'``).
        props = [
            f"{prop}={value!r}"
            for prop in self.__props__
            if prop not in ("name", "key")
            and not callable(value := getattr(self, prop))
            and not (isinstance(value, tuple) and value and callable(value[0]))
            and value != self.name
        ]
        return f"{self.name}{{{', '.join(props)}}}" if props else self.name

    def __repr__(self) -> str:
        return str(self)


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((key, _hashable(item)) for key, item in value.items()))
    return value


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
