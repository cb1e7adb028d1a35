"""Keras 2's keras.layers.core import path (Dense, Dropout, Activation, Flatten)."""
from . import Activation, Dense, Dropout, Flatten

__all__ = ["Activation", "Dense", "Dropout", "Flatten"]
