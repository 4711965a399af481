"""sg.debugprint: the text tree of variables and compiled functions."""

import io
import re
import sys

import numpy as np
import pytest

import symgraph as sg


def test_small_tree_exact_text_printed_and_returned(capsys):
    x = sg.vector("x")
    text = sg.debugprint(sg.exp(x) + x)
    expected = (
        "add [id A] float64 (?,)\n"
        "|- exp [id B] float64 (?,)\n"
        "|  `- x [id C] input float64 (?,)\n"
        "`- x [id C] input float64 (?,)\n"
    )
    assert text == expected
    assert capsys.readouterr().out == expected


def test_file_argument_gets_the_text_and_stdout_nothing(capsys):
    x = sg.vector("x")
    buffer = io.StringIO()
    text = sg.debugprint(x * 2.0, file=buffer)
    assert buffer.getvalue() == text
    assert capsys.readouterr().out == ""


def test_names_dtypes_shapes_and_kinds():
    x = sg.tensor("x", dtype="float32", shape=(None, 3))
    W = sg.shared(np.ones((3, 2), dtype="float32"), name="W", shape=(3, 2))
    h = x @ W
    h.name = "h"
    text = sg.debugprint(h + 1.5, file=io.StringIO())
    assert "x [id " in text and "] input float32 (?, 3)" in text
    assert "W [id " in text and "] shared float32 (3, 2)" in text
    assert re.search(r"dot \[id \w+\] 'h' float32 \(\?, 2\)", text)
    assert re.search(r"1\.5 \[id \w+\] constant float32 \(\)", text)


def test_shared_subgraph_is_expanded_once_then_referred_to_by_id():
    x = sg.vector("x")
    y = sg.exp(sg.log(x))
    z = y * y + y
    lines = sg.debugprint(z, file=io.StringIO()).splitlines()
    exp_lines = [line for line in lines if "exp [id" in line]
    assert len(exp_lines) == 3
    ids = {re.search(r"\[id (\w+)\]", line).group(1) for line in exp_lines}
    assert len(ids) == 1
    assert sum("(shown above)" in line for line in exp_lines) == 2
    # log is under exp, so it appears once only: the repeats are not expanded.
    assert sum("log [id" in line for line in lines) == 1


def test_list_of_variables_shares_ids_between_trees():
    x = sg.vector("x")
    shared_part = sg.exp(x)
    text = sg.debugprint([shared_part + 1.0, shared_part * 2.0], file=io.StringIO())
    assert text.count("exp [id B]") == 2
    assert "exp [id B] float64 (?,) (shown above)" in text


def test_gradient_nodes_are_marked_and_forward_nodes_are_not():
    x = sg.vector("x")
    cost = (sg.tanh(x) ** 2).sum()
    (g,) = [sg.grad(cost, x)]
    lines = sg.debugprint([cost, g], file=io.StringIO()).splitlines()
    first_tree = lines[: next(i for i, line in enumerate(lines) if i > 0 and not line.startswith(("|", "`", " ")))]
    assert first_tree and not any("[grad]" in line for line in first_tree)
    assert "[grad]" in lines[len(first_tree)]  # the gradient's own top node
    assert any("tanh" in line and "(shown above)" in line for line in lines[len(first_tree) :])


def test_dropout_marked_random_and_phase_dependent():
    x = sg.matrix("x")
    text = sg.debugprint(sg.nn.dropout(x, rate=0.5), file=io.StringIO(), expand=True)
    (line,) = [line for line in text.splitlines() if "dropout_mask" in line]
    assert "[random]" in line and "[phase-dependent]" in line


def test_compiled_functions_show_phase_outputs_updates_and_no_dropout_when_predicting():
    x = sg.matrix("x")
    W = sg.shared(np.ones((3, 3)), name="W")
    y = sg.nn.dropout(x @ W, rate=0.5).sum()
    train = sg.function([x], y, updates=[(W, W * 0.5)], phase="train", name="train_fn")
    predict = sg.function([x], y, phase="predict", name="predict_fn")
    train_text = sg.debugprint(train, file=io.StringIO(), expand=True)
    predict_text = sg.debugprint(predict, file=io.StringIO(), expand=True)
    assert train_text.splitlines()[0] == "function train_fn (phase='train', mode='fast_run')"
    assert predict_text.splitlines()[0] == "function predict_fn (phase='predict', mode='fast_run')"
    assert "output 0:" in train_text and "update of W <-" in train_text
    assert re.search(r"update of rng\d+ <-", train_text)  # the random state, updated automatically
    assert "bernoulli_mask" in train_text and "[random]" in train_text
    assert "dropout_mask" not in train_text  # specialized away when compiled
    assert "random" not in predict_text and "mask" not in predict_text and "update" not in predict_text


def test_compiling_leaves_the_users_graph_and_its_names_alone():
    x = sg.matrix("x")
    hidden = sg.nn.dropout(sg.nn.relu(x), rate=0.5)
    hidden.name = "hidden"
    before = sg.debugprint(hidden, file=io.StringIO())
    sg.function([x], hidden, phase="predict")  # rewrites relu(x) * 1 to relu(x)
    sg.function([x], hidden, phase="train")
    assert sg.debugprint(hidden, file=io.StringIO()) == before
    assert before.count("'hidden'") == 1


def test_multi_output_node_outputs_share_the_node_id():
    x = sg.matrix("x")
    f = sg.function([x], sg.nn.dropout(x, rate=0.5), phase="train")
    text = sg.debugprint(f, file=io.StringIO(), expand=True)
    mask = re.search(r"bernoulli_mask\{[^}]*\}\.1 \[id (\w+)\]", text)
    state = re.search(r"bernoulli_mask\{[^}]*\}\.0 \[id (\w+)\]", text)
    assert mask and state and mask.group(1) == state.group(1)


def test_ten_thousand_node_chain_prints_without_recursion_and_linear_size():
    assert sys.getrecursionlimit() <= 10_000  # the default limit (1000) or close: no raising it here
    x = sg.vector("x")
    y = x
    for step in range(10_000):
        y = sg.exp(y) if step % 2 else y + 1.0
    text = sg.debugprint(y, file=io.StringIO())
    lines = text.splitlines()
    # Each node is expanded exactly once: in place, or where its tree continues.
    expanded = r"(exp|add) \[id \w+\] float64 \(\?,\)( \(continued\))?$"
    assert sum(1 for line in lines if re.search(expanded, line)) == 10_000
    assert len(lines) < 3 * 10_000 + 1_000
    assert max(len(line) for line in lines) < 3 * 50 + 80  # indentation stops growing past depth 50
    cut = [re.search(r"\[id (\w+)\]", line).group(1) for line in lines if line.endswith("(continued below)")]
    continued = [re.search(r"\[id (\w+)\]", line).group(1) for line in lines if line.endswith("(continued)")]
    assert len(cut) >= 10_000 // 50 - 1
    assert cut == continued


def test_max_depth_controls_where_trees_continue():
    x = sg.vector("x")
    y = sg.exp(sg.exp(sg.exp(sg.exp(x))))
    text = sg.debugprint(y, file=io.StringIO(), max_depth=2)
    assert text.count("(continued below)") == 1
    assert text.count("(continued)") == 1
    assert text.count("x [id") == 1
    with pytest.raises(ValueError, match="max_depth"):
        sg.debugprint(y, max_depth=0)


def test_other_objects_are_refused_with_what_is_accepted():
    with pytest.raises(TypeError, match="a symbolic variable, a list of them or a compiled function"):
        sg.debugprint(42)
    with pytest.raises(TypeError, match="not list"):
        sg.debugprint([])
