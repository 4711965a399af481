"""The matplotlib renderer of ``sg.plot``: a layered drawing for machines without Graphviz.

The layout is a small Sugiyama-style one: nodes go in layers by the longest path from the roots
(roots just above their first user), a few sweeps order each layer by the mean position of its
neighbours (fewer crossings), and each node is then placed as near that mean as the boxes beside
it allow. Everything is measured in points at full size, so that text fits its box; very large
graphs are drawn smaller as a whole (a vector format stays readable when zoomed).

Only ``matplotlib.figure.Figure`` is used, never ``pyplot``: no window, no global state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from .viz import COLORS, LEGEND, MAX_PIXELS, UPDATE_COLOR, data_flow, style

FONT = 9.0  # points, at full size
CHAR = 0.62 * FONT  # a character's mean width in DejaVu Sans
LINE = 1.25 * FONT
PAD = 5.0
LAYER_GAP = 24.0
NODE_GAP = 10.0
MARGIN = 16.0
TITLE_BAND = 30.0
LEGEND_BAND = 40.0
SWEEPS = 4
BALANCING_PASSES = 3
WAYPOINT_WIDTH = 4.0
MAX_INCHES = 200.0  # matplotlib's raster limit is 2**16 pixels a side; keep well under it


@dataclass
class Placed:
    """A node's centre and size, in points."""

    x: float
    y: float
    width: float
    height: float


# --- layout -------------------------------------------------------------------------------------------
def node_size(data: dict) -> tuple[float, float]:
    """The width and height of a node's box or ellipse, from its label."""
    lines = data["label"].split("\n")
    width = max(len(line) for line in lines) * CHAR + 2 * PAD
    height = len(lines) * LINE + 2 * PAD
    if style(data)[1] == "ellipse":
        return width * 1.2 + 6.0, height * 1.25
    return width, height


def _ranks(flow: nx.DiGraph) -> dict[str, int]:
    """Each node's layer: after all its inputs (cycles made by collapsing share a layer)."""
    condensed = nx.condensation(flow)
    component = condensed.graph["mapping"]
    depth = {}
    for level, generation in enumerate(nx.topological_generations(condensed)):
        for member in generation:
            depth[member] = level
    rank = {key: depth[component[key]] for key in flow}
    # A root sits right above its first user, not at the very top (a learning rate used last).
    for key in flow:
        if flow.in_degree(key) == 0 and flow.out_degree(key) > 0:
            rank[key] = max(0, min(rank[user] for user in flow.successors(key)) - 1)
    return rank


def _with_waypoints(flow: nx.DiGraph, rank: dict[str, int]) -> tuple[nx.DiGraph, dict[tuple, list]]:
    """The graph where an edge spanning several layers runs through a waypoint in each layer it
    crosses, so that the ordering keeps it clear of the boxes; and each such edge's waypoints."""
    layered = nx.DiGraph()
    layered.add_nodes_from(flow)
    waypoints: dict[tuple, list] = {}
    for source, target in flow.edges:
        span = rank[target] - rank[source]
        if span <= 1:
            layered.add_edge(source, target)
            continue
        chain = [("waypoint", source, target, step) for step in range(1, span)]
        for step, point in enumerate(chain, start=1):
            rank[point] = rank[source] + step
        nx.add_path(layered, [source, *chain, target])
        waypoints[(source, target)] = chain
    return layered, waypoints


def _place_layer(layer: list, wanted: dict, widths: dict) -> dict:
    """Centres as near ``wanted`` as possible, boxes kept apart, in the given order.

    The mean of a left-to-right pass (each pushed right of its neighbour) and a right-to-left
    pass (each pushed left) keeps every gap, and balances the push on both sides.
    """
    n = len(layer)
    gaps = [(widths[layer[i - 1]] + widths[layer[i]]) / 2 + NODE_GAP for i in range(1, n)]
    left = [wanted[layer[0]]]
    for i in range(1, n):
        left.append(max(wanted[layer[i]], left[-1] + gaps[i - 1]))
    right = [wanted[layer[-1]]]
    for i in range(n - 2, -1, -1):
        right.append(min(wanted[layer[i]], right[-1] - gaps[i]))
    right.reverse()
    return {key: (a + b) / 2 for key, a, b in zip(layer, left, right)}


def _mean_of(neighbours: list, x: dict, default: float) -> float:
    return sum(x[key] for key in neighbours) / len(neighbours) if neighbours else default


def _order(layered: nx.DiGraph, layers: list[list], widths: dict) -> dict:
    """The x of every node and waypoint, after a few sweeps that order each layer by the mean
    position of its neighbours in the layer above (going down) or below (going up)."""
    x: dict = {}
    for layer in layers:
        x.update(_place_layer(layer, dict.fromkeys(layer, 0.0), widths))
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        for layer in layers if downward else reversed(layers):
            near = layered.predecessors if downward else layered.successors
            wanted = {key: _mean_of(list(near(key)), x, x[key]) for key in layer}
            layer.sort(key=lambda key: (wanted[key], x[key]))
            x.update(_place_layer(layer, wanted, widths))
    # Last passes pull each node towards all its neighbours, above and below (straightening edges).
    for _ in range(BALANCING_PASSES):
        for layer in layers:
            wanted = {key: _mean_of([*layered.predecessors(key), *layered.successors(key)], x, x[key]) for key in layer}
            x.update(_place_layer(layer, wanted, widths))
    return x


def layout(graph: nx.DiGraph) -> tuple[dict[str, Placed], dict[tuple[str, str], list[tuple[float, float]]]]:
    """The position and size of every node, in points (the first layer at ``y = 0``), and the
    route of every edge that is not an update: a list of points from its source to its target."""
    flow = data_flow(graph)
    sizes = {key: node_size(data) for key, data in graph.nodes(data=True)}
    rank = _ranks(flow)
    layered, waypoints = _with_waypoints(flow, rank)
    widths = {key: sizes[key][0] if key in sizes else WAYPOINT_WIDTH for key in layered}
    layers: list[list] = [[] for _ in range(max(rank.values(), default=-1) + 1)]
    for key in layered:  # insertion order: the order of first use, a good start
        layers[rank[key]].append(key)
    x = _order(layered, layers, widths)
    placed: dict[str, Placed] = {}
    bands: list[tuple[float, float]] = []
    top = 0.0
    for layer in layers:
        height = max((sizes[key][1] for key in layer if key in sizes), default=LINE)
        bands.append((top, top - height))
        for key in layer:
            if key in sizes:
                placed[key] = Placed(x[key], top - height / 2, *sizes[key])
        top -= height + LAYER_GAP
    return placed, _routes(flow, placed, waypoints, x, rank, bands)


def _routes(flow: nx.DiGraph, placed: dict[str, Placed], waypoints: dict, x: dict, rank: dict, bands: list) -> dict:
    """Each edge as points: out of the bottom of its source, through its waypoints (straight down
    across the layers they stand in), into the top of its target; ports spread along the box."""
    routes = {}
    out_port, in_port = _ports(flow, placed, waypoints, x)
    for source, target in flow.edges:
        a, b = placed[source], placed[target]
        if rank[target] <= rank[source]:  # inside a cycle made by collapsing: side to side
            routes[(source, target)] = [(a.x + a.width / 2, a.y), (b.x + b.width / 2, b.y)]
            continue
        points = [(out_port[(source, target)], a.y - a.height / 2)]
        for point in waypoints.get((source, target), []):
            top, bottom = bands[rank[point]]
            points += [(x[point], top), (x[point], bottom)]
        points.append((in_port[(source, target)], b.y + b.height / 2))
        routes[(source, target)] = points
    return routes


def _ports(flow: nx.DiGraph, placed: dict[str, Placed], waypoints: dict, x: dict) -> tuple[dict, dict]:
    """Where each edge leaves its source and enters its target, spread along the box in the order
    of the other ends, so that the edges into one node do not cross."""

    def near_end(edge: tuple, at_source: bool) -> float:
        chain = waypoints.get(edge)
        if chain:
            return x[chain[0] if at_source else chain[-1]]
        return placed[edge[1] if at_source else edge[0]].x

    out_port: dict = {}
    in_port: dict = {}
    for key, box in placed.items():
        for edges, ports, at_source in (
            ([(key, user) for user in flow.successors(key)], out_port, True),
            ([(maker, key) for maker in flow.predecessors(key)], in_port, False),
        ):
            edges.sort(key=lambda edge: near_end(edge, at_source))
            count = len(edges)
            step = min(box.width * 0.6 / max(count - 1, 1), 14.0)
            for number, edge in enumerate(edges):
                ports[edge] = box.x + (number - (count - 1) / 2) * step
    return out_port, in_port


def _bounds(placed: dict[str, Placed], routes: dict) -> tuple[float, float, float, float]:
    """``(left, right, bottom, top)`` of everything drawn, margins included."""
    xs = [b.x - b.width / 2 for b in placed.values()] + [b.x + b.width / 2 for b in placed.values()]
    ys = [b.y - b.height / 2 for b in placed.values()] + [b.y + b.height / 2 for b in placed.values()]
    xs += [point[0] for route in routes.values() for point in route]
    if not xs:
        return 0.0, 1.0, -1.0, 0.0
    return min(xs) - MARGIN, max(xs) + MARGIN, min(ys) - MARGIN, max(ys) + MARGIN


# --- drawing ------------------------------------------------------------------------------------------
def _node_patches(graph: nx.DiGraph, placed: dict[str, Placed], scale: float) -> Any:
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Ellipse, FancyBboxPatch

    patches, faces, edges, widths, styles = [], [], [], [], []
    for key, data in graph.nodes(data=True):
        box = placed[key]
        colour, shape, border = style(data)
        if shape == "ellipse":
            patches.append(Ellipse((box.x, box.y), box.width, box.height))
        else:
            patches.append(
                FancyBboxPatch(
                    (box.x - box.width / 2, box.y - box.height / 2),
                    box.width,
                    box.height,
                    boxstyle=f"round,pad=0,rounding_size={min(5.0, box.height / 3)}",
                )
            )
        fill, line = COLORS[colour]
        faces.append(fill)
        edges.append(line)
        thick = border == "bold" or data["kind"] == "output"
        widths.append((2.2 if thick else 0.9) * scale)
        styles.append((0, (4, 2)) if border == "dashed" else "solid")
    return PatchCollection(patches, facecolors=faces, edgecolors=edges, linewidths=widths, linestyles=styles, zorder=2)


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
                    connectionstyle=f"arc3,rad={-bend}",
                    arrowstyle="-|>",
                    mutation_scale=8 * scale,
                    color=UPDATE_COLOR,
                    linestyle=(0, (4, 3)),
                    linewidth=1.0 * scale,
                    zorder=1,
                )
            )


def _draw_panel(axes: Any, graph: nx.DiGraph, placed: dict[str, Placed], routes: dict, scale: float) -> None:
    axes.add_collection(_node_patches(graph, placed, scale))
    _edges(graph, placed, routes, scale, axes)
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


def _legend(axes: Any, scale: float) -> float:
    """Draw the legend in a row from ``x = 0``; return its width."""
    graph = nx.DiGraph()
    placed = {}
    x = 0.0
    for colour, text in LEGEND:
        kind = "op" if colour in ("op", "gradient", "random") else colour
        graph.add_node(
            colour,
            kind=kind,
            label=text,
            stochastic=colour == "random",
            phase_dependent=False,
            gradient=colour == "gradient",
        )
        width, height = node_size(graph.nodes[colour])
        placed[colour] = Placed(x + width / 2, 0.0, width, height)
        x += width + NODE_GAP
    if axes is not None:
        _draw_panel(axes, graph, placed, {}, scale)
        axes.plot([x, x + 30], [0, 0], color=UPDATE_COLOR, linestyle=(0, (4, 3)), linewidth=1.0 * scale)
        axes.text(x + 34, 0, "update", fontsize=FONT * scale, va="center", color=UPDATE_COLOR)
    return x + 80


def draw(panels: Sequence[tuple[nx.DiGraph, str]], path: Path, legend: bool = True, dpi: int = 100) -> None:
    """Draw each ``(graph, title)`` side by side into ``path`` (its suffix gives the format)."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    layouts = [layout(graph) for graph, _ in panels]
    bounds = [_bounds(placed, routes) for placed, routes in layouts]
    widths = [right - left for left, right, _, _ in bounds]
    heights = [top - bottom + TITLE_BAND for _, _, bottom, top in bounds]
    band = LEGEND_BAND if legend else 0.0
    total_width = max(sum(widths) + MARGIN * (len(panels) - 1), _legend(None, 1.0) if legend else 0.0)
    total_height = max(heights) + band
    scale = min(1.0, MAX_INCHES * 72 / total_width, MAX_INCHES * 72 / total_height)
    figure = Figure(figsize=(total_width * scale / 72, total_height * scale / 72))
    place = _Placer(figure, total_width, total_height)
    left_edge = 0.0
    for (graph, title), (placed, routes), (left, right, bottom, top), height in zip(panels, layouts, bounds, heights):
        axes = place(left_edge, total_height - band - height, right - left, height)
        axes.set_xlim(left, right)
        axes.set_ylim(bottom, top + TITLE_BAND)
        _draw_panel(axes, graph, placed, routes, scale)
        axes.text(
            (left + right) / 2,
            top + TITLE_BAND / 2,
            title,
            ha="center",
            va="center",
            fontsize=13 * scale,
            parse_math=False,
        )
        left_edge += right - left + MARGIN
    if legend:
        axes = place(0.0, total_height - band, total_width, band)
        axes.set_xlim(-MARGIN, total_width - MARGIN)
        axes.set_ylim(-band / 2, band / 2)
        _legend(axes, scale)
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
