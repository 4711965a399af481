"""What a saved file may name, and nothing else: op classes (``OP_CLASSES``, filled by every
``sg.Op`` subclass as it is defined), elementwise ops, and numpy's bit generators.

An elementwise op is one ``Elemwise`` instance holding numpy functions, which are code and so
never go into a file: it is saved by a registered name. The built-in ones (those symgraph's
modules define) are registered by their own names (``"exp"``, ``"relu"``); a user's own
``Elemwise`` instance needs
:func:`register_elemwise`, in the module that defines it, imported before ``sg.load``.
"""

from __future__ import annotations

import sys

import numpy as np

from ..graph.op import OP_CLASSES, op_class_name
from ..ops.elemwise import Elemwise

__all__ = ["BIT_GENERATORS", "OP_CLASSES", "elemwise_by_name", "elemwise_name", "op_class_name", "register_elemwise"]

#: The bit generators a saved random generator may use, by the name numpy gives their state.
BIT_GENERATORS: dict[str, type[np.random.BitGenerator]] = {
    "PCG64": np.random.PCG64,
    "PCG64DXSM": np.random.PCG64DXSM,
    "MT19937": np.random.MT19937,
    "Philox": np.random.Philox,
    "SFC64": np.random.SFC64,
}

_BY_NAME: dict[str, Elemwise] = {}
_NAMES: dict[Elemwise, str] = {}


def register_elemwise(op: Elemwise, name: str | None = None) -> Elemwise:
    """Let ``sg.save`` and ``sg.load`` know an elementwise op by ``name`` (its own name by default;
    prefer a dotted name of your package's, ``'mypackage.leaky_relu'``). Returns the op, so that
    ``leaky_relu = register_elemwise(Elemwise(...))`` reads naturally. A name already taken by
    another op is a ``ValueError``."""
    if not isinstance(op, Elemwise):
        raise TypeError(f"register_elemwise takes an Elemwise op, not {op!r}")
    name = op.name if name is None else name
    if not isinstance(name, str) or not name:
        raise TypeError(f"an elementwise op's registered name is a non-empty string, not {name!r}")
    _register_built_ins()
    taken = _BY_NAME.get(name)
    if taken is not None and taken != op:
        raise ValueError(f"the elementwise op name {name!r} is taken by another op; choose another name")
    _BY_NAME[name] = op
    _NAMES.setdefault(op, name)
    return op


def elemwise_name(op: Elemwise) -> str | None:
    """The name ``op`` is registered under, or ``None``."""
    _register_built_ins()
    name = _NAMES.get(op)
    if name is None:  # perhaps defined by a symgraph module imported since
        _register_built_ins(again=True)
        name = _NAMES.get(op)
    return name


def elemwise_by_name(name: str) -> Elemwise | None:
    """The elementwise op registered under ``name``, or ``None``."""
    _register_built_ins()
    return _BY_NAME.get(name)


def _register_built_ins(again: bool = False) -> None:
    """The elementwise ops that symgraph's own modules define, each by its own name."""
    if _NAMES and not again:
        return
    for module_name, module in list(sys.modules.items()):
        if module is None or not (module_name == "symgraph" or module_name.startswith("symgraph.")):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Elemwise) and value not in _NAMES and value.name not in _BY_NAME:
                _BY_NAME[value.name] = value
                _NAMES[value] = value.name
