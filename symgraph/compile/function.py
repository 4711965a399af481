"""``sg.function``: from a graph to a fast Python callable.

Compiling is a pipeline of passes over one :class:`FunctionGraph`, each taking it and returning a
new one: substitute the ``givens``; inline subgraphs (``sg.OpFromGraph``); specialize the
phase-dependent nodes (adding their automatic updates) and add the updates that advance random
state; check inputs, outputs and updates; run the mode's rewrites; then the backend links the
result into a callable.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..backends import Backend, get_backend
from ..backends.base import LinkOptions, Program
from ..errors import InputError, MissingInputError, PhaseError, UnusedInputError, UpdateError
from ..graph.basic import Apply, Constant, SharedVariable, Variable
from ..graph.fgraph import FunctionGraph
from ..graph.source import Source, describe, user_source, warn_user
from ..graph.traversal import garbage_collection_paused, postorder
from ..graph.type import TensorType
from ..ops.basic import as_tensor
from ..rewrite.inline import inline_subgraphs
from ..rewrite.optimize import optimize
from ..rewrite.phase import (
    check_phase,
    missing_phase_message,
    phase_dependent_nodes,
    specialize_phase,
    state_updates,
)
from .modes import Mode, get_mode

_ON_UNUSED = ("raise", "warn", "ignore")


class _NoDefault:
    """The mark of an input without a default value."""

    def __repr__(self) -> str:
        return "NO_DEFAULT"

    def __reduce__(self) -> str:
        return "NO_DEFAULT"  # one object, also after pickling


NO_DEFAULT = _NoDefault()


class In:
    """An input of ``sg.function`` with a default value or a name of its own (Theano's ``In``).

    ``sg.function([x, sg.In(lr, value=0.1)], ...)`` gives a function callable as ``f(data)``,
    ``f(data, 0.5)`` or ``f(data, lr=0.5)``. ``value=None`` means no default. ``name`` is the
    keyword the input is given by (the variable's name by default).
    """

    __slots__ = ("name", "value", "variable")

    def __init__(self, variable: Variable, value: Any = None, name: str | None = None):
        if not isinstance(variable, Variable):
            raise TypeError(f"sg.In takes a symbolic input variable, not {variable!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"the name of an input is a string, not {name!r}")
        self.variable = variable
        self.value = value
        self.name = name if name is not None else variable.name

    def __repr__(self) -> str:
        return f"In({self.variable.label()}, value={self.value!r}, name={self.name!r})"


def _keyword_positions(names: Sequence[str | None]) -> tuple[dict[str, int], set[str]]:
    """Each input name's position; the names several inputs share are ambiguous (usable only by
    position)."""
    positions: dict[str, int] = {}
    ambiguous: set[str] = set()
    for position, name in enumerate(names):
        if name is None:
            continue
        if name in positions or name in ambiguous:
            positions.pop(name, None)
            ambiguous.add(name)
        else:
            positions[name] = position
    return positions, ambiguous


@dataclasses.dataclass(frozen=True)
class CompileRecord:
    """What ``sg.function`` was given, the ``givens`` already substituted: the user's graph, not
    the rewritten one. ``sg.save`` and ``pickle`` keep a function as this record and compile it
    again when loading."""

    inputs: tuple
    input_names: tuple  #: per input, the keyword it is given by (``sg.In``'s name), or ``None``
    defaults: tuple  #: per input, its default value (``sg.In``'s) or ``NO_DEFAULT``
    outputs: tuple
    single_output: bool | None
    updates: tuple  #: ``(shared variable, new value)`` pairs
    phase: str | None
    mode: Mode
    backend: str
    name: str
    on_unused_input: str
    allow_input_downcast: bool
    apply_updates: bool

    def compile(self) -> "Function":
        outputs = None if self.single_output is None else self.outputs[0] if self.single_output else list(self.outputs)
        inputs = [
            In(variable, None if default is NO_DEFAULT else default, name)
            if name != variable.name or default is not NO_DEFAULT
            else variable
            for variable, name, default in zip(self.inputs, self.input_names, self.defaults)
        ]
        return function(
            inputs,
            outputs,
            updates=list(self.updates),
            phase=self.phase,
            mode=self.mode,
            name=self.name,
            on_unused_input=self.on_unused_input,
            allow_input_downcast=self.allow_input_downcast,
            backend=self.backend,
            apply_updates=self.apply_updates,
        )


class Function:
    """A compiled graph. Call it with one argument per input, by position or by input name
    (``f(x=data)``); inputs given with ``sg.In(variable, value=...)`` may be left out.

    ``graph`` is the compiled, rewritten :class:`FunctionGraph` (``sg.debugprint(f)`` and
    ``sg.plot(f, path)`` show it); ``source`` is the generated Python code (numpy backend);
    ``profile`` the time of each node over the calls (compiled with ``profile=True``, else
    ``None``); ``compile_times`` the seconds each step of compiling took.
    Pickling (and ``copy.deepcopy``) keeps what ``sg.function`` was given and compiles it again
    (without profiling); unpickling runs whatever code a file names, so never unpickle an
    untrusted file: ``sg.load`` is the safe way.
    """

    #: What ``sg.function`` was given (``None`` for a function made otherwise).
    _record: CompileRecord | None = None

    def __init__(
        self,
        program: Program,
        graph: FunctionGraph,
        phase: str | None,
        mode: Mode,
        backend: Backend,
        name: str,
        single: bool | None,
        input_names: Sequence[str | None] | None = None,
        defaults: Sequence[Any] | None = None,
        compile_times: dict[str, float] | None = None,
    ):
        self.profile = program.profile
        self._run = program.run if program.profile is None else program.profile.timed(program.run)
        self.program = program
        self.graph = graph
        self.inputs = list(graph.inputs)
        self.outputs = list(graph.outputs)
        self.updates = list(graph.updates)
        self.phase = phase
        self.mode = mode
        self.backend = backend
        self.name = name
        self.single_output = single
        self.compile_times = dict(compile_times or {})
        #: Per input, its default value (given with ``sg.In``) or ``NO_DEFAULT``.
        self.defaults = tuple(defaults) if defaults is not None else (NO_DEFAULT,) * len(self.inputs)
        names = list(input_names) if input_names is not None else [variable.name for variable in self.inputs]
        self._positions, self._ambiguous = _keyword_positions(names)
        self._program_run = self._run
        if any(default is not NO_DEFAULT for default in self.defaults):
            self._run = self._run_with_defaults

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:  # by name: the slow path; positional calls go straight to the program
            args = self._bind(args, kwargs)
        return self._run(args)

    def _run_with_defaults(self, args: tuple) -> Any:
        if len(args) != len(self.inputs):
            args = self._bind(args, {})
        return self._program_run(args)

    def _bind(self, args: tuple, kwargs: dict) -> tuple:
        """The arguments in input order, from positional ones, keyword ones (by input name) and
        the defaults given with ``sg.In``."""
        count = len(self.inputs)
        if len(args) > count:
            return args  # the program's count check says how many it takes
        values = list(args) + [NO_DEFAULT] * (count - len(args))
        for key, value in kwargs.items():
            position = self._positions.get(key)
            if position is None:
                if key in self._ambiguous:
                    raise InputError(
                        f"function {self.name} has several inputs named {key!r}: give them by position, "
                        "or name them apart with sg.In(variable, name=...)"
                    )
                named = ", ".join(repr(name) for name in self._positions) or "none"
                raise InputError(f"function {self.name} has no input named {key!r} (its named inputs: {named})")
            if values[position] is not NO_DEFAULT:
                how = "by position and by name" if position < len(args) else "twice"
                raise InputError(f"function {self.name} got input {key!r} (argument {position}) {how}")
            values[position] = value
        missing = []
        for position, value in enumerate(values):
            if value is NO_DEFAULT:
                values[position] = self.defaults[position]
                if values[position] is NO_DEFAULT:
                    missing.append(f"{self.inputs[position].label()} (argument {position})")
        if missing:
            raise InputError(f"function {self.name} is missing input(s) {', '.join(missing)}, which have no default")
        return tuple(values)

    @property
    def source(self) -> str:
        """The Python source of the generated program (empty for backends that generate none)."""
        return self.program.source

    @property
    def nodes(self) -> list[Apply]:
        """The nodes in the order the program computes them."""
        return list(self.program.order)

    def __reduce__(self) -> tuple:
        if self._record is None:
            raise TypeError(f"function {self.name} was not made by sg.function: it cannot be pickled")
        return (_recompile, (self._record,))

    def __repr__(self) -> str:
        inputs = ", ".join(variable.label() for variable in self.inputs)
        phase = f", phase={self.phase!r}" if self.phase else ""
        return (
            f"<Function {self.name}({inputs}): {len(self.graph.nodes)} nodes{phase}, "
            f"mode={self.mode.name!r}, backend={self.backend.name!r}>"
        )

    def _repr_html_(self) -> str:
        """Jupyter shows the graph explorer of the compiled graph (symgraph.explorer)."""
        from ..explorer import repr_html

        return repr_html(self)


def _recompile(record: CompileRecord) -> Function:
    """A pickled function, compiled again from what ``sg.function`` was given."""
    return record.compile()


@garbage_collection_paused
def function(
    inputs: Sequence[Variable],
    outputs: Variable | Sequence[Variable] | None = None,
    updates: Any = None,
    givens: dict | None = None,
    phase: str | None = None,
    mode: str | Mode | None = None,
    name: str | None = None,
    on_unused_input: str = "raise",
    allow_input_downcast: bool = False,
    backend: str | Backend | None = None,
    apply_updates: bool = True,
    profile: bool = False,
) -> Function:
    """Compile the graph from ``inputs`` to ``outputs`` and ``updates`` into a Python callable.

    ``outputs`` is one variable (one array back), a list (a list back) or ``None``. ``updates``
    are ``(shared, expression)`` pairs or a dict, all computed from the values before the call and
    committed together after it. ``givens`` replaces variables by expressions. ``phase`` is
    ``'train'`` or ``'predict'``; graphs with dropout or batch norm need one. ``mode`` is
    ``'fast_run'`` (default), ``'fast_compile'`` or ``'debug'``. ``backend`` is ``'numpy'`` (the
    default, fast) or ``'python'`` (the reference, what mode ``'debug'`` runs on).
    ``apply_updates=False`` gives a function that changes no state (what ``.eval()`` uses).
    ``profile=True`` times every node of every call (``f.profile``).

    >>> x = sg.vector('x'); f = sg.function([x], x * 2)
    >>> f([1.0, 2.0])
    array([2., 4.])
    """
    call_site = user_source()
    mode = get_mode(mode)
    check_phase(phase)
    backend = get_backend(backend or mode.backend)
    if on_unused_input not in _ON_UNUSED:
        raise ValueError(f"on_unused_input must be one of {_ON_UNUSED}, not {on_unused_input!r}")
    name = _function_name(name, call_site)
    inputs, input_names, defaults = _unwrap_inputs(inputs, allow_input_downcast, name)
    inputs = _check_inputs(inputs)
    output_list, single = _normalize_outputs(outputs)
    user_updates = _normalize_updates(updates, call_site)

    laps = _Laps()
    fgraph = FunctionGraph(inputs, output_list, user_updates)
    if givens:
        fgraph = _substitute(fgraph, givens)
    record = CompileRecord(
        tuple(inputs), tuple(input_names), tuple(defaults), tuple(fgraph.outputs), single, tuple(fgraph.updates),
        phase, mode, backend.name, name, on_unused_input, allow_input_downcast, apply_updates,
    )  # fmt: skip
    laps.lap("givens")
    fgraph = inline_subgraphs(fgraph)
    laps.lap("inline")
    fgraph, automatic = specialize_phase(fgraph, phase)
    nodes = postorder(fgraph.computed + [value for _, value, _ in automatic]) if automatic else fgraph.nodes
    state = state_updates(nodes)
    automatic += state
    _check_clashes(user_updates, automatic, call_site)
    if apply_updates:
        if state:  # the nodes computing the new random states come last, as a walk of all would put them
            seen = set(nodes)
            nodes = nodes + [node for node in postorder([value for _, value, _ in state]) if node not in seen]
        fgraph = FunctionGraph(inputs, fgraph.outputs, fgraph.updates + [(s, v) for s, v, _ in automatic], nodes)
    else:
        fgraph = FunctionGraph(inputs, fgraph.outputs)
    laps.lap("phase")
    _check_inputs_needed(fgraph, on_unused_input, name)
    laps.lap("checks")
    if mode.optimize:
        fgraph = optimize(fgraph)
    laps.lap("rewrites")
    options = LinkOptions(
        name=name,
        single_output=single,
        allow_downcast=allow_input_downcast,
        apply_updates=apply_updates,
        inplace=mode.inplace,
        debug=mode.debug,
        profile=bool(profile),
    )
    program = backend.link(fgraph, options)
    laps.lap("link", program.pass_times)
    compiled = Function(program, fgraph, phase, mode, backend, name, single, input_names, defaults, laps.times)
    compiled._record = record
    return compiled


class _Laps:
    """The seconds each step of compiling takes, for ``Function.compile_times``."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.start = time.perf_counter()

    def lap(self, name: str, parts: dict[str, float] | None = None) -> None:
        """Step ``name`` ended now; ``parts``, when given, are its own steps, listed instead."""
        now = time.perf_counter()
        if parts:
            self.times.update(parts)
            rest = now - self.start - sum(parts.values())
            if rest > 0:
                self.times[f"{name} (rest)"] = rest
        else:
            self.times[name] = now - self.start
        self.start = now


def _function_name(name: Any, call_site: Source | None) -> str:
    if name is None:
        return f"{call_site.filename.rsplit('/', 1)[-1]}:{call_site.lineno}" if call_site else "function"
    if not isinstance(name, str):
        raise TypeError(f"a function's name is a string, not {name!r}")
    return name


# --- checking what the user gave ----------------------------------------------------------------
def _unwrap_inputs(inputs: Any, allow_downcast: bool, name: str) -> tuple[Any, list, list]:
    """The input variables (``sg.In`` unwrapped), their keyword names and their defaults (each
    converted now, so that a bad default is an error when compiling)."""
    if not isinstance(inputs, (list, tuple)):
        return inputs, [], []  # _check_inputs explains what is wrong
    variables, names, defaults = [], [], []
    for position, item in enumerate(inputs):
        if not isinstance(item, In):
            variables.append(item)
            names.append(getattr(item, "name", None))
            defaults.append(NO_DEFAULT)
            continue
        variables.append(item.variable)
        names.append(item.name)
        if item.value is None:
            defaults.append(NO_DEFAULT)
        elif isinstance(item.value, Variable):
            raise TypeError(f"the default of input {position} ({item.variable.label()}) is a value, not a variable")
        else:
            what = f"the default of input {position} ({item.variable.label()}) of function {name}"
            value = item.variable.type.filter(item.value, what=what, allow_downcast=allow_downcast)
            if isinstance(value, np.ndarray):  # the caller's array may change later; the default may not
                value = value.copy()
                value.flags.writeable = False
            defaults.append(value)
    return variables, names, defaults


def _check_inputs(inputs: Any) -> list[Variable]:
    if isinstance(inputs, Variable) or not isinstance(inputs, (list, tuple)):
        raise TypeError("sg.function takes a list of input variables as its first argument, e.g. sg.function([x], y)")
    seen: set[int] = set()
    for position, variable in enumerate(inputs):
        if not isinstance(variable, Variable):
            raise TypeError(f"input {position} of sg.function is {variable!r}, not a symbolic variable")
        if isinstance(variable, SharedVariable):
            raise TypeError(
                f"input {position} ({variable.label()}) is a shared variable: its value lives in the "
                "graph already, so leave it out of the inputs (use givens= to replace it)"
            )
        if isinstance(variable, Constant):
            raise TypeError(f"input {position} ({variable.label()}) is a constant, not an input variable")
        if variable.owner is not None:
            raise TypeError(
                f"input {position} ({variable.label()}) is computed by {variable.owner.op.name}, built at "
                f"{describe(variable.owner.source)}; inputs must be declared variables such as sg.matrix('x') "
                "(use givens= to replace an intermediate by something else)"
            )
        if id(variable) in seen:
            raise ValueError(f"input {variable.label()} appears twice among the inputs")
        seen.add(id(variable))
    return list(inputs)


def _normalize_outputs(outputs: Any) -> tuple[list[Variable], bool | None]:
    """The outputs as a list, and whether the user gave one variable (``None``: no outputs)."""
    if outputs is None:
        return [], None
    if isinstance(outputs, (list, tuple)):
        return [_as_output(output, position) for position, output in enumerate(outputs)], False
    return [_as_output(outputs, 0)], True


def _as_output(output: Any, position: int) -> Variable:
    if isinstance(output, Variable):
        return output
    try:
        return as_tensor(output)
    except Exception:
        raise TypeError(f"output {position} of sg.function is {output!r}, not a variable") from None


def _normalize_updates(updates: Any, call_site: Source | None) -> list[tuple[SharedVariable, Variable]]:
    if updates is None:
        return []
    pairs: Iterable = updates.items() if isinstance(updates, dict) else updates
    result: list[tuple[SharedVariable, Variable]] = []
    targets: dict[int, SharedVariable] = {}
    for pair in pairs:
        try:
            shared, value = pair
        except (TypeError, ValueError):
            raise TypeError(f"each update is a (shared variable, new value) pair, not {pair!r}") from None
        if not isinstance(shared, SharedVariable):
            raise UpdateError(
                f"update target {shared!r} is not a shared variable: only sg.shared(...) values can be updated"
            )
        if id(shared) in targets:
            raise UpdateError(f"shared variable {shared.label()} is updated twice in one function")
        targets[id(shared)] = shared
        value = as_tensor(value) if not isinstance(value, Variable) else value
        _check_update_type(shared, value)
        result.append((shared, value))
    return result


def _check_update_type(shared: SharedVariable, value: Variable) -> None:
    if not isinstance(shared.type, TensorType):
        if shared.type != value.type:
            raise UpdateError(
                f"update of {shared.label()} by {value.label()}: types {shared.type} and {value.type} differ"
            )
        return
    pair = (
        f"the update of shared variable {shared.label()} ({shared.type.describe()}) "
        f"by {value.label()} ({value.type.describe()})"
    )
    if not isinstance(value.type, TensorType) or value.ndim != shared.ndim:
        raise UpdateError(f"{pair}: the number of dimensions differs")
    same = value.type.numpy_dtype == shared.type.numpy_dtype
    if not same and not (value.type.is_float and shared.type.is_float):
        raise UpdateError(
            f"{pair}: dtypes differ and are not both floats; cast the new value with .astype('{shared.dtype}')"
        )
    for static, length in zip(shared.type.shape, value.type.shape):
        if static is not None and length is not None and static != length:
            raise UpdateError(f"{pair}: the static shapes differ")


def _substitute(fgraph: FunctionGraph, givens: Any) -> FunctionGraph:
    pairs = givens.items() if isinstance(givens, dict) else givens
    replacements: dict[Variable, Variable] = {}
    for old, new in pairs:
        if not isinstance(old, Variable) or (old.owner is not None) or isinstance(old, Constant):
            raise TypeError(f"givens replaces input or shared variables, not {old!r}")
        new = as_tensor(new)
        if not isinstance(new.type, TensorType) or new.ndim != old.ndim or new.dtype != old.dtype:
            raise TypeError(
                f"givens: {old.label()} ({old.type.describe()}) cannot be replaced by {new.label()} "
                f"({new.type.describe()}): the dtype and number of dimensions must be the same"
            )
        replacements[old] = new
    return fgraph.replace(replacements)


def _check_clashes(user_updates: list, automatic: list, call_site: Source | None) -> None:
    users = {id(shared): shared for shared, _ in user_updates}
    for shared, _, node in automatic:
        if id(shared) in users:
            raise UpdateError(
                f"shared variable {shared.label()} is updated twice: by the updates given to sg.function "
                f"at {describe(call_site)}, and automatically by {node.op.name}, built at {describe(node.source)}. "
                "Remove it from the updates: the function updates it by itself."
            )
    first_asker: dict[int, Any] = {}
    for shared, _, node in automatic:
        earlier = first_asker.setdefault(id(shared), node)
        if earlier is not node:
            raise UpdateError(
                f"shared variable {shared.label()} is updated automatically by two nodes: {earlier.op.name}, "
                f"built at {describe(earlier.source)}, and {node.op.name}, built at {describe(node.source)}; "
                "only one update per call can apply, so give each its own shared variables."
            )


def _check_inputs_needed(fgraph: FunctionGraph, on_unused: str, name: str) -> None:
    given = {id(variable) for variable in fgraph.inputs}
    needed: dict[int, Variable] = {}
    users: dict[int, Any] = {}
    for node in fgraph.nodes:
        for variable in node.inputs:
            if variable.owner is None and not isinstance(variable, (Constant, SharedVariable)):
                needed.setdefault(id(variable), variable)
                users.setdefault(id(variable), node)
    for variable in fgraph.computed:
        if variable.owner is None and not isinstance(variable, (Constant, SharedVariable)):
            needed.setdefault(id(variable), variable)
    for key, variable in needed.items():
        if key not in given:
            user = users.get(key)
            where = f", used by {user.op.name} built at {describe(user.source)}" if user else ""
            raise MissingInputError(
                f"the graph needs input {variable.label()} ({variable.type.describe()}){where}, but it is "
                f"not among the inputs of function {name}; add it to the inputs (or replace it with givens=)"
            )
    unused = [variable for variable in fgraph.inputs if id(variable) not in needed]
    if unused and on_unused != "ignore":
        listed = ", ".join(variable.label() for variable in unused)
        message = (
            f"input(s) {listed} of function {name} are not needed by its outputs or updates; "
            "pass on_unused_input='warn' or 'ignore' to allow this"
        )
        if on_unused == "raise":
            raise UnusedInputError(message)
        warn_user(message)


# --- .eval() ------------------------------------------------------------------------------------
#: The functions ``.eval()`` compiled lately: (id of the variable, input ids, phase) -> (a weak
#: reference to the variable, its inputs, the function). Kept here, not on the variable (a graph
#: holds nothing but the graph), and bounded: a function refers to its graph, so each entry keeps
#: a graph alive.
_EVAL_CACHE: collections.OrderedDict[tuple, tuple] = collections.OrderedDict()
_EVAL_CACHE_SIZE = 32
_EVAL_CACHE_LOCK = threading.Lock()


def evaluate(variable: Variable, inputs_to_values: dict | None, phase: str | None, where: str = ".eval()") -> Any:
    """``variable.eval()``: compile (the recent ones are cached) and call, changing no state."""
    inputs_to_values = inputs_to_values or {}
    inputs = list(inputs_to_values)
    key = (id(variable), tuple(id(v) for v in inputs), phase)
    with _EVAL_CACHE_LOCK:
        entry = _EVAL_CACHE.get(key)
        if entry is not None:
            _EVAL_CACHE.move_to_end(key)
    if entry is None or entry[0]() is not variable or any(a is not b for a, b in zip(entry[1], inputs)):
        if phase is None:
            dependent = phase_dependent_nodes([variable])
            if dependent:
                raise PhaseError(missing_phase_message(dependent, where))
        compiled = function(inputs, variable, phase=phase, on_unused_input="ignore", apply_updates=False)
        entry = (weakref.ref(variable), inputs, compiled)
        with _EVAL_CACHE_LOCK:
            _EVAL_CACHE[key] = entry
            while len(_EVAL_CACHE) > _EVAL_CACHE_SIZE:
                _EVAL_CACHE.popitem(last=False)
    return entry[2](*[inputs_to_values[v] for v in inputs])
