"""The main example's network on a Dask cluster: data-parallel training, then prediction on an
enlarged data set stored as zarr that does not fit in one worker's memory.

The model is ``mlp_dropout_digits.py``'s (64-256-256-10, ReLU, dropout 0.3, Adam), compiled with
``backend='dask'``. Training: each minibatch is chunked across the workers, so every step computes
one part of the batch on each worker and sums the gradients in a tree (data-parallel training;
the updated weights are those the numpy backend gives on the whole batch). Prediction: the
digits, enlarged with noisy copies, are written into a zarr store larger than a
worker's memory limit; the predict function returns a dask array, stored with ``.to_zarr``, which
the workers compute chunk by chunk, with Dask's progress bar. The dashboard's address is printed
at the start (it needs bokeh, in the ``dask`` extra).

    python examples/dask_digits.py                               # a LocalCluster of 2 workers
    python examples/dask_digits.py --scheduler tcp://host:8786   # an existing cluster

With ``--scheduler``, ``--out`` must be a folder every worker can read and write.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
from digits import load_digits, minibatches, output_folder, parser
from mlp_dropout_digits import RATE, SIZES

import symgraph as sg

BATCH = 256  #: rows per training step, split across the workers
CHUNK_ROWS = 8192  #: rows per chunk of the enlarged data set (4 MiB, 16 MiB per hidden layer)


def dask_model(seed: int, dtype: str, learning_rate: float = 1e-3):
    """``mlp_dropout_digits.Model``'s network, compiled for the dask backend."""
    rng = np.random.default_rng(seed)
    stream = sg.RandomStreams(seed)
    x = sg.matrix("x", dtype=dtype, shape=(None, SIZES[0]))
    y = sg.ivector("y")
    params, h = [], x
    for layer, (fan_in, fan_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        W = sg.shared((rng.standard_normal((fan_in, fan_out)) * np.sqrt(2 / fan_in)).astype(dtype), name=f"W{layer}")
        b = sg.shared(np.zeros(fan_out, dtype), name=f"b{layer}")
        params += [W, b]
        h = h @ W + b
        if layer < len(SIZES) - 2:
            h = sg.nn.dropout(sg.nn.relu(h), rate=RATE, rng=stream)
    probabilities = sg.nn.softmax(h)
    loss = sg.nn.categorical_crossentropy(probabilities, y).mean()
    updates = sg.optim.adam(loss, params, learning_rate)
    train = sg.function([x, y], loss, updates=updates, phase="train", backend="dask")
    predict = sg.function([x], probabilities, phase="predict", backend="dask")
    return train, predict


def train_data_parallel(train, predict, data, epochs: int, seed: int, workers: int) -> float:
    """Minibatches of ``BATCH`` rows, each chunked into one part per worker; prints the loss and
    the test accuracy after each epoch and returns the last."""
    import dask.array as da

    rng = np.random.default_rng(seed)
    part = math.ceil(BATCH / workers)
    accuracy = 0.0
    for epoch in range(epochs):
        losses = []
        for batch in minibatches(len(data.y_train), BATCH, rng):
            X = da.from_array(data.X_train[batch], chunks=(part, -1))
            y = da.from_array(data.y_train[batch], chunks=part)
            losses.append(float(train(X, y)))
        predicted = predict(da.from_array(data.X_test, chunks=(part, -1))).argmax(axis=1).compute()
        accuracy = float((predicted == data.y_test).mean())
        print(f"epoch {epoch + 1:3d}: loss {np.mean(losses):.4f} (train phase), test accuracy {accuracy:.4f}")
    print(f"test accuracy after {epochs} epochs: {accuracy:.4f}")
    return accuracy


def enlarged_digits(client, X, y, rows: int, seed: int):
    """``rows`` digits, as dask arrays made chunk by chunk on the workers: each a random image of
    the data set with a little noise."""
    import dask.array as da

    chunks = tuple(min(CHUNK_ROWS, rows - start) for start in range(0, rows, CHUNK_ROWS))
    picks = da.random.default_rng(seed).integers(0, len(y), rows, chunks=(chunks,))
    images_on_workers, labels_on_workers = client.scatter([X, y], broadcast=True)
    images = da.map_blocks(
        _noisy, picks, images_on_workers, seed, new_axis=1, chunks=(chunks, (X.shape[1],)), dtype=X.dtype
    )
    labels = da.map_blocks(np.take, labels_on_workers, picks, dtype=y.dtype)
    return images, labels


def _noisy(picks: np.ndarray, X: np.ndarray, seed: int, block_id=None) -> np.ndarray:
    images = X[picks]
    noisy = images + np.random.default_rng([seed, block_id[0]]).normal(0.0, 0.05, images.shape)
    return np.clip(noisy, 0.0, 1.0).astype(X.dtype)


def predict_out_of_core(client, predict, data, rows: int, folder: str, seed: int) -> float:
    """Writes the enlarged data set to zarr, predicts it chunk by chunk into another store, and
    returns the accuracy of the stored predictions."""
    import dask.array as da
    from distributed import progress

    images_path = os.path.join(folder, "digits_enlarged.zarr")
    labels_path = os.path.join(folder, "labels_enlarged.zarr")
    predictions_path = os.path.join(folder, "predictions.zarr")
    X = np.concatenate([data.X_train, data.X_test])
    y = np.concatenate([data.y_train, data.y_test])
    images, labels = enlarged_digits(client, X, y, rows, seed)
    print(f"\nwriting {rows} digits ({images.nbytes / 2**20:.0f} MiB) to {images_path}")
    da.to_zarr(images, images_path, overwrite=True)
    da.to_zarr(labels, labels_path, overwrite=True)
    limits = [info["memory_limit"] for info in client.scheduler_info()["workers"].values()]
    fits = "does not fit" if images.nbytes > max(limits) else "fits"
    print(f"the data set {fits} in one worker's memory limit ({max(limits) / 2**20:.0f} MiB)")

    stored = da.from_zarr(images_path)
    predicted = predict(stored).argmax(axis=1).astype("int8")  # a dask array: nothing computed yet
    print(f"predicting {predicted.npartitions} chunks into {predictions_path}:")
    future = client.compute(predicted.to_zarr(predictions_path, overwrite=True, compute=False))
    progress(future)  # Dask's progress bar
    future.result()
    print()
    accuracy = float((da.from_zarr(predictions_path) == da.from_zarr(labels_path)).mean().compute())
    print(
        f"accuracy on the {rows} enlarged digits (noisy copies of the training and test images), "
        f"read back from zarr: {accuracy:.4f}"
    )
    return accuracy


def main() -> None:
    arguments = parser(__doc__.splitlines()[0], epochs=40, out="out/dask_digits")
    arguments.add_argument("--scheduler", help="address of an existing Dask scheduler (default: start a LocalCluster)")
    arguments.add_argument("--workers", type=int, default=2, help="workers of the LocalCluster (default 2)")
    arguments.add_argument(
        "--memory-limit", default="384MiB", help="memory limit of each LocalCluster worker (default 384MiB)"
    )
    arguments.add_argument(
        "--rows", type=int, default=1_048_576, help="digits in the enlarged data set (default 1,048,576: 512 MiB)"
    )
    options = arguments.parse_args()
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SystemExit("this example needs the dask extra: pip install -e '.[dask,examples]'") from None
    dtype = "float32" if options.float32 else "float64"
    sg.config.floatX = dtype
    folder = output_folder(options.out)
    started = time.perf_counter()

    if options.scheduler:
        cluster, client = None, Client(options.scheduler)
    else:
        cluster = LocalCluster(
            n_workers=options.workers, threads_per_worker=1, memory_limit=options.memory_limit, dashboard_address=":0"
        )
        client = Client(cluster)
    try:
        workers = len(client.scheduler_info()["workers"])
        print(f"Dask dashboard: {client.dashboard_link}  ({workers} workers)")
        data = load_digits(options.seed, dtype)
        train, predict = dask_model(options.seed, dtype)
        print(f"training {SIZES} with dropout {RATE}, {BATCH} rows per step split across {workers} workers")
        train_data_parallel(train, predict, data, options.epochs, options.seed, workers)
        predict_out_of_core(client, predict, data, options.rows, folder, options.seed)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    print(f"done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
