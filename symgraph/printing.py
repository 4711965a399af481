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

from .graph.basic import Apply, Constant, SharedVariable, Variable
from .graph.fgraph import FunctionGraph
from .graph.type import TensorType, format_shape

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


def _function_title(function: Any) -> str:
    phase = f"phase={function.phase!r}" if function.phase else "no phase"
    return f"function {function.name} ({phase}, mode={function.mode.name!r})"


# --- what one line says -----------------------------------------------------------------------------
def op_text(node: Apply, limit: int = 60) -> str:
    """The op with its properties, as ``softmax{axis=1}`` (``str(op)``), cut at ``limit``."""
    text = str(node.op)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    """``A, B, ..., Z, BA, BB, ...``: Theano's ids, one per node (for computed variables) or root."""

    def __init__(self) -> None:
        self._ids: dict[int, str] = {}

    def __call__(self, variable: Variable) -> str:
        key = id(variable.owner) if variable.owner is not None else id(variable)
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


def _line(variable: Variable, ids: _Ids) -> str:
    name = f" '{variable.name}'" if variable.name else ""
    node = variable.owner
    if node is None:
        head = variable.label() if isinstance(variable, Constant) else (variable.name or "<unnamed>")
        return f"{head} [id {ids(variable)}] {variable.kind} {type_text(variable)}"
    suffix = f".{variable.index}" if len(node.outputs) > 1 else ""
    marks = "".join(f" [{mark}]" for mark in node_marks(node))
    return f"{op_text(node)}{suffix} [id {ids(variable)}]{name} {type_text(variable)}{marks}"


# --- the trees ----------------------------------------------------------------------------------------
def _tree_lines(
    start: Variable, ids: _Ids, expanded: set[int], deferred: list[Variable], max_depth: int
) -> Iterator[str]:
    """The lines of the tree under ``start``, with an explicit stack instead of recursion.

    Each stack entry is ``(variable, prefix of its line, prefix of its children's lines, depth)``.
    """
    stack: list[tuple[Variable, str, str, int]] = [(start, "", "", 0)]
    while stack:
        variable, prefix, child_prefix, depth = stack.pop()
        line = prefix + _line(variable, ids)
        node = variable.owner
        if node is None or not node.inputs:
            yield line
        elif id(node) in expanded:
            yield line + " (shown above)"
        elif depth >= max_depth:
            expanded.add(id(node))
            deferred.append(variable)
            yield line + " (continued below)"
        else:
            expanded.add(id(node))
            yield line
            last = len(node.inputs) - 1
            # Pushed in reverse, so that the first input pops (and prints) first.
            for position in range(last, -1, -1):
                branch, extension = ("`- ", "   ") if position == last else ("|- ", "|  ")
                stack.append((node.inputs[position], child_prefix + branch, child_prefix + extension, depth + 1))


def _all_lines(sections: Sequence[tuple[str | None, Variable]], max_depth: int) -> Iterator[str]:
    """Every tree, each under its heading, then the trees cut at ``max_depth``, continued."""
    ids = _Ids()
    expanded: set[int] = set()
    deferred: list[Variable] = []
    for heading, variable in sections:
        if heading is not None:
            yield heading
        yield from _tree_lines(variable, ids, expanded, deferred, max_depth)
    cursor = 0
    while cursor < len(deferred):
        variable = deferred[cursor]
        cursor += 1
        node = variable.owner
        assert node is not None
        yield ""
        yield f"{_line(variable, ids)} (continued)"
        last = len(node.inputs) - 1
        for position, child in enumerate(node.inputs):
            branch, extension = ("`- ", "   ") if position == last else ("|- ", "|  ")
            for index, line in enumerate(_tree_lines(child, ids, expanded, deferred, max_depth - 1)):
                yield (branch if index == 0 else extension) + line


def _sections(subject: GraphSubject) -> list[tuple[str | None, Variable]]:
    if not subject.compiled:
        return [(None, variable) for variable in subject.outputs]
    sections: list[tuple[str | None, Variable]] = [
        (f"output {position}:", variable) for position, variable in enumerate(subject.outputs)
    ]
    sections += [(f"update of {shared.label()} <-", value) for shared, value in subject.updates]
    return sections


def debugprint(obj: Any, file: TextIO | None = None, max_depth: int = 50) -> str:
    """Print the graph of ``obj`` as an indented tree to ``file`` (stdout when ``None``); return it.

    ``obj`` is a variable, a list of variables, or a compiled function (then its compiled,
    rewritten graph: its outputs and its updates, under a heading that names the phase). Each line
    shows the op or the name of the variable, an id, the variable's name, dtype and static shape,
    and marks: ``[grad]`` (built by ``sg.grad``), ``[random]``, ``[phase-dependent]``. A node used
    several times is expanded once and referred to by its id afterwards; trees deeper than
    ``max_depth`` continue below, under the same id.

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
    lines += _all_lines(_sections(subject), max_depth)
    text = "\n".join(lines) + "\n"
    (sys.stdout if file is None else file).write(text)
    return text


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
