"""Back-propagation through time: the gradient of a ``Scan`` is another ``Scan``, running over
the steps in reverse.

At forward step ``t`` the step read its taps ``s[t + k]`` and gave ``s[t]``. The backward loop
carries, for each state with ``L`` taps back, a window of ``L`` pending gradients: ``w[j]`` is
what the later steps sent back to ``s[t - j]``. At step ``t`` it adds ``w[0]`` to the gradient the
cost gives ``s[t]`` directly, takes the vector-Jacobian product of the step, and moves the window
on: ``w'[j] = w[j + 1] + (the gradient of tap -(j + 1))``. After the first step the window holds
the gradient of the initial values. Sequences get one gradient row per step (a stacked output),
non-sequences the sum over the steps (a sum output).

What the product reads of the forward step comes from the forward loop's outputs: the sequences'
rows, the states' buffers (the taps), the stacked residuals and random draws (see
``scan_build._residuals``); anything else is computed again from those, inside the backward loop.
``truncate_gradient=k`` runs the backward loop over the last ``k`` steps only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..graph.basic import Apply, Variable
from ..graph.fgraph import FunctionGraph
from ..graph.traversal import postorder, rebuild
from ..graph.type import TensorType
from .basic import as_tensor, cast
from .scan import Scan, place_rows


def _differentiable(variable: Any) -> bool:
    return isinstance(variable, Variable) and isinstance(variable.type, TensorType) and variable.type.is_float


def _row(variable: Variable, name: str) -> Variable:
    return Variable(TensorType(variable.dtype, variable.type.shape[1:]), name=name)


def _like(variable: Variable, name: str) -> Variable:
    return Variable(variable.type, name=name)


def scan_gradient(op: Scan, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
    from ..grad import vector_jacobian_product
    from .elemwise import add, ge, minimum, where
    from .linalg import matmul
    from .shape import Shape, ShapeAt, stack, transpose, zeros_like

    n_steps, sequences, windows, context = op.outer_parts(node.inputs)
    buffers, stacked, sums = op.output_parts(node.outputs)
    if op.until is not None:  # the steps taken: the length of the stacked stopping condition
        n_steps = ShapeAt(0)(stacked[op.until])
    buffer_grads, stacked_grads, sum_grads = op.output_parts(output_grads)
    _, need_sequences, _, need_context = op.outer_parts(needed)
    inner_sequences, inner_taps, inner_context = op.inner_parts()
    state_outputs, stacked_outputs, sum_terms = op.inner_outputs()
    lengths = op.window_lengths
    carried = [k for k, window in enumerate(windows) if _differentiable(window)]

    wanted_sequences = [k for k, want in enumerate(need_sequences) if want and _differentiable(inner_sequences[k])]
    wanted_context = [k for k, want in enumerate(need_context) if want and _differentiable(inner_context[k])]
    if not wanted_sequences and not wanted_context and not any(needed[1 + len(sequences) + k] for k in carried):
        return [None] * len(node.inputs)

    # --- the backward step, on the forward step's variables -------------------------------------
    window_arguments = {k: [_row(windows[k], f"pending{k}[t-{j}]") for j in range(lengths[k])] for k in carried}
    # The cost's gradient of each buffer: rows (each step's), and of the initial window's rows.
    buffer_rows = {k: _step_rows(buffer_grads[k], lengths[k]) for k in carried if buffer_grads[k] is not None}
    direct_state = {
        k: _row(buffers[k], f"d{k}[t]") for k in carried if buffer_grads[k] is not None and _differentiable(buffers[k])
    }
    direct_stacked = {
        k: _row(stacked[k], f"d_out{k}[t]")
        for k in range(len(stacked))
        if stacked_grads[k] is not None and _differentiable(stacked[k])
    }
    direct_sums = {
        k: _like(sums[k], f"d_sum{k}")
        for k in range(len(sums))
        if sum_grads[k] is not None and _differentiable(sums[k])
    }
    outputs, cotangents = [], []
    for k in carried:
        total = window_arguments[k][0]
        if k in direct_state:
            total = add(direct_state[k], total)
        outputs.append(state_outputs[k])
        cotangents.append(total)
    for k, cotangent in direct_stacked.items():
        outputs.append(stacked_outputs[k])
        cotangents.append(cotangent)
    for k, cotangent in direct_sums.items():
        terms = sum_terms[k]
        outputs.append(terms[0] if op.sums[k][1] == "add" else matmul(transpose(terms[0]), terms[1]))
        cotangents.append(cotangent)
    tap_variables = [tap for k in carried for tap in inner_taps[k]]
    wrt = [inner_sequences[k] for k in wanted_sequences] + tap_variables + [inner_context[k] for k in wanted_context]
    gradients = dict(zip(map(id, wrt), vector_jacobian_product(outputs, cotangents, wrt)))

    backward_outputs: list[Variable] = []
    for k in carried:
        taps = {tap: gradients.get(id(variable)) for tap, variable in zip(op.state_taps[k], inner_taps[k])}
        pending = window_arguments[k]
        for j in range(lengths[k]):
            later = pending[j + 1] if j + 1 < lengths[k] else None
            here = taps.get(-(j + 1))
            if later is not None and here is not None:
                value = add(later, here)
            else:
                value = later if later is not None else here
            backward_outputs.append(value if value is not None else zeros_like(pending[j]))
    sequence_grads = [(k, gradients.get(id(inner_sequences[k]))) for k in wanted_sequences]
    sequence_grads = [(k, g) for k, g in sequence_grads if g is not None]
    context_grads = [(k, gradients.get(id(inner_context[k]))) for k in wanted_context]
    context_grads = [(k, g) for k, g in context_grads if g is not None]
    backward_outputs += [cast(g, inner_sequences[k].dtype) for k, g in sequence_grads]
    backward_outputs += [cast(g, inner_context[k].dtype) for k, g in context_grads]

    # --- what the backward step reads, from the forward loop's outputs -------------------------------
    # (variable, source array, its row for step 0, whether its rows follow the steps or the
    # sequences' rows) of each forward value available at every step
    per_step: dict[int, tuple[Variable, Variable, Any, bool]] = {}
    for k, variable in enumerate(inner_sequences):
        per_step[id(variable)] = (variable, sequences[k], 0, False)
    for k, taps in enumerate(inner_taps):
        for tap, variable in zip(op.state_taps[k], taps):
            per_step.setdefault(id(variable), (variable, buffers[k], lengths[k] + tap, True))
    for k, variable in enumerate(state_outputs):
        per_step.setdefault(id(variable), (variable, buffers[k], lengths[k], True))
    kept_shapes: dict[int, Variable] = {}
    for k, variable in enumerate(stacked_outputs):
        per_step.setdefault(id(variable), (variable, stacked[k], 0, False))
        owner = variable.owner
        if owner is not None and isinstance(owner.op, Shape):
            kept_shapes.setdefault(id(owner.inputs[0]), variable)
    placeholders = {key: _row(source, _step_name(variable)) for key, (variable, source, _, _) in per_step.items()}
    context_arguments = [_like(variable, variable.name or f"context{k}") for k, variable in enumerate(inner_context)]
    replacements: dict[Variable, Variable] = {variable: placeholders[key] for key, (variable, *_) in per_step.items()}
    replacements.update(zip(inner_context, context_arguments))
    forward = {id(v) for v in op.fgraph.inputs} | {id(o) for n in op.fgraph.nodes for o in n.outputs}

    def read_kept_shapes(inner: Apply, inputs: list[Variable]) -> Sequence[Variable] | None:
        # The gradient reads only the shape of a value the forward loop did not keep: its shape
        # was kept instead.
        if isinstance(inner.op, (Shape, ShapeAt)) and id(inner.inputs[0]) in kept_shapes:
            if id(inner.inputs[0]) in per_step:
                return None
            shape_row = placeholders[id(kept_shapes[id(inner.inputs[0])])]
            return [shape_row] if isinstance(inner.op, Shape) else [shape_row[inner.op.axis]]
        return None

    step_outputs, _ = rebuild(backward_outputs, replacements, rewrite=read_kept_shapes)
    stray = [
        v
        for n in postorder(step_outputs, list(replacements.values()))
        for v in n.inputs
        if v.owner is None and id(v) in forward and v not in replacements.values()
    ]
    if stray:  # every forward input has a replacement: reaching one means a bug here
        raise RuntimeError(f"{op.name} gradient: the backward step reads {stray[0].label()} of the forward step")
    for n in postorder(step_outputs, list(replacements.values())):
        if n.op.stochastic:
            raise RuntimeError(f"{op.name} gradient: the backward step would draw again ({n.op.name})")

    # --- the backward loop -----------------------------------------------------------------------
    used = {id(v) for n in postorder(step_outputs) for v in n.inputs} | {id(v) for v in step_outputs}
    sequence_pairs = [(placeholders[key], *source) for key, (_, *source) in per_step.items()]
    sequence_pairs += [(direct_state[k], *buffer_rows[k][:2], True) for k in carried if k in direct_state]
    sequence_pairs += [(direct_stacked[k], stacked_grads[k], 0, False) for k in direct_stacked]
    sequence_pairs = [pair for pair in sequence_pairs if id(pair[0]) in used]
    templates = {k for k, _ in context_grads}
    context_pairs = [
        (argument, outer)
        for k, (argument, outer) in enumerate(zip(context_arguments, context))
        if id(argument) in used or k in templates
    ]
    context_pairs += [(direct_sums[k], sum_grads[k]) for k in direct_sums if id(direct_sums[k]) in used]
    # The forward sequences give the shape of their gradients' rows when there are no steps.
    sequence_templates = [Variable(sequences[k].type, name=f"like_sequence{k}") for k, _ in sequence_grads]
    context_pairs += [(template, sequences[k]) for template, (k, _) in zip(sequence_templates, sequence_grads)]
    context_position = {id(argument): position for position, (argument, _) in enumerate(context_pairs)}
    window_list = [argument for k in carried for argument in window_arguments[k]]
    inner_inputs = [pair[0] for pair in sequence_pairs] + window_list + [a for a, _ in context_pairs]
    fgraph = FunctionGraph(inner_inputs, step_outputs)
    backward = Scan(
        fgraph,
        n_sequences=len(sequence_pairs),
        state_taps=[(-1,)] * len(window_list),
        n_stacked=len(sequence_grads),
        sums=[(context_position[id(context_arguments[k])], "add") for k, _ in context_grads],
        reverse=not op.reverse,
        name=f"{op.name}_grad",
        stacked_like=[context_position[id(template)] for template in sequence_templates],
    )
    count = minimum(as_tensor(np.int64(op.truncate_gradient)), n_steps) if op.truncate_gradient >= 0 else n_steps
    outer_sequences = [
        _rows(source, offset, by_step, count, n_steps, op.reverse, op.truncate_gradient >= 0)
        for _, source, offset, by_step in sequence_pairs
    ]
    outer_windows = [zeros_like(windows[k][:1]) for k in carried for _ in range(lengths[k])]
    results = backward.make_node(count, *outer_sequences, *outer_windows, *[value for _, value in context_pairs])
    window_buffers, sequence_rows, context_sums = backward.output_parts(results.outputs)

    # --- the gradients of the forward node's inputs --------------------------------------------------
    grads: list[Any] = [None] * len(node.inputs)
    base = 1
    for (k, _), rows in zip(sequence_grads, sequence_rows):
        first = n_steps - count if op.truncate_gradient >= 0 and not op.reverse else 0
        grads[base + k] = place_rows(rows, sequences[k], first)
    base += len(sequences)
    position = 0
    for k in carried:
        finals = [window_buffers[position + j][-1] for j in range(lengths[k])]
        position += lengths[k]
        if not needed[base + k]:
            continue
        initial = stack(list(reversed(finals)))
        if op.truncate_gradient >= 0:
            initial = where(ge(as_tensor(np.int64(op.truncate_gradient)), n_steps), initial, 0.0)
        if buffer_grads[k] is not None and buffer_rows[k][2]:
            initial = add(initial, buffer_grads[k][: lengths[k]])
        grads[base + k] = cast(initial, windows[k].dtype)
    base += len(windows)
    for (k, _), total in zip(context_grads, context_sums):
        grads[base + k] = total
    return grads


def _step_rows(gradient: Variable, length: int) -> tuple[Variable, int, bool]:
    """Where the rows of a buffer's gradient for the steps are: ``(array, row of step 0, whether
    the initial window's rows may be non-zero)``. The gradient of ``buffer[length:]`` (what
    ``sg.scan`` hands out) is zeros with those rows added: its rows are read where they came from."""
    from ..rewrite.algebraic import _is_zeros
    from .subtensor import IncSubtensor

    owner = gradient.owner
    if (
        owner is not None
        and isinstance(owner.op, IncSubtensor)
        and owner.op.mode == "inc"
        and owner.op.spec == (("slice", length, None, None),)
        and _is_zeros(owner.inputs[0])
    ):
        return owner.inputs[1], 0, False
    return gradient, length, True


def _rows(
    source: Variable, offset: int, by_step: bool, count: Variable, n_steps: Variable, reverse: bool, truncated: bool
) -> Variable:
    """The rows of ``source`` the backward loop reads, in the order of the sequences' rows: those
    of the last ``count`` steps. ``by_step``: the source's rows follow the steps (state buffers),
    not the sequences' rows (which run backwards when the forward loop did)."""
    if not reverse:
        if not truncated:
            return source[offset : offset + n_steps] if offset else source
        return source[offset + n_steps - count : offset + n_steps]
    if not by_step:
        return source[:count] if truncated else source
    return source[offset + n_steps - count : offset + n_steps][::-1]


def _step_name(variable: Variable) -> str:
    return variable.name or (variable.owner.op.name if variable.owner is not None else "value")
