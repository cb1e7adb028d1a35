"""Keras 2's keras.layers.pooling import path."""
from . import AveragePooling2D, AvgPool2D, MaxPool2D, MaxPooling2D

__all__ = ["AveragePooling2D", "AvgPool2D", "MaxPool2D", "MaxPooling2D"]
