"""``sg.save`` and ``sg.load``: a trained model outlives its process, safely.

A file is one zip archive: ``symgraph.json``, the graph as data (the format is described in
``docs/FORMAT.md``), and one ``.npy`` file per array (shared values, large constants). Functions
are saved as what ``sg.function`` was given (the user's graph and the compile options, not the
rewritten graph) and compiled again when loaded; objects saved together share what they shared
(a train and a predict function share their weights again).

Loading runs no code from the file: no pickle, no ``eval``, no import of a module the file names.
An op is found by its class's registered name (``module.qualname``; a user's op class registers
itself when its module is imported, so import it before loading), an elementwise op by the name
it was registered under. A file that is truncated, malformed, hostile or written by a newer
symgraph gives a ``LoadError`` saying what is wrong, and nothing is loaded.
"""

from __future__ import annotations

import gc
import os
from typing import IO, Any

from ..errors import LoadError
from ..graph.basic import STATE_LOCK
from .archive import Archive, document_text, write_archive
from .reader import Reader
from .registry import register_elemwise
from .writer import FORMAT_VERSION, Writer

__all__ = ["FORMAT_VERSION", "load", "register_elemwise", "save"]


def save(path: str | os.PathLike | IO[bytes], obj: Any) -> None:
    """Write ``obj`` into one file: a compiled function, a shared variable, a variable (its whole
    graph), a numpy array, numbers and strings, or lists, tuples and dicts of them.

    Values, random generator states and optimizer state (shared variables too) are written as
    they are now, all read at one moment (no call of a compiled function commits in between).
    ``path`` is a file name (written whole or not at all) or a binary file object.

    >>> sg.save("model.sg", {"train": train, "predict": predict})
    """
    enabled = gc.isenabled()
    gc.disable()  # the tables are many small objects: no use scanning them while they grow
    try:
        with STATE_LOCK:  # one consistent snapshot of every shared value
            writer = Writer()
            text = document_text(writer.document(obj))
            write_archive(path, text, writer.arrays)
    finally:
        if enabled:
            gc.enable()


def load(path: str | os.PathLike | IO[bytes]) -> Any:
    """What :func:`save` wrote, in the same structure: functions compiled again, shared variables
    with their saved values (shared again by the functions that shared them).

    Any problem with the file raises ``sg.errors.LoadError`` naming it, and nothing is loaded; a
    path that cannot be opened raises ``OSError`` as ``open`` does.

    >>> model = sg.load("model.sg"); model["predict"](images)
    """
    # Rebuilding a graph makes many objects in reference cycles (nodes and their outputs): the
    # cyclic collector would rescan the heap again and again meanwhile, as when compiling.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _load(path)
    finally:
        if enabled:
            gc.enable()


def _load(path: str | os.PathLike | IO[bytes]) -> Any:
    opened = not hasattr(path, "read")
    stream = open(path, "rb") if opened else path  # a path that cannot be opened: OSError  # noqa: SIM115
    reader = None
    try:
        archive = Archive(stream, str(path) if opened else getattr(stream, "name", "the file"))
        try:
            reader = Reader(archive.document(), archive)
            return reader.load()
        finally:
            archive.close()
    except LoadError:
        raise
    except RecursionError:
        raise LoadError(f"{_where(reader)}: the file nests too deeply") from None
    except Exception as error:
        raise LoadError(f"{_where(reader)}: {type(error).__name__}: {error}") from error
    finally:
        if opened:
            stream.close()


def _where(reader: Reader | None) -> str:
    return f"cannot load {reader.where}" if reader is not None else "cannot load the file"
