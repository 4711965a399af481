"""What every backend provides, and what the compiler tells it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..graph.basic import Apply
from ..graph.fgraph import FunctionGraph
from .profile import Profile


@dataclass(frozen=True)
class LinkOptions:
    """How to link one function: decided by ``sg.function`` and its mode."""

    name: str  #: the function's name, for error messages
    single_output: bool | None = False  #: return the one output (True), a list (False) or None
    allow_downcast: bool = False  #: convert arguments whose dtype does not cast safely
    apply_updates: bool = True  #: False: commit nothing and restore random state (``.eval()``)
    inplace: bool = True  #: let computations overwrite intermediate arrays and shared values
    debug: bool = False  #: check every node's dtype, static shape and finiteness
    profile: bool = False  #: time every node (``Program.profile``)


@dataclass
class Program:
    """A linked function and what explains it."""

    run: Callable[[tuple], Any]  #: called with the tuple of arguments
    order: list[Apply]  #: the nodes in the order the program computes them
    source: str = ""  #: the generated source, where there is one
    line_table: dict[int, Apply] = field(default_factory=dict)  #: source line -> its node
    profile: Profile | None = None  #: the times of the nodes, when linked with ``profile=True``
    #: Seconds spent in each step of linking (scheduling, code generation...), in order.
    pass_times: dict[str, float] = field(default_factory=dict)


class Backend:
    """Turns a rewritten ``FunctionGraph`` into a callable."""

    name = "backend"

    def link(self, fgraph: FunctionGraph, options: LinkOptions) -> Program:
        """The program computing ``fgraph``'s outputs and committing its updates."""
        raise NotImplementedError

    def compile_inner(self, fgraph: FunctionGraph) -> Callable[..., Sequence[Any]]:
        """A callable computing an inner graph (a loop's body, say): its inputs' values in, the
        list of its outputs' values out. Inner graphs hold no updates and read no shared state
        of their own: what they need comes in as inputs."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<backend {self.name!r}>"
