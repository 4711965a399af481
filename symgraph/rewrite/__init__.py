"""Graph rewrites: each a pure function from a graph to a new one.

``phase.specialize_phase`` is part of a graph's meaning and runs in every mode;
``optimize.optimize`` runs the optimizing rewrites (folding, algebraic identities, merging).
"""
