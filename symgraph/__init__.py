"""symgraph: a small symbolic graph compiler on numpy.

Declare symbolic tensors, build a graph of operations on them, differentiate it with ``sg.grad``,
and compile it with ``sg.function`` into a fast Python callable::

    import symgraph as sg
    x = sg.matrix('x')
    W = sg.shared(np.zeros((3, 2)), name='W')
    y = sg.nn.softmax(x @ W)
    f = sg.function([x], y)
"""

from . import errors
from .config import config
from .errors import SymgraphError
from .graph.basic import Apply, Constant, SharedVariable, Variable
from .graph.fgraph import FunctionGraph
from .graph.op import Op
from .graph.type import TensorType
from .ops import methods as _methods
from .ops.basic import as_tensor, cast, constant
from .ops.elemwise import (
    abs,
    and_,
    ceil,
    clip,
    cos,
    eq,
    exp,
    expm1,
    floor,
    ge,
    gt,
    invert,
    le,
    log,
    log1p,
    lt,
    maximum,
    minimum,
    neq,
    or_,
    round,
    sign,
    sin,
    sqrt,
    square,
    switch,
    tanh,
    where,
    xor,
)
from .ops.linalg import dot, matmul, outer, tensordot
from .ops.reduce import argmax, argmin, max, mean, min, prod, std, sum, var
from .ops.shape import (
    alloc,
    broadcast_to,
    concatenate,
    dimshuffle,
    expand_dims,
    flatten,
    ones,
    ones_like,
    reshape,
    shape,
    stack,
    transpose,
    zeros,
    zeros_like,
)
from .ops.ifelse import ifelse
from .ops.scan_build import scan, until
from .ops.subgraph import OpFromGraph
from .ops.subtensor import inc_subtensor, set_subtensor
from .variables import (
    bmatrix,
    bscalar,
    btensor3,
    btensor4,
    bvector,
    dmatrix,
    dscalar,
    dtensor3,
    dtensor4,
    dvector,
    fmatrix,
    fscalar,
    ftensor3,
    ftensor4,
    fvector,
    imatrix,
    iscalar,
    itensor3,
    itensor4,
    ivector,
    lmatrix,
    lscalar,
    ltensor3,
    ltensor4,
    lvector,
    matrix,
    scalar,
    shared,
    tensor,
    tensor3,
    tensor4,
    vector,
)
from .compile.function import Function, In, function
from .grad import grad, hessian, jacobian, verify_grad
from .ops.random import RandomStreams, seed
from .ops.shape import arange
from . import nn, optim
from .nn import dropout
from .printing import debugprint
from .serialize import load, save
from .onnx import export_onnx
from .errors import LoadError
from .viz import plot, to_networkx
from .viz_dot import to_dot

_methods.install()

__version__ = "0.3.0"

# What ``from symgraph import *`` gives. ``sum``, ``max``, ``min`` and ``abs`` shadow Python's
# builtins when star-imported, as numpy's do; ``import symgraph as sg`` is the intended use.
__all__ = [
    # declaring
    "scalar", "vector", "matrix", "tensor3", "tensor4", "tensor",
    "dscalar", "dvector", "dmatrix", "dtensor3", "dtensor4",
    "fscalar", "fvector", "fmatrix", "ftensor3", "ftensor4",
    "iscalar", "ivector", "imatrix", "itensor3", "itensor4",
    "lscalar", "lvector", "lmatrix", "ltensor3", "ltensor4",
    "bscalar", "bvector", "bmatrix", "btensor3", "btensor4",
    "shared", "constant", "as_tensor", "config",
    # graph objects
    "Variable", "SharedVariable", "Constant", "Apply", "TensorType", "Function", "FunctionGraph",
    # defining ops and subgraphs, loops and branches
    "Op", "OpFromGraph", "scan", "until", "ifelse",
    # elementwise
    "abs", "exp", "log", "log1p", "expm1", "sqrt", "square", "sign", "sin", "cos", "tanh",
    "floor", "ceil", "round", "maximum", "minimum", "clip", "where", "switch",
    "eq", "neq", "lt", "le", "gt", "ge", "and_", "or_", "xor", "invert", "cast",
    # reductions and linear algebra
    "sum", "mean", "max", "min", "prod", "var", "std", "argmax", "argmin",
    "dot", "matmul", "outer", "tensordot",
    # shapes and indexing
    "reshape", "flatten", "dimshuffle", "transpose", "expand_dims", "broadcast_to", "shape",
    "concatenate", "stack", "arange", "alloc", "zeros", "ones", "zeros_like", "ones_like",
    "set_subtensor", "inc_subtensor",
    # randomness, dropout, compiling, gradients
    "RandomStreams", "seed", "dropout", "function", "In",
    "grad", "jacobian", "hessian", "verify_grad",
    # looking at graphs
    "debugprint", "to_networkx", "to_dot", "plot",
    # saving, loading, exporting
    "save", "load", "LoadError", "export_onnx",
    # submodules and the errors' base class
    "nn", "optim", "errors", "SymgraphError",
]  # fmt: skip
