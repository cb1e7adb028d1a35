"""Keras 2's keras.layers.convolutional import path."""
from . import AveragePooling2D, AvgPool2D, Conv2D, Convolution2D, MaxPool2D, MaxPooling2D

__all__ = ["AveragePooling2D", "AvgPool2D", "Conv2D", "Convolution2D", "MaxPool2D", "MaxPooling2D"]
