"""``sg.function`` semantics: outputs, updates, givens, inputs and their checks, errors, memory
ownership of the arrays returned, threads, modes, ``.eval()`` and shared variables."""

from __future__ import annotations

import gc
import inspect
import os
import re
import threading
import warnings

import numpy as np
import pytest

import symgraph as sg
from symgraph.errors import InputError, MissingInputError, NodeError, UnusedInputError, UpdateError

THIS_FILE = os.path.basename(__file__)


def line_here() -> int:
    """The line number of the caller (to check that errors point at it)."""
    return inspect.currentframe().f_back.f_lineno


# --- outputs ----------------------------------------------------------------------------------
def test_single_output_gives_an_array():
    x = sg.vector("x")
    result = sg.function([x], x * 2)(np.array([1.0, 2.0]))
    assert isinstance(result, np.ndarray)
    np.testing.assert_array_equal(result, [2.0, 4.0])


def test_scalar_output_gives_a_0d_array():
    x = sg.vector("x")
    result = sg.function([x], x.sum())(np.array([1.0, 2.0]))
    assert isinstance(result, np.ndarray) and result.shape == ()
    assert result == 3.0


def test_list_of_outputs_gives_a_list():
    x = sg.vector("x")
    f = sg.function([x], [x * 2, x.sum(), x])
    result = f(np.array([1.0, 2.0]))
    assert isinstance(result, list) and len(result) == 3
    np.testing.assert_array_equal(result[0], [2.0, 4.0])
    assert result[1] == 3.0
    np.testing.assert_array_equal(result[2], [1.0, 2.0])
    one = sg.function([x], [x + 1])(np.array([1.0]))
    assert isinstance(one, list) and len(one) == 1
    assert sg.function([x], [], on_unused_input="ignore")(np.array([1.0])) == []


def test_no_outputs_gives_none():
    counter = sg.shared(0, name="counter")
    f = sg.function([], None, updates={counter: counter + 1})
    assert f() is None
    assert counter.get_value() == 1
    assert sg.function([], updates=[(counter, counter + 2)])() is None
    assert counter.get_value() == 3


def test_outputs_may_be_numbers_and_constants():
    x = sg.vector("x")
    f = sg.function([x], [x, sg.constant(np.arange(3))])
    np.testing.assert_array_equal(f(np.ones(2))[1], np.arange(3))


# --- updates ----------------------------------------------------------------------------------
def test_updates_are_simultaneous_so_two_shared_variables_swap():
    a = sg.shared(np.array([1.0, 2.0]), name="a")
    b = sg.shared(np.array([3.0, 4.0]), name="b")
    swap = sg.function([], [a, b], updates={a: b, b: a})
    old_a, old_b = swap()
    np.testing.assert_array_equal(old_a, [1.0, 2.0])
    np.testing.assert_array_equal(old_b, [3.0, 4.0])
    np.testing.assert_array_equal(a.get_value(), [3.0, 4.0])
    np.testing.assert_array_equal(b.get_value(), [1.0, 2.0])
    swap()
    np.testing.assert_array_equal(a.get_value(), [1.0, 2.0])
    np.testing.assert_array_equal(b.get_value(), [3.0, 4.0])


def test_updates_see_the_values_before_the_call():
    a = sg.shared(np.array([1.0, 2.0]), name="a")
    b = sg.shared(np.array([10.0, 20.0]), name="b")
    f = sg.function([], a + b, updates=[(a, a * 2), (b, b + a)])
    np.testing.assert_array_equal(f(), [11.0, 22.0])
    np.testing.assert_array_equal(a.get_value(), [2.0, 4.0])
    np.testing.assert_array_equal(b.get_value(), [11.0, 22.0])
    np.testing.assert_array_equal(f(), [13.0, 26.0])


def test_sgd_step_updates_in_place_correctly(rng):
    w_value = rng.normal(size=(3, 2))
    original = w_value.copy()
    w = sg.shared(w_value, name="w")
    x = sg.matrix("x")
    cost = ((x @ w) ** 2).sum()
    step = sg.function([x], cost, updates={w: w - 0.1 * sg.grad(cost, w)})
    x_value = rng.normal(size=(4, 3))
    expected_w = w_value.copy()
    for _ in range(3):
        expected_cost = ((x_value @ expected_w) ** 2).sum()
        gradient = 2 * x_value.T @ (x_value @ expected_w)
        np.testing.assert_allclose(step(x_value), expected_cost)
        expected_w = expected_w - 0.1 * gradient
        np.testing.assert_allclose(w.get_value(), expected_w)
    np.testing.assert_array_equal(w_value, original)  # the array given to sg.shared was copied


def test_float64_update_into_float32_shared_is_cast():
    w = sg.shared(np.ones(3, dtype="float32"), name="w")
    rate = sg.scalar("rate", dtype="float64")
    f = sg.function([rate], updates={w: w - rate * 2})
    f(0.25)
    value = w.get_value()
    assert value.dtype == np.float32
    np.testing.assert_array_equal(value, np.full(3, 0.5, dtype="float32"))
    f2 = sg.function([], updates={w: w * np.float64(2)})
    f2()
    assert w.get_value().dtype == np.float32


@pytest.mark.parametrize(
    "shared_dtype, update",
    [
        ("float64", lambda s: (s * 2).astype("int64")),
        ("int64", lambda s: s * 0.5),
        ("int32", lambda s: s.astype("float32")),
        ("bool", lambda s: s + 1),
    ],
)
def test_update_dtype_mismatch_is_an_error_naming_the_pair(shared_dtype, update):
    s = sg.shared(np.zeros(2, dtype=shared_dtype), name="state")
    new = update(s)
    new.name = "new_state"
    with pytest.raises(UpdateError, match=r"state.*new_state|new_state.*state"):
        sg.function([], updates={s: new})


def test_update_ndim_mismatch_is_an_error():
    s = sg.shared(np.zeros(2), name="state")
    with pytest.raises(UpdateError, match="state"):
        sg.function([], updates={s: s.sum()})


def test_two_updates_of_one_shared_variable_are_an_error():
    s = sg.shared(np.zeros(2), name="state")
    with pytest.raises(UpdateError, match="state"):
        sg.function([], updates=[(s, s + 1), (s, s + 2)])


def test_update_of_a_non_shared_variable_is_an_error():
    x = sg.vector("x")
    with pytest.raises(UpdateError, match="shared"):
        sg.function([x], updates={x: x + 1})


def test_update_with_a_python_value_converts_it():
    s = sg.shared(np.zeros(2), name="state")
    sg.function([], updates={s: np.array([1.0, 2.0])})()
    np.testing.assert_array_equal(s.get_value(), [1.0, 2.0])


def test_update_may_change_the_shape_of_a_shared_variable():
    s = sg.shared(np.zeros(2), name="state")
    grow = sg.function([], updates={s: sg.concatenate([s, s + 1])})
    grow()
    grow()
    np.testing.assert_array_equal(s.get_value(), [0, 0, 1, 1, 1, 1, 2, 2])


# --- givens -----------------------------------------------------------------------------------
@pytest.mark.parametrize("index", [sg.iscalar, sg.lscalar])
def test_givens_minibatch_pattern(rng, index):
    data_value = rng.normal(size=(10, 3))
    targets_value = rng.integers(0, 3, size=10)
    data = sg.shared(data_value, name="data")
    targets = sg.shared(targets_value, name="targets")
    x, t = sg.matrix("x"), sg.lvector("t")
    i = index("i")
    batch_size = 4
    cost = (x.sum(axis=1) * t).sum()
    f = sg.function(
        [i],
        [cost, x],
        givens={x: data[i * batch_size : (i + 1) * batch_size], t: targets[i * batch_size : (i + 1) * batch_size]},
    )
    for batch in range(3):
        rows = slice(batch * batch_size, (batch + 1) * batch_size)
        value, seen = f(batch)
        np.testing.assert_allclose(value, (data_value[rows].sum(axis=1) * targets_value[rows]).sum())
        np.testing.assert_array_equal(seen, data_value[rows])
    assert f(2)[1].shape == (2, 3)  # the last, short batch


def test_givens_may_replace_a_shared_variable():
    w = sg.shared(np.ones(2), name="w")
    other = sg.shared(np.array([5.0, 7.0]), name="other")
    x = sg.vector("x")
    f = sg.function([x], x * w, givens={w: other * 2})
    np.testing.assert_array_equal(f(np.ones(2)), [10.0, 14.0])


def test_givens_must_keep_dtype_and_ndim():
    x = sg.vector("x")
    with pytest.raises(TypeError, match="x"):
        sg.function([], x * 2, givens={x: sg.constant(np.ones((2, 2)))})
    with pytest.raises(TypeError, match="x"):
        sg.function([], x * 2, givens={x: sg.constant(np.ones(2, dtype="int64"))})


def test_givens_do_not_change_the_users_graph():
    x = sg.vector("x")
    y = x * 2
    data = sg.shared(np.array([1.0, 2.0]), name="data")
    sg.function([], y, givens={x: data})
    assert y.owner.inputs[0] is x
    np.testing.assert_array_equal(sg.function([x], y)(np.array([3.0])), [6.0])


def test_givens_input_still_needed_must_be_listed():
    x, i = sg.matrix("x"), sg.lscalar("index_input")
    data = sg.shared(np.ones((4, 2)), name="data")
    with pytest.raises(MissingInputError, match="index_input"):
        sg.function([], x.sum(), givens={x: data[i:]})


# --- inputs -----------------------------------------------------------------------------------
def test_missing_input_is_an_error_naming_it():
    x, y = sg.vector("x"), sg.vector("forgotten_input")
    with pytest.raises(MissingInputError, match="forgotten_input"):
        sg.function([x], x + y)
    with pytest.raises(MissingInputError, match="forgotten_input"):
        sg.function([x], y)


def test_unused_input_raise_warn_ignore():
    x, unused = sg.vector("x"), sg.vector("unused_input")
    with pytest.raises(UnusedInputError, match="unused_input"):
        sg.function([x, unused], x * 2)
    with pytest.warns(UserWarning, match="unused_input"):
        f = sg.function([x, unused], x * 2, on_unused_input="warn")
    np.testing.assert_array_equal(f(np.ones(2), np.zeros(7)), [2.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = sg.function([x, unused], x * 2, on_unused_input="ignore")
    np.testing.assert_array_equal(g(np.ones(2), np.zeros(7)), [2.0, 2.0])
    with pytest.raises(ValueError, match="on_unused_input"):
        sg.function([x], x, on_unused_input="sometimes")


def test_input_used_only_for_its_shape_is_used():
    x = sg.matrix("x")
    f = sg.function([x], sg.zeros(x.shape[0]))
    np.testing.assert_array_equal(f(np.ones((3, 2))), np.zeros(3))


def test_inputs_must_be_declared_variables():
    x = sg.vector("x")
    w = sg.shared(np.ones(2), name="w")
    with pytest.raises(TypeError, match="list"):
        sg.function(x, x * 2)
    with pytest.raises(TypeError, match="w"):
        sg.function([w], w * 2)
    with pytest.raises(TypeError):
        sg.function([x * 2], x)
    with pytest.raises(TypeError):
        sg.function([sg.constant(1.0)], x)
    with pytest.raises(ValueError, match="twice"):
        sg.function([x, x], x)


# --- argument conversion ----------------------------------------------------------------------
def test_python_numbers_and_lists_are_converted():
    x, s = sg.vector("x"), sg.scalar("s")
    n = sg.lscalar("n")
    f = sg.function([x, s, n], x * s + n)
    np.testing.assert_array_equal(f([1, 2], 3, 1), [4.0, 7.0])
    np.testing.assert_array_equal(f([1.5, True], 2.0, True), [4.0, 3.0])
    result = f((1.0, 2.0), np.float64(2), np.int32(0))
    assert result.dtype == np.float64
    np.testing.assert_array_equal(result, [2.0, 4.0])
    v = sg.vector("v", dtype="float32")
    g = sg.function([v], v * 2)
    assert g([1.0, 2.5]).dtype == np.float32  # Python floats convert to a float32 input


@pytest.mark.parametrize("source", ["int32", "int8", "uint16", "bool", "float32"])
def test_safe_casts_are_converted(source):
    x = sg.vector("x", dtype="float64")
    f = sg.function([x], x * 2)
    result = f(np.array([1, 0], dtype=source))
    assert result.dtype == np.float64
    np.testing.assert_array_equal(result, np.array([1, 0], dtype=source) * 2.0)


def test_float64_data_into_float32_input_is_refused_naming_the_input():
    x = sg.vector("float32_input", dtype="float32")
    f = sg.function([x], x * 2)
    value = np.array([1.0, 2.0])
    with pytest.raises(InputError, match="float32_input") as info:
        f(value)
    assert "float64" in str(info.value) and "float32" in str(info.value)
    assert isinstance(info.value, TypeError)
    g = sg.function([x], x * 2, allow_input_downcast=True)
    result = g(value)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, [2.0, 4.0])


@pytest.mark.parametrize(
    "value",
    [np.array([1.5, 2.0]), [1.5, 2.0], np.array([1.0, 2.0], dtype="float32"), np.array([1, 2], dtype="int64")],
    ids=repr,
)
def test_unsafe_data_into_integer_input_is_refused(value):
    x = sg.ivector("int_input")
    f = sg.function([x], x * 2)
    with pytest.raises(InputError, match="int_input"):
        f(value)
    g = sg.function([x], x * 2, allow_input_downcast=True)
    assert g(value).dtype == np.int32


def test_python_ints_that_do_not_fit_are_refused_naming_the_input():
    n, v = sg.iscalar("small_int"), sg.vector("bytes_input", dtype="uint8")
    f = sg.function([n, v], v * 2 + n.astype("uint8"))
    with pytest.raises(InputError, match="small_int"):
        f(2**40, [1, 2])
    with pytest.raises(InputError, match="bytes_input"):
        f(1, [1, -1])
    with pytest.raises(InputError, match="bytes_input"):
        f(1, [1, 300])
    np.testing.assert_array_equal(f(1, [1, 2]), np.array([3, 5], dtype="uint8"))


def test_python_float_into_integer_scalar_is_refused():
    n = sg.lscalar("count")
    f = sg.function([n], n * 2)
    assert f(3) == 6
    with pytest.raises(InputError, match="count"):
        f(2.5)


def test_wrong_ndim_is_refused_naming_the_input():
    x = sg.matrix("the_matrix")
    f = sg.function([x], x * 2)
    with pytest.raises(InputError, match="the_matrix") as info:
        f(np.ones(3))
    assert "2" in str(info.value) and "1" in str(info.value)
    with pytest.raises(InputError, match="the_matrix"):
        f(np.ones((2, 2, 2)))
    with pytest.raises(InputError, match="the_matrix"):
        f(5.0)


def test_wrong_static_length_is_refused_naming_the_input():
    x = sg.matrix("features", shape=(None, 3))
    f = sg.function([x], x.sum(axis=1))
    np.testing.assert_array_equal(f(np.ones((5, 3))), np.full(5, 3.0))
    with pytest.raises(InputError, match="features") as info:
        f(np.ones((5, 4)))
    assert "3" in str(info.value) and "4" in str(info.value)


def test_non_numbers_are_refused_naming_the_input():
    x = sg.vector("x_input")
    f = sg.function([x], x * 2)
    with pytest.raises(InputError, match="x_input"):
        f(["a", "b"])
    with pytest.raises(InputError, match="x_input"):
        f([[1.0], [2.0, 3.0]])
    with pytest.raises(InputError, match="x_input"):
        f(None)


def test_wrong_number_of_arguments_says_expected_and_given():
    x, y = sg.vector("x"), sg.vector("y")
    f = sg.function([x, y], x + y)
    with pytest.raises(InputError, match=r"\b2\b.*\b3\b") as info:
        f(np.ones(2), np.ones(2), np.ones(2))
    assert isinstance(info.value, TypeError)
    with pytest.raises(InputError, match=r"\b2\b.*\b1\b"):
        f(np.ones(2))
    with pytest.raises(InputError, match=r"\b0\b.*\b1\b"):
        sg.function([], sg.constant(1.0))(np.ones(1))


# --- a failing call -------------------------------------------------------------------------------
def test_a_failing_call_names_the_op_the_shapes_and_the_line():
    x, y = sg.matrix("x"), sg.matrix("y")
    product = sg.dot(x, y)
    line = line_here() - 1  # the line above built the dot
    f = sg.function([x, y], product * 2)
    with pytest.raises(NodeError) as info:
        f(np.ones((2, 3)), np.ones((4, 5)))
    message = str(info.value)
    assert "dot" in message
    assert "(2, 3)" in message and "(4, 5)" in message
    assert f"{THIS_FILE}:{line}" in message
    assert isinstance(info.value, ValueError)  # numpy's error class is kept


def test_a_failing_call_changes_no_shared_value():
    a = sg.shared(np.array([1.0, 2.0]), name="a")
    w = sg.shared(np.ones((2, 2)), name="w")
    counter = sg.shared(0, name="counter")
    x = sg.matrix("x")
    f = sg.function([x], (x @ w).sum(), updates={a: a + 1, counter: counter + 1, w: w - 0.1 * sg.dot(x.T, x)})
    f(np.ones((3, 2)))
    before = [a.get_value(), w.get_value(), counter.get_value()]
    with pytest.raises(ValueError, match=r"dot|matmul"):
        f(np.ones((3, 5)))
    for variable, value in zip([a, w, counter], before):
        np.testing.assert_array_equal(variable.get_value(), value)


@pytest.mark.parametrize("mode", ["fast_run", "fast_compile", "debug"])
def test_a_failing_update_after_in_place_updates_changes_nothing(mode):
    # The update of b fails only at the end; the updates of a and c could have been written in
    # place before it.
    a = sg.shared(np.array([1.0, 2.0, 3.0]), name="a")
    b = sg.shared(np.array([1.0, 2.0, 3.0]), name="b")
    c = sg.shared(np.array([5.0, 6.0, 7.0]), name="c")
    x = sg.vector("x")
    f = sg.function([x], None, updates=[(a, a + 1), (b, b + x), (c, c * 2)], mode=mode)
    f(np.ones(3))
    before = [a.get_value(), b.get_value(), c.get_value()]
    with pytest.raises(ValueError):
        f(np.ones(2))
    for variable, value in zip([a, b, c], before):
        np.testing.assert_array_equal(variable.get_value(), value)


def test_a_failing_call_does_not_advance_random_state():
    srng = sg.RandomStreams(seed=3)
    x = sg.vector("x")
    f = sg.function([x], srng.uniform((3,)) + x)
    reference = sg.function([x], srng.uniform((3,)) + x)
    with pytest.raises(ValueError):
        f(np.ones(2))
    srng.seed(3)
    first = f(np.zeros(3))
    srng.seed(3)
    with pytest.raises(ValueError):
        f(np.ones(2))
    np.testing.assert_array_equal(f(np.zeros(3)), first)
    del reference


def test_error_in_an_elementwise_node_names_it():
    x, y = sg.vector("x"), sg.vector("y")
    total = x + y
    line = line_here() - 1  # the statement above
    f = sg.function([x, y], sg.exp(total))
    with pytest.raises(ValueError, match="add") as info:
        f(np.ones(2), np.ones(3))
    assert f"{THIS_FILE}:{line}" in str(info.value)
    assert "(2,)" in str(info.value) and "(3,)" in str(info.value)


# --- the arrays returned belong to the caller -------------------------------------------------------
@pytest.mark.parametrize("mode", ["fast_run", "fast_compile", "debug"])
@pytest.mark.parametrize(
    "build",
    [
        lambda x: x,
        lambda x: x.T,
        lambda x: x[1:],
        lambda x: x.reshape((-1,)),
        lambda x: x[:, None],
        lambda x: x * 1,
        lambda x: x + 0,
        lambda x: -(-x),
        lambda x: x.dimshuffle(1, 0).T,
    ],
)
def test_outputs_never_alias_inputs(build, mode):
    x = sg.matrix("x")
    f = sg.function([x], build(x), mode=mode)
    value = np.arange(6.0).reshape(2, 3)
    result = f(value)
    assert not np.shares_memory(result, value)
    result[...] = -1
    np.testing.assert_array_equal(value, np.arange(6.0).reshape(2, 3))


@pytest.mark.parametrize("mode", ["fast_run", "fast_compile", "debug"])
def test_outputs_never_alias_shared_values(mode):
    w = sg.shared(np.arange(4.0), name="w")
    f = sg.function([], [w, w[1:], w.reshape((2, 2)), w * 1], mode=mode)
    for result in f():
        result[...] = -1
    np.testing.assert_array_equal(w.get_value(), np.arange(4.0))
    np.testing.assert_array_equal(f()[0], np.arange(4.0))


@pytest.mark.parametrize("mode", ["fast_run", "fast_compile", "debug"])
def test_outputs_are_not_overwritten_by_later_calls(mode):
    x = sg.vector("x")
    w = sg.shared(np.zeros(3), name="w")
    f = sg.function([x], [sg.exp(x) * 2 + 1, w, w + x], updates={w: w + x}, mode=mode)
    first = f(np.zeros(3))
    kept = [array.copy() for array in first]
    f(np.ones(3))
    f(np.full(3, 5.0))
    for array, copy in zip(first, kept):
        np.testing.assert_array_equal(array, copy)
    np.testing.assert_array_equal(w.get_value(), np.full(3, 6.0))


def test_output_returned_twice_gives_independent_arrays():
    x = sg.vector("x")
    y = x * 2
    w = sg.shared(np.ones(2), name="w")
    first, second, third, fourth = sg.function([x], [y, y, w, w])(np.array([1.0, 2.0]))
    assert first is not second and not np.shares_memory(first, second)
    first[0] = 100.0
    np.testing.assert_array_equal(second, [2.0, 4.0])
    third[0] = 100.0
    np.testing.assert_array_equal(fourth, [1.0, 1.0])


def test_outputs_of_constants_are_writable_copies():
    f = sg.function([], sg.constant(np.arange(3.0)) * 1)
    result = f()
    result[0] = 42.0
    np.testing.assert_array_equal(f(), np.arange(3.0))


def test_output_that_is_also_an_update_is_a_copy():
    w = sg.shared(np.zeros(2), name="w")
    new = w + 1
    f = sg.function([], [new, w], updates={w: new})
    result, old = f()
    np.testing.assert_array_equal(old, [0.0, 0.0])
    result[0] = -50.0
    np.testing.assert_array_equal(w.get_value(), [1.0, 1.0])
    f()
    np.testing.assert_array_equal(result, [-50.0, 1.0])
    np.testing.assert_array_equal(old, [0.0, 0.0])


# --- threads --------------------------------------------------------------------------------------
def _run_threads(count: int, target) -> list:
    errors: list = []

    def guarded(index: int) -> None:
        try:
            target(index)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_concurrent_calls_with_updates_are_serial():
    counter = sg.shared(0, name="counter")
    total = sg.shared(np.zeros(3), name="total")
    x = sg.vector("x")
    f = sg.function([x], counter, updates={counter: counter + 1, total: total + x})
    seen: list = []

    def work(index: int) -> None:
        for _ in range(200):
            seen.append(int(f(np.ones(3))))

    errors = _run_threads(8, work)
    assert not errors, errors
    assert counter.get_value() == 1600
    np.testing.assert_array_equal(total.get_value(), np.full(3, 1600.0))
    assert sorted(seen) == list(range(1600))  # each call saw its own, distinct value


def test_concurrent_pure_calls_give_correct_results(rng):
    x = sg.matrix("x")
    w = sg.shared(rng.normal(size=(4, 3)), name="w")
    f = sg.function([x], [sg.tanh(x @ w) * 2 + x.sum(), (x * x).sum(axis=1)])
    inputs = [rng.normal(size=(5, 4)) for _ in range(8)]
    expected = [[np.tanh(value @ w.get_value()) * 2 + value.sum(), (value * value).sum(axis=1)] for value in inputs]
    wrong: list = []

    def work(index: int) -> None:
        for _ in range(100):
            for result, reference in zip(f(inputs[index]), expected[index]):
                if not np.allclose(result, reference):
                    wrong.append(index)

    errors = _run_threads(8, work)
    assert not errors, errors
    assert not wrong


# --- modes ------------------------------------------------------------------------------------
def test_modes_give_equal_values(rng):
    x, y = sg.matrix("x"), sg.vector("y")
    w = sg.shared(rng.normal(size=(3, 3)), name="w")
    hidden = sg.tanh(x @ w + y) * 1 + 0
    outputs = [hidden.sum(axis=0), sg.maximum(hidden, 0.0).mean(), (hidden[1:] ** 2).max(axis=-1), sg.exp(-(-x)) / 2]
    x_value, y_value = rng.normal(size=(4, 3)), rng.normal(size=3)
    results = {
        mode: sg.function([x, y], outputs, mode=mode)(x_value, y_value)
        for mode in ("fast_run", "fast_compile", "debug")
    }
    for mode in ("fast_compile", "debug"):
        for a, b in zip(results["fast_run"], results[mode]):
            np.testing.assert_allclose(a, b, rtol=1e-12)
            assert a.dtype == b.dtype and a.shape == b.shape
    with pytest.raises(ValueError, match="mode"):
        sg.function([x, y], outputs, mode="turbo")


def test_debug_mode_raises_on_the_first_nan_naming_the_node():
    x = sg.vector("x")
    root = sg.sqrt(x)
    line = line_here() - 1  # the statement above
    f = sg.function([x], sg.log(root + 1), mode="debug")
    np.testing.assert_allclose(f(np.array([4.0])), np.log(3.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(NodeError, match="sqrt") as info:
            f(np.array([-1.0, 4.0]))
    message = str(info.value)
    assert "NaN" in message
    assert f"{THIS_FILE}:{line}" in message
    assert "log" not in message.split("\n")[0]


def test_debug_mode_raises_on_inf():
    x = sg.vector("x")
    f = sg.function([x], sg.exp(x) * 0.0, mode="debug")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(NodeError, match="Inf"):
            f(np.array([1000.0]))


def test_fast_run_does_not_check_nans():
    x = sg.vector("x")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isnan(sg.function([x], sg.sqrt(x))(np.array([-1.0]))[0])


# --- eval ---------------------------------------------------------------------------------------
def test_eval_with_and_without_inputs():
    x, y = sg.vector("x"), sg.vector("y")
    np.testing.assert_array_equal((x * 2 + y).eval({x: np.array([1.0, 2.0]), y: [1, 1]}), [3.0, 5.0])
    np.testing.assert_array_equal((x * 2).eval({x: [1.0]}), [2.0])
    np.testing.assert_array_equal((x * 2).eval({x: [3.0]}), [6.0])  # the cached function, new value
    assert sg.constant(2.0).eval() == 2.0
    assert (sg.constant(2) * 3).eval() == 6
    w = sg.shared(np.array([1.0, 2.0]), name="w")
    np.testing.assert_array_equal((w * 2).eval(), [2.0, 4.0])
    w.set_value(np.array([5.0]))
    np.testing.assert_array_equal((w * 2).eval(), [10.0])  # reads the current value
    assert isinstance((w.sum()).eval(), np.ndarray)


def test_eval_missing_input_names_it():
    x, y = sg.vector("x"), sg.vector("y_missing")
    with pytest.raises(MissingInputError, match="y_missing"):
        (x + y).eval({x: [1.0]})


def test_eval_never_changes_state():
    srng = sg.RandomStreams(seed=7)
    draw = srng.uniform((4,))
    first, second = draw.eval(), draw.eval()
    np.testing.assert_array_equal(first, second)
    f = sg.function([], draw)
    srng.seed(7)
    expected = [f(), f()]
    srng.seed(7)
    got = [f()]
    draw.eval()
    (draw * 2).eval()
    got.append(f())
    for a, b in zip(expected, got):
        np.testing.assert_array_equal(a, b)


# --- shared variables ---------------------------------------------------------------------------
def test_shared_dtypes():
    assert sg.shared(1.5).dtype == "float64"
    assert sg.shared(2).dtype == "int64"
    assert sg.shared(True).dtype == "bool"
    assert sg.shared(np.float32(1.0)).dtype == "float32"
    assert sg.shared(np.zeros(3, dtype="int16")).dtype == "int16"
    sg.config.floatX = "float32"
    assert sg.shared(1.5).dtype == "float32"
    assert sg.shared([1.0, 2.0]).dtype == "float32"
    assert sg.shared(np.zeros(3)).dtype == "float64"  # an array keeps its dtype


def test_shared_static_shape_is_unknown_unless_given():
    s = sg.shared(np.zeros((2, 3)))
    assert s.type.shape == (None, None)
    assert s.ndim == 2
    t = sg.shared(np.zeros((2, 3)), shape=(2, None))
    assert t.type.shape == (2, None)
    with pytest.raises(ValueError):
        sg.shared(np.zeros((2, 3)), shape=(2,))


def test_shared_copies_unless_borrowed():
    value = np.zeros(3)
    s = sg.shared(value, name="s")
    value[0] = 5.0
    assert s.get_value()[0] == 0.0
    copy = s.get_value()
    copy[1] = 7.0
    assert s.get_value()[1] == 0.0
    s.get_value(borrow=True)  # allowed to alias; changes nothing by itself
    new = np.ones(3)
    s.set_value(new)
    new[0] = 9.0
    np.testing.assert_array_equal(s.get_value(), np.ones(3))


def test_set_value_may_change_shape_but_not_dtype_or_ndim():
    s = sg.shared(np.zeros(3, dtype="float32"), name="weights")
    x = sg.vector("x", dtype="float32")
    f = sg.function([x], s * x)
    s.set_value(np.ones(5, dtype="float32"))
    np.testing.assert_array_equal(f(np.full(5, 2.0, dtype="float32")), np.full(5, 2.0))
    with pytest.raises(InputError, match="weights"):
        s.set_value(np.ones(5))  # float64 into float32
    with pytest.raises(InputError, match="weights"):
        s.set_value(np.ones((5, 1), dtype="float32"))
    s.set_value([1.0, 2.0])  # Python numbers convert
    assert s.get_value().dtype == np.float32
    s.set_value(np.array([1, 2], dtype="int8"))  # a safe cast converts
    assert s.get_value().dtype == np.float32
    np.testing.assert_array_equal(s.get_value(), [1.0, 2.0])


def test_set_value_keeps_a_declared_shape():
    s = sg.shared(np.zeros((2, 3)), name="fixed", shape=(2, 3))
    s.set_value(np.ones((2, 3)))
    with pytest.raises(InputError, match="fixed"):
        s.set_value(np.ones((2, 4)))
    np.testing.assert_array_equal(s.get_value(), np.ones((2, 3)))


def test_int_shared_refuses_floats():
    s = sg.shared(3, name="steps")
    with pytest.raises(InputError, match="steps"):
        s.set_value(2.5)
    s.set_value(4)
    assert s.get_value() == 4


def test_shared_refuses_variables_and_non_numbers():
    with pytest.raises(TypeError):
        sg.shared(sg.vector())
    with pytest.raises(TypeError):
        sg.shared("text")
    s = sg.shared(np.zeros(2), name="s")
    with pytest.raises(TypeError):
        s.set_value(sg.vector())


# --- declaring and misusing variables -----------------------------------------------------------
def test_tensor_requires_shape():
    with pytest.raises(TypeError, match="shape"):
        sg.tensor("x")
    x = sg.tensor("x", shape=(None, 784))
    assert x.ndim == 2 and x.type.shape == (None, 784) and x.dtype == "float64"
    assert sg.tensor(shape=()).ndim == 0
    assert sg.tensor(shape=(1, 2, 3, 4, 5), dtype="int8").dtype == "int8"


def test_declarations_check_their_shape():
    with pytest.raises(ValueError):
        sg.matrix(shape=(3,))
    with pytest.raises(ValueError):
        sg.vector(shape=(-1,))
    assert sg.tensor4(shape=(None, 3, 8, 8)).type.shape == (None, 3, 8, 8)
    for declare, dtype, ndim in [
        (sg.iscalar, "int32", 0),
        (sg.ivector, "int32", 1),
        (sg.imatrix, "int32", 2),
        (sg.lscalar, "int64", 0),
        (sg.lvector, "int64", 1),
        (sg.lmatrix, "int64", 2),
        (sg.tensor3, "float64", 3),
    ]:
        variable = declare("v")
        assert (variable.dtype, variable.ndim, variable.name) == (dtype, ndim, "v")
        assert variable.owner is None


@pytest.mark.parametrize("misuse", [iter, len, lambda v: list(v), lambda v: [i for i in v]])
def test_iteration_and_length_raise_clear_type_errors(misuse):
    x = sg.vector("my_vector")
    with pytest.raises(TypeError, match="my_vector"):
        misuse(x)
    with pytest.raises(TypeError):
        misuse(x > 0)


@pytest.mark.parametrize(
    ("truth", "of_a_variable"), [(bool, True), (lambda v: 1 if v else 0, 1), (lambda v: not v, False)]
)
def test_a_comparison_has_no_truth_value_but_other_variables_are_true(truth, of_a_variable):
    x = sg.vector("my_vector")
    assert truth(x) == of_a_variable  # Theano's rule: "if not W:" asks whether W was given
    with pytest.raises(TypeError, match=r"sg\.switch"):
        truth(x > 0)


def test_chained_comparison_is_refused():
    x = sg.vector("x")
    with pytest.raises(TypeError):
        0 < x < 1


def test_variable_attributes():
    x = sg.matrix("x", dtype="float32", shape=(None, 3))
    y = x.sum(axis=0)
    assert (x.name, x.dtype, x.ndim, x.type.shape, x.owner) == ("x", "float32", 2, (None, 3), None)
    assert y.owner is not None and y.owner.inputs[0] is x
    assert y.type.shape == (3,)
    assert y.name is None


# --- the compiled graph ------------------------------------------------------------------------
def test_function_exposes_its_graph():
    x = sg.vector("x")
    w = sg.shared(np.ones(3), name="w")
    f = sg.function([x], sg.exp(x) * w + 1, updates={w: w * 2})
    assert f.graph is not None
    nodes = list(f.graph.nodes)
    assert nodes and all(isinstance(node, sg.Apply) for node in nodes)
    names = {node.op.name for node in nodes}
    assert "exp" in names and "mul" in names
    assert f.graph.inputs[0] is x
    assert len(f.graph.outputs) == 1 and f.graph.updates[0][0] is w  # the output; the update
    assert "def " in f.source


# --- memory: values still needed are never overwritten --------------------------------------------
ALIASING_CASES = [
    (lambda y: [y[0], y + 1], lambda y: [y[0], y + 1]),
    (lambda y: [y.reshape((-1,)), y * 2], lambda y: [y.reshape(-1), y * 2]),
    (lambda y: [y.T, sg.set_subtensor(y[0], 0.0)], lambda y: [y.T, np.concatenate([np.zeros((1, 3)), y[1:]])]),
    (
        lambda y: [sg.inc_subtensor(y[:, 1], 1.0), y[:, 1:].sum()],
        lambda y: [y + np.array([0.0, 1.0, 0.0]), y[:, 1:].sum()],
    ),
    (lambda y: [y + 1, y * 2, y], lambda y: [y + 1, y * 2, y]),
    (lambda y: [(y + 1) * (y + 1), sg.exp(-y) + y], lambda y: [(y + 1) * (y + 1), np.exp(-y) + y]),
    (lambda y: [y[::-1] + y, y.dimshuffle("x", 0, 1) - y], lambda y: [y[::-1] + y, y[None] - y]),
]


@pytest.mark.parametrize("mode", ["fast_run", "fast_compile"])
@pytest.mark.parametrize("case", range(len(ALIASING_CASES)))
def test_values_still_needed_are_not_overwritten(rng, case, mode):
    build, reference = ALIASING_CASES[case]
    x = sg.matrix("x")
    f = sg.function([x], build(sg.exp(x)), mode=mode)
    value = rng.normal(size=(2, 3))
    for got, want in zip(f(value), reference(np.exp(value))):
        np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("mode", ["fast_run", "fast_compile"])
def test_updates_reading_each_other_are_simultaneous(mode):
    a = sg.shared(np.array([1.0, 2.0]), name="a")
    b = sg.shared(np.array([10.0, 20.0]), name="b")
    f = sg.function([], None, updates={a: a + b, b: b - a}, mode=mode)
    f()
    np.testing.assert_array_equal(a.get_value(), [11.0, 22.0])
    np.testing.assert_array_equal(b.get_value(), [9.0, 18.0])
    g = sg.function([], None, updates=[(a, a * 2), (b, a + b)], mode=mode)
    g()
    np.testing.assert_array_equal(a.get_value(), [22.0, 44.0])
    np.testing.assert_array_equal(b.get_value(), [20.0, 40.0])


def test_shared_value_borrowed_before_a_call_is_not_changed_by_it():
    w = sg.shared(np.zeros(3), name="w")
    f = sg.function([], None, updates={w: w + 1})
    copy = w.get_value()
    f()
    np.testing.assert_array_equal(copy, np.zeros(3))
    np.testing.assert_array_equal(w.get_value(), np.ones(3))


def test_concurrent_calls_of_two_functions_on_one_shared_variable():
    counter = sg.shared(np.zeros(2), name="counter")
    f = sg.function([], None, updates={counter: counter + 1})
    g = sg.function([], None, updates={counter: counter + 10})

    def work(index: int) -> None:
        for _ in range(200):
            (f if index % 2 else g)()

    errors = _run_threads(8, work)
    assert not errors, errors
    np.testing.assert_array_equal(counter.get_value(), np.full(2, 4 * 200 + 4 * 200 * 10.0))


def test_compiling_from_threads_at_once():
    x = sg.vector("x")
    y = sg.tanh(x) * 2 + x.sum()
    value = np.array([0.5, -1.0, 2.0])
    expected = np.tanh(value) * 2 + value.sum()
    results: list = []

    def work(index: int) -> None:
        for _ in range(5):
            f = sg.function([x], [y, x * index])
            out, scaled = f(value)
            results.append(np.allclose(out, expected) and np.allclose(scaled, value * index))
            results.append(np.allclose((y + index).eval({x: value}), expected + index))

    errors = _run_threads(4, work)
    assert not errors, errors
    assert len(results) == 40 and all(results)
    assert gc.isenabled()


def test_a_failed_compilation_leaves_garbage_collection_on():
    x = sg.vector("x")
    assert gc.isenabled()
    with pytest.raises(MissingInputError):
        sg.function([], x * 2)
    assert gc.isenabled()


def test_scalar_arithmetic_is_written_as_operators_on_numpy_scalars():
    # 0-d values: Python's operators on numpy scalars (constants held as such), several times
    # cheaper than ufunc calls, with the same dtype rules; the results are still 0-d arrays.
    a, b = sg.scalar("a"), sg.scalar("b", dtype="float32")
    f = sg.function([a, b], [(a * 2.0 - b) / (a + 1.0), b * np.float32(3)])
    body = f.source.split("try:")[1]
    assert " * " in body and " - " in body and " / " in body and not re.search(r"= f\d+\(", body)
    first, second = f(np.float64(3.0), np.float32(0.5))
    assert isinstance(first, np.ndarray) and first.dtype == np.float64 and first == (3.0 * 2.0 - 0.5) / 4.0
    assert second.dtype == np.float32 and second == np.float32(1.5)
