"""Slices written into zeros: added as writes, and no zeros under writes that cover everything
(symgraph/rewrite/algebraic.py), in functions and in the loops of the numpy backend."""

from __future__ import annotations

import numpy as np
import pytest

import symgraph as sg
from symgraph.backends.numpy.loop import link_scan
from symgraph.ops.scan import Scan
from symgraph.ops.shape import Alloc, AllocEmpty, SumTo
from symgraph.ops.subtensor import IncSubtensor


def _modes(f):
    return sorted(node.op.mode for node in f.nodes if isinstance(node.op, IncSubtensor))


def _has(f, op_class):
    return any(isinstance(node.op, op_class) for node in f.nodes)


def _scattered(parts, zeros_shape):
    """``inc_subtensor`` of each ``(index, value)`` into one array of zeros, in turn."""
    out = sg.zeros(zeros_shape)
    for index, value in parts:
        out = sg.inc_subtensor(out[index], value)
    return out


def test_slices_that_cover_the_zeros_are_written_into_an_uninitialized_array():
    x = sg.matrix("x", shape=(4, 6))
    out = _scattered(
        [((slice(None), slice(0, 2)), sg.tanh(x[:, :2])), ((slice(None), slice(2, None)), x[:, 2:] * 3)], (4, 6)
    )
    f = sg.function([x], out)
    value = np.random.default_rng(0).standard_normal((4, 6))
    expected = np.concatenate([np.tanh(value[:, :2]), value[:, 2:] * 3], axis=1)
    for _ in range(3):  # the uninitialized memory may hold anything, call after call
        np.testing.assert_allclose(f(value), expected)
    assert _modes(f) == ["set", "set"]
    assert _has(f, AllocEmpty) and not _has(f, Alloc)
    np.testing.assert_allclose(sg.function([x], out, backend="python")(value), expected)


def test_slices_leaving_a_gap_are_written_into_the_zeros():
    x = sg.matrix("x", shape=(4, 6))
    out = _scattered([((slice(None), slice(0, 2)), x[:, :2]), ((slice(None), slice(3, None)), x[:, 3:])], (4, 6))
    f = sg.function([x], out)
    value = np.random.default_rng(1).standard_normal((4, 6))
    expected = value.copy()
    expected[:, 2] = 0
    np.testing.assert_allclose(f(value), expected)
    assert _modes(f) == ["set", "set"]  # disjoint: written, not added
    assert not _has(f, AllocEmpty)


def test_overlapping_slices_still_add_up():
    x = sg.matrix("x", shape=(3, 5))
    # rows 0-1 and 1-2 overlap on row 1: the second write must add to the first
    out = _scattered([(slice(0, 2), x[:2]), (slice(1, 3), x[1:] * 2)], (3, 5))
    f = sg.function([x], out)
    value = np.random.default_rng(2).standard_normal((3, 5))
    expected = np.zeros((3, 5))
    expected[0:2] += value[:2]
    expected[1:3] += value[1:] * 2
    np.testing.assert_allclose(f(value), expected)
    assert _modes(f) == ["inc", "set"]
    assert not _has(f, AllocEmpty)


def test_an_index_read_at_run_time_is_left_alone():
    x = sg.matrix("x", shape=(4, 6))
    k = sg.iscalar("k")
    out = sg.inc_subtensor(sg.zeros((4, 6))[:, :k], x[:, :2])
    out = sg.inc_subtensor(out[:, 2:], x[:, 2:])
    f = sg.function([x, k], out)
    value = np.random.default_rng(3).standard_normal((4, 6))
    np.testing.assert_allclose(f(value, 2), value)
    assert not _has(f, AllocEmpty)
    assert "inc" in _modes(f)


def test_writes_that_cover_any_array_do_not_read_it():
    x = sg.matrix("x", shape=(3, 4))
    y = sg.matrix("y", shape=(3, 4))
    out = sg.set_subtensor(sg.exp(x)[:, :1], y[:, :1])
    out = sg.set_subtensor(out[:, 1:], y[:, 1:] + 1)
    f = sg.function([x, y], out, on_unused_input="ignore")
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    np.testing.assert_allclose(f(a, b), np.concatenate([b[:, :1], b[:, 1:] + 1], axis=1))
    assert _has(f, AllocEmpty)
    assert not any(node.op == sg.exp(x).owner.op for node in f.nodes)  # exp(x) is never computed


def test_an_integer_value_into_float_zeros_and_an_int_index():
    x = sg.ivector("x")
    out = sg.inc_subtensor(sg.zeros((2, 3))[0], sg.cast(x, "int32"))
    out = sg.inc_subtensor(out[1], x * 2)
    f = sg.function([x], out)
    np.testing.assert_allclose(f(np.array([1, 2, 3], "int32")), [[1, 2, 3], [2, 4, 6]])
    assert _has(f, AllocEmpty)


def test_debug_mode_accepts_the_uninitialized_array_on_the_numpy_backend():
    x = sg.matrix("x", shape=(2, 4))
    out = _scattered([((slice(None), slice(0, 2)), x[:, :2]), ((slice(None), slice(2, None)), x[:, 2:])], (2, 4))
    value = np.arange(8.0).reshape(2, 4)
    for backend in ("numpy", "python"):
        np.testing.assert_allclose(sg.function([x], out, mode="debug", backend=backend)(value), value)


def test_the_gradient_of_slices_is_written_not_added_and_checks():
    x = sg.matrix("x", shape=(3, 6))
    loss = (sg.tanh(x[:, :2]) * x[:, 2:4]).sum() + (x[:, 4:] ** 2).sum()
    f = sg.function([x], sg.grad(loss, x))
    value = np.random.default_rng(5).standard_normal((3, 6))
    a, b, c = value[:, :2], value[:, 2:4], value[:, 4:]
    expected = np.concatenate([(1 - np.tanh(a) ** 2) * b, np.tanh(a), 2 * c], axis=1)
    np.testing.assert_allclose(f(value), expected)
    assert "inc" not in _modes(f) and _has(f, AllocEmpty)
    sg.verify_grad(
        lambda v: (sg.tanh(v[:, :2]) * v[:, 2:4]).sum() + (v[:, 4:] ** 2).sum(), [value], rng=np.random.default_rng(0)
    )


def _gated_step(x_t, h, W):
    a = x_t + sg.dot(h, W)
    gates = sg.nn.sigmoid(a[:, :4])
    return gates[:, :2] * sg.tanh(a[:, 4:]) + gates[:, 2:] * h


def _gated_loop(x, h0, W):
    hs, _ = sg.scan(_gated_step, sequences=x, outputs_info=h0, non_sequences=W)
    return hs


def _numpy_gated(x, h0, W):
    h, hs = h0, []
    for x_t in x:
        a = x_t + h @ W
        gates = 1 / (1 + np.exp(-a[:, :4]))
        h = gates[:, :2] * np.tanh(a[:, 4:]) + gates[:, 2:] * h
        hs.append(h)
    return np.array(hs)


def test_a_loop_writes_its_gate_gradients_into_the_stacked_rows_without_zeros():
    x = sg.tensor3("x", shape=(None, 3, 6))
    h0 = sg.matrix("h0", shape=(3, 2))
    W = sg.matrix("W", shape=(2, 6))
    rng = np.random.default_rng(6)
    X, H0, Wv = rng.standard_normal((5, 3, 6)), rng.standard_normal((3, 2)), rng.standard_normal((2, 6))
    hs = _gated_loop(x, h0, W)
    f = sg.function([x, h0, W], [hs, *sg.grad((hs**2).sum(), [x, h0, W])])
    values = f(X, H0, Wv)
    np.testing.assert_allclose(values[0], _numpy_gated(X, H0, Wv))
    python = sg.function([x, h0, W], [hs, *sg.grad((hs**2).sum(), [x, h0, W])], backend="python")(X, H0, Wv)
    for got, expected in zip(values, python):
        np.testing.assert_allclose(got, expected, rtol=1e-10)
    backward = [node for node in f.nodes if isinstance(node.op, Scan) and node.op.reverse]
    assert backward
    inner = backward[0].op.fgraph.order
    assert not any(isinstance(node.op, IncSubtensor) and node.op.mode == "inc" for node in inner)
    assert any(isinstance(node.op, AllocEmpty) for node in inner)
    source = link_scan(backward[0].op).source
    assert "copied_into" not in source  # the rows are written, not zero-filled first
    sg.verify_grad(lambda *a: (_gated_loop(*a) ** 2).sum(), [X, H0, Wv], rng=np.random.default_rng(1))


@pytest.mark.parametrize("steps", [0, 1])
def test_a_loop_of_zero_or_one_step_still_gives_its_gradients(steps):
    x = sg.tensor3("x", shape=(None, 3, 6))
    h0 = sg.matrix("h0", shape=(3, 2))
    W = sg.matrix("W", shape=(2, 6))
    rng = np.random.default_rng(7)
    X, H0, Wv = rng.standard_normal((steps, 3, 6)), rng.standard_normal((3, 2)), rng.standard_normal((2, 6))
    hs = _gated_loop(x, h0, W)
    outputs = sg.grad((hs**2).sum() + (h0**2).sum(), [x, h0, W])
    for got, expected in zip(
        sg.function([x, h0, W], outputs)(X, H0, Wv), sg.function([x, h0, W], outputs, backend="python")(X, H0, Wv)
    ):
        np.testing.assert_allclose(got, expected, rtol=1e-10)


# --- loops keeping the last row of a state only (symgraph/rewrite/scan.py: keep_last_rows) ----------
def _rnn(x, h0, W):
    hs, _ = sg.scan(lambda x_t, h: sg.tanh(x_t + sg.dot(h, W)), sequences=x, outputs_info=h0)
    return hs


def _loops(f):
    return [node.op for node in f.nodes if isinstance(node.op, Scan)]


@pytest.mark.parametrize("steps", [0, 1, 4])
def test_the_backward_loop_keeps_only_the_last_gradient_of_the_initial_state(steps):
    x, h0, W = sg.matrix("x", shape=(None, 3)), sg.vector("h0", shape=(3,)), sg.matrix("W", shape=(3, 3))
    rng = np.random.default_rng(8)
    X, H0, Wv = rng.standard_normal((steps, 3)), rng.standard_normal(3), rng.standard_normal((3, 3))
    loss = (_rnn(x, h0, W) ** 2).sum() + h0.sum()
    outputs = sg.grad(loss, [h0, W, x])
    f = sg.function([x, h0, W], outputs)
    expected = sg.function([x, h0, W], outputs, backend="python")(X, H0, Wv)
    for got, want in zip(f(X, H0, Wv), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    backward = [op for op in _loops(f) if op.reverse]
    assert backward and backward[0].keeps_last_only(0)
    source = link_scan(backward[0]).source
    assert "new_buffer" not in source  # no row per step for the state
    if steps:
        sg.verify_grad(lambda a, b, c: (_rnn(a, b, c) ** 2).sum(), [X, H0, Wv], rng=np.random.default_rng(2))


def test_a_state_read_at_every_step_keeps_its_buffer():
    x, h0, W = sg.matrix("x", shape=(None, 3)), sg.vector("h0", shape=(3,)), sg.matrix("W", shape=(3, 3))
    hs = _rnn(x, h0, W)
    f = sg.function([x, h0, W], [hs, hs[-1]])
    (forward,) = _loops(f)
    assert not forward.keeps_last_only(0)
    rng = np.random.default_rng(9)
    X, H0, Wv = rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal((3, 3))
    h, rows = H0, []
    for x_t in X:
        h = np.tanh(x_t + h @ Wv)
        rows.append(h)
    got_hs, got_last = f(X, H0, Wv)
    np.testing.assert_allclose(got_hs, rows)
    np.testing.assert_allclose(got_last, rows[-1])


def test_the_gradient_of_a_window_of_two_rows_is_right_with_its_states_kept_last_only():
    x = sg.vector("x", shape=(None,))
    start = sg.vector("start", shape=(2,))
    fib, _ = sg.scan(lambda x_t, a, b: a * b + x_t, sequences=x, outputs_info={"initial": start, "taps": [-2, -1]})
    outputs = sg.grad((fib**2).sum(), [start, x])
    f = sg.function([x, start], outputs)
    (forward, backward) = sorted(_loops(f), key=lambda op: op.reverse)
    assert forward.last_only is None  # its rows are read by the backward loop
    assert backward.last_only is not None and all(backward.last_only)
    X, S = np.array([0.1, -0.2, 0.3, 0.05]), np.array([0.5, 0.7])
    for got, want in zip(f(X, S), sg.function([x, start], outputs, backend="python")(X, S)):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    sg.verify_grad(
        lambda a, b: (
            sg.scan(lambda x_t, p, q: p * q + x_t, sequences=a, outputs_info={"initial": b, "taps": [-2, -1]})[0] ** 2
        ).sum(),
        [X, S],
        rng=np.random.default_rng(3),
    )


def test_a_shared_variable_updated_inside_a_loop_gets_its_last_value():
    total = sg.shared(np.zeros(2), name="total")
    x = sg.matrix("x", shape=(None, 2))

    def step(x_t):
        return x_t * 2, {total: total + x_t}

    doubled, updates = sg.scan(step, sequences=x)
    f = sg.function([x], doubled, updates=updates)
    f(np.arange(6.0).reshape(3, 2))
    np.testing.assert_allclose(total.get_value(), [6.0, 9.0])
    f(np.zeros((0, 2)))  # no step: the value stays
    np.testing.assert_allclose(total.get_value(), [6.0, 9.0])


def test_only_states_with_the_single_tap_minus_one_keep_their_last_row():
    x, h0, W = sg.matrix("x", shape=(None, 3)), sg.vector("h0", shape=(3,)), sg.matrix("W", shape=(3, 3))
    op = _rnn(x, h0, W).owner.inputs[0].owner.op
    assert op.changed(last_only=[True]).keeps_last_only(0)
    assert op.changed(last_only=[False]) == op  # one spelling of "every row"
    with pytest.raises(ValueError, match="single tap -1"):
        op.changed(state_taps=[(-2,)], last_only=[True])


def test_a_loop_keeping_last_rows_only_refuses_a_gradient():
    x, h0, W = sg.matrix("x", shape=(None, 3)), sg.vector("h0", shape=(3,)), sg.matrix("W", shape=(3, 3))
    node = _rnn(x, h0, W).owner.inputs[0].owner
    last = node.op.changed(last_only=[True]).make_node(*node.inputs).outputs[0][-1]
    np.testing.assert_allclose(
        sg.function([x, h0, W], last)(np.ones((2, 3)), np.zeros(3), np.zeros((3, 3))), np.tanh(np.ones(3))
    )
    with pytest.raises(NotImplementedError, match="last row"):
        sg.grad(last.sum(), W)


# --- a loop's buffers come from the workspace's recycled memory ---------------------------------------
def _large_loop():
    x = sg.matrix("x", shape=(None, 4096))  # rows of every step: larger than the workspace threshold
    h0 = sg.vector("h0", shape=(4096,))
    hs, _ = sg.scan(lambda x_t, h: h * 0.5 + x_t, sequences=x, outputs_info=h0)
    doubled, _ = sg.scan(lambda x_t: x_t * 2, sequences=x)
    return sg.function([x, h0], [hs, doubled])


def test_a_loop_reuses_the_memory_of_its_dropped_results_and_keeps_the_held_ones():
    f = _large_loop()
    rng = np.random.default_rng(10)
    X, H0 = rng.standard_normal((12, 4096)), rng.standard_normal(4096)
    first_hs, first_doubled = f(X, H0)
    kept_hs, kept_doubled = first_hs.copy(), first_doubled.copy()
    second_hs, second_doubled = f(X * 3, H0)  # the first results are held: other memory
    np.testing.assert_array_equal(first_hs, kept_hs)
    np.testing.assert_array_equal(first_doubled, kept_doubled)
    np.testing.assert_allclose(second_doubled, X * 6)
    address = second_doubled.ctypes.data
    del second_hs, second_doubled
    third_hs, third_doubled = f(X, H0)
    assert third_doubled.ctypes.data == address  # the dropped rows' memory, no fresh pages
    np.testing.assert_allclose(third_hs, kept_hs)
    np.testing.assert_allclose(third_doubled, kept_doubled)


# --- shapes that static shapes give (symgraph/rewrite/algebraic.py) -----------------------------------
def test_a_static_shape_is_a_constant_and_a_sum_to_that_shape_goes():
    from symgraph.ops.shape import Shape, ShapeAt, SumTo
    from symgraph.rewrite.algebraic import fold_static_shapes, remove_sums_to_the_same_shape

    x = sg.matrix("x", shape=(3, 4))
    free = sg.matrix("free")
    (folded,) = fold_static_shapes(Shape()(x).owner)
    np.testing.assert_array_equal(folded.data, [3, 4])
    assert folded.dtype == "int64"
    assert fold_static_shapes(Shape()(free).owner) is None
    assert fold_static_shapes(ShapeAt(1)(x).owner)[0].data == 4
    assert fold_static_shapes(ShapeAt(0)(sg.matrix("half", shape=(None, 4))).owner) is None
    assert remove_sums_to_the_same_shape(SumTo((None, None))(x, Shape()(x)).owner) == [x]
    # broadcast along an axis, or a shape known only when running: the sum stays
    assert remove_sums_to_the_same_shape(SumTo((1, 4))(x, sg.as_tensor(np.array([1, 4]))).owner) is None
    assert remove_sums_to_the_same_shape(SumTo((None, None))(x, Shape()(free)).owner) is None


def test_a_loop_over_rows_of_static_shape_with_a_free_initial_state_drops_its_shape_work():
    x = sg.tensor3("x", shape=(None, 3, 6))
    h0 = sg.matrix("h0")  # no static shape: the step is written for any
    W = sg.matrix("W", shape=(2, 6))

    def step(x_t, h, c):
        a = x_t + sg.dot(h, W)
        gates = sg.nn.sigmoid(a[:, :4])
        c_new = gates[:, 2:] * c + gates[:, :2] * sg.tanh(a[:, 4:])
        return gates[:, :2] * sg.tanh(c_new), c_new

    (hs, cs), _ = sg.scan(step, sequences=x, outputs_info=[h0, sg.zeros_like(h0)])
    loss = (hs**2).sum() + cs.sum()
    outputs = sg.grad(loss, [x, h0, W])
    f = sg.function([x, h0, W], outputs)
    backward = next(node.op for node in f.nodes if isinstance(node.op, Scan) and node.op.reverse)
    inner_sums = [node for node in backward.fgraph.order if isinstance(node.op, SumTo)]
    # the cell state's gradient went to c's rows, of static shape: no sum back; the gates' input
    # (from a product whose shape is free) keeps its sum
    assert len(inner_sums) == 1
    rng = np.random.default_rng(11)
    X, H0, Wv = rng.standard_normal((4, 3, 6)), rng.standard_normal((3, 2)), rng.standard_normal((2, 6))
    for got, want in zip(f(X, H0, Wv), sg.function([x, h0, W], outputs, backend="python")(X, H0, Wv)):
        np.testing.assert_allclose(got, want, rtol=1e-10)


# --- values computed straight into their slice of a loop's row (backends/numpy/loop.py) ---------------
def _row_loop(step, n_outputs=1):
    x = sg.tensor3("x", shape=(None, 2, 5))
    outputs, _ = sg.scan(step, sequences=x, outputs_info=[None] * n_outputs)
    return x, outputs


def _pieces(x_t):
    return sg.tanh(x_t[:, :2]), x_t[:, 2:] * 3.0


@pytest.mark.parametrize(
    "case, into_slices",
    [("disjoint", 2), ("overlapping", 0), ("read_twice", 1)],
)
def test_slice_values_are_computed_into_the_row_only_where_safe(case, into_slices):
    def step(x_t):
        first, second = _pieces(x_t)
        row = sg.zeros((2, 5))
        if case == "overlapping":  # columns 0-2 then 2-4: the second write must come after the first
            row = sg.set_subtensor(row[:, :3], sg.tanh(x_t[:, :3]))
            return sg.set_subtensor(row[:, 2:], second)
        row = sg.set_subtensor(row[:, :2], first)
        row = sg.set_subtensor(row[:, 2:], second)
        return (row, first.sum()) if case == "read_twice" else row

    x, outputs = _row_loop(step, 2 if case == "read_twice" else 1)
    f = sg.function([x], outputs)
    loop = next(node.op for node in f.nodes if isinstance(node.op, Scan))
    source = link_scan(loop).source
    assert source.count("out=P0[t][") == into_slices
    X = np.random.default_rng(12).standard_normal((4, 2, 5))
    got = f(X)
    want = sg.function([x], outputs, backend="python")(X)
    for a, b in zip(got if isinstance(got, list) else [got], want if isinstance(want, list) else [want]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    row = got[0] if isinstance(got, list) else got
    np.testing.assert_allclose(row[..., 2:], X[..., 2:] * 3.0)
    columns = 3 if case == "overlapping" else 2
    np.testing.assert_allclose(row[..., :2], np.tanh(X[..., :columns])[..., :2])


def test_boxes_of_fixed_indices():
    from symgraph.ops.subtensor import boxes_disjoint, index_box

    shape = (4, 6)
    assert index_box((slice(None), slice(2, None)), shape) == (range(4), range(2, 6))
    assert index_box((-1,), shape) == (range(3, 4), range(6))
    assert index_box((4,), shape) is None  # out of bounds: the computation reports it
    even, odd = index_box((slice(None, None, 2),), shape), index_box((slice(1, None, 2),), shape)
    assert boxes_disjoint(even, odd)
    assert not boxes_disjoint(even, index_box((slice(2, 3),), shape))
    assert boxes_disjoint(index_box((slice(0, 2),), shape), index_box((slice(2, 4),), shape))
    assert boxes_disjoint(index_box((slice(0, 0),), shape), index_box((slice(None),), shape))  # empty


def test_interleaved_rows_cover_the_zeros_too():
    x = sg.matrix("x", shape=(4, 3))
    out = _scattered([(slice(None, None, 2), x[::2] + 1), (slice(1, None, 2), x[1::2] * 2)], (4, 3))
    f = sg.function([x], out)
    value = np.random.default_rng(13).standard_normal((4, 3))
    expected = value.copy()
    expected[::2] += 1
    expected[1::2] *= 2
    np.testing.assert_allclose(f(value), expected)
    assert _has(f, AllocEmpty) and _modes(f) == ["set", "set"]


def test_an_update_carried_through_a_while_loop_is_its_last_step_taken():
    total = sg.shared(np.zeros(2), name="total")
    x = sg.matrix("x", shape=(None, 2))

    def step(x_t):
        new = total + x_t
        return x_t * 2, {total: new}, sg.until(new.sum() > 4)

    doubled, updates = sg.scan(step, sequences=x)
    f = sg.function([x], doubled, updates=updates)
    loop = next(node.op for node in f.nodes if isinstance(node.op, Scan))
    assert loop.until is not None and any(loop.last_only)
    X = np.arange(10.0).reshape(5, 2)  # totals (0, 1), (2, 4): stops after the second step
    np.testing.assert_allclose(f(X), X[:2] * 2)
    np.testing.assert_allclose(total.get_value(), [2.0, 4.0])
    total.set_value(np.zeros(2))
    g = sg.function([x], doubled, updates=updates, backend="python")
    np.testing.assert_allclose(g(X), X[:2] * 2)
    np.testing.assert_allclose(total.get_value(), [2.0, 4.0])


def test_a_slice_value_of_another_dtype_is_written_by_the_assignment():
    from symgraph.ops.subtensor import parse_index

    def step(x_t):
        row = sg.zeros((2, 5), dtype="int32")
        # the op itself (as gradients build it): floats written into ints, truncated by the write
        row = IncSubtensor(parse_index(row, (slice(None), slice(None, 2)))[0], "set")(row, x_t[:, :2] * 3.7)
        return sg.set_subtensor(row[:, 2:], sg.cast(x_t[:, 2:], "int32") * 2)

    x, outputs = _row_loop(step)
    f = sg.function([x], outputs)
    source = link_scan(next(node.op for node in f.nodes if isinstance(node.op, Scan))).source
    assert source.count("out=P0[t][") == 1  # the int32 product only
    X = np.random.default_rng(14).standard_normal((3, 2, 5)) * 4
    np.testing.assert_array_equal(f(X), sg.function([x], outputs, backend="python")(X))
    np.testing.assert_array_equal(f(X)[..., :2], (X[..., :2] * 3.7).astype("int32"))
