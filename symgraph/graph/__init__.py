"""The graph itself: types, variables, nodes (``Apply``), ops' base class and traversal; it imports no op."""
