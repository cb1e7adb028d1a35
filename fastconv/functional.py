"""Stateless kernels: fastconv's public functional API (reference: docs/api.md).

Each function validates and normalises its arguments here, in Python (ndim, dtype, contiguity, sizes,
64-bit overflow), then hands C-contiguous arrays of one float dtype to the compiled binding
(`fastconv._kernels`), which releases the GIL and runs the C kernel. The C side trusts what arrives.

Conventions of every kernel: layout NCHW (batch, channels, height, width), weights (K, C, R, S)
(out-channels, in-channels, kernel height, kernel width); `stride`, `padding` and `kernel_size` take an
int or an (h, w) pair. Inputs may be any array-like numpy.asarray accepts, float32 or float64; the
result has x's dtype (a C-contiguous copy is made only where needed). Output size per spatial axis:
out = (in + 2*pad - k) // stride + 1, the floor, as in PyTorch. Invalid input raises ValueError
(shapes, sizes, a kernel larger than the padded input, stride < 1, padding < 0, a channel mismatch,
a wrong number of dimensions) or TypeError (a non-numeric or unsupported dtype), naming the argument.
"""
import math
import operator
import os
import warnings
from typing import NamedTuple

import numpy as np

from . import _kernels

__all__ = [
    "conv2d", "conv2d_backward", "conv2d_plan", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
    "avg_pool2d_backward", "set_num_threads", "get_num_threads", "set_adaptive_threads", "get_adaptive_threads",
    "build_info", "gemm",
]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_ALGOS = ("auto", "direct", "im2col")
# Largest element count (and byte count) we let any array reach: far below int64's limit, so no
# product formed in C (offsets, sizes times itemsize) can overflow.
_MAX_ELEMENTS = 2**62 // 8


# ---- thread count: the package's only global mutable state ---------------------------------------

def _default_num_threads():
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) >= 1:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


_num_threads = _default_num_threads() if _kernels.have_openmp() else 1


SERIAL_BUILD_MESSAGE = ("fastconv was built without OpenMP (the compiler had no -fopenmp), so every kernel runs on "
                        "one thread; reinstall with an OpenMP-capable compiler (gcc, or clang with libomp) and "
                        "`pip install -v .` to see the build's check")


def set_num_threads(n):
    """Set the number of OpenMP threads every kernel uses (an int >= 1).

    The default is OMP_NUM_THREADS when set, else every core this process may run on. Results never
    depend on the thread count."""
    global _num_threads
    n = _index("n", n)
    if n < 1:
        raise ValueError(f"n: the number of threads must be >= 1, got {n}")
    if n > 1 and not _kernels.have_openmp():
        # pip hides the build's own warning unless run with -v, so say it where the threads are asked for.
        warnings.warn(SERIAL_BUILD_MESSAGE, RuntimeWarning, stacklevel=2)
    _num_threads = n if _kernels.have_openmp() else 1


def get_num_threads():
    """The number of threads the kernels use (always 1 in a build without OpenMP); while adaptive
    threading is on, a call runs on fewer when other processes keep cores busy."""
    return _num_threads


def set_adaptive_threads(enabled):
    """Adaptive threading (on by default; FASTCONV_ADAPTIVE_THREADS=0 turns it off at import).

    While on, each kernel call runs on at most get_num_threads() threads and on no more than the cores
    that other processes left free over the last tenth of a second: with a busy neighbour, a fork-join
    kernel would otherwise wait at every step for its preempted thread. Results are the same either way
    (they never depend on the thread count)."""
    if not isinstance(enabled, (bool, np.bool_)):
        raise TypeError(f"enabled must be a bool, got {enabled!r}")
    _kernels.set_adaptive_threads(bool(enabled))


def get_adaptive_threads():
    """True while adaptive threading is on (see set_adaptive_threads)."""
    return _kernels.adaptive_threads()


if os.environ.get("FASTCONV_ADAPTIVE_THREADS", "").strip() == "0":
    set_adaptive_threads(False)


def _simd_level():
    """The SIMD level for this call: FASTCONV_SIMD (read at every call) capped to what the CPU runs."""
    level = _kernels.simd_level()
    if level < 0:
        request = os.environ.get("FASTCONV_SIMD", "")
        raise ValueError(f"FASTCONV_SIMD must be one of 'scalar', 'avx2', 'avx512' (or unset), got {request!r}")
    return level


def build_info():
    """How this build was made and what it runs, as a dict: version, openmp (bool: False means a
    serial build), simd (the instruction-set level the kernels use on this CPU), compiler, flags.
    `fastconv info` prints it."""
    from . import __version__

    best = _kernels.simd_best()
    available = list(_kernels.SIMD_NAMES[: _kernels.SIMD_NAMES.index(best) + 1])
    info = {
        "version": __version__,
        "openmp": _kernels.have_openmp(),
        "simd": _kernels.SIMD_NAMES[_simd_level()],
        "simd_available": available,
        "num_threads": get_num_threads(),
        "adaptive_threads": get_adaptive_threads(),
        "max_threads": _kernels.max_threads(),
    }
    info.update(_kernels.compiler_info())
    return info


# ---- argument normalisation ----------------------------------------------------------------------

def _index(name, value):
    """A Python int from an int-like (int, numpy integer); bool and float are refused."""
    if type(value) is int:  # the common case, first: keeps per-call overhead low
        return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}") from None


def _pair(name, value):
    """(h, w) from an int or a pair of ints."""
    if type(value) is int:
        return (value, value)
    if isinstance(value, (tuple, list, np.ndarray)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w), got {value!r}")
        return (_index(name, value[0]), _index(name, value[1]))
    v = _index(name, value)
    return (v, v)


def _check_elements(name, shape):
    """ValueError if an array of `shape` would exceed the size any kernel accepts (no overflow later).

    Python ints do not overflow, so the product is exact whatever the sizes."""
    count = math.prod(shape)
    if count > _MAX_ELEMENTS:
        raise ValueError(f"{name}: shape {tuple(shape)} holds {count} elements, more than the "
                         f"{_MAX_ELEMENTS} fastconv supports")


def _as_array(name, value):
    if isinstance(value, np.ndarray):
        return value
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} must be an array-like of numbers: {exc}") from None


def _input(name, value, ndim=4):
    """The array that fixes the dtype of a call: float32 or float64, `ndim`-D (None: any), C-contiguous."""
    arr = _as_array(name, value)
    if arr.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {arr.dtype}")
    return _shaped(name, _contiguous(arr, arr.dtype), ndim)


def _operand(name, value, dtype, ndim):
    """A further float operand, cast to the call's dtype (non-float dtypes are refused)."""
    arr = _as_array(name, value)
    if arr.dtype.kind != "f":
        raise TypeError(f"{name} must have a floating dtype (float32 or float64), got {arr.dtype}")
    return _shaped(name, _contiguous(arr, dtype), ndim)


def _contiguous(arr, dtype):
    """arr as a C-contiguous array of dtype, copied only if needed (a 0-d array stays 0-d, which
    np.ascontiguousarray would make 1-d)."""
    if arr.dtype == dtype and arr.flags.c_contiguous:
        return arr
    return np.array(arr, dtype=dtype, order="C")


def _shaped(name, arr, ndim):
    if ndim is not None and arr.ndim != ndim:
        layout = {4: " (N, C, H, W)", 1: ""}.get(ndim, "")
        raise ValueError(f"{name} must be {ndim}-D{layout}, got {arr.ndim}-D with shape {arr.shape}")
    return arr


def _input_shape(value):
    """input_shape of a pooling backward: 4 ints >= 1 (batch may be 0)."""
    if not isinstance(value, (tuple, list, np.ndarray)) or len(value) != 4:
        raise ValueError(f"input_shape must be a sequence of 4 ints (N, C, H, W), got {value!r}")
    batch, channels, height, width = value
    if type(batch) is int and type(channels) is int and type(height) is int and type(width) is int:
        shape = (batch, channels, height, width)   # the common case (x.shape): no call per entry
    else:
        shape = tuple(_index("input_shape", v) for v in value)
    if shape[0] < 0 or shape[1] < 1 or shape[2] < 1 or shape[3] < 1:
        raise ValueError(f"input_shape must have N >= 0 and C, H, W >= 1, got {shape}")
    _check_elements("input_shape", shape)
    return shape


def _out_size(in_size, kernel, stride, pad, axis, kernel_name):
    padded = in_size + 2 * pad
    if kernel > padded:
        raise ValueError(f"{kernel_name} {kernel} is larger than the padded input along {axis} "
                         f"({in_size} + 2*{pad} = {padded})")
    return (padded - kernel) // stride + 1


def _stride_padding(stride, padding):
    """Validated (stride_h, stride_w), (pad_h, pad_w)."""
    stride = _pair("stride", stride)
    if stride[0] < 1 or stride[1] < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    pad = _pair("padding", padding)
    if pad[0] < 0 or pad[1] < 0:
        raise ValueError(f"padding must be >= 0, got {pad}")
    return stride, pad


def _window(kernel_size, stride, padding):
    """Validated pooling window: (kernel_h, kernel_w), (stride_h, stride_w), (pad_h, pad_w)."""
    if (type(kernel_size) is int and kernel_size >= 1 and type(padding) is int and padding >= 0
            and (stride is None or (type(stride) is int and stride >= 1))):
        # The common call, max_pool2d(x, 2): a fifth of a small pool's time went to the general path.
        step = kernel_size if stride is None else stride
        return (kernel_size, kernel_size), (step, step), (padding, padding)
    kernel = _pair("kernel_size", kernel_size)
    if kernel[0] < 1 or kernel[1] < 1:
        raise ValueError(f"kernel_size must be >= 1, got {kernel}")
    stride, pad = _stride_padding(kernel if stride is None else stride, padding)
    return kernel, stride, pad


def _spatial_sizes(in_hw, kernel, stride, pad, kernel_name):
    return (_out_size(in_hw[0], kernel[0], stride[0], pad[0], "height", kernel_name),
            _out_size(in_hw[1], kernel[1], stride[1], pad[1], "width", kernel_name))


# ---- convolution ---------------------------------------------------------------------------------

class ConvGeometry(NamedTuple):
    """A checked convolution geometry, the binding's fc_conv_shape (src_c/fastconv.h) field by field."""
    batch: int
    in_channels: int
    in_h: int
    in_w: int
    out_channels: int
    kernel_h: int
    kernel_w: int
    stride_h: int
    stride_w: int
    pad_h: int
    pad_w: int
    out_h: int
    out_w: int

    @property
    def out_shape(self):
        """(N, K, out_h, out_w): the shape of the convolution's output."""
        return (self.batch, self.out_channels, self.out_h, self.out_w)


def _conv_geometry(x_shape, w_shape, stride, padding):
    """The ConvGeometry of x_shape and w_shape, after checking that they agree."""
    batch, channels, in_h, in_w = x_shape
    out_channels, w_channels, kernel_h, kernel_w = w_shape
    if w_channels != channels:
        raise ValueError(f"weight has {w_channels} input channels (weight.shape[1]) but x has "
                         f"{channels} (x.shape[1]); they must be equal")
    if min(channels, in_h, in_w) < 1 or min(w_shape) < 1:
        raise ValueError(f"every size must be >= 1 (batch may be 0): x.shape={x_shape}, weight.shape={w_shape}")
    stride, pad = _stride_padding(stride, padding)
    out_h, out_w = _spatial_sizes((in_h, in_w), (kernel_h, kernel_w), stride, pad, "weight kernel")
    _check_elements("output", (batch, out_channels, out_h, out_w))
    # im2col's column buffer for one image must stay addressable too.
    _check_elements("im2col column", (channels * kernel_h * kernel_w, out_h, out_w))
    return ConvGeometry(batch, channels, in_h, in_w, out_channels, kernel_h, kernel_w,
                        stride[0], stride[1], pad[0], pad[1], out_h, out_w)


def _algo(algo):
    """The binding's code for algo: "auto" (the kernels src_c/conv_plan.c picks), "direct" or "im2col"."""
    try:
        return _kernels.ALGOS[algo]
    except (KeyError, TypeError):   # TypeError: an unhashable algo
        raise ValueError(f"algo must be one of {_ALGOS}, got {algo!r}") from None


class ConvPlan(NamedTuple):
    """The kernels a convolution runs, by name: see conv2d_plan."""
    forward: str
    grad_x: str
    grad_w: str


def _shape_arg(name, value):
    """A 4-D shape argument as a tuple of ints."""
    if not isinstance(value, (tuple, list, np.ndarray)) or len(value) != 4:
        raise ValueError(f"{name} must be a sequence of 4 ints, got {value!r}")
    return tuple(_index(name, v) for v in value)


def conv2d_plan(x_shape, w_shape, stride=1, padding=0, dtype="float32", *, algo="auto"):
    """Which kernels conv2d and conv2d_backward run for these shapes: a ConvPlan(forward, grad_x, grad_w).

    x_shape is (N, C, H, W), w_shape (K, C, R, S); stride, padding and algo as in conv2d; dtype float32
    or float64 (a name, a numpy type or dtype). The answer is the one src_c/conv_plan.c gives the kernels
    themselves, at the SIMD level in use now (FASTCONV_SIMD respected); it never depends on the thread
    count. grad_b is computed alongside grad_w, by that kernel. The names, stable from release to release:

    im2col + GEMM (the convolution as a matrix product over the im2col matrix):
      "im2col.fused"      forward; each block of im2col written straight into the GEMM's packed panels
      "im2col.implicit"   forward at stride_w 1 or 2 with AVX-512, where the output width is a multiple of
                          16 (float32) or 8 (float64), or half that with an even output height; no panels:
                          the GEMM reads the image in place (copied with its padding written out, and at
                          stride_w 2 its even and odd columns apart)
      "im2col.by_image"   grad_x; W^T dY and col2im one image at a time, while the columns are in cache
      "im2col.chunked"    grad_x, grad_w; one GEMM per chunk of images laid side by side
      "im2col.as_forward" grad_x at stride 1 ("same" padding or wider, K at most 2 C with AVX-512, at most
                          C with AVX2); "im2col.fused" run on grad_out with W flipped and transposed
    direct (straight from the input, no im2col matrix):
      "direct.gather"     forward, grad_x at stride 1; one output plane per task, portable C
      "direct.gather_simd" the same with explicit AVX2 / AVX-512 vectors over output columns (stride_w 1)
      "direct.scatter"    grad_x at stride > 1; each grad_out element spread back over its inputs
      "direct.kvec"       forward vectorised over output channels (enough of them to fill a vector)
      "direct.wvec"       forward (3-6 output channels) or grad_x (3-12 input channels, stride 1),
                          vectorised over output columns, in blocks of 6 channels
      "direct.wrows"      grad_x for 1-2 input channels (stride 1), vectorised over output columns, in
                          blocks of output rows
      "direct.dot"        grad_w; one task per (k, c, kernel row), dot products, portable C
      "direct.dot_simd"   the same with explicit vectors over output columns (stride_w 1, kernel_w <= 8)
      "direct.kvgw"       grad_w vectorised over output channels (at least one vector of them)
      "direct.wvgw"       grad_w (and grad_b) vectorised over output columns, for fewer output channels

    >>> fastconv.conv2d_plan((64, 1, 28, 28), (6, 1, 5, 5), padding=2)   # LeNet-5 C1, AVX2 or AVX-512
    ConvPlan(forward='direct.wvec', grad_x='direct.wrows', grad_w='direct.wvgw')
    """
    x_shape, w_shape = _shape_arg("x_shape", x_shape), _shape_arg("w_shape", w_shape)
    if x_shape[0] < 0:
        raise ValueError(f"x_shape must have N >= 0, got {x_shape}")
    try:
        if dtype is None:   # np.dtype(None) would be float64
            raise TypeError
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dtype not in _FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    geometry = _conv_geometry(x_shape, w_shape, stride, padding)
    return ConvPlan(*_kernels.conv2d_plan(geometry, dtype == np.float32, _simd_level(), _algo(algo)))


def conv2d(x, weight, bias=None, stride=1, padding=0, *, algo="auto"):
    """2-D convolution (cross-correlation, as in PyTorch): x (N,C,H,W), weight (K,C,R,S) -> (N,K,OH,OW).

    bias: optional (K,). stride, padding: int or (h, w) pair; padding is symmetric zero padding.
    algo: "direct" (kernels that loop over the window), "im2col" (patches + GEMM) or "auto" (default:
    the faster of the two for this shape, dtype and CPU). Every algo gives the reference's results.
    """
    x = _input("x", x)
    weight = _operand("weight", weight, x.dtype, 4)
    geometry = _conv_geometry(x.shape, weight.shape, stride, padding)
    if bias is not None:
        bias = _operand("bias", bias, x.dtype, 1)
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"bias must have {weight.shape[0]} entries (weight.shape[0]), got {bias.shape[0]}")
    code, simd = _algo(algo), _simd_level()
    y = np.empty(geometry.out_shape, dtype=x.dtype)
    if y.size:
        _kernels.conv2d_forward(code, geometry, x, weight, bias, y, _num_threads, simd)
    return y


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, *, algo="auto"):
    """Gradients of conv2d: (grad_x, grad_weight, grad_bias) for grad_out = dL/dy (shape of conv2d's output).

    grad_bias = grad_out.sum((0, 2, 3)) is always returned; a caller without a bias ignores it.
    stride, padding and algo as in conv2d ("auto" picks per gradient).
    """
    grad_x, grad_w, grad_b = _conv2d_backward(grad_out, x, weight, stride, padding, algo, True)
    return grad_x, grad_w, grad_b


def _conv2d_backward(grad_out, x, weight, stride, padding, algo, need_grad_x):
    """conv2d_backward; grad_x is None when need_grad_x is false (a network's first layer).

    "auto" picks per gradient (conv2d_plan's grad_x and grad_w): they are separate kernels, and which
    algorithm is faster differs between them and between shapes. The bias gradient comes with grad_w's."""
    x = _input("x", x)
    weight = _operand("weight", weight, x.dtype, 4)
    geometry = _conv_geometry(x.shape, weight.shape, stride, padding)
    grad_out = _operand("grad_out", grad_out, x.dtype, 4)
    if grad_out.shape != geometry.out_shape:
        raise ValueError(f"grad_out must have the conv output's shape {geometry.out_shape}, got {grad_out.shape}")
    code, simd = _algo(algo), _simd_level()
    grad_x = np.empty(x.shape, dtype=x.dtype) if need_grad_x else None
    if x.shape[0] == 0:
        if grad_x is not None:
            grad_x[...] = 0
        return grad_x, np.zeros(weight.shape, x.dtype), np.zeros(weight.shape[0], x.dtype)
    grad_w = np.empty(weight.shape, dtype=x.dtype)
    grad_b = np.empty(weight.shape[0], dtype=x.dtype)
    _kernels.conv2d_backward(code, geometry, grad_out, x, weight, grad_x, grad_w, grad_b, _num_threads, simd)
    return grad_x, grad_w, grad_b


# ---- pooling -------------------------------------------------------------------------------------

def _pool_geometry(x_shape, kernel_size, stride, padding):
    """The 12-tuple the binding turns into an fc_pool_shape."""
    kernel, stride, pad = _window(kernel_size, stride, padding)
    # As PyTorch: padding beyond half the kernel would allow windows made only of padding.
    if pad[0] > kernel[0] // 2 or pad[1] > kernel[1] // 2:
        raise ValueError(f"padding {pad} must be at most half of kernel_size {kernel}")
    out_h, out_w = _spatial_sizes(x_shape[2:], kernel, stride, pad, "kernel_size")
    batch, channels, in_h, in_w = x_shape
    _check_elements("output", (batch, channels, out_h, out_w))
    return (batch, channels, in_h, in_w, kernel[0], kernel[1], stride[0], stride[1],
            pad[0], pad[1], out_h, out_w)


def _pool_input(x):
    x = _input("x", x)
    if min(x.shape[1:]) < 1:
        raise ValueError(f"x must have C, H, W >= 1 (batch may be 0), got shape {x.shape}")
    return x


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max pooling: (y, indices), both of shape (N, C, OH, OW).

    stride=None means stride=kernel_size; padding pads with -inf (never chosen). indices (int64) holds
    the flat index h*W + w of each maximum inside its (H, W) input plane, as
    torch.nn.functional.max_pool2d(..., return_indices=True) does; ties go to the first element of the
    window in row-major order, and a window with a NaN has NaN as its maximum.
    """
    x = _pool_input(x)
    geometry = _pool_geometry(x.shape, kernel_size, stride, padding)
    out_shape = x.shape[:2] + geometry[10:]
    y = np.empty(out_shape, dtype=x.dtype)
    indices = np.empty(out_shape, dtype=np.int64)
    if y.size:
        _kernels.max_pool2d_forward(geometry, x, y, indices, _num_threads, _simd_level())
    return y, indices


def _max_pool2d_values(x, kernel_size, stride=None, padding=0, relu=False):
    """max_pool2d's y alone, for inference: no indices are written. relu=True pools max(x, 0) (as relu
    computes it) without forming it; the result equals max_pool2d(relu(x), ...)[0] bit for bit."""
    x = _pool_input(x)
    geometry = _pool_geometry(x.shape, kernel_size, stride, padding)
    y = np.empty(x.shape[:2] + geometry[10:], dtype=x.dtype)
    if y.size:
        _kernels.max_pool2d_values(geometry, x, y, _flag("relu", relu), _num_threads, _simd_level())
    return y


def _flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


class _ConvBlock(NamedTuple):
    """One block of _conv_chain: conv2d(x, weight, bias, stride, padding, algo=algo), then max(., 0) if
    relu, then max_pool2d(., *pool)[0] unless pool is None; pool = (kernel_size, stride, padding)."""
    weight: object
    bias: object = None
    stride: object = 1
    padding: object = 0
    algo: str = "auto"
    relu: bool = False
    pool: object = None


def _conv_chain(x, blocks):
    """x through a sequence of _ConvBlock in one call, for inference: equal, bit for bit, to running
    each block's conv2d, relu and max_pool2d in turn, but each thread carries a few images at a time
    through every block while they are in cache (src_c/conv_chain.c), in one parallel region."""
    x = _input("x", x)
    if not isinstance(blocks, (list, tuple)) or not blocks:
        raise ValueError(f"blocks must be a non-empty list of _ConvBlock, got {blocks!r}")
    shape, arguments = x.shape, []
    for i, block in enumerate(blocks):
        if not isinstance(block, _ConvBlock):
            raise TypeError(f"blocks[{i}] must be a _ConvBlock, got {type(block).__name__}")
        try:
            argument, shape = _chain_block(block, shape, x.dtype)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"blocks[{i}]: {exc}") from None
        arguments.append(argument)
    y = np.empty(shape, dtype=x.dtype)
    if y.size:
        _kernels.conv_chain_forward(arguments, x, y, _num_threads, _simd_level())
    return y


def _chain_block(block, x_shape, dtype):
    """(the binding's tuple for one block, the block's output shape) for an input of x_shape."""
    weight = _operand("weight", block.weight, dtype, 4)
    geometry = _conv_geometry(x_shape, weight.shape, block.stride, block.padding)
    bias = block.bias
    if bias is not None:
        bias = _operand("bias", bias, dtype, 1)
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"bias must have {weight.shape[0]} entries (weight.shape[0]), got {bias.shape[0]}")
    relu, shape, pool = _flag("relu", block.relu), geometry.out_shape, None
    if block.pool is not None:
        if not isinstance(block.pool, (tuple, list)) or len(block.pool) != 3:
            raise ValueError(f"pool must be None or (kernel_size, stride, padding), got {block.pool!r}")
        pool = _pool_geometry(shape, *block.pool)
        shape = shape[:2] + pool[10:]
    return (_algo(block.algo), geometry, weight, bias, relu, pool), shape


def max_pool2d_backward(grad_out, indices, input_shape):
    """Gradient of max_pool2d: grad_out routed to the input positions named by indices.

    indices: max_pool2d's second result; input_shape: x's shape (N, C, H, W). Windows that overlap
    (stride < kernel_size) add up where they chose the same element.
    """
    input_shape = _input_shape(input_shape)
    grad_out = _input("grad_out", grad_out)
    indices = _as_array("indices", indices)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"indices must have an integer dtype (int64), got {indices.dtype}")
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    if indices.shape != grad_out.shape:
        raise ValueError(f"indices must have grad_out's shape {grad_out.shape}, got {indices.shape}")
    if grad_out.shape[:2] != input_shape[:2]:
        raise ValueError(f"input_shape {input_shape} must have grad_out's batch and channels "
                         f"{grad_out.shape[:2]}")
    if grad_out.size == 0:   # no gradient to route (as the reference: zeros, whatever H and W)
        return np.zeros(input_shape, dtype=grad_out.dtype)
    grad_x = np.empty(input_shape, dtype=grad_out.dtype)
    if grad_x.size:
        # Kernel size and stride do not matter for the scatter; the C kernel checks every index.
        geometry = input_shape + (1, 1, 1, 1, 0, 0) + grad_out.shape[2:]
        _kernels.max_pool2d_backward(geometry, grad_out, indices, grad_x, _num_threads, _simd_level())
    return grad_x


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Average pooling: window sums divided by kh*kw, (N, C, H, W) -> (N, C, OH, OW).

    stride=None means stride=kernel_size; zero padding counts in the divisor (count_include_pad=True,
    PyTorch's default).
    """
    x = _pool_input(x)
    geometry = _pool_geometry(x.shape, kernel_size, stride, padding)
    y = np.empty(x.shape[:2] + geometry[10:], dtype=x.dtype)
    if y.size:
        _kernels.avg_pool2d_forward(geometry, x, y, _num_threads, _simd_level())
    return y


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride=None, padding=0):
    """Gradient of avg_pool2d with respect to its input: each output gradient spread evenly
    (1/(kh*kw)) over its window; input_shape is x's shape, the other arguments as in avg_pool2d."""
    input_shape = _input_shape(input_shape)
    grad_out = _input("grad_out", grad_out)
    geometry = _pool_geometry(input_shape, kernel_size, stride, padding)
    expected = input_shape[:2] + geometry[10:]
    if grad_out.shape != expected:
        raise ValueError(f"grad_out must have the pooling output's shape {expected}, got {grad_out.shape}")
    grad_x = np.empty(input_shape, dtype=grad_out.dtype)
    if grad_x.size:
        _kernels.avg_pool2d_backward(geometry, grad_out, grad_x, _num_threads, _simd_level())
    return grad_x


# ---- activations (used by the ReLU layer) --------------------------------------------------------

def relu(x, out=None):
    """max(x, 0) elementwise, any shape (a NaN stays NaN), on the OpenMP threads.

    out: optional C-contiguous array of x's shape and dtype to write to (x itself: in place)."""
    x = _input("x", x, ndim=None)
    if out is None:
        out = np.empty_like(x)
    elif not (isinstance(out, np.ndarray) and out.shape == x.shape and out.dtype == x.dtype
              and out.flags.c_contiguous and out.flags.writeable):
        raise ValueError(f"out must be a writeable C-contiguous array of shape {x.shape} and dtype {x.dtype}")
    _kernels.relu_forward(x, out, _num_threads, _simd_level())
    return out


def relu_backward(grad_out, y):
    """Gradient of relu from grad_out = dL/dy and relu's output y: grad_out where y > 0, else 0."""
    y = _input("y", y, ndim=None)
    grad_out = _operand("grad_out", grad_out, y.dtype, None)
    if grad_out.shape != y.shape:
        raise ValueError(f"grad_out must have y's shape {y.shape}, got {grad_out.shape}")
    grad_x = np.empty_like(y)
    _kernels.relu_backward(grad_out, y, grad_x, _num_threads, _simd_level())
    return grad_x


# ---- matrix product (used by Dense layers and the benchmarks) ------------------------------------

def gemm(a, b):
    """a @ b for 2-D float arrays through fastconv's own GEMM (the one the im2col convolution uses)."""
    product = _kernels.gemm(a, b, _num_threads, _simd_level())
    if product is None:   # not float arrays the kernel takes as they are: check, convert, multiply
        a = _input("a", a, ndim=2)
        b = _operand("b", b, a.dtype, 2)
        if a.shape[1] != b.shape[0]:
            raise ValueError(f"b must have {a.shape[1]} rows (a.shape[1]), got {b.shape[0]}")
        # copies an array whose data is not at a whole element (the kernel reads by element)
        a, b = np.require(a, requirements="A"), np.require(b, requirements="A")
        product = _kernels.gemm(a, b, _num_threads, _simd_level())
    return product
