"""What every backend does the same way at run time: converting arguments, naming the node an
error came from, debug checks, and committing updates all or none."""

from __future__ import annotations

import functools
import operator
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import InputError, NodeError
from ..graph.basic import Apply, Constant, SharedVariable, Variable
from ..graph.source import describe
from ..graph.type import TensorType, format_shape
from ..ops.shape import AllocEmpty


# --- arguments ------------------------------------------------------------------------------------
def count_checker(inputs: Sequence[Variable], name: str) -> Callable[[int], None]:
    """What a function calls when given the wrong number of arguments."""
    listed = ", ".join(variable.label() for variable in inputs) or "none"

    def wrong_count(given: int) -> None:
        raise InputError(f"function {name} takes {len(inputs)} argument(s) ({listed}), but {given} were given")

    return wrong_count


def argument_converter(variable: Variable, position: int, name: str, allow_downcast: bool) -> Callable[[Any], Any]:
    """The conversion of argument ``position`` to its input's type, raising an error naming it."""
    what = f"argument {position} ({variable.label()}) of function {name}"
    variable_type = variable.type
    return lambda value: variable_type.filter(value, what=what, allow_downcast=allow_downcast)


def root_array(array: Any) -> Any:
    """The array whose memory ``array`` is a view of (itself when it owns its memory)."""
    while isinstance(array, np.ndarray) and array.base is not None:
        array = array.base
    return array


def unalias(arguments: tuple, written: tuple) -> tuple:
    """The arguments, each copied if it shares memory with one of the arrays ``written`` (shared
    values a call overwrites in place): every value is computed from the values at the start of
    the call, even when the caller passes a shared variable's own array."""
    roots = {id(root_array(array)) for array in written}
    return tuple(
        argument.copy() if isinstance(argument, np.ndarray) and id(root_array(argument)) in roots else argument
        for argument in arguments
    )


# --- committing -----------------------------------------------------------------------------------
def in_place_commit_is_safe() -> bool:
    """Whether writing updates straight into shared arrays cannot raise half-way: no numpy
    floating-point error is set to raise (``np.errstate(over='raise')``, ``'call'``), and no
    warning filter turns numpy's warnings into errors. Otherwise a call computes its updates into
    new arrays first and copies them in at the end, which cannot fail. (Asked at every call of a
    function with updates: the answer for numpy's error state is remembered per state object.)"""
    return _errors_do_not_raise() and "error" not in map(_action, warnings.filters)


_action = operator.itemgetter(0)


def _errors_do_not_raise() -> bool:
    global _errors_known
    state = _error_state() if _error_state is not None else None
    known = _errors_known
    if state is None or known[0] is not state:
        known = (state, not any(action in ("raise", "call") for action in np.geterr().values()))
        _errors_known = known
    return known[1]


try:  # numpy >= 2 keeps its error state in a context variable, one new object per change
    from numpy._core._ufunc_config import _extobj_contextvar

    _error_state: Callable[[], Any] | None = _extobj_contextvar.get
except ImportError:  # elsewhere np.geterr() is asked every time
    _error_state = None
_errors_known: tuple = (None, False)


def commit(shared: SharedVariable, value: Any) -> None:
    """Make ``value`` (computed for ``shared``, already of its dtype and never aliasing another
    shared value) the shared variable's value: written into its array when the shape is the same,
    so arrays taken with ``get_value(borrow=True)`` follow, else replacing it. Cannot fail."""
    current = shared._value
    if value is current:
        return
    if isinstance(shared.type, TensorType) and value.shape == current.shape:
        np.copyto(current, value)
    else:
        shared._value = value


# --- errors -----------------------------------------------------------------------------------------
def node_error(node: Apply, values: Sequence[Any], error: BaseException) -> NodeError:
    """``error`` again, as a ``NodeError`` of the same class, naming the node, the shapes its
    inputs had and the user's line that built it."""
    return NodeError.wrapping(error, describe_failure(node, values, error))


def describe_failure(node: Apply, values: Sequence[Any], error: BaseException) -> str:
    described = []
    for variable, value in zip(node.inputs, values):
        if isinstance(value, (np.ndarray, np.generic)):
            described.append(f"{variable.label()}: {value.dtype} {value.shape}")
        else:
            described.append(f"{variable.label()}: {variable.type.describe()}")
    return (
        f"{type(error).__name__} in {node.op.name}, built at {describe(node.source)}\n"
        f"  inputs: {', '.join(described) or 'none'}\n"
        f"  {type(error).__name__}: {error}"
    )


def debug_check(node: Apply, values: Sequence[Any]) -> None:
    """Debug mode: each result has its declared dtype and static shape, and no NaN or Inf."""
    for output, value in zip(node.outputs, values):
        if not isinstance(output.type, TensorType):
            continue
        array = np.asarray(value)
        if array.dtype != output.type.numpy_dtype:
            raise TypeError(f"debug mode: {node.op.name} gave dtype {array.dtype}, declared {output.type.dtype}")
        if not output.type.accepts_shape(array.shape):
            raise ValueError(
                f"debug mode: {node.op.name} gave shape {array.shape}, declared {format_shape(output.type.shape)}"
            )
        if isinstance(node.op, AllocEmpty):
            continue  # uninitialized by design: anything may be there
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            kind = "NaN" if np.isnan(array).any() else "Inf"
            if kind not in _nonfinite_constants_above(node):
                raise FloatingPointError(f"debug mode: {node.op.name} gave {kind} in {output.label()}")


@functools.lru_cache(maxsize=256)
def _nonfinite_constants_above(node: Apply) -> frozenset[str]:
    """The kinds of non-finite value (``'NaN'``, ``'Inf'``) the graph holds on purpose above
    ``node``: constants such as the ``-inf`` filling the partial windows of a max pooling. Such a
    value flowing down is the graph's meaning, not an error; one the node makes is still caught.
    Asked only about nodes whose results hold NaN or Inf (debug mode's rare path), and remembered
    for the last nodes asked about (a bounded cache: nodes are not weakly referenceable)."""
    kinds: set[str] = set()
    seen, stack = set(), list(node.inputs)
    while stack:
        variable = stack.pop()
        if id(variable) in seen:
            continue
        seen.add(id(variable))
        if isinstance(variable, Constant):
            data = np.asarray(variable.data)
            if data.dtype.kind == "f":
                kinds.update(kind for kind, test in (("NaN", np.isnan), ("Inf", np.isinf)) if test(data).any())
        elif variable.owner is not None:
            stack.extend(variable.owner.inputs)
    return frozenset(kinds)
