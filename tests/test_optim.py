"""sg.optim: the first and second steps of sgd, momentum (plain and Nesterov) and adam against their
formulas (PyTorch's forms), learning rates as shared variables, the state's dtype and shape, and a
logistic regression trained to high accuracy by each optimizer."""

import numpy as np
import pytest

import symgraph as sg


class Quadratic:
    """cost = sum(A * W**2) / 2 + sum(c * b): gradients A * W and c, known in closed form."""

    def __init__(self, dtype="float64", seed=0):
        rng = np.random.default_rng(seed)
        self.A = rng.uniform(0.5, 2.0, (3, 2)).astype(dtype)
        self.c = rng.standard_normal(2).astype(dtype)
        self.W0 = rng.standard_normal((3, 2)).astype(dtype)
        self.b0 = rng.standard_normal(2).astype(dtype)
        self.W = sg.shared(self.W0, name="W")
        self.b = sg.shared(self.b0, name="b")
        self.cost = (sg.constant(self.A) * self.W * self.W).sum() / 2 + (sg.constant(self.c) * self.b).sum()

    def gradients(self, W, b):
        return [self.A * W, self.c]

    def train(self, updates):
        return sg.function([], self.cost, updates=updates)

    def values(self):
        return [self.W.get_value(), self.b.get_value()]


def sgd_reference(params, gradient, lr, steps):
    params = [p.copy() for p in params]
    for _ in range(steps):
        params = [p - lr * g for p, g in zip(params, gradient(*params))]
    return params


def momentum_reference(params, gradient, lr, beta, nesterov, steps):
    params = [p.copy() for p in params]
    velocities = [np.zeros_like(p) for p in params]
    for _ in range(steps):
        gradients = gradient(*params)
        velocities = [beta * v + g for v, g in zip(velocities, gradients)]
        steps_taken = [g + beta * v for g, v in zip(gradients, velocities)] if nesterov else velocities
        params = [p - lr * s for p, s in zip(params, steps_taken)]
    return params


def adam_reference(params, gradient, lr, beta1, beta2, eps, steps):
    """PyTorch's torch.optim.Adam (no weight decay, no amsgrad)."""
    params = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t in range(1, steps + 1):
        gradients = gradient(*params)
        m = [beta1 * a + (1 - beta1) * g for a, g in zip(m, gradients)]
        v = [beta2 * a + (1 - beta2) * g * g for a, g in zip(v, gradients)]
        step_size = lr / (1 - beta1**t)
        root = np.sqrt(1 - beta2**t)
        params = [p - step_size * a / (np.sqrt(b) / root + eps) for p, a, b in zip(params, m, v)]
    return params


def check_steps(problem, updates, reference, steps=(1, 2, 3)):
    train = problem.train(updates)
    done = 0
    for count in steps:
        while done < count:
            train()
            done += 1
        for got, expected in zip(problem.values(), reference(count)):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


# --- each step against its formula -------------------------------------------------------------
def test_sgd_steps():
    problem = Quadratic()
    initial = [problem.W0, problem.b0]
    check_steps(
        problem,
        sg.optim.sgd(problem.cost, [problem.W, problem.b], lr=0.1),
        lambda n: sgd_reference(initial, problem.gradients, 0.1, n),
    )


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_steps(nesterov):
    problem = Quadratic(seed=1)
    initial = [problem.W0, problem.b0]
    updates = sg.optim.momentum(problem.cost, [problem.W, problem.b], lr=0.05, beta=0.8, nesterov=nesterov)
    check_steps(problem, updates, lambda n: momentum_reference(initial, problem.gradients, 0.05, 0.8, nesterov, n))


def test_momentum_first_step_is_plain_sgd_then_accelerates():
    problem = Quadratic(seed=2)
    train = problem.train(sg.optim.momentum(problem.cost, [problem.b], lr=0.1, beta=0.9))
    train()
    np.testing.assert_allclose(problem.b.get_value(), problem.b0 - 0.1 * problem.c, rtol=1e-12)
    train()  # velocity c + 0.9 c
    np.testing.assert_allclose(problem.b.get_value(), problem.b0 - 0.1 * problem.c - 0.1 * 1.9 * problem.c, rtol=1e-12)


@pytest.mark.parametrize(("lr", "beta1", "beta2", "eps"), [(1e-3, 0.9, 0.999, 1e-8), (0.05, 0.8, 0.99, 1e-3)])
def test_adam_steps(lr, beta1, beta2, eps):
    problem = Quadratic(seed=3)
    initial = [problem.W0, problem.b0]
    updates = sg.optim.adam(problem.cost, [problem.W, problem.b], lr=lr, beta1=beta1, beta2=beta2, eps=eps)
    check_steps(problem, updates, lambda n: adam_reference(initial, problem.gradients, lr, beta1, beta2, eps, n))


def test_adam_first_step_moves_each_weight_by_about_lr():
    # bias correction: the first step is lr * g / (|g| + eps'), about lr in every coordinate
    problem = Quadratic(seed=4)
    problem.train(sg.optim.adam(problem.cost, [problem.W, problem.b], lr=0.01))()
    np.testing.assert_allclose(np.abs(problem.W.get_value() - problem.W0), 0.01, rtol=1e-5)


# --- learning rates, state, dtypes -------------------------------------------------------------
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_shared_learning_rate_changes_the_step(optimizer):
    problem = Quadratic(seed=5)
    lr = sg.shared(0.1, name="lr")
    updates = getattr(sg.optim, optimizer)(problem.cost, [problem.b], lr=lr)
    train = problem.train(updates)
    lr.set_value(0.0)
    train()
    np.testing.assert_array_equal(problem.b.get_value(), problem.b0)
    lr.set_value(0.1)
    train()
    assert not np.allclose(problem.b.get_value(), problem.b0)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_float32_parameters_stay_float32(optimizer):
    problem = Quadratic(dtype="float32", seed=6)
    lr = sg.shared(np.float64(0.01))  # a float64 learning rate on float32 weights is fine
    updates = getattr(sg.optim, optimizer)(problem.cost, [problem.W, problem.b], lr=lr)
    for shared, value in updates:
        if shared is problem.W or shared is problem.b:
            assert value.dtype == "float32"
        elif shared.ndim > 0:  # optimizer state: the parameter's dtype and shape
            assert shared.dtype == "float32"
            assert shared.get_value().shape in {(3, 2), (2,)}
            assert not shared.get_value().any()
    problem.train(updates)()
    assert problem.W.get_value().dtype == np.float32


def test_adam_shares_one_step_counter():
    problem = Quadratic(seed=7)
    updates = sg.optim.adam(problem.cost, [problem.W, problem.b])
    counters = [shared for shared, _ in updates if shared.ndim == 0]
    assert len(counters) == 1
    train = problem.train(updates)
    train()
    train()
    assert int(counters[0].get_value()) == 2


def test_parameters_must_be_shared_variables():
    x = sg.vector("x")
    with pytest.raises(TypeError, match="shared variables"):
        sg.optim.sgd((x * x).sum(), [x], lr=0.1)


# --- training a model --------------------------------------------------------------------------
def separable_data(seed=0, n=400, features=5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, features))
    direction = rng.standard_normal(features)
    margin = X @ direction
    keep = np.abs(margin) > 0.3  # a gap between the classes
    return X[keep], (margin[keep] > 0).astype(np.float64)


@pytest.mark.parametrize(
    ("optimizer", "arguments"),
    [
        ("sgd", {"lr": 0.5}),
        ("momentum", {"lr": 0.1}),
        ("momentum", {"lr": 0.1, "nesterov": True}),
        ("adam", {"lr": 0.05}),
    ],
)
def test_logistic_regression_reaches_high_accuracy(optimizer, arguments):
    X, y = separable_data()
    x, t = sg.matrix("x"), sg.vector("t")
    W = sg.shared(np.zeros(X.shape[1]), name="W")
    b = sg.shared(0.0, name="b")
    probability = sg.nn.sigmoid(x @ W + b)
    loss = sg.nn.binary_crossentropy(probability, t).mean()
    train = sg.function([x, t], loss, updates=getattr(sg.optim, optimizer)(loss, [W, b], **arguments))
    first = train(X, y)
    for _ in range(200):
        last = train(X, y)
    accuracy = ((sg.function([x], probability)(X) > 0.5) == (y > 0.5)).mean()
    assert last < first
    assert accuracy > 0.95
