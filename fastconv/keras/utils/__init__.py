"""keras.utils: to_categorical (also as utils.np_utils.to_categorical) and set_random_seed."""
import numpy as np

from .. import backend
from .._compat import unsupported

__all__ = ["to_categorical", "set_random_seed", "np_utils"]


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot rows for integer class labels: shape y.shape + (num_classes,) (a trailing axis of 1 is
    dropped first, as Keras does); num_classes defaults to max(y) + 1."""
    y = np.asarray(y)
    if y.dtype.kind == "f" and not np.array_equal(y, np.round(y)):
        raise ValueError("to_categorical needs whole-number class labels")
    if y.dtype.kind not in "iuf" and y.size:
        raise TypeError(f"to_categorical needs integer class labels, got dtype {y.dtype}")
    y = y.astype(np.int64)
    shape = y.shape[:-1] if y.ndim > 1 and y.shape[-1] == 1 else y.shape
    y = y.ravel()
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must be in [0, num_classes={num_classes}), got [{y.min()}, {y.max()}]")
    categorical = np.zeros((y.size, num_classes), dtype=dtype)
    categorical[np.arange(y.size), y] = 1
    return categorical.reshape(shape + (num_classes,))


def set_random_seed(seed):
    """Seed NumPy's global generator and the weights (and shuffling) of the models created afterwards."""
    np.random.seed(seed)
    backend.set_seed(seed)


def plot_model(*args, **kwargs):
    raise unsupported("utils.plot_model", "model.summary() prints the layers")


from . import np_utils  # noqa: E402  (Keras 2's keras.utils.np_utils)
