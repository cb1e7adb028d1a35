"""keras.activations: the activation names layers accept, their NumPy functions, and the core layer of each.

Supported: relu, sigmoid, tanh, softmax, linear (None). Inside a model each is a fastconv layer
(layers.ReLU, layers.Sigmoid, layers.Tanh, or the 2-D Softmax below) run after the layer's own
computation, so the backward of an activation is the core's.
"""
import numpy as np

from .. import layers as core_layers
from .. import losses as core_losses
from ._compat import unsupported

__all__ = ["relu", "sigmoid", "tanh", "softmax", "linear", "get", "serialize", "SUPPORTED"]

SUPPORTED = ("relu", "sigmoid", "tanh", "softmax", "linear")


def relu(x):
    return np.maximum(x, 0)


def sigmoid(x):
    return core_losses.sigmoid(x)


def tanh(x):
    return np.tanh(x)


def softmax(x, axis=-1):
    x = np.asarray(x)
    exps = np.exp(x - x.max(axis=axis, keepdims=True))
    return exps / exps.sum(axis=axis, keepdims=True)


def linear(x):
    return x


_FUNCTIONS = {"relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax, "linear": linear}


def get(identifier):
    """The canonical name of an activation given by name, by one of this module's functions, or None."""
    if identifier is None:
        return "linear"
    if isinstance(identifier, str) and identifier.lower() in SUPPORTED:
        return identifier.lower()
    for name, function in _FUNCTIONS.items():
        if identifier is function:
            return name
    shown = identifier if isinstance(identifier, str) else getattr(identifier, "__name__", repr(identifier))
    raise unsupported(f"activation {shown!r}", f"it supports the activations {', '.join(SUPPORTED)}")


def serialize(identifier):
    return get(identifier)


class SoftmaxLayer(core_layers.Layer):
    """Softmax over the features of (N, features) inputs, with its backward y * (g - sum(g * y))."""

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise unsupported(f"softmax on inputs of per-sample shape {tuple(input_shape)}",
                              "it applies softmax to flat (N, features) inputs only (put Flatten before it)")
        return tuple(input_shape)

    def forward(self, x, training=False):
        y = core_losses.softmax(x)
        self._cache = y if training else None
        return y

    def backward(self, grad):
        y = self._cached()
        return y * (grad - (grad * y).sum(axis=1, keepdims=True))


def core_layer(name):
    """A new fastconv layer computing the activation `name` (None for linear)."""
    factories = {"relu": core_layers.ReLU, "sigmoid": core_layers.Sigmoid, "tanh": core_layers.Tanh,
                 "softmax": SoftmaxLayer}
    return factories[name]() if name in factories else None
