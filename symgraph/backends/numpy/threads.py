"""Running one kernel's numpy work on every core.

numpy's own loops run on one core, while its matrix products (BLAS) use them all. The kernels
that move the most memory (gathering windows, adding them back, pooling and its gradient) split
their work along the arrays' outermost axis into one part per core, each part numpy calls on its
own slice of the arrays, which numpy runs without holding the GIL. The parts write disjoint
slices, so they need no lock; a part that raises makes the kernel raise.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

#: Work smaller than this many bytes runs in the calling thread. On this project's 2-core machine
#: one core nearly saturates the memory bandwidth, and a second thread competes with the BLAS's
#: own threads, still spinning after the product before: splitting the small CNN's kernels
#: (1-7 MB each, batch 64) made its step 4-7% slower, and at batch 256 it gained nothing. Work
#: of several megabytes is split, for machines whose cores have bandwidth to share.
MINIMUM = 8 << 20

_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def in_parts(work: Callable[[slice], object], length: int, size: int) -> None:
    """``work(part)`` for slices covering ``range(length)``, one per core, in parallel when the
    work moves at least ``MINIMUM`` bytes (``size``); else ``work(slice(0, length))``."""
    count = min(cores(), length)
    if count < 2 or size < MINIMUM:
        work(slice(0, length))
        return
    bounds = [length * part // count for part in range(count + 1)]
    parts = [slice(start, stop) for start, stop in zip(bounds, bounds[1:])]
    executor = _pool(count - 1)
    futures: list[Future] = [executor.submit(work, part) for part in parts[1:]]
    try:
        work(parts[0])
    finally:
        for future in futures:
            future.result()


def _pool(workers: int) -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="symgraph-kernel")
        return _executor


def _forget_pool() -> None:
    """In a child process made by ``fork``, the parent's worker threads do not exist: start anew."""
    global _executor, _lock
    _executor, _lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)
