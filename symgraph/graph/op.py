"""The op: one kind of operation, with its rules side by side.

An op says how it builds its node (``output_types``: dtype promotion and static-shape checks, at
build time), how it computes with numpy (``perform``, or a callable specialised per node by
``impl``), and how it is differentiated (``grad``, built of other ops, so gradients are graphs).
Optional rules: ``view_map`` (outputs that may share memory with an input), ``accepts_out``
(elementwise computations that can write into a given array), ``specialize`` for phase-dependent
ops and ``state_updates`` for stochastic ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from .basic import Apply, SharedVariable, Variable
from .type import Type


class Op:
    #: Attributes that, with the class, make two ops equal (so that equal nodes can be merged).
    __props__: tuple[str, ...] = ()
    #: Draws random numbers: never merged with another node; its state is updated by the function.
    stochastic = False
    #: Computes differently when training and predicting: ``specialize`` says how.
    phase_dependent = False
    #: ``{output index: input index}`` for outputs that may be a view of (share memory with) an input.
    view_map: dict[int, int] = {}
    #: The callable ``impl`` returns takes ``out=``, an array to write its (single) output into,
    #: whose shape is the broadcast of the inputs' shapes (elementwise computations).
    accepts_out = False
    #: Inputs that ``impl(node, inplace=True)`` overwrites to make its result (``set_subtensor``).
    destroyable_inputs: tuple[int, ...] = ()
    #: Its ``view_map`` outputs are read-only views (``numpy.broadcast_to``): never written into.
    read_only_output = False
    #: Reads nothing of its inputs but their shapes: scheduled as soon as they exist.
    reads_only_shape = False

    @property
    def name(self) -> str:
        return _snake_case(type(self).__name__)

    # --- building -----------------------------------------------------------------------------
    def output_types(self, *input_types: Type) -> Sequence[Type]:
        """The types of the outputs, from the types of the inputs; raises on what cannot work."""
        raise NotImplementedError(f"{type(self).__name__} must define output_types")

    def make_node(self, *inputs: Variable) -> Apply:
        return Apply(self, inputs, self.output_types(*[variable.type for variable in inputs]))

    def __call__(self, *inputs: Variable) -> Any:
        node = self.make_node(*inputs)
        return node.outputs[0] if len(node.outputs) == 1 else node.outputs

    # --- computing ----------------------------------------------------------------------------
    def perform(self, *inputs: Any) -> Any:
        """The numpy computation: input values in, the output value (a tuple if several) out."""
        raise NotImplementedError(f"{type(self).__name__} must define perform or impl")

    def impl(self, node: Apply) -> Callable[..., Any]:
        """The callable the compiled program calls for ``node``; chosen once, at compile time."""
        return self.perform

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
        # Ops are immutable once built, so their identity is computed once.
        identity = self.__dict__.get("_identity_cache")
        if identity is None:
            identity = (type(self),) + tuple(_hashable(getattr(self, prop)) for prop in self.__props__)
            self.__dict__["_identity_cache"] = identity
        return identity

    def __eq__(self, other: object) -> bool:
        return self is other or (
            type(self) is type(other) and self._identity() == other._identity()  # type: ignore[attr-defined]
        )

    def __hash__(self) -> int:
        return hash(self._identity())

    def __str__(self) -> str:
        # Left out: identity tokens (``key``) and properties that only repeat the op's name
        # (``kind='sum'`` of a sum).
        props = [
            f"{prop}={value!r}"
            for prop in self.__props__
            if prop not in ("name", "key") and (value := getattr(self, prop)) != self.name
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
