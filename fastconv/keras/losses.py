"""keras.losses: categorical_crossentropy (one-hot targets), sparse_categorical_crossentropy (class
indices), binary_crossentropy and mean_squared_error (mse), as names, functions and classes.

The functions compute Keras's per-sample values from y_true and y_pred (probabilities unless
from_logits=True; probabilities are clipped to [1e-7, 1 - 1e-7] as Keras does). In a model, compile
maps the loss onto fastconv.losses: a crossentropy after a softmax (or sigmoid) output layer is
computed from that layer's logits in the fused, stable form, as TensorFlow's Keras also does.
"""
import numpy as np

from .. import losses as core_losses
from ._compat import reject_non_default, unsupported
from .backend import epsilon

__all__ = ["Loss", "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "BinaryCrossentropy",
           "MeanSquaredError", "categorical_crossentropy", "sparse_categorical_crossentropy",
           "binary_crossentropy", "mean_squared_error", "mse", "MSE", "get"]


def _clipped_probabilities(y_pred):
    y_pred = np.asarray(y_pred, dtype=np.float64)
    y_pred = y_pred / y_pred.sum(axis=-1, keepdims=True)
    return np.clip(y_pred, epsilon(), 1.0 - epsilon())


def categorical_crossentropy(y_true, y_pred, from_logits=False):
    """Per-sample -sum(y_true * log(p)) for one-hot (or probability) rows y_true."""
    y_true = np.asarray(y_true, dtype=np.float64)
    log_p = core_losses.log_softmax(np.asarray(y_pred, dtype=np.float64)) if from_logits \
        else np.log(_clipped_probabilities(y_pred))
    return -(y_true * log_p).sum(axis=-1)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    """Per-sample -log(p[class]) for integer class indices y_true."""
    y_true = np.asarray(y_true).astype(np.int64).reshape(-1)
    log_p = core_losses.log_softmax(np.asarray(y_pred, dtype=np.float64)) if from_logits \
        else np.log(_clipped_probabilities(y_pred))
    return -log_p[np.arange(len(y_true)), y_true]


def binary_crossentropy(y_true, y_pred, from_logits=False):
    """Per-sample mean over the last axis of -(t log p + (1 - t) log(1 - p))."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if from_logits:
        elementwise = np.maximum(y_pred, 0) - y_pred * y_true + np.log1p(np.exp(-np.abs(y_pred)))
    else:
        p = np.clip(y_pred, epsilon(), 1.0 - epsilon())
        elementwise = -(y_true * np.log(p) + (1.0 - y_true) * np.log(1.0 - p))
    return elementwise.mean(axis=-1)


def mean_squared_error(y_true, y_pred):
    """Per-sample mean over the last axis of (y_true - y_pred)^2."""
    return np.square(np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)).mean(axis=-1)


mse = MSE = mean_squared_error


class Loss:
    """A Keras loss object: calling it gives the batch mean of the per-sample values.

    kind names the computation ('categorical', 'sparse_categorical', 'binary', 'mse'); the model
    maps it onto the fused fastconv loss (see Sequential.compile)."""

    kind = None
    name = None

    def __init__(self, from_logits=False, reduction="sum_over_batch_size", name=None):
        reject_non_default(type(self).__name__, {"reduction": (reduction, "sum_over_batch_size")},
                           {"reduction": "it averages the loss over the batch (reduction='sum_over_batch_size')"})
        self.from_logits = bool(from_logits)
        self.name = name or self.name

    def __call__(self, y_true, y_pred, sample_weight=None):
        reject_non_default(type(self).__name__, {"sample_weight": (sample_weight, None)},
                           {"sample_weight": "samples are weighted equally"})
        return float(np.mean(self._function(y_true, y_pred)))

    def _function(self, y_true, y_pred):
        return _FUNCTIONS[self.kind](y_true, y_pred, self.from_logits)

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}


class CategoricalCrossentropy(Loss):
    kind, name = "categorical", "categorical_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="categorical_crossentropy"):
        reject_non_default("CategoricalCrossentropy", {"label_smoothing": (label_smoothing, 0.0), "axis": (axis, -1)},
                           {"label_smoothing": "smooth the one-hot targets yourself before fit",
                            "axis": "classes are along the last axis"})
        super().__init__(from_logits, reduction, name)


class SparseCategoricalCrossentropy(Loss):
    kind, name = "sparse_categorical", "sparse_categorical_crossentropy"

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size",
                 name="sparse_categorical_crossentropy"):
        reject_non_default("SparseCategoricalCrossentropy", {"ignore_class": (ignore_class, None)},
                           {"ignore_class": "every class counts"})
        super().__init__(from_logits, reduction, name)


class BinaryCrossentropy(Loss):
    kind, name = "binary", "binary_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="binary_crossentropy"):
        reject_non_default("BinaryCrossentropy", {"label_smoothing": (label_smoothing, 0.0), "axis": (axis, -1)},
                           {"label_smoothing": "smooth the targets yourself before fit",
                            "axis": "the mean runs over the last axis"})
        super().__init__(from_logits, reduction, name)


class MeanSquaredError(Loss):
    kind, name = "mse", "mean_squared_error"

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error"):
        super().__init__(False, reduction, name)

    def _function(self, y_true, y_pred):
        return mean_squared_error(y_true, y_pred)


_FUNCTIONS = {"categorical": categorical_crossentropy, "sparse_categorical": sparse_categorical_crossentropy,
              "binary": binary_crossentropy}
_BY_NAME = {"categorical_crossentropy": CategoricalCrossentropy,
            "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
            "binary_crossentropy": BinaryCrossentropy, "mean_squared_error": MeanSquaredError,
            "mse": MeanSquaredError}
_BY_FUNCTION = {categorical_crossentropy: CategoricalCrossentropy,
                sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
                binary_crossentropy: BinaryCrossentropy, mean_squared_error: MeanSquaredError}


def get(identifier):
    """A Loss object from a name, one of this module's functions, a Loss, or a saved config."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        cls = get(identifier["class_name"]).__class__
        return cls(**identifier["config"])
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    for function, cls in _BY_FUNCTION.items():
        if identifier is function:
            return cls()
    shown = identifier if isinstance(identifier, str) else getattr(identifier, "__name__", repr(identifier))
    raise unsupported(f"the loss {shown!r}", f"it supports {', '.join(sorted(_BY_NAME))}")


def serialize(loss):
    return {"class_name": loss.name, "config": loss.get_config()}
