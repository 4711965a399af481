"""The numpy backend's loops: one Python function generated per ``Scan`` node.

The step graph is rewritten with the outer graph, then memory-planned and written out once, as
the body of a ``for`` loop (the same statements the linker writes for a whole function: in-place
writes, early deletes); the loop around it reads each sequence's row, reads the taps from the
states' buffers (the last value is carried in a local), writes each step's values into buffers
allocated once, and adds up the sums in place. No graph is walked and no argument is checked
inside the loop; shapes are checked only where static shapes cannot prove them. For ``total +=
x[t]`` the source reads::

    def loop(n, S0, W0):
        count = check_steps(n)
        check_sequences((S0,), (W0,), count)
        B0 = new_buffer(W0, 1, count)
        p0 = W0[0]
        try:
            for t in range(count):
                i1 = S0[t]
                v2 = p0 + i1
                B0[t + 1] = v2
                p0 = v2
        except BaseException as error:
            fail(error, line_table)
        return B0

An error inside the step names the node, its inputs' shapes, the user's line, and the step.
"""

from __future__ import annotations

import itertools
import linecache
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from ...errors import NodeError, SymgraphError
from ...graph.basic import Apply, Constant, Variable
from ...graph.type import TensorType
from ...ops.linalg import Dot, Matmul
from ...ops.scan import Scan, empty_rows, finish_sum
from .. import runtime
from .kernels import numpy_kernel
from .linker import _emit_node, _Writer
from .memory import plan_memory

_loop_numbers = itertools.count()


def link_scan(op: Scan) -> Callable[..., Any]:
    """The generated loop computing ``op``'s outputs from its inputs' values."""
    fgraph = op.fgraph
    order = fgraph.order
    kernels = {node: numpy_kernel(node.op, node) for node in order}
    plan = plan_memory(order, fgraph.outputs, [], kernels, True)
    writer = _Writer()
    writer.scalar_expressions = True
    writer.namespace.update(
        empty=np.empty,
        check_steps=op.check_steps,
        check_sequences=op.check_sequences,
        new_buffer=op.new_buffer,
        check_row=op.check_row,
        array=np.array,
        add=np.add,
        ascontiguousarray=np.ascontiguousarray,
    )
    sequences, taps, context = op.inner_parts()
    states, stacked, terms = op.inner_outputs()
    lengths = op.window_lengths
    used = {id(v) for node in order for v in node.inputs} | {id(v) for v in fgraph.outputs}

    sequence_names = [f"S{k}" for k in range(len(sequences))]
    window_names = [f"W{k}" for k in range(len(taps))]
    context_names = [f"C{k}" for k in range(len(context))]
    head = [f"def loop({', '.join(['n'] + sequence_names + window_names + context_names)}):"]
    prologue = ["count = check_steps(n)"]
    if sequences or taps:
        prologue.append(
            f"check_sequences(({''.join(s + ', ' for s in sequence_names)}), "
            f"({''.join(w + ', ' for w in window_names)}), count)"
        )
    multiplied = {id(v) for node in order if isinstance(node.op, (Dot, Matmul)) for v in node.inputs}
    for variable, name in zip(context, context_names):
        writer.identifier[variable] = name
        if isinstance(variable.type, TensorType) and variable.ndim == 0 and id(variable) in used:
            prologue.append(f"{name} = {name}[()]")  # a numpy scalar: see _constant_value
        elif id(variable) in multiplied and variable.ndim == 2:
            # A matrix multiplied at every step (a transposed weight, say) is made contiguous
            # once: BLAS is markedly slower on transposed operands of some shapes.
            prologue.append(f"{name} = ascontiguousarray({name})")
    for node in order:
        for variable in node.inputs:
            if isinstance(variable, Constant) and variable not in writer.identifier:
                writer.identifier[variable] = writer.bind("c", _constant_value(variable))
    for variable in fgraph.outputs:
        if isinstance(variable, Constant) and variable not in writer.identifier:
            writer.identifier[variable] = writer.bind("c", _constant_value(variable))

    # States: a buffer each; the last value carried in a local, the other taps read from the buffer.
    carried: dict[int, str] = {}
    for k, (state_taps, window, length) in enumerate(zip(op.state_taps, window_names, lengths)):
        prologue.append(f"B{k} = new_buffer({window}, {length}, count)")
        prologue.append(f"Q{k} = B{k}[{length}:]")
        if -1 in state_taps:
            carried[k] = f"p{k}"
            prologue.append(f"p{k} = {window}[{length - 1}]")
        if not _proven(states[k], taps[k][0]):
            prologue.append(f"R{k} = {window}.shape[1:]")
    # Stacked outputs and the factors of 'dot' sums: allocated at once when their shape is static.
    rows = [f"P{k}" for k in range(len(stacked))]
    factor_rows = {}
    viewed_rows: dict[str, tuple[str, Variable]] = {}  # factor -> (stacked rows, stacked output)
    for k, output in enumerate(stacked):
        prologue.append(_allocation(writer, rows[k], output))
    for k, ((_, form), parts) in enumerate(zip(op.sums, terms)):
        if form == "add":
            prologue.append(f"U{k} = None")
        else:
            # A factor that is also a stacked output is read from that output's rows (the sum
            # does not depend on the order of the steps, so both are stored by row).
            # A factor that is a sequence's row is read from the sequence. A factor that is a
            # view (SumTo, say) of a stacked output is read from that output's rows at the steps
            # where it turns out to be that very array.
            names = []
            for side, part in zip("AF", parts):
                same = [rows[j] for j, output in enumerate(stacked) if output is part]
                read = [f"{sequence_names[j]}[:count]" for j, v in enumerate(sequences) if v is part]
                if same or read:
                    names.append((same + read)[0])
                    continue
                names.append(f"{side}{k}")
                prologue.append(_allocation(writer, names[-1], part))
                base = part.owner.inputs[0] if part.owner is not None and part.owner.op.view_map == {0: 0} else None
                viewed = [j for j, output in enumerate(stacked) if output is base]
                if viewed:
                    viewed_rows[names[-1]] = (rows[viewed[0]], base)
                    prologue.append(f"M{names[-1]} = []")
            factor_rows[k] = tuple(names)

    step = "t" if not op.reverse else "last - t"
    loop_head = "for t in range(count):" if not op.reverse else "for t in range(count - 1, -1, -1):"
    if op.reverse:
        prologue.append("last = count - 1")
    writer.emit(loop_head)
    writer.depth += 1
    if op.reverse:
        writer.emit(f"s = {step}")
        step = "s"
    for variable, name in zip(sequences, sequence_names):
        if id(variable) in used:
            writer.identifier[variable] = writer.fresh("x")
            writer.emit(f"{writer.identifier[variable]} = {name}[t]")
        else:
            writer.identifier[variable] = "None"
    for k, (state_taps, state_inputs) in enumerate(zip(op.state_taps, taps)):
        for tap, variable in zip(state_taps, state_inputs):
            if tap == -1:
                writer.identifier[variable] = carried[k]
            elif id(variable) in used:
                writer.identifier[variable] = writer.fresh("x")
                writer.emit(
                    f"{writer.identifier[variable]} = B{k}[{step} + {lengths[k] + tap}]"
                    if lengths[k] + tap
                    else f"{writer.identifier[variable]} = B{k}[{step}]"
                )
            else:
                writer.identifier[variable] = "None"
    # Elementwise nodes computing a state or a stacked output write it straight into its buffer.
    chosen = _Destinations(writer, kernels, plan)
    for k, output in enumerate(states):
        chosen.add(output, f"Q{k}[{step}]", f"R{k}" if not _proven(output, taps[k][0]) else None, f"B{k}")
    for k, output in enumerate(stacked):
        if None not in output.type.shape:
            chosen.add(output, f"{rows[k]}[t]", None, rows[k])
    for position, node in enumerate(plan.order):
        _emit_node(writer, node, kernels[node], plan, position, None)
    for k, output in enumerate(states):
        value = writer.identifier[output]
        if not _proven(output, taps[k][0]):
            writer.emit(f"if {value}.shape != R{k}: check_row({value}, R{k}, {step}, 'state {k}')")
        writer.emit(_store(writer, output, f"Q{k}[{step}]", f"B{k}"))
        if k in carried:
            writer.emit(f"{carried[k]} = {value}")
    for k, output in enumerate(stacked):
        _store_row(writer, rows[k], output, "t", f"stacked output {k}", step)
    for k, ((_, form), parts) in enumerate(zip(op.sums, terms)):
        if form == "add":
            value = writer.identifier[parts[0]]
            writer.emit(f"if U{k} is None: U{k} = array({value})")
            writer.emit(f"else: add(U{k}, {value}, out=U{k})")
        else:
            for name, part in zip(factor_rows[k], parts):
                if name in viewed_rows:
                    value, other = writer.identifier[part], writer.identifier[viewed_rows[name][1]]
                    writer.emit(f"if {value} is {other}: M{name}.append(t)")
                    writer.emit("else:")
                    writer.depth += 1
                    _store_row(writer, name, part, "t", f"a factor of sum {k}", step)
                    writer.depth -= 1
                elif name.startswith(("A", "F")):
                    _store_row(writer, name, part, "t", f"a factor of sum {k}", step)
    writer.depth -= 1

    returned = [f"B{k}" for k in range(len(states))]
    epilogue = []
    for k, (output, like) in enumerate(zip(stacked, op.stacked_like)):
        empty = writer.bind("empty_rows", empty_rows)
        node_output = writer.bind("o", output)
        template = context_names[like] if like is not None else "None"
        epilogue.append(f"if {rows[k]} is None: {rows[k]} = {empty}({node_output}, {template})")
        returned.append(rows[k])
    finish = writer.bind("finish_sum", finish_sum)
    for k, ((like, form), parts) in enumerate(zip(op.sums, terms)):
        dtype = writer.bind("d", op.outer_sum_dtype(parts, form))
        if form == "add":
            epilogue.append(f"U{k} = {finish}('add', U{k}, None, {context_names[like]}, {dtype})")
        else:
            for name in factor_rows[k]:
                if name in viewed_rows:
                    merge = writer.bind("merge_rows", _merge_rows)
                    epilogue.append(f"{name} = {merge}({name}, {viewed_rows[name][0]}, M{name})")
            first, second = factor_rows[k]
            epilogue.append(f"U{k} = {finish}('dot', None, ({first}, {second}), {context_names[like]}, {dtype})")
        returned.append(f"U{k}")

    filename = f"<symgraph loop {_printable(op.name)} #{next(_loop_numbers)}>"
    lines = head + ["    " + line for line in prologue] + ["    try:"]
    line_table: dict[int, Apply] = {}
    for statement, node, depth in writer.statements:
        lines.append("    " * (depth + 2) + statement)
        if node is not None:
            line_table[len(lines)] = node
    lines.append("    except BaseException as error:")
    lines.append("        fail(error, line_table)")
    lines += ["    " + line for line in epilogue]
    lines.append(f"    return {returned[0]}" if len(returned) == 1 else f"    return ({', '.join(returned)},)")
    source = "\n".join(lines) + "\n"
    writer.namespace["line_table"] = line_table
    writer.namespace["fail"] = _failure_reporter(filename, writer.identifier, op.name)
    exec(compile(source, filename, "exec"), writer.namespace)
    loop = writer.namespace["loop"]
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    weakref.finalize(loop, linecache.cache.pop, filename, None)
    loop.source = source  # type: ignore[attr-defined]
    return loop


def _merge_rows(rows: Any, viewed: np.ndarray, same: list) -> np.ndarray:
    """A factor's rows: those of the stacked output it was a view of at the steps listed in
    ``same``, its own elsewhere."""
    if not same:
        return rows
    if rows is None:
        return viewed
    rows[same] = viewed[same]
    return rows


def _constant_value(constant: Constant) -> Any:
    # 0-d values as numpy scalars: arithmetic on them is several times faster than on 0-d arrays.
    return constant.data[()] if constant.data.ndim == 0 else constant.data


def _proven(output: Variable, row: Variable) -> bool:
    """Whether static shapes prove that ``output`` has the shape of ``row`` (a state's taps)."""
    shape = output.type.shape if isinstance(output.type, TensorType) else None
    return shape is not None and None not in shape and shape == row.type.shape


def _allocation(writer: _Writer, name: str, output: Variable) -> str:
    shape = output.type.shape
    if None in shape:
        return f"{name} = None"
    dtype = writer.bind("d", output.type.numpy_dtype)
    return f"{name} = empty((count,) + {shape!r}, {dtype})"


def _store_row(writer: _Writer, name: str, output: Variable, row: str, what: str, step: str) -> None:
    value = writer.identifier[output]
    if None in output.type.shape:
        dtype = writer.bind("d", output.type.numpy_dtype)
        writer.emit(f"if {name} is None: {name} = empty((count,) + {value}.shape, {dtype}); R{name} = {value}.shape")
        writer.emit(f"elif {value}.shape != R{name}: check_row({value}, R{name}, {step}, {what!r})")
    writer.emit(_store(writer, output, f"{name}[{row}]", name))


class _Destinations:
    """Which nodes of the step write their result straight into a buffer row: an elementwise node
    computing a state or a stacked output (``out=``), or the first of a chain of slices written
    in place (an LSTM's gate gradients), which then copies its input into the row first."""

    def __init__(self, writer: _Writer, kernels: dict, plan: Any):
        self.writer, self.kernels = writer, kernels
        self.position = {id(node): position for position, node in enumerate(plan.order)}
        self.plan = plan

    def add(self, output: Variable, target: str, shape: str | None, base: str) -> None:
        node = output.owner
        if node is None or id(node) not in self.position or len(node.outputs) != 1 or output.ndim == 0:
            return
        kernel = self.kernels[node]
        if kernel.writes_out:
            if not any(v.ndim == output.ndim for v in node.inputs):
                return
        elif kernel.destroys == (0,) and kernel.inplace_function is not None:
            node = self._chain_start(node)
        else:
            return
        if node is None or node in self.writer.destinations:
            return
        self.writer.destinations[node] = (target, shape if shape is not None else repr(tuple(output.type.shape)))
        self.writer.stored_in[id(output)] = base

    def _chain_start(self, node: Apply) -> Apply | None:
        """The first node of the chain of in-place writes ending at ``node`` (``None`` when the
        chain starts with something else)."""
        while True:
            choice = self.plan.inplace.get(self.position[id(node)])
            if choice is None:
                return node
            previous = node.inputs[0].owner
            if (
                choice.position != 0
                or previous is None
                or id(previous) not in self.position
                or self.kernels[previous].destroys != (0,)
            ):
                return None
            node = previous


def _store(writer: _Writer, output: Variable, target: str, base: str) -> str:
    """The statement copying a step's value into its buffer row (none when it was computed there)."""
    value = writer.identifier[output]
    if writer.stored_in.get(id(output)) == base:
        return f"if {value}.base is not {base}: {target} = {value}"
    return f"{target} = {value}"


def _printable(text: str) -> str:
    return "".join(character if character.isprintable() else "?" for character in text)


def _failure_reporter(
    filename: str, identifier: dict[Variable, str], name: str
) -> Callable[[BaseException, dict], None]:
    """What the loop calls when a statement raised: the error again, naming the node, its inputs'
    shapes, the user's line that built it, and the step."""

    def fail(error: BaseException, line_table: dict) -> None:
        if isinstance(error, SymgraphError) or not isinstance(error, Exception):
            raise error
        traceback, node, values = error.__traceback__, None, {}
        while traceback is not None and node is None:
            if traceback.tb_frame.f_code.co_filename == filename:
                node = line_table.get(traceback.tb_lineno)
                values = dict(traceback.tb_frame.f_locals)
            traceback = traceback.tb_next
        if node is None:
            raise error
        inputs = [values.get(identifier.get(variable)) for variable in node.inputs]
        step = values.get("s", values.get("t"))
        described = runtime.describe_failure(node, inputs, error)
        message = f"{described}\n  (at step {step} of {name})"
        raise NodeError.wrapping(error, message) from error

    return fail
