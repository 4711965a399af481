"""The errors symgraph raises. Each says what was wrong, where the user built it, and what to do.

Every class derives from :class:`SymgraphError` and from the builtin exception a Python user would
expect (``TypeError`` for a wrong dtype, ``ValueError`` for a wrong shape or value), so both
``except sg.errors.InputError`` and ``except TypeError`` work.
"""

from __future__ import annotations


class SymgraphError(Exception):
    """Base class of every error symgraph raises on purpose."""


class ShapeError(SymgraphError, ValueError):
    """Static shapes that cannot work together, found while building the graph."""


class DTypeError(SymgraphError, TypeError):
    """A dtype an operation cannot take."""


class InputError(SymgraphError, TypeError, ValueError):
    """An argument of a compiled function (or of ``set_value``) that does not fit its input."""


class MissingInputError(SymgraphError, ValueError):
    """The graph needs a variable that is neither an input of the function nor computable."""


class UnusedInputError(SymgraphError, ValueError):
    """An input of ``sg.function`` that the outputs and updates do not need."""


class UpdateError(SymgraphError, ValueError):
    """An update that cannot apply: wrong target, dtype or shape, or two updates of one variable."""


class PhaseError(SymgraphError, ValueError):
    """A graph with phase-dependent nodes (dropout, batch_norm) compiled without a phase."""


class DisconnectedInputError(SymgraphError, ValueError):
    """``sg.grad`` was asked for the gradient of a variable the cost does not depend on."""


class GradientError(SymgraphError, AssertionError):
    """``sg.verify_grad`` found symbolic and numeric gradients that disagree."""


class LoadError(SymgraphError, ValueError):
    """``sg.load`` was given a file it cannot load (truncated, malformed, hostile, an unknown op,
    written by a newer symgraph); the message says what is wrong. Nothing was loaded."""


class ExportError(SymgraphError, ValueError):
    """``sg.export_onnx`` was given a function it cannot export: one with updates or random draws,
    or a node whose op has no ONNX form (named in the message)."""


class NodeError(SymgraphError):
    """An error raised while a compiled function computed a node.

    The message names the operation, the shapes and dtypes of its inputs, and the line of user code
    that built the node. Raised as a class that also derives from the original exception's class
    (a ``ValueError`` from numpy stays catchable as ``ValueError``); the original is the
    ``__cause__``.
    """

    _subclasses: dict[type, type] = {}

    def __init__(self, message: str):
        # Not the original class's constructor, whose arguments may be its own (numpy's
        # ``_ArrayMemoryError(shape, dtype)``, say): only the message.
        BaseException.__init__(self, message)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    @classmethod
    def wrapping(cls, original: BaseException, message: str) -> "NodeError":
        base = type(original)
        if not issubclass(base, Exception) or issubclass(base, SymgraphError):
            base = RuntimeError
        subclass = cls._subclasses.get(base)
        if subclass is None:
            try:
                subclass = type(f"NodeError[{base.__name__}]", (cls, base), {"__module__": cls.__module__})
                subclass(message)  # some classes can be combined but not made this way
            except Exception:
                subclass = type("NodeError[RuntimeError]", (cls, RuntimeError), {"__module__": cls.__module__})
            cls._subclasses[base] = subclass
        return subclass(message)
