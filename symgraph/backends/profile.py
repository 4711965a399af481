"""Where a compiled function's time goes: ``sg.function(..., profile=True)`` and ``f.profile``.

A backend that profiles times each node of the program as it runs (the numpy backend writes the
timing around each statement of the generated program, the python backend around each call in its
loop) and adds it to a :class:`Profile`: one slot per node, in execution order. Nothing of this
exists in a function compiled without ``profile=True``: its program is the same as ever.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

from ..graph.basic import Apply
from ..graph.op import Op
from ..graph.source import describe

#: The clock profiles read (the same the generated programs call).
clock = time.perf_counter


class Profile:
    """Time and call counts per node of one compiled function, summed over its calls.

    ``nodes`` are the nodes in execution order; ``calls`` the calls of the function, ``time``
    the seconds spent in them (all of a call: argument checks and copies too); ``node_times``
    and ``node_calls`` map each node to its seconds and runs; ``op_times`` and ``op_calls`` sum
    them per op (equal ops together: every ``mul`` of one dtype rule is one ``mul``);
    ``input_shapes`` maps each node to the shapes its inputs had the last time it ran.
    ``summary()`` prints the table; ``reset()`` starts again from zero.
    """

    def __init__(self, nodes: Sequence[Apply]):
        self.nodes = list(nodes)
        self.calls = 0
        self.time = 0.0
        # Filled by the program: one slot per node, in the order of ``nodes``.
        self.times = [0.0] * len(self.nodes)
        self.counts = [0] * len(self.nodes)
        self.shapes: list[tuple | None] = [None] * len(self.nodes)

    # --- what the programs call -----------------------------------------------------------------
    def timed(self, run: Callable[[tuple], Any]) -> Callable[[tuple], Any]:
        """``run`` (a program taking its tuple of arguments), counting its calls and their time."""

        def profiled(args: tuple) -> Any:
            start = clock()
            try:
                return run(args)
            finally:
                self.time += clock() - start
                self.calls += 1

        return profiled

    def reset(self) -> None:
        """Forget every call so far."""
        self.calls, self.time = 0, 0.0
        for index in range(len(self.nodes)):
            self.times[index], self.counts[index], self.shapes[index] = 0.0, 0, None

    # --- what users read ------------------------------------------------------------------------
    @property
    def node_times(self) -> dict[Apply, float]:
        """Seconds spent in each node, over all calls."""
        return dict(zip(self.nodes, self.times))

    @property
    def node_calls(self) -> dict[Apply, int]:
        """How many times each node ran."""
        return dict(zip(self.nodes, self.counts))

    @property
    def input_shapes(self) -> dict[Apply, tuple | None]:
        """The shapes of each node's inputs the last time it ran (``None`` for an input that is
        not an array, and for a node that never ran)."""
        return dict(zip(self.nodes, self.shapes))

    @property
    def op_times(self) -> dict[Op, float]:
        """Seconds spent in each op, its nodes summed, longest first."""
        totals: dict[Op, float] = {}
        for node, seconds in zip(self.nodes, self.times):
            totals[node.op] = totals.get(node.op, 0.0) + seconds
        return dict(sorted(totals.items(), key=lambda item: -item[1]))

    @property
    def op_calls(self) -> dict[Op, int]:
        """How many times nodes of each op ran."""
        totals: dict[Op, int] = {}
        for node, count in zip(self.nodes, self.counts):
            totals[node.op] = totals.get(node.op, 0) + count
        return totals

    def summary(self, limit: int = 20, file: IO[str] | None = None) -> str:
        """The profile as text (printed to ``file``, standard output by default, and returned):
        the ops and the nodes that took longest, with the share of the time in the top ops."""
        text = _summary(self, limit)
        print(text, file=file if file is not None else sys.stdout)
        return text

    def __repr__(self) -> str:
        return f"<Profile of {len(self.nodes)} nodes: {self.calls} calls, {_format_time(self.time)}>"


def _summary(profile: Profile, limit: int) -> str:
    calls = max(profile.calls, 1)
    in_nodes = sum(profile.times)
    lines = [
        f"{profile.calls} call(s), {_format_time(profile.time / calls)} per call; "
        f"{_format_time(in_nodes / calls)} of it in the {len(profile.nodes)} nodes, the rest in "
        "argument checks, copies and updates"
    ]
    if not profile.calls:
        return lines[0]
    op_times, op_calls = profile.op_times, profile.op_calls
    node_count: dict[Op, int] = {}
    for node in profile.nodes:
        node_count[node.op] = node_count.get(node.op, 0) + 1
    top = list(op_times.items())[:limit]
    share = sum(seconds for _, seconds in top) / in_nodes if in_nodes else 0.0
    lines += ["", f"ops, by time (the top {len(top)} take {100 * share:.1f}% of the time in nodes):"]
    lines.append(f"  {'per call':>10s} {'share':>6s} {'runs':>7s} {'nodes':>5s}  op")
    for op, seconds in top:
        lines.append(
            f"  {_format_time(seconds / calls):>10s} {_percent(seconds, in_nodes):>6s} {op_calls[op]:>7d} "
            f"{node_count[op]:>5d}  {op}"
        )
    order = sorted(range(len(profile.nodes)), key=lambda index: -profile.times[index])[:limit]
    lines += ["", "nodes, by time:"]
    lines.append(f"  {'per call':>10s} {'share':>6s}  op (input shapes) at the line that built it")
    for index in order:
        node = profile.nodes[index]
        mark = " [grad]" if node.gradient else ""
        lines.append(
            f"  {_format_time(profile.times[index] / calls):>10s} {_percent(profile.times[index], in_nodes):>6s}  "
            f"{node.op.name}{mark} ({_shapes(node, profile.shapes[index])}) at {describe(node.source)}"
        )
    return "\n".join(lines)


def _shapes(node: Apply, shapes: tuple | None) -> str:
    if shapes is None:
        return ", ".join(variable.type.describe() for variable in node.inputs)
    return ", ".join("-" if shape is None else str(shape) for shape in shapes)


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _format_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def shapes_of(*values: Any) -> tuple:
    """The shape of each value (``None`` for what is not an array): what a profiled node's
    inputs looked like."""
    return tuple(getattr(value, "shape", None) for value in values)
