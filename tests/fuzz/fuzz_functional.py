"""Coverage-guided fuzz target (atheris / libFuzzer) of fastconv's public functional API.

Each input decodes into one call of conv2d, conv2d_backward, max_pool2d, max_pool2d_backward,
avg_pool2d, avg_pool2d_backward or gemm: random shapes, strides, paddings, kernel sizes, dtypes
(float32/float64, and float16, longdouble, ints, bools, complex, object), memory layouts (C, Fortran,
negative strides, strided and transposed views, unaligned, read-only, Python lists, zero-size axes),
NaN / inf / zero / subnormal values, a SIMD level (FASTCONV_SIMD), an algo and 1 or 2 threads.
The same call goes to ``fastconv.reference`` (to ``numpy.matmul`` in float64 for gemm), then:

- if the reference raises ValueError or TypeError, fastconv must raise one too, of the same class
  when the call has a single defect, with a message naming an argument of the call;
- otherwise fastconv's results must have the reference's dtype and shape, the same NaN positions and
  signed infs, values within a dtype tolerance elsewhere (max_pool2d's indices equal), leave the
  inputs unchanged, and, for an eighth of the inputs (when 2 threads are allowed), equal bit for bit
  the same call on the other thread count.

NaN and inf go only where every kernel must treat them alike: never times a padding zero (which a
direct kernel skips and the reference multiplies). Times a zero operand they give NaN everywhere.

Anything else (another exception, a wrong result, a crash, a hang past -timeout) stops the run with
the input saved as ``crash-<sha1>`` / ``timeout-<sha1>`` (``-artifact_prefix=DIR/`` puts it in DIR).
Sizes are capped (MAX_ELEMENTS, MAX_MACS) so one input takes well under a millisecond in fastconv.
Inputs whose arguments libFuzzer cannot tell apart by Python coverage alone still reach every C
kernel: each kernel route (op, dtype, SIMD level, algo, and which direct kernel family the binding's
dispatch rules pick) counts as a coverage feature of its own.

Run it from the repository root after ``pip install -e ".[test]"`` (the test extra brings atheris):

    python tests/fuzz/fuzz_functional.py -atheris_runs=20000              # a short run
    mkdir -p ~/fastconv-fuzz-corpus                                         # a long campaign, 1 thread:
    OMP_NUM_THREADS=1 nice -n 19 python tests/fuzz/fuzz_functional.py ~/fastconv-fuzz-corpus \\
        -atheris_runs=1000000 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=/tmp/
    python tests/fuzz/fuzz_functional.py /tmp/crash-<sha1>                 # replay one finding

The corpus directory keeps the inputs that found new coverage, so a later campaign continues where
the last one stopped; `pytest tests/test_fuzz.py` runs a bounded campaign from scratch (fixed seed).
"""

import os
import re
import sys

import numpy as np

import atheris

with atheris.instrument_imports(include=["fastconv"]):
    import fastconv as fc
    from fastconv import reference as ref

SIMD_LEVELS = tuple(fc.build_info()["simd_available"])
ALGOS = ("auto", "direct", "im2col")
# Stride 1 most often: the vectorised direct kernels over columns (wvec, rows, wvgw) need it.
STRIDES = (1, 2, 1, 3, 1, 4)
# Threads: 1, and 2 for some inputs when OMP_NUM_THREADS (or the cores) allow 2.
MAX_THREADS = min(2, fc.get_num_threads())
RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}
# One input's sizes: elements of any array, and multiply-adds of a convolution or GEMM.
MAX_ELEMENTS = 20_000
MAX_MACS = 400_000
# Values sprinkled into the arrays, with a subnormal of each dtype.
SPECIALS = (np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, 5e-324)
# Operand dtypes besides float32/float64: floats are cast to the call's dtype, the rest are refused.
OTHER_DTYPES = (np.float16, np.longdouble, np.int32, np.int64, np.uint8, np.bool_, np.complex64,
                np.complex128, object)
INDEX_DTYPES = (np.int64, np.int32, np.uint8, np.uint64, np.float64, np.bool_)
# Invalid spellings of each size argument: every one is a ValueError or TypeError for both modules.
BAD_SIZE_ARGS = {
    "stride": (0, -1, (1, 0), 1.5, 2.0, True, "2", (1, 1, 1)),
    "padding": (-1, (0, -2), 0.5, False, "1", (1,)),
    "kernel_size": (0, (2, -1), 2.0, True, (2, 2, 2), None),
}
BAD_ALGOS = ("fft", "Direct", None, "")
ARGUMENT_NAMES = {
    "conv2d": ("x", "weight", "bias", "stride", "padding", "algo"),
    "conv2d_backward": ("grad_out", "x", "weight", "stride", "padding", "algo"),
    "max_pool2d": ("x", "kernel_size", "stride", "padding"),
    "max_pool2d_backward": ("grad_out", "indices", "input_shape"),
    "avg_pool2d": ("x", "kernel_size", "stride", "padding"),
    "avg_pool2d_backward": ("grad_out", "input_shape", "kernel_size", "stride", "padding"),
    "gemm": ("a", "b"),
}


class Draw:
    """Decodes one input: the structure of the call from its bytes (so libFuzzer's mutations change
    shapes, dtypes and flags), array values from a seed read from them. Past the input's end every
    draw returns its lowest value, so the defaults (lowest values) are the common valid choices.
    `defects` lists the arguments the harness made invalid."""

    def __init__(self, data):
        self.fdp = atheris.FuzzedDataProvider(data)
        self.rng = np.random.default_rng(self.int(0, 2**32 - 1))
        self.defects = []

    def int(self, low, high):
        return self.fdp.ConsumeIntInRange(low, high)

    def pick(self, values):
        return values[self.int(0, len(values) - 1)]

    def rare(self, one_in):
        return self.int(0, one_in - 1) == one_in - 1

    def defect(self, name):
        self.defects.append(name)

    def size_arg(self, name, choices):
        """(argument, (h, w) or None): an int or an (h, w) pair of `choices`, spelled in one of the
        accepted ways, or, rarely, an invalid spelling (None then)."""
        if self.rare(32):
            self.defect(name)
            return self.pick(BAD_SIZE_ARGS[name]), None
        h = self.pick(choices)
        w = self.pick(choices) if self.int(0, 1) else h
        spelling = self.int(0, 3)
        if spelling == 0 and h == w:
            return h, (h, w)
        if spelling == 1:
            return [h, w], (h, w)
        if spelling == 2:
            return (np.int64(h), np.int32(w)), (h, w)
        return (h, w), (h, w)

    def algo(self):
        if self.rare(64):
            self.defect("algo")
            return self.pick(BAD_ALGOS)
        return self.pick(ALGOS)

    def dtype(self, call_dtype=None):
        """The dtype of an array: for the call's first array (call_dtype None) float32 or float64; for
        the others call_dtype, or another float (cast to it); rarely anything else (a defect)."""
        choice = self.int(0, 63)
        if choice < 60:
            return call_dtype if call_dtype is not None and choice < 48 else (np.float32, np.float64)[choice % 2]
        return OTHER_DTYPES[self.int(0, len(OTHER_DTYPES) - 1)]

    def array(self, name, shape, dtype, first=False, specials=True):
        """An array of `shape` and `dtype` in the layout the input picks; counts a dtype defect."""
        values = self.values(shape, dtype, specials)
        value = self.layout(values)
        kind = np.asarray(value).dtype   # a list of float32 values arrives as float64
        if first and kind not in RTOL or not first and kind.kind != "f":
            self.defect(name)
        return value

    def values(self, shape, dtype, specials):
        """Normal values, or small integers (ties, exact zeros) for a quarter of the arrays."""
        if self.int(0, 3) == 3:
            values = self.rng.integers(-2, 3, shape).astype(np.float64)
        else:
            values = self.rng.standard_normal(shape)
        if specials and values.size:
            for _ in range(self.pick((0, 0, 1, 2, 3, 8))):
                values.flat[self.int(0, values.size - 1)] = self.pick(SPECIALS)
        if np.dtype(dtype).kind in "iub":
            return np.nan_to_num(values, posinf=2, neginf=-2).astype(dtype)
        return values.astype(dtype)

    def layout(self, values):
        """values as a C, Fortran, reversed, strided, transposed, unaligned or read-only array, or a list."""
        axis = self.int(0, values.ndim - 1) if values.ndim else 0
        kind = self.pick(("C", "C", "C", "F", "reversed", "strided", "transposed", "unaligned", "readonly",
                          "list"))
        if kind == "F":
            return np.asfortranarray(values)
        if kind == "reversed" and values.ndim:
            return np.flip(np.flip(values, axis).copy(), axis)
        if kind == "strided" and values.ndim:
            wide = list(values.shape)
            wide[axis] *= 2
            buffer = np.zeros(wide, values.dtype)
            view = buffer[(slice(None),) * axis + (slice(None, None, 2),)]
            view[...] = values
            return view
        if kind == "transposed" and values.ndim:
            order = np.roll(np.arange(values.ndim), 1)
            return np.ascontiguousarray(values.transpose(order)).transpose(np.argsort(order))
        if kind == "unaligned" and values.dtype.itemsize > 1 and values.dtype != object:
            raw = np.zeros(values.nbytes + 1, np.uint8)[1:]
            view = raw.view(values.dtype).reshape(values.shape)
            view[...] = values
            return view
        if kind == "readonly":
            values.flags.writeable = False
            return values
        if kind == "list" and 0 < values.size <= 256:
            return values.tolist()
        return np.ascontiguousarray(values)


# ---- the calls -----------------------------------------------------------------------------------

def shrink(sizes, lows, cost, budget):
    """Shrink the largest of `sizes` (each down to its entry of `lows`) by a quarter until
    cost(sizes) <= budget: keeps every input's time and memory bounded without refusing it."""
    sizes = list(sizes)
    while cost(sizes) > budget:
        room = [size if size > low else 0 for size, low in zip(sizes, lows)]
        biggest = int(np.argmax(room))
        if room[biggest] == 0:
            break
        sizes[biggest] = max(lows[biggest], sizes[biggest] * 3 // 4)
    return sizes


def out_size(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1 if size + 2 * pad >= kernel else 0


def float_dtype(dtype):
    """The dtype the call's other operands mostly get: the first array's, or float64 if it has none."""
    return dtype if np.dtype(dtype) in RTOL else np.float64


def conv_shapes(d, kernel, stride, pad):
    """(N, C, H, W, K) of a convolution within the size caps; rarely a zero-size axis or an input
    smaller than the kernel (defects)."""
    batch = d.pick((2, 3, 1, 4, 0))
    channels, out_channels = d.int(1, 16), d.int(1, 40)
    lows = [max(1, kernel[i] - 2 * pad[i]) for i in range(2)]
    height, width = d.int(lows[0], 24), d.int(lows[1], 40)

    def cost(s):
        oh, ow = out_size(s[0], kernel[0], stride[0], pad[0]), out_size(s[1], kernel[1], stride[1], pad[1])
        return max(batch, 1) * max(s[0] * s[1] * s[2], s[3] * oh * ow * (1 + s[2] * kernel[0] * kernel[1]))

    height, width, channels, out_channels = shrink((height, width, channels, out_channels), lows + [1, 1], cost,
                                                   MAX_MACS)
    if d.rare(32):
        height = d.int(0, lows[0] - 1) if lows[0] > 1 else 0
        d.defect("x" if height == 0 else "weight")
    if d.rare(64):
        channels = 0
        d.defect("x")
    return batch, channels, height, width, out_channels


def conv_arguments(d, forward):
    """(x, weight, stride, padding) of a convolution (for its `forward` pass or not), its output shape
    (None if invalid), and whether values that meet the padding may hold specials."""
    stride_arg, stride = d.size_arg("stride", STRIDES)
    padding_arg, pad = d.size_arg("padding", (0, 1, 2, 0, 3))
    kernel = (d.int(1, 7), d.int(1, 7))
    batch, channels, height, width, out_channels = conv_shapes(d, kernel, stride or (1, 1), pad or (0, 0))
    x_dtype = d.dtype()
    x = d.array("x", (batch, channels, height, width), x_dtype, first=True)
    w_channels = channels
    if d.rare(64):
        w_channels = channels + 1
        d.defect("weight")
    # NaN or inf times a padding zero is NaN where a kernel forms that product (the reference's
    # forward and grad_w, im2col) and absent where it skips the padding (the direct gathers), so
    # such values go where they meet no padding: into the weight only for a forward without padding
    # (a direct grad_x pads grad_out with zeros), into grad_out and the bias likewise.
    unpadded = pad == (0, 0)
    weight = d.array("weight", (out_channels, w_channels) + kernel, d.dtype(float_dtype(x_dtype)),
                     specials=unpadded and forward)
    out_shape = None
    if stride and pad:
        out_shape = (batch, out_channels, out_size(height, kernel[0], stride[0], pad[0]),
                     out_size(width, kernel[1], stride[1], pad[1]))
    return (x, weight, stride_arg, padding_arg), out_shape, unpadded


def call_conv2d(d):
    (x, weight, stride, padding), _, unpadded = conv_arguments(d, forward=True)
    bias = None
    if d.int(0, 1):
        length = len(weight)
        if d.rare(64):
            length += 1
            d.defect("bias")
        bias = d.array("bias", (length,), d.dtype(float_dtype(np.asarray(x).dtype)), specials=unpadded)
    return (x, weight, bias, stride, padding), {"algo": d.algo()}


def call_conv2d_backward(d):
    (x, weight, stride, padding), out_shape, unpadded = conv_arguments(d, forward=False)
    out_shape = out_shape or (len(x), len(weight), 1, 1)
    if d.rare(64):
        out_shape = out_shape[:2] + (out_shape[2] + 1, out_shape[3])
        d.defect("grad_out")
    grad_out = d.array("grad_out", out_shape, d.dtype(float_dtype(np.asarray(x).dtype)), specials=unpadded)
    return (grad_out, x, weight, stride, padding), {"algo": d.algo()}


def pool_arguments(d):
    """x's shape, (kernel_size, stride, padding) and the output's (H, W) ((1, 1) if the window is
    invalid): a valid window over x, rarely a defect."""
    kernel_arg, kernel = d.size_arg("kernel_size", (2, 3, 1, 4, 5))
    stride_arg, stride = (None, kernel) if d.int(0, 2) == 0 else d.size_arg("stride", STRIDES)
    padding_arg, pad = d.size_arg("padding", (0, 1, 0, 2))
    kernel = kernel or (1, 1)
    if pad is not None and (pad[0] > kernel[0] // 2 or pad[1] > kernel[1] // 2):
        if d.rare(8):
            d.defect("padding")
        else:   # at most half the window: a valid call (stays an int where it was one)
            pad = (min(pad[0], kernel[0] // 2), min(pad[1], kernel[1] // 2))
            padding_arg = pad[0] if isinstance(padding_arg, int) and pad[0] == pad[1] else pad
    pad = pad or (0, 0)
    lows = [max(1, kernel[i] - 2 * pad[i]) for i in range(2)]
    batch, channels = d.pick((2, 1, 3, 4, 0)), d.int(1, 8)
    height, width = d.int(lows[0], 24), d.int(lows[1], 40)
    height, width, channels = shrink((height, width, channels), lows + [1],
                                     lambda s: max(batch, 1) * s[0] * s[1] * s[2], MAX_ELEMENTS)
    if d.rare(32):
        height = d.int(0, lows[0] - 1) if lows[0] > 1 else 0
        d.defect("x" if height == 0 else "kernel_size")
    out_hw = (1, 1)
    if stride and not d.defects:
        out_hw = (out_size(height, kernel[0], stride[0], pad[0]), out_size(width, kernel[1], stride[1], pad[1]))
    return (batch, channels, height, width), (kernel_arg, stride_arg, padding_arg), out_hw


def call_pool(d):
    shape, window, _ = pool_arguments(d)
    return (d.array("x", shape, d.dtype(), first=True),) + window, {}


def input_shape_arg(d, shape):
    """input_shape as a tuple, list or array of ints; rarely a defect."""
    if d.rare(64):
        d.defect("input_shape")
        return d.pick((shape[:3], (-1,) + shape[1:], (shape[0], shape[1], 2.0, shape[3]), 6))
    return d.pick((shape, list(shape), np.array(shape), tuple(np.int32(v) for v in shape)))


def call_avg_pool2d_backward(d):
    shape, window, out_hw = pool_arguments(d)
    grad_shape = shape[:2] + out_hw
    if d.rare(64):
        grad_shape = grad_shape[:3] + (grad_shape[3] + 1,)
        d.defect("grad_out")
    grad_out = d.array("grad_out", grad_shape, d.dtype(), first=True)
    return (grad_out, input_shape_arg(d, shape)) + window, {}


def call_max_pool2d_backward(d):
    """indices from max_pool2d of random values, or random in-range ones (repeats accumulate); rarely
    out of range or of another dtype (defects)."""
    shape, window, out_hw = pool_arguments(d)
    # The window only shapes grad_out and the indices here: of its defects, only a zero-size x counts.
    window_ok, shape_ok = not d.defects, "x" not in d.defects
    d.defects = [] if shape_ok else ["input_shape"]
    grad_shape = shape[:2] + out_hw
    if d.rare(32):   # no gradient to route: the reference returns zeros
        grad_shape = grad_shape[:2] + d.pick(((0, out_hw[1]), (out_hw[0], 0)))
    plane = max(1, shape[2] * shape[3])
    indices = d.rng.integers(0, plane, grad_shape)
    if d.int(0, 1) and window_ok:
        indices = ref.max_pool2d(d.rng.standard_normal(shape), *window)[1]
    if d.rare(32) and indices.size:
        indices.flat[d.int(0, indices.size - 1)] = d.pick((-1, plane, 2**62, -(2**40)))
        d.defect("indices")
    index_dtype = np.dtype(d.pick(INDEX_DTYPES) if d.rare(8) else np.int64)
    if index_dtype.kind not in "iu":
        d.defect("indices")
    elif indices.size and (indices.min() < np.iinfo(index_dtype).min or indices.max() > np.iinfo(index_dtype).max):
        index_dtype = np.dtype(np.int64)   # a wrapping cast would change which element is meant
    indices = d.layout(indices.astype(index_dtype))
    grad_out = d.array("grad_out", grad_shape, d.dtype(), first=True)
    return (grad_out, indices, input_shape_arg(d, shape)), {}


def call_gemm(d):
    rows, depth, cols = d.int(0, 64), d.int(0, 64), d.int(0, 64)
    rows, depth, cols = shrink((rows, depth, cols), (0, 0, 0), lambda s: s[0] * s[1] * s[2], MAX_MACS // 4)
    b_rows = depth
    if d.rare(64):
        b_rows += 1
        d.defect("b")
    a_dtype = d.dtype()
    a = d.array("a", (rows, depth), a_dtype, first=True)
    b = d.array("b", (b_rows, cols), d.dtype(float_dtype(a_dtype)))
    if d.rare(64):
        a = np.asarray(a)[None]
        d.defect("a")
    return (a, b), {}


def reference_gemm(a, b):
    """fastconv.gemm's contract in NumPy (float64 arithmetic, the result in a's dtype)."""
    a = np.asarray(a)
    if a.dtype not in RTOL:
        raise TypeError(f"a must have dtype float32 or float64, got {a.dtype}")
    b = np.asarray(b)
    if b.dtype.kind != "f":
        raise TypeError(f"b must have a floating dtype, got {b.dtype}")
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"a and b must be 2-D, got {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"b must have {a.shape[1]} rows, got {b.shape[0]}")
    product = a.astype(np.float64) @ b.astype(a.dtype).astype(np.float64)
    return product.astype(a.dtype)


CALLS = {
    "conv2d": (call_conv2d, fc.conv2d, ref.conv2d),
    "conv2d_backward": (call_conv2d_backward, fc.conv2d_backward, ref.conv2d_backward),
    "max_pool2d": (call_pool, fc.max_pool2d, ref.max_pool2d),
    "max_pool2d_backward": (call_max_pool2d_backward, fc.max_pool2d_backward, ref.max_pool2d_backward),
    "avg_pool2d": (call_pool, fc.avg_pool2d, ref.avg_pool2d),
    "avg_pool2d_backward": (call_avg_pool2d_backward, fc.avg_pool2d_backward, ref.avg_pool2d_backward),
    "gemm": (call_gemm, fc.gemm, reference_gemm),
}
OPS = tuple(CALLS)


# ---- kernel routes as coverage -------------------------------------------------------------------

_route_counters = {}


def mark_route(key):
    """Count `key` as a coverage feature of its own (atheris sees Python code only, not which C kernel
    ran): one libFuzzer counter per distinct key, reserved on first sight."""
    counter = _route_counters.get(key)
    if counter is None:
        counter = _route_counters[key] = atheris._reserve_counter()
    atheris._trace_branch(counter)


def conv_route(x, weight, stride, padding, simd_name, algo):
    """The kernels the convolution runs, by name: fastconv.conv2d_plan's forward / grad_x / grad_w."""
    x, weight = np.asarray(x), np.asarray(weight)
    os.environ["FASTCONV_SIMD"] = simd_name
    return tuple(fc.conv2d_plan(x.shape, weight.shape, stride, padding, x.dtype, algo=algo))


def route(op, args, kwargs, simd_name, threads):
    """The key of a call that the reference accepted: op, SIMD level, threads, algo, dtype, and for
    the convolutions the kernels each pass runs."""
    key = (op, simd_name, threads, kwargs.get("algo"))
    if not op.startswith("conv"):
        return key + (str(np.asarray(args[0]).dtype),)
    x, weight = (args[0], args[1]) if op == "conv2d" else (args[1], args[2])
    return key + (str(np.asarray(x).dtype),) + conv_route(x, weight, args[-2], args[-1], simd_name,
                                                          kwargs.get("algo", "auto"))


# ---- checks --------------------------------------------------------------------------------------

class Call:
    """One decoded input: the op, its arguments, the SIMD level and thread counts it runs with."""

    def __init__(self, data):
        d = Draw(data)
        self.op = d.pick(OPS)
        self.simd_name = d.pick(SIMD_LEVELS)
        # Few inputs on 2 threads: on a busy machine a parallel region can wait milliseconds for a core.
        self.threads = 2 if MAX_THREADS == 2 and d.rare(4) else 1
        self.compare_threads = MAX_THREADS == 2 and d.rare(8)
        make_call, self.fastconv, self.reference = CALLS[self.op]
        self.args, self.kwargs = make_call(d)
        self.defects = d.defects

    def run(self, threads):
        os.environ["FASTCONV_SIMD"] = self.simd_name
        fc.set_num_threads(threads)
        return as_tuple(self.fastconv(*self.args, **self.kwargs))

    def __str__(self):
        shown = [f"{type(a).__name__}{np.shape(a)}:{np.asarray(a).dtype}" if isinstance(a, (np.ndarray, list))
                 else repr(a) for a in self.args]
        return (f"{self.op}({', '.join(shown)}, {self.kwargs}) simd={self.simd_name} threads={self.threads} "
                f"defects={self.defects}")


def as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


def mismatches(got, want, magnitude=None):
    """Mask of the positions where got differs from want: integers unequal; where want is NaN or an
    inf, anything else than the same; elsewhere a value off by more than the dtype's tolerance (the
    absolute one scaled by the largest finite |want|, or by `magnitude`, the sum of the absolute
    terms where want sums many, which bounds rounding when the terms cancel), or not finite."""
    if want.dtype.kind in "iu":
        return got != want
    finite = np.isfinite(want)
    special_differs = ~finite & ~((got == want) | (np.isnan(got) & np.isnan(want)))
    rtol = RTOL[want.dtype]
    scale = np.max(np.abs(want), where=finite, initial=0.0)
    if magnitude is not None:
        scale = np.maximum(scale, np.nan_to_num(magnitude, nan=0.0, posinf=0.0))
    with np.errstate(invalid="ignore", over="ignore"):
        far = finite & ~(np.abs(got - want) <= rtol * (scale + np.abs(want)))
    return special_differs | far


def absolute_arguments(args):
    """args with every float array made |array|: the reference on them gives each result's sum of
    absolute terms."""
    def absolute(arg):
        if isinstance(arg, (np.ndarray, list)) and np.asarray(arg).dtype.kind == "f":
            return np.abs(np.asarray(arg))
        return arg
    return tuple(absolute(arg) for arg in args)


def assert_same_values(got, want, label, magnitude=lambda: None):
    """got equals want within mismatches' tolerance; magnitude() (computed only when the values differ
    at the plain tolerance) gives the sums of absolute terms."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, f"{label}: dtype {got.dtype}, reference {want.dtype}"
    assert got.shape == want.shape, f"{label}: shape {got.shape}, reference {want.shape}"
    bad = mismatches(got, want)
    if bad.any():
        bad = mismatches(got, want, magnitude())
    if bad.any():
        first = np.unravel_index(np.argmax(bad), bad.shape)
        raise AssertionError(f"{label}: {bad.sum()} of {bad.size} values differ from the reference, the "
                             f"first at {first}: {got[first]!r}, reference {want[first]!r}")


def snapshot(args):
    """Copies of the array arguments, to check that a call leaves them unchanged."""
    return [np.array(a, copy=True) if isinstance(a, np.ndarray) else None for a in args]


def assert_unchanged(args, copies, label):
    for position, (arg, copy) in enumerate(zip(args, copies)):
        if copy is not None:
            assert arg.dtype == copy.dtype and np.array_equal(arg, copy, equal_nan=copy.dtype.kind in "fc"), \
                f"{label}: argument {position} was modified"


def assert_refused(call, exc, expected):
    """fastconv's error for a call the reference refused: the same class when the call has one defect
    (with several, each module may report a different one first), a message naming an argument."""
    if len(set(call.defects)) <= 1:
        assert type(exc) is type(expected), \
            f"{call}: fastconv raised {type(exc).__name__}({exc}), the reference {type(expected).__name__}({expected})"
    names = "|".join(ARGUMENT_NAMES[call.op])
    assert re.search(rf"\b({names})\b", str(exc)), f"{call}: the message names no argument: {exc}"


def TestOneInput(data):
    call = Call(data)
    try:
        with np.errstate(all="ignore"):   # the reference meets inf - inf and 0 * inf too
            expected = as_tuple(call.reference(*call.args, **call.kwargs))
    except (ValueError, TypeError) as refusal:
        mark_route((call.op, "refused", type(refusal).__name__))
        try:
            call.run(call.threads)
        except (ValueError, TypeError) as exc:
            assert_refused(call, exc, refusal)
            return
        raise AssertionError(f"{call}: the reference raised {type(refusal).__name__}({refusal}), fastconv "
                             "returned a result") from None
    assert not call.defects, f"{call}: the reference accepted a call the harness made invalid"
    mark_route(route(call.op, call.args, call.kwargs, call.simd_name, call.threads))
    copies = snapshot(call.args)
    try:
        got = call.run(call.threads)
    except (ValueError, TypeError) as exc:
        raise AssertionError(f"{call}: fastconv raised {type(exc).__name__}({exc}), the reference returned a "
                             "result") from exc
    assert_unchanged(call.args, copies, call)
    assert len(got) == len(expected), call
    def magnitude(position):
        with np.errstate(all="ignore"):
            return as_tuple(call.reference(*absolute_arguments(call.args), **call.kwargs))[position]
    for position, (value, want) in enumerate(zip(got, expected)):
        assert_same_values(value, want, f"{call} result {position}", lambda: magnitude(position))
    if call.compare_threads:
        other = 3 - call.threads
        for position, (value, first) in enumerate(zip(call.run(other), got)):
            assert value.tobytes() == first.tobytes(), f"{call} result {position}: other bytes on {other} threads"


def main():
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
