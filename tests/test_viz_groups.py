"""Groups: the nodes a user-level call built, folded into one box in pictures and in debugprint."""

import io
import re
import xml.etree.ElementTree as ElementTree

import networkx as nx
import numpy as np
import pytest

import symgraph as sg
from symgraph import viz
from symgraph.graph.source import in_scope
from symgraph.printing import GraphSubject, graph_subject

HAS_DOT = viz.dot_program() is not None
HAS_MATPLOTLIB = viz._has_matplotlib()


def adam_mlp():
    """A small MLP with dropout trained with Adam: train and predict functions."""
    rng = np.random.default_rng(0)
    x, t = sg.tensor("x", shape=(None, 4)), sg.ivector("t")
    W1 = sg.shared(rng.normal(size=(4, 5)), name="W1")
    W2 = sg.shared(rng.normal(size=(5, 3)), name="W2")
    hidden = sg.nn.dropout(sg.nn.relu(x @ W1), rate=0.5)
    probabilities = sg.nn.softmax(hidden @ W2)
    cost = sg.nn.categorical_crossentropy(probabilities, t).mean()
    train = sg.function([x, t], cost, updates=sg.optim.adam(cost, [W1, W2]), phase="train", name="train")
    predict = sg.function([x], probabilities, phase="predict", name="predict")
    return train, predict


def normalized(x, mean, var):
    """A stand-in for a phase-dependent block with its own scope: statistics of the batch while
    training (and their running averages updated), running statistics while predicting."""
    with in_scope("normalize"):
        return (x - mean) / sg.sqrt(var + 1e-5)


def ops_of(graph, **attributes):
    return [
        key
        for key, data in graph.nodes(data=True)
        if data["kind"] == "op" and all(data.get(name) == value for name, value in attributes.items())
    ]


def variable(graph, name):
    (key,) = [key for key, data in graph.nodes(data=True) if data["kind"] != "op" and data["name"] == name]
    return key


# --- membership -----------------------------------------------------------------------------------------
def test_every_node_says_its_group_and_scope():
    train, _ = adam_mlp()
    g = sg.to_networkx(train)
    groups = g.graph["groups"]
    names = sorted(info["name"] for info in groups.values())
    assert names.count("dropout") == 1 and "adam W1" in names and "adam W2" in names and "adam step" in names
    assert "gradients" in names and "categorical_crossentropy" in names
    for key, data in g.nodes(data=True):
        assert "group" in data and "scope" in data, key
        if data["group"] is None:
            assert data["scope"] == ()
        else:
            assert (
                data["scope"] == groups[data["group"]]["scope"] and data["scope"][-1] == groups[data["group"]]["name"]
            )
    # The optimizer's moments and the dropout's generator are their group's own state ...
    (adam_w1,) = [key for key, info in groups.items() if info["name"] == "adam W1"]
    assert g.nodes[variable(g, "W1_adam_m")]["group"] == adam_w1
    assert sorted(groups[adam_w1]["updates"]) == ["W1_adam_m", "W1_adam_v"]
    (dropout,) = [key for key, info in groups.items() if info["name"] == "dropout"]
    assert [g.nodes[key]["group"] for key in ops_of(g, op="bernoulli_mask")] == [dropout]
    # ... while inputs, outputs and the parameters stay outside every group.
    for name in ("x", "t", "W1", "W2"):
        assert g.nodes[variable(g, name)]["group"] is None
    assert all(data["group"] is None for _, data in g.nodes(data=True) if data["kind"] == "output")


def test_a_convolution_and_a_flatten_are_each_one_group_leaving_no_loose_shape_nodes():
    x = sg.tensor4("x")
    W = sg.shared(np.ones((2, 1, 3, 3)), name="W")
    features = sg.nn.max_pool2d(sg.nn.conv2d(x, W, padding=1), 2).flatten(2)
    g = sg.to_networkx(sg.function([x], features))
    groups = g.graph["groups"]
    named = {key: info["name"] for key, info in groups.items()}
    assert sorted(named.values()) == ["conv2d", "flatten"]
    for key in ops_of(g, op="shape_at") + ops_of(g, op="stack") + ops_of(g, op="im2col") + ops_of(g, op="reshape"):
        assert named.get(g.nodes[key]["group"]) in ("conv2d", "flatten"), g.nodes[key]
    (pool,) = ops_of(g, op="max_pool2d")
    assert g.nodes[pool]["group"] is None  # one op: drawn as itself


def test_gradient_nodes_of_one_grad_call_form_one_group_holding_the_gradient_scopes():
    train, _ = adam_mlp()
    g = sg.to_networkx(train)
    groups = g.graph["groups"]
    (gradients,) = [key for key, info in groups.items() if info["name"] == "gradients"]
    mirrored = [key for key, info in groups.items() if info["name"].endswith("(gradient)")]
    assert mirrored and all(groups[key]["parent"] == gradients for key in mirrored)
    assert all(groups[key]["scope"][0] == "gradients" for key in mirrored)
    for key in ops_of(g, gradient=True):
        assert g.nodes[key]["scope"][0] == "gradients", g.nodes[key]
    assert not any(data["scope"][:1] == ("gradients",) for _, data in g.nodes(data=True) if data.get("op") == "relu")


def test_a_read_only_shared_variable_stays_outside_an_updated_one_goes_in():
    x = sg.matrix("x")
    mean = sg.shared(np.zeros(3), name="mean")
    var = sg.shared(np.ones(3), name="var")
    with in_scope("running average"):
        new_mean = 0.9 * mean + 0.1 * x.mean(axis=0)
    y = normalized(x, mean, var)
    f = sg.function([x], y, updates=[(mean, new_mean)])
    g = sg.to_networkx(f)
    groups = g.graph["groups"]
    (average,) = [key for key, info in groups.items() if info["name"] == "running average"]
    assert g.nodes[variable(g, "var")]["group"] is None  # read only
    assert g.nodes[variable(g, "mean")]["group"] is None  # updated, but read outside the group too
    f2 = sg.function([x], x.sum(), updates=[(mean, new_mean)])
    g2 = sg.to_networkx(f2)
    (average2,) = [key for key, info in g2.graph["groups"].items() if info["name"] == "running average"]
    assert g2.nodes[variable(g2, "mean")]["group"] == average2
    assert g2.graph["groups"][average2]["updates"] == ["mean"]
    assert average  # both graphs hold the group


# --- folding ------------------------------------------------------------------------------------------
def test_expand_false_folds_each_outermost_group_into_a_box_named_after_it():
    train, _ = adam_mlp()
    full = sg.to_networkx(train)
    folded = sg.to_networkx(train, expand=False)
    groups = full.graph["groups"]
    outermost = {key for key, info in groups.items() if info["parent"] is None}
    boxes = [key for key, data in folded.nodes(data=True) if data.get("collapsed") and data["group"] == key]
    assert set(boxes) == outermost
    for box in boxes:
        data = folded.nodes[box]
        inside = [key for key, node in full.nodes(data=True) if box in _ancestors(groups, node["group"])]
        assert data["kind"] == "op" and data["op"] == groups[box]["name"] == data["label"].split("\n")[0]
        assert data["collapsed"] == sum(1 for key in inside if full.nodes[key]["kind"] == "op")
        assert sorted(data["members"]) == sorted(inside)
        assert data["scope"] == (groups[box]["name"],)
        # Its edges are those of its members to and from the outside.
        outside_in = {u for key in inside for u in full.predecessors(key) if u not in inside}
        outside_out = {v for key in inside for v in full.successors(key) if v not in inside}
        assert set(folded.predecessors(box)) == {_drawn(folded, full, u) for u in outside_in}
        assert set(folded.successors(box)) == {_drawn(folded, full, v) for v in outside_out}
    assert folded.number_of_nodes() < full.number_of_nodes() / 3
    # Adam's box of W1 sends its update straight to W1, and says what state it keeps.
    (adam_w1,) = [box for box in boxes if folded.nodes[box]["op"] == "adam W1"]
    w1 = variable(folded, "W1")
    assert folded.edges[adam_w1, w1]["update"] is True
    assert folded.nodes[adam_w1]["label"].split("\n")[-2:] == ["updates W1_adam_m,", "W1_adam_v"]
    (dropout,) = [box for box in boxes if folded.nodes[box]["op"] == "dropout"]
    assert folded.nodes[dropout]["stochastic"] and "bernoulli_mask" in folded.nodes[dropout]["label"]
    (gradients,) = [box for box in boxes if folded.nodes[box]["op"] == "gradients"]
    assert folded.nodes[gradients]["gradient"] is True


def _ancestors(groups, key):
    chain = []
    while key is not None:
        chain.append(key)
        key = groups[key]["parent"]
    return chain


def _drawn(folded, full, key):
    """The node of ``folded`` standing for ``key`` of ``full``."""
    if key in folded:
        return key
    (box,) = [box for box, data in folded.nodes(data=True) if key in data.get("members", ())]
    return box


def test_nested_groups_fold_into_the_outer_box_and_open_one_level_at_a_time():
    x = sg.vector("x")
    with in_scope("outer"):
        with in_scope("inner"):
            a = sg.exp(x) * 2.0
        b = a + 1.0
    y = sg.tanh(b)
    folded = sg.to_networkx(y, expand=False)
    assert sorted(data["op"] for _, data in folded.nodes(data=True) if data["kind"] == "op") == ["outer", "tanh"]
    opened = sg.to_networkx(y, expand=["outer"])
    ops = sorted(data["op"] for _, data in opened.nodes(data=True) if data["kind"] == "op")
    assert ops == ["add", "inner", "tanh"]
    (inner,) = ops_of(opened, op="inner")
    assert opened.nodes[inner]["scope"] == ("outer", "inner") and opened.nodes[inner]["collapsed"] == 2
    # The constants only the group reads are inside it.
    assert not [key for key, data in opened.nodes(data=True) if data["kind"] == "constant" and "2.0" in data["label"]]
    assert sg.to_networkx(y, expand=True).number_of_nodes() == sg.to_networkx(y).number_of_nodes()
    with pytest.raises(ValueError, match=r"no group named nowhere .*its groups: inner, outer"):
        sg.to_networkx(y, expand=["nowhere"])
    with pytest.raises(TypeError, match="expand takes"):
        sg.to_networkx(y, expand=3)


def test_a_graph_without_groups_is_unchanged_by_folding():
    x = sg.vector("x")
    y = sg.exp(x) + 1.0
    assert nx.utils.graphs_equal(sg.to_networkx(y, expand=False), sg.to_networkx(y))


def test_constants_are_rounded_in_labels_and_kept_exact_for_details():
    x = sg.vector("x")
    y = x * (1.0 - 0.9)
    g = sg.to_networkx(y)
    (constant,) = [data for _, data in g.nodes(data=True) if data["kind"] == "constant"]
    assert constant["label"].split("\n")[0] == "0.1"
    assert constant["value"] == repr(1.0 - 0.9) != "0.1"
    text = sg.debugprint(y, file=io.StringIO())
    assert "0.1 [id" in text and "0.0999" not in text


def test_times_are_carried_and_summed_into_boxes():
    x = sg.vector("x")
    with in_scope("block"):
        y = sg.exp(x) * 3.0
    subject = graph_subject(y + 1.0)
    times = {id(node): 0.5 for node in subject.nodes()}
    g = sg.to_networkx(GraphSubject(outputs=subject.outputs, times=times))
    assert all(data["time"] == 0.5 for _, data in g.nodes(data=True) if data["kind"] == "op")
    folded = sg.to_networkx(GraphSubject(outputs=subject.outputs, times=times), expand=False)
    (box,) = ops_of(folded, op="block")
    assert folded.nodes[box]["time"] == pytest.approx(1.0)


# --- side by side ---------------------------------------------------------------------------------------
def test_differences_mark_what_only_one_function_holds():
    train, predict = adam_mlp()
    full = [sg.to_networkx(train), sg.to_networkx(predict)]
    marks = viz.differences(full)
    groups = full[0].graph["groups"]
    only_groups = {groups[key]["name"] for key, mark in marks[0].items() if key in groups and mark == "only"}
    assert {"dropout", "adam W1", "adam W2", "adam step", "gradients"} <= only_groups
    masks = ops_of(full[0], op="bernoulli_mask")
    assert masks and all(marks[0].get(key) == "only" for key in masks)
    # What both hold is not marked: the inputs, the weights, the first product.
    for name in ("x", "W1", "W2"):
        assert variable(full[0], name) not in marks[0] and variable(full[1], name) not in marks[1]
    (first_dot,) = [key for key in ops_of(full[1], op="dot") if variable(full[1], "W1") in full[1].predecessors(key)]
    assert first_dot not in marks[1]
    assert "softmax" in {full[1].nodes[key].get("op") for key in marks[1]}  # predict's own output op


def normalize(x, mean, var, batch):
    """The same call building two computations: with the batch's statistics or running ones."""
    with in_scope("normalize"):
        center, spread = (x.mean(axis=0), x.var(axis=0)) if batch else (mean, var)
        return (x - center) / sg.sqrt(spread + 1e-5)


def test_a_group_both_hold_with_different_contents_is_marked_changed():
    x = sg.matrix("x")
    mean, var = sg.shared(np.zeros(3), name="mean"), sg.shared(np.ones(3), name="var")
    running = sg.to_networkx(sg.function([x], normalize(x, mean, var, batch=False)))
    batch = sg.to_networkx(sg.function([x], normalize(x, mean, var, batch=True)))
    marks = viz.differences([running, batch])
    (group,) = running.graph["groups"]
    (other,) = batch.graph["groups"]
    assert marks[0][group] == "changed" and marks[1][other] == "changed"
    assert any(batch.nodes[key]["kind"] == "op" for key in marks[1] if key in batch)  # the batch statistics
    # The running statistics, read only by the running version, are what it alone holds.
    assert marks[0].get(variable(running, "mean")) == "only" and marks[0].get(variable(running, "var")) == "only"
    # The subtraction and the square root are in both: not marked.
    assert not [key for key in marks[0] if key in running and running.nodes[key].get("op") in ("sub", "sqrt")]


def svg_text(path):
    root = ElementTree.parse(path).getroot()
    return "\n".join(element.text for element in root.iter() if element.text)


RENDERERS = [
    pytest.param("graphviz", marks=pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")),
    pytest.param("matplotlib", marks=pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")),
]


@pytest.mark.parametrize("renderer", RENDERERS)
def test_pictures_show_boxes_by_default_and_frames_when_expanded(tmp_path, renderer):
    train, _ = adam_mlp()
    folded = svg_text(sg.plot(train, tmp_path / "folded.svg", renderer=renderer))
    assert "adam W1" in folded and "gradients" in folded and "dropout" in folded
    assert "W1_adam_m" in folded  # only as what the box updates
    assert "bernoulli_mask" in folded  # named in the dropout box, which draws random numbers
    assert "sum_to" not in folded  # a gradient op, folded away
    expanded = svg_text(sg.plot(train, tmp_path / "expanded.svg", renderer=renderer, expand=True))
    assert "sum_to" in expanded and "adam W1" in expanded  # every op, and each group's frame
    opened = svg_text(sg.plot(train, tmp_path / "opened.svg", renderer=renderer, expand=["adam W1"]))
    assert "sqrt" in opened and "adam W2" in opened and "sum_to" not in opened


@pytest.mark.parametrize("renderer", RENDERERS)
def test_side_by_side_pictures_outline_what_only_one_holds(tmp_path, renderer):
    train, predict = adam_mlp()
    text = svg_text(sg.plot([train, predict], tmp_path / "both.svg", renderer=renderer, titles=["T", "P"]))
    assert "T" in text and "P" in text and "only in this graph" in text


def test_dot_folded_groups_are_box3d_and_open_groups_clusters():
    train, _ = adam_mlp()
    folded = sg.to_dot(train, legend=False)
    (adam,) = [line for line in folded.splitlines() if 'label="adam W1' in line]
    assert "shape=box3d" in adam and "cluster_g0_group" not in folded
    expanded = sg.to_dot(train, legend=False, expand=True)
    clusters = re.findall(r'subgraph "cluster_g0_(group\d+)" \{\n\s*label="([^"]+)"', expanded)
    names = {name for _, name in clusters}
    assert {"adam W1", "dropout", "gradients"} <= names
    # The gradient scopes are clusters nested in the gradients cluster.
    start = expanded.index('label="gradients"')
    end = expanded.index("\n    }", start)
    assert "(gradient)" in expanded[start:end]
    both = sg.to_dot([train, adam_mlp()[1]])
    assert "peripheries=2" in both and 'label="only in this graph"' in both


# --- debugprint -----------------------------------------------------------------------------------------
def test_debugprint_shows_a_closed_group_as_one_line_with_what_it_reads():
    train, _ = adam_mlp()
    text = sg.debugprint(train, file=io.StringIO())
    lines = text.splitlines()
    (adam,) = [
        index for index, line in enumerate(lines) if re.match(r"adam W1\.\d \[id \w+\] .*\(group of 13 ops\)$", line)
    ]
    children = []
    for line in lines[adam + 1 :]:
        if not line.startswith(("|", "`")):
            break
        if re.match(r"[|`]- ", line):
            children.append(line[3:])
    assert any(child.startswith("W1 [id") for child in children)
    assert any(child.startswith("gradients") for child in children)
    assert not any("W1_adam_m" in child for child in children)  # the group's own state is inside
    assert "sum_to" not in text and "[grad] (group of" in text
    assert "update of W1_adam_m <-" in text  # every update still has its heading
    full = sg.debugprint(train, file=io.StringIO(), expand=True)
    assert "sum_to" in full and "(group of" not in full and len(full.splitlines()) > 2 * len(lines)
    one = sg.debugprint(train, file=io.StringIO(), expand=["adam W1"])
    assert "(group of 13 ops)" in one and "sqrt" in one and "sum_to" not in one
    with pytest.raises(ValueError, match="no group named adam W9"):
        sg.debugprint(train, expand=["adam W9"])
