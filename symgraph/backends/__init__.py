"""Backends: what a compiled graph runs on.

A backend turns a rewritten :class:`~symgraph.graph.fgraph.FunctionGraph` into a Python callable
(``Backend.link``). Each translates ops through its own table, a ``functools.singledispatch``
function on the op class (as PyTensor's ``jax_funcify``): adding an op to a backend is one
registration in its folder, and an op with no entry falls back to its ``perform`` where the
backend can run numpy code.

- ``'numpy'`` (:mod:`symgraph.backends.numpy`), the default: one straight-line Python function
  generated per graph, with in-place computation planned at compile time.
- ``'python'`` (:mod:`symgraph.backends.python`), the reference: every node's ``perform``, in
  order, nothing in place, every result checked in mode ``'debug'``.
- ``'dask'`` (:mod:`symgraph.backends.dask`, the ``dask`` extra): the graph on ``dask.array``,
  computed in one ``dask.compute`` (on a cluster, if one is active) or returned lazily.

A new backend is one folder with a subclass of :class:`~symgraph.backends.base.Backend` and an
entry in ``BACKENDS``; nothing else in the compiler changes.
"""

from __future__ import annotations

import importlib

from .base import Backend

#: Backend name -> the module whose ``BACKEND`` is its instance (imported when first used).
BACKENDS = {
    "numpy": "symgraph.backends.numpy",
    "python": "symgraph.backends.python",
    "dask": "symgraph.backends.dask",
}


def get_backend(backend: "str | Backend") -> Backend:
    """The backend named ``backend`` (a ``ValueError`` naming the choices for an unknown one)."""
    if isinstance(backend, Backend):
        return backend
    module = BACKENDS.get(backend) if isinstance(backend, str) else None
    if module is None:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, not {backend!r}")
    return importlib.import_module(module).BACKEND


__all__ = ["BACKENDS", "Backend", "get_backend"]
