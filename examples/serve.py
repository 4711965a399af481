"""Load a trained model in a fresh process and predict: the other half of training.

mlp_dropout_digits.py and cnn_digits.py save their trained model into their --out folder
(model.sg). This script never runs their model-building code: sg.load reads the graph and the
weights and compiles the predict function again. It reports the accuracy on the digits' test split,
and, when the onnx extra is installed, exports the predict function to ONNX (model.onnx beside the
model) and checks that onnxruntime predicts the same.

    python examples/cnn_digits.py && python examples/serve.py out/cnn_digits/model.sg
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from digits import load_digits

import symgraph as sg


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("model", nargs="?", default="out/mlp_dropout_digits/model.sg", help="a saved model")
    arguments.add_argument("--seed", type=int, default=0, help="the seed of the data split used in training")
    options = arguments.parse_args()

    started = time.perf_counter()
    predict = sg.load(options.model)["predict"]
    print(f"loaded {options.model} in {1000 * (time.perf_counter() - started):.0f} ms: {predict}")
    (images,) = predict.inputs
    data = load_digits(options.seed, images.dtype, images=images.ndim == 4)
    probabilities = predict(data.X_test)
    print(f"test accuracy of the loaded model: {(probabilities.argmax(axis=1) == data.y_test).mean():.4f}")

    try:
        import onnx  # noqa: F401 (sg.export_onnx needs it)
        import onnxruntime
    except ImportError:
        print('ONNX export skipped: pip install "symgraph[onnx]" for it')
        return
    path = os.path.join(os.path.dirname(os.path.abspath(options.model)), "model.onnx")
    sg.export_onnx(predict, path, float_dtype="float32")  # onnxruntime convolves in float32
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (exported,) = session.run(None, {session.get_inputs()[0].name: data.X_test.astype("float32")})
    difference = np.abs(exported - probabilities).max()
    print(f"wrote {path} (float32); onnxruntime's probabilities agree with symgraph's to {difference:.1e}")


if __name__ == "__main__":
    main()
