"""docs/ARCHITECTURE.md's recipe for adding an op is complete and true: its example op, run
exactly as written there, merges, differentiates and runs on both backends."""

from __future__ import annotations

import os
import re

import numpy as np

import symgraph as sg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _recipe() -> dict:
    with open(os.path.join(ROOT, "docs", "ARCHITECTURE.md"), encoding="utf-8") as architecture:
        text = architecture.read()
    section = text.split("### Adding an op", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    namespace: dict = {"__name__": "recipe"}
    exec(compile(code, "docs/ARCHITECTURE.md", "exec"), namespace)
    return namespace


def test_the_recipes_op_computes_merges_and_differentiates():
    recipe = _recipe()
    clamp, Clamp = recipe["clamp"], recipe["Clamp"]
    x = sg.vector("x")
    f = sg.function([x], [clamp(x), clamp(x), clamp(x, 0.0, 0.5)])
    assert [node.op.name for node in f.nodes].count("clamp") == 2  # equal ops merged, others not
    value = np.array([-2.0, 0.25, 3.0])
    first, second, third = f(value)
    np.testing.assert_array_equal(first, np.clip(value, -1, 1))
    np.testing.assert_array_equal(second, first)
    np.testing.assert_array_equal(third, np.clip(value, 0, 0.5))
    assert Clamp(0.0, 1.0) == Clamp(0.0, 1.0) != Clamp(0.0, 2.0)
    sg.verify_grad(lambda v: clamp(v * 0.5).sum(), [np.array([-1.3, 0.2, 0.7])])


def test_the_recipes_op_runs_on_both_backends():
    clamp = _recipe()["clamp"]
    x = sg.vector("x")
    results = [
        sg.function([x], [clamp(x), sg.grad(clamp(x).sum(), x)], backend=backend)([-2.0, 0.5])
        for backend in ("numpy", "python")
    ]
    for fast, reference in zip(*results):
        np.testing.assert_array_equal(fast, reference)
