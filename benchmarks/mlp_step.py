"""One training step (forward, backward, SGD update, dropout 0.5) of a ReLU MLP, float32, and one
prediction (softmax probabilities, no dropout).

symgraph (one graph compiled with phase='train', one with phase='predict') against the
hand-written numpy reference ``../shared/reference/numpy_mlp.py`` (``train`` and ``predict``) and,
where installed, PyTorch's CPU eager mode (in a process of its own), in the same run:
784-1024-1024-10 at batch 256 and 64-256-256-10 at batch 64 (the reference's workloads).

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/mlp_step.py
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

import numpy as np
from _timing import Worker, compare_with_workers, format_time, machine, serve, threads

import symgraph as sg

REFERENCE_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference")
WORKLOADS = [((784, 1024, 1024, 10), 256), ((64, 256, 256, 10), 64)]
LEARNING_RATE = 0.01
DROP = 0.5


def network(params: list[np.ndarray]) -> tuple:
    """The input, the parameters as shared variables and the logits of the ReLU MLP with dropout."""
    x = sg.matrix("x", dtype="float32", shape=(None, params[0].shape[0]))
    shared = [sg.shared(value, name=f"p{index}") for index, value in enumerate(params)]
    h = x
    layers = len(shared) // 2
    for layer in range(layers):
        h = h @ shared[2 * layer] + shared[2 * layer + 1]
        if layer < layers - 1:
            h = sg.nn.dropout(sg.nn.relu(h), rate=DROP)
    return x, shared, h


def symgraph_step(params: list[np.ndarray]):
    """The compiled training step: returns a function of (X, y) giving the loss."""
    x, shared, logits = network(params)
    y = sg.ivector("y")
    loss = sg.nn.categorical_crossentropy(sg.nn.softmax(logits), y).mean()
    return sg.function([x, y], loss, updates=sg.optim.sgd(loss, shared, LEARNING_RATE), phase="train")


def symgraph_predict(params: list[np.ndarray]):
    """The compiled prediction: softmax probabilities of X, no dropout (phase='predict')."""
    x, _, logits = network(params)
    return sg.function([x], sg.nn.softmax(logits), phase="predict")


def torch_step(params: list[np.ndarray]):
    import torch

    torch.set_num_threads(threads())
    tensors = [torch.tensor(value, requires_grad=True) for value in params]
    layers = len(tensors) // 2

    def step(X: "torch.Tensor", y: "torch.Tensor") -> float:
        h = X
        for layer in range(layers):
            h = h @ tensors[2 * layer] + tensors[2 * layer + 1]
            if layer < layers - 1:
                h = torch.nn.functional.dropout(torch.relu(h), p=DROP, training=True)
        loss = torch.nn.functional.cross_entropy(h, y)
        for tensor in tensors:
            tensor.grad = None
        loss.backward()
        with torch.no_grad():
            for tensor in tensors:
                tensor -= LEARNING_RATE * tensor.grad
        return float(loss)

    def predict(X: "torch.Tensor") -> "torch.Tensor":
        with torch.no_grad():
            h = X
            for layer in range(layers):
                h = h @ tensors[2 * layer] + tensors[2 * layer + 1]
                if layer < layers - 1:
                    h = torch.relu(h)
            return torch.softmax(h, dim=1)

    return step, predict


def workload(index: int) -> tuple[tuple, int, list[np.ndarray], np.ndarray, np.ndarray]:
    """The sizes, the batch, the parameters and one batch of data of workload ``index``."""
    sizes, batch = WORKLOADS[index]
    sys.path.insert(0, REFERENCE_DIR)
    rng = np.random.default_rng(index)
    try:
        from numpy_mlp import init_params

        params = init_params(sizes, "float32", seed=0)
    except ImportError:
        params = [
            p
            for a, b in zip(sizes[:-1], sizes[1:])
            for p in ((rng.standard_normal((a, b)) * np.sqrt(2 / a)).astype("float32"), np.zeros(b, "float32"))
        ]
    X = rng.standard_normal((batch, sizes[0])).astype("float32")
    y = rng.integers(0, sizes[-1], batch).astype("int32")
    return sizes, batch, params, X, y


def torch_worker(index: int, what: str) -> None:
    """One PyTorch candidate in a process of its own (see ``_timing.Worker``)."""
    import torch

    _, _, params, X, y = workload(index)
    step, predict = torch_step(params)
    Xt, yt = torch.tensor(X), torch.tensor(y.astype("int64"))
    function = (lambda: step(Xt, yt)) if what == "train" else (lambda: predict(Xt))
    serve(function, header=f"torch {torch.__version__}, {torch.get_num_threads()} threads")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        torch_worker(int(arguments.worker[0]), arguments.worker[1])
        return
    print(machine())
    sys.path.insert(0, REFERENCE_DIR)
    try:
        from numpy_mlp import NumpyMLP
    except ImportError:
        print(f"reference not found at {REFERENCE_DIR}: comparing with PyTorch only")
        NumpyMLP = None
    has_torch = importlib.util.find_spec("torch") is not None
    if not has_torch:
        print("PyTorch not installed (pip install torch==2.13.0 for the CPU wheel): no PyTorch column")
    for index in range(len(WORKLOADS)):
        sizes, batch, params, X, y = workload(index)
        train = symgraph_step(params)
        predict = symgraph_predict(params)
        if NumpyMLP is not None:
            reference = NumpyMLP(params, dtype="float32", p=DROP, lr=LEARNING_RATE, seed=0)
            np.testing.assert_allclose(predict(X), reference.predict(X), rtol=1e-4, atol=1e-6)
        for what in ("train", "predict"):
            if what == "train":
                candidates = {"symgraph": lambda train=train, X=X, y=y: train(X, y)}
                if NumpyMLP is not None:
                    candidates["numpy reference"] = lambda reference=reference, X=X, y=y: reference.train(X, y)
            else:
                candidates = {"symgraph": lambda predict=predict, X=X: predict(X)}
                if NumpyMLP is not None:
                    # Its own instance: the training steps above changed the other one's weights.
                    fresh = NumpyMLP(params, dtype="float32", p=DROP, lr=LEARNING_RATE, seed=0)
                    candidates["numpy reference"] = lambda fresh=fresh, X=X: fresh.predict(X)
            workers = {}
            if has_torch:
                command = [sys.executable, os.path.abspath(__file__), "--worker", str(index), what]
                workers["pytorch eager"] = Worker(command)
            for function in candidates.values():
                for _ in range(3):
                    function()
            times = compare_with_workers(candidates, workers, rounds=arguments.rounds, seconds=0.5)
            for worker in workers.values():
                worker.close()
            label = "training step, dropout 0.5" if what == "train" else "prediction (softmax, no dropout)"
            print(f"\n{'-'.join(map(str, sizes))} MLP, batch {batch}, float32, {label}:")
            for name, seconds in times.items():
                ratio = f"{times['symgraph'] / seconds:.2f}x" if name != "symgraph" else ""
                print(f"  {name:16s} {format_time(seconds):>10s}   symgraph / this: {ratio}")


if __name__ == "__main__":
    main()
