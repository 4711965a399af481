"""An LSTM that captions handwritten digits: from an 8x8 image, it writes the digit's English
name letter by letter ("seven"), as the image-captioning models of the tutorials write sentences.

    image -> dense 128 + ReLU -> the LSTM's initial state (h0, c0)
    previous letter -> embedding 16 -> dropout -> LSTM 128 -> dense + softmax -> next letter

Training uses teacher forcing: one ``sg.scan`` runs the LSTM over the true caption shifted by one
letter (a start token first), with dropout on the LSTM's input, in ``phase='train'``. The predict
function decodes greedily inside one ``sg.scan``: each step feeds its most likely letter back as
the next input; a caption that wrote the end token stays ended (a mask), and once every caption of
the batch has ended, an ``sg.ifelse`` skips the LSTM altogether. Both functions come from the same
model (the same parameters and the same LSTM step), compiled for the two phases.

It prints the loss and the share of test images captioned exactly, per epoch, and writes into
--out the training curves (training.png), a few test images with their captions (captions.png)
and a picture of the predict function's graph.

    python examples/lstm_captions.py        # 16 s of CPU time (44 s on a busy 2-core machine)
"""

from __future__ import annotations

import os
import time

import numpy as np
from digits import load_digits, minibatches, output_folder, parser, progress

import symgraph as sg

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
END, START = 0, 1  # token numbers; the letters follow
LETTERS = sorted(set("".join(NAMES)))
LENGTH = max(len(name) for name in NAMES) + 1  # letters, then at least one end token
VOCABULARY = 2 + len(LETTERS)


def encode(labels: np.ndarray) -> np.ndarray:
    """The captions of ``labels`` as token numbers, (N, LENGTH), padded with end tokens."""
    table = np.full((10, LENGTH), END, dtype="int32")
    for digit, name in enumerate(NAMES):
        table[digit, : len(name)] = [2 + LETTERS.index(letter) for letter in name]
    return table[labels]


def decode(tokens: np.ndarray) -> str:
    """A caption's text: its letters up to the first end token."""
    letters = []
    for token in tokens:
        if token == END:
            break
        letters.append(LETTERS[token - 2] if token >= 2 else "?")
    return "".join(letters)


class Captioner:
    """The model: an image encoder and an LSTM decoder, compiled into ``train`` (teacher forcing,
    dropout, Adam), ``evaluate`` (the same loss without dropout, and the greedy captions) and
    ``predict`` (the greedy captions)."""

    def __init__(
        self,
        seed: int,
        dtype: str,
        hidden: int = 128,
        embedding: int = 16,
        rate: float = 0.25,
        learning_rate: float = 4e-3,
    ):
        rng = np.random.default_rng(seed)
        stream = sg.RandomStreams(seed)
        self.params: list[sg.SharedVariable] = []

        def parameter(shape: tuple, scale: float, name: str) -> sg.SharedVariable:
            self.params.append(sg.shared((rng.standard_normal(shape) * scale).astype(dtype), name=name))
            return self.params[-1]

        H = hidden
        W_image, b_image = parameter((64, 128), np.sqrt(2 / 64), "W_image"), parameter((128,), 0, "b_image")
        W_state, b_state = parameter((128, 2 * H), np.sqrt(1 / 128), "W_state"), parameter((2 * H,), 0, "b_state")
        letters = parameter((VOCABULARY, embedding), 1.0, "letters")
        W_input, W_hidden = (
            parameter((embedding, 4 * H), np.sqrt(1 / embedding), "W_input"),
            parameter((H, 4 * H), np.sqrt(1 / H), "W_hidden"),
        )
        b_gates = parameter((4 * H,), 0, "b_gates")
        W_out, b_out = parameter((H, VOCABULARY), np.sqrt(1 / H), "W_out"), parameter((VOCABULARY,), 0, "b_out")

        x = sg.matrix("x", dtype=dtype, shape=(None, 64))
        captions = sg.imatrix("captions")  # (N, LENGTH)
        features = sg.nn.relu(x @ W_image + b_image)
        state = features @ W_state + b_state
        h0, c0 = sg.tanh(state[:, :H]), state[:, H:]

        def lstm_step(token, h, c):
            """One step of the LSTM reading the letter ``token`` (dropout on its embedding)."""
            a = sg.nn.dropout(letters[token], rate=rate, rng=stream) @ W_input + h @ W_hidden + b_gates
            gates = sg.nn.sigmoid(a[:, : 3 * H])
            c_new = gates[:, H : 2 * H] * c + gates[:, :H] * sg.tanh(a[:, 3 * H :])
            return gates[:, 2 * H :] * sg.tanh(c_new), c_new

        # Teacher forcing: step t reads the true letter t - 1 and predicts letter t.
        batch = x.shape[0]
        starts = sg.ones((batch, 1), dtype="int32") * START
        previous = sg.concatenate([starts, captions[:, :-1]], axis=1).T
        (hs, _), _ = sg.scan(lstm_step, sequences=previous, outputs_info=[h0, c0], name="teacher_forcing")
        probabilities = sg.nn.softmax(hs.reshape((LENGTH * batch, H)) @ W_out + b_out)
        loss = sg.nn.categorical_crossentropy(probabilities, captions.T.flatten()).mean()

        # Greedy decoding: each step's best letter is the next step's input.
        def greedy_step(token, ended, h, c):
            h_new, c_new = lstm_step(token, h, c)
            best = sg.argmax(h_new @ W_out + b_out, axis=1).astype("int32")
            best = sg.where(ended, END, best)  # an ended caption writes end tokens
            stepped = [best, ended | sg.eq(best, END), h_new, c_new]
            # Once every caption has ended there is nothing left to compute: the LSTM is skipped.
            all_ended = sg.min(ended.astype("int8")) > 0
            return sg.ifelse(all_ended, [token, ended, h, c], stepped, name="until_all_ended")

        (written, _, _, _), _ = sg.scan(
            greedy_step,
            outputs_info=[starts[:, 0], sg.zeros((batch,), dtype="bool"), h0, c0],
            n_steps=LENGTH,
            name="greedy_decoder",
        )
        greedy = written.T  # (N, LENGTH)
        updates = sg.optim.adam(loss, self.params, learning_rate)
        self.train = sg.function([x, captions], loss, updates=updates, phase="train")
        self.evaluate = sg.function([x, captions], [loss, greedy], phase="predict")
        self.predict = sg.function([x], greedy, phase="predict")


def exact(predicted: np.ndarray, truth: np.ndarray) -> float:
    """The share of captions written exactly (every letter and the end)."""
    return float((predicted == truth).all(axis=1).mean())


def train(model: Captioner, data, epochs: int, seed: int, batch_size: int = 64) -> dict:
    rng = np.random.default_rng(seed)
    train_captions, test_captions = encode(data.y_train), encode(data.y_test)
    history: dict = {key: [] for key in ("train loss", "test loss", "train exact", "test exact")}
    bar = progress(range(epochs), "training", epochs)
    for epoch in bar:
        for batch in minibatches(len(data.y_train), batch_size, rng):
            model.train(data.X_train[batch], train_captions[batch])
        train_loss, train_greedy = model.evaluate(data.X_train, train_captions)
        test_loss, test_greedy = model.evaluate(data.X_test, test_captions)
        figures = (
            float(train_loss),
            float(test_loss),
            exact(train_greedy, train_captions),
            exact(test_greedy, test_captions),
        )
        for key, value in zip(history, figures):
            history[key].append(value)
        line = (
            f"epoch {epoch + 1:3d}: train loss {figures[0]:.4f}, test loss {figures[1]:.4f}, "
            f"captioned exactly: train {figures[2]:.4f}, test {figures[3]:.4f}"
        )
        (bar.write if hasattr(bar, "write") else print)(line)
    print(f"test images captioned exactly after {epochs} epochs: {history['test exact'][-1]:.4f}")
    return history


def save_pictures(folder: str, history: dict, data, predicted: np.ndarray, seed: int) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history["train loss"]) + 1)
    figure, (losses, accuracies) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("train loss", "test loss"):
        losses.plot(epochs, history[key], label=key)
    losses.set(xlabel="epoch", ylabel="cross-entropy per letter", title="loss (teacher forcing, predict phase)")
    for key in ("train exact", "test exact"):
        accuracies.plot(epochs, history[key], label=key.replace("exact", "captions exact"))
    accuracies.set(xlabel="epoch", ylabel="share of images", title="captions written exactly (greedy)", ylim=(0, 1.01))
    for axes in (losses, accuracies):
        axes.legend()
        axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(os.path.join(folder, "training.png"), dpi=110)
    plt.close(figure)

    shown = np.random.default_rng(seed).choice(len(data.y_test), size=16, replace=False)
    figure, grid = plt.subplots(2, 8, figsize=(12, 3.6))
    for axes, index in zip(grid.flat, shown):
        caption, truth = decode(predicted[index]), NAMES[data.y_test[index]]
        axes.imshow(data.X_test[index].reshape(8, 8), cmap="gray_r")
        axes.set_title(f'"{caption}"', color="green" if caption == truth else "red", fontsize=11)
        axes.axis("off")
    figure.suptitle("test images and the captions the LSTM wrote (red: wrong)")
    figure.tight_layout()
    figure.savefig(os.path.join(folder, "captions.png"), dpi=110)
    plt.close(figure)
    return ["training.png", "captions.png"]


def main() -> None:
    options = parser(__doc__.splitlines()[0], epochs=20, out="out/lstm_captions").parse_args()
    dtype = "float32" if options.float32 else "float64"
    sg.config.floatX = dtype
    folder = output_folder(options.out)
    started = time.perf_counter()
    data = load_digits(options.seed, dtype)
    model = Captioner(options.seed, dtype)
    print(
        f"digits: {len(data.y_train)} training and {len(data.y_test)} test images, {dtype}, captions of {LENGTH} tokens"
    )
    history = train(model, data, options.epochs, options.seed)
    predicted = model.predict(data.X_test)
    for index in range(5):
        print(f"  test image {index}: a {data.y_test[index]}, captioned {decode(predicted[index])!r}")
    written = save_pictures(folder, history, data, predicted, options.seed)
    try:
        sg.plot(model.predict, os.path.join(folder, "predict_graph.svg"))
        written.append("predict_graph.svg")
    except ImportError as error:
        print(f"graph picture skipped: {error}")
    print(f"wrote {', '.join(written)} into {folder} ({time.perf_counter() - started:.1f} s in all)")


if __name__ == "__main__":
    main()
