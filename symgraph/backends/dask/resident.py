"""Weights that stay on the cluster from one call to the next.

A train step computes the new weights on the workers and brings them back to commit them into
the shared variables; the next call would send them to the workers again. Instead, the arrays
computed for the updates stay on the workers (their futures are kept), each with the value
committed from it; a later call whose shared value still equals that value, compared exactly on
the host, uses the workers' copy rather than sending the value. Any change to the shared value
(``set_value``, another function's update, a write into a borrowed array) makes it send the
value again.
"""

from __future__ import annotations

import math
import operator
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np
from dask.highlevelgraph import HighLevelGraph

from ...graph.basic import SharedVariable
from .blocks import fresh_name

_entries: dict[int, tuple[weakref.ref, Any, Any, np.ndarray]] = {}
_lock = threading.Lock()


def lookup(variable: SharedVariable, value: np.ndarray, client: Any) -> da.Array | None:
    """The workers' copy of ``variable``'s value, if they hold one equal to ``value``."""
    with _lock:
        entry = _entries.get(id(variable))
    if entry is None:
        return None
    reference, owner, (future, position), committed = entry
    if reference() is not variable or owner is not client or future.status != "finished":
        return None
    if committed.dtype != value.dtype or committed.shape != value.shape or not np.array_equal(committed, value):
        return None
    if position is None:
        name = future.key[0]
        graph = HighLevelGraph.from_collections(name, {future.key: future}, dependencies=[])
    else:  # one of a task's tuple of results
        name = fresh_name(variable.name or "shared")
        task = (operator.getitem, future, position)
        graph = HighLevelGraph.from_collections(name, {(name,) + (0,) * value.ndim: task}, dependencies=[])
    return da.Array(graph, name, chunks=tuple((length,) for length in value.shape), dtype=value.dtype)


def keep(variable: SharedVariable, client: Any, future: tuple, committed: np.ndarray) -> None:
    """Remembers that the workers hold ``committed``, ``variable``'s value, as ``future``: a
    future and ``None``, or a future of a tuple and the position in it."""
    key = id(variable)
    with _lock:
        _entries[key] = (weakref.ref(variable, lambda _, key=key: _forget(key)), client, future, committed)


def _forget(key: int) -> None:
    with _lock:
        _entries.pop(key, None)


def compute(client: Any, arrays: Sequence[da.Array]) -> tuple[list[Any], list[Any]] | None:
    """The arrays computed on ``client``'s cluster in one submission, optimized together, and
    where the workers keep each one's value: ``(future, None)`` for an array of one chunk,
    ``(future, position)`` for one taken from a task's tuple of results (the tuple is what is
    computed and brought back, rather than a task per array taking it out), ``None`` otherwise.
    ``None`` for arrays of unknown chunk lengths (computed otherwise)."""
    if any(math.isnan(length) for array in arrays for length in array.shape):
        return None
    sources: list[da.Array] = []  # what is computed: the arrays, or the tuples they come from
    where: list[tuple[int, int | None]] = []
    for array in arrays:
        part = getattr(array, "tuple_part", None)
        source = part[0] if part is not None else array
        index = next((k for k, known in enumerate(sources) if known.name == source.name), None)
        if index is None:
            index = len(sources)
            sources.append(source)
        where.append((index, part[1] if part is not None else None))
    persisted = client.persist(sources)
    chunk_futures = []
    for source in persisted:
        graph = source.__dask_graph__()
        chunk_futures.append([graph[key] for key in _flat(source.__dask_keys__())])
    gathered = iter(client.gather([future for futures in chunk_futures for future in futures]))
    computed = []
    for source, futures in zip(persisted, chunk_futures):
        if len(futures) == 1:
            computed.append(next(gathered))
            continue
        joined = np.empty(source.shape, dtype=source.dtype)
        for index in np.ndindex(source.numblocks):
            place = tuple(slice(sum(chunks[:k]), sum(chunks[: k + 1])) for chunks, k in zip(source.chunks, index))
            joined[place] = next(gathered)
        computed.append(joined)
    values, kept = [], []
    for array, (index, position) in zip(arrays, where):
        value, futures = computed[index], chunk_futures[index]
        if position is not None:
            values.append(np.asarray(value[position]))
            kept.append((futures[0], position))
        else:
            values.append(np.asarray(value).reshape(array.shape) if len(futures) == 1 else value)
            kept.append((futures[0], None) if len(futures) == 1 else None)
    return values, kept


def _flat(keys: Any) -> list:
    return [key for part in keys for key in _flat(part)] if isinstance(keys, list) else [keys]
