"""Random draws under dask: one stream per chunk, derived from the node's generator.

A random node's generator (a shared variable) advances once per call, by four 64-bit words,
whatever the size of the draw: those words are the call's key. Each chunk of the sample draws
from its own generator, ``SeedSequence(key, spawn_key=chunk index)``, so the numbers depend on the
seed, the number of calls before and the chunking, never on which worker computes a chunk, in
which order, or how many workers there are. The chunks follow the array the draw is made for
(``x.shape``, or the array a dropout mask multiplies), so that a mask is chunked as its
activation.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np

from ...graph.basic import Apply
from ...nn.dropout import BernoulliMask
from ...ops.random import GeneratorType, RandomOp
from .blocks import Call, GuardedChunk, fresh_name, is_lazy, shape_hints, summary
from .kernels import Kernel, dask_kernel, host

KEY_WORDS = 4  #: how far a generator advances per call: the words of the call's key


def call_key(generator: np.random.Generator) -> tuple[np.random.Generator, list[int]]:
    """The generator advanced by one call (a new object: the shared one is never changed before
    the call commits), and the key drawn on the way."""
    advanced = GeneratorType().copy_value(generator)
    key = [int(word) for word in advanced.bit_generator.random_raw(KEY_WORDS)]
    return advanced, key


def chunk_generator(kind: type, key: list[int], block_id: tuple) -> np.random.Generator:
    """The generator of one chunk: the call's key, spawned at the chunk's index."""
    return np.random.Generator(kind(np.random.SeedSequence(key, spawn_key=tuple(block_id))))


class DrawChunk:
    """Draws one chunk of a random node's sample with its op's own ``perform`` (a plain object,
    so that the task pickles with just the op and the key). ``anchored``: the first argument is
    the block of the array the sample is drawn for, which it does not read."""

    def __init__(self, op: Any, kind: type, key: list[int], anchored: bool):
        self.op, self.kind, self.key, self.anchored = op, kind, key, anchored

    def __call__(self, *parameters: Any, block_id: tuple = (), block_info: Any = None) -> np.ndarray:
        if self.anchored:
            parameters = parameters[1:]
        shape = block_info[None]["chunk-shape"]
        generator = chunk_generator(self.kind, self.key, block_id)
        _, sample = self.op.perform(generator, np.array(shape, dtype=np.int64), *parameters)
        return sample


def _draw(op: Any, node: Apply) -> Kernel:
    dtype = node.outputs[1].type.numpy_dtype
    where = summary(node, node.inputs[2:])  # a chunk is drawn from the parameters

    def run(call: Call, generator: Any, size: Any, *parameters: Any) -> tuple:
        shape = tuple(int(length) for length in host(size, "the size of a random draw"))
        advanced, key = call_key(generator)
        chunks = call.hinted_chunks(shape) or da.core.normalize_chunks("auto", shape, dtype=dtype)
        # The array the sample is drawn for, chunked alike, is given to each chunk's task (which
        # does not read it): the draw is then made where that chunk is, often in the same task.
        anchor = call.anchor(shape, chunks)
        draw = GuardedChunk(DrawChunk(op, type(generator.bit_generator), key, anchor is not None), where)
        # Parameters computed by dask are 0-d arrays, given to every chunk; the others as they are.
        lazy = anchor is None and any(is_lazy(parameter) for parameter in parameters)
        sample = da.map_blocks(
            draw,
            *([anchor] if anchor is not None else []),
            *parameters,
            chunks=chunks,
            dtype=dtype,
            new_axis=list(range(len(shape))) if lazy else None,
            name=fresh_name(op.name),
            meta=np.empty((0,) * len(shape), dtype=dtype),
        )
        return advanced, sample

    return Kernel(run, hints=tuple(shape_hints(node.inputs[1])), late=True, wants_partners=True)


dask_kernel.register(RandomOp)(_draw)
dask_kernel.register(BernoulliMask)(_draw)
