"""Layered layouts of graphs, for the matplotlib renderer and the explorer (no Graphviz needed).

:func:`layered` is a small Sugiyama-style layout: nodes go in layers by the longest path from the
roots (roots just above their first user), an edge spanning several layers runs through a
waypoint in each layer it crosses, a few sweeps order each layer by the mean position of its
neighbours (fewer crossings), and each node is then placed as near that mean as the boxes beside
it allow. Coordinates are points, ``y`` growing downwards (data flows down).

:func:`nested` lays out a graph whose nodes sit in groups: each group is laid out on its own, its
inner groups as blocks of their size, then placed as one block in the group holding it, so that
a group's nodes stay together inside its frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import networkx as nx

LAYER_GAP = 24.0
NODE_GAP = 10.0
SWEEPS = 4
BALANCING_PASSES = 3
WAYPOINT_WIDTH = 4.0
MAX_SPAN = 40  # an edge across more layers is drawn straight, without waypoints (they would cost O(n^2))
FRAME_PAD = 8.0  # inside an open group's frame
FRAME_TITLE = 18.0  # the band holding the group's name


@dataclass
class Layered:
    """A layout of one graph: each node's centre ``x``, its layer, each layer's ``(top, height)``,
    the waypoints ``[(layer, x), ...]`` of every edge spanning several layers, and the size of
    the whole (from ``x = 0`` and ``y = 0``)."""

    x: dict
    layer: dict
    layers: list[tuple[float, float]]
    waypoints: dict[tuple, list[tuple[int, float]]]
    width: float
    height: float

    def centre_y(self, key: object) -> float:
        top, height = self.layers[self.layer[key]]
        return top + height / 2


def ranks(flow: nx.DiGraph) -> dict:
    """Each node's layer: after all its inputs (nodes on a cycle share a layer)."""
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


def _with_waypoints(flow: nx.DiGraph, rank: dict) -> tuple[nx.DiGraph, dict[tuple, list]]:
    """The graph where an edge spanning several layers runs through a waypoint in each layer it
    crosses, so that the ordering keeps it clear of the boxes; and each such edge's waypoints."""
    layered_graph = nx.DiGraph()
    layered_graph.add_nodes_from(flow)
    waypoints: dict[tuple, list] = {}
    for source, target in flow.edges:
        span = rank[target] - rank[source]
        if span <= 1 or span > MAX_SPAN:
            layered_graph.add_edge(source, target)
            continue
        chain = [("waypoint", source, target, step) for step in range(1, span)]
        for step, point in enumerate(chain, start=1):
            rank[point] = rank[source] + step
        nx.add_path(layered_graph, [source, *chain, target])
        waypoints[(source, target)] = chain
    return layered_graph, waypoints


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


def _order(graph: nx.DiGraph, layers: list[list], widths: dict) -> dict:
    """The x of every node and waypoint, after a few sweeps that order each layer by the mean
    position of its neighbours in the layer above (going down) or below (going up)."""
    x: dict = {}
    for layer in layers:
        if layer:
            x.update(_place_layer(layer, dict.fromkeys(layer, 0.0), widths))
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        for layer in layers if downward else reversed(layers):
            if not layer:
                continue
            near = graph.predecessors if downward else graph.successors
            wanted = {key: _mean_of(list(near(key)), x, x[key]) for key in layer}
            layer.sort(key=lambda key: (wanted[key], x[key]))
            x.update(_place_layer(layer, wanted, widths))
    # Last passes pull each node towards all its neighbours, above and below (straightening edges).
    for _ in range(BALANCING_PASSES):
        for layer in layers:
            if layer:
                wanted = {key: _mean_of([*graph.predecessors(key), *graph.successors(key)], x, x[key]) for key in layer}
                x.update(_place_layer(layer, wanted, widths))
    return x


def layered(flow: nx.DiGraph, sizes: dict) -> Layered:
    """A layered layout of the DAG-like ``flow`` (cycles share a layer), each node of the given
    ``(width, height)``, shifted so that everything lies right of ``x = 0`` and below ``y = 0``."""
    rank = ranks(flow)
    graph, chains = _with_waypoints(flow, rank)
    widths = {key: sizes[key][0] if key in sizes else WAYPOINT_WIDTH for key in graph}
    layers: list[list] = [[] for _ in range(max(rank.values(), default=-1) + 1)]
    for key in graph:  # insertion order: the order of first use, a good start
        layers[rank[key]].append(key)
    x = _order(graph, layers, widths)
    left = min((x[key] - widths[key] / 2 for key in graph), default=0.0)
    right = max((x[key] + widths[key] / 2 for key in graph), default=0.0)
    bands = []
    top = 0.0
    for layer in layers:
        height = max((sizes[key][1] for key in layer if key in sizes), default=WAYPOINT_WIDTH)
        bands.append((top, height))
        top += height + LAYER_GAP
    return Layered(
        x={key: x[key] - left for key in flow},
        layer={key: rank[key] for key in flow},
        layers=bands,
        waypoints={edge: [(rank[point], x[point] - left) for point in chain] for edge, chain in chains.items()},
        width=right - left,
        height=max(top - LAYER_GAP, 0.0),
    )


# --- graphs in groups ---------------------------------------------------------------------------------
@dataclass
class Block:
    """One group (``key``; ``None`` for the whole graph) laid out on its own: its ``members`` (the
    nodes directly in it, and its inner groups by key), their layout, and the block's size."""

    key: str | None
    members: list
    layout: Layered
    width: float = 0.0
    height: float = 0.0
    children: list = field(default_factory=list)


@dataclass
class Nested:
    """Every block of a nested layout, and where each edge between two drawn nodes is laid out:
    in the block of their innermost common group, between the members holding them."""

    blocks: dict
    chains: dict  # drawn node -> its groups, outermost first
    local_edge: dict  # (source, target) -> (block key, source member, target member)


def group_chains(nodes: list, container: Callable[[object], str | None], parent: Callable[[str], str | None]) -> dict:
    """For each node, the open groups holding it, outermost first."""
    chains: dict = {}
    known: dict[str, tuple] = {}

    def chain_of(group: str | None) -> tuple:
        if group is None:
            return ()
        if group not in known:
            known[group] = (*chain_of(parent(group)), group)
        return known[group]

    for key in nodes:
        chains[key] = chain_of(container(key))
    return chains


def nested(
    flow: nx.DiGraph,
    sizes: dict,
    container: Callable[[object], str | None],
    parent: Callable[[str], str | None],
    block_size: Callable[[str, Block], tuple[float, float]],
) -> Nested:
    """Lay out ``flow`` (the drawn nodes, data edges only) group by group, innermost first.

    ``container(node)`` is the open group directly holding a node (``None``: the top),
    ``parent(group)`` the group holding a group, and ``block_size(group, block)`` the size a
    group takes in the block holding it, given its own laid-out block (its frame, or the box it is
    drawn as while closed).
    """
    chains = group_chains(list(flow.nodes), container, parent)
    members: dict[str | None, list] = {None: []}
    for key, chain in chains.items():
        for depth, group in enumerate(chain):
            holder = chain[depth - 1] if depth else None
            if group not in members:
                members[group] = []
                members.setdefault(holder, []).append(group)
        members.setdefault(chain[-1] if chain else None, []).append(key)
    local: dict[str | None, nx.DiGraph] = {}
    for group, inside in members.items():
        local[group] = nx.DiGraph()
        local[group].add_nodes_from(inside)
    local_edge = {}
    for source, target in flow.edges:
        a, b = chains[source], chains[target]
        common = 0
        while common < min(len(a), len(b)) and a[common] == b[common]:
            common += 1
        block = a[common - 1] if common else None
        first = a[common] if common < len(a) else source
        second = b[common] if common < len(b) else target
        local_edge[(source, target)] = (block, first, second)
        if first != second:
            local[block].add_edge(first, second)
    blocks: dict = {}
    # Innermost first: a group's size is known before the block holding it is laid out.
    order = sorted(members, key=lambda group: -len(chains_of_group(group, parent)))
    for group in order:
        own_sizes = {}
        for member in members[group]:
            own_sizes[member] = block_size(member, blocks[member]) if member in blocks else sizes[member]
        layout = layered(local[group], own_sizes)
        blocks[group] = Block(group, members[group], layout, layout.width, layout.height)
    return Nested(blocks, chains, local_edge)


def chains_of_group(group: str | None, parent: Callable[[str], str | None]) -> tuple:
    chain: list = []
    while group is not None:
        chain.append(group)
        group = parent(group)
    return tuple(chain)


def frame_size(block: Block) -> tuple[float, float]:
    """The size of an open group's frame around its laid-out block: padding and a title band."""
    return block.width + 2 * FRAME_PAD, block.height + FRAME_TITLE + 2 * FRAME_PAD


@dataclass
class Placed:
    """A node's centre and size (or a frame's), in points, ``y`` growing downwards."""

    x: float
    y: float
    width: float
    height: float


def place(layout: Nested, sizes: dict) -> tuple[dict, dict, dict]:
    """Absolute positions from a nested layout whose open groups take :func:`frame_size`: each
    drawn node's :class:`Placed`, each open group's frame, and the route of each data edge (a list
    of points from the bottom of its source, through its waypoints, to the top of its target)."""
    placed: dict = {}
    frames: dict = {}
    origins: dict = {None: (0.0, 0.0)}
    stack: list = [None]
    while stack:
        group = stack.pop()
        block = layout.blocks[group]
        left, top = origins[group]
        for member in block.members:
            cx, cy = left + block.layout.x[member], top + block.layout.centre_y(member)
            if member in layout.blocks:
                width, height = frame_size(layout.blocks[member])
                frames[member] = Placed(cx, cy, width, height)
                origins[member] = (cx - width / 2 + FRAME_PAD, cy - height / 2 + FRAME_TITLE + FRAME_PAD)
                stack.append(member)
            else:
                placed[member] = Placed(cx, cy, *sizes[member])
    routes = {}
    for (source, target), (group, first, second) in layout.local_edge.items():
        a, b = placed[source], placed[target]
        block = layout.blocks[group].layout
        left, top = origins[group]
        if block.layer[second] <= block.layer[first]:  # inside a cycle made by folding: side to side
            routes[(source, target)] = [(a.x + a.width / 2, a.y), (b.x + b.width / 2, b.y)]
            continue
        points = [(a.x, a.y + a.height / 2)]
        for layer, x in block.waypoints.get((first, second), []):
            band_top, band_height = block.layers[layer]
            points += [(left + x, top + band_top), (left + x, top + band_top + band_height)]
        points.append((b.x, b.y - b.height / 2))
        routes[(source, target)] = points
    return placed, frames, routes
