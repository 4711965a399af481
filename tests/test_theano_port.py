"""A program written for Theano, in the style of its tutorials, runs on symgraph after a mechanical
rename and learns.

``THEANO_PROGRAM`` is Theano source text: a multilayer perceptron (logistic regression on a tanh
hidden layer) trained by minibatch SGD with the minibatch index in ``givens``, labels that are
``T.cast`` of a shared vector, updates as a list of pairs, momentum updates in an ``OrderedDict``,
a learning rate given with ``theano.In`` and calls by keyword, early stopping that snapshots the
parameters with ``get_value``/``set_value`` and ``copy.deepcopy``, and the best model pickled and
reloaded; then LeNet's convolution and pooling layer. ``RENAMES`` is the only change made to it.
"""

import os
import re
import sys
import types

import numpy as np
import pytest

import symgraph as sg

THEANO_PROGRAM = """
import copy
import io
import pickle
from collections import OrderedDict

import numpy

import theano
import theano.tensor as T
from theano.tensor.nnet import conv2d
from theano.tensor.signal import pool
from theano.tensor.shared_randomstreams import RandomStreams


def shared_dataset(data_xy, borrow=True):
    data_x, data_y = data_xy
    shared_x = theano.shared(numpy.asarray(data_x, dtype=theano.config.floatX), borrow=borrow)
    shared_y = theano.shared(numpy.asarray(data_y, dtype=theano.config.floatX), borrow=borrow)
    return shared_x, T.cast(shared_y, 'int32')


class LogisticRegression(object):
    def __init__(self, input, n_in, n_out):
        self.W = theano.shared(value=numpy.zeros((n_in, n_out), dtype=theano.config.floatX), name='W', borrow=True)
        self.b = theano.shared(value=numpy.zeros((n_out,), dtype=theano.config.floatX), name='b', borrow=True)
        self.p_y_given_x = T.nnet.softmax(T.dot(input, self.W) + self.b)
        self.y_pred = T.argmax(self.p_y_given_x, axis=1)
        self.params = [self.W, self.b]
        self.input = input

    def negative_log_likelihood(self, y):
        return -T.mean(T.log(self.p_y_given_x)[T.arange(y.shape[0]), y])

    def errors(self, y):
        if y.ndim != self.y_pred.ndim:
            raise TypeError('y should have the same shape as self.y_pred', ('y', y.type, 'y_pred', self.y_pred.type))
        if y.dtype.startswith('int'):
            return T.mean(T.neq(self.y_pred, y))
        else:
            raise NotImplementedError()


class HiddenLayer(object):
    def __init__(self, rng, input, n_in, n_out, W=None, b=None, activation=T.tanh, theano_rng=None, corruption=0.0):
        self.input = input
        if not theano_rng:
            theano_rng = RandomStreams(rng.randint(2 ** 30))
        self.theano_rng = theano_rng
        if corruption:
            input = theano_rng.binomial(size=input.shape, n=1, p=1 - corruption, dtype=theano.config.floatX) * input
        if not W:
            W_values = numpy.asarray(
                rng.uniform(low=-numpy.sqrt(6. / (n_in + n_out)), high=numpy.sqrt(6. / (n_in + n_out)), size=(n_in, n_out)),
                dtype=theano.config.floatX,
            )
            if activation == T.nnet.sigmoid:
                W_values *= 4
            W = theano.shared(value=W_values, name='W', borrow=True)
        if b is None:
            b_values = numpy.zeros((n_out,), dtype=theano.config.floatX)
            b = theano.shared(value=b_values, name='b', borrow=True)
        self.W = W
        self.b = b
        lin_output = T.dot(input, self.W) + self.b
        self.output = (lin_output if activation is None else activation(lin_output))
        self.params = [self.W, self.b]


class MLP(object):
    def __init__(self, rng, input, n_in, n_hidden, n_out, corruption=0.0):
        self.hiddenLayer = HiddenLayer(
            rng=rng, input=input, n_in=n_in, n_out=n_hidden, activation=T.tanh, corruption=corruption
        )
        self.logRegressionLayer = LogisticRegression(input=self.hiddenLayer.output, n_in=n_hidden, n_out=n_out)
        self.L1 = abs(self.hiddenLayer.W).sum() + abs(self.logRegressionLayer.W).sum()
        self.L2_sqr = (self.hiddenLayer.W ** 2).sum() + (self.logRegressionLayer.W ** 2).sum()
        self.negative_log_likelihood = self.logRegressionLayer.negative_log_likelihood
        self.errors = self.logRegressionLayer.errors
        self.params = self.hiddenLayer.params + self.logRegressionLayer.params
        self.input = input
        self.y_pred = self.logRegressionLayer.y_pred


def test_mlp(datasets, learning_rate=0.1, L1_reg=0.0, L2_reg=0.0001, n_epochs=40, batch_size=20, n_hidden=16,
             corruption=0.0):
    train_set_x, train_set_y = datasets[0]
    valid_set_x, valid_set_y = datasets[1]
    test_set_x, test_set_y = datasets[2]
    n_train_batches = train_set_x.get_value(borrow=True).shape[0] // batch_size
    n_valid_batches = valid_set_x.get_value(borrow=True).shape[0] // batch_size
    n_test_batches = test_set_x.get_value(borrow=True).shape[0] // batch_size

    index = T.lscalar('index')
    x = T.matrix('x')
    y = T.ivector('y')
    lr = T.scalar('lr')
    rng = numpy.random.RandomState(1234)
    classifier = MLP(rng=rng, input=x, n_in=10, n_hidden=n_hidden, n_out=3, corruption=corruption)
    cost = classifier.negative_log_likelihood(y) + L1_reg * classifier.L1 + L2_reg * classifier.L2_sqr

    test_model = theano.function(
        inputs=[index],
        outputs=classifier.errors(y),
        givens={
            x: test_set_x[index * batch_size:(index + 1) * batch_size],
            y: test_set_y[index * batch_size:(index + 1) * batch_size],
        },
    )
    validate_model = theano.function(
        inputs=[index],
        outputs=classifier.errors(y),
        givens={
            x: valid_set_x[index * batch_size:(index + 1) * batch_size],
            y: valid_set_y[index * batch_size:(index + 1) * batch_size],
        },
    )
    gparams = [T.grad(cost, param) for param in classifier.params]
    updates = [(param, param - lr * gparam) for param, gparam in zip(classifier.params, gparams)]
    train_model = theano.function(
        inputs=[index, theano.In(lr, value=learning_rate)],
        outputs=cost,
        updates=updates,
        givens={
            x: train_set_x[index * batch_size: (index + 1) * batch_size],
            y: train_set_y[index * batch_size: (index + 1) * batch_size],
        },
    )
    momentum_updates = OrderedDict()
    for param, gparam in zip(classifier.params, gparams):
        velocity = theano.shared(param.get_value() * 0., name='velocity_' + param.name)
        momentum_updates[velocity] = 0.9 * velocity - lr * gparam
        momentum_updates[param] = param + momentum_updates[velocity]
    train_momentum = theano.function(
        [index, lr],
        cost,
        updates=momentum_updates,
        givens={
            x: train_set_x[index * batch_size: (index + 1) * batch_size],
            y: train_set_y[index * batch_size: (index + 1) * batch_size],
        },
    )

    patience = 400
    patience_increase = 2
    improvement_threshold = 0.995
    validation_frequency = min(n_train_batches, patience // 2)
    best_validation_loss = numpy.inf
    best_params = None
    best_classifier = None
    first_costs, last_costs = [], []
    epoch = 0
    done_looping = False
    while (epoch < n_epochs) and (not done_looping):
        epoch = epoch + 1
        for minibatch_index in range(n_train_batches):
            if epoch % 2:
                minibatch_avg_cost = train_model(minibatch_index)
            else:
                minibatch_avg_cost = train_momentum(index=minibatch_index, lr=learning_rate / 4)
            (first_costs if epoch == 1 else last_costs).append(float(minibatch_avg_cost))
            iter = (epoch - 1) * n_train_batches + minibatch_index
            if (iter + 1) % validation_frequency == 0:
                validation_losses = [validate_model(i) for i in range(n_valid_batches)]
                this_validation_loss = numpy.mean(validation_losses)
                if this_validation_loss < best_validation_loss:
                    if this_validation_loss < best_validation_loss * improvement_threshold:
                        patience = max(patience, iter * patience_increase)
                    best_validation_loss = this_validation_loss
                    best_params = [param.get_value() for param in classifier.params]
                    best_classifier = copy.deepcopy(classifier)
            if patience <= iter:
                done_looping = True
                break
        if epoch == 1:
            last_costs = []

    for param, value in zip(classifier.params, best_params):
        param.set_value(value)
    test_losses = [test_model(i) for i in range(n_test_batches)]
    test_score = numpy.mean(test_losses)

    saved = io.BytesIO()
    pickle.dump(best_classifier, saved)
    loaded = pickle.load(io.BytesIO(saved.getvalue()))
    predict_model = theano.function(inputs=[loaded.input], outputs=loaded.y_pred)
    listing = io.StringIO()
    theano.printing.debugprint(predict_model, file=listing)
    predicted = predict_model(test_set_x.get_value())
    return {
        'test_score': test_score,
        'best_validation_loss': best_validation_loss,
        'first_cost': numpy.mean(first_costs),
        'last_cost': numpy.mean(last_costs),
        'predicted': predicted,
        'listing': listing.getvalue(),
        'epochs': epoch,
    }


class LeNetConvPoolLayer(object):
    def __init__(self, rng, input, filter_shape, image_shape, poolsize=(2, 2)):
        assert image_shape[1] == filter_shape[1]
        self.input = input
        fan_in = numpy.prod(filter_shape[1:])
        fan_out = (filter_shape[0] * numpy.prod(filter_shape[2:]) // numpy.prod(poolsize))
        W_bound = numpy.sqrt(6. / (fan_in + fan_out))
        self.W = theano.shared(
            numpy.asarray(rng.uniform(low=-W_bound, high=W_bound, size=filter_shape), dtype=theano.config.floatX),
            borrow=True,
        )
        b_values = numpy.zeros((filter_shape[0],), dtype=theano.config.floatX)
        self.b = theano.shared(value=b_values, borrow=True)
        conv_out = conv2d(input=input, filters=self.W, filter_shape=filter_shape, input_shape=image_shape)
        pooled_out = pool.pool_2d(input=conv_out, ws=poolsize, ignore_border=True)
        self.output = T.tanh(pooled_out + self.b.dimshuffle('x', 0, 'x', 'x'))
        self.params = [self.W, self.b]


def test_lenet(datasets, learning_rate=0.1, n_epochs=8, batch_size=20, nkerns=4):
    train_set_x, train_set_y = datasets[0]
    test_set_x, test_set_y = datasets[1]
    n_train_batches = train_set_x.get_value(borrow=True).shape[0] // batch_size
    n_test_batches = test_set_x.get_value(borrow=True).shape[0] // batch_size
    rng = numpy.random.RandomState(23455)
    index = T.lscalar()
    x = T.matrix('x')
    y = T.ivector('y')
    layer0_input = x.reshape((batch_size, 1, 8, 8))
    layer0 = LeNetConvPoolLayer(
        rng, input=layer0_input, image_shape=(batch_size, 1, 8, 8), filter_shape=(nkerns, 1, 3, 3), poolsize=(2, 2)
    )
    layer1 = LogisticRegression(input=layer0.output.flatten(2), n_in=nkerns * 3 * 3, n_out=2)
    cost = layer1.negative_log_likelihood(y)
    test_model = theano.function(
        [index],
        layer1.errors(y),
        givens={
            x: test_set_x[index * batch_size: (index + 1) * batch_size],
            y: test_set_y[index * batch_size: (index + 1) * batch_size],
        },
    )
    params = layer1.params + layer0.params
    grads = T.grad(cost, params)
    updates = [(param_i, param_i - learning_rate * grad_i) for param_i, grad_i in zip(params, grads)]
    train_model = theano.function(
        [index],
        cost,
        updates=updates,
        givens={
            x: train_set_x[index * batch_size: (index + 1) * batch_size],
            y: train_set_y[index * batch_size: (index + 1) * batch_size],
        },
    )
    for epoch in range(n_epochs):
        for minibatch_index in range(n_train_batches):
            train_model(minibatch_index)
    return numpy.mean([test_model(i) for i in range(n_test_batches)])
"""

#: Theano's spellings and symgraph's, applied in this order to the program's text: the README's
#: table (test_the_readme_lists_the_rename_table checks that they agree).
RENAMES = [
    (r"^import theano\.tensor as T\n", ""),
    (r"^from theano\.tensor\.nnet import conv2d\n", ""),
    (r"^from theano\.tensor\.signal import pool\n", ""),
    (r"^from theano\.tensor\.shared_randomstreams import RandomStreams\n", ""),
    (r"^from theano\.sandbox\.rng_mrg import MRG_RandomStreams\n", ""),
    (r"^from theano import tensor\n", ""),
    (r"^import theano\n", "import symgraph as sg\n"),
    (r"\btheano\.tensor\.shared_randomstreams\.RandomStreams\b", "sg.RandomStreams"),
    (r"\btheano\.sandbox\.rng_mrg\.MRG_RandomStreams\b", "sg.RandomStreams"),
    (r"(?<![.\w])T\.shared_randomstreams\.RandomStreams\b", "sg.RandomStreams"),
    (r"(?<![.\w])RandomStreams\(", "sg.RandomStreams("),
    (r"(?<![.\w])MRG_RandomStreams\(", "sg.RandomStreams("),
    (r"\btheano\.tensor\.signal\.pool\.", "sg.nn."),
    (r"(?<![.\w])pool\.pool_2d\(", "sg.nn.pool_2d("),
    (r"(?<![.\w])conv2d\(", "sg.nn.conv2d("),
    (r"(?<![.\w])T\.nnet\.", "sg.nn."),
    (r"(?<![.\w])tensor\.nnet\.", "sg.nn."),
    (r"\btheano\.tensor\.nnet\.", "sg.nn."),
    (r"\btheano\.gradient\.", "sg."),
    (r"\btheano\.scan_module\.", "sg."),
    (r"\btheano\.tensor\.", "sg."),
    (r"(?<![.\w])T\.", "sg."),
    (r"(?<![.\w])tensor\.", "sg."),
    (r"\btheano\.", "sg."),
]


def port(source: str) -> str:
    for pattern, replacement in RENAMES:
        source = re.sub(pattern, replacement, source, flags=re.M)
    return source


@pytest.fixture
def program(monkeypatch):
    """The ported program, as a module (pickle finds its classes by module name)."""
    ported = port(THEANO_PROGRAM)
    assert "theano." not in ported and not re.search(r"\bT\.", ported)
    module = types.ModuleType("ported_tutorial")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(ported, "<ported Theano tutorial>", "exec"), vars(module))
    return vars(module)


def blobs(rng, count, dimensions=10, classes=3):
    centres = rng.normal(scale=2.0, size=(classes, dimensions))
    labels = rng.integers(0, classes, size=count)
    return centres[labels] + rng.normal(size=(count, dimensions)), labels


def test_the_rename_table_is_mechanical():
    ported = port(
        "import theano\nimport theano.tensor as T\ny = T.nnet.sigmoid(T.dot(x, W))\nf = theano.function([x], y)\n"
    )
    assert ported == "import symgraph as sg\ny = sg.nn.sigmoid(sg.dot(x, W))\nf = sg.function([x], y)\n"
    assert port("z = theano.tensor.signal.pool.pool_2d(h, (2, 2))") == "z = sg.nn.pool_2d(h, (2, 2))"
    assert port("s = MRG_RandomStreams(1); t = RandomStreams(2)") == "s = sg.RandomStreams(1); t = sg.RandomStreams(2)"
    assert (
        port("c = theano.tensor.nnet.conv2d(x, w) + T.nnet.conv2d(x, w)")
        == "c = sg.nn.conv2d(x, w) + sg.nn.conv2d(x, w)"
    )
    assert port("X = OUT.shape; j = theano.gradient.jacobian(y, x)") == "X = OUT.shape; j = sg.jacobian(y, x)"


def _readme_section() -> str:
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")) as readme:
        return readme.read().split("## For Theano users", 1)[1].split("\n## ", 1)[0]


def _table(text: str, header: str) -> list[list[str]]:
    rows = text.split(header, 1)[1].strip().split("\n\n", 1)[0].splitlines()[1:]
    return [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in rows]


def test_the_readme_lists_the_rename_table():
    rows = _table(_readme_section(), "| Theano text | becomes |")
    assert len(rows) == len(RENAMES)
    for (theano, becomes), (pattern, replacement) in zip(rows, RENAMES):
        text, expected = theano.strip("`"), becomes.strip("`")
        if becomes == "(the line goes)":
            assert port(text + "\n") == "" and replacement == ""
        else:  # (a whole line when the rule asks for one)
            ported = port(text + "\n")[:-1] if pattern.endswith("\\n") else port(text)
            assert ported == expected, (text, ported)


def test_the_names_the_readme_calls_the_same_exist():
    rows = _table(_readme_section(), "| Theano | symgraph |")
    checked = 0
    for theano, symgraph in rows:
        if not symgraph.startswith(("the same names", "`sg.nn.` and the same names")):
            continue
        for dotted in re.findall(r"`(?:T\.)?(?:nnet\.)?([a-z_0-9]+)[(`]", theano):
            module = sg.nn if "nnet" in theano or symgraph.startswith("`sg.nn.`") else sg
            assert hasattr(module, dotted), dotted
            checked += 1
    assert checked >= 50


def test_a_ported_mlp_tutorial_learns(program):
    rng = np.random.default_rng(0)
    data, labels = blobs(rng, 900)
    splits = [(data[:600], labels[:600]), (data[600:750], labels[600:750]), (data[750:], labels[750:])]
    datasets = [program["shared_dataset"](split) for split in splits]
    result = program["test_mlp"](datasets, corruption=0.05)  # the hidden layer drops 5% of its inputs
    print({key: value for key, value in result.items() if key not in ("predicted", "listing")})
    assert result["test_score"] < 0.05, result["test_score"]  # the error rate on unseen data
    assert result["last_cost"] < result["first_cost"] / 3
    # The pickled best model predicts as the best parameters restored with set_value do.
    assert (result["predicted"] != labels[750:]).mean() <= result["best_validation_loss"] + 0.05
    assert "argmax" in result["listing"]


def test_a_ported_lenet_tutorial_learns(program):
    rng = np.random.default_rng(1)
    count = 400
    images = rng.normal(scale=0.3, size=(count, 8, 8))
    labels = rng.integers(0, 2, size=count)
    where = rng.integers(1, 7, size=count)
    for image, label, position in zip(images, labels, where):
        if label:
            image[position, :] += 1.0  # a horizontal bar
        else:
            image[:, position] += 1.0  # a vertical bar
    flat = images.reshape(count, 64)
    datasets = [
        program["shared_dataset"]((flat[:300], labels[:300])),
        program["shared_dataset"]((flat[300:], labels[300:])),
    ]
    error = program["test_lenet"](datasets)
    print("lenet test error", error)
    assert error < 0.1


def test_a_theano_program_that_relied_on_comparisons_being_true_fails_loudly():
    source = port("import theano.tensor as T\ndef f(x):\n    if x > 0:\n        return x\n    return -x\n")
    namespace = {}
    exec(source, namespace)
    with pytest.raises(TypeError, match=r"sg\.switch"):
        namespace["f"](sg.scalar("x"))


def test_a_ported_while_loop_stops_where_theanos_did():
    program = port(
        "import theano\n"
        "import theano.tensor as T\n"
        "def doubled(previous, limit):\n"
        "    return previous * 2, theano.scan_module.until(previous * 2 > limit)\n"
        "limit = T.scalar()\n"
        "powers, _ = theano.scan(doubled, outputs_info=T.constant(1.0), non_sequences=limit, n_steps=1024)\n"
        "f = theano.function([limit], powers)\n"
    )
    namespace: dict = {}
    exec(compile(program, "ported.py", "exec"), namespace)
    np.testing.assert_array_equal(namespace["f"](45.0), [2.0, 4.0, 8.0, 16.0, 32.0, 64.0])


def test_a_ported_sampling_loop_with_tensor_random_streams_draws_at_every_step():
    program = port(
        "import numpy\n"
        "import theano\n"
        "import theano.tensor as T\n"
        "rng = T.shared_randomstreams.RandomStreams(7)\n"
        "W = theano.shared(numpy.full((3, 3), 0.2))\n"
        "def flip(state):\n"
        "    odds = T.nnet.sigmoid(T.dot(state, W))\n"
        "    return rng.binomial(size=state.shape, n=1, p=odds, dtype='float64')\n"
        "start = T.vector()\n"
        "chain, updates = theano.scan(flip, outputs_info=start, n_steps=50)\n"
        "walk = theano.function([start], chain, updates=updates)\n"
    )
    namespace: dict = {}
    exec(compile(program, "ported.py", "exec"), namespace)
    first, second = namespace["walk"](np.ones(3)), namespace["walk"](np.ones(3))
    assert first.shape == (50, 3) and set(np.unique(first)) == {0.0, 1.0}
    assert not np.array_equal(first, second)  # the generator advanced between the calls


def test_a_ported_program_in_the_from_theano_import_tensor_style_runs():
    # The other common spelling (the IMDB LSTM tutorial's): `tensor.` for theano.tensor, here a
    # masked recurrent layer over embedded word ids and its gradients.
    program = port(
        "import numpy\n"
        "import theano\n"
        "from theano import tensor\n"
        "ids = tensor.matrix('ids', dtype='int64')\n"
        "mask = tensor.matrix('mask')\n"
        "table = theano.shared(numpy.random.RandomState(0).randn(9, 4), name='table')\n"
        "U = theano.shared(numpy.eye(4) * 0.5, name='U')\n"
        "words = table[ids.flatten()].reshape([ids.shape[0], ids.shape[1], 4])\n"
        "def step(m, x, h):\n"
        "    new = tensor.nnet.sigmoid(tensor.dot(h, U) + x)\n"
        "    return m[:, None] * new + (1.0 - m)[:, None] * h\n"
        "start = tensor.alloc(numpy.float64(0.0), ids.shape[1], 4)\n"
        "states, _ = theano.scan(step, sequences=[mask, words], outputs_info=start)\n"
        "cost = (states[-1] ** 2).sum()\n"
        "f = theano.function([ids, mask], [cost] + tensor.grad(cost, [U, table]))\n"
    )
    assert "tensor." not in program and "from theano" not in program  # every spelling renamed
    namespace: dict = {}
    exec(compile(program, "ported.py", "exec"), namespace)
    mask = np.ones((5, 3))
    mask[3:, 0] = 0.0  # the first sequence ends after 3 words: its state is held
    cost, dU, dtable = namespace["f"](np.random.default_rng(1).integers(0, 9, size=(5, 3)), mask)
    assert np.isfinite(cost) and dU.shape == (4, 4) and dtable.shape == (9, 4) and np.abs(dtable).sum() > 0
