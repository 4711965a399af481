"""The compiler: ``sg.function`` turns a graph into a Python callable.

``function`` gathers the graph (givens, phases, updates) and checks it; ``rewrite`` optimizes it;
``memory`` decides which arrays may be overwritten and which outputs must be copied; ``linker``
writes one straight-line Python function per graph.
"""
