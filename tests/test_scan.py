"""sg.scan: forward results against plain numpy loops, gradients against finite differences,
randomness and phases inside loops, clear errors, and the loop compiled once."""

from __future__ import annotations

import copy
import io
import pickle

import numpy as np
import pytest

import symgraph as sg
from symgraph.ops.scan import Scan

rng = np.random.default_rng(1234)


def scan_nodes(function) -> list:
    return [node for node in function.nodes if isinstance(node.op, Scan)]


# --- forward: against numpy loops ----------------------------------------------------------------
def numpy_rnn(X, H0, W, U, b):
    h, out = H0, []
    for x_t in X:
        h = np.tanh(x_t @ W + h @ U + b)
        out.append(h)
    return np.array(out)


def test_rnn_with_listed_and_implicit_weights_matches_a_numpy_loop():
    X, H0 = rng.normal(size=(6, 4, 3)), rng.normal(size=(4, 5))
    W, U, b = rng.normal(size=(3, 5)), rng.normal(size=(5, 5)) * 0.5, rng.normal(size=5)
    x, h0, w = sg.tensor3("x"), sg.matrix("h0"), sg.matrix("w")
    U_shared, b_shared = sg.shared(U, name="U"), sg.shared(b, name="b")
    # w is listed, U and b are used without being listed
    hs, updates = sg.scan(
        lambda x_t, h, w: sg.tanh(x_t @ w + h @ U_shared + b_shared), sequences=x, outputs_info=h0, non_sequences=w
    )
    assert updates == {}
    expected = numpy_rnn(X, H0, W, U, b)
    for backend in ("numpy", "python"):
        np.testing.assert_allclose(sg.function([x, h0, w], hs, backend=backend)(X, H0, W), expected, rtol=1e-12)


def test_outputs_fed_back_or_not_come_back_in_fns_order():
    x = sg.vector("x")

    def step(x_t, total):
        return x_t * 2, total + x_t, x_t > 1.0

    (doubled, totals, large), _ = sg.scan(step, sequences=x, outputs_info=[None, sg.constant(10.0), None])
    values = np.array([0.5, 1.5, 3.0])
    a, b, c = sg.function([x], [doubled, totals, large])(values)
    np.testing.assert_allclose(a, values * 2)
    np.testing.assert_allclose(b, 10 + np.cumsum(values))
    np.testing.assert_array_equal(c, values > 1)
    assert c.dtype == bool


def test_sequence_taps_in_the_order_given_and_output_taps():
    values = rng.normal(size=9)
    initial = np.array([0.3, -0.2, 0.5])
    x = sg.vector("x")

    def step(x_tp2, x_tm1, x_t, y_tm3, y_tm1):
        return x_tp2 - x_tm1 + 0.5 * x_t + 0.25 * y_tm3 + 0.5 * y_tm1

    ys, _ = sg.scan(
        step,
        sequences=dict(input=x, taps=[2, -1, 0]),
        outputs_info=dict(initial=sg.constant(initial), taps=[-3, -1]),
    )
    history = list(initial)
    for t in range(1, len(values) - 2):  # tap -1 needs row t-1, tap 2 row t+2
        history.append(values[t + 2] - values[t - 1] + 0.5 * values[t] + 0.25 * history[-3] + 0.5 * history[-1])
    result = sg.function([x], ys)(values)
    np.testing.assert_allclose(result, history[3:])
    assert result.shape == (len(values) - 3,)


def test_an_initial_value_longer_than_its_taps_uses_its_first_rows():
    ys, _ = sg.scan(
        lambda y2, y1: y2 + y1,
        outputs_info=dict(initial=sg.constant(np.array([1.0, 1.0, 99.0])), taps=[-2, -1]),
        n_steps=5,
    )
    np.testing.assert_allclose(ys.eval(), [2.0, 3.0, 5.0, 8.0, 13.0])


def test_go_backwards_reads_the_sequences_from_their_end():
    values = rng.normal(size=7)
    x = sg.vector("x")
    ys, _ = sg.scan(
        lambda x_t, x_tm1, y: 0.5 * y + x_t * x_tm1,
        sequences=dict(input=x, taps=[0, -1]),
        outputs_info=sg.constant(0.0),
        go_backwards=True,
    )
    expected, y = [], 0.0
    for t in range(len(values) - 1, 0, -1):  # the taps run backwards too: rows t and t - 1
        y = 0.5 * y + values[t] * values[t - 1]
        expected.append(y)
    np.testing.assert_allclose(sg.function([x], ys)(values), expected)


def test_symbolic_steps_take_the_first_rows_and_zero_steps_give_empty_outputs():
    x, n = sg.matrix("x", shape=(None, 3)), sg.iscalar("n")
    sums, _ = sg.scan(lambda row, acc: acc + row, sequences=x, outputs_info=sg.zeros((3,)), n_steps=n)
    squares, _ = sg.scan(lambda row: row**2, sequences=x, n_steps=n)
    values = rng.normal(size=(5, 3))
    for backend in ("numpy", "python"):
        f = sg.function([x, n], [sums, squares], backend=backend)
        first, second = f(values, 3)
        np.testing.assert_allclose(first, np.cumsum(values[:3], axis=0))
        np.testing.assert_allclose(second, values[:3] ** 2)
        empty_sums, empty_squares = f(values, 0)
        assert empty_sums.shape == (0, 3) and empty_squares.shape == (0, 3)


def test_without_n_steps_the_shortest_sequence_sets_the_length():
    a, b = sg.vector("a"), sg.vector("b")
    products, _ = sg.scan(lambda u, v: u * v, sequences=[a, b])
    np.testing.assert_allclose(sg.function([a, b], products)([1.0, 2.0, 3.0, 4.0], [5.0, 6.0]), [5.0, 12.0])


def test_a_single_output_is_bare_and_outputs_can_be_a_tuple():
    x = sg.vector("x")
    single, _ = sg.scan(lambda v: v + 1, sequences=x)
    assert isinstance(single, sg.Variable)
    pair, _ = sg.scan(lambda v: (v + 1, v - 1), sequences=x)
    assert isinstance(pair, list) and len(pair) == 2


def test_updates_of_shared_variables_inside_the_step_carry_from_step_to_step():
    counter = sg.shared(np.float64(10.0), name="counter")
    x = sg.vector("x")
    scaled, updates = sg.scan(lambda x_t: (x_t * counter, {counter: counter + 1}), sequences=x)
    assert list(updates) == [counter]
    f = sg.function([x], scaled, updates=updates)
    np.testing.assert_allclose(f([1.0, 1.0, 2.0]), [10.0, 11.0, 24.0])
    assert counter.get_value() == 13.0
    f([])  # no steps: the shared variable keeps its value
    assert counter.get_value() == 13.0
    # Without the updates given to sg.function, nothing changes.
    sg.function([x], scaled)([1.0, 1.0])
    assert counter.get_value() == 13.0


def test_a_step_returning_only_updates():
    total = sg.shared(np.zeros(2), name="total")
    x = sg.matrix("x")
    outputs, updates = sg.scan(lambda row: {total: total + row}, sequences=x)
    assert outputs == []
    sg.function([x], updates=updates)(np.ones((3, 2)))
    np.testing.assert_allclose(total.get_value(), [3.0, 3.0])


def test_what_the_step_computes_from_its_context_alone_is_computed_once():
    W = sg.shared(rng.normal(size=(3, 3)), name="W")
    x = sg.matrix("x")
    ys, _ = sg.scan(lambda row: row @ (W * 2).T, sequences=x)
    f = sg.function([x], ys)
    (node,) = scan_nodes(f)
    inner_ops = [inner.op.name for inner in node.op.fgraph.nodes]
    assert "mul" not in inner_ops and "transpose" not in inner_ops
    values = rng.normal(size=(4, 3))
    np.testing.assert_allclose(f(values), values @ (W.get_value() * 2).T)


def test_scan_inside_scan_matches_nested_loops():
    x = sg.tensor3("x")  # (outer, inner, features)
    W = sg.shared(rng.normal(size=(2, 2)) * 0.5, name="W")

    def outer_step(block, h):
        inner, _ = sg.scan(lambda row, g: sg.tanh(row + g @ W), sequences=block, outputs_info=h)
        return inner[-1]

    hs, _ = sg.scan(outer_step, sequences=x, outputs_info=sg.zeros((2,)))
    values = rng.normal(size=(3, 4, 2))
    h, expected = np.zeros(2), []
    for block in values:
        for row in block:
            h = np.tanh(row + h @ W.get_value())
        expected.append(h)
    np.testing.assert_allclose(sg.function([x], hs)(values), expected, rtol=1e-12)
    sg.verify_grad(lambda x: sg.scan(outer_step, sequences=x, outputs_info=sg.zeros((2,)))[0].sum(), [values])


def numpy_lstm(X, H0, Wx, Wh, b):
    H = H0.shape[1]
    h, c, out = H0, np.zeros_like(H0), []
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for x_t in X:
        a = x_t @ Wx + h @ Wh + b
        i, f, o, g = sigmoid(a[:, :H]), sigmoid(a[:, H : 2 * H]), sigmoid(a[:, 2 * H : 3 * H]), np.tanh(a[:, 3 * H :])
        c = f * c + i * g
        h = o * np.tanh(c)
        out.append(h)
    return np.array(out)


def lstm(x, h0, Wx, Wh, b, **options):
    H = 4

    def step(x_t, h, c):
        a = x_t @ Wx + h @ Wh + b
        i, f, o = (sg.nn.sigmoid(a[:, k * H : (k + 1) * H]) for k in range(3))
        c_new = f * c + i * sg.tanh(a[:, 3 * H :])
        return o * sg.tanh(c_new), c_new

    (hs, _), _ = sg.scan(step, sequences=x, outputs_info=[h0, sg.zeros_like(h0)], **options)
    return hs


def test_lstm_matches_a_numpy_lstm_and_its_gradient_checks():
    X, H0 = rng.normal(size=(5, 2, 3)), rng.normal(size=(2, 4))
    Wx, Wh, b = rng.normal(size=(3, 16)), rng.normal(size=(4, 16)), rng.normal(size=16)
    x, h0, wx, wh, bias = sg.tensor3("x"), sg.matrix("h0"), sg.matrix("wx"), sg.matrix("wh"), sg.vector("b")
    f = sg.function([x, h0, wx, wh, bias], lstm(x, h0, wx, wh, bias))
    np.testing.assert_allclose(f(X, H0, Wx, Wh, b), numpy_lstm(X, H0, Wx, Wh, b), rtol=1e-10)
    sg.verify_grad(lambda *args: (lstm(*args) ** 2).sum(), [X, H0, Wx, Wh, b])


# --- gradients ---------------------------------------------------------------------------------------
def rnn(x, h0, W, **options):
    hs, _ = sg.scan(lambda x_t, h: sg.tanh(x_t + h @ W), sequences=x, outputs_info=h0, **options)
    return hs


def test_gradients_with_respect_to_sequences_initial_states_and_non_sequences():
    point = [rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=(3, 3)) * 0.5]
    sg.verify_grad(lambda x, h0, W: (rnn(x, h0, W) ** 2).sum(), point)
    sg.verify_grad(lambda x, h0, W: rnn(x, h0, W)[-1].sum(), point)  # the last state only
    sg.verify_grad(lambda x, h0, W: rnn(x, h0, W, go_backwards=True)[::2].sum(), point)


def test_gradients_through_taps_of_sequences_and_outputs():
    def taps(x, y0, w):
        ys, _ = sg.scan(
            lambda x_tm1, x_t, x_tp1, y_tm2, y_tm1, w: sg.tanh(x_tm1 * x_t + w * x_tp1 + y_tm2 * y_tm1),
            sequences=dict(input=x, taps=[-1, 0, 1]),
            outputs_info=dict(initial=y0, taps=[-2, -1]),
            non_sequences=w,
        )
        return (ys**2).sum()

    sg.verify_grad(taps, [rng.normal(size=8), rng.normal(size=2), np.array(0.7)])


def test_gradient_with_respect_to_a_shared_weight_used_inside_without_being_listed():
    W = sg.shared(rng.normal(size=(3, 3)) * 0.5, name="W")
    x = sg.matrix("x")
    cost = (rnn(x, sg.zeros((3,)), W) ** 2).sum()
    gradient = sg.function([x], sg.grad(cost, W))
    evaluate = sg.function([x], cost)
    values = rng.normal(size=(4, 3))
    numeric, original, eps = np.zeros((3, 3)), W.get_value(), 1e-6
    for index in np.ndindex(3, 3):
        for sign in (1, -1):
            shifted = original.copy()
            shifted[index] += sign * eps
            W.set_value(shifted)
            numeric[index] += sign * evaluate(values) / (2 * eps)
    W.set_value(original)
    np.testing.assert_allclose(gradient(values), numeric, rtol=1e-6, atol=1e-8)


def test_hessian_vector_products_through_a_short_rnn():
    direction = rng.normal(size=(2, 2))

    def hessian_vector(x, h0, W):
        g = sg.grad((rnn(x, h0, W) ** 2).sum(), W)
        return (g * direction).sum()

    sg.verify_grad(hessian_vector, [rng.normal(size=(4, 2)), rng.normal(size=2), rng.normal(size=(2, 2)) * 0.5])
    x, h0, W = sg.matrix("x"), sg.vector("h0"), sg.matrix("W")
    hessian = sg.function([x, h0, W], sg.hessian((rnn(x, h0, W) ** 2).sum(), W))
    assert hessian(rng.normal(size=(3, 2)), rng.normal(size=2), rng.normal(size=(2, 2))).shape == (2, 2, 2, 2)


def test_truncated_gradient_equals_the_gradient_of_the_last_steps_with_the_state_before_held_constant():
    X, H0, Wv = rng.normal(size=(6, 3)), rng.normal(size=3), rng.normal(size=(3, 3)) * 0.5
    x, h0, W = sg.matrix("x"), sg.vector("h0"), sg.matrix("W")
    for k in (0, 2, 6, 9):
        truncated = sg.grad((rnn(x, h0, W, truncate_gradient=k) ** 2).sum(), [x, h0, W])
        got = sg.function([x, h0, W], truncated)(X, H0, Wv)
        # The same loop unrolled, its backward pass stopped at the state before the last k steps.
        h, cost, held = h0, 0.0, []
        for t in range(6):
            if t == 6 - k and t > 0:
                held = [h]
            h = sg.tanh(x[t] + h @ W)
            if t >= 6 - k:
                cost = cost + (h**2).sum()
        if k == 0:
            expected = [np.zeros_like(X), np.zeros_like(H0), np.zeros_like(Wv)]
        else:
            unrolled = sg.grad(cost, [x, h0, W], consider_constant=held, disconnected_inputs="ignore")
            expected = sg.function([x, h0, W], unrolled)(X, H0, Wv)
        for value, want in zip(got, expected):
            np.testing.assert_allclose(value, want, atol=1e-12)
        if k == 2:
            assert not np.any(got[1]) and not np.any(got[0][:4]) and np.all(got[0][4:] != 0)


# --- randomness and phases inside loops --------------------------------------------------------------
def dropout_loop(x, w, seed=3):
    stream = sg.RandomStreams(seed)
    ys, _ = sg.scan(lambda x_t, w: sg.nn.dropout(x_t, rate=0.5, rng=stream) * w, sequences=x, non_sequences=w)
    return ys


def test_dropout_in_a_loop_needs_a_phase_and_names_it():
    x, w = sg.matrix("x"), sg.scalar("w")
    with pytest.raises(sg.errors.PhaseError, match=r"scan, built at .*holding dropout_mask, built at"):
        sg.function([x, w], dropout_loop(x, w))
    with pytest.raises(sg.errors.PhaseError):
        dropout_loop(x, w).eval({x: np.ones((2, 2)), w: 1.0})


def test_dropout_in_a_loop_draws_a_fresh_mask_each_step_and_none_when_predicting():
    x, w = sg.matrix("x"), sg.scalar("w")
    ys = dropout_loop(x, w)
    gradient = sg.grad(ys.sum(), w)
    train = sg.function([x, w], [ys, gradient], phase="train")
    predict = sg.function([x, w], [ys, gradient], phase="predict")
    values = np.ones((8, 200))
    drawn, dw = train(values, 3.0)
    masks = drawn != 0
    assert len({tuple(row) for row in masks}) == 8  # a new mask at every step
    assert 0.35 < masks.mean() < 0.65
    np.testing.assert_allclose(drawn[masks], 6.0)  # kept: x / keep_prob * w
    # The gradient reads the very masks of the forward steps: d(sum y)/dw = sum(mask * x / keep)
    np.testing.assert_allclose(dw, drawn.sum() / 3.0)
    again, _ = train(values, 3.0)
    assert not np.array_equal(again != 0, masks)  # the generator advanced, with no update written
    predicted, predicted_dw = predict(values, 3.0)
    np.testing.assert_allclose(predicted, values * 3.0)
    np.testing.assert_allclose(predicted_dw, values.sum())
    assert not any(node.op.stochastic for node in predict.nodes)
    for node in scan_nodes(predict):
        assert not any(inner.op.stochastic for inner in node.op.fgraph.nodes)


def test_random_draws_in_a_loop_are_fresh_each_step_and_across_calls_and_eval_changes_nothing():
    stream = sg.RandomStreams(7)
    n = sg.iscalar("n")
    draws, _ = sg.scan(lambda: stream.normal((3,)), n_steps=n)
    outside = stream.uniform((3,))  # drawn once per call, then used by every step
    shifted, _ = sg.scan(lambda: outside + 1.0, n_steps=n)
    f = sg.function([n], [draws, shifted])
    first, constant_rows = f(4)
    assert len({tuple(row) for row in first}) == 4
    assert len({tuple(row) for row in constant_rows}) == 1
    evaluated = [draws.eval({n: 4}) for _ in range(2)]
    np.testing.assert_array_equal(evaluated[0], evaluated[1])  # .eval() changes no state
    second, _ = f(4)
    assert not np.array_equal(first, second)
    stream.seed(7)
    np.testing.assert_array_equal(f(4)[0], first)  # reseeding repeats the draws bit for bit
    np.testing.assert_array_equal(draws.eval({n: 4}), f(4)[0])


def test_dropout_inside_a_loop_checks_its_gradient_with_one_fixed_mask():
    stream = sg.RandomStreams(5)
    W = rng.normal(size=(3, 3)) * 0.5

    def cost(x, h0):
        hs, _ = sg.scan(
            lambda x_t, h: sg.tanh(sg.nn.dropout(x_t, keep_prob=0.7, rng=stream) + h @ sg.constant(W)),
            sequences=x,
            outputs_info=h0,
        )
        return (hs**2).sum()

    sg.verify_grad(cost, [rng.normal(size=(4, 3)), rng.normal(size=3)], phase="train")


# --- errors ---------------------------------------------------------------------------------------------
def test_a_fed_back_output_of_another_dtype_or_rank_is_refused_naming_scan_output_and_types():
    x = sg.vector("x")
    with pytest.raises(sg.errors.DTypeError, match=r"running: output 0 .*float64 with 0 dimension.*float32 with 0"):
        sg.scan(lambda x_t, h: (h + x_t).astype("float32"), sequences=x, outputs_info=sg.constant(0.0), name="running")
    with pytest.raises(TypeError, match=r"scan: output 1 .*initial value, float64 with 1 dimension.*2 dimension"):
        sg.scan(
            lambda x_t, a, b: [a + x_t, sg.outer(b, b)],
            sequences=x,
            outputs_info=[sg.constant(0.0), sg.zeros((2,))],
        )
    with pytest.raises(sg.errors.ShapeError, match="returns shape"):
        sg.scan(lambda h: sg.concatenate([h, h]), outputs_info=sg.zeros((2,)), n_steps=3)


@pytest.mark.parametrize(
    ("sequences", "outputs_info", "message"),
    [
        (dict(input=np.ones(4), taps=[0, 0]), None, "repeat a tap"),
        (dict(input=np.ones(4), taps=[]), None, "non-empty list"),
        (dict(input=np.ones(4), taps=[0.5]), None, "must be ints"),
        (dict(inputs=np.ones(4)), None, "'input'"),
        (np.ones(4), [dict(initial=np.zeros(2), taps=[-1, 0])], "must be negative"),
        (np.ones(4), [dict(taps=[-1])], "no initial value"),
        (np.ones(4), [dict(initial=np.zeros(()), taps=[-2, -1])], "needs a first axis"),
    ],
)
def test_wrong_taps_are_refused_when_building(sequences, outputs_info, message):
    with pytest.raises(ValueError, match=message):
        sg.scan(lambda *args: args[0], sequences=sequences, outputs_info=outputs_info)


def test_sequences_too_short_for_their_taps_are_refused_when_building_or_when_called():
    with pytest.raises(sg.errors.ShapeError, match=r"sequence 0 .* has 2 rows, but its taps \[-2, 1\] need 3"):
        sg.scan(lambda a, b: a + b, sequences=dict(input=sg.constant(np.ones(2)), taps=[-2, 1]))
    with pytest.raises(sg.errors.ShapeError, match=r"initial value of output 0 .* has 1 rows, but its taps"):
        sg.scan(lambda a, b: a + b, outputs_info=dict(initial=sg.constant(np.ones(1)), taps=[-2, -1]), n_steps=2)
    x, n = sg.vector("x"), sg.iscalar("n")
    f = sg.function([x], sg.scan(lambda a, b: a + b, sequences=dict(input=x, taps=[-2, 1]))[0])
    np.testing.assert_allclose(f(np.arange(5.0)), [3.0, 5.0])
    with pytest.raises(ValueError, match=r"scan: sequence 0 \(x\) has 2 rows, but its taps \[-2, 1\] need 3"):
        f(np.arange(2.0))
    g = sg.function([x, n], sg.scan(lambda a: a * 2, sequences=x, n_steps=n)[0])
    with pytest.raises(ValueError, match=r"has 2 rows, but n_steps and its taps \[0\] need at least 3"):
        g(np.arange(2.0), 3)
    with pytest.raises(ValueError, match="must not be negative, got -1"):
        g(np.arange(2.0), -1)


def test_wrong_arguments_are_refused_with_what_to_do():
    x = sg.vector("x")
    with pytest.raises(ValueError, match="n_steps must not be negative"):
        sg.scan(lambda h: h, outputs_info=sg.constant(0.0), n_steps=-2)
    with pytest.raises(ValueError, match="give sequences to loop over, or n_steps"):
        sg.scan(lambda h: h, outputs_info=sg.constant(0.0))
    with pytest.raises(ValueError, match=r"fn returned 2 output\(s\), but outputs_info describes 1"):
        sg.scan(lambda a: [a, a], sequences=x, outputs_info=[None])
    with pytest.raises(TypeError, match="integer scalar"):
        sg.scan(lambda a: a, sequences=x, n_steps=sg.scalar("n"))
    with pytest.raises(TypeError, match="must return its outputs"):
        sg.scan(lambda a: "nothing", sequences=x)
    with pytest.raises(ValueError, match="truncate_gradient"):
        sg.scan(lambda a: a, sequences=x, truncate_gradient=-3)


def test_an_error_inside_a_step_names_the_node_the_users_line_and_the_step():
    m = sg.matrix("m")
    f = sg.function([m], sg.scan(lambda row: sg.log(row)[1], sequences=m, name="logs")[0])
    with (
        np.errstate(all="raise"),
        pytest.raises(FloatingPointError, match=r"(?s)log, built at .*test_scan.py.*at step 1 of logs"),
    ):
        f(np.array([[1.0, 2.0], [1.0, -1.0]]))


def test_a_state_whose_shape_changes_is_refused_at_run_time():
    h0 = sg.matrix("h0")
    W = sg.matrix("W")
    ys, _ = sg.scan(lambda h, W: h @ W, outputs_info=h0, non_sequences=W, n_steps=2)
    f = sg.function([h0, W], ys)
    np.testing.assert_allclose(f(np.ones((2, 2)), np.eye(2)), np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match=r"scan: at step 0, the step function gave state 0 of shape \(2, 3\)"):
        f(np.ones((2, 2)), np.ones((2, 3)))


# --- compiled once; what the compiler does with loops ---------------------------------------------------
def test_the_loop_is_generated_once_and_calls_walk_no_graph(monkeypatch):
    from symgraph.backends.numpy import loop

    x = sg.vector("x")
    sums, _ = sg.scan(lambda x_t, total: total + x_t, sequences=x, outputs_info=sg.constant(0.0))
    f = sg.function([x], sums)

    def refuse(*args):
        raise AssertionError("a call compiled the loop again")

    monkeypatch.setattr(loop, "link_scan", refuse)
    monkeypatch.setattr(Scan, "loop", refuse)
    np.testing.assert_allclose(f(np.arange(4.0)), [0.0, 1.0, 3.0, 6.0])
    np.testing.assert_allclose(f(np.arange(3.0)), [0.0, 1.0, 3.0])


def test_the_generated_loop_writes_scalar_arithmetic_as_operators_into_preallocated_buffers():
    from symgraph.backends.numpy.loop import link_scan

    x = sg.vector("x")
    sums, _ = sg.scan(lambda x_t, total: total + x_t, sequences=x, outputs_info=sg.constant(0.0))
    (node,) = scan_nodes(sg.function([x], sums))
    source = link_scan(node.op).source
    body = source.split("for t in range(count):")[1].split("except")[0]
    assert "new_buffer" in source.split("for t")[0]  # allocated once, before the loop
    assert " + " in body and "(" not in body.replace("check_row(", "")  # no function call per step


def test_outputs_nobody_reads_are_not_computed():
    W = sg.shared(rng.normal(size=(3, 3)), name="W")
    x = sg.matrix("x")
    stream = sg.RandomStreams(0)
    hs = rnn(sg.nn.dropout(x, rate=0.2, rng=stream), sg.zeros((3,)), W)
    (node,) = [node for node in sg.graph.traversal.postorder([hs]) if isinstance(node.op, Scan)]
    assert node.op.n_stacked > 0  # residuals kept for a gradient
    f = sg.function([x], hs[-1], phase="predict")
    (compiled,) = scan_nodes(f)
    assert compiled.op.n_stacked == 0
    values = rng.normal(size=(4, 3))
    np.testing.assert_allclose(f(values), numpy_rnn(values, np.zeros(3), np.eye(3), W.get_value(), 0)[-1])


def test_the_gradient_of_a_weight_used_at_every_step_is_one_product_after_the_loop():
    W = sg.shared(rng.normal(size=(3, 3)) * 0.5, name="W")
    x = sg.tensor3("x")
    cost = (rnn(x, sg.zeros((2, 3)), W) ** 2).sum()
    f = sg.function([x], sg.grad(cost, W))
    sums = [form for node in scan_nodes(f) for _, form in node.op.sums]
    assert sums == ["dot"]
    reference = sg.function([x], sg.grad(cost, W), mode="fast_compile")
    values = rng.normal(size=(5, 2, 3))
    np.testing.assert_allclose(f(values), reference(values), rtol=1e-12)


def test_debugprint_shows_a_loop_as_one_named_node_holding_its_step_graph():
    x = sg.vector("x")
    ys, _ = sg.scan(lambda x_t, h: sg.tanh(x_t + h), sequences=x, outputs_info=sg.constant(0.0), name="accumulate")
    text = sg.debugprint(ys, file=io.StringIO())
    assert "accumulate" in text and "tanh" not in text
    (node,) = [node for node in sg.graph.traversal.postorder([ys]) if isinstance(node.op, Scan)]
    (step,) = node.op.inner_graphs
    assert [inner.op.name for inner in step.nodes] == ["add", "tanh"]
    assert node.scope is not None and node.scope.name == "accumulate"
    expanded = sg.debugprint(ys, file=io.StringIO(), expand=True)
    outer, inner = expanded.split("inner graph of accumulate [id B]:")
    assert "accumulate" in outer and "tanh" not in outer
    assert "tanh" in inner and "x[t]" in inner and "[t-1]" in inner


@pytest.mark.parametrize("duplicate", [copy.deepcopy, lambda obj: pickle.loads(pickle.dumps(obj))])
def test_graphs_with_loops_copy_and_pickle(duplicate):
    x = sg.matrix("x")
    W = sg.shared(rng.normal(size=(3, 3)) * 0.5, name="W")
    hs = rnn(x, sg.zeros((3,)), W)
    copied_x, copied_hs = duplicate([x, hs])
    values = rng.normal(size=(4, 3))
    np.testing.assert_allclose(sg.function([copied_x], copied_hs)(values), sg.function([x], hs)(values))


def test_modes_and_backends_agree_on_loops():
    x, h0 = sg.tensor3("x"), sg.matrix("h0")
    W = sg.shared(rng.normal(size=(3, 3)) * 0.5, name="W")
    hs = rnn(x, h0, W)
    outputs = [hs, sg.grad((hs**2).sum(), W), sg.grad((hs**2).sum(), h0)]
    values = [rng.normal(size=(4, 2, 3)), rng.normal(size=(2, 3))]
    expected = sg.function([x, h0], outputs)(*values)
    for options in (dict(mode="fast_compile"), dict(mode="debug"), dict(backend="python")):
        for got, want in zip(sg.function([x, h0], outputs, **options)(*values), expected):
            np.testing.assert_allclose(got, want, rtol=1e-12)


def test_batch_norm_in_a_loop_carries_its_running_statistics_from_step_to_step():
    gamma, beta = sg.shared(np.ones(3), name="gamma"), sg.shared(np.zeros(3), name="beta")
    mean, var = sg.shared(np.zeros(3), name="mean"), sg.shared(np.ones(3), name="var")
    x = sg.tensor3("x")
    ys, updates = sg.scan(lambda x_t: sg.nn.batch_norm(x_t, gamma, beta, mean, var), sequences=x)
    assert updates == {}
    train = sg.function([x], ys, phase="train")
    values = rng.normal(size=(4, 5, 3)) * 2 + 1
    normalized = train(values)
    running_mean, running_var = np.zeros(3), np.ones(3)
    for t, batch in enumerate(values):
        np.testing.assert_allclose(normalized[t], (batch - batch.mean(0)) / np.sqrt(batch.var(0) + 1e-5), rtol=1e-6)
        running_mean = 0.9 * running_mean + 0.1 * batch.mean(0)
        running_var = 0.9 * running_var + 0.1 * batch.var(0, ddof=1)
    np.testing.assert_allclose(mean.get_value(), running_mean)
    np.testing.assert_allclose(var.get_value(), running_var)
    predicted = sg.function([x], ys, phase="predict")(values)
    np.testing.assert_allclose(predicted, (values - running_mean) / np.sqrt(running_var + 1e-5))
    np.testing.assert_allclose(mean.get_value(), running_mean)  # predicting updates nothing
    gradient = sg.function([x], sg.grad((ys**2).sum(), gamma), phase="train")(values)
    np.testing.assert_allclose(gradient, 2 * (normalized**2).sum(axis=(0, 1)), rtol=1e-6)


def test_automatic_updates_a_branch_cannot_carry_are_refused_clearly():
    gamma, beta = sg.shared(np.ones(3), name="gamma"), sg.shared(np.zeros(3), name="beta")
    mean, var = sg.shared(np.zeros(3), name="mean"), sg.shared(np.ones(3), name="var")
    x = sg.matrix("x")
    chosen = sg.ifelse(x.sum() > 0, sg.nn.batch_norm(x, gamma, beta, mean, var), x)
    with pytest.raises(sg.errors.PhaseError, match=r"ifelse.*cannot carry those updates"):
        sg.function([x], chosen, phase="train")
    np.testing.assert_allclose(
        sg.function([x], chosen, phase="predict")(np.ones((2, 3))), np.ones((2, 3)) / np.sqrt(1 + 1e-5)
    )


def test_updates_may_be_given_as_a_list_of_pairs():
    total = sg.shared(np.float64(0.0), name="total")
    x = sg.vector("x")
    halves, updates = sg.scan(lambda x_t: (x_t / 2, [(total, total + x_t)]), sequences=x)
    sg.function([x], halves, updates=updates)([1.0, 2.0])
    assert total.get_value() == 3.0


def test_a_function_with_loops_and_branches_saves_and_resumes_bit_for_bit(tmp_path):
    W = sg.shared(rng.normal(size=(3, 3)) * 0.5, name="W")
    stream = sg.RandomStreams(4)
    x = sg.matrix("x")

    def step(row, h):
        dropped = sg.tanh(sg.nn.dropout(row, rate=0.5, rng=stream) + h @ W)
        return sg.ifelse(row.sum() > 0, dropped, h)

    hs, _ = sg.scan(step, sequences=x, outputs_info=sg.zeros((3,)))
    cost = (hs**2).sum()
    train = sg.function([x], cost, updates=[(W, W - 0.1 * sg.grad(cost, W))], phase="train")
    path = tmp_path / "train.sg"
    sg.save(path, train)
    resumed = sg.load(path)
    values = rng.normal(size=(5, 3)) + 0.5
    first = [train(values) for _ in range(3)]
    again = [resumed(values) for _ in range(3)]
    np.testing.assert_array_equal(first, again)


# --- until: loops that stop at a condition --------------------------------------------------------
def powers_of_two(limit, n_steps=1024):
    return sg.scan(
        lambda power, limit: (power * 2, sg.until(power * 2 > limit)),
        outputs_info=sg.constant(1.0),
        non_sequences=limit,
        n_steps=n_steps,
    )[0]


def numpy_powers(limit, n_steps=1024):
    powers, power = [], 1.0
    for _ in range(n_steps):
        power *= 2
        powers.append(power)
        if power > limit:
            break
    return np.array(powers)


@pytest.mark.parametrize("options", [{}, dict(mode="fast_compile"), dict(mode="debug"), dict(backend="python")])
def test_until_stops_after_the_first_step_whose_condition_holds(options):
    limit = sg.scalar("limit")
    f = sg.function([limit], powers_of_two(limit), **options)
    for value in (40.0, 64.0, 0.5, 1e300):  # 2**7 > 64 is the 7th step; 0.5: the first step
        np.testing.assert_array_equal(f(value), numpy_powers(value))
    bounded = sg.function([limit], powers_of_two(limit, n_steps=3), **options)
    np.testing.assert_array_equal(bounded(1e9), [2.0, 4.0, 8.0])  # never true: n_steps bound it
    assert powers_of_two(limit).type.shape == (None,)  # its length is known only once run


def test_until_with_sequences_taps_updates_and_several_outputs():
    x = sg.vector("x")
    calls = sg.shared(0, name="calls")

    def step(x_t, x_next, two_back, one_back):
        total = x_t + two_back + one_back
        return [total, total * x_next], {calls: calls + 1}, sg.until(total > 10)

    (totals, products), updates = sg.scan(
        step,
        sequences=dict(input=x, taps=[0, 1]),
        outputs_info=[dict(initial=sg.constant(np.zeros(2)), taps=[-2, -1]), None],
    )
    f = sg.function([x], [totals, products], updates=updates)
    values = np.arange(1.0, 9.0)
    expected, window = [], [0.0, 0.0]
    for t in range(len(values) - 1):
        total = values[t] + window[0] + window[1]
        expected.append(total)
        window = [window[1], total]
        if total > 10:
            break
    got_totals, got_products = f(values)
    np.testing.assert_array_equal(got_totals, expected)
    np.testing.assert_array_equal(got_products, np.array(expected) * values[1 : len(expected) + 1])
    assert calls.get_value() == len(expected) < len(values) - 1  # the update counts the steps taken


@pytest.mark.parametrize("stop", [2.5, 0.0, 99.0])  # stops at step 2, at step 0, never
def test_gradients_through_a_loop_that_stops_flow_through_the_steps_taken(stop):
    def cost(x, w, s0):
        states = sg.scan(
            lambda x_t, s, w: (sg.tanh(s * w + x_t), sg.until(x_t > stop)),
            sequences=x,
            outputs_info=s0,
            non_sequences=w,
        )[0]
        return (states**2).sum()

    values = [np.arange(1.0, 6.0) * 0.5, np.array(0.7), np.array(0.2)]
    sg.verify_grad(cost, values)
    x, w, s0 = sg.vector("x"), sg.scalar("w"), sg.scalar("s0")
    dx = sg.function([x, w, s0], sg.grad(cost(x, w, s0), x))(*values)
    taken = next((t + 1 for t, value in enumerate(values[0]) if value > stop), len(values[0]))
    assert np.all(dx[taken:] == 0) and np.all(dx[:taken] != 0)


def test_until_inside_scan_and_ifelse_inside_until():
    limits = sg.vector("limits")

    def count_doublings(limit):
        powers = powers_of_two(limit)
        return sg.ifelse(powers.shape[0] > 3, powers[-1], -powers[-1])

    lasts, _ = sg.scan(count_doublings, sequences=limits)
    f = sg.function([limits], lasts)
    values = [3.0, 40.0, 1000.0]
    np.testing.assert_array_equal(
        f(values), [numpy_powers(v)[-1] if len(numpy_powers(v)) > 3 else -numpy_powers(v)[-1] for v in values]
    )


def test_an_output_nobody_reads_goes_but_the_condition_stays():
    x = sg.vector("x")
    (kept, _), _ = sg.scan(
        lambda x_t, s: ([s + x_t, sg.exp(x_t)], sg.until(s + x_t > 3)),
        sequences=x,
        outputs_info=[sg.constant(0.0), None],
    )
    f = sg.function([x], kept)
    np.testing.assert_array_equal(f([1.0, 1.0, 1.0, 1.0, 1.0]), [1.0, 2.0, 3.0, 4.0])
    (loop,) = scan_nodes(f)
    assert len(loop.op.inner_outputs()[1]) == 1  # the condition: exp(x_t) was dropped


@pytest.mark.parametrize(
    ("step", "error", "message"),
    [
        (lambda x_t: (sg.until(x_t > 0), x_t), TypeError, "sg.until once, last"),
        (lambda x_t: (x_t, sg.until(x_t > 0), sg.until(x_t > 1)), TypeError, "sg.until once, last"),
        (lambda x_t: sg.until(x_t > 0), TypeError, "returned only sg.until"),
        (lambda x_t: (x_t, sg.until(x_t)), TypeError, "boolean or integer scalar"),
        (lambda x_t: (x_t, sg.until(sg.stack([x_t, x_t]) > 0)), TypeError, "boolean or integer scalar"),
    ],
)
def test_until_misused_is_refused_naming_it(step, error, message):
    with pytest.raises(error, match=message):
        sg.scan(step, sequences=sg.vector("x"))


def test_until_of_an_integer_stops_where_it_is_not_zero():
    x = sg.ivector("x")
    rows, _ = sg.scan(lambda x_t: (x_t * 2, sg.until(x_t)), sequences=x)
    np.testing.assert_array_equal(sg.function([x], rows)(np.array([0, 0, 5, 7], dtype="int32")), [0, 0, 10])


def test_a_loop_that_stops_saves_loads_and_copies(tmp_path):
    limit = sg.scalar("limit")
    f = sg.function([limit], powers_of_two(limit))
    sg.save(tmp_path / "powers.sg", f)
    np.testing.assert_array_equal(sg.load(tmp_path / "powers.sg")(40.0), numpy_powers(40.0))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(f))(100.0), numpy_powers(100.0))
