"""What the explorer's page holds for each graph: its nodes, groups and edges, laid out in Python.

Each group (and the whole graph) is a block laid out on its own (:func:`symgraph.viz_layout.nested`)
with its inner groups closed, as boxes. The page opens a group in place: the group's block grows
from its box to its frame, the layers below it move down and the members beside it move aside, so
that nothing else changes order and the layout follows without jumping. It never lays anything
out itself.

Everything is plain JSON: strings that repeat (source lines) are stored once, in ``strings``.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from ..viz import data_flow, style
from ..viz_groups import box_attributes, container
from ..viz_layout import FRAME_PAD, FRAME_TITLE, nested

FONT = 11.0  # px, the page's font size for labels
CHAR = 6.3  # a character's mean width at that size
LINE = 14.0
PAD = 6.0


def node_size(data: dict) -> tuple[float, float]:
    """The width and height of a node's box or ellipse on the page, from its label."""
    lines = data["label"].split("\n")
    width = max(len(line) for line in lines) * CHAR + 2 * PAD
    height = len(lines) * LINE + 2 * PAD
    if style(data)[1] == "ellipse":
        return round(width * 1.15 + 8.0, 1), round(height * 1.2, 1)
    return round(width, 1), round(height, 1)


class _Strings:
    """A table of strings, each stored once; nodes refer to them by number."""

    def __init__(self) -> None:
        self.table: list[str] = []
        self._index: dict[str, int] = {}

    def __call__(self, text: str | None) -> int:
        text = text or ""
        found = self._index.get(text)
        if found is None:
            found = self._index[text] = len(self.table)
            self.table.append(text)
        return found


def panel(graph: nx.DiGraph, title: str, marks: dict[str, str]) -> dict[str, Any]:
    """The page's data for one graph: ``graph`` as ``viz.drawable(..., expand=True)`` gives it,
    and ``marks`` (``'only'``/``'changed'`` by node or group key) beside other graphs."""
    groups_info = graph.graph.get("groups", {})
    used = _used_groups(graph, groups_info)
    group_index = {key: number for number, key in enumerate(used)}
    node_keys = list(graph.nodes)
    node_index = {key: number for number, key in enumerate(node_keys)}
    strings = _Strings()
    members: dict[str, list[str]] = {key: [] for key in used}
    for key, data in graph.nodes(data=True):
        group = data.get("group")
        while group is not None:
            members[group].append(key)
            group = groups_info[group]["parent"]
    boxes = {key: box_attributes(graph, key, members[key]) for key in used}
    sizes = {key: node_size(data) for key, data in graph.nodes(data=True)}
    box_sizes = {key: node_size(boxes[key]) for key in used}
    layout = nested(
        data_flow(graph),
        sizes,
        container=lambda key: container(graph, key),
        parent=lambda group: groups_info[group]["parent"],
        block_size=lambda group, block: box_sizes[group],  # every group closed: the page opens them
    )
    blocks = layout.blocks

    def member_ref(member: Any) -> int:
        """A node by its number, a group by ``-(number + 1)``."""
        return -(group_index[member] + 1) if member in group_index else node_index[member]

    def where(member: Any, holder: str | None) -> tuple[int, float]:
        block = blocks[holder].layout
        return block.layer[member], round(block.x[member], 1)

    times = [data.get("time") for _, data in graph.nodes(data=True) if data.get("time") is not None]
    nodes = []
    for key, data in graph.nodes(data=True):
        holder = container(graph, key)
        layer, x = where(key, holder)
        width, height = sizes[key]
        colour, form, border = style(data)
        node = {
            "id": key,
            "kind": data["kind"],
            "label": data["label"],
            "colour": colour,
            "form": form,
            "border": border,
            "parent": group_index[holder] if holder is not None else -1,
            "layer": layer,
            "x": x,
            "w": width,
            "h": height,
        }
        node.update(_details(data, strings))
        if data["kind"] != "op":  # a variable was built on the line of the op computing it
            makers = [
                graph.nodes[maker] for maker in graph.predecessors(key) if not graph.edges[maker, key].get("update")
            ]
            if makers and makers[0].get("source"):
                node["source"] = strings(makers[0]["source"])
        if key in marks:
            node["only"] = marks[key]
        nodes.append(node)
    groups = []
    for key in used:
        info, box = groups_info[key], boxes[key]
        holder = info["parent"]
        layer, x = where(key, holder)
        block = blocks[key]
        colour, _, border = style(box)
        group = {
            "id": key,
            "name": info["name"],
            "label": box["label"],
            "colour": colour,
            "border": border,
            "parent": group_index[holder] if holder is not None else -1,
            "layer": layer,
            "x": x,
            "w": box_sizes[key][0],
            "h": box_sizes[key][1],
            "source": strings(info["source"]),
            "ops": box["collapsed"],
            "gradient": box["gradient"],
            "random": box["stochastic"] or box["phase_dependent"],
            "updates": box["updates"],
            "content": _block(block.layout),
        }
        if box.get("time") is not None:
            group["time"] = box["time"]
        if key in marks:
            group["only"] = marks[key]
        groups.append(group)
    edges = [
        [node_index[source], node_index[target], 1 if data.get("update") else 0]
        for source, target, data in graph.edges(data=True)
    ]
    waypoints = []
    for holder, first, second in layout.local_edge.values():
        points = blocks[holder].layout.waypoints.get((first, second))
        if points:
            block_ref = group_index[holder] if holder is not None else -1
            waypoints.append(
                [block_ref, member_ref(first), member_ref(second), [[p[0], round(p[1], 1)] for p in points]]
            )
    return {
        "title": title,
        "phase": graph.graph.get("phase"),
        "nodes": nodes,
        "groups": groups,
        "edges": edges,
        "waypoints": _unique(waypoints),
        "root": _block(blocks[None].layout),
        "strings": strings.table,
        "total_time": float(sum(times)) if times else None,
        "frame": {"pad": FRAME_PAD, "title": FRAME_TITLE},
    }


def _used_groups(graph: nx.DiGraph, groups: dict) -> list[str]:
    """The groups holding a drawn node (and those holding them), in the order of the graph."""
    used: dict[str, None] = {}
    for _, group in graph.nodes(data="group"):
        chain = []
        while group is not None and group not in used:
            chain.append(group)
            group = groups[group]["parent"]
        for key in reversed(chain):
            used[key] = None
    return list(used)


def _block(layout: Any) -> dict:
    return {
        "layers": [[round(top, 1), round(height, 1)] for top, height in layout.layers],
        "w": round(layout.width, 1),
        "h": round(layout.height, 1),
    }


def _details(data: dict, strings: _Strings) -> dict:
    """What the details panel shows of a node, and what search looks at."""
    found: dict[str, Any] = {}
    if data["kind"] == "op":
        found["op"] = data["op"]
        found["source"] = strings(data.get("source"))
        found["gradient"] = bool(data.get("gradient"))
        found["random"] = bool(data.get("stochastic"))
        found["phase_dependent"] = bool(data.get("phase_dependent"))
        if data.get("collapsed"):
            found["folded"] = data["collapsed"]
        if "output_dtype" in data:  # its output, drawn inside its box
            found["dtype"] = data["output_dtype"]
            found["shape"] = _shape(data["output_shape"])
    else:
        found["name"] = data.get("name") or ""
        found["dtype"] = data.get("dtype")
        found["shape"] = _shape(data.get("shape"))
        found["gradient"] = bool(data.get("gradient"))
        if data.get("value") is not None:
            found["value"] = data["value"]
    if data.get("time") is not None:
        found["time"] = float(data["time"])
    return found


def _shape(shape: Any) -> str | None:
    if shape is None:
        return None
    return (
        "("
        + ", ".join("?" if length is None else str(length) for length in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )


def _unique(waypoints: list) -> list:
    """One entry per edge between two members of a block (several drawn edges may share one)."""
    seen = set()
    kept = []
    for entry in waypoints:
        key = (entry[0], entry[1], entry[2])
        if key not in seen:
            seen.add(key)
            kept.append(entry)
    return kept
