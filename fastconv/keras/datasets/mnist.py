"""keras.datasets.mnist.load_data() on fastconv's loader (fastconv.datasets.load_mnist).

The four MNIST IDX files are read from the cache directory, $FASTCONV_DATA if set, else
~/.cache/fastconv/mnist: as they are when all four are there (gzipped or not), otherwise
downloaded there first (and checked). To use local copies, point FASTCONV_DATA at the directory
holding them, e.g. FASTCONV_DATA=path/to/mnist python train.py.
"""
import os

import numpy as np

from ... import datasets

__all__ = ["load_data"]


def load_data(path="mnist.npz"):
    """((x_train, y_train), (x_test, y_test)) as Keras returns them: uint8 images (60000, 28, 28) and
    (10000, 28, 28) with values 0-255, uint8 labels. `path`: an existing Keras mnist.npz file
    (arrays x_train, y_train, x_test, y_test) is read instead when given."""
    if path != "mnist.npz" and os.path.isfile(path):
        with np.load(path, allow_pickle=False) as archive:
            return (archive["x_train"], archive["y_train"]), (archive["x_test"], archive["y_test"])
    directory = datasets.cache_dir()
    if _holds_mnist(directory):
        (x_train, y_train), (x_test, y_test) = datasets.load_mnist(data_dir=directory)
    else:
        (x_train, y_train), (x_test, y_test) = datasets.load_mnist()
    return (_as_bytes(x_train), y_train.astype(np.uint8)), (_as_bytes(x_test), y_test.astype(np.uint8))


def _holds_mnist(directory):
    """True when `directory` has the four IDX files, gzipped or not (copies recompressed by another tool
    included: they are read as they are, where the cache's download check would want the official .gz)."""
    return all(os.path.isfile(os.path.join(directory, name)) or os.path.isfile(os.path.join(directory, name[:-3]))
               for name in datasets.MNIST_FILES)


def _as_bytes(images):
    """fastconv's (N, 1, 28, 28) float images in [0, 1] back to the file's uint8 values (exact: k / 255 * 255
    rounds to k)."""
    return np.rint(images[:, 0] * 255).astype(np.uint8)
