"""The numpy backend's loops: one Python function generated per ``Scan`` node.

The step graph is rewritten with the outer graph, then memory-planned and written out once, as
the body of a ``for`` loop (the same statements the linker writes for a whole function: in-place
writes, early deletes); the loop around it reads each sequence's row, reads the taps from the
states' buffers (the last value is carried in a local), writes each step's values into buffers
allocated once (in the workspace's recycled memory, so that no fresh page is faulted in at every
call; elementwise results are computed straight into them), and adds up the sums in place. No
graph is walked and no argument is checked inside the loop; shapes are checked only where static
shapes cannot prove them. For ``total += x[t]`` the source reads::

    def loop(n, S0, W0):
        count = check_steps(n)
        check_sequences((S0, ), (W0, ), count)
        B0 = new_buffer(W0, 1, count)
        Q0 = B0[1:]
        p0 = W0[0]
        try:
            for t in range(count):
                x0 = S0[t]
                v2 = p0 + x0
                Q0[t] = v2
                p0 = v2
        except BaseException as error:
            fail(error, line_table)
        return B0

An error inside the step names the node, its inputs' shapes, the user's line, and the step.
"""

from __future__ import annotations

import functools
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
from ...ops.scan import Scan, empty_rows, finish_sum, last_row
from ...ops.shape import AllocEmpty
from ...ops.subtensor import IncSubtensor, index_box, pairwise_disjoint, static_index
from .. import runtime
from . import workspace
from .kernels import kernels_of
from .linker import _emit_node, _Writer, scalar_or_array
from .memory import plan_memory

_loop_numbers = itertools.count()


def link_scan(op: Scan) -> Callable[..., Any]:
    """The generated loop computing ``op``'s outputs from its inputs' values."""
    return _LoopSource(op).compiled()


class _LoopSource:
    """The source of one loop, written part by part: the inputs, the buffers, the step, what
    happens after the last step."""

    def __init__(self, op: Scan):
        self.op = op
        fgraph = op.fgraph
        self.kernels = kernels_of(fgraph.order)
        self.plan = plan_memory(fgraph.order, fgraph.outputs, [], self.kernels, True)
        self.writer = _Writer()
        self.writer.namespace.update(
            empty=workspace.empty,  # the rows of every step: large, made at every call
            check_steps=op.check_steps,
            check_sequences=op.check_sequences,
            new_buffer=functools.partial(op.new_buffer, allocate=workspace.empty),  # recycled memory
            check_row=op.check_row,
            array=np.array,
            add=np.add,
            ascontiguousarray=np.ascontiguousarray,
        )
        self.sequences, self.taps, self.context = op.inner_parts()
        self.states, self.stacked, self.terms = op.inner_outputs()
        self.lengths = op.window_lengths
        self.used = {id(v) for node in fgraph.order for v in node.inputs} | {id(v) for v in fgraph.outputs}
        self.sequence_names = [f"S{k}" for k in range(len(self.sequences))]
        self.window_names = [f"W{k}" for k in range(len(self.taps))]
        self.context_names = [f"C{k}" for k in range(len(self.context))]
        self.rows = [f"P{k}" for k in range(len(self.stacked))]  # the stacked outputs' buffers
        self.carried: dict[int, str] = {}  # state -> the local holding its last value
        self.factors: dict[int, tuple[str, str]] = {}  # 'dot' sum -> its factors' rows
        self.viewed: dict[str, tuple[str, Variable]] = {}  # factor rows -> (stacked rows, stacked output)
        self.prologue: list[str] = []
        self.epilogue: list[str] = []
        self.returned: list[str] = []
        self.step = "s" if op.reverse else "t"  # the step's number (t: the sequences' row)

    def compiled(self) -> Callable[..., Any]:
        self.read_inputs()
        self.allocate_buffers()
        self.write_step()
        self.finish()
        return self.compile()

    # --- before the loop ---------------------------------------------------------------------------
    def read_inputs(self) -> None:
        """Checks of the step count and the sequences' lengths; context values made ready (0-d
        values as numpy scalars, matrices multiplied at every step contiguous); constants."""
        writer, fgraph = self.writer, self.op.fgraph
        self.prologue.append("count = check_steps(n)")
        if self.sequences or self.taps:
            sequences = "".join(s + ", " for s in self.sequence_names)
            windows = "".join(w + ", " for w in self.window_names)
            self.prologue.append(f"check_sequences(({sequences}), ({windows}), count)")
        multiplied = {id(v) for node in fgraph.order if isinstance(node.op, (Dot, Matmul)) for v in node.inputs}
        for variable, name in zip(self.context, self.context_names):
            writer.identifier[variable] = name
            if isinstance(variable.type, TensorType) and variable.ndim == 0 and id(variable) in self.used:
                self.prologue.append(f"{name} = {name}[()]")  # a numpy scalar: see scalar_or_array
            elif id(variable) in multiplied and variable.ndim == 2:
                # BLAS is markedly slower on transposed operands of some shapes: a matrix
                # multiplied at every step (a transposed weight, say) is made contiguous once.
                self.prologue.append(f"{name} = ascontiguousarray({name})")
        for variable in [v for node in fgraph.order for v in node.inputs] + fgraph.outputs:
            if isinstance(variable, Constant) and variable not in writer.identifier:
                writer.identifier[variable] = writer.bind("c", scalar_or_array(variable.data))

    def allocate_buffers(self) -> None:
        """One buffer per state (its window, then the steps; the last value carried in a local),
        per stacked output and per factor of a 'dot' sum (at once when the shape is static)."""
        for k, (state_taps, window, length) in enumerate(zip(self.op.state_taps, self.window_names, self.lengths)):
            if not self.op.keeps_last_only(k):  # else only the carried local: no row per step
                self.prologue.append(f"B{k} = new_buffer({window}, {length}, count)")
                self.prologue.append(f"Q{k} = B{k}[{length}:]")
            if -1 in state_taps:
                self.carried[k] = f"p{k}"
                self.prologue.append(f"p{k} = {window}[{length - 1}]")
            if not _proven(self.states[k], self.taps[k][0]):
                self.prologue.append(f"R{k} = {window}.shape[1:]")
        for name, output in zip(self.rows, self.stacked):
            self.prologue.append(_allocation(self.writer, name, output))
        for k, ((_, form), parts) in enumerate(zip(self.op.sums, self.terms)):
            if form == "add":
                self.prologue.append(f"U{k} = None")
            else:
                self.factors[k] = tuple(self.factor_rows(k, side, part) for side, part in zip("AF", parts))
        if self.op.reverse:
            self.prologue.append("last = count - 1")
        if self.op.until is not None:
            self.prologue.append("taken = count")

    def factor_rows(self, k: int, side: str, part: Variable) -> str:
        """Where the rows of a factor of 'dot' sum ``k`` are. Both factors are stored by the
        sequences' row (the sum does not depend on the order of the steps), so a factor that is
        a stacked output, or a sequence's row, is read from there; one that is a view (SumTo, say)
        of a stacked output is read from that output at the steps where it is that very array."""
        same = [self.rows[j] for j, output in enumerate(self.stacked) if output is part]
        same += [f"{self.sequence_names[j]}[:count]" for j, v in enumerate(self.sequences) if v is part]
        if same:
            return same[0]
        name = f"{side}{k}"
        self.prologue.append(_allocation(self.writer, name, part))
        base = part.owner.inputs[0] if part.owner is not None and part.owner.op.view_map == {0: 0} else None
        viewed = [j for j, output in enumerate(self.stacked) if output is base]
        if viewed:
            self.viewed[name] = (self.rows[viewed[0]], base)
            self.prologue.append(f"M{name} = []")
        return name

    # --- the loop ---------------------------------------------------------------------------------------
    def write_step(self) -> None:
        writer = self.writer
        writer.emit("for t in range(count - 1, -1, -1):" if self.op.reverse else "for t in range(count):")
        writer.depth += 1
        if self.op.reverse:
            writer.emit("s = last - t")
        self.read_rows()
        self.choose_destinations()
        for position, node in enumerate(self.plan.order):
            _emit_node(writer, node, self.kernels[node], self.plan, position, None)
        self.store_values()
        writer.depth -= 1

    def read_rows(self) -> None:
        """The step's inputs: each sequence's row, each state's taps (the last value carried)."""
        writer, step = self.writer, self.step
        for variable, name in zip(self.sequences, self.sequence_names):
            if id(variable) in self.used:
                writer.identifier[variable] = writer.fresh("x")
                writer.emit(f"{writer.identifier[variable]} = {name}[t]")
            else:
                writer.identifier[variable] = "None"
        for k, (state_taps, state_inputs) in enumerate(zip(self.op.state_taps, self.taps)):
            for tap, variable in zip(state_taps, state_inputs):
                if tap == -1:
                    writer.identifier[variable] = self.carried[k]
                elif id(variable) in self.used:
                    writer.identifier[variable] = writer.fresh("x")
                    row = f"{step} + {self.lengths[k] + tap}" if self.lengths[k] + tap else step
                    writer.emit(f"{writer.identifier[variable]} = B{k}[{row}]")
                else:
                    writer.identifier[variable] = "None"

    def choose_destinations(self) -> None:
        """Nodes computing a state or a stacked output write it straight into its buffer row."""
        chosen = _Destinations(self.writer, self.kernels, self.plan, self.op.fgraph.outputs)
        for k, output in enumerate(self.states):
            if self.op.keeps_last_only(k):
                continue
            shape = f"R{k}" if not _proven(output, self.taps[k][0]) else None
            chosen.add(output, f"Q{k}[{self.step}]", shape, f"B{k}")
        for name, output in zip(self.rows, self.stacked):
            if None not in output.type.shape:
                chosen.add(output, f"{name}[t]", None, name)

    def store_values(self) -> None:
        """Each state's value into its buffer (and its local), each stacked value, each sum."""
        writer, step = self.writer, self.step
        for k, output in enumerate(self.states):
            value = writer.identifier[output]
            if not _proven(output, self.taps[k][0]):
                writer.emit(f"if {value}.shape != R{k}: check_row({value}, R{k}, {step}, 'state {k}')")
            if not self.op.keeps_last_only(k):
                writer.emit(_store(writer, output, f"Q{k}[{step}]", f"B{k}"))
            if k in self.carried:
                writer.emit(f"{self.carried[k]} = {value}")
        for k, (name, output) in enumerate(zip(self.rows, self.stacked)):
            _store_row(writer, name, output, "t", f"stacked output {k}", step)
        for k, ((_, form), parts) in enumerate(zip(self.op.sums, self.terms)):
            if form == "add":
                value = writer.identifier[parts[0]]
                writer.emit(f"if U{k} is None: U{k} = array({value})")
                writer.emit(f"else: add(U{k}, {value}, out=U{k})")
                continue
            for name, part in zip(self.factors[k], parts):
                if name in self.viewed:
                    value, other = writer.identifier[part], writer.identifier[self.viewed[name][1]]
                    writer.emit(f"if {value} is {other}: M{name}.append(t)")
                    writer.emit("else:")
                    writer.depth += 1
                    _store_row(writer, name, part, "t", f"a factor of sum {k}", step)
                    writer.depth -= 1
                elif name.startswith(("A", "F")):
                    _store_row(writer, name, part, "t", f"a factor of sum {k}", step)
        if self.op.until is not None:  # stop after the first step whose condition holds
            writer.emit(f"if {writer.identifier[self.stacked[self.op.until]]}:")
            writer.depth += 1
            writer.emit("taken = t + 1")
            writer.emit("break")
            writer.depth -= 1

    # --- after the loop -----------------------------------------------------------------------------
    def finish(self) -> None:
        """Stacked outputs of zero steps, the sums, and what is returned."""
        writer = self.writer
        take_last = writer.bind("last_row", last_row)
        self.returned = [
            f"{take_last}(p{k}, {window})" if self.op.keeps_last_only(k) else f"B{k}"
            for k, window in enumerate(self.window_names)
        ]
        if self.op.until is not None:  # stopped early: the steps taken only
            trimmed = [
                f"B{k} = B{k}[:{length} + taken]"
                for k, length in enumerate(self.lengths)
                if not self.op.keeps_last_only(k)  # (its local holds the last step taken)
            ]
            trimmed += [f"{name} = {name}[:taken] if {name} is not None else None" for name in self.rows]
            self.epilogue.append("if taken < count:")
            self.epilogue += ["    " + line for line in trimmed]
        empty = writer.bind("empty_rows", empty_rows)
        for name, output, like in zip(self.rows, self.stacked, self.op.stacked_like):
            template = self.context_names[like] if like is not None else "None"
            self.epilogue.append(f"if {name} is None: {name} = {empty}({writer.bind('o', output)}, {template})")
            self.returned.append(name)
        finish = writer.bind("finish_sum", finish_sum)
        for k, ((like, form), parts) in enumerate(zip(self.op.sums, self.terms)):
            dtype = writer.bind("d", self.op.outer_sum_dtype(parts, form))
            template = self.context_names[like]
            if form == "add":
                self.epilogue.append(f"U{k} = {finish}('add', U{k}, None, {template}, {dtype})")
            else:
                for name in self.factors[k]:
                    if name in self.viewed:
                        merge = writer.bind("merge_rows", _merge_rows)
                        self.epilogue.append(f"{name} = {merge}({name}, {self.viewed[name][0]}, M{name})")
                first, second = self.factors[k]
                self.epilogue.append(f"U{k} = {finish}('dot', None, ({first}, {second}), {template}, {dtype})")
            self.returned.append(f"U{k}")

    def compile(self) -> Callable[..., Any]:
        writer, op = self.writer, self.op
        arguments = ", ".join(["n", *self.sequence_names, *self.window_names, *self.context_names])
        filename = f"<symgraph loop {_printable(op.name)} #{next(_loop_numbers)}>"
        lines = [f"def loop({arguments}):"] + ["    " + line for line in self.prologue] + ["    try:"]
        line_table: dict[int, Apply] = {}
        for statement, node, depth, *_ in writer.statements:
            lines.append("    " * (depth + 2) + statement)
            if node is not None:
                line_table[len(lines)] = node
        lines.append("    except BaseException as error:")
        lines.append("        fail(error, line_table)")
        lines += ["    " + line for line in self.epilogue]
        returned = self.returned
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
    in place (an LSTM's gate gradients), which then copies its input into the row first. When
    that chain starts from an uninitialized array and writes disjoint fixed slices, the
    elementwise nodes computing the slices' values (read by nothing else) compute them straight
    into their slice of the row, and the writes have nothing left to copy."""

    def __init__(self, writer: _Writer, kernels: dict, plan: Any, outputs: list):
        self.writer, self.kernels = writer, kernels
        self.position = {id(node): position for position, node in enumerate(plan.order)}
        self.plan = plan
        self.uses: dict[int, int] = {}
        for node in plan.order:
            for variable in node.inputs:
                self.uses[id(variable)] = self.uses.get(id(variable), 0) + 1
        for variable in outputs:
            self.uses[id(variable)] = self.uses.get(id(variable), 0) + 1

    def add(self, output: Variable, target: str, shape: str | None, base: str) -> None:
        node = output.owner
        if node is None or id(node) not in self.position or len(node.outputs) != 1 or output.ndim == 0:
            return
        kernel = self.kernels[node]
        if kernel.writes_out:
            if not any(v.ndim == output.ndim for v in node.inputs):
                return
        elif kernel.destroys == (0,) and kernel.inplace_function is not None:
            chain = self._chain(node)
            node = chain[-1] if chain else None
            if node is not None and node not in self.writer.destinations:
                self._values_into_slices(chain, target, output)
        else:
            return
        if node is None or node in self.writer.destinations:
            return
        self.writer.destinations[node] = (target, shape if shape is not None else repr(tuple(output.type.shape)))
        self.writer.stored_in[id(output)] = base

    def _values_into_slices(self, chain: list[Apply], target: str, output: Variable) -> None:
        """The values of a chain of writes starting from an uninitialized array, computed in their
        slice of ``target`` where that is safe: fixed, disjoint slices of a static shape; values
        computed by an elementwise node of this step and read by that write alone."""
        start = chain[-1].inputs[0].owner
        shape = output.type.shape
        if start is None or not isinstance(start.op, AllocEmpty) or None in shape:
            return
        links = [link for link in chain if isinstance(link.op, IncSubtensor) and link.op.mode == "set"]
        indices = [static_index(link) for link in links]
        if len(links) != len(chain) or any(index is None for index in indices):
            return
        boxes = [index_box(index, shape) for index in indices]
        if any(box is None for box in boxes) or not pairwise_disjoint(boxes):
            return  # overlapping slices: a later write must come after an earlier one
        for link, index in zip(links, indices):
            value = link.inputs[1]
            producer = value.owner
            region = np.broadcast_to(np.int8(0), shape)[index].shape
            if (
                producer is None
                or id(producer) not in self.position
                or len(producer.outputs) != 1
                or not self.kernels[producer].writes_out
                or self.uses.get(id(value)) != 1
                or value.type.shape != region
                or value.type.dtype != output.type.dtype  # (writing casts: out= may refuse to)
                or not any(v.ndim == value.ndim for v in producer.inputs)
                or producer in self.writer.destinations
            ):
                continue
            self.writer.destinations[producer] = (f"{target}[{index!r}]", repr(region))

    def _chain(self, node: Apply) -> list[Apply] | None:
        """The chain of in-place writes ending at ``node``, last first (``None`` when the chain
        starts with something else)."""
        chain = [node]
        while True:
            choice = self.plan.inplace.get(self.position[id(node)])
            if choice is None:
                return chain
            previous = node.inputs[0].owner
            if previous is not None and isinstance(previous.op, AllocEmpty):
                return chain  # written into the row instead: nothing under it to copy
            if (
                choice.position != 0
                or previous is None
                or id(previous) not in self.position
                or self.kernels[previous].destroys != (0,)
            ):
                return None
            node = previous
            chain.append(node)


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
