"""``sg.debugprint``: a graph as an indented text tree.

Each variable is one line: its op (or its name, for inputs, shared variables and constants), an id
such as ``[id B]``, its name, dtype and static shape, and marks for nodes made by ``sg.grad``
(``[grad]``), that draw random numbers (``[random]``) or that depend on the phase
(``[phase-dependent]``). A node used several times is expanded once; later uses print its line
with ``(shown above)``. Past ``max_depth`` levels a tree stops with ``(continued below)`` and goes
on as a new tree under the same id, so deep graphs stay readable and the text grows linearly with
the graph. Nothing here recurses: graphs of any depth print at Python's default recursion limit.

The module also says what a printable or drawable object is (:func:`graph_subject`), for
``symgraph.viz``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from .graph.basic import Apply, Constant, SharedVariable, Variable
from .graph.fgraph import FunctionGraph
from .graph.traversal import postorder
from .graph.type import TensorType, format_shape
from .grouping import Group, Grouping, group_graph

__all__ = ["GraphSubject", "debugprint", "graph_subject"]


@dataclass
class GraphSubject:
    """What to show of an object: its outputs, its updates, and a title.

    ``inputs`` are the declared inputs of a compiled function (shown even when unused); ``phase``
    is the phase it was compiled for.
    """

    outputs: list[Variable]
    updates: list[tuple[SharedVariable, Variable]] = field(default_factory=list)
    inputs: list[Variable] = field(default_factory=list)
    title: str = ""
    phase: str | None = None
    compiled: bool = False
    #: Seconds spent in each node (by ``id`` of the ``Apply``), for a function compiled with
    #: profiling: pictures and the explorer show and shade by them.
    times: dict[int, float] | None = None

    @property
    def computed(self) -> list[Variable]:
        """The outputs, then the updates' new values."""
        return self.outputs + [value for _, value in self.updates]

    def nodes(self) -> list[Apply]:
        """Every node computing the outputs and updates, each after the nodes it reads."""
        return postorder(self.computed)

    def grouping(self, nodes: Sequence[Apply] | None = None) -> Grouping:
        """The groups (scopes) of the graph, see :mod:`symgraph.grouping`."""
        return group_graph(self.nodes() if nodes is None else nodes, self.inputs, self.outputs, self.updates)


def graph_subject(obj: Any) -> GraphSubject:
    """The :class:`GraphSubject` of a variable, a list of variables, a compiled function or a
    ``FunctionGraph``; ``TypeError`` for anything else."""
    from .compile.function import Function  # printing must not make the graph depend on the compiler

    if isinstance(obj, GraphSubject):
        return obj
    if isinstance(obj, Function):
        return GraphSubject(
            outputs=list(obj.outputs),
            updates=list(obj.updates),
            inputs=list(obj.inputs),
            title=_function_title(obj),
            phase=obj.phase,
            compiled=True,
            times=_node_times(obj),
        )
    if isinstance(obj, FunctionGraph):
        return GraphSubject(
            outputs=list(obj.outputs), updates=list(obj.updates), inputs=list(obj.inputs), compiled=True
        )
    if isinstance(obj, Variable):
        return GraphSubject(outputs=[obj])
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(item, Variable) for item in obj):
        return GraphSubject(outputs=list(obj))
    raise TypeError(
        f"expected a symbolic variable, a list of them or a compiled function (sg.function), not {type(obj).__name__}"
    )


def _node_times(function: Any) -> dict[int, float] | None:
    """Seconds per node of a profiled function: its ``node_times``, a mapping from its nodes
    (``Apply``) to seconds, when it has one."""
    times = getattr(function, "node_times", None)
    if not times:
        return None
    return {id(node): float(seconds) for node, seconds in dict(times).items()}


def _function_title(function: Any) -> str:
    phase = f"phase={function.phase!r}" if function.phase else "no phase"
    return f"function {function.name} ({phase}, mode={function.mode.name!r})"


# --- what one line says -----------------------------------------------------------------------------
def op_text(node: Apply, limit: int = 60) -> str:
    """The op with its properties, as ``softmax{axis=1}`` (``str(op)``), cut at ``limit``."""
    text = str(node.op)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_number(value: Any) -> str:
    """A number as a label shows it: four significant digits, so that ``0.09999999999999998``
    reads ``0.1``; floats keep a point (``2.0``), integers and booleans stay as they are."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    number = float(value)
    if not np.isfinite(number):
        return str(number)
    text = f"{number:.4g}"
    return text if any(mark in text for mark in ".en") else text + ".0"


def constant_text(constant: Constant) -> str:
    """A constant's name, or its value rounded for reading (at most four elements), or its shape."""
    if constant.name:
        return constant.name
    data = np.asarray(constant.data)
    if data.size > 4:
        return f"constant{format_shape(data.shape)}"
    if data.ndim == 0:
        return short_number(data.item())
    return np.array2string(data, separator=", ", formatter={"all": short_number})


def variable_text(variable: Variable) -> str:
    """What a line or a picture calls a variable: a constant's rounded value, else its label."""
    return constant_text(variable) if isinstance(variable, Constant) else variable.label()


def type_text(variable: Variable) -> str:
    """``float64 (?, 784)``, or the type's own description for non-tensors (random generators)."""
    if isinstance(variable.type, TensorType):
        return f"{variable.dtype} {format_shape(variable.type.shape)}"
    return variable.type.describe()


def node_marks(node: Apply) -> list[str]:
    """``grad``, ``random`` and ``phase-dependent``, those that apply to ``node``."""
    marks = []
    if node.gradient:
        marks.append("grad")
    if node.op.stochastic:
        marks.append("random")
    if node.op.phase_dependent:
        marks.append("phase-dependent")
    return marks


class _Ids:
    """``A, B, ..., Z, BA, BB, ...``: Theano's ids, one per node (for computed variables), closed
    group or root."""

    def __init__(self) -> None:
        self._ids: dict[int, str] = {}

    def __call__(self, key: int) -> str:
        found = self._ids.get(key)
        if found is None:
            found = self._ids[key] = _letters(len(self._ids))
        return found


def _letters(number: int) -> str:
    digits = ""
    while True:
        digits = chr(ord("A") + number % 26) + digits
        number //= 26
        if number == 0:
            return digits


class _View:
    """What a tree shows of each variable: the node computing it, or, when that node is in a
    closed group, the group as one unit, like a node with several outputs: its inputs are what
    its nodes read from outside it, its outputs what is read outside it."""

    def __init__(self, subject: GraphSubject, expand: Any):
        nodes = subject.nodes()
        grouping = subject.grouping(nodes)
        self.grouping = grouping
        self.closed: dict[int, Group] = {}  # id of a node -> the outermost closed group holding it
        opened = _opened(grouping, expand)
        for node in nodes:
            group = grouping.of_node[id(node)]
            for outer in group.path() if group is not None else ():
                if outer.key not in opened:
                    self.closed[id(node)] = outer
                    break
        self._inputs: dict[str, list[Variable]] = {}
        self._outputs: dict[str, list[int]] = {}
        self._members: dict[str, list[Apply]] = {}
        for node in nodes:
            box = self.closed.get(id(node))
            if box is not None:
                self._members.setdefault(box.key, []).append(node)
        computed = {id(variable) for variable in subject.computed}
        for node in nodes:
            box = self.closed.get(id(node))
            for variable in node.inputs:
                self._note(variable, box)
        for variable in subject.computed:
            if id(variable) in computed:
                self._note(variable, None)

    def _note(self, variable: Variable, reader: Group | None) -> None:
        """Record ``variable`` read by a node in ``reader`` (``None``: outside every closed group)."""
        maker = self.closed.get(id(variable.owner)) if variable.owner is not None else None
        if maker is not None and maker is not reader and id(variable) not in self._outputs.setdefault(maker.key, []):
            self._outputs[maker.key].append(id(variable))

    def group(self, variable: Variable) -> Group | None:
        """The closed group computing ``variable``, if any."""
        return self.closed.get(id(variable.owner)) if variable.owner is not None else None

    def inputs(self, variable: Variable) -> Sequence[Variable]:
        """The children of ``variable``'s line: its node's inputs, or its group's."""
        group = self.group(variable)
        if group is None:
            return variable.owner.inputs if variable.owner is not None else ()
        if group.key not in self._inputs:
            self._inputs[group.key] = self._group_inputs(group)
        return self._inputs[group.key]

    def _group_inputs(self, group: Group) -> list[Variable]:
        found: dict[int, Variable] = {}
        for node in self._members[group.key]:
            for variable in node.inputs:
                if variable.owner is not None and self.closed.get(id(variable.owner)) is group:
                    continue
                if variable.owner is None and group in _path(self.grouping.of_variable.get(id(variable))):
                    continue  # the group's own constants and state
                found.setdefault(id(variable), variable)
        return list(found.values())

    def key(self, variable: Variable) -> int:
        """What the id and "shown above" refer to: the group, the node, or the root variable."""
        group = self.group(variable)
        if group is not None:
            return id(group)
        return id(variable.owner) if variable.owner is not None else id(variable)

    def line(self, variable: Variable, ids: _Ids) -> str:
        name = f" '{variable.name}'" if variable.name else ""
        node = variable.owner
        if node is None:
            head = constant_text(variable) if isinstance(variable, Constant) else (variable.name or "<unnamed>")
            return f"{head} [id {ids(id(variable))}] {variable.kind} {type_text(variable)}"
        group = self.group(variable)
        if group is None:
            suffix = f".{variable.index}" if len(node.outputs) > 1 else ""
            marks = "".join(f" [{mark}]" for mark in node_marks(node))
            return f"{op_text(node)}{suffix} [id {ids(id(node))}]{name} {type_text(variable)}{marks}"
        outputs = self._outputs.get(group.key, [])
        suffix = f".{outputs.index(id(variable))}" if len(outputs) > 1 and id(variable) in outputs else ""
        members = self._members[group.key]
        marks = []
        if all(member.gradient for member in members):
            marks.append("grad")
        if any(member.op.stochastic for member in members):
            marks.append("random")
        if any(member.op.phase_dependent for member in members):
            marks.append("phase-dependent")
        text = "".join(f" [{mark}]" for mark in marks)
        count = f"{len(members)} op{'s' if len(members) != 1 else ''}"
        return f"{group.name}{suffix} [id {ids(id(group))}]{name} {type_text(variable)}{text} (group of {count})"


def _path(group: Group | None) -> tuple[Group, ...]:
    return group.path() if group is not None else ()


def _opened(grouping: Grouping, expand: Any) -> set[str]:
    """The keys of the open groups, for ``expand``: ``True``, ``False`` or group names."""
    if expand is True:
        return set(grouping.groups)
    if expand is False:
        return set()
    wanted = {expand} if isinstance(expand, str) else set(expand)
    names = {group.name for group in grouping.groups.values()}
    unknown = sorted(str(name) for name in wanted - names - set(grouping.groups))
    if unknown:
        known = ", ".join(sorted(names)) or "none"
        raise ValueError(f"expand: no group named {', '.join(unknown)} in this graph (its groups: {known})")
    return {key for key, group in grouping.groups.items() if key in wanted or group.name in wanted}


# --- the trees ----------------------------------------------------------------------------------------
def _tree_lines(
    start: Variable, view: _View, ids: _Ids, expanded: set[int], deferred: list[Variable], max_depth: int
) -> Iterator[str]:
    """The lines of the tree under ``start``, with an explicit stack instead of recursion.

    Each stack entry is ``(variable, prefix of its line, prefix of its children's lines, depth)``.
    """
    stack: list[tuple[Variable, str, str, int]] = [(start, "", "", 0)]
    while stack:
        variable, prefix, child_prefix, depth = stack.pop()
        line = prefix + view.line(variable, ids)
        children = view.inputs(variable)
        key = view.key(variable)
        if not children:
            yield line
        elif key in expanded:
            yield line + " (shown above)"
        elif depth >= max_depth:
            expanded.add(key)
            deferred.append(variable)
            yield line + " (continued below)"
        else:
            expanded.add(key)
            yield line
            last = len(children) - 1
            # Pushed in reverse, so that the first input pops (and prints) first.
            for position in range(last, -1, -1):
                branch, extension = ("`- ", "   ") if position == last else ("|- ", "|  ")
                stack.append((children[position], child_prefix + branch, child_prefix + extension, depth + 1))


def _all_lines(
    sections: Sequence[tuple[str | None, Variable]], view: _View, max_depth: int, ids: _Ids | None = None
) -> Iterator[str]:
    """Every tree, each under its heading, then the trees cut at ``max_depth``, continued."""
    ids = ids if ids is not None else _Ids()
    expanded: set[int] = set()
    deferred: list[Variable] = []
    for heading, variable in sections:
        if heading is not None:
            yield heading
        yield from _tree_lines(variable, view, ids, expanded, deferred, max_depth)
    cursor = 0
    while cursor < len(deferred):
        variable = deferred[cursor]
        cursor += 1
        yield ""
        yield f"{view.line(variable, ids)} (continued)"
        children = view.inputs(variable)
        last = len(children) - 1
        for position, child in enumerate(children):
            branch, extension = ("`- ", "   ") if position == last else ("|- ", "|  ")
            for index, line in enumerate(_tree_lines(child, view, ids, expanded, deferred, max_depth - 1)):
                yield (branch if index == 0 else extension) + line


def _sections(subject: GraphSubject) -> list[tuple[str | None, Variable]]:
    if not subject.compiled:
        return [(None, variable) for variable in subject.outputs]
    sections: list[tuple[str | None, Variable]] = [
        (f"output {position}:", variable) for position, variable in enumerate(subject.outputs)
    ]
    sections += [(f"update of {shared.label()} <-", value) for shared, value in subject.updates]
    return sections


def debugprint(obj: Any, file: TextIO | None = None, max_depth: int = 50, expand: Any = False) -> str:
    """Print the graph of ``obj`` as an indented tree to ``file`` (stdout when ``None``); return it.

    ``obj`` is a variable, a list of variables, or a compiled function (then its compiled,
    rewritten graph: its outputs and its updates, under a heading that names the phase). Each line
    shows the op or the name of the variable, an id, the variable's name, dtype and static shape,
    and marks: ``[grad]`` (built by ``sg.grad``), ``[random]``, ``[phase-dependent]``. A node used
    several times is expanded once and referred to by its id afterwards; trees deeper than
    ``max_depth`` continue below, under the same id.

    The nodes one user-level call built (a dropout, a loss, an optimizer's update of a parameter,
    a ``batch_norm``; see :mod:`symgraph.grouping`) are one line, named after the call and ending
    ``(group of 13 ops)``, whose children are what they read from outside, as if the group were
    one op; ``expand=True`` prints every node, and then the graphs held by the ops shown (the step
    of a ``scan``, the branches of an ``ifelse``), each under its node's id; a list of group names
    opens those groups only.

    >>> x = sg.vector('x'); _ = sg.debugprint(sg.exp(x) + x)
    add [id A] float64 (?,)
    |- exp [id B] float64 (?,)
    |  `- x [id C] input float64 (?,)
    `- x [id C] input float64 (?,)
    """
    if max_depth < 1:
        raise ValueError(f"max_depth must be at least 1, not {max_depth}")
    subject = graph_subject(obj)
    lines = [subject.title] if subject.title else []
    ids = _Ids()
    lines += _all_lines(_sections(subject), _View(subject, expand), max_depth, ids)
    if expand is True:
        lines += _inner_graph_lines(subject, ids, max_depth)
    text = "\n".join(lines) + "\n"
    (sys.stdout if file is None else file).write(text)
    return text


def _inner_graph_lines(subject: GraphSubject, ids: _Ids, max_depth: int) -> list[str]:
    """With everything expanded: the graphs held by the ops shown (a loop's step, a branch), each
    under the id of its node, printed the same way (and so their own inner graphs)."""
    from .ops.subgraph import InnerGraphOp

    lines: list[str] = []
    for node in subject.nodes():
        if not isinstance(node.op, InnerGraphOp) or id(node) not in ids._ids:
            continue
        for position, graph in enumerate(node.op.inner_graphs):
            which = f" {position}" if len(node.op.inner_graphs) > 1 else ""
            lines += ["", f"inner graph{which} of {node.op.name} [id {ids(id(node))}]:"]
            inner = debugprint(graph, file=_Discard(), max_depth=max_depth, expand=True)
            lines += [("  " + line).rstrip() for line in inner.splitlines()]
    return lines


class _Discard:
    def write(self, text: str) -> None:
        pass


# --- Theano's names: theano.printing.debugprint (above) and pydotprint ----------------------------
#: Theano's options that only changed how its pictures looked: accepted, and left to ``sg.plot``.
_PYDOTPRINT_LOOKS = frozenset(
    ("compact", "with_ids", "high_contrast", "cond_highlight", "colorCodes", "max_label_size")
    + ("scan_graphs", "var_with_name_simple", "print_output_file", "return_image")
)


def pydotprint(fct: Any, outfile: Any = None, format: str = "png", **options: Any) -> Any:
    """Theano's ``pydotprint``: ``sg.plot(fct, outfile, **options)`` (``outfile`` defaults to
    ``symgraph.pydotprint.<format>``). Theano's options that only set the picture's looks
    (``var_with_name_simple``, ``compact``...) are accepted and ignored; ``sg.plot``'s own work."""
    from .viz import plot  # the pictures depend on this module, not the other way round

    kept = {name: value for name, value in options.items() if name not in _PYDOTPRINT_LOOKS}
    return plot(fct, outfile if outfile is not None else f"symgraph.pydotprint.{format}", **kept)
