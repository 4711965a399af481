"""The numpy backend's linker: one straight-line Python function generated per compiled graph.

The generated function checks its arguments once, at the door, then runs one statement per node
(calling the kernel chosen for its node at compile time), takes its outputs (copying those that
need it), and commits the updates. Every identifier in its source is generated (``i0``, ``v12``,
``f12``...): no user string, a variable's name say, ever reaches it; the kernels, constants and
shared variables it uses live in its globals. ``line_table`` maps each line back to its node, for
error messages. Nothing is stored between calls, so calls are reentrant; calls that touch shared
state hold one lock, so concurrent calls behave as if made one after another.

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

Updates computed straight into a shared array (``W <- W - lr * g``) come last, in two versions:
in place, and, when numpy is set to raise on floating-point errors (or warnings are errors),
into new arrays, copied in after everything was computed, so that a call that raises changes no
shared value in any case.
"""

from __future__ import annotations

import itertools
import linecache
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...errors import SymgraphError
from ...graph.basic import STATE_LOCK, Apply, Constant, SharedVariable, Variable
from ...graph.fgraph import FunctionGraph
from ...graph.type import TensorType
from .. import runtime
from ..base import LinkOptions, Program
from .kernels import Kernel
from .memory import MemoryPlan

_program_numbers = itertools.count()


class _Writer:
    """Generated identifiers, the objects they name, and the statements written so far."""

    def __init__(self) -> None:
        self.identifier: dict[Variable, str] = {}
        self.namespace: dict[str, Any] = {
            "ndarray": np.ndarray,
            "asarray": np.asarray,
            "copyto": np.copyto,
            "STATE_LOCK": STATE_LOCK,
        }
        self.statements: list[tuple[str, Apply | None, int]] = []
        self.depth = 0  #: extra indentation of the statements emitted now
        self.scalar_expressions = False  #: write 0-d arithmetic as Python operators (in loops)
        #: node -> (array expression, shape expression): an elementwise node writes its result
        #: there when its full-rank inputs have that shape (a loop's output buffer row); a node
        #: overwriting its first input (``set_subtensor``) copies that input there first.
        self.destinations: dict[Apply, tuple[str, str]] = {}
        self.stored_in: dict[int, str] = {}  #: id of a variable -> the buffer its node writes into
        self._numbers = itertools.count()
        self._bound: dict[int, str] = {}

    def bind(self, prefix: str, value: Any) -> str:
        """The identifier of an object the program uses (a kernel, a constant, ...); one object
        used many times (``numpy.sin`` for every ``sin`` node) gets one identifier."""
        name = self._bound.get(id(value))
        if name is None:
            name = self._bound[id(value)] = self.fresh(prefix)
            self.namespace[name] = value
        return name

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self._numbers)}"

    def emit(self, statement: str, node: Apply | None = None) -> None:
        self.statements.append((statement, node, self.depth))


def link(fgraph: FunctionGraph, plan: MemoryPlan, kernels: dict[Apply, Kernel], options: LinkOptions) -> Program:
    """The generated program computing ``fgraph``'s outputs and updates as ``plan`` says."""
    outputs, updates = fgraph.outputs, fgraph.updates
    writer = _Writer()
    head = _argument_checks(writer, fgraph.inputs, options)
    roots = _roots(plan, outputs, updates)
    for variable in roots:
        if isinstance(variable, Constant):
            writer.identifier[variable] = writer.bind("c", variable.data)
    shared = [variable for variable in roots if isinstance(variable, SharedVariable)]
    shared += [target for target, _ in updates if all(target is not other for other in shared)]
    prologue, restores = _state_prologue(writer, shared)
    in_place_targets = [plan.order[position].inputs[choice.position] for position, choice in plan.commits()]
    if in_place_targets and fgraph.inputs:
        arguments = ", ".join(writer.identifier[variable] for variable in fgraph.inputs)
        targets = ", ".join(writer.identifier[variable] for variable in in_place_targets)
        prologue.append(f"{arguments}, = {writer.bind('unalias', runtime.unalias)}(({arguments},), ({targets},))")

    check = writer.bind("check", runtime.debug_check) if options.debug else None
    for position, node in enumerate(plan.order[: plan.commit_start]):
        _emit_node(writer, node, kernels[node], plan, position, check)
    returned = _take_outputs(writer, outputs, plan)
    _emit_commit_nodes(writer, plan, kernels, check)
    commits = _prepare_updates(writer, updates, plan) if options.apply_updates else []

    printable = "".join(character if character.isprintable() else "?" for character in options.name)
    filename = f"<symgraph function {printable} #{next(_program_numbers)}>"
    writer.namespace["fail"] = _failure_reporter(filename, writer.identifier)
    lines = ["def program(args):"] + ["    " + line for line in head]
    indent = "    "
    if shared:
        lines.append("    with STATE_LOCK:")
        indent = "        "
    lines += [indent + line for line in prologue]
    lines.append(indent + "try:")
    line_table: dict[int, Apply] = {}
    for statement, node, depth in writer.statements:
        lines.append(indent + "    " * (depth + 1) + statement)
        if node is not None:
            line_table[len(lines)] = node
    if not writer.statements:  # nothing to compute (no outputs, no updates)
        lines.append(indent + "    pass")
    lines.append(indent + "except BaseException as error:")
    lines += [indent + "    " + line for line in restores]
    lines.append(indent + "    fail(error, line_table)")
    if not options.apply_updates:
        lines += [indent + line for line in restores]  # .eval() never advances random state
    lines += [indent + line for line in commits]
    if options.single_output:
        lines.append(f"    return {returned[0]}")
    elif options.single_output is None:  # outputs=None
        lines.append("    return None")
    else:
        lines.append(f"    return [{', '.join(returned)}]")
    source = "\n".join(lines) + "\n"
    writer.namespace["line_table"] = line_table
    exec(compile(source, filename, "exec"), writer.namespace)
    run = writer.namespace["program"]
    # The source is there for tracebacks for as long as the function lives, no longer.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    weakref.finalize(run, linecache.cache.pop, filename, None)
    return Program(run, list(plan.order), source, line_table)


# --- the parts of the program -------------------------------------------------------------------
def _argument_checks(writer: _Writer, inputs: Sequence[Variable], options: LinkOptions) -> list[str]:
    """The count test, the unpacking, and one line per argument: a fast test that it is already
    right, else the full conversion (which raises an error naming the input)."""
    writer.namespace["wrong_count"] = runtime.count_checker(inputs, options.name)
    lines = [f"if len(args) != {len(inputs)}: wrong_count(len(args))"]
    identifiers = [writer.fresh("i") for _ in inputs]
    if inputs:
        lines.append(f"{', '.join(identifiers)}, = args")
    for position, (variable, identifier) in enumerate(zip(inputs, identifiers)):
        writer.identifier[variable] = identifier
        converter = runtime.argument_converter(variable, position, options.name, options.allow_downcast)
        convert = writer.bind("convert", converter)
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
        lines.append(f"if {' or '.join(tests)}: {identifier} = {convert}({identifier})")
    return lines


def _roots(plan: MemoryPlan, outputs: Sequence[Variable], updates: Sequence) -> list[Variable]:
    found: dict[int, Variable] = {}
    candidates = [v for node in plan.order for v in node.inputs]
    candidates += list(outputs) + [value for _, value in updates]
    for variable in candidates:
        if variable.owner is None:
            found.setdefault(id(variable), variable)
    return list(found.values())


def _state_prologue(writer: _Writer, shared: Sequence[SharedVariable]) -> tuple[list[str], list[str]]:
    """Reading the shared values; snapshots of the state that ops change in place (random
    generators), and the statements that restore it."""
    prologue, restores = [], []
    for variable in shared:
        holder = writer.bind("S", variable)
        writer.identifier[variable] = writer.fresh("s")
        prologue.append(f"{writer.identifier[variable]} = {holder}._value")
        if getattr(variable.type, "mutable", False):
            saved = writer.fresh("r")
            snapshot = writer.bind("snapshot", variable.type.snapshot)
            restore = writer.bind("restore", variable.type.restore)
            prologue.append(f"{saved} = {snapshot}({writer.identifier[variable]})")
            restores.append(f"{restore}({writer.identifier[variable]}, {saved})")
    return prologue, restores


def _emit_commit_nodes(writer: _Writer, plan: MemoryPlan, kernels: dict[Apply, Kernel], check: str | None) -> None:
    """The nodes that compute updates straight into shared arrays: in place when that cannot
    raise half-way, else into new arrays (the same statements without ``out=``)."""
    commit_positions = range(plan.commit_start, len(plan.order))
    if not commit_positions:
        return
    safe = writer.bind("in_place_commit_is_safe", runtime.in_place_commit_is_safe)
    guard = _commit_guard(writer, plan)
    writer.emit(f"if {safe}(){' and ' + guard if guard else ''}:")
    writer.depth += 1
    named = dict(writer.identifier)
    for position in commit_positions:
        node = plan.order[position]
        _emit_node(writer, node, kernels[node], plan, position, check)
    writer.depth -= 1
    writer.emit("else:")
    writer.depth += 1
    in_place = dict(writer.identifier)
    writer.identifier = named
    for position in commit_positions:
        node = plan.order[position]
        _emit_node(writer, node, kernels[node], plan, position, check, in_place=False, names=in_place)
    writer.depth -= 1


def _commit_guard(writer: _Writer, plan: MemoryPlan) -> str | None:
    """One test of the run-time shape guards of every shared update written in place, or
    ``None`` when static shapes prove them all: all or none are written in place."""
    tests = []
    for position, choice in plan.commits():
        arguments = [writer.identifier[variable] for variable in plan.order[position].inputs]
        written = arguments[choice.position]
        tests += [f"{written}.shape[{offset}:] == {arguments[other]}.shape" for other, offset in choice.guards]
    if not tests:
        return None
    name = writer.fresh("g")
    writer.emit(f"{name} = {' and '.join(tests)}")
    return name


def _emit_node(
    writer: _Writer,
    node: Apply,
    kernel: Kernel,
    plan: MemoryPlan,
    position: int,
    check: str | None,
    in_place: bool = True,
    names: dict[Variable, str] | None = None,
) -> None:
    """The node's statement. Its outputs take the names of the values that die here (which drops
    those values as it binds the new ones), or the ``names`` given; the other dying values are
    deleted, to free memory early. ``in_place=False`` writes into no input."""
    choice = plan.inplace.get(position) if in_place else None
    committing = position >= plan.commit_start
    dying = [writer.identifier[v] for v in plan.deaths.get(position, ()) if v in writer.identifier]
    if choice is not None and not kernel.writes_out:
        function = writer.bind("f", kernel.inplace_function)
    else:
        function = writer.bind("f", kernel.function)
    arguments = [writer.identifier[variable] for variable in node.inputs]
    for output in node.outputs:
        if names is not None:
            writer.identifier[output] = names[output]
        else:
            writer.identifier[output] = dying.pop() if dying else writer.fresh("v")
    dying = [name for name in dying if all(name != writer.identifier[output] for output in node.outputs)]
    targets = ", ".join(writer.identifier[output] for output in node.outputs)
    if len(node.outputs) > 1:
        targets += ","
    call = f"{function}({', '.join(arguments)})"
    if writer.scalar_expressions and kernel.scalar_expression is not None:
        call = kernel.scalar_expression.format(*arguments)
    destination = writer.destinations.get(node)
    if destination is not None and kernel.writes_out:
        target, shape = destination
        rank = node.outputs[0].ndim
        tests = [f"{a}.shape == {shape}" for a, v in zip(arguments, node.inputs) if v.ndim == rank]
        call = f"{function}({', '.join(arguments)}, out={target}) if {' and '.join(tests)} else {call}"
    elif destination is not None and kernel.destroys == (0,) and choice is None:
        target, shape = destination
        overwrite = writer.bind("f", kernel.inplace_function)
        copied = f"{writer.bind('copied_into', _copied_into)}({target}, {arguments[0]})"
        rest = "".join(", " + argument for argument in arguments[1:])
        call = f"{overwrite}({copied}{rest}) if {arguments[0]}.shape == {shape} else {call}"
    elif choice is not None and kernel.writes_out:
        written = arguments[choice.position]
        in_place_call = f"{function}({', '.join(arguments)}, out={written})"
        # Shared updates were tested together, before any was written (see _commit_guard).
        tests = [] if committing else [f"{written}.shape[{o}:] == {arguments[i]}.shape" for i, o in choice.guards]
        call = f"{in_place_call} if {' and '.join(tests)} else {call}" if tests else in_place_call
    writer.emit(f"{targets} = {call}", node)
    if check is not None:
        values = ", ".join(writer.identifier[output] for output in node.outputs)
        writer.emit(f"{check}({writer.bind('node', node)}, ({values},))", node)
    if dying:
        writer.emit(f"del {', '.join(dying)}")


def _copied_into(target: np.ndarray, value: Any) -> np.ndarray:
    np.copyto(target, value)
    return target


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
    """The new values, cast and copied as needed, inside the ``try``; the statements that commit
    them, after it: each writes into its shared array (or replaces it, when the shape changed),
    none can fail, so a call that raises changes nothing."""
    commits = []
    for index, (shared, value) in enumerate(updates):
        expression = writer.identifier[value]
        holder, current = writer.bind("S", shared), writer.identifier[shared]
        if not isinstance(shared.type, TensorType):
            prepared = writer.fresh("u")
            writer.emit(f"{prepared} = {expression}")
            commits.append(f"{holder}._value = {prepared}")
            continue
        if value.type.numpy_dtype != shared.type.numpy_dtype:
            expression = f"{expression}.astype({writer.bind('t', shared.type.numpy_dtype)})"
        elif index in plan.copied_updates:
            expression = f"{expression}.copy()"
        if value.ndim == 0:
            expression = f"asarray({expression})"
        prepared = writer.fresh("u")
        writer.emit(f"{prepared} = {expression}")
        commits.append(f"if {prepared} is not {current}:")
        commits.append(f"    if {prepared}.shape == {current}.shape: copyto({current}, {prepared})")
        commits.append(f"    else: {holder}._value = {prepared}")
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
        raise runtime.node_error(node, inputs, error) from error

    return fail
