"""``sg.function(..., profile=True)``: per-node and per-op times and counts, on both backends."""

from __future__ import annotations

import inspect
import os
import time

import numpy as np
import pytest

import symgraph as sg

THIS_FILE = os.path.basename(__file__)
BACKENDS = ["numpy", "python"]


class Sleep(sg.Op):
    """``x`` itself, after sleeping ``seconds``: a node whose time is known."""

    __props__ = ("seconds",)

    def __init__(self, seconds: float):
        self.seconds = seconds

    def output_types(self, x):
        return [x]

    def perform(self, x):
        time.sleep(self.seconds)
        return x.copy()


def line_here() -> int:
    return inspect.currentframe().f_back.f_lineno


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_node_is_timed_and_counted_over_the_calls(backend):
    x = sg.matrix("x")
    y = sg.tanh(x @ x.T).sum()
    f = sg.function([x], y, profile=True, backend=backend)
    for _ in range(4):
        f(np.ones((5, 3)))
    profile = f.profile
    assert profile.calls == 4
    assert profile.nodes == f.nodes
    assert set(profile.node_times) == set(f.nodes) and set(profile.node_calls) == set(f.nodes)
    assert all(count == 4 for count in profile.node_calls.values())
    assert all(seconds > 0 for seconds in profile.node_times.values())
    assert sum(profile.node_times.values()) <= profile.time
    assert sum(profile.op_times.values()) == pytest.approx(sum(profile.node_times.values()))
    assert sum(profile.op_calls.values()) == 4 * len(f.nodes)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_slow_node_comes_first_with_its_time(backend):
    x = sg.vector("x")
    slow = Sleep(0.02)(sg.exp(x))
    line = line_here() - 1
    f = sg.function([x], slow * 2 + 1, profile=True, backend=backend)
    f(np.ones(3))
    f(np.ones(3))
    (sleeping,) = [node for node in f.nodes if isinstance(node.op, Sleep)]
    times = f.profile.node_times
    assert max(times, key=times.get) is sleeping
    assert 0.04 <= times[sleeping] <= f.profile.time
    assert next(iter(f.profile.op_times)) == Sleep(0.02)
    text = f.profile.summary(limit=3)
    lines = text.splitlines()
    assert lines[0].startswith("2 call(s)")
    # The ops table and the nodes table both start with the sleeping node, which names its line.
    ops_header = lines.index(next(line for line in lines if line.startswith("ops, by time")))
    assert "sleep" in lines[ops_header + 2]
    nodes_header = lines.index("nodes, by time:")
    assert "sleep ((3,))" in lines[nodes_header + 2] and f"{THIS_FILE}:{line}" in lines[nodes_header + 2]


def test_summary_prints_what_it_returns(capsys):
    x = sg.vector("x")
    f = sg.function([x], sg.exp(x) + 1, profile=True)
    f(np.ones(4))
    text = f.profile.summary()
    assert capsys.readouterr().out == text + "\n"
    assert "exp" in text and "add" in text and "(4,)" in text
    assert "the top 2 take 100.0%" in text


@pytest.mark.parametrize("backend", BACKENDS)
def test_input_shapes_are_those_of_the_last_call(backend):
    x = sg.matrix("x")
    f = sg.function([x], (x * 2).sum(axis=0), profile=True, backend=backend)
    f(np.ones((2, 3)))
    f(np.ones((4, 5)))
    shapes = f.profile.input_shapes
    mul = next(node for node in f.nodes if node.op.name == "mul")
    assert (4, 5) in shapes[mul]
    assert "(4, 5)" in f.profile.summary(file=open(os.devnull, "w"))


def test_in_place_updates_are_timed_too():
    x = sg.vector("x")
    w = sg.shared(np.ones(3), name="w")
    cost = ((x * w) ** 2).sum()
    f = sg.function([x], cost, updates=[(w, w - 0.1 * sg.grad(cost, w))], profile=True)
    plain = sg.function([x], cost, updates=[(w, w - 0.1 * sg.grad(cost, w))])
    for _ in range(3):
        f(np.ones(3))
    assert all(count == 3 for count in f.profile.node_calls.values())
    update = w.get_value()
    w.set_value(np.ones(3))
    for _ in range(3):
        plain(np.ones(3))
    np.testing.assert_allclose(update, w.get_value())  # profiling changes no result


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failing_call_counts_the_nodes_that_ran(backend):
    x = sg.vector("x")
    y = sg.exp(x).reshape((2, 2))
    f = sg.function([x], y + 1, profile=True, backend=backend)
    f(np.ones(4))
    with pytest.raises(ValueError):
        f(np.ones(3))
    counts = {node.op.name: count for node, count in f.profile.node_calls.items()}
    assert f.profile.calls == 2
    assert counts["exp"] == 2 and counts["reshape"] == 1 and counts["add"] == 1


def test_reset_starts_from_zero():
    x = sg.vector("x")
    f = sg.function([x], sg.exp(x), profile=True)
    f(np.ones(2))
    f.profile.reset()
    assert f.profile.calls == 0 and f.profile.time == 0
    assert set(f.profile.node_calls.values()) == {0} and set(f.profile.node_times.values()) == {0.0}
    assert set(f.profile.input_shapes.values()) == {None}
    assert f.profile.summary(file=open(os.devnull, "w")).startswith("0 call(s)")


def test_without_profile_the_program_has_no_timing():
    x = sg.vector("x")
    y = sg.exp(x) * 2
    plain, profiled = sg.function([x], y), sg.function([x], y, profile=True)
    assert plain.profile is None
    assert "clock" not in plain.source and "clock" in profiled.source
    assert plain.source == sg.function([x], y).source
    np.testing.assert_allclose(plain(np.ones(2)), profiled(np.ones(2)))


def test_a_large_profiled_program_split_in_parts():
    x = sg.vector("x")
    y = x
    for index in range(1500):
        y = sg.sin(y) if index % 2 else y + 0.5
    f = sg.function([x], y, profile=True)
    value = np.linspace(0.0, 1.0, 3)
    expected = value
    for index in range(1500):
        expected = np.sin(expected) if index % 2 else expected + 0.5
    np.testing.assert_allclose(f(value), expected)
    assert "def part" in f.source
    assert set(f.profile.node_calls.values()) == {1}


def test_compile_times_name_every_step():
    x = sg.vector("x")
    f = sg.function([x], sg.exp(x))
    steps = list(f.compile_times)
    assert steps[:5] == ["givens", "inline", "phase", "checks", "rewrites"]
    for step in ("schedule", "memory plan", "code generation", "compile()"):
        assert step in steps
    assert all(seconds >= 0 for seconds in f.compile_times.values())
    assert "rewrites" in sg.function([x], sg.exp(x), backend="python").compile_times
