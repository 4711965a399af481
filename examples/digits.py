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
