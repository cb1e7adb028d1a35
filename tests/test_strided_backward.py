"""The strided backward's two vector paths that have no other kernel to fall back on within a plan:

- direct.kvgw's copy of dy (fc_kvgw_transpose): lanes x lanes blocks transposed in registers, K not a
  multiple of the lanes (the lanes past K are zero), output planes of any size (a last partial block of
  pixels), with grad_b summed on the way;
- col2im at stride_w 2 with AVX-512 (im2col.by_image's grad_x): taps s and s + 1 of a kernel row added as
  one vector, a lone last tap when kernel_w is odd, runs cut by the padding.

Each case asserts the plan really runs the kernel, then compares with the float64 reference and checks
1 vs 2 threads bit for bit, at every SIMD level the CPU has that plans it.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv as fc
from fastconv import reference as ref

DTYPES = (np.float32, np.float64)
VECTOR_LEVELS = tuple(level for level in fc.build_info()["simd_available"] if level in ("avx2", "avx512"))
LANES = {("avx2", np.float32): 8, ("avx2", np.float64): 4, ("avx512", np.float32): 16, ("avx512", np.float64): 8}


def draw_arrays(data, x_shape, w_shape, stride, padding, dtype):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(x_shape).astype(dtype)
    weight = rng.standard_normal(w_shape).astype(dtype)
    grad_y = rng.standard_normal(ref.conv2d(x, weight, None, stride, padding).shape).astype(dtype)
    return x, weight, grad_y


def backward_at_1_and_2_threads(numerics, level, grad_y, x, weight, stride, padding):
    with numerics.simd_env(level):
        return numerics.at_threads(lambda: fc.conv2d_backward(grad_y, x, weight, stride, padding), (1, 2))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("level", VECTOR_LEVELS)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_kvgw_grad_w_and_grad_b_match_reference_and_not_the_thread_count(level, dtype, data, numerics):
    lanes = LANES[(level, dtype)]
    k = data.draw(st.integers(lanes, 3 * lanes + 3), label="K")
    kernel = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    stride = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    padding = (data.draw(st.integers(0, 1)), data.draw(st.integers(0, 1)))
    x_shape = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)), data.draw(st.integers(3, 13)),
               data.draw(st.integers(3, 13)))
    w_shape = (k, x_shape[1]) + kernel
    label = f"x{x_shape} w{w_shape} stride={stride} padding={padding} {level} {np.dtype(dtype).name}"
    with numerics.simd_env(level):
        assert fc.conv2d_plan(x_shape, w_shape, stride, padding, dtype).grad_w == "direct.kvgw", label
    x, weight, grad_y = draw_arrays(data, x_shape, w_shape, stride, padding, dtype)
    one, two = backward_at_1_and_2_threads(numerics, level, grad_y, x, weight, stride, padding)
    expected = ref.conv2d_backward(grad_y.astype(np.float64), x.astype(np.float64), weight.astype(np.float64),
                                   stride, padding)
    for name, i in (("grad_w", 1), ("grad_b", 2)):
        numerics.assert_close(one[i], expected[i], dtype, f"{name} {label}")
        assert one[i].tobytes() == two[i].tobytes(), f"{name} {label}: 1 vs 2 threads differ"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.skipif("avx512" not in VECTOR_LEVELS, reason="the paired col2im is AVX-512's")
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_col2im_stride_2_grad_x_matches_reference_and_not_the_thread_count(dtype, data, numerics):
    kernel = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 6)))
    padding = (data.draw(st.integers(0, kernel[0] - 1)), data.draw(st.integers(0, kernel[1])))
    channels = data.draw(st.integers(1, 4))
    x_shape = (data.draw(st.integers(1, 3)), channels, data.draw(st.integers(kernel[0], 14)),
               data.draw(st.integers(kernel[1], 45)))
    # K at least a few C keeps the plan on im2col's grad_x (direct.scatter below that)
    w_shape = (data.draw(st.integers(4 * channels, 6 * channels)), channels) + kernel
    stride = (data.draw(st.integers(1, 2)), 2)
    label = f"x{x_shape} w{w_shape} stride={stride} padding={padding} {np.dtype(dtype).name}"
    x, weight, grad_y = draw_arrays(data, x_shape, w_shape, stride, padding, dtype)
    with numerics.simd_env("avx512"):
        grad_x_kernel = fc.conv2d_plan(x_shape, w_shape, stride, padding, dtype, algo="im2col").grad_x
        assert grad_x_kernel in ("im2col.by_image", "im2col.chunked"), label
        one, two = numerics.at_threads(
            lambda: fc.conv2d_backward(grad_y, x, weight, stride, padding, algo="im2col")[0], (1, 2))
    expected = ref.conv2d_backward(grad_y.astype(np.float64), x.astype(np.float64), weight.astype(np.float64),
                                   stride, padding)[0]
    numerics.assert_close(one, expected, dtype, label)
    assert one.tobytes() == two.tobytes(), f"{label}: 1 vs 2 threads differ"


@pytest.mark.skipif("avx512" not in VECTOR_LEVELS, reason="the paired col2im is AVX-512's")
@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_shape_plans_by_image_and_kvgw(dtype, numerics):
    with numerics.simd_env("avx512"):
        plan = fc.conv2d_plan((32, 32, 31, 31), (64, 32, 3, 3), 2, 1, dtype)
    assert (plan.grad_x, plan.grad_w) == ("im2col.by_image", "direct.kvgw")
