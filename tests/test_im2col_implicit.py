"""im2col.implicit: the fused forward whose GEMM reads B through offsets (src_c/gemm_kernels.c's indirect
micro-kernel) in an image laid out so that every tap's run over one output row is contiguous, with no packed
panels: at stride_w 2 the copy split into even and odd columns, at stride_w 1 a padded copy (or, without
padding, the image itself).

Its plan (src_c/conv_plan.h, FC_PLAN_IMPLICIT_FORWARD_*) takes it with AVX-512 where stride_w is 2 or 1 and
every output row is whole vectors: out_w a multiple of 16 (float32) or 8 (float64); or half a vector (out_w 8
or 4) with an even number of output rows, each vector then read as two rows' halves. The shapes below are
drawn inside that rule, with partial tiles of output channels, non-square kernels, any padding and stride_h 1-3;
each asserts that the plan really is im2col.implicit before comparing with the float64 reference and across
thread counts; the same for grad_x through im2col.as_forward, whose forward (of grad_y) is implicit.
"""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fastconv as fc
from fastconv import reference as ref

LANES = {np.float32: 16, np.float64: 8}     # AVX-512 lanes per vector
DTYPES = tuple(LANES)
HAVE_AVX512 = "avx512" in fc.build_info()["simd_available"]
pytestmark = pytest.mark.skipif(not HAVE_AVX512, reason="this CPU has no AVX-512")


def draw_out_w_and_in_h(draw, lanes, kernel_h, pad_h, stride_h, vectors):
    """out_w: 1..vectors whole vectors of `lanes`, or half a vector; and in_h, any (1..12) for whole
    vectors, one giving an even out_h for halves."""
    if draw(st.booleans()):
        return lanes * draw(st.integers(1, vectors)), draw(st.integers(max(1, kernel_h - 2 * pad_h), 12))
    out_h = 2 * draw(st.integers(1, 5))
    in_h = (out_h - 1) * stride_h + kernel_h - 2 * pad_h + draw(st.integers(0, stride_h - 1))
    assume(in_h >= 1)
    return lanes // 2, in_h


@st.composite
def stride2_case(draw, lanes):
    """(x_shape, w_shape, stride, padding) with stride_w 2 and out_w 1..3 vectors of `lanes` or half of one."""
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    padding = (draw(st.integers(0, kernel[0] - 1)), draw(st.integers(0, kernel[1] - 1)))
    stride = (draw(st.integers(1, 3)), 2)
    out_w, in_h = draw_out_w_and_in_h(draw, lanes, kernel[0], padding[0], stride[0], 3)
    in_w = (out_w - 1) * 2 + kernel[1] - 2 * padding[1] + draw(st.integers(0, 1))   # + 1: last column unread
    assume(in_w >= 1)
    channels = draw(st.integers(1, 4))
    x_shape = (draw(st.integers(1, 3)), channels, in_h, in_w)
    w_shape = (draw(st.integers(1, 20)), channels) + kernel    # 1-20 output channels: partial MR tiles
    return x_shape, w_shape, stride, padding


@st.composite
def stride1_case(draw, lanes):
    """(x_shape, w_shape, stride, padding) with stride_w 1 and out_w 1 or 2 vectors of `lanes` or half of one:
    kernels 1..5 x 1..5, padding 0..kernel - 1 per axis, stride_h 1 or 2."""
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    padding = (draw(st.integers(0, kernel[0] - 1)), draw(st.integers(0, kernel[1] - 1)))
    stride = (draw(st.integers(1, 2)), 1)
    out_w, in_h = draw_out_w_and_in_h(draw, lanes, kernel[0], padding[0], stride[0], 2)
    in_w = out_w + kernel[1] - 1 - 2 * padding[1]
    assume(in_w >= 1)
    channels = draw(st.integers(1, 6))
    x_shape = (draw(st.integers(1, 3)), channels, in_h, in_w)
    w_shape = (draw(st.integers(1, 20)), channels) + kernel
    return x_shape, w_shape, stride, padding


@pytest.mark.parametrize("case", [stride2_case, stride1_case], ids=["stride_w-2", "stride_w-1"])
@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_forward_matches_reference_and_not_the_thread_count(case, dtype, data, numerics):
    x_shape, w_shape, stride, padding = data.draw(case(LANES[dtype]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(x_shape).astype(dtype)
    weight = rng.standard_normal(w_shape).astype(dtype)
    bias = rng.standard_normal(w_shape[0]).astype(dtype)
    label = f"x{x_shape} w{w_shape} stride={stride} padding={padding} {np.dtype(dtype).name}"
    with numerics.simd_env("avx512"):
        plan = fc.conv2d_plan(x_shape, w_shape, stride, padding, dtype, algo="im2col")
        assert plan.forward == "im2col.implicit", label
        one, two = numerics.at_threads(lambda: fc.conv2d(x, weight, bias, stride, padding, algo="im2col"), (1, 2))
    expected = ref.conv2d(x.astype(np.float64), weight.astype(np.float64), bias.astype(np.float64), stride, padding)
    numerics.assert_close(one, expected, dtype, label)
    assert one.tobytes() == two.tobytes(), f"{label}: 1 vs 2 threads differ"


@st.composite
def as_forward_case(draw, lanes):
    """(x_shape, w_shape, padding) inside the AVX-512 as_forward rule (conv_plan.h: K at most 2 C, planes of
    784 pixels or more, padding (kernel - 1) // 2 rounded up .. kernel - 1) whose width, the as_forward's
    output width, is a multiple of `lanes` from 32 to 48."""
    channels = draw(st.integers(1, 4))
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    padding = tuple(draw(st.integers(r // 2, r - 1)) if r > 1 else 0 for r in kernel)
    in_w = lanes * draw(st.integers(32 // lanes, 48 // lanes))
    x_shape = (draw(st.integers(1, 3)), channels, draw(st.integers(28, 33)), in_w)
    w_shape = (draw(st.integers(1, 2 * channels)), channels) + kernel
    return x_shape, w_shape, padding


def as_forward_shapes(x_shape, w_shape, padding):
    """The forward im2col.as_forward runs: of grad_y (N, K, out_h, out_w) with W^T (C, K, R, S), padded by
    kernel - 1 - padding."""
    k, c, r, s = w_shape
    out_hw = (x_shape[2] + 2 * padding[0] - r + 1, x_shape[3] + 2 * padding[1] - s + 1)
    return (x_shape[0], k) + out_hw, (c, k, r, s), (r - 1 - padding[0], s - 1 - padding[1])


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_grad_x_as_forward_matches_reference_and_not_the_thread_count(dtype, data, numerics):
    x_shape, w_shape, padding = data.draw(as_forward_case(LANES[dtype]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(x_shape).astype(dtype)
    weight = rng.standard_normal(w_shape).astype(dtype)
    grad_y = rng.standard_normal(ref.conv2d(x, weight, None, 1, padding).shape).astype(dtype)
    label = f"x{x_shape} w{w_shape} padding={padding} {np.dtype(dtype).name}"
    fwd_x, fwd_w, fwd_padding = as_forward_shapes(x_shape, w_shape, padding)
    with numerics.simd_env("avx512"):
        assert fc.conv2d_plan(x_shape, w_shape, 1, padding, dtype, algo="im2col").grad_x == "im2col.as_forward", label
        assert fc.conv2d_plan(fwd_x, fwd_w, 1, fwd_padding, dtype, algo="im2col").forward == "im2col.implicit", label
        one, two = numerics.at_threads(
            lambda: fc.conv2d_backward(grad_y, x, weight, 1, padding, algo="im2col")[0], (1, 2))
    expected = ref.conv2d_backward(grad_y.astype(np.float64), x.astype(np.float64), weight.astype(np.float64), 1,
                                   padding)[0]
    numerics.assert_close(one, expected, dtype, label)
    assert one.tobytes() == two.tobytes(), f"{label}: 1 vs 2 threads differ"


def test_nan_and_inf_reach_only_the_outputs_that_read_them(numerics):
    """An output is NaN exactly where its window holds the NaN: the kernel writes C without reading it
    first (beta 0) and reads no element outside its taps."""
    x = np.ones((2, 3, 9, 31), np.float32)
    x[1, 2, 4, 10] = np.nan
    weight = np.ones((7, 3, 3, 3), np.float32)
    with numerics.simd_env("avx512"):
        assert fc.conv2d_plan(x.shape, weight.shape, 2, 1, "float32", algo="im2col").forward == "im2col.implicit"
        got = fc.conv2d(x, weight, None, 2, 1, algo="im2col")
    expected = ref.conv2d(x.astype(np.float64), weight.astype(np.float64), None, 2, 1)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.isnan(got).any() and np.isfinite(got[0]).all()


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, float32, float64", [
    ((2, 4, 12, 18), (8, 4, 3, 3), 1, 0, "im2col.implicit", "im2col.implicit"),   # out_w 16
    ((2, 4, 12, 24), (8, 4, 3, 3), 1, 1, "im2col.fused", "im2col.implicit"),      # out_w 24: 8 lanes only
    ((2, 4, 12, 20), (8, 4, 3, 3), 1, 1, "im2col.fused", "im2col.fused"),         # out_w 20
    ((2, 4, 12, 94), (8, 4, 3, 3), (1, 3), 1, "im2col.fused", "im2col.fused"),    # stride_w 3, out_w 32
    ((2, 3, 9, 30), (4, 3, 3, 3), 2, 1, "im2col.fused", "im2col.fused"),          # stride 2, out_w 15
    ((2, 3, 9, 16), (4, 3, 2, 2), 2, 0, "im2col.implicit", "im2col.implicit"),    # stride 2, out_w 8, out_h 4
    ((2, 4, 10, 10), (8, 4, 3, 3), 1, 0, "im2col.implicit", "im2col.implicit"),   # out_w 8, out_h 8: f32 halves
    ((2, 4, 9, 10), (8, 4, 3, 3), 1, 0, "im2col.fused", "im2col.implicit"),       # out_w 8, out_h 7: f32 odd
    ((2, 4, 8, 6), (8, 4, 3, 3), 1, 0, "im2col.fused", "im2col.implicit"),        # out_w 4, out_h 6: f64 halves
    ((2, 4, 7, 6), (8, 4, 3, 3), 1, 0, "im2col.fused", "im2col.fused"),           # out_w 4, out_h 5: f64 odd
])
def test_the_rule_at_its_edges(x_shape, w_shape, stride, padding, float32, float64, numerics):
    with numerics.simd_env("avx512"):
        plans = tuple(fc.conv2d_plan(x_shape, w_shape, stride, padding, dtype, algo="im2col").forward
                      for dtype in ("float32", "float64"))
    assert plans == (float32, float64)


@pytest.mark.parametrize("level", [level for level in ("avx2", "scalar")
                                   if level in fc.build_info()["simd_available"]])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", [
    ((32, 32, 31, 31), (64, 32, 3, 3), 2, 1),   # the benchmark's strided shape
    ((2, 8, 32, 32), (8, 8, 3, 3), 1, 1),
])
def test_levels_without_the_indirect_micro_kernel_keep_the_fused_forward(level, x_shape, w_shape, stride, padding,
                                                                          numerics):
    with numerics.simd_env(level):
        assert fc.conv2d_plan(x_shape, w_shape, stride, padding, algo="im2col").forward == "im2col.fused"
