"""The explorer's HTML page (sg.plot(obj, 'graph.html')), checked without a browser: one
self-contained file, its hooks, the data it holds, the layout it carries, and Jupyter's repr.
The same pages in a real browser: tests/test_explorer_browser.py."""

import html
import json
import re
import sys
from html.parser import HTMLParser

import networkx as nx
import numpy as np
import pytest

import symgraph as sg
from symgraph import viz
from symgraph.explorer import explorer_html, repr_html
from symgraph.graph.source import in_scope

HOSTILE = "</script><script>alert(1)</script>"


def adam_mlp(hidden_name="hidden"):
    rng = np.random.default_rng(0)
    x, t = sg.tensor("x", shape=(None, 4)), sg.ivector("t")
    W1 = sg.shared(rng.normal(size=(4, 5)), name="W1")
    W2 = sg.shared(rng.normal(size=(5, 3)), name="W2")
    hidden = sg.nn.dropout(sg.nn.relu(x @ W1), rate=0.5)
    hidden.name = hidden_name
    probabilities = sg.nn.softmax(hidden @ W2)
    cost = sg.nn.categorical_crossentropy(probabilities, t).mean()
    train = sg.function([x, t], cost, updates=sg.optim.adam(cost, [W1, W2]), phase="train", name="train")
    predict = sg.function([x], probabilities, phase="predict", name="predict")
    return train, predict


class Page(HTMLParser):
    """The tags of a page, checking that every element opened is closed in order."""

    VOID = {"meta", "input", "br", "img", "link", "hr"}

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.stack, self.tags, self.errors, self.scripts = [], [], [], []
        self._script = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = []
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()
        if tag == "script":
            self.scripts.append((self.tags[-1][1] if self.tags else {}, "".join(self._script or [])))
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            self._script.append(data)


def data_of(text):
    (payload,) = re.findall(r'<script type="application/json" id="sg-data">(.*?)</script>', text, re.S)
    return json.loads(payload)


def drawn_at_start(panel):
    """What the page draws before any click: every node outside groups, and each outermost group."""
    return sum(1 for node in panel["nodes"] if node["parent"] == -1) + sum(
        1 for group in panel["groups"] if group["parent"] == -1
    )


# --- one self-contained file ------------------------------------------------------------------------------
def test_the_page_is_well_formed_self_contained_and_has_its_hooks(tmp_path):
    train, _ = adam_mlp()
    path = sg.plot(train, tmp_path / "train.html")
    assert path == tmp_path / "train.html"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    page = Page(text)
    assert not page.errors and not page.stack, (page.errors, page.stack)
    tags = [tag for tag, _ in page.tags]
    # Nothing fetched: no external script, style sheet, image, font or frame.
    for tag, attributes in page.tags:
        assert "src" not in attributes and "href" not in attributes, (tag, attributes)
    assert "link" not in tags and "img" not in tags and "iframe" not in tags
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//|https?://(?!www\.w3\.org/2000/svg)", text)
    assert tags.count("script") == 2 and tags.count("style") == 1
    # The hooks the tests (and anybody's tools) rely on.
    (search,) = [attributes for tag, attributes in page.tags if tag == "input"]
    assert search["type"] == "search"
    assert any("data-sg-details" in attributes for _, attributes in page.tags)
    script = page.scripts[-1][1]
    for hook in ("data-sg-node", "data-sg-kind", "data-sg-op", "data-sg-group"):
        assert hook in script
    assert "data-sg-ready" in script
    # The page's data is JSON, one panel holding every drawn node of the graph.
    data = data_of(text)
    (panel,) = data["panels"]
    full = viz.drawable(train, expand=True)
    assert [node["id"] for node in panel["nodes"]] == list(full.nodes)
    assert drawn_at_start(panel) == viz.drawable(train).number_of_nodes()


def test_the_page_needs_neither_graphviz_nor_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    x = sg.vector("x")
    path = sg.plot(sg.exp(x) + 1.0, tmp_path / "small.html")
    assert "symgraph explorer" in path.read_text(encoding="utf-8")
    with pytest.raises(ImportError, match="pip install symgraph"):
        sg.plot(sg.exp(x), tmp_path / "small.svg")


def test_names_cannot_break_out_of_the_page():
    x = sg.vector(HOSTILE)
    y = sg.exp(x)
    y.name = 'a"b<c>&'
    text = explorer_html([y], titles=[HOSTILE])
    assert HOSTILE not in text  # neither in the data nor in the title
    page = Page(text)
    assert not page.errors and [tag for tag, _ in page.tags].count("script") == 2
    data = data_of(text)
    labels = {node["label"].split("\n")[0] for node in data["panels"][0]["nodes"]}
    assert HOSTILE in labels and 'a"b<c>&' in labels  # the names themselves are intact
    assert data["panels"][0]["title"] == HOSTILE


def test_a_ten_thousand_node_graph_is_under_five_megabytes(tmp_path):
    lanes = chain_graph(10_000)
    path = sg.plot(lanes, tmp_path / "large.html")
    panel = data_of(path.read_text(encoding="utf-8"))["panels"][0]
    assert len(panel["nodes"]) >= 10_000
    assert path.stat().st_size < 5_000_000


def chain_graph(ops):
    """``ops`` op nodes (each drawn: no intermediate to show), 16 lanes mixed at every step."""
    x = sg.vector("x")
    lanes = [x * float(lane + 1) for lane in range(16)]
    count, step = 16, 0
    while count < ops:
        for lane in range(len(lanes)):
            if count >= ops:
                break
            lanes[lane] = sg.tanh(lanes[lane]) if step % 2 else lanes[lane] + lanes[(lane + 1) % len(lanes)]
            count += 1
        step += 1
    return lanes


# --- the layout the page carries ---------------------------------------------------------------------------
def test_each_block_is_layered_downwards_without_overlaps():
    train, _ = adam_mlp()
    (panel,) = data_of(explorer_html([train]))["panels"]
    full = viz.drawable(train, expand=True)
    index = {node["id"]: number for number, node in enumerate(panel["nodes"])}
    members = {}
    for number, node in enumerate(panel["nodes"]):
        members.setdefault(node["parent"], []).append((node["layer"], node["x"], node["w"]))
    for number, group in enumerate(panel["groups"]):
        members.setdefault(group["parent"], []).append((group["layer"], group["x"], group["w"]))
    for block, placed in members.items():
        by_layer = {}
        for layer, x, width in placed:
            by_layer.setdefault(layer, []).append((x - width / 2, x + width / 2))
        for spans in by_layer.values():
            spans.sort()
            for (_, right), (left, _) in zip(spans, spans[1:]):
                assert left >= right - 1e-6, (block, spans)
    # Data flows down: within a block, an edge goes to a lower layer (or along a folded cycle).
    for source, target, data in full.edges(data=True):
        a, b = panel["nodes"][index[source]], panel["nodes"][index[target]]
        if not data["update"] and a["parent"] == b["parent"]:
            assert b["layer"] >= a["layer"], (source, target)


def test_groups_carry_their_closed_box_and_their_own_layout():
    train, _ = adam_mlp()
    (panel,) = data_of(explorer_html([train]))["panels"]
    folded = viz.drawable(train)
    names = {group["name"]: group for group in panel["groups"]}
    adam = names["adam W1"]
    assert adam["label"] == folded.nodes[adam["id"]]["label"]  # the box sg.plot draws
    assert adam["ops"] == 13 and sorted(adam["updates"]) == ["W1_adam_m", "W1_adam_v"]
    inside = [node for node in panel["nodes"] if node["parent"] == panel["groups"].index(adam)]
    assert len({node["layer"] for node in inside}) == len(adam["content"]["layers"])
    assert all(
        0 <= node["x"] - node["w"] / 2 and node["x"] + node["w"] / 2 <= adam["content"]["w"] + 1e-6 for node in inside
    )
    gradients = panel["groups"].index(names["gradients"])
    assert any(group["parent"] == gradients for group in panel["groups"])  # the gradient scopes nest in it
    source = panel["strings"][adam["source"]]
    assert "test_explorer.py" in source and "sg.optim.adam" in source


def test_side_by_side_marks_what_only_one_function_holds():
    train, predict = adam_mlp()
    first, second = data_of(explorer_html([train, predict], titles=["train", "predict"]))["panels"]
    assert (first["title"], second["title"]) == ("train", "predict")
    marked = {group["name"]: group.get("only") for group in first["groups"]}
    assert marked["dropout"] == "only" and marked["adam W1"] == "only" and marked["gradients"] == "only"
    masks = [node for node in first["nodes"] if node.get("op") == "bernoulli_mask"]
    assert masks and all(node["only"] == "only" for node in masks)
    unmarked = {node["label"].split("\n")[0] for node in first["nodes"] if "only" not in node}
    assert {"x", "W1", "W2"} <= unmarked
    assert not any(node.get("op") == "bernoulli_mask" for node in second["nodes"])
    assert [node["op"] for node in second["nodes"] if node.get("only") and node["kind"] == "op"] == ["softmax"]


def test_nodes_carry_what_the_details_show():
    train, _ = adam_mlp()
    (panel,) = data_of(explorer_html([train]))["panels"]
    by_label = {node["label"].split("\n")[0]: node for node in panel["nodes"]}
    x = by_label["x"]
    assert (x["kind"], x["name"], x["dtype"], x["shape"]) == ("input", "x", "float64", "(?, 4)")
    relu = next(node for node in panel["nodes"] if node.get("op") == "relu")
    assert relu["gradient"] is False and "sg.nn.relu(x @ W1)" in panel["strings"][relu["source"]]
    assert (relu["dtype"], relu["shape"]) == ("float64", "(?, ?)")  # its output, drawn in its box
    hidden = by_label["hidden"]  # a named variable: the line of the op computing it
    assert "sg.nn.dropout" in panel["strings"][hidden["source"]]
    assert any(node.get("gradient") for node in panel["nodes"] if node["kind"] == "op")


def test_times_on_the_nodes_reach_the_page():
    x = sg.vector("x")
    with in_scope("block"):
        y = sg.exp(x) * 3.0
    graph = sg.to_networkx(y + 1.0)
    ops = [key for key, kind in graph.nodes(data="kind") if kind == "op"]
    for number, key in enumerate(ops):
        graph.nodes[key]["time"] = 0.001 * (number + 1)
    (panel,) = data_of(explorer_html([graph]))["panels"]
    assert panel["total_time"] == pytest.approx(sum(0.001 * (n + 1) for n in range(len(ops))))
    timed = [node["time"] for node in panel["nodes"] if node["kind"] == "op"]
    assert sorted(timed) == pytest.approx([0.001 * (n + 1) for n in range(len(ops))])
    (block,) = panel["groups"]
    inside = [node["time"] for node in panel["nodes"] if node["kind"] == "op" and node["parent"] == 0]
    assert len(inside) == 2 and block["time"] == pytest.approx(sum(inside)) and block["time"] < panel["total_time"]


# --- Jupyter --------------------------------------------------------------------------------------------------
def test_jupyter_shows_the_explorer_in_a_sandboxed_frame():
    train, _ = adam_mlp()
    frame = train._repr_html_()
    match = re.fullmatch(r'<iframe srcdoc="([^"]*)" sandbox="allow-scripts" [^>]*></iframe>', frame)
    assert match, frame[:200]
    page = html.unescape(match.group(1))
    assert page.startswith("<!DOCTYPE html>") and "<script" not in match.group(1)
    assert data_of(page)["panels"][0]["title"] == viz.graph_subject(train).title
    x = sg.vector("x")
    y = sg.exp(x)
    assert "<iframe srcdoc=" in y._repr_html_()
    assert x._repr_html_() is None  # an input alone: the plain repr
    assert sg.shared(np.ones(2))._repr_html_() is None
    assert "<iframe" in repr_html([train, adam_mlp()[1]])


def test_a_graph_the_explorer_cannot_show_gives_a_readable_message():
    assert repr_html(object()).startswith("<pre>symgraph explorer unavailable: TypeError")
    with pytest.raises(ValueError, match="2 titles for 1 graphs"):
        explorer_html([sg.exp(sg.vector("x"))], titles=["a", "b"])
    with pytest.raises(ValueError, match="at least one graph"):
        explorer_html([])


def test_a_networkx_graph_from_to_networkx_can_be_explored():
    train, _ = adam_mlp()
    graph = sg.to_networkx(train)
    (panel,) = data_of(explorer_html([graph]))["panels"]
    assert len(panel["nodes"]) == viz.drawable(train, expand=True).number_of_nodes()
    assert nx.is_directed_acyclic_graph(viz.data_flow(graph))


def test_a_profiled_functions_node_times_reach_its_graph_and_page():
    # The hook for the profiler: a compiled function's node_times, its nodes to seconds.
    x = sg.vector("x")
    f = sg.function([x], sg.tanh(sg.exp(x) + 1.0))
    times = {node: 0.001 * (number + 1) for number, node in enumerate(f.graph.nodes)}
    f.node_times = times
    graph = sg.to_networkx(f)
    ops = {data["op"]: data["time"] for _, data in graph.nodes(data=True) if data["kind"] == "op"}
    assert ops == {node.op.name: seconds for node, seconds in times.items()}
    (panel,) = data_of(explorer_html([f]))["panels"]
    assert panel["total_time"] == pytest.approx(sum(times.values()))
