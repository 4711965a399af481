"""Slices written into zeros: added as writes, and no zeros under writes that cover everything
(symgraph/rewrite/algebraic.py), in functions and in the loops of the numpy backend."""

from __future__ import annotations

import numpy as np
import pytest

import symgraph as sg
from symgraph.backends.numpy.loop import link_scan
from symgraph.ops.scan import Scan
from symgraph.ops.shape import Alloc, AllocEmpty
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
