"""Shared hypothesis strategies and numeric helpers of the kernel tests.

pytest runs in importlib mode, so test modules cannot ``import conftest``; the helpers reach them
through two session-scoped fixtures instead (session scope keeps them usable inside @given):
``strategies`` (random convolution / pooling cases) and ``numerics`` (comparison, finite
differences, FASTCONV_SIMD switching).
"""

import contextlib
import dataclasses
import os
import types

import numpy as np
import pytest
from hypothesis import strategies as st

# Relative tolerance per dtype; the absolute tolerance is the same factor times max|expected|.
RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}


@dataclasses.dataclass
class ConvCase:
    """Arguments of one convolution: arrays in float64, stride/padding as an int or (h, w)."""
    x: np.ndarray
    weight: np.ndarray
    bias: object
    stride: object
    padding: object

    def cast(self, dtype):
        bias = None if self.bias is None else self.bias.astype(dtype)
        return ConvCase(self.x.astype(dtype), self.weight.astype(dtype), bias, self.stride, self.padding)


@dataclasses.dataclass
class PoolCase:
    """Arguments of one pooling: x in float64, kernel_size/stride/padding as an int or (h, w)."""
    x: np.ndarray
    kernel_size: object
    stride: object
    padding: object


def _int_or_pair(pair, as_int):
    """An (h, w) pair, or its common value as an int (both spellings must be accepted)."""
    return pair[0] if as_int and pair[0] == pair[1] else pair


# Multiply-adds one drawn convolution may cost (N * K * OH * OW * C * R * S): each case runs at every
# algo and SIMD level against the NumPy reference, so the wide families below stay this cheap.
CONV_CASE_MACS = 200_000


@st.composite
def conv_case(draw, with_bias=None, max_side=12, max_batch=4, wide=True):
    """A valid convolution from one of three families (`wide=False`: the first only):

    - small: N 1..4, C 1..5, H/W 1..12, K 1..5, kernel 1..5, stride 1..3, padding 0..2;
    - many output channels: K 6..40, C 1..16 (the kvec forward and kvgw grad_w kernels, which need K
      of about a vector: 8 / 16 float32 lanes on AVX2 / AVX-512);
    - wide rows: K 1..12, C 1..16, stride 1 along the width, padding below the kernel, output rows
      of 16 to 40 (the kernels vectorised over columns: wvec forward and grad_x, the rows kernel for
      grad_x with C 1..2, wvgw grad_w below a vector of K).

    The wide families keep N >= 2 (those kernels parallelise over images) and draw C last, within
    CONV_CASE_MACS."""
    family = draw(st.sampled_from(("small", "many-out-channels", "wide-rows"))) if wide else "small"
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    # Wide rows: padding at most kernel - 1, as grad_x's kernels over columns need.
    max_padding = [min(2, k - 1) if family == "wide-rows" else 2 for k in kernel]
    padding = (draw(st.integers(0, max_padding[0])), draw(st.integers(0, max_padding[1])))
    # The padded input must hold the kernel.
    min_hw = (max(1, kernel[0] - 2 * padding[0]), max(1, kernel[1] - 2 * padding[1]))
    if family == "small":
        height, width = draw(st.integers(min_hw[0], max_side)), draw(st.integers(min_hw[1], max_side))
        stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        batch, out_channels = draw(st.integers(1, max_batch)), draw(st.integers(1, 5))
    elif family == "many-out-channels":
        height, width = draw(st.integers(min_hw[0], 10)), draw(st.integers(min_hw[1], 10))
        stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        batch, out_channels = draw(st.integers(2, max(2, max_batch))), draw(st.integers(6, 40))
    else:   # rows of 16 outputs or more (a float32 vector on AVX-512); K often half to one wvec block
        height, width = draw(st.integers(min_hw[0], 8)), draw(st.integers(15 + kernel[1], 40))
        stride = (draw(st.sampled_from((1, 1, 2))), 1)
        batch = draw(st.integers(2, max(2, max_batch)))
        out_channels = draw(st.integers(3, 6) | st.integers(1, 12))
    out_hw = [(size + 2 * pad - k) // step + 1 for size, pad, k, step in zip((height, width), padding, kernel, stride)]
    per_channel = batch * out_channels * out_hw[0] * out_hw[1] * kernel[0] * kernel[1]
    if family == "small":
        channels = draw(st.integers(1, 5))
    else:   # 3 or more often: grad_x's wvec kernel takes 3..12 input channels, its rows kernel 1..2
        max_channels = min(16, max(1, CONV_CASE_MACS // per_channel))
        channels = draw(st.integers(min(3, max_channels), max_channels) | st.integers(1, max_channels))
    has_bias = draw(st.booleans()) if with_bias is None else with_bias
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    as_int = draw(st.booleans())
    return ConvCase(
        x=rng.standard_normal((batch, channels, height, width)),
        weight=rng.standard_normal((out_channels, channels) + kernel),
        bias=rng.standard_normal(out_channels) if has_bias else None,
        stride=_int_or_pair(stride, as_int),
        padding=_int_or_pair(padding, as_int),
    )


@st.composite
def pool_case(draw, max_side=12, max_batch=4):
    """A valid pooling: kernel 1..5, stride None or 1..3, padding 0..kernel//2, H/W 1..12, N 1..4, C 1..5."""
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    height = draw(st.integers(max(1, kernel[0] - 2 * padding[0]), max_side))
    width = draw(st.integers(max(1, kernel[1] - 2 * padding[1]), max_side))
    stride = draw(st.none() | st.tuples(st.integers(1, 3), st.integers(1, 3)))
    shape = (draw(st.integers(1, max_batch)), draw(st.integers(1, 5)), height, width)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    as_int = draw(st.booleans())
    return PoolCase(
        x=rng.standard_normal(shape),
        kernel_size=_int_or_pair(kernel, as_int),
        stride=None if stride is None else _int_or_pair(stride, as_int),
        padding=_int_or_pair(padding, as_int),
    )


def assert_close(actual, expected, dtype=None, label=""):
    """actual == expected to the tolerance of ``dtype`` (default: actual's), atol scaled by max|expected|."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    rtol = RTOL[np.dtype(dtype or actual.dtype)]
    assert actual.shape == expected.shape, f"{label}: shape {actual.shape} != {expected.shape}"
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=label)


def numerical_gradient(loss, array, eps=1e-6, positions=None):
    """Central-difference gradient of the scalar ``loss()`` with respect to ``array`` (changed in place), at
    every element or only at ``positions`` (index tuples; the others stay 0)."""
    grad = np.zeros_like(array)
    for position in np.ndindex(array.shape) if positions is None else positions:
        saved = array[position]
        array[position] = saved + eps
        plus = loss()
        array[position] = saved - eps
        minus = loss()
        array[position] = saved
        grad[position] = (plus - minus) / (2 * eps)
    return grad


@contextlib.contextmanager
def simd_env(level):
    """FASTCONV_SIMD=level inside the block (usable inside @given, where monkeypatch is not)."""
    saved = os.environ.get("FASTCONV_SIMD")
    os.environ["FASTCONV_SIMD"] = level
    try:
        yield
    finally:
        if saved is None:
            del os.environ["FASTCONV_SIMD"]
        else:
            os.environ["FASTCONV_SIMD"] = saved


def at_threads(call, threads):
    """[call() at each thread count of `threads`], adaptive threads off (the thread settings restored)."""
    import fastconv as fc
    saved_threads, saved_adaptive = fc.get_num_threads(), fc.get_adaptive_threads()
    fc.set_adaptive_threads(False)
    try:
        results = []
        for count in threads:
            fc.set_num_threads(count)
            results.append(call())
        return results
    finally:
        fc.set_num_threads(saved_threads)
        fc.set_adaptive_threads(saved_adaptive)


@pytest.fixture(scope="session")
def strategies():
    return types.SimpleNamespace(conv_case=conv_case, pool_case=pool_case, ConvCase=ConvCase, PoolCase=PoolCase)


@pytest.fixture(scope="session")
def numerics():
    return types.SimpleNamespace(assert_close=assert_close, numerical_gradient=numerical_gradient,
                                 simd_env=simd_env, at_threads=at_threads, RTOL=RTOL)
