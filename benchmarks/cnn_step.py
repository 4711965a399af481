"""One training step (forward, backward, SGD update) of the small CNN, float32, batch 64.

The network is exactly the one of the hand-written numpy reference
``../shared/reference/numpy_cnn.py``: 64x1x28x28 -> conv 3x3x16 pad 1 + ReLU -> maxpool 2 ->
conv 3x3x32 pad 1 + ReLU -> maxpool 2 -> dropout 0.5 -> dense 10 -> softmax cross-entropy, SGD.
symgraph (one graph compiled with phase='train') runs against that reference and, where installed,
PyTorch's CPU eager mode, in the same run, repetitions interleaved; medians are reported. PyTorch
runs in a process of its own (its thread pool and numpy's OpenBLAS threads fight when they share
one, which makes it look about twice as slow as it is); the other process waits while it runs.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/cnn_step.py [--profile]
``--profile`` also prints where symgraph's step spends its time (``sg.function(..., profile=True)``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

import numpy as np
from _timing import Worker, compare_with_workers, format_time, machine, serve, threads

import symgraph as sg

REFERENCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "reference")
BATCH, CHANNELS, SIDE = 64, 1, 28
FILTERS1, FILTERS2, CLASSES = 16, 32, 10
LEARNING_RATE = 0.01
DROP = 0.5


def initial_params(seed: int = 0) -> list[np.ndarray]:
    """He-initialized parameters of the reference's shapes (the reference's own when present)."""
    rng = np.random.default_rng(seed)

    def he(shape: tuple, fan_in: int) -> np.ndarray:
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype("float32")

    return [
        he((FILTERS1, CHANNELS, 3, 3), CHANNELS * 9),
        np.zeros(FILTERS1, "float32"),
        he((FILTERS2, FILTERS1, 3, 3), FILTERS1 * 9),
        np.zeros(FILTERS2, "float32"),
        he((FILTERS2 * 7 * 7, CLASSES), FILTERS2 * 49),
        np.zeros(CLASSES, "float32"),
    ]


def symgraph_step(params: list[np.ndarray], drop: float = DROP, profile: bool = False) -> tuple[sg.Function, list]:
    """The compiled training step (a function of (X, y) giving the loss, updating the weights) and
    its shared parameters."""
    x = sg.tensor4("x", dtype="float32", shape=(None, CHANNELS, SIDE, SIDE))
    y = sg.ivector("y")
    W1, b1, W2, b2, W3, b3 = shared = [
        sg.shared(value, name=name) for value, name in zip(params, ["W1", "b1", "W2", "b2", "W3", "b3"])
    ]
    h = sg.nn.relu(sg.nn.conv2d(x, W1, padding=1) + b1.dimshuffle("x", 0, "x", "x"))
    h = sg.nn.max_pool2d(h, 2)
    h = sg.nn.relu(sg.nn.conv2d(h, W2, padding=1) + b2.dimshuffle("x", 0, "x", "x"))
    h = sg.nn.max_pool2d(h, 2)
    h = sg.nn.dropout(h.flatten(2), rate=drop)
    loss = sg.nn.categorical_crossentropy(sg.nn.softmax(h @ W3 + b3), y).mean()
    updates = sg.optim.sgd(loss, shared, LEARNING_RATE)
    profiled = {"profile": True} if profile else {}  # so that the script runs on symgraph before it had one
    return sg.function([x, y], loss, updates=updates, phase="train", **profiled), shared


def check_agreement(params: list[np.ndarray], reference_class, X: np.ndarray, y: np.ndarray) -> None:
    """Without dropout, one symgraph step and one reference step give the same loss and weights."""
    train, shared = symgraph_step(params, drop=0.0)
    reference = reference_class(params, "float32", p=0.0, lr=LEARNING_RATE, seed=0)
    loss, expected_loss = float(train(X, y)), reference.train(X, y)
    worst = max(
        float(np.abs(p.get_value() - q).max() / (np.abs(q).max() + 1e-30)) for p, q in zip(shared, reference.params())
    )
    print(
        f"agreement check (no dropout): loss {loss:.6f} vs reference {expected_loss:.6f}, "
        f"largest relative difference of the updated weights {worst:.1e}"
    )
    if abs(loss - expected_loss) > 1e-4 * abs(expected_loss) or worst > 1e-4:
        raise SystemExit("symgraph and the reference disagree: the timings would compare different computations")


def torch_step(params: list[np.ndarray]):
    """The same step in PyTorch's eager mode (CPU)."""
    import torch
    from torch.nn import functional

    torch.set_num_threads(threads())
    tensors = [torch.tensor(value, requires_grad=True) for value in params]
    W1, b1, W2, b2, W3, b3 = tensors

    def step(X: "torch.Tensor", y: "torch.Tensor") -> float:
        h = functional.max_pool2d(torch.relu(functional.conv2d(X, W1, b1, padding=1)), 2)
        h = functional.max_pool2d(torch.relu(functional.conv2d(h, W2, b2, padding=1)), 2)
        h = functional.dropout(h.flatten(1), p=DROP, training=True)
        loss = functional.cross_entropy(h @ W3 + b3, y)
        for tensor in tensors:
            tensor.grad = None
        loss.backward()
        with torch.no_grad():
            for tensor in tensors:
                tensor -= LEARNING_RATE * tensor.grad
        return loss.item()

    return step


def profile_nodes(params: list[np.ndarray], X: np.ndarray, y: np.ndarray, calls: int = 50) -> None:
    """Where symgraph's step spends its time: the same step compiled with ``profile=True``."""
    train, _ = symgraph_step(params, profile=True)
    for _ in range(5):
        train(X, y)
    train.profile.reset()
    for _ in range(calls):
        train(X, y)
    print(f"\nsymgraph's step, profiled ({calls} calls; times with the profiler's own overhead):")
    train.profile.summary(limit=25)


def torch_worker() -> None:
    """The PyTorch candidate, in a process of its own (see ``_timing.Worker``)."""
    import torch

    params = initial_params_like_reference()
    X, y = batch()
    step, Xt, yt = torch_step(params), torch.tensor(X), torch.tensor(y.astype("int64"))
    serve(lambda: step(Xt, yt), header=f"torch {torch.__version__}, {torch.get_num_threads()} threads")


def initial_params_like_reference() -> list[np.ndarray]:
    sys.path.insert(0, REFERENCE_DIR)
    try:
        from numpy_cnn import init_params
    except ImportError:
        return initial_params()
    return init_params("float32")


def batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((BATCH, CHANNELS, SIDE, SIDE)).astype("float32")
    y = rng.integers(0, CLASSES, BATCH).astype("int32")
    return X, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="also time each node of symgraph's step")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument(
        "--fastest-of",
        type=int,
        default=0,
        metavar="CALLS",
        help="each round: the fastest of CALLS single calls, not the mean over 0.5 s (for a loaded machine)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        torch_worker()
        return
    print(machine())
    sys.path.insert(0, REFERENCE_DIR)
    try:
        from numpy_cnn import NumpyCNN
    except ImportError:
        print(f"reference not found at {REFERENCE_DIR}: no numpy reference column")
        NumpyCNN = None
    workers = {}
    if importlib.util.find_spec("torch") is not None:
        workers["pytorch eager"] = worker = Worker([sys.executable, os.path.abspath(__file__), "--worker"])
        print(f"PyTorch in its own process: {worker.header}")
    else:
        print("PyTorch not installed (pip install torch==2.13.0 for the CPU wheel): no PyTorch column")
    params = initial_params_like_reference()
    X, y = batch()

    if NumpyCNN is not None:
        check_agreement(params, NumpyCNN, X, y)
    train, _ = symgraph_step(params)
    candidates = {"symgraph": lambda: train(X, y)}
    if NumpyCNN is not None:
        reference = NumpyCNN(params, "float32", p=DROP, lr=LEARNING_RATE, seed=0)
        candidates["numpy reference"] = lambda: reference.train(X, y)
    for function in candidates.values():  # warm up: allocations, BLAS threads, caches
        for _ in range(3):
            function()
    times = compare_with_workers(candidates, workers, arguments.rounds, 0.5, arguments.fastest_of)
    for worker in workers.values():
        worker.close()
    statistic = f"fastest of {arguments.fastest_of} calls" if arguments.fastest_of else "mean over 0.5 s"
    print(
        f"\nCNN training step, batch {BATCH}, float32 ({arguments.rounds} interleaved rounds, medians of the {statistic}):"
    )
    print(f"  {'':16s} {'time':>10s}   {'symgraph / this':>15s}")
    for name, seconds in times.items():
        ratio = f"{times['symgraph'] / seconds:.2f}x" if name != "symgraph" else "-"
        print(f"  {name:16s} {format_time(seconds):>10s}   {ratio:>15s}")
    if "pytorch eager" in times:
        verdict = "meets" if times["symgraph"] <= times["pytorch eager"] else "misses"
        print(f"  target: symgraph <= 1.0x PyTorch eager (each in its own process): {verdict} it")
    if arguments.profile:
        profile_nodes(params, X, y)


if __name__ == "__main__":
    main()
