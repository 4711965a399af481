"""The dask backend on one machine: data-parallel training and out-of-core prediction.

1. Training: one step (forward, backward, SGD, dropout 0.5) of the 784-1024-1024-10 MLP of
   ``mlp_step.py``, float32, batch 4096. The numpy backend in this process (2 BLAS threads)
   against the dask backend on a LocalCluster of 2 worker processes of 1 thread each, the batch
   chunked in two (2048 rows per worker), the data already on the workers (``persist``), as in
   data-parallel training where each worker holds its shard. Steps are interleaved, medians
   compared as rows per second. A first step without dropout checks that both backends give the
   same weights.
2. Prediction: the main example's network (64-256-256-10, float32) over 2,000,000 rows read from
   a zarr store and written to another (``da.from_zarr`` -> predict -> ``.to_zarr``), against the
   numpy backend on rows that fit in memory (200,000 at a time), in rows per second.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/dask_scaling.py
(``--rows`` and ``--steps`` shorten it; it prints the machine's load, which these figures depend
on: measure on a quiet machine.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np
from _timing import format_time, machine

import symgraph as sg

REFERENCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "reference")
TRAIN_SIZES, BATCH, DROP, LEARNING_RATE = (784, 1024, 1024, 10), 4096, 0.5, 0.01
PREDICT_SIZES, IN_MEMORY_ROWS, CHUNK_ROWS = (64, 256, 256, 10), 200_000, 100_000
ROUND = 3  #: steps of one backend before switching to the other


def parameters(sizes: tuple, seed: int = 0) -> list[np.ndarray]:
    """He-initialized float32 weights and zero biases (the reference's own when present)."""
    sys.path.insert(0, REFERENCE_DIR)
    try:
        from numpy_mlp import init_params

        return init_params(sizes, "float32", seed=seed)
    except ImportError:
        rng = np.random.default_rng(seed)
        return [
            p
            for a, b in zip(sizes[:-1], sizes[1:])
            for p in ((rng.standard_normal((a, b)) * np.sqrt(2 / a)).astype("float32"), np.zeros(b, "float32"))
        ]


def mlp(params: list[np.ndarray], drop: float | None, backend: str):
    """The compiled train step and predict function of an MLP with these parameters."""
    x = sg.matrix("x", dtype="float32", shape=(None, params[0].shape[0]))
    y = sg.ivector("y")
    shared = [sg.shared(value.copy(), name=f"p{index}") for index, value in enumerate(params)]
    stream = sg.RandomStreams(0)
    h = x
    layers = len(shared) // 2
    for layer in range(layers):
        h = h @ shared[2 * layer] + shared[2 * layer + 1]
        if layer < layers - 1:
            h = sg.nn.relu(h)
            if drop:
                h = sg.nn.dropout(h, rate=drop, rng=stream)
    probabilities = sg.nn.softmax(h)
    loss = sg.nn.categorical_crossentropy(probabilities, y).mean()
    updates = sg.optim.sgd(loss, shared, LEARNING_RATE)
    train = sg.function([x, y], loss, updates=updates, phase="train", backend=backend)
    predict = sg.function([x], probabilities, phase="predict", backend=backend)
    return train, predict, shared


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


# --- 1. training ---------------------------------------------------------------------------------------
def check_same_weights(client_batches, X: np.ndarray, Y: np.ndarray) -> float:
    """One step without dropout on both backends: the largest relative difference of the weights."""
    params = parameters(TRAIN_SIZES)
    numpy_train, _, numpy_shared = mlp(params, None, "numpy")
    dask_train, _, dask_shared = mlp(params, None, "dask")
    numpy_train(X, Y)
    dask_train(*client_batches)
    return max(
        float(np.abs(a.get_value() - b.get_value()).max() / np.abs(a.get_value()).max())
        for a, b in zip(numpy_shared, dask_shared)
    )


def on_workers(client, array: np.ndarray, parts: int):
    """``array`` as a dask array of ``parts`` chunks along its first axis, each sent to a worker
    (round robin) and kept there."""
    import dask.array as da

    pieces = np.array_split(array, parts)
    futures = client.scatter(pieces)
    chunks = [da.from_delayed(future, piece.shape, piece.dtype) for future, piece in zip(futures, pieces)]
    return client.persist(da.concatenate(chunks))


def training(client, steps: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((BATCH, TRAIN_SIZES[0])).astype("float32")
    Y = rng.integers(0, TRAIN_SIZES[-1], BATCH).astype("int32")
    params = parameters(TRAIN_SIZES)
    numpy_train, _, _ = mlp(params, DROP, "numpy")
    dask_train, _, _ = mlp(params, DROP, "dask")
    # Each worker holds its half of the batch, as in data-parallel training on shards.
    Xd, Yd = on_workers(client, X, 2), on_workers(client, Y, 2)
    difference = check_same_weights((Xd, Yd), X, Y)
    for _ in range(2):  # warm up both
        numpy_train(X, Y)
        dask_train(Xd, Yd)
    # Rounds of a few steps of each, alternating, so that a change in the machine's load hits
    # both alike; the median step of each is compared. CPU seconds per step (this process for
    # numpy; this process, scheduler included, and the workers for dask) say how much work each
    # does, whatever the load.
    numpy_times, dask_times, numpy_cpu, dask_cpu = [], [], [], []
    for _ in range(max(1, steps // ROUND)):
        cpu = time.process_time()
        for _ in range(ROUND):
            start = time.perf_counter()
            numpy_train(X, Y)
            numpy_times.append(time.perf_counter() - start)
        numpy_cpu.append((time.process_time() - cpu) / ROUND)
        cpu, workers = time.process_time(), workers_cpu(client)
        for _ in range(ROUND):
            start = time.perf_counter()
            dask_train(Xd, Yd)
            dask_times.append(time.perf_counter() - start)
        dask_cpu.append((time.process_time() - cpu + workers_cpu(client) - workers) / ROUND)
    numpy_step, dask_step = statistics.median(numpy_times), statistics.median(dask_times)
    print(f"\n1. train step, MLP {'-'.join(map(str, TRAIN_SIZES))}, batch {BATCH}, float32, dropout {DROP}, SGD")
    print(f"   same weights after a step without dropout: largest relative difference {difference:.1e}")
    print(
        f"   numpy backend, 2 BLAS threads:        {format_time(numpy_step):>10s}  {BATCH / numpy_step:9.0f} rows/s"
        f"   (CPU {format_time(statistics.median(numpy_cpu))} per step)"
    )
    print(
        f"   dask backend, 2 workers x 1 thread:   {format_time(dask_step):>10s}  {BATCH / dask_step:9.0f} rows/s"
        f"   (CPU {format_time(statistics.median(dask_cpu))} per step, client and workers)"
    )
    print(f"   throughput dask / numpy: {numpy_step / dask_step:.2f}x (target >= 0.7x); {load()}")


def workers_cpu(client) -> float:
    """The CPU seconds the cluster's worker processes have used so far."""
    import psutil

    return sum(client.run(lambda: sum(psutil.Process().cpu_times()[:2])).values())


# --- 2. prediction -------------------------------------------------------------------------------------
def prediction(client, rows: int, folder: str) -> None:
    import dask.array as da

    params = parameters(PREDICT_SIZES, seed=1)
    _, numpy_predict, _ = mlp(params, None, "numpy")
    _, dask_predict, _ = mlp(params, None, "dask")
    source, target = os.path.join(folder, "rows.zarr"), os.path.join(folder, "predictions.zarr")
    data = da.random.default_rng(2).standard_normal((rows, PREDICT_SIZES[0]), chunks=(CHUNK_ROWS, -1), dtype="float32")
    data.to_zarr(source)  # written by the workers, not timed

    in_memory = np.random.default_rng(3).standard_normal((IN_MEMORY_ROWS, PREDICT_SIZES[0])).astype("float32")
    numpy_predict(in_memory[:1000])
    numpy_times, dask_times = [], []
    for _ in range(3):
        start = time.perf_counter()
        numpy_predict(in_memory)
        numpy_times.append(time.perf_counter() - start)
        shutil.rmtree(target, ignore_errors=True)
        start = time.perf_counter()
        dask_predict(da.from_zarr(source)).to_zarr(target)
        dask_times.append(time.perf_counter() - start)
    numpy_rate = IN_MEMORY_ROWS / statistics.median(numpy_times)
    dask_rate = rows / statistics.median(dask_times)
    stored = da.from_zarr(target)
    check = np.abs(stored[:1000].compute() - numpy_predict(da.from_zarr(source)[:1000].compute())).max()
    size = rows * PREDICT_SIZES[0] * 4 / 2**20
    print(f"\n2. predict, MLP {'-'.join(map(str, PREDICT_SIZES))}, float32")
    print(f"   numpy backend, {IN_MEMORY_ROWS} rows in memory:        {numpy_rate:10.0f} rows/s")
    print(f"   dask backend, {rows} rows ({size:.0f} MiB) zarr -> zarr: {dask_rate:10.0f} rows/s")
    print(f"   (the stored predictions match the numpy backend's to {check:.1e})")
    print(f"   rows per second dask / numpy: {dask_rate / numpy_rate:.2f}x (target >= 0.8x); {load()}")


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--steps", type=int, default=24, help="timed train steps of each backend (default 24)")
    arguments.add_argument("--rows", type=int, default=2_000_000, help="rows to predict from zarr (default 2,000,000)")
    options = arguments.parse_args()
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SystemExit("this benchmark needs the dask extra: pip install -e '.[dask]'") from None
    print(machine())
    print(load())
    folder = tempfile.mkdtemp(prefix="symgraph-dask-scaling-")
    try:
        with (
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
            Client(cluster) as client,
        ):
            training(client, options.steps)
            prediction(client, options.rows, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
