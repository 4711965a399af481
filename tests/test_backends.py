"""The backends agree: seeded random graphs built from every kind of op, computed by the numpy
backend (generated code, in-place work) and by the python backend (each node's ``perform``),
give the same values, the same gradients and the same updates."""

from __future__ import annotations

import numpy as np
import pytest

import symgraph as sg

ROWS, COLUMNS = 3, 4


def _positive(h):
    return sg.abs(h) + 0.5


# Each block maps a (ROWS, COLUMNS) float64 matrix ``h`` (and the model's other variables) to
# another of the same shape, through one or a few ops.
BLOCKS = {
    "exp": lambda h, m: sg.exp(sg.clip(h, -3.0, 3.0)),
    "log": lambda h, m: sg.log(_positive(h)),
    "log1p": lambda h, m: sg.log1p(sg.abs(h)),
    "expm1": lambda h, m: sg.expm1(sg.tanh(h)),
    "sqrt": lambda h, m: sg.sqrt(_positive(h)),
    "square": lambda h, m: sg.square(h) * 0.5,
    "sin_cos": lambda h, m: sg.sin(h) + sg.cos(h),
    "tanh": lambda h, m: sg.tanh(h),
    "sigmoid": lambda h, m: sg.nn.sigmoid(h),
    "softplus": lambda h, m: sg.nn.softplus(h),
    "relu": lambda h, m: sg.nn.relu(h) + h * 0.1,
    "abs_sign": lambda h, m: sg.abs(h) * sg.sign(h + 0.25),
    "neg": lambda h, m: -h,
    "add_row": lambda h, m: h + m["row"],
    "sub_column": lambda h, m: h - m["column"].dimshuffle(0, "x"),
    "mul": lambda h, m: h * m["x"],
    "div": lambda h, m: h / _positive(m["x"]),
    "pow": lambda h, m: _positive(h) ** 1.5,
    "maximum": lambda h, m: sg.maximum(h, m["x"]),
    "minimum": lambda h, m: sg.minimum(h, 0.3),
    "where": lambda h, m: sg.where(sg.gt(h, m["x"]), h, m["x"] * 2),
    "clip": lambda h, m: sg.clip(h, -0.5, 0.5) + h * 0.1,
    "mod_floor": lambda h, m: h + sg.floor(h) * 0 + (h % 2.0) * 0.1,
    "matmul": lambda h, m: h @ m["square"],
    "dot_vector": lambda h, m: h + sg.dot(h, m["row"]).dimshuffle(0, "x"),
    "outer": lambda h, m: h + sg.outer(m["column"], m["row"]),
    "tensordot": lambda h, m: sg.tensordot(h, m["square"], axes=([1], [0])),
    "sum": lambda h, m: h - h.sum(axis=1, keepdims=True) / COLUMNS,
    "mean": lambda h, m: h - h.mean(axis=0),
    "max": lambda h, m: h - h.max(axis=1, keepdims=True),
    "min": lambda h, m: h + h.min(axis=0),
    "prod": lambda h, m: h * sg.tanh(h).prod(axis=1, keepdims=True),
    "var_std": lambda h, m: h / (h.std(axis=1, keepdims=True) + 1.0) + h.var(axis=0) * 0.1,
    "transpose": lambda h, m: (h.T @ m["tall"]).T * 0.5 + h,
    "reshape": lambda h, m: h.reshape((COLUMNS, ROWS)).reshape((ROWS, COLUMNS)) * 2,
    "flatten": lambda h, m: h.flatten().reshape((ROWS, COLUMNS)) + 1,
    "subtensor": lambda h, m: h * h[0] + h[:, 1:2],
    "advanced_subtensor": lambda h, m: h + h[sg.constant(np.array([2, 0, 1])), :],
    "set_subtensor": lambda h, m: sg.set_subtensor(h[1], m["row"]),
    "inc_subtensor": lambda h, m: sg.inc_subtensor(h[:, sg.constant(np.array([0, 0, 3]))], 1.5 * h[:, :3]),
    "concatenate": lambda h, m: sg.concatenate([h[:, :2], h[:, 2:] * 3], axis=1),
    "stack": lambda h, m: sg.stack([h, m["x"]]).sum(axis=0),
    "softmax": lambda h, m: sg.nn.softmax(h) * 4,
    "log_softmax": lambda h, m: sg.nn.log_softmax(h, axis=0),
    "cast": lambda h, m: sg.cast(sg.cast(h, "float32"), "float64") + h * 0.01,
    "broadcast_zeros": lambda h, m: h + sg.zeros_like(h) + sg.ones((ROWS, COLUMNS)),
    "dropout": lambda h, m: sg.nn.dropout(h, keep_prob=0.7, rng=m["stream"]),
    "batch_norm": lambda h, m: sg.nn.batch_norm(h, m["gamma"], m["beta"], m["running_mean"], m["running_var"]),
    "crossentropy": lambda h, m: h + sg.nn.categorical_crossentropy(sg.nn.softmax(h), m["labels"]).dimshuffle(0, "x"),
    "conv_pool": lambda h, m: h + _conv_pool(h, m),
    "conv_relu_tiled_pool": lambda h, m: h * 0.5 + _conv_relu_tiled_pool(h, m),
    "op_from_graph": lambda h, m: m["subgraph"](h, m["x"]),
}


def _conv_pool(h, m):
    images = h.reshape((1, 1, ROWS, COLUMNS))
    convolved = sg.nn.conv2d(images, m["filters"], padding="same")
    pooled = (
        sg.nn.max_pool2d(convolved, 1) + sg.nn.avg_pool2d(convolved, (1, 2), stride=1, padding=(0, 1))[..., :COLUMNS]
    )
    return pooled.reshape((ROWS, COLUMNS))


def _conv_relu_tiled_pool(h, m):
    # The numpy backend's kernels store images batch innermost, pool tiling windows on their own,
    # and the ReLU's gradient mask moves before the pooling's (rewrite/fusion.py).
    images = sg.concatenate([h, h * 2.0], axis=0).reshape((2, 1, ROWS, COLUMNS))
    activated = sg.nn.relu(sg.nn.conv2d(images, m["filters"], padding="same") + m["row"][0])
    pooled = sg.nn.max_pool2d(activated, (1, 2))  # windows that tile the (3, 4) images
    return sg.concatenate([pooled, pooled], axis=3)[0].reshape((ROWS, COLUMNS))


def _model(seed: int, blocks: list[str]):
    rng = np.random.default_rng(seed)
    x = sg.matrix("x", shape=(ROWS, COLUMNS))
    a, b = sg.matrix("a"), sg.matrix("b")
    variables = {
        "x": x,
        "row": sg.shared(rng.normal(size=COLUMNS), name="row"),
        "column": sg.vector("column"),
        "square": sg.shared(rng.normal(size=(COLUMNS, COLUMNS)) * 0.5, name="square"),
        "tall": sg.shared(rng.normal(size=(ROWS, ROWS)) * 0.5, name="tall"),
        "gamma": sg.shared(rng.uniform(0.5, 1.5, size=COLUMNS), name="gamma"),
        "beta": sg.shared(rng.normal(size=COLUMNS), name="beta"),
        "running_mean": sg.shared(np.zeros(COLUMNS), name="running_mean"),
        "running_var": sg.shared(np.ones(COLUMNS), name="running_var"),
        "labels": sg.lvector("labels"),
        "filters": sg.shared(rng.normal(size=(1, 1, 3, 2)) * 0.5, name="filters"),
        "stream": sg.RandomStreams(seed),
        "subgraph": sg.OpFromGraph([a, b], [sg.tanh(a) * b + a], name="subgraph"),
    }
    h = x
    for name in blocks:
        h = BLOCKS[name](h, variables)
    cost = (h * h).sum() * 0.1
    parameters = [variables[name] for name in ("row", "square", "gamma", "beta", "filters")]
    inputs = [x, variables["column"], variables["labels"]]
    values = [rng.normal(size=(ROWS, COLUMNS)), rng.normal(size=ROWS), rng.integers(0, COLUMNS, size=ROWS)]
    return inputs, values, cost, parameters, variables


def _run(seed: int, blocks: list[str], backend: str, phase: str):
    inputs, values, cost, parameters, variables = _model(seed, blocks)
    gradients = sg.grad(cost, [inputs[0], inputs[1]] + parameters, disconnected_inputs="ignore")
    f = sg.function(inputs, [cost, *gradients], phase=phase, backend=backend, on_unused_input="ignore")
    results = [f(*values) for _ in range(2)]  # twice: random state and statistics move on
    state = [variables[name].get_value() for name in ("running_mean", "running_var")]
    return results, state


SEEDS = range(12)


def _blocks(seed: int) -> list[str]:
    rng = np.random.default_rng(1000 + seed)
    names = sorted(BLOCKS)
    # Every block appears in some graph: the seeds cover the list in turn, plus random ones.
    start = (seed * 5) % len(names)
    chosen = names[start : start + 5] + list(rng.choice(names, size=3))
    rng.shuffle(chosen)
    return chosen


def test_the_seeds_cover_every_block():
    assert set().union(*(_blocks(seed) for seed in SEEDS)) == set(BLOCKS)


@pytest.mark.parametrize("phase", ["train", "predict"])
@pytest.mark.parametrize("seed", SEEDS)
def test_numpy_and_python_backends_agree(seed, phase):
    blocks = _blocks(seed)
    fast, fast_state = _run(seed, blocks, "numpy", phase)
    reference, reference_state = _run(seed, blocks, "python", phase)
    for call_fast, call_reference in zip(fast, reference):
        for value, expected in zip(call_fast, call_reference):
            np.testing.assert_allclose(value, expected, rtol=1e-9, atol=1e-12, err_msg=str(blocks))
    for value, expected in zip(fast_state, reference_state):
        np.testing.assert_allclose(value, expected, rtol=1e-9, atol=1e-12, err_msg=str(blocks))
