"""Numerical stability of the activations and losses: no NaN or Inf, in values or gradients, for
logits of +-1e4 in float32 and float64, in every mode; the softmax cross-entropy's gradient is
exactly softmax - onehot, with no division by a probability."""

import numpy as np
import pytest

import symgraph as sg
from symgraph.graph.traversal import postorder

DTYPES = ["float32", "float64"]
MODES = ["fast_run", "fast_compile", "debug"]


def extreme_logits(dtype):
    return np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [1e4, 1e4, -1e4], [0.5, -0.5, 1e4]], dtype=dtype)


CLASSES = np.array([0, 0, 2, 1], dtype=np.int64)


def losses(z, dtype):
    """Each activation and loss of sg.nn, made a scalar (weighted so that gradients are not trivial)."""
    weights = sg.constant(np.linspace(0.5, 1.5, 12).reshape(4, 3).astype(dtype))
    targets = sg.constant(CLASSES)
    binary_targets = sg.constant(np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1]], dtype=dtype))
    return {
        "sigmoid": (sg.nn.sigmoid(z) * weights).sum(),
        "softplus": (sg.nn.softplus(z) * weights).sum(),
        "softmax": (sg.nn.softmax(z) * weights).sum(),
        "log_softmax": (sg.nn.log_softmax(z) * weights).sum(),
        "tanh": (sg.nn.tanh(z) * weights).sum(),
        "relu": (sg.nn.relu(z) * weights).sum(),
        "categorical_crossentropy": sg.nn.categorical_crossentropy(sg.nn.softmax(z), targets).sum(),
        "categorical_crossentropy_onehot": sg.nn.categorical_crossentropy(
            sg.nn.softmax(z), sg.constant(np.eye(3, dtype=dtype)[CLASSES])
        ).sum(),
        "binary_crossentropy": (sg.nn.binary_crossentropy(sg.nn.sigmoid(z), binary_targets) * weights).sum(),
    }


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(losses(sg.matrix("z"), "float64")))
def test_values_and_gradients_are_finite_at_extreme_logits(name, dtype, mode):
    z = sg.matrix("z", dtype=dtype)
    cost = losses(z, dtype)[name]
    f = sg.function([z], [cost, sg.grad(cost, z)], mode=mode)
    value, gradient = f(extreme_logits(dtype))
    assert value.dtype == np.dtype(dtype) and gradient.dtype == np.dtype(dtype)
    assert np.isfinite(value), f"{name} gave {value}"
    assert np.isfinite(gradient).all(), f"the gradient of {name} gave {gradient}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_values_at_extreme_logits(dtype):
    z = sg.vector("z", dtype=dtype)
    points = np.array([-1e4, 1e4], dtype=dtype)
    np.testing.assert_array_equal(sg.function([z], sg.nn.sigmoid(z))(points), [0.0, 1.0])
    np.testing.assert_array_equal(sg.function([z], sg.nn.softplus(z))(points), [0.0, 1e4])
    np.testing.assert_array_equal(sg.function([z], sg.nn.log_softmax(z))(points), [-2e4, 0.0])


@pytest.mark.parametrize("dtype", ["float16", *DTYPES])
@pytest.mark.parametrize("name", ["sigmoid", "softplus"])
def test_one_number_gives_what_an_array_of_it_gives(name, dtype):
    # A 0-d value takes a path of its own (Python's arithmetic): the same values, no overflow.
    activation = getattr(sg.nn, name)
    s, v = sg.scalar("s", dtype=dtype), sg.vector("v", dtype=dtype)
    one, many = sg.function([s], activation(s)), sg.function([v], activation(v))
    points = np.array([-1e4, -745.5, -100.0, -30.0, -1.5, 0.0, 1e-30, 1.5, 30.0, 100.0, 1e4], dtype=dtype)
    points = points[np.isfinite(points)]
    with np.errstate(over="raise", under="ignore"):
        singles = np.array([one(point) for point in points])
    assert singles.dtype == np.dtype(dtype)
    tolerance = 1e-3 if dtype == "float16" else 1e-6 if dtype == "float32" else 1e-14
    # (atol: the array path rounds sigmoid(-100) to 0 in float32, Python gives a subnormal number)
    np.testing.assert_allclose(singles, many(points), rtol=tolerance, atol=np.finfo(dtype).tiny)
    assert np.isnan(one(np.array(np.nan, dtype=dtype)))
    assert one(np.array(-np.inf, dtype=dtype)) == 0.0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_crossentropy_gradient_is_exactly_softmax_minus_onehot(dtype, mode):
    z = sg.matrix("z", dtype=dtype)
    targets = sg.lvector("t")
    cost = sg.nn.categorical_crossentropy(sg.nn.softmax(z), targets).sum()
    f = sg.function(
        [z, targets], [sg.nn.categorical_crossentropy(sg.nn.softmax(z), targets), sg.grad(cost, z)], mode=mode
    )
    rows, gradient = f(extreme_logits(dtype), CLASSES)
    # softmax of these logits is exactly 0, 1 or 1/2 in floating point
    probabilities = np.array([[1, 0, 0], [0, 1, 0], [0.5, 0.5, 0], [0, 0, 1]], dtype=dtype)
    np.testing.assert_array_equal(gradient, probabilities - np.eye(3, dtype=dtype)[CLASSES])
    np.testing.assert_array_equal(rows, np.array([0.0, 2e4, 2e4 + np.log(2.0), 1e4 + 0.5], dtype=dtype))


def test_softmax_crossentropy_gradient_divides_by_no_probability():
    z = sg.matrix("z")
    cost = sg.nn.categorical_crossentropy(sg.nn.softmax(z), sg.lvector("t")).sum()
    gradient = sg.grad(cost, z)
    divisions = [node for node in postorder([gradient]) if node.op.name == "true_div"]
    assert divisions == []


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_crossentropy_of_sigmoid_matches_the_stable_formula(dtype):
    z, t = sg.vector("z", dtype=dtype), sg.vector("t", dtype=dtype)
    loss = sg.nn.binary_crossentropy(sg.nn.sigmoid(z), t)
    logits = np.array([-1e4, -30.0, 0.0, 30.0, 1e4], dtype=dtype)
    targets = np.array([1, 0, 1, 1, 0], dtype=dtype)
    got, gradient = sg.function([z, t], [loss, sg.grad(loss.sum(), z)])(logits, targets)
    expected = np.logaddexp(0, logits.astype(np.float64)) - targets * logits
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)  # softplus(30) - 30 cancels in float32
    sigmoid = np.exp(-np.logaddexp(0, -logits.astype(np.float64)))
    np.testing.assert_allclose(gradient, sigmoid - targets, atol=1e-7)


@pytest.mark.parametrize("shape", [(3, 10), (16, 10), (300, 10), (64, 32), (64, 33), (40, 256)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_softmax_and_crossentropy_of_rows_short_and_long_match_numpy(shape, order):
    # Many short rows take another path to their maxima (a transposed copy) in the numpy backend.
    z, y = sg.matrix("z"), sg.ivector("y")
    probabilities = sg.nn.softmax(z)
    f = sg.function([z, y], [probabilities, sg.nn.categorical_crossentropy(probabilities, y)])
    rng = np.random.default_rng(shape[0] * shape[1])
    logits = np.asarray(rng.normal(size=shape) * 30, order=order)
    logits[0, 1] = np.nan  # one row of NaN: only that row is NaN
    targets = rng.integers(0, shape[1], shape[0]).astype("int32")
    shifted = logits - logits.max(axis=1, keepdims=True)
    expected = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        got, losses = f(logits, targets)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)
    rows = np.arange(shape[0])
    np.testing.assert_allclose(losses, -np.log(expected[rows, targets]), rtol=1e-9, atol=1e-12)
    assert np.isnan(got[0]).all() and np.isnan(losses[0]) and np.isfinite(losses[1:]).all()
