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
            v5 = f6(v5, c3, v5)
        except BaseException as error:
            fail(error, line_table)
        return v5

(``exp`` makes a new array, which ``+ 1`` overwrites, reusing its name, since nothing else reads it.)

A program of more than ``_PART_SIZE`` statements is cut into functions of that many (``part12``...),
each compiled on its own: CPython's ``compile()`` of one function of 100,000 lines takes seconds
and over a gigabyte. The program makes one list of slots per call and calls the parts in turn,
each given that list: a part takes out the values it reads that earlier parts made (emptying the
slots no later statement reads, so that it holds the only reference to what dies inside it) and
stores the values later statements read in slots of their own, so that a value crossing parts is
named twice in the source, where it is stored and where it is taken. The parts' lines are
numbered as in ``f.source``.

Updates computed straight into a shared array (``W <- W - lr * g``) come last, in two versions:
in place, and, when numpy is set to raise on floating-point errors (or warnings are errors),
into new arrays, copied in after everything was computed, so that a call that raises changes no
shared value in any case.
"""

from __future__ import annotations

import itertools
import linecache
import re
import time
import types
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...errors import SymgraphError
from ...graph.basic import STATE_LOCK, Apply, Constant, SharedVariable, Variable
from ...graph.fgraph import FunctionGraph
from ...graph.type import TensorType
from ...ops.shape import AllocEmpty
from .. import runtime
from ..base import LinkOptions, Program
from ..profile import Profile, shapes_of
from ..profile import clock as profile_clock
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
        #: ``(statement, node, depth, reads, writes)``: the local names a statement reads and binds
        #: (``None`` when not given: then any name in it may be read, none is bound).
        self.statements: list[tuple[str, Apply | None, int, tuple | None, tuple]] = []
        self.depth = 0  #: extra indentation of the statements emitted now
        #: write 0-d arithmetic as Python operators: on numpy scalars (0-d constants, and what
        #: ufuncs give for 0-d operands) several times faster than a ufunc call, same dtype rules
        self.scalar_expressions = True
        #: node -> (array expression, shape expression): an elementwise node writes its result
        #: there when its full-rank inputs have that shape (a loop's output buffer row); a node
        #: overwriting its first input (``set_subtensor``) copies that input there first.
        self.destinations: dict[Apply, tuple[str, str]] = {}
        self.stored_in: dict[int, str] = {}  #: id of a variable -> the buffer its node writes into
        self._numbers = itertools.count()
        self._bound: dict[int, str] = {}
        self._constants: dict[Any, str] = {}

    def bind(self, prefix: str, value: Any) -> str:
        """The identifier of an object the program uses (a kernel, a constant, ...); one object
        used many times (``numpy.sin`` for every ``sin`` node) gets one identifier."""
        name = self._bound.get(id(value))
        if name is None:
            name = self._bound[id(value)] = self.fresh(prefix)
            self.namespace[name] = value
        return name

    def constant(self, variable: Constant) -> str:
        """The identifier of a constant's value: equal small constants (every ``+ 1.0`` of a
        graph) share one."""
        key = variable.key()
        name = self._constants.get(key)
        if name is None:
            name = self._constants[key] = self.bind("c", scalar_or_array(variable.data))
        return name

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self._numbers)}"

    def emit(self, statement: str, node: Apply | None = None, reads: tuple | None = None, writes: tuple = ()) -> None:
        self.statements.append((statement, node, self.depth, reads, writes))


def scalar_or_array(value: Any) -> Any:
    """A constant as the program holds it: 0-d values as numpy scalars (arithmetic on them is
    several times faster than on 0-d arrays), others as they are."""
    return value[()] if isinstance(value, np.ndarray) and value.ndim == 0 else value


def link(fgraph: FunctionGraph, plan: MemoryPlan, kernels: dict[Apply, Kernel], options: LinkOptions) -> Program:
    """The generated program computing ``fgraph``'s outputs and updates as ``plan`` says."""
    started = time.perf_counter()
    outputs, updates = fgraph.outputs, fgraph.updates
    writer = _Writer()
    head = _argument_checks(writer, fgraph.inputs, options)
    roots = _roots(plan, outputs, updates)
    for variable in roots:
        if isinstance(variable, Constant):
            writer.identifier[variable] = writer.constant(variable)
    shared = [variable for variable in roots if isinstance(variable, SharedVariable)]
    shared += [target for target, _ in updates if all(target is not other for other in shared)]
    prologue, restores = _state_prologue(writer, shared)
    in_place_targets = [plan.order[position].inputs[choice.position] for position, choice in plan.commits()]
    if in_place_targets and fgraph.inputs:
        arguments = ", ".join(writer.identifier[variable] for variable in fgraph.inputs)
        targets = ", ".join(writer.identifier[variable] for variable in in_place_targets)
        prologue.append(f"{arguments}, = {writer.bind('unalias', runtime.unalias)}(({arguments},), ({targets},))")

    check = writer.bind("check", runtime.debug_check) if options.debug else None
    profile = Profile(plan.order) if options.profile else None
    timer = _profile_timer(writer, profile) if profile is not None else None
    for position, node in enumerate(plan.order[: plan.commit_start]):
        _emit_node(writer, node, kernels[node], plan, position, check, timer=timer)
    body_end = len(writer.statements)
    returned = _take_outputs(writer, outputs, plan)
    _emit_commit_nodes(writer, plan, kernels, check, timer)
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
    after = ["except BaseException as error:"] + ["    " + line for line in restores] + ["    fail(error, line_table)"]
    if not options.apply_updates:
        after += restores  # .eval() never advances random state
    after += commits
    if options.single_output:
        ending = f"return {returned[0]}"
    elif options.single_output is None:  # outputs=None
        ending = "return None"
    else:
        ending = f"return [{', '.join(returned)}]"
    statements = writer.statements
    parts: list[list[str]] = []
    if body_end > _PART_SIZE:
        # One huge function costs CPython's compile() much time and memory: compiled in parts.
        statements, parts = _split(writer, body_end, after + [ending])
    line_table: dict[int, Apply] = {}
    units = []  # (first line, text) of each function, compiled one at a time
    offset = 0  # the lines written so far
    for header, part_statements, part_ending in parts:
        first = offset + 1
        offset += len(header)
        # (comprehensions: a large program's parts hold most of its statements)
        line_table.update(
            {offset + number: entry[1] for number, entry in enumerate(part_statements, 1) if entry[1] is not None}
        )
        offset += len(part_statements) + len(part_ending)
        body = "\n".join(["    " + entry[0] for entry in part_statements])
        units.append((first, "\n".join(header) + "\n" + body + "\n" + "\n".join(part_ending) + "\n"))
    for statement, node, depth, _, _ in statements:
        lines.append(indent + "    " * (depth + 1) + statement)
        if node is not None:
            line_table[offset + len(lines)] = node
    if not statements:  # nothing to compute (no outputs, no updates)
        lines.append(indent + "    pass")
    lines += [indent + line for line in after]
    lines.append("    " + ending)
    units.append((offset + 1, "\n".join(lines) + "\n"))
    source = "".join(text for _, text in units)
    writer.namespace["line_table"] = line_table
    generated = time.perf_counter()
    for first, text in units:
        _define(text, first, filename, writer.namespace)
    run = writer.namespace["program"]
    # The source is there for tracebacks for as long as the function lives, no longer.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    weakref.finalize(run, linecache.cache.pop, filename, None)
    times = {"code generation": generated - started, "compile()": time.perf_counter() - generated}
    return Program(run, list(plan.order), source, line_table, profile=profile, pass_times=times)


def _define(text: str, first_line: int, filename: str, namespace: dict) -> None:
    """Compiles ``text``, one ``def``, as lines ``first_line...`` of ``filename`` and binds the
    function it defines in ``namespace``."""
    module = compile(text, filename, "exec")
    (code,) = [constant for constant in module.co_consts if isinstance(constant, types.CodeType)]
    code = code.replace(co_firstlineno=code.co_firstlineno + first_line - 1)
    namespace[code.co_name] = types.FunctionType(code, namespace)


#: Statements per separately compiled function of a large program.
_PART_SIZE = 1000
_NAME = re.compile(r"\b[a-z]+[0-9]+\b")


def _split(writer: _Writer, body_end: int, tail: list[str]) -> tuple[list, list]:
    """The statements of the program's body cut into parts of ``_PART_SIZE``, each a function of
    its own. The values that cross from one part to another travel in one list of slots, made
    per call and given to every part: a part takes the values it reads from earlier statements
    out of their slots (emptying those that no later statement reads, so that it holds the only
    reference to what dies inside it and can drop it early), and stores the values that later
    statements read in slots of their own. Returns the program's statements (the list, each
    part's call, taking back what the rest reads, then the rest) and the parts, each ``(header
    lines, its statements as the writer holds them, ending lines)``."""
    namespace = writer.namespace
    body, rest = writer.statements[:body_end], writer.statements[body_end:]
    # Live after the body: what the rest reads, read backwards (branches bind nothing for sure).
    live = {name for line in tail for name in _NAME.findall(line) if name not in namespace}
    for statement, _, depth, reads, writes in reversed(rest):
        if depth == 0:
            live.difference_update(writes)
        live.update(reads if reads is not None else (n for n in _NAME.findall(statement) if n not in namespace))
    read_by_rest = set(live)
    cuts = list(range(0, body_end, _PART_SIZE))
    liveness = []  # (reads from before, binds for later, which of those read are needed after) per part, backwards
    for start in reversed(cuts):
        chunk = body[start : start + _PART_SIZE]
        bound: set[str] = set()
        exposed: set[str] = set()
        for statement, _, _, reads, writes in chunk:
            for name in reads if reads is not None else _NAME.findall(statement):
                if name not in bound:
                    exposed.add(name)
            bound.update(writes)
        exposed = {name for name in exposed if name not in namespace}
        returned = sorted(live & bound, key=_number)
        needed_after = {name for name in exposed if name in live}  # of those it reads
        # Updated in place: what is live may be all the values of a long chain, for every part.
        live -= bound
        live |= exposed
        liveness.append((sorted(exposed, key=_number), returned, needed_after))
    liveness.reverse()
    holder = writer.fresh("a")
    slot: dict[str, int] = {}  # name -> the slot holding its current value
    # What the parts read of the values made before the body (arguments, shared values) is put
    # in the first slots; the program keeps only those that the rest reads too.
    given: set[str] = set()
    made: set[str] = set()
    for taken, returned, _ in liveness:
        given.update(name for name in taken if name not in made)
        made.update(returned)
    given = sorted(given, key=_number)
    slot.update((name, index) for index, name in enumerate(given))
    slots = len(given) + sum(len(returned) for _, returned, _ in liveness)
    program: list[tuple] = []
    if given:
        setup = f"{holder} = [{', '.join(given)}] + [None] * {slots - len(given)}"
        dropped = [name for name in given if name not in read_by_rest]
        setup += f"; del {', '.join(dropped)}" if dropped else ""
    else:
        setup = f"{holder} = [None] * {slots}"
    program.append((setup, None, 0, None, ()))
    parts = []
    filled = len(given)
    for start, (taken, returned, needed_after) in zip(cuts, liveness):
        name = writer.fresh("part")
        header = [f"def {name}({holder}):"]
        if taken:
            rebound = set(returned)
            emptied = [slot[n] for n in taken if n not in needed_after or n in rebound]
            take = writer.bind("take", _slot_taker([slot[n] for n in taken], emptied))
            header.append(f"    {', '.join(taken)}, = {take}({holder})")
        ending = []
        if returned:
            ending.append(f"    {holder}[{filled}:{filled + len(returned)}] = {', '.join(returned)},")
            slot.update((n, filled + index) for index, n in enumerate(returned))
            filled += len(returned)
        statements = body[start : start + _PART_SIZE]
        parts.append((header, statements, ending))
        program.append((f"{name}({holder})", None, 0, None, ()))
    # The rest reads what the last parts made from their slots; the list is emptied then.
    back = sorted((name for name in read_by_rest if name in made), key=_number)
    if back:
        take = writer.bind("take", _slot_taker([slot[name] for name in back], None))
        program.append((f"{', '.join(back)}, = {take}({holder})", None, 0, None, ()))
    return program + rest, parts


def _slot_taker(positions: list[int], emptied: list[int] | None) -> Callable[[list], tuple]:
    """What a part calls to take its values out of the list of slots: the values at
    ``positions``, the slots at ``emptied`` set to ``None`` (all of them when ``None``)."""

    def take(slots: list) -> tuple:
        values = tuple([slots[position] for position in positions])
        if emptied is None:
            slots.clear()
        else:
            for position in emptied:
                slots[position] = None
        return values

    return take


def _number(name: str) -> int:
    return int(name.lstrip("abcdefghijklmnopqrstuvwxyz"))


def _profile_timer(writer: _Writer, profile: Profile) -> tuple[str, str, str, str, str, str]:
    """The names a profiled program times its nodes with: the clock, the local holding the
    start, the profile's lists of times, counts and shapes, and the function taking shapes."""
    return (
        writer.bind("clock", profile_clock),
        writer.fresh("t"),
        writer.bind("T", profile.times),
        writer.bind("C", profile.counts),
        writer.bind("H", profile.shapes),
        writer.bind("shapes", shapes_of),
    )


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
        if variable.ndim == 0:
            # A numpy scalar: its arithmetic written as operators is cheapest with numpy scalars
            # all round (a 0-d array plus a numpy scalar costs ten times two scalars).
            lines.append(f"{identifier} = {identifier}[()]")
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


def _emit_commit_nodes(
    writer: _Writer, plan: MemoryPlan, kernels: dict[Apply, Kernel], check: str | None, timer: tuple | None
) -> None:
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
        _emit_node(writer, node, kernels[node], plan, position, check, timer=timer)
    writer.depth -= 1
    writer.emit("else:")
    writer.depth += 1
    in_place = dict(writer.identifier)
    writer.identifier = named
    for position in commit_positions:
        node = plan.order[position]
        _emit_node(writer, node, kernels[node], plan, position, check, in_place=False, names=in_place, timer=timer)
    writer.depth -= 1


def _commit_guard(writer: _Writer, plan: MemoryPlan) -> str | None:
    """One test of the run-time shape guards of every shared update written in place, or
    ``None`` when static shapes prove them all: all or none are written in place."""
    tests = []
    for position, choice in plan.commits():
        arguments = [writer.identifier[variable] for variable in plan.order[position].inputs]
        written = arguments[choice.position]
        tests += _shape_tests(written, arguments, choice.guards)
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
    timer: tuple | None = None,
) -> None:
    """The node's statement. Its outputs take the names of the values that die here (which drops
    those values as it binds the new ones), or the ``names`` given; the other dying values are
    deleted, to free memory early. ``in_place=False`` writes into no input. With a ``timer``
    (profiling), the statement is timed and its inputs' shapes are kept."""
    # Run once per node of every program, so written for speed: dictionaries' methods bound,
    # one output (nearly every node) handled on its own.
    identifier = writer.identifier
    choice = plan.inplace.get(position) if in_place else None
    deaths = plan.deaths.get(position)
    dying = [identifier[v] for v in deaths if v in identifier] if deaths else []
    computation = kernel.inplace_function if choice is not None and not kernel.writes_out else kernel.function
    function = writer._bound.get(id(computation)) or writer.bind("f", computation)
    arguments = list(map(identifier.__getitem__, node.inputs))
    outputs = node.outputs
    if names is not None:
        written = tuple([names[output] for output in outputs])
        for output, name in zip(outputs, written):
            identifier[output] = name
        if dying:
            dying = [name for name in dying if name not in written]
    elif len(outputs) == 1:
        name = identifier[outputs[0]] = dying.pop() if dying else f"v{next(writer._numbers)}"
        written = (name,)
    else:
        for output in outputs:
            identifier[output] = dying.pop() if dying else writer.fresh("v")
        written = tuple([identifier[output] for output in outputs])
    targets = written[0] if len(written) == 1 else ", ".join(written) + ","
    listed = ", ".join(arguments)
    call = f"{function}({listed})"
    reads: tuple | None = tuple(arguments)
    if writer.scalar_expressions and kernel.scalar_expression is not None:
        call = kernel.scalar_expression.format(*arguments)
    destination = writer.destinations.get(node) if writer.destinations else None
    if destination is not None:
        reads = None  # the destination's expressions name other values too
    if destination is not None and kernel.writes_out:
        target, shape = destination
        rank = node.outputs[0].ndim
        tests = [f"{a}.shape == {shape}" for a, v in zip(arguments, node.inputs) if v.ndim == rank]
        call = f"{function}({listed}, out={target}) if {' and '.join(tests)} else {call}"
    elif destination is not None and kernel.destroys == (0,) and (choice is None or _uninitialized(node.inputs[0])):
        target, shape = destination
        overwrite = writer.bind("f", kernel.inplace_function)
        copied = f"{writer.bind('copied_into', _copied_into)}({target}, {arguments[0]})"
        if _uninitialized(node.inputs[0]):
            copied = target  # nothing of an uninitialized array is worth copying
        rest = "".join(", " + argument for argument in arguments[1:])
        call = f"{overwrite}({copied}{rest}) if {arguments[0]}.shape == {shape} else {call}"
    elif choice is not None and kernel.writes_out:
        overwritten = arguments[choice.position]
        keyword = "" if kernel.out_positional else "out="
        in_place_call = f"{function}({listed}, {keyword}{overwritten})"
        # Shared updates were tested together, before any was written (see _commit_guard).
        committing = position >= plan.commit_start
        tests = _shape_tests(overwritten, arguments, choice.guards) if choice.guards and not committing else []
        call = f"{in_place_call} if {' and '.join(tests)} else {call}" if tests else in_place_call
        if not tests and targets == overwritten and kernel.out_positional and isinstance(computation, np.ufunc):
            # A ufunc returns the array it wrote into, already bound to that name: the call is
            # the whole statement (one name less to parse, per node of a large graph).
            targets = ""
    if timer is not None:
        clock, start, times, counts, shapes, shapes_of = timer
        writer.emit(f"{shapes}[{position}] = {shapes_of}({', '.join(arguments)})", reads=tuple(arguments))
        writer.emit(f"{start} = {clock}()", reads=(), writes=(start,))
    statement = f"{targets} = {call}" if targets else call
    writer.statements.append((statement, node, writer.depth, reads, written))  # emit(), inlined
    if timer is not None:
        writer.emit(f"{times}[{position}] += {clock}() - {start}; {counts}[{position}] += 1", reads=(start,))
    if check is not None:
        writer.emit(f"{check}({writer.bind('node', node)}, ({', '.join(written)},))", node, reads=written)
    if dying:
        writer.statements.append((f"del {', '.join(dying)}", None, writer.depth, tuple(dying), ()))  # emit(), inlined


def _shape_tests(written: str, arguments: list[str], guards: list[tuple]) -> list[str]:
    """The run-time tests that broadcasting the other arguments into ``written`` leaves its shape."""
    tests = []
    for other, offset, axes in guards:
        if axes is None:
            tests.append(f"{written}.shape[{offset}:] == {arguments[other]}.shape")
        else:
            tests += [f"{written}.shape[{offset + axis}] == {arguments[other]}.shape[{axis}]" for axis in axes]
    return tests


def _uninitialized(variable: Variable) -> bool:
    return variable.owner is not None and isinstance(variable.owner.op, AllocEmpty)


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
