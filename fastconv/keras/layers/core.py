"""Keras 2's keras.layers.core import path (Dense, Dropout, Activation, Flatten)."""
from . import Activation, Dense, Dropout, Flatten  # noqa: F401
