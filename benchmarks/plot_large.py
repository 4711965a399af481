"""How long sg.plot takes on graphs of about 1,000 nodes, with each renderer available.

Two graphs of a deep MLP (tanh layers with dropout, a cross-entropy): the cost and its gradients
with respect to every weight, uncompiled (forward and gradient nodes); and the compiled train
function (SGD updates: update edges back to the weights). Prints the node counts and the median of
a few renders per renderer and format (Graphviz only if ``dot`` is installed).

    python benchmarks/plot_large.py [--repeat 3] [--intermediates]

``--intermediates`` draws every variable as its own ellipse (more nodes drawn).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import symgraph as sg
from symgraph.viz import dot_program, drawable, to_networkx


def deep_mlp(layers: int) -> tuple[sg.Variable, sg.Variable, sg.Variable, list, list]:
    """Inputs, cost, parameters and gradients of a ``layers``-deep MLP with dropout."""
    rng = np.random.default_rng(0)
    x, t = sg.matrix("x"), sg.ivector("t")
    h, params = x, []
    for number in range(layers):
        W = sg.shared(rng.normal(size=(16, 16)), name=f"W{number}")
        b = sg.shared(np.zeros(16), name=f"b{number}")
        h = sg.nn.dropout(sg.tanh(h @ W + b), rate=0.1)
        params += [W, b]
    cost = sg.nn.categorical_crossentropy(sg.nn.softmax(h), t).mean()
    return x, t, cost, params, sg.grad(cost, params)


def graphs() -> dict[str, object]:
    """About 1,000 nodes each (in ``sg.to_networkx``)."""
    _, _, cost, _, grads = deep_mlp(22)
    x, t, cost16, params, grads16 = deep_mlp(18)
    updates = [(param, param - 0.1 * grad) for param, grad in zip(params, grads16)]
    train = sg.function([x, t], cost16, updates=updates, phase="train")
    return {"gradient graph": [cost, *grads], "train function": train}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--intermediates", action="store_true", help="draw unnamed intermediate variables too")
    args = parser.parse_args()
    renderers = ["matplotlib"] + (["graphviz"] if dot_program() else [])
    with tempfile.TemporaryDirectory() as folder:
        for title, graph in graphs().items():
            model = to_networkx(graph)
            ops = sum(1 for _, kind in model.nodes(data="kind") if kind == "op")
            drawn = drawable(graph, intermediates=args.intermediates).number_of_nodes()
            print(
                f"{title}: {ops} op nodes, {model.number_of_nodes() - ops} variable nodes, "
                f"{model.number_of_edges()} edges; {drawn} nodes drawn"
            )
            for renderer in renderers:
                for suffix in (".svg", ".png"):
                    times = []
                    for _ in range(args.repeat):
                        start = time.perf_counter()
                        sg.plot(
                            graph, Path(folder) / f"large{suffix}", renderer=renderer, intermediates=args.intermediates
                        )
                        times.append(time.perf_counter() - start)
                    print(f"  {renderer:>10} {suffix}: median {statistics.median(times):.2f} s over {args.repeat}")


if __name__ == "__main__":
    main()
