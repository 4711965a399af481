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
#: ``(ufunc, *operand dtypes) -> ufunc.resolve_dtypes(...)``, see ``Elemwise.loop_dtypes``.
_RESOLVED: dict[tuple, tuple] = {}
#: ``(ufunc, *input types) -> output type``, see ``Elemwise.output_types`` (asked for every node).
_OUTPUT_TYPES: dict[tuple, TensorType] = {}
_WEAK_EXAMPLE = {bool: False, int: 0, float: 0.0}


def ufunc_rule(ufunc: np.ufunc) -> Callable[[list], Sequence[np.dtype]]:
    """Loop dtypes (inputs then output) exactly as numpy resolves them for ``ufunc``."""
    extra = (None,) * ufunc.nout
    return lambda dtypes: ufunc.resolve_dtypes(tuple(dtypes) + extra)


def float_result_rule(dtypes: list) -> Sequence[np.dtype]:
    """A one-operand op computed in floats as ``numpy.exp`` is (integers and booleans give the
    float numpy's ``exp`` gives them: float16 for 8 bits, float64 for 32 and 64)."""
    return np.exp.resolve_dtypes(tuple(dtypes) + (None,))


def common_dtype_rule(dtypes: list) -> list[np.dtype]:
    """Every operand and the output in ``numpy.result_type`` of them (weak Python scalars too)."""
    common = np.result_type(*[_WEAK_EXAMPLE.get(dtype, dtype) for dtype in dtypes])
    return [common] * (len(dtypes) + 1)


class Elemwise(Op):
    """An elementwise operation on operands broadcast together, as numpy does.

    ``function`` computes it (a numpy ufunc, or a function taking ``out=`` when ``accepts_out``);
    ``grads`` holds one rule per input, ``rule(*inputs, output, output_grad)``, giving that input's
    gradient at the broadcast shape (``ZERO`` for a piecewise-constant input, ``None`` for none);
    ``dtype_rule`` maps the operands' dtypes to the loop's (inputs, then output), the ufunc's own
    resolution when ``None``. Rules are module-level functions, so that the op pickles. Two
    elementwise ops are equal only when they compute the same thing: same function, same rules.
    """

    __props__ = ("name", "function", "grads", "dtype_rule", "true_division")

    def __init__(
        self,
        name: str,
        function: Callable[..., Any],
        grads: Sequence[Any] | None,
        *,
        dtype_rule: Callable[[list], Sequence[np.dtype]] | None = None,
        accepts_out: bool = True,
        true_division: bool = False,
        boolean_result: bool = False,
        doc: str | None = None,
    ):
        if dtype_rule is None and not isinstance(function, np.ufunc):
            raise TypeError(f"elementwise op {name}: a function that is not a numpy ufunc needs a dtype_rule")
        self._name = name
        self.function = function
        # Each operation is an instance, so each gets its own docstring (IPython's ``sg.exp?``).
        count = function.nin if isinstance(function, np.ufunc) else len(grads or ())
        operands = ", ".join(("x", "y", "z")[:count])
        self.__doc__ = doc or (
            f"``{name}({operands})``: numpy's ``{getattr(function, '__name__', name)}``, elementwise, "
            "with numpy's broadcasting and dtype rules (Python numbers take the tensor's dtype)."
        )
        self.nin = count
        self.grads = tuple(grads) if grads is not None else (None,) * self.nin
        self.dtype_rule = dtype_rule
        self.accepts_out = accepts_out  #: ``function`` takes ``out=`` (the numpy backend writes in place)
        self.true_division = true_division
        self.boolean_result = boolean_result  #: a comparison (or logic on them): see ``Op.boolean_result``

    @property
    def name(self) -> str:
        return self._name

    def __str__(self) -> str:
        return self._name

    #: Functions ``rule(*operands) -> Variable | None`` tried when the op is called: a rule
    #: gives a numerically stable form that stands for the whole expression (``log(sigmoid(x))``
    #: is ``-softplus(-x)``), chosen while the graph is built so that every mode, ``.eval()`` and
    #: gradients compute it. Added with :func:`add_build_rule` by the module that knows the form.
    build_rules: tuple = ()

    def __call__(self, *operands: Any) -> Variable:
        if len(operands) != self.nin:
            raise TypeError(f"{self.name} takes {self.nin} operand(s), got {len(operands)}")
        for rule in self.build_rules:
            stable = rule(*operands)
            if stable is not None:
                return stable
        inputs = promote_operands(self.name, operands, self._input_dtypes, true_division=self.true_division)
        return self.make_node(*inputs).outputs[0]

    def loop_dtypes(self, dtypes: list) -> Sequence[np.dtype]:
        """The dtypes the operands are computed in, then the output's."""
        if self.dtype_rule is not None:
            return self.dtype_rule(dtypes)
        # numpy's resolution depends on the ufunc and the dtypes alone: asked for every node
        # built (twice), it is remembered.
        key = (self.function, *dtypes)
        resolved = _RESOLVED.get(key)
        if resolved is None:
            resolved = self.function.resolve_dtypes(tuple(dtypes) + (None,) * self.function.nout)
            if len(_RESOLVED) < 10_000:
                _RESOLVED[key] = resolved
        return resolved

    def _input_dtypes(self, dtypes: list) -> Sequence[np.dtype]:
        return self.loop_dtypes(dtypes)[: self.nin]

    def output_types(self, *input_types: TensorType) -> list[TensorType]:
        if self.dtype_rule is None:  # a ufunc's result type depends on it and the input types alone
            key = (self.function, *input_types)
            known = _OUTPUT_TYPES.get(key)
            if known is not None:
                return [known]
        try:
            dtype = self.loop_dtypes([t.numpy_dtype for t in input_types])[-1]
        except (TypeError, np.exceptions.DTypePromotionError) as error:
            dtypes = ", ".join(t.dtype for t in input_types)
            raise DTypeError(f"{self.name} cannot take dtypes ({dtypes}): {error}") from None
        try:
            shape = broadcast_static_shapes(*[t.shape for t in input_types])
        except ShapeError as error:
            raise ShapeError(f"{self.name}: {error}") from None
        result = TensorType(dtype, shape)
        if self.dtype_rule is None and len(_OUTPUT_TYPES) < 10_000:
            _OUTPUT_TYPES[key] = result
        return [result]

    def perform(self, *inputs: np.ndarray) -> np.ndarray:
        return self.function(*inputs)

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
                shape = variable.type.shape
                for other in node.inputs:
                    if other is not variable and not fits_into(other.type.shape, shape):
                        gradient = sum_to(gradient, variable)  # it may have been broadcast: summed back
                        break
                if not isinstance(gradient, Variable) or gradient.type.numpy_dtype != variable.type.numpy_dtype:
                    gradient = cast(gradient, variable.dtype)
                gradients.append(gradient)
        return gradients


def add_build_rule(op: Elemwise, rule: Callable[..., Variable | None]) -> None:
    """Have ``op`` try ``rule`` on its operands whenever it is called (see ``Elemwise.build_rules``)."""
    op.build_rules = (*op.build_rules, rule)


def same_dtype_rule(dtypes: list) -> list[np.dtype]:
    """A one-operand op whose output keeps the operand's dtype (relu, say)."""
    (dtype,) = dtypes
    if not isinstance(dtype, np.dtype):  # a Python number: numpy's default dtype for it
        dtype = np.result_type(_WEAK_EXAMPLE[dtype])
    return [dtype, dtype]


def _unchanged(x: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    if out is None:
        return x.copy()
    np.copyto(out, x)
    return out


def _round_half_to_even(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    if x.dtype.kind != "f":  # an integer is its own rounding
        return _unchanged(x, out)
    return np.rint(x, out=out)


def _round_half_away_from_zero(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    if x.dtype.kind != "f":
        return _unchanged(x, out)
    # x - trunc(x) is exact, so ties are found exactly (floor(|x| + 0.5) would round
    # 0.49999999999999994 up).
    whole = np.trunc(x)
    step = np.copysign(np.abs(x - whole) >= 0.5, x).astype(x.dtype, copy=False)
    return np.add(whole, step, out=out)


def _where_function(condition: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(condition, a, b)


def _where_rule(dtypes: list) -> list[np.dtype]:
    condition = dtypes[0] if isinstance(dtypes[0], np.dtype) else np.dtype(bool)
    common = common_dtype_rule(dtypes[1:])[0]
    return [condition, common, common, common]


def _half_on_ties(x: Variable, y: Variable, g: Variable) -> Variable:
    """``g`` where ``x`` wins over ``y``, half of it on a tie (PyTorch's rule for maximum and
    minimum; for minimum, "wins" means "is smaller", so the operands come swapped)."""
    return where(eq(x, y), g * 0.5, g * gt(x, y))


# --- gradient rules -----------------------------------------------------------------------------
# Each takes (inputs..., output, output_grad) and gives one input's gradient at the broadcast
# shape. Named module-level functions, so that the ops holding them pickle.
def _output_grad(*arguments: Variable) -> Variable:
    return arguments[-1]


def _negated_output_grad(*arguments: Variable) -> Variable:
    return -arguments[-1]


def _mul_x(x, y, z, g):
    return g * y


def _mul_y(x, y, z, g):
    return g * x


def _div_x(x, y, z, g):
    return g / y


def _div_y(x, y, z, g):
    return -(g * z) / y


def _mod_y(x, y, z, g):
    return -g * floor_div(x, y)


def _pow_x(x, y, z, g):
    return g * y * x ** (y - 1)


def _pow_y(x, y, z, g):
    return where(eq(x, 0), 0.0, g * z * log(where(eq(x, 0), 1.0, x)))


def _abs_x(x, z, g):
    return g * sign(x)


def _exp_x(x, z, g):
    return g * z


def _log_x(x, z, g):
    return g / x


def _log1p_x(x, z, g):
    return g / (x + 1)


def _expm1_x(x, z, g):
    return g * (z + 1)


def _sqrt_x(x, z, g):
    return g / (z * 2)


def _square_x(x, z, g):
    return g * (x * 2)


def _sin_x(x, z, g):
    return g * cos(x)


def _cos_x(x, z, g):
    return -(g * sin(x))


def _tanh_x(x, z, g):
    return g * (1 - square(z))


def _first_wins(x, y, z, g):
    return _half_on_ties(x, y, g)


def _second_wins(x, y, z, g):
    return _half_on_ties(y, x, g)


def _clip_x(x, low, high, z, g):
    return g * and_(ge(x, low), le(x, high))


def _clip_low(x, low, high, z, g):
    return g * lt(x, low)


def _clip_high(x, low, high, z, g):
    return g * gt(x, high)


def _where_a(condition, a, b, z, g):
    return where(condition, g, 0.0)


def _where_b(condition, a, b, z, g):
    return where(condition, 0.0, g)


# --- the operations ---------------------------------------------------------------------------
add = Elemwise("add", np.add, [_output_grad, _output_grad])
sub = Elemwise("sub", np.subtract, [_output_grad, _negated_output_grad])
mul = Elemwise("mul", np.multiply, [_mul_x, _mul_y])
true_div = Elemwise("true_div", np.true_divide, [_div_x, _div_y], true_division=True)
floor_div = Elemwise("floor_div", np.floor_divide, [ZERO, ZERO])
mod = Elemwise("mod", np.remainder, [_output_grad, _mod_y])
pow = Elemwise("pow", np.power, [_pow_x, _pow_y])
neg = Elemwise("neg", np.negative, [_negated_output_grad])
abs = Elemwise("abs", np.absolute, [_abs_x])
sign = Elemwise("sign", np.sign, [ZERO])
exp = Elemwise("exp", np.exp, [_exp_x])
log = Elemwise("log", np.log, [_log_x])
log1p = Elemwise("log1p", np.log1p, [_log1p_x])
expm1 = Elemwise("expm1", np.expm1, [_expm1_x])
sqrt = Elemwise("sqrt", np.sqrt, [_sqrt_x])
square = Elemwise("square", np.square, [_square_x])
sin = Elemwise("sin", np.sin, [_sin_x])
cos = Elemwise("cos", np.cos, [_cos_x])
tanh = Elemwise("tanh", np.tanh, [_tanh_x])
floor = Elemwise("floor", np.floor, [ZERO])
ceil = Elemwise("ceil", np.ceil, [ZERO])
round_half_to_even = Elemwise(
    "round_half_to_even",
    _round_half_to_even,
    [ZERO],
    dtype_rule=same_dtype_rule,
    doc="``round_half_to_even(x)``: ``numpy.rint``, ties to the even neighbour; integers unchanged.",
)
round_half_away_from_zero = Elemwise(
    "round_half_away_from_zero",
    _round_half_away_from_zero,
    [ZERO],
    dtype_rule=same_dtype_rule,
    doc="``round_half_away_from_zero(x)``: the nearest integer, ties away from zero; integers unchanged.",
)
_ROUNDING = {"half_to_even": round_half_to_even, "half_away_from_zero": round_half_away_from_zero}


def round(x: Any, mode: str = "half_to_even") -> Variable:
    """``x`` rounded to the nearest integer, in its dtype: ties go to the even neighbour
    (``mode='half_to_even'``, numpy's ``round``) or away from zero (``'half_away_from_zero'``,
    C's ``round``). Integers are returned unchanged; the gradient is zero."""
    if mode not in _ROUNDING:
        raise ValueError(f"round: mode must be one of {sorted(_ROUNDING)}, not {mode!r}")
    return _ROUNDING[mode](x)


maximum = Elemwise("maximum", np.maximum, [_first_wins, _second_wins])
minimum = Elemwise("minimum", np.minimum, [_second_wins, _first_wins])
clip = Elemwise("clip", np.clip, [_clip_x, _clip_low, _clip_high], dtype_rule=common_dtype_rule)
_where_op = Elemwise("where", _where_function, [None, _where_a, _where_b], dtype_rule=_where_rule, accepts_out=False)


def where(condition: Any, a: Any, b: Any) -> Variable:
    """``numpy.where``: ``a`` where ``condition`` holds, else ``b`` (alias ``switch``).

    Only ``a`` and ``b`` are promoted together; the condition is never cast to their dtype (a bool
    condition with Python floats gives floatX, as ``x_int * 2.5`` does)."""
    a, b = promote_operands("where", [a, b], lambda dtypes: common_dtype_rule(dtypes)[:2])
    return _where_op.make_node(as_tensor(condition), a, b).outputs[0]


switch = where
# Comparisons give truth values (``bool(x > 0)`` raises); so do the logical operations when they
# combine truth values (bool tensors), not when they work bitwise on integers.
eq = Elemwise("eq", np.equal, None, boolean_result=True)
neq = Elemwise("neq", np.not_equal, None, boolean_result=True)
lt = Elemwise("lt", np.less, None, boolean_result=True)
le = Elemwise("le", np.less_equal, None, boolean_result=True)
gt = Elemwise("gt", np.greater, None, boolean_result=True)
ge = Elemwise("ge", np.greater_equal, None, boolean_result=True)
and_ = Elemwise("and", np.bitwise_and, None, boolean_result=True)
or_ = Elemwise("or", np.bitwise_or, None, boolean_result=True)
xor = Elemwise("xor", np.bitwise_xor, None, boolean_result=True)
invert = Elemwise("invert", np.invert, None, boolean_result=True)


def as_float(x: Any) -> Variable:
    """``x`` itself if it is a float tensor, else ``x`` cast to floatX."""
    x = as_tensor(x)
    return x if x.type.is_float else cast(x, config.floatX)
