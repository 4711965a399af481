"""symgraph: a small symbolic graph compiler on numpy.

Declare symbolic tensors, build a graph of operations on them, differentiate it with ``sg.grad``,
and compile it with ``sg.function`` into a fast Python callable::

    import symgraph as sg
    x = sg.matrix('x')
    W = sg.shared(np.zeros((3, 2)), name='W')
    y = sg.nn.softmax(x @ W)
    f = sg.function([x], y)
"""

from .config import config
from .errors import SymgraphError
from .graph.basic import Apply, Constant, SharedVariable, Variable
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
from .ops.subtensor import inc_subtensor, set_subtensor
from .variables import (
    imatrix,
    iscalar,
    ivector,
    lmatrix,
    lscalar,
    lvector,
    matrix,
    scalar,
    shared,
    tensor,
    tensor3,
    tensor4,
    vector,
)
from .compile.function import Function, function
from .grad import grad, hessian, jacobian, verify_grad
from .ops.random import RandomStreams, seed
from .ops.shape import arange
from . import nn, optim
from .nn import dropout
from .printing import debugprint
from .viz import plot, to_dot, to_networkx

_methods.install()

__version__ = "0.1.0"
