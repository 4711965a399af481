"""sg.export_onnx: the exported models compute what symgraph computes (onnxruntime, float32, batch
sizes 1 and 37), and what cannot be exported is refused by name. Skipped without the onnx extra
(CI runs these through .ci/onnx)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import symgraph as sg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_without_the_extra_the_error_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    x = sg.vector("x")
    with pytest.raises(ImportError, match=r"symgraph\[onnx\]"):
        sg.export_onnx(sg.function([x], x * 2), None)


try:
    import onnx
    import onnxruntime as ort
except ImportError:
    onnx = ort = None
needs_onnx = pytest.mark.skipif(ort is None, reason='needs the onnx extra: pip install "symgraph[onnx]"')


def run_exported(function, path, *arguments):
    if not os.path.exists(path):  # one model, run at several batch sizes
        sg.export_onnx(function, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [item.name for item in session.get_inputs()]
    return session.run(None, {name: np.asarray(value) for name, value in zip(names, arguments)})


def assert_same(function, path, *arguments, atol=1e-7):
    expected = function(*arguments)
    expected = expected if isinstance(expected, list) else [expected]
    got = run_exported(function, path, *arguments)
    assert len(got) == len(expected)
    for value, reference in zip(got, expected):
        assert value.dtype == reference.dtype and value.shape == reference.shape
        np.testing.assert_allclose(value, reference, rtol=1e-5, atol=atol)


def _examples():
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        from cnn_digits import ConvNet
        from mlp_dropout_digits import Model
    finally:
        sys.path.pop(0)
    return ConvNet, Model


@needs_onnx
@pytest.mark.parametrize("example", ["mlp", "cnn"])
def test_the_examples_predict_functions_run_in_onnxruntime(tmp_path, example):
    sg.config.floatX = "float32"
    ConvNet, Model = _examples()
    model = ConvNet(0, "float32") if example == "cnn" else Model(0, "float32", 0.3)
    shape = (1, 8, 8) if example == "cnn" else (64,)
    rng = np.random.default_rng(0)
    for _ in range(3):  # trained a little: the batch norm statistics and weights have moved
        model.train(rng.random((32, *shape), dtype="float32"), rng.integers(0, 10, 32).astype("int32"))
    exported = sg.export_onnx(model.predict, tmp_path / "model.onnx")
    (graph_input,) = exported.graph.input
    assert graph_input.type.tensor_type.shape.dim[0].dim_param == "batch"
    if example == "cnn":
        assert [node.op_type for node in exported.graph.node].count("Conv") == 2
    for batch in (1, 37):
        assert_same(model.predict, tmp_path / "model.onnx", rng.random((batch, *shape), dtype="float32"))


@needs_onnx
def test_the_operations_the_examples_use_export(tmp_path):
    sg.config.floatX = "float32"
    rng = np.random.default_rng(1)
    x = sg.tensor4("x", shape=(None, 3, 9, 9))
    v = sg.matrix("v", shape=(None, 6))
    i = sg.lscalar("i")
    filters = sg.shared(rng.normal(size=(4, 3, 2, 2)).astype("float32"), name="filters")
    strided = sg.shared(rng.normal(size=(2, 3, 3, 3)).astype("float32"), name="strided")
    gamma, beta = sg.shared(rng.random(4, dtype="float32") + 0.5), sg.shared(rng.random(4, dtype="float32"))
    mean, var = sg.shared(rng.random(4, dtype="float32")), sg.shared(rng.random(4, dtype="float32") + 0.5)
    W = sg.shared(rng.normal(size=(6, 5)).astype("float32"), name="W")
    cube = sg.shared(rng.normal(size=(2, 5, 3)).astype("float32"), name="cube")

    same = sg.nn.conv2d(x, filters, padding="same")  # an even kernel: the extra cell bottom and right
    normed = sg.nn.batch_norm(same, gamma, beta, mean, var)
    pooled = sg.nn.max_pool2d(sg.nn.relu(normed), 3, stride=2, padding=1)
    averaged = sg.nn.avg_pool2d(sg.nn.conv2d(x, strided, stride=2, padding=1), 2, padding=1)
    dilated = sg.nn.conv2d(input=x, filters=strided, border_mode=2, filter_dilation=2).sum(axis=(2, 3))
    images = sg.concatenate([pooled.flatten(2), averaged.flatten(2)], axis=1)
    h = v @ W
    activations = sg.concatenate(
        [sg.nn.sigmoid(h), sg.tanh(h), sg.nn.softplus(h), sg.exp(-abs(h)), sg.log1p(h * h), sg.expm1(h / 4)], axis=1
    )
    arithmetic = (h - 1.5) * 2 / (1 + h**2) + sg.maximum(h, 0.1) - sg.minimum(h, -0.1) + sg.sqrt(abs(h)) + h % 1.5
    chosen = sg.where(h > 0, sg.clip(h, -0.5, 0.5), sg.square(h)) + sg.cast(h >= 0.2, "float32")
    batched = sg.matmul(h.dimshuffle(0, "x", 1), cube.dimshuffle("x", 0, 1, 2).sum(axis=1)).reshape((-1, 3))
    sliced = h[:, ::-2][:, 1:] + h[:, i : i + 2].sum(axis=1, keepdims=True) + h[:, None, 0].T.T
    reduced = [h.mean(axis=0), h.max(axis=1), h.min(), h.prod(axis=1), h.std(axis=1), sg.argmax(h, axis=1)]
    outputs = [
        sg.nn.softmax(images),
        dilated * sg.arange(2, dtype="float32"),
        sg.nn.log_softmax(activations, axis=0),
        arithmetic,
        chosen,
        batched,
        sliced,
        *reduced,
        sg.cast(h, "int32") * 2 + sg.cast(sg.round(h * 3), "int32"),
        sg.and_(sg.cast(h * 10, "int32"), 6) | sg.invert(sg.cast(h, "int64")),
        sg.where(sg.and_(h > 0, ~(h > 1)), 1.0, 0.0),
        h.transpose().reshape((5, -1)),
    ]
    predict = sg.function([x, v, i], outputs, phase="predict")
    for batch in (1, 37):
        arguments = (rng.normal(size=(batch, 3, 9, 9)).astype("float32"), rng.normal(size=(batch, 6)).astype("float32"))
        # atol: a log-softmax near 0 is a difference of numbers near 1 (float32 rounding, 1.2e-7)
        assert_same(predict, tmp_path / "ops.onnx", *arguments, np.int64(1), atol=1e-6)


@needs_onnx
def test_functions_that_change_state_or_draw_are_refused_by_name(tmp_path):
    x = sg.matrix("x")
    W = sg.shared(np.ones((3, 2)), name="W")
    loss = (x @ W).sum()
    train = sg.function([x], loss, updates=sg.optim.sgd(loss, [W], 0.1))
    with pytest.raises(sg.errors.ExportError, match=r"updates .*W"):
        sg.export_onnx(train, tmp_path / "train.onnx")
    drawing = sg.function([x], sg.nn.dropout(x, rate=0.5), phase="train")
    line = sys._getframe().f_lineno - 1
    with pytest.raises(sg.errors.ExportError, match=rf"bernoulli_mask, built at .*test_onnx.py:{line}"):
        sg.export_onnx(drawing, tmp_path / "drawing.onnx")
    assert not (tmp_path / "train.onnx").exists() and not (tmp_path / "drawing.onnx").exists()


@needs_onnx
def test_an_op_without_an_onnx_form_is_named_with_its_line(tmp_path):
    x = sg.vector("x")
    picked = x[x > 0]  # a boolean mask
    line = sys._getframe().f_lineno - 1
    with pytest.raises(
        sg.errors.ExportError,
        match=rf"advanced_subtensor has no ONNX form for indexing with a boolean.*test_onnx.py:{line}",
    ):
        sg.export_onnx(sg.function([x], picked), tmp_path / "picked.onnx")

    class Cube(sg.Op):
        __props__ = ()

        def output_types(self, x):
            return [x]

        def perform(self, x):
            return x**3

    with pytest.raises(sg.errors.ExportError, match="cube has no ONNX form"):
        sg.export_onnx(sg.function([x], Cube()(x)), None)


@needs_onnx
def test_an_embedding_lookup_exports(tmp_path):
    # A text model's first layer: rows of a table picked by integer ids (advanced indexing with
    # one integer array, negative ids counting from the end), here averaged and classified.
    rng = np.random.default_rng(5)
    table = sg.shared(rng.normal(size=(20, 6)).astype("float32"), name="table")
    W = sg.shared(rng.normal(size=(6, 3)).astype("float32"), name="W")
    ids = sg.imatrix("ids")  # (batch, words)
    vectors = table[ids]  # (batch, words, 6)
    probabilities = sg.nn.softmax(vectors.mean(axis=1) @ W)
    columns = table[:, sg.constant(np.array([5, 0, -1]))][1:]  # a slice, then an array on axis 1
    f = sg.function([ids], [probabilities, columns, vectors])
    for batch in (1, 37):
        words = rng.integers(-20, 20, size=(batch, 7)).astype("int32")
        assert_same(f, tmp_path / "embedding.onnx", words)


@needs_onnx
def test_tensordot_and_products_with_a_number_export(tmp_path):
    rng = np.random.default_rng(6)
    x = sg.tensor3("x", dtype="float32")  # (batch, 4, 5)
    K = sg.shared(rng.normal(size=(5, 3, 4)).astype("float32"), name="K")
    s = sg.shared(np.float32(1.5), name="s")
    contracted = sg.tensordot(x, K, axes=([2, 1], [0, 2]))  # (batch, 3)
    outer = sg.tensordot(x[:, 0], K[:, 0], axes=0)  # no axis paired: (batch, 5, 5, 4)
    f = sg.function([x], [contracted, outer, sg.dot(s, contracted)])
    for batch in (1, 37):
        assert_same(f, tmp_path / "tensordot.onnx", rng.normal(size=(batch, 4, 5)).astype("float32"), atol=1e-5)


@needs_onnx
def test_loops_and_branches_export_as_onnx_loop_and_if(tmp_path):
    rng = np.random.default_rng(7)
    x = sg.tensor3("x", dtype="float32")  # (steps, batch, 3)
    W = sg.shared(rng.normal(size=(3, 3)).astype("float32") * 0.5, name="W")
    h0 = sg.zeros((x.shape[1], 3), dtype="float32")
    states, _ = sg.scan(lambda x_t, h: sg.tanh(x_t + h @ W), sequences=x, outputs_info=h0)  # an RNN
    doubled, _ = sg.scan(lambda x_t: x_t * 2, sequences=x[::-1])  # nothing carried, backwards
    inner_sums, _ = sg.scan(  # a loop in a loop
        lambda row: sg.scan(lambda v, total: total + v, sequences=row, outputs_info=sg.constant(np.float32(0)))[0][-1],
        sequences=x[:, 0],
    )
    branch = sg.ifelse(states[-1].sum() > 0, states[-1] * 2, -states[-1])
    counted = sg.ifelse(x.shape[0], x.sum(axis=0), x.mean(axis=0))  # an integer condition
    f = sg.function([x], [states, doubled, inner_sums, branch, counted])
    for steps, batch in ((4, 1), (6, 37), (0, 2)):
        values = rng.normal(size=(steps, batch, 3)).astype("float32")
        if steps:
            assert_same(f, tmp_path / "loops.onnx", values, atol=1e-6)
        else:  # zero steps: the loops give no rows, shaped as symgraph's (the branch reads a row: left out)
            assert_same(sg.function([x], [states, doubled]), tmp_path / "empty.onnx", values)
    limit = sg.scalar("limit", dtype="float32")
    powers, _ = sg.scan(
        lambda p, limit: (p * 2, sg.until(p * 2 > limit)),
        outputs_info=sg.constant(np.float32(1)),
        non_sequences=limit,
        n_steps=100,
    )
    for value in (45.0, 0.5, 1e30):
        assert_same(sg.function([limit], powers), tmp_path / "until.onnx", np.float32(value))


@needs_onnx
def test_the_captioning_decoder_exports_and_writes_the_same_captions(tmp_path):
    # examples/lstm_captions.py's predict function: a greedy decoder inside one loop, each step's
    # best letter fed back (an embedding lookup), an ifelse skipping the LSTM once all have ended.
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        from lstm_captions import LENGTH, VOCABULARY, Captioner
    finally:
        sys.path.pop(0)
    model = Captioner(0, "float32", hidden=16)
    rng = np.random.default_rng(8)
    images = rng.random((37, 64)).astype("float32")
    for _ in range(3):  # weights that are not the initial ones
        model.train(images, rng.integers(0, VOCABULARY, (37, LENGTH)).astype("int32"))
    assert_same(model.predict, tmp_path / "captions.onnx", images)
    assert_same(model.predict, tmp_path / "captions.onnx", images[:1])


@needs_onnx
def test_loops_onnx_cannot_express_are_refused_by_name(tmp_path):
    x = sg.vector("x")
    echo, _ = sg.scan(
        lambda x_t, a, b: x_t + a * b, sequences=x, outputs_info=dict(initial=sg.constant(np.ones(2)), taps=[-2, -1])
    )
    with pytest.raises(sg.errors.ExportError, match="scan has no ONNX form for a loop reading a state's earlier"):
        sg.export_onnx(sg.function([x], echo), None)
    w = sg.scalar("w")
    total, _ = sg.scan(lambda x_t, s, w: s * w + x_t, sequences=x, outputs_info=sg.constant(0.0), non_sequences=w)
    with pytest.raises(sg.errors.ExportError, match="scan_grad has no ONNX form"):
        sg.export_onnx(sg.function([x, w], sg.grad(total.sum(), w)), None)


@needs_onnx
def test_a_float64_model_exports_in_float32_for_onnxruntime(tmp_path):
    ConvNet, _ = _examples()
    model = ConvNet(0, "float64")
    images = np.random.default_rng(2).random((5, 1, 8, 8))
    exported = sg.export_onnx(model.predict, tmp_path / "model.onnx", float_dtype="float32")
    assert all(item.data_type != onnx.TensorProto.DOUBLE for item in exported.graph.initializer)
    assert sum(item.data_type == onnx.TensorProto.FLOAT for item in exported.graph.initializer) >= 5
    (got,) = run_exported(model.predict, tmp_path / "model.onnx", images.astype("float32"))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, model.predict(images), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="float dtype"):
        sg.export_onnx(model.predict, None, float_dtype="int32")


@needs_onnx
def test_a_loop_keeping_a_state_at_its_last_row_only_exports(tmp_path):
    # compiling keeps a state read at its last row alone (Scan.last_only): its buffer is that row
    from symgraph.ops.scan import Scan

    rng = np.random.default_rng(9)
    x = sg.tensor3("x", dtype="float32")
    W = sg.shared(rng.normal(size=(3, 3)).astype("float32") * 0.5, name="W")
    states, _ = sg.scan(lambda x_t, h: sg.tanh(x_t + h @ W), sequences=x, outputs_info=sg.zeros((2, 3), "float32"))
    loop = states.owner.inputs[0].owner
    buffer = loop.op.changed(last_only=[True]).make_node(*loop.inputs).outputs[0]
    f = sg.function([x], [buffer, buffer[-1] * 2])
    assert any(isinstance(node.op, Scan) and node.op.keeps_last_only(0) for node in f.nodes)
    for steps in (5, 0):
        assert_same(f, tmp_path / "last.onnx", rng.normal(size=(steps, 2, 3)).astype("float32"), atol=1e-6)
