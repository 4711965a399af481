"""Loops: ``sg.scan`` and the ``Scan`` op it builds.

``sg.scan(fn, sequences, outputs_info, non_sequences, n_steps, ...)`` calls ``fn`` once, on
placeholders standing for one step's values, and packages what it built as one ``Scan`` node
holding the step graph (an inner :class:`FunctionGraph`). What ``scan`` normalizes away before the
op sees it: sequence taps and ``go_backwards`` become views of the sequences (one per tap, each
reversed when going backwards), so the op reads row ``t`` of each at step ``t``; the initial
values become windows of the rows before step 0; shared variables updated by ``fn`` become states
whose last value is the update; what ``fn`` reads from outside (shared variables, other graph
variables) becomes the op's *context*, and what ``fn`` computed from the context alone is computed
once, outside the loop.

The op (see :class:`Scan`): ``(n_steps, *sequences, *windows, *context) -> (*buffers, *stacked,
*sums)``. A fed-back output's *buffer* holds its initial window then one row per step (the
gradient reads the taps from it); an output that is not fed back is *stacked*, one row per step;
a *sum* is added up over the steps (what the gradient of a non-sequence is).

Random draws inside ``fn`` are fresh at each step: the generators are context, drawn from in
place. What each step drew (a dropout mask) is stacked as a hidden output, and so is whatever
else the gradient will read (the *residuals*, found by differentiating the step once when the
scan is built); the backward pass, itself a ``Scan`` running over the steps in reverse, reads
them instead of computing the step again. Outputs nobody reads are dropped when compiling
(``rewrite/scan.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from ..errors import ShapeError
from ..graph.basic import Apply, Constant, Variable
from ..graph.fgraph import FunctionGraph
from ..graph.op import Op
from ..graph.type import TensorType
from .basic import as_tensor, cast
from .subgraph import InnerGraphOp, merged_shape

__all__ = ["CheckLength", "PlaceRows", "Scan"]


class Scan(InnerGraphOp):
    """A loop: the inner graph ``fgraph`` computed once per step (built by ``sg.scan``).

    Inner inputs: one per sequence (its row at the step), one per tap of each state (``taps``,
    negative), then the context. Inner outputs: each state's new value, each stacked output's
    value, then the terms of the sums (one for ``'add'``, two, ``a`` and ``b``, for ``'dot'``,
    which adds up ``a.T @ b``, summed back to the sum's shape: the gradient of a matrix used at
    every step, computed as one product of the stacked ``a`` and ``b`` after the loop).

    Outer inputs: ``n_steps`` (an integer scalar), the sequences (each with at least ``n_steps``
    rows; the op reads the first ``n_steps``), one window per state (its ``L = -min(taps)`` rows
    before step 0), the context. Outer outputs: one buffer per state (``L + n_steps`` rows: the
    window, then each step's value), one array per stacked output (``n_steps`` rows), one value per
    sum (shaped like the context input ``sums[k][0]``, which gives its shape when there are no
    steps; a stacked output's rows are shaped like those of the context input ``stacked_like[k]``
    when it is not ``None``). ``reverse=True`` runs the steps from the last row of the sequences
    to the first (what the backward pass does), writing stacked outputs at their row, states in
    step order. A state whose ``last_only`` flag is set (one read at its last row only, set when
    compiling) has its last row as its buffer (one row: no row per step is kept).

    ``until=k``: stacked output ``k`` is a boolean scalar, the loop's stopping condition (Theano's
    ``until``): the loop stops after the first step where it is true, and every buffer and stacked
    output holds only the steps taken (so their lengths are not known before running).
    """

    __props__ = (
        "fgraph",
        "n_sequences",
        "state_taps",
        "n_stacked",
        "sums",
        "reverse",
        "truncate_gradient",
        "_name",
        "stacked_like",
        "until",
        "last_only",
    )
    #: Files saved before loops could stop early hold no ``until`` (nor ``last_only``).
    until: int | None = None
    last_only: tuple[bool, ...] | None = None

    def __init__(
        self,
        fgraph: FunctionGraph,
        n_sequences: int,
        state_taps: Sequence[Sequence[int]],
        n_stacked: int,
        sums: Sequence[tuple[int, str]] = (),
        reverse: bool = False,
        truncate_gradient: int = -1,
        name: str = "scan",
        stacked_like: Sequence[int | None] | None = None,
        until: int | None = None,
        last_only: Sequence[bool] | None = None,
    ):
        self.fgraph = fgraph
        self.n_sequences = n_sequences
        self.state_taps = tuple(tuple(taps) for taps in state_taps)
        self.n_stacked = n_stacked
        self.sums = tuple((int(like), form) for like, form in sums)
        self.reverse = bool(reverse)
        self.truncate_gradient = int(truncate_gradient)
        self._name = name
        self.stacked_like = tuple(stacked_like) if stacked_like is not None else (None,) * n_stacked
        self.until = None if until is None else int(until)
        self.last_only = tuple(bool(flag) for flag in last_only) if last_only is not None else None
        if self.last_only is not None and not any(self.last_only):
            self.last_only = None  # one spelling of "every row kept", so that equal loops compare equal
        if self.last_only is not None and (
            len(self.last_only) != len(self.state_taps)
            or any(flag and taps != (-1,) for flag, taps in zip(self.last_only, self.state_taps))
        ):
            raise ValueError(f"{name}: only states with the single tap -1 can keep their last row only")
        taps = sum(len(t) for t in self.state_taps)
        terms = sum(2 if form == "dot" else 1 for _, form in self.sums)
        if len(fgraph.inputs) < n_sequences + taps:
            raise ValueError(f"{name}: the step graph has too few inputs for its sequences and taps")
        if len(fgraph.outputs) != len(self.state_taps) + n_stacked + terms:
            raise ValueError(f"{name}: the step graph's outputs do not match its states, stacked outputs and sums")
        if self.until is not None:
            condition = fgraph.outputs[len(self.state_taps) + self.until] if self.until < n_stacked else None
            if condition is None or condition.ndim != 0 or condition.dtype != "bool" or self.reverse or self.sums:
                raise ValueError(
                    f"{name}: until must name a boolean scalar stacked output of a forward loop with no sums"
                )
        self._look_inside()

    # --- the layout ------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def window_lengths(self) -> list[int]:
        return [-min(taps) for taps in self.state_taps]

    @property
    def n_taps(self) -> int:
        return sum(len(taps) for taps in self.state_taps)

    @property
    def n_context(self) -> int:
        return len(self.fgraph.inputs) - self.n_sequences - self.n_taps

    def inner_parts(self) -> tuple[list, list[list], list]:
        """The inner inputs: sequences, each state's taps, the context."""
        inputs = self.fgraph.inputs
        sequences = inputs[: self.n_sequences]
        position, taps = self.n_sequences, []
        for state in self.state_taps:
            taps.append(inputs[position : position + len(state)])
            position += len(state)
        return sequences, taps, inputs[position:]

    def inner_outputs(self) -> tuple[list, list, list[list]]:
        """The inner outputs: states, stacked outputs, and each sum's terms."""
        outputs = self.fgraph.outputs
        states = outputs[: len(self.state_taps)]
        stacked = outputs[len(states) : len(states) + self.n_stacked]
        position, terms = len(states) + self.n_stacked, []
        for _, form in self.sums:
            count = 2 if form == "dot" else 1
            terms.append(outputs[position : position + count])
            position += count
        return states, stacked, terms

    def outer_parts(self, inputs: Sequence[Variable]) -> tuple[Variable, list, list, list]:
        """A node's inputs: ``n_steps``, sequences, windows, context."""
        states = len(self.state_taps)
        sequences = list(inputs[1 : 1 + self.n_sequences])
        windows = list(inputs[1 + self.n_sequences : 1 + self.n_sequences + states])
        return inputs[0], sequences, windows, list(inputs[1 + self.n_sequences + states :])

    def output_parts(self, outputs: Sequence[Any]) -> tuple[list, list, list]:
        """A node's outputs (or gradients of them): buffers, stacked outputs, sums."""
        states = len(self.state_taps)
        return (
            list(outputs[:states]),
            list(outputs[states : states + self.n_stacked]),
            list(outputs[states + self.n_stacked :]),
        )

    def keeps_last_only(self, state: int) -> bool:
        """Whether state ``state``'s buffer is its last row only."""
        return self.last_only is not None and self.last_only[state]

    # --- an op holding a graph ----------------------------------------------------------------------
    @property
    def inner_graphs(self) -> list[FunctionGraph]:
        return [self.fgraph]

    def with_inner_graphs(self, graphs: Sequence[FunctionGraph]) -> "Scan":
        (fgraph,) = graphs
        return self.changed(fgraph=fgraph)

    def changed(self, **changes: Any) -> "Scan":
        """The same loop with some of its parameters changed."""
        parameters = {
            "fgraph": self.fgraph,
            "n_sequences": self.n_sequences,
            "state_taps": self.state_taps,
            "n_stacked": self.n_stacked,
            "sums": self.sums,
            "reverse": self.reverse,
            "truncate_gradient": self.truncate_gradient,
            "name": self._name,
            "stacked_like": self.stacked_like,
            "until": self.until,
            "last_only": self.last_only,
        }
        parameters.update(changes)
        return Scan(**parameters)

    # --- building -------------------------------------------------------------------------------------
    def make_node(self, n_steps: Variable, *inputs: Variable) -> Apply:
        expected = 1 + self.n_sequences + len(self.state_taps) + self.n_context
        if 1 + len(inputs) != expected:
            raise TypeError(f"{self.name} takes {expected} inputs, got {1 + len(inputs)}")
        if n_steps.ndim != 0 or n_steps.type.numpy_dtype.kind not in "iu":
            raise TypeError(f"{self.name}: n_steps must be an integer scalar, not {n_steps.type.describe()}")
        _, sequences, windows, context = self.outer_parts((n_steps, *inputs))
        inner_sequences, inner_taps, inner_context = self.inner_parts()
        for position, (outer, inner) in enumerate(zip(sequences, inner_sequences)):
            self._check_rows(outer, inner, f"sequence {position}")
        for position, (outer, taps) in enumerate(zip(windows, inner_taps)):
            self._check_rows(outer, taps[0], f"the initial window of state {position}")
        self._check_inputs(context, inner_context)
        static = int(n_steps.data) if isinstance(n_steps, Constant) and self.until is None else None
        states, stacked, terms = self.inner_outputs()
        types = []
        for k, (window, length, output) in enumerate(zip(windows, self.window_lengths, states)):
            rows = length + static if static is not None else None
            if self.keeps_last_only(k):
                rows = 1
            shape = merged_shape(window.type.shape[1:], output.type.shape) or window.type.shape[1:]
            types.append(TensorType(window.dtype, (rows,) + shape))
        for output, like in zip(stacked, self.stacked_like):
            shape = output.type.shape
            if like is not None:
                shape = merged_shape(shape, context[like].type.shape[1:]) or shape
            types.append(TensorType(output.dtype, (static,) + shape))
        for (like, form), parts in zip(self.sums, terms):
            dtype = parts[0].dtype if form == "add" else np.result_type(parts[0].dtype, parts[1].dtype).name
            types.append(TensorType(dtype, context[like].type.shape))
        return Apply(self, [n_steps, *inputs], types)

    def _check_rows(self, outer: Variable, inner: Variable, what: str) -> None:
        if (
            not isinstance(outer.type, TensorType)
            or outer.ndim != inner.ndim + 1
            or outer.dtype != inner.dtype
            or merged_shape(outer.type.shape[1:], inner.type.shape) is None
        ):
            raise TypeError(
                f"{self.name}: {what} is {outer.type.describe()}, but the step takes rows of {inner.type.describe()}"
            )

    def carrying_updates(
        self, graphs: Sequence[FunctionGraph], updates: Sequence[tuple], inputs: Sequence[Variable]
    ) -> tuple[list[Variable], list[tuple]] | None:
        """This loop with ``graphs`` as its step, carrying the shared-variable ``updates`` its step
        asks for (found when specializing the phase: a batch norm's running statistics) as states:
        each step reads the value the previous one gave, and the update is the last value. The
        new node's outputs standing for the old ones, and the ``(shared, new value)`` updates;
        ``None`` when an updated shared variable is not an input of the loop itself."""
        (fgraph,) = graphs
        n_steps, sequences, windows, context = self.outer_parts(inputs)
        inner_sequences, inner_taps, inner_context = (
            fgraph.inputs[: self.n_sequences],
            fgraph.inputs[self.n_sequences : self.n_sequences + self.n_taps],
            fgraph.inputs[self.n_sequences + self.n_taps :],
        )
        positions = []
        for shared, _, _ in updates:
            found = [j for j, variable in enumerate(context) if variable is shared]
            if not found or found[0] in positions:
                return None
            positions.append(found[0])
        kept = [j for j in range(len(context)) if j not in positions]
        index = {old: new for new, old in enumerate(kept)}
        states, stacked, terms = (
            fgraph.outputs[: len(self.state_taps)],
            fgraph.outputs[len(self.state_taps) : len(self.state_taps) + self.n_stacked],
            fgraph.outputs[len(self.state_taps) + self.n_stacked :],
        )
        values = [cast(value, shared.dtype) for shared, value, _ in updates]
        op = self.changed(
            fgraph=FunctionGraph(
                list(inner_sequences)
                + list(inner_taps)
                + [inner_context[j] for j in positions]
                + [inner_context[j] for j in kept],
                list(states) + values + list(stacked) + list(terms),
            ),
            state_taps=list(self.state_taps) + [(-1,)] * len(updates),
            last_only=self.last_only + (False,) * len(updates) if self.last_only is not None else None,
            sums=[(index[like], form) for like, form in self.sums],
            stacked_like=[index[like] if like is not None else None for like in self.stacked_like],
        )
        new_windows = [shared.dimshuffle("x", *range(shared.ndim)) for shared, _, _ in updates]
        node = op.make_node(n_steps, *sequences, *windows, *new_windows, *[context[j] for j in kept])
        buffers, new_stacked, sums = op.output_parts(node.outputs)
        old = len(self.state_taps)
        carried = [(shared, buffer[-1]) for (shared, _, _), buffer in zip(updates, buffers[old:])]
        return buffers[:old] + new_stacked + sums, carried

    # --- state ----------------------------------------------------------------------------------------
    def state_updates(self, node: Apply) -> list:
        """The random generators the step draws from in place: they advance with every call (the
        update is the generator itself, drawn from during the loop)."""
        _, _, context = self.inner_parts()
        drawing = {id(variable) for inner in self.fgraph.nodes if inner.op.stochastic for variable in inner.inputs}
        _, _, _, outer = self.outer_parts(node.inputs)
        return [
            (variable, variable)
            for variable, placeholder in zip(outer, context)
            if id(placeholder) in drawing and getattr(variable.type, "mutable", False) and variable.owner is None
        ]

    # --- computing ------------------------------------------------------------------------------------
    def perform(self, *inputs: Any) -> Any:
        raise NotImplementedError(f"{self.name} runs through a backend's loop (Scan.loop, or the numpy backend's)")

    def loop(self, compile_inner: Callable[[FunctionGraph], Callable[..., Sequence[Any]]]) -> Callable[..., Any]:
        """The reference loop, around the step compiled by a backend (``compile_inner``): what the
        python backend runs, and what the numpy backend's generated loop must agree with."""
        step = compile_inner(self.fgraph)
        lengths, taps = self.window_lengths, self.state_taps
        states, stacked, terms = self.inner_outputs()
        single = len(states) + self.n_stacked + len(self.sums) == 1

        def run(n_steps: Any, *inputs: Any) -> Any:
            count = self.check_steps(n_steps)
            _, sequences, windows, context = self.outer_parts((n_steps, *inputs))
            self.check_sequences(sequences, windows, count)
            buffers = [self.new_buffer(window, length, count) for window, length in zip(windows, lengths)]
            rows: list[Any] = [None] * self.n_stacked
            totals: list[Any] = [None] * len(self.sums)
            factors: list[list[Any]] = [[None, None] for _ in self.sums]
            taken = count
            for step_number in range(count):
                t = count - 1 - step_number if self.reverse else step_number
                arguments = [sequence[t] for sequence in sequences]
                for buffer, length, state in zip(buffers, lengths, taps):
                    arguments += [buffer[length + step_number + tap] for tap in state]
                values = list(step(*arguments, *context))
                for k, (buffer, length) in enumerate(zip(buffers, lengths)):
                    self.check_row(values[k], buffer.shape[1:], step_number, f"state {k}")
                    buffer[length + step_number] = values[k]
                values = values[len(buffers) :]
                for k in range(self.n_stacked):
                    value = np.asarray(values[k])
                    if rows[k] is None:
                        rows[k] = np.empty((count,) + value.shape, dtype=value.dtype)
                    self.check_row(value, rows[k].shape[1:], step_number, f"stacked output {k}")
                    rows[k][t] = value
                values = values[self.n_stacked :]
                for k, (_, form) in enumerate(self.sums):
                    if form == "add":
                        value = values.pop(0)
                        totals[k] = np.array(value, copy=True) if totals[k] is None else totals[k] + value
                    else:
                        for side in range(2):
                            value = np.asarray(values.pop(0))
                            if factors[k][side] is None:
                                factors[k][side] = np.empty((count,) + value.shape, dtype=value.dtype)
                            factors[k][side][t] = value
                if self.until is not None and rows[self.until][t]:
                    taken = step_number + 1
                    break
            if taken < count:  # stopped by the condition: the steps taken only
                buffers = [buffer[: length + taken] for buffer, length in zip(buffers, lengths)]
                rows = [row[:taken] for row in rows]
            results = [
                last_row(buffer[-1], buffer) if self.keeps_last_only(k) else buffer for k, buffer in enumerate(buffers)
            ]
            for k, output in enumerate(stacked):
                like = context[self.stacked_like[k]] if self.stacked_like[k] is not None else None
                results.append(rows[k] if rows[k] is not None else empty_rows(output, like))
            for k, ((like, form), parts) in enumerate(zip(self.sums, terms)):
                results.append(
                    finish_sum(form, totals[k], factors[k], context[like], self.outer_sum_dtype(parts, form))
                )
            return results[0] if single else tuple(results)

        return run

    @staticmethod
    def outer_sum_dtype(parts: Sequence[Variable], form: str) -> np.dtype:
        if form == "add":
            return parts[0].type.numpy_dtype
        return np.result_type(parts[0].type.numpy_dtype, parts[1].type.numpy_dtype)

    # --- run-time checks, shared by every backend's loop ---------------------------------------------
    def check_steps(self, n_steps: Any) -> int:
        count = int(n_steps)
        if count < 0:
            raise ValueError(f"{self.name}: the number of steps must not be negative, got {count}")
        return count

    def check_sequences(self, sequences: Sequence[Any], windows: Sequence[Any], count: int) -> None:
        for position, sequence in enumerate(sequences):
            if len(sequence) < count:
                raise ValueError(
                    f"{self.name}: sequence {position} has {len(sequence)} rows, fewer than the {count} steps"
                )
        for position, (window, length) in enumerate(zip(windows, self.window_lengths)):
            if len(window) != length:
                raise ValueError(
                    f"{self.name}: the initial value of state {position} has {len(window)} rows, but its "
                    f"taps {list(self.state_taps[position])} need {length}"
                )

    def new_buffer(
        self, window: np.ndarray, length: int, count: int, allocate: Callable[..., np.ndarray] = np.empty
    ) -> np.ndarray:
        """A state's buffer: its window, then room for ``count`` steps (from ``allocate``)."""
        buffer = allocate((length + count,) + window.shape[1:], window.dtype)
        buffer[:length] = window
        return buffer

    def check_row(self, value: Any, expected: tuple, step: int, what: str) -> None:
        shape = np.shape(value)
        if shape != expected:
            raise ValueError(
                f"{self.name}: at step {step}, the step function gave {what} of shape {shape}, but it must "
                f"keep the shape {expected} (that of its initial value, or of its first step)"
            )

    # --- differentiating ------------------------------------------------------------------------------
    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        from .scan_grad import scan_gradient

        if self.last_only is not None:  # only compiling sets it, after every gradient was taken
            raise NotImplementedError(f"{self.name}: no gradient of a loop keeping the last row of a state only")

        return scan_gradient(self, node, output_grads, needed)


def last_row(value: Any, window: np.ndarray) -> np.ndarray:
    """The buffer of a state keeping its last row only: that row (a copy), as a buffer of one row."""
    return np.array(value, dtype=window.dtype)[None]


def empty_rows(output: Variable, like: Any = None) -> np.ndarray:
    """A stacked output of zero steps: rows shaped like those of ``like`` (a context value) when
    given, else of its static shape (0 where unknown)."""
    if like is not None:
        trailing = np.shape(like)[1:]
    else:
        trailing = tuple(length or 0 for length in output.type.shape)
    return np.zeros((0,) + tuple(trailing), dtype=output.type.numpy_dtype)


def finish_sum(form: str, total: Any, factors: Sequence[Any], like: Any, dtype: np.dtype) -> np.ndarray:
    """A sum after the loop: the running total, or the one product of the stacked factors; zeros
    shaped like its context input when there were no steps."""
    if form == "add":
        if total is None:
            return np.zeros(np.shape(like), dtype=dtype)
        return np.asarray(total)
    a, b = factors
    if a is None or b is None or len(a) == 0:  # no steps
        return np.zeros(np.shape(like), dtype=dtype)
    product = np.tensordot(a, b, axes=([0, 1], [0, 1]))
    shape = np.shape(like)
    if product.shape != shape:  # the terms were summed back to the shape of a broadcast matrix
        axes = tuple(axis for axis, length in enumerate(shape) if length == 1 and product.shape[axis] != 1)
        product = product.sum(axis=axes, keepdims=True)
    return product


# --- small ops of the outer graph ----------------------------------------------------------------------
class CheckLength(Op):
    """``x`` itself, after checking at run time that it has at least ``needed`` rows (a sequence
    long enough for its taps and steps, an initial value long enough for its taps)."""

    __props__ = ("message",)
    view_map: ClassVar[dict[int, int]] = {0: 0}

    def __init__(self, message: str):
        self.message = message

    @property
    def name(self) -> str:
        return "check_length"

    def output_types(self, x: TensorType, needed: TensorType) -> list[TensorType]:
        return [x]

    def perform(self, x: np.ndarray, needed: Any) -> np.ndarray:
        if len(x) < int(needed):
            raise ValueError(self.message.format(rows=len(x), needed=int(needed)))
        return x

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        return [output_grads[0], None]


class PlaceRows(Op):
    """An array shaped like ``like`` holding ``values`` at rows ``start:start + len(values)`` and
    zeros elsewhere (the gradient of a sequence the loop read part of); ``values`` itself when it
    covers every row."""

    view_map: ClassVar[dict[int, int]] = {0: 0}

    @property
    def name(self) -> str:
        return "place_rows"

    def output_types(self, values: TensorType, like: TensorType, start: TensorType) -> list[TensorType]:
        return [TensorType(values.dtype, like.shape)]

    def perform(self, values: np.ndarray, like: np.ndarray, start: Any) -> np.ndarray:
        start = int(start)
        if start == 0 and len(values) == len(like) and values.shape == like.shape:
            return values
        result = np.zeros(like.shape, dtype=values.dtype)
        result[start : start + len(values)] = values
        return result

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        values, _, start = node.inputs
        (g,) = output_grads
        from .shape import shape_at

        return [g[start : start + shape_at(values, 0)], None, None]


def check_length(x: Variable, needed: Any, message: str) -> Variable:
    """``x``, checked to have at least ``needed`` rows: now when both are static (``ShapeError``),
    else when the function runs. ``message`` may use ``{rows}`` and ``{needed}``."""
    needed = as_tensor(np.int64(needed)) if isinstance(needed, (int, np.integer)) else cast(as_tensor(needed), "int64")
    rows = x.type.shape[0]
    if isinstance(needed, Constant):
        if int(needed.data) <= 0 or (rows is not None and rows >= int(needed.data)):
            return x
        if rows is not None:
            raise ShapeError(message.format(rows=rows, needed=int(needed.data)))
    return CheckLength(message)(x, needed)


def place_rows(values: Variable, like: Variable, start: Variable) -> Variable:
    return PlaceRows()(values, like, cast(as_tensor(start), "int64"))


def row_type(variable: Variable) -> TensorType:
    """The type of one row of ``variable`` (one step of a sequence)."""
    if variable.ndim == 0:
        raise ShapeError(f"a sequence must have at least one dimension, {variable.label()} is a scalar")
    return TensorType(variable.dtype, variable.type.shape[1:])
