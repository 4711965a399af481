"""sg.ifelse: only the chosen branch is computed, the gradient flows through it only, and it
works inside loops."""

from __future__ import annotations

import numpy as np
import pytest

import symgraph as sg
from symgraph.ops.ifelse import IfElse


def test_only_the_chosen_branch_is_computed():
    x, i = sg.vector("x"), sg.iscalar("i")
    # x[i] fails when i is out of range: the branch holding it must not run then.
    y = sg.ifelse(i < x.shape[0], x[i] * 2, x.sum())
    for backend in ("numpy", "python"):
        f = sg.function([x, i], y, backend=backend)
        np.testing.assert_allclose(f([1.0, 2.0, 3.0], 1), 4.0)
        np.testing.assert_allclose(f([1.0, 2.0, 3.0], 7), 6.0)
    with np.errstate(all="raise"):
        g = sg.function([x], sg.ifelse(x.min() > 0, sg.log(x), -x))
        np.testing.assert_allclose(g([-1.0, 0.0]), [1.0, -0.0])
        np.testing.assert_allclose(g([1.0, np.e]), [0.0, 1.0])


def test_what_the_condition_or_the_other_branch_needs_is_computed_outside():
    x = sg.vector("x")
    shared_part = sg.exp(x)
    y = sg.ifelse(shared_part.sum() > 3, shared_part * 2, shared_part + 1)
    (node,) = [node for node in sg.graph.traversal.postorder([y]) if isinstance(node.op, IfElse)]
    for branch in node.op.inner_graphs:
        assert "exp" not in [inner.op.name for inner in branch.nodes]
    np.testing.assert_allclose(y.eval({x: [0.0, 2.0]}), np.exp([0.0, 2.0]) * 2)
    np.testing.assert_allclose(y.eval({x: [0.0, 0.0]}), [2.0, 2.0])


def test_the_gradient_flows_through_the_chosen_branch_only():
    a, b, c = sg.scalar("a"), sg.scalar("b"), sg.scalar("c")
    y = sg.ifelse(c > 0, a**2, b**3)
    f = sg.function([a, b, c], sg.grad(y, [a, b, c], disconnected_inputs="ignore"))
    np.testing.assert_allclose(f(2.0, 3.0, 1.0), [4.0, 0.0, 0.0])
    np.testing.assert_allclose(f(2.0, 3.0, -1.0), [0.0, 27.0, 0.0])
    for condition in (1.0, -1.0):
        sg.verify_grad(
            lambda u, v: sg.ifelse(sg.constant(condition) > 0, sg.tanh(u) * v, u * v**2).sum(),
            [np.array([0.3, -0.4]), np.array([1.5, 0.5])],
        )
    # and to second order
    g = sg.grad(sg.ifelse(c > 0, a**3, b), a)
    np.testing.assert_allclose(sg.function([a, b, c], sg.grad(g, a))(2.0, 1.0, 1.0), 12.0)


def test_branches_as_lists_and_their_type_rules():
    x, y = sg.vector("x"), sg.matrix("y")
    first, second = sg.ifelse(x.sum() > 0, [x, y], [-x, y * 2])
    f = sg.function([x, y], [first, second])
    a, b = f([1.0], np.ones((2, 2)))
    np.testing.assert_allclose(a, [1.0])
    np.testing.assert_allclose(b, np.ones((2, 2)))
    a, b = f([-1.0], np.ones((2, 2)))
    np.testing.assert_allclose(a, [1.0])
    np.testing.assert_allclose(b, 2 * np.ones((2, 2)))
    with pytest.raises(sg.errors.DTypeError, match=r"output 0 .*float64 with 1 dimension.*float64 with 2"):
        sg.ifelse(x.sum() > 0, x, y)
    with pytest.raises(sg.errors.DTypeError, match="int64"):
        sg.ifelse(x.sum() > 0, x, x.astype("int64"))
    with pytest.raises(ValueError, match="give 2 and 1 outputs"):
        sg.ifelse(x.sum() > 0, [x, x], [x])
    with pytest.raises(sg.errors.ShapeError, match="condition must be a scalar"):
        sg.ifelse(x > 0, x, x)


def test_results_never_alias_the_inputs():
    x = sg.vector("x")
    f = sg.function([x], sg.ifelse(x.sum() > 0, x, x * 2))
    value = np.array([1.0, 2.0])
    result = f(value)
    result[0] = 99.0
    assert value[0] == 1.0


def test_ifelse_inside_a_loop_stops_a_decoder():
    # Counts down from x; once 0 is reached the state stays there (the else branch is skipped).
    start = sg.iscalar("start")
    counts, _ = sg.scan(
        lambda count: sg.ifelse(count > 0, count - 1, count),
        outputs_info=start,
        n_steps=6,
    )
    f = sg.function([start], counts)
    np.testing.assert_array_equal(f(3), [2, 1, 0, 0, 0, 0])
    x = sg.vector("x")
    rectified, _ = sg.scan(
        lambda x_t, total: sg.ifelse(x_t > 0, total + sg.log(x_t), total), sequences=x, outputs_info=sg.constant(0.0)
    )
    with np.errstate(all="raise"):
        np.testing.assert_allclose(sg.function([x], rectified)([1.0, -2.0, np.e]), [0.0, 0.0, 1.0])
    sg.verify_grad(
        lambda x: sg.scan(
            lambda x_t, total: sg.ifelse(x_t > 0, total * x_t, total + x_t), sequences=x, outputs_info=sg.constant(1.0)
        )[0].sum(),
        [np.array([0.5, -1.0, 2.0, 1.5])],
    )


def test_random_draws_stay_outside_branches_so_one_sample_is_one_sample():
    stream = sg.RandomStreams(2)
    noise = stream.normal((4,))
    c = sg.scalar("c")
    chosen = sg.ifelse(c > 0, noise * 1.0, noise * 0.0)
    f = sg.function([c], [chosen, noise])
    picked, drawn = f(1.0)
    np.testing.assert_array_equal(picked, drawn)
