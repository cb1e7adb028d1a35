"""fastconv's pooling kernels (C) against the NumPy reference, at every SIMD level.

Max pooling is compared exactly (values and int64 indices: a max involves no rounding), average
pooling and the backwards to the dtype's tolerance against the float64 reference.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv as fc
from fastconv import reference as ref

SIMD_LEVELS = tuple(fc.build_info()["simd_available"])
DTYPES = (np.float64, np.float32)
POOL_SETTINGS = settings(max_examples=60, deadline=None)


def pool_args(case):
    return case.kernel_size, case.stride, case.padding


def describe(x, case, level, dtype):
    return (f"x{np.shape(x)} kernel_size={case.kernel_size} stride={case.stride} padding={case.padding} "
            f"simd={level} dtype={np.dtype(dtype).name}")


def with_values(x, kind):
    """x as drawn ("plain"), rounded to make ties ("ties"), or with NaN and -inf sprinkled in."""
    if kind == "ties":
        return np.round(x)
    if kind == "specials":
        x = x.copy()
        x.flat[::7] = np.nan
        x.flat[3::11] = -np.inf
        return x
    return x


def check_max_pool(numerics, x, args, dtype, label=""):
    """fc.max_pool2d == reference exactly (NaN == NaN), at every SIMD level; indices int64 in range."""
    x = np.asarray(x, dtype)
    want_y, want_indices = ref.max_pool2d(x, *args)
    for level in SIMD_LEVELS:
        with numerics.simd_env(level):
            y, indices = fc.max_pool2d(x, *args)
        msg = f"max_pool2d {label} x{x.shape} args={args} simd={level} dtype={np.dtype(dtype).name}"
        assert y.dtype == dtype and indices.dtype == np.int64, msg
        np.testing.assert_array_equal(y, want_y, err_msg=msg)
        np.testing.assert_array_equal(indices, want_indices, err_msg=msg)
        if indices.size:
            assert 0 <= indices.min() and indices.max() < x.shape[2] * x.shape[3], msg


# ---- random shapes -------------------------------------------------------------------------------

@pytest.mark.parametrize("values", ["plain", "ties", "specials"])
@pytest.mark.parametrize("dtype", DTYPES)
@POOL_SETTINGS
@given(data=st.data())
def test_max_pool2d_matches_reference(dtype, values, data, strategies, numerics):
    case = data.draw(strategies.pool_case())
    check_max_pool(numerics, with_values(case.x, values), pool_args(case), dtype, values)


@pytest.mark.parametrize("dtype", DTYPES)
@POOL_SETTINGS
@given(data=st.data())
def test_max_pool2d_backward_matches_reference(dtype, data, strategies, numerics):
    case = data.draw(strategies.pool_case())
    x = case.x.astype(dtype)
    _, indices = ref.max_pool2d(x, *pool_args(case))
    grad_out = np.random.default_rng(0).standard_normal(indices.shape).astype(dtype)
    expected = ref.max_pool2d_backward(grad_out.astype(np.float64), indices, x.shape)
    for level in SIMD_LEVELS:
        with numerics.simd_env(level):
            grad_x = fc.max_pool2d_backward(grad_out, indices, x.shape)
        assert grad_x.dtype == dtype
        numerics.assert_close(grad_x, expected, dtype, "max_pool2d_backward " + describe(x, case, level, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@POOL_SETTINGS
@given(data=st.data())
def test_avg_pool2d_matches_reference(dtype, data, strategies, numerics):
    case = data.draw(strategies.pool_case())
    x = case.x.astype(dtype)
    expected = ref.avg_pool2d(x.astype(np.float64), *pool_args(case))
    for level in SIMD_LEVELS:
        with numerics.simd_env(level):
            y = fc.avg_pool2d(x, *pool_args(case))
        assert y.dtype == dtype
        numerics.assert_close(y, expected, dtype, "avg_pool2d " + describe(x, case, level, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@POOL_SETTINGS
@given(data=st.data())
def test_avg_pool2d_backward_matches_reference(dtype, data, strategies, numerics):
    case = data.draw(strategies.pool_case())
    out_shape = ref.avg_pool2d(case.x, *pool_args(case)).shape
    grad_out = np.random.default_rng(1).standard_normal(out_shape).astype(dtype)
    expected = ref.avg_pool2d_backward(grad_out.astype(np.float64), case.x.shape, *pool_args(case))
    for level in SIMD_LEVELS:
        with numerics.simd_env(level):
            grad_x = fc.avg_pool2d_backward(grad_out, case.x.shape, *pool_args(case))
        assert grad_x.dtype == dtype
        numerics.assert_close(grad_x, expected, dtype, "avg_pool2d_backward " + describe(case.x, case, level, dtype))


# ---- 2x2 stride 2: the specialised backward loops --------------------------------------------------

# (N, C, H, W): out_w below, at and around one 8-wide block (5, 7, 8, 9, 14, 15, 16, 17), odd H and/or
# W (the last row / column gets no gradient), N*C = 1, one output row per plane.
SHAPES_2X2 = [
    (1, 1, 2, 2), (1, 1, 3, 3), (3, 2, 10, 10), (2, 3, 11, 10), (2, 3, 10, 11), (4, 1, 2, 14),
    (2, 2, 14, 15), (2, 2, 16, 16), (2, 2, 18, 19), (2, 3, 28, 28), (1, 3, 31, 30), (2, 1, 32, 33),
    (1, 1, 35, 34), (5, 3, 7, 9),
]


@pytest.fixture
def restore_threads():
    saved = fc.get_num_threads()
    yield
    fc.set_num_threads(saved)


def grad_and_indices_2x2(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    _, indices = ref.max_pool2d(x, 2)
    return rng.standard_normal(indices.shape).astype(dtype), indices


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES_2X2)
def test_2x2_backward_exact_and_thread_independent(shape, dtype, numerics, restore_threads):
    # Each input element gets one grad / 4 (exact in binary) or zero: compared bit for bit, at every
    # SIMD level and with 1, 2 and 3 threads (thread ranges then split planes and rows).
    grad_out, indices = grad_and_indices_2x2(shape, dtype, seed=sum(shape))
    want_avg = ref.avg_pool2d_backward(grad_out.astype(np.float64), shape, 2).astype(dtype)
    want_max = ref.max_pool2d_backward(grad_out.astype(np.float64), indices, shape).astype(dtype)
    for level in SIMD_LEVELS:
        for threads in (1, 2, 3):
            fc.set_num_threads(threads)
            with numerics.simd_env(level):
                got_avg = fc.avg_pool2d_backward(grad_out, shape, 2)
                got_max = fc.max_pool2d_backward(grad_out, indices, shape)
            label = f"x{shape} simd={level} threads={threads} dtype={np.dtype(dtype).name}"
            assert got_avg.dtype == dtype and got_max.dtype == dtype, label
            np.testing.assert_array_equal(got_avg, want_avg, err_msg="avg_pool2d_backward " + label)
            np.testing.assert_array_equal(got_max, want_max, err_msg="max_pool2d_backward " + label)


# ---- conventions ---------------------------------------------------------------------------------

WINDOWS = {
    # name: (kernel_size, stride, padding)
    "2x2": (2, None, 0),
    "3x3-stride1-pad1-overlapping": (3, 1, 1),
    "3x2-stride(2,1)-pad(1,0)": ((3, 2), (2, 1), (1, 0)),
    "stride-larger-than-kernel": (2, 3, 1),
    "5x5-stride2-pad2": (5, 2, 2),
    "1x1": (1, 1, 0),
    "whole-plane": ((6, 7), None, 0),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("window", WINDOWS)
def test_constant_input_ties_go_to_the_first_real_element(window, dtype, numerics):
    args = WINDOWS[window]
    x = np.full((2, 3, 6, 7), 1.5, dtype)
    check_max_pool(numerics, x, args, dtype, "constant")
    y, indices = fc.max_pool2d(x, *args)
    assert np.all(y == 1.5)
    # The first real element of window (i, j) sits at the clipped top-left corner.
    _, (sh, sw), (ph, pw) = window_geometry(args)
    rows = np.maximum(np.arange(y.shape[2]) * sh - ph, 0)
    cols = np.maximum(np.arange(y.shape[3]) * sw - pw, 0)
    np.testing.assert_array_equal(indices[0, 0], rows[:, None] * 7 + cols[None, :])


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_is_the_max_of_every_window_holding_it(dtype, numerics):
    x = np.random.default_rng(2).standard_normal((1, 2, 6, 6)).astype(dtype)
    x[0, 0, 2, 3] = np.nan
    x[0, 1, 0, 0] = x[0, 1, 1, 1] = np.nan  # two NaNs in one window
    check_max_pool(numerics, x, (3, 1, 1), dtype, "nan")
    y, indices = fc.max_pool2d(x, 3, 1, 1)
    holds_nan = np.zeros((6, 6), bool)
    holds_nan[1:4, 2:5] = True  # windows (i, j) of a 3x3/pad 1 pool that cover (2, 3)
    np.testing.assert_array_equal(np.isnan(y[0, 0]), holds_nan)
    assert np.all(indices[0, 0][holds_nan] == 2 * 6 + 3)
    # Windows covering both NaNs of channel 1 report the last one in row-major window order.
    assert np.isnan(y[0, 1, 0, 0]) and indices[0, 1, 0, 0] == 1 * 6 + 1
    # max_pool2d_backward routes NaN-window gradients to the NaN element.
    grad_x = fc.max_pool2d_backward(np.ones(y.shape, dtype), indices, x.shape)
    assert grad_x[0, 0, 2, 3] == holds_nan.sum()


@pytest.mark.parametrize("dtype", DTYPES)
def test_padding_acts_as_minus_infinity(dtype, numerics):
    # All inputs negative: zero padding would win every border window; -inf padding never wins.
    x = -1.0 - np.random.default_rng(3).random((2, 2, 5, 6)).astype(dtype)
    check_max_pool(numerics, x, (3, 2, 1), dtype, "negative")
    y, indices = fc.max_pool2d(x, 3, 2, 1)
    assert np.all(y < 0)
    # All inputs -inf: every window ties with the padding; the index must still be a real element.
    check_max_pool(numerics, np.full((2, 2, 5, 6), -np.inf, dtype), (3, 2, 1), dtype, "all -inf")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("window", ["3x3-stride1-pad1-overlapping", "5x5-stride2-pad2", "3x2-stride(2,1)-pad(1,0)"])
def test_max_pool2d_backward_accumulates_overlapping_windows(window, dtype, numerics):
    # Constant input: overlapping windows all pick the same elements, so gradients pile up.
    args = WINDOWS[window]
    for x in (np.full((2, 3, 6, 7), 2.0, dtype), np.random.default_rng(4).standard_normal((2, 3, 6, 7)).astype(dtype)):
        y, indices = fc.max_pool2d(x, *args)
        grad_out = np.random.default_rng(5).standard_normal(y.shape).astype(dtype)
        grad_x = fc.max_pool2d_backward(grad_out, indices, x.shape)
        numerics.assert_close(grad_x, ref.max_pool2d_backward(grad_out.astype(np.float64), indices, x.shape), dtype)
        # Every output gradient lands somewhere: the sums agree.
        np.testing.assert_allclose(grad_x.sum((2, 3)), grad_out.sum((2, 3)), rtol=1e-4, atol=1e-4)


def test_max_pool2d_backward_accepts_int32_indices(numerics):
    x = np.random.default_rng(6).standard_normal((2, 2, 6, 6))
    y, indices = fc.max_pool2d(x, 2)
    numerics.assert_close(fc.max_pool2d_backward(np.ones(y.shape), indices.astype(np.int32), x.shape),
                          ref.max_pool2d_backward(np.ones(y.shape), indices, x.shape))


def window_geometry(args):
    kernel, stride, padding = args
    pairs = [(v, v) if isinstance(v, int) else tuple(v) for v in (kernel, stride or kernel, padding)]
    return pairs


def real_elements_per_window(size, kernel, stride, pad):
    """How many of a window's `kernel` positions fall inside an axis of length `size`."""
    out = (size + 2 * pad - kernel) // stride + 1
    starts = np.arange(out) * stride - pad
    return np.array([sum(0 <= start + r < size for r in range(kernel)) for start in starts])


@pytest.mark.parametrize("window", WINDOWS)
def test_avg_pool2d_counts_padding_in_the_divisor(window, numerics):
    (kh, kw), (sh, sw), (ph, pw) = window_geometry(WINDOWS[window])
    y = fc.avg_pool2d(np.ones((1, 2, 6, 7)), *WINDOWS[window])
    # On ones, each output is (real elements in the window) / (kh * kw): 1 inside, less on the border.
    counts = np.outer(real_elements_per_window(6, kh, sh, ph), real_elements_per_window(7, kw, sw, pw))
    numerics.assert_close(y, np.broadcast_to(counts / (kh * kw), y.shape))


# ---- gradients by finite differences (fastconv itself, float64) ----------------------------------

def test_avg_pool2d_backward_matches_finite_differences(numerics):
    x = np.random.default_rng(7).standard_normal((2, 2, 6, 5))
    args = ((3, 2), (2, 1), (1, 1))
    grad_out = np.random.default_rng(8).standard_normal(fc.avg_pool2d(x, *args).shape)

    def loss():
        return float(np.sum(fc.avg_pool2d(x, *args) * grad_out))

    np.testing.assert_allclose(fc.avg_pool2d_backward(grad_out, x.shape, *args),
                               numerics.numerical_gradient(loss, x), rtol=1e-6, atol=1e-7)


def test_max_pool2d_backward_matches_finite_differences(numerics):
    rng = np.random.default_rng(9)
    # Distinct values 1 apart: a 1e-6 step never moves an argmax.
    x = rng.permutation(2 * 2 * 6 * 5).reshape(2, 2, 6, 5).astype(np.float64)
    args = (3, 2, 1)
    y, indices = fc.max_pool2d(x, *args)
    grad_out = rng.standard_normal(y.shape)

    def loss():
        return float(np.sum(fc.max_pool2d(x, *args)[0] * grad_out))

    np.testing.assert_allclose(fc.max_pool2d_backward(grad_out, indices, x.shape),
                               numerics.numerical_gradient(loss, x), rtol=1e-6, atol=1e-7)


# ---- layouts and empty batch ---------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["strided-slice", "transposed", "fortran", "python-list"])
def test_layouts_and_array_likes(layout, numerics):
    base = np.random.default_rng(10).standard_normal((2, 3, 12, 10))
    x = {"strided-slice": base[:, :, ::2, ::-1], "transposed": base.transpose(0, 1, 3, 2),
         "fortran": np.asfortranarray(base), "python-list": base.tolist()}[layout]
    contiguous = np.ascontiguousarray(x)
    y, indices = fc.max_pool2d(x, 3, 2, 1)
    want_y, want_indices = ref.max_pool2d(contiguous, 3, 2, 1)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(indices, want_indices)
    numerics.assert_close(fc.avg_pool2d(x, 3, 2, 1), ref.avg_pool2d(contiguous, 3, 2, 1))
    grad_out = np.asfortranarray(np.random.default_rng(11).standard_normal(y.shape))
    numerics.assert_close(fc.avg_pool2d_backward(grad_out, contiguous.shape, 3, 2, 1),
                          ref.avg_pool2d_backward(grad_out, contiguous.shape, 3, 2, 1))
    numerics.assert_close(fc.max_pool2d_backward(grad_out, np.asfortranarray(indices), contiguous.shape),
                          ref.max_pool2d_backward(grad_out, indices, contiguous.shape))


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_size_zero_gives_empty_outputs(dtype):
    x = np.zeros((0, 3, 7, 6), dtype)
    y, indices = fc.max_pool2d(x, 3, 2, 1)
    assert y.shape == indices.shape == (0, 3, 4, 3)
    assert y.dtype == dtype and indices.dtype == np.int64
    grad_x = fc.max_pool2d_backward(y, indices, x.shape)
    assert grad_x.shape == x.shape and grad_x.dtype == dtype
    y = fc.avg_pool2d(x, 3, 2, 1)
    assert y.shape == (0, 3, 4, 3) and y.dtype == dtype
    grad_x = fc.avg_pool2d_backward(y, x.shape, 3, 2, 1)
    assert grad_x.shape == x.shape and grad_x.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("grad_hw", [(0, 2), (3, 0), (0, 0)])
def test_max_pool2d_backward_of_an_empty_grad_out_is_zero(grad_hw, dtype):
    """No gradient to route gives zeros of input_shape in both modules (found by tests/fuzz: fastconv
    refused a grad_out without rows or columns, which the reference accepts)."""
    grad_out = np.ones((2, 3) + grad_hw, dtype)
    indices = np.zeros(grad_out.shape, np.int64)
    for module in (fc, ref):
        grad_x = module.max_pool2d_backward(grad_out, indices, (2, 3, 5, 4))
        assert grad_x.shape == (2, 3, 5, 4) and grad_x.dtype == dtype, module.__name__
        assert not grad_x.any(), module.__name__
