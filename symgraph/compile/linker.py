"""The linker: one straight-line Python function generated per compiled graph.

The generated function checks its arguments once, at the door, then runs one statement per node
(calling the callable each op chose for its node at compile time), takes its outputs (copying
those that need it), and commits the updates. Every identifier in its source is generated (``i0``,
``v12``, ``f12``...): no user string, a variable's name say, ever reaches it; the callables,
constants and shared variables it uses live in its globals. ``line_table`` maps each line back to
its node, for error messages. Nothing is stored between calls, so calls are reentrant; calls that
touch shared state hold one lock, so concurrent calls behave as if made one after another.

For ``y = exp(x) + 1`` on a vector ``x`` the source reads::

    def program(args):
        if len(args) != 1: wrong_count(len(args))
        i0, = args
        if i0.__class__ is not ndarray or i0.dtype is not d2 or i0.ndim != 1: i0 = convert1(i0)
        try:
            v5 = f4(i0)
            v5 = f6(v5, c3, out=v5)
        except BaseException as error:
            fail(error, line_table)
        return v5

(``exp`` makes a new array, which ``+ 1`` overwrites, reusing its name, since nothing else reads it.)
"""

from __future__ import annotations

import itertools
import linecache
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError, NodeError, SymgraphError
from ..graph.basic import STATE_LOCK, Apply, Constant, SharedVariable, Variable
from ..graph.source import describe
from ..graph.type import TensorType, format_shape
from .memory import MemoryPlan

_program_numbers = itertools.count()


@dataclass
class Program:
    """A generated function and what explains it."""

    run: Callable[[tuple], Any]
    source: str
    filename: str
    line_table: dict[int, Apply]  #: line number -> the node it computes
    order: list[Apply]  #: the nodes in the order the program computes them


class _Writer:
    """Generated identifiers, the objects they name, and the statements written so far."""

    def __init__(self) -> None:
        self.identifier: dict[Variable, str] = {}
        self.namespace: dict[str, Any] = {"ndarray": np.ndarray, "asarray": np.asarray, "STATE_LOCK": STATE_LOCK}
        self.statements: list[tuple[str, Apply | None]] = []
        self._numbers = itertools.count()
        self._bound: dict[int, str] = {}

    def bind(self, prefix: str, value: Any) -> str:
        """The identifier of an object the program uses (a callable, a constant, ...); one object
        used many times (``numpy.sin`` for every ``sin`` node) gets one identifier."""
        name = self._bound.get(id(value))
        if name is None:
            name = self._bound[id(value)] = self.fresh(prefix)
            self.namespace[name] = value
        return name

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self._numbers)}"

    def emit(self, statement: str, node: Apply | None = None) -> None:
        self.statements.append((statement, node))


def link(
    inputs: Sequence[Variable],
    outputs: Sequence[Variable],
    updates: Sequence[tuple[SharedVariable, Variable]],
    plan: MemoryPlan,
    *,
    name: str,
    single_output: bool | None,
    allow_downcast: bool,
    debug: bool,
    apply_updates: bool,
) -> Program:
    """The generated program computing ``outputs`` and ``updates`` from ``inputs`` as ``plan`` says.

    ``single_output``: return the one output itself (``True``), a list (``False``) or ``None``.
    ``apply_updates=False`` commits no update and restores the random state after every call.
    """
    writer = _Writer()
    head = _argument_checks(writer, inputs, name, allow_downcast)
    shared_reads = _shared_reads(plan, outputs, updates)
    for variable in _constants(plan, outputs, updates):
        writer.identifier[variable] = writer.bind("c", variable.data)
    prologue, restores = _state_prologue(writer, shared_reads)

    returned: list[str] = []
    check = writer.bind("check", _debug_check) if debug else None
    commit_guard = None
    for position, node in enumerate(plan.order):
        if position == plan.commit_start:
            returned = _take_outputs(writer, outputs, plan)
            commit_guard = _commit_guard(writer, plan)
        # Names of the values that die here are reused for the node's outputs (which drops the
        # old values as it binds the new ones); the rest are deleted, to free memory early.
        dying = [writer.identifier[v] for v in plan.deaths.get(position, ()) if v in writer.identifier]
        guard = commit_guard if position >= plan.commit_start else None
        _emit_node(writer, node, plan.inplace.get(position), check, dying, guard)
        if dying:
            writer.emit(f"del {', '.join(dying)}")
    if plan.commit_start >= len(plan.order):
        returned = _take_outputs(writer, outputs, plan)
    commits = _prepare_updates(writer, updates, plan) if apply_updates else []

    filename = f"<symgraph function {name} #{next(_program_numbers)}>"
    writer.namespace["fail"] = _failure_reporter(filename, writer.identifier)
    lines = ["def program(args):"] + ["    " + line for line in head]
    indent = "    "
    if shared_reads or updates:
        lines.append("    with STATE_LOCK:")
        indent = "        "
    lines += [indent + line for line in prologue]
    lines.append(indent + "try:")
    line_table: dict[int, Apply] = {}
    for statement, node in writer.statements:
        lines.append(indent + "    " + statement)
        if node is not None:
            line_table[len(lines)] = node
    if not writer.statements:  # nothing to compute (no outputs, no updates)
        lines.append(indent + "    pass")
    lines.append(indent + "except BaseException as error:")
    lines += [indent + "    " + line for line in restores]
    lines.append(indent + "    fail(error, line_table)")
    if not apply_updates:
        lines += [indent + line for line in restores]  # .eval() never advances random state
    lines += [indent + line for line in commits]
    if single_output:
        lines.append(f"    return {returned[0]}")
    elif single_output is None:  # outputs=None
        lines.append("    return None")
    else:
        lines.append(f"    return [{', '.join(returned)}]")
    source = "\n".join(lines) + "\n"
    writer.namespace["line_table"] = line_table
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), writer.namespace)
    return Program(writer.namespace["program"], source, filename, line_table, list(plan.order))


# --- the parts of the program -------------------------------------------------------------------
def _argument_checks(writer: _Writer, inputs: Sequence[Variable], name: str, allow_downcast: bool) -> list[str]:
    """The count test, the unpacking, and one line per argument: a fast test that it is already
    right, else the full conversion (which raises an error naming the input)."""
    listed = ", ".join(variable.label() for variable in inputs) or "none"

    def wrong_count(given: int) -> None:
        raise InputError(f"function {name} takes {len(inputs)} argument(s) ({listed}), but {given} were given")

    writer.namespace["wrong_count"] = wrong_count
    lines = [f"if len(args) != {len(inputs)}: wrong_count(len(args))"]
    identifiers = [writer.fresh("i") for _ in inputs]
    if inputs:
        lines.append(f"{', '.join(identifiers)}, = args")
    for position, (variable, identifier) in enumerate(zip(inputs, identifiers)):
        writer.identifier[variable] = identifier
        converter = writer.bind("convert", _converter(variable, position, name, allow_downcast))
        dtype = writer.bind("d", variable.type.numpy_dtype)
        tests = [
            f"{identifier}.__class__ is not ndarray",
            f"{identifier}.dtype is not {dtype}",
            f"{identifier}.ndim != {variable.ndim}",
        ]
        tests += [
            f"{identifier}.shape[{axis}] != {length}"
            for axis, length in enumerate(variable.type.shape)
            if length is not None
        ]
        lines.append(f"if {' or '.join(tests)}: {identifier} = {converter}({identifier})")
    return lines


def _converter(variable: Variable, position: int, name: str, allow_downcast: bool) -> Callable:
    what = f"argument {position} ({variable.label()}) of function {name}"
    variable_type = variable.type
    return lambda value: variable_type.filter(value, what=what, allow_downcast=allow_downcast)


def _roots(plan: MemoryPlan, outputs: Sequence[Variable], updates: Sequence) -> list[Variable]:
    found: dict[int, Variable] = {}
    candidates = [v for node in plan.order for v in node.inputs]
    candidates += list(outputs) + [value for _, value in updates]
    for variable in candidates:
        if variable.owner is None:
            found.setdefault(id(variable), variable)
    return list(found.values())


def _constants(plan: MemoryPlan, outputs: Sequence[Variable], updates: Sequence) -> list[Constant]:
    return [v for v in _roots(plan, outputs, updates) if isinstance(v, Constant)]


def _shared_reads(plan: MemoryPlan, outputs: Sequence[Variable], updates: Sequence) -> list[SharedVariable]:
    return [v for v in _roots(plan, outputs, updates) if isinstance(v, SharedVariable)]


def _state_prologue(writer: _Writer, shared_reads: Sequence[SharedVariable]) -> tuple[list[str], list[str]]:
    """Reading the shared values; snapshots of the state that ops change in place (random
    generators), and the statements that restore it."""
    prologue, restores = [], []
    for variable in shared_reads:
        holder = writer.bind("S", variable)
        writer.identifier[variable] = writer.fresh("s")
        prologue.append(f"{writer.identifier[variable]} = {holder}.value")
        if getattr(variable.type, "mutable", False):
            saved = writer.fresh("r")
            snapshot = writer.bind("snapshot", variable.type.snapshot)
            restore = writer.bind("restore", variable.type.restore)
            prologue.append(f"{saved} = {snapshot}({writer.identifier[variable]})")
            restores.append(f"{restore}({writer.identifier[variable]}, {saved})")
    return prologue, restores


def _commit_guard(writer: _Writer, plan: MemoryPlan) -> str | None:
    """One test of the run-time guards of every shared update written in place, or ``None`` when
    static shapes prove them all. All or none are written in place: an update that fails after
    another already overwrote its shared array would leave the state half-changed."""
    tests = []
    for position in range(plan.commit_start, len(plan.order)):
        choice = plan.inplace.get(position)
        if choice is None:
            continue
        arguments = [writer.identifier[variable] for variable in plan.order[position].inputs]
        written = arguments[choice.position]
        tests += [f"{written}.shape[{offset}:] == {arguments[other]}.shape" for other, offset in choice.guards]
    if not tests:
        return None
    name = writer.fresh("g")
    writer.emit(f"{name} = {' and '.join(tests)}")
    return name


def _emit_node(
    writer: _Writer, node: Apply, choice: Any, check: str | None, dying: list[str], guard: str | None = None
) -> None:
    """The node's statement; its outputs take names from ``dying`` (consumed) when it has some.
    ``guard`` names a test that replaces the node's own in-place guards (see ``_commit_guard``)."""
    if choice is not None and not node.op.accepts_out:
        function = writer.bind("f", node.op.impl(node, inplace=True))
    else:
        function = writer.bind("f", node.op.impl(node))
    arguments = [writer.identifier[variable] for variable in node.inputs]
    for output in node.outputs:
        writer.identifier[output] = dying.pop() if dying else writer.fresh("v")
    targets = ", ".join(writer.identifier[output] for output in node.outputs)
    if len(node.outputs) > 1:
        targets += ","
    call = f"{function}({', '.join(arguments)})"
    if choice is not None and node.op.accepts_out:
        written = arguments[choice.position]
        in_place = f"{function}({', '.join(arguments)}, out={written})"
        tests = [f"{written}.shape[{offset}:] == {arguments[other]}.shape" for other, offset in choice.guards]
        if guard is not None:
            tests = [guard]
        call = f"{in_place} if {' and '.join(tests)} else {call}" if tests else in_place
    writer.emit(f"{targets} = {call}", node)
    if check is not None:
        values = ", ".join(writer.identifier[output] for output in node.outputs)
        writer.emit(f"{check}({writer.bind('node', node)}, ({values},))", node)


def _take_outputs(writer: _Writer, outputs: Sequence[Variable], plan: MemoryPlan) -> list[str]:
    """Statements naming the values returned: copied where they would alias something, and 0-d
    results made arrays (numpy gives scalars)."""
    taken = []
    for index, variable in enumerate(outputs):
        identifier = writer.identifier[variable]
        name = writer.fresh("o")
        if index in plan.copied_outputs:
            writer.emit(f"{name} = asarray({identifier}).copy()")
        elif variable.ndim == 0:
            writer.emit(f"{name} = {identifier} if {identifier}.__class__ is ndarray else asarray({identifier})")
        else:
            name = identifier
        taken.append(name)
    return taken


def _prepare_updates(writer: _Writer, updates: Sequence, plan: MemoryPlan) -> list[str]:
    """The new values, cast and copied as needed, inside the ``try``; the assignments that commit
    them, after it (so a call that raises changes nothing)."""
    commits = []
    for index, (shared, value) in enumerate(updates):
        expression = writer.identifier[value]
        if isinstance(shared.type, TensorType):
            if value.type.numpy_dtype != shared.type.numpy_dtype:
                expression = f"{expression}.astype({writer.bind('t', shared.type.numpy_dtype)})"
            elif index in plan.copied_updates:
                expression = f"{expression}.copy()"
            if value.ndim == 0:
                expression = f"asarray({expression})"
        prepared = writer.fresh("u")
        writer.emit(f"{prepared} = {expression}")
        commits.append(f"{writer.bind('S', shared)}.value = {prepared}")
    return commits


# --- errors -------------------------------------------------------------------------------------
def _failure_reporter(filename: str, identifier: dict[Variable, str]) -> Callable[[BaseException, dict], None]:
    """What the program calls when a statement raised: the error again, naming the node, the
    shapes its inputs had, and the user's line that built it."""

    def fail(error: BaseException, line_table: dict) -> None:
        if isinstance(error, SymgraphError) or not isinstance(error, Exception):
            raise error
        traceback, node, values = error.__traceback__, None, {}
        while traceback is not None and node is None:
            if traceback.tb_frame.f_code.co_filename == filename:
                node = line_table.get(traceback.tb_lineno)
                values = {**traceback.tb_frame.f_globals, **traceback.tb_frame.f_locals}
            traceback = traceback.tb_next
        if node is None:
            raise error
        inputs = [values.get(identifier.get(variable)) for variable in node.inputs]
        raise NodeError.wrapping(error, _describe_failure(node, inputs, error)) from error

    return fail


def _describe_failure(node: Apply, values: list, error: BaseException) -> str:
    described = []
    for variable, value in zip(node.inputs, values):
        if isinstance(value, (np.ndarray, np.generic)):
            described.append(f"{variable.label()}: {value.dtype} {value.shape}")
        else:
            described.append(f"{variable.label()}: {variable.type.describe()}")
    return (
        f"{type(error).__name__} in {node.op.name}, built at {describe(node.source)}\n"
        f"  inputs: {', '.join(described) or 'none'}\n"
        f"  {type(error).__name__}: {error}"
    )


def _debug_check(node: Apply, values: tuple) -> None:
    """Debug mode: each result has its declared dtype and static shape, and no NaN or Inf."""
    for output, value in zip(node.outputs, values):
        if not isinstance(output.type, TensorType):
            continue
        array = np.asarray(value)
        if array.dtype != output.type.numpy_dtype:
            raise TypeError(f"debug mode: {node.op.name} gave dtype {array.dtype}, declared {output.type.dtype}")
        if not output.type.accepts_shape(array.shape):
            raise ValueError(
                f"debug mode: {node.op.name} gave shape {array.shape}, declared {format_shape(output.type.shape)}"
            )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            kind = "NaN" if np.isnan(array).any() else "Inf"
            raise FloatingPointError(f"debug mode: {node.op.name} gave {kind} in {output.label()}")
