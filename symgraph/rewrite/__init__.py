"""Graph rewrites: each a pure function from a ``FunctionGraph`` to a new one.

``specialize_phase`` is part of a graph's meaning and runs in every mode; ``optimize`` runs the
optimizing rewrites of a mode.
"""
from .optimize import optimize
from .phase import specialize_phase

__all__ = ["optimize", "specialize_phase"]
