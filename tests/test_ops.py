"""Every public op against numpy on random data: values, dtypes, static and actual shapes.

Each case is compiled three ways: with every length unknown (so a length-1 axis broadcasts only
at run time), with every length declared, and in debug mode (which checks every intermediate's
dtype and static shape against the values it really has).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

import symgraph as sg
from symgraph.backends.numpy import kernels

DECLARATIONS = ["unknown", "static", "debug"]


def declare(array: np.ndarray, static: bool) -> sg.Variable:
    """A symbolic input for ``array``: its dtype, and its shape declared or unknown."""
    shape = array.shape if static else (None,) * array.ndim
    return sg.tensor(dtype=array.dtype, shape=shape)


def assert_matches(result: Any, expected: Any, variable: sg.Variable) -> None:
    """``result`` equals numpy's ``expected`` in value, dtype and shape, and fits the static type."""
    expected = np.asarray(expected)
    assert isinstance(result, np.ndarray), type(result)
    assert result.dtype == expected.dtype, (result.dtype, expected.dtype)
    assert result.shape == expected.shape, (result.shape, expected.shape)
    assert variable.dtype == expected.dtype.name
    assert variable.ndim == expected.ndim
    assert len(variable.type.shape) == expected.ndim
    for static, actual in zip(variable.type.shape, expected.shape):
        assert static is None or static == actual, (variable.type.shape, expected.shape)
    if expected.dtype.kind == "f":
        tolerance = 1e-5 if expected.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(result, expected, rtol=tolerance, atol=tolerance, equal_nan=True)
    else:
        np.testing.assert_array_equal(result, expected)


def check(
    build: Callable[..., sg.Variable],
    reference: Callable[..., Any],
    *arrays: np.ndarray,
    declaration: str = "unknown",
) -> None:
    """``build`` on symbolic inputs, compiled and called on ``arrays``, matches ``reference``."""
    arrays = tuple(np.asarray(array) for array in arrays)
    inputs = [declare(array, declaration == "static") for array in arrays]
    output = build(*inputs)
    mode = "debug" if declaration == "debug" else None
    f = sg.function(inputs, output, mode=mode, on_unused_input="ignore")
    saved = [array.copy() for array in arrays]
    result = f(*arrays)
    assert_matches(result, reference(*arrays), output)
    for before, after in zip(saved, arrays):  # no op may write into the caller's arrays
        np.testing.assert_array_equal(before, after)


def data(
    rng: np.random.Generator, shape: Sequence[int], dtype: Any = "float64", low: float = -2.0, high: float = 2.0
) -> np.ndarray:
    """Random values of ``dtype`` in [low, high) (integers: small, non-zero when low > 0)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        return rng.integers(max(int(low), 0) if dtype.kind == "u" else int(low), int(high) + 1, size=shape).astype(
            dtype
        )
    return rng.uniform(low, high, size=shape).astype(dtype)


# --- elementwise: one operand -----------------------------------------------------------------
UNARY = [
    ("exp", sg.exp, np.exp, -2, 2),
    ("log", sg.log, np.log, 0.1, 3),
    ("log1p", sg.log1p, np.log1p, -0.5, 3),
    ("expm1", sg.expm1, np.expm1, -2, 2),
    ("sqrt", sg.sqrt, np.sqrt, 0.0, 4),
    ("square", sg.square, np.square, -2, 2),
    ("abs", sg.abs, np.abs, -2, 2),
    ("sign", sg.sign, np.sign, -2, 2),
    ("sin", sg.sin, np.sin, -3, 3),
    ("cos", sg.cos, np.cos, -3, 3),
    ("tanh", sg.tanh, np.tanh, -3, 3),
    ("neg", lambda x: -x, np.negative, -2, 2),
    ("builtin_abs", lambda x: abs(x), np.abs, -2, 2),
]


@pytest.mark.parametrize("declaration", DECLARATIONS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", [(3, 4), (), (0, 3), (1,)])
@pytest.mark.parametrize("name, function, reference, low, high", UNARY, ids=[u[0] for u in UNARY])
def test_unary_float(rng, name, function, reference, low, high, shape, dtype, declaration):
    x = data(rng, shape, dtype, low, high)
    check(function, reference, x, declaration=declaration)


@pytest.mark.parametrize("dtype", ["int32", "int64", "int8"])
@pytest.mark.parametrize(
    "name, function, reference, low, high",
    [u for u in UNARY if u[0] not in ("log", "sqrt", "log1p")] + [("invert", sg.invert, np.invert, -5, 5)],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_unary_integer(rng, name, function, reference, low, high, dtype):
    x = data(rng, (2, 3), dtype, low, high)
    check(function, reference, x)


def test_invert_bool(rng):
    check(sg.invert, np.invert, data(rng, (4, 2), bool))
    check(lambda x: ~x, np.invert, data(rng, (4, 2), bool))


# --- elementwise: two operands ----------------------------------------------------------------
BINARY = [
    ("add", lambda x, y: x + y, np.add),
    ("sub", lambda x, y: x - y, np.subtract),
    ("mul", lambda x, y: x * y, np.multiply),
    ("true_div", lambda x, y: x / y, np.true_divide),
    ("floor_div", lambda x, y: x // y, np.floor_divide),
    ("mod", lambda x, y: x % y, np.remainder),
    ("pow", lambda x, y: x**y, np.power),
    ("maximum", sg.maximum, np.maximum),
    ("minimum", sg.minimum, np.minimum),
    ("eq", lambda x, y: x == y, np.equal),
    ("neq", lambda x, y: x != y, np.not_equal),
    ("lt", lambda x, y: x < y, np.less),
    ("le", lambda x, y: x <= y, np.less_equal),
    ("gt", lambda x, y: x > y, np.greater),
    ("ge", lambda x, y: x >= y, np.greater_equal),
    ("sg.eq", sg.eq, np.equal),
    ("sg.neq", sg.neq, np.not_equal),
    ("sg.lt", sg.lt, np.less),
    ("sg.le", sg.le, np.less_equal),
    ("sg.gt", sg.gt, np.greater),
    ("sg.ge", sg.ge, np.greater_equal),
]

BROADCAST_SHAPES = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((3, 1), (1, 4)),
    ((2, 1, 4), (3, 1)),
    ((1, 1), (2, 3)),
    ((), (2, 3)),
    ((0, 4), (4,)),
    ((1,), (0,)),
    ((2, 0), (1, 1)),
]


def binary_data(rng, name, shapes, dtypes):
    """Operands for ``name``: positive bases and small exponents for pow, no zero divisors."""
    (x_shape, y_shape), (x_dtype, y_dtype) = shapes, dtypes
    if name == "pow":
        return data(rng, x_shape, x_dtype, 1, 3), data(rng, y_shape, y_dtype, 0, 3)
    x = data(rng, x_shape, x_dtype, -5, 5) if np.dtype(x_dtype).kind != "u" else data(rng, x_shape, x_dtype, 0, 9)
    if name in ("true_div", "floor_div", "mod"):
        y = data(rng, y_shape, y_dtype, 1, 4)
        if np.dtype(y_dtype).kind != "u":
            y[data(rng, y_shape, bool)] *= -1
        return x, y
    y = data(rng, y_shape, y_dtype, -5, 5) if np.dtype(y_dtype).kind != "u" else data(rng, y_shape, y_dtype, 0, 9)
    if x.size and y.size and x.shape[-1:] == y.shape[-1:]:
        y.flat[0] = x.flat[0]  # comparisons see a tie
    return x, y


@pytest.mark.parametrize("declaration", DECLARATIONS)
@pytest.mark.parametrize("shapes", BROADCAST_SHAPES, ids=str)
@pytest.mark.parametrize("name, function, reference", BINARY, ids=[b[0] for b in BINARY])
def test_binary_broadcasting(rng, name, function, reference, shapes, declaration):
    x, y = binary_data(rng, name, shapes, ("float64", "float64"))
    check(function, reference, x, y, declaration=declaration)


DTYPE_PAIRS = [
    ("float32", "float32"),
    ("float32", "float64"),
    ("int32", "float32"),
    ("int64", "int32"),
    ("int8", "int16"),
    ("uint8", "int8"),
    ("int32", "int32"),
]


@pytest.mark.parametrize("declaration", ["unknown", "debug"])
@pytest.mark.parametrize("dtypes", DTYPE_PAIRS, ids=str)
@pytest.mark.parametrize("name, function, reference", BINARY, ids=[b[0] for b in BINARY])
def test_binary_dtypes(rng, name, function, reference, dtypes, declaration):
    x, y = binary_data(rng, name, ((2, 3), (3,)), dtypes)
    check(function, reference, x, y, declaration=declaration)


@pytest.mark.parametrize(
    "function, reference",
    [
        (lambda x: 2.0 + x, lambda x: 2.0 + x),
        (lambda x: 2.0 - x, lambda x: 2.0 - x),
        (lambda x: 3.0 * x, lambda x: 3.0 * x),
        (lambda x: 3.0 / x, lambda x: 3.0 / x),
        (lambda x: 7.0 // x, lambda x: 7.0 // x),
        (lambda x: 7.0 % x, lambda x: 7.0 % x),
        (lambda x: 2.0**x, lambda x: 2.0**x),
        (lambda x: x**2, lambda x: x**2),
        (lambda x: x - 1, lambda x: x - 1),
        (lambda x: 1.5 < x, lambda x: 1.5 < x),
        (lambda x: x == 1.0, lambda x: x == 1.0),
        (lambda x: np.arange(4.0) + x, lambda x: np.arange(4.0) + x),
        (lambda x: np.arange(4.0) - x, lambda x: np.arange(4.0) - x),
        (lambda x: np.arange(4.0) * x, lambda x: np.arange(4.0) * x),
    ],
)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_reflected_and_constants(rng, function, reference, dtype):
    x = data(rng, (3, 4), dtype, 0.5, 3)
    x[0, 0] = 1.0
    check(function, reference, x)


def test_integer_reflected(rng):
    x = data(rng, (3, 4), "int32", 1, 5)
    check(lambda v: 7 // v, lambda v: 7 // v, x)
    check(lambda v: 7 % v, lambda v: 7 % v, x)
    check(lambda v: 2**v, lambda v: 2**v, x)
    check(lambda v: 10 - v, lambda v: 10 - v, x)


@pytest.mark.parametrize(
    "name, function, reference",
    [
        ("and", sg.and_, np.bitwise_and),
        ("or", sg.or_, np.bitwise_or),
        ("and_op", lambda x, y: x & y, np.bitwise_and),
        ("or_op", lambda x, y: x | y, np.bitwise_or),
        ("xor_op", lambda x, y: x ^ y, np.bitwise_xor),
    ],
)
@pytest.mark.parametrize("dtype", ["bool", "int32"])
def test_logical(rng, name, function, reference, dtype):
    x, y = data(rng, (3, 4), dtype, -4, 4), data(rng, (4,), dtype, -4, 4)
    check(function, reference, x, y)


def test_comparison_of_masks_with_and(rng):
    x = data(rng, (5,))
    check(lambda v: sg.and_(v > -1.0, v < 1.0), lambda v: (v > -1.0) & (v < 1.0), x)


# --- elementwise: three operands --------------------------------------------------------------
@pytest.mark.parametrize("declaration", DECLARATIONS)
@pytest.mark.parametrize("where", [sg.where, sg.switch])
@pytest.mark.parametrize(
    "shapes", [((3, 4), (3, 4), (3, 4)), ((3, 1), (4,), ()), ((1,), (2, 1), (3,)), ((0, 2), (2,), (1, 2))], ids=str
)
def test_where(rng, where, shapes, declaration):
    c, a, b = data(rng, shapes[0], bool), data(rng, shapes[1]), data(rng, shapes[2])
    check(where, np.where, c, a, b, declaration=declaration)


@pytest.mark.parametrize(
    "dtypes", [("float32", "float32"), ("float32", "float64"), ("int32", "float32"), ("int64", "int64")], ids=str
)
def test_where_dtypes(rng, dtypes):
    c, a, b = data(rng, (4,), bool), data(rng, (4,), dtypes[0]), data(rng, (4,), dtypes[1])
    check(sg.where, np.where, c, a, b)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_where_with_python_numbers(rng, dtype):
    c, a = data(rng, (4,), bool), data(rng, (4,), dtype)
    check(lambda cond, v: sg.where(cond, v, 0), lambda cond, v: np.where(cond, v, 0), c, a)
    if dtype != "int32":  # an int tensor with a Python float is floatX, not numpy's rule
        check(lambda cond, v: sg.where(cond, v, 0.5), lambda cond, v: np.where(cond, v, 0.5), c, a)
    check(lambda v: sg.where(v > 0, v, -v), lambda v: np.where(v > 0, v, -v), a)


@pytest.mark.parametrize("declaration", DECLARATIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_clip(rng, dtype, declaration):
    x = data(rng, (3, 4), dtype)
    check(lambda v: sg.clip(v, -0.5, 0.7), lambda v: np.clip(v, -0.5, 0.7), x, declaration=declaration)
    low, high = data(rng, (4,), dtype, -1, 0), data(rng, (3, 1), dtype, 0, 1)
    check(sg.clip, np.clip, x, low, high, declaration=declaration)


def test_clip_integers(rng):
    x = data(rng, (3, 4), "int32", -10, 10)
    check(lambda v: sg.clip(v, -3, 4), lambda v: np.clip(v, -3, 4), x)


# --- reductions -------------------------------------------------------------------------------
REDUCTIONS = ["sum", "mean", "max", "min", "prod", "var", "std"]
AXES = [None, 0, 1, -1, -2, (0, 2), (-1, 0), (0, 1, 2), ()]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reductions(rng, name, axis, keepdims):
    x = data(rng, (2, 3, 4))
    reference = getattr(np, name)
    check(
        lambda v: getattr(sg, name)(v, axis=axis, keepdims=keepdims),
        lambda v: reference(v, axis=axis, keepdims=keepdims),
        x,
    )
    check(
        lambda v: getattr(v, name)(axis=axis, keepdims=keepdims),
        lambda v: reference(v, axis=axis, keepdims=keepdims),
        x,
        declaration="static",
    )


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("dtype", ["float32", "int32", "int8", "bool"])
def test_reduction_dtypes(rng, name, dtype):
    x = data(rng, (3, 4), dtype, -3, 3)
    reference = getattr(np, name)
    check(lambda v: getattr(v, name)(axis=1), lambda v: reference(v, axis=1), x)
    check(lambda v: getattr(v, name)(), lambda v: reference(v), x)


@pytest.mark.parametrize("declaration", DECLARATIONS)
@pytest.mark.parametrize("name", ["sum", "prod", "max", "min"])
def test_reductions_size_zero_and_one(rng, name, declaration):
    reference = getattr(np, name)
    # an empty axis that is kept; sum and prod may also reduce an empty axis
    check(
        lambda v: getattr(v, name)(axis=1), lambda v: reference(v, axis=1), data(rng, (0, 3)), declaration=declaration
    )
    if name in ("sum", "prod"):
        check(
            lambda v: getattr(v, name)(axis=0),
            lambda v: reference(v, axis=0),
            data(rng, (0, 3)),
            declaration=declaration,
        )
        check(lambda v: getattr(v, name)(), lambda v: reference(v), data(rng, (2, 0)), declaration=declaration)
    check(
        lambda v: getattr(v, name)(axis=0, keepdims=True),
        lambda v: reference(v, axis=0, keepdims=True),
        data(rng, (1, 3)),
        declaration=declaration,
    )


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1, -3])
@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_arg_reductions(rng, name, axis, keepdims):
    x = data(rng, (2, 3, 4))
    x[0, 0, :2] = x.max() + 1  # a tie: numpy takes the first
    x[1, 2, 1:3] = x.min() - 1
    reference = getattr(np, name)
    check(
        lambda v: getattr(sg, name)(v, axis=axis, keepdims=keepdims),
        lambda v: reference(v, axis=axis, keepdims=keepdims),
        x,
    )
    check(
        lambda v: getattr(v, name)(axis=axis, keepdims=keepdims),
        lambda v: reference(v, axis=axis, keepdims=keepdims),
        x,
        declaration="debug",
    )


def test_arg_reductions_of_integers(rng):
    x = data(rng, (4, 5), "int32", -3, 3)
    check(lambda v: v.argmax(axis=0), lambda v: v.argmax(axis=0), x)
    check(lambda v: v.argmin(), lambda v: v.argmin(), x)


def test_reduction_rejects_bad_axes():
    x = sg.tensor3()
    with pytest.raises(ValueError, match="out of range"):
        x.sum(axis=3)
    with pytest.raises(ValueError, match="out of range"):
        x.max(axis=-4)
    with pytest.raises(ValueError, match="repeat"):
        x.sum(axis=(0, -3))


# --- products ---------------------------------------------------------------------------------
PRODUCT_SHAPES = [
    ((3,), (3,)),
    ((2, 3), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3, 4)),
    ((0, 3), (3, 4)),
    ((2, 0), (0, 4)),
    ((1, 1), (1, 1)),
]


@pytest.mark.parametrize("declaration", DECLARATIONS)
@pytest.mark.parametrize("shapes", PRODUCT_SHAPES, ids=str)
@pytest.mark.parametrize("name", ["dot", "matmul", "@"])
def test_products(rng, name, shapes, declaration):
    x, y = data(rng, shapes[0]), data(rng, shapes[1])
    function = (lambda a, b: a @ b) if name == "@" else getattr(sg, name)
    reference = np.matmul if name == "@" else getattr(np, name)
    check(function, reference, x, y, declaration=declaration)


@pytest.mark.parametrize("declaration", DECLARATIONS)
@pytest.mark.parametrize(
    "shapes",
    [
        ((2, 3, 4), (2, 4, 5)),
        ((2, 3, 4), (4, 5)),
        ((3, 4), (2, 4, 5)),
        ((1, 3, 4), (2, 4, 5)),
        ((4,), (2, 4, 5)),
        ((2, 3, 4), (4,)),
        ((2, 1, 3, 4), (5, 4, 2)),
        ((0, 3, 4), (4, 2)),
    ],
    ids=str,
)
def test_matmul_batched(rng, shapes, declaration):
    x, y = data(rng, shapes[0]), data(rng, shapes[1])
    check(lambda a, b: a @ b, np.matmul, x, y, declaration=declaration)
    check(sg.matmul, np.matmul, x, y, declaration=declaration)


@pytest.mark.parametrize(
    "shapes",
    [
        ((), (3, 4)),
        ((2, 3), ()),
        ((2, 3, 4), (4, 5)),
        ((2, 3, 4), (5, 4, 2)),
        ((4,), (2, 4, 5)),
        ((2, 3, 4), (4,)),
        ((3,), ()),
    ],
    ids=str,
)
def test_dot_beyond_matrices(rng, shapes):
    x, y = data(rng, shapes[0]), data(rng, shapes[1])
    check(sg.dot, np.dot, x, y)


@pytest.mark.parametrize(
    "dtypes", [("int32", "int32"), ("float32", "float32"), ("float32", "float64"), ("int64", "float32")], ids=str
)
def test_product_dtypes(rng, dtypes):
    x, y = data(rng, (2, 3), dtypes[0]), data(rng, (3, 4), dtypes[1])
    check(sg.dot, np.dot, x, y)
    check(lambda a, b: a @ b, np.matmul, x, y)
    check(sg.outer, np.outer, x[0], y[0])


@pytest.mark.parametrize(
    "m, k, n, blocks",
    [(16, 50_001, 9, 8), (9, 6_944, 16, 1), (9, 6_945, 16, 2), (64, 40_000, 64, 1), (1, 3, 1, 1)],
)
def test_products_of_small_results_over_long_inner_axes(m, k, n, blocks, monkeypatch):
    # kernels.SMALL_PRODUCT: blocks of the inner axis, summed; a matrix times a vector, a large
    # result or a short inner axis in one product.
    calls = []
    matmul = np.matmul
    monkeypatch.setattr(kernels.np, "matmul", lambda *args, **kwargs: calls.append(1) or matmul(*args, **kwargs))
    rng = np.random.default_rng(k)
    a, b = rng.standard_normal((k, m)).T, rng.standard_normal((n, k)).T  # views, as the kernels pass
    np.testing.assert_allclose(kernels._product(a, b), matmul(a, b), rtol=1e-12, atol=1e-12)
    assert len(calls) == blocks


def test_gram_matrix_of_a_long_inner_axis(rng):
    # Declared 10 and 12 columns: the numpy backend sums X.T @ Y over blocks of the 20,001 rows.
    x = sg.matrix("x", shape=(None, 10))
    y = sg.matrix("y", shape=(None, 12))
    X, Y = data(rng, (20_001, 10)), data(rng, (20_001, 12))
    np.testing.assert_allclose(sg.function([x, y], x.T @ y)(X, Y), X.T @ Y, rtol=1e-12, atol=1e-12)
    x, y = sg.matrix("x", dtype="float32", shape=(None, 10)), sg.matrix("y", dtype="float32", shape=(None, 12))
    f32 = sg.function([x, y], sg.dot(x.T, y))(X.astype("float32"), Y.astype("float32"))
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, X.T @ Y, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("shapes", [((3,), (4,)), ((2, 2), (3,)), ((0,), (3,)), ((1,), (1,))], ids=str)
def test_outer(rng, shapes):
    check(sg.outer, np.outer, data(rng, shapes[0]), data(rng, shapes[1]))


@pytest.mark.parametrize(
    "shapes, axes",
    [
        (((2, 3, 4), (3, 4, 5)), 2),
        (((2, 3), (3, 4)), 1),
        (((2, 3), (4, 5)), 0),
        (((2, 3, 4), (4, 3, 5)), ([1, 2], [1, 0])),
        (((2, 3, 4), (5, 2)), ([0], [1])),
        (((2, 3, 4), (4, 2)), ([-1, 0], [0, -1])),
        (((2, 3, 4), (3,)), (1, 0)),
    ],
    ids=str,
)
def test_tensordot(rng, shapes, axes):
    x, y = data(rng, shapes[0]), data(rng, shapes[1])
    check(lambda a, b: sg.tensordot(a, b, axes=axes), lambda a, b: np.tensordot(a, b, axes=axes), x, y)
    check(
        lambda a, b: sg.tensordot(a, b, axes=axes),
        lambda a, b: np.tensordot(a, b, axes=axes),
        x,
        y,
        declaration="debug",
    )


# --- joining ----------------------------------------------------------------------------------
@pytest.mark.parametrize("declaration", DECLARATIONS)
@pytest.mark.parametrize(
    "shapes, axis",
    [
        (((2, 3), (4, 3)), 0),
        (((2, 3), (2, 1), (2, 0)), 1),
        (((2, 3), (2, 5)), -1),
        (((0, 3), (2, 3)), 0),
        (((2, 3, 4), (2, 3, 1)), -1),
    ],
    ids=str,
)
def test_concatenate(rng, shapes, axis, declaration):
    arrays = [data(rng, shape) for shape in shapes]
    check(
        lambda *vs: sg.concatenate(list(vs), axis=axis),
        lambda *vs: np.concatenate(vs, axis=axis),
        *arrays,
        declaration=declaration,
    )


def test_concatenate_dtypes(rng):
    x, y = data(rng, (2,), "int32"), data(rng, (3,), "float32")
    check(lambda a, b: sg.concatenate([a, b]), lambda a, b: np.concatenate([a, b]), x, y)


@pytest.mark.parametrize("declaration", DECLARATIONS)
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
@pytest.mark.parametrize("shape", [(2, 3), (0, 3), (1, 1)], ids=str)
def test_stack(rng, shape, axis, declaration):
    arrays = [data(rng, shape) for _ in range(3)]
    check(
        lambda *vs: sg.stack(list(vs), axis=axis), lambda *vs: np.stack(vs, axis=axis), *arrays, declaration=declaration
    )


def test_stack_scalars(rng):
    check(lambda a, b: sg.stack([a, b, a * b]), lambda a, b: np.stack([a, b, a * b]), data(rng, ()), data(rng, ()))


def test_concatenate_static_mismatch():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        sg.concatenate([sg.matrix(shape=(2, 3)), sg.matrix(shape=(2, 4))], axis=0)


# --- shapes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("declaration", DECLARATIONS)
@pytest.mark.parametrize(
    "shape, target",
    [
        ((2, 3, 4), (6, 4)),
        ((2, 3, 4), (-1,)),
        ((2, 3, 4), (4, -1)),
        ((2, 3, 4), (2, -1, 2)),
        ((6,), (1, 6, 1)),
        ((0, 3), (3, 0)),
        ((0, 3), (-1, 3)),
        ((1,), ()),
        ((), (1, 1)),
    ],
    ids=str,
)
def test_reshape(rng, shape, target, declaration):
    x = data(rng, shape)
    check(lambda v: v.reshape(target), lambda v: v.reshape(target), x, declaration=declaration)
    check(lambda v: sg.reshape(v, target), lambda v: np.reshape(v, target), x, declaration=declaration)


def test_reshape_method_takes_separate_lengths(rng):
    check(lambda v: v.reshape(3, -1), lambda v: v.reshape(3, -1), data(rng, (2, 3, 2)))


@pytest.mark.parametrize("declaration", DECLARATIONS)
def test_reshape_symbolic_lengths(rng, declaration):
    x = data(rng, (4, 6))
    check(lambda v: v.reshape((v.shape[0] * 2, -1)), lambda v: v.reshape((8, -1)), x, declaration=declaration)
    check(lambda v: v.reshape((v.shape[1], v.shape[0])), lambda v: v.reshape((6, 4)), x, declaration=declaration)
    check(lambda v: v.reshape(v.shape[::-1]), lambda v: v.reshape((6, 4)), x, declaration=declaration)
    n = sg.lscalar("n")
    v = sg.matrix("v")
    out = v.reshape((n, -1))
    assert out.ndim == 2
    f = sg.function([v, n], out)
    for rows in (1, 2, 3, 8):
        np.testing.assert_array_equal(f(x, rows), x.reshape((rows, -1)))
    i = sg.iscalar("i")
    f = sg.function([v, i], v.reshape((i, 3, -1)))
    np.testing.assert_array_equal(f(x, 2), x.reshape((2, 3, -1)))


def test_reshape_size_mismatch():
    with pytest.raises(ValueError, match="reshape"):
        sg.matrix(shape=(2, 3)).reshape((4, 2))
    x = sg.matrix("x")
    f = sg.function([x], x.reshape((4, 2)))
    with pytest.raises(ValueError, match="reshape"):
        f(np.zeros((2, 3)))


@pytest.mark.parametrize("declaration", DECLARATIONS)
@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("shape", [(2, 3, 4), (2, 0, 4), (0, 3, 4), (1, 1, 1)], ids=str)
def test_flatten(rng, shape, ndim, declaration):
    x = data(rng, shape)

    def reference(v):
        return v.reshape(v.shape[: ndim - 1] + (int(np.prod(v.shape[ndim - 1 :])),))

    check(lambda v: v.flatten(ndim), reference, x, declaration=declaration)
    check(lambda v: sg.flatten(v, ndim), reference, x, declaration=declaration)


def test_flatten_default_is_one_dimension(rng):
    check(lambda v: v.flatten(), lambda v: v.flatten(), data(rng, (2, 3, 4)))


@pytest.mark.parametrize("declaration", DECLARATIONS)
@pytest.mark.parametrize("axes", [None, (1, 0, 2), (2, 0, 1), (-1, 0, 1)], ids=str)
def test_transpose(rng, axes, declaration):
    x = data(rng, (2, 3, 4))
    check(lambda v: sg.transpose(v, axes), lambda v: np.transpose(v, axes), x, declaration=declaration)


def test_dot_T(rng):
    for shape in [(2, 3), (4,), (), (2, 3, 4), (0, 2)]:
        check(lambda v: v.T, lambda v: v.T, data(rng, shape))
    check(lambda v: v.transpose(1, 0), lambda v: v.transpose(1, 0), data(rng, (2, 3)))


@pytest.mark.parametrize("declaration", DECLARATIONS)
@pytest.mark.parametrize(
    "shape, pattern, reference",
    [
        ((2, 3), ("x", 0, 1), lambda v: v[None]),
        ((2, 3), (1, "x", 0), lambda v: v.T[:, None, :]),
        ((2, 3), (0, 1, "x", "x"), lambda v: v[:, :, None, None]),
        ((3,), ("x", 0), lambda v: v[None, :]),
        ((3,), (0, "x"), lambda v: v[:, None]),
        ((), ("x", "x"), lambda v: v.reshape(1, 1)),
        ((2, 1, 3), (0, 2), lambda v: v[:, 0, :]),
        ((2, 1, 3), (2, "x", 0), lambda v: v[:, 0, :].T[:, None, :]),
        ((1, 1), (), lambda v: v.reshape(())),
        ((0, 1), ("x", 0), lambda v: v[None, :, 0]),
    ],
    ids=str,
)
def test_dimshuffle(rng, shape, pattern, reference, declaration):
    x = data(rng, shape)
    check(lambda v: v.dimshuffle(*pattern), reference, x, declaration=declaration)
    check(lambda v: v.dimshuffle(pattern), reference, x, declaration=declaration)
    check(lambda v: sg.dimshuffle(v, *pattern), reference, x, declaration=declaration)


def test_dimshuffle_refuses_dropping_a_long_axis():
    with pytest.raises(ValueError, match="length 1"):
        sg.matrix(shape=(2, 3)).dimshuffle(0)
    with pytest.raises(ValueError, match="dimshuffle"):
        sg.matrix().dimshuffle(0, 0)
    with pytest.raises(ValueError, match="dimshuffle"):
        sg.matrix().dimshuffle(0, 2)
    x = sg.matrix()
    f = sg.function([x], x.dimshuffle(0))  # axis 1 of unknown length: checked at run time
    np.testing.assert_array_equal(f(np.ones((3, 1))), np.ones(3))
    with pytest.raises(ValueError):
        f(np.ones((3, 2)))


@pytest.mark.parametrize("declaration", DECLARATIONS)
@pytest.mark.parametrize("shape", [(2, 3), (0, 3), (), (1, 1, 5)], ids=str)
def test_shape(rng, shape, declaration):
    x = data(rng, shape)
    check(lambda v: v.shape, lambda v: np.array(v.shape, dtype=np.int64), x, declaration=declaration)
    check(sg.shape, lambda v: np.array(v.shape, dtype=np.int64), x, declaration=declaration)
    if shape:
        check(lambda v: v.shape[-1], lambda v: np.int64(v.shape[-1]), x, declaration=declaration)
        check(lambda v: v.shape[0] * 2 + 1, lambda v: np.int64(v.shape[0] * 2 + 1), x, declaration=declaration)


# --- filling ----------------------------------------------------------------------------------
@pytest.mark.parametrize("declaration", DECLARATIONS)
@pytest.mark.parametrize("dtype", ["float32", "int32", "bool"])
@pytest.mark.parametrize("shape", [(2, 3), (0,), ()], ids=str)
def test_zeros_and_ones_like(rng, shape, dtype, declaration):
    x = data(rng, shape, dtype)
    check(sg.zeros_like, np.zeros_like, x, declaration=declaration)
    check(sg.ones_like, np.ones_like, x, declaration=declaration)
    check(
        lambda v: sg.zeros_like(v, dtype="float64"),
        lambda v: np.zeros_like(v, dtype="float64"),
        x,
        declaration=declaration,
    )


@pytest.mark.parametrize("dtype", [None, "float32", "int64", "bool"])
@pytest.mark.parametrize("shape", [(2, 3), (0, 2), (), 4], ids=str)
def test_zeros_and_ones(shape, dtype):
    expected_dtype = dtype or "float64"
    for build, reference in [(sg.zeros, np.zeros), (sg.ones, np.ones)]:
        out = build(shape, dtype=dtype) if dtype else build(shape)
        assert_matches(out.eval(), reference(shape, dtype=expected_dtype), out)


def test_zeros_follow_floatx():
    sg.config.floatX = "float32"
    assert sg.zeros((2,)).dtype == "float32"
    assert sg.ones((2,)).eval().dtype == np.float32


def test_zeros_of_symbolic_shape(rng):
    x = data(rng, (3, 5))
    check(lambda v: sg.zeros(v.shape), lambda v: np.zeros(v.shape), x)
    check(lambda v: sg.ones((v.shape[1], 2), dtype="int32"), lambda v: np.ones((5, 2), dtype="int32"), x)
    n = sg.lscalar("n")
    f = sg.function([n], sg.ones((n, 2)))
    assert_matches(f(3), np.ones((3, 2)), sg.ones((n, 2)))
    assert_matches(f(0), np.ones((0, 2)), sg.ones((n, 2)))


# --- casting ----------------------------------------------------------------------------------
CASTS = [
    ("float64", "float32"),
    ("float32", "int32"),
    ("int32", "float64"),
    ("float64", "bool"),
    ("bool", "int8"),
    ("int64", "uint8"),
    ("float32", "float32"),
]


@pytest.mark.parametrize("declaration", DECLARATIONS)
@pytest.mark.parametrize("source, target", CASTS, ids=str)
def test_cast(rng, source, target, declaration):
    x = data(rng, (3, 4), source, -3, 3)
    check(lambda v: sg.cast(v, target), lambda v: v.astype(target), x, declaration=declaration)
    check(lambda v: v.astype(target), lambda v: v.astype(target), x, declaration=declaration)
    check(lambda v: v.astype(np.dtype(target)), lambda v: v.astype(target), x, declaration=declaration)


def test_cast_refuses_non_numbers():
    with pytest.raises(TypeError):
        sg.vector().astype("complex128")


# --- indexing ---------------------------------------------------------------------------------
INDICES = [
    0,
    -1,
    (1, 2),
    (-2, -1),
    slice(1, 3),
    slice(None, None, -1),
    slice(-3, None, 2),
    slice(5, 10),
    slice(3, 1),
    (slice(None), 0),
    (Ellipsis, 1),
    (0, Ellipsis),
    (None,),
    (slice(None), None),
    (None, Ellipsis, None),
    (1, None, slice(0, 2)),
    Ellipsis,
    (slice(None), slice(None, None, 2), Ellipsis),
    np.array([0, 2, 2, 1]),
    np.array([[0, 1], [3, 3]]),
    (slice(None), np.array([4, 0, 1])),
    (np.array([0, 3]), np.array([1, 4])),
    (np.array([[0], [3]]), np.array([1, 4, 2])),
    (np.array([0, 3]), slice(1, 3)),
    (1, np.array([0, 0, 4])),
    (np.array([0, 2]), Ellipsis, None),
    np.array([-1, -4]),
    np.array([], dtype=np.int64),
    [0, 2, 2],
    [True, False, True, True],
    (slice(None), [1, -1]),
]


@pytest.mark.parametrize("declaration", DECLARATIONS)
@pytest.mark.parametrize("index", INDICES, ids=repr)
def test_indexing_constant_index(rng, index, declaration):
    x = data(rng, (4, 5))
    check(lambda v: v[index], lambda v: v[index], x, declaration=declaration)


@pytest.mark.parametrize("declaration", DECLARATIONS)
@pytest.mark.parametrize(
    "index",
    [np.array([1, 3]), np.array([[0, 1], [2, 0]]), np.array([], dtype=np.int32), np.array([2, 2, 2], dtype=np.int32)],
    ids=repr,
)
def test_indexing_with_integer_tensor(rng, index, declaration):
    x = data(rng, (4, 5))
    check(lambda v, i: v[i], lambda v, i: v[i], x, index, declaration=declaration)
    check(lambda v, i: v[:, i], lambda v, i: v[:, i], x, index, declaration=declaration)
    check(lambda v, i: v[i, 1:], lambda v, i: v[i, 1:], x, index, declaration=declaration)


@pytest.mark.parametrize("declaration", DECLARATIONS)
def test_indexing_with_symbolic_scalars_and_slice_bounds(rng, declaration):
    x = data(rng, (6, 6))
    static = declaration == "static"
    v = declare(x, static)
    i, j = sg.iscalar("i"), sg.lscalar("j")
    outputs = [v[i], v[i:j], v[i:], v[:j], v[i:j:2], v[j:i:-1], v[:, i], v[i, j - 3], v[i * 2 : i * 2 + 2], v[-j:]]
    f = sg.function([v, i, j], outputs, mode="debug" if declaration == "debug" else None)
    for i_value, j_value in [(1, 4), (0, 6), (2, 2), (5, 3), (3, 8)]:
        results = f(x, i_value, j_value)
        i_, j_ = i_value, j_value
        expected = [
            x[i_],
            x[i_:j_],
            x[i_:],
            x[:j_],
            x[i_:j_:2],
            x[j_:i_:-1],
            x[:, i_],
            x[i_, j_ - 3],
            x[i_ * 2 : i_ * 2 + 2],
            x[-j_:],
        ]
        for result, reference, output in zip(results, expected, outputs):
            assert_matches(result, reference, output)


def test_index_out_of_range():
    with pytest.raises(IndexError, match="out of bounds"):
        sg.matrix(shape=(3, 4))[3]
    with pytest.raises(IndexError, match="too many indices"):
        sg.vector()[0, 0]
    x = sg.vector("x")
    f = sg.function([x], x[5])
    with pytest.raises(IndexError):
        f(np.zeros(3))


@pytest.mark.parametrize("declaration", DECLARATIONS)
def test_boolean_masks(rng, declaration):
    x = data(rng, (4, 5))
    check(lambda v: v[v > 0], lambda v: v[v > 0], x, declaration=declaration)
    check(lambda v: v[v[:, 0] > 0], lambda v: v[v[:, 0] > 0], x, declaration=declaration)
    check(lambda v: v[:, v[0] > 0], lambda v: v[:, v[0] > 0], x, declaration=declaration)
    mask = x > 0.5
    check(lambda v, m: v[m], lambda v, m: v[m], x, mask, declaration=declaration)
    check(lambda v: v[mask], lambda v: v[mask], x, declaration=declaration)
    check(lambda v: v[np.zeros(4, dtype=bool)], lambda v: v[np.zeros(4, dtype=bool)], x, declaration=declaration)


def test_indexing_integer_arrays_keep_dtype(rng):
    for dtype in ["int32", "bool", "float32", "uint8"]:
        x = data(rng, (5, 3), dtype)
        check(lambda v: v[np.array([4, 0])], lambda v: v[np.array([4, 0])], x)
        check(lambda v: v[1:, -1], lambda v: v[1:, -1], x)


def test_indexing_refuses_float_indices():
    x = sg.vector()
    with pytest.raises(TypeError, match="integer"):
        x[sg.vector()]
    with pytest.raises(TypeError, match="integer"):
        x[sg.scalar() :]


# --- set_subtensor / inc_subtensor ------------------------------------------------------------
def numpy_set(x, index, y):
    out = x.copy()
    out[index] = y
    return out


def numpy_inc(x, index, y):
    out = x.copy()
    np.add.at(out, index, y)
    return out


SUBTENSOR_CASES = [
    (1, (5,)),
    (1, ()),
    (slice(1, 3), (2, 5)),
    (slice(1, 3), (5,)),
    (slice(None, None, 2), (1, 5)),
    ((slice(None), 0), (4,)),
    ((Ellipsis, -1), ()),
    (np.array([0, 0, 2]), (3, 5)),
    (np.array([3, 3, 3, 1]), (5,)),
    ((np.array([0, 0, 1]), np.array([2, 2, 2])), (3,)),
    ((slice(None), np.array([1, 1])), (4, 2)),
    (np.array([True, False, True, True]), (3, 5)),
    (np.array([True, False, True, True]), (5,)),
    (slice(2, 2), (0, 5)),
]


@pytest.mark.parametrize("declaration", DECLARATIONS)
@pytest.mark.parametrize("index, y_shape", SUBTENSOR_CASES, ids=repr)
def test_set_and_inc_subtensor(rng, index, y_shape, declaration):
    x, y = data(rng, (4, 5)), data(rng, y_shape)
    check(
        lambda a, b: sg.set_subtensor(a[index], b), lambda a, b: numpy_set(a, index, b), x, y, declaration=declaration
    )
    check(
        lambda a, b: sg.inc_subtensor(a[index], b), lambda a, b: numpy_inc(a, index, b), x, y, declaration=declaration
    )


@pytest.mark.parametrize("declaration", DECLARATIONS)
def test_inc_subtensor_symbolic_repeated_indices_add_up(rng, declaration):
    x = data(rng, (6, 3))
    index = np.array([1, 1, 4, 1, 0], dtype=np.int64)
    y = data(rng, (5, 3))
    check(lambda a, i, b: sg.inc_subtensor(a[i], b), numpy_inc, x, index, y, declaration=declaration)
    check(
        lambda a, i, b: sg.set_subtensor(a[i], b),
        lambda a, i, b: numpy_set(a, i, b),
        x,
        index,
        y,
        declaration=declaration,
    )
    check(
        lambda a, i: sg.inc_subtensor(a[i], 1.0), lambda a, i: numpy_inc(a, i, 1.0), x, index, declaration=declaration
    )


def test_subtensor_with_symbolic_bounds_and_python_values(rng):
    x = data(rng, (6, 3))
    v, i = sg.matrix("v"), sg.iscalar("i")
    f = sg.function([v, i], [sg.set_subtensor(v[i : i + 2], 0.0), sg.inc_subtensor(v[i, 1:], 2)])
    for i_value in (0, 3, 5):
        out_set, out_inc = f(x, i_value)
        np.testing.assert_array_equal(out_set, numpy_set(x, slice(i_value, i_value + 2), 0.0))
        np.testing.assert_array_equal(out_inc, numpy_inc(x, (i_value, slice(1, None)), 2.0))


def test_set_subtensor_does_not_mutate_its_input(rng):
    x = data(rng, (4,))
    v = sg.vector("v")
    w = v * 1.5
    new = sg.set_subtensor(w[1:3], 0.0)
    f = sg.function([v], [w, new, w.sum()])
    old, updated, total = f(x)
    np.testing.assert_allclose(old, x * 1.5)
    np.testing.assert_allclose(updated, numpy_set(x * 1.5, slice(1, 3), 0.0))
    np.testing.assert_allclose(total, (x * 1.5).sum())


def test_set_subtensor_casts_and_checks_the_value(rng):
    x = data(rng, (4,), "float32")
    v = sg.vector("v", dtype="float32")
    out = sg.set_subtensor(v[:2], np.array([1.0, 2.0]))
    assert out.dtype == "float32"
    assert_matches(sg.function([v], out)(x), numpy_set(x, slice(None, 2), [1.0, 2.0]), out)
    with pytest.raises(ValueError, match=r"\(3,\)"):
        sg.set_subtensor(sg.vector(shape=(4,))[:2], np.ones(3))
    with pytest.raises(TypeError, match="indexed"):
        sg.set_subtensor(sg.vector(), 1.0)


# --- chains: intermediates written in place must respect run-time broadcasting -----------------
CHAINS = [
    (lambda a, b, c: (a * 2 + b) * c - a, lambda a, b, c: (a * 2 + b) * c - a),
    (lambda a, b, c: sg.exp(a) + sg.exp(b) + sg.exp(c), lambda a, b, c: np.exp(a) + np.exp(b) + np.exp(c)),
    (
        lambda a, b, c: sg.tanh(a - b) * (c + 1) / (sg.abs(a) + 1),
        lambda a, b, c: np.tanh(a - b) * (c + 1) / (np.abs(a) + 1),
    ),
    (
        lambda a, b, c: ((a + b).sum(axis=0) + c.sum(axis=0)) ** 2,
        lambda a, b, c: ((a + b).sum(axis=0) + c.sum(axis=0)) ** 2,
    ),
    (lambda a, b, c: sg.where(a > b, a * c, b - c) + a.T.T, lambda a, b, c: np.where(a > b, a * c, b - c) + a),
]


@pytest.mark.parametrize("mode", ["fast_run", "fast_compile", "debug"])
@pytest.mark.parametrize(
    "shapes",
    [((3, 4), (3, 4), (3, 4)), ((3, 1), (1, 4), (3, 4)), ((1, 4), (3, 1), (1, 1)), ((3, 4), (1, 1), (4,))],
    ids=str,
)
@pytest.mark.parametrize("chain", range(len(CHAINS)))
def test_elementwise_chains(rng, chain, shapes, mode):
    build, reference = CHAINS[chain]
    arrays = [data(rng, shape) for shape in shapes]
    inputs = [declare(array, static=False) for array in arrays]
    output = build(*inputs)
    f = sg.function(inputs, output, mode=mode)
    for _ in range(2):  # a second call must not see anything of the first
        assert_matches(f(*arrays), reference(*arrays), output)


@pytest.mark.parametrize("name", REDUCTIONS + ["argmax", "argmin"])
def test_reductions_of_a_scalar(rng, name):
    x = data(rng, ())
    check(lambda v: getattr(v, name)(), lambda v: getattr(np, name)(v), x)
    with pytest.raises(ValueError):
        getattr(sg.scalar(), name)(axis=0)


@pytest.mark.parametrize("declaration", DECLARATIONS)
def test_assignments_into_views_of_inputs_leave_the_inputs_alone(rng, declaration):
    x = data(rng, (3, 4))
    index = np.array([0, 5, 5, 11])
    check(lambda v: sg.set_subtensor(v.T[0], 0.0), lambda v: numpy_set(v.T, 0, 0.0), x, declaration=declaration)
    check(
        lambda v: sg.inc_subtensor(v.reshape((-1,))[index], 1.0),
        lambda v: numpy_inc(v.reshape(-1), index, 1.0),
        x,
        declaration=declaration,
    )
    check(
        lambda v: sg.set_subtensor(v[1:][:, 2], v[0, :2].sum()),
        lambda v: numpy_set(v[1:], (slice(None), 2), v[0, :2].sum()),
        x,
        declaration=declaration,
    )


@pytest.mark.parametrize("declaration", DECLARATIONS)
def test_assignments_into_equal_fresh_arrays_do_not_share_them(rng, declaration):
    # The two zeros_like are equal and may be merged into one array: each assignment needs its own.
    x = data(rng, (3,))

    def build(v):
        first = sg.set_subtensor(sg.zeros_like(v)[0], 1.0)
        second = sg.inc_subtensor(sg.zeros_like(v)[1:], v[1:])
        return sg.stack([first, second, sg.zeros_like(v)])

    def reference(v):
        return np.stack(
            [numpy_set(np.zeros_like(v), 0, 1.0), numpy_inc(np.zeros_like(v), slice(1, None), v[1:]), np.zeros_like(v)]
        )

    check(build, reference, x, declaration=declaration)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int16", "bool"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_row_maxima_and_minima_of_many_short_rows_match_numpy(dtype, order):
    # The numpy backend takes them from a transposed copy (numpy is slow on short rows).
    z = sg.matrix("z", dtype=dtype)
    f = sg.function([z], [z.max(axis=1), z.min(axis=-1, keepdims=True), z.max(axis=0)])
    values = np.asarray(np.random.default_rng(3).normal(size=(50, 9)) * 10, order=order).astype(dtype)
    if dtype.startswith("float"):
        values[4, 2] = np.nan
    largest, smallest, columns = f(values)
    np.testing.assert_array_equal(largest, values.max(axis=1))
    np.testing.assert_array_equal(smallest, values.min(axis=1, keepdims=True))
    np.testing.assert_array_equal(columns, values.max(axis=0))
    assert largest.dtype == values.dtype and smallest.shape == (50, 1)
