"""Groups in the graphs ``sg.to_networkx`` gives: folded into one box each, and compared.

``to_networkx`` gives every node the group holding it (``group``, ``scope``; see
:mod:`symgraph.grouping`) and the graph its ``groups``. Here, on that model alone (networkx, no
symbolic graph): :func:`fold_groups` draws each closed group as one op node named after its call,
and :func:`differences` finds what one of several graphs shown side by side holds and the others
lack (a train function's masks, batch statistics and updates beside its predict function).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import networkx as nx

__all__ = ["box_attributes", "container", "differences", "fold_groups", "signature"]


# --- groups folded into boxes ---------------------------------------------------------------------
def is_open_function(graph: nx.DiGraph, expand: Any) -> Callable[[str], bool]:
    """Whether a group (by key) is open, for ``expand``: ``True``, ``False`` or names/keys."""
    if expand is True or expand is False:
        return lambda key: expand
    if isinstance(expand, str):
        expand = [expand]
    try:
        wanted = set(expand)
    except TypeError:
        raise TypeError(f"expand takes True, False or a list of group names, not {expand!r}") from None
    groups = graph.graph.get("groups", {})
    known = {info["name"] for info in groups.values()} | set(groups)
    unknown = sorted(str(name) for name in wanted - known)
    if unknown:
        names = ", ".join(sorted({info["name"] for info in groups.values()})) or "none"
        raise ValueError(f"expand: no group named {', '.join(unknown)} in this graph (its groups: {names})")
    return lambda key: key in wanted or groups[key]["name"] in wanted


def representatives(graph: nx.DiGraph, is_open: Callable[[str], bool]) -> dict[str, str]:
    """For each node, the node drawn for it: itself, or the key of the outermost closed group
    holding it."""
    groups = graph.graph.get("groups", {})
    closed: dict[str, str | None] = {}

    def outermost_closed(key: str) -> str | None:
        if key not in closed:
            parent = groups[key]["parent"]
            above = outermost_closed(parent) if parent is not None else None
            closed[key] = above if above is not None else (None if is_open(key) else key)
        return closed[key]

    found = {}
    for node, group in graph.nodes(data="group"):
        box = outermost_closed(group) if group is not None else None
        found[node] = node if box is None else box
    return found


def fold_groups(graph: nx.DiGraph, expand: Any = False) -> nx.DiGraph:
    """``graph`` (as ``to_networkx`` gives it, every group open) with the closed groups folded
    into one box each; ``expand`` as in :func:`to_networkx`. The graph itself when all are open."""
    if expand is True or not graph.graph.get("groups"):
        is_open_function(graph, expand)  # still refuses unknown names
        return graph
    drawn_as = representatives(graph, is_open_function(graph, expand))
    if all(node == box for node, box in drawn_as.items()):
        return graph
    folded = nx.DiGraph(**graph.graph)
    members: dict[str, list[str]] = {}
    for node, data in graph.nodes(data=True):
        box = drawn_as[node]
        if box == node:
            folded.add_node(node, **data)
        else:
            if box not in members:
                folded.add_node(box)  # placed where its first member was: the order of first use
            members.setdefault(box, []).append(node)
    for box, inside in members.items():
        folded.nodes[box].update(box_attributes(graph, box, inside))
    for source, target, data in graph.edges(data=True):
        a, b = drawn_as[source], drawn_as[target]
        if a == b:
            continue
        if not folded.has_edge(a, b):
            folded.add_edge(a, b, update=bool(data.get("update")))
        elif not data.get("update"):
            folded.edges[a, b]["update"] = False  # data flows there too: draw it as such
    return folded


def box_attributes(graph: nx.DiGraph, box: str, inside: list[str]) -> dict:
    """The attributes of the op node standing for the group ``box``, which holds ``inside``."""
    groups = graph.graph["groups"]
    info = groups[box]
    ops = [graph.nodes[key] for key in inside if graph.nodes[key]["kind"] == "op"]
    count = sum(data.get("collapsed") or 1 for data in ops)
    drawing = sorted({data["op"] for data in ops if data["stochastic"] or data["phase_dependent"]})
    updates = [name for key, other in groups.items() if _within(groups, key, box) for name in other["updates"]]
    times = [data["time"] for data in ops if data.get("time") is not None]
    attributes = {
        "kind": "op",
        "op": info["name"],
        "label": _box_label(info["name"], count, drawing, ops, updates),
        "stochastic": any(data["stochastic"] for data in ops),
        "phase_dependent": any(data["phase_dependent"] for data in ops),
        "gradient": bool(ops) and all(data["gradient"] for data in ops),
        "source": info["source"],
        "collapsed": count,
        "group": box,
        "scope": tuple(info["scope"]),
        "updates": updates,
        "members": list(inside),
    }
    if times:
        attributes["time"] = float(sum(times))
    return attributes


def _within(groups: dict, key: str | None, ancestor: str) -> bool:
    while key is not None:
        if key == ancestor:
            return True
        key = groups[key]["parent"]
    return False


def _box_label(name: str, count: int, drawing: list[str], ops: list[dict], updates: list[str]) -> str:
    marks = []
    if any(data["stochastic"] for data in ops):
        marks.append("random")
    if any(data["phase_dependent"] for data in ops):
        marks.append("phase-dependent")
    lines = [name, f"{count} op{'s' if count != 1 else ''}"]
    if marks:
        shown = ", ".join(drawing[:2]) + (", ..." if len(drawing) > 2 else "")
        lines[-1] += f" [{', '.join(marks)}: {shown}]"
    if len(updates) > 2:
        lines.append(f"updates {len(updates)} states")
    elif updates:  # a name a line keeps the box narrow: a row of optimizer boxes is a picture's width
        lines += ["updates " + updates[0] + ("," if len(updates) > 1 else "")] + updates[1:]
    return "\n".join(lines)


def container(graph: nx.DiGraph, key: str) -> str | None:
    """The open group a drawn node sits in (``None``: at the top): a box sits in its group's
    parent, any other node in its own innermost group."""
    data = graph.nodes[key]
    group = data.get("group")
    if group is not None and data.get("collapsed") and group == key:
        return graph.graph["groups"][group]["parent"]
    return group


# --- what differs between graphs shown side by side ---------------------------------------------------
def signature(data: dict) -> tuple:
    """What a node is, independently of the graph it is in: the same op built by the same line in
    the same scope, or the same variable (kind, name, dtype, scope)."""
    scope = tuple(data.get("scope") or ())
    if data["kind"] == "op":
        return ("op", data["op"], scope, data.get("source", ""), bool(data.get("collapsed")))
    head = data["label"].split("\n", 1)[0]
    return ("variable", data["kind"], data.get("name") or head, data.get("dtype"), scope)


def differences(graphs: Sequence[nx.DiGraph]) -> list[dict[str, str]]:
    """What each of several graphs (every group open) holds that another lacks: its nodes marked
    ``'only'``, and its groups (by key) marked ``'only'`` (no such group in another graph) or
    ``'changed'`` (one in each, holding different nodes).

    Nodes match by :func:`signature`, groups by their scope names and the user's line; the k-th of
    a signature in one graph matches the k-th of the same signature in another.
    """
    nodes = [_ranked({key: signature(data) for key, data in graph.nodes(data=True)}) for graph in graphs]
    groups = [
        _ranked({key: (tuple(info["scope"]), info["source"]) for key, info in graph.graph.get("groups", {}).items()})
        for graph in graphs
    ]
    contents = [_contents(graph) for graph in graphs]
    keys_of = [{value: key for key, value in ranked.items()} for ranked in groups]
    found: list[dict[str, str]] = []
    for number in range(len(graphs)):
        marks = _missing_elsewhere(nodes, number)
        for key, ranked in groups[number].items():
            for other in range(len(graphs)):
                twin = keys_of[other].get(ranked) if other != number else None
                if twin is not None and contents[other][twin] != contents[number][key]:
                    marks[key] = "changed"
        marks.update(_missing_elsewhere(groups, number))
        found.append(marks)
    return found


def _contents(graph: nx.DiGraph) -> dict[str, Counter]:
    """For each group, the signatures of the nodes in it (nested groups included)."""
    groups = graph.graph.get("groups", {})
    found: dict[str, Counter] = {key: Counter() for key in groups}
    for _, data in graph.nodes(data=True):
        key = data.get("group")
        mark = signature(data)
        while key is not None:
            found[key][mark] += 1
            key = groups[key]["parent"]
    return found


def _ranked(signatures: dict[str, tuple]) -> dict[str, tuple]:
    """Each key's signature with its rank among the keys of the same signature."""
    seen: dict[tuple, int] = {}
    ranked = {}
    for key, base in signatures.items():
        ranked[key] = (base, seen.get(base, 0))
        seen[base] = ranked[key][1] + 1
    return ranked


def _missing_elsewhere(ranked: list[dict[str, tuple]], number: int) -> dict[str, str]:
    others = [set(keys.values()) for index, keys in enumerate(ranked) if index != number]
    return {key: "only" for key, value in ranked[number].items() if any(value not in other for other in others)}
