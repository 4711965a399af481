"""Large graphs: the generated program compiled in parts, the execution order without networkx,
and the shapes that memory planning proves equal without testing them at run time."""

from __future__ import annotations

import inspect
import os
import random
import weakref

import networkx as nx
import numpy as np
import pytest

import symgraph as sg
from symgraph.backends.numpy import linker
from symgraph.graph.traversal import postorder, schedule

THIS_FILE = os.path.basename(__file__)


def line_here() -> int:
    return inspect.currentframe().f_back.f_lineno


def _chain(x, length):
    y = x
    for index in range(length):
        y = sg.sin(y) if index % 2 else y * 0.999 + 0.25
    return y


def _numpy_chain(value, length):
    y = value
    for index in range(length):
        y = np.sin(y) if index % 2 else y * 0.999 + 0.25
    return y


# --- programs in parts --------------------------------------------------------------------------
def test_a_program_longer_than_a_part_is_split_and_computes_the_same():
    x = sg.vector("x")
    y = _chain(x, 3 * linker._PART_SIZE)
    gradient = sg.grad(y.sum(), x)
    f = sg.function([x], [y, gradient])
    assert f.source.count("def part") >= 3
    reference = sg.function([x], [y, gradient], backend="python")
    value = np.array([0.3, -1.2, 2.0])
    for got, expected in zip(f(value), reference(value)):
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(f(value)[0], _numpy_chain(value, 3 * linker._PART_SIZE), rtol=1e-12)


def test_a_short_program_is_one_function():
    x = sg.vector("x")
    f = sg.function([x], _chain(x, 10))
    assert "def part" not in f.source and f.source.startswith("def program(args):")


def test_a_failing_node_inside_a_part_names_its_line_and_shapes():
    x, v = sg.vector("x"), sg.vector("v")
    y = _chain(x, 2 * linker._PART_SIZE)
    z = _chain(y + v, 2 * linker._PART_SIZE)
    line = line_here() - 1
    f = sg.function([x, v], z)
    assert f.source.count("def part") >= 3
    with pytest.raises(ValueError, match=f"{THIS_FILE}:{line}") as caught:
        f(np.ones(3), np.ones(2))
    assert "in add" in str(caught.value) and "(3,)" in str(caught.value) and "(2,)" in str(caught.value)
    np.testing.assert_allclose(
        f(np.ones(3), np.ones(3)),
        _numpy_chain(_numpy_chain(np.ones(3), 2 * linker._PART_SIZE) + 1, 2 * linker._PART_SIZE),
    )


def test_parts_with_updates_and_random_state():
    x = sg.vector("x")
    w = sg.shared(np.ones(3), name="w")
    srng = sg.RandomStreams(3)
    y = _chain(x + srng.uniform((3,)), linker._PART_SIZE + 10)
    cost = (y * w).sum()
    f = sg.function([x], cost, updates=[(w, w - 0.01 * sg.grad(cost, w))])
    g = sg.function([x], cost, updates=[(w, w - 0.01 * sg.grad(cost, w))], backend="python")
    assert "def part" in f.source
    first = [f(np.ones(3)) for _ in range(2)]
    after_f = w.get_value()
    w.set_value(np.ones(3))
    srng.seed(3)
    second = [g(np.ones(3)) for _ in range(2)]
    np.testing.assert_allclose(first, second)  # the same draws, the same updates
    np.testing.assert_allclose(after_f, w.get_value())
    assert not np.allclose(after_f, np.ones(3))


def test_the_line_table_points_at_the_node_statements():
    x = sg.vector("x")
    f = sg.function([x], _chain(x, linker._PART_SIZE + 50))
    lines = f.source.splitlines()
    for number, node in f.program.line_table.items():
        statement = lines[number - 1].strip()
        assert statement.split(" = ", 1)[0].strip(), statement
        assert "(" in statement and not statement.startswith(("def ", "del ", "return")), statement


class Track(sg.Op):
    """A copy of ``x``, of which ``made`` keeps a weak reference: whether the program still holds
    the array can be seen from outside."""

    __props__ = ()
    made: list = []

    def output_types(self, x):
        return [x]

    def perform(self, x):
        copy = x.copy()
        Track.made.append(weakref.ref(copy))
        return copy


class Probe(sg.Op):
    """``x + 0``, noting at that moment whether each array ``Track`` made is still alive."""

    __props__ = ("label",)
    seen: dict = {}

    def __init__(self, label: str):
        self.label = label

    def output_types(self, x):
        return [x]

    def perform(self, x):
        Probe.seen[self.label] = [reference() is not None for reference in Track.made]
        return x + 0.0


def test_a_value_crossing_parts_is_read_by_later_parts_and_dropped_after_its_last_read():
    x = sg.vector("x")
    a = Track()(x)  # made in the first part; read again in the third and the fifth
    y = _chain(a, 2 * linker._PART_SIZE)
    y = Probe("before")(_chain(y * a, linker._PART_SIZE))
    y = _chain(y + a, linker._PART_SIZE)
    y = Probe("after")(_chain(y, linker._PART_SIZE))
    f = sg.function([x], y)
    assert f.source.count("def part") >= 5
    Track.made.clear()
    value = np.array([0.3, -0.2, 0.1])
    result = f(value)
    assert Probe.seen == {"before": [True], "after": [False]}  # alive while a later part reads it, no longer
    expected = _numpy_chain(value, 2 * linker._PART_SIZE) * value
    expected = _numpy_chain(_numpy_chain(expected, linker._PART_SIZE) + value, 2 * linker._PART_SIZE)
    np.testing.assert_allclose(result, expected, rtol=1e-12)


def test_a_failing_node_reading_a_value_made_parts_earlier_names_its_line_and_shapes():
    x, v = sg.vector("x"), sg.vector("v")
    u = v * 2.0  # made first (the chain reads its sum), read again three parts later
    y = _chain(x * u.sum(), 3 * linker._PART_SIZE)
    z = y + u
    line = line_here() - 1
    f = sg.function([x, v], sg.exp(z))
    assert f.source.count("def part") >= 3
    with pytest.raises(ValueError, match=f"{THIS_FILE}:{line}") as caught:
        f(np.ones(3), np.ones(2))
    assert "in add" in str(caught.value) and "(3,)" in str(caught.value) and "(2,)" in str(caught.value)
    expected = np.exp(_numpy_chain(np.ones(3) * 6.0, 3 * linker._PART_SIZE) + 2.0)
    np.testing.assert_allclose(f(np.ones(3), np.ones(3)), expected, rtol=1e-12)


# --- the execution order ------------------------------------------------------------------------
def _networkx_schedule(outputs):
    """The order networkx gave before: the walk's order, shape-reading nodes right after what
    they read, by ``lexicographical_topological_sort``."""
    nodes = postorder(outputs)
    position = {id(node): index for index, node in enumerate(nodes)}
    preference = [float(index) for index in range(len(nodes))]
    for index, node in enumerate(nodes):
        if node.op.reads_only_shape:
            producers = [position.get(id(v.owner), -1) for v in node.inputs if v.owner is not None]
            preference[index] = max(producers, default=-1) + 0.5
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(nodes)))
    graph.add_edges_from(
        (position[id(v.owner)], index) for index, node in enumerate(nodes) for v in node.inputs if v.owner is not None
    )
    return [nodes[index] for index in nx.lexicographical_topological_sort(graph, key=preference.__getitem__)]


@pytest.mark.parametrize("seed", range(8))
def test_the_schedule_is_networkx_lexicographical_order(seed):
    rng = random.Random(seed)
    x, m = sg.vector("x"), sg.matrix("m")
    pool = [x, m.sum(axis=0), sg.exp(x)]
    for _ in range(30):
        a, b = rng.choice(pool), rng.choice(pool)
        kind = rng.randrange(5)
        if kind == 0:
            pool.append(a * b)
        elif kind == 1:
            pool.append(sg.tanh(a) + 1.0)
        elif kind == 2:
            pool.append(sg.zeros_like(a) + b)  # reads a's shape only
        elif kind == 3:
            pool.append(a.sum() * sg.ones_like(b))
        else:
            pool.append(sg.maximum(a, b))
    cost = sum(rng.sample(pool[3:], 4)).sum()
    gradients = sg.grad(cost, [x, m], disconnected_inputs="ignore")
    outputs = [cost, *gradients]
    order = schedule(outputs)
    assert order == _networkx_schedule(outputs)
    assert any(node.op.reads_only_shape for node in order)
    done: set[int] = set()
    for node in order:  # every node after the nodes it reads
        assert all(v.owner is None or id(v.owner) in done for v in node.inputs)
        done.add(id(node))


# --- shapes proved equal ------------------------------------------------------------------------
def test_arrays_computed_from_one_input_need_no_shape_test():
    x = sg.vector("x")
    y = sg.exp(x)
    f = sg.function([x], sg.sin(y) * sg.cos(y) + y)
    assert ".shape" not in f.source
    np.testing.assert_allclose(
        f(np.arange(3.0)), np.sin(np.exp(np.arange(3.0))) * np.cos(np.exp(np.arange(3.0))) + np.exp(np.arange(3.0))
    )


def test_a_gradient_chain_needs_no_shape_test():
    x = sg.vector("x")
    f = sg.function([x], sg.grad(_chain(x, 20).sum(), x))
    assert ".shape" not in f.source


def test_arrays_of_unrelated_shapes_keep_their_test_and_broadcast():
    x, y = sg.vector("x"), sg.vector("y")
    f = sg.function([x, y], sg.sin(x) * sg.cos(y))
    assert ".shape" in f.source  # either may be 1 long at run time
    np.testing.assert_allclose(f(np.ones(1), np.arange(3.0)), np.sin(1.0) * np.cos(np.arange(3.0)))
    np.testing.assert_allclose(f(np.arange(3.0), np.ones(1)), np.sin(np.arange(3.0)) * np.cos(1.0))


def test_a_mask_of_an_arrays_shape_multiplies_it_in_place_without_a_test():
    x = sg.matrix("x")
    srng = sg.RandomStreams(0)
    h = sg.exp(x)
    f = sg.function([x], h * srng.uniform(h.shape))
    assert ".shape[" not in f.source
    assert f(np.zeros((2, 3))).shape == (2, 3)
