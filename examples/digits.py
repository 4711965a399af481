"""The handwritten digits that ship with scikit-learn (8x8 images, no download), and what the
digits examples share: the split, minibatches, and the command-line options."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

import numpy as np


@dataclass
class Digits:
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def load_digits(seed: int, dtype: str, images: bool = False, test_fraction: float = 0.2) -> Digits:
    """Pixels scaled to [0, 1], split 80/20 with a fixed seed (stratified by class).
    ``images=True`` gives (N, 1, 8, 8) arrays for convolutions, else (N, 64)."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise SystemExit("this example needs scikit-learn: pip install -e '.[examples]'") from None
    data = sklearn_digits()
    X = (data.data / 16.0).astype(dtype)
    if images:
        X = X.reshape(-1, 1, 8, 8)
    y = data.target.astype("int32")
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_fraction, random_state=seed, stratify=y)
    return Digits(X_train, y_train, X_test, y_test)


def minibatches(count: int, batch_size: int, rng: np.random.Generator):
    """Index arrays of shuffled minibatches covering ``count`` examples once."""
    order = rng.permutation(count)
    for start in range(0, count, batch_size):
        yield order[start : start + batch_size]


def parser(description: str, epochs: int, out: str) -> argparse.ArgumentParser:
    """The options every digits example takes."""
    arguments = argparse.ArgumentParser(description=description)
    arguments.add_argument(
        "--epochs", type=int, default=epochs, help=f"passes over the training set (default {epochs})"
    )
    arguments.add_argument(
        "--seed", type=int, default=0, help="seed of the data split, the weights and dropout (default 0)"
    )
    arguments.add_argument("--out", default=out, help=f"folder for the pictures it writes (default {out})")
    arguments.add_argument("--float32", action="store_true", help="compute in float32 (default float64)")
    return arguments


def progress(iterable, description: str, total: int):
    """A tqdm progress bar, or the plain iterable when tqdm is not installed."""
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, desc=description, total=total, leave=False, dynamic_ncols=True)


def output_folder(path: str) -> str:
    os.makedirs(path, exist_ok=True)
    return os.path.abspath(path)


def evaluate(predict, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of a compiled ``predict`` giving class probabilities."""
    probabilities = predict(X)
    loss = float(-np.log(np.maximum(probabilities[np.arange(len(y)), y], 1e-12)).mean())
    return loss, float((probabilities.argmax(axis=1) == y).mean())


def fit(train, X: np.ndarray, y: np.ndarray, epochs: int, seed: int, batch_size: int = 64):
    """Call the compiled ``train`` on shuffled minibatches; yields ``(epoch, mean loss)`` after
    each pass over the data."""
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        losses = [float(train(X[batch], y[batch])) for batch in minibatches(len(y), batch_size, rng)]
        yield epoch, float(np.mean(losses))


def train_and_report(model, data: Digits, epochs: int, seed: int) -> dict:
    """Train ``model`` (with ``.train`` and ``.predict``), printing after each epoch its loss and
    its accuracy on both sets in the predict phase; returns those per-epoch figures."""
    history: dict = {key: [] for key in ("train loss", "test loss", "train accuracy", "test accuracy")}
    bar = progress(fit(model.train, data.X_train, data.y_train, epochs, seed), "training", epochs)
    for epoch, minibatch_loss in bar:
        train_loss, train_accuracy = evaluate(model.predict, data.X_train, data.y_train)
        test_loss, test_accuracy = evaluate(model.predict, data.X_test, data.y_test)
        for key, value in zip(history, (train_loss, test_loss, train_accuracy, test_accuracy)):
            history[key].append(value)
        line = (
            f"epoch {epoch + 1:3d}: loss {minibatch_loss:.4f} (train phase), test loss {test_loss:.4f}, "
            f"train accuracy {train_accuracy:.4f}, test accuracy {test_accuracy:.4f}"
        )
        (bar.write if hasattr(bar, "write") else print)(line)
    print(f"test accuracy after {epochs} epochs: {history['test accuracy'][-1]:.4f}")
    return history


def plot_history(losses, accuracies, history: dict) -> None:
    """The per-epoch loss and accuracy curves, on two matplotlib axes."""
    epochs = np.arange(1, len(history["train loss"]) + 1)
    for key in ("train loss", "test loss"):
        losses.plot(epochs, history[key], label=key)
    losses.set(xlabel="epoch", ylabel="cross-entropy", title="loss (predict phase)")
    for key in ("train accuracy", "test accuracy"):
        accuracies.plot(epochs, history[key], label=key)
    accuracies.set(xlabel="epoch", ylabel="accuracy", title="accuracy (predict phase)", ylim=(0.85, 1.001))
    for axes in (losses, accuracies):
        axes.legend()
        axes.grid(alpha=0.3)


def write_graph_pictures(model, folder: str) -> list[str]:
    """Pictures of the compiled train and predict graphs (each call's nodes folded into one box:
    a dropout, the loss, the gradients, Adam's update of each parameter), and the explorer of
    each and of both side by side (HTML pages that need no install); the names of the files
    written."""
    import symgraph as sg

    written = []
    try:
        sg.plot(model.train, os.path.join(folder, "train_graph.svg"))
        sg.plot(model.predict, os.path.join(folder, "predict_graph.svg"))
        written += ["train_graph.svg", "predict_graph.svg"]
    except ImportError as error:
        print(f"graph pictures skipped: {error}")
    sg.plot(model.train, os.path.join(folder, "train_graph.html"))
    sg.plot(model.predict, os.path.join(folder, "predict_graph.html"))
    sg.plot([model.train, model.predict], os.path.join(folder, "train_vs_predict.html"), titles=["train", "predict"])
    return written + ["train_graph.html", "predict_graph.html", "train_vs_predict.html"]
