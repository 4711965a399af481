"""Turning Python values into graph variables, and numpy 2's dtype promotion for symbolic operands.

Python ``bool``/``int``/``float`` are *weak*: they take the dtype of the tensor they meet
(``float32_x * 2.0`` stays float32), as numpy 2 does. numpy scalars and arrays are not. Two
exceptions give ``config.floatX``: an integer tensor with a Python float, and ``int / int``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..config import config
from ..errors import DTypeError
from ..graph.basic import Apply, Constant, Variable
from ..graph.op import Op
from ..graph.type import TensorType

WEAK_SCALARS = (bool, int, float)


def constant(value: Any, name: str | None = None, dtype: Any = None) -> Constant:
    """A constant of the graph. A Python float gives floatX, a Python int int64; an array keeps its
    dtype."""
    if isinstance(value, Variable):
        raise TypeError(f"sg.constant takes a value, not the symbolic variable {value.label()}")
    if dtype is None:
        dtype = default_dtype(value)
    try:
        data = np.asarray(value, dtype=dtype)
    except OverflowError as error:
        raise DTypeError(f"constant {value!r} does not fit dtype {dtype}: {error}") from None
    return Constant(TensorType(data.dtype, data.shape), data, name=name)


def default_dtype(value: Any) -> np.dtype:
    """The dtype a Python or numpy value gets when it becomes a tensor on its own."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.dtype
    array = np.asarray(value)
    if array.dtype == np.float64:
        return np.dtype(config.floatX)
    return array.dtype


def as_tensor(value: Any, name: str | None = None) -> Variable:
    """A variable for ``value``: a variable itself, or a constant made from a number or array."""
    if isinstance(value, Variable):
        return value
    if isinstance(value, (list, tuple)) and any(_contains_variable(item) for item in value):
        from .shape import stack  # a list holding variables (a shape, say) stacks them

        return stack([as_tensor(item) for item in value])
    return constant(value, name=name)


def _contains_variable(value: Any) -> bool:
    if isinstance(value, Variable):
        return True
    return isinstance(value, (list, tuple)) and any(_contains_variable(item) for item in value)


def _weak_type(value: Any) -> Any:
    """``int`` or ``float`` for a weak scalar; a Python bool is numpy's bool (the lowest kind, so
    it widens nothing), which ``ufunc.resolve_dtypes`` takes where it refuses the type ``bool``."""
    return np.dtype(bool) if isinstance(value, bool) else type(value)


def is_weak(value: Any) -> bool:
    """Whether ``value`` is a Python ``bool``/``int``/``float`` (not a numpy scalar): a weak operand."""
    return isinstance(value, WEAK_SCALARS) and not isinstance(value, np.generic)


def promote_operands(
    op_name: str,
    operands: Sequence[Any],
    resolve: Callable[[list], Sequence[np.dtype]],
    *,
    true_division: bool = False,
) -> list[Variable]:
    """The operands as variables whose dtypes give numpy 2's result (with floatX's exceptions).

    ``resolve`` maps operand dtypes (Python types ``bool``/``int``/``float`` for weak scalars) to
    the dtype each operand is computed in, as ``ufunc.resolve_dtypes`` does. Weak scalars become
    constants of that dtype; tensors stay as they are (numpy casts them while computing), except
    where floatX's exceptions ask for an explicit cast.
    """
    if all(isinstance(operand, Variable) and isinstance(operand.type, TensorType) for operand in operands):
        # Tensors alone (most nodes, and every gradient node): they stay as they are, unless
        # floatX's exception for ``int / int`` applies; the general path explains a failure.
        dtypes = [operand.type.numpy_dtype for operand in operands]
        if not (true_division and all(dtype.kind in "biu" for dtype in dtypes)):
            try:
                resolve(dtypes)
            except (TypeError, np.exceptions.DTypePromotionError):
                pass
            else:
                return list(operands)
    strong = [as_tensor(operand) if not is_weak(operand) else None for operand in operands]
    strong_types = [variable.type for variable in strong if variable is not None]
    for variable_type in strong_types:
        if not isinstance(variable_type, TensorType):
            raise DTypeError(f"{op_name} takes tensors, not {variable_type}")
    dtypes = [
        variable.type.numpy_dtype if variable is not None else _weak_type(operand)
        for operand, variable in zip(operands, strong)
    ]
    all_integral = all(t.numpy_dtype.kind in "biu" for t in strong_types)
    if (
        strong_types
        and all_integral
        and (any(isinstance(operand, float) and is_weak(operand) for operand in operands) or true_division)
    ):
        target = np.dtype(config.floatX)
        strong = [cast(variable, target) if variable is not None else None for variable in strong]
        dtypes = [
            target if variable is not None else _weak_type(operand) for operand, variable in zip(operands, strong)
        ]
    try:
        loop_dtypes = resolve(dtypes)
    except (TypeError, np.exceptions.DTypePromotionError) as error:
        described = ", ".join(d.name if isinstance(d, np.dtype) else f"Python {d.__name__}" for d in dtypes)
        raise DTypeError(f"{op_name} cannot take operands of dtypes ({described}): {error}") from None
    if not strong_types:  # Python numbers alone: a float is floatX, as sg.constant(2.0) is
        loop_dtypes = [np.dtype(config.floatX) if np.dtype(d).kind == "f" else d for d in loop_dtypes]
    result = []
    for operand, variable, dtype in zip(operands, strong, loop_dtypes):
        if variable is None:
            try:
                variable = constant(operand, dtype=dtype)
            except DTypeError as error:
                raise DTypeError(
                    f"{op_name}: the Python number {operand!r} does not fit dtype {dtype}: {error}"
                ) from None
        result.append(variable)
    return result


class Cast(Op):
    """``x.astype(dtype)``."""

    __props__ = ("dtype",)

    def __init__(self, dtype: str):
        self.dtype = np.dtype(dtype).name

    @property
    def name(self) -> str:
        return "cast"

    def output_types(self, x: TensorType) -> list[TensorType]:
        return [TensorType(self.dtype, x.shape)]

    def perform(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x).astype(self.dtype)

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        (x,) = node.inputs
        if not x.type.is_float or not node.outputs[0].type.is_float:
            return [None]
        return [cast(output_grads[0], x.dtype)]


def cast(x: Any, dtype: Any) -> Variable:
    """``x`` converted to ``dtype`` (``x.astype(dtype)``); ``x`` itself if it already has it."""
    x = as_tensor(x)
    dtype = np.dtype(dtype)
    if x.type.numpy_dtype == dtype:
        return x
    return Cast(dtype.name)(x)
