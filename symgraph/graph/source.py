"""Where the user built a node: the first stack frame outside the symgraph package.

Walking ``sys._getframe`` costs a few attribute reads per frame, unlike ``inspect.stack()``, which
reads every source file on the stack. The line's text is only read (through ``linecache``) when an
error message or a picture needs it.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import NamedTuple

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class Source(NamedTuple):
    """A file and line of user code."""

    filename: str
    lineno: int

    @property
    def code(self) -> str:
        return linecache.getline(self.filename, self.lineno).strip()

    def __str__(self) -> str:
        code = self.code
        where = f"{self.filename}:{self.lineno}"
        return f"{where}: {code}" if code else where


def describe(source: "Source | None") -> str:
    """``file:line: code`` for error messages, or ``<unknown location>``."""
    return str(source) if source is not None else "<unknown location>"


class _BuildContext(threading.local):
    """What the nodes being built now inherit: a forced source line and the gradient mark."""

    source: "Source | None" = None
    gradient: bool = False


build_context = _BuildContext()


def user_source() -> "Source | None":
    """The innermost frame of the calling stack whose code is not part of symgraph."""
    forced = build_context.source
    if forced is not None:
        return forced
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return None
    key = (frame.f_code.co_filename, frame.f_lineno)
    source = _interned.get(key)
    if source is None:  # one object per line of user code, however many nodes it builds
        source = _interned[key] = Source(*key)
    return source


_interned: dict[tuple[str, int], Source] = {}


def warn_user(message: str) -> None:
    """``warnings.warn(message)``, attributed to the innermost line of user code on the stack."""
    level, frame = 2, sys._getframe(1)  # stacklevel 2 is warn_user's caller
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, stacklevel=level)


@contextlib.contextmanager
def building(*, source: "Source | None" = None, gradient: bool | None = None) -> Iterator[None]:
    """Nodes built inside get ``source`` as their line and ``gradient`` as their gradient mark.

    Used by ``sg.grad`` (gradient nodes carry the line that called it) and by rewrites (a new node
    carries the line of the node it stands for).
    """
    saved = build_context.source, build_context.gradient
    if source is not None:
        build_context.source = source
    if gradient is not None:
        build_context.gradient = gradient
    try:
        yield
    finally:
        build_context.source, build_context.gradient = saved
