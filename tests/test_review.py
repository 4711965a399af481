"""Bugs found reviewing symgraph/, one test each (each failed before its fix)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import symgraph as sg
from symgraph.errors import ShapeError, UpdateError
from symgraph.ops.shape import full


# --- compile/memory.py: in-place commits of shared updates -----------------------------------------
@pytest.mark.parametrize(
    "read, expected",
    [(lambda W: W, [1.0, 2.0]), (lambda W: W[::-1], [2.0, 1.0]), (lambda W: W.T, [1.0, 2.0])],
)
def test_an_update_reading_a_shared_array_sees_its_value_before_the_call(read, expected):
    W = sg.shared(np.array([1.0, 2.0]), name="W")
    U = sg.shared(np.zeros(2), name="U")
    f = sg.function([], [], updates=[(W, W - 1), (U, read(W))])
    f()
    np.testing.assert_array_equal(U.get_value(), expected)
    np.testing.assert_array_equal(W.get_value(), [0.0, 1.0])


# --- graph/basic.py: shared values the compiled functions may overwrite ----------------------------
def test_a_borrowed_read_only_array_can_still_be_updated():
    value = np.ones(3)
    value.flags.writeable = False
    W = sg.shared(value, borrow=True)
    step = sg.function([], [], updates=[(W, W - 1)])
    step()
    np.testing.assert_array_equal(W.get_value(), np.zeros(3))
    replacement = np.ones(3)
    replacement.flags.writeable = False
    W.set_value(replacement, borrow=True)
    step()
    np.testing.assert_array_equal(W.get_value(), np.zeros(3))
    np.testing.assert_array_equal(replacement, np.ones(3))


class _Subclass(np.ndarray):
    """An ndarray subclass (as ``numpy.memmap`` is): ``numpy.asarray`` gives a view of it."""


def test_an_ndarray_subclass_given_to_shared_is_copied_unless_borrowed():
    users = np.array([[1.0, 2.0]]).view(_Subclass)
    M = sg.shared(users)
    triple = sg.function([], [], updates=[(M, M * 3)])
    triple()
    M.set_value(users)
    triple()
    np.testing.assert_array_equal(users, [[1.0, 2.0]])
    np.testing.assert_array_equal(M.get_value(), [[3.0, 6.0]])


# --- ops/subtensor.py ----------------------------------------------------------------------------
def test_set_subtensor_of_a_whole_slice():
    x = sg.matrix("x")
    value = np.arange(4.0).reshape(2, 2)
    np.testing.assert_array_equal(sg.set_subtensor(x[:], 7).eval({x: value}), np.full((2, 2), 7.0))
    row = x[0]
    result = sg.set_subtensor(row[:], 5)  # a new row, not x with its row 0 set
    np.testing.assert_array_equal(result.eval({x: value}), [5.0, 5.0])
    np.testing.assert_array_equal(sg.inc_subtensor(row[...], 1).eval({x: value}), [1.0, 2.0])


def test_a_whole_slice_is_rewritten_away():
    x = sg.vector("x")
    f = sg.function([x], x[:] * 2)
    assert [node.op.name for node in f.nodes] == ["mul"]
    np.testing.assert_array_equal(f(np.array([1.0, 2.0])), [2.0, 4.0])


@pytest.mark.parametrize(
    "index",
    [
        (0, slice(None), [0, 1]),
        ([0, 1], slice(None), 0),
        (slice(None), 0, [0, 1]),
        (0, [1, 0], slice(None)),
        (1, slice(None), [[0], [1]]),
        (slice(1, None), [0, 1], 0),
    ],
)
def test_an_integer_next_to_an_array_index_is_an_advanced_index(index):
    t = sg.tensor3("t", shape=(2, 3, 4))
    value = np.arange(24.0).reshape(2, 3, 4)
    expected = value[index]
    y = t[index]
    assert y.type.accepts_shape(expected.shape), (y.type, expected.shape)
    np.testing.assert_array_equal(sg.function([t], y, mode="debug")(value), expected)
    gradient = sg.grad(y.sum(), t)
    numpy_gradient = np.zeros_like(value)
    np.add.at(numpy_gradient, index, 1.0)
    gradient_function = sg.function([t], gradient, mode="debug", on_unused_input="ignore")
    np.testing.assert_array_equal(gradient_function(value), numpy_gradient)


def test_an_integer_index_with_a_symbolic_position_next_to_an_array():
    t = sg.tensor3("t")
    i = sg.lscalar("i")
    value = np.arange(24.0).reshape(2, 3, 4)
    y = t[i, :, [0, 1]]
    np.testing.assert_array_equal(sg.function([t, i], y, mode="debug")(value, 1), value[1, :, [0, 1]])


# --- ops/shape.py ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "build",
    [
        lambda: sg.transpose(sg.matrix(), (0, 3)),
        lambda: sg.matrix().transpose(2, 0),
        lambda: sg.expand_dims(sg.vector(), 5),
        lambda: sg.expand_dims(sg.vector(), -3),
    ],
)
def test_axes_out_of_range_are_refused(build):
    with pytest.raises(ShapeError, match="out of range"):
        build()


def test_negative_axes_still_count_from_the_end():
    x = sg.tensor3("x")
    value = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(sg.transpose(x, (-1, 0, -2)).eval({x: value}), value.transpose(2, 0, 1))
    np.testing.assert_array_equal(sg.expand_dims(x, -1).eval({x: value}), value[..., None])


# --- ops/reduce.py ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 0), (0, 3)])
def test_the_gradient_of_prod_over_an_empty_array(shape):
    x = sg.matrix("x")
    gradient = sg.grad(x.prod(axis=1).sum(), x).eval({x: np.ones(shape)})
    assert gradient.shape == shape


# --- ops/random.py, nn/dropout.py ------------------------------------------------------------------
def test_a_random_size_of_unknown_length_is_refused():
    size = sg.lvector("size")
    with pytest.raises(ShapeError, match="unknown number of entries"):
        sg.RandomStreams(0).uniform(size)


def test_a_noise_shape_of_unknown_length_is_refused():
    x = sg.matrix("x")
    with pytest.raises(ValueError, match="noise_shape must have 2 entries"):
        sg.nn.dropout(x, rate=0.5, noise_shape=sg.lvector("noise"))


# --- compile/function.py ---------------------------------------------------------------------------
def test_two_batch_norms_updating_the_same_statistics_are_refused():
    x = sg.matrix("x")
    gamma, beta = sg.shared(np.ones(3)), sg.shared(np.zeros(3))
    mean, var = sg.shared(np.zeros(3), name="mean"), sg.shared(np.ones(3), name="var")
    first = sg.nn.batch_norm(x, gamma, beta, mean, var)
    second = sg.nn.batch_norm(x * 2, gamma, beta, mean, var)
    with pytest.raises(UpdateError, match="mean is updated automatically by two nodes"):
        sg.function([x], first + second, phase="train")
    sg.function([x], first + second, phase="predict")  # no automatic update: nothing clashes


def test_warnings_name_the_users_line():
    x, y = sg.vector("x"), sg.vector("y")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sg.function([x, y], x * 2, on_unused_input="warn")
        sg.grad((x * 2).sum(), y, disconnected_inputs="warn")
    assert [record.filename for record in caught] == [__file__, __file__]


# --- graph/op.py, graph/type.py --------------------------------------------------------------------
def test_an_op_without_gradient_says_so():
    x = sg.vector("x")
    with pytest.raises(NotImplementedError, match="product_of_others has no gradient"):
        sg.grad(sg.grad(x.prod(), x).sum(), x)


@pytest.mark.parametrize("length", [True, 1.0])
def test_static_lengths_are_checked_even_when_an_equal_type_exists(length):
    sg.TensorType("float64", (1,))  # (True,) and (1.0,) compare equal to (1,)
    with pytest.raises(ShapeError, match="a static length is an int or None"):
        sg.TensorType("float64", (length,))


# --- ops/shape.py: each gradient in its input's dtype (the op protocol) -----------------------------
def test_fill_and_stack_give_gradients_in_their_inputs_dtypes():
    value = sg.scalar("value", dtype="float64")
    node = full((3,), value * 2, dtype="float32").owner
    (gradient, _) = node.op.grad(node, [sg.vector("g", dtype="float32")], [True, False])
    assert gradient.dtype == "float64"
    single, double = sg.vector("single", dtype="float32"), sg.vector("double", dtype="float64")
    node = sg.stack([single, double]).owner
    gradients = node.op.grad(node, [sg.matrix("g", dtype="float64")], [True, True])
    assert [g.dtype for g in gradients] == ["float32", "float64"]


def test_arange_takes_float_bounds_as_numpy_and_refuses_non_scalars():
    # Float bounds give numpy's floats (truncating them once gave [0, 1] for 2.5).
    np.testing.assert_array_equal(sg.arange(2.5).eval(), np.arange(2.5))
    stop = sg.scalar("stop")
    np.testing.assert_array_equal(sg.arange(stop).eval({stop: 2.5}), np.arange(2.5))
    with pytest.raises(TypeError, match="arange takes numbers"):
        sg.arange(sg.tensor("flag", dtype="bool", shape=()))
    with pytest.raises(ShapeError, match="stop must be a scalar"):
        sg.arange(sg.lvector("stop"))
    stop = sg.iscalar("stop")
    np.testing.assert_array_equal(sg.arange(1, stop, 2).eval({stop: 8}), np.arange(1, 8, 2))


def test_a_random_draw_refused_at_building_leaves_the_stream_as_it_was():
    untouched, refused = sg.RandomStreams(7), sg.RandomStreams(7)
    with pytest.raises(TypeError, match="integer scalar"):
        refused.uniform((2.5,))
    expected = untouched.uniform((4,)).eval()
    np.testing.assert_array_equal(refused.uniform((4,)).eval(), expected)
