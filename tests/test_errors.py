"""Invalid input: the exception type and a message naming the offending argument.

Argument rules are shared by fastconv's kernels and the NumPy reference, so each shared case runs
against both; FASTCONV_SIMD, set_num_threads and the int64 size limits are fastconv's alone.
"""

import numpy as np
import pytest

import fastconv as fc
from fastconv import reference as ref

X = np.zeros((2, 3, 6, 6))           # a valid input
W = np.zeros((4, 3, 3, 3))           # a valid weight: conv output (2, 4, 4, 4)
B = np.zeros(4)
G = np.zeros((2, 4, 4, 4))           # grad_out of conv2d(X, W)
PG = np.zeros((2, 3, 3, 3))          # grad_out of a 2x2 pool of X
IDX = np.zeros((2, 3, 3, 3), np.int64)


def indices_with(value):
    indices = IDX.copy()
    indices[1, 2, 0, 1] = value
    return indices


# (id, call(module), exception, regex the message must contain)
SHARED_CASES = [
    # wrong number of dimensions
    ("conv2d-x-3d", lambda m: m.conv2d(np.zeros((3, 6, 6)), W), ValueError, r"\bx\b"),
    ("conv2d-x-5d", lambda m: m.conv2d(np.zeros((1, 2, 3, 6, 6)), W), ValueError, r"\bx\b"),
    ("conv2d-weight-3d", lambda m: m.conv2d(X, np.zeros((3, 3, 3))), ValueError, "weight"),
    ("conv2d-bias-2d", lambda m: m.conv2d(X, W, np.zeros((4, 1))), ValueError, "bias"),
    ("conv2d-bias-wrong-length", lambda m: m.conv2d(X, W, np.zeros(3)), ValueError, "bias"),
    ("conv2d_backward-grad_out-3d", lambda m: m.conv2d_backward(G[0], X, W), ValueError, "grad_out"),
    ("conv2d_backward-x-2d", lambda m: m.conv2d_backward(G, X[0, 0], W), ValueError, r"\bx\b"),
    ("max_pool2d-x-3d", lambda m: m.max_pool2d(X[0], 2), ValueError, r"\bx\b"),
    ("avg_pool2d-x-5d", lambda m: m.avg_pool2d(X[None], 2), ValueError, r"\bx\b"),
    ("max_pool2d_backward-grad_out-3d", lambda m: m.max_pool2d_backward(PG[0], IDX[0], X.shape), ValueError,
     "grad_out"),
    ("avg_pool2d_backward-grad_out-5d", lambda m: m.avg_pool2d_backward(PG[None], X.shape, 2), ValueError,
     "grad_out"),
    # sizes and shapes
    ("conv2d-channel-mismatch", lambda m: m.conv2d(X, np.zeros((4, 2, 3, 3))), ValueError, "weight"),
    ("conv2d-kernel-larger-than-padded-input", lambda m: m.conv2d(X, np.zeros((4, 3, 9, 3)), padding=1),
     ValueError, "larger than the padded input"),
    ("conv2d-zero-channels", lambda m: m.conv2d(np.zeros((2, 0, 6, 6)), np.zeros((4, 0, 3, 3))), ValueError,
     r"\bx\b"),
    ("conv2d-zero-height", lambda m: m.conv2d(np.zeros((2, 3, 0, 6)), W), ValueError, r"\bx\b"),
    ("conv2d-zero-out-channels", lambda m: m.conv2d(X, np.zeros((0, 3, 3, 3))), ValueError, "weight"),
    ("conv2d_backward-grad_out-shape-mismatch", lambda m: m.conv2d_backward(np.zeros((2, 4, 5, 4)), X, W),
     ValueError, "grad_out"),
    ("max_pool2d-kernel-larger-than-padded-input", lambda m: m.max_pool2d(X, (7, 2)), ValueError,
     "kernel_size"),
    ("avg_pool2d-kernel-larger-than-padded-input", lambda m: m.avg_pool2d(X, (1, 7)), ValueError,
     "kernel_size"),
    ("max_pool2d-kernel_size-0", lambda m: m.max_pool2d(X, 0), ValueError, "kernel_size"),
    ("avg_pool2d-kernel_size-negative", lambda m: m.avg_pool2d(X, (2, -1)), ValueError, "kernel_size"),
    ("max_pool2d-kernel_size-3-values", lambda m: m.max_pool2d(X, (2, 2, 2)), ValueError, "kernel_size"),
    ("max_pool2d-padding-over-half-kernel", lambda m: m.max_pool2d(X, 2, padding=2), ValueError, "padding"),
    ("avg_pool2d-padding-over-half-kernel-width", lambda m: m.avg_pool2d(X, 3, padding=(1, 2)), ValueError,
     "padding"),
    ("avg_pool2d_backward-grad_out-shape-mismatch", lambda m: m.avg_pool2d_backward(np.zeros((2, 3, 2, 3)),
                                                                                     X.shape, 2),
     ValueError, "grad_out"),
    ("avg_pool2d_backward-input_shape-3-entries", lambda m: m.avg_pool2d_backward(PG, (3, 6, 6), 2), ValueError,
     "input_shape"),
    ("avg_pool2d_backward-input_shape-not-a-sequence", lambda m: m.avg_pool2d_backward(PG, 6, 2), ValueError,
     "input_shape"),
    ("avg_pool2d_backward-input_shape-negative", lambda m: m.avg_pool2d_backward(PG, (2, 3, -6, 6), 2),
     ValueError, "input_shape"),
    ("avg_pool2d_backward-input_shape-float", lambda m: m.avg_pool2d_backward(PG, (2, 3, 6.0, 6), 2),
     TypeError, "input_shape"),
    ("max_pool2d_backward-input_shape-5-entries", lambda m: m.max_pool2d_backward(PG, IDX, (1,) + X.shape),
     ValueError, "input_shape"),
    ("max_pool2d_backward-input_shape-batch-mismatch", lambda m: m.max_pool2d_backward(PG, IDX, (3, 3, 6, 6)),
     ValueError, "input_shape"),
    ("max_pool2d_backward-input_shape-channel-mismatch", lambda m: m.max_pool2d_backward(PG, IDX, (2, 4, 6, 6)),
     ValueError, "input_shape"),
    ("max_pool2d_backward-indices-shape-mismatch", lambda m: m.max_pool2d_backward(PG, IDX[:, :, :2], X.shape),
     ValueError, "indices"),
    ("max_pool2d_backward-indices-negative", lambda m: m.max_pool2d_backward(PG, indices_with(-1), X.shape),
     ValueError, "indices"),
    ("max_pool2d_backward-indices-equal-to-H*W", lambda m: m.max_pool2d_backward(PG, indices_with(36), X.shape),
     ValueError, "indices"),
    ("max_pool2d_backward-indices-huge", lambda m: m.max_pool2d_backward(PG, indices_with(2**62), X.shape),
     ValueError, "indices"),
    ("max_pool2d_backward-indices-float", lambda m: m.max_pool2d_backward(PG, IDX.astype(np.float64), X.shape),
     TypeError, "indices"),
    ("max_pool2d_backward-indices-bool", lambda m: m.max_pool2d_backward(PG, IDX.astype(bool), X.shape),
     TypeError, "indices"),
    ("avg_pool2d_backward-input_shape-overflows-int64",
     lambda m: m.avg_pool2d_backward(np.zeros((1, 1, 1, 1)), (2**40, 2**40, 2, 2), 2), ValueError, "input_shape"),
    ("max_pool2d_backward-input_shape-overflows-int64",
     lambda m: m.max_pool2d_backward(np.zeros((1, 1, 1, 1)), np.zeros((1, 1, 1, 1), np.int64),
                                     (2**40, 2**40, 2, 2)), ValueError, "input_shape"),
    # stride and padding values
    ("conv2d-stride-0", lambda m: m.conv2d(X, W, stride=0), ValueError, "stride"),
    ("conv2d-stride-negative", lambda m: m.conv2d(X, W, stride=-1), ValueError, "stride"),
    ("conv2d-stride-pair-with-0", lambda m: m.conv2d(X, W, stride=(1, 0)), ValueError, "stride"),
    # both arguments bad: both modules name the first in the signature
    ("conv2d-stride-0-padding-nan", lambda m: m.conv2d(X, W, stride=(1, 0), padding=(float("nan"),) * 2), ValueError,
     "stride"),
    ("conv2d-stride-3-values", lambda m: m.conv2d(X, W, stride=(1, 1, 1)), ValueError, "stride"),
    ("conv2d-padding-negative", lambda m: m.conv2d(X, W, padding=-1), ValueError, "padding"),
    ("conv2d-padding-pair-negative", lambda m: m.conv2d(X, W, padding=(0, -2)), ValueError, "padding"),
    ("conv2d_backward-stride-0", lambda m: m.conv2d_backward(G, X, W, stride=0), ValueError, "stride"),
    ("max_pool2d-stride-0", lambda m: m.max_pool2d(X, 2, stride=0), ValueError, "stride"),
    ("avg_pool2d-padding-negative", lambda m: m.avg_pool2d(X, 2, padding=-1), ValueError, "padding"),
    ("avg_pool2d_backward-stride-negative", lambda m: m.avg_pool2d_backward(PG, X.shape, 2, stride=-2), ValueError,
     "stride"),
    # stride, padding and kernel_size types
    ("conv2d-stride-float", lambda m: m.conv2d(X, W, stride=1.5), TypeError, "stride"),
    ("conv2d-stride-integral-float", lambda m: m.conv2d(X, W, stride=1.0), TypeError, "stride"),
    ("conv2d-stride-bool", lambda m: m.conv2d(X, W, stride=True), TypeError, "stride"),
    ("conv2d-stride-str", lambda m: m.conv2d(X, W, stride="2"), TypeError, "stride"),
    ("conv2d-stride-pair-with-float", lambda m: m.conv2d(X, W, stride=(1, 2.0)), TypeError, "stride"),
    ("conv2d-padding-float", lambda m: m.conv2d(X, W, padding=0.5), TypeError, "padding"),
    ("conv2d-padding-bool", lambda m: m.conv2d(X, W, padding=False), TypeError, "padding"),
    ("max_pool2d-kernel_size-float", lambda m: m.max_pool2d(X, 2.0), TypeError, "kernel_size"),
    ("max_pool2d-kernel_size-bool", lambda m: m.max_pool2d(X, True), TypeError, "kernel_size"),
    ("avg_pool2d-stride-float", lambda m: m.avg_pool2d(X, 2, stride=1.5), TypeError, "stride"),
    ("avg_pool2d-padding-bool", lambda m: m.avg_pool2d(X, 2, padding=True), TypeError, "padding"),
    # dtypes
    ("conv2d-x-int", lambda m: m.conv2d(X.astype(np.int64), W), TypeError, r"\bx\b"),
    ("conv2d-x-int-list", lambda m: m.conv2d([[[[1, 2], [3, 4]]]], np.zeros((1, 1, 1, 1))), TypeError, r"\bx\b"),
    ("conv2d-x-bool", lambda m: m.conv2d(X.astype(bool), W), TypeError, r"\bx\b"),
    ("conv2d-x-complex", lambda m: m.conv2d(X.astype(np.complex128), W), TypeError, r"\bx\b"),
    ("conv2d-x-float16", lambda m: m.conv2d(X.astype(np.float16), W), TypeError, r"\bx\b"),
    ("conv2d-x-object", lambda m: m.conv2d(X.astype(object), W), TypeError, r"\bx\b"),
    ("conv2d-x-str", lambda m: m.conv2d(np.full((1, 1, 2, 2), "a"), np.zeros((1, 1, 1, 1))), TypeError,
     r"\bx\b"),
    ("conv2d-x-ragged-list", lambda m: m.conv2d([[[[1.0, 2.0], [3.0]]]], np.zeros((1, 1, 1, 1))), ValueError,
     r"\bx\b"),
    ("conv2d-weight-int", lambda m: m.conv2d(X, W.astype(np.int32)), TypeError, "weight"),
    ("conv2d-weight-complex", lambda m: m.conv2d(X, W.astype(np.complex64)), TypeError, "weight"),
    ("conv2d-bias-int", lambda m: m.conv2d(X, W, np.zeros(4, np.int64)), TypeError, "bias"),
    ("conv2d-bias-object", lambda m: m.conv2d(X, W, B.astype(object)), TypeError, "bias"),
    ("conv2d_backward-grad_out-int", lambda m: m.conv2d_backward(G.astype(np.int64), X, W), TypeError,
     "grad_out"),
    ("conv2d_backward-x-complex", lambda m: m.conv2d_backward(G, X.astype(complex), W), TypeError, r"\bx\b"),
    ("max_pool2d-x-int", lambda m: m.max_pool2d(X.astype(np.int16), 2), TypeError, r"\bx\b"),
    ("avg_pool2d-x-complex", lambda m: m.avg_pool2d(X.astype(np.complex128), 2), TypeError, r"\bx\b"),
    ("max_pool2d_backward-grad_out-int", lambda m: m.max_pool2d_backward(PG.astype(np.int64), IDX, X.shape),
     TypeError, "grad_out"),
    ("avg_pool2d_backward-grad_out-str", lambda m: m.avg_pool2d_backward(PG.astype(str), X.shape, 2), TypeError,
     "grad_out"),
    # algo
    ("conv2d-algo-unknown", lambda m: m.conv2d(X, W, algo="fft"), ValueError, "algo"),
    ("conv2d-algo-None", lambda m: m.conv2d(X, W, algo=None), ValueError, "algo"),
    ("conv2d-algo-wrong-case", lambda m: m.conv2d(X, W, algo="Direct"), ValueError, "algo"),
    ("conv2d_backward-algo-unknown", lambda m: m.conv2d_backward(G, X, W, algo="gemm"), ValueError, "algo"),
]


@pytest.mark.parametrize("module", [fc, ref], ids=["fastconv", "reference"])
@pytest.mark.parametrize("call, error, message", [pytest.param(*case[1:], id=case[0]) for case in SHARED_CASES])
def test_invalid_argument(module, call, error, message):
    with pytest.raises(error, match=message):
        call(module)


FASTCONV_ONLY_CASES = [
    ("set_num_threads-0", lambda: fc.set_num_threads(0), ValueError, r"\bn\b"),
    ("set_num_threads-negative", lambda: fc.set_num_threads(-2), ValueError, r"\bn\b"),
    ("set_num_threads-str", lambda: fc.set_num_threads("2"), TypeError, r"\bn\b"),
    ("set_num_threads-float", lambda: fc.set_num_threads(2.0), TypeError, r"\bn\b"),
    ("set_num_threads-bool", lambda: fc.set_num_threads(True), TypeError, r"\bn\b"),
    # More elements than fastconv lets any buffer hold (its byte count would overflow int64).
    ("avg_pool2d_backward-input_shape-too-many-bytes",
     lambda: fc.avg_pool2d_backward(np.zeros((1, 1, 1, 1)), (2**61, 1, 1, 1), 1), ValueError, "input_shape"),
    ("max_pool2d_backward-input_shape-too-many-bytes",
     lambda: fc.max_pool2d_backward(np.zeros((1, 1, 1, 1)), np.zeros((1, 1, 1, 1), np.int64), (1, 1, 2**31, 2**31)),
     ValueError, "input_shape"),
]


@pytest.mark.parametrize("call, error, message", [pytest.param(*case[1:], id=case[0]) for case in FASTCONV_ONLY_CASES])
def test_invalid_argument_fastconv_only(call, error, message):
    saved = fc.get_num_threads()
    try:
        with pytest.raises(error, match=message):
            call()
    finally:
        fc.set_num_threads(saved)
    assert fc.get_num_threads() == saved  # a refused value leaves the setting alone


KERNEL_CALLS = {
    "conv2d": lambda: fc.conv2d(X, W, B),
    "conv2d_backward": lambda: fc.conv2d_backward(G, X, W),
    "max_pool2d": lambda: fc.max_pool2d(X, 2),
    "max_pool2d_backward": lambda: fc.max_pool2d_backward(PG, IDX, X.shape),
    "avg_pool2d": lambda: fc.avg_pool2d(X, 2),
    "avg_pool2d_backward": lambda: fc.avg_pool2d_backward(PG, X.shape, 2),
}


@pytest.mark.parametrize("kernel", KERNEL_CALLS)
@pytest.mark.parametrize("request_value", ["sse9", "avx1024", "none"])
def test_unknown_fastconv_simd_is_refused(kernel, request_value, monkeypatch):
    monkeypatch.setenv("FASTCONV_SIMD", request_value)
    with pytest.raises(ValueError, match="FASTCONV_SIMD"):
        KERNEL_CALLS[kernel]()
    monkeypatch.setenv("FASTCONV_SIMD", "scalar")
    KERNEL_CALLS[kernel]()  # the same call runs once the variable is valid
