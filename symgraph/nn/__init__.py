"""Neural-network operations: activations, losses, dropout, batch normalization, convolution and
pooling. Each is differentiable by ``sg.grad``."""

from ..ops.elemwise import tanh
from . import stabilize  # sg.log and sg.log1p build the stable forms of log(sigmoid(x)), ...
from .activations import log_softmax, relu, sigmoid, softmax, softplus
from .batchnorm import batch_norm
from .conv import conv2d
from .dropout import dropout
from .losses import binary_crossentropy, categorical_crossentropy
from .pool import avg_pool2d, max_pool2d, pool_2d

__all__ = [
    "avg_pool2d",
    "batch_norm",
    "binary_crossentropy",
    "categorical_crossentropy",
    "conv2d",
    "dropout",
    "log_softmax",
    "max_pool2d",
    "pool_2d",
    "relu",
    "sigmoid",
    "softmax",
    "softplus",
    "tanh",
]
