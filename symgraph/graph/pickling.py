"""Pickling and deep-copying graphs without recursing along them.

Python's pickler (and ``copy.deepcopy``) recurses once per link it follows: pickling the output of
a chain of 3,000 ops as plain objects (variable, its node, the node's inputs, their node...) goes
3,000 links deep and exceeds the recursion limit. So a variable computed by a node, or a node,
pickles as a reference to its node, emitted after every node it depends on, in topological order:

- the first time a pickler meets a graph variable (a "root" of the pickling: an element of a
  list, an output of a ``FunctionGraph``, an attribute of the user's model...), its reduction
  names a *session* object, then a :class:`_Ancestors` object, whose reduction walks up from
  the variable's node and gives the node records not yet emitted, each after those of its inputs;
- a node record (:class:`_NodeRecord`) pickles as its op, its inputs and its outputs' types and
  names; an input computed by another node is named by that node's record, which the pickler has
  already met (so it writes a reference to it, a few bytes, and does not recurse), an input that
  is a root (an input, a constant, a shared variable) is pickled as itself. Loading a record
  builds the ``Apply`` node (and its outputs) at once.

Everything reachable from several roots of one ``pickle.dumps`` is thus one object after
loading, as pickle keeps it for ordinary objects: the records and the roots are in the pickler's
memo. The depth stays that of one node (more only for ops holding inner graphs, one level per
graph), and the work is linear: each node is walked and emitted once per ``dumps``. (An op's
inner graph may read a node of the outer graph that the outer walk has ordered after the op's
node: the walk from inside the op emits its record there, and the outer list then finds it in the
memo.)

The session remembers which nodes have a record in the pickler at work: reductions cannot see
the pickler, so it is found through the pickler's memo. Each root's reduction names the current
session first; a pickler that has not seen it (a new ``dumps``, or another pickling nested in
this one) makes it start a new, empty one, which it then holds in its memo. A session is only
weakly referenced here: it lives as long as the pickler (or deepcopy's memo) that holds it, so
nothing is kept between two picklings, an exception in one leaves nothing that changes the next,
and the bytes of a pickling do not depend on what was pickled before. Sessions are per thread.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from .basic import Apply, Variable


class _Session:
    """The node records one pickler (or one deepcopy memo) has met, by node."""

    __slots__ = ("__weakref__", "fresh", "records")

    def __init__(self, fresh: bool):
        # ``fresh``: made by a reduction of the previous session, for the pickler pickling it now.
        self.fresh = fresh
        self.records: dict[Apply, _NodeRecord] = {}

    def __reduce_ex__(self, protocol: int) -> tuple:
        if self.fresh:  # the pickler meets its own session: it keeps it in its memo from now on
            self.fresh = False
            return (_nothing, ())
        # A pickler that has not met this session (it would have found it in its memo): a new
        # ``dumps``, or one nested in a reduction; the records made so far are not in its memo.
        session = _Session(fresh=True)
        _push(session)
        return (_nothing, (session,))

    def ancestors(self, node: Apply) -> list[_NodeRecord]:
        """The records of ``node`` and of the nodes it depends on that the pickler has not met
        yet, each after those of its inputs' nodes (a depth-first walk, without recursion)."""
        records = self.records
        record = records.get(node)
        if record is not None and record.met:
            return [record]
        order: list[_NodeRecord] = []
        walked = {node}
        stack = [(node, iter(node.inputs))]
        while stack:
            current, inputs = stack[-1]
            for variable in inputs:
                owner = variable.owner
                if owner is not None and owner not in walked:
                    record = records.get(owner)
                    if record is not None and record.met:
                        continue
                    walked.add(owner)
                    stack.append((owner, iter(owner.inputs)))
                    break
            else:
                stack.pop()
                record = records.get(current)
                if record is None:
                    record = records[current] = _NodeRecord(current, records)
                order.append(record)
        return order


# Per thread, the live sessions, innermost last (weak references: a pickler's memo holds its own).
_local = threading.local()


def _push(session: _Session) -> None:
    stack = getattr(_local, "sessions", None)
    if stack is None:
        stack = _local.sessions = []
    stack.append(weakref.ref(session))


def _session() -> _Session:
    """The innermost live session of this thread, or a new one (not fresh: the pickler that meets
    it starts its own, so that every ``dumps`` starts alike)."""
    stack = getattr(_local, "sessions", None)
    while stack:
        session = stack[-1]()
        if session is not None:
            return session
        stack.pop()
    session = _Session(fresh=False)
    _push(session)
    return session


class _NodeRecord:
    """A node as the pickler emits it: the pickler's memo holds the record, which loads as the
    node, so that the nodes reading it name it by a reference."""

    __slots__ = ("met", "node", "records")

    def __init__(self, node: Apply, records: dict[Apply, _NodeRecord]):
        self.node = node
        self.records = records
        self.met = False

    def __reduce_ex__(self, protocol: int) -> tuple:
        self.met = True
        node, records = self.node, self.records
        # An input computed by a node is named by its node's record (met already: it came earlier
        # in the walk's order) and its output index; a root variable is pickled as itself.
        sources = []
        indexed = False
        for variable in node.inputs:
            owner = variable.owner
            if owner is None:
                sources.append(variable)
            else:
                sources.append(records[owner])
                indexed = indexed or variable.index != 0
        indexes = tuple([variable.index for variable in node.inputs]) if indexed else None
        outputs = node.outputs
        if len(outputs) == 1:
            types, names = (outputs[0].type,), None if outputs[0].name is None else (outputs[0].name,)
        else:
            types = tuple([variable.type for variable in outputs])
            names = tuple([variable.name for variable in outputs])
        return (_apply, (node.op, tuple(sources), indexes, types, names, node.source, node.gradient, node.scope))


class _Ancestors:
    """Stands for a node in a root's reduction: pickled after the session it names, it emits the
    records its node needs and loads as the list of their nodes, the node itself last."""

    __slots__ = ("node",)

    def __init__(self, node: Apply):
        self.node = node

    def __reduce_ex__(self, protocol: int) -> tuple:
        return (list, (_session().ancestors(self.node),))


def reduce_variable(variable: Variable) -> tuple:
    """``Variable.__reduce_ex__`` for a variable computed by a node."""
    node = variable.owner
    assert node is not None
    if node.outputs[variable.index] is not variable:  # a copy (``copy.copy``) of a node's output
        return (_copied_output, (_session(), _Ancestors(node), variable.index, variable.type, variable.name))
    return (_output, (_session(), _Ancestors(node), variable.index))


def reduce_node(node: Apply) -> tuple:
    """``Apply.__reduce_ex__``."""
    return (_node, (_session(), _Ancestors(node)))


# --- loading: plain functions, found by name ---------------------------------------------------------
def _nothing(*session: Any) -> None:
    return None


def _output(session: None, nodes: list[Apply], index: int) -> Variable:
    return nodes[-1].outputs[index]


def _copied_output(session: None, nodes: list[Apply], index: int, type: Any, name: str | None) -> Variable:
    return Variable(type, nodes[-1], index, name)


def _node(session: None, nodes: list[Apply]) -> Apply:
    return nodes[-1]


def _apply(op, sources, indexes, types, names, source, gradient, scope) -> Apply:
    node = Apply.__new__(Apply)
    node.op = op
    if indexes is None:
        node.inputs = tuple([s.outputs[0] if s.__class__ is Apply else s for s in sources])
    else:
        node.inputs = tuple([s.outputs[i] if s.__class__ is Apply else s for s, i in zip(sources, indexes)])
    if names is None:
        node.outputs = tuple([Variable(t, node, i) for i, t in enumerate(types)])
    else:
        node.outputs = tuple([Variable(t, node, i, name) for i, (t, name) in enumerate(zip(types, names))])
    node.source = source
    node.gradient = gradient
    node.scope = scope
    return node
