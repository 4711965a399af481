"""Train and predict phases: specialization at compile time, the error for a missing phase, the
user's updates in both phases, and clashes between automatic and user updates."""

import inspect

import numpy as np
import pytest

import symgraph as sg
from symgraph.errors import PhaseError, UpdateError
from symgraph.graph.fgraph import FunctionGraph
from symgraph.rewrite.phase import specialize_phase, state_updates


def next_line():
    """The number of the caller's next line (where it builds the node whose line we check)."""
    return inspect.currentframe().f_back.f_lineno + 1


# --- a missing phase -----------------------------------------------------------------------------
def test_function_without_phase_is_refused_naming_node_line_and_choices():
    x = sg.matrix("x")
    line = next_line()
    y = sg.nn.relu(sg.nn.dropout(x, keep_prob=0.5)).sum()
    with pytest.raises(PhaseError) as raised:
        sg.function([x], y)
    message = str(raised.value)
    assert "dropout" in message
    assert f"test_phase.py:{line}" in message
    assert "phase='train'" in message and "phase='predict'" in message


def test_eval_without_phase_is_refused_too():
    x = sg.vector("x")
    line = next_line()
    y = sg.nn.dropout(x, rate=0.2) * 2
    with pytest.raises(PhaseError, match=rf"(?s)dropout.*test_phase\.py:{line}.*phase='train'.*phase='predict'"):
        y.eval({x: np.ones(3)})


def test_every_phase_dependent_node_is_listed():
    x = sg.vector("x")
    first = next_line()
    h = sg.nn.dropout(x, keep_prob=0.5)
    second = next_line()
    y = sg.nn.dropout(h * 2, keep_prob=0.8)
    with pytest.raises(PhaseError, match=rf"(?s)2 phase-dependent.*test_phase\.py:{first}.*test_phase\.py:{second}"):
        sg.function([x], y)


def test_gradient_of_a_dropout_graph_needs_a_phase():
    x = sg.vector("x")
    y = sg.nn.dropout(x, keep_prob=0.5).sum()
    with pytest.raises(PhaseError):
        sg.function([x], sg.grad(y, x))


def test_graph_without_phase_dependent_nodes_needs_no_phase():
    x = sg.vector("x")
    y = sg.exp(x) + sg.RandomStreams(0).uniform((3,))
    for phase in (None, "train", "predict"):
        assert sg.function([x], y, phase=phase)(np.zeros(3)).shape == (3,)


def test_unknown_phase_is_a_value_error():
    x = sg.vector("x")
    with pytest.raises(ValueError, match="phase must be 'train', 'predict'"):
        sg.function([x], x * 2, phase="test")
    with pytest.raises(ValueError, match="phase must be 'train', 'predict'"):
        sg.nn.dropout(x, keep_prob=0.5).eval({x: np.ones(2)}, phase="eval")


# --- specialization --------------------------------------------------------------------------------
def test_one_graph_gives_both_functions():
    x = sg.matrix("x")
    W = sg.shared(np.random.default_rng(0).standard_normal((6, 4)), name="W")
    y = sg.nn.dropout(sg.nn.relu(x @ W), keep_prob=0.5) @ np.ones((4, 2))
    train = sg.function([x], y, phase="train")
    predict = sg.function([x], y, phase="predict")
    data = np.random.default_rng(1).standard_normal((5, 6))
    expected = np.maximum(data @ W.get_value(), 0) @ np.ones((4, 2))
    np.testing.assert_allclose(predict(data), expected, rtol=1e-12)
    np.testing.assert_array_equal(predict(data), predict(data))
    assert not np.array_equal(train(data), train(data))
    assert train.phase == "train" and predict.phase == "predict"


def test_specialize_phase_is_a_pure_graph_function():
    x = sg.vector("x")
    y = sg.nn.dropout(x, keep_prob=0.5) + 1
    specialized, automatic = specialize_phase(FunctionGraph([x], [y]), "predict")
    (predicted,) = specialized.outputs
    assert automatic == []
    assert not any(node.op.phase_dependent or node.op.stochastic for node in _nodes(predicted))
    specialized, automatic = specialize_phase(FunctionGraph([x], [y]), "train")
    (trained,) = specialized.outputs
    assert automatic == []  # the random state's update comes from state_updates
    stochastic = [node for node in _nodes(trained) if node.op.stochastic]
    assert len(stochastic) == 1 and not stochastic[0].op.phase_dependent
    ((shared, _, node),) = state_updates(_nodes(trained))
    assert node is stochastic[0] and shared is node.inputs[0]
    # the original graph is left as it was
    assert any(node.op.phase_dependent for node in _nodes(y))


def test_specialize_phase_leaves_graphs_without_such_nodes_alone():
    x = sg.vector("x")
    y = x * 2
    fgraph = FunctionGraph([x], [y])
    specialized, automatic = specialize_phase(fgraph, None)
    assert specialized is fgraph and automatic == []


def test_specialized_node_keeps_the_line_that_built_the_dropout():
    x = sg.vector("x")
    line = next_line()
    y = sg.nn.dropout(x, keep_prob=0.5)
    train = sg.function([x], y, phase="train")
    (node,) = [node for node in train.graph.nodes if node.op.stochastic]
    assert node.source.lineno == line


# --- updates in each phase ------------------------------------------------------------------------
@pytest.mark.parametrize("phase", ["train", "predict"])
def test_user_updates_apply_in_both_phases(phase):
    x = sg.vector("x")
    calls = sg.shared(0.0, name="calls")
    total = sg.shared(np.zeros(3), name="total")
    y = sg.nn.dropout(x, keep_prob=0.5)
    f = sg.function([x], y, updates=[(calls, calls + 1), (total, total + y)], phase=phase)
    data = np.ones(3)
    outputs = [f(data) for _ in range(3)]
    assert calls.get_value() == 3.0
    np.testing.assert_array_equal(total.get_value(), np.sum(outputs, axis=0))
    if phase == "predict":
        np.testing.assert_array_equal(total.get_value(), 3 * data)


def test_predict_leaves_the_random_state_alone():
    srng = sg.RandomStreams(0)
    x = sg.vector("x")
    y = sg.nn.dropout(x, keep_prob=0.5, rng=srng)
    predict = sg.function([x], y, phase="predict")
    train = sg.function([x], y, phase="train")
    srng.seed(1)
    expected = train(np.ones(50))
    srng.seed(1)
    predict(np.ones(50))
    np.testing.assert_array_equal(train(np.ones(50)), expected)


@pytest.mark.parametrize("draw", ["dropout", "uniform"])
def test_user_update_of_an_automatically_updated_variable_names_both(draw):
    srng = sg.RandomStreams(0)
    x = sg.vector("x")
    line = next_line()
    y = sg.nn.dropout(x, keep_prob=0.5, rng=srng) if draw == "dropout" else srng.uniform((3,)) + x
    (state,) = srng.state_variables
    with pytest.raises(UpdateError) as raised:
        call_line = next_line()
        sg.function([x], y, updates=[(state, state)], phase="train")
    message = str(raised.value)
    assert state.label() in message
    assert f"test_phase.py:{call_line}" in message  # the user's updates
    assert f"test_phase.py:{line}" in message  # the node that updates it by itself
    assert "updated twice" in message


def test_eval_uses_a_cache_per_phase():
    x = sg.vector("x")
    y = sg.nn.dropout(x, keep_prob=0.5, scale="classic")
    data = np.full(200, 2.0)
    np.testing.assert_array_equal(y.eval({x: data}, phase="predict"), data * 0.5)
    trained = y.eval({x: data}, phase="train")
    assert set(np.unique(trained)) == {0.0, 2.0}


def test_givens_with_dropout_in_train_phase():
    data = sg.shared(np.arange(1.0, 21.0).reshape(10, 2), name="data")
    i = sg.lscalar("i")
    x = sg.matrix("x")
    y = sg.nn.dropout(x, keep_prob=0.5, scale="classic")
    f = sg.function([i], y, givens={x: data[i * 5 : (i + 1) * 5]}, phase="train")
    out = f(1)
    kept = out != 0
    np.testing.assert_array_equal(out[kept], data.get_value()[5:10][kept])


def _nodes(variable):
    from symgraph.graph.traversal import postorder

    return postorder([variable])


def test_verify_grad_and_eval_without_a_phase_name_themselves_not_sg_function():
    x = sg.vector("x")
    y = sg.nn.dropout(x, rate=0.5) * 2
    with pytest.raises(PhaseError, match=r"Give sg\.verify_grad phase="):
        sg.verify_grad(lambda v: sg.nn.dropout(v, rate=0.5).sum(), [np.ones(3)])
    with pytest.raises(PhaseError, match=r"Give \.eval\(\) phase="):
        y.eval({x: np.ones(3)})
