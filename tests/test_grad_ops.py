"""``sg.verify_grad`` on every differentiable op, in float64, at random points away from kinks.

Each case is a function of symbolic inputs and the point to check it at. ``verify_grad`` gives its
inputs unknown static shapes, so broadcasting over length-1 axes is exercised *undeclared*; cases
named ``declared`` reshape the inputs to static shapes first, so the same sums see lengths known at
build time.
"""

import numpy as np
import pytest

import symgraph as sg


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def normal(*shape: int, seed: int = 0) -> np.ndarray:
    """Standard normal values of ``shape``."""
    return _rng(seed).standard_normal(shape)


def away_from_zero(*shape: int, seed: int = 0) -> np.ndarray:
    """Values in +-[0.5, 2]: away from the kinks of abs, sign, relu and from division by zero."""
    rng = _rng(seed)
    return rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def positive(*shape: int, seed: int = 0) -> np.ndarray:
    """Values in [0.5, 2]."""
    return _rng(seed).uniform(0.5, 2.0, shape)


def distinct(*shape: int, seed: int = 0) -> np.ndarray:
    """Values at least 0.1 apart from one another (no ties for max, min, maximum, sort...)."""
    size = int(np.prod(shape))
    values = np.arange(size) * 0.25 - size * 0.125 + 0.05
    return _rng(seed).permutation(values).reshape(shape)


def check(fun, *point, **options) -> None:
    """``sg.verify_grad`` of ``fun`` at ``point`` (float64 arrays)."""
    sg.verify_grad(fun, [np.asarray(value, dtype=np.float64) for value in point], rng=_rng(42), **options)


# --- elementwise ------------------------------------------------------------------------------
UNARY = {
    "neg": (lambda x: -x, normal),
    "abs": (sg.abs, away_from_zero),
    "abs_operator": (lambda x: abs(x), away_from_zero),
    "sign": (lambda x: sg.sign(x) * x, away_from_zero),
    "exp": (sg.exp, normal),
    "log": (sg.log, positive),
    "log1p": (sg.log1p, lambda *s: positive(*s) - 0.4),
    "expm1": (sg.expm1, normal),
    "sqrt": (sg.sqrt, positive),
    "square": (sg.square, normal),
    "sin": (sg.sin, normal),
    "cos": (sg.cos, normal),
    "tanh": (sg.tanh, normal),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_elementwise(name):
    fun, points = UNARY[name]
    check(fun, points(3, 4))


BINARY = {
    "add": (lambda x, y: x + y, normal, normal),
    "sub": (lambda x, y: x - y, normal, normal),
    "mul": (lambda x, y: x * y, normal, normal),
    "true_div": (lambda x, y: x / y, normal, away_from_zero),
    "pow": (lambda x, y: x**y, positive, normal),
    "maximum": (sg.maximum, distinct, lambda *s: distinct(*s, seed=1) + 0.1),
    "minimum": (sg.minimum, distinct, lambda *s: distinct(*s, seed=1) + 0.1),
}
# (shape of x, shape of y): equal, trailing vector, both length-1 axes, a scalar, size-1 axes.
BROADCASTS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((), (2, 3)), ((1, 1), (2, 1, 3))]


@pytest.mark.parametrize("shapes", BROADCASTS, ids=lambda s: f"{s[0]}-{s[1]}")
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_elementwise_with_broadcasting(name, shapes):
    fun, x_points, y_points = BINARY[name]
    x_shape, y_shape = shapes
    if name in ("maximum", "minimum"):  # one pool of distinct values: no ties across x and y
        pool = distinct(int(np.prod(x_shape)) + int(np.prod(y_shape)))
        x, y = pool[: int(np.prod(x_shape))].reshape(x_shape), pool[int(np.prod(x_shape)) :].reshape(y_shape)
    else:
        x, y = x_points(*x_shape), y_points(*y_shape, seed=1)
    check(fun, x, y)


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_elementwise_with_declared_length_one_axes(name):
    fun, x_points, y_points = BINARY[name]
    x, y = (
        (distinct(3, 1), distinct(1, 4) + 0.1)
        if name in ("maximum", "minimum")
        else (x_points(3, 1), y_points(1, 4, seed=1))
    )
    check(lambda a, b: fun(a.reshape((3, 1)), b.reshape((1, 4))), x, y)


def test_python_scalars_on_either_side():
    check(lambda x: 2.0 * x - 1.5 / x + x**3 + 3.0**x - (1.0 - x) * 0.5 + 2 / (x + 4.0), positive(3, 4))


def test_floor_div_and_mod_away_from_jumps():
    # x / y stays within 0.3 of the middle between two integers: no jump within the step.
    rng = _rng(3)
    y = rng.uniform(0.5, 2.0, (3, 4))
    x = y * (rng.integers(-3, 4, (3, 4)) + 0.5 + rng.uniform(-0.2, 0.2, (3, 4)))
    check(lambda a, b: (a // b) * a + a % b, x, y)
    check(lambda a, b: a % b, x[:, :1], y)  # broadcasting x


def test_pow_with_integer_exponents_and_negative_bases():
    check(lambda x: x**2 + x**3 - 2 * x**-1, away_from_zero(3, 4))


def test_clip_between_tensor_and_constant_bounds():
    x = np.linspace(-2.05, 2.05, 12).reshape(3, 4)  # no element on a bound
    check(lambda a: sg.clip(a, -1.0, 1.0), x)
    lo, hi = np.full((1, 4), -0.98), np.array([0.52, 1.02, 1.51, 0.03])
    check(sg.clip, x, lo, hi)


def test_where_with_broadcast_branches():
    condition = np.array([[True, False, True, False], [False, False, True, True], [True, True, False, False]])
    check(lambda a, b: sg.where(condition, a, b), normal(3, 4), normal(1, 4, seed=1))
    check(lambda a, b: sg.switch(a > 0.2, a * 2, b), normal(3, 4), normal(4, seed=1))


def test_cast_between_floats():
    check(lambda x: sg.cast(x, "float64") * x, normal(3, 4).astype(np.float32))
    # A round trip through float32 rounds to ~1e-7 of the value: a larger step keeps the numeric
    # difference quotient accurate.
    check(lambda x: sg.cast(sg.cast(x, "float32"), "float64") ** 2, normal(3, 4), eps=1e-2, rel_tol=1e-4)
    check(lambda x: x.astype("float32").sum() * 2.0, normal(3, 4), eps=1e-2, rel_tol=1e-4)


def test_gradient_shapes_of_a_length_one_broadcast():
    # (3, 1) + (1, 4): each gradient sums back over the broadcast axis, declared or not.
    x_value, y_value = normal(3, 1), normal(1, 4)
    for x, y in [
        (sg.matrix("x"), sg.matrix("y")),
        (sg.tensor("x", shape=(3, 1)), sg.tensor("y", shape=(1, 4))),
        (sg.tensor("x", shape=(None, 1)), sg.tensor("y", shape=(1, None))),
    ]:
        gx, gy = sg.grad(((x + y) * np.arange(12.0).reshape(3, 4)).sum(), [x, y])
        value_x, value_y = sg.function([x, y], [gx, gy], on_unused_input="ignore")(x_value, y_value)
        np.testing.assert_allclose(value_x, np.arange(12.0).reshape(3, 4).sum(axis=1, keepdims=True))
        np.testing.assert_allclose(value_y, np.arange(12.0).reshape(3, 4).sum(axis=0, keepdims=True))
        assert gx.ndim == 2 and gy.ndim == 2


def test_gradient_over_a_broadcast_with_length_one_on_both_sides():
    # The same undeclared variable sees length 1 broadcast on one call and not on the next.
    x, y = sg.matrix("x"), sg.matrix("y")
    gx = sg.grad((x * y).sum(), x)
    f = sg.function([x, y], gx)
    np.testing.assert_allclose(f(np.ones((1, 4)), np.ones((3, 4))), np.full((1, 4), 3.0))
    np.testing.assert_allclose(f(np.ones((3, 4)), np.ones((3, 1))), np.ones((3, 4)))
    np.testing.assert_allclose(f(np.ones((1, 1)), np.ones((1, 1))), np.ones((1, 1)))


# --- reductions -------------------------------------------------------------------------------
REDUCTIONS = ["sum", "mean", "max", "min", "prod", "var", "std"]
AXES = [None, 0, -1, (0, 2), (-1, -3), (1,)]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction(name, axis, keepdims):
    point = distinct(2, 3, 4) if name in ("max", "min") else positive(2, 3, 4)
    check(lambda x: getattr(sg, name)(x, axis=axis, keepdims=keepdims), point)


@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_method_over_size_one_axes(name):
    point = distinct(1, 3, 1) if name in ("max", "min") else positive(1, 3, 1)
    check(lambda x: getattr(x, name)(axis=(0, -2)), point)  # groups of 3 over a length-1 axis
    check(lambda x: getattr(x, name)(), point)
    if name != "std":  # std of one element is sqrt at 0: no derivative
        check(lambda x: getattr(x, name)(axis=(0, 2), keepdims=True), point)  # groups of one


def test_prod_with_zeros():
    point = positive(3, 4)
    point[0, 1] = 0.0  # one zero in row 0: only its own gradient is nonzero
    point[1, 0] = point[1, 3] = 0.0  # two zeros in row 1: every gradient is zero
    point[2, 2] = 0.0
    check(lambda x: sg.prod(x, axis=1), point)
    check(lambda x: sg.prod(x, axis=0, keepdims=True), point)
    check(lambda x: sg.prod(x), point[2:])


def test_var_and_std_with_ddof():
    check(lambda x: sg.var(x, axis=1, ddof=1).sum() + sg.std(x, axis=0, ddof=1).sum(), normal(3, 4))


# --- products ---------------------------------------------------------------------------------
DOT_SHAPES = [((4,), (4,)), ((3, 4), (4,)), ((4,), (4, 2)), ((3, 4), (4, 2))]


@pytest.mark.parametrize("shapes", DOT_SHAPES, ids=lambda s: f"{len(s[0])}d-{len(s[1])}d")
def test_dot(shapes):
    x_shape, y_shape = shapes
    check(sg.dot, normal(*x_shape), normal(*y_shape, seed=1))
    check(lambda a, b: a @ b, normal(*x_shape), normal(*y_shape, seed=1))


def test_dot_with_declared_shapes():
    check(lambda a, b: sg.dot(a.reshape((3, 4)), b.reshape((4, 2))), normal(3, 4), normal(4, 2, seed=1))


def test_dot_of_higher_dimensions():
    check(sg.dot, normal(2, 3, 4), normal(5, 4, 2, seed=1))


MATMUL_SHAPES = [
    ((2, 3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),  # batch axes broadcast: (2, 1) with (5,)
    ((3, 4), (2, 4, 5)),
    ((2, 3, 4), (4, 5)),
    ((4,), (2, 4, 5)),
    ((2, 3, 4), (4,)),
    ((1, 3, 4), (2, 4, 5)),
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=lambda s: f"{s[0]}@{s[1]}")
def test_matmul_batched_with_broadcasting(shapes):
    x_shape, y_shape = shapes
    check(sg.matmul, normal(*x_shape), normal(*y_shape, seed=1))


def test_outer():
    check(sg.outer, normal(3), normal(4, seed=1))
    check(sg.outer, normal(2, 2), normal(3, seed=1))  # flattened first, as numpy does


TENSORDOT_AXES = [
    ((2, 3, 4), (4, 2, 5), ([2, 0], [0, 1])),
    ((2, 3, 4), (3, 4, 2), ([0, 2], [2, 1])),  # neither side sorted
    ((2, 3, 4), (4, 3, 5), ([2, 1], [0, 1])),
    ((3, 4, 2), (2, 5, 4), ([-1, 1], [0, -1])),
    ((2, 3, 4), (3, 4, 5), 2),
    ((3, 4), (4, 5), 1),
    ((3, 4), (2, 5), 0),
]


@pytest.mark.parametrize("case", TENSORDOT_AXES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
def test_tensordot(case):
    x_shape, y_shape, axes = case
    x, y = normal(*x_shape), normal(*y_shape, seed=1)
    check(lambda a, b: sg.tensordot(a, b, axes=axes), x, y)


# --- shapes -----------------------------------------------------------------------------------
SHAPE_CASES = {
    "reshape": (lambda x: x.reshape((4, 6)) * np.arange(24.0).reshape(4, 6), (2, 3, 4)),
    "reshape_minus_one": (lambda x: sg.reshape(x, (-1, 2)), (2, 3, 4)),
    "reshape_symbolic": (lambda x: x.reshape((x.shape[0] * 3, -1)), (2, 3, 4)),
    "flatten": (lambda x: x.flatten() * np.arange(24.0), (2, 3, 4)),
    "flatten_2": (lambda x: sg.flatten(x, 2), (2, 3, 4)),
    "dimshuffle": (lambda x: x.dimshuffle(2, "x", 0, 1), (2, 3, 4)),
    "dimshuffle_drop": (lambda x: x.dimshuffle(2, 0), (2, 1, 4)),
    "transpose": (lambda x: x.T, (2, 3, 4)),
    "transpose_axes": (lambda x: sg.transpose(x, (1, 2, 0)), (2, 3, 4)),
    "broadcast_to": (lambda x: sg.broadcast_to(x, (2, 3, 4)), (3, 1)),
    "broadcast_to_symbolic": (lambda x: sg.broadcast_to(x, (2, x.shape[0], 4)), (3, 1)),
    "expand_dims": (lambda x: sg.expand_dims(x, -1), (3, 4)),
    "none_index": (lambda x: x[None, :, None], (3, 4)),
}


@pytest.mark.parametrize("name", list(SHAPE_CASES))
def test_shape_operation(name):
    fun, shape = SHAPE_CASES[name]
    check(fun, normal(*shape))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate(axis):
    shapes = {0: [(1, 3), (2, 3), (3, 3)], 1: [(2, 1), (2, 3), (2, 2)], -1: [(2, 1), (2, 3), (2, 2)]}[axis]
    check(lambda a, b, c: sg.concatenate([a, b, c], axis=axis), *[normal(*s, seed=i) for i, s in enumerate(shapes)])


def test_concatenate_the_same_variable_twice():
    check(lambda a: sg.concatenate([a, a * 2, a], axis=0), normal(2, 3))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_stack(axis):
    check(lambda a, b: sg.stack([a, b, a], axis=axis), normal(2, 3), normal(2, 3, seed=1))


def test_stack_of_scalars():
    check(lambda a, b: sg.stack([a, b * a, b]), normal(), normal(seed=1))


# --- indexing ---------------------------------------------------------------------------------
INDEXING = {
    "int": lambda x: x[1],
    "negative_int": lambda x: x[-1, 2],
    "slices": lambda x: x[1:, ::2],
    "negative_step": lambda x: x[::-1, 3:0:-2],
    "ellipsis": lambda x: x[..., 1],
    "symbolic_slice": lambda x: x[x.shape[0] - 2 :],
    "int_array": lambda x: x[np.array([2, 0, 2, 1])],  # repeated rows add up
    "two_arrays": lambda x: x[np.array([0, 2, 2]), np.array([1, 3, 1])],
    "array_and_slice": lambda x: x[1:, np.array([[0, 3], [3, 3]])],
    "arange_index": lambda x: x[sg.arange(x.shape[0]), np.array([1, 0, 3])],
    "boolean": lambda x: x[
        np.array([[True, False, True, False], [False, False, False, True], [True, True, False, False]])
    ],
    "boolean_rows": lambda x: x[np.array([True, False, True])],
    "comparison_mask": lambda x: x[x > 0.0],
}


@pytest.mark.parametrize("name", list(INDEXING))
def test_indexing(name):
    check(INDEXING[name], away_from_zero(3, 4))


def test_indexing_with_a_symbolic_integer_vector():
    index = sg.lvector("index")
    x = sg.matrix("x")
    gradient = sg.grad((x[index] * np.arange(8.0).reshape(2, 4)).sum(), x)
    value = gradient.eval({x: np.zeros((3, 4)), index: np.array([2, 2])})
    expected = np.zeros((3, 4))
    expected[2] = np.arange(8.0).reshape(2, 4).sum(axis=0)
    np.testing.assert_allclose(value, expected)


ASSIGNMENTS = {
    "set_slice": (lambda x, y: sg.set_subtensor(x[1:, :2], y), (2, 2)),
    "set_broadcast_row": (lambda x, y: sg.set_subtensor(x[0], y), (1,)),
    "set_array": (lambda x, y: sg.set_subtensor(x[np.array([2, 0])], y), (2, 4)),
    "set_boolean": (lambda x, y: sg.set_subtensor(x[np.array([True, False, True])], y), (2, 4)),
    "inc_slice": (lambda x, y: sg.inc_subtensor(x[:, 1:3], y), (3, 2)),
    "inc_repeated": (lambda x, y: sg.inc_subtensor(x[np.array([1, 0, 1, 1])], y), (4, 4)),
    "inc_repeated_pairs": (lambda x, y: sg.inc_subtensor(x[np.array([1, 1, 2]), np.array([3, 3, 0])], y), (3,)),
    "inc_repeated_broadcast": (lambda x, y: sg.inc_subtensor(x[np.array([2, 2, 0])], y), (1, 4)),
    "inc_scalar": (lambda x, y: sg.inc_subtensor(x[1:, 2], y), ()),
}


@pytest.mark.parametrize("name", list(ASSIGNMENTS))
def test_set_and_inc_subtensor(name):
    fun, y_shape = ASSIGNMENTS[name]
    # Nonlinear in the result, so a wrong mask on x or a wrong sum on y shows.
    check(lambda x, y: fun(x, y) ** 2, normal(3, 4), normal(*y_shape, seed=1))


# --- neural-network ops ----------------------------------------------------------------------
NN = {
    "sigmoid": (sg.nn.sigmoid, normal),
    "relu": (sg.nn.relu, away_from_zero),
    "tanh": (sg.nn.tanh, normal),
    "softplus": (sg.nn.softplus, normal),
    "softmax": (sg.nn.softmax, normal),
    "softmax_axis_0": (lambda x: sg.nn.softmax(x, axis=0), normal),
    "log_softmax": (sg.nn.log_softmax, normal),
    "log_softmax_axis_0": (lambda x: sg.nn.log_softmax(x, axis=-2), normal),
    "relu_as_maximum": (lambda x: sg.maximum(x, 0), away_from_zero),
}


@pytest.mark.parametrize("name", list(NN))
def test_nn_activation(name):
    fun, points = NN[name]
    check(fun, points(3, 4))


def test_softmax_of_one_column():
    check(sg.nn.softmax, normal(3, 1))
    check(lambda x: sg.nn.log_softmax(x, axis=0), normal(1, 4))


@pytest.mark.parametrize("mode", ["fast_run", "fast_compile", "debug"])
@pytest.mark.parametrize("shape, axis", [((3, 0), 1), ((0, 4), 0), ((0, 0), -1), ((2, 0, 3), 1)], ids=str)
def test_softmax_over_no_classes_is_empty(shape, axis, mode):
    # As PyTorch: nothing to normalize gives an empty array (numpy's max of nothing would raise).
    x = sg.tensor("x", shape=(None,) * len(shape))
    outputs = [sg.nn.softmax(x, axis=axis), sg.nn.log_softmax(x, axis=axis)]
    outputs += sg.grad(sum(output.sum() for output in outputs), [x])
    for got in sg.function([x], outputs, mode=mode)(np.zeros(shape)):
        assert got.shape == shape and got.dtype == np.float64


TARGET_INDICES = np.array([2, 0, 3])
TARGET_ROWS = np.eye(4)[TARGET_INDICES]


def _probabilities(x):
    """Rows of positive numbers summing to 1, not built by softmax (the unfused path)."""
    return x / x.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("targets", [TARGET_INDICES, TARGET_ROWS], ids=["indices", "one_hot"])
def test_categorical_crossentropy_of_softmax(targets):
    check(lambda z: sg.nn.categorical_crossentropy(sg.nn.softmax(z), targets), normal(3, 4))


@pytest.mark.parametrize("targets", [TARGET_INDICES, TARGET_ROWS], ids=["indices", "one_hot"])
def test_categorical_crossentropy_of_probabilities(targets):
    check(lambda p: sg.nn.categorical_crossentropy(_probabilities(p), targets), positive(3, 4))


def test_categorical_crossentropy_with_respect_to_soft_targets():
    soft = positive(3, 4, seed=1)
    soft /= soft.sum(axis=1, keepdims=True)
    check(lambda z, t: sg.nn.categorical_crossentropy(sg.nn.softmax(z), t), normal(3, 4), soft)
    check(lambda p, t: sg.nn.categorical_crossentropy(_probabilities(p), t), positive(3, 4), soft)


def test_binary_crossentropy():
    targets = np.array([[0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.3, 0.7], [0.0, 0.0, 1.0, 1.0]])
    check(lambda z: sg.nn.binary_crossentropy(sg.nn.sigmoid(z), targets), normal(3, 4))
    probabilities = _rng(5).uniform(0.1, 0.9, (3, 4))
    check(lambda p: sg.nn.binary_crossentropy(p, targets), probabilities)
    check(sg.nn.binary_crossentropy, probabilities, targets)
    check(lambda z, t: sg.nn.binary_crossentropy(sg.nn.sigmoid(z), t), normal(3, 4), targets)
