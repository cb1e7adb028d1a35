"""keras.metrics: accuracy. compile(metrics=['accuracy']) (or 'acc') picks Keras's variant from the
shapes, as Keras does: binary accuracy for one output, sparse categorical for class-index targets,
categorical for one-hot targets. The functions give Keras's per-sample values."""
import numpy as np

from ._compat import unsupported

__all__ = ["categorical_accuracy", "sparse_categorical_accuracy", "binary_accuracy", "accuracy_names"]

ACCURACY_NAMES = ("accuracy", "acc")


def categorical_accuracy(y_true, y_pred):
    return (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(np.float32)


def sparse_categorical_accuracy(y_true, y_pred):
    y_true = np.asarray(y_true).reshape(len(y_pred), -1)[:, 0]
    return (y_true.astype(np.int64) == np.argmax(y_pred, axis=-1)).astype(np.float32)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    return (np.asarray(y_true) == (np.asarray(y_pred) > threshold)).mean(axis=-1).astype(np.float32)


def accuracy_names(metrics):
    """The metric names compile accepts: a list of 'accuracy' / 'acc' (UnsupportedError for others)."""
    if metrics is None:
        return []
    if isinstance(metrics, (str, dict)) or not hasattr(metrics, "__iter__"):
        metrics = [metrics]
    names = []
    for metric in metrics:
        if not (isinstance(metric, str) and metric in ACCURACY_NAMES):
            shown = metric if isinstance(metric, str) else getattr(metric, "__name__", repr(metric))
            raise unsupported(f"the metric {shown!r}", "it reports metrics=['accuracy'] (or 'acc') beside the loss")
        if metric not in names:
            names.append(metric)
    return names
