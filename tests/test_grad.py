"""``sg.grad`` and friends: accumulation, gradients as graphs, every option of ``grad``,
``verify_grad`` catching a wrong gradient, Jacobians and Hessians, ties at kinks, and the size of
the backward pass (it reuses the forward pass and grows linearly)."""

import inspect
import math
import sys
from collections import Counter

import numpy as np
import pytest

import symgraph as sg
from symgraph.errors import DisconnectedInputError, GradientError, ShapeError
from symgraph.graph.op import Op
from symgraph.graph.type import TensorType


def graph_nodes(outputs):
    """Every node that computes ``outputs``, each once (an explicit stack: graphs may be deep)."""
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    seen, nodes = set(), []
    stack = [variable.owner for variable in outputs if variable.owner is not None]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        nodes.append(node)
        stack.extend(variable.owner for variable in node.inputs if variable.owner is not None)
    return nodes


# --- accumulation and gradients as graphs --------------------------------------------------------
def test_contributions_of_a_variable_used_several_times_add_up():
    x = sg.vector("x")
    cost = (x * x + 3 * x + sg.sin(x) * x).sum() + x[0] * x[1]
    value = np.array([0.3, -1.2, 2.0])
    expected = 2 * value + 3 + np.cos(value) * value + np.sin(value) + np.array([value[1], value[0], 0.0])
    np.testing.assert_allclose(sg.grad(cost, x).eval({x: value}), expected)


def test_a_matrix_used_on_both_sides_of_a_product():
    a = sg.matrix("a")
    value = np.random.default_rng(0).standard_normal((3, 3))
    weights = np.arange(9.0).reshape(3, 3)
    cost = (sg.dot(a, a) * weights).sum()
    # d/dA sum(W * A A) = W A^T + A^T W
    expected = weights @ value.T + value.T @ weights
    np.testing.assert_allclose(sg.grad(cost, a).eval({a: value}), expected)


def test_a_gradient_is_a_graph_that_can_be_differentiated_again():
    x = sg.scalar("x")
    first = sg.grad(x**3, x)
    second = sg.grad(first, x)
    third = sg.grad(second, x)
    assert isinstance(first, sg.Variable) and first.owner is not None
    f = sg.function([x], [first, second, third])
    for value in [-1.5, 0.5, 2.0]:
        np.testing.assert_allclose(f(value), [3 * value**2, 6 * value, 6.0])


def test_second_derivative_of_a_cube_elementwise():
    x = sg.vector("x")
    first = sg.grad((x**3).sum(), x)
    second = sg.grad(first.sum(), x)
    value = np.array([-2.0, 0.5, 3.0])
    np.testing.assert_allclose(second.eval({x: value}), 6 * value)


def test_gradient_nodes_are_marked_and_carry_the_line_that_called_grad():
    x, w = sg.matrix("x"), sg.matrix("w")
    cost = sg.tanh(sg.dot(x, w)).mean()
    line = inspect.currentframe().f_lineno + 1
    gradients = sg.grad(cost, [x, w])
    forward = {id(node) for node in graph_nodes(cost)}
    made_by_grad = [node for node in graph_nodes(gradients) if id(node) not in forward]
    assert made_by_grad, "sg.grad built no node"
    for node in graph_nodes(cost):
        assert node.gradient is False, node
    for node in made_by_grad:
        assert node.gradient is True, node
        assert node.source.filename == __file__, node
        assert node.source.lineno == line, node


def test_gradient_nodes_are_marked_in_the_networkx_export():
    x = sg.vector("x")
    cost = sg.exp(x).sum()
    graph = sg.to_networkx(sg.grad(cost, x))
    op_nodes = [data for _, data in graph.nodes(data=True) if data.get("kind") == "op"]
    marks = {data["op"]: data["gradient"] for data in op_nodes}
    assert marks["exp"] is False
    assert any(data["gradient"] for data in op_nodes)


# --- verify_grad catches a wrong gradient -------------------------------------------------------
class SquareWithAWrongGradient(Op):
    """``x ** 2``, whose gradient is right everywhere but at element (1, 2), where it is off by half."""

    __props__ = ("wrong",)

    def __init__(self, wrong: bool):
        self.wrong = wrong

    def output_types(self, x: TensorType) -> list[TensorType]:
        return [x]

    def perform(self, x: np.ndarray) -> np.ndarray:
        return x**2

    def grad(self, node, output_grads, needed):
        (x,) = node.inputs
        factor = np.full((3, 4), 2.0)
        if self.wrong:
            factor[1, 2] = 3.0
        return [output_grads[0] * x * factor]


def test_verify_grad_accepts_the_right_gradient_of_a_custom_op():
    sg.verify_grad(lambda x: SquareWithAWrongGradient(False)(x), [np.random.default_rng(0).standard_normal((3, 4))])


def test_verify_grad_raises_on_a_wrong_gradient_naming_the_worst_element():
    point = np.random.default_rng(0).uniform(0.5, 1.5, (3, 4))
    with pytest.raises(GradientError, match=r"input 0, element \(1, 2\)"):
        sg.verify_grad(lambda x: SquareWithAWrongGradient(True)(x), [point])


def test_verify_grad_raises_on_a_wrong_gradient_of_the_second_input():
    point = np.random.default_rng(0).uniform(0.5, 1.5, (3, 4))
    with pytest.raises(GradientError, match=r"worst at input 1, element \(1, 2\)"):
        sg.verify_grad(lambda a, b: a * 2 + SquareWithAWrongGradient(True)(b), [point, point])


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_verify_grad_raises_on_a_nan_gradient():
    # sqrt at 0 has no derivative: the symbolic gradient is inf * 0 = NaN there.
    with pytest.raises(GradientError, match=r"element \(1,\)"):
        sg.verify_grad(lambda x: sg.sqrt(x * x), [np.array([1.0, 0.0, 2.0])])


def test_the_gradient_error_is_an_assertion_error():
    assert issubclass(GradientError, AssertionError)


# --- Jacobians and Hessians ---------------------------------------------------------------------
def test_hessian_of_a_quadratic_form():
    x, a = sg.vector("x"), sg.matrix("a")
    hessian = sg.hessian(sg.dot(x, sg.dot(a, x)), x)
    a_value = np.random.default_rng(0).standard_normal((4, 4))
    value = hessian.eval({x: np.arange(4.0), a: a_value})
    np.testing.assert_allclose(value, a_value + a_value.T)


def test_hessian_of_a_nonlinear_function():
    x = sg.vector("x")
    hessian = sg.hessian(sg.sum(sg.exp(x) * x[0]), x)
    value = np.array([0.3, -0.5, 1.0])
    expected = np.diag(np.exp(value) * value[0])
    expected[0, :] += np.exp(value)
    expected[:, 0] += np.exp(value)
    np.testing.assert_allclose(hessian.eval({x: value}), expected)


def _numeric_jacobian(function, point, eps=1e-6):
    columns = []
    for index in np.ndindex(point.shape):
        plus, minus = point.copy(), point.copy()
        plus[index] += eps
        minus[index] -= eps
        columns.append((function(plus) - function(minus)) / (2 * eps))
    return np.stack(columns, axis=-1).reshape(np.shape(function(point)) + point.shape)


def test_jacobian_of_a_vector_function_against_finite_differences():
    x = sg.vector("x")
    expression = sg.sin(x) * x.sum() + x[::-1] ** 2
    jacobian = sg.jacobian(expression, x)
    value = np.array([0.3, -1.2, 2.0, 0.7])
    f = sg.function([x], jacobian)
    result = f(value)
    assert result.shape == (4, 4)
    expected = _numeric_jacobian(lambda v: np.sin(v) * v.sum() + v[::-1] ** 2, value)
    np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-8)


def test_jacobian_shape_is_the_expression_shape_then_the_wrt_shape():
    w = sg.matrix("w")
    a = np.random.default_rng(1).standard_normal((3, 2))
    expression = sg.dot(a, sg.tanh(w))
    jacobian = sg.jacobian(expression, w)
    value = np.random.default_rng(2).standard_normal((2, 5))
    result = jacobian.eval({w: value})
    assert result.shape == (3, 5, 2, 5)
    expected = _numeric_jacobian(lambda v: a @ np.tanh(v), value)
    np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-8)


def test_jacobian_of_a_scalar_and_with_respect_to_a_scalar():
    x, s = sg.vector("x"), sg.scalar("s")
    value = np.array([0.5, 1.5])
    by_vector = sg.jacobian((x**2).sum(), x).eval({x: value})
    assert by_vector.shape == (2,)
    np.testing.assert_allclose(by_vector, 2 * value)
    by_scalar = sg.jacobian(x * s**2, s).eval({x: value, s: 3.0})
    assert by_scalar.shape == (2,)
    np.testing.assert_allclose(by_scalar, 6 * value)


# --- ties at kinks (PyTorch's conventions) ------------------------------------------------------
def test_maximum_and_minimum_split_a_tie_in_half():
    x, y = sg.vector("x"), sg.vector("y")
    x_value, y_value = np.array([1.0, 2.0, 3.0]), np.array([1.0, 5.0, 0.0])
    for combine, x_wins in [(sg.maximum, [0.5, 0.0, 1.0]), (sg.minimum, [0.5, 1.0, 0.0])]:
        gx, gy = sg.grad(combine(x, y).sum(), [x, y])
        f = sg.function([x, y], [gx, gy])
        result_x, result_y = f(x_value, y_value)
        np.testing.assert_array_equal(result_x, x_wins)
        np.testing.assert_array_equal(result_y, 1.0 - np.array(x_wins))


def test_maximum_against_a_broadcast_constant_ties_in_half():
    x = sg.vector("x")
    gradient = sg.grad(sg.maximum(x, 0).sum(), x)
    np.testing.assert_array_equal(gradient.eval({x: np.array([-1.0, 0.0, 2.0])}), [0.0, 0.5, 1.0])


def test_relu_and_abs_have_zero_derivative_at_zero():
    x = sg.vector("x")
    value = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(sg.grad(sg.nn.relu(x).sum(), x).eval({x: value}), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(sg.grad(sg.abs(x).sum(), x).eval({x: value}), [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(sg.grad(abs(x).sum(), x).eval({x: value}), [-1.0, 0.0, 1.0])


@pytest.mark.parametrize("name", ["max", "min"])
def test_reduction_ties_share_the_gradient_evenly(name):
    x = sg.matrix("x")
    sign = 1.0 if name == "max" else -1.0
    value = sign * np.array([[1.0, 3.0, 3.0, 2.0], [4.0, 4.0, 4.0, 0.0], [5.0, 1.0, 1.0, 1.0]])
    along_rows = sg.grad((getattr(x, name)(axis=1) * np.array([1.0, 2.0, 3.0])).sum(), x)
    np.testing.assert_allclose(
        along_rows.eval({x: value}),
        [[0, 0.5, 0.5, 0], [2 / 3, 2 / 3, 2 / 3, 0], [3.0, 0, 0, 0]],
    )
    everything = sg.grad(getattr(sg, name)(x), x)
    expected = np.zeros((3, 4))
    expected[2, 0] = 1.0
    np.testing.assert_allclose(everything.eval({x: value}), expected)
    columns = sign * np.array([[1.0, 2.0, 7.0], [1.0, 0.0, 7.0], [0.0, 2.0, 7.0]])
    kept = sg.grad((getattr(sg, name)(x, axis=-2, keepdims=True) * np.array([[1.0, 2.0, 3.0]])).sum(), x)
    np.testing.assert_allclose(kept.eval({x: columns}), [[0.5, 1.0, 1.0], [0.5, 0.0, 1.0], [0.0, 1.0, 1.0]])


# --- the options of grad --------------------------------------------------------------------------
def test_consider_constant_blocks_the_gradient_through_a_variable():
    x = sg.vector("x")
    square = x**2
    cost = (square * x).sum()
    value = np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(sg.grad(cost, x).eval({x: value}), 3 * value**2)
    np.testing.assert_allclose(sg.grad(cost, x, consider_constant=[square]).eval({x: value}), value**2)


def test_consider_constant_on_the_variable_itself_disconnects_it():
    x = sg.vector("x")
    with pytest.raises(DisconnectedInputError):
        sg.grad((x**2).sum(), x, consider_constant=[x])


def test_disconnected_input_raises_naming_the_variable():
    x, unused = sg.vector("x"), sg.matrix("unused_weights")
    with pytest.raises(DisconnectedInputError, match="unused_weights"):
        sg.grad(x.sum(), [x, unused])
    with pytest.raises(DisconnectedInputError, match="unused_weights"):
        sg.grad(x.sum(), unused, disconnected_inputs="raise")


def test_disconnected_input_warns_and_gives_zeros():
    x, unused = sg.vector("x"), sg.matrix("unused_weights")
    with pytest.warns(UserWarning, match="unused_weights"):
        gx, gu = sg.grad(x.sum(), [x, unused], disconnected_inputs="warn")
    f = sg.function([x, unused], [gx, gu])
    result_x, result_u = f(np.ones(3), np.ones((2, 5)))
    np.testing.assert_array_equal(result_x, np.ones(3))
    np.testing.assert_array_equal(result_u, np.zeros((2, 5)))
    assert gu.dtype == unused.dtype


def test_disconnected_input_ignored_gives_zeros_without_a_warning(recwarn):
    x, unused = sg.vector("x"), sg.tensor3("unused")
    gu = sg.grad(x.sum(), unused, disconnected_inputs="ignore")
    assert not [w for w in recwarn if "unused" in str(w.message)]
    np.testing.assert_array_equal(gu.eval({unused: np.ones((2, 1, 3))}), np.zeros((2, 1, 3)))


def test_an_unknown_disconnected_inputs_choice_is_refused():
    x = sg.vector("x")
    with pytest.raises(ValueError, match="disconnected_inputs"):
        sg.grad(x.sum(), x, disconnected_inputs="zeros")


def test_known_grads_start_the_backward_pass():
    x = sg.vector("x")
    hidden = sg.tanh(x) * 2
    given = sg.vector("given")
    gradient = sg.grad(None, x, known_grads={hidden: given})
    value, given_value = np.array([0.1, -0.4]), np.array([3.0, -1.0])
    expected = given_value * 2 * (1 - np.tanh(value) ** 2)
    np.testing.assert_allclose(gradient.eval({x: value, given: given_value}), expected)


def test_known_grads_with_a_cost_add_up_with_its_gradient():
    x = sg.vector("x")
    hidden = x**2
    cost = (x * 3).sum()  # does not go through hidden
    gradient = sg.grad(cost, x, known_grads={hidden: np.array([1.0, 2.0])})
    value = np.array([0.5, -1.0])
    np.testing.assert_allclose(gradient.eval({x: value}), 3 + 2 * value * np.array([1.0, 2.0]))


def test_known_grads_must_match_the_number_of_dimensions():
    x = sg.matrix("x")
    with pytest.raises(ShapeError, match="known_grads"):
        sg.grad(None, x, known_grads={x * 2: sg.vector("g")})


def test_grad_needs_a_cost_or_known_grads():
    with pytest.raises(ValueError, match="known_grads"):
        sg.grad(None, sg.vector("x"))


def test_one_variable_gives_one_gradient_and_a_list_gives_a_list():
    x, y = sg.vector("x"), sg.scalar("y")
    cost = (x * y).sum()
    single = sg.grad(cost, x)
    assert isinstance(single, sg.Variable)
    listed = sg.grad(cost, [x, y])
    assert isinstance(listed, list) and len(listed) == 2
    assert [g.ndim for g in listed] == [1, 0]
    one_in_a_list = sg.grad(cost, [y])
    assert isinstance(one_in_a_list, list) and len(one_in_a_list) == 1
    as_tuple = sg.grad(cost, (x, y))
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 2
    values = sg.function([x, y], listed)(np.array([1.0, 2.0]), 3.0)
    np.testing.assert_allclose(values[0], [3.0, 3.0])
    np.testing.assert_allclose(values[1], 3.0)


def test_gradients_take_the_dtype_of_their_variable():
    x = sg.vector("x", dtype="float32")
    y = sg.vector("y")
    gx, gy = sg.grad((x * y).sum(), [x, y])
    assert (gx.dtype, gy.dtype) == ("float32", "float64")


@pytest.mark.parametrize("make", [sg.iscalar, sg.lvector, lambda name: sg.vector(name, dtype="bool")])
def test_integer_and_bool_inputs_count_as_disconnected(make):
    x, index = sg.vector("x"), make("the_index")
    cost = (x * index).sum()
    with pytest.raises(DisconnectedInputError, match="the_index"):
        sg.grad(cost, index)
    with pytest.warns(UserWarning, match="the_index"):
        sg.grad(cost, [x, index], disconnected_inputs="warn")
    gx, gi = sg.grad(cost, [x, index], disconnected_inputs="ignore")
    assert gi.dtype == index.dtype
    value = np.ones(3, dtype=index.dtype) if index.ndim else np.asarray(1, dtype=index.dtype)
    result_x, result_i = sg.function([x, index], [gx, gi])(np.array([1.0, 2.0, 3.0]), value)
    np.testing.assert_array_equal(result_x, np.broadcast_to(value, (3,)).astype(float))
    np.testing.assert_array_equal(result_i, np.zeros_like(value))


def test_a_non_scalar_cost_is_refused_clearly():
    x = sg.matrix("x")
    with pytest.raises(ShapeError, match=r"scalar cost.*sum\(\)"):
        sg.grad(x * 2, x)


def test_an_integer_cost_is_refused():
    x = sg.lvector("x")
    with pytest.raises(TypeError, match="float cost"):
        sg.grad(x.sum(), x)


def test_wrt_must_be_variables():
    with pytest.raises(TypeError, match="variables"):
        sg.grad(sg.vector("x").sum(), [np.ones(3)])


# --- the backward pass reuses the forward pass ---------------------------------------------------
LAYERS = [(5, 7), (7, 6), (6, 4)]


def _mlp_loss(x, y, params, one_hot):
    hidden = x
    for layer, (w, b) in enumerate(zip(params[::2], params[1::2])):
        hidden = sg.dot(hidden, w) + b
        if layer < len(LAYERS) - 1:
            hidden = sg.maximum(hidden, 0)
    top = hidden.max(axis=1, keepdims=True)
    log_total = sg.log(sg.exp(hidden - top).sum(axis=1)) + top[:, 0]
    if one_hot:
        picked = (hidden * sg.cast(sg.eq(y.dimshuffle(0, "x"), sg.arange(4)), "float64")).sum(axis=1)
    else:
        picked = hidden[sg.arange(hidden.shape[0]), y]
    return (log_total - picked).mean()


def _numpy_mlp_loss(x, y, params):
    hidden = x
    for layer, (w, b) in enumerate(zip(params[::2], params[1::2])):
        hidden = hidden @ w + b
        if layer < len(LAYERS) - 1:
            hidden = np.maximum(hidden, 0)
    log_total = np.log(np.exp(hidden - hidden.max(axis=1, keepdims=True)).sum(axis=1)) + hidden.max(axis=1)
    return (log_total - hidden[np.arange(len(y)), y]).mean()


def _numeric_gradient(function, values, position, eps=1e-6):
    gradient = np.zeros_like(values[position])
    for index in np.ndindex(gradient.shape):
        shifted = [value.copy() for value in values]
        shifted[position][index] += eps
        plus = function(shifted)
        shifted[position][index] -= 2 * eps
        gradient[index] = (plus - function(shifted)) / (2 * eps)
    return gradient


@pytest.mark.parametrize("one_hot", [False, True], ids=["indices", "one_hot"])
def test_training_function_computes_as_many_products_as_hand_written_backprop(one_hot):
    rng = np.random.default_rng(0)
    initial = []
    for fan_in, fan_out in LAYERS:
        initial += [rng.standard_normal((fan_in, fan_out)) * 0.5, rng.standard_normal(fan_out) * 0.1]
    params = [sg.shared(value.copy(), name=f"p{i}") for i, value in enumerate(initial)]
    x, y = sg.matrix("x"), sg.lvector("y")
    loss = _mlp_loss(x, y, params, one_hot)
    learning_rate = 0.1
    gradients = sg.grad(loss, params)
    f = sg.function([x, y], loss, updates=[(p, p - learning_rate * g) for p, g in zip(params, gradients)])

    counts = Counter(node.op.name for node in f.graph.nodes)
    # 3 forward; backward: 3 for the weights, 2 to pass the gradient down (none to the input x).
    assert counts["dot"] == 8, counts
    seen = {}
    for node in f.graph.nodes:
        key = (node.op, tuple(id(variable) for variable in node.inputs))
        assert key not in seen, f"{node} computed twice (also {seen[key]})"
        seen[key] = node

    # One step of SGD against central differences of the loss written in numpy.
    x_value, y_value = rng.standard_normal((8, 5)), rng.integers(0, 4, 8)
    loss_value = f(x_value, y_value)
    np.testing.assert_allclose(loss_value, _numpy_mlp_loss(x_value, y_value, initial))
    for position, param in enumerate(params):
        numeric = _numeric_gradient(lambda values: _numpy_mlp_loss(x_value, y_value, values), initial, position)
        np.testing.assert_allclose(param.get_value(), initial[position] - learning_rate * numeric, rtol=1e-6, atol=1e-8)


# --- gradient graphs grow linearly -----------------------------------------------------------------
@pytest.fixture
def default_recursion_limit():
    """Python's default limit, whatever the test runner set."""
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    yield
    sys.setrecursionlimit(saved)


def test_a_chain_of_ten_thousand_ops_differentiates_and_compiles_without_recursion(default_recursion_limit):
    x = sg.vector("x")
    hidden = x
    steps = 3334  # sin, mul, add per step: 10,002 elementwise ops
    for _ in range(steps):
        hidden = hidden + sg.sin(hidden) * 1e-3
    cost = hidden.sum()
    forward = len(graph_nodes(cost))
    assert forward >= 10_000
    gradient = sg.grad(cost, x)
    assert len(graph_nodes(gradient)) < 10 * forward
    f = sg.function([x], [cost, gradient])

    value = np.array([0.3, -1.2, 2.0])
    expected_value, expected_gradient = value.copy(), np.ones(3)
    for _ in range(steps):
        expected_gradient *= 1 + 1e-3 * np.cos(expected_value)
        expected_value = expected_value + np.sin(expected_value) * 1e-3
    cost_value, gradient_value = f(value)
    np.testing.assert_allclose(cost_value, expected_value.sum(), rtol=1e-10)
    np.testing.assert_allclose(gradient_value, expected_gradient, rtol=1e-10)
    assert not math.isclose(gradient_value[0], gradient_value[1])


def test_gradient_size_is_linear_in_the_chain_length():
    sizes = []
    for steps in (500, 1000, 2000):
        x = sg.vector("x")
        hidden = x
        for _ in range(steps):
            hidden = sg.tanh(hidden) * 1.5 + x
        sizes.append(len(graph_nodes(sg.grad(hidden.sum(), x))))
    # Doubling the chain at most doubles the gradient graph, plus a constant.
    assert sizes[2] - sizes[1] <= 2 * (sizes[1] - sizes[0]) + 10, sizes
    assert sizes[2] < 2 * sizes[1] + 50, sizes


def test_known_grad_replaces_what_flows_through_that_variable():
    # As in Theano: the known gradient of h is h's whole gradient; the cost's path through h
    # (d cost / d h = 2) is not added, while x's other path (the 5 x term) still counts.
    x = sg.vector("x")
    h = x * 3
    cost = (h * 2).sum() + (x * 5).sum()
    g = sg.grad(cost, x, known_grads={h: sg.ones_like(h) * 10})
    np.testing.assert_allclose(g.eval({x: np.ones(2)}), [10 * 3 + 5, 10 * 3 + 5])


def test_jacobian_of_a_phase_dependent_graph_follows_the_function_phase():
    x = sg.vector("x")
    dropped = sg.nn.dropout(x, keep_prob=0.5, rng=sg.RandomStreams(3))
    jacobian = sg.jacobian(dropped * 2, x)
    with pytest.raises(sg.errors.PhaseError, match="dropout"):
        sg.function([x], jacobian)
    np.testing.assert_array_equal(sg.function([x], jacobian, phase="predict")(np.ones(3)), 2 * np.eye(3))
    train_jacobian = sg.function([x], jacobian, phase="train")(np.ones(400))
    diagonal = np.diag(train_jacobian)
    assert set(np.unique(diagonal)) == {0.0, 4.0}  # 2 * mask / keep_prob, one fixed mask
    assert 120 < (diagonal > 0).sum() < 280
    np.testing.assert_array_equal(train_jacobian - np.diag(diagonal), 0)


def test_grad_pauses_garbage_collection_while_it_builds_and_restores_it():
    import gc

    seen = []

    class Recording(Op):
        __props__ = ()

        def output_types(self, x):
            return [x]

        def perform(self, x):
            return x

        def grad(self, node, output_grads, needed):
            seen.append(gc.isenabled())
            return [output_grads[0] * 2]

    x = sg.vector("x")
    assert gc.isenabled()
    gradient = sg.grad(Recording()(x).sum(), x)
    assert seen == [False] and gc.isenabled()
    np.testing.assert_allclose(gradient.eval({x: np.ones(3)}), [2.0, 2.0, 2.0])
    with pytest.raises(ShapeError):  # a failed call leaves it on too
        sg.grad(Recording()(x), x)
    assert gc.isenabled()
    gc.disable()
    try:
        sg.grad(Recording()(x).sum(), x)
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()
