"""Shared state stays whole: all or none of a call's updates, values computed from the start of
the call whatever the caller passes, reads that never see half a commit, ``borrow=True`` meaning
the same in every mode, and the memory compiled functions leave behind."""

from __future__ import annotations

import gc
import linecache
import threading
import tracemalloc
import warnings

import numpy as np
import pytest

import symgraph as sg

MODES = [("fast_run", None), ("fast_compile", None), ("debug", None), ("fast_run", "python")]


def _compile(inputs, outputs, updates, mode, backend):
    return sg.function(inputs, outputs, updates=updates, mode=mode, backend=backend)


def _overflowing_pair():
    x = sg.vector("x")
    A = sg.shared(np.ones(3), name="A")
    B = sg.shared(np.full(3, 1e300), name="B")
    return x, A, B, [(A, A - x), (B, B * x)]


@pytest.mark.parametrize(("mode", "backend"), MODES)
def test_a_call_raising_while_computing_updates_changes_no_shared_value(mode, backend):
    x, A, B, updates = _overflowing_pair()
    f = _compile([x], [], updates, mode, backend)
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        f(np.full(3, 1e10))
    np.testing.assert_array_equal(A.get_value(), np.ones(3))
    np.testing.assert_array_equal(B.get_value(), np.full(3, 1e300))
    f(np.full(3, 2.0))  # and without the error setting, in place as usual
    np.testing.assert_array_equal(A.get_value(), -np.ones(3))


def test_warnings_turned_into_errors_change_no_shared_value_either():
    x, A, B, updates = _overflowing_pair()
    f = sg.function([x], [], updates=updates)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="warn"), pytest.raises(RuntimeWarning):
            f(np.full(3, 1e10))
    np.testing.assert_array_equal(A.get_value(), np.ones(3))
    np.testing.assert_array_equal(B.get_value(), np.full(3, 1e300))


def test_the_error_settings_are_read_afresh_at_every_call():
    # The answer for numpy's error state is remembered per state: a change between two calls,
    # by np.seterr as by np.errstate, and in another thread, must be seen.
    x, A, B, updates = _overflowing_pair()
    f = sg.function([x], [], updates=updates)
    f(np.ones(3))  # in place: nothing raises
    old = np.seterr(over="raise")
    try:
        with pytest.raises(FloatingPointError):
            f(np.full(3, 1e10))
    finally:
        np.seterr(**old)
    np.testing.assert_array_equal(A.get_value(), np.zeros(3))
    np.testing.assert_array_equal(B.get_value(), np.full(3, 1e300))
    failures = []

    def in_a_thread():
        with np.errstate(over="raise"):
            try:
                f(np.full(3, 1e10))
            except FloatingPointError as error:
                failures.append(error)

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert len(failures) == 1
    np.testing.assert_array_equal(B.get_value(), np.full(3, 1e300))


@pytest.mark.parametrize(("mode", "backend"), MODES)
def test_an_argument_that_is_a_shared_array_is_read_as_it_was(mode, backend):
    x = sg.vector("x")
    A = sg.shared(np.arange(3.0), name="A")
    B = sg.shared(np.arange(3.0) * 10, name="B")
    f = _compile([x], [], [(A, A - x), (B, B - x)], mode, backend)
    f(A.get_value(borrow=True))
    np.testing.assert_array_equal(A.get_value(), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(B.get_value(), [0.0, 9.0, 18.0])


def test_a_view_of_a_shared_array_as_argument_is_read_as_it_was():
    x = sg.vector("x")
    A = sg.shared(np.arange(6.0), name="A")
    f = sg.function([x], [], updates=[(A, A * 2 + sg.concatenate([x, x]))])
    f(A.get_value(borrow=True)[:3])
    np.testing.assert_array_equal(A.get_value(), [0, 3, 6, 6, 9, 12])


@pytest.mark.parametrize(("mode", "backend"), MODES)
def test_borrowed_arrays_follow_the_updates_in_every_mode(mode, backend):
    W = sg.shared(np.zeros(4), name="W")
    borrowed = W.get_value(borrow=True)
    copied = W.get_value()
    f = _compile([], [], [(W, W + 1)], mode, backend)
    f()
    f()
    np.testing.assert_array_equal(borrowed, [2.0] * 4)  # the shared variable's own array
    np.testing.assert_array_equal(copied, [0.0] * 4)  # a snapshot
    assert W.get_value(borrow=True) is borrowed


def test_an_update_changing_the_shape_replaces_the_array():
    W = sg.shared(np.zeros(4), name="W")
    borrowed = W.get_value(borrow=True)
    sg.function([], [], updates=[(W, sg.concatenate([W, W]))])()
    assert W.get_value().shape == (8,)
    np.testing.assert_array_equal(borrowed, np.zeros(4))


def test_get_value_never_sees_a_call_half_way_through_its_commit():
    W = sg.shared(np.zeros(4_000_000), name="W")
    step = sg.function([], [], updates=[(W, W + 1)])
    stop = threading.Event()

    def train() -> None:
        while not stop.is_set():
            step()

    worker = threading.Thread(target=train)
    worker.start()
    try:
        torn = 0
        for _ in range(17):
            value = W.get_value()
            torn += value[0] != value[-1]
    finally:
        stop.set()
        worker.join()
    assert torn == 0


# --- errors keep their class --------------------------------------------------------------------
def test_a_memory_error_inside_a_node_stays_a_memory_error_naming_the_node():
    n = sg.lscalar("n")
    f = sg.function([n], sg.zeros((n, n)))
    with pytest.raises(MemoryError) as raised:
        f(10**9)
    assert isinstance(raised.value, sg.errors.NodeError)
    assert "alloc" in str(raised.value) and "test_state.py" in str(raised.value)


class _CastsWrongly(sg.Op):
    def output_types(self, x):
        return [x]

    def perform(self, x):
        target = np.ones(x.shape, dtype=np.int64)
        np.add(target, x, out=target)  # numpy's own casting error, with its own constructor
        return x


def test_numpys_casting_error_keeps_its_class():
    x = sg.vector("x")
    f = sg.function([x], _CastsWrongly()(x))
    with pytest.raises(np._core._exceptions._UFuncOutputCastingError) as raised:
        f([0.5])
    assert isinstance(raised.value, sg.errors.NodeError) and "_casts_wrongly" in str(raised.value)


# --- names and memory -----------------------------------------------------------------------------
def test_any_function_name_compiles_and_shows_in_errors():
    x = sg.vector("x")
    f = sg.function([x], x.reshape((2, 2)), name="odd\0name\n")
    with pytest.raises(ValueError, match="reshape"):
        f([1.0])
    with pytest.raises(sg.errors.InputError, match="odd\0name"):
        f()
    with pytest.raises(TypeError, match="name is a string"):
        sg.function([x], x, name=3)


def test_compiled_functions_leave_nothing_behind():
    x = sg.vector("x")
    y = sg.exp(x) * 2 + 1

    def compile_and_drop() -> None:
        f = sg.function([x], y)
        f(np.ones(3))

    for _ in range(50):  # warm up every cache that is meant to be there
        compile_and_drop()
    gc.collect()
    cached = len(linecache.cache)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(2000):
            compile_and_drop()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 2_000_000
    assert len(linecache.cache) <= cached
