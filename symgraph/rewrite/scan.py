"""Rewrites of loops (``Scan`` nodes).

- ``prune_scans``: outputs nobody reads are not computed, and what only they needed goes too: the
  hidden outputs ``sg.scan`` adds for a gradient that was never taken (the residuals, the random
  draws), a state nothing reads, the sequences and context the rest does not read.
- ``hoist_invariants``: what a step computes from the context and constants alone (zeros of a
  static shape, the transpose of a weight) is computed once, before the loop.
- ``push_out_products``: a sum over the steps of ``a.T @ b`` (the gradient of a matrix used at
  every step, ``h[t-1] @ W``) becomes one product of the stacked ``a`` and ``b`` after the loop,
  as a hand-written backward pass computes it: one large matrix product instead of one per step.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..graph.basic import Apply, Constant, Variable
from ..graph.fgraph import FunctionGraph
from ..graph.source import building
from ..graph.traversal import postorder, rebuild
from ..ops.linalg import Dot, Matmul
from ..ops.scan import Scan
from ..ops.shape import AllocEmpty, DimShuffle, SumTo
from ..ops.subtensor import Subtensor
from .walk import tracks


def prune_scans(fgraph: FunctionGraph) -> FunctionGraph:
    """``fgraph`` with each of its ``Scan`` nodes computing only what is read of it (the loops
    inside their step graphs are pruned when those are optimized, after this)."""
    if not any(isinstance(node.op, Scan) for node in fgraph.nodes):
        return fgraph
    clients = fgraph.clients
    kept = {id(variable) for variable in fgraph.computed}

    def prune(node: Apply, inputs: list[Variable]) -> Sequence[Variable] | None:
        if not isinstance(node.op, Scan):
            return None
        used = [bool(clients.get(output)) or id(output) in kept for output in node.outputs]
        pruned = _pruned(node.op, used)
        if pruned is None:
            return None
        op, kept_inputs, positions = pruned
        with building.like(node):
            new = op.make_node(*[inputs[k] for k in kept_inputs])
        return [new.outputs[p] if p is not None else old for p, old in zip(positions, node.outputs)]

    return fgraph.rewrite(prune)


def _pruned(op: Scan, used: list[bool]) -> tuple[Scan, list[int], list[int | None]] | None:
    """The loop computing only the ``used`` outputs: the op, which of the node's inputs it keeps,
    and each old output's position among the new ones (``None``: dropped); ``None`` when
    nothing can go."""
    sequences, taps, context = op.inner_parts()
    states, stacked, terms = op.inner_outputs()
    buffers_used, stacked_used, sums_used = op.output_parts(used)
    if op.until is not None:  # the stopping condition is computed whoever reads it
        stacked_used[op.until] = True
    kept_states = {k for k, flag in enumerate(buffers_used) if flag}
    wanted = [stacked[k] for k, flag in enumerate(stacked_used) if flag]
    wanted += [term for k, flag in enumerate(sums_used) if flag for term in terms[k]]
    while True:  # a kept state keeps the states whose taps it reads
        outputs = wanted + [states[k] for k in sorted(kept_states)]
        read = {id(v) for node in postorder(outputs, op.fgraph.inputs) for v in node.inputs}
        read |= {id(v) for v in outputs}
        more = {k for k, state_taps in enumerate(taps) if any(id(v) in read for v in state_taps)} - kept_states
        if not more:
            break
        kept_states |= more
    templates = {like for (like, _), flag in zip(op.sums, sums_used) if flag}
    templates |= {like for like, flag in zip(op.stacked_like, stacked_used) if flag and like is not None}
    kept_sequences = [k for k, v in enumerate(sequences) if id(v) in read]
    kept_context = [k for k, v in enumerate(context) if id(v) in read or k in templates]
    state_list = sorted(kept_states)
    kept_stacked = [k for k, flag in enumerate(stacked_used) if flag]
    kept_sums = [k for k, flag in enumerate(sums_used) if flag]
    if (
        len(kept_sequences) == len(sequences)
        and len(kept_context) == len(context)
        and len(state_list) == len(states)
        and len(kept_stacked) == len(stacked)
        and len(kept_sums) == len(terms)
    ):
        return None
    inner_inputs = [sequences[k] for k in kept_sequences]
    inner_inputs += [v for k in state_list for v in taps[k]]
    inner_inputs += [context[k] for k in kept_context]
    inner_outputs = [states[k] for k in state_list] + [stacked[k] for k in kept_stacked]
    inner_outputs += [term for k in kept_sums for term in terms[k]]
    new_op = op.changed(
        fgraph=FunctionGraph(inner_inputs, inner_outputs),
        n_sequences=len(kept_sequences),
        state_taps=[op.state_taps[k] for k in state_list],
        last_only=[op.keeps_last_only(k) for k in state_list],
        n_stacked=len(kept_stacked),
        sums=[(kept_context.index(op.sums[k][0]), op.sums[k][1]) for k in kept_sums],
        stacked_like=[
            kept_context.index(op.stacked_like[k]) if op.stacked_like[k] is not None else None for k in kept_stacked
        ],
        until=kept_stacked.index(op.until) if op.until is not None else None,
    )
    n_states = len(states)
    kept_inputs = [0] + [1 + k for k in kept_sequences]
    kept_inputs += [1 + len(sequences) + k for k in state_list]
    kept_inputs += [1 + len(sequences) + n_states + k for k in kept_context]
    positions: list[int | None] = [state_list.index(k) if k in kept_states else None for k in range(n_states)]
    positions += [len(state_list) + kept_stacked.index(k) if k in kept_stacked else None for k in range(len(stacked))]
    base = len(state_list) + len(kept_stacked)
    positions += [base + kept_sums.index(k) if k in kept_sums else None for k in range(len(terms))]
    return new_op, kept_inputs, positions


def keep_last_rows(fgraph: FunctionGraph) -> FunctionGraph:
    """``fgraph`` with each loop keeping only the last row of each state read at that row alone
    (``h[-1]``: the gradient of an initial state, a final state; or not read at all): no row per
    step is written, nor the memory for them allocated."""
    if not any(isinstance(node.op, Scan) for node in fgraph.nodes):
        return fgraph
    clients = fgraph.clients
    kept = {id(variable) for variable in fgraph.computed}

    def last_row_read(buffer: Variable) -> bool:
        if id(buffer) in kept:
            return False
        for client, position in clients.get(buffer, ()):
            if position != 0 or not isinstance(client.op, Subtensor) or client.op.spec[:1] != (("int", -1),):
                return False
        return True

    def keep(node: Apply, inputs: list[Variable]) -> Sequence[Variable] | None:
        if not isinstance(node.op, Scan):
            return None
        op = node.op
        flags = [
            op.keeps_last_only(k) or (taps == (-1,) and last_row_read(buffer))
            for k, (taps, buffer) in enumerate(zip(op.state_taps, node.outputs))
        ]
        if not any(flag and not op.keeps_last_only(k) for k, flag in enumerate(flags)):
            return None
        with building.like(node):
            return op.changed(last_only=flags).make_node(*inputs).outputs

    return fgraph.rewrite(keep)


@tracks(Scan)  # tried on loops only
def push_out_products(node: Apply) -> Sequence[Variable] | None:
    """A ``Scan`` summing ``a.T @ b`` over its steps sums it as one product after the loop."""
    op = node.op
    if not isinstance(op, Scan):
        return None
    states, stacked, terms = op.inner_outputs()
    factors = [_transposed_product(parts[0]) if form == "add" else None for (_, form), parts in zip(op.sums, terms)]
    if all(pair is None for pair in factors):
        return None
    outputs = list(states) + list(stacked)
    sums = []
    for (like, form), parts, pair in zip(op.sums, terms, factors):
        if pair is None:
            outputs += parts
            sums.append((like, form))
        else:
            outputs += list(pair)
            sums.append((like, "dot"))
    new_op = op.changed(fgraph=FunctionGraph(op.fgraph.inputs, outputs), sums=sums)
    return new_op.make_node(*node.inputs).outputs


def _transposed_product(term: Variable) -> tuple[Variable, Variable] | None:
    """``(a, b)`` when ``term`` is ``a.T @ b`` of matrices (summed back to a shape: the sum of the
    products is summed back the same way)."""
    owner = term.owner
    if owner is not None and isinstance(owner.op, SumTo):
        owner = owner.inputs[0].owner
    if owner is None or not isinstance(owner.op, (Matmul, Dot)):
        return None
    left, right = owner.inputs
    transpose = left.owner
    if (
        transpose is None
        or not isinstance(transpose.op, DimShuffle)
        or transpose.op.pattern != (1, 0)
        or right.ndim != 2
        or left.dtype != right.dtype
    ):
        return None
    return transpose.inputs[0], right


@tracks(Scan)  # tried on loops only
def hoist_invariants(node: Apply) -> Sequence[Variable] | None:
    """A ``Scan`` whose step computes something from its context and constants alone computes it
    once, outside the loop, and reads it as context (random draws stay in: they are per step)."""
    op = node.op
    if not isinstance(op, Scan):
        return None
    _, _, context = op.inner_parts()
    _, _, _, outer_context = op.outer_parts(node.inputs)
    invariant = {id(variable) for variable in context}
    hoisted = []
    for inner in op.fgraph.order:
        if inner.op.stochastic or inner.op.phase_dependent or not inner.inputs:
            continue
        if isinstance(inner.op, AllocEmpty):  # each step writes into a fresh one (in place)
            continue
        if all(isinstance(v, Constant) or id(v) in invariant for v in inner.inputs):
            hoisted.append(inner)
            invariant.update(id(output) for output in inner.outputs)
    if not hoisted:
        return None
    hoisted_ids = {id(inner) for inner in hoisted}
    read = [v for inner in op.fgraph.nodes if id(inner) not in hoisted_ids for v in inner.inputs]
    read += op.fgraph.outputs
    needed: dict[int, Variable] = {}
    for variable in read:
        if variable.owner is not None and id(variable.owner) in hoisted_ids:
            needed.setdefault(id(variable), variable)
    memo: dict[int, Variable] = {id(inner): outer for inner, outer in zip(context, outer_context)}
    for inner in hoisted:
        with building(source=inner.source, gradient=inner.gradient, scope=node.scope):
            made = inner.op.make_node(*[memo.get(id(v), v) for v in inner.inputs])
        memo.update((id(old), new) for old, new in zip(inner.outputs, made.outputs))
    values = list(needed.values())
    placeholders = [Variable(value.type, name=value.name) for value in values]
    outputs, _ = rebuild(op.fgraph.outputs, dict(zip(values, placeholders)))
    fgraph = FunctionGraph(op.fgraph.inputs + placeholders, outputs)
    with building.like(node):
        return op.changed(fgraph=fgraph).make_node(*node.inputs, *[memo[id(v)] for v in values]).outputs
