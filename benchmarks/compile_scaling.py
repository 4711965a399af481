"""How compile time grows with graph size, and how long gradients take to build and compile.

1. A chain of N elementwise ops, built and compiled, for N = 1,000 and 10,000 (target: 10,000 in
   under 0.6 s, and under 12x the 1,000-node time: no quadratic step).
2. ``sg.grad`` of a 10,000-op chain, built and compiled (target: under 2 s).
3. The training function (loss, gradients, SGD updates) of a 784-1024-1024-10 ReLU MLP built from
   core ops: ``sg.grad`` plus ``sg.function`` (target: under 20 ms together), with and without
   dropout after each hidden layer.

Each figure is the median of several runs, after ``import symgraph``.
Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compile_scaling.py
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
from _timing import format_time, machine

import symgraph as sg


def chain(length: int):
    x = sg.vector("x")
    y = x
    for index in range(length):
        y = sg.sin(y) if index % 2 else y + 1.0
    return x, y


def time_chain(length: int) -> tuple[float, float]:
    start = time.perf_counter()
    x, y = chain(length)
    built = time.perf_counter()
    sg.function([x], y)
    return built - start, time.perf_counter() - built


def time_chain_gradient(length: int) -> float:
    start = time.perf_counter()
    x, y = chain(length)
    gradient = sg.grad(y.sum(), x)
    sg.function([x], gradient)
    return time.perf_counter() - start


def mlp_loss(dropout: bool):
    rng = np.random.default_rng(0)
    x = sg.matrix("x", dtype="float32", shape=(None, 784))
    y = sg.ivector("y")
    sizes = [784, 1024, 1024, 10]
    params = []
    h = x
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = sg.shared(
            (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2 / fan_in)).astype("float32"), name=f"W{layer}"
        )
        b = sg.shared(np.zeros(fan_out, "float32"), name=f"b{layer}")
        params += [W, b]
        h = h @ W + b
        if layer < 2:
            h = sg.maximum(h, 0)
            if dropout:
                h = sg.nn.dropout(h, keep_prob=0.5)
    top = h.max(axis=1, keepdims=True)
    log_total = sg.log(sg.exp(h - top).sum(axis=1)) + top[:, 0]
    loss = (log_total - h[sg.arange(h.shape[0]), y]).mean()
    return x, y, params, loss


def time_mlp(dropout: bool) -> float:
    x, y, params, loss = mlp_loss(dropout)
    start = time.perf_counter()
    gradients = sg.grad(loss, params)
    sg.function(
        [x, y], loss, updates=[(p, p - 0.01 * g) for p, g in zip(params, gradients)], phase="train" if dropout else None
    )
    return time.perf_counter() - start


def median_of(function, runs: int) -> float:
    return statistics.median(function() for _ in range(runs))


def main() -> None:
    print(machine())
    print(f"recursion limit: {sys.getrecursionlimit()} (unchanged)")
    small = [time_chain(1_000) for _ in range(5)]
    large = [time_chain(10_000) for _ in range(3)]
    small_total = statistics.median(b + c for b, c in small)
    large_total = statistics.median(b + c for b, c in large)
    print(
        f"chain of  1,000 ops: build {format_time(statistics.median(b for b, _ in small))}, "
        f"compile {format_time(statistics.median(c for _, c in small))}, total {format_time(small_total)}"
    )
    print(
        f"chain of 10,000 ops: build {format_time(statistics.median(b for b, _ in large))}, "
        f"compile {format_time(statistics.median(c for _, c in large))}, total {format_time(large_total)} (target < 0.6 s)"
    )
    print(f"10,000 / 1,000 ratio: {large_total / small_total:.1f}x (target < 12x)")
    gradient_time = median_of(lambda: time_chain_gradient(10_000), 3)
    print(f"grad of a 10,000-op chain, built and compiled: {format_time(gradient_time)} (target < 2 s)")
    for dropout in (False, True):
        seconds = median_of(lambda dropout=dropout: time_mlp(dropout), 7)
        label = "with dropout" if dropout else "no dropout  "
        print(
            f"784-1024-1024-10 MLP training function, {label}: grad + compile {format_time(seconds)} (target < 20 ms)"
        )


if __name__ == "__main__":
    main()
