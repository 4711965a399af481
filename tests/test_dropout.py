"""sg.nn.dropout: the mask's rate and values, both scales in both phases, the gradient through the
very mask of the forward pass, noise shapes, symbolic keep probabilities, and argument errors."""

import inspect
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import symgraph as sg

MODES = ["fast_run", "fast_compile", "debug"]


def positive(shape, seed=0, dtype=np.float64):
    """Data with no zero, so that a zero in the output can only come from the mask."""
    return np.random.default_rng(seed).uniform(1.0, 2.0, size=shape).astype(dtype)


def train_and_predict(output, inputs):
    return sg.function(inputs, output, phase="train"), sg.function(inputs, output, phase="predict")


def binomial_bound(p, n, sigmas=5.0):
    return sigmas * np.sqrt(p * (1 - p) / n)


# --- the train phase ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("arguments", "keep"), [({"keep_prob": 0.5}, 0.5), ({"keep_prob": 0.8}, 0.8), ({"rate": 0.7}, 0.3)]
)
def test_mask_rate_within_binomial_bound(arguments, keep):
    x = sg.vector("x")
    f = sg.function([x], sg.nn.dropout(x, rng=sg.RandomStreams(1), **arguments), phase="train")
    n = 200_000
    kept = f(positive(n)) != 0
    assert abs(kept.mean() - keep) < binomial_bound(keep, n)


@pytest.mark.parametrize("keep", [0.5, 0.8, 0.3])
def test_inverted_train_values_are_zero_or_x_over_keep(keep):
    x = sg.matrix("x")
    f = sg.function([x], sg.nn.dropout(x, keep_prob=keep, rng=sg.RandomStreams(2)), phase="train")
    data = positive((200, 30))
    out = f(data)
    kept = out != 0
    assert 0 < kept.sum() < kept.size
    np.testing.assert_allclose(out[kept], data[kept] / keep, rtol=1e-15, atol=0)


def test_classic_train_values_are_zero_or_x():
    x = sg.matrix("x")
    f = sg.function([x], sg.nn.dropout(x, keep_prob=0.7, scale="classic", rng=sg.RandomStreams(3)), phase="train")
    data = positive((200, 30))
    out = f(data)
    kept = out != 0
    assert 0 < kept.sum() < kept.size
    np.testing.assert_array_equal(out[kept], data[kept])


def test_successive_train_calls_draw_different_masks():
    x = sg.vector("x")
    f = sg.function([x], sg.nn.dropout(x, rate=0.5), phase="train")
    data = positive(1000)
    masks = [f(data) != 0 for _ in range(3)]
    assert not np.array_equal(masks[0], masks[1])
    assert not np.array_equal(masks[1], masks[2])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mask_and_output_keep_the_activation_dtype(dtype):
    x = sg.matrix("x", dtype=dtype)
    y = sg.nn.dropout(x, keep_prob=0.75)
    train, predict = train_and_predict(y, [x])
    data = positive((8, 16), dtype=dtype)
    out = train(data)
    assert out.dtype == dtype and predict(data).dtype == dtype
    kept = out != 0
    np.testing.assert_array_equal(out[kept], (data * np.asarray(1 / 0.75, dtype=dtype))[kept])
    mask_nodes = [node for node in train.graph.nodes if node.op.stochastic]
    assert [node.outputs[-1].dtype for node in mask_nodes] == [dtype]


@pytest.mark.parametrize("mode", MODES)
def test_seed_repeats_masks_bit_for_bit(mode):
    srng = sg.RandomStreams(4)
    x = sg.matrix("x")
    y = sg.nn.dropout(sg.nn.dropout(x, keep_prob=0.6, rng=srng) + 1, rate=0.3, rng=srng, scale="classic")
    f = sg.function([x], y, phase="train", mode=mode)
    data = positive((20, 10))
    srng.seed(42)
    first = [f(data) for _ in range(3)]
    srng.seed(42)
    for expected in first:
        np.testing.assert_array_equal(f(data), expected)


def test_masks_do_not_depend_on_mode():
    srng = sg.RandomStreams(4)
    x = sg.matrix("x")
    y = sg.nn.dropout(x, keep_prob=0.6, rng=srng)
    data = positive((20, 10))
    results = []
    for mode in MODES:
        f = sg.function([x], y, phase="train", mode=mode)
        srng.seed(5)
        results.append((f(data), f(data)))
    for other in results[1:]:
        np.testing.assert_array_equal(other[0], results[0][0])
        np.testing.assert_array_equal(other[1], results[0][1])


def test_two_functions_share_one_stream():
    srng = sg.RandomStreams(6)
    x = sg.vector("x")
    y = sg.nn.dropout(x, keep_prob=0.5, rng=srng)
    forward = sg.function([x], y, phase="train")
    with_grad = sg.function([x], [y, sg.grad(y.sum(), x)], phase="train")
    data = positive(500)
    srng.seed(1)
    expected = [forward(data) for _ in range(4)]
    srng.seed(1)
    interleaved = [forward(data), with_grad(data)[0], forward(data), with_grad(data)[0]]
    for a, b in zip(expected, interleaved):
        np.testing.assert_array_equal(a, b)


def test_two_dropouts_of_one_input_draw_two_masks():
    x = sg.vector("x")
    a = sg.nn.dropout(x, keep_prob=0.5)
    b = sg.nn.dropout(x, keep_prob=0.5)
    f = sg.function([x], [a, b], phase="train")
    out_a, out_b = f(positive(200))
    assert not np.array_equal(out_a != 0, out_b != 0)


def test_a_dropout_never_equals_one_made_before_at_the_same_address():
    # CPython gives a new object the address of one just freed: a key made of the address would
    # make a new dropout equal to a gone one, say one saved or pickled in another process.
    from symgraph.nn.dropout import DropoutMask

    keys = {DropoutMask("inverted", "float64").key for _ in range(100)}
    assert len(keys) == 100
    original = DropoutMask("inverted", "float64")
    assert pickle.loads(pickle.dumps(original)) == original  # a copy is the same mask


# --- the predict phase ----------------------------------------------------------------------------
def test_inverted_predict_is_x_exactly_and_classic_is_x_times_keep():
    x = sg.matrix("x")
    data = positive((5, 7))
    inverted = sg.function([x], sg.nn.dropout(x, keep_prob=0.3), phase="predict")
    classic = sg.function([x], sg.nn.dropout(x, keep_prob=0.3, scale="classic"), phase="predict")
    by_rate = sg.function([x], sg.nn.dropout(x, rate=0.25, scale="classic"), phase="predict")
    np.testing.assert_array_equal(inverted(data), data)
    np.testing.assert_array_equal(classic(data), data * 0.3)
    np.testing.assert_array_equal(by_rate(data), data * 0.75)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scale", ["inverted", "classic"])
def test_predict_graph_holds_no_random_node_and_repeats(mode, scale):
    x = sg.matrix("x")
    srng = sg.RandomStreams(0)
    y = sg.nn.relu(sg.nn.dropout(x, keep_prob=0.5, rng=srng, scale=scale)).sum(axis=1)
    predict = sg.function([x], y, phase="predict", mode=mode)
    train = sg.function([x], y, phase="train", mode=mode)
    for node in predict.graph.nodes:
        assert not node.op.stochastic
        assert "dropout" not in node.op.name and "bernoulli" not in node.op.name
    assert any(node.op.stochastic for node in train.graph.nodes)
    assert not predict.updates
    state = srng.state_variables[0]
    before = state.get_value().bit_generator.state
    data = positive((4, 6))
    np.testing.assert_array_equal(predict(data), predict(data))
    assert state.get_value().bit_generator.state == before


@pytest.mark.parametrize("scale", ["inverted", "classic"])
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_mean_of_train_outputs_approaches_predict(scale, keep):
    """Over n calls the mean of each element is within 5 standard errors of the prediction; the
    variance of one train output is x**2 (1-p)/p (inverted) or x**2 p (1-p) (classic)."""
    x = sg.vector("x")
    y = sg.nn.dropout(x, keep_prob=keep, scale=scale, rng=sg.RandomStreams(7))
    train, predict = train_and_predict(y, [x])
    data = positive(50)
    calls = 2000
    mean = np.mean([train(data) for _ in range(calls)], axis=0)
    variance = data**2 * ((1 - keep) / keep if scale == "inverted" else keep * (1 - keep))
    np.testing.assert_array_less(np.abs(mean - predict(data)), 5 * np.sqrt(variance / calls))


# --- the gradient ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_gradient_uses_the_forward_mask(mode):
    x = sg.matrix("x")
    keep = 0.6
    y = sg.nn.dropout(x, keep_prob=keep)
    f = sg.function([x], [y, sg.grad(y.sum(), x)], phase="train", mode=mode)
    data = positive((50, 40))
    for _ in range(3):
        out, gradient = f(data)
        mask = (out != 0) / keep
        np.testing.assert_allclose(gradient, mask, rtol=1e-15, atol=0)


def test_classic_gradient_is_the_zero_one_mask():
    x = sg.vector("x")
    y = sg.nn.dropout(x, keep_prob=0.4, scale="classic")
    out, gradient = sg.function([x], [y, sg.grad((y * 3).sum(), x)], phase="train")(positive(300))
    np.testing.assert_array_equal(gradient, 3.0 * (out != 0))


@pytest.mark.parametrize("scale", ["inverted", "classic"])
def test_predict_gradient(scale):
    x = sg.vector("x")
    y = sg.nn.dropout(x, keep_prob=0.4, scale=scale)
    gradient = sg.function([x], sg.grad(y.sum(), x), phase="predict")(positive(5))
    np.testing.assert_array_equal(gradient, np.full(5, 1.0 if scale == "inverted" else 0.4))


@pytest.mark.parametrize("scale", ["inverted", "classic"])
def test_verify_grad_through_dropout_in_train_phase(scale):
    point = [np.random.default_rng(0).standard_normal((4, 5))]
    sg.verify_grad(
        lambda x: sg.tanh(sg.nn.dropout(x * 1.5, keep_prob=0.6, scale=scale)) ** 2,
        point,
        phase="train",
        rng=0,
    )


# --- keep_prob 0 and 1 ---------------------------------------------------------------------------
@pytest.mark.parametrize("scale", ["inverted", "classic"])
@pytest.mark.parametrize("symbolic", [False, True])
def test_keep_prob_zero_gives_zeros_and_zero_gradients_without_nan(scale, symbolic):
    x = sg.vector("x")
    keep = sg.shared(0.0, name="keep") if symbolic else 0.0
    y = sg.nn.dropout(x, keep_prob=keep, scale=scale)
    data = positive(20)
    for phase in ("train", "predict"):
        out, gradient = sg.function([x], [y, sg.grad(y.sum(), x)], phase=phase)(data)
        np.testing.assert_array_equal(out, np.zeros(20))
        np.testing.assert_array_equal(gradient, np.zeros(20))


@pytest.mark.parametrize("scale", ["inverted", "classic"])
@pytest.mark.parametrize("arguments", [{"keep_prob": 1.0}, {"rate": 0.0}, {"keep_prob": 1}])
def test_keep_prob_one_is_the_identity(scale, arguments):
    x = sg.vector("x")
    y = sg.nn.dropout(x, scale=scale, **arguments)
    data = positive(30)
    for phase in ("train", "predict"):
        out, gradient = sg.function([x], [y, sg.grad(y.sum(), x)], phase=phase)(data)
        np.testing.assert_array_equal(out, data)
        np.testing.assert_array_equal(gradient, np.ones(30))


# --- noise_shape -------------------------------------------------------------------------------
def test_noise_shape_drops_whole_feature_maps():
    x = sg.tensor4("x")
    keep = 0.5
    y = sg.nn.dropout(x, keep_prob=keep, noise_shape=(None, None, 1, 1), rng=sg.RandomStreams(8))
    f = sg.function([x], y, phase="train")
    data = positive((64, 32, 3, 4))
    out = f(data)
    dropped = (out == 0).all(axis=(2, 3))
    kept = (out != 0).all(axis=(2, 3))
    np.testing.assert_array_equal(dropped | kept, np.ones((64, 32), dtype=bool))  # whole maps only
    np.testing.assert_allclose(out[kept], data[kept] / keep, rtol=1e-15)
    assert abs(kept.mean() - keep) < binomial_bound(keep, kept.size)


def test_noise_shape_with_symbolic_lengths():
    x = sg.tensor4("x")
    y = sg.nn.dropout(x, keep_prob=0.5, noise_shape=(x.shape[0], x.shape[1], 1, 1))
    out = sg.function([x], y, phase="train")(positive((8, 6, 2, 2)))
    per_map = (out != 0).reshape(8, 6, 4)
    assert np.all(per_map.all(axis=2) | ~per_map.any(axis=2))


def test_noise_shape_shares_the_mask_along_an_axis_and_the_gradient_too():
    x = sg.matrix("x")
    y = sg.nn.dropout(x, keep_prob=0.5, noise_shape=(1, None))
    out, gradient = sg.function([x], [y, sg.grad(y.sum(), x)], phase="train")(positive((10, 40)))
    columns_kept = out[0] != 0
    np.testing.assert_array_equal(out != 0, np.broadcast_to(columns_kept, (10, 40)))
    np.testing.assert_array_equal(gradient, np.broadcast_to(columns_kept * 2.0, (10, 40)))


def test_noise_shape_errors():
    x = sg.matrix("x", shape=(4, 5))
    with pytest.raises(ValueError, match="one entry per axis"):
        sg.nn.dropout(x, keep_prob=0.5, noise_shape=(4, 5, 1))
    with pytest.raises(ValueError, match="must be 1"):
        sg.nn.dropout(x, keep_prob=0.5, noise_shape=(3, 1))


# --- a symbolic keep probability ---------------------------------------------------------------
def test_shared_keep_prob_changed_between_calls():
    keep = sg.shared(0.5, name="keep")
    x = sg.vector("x")
    y = sg.nn.dropout(x, keep_prob=keep, rng=sg.RandomStreams(9))
    train = sg.function([x], y, phase="train")
    classic = sg.function([x], sg.nn.dropout(x, keep_prob=keep, scale="classic"), phase="predict")
    n = 200_000
    data = positive(n)
    for value in (0.5, 0.9, 0.2):
        keep.set_value(value)
        out = train(data)
        kept = out != 0
        assert abs(kept.mean() - value) < binomial_bound(value, n)
        np.testing.assert_allclose(out[kept], data[kept] / value, rtol=1e-15)
        np.testing.assert_allclose(classic(data), data * value, rtol=1e-15)


def test_shared_rate_schedule():
    rate = sg.shared(0.1, name="rate")
    x = sg.vector("x")
    train = sg.function([x], sg.nn.dropout(x, rate=rate), phase="train")
    n = 100_000
    for value in (0.1, 0.6):
        rate.set_value(value)
        kept = train(positive(n)) != 0
        assert abs(kept.mean() - (1 - value)) < binomial_bound(value, n)


@pytest.mark.parametrize("phase", ["train", "predict"])
@pytest.mark.parametrize(
    ("what", "bad"), [("keep_prob", 1.5), ("keep_prob", -0.1), ("rate", 2.0), ("keep_prob", np.nan)]
)
def test_symbolic_probability_out_of_range_at_run_time_names_the_dropout(phase, what, bad):
    probability = sg.shared(0.5, name="p")
    x = sg.vector("x")
    line = next_line()
    y = sg.nn.dropout(x, **{what: probability})
    f = sg.function([x], y, phase=phase)
    probability.set_value(bad)
    pattern = rf"(?s)test_dropout\.py:{line}.*sg\.nn\.dropout.*dropout's {what} must be in \[0, 1\], got {re.escape(str(bad))}"
    with pytest.raises(ValueError, match=pattern):
        f(positive(4))


def test_failing_call_leaves_the_random_state_as_it_was():
    srng = sg.RandomStreams(10)
    x, z = sg.vector("x"), sg.vector("z")
    f = sg.function([x, z], [sg.nn.dropout(x, keep_prob=0.5, rng=srng), x + z], phase="train")
    data = positive(100)
    srng.seed(3)
    expected = f(data, data)[0]
    srng.seed(3)
    with pytest.raises(ValueError):
        f(data, np.ones(7))  # does not broadcast: fails after the mask was drawn
    np.testing.assert_array_equal(f(data, data)[0], expected)


def test_eval_in_train_phase_does_not_advance_the_stream():
    srng = sg.RandomStreams(11)
    x = sg.vector("x")
    y = sg.nn.dropout(x, keep_prob=0.5, rng=srng)
    data = positive(100)
    seen = y.eval({x: data}, phase="train")
    np.testing.assert_array_equal(y.eval({x: data}, phase="train"), seen)
    np.testing.assert_array_equal(sg.function([x], y, phase="train")(data), seen)
    np.testing.assert_array_equal(y.eval({x: data}, phase="predict"), data)


# --- argument errors at build time ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("arguments", "pattern"),
    [
        ({}, "exactly one of rate"),
        ({"rate": 0.5, "keep_prob": 0.5}, "exactly one of rate"),
        ({"rate": None, "keep_prob": None}, "exactly one of rate"),
        ({"rate": 1.5}, r"rate must be in \[0, 1\], got 1.5"),
        ({"rate": -0.5}, r"rate must be in \[0, 1\], got -0.5"),
        ({"keep_prob": 1.01}, r"keep_prob must be in \[0, 1\]"),
        ({"keep_prob": float("nan")}, r"keep_prob must be in \[0, 1\], got nan"),
        ({"keep_prob": "0.5"}, "keep_prob must be a number"),
        ({"keep_prob": True}, "keep_prob must be a number"),
        ({"rate": [0.5]}, "rate must be a number"),
        ({"keep_prob": sg.constant(1.5)}, r"keep_prob must be in \[0, 1\]"),
        ({"keep_prob": sg.vector("k")}, "must be a scalar"),
        ({"keep_prob": 0.5, "scale": "weird"}, "scale must be 'inverted' or 'classic'"),
    ],
)
def test_bad_arguments_raise_value_error_at_build_time(arguments, pattern):
    with pytest.raises(ValueError, match=pattern):
        sg.nn.dropout(sg.vector("x"), **arguments)


def test_numpy_numbers_are_accepted():
    x = sg.vector("x")
    for value in (np.float32(0.5), np.float64(0.5), np.array(0.5), 1):
        y = sg.nn.dropout(x, keep_prob=value)
        np.testing.assert_array_equal(sg.function([x], y, phase="predict")(np.ones(3)), np.ones(3))


def test_rng_must_be_a_stream():
    with pytest.raises(TypeError, match="RandomStreams"):
        sg.nn.dropout(sg.vector("x"), keep_prob=0.5, rng=np.random.default_rng(0))


def test_sg_dropout_is_the_same_function():
    assert sg.dropout is sg.nn.dropout


def next_line():
    """The number of the caller's next line (where it builds the node whose line we check)."""
    return inspect.currentframe().f_back.f_lineno + 1


def test_tutorial_example_runs_and_its_formulations_agree():
    script = Path(__file__).resolve().parents[1] / "examples" / "dropout_tutorial.py"
    if not script.is_file():
        pytest.skip(f"no {script}: this test runs it")
    result = subprocess.run(
        [sys.executable, str(script), "--samples", "100", "--keep-prob", "0.8", "--seed", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    differences = re.findall(r"largest difference of the (?:first training outputs|predictions): +(\S+)", result.stdout)
    assert len(differences) == 2
    assert all(float(value) < 1e-12 for value in differences)
