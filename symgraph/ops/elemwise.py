"""Elementwise operations: numpy ufuncs on broadcast operands, each with its gradient rule.

Every operation is one :class:`Elemwise` instance: a name, the numpy function that computes it,
and one gradient rule per input, ``rule(*inputs, output, output_grad)``, giving the gradient at the
broadcast shape; :meth:`Elemwise.grad` undoes the broadcasting for every op with ``sum_to``.
``ZERO`` marks a piecewise-constant input (its gradient is zero); ``None`` an input with no
gradient at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..config import config
from ..errors import DTypeError, ShapeError
from ..graph.basic import Apply, Variable
from ..graph.op import Op
from ..graph.type import TensorType, broadcast_static_shapes, fits_into
from .basic import as_tensor, cast, promote_operands
from .shape import sum_to, zeros_like

ZERO = "zero"
_WEAK_EXAMPLE = {bool: False, int: 0, float: 0.0}


def ufunc_rule(ufunc: np.ufunc) -> Callable[[list], Sequence[np.dtype]]:
    """Loop dtypes (inputs then output) exactly as numpy resolves them for ``ufunc``."""
    extra = (None,) * ufunc.nout
    return lambda dtypes: ufunc.resolve_dtypes(tuple(dtypes) + extra)


def common_dtype_rule(dtypes: list) -> list[np.dtype]:
    """Every operand and the output in ``numpy.result_type`` of them (weak Python scalars too)."""
    common = np.result_type(*[_WEAK_EXAMPLE.get(dtype, dtype) for dtype in dtypes])
    return [common] * (len(dtypes) + 1)


class Elemwise(Op):
    """An elementwise operation on operands broadcast together, as numpy does."""

    __props__ = ("name",)
    name = None  # each instance names itself

    def __init__(
        self,
        name: str,
        function: Callable[..., Any],
        grads: Sequence[Any] | None,
        *,
        dtype_rule: Callable[[list], Sequence[np.dtype]] | None = None,
        accepts_out: bool = True,
        true_division: bool = False,
        doc: str | None = None,
    ):
        self.name = name
        self.function = function
        # Each operation is an instance, so each gets its own docstring (IPython's ``sg.exp?``).
        count = function.nin if isinstance(function, np.ufunc) else len(grads or ())
        operands = ", ".join(("x", "y", "z")[:count])
        self.__doc__ = doc or (
            f"``{name}({operands})``: numpy's ``{getattr(function, '__name__', name)}``, elementwise, "
            "with numpy's broadcasting and dtype rules (Python numbers take the tensor's dtype)."
        )
        self.nin = function.nin if isinstance(function, np.ufunc) else len(grads or ())
        self.grads = tuple(grads) if grads is not None else (None,) * self.nin
        self.dtype_rule = dtype_rule or ufunc_rule(function)
        self.accepts_out = accepts_out
        self.true_division = true_division

    def __call__(self, *operands: Any) -> Variable:
        if len(operands) != self.nin:
            raise TypeError(f"{self.name} takes {self.nin} operand(s), got {len(operands)}")
        inputs = promote_operands(self.name, operands, self._input_dtypes, true_division=self.true_division)
        return self.make_node(*inputs).outputs[0]

    def _input_dtypes(self, dtypes: list) -> Sequence[np.dtype]:
        return self.dtype_rule(dtypes)[: self.nin]

    def output_types(self, *input_types: TensorType) -> list[TensorType]:
        try:
            dtype = self.dtype_rule([t.numpy_dtype for t in input_types])[-1]
        except (TypeError, np.exceptions.DTypePromotionError) as error:
            dtypes = ", ".join(t.dtype for t in input_types)
            raise DTypeError(f"{self.name} cannot take dtypes ({dtypes}): {error}") from None
        try:
            shape = broadcast_static_shapes(*[t.shape for t in input_types])
        except ShapeError as error:
            raise ShapeError(f"{self.name}: {error}") from None
        return [TensorType(dtype, shape)]

    def impl(self, node: Apply) -> Callable[..., Any]:
        return self.function

    def grad(self, node: Apply, output_grads: Sequence[Variable | None], needed: Sequence[bool]) -> list:
        (output_grad,) = output_grads
        output = node.outputs[0]
        gradients: list[Variable | None] = []
        for position, (variable, rule) in enumerate(zip(node.inputs, self.grads)):
            if not needed[position] or rule is None or not variable.type.is_float:
                gradients.append(None)
            elif rule is ZERO:
                gradients.append(zeros_like(variable))
            else:
                gradient = rule(*node.inputs, output, output_grad)
                others_fit = all(
                    fits_into(other.type.shape, variable.type.shape) for other in node.inputs if other is not variable
                )
                if not others_fit:  # the input may have been broadcast: sum its gradient back
                    gradient = sum_to(gradient, variable)
                gradients.append(cast(gradient, variable.dtype))
        return gradients


def same_dtype_rule(dtypes: list) -> list[np.dtype]:
    """A one-operand op whose output keeps the operand's dtype (relu, say)."""
    (dtype,) = dtypes
    if not isinstance(dtype, np.dtype):  # a Python number: numpy's default dtype for it
        dtype = np.result_type(_WEAK_EXAMPLE[dtype])
    return [dtype, dtype]


def _where_function(condition: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(condition, a, b)


def _where_rule(dtypes: list) -> list[np.dtype]:
    condition = dtypes[0] if isinstance(dtypes[0], np.dtype) else np.dtype(bool)
    common = common_dtype_rule(dtypes[1:])[0]
    return [condition, common, common, common]


def _half_on_ties(x: Variable, y: Variable, g: Variable) -> Variable:
    """``g`` where ``x`` wins, half of it on a tie (PyTorch's rule for maximum and minimum)."""
    return where(eq(x, y), g * 0.5, g * gt(x, y))


# --- the operations ---------------------------------------------------------------------------
# Gradient rules: (inputs..., output, output_grad) -> gradient at the broadcast shape.
add = Elemwise("add", np.add, [lambda x, y, z, g: g, lambda x, y, z, g: g])
sub = Elemwise("sub", np.subtract, [lambda x, y, z, g: g, lambda x, y, z, g: -g])
mul = Elemwise("mul", np.multiply, [lambda x, y, z, g: g * y, lambda x, y, z, g: g * x])
true_div = Elemwise(
    "true_div",
    np.true_divide,
    [lambda x, y, z, g: g / y, lambda x, y, z, g: -(g * z) / y],
    true_division=True,
)
floor_div = Elemwise("floor_div", np.floor_divide, [ZERO, ZERO])
mod = Elemwise("mod", np.remainder, [lambda x, y, z, g: g, lambda x, y, z, g: -g * floor_div(x, y)])
pow = Elemwise(
    "pow",
    np.power,
    [
        lambda x, y, z, g: g * y * x ** (y - 1),
        lambda x, y, z, g: where(eq(x, 0), 0.0, g * z * log(where(eq(x, 0), 1.0, x))),
    ],
)
neg = Elemwise("neg", np.negative, [lambda x, z, g: -g])
abs = Elemwise("abs", np.absolute, [lambda x, z, g: g * sign(x)])
sign = Elemwise("sign", np.sign, [ZERO])
exp = Elemwise("exp", np.exp, [lambda x, z, g: g * z])
log = Elemwise("log", np.log, [lambda x, z, g: g / x])
log1p = Elemwise("log1p", np.log1p, [lambda x, z, g: g / (x + 1)])
expm1 = Elemwise("expm1", np.expm1, [lambda x, z, g: g * (z + 1)])
sqrt = Elemwise("sqrt", np.sqrt, [lambda x, z, g: g / (z * 2)])
square = Elemwise("square", np.square, [lambda x, z, g: g * (x * 2)])
sin = Elemwise("sin", np.sin, [lambda x, z, g: g * cos(x)])
cos = Elemwise("cos", np.cos, [lambda x, z, g: -(g * sin(x))])
tanh = Elemwise("tanh", np.tanh, [lambda x, z, g: g * (1 - square(z))])
floor = Elemwise("floor", np.floor, [ZERO])
ceil = Elemwise("ceil", np.ceil, [ZERO])
round = Elemwise("round", np.rint, [ZERO])
maximum = Elemwise(
    "maximum", np.maximum, [lambda x, y, z, g: _half_on_ties(x, y, g), lambda x, y, z, g: _half_on_ties(y, x, g)]
)
minimum = Elemwise(
    "minimum", np.minimum, [lambda x, y, z, g: _half_on_ties(y, x, g), lambda x, y, z, g: _half_on_ties(x, y, g)]
)
clip = Elemwise(
    "clip",
    np.clip,
    [
        lambda x, lo, hi, z, g: g * and_(ge(x, lo), le(x, hi)),
        lambda x, lo, hi, z, g: g * lt(x, lo),
        lambda x, lo, hi, z, g: g * gt(x, hi),
    ],
    dtype_rule=common_dtype_rule,
)
_where_op = Elemwise(
    "where",
    _where_function,
    [None, lambda c, a, b, z, g: where(c, g, 0.0), lambda c, a, b, z, g: where(c, 0.0, g)],
    dtype_rule=_where_rule,
    accepts_out=False,
)


def where(condition: Any, a: Any, b: Any) -> Variable:
    """``numpy.where``: ``a`` where ``condition`` holds, else ``b`` (alias ``switch``).

    Only ``a`` and ``b`` are promoted together; the condition is never cast to their dtype (a bool
    condition with Python floats gives floatX, as ``x_int * 2.5`` does)."""
    a, b = promote_operands("where", [a, b], lambda dtypes: common_dtype_rule(dtypes)[:2])
    return _where_op.make_node(as_tensor(condition), a, b).outputs[0]


switch = where
eq = Elemwise("eq", np.equal, None)
neq = Elemwise("neq", np.not_equal, None)
lt = Elemwise("lt", np.less, None)
le = Elemwise("le", np.less_equal, None)
gt = Elemwise("gt", np.greater, None)
ge = Elemwise("ge", np.greater_equal, None)
and_ = Elemwise("and", np.bitwise_and, None)
or_ = Elemwise("or", np.bitwise_or, None)
xor = Elemwise("xor", np.bitwise_xor, None)
invert = Elemwise("invert", np.invert, None)


def as_float(x: Any) -> Variable:
    """``x`` itself if it is a float tensor, else ``x`` cast to floatX."""
    x = as_tensor(x)
    return x if x.type.is_float else cast(x, config.floatX)
