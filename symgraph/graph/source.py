"""Where the user built a node: the first stack frame outside the symgraph package.

Walking ``sys._getframe`` costs a few attribute reads per frame, unlike ``inspect.stack()``, which
reads every source file on the stack. The line's text is only read (through ``linecache``) when an
error message or a picture needs it.
"""

from __future__ import annotations

import linecache
import os
import sys
import threading
import warnings
from typing import Any, NamedTuple

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


class Scope:
    """A user-level call that built a group of nodes: a ``batch_norm``, a loss, an optimizer's
    update of one parameter, a dropout, a subgraph. Pictures draw each scope as one box.

    ``parent`` is the enclosing scope (a ``batch_norm`` inside a subgraph), ``source`` the user's
    line that made the call. Scopes compare by identity: two calls are two groups.
    """

    __slots__ = ("name", "parent", "source")

    def __init__(self, name: str, parent: "Scope | None" = None, source: "Source | None" = None):
        self.name = name
        self.parent = parent
        self.source = source

    def path(self) -> tuple["Scope", ...]:
        """The scopes from the outermost to this one."""
        chain: list[Scope] = []
        scope: Scope | None = self
        while scope is not None:
            chain.append(scope)
            scope = scope.parent
        return tuple(reversed(chain))

    def __getstate__(self) -> tuple:
        return (self.name, self.parent, self.source)

    def __setstate__(self, state: tuple) -> None:
        self.name, self.parent, self.source = state

    def __repr__(self) -> str:
        return f"Scope({' / '.join(scope.name for scope in self.path())})"


class _BuildContext(threading.local):
    """What the nodes being built now inherit: a forced source line, the gradient mark and the
    scope (the user-level call building them)."""

    source: "Source | None" = None
    gradient: bool = False
    scope: "Scope | None" = None


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


_KEEP = object()


class building:  # noqa: N801 (used as a function: ``with building(source=...):``)
    """Nodes built inside get ``source`` as their line, ``gradient`` as their gradient mark and
    ``scope`` as their scope (``None`` for none).

    Used by ``sg.grad`` (gradient nodes carry the line that called it) and by rewrites (a new node
    carries the line, the mark and the scope of the node it stands for).

    (A class, not ``contextlib.contextmanager``: compiling enters one per rewritten node, and a
    generator-based context manager costs several times as much.)
    """

    __slots__ = ("gradient", "saved", "scope", "source")

    def __init__(self, *, source: "Source | None" = None, gradient: bool | None = None, scope: Any = _KEEP):
        self.source, self.gradient, self.scope = source, gradient, scope

    @classmethod
    def like(cls, node: Any) -> "building":
        """Nodes built inside carry ``node``'s line, gradient mark and scope (what a rewrite builds
        in the place of ``node``)."""
        return cls(source=node.source, gradient=node.gradient, scope=node.scope)

    def __enter__(self) -> None:
        context = build_context
        self.saved = context.source, context.gradient, context.scope
        if self.source is not None:
            context.source = self.source
        if self.gradient is not None:
            context.gradient = self.gradient
        if self.scope is not _KEEP:
            context.scope = self.scope

    def __exit__(self, *exception: Any) -> None:
        build_context.source, build_context.gradient, build_context.scope = self.saved


class in_scope:  # noqa: N801 (used as a function: ``with in_scope("batch_norm"):``)
    """Nodes built inside belong to a new scope ``name`` (inside the current one), whose source
    is the user's line calling the library function that opened it.

    (A class, not ``contextlib.contextmanager``: the frames of its methods lie inside symgraph,
    so the user's line is still the first frame outside it.)"""

    def __init__(self, name: str):
        self.name = name
        self._saved: Scope | None = None

    def __enter__(self) -> Scope:
        opened = Scope(self.name, build_context.scope, user_source())
        self._saved = build_context.scope
        build_context.scope = opened
        return opened

    def __exit__(self, *exception: Any) -> None:
        build_context.scope = self._saved
