"""sg.to_networkx, sg.to_dot and sg.plot: the graph model, its DOT text, and the pictures."""

import re
import sys
import xml.etree.ElementTree as ElementTree

import networkx as nx
import numpy as np
import pytest

import symgraph as sg
from symgraph import viz
from symgraph.graph.traversal import postorder

HAS_DOT = viz.dot_program() is not None
HAS_MATPLOTLIB = viz._has_matplotlib()
MAGIC = {".png": b"\x89PNG\r\n\x1a\n", ".pdf": b"%PDF-"}
WEIRD_NAME = 'a"b{c}\\d<e>&$x$'


def small_graph():
    """x (input) * w (shared) -> mul -> exp -> + 2.0 (constant) -> out."""
    x = sg.vector("x")
    w = sg.shared(np.ones(3), name="w", shape=(3,))
    z = x * w
    out = sg.exp(z) + 2.0
    out.name = "out"
    return x, w, z, out


def mlp_functions():
    rng = np.random.default_rng(0)
    x, t = sg.tensor("x", shape=(None, 4)), sg.ivector("t")
    W1 = sg.shared(rng.normal(size=(4, 5)), name="W1")
    W2 = sg.shared(rng.normal(size=(5, 3)), name="W2")
    hidden = sg.nn.dropout(sg.nn.relu(x @ W1), rate=0.5)
    hidden.name = "hidden"
    probabilities = sg.nn.softmax(hidden @ W2)
    cost = sg.nn.categorical_crossentropy(probabilities, t).mean()
    cost.name = "cost"
    grads = sg.grad(cost, [W1, W2])
    updates = [(W, W - 0.1 * g) for W, g in zip([W1, W2], grads)]
    train = sg.function([x, t], cost, updates=updates, phase="train", name="train")
    predict = sg.function([x], probabilities.argmax(axis=1), phase="predict", name="predict")
    return cost, grads, train, predict


def ops(graph, **attributes):
    return [
        key
        for key, data in graph.nodes(data=True)
        if data["kind"] == "op" and all(data[name] == value for name, value in attributes.items())
    ]


def flow(graph):
    return nx.subgraph_view(graph, filter_edge=lambda u, v: not graph.edges[u, v]["update"])


def variable_key(graph, name):
    (key,) = [key for key, data in graph.nodes(data=True) if data["kind"] != "op" and data["name"] == name]
    return key


# --- to_networkx -----------------------------------------------------------------------------------------
def test_small_graph_structure_and_attributes():
    *_, out = small_graph()
    g = sg.to_networkx(out)
    assert isinstance(g, nx.DiGraph)
    kinds = sorted(kind for _, kind in g.nodes(data="kind"))
    assert kinds == sorted(["input", "shared", "constant", "intermediate", "intermediate", "output", "op", "op", "op"])
    assert g.number_of_edges() == 8
    assert nx.is_directed_acyclic_graph(g)
    assert sorted(data["op"] for _, data in g.nodes(data=True) if data["kind"] == "op") == ["add", "exp", "mul"]
    for key, data in g.nodes(data=True):
        assert isinstance(data["label"], str) and data["label"]
        if data["kind"] == "op":
            assert data["stochastic"] is False and data["phase_dependent"] is False and data["gradient"] is False
            assert "test_viz.py" in data["source"]
        else:
            assert data["dtype"] == "float64"
            assert data["shape"] in ((None,), (3,), ())
    x_key, w_key, out_key = variable_key(g, "x"), variable_key(g, "w"), variable_key(g, "out")
    assert g.nodes[w_key]["shape"] == (3,) and g.nodes[w_key]["kind"] == "shared"
    assert g.nodes[x_key]["shape"] == (None,) and g.nodes[x_key]["kind"] == "input"
    assert g.nodes[out_key]["kind"] == "output" and "out" in g.nodes[out_key]["label"]
    # Data flows from the inputs, through mul, exp and add, to the output.
    (mul,) = list(g.successors(x_key))
    assert g.nodes[mul]["op"] == "mul" and set(g.predecessors(mul)) == {x_key, w_key}
    assert g.edges[x_key, mul]["position"] == 0 and g.edges[w_key, mul]["position"] == 1
    path = nx.shortest_path(g, x_key, out_key)
    assert [g.nodes[key].get("op") for key in path[1::2]] == ["mul", "exp", "add"]
    (constant,) = [key for key, kind in g.nodes(data="kind") if kind == "constant"]
    assert g.nodes[constant]["name"] is None and "2.0" in g.nodes[constant]["label"]


def test_gradient_ops_are_marked():
    x = sg.vector("x")
    cost = (sg.tanh(x) ** 2).sum()
    g = sg.to_networkx([cost, sg.grad(cost, x)])
    forward = len(postorder([cost]))
    assert len(ops(g, gradient=False)) == forward
    assert len(ops(g, gradient=True)) == len(postorder([cost, sg.grad(cost, x)])) - forward > 0
    for key in ops(g, gradient=True):
        for variable in g.successors(key):
            assert g.nodes[variable]["gradient"] is True


def test_dropout_is_stochastic_and_phase_dependent_until_compiled():
    cost, _, train, predict = mlp_functions()
    (mask,) = ops(sg.to_networkx(cost), op="dropout_mask")
    assert sg.to_networkx(cost).nodes[mask]["stochastic"] and sg.to_networkx(cost).nodes[mask]["phase_dependent"]
    train_graph, predict_graph = sg.to_networkx(train), sg.to_networkx(predict)
    (drawn,) = ops(train_graph, op="bernoulli_mask")
    assert train_graph.nodes[drawn]["stochastic"] and not train_graph.nodes[drawn]["phase_dependent"]
    assert not ops(predict_graph, stochastic=True) and not ops(predict_graph, phase_dependent=True)
    assert not any("mask" in data.get("op", "") for _, data in predict_graph.nodes(data=True))


def test_compiled_function_outputs_updates_and_unused_inputs():
    x, unused = sg.vector("x"), sg.vector("unused")
    w = sg.shared(np.zeros(3), name="w")
    f = sg.function([x, unused], (x * w).sum(), updates=[(w, w + x)], on_unused_input="ignore")
    g = sg.to_networkx(f)
    assert g.graph["title"].startswith("function ")
    outputs = [key for key, kind in g.nodes(data="kind") if kind == "output"]
    assert len(outputs) == 1 and g.nodes[outputs[0]]["label"].startswith("output 0")
    assert g.nodes[variable_key(g, "unused")]["kind"] == "input" and g.degree(variable_key(g, "unused")) == 0
    w_key = variable_key(g, "w")
    updates = [(u, v) for u, v, update in g.edges(data="update") if update]
    assert len(updates) == 1 and updates[0][1] == w_key
    value = updates[0][0]
    assert g.nodes[value]["label"].startswith("new w")
    assert g.nodes[next(iter(g.predecessors(value)))]["op"] == "add"
    assert not nx.is_directed_acyclic_graph(g) and nx.is_directed_acyclic_graph(flow(g))
    # The bare FunctionGraph: the same nodes and edges, its update included.
    bare = sg.to_networkx(f.graph)
    assert bare.number_of_nodes() == g.number_of_nodes() and bare.number_of_edges() == g.number_of_edges()
    assert sum(1 for _, _, update in bare.edges(data="update") if update) == 1


def test_collapse_gradient_folds_every_gradient_op_into_one_box():
    cost, grads, _, _ = mlp_functions()
    full = sg.to_networkx([cost, *grads])
    folded = sg.to_networkx([cost, *grads], collapse="gradient")
    (box,) = ops(folded, op="collapsed")
    assert folded.nodes[box]["collapsed"] == len(ops(full, gradient=True))
    assert folded.nodes[box]["gradient"] is True
    assert ops(folded, gradient=True) == [box]
    assert len(ops(folded, gradient=False)) == len(ops(full, gradient=False))
    # The gradients themselves are still there, made by the box.
    outputs = [key for key, kind in folded.nodes(data="kind") if kind == "output"]
    assert len(outputs) == 3 and sum(1 for key in outputs if box in folded.predecessors(key)) == 2


def test_collapse_a_variable_folds_what_it_is_computed_from():
    _, _, z, out = small_graph()
    z.name = "z"
    g = sg.to_networkx(out, collapse=z)
    (box,) = ops(g, op="collapsed")
    assert g.nodes[box]["collapsed"] == 1 and g.nodes[box]["label"].startswith("z")
    assert set(g.predecessors(box)) == {variable_key(g, "x"), variable_key(g, "w")}
    assert list(g.successors(box)) == [variable_key(g, "z")]
    assert sorted(g.nodes[key]["op"] for key in ops(g)) == ["add", "collapsed", "exp"]


def test_collapse_by_name_in_a_compiled_graph_and_unknown_names():
    _, _, train, _ = mlp_functions()
    g = sg.to_networkx(train, collapse=["hidden"])
    (box,) = ops(g, op="collapsed")
    assert g.nodes[box]["stochastic"]  # the dropout mask is folded in
    assert not ops(g, op="relu") and ops(g, op="softmax_crossentropy")
    with pytest.raises(ValueError, match="no variable 'nothing'"):
        sg.to_networkx(train, collapse="nothing")
    with pytest.raises(TypeError, match="collapse takes"):
        sg.to_networkx(train, collapse=[3])


# --- to_dot ---------------------------------------------------------------------------------------------
def dot_statements(text):
    nodes = dict(re.findall(r'^\s*"([^"]+)" \[(label=.*)\];$', text, flags=re.M))
    edges = re.findall(r'^\s*"([^"]+)" -> "([^"]+)"( \[.*\])?;$', text, flags=re.M)
    return nodes, edges


def test_dot_has_a_line_for_every_node_and_edge():
    *_, out = small_graph()
    g = sg.to_networkx(out)
    text = sg.to_dot(out, intermediates=True, legend=False)
    assert text.startswith("digraph symgraph {") and text.rstrip().endswith("}")
    nodes, edges = dot_statements(text)
    assert set(nodes) == {f"g0_{key}" for key in g.nodes}
    assert {(a, b) for a, b, _ in edges} == {(f"g0_{u}", f"g0_{v}") for u, v in g.edges}
    assert "shape=box" in nodes[f"g0_{ops(g, op='exp')[0]}"]
    assert "shape=ellipse" in nodes[f"g0_{variable_key(g, 'x')}"]


def test_dot_by_default_draws_unnamed_intermediates_inside_their_op():
    *_, out = small_graph()
    nodes, edges = dot_statements(sg.to_dot(out, legend=False))
    assert len(nodes) == 9 - 2 and len(edges) == 8 - 2
    (mul,) = [attributes for attributes in nodes.values() if attributes.startswith('label="mul')]
    assert "float64 (3,)" in mul


def unescape(text):
    """A quoted DOT string's value."""
    assert text[0] == text[-1] == '"'
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), text[1:-1])


def test_dot_parses_back_with_pydot_and_escapes_labels():
    pydot = pytest.importorskip("pydot")
    x = sg.vector(WEIRD_NAME)
    y = sg.exp(x)
    y.name = "two\nlines {}"
    text = sg.to_dot(y, legend=False)
    (parsed,) = pydot.graph_from_dot_data(text)
    g = nx.nx_pydot.from_pydot(parsed)
    assert g.number_of_nodes() == 3 and g.number_of_edges() == 2
    labels = {unescape(data["label"]) for _, data in g.nodes(data=True)}
    assert labels == {f"{WEIRD_NAME}\nfloat64 (?,)", "two\nlines {}\nfloat64 (?,)", "exp"}


def test_dot_compare_puts_each_function_in_its_own_cluster():
    _, _, train, predict = mlp_functions()
    text = sg.to_dot(train, compare=predict, titles=["train", "predict"])
    train_part, predict_part = text.split("subgraph cluster_g1")
    assert "subgraph cluster_g0" in train_part and 'label="train"' in train_part
    assert 'label="predict"' in predict_part
    assert "bernoulli_mask" in train_part and "[random" in train_part
    assert "mask" not in predict_part.split("subgraph cluster_legend")[0]
    with pytest.raises(ValueError, match="2 titles for 3 graphs"):
        sg.to_dot(train, compare=[predict, predict], titles=["a", "b"])


# --- plot -----------------------------------------------------------------------------------------------
RENDERERS = [
    pytest.param("graphviz", marks=pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")),
    pytest.param("matplotlib", marks=pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")),
]


def svg_text(path):
    root = ElementTree.parse(path).getroot()  # raises if not well-formed XML
    assert root.tag.endswith("svg")
    return "\n".join(element.text for element in root.iter() if element.text)


@pytest.mark.parametrize("renderer", RENDERERS)
def test_plot_svg_holds_every_variable_name(tmp_path, renderer):
    _, _, train, _ = mlp_functions()
    path = sg.plot(train, tmp_path / "train.svg", renderer=renderer)
    assert path == tmp_path / "train.svg"
    text = svg_text(path)
    for name in ("x", "t", "W1", "W2", "hidden", "new W1", "cost", "bernoulli_mask", "gradient op"):
        assert name in text, name


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("suffix", [".png", ".pdf"])
def test_plot_png_and_pdf_have_their_magic_bytes(tmp_path, renderer, suffix):
    cost, grads, _, _ = mlp_functions()
    path = sg.plot([cost, *grads], tmp_path / f"gradient{suffix}", renderer=renderer, collapse="gradient")
    assert path.read_bytes().startswith(MAGIC[suffix])


@pytest.mark.parametrize("renderer", RENDERERS)
def test_plot_escapes_names(tmp_path, renderer):
    y = sg.exp(sg.vector(WEIRD_NAME))
    assert WEIRD_NAME in svg_text(sg.plot(y, tmp_path / "weird.svg", renderer=renderer))


@pytest.mark.parametrize("renderer", RENDERERS)
def test_plot_side_by_side_shows_both_titles(tmp_path, renderer):
    _, _, train, predict = mlp_functions()
    path = sg.plot(train, tmp_path / "both.svg", compare=predict, titles=["TRAIN", "PREDICT"], renderer=renderer)
    text = svg_text(path)
    assert "TRAIN" in text and "PREDICT" in text and text.count("bernoulli_mask") == 1


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")
def test_plot_falls_back_to_matplotlib_without_dot(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot to be found
    assert viz.dot_program() is None
    *_, out = small_graph()
    path = sg.plot(out, tmp_path / "fallback.svg")
    content = path.read_text()
    assert "Matplotlib" in content and "graphviz" not in content.lower()
    assert {"x", "w", "out"} <= set(svg_text(path).split("\n"))
    with pytest.raises(ImportError, match="apt-get install graphviz"):
        sg.plot(out, tmp_path / "needs_dot.svg", renderer="graphviz")
    assert not (tmp_path / "needs_dot.svg").exists()


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")
def test_plot_uses_graphviz_when_dot_is_there(tmp_path):
    *_, out = small_graph()
    assert "Generated by graphviz" in sg.plot(out, tmp_path / "dot.svg").read_text()


def test_plot_without_dot_or_matplotlib_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    *_, out = small_graph()
    with pytest.raises(ImportError, match=re.escape("pip install symgraph[viz]")) as error:
        sg.plot(out, tmp_path / "nothing.png")
    assert "pip install graphviz matplotlib" in str(error.value) and "apt-get install graphviz" in str(error.value)
    assert not (tmp_path / "nothing.png").exists()
    sg.to_dot(out)  # DOT text needs neither


def test_plot_refuses_unknown_suffix_and_renderer(tmp_path):
    *_, out = small_graph()
    with pytest.raises(ValueError, match=r"\.svg, \.png, \.pdf"):
        sg.plot(out, tmp_path / "graph.jpg")
    with pytest.raises(ValueError, match="renderer must be one of"):
        sg.plot(out, tmp_path / "graph.svg", renderer="ascii")
