"""``sg.function``: from a graph to a fast Python callable.

The steps, each a plain function of the graph: substitute the ``givens``; specialize the
phase-dependent nodes (adding their automatic updates); add the updates that advance random
state; check inputs, outputs and updates; run the mode's rewrites; plan memory; generate the
program.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..errors import MissingInputError, PhaseError, UnusedInputError, UpdateError
from ..graph.basic import Apply, Constant, SharedVariable, Variable
from ..graph.fgraph import FunctionGraph
from ..graph.source import Source, describe, user_source, warn_user
from ..graph.traversal import postorder, rebuild
from ..graph.type import TensorType
from ..ops.basic import as_tensor
from ..rewrite.optimize import optimize
from ..rewrite.phase import (
    PHASES,
    missing_phase_message,
    phase_dependent_nodes,
    specialize_phase,
    state_updates,
)
from .linker import link
from .memory import plan_memory
from .modes import Mode, get_mode

_ON_UNUSED = ("raise", "warn", "ignore")


class Function:
    """A compiled graph. Call it with one argument per input.

    ``graph`` is the compiled, rewritten :class:`FunctionGraph` (``sg.debugprint(f)`` and
    ``sg.plot(f, path)`` show it); ``source`` is the generated Python code.
    """

    def __init__(self, program, graph: FunctionGraph, inputs, outputs, updates, phase, mode, name, single):
        self._run = program.run
        self.program = program
        self.graph = graph
        self.inputs = list(inputs)
        self.outputs = outputs
        self.updates = list(updates)
        self.phase = phase
        self.mode = mode
        self.name = name
        self.single_output = single

    def __call__(self, *args: Any) -> Any:
        return self._run(args)

    @property
    def source(self) -> str:
        """The Python source of the generated program."""
        return self.program.source

    @property
    def nodes(self) -> list[Apply]:
        """The nodes in the order the program computes them."""
        return list(self.program.order)

    def __repr__(self) -> str:
        inputs = ", ".join(variable.label() for variable in self.inputs)
        phase = f", phase={self.phase!r}" if self.phase else ""
        return f"<Function {self.name}({inputs}): {len(self.graph.nodes)} nodes{phase}, mode={self.mode.name!r}>"


def _garbage_collection_paused(compile_function: Callable[..., Function]) -> Callable[..., Function]:
    """Compiling makes many short-lived objects in reference cycles (nodes and their outputs);
    Python's cyclic collector would rescan the whole heap again and again as they pile up, making
    compile time grow faster than the graph. The memory is reclaimed when collection resumes.

    (A decorator of our own, not ``contextlib``'s: its frame lies inside symgraph, so the user's
    line that called ``sg.function`` is still the first frame outside it.)"""

    @functools.wraps(compile_function)
    def paused(*args: Any, **kwargs: Any) -> Function:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return compile_function(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return paused


@_garbage_collection_paused
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
    apply_updates: bool = True,
) -> Function:
    """Compile the graph from ``inputs`` to ``outputs`` and ``updates`` into a Python callable.

    ``outputs`` is one variable (one array back), a list (a list back) or ``None``. ``updates``
    are ``(shared, expression)`` pairs or a dict, all computed from the values before the call and
    committed together after it. ``givens`` replaces variables by expressions. ``phase`` is
    ``'train'`` or ``'predict'``; graphs with dropout or batch norm need one. ``mode`` is
    ``'fast_run'`` (default), ``'fast_compile'`` or ``'debug'``. ``apply_updates=False`` gives a
    function that changes no state (what ``.eval()`` uses).

    >>> x = sg.vector('x'); f = sg.function([x], x * 2)
    >>> f([1.0, 2.0])
    array([2., 4.])
    """
    call_site = user_source()
    mode = get_mode(mode)
    if phase not in PHASES and phase is not None:
        raise ValueError(f"phase must be 'train', 'predict' or None, not {phase!r}")
    if on_unused_input not in _ON_UNUSED:
        raise ValueError(f"on_unused_input must be one of {_ON_UNUSED}, not {on_unused_input!r}")
    name = name or (f"{call_site.filename.rsplit('/', 1)[-1]}:{call_site.lineno}" if call_site else "function")
    inputs = _check_inputs(inputs)
    output_list, single = _normalize_outputs(outputs)
    update_pairs = _normalize_updates(updates, call_site)

    targets = output_list + [value for _, value in update_pairs]
    if givens:
        targets = _substitute(targets, givens)
    targets, automatic = specialize_phase(targets, phase)
    nodes = postorder(targets + [value for _, value, _ in automatic])
    automatic += state_updates(nodes)
    _check_clashes(update_pairs, automatic, call_site)
    updates_all = update_pairs + [(shared, value) for shared, value, _ in automatic]
    computed = targets + [value for _, value, _ in automatic]
    if not apply_updates:
        updates_all, computed = [], targets[: len(output_list)]
        nodes = postorder(computed)
    _check_inputs_needed(inputs, computed, nodes, on_unused_input, name)

    fgraph = FunctionGraph(inputs, computed, nodes)
    if mode.optimize:
        fgraph = optimize(fgraph)
    n_outputs = len(output_list)
    final_outputs = fgraph.outputs[:n_outputs]
    final_updates = [(shared, value) for (shared, _), value in zip(updates_all, fgraph.outputs[n_outputs:])]
    plan = plan_memory(fgraph.schedule(), final_outputs, final_updates, mode.inplace)
    program = link(
        inputs,
        final_outputs,
        final_updates,
        plan,
        name=name,
        single_output=single,
        allow_downcast=allow_input_downcast,
        debug=mode.debug,
        apply_updates=apply_updates,
    )
    return Function(program, fgraph, inputs, final_outputs, final_updates, phase, mode, name, single)


# --- checking what the user gave ----------------------------------------------------------------
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


def _substitute(targets: list[Variable], givens: Any) -> list[Variable]:
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
    return rebuild(targets, replacements)[0]


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


def _check_inputs_needed(
    inputs: list[Variable], computed: list[Variable], nodes: list, on_unused: str, name: str
) -> None:
    given = {id(variable) for variable in inputs}
    needed: dict[int, Variable] = {}
    users: dict[int, Any] = {}
    for node in nodes:
        for variable in node.inputs:
            if variable.owner is None and not isinstance(variable, (Constant, SharedVariable)):
                needed.setdefault(id(variable), variable)
                users.setdefault(id(variable), node)
    for variable in computed:
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
    unused = [variable for variable in inputs if id(variable) not in needed]
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
def evaluate(variable: Variable, inputs_to_values: dict | None, phase: str | None) -> Any:
    """``variable.eval()``: compile once (cached on the variable) and call, changing no state."""
    inputs_to_values = inputs_to_values or {}
    inputs = list(inputs_to_values)
    key = (tuple(id(v) for v in inputs), phase)
    cache = variable._eval_cache
    if cache is None:
        cache = variable._eval_cache = {}
    entry = cache.get(key)
    if entry is None:
        if phase is None:
            dependent = phase_dependent_nodes([variable])
            if dependent:
                raise PhaseError(missing_phase_message(dependent, ".eval()"))
        compiled = function(inputs, variable, phase=phase, on_unused_input="ignore", apply_updates=False)
        entry = cache[key] = (inputs, compiled)
    return entry[1](*[inputs_to_values[v] for v in inputs])
