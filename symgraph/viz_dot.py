"""Graphviz: a picture as DOT source (``sg.to_dot``) and drawn by the ``dot`` program.

The graphs come from :func:`symgraph.viz.panels` (groups folded, differences marked), the colours
and shapes from :func:`symgraph.viz.style`, as for the matplotlib renderer; this module only
writes them in Graphviz's language and runs ``dot`` on the result.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from typing import Any

import networkx as nx

from .viz import (
    COLORS,
    GROUP_FRAME,
    INSTALL_HINT,
    LARGE,
    MAX_PIXELS,
    ONLY_COLOR,
    UPDATE_COLOR,
    data_flow,
    dot_program,
    legend_entries,
    panels,
    style,
)
from .viz_groups import container

__all__ = ["run_dot", "to_dot"]


# --- DOT source --------------------------------------------------------------------------------------------
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
    expand: Any = False,
) -> str:
    """Graphviz DOT source for a picture of ``obj`` (the text ``plot`` hands to ``dot``).

    Takes the arguments of :func:`plot` but ``path``; needs no Graphviz. Node names are the keys of
    :func:`to_networkx`, prefixed ``g0_``, ``g1_``... for each graph drawn side by side; a closed
    group is a ``box3d`` node, an open one a cluster ``cluster_g0_group3`` labelled with its name.
    """
    drawn = panels(obj, compare, titles, collapse, intermediates, expand)
    lines = [
        "digraph symgraph {",
        '  graph [rankdir=TB, fontname="Helvetica", fontsize=14, nodesep=0.25, ranksep=0.35, newrank=true];',
        '  node [fontname="Helvetica", fontsize=10, margin="0.08,0.03", height=0.3];',
        '  edge [color="#495057", arrowsize=0.6];',
    ]
    large = sum(graph.number_of_nodes() for graph, _ in drawn) > LARGE
    if large:
        # Unbounded, Graphviz's placement of nodes (network simplex) takes minutes on a thousand
        # nodes; bounded, and with fewer passes against crossings, seconds.
        lines.append("  graph [nslimit=1, mclimit=0.3];")
    for number, (graph, title) in enumerate(drawn):
        # A label on an update edge costs dot seconds each (10 of them: 5 s on 150 nodes); the
        # legend says what the dashed green arrows are.
        updates = sum(1 for _, _, update in graph.edges(data="update") if update)
        lines += _dot_panel(
            graph, title, f"g{number}_", cluster=len(drawn) > 1, label_updates=not large and updates <= 3
        )
    if legend:
        # Beside a graph of many layers a column, which costs width only; beside a short one, rows.
        tall = max(_depth(graph) for graph, _ in drawn) > 12
        lines += _dot_legend(compared=len(drawn) > 1, columns=1 if tall else 3)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _depth(graph: nx.DiGraph) -> int:
    """How many layers a drawing of ``graph`` has (cycles made by folding groups counted once)."""
    condensed = nx.condensation(data_flow(graph))
    return nx.dag_longest_path_length(condensed) + 1 if condensed.number_of_nodes() else 0


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
    lines += _dot_nodes(graph, prefix, indent)
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


def _dot_nodes(graph: nx.DiGraph, prefix: str, indent: str) -> list[str]:
    """The node statements, those of each open group inside a cluster labelled with its name."""
    groups = graph.graph.get("groups", {})
    inside: dict[str | None, list[str]] = {}
    for key in graph.nodes:
        inside.setdefault(container(graph, key), []).append(key)
    children: dict[str | None, list[str]] = {}
    for key in list(inside):
        while key is not None:  # every open group on the way holds a cluster
            parent = groups[key]["parent"]
            if key not in children.setdefault(parent, []):
                children[parent].append(key)
            key = parent
    lines: list[str] = []
    # An explicit stack (groups nest shallowly, but nothing here recurses).
    stack: list[tuple[str | None, int, bool]] = [(None, 0, False)]
    while stack:
        group, depth, closing = stack.pop()
        pad = indent + "  " * depth
        if closing:
            lines.append(pad + "}")
            continue
        if group is not None:
            info = groups[group]
            lines.append(f"{pad}subgraph {quote('cluster_' + prefix + group)} {{")
            lines.append(f"{pad}  {_dot_cluster_attributes(info, graph.graph.get('only', {}).get(group))}")
            stack.append((group, depth, True))
        inner = pad + ("  " if group is not None else "")
        for key in inside.get(group, []):
            lines.append(f"{inner}{quote(prefix + key)} [{_dot_node_attributes(graph.nodes[key])}];")
        for child in reversed(children.get(group, [])):
            stack.append((child, depth + (1 if group is not None else 0), False))
    return lines


def _dot_cluster_attributes(info: dict, only: str | None) -> str:
    fill, line = GROUP_FRAME
    styles = "rounded,filled" + (",dashed" if only == "changed" else "")
    border = f'color="{ONLY_COLOR}"; penwidth=2.5;' if only else f'color="{line}";'
    tooltip = f" tooltip={quote('built at ' + info['source'])};" if info.get("source") else ""
    label = f"label={quote(info['name'])}; labeljust=l; fontsize=11;"
    return f'{label} style="{styles}"; fillcolor="{fill}"; {border}{tooltip}'


def _dot_node_attributes(data: dict, fontsize: float | None = None) -> str:
    colour, shape, border = style(data)
    fill, line = COLORS[colour]
    styles = ["filled"] + (["rounded"] if shape == "box" else []) + (["dashed"] if border == "dashed" else [])
    width = 2.5 if border == "bold" or data["kind"] == "output" else 1
    only = data.get("only")
    if only:  # what the graph beside lacks: a pink outline, dashed for a group holding other nodes
        line, width = ONLY_COLOR, 3.5
        styles = [style for style in styles if style != "dashed"] + (["dashed"] if only == "changed" else [])
    attributes = [
        f"label={quote(data['label'])}",
        f"shape={'box3d' if data.get('collapsed') else shape}",
        f'style="{",".join(styles)}"',
        f'fillcolor="{fill}"',
        f'color="{line}"',
        f"penwidth={width}",
    ]
    if only:
        attributes.append("peripheries=2")
    if data.get("source"):
        attributes.append(f"tooltip={quote('built at ' + data['source'])}")
    if fontsize is None and data["kind"] == "constant":
        fontsize = 8
    if fontsize is not None:
        attributes.append(f"fontsize={fontsize}")
    return ", ".join(attributes)


def _dot_legend(compared: bool = False, columns: int = 3) -> list[str]:
    """The legend: a small grid of sample nodes, ``columns`` a row, so that it stays narrow."""
    lines = ["  subgraph cluster_legend {", '    label="legend"; fontsize=10; style=rounded; color="#ced4da";']
    entries = legend_entries(compared)
    for key, data in entries:
        lines.append(f"    {quote('legend_' + key)} [{_dot_node_attributes(data, fontsize=9)}];")
    # Updates as a word in their colour: a labelled edge inside the legend costs dot minutes on
    # large graphs.
    lines.append(
        f'    "legend_update" [label="- - update ->", shape=plaintext, fontcolor="{UPDATE_COLOR}", fontsize=9];'
    )
    names = [quote("legend_" + key) for key, _ in entries] + ['"legend_update"']
    rows = [names[start : start + columns] for start in range(0, len(names), columns)]
    for row in rows:
        lines.append("    {rank=same; " + " ".join(row) + "}")
        if len(row) > 1:
            lines.append(f"    {' -> '.join(row)} [style=invis];")
    lines.append(f"    {' -> '.join(row[0] for row in rows)} [style=invis];")
    lines.append("  }")
    return lines


# --- the dot program ----------------------------------------------------------------------------
def run_dot(source: str, fmt: str, dpi: float) -> bytes:
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
