"""Declared types are what calls give: for every public op, every dtype and 0 to 3 dimensions
(4 for the image ops), the dtype and static shape a graph declares when it is built against what a
call returns, in every mode on both backends, and the values against numpy's.

Mode ``'debug'`` checks every node's result against its declared dtype and static shape (on both
backends), so intermediate nodes and gradient nodes are swept as well. An op that cannot take a
dtype must refuse it when the graph is built, with a ``DTypeError``: for the ops numpy has, exactly
the dtypes numpy refuses.

Each test is one op (and, for elementwise pairs, the first operand's dtype); its graphs for every
dtype and number of dimensions, with unknown and with known static lengths, are compiled
together, once per mode and backend, so that the sweep takes seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import symgraph as sg
from symgraph.errors import DTypeError
from symgraph.graph.traversal import roots

DTYPES = ["bool", "int8", "uint8", "int32", "int64", "float16", "float32", "float64"]
FLOATS = ("float16", "float32", "float64")
SHAPES = {0: (), 1: (3,), 2: (3, 2), 3: (2, 3, 2), 4: (2, 3, 4, 4)}
# Gradients are swept in the dtypes where they differ from float64's, which the other tests check.
GRADIENT_DTYPES = ("float16", "float32")
# Mode 'debug' checks every node, on both backends; fast_run writes in place and rewrites.
RUNS = [("fast_run", "numpy"), ("fast_compile", "python"), ("debug", "numpy"), ("debug", "python")]
# Python numbers as operands: weak, they take the tensor's dtype (with floatX's exceptions).
WEAK = {"Python int": 2, "Python float": 0.5, "Python bool": True}


@dataclass
class Case:
    """``build(*variables)`` is the graph; ``reference(*arrays)`` numpy's result (``None``: values
    not compared); ``refuses`` the dtypes the op must refuse when numpy has no such op to ask."""

    build: Callable
    reference: Callable | None
    ranks: tuple = (0, 1, 2, 3)
    known: tuple | None = None  #: the ranks also built with known static lengths (``None``: all)
    refuses: tuple = ()
    nonzero: tuple = ()  #: the operands that are never zero (divisors, logarithms)
    grad: bool = True  #: check the gradient's declared types too (``GRADIENT_DTYPES``)
    tolerance: float = 1.0  #: a factor on the dtype's tolerance (formulas that differ from numpy's)
    phase: str | None = None  #: compiled for this phase (dropout, batch_norm)


def sample(dtype: str, shape: tuple, rng: np.random.Generator, nonzero: bool = False) -> np.ndarray:
    """Values every op of the sweep takes: positive (logarithms, square roots, powers of integers),
    away from integers (floor, ceil), small enough for uint8 and float16."""
    if dtype == "bool":
        return np.ones(shape, dtype=bool) if nonzero else rng.random(shape) < 0.6
    if np.dtype(dtype).kind in "iu":
        return rng.integers(1, 4, shape).astype(dtype)
    return rng.uniform(0.25, 1.75, shape).astype(dtype)


def tolerance(dtype: np.dtype) -> float:
    return {"float16": 2e-3, "float32": 2e-6, "float64": 1e-12}.get(np.dtype(dtype).name, 0.0)


# --- the ops --------------------------------------------------------------------------------
UNARY = {
    "neg": Case(lambda x: -x, np.negative),
    "abs": Case(sg.abs, np.absolute),
    "exp": Case(sg.exp, np.exp),
    "log": Case(sg.log, np.log, nonzero=(0,)),
    "log1p": Case(sg.log1p, np.log1p),
    "expm1": Case(sg.expm1, np.expm1),
    "sqrt": Case(sg.sqrt, np.sqrt),
    "square": Case(sg.square, np.square),
    "sign": Case(sg.sign, np.sign),
    "sin": Case(sg.sin, np.sin),
    "cos": Case(sg.cos, np.cos),
    "tanh": Case(sg.tanh, np.tanh),
    "floor": Case(sg.floor, np.floor),
    "ceil": Case(sg.ceil, np.ceil),
    "invert": Case(sg.invert, np.invert),
    "invert_operator": Case(lambda x: ~x, np.invert),
    "abs_operator": Case(lambda x: abs(x), np.absolute),
    "positive": Case(lambda x: +x, lambda x: x),  # x itself, booleans too (numpy refuses those)
}

# Elementwise pairs: every pair of dtypes, so fewer ranks (broadcasting is the same rule for all).
PAIRWISE = {"ranks": (0, 2), "known": (3,)}
BINARY = {
    "add": Case(lambda x, y: x + y, np.add, **PAIRWISE),
    "sub": Case(lambda x, y: x - y, np.subtract, **PAIRWISE),
    "mul": Case(lambda x, y: x * y, np.multiply, **PAIRWISE),
    "true_div": Case(lambda x, y: x / y, np.true_divide, nonzero=(1,), **PAIRWISE),
    "floor_div": Case(lambda x, y: x // y, np.floor_divide, nonzero=(1,), **PAIRWISE),
    "mod": Case(lambda x, y: x % y, np.remainder, nonzero=(1,), **PAIRWISE),
    "pow": Case(lambda x, y: x**y, np.power, **PAIRWISE),
    "maximum": Case(sg.maximum, np.maximum, **PAIRWISE),
    "minimum": Case(sg.minimum, np.minimum, **PAIRWISE),
    "eq": Case(sg.eq, np.equal, **PAIRWISE),
    "neq": Case(sg.neq, np.not_equal, **PAIRWISE),
    "lt": Case(lambda x, y: x < y, np.less, **PAIRWISE),
    "le": Case(lambda x, y: x <= y, np.less_equal, **PAIRWISE),
    "gt": Case(lambda x, y: x > y, np.greater, **PAIRWISE),
    "ge": Case(lambda x, y: x >= y, np.greater_equal, **PAIRWISE),
    "and": Case(lambda x, y: x & y, np.bitwise_and, **PAIRWISE),
    "or": Case(sg.or_, np.bitwise_or, **PAIRWISE),
    "xor": Case(sg.xor, np.bitwise_xor, **PAIRWISE),
}


def _floatx(x: np.ndarray) -> np.ndarray:
    """``x`` as the nn ops take it: floats as they are, anything else in floatX."""
    return x if x.dtype.kind == "f" else x.astype(sg.config.floatX)


def _softmax(x: np.ndarray) -> np.ndarray:
    x = _floatx(x)
    e = np.exp(x.astype(np.float64) - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(x.dtype)


def _pooled(reduce):
    """A 2 x 2 pooling of an NCHW array (whose height and width are even) in numpy."""
    return lambda x: reduce(_floatx(x).reshape(x.shape[:2] + (x.shape[2] // 2, 2, x.shape[3] // 2, 2)), axis=(3, 5))


def _float_of(dtype) -> np.dtype:
    """The float numpy's ``exp`` computes ``dtype`` in."""
    return np.exp.resolve_dtypes((np.dtype(dtype), None))[1]


def _in_float(function):
    """A reference computed in float64 and given in the float ``numpy.exp`` would give."""
    return lambda x: function(x.astype(np.float64)).astype(_float_of(x.dtype))


def _reductions():
    cases = {}
    for kind in ("sum", "prod", "max", "min", "mean", "var", "std", "argmax", "argmin"):
        method = getattr(np, kind)
        for label, axis, keepdims in (("all", None, False), ("first", 0, False), ("last_keep", -1, True)):
            ranks = (0, 1, 2, 3) if axis is None else (1, 2, 3)
            if kind.startswith("arg") and keepdims and axis is None:
                continue
            cases[f"{kind}_{label}"] = Case(
                lambda x, kind=kind, axis=axis, keepdims=keepdims: getattr(x, kind)(axis=axis, keepdims=keepdims),
                lambda x, method=method, axis=axis, keepdims=keepdims: np.asarray(
                    method(x, axis=axis, keepdims=keepdims)
                ),
                ranks=ranks,
                # std's gradient is infinite where all values are equal (a 0-d input)
                grad=kind not in ("argmax", "argmin", "std"),
                # sums in another order (numpy's mean, var and std of float16 sum in float32)
                tolerance=50.0,
            )
    return cases


CASES: dict[str, Case] = {}
CASES.update(UNARY)
CASES.update(_reductions())
CASES.update(
    {
        # broadcasting: a length-1 axis (unknown or known), a 0-d operand
        "broadcast_length_1": Case(lambda x: x - x[..., :1], lambda x: x - x[..., :1], ranks=(1, 2, 3)),
        "broadcast_0d": Case(lambda x: x * x.max(), lambda x: x * x.max()),
        # linear algebra
        "dot": Case(lambda x: sg.dot(x, x.T), lambda x: np.asarray(np.dot(x, x.T)), ranks=(0, 1, 2)),
        "matmul": Case(lambda x: x @ x.T, lambda x: x @ x.T, ranks=(1, 2)),
        "matmul_batched": Case(lambda x: x @ x.dimshuffle(0, 2, 1), lambda x: x @ x.transpose(0, 2, 1), ranks=(3,)),
        "outer": Case(lambda x: sg.outer(x, x), lambda x: np.outer(x, x)),
        "tensordot": Case(
            lambda x: sg.tensordot(x, x, axes=x.ndim), lambda x: np.asarray(np.tensordot(x, x, axes=x.ndim))
        ),
        # shapes
        "reshape": Case(lambda x: x.reshape((-1,)), lambda x: x.reshape(-1)),
        "flatten": Case(lambda x: sg.flatten(x), lambda x: x.reshape(-1)),
        "transpose": Case(lambda x: x.T, lambda x: x.T),
        "transpose_axes": Case(
            lambda x: sg.transpose(x, list(range(x.ndim))[::-1]), lambda x: np.transpose(x, list(range(x.ndim))[::-1])
        ),
        "dimshuffle": Case(lambda x: x.dimshuffle("x", *range(x.ndim)), lambda x: x[None]),
        "expand_dims": Case(lambda x: sg.expand_dims(x, 0), lambda x: np.expand_dims(x, 0)),
        "broadcast_to": Case(
            lambda x: sg.broadcast_to(x, (2,) + SHAPES[x.ndim]), lambda x: np.broadcast_to(x, (2,) + x.shape)
        ),
        "shape": Case(lambda x: x.shape, lambda x: np.array(x.shape, dtype=np.int64), grad=False),
        "concatenate": Case(lambda x: sg.concatenate([x, x]), lambda x: np.concatenate([x, x]), ranks=(1, 2, 3)),
        "concatenate_last": Case(
            lambda x: sg.concatenate([x, x], axis=-1), lambda x: np.concatenate([x, x], axis=-1), ranks=(1, 2, 3)
        ),
        "stack": Case(lambda x: sg.stack([x, x]), lambda x: np.stack([x, x])),
        "zeros_like": Case(sg.zeros_like, np.zeros_like, grad=False),
        "ones_like": Case(sg.ones_like, np.ones_like, grad=False),
        "zeros": Case(lambda x: sg.zeros(sg.shape(x), dtype=x.dtype), lambda x: np.zeros(x.shape, x.dtype), grad=False),
        "ones": Case(lambda x: sg.ones(x.shape, dtype=x.dtype), lambda x: np.ones(x.shape, x.dtype), grad=False),
        "astype_float32": Case(lambda x: x.astype("float32"), lambda x: x.astype("float32")),
        "astype_int8": Case(lambda x: sg.cast(x, "int8"), lambda x: x.astype("int8")),
        "astype_bool": Case(lambda x: x.astype(bool), lambda x: x.astype(bool)),
        "clip": Case(lambda x: sg.clip(x, x * 0, x), lambda x: np.clip(x, x * 0, x)),
        "where": Case(lambda x: sg.where(x > 1, x, x * x), lambda x: np.where(x > 1, x, x * x)),
        "where_numbers": Case(
            lambda x: sg.where(x > 1, x, 1), lambda x: np.where(x > 1, x, np.ones((), np.result_type(x, 1)))
        ),
        # indexing
        "index_first": Case(lambda x: x[0], lambda x: x[0], ranks=(1, 2, 3)),
        "index_slice": Case(lambda x: x[:2], lambda x: x[:2], ranks=(1, 2, 3)),
        "index_step": Case(lambda x: x[::-2], lambda x: x[::-2], ranks=(1, 2, 3)),
        "index_newaxis": Case(lambda x: x[None, ...], lambda x: x[None, ...]),
        "index_last_axis": Case(lambda x: x[..., 1], lambda x: x[..., 1], ranks=(1, 2, 3)),
        "index_array": Case(lambda x: x[np.array([0, -1, 0])], lambda x: x[np.array([0, -1, 0])], ranks=(1, 2, 3)),
        "index_tensor": Case(
            lambda x: x[sg.constant(np.array([1, 0])), 0],
            lambda x: x[np.array([1, 0]), 0],
            ranks=(2, 3),
        ),
        "index_mask": Case(lambda x: x[x > 1], lambda x: x[x > 1], ranks=(1, 2, 3)),
        "set_subtensor": Case(
            lambda x: sg.set_subtensor(x[0], x[1]), lambda x: np.concatenate([x[1:2], x[1:]]), ranks=(1, 2, 3)
        ),
        "inc_subtensor": Case(
            lambda x: sg.inc_subtensor(x[np.array([0, 0])], x[1]),
            lambda x: _inc_twice(x),
            ranks=(1, 2, 3),
        ),
        # neural-network ops
        "sigmoid": Case(sg.nn.sigmoid, _in_float(lambda x: 1 / (1 + np.exp(-x))), tolerance=4.0),
        "nn_tanh": Case(sg.nn.tanh, np.tanh),
        "relu": Case(sg.nn.relu, lambda x: np.maximum(x, np.zeros((), x.dtype))),
        "softplus": Case(sg.nn.softplus, _in_float(lambda x: np.log1p(np.exp(x))), tolerance=4.0),
        "softmax": Case(sg.nn.softmax, _softmax, ranks=(1, 2, 3), tolerance=4.0),
        "log_softmax": Case(
            sg.nn.log_softmax,
            lambda x: np.log(_softmax(x).astype(np.float64)).astype(_floatx(x).dtype),
            ranks=(1, 2, 3),
            tolerance=4.0,
        ),
        "binary_crossentropy": Case(
            lambda x: sg.nn.binary_crossentropy(sg.nn.sigmoid(x) * 0.5, x > 1), None, refuses=()
        ),
        "binary_crossentropy_of_sigmoid": Case(lambda x: sg.nn.binary_crossentropy(sg.nn.sigmoid(x), x > 1), None),
        "categorical_crossentropy": Case(
            lambda x: sg.nn.categorical_crossentropy(sg.nn.softmax(x), sg.constant(np.array([0, 1, 0]))),
            None,
            ranks=(2,),
        ),
        "categorical_crossentropy_of_probabilities": Case(
            lambda x: sg.nn.categorical_crossentropy(sg.nn.softmax(x) * 1.0 + 0.0 * x, sg.constant(np.eye(3, 2))),
            None,
            ranks=(2,),
        ),
        "conv2d": Case(lambda x: sg.nn.conv2d(x, x[:2, :, :3, :3], padding=1), None, ranks=(4,)),
        "max_pool2d": Case(lambda x: sg.nn.max_pool2d(x, 2), _pooled(np.max), ranks=(4,)),
        "max_pool2d_padded": Case(lambda x: sg.nn.max_pool2d(x, 3, stride=2, padding=1), None, ranks=(4,)),
        "avg_pool2d": Case(lambda x: sg.nn.avg_pool2d(x, 2), _pooled(np.mean), ranks=(4,), tolerance=4.0),
    }
)


NOT_FLOATS = tuple(dtype for dtype in DTYPES if dtype not in FLOATS)
STREAM = sg.RandomStreams(seed=1)


def _batch_norm(x):
    channels = SHAPES[x.ndim][1]
    statistics = sg.shared(np.zeros(channels)), sg.shared(np.ones(channels))
    return sg.nn.batch_norm(x, np.ones(channels), np.zeros(channels), *statistics)


def _jacobian_of_square(x):
    """The Jacobian of ``x * x``: ``2 x`` on the diagonal; zeros for integers (no gradient)."""
    flat = x.ravel()
    square = np.diag(2 * flat) if x.dtype.kind == "f" else np.zeros((flat.size, flat.size), (x * x).dtype)
    return square.reshape(x.shape + x.shape)


def _rounded(x, away_from_zero=False):
    """``sg.round``: integers and booleans as they are (numpy rounds booleans in float16)."""
    if x.dtype.kind != "f":
        return x.copy()
    return np.copysign(np.floor(np.abs(x) + 0.5), x) if away_from_zero else np.round(x)


def _through_subgraph(x):
    inner = sg.tensor("a", dtype=x.dtype, shape=(None,) * x.ndim)
    return sg.OpFromGraph([inner], [inner * 2])(x)


CASES.update(
    {
        "dropout_train": Case(lambda x: sg.nn.dropout(x, rate=0.5), None, phase="train"),
        "dropout_predict": Case(lambda x: sg.nn.dropout(x, rate=0.5), _floatx, phase="predict"),
        "dropout_classic_predict": Case(
            lambda x: sg.nn.dropout(x, keep_prob=0.5, scale="classic"),
            lambda x: _floatx(x) * np.asarray(0.5, _floatx(x).dtype),
            phase="predict",
        ),
        "batch_norm_train": Case(_batch_norm, None, ranks=(2, 3, 4), phase="train"),
        "batch_norm_predict": Case(  # statistics 0 and 1: x / sqrt(1 + eps)
            _batch_norm,
            lambda x: (_floatx(x) / np.sqrt(1 + 1e-5)).astype(_floatx(x).dtype),
            ranks=(2, 3, 4),
            phase="predict",
            tolerance=4.0,
        ),
        # random draws (no gradient: a draw is not differentiable)
        "uniform": Case(lambda x: STREAM.uniform(x.shape, dtype=x.dtype), None, refuses=NOT_FLOATS, grad=False),
        "uniform_tensor_bounds": Case(
            lambda x: STREAM.uniform(x.shape, low=x - 1, high=x, dtype=x.dtype), None, refuses=NOT_FLOATS, grad=False
        ),
        "normal": Case(
            lambda x: STREAM.normal(x.shape, avg=x, std=2.0, dtype=x.dtype), None, refuses=NOT_FLOATS, grad=False
        ),
        "binomial": Case(lambda x: STREAM.binomial(x.shape, p=0.3, dtype=x.dtype), None, grad=False),
        "binomial_tensor_p": Case(
            lambda x: STREAM.binomial(x.shape, n=3, p=x / (x + 1), dtype=x.dtype), None, grad=False
        ),
        "arange": Case(  # int64 for integer bounds, else the bounds' float dtype (not numpy's float64)
            sg.arange,
            lambda x: np.arange(x, dtype=x.dtype if x.dtype.kind == "f" else np.int64),
            ranks=(0,),
            refuses=("bool",),
            grad=False,
        ),
        "jacobian": Case(lambda x: sg.jacobian(x * x, x), _jacobian_of_square, ranks=(0, 1, 2)),
        "hessian": Case(lambda x: sg.hessian((x * x * x).sum(), x), None, ranks=(0, 1), refuses=NOT_FLOATS),
        "round": Case(sg.round, _rounded),
        "round_half_away_from_zero": Case(
            lambda x: sg.round(x, mode="half_away_from_zero"), lambda x: _rounded(x, away_from_zero=True)
        ),
        "alloc": Case(lambda x: sg.alloc(x, 2, *SHAPES[x.ndim]), lambda x: np.broadcast_to(x, (2,) + x.shape)),
        # (mode 'max' with ignore_border=False: test_pool_2d_max_of_partial_windows_in_debug_mode)
        "pool_2d_partial_windows": Case(
            lambda x: sg.nn.pool_2d(x, ws=(2, 2), ignore_border=False, mode="sum"), None, ranks=(2, 3, 4)
        ),
        "pool_2d_average_exc_pad": Case(
            lambda x: sg.nn.pool_2d(x, ws=(2, 2), pad=(1, 1), mode="average_exc_pad"), None, ranks=(2, 3, 4)
        ),
        "pool_2d_sum": Case(lambda x: sg.nn.pool_2d(x, ws=(2, 2), mode="sum"), None, ranks=(2, 3, 4)),
        "op_from_graph": Case(_through_subgraph, lambda x: x * 2 if x.dtype != bool else x * np.int64(2)),
    }
)


def _inc_twice(x):
    result = x.copy()
    np.add.at(result, np.array([0, 0]), x[1])
    return result


# --- the checks -------------------------------------------------------------------------------
@dataclass
class Built:
    """One op's graphs for one combination of operand dtypes, at every rank."""

    label: str
    inputs: list
    values: list
    outputs: list
    references: list


def _shapes(case: Case) -> list:
    """The static shapes of the inputs: one per number of dimensions with unknown lengths, then
    with known lengths (0-d: the same again)."""
    known = [rank for rank in case.ranks if rank] if case.known is None else case.known
    return [(None,) * rank for rank in case.ranks] + [SHAPES[rank] for rank in known]


def _build(case: Case, dtypes: tuple, rng: np.random.Generator, problems: list) -> Built | None:
    """The graphs of ``case`` on operands of ``dtypes`` (or Python numbers, ``WEAK``'s keys), or
    ``None`` when they are (rightly) refused; what is wrong goes to ``problems``."""
    label = f"({', '.join(dtypes)})"
    tensor_dtypes = [dtype for dtype in dtypes if dtype not in WEAK]
    shapes = _shapes(case)
    variables = [[sg.tensor("x", dtype=dtype, shape=shape) for shape in shapes] for dtype in tensor_dtypes]
    arrays = [
        [np.asarray(sample(dtype, SHAPES[len(shape)], rng, position in case.nonzero)) for shape in shapes]
        for position, dtype in enumerate(tensor_dtypes)
    ]
    count = len(shapes)

    def operands(items: list, index: int) -> list:
        source = iter(items)
        return [WEAK[dtype] if dtype in WEAK else next(source)[index] for dtype in dtypes]

    numpy_refuses = False
    references: list = [None] * count
    if case.reference is not None:
        try:
            with np.errstate(all="ignore"):
                references = [case.reference(*operands(arrays, index)) for index in range(count)]
        except (TypeError, np.exceptions.DTypePromotionError):
            numpy_refuses = True
    must_refuse = numpy_refuses or any(dtype in case.refuses for dtype in dtypes)
    try:
        outputs = [case.build(*operands(variables, index)) for index in range(count)]
    except DTypeError as error:
        if not must_refuse:
            problems.append(f"{label}: refused when built: {error}")
        return None
    except Exception as error:  # anything but a DTypeError is a bug, even as a refusal
        problems.append(f"{label}: building raised {type(error).__name__}: {error}")
        return None
    if must_refuse:
        problems.append(f"{label}: built, though {'numpy refuses' if numpy_refuses else 'it must refuse'} it")
        return None
    inputs = [variable for group in variables for variable in group]
    if case.grad and tensor_dtypes and all(dtype in GRADIENT_DTYPES for dtype in tensor_dtypes):
        for output in list(outputs):
            if output.type.is_float:
                wrt = [variable for variable in inputs if variable in set(roots([output]))]
                try:
                    gradients = sg.grad(output.sum(), wrt)
                except Exception as error:
                    problems.append(f"{label}: sg.grad raised {type(error).__name__}: {error}")
                    return None
                outputs += gradients
                references += [None] * len(gradients)
    values = [value for group in arrays for value in group]
    return Built(label, inputs, values, outputs, references)


def _check_returned(built: Built, returned: list, where: str, factor: float) -> list[str]:
    problems = []
    for output, value, expected in zip(built.outputs, returned, built.references):
        label = f"{built.label} {where} {output.type.describe()}"
        if not isinstance(value, np.ndarray):
            problems.append(f"{label}: returned a {type(value).__name__}, not an array")
            continue
        if value.dtype != output.type.numpy_dtype:
            problems.append(f"{label}: returned dtype {value.dtype}")
        if not output.type.accepts_shape(value.shape):
            problems.append(f"{label}: returned shape {value.shape}")
        if expected is None:
            continue
        expected = np.asarray(expected)
        close = factor * tolerance(value.dtype)
        if expected.dtype != output.type.numpy_dtype:
            problems.append(f"{label}: numpy gives dtype {expected.dtype}")
        elif value.shape != expected.shape:
            problems.append(f"{label}: shape {value.shape}, numpy's {expected.shape}")
        elif not np.allclose(value, expected, rtol=close, atol=close):
            problems.append(f"{label}: values {value.ravel()[:4]}, numpy's {expected.ravel()[:4]}")
    return problems


def _run(group: list[Built], mode: str, backend: str, phase: str | None) -> list:
    inputs = [variable for built in group for variable in built.inputs]
    outputs = [variable for built in group for variable in built.outputs]
    function = sg.function(inputs, outputs, mode=mode, backend=backend, on_unused_input="ignore", phase=phase)
    with np.errstate(all="ignore"):
        returned = function(*[value for built in group for value in built.values])
    results, start = [], 0
    for built in group:
        results.append(returned[start : start + len(built.outputs)])
        start += len(built.outputs)
    return results


def sweep(case: Case, combinations: list[tuple]) -> list[str]:
    """Every problem found for ``case`` on operands of each combination of dtypes, at every rank.
    The graphs of all combinations are compiled together, once per mode and backend (and one by
    one only to tell which one failed)."""
    problems: list[str] = []
    rng = np.random.default_rng(0)
    group = [built for dtypes in combinations if (built := _build(case, dtypes, rng, problems)) is not None]
    for mode, backend in RUNS:
        where = f"mode={mode} backend={backend}"
        try:
            results = _run(group, mode, backend, case.phase)
        except Exception:
            results = []
            for built in group:
                try:
                    results += _run([built], mode, backend, case.phase)
                except Exception as error:
                    problems.append(f"{built.label} {where}: {type(error).__name__}: {error}")
                    results.append(None)
        for built, returned in zip(group, results):
            if returned is not None:
                problems += _check_returned(built, returned, where, case.tolerance)
    return problems


@pytest.mark.parametrize("name", list(CASES))
def test_op_returns_its_declared_types(name):
    problems = sweep(CASES[name], [(dtype,) for dtype in DTYPES])
    assert not problems, f"{name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_op_returns_its_declared_types(name, dtype):
    problems = sweep(BINARY[name], [(dtype, other) for other in DTYPES + list(WEAK)])
    assert not problems, f"{name}({dtype}, ...):\n" + "\n".join(problems)


def test_pool_2d_max_of_partial_windows_in_debug_mode():
    x = sg.matrix("x")
    f = sg.function([x], sg.nn.pool_2d(x, ws=(2, 2), ignore_border=False), mode="debug")
    np.testing.assert_array_equal(f(np.arange(6.0).reshape(3, 2)), [[3.0], [5.0]])


def test_debug_mode_passes_an_infinity_the_graph_holds_and_catches_one_a_node_makes():
    x = sg.vector("x")
    masked = sg.switch(x > 0, x, -np.inf)  # the graph's own -inf, flowing down
    f = sg.function([x], [masked, sg.exp(masked)], mode="debug")
    np.testing.assert_array_equal(f([2.0, -1.0])[1], [np.exp(2.0), 0.0])
    with np.errstate(invalid="ignore"), pytest.raises(FloatingPointError, match="debug mode: sub gave NaN"):
        sg.function([x], masked - masked, mode="debug")([2.0, -1.0])  # -inf - -inf: a NaN of its own
    with np.errstate(divide="ignore"), pytest.raises(FloatingPointError, match="debug mode: log gave Inf"):
        sg.function([x], sg.log(x), mode="debug")([0.0])
