"""Random streams: sizes, distributions, state that advances by itself, seeding, sharing, and
state left alone by failing calls and by ``.eval()``."""

import numpy as np
import pytest

import symgraph as sg
from symgraph.ops.random import bernoulli

MODES = ["fast_run", "fast_compile", "debug"]


def stochastic_nodes(f):
    return [node for node in f.graph.nodes if node.op.stochastic]


# --- sizes and dtypes -------------------------------------------------------------------------
def test_size_as_ints_gives_static_shape_and_floatx():
    u = sg.RandomStreams(0).uniform((3, 4))
    assert u.type.shape == (3, 4)
    assert u.dtype == "float64"
    value = sg.function([], u)()
    assert value.shape == (3, 4) and value.dtype == np.float64


def test_size_as_single_int():
    value = sg.function([], sg.RandomStreams(0).normal(5))()
    assert value.shape == (5,)


def test_size_with_symbolic_scalars():
    n = sg.lscalar("n")
    u = sg.RandomStreams(0).uniform((n, 3))
    assert u.type.shape == (None, 3)
    f = sg.function([n], u)
    assert f(7).shape == (7, 3)
    assert f(2).shape == (2, 3)


def test_size_as_symbolic_shape():
    x = sg.matrix("x")
    srng = sg.RandomStreams(0)
    f = sg.function([x], [srng.normal(x.shape), srng.binomial((x.shape[0], 2))])
    normal, binomial = f(np.zeros((4, 6)))
    assert normal.shape == (4, 6)
    assert binomial.shape == (4, 2) and binomial.dtype == np.int64


def test_dtype_argument_and_float32_floatx():
    srng = sg.RandomStreams(0)
    assert sg.function([], srng.uniform((3,), dtype="float32"))().dtype == np.float32
    sg.config.floatX = "float32"
    assert sg.function([], srng.normal((3,)))().dtype == np.float32
    assert sg.function([], srng.binomial((3,), dtype="int32"))().dtype == np.int32


# --- distributions ----------------------------------------------------------------------------
def test_uniform_range_and_mean():
    value = sg.function([], sg.RandomStreams(1).uniform((100_000,), low=-2.0, high=3.0))()
    assert value.min() >= -2.0 and value.max() < 3.0
    # mean 0.5, standard deviation 5 / sqrt(12); 5 standard errors
    assert abs(value.mean() - 0.5) < 5 * (5 / np.sqrt(12)) / np.sqrt(value.size)


def test_normal_mean_and_std():
    value = sg.function([], sg.RandomStreams(2).normal((100_000,), avg=1.5, std=2.0))()
    assert abs(value.mean() - 1.5) < 5 * 2.0 / np.sqrt(value.size)
    # the sample variance's standard error is about std**2 * sqrt(2 / n)
    assert abs(value.var() - 4.0) < 5 * 4.0 * np.sqrt(2 / value.size)


@pytest.mark.parametrize("p", [0.5, 0.3, 0.9, 0.01])
def test_binomial_one_trial_rate_within_bound(p):
    n = 200_000
    value = sg.function([], sg.RandomStreams(3).binomial((n,), p=p))()
    assert set(np.unique(value)) <= {0, 1}
    assert abs(value.mean() - p) < 5 * np.sqrt(p * (1 - p) / n)


def test_binomial_many_trials_mean():
    n = 100_000
    value = sg.function([], sg.RandomStreams(4).binomial((n,), n=10, p=0.25))()
    assert value.min() >= 0 and value.max() <= 10
    assert abs(value.mean() - 2.5) < 5 * np.sqrt(10 * 0.25 * 0.75 / n)


def test_binomial_symbolic_p_out_of_range_raises_at_run_time():
    p = sg.scalar("p")
    f = sg.function([p], sg.RandomStreams(0).binomial((3,), p=p))
    assert f(0.0).sum() == 0 and f(1.0).sum() == 3
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        f(1.5)


def test_bernoulli_is_the_exact_comparison_with_a_64_bit_threshold():
    """Each element is kept iff its 64-bit number (first byte, then 56 more bits drawn only on a
    tie) is below floor(p * 2**64): checked against a naive loop over the same random words."""
    p, count = 0.3, 5000
    generator = np.random.Generator(np.random.PCG64(11))
    copy = np.random.Generator(np.random.PCG64(11))
    kept = bernoulli(generator.bit_generator, (count,), p)

    threshold = int(p * 2.0**64)
    first_bytes = copy.bit_generator.random_raw(-(-count // 8)).view(np.uint8)[:count]
    tied = [i for i in range(count) if first_bytes[i] == threshold >> 56]
    tails = iter(int(t) >> 8 for t in copy.bit_generator.random_raw(len(tied)))
    expected = np.zeros(count, dtype=bool)
    for i in range(count):
        number = int(first_bytes[i]) << 56
        if first_bytes[i] == threshold >> 56:
            number |= next(tails)
        expected[i] = number < threshold
    assert len(tied) > 0  # the tie path was exercised
    np.testing.assert_array_equal(kept, expected)
    # and both generators are now in the same state: every word drawn was accounted for
    assert generator.bit_generator.state == copy.bit_generator.state


def test_bernoulli_edge_probabilities_draw_nothing():
    generator = np.random.Generator(np.random.PCG64(0))
    before = generator.bit_generator.state
    assert not bernoulli(generator.bit_generator, (4, 5), 0.0).any()
    assert bernoulli(generator.bit_generator, (4, 5), 1.0).all()
    assert generator.bit_generator.state == before


# --- state that advances by itself -----------------------------------------------------------
def test_each_call_draws_fresh_numbers_without_updates():
    f = sg.function([], sg.RandomStreams(0).uniform((10,)))
    assert not np.array_equal(f(), f())
    assert f.updates  # the state update was added automatically


@pytest.mark.parametrize("mode", MODES)
def test_seed_repeats_bit_for_bit(mode):
    srng = sg.RandomStreams(5)
    x = sg.vector("x")
    f = sg.function([x], [srng.uniform(x.shape) + x, srng.normal((3,)), srng.binomial((4,), p=0.3)], mode=mode)
    srng.seed(99)
    first = [f(np.zeros(6)) for _ in range(3)]
    srng.seed(99)
    again = [f(np.zeros(6)) for _ in range(3)]
    for a, b in zip(first, again):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    assert not np.array_equal(first[0][0], first[1][0])


def test_numbers_do_not_depend_on_mode():
    srng = sg.RandomStreams(5)
    x = sg.vector("x")
    y = (srng.uniform(x.shape) * 2 + x * 0, srng.normal((3,)))
    results = []
    for mode in MODES:
        f = sg.function([x], list(y), mode=mode)
        srng.seed(7)
        results.append([f(np.zeros(4)), f(np.zeros(4))])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            for u, v in zip(a, b):
                np.testing.assert_array_equal(u, v)


def test_numbers_do_not_depend_on_which_nodes_a_function_computes():
    srng = sg.RandomStreams(6)
    u1, u2 = srng.uniform((4,)), srng.uniform((4,))
    both = sg.function([], [u1, u2])
    swapped = sg.function([], [u2, u1])
    second_only = sg.function([], u2)
    srng.seed(1)
    a1, a2 = both()
    srng.seed(1)
    b2, b1 = swapped()
    srng.seed(1)
    c2 = second_only()
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    np.testing.assert_array_equal(a2, c2)


def test_module_default_stream_and_sg_seed():
    # dropout given no stream draws from the module-wide default one
    f = sg.function([], sg.nn.dropout(sg.constant(np.ones(50)), keep_prob=0.5), phase="train")
    sg.seed(123)
    first = [f(), f()]
    sg.seed(123)
    np.testing.assert_array_equal(f(), first[0])
    np.testing.assert_array_equal(f(), first[1])
    assert not np.array_equal(first[0], first[1])


def test_functions_of_one_stream_share_its_state():
    srng = sg.RandomStreams(8)
    u = srng.uniform((5,))
    f = sg.function([], u)
    g = sg.function([], u * 2)
    srng.seed(3)
    expected = [f(), f(), f()]
    srng.seed(3)
    interleaved = [f(), g() / 2, f()]
    for a, b in zip(expected, interleaved):
        np.testing.assert_array_equal(a, b)


def test_a_node_is_drawn_once_per_call_however_often_used():
    u = sg.RandomStreams(0).uniform((6,))
    a, b, difference = sg.function([], [u, u * 1, u - u])()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(difference, np.zeros(6))


@pytest.mark.parametrize("mode", MODES)
def test_identical_random_nodes_are_never_merged(mode):
    srng = sg.RandomStreams(0)
    u1, u2 = srng.uniform((50,)), srng.uniform((50,))
    f = sg.function([], [u1, u2, u1 + u2], mode=mode)
    a, b, _ = f()
    assert not np.array_equal(a, b)
    assert len(stochastic_nodes(f)) == 2


# --- state left alone -------------------------------------------------------------------------
def test_failing_call_does_not_advance_the_state():
    srng = sg.RandomStreams(9)
    x = sg.vector("x")
    f = sg.function([x], srng.uniform((3,)) + x)
    srng.seed(4)
    expected = [f(np.zeros(3)), f(np.zeros(3))]
    srng.seed(4)
    with pytest.raises(ValueError):
        f(np.zeros(5))  # shapes (3,) and (5,) do not broadcast: raised after the draw
    np.testing.assert_array_equal(f(np.zeros(3)), expected[0])
    np.testing.assert_array_equal(f(np.zeros(3)), expected[1])


def test_eval_never_advances_the_stream():
    srng = sg.RandomStreams(10)
    u = srng.uniform((4,))
    f = sg.function([], u)
    srng.seed(2)
    seen = u.eval()
    np.testing.assert_array_equal(u.eval(), seen)
    np.testing.assert_array_equal(f(), seen)  # the next call draws what .eval() showed
    assert not np.array_equal(f(), seen)


def test_random_draws_are_not_phase_dependent():
    u = sg.RandomStreams(0).uniform((4,))
    f = sg.function([], u, phase="predict")
    assert not np.array_equal(f(), f())
    assert len(stochastic_nodes(f)) == 1


def test_state_variables_hold_generators_and_copies_are_independent():
    srng = sg.RandomStreams(0)
    u = srng.uniform((3,))
    (state,) = srng.state_variables
    assert isinstance(state.get_value(), np.random.Generator)
    saved = state.get_value()
    f = sg.function([], u)
    first = f()
    state.set_value(saved)
    np.testing.assert_array_equal(f(), first)


def test_stream_does_not_keep_generators_of_dropped_graphs():
    import gc

    srng = sg.RandomStreams(0)
    kept = srng.uniform((2,))
    for _ in range(20):
        srng.normal((3,))  # built and dropped at once
    gc.collect()
    (state,) = srng.state_variables
    assert state is kept.owner.inputs[0]
    srng.seed(1)  # still resets the live one
    first = sg.function([], kept)()
    srng.seed(1)
    np.testing.assert_array_equal(sg.function([], kept)(), first)


def test_reseeding_waits_for_a_call_in_progress():
    """seed() takes the lock that calls hold: a call sees the stream wholly before or wholly
    after a reseed, never a half-reseeded stream."""
    import threading

    from symgraph.graph.basic import STATE_LOCK

    stream = sg.RandomStreams(1)
    draws = sg.function([], [stream.uniform((4,)), stream.uniform((4,))])
    finished = threading.Event()

    def reseed():
        stream.seed(2)
        finished.set()

    with STATE_LOCK:  # as a call in progress would
        thread = threading.Thread(target=reseed)
        thread.start()
        thread.join(timeout=0.2)
        assert not finished.is_set()
    thread.join()
    assert finished.is_set()
    first = draws()
    stream.seed(2)
    np.testing.assert_array_equal(draws()[0], first[0])
