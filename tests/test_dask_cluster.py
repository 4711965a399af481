"""The dask backend on a real ``dask.distributed`` cluster: a LocalCluster of two worker processes,
started here and closed at the end of the module (so nothing is left running). Data-parallel
training gives the numpy backend's weights, random draws are those of the threaded scheduler,
an error in a worker names the node, and prediction streams through a zarr store larger than
the workers' memory.

Skipped, with the reason, where the ``dask`` extra is not installed (``pip install -e '.[dask]'``).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="the dask extra is not installed: pip install -e '.[dask]'")
distributed = pytest.importorskip("distributed", reason="the dask extra is not installed: pip install -e '.[dask]'")
from test_dask_backend import Doubled, _data, _dropout_function, _mlp  # noqa: E402

import symgraph as sg  # noqa: E402
from symgraph.backends.dask.regions import worker_memory_limit  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Port .* is already in use:UserWarning")


@pytest.fixture(scope="module")
def client():
    """Two worker processes of one thread each, as two machines would be."""
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client
    assert cluster.status.name == "closed"


def test_data_parallel_training_on_two_workers_gives_the_numpy_backends_weights(client):
    X, Y = _data(rows=200)
    train, _, params = _mlp("numpy")
    dask_train, _, dask_params = _mlp("dask")
    # One chunk of the batch on each worker, as each would hold its shard.
    batches = client.persist([da.from_array(X, chunks=(100, 8)), da.from_array(Y, chunks=100)])
    with distributed.get_task_stream(client) as stream:
        for _ in range(3):
            np.testing.assert_allclose(dask_train(*batches), train(X, Y), rtol=1e-6)
    for param, dask_param in zip(params, dask_params):
        np.testing.assert_allclose(dask_param.get_value(), param.get_value(), rtol=1e-6, atol=1e-12)
    # Both workers computed, each running the step's program on its chunk.
    regions = [task for task in stream.data if str(task["key"]).startswith("('region-")]
    assert len({task["worker"] for task in regions}) == 2


def test_weights_kept_on_the_workers_are_sent_again_when_the_shared_values_change(client, monkeypatch):
    from symgraph.backends.dask import blocks, resident

    monkeypatch.setattr(blocks, "SCATTER_BYTES", 0)  # these small weights go to the workers too
    used = []  # per call: the weights the workers held already
    lookup = resident.lookup

    def recorded(variable, value, client):
        held = lookup(variable, value, client)
        if variable.name in names and held is not None:
            used[-1].add(variable.name)
        return held

    monkeypatch.setattr(resident, "lookup", recorded)
    X, Y = _data(rows=200)
    train, _, params = _mlp("numpy")
    dask_train, _, dask_params = _mlp("dask")
    batches = client.persist([da.from_array(X, chunks=(100, 8)), da.from_array(Y, chunks=100)])

    names = {param.name for param in dask_params}

    def step():
        used.append(set())
        np.testing.assert_allclose(dask_train(*batches), train(X, Y), rtol=1e-6)

    step()
    step()  # the new weights were kept on the workers, and used
    assert used == [set(), names]
    for param, dask_param in zip(params, dask_params):  # set_value: a new value
        value = param.get_value() * 0.5
        param.set_value(value)
        dask_param.set_value(value)
    step()
    assert used[2] == set()
    for param, dask_param in zip(params, dask_params):  # a write into the borrowed array
        param.get_value(borrow=True)[...] += 0.25
        dask_param.get_value(borrow=True)[...] += 0.25
    step()
    assert used[3] == set()
    for param, dask_param in zip(params, dask_params):
        np.testing.assert_allclose(dask_param.get_value(), param.get_value(), rtol=1e-6, atol=1e-12)


def test_random_draws_on_the_cluster_are_those_of_the_threaded_scheduler(client):
    f, stream = _dropout_function()
    X = da.from_array(np.ones((40, 30)), chunks=(10, 15))
    stream.seed(5)
    on_cluster = f(X)[0].compute()
    stream.seed(5)
    threaded = f(X)[0].compute(scheduler="threads")
    assert np.array_equal(on_cluster, threaded)
    assert 0.5 < (on_cluster != on_cluster.min()).mean() < 0.7


def test_an_error_in_a_workers_program_names_the_node(client):
    X, Y = _data()
    train, _, _ = _mlp("dask")
    wrong = np.where(np.arange(120) == 100, 7, Y).astype("int32")  # class 7 of 3
    with pytest.raises(IndexError, match="class indices") as raised:
        train(da.from_array(X, chunks=(40, 8)), da.from_array(wrong, chunks=40))
    assert isinstance(raised.value, sg.errors.NodeError)
    assert "softmax_crossentropy, built at" in str(raised.value) and "test_dask_backend.py" in str(raised.value)


def test_an_error_in_a_worker_names_the_node_and_the_users_line(client):
    x = sg.vector("x")
    calls = sg.shared(0, name="calls")
    f = sg.function([x], Doubled()(x).sum(), updates=[(calls, calls + 1)], backend="dask")
    assert f(da.from_array(np.ones(4), chunks=2)) == 8.0 and calls.get_value() == 1
    with pytest.raises(ValueError, match="negative values") as raised:
        f(da.from_array(np.array([1.0, -1.0, 1.0, 1.0]), chunks=2))
    assert isinstance(raised.value, sg.errors.NodeError)
    assert "doubled, built at" in str(raised.value) and "test_dask_cluster.py" in str(raised.value)
    assert calls.get_value() == 1  # nothing committed


def test_a_lazy_prediction_computes_on_the_cluster(client):
    X, _ = _data(rows=90)
    _, predict, _ = _mlp("dask")
    _, numpy_predict, _ = _mlp("numpy")
    probabilities = predict(da.from_array(X, chunks=(30, 8)))
    np.testing.assert_allclose(client.compute(probabilities).result(), numpy_predict(X), rtol=1e-12)


@pytest.mark.slow
def test_prediction_streams_through_zarr_larger_than_the_workers_memory(tmp_path):
    zarr = pytest.importorskip("zarr", reason="the dask extra is not installed: pip install -e '.[dask]'")
    features, classes, rows = 64, 10, 1_572_864  # 768 MiB of float64
    input_bytes = rows * features * 8
    memory_limit = input_bytes // 4  # 192 MiB per worker, 384 MiB for the cluster
    rng = np.random.default_rng(0)
    W = sg.shared(rng.normal(size=(features, classes)), name="W")
    b = sg.shared(rng.normal(size=classes), name="b")
    x = sg.matrix("x", shape=(None, features))
    probabilities = sg.nn.softmax(x @ W + b)
    predict = sg.function([x], probabilities, backend="dask")
    source, target = str(tmp_path / "rows.zarr"), str(tmp_path / "probabilities.zarr")
    # Uncompressed, to keep the test short: the bytes on disk are the bytes in memory.
    uncompressed = {"compressors": None} if int(zarr.__version__.split(".")[0]) >= 3 else {"compressor": None}
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, memory_limit=memory_limit, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        # Pixels of 17 levels, as the digits, written by the workers.
        pixels = da.random.default_rng(1).integers(0, 17, (rows, features), chunks=(16384, features)) / 16.0
        pixels.to_zarr(source, **uncompressed)
        data = da.from_zarr(source)
        workers = client.scheduler_info()["workers"]
        assert {info["memory_limit"] for info in workers.values()} == {memory_limit}
        assert data.nbytes == input_bytes == 4 * memory_limit  # twice the whole cluster's memory
        predict(data).to_zarr(target, **uncompressed)
        # The same two worker processes (none was killed for want of memory), which never held
        # more than their limit.
        assert client.scheduler_info()["workers"].keys() == workers.keys()
        peaks = client.run(lambda dask_worker: max(dask_worker.monitor.range_query(start=0)["memory"]))
        assert max(peaks.values()) < memory_limit
        # What the programs on the workers scaled the freed memory they keep to.
        limits = [client.submit(worker_memory_limit, pure=False, workers=[address]).result() for address in workers]
        assert limits == [memory_limit] * 2
    stored = zarr.open_array(target, mode="r")
    assert stored.shape == (rows, classes)
    sample = np.sort(np.random.default_rng(2).choice(rows, 500, replace=False))
    reference = sg.function([x], probabilities)(zarr.open_array(source, mode="r").get_orthogonal_selection(sample))
    np.testing.assert_allclose(stored.get_orthogonal_selection(sample), reference, rtol=1e-12)
    shutil.rmtree(source)  # 768 MiB: not for pytest's kept temporary folders


def test_outside_a_dask_worker_there_is_no_worker_memory_limit():
    assert worker_memory_limit() is None
