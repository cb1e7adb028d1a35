"""im2col.implicit at stride_w 2: the fused forward whose GEMM reads B straight from the image copy split
into even and odd columns (src_c/gemm_kernels.c's indirect micro-kernel), with no packed panels
(stride_w 1: tests/test_im2col_implicit_stride1.py).

Its plan (src_c/conv_plan.h, FC_PLAN_IMPLICIT_FORWARD_*) takes it with AVX-512 where stride_w is 2 or 1 and
every output row is whole vectors: out_w a multiple of 16 (float32) or 8 (float64). The shapes below are drawn
inside that rule, with partial tiles of output channels, non-square kernels, any padding and stride_h 1-3;
each asserts that the plan really is im2col.implicit before comparing with the float64 reference and
across thread counts.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv as fc
from fastconv import reference as ref

LANES = {np.float32: 16, np.float64: 8}     # AVX-512 lanes per vector
DTYPES = tuple(LANES)
HAVE_AVX512 = "avx512" in fc.build_info()["simd_available"]
pytestmark = pytest.mark.skipif(not HAVE_AVX512, reason="this CPU has no AVX-512")


@st.composite
def implicit_case(draw, dtype):
    """(x_shape, w_shape, stride, padding) with stride_w 2 and out_w = 1..3 vectors of `dtype`."""
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    padding = (draw(st.integers(0, kernel[0] - 1)), draw(st.integers(0, kernel[1] - 1)))
    stride = (draw(st.integers(1, 3)), 2)
    out_w = LANES[dtype] * draw(st.integers(1, 3))
    in_w = (out_w - 1) * 2 + kernel[1] - 2 * padding[1] + draw(st.integers(0, 1))   # + 1: last column unread
    in_h = max(draw(st.integers(1, 12)), kernel[0] - 2 * padding[0])
    channels = draw(st.integers(1, 4))
    x_shape = (draw(st.integers(1, 3)), channels, in_h, in_w)
    w_shape = (draw(st.integers(1, 20)), channels) + kernel    # 1-20 output channels: partial MR tiles
    return x_shape, w_shape, stride, padding


def forward_at_threads(x, weight, bias, stride, padding, threads):
    """conv2d with algo="im2col" at each thread count of `threads` (adaptive threads off)."""
    saved_threads, saved_adaptive = fc.get_num_threads(), fc.get_adaptive_threads()
    fc.set_adaptive_threads(False)
    try:
        results = []
        for count in threads:
            fc.set_num_threads(count)
            results.append(fc.conv2d(x, weight, bias, stride, padding, algo="im2col"))
        return results
    finally:
        fc.set_num_threads(saved_threads)
        fc.set_adaptive_threads(saved_adaptive)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_forward_matches_reference_and_not_the_thread_count(dtype, data, numerics):
    x_shape, w_shape, stride, padding = data.draw(implicit_case(dtype))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(x_shape).astype(dtype)
    weight = rng.standard_normal(w_shape).astype(dtype)
    bias = rng.standard_normal(w_shape[0]).astype(dtype)
    label = f"x{x_shape} w{w_shape} stride={stride} padding={padding} {np.dtype(dtype).name}"
    with numerics.simd_env("avx512"):
        assert fc.conv2d_plan(x_shape, w_shape, stride, padding, dtype, algo="im2col").forward == "im2col.implicit", label
        one, two = forward_at_threads(x, weight, bias, stride, padding, (1, 2))
    expected = ref.conv2d(x.astype(np.float64), weight.astype(np.float64), bias.astype(np.float64), stride, padding)
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


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dtype", [
    ((2, 3, 9, 30), (4, 3, 3, 3), 2, 1, "float32"),       # out_w 15: not whole vectors
    ((2, 3, 9, 16), (4, 3, 2, 2), 2, 0, "float32"),       # out_w 8: half a float32 vector
    ((2, 3, 9, 47), (4, 3, 3, 3), 3, 1, "float32"),       # stride_w 3: no split copy
    ((2, 3, 9, 20), (4, 3, 3, 3), (2, 1), 1, "float64"),  # stride_w 1, out_w 20
])
def test_shapes_outside_the_rule_keep_the_fused_forward(x_shape, w_shape, stride, padding, dtype, numerics):
    with numerics.simd_env("avx512"):
        assert fc.conv2d_plan(x_shape, w_shape, stride, padding, dtype, algo="im2col").forward == "im2col.fused"


@pytest.mark.parametrize("level", [level for level in ("avx2", "scalar") if level in fc.build_info()["simd_available"]])
def test_levels_without_the_indirect_micro_kernel_keep_the_fused_forward(level, numerics):
    with numerics.simd_env(level):
        assert fc.conv2d_plan((32, 32, 31, 31), (64, 32, 3, 3), 2, 1, algo="im2col").forward == "im2col.fused"
