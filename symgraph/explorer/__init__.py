"""The graph explorer: ``sg.plot(obj, 'graph.html')`` writes one self-contained HTML page.

The page holds its script, its styles and the graph's data inline (no network, no external file,
font or library): plain JavaScript written for symgraph (``assets/explorer.js``), which draws what
:mod:`symgraph.explorer.model` laid out in Python. Groups (the nodes a user-level call built) start
closed and open or close on a click; a click on a node shows its op, name, dtype, shape, whether
``sg.grad`` made it, the user's line that built it, and its time when the graph carries times;
a search box finds nodes by name or op; the view pans and zooms. Several graphs (a train and a
predict function) are shown side by side, what only one holds outlined.

In Jupyter, variables and compiled functions show the explorer inline (:func:`repr_html`): in a
sandboxed ``<iframe srcdoc=...>``, so that several explorers on one page never clash.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import networkx as nx

from ..graph.basic import Variable
from ..printing import graph_subject
from ..viz import COLORS, LEGEND, ONLY_COLOR, UPDATE_COLOR, drawable, subjects_of, to_networkx
from ..viz_groups import differences
from .model import panel

__all__ = ["explorer_html", "repr_html", "write_explorer"]

INLINE_HEIGHT = 520  # px, of the explorer in a notebook


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def _graph(obj: Any, collapse: Any, intermediates: bool) -> tuple[nx.DiGraph, str]:
    """The graph to explore (every group open; the page closes them) and its title."""
    if isinstance(obj, nx.DiGraph):
        graph = to_networkx(obj)
        return drawable(graph, intermediates=intermediates, expand=True), graph.graph.get("title", "")
    subject = graph_subject(obj)
    return drawable(subject, collapse, intermediates, expand=True), subject.title


def explorer_html(
    objects: Sequence[Any],
    titles: Sequence[str] | None = None,
    collapse: Any = None,
    intermediates: bool = False,
) -> str:
    """The explorer's page for ``objects`` (graphs side by side: variables, lists of variables,
    compiled functions, or graphs from ``sg.to_networkx``, whose op nodes may carry ``time``, in
    seconds, to show and shade by)."""
    objects = list(objects)
    if not objects:
        raise ValueError("the explorer needs at least one graph")
    if titles is not None and len(titles) != len(objects):
        raise ValueError(f"titles gives {len(titles)} titles for {len(objects)} graphs")
    graphs = [_graph(obj, collapse, intermediates) for obj in objects]
    names = list(titles) if titles is not None else [title or f"graph {n + 1}" for n, (_, title) in enumerate(graphs)]
    marks = differences([graph for graph, _ in graphs]) if len(graphs) > 1 else [{}]
    data = {
        "panels": [panel(graph, name, found) for (graph, _), name, found in zip(graphs, names, marks)],
        # The colours of sg.plot's pictures, for the overview a large graph is drawn as.
        "colors": {"nodes": COLORS, "line": "#495057", "update": UPDATE_COLOR, "only": ONLY_COLOR, "match": "#f59f00"},
    }
    title = " | ".join(names)
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return _PAGE.format(
        title=html.escape(title),
        css=_asset("explorer.css"),
        legend=_legend(),
        data=payload,
        script=_asset("explorer.js"),
    )


def write_explorer(
    objects: Sequence[Any],
    path: str | os.PathLike,
    titles: Sequence[str] | None = None,
    collapse: Any = None,
    intermediates: bool = False,
) -> Path:
    """Write :func:`explorer_html` of ``objects`` to ``path``; return the path."""
    path = Path(path)
    path.write_text(explorer_html(objects, titles, collapse, intermediates), encoding="utf-8")
    return path


def repr_html(obj: Any) -> str | None:
    """The explorer of ``obj`` (a variable or a compiled function, or several side by side) for a
    notebook: a sandboxed iframe (scripts run, but cannot reach the notebook or other frames).
    ``None`` (so that Jupyter shows the plain repr) for an input, a constant or a shared variable,
    which are no graph to explore."""
    if isinstance(obj, Variable) and obj.owner is None:
        return None
    try:
        page = explorer_html(subjects_of(obj))
    except Exception as error:  # a notebook shows the plain repr rather than a traceback
        return f"<pre>symgraph explorer unavailable: {html.escape(f'{type(error).__name__}: {error}')}</pre>"
    return (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" sandbox="allow-scripts" '
        f'style="width: 100%; height: {INLINE_HEIGHT}px; border: 1px solid #dee2e6; border-radius: 6px" '
        'title="symgraph graph explorer"></iframe>'
    )


def _legend() -> str:
    items = []
    for colour, text in LEGEND:
        fill, line = COLORS[colour]
        round_ = " sg-round" if colour in ("input", "shared", "constant", "output") else ""
        items.append(
            f'<li><span class="sg-swatch{round_}" style="background:{fill};border-color:{line}"></span>'
            f"{html.escape(text)}</li>"
        )
    items.append('<li><span class="sg-swatch sg-line"></span>update</li>')
    items.append(
        f'<li class="sg-legend-only"><span class="sg-swatch" style="border:3px solid {ONLY_COLOR}"></span>'
        "only in this graph</li>"
    )
    items.append(
        '<li class="sg-legend-time"><span class="sg-swatch" style="background:linear-gradient(90deg,#fff,#e03131);'
        'border-color:#adb5bd"></span>time (darker: more)</li>'
    )
    return "<ul>" + "".join(items) + "</ul>"


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="symgraph explorer">
<title>{title} - symgraph explorer</title>
<style>
{css}
</style>
</head>
<body>
<header class="sg-bar">
<h1 title="{title}">{title}</h1>
<input type="search" placeholder="search a name or an op (press /)" aria-label="search nodes by name or op">
<span class="sg-status" aria-live="polite"></span>
<button type="button" data-sg-action="fit">fit</button>
<button type="button" data-sg-action="open-all">open all</button>
<button type="button" data-sg-action="close-all">close all</button>
<span class="sg-help">click a box to open its group, an open group's title to close it;
drag to pan, wheel to zoom</span>
</header>
<main class="sg-main">
<div class="sg-panels"></div>
<aside class="sg-side">
<div data-sg-details><p>Click a node to see its op, name, dtype, shape and the line of code that built it.
Boxes drawn as a stack are groups: the nodes one call built (a dropout, a loss, an optimizer's
update of a parameter, a batch norm). Click one to open it.</p></div>
<div class="sg-legend">{legend}</div>
</aside>
</main>
<script type="application/json" id="sg-data">{data}</script>
<script>
{script}
</script>
</body>
</html>
"""
