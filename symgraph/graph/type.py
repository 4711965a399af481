"""Types: what a variable holds, known before any value exists.

A :class:`TensorType` is a dtype and a static shape, one entry per axis: an ``int`` when the length
is known when the graph is built, ``None`` when it is only known at run time. Types are immutable
and compare by value.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from functools import cache, lru_cache
from typing import Any

import numpy as np

from ..errors import DTypeError, ShapeError

StaticShape = tuple  # tuple[int | None, ...]


class Type:
    """What a variable holds. Subclasses say how a value is checked against them."""

    def describe(self) -> str:
        return str(self)

    def filter(self, value: Any, *, what: str, allow_downcast: bool = False) -> Any:
        """``value`` made to fit this type, or an ``InputError`` naming ``what``."""
        raise NotImplementedError

    def copy_value(self, value: Any) -> Any:
        """An independent copy of a value of this type."""
        raise NotImplementedError


class TensorType(Type):
    """An n-dimensional numpy array of one dtype and a static shape (``None`` for unknown lengths)."""

    __slots__ = ("_hash", "dtype", "numpy_dtype", "shape")
    _interned: dict[tuple, "TensorType"] = {}

    def __new__(cls, dtype: Any, shape: Sequence[int | None]) -> "TensorType":
        # Types are immutable and a graph repeats a few of them many times: share one object each.
        shape = shape if isinstance(shape, tuple) else tuple(shape)
        if not all(length is None or type(length) is int for length in shape):
            # Checked before the lookup: True and 1.0 equal 1, and would find the type of (1,).
            shape = tuple(_static_length(length) for length in shape)
        key = (dtype, shape)
        try:
            interned = cls._interned.get(key)
        except TypeError:  # an unhashable dtype argument
            interned = None
        if interned is None:
            interned = super().__new__(cls)
            interned._initialize(dtype, key[1])
            # One object per numpy dtype and shape, whichever way the dtype was named ('float64',
            # np.float64, np.dtype('float64')): passes compare types by identity first.
            canonical = (interned.numpy_dtype, interned.shape)
            interned = cls._interned.setdefault(canonical, interned) if len(cls._interned) < 100_000 else interned
            if len(cls._interned) < 100_000:
                with contextlib.suppress(TypeError):
                    cls._interned[key] = interned
        return interned

    def _initialize(self, dtype: Any, shape: Sequence[int | None]) -> None:
        self.numpy_dtype, self.dtype = _normalize_dtype(dtype)
        shape = tuple(_static_length(length) for length in shape)
        self.shape = shape
        self._hash = hash((self.dtype, shape))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def is_float(self) -> bool:
        return self.numpy_dtype.kind == "f"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TensorType) and self.dtype == other.dtype and self.shape == other.shape

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"TensorType({self.dtype}, {format_shape(self.shape)})"

    # Types are immutable and interned: pickling rebuilds them through the constructor, copying
    # gives the type itself.
    def __reduce__(self) -> tuple:
        return (TensorType, (self.dtype, self.shape))

    def __copy__(self) -> "TensorType":
        return self

    def __deepcopy__(self, memo: dict) -> "TensorType":
        return self

    def describe(self) -> str:
        return f"{self.dtype} {format_shape(self.shape)}"

    def filter(self, value: Any, *, what: str, allow_downcast: bool = False) -> np.ndarray:
        return filter_tensor(self, value, what=what, allow_downcast=allow_downcast)

    def copy_value(self, value: np.ndarray) -> np.ndarray:
        return value.copy()

    def accepts_shape(self, shape: tuple[int, ...]) -> bool:
        """Whether an actual shape fits this type's number of dimensions and static lengths."""
        return len(shape) == len(self.shape) and all(
            static is None or static == actual for static, actual in zip(self.shape, shape)
        )


@lru_cache(maxsize=256)
@cache
def largest_finite(dtype: np.dtype) -> float:
    """The largest finite value of the float dtype ``dtype``."""
    return float(np.finfo(dtype).max)


def _normalize_dtype(dtype: Any) -> tuple[np.dtype, str]:
    """The numpy dtype and its name (numpy computes names slowly, and types are built often)."""
    try:
        numpy_dtype = np.dtype(dtype)
    except TypeError as error:
        raise DTypeError(f"{dtype!r} is not a numpy dtype") from error
    if numpy_dtype.kind not in "biuf":
        raise DTypeError(f"symgraph tensors hold booleans, integers or floats, not {numpy_dtype}")
    return numpy_dtype, numpy_dtype.name


def _static_length(length: Any) -> int | None:
    if length is None:
        return None
    if isinstance(length, (bool, np.bool_)) or not isinstance(length, (int, np.integer)):
        raise ShapeError(f"a static length is an int or None, not {length!r}")
    if length < 0:
        raise ShapeError(f"a static length cannot be negative: {length}")
    return int(length)


def format_shape(shape: Sequence[int | None]) -> str:
    """``(None, 784)`` as ``(?, 784)``; a 1-tuple keeps its comma."""
    parts = ["?" if length is None else str(length) for length in shape]
    if len(parts) == 1:
        return f"({parts[0]},)"
    return "(" + ", ".join(parts) + ")"


def fits_into(shape: StaticShape, target: StaticShape) -> bool:
    """Whether broadcasting ``shape`` against ``target`` certainly leaves ``target``'s shape as it
    is, whatever the unknown lengths turn out to be: each length is 1, or known and equal."""
    if len(shape) > len(target):
        return False
    offset = len(target) - len(shape)
    for axis, length in enumerate(shape):
        if length != 1 and (length is None or length != target[offset + axis]):
            return False
    return True


def broadcast_static_shapes(*shapes: StaticShape) -> StaticShape:
    """The static shape numpy broadcasting gives, or ``ShapeError`` if it certainly fails.

    An unknown length may turn out to be 1 at run time, so it broadcasts against anything; the
    result is known only where some input is known and larger than 1, or where all are known 1.
    """
    if all(shape == shapes[0] for shape in shapes):
        return tuple(shapes[0]) if shapes else ()
    if len(shapes) == 2 and not (shapes[0] and shapes[1]):  # with a scalar: the other shape
        return tuple(shapes[0] or shapes[1])
    ndim = max((len(shape) for shape in shapes), default=0)
    padded = [(1,) * (ndim - len(shape)) + tuple(shape) for shape in shapes]
    result = []
    for axis in range(ndim):
        lengths = [shape[axis] for shape in padded]
        known = {length for length in lengths if length is not None and length != 1}
        if len(known) > 1:
            raise ShapeError(
                "shapes "
                + " and ".join(format_shape(shape) for shape in shapes)
                + f" cannot broadcast: axis {axis - ndim} has lengths {sorted(known)}"
            )
        if known:
            result.append(known.pop())
        elif all(length == 1 for length in lengths):
            result.append(1)
        else:
            result.append(None)
    return tuple(result)


_KIND_ORDER = {"b": 0, "u": 1, "i": 1, "f": 2}


def _describe_value(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    if isinstance(value, np.generic):
        return f"a numpy {value.dtype} scalar"
    return f"a {type(value).__name__}"


# Theano's typed declarations: sg.lvector is an int64 vector, sg.fmatrix a float32 matrix...
_PREFIXES = {"float64": "d", "float32": "f", "int64": "l", "int32": "i", "int8": "b"}
_RANK_NAMES = ("scalar", "vector", "matrix", "tensor3", "tensor4")


def _declaration(dtype: np.dtype, ndim: int) -> str:
    """How to declare an input of ``dtype`` and ``ndim`` dimensions (``sg.lvector``, say)."""
    prefix = _PREFIXES.get(dtype.name)
    if ndim >= len(_RANK_NAMES):
        return f"sg.tensor(name, dtype='{dtype.name}', shape=...)"
    if prefix is None:
        return f"sg.{_RANK_NAMES[ndim]}(name, dtype='{dtype.name}')"
    return f"sg.{prefix}{_RANK_NAMES[ndim]}"


def _ways_out(given: np.dtype, tensor_type: TensorType) -> str:
    """What to do about an array of dtype ``given`` that does not cast safely to ``tensor_type``.
    For a function's argument of a wider dtype of the same kind (numpy's int64 labels for an int32
    input), declaring the input with that dtype is one way out, converting the arguments another."""
    target = tensor_type.dtype
    if given.kind != tensor_type.numpy_dtype.kind:
        return (
            f"Convert it with .astype('{target}') (a compiled function's arguments may also be converted "
            "by compiling it with allow_input_downcast=True)."
        )
    lost = "wrapping around values that do not fit" if given.kind in "iu" else "rounding"
    return (
        f"For a function's argument, either declare the input {given.name} "
        f"({_declaration(given, tensor_type.ndim)}) or compile the function with allow_input_downcast=True "
        f"(which converts such arguments, {lost}); or convert it with .astype('{target}')."
    )


def filter_tensor(tensor_type: TensorType, value: Any, *, what: str, allow_downcast: bool = False) -> np.ndarray:
    """``value`` as an array of ``tensor_type``, or an ``InputError`` that names ``what``.

    An array whose dtype casts safely (``numpy.can_cast(..., 'safe')``) is converted; Python numbers
    and lists convert when their kind fits (bool into int into float); anything else needs
    ``allow_downcast``. The number of dimensions and the static lengths must match.
    """
    from ..errors import InputError

    target = tensor_type.numpy_dtype
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        if array.dtype != target:
            if not (allow_downcast or np.can_cast(array.dtype, target, "safe")):
                raise InputError(
                    f"{what} expects dtype {tensor_type.dtype}, got {_describe_value(value)}; "
                    f"{array.dtype} does not cast safely to {tensor_type.dtype}. {_ways_out(array.dtype, tensor_type)}"
                )
            array = array.astype(target)
    else:
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as error:
            raise InputError(f"{what} expects an array, got {_describe_value(value)}: {error}") from None
        if array.dtype.kind not in _KIND_ORDER:
            raise InputError(f"{what} expects numbers, got {_describe_value(value)} ({array.dtype})")
        if array.dtype != target:
            if _KIND_ORDER[array.dtype.kind] > _KIND_ORDER[target.kind] and not allow_downcast:
                raise InputError(
                    f"{what} expects dtype {tensor_type.dtype}, got {_describe_value(value)} of "
                    f"{array.dtype} values, which would lose information; convert them first (a "
                    "compiled function's arguments may also be converted by compiling it with "
                    "allow_input_downcast=True)."
                )
            try:
                array = np.asarray(value, dtype=target)
            except OverflowError as error:
                raise InputError(f"{what}: {error}") from None
    if not tensor_type.accepts_shape(array.shape):
        if array.ndim != tensor_type.ndim:
            raise InputError(
                f"{what} expects {tensor_type.ndim} dimension(s) {format_shape(tensor_type.shape)}, "
                f"got {array.ndim} (shape {array.shape})"
            )
        raise InputError(f"{what} expects shape {format_shape(tensor_type.shape)}, got {array.shape}")
    return array
