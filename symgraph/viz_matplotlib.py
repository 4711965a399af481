"""The matplotlib renderer of ``sg.plot``: a layered drawing for machines without Graphviz.

The layout is :mod:`symgraph.viz_layout`'s (layers by longest path, a few sweeps against
crossings, open groups laid out on their own inside a labelled frame). Everything is measured in
points at full size, so that text fits its box; very large graphs are drawn smaller as a whole (a
vector format stays readable when zoomed).

Only ``matplotlib.figure.Figure`` is used, never ``pyplot``: no window, no global state.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from .viz import COLORS, GROUP_FRAME, MAX_PIXELS, ONLY_COLOR, UPDATE_COLOR, data_flow, legend_entries, style
from .viz_groups import container
from .viz_layout import FRAME_TITLE, NODE_GAP, Placed, frame_size, nested, place

FONT = 9.0  # points, at full size
CHAR = 0.62 * FONT  # a character's mean width in DejaVu Sans
LINE = 1.25 * FONT
PAD = 5.0
MARGIN = 16.0
TITLE_BAND = 30.0
LEGEND_ROW = 30.0
MAX_INCHES = 200.0  # matplotlib's raster limit is 2**16 pixels a side; keep well under it


# --- layout -------------------------------------------------------------------------------------------
def node_size(data: dict) -> tuple[float, float]:
    """The width and height of a node's box or ellipse, from its label."""
    lines = data["label"].split("\n")
    width = max(len(line) for line in lines) * CHAR + 2 * PAD
    height = len(lines) * LINE + 2 * PAD
    if style(data)[1] == "ellipse":
        return width * 1.2 + 6.0, height * 1.25
    return width, height


def layout(graph: nx.DiGraph) -> tuple[dict[str, Placed], dict[str, Placed], dict[tuple[str, str], list]]:
    """The position and size of every node and of every open group's frame, in points (``y``
    growing downwards), and the route of every edge that is not an update: a list of points from
    its source to its target."""
    flow = data_flow(graph)
    sizes = {key: node_size(data) for key, data in graph.nodes(data=True)}
    groups = graph.graph.get("groups", {})
    nested_layout = nested(
        flow,
        sizes,
        container=lambda key: container(graph, key),
        parent=lambda group: groups[group]["parent"],
        block_size=lambda group, block: frame_size(block),
    )
    placed, frames, routes = place(nested_layout, sizes)
    _spread_ports(placed, routes)
    return placed, frames, routes


def _spread_ports(placed: dict[str, Placed], routes: dict) -> None:
    """Where each edge leaves its source and enters its target: spread along the box in the order
    of the other ends, so that the edges into one node do not cross."""
    leaving: dict[str, list] = {}
    entering: dict[str, list] = {}
    for (source, target), points in routes.items():
        if points[0][1] == placed[source].y:  # side to side: no port to spread
            continue
        leaving.setdefault(source, []).append((points[1][0], (source, target)))
        entering.setdefault(target, []).append((points[-2][0], (source, target)))
    for ends, first in ((leaving, True), (entering, False)):
        for key, edges in ends.items():
            box = placed[key]
            edges.sort(key=lambda item: item[0])
            count = len(edges)
            step = min(box.width * 0.6 / max(count - 1, 1), 14.0)
            for number, (_, edge) in enumerate(edges):
                points = routes[edge]
                index = 0 if first else -1
                points[index] = (box.x + (number - (count - 1) / 2) * step, points[index][1])


def _bounds(placed: dict[str, Placed], frames: dict[str, Placed], routes: dict) -> tuple[float, float, float, float]:
    """``(left, right, top, bottom)`` of everything drawn, margins included (``y`` downwards)."""
    boxes = list(placed.values()) + list(frames.values())
    xs = [b.x - b.width / 2 for b in boxes] + [b.x + b.width / 2 for b in boxes]
    ys = [b.y - b.height / 2 for b in boxes] + [b.y + b.height / 2 for b in boxes]
    xs += [point[0] for route in routes.values() for point in route]
    if not xs:
        return 0.0, 1.0, 0.0, 1.0
    return min(xs) - MARGIN, max(xs) + MARGIN, min(ys) - MARGIN, max(ys) + MARGIN


# --- drawing ------------------------------------------------------------------------------------------
def _node_patches(graph: nx.DiGraph, placed: dict[str, Placed], scale: float) -> list:
    """The patch collections of the nodes: what only this graph holds gets an outer pink
    outline first, a closed group a second box behind it (a stack of cards), then each node."""
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Ellipse, FancyBboxPatch

    def shape(box: Placed, ellipse: bool, grow: float = 0.0, shift: float = 0.0) -> Any:
        if ellipse:
            return Ellipse((box.x + shift, box.y + shift), box.width + 2 * grow, box.height + 2 * grow)
        return FancyBboxPatch(
            (box.x - box.width / 2 - grow + shift, box.y - box.height / 2 - grow + shift),
            box.width + 2 * grow,
            box.height + 2 * grow,
            boxstyle=f"round,pad=0,rounding_size={min(5.0, box.height / 3) + grow}",
        )

    halos, halo_styles, cards, card_colours = [], [], [], []
    patches, faces, edges, widths, styles = [], [], [], [], []
    for key, data in graph.nodes(data=True):
        box = placed[key]
        colour, form, border = style(data)
        fill, line = COLORS[colour]
        if data.get("only"):
            halos.append(shape(box, form == "ellipse", grow=4.0))
            halo_styles.append((0, (4, 2)) if data["only"] == "changed" else "solid")
        if data.get("collapsed"):
            cards.append(shape(box, False, shift=3.0))
            card_colours.append((fill, line))
        patches.append(shape(box, form == "ellipse"))
        faces.append(fill)
        edges.append(line)
        thick = border == "bold" or data["kind"] == "output"
        widths.append((2.2 if thick else 0.9) * scale)
        styles.append((0, (4, 2)) if border == "dashed" else "solid")
    collections = []
    if halos:
        collections.append(
            PatchCollection(
                halos,
                facecolors="none",
                edgecolors=ONLY_COLOR,
                linewidths=2.6 * scale,
                linestyles=halo_styles,
                zorder=2,
            )
        )
    if cards:
        collections.append(
            PatchCollection(
                cards,
                facecolors=[fill for fill, _ in card_colours],
                edgecolors=[line for _, line in card_colours],
                linewidths=0.9 * scale,
                zorder=2,
            )
        )
    collections.append(
        PatchCollection(patches, facecolors=faces, edgecolors=edges, linewidths=widths, linestyles=styles, zorder=2)
    )
    return collections


def _frames(axes: Any, graph: nx.DiGraph, frames: dict[str, Placed], scale: float) -> None:
    """Each open group: a light rounded frame with its name at the top left."""
    from matplotlib.patches import FancyBboxPatch

    groups = graph.graph.get("groups", {})
    marks = graph.graph.get("only", {})
    fill, line = GROUP_FRAME
    for key, box in sorted(frames.items(), key=lambda item: len(_ancestry(groups, item[0]))):
        only = marks.get(key)
        axes.add_patch(
            FancyBboxPatch(
                (box.x - box.width / 2, box.y - box.height / 2),
                box.width,
                box.height,
                boxstyle="round,pad=0,rounding_size=6",
                facecolor=fill,
                edgecolor=ONLY_COLOR if only else line,
                linewidth=(2.4 if only else 0.9) * scale,
                linestyle=(0, (4, 2)) if only == "changed" else "solid",
                zorder=0.5,
            )
        )
        axes.text(
            box.x - box.width / 2 + 6,
            box.y - box.height / 2 + FRAME_TITLE / 2 + 2,
            groups[key]["name"],
            ha="left",
            va="center",
            fontsize=FONT * scale,
            color="#495057",
            zorder=0.6,
            parse_math=False,
        )


def _ancestry(groups: dict, key: str | None) -> list:
    chain = []
    while key is not None:
        chain.append(key)
        key = groups[key]["parent"]
    return chain


def _edges(graph: nx.DiGraph, placed: dict[str, Placed], routes: dict, scale: float, axes: Any) -> None:
    from matplotlib.collections import LineCollection, PolyCollection
    from matplotlib.patches import FancyArrowPatch

    lines, heads = [], []
    head_length, head_width = 6.0, 2.6
    for points in routes.values():
        route = np.array(points)
        direction = route[-1] - route[-2]
        unit = direction / (float(np.hypot(*direction)) or 1.0)
        normal = np.array([-unit[1], unit[0]])
        base = route[-1] - unit * head_length
        lines.append(np.vstack([route[:-1], base]))
        heads.append([route[-1], base + normal * head_width, base - normal * head_width])
    axes.add_collection(LineCollection(lines, colors="#495057", linewidths=0.8 * scale, zorder=1))
    axes.add_collection(PolyCollection(heads, facecolors="#495057", edgecolors="none", zorder=1))
    for source, target, data in graph.edges(data=True):
        if data.get("update"):
            a, b = placed[source], placed[target]
            start, end = (a.x - a.width / 2, a.y), (b.x - b.width / 2, b.y)
            # A gentle arc whatever the distance, so that long updates stay on the page.
            bend = min(0.3, 40.0 / (float(np.hypot(end[0] - start[0], end[1] - start[1])) or 1.0))
            axes.add_patch(
                FancyArrowPatch(
                    start,
                    end,
                    connectionstyle=f"arc3,rad={bend}",
                    arrowstyle="-|>",
                    mutation_scale=8 * scale,
                    color=UPDATE_COLOR,
                    linestyle=(0, (4, 3)),
                    linewidth=1.0 * scale,
                    zorder=1,
                )
            )


def _draw_nodes(axes: Any, graph: nx.DiGraph, placed: dict[str, Placed], scale: float) -> None:
    for collection in _node_patches(graph, placed, scale):
        axes.add_collection(collection)
    for key, data in graph.nodes(data=True):
        box = placed[key]
        size = FONT * (0.85 if data["kind"] == "constant" else 1.0) * scale
        axes.text(
            box.x,
            box.y,
            data["label"],
            ha="center",
            va="center",
            fontsize=size,
            linespacing=1.15,
            zorder=3,
            parse_math=False,
        )  # a name is text, even with dollar signs in it


def _legend(axes: Any, scale: float, compared: bool, width: float) -> float:
    """Draw the legend in rows from ``x = 0`` at most ``width`` wide; return its height."""
    graph = nx.DiGraph()
    placed = {}
    x, y, row_height = 0.0, 0.0, 0.0
    entries = legend_entries(compared)
    for key, data in entries:
        graph.add_node(key, **data)
        box_width, box_height = node_size(data)
        if x > 0 and x + box_width > width:
            x, y = 0.0, y + LEGEND_ROW
        placed[key] = Placed(x + box_width / 2, y, box_width, box_height)
        row_height = max(row_height, box_height)
        x += box_width + NODE_GAP
    if x > 0 and x + 80 > width:
        x, y = 0.0, y + LEGEND_ROW
    if axes is not None:
        _draw_nodes(axes, graph, placed, scale)
        axes.plot([x, x + 30], [y, y], color=UPDATE_COLOR, linestyle=(0, (4, 3)), linewidth=1.0 * scale)
        axes.text(x + 34, y, "update", fontsize=FONT * scale, va="center", color=UPDATE_COLOR)
    return y + LEGEND_ROW


def draw(panels: Sequence[tuple[nx.DiGraph, str]], path: Path, legend: bool = True, dpi: int = 100) -> None:
    """Draw each ``(graph, title)`` side by side into ``path`` (its suffix gives the format)."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    layouts = [layout(graph) for graph, _ in panels]
    bounds = [_bounds(placed, frames, routes) for placed, frames, routes in layouts]
    widths = [right - left for left, right, _, _ in bounds]
    heights = [bottom - top + TITLE_BAND for _, _, top, bottom in bounds]
    graphs_width = sum(widths) + MARGIN * (len(panels) - 1)
    compared = len(panels) > 1
    band = _legend(None, 1.0, compared, max(graphs_width, 400.0)) + MARGIN if legend else 0.0
    total_width = max(graphs_width, 400.0 if legend else 0.0)
    total_height = max(heights) + band
    scale = min(1.0, MAX_INCHES * 72 / total_width, MAX_INCHES * 72 / total_height)
    figure = Figure(figsize=(total_width * scale / 72, total_height * scale / 72))
    place = _Placer(figure, total_width, total_height)
    left_edge = 0.0
    for (graph, title), (placed, frames, routes), (left, right, top, bottom), height in zip(
        panels, layouts, bounds, heights
    ):
        axes = place(left_edge, total_height - height, right - left, height)  # top-aligned, legend below
        axes.set_xlim(left, right)
        axes.set_ylim(bottom, top - TITLE_BAND)  # inverted: y grows downwards, as data flows
        _frames(axes, graph, frames, scale)
        _edges(graph, placed, routes, scale, axes)
        _draw_nodes(axes, graph, placed, scale)
        axes.text(
            (left + right) / 2,
            top - TITLE_BAND / 2,
            title,
            ha="center",
            va="center",
            fontsize=13 * scale,
            parse_math=False,
        )
        left_edge += right - left + MARGIN
    if legend:
        axes = place(0.0, 0.0, total_width, band)
        axes.set_xlim(-MARGIN, total_width - MARGIN)
        axes.set_ylim(band - LEGEND_ROW / 2, -LEGEND_ROW / 2)
        _legend(axes, scale, compared, total_width - 2 * MARGIN)
    # SVG text stays text (searchable, selectable, smaller) rather than outlines.
    with rc_context({"svg.fonttype": "none"}):
        figure.savefig(path, format=path.suffix[1:].lower(), dpi=_dpi(dpi, figure))


class _Placer:
    """Axes placed in points of the unscaled drawing, so that one data unit is one point."""

    def __init__(self, figure: Any, width: float, height: float):
        self.figure, self.width, self.height = figure, width, height

    def __call__(self, left: float, bottom: float, width: float, height: float) -> Any:
        axes = self.figure.add_axes((left / self.width, bottom / self.height, width / self.width, height / self.height))
        axes.set_axis_off()
        return axes


def _dpi(dpi: int, figure: Any) -> float:
    """``dpi``, lowered if a raster image would be too large to hold."""
    width, height = figure.get_size_inches()
    return float(min(dpi, 60000 / max(width, height), (MAX_PIXELS / (width * height)) ** 0.5))
