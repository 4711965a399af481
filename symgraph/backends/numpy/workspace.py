"""Large arrays for the numpy kernels, made from memory that arrays of the same size left behind.

A training step makes the same large temporaries (im2col's columns, a convolution's output, a
pooling's gradient) at every call and drops them by its end. Given back to the C library, that
memory comes back at the next call as fresh pages, each zeroed by the operating system on first
touch: on a 2-core machine about 40% of a small CNN's step went to those page faults. So the
kernels take their large arrays from :func:`empty`, which hands out memory kept from arrays
already dropped, as an allocator's free list does. Nothing a call computes is shared: an array
from :func:`empty` belongs to whoever holds it, like any other, and its memory is only reused
once nothing refers to it any more (the array, its views and whatever was computed in place in
it). Calls stay independent of each other; at most ``LIMIT`` bytes are kept.

The arrays numpy itself allocates (an elementwise result that overwrites no input, a product of
a dense layer, a reshaped copy) come from the C library's ``malloc``. With glibc, one of a few
hundred kilobytes or more is handed back to the operating system when freed (its own mapping, or
the top of the heap trimmed), and comes back at the next call as fresh pages, again one fault per
4 KB: about a millisecond of a small CNN's 13 ms step. :func:`keep_freed_memory` asks glibc
(``mallopt``) to keep such memory for reuse as this module does, up to ``LIMIT`` bytes: the
numpy backend calls it once, when it links its first program, unless the environment variable
``SYMGRAPH_KEEP_FREED_MEMORY`` is ``0``. Other C libraries are left as they are. On a Dask worker
with a memory limit, the dask backend asks for less, in proportion to the limit (see
:func:`keep_freed_memory`): Dask pauses a worker whose process holds more memory than its limit,
kept for reuse or not.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import weakref
from typing import Any

import numpy as np

#: Smaller arrays come from numpy's own allocator, which keeps such blocks itself.
THRESHOLD = 1 << 18
#: The most memory kept for reuse, in bytes.
LIMIT = 1 << 28

_free: dict[int, list[bytearray]] = {}
_kept = 0
_lock = threading.Lock()


def empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """``numpy.empty(shape, dtype)``, C-ordered, in recycled memory when it is large."""
    dtype = np.dtype(dtype)
    count = 1
    for length in shape:
        count *= length
    size = count * dtype.itemsize
    if size < THRESHOLD:
        return np.empty(shape, dtype=dtype)
    global _kept
    with _lock:
        kept = _free.get(size)
        memory = kept.pop() if kept else None
        if memory is not None:
            _kept -= size
    if memory is None:
        memory = bytearray(size)
    # ``owner`` owns no memory and its base is no array: every view of the array returned (and of
    # its views) has ``owner`` as its base, so ``owner`` lives exactly as long as any of them.
    owner = np.frombuffer(memory, dtype=np.uint8)
    weakref.finalize(owner, _give_back, memory)
    return owner.view(dtype).reshape(shape)


def zeros(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """``numpy.zeros(shape, dtype)``, in recycled memory when it is large."""
    array = empty(shape, dtype)
    array.fill(0)
    return array


def _give_back(memory: bytearray) -> None:
    global _kept
    with _lock:
        if _kept + len(memory) <= LIMIT:
            _free.setdefault(len(memory), []).append(memory)
            _kept += len(memory)


#: glibc's ``mallopt`` parameters (malloc.h) and the values set: blocks under 32 MB (glibc's own
#: ceiling for the threshold it raises by itself) come from the heap rather than a mapping of
#: their own, and the heap keeps up to ``LIMIT`` free bytes at its top instead of trimming them.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD = 32 << 20
_asked: bool | None = None


def keep_freed_memory(memory_limit: int | None = None) -> bool:
    """Asks glibc to keep freed memory for reuse (see the module's text), once per process (the
    first call decides); whether it took effect (``False`` with another C library, or when
    ``SYMGRAPH_KEEP_FREED_MEMORY=0``).

    A process that must stay within ``memory_limit`` (a Dask worker's) scales both settings to
    it: blocks up to a 64th of the limit come from the heap (larger ones keep a mapping of their
    own, given back at once, so that few stay held by what was allocated after them), and an
    eighth of it at most stays kept at the top of the heap."""
    global _asked
    if _asked is None:
        _asked = False
        if os.environ.get("SYMGRAPH_KEEP_FREED_MEMORY", "1") != "0":
            mallopt = _glibc_mallopt()
            if mallopt is not None:
                blocks, kept = _MMAP_THRESHOLD, LIMIT
                if memory_limit:
                    blocks, kept = min(blocks, memory_limit // 64), min(kept, memory_limit // 8)
                _asked = bool(mallopt(_M_MMAP_THRESHOLD, blocks)) & bool(mallopt(_M_TRIM_THRESHOLD, kept))
    return _asked


def _glibc_mallopt() -> Any:
    """glibc's ``mallopt``, or ``None`` in a process linked to another C library."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 (only glibc has it)
    except (OSError, AttributeError):
        return None
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt
