"""Stable forms of logarithms of activations, chosen when the graph is built.

``log(sigmoid(x))`` underflows to ``-inf`` for ``x`` below about -100 (-17 in float32), and its
gradient, ``(1 / sigmoid(x)) * sigmoid'(x)``, becomes ``inf * 0 = nan``; ``log(1 - sigmoid(x))``
does the same for large ``x`` (float32 ``log(1 - sigmoid(20))`` is ``-inf``). Code written for
Theano, whose compiler stabilized these, writes them by hand (autoencoders, RBMs, logistic
regression). So ``sg.log`` and ``sg.log1p`` recognise them in their operand and build the stable
form instead, which every mode, ``.eval()`` and ``sg.grad`` then compute:

| written | built |
| --- | --- |
| ``log(sigmoid(x))`` | ``-softplus(-x)`` |
| ``log(1 - sigmoid(x))``, ``log1p(-sigmoid(x))`` | ``-softplus(x)`` |
| ``log(1 + exp(x))``, ``log1p(exp(x))`` | ``softplus(x)`` |
| ``log(softmax(x, axis))`` | ``log_softmax(x, axis)`` |

Only the exact shapes above are recognised, on float operands; the form stands for the expression
only when it keeps its dtype and shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graph.basic import Constant, Variable
from ..ops.elemwise import add, add_build_rule, exp, log, log1p, neg, sub
from .activations import LogSoftmax, Softmax, sigmoid, softplus


def _is_one(variable: Any, like: Variable) -> bool:
    """Whether ``variable`` is the number 1, or a constant of ones that broadcasting ``like``
    against changes nothing."""
    if isinstance(variable, (bool, np.bool_)):
        return False
    if isinstance(variable, (int, float, np.integer, np.floating)):
        return variable == 1
    return (
        isinstance(variable, Constant)
        and variable.data.size == 1
        and variable.ndim <= like.ndim
        and variable.data.reshape(()) == 1
    )


def _operand_of(variable: Any, op: Any) -> Variable | None:
    """The operand of ``variable`` if it is the output of the one-operand op ``op``."""
    owner = getattr(variable, "owner", None)
    if owner is not None and owner.op == op:
        return owner.inputs[0]
    return None


def _keeps_type(form: Variable, written: Variable) -> Variable | None:
    return form if form.type == written.type else None


def _float(variable: Variable | None) -> Variable | None:
    """``variable`` if it holds floats (negating unsigned or bool logits would wrap around)."""
    return variable if variable is not None and variable.type.is_float else None


def _stable_log(x: Any) -> Variable | None:
    owner = getattr(x, "owner", None)
    if owner is None:
        return None
    if owner.op == sigmoid and _float(owner.inputs[0]) is not None:
        return _keeps_type(-softplus(-owner.inputs[0]), x)
    if isinstance(owner.op, Softmax):
        return _keeps_type(LogSoftmax(owner.op.axis)(owner.inputs[0]), x)
    if owner.op == sub and _is_one(owner.inputs[0], owner.inputs[1]):
        logits = _float(_operand_of(owner.inputs[1], sigmoid))
        if logits is not None:
            return _keeps_type(-softplus(logits), x)
    if owner.op == add:
        for one, other in ((0, 1), (1, 0)):
            if _is_one(owner.inputs[one], owner.inputs[other]):
                exponent = _float(_operand_of(owner.inputs[other], exp))
                if exponent is not None:
                    return _keeps_type(softplus(exponent), x)
    return None


def _stable_log1p(x: Any) -> Variable | None:
    exponent = _float(_operand_of(x, exp))
    if exponent is not None:
        return _keeps_type(softplus(exponent), x)
    logits = _float(_operand_of(_operand_of(x, neg), sigmoid))
    if logits is not None:
        return _keeps_type(-softplus(logits), x)
    return None


add_build_rule(log, _stable_log)
add_build_rule(log1p, _stable_log1p)
