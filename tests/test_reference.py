"""The NumPy reference checked on its own: against Python loops written from the definitions,
against a few properties that pin down padding / index conventions, and against finite
differences (float64) for every backward.

The loops below are deliberately naive (one scalar at a time) so that they share no code and no
trick with fastconv.reference, which is vectorised through sliding windows.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastconv import reference as ref

LOOP_SETTINGS = settings(max_examples=50, deadline=None)


def pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def out_size(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


# ---- naive loops from the definitions ------------------------------------------------------------

def loop_conv2d(x, weight, bias, stride, padding):
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    n_batch, channels, height, width = x.shape
    out_channels, _, kh, kw = weight.shape
    oh, ow = out_size(height, kh, sh, ph), out_size(width, kw, sw, pw)
    y = np.zeros((n_batch, out_channels, oh, ow))
    for n, k, i, j in np.ndindex(y.shape):
        total = 0.0 if bias is None else bias[k]
        for c, r, s in np.ndindex(channels, kh, kw):
            h, w = i * sh - ph + r, j * sw - pw + s
            if 0 <= h < height and 0 <= w < width:
                total += x[n, c, h, w] * weight[k, c, r, s]
        y[n, k, i, j] = total
    return y


def loop_conv2d_backward(grad_out, x, weight, stride, padding):
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    channels, height, width = x.shape[1:]
    kh, kw = weight.shape[2:]
    gx, gw, gb = np.zeros(x.shape), np.zeros(weight.shape), np.zeros(weight.shape[0])
    for n, k, i, j in np.ndindex(grad_out.shape):
        g = grad_out[n, k, i, j]
        gb[k] += g
        for c, r, s in np.ndindex(channels, kh, kw):
            h, w = i * sh - ph + r, j * sw - pw + s
            if 0 <= h < height and 0 <= w < width:
                gx[n, c, h, w] += g * weight[k, c, r, s]
                gw[k, c, r, s] += g * x[n, c, h, w]
    return gx, gw, gb


def pool_windows(shape, kernel_size, stride, padding):
    """Yield (n, c, i, j, [(h, w) of the real elements in row-major window order])."""
    (kh, kw) = pair(kernel_size)
    (sh, sw) = (kh, kw) if stride is None else pair(stride)
    (ph, pw) = pair(padding)
    n_batch, channels, height, width = shape
    oh, ow = out_size(height, kh, sh, ph), out_size(width, kw, sw, pw)
    for n, c, i, j in np.ndindex(n_batch, channels, oh, ow):
        cells = [(i * sh - ph + r, j * sw - pw + s) for r in range(kh) for s in range(kw)]
        yield n, c, i, j, [(h, w) for h, w in cells if 0 <= h < height and 0 <= w < width]


def pool_out_shape(shape, kernel_size, stride, padding):
    (kh, kw) = pair(kernel_size)
    (sh, sw) = (kh, kw) if stride is None else pair(stride)
    (ph, pw) = pair(padding)
    return shape[:2] + (out_size(shape[2], kh, sh, ph), out_size(shape[3], kw, sw, pw))


def loop_max_pool2d(x, kernel_size, stride, padding):
    """PyTorch's scan: padding skipped, strict '>' (ties keep the first), every NaN replaces the
    running max (so the last NaN of a window wins)."""
    out_shape = pool_out_shape(x.shape, kernel_size, stride, padding)
    y, indices = np.zeros(out_shape), np.zeros(out_shape, dtype=np.int64)
    for n, c, i, j, cells in pool_windows(x.shape, kernel_size, stride, padding):
        best_h, best_w = cells[0]
        for h, w in cells[1:]:
            best = x[n, c, best_h, best_w]
            value = x[n, c, h, w]
            if value > best or math.isnan(value):
                best_h, best_w = h, w
        y[n, c, i, j] = x[n, c, best_h, best_w]
        indices[n, c, i, j] = best_h * x.shape[3] + best_w
    return y, indices


def loop_max_pool2d_backward(grad_out, indices, input_shape):
    gx = np.zeros(input_shape)
    for n, c, i, j in np.ndindex(grad_out.shape):
        h, w = divmod(int(indices[n, c, i, j]), input_shape[3])
        gx[n, c, h, w] += grad_out[n, c, i, j]
    return gx


def loop_avg_pool2d(x, kernel_size, stride, padding):
    divisor = np.prod(pair(kernel_size))
    y = np.zeros(pool_out_shape(x.shape, kernel_size, stride, padding))
    for n, c, i, j, cells in pool_windows(x.shape, kernel_size, stride, padding):
        y[n, c, i, j] = sum(x[n, c, h, w] for h, w in cells) / divisor
    return y


def loop_avg_pool2d_backward(grad_out, input_shape, kernel_size, stride, padding):
    divisor = np.prod(pair(kernel_size))
    gx = np.zeros(input_shape)
    for n, c, i, j, cells in pool_windows(input_shape, kernel_size, stride, padding):
        for h, w in cells:
            gx[n, c, h, w] += grad_out[n, c, i, j] / divisor
    return gx


def small_conv_case(strategies):
    """Shapes small enough for the Python loops."""
    return strategies.conv_case(max_side=7, max_batch=2, wide=False)


# ---- reference vs loops --------------------------------------------------------------------------

@LOOP_SETTINGS
@given(data=st.data())
def test_conv2d_matches_loops(data, strategies, numerics):
    case = data.draw(small_conv_case(strategies))
    expected = loop_conv2d(case.x, case.weight, case.bias, case.stride, case.padding)
    numerics.assert_close(ref.conv2d(case.x, case.weight, case.bias, case.stride, case.padding), expected)


@LOOP_SETTINGS
@given(data=st.data())
def test_conv2d_backward_matches_loops(data, strategies, numerics):
    case = data.draw(small_conv_case(strategies))
    y = ref.conv2d(case.x, case.weight, None, case.stride, case.padding)
    grad_out = np.random.default_rng(0).standard_normal(y.shape)
    actual = ref.conv2d_backward(grad_out, case.x, case.weight, case.stride, case.padding)
    expected = loop_conv2d_backward(grad_out, case.x, case.weight, case.stride, case.padding)
    for name, got, want in zip(("gx", "gw", "gb"), actual, expected):
        numerics.assert_close(got, want, label=name)


@LOOP_SETTINGS
@given(data=st.data(), with_specials=st.booleans())
def test_max_pool2d_matches_loops(data, with_specials, strategies):
    case = data.draw(strategies.pool_case(max_side=8))
    x = case.x
    if with_specials:
        # Rounded values make ties; a few NaN and -inf test their conventions.
        x = np.round(x)
        x.flat[:: 7] = np.nan
        x.flat[3:: 11] = -np.inf
    y, indices = ref.max_pool2d(x, case.kernel_size, case.stride, case.padding)
    want_y, want_indices = loop_max_pool2d(x, case.kernel_size, case.stride, case.padding)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(indices, want_indices)
    assert indices.dtype == np.int64


@LOOP_SETTINGS
@given(data=st.data())
def test_max_pool2d_backward_matches_loops(data, strategies):
    case = data.draw(strategies.pool_case(max_side=8))
    y, indices = ref.max_pool2d(case.x, case.kernel_size, case.stride, case.padding)
    grad_out = np.random.default_rng(1).standard_normal(y.shape)
    np.testing.assert_allclose(ref.max_pool2d_backward(grad_out, indices, case.x.shape),
                               loop_max_pool2d_backward(grad_out, indices, case.x.shape), rtol=1e-12)


@LOOP_SETTINGS
@given(data=st.data())
def test_avg_pool2d_matches_loops(data, strategies, numerics):
    case = data.draw(strategies.pool_case(max_side=8))
    numerics.assert_close(ref.avg_pool2d(case.x, case.kernel_size, case.stride, case.padding),
                          loop_avg_pool2d(case.x, case.kernel_size, case.stride, case.padding))


@LOOP_SETTINGS
@given(data=st.data())
def test_avg_pool2d_backward_matches_loops(data, strategies, numerics):
    case = data.draw(strategies.pool_case(max_side=8))
    args = (case.kernel_size, case.stride, case.padding)
    grad_out = np.random.default_rng(2).standard_normal(ref.avg_pool2d(case.x, *args).shape)
    numerics.assert_close(ref.avg_pool2d_backward(grad_out, case.x.shape, *args),
                          loop_avg_pool2d_backward(grad_out, case.x.shape, *args))


# ---- properties that pin the conventions down ----------------------------------------------------

@pytest.mark.parametrize("offset", [(0, 0), (1, 2), (2, 1)])
def test_conv2d_with_a_delta_kernel_shifts_the_zero_padded_input(offset):
    x = np.random.default_rng(3).standard_normal((2, 1, 5, 6))
    weight = np.zeros((1, 1, 3, 3))
    weight[0, 0, offset[0], offset[1]] = 1.0
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = padded[:, :, offset[0]: offset[0] + 5, offset[1]: offset[1] + 6]
    np.testing.assert_array_equal(ref.conv2d(x, weight, padding=1), expected)


def test_max_pool2d_padding_is_never_chosen():
    # All-negative and all -inf inputs: zero padding would win the first, any padding could win
    # the second; the max must come from a real element either way.
    for x in (-1.0 - np.random.default_rng(4).random((1, 2, 4, 5)), np.full((1, 2, 4, 5), -np.inf)):
        y, indices = ref.max_pool2d(x, 3, stride=1, padding=1)
        assert np.all(y < 0)
        assert indices.min() >= 0 and indices.max() < 20
        np.testing.assert_array_equal(np.take_along_axis(x.reshape(1, 2, 20), indices.reshape(1, 2, -1), 2),
                                      y.reshape(1, 2, -1))


def test_max_pool2d_nan_is_the_max_with_the_last_nan_index():
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = np.nan  # two NaNs in the first 2x2 window, one in none other
    y, indices = ref.max_pool2d(x, 2)
    assert np.isnan(y[0, 0, 0, 0]) and indices[0, 0, 0, 0] == 1 * 4 + 0
    assert not np.isnan(y[0, 0, 0, 1])


def test_result_dtype_is_x_dtype():
    x32 = np.ones((1, 2, 4, 4), np.float32)
    assert ref.conv2d(x32, np.ones((3, 2, 3, 3)), np.ones(3)).dtype == np.float32
    assert all(g.dtype == np.float32 for g in ref.conv2d_backward(np.ones((1, 3, 2, 2)), x32, np.ones((3, 2, 3, 3))))
    assert ref.max_pool2d(x32, 2)[0].dtype == np.float32
    assert ref.avg_pool2d(x32, 2).dtype == np.float32


# ---- finite differences (float64) ----------------------------------------------------------------

def test_conv2d_backward_matches_finite_differences(numerics):
    rng = np.random.default_rng(5)
    x, weight, bias = rng.standard_normal((2, 2, 5, 4)), rng.standard_normal((3, 2, 3, 2)), rng.standard_normal(3)
    stride, padding = (2, 1), (1, 0)
    grad_out = rng.standard_normal(ref.conv2d(x, weight, bias, stride, padding).shape)

    def loss():
        return float(np.sum(ref.conv2d(x, weight, bias, stride, padding) * grad_out))

    gx, gw, gb = ref.conv2d_backward(grad_out, x, weight, stride, padding)
    for name, got, array in (("gx", gx, x), ("gw", gw, weight), ("gb", gb, bias)):
        np.testing.assert_allclose(got, numerics.numerical_gradient(loss, array), rtol=1e-6, atol=1e-7,
                                   err_msg=name)


def test_avg_pool2d_backward_matches_finite_differences(numerics):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 2, 6, 5))
    args = ((3, 2), (2, 1), (1, 1))
    grad_out = rng.standard_normal(ref.avg_pool2d(x, *args).shape)

    def loss():
        return float(np.sum(ref.avg_pool2d(x, *args) * grad_out))

    np.testing.assert_allclose(ref.avg_pool2d_backward(grad_out, x.shape, *args),
                               numerics.numerical_gradient(loss, x), rtol=1e-6, atol=1e-7)


def test_max_pool2d_backward_matches_finite_differences(numerics):
    rng = np.random.default_rng(7)
    # A shuffled arange: distinct values 1 apart, so a 1e-6 step never changes the argmax.
    x = rng.permutation(2 * 2 * 6 * 5).reshape(2, 2, 6, 5).astype(np.float64)
    args = (3, 2, 1)  # overlapping windows: one input can receive several gradients
    y, indices = ref.max_pool2d(x, *args)
    grad_out = rng.standard_normal(y.shape)

    def loss():
        return float(np.sum(ref.max_pool2d(x, *args)[0] * grad_out))

    np.testing.assert_allclose(ref.max_pool2d_backward(grad_out, indices, x.shape),
                               numerics.numerical_gradient(loss, x), rtol=1e-6, atol=1e-7)


# ---- the kernels the layers also call on the reference backend (relu, gemm, backward without grad_x) ----

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reference_relu_and_its_gradient_follow_the_definition(dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 5)).astype(dtype)
    x[0, 0, :2] = [np.nan, 0.0]
    grad = rng.standard_normal(x.shape).astype(dtype)
    y = ref.relu(x)
    assert y.dtype == dtype and np.isnan(y[0, 0, 0]) and y[0, 0, 1] == 0
    finite = ~np.isnan(x)
    np.testing.assert_array_equal(y[finite], [v if v > 0 else 0 for v in x[finite]])
    want = np.array([g if v > 0 else 0 for g, v in zip(grad.ravel(), y.ravel())], dtype).reshape(x.shape)
    np.testing.assert_array_equal(ref.relu_backward(grad, y), want)
    inplace = x.copy()
    assert ref.relu(inplace, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, y)
    with pytest.raises(ValueError, match="grad_out"):
        ref.relu_backward(grad[:1], y)
    with pytest.raises(ValueError, match="out"):
        ref.relu(x, out=np.empty(3, dtype))


def test_reference_gemm_is_matmul_with_named_errors():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((5, 7)).astype(np.float32), rng.standard_normal((7, 3))
    got = ref.gemm(a, b)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, a @ b.astype(np.float32), rtol=1e-6)
    with pytest.raises(ValueError, match="rows"):
        ref.gemm(a, b[:6])
    with pytest.raises(TypeError, match="a must"):
        ref.gemm(a.astype(np.int32), b)


def test_reference_backward_without_grad_x_gives_the_same_weight_gradients():
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3))
    grad_out = rng.standard_normal((2, 4, 4, 3))
    full = ref.conv2d_backward(grad_out, x, w, 2, 1)
    grad_x, grad_w, grad_b = ref._conv2d_backward(grad_out, x, w, 2, 1, "auto", False)
    assert grad_x is None
    np.testing.assert_array_equal(grad_w, full[1])
    np.testing.assert_array_equal(grad_b, full[2])


def _specials(data, shape):
    values = data.draw(st.lists(st.sampled_from((0.0, -1.0, 2.0, np.nan, np.inf, -np.inf)),
                                min_size=math.prod(shape), max_size=math.prod(shape)))
    return np.array(values).reshape(shape)


def _assert_same_ieee(actual, expected, label):
    """Same NaN positions, same infinities, equal finite values: what NaN * 0 and inf * 0 must give."""
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=f"{label}: NaN positions")
    finite = ~np.isnan(expected)
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=1e-12, err_msg=label)


@LOOP_SETTINGS
@given(data=st.data(), batch=st.integers(1, 2), channels=st.integers(1, 2), out_channels=st.integers(1, 2),
       side=st.integers(1, 4), kernel=st.integers(1, 3))
def test_conv2d_products_with_nan_and_inf_follow_ieee(data, batch, channels, out_channels, side, kernel):
    """NaN * 0 and inf * 0 are NaN in the reference as in the loops, K = 1 and 1x1 kernels included
    (BLAS matrix-vector products skip zero factors). No padding: the loops skip padded taps."""
    kernel = min(kernel, side)
    x = _specials(data, (batch, channels, side, side))
    weight = _specials(data, (out_channels, channels, kernel, kernel))
    grad_out = _specials(data, (batch, out_channels, side - kernel + 1, side - kernel + 1))
    with np.errstate(invalid="ignore", over="ignore"):
        _assert_same_ieee(ref.conv2d(x, weight), loop_conv2d(x, weight, None, 1, 0), "y")
        actual = ref.conv2d_backward(grad_out, x, weight)
        expected = loop_conv2d_backward(grad_out, x, weight, 1, 0)
        for name, got, want in zip(("gx", "gw", "gb"), actual, expected):
            _assert_same_ieee(got, want, name)
        a, b = x.reshape(-1, side), _specials(data, (side, out_channels))
        loop_gemm = [[sum(p * q for p, q in zip(row, col)) for col in b.T] for row in a]
        _assert_same_ieee(ref.gemm(a, b), np.array(loop_gemm), "gemm")
