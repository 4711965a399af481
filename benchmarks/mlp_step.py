"""One training step (forward, backward, SGD update, dropout 0.5) of a ReLU MLP, float32.

symgraph (one graph compiled with phase='train') against the hand-written numpy reference
``../shared/reference/numpy_mlp.py`` and, where installed, PyTorch's CPU eager mode, in the same
run: 784-1024-1024-10 at batch 256 and 64-256-256-10 at batch 64 (the reference's workloads).

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/mlp_step.py
"""

from __future__ import annotations

import os
import sys

import numpy as np
from _timing import compare, format_time, machine

import symgraph as sg

REFERENCE_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference")
WORKLOADS = [((784, 1024, 1024, 10), 256), ((64, 256, 256, 10), 64)]
LEARNING_RATE = 0.01
DROP = 0.5


def symgraph_step(params: list[np.ndarray]):
    """The compiled training step: returns a function of (X, y) giving the loss."""
    x = sg.matrix("x", dtype="float32", shape=(None, params[0].shape[0]))
    y = sg.ivector("y")
    shared = [sg.shared(value, name=f"p{index}") for index, value in enumerate(params)]
    h = x
    layers = len(shared) // 2
    for layer in range(layers):
        h = h @ shared[2 * layer] + shared[2 * layer + 1]
        if layer < layers - 1:
            h = sg.nn.dropout(sg.nn.relu(h), rate=DROP)
    loss = sg.nn.categorical_crossentropy(sg.nn.softmax(h), y).mean()
    updates = (
        sg.optim.sgd(loss, shared, LEARNING_RATE)
        if hasattr(sg, "optim")
        else [(p, p - LEARNING_RATE * g) for p, g in zip(shared, sg.grad(loss, shared))]
    )
    return sg.function([x, y], loss, updates=updates, phase="train")


def torch_step(params: list[np.ndarray]):
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
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

    return step


def main() -> None:
    print(machine())
    sys.path.insert(0, REFERENCE_DIR)
    try:
        from numpy_mlp import NumpyMLP, init_params
    except ImportError:
        print(f"reference not found at {REFERENCE_DIR}: comparing with PyTorch only")
        NumpyMLP = init_params = None
    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch not installed (pip install torch==2.13.0 for the CPU wheel): no PyTorch column")
    rng = np.random.default_rng(0)
    for sizes, batch in WORKLOADS:
        if init_params is not None:
            params = init_params(sizes, "float32", seed=0)
        else:
            params = [
                p
                for a, b in zip(sizes[:-1], sizes[1:])
                for p in (rng.standard_normal((a, b)).astype("float32") * np.sqrt(2 / a), np.zeros(b, "float32"))
            ]
        X = rng.standard_normal((batch, sizes[0])).astype("float32")
        y = rng.integers(0, sizes[-1], batch).astype("int32")
        train = symgraph_step(params)
        candidates = {"symgraph": lambda train=train, X=X, y=y: train(X, y)}
        if NumpyMLP is not None:
            reference = NumpyMLP(params, dtype="float32", p=DROP, lr=LEARNING_RATE, seed=0)
            candidates["numpy reference"] = lambda reference=reference, X=X, y=y: reference.train(X, y)
        if torch is not None:
            step, Xt, yt = torch_step(params), torch.tensor(X), torch.tensor(y.astype("int64"))
            candidates["pytorch eager"] = lambda step=step, Xt=Xt, yt=yt: step(Xt, yt)
        times = compare(candidates, rounds=7, seconds=0.5)
        print(f"\n{'-'.join(map(str, sizes))} MLP, batch {batch}, float32, dropout {DROP}:")
        for name, seconds in times.items():
            ratio = f"{times['symgraph'] / seconds:.2f}x" if name != "symgraph" else ""
            print(f"  {name:16s} {format_time(seconds):>10s}   symgraph / this: {ratio}")


if __name__ == "__main__":
    main()
