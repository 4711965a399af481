"""Values at the edges of the neural-network ops, and the error a user meets first with int64
labels: binary cross-entropy at probabilities of exactly 0 and 1, batch normalization of an empty
batch, dropout with a keep probability whose inverse overflows float16, max pooling of ``-inf``
with padding, and int64 arguments for int32 inputs."""

import warnings

import numpy as np
import pytest

import symgraph as sg
from symgraph.graph.traversal import postorder

MODES = ["fast_run", "fast_compile", "debug"]


# --- binary_crossentropy at p = 0 and 1 ----------------------------------------------------------
def clamped_loss(p, t):
    """The loss as PyTorch computes it: each logarithm clamped at -100."""
    with np.errstate(divide="ignore"):
        return -(t * np.maximum(np.log(p), -100) + (1 - t) * np.maximum(np.log1p(-p), -100))


def clamped_loss_gradient(p, t):
    """The derivative of ``clamped_loss`` in ``p``: each term's, or 0 where its log is clamped."""
    with np.errstate(divide="ignore"):
        d_log = np.where(np.log(p) > -100, 1 / np.where(p == 0, 1, p), 0.0)
        d_log1m = np.where(np.log1p(-p) > -100, -1 / np.where(p == 1, 1, 1 - p), 0.0)
    return -(t * d_log + (1 - t) * d_log1m)


# exactly 0 and 1 (perfect, wrong and soft targets), a value clamped in float64, one in between
EDGE_P = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1e-50, 0.25])
EDGE_T = np.array([0.0, 1.0, 1.0, 0.0, 0.3, 0.3, 1.0, 1.0])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binary_crossentropy_gradient_is_finite_at_0_and_1(dtype, mode):
    p, t = sg.vector("p", dtype=dtype), sg.vector("t", dtype=dtype)
    loss = sg.nn.binary_crossentropy(p, t)
    f = sg.function([p, t], [loss, sg.grad(loss.sum(), p)], mode=mode)
    points, targets = EDGE_P.astype(dtype), EDGE_T.astype(dtype)
    value, gradient = f(points, targets)
    assert np.isfinite(value).all() and np.isfinite(gradient).all(), gradient
    rtol = 1e-6 if dtype == "float32" else 1e-12
    wide = points.astype(np.float64)
    np.testing.assert_allclose(value, clamped_loss(wide, targets), rtol=rtol)
    np.testing.assert_allclose(gradient, clamped_loss_gradient(wide, targets), rtol=rtol)
    # perfect predictions: the derivative of -log(1 - p) at 0 and of -log(p) at 1
    np.testing.assert_array_equal(gradient[:2], [1.0, -1.0])


def test_binary_crossentropy_gradient_matches_finite_differences_near_0_and_1():
    targets = np.array([0.2, 1.0, 0.0, 0.9])
    points = np.array([1e-5, 3e-4, 1 - 3e-4, 1 - 1e-5])
    # steps much smaller than the distance to 0 and 1, where the curvature is large
    check = {"eps": 1e-10, "rng": np.random.default_rng(0)}
    sg.verify_grad(lambda p: sg.nn.binary_crossentropy(p, targets), [points], **check)
    sg.verify_grad(sg.nn.binary_crossentropy, [points, targets], **check)


def test_binary_crossentropy_gradient_stays_finite_for_subnormal_float32():
    # 1/p overflows float32 below its smallest normal number; the derivative stops growing there
    p = sg.vector("p", dtype="float32")
    points = np.array([1e-40, 1e-39, np.finfo(np.float32).tiny], dtype=np.float32)
    gradient = sg.function([p], sg.grad(sg.nn.binary_crossentropy(p, np.float32(1)).sum(), p))(points)
    assert np.isfinite(gradient).all()
    np.testing.assert_allclose(gradient, -1 / np.maximum(points.astype(np.float64), np.finfo(np.float32).tiny))


def test_binary_crossentropy_at_0_and_1_warns_and_raises_nothing():
    p, t = sg.vector("p"), sg.vector("t")
    loss = sg.nn.binary_crossentropy(p, t)
    f = sg.function([p, t], [loss, sg.grad(loss.sum(), p)])
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        value, gradient = f(EDGE_P[:6], EDGE_T[:6])
    np.testing.assert_allclose(value, clamped_loss(EDGE_P[:6], EDGE_T[:6]))
    np.testing.assert_allclose(gradient, clamped_loss_gradient(EDGE_P[:6], EDGE_T[:6]))


def test_sgd_step_from_perfect_predictions_keeps_the_weights_finite():
    # A hard sigmoid (clip) that saturates at exactly 0 and 1, trained on the labels it gets right.
    x, t = sg.matrix("x"), sg.vector("t")
    w = sg.shared(np.array([-3.0, 3.0, 0.2]), name="w")
    loss = sg.nn.binary_crossentropy(sg.clip(x @ w, 0.0, 1.0), t).mean()
    train = sg.function([x, t], loss, updates=sg.optim.sgd(loss, [w], lr=0.1))
    X, T = np.eye(3), np.array([0.0, 1.0, 1.0])
    train(X, T)
    # Saturated rows pass no gradient through the clip; the third gets -1/p of its loss, over 3.
    np.testing.assert_allclose(w.get_value(), [-3.0, 3.0, 0.2 + 0.1 / 3 / 0.2])
    # probabilities given directly: the step is the clamped loss's derivative
    q = sg.shared(np.array([0.0, 1.0, 0.0, 1.0]), name="q")
    labels = np.array([0.0, 1.0, 1.0, 0.0])
    cost = sg.nn.binary_crossentropy(q, labels).sum()
    sg.function([], cost, updates=sg.optim.sgd(cost, [q], lr=0.1))()
    np.testing.assert_allclose(q.get_value(), EDGE_P[:4] - 0.1 * clamped_loss_gradient(EDGE_P[:4], labels))


def test_binary_crossentropy_of_a_sigmoid_keeps_the_logits_form():
    z, t = sg.vector("z"), sg.vector("t")
    loss = sg.nn.binary_crossentropy(sg.nn.sigmoid(z), t)
    ops = {node.op.name for node in postorder([loss, sg.grad(loss.sum(), z)])}
    assert "softplus" in ops and not ops & {"clamped_log", "clamped_log1m", "log"}


# --- batch_norm of an empty batch ----------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy", "python"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(0, 3), (2, 3, 0, 4), (0, 3, 2, 2)])
def test_batch_norm_refuses_an_empty_batch_and_changes_nothing(shape, mode, backend):
    x = sg.tensor("x", shape=(None,) * len(shape))
    mean, var = sg.shared(np.arange(3.0), name="mean"), sg.shared(np.ones(3) * 2, name="var")
    y = sg.nn.batch_norm(x, np.ones(3), np.zeros(3), mean, var)  # the line the error names
    line = "y = sg.nn.batch_norm(x, np.ones(3), np.zeros(3), mean, var)"
    w = sg.shared(np.ones(3), name="w")
    cost = (y * w.dimshuffle("x", 0, *["x"] * (len(shape) - 2))).sum()
    train = sg.function([x], cost, updates=sg.optim.sgd(cost, [w], lr=0.1), phase="train", mode=mode, backend=backend)
    with pytest.raises(ValueError, match=r"(?s)batch_norm.*" + r"no value along axis") as raised:
        train(np.zeros(shape))
    assert isinstance(raised.value, sg.errors.NodeError)
    assert line in str(raised.value) and "test_edge_values.py" in str(raised.value)
    np.testing.assert_array_equal(mean.get_value(), np.arange(3.0))
    np.testing.assert_array_equal(var.get_value(), np.ones(3) * 2)
    np.testing.assert_array_equal(w.get_value(), np.ones(3))
    # predicting an empty batch is fine: nothing is taken from it
    predict = sg.function([x], y, phase="predict", mode=mode, backend=backend)
    assert predict(np.zeros(shape)).shape == shape
    # and a batch of one still trains (its unbiased variance is taken as 0, not NaN)
    train(np.ones((1, 3) + (2,) * (len(shape) - 2)))
    assert np.isfinite(mean.get_value()).all() and np.isfinite(var.get_value()).all()


def test_batch_norm_gradient_alone_refuses_an_empty_batch():
    x = sg.matrix("x")
    y = sg.nn.batch_norm(x, np.ones(3), np.zeros(3), sg.shared(np.zeros(3)), sg.shared(np.ones(3)))
    gradient = sg.function([x], sg.grad(y.sum(), x), phase="train")
    with pytest.raises(ValueError, match="no value along axis 0"):
        gradient(np.zeros((0, 3)))


# --- dropout whose 1/keep_prob overflows ---------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_dropout_with_a_tiny_keep_prob_stays_finite(dtype, mode):
    keep = {"float16": 1e-5, "float32": 1e-39}[dtype]  # 1 / keep overflows the dtype
    largest = np.finfo(dtype).max
    x = sg.vector("x", dtype=dtype)
    h = sg.nn.dropout(x, keep_prob=keep, rng=sg.RandomStreams(3))
    train = sg.function([x], [h, sg.grad(h.sum(), x)], phase="train", mode=mode)
    X = np.random.default_rng(0).uniform(-1, 1, 10**6).astype(dtype)
    X[X == 0] = 0.5
    with np.errstate(over="raise"):  # no overflow anywhere
        out, gradient = train(X)
    assert out.dtype == np.dtype(dtype) and np.isfinite(out).all() and np.isfinite(gradient).all()
    kept = out != 0
    if dtype == "float16":  # about 10 of a million kept; in float32, 1e-39 keeps none
        assert kept.any()
    np.testing.assert_array_equal(out[kept], X[kept] * np.asarray(largest, dtype))
    np.testing.assert_array_equal(gradient[kept], np.asarray(largest, dtype))
    assert (out[~kept] == 0).all() and (gradient[~kept] == 0).all()


def test_dropout_scale_is_one_over_keep_prob_where_it_fits():
    x = sg.vector("x", dtype="float16")
    keep = sg.shared(2e-5, name="keep")  # 1/keep = 50000 < 65504: exact inverted scaling
    out = sg.function([x], sg.nn.dropout(x, keep_prob=keep, rng=sg.RandomStreams(1)), phase="train")(
        np.ones(10**6, dtype="float16")
    )
    assert set(np.unique(out)) <= {0.0, np.float16(50000.0)} and (out != 0).any()
    keep.set_value(0.0)
    out = sg.function([x], sg.nn.dropout(x, keep_prob=keep), phase="train")(np.ones(5, dtype="float16"))
    np.testing.assert_array_equal(out, np.zeros(5))


# --- max pooling with padding: the gradient goes to a real cell ----------------------------------
def first_maxima(x, size, stride, pad, pooled_shape):
    """For each window (an index of the pooled output), the cell of ``x`` PyTorch's gradient goes
    to: the first (row-major) of the window's real cells holding its maximum. Padding cells are
    never a maximum."""
    height, width = x.shape[2:]
    cells = {}
    for b, k, i, j in np.ndindex(pooled_shape):
        rows = range(max(i * stride - pad, 0), min(i * stride - pad + size, height))
        columns = range(max(j * stride - pad, 0), min(j * stride - pad + size, width))
        window = [(r, q) for r in rows for q in columns]
        top = max(x[b, k, r, q] for r, q in window)
        r, q = next((r, q) for r, q in window if x[b, k, r, q] == top)
        cells[b, k, i, j] = (b, k, r, q)
    return cells


def pooling_inputs():
    rng = np.random.default_rng(0)
    ties = rng.integers(0, 2, (2, 2, 5, 5)).astype(float)  # many ties
    partly = rng.standard_normal((2, 2, 5, 5))
    partly[partly > 0] = -np.inf  # windows whose real cells are all -inf, or some of them
    return {"all_minus_inf": np.full((2, 2, 5, 5), -np.inf), "partly_minus_inf": partly, "ties": ties}


@pytest.mark.parametrize("backend", ["numpy", "python"])
@pytest.mark.parametrize("geometry", [(3, 2, 1), (2, 2, 1), (3, 1, 1)], ids=str)
@pytest.mark.parametrize("name", list(pooling_inputs()))
def test_max_pool_gradient_never_goes_into_the_padding(name, geometry, backend):
    size, stride, pad = geometry
    X = pooling_inputs()[name]
    x, g, h = sg.tensor4("x"), sg.tensor4("g"), sg.tensor4("h")
    pooled = sg.nn.max_pool2d(x, size, stride=stride, padding=pad)
    gx = sg.grad(None, x, known_grads={pooled: g})
    select = sg.grad((gx * h).sum(), g)  # the gradient of the gradient reads the same cells
    f = sg.function([x, g, h], [pooled, gx, select], backend=backend)
    shape = sg.function([x], pooled)(X).shape
    G = np.random.default_rng(1).uniform(0.5, 1.5, shape)
    H = np.random.default_rng(2).standard_normal(X.shape)
    values, gradient, selected = f(X, G, H)
    cells = first_maxima(X, size, stride, pad, shape)
    expected_gradient, expected_selected = np.zeros_like(X), np.zeros_like(G)
    for window, cell in cells.items():
        expected_gradient[cell] += G[window]
        expected_selected[window] = H[cell]
    np.testing.assert_array_equal(
        values,
        [
            [[[X[cells[b, k, i, j]] for j in range(shape[3])] for i in range(shape[2])] for k in range(shape[1])]
            for b in range(shape[0])
        ],
    )
    np.testing.assert_allclose(gradient, expected_gradient)
    np.testing.assert_allclose(gradient.sum(), G.sum())  # nothing lost in the padding
    np.testing.assert_array_equal(selected, expected_selected)


# --- int64 arguments for int32 inputs --------------------------------------------------------------
@pytest.mark.parametrize(
    ("declare", "suggestion"),
    [
        (sg.iscalar, "sg.lscalar"),
        (sg.ivector, "sg.lvector"),
        (sg.imatrix, "sg.lmatrix"),
        (sg.itensor3, "sg.ltensor3"),
        (lambda name: sg.tensor(name, dtype="int32", shape=(None,) * 5), "sg.tensor(name, dtype='int64', shape=...)"),
    ],
)
def test_int64_labels_for_an_int32_input_name_both_ways_out(declare, suggestion):
    labels = declare("labels")
    f = sg.function([labels], labels * 2)
    given = np.ones((2,) * labels.ndim, dtype=np.int64)  # what numpy and scikit-learn give
    with pytest.raises(sg.errors.InputError) as raised:
        f(given)
    message = str(raised.value)
    assert "labels" in message and "int64" in message and "int32" in message
    assert "allow_input_downcast=True" in message
    assert f"declare the input int64 ({suggestion})" in message
    # both ways out work
    np.testing.assert_array_equal(sg.function([labels], labels * 2, allow_input_downcast=True)(given), given * 2)
    wide = sg.tensor("labels", dtype="int64", shape=(None,) * labels.ndim)
    np.testing.assert_array_equal(sg.function([wide], wide * 2)(given), given * 2)


def test_wider_float_data_names_its_declaration_and_the_downcast():
    x = sg.vector("x", dtype="float32")
    with pytest.raises(sg.errors.InputError, match=r"declare the input float64 \(sg.dvector\)"):
        sg.function([x], x)(np.ones(2))
    b = sg.bvector("b")  # int8: int16 data has no typed declaration of its own
    with pytest.raises(sg.errors.InputError, match=r"declare the input int16 \(sg.vector\(name, dtype='int16'\)\)"):
        sg.function([b], b)(np.ones(2, dtype="int16"))
    i = sg.ivector("i")
    with pytest.raises(sg.errors.InputError, match=r"astype\('int32'\).*allow_input_downcast=True"):
        sg.function([i], i * 2)(np.ones(2))  # floats for integers: no wider integer input to declare


# --- random draws: float16, and parameters that are tensors --------------------------------------
def test_float16_draws_have_their_range_and_moments():
    srng = sg.RandomStreams(seed=4)
    uniform, normal = srng.uniform((200_000,), dtype="float16"), srng.normal((200_000,), dtype="float16")
    u, n = sg.function([], [uniform, normal])()
    assert u.dtype == n.dtype == np.float16
    assert u.min() >= 0 and u.max() < 1  # rounded down: float32's 0.99999 never becomes 1
    assert abs(u.mean() - 0.5) < 0.01 and abs(n.astype(np.float64).mean()) < 0.01
    assert abs(n.astype(np.float64).std() - 1) < 0.01
    with pytest.raises(sg.errors.DTypeError, match="float dtype"):
        srng.uniform((2,), dtype="int32")


def test_random_parameters_may_be_tensors_broadcast_against_size():
    srng = sg.RandomStreams(seed=5)
    low, p = sg.vector("low"), sg.vector("p")
    draws = [
        srng.uniform((4000, 3), low=low, high=low + 1),
        srng.normal((4000, 3), avg=low, std=0.01),
        srng.binomial((4000, 3), n=4, p=p),
    ]
    lows = np.array([-10.0, 0.0, 10.0])
    uniform, normal, binomial = sg.function([low, p], draws)(lows, np.array([0.0, 0.5, 1.0]))
    assert ((uniform >= lows) & (uniform < lows + 1)).all()
    np.testing.assert_allclose(uniform.mean(axis=0), lows + 0.5, atol=0.03)
    np.testing.assert_allclose(normal.mean(axis=0), lows, atol=0.01)
    assert (binomial[:, 0] == 0).all() and (binomial[:, 2] == 4).all()
    assert abs(binomial[:, 1].mean() - 2) < 0.1
    with pytest.raises(ValueError, match="binomial p must be in"):
        sg.function([p], srng.binomial((3,), p=p))(np.array([0.5, 1.5, 0.2]))
