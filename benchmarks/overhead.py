"""Per-call overhead of a compiled function against plain numpy in a Python function.

1. ``sg.function([x], x + 1)`` on a 0-d float64 array, against ``def f(x): return x + 1``
   (target: at most 1.5x).
2. A chain of 20 elementwise ops on a 10-element vector, against the same 20 numpy calls written
   out in one Python function (target: at most 1.15x).

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/overhead.py
"""

from __future__ import annotations

import numpy as np
from _timing import compare, format_time, machine

import symgraph as sg


def plus_one(x):
    return x + 1


def numpy_chain(x):
    y = np.sin(x)
    y = y + 1.0
    y = np.exp(y)
    y = y * 0.5
    y = np.tanh(y)
    y = y - 0.25
    y = np.square(y)
    y = np.sqrt(y)
    y = y / 3.0
    y = np.cos(y)
    y = np.log1p(y)
    y = y * y
    y = np.abs(y)
    y = y + x
    y = np.maximum(y, 0.1)
    y = np.log(y)
    y = -y
    y = np.expm1(y)
    y = y * 2.0
    y = np.minimum(y, 5.0)
    return y


def symgraph_chain(x):
    y = sg.sin(x)
    y = y + 1.0
    y = sg.exp(y)
    y = y * 0.5
    y = sg.tanh(y)
    y = y - 0.25
    y = sg.square(y)
    y = sg.sqrt(y)
    y = y / 3.0
    y = sg.cos(y)
    y = sg.log1p(y)
    y = y * y
    y = sg.abs(y)
    y = y + x
    y = sg.maximum(y, 0.1)
    y = sg.log(y)
    y = -y
    y = sg.expm1(y)
    y = y * 2.0
    y = sg.minimum(y, 5.0)
    return y


def main() -> None:
    print(machine())
    scalar = sg.scalar("x")
    compiled_plus_one = sg.function([scalar], scalar + 1)
    zero_d = np.array(1.5)
    assert float(compiled_plus_one(zero_d)) == float(plus_one(zero_d))

    vector = sg.vector("x")
    compiled_chain = sg.function([vector], symgraph_chain(vector))
    data = np.linspace(0.1, 1.0, 10)
    np.testing.assert_allclose(compiled_chain(data), numpy_chain(data), rtol=1e-12)

    times = compare(
        {
            "plain x + 1": lambda: plus_one(zero_d),
            "sg.function x + 1": lambda: compiled_plus_one(zero_d),
            "numpy 20-op chain": lambda: numpy_chain(data),
            "sg.function 20-op chain": lambda: compiled_chain(data),
        }
    )
    print(f"{'what':28s} {'median per call':>16s}")
    for name, seconds in times.items():
        print(f"{name:28s} {format_time(seconds):>16s}")
    call_ratio = times["sg.function x + 1"] / times["plain x + 1"]
    chain_ratio = times["sg.function 20-op chain"] / times["numpy 20-op chain"]
    print(f"per-call overhead ratio (target <= 1.5):  {call_ratio:.2f}x")
    print(f"20-op chain ratio       (target <= 1.15): {chain_ratio:.2f}x")


if __name__ == "__main__":
    main()
