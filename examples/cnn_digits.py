"""A small convolutional network with batch normalization and dropout on scikit-learn's digits.

    8x8 image -> conv 3x3 (16) + batch norm + ReLU -> conv 3x3 (32) + batch norm + ReLU
    -> max pool 2 -> dropout -> dense 10 -> softmax

One graph gives the train function (batch statistics, running statistics updated automatically,
dropout masks) and the predict function (running statistics, no mask). It prints the loss and
accuracy per epoch and writes the training curves, the graph pictures and the trained model
(model.sg, which examples/serve.py loads) into --out.

    python examples/cnn_digits.py        # about 10 seconds on an idle 2-core machine
"""

from __future__ import annotations

import os
import time

import numpy as np
from digits import load_digits, output_folder, parser, plot_history, train_and_report, write_graph_pictures

import symgraph as sg


class ConvNet:
    def __init__(self, seed: int, dtype: str, rate: float = 0.5, learning_rate: float = 2e-3):
        rng = np.random.default_rng(seed)
        stream = sg.RandomStreams(seed)
        self.params: list[sg.SharedVariable] = []

        def weight(shape: tuple, fan_in: int, name: str) -> sg.SharedVariable:
            value = (rng.standard_normal(shape) * np.sqrt(2 / fan_in)).astype(dtype)
            self.params.append(sg.shared(value, name=name))
            return self.params[-1]

        def normalized(h: sg.Variable, channels: int, name: str) -> sg.Variable:
            gamma = sg.shared(np.ones(channels, dtype), name=f"{name}_gamma")
            beta = sg.shared(np.zeros(channels, dtype), name=f"{name}_beta")
            self.params += [gamma, beta]
            mean = sg.shared(np.zeros(channels, dtype), name=f"{name}_mean")
            var = sg.shared(np.ones(channels, dtype), name=f"{name}_var")
            return sg.nn.batch_norm(h, gamma, beta, mean, var)

        x = sg.tensor4("x", dtype=dtype, shape=(None, 1, 8, 8))
        y = sg.ivector("y")
        h = sg.nn.relu(normalized(sg.nn.conv2d(x, weight((16, 1, 3, 3), 9, "conv1"), padding=1), 16, "bn1"))
        h = sg.nn.relu(normalized(sg.nn.conv2d(h, weight((32, 16, 3, 3), 144, "conv2"), padding=1), 32, "bn2"))
        h = sg.nn.dropout(sg.nn.max_pool2d(h, 2).flatten(2), rate=rate, rng=stream)
        W = weight((32 * 4 * 4, 10), 32 * 16, "W")
        b = sg.shared(np.zeros(10, dtype), name="b")
        self.params.append(b)
        probabilities = sg.nn.softmax(h @ W + b)
        loss = sg.nn.categorical_crossentropy(probabilities, y).mean()
        updates = sg.optim.adam(loss, self.params, learning_rate)
        self.train = sg.function([x, y], loss, updates=updates, phase="train")
        self.predict = sg.function([x], probabilities, phase="predict")


def save_curves(path: str, history: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (losses, accuracies) = plt.subplots(1, 2, figsize=(10, 4))
    plot_history(losses, accuracies, history)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    options = parser(__doc__.splitlines()[0], epochs=20, out="out/cnn_digits").parse_args()
    dtype = "float32" if options.float32 else "float64"
    sg.config.floatX = dtype
    folder = output_folder(options.out)
    started = time.perf_counter()
    data = load_digits(options.seed, dtype, images=True)
    model = ConvNet(options.seed, dtype)
    print(f"digits: {len(data.y_train)} training and {len(data.y_test)} test images, {dtype}")
    history = train_and_report(model, data, options.epochs, options.seed)
    save_curves(os.path.join(folder, "training.png"), history)
    # The trained model, for examples/serve.py (or any process): sg.load(path)["predict"](images)
    sg.save(os.path.join(folder, "model.sg"), {"train": model.train, "predict": model.predict})
    written = ["training.png", "model.sg", *write_graph_pictures(model, folder)]
    print(f"wrote {', '.join(written)} into {folder} ({time.perf_counter() - started:.1f} s in all)")


if __name__ == "__main__":
    main()
