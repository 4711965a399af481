"""Train a 64-256-256-10 ReLU network with dropout on scikit-learn's handwritten digits.

One model graph gives two compiled functions: ``train`` (dropout masks drawn, Adam updates) and
``predict`` (no mask at all). The script prints the loss and accuracy per epoch and writes into
--out the training curves (training.png), pictures of the train and predict graphs, and the
trained model (model.sg, which examples/serve.py loads).

With --study it then measures what dropout does to overfitting: the same network with and without
dropout, trained on 300 images, over 5 seeds (--study-seeds); the train-test gaps are printed and
drawn below the training curves.

    python examples/mlp_dropout_digits.py            # about 6 seconds on an idle 2-core machine
    python examples/mlp_dropout_digits.py --study    # about 20 seconds
"""

from __future__ import annotations

import os
import time

import numpy as np
from digits import (
    evaluate,
    fit,
    load_digits,
    output_folder,
    parser,
    plot_history,
    progress,
    train_and_report,
    write_graph_pictures,
)

import symgraph as sg

SIZES = (64, 256, 256, 10)
RATE = 0.3  # the probability to drop a hidden unit


class Model:
    """The MLP: one graph, compiled into a train and a predict function."""

    def __init__(self, seed: int, dtype: str, rate: float | None, learning_rate: float = 1e-3):
        rng = np.random.default_rng(seed)
        stream = sg.RandomStreams(seed)
        x = sg.matrix("x", dtype=dtype, shape=(None, SIZES[0]))
        y = sg.ivector("y")
        self.params = []
        h = x
        for layer, (fan_in, fan_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
            W = sg.shared(
                (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2 / fan_in)).astype(dtype), name=f"W{layer}"
            )
            b = sg.shared(np.zeros(fan_out, dtype), name=f"b{layer}")
            self.params += [W, b]
            h = h @ W + b
            if layer < len(SIZES) - 2:
                h = sg.nn.relu(h)
                if rate:
                    h = sg.nn.dropout(h, rate=rate, rng=stream)
        probabilities = sg.nn.softmax(h)
        loss = sg.nn.categorical_crossentropy(probabilities, y).mean()
        self.train = sg.function([x, y], loss, updates=sg.optim.adam(loss, self.params, learning_rate), phase="train")
        self.predict = sg.function([x], probabilities, phase="predict")


def overfitting_study(data, dtype: str, epochs: int, seeds: range, subset: int = 300) -> dict:
    """Train-test gaps (loss, accuracy) with and without dropout on a small training subset."""
    gaps: dict = {"dropout": [], "no dropout": []}
    runs = [(label, rate, seed) for seed in seeds for label, rate in (("dropout", RATE), ("no dropout", None))]
    for label, rate, seed in progress(runs, "overfitting study", len(runs)):
        pick = np.random.default_rng(seed).choice(len(data.y_train), subset, replace=False)
        X, y = data.X_train[pick], data.y_train[pick]
        model = Model(seed, dtype, rate)
        for _ in fit(model.train, X, y, epochs, seed):
            pass
        train_loss, train_accuracy = evaluate(model.predict, X, y)
        test_loss, test_accuracy = evaluate(model.predict, data.X_test, data.y_test)
        gaps[label].append((test_loss - train_loss, train_accuracy - test_accuracy, test_accuracy))
    return {label: np.array(values) for label, values in gaps.items()}


def save_curves(path: str, history: dict, gaps: dict | None) -> None:
    """Training curves (top) and, after a study, the overfitting study (bottom: one bar per
    setting, a dot per seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if gaps is None:
        figure, (losses, accuracies) = plt.subplots(1, 2, figsize=(11, 4))
        plot_history(losses, accuracies, history)
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)
        return
    figure, ((losses, accuracies), (loss_gaps, accuracy_gaps)) = plt.subplots(2, 2, figsize=(11, 8))
    plot_history(losses, accuracies, history)
    labels = list(gaps)
    seeds = len(gaps[labels[0]])
    for axes, column, scale, title in (
        (loss_gaps, 0, 1, "test loss - train loss"),
        (accuracy_gaps, 1, 100, "train accuracy - test accuracy (points)"),
    ):
        for position, label in enumerate(labels):
            values = gaps[label][:, column] * scale
            axes.bar(position, values.mean(), yerr=values.std(), capsize=6, color=f"C{position}", alpha=0.6)
            axes.plot(np.full(len(values), position), values, "k.", markersize=8)
        axes.set(xticks=range(len(labels)), xticklabels=labels, title=f"{title}\n300 training images, {seeds} seeds")
        axes.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def report_study(gaps: dict) -> None:
    print("\nwhat dropout does to overfitting (300 training images, mean +- std over seeds):")
    for label, values in gaps.items():
        print(
            f"  {label:10s}: test - train loss {values[:, 0].mean():.3f} +- {values[:, 0].std():.3f}, "
            f"train - test accuracy {100 * values[:, 1].mean():.1f} +- {100 * values[:, 1].std():.1f} points, "
            f"test accuracy {100 * values[:, 2].mean():.1f}%"
        )


def main() -> None:
    arguments = parser(__doc__.splitlines()[0], epochs=60, out="out/mlp_dropout_digits")
    arguments.add_argument(
        "--study",
        action="store_true",
        help="then measure what dropout does to overfitting: the network with and without it, trained on 300 images "
        "(about 12 seconds more on an idle 2-core machine)",
    )
    arguments.add_argument(
        "--study-epochs", type=int, default=150, help="with --study: epochs of each run (default 150)"
    )
    arguments.add_argument(
        "--study-seeds",
        type=int,
        default=5,
        help="with --study: seeds, each trained with and without dropout (default 5)",
    )
    options = arguments.parse_args()
    if options.study and options.study_seeds < 1:
        arguments.error("--study-seeds must be at least 1")
    dtype = "float32" if options.float32 else "float64"
    sg.config.floatX = dtype
    folder = output_folder(options.out)
    started = time.perf_counter()

    data = load_digits(options.seed, dtype)
    model = Model(options.seed, dtype, RATE)
    print(
        f"digits: {len(data.y_train)} training and {len(data.y_test)} test images; network {SIZES}, dropout rate {RATE}, {dtype}"
    )
    history = train_and_report(model, data, options.epochs, options.seed)

    gaps = None
    if options.study:
        seeds = range(options.seed, options.seed + options.study_seeds)
        gaps = overfitting_study(data, dtype, options.study_epochs, seeds)
        report_study(gaps)
    else:
        print("\n(add --study to measure what dropout does to overfitting)")

    save_curves(os.path.join(folder, "training.png"), history, gaps)
    # The trained model, for examples/serve.py (or any process): sg.load(path)["predict"](images)
    sg.save(os.path.join(folder, "model.sg"), {"train": model.train, "predict": model.predict})
    written = ["training.png", "model.sg", *write_graph_pictures(model, folder)]
    print(f"\nwrote {', '.join(written)} into {folder} ({time.perf_counter() - started:.1f} s in all)")


if __name__ == "__main__":
    main()
