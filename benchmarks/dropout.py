"""The cost of dropout: drawing a mask and applying it, against numpy written by hand.

1. A compiled train function of ``sg.nn.dropout(x, keep_prob)`` on a 256x1024 float32 activation,
   against the reference ``m = rng.random(shape, dtype=np.float32) < keep; out = x * m / keep``
   (target: at most 1.5x), for keep 0.5 (a multiple of 1/256: one random byte per element) and
   0.8 (one element in 256 needs more bits).
2. The same inside a bigger graph, ``dropout(relu(a + b))``, with and without the dropout, in
   symgraph and in numpy.
3. The forward and backward pass of that layer with dropout (the mask reused by the gradient).
4. Compile time of ``sg.grad`` + ``sg.function`` for a 784-1024-1024-10 MLP, with and without
   dropout (target: under 20 ms with dropout).

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/dropout.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _timing import compare, format_time, machine

import symgraph as sg

SHAPE = (256, 1024)


def standalone(keep: float, rounds: int) -> dict[str, float]:
    """Medians of symgraph's compiled dropout and of the numpy reference, interleaved."""
    x = sg.matrix("x", dtype="float32")
    train = sg.function([x], sg.nn.dropout(x, keep_prob=keep), phase="train")
    data = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    rng = np.random.default_rng(1)

    def reference() -> np.ndarray:
        m = rng.random(SHAPE, dtype=np.float32) < keep
        return data * m / keep

    return compare({"symgraph": lambda: train(data), "numpy": reference}, rounds=rounds)


def in_a_graph(rounds: int) -> dict[str, float]:
    """``dropout(relu(a + b))``: the mask drawn and applied after other elementwise work, in
    symgraph and in numpy (no matrix product, whose time would hide dropout's)."""
    keep = 0.5
    generator = np.random.default_rng(2)
    a_value = generator.standard_normal(SHAPE).astype(np.float32)
    b_value = generator.standard_normal(SHAPE[1]).astype(np.float32)
    a = sg.matrix("a", dtype="float32")
    b = sg.shared(b_value, name="b")
    activation = sg.nn.relu(a + b)
    plain = sg.function([a], activation)
    dropped = sg.function([a], sg.nn.dropout(activation, keep_prob=keep), phase="train")
    rng = np.random.default_rng(3)

    def numpy_plain() -> np.ndarray:
        return np.maximum(a_value + b_value, 0)

    def numpy_dropped() -> np.ndarray:
        out = np.maximum(a_value + b_value, 0)
        m = rng.random(SHAPE, dtype=np.float32) < keep
        return out * m / keep

    return compare(
        {
            "symgraph relu(a + b)": lambda: plain(a_value),
            "numpy relu(a + b)": numpy_plain,
            "symgraph + dropout": lambda: dropped(a_value),
            "numpy + dropout": numpy_dropped,
        },
        rounds=rounds,
    )


def forward_backward(rounds: int) -> dict[str, float]:
    """Output and gradient of ``sum(dropout(relu(h @ W)) * g)`` with respect to W."""
    keep = 0.5
    generator = np.random.default_rng(4)
    h_value = generator.standard_normal((SHAPE[0], 512)).astype(np.float32)
    W_value = (generator.standard_normal((512, SHAPE[1])) * 0.05).astype(np.float32)
    g_value = generator.standard_normal(SHAPE).astype(np.float32)
    h = sg.matrix("h", dtype="float32")
    W = sg.shared(W_value, name="W")
    out = sg.nn.dropout(sg.nn.relu(h @ W), keep_prob=keep)
    step = sg.function([h], [out, sg.grad((out * g_value).sum(), W)], phase="train")
    rng = np.random.default_rng(5)

    def reference() -> list[np.ndarray]:
        pre = h_value @ W_value
        mask = (rng.random(SHAPE, dtype=np.float32) < keep) / np.float32(keep)
        result = np.maximum(pre, 0) * mask
        return [result, h_value.T @ (g_value * mask * (pre > 0))]

    return compare({"symgraph": lambda: step(h_value), "numpy": reference}, rounds=rounds)


def mlp_compile_times(dropout: bool, repeats: int = 15) -> float:
    """Median seconds of ``sg.grad`` + ``sg.function`` (train phase) for a fresh 784-1024-1024-10
    MLP graph with cross-entropy loss and SGD updates."""
    times = []
    generator = np.random.default_rng(6)
    sizes = [784, 1024, 1024, 10]
    values = [(generator.standard_normal((m, n)) * 0.01).astype(np.float32) for m, n in zip(sizes, sizes[1:])]
    for _ in range(repeats):
        x = sg.matrix("x", dtype="float32")
        t = sg.ivector("t")
        weights = [sg.shared(value, name=f"W{i}") for i, value in enumerate(values)]
        biases = [sg.shared(np.zeros(value.shape[1], np.float32), name=f"b{i}") for i, value in enumerate(values)]
        h = x
        for layer, (W, b) in enumerate(zip(weights, biases)):
            h = h @ W + b
            if layer < len(weights) - 1:
                h = sg.nn.relu(h)
                if dropout:
                    h = sg.nn.dropout(h, keep_prob=0.5)
        cost = sg.nn.categorical_crossentropy(sg.nn.softmax(h), t).mean()
        params = weights + biases
        start = time.perf_counter()
        gradients = sg.grad(cost, params)
        sg.function(
            [x, t],
            cost,
            updates=[(p, p - 0.1 * g) for p, g in zip(params, gradients)],
            phase="train" if dropout else None,
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(title: str, medians: dict[str, float], ours: str, theirs: str) -> None:
    print(title)
    for name, seconds in medians.items():
        print(f"  {name:28s} {format_time(seconds):>12s}")
    print(f"  ratio {ours} / {theirs}: {medians[ours] / medians[theirs]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per comparison (medians)")
    arguments = parser.parse_args()
    print(machine())
    for keep in (0.5, 0.8):
        report(
            f"\n1. dropout(keep_prob={keep}) of a {SHAPE[0]}x{SHAPE[1]} float32 activation (target <= 1.5x)",
            standalone(keep, arguments.rounds),
            "symgraph",
            "numpy",
        )

    medians = in_a_graph(arguments.rounds)
    print(f"\n2. dropout(relu(a + b), keep_prob=0.5), a {SHAPE[0]}x{SHAPE[1]} float32, b a shared bias")
    for name, seconds in medians.items():
        print(f"  {name:28s} {format_time(seconds):>12s}")
    print(
        f"  ratio with dropout: {medians['symgraph + dropout'] / medians['numpy + dropout']:.2f}x; "
        f"without: {medians['symgraph relu(a + b)'] / medians['numpy relu(a + b)']:.2f}x"
    )

    report(
        "\n3. forward and gradient of dropout(relu(h @ W)) (the gradient reuses the forward mask)",
        forward_backward(arguments.rounds),
        "symgraph",
        "numpy",
    )

    print("\n4. sg.grad + sg.function compile time, 784-1024-1024-10 MLP (target < 20 ms with dropout)")
    without = mlp_compile_times(dropout=False)
    with_dropout = mlp_compile_times(dropout=True)
    print(f"  without dropout {format_time(without):>12s}")
    print(f"  with dropout    {format_time(with_dropout):>12s}")


if __name__ == "__main__":
    main()
