"""Dropout as the classic tutorial writes it, in symgraph: one graph, two functions.

The tutorial's network has two hidden ReLU layers with dropout after each, and ``p``, the
probability to KEEP a unit. It gives two formulations:

* classic: train with ``h * mask`` (mask ~ Bernoulli(p)); predict with ``h * p``;
* inverted: train with ``h * mask / p``; predict with ``h`` as it is (nothing to do at test time).

In symgraph each formulation is ONE graph, compiled twice: ``phase='train'`` draws the masks,
``phase='predict'`` holds no mask at all. Both are built so that each dropout layer's expected
training output equals its prediction output, given the layer's input. This script checks that
numerically, on random weights and random inputs (no dataset, a few seconds):

1. the first hidden layer: the mean of n training outputs approaches the prediction as n grows,
   the gap shrinking like the standard error of the mean;
2. the network's output: the mean of the training outputs approaches the prediction as well, up
   to a bias that comes from the second ReLU, which sees the first layer's noise (E[relu(z)] is
   not relu(E[z])). Scaling the weights at prediction is exact only through linear layers; this
   is the usual approximation of dropout, and the bias shrinks as p goes to 1;
3. the two formulations are one model: a classic network whose weights after each dropout layer
   are the inverted network's divided by p computes the same training function (with the same
   seed, the very same masks) and the same predictions.

Run: python examples/dropout_tutorial.py [--seed 0] [--keep-prob 0.5] [--samples 10000]
"""

from __future__ import annotations

import argparse

import numpy as np

import symgraph as sg

SIZES = (20, 256, 256, 10)  # input, two hidden layers, output
BATCH = 8


def random_weights(generator: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """He-initialized weights and small biases for the three layers."""
    layers = []
    for fan_in, fan_out in zip(SIZES, SIZES[1:]):
        W = generator.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
        b = generator.uniform(-0.1, 0.1, size=fan_out)
        layers.append((W, b))
    return layers


def classic_weights(weights: list, p: float) -> list:
    """The classic network equal to the inverted one: the inverted network divides each dropout
    output by p while training; the classic one divides the next layer's weights instead."""
    (W1, b1), (W2, b2), (W3, b3) = weights
    return [(W1, b1), (W2 / p, b2), (W3 / p, b3)]


def network(x: sg.Variable, weights: list, p: float, scale: str, stream: sg.RandomStreams) -> tuple:
    """The tutorial's 3-layer network, with dropout (keep probability ``p``) after each hidden
    layer; returns the first hidden layer (after its dropout) and the output."""
    (W1, b1), (W2, b2), (W3, b3) = [
        (sg.shared(W, name=f"W{i}"), sg.shared(b, name=f"b{i}")) for i, (W, b) in enumerate(weights, 1)
    ]
    hidden1 = sg.nn.dropout(sg.nn.relu(x @ W1 + b1), keep_prob=p, scale=scale, rng=stream)
    hidden2 = sg.nn.dropout(sg.nn.relu(hidden1 @ W2 + b2), keep_prob=p, scale=scale, rng=stream)
    return hidden1, hidden2 @ W3 + b3


def relative_gap(estimate: np.ndarray, target: np.ndarray) -> float:
    return float(np.linalg.norm(estimate - target) / np.linalg.norm(target))


def study(scale: str, weights: list, inputs: np.ndarray, p: float, samples: int, seed: int) -> tuple:
    """Compile one graph in both phases, average ``samples`` training outputs, print the gaps;
    returns the first training output and the prediction."""
    x = sg.matrix("x")
    hidden1, output = network(x, weights, p, scale, sg.RandomStreams(seed))
    train = sg.function([x], [hidden1, output], phase="train")
    predict = sg.function([x], [hidden1, output], phase="predict")
    hidden_predicted, output_predicted = predict(inputs)

    draws = [train(inputs) for _ in range(samples)]
    hidden_draws = np.array([hidden for hidden, _ in draws])
    output_draws = np.array([out for _, out in draws])
    # The first layer's prediction is the expectation of its training output (h * p classic, h
    # inverted); one training output varies around it with variance prediction**2 * (1 - p) / p.
    variance = hidden_predicted**2 * (1 - p) / p
    described = "scale by p when predicting" if scale == "classic" else "divide by p when training"
    print(
        f"\n{scale} dropout ({described}), p = {p}: {len(train.graph.nodes)} nodes in train, "
        f"{len(predict.graph.nodes)} in predict, of which random: "
        f"{sum(node.op.stochastic for node in train.graph.nodes)} and "
        f"{sum(node.op.stochastic for node in predict.graph.nodes)}"
    )
    print("  relative gap |mean of n train outputs - predict output| / |predict output|")
    print(f"  {'n':>7s}  {'hidden layer 1':>14s}  {'(standard error)':>16s}  {'network output':>14s}")
    n = 10
    while n <= samples:
        hidden_gap = relative_gap(hidden_draws[:n].mean(axis=0), hidden_predicted)
        expected = np.sqrt(variance.sum() / n) / np.linalg.norm(hidden_predicted)
        output_gap = relative_gap(output_draws[:n].mean(axis=0), output_predicted)
        print(f"  {n:7d}  {hidden_gap:14.4f}  {expected:16.4f}  {output_gap:14.4f}")
        n *= 10
    return output_draws[0], output_predicted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights, inputs and dropout masks")
    parser.add_argument("--keep-prob", type=float, default=0.5, help="p, the probability to keep a unit")
    parser.add_argument("--samples", type=int, default=10_000, help="training outputs averaged")
    arguments = parser.parse_args()
    if not 0.0 < arguments.keep_prob <= 1.0:
        parser.error("--keep-prob must be in (0, 1]: the classic network divides by it")
    generator = np.random.default_rng(arguments.seed)
    weights = random_weights(generator)
    inputs = generator.standard_normal((BATCH, SIZES[0]))
    p = arguments.keep_prob

    classic_train, classic_predict = study(
        "classic", classic_weights(weights, p), inputs, p, arguments.samples, arguments.seed
    )
    inverted_train, inverted_predict = study("inverted", weights, inputs, p, arguments.samples, arguments.seed)
    size = np.abs(inverted_predict).mean()
    print(
        f"\nclassic (weights after dropout divided by p) and inverted, same masks (same seed), outputs of size {size:.2f}:"
    )
    print(f"  largest difference of the first training outputs: {np.abs(classic_train - inverted_train).max():.2e}")
    print(f"  largest difference of the predictions:            {np.abs(classic_predict - inverted_predict).max():.2e}")
    print(
        "The first layer's mean training output converges to its prediction (the gap follows the standard\n"
        "error); the network's output approaches its prediction up to the bias of the ReLU after the first\n"
        "dropout, the usual approximation of dropout (try --keep-prob 0.9 to see it shrink)."
    )


if __name__ == "__main__":
    main()
