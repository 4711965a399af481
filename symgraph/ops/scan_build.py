"""``sg.scan``: Theano's arguments turned into one ``Scan`` node (see ``ops/scan.py``).

The steps: check and normalize the arguments (taps, initial values, ``n_steps``); cut each
sequence into one view per tap, reversed for ``go_backwards``, checked long enough; call ``fn``
once on placeholders; sort what it built into the step (what depends on a placeholder, and the
random draws it made) and the context (everything else it read, computed once outside); add the
hidden outputs the gradient will read; build the node; hand back the outputs and the updates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DTypeError, ShapeError, SymgraphError
from ..graph.basic import Apply, Constant, SharedVariable, Variable
from ..graph.fgraph import FunctionGraph
from ..graph.source import Scope, in_scope
from ..graph.traversal import postorder, rebuild
from ..graph.type import TensorType
from .basic import as_tensor, cast
from .scan import Scan, check_length, row_type
from .subgraph import _placeholders, describe_type, merged_shape

__all__ = ["scan", "until"]


class until:  # noqa: N801 (Theano's spelling: theano.scan_module.until)
    """A loop's stopping condition, returned by ``fn`` beside its outputs (and updates): the loop
    stops after the first step whose ``condition`` (an integer or boolean scalar) is true, or after
    ``n_steps``. ``return next_value, sg.until(next_value > limit)``."""

    def __init__(self, condition: Any):
        condition = as_tensor(condition)
        if not isinstance(condition.type, TensorType) or condition.ndim != 0 or condition.type.is_float:
            raise TypeError(
                f"sg.until takes a boolean or integer scalar (a comparison, say), not {condition.type.describe()}"
            )
        self.condition = condition


@dataclass
class _Sequence:
    variable: Variable
    taps: list[int]


@dataclass
class _Output:
    initial: Variable | None
    taps: list[int]


def scan(
    fn: Callable[..., Any],
    sequences: Any = None,
    outputs_info: Any = None,
    non_sequences: Any = None,
    n_steps: Any = None,
    go_backwards: bool = False,
    truncate_gradient: int = -1,
    name: str | None = None,
) -> tuple[Any, dict]:
    """A loop, as Theano's ``scan``: ``outputs, updates = sg.scan(fn, sequences, outputs_info, ...)``.

    ``fn`` is called once, with symbolic values of one step: each sequence's rows (one argument
    per tap), each fed-back output's earlier values (one per tap), then the ``non_sequences``. It
    returns the step's outputs (a variable or a list), or ``(outputs, updates)`` with ``updates`` a
    dict of shared-variable updates. The outputs come back stacked over the steps (a single one
    bare); ``updates`` is a dict to give to ``sg.function(updates=...)``.

    >>> x = sg.vector('x')
    >>> sums, _ = sg.scan(lambda x_t, total: total + x_t, sequences=x, outputs_info=sg.constant(0.0))
    >>> sums.eval({x: [1.0, 2.0, 3.0]})
    array([1., 3., 6.])
    """
    if not callable(fn):
        raise TypeError(f"scan's fn must be a function building one step, not {fn!r}")
    name = _scan_name(name)
    truncate = _truncation(truncate_gradient, name)
    with in_scope(name) as scope:
        sequence_specs = _sequence_specs(sequences, name)
        output_specs = _output_specs(outputs_info, name)
        context_given = [as_tensor(value) for value in _as_list(non_sequences)]
        steps = _steps(n_steps, name)
        if steps is None and not sequence_specs:
            raise ValueError(f"{name}: give sequences to loop over, or n_steps")
        views, count = _sequence_views(sequence_specs, steps, go_backwards, name)
        sequence_arguments = [
            Variable(row_type(view), name=_tap_name(spec.variable, tap, f"sequence{j}"))
            for j, spec in enumerate(sequence_specs)
            for view, tap in zip(views[j], spec.taps)
        ]
        fed = [(i, spec) for i, spec in enumerate(output_specs) if spec.initial is not None]
        state_arguments = [
            [Variable(_step_type(spec), name=_tap_name(spec.initial, tap, f"output{i}")) for tap in spec.taps]
            for i, spec in fed
        ]
        returned = fn(*sequence_arguments, *[v for taps in state_arguments for v in taps], *context_given)
        returned, condition = _split_until(returned, name)
        results, updates = _parse_return(returned, name)
        if outputs_info is None or (isinstance(outputs_info, (list, tuple)) and not outputs_info):
            output_specs = [_Output(None, []) for _ in results]
            fed = []
        elif len(results) != len(output_specs):
            raise ValueError(
                f"{name}: fn returned {len(results)} output(s), but outputs_info describes {len(output_specs)}; "
                "give one entry per output (None for an output that is not fed back)"
            )
        for (i, spec), arguments in zip(fed, state_arguments):
            results[i] = _checked_fed_back(results[i], arguments[0], spec, i, name)
        update_targets, update_values = _checked_updates(updates, name)
        node = _build(
            name,
            scope,
            count,
            views,
            sequence_arguments,
            [(spec, arguments) for (_, spec), arguments in zip(fed, state_arguments)],
            update_targets,
            update_values,
            [results[i] for i, spec in enumerate(output_specs) if spec.initial is None],
            [results[i] for i, _ in fed],
            truncate,
            condition,
        )
        outputs, new_values = _results(node, len(output_specs), [i for i, _ in fed], update_targets)
    return (outputs[0] if len(outputs) == 1 else outputs), new_values


def _results(
    node: Any, count: int, fed: list[int], update_targets: list[SharedVariable]
) -> tuple[list[Variable], dict]:
    """What ``sg.scan`` hands back, in the order of ``fn``'s outputs: each fed-back output's steps
    (its buffer without the initial window), each other output as stacked; and the updates, each
    shared variable's value after the last step."""
    buffers, stacked, _ = node.op.output_parts(node.outputs)
    lengths = node.op.window_lengths
    plain = iter(stacked)
    outputs = []
    for i in range(count):
        if i in fed:
            k = fed.index(i)
            outputs.append(buffers[k][lengths[k] :])
        else:
            outputs.append(next(plain))
    return outputs, {target: buffers[len(fed) + k][-1] for k, target in enumerate(update_targets)}


# --- arguments ------------------------------------------------------------------------------------
def _scan_name(name: Any) -> str:
    if name is None:
        return "scan"
    if not isinstance(name, str):
        raise TypeError(f"scan's name is a string, not {name!r}")
    return name


def _truncation(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < -1:
        raise ValueError(f"{name}: truncate_gradient is -1 (no truncation) or a number of steps >= 0, not {value!r}")
    return int(value)


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _taps(value: Any, default: list[int], what: str, name: str) -> list[int]:
    if value is None:
        return list(default)
    taps = [value] if isinstance(value, (int, np.integer)) else value
    if not isinstance(taps, (list, tuple)) or not taps:
        raise ValueError(f"{name}: the taps of {what} must be a non-empty list of ints, not {value!r}")
    for tap in taps:
        if isinstance(tap, (bool, np.bool_)) or not isinstance(tap, (int, np.integer)):
            raise ValueError(f"{name}: the taps of {what} must be ints, not {value!r}")
    if len(set(taps)) != len(taps):
        raise ValueError(f"{name}: the taps of {what} repeat a tap: {list(taps)}")
    return [int(tap) for tap in taps]


def _sequence_specs(sequences: Any, name: str) -> list[_Sequence]:
    specs = []
    for j, entry in enumerate(_as_list(sequences)):
        what = f"sequence {j}"
        if isinstance(entry, dict):
            unknown = set(entry) - {"input", "taps"}
            if "input" not in entry or unknown:
                raise ValueError(
                    f"{name}: {what} is a dict with keys 'input' (required) and 'taps', not {sorted(entry)}"
                )
            variable, taps = as_tensor(entry["input"]), _taps(entry.get("taps"), [0], what, name)
        else:
            variable, taps = as_tensor(entry), [0]
        if not isinstance(variable.type, TensorType) or variable.ndim == 0:
            raise ShapeError(f"{name}: {what} ({variable.label()}) must have at least one dimension to loop over")
        specs.append(_Sequence(variable, taps))
    return specs


def _output_specs(outputs_info: Any, name: str) -> list[_Output]:
    specs = []
    for i, entry in enumerate(_as_list(outputs_info)):
        what = f"output {i}"
        if entry is None:
            specs.append(_Output(None, []))
            continue
        if isinstance(entry, dict):
            unknown = set(entry) - {"initial", "taps"}
            if unknown:
                raise ValueError(
                    f"{name}: outputs_info entry {i} takes the keys 'initial' and 'taps', not {sorted(unknown)}"
                )
            if entry.get("initial") is None:
                if entry.get("taps"):
                    raise ValueError(f"{name}: {what} has taps {entry['taps']} but no initial value to start from")
                specs.append(_Output(None, []))
                continue
            initial, taps = as_tensor(entry["initial"]), _taps(entry.get("taps"), [-1], what, name)
        else:
            initial, taps = as_tensor(entry), [-1]
        if any(tap >= 0 for tap in taps):
            raise ValueError(
                f"{name}: the taps of {what} must be negative (earlier steps), got {taps}: an output "
                "cannot read its own present or future"
            )
        if not isinstance(initial.type, TensorType):
            raise TypeError(f"{name}: the initial value of {what} must be a tensor, not {initial.type.describe()}")
        if taps != [-1]:
            if initial.ndim == 0:
                raise ShapeError(
                    f"{name}: {what} has taps {taps}, so its initial value needs a first axis holding "
                    f"{-min(taps)} earlier steps; it is a scalar"
                )
            initial = check_length(
                initial,
                -min(taps),
                f"{name}: the initial value of {what} ({initial.label()}) has {{rows}} rows, but its "
                f"taps {taps} need {{needed}} earlier steps",
            )
        specs.append(_Output(initial, taps))
    return specs


def _step_type(spec: _Output) -> TensorType:
    return spec.initial.type if spec.taps == [-1] else row_type(spec.initial)


def _window(spec: _Output) -> Variable:
    if spec.taps == [-1]:
        return spec.initial.dimshuffle("x", *range(spec.initial.ndim))
    return spec.initial[: -min(spec.taps)]


def _tap_name(variable: Variable, tap: int, fallback: str) -> str:
    base = variable.name or fallback
    return f"{base}[t]" if tap == 0 else f"{base}[t{tap:+d}]"


def _steps(n_steps: Any, name: str) -> Variable | None:
    if n_steps is None:
        return None
    if isinstance(n_steps, (int, np.integer)) and not isinstance(n_steps, (bool, np.bool_)):
        if n_steps < 0:
            raise ValueError(f"{name}: n_steps must not be negative, got {n_steps} (go_backwards=True runs backwards)")
        return as_tensor(np.int64(n_steps))
    if not isinstance(n_steps, Variable):
        raise TypeError(f"{name}: n_steps is an int or a symbolic integer scalar, not {n_steps!r}")
    if n_steps.ndim != 0 or n_steps.type.numpy_dtype.kind not in "iu":
        raise TypeError(f"{name}: n_steps must be an integer scalar, not {n_steps.type.describe()}")
    if isinstance(n_steps, Constant) and int(n_steps.data) < 0:
        raise ValueError(f"{name}: n_steps must not be negative, got {int(n_steps.data)}")
    return cast(n_steps, "int64")


def _sequence_views(
    specs: list[_Sequence], steps: Variable | None, backwards: bool, name: str
) -> tuple[list[list[Variable]], Variable]:
    """One view per tap of each sequence (the rows step ``t`` reads, from row 0), and the number of
    steps: ``n_steps``, or what the shortest sequence allows."""
    from .elemwise import minimum
    from .shape import shape_at

    views: list[list[Variable]] = []
    available: list[Variable] = []
    for j, spec in enumerate(specs):
        low, high = min(min(spec.taps), 0), max(max(spec.taps), 0)
        span = high - low
        x = spec.variable
        if steps is not None:
            message = (
                f"{name}: sequence {j} ({x.label()}) has {{rows}} rows, but n_steps and its taps {spec.taps} "
                "need at least {needed}"
            )
            x = check_length(x, steps + span if span else steps, message)
        elif span:
            message = f"{name}: sequence {j} ({x.label()}) has {{rows}} rows, but its taps {spec.taps} need {{needed}}"
            x = check_length(x, span, message)
        rows = x.type.shape[0] if x.type.shape[0] is not None else shape_at(x, 0)
        available.append(rows - span if span else rows)
        taps_views = []
        for tap in spec.taps:
            start, end_offset = tap - low, high - tap
            if not backwards:
                view = x[start:] if start else x
            else:
                view = (x[start : rows - end_offset] if end_offset else x[start:])[::-1]
            taps_views.append(view)
        views.append(taps_views)
    if steps is not None:
        return views, steps
    count = available[0]
    for other in available[1:]:
        count = min(count, other) if isinstance(count, int) and isinstance(other, int) else minimum(count, other)
    return views, as_tensor(np.int64(count)) if isinstance(count, int) else cast(count, "int64")


def _split_until(returned: Any, name: str) -> tuple[Any, Variable | None]:
    """What ``fn`` returned without its ``sg.until`` (last, as Theano has it: ``outputs, until``
    or ``outputs, updates, until``), and the condition as a boolean scalar (``None``: no until)."""
    from .elemwise import neq

    if isinstance(returned, until):
        raise TypeError(f"{name}: fn returned only sg.until; return the step's outputs before it")
    if not isinstance(returned, (list, tuple)) or not any(isinstance(item, until) for item in returned):
        return returned, None
    if not isinstance(returned[-1], until) or sum(isinstance(item, until) for item in returned) > 1:
        raise TypeError(
            f"{name}: fn must return sg.until once, last: (outputs, sg.until(...)) or (outputs, updates, sg.until(...))"
        )
    condition = returned[-1].condition
    rest = returned[:-1]
    if condition.dtype != "bool":
        condition = neq(condition, 0)
    return (rest[0] if len(rest) == 1 else tuple(rest)), condition


def _parse_return(returned: Any, name: str) -> tuple[list[Variable], dict]:
    """The outputs and the updates ``fn`` returned: outputs, updates (a dict or a list of pairs),
    or both as a pair ``(outputs, updates)``."""

    def outputs_of(value: Any) -> list[Variable] | None:
        if isinstance(value, Variable):
            return [value]
        if isinstance(value, (list, tuple)) and all(not isinstance(item, (dict, list, tuple)) for item in value):
            try:
                return [as_tensor(item) for item in value]
            except (TypeError, ValueError, SymgraphError):
                return None
        return None

    def updates_of(value: Any) -> dict | None:
        # A dict, or (as Theano took them) a list of (shared variable, new value) pairs.
        if isinstance(value, dict):
            return dict(value)
        pairs = isinstance(value, (list, tuple)) and value
        if pairs and all(
            isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], SharedVariable) for p in value
        ):
            return dict(value)
        return None

    if updates_of(returned) is not None:
        return [], updates_of(returned)
    if isinstance(returned, (list, tuple)) and len(returned) == 2 and updates_of(returned[1]) is not None:
        outputs = outputs_of(returned[0]) if not (isinstance(returned[0], (list, tuple)) and not returned[0]) else []
        if outputs is not None:
            return outputs, updates_of(returned[1])
    outputs = outputs_of(returned)
    if outputs is None and returned is not None and not isinstance(returned, (list, tuple, dict)):
        try:
            outputs = [as_tensor(returned)]
        except (TypeError, ValueError, SymgraphError):
            outputs = None
    if outputs is None:
        raise TypeError(
            f"{name}: fn must return its outputs (a variable or a list of them), an updates dict, or "
            f"(outputs, updates); it returned {returned!r}"
        )
    return outputs, {}


def _checked_fed_back(result: Variable, argument: Variable, spec: _Output, position: int, name: str) -> Variable:
    """A fed-back output must have its initial value's dtype, number of dimensions and static
    lengths: it is the next step's input."""
    result = as_tensor(result)
    label = f"output {position}" + (f" ({result.name})" if result.name else "")
    expected = argument.type
    if (
        not isinstance(result.type, TensorType)
        or result.type.numpy_dtype != expected.numpy_dtype
        or result.ndim != expected.ndim
    ):
        initial = "its initial value" if spec.taps == [-1] else "one row of its initial value"
        raise DTypeError(
            f"{name}: {label} is fed back to the next step (taps {spec.taps}), so the step function must "
            f"return it with the type of {initial}, {describe_type(argument)}; it returned "
            f"{describe_type(result)}. Cast one of them (.astype('{expected.dtype}')) or change the initial value."
        )
    if merged_shape(result.type.shape, expected.shape) is None:
        raise ShapeError(
            f"{name}: {label} is fed back to the next step, but the step function returns shape "
            f"{result.type.describe()} while its initial value has {expected.describe()}"
        )
    return result


def _checked_updates(updates: dict, name: str) -> tuple[list[SharedVariable], list[Variable]]:
    targets, values = [], []
    for target, value in updates.items():
        if not isinstance(target, SharedVariable) or not isinstance(target.type, TensorType):
            raise TypeError(f"{name}: fn's updates must update shared tensors, not {target!r}")
        value = as_tensor(value)
        if not isinstance(value.type, TensorType) or value.ndim != target.ndim:
            raise DTypeError(
                f"{name}: the update of {target.label()} ({target.type.describe()}) by {value.label()} "
                f"({value.type.describe()}): the number of dimensions differs"
            )
        if value.dtype != target.dtype:
            if not (value.type.is_float and target.type.is_float):
                raise DTypeError(
                    f"{name}: the update of {target.label()} ({target.dtype}) by {value.label()} ({value.dtype}): "
                    f"cast it with .astype('{target.dtype}')"
                )
            value = cast(value, target.dtype)
        targets.append(target)
        values.append(value)
    return targets, values


# --- the node -------------------------------------------------------------------------------------
def _build(
    name: str,
    scope: Scope,
    count: Variable,
    views: list[list[Variable]],
    sequence_arguments: list[Variable],
    fed: list[tuple[_Output, list[Variable]]],
    update_targets: list[SharedVariable],
    update_values: list[Variable],
    plain_results: list[Variable],
    fed_results: list[Variable],
    truncate: int,
    condition: Variable | None,
) -> Apply:
    """The ``Scan`` node of the step ``fn`` built. A stopping condition is stacked after the
    plain outputs (so that the gradient knows the number of steps taken: its length)."""
    if condition is not None:
        plain_results = plain_results + [condition]
    update_arguments = _placeholders(update_targets)
    seeds = sequence_arguments + [v for _, arguments in fed for v in arguments] + list(update_targets)
    state_results = fed_results + update_values
    context = _context(state_results + plain_results, seeds, scope)
    context_arguments = _placeholders(context)
    replacements = dict(zip(update_targets, update_arguments))
    replacements.update(zip(context, context_arguments))
    inner_inputs = sequence_arguments + [v for _, arguments in fed for v in arguments]
    inner_inputs += update_arguments + context_arguments
    inner_results, _ = rebuild(state_results + plain_results, replacements)
    hidden = _samples(inner_results, inner_inputs)
    hidden += _residuals(inner_results + hidden, inner_inputs)
    fgraph = FunctionGraph(inner_inputs, inner_results + hidden)
    state_taps = [spec.taps for spec, _ in fed] + [[-1]] * len(update_targets)
    op = Scan(
        fgraph,
        n_sequences=len(sequence_arguments),
        state_taps=state_taps,
        n_stacked=len(plain_results) + len(hidden),
        truncate_gradient=truncate,
        name=name,
        until=len(plain_results) - 1 if condition is not None else None,
    )
    windows = [_window(spec) for spec, _ in fed] + [t.dimshuffle("x", *range(t.ndim)) for t in update_targets]
    sequences = [view for per_tap in views for view in per_tap]
    return op.make_node(count, *sequences, *windows, *context)


def _built_in(node: Any, scope: Scope) -> bool:
    return node.scope is not None and scope in node.scope.path()


def _context(results: list[Variable], seeds: list[Variable], scope: Scope) -> list[Variable]:
    """What the step reads from outside: the inputs of the step's nodes (those that depend on a
    seed, or draw random numbers and were built by ``fn``) that the step does not compute, and
    the results that are not computed by the step. Constants stay inside."""
    inside = {id(seed) for seed in seeds}
    step_nodes = []
    for node in postorder(results, seeds):
        if any(id(variable) in inside for variable in node.inputs) or (node.op.stochastic and _built_in(node, scope)):
            step_nodes.append(node)
            inside.update(id(output) for output in node.outputs)
    found: dict[int, Variable] = {}
    for node in step_nodes:
        for variable in node.inputs:
            if id(variable) not in inside and not isinstance(variable, Constant):
                found.setdefault(id(variable), variable)
    for result in results:
        if id(result) not in inside and not isinstance(result, Constant):
            found.setdefault(id(result), result)
    return list(found.values())


def _samples(results: list[Variable], inputs: list[Variable]) -> list[Variable]:
    """The tensors the step draws (or computes from draws inside loops and branches within it):
    stacked as hidden outputs, so that the gradient reuses them."""
    return [
        output
        for node in postorder(results, inputs)
        if node.op.stochastic
        for output in node.outputs
        if isinstance(output.type, TensorType)
    ]


def _residuals(outputs: list[Variable], inputs: list[Variable]) -> list[Variable]:
    """The values of the step its gradient reads (found by differentiating the step once), beyond
    what the step gives already: stacked as hidden outputs, so that the backward pass does not
    compute the step again. Where the gradient reads only a value's shape, the shape is kept."""
    from ..grad import vector_jacobian_product
    from .shape import Shape

    differentiable = [v for v in outputs if isinstance(v.type, TensorType) and v.type.is_float]
    wrt = [v for v in inputs if isinstance(v.type, TensorType) and v.type.is_float]
    if not differentiable or not wrt:
        return []
    cotangents = _placeholders(differentiable)
    try:
        gradients = vector_jacobian_product(differentiable, cotangents, wrt)
    except (NotImplementedError, SymgraphError, TypeError, ValueError):
        return []  # a step that cannot be differentiated: its gradient will say so, if ever asked
    forward = {id(output): output for node in postorder(outputs, inputs) for output in node.outputs}
    given = {id(v) for v in outputs}
    stop = list(inputs) + list(forward.values()) + cotangents
    wanted: dict[int, Variable] = {}
    shapes: dict[int, Variable] = {}
    for node in postorder([g for g in gradients if g is not None], stop):
        for variable in node.inputs:
            if id(variable) in forward and id(variable) not in given:
                if node.op.reads_only_shape:
                    shapes.setdefault(id(variable), variable)
                else:
                    wanted.setdefault(id(variable), variable)
    for gradient in gradients:
        if gradient is not None and id(gradient) in forward and id(gradient) not in given:
            wanted.setdefault(id(gradient), gradient)
    # A slice or transpose of a value is taken again from the value (kept instead, once).
    bases: dict[int, Variable] = {}
    for variable in wanted.values():
        base = _view_base(variable)
        if id(base) in forward and id(base) not in given:
            bases.setdefault(id(base), base)
    kept = list(bases.values())
    kept += [Shape()(variable) for key, variable in shapes.items() if key not in wanted]
    return kept


def _view_base(variable: Variable) -> Variable:
    """The value ``variable`` is a fixed slice or transpose of (itself if none)."""
    from .shape import DimShuffle
    from .subtensor import Subtensor

    while (
        variable.owner is not None
        and isinstance(variable.owner.op, (Subtensor, DimShuffle))
        and variable.owner.op.view_map
        and len(variable.owner.inputs) == 1
    ):
        variable = variable.owner.inputs[0]
    return variable
