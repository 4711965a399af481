"""Neural-network operations: activations, losses, dropout, batch normalization, convolution and
pooling. Each is differentiable by ``sg.grad``."""
from ..ops.elemwise import tanh
from .activations import log_softmax, relu, sigmoid, softmax, softplus
from .dropout import dropout
from .losses import binary_crossentropy, categorical_crossentropy

__all__ = [
    "sigmoid", "tanh", "relu", "softplus", "softmax", "log_softmax",
    "categorical_crossentropy", "binary_crossentropy", "dropout",
]
