"""Keras 2's keras.utils.np_utils import path."""
from . import to_categorical  # noqa: F401
