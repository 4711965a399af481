"""The graph IR: clients, source lines, safety of the generated code, deep graphs, determinism,
and rewrites that leave the user's graph as it was."""

from __future__ import annotations

import inspect
import linecache
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import symgraph as sg
from symgraph.graph.fgraph import FunctionGraph

THIS_FILE = os.path.abspath(__file__)


def line_here() -> int:
    """The line number of the caller."""
    return inspect.currentframe().f_back.f_lineno


# --- clients ------------------------------------------------------------------------------------
def _clients(fgraph, variable):
    return {(id(node), position) for node, position in fgraph.clients.get(variable, [])}


def test_a_function_graph_knows_the_clients_of_its_variables():
    x, w = sg.vector("x"), sg.vector("w")
    y = x + 1
    z = x * y
    u = sg.maximum(y, w)
    fgraph = FunctionGraph([x, w], [z, u])
    assert _clients(fgraph, x) == {(id(y.owner), 0), (id(z.owner), 0)}
    assert _clients(fgraph, y) == {(id(z.owner), 1), (id(u.owner), 0)}
    assert fgraph.clients[w] == [(u.owner, 1)]
    assert z not in fgraph.clients and u not in fgraph.clients


def test_clients_are_those_of_the_graph_compiled_not_of_every_graph_built():
    x = sg.vector("x")
    kept = x * 2
    other = x + 1
    assert _clients(FunctionGraph([x], [kept]), x) == {(id(kept.owner), 0)}
    assert _clients(FunctionGraph([x], [kept, other]), x) == {(id(kept.owner), 0), (id(other.owner), 0)}


def test_a_variable_used_twice_by_one_node_lists_both_positions():
    x = sg.vector("x")
    y = x * x
    assert sorted(position for node, position in FunctionGraph([x], [y]).clients[x] if node is y.owner) == [0, 1]


def test_graph_objects_hold_nothing_but_the_graph():
    x = sg.vector("x")
    y = sg.exp(x * 1 + 0) * 2
    f = sg.function([x], y)
    np.testing.assert_allclose(f(np.zeros(2)), [2.0, 2.0])
    y.eval({x: np.zeros(2)})
    assert not hasattr(x, "__dict__") and not hasattr(y.owner, "__dict__")
    assert set(sg.Apply.__slots__) == {"gradient", "inputs", "op", "outputs", "scope", "source"}


# --- source lines -------------------------------------------------------------------------------
def test_every_node_records_the_users_line():
    x = sg.matrix("x")
    y = (x - x.mean(axis=0)) / x.std(axis=0)
    line = line_here() - 1  # the statement above
    nodes = _nodes_of(y)
    assert len(nodes) > 5  # mean and std are built of several nodes, all from this line
    for node in nodes:
        assert node.source is not None, node
        assert os.path.abspath(node.source.filename) == THIS_FILE
        assert node.source.lineno == line
    assert "x.std(axis=0)" in y.owner.source.code
    assert y.source is y.owner.source
    assert x.source is None


def test_nodes_built_by_grad_carry_the_line_that_called_it():
    x = sg.vector("x")
    cost = (sg.tanh(x) ** 2).sum()
    gradient = sg.grad(cost, x)
    line = line_here() - 1  # the statement above
    new_nodes = [node for node in _nodes_of(gradient) if node not in set(_nodes_of(cost))]
    assert new_nodes
    for node in new_nodes:
        assert os.path.abspath(node.source.filename) == THIS_FILE
        assert node.source.lineno == line
        assert node.gradient
    assert not any(node.gradient for node in _nodes_of(cost))


def test_compiled_nodes_keep_the_users_lines():
    x = sg.vector("x")
    y = sg.exp(x * 1 + 0)
    y_line = line_here() - 1  # the statement above
    z = -(-y) * 2
    z_line = line_here() - 1
    f = sg.function([x], z)
    for node in f.graph.nodes:
        assert os.path.abspath(node.source.filename) == THIS_FILE
        assert node.source.lineno in (y_line, z_line)


def test_recording_the_line_reads_no_source_file(monkeypatch):
    """Recording the source is cheap: no file is read (no inspect.stack, no linecache) while
    building; the text is read only when a message asks for it."""

    def forbidden(*args, **kwargs):
        raise AssertionError("source files must not be read while building")

    x = sg.matrix("x")
    with monkeypatch.context() as patch:
        patch.setattr(linecache, "getline", forbidden)
        patch.setattr(linecache, "getlines", forbidden)
        patch.setattr(linecache, "updatecache", forbidden)
        patch.setattr(inspect, "stack", forbidden)
        patch.setattr(inspect, "getframeinfo", forbidden)
        y = x
        for _ in range(200):
            y = sg.tanh(y @ x.T).sum(axis=1, keepdims=True) + y.mean()
            line = line_here() - 1  # the statement above
    assert y.owner.source.lineno == line
    assert "sg.tanh" in y.owner.source.code


def _nodes_of(variable):
    found, stack, seen = [], [variable], set()
    while stack:
        current = stack.pop()
        node = current.owner
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        found.append(node)
        stack.extend(node.inputs)
    return found


# --- no user string reaches the generated code --------------------------------------------------
INJECTIONS = [
    "x); import os; os.system('true'",
    "x'); import os; os.system('true'); ('",
    'y"""\nimport os\nos.system("true")\n"""',
    "z\n    os.system('true')\n",
    "__import__('os').system('true')",
]


@pytest.mark.parametrize("name", INJECTIONS, ids=range(len(INJECTIONS)))
def test_names_never_reach_the_generated_code(monkeypatch, name):
    calls = []
    monkeypatch.setattr(os, "system", lambda command: calls.append(command) or 0)
    x = sg.vector(name)
    w = sg.shared(np.array([1.0, 2.0]), name=name)
    y = x * w + 1
    y.name = name
    c = sg.constant(np.array([3.0, 4.0]), name=name)
    counter = sg.shared(0, name=name)
    f = sg.function([x], [y, y * c], updates={counter: counter + 1, w: w * 2}, name=name)
    result, scaled = f(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(result, [2.0, 3.0])
    np.testing.assert_array_equal(scaled, [6.0, 12.0])
    assert counter.get_value() == 1
    np.testing.assert_array_equal(w.get_value(), [2.0, 4.0])
    assert name not in f.source
    assert "os.system" not in f.source and "import" not in f.source
    assert calls == []
    with pytest.raises(sg.errors.InputError):  # error messages may name it; nothing runs it
        f(np.ones(3, dtype="complex128"))
    assert calls == []


def test_the_classic_injection_string():
    name = "x); import os; os.system('true'"
    x = sg.vector(name)
    f = sg.function([x], x * 2)
    np.testing.assert_array_equal(f([1.0, 2.0]), [2.0, 4.0])
    assert name not in f.source


# --- deep graphs --------------------------------------------------------------------------------
def _chain(x, length):
    """``length`` elementwise nodes, each depending on the last."""
    y = x
    for _ in range(length // 2):
        y = y * 0.999 + 0.001
    return y


def _numpy_chain(value, length):
    y = value
    for _ in range(length // 2):
        y = y * 0.999 + 0.001
    return y


@pytest.fixture
def default_recursion_limit():
    """Python's default limit, whatever the test runner set; restored afterwards."""
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    yield 1000
    sys.setrecursionlimit(saved)


def test_a_10000_node_chain_builds_compiles_and_computes_at_the_default_recursion_limit(default_recursion_limit):
    limit = sys.getrecursionlimit()
    x = sg.vector("x")
    y = _chain(x, 10_000)
    assert len(_nodes_of(y)) == 10_000
    f = sg.function([x], y)
    value = np.array([2.0, -3.0, 0.5])
    np.testing.assert_allclose(f(value), _numpy_chain(value, 10_000), rtol=1e-12)
    g = sg.function([x], y, mode="fast_compile")
    np.testing.assert_allclose(g(value), _numpy_chain(value, 10_000), rtol=1e-12)
    np.testing.assert_allclose(y.eval({x: value}), _numpy_chain(value, 10_000), rtol=1e-12)
    assert sys.getrecursionlimit() == limit


def test_the_gradient_of_a_10000_node_chain(default_recursion_limit):
    limit = sys.getrecursionlimit()
    x = sg.vector("x")
    y = _chain(x, 10_000)
    gradient = sg.grad(y.sum(), x)
    f = sg.function([x], gradient)
    np.testing.assert_allclose(f(np.array([1.0, 2.0])), np.full(2, 0.999**5000), rtol=1e-9)
    assert sys.getrecursionlimit() == limit


def test_a_deep_chain_with_a_failing_node_reports_it():
    x = sg.vector("x")
    y = _chain(x, 2000)
    z = y + sg.vector("v")
    line = line_here() - 1  # the statement above
    v = z.owner.inputs[1]
    f = sg.function([x, v], z)
    with pytest.raises(ValueError, match=f"{os.path.basename(THIS_FILE)}:{line}"):
        f(np.ones(3), np.ones(2))


# --- determinism --------------------------------------------------------------------------------
def _model():
    x, t = sg.matrix("x"), sg.lvector("t")
    w = sg.shared(np.ones((3, 4)), name="w")
    b = sg.shared(np.zeros(4), name="b")
    hidden = sg.tanh(x @ w + b)
    scores = hidden - hidden.max(axis=1, keepdims=True)
    log_probs = scores - sg.log(sg.exp(scores).sum(axis=1, keepdims=True))
    cost = -log_probs[sg.arange(t.shape[0]), t].mean() + 0.01 * (w**2).sum()
    gw, gb = sg.grad(cost, [w, b])
    return sg.function([x, t], [cost, hidden.argmax(axis=1)], updates={w: w - 0.1 * gw, b: b - 0.1 * gb})


def test_same_graph_same_schedule():
    first, second = _model(), _model()
    assert first.source == second.source
    assert [str(node.op) for node in first.nodes] == [str(node.op) for node in second.nodes]
    x, t = sg.matrix("x"), sg.lvector("t")
    y = sg.exp(x).sum() + t.sum()
    f1, f2 = sg.function([x, t], y), sg.function([x, t], y)
    assert f1.source == f2.source
    assert [node.op.name for node in f1.nodes] == [node.op.name for node in f2.nodes]


def test_same_graph_same_program_across_processes():
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {os.path.dirname(THIS_FILE)!r})
        from test_graph import _model
        print(_model().source)
        """
    )
    sources = set()
    for seed in ("0", "12345"):
        environment = dict(os.environ, PYTHONHASHSEED=seed)
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=environment, timeout=120
        )
        assert done.returncode == 0, done.stderr
        sources.add(done.stdout)
    assert len(sources) == 1


# --- rewrites leave the user's graph alone ------------------------------------------------------
def _snapshot(outputs):
    """Every node reachable from ``outputs`` with its op, inputs and outputs, by identity."""
    nodes = []
    for output in outputs:
        nodes += _nodes_of(output)
    return {
        id(node): (
            node,
            node.op,
            tuple(id(v) for v in node.inputs),
            tuple(id(v) for v in node.outputs),
            tuple(v.type for v in node.outputs),
            node.source,
        )
        for node in nodes
    }


@pytest.mark.parametrize("mode", ["fast_run", "fast_compile", "debug"])
def test_rewrites_do_not_mutate_the_users_graph(mode):
    x = sg.matrix("x")
    w = sg.shared(np.full((2, 2), 0.5), name="w")
    c = sg.constant(np.array([1.0, 2.0]))
    y = -(-(x * 1 + 0)) @ w + c * 2 + (c + c)  # identities, double negation, constants to fold
    z = y.dimshuffle(1, 0).dimshuffle(1, 0).sum(axis=0) + y.sum(axis=0)  # merged dimshuffles, duplicates
    outputs = [y, z]
    before = _snapshot(outputs)
    names = {id(v): v.name for v in [x, w, c, y, z]}
    value = np.array([[1.0, 2.0], [3.0, -1.0]])
    expected_y = value @ np.full((2, 2), 0.5) + np.array([1.0, 2.0]) * 2 + np.array([2.0, 4.0])
    expected = [expected_y, 2 * expected_y.sum(axis=0)]
    results = []
    for _ in range(2):
        f = sg.function([x], outputs, mode=mode, updates={w: w * 1})
        results.append(f(value))
    for result in results:
        for got, want in zip(result, expected):
            np.testing.assert_allclose(got, want)
    after = _snapshot(outputs)
    assert before.keys() == after.keys()
    for key, (node, op, inputs, outs, types, source) in before.items():
        node_after, op_after, inputs_after, outs_after, types_after, source_after = after[key]
        assert node_after is node and op_after is op
        assert inputs_after == inputs and outs_after == outs and types_after == types and source_after == source
    assert {id(v): v.name for v in [x, w, c, y, z]} == names
    assert y.owner is not None and y.owner.op.name == "add"


def test_compiled_graph_differs_from_the_users_where_rewritten():
    x = sg.vector("x")
    y = (x * 1) + 0
    f = sg.function([x], sg.exp(y))
    compiled = {id(node) for node in f.graph.nodes}
    assert not compiled & {id(y.owner), id(y.owner.inputs[0].owner)}  # the identities are gone
    assert y.owner.op.name == "add" and y.owner.inputs[0].owner.op.name == "mul"
    np.testing.assert_allclose(f(np.array([0.0, 1.0])), np.exp([0.0, 1.0]))
