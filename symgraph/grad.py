"""Reverse-mode differentiation: ``sg.grad``, ``sg.jacobian``, ``sg.hessian``, ``sg.verify_grad``.

``grad`` walks the nodes between ``wrt`` and the cost once, in reverse topological order, asking
each op for the gradients of its inputs given those of its outputs, and summing the contributions
of a variable used several times. Every op builds its gradient from other ops, so the result is a
graph like any other: it can be differentiated again, printed, plotted and rewritten. The nodes it
builds are marked as gradient nodes and carry the user's line that called ``grad``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .errors import DisconnectedInputError, DTypeError, GradientError, PhaseError, ShapeError
from .graph.basic import Apply, Variable
from .graph.source import Scope, build_context, building, describe, user_source, warn_user
from .graph.traversal import garbage_collection_paused, postorder
from .graph.type import TensorType
from .ops.basic import as_tensor, cast, constant
from .ops.elemwise import add
from .ops.shape import zeros_like

_DISCONNECTED = ("raise", "warn", "ignore")


@garbage_collection_paused
def grad(
    cost: Variable | None,
    wrt: Variable | Sequence[Variable],
    consider_constant: Sequence[Variable] | None = None,
    disconnected_inputs: str = "raise",
    known_grads: dict | None = None,
) -> Variable | list[Variable]:
    """The gradient of the scalar ``cost`` with respect to ``wrt`` (a variable or a list: the same
    structure comes back), as new graph nodes.

    ``consider_constant``: variables through which no gradient flows. ``disconnected_inputs``:
    what to do for a ``wrt`` the cost does not depend on (``'raise'``, ``'warn'``, or
    ``'ignore'``: zeros then). ``known_grads``: ``{variable: gradient}`` to start from, with or
    instead of a cost (``sg.grad(None, wrt, known_grads=...)``); as in Theano, a known gradient
    is that variable's whole gradient (what would flow into it from the cost is not added).

    >>> x = sg.scalar('x'); sg.grad(x ** 3, x).eval({x: 2.0})
    array(12.)
    """
    if disconnected_inputs not in _DISCONNECTED:
        raise ValueError(f"disconnected_inputs must be one of {_DISCONNECTED}, not {disconnected_inputs!r}")
    single = isinstance(wrt, Variable)
    if not single and not isinstance(wrt, (list, tuple)):
        raise TypeError(f"sg.grad differentiates with respect to a variable or a list of them, not {wrt!r}")
    wrt_list = [wrt] if single else list(wrt)
    for variable in wrt_list:
        if not isinstance(variable, Variable):
            raise TypeError(f"sg.grad differentiates with respect to variables, not {variable!r}")
    with building(source=user_source(), gradient=True):
        starts = _starting_gradients(cost, known_grads)
        known = {id(variable) for variable in known_grads or {}}
        gradients = _backward(starts, wrt_list, consider_constant or (), known)
        result = [_finish(variable, gradients.get(variable), disconnected_inputs) for variable in wrt_list]
    if single:
        return result[0]
    return tuple(result) if isinstance(wrt, tuple) else result


def _starting_gradients(cost: Variable | None, known_grads: dict | None) -> dict[Variable, Variable]:
    starts: dict[Variable, Variable] = {}
    if cost is not None:
        cost = as_tensor(cost)
        if cost.ndim != 0:
            raise ShapeError(
                f"sg.grad needs a scalar cost, but {cost.label()} has shape {cost.type.describe()}; "
                "reduce it first (e.g. cost.sum() or cost.mean())"
            )
        if not cost.type.is_float:
            raise DTypeError(f"sg.grad needs a float cost, but {cost.label()} is {cost.dtype}")
        starts[cost] = constant(np.ones((), dtype=cost.type.numpy_dtype))
    for variable, gradient in (known_grads or {}).items():
        gradient = as_tensor(gradient)
        if gradient.ndim != variable.ndim:
            raise ShapeError(
                f"known_grads: the gradient of {variable.label()} ({variable.type.describe()}) must have "
                f"its number of dimensions, got {gradient.type.describe()}"
            )
        starts[variable] = cast(gradient, variable.dtype) if variable.type.is_float else gradient
    if not starts:
        raise ValueError("sg.grad needs a cost, or known_grads to start from")
    return starts


def _backward(
    starts: dict[Variable, Variable],
    wrt: Sequence[Variable],
    consider_constant: Sequence[Variable],
    known: set[int],
) -> dict[Variable, Variable]:
    blocked = {id(variable) for variable in consider_constant}
    nodes = postorder(list(starts), stop=consider_constant)
    # The variables that depend on some wrt: only those need (and get) gradients.
    depends = {id(variable) for variable in wrt}
    relevant: list[Apply] = []
    for node in nodes:
        if any(id(variable) in depends for variable in node.inputs):
            relevant.append(node)
            depends.update(id(output) for output in node.outputs if id(output) not in blocked)
    contributions: dict[Variable, list[Variable]] = {v: [g] for v, g in starts.items()}
    gradient_scope = _GradientScopes()
    for node in reversed(relevant):
        output_grads = [_total(contributions.get(output)) for output in node.outputs]
        if all(g is None for g in output_grads):
            continue
        needed = [
            id(variable) in depends
            and id(variable) not in blocked
            and id(variable) not in known  # a known gradient is final
            and _differentiable(variable)
            for variable in node.inputs
        ]
        if not any(needed):
            continue
        scope = gradient_scope(node.scope)
        if scope is build_context.scope:  # (most nodes: no context to enter)
            input_grads = node.op.grad(node, output_grads, needed)
        else:
            with building(scope=scope):
                input_grads = node.op.grad(node, output_grads, needed)
        for variable, gradient, wanted in zip(node.inputs, input_grads, needed):
            if gradient is None or not wanted:
                continue
            _check_gradient(node, variable, gradient)
            contributions.setdefault(variable, []).append(gradient)
    return {variable: _total(contributions.get(variable)) for variable in wrt if contributions.get(variable)}


def vector_jacobian_product(
    outputs: Sequence[Variable], cotangents: Sequence[Variable], wrt: Sequence[Variable]
) -> list[Variable | None]:
    """The gradients of ``sum_k <outputs[k], cotangents[k]>`` with respect to ``wrt`` (``None``
    where nothing flows), for ops that hold a graph (their gradient is this product on the inner
    graph). Unlike ``known_grads``, a cotangent adds to what flows into its output from the other
    outputs (an inner graph may give both ``h`` and ``f(h)``); an output given twice gets the sum."""
    starts: dict[Variable, Variable] = {}
    for output, cotangent in zip(outputs, cotangents):
        starts[output] = add(starts[output], cotangent) if output in starts else cotangent
    if not starts:
        return [None] * len(wrt)
    with building(gradient=True):
        gradients = _backward(starts, list(wrt), (), set())
    return [
        gradients.get(variable) if gradients.get(variable) is None else cast(gradients[variable], variable.dtype)
        for variable in wrt
    ]


class _GradientScopes:
    """The scope of the gradient nodes of each forward scope (``batch_norm`` -> ``batch_norm
    (gradient)``), one per scope for one call of ``grad``, nested as the forward scopes are."""

    def __init__(self) -> None:
        self._made: dict[int, Scope] = {}
        self._outer = build_context.scope  # the scope grad was called in

    def __call__(self, scope: Scope | None) -> Scope | None:
        if scope is None:
            return self._outer
        made = self._made.get(id(scope))
        if made is None:
            parent = self(scope.parent)
            made = self._made[id(scope)] = Scope(f"{scope.name} (gradient)", parent, scope.source)
        return made


def _differentiable(variable: Variable) -> bool:
    return isinstance(variable.type, TensorType) and variable.type.is_float


def _total(gradients: list[Variable] | None) -> Variable | None:
    if not gradients:
        return None
    total = gradients[0]
    for gradient in gradients[1:]:
        total = add(total, gradient)
    if len(gradients) > 1:
        gradients[:] = [total]  # summed once, however often it is asked for
    return total


def _check_gradient(node: Apply, variable: Variable, gradient: Variable) -> None:
    if gradient.ndim != variable.ndim:
        raise ShapeError(
            f"the gradient rule of {node.op.name} gave {gradient.type.describe()} for input "
            f"{variable.label()} of {variable.type.describe()} (a bug in that op's grad)"
        )


def _finish(variable: Variable, gradient: Variable | None, disconnected: str) -> Variable:
    if gradient is not None:
        return cast(gradient, variable.dtype) if variable.type.is_float else gradient
    if disconnected != "ignore":
        where = f", built at {describe(variable.source)}" if variable.owner is not None else ""
        message = (
            f"sg.grad: the cost does not depend on {variable.label()} ({variable.type.describe()}){where}"
            + ("" if _differentiable(variable) else f" (it is {variable.dtype}: only floats have gradients)")
            + "; pass disconnected_inputs='ignore' to get zeros for it"
        )
        if disconnected == "raise":
            raise DisconnectedInputError(message)
        warn_user(message)
    return zeros_like(variable, dtype=variable.dtype)


# --- Jacobians and Hessians -----------------------------------------------------------------------
def jacobian(expression: Variable, wrt: Variable | Sequence[Variable]) -> Variable | list[Variable]:
    """The Jacobian of ``expression`` with respect to ``wrt``, of shape ``expression.shape +
    wrt.shape`` (a list of them for a list of variables, as Theano's).

    One reverse pass per element of ``expression``, computed in a loop (a ``Map``) over the rows
    of the flattened expression; the expression itself is computed once, outside the loop, so its
    random draws are drawn once per call. The result is a graph like any other: it can be
    differentiated again (``sg.hessian`` is the Jacobian of a gradient).
    """
    if isinstance(wrt, (list, tuple)):
        return [jacobian(expression, variable) for variable in wrt]
    expression = as_tensor(expression)
    if not isinstance(wrt, Variable):
        raise TypeError(f"sg.jacobian differentiates with respect to a variable, not {wrt!r}")
    from .ops.shape import reshape, shape_at
    from .ops.subgraph import Map
    from .variables import lscalar

    with building(source=user_source(), gradient=True):
        flat = expression.flatten() if expression.ndim != 1 else expression
        row = lscalar("row")
        row_gradient = grad(None, wrt, known_grads={flat: _one_hot(row, flat)}, disconnected_inputs="ignore")
        (rows,) = Map.over(row, [row_gradient], shape_at(flat, 0))
        lengths = [shape_at(expression, axis) for axis in range(expression.ndim)]
        lengths += [shape_at(wrt, axis) for axis in range(wrt.ndim)]
        return reshape(rows, lengths) if lengths else reshape(rows, ())


def _one_hot(row: Variable, flat: Variable) -> Variable:
    from .ops.subtensor import set_subtensor

    return set_subtensor(zeros_like(flat)[row], 1.0)


def hessian(cost: Variable, wrt: Variable | Sequence[Variable]) -> Variable | list[Variable]:
    """The Hessian of the scalar ``cost`` with respect to ``wrt``: ``jacobian(grad(cost, wrt), wrt)``."""
    if isinstance(wrt, (list, tuple)):
        return [hessian(cost, variable) for variable in wrt]
    return jacobian(grad(cost, wrt), wrt)


# --- checking gradients numerically -----------------------------------------------------------------
def verify_grad(
    fun: Callable[..., Variable],
    point: Sequence[Any],
    n_tests: int = 2,
    rng: Any = None,
    eps: float | None = None,
    abs_tol: float | None = None,
    rel_tol: float | None = None,
    phase: str | None = None,
) -> None:
    """Check ``sg.grad`` of ``fun`` against central finite differences at ``point``.

    ``fun`` takes symbolic inputs (one per array of ``point``) and returns a variable; a non-scalar
    output is projected on random weights. Raises :class:`~symgraph.errors.GradientError` naming the
    worst element when an error exceeds both ``abs_tol`` and ``rel_tol``. Random draws repeat
    identically across every evaluation of one check, so a dropout mask stays fixed.

    >>> sg.verify_grad(lambda x: sg.tanh(x).sum(), [np.random.randn(3, 4)])
    """
    from .compile.function import function

    if isinstance(point, np.ndarray) or not isinstance(point, (list, tuple)):
        point = [point]
    point = [np.array(value) for value in point]
    point = [value if value.dtype.kind == "f" else value.astype(np.float64) for value in point]
    if isinstance(rng, np.random.RandomState):  # what Theano code passes
        rng = rng.randint(2**31)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    dtype = np.result_type(*point)
    low_precision = dtype == np.float32
    eps = eps if eps is not None else (1e-3 if low_precision else 1e-6)
    abs_tol = abs_tol if abs_tol is not None else (1e-2 if low_precision else 1e-5)
    rel_tol = rel_tol if rel_tol is not None else (1e-2 if low_precision else 1e-5)

    inputs = [
        Variable(TensorType(value.dtype, (None,) * value.ndim), name=f"input{position}")
        for position, value in enumerate(point)
    ]
    output = as_tensor(fun(*inputs))
    if phase is None:
        from .rewrite.phase import missing_phase_message, phase_dependent_nodes

        dependent = phase_dependent_nodes([output])
        if dependent:
            raise PhaseError(missing_phase_message(dependent, "sg.verify_grad"))
    evaluate = function(inputs, output, phase=phase, on_unused_input="ignore", apply_updates=False)
    output_shape = np.shape(evaluate(*point))
    for _ in range(n_tests):
        weights = constant(rng.uniform(0.5, 1.5, size=output_shape).astype(output.dtype))
        cost = (output * weights).sum()
        gradients = grad(cost, inputs, disconnected_inputs="ignore")
        cost_function = function(inputs, cost, phase=phase, on_unused_input="ignore", apply_updates=False)
        gradient_function = function(inputs, gradients, phase=phase, on_unused_input="ignore", apply_updates=False)
        symbolic = gradient_function(*point)
        numeric = _finite_differences(cost_function, point, eps)
        _compare(symbolic, numeric, abs_tol, rel_tol)


def _finite_differences(cost: Callable, point: list[np.ndarray], eps: float) -> list[np.ndarray]:
    gradients = []
    for position, value in enumerate(point):
        gradient = np.zeros(value.shape, dtype=np.float64)
        for index in np.ndindex(value.shape):
            shifted = [array.copy() for array in point]
            original = value[index]
            shifted[position][index] = original + eps
            plus = float(cost(*shifted))
            shifted[position][index] = original - eps
            minus = float(cost(*shifted))
            gradient[index] = (plus - minus) / (2 * eps)
        gradients.append(gradient)
    return gradients


def _compare(symbolic: list, numeric: list, abs_tol: float, rel_tol: float) -> None:
    worst = None
    for position, (analytic, estimate) in enumerate(zip(symbolic, numeric)):
        analytic = np.asarray(analytic, dtype=np.float64)
        if analytic.shape != estimate.shape:
            raise GradientError(
                f"verify_grad: the gradient of input {position} has shape {analytic.shape}, the input {estimate.shape}"
            )
        absolute = np.abs(analytic - estimate)
        relative = absolute / np.maximum(np.abs(analytic) + np.abs(estimate), 1e-12)
        # Written so that a NaN on either side fails (a NaN compares False both ways).
        failing = ~((absolute <= abs_tol) | (relative <= rel_tol))
        if failing.any():
            index = np.unravel_index(np.argmax(np.where(failing, relative, -1)), analytic.shape)
            candidate = (relative[index], position, index, analytic[index], estimate[index], absolute[index])
            if worst is None or candidate[0] > worst[0]:
                worst = candidate
    if worst is not None:
        relative, position, index, analytic, estimate, absolute = worst
        raise GradientError(
            f"verify_grad: the symbolic and numeric gradients disagree; worst at input {position}, element "
            f"{tuple(int(i) for i in index)}: symbolic {analytic:.6g}, numeric {estimate:.6g} "
            f"(absolute error {absolute:.3g}, relative error {relative:.3g})"
        )
