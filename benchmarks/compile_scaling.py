"""How compile time and memory grow with graph size, and where compiling spends its time.

1. A chain of N elementwise ops, built and compiled, for N = 1,000 and 10,000 (target: 10,000 in
   under 0.3 s, and under 12x the 1,000-node time: no quadratic step).
2. ``sg.grad`` of a 10,000-op chain, built and compiled (target: under 2 s).
3. The training function (loss, gradients, SGD updates) of a 784-1024-1024-10 ReLU MLP built from
   core ops: ``sg.grad`` plus ``sg.function`` (target: under 20 ms together), with and without
   dropout after each hidden layer.
4. A 50,000-op chain and its gradient: built, differentiated and compiled (target: under 5 s), and
   the peak memory of a process doing just that (target: under 500 MB, under 3 KB per node),
   measured in a fresh subprocess (``resource.getrusage``'s peak resident size, less what the
   process held before building).
5. The time of each step of compiling (``Function.compile_times``: givens, inlining subgraphs,
   phases, checks, rewrites, scheduling, choosing kernels, memory planning, code generation,
   Python's ``compile()``) for the 10,000-op chain and for the 50,000-op chain and its gradient, so
   that the next regression is found at once.

Each figure is the median of several runs, after ``import symgraph``.
Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compile_scaling.py [--quick]
(``--quick``: one run of the 50,000-op chain.)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
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


def large_chain_with_gradient(length: int) -> dict:
    """Build, differentiate and compile a chain of ``length`` ops and its gradient, in this process:
    the times, the compile steps, the node count and the peak memory (meant for a fresh process)."""
    from symgraph.graph.traversal import postorder

    before = _resident_bytes()
    start = time.perf_counter()
    x, y = chain(length)
    built = time.perf_counter()
    gradient = sg.grad(y.sum(), x)
    differentiated = time.perf_counter()
    f = sg.function([x], [y, gradient])
    compiled = time.perf_counter()
    nodes = postorder([y, gradient])
    variables = {id(v) for node in nodes for v in (*node.inputs, *node.outputs)}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
    return {
        "build": built - start,
        "grad": differentiated - built,
        "compile": compiled - differentiated,
        "steps": getattr(f, "compile_times", {}),  # symgraph before issue 14 had none
        "nodes": len(nodes),
        "variables": len(variables),
        "compiled_nodes": len(f.nodes),
        "peak": peak,
        "before": before,
    }


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def in_subprocess(length: int) -> dict:
    """``large_chain_with_gradient`` in a fresh process, so that its peak memory is its own."""
    code = f"import json, compile_scaling; print(json.dumps(compile_scaling.large_chain_with_gradient({length})))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=os.path.dirname(os.path.abspath(__file__))
    )
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.splitlines()[-1])


def print_steps(title: str, steps: dict) -> None:
    total = sum(steps.values())
    print(f"{title}: {format_time(total)} in the steps of compiling")
    for name, seconds in steps.items():
        print(f"    {name:18s} {format_time(seconds):>10s}  {100 * seconds / total:5.1f}%")


def median_of(function, runs: int) -> float:
    return statistics.median(function() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run of the 50,000-op chain")
    arguments = parser.parse_args()
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
        f"compile {format_time(statistics.median(c for _, c in large))} (target < 0.3 s), total {format_time(large_total)}"
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
    x, y = chain(10_000)
    steps = [getattr(sg.function([x], y), "compile_times", {}) for _ in range(3)]
    if steps[0]:
        print_steps("\nchain of 10,000 ops", {name: statistics.median(s[name] for s in steps) for name in steps[0]})

    runs = [in_subprocess(50_000) for _ in range(1 if arguments.quick else 3)]
    run = min(runs, key=lambda r: r["build"] + r["grad"] + r["compile"])
    total = statistics.median(r["build"] + r["grad"] + r["compile"] for r in runs)
    peak = statistics.median(r["peak"] for r in runs)
    graph = statistics.median(r["peak"] - r["before"] for r in runs)
    print(
        f"\nchain of 50,000 ops and its gradient ({run['nodes']:,} nodes, {run['variables']:,} variables; "
        f"{run['compiled_nodes']:,} nodes compiled), each run in a fresh process, median of {len(runs)}:"
    )
    print(
        f"  build {format_time(statistics.median(r['build'] for r in runs))}, "
        f"grad {format_time(statistics.median(r['grad'] for r in runs))}, "
        f"compile {format_time(statistics.median(r['compile'] for r in runs))}, "
        f"total {format_time(total)} (target < 5 s)"
    )
    print(
        f"  peak memory {peak / 1e6:.0f} MB (target < 500 MB), {graph / 1e6:.0f} MB above the process "
        f"before building: {graph / run['nodes'] / 1e3:.2f} KB per node (target < 3 KB)"
    )
    if run["steps"]:
        print_steps("  its compiling (the fastest run)", run["steps"])


if __name__ == "__main__":
    main()
