"""fastconv.keras: Keras's Sequential API on fastconv's layers and kernels.

A program written for Keras runs after replacing its ``keras`` (or ``tensorflow.keras``) import prefix
with ``fastconv.keras``::

    from fastconv.keras.models import Sequential
    from fastconv.keras.layers import Conv2D, MaxPooling2D, Flatten, Dense

Modules as in Keras: models, layers, optimizers, losses, metrics, callbacks, utils, regularizers,
datasets, activations, backend. Everything is built on the core API (fastconv.layers,
fastconv.Sequential, fastconv.optim, fastconv.losses, fastconv.callbacks). What fastconv cannot
reproduce raises UnsupportedError, naming it and what is supported.
"""
from . import (activations, backend, callbacks, datasets, layers, losses, metrics, models,  # noqa: F401
               optimizers, regularizers, utils)
from ._compat import UnsupportedError
from .layers import Input
from .models import Model, Sequential, load_model

__all__ = ["Sequential", "Model", "Input", "load_model", "UnsupportedError", "activations", "backend", "callbacks",
           "datasets", "layers", "losses", "metrics", "models", "optimizers", "regularizers", "utils"]
