"""Dtype rules: numpy 2's promotion (weak Python scalars), floatX's two exceptions, and the
dtype and static-shape errors raised while the graph is built."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import symgraph as sg
from symgraph.errors import DTypeError, ShapeError

DTYPES = ["bool", "int8", "uint8", "int16", "int32", "int64", "float32", "float64"]
OPERATORS = {
    "add": (lambda x, y: x + y, np.add),
    "mul": (lambda x, y: x * y, np.multiply),
    "maximum": (sg.maximum, np.maximum),
    "lt": (lambda x, y: x < y, np.less),
    "eq": (lambda x, y: x == y, np.equal),
}


def value_of(variable: sg.Variable, **values):
    """``variable`` computed with the given values for its inputs (by name)."""
    return variable.eval({key: values[key.name] for key in _inputs_by_name(variable, values)})


def _inputs_by_name(variable, values):
    found = {}
    stack = [variable]
    while stack:
        current = stack.pop()
        if current.owner is None:
            if current.name in values and current.name not in found:
                found[current.name] = current
        else:
            stack.extend(current.owner.inputs)
    return list(found.values())


# --- tensor with tensor: exactly numpy's result_type -------------------------------------------
@pytest.mark.parametrize("name", list(OPERATORS))
@pytest.mark.parametrize("dtypes", list(itertools.combinations_with_replacement(DTYPES, 2)), ids=str)
def test_tensor_tensor_promotion_is_numpys(name, dtypes):
    build, reference = OPERATORS[name]
    x_value = np.ones(3, dtype=dtypes[0])
    y_value = np.ones(3, dtype=dtypes[1])
    x, y = sg.vector("x", dtype=dtypes[0]), sg.vector("y", dtype=dtypes[1])
    out = build(x, y)
    expected = reference(x_value, y_value)
    assert out.dtype == expected.dtype.name
    result = sg.function([x, y], out)(x_value, y_value)
    assert result.dtype == expected.dtype
    np.testing.assert_array_equal(result, expected)


def test_boolean_subtraction_is_refused_as_numpy_does():
    x, y = sg.vector(dtype="bool"), sg.vector(dtype="bool")
    with pytest.raises(TypeError, match="sub"):
        x - y


# --- weak Python scalars -------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("scalar", [2.0, 2, True, -0.5])
@pytest.mark.parametrize("name", ["add", "mul", "maximum"])
def test_python_scalars_do_not_widen_float_tensors(name, scalar, dtype):
    build, reference = OPERATORS[name]
    x = sg.vector("x", dtype=dtype)
    for out in (build(x, scalar), build(scalar, x)):
        assert out.dtype == dtype
        value = np.array([1.5, -2.0], dtype=dtype)
        result = out.eval({x: value})
        assert result.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(result, reference(value, scalar))


def test_float32_times_python_float_stays_float32():
    x = sg.matrix("x", dtype="float32")
    y = x * 2.0
    assert y.dtype == "float32"
    assert (2.0 * x).dtype == "float32"
    assert (x / 3.0).dtype == "float32"
    assert (x**2).dtype == "float32"
    assert (x - 1).dtype == "float32"
    result = y.eval({x: np.ones((2, 2), dtype="float32")})
    assert result.dtype == np.float32


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "int64"])
def test_python_ints_do_not_widen_integer_tensors(dtype):
    x = sg.vector("x", dtype=dtype)
    for out in (x + 2, 2 + x, x * 3, x - 1, x // 2, x % 3, x**2):
        assert out.dtype == dtype
    value = np.array([1, 5], dtype=dtype)
    result = (x + 2).eval({x: value})
    assert result.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(result, value + 2)


def test_int32_tensor_plus_2_stays_int32():
    x = sg.ivector("x")
    assert (x + 2).dtype == "int32"
    assert (x + 2).eval({x: np.array([1, 2], dtype="int32")}).dtype == np.int32


def test_bool_tensor_with_python_int_is_default_int():
    x = sg.vector("x", dtype="bool")
    expected = np.array([True, False]) + 1
    out = x + 1
    assert out.dtype == expected.dtype.name
    np.testing.assert_array_equal(out.eval({x: np.array([True, False])}), expected)


@pytest.mark.parametrize(
    "other",
    [np.float64(2), np.array(2.0), np.array([2.0, 3.0]), np.int64(2), np.float32(2)],
    ids=repr,
)
@pytest.mark.parametrize("dtype", ["float32", "int32", "int8"])
def test_numpy_scalars_and_arrays_are_strong(dtype, other):
    x = sg.vector("x", dtype=dtype)
    value = np.array([1, 2], dtype=dtype)
    for out, expected in [(x + other, value + other), (other * x, other * value)]:
        assert out.dtype == expected.dtype.name
        result = out.eval({x: value})
        assert result.dtype == expected.dtype
        np.testing.assert_array_equal(result, expected)


def test_float32_plus_numpy_float64_is_float64():
    x = sg.vector("x", dtype="float32")
    assert (x + np.float64(2)).dtype == "float64"
    assert (x + np.array(2.0)).dtype == "float64"
    assert (x + sg.constant(np.float64(2))).dtype == "float64"


# --- floatX's exceptions -------------------------------------------------------------------------
@pytest.mark.parametrize("floatx", ["float64", "float32"])
@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8", "bool"])
def test_integer_tensor_with_python_float_gives_floatx(floatx, dtype):
    sg.config.floatX = floatx
    x = sg.vector("x", dtype=dtype)
    value = np.array([1, 0, 1], dtype=dtype)
    for out, expected in [(x * 2.5, value * 2.5), (2.5 + x, 2.5 + value), (x - 0.5, value - 0.5)]:
        assert out.dtype == floatx
        result = out.eval({x: value})
        assert result.dtype == np.dtype(floatx)
        np.testing.assert_allclose(result, expected)


@pytest.mark.parametrize("floatx", ["float64", "float32"])
@pytest.mark.parametrize(
    "dtypes", [("int32", "int32"), ("int8", "int64"), ("uint8", "int16"), ("int64", None)], ids=str
)
def test_int_true_division_gives_floatx(floatx, dtypes):
    sg.config.floatX = floatx
    x = sg.vector("x", dtype=dtypes[0])
    x_value = np.array([7, 3, 4], dtype=dtypes[0])
    if dtypes[1] is None:
        out, expected = x / 2, x_value / 2
        inputs = {x: x_value}
    else:
        y = sg.vector("y", dtype=dtypes[1])
        y_value = np.array([2, 5, 4], dtype=dtypes[1])
        out, expected = x / y, x_value / y_value
        inputs = {x: x_value, y: y_value}
    assert out.dtype == floatx
    result = out.eval(inputs)
    assert result.dtype == np.dtype(floatx)
    np.testing.assert_allclose(result, expected, rtol=1e-6)


def test_int_floor_division_stays_integer():
    x, y = sg.ivector("x"), sg.ivector("y")
    assert (x // y).dtype == "int32"
    assert (x % y).dtype == "int32"


@pytest.mark.parametrize("floatx", ["float64", "float32"])
def test_floatx_governs_declarations_constants_and_shared(floatx):
    sg.config.floatX = floatx
    for declare in (sg.scalar, sg.vector, sg.matrix, sg.tensor3, sg.tensor4):
        assert declare().dtype == floatx
    assert sg.tensor(shape=(None, 2)).dtype == floatx
    assert sg.constant(1.5).dtype == floatx
    assert sg.constant(1).dtype == "int64"
    assert sg.constant(np.float32(1)).dtype == "float32"
    assert sg.constant(np.array([1.0])).dtype == "float64"
    assert sg.shared(1.5).dtype == floatx
    assert sg.shared(3).dtype == "int64"
    assert sg.shared(np.zeros(2, dtype="float64")).dtype == "float64"
    assert sg.shared(np.zeros(2, dtype="float32")).dtype == "float32"
    assert sg.shared([1.0, 2.0]).dtype == floatx


def test_float32_graph_stays_float32_throughout():
    sg.config.floatX = "float32"
    x = sg.matrix("x")
    w = sg.shared(np.ones((3, 2), dtype="float32"), name="w")
    y = sg.tanh(x @ w * 0.5 + 1).mean(axis=0) / 2 - sg.exp(-x.sum())
    assert y.dtype == "float32"
    f = sg.function([x], y)
    assert f(np.ones((4, 3), dtype="float32")).dtype == np.float32


def test_floatx_setting_is_checked():
    with pytest.raises(ValueError, match="floatX"):
        sg.config.floatX = "float16"
    assert sg.config.floatX == "float64"


# --- comparisons ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "int8", "bool", "float64"])
def test_comparisons_give_bool(dtype):
    x, y = sg.vector(dtype=dtype), sg.vector(dtype=dtype)
    for out in (x < y, x <= y, x > y, x >= y, x == y, x != y, x == 1, x < 2.5, sg.eq(x, y), sg.neq(x, 0)):
        assert out.dtype == "bool"
    value = np.array([0, 1, 1], dtype=dtype)
    other = np.array([1, 1, 0], dtype=dtype)
    result = (x == y).eval({x: value, y: other})
    assert result.dtype == np.bool_
    np.testing.assert_array_equal(result, value == other)


def test_eq_builds_a_node_and_hash_is_identity():
    x = sg.vector("x")
    comparison = x == x
    assert isinstance(comparison, sg.Variable)
    assert comparison.owner is not None
    assert len({x, x, sg.vector("x")}) == 2


# --- Python numbers that do not fit ---------------------------------------------------------------
@pytest.mark.parametrize(
    "dtype, number",
    [("int8", 1000), ("int8", -129), ("uint8", -1), ("uint8", 256), ("int16", 40000), ("int32", 2**40)],
)
def test_python_int_out_of_range_is_refused_when_building(dtype, number):
    x = sg.vector("x", dtype=dtype)
    with pytest.raises(DTypeError, match=rf"{number}.*{dtype}|{dtype}.*{number}"):
        x + number
    with pytest.raises(DTypeError, match=str(number)):
        number * x


def test_int8_plus_1000_error_is_clear():
    x = sg.vector("x", dtype="int8")
    with pytest.raises(TypeError) as info:
        x + 1000
    message = str(info.value)
    assert "1000" in message and "int8" in message
    assert x.dtype == "int8"


# --- static shapes that cannot work ---------------------------------------------------------------
def test_matmul_static_shape_mismatch_names_both_shapes():
    x = sg.matrix("x", shape=(None, 3))
    y = sg.matrix("y", shape=(4, None))
    with pytest.raises(ShapeError) as info:
        x @ y
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert any(text in message for text in ("(?, 3)", "(None, 3)")), message
    assert any(text in message for text in ("(4, ?)", "(4, None)")), message
    with pytest.raises(ShapeError, match="3"):
        sg.dot(x, y)


@pytest.mark.parametrize(
    "build",
    [
        lambda: sg.vector(shape=(3,)) + sg.vector(shape=(4,)),
        lambda: sg.matrix(shape=(2, 3)) * sg.vector(shape=(2,)),
        lambda: sg.where(sg.vector(dtype="bool", shape=(2,)), sg.vector(shape=(3,)), 0.0),
        lambda: sg.tensordot(sg.matrix(shape=(2, 3)), sg.matrix(shape=(4, 5)), axes=1),
        lambda: sg.matrix(shape=(2, 3)) @ sg.vector(shape=(2,)),
        lambda: sg.stack([sg.vector(shape=(2,)), sg.vector(shape=(3,))]),
        lambda: sg.matrix(shape=(2, 3)).reshape((7,)),
    ],
)
def test_static_shape_mismatches_are_refused_when_building(build):
    with pytest.raises(ShapeError):
        build()


def test_unknown_lengths_are_checked_at_run_time():
    x = sg.vector("x")
    y = sg.vector("y", shape=(3,))
    f = sg.function([x, y], x + y)
    np.testing.assert_array_equal(f(np.ones(3), np.ones(3)), np.full(3, 2.0))
    np.testing.assert_array_equal(f(np.ones(1), np.arange(3.0)), np.arange(3.0) + 1)  # broadcast
    with pytest.raises(ValueError, match="add"):
        f(np.ones(2), np.ones(3))


# --- dtypes of other ops ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_reduction_dtypes_are_numpys(dtype):
    value = np.ones((2, 3), dtype=dtype)
    x = sg.matrix("x", dtype=dtype)
    for name in ("sum", "prod", "max", "min", "mean", "argmax"):
        expected = getattr(np, name)(value, axis=0)
        out = getattr(x, name)(axis=0)
        assert out.dtype == expected.dtype.name, name
        assert out.eval({x: value}).dtype == expected.dtype, name


@pytest.mark.parametrize("dtype", ["int8", "int32", "float32", "bool"])
def test_unary_dtypes_are_numpys(dtype):
    value = np.ones(3, dtype=dtype)
    x = sg.vector("x", dtype=dtype)
    for build, reference in [
        (sg.exp, np.exp),
        (sg.sqrt, np.sqrt),
        (sg.sign, np.sign),
        (sg.abs, np.abs),
        (sg.square, np.square),
    ]:
        if dtype == "bool" and reference in (np.sign,):
            continue
        expected = reference(value)
        out = build(x)
        assert out.dtype == expected.dtype.name, reference
        assert out.eval({x: value}).dtype == expected.dtype


def test_unknown_dtypes_are_refused():
    with pytest.raises(TypeError):
        sg.vector(dtype="complex64")
    with pytest.raises(TypeError):
        sg.vector(dtype="not a dtype")
    with pytest.raises(TypeError):
        sg.shared(np.array(["a", "b"]))


# --- where, and Python numbers on their own --------------------------------------------------------
@pytest.mark.parametrize("floatx", ["float64", "float32"])
def test_where_with_python_floats_gives_floatx_and_keeps_the_condition(floatx):
    sg.config.floatX = floatx
    c = sg.vector("c", dtype="bool")
    condition = np.array([True, False, True])
    for out, expected in [
        (sg.where(c, 1.0, 0.0), np.where(condition, 1.0, 0.0)),
        (sg.switch(c, 1.0, 0), np.where(condition, 1.0, 0)),
        (sg.where(c, sg.ivector("i"), 0.5), None),
    ]:
        assert out.dtype == floatx
        assert out.owner.inputs[0] is c  # the condition is not cast to the values' dtype
        if expected is not None:
            result = out.eval({c: condition})
            assert result.dtype == np.dtype(floatx)
            np.testing.assert_array_equal(result, expected)
    assert sg.where(c, 1, 0).dtype == "int64"
    assert sg.where(c, sg.vector("v", dtype="float32"), 0.5).dtype == "float32"
    assert sg.where(c, sg.ivector("i"), 2).dtype == "int32"


@pytest.mark.parametrize("floatx", ["float64", "float32"])
def test_python_numbers_on_their_own_give_floatx(floatx):
    sg.config.floatX = floatx
    for out in (sg.exp(2.0), sg.maximum(1.0, 2.0), sg.sqrt(4), sg.constant(3) / 2, sg.clip(0.5, 0.0, 1.0)):
        assert out.dtype == floatx
        assert out.eval().dtype == np.dtype(floatx)
    assert sg.maximum(1, 2).dtype == "int64"
    assert sg.lt(1.0, 2.0).dtype == "bool"
    np.testing.assert_allclose(sg.exp(2.0).eval(), np.exp(2.0), rtol=1e-6)
