"""Compilation modes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    """What a compilation does beyond a graph's meaning (phases and numerical stability, which
    every mode keeps), and the backend it runs on unless ``sg.function`` is given one."""

    name: str
    optimize: bool  #: run the optimizing rewrites (folding, simplification, merging)
    inplace: bool  #: let computations overwrite intermediate arrays and shared values in place
    debug: bool  #: check every node's dtype, static shape and finiteness
    backend: str = "numpy"


MODES = {
    "fast_run": Mode("fast_run", optimize=True, inplace=True, debug=False),
    "fast_compile": Mode("fast_compile", optimize=False, inplace=False, debug=False),
    "debug": Mode("debug", optimize=True, inplace=False, debug=True, backend="python"),
}


def get_mode(mode: "str | Mode | None") -> Mode:
    """The :class:`Mode` named ``mode`` (``None``: ``'fast_run'``); a ``ValueError`` for an unknown name."""
    if mode is None:
        return MODES["fast_run"]
    if isinstance(mode, Mode):
        return mode
    try:
        return MODES[mode.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"mode must be one of {sorted(MODES)}, not {mode!r}") from None
