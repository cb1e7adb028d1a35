"""MNIST: IDX reader, cached download from public mirrors, and the sample bundled with the package.

``load_mnist(data_dir)`` reads the four standard IDX files (gzipped or not) from a directory.
``load_mnist()`` looks in the cache directory ($FASTCONV_DATA, else ~/.cache/fastconv/mnist) and
downloads what is missing from the mirrors in MIRRORS, checking each file's SHA-256; every download
goes to a temporary file that is renamed only once verified, so the cache never holds a partial
file. ``load_mnist_sample()`` reads the real-MNIST sample shipped in fastconv/data/mnist-sample
(MNIST by Y. LeCun, C. Cortes and C. J. C. Burges, CC BY-SA 3.0).

Images come back as float32 in [0, 1], shape (N, 1, 28, 28); labels as int64.
"""
import gzip
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
import zlib

import numpy as np

from ._io import ProgressBar, atomic_write

__all__ = ["load_mnist", "load_mnist_sample", "read_idx", "download_mnist", "cache_dir", "DownloadError",
           "MNIST_FILES", "MIRRORS", "SAMPLE_DIR"]

# name -> (size in bytes, SHA-256) of the official gzipped files (see /work/shared/data/README.md).
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": (9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    "train-labels-idx1-ubyte.gz": (28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    "t10k-images-idx3-ubyte.gz": (1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    "t10k-labels-idx1-ubyte.gz": (4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
SAMPLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "mnist-sample")
TIMEOUT_SECONDS = 10
_CHUNK = 1 << 16

# IDX type codes -> numpy dtypes (big-endian, as the format stores them).
_IDX_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


class DownloadError(OSError):
    """No mirror delivered a file with the expected checksum."""


# ---- IDX files -----------------------------------------------------------------------------------

def _read_bytes(path):
    """The file's content, gunzipped when it starts with the gzip magic (whatever its name)."""
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as exc:
            raise ValueError(f"{path}: damaged or truncated gzip data ({exc})") from None
    return data


def read_idx(path, expected_ndim=None):
    """An IDX file (gzipped or not) as a numpy array, after checking its magic number and length.

    ValueError names the file and what is wrong: not IDX, unknown type, wrong number of
    dimensions, truncated or too long."""
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number {data[:4].hex() or 'empty'})")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX data type 0x{type_code:02x}")
    if ndim < 1 or (expected_ndim is not None and ndim != expected_ndim):
        raise ValueError(f"{path}: IDX file with {ndim} dimensions, expected {expected_ndim or '>= 1'}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes)")
    dims = tuple(int(v) for v in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = header + int(np.prod(dims, dtype=object)) * dtype.itemsize
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "longer than its header says"
        raise ValueError(f"{path}: IDX file {state}: {len(data)} bytes, expected {expected} for shape {dims}")
    return np.frombuffer(data, dtype, offset=header).reshape(dims)


def _find(directory, name):
    """Path of `name` in `directory`, gzipped (name) or not (name without .gz)."""
    for candidate in (name, name[:-3]):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def _load_split(images_path, labels_path):
    images = read_idx(images_path, expected_ndim=3)
    labels = read_idx(labels_path, expected_ndim=1)
    if images.dtype != np.uint8 or images.shape[1:] != (28, 28):
        raise ValueError(f"{images_path}: expected uint8 images of 28x28, got {images.dtype} {images.shape[1:]}")
    if labels.dtype != np.uint8:
        raise ValueError(f"{labels_path}: expected uint8 labels, got {labels.dtype}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
                         f"{labels.shape[0]} labels")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{labels_path}: labels must be digits 0-9, found {labels.max()}")
    x = images.reshape(-1, 1, 28, 28).astype(np.float32)
    x *= np.float32(1 / 255)
    return x, labels.astype(np.int64)


def _load_directory(directory):
    paths = {}
    missing = []
    for name in MNIST_FILES:
        paths[name] = _find(directory, name)
        if paths[name] is None:
            missing.append(name)
    if missing:
        raise FileNotFoundError(f"{directory} lacks MNIST file(s) {', '.join(missing)} (gzipped or not)")
    train = _load_split(paths["train-images-idx3-ubyte.gz"], paths["train-labels-idx1-ubyte.gz"])
    test = _load_split(paths["t10k-images-idx3-ubyte.gz"], paths["t10k-labels-idx1-ubyte.gz"])
    return train, test


# ---- cache and download --------------------------------------------------------------------------

def cache_dir():
    """$FASTCONV_DATA if set, else ~/.cache/fastconv/mnist."""
    return os.environ.get("FASTCONV_DATA") or os.path.join(os.path.expanduser("~"), ".cache", "fastconv", "mnist")


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _is_verified(path, sha256):
    return os.path.isfile(path) and _sha256(path) == sha256


def _fetch(url, destination, size, sha256, timeout, progress):
    """Download url to a temporary file beside destination; rename it there only if the checksum matches."""
    bar = ProgressBar(size, sys.stderr, enabled=progress, width=20)
    name = os.path.basename(destination)
    with atomic_write(destination, suffix=".part") as handle, urllib.request.urlopen(url, timeout=timeout) as response:
        digest, received = hashlib.sha256(), 0
        try:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                handle.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                if received > size:
                    raise ValueError(f"more than the expected {size} bytes")
                bar.update(received, lambda: f"downloading {name} [{bar.bar(received)}] "
                                             f"{received / 1e6:.1f}/{size / 1e6:.1f} MB")
        finally:
            bar.close()
        if received != size:
            raise ValueError(f"got {received} bytes, expected {size}")
        if digest.hexdigest() != sha256:
            raise ValueError(f"SHA-256 mismatch (got {digest.hexdigest()[:16]}..., expected {sha256[:16]}...)")


def _download_one(name, directory, mirrors, timeout, progress):
    """Fetch one file: each mirror is tried twice (one retry), except after an HTTP 4xx answer."""
    size, sha256 = MNIST_FILES[name]
    destination = os.path.join(directory, name)
    errors = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        for attempt in (1, 2):
            try:
                _fetch(url, destination, size, sha256, timeout, progress)
                return destination
            except urllib.error.HTTPError as exc:
                errors.append(f"{url}: HTTP {exc.code}")
                if 400 <= exc.code < 500:  # the mirror does not have it: retrying will not help
                    break
            except (OSError, ValueError, http.client.HTTPException) as exc:
                # URLError, timeouts, resets, a body cut short, bad length or checksum
                reason = getattr(exc, "reason", None) or exc
                errors.append(f"{url} (attempt {attempt}): {reason}")
    raise DownloadError(f"could not download {name}: " + "; ".join(errors))


def download_mnist(directory=None, mirrors=None, timeout=TIMEOUT_SECONDS, progress=True):
    """Make sure `directory` (default: cache_dir()) holds the four verified MNIST files; returns it."""
    directory = directory or cache_dir()
    os.makedirs(directory, exist_ok=True)
    mirrors = MIRRORS if mirrors is None else tuple(mirrors)
    for name, (size, sha256) in MNIST_FILES.items():
        if not _is_verified(os.path.join(directory, name), sha256):
            _download_one(name, directory, mirrors, timeout, progress)
    return directory


def _cached_files_complete(directory):
    return all(_is_verified(os.path.join(directory, name), sha256) for name, (_, sha256) in MNIST_FILES.items())


def load_mnist(data_dir=None, download=True, mirrors=None, timeout=TIMEOUT_SECONDS, progress=True):
    """((x_train, y_train), (x_test, y_test)) of MNIST.

    data_dir: read the four IDX files (gzipped or not) from there; nothing is downloaded.
    Otherwise the cache directory (cache_dir()) is used, and with download=True the missing or
    damaged files are fetched from `mirrors` (default MIRRORS) and verified by SHA-256.
    Raises FileNotFoundError (files missing, download=False), DownloadError (no mirror delivered),
    ValueError (a file is not valid MNIST IDX data).
    """
    if data_dir is not None:
        if not os.path.isdir(data_dir):
            raise FileNotFoundError(f"MNIST data directory not found: {data_dir}")
        return _load_directory(data_dir)
    directory = cache_dir()
    if not _cached_files_complete(directory):
        if not download:
            raise FileNotFoundError(f"MNIST is not (completely) in the cache {directory} and download=False")
        download_mnist(directory, mirrors, timeout, progress)
    return _load_directory(directory)


def load_mnist_sample():
    """The real-MNIST sample bundled with fastconv: 5,000 training images (500 per class, from the
    official training set) and the first 2,000 images of the official test set."""
    return _load_directory(SAMPLE_DIR)
