"""Optimizers: ``sgd``, ``momentum`` and ``adam``, in PyTorch's form.

Each takes a scalar cost and the shared variables to train and returns ``(shared, new value)``
update pairs for ``sg.function(updates=...)``; one call of the compiled function is one step. The
state they need (velocities, moments, Adam's step counter) lives in new shared variables, of each
parameter's dtype and shape. Learning rates may be numbers or symbolic scalars (a shared variable
lets a schedule change it between calls).

    updates = sg.optim.adam(loss, [W, b], lr=1e-3)
    train = sg.function([x, y], loss, updates=updates)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .grad import grad
from .graph.basic import SharedVariable, Variable
from .graph.source import in_scope
from .ops.basic import as_tensor, cast, constant
from .ops.elemwise import sqrt

__all__ = ["adam", "momentum", "sgd"]

Updates = list[tuple[SharedVariable, Variable]]


def _parameters(params: Sequence[SharedVariable] | SharedVariable) -> list[SharedVariable]:
    params = [params] if isinstance(params, Variable) else list(params)
    for param in params:
        if not isinstance(param, SharedVariable):
            raise TypeError(f"optimizers update shared variables (sg.shared), not {param!r}")
        if not param.type.is_float:
            raise TypeError(f"parameter {param.label()} is {param.dtype}: only float parameters can be trained")
    return params


def _scalar(value: Any, dtype: str, what: str) -> Any:
    """A hyperparameter in the parameter's dtype: Python numbers stay weak (they never widen
    float32), symbolic scalars are cast to it."""
    if isinstance(value, Variable):
        if value.ndim != 0:
            raise ValueError(f"{what} must be a scalar, got {value.type.describe()}")
        return value if value.dtype == dtype else cast(value, dtype)
    return float(value)


def _state_like(param: SharedVariable, suffix: str) -> SharedVariable:
    """A new shared variable of zeros with ``param``'s dtype, shape and static shape."""
    from .variables import shared

    value = np.zeros_like(param.get_value(borrow=True))
    return shared(value, name=f"{param.label()}_{suffix}", shape=param.type.shape)


def sgd(cost: Variable, params: Sequence[SharedVariable], lr: Any) -> Updates:
    """Plain gradient descent: ``p <- p - lr * grad``.

    >>> train = sg.function([x, y], loss, updates=sg.optim.sgd(loss, [W, b], lr=0.1))
    """
    params = _parameters(params)
    gradients = grad(cost, params)
    updates: Updates = []
    for p, g in zip(params, gradients):
        with in_scope(f"sgd {p.label()}"):
            updates.append((p, p - _scalar(lr, p.dtype, "lr") * g))
    return updates


def momentum(
    cost: Variable, params: Sequence[SharedVariable], lr: Any, beta: Any = 0.9, nesterov: bool = False
) -> Updates:
    """SGD with momentum, PyTorch's form: ``v <- beta * v + grad; p <- p - lr * v``; with
    ``nesterov=True``, ``p <- p - lr * (grad + beta * v)`` (``v`` the new velocity). Velocities
    start at zero."""
    params = _parameters(params)
    gradients = grad(cost, params)
    updates: Updates = []
    for p, g in zip(params, gradients):
        with in_scope(f"momentum {p.label()}"):
            rate, decay = _scalar(lr, p.dtype, "lr"), _scalar(beta, p.dtype, "beta")
            velocity = _state_like(p, "velocity")
            new_velocity = decay * velocity + g
            step = g + decay * new_velocity if nesterov else new_velocity
            updates += [(velocity, new_velocity), (p, p - rate * step)]
    return updates


def adam(
    cost: Variable,
    params: Sequence[SharedVariable],
    lr: Any = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> Updates:
    """Adam, exactly as PyTorch computes it: with ``t`` the step (shared by every parameter,
    counted from 1), ``m <- beta1 m + (1 - beta1) g``, ``v <- beta2 v + (1 - beta2) g^2``,
    ``p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``."""
    from .variables import shared

    params = _parameters(params)
    gradients = grad(cost, params)
    with in_scope("adam step"):
        step = shared(np.int64(0), name="adam_step")
        new_step = step + 1
        # The bias corrections are scalars: computed in float64, then cast to each parameter's dtype.
        t = cast(new_step, "float64")
        correction1 = 1.0 - constant(np.float64(beta1)) ** t
        root_correction2 = sqrt(1.0 - constant(np.float64(beta2)) ** t)
        rate = cast(as_tensor(lr), "float64") if isinstance(lr, Variable) else float(lr)
        step_size = rate / correction1
    updates: Updates = [(step, new_step)]
    for p, g in zip(params, gradients):
        with in_scope(f"adam {p.label()}"):
            first, second = _state_like(p, "adam_m"), _state_like(p, "adam_v")
            new_first = beta1 * first + (1.0 - beta1) * g
            new_second = beta2 * second + (1.0 - beta2) * (g * g)
            denominator = sqrt(new_second) / cast(root_correction2, p.dtype) + eps
            new_p = p - cast(step_size, p.dtype) * new_first / denominator
            updates += [(first, new_first), (second, new_second), (p, new_p)]
    return updates
