"""Fusions (``symgraph/rewrite/fusion.py``) and the memory the numpy kernels recycle: the same
values as without them, and the memory of no live array reused."""

from __future__ import annotations

import numpy as np
import pytest

import symgraph as sg
from symgraph.backends.numpy import workspace
from symgraph.nn.pool import MaxPool2d, MaxPool2dGrad
from symgraph.ops.elemwise import add
from symgraph.ops.shape import SumTo


def _conv_relu_pool_step(pool=2, stride=None, padding=0):
    x = sg.tensor4("x")
    w = sg.shared(np.random.default_rng(0).normal(size=(3, 2, 3, 3)), name="w")
    h = sg.nn.relu(sg.nn.conv2d(x, w, padding=1))
    pooled = sg.nn.max_pool2d(h, pool, stride=stride, padding=padding)
    cost = (pooled * pooled).sum()
    return x, sg.grad(cost, [x, w])


def _gt_nodes(f):
    return [node for node in f.nodes if node.op == sg.gt]


@pytest.mark.parametrize(("pool", "stride", "padding"), [(2, None, 0), (3, 1, 1), ((2, 3), (2, 1), (1, 0))])
def test_the_relu_mask_moves_before_the_pooling_gradient_and_changes_nothing(pool, stride, padding):
    x, gradients = _conv_relu_pool_step(pool, stride, padding)
    fused = sg.function([x], gradients)
    plain = sg.function([x], gradients, mode="fast_compile")
    (mask,) = _gt_nodes(fused)
    route = next(node for node in fused.nodes if isinstance(node.op, MaxPool2dGrad))
    # The mask compares the pooled array, not the full-size one (and the ReLU moved after the
    # pooling, which pools the convolution itself: pool_first).
    assert mask.inputs[0].owner.op == sg.nn.relu and mask.inputs[0].owner.inputs[0] is route.inputs[1]
    rng = np.random.default_rng(1)
    values = rng.normal(size=(2, 2, 6, 6))
    ties = np.round(values)  # many windows hold their maximum twice
    for value in (values, ties):
        for got, expected in zip(fused(value), plain(value)):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_the_python_backend_agrees_on_the_fused_graph():
    x, gradients = _conv_relu_pool_step()
    value = np.round(np.random.default_rng(2).normal(size=(2, 2, 6, 6)) * 2)
    numpy_values = sg.function([x], gradients)(value)
    python_values = sg.function([x], gradients, backend="python")(value)
    for got, expected in zip(numpy_values, python_values):
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_a_routed_gradient_used_elsewhere_is_not_fused():
    z = sg.tensor4("z")
    g = sg.tensor4("g")
    pooled = sg.nn.max_pool2d(z, 2)
    routed = MaxPool2dGrad((2, 2), (2, 2), (0, 0))(z, pooled, g)
    f = sg.function([z, g], [routed * sg.gt(z, 0), routed])
    assert len([node for node in f.nodes if isinstance(node.op, MaxPool2dGrad)]) == 1
    assert _gt_nodes(f)[0].inputs[0] is z
    value = np.random.default_rng(3).normal(size=(1, 1, 4, 4))
    gradient = np.ones((1, 1, 2, 2))
    masked, full = f(value, gradient)
    np.testing.assert_allclose(masked, full * (value > 0))


def test_a_mask_of_another_array_is_not_moved():
    z, other, g = sg.tensor4("z"), sg.tensor4("other"), sg.tensor4("g")
    routed = MaxPool2dGrad((2, 2), (2, 2), (0, 0))(z, sg.nn.max_pool2d(z, 2), g)
    f = sg.function([z, other, g], routed * sg.gt(other, 0))
    assert _gt_nodes(f)[0].inputs[0] is other
    rng = np.random.default_rng(4)
    value, mask_source, gradient = rng.normal(size=(1, 1, 4, 4)), rng.normal(size=(1, 1, 4, 4)), np.ones((1, 1, 2, 2))
    plain = sg.function([z, other, g], routed * sg.gt(other, 0), mode="fast_compile")
    np.testing.assert_allclose(f(value, mask_source, gradient), plain(value, mask_source, gradient))


# --- pooling before the ReLU and the bias (pool_first) and the bias gradient (sum_of_routed) -------
def _conv_bias_relu_pool(pool=2, stride=None, padding=0, relu=True, bias_shape=None, channels_in=2):
    x = sg.tensor4("x")
    rng = np.random.default_rng(10)
    w = sg.shared(rng.normal(size=(3, channels_in, 3, 3)), name="w")
    b = sg.shared(rng.normal(size=bias_shape or (3,)), name="b")
    bias = b.dimshuffle("x", 0, "x", "x") if bias_shape is None else b
    h = sg.nn.conv2d(x, w, padding=1) + bias
    h = sg.nn.relu(h) if relu else h
    pooled = sg.nn.max_pool2d(h, pool, stride=stride, padding=padding)
    cost = (pooled * pooled).sum()
    return x, w, b, h, pooled, cost


def _relu_inputs(f):
    return [node.inputs[0] for node in f.nodes if node.op == sg.nn.relu]


def _assert_pooled_first(f):
    (relu_input,) = _relu_inputs(f)
    assert relu_input.owner.op == add and isinstance(relu_input.owner.inputs[0].owner.op, MaxPool2d)


def _assert_same(f, plain, *values):
    for got, expected in zip(f(*values), plain(*values)):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("pool", "stride", "padding"), [(2, None, 0), (3, 1, 1), ((2, 3), (2, 1), (1, 0))])
@pytest.mark.parametrize("relu", [True, False])
def test_the_pooling_moves_before_the_relu_and_the_bias_and_changes_nothing(pool, stride, padding, relu):
    x, w, b, _, pooled, cost = _conv_bias_relu_pool(pool, stride, padding, relu)
    outputs = [pooled, *sg.grad(cost, [x, w, b])]
    f = sg.function([x], outputs)
    plain = sg.function([x], outputs, mode="fast_compile")
    # What is pooled is the convolution itself; the bias and the ReLU come after, on the pooled array.
    (pool_node,) = [node for node in f.nodes if isinstance(node.op, MaxPool2d)]
    assert pool_node.inputs[0].owner.op.__class__.__name__ == "ConvContraction"
    routes = [node for node in f.nodes if isinstance(node.op, MaxPool2dGrad)]
    (route,) = routes
    assert route.inputs[0] is pool_node.inputs[0] and route.inputs[1] is pool_node.outputs[0]
    if relu:
        (relu_input,) = _relu_inputs(f)
        assert relu_input.owner.inputs[0] is pool_node.outputs[0]
    rng = np.random.default_rng(11)
    _assert_same(f, plain, rng.normal(size=(2, 2, 6, 6)))
    _assert_same(f, plain, np.round(rng.normal(size=(2, 2, 6, 6))))  # many ties: zeros after the ReLU
    _assert_same(f, sg.function([x], outputs, backend="python"), rng.normal(size=(2, 2, 6, 6)))


def test_a_pooling_with_a_bias_and_relu_before_it_has_the_right_gradient():
    def cost(x, w, b):
        h = sg.nn.relu(sg.nn.conv2d(x, w, padding=1) + b.dimshuffle("x", 0, "x", "x"))
        return (sg.nn.max_pool2d(h, 2) ** 2).sum()

    rng = np.random.default_rng(12)
    sg.verify_grad(cost, [rng.normal(size=(2, 2, 4, 6)), rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3)])


def test_the_bias_gradient_sums_the_pooled_gradient():
    x, _, b, _, _, cost = _conv_bias_relu_pool()
    f = sg.function([x], sg.grad(cost, b))
    (sums,) = [node for node in f.nodes if isinstance(node.op, SumTo) and node.op.static_shape[2:] == (1, 1)]
    assert not isinstance(sums.inputs[0].owner.op, MaxPool2dGrad)  # not the full-size routed gradient
    value = np.random.default_rng(19).normal(size=(2, 2, 6, 6))
    np.testing.assert_allclose(f(value), sg.function([x], sg.grad(cost, b), mode="fast_compile")(value), rtol=1e-12)


def test_a_prediction_pools_before_the_relu_too():
    x, _, _, _, pooled, _ = _conv_bias_relu_pool()
    f = sg.function([x], pooled)
    _assert_pooled_first(f)
    value = np.random.default_rng(13).normal(size=(3, 2, 4, 4))
    _assert_same(f, sg.function([x], pooled, mode="fast_compile"), value)


def test_a_bias_broadcasting_the_convolution_over_channels_gives_the_same_gradients():
    # One output channel made three by the bias: the three channels' gradients reach the one.
    x = sg.tensor4("x")
    rng = np.random.default_rng(14)
    w = sg.shared(rng.normal(size=(1, 2, 3, 3)), name="w")
    b = sg.shared(rng.normal(size=3), name="b")
    pooled = sg.nn.max_pool2d(sg.nn.relu(sg.nn.conv2d(x, w, padding=1) + b.dimshuffle("x", 0, "x", "x")), 2)
    outputs = [pooled, *sg.grad((pooled * pooled).sum(), [x, w, b])]
    f = sg.function([x], outputs)
    _assert_pooled_first(f)
    _assert_same(f, sg.function([x], outputs, mode="fast_compile"), rng.normal(size=(2, 2, 4, 4)))


@pytest.mark.parametrize("bias_shape", [(1, 1, 1, 4), (4,)])
def test_a_bias_varying_within_windows_stays_before_the_pooling(bias_shape):
    # (Not known to be one value per window: the ReLU alone moves after the pooling.)
    x, w, b, _, pooled, cost = _conv_bias_relu_pool(bias_shape=bias_shape)
    outputs = [pooled, *sg.grad(cost, [x, w, b])]
    f = sg.function([x], outputs)
    (pool_node,) = [node for node in f.nodes if isinstance(node.op, MaxPool2d)]
    assert pool_node.inputs[0].owner.op == add and pool_node.inputs[0].owner.inputs[1] is b
    _assert_same(f, sg.function([x], outputs, mode="fast_compile"), np.random.default_rng(15).normal(size=(2, 2, 4, 4)))


def test_a_relu_read_elsewhere_stays_before_the_pooling():
    x, w, b, h, pooled, cost = _conv_bias_relu_pool()
    outputs = [h, pooled, *sg.grad(cost, [x, w, b])]
    f = sg.function([x], outputs)
    (pool_node,) = [node for node in f.nodes if isinstance(node.op, MaxPool2d)]
    assert pool_node.inputs[0].owner.op == sg.nn.relu
    _assert_same(f, sg.function([x], outputs, mode="fast_compile"), np.random.default_rng(16).normal(size=(2, 2, 4, 4)))


def test_a_bias_of_a_wider_dtype_stays_before_the_pooling():
    # (The ReLU alone moves after the pooling.)
    x = sg.tensor4("x", dtype="float32")
    w = sg.shared(np.random.default_rng(17).normal(size=(3, 2, 3, 3)).astype("float32"), name="w")
    b = sg.shared(np.zeros(3), name="b")  # float64: the sum is float64, z is float32
    pooled = sg.nn.max_pool2d(sg.nn.relu(sg.nn.conv2d(x, w, padding=1) + b.dimshuffle("x", 0, "x", "x")), 2)
    outputs = [pooled, *sg.grad((pooled * pooled).sum(), [w, b])]
    f = sg.function([x], outputs)
    (pool_node,) = [node for node in f.nodes if isinstance(node.op, MaxPool2d)]
    assert pool_node.inputs[0].owner.op == add and pool_node.inputs[0].owner.inputs[1].owner.inputs[0] is b
    value = np.random.default_rng(18).normal(size=(2, 2, 4, 4)).astype("float32")
    for got, expected in zip(f(value), sg.function([x], outputs, mode="fast_compile")(value)):
        assert got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected, rtol=1e-5)


# --- recycled memory ----------------------------------------------------------------------------
def test_large_arrays_reuse_the_memory_of_dropped_ones():
    shape = (workspace.THRESHOLD // 8 + 3,)
    first = workspace.empty(shape, np.float64)
    address = first.ctypes.data
    del first
    second = workspace.empty(shape, np.float64)
    assert second.ctypes.data == address
    assert second.shape == shape and second.dtype == np.float64 and second.flags.c_contiguous
    assert second.flags.writeable


def test_memory_is_not_reused_while_a_view_lives():
    shape = (4, workspace.THRESHOLD // 16)
    array = workspace.empty(shape, np.float32)
    array[...] = 7.0
    view = array.T[1:]
    address = array.ctypes.data
    del array
    other = workspace.empty(shape, np.float32)
    assert other.ctypes.data != address
    other[...] = -1.0
    assert np.all(view == 7.0)


def test_small_arrays_come_from_numpy():
    small = workspace.empty((3, 4), np.int64)
    assert small.base is None and small.shape == (3, 4)
    np.testing.assert_array_equal(workspace.zeros((2, workspace.THRESHOLD), np.float32), 0)


def test_no_more_than_the_limit_is_kept(monkeypatch):
    monkeypatch.setattr(workspace, "LIMIT", workspace.THRESHOLD * 2)
    monkeypatch.setattr(workspace, "_free", {})
    monkeypatch.setattr(workspace, "_kept", 0)
    arrays = [workspace.empty((workspace.THRESHOLD,), np.uint8) for _ in range(5)]
    del arrays
    assert workspace._kept <= workspace.THRESHOLD * 2
    assert sum(len(kept) for kept in workspace._free.values()) == 2


def test_a_training_step_gives_the_same_values_call_after_call():
    x, gradients = _conv_relu_pool_step()
    f = sg.function([x], gradients)
    value = np.random.default_rng(5).normal(size=(4, 2, 8, 8))
    first = [array.copy() for array in f(value)]
    kept = f(value)  # held while the next calls run: their memory must not be reused
    for _ in range(3):
        again = f(value)
        for got, expected in zip(again, first):
            np.testing.assert_array_equal(got, expected)
    for got, expected in zip(kept, first):
        np.testing.assert_array_equal(got, expected)


def _recording_mallopt(monkeypatch, result=1):
    calls = []

    def mallopt(parameter, value):
        calls.append((parameter, value))
        return result

    monkeypatch.setattr(workspace, "_asked", None)
    monkeypatch.setattr(workspace, "_glibc_mallopt", lambda: mallopt)
    return calls


def test_linking_a_program_asks_glibc_once_to_keep_freed_memory(monkeypatch):
    calls = _recording_mallopt(monkeypatch)
    monkeypatch.delenv("SYMGRAPH_KEEP_FREED_MEMORY", raising=False)
    x = sg.vector("x")
    f = sg.function([x], x + 1)
    sg.function([x], x * 2)
    assert calls == [(workspace._M_MMAP_THRESHOLD, 32 << 20), (workspace._M_TRIM_THRESHOLD, workspace.LIMIT)]
    assert workspace.keep_freed_memory() is True
    np.testing.assert_array_equal(f(np.arange(3.0)), [1.0, 2.0, 3.0])


def test_programs_compiled_for_another_backend_leave_glibc_alone(monkeypatch):
    # The dask backend runs numpy programs on its workers, whose memory Dask watches.
    from symgraph.backends.numpy import BACKEND
    from symgraph.graph.fgraph import FunctionGraph

    calls = _recording_mallopt(monkeypatch)
    x = sg.vector("x")
    run = BACKEND.compile_inner(FunctionGraph([x], [x * 3]))
    np.testing.assert_array_equal(run(np.arange(2.0))[0], [0.0, 3.0])
    assert calls == []


@pytest.mark.parametrize(("setting", "result", "expected"), [("0", 1, False), ("1", 0, False), ("1", 1, True)])
def test_keeping_freed_memory_can_be_turned_off_and_reports_a_refusal(monkeypatch, setting, result, expected):
    calls = _recording_mallopt(monkeypatch, result)
    monkeypatch.setenv("SYMGRAPH_KEEP_FREED_MEMORY", setting)
    assert workspace.keep_freed_memory() is expected
    assert len(calls) == (0 if setting == "0" else 2)


@pytest.mark.parametrize(
    ("limit", "blocks", "kept"), [(192 << 20, 3 << 20, 24 << 20), (12 << 30, 32 << 20, workspace.LIMIT)]
)
def test_a_process_with_a_memory_limit_keeps_in_proportion_to_it(monkeypatch, limit, blocks, kept):
    calls = _recording_mallopt(monkeypatch)
    monkeypatch.delenv("SYMGRAPH_KEEP_FREED_MEMORY", raising=False)
    assert workspace.keep_freed_memory(limit) is True
    assert calls == [(workspace._M_MMAP_THRESHOLD, blocks), (workspace._M_TRIM_THRESHOLD, kept)]
    assert workspace.keep_freed_memory() is True  # the first call decided
    assert len(calls) == 2


def test_another_c_library_is_left_alone(monkeypatch):
    monkeypatch.setattr(workspace, "_asked", None)
    monkeypatch.setattr(workspace, "_glibc_mallopt", lambda: None)
    monkeypatch.delenv("SYMGRAPH_KEEP_FREED_MEMORY", raising=False)
    assert workspace.keep_freed_memory() is False


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="glibc")
def test_glibcs_mallopt_is_found_on_linux():
    assert workspace._glibc_mallopt() is not None


# --- kernels in parts on several threads -------------------------------------------------------
@pytest.mark.parametrize("parts", [1, 2, 3])
def test_kernels_split_across_threads_compute_what_the_ops_do(monkeypatch, parts):
    from symgraph.backends.numpy import threads

    monkeypatch.setattr(threads, "MINIMUM", 0)  # split even the small arrays of a test
    monkeypatch.setattr(threads, "cores", lambda: parts)
    x = sg.tensor4("x")
    w = sg.shared(np.random.default_rng(6).normal(size=(4, 3, 3, 3)), name="w")
    h = sg.nn.relu(sg.nn.conv2d(x, w, padding=1))
    pooled = sg.nn.max_pool2d(h, 2)
    cost = (pooled * pooled).sum() + sg.nn.max_pool2d(h, 3, stride=1, padding=1).sum()
    outputs = [cost, *sg.grad(cost, [x, w])]
    value = np.round(np.random.default_rng(7).normal(size=(3, 3, 6, 8)) * 2)  # with ties
    for got, expected in zip(sg.function([x], outputs)(value), sg.function([x], outputs, backend="python")(value)):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_a_failing_part_makes_the_kernel_raise(monkeypatch):
    from symgraph.backends.numpy import threads

    monkeypatch.setattr(threads, "cores", lambda: 2)
    done = []

    def work(part):
        if part.start:
            raise ValueError("second part")
        done.append(part)

    with pytest.raises(ValueError, match="second part"):
        threads.in_parts(work, 10, threads.MINIMUM)
    assert done == [slice(0, 5)]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_kernels_split_across_threads_work_in_a_forked_child(monkeypatch):
    import multiprocessing

    from symgraph.backends.numpy import threads

    monkeypatch.setattr(threads, "MINIMUM", 0)
    monkeypatch.setattr(threads, "cores", lambda: 2)
    x = sg.tensor4("x")
    f = sg.function([x], sg.nn.max_pool2d(x, 2))
    value = np.random.default_rng(8).normal(size=(2, 3, 4, 4))
    expected = f(value)  # the parent's worker thread now exists
    context = multiprocessing.get_context("fork")
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(target=lambda: sending.send(f(value)), daemon=True)  # forked: nothing pickled
    child.start()
    if not receiving.poll(60):
        child.terminate()
        raise AssertionError("the child computed nothing: its kernel's threads hung")
    got = receiving.recv()
    child.join()
    np.testing.assert_array_equal(got, expected)
