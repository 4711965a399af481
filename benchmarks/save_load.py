"""Saving and loading the CNN example's train and predict functions (examples/cnn_digits.py).

Targets: ``sg.save`` and ``sg.load`` each under 50 ms (loading includes compiling both functions
again), and the file no larger than 1.1x the bytes of the arrays it holds. Baselines in the same
run: ``numpy.savez``/``numpy.load`` of the same arrays (what saving by hand with ``get_value``
costs), and compiling the two functions from their graphs (what loading must at least do).
``pickle.dumps``/``pickle.loads`` of the same two functions (loading compiles them again too) are
timed beside ``sg.save``/``sg.load``.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/save_load.py
"""

from __future__ import annotations

import json
import os
import pickle
import statistics
import sys
import tempfile
import time
import zipfile

import numpy as np
from _timing import compare, format_time, machine

import symgraph as sg

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from cnn_digits import ConvNet


def measure(dtype: str, folder: str) -> None:
    sg.config.floatX = dtype
    model = ConvNet(0, dtype)
    rng = np.random.default_rng(0)
    for _ in range(3):  # moments, step count and statistics that are not zeros
        model.train(rng.random((64, 1, 8, 8)).astype(dtype), rng.integers(0, 10, 64).astype("int32"))
    functions = {"train": model.train, "predict": model.predict}
    path = os.path.join(folder, f"cnn_{dtype}.sg")
    npz = os.path.join(folder, f"cnn_{dtype}.npz")
    sg.save(path, functions)
    with zipfile.ZipFile(path) as archive:
        document = archive.read("symgraph.json")
        array_bytes = sum(
            int(np.prod(entry["shape"], dtype=np.int64)) * np.dtype(entry["dtype"]).itemsize
            for entry in json.loads(document)["arrays"]
        )
    shared = {f"a{k}": a for k, a in enumerate(_shared_arrays(model))}
    records = [function._record for function in (model.train, model.predict)]
    pickled = pickle.dumps(functions)

    times = compare(
        {
            "sg.save": lambda: sg.save(path, functions),
            "numpy.savez": lambda: np.savez(npz, **shared),
            "sg.load": lambda: sg.load(path),
            "numpy.load": lambda: dict(np.load(npz)),
            "compile": lambda: [record.compile() for record in records],
            "pickle.dumps": lambda: pickle.dumps(functions),
            "pickle.loads": lambda: pickle.loads(pickled),
        },
        rounds=5,
        seconds=0.3,
    )
    cpu = {name: cpu_time(function) for name, function in (("sg.save", lambda: sg.save(path, functions)),
           ("sg.load", lambda: sg.load(path)), ("compile", lambda: [record.compile() for record in records]))}  # fmt: skip
    size = os.path.getsize(path)
    print(f"\n{dtype}: train and predict functions, {len(json.loads(document)['nodes'])} nodes saved")
    print(f"  sg.save  {format_time(times['sg.save']):>10}  (numpy.savez {format_time(times['numpy.savez'])}, "
          f"{times['sg.save'] / times['numpy.savez']:.1f}x; CPU time {format_time(cpu['sg.save'])})   target < 50 ms")  # fmt: skip
    print(f"  sg.load  {format_time(times['sg.load']):>10}  (numpy.load {format_time(times['numpy.load'])}; "
          f"compiling both functions alone {format_time(times['compile'])}, "
          f"{times['sg.load'] / times['compile']:.2f}x; CPU time {format_time(cpu['sg.load'])}, compiling alone "
          f"{format_time(cpu['compile'])})   target < 50 ms")  # fmt: skip
    print(f"  pickle.dumps {format_time(times['pickle.dumps'])} ({times['pickle.dumps'] / times['sg.save']:.2f}x sg.save), "
          f"pickle.loads {format_time(times['pickle.loads'])} ({times['pickle.loads'] / times['sg.load']:.2f}x sg.load), "
          f"{len(pickled)} bytes")  # fmt: skip
    print(f"  file {size} bytes, arrays {array_bytes} bytes: {size / array_bytes:.3f}x   target <= 1.1x "
          f"(document {len(document)} bytes, deflated in the file)")  # fmt: skip


def cpu_time(function, repeats: int = 15) -> float:
    """Median CPU seconds of one call (what a loaded machine disturbs least)."""
    samples = []
    for _ in range(repeats):
        start = time.process_time()
        function()
        samples.append(time.process_time() - start)
    return statistics.median(samples)


def _shared_arrays(model) -> list[np.ndarray]:
    roots = sg.graph.traversal.roots(model.train.graph.computed + model.predict.graph.computed)
    return [
        variable.get_value(borrow=True)
        for variable in roots
        if isinstance(variable, sg.SharedVariable) and isinstance(variable.type, sg.TensorType)
    ]


def main() -> None:
    print(machine())
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min)")
    with tempfile.TemporaryDirectory() as folder:
        for dtype in ("float64", "float32"):
            measure(dtype, folder)


if __name__ == "__main__":
    main()
