"""Plain NumPy reference of the fastconv kernels.

Same signatures and results as ``fastconv.conv2d`` & co. (reference: docs/api.md), written for clarity first
and reasonable speed second: every kernel works on the (N, C, out_h, out_w, R, S) window view of
the padded input that ``numpy.lib.stride_tricks.sliding_window_view`` gives for free.
This module is the oracle of the test suite and the baseline of the benchmarks; it holds no
compiled code of its own.

Layout is NCHW for activations and (K, C, R, S) for weights. Output size per spatial axis:
``out = (in + 2*pad - k) // stride + 1``.
"""

import operator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "conv2d",
    "conv2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "relu",
    "relu_backward",
    "gemm",
]

ALGOS = ("auto", "direct", "im2col")
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
INT64_MAX = np.iinfo(np.int64).max


# ---- argument checks -----------------------------------------------------------------------------
# Written apart from functional's on purpose: the fuzz target checks that the two refuse the same inputs.

def _int(value, name):
    """``value`` as a Python int; bool, float and anything else non-integral is a TypeError."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}") from None


def _pair(value, name):
    """An int or an (h, w) pair of ints as an (h, w) tuple of Python ints."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or an (h, w) pair, got {value!r}")
        return _int(value[0], name), _int(value[1], name)
    number = _int(value, name)
    return number, number


def _positive_pair(value, name):
    pair = _pair(value, name)
    if min(pair) < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return pair


def _padding_pair(value):
    pair = _pair(value, "padding")
    if min(pair) < 0:
        raise ValueError(f"padding must be >= 0, got {value!r}")
    return pair


def _float_array(value, name, ndim, dtype=None):
    """``value`` as an ndarray of ``ndim`` dimensions and a float dtype.

    The first array of a call (``dtype=None``) must be float32 or float64 and sets the dtype of
    the call; the others must be floating point too and are cast to it.
    """
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:  # e.g. a ragged nested list
        raise ValueError(f"{name} must be an array-like of numbers: {exc}") from None
    if array.dtype.kind != "f" or (dtype is None and array.dtype not in FLOAT_DTYPES):
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {array.dtype}")
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got {array.ndim} (shape {array.shape})")
    return array if dtype is None else array.astype(dtype, copy=False)


def _check_sizes(shape, name):
    """Batch (first axis) may be 0, every other size must be >= 1, the element count fit int64."""
    if shape[0] < 0 or any(size < 1 for size in shape[1:]):
        raise ValueError(f"{name}: every size must be >= 1 (the batch >= 0), got {tuple(shape)}")
    count = 1
    for size in shape:
        count *= size
    if count > INT64_MAX:
        raise ValueError(f"{name}: {tuple(shape)} has more elements than int64 can count")


def _out_size(size, kernel, stride, pad, what):
    """Output length of one spatial axis; ValueError when the kernel exceeds the padded input."""
    if kernel > size + 2 * pad:
        raise ValueError(f"{what} ({kernel}) is larger than the padded input ({size} + 2*{pad})")
    return (size + 2 * pad - kernel) // stride + 1


def _check_algo(algo):
    if not isinstance(algo, str) or algo not in ALGOS:
        raise ValueError(f"algo must be one of {ALGOS}, got {algo!r}")


def _conv_args(x, weight, stride, padding, algo):
    """Validated (x, weight, stride, padding, (out_h, out_w)) of a convolution."""
    _check_algo(algo)
    x = _float_array(x, "x", 4)
    weight = _float_array(weight, "weight", 4, x.dtype)
    _check_sizes(x.shape, "x")
    _check_sizes((1,) + weight.shape, "weight")
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"weight has {weight.shape[1]} input channels, x has {x.shape[1]} (channel mismatch)")
    stride = _positive_pair(stride, "stride")
    padding = _padding_pair(padding)
    out_hw = tuple(
        _out_size(x.shape[2 + axis], weight.shape[2 + axis], stride[axis], padding[axis], "weight kernel")
        for axis in range(2)
    )
    return x, weight, stride, padding, out_hw


def _pool_geometry(input_shape, kernel_size, stride, padding):
    """Validated (kernel, stride, padding, (out_h, out_w)) of a pooling over ``input_shape``."""
    kernel = _positive_pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _positive_pair(stride, "stride")
    padding = _padding_pair(padding)
    for axis in range(2):
        # As PyTorch: every window must hold at least one real input element.
        if padding[axis] > kernel[axis] // 2:
            raise ValueError(f"padding must be at most kernel_size // 2 = {kernel[axis] // 2}, got {padding[axis]}")
    out_hw = tuple(
        _out_size(input_shape[2 + axis], kernel[axis], stride[axis], padding[axis], "kernel_size")
        for axis in range(2)
    )
    return kernel, stride, padding, out_hw


def _input_shape(value):
    """``input_shape`` of a pooling backward as a tuple of 4 ints."""
    if not isinstance(value, (tuple, list, np.ndarray)) or len(value) != 4:
        raise ValueError(f"input_shape must be a sequence of 4 ints (N, C, H, W), got {value!r}")
    shape = tuple(value)
    shape = tuple(_int(size, "input_shape") for size in shape)
    _check_sizes(shape, "input_shape")
    return shape


def _check_grad_shape(grad_out, expected):
    if grad_out.shape != tuple(expected):
        raise ValueError(f"grad_out must have shape {tuple(expected)}, got {grad_out.shape}")


# ---- window helpers ------------------------------------------------------------------------------

def _pad(x, padding, value=0.0):
    ph, pw = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _windows(x_padded, kernel, stride, out_hw):
    """Read-only (N, C, out_h, out_w, kh, kw) view of the windows of a padded input."""
    view = sliding_window_view(x_padded, kernel, axis=(2, 3))
    return view[:, :, : out_hw[0] * stride[0] : stride[0], : out_hw[1] * stride[1] : stride[1]]


def _scatter_windows(grad_windows, padded_shape, padding, stride):
    """Sum (N, C, out_h, out_w, kh, kw) window gradients back into the input they came from.

    One strided slice-add per kernel offset (r, s): the inverse of ``_windows``. The padding
    border is cropped off at the end.
    """
    grad_padded = np.zeros(padded_shape, dtype=grad_windows.dtype)
    _, _, out_h, out_w, kernel_h, kernel_w = grad_windows.shape
    sh, sw = stride
    for r in range(kernel_h):
        for s in range(kernel_w):
            grad_padded[:, :, r : r + sh * out_h : sh, s : s + sw * out_w : sw] += grad_windows[..., r, s]
    ph, pw = padding
    return grad_padded[:, :, ph : padded_shape[2] - ph, pw : padded_shape[3] - pw]


# ---- convolution ---------------------------------------------------------------------------------

def _tensordot(a, b, axes):
    """np.tensordot with IEEE products: a sum gets NaN wherever one of its products is NaN.

    BLAS may skip a zero factor (matrix-vector products do), turning NaN * 0 or inf * 0 into 0, so when an
    operand is not finite the NaN products are counted with a second contraction and restored.
    """
    result = np.tensordot(a, b, axes=axes)
    if np.isfinite(a).all() and np.isfinite(b).all():
        return result
    with np.errstate(invalid="ignore"):
        nan_products = sum(np.tensordot(p.astype(np.float64), q.astype(np.float64), axes=axes)
                           for p, q in ((np.isnan(a), np.ones(b.shape, bool)), (np.ones(a.shape, bool), np.isnan(b)),
                                        (np.isinf(a), b == 0), (a == 0, np.isinf(b))))
    result[nan_products > 0] = np.nan
    return result


def conv2d(x, weight, bias=None, stride=1, padding=0, *, algo="auto"):
    """y[n, k, i, j] = bias[k] + sum_{c, r, s} x_pad[n, c, i*sh + r, j*sw + s] * weight[k, c, r, s].

    ``algo`` is validated and otherwise ignored (there is one NumPy algorithm).
    """
    x, weight, stride, padding, out_hw = _conv_args(x, weight, stride, padding, algo)
    if bias is not None:
        bias = _float_array(bias, "bias", 1, x.dtype)
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"bias must have shape ({weight.shape[0]},), got {bias.shape}")
    windows = _windows(_pad(x, padding), weight.shape[2:], stride, out_hw)
    # (N, C, OH, OW, R, S) . (K, C, R, S) over C, R, S -> (N, OH, OW, K)
    y = _tensordot(windows, weight, ([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
    if bias is not None:
        y = y + bias[None, :, None, None]
    return np.ascontiguousarray(y, dtype=x.dtype)


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, *, algo="auto"):
    """Gradients (gx, gw, gb) of ``conv2d`` with respect to x, weight and bias.

    gb = grad_out summed over (N, OH, OW); gw = windows of x contracted with grad_out;
    gx = grad_out times weight, scattered back through the same windows.
    """
    return _conv2d_backward(grad_out, x, weight, stride, padding, algo, True)


def _conv2d_backward(grad_out, x, weight, stride, padding, algo, need_grad_x):
    """conv2d_backward; grad_x is None when need_grad_x is false (the layers' signature, as in functional)."""
    x, weight, stride, padding, out_hw = _conv_args(x, weight, stride, padding, algo)
    grad_out = _float_array(grad_out, "grad_out", 4, x.dtype)
    _check_grad_shape(grad_out, (x.shape[0], weight.shape[0]) + out_hw)

    x_padded = _pad(x, padding)
    windows = _windows(x_padded, weight.shape[2:], stride, out_hw)
    grad_bias = grad_out.sum(axis=(0, 2, 3))
    # (N, K, OH, OW) . (N, C, OH, OW, R, S) over N, OH, OW -> (K, C, R, S)
    grad_weight = _tensordot(grad_out, windows, ([0, 2, 3], [0, 2, 3]))
    grad_weight, grad_bias = (np.ascontiguousarray(g, dtype=x.dtype) for g in (grad_weight, grad_bias))
    if not need_grad_x:
        return None, grad_weight, grad_bias
    # (N, K, OH, OW) . (K, C, R, S) over K -> (N, OH, OW, C, R, S) -> (N, C, OH, OW, R, S)
    grad_windows = _tensordot(grad_out, weight, ([1], [0])).transpose(0, 3, 1, 2, 4, 5)
    grad_x = _scatter_windows(grad_windows, x_padded.shape, padding, stride)
    return np.ascontiguousarray(grad_x, dtype=x.dtype), grad_weight, grad_bias


# ---- pooling -------------------------------------------------------------------------------------

def _pool_input(x, kernel_size, stride, padding):
    x = _float_array(x, "x", 4)
    _check_sizes(x.shape, "x")
    return (x,) + _pool_geometry(x.shape, kernel_size, stride, padding)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Window maxima and their flat index h*W + w in the (H, W) input plane (int64).

    Padding acts as -inf and is never chosen; ties go to the first element in row-major window
    order; a NaN in a window is its maximum, with the index of the window's last NaN (PyTorch's
    rule: its scan replaces the running max when ``v > best or isnan(v)``).
    """
    x, kernel, stride, padding, out_hw = _pool_input(x, kernel_size, stride, padding)
    height, width = x.shape[2:]
    x_padded = _pad(x, padding, -np.inf)
    values = _windows(x_padded, kernel, stride, out_hw).reshape(x.shape[:2] + out_hw + (kernel[0] * kernel[1],))
    real = _windows(_pad(np.ones((1, 1, height, width), bool), padding, False), kernel, stride, out_hw)
    real = real.reshape((1, 1) + out_hw + (kernel[0] * kernel[1],))

    maxima = values.max(axis=-1, keepdims=True)  # NaN propagates through max
    # Without NaN: the first real element equal to the max (the real mask matters only when the
    # max is -inf, where padding would tie with it).
    first_max = ((values == maxima) & real).argmax(axis=-1)
    # With NaN: PyTorch's scan (`v > best || isnan(v)`) keeps the LAST NaN of the window.
    last_nan = values.shape[-1] - 1 - np.isnan(values[..., ::-1]).argmax(axis=-1)
    position = np.where(np.isnan(maxima[..., 0]), last_nan, first_max)

    rows = np.arange(out_hw[0])[:, None] * stride[0] - padding[0] + position // kernel[1]
    cols = np.arange(out_hw[1])[None, :] * stride[1] - padding[1] + position % kernel[1]
    indices = (rows * width + cols).astype(np.int64)
    return np.ascontiguousarray(maxima[..., 0], dtype=x.dtype), np.ascontiguousarray(indices)


def max_pool2d_backward(grad_out, indices, input_shape):
    """grad_x[n, c].flat[indices[n, c, i, j]] += grad_out[n, c, i, j]; the result has input_shape."""
    grad_out = _float_array(grad_out, "grad_out", 4)
    input_shape = _input_shape(input_shape)
    indices = np.asarray(indices)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"indices must be an integer (int64) array, got dtype {indices.dtype}")
    if indices.shape != grad_out.shape:
        raise ValueError(f"indices must have the shape of grad_out {grad_out.shape}, got {indices.shape}")
    if grad_out.shape[:2] != input_shape[:2]:
        raise ValueError(f"grad_out must have batch and channels {input_shape[:2]} of input_shape, got {grad_out.shape[:2]}")
    plane_size = input_shape[2] * input_shape[3]
    if indices.size and (indices.min() < 0 or indices.max() >= plane_size):
        raise ValueError(f"indices must lie in [0, {plane_size}) (H*W of input_shape), "
                         f"got values in [{indices.min()}, {indices.max()}]")

    batch, channels = input_shape[:2]
    grad_x = np.zeros((batch, channels, plane_size), dtype=grad_out.dtype)
    n, c = np.indices(grad_out.shape[:2])
    # add.at accumulates repeated indices (overlapping windows may pick the same element).
    np.add.at(grad_x, (n[..., None, None], c[..., None, None], indices.astype(np.intp)), grad_out)
    return grad_x.reshape(input_shape)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Window sums divided by kh*kw; zero padding counts in the divisor (count_include_pad=True)."""
    x, kernel, stride, padding, out_hw = _pool_input(x, kernel_size, stride, padding)
    windows = _windows(_pad(x, padding), kernel, stride, out_hw)
    y = windows.sum(axis=(4, 5)) / (kernel[0] * kernel[1])
    return np.ascontiguousarray(y, dtype=x.dtype)


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride=None, padding=0):
    """Each output gradient spread evenly (1/(kh*kw)) over its window, padding dropped."""
    grad_out = _float_array(grad_out, "grad_out", 4)
    input_shape = _input_shape(input_shape)
    kernel, stride, padding, out_hw = _pool_geometry(input_shape, kernel_size, stride, padding)
    _check_grad_shape(grad_out, input_shape[:2] + out_hw)

    share = grad_out / grad_out.dtype.type(kernel[0] * kernel[1])
    grad_windows = np.broadcast_to(share[..., None, None], grad_out.shape + kernel)
    padded_shape = input_shape[:2] + (input_shape[2] + 2 * padding[0], input_shape[3] + 2 * padding[1])
    grad_x = _scatter_windows(grad_windows, padded_shape, padding, stride)
    return np.ascontiguousarray(grad_x, dtype=grad_out.dtype)


# ---- activation and matrix product (the layers' other kernels) ----------------------------------

def relu(x, out=None):
    """max(x, 0) elementwise, any shape; a NaN stays NaN. out: optional array of x's shape and dtype
    to write to (x itself: in place)."""
    x = _float_array(x, "x", np.ndim(x))
    if out is not None and (not isinstance(out, np.ndarray) or out.shape != x.shape or out.dtype != x.dtype):
        raise ValueError(f"out must be an array of shape {x.shape} and dtype {x.dtype}")
    return np.maximum(x, x.dtype.type(0), out=out)  # maximum propagates NaN


def relu_backward(grad_out, y):
    """grad_out where relu's output y > 0, else 0."""
    y = _float_array(y, "y", np.ndim(y))
    grad_out = _float_array(grad_out, "grad_out", y.ndim, y.dtype)
    if grad_out.shape != y.shape:
        raise ValueError(f"grad_out must have y's shape {y.shape}, got {grad_out.shape}")
    return np.where(y > 0, grad_out, grad_out.dtype.type(0))


def gemm(a, b):
    """a @ b for 2-D float arrays (b cast to a's dtype)."""
    a = _float_array(a, "a", 2)
    b = _float_array(b, "b", 2, a.dtype)
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"b must have {a.shape[1]} rows (a.shape[1]), got {b.shape[0]}")
    return _tensordot(a, b, ([1], [0]))
