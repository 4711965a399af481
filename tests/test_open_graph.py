"""The open graph: ops defined by users, ops as plain data (equality, pickling, deep copies),
subgraphs as ops (``sg.OpFromGraph``), Jacobians rebuilt on inner graphs, and the backends."""

from __future__ import annotations

import copy
import io
import pickle

import numpy as np
import pytest

import symgraph as sg
from symgraph.ops.elemwise import Elemwise


def op_names(function) -> list[str]:
    return [node.op.name for node in function.nodes]


# --- user-defined ops: equal exactly when same class and parameters ----------------------------
class Scale(sg.Op):
    """``x * factor``, a user's op with one parameter."""

    __props__ = ("factor",)

    def __init__(self, factor: float):
        self.factor = factor

    def output_types(self, x):
        return [x]

    def perform(self, x):
        return x * self.factor

    def grad(self, node, output_grads, needed):
        return [output_grads[0] * self.factor]


class OtherScale(Scale):
    """The same parameters in another class: another op."""


def test_user_ops_with_equal_parameters_merge_and_others_do_not():
    x = sg.vector("x")
    outputs = [Scale(2.0)(x), Scale(2.0)(x), Scale(3.0)(x), OtherScale(2.0)(x)]
    f = sg.function([x], outputs)
    assert op_names(f).count("scale") == 2 and op_names(f).count("other_scale") == 1
    results = f(np.array([1.0, 2.0]))
    np.testing.assert_allclose(results, [[2, 4], [2, 4], [3, 6], [2, 4]])
    assert Scale(2.0) == Scale(2.0) and hash(Scale(2.0)) == hash(Scale(2.0))
    assert Scale(2.0) != Scale(3.0) and Scale(2.0) != OtherScale(2.0)


def test_a_user_op_differentiates_and_runs_on_both_backends():
    sg.verify_grad(lambda x: Scale(1.5)(x).sum(), [np.random.default_rng(0).normal(size=4)])
    x = sg.vector("x")
    for backend in ("numpy", "python"):
        np.testing.assert_allclose(sg.function([x], Scale(4.0)(x), backend=backend)([1.0]), [4.0])


def _sine_rule(x, z, g):
    return g * sg.cos(x)


def _leaky_relu(x, out=None):
    return np.maximum(x, 0.1 * x, out=out)


def _leaky_rule(x, z, g):
    return g * sg.where(sg.gt(x, 0), 1.0, 0.1)


def test_an_elementwise_op_named_like_a_built_in_is_never_merged_with_it():
    x = sg.vector("x")
    fake_exp = Elemwise("exp", np.sin, [_sine_rule])
    leaky = Elemwise("relu", _leaky_relu, [_leaky_rule], dtype_rule=sg.nn.activations.same_dtype_rule)
    f = sg.function([x], [sg.exp(x), fake_exp(x), sg.nn.relu(x), leaky(x)])
    value = np.array([-1.0, 0.5])
    exp, sine, relu, leaky_relu = f(value)
    np.testing.assert_allclose(exp, np.exp(value))
    np.testing.assert_allclose(sine, np.sin(value))
    np.testing.assert_allclose(relu, [0.0, 0.5])
    np.testing.assert_allclose(leaky_relu, [-0.1, 0.5])
    assert fake_exp != sg.exp and leaky != sg.nn.relu


def test_rewrites_match_op_objects_not_names():
    x = sg.vector("x")
    # Named "mul", computing an addition: "x * 1 is x" must not apply to it.
    adding = Elemwise("mul", np.add, [None, None])
    negating = Elemwise("neg", np.positive, [None])
    f = sg.function([x], [adding(x, 1.0), negating(negating(x))])
    added, twice = f(np.array([1.0, 2.0]))
    np.testing.assert_allclose(added, [2.0, 3.0])
    np.testing.assert_allclose(twice, [1.0, 2.0])
    assert op_names(f).count("mul") == 1 and op_names(f).count("neg") == 2


def test_elementwise_ops_with_the_same_computation_are_equal():
    same = Elemwise("exp", np.exp, [sg.exp.grads[0]])
    assert same == sg.exp
    assert Elemwise("exp", np.exp, [_sine_rule]) != sg.exp


# --- graphs are plain data -------------------------------------------------------------------------
def _model():
    x = sg.matrix("x")
    W = sg.shared(np.arange(6.0).reshape(3, 2), name="W")
    hidden = sg.nn.dropout(sg.tanh(x @ W), keep_prob=0.8, rng=sg.RandomStreams(5))
    return x, W, sg.nn.softmax(hidden).sum()


@pytest.mark.parametrize("duplicate", [copy.deepcopy, lambda obj: pickle.loads(pickle.dumps(obj))])
def test_graphs_deep_copy_and_pickle_and_compute_the_same(duplicate):
    x, W, cost = _model()
    copied = duplicate([x, cost])
    value = np.ones((2, 3))
    expected = sg.function([x], cost, phase="predict")(value)
    np.testing.assert_allclose(sg.function([copied[0]], copied[1], phase="predict")(value), expected)
    copied_W = next(
        v for v in sg.graph.traversal.roots([copied[1]]) if isinstance(v, sg.SharedVariable) and v.name == "W"
    )
    assert copied_W is not W
    np.testing.assert_array_equal(copied_W.get_value(), W.get_value())
    gradient = sg.grad(copied[1], copied_W)
    assert gradient.eval({copied[0]: value}, phase="predict").shape == (3, 2)


def test_types_and_ops_keep_their_identity_through_pickle():
    t = sg.TensorType("float32", (None, 3))
    assert pickle.loads(pickle.dumps(t)) is t and copy.deepcopy(t) is t
    assert pickle.loads(pickle.dumps(sg.exp)) == sg.exp
    assert pickle.loads(pickle.dumps(Scale(2.0))) == Scale(2.0)


# --- subgraphs as ops --------------------------------------------------------------------------------
def _dropout_subgraph():
    x, y = sg.vector("x"), sg.vector("y")
    rng = sg.RandomStreams(1)
    return sg.OpFromGraph([x, y], [sg.nn.dropout(x, keep_prob=0.5, rng=rng) * y], name="drop_mul")


def test_op_from_graph_computes_like_its_graph_and_is_one_node():
    x, y = sg.vector("x"), sg.vector("y")
    scaled_sum = sg.OpFromGraph([x, y], [x * 2 + y, x - y], name="scaled_sum")
    a, b = sg.vector("a"), sg.vector("b")
    first, second = scaled_sum(a, b)
    assert first.owner is second.owner and first.owner.op.name == "scaled_sum"
    again = scaled_sum(b, a)[0]  # used twice
    f = sg.function([a, b], [first, second, again])
    np.testing.assert_allclose(f([1.0, 2.0], [10.0, 20.0]), [[12, 24], [-9, -18], [21, 42]])
    text = sg.debugprint([first, again], file=io.StringIO())
    assert text.count("scaled_sum") == 2 and "mul" not in text


def test_op_from_graph_gradient_is_an_op_from_graph_and_checks_numerically():
    x, y = sg.vector("x"), sg.vector("y")
    op = sg.OpFromGraph([x, y], [sg.tanh(x) * y], name="tanh_mul")
    a, b = sg.vector("a"), sg.vector("b")
    gradient = sg.grad(op(a, b).sum(), a)
    assert any(isinstance(node.op, sg.OpFromGraph) for node in sg.graph.traversal.postorder([gradient]))
    rng = np.random.default_rng(0)
    sg.verify_grad(lambda a, b: op(a, b).sum(), [rng.normal(size=3), rng.normal(size=3)])
    # and to second order
    sg.verify_grad(lambda a, b: sg.grad(op(a, b).sum(), a).sum(), [rng.normal(size=3), rng.normal(size=3)])


def test_dropout_inside_a_subgraph_follows_the_phase_and_its_gradient_uses_the_same_mask():
    op = _dropout_subgraph()
    a, b = sg.vector("a"), sg.vector("b")
    z = op(a, b)
    gradient = sg.grad((z**2).sum(), a)
    with pytest.raises(sg.errors.PhaseError, match="dropout"):
        sg.function([a, b], z)
    train = sg.function([a, b], [z, gradient], phase="train")
    predict = sg.function([a, b], [z, gradient], phase="predict")
    A, B = np.arange(1.0, 65.0), np.full(64, 2.0)
    drawn, grad_a = train(A, B)
    mask = (drawn != 0) * 2.0  # inverted dropout, keep 0.5
    assert 10 < (drawn != 0).sum() < 54
    np.testing.assert_allclose(drawn, mask * A * B)
    np.testing.assert_allclose(grad_a, 2 * drawn * mask * B)  # the same mask in both
    again, _ = train(A, B)
    assert not np.array_equal(again, drawn)  # the generator inside advances
    predicted, predicted_grad = predict(A, B)
    np.testing.assert_allclose(predicted, A * B)
    np.testing.assert_allclose(predicted_grad, 2 * A * B * B)
    assert not any(node.op.stochastic for node in predict.nodes)


def test_subgraph_inside_a_subgraph_is_inlined_with_its_scope():
    x = sg.vector("x")
    inner = sg.OpFromGraph([x], [sg.exp(x)], name="inner")
    y = sg.vector("y")
    outer = sg.OpFromGraph([y], [inner(y) + 1], name="outer")
    a = sg.vector("a")
    f = sg.function([a], outer(a))
    np.testing.assert_allclose(f([0.0, 1.0]), np.exp([0.0, 1.0]) + 1)
    (exp_node,) = [node for node in f.nodes if node.op.name == "exp"]
    assert [scope.name for scope in exp_node.scope.path()] == ["outer", "inner"]


# --- Jacobians on inner graphs --------------------------------------------------------------------------
def test_jacobian_of_a_jacobian():
    w = sg.vector("w")
    expression = (w**3).sum() * w
    second = sg.jacobian(sg.jacobian(expression, w), w)
    value = np.array([1.0, 2.0, 0.5])
    result = sg.function([w], second)(value)
    assert result.shape == (3, 3, 3)
    # d/dw_k of J[i, j] for J = d(s * w_i)/dw_j, s = sum(w**3)
    s = (value**3).sum()
    expected = np.zeros((3, 3, 3))
    for i in range(3):
        for j in range(3):
            for k in range(3):
                expected[i, j, k] = (
                    (i == j) * 3 * value[k] ** 2 + (i == k) * 3 * value[j] ** 2 + (j == k) * 6 * value[j] * value[i]
                )
    np.testing.assert_allclose(result, expected)
    assert s > 0
    sg.verify_grad(lambda w: sg.jacobian((w**3).sum() * w, w).sum(), [value])


def test_random_draws_in_a_jacobian_change_between_calls():
    x = sg.vector("x")
    dropped = sg.nn.dropout(x, keep_prob=0.5, rng=sg.RandomStreams(11))
    f = sg.function([x], sg.jacobian(dropped * 2, x), phase="train")
    diagonals = {tuple(np.diag(f(np.ones(30)))) for _ in range(20)}
    assert len(diagonals) > 15


def test_jacobian_of_an_empty_expression_has_the_right_shape():
    x = sg.vector("x")
    empty = x[:0] * 2
    assert sg.function([x], sg.jacobian(empty, x))(np.ones(3)).shape == (0, 3)


def test_jacobian_of_a_list_gives_a_list():
    x, y = sg.vector("x"), sg.vector("y")
    jx, jy = sg.jacobian(x * y, [x, y])
    f = sg.function([x, y], [jx, jy])
    a, b = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    first, second = f(a, b)
    np.testing.assert_allclose(first, np.diag(b))
    np.testing.assert_allclose(second, np.diag(a))


# --- backends ----------------------------------------------------------------------------------------------
def test_unknown_backend_names_the_choices():
    x = sg.vector("x")
    with pytest.raises(ValueError, match=r"numpy.*python"):
        sg.function([x], x, backend="jax")


def test_debug_mode_runs_on_the_reference_backend():
    x = sg.vector("x")
    assert sg.function([x], x * 2, mode="debug").backend.name == "python"
    assert sg.function([x], x * 2).backend.name == "numpy"


def test_a_rule_tracking_ops_is_tried_on_equal_ops_only_and_one_tracking_classes_on_their_instances():

    from symgraph.ops.elemwise import add, mul
    from symgraph.ops.shape import DimShuffle
    from symgraph.rewrite.walk import RulesByOp, tracks

    @tracks(add)
    def on_add(node):
        return None

    @tracks(DimShuffle)
    def on_dimshuffles(node):
        return None

    def everywhere(node):
        return None

    rules = RulesByOp([on_add, on_dimshuffles, everywhere])
    assert rules(copy.deepcopy(add)) == (on_add, everywhere)  # an equal op, another object
    assert rules(mul) == (everywhere,)
    assert rules(DimShuffle(2, (1, 0))) == (on_dimshuffles, everywhere)
