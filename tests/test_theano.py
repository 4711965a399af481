"""Theano's names and meanings, so that Theano code ports by renaming (docs/API.md, "Theano names"):
truth values, random parameters that are tensors, ``sg.In`` and calls by keyword, pickling and
copying models, ``conv2d``'s and ``pool_2d``'s keywords, the typed constructors and other names,
stable logarithms of activations, and the printing aliases. The port of a whole tutorial-style
program is in test_theano_port.py."""

import copy
import io
import pickle
import shutil

import numpy as np
import pytest

import symgraph as sg
from symgraph.errors import InputError, NodeError, ShapeError
from symgraph.ops.random import generator_for

MODES = ["fast_run", "fast_compile", "debug"]


# --- 1. truth values ----------------------------------------------------------------------------
def test_every_variable_is_true_as_in_theano():
    x = sg.vector("x")
    srng = sg.RandomStreams(0)
    for variable in [x, sg.shared(0.0), sg.constant(0), x * 0, sg.exp(x).sum(), srng.uniform((2,)), sg.iscalar() & 3]:
        assert bool(variable) is True
        assert (not variable) is False


def test_the_tutorials_was_it_given_tests_work():
    def layer(input, n_in, n_out, W=None, b=None):
        if not W:
            W = sg.shared(np.full((n_in, n_out), 0.5), name="W")
        if not b:
            b = sg.shared(np.zeros(n_out), name="b")
        return sg.dot(input, W) + b, W

    x = sg.matrix("x")
    output, W = layer(x, 2, 3)
    np.testing.assert_allclose(output.eval({x: np.ones((1, 2))}), [[1.0, 1.0, 1.0]])
    mine = sg.shared(np.ones((2, 3)), name="mine")
    output, W = layer(x, 2, 3, W=mine)
    assert W is mine
    np.testing.assert_allclose(output.eval({x: np.ones((1, 2))}), [[2.0, 2.0, 2.0]])


COMPARISONS = {
    "x > 0": lambda x, y: x > 0,
    "x < y": lambda x, y: x < y,
    "x >= y": lambda x, y: x >= y,
    "x <= 0": lambda x, y: x <= 0,
    "x == y": lambda x, y: x == y,
    "x != y": lambda x, y: x != y,
    "sg.eq": lambda x, y: sg.eq(x, y),
    "sg.neq": lambda x, y: sg.neq(x, y),
    "sg.lt": lambda x, y: sg.lt(x, y),
    "sg.le": lambda x, y: sg.le(x, y),
    "sg.gt": lambda x, y: sg.gt(x, 1.0),
    "sg.ge": lambda x, y: sg.ge(2, y),
    "and of two": lambda x, y: (x > 0) & (y > 0),
    "or of two": lambda x, y: (x > 0) | (y > 0),
    "not of one": lambda x, y: ~(x > 0),
}


@pytest.mark.parametrize("build", COMPARISONS.values(), ids=COMPARISONS.keys())
def test_the_truth_value_of_a_comparison_raises_and_points_to_switch_and_ifelse(build):
    comparison = build(sg.vector("x"), sg.vector("y"))
    for truth in (bool, lambda v: not v, lambda v: 1 if v else 0):
        with pytest.raises(TypeError, match=r"sg\.switch.*sg\.ifelse"):
            truth(comparison)


def test_a_chained_comparison_cannot_pass_silently():
    x = sg.scalar("x")
    with pytest.raises(TypeError, match="chained comparison"):
        0 < x < 1  # Python asks for bool(0 < x)


def test_bitwise_operations_on_integers_are_plain_variables():
    i = sg.ivector("i")
    assert bool(i & 1) and bool(i | 2) and bool(~i)


def test_an_op_says_that_its_outputs_are_truth_values():
    class IsPositive(sg.Op):
        boolean_result = True

        def output_types(self, x):
            return [sg.TensorType("bool", x.shape)]

        def perform(self, x):
            return x > 0

    class Positive(sg.Op):
        def output_types(self, x):
            return [x]

        def perform(self, x):
            return np.maximum(x, 0)

    x = sg.vector("x")
    with pytest.raises(TypeError, match="is_positive"):
        bool(IsPositive()(x))
    assert bool(Positive()(x))
    assert sg.gt.boolean_result and not sg.exp.boolean_result


def test_length_and_iteration_still_raise():
    x = sg.vector("x")
    with pytest.raises(TypeError, match="shape"):
        len(x)
    with pytest.raises(TypeError, match="iterated"):
        list(x)


# --- 2. random parameters that are tensors ------------------------------------------------------
def test_binomial_with_a_tensor_p_draws_each_element_with_its_own_probability():
    srng = sg.RandomStreams(3)
    h = sg.matrix("h")
    sample = srng.binomial(size=h.shape, n=1, p=h, dtype=sg.config.floatX)  # the RBM's Gibbs step
    f = sg.function([h], sample)
    p = np.zeros((4000, 4))
    p[:, 1], p[:, 2], p[:, 3] = 1.0, 0.3, 0.9
    drawn = f(p)
    assert drawn.dtype == sg.config.floatX and drawn.shape == p.shape
    assert set(np.unique(drawn)) <= {0.0, 1.0}
    assert (drawn[:, 0] == 0).all() and (drawn[:, 1] == 1).all()
    for column, probability in ((2, 0.3), (3, 0.9)):
        bound = 5 * np.sqrt(probability * (1 - probability) / len(p))
        assert abs(drawn[:, column].mean() - probability) < bound
    assert not np.array_equal(f(p), drawn)  # each call draws afresh


def test_a_tensor_p_is_drawn_exactly_from_the_nodes_own_generator():
    srng = sg.RandomStreams(42)
    p = np.array([0.1, 0.5, 0.75])
    sample = srng.binomial((5, 3), p=p)
    expected = generator_for(42, 0).random((5, 3)) < p
    np.testing.assert_array_equal(sample.eval(), expected.astype("int64"))


def test_a_symbolic_scalar_p_keeps_the_fast_draw_of_a_number():
    by_number, by_variable = sg.RandomStreams(5), sg.RandomStreams(5)
    p = sg.shared(0.3, name="p")
    np.testing.assert_array_equal(by_number.binomial((1000,), p=0.3).eval(), by_variable.binomial((1000,), p=p).eval())


def test_a_p_that_broadcasts_against_the_size_and_a_shared_p_that_changes():
    srng = sg.RandomStreams(1)
    keep = sg.shared(np.zeros(3), name="keep")
    f = sg.function([], srng.binomial((200, 3), n=1, p=keep, dtype="int8"))
    assert f().dtype == np.int8 and not f().any()
    keep.set_value(np.array([1.0, 0.0, 1.0]))
    np.testing.assert_array_equal(f(), np.tile([1, 0, 1], (200, 1)))


def test_binomial_with_a_tensor_n():
    srng = sg.RandomStreams(2)
    counts = srng.binomial((5000, 3), n=np.array([1, 5, 20]), p=0.5).eval()
    assert (counts.max(axis=0) <= [1, 5, 20]).all() and counts.min() >= 0
    np.testing.assert_allclose(counts.mean(axis=0), [0.5, 2.5, 10.0], atol=0.15)


def test_uniform_and_normal_with_tensor_parameters():
    srng = sg.RandomStreams(4)
    low, high = np.array([0.0, 10.0, -5.0]), np.array([1.0, 10.5, 5.0])
    values = srng.uniform((3000, 3), low=low, high=high).eval()
    assert ((values >= low) & (values < high)).all()
    np.testing.assert_allclose(values.mean(axis=0), (low + high) / 2, atol=0.3)
    avg = sg.vector("avg")
    normal = srng.normal(size=(4000, 3), avg=avg, std=np.array([1.0, 0.0, 3.0]))
    drawn = normal.eval({avg: [5.0, -2.0, 0.0]})
    assert (drawn[:, 1] == -2.0).all()  # std 0: the mean exactly
    np.testing.assert_allclose(drawn.mean(axis=0), [5.0, -2.0, 0.0], atol=0.2)
    np.testing.assert_allclose(drawn.std(axis=0), [1.0, 0.0, 3.0], atol=0.15)


def test_tensor_parameters_follow_the_draws_dtype():
    srng = sg.RandomStreams(0)
    low = sg.vector("low", dtype="float64")
    sample = srng.uniform((2, 2), low=low, high=low + 1, dtype="float32")
    assert sample.dtype == "float32"
    drawn = sample.eval({low: [100.0, 200.0]})
    assert drawn.dtype == np.float32 and ((drawn >= [100, 200]) & (drawn <= [101, 201])).all()


def test_without_a_size_a_draw_takes_the_parameters_shape():
    srng = sg.RandomStreams(0)
    h = sg.matrix("h", shape=(None, 3))
    sample = srng.binomial(p=h)
    assert sample.type.shape == (None, 3)
    assert sample.eval({h: np.full((2, 3), 1.0)}).tolist() == [[1, 1, 1], [1, 1, 1]]
    assert srng.normal(avg=np.zeros((2, 5))).type.shape == (2, 5)
    assert srng.uniform().type.shape == ()


def test_parameters_that_do_not_broadcast_to_the_size_are_refused():
    srng = sg.RandomStreams(0)
    with pytest.raises(ShapeError, match=r"p of shape \(4,\) does not broadcast to the size \(3,\)"):
        srng.binomial((3,), p=np.full(4, 0.5))
    with pytest.raises(ShapeError, match="does not broadcast"):
        srng.uniform((3,), high=np.ones((2, 3)))  # a parameter may not enlarge the size
    with pytest.raises(TypeError, match="p must be a number"):
        srng.binomial((3,), p="half")
    p = sg.vector("p")
    f = sg.function([p], srng.binomial((3,), p=p))
    with pytest.raises(NodeError, match="does not broadcast") as failure:
        f(np.full(4, 0.5))
    assert isinstance(failure.value, ValueError) and "binomial" in str(failure.value)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        f([0.5, 1.5, 0.5])


def test_tensor_parameters_repeat_after_reseeding():
    srng = sg.RandomStreams(9)
    p = sg.vector("p")
    f = sg.function([p], [srng.binomial((3,), p=p), srng.normal((3,), avg=p)])
    first = f([0.2, 0.5, 0.9])
    srng.seed(9)
    again = f([0.2, 0.5, 0.9])
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)


# --- 3. sg.In and calls by keyword --------------------------------------------------------------
def test_in_gives_defaults_and_every_input_can_be_given_by_name():
    x, lr = sg.vector("x"), sg.scalar("lr")
    f = sg.function([x, sg.In(lr, value=0.5)], x * lr)
    np.testing.assert_allclose(f([2.0]), [1.0])
    np.testing.assert_allclose(f([2.0], 2.0), [4.0])
    np.testing.assert_allclose(f([2.0], lr=3.0), [6.0])
    np.testing.assert_allclose(f(lr=1.5, x=[2.0]), [3.0])
    np.testing.assert_allclose(f(x=[2.0]), [1.0])
    g = sg.function([x, lr], x - lr)  # no sg.In: keywords still work
    np.testing.assert_allclose(g(lr=1.0, x=[3.0]), [2.0])


def test_a_default_anywhere_and_a_name_of_its_own():
    index, lr = sg.lscalar("i"), sg.scalar("lr")
    f = sg.function([sg.In(index, value=3, name="index"), lr], index * lr)
    assert f(lr=2.0) == 6.0 and f(1, 2.0) == 2.0 and f(index=2, lr=1.0) == 2.0
    with pytest.raises(InputError, match=r"no input named 'i'.*'index', 'lr'"):
        f(i=1, lr=1.0)
    with pytest.raises(InputError, match=r"missing input.*lr"):
        f(2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda f: f([1.0], x=[2.0]), r"got input 'x' .argument 0. by position and by name"),
        (lambda f: f(y=[1.0]), r"no input named 'y'"),
        (lambda f: f(), r"missing input\(s\) x \(argument 0\)"),
        (lambda f: f([1.0], 2.0, 3.0), r"takes 2 argument\(s\) \(x, lr\), but 3 were given"),
        (lambda f: f([1.0], 2.0, lr=3.0), r"'lr' .argument 1. by position and by name"),
    ],
)
def test_bad_calls_by_name_say_what_is_wrong_and_change_nothing(call, message):
    x, lr = sg.vector("x"), sg.scalar("lr")
    total = sg.shared(0.0, name="total")
    f = sg.function([x, sg.In(lr, value=0.1)], x.sum(), updates=[(total, total + lr)])
    with pytest.raises(InputError, match=message):
        call(f)
    assert total.get_value() == 0.0


def test_inputs_sharing_a_name_are_given_by_position():
    a, b = sg.scalar("v"), sg.scalar("v")
    f = sg.function([a, b], a - b)
    assert f(3.0, 1.0) == 2.0
    with pytest.raises(InputError, match="several inputs named 'v'"):
        f(v=1.0)
    g = sg.function([a, sg.In(b, name="w")], a - b)
    assert g(v=3.0, w=1.0) == 2.0


def test_a_default_is_checked_when_compiling_and_copied():
    x = sg.ivector("x")
    with pytest.raises(InputError, match=r"default of input 0 .x."):
        sg.function([sg.In(x, value=[1.5])], x * 2)
    with pytest.raises(TypeError, match=r"sg\.In takes a symbolic input variable"):
        sg.In(np.zeros(2))
    start = np.array([1, 2], dtype="int32")
    f = sg.function([sg.In(x, value=start)], x * 2)
    start[0] = 100  # the caller's array changes; the default does not
    np.testing.assert_array_equal(f(), [2, 4])
    assert f.defaults[0].tolist() == [1, 2] and not f.defaults[0].flags.writeable


def test_a_positional_call_without_defaults_goes_straight_to_the_program():
    x = sg.vector("x")
    f = sg.function([x], x + 1)
    assert f._run == f.program.run
    g = sg.function([sg.In(x, value=[1.0])], x + 1)
    np.testing.assert_allclose(g([2.0]), [3.0])
    np.testing.assert_allclose(g(), [2.0])


def test_a_training_function_called_the_tutorials_way():
    data = sg.shared(np.arange(10.0), name="data")
    index, lr = sg.lscalar("index"), sg.scalar("lr")
    batch = sg.vector("batch")
    w = sg.shared(0.0, name="w")
    cost = ((batch - w) ** 2).mean()
    train = sg.function(
        [index, sg.In(lr, value=0.1)],
        cost,
        updates=[(w, w - lr * sg.grad(cost, w))],
        givens={batch: data[index * 5 : (index + 1) * 5]},
    )
    train(index=1, lr=0.5)  # the gradient is -2 * (7 - 0) at w = 0
    assert w.get_value() == pytest.approx(7.0)
    train(0)  # lr defaults to 0.1: w moves 20% of the way to 2
    assert w.get_value() == pytest.approx(7.0 - 0.2 * 5.0)


# --- 4. pickling and copying models -------------------------------------------------------------
class LogisticRegression:
    """The tutorial's classifier: parameters, and the graph of its predictions, on one object."""

    def __init__(self, input, n_in, n_out):
        self.W = sg.shared(np.zeros((n_in, n_out)), name="W")
        self.b = sg.shared(np.zeros((n_out,)), name="b")
        self.p_y_given_x = sg.nn.softmax(sg.dot(input, self.W) + self.b)
        self.y_pred = sg.argmax(self.p_y_given_x, axis=1)
        self.params = [self.W, self.b]
        self.input = input

    def negative_log_likelihood(self, y):
        return -sg.mean(sg.log(self.p_y_given_x)[sg.arange(y.shape[0]), y])


def _trained_classifier():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(60, 2))
    labels = (data[:, 0] > data[:, 1]).astype("int32")
    x, y = sg.matrix("x"), sg.ivector("y")
    classifier = LogisticRegression(x, 2, 2)
    cost = classifier.negative_log_likelihood(y)
    updates = [(p, p - 0.5 * g) for p, g in zip(classifier.params, sg.grad(cost, classifier.params))]
    train = sg.function([x, y], cost, updates=updates)
    for _ in range(30):
        train(data, labels)
    return classifier, data, labels


def test_pickle_dump_of_a_classifier_as_the_tutorial_saves_its_best_model():
    classifier, data, labels = _trained_classifier()
    predicted = sg.function([classifier.input], classifier.y_pred)(data)
    assert (predicted == labels).mean() > 0.9
    saved = io.BytesIO()
    pickle.dump(classifier, saved)
    loaded = pickle.load(io.BytesIO(saved.getvalue()))
    predict_model = sg.function(inputs=[loaded.input], outputs=loaded.y_pred)
    np.testing.assert_array_equal(predict_model(data), predicted)
    np.testing.assert_array_equal(loaded.W.get_value(), classifier.W.get_value())
    loaded.W.set_value(np.zeros((2, 2)))  # the loaded parameters are its own
    assert classifier.W.get_value().any()
    assert (predict_model(data) == 0).all()


def test_deepcopy_of_a_model_copies_its_shared_variables_and_rewires_its_graph():
    classifier, data, labels = _trained_classifier()
    best = copy.deepcopy(classifier)
    assert best.W is not classifier.W
    assert best.p_y_given_x.owner.inputs[0].owner.inputs[0].owner.inputs[1] is best.W
    before = best.W.get_value()
    classifier.W.set_value(np.zeros((2, 2)))  # training goes on; the snapshot stays
    np.testing.assert_array_equal(best.W.get_value(), before)
    predicted = sg.function([best.input], best.y_pred)(data)
    assert (predicted == labels).mean() > 0.9


class DenoisingLayer:
    """A model holding its own random stream (the denoising autoencoder's pattern)."""

    def __init__(self, seed):
        self.theano_rng = sg.RandomStreams(seed)
        self.x = sg.matrix("x")
        self.W = sg.shared(np.eye(3), name="W")
        corrupted = self.theano_rng.binomial(size=self.x.shape, n=1, p=0.5, dtype="float64") * self.x
        self.output = sg.nn.sigmoid(sg.dot(corrupted, self.W))


@pytest.mark.parametrize(
    "duplicate", [copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))], ids=["deepcopy", "pickle"]
)
def test_a_model_with_its_random_stream_copies_and_pickles(duplicate):
    model = DenoisingLayer(seed=7)
    twin = duplicate(model)
    (state,) = twin.theano_rng.state_variables
    assert state is not model.theano_rng.state_variables[0]
    f = sg.function([twin.x], twin.output)
    twin.theano_rng.seed(11)  # reseeding the copy's stream reaches the copy's graph
    first = f(np.ones((4, 3)))
    twin.theano_rng.seed(11)
    np.testing.assert_array_equal(f(np.ones((4, 3))), first)
    assert len(model.theano_rng.state_variables) == 1


# --- 5. conv2d's Theano keywords ----------------------------------------------------------------
def reference_conv(x, w, stride=(1, 1), pad=(0, 0), dilation=(1, 1), flip=False):
    """Loops over every output cell: Theano's meaning of its conv2d arguments."""
    if flip:
        w = w[:, :, ::-1, ::-1]
    x = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    n, _, h, width = x.shape
    o, _, kh, kw = w.shape
    extent = ((kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1)
    ho, wo = (h - extent[0]) // stride[0] + 1, (width - extent[1]) // stride[1] + 1
    out = np.zeros((n, o, ho, wo))
    for i in range(ho):
        for j in range(wo):
            rows = slice(i * stride[0], i * stride[0] + extent[0], dilation[0])
            columns = slice(j * stride[1], j * stride[1] + extent[1], dilation[1])
            out[:, :, i, j] = np.einsum("nchw,ochw->no", x[:, :, rows, columns], w)
    return out


def _conv_data(kernel=(3, 2)):
    rng = np.random.default_rng(0)
    return rng.normal(size=(2, 3, 7, 6)), rng.normal(size=(4, 3) + kernel)


@pytest.mark.parametrize("border_mode", ["valid", "full", "half", 1, (2, 1)])
@pytest.mark.parametrize("static_kernel", [True, False], ids=["static", "run-time"])
def test_conv2d_border_modes_as_theano(border_mode, static_kernel):
    image, kernels = _conv_data()
    x = sg.tensor4("x")
    W = sg.tensor4("W", shape=kernels.shape if static_kernel else None)
    extents = kernels.shape[2:]
    pads = {
        "valid": (0, 0),
        "full": (extents[0] - 1, extents[1] - 1),
        "half": (extents[0] // 2, extents[1] // 2),
    }.get(border_mode, border_mode if isinstance(border_mode, tuple) else (border_mode, border_mode))
    y = sg.nn.conv2d(input=x, filters=W, border_mode=border_mode)
    np.testing.assert_allclose(y.eval({x: image, W: kernels}), reference_conv(image, kernels, pad=pads), rtol=1e-10)


def test_conv2d_subsample_dilation_and_flip_with_theanos_keywords():
    image, kernels = _conv_data()
    x, W = sg.tensor4("x"), sg.shared(kernels, name="W")
    y = sg.nn.conv2d(input=x, filters=W, subsample=(2, 1), filter_dilation=(2, 3), border_mode="full", filter_flip=True)
    pads = ((3 - 1) * 2, (2 - 1) * 3)
    expected = reference_conv(image, kernels, stride=(2, 1), pad=pads, dilation=(2, 3), flip=True)
    for mode in MODES:
        np.testing.assert_allclose(sg.function([x], y, mode=mode)(image), expected, rtol=1e-10)


@pytest.mark.parametrize("dilation", [1, 2, (1, 3)])
@pytest.mark.parametrize(("stride", "padding"), [(1, 0), (2, 1), (1, "same"), (1, "half")])
def test_dilated_convolution_values(dilation, stride, padding):
    rng = np.random.default_rng(6)
    image, kernels = rng.normal(size=(2, 3, 8, 9)), rng.normal(size=(4, 3, 3, 3))
    x = sg.tensor4("x")
    y = sg.nn.conv2d(x, kernels, stride=stride, padding=padding, filter_dilation=dilation)
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    pads = {0: (0, 0), 1: (1, 1), "same": (d[0], d[1]), "half": (d[0], d[1])}[padding]
    np.testing.assert_allclose(
        y.eval({x: image}), reference_conv(image, kernels, (stride, stride), pads, d), rtol=1e-10
    )


def test_gradients_through_dilated_flipped_and_graph_padded_convolutions():
    rng = np.random.default_rng(1)
    image, kernels = rng.normal(size=(1, 2, 6, 5)), rng.normal(size=(2, 2, 2, 3))
    sg.verify_grad(
        lambda x, w: sg.nn.conv2d(x, w, filter_dilation=2, subsample=(1, 2), padding=1), [image, kernels], rng=0
    )
    sg.verify_grad(  # the kernel's size unknown: 'full' pads in the graph
        lambda x, w: sg.nn.conv2d(input=x, filters=w, border_mode="full", filter_flip=True), [image, kernels], rng=0
    )
    x = sg.tensor4("x")
    twice = sg.grad(sg.grad((sg.nn.conv2d(x, kernels, filter_dilation=2) ** 2).sum(), x).sum(), x)
    assert np.isfinite(twice.eval({x: image})).all()


def test_conv2d_shapes_given_theanos_way_become_static_and_are_checked():
    image, kernels = _conv_data()
    x, W = sg.tensor4("x"), sg.shared(kernels, name="W")
    y = sg.nn.conv2d(x, W, input_shape=(None, 3, 7, 6), filter_shape=kernels.shape, border_mode="full")
    assert y.type.shape == (None, 4, 9, 7)
    assert y.eval({x: image}).shape == (2, 4, 9, 7)
    wrong = sg.nn.conv2d(x, W, filter_shape=(4, 3, 5, 5), border_mode="full")
    with pytest.raises(NodeError, match=r"expected shape \(4, 3, 5, 5\), got \(4, 3, 3, 2\)"):
        wrong.eval({x: image})
    with pytest.raises(ShapeError, match="input_shape"):
        sg.nn.conv2d(sg.tensor4(shape=(None, 3, 7, 6)), W, input_shape=(None, 2, 7, 6))


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"input": "x"}, TypeError, "x= or input=, not both"),
        ({"stride": 2, "subsample": (2, 2)}, TypeError, "stride= or subsample="),
        ({"padding": 1, "border_mode": "full"}, TypeError, "padding= or border_mode="),
        ({"border_mode": "wide"}, ValueError, "'full' or 'half'"),
        ({"filter_dilation": 0}, ValueError, "filter_dilation must be at least 1"),
        ({"num_groups": 2}, NotImplementedError, "grouped"),
        ({"filter_shape": (3, 3)}, ValueError, "filter_shape is a tuple of 4"),
    ],
)
def test_conv2d_keyword_errors(arguments, error, message):
    x = sg.tensor4("x")
    arguments = {key: (x if value == "x" else value) for key, value in arguments.items()}
    with pytest.raises(error, match=message):
        sg.nn.conv2d(x, np.ones((1, 1, 2, 2)), **arguments)
    with pytest.raises(TypeError, match="needs its input"):
        sg.nn.conv2d(filters=np.ones((1, 1, 2, 2)))


# --- 6. pool_2d ---------------------------------------------------------------------------------
def reference_pool(x, ws, ignore_border, stride, pad, mode):
    """Theano's pool_2d on the last two axes, one window at a time."""
    stride = stride or ws
    counts = []
    for axis in range(2):
        length = x.shape[-2 + axis] + 2 * pad[axis]
        if ignore_border:
            counts.append((length - ws[axis]) // stride[axis] + 1)
        elif stride[axis] >= ws[axis]:
            counts.append((length - 1) // stride[axis] + 1)
        else:
            counts.append(max(0, (length - 1 - ws[axis] + stride[axis]) // stride[axis]) + 1)
    out = np.zeros(x.shape[:-2] + tuple(counts))
    inside = np.zeros(x.shape[-2:], dtype=bool)
    padded = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(pad[0], pad[0]), (pad[1], pad[1])])
    real = np.pad(~inside, [(pad[0], pad[0]), (pad[1], pad[1])])  # True on the input's own cells
    for i in range(counts[0]):
        for j in range(counts[1]):
            rows = slice(i * stride[0], min(i * stride[0] + ws[0], padded.shape[-2]))
            columns = slice(j * stride[1], min(j * stride[1] + ws[1], padded.shape[-1]))
            window, cells = padded[..., rows, columns], real[rows, columns]
            if mode == "max":
                out[..., i, j] = window[..., cells].max(axis=-1)
            elif mode == "sum":
                out[..., i, j] = window.sum(axis=(-2, -1))
            elif mode == "average_inc_pad":
                out[..., i, j] = window.sum(axis=(-2, -1)) / cells.size
            else:
                out[..., i, j] = window.sum(axis=(-2, -1)) / cells.sum()
    return out


POOL_CASES = [
    ((2, 2), True, None, (0, 0)),
    ((2, 2), False, None, (0, 0)),
    ((3, 2), False, (2, 1), (0, 0)),
    ((2, 3), False, (3, 4), (0, 0)),
    ((3, 3), True, (1, 1), (1, 1)),
    ((3, 2), True, (2, 2), (2, 1)),
    ((1, 1), False, (4, 4), (0, 0)),
]


@pytest.mark.parametrize("mode", sg.nn.pool.POOL_MODES)
@pytest.mark.parametrize(("ws", "ignore_border", "stride", "pad"), POOL_CASES)
def test_pool_2d_as_theano(ws, ignore_border, stride, pad, mode):
    image = np.random.default_rng(2).normal(size=(2, 3, 7, 6))
    x = sg.tensor4("x")
    y = sg.nn.pool_2d(x, ws=ws, ignore_border=ignore_border, stride=stride, pad=pad, mode=mode)
    expected = reference_pool(image, ws, ignore_border, stride, pad, mode)
    np.testing.assert_allclose(y.eval({x: image}), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(7, 6), (3, 7, 6), (2, 2, 3, 7, 6)])
def test_pool_2d_pools_the_last_two_axes_of_any_input(shape):
    image = np.random.default_rng(3).normal(size=shape)
    x = sg.tensor("x", shape=(None,) * len(shape))
    y = sg.nn.pool_2d(x, ds=(2, 2), ignore_border=False, mode="average_exc_pad")
    expected = reference_pool(image, (2, 2), False, None, (0, 0), "average_exc_pad")
    assert y.ndim == len(shape)
    np.testing.assert_allclose(y.eval({x: image}), expected, rtol=1e-12)


@pytest.mark.parametrize("mode", sg.nn.pool.POOL_MODES)
def test_pool_2d_gradients(mode):
    # Distinct values: the maximum of each window is unique, so the max gradient is smooth there.
    image = np.random.default_rng(4).permutation(2 * 5 * 7).reshape(1, 2, 5, 7) / 10.0
    for ignore_border, pad in ((False, (0, 0)), (True, (1, 1))):
        sg.verify_grad(
            lambda x: sg.nn.pool_2d(x, (2, 3), ignore_border=ignore_border, stride=(2, 2), pad=pad, mode=mode),
            [image],
            rng=0,
        )


def test_pool_2d_static_shape_and_modes():
    x = sg.tensor4("x", shape=(None, 1, 5, 5))
    assert sg.nn.pool_2d(x, (2, 2), ignore_border=False).type.shape == (None, 1, 3, 3)
    assert sg.nn.pool_2d(x, (2, 2)).type.shape == (None, 1, 2, 2)
    for mode in MODES:
        pooled = sg.function([x], sg.nn.pool_2d(x, (2, 2), ignore_border=False, mode="sum"), mode=mode)
        np.testing.assert_allclose(pooled(np.ones((1, 1, 5, 5)))[0, 0], [[4, 4, 2], [4, 4, 2], [2, 2, 1]])


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({}, TypeError, "needs the window size"),
        ({"ws": (2, 2), "ds": (2, 2)}, ValueError, "ws= or its old name ds="),
        ({"ws": 2, "stride": 1, "st": 1}, ValueError, "stride= or its old name st="),
        ({"ws": 2, "pad": (1, 1), "padding": (1, 1)}, ValueError, "pad= or its old name padding="),
        ({"ws": 2, "mode": "average"}, ValueError, "mode must be one of"),
        ({"ws": 2, "pad": (1, 1), "ignore_border": False}, ValueError, "needs ignore_border=True"),
        ({"ws": 2, "pad": (2, 0)}, ValueError, "smaller than the window"),
        ({"ws": (2, 2, 2)}, TypeError, "pair"),
    ],
)
def test_pool_2d_argument_errors(arguments, error, message):
    with pytest.raises(error, match=message):
        sg.nn.pool_2d(sg.tensor4("x"), **arguments)
    with pytest.raises(ShapeError, match="last two axes"):
        sg.nn.pool_2d(sg.vector("v"), 2)


def test_pool_2d_old_names_mean_the_new_ones():
    image = np.random.default_rng(5).normal(size=(1, 1, 6, 6))
    x = sg.tensor4("x")
    new = sg.nn.pool_2d(x, ws=(3, 3), stride=(2, 2), pad=(1, 1), mode="average_exc_pad")
    old = sg.nn.pool_2d(x, ds=(3, 3), st=(2, 2), padding=(1, 1), mode="average_exc_pad")
    np.testing.assert_array_equal(new.eval({x: image}), old.eval({x: image}))


# --- 7. names -----------------------------------------------------------------------------------
TYPED = [
    (prefix + kind, dtype, ndim)
    for prefix, dtype in {"d": "float64", "f": "float32", "i": "int32", "l": "int64", "b": "int8"}.items()
    for kind, ndim in {"scalar": 0, "vector": 1, "matrix": 2, "tensor3": 3, "tensor4": 4}.items()
]


@pytest.mark.parametrize(("name", "dtype", "ndim"), TYPED)
def test_typed_constructors(name, dtype, ndim):
    declare = getattr(sg, name)
    variable = declare("v")
    assert (variable.dtype, variable.ndim, variable.name, variable.owner) == (dtype, ndim, "v", None)
    assert declare().name is None
    assert name in sg.__all__
    data = np.ones((2,) * ndim, dtype=dtype)
    np.testing.assert_array_equal(sg.function([variable], variable * 2)(data), data * 2)


def test_round_in_both_of_theanos_modes():
    x = sg.dvector("x")
    ties = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49999999999999994, -0.49999999999999994, 1e300, 2.4, -2.6])
    np.testing.assert_array_equal(sg.round(x).eval({x: ties}), np.round(ties))
    away = sg.round(x, mode="half_away_from_zero").eval({x: ties})
    np.testing.assert_array_equal(away, [-3, -2, -1, 1, 2, 3, 0, -0.0, 1e300, 2, -3])
    f32 = sg.fvector("f")
    assert sg.round(f32, "half_away_from_zero").eval({f32: np.array([2.5], "float32")}).dtype == np.float32
    i = sg.ivector("i")
    rounded = sg.round(i, "half_away_from_zero")
    assert rounded.dtype == "int32" and rounded.eval({i: [3, -4]}).tolist() == [3, -4]
    np.testing.assert_array_equal(sg.grad(sg.round(x).sum(), x).eval({x: [0.3, 1.7]}), [0.0, 0.0])
    with pytest.raises(ValueError, match="half_away_from_zero"):
        sg.round(x, mode="up")


def test_alloc_fills_a_shape_with_a_value_or_a_tensor():
    n = sg.lscalar("n")
    filled = sg.alloc(0.5, n, 3)
    assert filled.dtype == sg.config.floatX and filled.type.shape == (None, 3)
    np.testing.assert_array_equal(filled.eval({n: 2}), np.full((2, 3), 0.5))
    row = sg.fvector("row")
    tiled = sg.alloc(row, 2, 3)
    assert tiled.dtype == "float32"
    np.testing.assert_array_equal(tiled.eval({row: np.arange(3, dtype="float32")}), [[0, 1, 2], [0, 1, 2]])
    assert sg.alloc(np.float32(0), 4).dtype == "float32" and sg.alloc(7, 2).eval().tolist() == [7, 7]
    np.testing.assert_allclose(sg.grad(sg.alloc(row, 4, 3).sum(), row).eval({row: np.zeros(3, "float32")}), [4, 4, 4])
    with pytest.raises(ShapeError, match="cannot fill"):
        sg.alloc(np.ones((2, 2)), 3)


def test_arange_has_theanos_signature():
    n = sg.lscalar("n")
    assert sg.arange(n).dtype == "int64"
    np.testing.assert_array_equal(sg.arange(1, n, 2).eval({n: 8}), np.arange(1, 8, 2))
    np.testing.assert_array_equal(sg.arange(0.0, 1.0, 0.25).eval(), np.arange(0.0, 1.0, 0.25))
    assert sg.arange(0.0, 1.0, 0.25).dtype == sg.config.floatX
    assert sg.arange(sg.fscalar("s"), 3).dtype == "float32"
    assert sg.arange(n, dtype="float32").eval({n: 3}).dtype == np.float32
    with pytest.raises(NodeError, match="step must not be zero"):
        sg.arange(0, n, 0).eval({n: 3})


def test_jacobian_with_a_list_gives_a_list():
    x = sg.dvector("x")
    w1, w2 = sg.shared(np.array([1.0, 2.0]), name="w1"), sg.shared(3.0, name="w2")
    J1, J2 = sg.jacobian(sg.tanh(x * w1) * w2, [w1, w2])
    value = np.array([0.5, -1.0])
    t = np.tanh(value * [1.0, 2.0])
    np.testing.assert_allclose(J1.eval({x: value}), np.diag(3.0 * (1 - t**2) * value))
    np.testing.assert_allclose(J2.eval({x: value}), t)


# --- 8. stable logarithms of activations --------------------------------------------------------
STABLE = {
    "log(sigmoid(x))": (lambda x: sg.log(sg.nn.sigmoid(x)), lambda v: -np.logaddexp(0, -v)),
    "log(1 - sigmoid(x))": (lambda x: sg.log(1 - sg.nn.sigmoid(x)), lambda v: -np.logaddexp(0, v)),
    "log1p(-sigmoid(x))": (lambda x: sg.log1p(-sg.nn.sigmoid(x)), lambda v: -np.logaddexp(0, v)),
    "log(1 + exp(x))": (lambda x: sg.log(1 + sg.exp(x)), lambda v: np.logaddexp(0, v)),
    "log(exp(x) + 1)": (lambda x: sg.log(sg.exp(x) + 1.0), lambda v: np.logaddexp(0, v)),
    "log1p(exp(x))": (lambda x: sg.log1p(sg.exp(x)), lambda v: np.logaddexp(0, v)),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", STABLE)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_logs_of_sigmoids_are_finite_in_every_mode(name, mode, dtype):
    build, reference = STABLE[name]
    x = sg.vector("x", dtype=dtype)
    y = build(x)
    f = sg.function([x], [y, sg.grad(y.sum(), x)], mode=mode)
    values = np.array([-800.0, -100.0, -20.0, -1.0, 0.0, 3.0, 20.0, 100.0, 800.0], dtype=dtype)
    result, gradient = f(values)
    assert result.dtype == dtype and np.isfinite(result).all() and np.isfinite(gradient).all()
    tolerance = 1e-6 if dtype == "float32" else 1e-12
    # (float32 values below 1e-38 are subnormal: only their absolute error is small)
    np.testing.assert_allclose(result, reference(values.astype("float64")), rtol=tolerance, atol=1e-40)
    step = 1e-6
    numeric = (reference(values.astype("float64") + step) - reference(values.astype("float64") - step)) / (2 * step)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-4, atol=1e-7)


def test_float32_log_of_one_minus_sigmoid_of_20():
    x = sg.fscalar("x")
    cost = sg.log(1 - sg.nn.sigmoid(x))
    value, gradient = sg.function([x], [cost, sg.grad(cost, x)], mode="debug")(np.float32(20))
    assert value == pytest.approx(-20.0, rel=1e-6) and gradient == pytest.approx(-1.0, rel=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_log_of_softmax_is_log_softmax(mode):
    z = sg.matrix("z")
    y = sg.log(sg.nn.softmax(z))
    logits = np.array([[1e4, 0.0, -1e4], [1.0, 2.0, 3.0]])
    expected = logits - logits.max(axis=1, keepdims=True)
    expected -= np.log(np.exp(expected).sum(axis=1, keepdims=True))
    f = sg.function([z], [y, sg.grad(y[:, 2].sum(), z)], mode=mode)
    value, gradient = f(logits)
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    assert np.isfinite(gradient).all()
    column = sg.log(sg.nn.softmax(z, axis=0))
    np.testing.assert_allclose(column.eval({z: logits.T}), expected.T, rtol=1e-12)


@pytest.mark.parametrize("name", STABLE)
def test_gradients_of_the_stable_forms_at_large_arguments(name):
    build, _ = STABLE[name]
    sg.verify_grad(lambda x: build(x), [np.array([-700.0, -60.0, -5.0, 0.3, 5.0, 60.0, 700.0])], rng=0)


def test_the_stable_forms_are_what_the_graph_holds():
    x = sg.vector("x")
    assert sg.log(sg.nn.sigmoid(x)).owner.op.name == "neg"
    assert sg.log(sg.nn.softmax(x)).owner.op.name == "log_softmax"
    assert "softplus" in sg.debugprint(sg.log(1 - sg.nn.sigmoid(x)), file=io.StringIO())
    # Anything else is left as written.
    assert sg.log(2 - sg.nn.sigmoid(x)).owner.op.name == "log"
    assert sg.log(sg.exp(x)).owner.op.name == "log"
    wider = sg.log(np.ones((2, 1)) - sg.nn.sigmoid(x))  # a constant that broadcasts: not the pattern
    assert wider.owner.op.name == "log" and wider.ndim == 2
    small = sg.vector("small", dtype="uint8")  # -small would wrap around: left as written
    assert sg.log(sg.nn.sigmoid(small)).owner.op.name == "log"


def test_the_tutorials_reconstruction_costs_are_stable():
    # The denoising autoencoder's and the RBM's cross-entropies, written by hand.
    x, pre = sg.matrix("x"), sg.matrix("pre")
    z = sg.nn.sigmoid(pre)
    cost = -sg.sum(x * sg.log(z) + (1 - x) * sg.log(1 - z), axis=1).mean()
    data, logits = np.array([[1.0, 0.0, 1.0]]), np.array([[-300.0, 300.0, 2.0]])
    value, gradient = sg.function([x, pre], [cost, sg.grad(cost, pre)], mode="fast_compile")(data, logits)
    assert value == pytest.approx(600.0 + np.logaddexp(0, -2.0))
    np.testing.assert_allclose(gradient, [[-1.0, 1.0, 1 / (1 + np.exp(2.0)) * -1]])


# --- 9. softmax of a vector ---------------------------------------------------------------------
def test_softmax_of_a_vector_is_a_vector():
    v = sg.vector("v")
    p = sg.nn.softmax(v)
    assert p.ndim == 1
    values = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(p.eval({v: values}), np.exp(values) / np.exp(values).sum())


# --- printing aliases ---------------------------------------------------------------------------
def test_theanos_printing_names():
    x = sg.vector("x")
    f = sg.function([x], sg.exp(x) * 2)
    assert sg.printing.debugprint is sg.debugprint
    assert sg.printing.debugprint(f, file=io.StringIO()) == sg.debugprint(f, file=io.StringIO())


def test_pydotprint_writes_sg_plots_picture(tmp_path, monkeypatch):
    if shutil.which("dot") is None:
        pytest.importorskip("matplotlib")
    x = sg.vector("x")
    f = sg.function([x], sg.exp(x) * 2, name="double_exp")
    path = sg.printing.pydotprint(f, outfile=tmp_path / "f.svg", var_with_name_simple=True)
    assert path == tmp_path / "f.svg" and "double_exp" in path.read_text()
    monkeypatch.chdir(tmp_path)
    assert sg.printing.pydotprint(f, format="svg").name == "symgraph.pydotprint.svg"
    with pytest.raises(TypeError):
        sg.printing.pydotprint(f, outfile=tmp_path / "g.svg", no_such_option=1)


@pytest.mark.parametrize("mode", MODES)
def test_sigmoid_of_a_scalar_in_every_mode(mode):
    # (its kernel once wrote into the numpy scalar that a 0-d operand gives, in every mode)
    x = sg.fscalar("x")
    value, gradient = sg.function([x], [sg.nn.sigmoid(x), sg.grad(sg.nn.softplus(x), x)], mode=mode)(np.float32(2))
    assert value == pytest.approx(1 / (1 + np.exp(-2.0)), rel=1e-6) and gradient == pytest.approx(value)


def test_verify_grad_takes_theanos_random_state():
    rng = np.random.RandomState(42)
    sg.verify_grad(lambda a: sg.tanh(a).sum(), [np.array([0.3, -0.2])], rng=rng)
    with pytest.raises(sg.errors.GradientError):
        sg.verify_grad(lambda a: sg.floor(a * 10) + a, [np.array([0.35, 0.15])], eps=0.1, rng=rng)
