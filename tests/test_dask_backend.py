"""The dask backend on Dask's threaded scheduler: the numpy backend's values on chunked data, every
op translated, data-parallel training, lazy results, random draws that depend on the seed and the
chunking only, errors that name the node, and updates committed all or none.

Skipped, with the reason, where the ``dask`` extra is not installed (``pip install -e '.[dask]'``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="the dask extra is not installed: pip install -e '.[dask]'")
import dask  # noqa: E402
from test_backends import BLOCKS, SEEDS, _blocks, _model  # noqa: E402

import symgraph as sg  # noqa: E402
from symgraph.backends.dask import RechunkWarning, dask_kernel, program, register_per_block  # noqa: E402
from symgraph.backends.dask.random import KEY_WORDS  # noqa: E402


@pytest.fixture(autouse=True)
def _threaded_scheduler():
    with dask.config.set(scheduler="threads"):
        yield


def realize(value):
    return value.compute() if isinstance(value, da.Array) else value


def realize_all(values):
    """Every value computed, the dask arrays among them in one ``dask.compute`` (which computes
    what they share once)."""
    return list(dask.compute(*values))


def chunked(values, rows, columns):
    """The differential model's arguments as dask arrays: ``x`` in ``(rows, columns)`` chunks,
    the column vector and the labels in chunks of ``rows``."""
    x, column, labels = values
    return [
        da.from_array(x, chunks=(rows, columns)),
        da.from_array(column, chunks=rows),
        da.from_array(labels, chunks=rows),
    ]


# --- the numpy backend's values, on chunked data ----------------------------------------------------
def _run(seed, blocks, backend, phase, chunks=None):
    inputs, values, cost, parameters, variables = _model(seed, blocks)
    gradients = sg.grad(cost, [inputs[0], inputs[1]] + parameters, disconnected_inputs="ignore")
    f = sg.function(inputs, [cost, *gradients], phase=phase, backend=backend, on_unused_input="ignore")
    arguments = chunked(values, *chunks) if chunks else values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RechunkWarning)  # blocks needing whole rows or columns
        results = [realize_all(f(*arguments)) for _ in range(2)]
    state = [variables[name].get_value() for name in ("running_mean", "running_var")]
    return results, state


CHUNKINGS = {"rows": (1, 4), "blocks": (2, 2), "elements": (1, 1)}
# Each seed's graph in both phases, on one of the chunkings in turn (every chunking meets every
# block over the seeds).
CASES = [
    (seed, phase, name) for seed in SEEDS for phase in ("train", "predict") for name in [list(CHUNKINGS)[seed % 3]]
]


@pytest.mark.parametrize(("seed", "phase", "chunking"), CASES)
def test_dask_gives_the_numpy_backends_values_on_chunked_data(seed, phase, chunking):
    chunks = CHUNKINGS[chunking]
    blocks = [name for name in _blocks(seed) if name != "dropout"]  # no random nodes
    got, got_state = _run(seed, blocks, "dask", phase, chunks)
    expected, expected_state = _run(seed, blocks, "numpy", phase)
    for call_got, call_expected in zip(got, expected):
        for value, reference in zip(call_got, call_expected):
            np.testing.assert_allclose(value, reference, rtol=1e-9, atol=1e-12, err_msg=str(blocks))
    for value, reference in zip(got_state, expected_state):
        np.testing.assert_allclose(value, reference, rtol=1e-9, atol=1e-12, err_msg=str(blocks))


@pytest.mark.parametrize("seed", [0, 3, 6, 9])
def test_op_by_op_on_rows_gives_the_numpy_backends_values(seed, monkeypatch):
    # Rows are what regions run on (a program per chunk): here every node goes op by op.
    monkeypatch.setattr(program, "REGIONS", False)
    test_dask_gives_the_numpy_backends_values_on_chunked_data(seed, "train", "rows")


def test_every_block_but_dropout_is_covered():
    covered = set().union(*(_blocks(seed) for seed in SEEDS)) - {"dropout"}
    assert covered == set(BLOCKS) - {"dropout"}


def _op_classes():
    found, stack = set(), [sg.Op]
    while stack:
        for subclass in stack.pop().__subclasses__():
            stack.append(subclass)
            # Ops of the contract, not the dask backend's own (a region's chunk draw runs in numpy).
            module = subclass.__module__
            if module.startswith("symgraph.") and not module.startswith("symgraph.backends."):
                found.add(subclass)
    return found


def test_every_op_of_the_contract_has_a_dask_translation():
    from symgraph.nn.dropout import DropoutMask
    from symgraph.nn.pool import _Pooling
    from symgraph.ops.random import RandomOp
    from symgraph.ops.subgraph import InnerGraphOp, OpFromGraph, PhaseGraph

    # Inlined or specialized before any backend sees them, or bases of other ops.
    never_linked = {OpFromGraph, PhaseGraph, DropoutMask, InnerGraphOp, _Pooling}
    classes = _op_classes() - never_linked
    assert len(classes) > 40 and RandomOp in classes
    fallback = dask_kernel.dispatch(sg.Op)
    missing = sorted(cls.__name__ for cls in classes if dask_kernel.dispatch(cls) is fallback)
    assert not missing, f"ops without a dask translation: {missing}"


def test_gradients_written_slice_by_slice_into_an_uninitialized_array_agree():
    # Slices covering a static-shaped gradient are written into an AllocEmpty (no zero fill);
    # the dask backend gives zeros there, then the writes, as the reference computation.
    from symgraph.ops.shape import AllocEmpty

    x = sg.matrix("x", shape=(8, 6))
    cost = (sg.tanh(x[:, :2]) ** 2).sum() + sg.nn.sigmoid(x[:, 2:]).sum()
    gradient = sg.grad(cost, x)
    f = sg.function([x], gradient, backend="dask")
    assert any(isinstance(node.op, AllocEmpty) for node in f.nodes)
    values = np.random.default_rng(4).normal(size=(8, 6))
    _agree([x], [gradient], [values], [da.from_array(values, chunks=(4, 6))])


# --- data-parallel training --------------------------------------------------------------------------
def _mlp(backend, dropout=False, seed=0):
    rng = np.random.default_rng(seed)
    x, y = sg.matrix("x", shape=(None, 8)), sg.ivector("y")
    params, h = [], x
    for layer, (fan_in, fan_out) in enumerate([(8, 16), (16, 16), (16, 3)]):
        W = sg.shared(rng.normal(size=(fan_in, fan_out)) * 0.5, name=f"W{layer}")
        b = sg.shared(rng.normal(size=fan_out) * 0.1, name=f"b{layer}")
        params += [W, b]
        h = h @ W + b
        if layer < 2:
            h = sg.nn.relu(h)
            if dropout:
                h = sg.nn.dropout(h, rate=0.3, rng=sg.RandomStreams(seed))
    probabilities = sg.nn.softmax(h)
    loss = sg.nn.categorical_crossentropy(probabilities, y).mean()
    train = sg.function([x, y], loss, updates=sg.optim.adam(loss, params, 0.01), phase="train", backend=backend)
    predict = sg.function([x], probabilities, phase="predict", backend=backend)
    return train, predict, params


def _data(rows=120, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 8))
    return X, (X[:, 0] + X[:, 1] > 0).astype("int32") + (X[:, 2] > 1).astype("int32")


@pytest.mark.parametrize("chunk", [120, 50, 7])
def test_training_on_a_chunked_batch_gives_the_numpy_backends_weights(chunk):
    X, Y = _data()
    train, _, params = _mlp("numpy")
    dask_train, _, dask_params = _mlp("dask")
    for step in range(4):
        loss = train(X, Y)
        dask_loss = dask_train(da.from_array(X, chunks=(chunk, 8)), da.from_array(Y, chunks=chunk))
        assert isinstance(dask_loss, np.ndarray) and dask_loss.shape == ()  # computed, like numpy's
        np.testing.assert_allclose(dask_loss, loss, rtol=1e-6)
    for param, dask_param in zip(params, dask_params):
        np.testing.assert_allclose(dask_param.get_value(), param.get_value(), rtol=1e-6, atol=1e-12)


def _layers(arrays):
    return {name.rsplit("-", 1)[0] for array in arrays for name in array.dask.layers}


def test_a_train_step_on_a_batch_chunked_by_rows_is_one_program_per_chunk(monkeypatch):
    X, Y = _data()
    batch = (da.from_array(X, chunks=(40, 8)), da.from_array(Y, chunks=40))
    train, _, params = _mlp("numpy")
    dask_train, _, dask_params = _mlp("dask")
    computed = []
    original = dask.compute
    monkeypatch.setattr(dask, "compute", lambda *arrays, **options: computed.append(arrays) or original(*arrays))
    for _ in range(3):
        np.testing.assert_allclose(dask_train(*batch), train(X, Y), rtol=1e-9)
    for param, dask_param in zip(params, dask_params):
        np.testing.assert_allclose(dask_param.get_value(), param.get_value(), rtol=1e-9, atol=1e-12)
    layers = _layers(computed[-1])
    # The forward and backward passes: one program per chunk; no layer per op on the batch. The
    # optimizer's update from the batch's sums: one program too.
    assert {"region", "combine", "tail"} <= layers
    assert not layers & {"relu", "softmax_crossentropy", "one_hot", "dot", "sqrt"}


def test_regions_fall_back_to_op_by_op_where_the_values_do_not_fit():
    X, _ = _data(rows=12)
    x = sg.matrix("x", shape=(None, 8))
    per_row = sg.shared(np.random.default_rng(3).normal(size=(12, 8)), name="per_row")  # rows of the batch
    W = sg.shared(np.random.default_rng(4).normal(size=(8, 3)), name="W")
    loss = ((sg.tanh((x + per_row) @ W)) ** 2).sum()
    outputs = [loss, *sg.grad(loss, [per_row, W])]
    expected = sg.function([x], outputs)(X)
    f = sg.function([x], outputs, backend="dask")
    for chunks in [(4, 8), (12, 8), (6, 4)]:  # the shared rows must stay whole; columns chunked
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RechunkWarning)
            got = realize_all(f(da.from_array(X, chunks=chunks)))
        for value, reference in zip(got, expected):
            np.testing.assert_allclose(value, reference, rtol=1e-9)


def test_random_draws_are_the_same_in_a_program_per_chunk_and_op_by_op(monkeypatch):
    X = da.from_array(np.ones((40, 30)), chunks=(10, 30))
    draws = []
    for regions in (True, False):
        monkeypatch.setattr(program, "REGIONS", regions)
        x = sg.matrix("x")
        stream = sg.RandomStreams(5)
        y = sg.nn.dropout(x, keep_prob=0.6, rng=stream) + stream.normal(x.shape) + stream.uniform((x.shape[0], 1))
        f = sg.function([x], [y, (y * y).sum(axis=0)], phase="train", backend="dask")
        value, total = f(X)
        assert ("region" in _layers([value, total])) == regions
        draws.append(realize_all([value, total]))
    for with_regions, op_by_op in zip(*draws):
        np.testing.assert_array_equal(with_regions, op_by_op)


@pytest.mark.parametrize("regions", [True, False], ids=["program per chunk", "op by op"])
def test_gradients_over_the_batch_are_tree_reductions_over_its_chunks(regions, monkeypatch):
    monkeypatch.setattr(program, "REGIONS", regions)
    X, Y = _data(rows=64)
    x, y = sg.matrix("x"), sg.ivector("y")
    W = sg.shared(np.ones((8, 3)), name="W")
    loss = sg.nn.categorical_crossentropy(sg.nn.softmax(x @ W), y).mean()
    f = sg.function([x, y], sg.grad(loss, W), backend="dask")
    gradient = f(da.from_array(X, chunks=(8, 8)), da.from_array(Y, chunks=8))
    # 8 partial products, one per chunk of the batch, combined 4 at a time: 2 tasks, then 1.
    graph = dict(gradient.__dask_graph__())
    names = [str(key[0] if isinstance(key, tuple) else key) for key in graph]
    if regions:
        assert sum(name.startswith("region-") for name in names) == 8
        assert sum(name.startswith("combine-") for name in names) == 3
    else:
        assert sum(name.startswith("dot-") for name in names) == 16  # x @ W, then x.T @ g: 8 each
        assert sum(name.startswith("sum-") for name in names) >= 2
    expected = sg.function([x, y], sg.grad(loss, W))(X, Y)
    np.testing.assert_allclose(gradient.compute(), expected, rtol=1e-9)


def test_a_function_with_updates_computes_everything_in_one_dask_compute(monkeypatch):
    X, Y = _data()
    train, _, _ = _mlp("dask")
    calls = []
    original = dask.compute

    def counting(*arguments, **options):
        calls.append(len(arguments))
        return original(*arguments, **options)

    monkeypatch.setattr(dask, "compute", counting)
    train(da.from_array(X, chunks=(40, 8)), da.from_array(Y, chunks=40))
    assert len(calls) == 1 and calls[0] > 1  # the loss and the new weights together


# --- lazy results ------------------------------------------------------------------------------------------
def test_a_function_without_updates_returns_dask_arrays_computed_from_the_values_at_the_call():
    X, Y = _data()
    train, predict, _ = _mlp("dask")
    _, numpy_predict, _ = _mlp("numpy")
    probabilities = predict(da.from_array(X, chunks=(30, 8)))
    assert isinstance(probabilities, da.Array) and probabilities.chunks == ((30,) * 4, (3,))
    train(X, Y)  # changes the weights after the call, before the computation
    np.testing.assert_allclose(probabilities.compute(), numpy_predict(X), rtol=1e-12)
    x = sg.matrix("x")
    constant_output = sg.function([x], [x.sum(), sg.constant(np.arange(3.0)) * 2], backend="dask")
    total, doubled = constant_output(np.ones((2, 2)))
    assert isinstance(total, da.Array) and isinstance(doubled, da.Array)
    assert total.compute() == 4.0 and doubled.compute().tolist() == [0.0, 2.0, 4.0]


def test_arguments_numpy_arrays_scalars_and_dask_arrays_of_other_dtypes():
    x, scale = sg.matrix("x"), sg.scalar("scale")
    f = sg.function([x, scale], x * scale, backend="dask")
    doubled = f(np.ones((2, 3)), 2.0)
    assert doubled.chunks == ((2,), (3,))  # a numpy argument is one chunk
    float32 = da.ones((4, 3), chunks=2, dtype="float32")
    assert f(float32, 3.0).dtype == np.float64  # cast where it casts safely
    np.testing.assert_allclose(f(float32, 3.0).compute(), 3.0)
    with pytest.raises(sg.errors.InputError, match=r"argument 0 \(x\).*2 dimension"):
        f(da.ones(3, chunks=1), 1.0)
    n = sg.ivector("n")
    g = sg.function([n], n * 2, backend="dask")
    with pytest.raises(sg.errors.InputError, match=r"int64 does not cast safely to int32"):
        g(da.arange(3, chunks=1))
    unknown = da.ones(6, chunks=2)
    with pytest.raises(sg.errors.InputError, match="compute_chunk_sizes"):
        g(unknown[unknown > 0].astype("int32"))


# --- random draws --------------------------------------------------------------------------------------------
def _dropout_function(seed=5):
    x = sg.matrix("x")
    stream = sg.RandomStreams(seed)
    y = sg.nn.dropout(x, keep_prob=0.6, rng=stream) + stream.normal((2, 3)).sum()
    return sg.function([x], [y, sg.grad((y * y).sum(), x)], phase="train", backend="dask"), stream


def test_random_draws_depend_on_the_seed_and_the_chunking_only():
    f, stream = _dropout_function()
    X = np.ones((40, 30))
    draws = {}
    for scheduler in ("threads", "sync"):
        for chunks in ((10, 30), (20, 15)):
            stream.seed(5)
            value, gradient = f(da.from_array(X, chunks=chunks))
            draws[scheduler, chunks] = value.compute(scheduler=scheduler)
            # the gradient uses the very mask of the forward pass
            kept = draws[scheduler, chunks] != draws[scheduler, chunks].min()
            np.testing.assert_array_equal(gradient.compute(scheduler=scheduler) != 0, kept)
    assert np.array_equal(draws["threads", (10, 30)], draws["sync", (10, 30)])
    assert np.array_equal(draws["threads", (20, 15)], draws["sync", (20, 15)])
    assert not np.array_equal(draws["threads", (10, 30)], draws["threads", (20, 15)])
    for value in draws.values():
        assert 0.5 < (value != value.min()).mean() < 0.7  # keep_prob 0.6
    stream.seed(6)
    other_seed = f(da.from_array(X, chunks=(10, 30)))[0].compute()
    assert not np.array_equal(other_seed, draws["threads", (10, 30)])


def test_generators_advance_once_per_call_whatever_the_size_of_the_draw():
    f, stream = _dropout_function()
    for rows in (4, 400):
        before = [state.get_value() for state in stream.state_variables]
        value = f(da.from_array(np.ones((rows, 5)), chunks=(2, 5)))[0]
        for previous, state in zip(before, stream.state_variables):
            previous.bit_generator.random_raw(KEY_WORDS)
            assert state.get_value().bit_generator.state == previous.bit_generator.state
        first, again = value.compute(), value.compute()
        assert np.array_equal(first, again)  # a lazy result is one draw, however often computed


def test_a_train_step_with_dropout_draws_once_per_call_and_trains():
    X, Y = _data()
    train, _, _ = _mlp("dask", dropout=True)
    batches = (da.from_array(X, chunks=(40, 8)), da.from_array(Y, chunks=40))
    losses = [float(train(*batches)) for _ in range(12)]
    assert len(set(losses)) == 12 and np.mean(losses[-4:]) < np.mean(losses[:4])


# --- errors and rechunking -----------------------------------------------------------------------------------
class Checked(sg.Op):
    """A user's op without a dask translation: raises on negative values."""

    def output_types(self, x):
        return [x]

    def perform(self, x):
        if (x < 0).any():
            raise ValueError("negative values")
        return x * 2


class Doubled(Checked):
    """The same, declared to compute each element on its own."""


register_per_block(Doubled)


def test_an_error_inside_a_task_names_the_node_and_the_users_line():
    x = sg.vector("x")
    f = sg.function([x], sg.exp(Doubled()(x)).sum(), backend="dask")
    assert f(da.from_array(np.zeros(6), chunks=2)).compute() == 6.0
    result = f(da.from_array(np.array([1.0, 1, 1, 1, -1, 1]), chunks=2))  # fails when computed
    with pytest.raises(ValueError, match="negative values") as raised:
        result.compute()
    assert isinstance(raised.value, sg.errors.NodeError)
    message = str(raised.value)
    assert "doubled, built at" in message and "test_dask_backend.py" in message
    assert "sg.exp(Doubled()(x))" in message and "x: float64 (2,)" in message  # the block's shape


def test_an_error_inside_a_program_per_chunk_names_the_node():
    X, Y = _data()
    train, _, params = _mlp("dask")
    before = [param.get_value() for param in params]
    batch = da.from_array(X, chunks=(40, 8))
    wrong = da.from_array(np.where(np.arange(120) == 100, 7, Y).astype("int32"), chunks=40)  # class 7 of 3
    with pytest.raises(IndexError, match=r"class indices must be in \[0, 3\)") as raised:
        train(batch, wrong)
    assert isinstance(raised.value, sg.errors.NodeError)
    assert "softmax_crossentropy, built at" in str(raised.value) and "test_dask_backend.py" in str(raised.value)
    assert "y: int32 (40,)" in str(raised.value)  # the chunk it failed on
    for param, value in zip(params, before):
        np.testing.assert_array_equal(param.get_value(), value)


def test_an_error_while_building_names_the_node():
    m = sg.matrix("m")
    f = sg.function([m], m.reshape((2, 2)) + 1, backend="dask")
    with pytest.raises(ValueError, match=r"reshape, built at .*test_dask_backend.py") as raised:
        f(da.ones((3, 3), chunks=2))
    assert "m: float64 (3, 3)" in str(raised.value)


def test_an_op_without_translation_runs_on_one_chunk_and_names_itself_on_several():
    x = sg.vector("x")
    f = sg.function([x], Checked()(x) + 1, backend="dask")
    np.testing.assert_allclose(f(np.arange(3.0)).compute(), [1, 3, 5])
    with pytest.raises(NotImplementedError, match=r"checked has no dask translation.*x.*chunked") as raised:
        f(da.from_array(np.arange(4.0), chunks=2))
    assert "register_per_block" in str(raised.value) and "test_dask_backend.py" in str(raised.value)


def test_an_op_needing_a_whole_chunked_axis_rechunks_it_and_warns_once():
    m = sg.matrix("m")
    f = sg.function([m], sg.nn.softmax(m), backend="dask")
    values = np.random.default_rng(0).normal(size=(6, 8))
    with pytest.warns(RechunkWarning, match=r"softmax, built at .*needs the whole of axis 1"):
        result = f(da.from_array(values, chunks=(3, 4)))
    assert result.chunks == ((3, 3), (8,))
    np.testing.assert_allclose(result.compute(), sg.function([m], sg.nn.softmax(m))(values))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f(da.from_array(values, chunks=(3, 4)))  # said once
        f(da.from_array(values, chunks=(2, 8)))  # rows chunked only: nothing to say


def test_results_are_arrays_of_their_own():
    x = sg.vector("x")
    kept = sg.shared(np.zeros(2), name="kept")
    f = sg.function([x], [x, kept, x[::-1]], updates=[(kept, x)], backend="dask")
    values = np.arange(3.0)
    first, old, reversed_ = f(values)
    assert kept.get_value().tolist() == [0.0, 1.0, 2.0]  # a new shape: the array is replaced
    for result in (first, old, reversed_, kept.get_value(borrow=True)):
        assert not np.may_share_memory(result, values)
    assert not np.may_share_memory(first, kept.get_value(borrow=True))
    values[:] = -1  # the caller's array changes: nothing computed changes with it
    assert first.tolist() == [0.0, 1.0, 2.0] and kept.get_value().tolist() == [0.0, 1.0, 2.0]
    # Chunks joined, and an array of unknown length (boolean indexing).
    g = sg.function([x], [x * 2, x[x > 0.5]], updates=[(kept, x + 1)], backend="dask")
    doubled, positive = g(da.from_array(np.array([0.0, 1.0, 2.0, 3.0]), chunks=3))
    assert doubled.tolist() == [0.0, 2.0, 4.0, 6.0] and positive.tolist() == [1.0, 2.0, 3.0]


def test_updates_commit_all_or_none():
    x = sg.vector("x")
    calls = sg.shared(0.0, name="calls")
    stream = sg.RandomStreams(3)
    noisy = Doubled()(x) + stream.uniform(x.shape)
    f = sg.function([x], noisy.sum(), updates=[(calls, calls + 1)], backend="dask")
    f(da.from_array(np.ones(6), chunks=2))
    assert calls.get_value() == 1.0
    generator = stream.state_variables[0].get_value().bit_generator.state
    with pytest.raises(ValueError, match="negative values"):
        f(da.from_array(np.array([1.0, 1, 1, 1, -1, 1]), chunks=2))
    assert calls.get_value() == 1.0
    assert stream.state_variables[0].get_value().bit_generator.state == generator


# --- more of the contract ------------------------------------------------------------------------------------
def test_indexing_of_chunked_arrays():
    m, i, labels = sg.matrix("m"), sg.lvector("i"), sg.lvector("labels")
    outputs = [
        m[[0, 2]],
        m[:, i],
        m[sg.arange(m.shape[0]), labels],
        m[m > 0.5],
        m[1:, ::-1][None],
        sg.inc_subtensor(m[[0, 0, 1]], 1.0),
        sg.set_subtensor(m[1, :2], 5.0),
    ]
    M = np.random.default_rng(0).random((4, 3))
    columns, L = np.array([2, 0]), np.array([0, 2, 1, 1])
    expected = sg.function([m, i, labels], outputs)(M, columns, L)
    f = sg.function([m, i, labels], outputs, backend="dask")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RechunkWarning)
        got = f(da.from_array(M, chunks=(2, 2)), da.from_array(columns, chunks=1), da.from_array(L, chunks=2))
    for value, reference in zip(got, expected):
        np.testing.assert_allclose(value.compute(), reference)


def test_a_small_cnn_with_batch_norm_trains_as_on_the_numpy_backend():
    def build(backend):
        rng = np.random.default_rng(0)
        x, y = sg.tensor4("x"), sg.ivector("y")
        filters = sg.shared(rng.normal(size=(4, 2, 3, 3)) * 0.3, name="filters")
        gamma, beta = sg.shared(np.ones(4), name="gamma"), sg.shared(np.zeros(4), name="beta")
        mean, var = sg.shared(np.zeros(4), name="mean"), sg.shared(np.ones(4), name="var")
        h = sg.nn.relu(sg.nn.batch_norm(sg.nn.conv2d(x, filters, padding="same"), gamma, beta, mean, var))
        h = sg.nn.avg_pool2d(sg.nn.max_pool2d(h, 2), 2, stride=1, padding=1)
        W = sg.shared(rng.normal(size=(4 * 4 * 4, 3)) * 0.1, name="W")
        loss = sg.nn.categorical_crossentropy(sg.nn.softmax(h.flatten(2) @ W), y).mean()
        params = [filters, gamma, beta, W]
        train = sg.function([x, y], loss, updates=sg.optim.momentum(loss, params, 0.1), phase="train", backend=backend)
        return train, params + [mean, var]

    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(6, 2, 6, 6)), rng.integers(0, 3, 6).astype("int32")
    train, params = build("numpy")
    dask_train, dask_params = build("dask")
    for _ in range(3):
        np.testing.assert_allclose(dask_train(da.from_array(X, chunks=(2, 2, 6, 6)), Y), train(X, Y), rtol=1e-9)
    for param, dask_param in zip(params, dask_params):
        np.testing.assert_allclose(dask_param.get_value(), param.get_value(), rtol=1e-9, atol=1e-12)


def _agree(inputs, outputs, values, chunked):
    expected = sg.function(inputs, outputs)(*values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RechunkWarning)
        got = realize_all(sg.function(inputs, outputs, backend="dask")(*chunked))
    for value, reference in zip(got, expected):
        assert value.shape == reference.shape and value.dtype == reference.dtype
        np.testing.assert_allclose(value, reference, rtol=1e-9, atol=1e-12)


def test_convolution_and_pooling_to_second_order_on_chunked_images():
    x = sg.tensor4("x")
    filters = sg.shared(np.random.default_rng(1).normal(size=(3, 2, 2, 3)), name="filters")
    convolved = sg.nn.conv2d(x, filters, stride=(2, 1), padding=1)
    dilated = sg.nn.conv2d(x, filters, padding="same", filter_dilation=(2, 1))
    # ReLU then max pooling: its gradient's mask goes before the routing (rewrite/fusion.py).
    activated = sg.nn.max_pool2d(sg.nn.relu(sg.nn.conv2d(x, filters, padding="same")), (1, 2))
    outputs = [
        convolved,
        *sg.grad((convolved**2).sum(), [x, filters]),
        dilated,
        *sg.grad((dilated**2).sum(), [x, filters]),
        *sg.grad((activated**2).sum(), [x, filters]),
        sg.nn.max_pool2d(x, 3, stride=2, padding=1),
        sg.grad(sg.nn.avg_pool2d(x, (2, 3), stride=1, padding=(1, 1)).sum(), x),
        sg.grad(sg.grad(sg.nn.max_pool2d(x, 2).sum() ** 2, x).sum(), x),
    ]
    images = np.random.default_rng(2).normal(size=(5, 2, 7, 6))
    for chunks in [(2, 1, 7, 6), (3, 2, 3, 3)]:  # per sample and channel; across the pixels too
        _agree([x], outputs, [images], [da.from_array(images, chunks=chunks)])


def test_profile_counts_the_calls_and_says_the_nodes_are_timed_by_dask():
    x = sg.matrix("x")
    with pytest.warns(UserWarning, match="times its calls but not its nodes"):
        f = sg.function([x], (x * 2).sum(axis=0), profile=True, backend="dask")
    for _ in range(2):
        np.testing.assert_array_equal(f(da.ones((4, 3), chunks=2)).compute(), [8.0] * 3)
    assert f.profile.calls == 2 and f.profile.time > 0
    assert sg.function([x], x * 2, backend="dask").profile is None


def test_reductions_edge_cases_and_an_empty_batch():
    m, n = sg.matrix("m"), sg.lvector("n")
    values = np.random.default_rng(0).normal(size=(6, 4))
    outputs = [sg.sum(m, axis=()), m.sum(keepdims=True), m.prod(axis=1), m.argmax(axis=1, keepdims=True)]
    outputs += [m.argmin(axis=None, keepdims=True), m.var(axis=0), m.std(axis=1, keepdims=True)]
    _agree([m], outputs, [values], [da.from_array(values, chunks=(2, 3))])
    integers = [n.sum(), n.prod(), (n > 1).sum(), n.mean()]
    _agree([n], integers, [np.arange(5)], [da.arange(5, chunks=2)])
    empty = [m.sum(axis=0), sg.nn.softmax(m), m @ np.ones((4, 2))]
    _agree([m], empty, [np.zeros((0, 4))], [da.zeros((0, 4), chunks=(1, 4))])


def test_loops_branches_and_checks():
    # An RNN over time (axis 0) on a batch (axis 1), its gradients, a branch, and the checks.
    x = sg.tensor3("x")  # (time, batch, features)
    W = sg.shared(np.random.default_rng(1).normal(size=(3, 4)) * 0.5, name="W")
    U = sg.shared(np.random.default_rng(2).normal(size=(4, 4)) * 0.5, name="U")
    h0 = sg.zeros((x.shape[1], 4))
    states, _ = sg.scan(lambda x_t, h: sg.tanh(x_t @ W + h @ U), sequences=x, outputs_info=h0)
    loss = (states[-1] ** 2).sum()
    branch = sg.ifelse(loss > 1.0, loss * 2.0, loss - 1.0)
    outputs = [states, branch, *sg.grad(branch, [W, U, x])]
    values = np.random.default_rng(3).normal(size=(5, 6, 3))
    for chunks in [(5, 6, 3), (5, 3, 3), (2, 6, 3)]:  # in one chunk; the batch, then time chunked
        _agree([x], outputs, [values], [da.from_array(values, chunks=chunks)])
    v = sg.vector("v")
    checked = sg.ops.shape.specify_shape(v, (4,)) * 2
    with pytest.raises(ValueError, match=r"expected shape \(4,\)"):
        sg.function([v], checked, backend="dask")(da.ones(3, chunks=1))
    stochastic, _ = sg.scan(lambda x_t: sg.nn.dropout(x_t, rate=0.5), sequences=x)
    f = sg.function([x], stochastic, phase="train", backend="dask")
    with pytest.raises(NotImplementedError, match="draws random numbers inside its steps"):
        f(da.from_array(values, chunks=(5, 3, 3)))
    v = sg.vector("v")
    running, _ = sg.scan(lambda v_t, s: (s + v_t, sg.until(s + v_t > 2)), sequences=v, outputs_info=sg.constant(0.0))
    stopping = sg.function([v], running, backend="dask")
    with pytest.raises(NotImplementedError, match=r"stops at a condition \(sg.until\)"):
        stopping(da.ones(5, chunks=2))


def test_the_references_dask_examples_run_as_written():
    import os
    import re

    with open(os.path.join(os.path.dirname(__file__), "..", "docs", "API.md"), encoding="utf-8") as reference:
        blocks = re.findall(r"```python dask\n(.*?)```", reference.read(), re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, "docs/API.md", "exec"), {"np": np, "sg": sg, "__name__": "__docs__"})


def test_jacobians_and_other_shapes_of_results():
    v = sg.vector("v")
    jacobian = sg.jacobian(sg.tanh(v) * v.sum(), v)
    values = np.arange(4.0)
    expected = sg.function([v], jacobian)(values)
    np.testing.assert_allclose(
        sg.function([v], jacobian, backend="dask")(da.from_array(values, chunks=2)).compute(), expected
    )
    counter = sg.shared(0, name="counter")
    tick = sg.function([], None, updates=[(counter, counter + 1)], backend="dask")
    assert tick() is None and counter.get_value() == 1
    frozen = sg.function([v], v.sum(), updates=[(counter, counter + 1)], backend="dask", apply_updates=False)
    assert frozen(values).compute() == 6.0 and counter.get_value() == 1
    debug = sg.function([v], sg.exp(v), mode="debug", backend="dask")
    np.testing.assert_allclose(debug(da.from_array(values, chunks=2)).compute(), np.exp(values))
    assert debug.backend.name == "dask" and repr(debug.backend) == "<backend 'dask'>"
