"""sg.save and sg.load: what goes in comes back (values, graphs, functions, random and optimizer
state, sharing), in this process and in new ones; pickle and deepcopy of compiled functions."""

from __future__ import annotations

import copy
import io
import json
import os
import pickle
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import symgraph as sg
from symgraph.ops.elemwise import Elemwise
from symgraph.serialize import register_elemwise

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def round_trip(obj):
    buffer = io.BytesIO()
    sg.save(buffer, obj)
    buffer.seek(0)
    return sg.load(buffer)


def document(path_or_buffer) -> dict:
    if isinstance(path_or_buffer, io.BytesIO):
        path_or_buffer.seek(0)
    with zipfile.ZipFile(path_or_buffer) as archive:
        return json.loads(archive.read("symgraph.json"))


def shared_named(function, name):
    (found,) = {v for v in sg.graph.traversal.roots(function.graph.computed) if v.name == name}
    return found


# --- values --------------------------------------------------------------------------------------------
def test_plain_values_and_arrays_come_back_with_their_types(tmp_path):
    values = {
        "none": None,
        "flag": True,
        "count": 3,
        "big": 2**80,
        "rate": 0.25,
        "odd floats": [float("nan"), float("inf"), -float("inf"), -0.0],
        "text": "héllo",
        "tuple": (1, (2.0, "x")),
        "float32": np.arange(6, dtype="float32").reshape(2, 3),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "big endian": np.arange(4, dtype=">i4"),
        "bools": np.array([True, False]),
        "empty": np.zeros((0, 3), dtype="int8"),
        "scalar": np.float32(1.5),
        "strided": np.arange(10.0)[::3],
        "complex": np.array([1 + 2j]),
    }
    path = tmp_path / "values.sg"
    sg.save(path, values)
    loaded = sg.load(path)
    assert list(loaded) == list(values)
    for key, value in values.items():
        got = loaded[key]
        if isinstance(value, np.ndarray):
            assert got.dtype == value.dtype.newbyteorder("=") and got.shape == value.shape
            np.testing.assert_array_equal(got, value)
            assert got.flags.writeable
        elif key == "odd floats":
            assert isinstance(got, list) and np.isnan(got[0]) and got[1:3] == [np.inf, -np.inf]
            assert np.signbit(got[3])
        else:
            assert got == value and type(got) is type(value), key


def test_a_shared_variable_and_a_graph_come_back_computing_the_same():
    x = sg.matrix("x")
    W = sg.shared(np.arange(6.0).reshape(3, 2), name="W", shape=(3, 2))
    y = sg.nn.softmax(sg.tanh(x @ W) * 2.0)
    W2, y2 = round_trip((W, y))
    assert W2.name == "W" and W2.type == W.type and W2 is not W
    np.testing.assert_array_equal(W2.get_value(), W.get_value())
    (x2,) = [v for v in sg.graph.traversal.roots([y2]) if v.name == "x"]
    value = np.ones((4, 3))
    np.testing.assert_array_equal(y2.eval({x2: value}), y.eval({x: value}))
    assert W2 in set(sg.graph.traversal.roots([y2]))  # the graph reads the loaded W itself


def test_subgraphs_phases_loops_and_gradients_survive():
    x = sg.vector("x")
    inner_x, inner_y = sg.vector("a"), sg.vector("b")
    scaled = sg.OpFromGraph([inner_x, inner_y], [inner_x * 2 + sg.exp(inner_y)], name="scaled")
    gamma, beta = sg.shared(np.ones(3), name="gamma"), sg.shared(np.zeros(3), name="beta")
    mean, var = sg.shared(np.zeros(3), name="mean"), sg.shared(np.ones(3), name="var")
    normed = sg.nn.batch_norm(x.reshape((2, 3)), gamma, beta, mean, var)
    cost = scaled(x, x).sum() + (normed**2).sum() + sg.jacobian(sg.tanh(x), x).sum()
    gradient = sg.grad(cost, x)
    train = sg.function([x], [cost, gradient], phase="train")
    predict = sg.function([x], [cost, gradient], phase="predict")
    train2, predict2 = round_trip([train, predict])
    value = np.linspace(-1, 1, 6)
    for original, loaded in ((predict, predict2), (train, train2)):
        for a, b in zip(original(value), loaded(value)):
            np.testing.assert_array_equal(a, b)
    # the running statistics were updated by both train functions, each its own copy
    np.testing.assert_array_equal(shared_named(train2, "mean").get_value(), mean.get_value())
    assert [node.op.name for node in train2.nodes] == [node.op.name for node in train.nodes]


def test_node_sources_scopes_and_gradient_marks_come_back():
    x = sg.vector("x")
    y = sg.nn.dropout(x, rate=0.5, rng=sg.RandomStreams(0)).sum()  # built on this line
    line = sys._getframe().f_lineno - 1
    g = sg.grad(y, x)
    (loaded,) = round_trip([g])
    nodes = sg.graph.traversal.postorder([loaded])
    assert any(node.gradient for node in nodes) and any(not node.gradient for node in nodes)
    sourced = [node for node in nodes if node.source is not None and node.source.lineno == line]
    assert sourced and sourced[0].source.filename == __file__
    assert sourced[0].source.code == ""  # the saved file's text is never read back
    assert any(node.scope is not None and node.scope.name == "dropout" for node in nodes)


# --- functions -----------------------------------------------------------------------------------------
def _mlp(seed=0, optimizer="adam", dtype="float64"):
    rng = np.random.default_rng(seed)
    x, y = sg.matrix("x", dtype=dtype), sg.ivector("y")
    W1 = sg.shared(rng.normal(size=(5, 8)).astype(dtype), name="W1")
    b1 = sg.shared(np.zeros(8, dtype), name="b1")
    W2 = sg.shared(rng.normal(size=(8, 3)).astype(dtype), name="W2")
    hidden = sg.nn.dropout(sg.nn.relu(x @ W1 + b1), rate=0.3, rng=sg.RandomStreams(seed))
    probabilities = sg.nn.softmax(hidden @ W2)
    loss = sg.nn.categorical_crossentropy(probabilities, y).mean()
    params = [W1, b1, W2]
    updates = sg.optim.adam(loss, params, 0.01) if optimizer == "adam" else sg.optim.momentum(loss, params, 0.05)
    train = sg.function([x, y], loss, updates=updates, phase="train", name="train")
    predict = sg.function([x], probabilities, phase="predict", name="predict")
    return train, predict


def _batch(seed=1, n=16):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5)), rng.integers(0, 3, n).astype("int32")


def test_functions_saved_together_share_their_shared_variables(tmp_path):
    train, predict = _mlp()
    X, y = _batch()
    sg.save(tmp_path / "model.sg", {"train": train, "predict": predict})
    model = sg.load(tmp_path / "model.sg")
    before = model["predict"](X)
    np.testing.assert_array_equal(before, predict(X))
    model["train"](X, y)
    after = model["predict"](X)
    assert not np.array_equal(after, before)  # what train updated, predict sees
    np.testing.assert_array_equal(predict(X), before)  # and the original model is untouched
    assert model["train"].name == "train" and model["predict"].phase == "predict"
    assert shared_named(model["train"], "W1") is shared_named(model["predict"], "W1")


def test_a_function_is_saved_as_the_graph_it_was_given_not_the_rewritten_one(tmp_path):
    x = sg.vector("x")
    data = sg.shared(np.arange(10.0), name="data")
    i = sg.lscalar("i")
    f = sg.function([i], (x * 1.0 + 0.0).sum(), givens={x: data[i * 5 : (i + 1) * 5]}, mode="fast_compile")
    sg.save(tmp_path / "f.sg", f)
    saved = document(tmp_path / "f.sg")
    (entry,) = saved["functions"]
    assert entry["mode"] == "fast_compile" and entry["backend"] == "numpy"
    op_names = [op.get("elemwise") for op in saved["ops"]]
    assert "mul" in op_names and "add" in op_names  # x * 1 + 0, as given (fast_run would drop them)
    loaded = sg.load(tmp_path / "f.sg")
    assert loaded(1) == f(1) == 35.0 and loaded.mode.name == "fast_compile"


def test_compile_options_come_back():
    x32 = sg.vector("x", dtype="float32")
    unused = sg.vector("unused")
    f = sg.function(
        [x32, unused], [x32 * 2], allow_input_downcast=True, on_unused_input="ignore", backend="python", name="g"
    )
    g = round_trip(f)
    assert g.backend.name == "python" and g.name == "g"
    np.testing.assert_array_equal(g(np.ones(2), np.ones(1))[0], [2.0, 2.0])  # float64 data allowed
    no_state = sg.function([x32], x32 + sg.RandomStreams(1).uniform((2,), dtype="float32"), apply_updates=False)
    again = round_trip(no_state)
    np.testing.assert_array_equal(again(np.zeros(2, "float32")), again(np.zeros(2, "float32")))


def test_saving_and_loading_leaves_the_original_state_alone():
    train, predict = _mlp()
    X, y = _batch()
    loaded_train, _ = round_trip([train, predict])
    first = train(X, y)
    assert loaded_train(X, y) == first  # the same next step: same weights, moments and masks


# --- exact resumption in a new process ---------------------------------------------------------------
_RESUME = """
import sys, numpy as np
sys.path.insert(0, {examples!r})
import symgraph as sg
model = sg.load({path!r})
data = np.load({data!r})
losses = [float(model["train"](data["X"][k], data["y"][k])) for k in range(3, 6)]
params = [p.get_value() for p in model["params"]]
np.savez({out!r}, losses=np.array(losses), predicted=model["predict"](data["X"][0]), *params)
"""


def _is_shared_tensor(variable) -> bool:
    return isinstance(variable, sg.SharedVariable) and isinstance(variable.type, sg.TensorType)


def _resume_in_new_process(tmp_path, model, params, batches):
    """Train 3 steps here, save, train 3 more in a new process; the 6 straight steps here after."""
    train, predict = model
    data = tmp_path / "data.npz"
    np.savez(data, X=np.stack([X for X, _ in batches]), y=np.stack([y for _, y in batches]))
    for X, y in batches[:3]:
        train(X, y)
    path = tmp_path / "model.sg"
    sg.save(path, {"train": train, "predict": predict, "params": params})
    out = tmp_path / "resumed.npz"
    script = _RESUME.format(examples=os.path.join(ROOT, "examples"), path=str(path), data=str(data), out=str(out))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    straight = [float(train(X, y)) for X, y in batches[3:]]
    resumed = np.load(out)
    assert resumed["losses"].tolist() == straight  # bit for bit, dropout masks included
    for index, param in enumerate(params):
        np.testing.assert_array_equal(resumed[f"arr_{index}"], param.get_value())
    np.testing.assert_array_equal(resumed["predicted"], predict(batches[0][0]))


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
def test_training_resumed_in_a_new_process_repeats_uninterrupted_training(tmp_path, optimizer):
    train, predict = _mlp(optimizer=optimizer)
    params = sorted(
        (v for v in sg.graph.traversal.roots(train.graph.computed) if _is_shared_tensor(v)),
        key=lambda v: v.name,
    )
    assert any("velocity" in p.name or "adam" in p.name for p in params)  # optimizer state compared too
    batches = [_batch(seed) for seed in range(6)]
    _resume_in_new_process(tmp_path, (train, predict), params, batches)


def test_the_cnn_example_resumes_exactly_in_a_new_process(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        from cnn_digits import ConvNet
    finally:
        sys.path.pop(0)
    model = ConvNet(seed=3, dtype="float64")
    rng = np.random.default_rng(0)
    batches = [(rng.random((8, 1, 8, 8)), rng.integers(0, 10, 8).astype("int32")) for _ in range(6)]
    params = sorted(
        (v for v in sg.graph.traversal.roots(model.train.graph.computed) if _is_shared_tensor(v)),
        key=lambda v: v.name,
    )
    assert {"bn1_mean", "bn2_var", "adam_step"} <= {p.name for p in params}  # running statistics too
    _resume_in_new_process(tmp_path, (model.train, model.predict), params, batches)


def test_a_new_process_that_never_built_the_model_loads_and_predicts(tmp_path):
    _, predict = _mlp()
    X, _ = _batch()
    path = tmp_path / "predict.sg"
    sg.save(path, predict)
    script = textwrap.dedent(f"""
        import sys, numpy as np, symgraph as sg
        f = sg.load({str(path)!r})
        np.save({str(tmp_path / "out.npy")!r}, f(np.load({str(tmp_path / "X.npy")!r})))
        print(sorted(name for name in sys.modules if name.startswith("symgraph.")) and "ok")
    """)
    np.save(tmp_path / "X.npy", X)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), predict(X))


# --- user-defined ops ------------------------------------------------------------------------------------
class Affine(sg.Op):
    """``x * scale + shift``: a user's op with parameters (this test module registers it)."""

    __props__ = ("scale", "shift")

    def __init__(self, scale: float, shift: float):
        self.scale, self.shift = scale, shift

    def output_types(self, x):
        return [x]

    def perform(self, x):
        return x * self.scale + self.shift

    def grad(self, node, output_grads, needed):
        return [output_grads[0] * self.scale]


def _cube(x, out=None):
    return np.power(x, 3, out=out)


def _cube_grad(x, z, g):
    return g * 3 * x * x


cube = register_elemwise(
    Elemwise("cube", _cube, [_cube_grad], dtype_rule=sg.nn.activations.same_dtype_rule), "tests.cube"
)


def test_user_ops_save_by_their_registered_names(tmp_path):
    x = sg.vector("x")
    y = cube(Affine(2.0, 1.0)(x))
    path = tmp_path / "user.sg"
    sg.save(path, y)
    saved = document(path)
    assert {"class": "test_save_load.Affine", "state": {"scale": 2.0, "shift": 1.0}} in saved["ops"]
    assert {"elemwise": "tests.cube"} in saved["ops"]
    loaded = sg.load(path)
    (x2,) = sg.graph.traversal.roots([loaded])
    np.testing.assert_array_equal(loaded.eval({x2: np.array([1.0, 2.0])}), [27.0, 125.0])
    assert loaded.owner.op is cube
    # a process that has not imported the op's module is told what to import
    script = f"import symgraph as sg\ntry:\n    sg.load({str(path)!r})\nexcept sg.LoadError as e:\n    print(e)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "test_save_load.Affine" in result.stdout and "import the module" in result.stdout, result.stderr


def test_what_cannot_be_saved_is_refused_by_name_and_writes_nothing(tmp_path):
    x = sg.vector("x")
    path = tmp_path / "never.sg"
    with pytest.raises(TypeError, match=r"tests\.unregistered"):
        sg.save(path, Elemwise("tests.unregistered", np.negative, [None])(x))
    with pytest.raises(TypeError, match=r"parameter 'scale'.*function"):
        sg.save(path, Affine(lambda v: v, 0.0)(x))
    with pytest.raises(TypeError, match="dtype object"):
        sg.save(path, {"ok": np.ones(2), "bad": np.array([None])})
    with pytest.raises(TypeError, match="set"):
        sg.save(path, {1, 2})
    assert not path.exists() and os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="taken"):
        register_elemwise(Elemwise("exp", np.sin, [None]))


# --- pickle and deepcopy ---------------------------------------------------------------------------------
def test_pickled_functions_share_their_state_and_compute_the_same():
    train, predict = _mlp()
    X, y = _batch()
    train2, predict2 = pickle.loads(pickle.dumps([train, predict]))
    before = predict2(X)
    np.testing.assert_array_equal(before, predict(X))
    assert train2(X, y) == train(X, y)
    assert not np.array_equal(predict2(X), before)  # train2 updated what predict2 reads
    np.testing.assert_array_equal(predict2(X), predict(X))


def test_deepcopy_of_a_function_is_independent():
    train, _ = _mlp()
    X, y = _batch()
    copied = copy.deepcopy(train)
    W1, copied_W1 = shared_named(train, "W1"), shared_named(copied, "W1")
    assert copied_W1 is not W1
    assert copied(X, y) == train(X, y)  # the same state, copied: the same step, masks included
    np.testing.assert_array_equal(copied_W1.get_value(), W1.get_value())
    copied(X, y)
    assert not np.array_equal(copied_W1.get_value(), W1.get_value())  # only the copy moved


def test_functions_go_to_worker_processes():
    import concurrent.futures
    import multiprocessing

    _, predict = _mlp()
    X, _ = _batch()
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        result = pool.submit(predict, X).result(timeout=120)
    np.testing.assert_array_equal(result, predict(X))


# --- docs/FORMAT.md ------------------------------------------------------------------------------------------
def test_the_format_page_example_loads_and_names_every_key_and_tag():
    import re

    with open(os.path.join(ROOT, "docs", "FORMAT.md"), encoding="utf-8") as page:
        text = page.read()
    (example,) = re.findall(r"```json\n(.*?)```", text, re.S)
    saved = json.loads(example)
    arrays = {f"arrays/{k}.npy": _npy(np.ones(tuple(a["shape"]), a["dtype"])) for k, a in enumerate(saved["arrays"])}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("symgraph.json", example)
        for name, content in arrays.items():
            archive.writestr(name, content)
    buffer.seek(0)
    model = sg.load(buffer)
    assert model["scale"] == 0.5 and model["f"].name == "f"
    # w was made of ones here: each element the mask keeps counts twice (inverted dropout, rate 0.5)
    assert model["f"](np.array([1.0, 1.0, 1.0])) in (0.0, 2.0, 4.0, 6.0)
    written = document(_save_everything())
    for key in written:
        assert f"`{key}`" in text, key
    for tag in ("list", "dict", "float", "scalar", "dtype", "slice", "array", "variable", "function", "op", "graph"):
        assert f'{{"{tag}": ' in text, tag
    assert f"format version {sg.serialize.FORMAT_VERSION}" in text.replace("(format version", "format version")


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _save_everything() -> io.BytesIO:
    buffer = io.BytesIO()
    sg.save(buffer, {"f": _mlp()[0]})
    return buffer


def test_loading_does_not_depend_on_the_loading_process_floatx():
    sg.config.floatX = "float32"
    train, predict = _mlp(dtype="float32")
    X, y = _batch()
    X = X.astype("float32")
    buffer = io.BytesIO()
    sg.save(buffer, [train, predict])
    sg.config.floatX = "float64"
    buffer.seek(0)
    train2, predict2 = sg.load(buffer)
    loss = train2(X, y)
    assert loss == train(X, y) and loss.dtype == np.float32
    np.testing.assert_array_equal(predict2(X), predict(X))


def test_inputs_with_defaults_and_names_keep_them():
    x, lr = sg.vector("x"), sg.scalar("lr")
    f = sg.function([x, sg.In(lr, value=0.5, name="rate")], x * lr)
    g = round_trip(f)
    np.testing.assert_array_equal(g([2.0]), [1.0])  # the default
    np.testing.assert_array_equal(g([2.0], rate=3.0), [6.0])  # the keyword
    np.testing.assert_array_equal(copy.deepcopy(f)(x=[2.0]), [1.0])


def test_ops_written_alike_are_one_entry_and_distinct_ones_stay_apart():
    x = sg.matrix("x")
    # Each use of .shape and .sum builds op objects of its own; dropouts differ by their key.
    rng = sg.RandomStreams(5)
    y = x.sum(axis=0) * x.shape[0] + x.sum(axis=0) / x.shape[1] + x.sum(axis=1).sum()
    z = sg.nn.dropout(x, 0.5, rng=rng) + sg.nn.dropout(x, 0.5, rng=rng)
    f = sg.function([x], [y, z.sum()], phase="train")
    buffer = io.BytesIO()
    sg.save(buffer, f)
    saved = document(buffer)
    texts = [json.dumps(entry, sort_keys=True) for entry in saved["ops"]]
    assert len(texts) == len(set(texts))  # no entry twice
    nodes_by_class = {}
    for node in saved["nodes"]:
        nodes_by_class.setdefault(saved["ops"][node["op"]].get("class"), []).append(node["op"])
    sums = nodes_by_class["symgraph.ops.reduce.Reduce"]
    # Five sums: over axis 0 three times (twice on x, once on the vector x.sum(axis=1)), over
    # axis 1, over both: three entries.
    axes = sorted(tuple(saved["ops"][op]["state"]["axes"]) for op in set(sums))
    assert len(sums) == 5 and axes == [(0,), (0, 1), (1,)], (sums, axes)
    masks = nodes_by_class["symgraph.nn.dropout.DropoutMask"]
    assert len(masks) == 2 and len(set(masks)) == 2  # two draws stay two ops
    loaded = round_trip(f)
    data = np.random.default_rng(0).random((3, 4))
    expected = f(data)
    np.testing.assert_allclose(loaded(data)[0], expected[0])
    rng_state_after = [loaded(data)[1] for _ in range(2)]
    assert rng_state_after[0] != rng_state_after[1]  # the two masks still draw
