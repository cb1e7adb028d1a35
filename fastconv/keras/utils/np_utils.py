"""Keras 2's keras.utils.np_utils import path."""
from . import to_categorical

__all__ = ["to_categorical"]
