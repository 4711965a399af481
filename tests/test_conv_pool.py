"""sg.nn.conv2d, max_pool2d and avg_pool2d: values against naive loops over shapes, strides and
paddings (PyTorch's conventions: cross-correlation, 'same' placement for even kernels, dropped
windows, -inf padding for max, padded cells counted by avg), gradients and gradients of gradients
by finite differences, static shapes and errors."""

import numpy as np
import pytest

import symgraph as sg
from symgraph.errors import ShapeError

MODES = ["fast_run", "fast_compile", "debug"]


# --- naive references: loops over every output cell -------------------------------------------
def explicit_padding(padding, kernel):
    """((top, bottom), (left, right)) as PyTorch pads: 'same' puts the extra cell bottom/right."""
    if padding == "valid":
        return ((0, 0), (0, 0))
    if padding == "same":
        return tuple(((k - 1) // 2, (k - 1) - (k - 1) // 2) for k in kernel)
    rows, columns = (padding, padding) if isinstance(padding, int) else padding
    return ((rows, rows), (columns, columns))


def as_pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def naive_conv2d(x, w, stride=1, padding=0):
    (top, bottom), (left, right) = explicit_padding(padding, w.shape[2:])
    sh, sw = as_pair(stride)
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    n, _, h, width = xp.shape
    o, _, kh, kw = w.shape
    ho, wo = (h - kh) // sh + 1, (width - kw) // sw + 1
    out = np.zeros((n, o, ho, wo), dtype=np.result_type(x, w))
    for b in range(n):
        for f in range(o):
            for i in range(ho):
                for j in range(wo):
                    out[b, f, i, j] = (xp[b, :, i * sh : i * sh + kh, j * sw : j * sw + kw] * w[f]).sum()
    return out


def naive_pool(x, pool, stride=None, padding=0, kind="max"):
    ph, pw = as_pair(pool)
    sh, sw = as_pair(stride if stride is not None else pool)
    pr, pc = as_pair(padding)
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (pr, pr), (pc, pc)), constant_values=fill)
    ho, wo = (xp.shape[2] - ph) // sh + 1, (xp.shape[3] - pw) // sw + 1
    out = np.zeros(x.shape[:2] + (ho, wo), dtype=x.dtype)
    for i in range(ho):
        for j in range(wo):
            window = xp[:, :, i * sh : i * sh + ph, j * sw : j * sw + pw]
            out[:, :, i, j] = window.max(axis=(2, 3)) if kind == "max" else window.sum(axis=(2, 3)) / (ph * pw)
    return out


def naive_max_pool_grad(x, g, pool, stride=None, padding=0):
    """PyTorch's rule: each window's gradient goes to the first maximum in row-major order."""
    ph, pw = as_pair(pool)
    sh, sw = as_pair(stride if stride is not None else pool)
    pr, pc = as_pair(padding)
    xp = np.pad(x, ((0, 0), (0, 0), (pr, pr), (pc, pc)), constant_values=-np.inf)
    dxp = np.zeros_like(xp)
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(g.shape[2]):
                for j in range(g.shape[3]):
                    window = xp[b, c, i * sh : i * sh + ph, j * sw : j * sw + pw]
                    r, s = np.unravel_index(np.argmax(window), window.shape)  # argmax: the first maximum
                    dxp[b, c, i * sh + r, j * sw + s] += g[b, c, i, j]
    return dxp[:, :, pr : pr + x.shape[2], pc : pc + x.shape[3]]


def data(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# --- convolution values ------------------------------------------------------------------------
CONV_CASES = [
    # x shape, w shape, stride, padding
    ((2, 3, 7, 6), (4, 3, 3, 3), 1, 0),
    ((2, 3, 7, 6), (4, 3, 3, 3), 1, 1),
    ((1, 2, 8, 9), (3, 2, 3, 2), 2, 0),
    ((2, 2, 9, 7), (2, 2, 3, 3), (2, 1), (1, 2)),
    ((1, 1, 5, 5), (1, 1, 5, 5), 1, "valid"),
    ((2, 3, 6, 5), (2, 3, 3, 3), 1, "same"),
    ((2, 2, 6, 5), (3, 2, 2, 4), 1, "same"),  # even kernels: extra padding bottom/right
    ((1, 2, 5, 7), (2, 2, 4, 1), 1, "same"),
    ((3, 1, 4, 10), (2, 1, 1, 3), (1, 3), (0, 1)),  # windows that do not fit are dropped
    ((1, 4, 6, 6), (5, 4, 2, 2), 3, 2),  # stride larger than the kernel
]


@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "padding"), CONV_CASES)
def test_conv2d_matches_naive_loops(x_shape, w_shape, stride, padding):
    x, w = sg.tensor4("x"), sg.tensor4("w")
    f = sg.function([x, w], sg.nn.conv2d(x, w, stride=stride, padding=padding))
    X, W = data(x_shape, 1), data(w_shape, 2)
    expected = naive_conv2d(X, W, stride, padding)
    got = f(X, W)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("w_shape", "stride", "padding", "out_shape"),
    [((4, 3, 3, 2), (2, 1), (1, 0), (2, 4, 4, 5)), ((4, 3, 2, 4), 1, "same", (2, 4, 7, 6))],
)
def test_conv2d_in_every_mode_with_static_shapes(mode, w_shape, stride, padding, out_shape):
    # debug mode checks every node's result against its declared static shape
    x = sg.tensor4("x", shape=(2, 3, 7, 6))
    w = sg.shared(data(w_shape, 3), shape=w_shape)
    y = sg.nn.conv2d(x, w, stride=stride, padding=padding)
    assert y.type.shape == out_shape
    cost = (y**2).sum()
    f = sg.function([x], [y, *sg.grad(cost, [x, w])], mode=mode)
    X = data((2, 3, 7, 6), 4)
    out, gx, gw = f(X)
    np.testing.assert_allclose(out, naive_conv2d(X, w.get_value(), stride, padding), rtol=1e-12, atol=1e-12)
    assert gx.shape == X.shape and gw.shape == w_shape


def test_conv2d_float32_stays_float32():
    x = sg.tensor4("x", dtype="float32")
    w = sg.tensor4("w", dtype="float32")
    y = sg.nn.conv2d(x, w, padding=1)
    assert y.dtype == "float32"
    X, W = data((2, 3, 5, 5), 5, np.float32), data((4, 3, 3, 3), 6, np.float32)
    got = sg.function([x, w], y)(X, W)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, naive_conv2d(X.astype(float), W.astype(float), 1, 1), rtol=1e-5, atol=1e-5)


def test_conv2d_output_feeds_later_ops_correctly():
    # The convolution hands back a channel-major view; later elementwise ops, pooling and a second
    # convolution must read it right.
    x, w1, w2 = sg.tensor4("x"), sg.tensor4("w1"), sg.tensor4("w2")
    h = sg.nn.max_pool2d(sg.nn.relu(sg.nn.conv2d(x, w1, padding=1) + 0.5), 2)
    y = sg.nn.conv2d(h, w2, padding="same").flatten(2)
    X, W1, W2 = data((3, 2, 8, 8), 7), data((4, 2, 3, 3), 8), data((5, 4, 2, 2), 9)
    h_expected = naive_pool(np.maximum(naive_conv2d(X, W1, 1, 1) + 0.5, 0), 2)
    expected = naive_conv2d(h_expected, W2, 1, "same").reshape(3, -1)
    np.testing.assert_allclose(sg.function([x, w1, w2], y)(X, W1, W2), expected, rtol=1e-12, atol=1e-12)


# --- convolution gradients ---------------------------------------------------------------------
GRAD_CASES = [
    ((2, 2, 5, 4), (3, 2, 3, 2), 1, 0),
    ((1, 2, 6, 5), (2, 2, 3, 3), (2, 1), (1, 2)),
    ((2, 1, 5, 6), (2, 1, 2, 3), 1, "same"),
    ((1, 2, 7, 7), (2, 2, 3, 3), 3, 1),
]


@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "padding"), GRAD_CASES)
def test_conv2d_gradients_of_input_and_filters(x_shape, w_shape, stride, padding):
    sg.verify_grad(
        lambda x, w: sg.nn.conv2d(x, w, stride=stride, padding=padding), [data(x_shape, 10), data(w_shape, 11)]
    )


@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "padding"), GRAD_CASES[:3])
def test_conv2d_second_order_gradients(x_shape, w_shape, stride, padding):
    def squared_gradient_norm(x, w):
        y = sg.nn.conv2d(x, w, stride=stride, padding=padding)
        gx, gw = sg.grad((y * y * y).sum(), [x, w])
        return (gx * gx).sum() + (gw * gw).sum()

    sg.verify_grad(squared_gradient_norm, [data(x_shape, 12), data(w_shape, 13)])


def test_conv2d_input_gradient_is_conv_transpose():
    # <conv(x, w), g> = <x, conv2d's input gradient>, checked against the naive convolution.
    x, w, g = sg.tensor4("x"), sg.tensor4("w"), sg.tensor4("g")
    y = sg.nn.conv2d(x, w, stride=2, padding=1)
    gx, gw = sg.grad(None, [x, w], known_grads={y: g})
    X, W = data((2, 3, 7, 6), 14), data((4, 3, 3, 3), 15)
    G = data(naive_conv2d(X, W, 2, 1).shape, 16)
    got_x, got_w = sg.function([x, w, g], [gx, gw])(X, W, G)
    expected_w = np.zeros_like(W)
    for index in np.ndindex(W.shape):  # the filter gradient, cell by cell, from the naive loops
        basis = np.zeros_like(W)
        basis[index] = 1
        expected_w[index] = (naive_conv2d(X, basis, 2, 1) * G).sum()
    np.testing.assert_allclose(got_w, expected_w, rtol=1e-12, atol=1e-12)
    probe = data(X.shape, 17)
    np.testing.assert_allclose((got_x * probe).sum(), (naive_conv2d(probe, W, 2, 1) * G).sum(), rtol=1e-12)


def test_filter_gradient_over_a_long_inner_axis_is_summed_in_blocks_exactly():
    # 16 filters of 3x3 over 9 images of 28x29: the filter gradient sums over 7,308 cells, more
    # than one small product (kernels.SMALL_PRODUCT) of its 144 results holds: two blocks, summed.
    x, w, g = sg.tensor4("x"), sg.tensor4("w"), sg.tensor4("g")
    _, gw = sg.grad(None, [x, w], known_grads={sg.nn.conv2d(x, w, padding=1): g})
    X, W = data((9, 1, 28, 29), 18), data((16, 1, 3, 3), 19)
    G = data((9, 16, 28, 29), 20)
    got = sg.function([x, w, g], gw)(X, W, G)
    padded = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.empty_like(W)
    for i, j in np.ndindex(3, 3):
        expected[:, :, i, j] = np.einsum("nohw,nchw->oc", G, padded[:, :, i : i + 28, j : j + 29])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "x_shape, w_shape",
    [((0, 3, 5, 5), (4, 3, 3, 3)), ((2, 0, 5, 5), (4, 0, 3, 3)), ((2, 3, 5, 5), (0, 3, 3, 3))],
    ids=str,
)
def test_conv2d_of_empty_batches_channels_and_filters(x_shape, w_shape):
    # Sums over no channel are zeros; nothing to sum gives empty arrays: as the reference computes.
    x, w = sg.tensor4("x"), sg.tensor4("w")
    y = sg.nn.conv2d(x, w, padding=1)
    cost = (y * y).sum()
    outputs = [y, cost, *sg.grad(cost, [x, w])]
    X, W = data(x_shape, 28), data(w_shape, 29)
    expected = sg.function([x, w], outputs, backend="python")(X, W)
    for got, want in zip(sg.function([x, w], outputs)(X, W), expected):
        assert np.shape(got) == np.shape(want)
        np.testing.assert_array_equal(got, want)
    assert expected[0].shape == (x_shape[0], w_shape[0], 5, 5) and not np.any(expected[0])


# --- col2im in shifted runs (the numpy backend, where it may scribble on the columns) -----------
COL2IM_CASES = [
    # image (n, c, h, w), kernel, padding, dilation
    ((2, 3, 7, 6), (3, 3), 1, 1),
    ((2, 3, 7, 6), (3, 3), "same", 1),
    ((1, 2, 5, 5), (2, 2), "same", 1),  # even: padded bottom and right, no cell covers the image
    ((2, 2, 9, 8), (3, 3), 2, 2),  # dilated
    ((2, 2, 6, 6), (5, 3), (2, 1), 1),
    ((3, 2, 1, 1), (3, 3), 1, 1),  # blocks wholly outside the image
    ((2, 2, 2, 5), (5, 5), 2, 1),
    ((1, 1, 3, 3), (1, 1), 0, 1),  # one cell, covering the image
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("image, kernel, padding, dilation", COL2IM_CASES, ids=str)
def test_col2im_in_shifted_runs_adds_the_same_sums(image, kernel, padding, dilation, dtype, monkeypatch):
    from symgraph.backends.numpy import kernels
    from symgraph.nn.conv import Col2Im

    pads = padding if padding == "same" else explicit_padding(padding, kernel)
    op = Col2Im((1, 1), pads, as_pair(dilation))
    col2im = kernels.numpy_kernel(op, None)
    n, c, h, w = image
    stored = data((*kernel, c, h, w, n), 21).astype(dtype)  # (kh, kw, C, Ho, Wo, N), as the kernels store them
    columns = stored.transpose(0, 1, 2, 5, 3, 4)  # seen as (kh, kw, C, N, Ho, Wo)
    shifted = []
    spy = kernels._add_back_shifted
    monkeypatch.setattr(kernels, "_add_back_shifted", lambda *args: shifted.append(1) or spy(*args))
    expected = col2im.function(columns, np.array(image))
    got = col2im.inplace_function(stored.copy().transpose(0, 1, 2, 5, 3, 4), np.array(image))
    assert shifted == [1]
    np.testing.assert_array_equal(got, expected)  # the same additions in the same order
    np.testing.assert_allclose(got, op.perform(columns, np.array(image)), rtol=1e-6, atol=1e-6)


def test_col2im_keeps_columns_it_is_not_given_to_scribble_on(monkeypatch):
    from symgraph.backends.numpy import kernels
    from symgraph.nn.conv import Col2Im, ConvContraction

    op = Col2Im((2, 2), ((1, 1), (1, 1)))  # a stride of 2: the other path, even when allowed
    col2im = kernels.numpy_kernel(op, None)
    columns = data((3, 3, 2, 2, 3, 3), 22)
    monkeypatch.setattr(kernels, "_add_back_shifted", lambda *args: pytest.fail("not for a stride of 2"))
    np.testing.assert_allclose(
        col2im.inplace_function(columns, np.array((2, 2, 6, 6))), op.perform(columns, np.array((2, 2, 6, 6)))
    )
    # A compiled function scribbles only on columns nothing reads afterwards: here they are an
    # output too (the fast path's zeroed cells would show in them).
    monkeypatch.undo()
    same = Col2Im((1, 1), ((1, 1), (1, 1)))
    f, g = sg.tensor4("f"), sg.tensor4("g")
    columns = ConvContraction("columns")(f, g)  # stored as the kernels store them
    image = same(columns, sg.constant(np.array((2, 3, 5, 5))))
    F, G = data((4, 3, 3, 3), 23), data((2, 4, 5, 5), 27)
    got_columns, got_image = sg.function([f, g], [columns, image])(F, G)
    expected_columns = np.einsum("ocij,nohw->ijcnhw", F, G)
    np.testing.assert_allclose(got_columns, expected_columns, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_image, same.perform(expected_columns, np.array((2, 3, 5, 5))), rtol=1e-12)


@pytest.mark.parametrize("padding", [1, "same", (2, 1)])
def test_conv2d_input_gradient_scribbles_on_its_own_columns_only(padding, monkeypatch):
    from symgraph.backends.numpy import kernels

    # The input gradient's col2im may overwrite the columns the contraction made for it: the
    # values are those of the mode that overwrites nothing, bit for bit.
    x, w, g = sg.tensor4("x"), sg.tensor4("w"), sg.tensor4("g")
    y = sg.nn.conv2d(x, w, padding=padding)
    gx, gw = sg.grad(None, [x, w], known_grads={y: g})
    X, W = data((3, 4, 8, 7), 24), data((5, 4, 3, 3) if padding != (2, 1) else (5, 4, 5, 3), 25)
    G = data(sg.function([x, w], y)(X, W).shape, 26)
    shifted = []
    spy = kernels._add_back_shifted
    monkeypatch.setattr(kernels, "_add_back_shifted", lambda *args: shifted.append(1) or spy(*args))
    fast = sg.function([x, w, g], [gx, gw])(X, W, G)
    assert shifted == [1]
    plain = sg.function([x, w, g], [gx, gw], mode="fast_compile")(X, W, G)
    assert shifted == [1]  # overwriting nothing
    for got, expected in zip(fast, plain):
        np.testing.assert_array_equal(got, expected)
    # Empty batches and channels take the other path (nothing to add in runs).
    forward, gradients = sg.function([x, w], y), sg.function([x, w, g], [gx, gw])
    for n, c in [(0, 4), (3, 0)]:
        X, W = np.zeros((n, c, 8, 7)), np.ones((5, c) + W.shape[2:])
        got_x, got_w = gradients(X, W, np.zeros(forward(X, W).shape))
        assert got_x.shape == X.shape and got_w.shape == W.shape and not got_w.any()


# --- pooling values ----------------------------------------------------------------------------
POOL_CASES = [
    # x shape, pool, stride, padding
    ((2, 3, 6, 6), 2, None, 0),
    ((2, 3, 7, 5), 2, None, 0),  # windows that do not fit are dropped
    ((1, 2, 7, 5), (3, 2), (2, 1), (1, 1)),
    ((2, 2, 6, 7), (2, 3), (1, 2), (0, 1)),
    ((1, 2, 8, 8), 3, 2, 1),  # overlapping windows
    ((2, 1, 7, 7), 2, 3, 0),  # stride larger than the window
    ((1, 2, 5, 4), 1, None, 0),
]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("x_shape", "pool", "stride", "padding"), POOL_CASES)
def test_pooling_matches_naive_loops(kind, x_shape, pool, stride, padding):
    x = sg.tensor4("x")
    pool_function = sg.nn.max_pool2d if kind == "max" else sg.nn.avg_pool2d
    f = sg.function([x], pool_function(x, pool, stride=stride, padding=padding))
    X = data(x_shape, 20)
    expected = naive_pool(X, pool, stride, padding, kind)
    got = f(X)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)


def test_max_pool_pads_with_minus_infinity():
    x = sg.tensor4("x")
    X = -1.0 - np.abs(data((1, 1, 4, 4), 21))  # every value below the zeros padding would bring
    got = sg.function([x], sg.nn.max_pool2d(x, 2, stride=2, padding=1))(X)
    np.testing.assert_array_equal(got, naive_pool(X, 2, 2, 1, "max"))
    assert (got < -1).all()


def test_avg_pool_counts_padded_cells():
    x = sg.tensor4("x")
    X = np.ones((1, 1, 2, 2))
    got = sg.function([x], sg.nn.avg_pool2d(x, 2, stride=2, padding=1))(X)
    np.testing.assert_array_equal(got, np.full((1, 1, 2, 2), 0.25))  # one real cell of four


# --- pooling gradients -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("x_shape", "pool", "stride", "padding"), POOL_CASES[:6])
def test_pooling_gradients(kind, x_shape, pool, stride, padding):
    pool_function = sg.nn.max_pool2d if kind == "max" else sg.nn.avg_pool2d
    sg.verify_grad(lambda x: pool_function(x, pool, stride=stride, padding=padding), [data(x_shape, 22)])


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("x_shape", "pool", "stride", "padding"), [POOL_CASES[0], POOL_CASES[2], POOL_CASES[4]])
def test_pooling_second_order_gradients(kind, x_shape, pool, stride, padding):
    pool_function = sg.nn.max_pool2d if kind == "max" else sg.nn.avg_pool2d

    def gradient_dot(x, h):
        y = pool_function(x, pool, stride=stride, padding=padding)
        gx = sg.grad(None, x, known_grads={y: h * y})
        return (gx * gx).sum()

    X = data(x_shape, 23)
    H = data(naive_pool(X, pool, stride, padding, kind).shape, 24)
    sg.verify_grad(gradient_dot, [X, H])


@pytest.mark.parametrize(("pool", "stride", "padding"), [(2, None, 0), (3, 1, 1), ((2, 3), (2, 1), (1, 0))])
def test_max_pool_gradient_goes_to_the_first_maximum_of_each_window(pool, stride, padding):
    x, g = sg.tensor4("x"), sg.tensor4("g")
    y = sg.nn.max_pool2d(x, pool, stride=stride, padding=padding)
    gx = sg.grad(None, x, known_grads={y: g})
    X = np.random.default_rng(25).integers(0, 3, size=(2, 2, 6, 7)).astype(float)  # many ties
    G = data(naive_pool(X, pool, stride, padding).shape, 26)
    got = sg.function([x, g], gx)(X, G)
    np.testing.assert_allclose(got, naive_max_pool_grad(X, G, pool, stride, padding), rtol=1e-14, atol=1e-14)
    # as much gradient comes back as went in: one cell per window
    np.testing.assert_allclose(got.sum(), G.sum(), rtol=1e-12)


# --- static shapes and errors ------------------------------------------------------------------
def test_static_shapes_are_inferred():
    x = sg.tensor4("x", shape=(8, 3, 28, 27))
    w = sg.tensor4("w", shape=(16, 3, 4, 3))
    assert sg.nn.conv2d(x, w).type.shape == (8, 16, 25, 25)
    assert sg.nn.conv2d(x, w, padding="same").type.shape == (8, 16, 28, 27)
    assert sg.nn.conv2d(x, w, stride=(2, 3), padding=(1, 2)).type.shape == (8, 16, 14, 10)
    assert sg.nn.max_pool2d(x, 2).type.shape == (8, 3, 14, 13)
    assert sg.nn.avg_pool2d(x, (3, 2), stride=1, padding=1).type.shape == (8, 3, 28, 28)
    unknown_kernel = sg.tensor4("u", shape=(16, 3, None, None))
    assert sg.nn.conv2d(x, unknown_kernel, padding="same").type.shape == (8, 16, 28, 27)
    assert sg.nn.conv2d(x, unknown_kernel, padding=1).type.shape == (8, 16, None, None)


def test_channel_mismatch_names_both_shapes():
    x = sg.tensor4("x", shape=(None, 3, 28, 28))
    w = sg.tensor4("w", shape=(16, 1, 3, 3))
    with pytest.raises(ShapeError, match=r"\(\?, 3, 28, 28\).*3 channel.*\(16, 1, 3, 3\)"):
        sg.nn.conv2d(x, w)


def test_channel_mismatch_at_run_time_names_the_node():
    x, w = sg.tensor4("x"), sg.tensor4("w")
    f = sg.function([x, w], sg.nn.conv2d(x, w))
    with pytest.raises(ValueError, match=r"(?s)conv2d.*filters of shape \(2, 1, 3, 3\).*3 channels"):
        f(data((1, 3, 5, 5)), data((2, 1, 3, 3)))


def test_kernel_larger_than_the_padded_input_is_refused():
    x = sg.tensor4("x", shape=(1, 1, 4, 4))
    w = sg.tensor4("w", shape=(1, 1, 5, 5))
    with pytest.raises(ShapeError, match="does not fit"):
        sg.nn.conv2d(x, w)
    assert sg.nn.conv2d(x, w, padding=1).type.shape == (1, 1, 2, 2)
    with pytest.raises(ShapeError, match="does not fit"):
        sg.nn.max_pool2d(x, 5)


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"padding": "same", "stride": 2}, ValueError, "same.*stride 1"),
        ({"padding": "fully"}, ValueError, r"padding \(border_mode\) must be"),
        ({"padding": -1}, ValueError, "at least 0"),
        ({"stride": 0}, ValueError, "at least 1"),
        ({"stride": (1, 2, 3)}, TypeError, "pair"),
        ({"stride": 1.5}, TypeError, "int or a pair"),
    ],
)
def test_conv2d_argument_errors(arguments, error, message):
    with pytest.raises(error, match=message):
        sg.nn.conv2d(sg.tensor4("x"), sg.tensor4("w"), **arguments)


def test_conv2d_needs_four_dimensions():
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        sg.nn.conv2d(sg.matrix("x"), sg.tensor4("w"))


def test_pooling_argument_errors():
    x = sg.tensor4("x")
    with pytest.raises(ValueError, match="at most half"):
        sg.nn.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match="at least 1"):
        sg.nn.avg_pool2d(x, 0)
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        sg.nn.max_pool2d(sg.tensor3("t"), 2)
