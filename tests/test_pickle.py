"""``pickle`` and ``copy.deepcopy`` of graphs deeper than Python's recursion limit
(symgraph/graph/pickling.py): variables, nodes, lists of them and compiled functions keep their
meaning and the identity of what several roots share, with the default recursion limit."""

from __future__ import annotations

import copy
import io
import pickle
import sys
import threading

import numpy as np
import pytest

import symgraph as sg
from symgraph.graph.basic import Constant, SharedVariable, Variable
from symgraph.graph.traversal import postorder
from symgraph.ops.subgraph import InnerGraphOp

DEEP = 5_000  # several times the recursion limit: pickling these recursed past it before


def pickle_round_trip(obj):
    return pickle.loads(pickle.dumps(obj))


duplicates = pytest.mark.parametrize("duplicate", [pickle_round_trip, copy.deepcopy], ids=["pickle", "deepcopy"])


def chain(length: int, x=None):
    x = sg.vector("x") if x is None else x
    y = x
    for index in range(length):
        y = sg.sin(y) if index % 2 else y + 1.0
    return x, y


def numpy_chain(length: int, value):
    for index in range(length):
        value = np.sin(value) if index % 2 else value + 1.0
    return value


def inputs_of(*variables):
    """The root variables the graph of ``variables`` reads, by name (for evaluating a loaded graph)."""
    return {v.name: v for node in postorder(variables) for v in node.inputs if v.owner is None and v.name}


def same_structure(original, loaded) -> None:
    """``loaded`` has ``original``'s nodes, op for op and link for link, and shares no node with it."""
    old, new = postorder(original), postorder(loaded)
    assert len(new) == len(old)
    position = {node: k for k, node in enumerate(old)}
    loaded_position = {node: k for k, node in enumerate(new)}
    for a, b in zip(old, new):
        assert b is not a and type(b.op) is type(a.op) and b.gradient == a.gradient
        assert b.op == a.op or isinstance(a.op, InnerGraphOp)  # (their graphs are compared by identity)
        assert [v.type for v in b.outputs] == [v.type for v in a.outputs]
        assert [v.name for v in b.outputs] == [v.name for v in a.outputs]
        assert all(v.owner is b and v.index == k for k, v in enumerate(b.outputs))
        for u, w in zip(a.inputs, b.inputs):
            if u.owner is None:
                assert w.owner is None and type(w) is type(u) and w.type == u.type and w is not u
            else:
                assert loaded_position[w.owner] == position[u.owner] and w.index == u.index


@duplicates
def test_a_deep_variable_keeps_its_graph_and_values(duplicate):
    assert sys.getrecursionlimit() <= 1_000 < DEEP
    _, y = chain(DEEP)
    y.name = "end"
    y2 = duplicate(y)
    same_structure([y], [y2])
    assert y2.name == "end" and y2.owner.source == y.owner.source
    (x2,) = inputs_of(y2).values()
    value = np.linspace(-1, 1, 5)
    np.testing.assert_allclose(y2.eval({x2: value}), numpy_chain(DEEP, value))


@duplicates
def test_roots_sharing_nodes_share_them_after_loading(duplicate):
    x, middle = chain(DEEP)
    w = sg.shared(np.arange(3.0), name="w")
    scaled = middle * w
    _, first = chain(DEEP // 2, scaled)
    _, second = chain(DEEP // 2, middle - w)
    both = (scaled + 2.0).sum() + second.sum()  # reads the node `scaled` that `first` reads
    loaded = duplicate({"first": first, "nodes": [both.owner, middle.owner], "roots": [second, middle, x, w]})
    first2, (node2, middle_node2), (second2, middle2, x2, w2) = loaded["first"], loaded["nodes"], loaded["roots"]
    same_structure([first, both, second], [first2, node2.outputs[0], second2])
    assert middle_node2 is middle2.owner
    nodes = postorder([first2, node2.outputs[0], second2])
    assert {v for n in nodes for v in n.inputs if v.owner is None and v.name} == {x2, w2}  # one x, one w
    assert len([n for n in nodes if any(v is middle2 for v in n.inputs)]) == 2  # `scaled` once, and `middle - w`
    value = np.linspace(-1, 1, 3)
    expected = numpy_chain(DEEP // 2, numpy_chain(DEEP, value) * np.arange(3.0))
    np.testing.assert_allclose(sg.function([x2], first2)(value), expected)
    w2.set_value(np.ones(3))  # one shared variable under both roots
    np.testing.assert_allclose(sg.function([x2], first2)(value), numpy_chain(DEEP // 2, numpy_chain(DEEP, value)))
    assert w.get_value()[2] == 2.0


@duplicates
def test_a_node_with_several_outputs_and_inputs_from_several_nodes(duplicate):
    x = sg.matrix("x")
    _, deep = chain(DEEP, x.sum(axis=0))
    values, indices = sg.max(x, axis=0), sg.argmax(x, axis=0)
    z = deep + values * indices
    z2 = duplicate(z)
    same_structure([z], [z2])
    (x2,) = inputs_of(z2).values()
    data = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(z2.eval({x2: data}), z.eval({x: data}))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_every_pickle_protocol(protocol):
    x, y = chain(DEEP)
    loaded = pickle.loads(pickle.dumps([y, y.owner, x], protocol=protocol))
    assert loaded[1] is loaded[0].owner and loaded[2] is inputs_of(loaded[0])["x"]
    same_structure([y], loaded[:1])


def test_pickling_twice_gives_the_same_bytes_and_loads_unchanged_objects():
    x, y = chain(200)
    data = pickle.dumps([y, x])
    assert pickle.dumps([y, x]) == data
    assert pickle.dumps(pickle.loads(data)) == data


def test_a_failed_pickling_leaves_nothing_that_changes_the_next():
    x, y = chain(DEEP)
    z = (y * 2.0).sum()
    expected = pickle.dumps([y, z])
    bad = sg.OpFromGraph([x], [x * 2.0])(y)  # an op holding something that cannot be pickled
    bad.owner.op.trap = lambda: None
    for failing in ([z, bad, y], [bad.owner], {"a": y, "b": [bad * 2.0, z]}):
        with pytest.raises((pickle.PicklingError, AttributeError)) as kept:  # its traceback still alive
            pickle.dumps(failing)
        assert pickle.dumps([y, z]) == expected
        del kept
        assert pickle.dumps([y, z]) == expected
        with pytest.raises(TypeError):
            copy.deepcopy([z, threading.Lock(), bad])
        assert pickle.dumps([y, z]) == expected


def test_threads_pickling_at_once_do_not_interfere():
    graphs = [chain(2_000)[1] * float(k) for k in range(2)]
    expected = [pickle.dumps([g, g.owner.inputs[0]]) for g in graphs]
    barrier = threading.Barrier(2)
    results: list[list[bool]] = [[], []]

    def work(k):
        barrier.wait()
        for _ in range(4):
            data = pickle.dumps([graphs[k], graphs[k].owner.inputs[0]])
            loaded = pickle.loads(data)
            results[k].append(data == expected[k] and loaded[1] is loaded[0].owner.inputs[0])
            results[k].append(copy.deepcopy(graphs[k]).owner.op == graphs[k].owner.op)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [[True] * 8, [True] * 8]


class Packed:
    """An object that pickles a graph with a pickling of its own, inside another one."""

    def __init__(self, variable):
        self.variable = variable

    def __reduce__(self):
        return (Packed._unpack, (pickle.dumps(self.variable),))

    @staticmethod
    def _unpack(data):
        return Packed(pickle.loads(data))


def test_a_pickling_nested_in_another_keeps_the_outer_one_s_sharing():
    _, y = chain(DEEP)
    z = y * 3.0
    first, packed, second = pickle_round_trip([y, Packed(z), z])
    assert second.owner.inputs[0] is first  # the outer pickling's own sharing
    assert packed.variable.owner.inputs[0] is not first  # the inner one is a pickle of its own
    same_structure([z], [packed.variable])
    copied = copy.deepcopy([y, Packed(z), z])
    assert copied[2].owner.inputs[0] is copied[0]


@duplicates
def test_an_inner_graph_that_reads_nodes_of_the_outer_graph(duplicate):
    x, y = chain(DEEP)
    late = y * 2.0
    a = sg.vector("a")
    op = sg.OpFromGraph([a], [a + late])
    # The walk from `z` meets the op's node before `late` and its chain, which the op's inner graph
    # reads: they are emitted, from inside the op, before the walk comes to them.
    _, z = chain(DEEP, op(x) + late)
    z2 = duplicate(z)
    same_structure([z], [z2])
    (node2,) = [n for n in postorder([z2]) if isinstance(n.op, sg.OpFromGraph)]
    (reader,) = [n for n in postorder([z2]) if any(v is node2.outputs[0] for v in n.inputs)]
    late2 = reader.inputs[1]
    assert late2.owner.op == late.owner.op
    assert node2.op.fgraph.outputs[0].owner.inputs[1] is late2  # one `late`, inside and outside
    (x2,) = inputs_of(z2).values()
    value = np.linspace(-1, 1, 4)
    np.testing.assert_allclose(z2.eval({x2: value}), z.eval({x: value}))


def test_copy_copy_is_shallow_as_before():
    _, y = chain(3)
    y.name = "y"
    shallow = copy.copy(y)
    assert shallow is not y and (shallow.owner, shallow.index, shallow.type, shallow.name) == (
        y.owner,
        y.index,
        y.type,
        "y",
    )
    node = copy.copy(y.owner)
    assert node is not y.owner and node.inputs == y.owner.inputs and node.outputs == y.owner.outputs
    c = sg.constant(np.arange(3.0))
    assert isinstance(copy.copy(c), Constant) and copy.copy(c).data is c.data
    w = sg.shared(np.ones(2))
    assert isinstance(copy.copy(w), SharedVariable) and copy.copy(w).get_value(borrow=True) is w.get_value(borrow=True)


def test_a_shallow_copy_of_an_output_stays_a_variable_of_its_own():
    _, y = chain(DEEP)
    named = copy.copy(y)
    named.name = "copy"
    y2, named2 = pickle_round_trip([y, named])
    assert named2 is not y2 and named2.owner is y2.owner and named2.name == "copy" and y2.name is None
    assert y2.owner.outputs == (y2,)


def test_one_pickler_used_for_several_dumps_keeps_the_sharing_between_them():
    _, y = chain(DEEP)
    z = y * 2.0
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer)
    pickler.dump(y)
    pickler.dump(z)
    pickler.clear_memo()  # a pickler that forgot what it wrote writes it again
    pickler.dump(z)
    buffer.seek(0)
    unpickler = pickle.Unpickler(buffer)
    y2, z2 = unpickler.load(), unpickler.load()
    assert z2.owner.inputs[0] is y2
    z3 = pickle.Unpickler(buffer).load()
    assert z3.owner.inputs[0] is not y2
    same_structure([z], [z3])


def test_roots_pickle_as_before():
    x = sg.vector("x")
    w = sg.shared(np.arange(3.0), name="w")
    c = sg.constant(2.0)
    x2, w2, c2 = pickle_round_trip([x, w, c])
    assert type(x2) is Variable and x2.owner is None and x2.name == "x" and x2.type is x.type
    np.testing.assert_array_equal(w2.get_value(), np.arange(3.0))
    assert c2.data == 2.0


@duplicates
def test_a_constant_comes_back_read_only_and_is_stored_once(duplicate):
    values = np.arange(1000.0)
    c = sg.constant(values, name="c")
    c.signature()  # as merging constants at compile time leaves it: the values' bytes, cached
    y = sg.vector("x") * c
    loaded_y, loaded_c = duplicate([y, c])
    assert loaded_y.owner.inputs[1] is loaded_c and loaded_c.name == "c"
    np.testing.assert_array_equal(loaded_c.data, values)
    assert not loaded_c.data.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        loaded_c.data[0] = 5.0
    assert len(pickle.dumps(c)) < 1.2 * values.nbytes


# --- compiled functions --------------------------------------------------------------------------------
def deep_model(seed=0, depth=DEEP // 2):
    """An MLP with dropout from a seeded stream, whose hidden layer goes through a deep chain."""
    rng = np.random.default_rng(seed)
    stream = sg.RandomStreams(seed)
    x, y = sg.matrix("x"), sg.ivector("y")
    W1 = sg.shared(rng.normal(size=(5, 8)), name="W1")
    W2 = sg.shared(rng.normal(size=(8, 3)), name="W2")
    hidden = sg.nn.dropout(sg.nn.relu(x @ W1), rate=0.3, rng=stream)
    for _ in range(depth):
        hidden = hidden * 0.9999 + 0.0001
    probabilities = sg.nn.softmax(hidden @ W2)
    loss = sg.nn.categorical_crossentropy(probabilities, y).mean()
    updates = sg.optim.momentum(loss, [W1, W2], 0.05)
    train = sg.function([x, y], loss, updates=updates, phase="train", name="train")
    predict = sg.function([x], probabilities, phase="predict", name="predict")
    return stream, train, predict


def batch(seed=1, n=16):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5)), rng.integers(0, 3, n).astype("int32")


def parameter(function, name):
    (found,) = {v for v in sg.graph.traversal.roots(function.graph.computed) if v.name == name}
    return found


def test_deep_train_and_predict_functions_pickled_together_share_their_state():
    stream, train, predict = deep_model()
    X, y = batch()
    stream2, train2, predict2 = pickle_round_trip([stream, train, predict])
    assert parameter(train2, "W1") is parameter(predict2, "W1") is not parameter(train, "W1")
    before = predict2(X)
    np.testing.assert_array_equal(before, predict(X))
    assert train2(X, y) == train(X, y)  # the same parameters and generator state: the same mask
    assert not np.array_equal(predict2(X), before)  # what train2 updated, predict2 reads
    np.testing.assert_array_equal(predict2(X), predict(X))
    stream.seed(5)
    stream2.seed(5)  # the loaded stream reseeds the loaded functions' generators
    assert train2(X, y) == train(X, y)
    stream2.seed(6)
    assert train2(X, y) != train(X, y)


def test_deepcopy_of_deep_functions_is_independent():
    _, train, predict = deep_model()
    X, y = batch()
    train2, predict2 = copy.deepcopy([train, predict])
    W1, W1_copy = parameter(train, "W1"), parameter(train2, "W1")
    assert W1_copy is not W1 and W1_copy is parameter(predict2, "W1")
    assert train2(X, y) == train(X, y)
    train2(X, y)  # only the copy moves
    assert not np.array_equal(W1_copy.get_value(), W1.get_value())
    np.testing.assert_array_equal(predict2(X), predict2(X))
    assert not np.array_equal(predict2(X), predict(X))


def chain_function(length: int):
    x, y = chain(length)
    return sg.function([x], [y, sg.grad(y.sum(), x)])


def test_a_deep_function_and_its_gradient():
    f = chain_function(DEEP)
    value = np.linspace(-1, 1, 4)
    for g in (pickle_round_trip(f), copy.deepcopy(f)):
        for got, expected in zip(g(value), f(value)):
            np.testing.assert_array_equal(got, expected)


@pytest.mark.slow
def test_a_function_of_a_50000_op_chain_and_its_gradient_pickles():
    f = chain_function(50_000)
    data = pickle.dumps(f)
    value = np.linspace(-1, 1, 4)
    for got, expected in zip(pickle.loads(data)(value), f(value)):
        np.testing.assert_array_equal(got, expected)
