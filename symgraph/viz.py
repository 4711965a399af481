"""Pictures of graphs: ``sg.to_networkx``, ``sg.to_dot`` and ``sg.plot``.

``to_networkx`` is the model every picture is drawn from: one node per variable and per operation,
edges in the direction data flows, and attributes that say what each node is. ``to_dot`` writes it
as Graphviz source (no Graphviz needed), and ``plot`` draws it, with Graphviz's ``dot`` program when
it is installed and with matplotlib otherwise (:mod:`symgraph.viz_matplotlib`).

Both renderers draw the same things the same way: operations as boxes, variables as ellipses;
inputs blue, shared variables green, constants grey, outputs red; random and phase-dependent
operations (dropout) orange with a thick border; gradient operations lilac with a dashed border;
updates of shared variables as dashed green arrows back to them.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import networkx as nx

from .graph.basic import Apply, Variable
from .graph.traversal import postorder
from .printing import GraphSubject, graph_subject, node_marks, op_text, type_text

__all__ = ["plot", "to_dot", "to_networkx"]

FORMATS = (".svg", ".png", ".pdf")
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
LEGEND = (
    ("input", "input"),
    ("shared", "shared"),
    ("constant", "constant"),
    ("output", "output"),
    ("op", "operation"),
    ("gradient", "gradient op"),
    ("random", "random / phase-dependent op"),
)


# --- the graph as networkx --------------------------------------------------------------------------
def to_networkx(obj: Any, collapse: Any = None) -> nx.DiGraph:
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

    The updates of a compiled function are edges from the new value to the shared variable with
    ``update=True``: they close cycles (the value is read at the next call), so drop them for a
    DAG: ``nx.subgraph_view(g, filter_edge=lambda u, v: not g.edges[u, v]['update'])``.

    ``collapse`` folds parts of the graph into one box each (an op node with ``op='collapsed'``
    and ``collapsed`` = the number of ops it holds): ``'gradient'`` folds every gradient op (and
    the variables only they use); a variable, or the name of one, folds every op it is computed
    from; a list folds several, each into its own box.
    """
    graph, keys = _build(graph_subject(obj))
    if collapse is not None:
        _collapse(graph, collapse, keys)
    return graph


def _build(subject: GraphSubject) -> tuple[nx.DiGraph, dict[int, str]]:
    """The full graph, and the key of each variable (by ``id``), for ``collapse``."""
    graph = nx.DiGraph(title=subject.title, phase=subject.phase)
    keys: dict[int, str] = {}
    # What unnamed variables are called in pictures: "output 0", "new W1" (an update's value).
    roles = {id(value): f"new {shared.label()}" for shared, value in subject.updates}
    roles.update((id(variable), f"output {n}") for n, variable in enumerate(subject.outputs))
    outputs = {id(variable) for variable in subject.outputs}
    counts = {"v": 0, "op": 0}

    def add_variable(variable: Variable) -> str:
        key = keys.get(id(variable))
        if key is None:
            key = keys[id(variable)] = f"v{counts['v']}"
            counts["v"] += 1
            graph.add_node(key, **_variable_attributes(variable, id(variable) in outputs, roles.get(id(variable))))
        return key

    for variable in subject.inputs:
        add_variable(variable)
    computed = subject.outputs + [value for _, value in subject.updates]
    for node in postorder(computed):
        op_key = f"op{counts['op']}"
        counts["op"] += 1
        graph.add_node(op_key, **_op_attributes(node))
        for position, variable in enumerate(node.inputs):
            graph.add_edge(add_variable(variable), op_key, position=position, update=False)
        for index, variable in enumerate(node.outputs):
            graph.add_edge(op_key, add_variable(variable), index=index, update=False)
    for variable in subject.outputs:
        add_variable(variable)
    for shared, value in subject.updates:
        graph.add_edge(add_variable(value), add_variable(shared), update=True)
    return graph, keys


def _variable_attributes(variable: Variable, is_output: bool, role: str | None) -> dict:
    kind = variable.kind
    if is_output and kind == "intermediate":
        kind = "output"
    tensor = hasattr(variable.type, "shape")
    head = variable.label() if variable.owner is None or variable.name else role
    type_line = type_text(variable)
    return {
        "kind": kind,
        "label": f"{head}\n{type_line}" if head else type_line,
        "name": variable.name,
        "dtype": variable.type.dtype if tensor else None,
        "shape": tuple(variable.type.shape) if tensor else None,
        "gradient": bool(variable.owner is not None and variable.owner.gradient),
    }


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
        if len(producers) != 1 or drawn.out_degree(producers[0]) != 1:
            continue  # several outputs: each keeps its own ellipse, so they stay told apart
        if any(drawn.edges[key, target].get("update") for target in drawn.successors(key)):
            continue
        (producer,) = producers
        type_line = data["label"].rsplit("\n", 1)[-1]
        drawn.nodes[producer]["label"] += f"\n{type_line}"
        for target in drawn.successors(key):
            drawn.add_edge(producer, target, **drawn.edges[key, target])
        drawn.remove_node(key)
    return drawn


def drawable(obj: Any, collapse: Any = None, intermediates: bool = False) -> nx.DiGraph:
    """The graph as pictures draw it: ``to_networkx(obj, collapse)``, with unnamed intermediate
    variables folded into their ops unless ``intermediates``."""
    graph = to_networkx(obj, collapse)
    return graph if intermediates else _hide_intermediates(graph)


def style(data: dict) -> tuple[str, str, str]:
    """``(colour key, shape, border)`` of a node: shape ``'box'`` or ``'ellipse'``, border
    ``'solid'``, ``'dashed'`` (gradient) or ``'bold'`` (random or phase-dependent)."""
    if data["kind"] != "op":
        return data["kind"], "ellipse", "dashed" if data.get("gradient") and data["kind"] == "intermediate" else "solid"
    if data["stochastic"] or data["phase_dependent"]:
        return "random", "box", "bold"
    if data.get("collapsed"):
        return "collapsed", "box", "dashed" if data["gradient"] else "solid"
    if data["gradient"]:
        return "gradient", "box", "dashed"
    return "op", "box", "solid"


# --- DOT --------------------------------------------------------------------------------------------
def quote(text: Any) -> str:
    """``text`` as a double-quoted DOT string: backslashes and quotes escaped, newlines as ``\\n``.

    Braces, angle brackets and the like need no escape inside a quoted string of a plain label.
    """
    text = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r", "").replace("\n", "\\n") + '"'


def to_dot(
    obj: Any,
    collapse: Any = None,
    intermediates: bool = False,
    compare: Any = None,
    titles: Sequence[str] | None = None,
    legend: bool = True,
) -> str:
    """Graphviz DOT source for a picture of ``obj`` (the text ``plot`` hands to ``dot``).

    Takes the arguments of :func:`plot` but ``path``; needs no Graphviz. Node names are the keys of
    :func:`to_networkx`, prefixed ``g0_``, ``g1_``... for each object drawn side by side.
    """
    panels = _panels(obj, compare, titles, collapse, intermediates)
    lines = [
        "digraph symgraph {",
        '  graph [rankdir=TB, fontname="Helvetica", fontsize=14, nodesep=0.25, ranksep=0.35, newrank=true];',
        '  node [fontname="Helvetica", fontsize=10, margin="0.08,0.03", height=0.3];',
        '  edge [color="#495057", arrowsize=0.6];',
    ]
    large = sum(graph.number_of_nodes() for graph, _ in panels) > LARGE
    if large:
        # Unbounded, Graphviz's placement of nodes (network simplex) takes minutes on a thousand
        # nodes; bounded, and with fewer passes against crossings, seconds.
        lines.append("  graph [nslimit=1, mclimit=0.3];")
    for number, (graph, title) in enumerate(panels):
        lines += _dot_panel(graph, title, f"g{number}_", cluster=len(panels) > 1, label_updates=not large)
    if legend:
        lines += _dot_legend()
    lines.append("}")
    return "\n".join(lines) + "\n"


def _panels(
    obj: Any, compare: Any, titles: Sequence[str] | None, collapse: Any, intermediates: bool
) -> list[tuple[nx.DiGraph, str]]:
    objects = [obj]
    if compare is not None:
        objects += list(compare) if _is_many(compare) else [compare]
    subjects = [graph_subject(item) for item in objects]
    if titles is not None and len(titles) != len(subjects):
        raise ValueError(f"titles gives {len(titles)} titles for {len(subjects)} graphs")
    names = list(titles) if titles is not None else [subject.title for subject in subjects]
    return [(drawable(subject, collapse, intermediates), name) for subject, name in zip(subjects, names)]


def _is_many(compare: Any) -> bool:
    """A list of things to compare with, rather than one list of variables."""
    return isinstance(compare, (list, tuple)) and not all(isinstance(item, Variable) for item in compare)


def _dot_panel(graph: nx.DiGraph, title: str, prefix: str, cluster: bool, label_updates: bool) -> list[str]:
    indent = "    " if cluster else "  "
    lines = []
    if cluster:
        lines += [
            f"  subgraph cluster_{prefix.rstrip('_')} {{",
            f'    label={quote(title)}; labelloc=t; fontsize=16; style=rounded; color="#adb5bd";',
        ]
    elif title:
        lines.append(f"  label={quote(title)}; labelloc=t;")
    for key, data in graph.nodes(data=True):
        lines.append(f"{indent}{quote(prefix + key)} [{_dot_node_attributes(data)}];")
    for source, target, data in graph.edges(data=True):
        extra = ""
        if data.get("update"):
            # constraint=false: an update closes a cycle, which must not bend the layers. Labels on
            # these long edges cost dot minutes on large graphs: there the legend says it.
            label = f'fontcolor="{UPDATE_COLOR}", label="update", fontsize=9, ' if label_updates else ""
            extra = f' [style=dashed, color="{UPDATE_COLOR}", {label}constraint=false]'
        lines.append(f"{indent}{quote(prefix + source)} -> {quote(prefix + target)}{extra};")
    if cluster:
        lines.append("  }")
    return lines


def _dot_node_attributes(data: dict, fontsize: float | None = None) -> str:
    colour, shape, border = style(data)
    fill, line = COLORS[colour]
    styles = ["filled"] + (["rounded"] if shape == "box" else []) + (["dashed"] if border == "dashed" else [])
    attributes = [
        f"label={quote(data['label'])}",
        f"shape={'box3d' if data.get('collapsed') else shape}",
        f'style="{",".join(styles)}"',
        f'fillcolor="{fill}"',
        f'color="{line}"',
        f"penwidth={2.5 if border == 'bold' or data['kind'] == 'output' else 1}",
    ]
    if data.get("source"):
        attributes.append(f"tooltip={quote('built at ' + data['source'])}")
    if fontsize is None and data["kind"] == "constant":
        fontsize = 8
    if fontsize is not None:
        attributes.append(f"fontsize={fontsize}")
    return ", ".join(attributes)


def _dot_legend() -> list[str]:
    lines = ["  subgraph cluster_legend {", '    label="legend"; fontsize=10; style=rounded; color="#ced4da";']
    for colour, text in LEGEND:
        kind = "op" if colour in ("op", "gradient", "random") else colour
        data = {
            "kind": kind,
            "label": text,
            "stochastic": colour == "random",
            "phase_dependent": False,
            "gradient": colour == "gradient",
        }
        lines.append(f"    {quote('legend_' + colour)} [{_dot_node_attributes(data, fontsize=9)}];")
    # Updates as a word in their colour: a labelled edge inside the legend's row costs dot minutes
    # on large graphs.
    lines.append(
        f'    "legend_update" [label="- - update ->", shape=plaintext, fontcolor="{UPDATE_COLOR}", fontsize=9];'
    )
    row = [quote("legend_" + colour) for colour, _ in LEGEND] + ['"legend_update"']
    lines += ["    {rank=same; " + " ".join(row) + "}", f"    {' -> '.join(row)} [style=invis];", "  }"]
    return lines


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
    collapse: Any = None,
    intermediates: bool = False,
    legend: bool = True,
    renderer: str = "auto",
    dpi: int = 100,
) -> Path:
    """Write a picture of the graph of ``obj`` to ``path``: ``.svg``, ``.png`` or ``.pdf``.

    ``obj`` is a variable, a list of variables or a compiled function (its compiled graph, titled
    with its name and phase). Operations are boxes, variables ellipses: inputs blue, shared
    variables green, constants grey, outputs red with a thick border; random and phase-dependent
    operations (dropout) orange with a thick border; gradient operations lilac with a dashed
    border; updates are dashed green arrows back to their shared variable. Each box and ellipse
    shows names, dtypes and static shapes (``?`` for unknown lengths).

    - ``compare``: another object (or a list of them) drawn beside ``obj`` in the same picture,
      e.g. ``sg.plot(f_train, 'mlp.svg', compare=f_predict, titles=['train', 'predict'])`` shows
      the dropout nodes of the train function and their absence from the predict one.
    - ``titles``: one title per graph drawn (default: the function's name and phase).
    - ``collapse``: ``'gradient'``, a variable, a variable's name, or a list of them: each folds
      into one box (all gradient ops; everything a variable is computed from). Makes large graphs
      readable.
    - ``intermediates``: draw every unnamed intermediate variable as its own ellipse; by default
      its dtype and shape are the last line of the box of the op that computes it.
    - ``legend``: draw a legend of the colours.
    - ``renderer``: ``'graphviz'`` (the ``dot`` program: a layered drawing), ``'matplotlib'`` (a
      layered drawing of its own, no Graphviz needed), or ``'auto'``: Graphviz when ``dot`` is
      installed, else matplotlib.
    - ``dpi``: the resolution of ``.png`` pictures, lowered for large graphs so that an image
      stays under 60 megapixels (prefer ``.svg`` or ``.pdf`` for graphs of hundreds of nodes).

    Returns the path written. Needs the viz extra (``pip install symgraph[viz]``) and, for the
    Graphviz renderer, the ``dot`` program (Debian/Ubuntu: ``apt-get install graphviz``).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"sg.plot writes {', '.join(FORMATS)} files; {str(path)!r} has another suffix")
    if renderer not in RENDERERS:
        raise ValueError(f"renderer must be one of {RENDERERS}, not {renderer!r}")
    chosen = _choose_renderer(renderer)
    if chosen == "graphviz":
        source = to_dot(obj, collapse, intermediates, compare, titles, legend)
        data = _run_dot(source, suffix[1:], dpi)
        path.write_bytes(data)
        return path
    from .viz_matplotlib import draw

    panels = _panels(obj, compare, titles, collapse, intermediates)
    draw(panels, path, legend=legend, dpi=dpi)
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


def _run_dot(source: str, fmt: str, dpi: float) -> bytes:
    """The picture Graphviz draws from ``source``.

    A PNG is laid out first and drawn second, at ``dpi`` lowered so that the image stays under
    ``MAX_PIXELS`` (a graph of a thousand nodes is metres long at full resolution).
    """
    program = dot_program()
    if program is None:
        raise ImportError(f"Graphviz's `dot` program is not installed: {INSTALL_HINT}")
    if fmt != "png":
        return _call(program, [f"-T{fmt}"], source, fmt)
    laid_out = _call(program, ["-Tdot"], source, fmt).decode("utf-8")
    match = re.search(r'\bbb="([-\d.e]+),([-\d.e]+),([-\d.e]+),([-\d.e]+)"', laid_out)
    if match:
        left, bottom, right, top = (float(value) for value in match.groups())
        inches = max(right - left, 1.0) / 72 * max(top - bottom, 1.0) / 72
        dpi = min(dpi, (MAX_PIXELS / inches) ** 0.5)
    # neato -n2 draws nodes and edges where dot put them.
    return _call(program, ["-Kneato", "-n2", "-Tpng", f"-Gdpi={dpi:.1f}"], laid_out, fmt)


def _call(program: str, arguments: list[str], source: str, fmt: str) -> bytes:
    result = subprocess.run([program, *arguments], input=source.encode("utf-8"), capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        message = result.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"Graphviz's dot could not draw the graph as {fmt}: {message}")
    return result.stdout
