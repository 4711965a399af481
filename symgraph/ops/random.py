"""Random streams and random ops.

A random node holds its own numpy ``Generator`` in a shared variable, spawned from its stream's
seed (``SeedSequence(seed, spawn_key=(k,))`` for the k-th node), so the numbers a node draws do
not depend on the order a program runs its nodes in, nor on the mode. A compiled function reads
the generator, draws from it (advancing it in place), and restores it if the call fails or must
not change state (``.eval()``): its state is a snapshot taken at the start of every call.
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config import config
from ..errors import DTypeError, InputError, ShapeError
from ..graph.basic import STATE_LOCK, Apply, SharedVariable, Variable
from ..graph.op import Op
from ..graph.type import TensorType, Type, broadcast_static_shapes, format_shape
from .basic import as_tensor, constant
from .elemwise import add
from .shape import as_shape, shape, static_size


class GeneratorType(Type):
    """A ``numpy.random.Generator``: state that random ops advance in place."""

    mutable = True  # ops change values of this type in place: calls snapshot and restore them

    def filter(self, value: Any, *, what: str, allow_downcast: bool = False) -> np.random.Generator:
        if not isinstance(value, np.random.Generator):
            raise InputError(f"{what} holds a numpy.random.Generator, not {type(value).__name__}")
        return value

    def copy_value(self, value: np.random.Generator) -> np.random.Generator:
        copy = np.random.Generator(type(value.bit_generator)())
        copy.bit_generator.state = value.bit_generator.state
        return copy

    @staticmethod
    def snapshot(value: np.random.Generator) -> dict:
        return value.bit_generator.state

    @staticmethod
    def restore(value: np.random.Generator, state: dict) -> None:
        value.bit_generator.state = state

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GeneratorType)

    def __hash__(self) -> int:
        return hash(GeneratorType)

    def __repr__(self) -> str:
        return "GeneratorType()"

    def describe(self) -> str:
        return "random generator"


def generator_for(entropy: Any, index: int) -> np.random.Generator:
    """The generator of the ``index``-th random node of a stream seeded with ``entropy``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy, spawn_key=(index,))))


class RandomStreams:
    """A source of random numbers for graphs: ``srng = sg.RandomStreams(seed=42)``.

    Each random node built from it (``srng.uniform((3, 4))``, a dropout mask...) draws from its own
    generator, spawned from the seed; compiled functions advance it on every call, with no update
    written by the user. ``srng.seed(s)`` resets every one of them, so the same calls in the same
    order give the same numbers, bit for bit.
    """

    def __init__(self, seed: int | None = None):
        self._entropy = np.random.SeedSequence(seed).entropy
        # (index, weak reference) per node's generator: a stream used for many graphs (the
        # module-wide one) must not keep the generators of graphs long gone.
        self._states: list[tuple[int, weakref.ref]] = []
        self._count = 0

    def __getstate__(self) -> dict:
        # Weak references do not pickle or copy: the live generators go as they are (a model
        # pickled or deep-copied with its stream and graph keeps them tied together).
        return {"entropy": self._entropy, "count": self._count, "states": self._live()}

    def __setstate__(self, state: dict) -> None:
        self._entropy, self._count = state["entropy"], state["count"]
        self._states = [(index, weakref.ref(variable)) for index, variable in state["states"]]

    def seed(self, seed: int | None = None) -> None:
        """Reset every generator of this stream from ``seed``."""
        with STATE_LOCK:  # all at once: no call sees half a reseeded stream
            self._entropy = np.random.SeedSequence(seed).entropy
            for index, state in self._live():
                state.set_value(generator_for(self._entropy, index), borrow=True)

    def new_state(self) -> SharedVariable:
        """A new generator of this stream, as a shared variable (for ops that draw)."""
        with STATE_LOCK:  # graphs built in several threads still number their nodes uniquely
            index = self._count
            self._count += 1
            state = SharedVariable(
                GeneratorType(), generator_for(self._entropy, index), name=f"rng{index}", borrow=True
            )
            if len(self._states) >= 1024 and len(self._states) & (len(self._states) - 1) == 0:
                self._live()  # now and then (at powers of two), forget the dead ones
            self._states.append((index, weakref.ref(state)))
        return state

    @property
    def state_variables(self) -> list[SharedVariable]:
        """The shared variables holding the generators of this stream's live nodes, in building
        order.

        Compiled functions update them by themselves: giving one of them an update of your own is
        an error."""
        return [state for _, state in self._live()]

    def _live(self) -> list[tuple[int, SharedVariable]]:
        live = [(index, reference()) for index, reference in self._states]
        live = [(index, state) for index, state in live if state is not None]
        self._states = [(index, weakref.ref(state)) for index, state in live]
        return live

    def uniform(self, size: Any = None, low: Any = 0.0, high: Any = 1.0, dtype: Any = None) -> Variable:
        """Uniform numbers in ``[low, high)`` of shape ``size``. ``low`` and ``high`` may be tensors
        (symbolic or arrays) that broadcast to ``size``; ``size=None`` takes their broadcast shape."""
        return _draw(Uniform(_float_dtype(dtype)), self, size, low=low, high=high)

    def normal(self, size: Any = None, avg: Any = 0.0, std: Any = 1.0, dtype: Any = None) -> Variable:
        """Normal numbers of mean ``avg`` and standard deviation ``std``, which may be tensors that
        broadcast to ``size`` (``size=None``: their broadcast shape)."""
        return _draw(Normal(_float_dtype(dtype)), self, size, avg=avg, std=std)

    def binomial(self, size: Any = None, n: Any = 1, p: Any = 0.5, dtype: Any = "int64") -> Variable:
        """Binomial counts of ``n`` trials with success probability ``p`` (``n=1``: Bernoulli, 0 or
        1). ``n`` and ``p`` may be tensors that broadcast to ``size`` (``size=None``: their
        broadcast shape), as in ``srng.binomial(size=h.shape, n=1, p=h)``."""
        return _draw(Binomial(np.dtype(dtype).name), self, size, n=n, p=p)


def _float_dtype(dtype: Any) -> str:
    name = np.dtype(dtype or config.floatX).name
    if np.dtype(name).kind != "f":
        raise DTypeError(f"uniform and normal draw floats: dtype must be a float dtype, not {name}")
    return name


_default_stream = RandomStreams()


def default_stream() -> RandomStreams:
    """The module-wide stream random ops use when given none."""
    return _default_stream


def seed(value: int | None = None) -> None:
    """Reset the module-wide default random stream (``sg.seed(s)``)."""
    _default_stream.seed(value)


def _draw(op: RandomOp, stream: RandomStreams, size: Any, **parameters: Any) -> Variable:
    parameter_variables = []
    for what, parameter in parameters.items():
        try:
            variable = as_tensor(parameter)
        except (TypeError, ValueError) as error:
            message = f"{op.name}: {what} must be a number or a numeric tensor, not {parameter!r} ({error})"
            raise TypeError(message) from None
        if not isinstance(variable.type, TensorType):
            raise TypeError(f"{op.name}: {what} must be a number or a numeric tensor, not {variable!r}")
        parameter_variables.append(variable)
    if size is None:  # the parameters' broadcast shape, as numpy's generators do
        size_variable = _broadcast_shape(op.name, parameters, parameter_variables)
    else:
        size_variable = as_shape(size)
    static = static_size(size_variable, op.name)
    for what, variable in zip(parameters, parameter_variables):
        _check_broadcasts_to(op.name, what, variable.type.shape, static)
    # The arguments are checked before the node takes the stream's next generator: a call that
    # raises leaves the numbering of the stream's nodes (and so their numbers) as it was.
    return op(stream.new_state(), size_variable, *parameter_variables)[1]


def _broadcast_shape(what: str, parameters: dict, variables: list[Variable]) -> Variable:
    shapes = [variable.type.shape for variable in variables]
    try:
        static = broadcast_static_shapes(*shapes)
    except ShapeError as error:
        raise ShapeError(f"{what}: the parameters {', '.join(parameters)} do not broadcast together: {error}") from None
    if None not in static:
        return constant(np.array(static, dtype=np.int64))
    return shape(functools.reduce(add, variables))


def _check_broadcasts_to(what: str, parameter: str, parameter_shape: tuple, size: tuple) -> None:
    """A parameter must broadcast to the size (numpy's rule for its generators: the size is the
    result's shape, never enlarged by a parameter)."""
    fits = len(parameter_shape) <= len(size) and all(
        length in (1, None) or target in (length, None) for length, target in zip(parameter_shape[::-1], size[::-1])
    )
    if not fits:
        raise ShapeError(
            f"{what}: {parameter} of shape {format_shape(parameter_shape)} does not broadcast to the size "
            f"{format_shape(size)}"
        )


def _broadcast_parameters(what: str, size: tuple, **parameters: np.ndarray) -> None:
    """The run-time version of :func:`_check_broadcasts_to`, for parameters that are arrays."""
    for name, value in parameters.items():
        value_shape = np.shape(value)
        try:
            fits = np.broadcast_shapes(value_shape, size) == size
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"{what}: {name} of shape {value_shape} does not broadcast to the size {size}")


class RandomOp(Op):
    """Draws from its generator input: ``(generator, size, *parameters) -> (generator, sample)``."""

    __props__ = ("dtype",)
    stochastic = True

    def __init__(self, dtype: str):
        self.dtype = dtype

    def make_node(self, state: Variable, size: Variable, *parameters: Variable) -> Apply:
        # The sample's static shape comes from the size's value (when constant), not its type.
        sample_type = TensorType(self.dtype, static_size(size, self.name))
        return Apply(self, [state, size, *parameters], [state.type, sample_type])

    def state_updates(self, node: Apply) -> list[tuple[SharedVariable, Variable]]:
        state = node.inputs[0]
        return [(state, node.outputs[0])] if isinstance(state, SharedVariable) else []

    def grad(self, node: Apply, output_grads: Sequence, needed: Sequence[bool]) -> list:
        return [None] * len(node.inputs)

    def perform(self, generator: np.random.Generator, size: np.ndarray, *parameters: Any) -> tuple:
        """Draws in place from ``generator`` (the compiled function restores its state if the call
        fails or must change nothing) and gives it back with the sample."""
        return generator, self.sample(generator, tuple(size.tolist()), np.dtype(self.dtype), *parameters)

    def sample(self, generator: np.random.Generator, size: tuple, dtype: np.dtype, *parameters: Any) -> np.ndarray:
        raise NotImplementedError


class Uniform(RandomOp):
    """Uniform numbers in ``[low, high)``."""

    def sample(self, generator, size, dtype, low, high):
        if dtype == np.float16:  # numpy draws float32 and float64 only
            wide = generator.random(size, dtype=np.float32)
            values = wide.astype(np.float16)
            # Rounded down, not to the nearest: 1 - 2**-25 must not become 1.
            np.nextafter(values, np.float16(0), out=values, where=values > wide)
        else:
            values = generator.random(size, dtype=dtype)
        if np.ndim(low) == 0 and np.ndim(high) == 0:
            if low != 0 or high != 1:
                values *= dtype.type(high - low)
                values += dtype.type(low)
            return values
        _broadcast_parameters(self.name, size, low=low, high=high)
        values *= np.subtract(high, low).astype(dtype, copy=False)
        values += np.asarray(low).astype(dtype, copy=False)
        return values


class Normal(RandomOp):
    """Normal numbers of mean ``avg`` and standard deviation ``std``."""

    def sample(self, generator, size, dtype, avg, std):
        if dtype == np.float16:  # numpy draws float32 and float64 only
            values = generator.standard_normal(size, dtype=np.float32).astype(np.float16)
        else:
            values = generator.standard_normal(size, dtype=dtype)
        if np.ndim(avg) == 0 and np.ndim(std) == 0:
            if std != 1:
                values *= dtype.type(std)
            if avg != 0:
                values += dtype.type(avg)
            return values
        _broadcast_parameters(self.name, size, avg=avg, std=std)
        values *= np.asarray(std).astype(dtype, copy=False)
        values += np.asarray(avg).astype(dtype, copy=False)
        return values


class Binomial(RandomOp):
    """Counts of successes in ``n`` trials of probability ``p``."""

    def sample(self, generator, size, dtype, n, p):
        if np.ndim(p) == 0 and np.ndim(n) == 0:
            p = float(p)
            if not 0 <= p <= 1:
                raise ValueError(f"binomial p must be in [0, 1], got {p}")
            if int(n) == 1:  # a Bernoulli draw: the exact byte-wise draw is several times faster
                return bernoulli(generator.bit_generator, size, p).astype(dtype, copy=False)
            return generator.binomial(int(n), p, size).astype(dtype, copy=False)
        _broadcast_parameters(self.name, size, n=n, p=p)
        p = np.asarray(p, dtype=np.float64)
        if not ((p >= 0) & (p <= 1)).all():  # NaN fails too
            bad = p[~((p >= 0) & (p <= 1))].flat[0]
            raise ValueError(f"binomial p must be in [0, 1], got {bad}")
        if (np.asarray(n) == 1).all():  # Bernoulli with a p per element: exact to 2**-53
            return np.less(generator.random(size), p).astype(dtype, copy=False)
        return generator.binomial(n, p, size).astype(dtype, copy=False)


# --- exact Bernoulli draws from few random bits --------------------------------------------------
_TAIL_BITS = 56  # the bits after the first byte of a 64-bit threshold


def bernoulli(bit_generator: np.random.BitGenerator, shape: tuple, p: float) -> np.ndarray:
    """Booleans of ``shape``, each ``True`` with probability ``p`` (to within 2**-64), independently.

    ``p`` is taken as the 64-bit threshold ``t = floor(p * 2**64)`` (exact for every float64
    ``p >= 2**-11``), and each element compares random bits with it: one random byte first, which
    settles the comparison unless it equals the threshold's first byte; the 1 in 256 elements
    where it does compare 56 more random bits with the rest of the threshold (unless that rest is
    0, as when ``p`` is a multiple of 1/256 such as 0.5: then a tie is a "no" at once). About 8
    random bits per element instead of 32 or 64, which is what makes dropout masks cheap: drawing
    bits is the costly part.
    """
    count = int(math.prod(shape))  # (numpy's prod of a tuple costs 4 us: a fifth of a small mask)
    if p <= 0.0:
        return np.zeros(shape, dtype=bool)
    if p >= 1.0:
        return np.ones(shape, dtype=bool)
    threshold = int(p * 2.0**64)
    first, rest = divmod(threshold, 1 << _TAIL_BITS)
    # Whole 64-bit words, read as bytes; the bytes past ``count`` are drawn and dropped, so the
    # state advances by ceil(count / 8) words.
    random_bytes = bit_generator.random_raw(-(-count // 8)).view(np.uint8)[:count]
    kept = np.less(random_bytes, np.uint8(first))
    if rest:
        ties = np.flatnonzero(random_bytes == np.uint8(first))
        if ties.size:
            tails = bit_generator.random_raw(ties.size) >> np.uint64(64 - _TAIL_BITS)
            kept[ties] = tails < np.uint64(rest)
    return kept.reshape(shape)
