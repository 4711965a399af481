"""Pictures of graphs: ``sg.to_networkx``, ``sg.to_dot`` and ``sg.plot``.

``to_networkx`` is the model every picture is drawn from: one node per variable and per operation,
edges in the direction data flows, and attributes that say what each node is, including the group
(the user-level call, :mod:`symgraph.grouping`) it belongs to. ``to_dot`` writes it as Graphviz
source (:mod:`symgraph.viz_dot`, no Graphviz needed), and ``plot`` draws it, with Graphviz's
``dot`` program when it is installed and with matplotlib otherwise (:mod:`symgraph.viz_matplotlib`),
or writes the interactive explorer (:mod:`symgraph.explorer`) for an ``.html`` path.

Both renderers draw the same things the same way: operations as boxes, variables as ellipses;
inputs blue, shared variables green, constants grey, outputs red; random and phase-dependent
operations (dropout) orange with a thick border; gradient operations lilac with a dashed border;
a closed group as one yellow box (orange if it draws random numbers, lilac if it is all gradient)
named after the call that built it; an open group as a labelled frame around its nodes; updates of
shared variables as dashed green arrows back to them; beside another graph, what only one of them
holds with a thick pink outline (dashed: a group in both, holding different nodes).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from .graph.basic import Apply, Constant, Variable
from .graph.type import format_shape
from .grouping import Group, Grouping
from .printing import GraphSubject, graph_subject, node_marks, op_text, type_text, variable_text
from .viz_groups import differences, fold_groups

__all__ = ["plot", "to_networkx"]

FORMATS = (".svg", ".png", ".pdf")
EXPLORER = ".html"
RENDERERS = ("auto", "graphviz", "matplotlib")
MAX_PIXELS = 60e6  # a larger PNG takes long to draw and to open; vector formats have no limit
LARGE = 200  # nodes drawn, past which Graphviz is told to lay them out faster
INSTALL_HINT = (
    "install the viz extra: `pip install symgraph[viz]` (or `pip install graphviz matplotlib`); "
    "for the Graphviz renderer also install the `dot` program (Debian/Ubuntu: `apt-get install graphviz`)"
)

# How each kind of node looks, shared by both renderers: (fill, border).
COLORS = {
    "input": ("#a5d8ff", "#1864ab"),
    "shared": ("#b2f2bb", "#2b8a3e"),
    "constant": ("#f1f3f5", "#868e96"),
    "output": ("#ffc9c9", "#c92a2a"),
    "intermediate": ("#ffffff", "#868e96"),
    "op": ("#e9ecef", "#343a40"),
    "gradient": ("#e5dbff", "#6741d9"),
    "random": ("#ffd8a8", "#d9480f"),
    "collapsed": ("#fff3bf", "#e67700"),
}
UPDATE_COLOR = "#2b8a3e"
ONLY_COLOR = "#d6336c"  # what one graph holds and the other, beside it, does not
GROUP_FRAME = ("#fcfcfd", "#adb5bd")  # an open group: a light frame with its name
LEGEND = (
    ("input", "input"),
    ("shared", "shared"),
    ("constant", "constant"),
    ("output", "output"),
    ("op", "operation"),
    ("gradient", "gradient op"),
    ("random", "random / phase-dependent op"),
    ("collapsed", "group (a call's nodes)"),
)


# --- the graph as networkx --------------------------------------------------------------------------
def to_networkx(obj: Any, collapse: Any = None, expand: Any = True) -> nx.DiGraph:
    """The graph of ``obj`` as a ``networkx.DiGraph``, edges in the direction data flows.

    ``obj`` is a variable, a list of variables or a compiled function (then its compiled graph).
    Nodes are keyed ``'v0', 'v1', ...`` (variables) and ``'op0', 'op1', ...`` (operations), and
    carry ``kind`` (``'op'``, ``'input'``, ``'shared'``, ``'constant'``, ``'intermediate'``,
    ``'output'``) and ``label``; operations also ``op`` (the op's name), ``stochastic``,
    ``phase_dependent``, ``gradient`` (made by ``sg.grad``) and ``source`` (the user's line);
    variables ``name``, ``dtype``, ``shape`` (a tuple, ``None`` for unknown lengths; ``None`` for
    non-tensors such as random generators) and ``gradient`` (computed by a gradient op).
    Edges carry ``update`` (``False``) and ``position`` (variable to op: which input) or
    ``index`` (op to variable: which output).

    Groups: the nodes one user-level call built (a ``batch_norm``, a loss, an optimizer's update
    of one parameter, a dropout) form a group (see :mod:`symgraph.grouping`). Every node carries
    ``group``, the key of the innermost group it is in (``'group0'``...; ``None`` outside any), and
    ``scope``, the names of the groups it is in, outermost first (``()`` outside any); the graph
    attribute ``groups`` maps each key to ``name``, ``parent`` (a key or ``None``), ``scope``,
    ``source`` and ``updates`` (the shared variables that are the group's own state).

    ``expand``: ``True`` (the default here) keeps every node; ``False`` folds each group into one
    op node, keyed by the group's key, with ``op`` = the group's name (``'adam W0'``), ``group`` =
    its key, ``collapsed`` = the number of ops it holds, and edges to and from what it reads and
    computes; a list of group names (or keys) opens those groups and folds the others.

    The updates of a compiled function are edges from the new value to the shared variable with
    ``update=True``: they close cycles (the value is read at the next call), so drop them for a
    DAG: ``nx.subgraph_view(g, filter_edge=lambda u, v: not g.edges[u, v]['update'])``.

    ``collapse`` folds other parts of the graph into one box each (an op node with
    ``op='collapsed'`` and ``collapsed`` = the number of ops it holds): ``'gradient'`` folds every
    gradient op (and the variables only they use); a variable, or the name of one, folds every op
    it is computed from; a list folds several, each into its own box.
    """
    if isinstance(obj, nx.DiGraph):
        if collapse is not None:
            raise ValueError("collapse needs the symbolic graph, not a networkx graph")
        graph = obj.copy()
        graph.graph.setdefault("groups", {})
    else:
        graph, keys = _build(graph_subject(obj))
        if collapse is not None:
            _collapse(graph, collapse, keys)
    return fold_groups(graph, expand)


def _build(subject: GraphSubject) -> tuple[nx.DiGraph, dict[int, str]]:
    """The full graph, and the key of each variable (by ``id``), for ``collapse``."""
    nodes = subject.nodes()
    grouping = subject.grouping(nodes)
    graph = nx.DiGraph(title=subject.title, phase=subject.phase, groups=_group_attributes(grouping))
    keys: dict[int, str] = {}
    # What unnamed variables are called in pictures: "output 0", "new W1" (an update's value).
    roles = {id(value): f"new {shared.label()}" for shared, value in subject.updates}
    roles.update((id(variable), f"output {n}") for n, variable in enumerate(subject.outputs))
    outputs = {id(variable) for variable in subject.outputs}
    times = subject.times or {}
    counts = {"v": 0, "op": 0}

    def add_variable(variable: Variable) -> str:
        key = keys.get(id(variable))
        if key is None:
            key = keys[id(variable)] = f"v{counts['v']}"
            counts["v"] += 1
            attributes = _variable_attributes(variable, id(variable) in outputs, roles.get(id(variable)))
            graph.add_node(key, **attributes, **_membership(grouping.of_variable.get(id(variable))))
        return key

    for variable in subject.inputs:
        add_variable(variable)
    for node in nodes:
        op_key = f"op{counts['op']}"
        counts["op"] += 1
        graph.add_node(op_key, **_op_attributes(node), **_membership(grouping.of_node[id(node)]))
        if id(node) in times:
            graph.nodes[op_key]["time"] = times[id(node)]
        for position, variable in enumerate(node.inputs):
            graph.add_edge(add_variable(variable), op_key, position=position, update=False)
        for index, variable in enumerate(node.outputs):
            graph.add_edge(op_key, add_variable(variable), index=index, update=False)
    for variable in subject.outputs:
        add_variable(variable)
    for shared, value in subject.updates:
        graph.add_edge(add_variable(value), add_variable(shared), update=True)
    return graph, keys


def _membership(group: Group | None) -> dict:
    return {"group": None if group is None else group.key, "scope": () if group is None else group.names()}


def _group_attributes(grouping: Grouping) -> dict[str, dict]:
    return {
        key: {
            "name": group.name,
            "parent": None if group.parent is None else group.parent.key,
            "scope": group.names(),
            "source": str(group.source) if group.source is not None else "",
            "updates": list(group.updates),
        }
        for key, group in grouping.groups.items()
    }


def _variable_attributes(variable: Variable, is_output: bool, role: str | None) -> dict:
    kind = variable.kind
    if is_output and kind == "intermediate":
        kind = "output"
    tensor = hasattr(variable.type, "shape")
    head = variable_text(variable) if variable.owner is None or variable.name else role
    type_line = type_text(variable)
    attributes = {
        "kind": kind,
        "label": f"{head}\n{type_line}" if head else type_line,
        "name": variable.name,
        "dtype": variable.type.dtype if tensor else None,
        "shape": tuple(variable.type.shape) if tensor else None,
        "gradient": bool(variable.owner is not None and variable.owner.gradient),
    }
    if isinstance(variable, Constant):
        attributes["value"] = _exact_value(variable)
    return attributes


def _exact_value(constant: Constant) -> str:
    """The constant's value in full (the label rounds it), for the explorer's details."""
    data = np.asarray(constant.data)
    if data.size > 16:
        return f"array of shape {format_shape(data.shape)}"
    return repr(data.item()) if data.ndim == 0 else np.array2string(data, separator=", ")


def _op_attributes(node: Apply) -> dict:
    # The picture shows gradient ops by their colour; "random" and "phase-dependent" are spelled out.
    marks = [mark for mark in node_marks(node) if mark != "grad"]
    text = op_text(node, limit=40)
    name, _, props = text.partition("{")
    lines = [name] + ([props[:-1] if props.endswith("}") else props] if props else [])
    return {
        "kind": "op",
        "label": "\n".join(lines + (["[" + ", ".join(marks) + "]"] if marks else [])),
        "op": node.op.name,
        "stochastic": bool(node.op.stochastic),
        "phase_dependent": bool(node.op.phase_dependent),
        "gradient": bool(node.gradient),
        "source": str(node.source) if node.source is not None else "",
    }


def data_flow(graph: nx.DiGraph) -> nx.DiGraph:
    """The graph without its update edges: what one call computes, a DAG before collapsing."""
    return nx.subgraph_view(graph, filter_edge=lambda u, v: not graph.edges[u, v].get("update"))


# --- collapsing -----------------------------------------------------------------------------------
def _collapse(graph: nx.DiGraph, collapse: Any, keys: dict[int, str]) -> None:
    specs = [collapse] if isinstance(collapse, (str, Variable)) else list(collapse)
    claimed: set[str] = set()
    for number, spec in enumerate(specs):
        ops, title = _collapse_group(graph, spec, keys)
        ops -= claimed
        if ops:
            claimed |= ops
            _fold(graph, ops, f"collapsed{number}", title)


def _collapse_group(graph: nx.DiGraph, spec: Any, keys: dict[int, str]) -> tuple[set[str], str]:
    """The op nodes ``spec`` names, and the title of their box."""
    if isinstance(spec, str) and spec == "gradient":
        return {key for key, data in graph.nodes(data=True) if data["kind"] == "op" and data["gradient"]}, "gradient"
    if isinstance(spec, Variable):
        key = keys.get(id(spec))
        name = spec.name
    elif isinstance(spec, str):
        key, name = None, spec
    else:
        raise TypeError(f"collapse takes 'gradient', variables or variable names, not {spec!r}")
    if key is None or key not in graph:
        # A compiled graph holds rebuilt variables: find the user's variable by its name.
        named = [k for k, data in graph.nodes(data=True) if data["kind"] != "op" and name and data["name"] == name]
        if not named:
            what = name or repr(spec)
            raise ValueError(
                f"collapse: no variable {what!r} in this graph (a compiled graph keeps the names of variables)"
            )
        key = named[0]
    ancestors = nx.ancestors(data_flow(graph), key)
    return {node for node in ancestors if graph.nodes[node]["kind"] == "op"}, f"{name or 'subgraph'}"


def _fold(graph: nx.DiGraph, ops: set[str], box: str, title: str) -> None:
    """Replace ``ops``, and the variables only they use, by one box."""
    folded = set(ops)
    for op in ops:
        for variable in list(graph.successors(op)) + list(graph.predecessors(op)):
            if _only_inside(graph, variable, ops):
                folded.add(variable)
    attributes = [graph.nodes[op] for op in ops]
    graph.add_node(
        box,
        kind="op",
        op="collapsed",
        label=f"{title}\n({len(ops)} ops)",
        stochastic=any(data["stochastic"] for data in attributes),
        phase_dependent=any(data["phase_dependent"] for data in attributes),
        gradient=all(data["gradient"] for data in attributes),
        source="",
        collapsed=len(ops),
    )
    for member in folded:
        for source in graph.predecessors(member):
            if source not in folded:
                graph.add_edge(source, box, update=False)
        for target in graph.successors(member):
            if target not in folded:
                graph.add_edge(box, target, update=False)
    graph.remove_nodes_from(folded)


def _only_inside(graph: nx.DiGraph, variable: str, ops: set[str]) -> bool:
    """Whether a variable is made (if at all) and used only by ``ops``, and is not an output."""
    data = graph.nodes[variable]
    if data["kind"] in ("input", "shared", "output"):
        return False
    neighbours = list(graph.predecessors(variable)) + list(graph.successors(variable))
    updates = any(graph.edges[variable, target].get("update") for target in graph.successors(variable))
    return not updates and all(node in ops for node in neighbours)


def _hide_intermediates(graph: nx.DiGraph) -> nx.DiGraph:
    """A copy where each unnamed intermediate variable is drawn inside the box of the op that
    computes it (its dtype and shape on a last line), the op joined to its users directly."""
    drawn = graph.copy()
    for key, data in graph.nodes(data=True):
        if data["kind"] != "intermediate" or data["name"]:
            continue
        producers = list(drawn.predecessors(key))
        if len(producers) != 1 or _data_outputs(drawn, producers[0]) != 1:
            continue  # several outputs read: each keeps its own ellipse, so they stay told apart
        if any(drawn.edges[key, target].get("update") for target in drawn.successors(key)):
            continue
        (producer,) = producers
        type_line = data["label"].rsplit("\n", 1)[-1]
        drawn.nodes[producer]["label"] += f"\n{type_line}"
        # The op now stands for its output too: the explorer's details show its type.
        drawn.nodes[producer]["output_dtype"] = data["dtype"]
        drawn.nodes[producer]["output_shape"] = data["shape"]
        for target in drawn.successors(key):
            drawn.add_edge(producer, target, **drawn.edges[key, target])
        drawn.remove_node(key)
    return drawn


def _data_outputs(graph: nx.DiGraph, op: str) -> int:
    """How many outputs of ``op`` are read as data (a random generator's new state, only the
    value of an update, does not count)."""
    return sum(
        1
        for output in graph.successors(op)
        if not any(graph.edges[output, target].get("update") for target in graph.successors(output))
    )


def drawable(obj: Any, collapse: Any = None, intermediates: bool = False, expand: Any = False) -> nx.DiGraph:
    """The graph as pictures draw it: ``to_networkx(obj, collapse)`` with unnamed intermediate
    variables folded into their ops unless ``intermediates``, and groups folded unless ``expand``."""
    graph = to_networkx(obj, collapse)
    if not intermediates:
        graph = _hide_intermediates(graph)
    return fold_groups(graph, expand)


def style(data: dict) -> tuple[str, str, str]:
    """``(colour key, shape, border)`` of a node: shape ``'box'`` or ``'ellipse'``, border
    ``'solid'``, ``'dashed'`` (gradient) or ``'bold'`` (random or phase-dependent)."""
    if data["kind"] != "op":
        return data["kind"], "ellipse", "dashed" if data.get("gradient") and data["kind"] == "intermediate" else "solid"
    if data["stochastic"] or data["phase_dependent"]:
        return "random", "box", "bold"
    if data.get("collapsed"):
        return ("gradient" if data["gradient"] else "collapsed"), "box", "dashed" if data["gradient"] else "solid"
    if data["gradient"]:
        return "gradient", "box", "dashed"
    return "op", "box", "solid"


def several(obj: Any) -> bool:
    """Whether ``obj`` is several graphs to show side by side (a list of compiled functions, say),
    rather than one graph (a variable, or a list of variables)."""
    return isinstance(obj, (list, tuple)) and bool(obj) and not all(isinstance(item, Variable) for item in obj)


def subjects_of(obj: Any, compare: Any = None) -> list[Any]:
    """The graphs to draw: ``obj`` (one, or several side by side), then those of ``compare``."""
    objects = list(obj) if several(obj) else [obj]
    if compare is not None:
        objects += list(compare) if several(compare) else [compare]
    return objects


def panels(
    obj: Any,
    compare: Any,
    titles: Sequence[str] | None,
    collapse: Any,
    intermediates: bool,
    expand: Any,
) -> list[tuple[nx.DiGraph, str]]:
    """Each graph to draw, groups folded as ``expand`` says, with its title; beside others, its
    nodes that they lack carry ``only`` (``'only'`` or ``'changed'``)."""
    subjects = [graph_subject(item) for item in subjects_of(obj, compare)]
    if titles is not None and len(titles) != len(subjects):
        raise ValueError(f"titles gives {len(titles)} titles for {len(subjects)} graphs")
    names = list(titles) if titles is not None else [subject.title for subject in subjects]
    full = [drawable(subject, collapse, intermediates, expand=True) for subject in subjects]
    marks = differences(full) if len(full) > 1 else [{}]
    drawn = []
    for graph, found, name in zip(full, marks, names):
        folded = fold_groups(graph, expand)
        for key, data in folded.nodes(data=True):
            if key in found:
                data["only"] = found[key]
        folded.graph["only"] = {key: mark for key, mark in found.items() if key in folded.graph.get("groups", {})}
        drawn.append((folded, name))
    return drawn


def legend_entries(compared: bool) -> list[tuple[str, dict]]:
    """The legend's nodes, ``(key, attributes)``: one per colour, and, for graphs side by side,
    the outline of what only one holds."""
    entries = []
    for colour, text in LEGEND:
        entries.append(
            (
                colour,
                {
                    "kind": "op" if colour in ("op", "gradient", "random", "collapsed") else colour,
                    "label": text,
                    "stochastic": colour == "random",
                    "phase_dependent": False,
                    "gradient": colour == "gradient",
                    "collapsed": 1 if colour == "collapsed" else 0,
                },
            )
        )
    if compared:
        only = {"kind": "op", "label": "only in this graph", "stochastic": False, "phase_dependent": False}
        entries.append(("only", {**only, "gradient": False, "only": "only"}))
    return entries


# --- rendering ------------------------------------------------------------------------------------
def dot_program() -> str | None:
    """The path of Graphviz's ``dot`` program, or ``None`` when it is not installed."""
    return shutil.which("dot")


def _has_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def plot(
    obj: Any,
    path: str | os.PathLike,
    *,
    compare: Any = None,
    titles: Sequence[str] | None = None,
    expand: Any = False,
    collapse: Any = None,
    intermediates: bool = False,
    legend: bool = True,
    renderer: str = "auto",
    dpi: int = 100,
) -> Path:
    """Write a picture of the graph of ``obj`` to ``path``: ``.svg``, ``.png`` or ``.pdf``; or,
    for an ``.html`` path, the interactive explorer (:mod:`symgraph.explorer`).

    ``obj`` is a variable, a list of variables or a compiled function (its compiled graph, titled
    with its name and phase), or a list of compiled functions (``[train, predict]``), drawn side by
    side. Operations are boxes, variables ellipses: inputs blue, shared variables green, constants
    grey, outputs red with a thick border; random and phase-dependent operations (dropout) orange
    with a thick border; gradient operations lilac with a dashed border; updates are dashed green
    arrows back to their shared variable. Each box and ellipse shows names, dtypes and static
    shapes (``?`` for unknown lengths). The nodes one user-level call built (a dropout, a loss, an
    optimizer's update of one parameter, a ``batch_norm``) are one box named after the call.

    - ``expand``: ``False`` (the default) draws each group as one box; ``True`` draws every node,
      each group a labelled frame around its own; a list of group names opens those only
      (``expand=['adam W1']``). The explorer starts with every group closed, whatever ``expand``.
    - ``compare``: another object (or a list of them) drawn beside ``obj`` in the same picture,
      e.g. ``sg.plot(f_train, 'mlp.svg', compare=f_predict, titles=['train', 'predict'])``; what
      one graph holds and the other lacks has a thick pink outline (dashed: a group both hold,
      with different nodes inside), so that the masks, the batch statistics and the updates of a
      train function stand out beside its predict function.
    - ``titles``: one title per graph drawn (default: the function's name and phase).
    - ``collapse``: ``'gradient'``, a variable, a variable's name, or a list of them: each folds
      into one box (all gradient ops; everything a variable is computed from).
    - ``intermediates``: draw every unnamed intermediate variable as its own ellipse; by default
      its dtype and shape are the last line of the box of the op that computes it.
    - ``legend``: draw a legend of the colours.
    - ``renderer``: ``'graphviz'`` (the ``dot`` program: a layered drawing), ``'matplotlib'`` (a
      layered drawing of its own, no Graphviz needed), or ``'auto'``: Graphviz when ``dot`` is
      installed, else matplotlib. The explorer needs neither.
    - ``dpi``: the resolution of ``.png`` pictures, lowered for large graphs so that an image
      stays under 60 megapixels (prefer ``.svg`` or ``.pdf`` for graphs of hundreds of nodes).

    Returns the path written. Pictures need the viz extra (``pip install symgraph[viz]``) and, for
    the Graphviz renderer, the ``dot`` program (Debian/Ubuntu: ``apt-get install graphviz``).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS + (EXPLORER,):
        raise ValueError(
            f"sg.plot writes {', '.join(FORMATS)} pictures or an {EXPLORER} explorer; {str(path)!r} has another suffix"
        )
    if renderer not in RENDERERS:
        raise ValueError(f"renderer must be one of {RENDERERS}, not {renderer!r}")
    if suffix == EXPLORER:
        from .explorer import write_explorer

        return write_explorer(
            subjects_of(obj, compare), path, titles=titles, collapse=collapse, intermediates=intermediates
        )
    chosen = _choose_renderer(renderer)
    if chosen == "graphviz":
        from .viz_dot import run_dot, to_dot

        source = to_dot(obj, collapse, intermediates, compare, titles, legend, expand)
        data = run_dot(source, suffix[1:], dpi)
        path.write_bytes(data)
        return path
    from .viz_matplotlib import draw

    drawn = panels(obj, compare, titles, collapse, intermediates, expand)
    draw(drawn, path, legend=legend, dpi=dpi)
    return path


def _choose_renderer(renderer: str) -> str:
    if renderer in ("auto", "graphviz") and dot_program() is not None:
        return "graphviz"
    if renderer == "graphviz":
        raise ImportError(
            f"sg.plot(renderer='graphviz') needs Graphviz's `dot` program, which is not installed: {INSTALL_HINT}"
        )
    if _has_matplotlib():
        return "matplotlib"
    raise ImportError(f"sg.plot needs Graphviz's `dot` program or matplotlib, and neither is installed: {INSTALL_HINT}")
