"""sg.nn.batch_norm: values in both phases against numpy, the automatic running-statistic updates
of the train phase (and none when predicting), gradients in both phases (through the batch
statistics when training), gradients of gradients, and errors."""

import numpy as np
import pytest

import symgraph as sg
from symgraph.errors import PhaseError, ShapeError, UpdateError

SHAPES = [(16, 3), (4, 3, 5, 2)]


def reduced_axes(shape):
    return tuple(axis for axis in range(len(shape)) if axis != 1)


def per_channel(vector, ndim):
    shape = [1] * ndim
    shape[1] = vector.size
    return vector.reshape(shape)


def numpy_batch_norm(x, gamma, beta, mean, var, eps=1e-5):
    ndim = x.ndim
    return (x - per_channel(mean, ndim)) / np.sqrt(per_channel(var, ndim) + eps) * per_channel(
        gamma, ndim
    ) + per_channel(beta, ndim)


class Model:
    """A batch norm over an input ``x`` with gamma and beta as inputs, and its running statistics."""

    def __init__(self, shape, seed=0, momentum=0.1, dtype="float64"):
        rng = np.random.default_rng(seed)
        channels = shape[1]
        self.X = (rng.standard_normal(shape) * 2.0 + 1.5).astype(dtype)
        self.gamma = rng.uniform(0.5, 2.0, channels).astype(dtype)
        self.beta = rng.standard_normal(channels).astype(dtype)
        self.mean0 = rng.standard_normal(channels).astype(dtype)
        self.var0 = rng.uniform(0.5, 2.0, channels).astype(dtype)
        self.running_mean = sg.shared(self.mean0, name="running_mean")
        self.running_var = sg.shared(self.var0, name="running_var")
        self.x = sg.tensor("x", dtype=dtype, shape=(None,) * len(shape))
        self.g = sg.vector("gamma", dtype=dtype)
        self.b = sg.vector("beta", dtype=dtype)
        self.y = sg.nn.batch_norm(self.x, self.g, self.b, self.running_mean, self.running_var, momentum=momentum)

    def function(self, phase, outputs=None, **kwargs):
        return sg.function([self.x, self.g, self.b], self.y if outputs is None else outputs, phase=phase, **kwargs)


@pytest.mark.parametrize("shape", SHAPES)
def test_train_phase_normalizes_with_batch_statistics(shape):
    model = Model(shape)
    got = model.function("train")(model.X, model.gamma, model.beta)
    axes = reduced_axes(shape)
    expected = numpy_batch_norm(model.X, model.gamma, model.beta, model.X.mean(axis=axes), model.X.var(axis=axes))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    # normalized: per channel, mean beta and standard deviation gamma (up to eps)
    np.testing.assert_allclose(got.mean(axis=axes), model.beta, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("momentum", [0.1, 0.3])
def test_train_call_updates_running_statistics(shape, momentum):
    model = Model(shape, seed=1, momentum=momentum)
    model.function("train")(model.X, model.gamma, model.beta)
    axes = reduced_axes(shape)
    count = model.X.size // shape[1]
    batch_mean = model.X.mean(axis=axes)
    unbiased_var = model.X.var(axis=axes) * count / (count - 1)
    np.testing.assert_allclose(
        model.running_mean.get_value(), (1 - momentum) * model.mean0 + momentum * batch_mean, rtol=1e-12
    )
    np.testing.assert_allclose(
        model.running_var.get_value(), (1 - momentum) * model.var0 + momentum * unbiased_var, rtol=1e-12
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_predict_phase_uses_running_statistics_and_updates_nothing(shape):
    model = Model(shape, seed=2)
    predict = model.function("predict")
    got = predict(model.X, model.gamma, model.beta)
    np.testing.assert_allclose(
        got, numpy_batch_norm(model.X, model.gamma, model.beta, model.mean0, model.var0), rtol=1e-12
    )
    predict(model.X, model.gamma, model.beta)
    np.testing.assert_array_equal(model.running_mean.get_value(), model.mean0)
    np.testing.assert_array_equal(model.running_var.get_value(), model.var0)
    assert not predict.updates


def test_predict_after_training_uses_the_updated_statistics():
    model = Model((32, 4), seed=3)
    train, predict = model.function("train"), model.function("predict")
    for _ in range(3):
        train(model.X, model.gamma, model.beta)
    mean, var = model.running_mean.get_value(), model.running_var.get_value()
    np.testing.assert_allclose(
        predict(model.X, model.gamma, model.beta),
        numpy_batch_norm(model.X, model.gamma, model.beta, mean, var),
        rtol=1e-12,
    )


def test_eval_changes_no_statistic():
    model = Model((8, 3), seed=4)
    model.y.eval({model.x: model.X, model.g: model.gamma, model.b: model.beta}, phase="train")
    np.testing.assert_array_equal(model.running_mean.get_value(), model.mean0)


def test_float32_stays_float32():
    model = Model((8, 3, 2, 2), seed=5, dtype="float32")
    assert model.y.dtype == "float32"
    got = model.function("train")(model.X, model.gamma, model.beta)
    assert got.dtype == np.float32
    assert model.running_mean.get_value().dtype == np.float32
    assert model.running_var.get_value().dtype == np.float32


def test_explicit_axes():
    # a 4-d input over (0, 2, 3) given explicitly, and per-position statistics of a 3-d input over axis 0
    x = sg.tensor4("x")
    mean, var = sg.shared(np.zeros(3)), sg.shared(np.ones(3))
    y = sg.nn.batch_norm(x, np.ones(3), np.zeros(3), mean, var, axes=(0, 2, 3))
    X = np.random.default_rng(6).standard_normal((4, 3, 2, 5))
    axes = (0, 2, 3)
    expected = (X - X.mean(axis=axes, keepdims=True)) / np.sqrt(X.var(axis=axes, keepdims=True) + 1e-5)
    np.testing.assert_allclose(sg.function([x], y, phase="train")(X), expected, rtol=1e-12)
    mean2, var2 = sg.shared(np.zeros((2, 3))), sg.shared(np.ones((2, 3)))
    t = sg.tensor3("t")
    z = sg.nn.batch_norm(t, np.ones((2, 3)), np.zeros((2, 3)), mean2, var2, axes=0)
    T = np.random.default_rng(7).standard_normal((5, 2, 3))
    expected = (T - T.mean(axis=0)) / np.sqrt(T.var(axis=0) + 1e-5)
    np.testing.assert_allclose(sg.function([t], z, phase="train")(T), expected, rtol=1e-12)


# --- gradients ---------------------------------------------------------------------------------
@pytest.mark.parametrize("phase", ["train", "predict"])
@pytest.mark.parametrize("shape", [(6, 3), (3, 2, 3, 2)])
def test_gradients_in_both_phases(phase, shape):
    model = Model(shape, seed=8)
    sg.verify_grad(
        lambda x, gamma, beta: sg.nn.batch_norm(x, gamma, beta, model.running_mean, model.running_var),
        [model.X, model.gamma, model.beta],
        phase=phase,
    )


def test_train_gradient_flows_through_the_batch_statistics():
    # The sum of a batch-normalized output does not depend on x when training (its mean is beta):
    # the gradient of x is zero, unlike the predict phase's gamma / sqrt(var + eps).
    model = Model((10, 3), seed=9)
    gx = sg.grad(model.y.sum(), model.x)
    predict_gx = sg.function([model.x, model.g, model.b], gx, phase="predict")(model.X, model.gamma, model.beta)
    train_gx = sg.function([model.x, model.g, model.b], gx, phase="train")(model.X, model.gamma, model.beta)
    np.testing.assert_allclose(train_gx, 0.0, atol=1e-12)
    np.testing.assert_allclose(
        predict_gx, np.broadcast_to(model.gamma / np.sqrt(model.var0 + 1e-5), (10, 3)), rtol=1e-12
    )


@pytest.mark.parametrize("phase", ["train", "predict"])
def test_second_order_gradients(phase):
    model = Model((5, 2, 2, 2), seed=10)

    def gradient_norm(x, gamma, beta):
        y = sg.nn.batch_norm(x, gamma, beta, model.running_mean, model.running_var)
        gx, ggamma = sg.grad((y * y * x).sum(), [x, gamma])
        return (gx * gx).sum() + (ggamma * ggamma).sum()

    sg.verify_grad(gradient_norm, [model.X, model.gamma, model.beta], phase=phase)


def test_gradient_graph_needs_a_phase_too():
    model = Model((4, 3), seed=11)
    gx = sg.grad(model.y.sum(), model.x)
    with pytest.raises(PhaseError, match="batch_norm"):
        sg.function([model.x, model.g, model.b], gx)


# --- errors ------------------------------------------------------------------------------------
def test_compiling_without_phase_names_the_node():
    model = Model((4, 3), seed=12)
    with pytest.raises(
        PhaseError, match=r"(?s)batch_norm, built at .*test_batchnorm.py.*phase='train'.*phase='predict'"
    ):
        model.function(None)


def test_user_update_of_a_running_statistic_clashes():
    model = Model((4, 3), seed=13)
    with pytest.raises(UpdateError, match=r"(?s)running_mean.*updated twice.*batch_norm"):
        model.function("train", updates=[(model.running_mean, model.running_mean * 2)])
    # predicting has no automatic update: the user's own update applies
    predict = model.function("predict", updates=[(model.running_mean, model.running_mean * 2)])
    predict(model.X, model.gamma, model.beta)
    np.testing.assert_allclose(model.running_mean.get_value(), 2 * model.mean0)


def test_parameter_shape_mismatch_names_shapes():
    x = sg.tensor4("x", shape=(None, 3, 4, 4))
    with pytest.raises(ShapeError, match=r"gamma of shape \(4,\).*\(\?, 3, 4, 4\)"):
        sg.nn.batch_norm(x, np.ones(4), np.zeros(3), sg.shared(np.zeros(3)), sg.shared(np.ones(3)))


def test_running_statistics_must_be_shared():
    x = sg.matrix("x")
    with pytest.raises(TypeError, match="running_var must be a shared variable"):
        sg.nn.batch_norm(x, np.ones(3), np.zeros(3), sg.shared(np.zeros(3)), np.ones(3))


def test_bad_momentum_is_refused():
    with pytest.raises(ValueError, match="momentum"):
        sg.nn.batch_norm(
            sg.matrix("x"), np.ones(3), np.zeros(3), sg.shared(np.zeros(3)), sg.shared(np.ones(3)), momentum=2
        )
