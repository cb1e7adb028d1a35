"""Ready-made models: LeNet-5 (the CLI's default) and a plain multilayer perceptron.

``get(name, **kwargs)`` builds one by name (what ``fastconv train --model NAME`` uses).
"""
import numpy as np

from . import layers
from .model import Sequential

__all__ = ["lenet5", "mlp", "get", "available"]


def lenet5(seed=None, dtype=np.float32, algo="auto", kernel_initializer="pytorch", input_shape=(1, 28, 28),
           num_classes=10):
    """LeNet-5 for 28x28 digits, as PyTorch tutorials write it (61,706 parameters):

    conv 6@5x5 pad 2 - relu - maxpool 2 - conv 16@5x5 - relu - maxpool 2 - flatten
    - dense 120 - relu - dense 84 - relu - dense num_classes (logits).
    kernel_initializer "pytorch" (default) draws as torch.nn's default init; "he_uniform" etc. also work.
    """
    init = {"kernel_initializer": kernel_initializer}
    return Sequential([
        layers.Conv2D(6, 5, padding=2, algo=algo, **init),
        layers.ReLU(),
        layers.MaxPool2D(2),
        layers.Conv2D(16, 5, algo=algo, **init),
        layers.ReLU(),
        layers.MaxPool2D(2),
        layers.Flatten(),
        layers.Dense(120, **init),
        layers.ReLU(),
        layers.Dense(84, **init),
        layers.ReLU(),
        layers.Dense(num_classes, **init),
    ], input_shape=input_shape, seed=seed, dtype=dtype, name="lenet5").build()


def mlp(hidden=(256, 128), seed=None, dtype=np.float32, kernel_initializer="pytorch", input_shape=(1, 28, 28),
        num_classes=10):
    """A dense network: flatten - (dense h - relu) for h in hidden - dense num_classes (logits)."""
    stack = [layers.Flatten()]
    for units in hidden:
        stack += [layers.Dense(units, kernel_initializer=kernel_initializer), layers.ReLU()]
    stack.append(layers.Dense(num_classes, kernel_initializer=kernel_initializer))
    return Sequential(stack, input_shape=input_shape, seed=seed, dtype=dtype, name="mlp").build()


_MODELS = {"lenet5": lenet5, "mlp": mlp}


def available():
    """Names get() accepts."""
    return sorted(_MODELS)


def get(name, **kwargs):
    """A model from its name (ValueError for an unknown one)."""
    try:
        factory = _MODELS[name.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}") from None
    return factory(**kwargs)
