"""Batch inference over Dask (extra ``fastconv[dask]``: dask[array] and distributed).

``model.predict(x)`` and ``model.evaluate(x, y)`` with a ``dask.array`` x come here: the result is lazy
and is computed block by block (a block is a run of whole samples) by whatever scheduler is active:
Dask's local threads, or the workers of a ``distributed.Client``. The model is ONE key of the task
graph that every block's task depends on, so a distributed scheduler sends it to each worker once
and never once per block. `from_npy_files` reads a directory of ``.npy`` shards lazily, for data
that does not fit in memory. dask is imported only here, never by ``import fastconv``.
"""
import copy
import glob
import os
import uuid

import numpy as np

__all__ = ["predict", "evaluate", "from_npy_files"]

INSTALL_HINT = "fastconv's Dask inference needs dask: pip install 'fastconv[dask]'"


def _dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from None
    return dask, da


def _model_key(model, dask):
    """The model as one Delayed key: a copy of it as it is now (later training does not change a lazy
    result), without training caches or optimizer state (inference needs no momentum buffers)."""
    model.clear_caches()
    shallow = copy.copy(model)
    shallow.optimizer = None
    return dask.delayed(copy.deepcopy(shallow), name=f"fastconv-model-{uuid.uuid4().hex}")


def _as_sample_blocks(model, x, da):
    """x checked against the model and rechunked so that every block holds whole samples."""
    if x.ndim < 2:
        raise ValueError(f"x must be a batch (N, ...) of samples, got shape {x.shape}")
    if x.dtype.kind not in "fiub":
        raise TypeError(f"x must hold numbers, got dtype {x.dtype}")
    if any(np.isnan(size) for size in x.shape):
        raise ValueError("x has unknown chunk sizes; call x.compute_chunk_sizes() first")
    model._ensure_built(tuple(int(v) for v in x.shape[1:]))
    return x.rechunk({axis: -1 for axis in range(1, x.ndim)})


def _predict_block(block, model, batch_size):
    return model.predict(block, batch_size)


def predict(model, x, batch_size=256):
    """Lazy class probabilities (N, classes) of a dask.array x, one task per block of samples."""
    dask, da = _dask()
    x = _as_sample_blocks(model, x, da)
    classes = int(model.output_shape[-1])
    return da.map_blocks(_predict_block, x, _model_key(model, dask), batch_size,
                         chunks=(x.chunks[0], (classes,)), drop_axis=list(range(2, x.ndim)) or None,
                         dtype=model.dtype, meta=np.empty((0, classes), model.dtype))


def _evaluate_block(block, labels, model, batch_size):
    """[loss sum, correct count, samples] of one block (float64, summed over blocks afterwards)."""
    loss, accuracy = model.evaluate(block, labels, batch_size)
    return np.array([[loss * len(labels), accuracy * len(labels), len(labels)]], dtype=np.float64)


def evaluate(model, x, y, batch_size=256):
    """Lazy (mean loss, accuracy) over a dask.array x and labels y (dask or NumPy): two 0-d dask arrays."""
    dask, da = _dask()
    if not hasattr(x, "chunks"):
        x = da.from_array(np.asarray(x), chunks=(max(batch_size, 1),) + tuple(np.shape(x)[1:]))
    x = _as_sample_blocks(model, x, da)
    y = y if hasattr(y, "chunks") else da.from_array(np.asarray(y), chunks=-1)
    if y.dtype.kind not in "iu":
        raise TypeError(f"labels must be integer class indices, got dtype {y.dtype}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"x has {x.shape[0]} samples but its labels have shape {y.shape}")
    y = y.rechunk((x.chunks[0],))
    inner = "abcdefgh"[: x.ndim - 1]
    sums = da.blockwise(_evaluate_block, "ij", x, "i" + inner, y, "i", _model_key(model, dask), None,
                        batch_size, None, new_axes={"j": 3}, adjust_chunks={"i": 1}, concatenate=True,
                        dtype=np.float64, meta=np.empty((0, 3), np.float64)).sum(axis=0)
    count = da.maximum(sums[2], 1)
    return sums[0] / count, sums[1] / count


def from_npy_files(source, mmap=True):
    """One lazy dask.array over a sorted list of ``.npy`` shards (a directory, a glob pattern, or a list of
    paths), concatenated along axis 0; each shard is read (memory-mapped) only by the task that uses it.
    The shards must agree on dtype and on every axis but the first."""
    dask, da = _dask()
    paths = _npy_paths(source)
    blocks, head = [], None
    for path in paths:
        header = np.load(path, mmap_mode="r")  # reads the header only
        if head is None:
            head = (header.shape[1:], header.dtype)
        elif (header.shape[1:], header.dtype) != head:
            raise ValueError(f"{path} holds {header.shape} {header.dtype}, the first shard {paths[0]} "
                             f"(N,) + {head[0]} {head[1]}")
        load = dask.delayed(np.load, pure=True)(path, mmap_mode="r" if mmap else None)
        blocks.append(da.from_delayed(load, shape=header.shape, dtype=header.dtype))
    return da.concatenate(blocks, axis=0)


def _npy_paths(source):
    if isinstance(source, (str, os.PathLike)):
        source = os.fspath(source)
        pattern = os.path.join(source, "*.npy") if os.path.isdir(source) else source
        paths = sorted(glob.glob(pattern))
    else:
        paths = [os.fspath(path) for path in source]
    if not paths:
        raise ValueError(f"source: no .npy files in {source!r}")
    return paths
