"""fastconv.conv2d / conv2d_backward (C kernels) against the NumPy reference.

Every comparison runs each explicit algorithm ("direct", "im2col") and "auto" at every SIMD level
this CPU offers (FASTCONV_SIMD). The oracle is always the reference in float64: for float32 the
inputs are rounded to float32 first, so only the kernel's own arithmetic is measured.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv as fc
from fastconv import reference as ref

ALGOS = ("direct", "im2col", "auto")
SIMD_LEVELS = tuple(fc.build_info()["simd_available"])
DTYPES = (np.float64, np.float32)


def describe(x, weight, stride, padding, algo, level, dtype):
    return (f"x{np.shape(x)} weight{np.shape(weight)} stride={stride} padding={padding} "
            f"algo={algo} simd={level} dtype={np.dtype(dtype).name}")


def random_args(x_shape, w_shape, with_bias=True, seed=0):
    rng = np.random.default_rng(seed)
    bias = rng.standard_normal(w_shape[0]) if with_bias else None
    return rng.standard_normal(x_shape), rng.standard_normal(w_shape), bias


def as_dtype(array, dtype):
    return None if array is None else np.asarray(array, dtype=dtype)


def check_forward(numerics, x, weight, bias, stride, padding, dtype):
    """fc.conv2d(dtype) vs the float64 reference, for every algo and SIMD level."""
    x, weight, bias = (as_dtype(a, dtype) for a in (x, weight, bias))
    expected = ref.conv2d(as_dtype(x, np.float64), weight, bias, stride, padding)
    for algo in ALGOS:
        for level in SIMD_LEVELS:
            with numerics.simd_env(level):
                y = fc.conv2d(x, weight, bias, stride, padding, algo=algo)
            label = "conv2d " + describe(x, weight, stride, padding, algo, level, dtype)
            assert y.dtype == dtype, label
            numerics.assert_close(y, expected, dtype, label)


def check_backward(numerics, x, weight, stride, padding, dtype, seed=1):
    """fc.conv2d_backward(dtype) vs the float64 reference, for every algo and SIMD level."""
    x, weight = as_dtype(x, dtype), as_dtype(weight, dtype)
    out_shape = ref.conv2d(x, weight, None, stride, padding).shape
    grad_out = np.random.default_rng(seed).standard_normal(out_shape).astype(dtype)
    expected = ref.conv2d_backward(as_dtype(grad_out, np.float64), as_dtype(x, np.float64), weight, stride, padding)
    for algo in ALGOS:
        for level in SIMD_LEVELS:
            with numerics.simd_env(level):
                grads = fc.conv2d_backward(grad_out, x, weight, stride, padding, algo=algo)
            label = describe(x, weight, stride, padding, algo, level, dtype)
            for name, got, want in zip(("gx", "gw", "gb"), grads, expected):
                assert got.dtype == dtype, f"{name} {label}"
                numerics.assert_close(got, want, dtype, f"conv2d_backward {name} {label}")


# ---- random shapes -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_conv2d_matches_reference(dtype, data, strategies, numerics):
    case = data.draw(strategies.conv_case())
    check_forward(numerics, case.x, case.weight, case.bias, case.stride, case.padding, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_conv2d_backward_matches_reference(dtype, data, strategies, numerics):
    case = data.draw(strategies.conv_case(with_bias=False))
    check_backward(numerics, case.x, case.weight, case.stride, case.padding, dtype)


# ---- named shapes --------------------------------------------------------------------------------

NAMED_SHAPES = {
    # name: (x shape, weight shape, stride, padding)
    "stride-not-dividing-input": ((2, 3, 10, 11), (4, 3, 3, 2), (3, 2), 0),
    "stride-larger-than-kernel": ((2, 2, 9, 10), (3, 2, 2, 2), 3, 1),
    "padding-height-only": ((2, 3, 7, 8), (4, 3, 3, 3), 1, (2, 0)),
    "padding-width-only": ((2, 3, 7, 8), (4, 3, 3, 3), 1, (0, 1)),
    "1x1-kernel": ((2, 5, 6, 7), (4, 5, 1, 1), 1, 0),
    "1x1-kernel-stride-2": ((2, 5, 6, 7), (4, 5, 1, 1), 2, 0),
    "1x1-kernel-padded": ((1, 2, 3, 3), (3, 2, 1, 1), 1, 1),
    "kernel-equals-padded-input": ((2, 3, 5, 6), (2, 3, 7, 8), 1, 1),
    "kernel-equals-input": ((3, 2, 4, 5), (3, 2, 4, 5), 1, 0),
    "1x1-image": ((2, 3, 1, 1), (4, 3, 1, 1), 1, 0),
    "1x1-image-padded": ((2, 3, 1, 1), (4, 3, 3, 3), 1, 1),
    "batch-1": ((1, 3, 9, 9), (4, 3, 3, 3), 1, 1),
    "channels-1": ((3, 1, 9, 9), (1, 1, 3, 3), 1, 1),
    "wide-kernel": ((2, 2, 4, 12), (3, 2, 1, 5), (1, 2), (0, 2)),
    "lenet-conv1": ((4, 1, 28, 28), (6, 1, 5, 5), 1, 2),
    "lenet-conv2": ((4, 6, 14, 14), (16, 6, 5, 5), 1, 0),
    # the direct forward vectorised over output channels (K >= one vector): a partial last vector,
    # several vectors, odd row counts, rows wider than one register block, stride_h > 1, padding
    # on one axis (the kernel copies padded images), and a batch smaller than the thread count
    "k-vector-tails": ((3, 4, 9, 15), (19, 4, 3, 3), 1, (0, 2)),
    "k-vector-many-blocks": ((2, 3, 11, 26), (37, 3, 2, 3), (2, 1), (1, 0)),
    "k-vector-batch-2": ((2, 2, 7, 7), (33, 2, 3, 3), 1, 1),
    "k-vector-batch-1": ((1, 2, 7, 7), (33, 2, 3, 3), 1, 1),  # a single image takes the gather path
    # im2col cuts the batch into chunks from a fixed scratch budget (4 MB when written): here
    # several images per chunk, several chunks and a partial last one, in both dtypes ...
    "many-im2col-chunks": ((64, 16, 16, 16), (8, 16, 3, 3), 1, 1),
    # ... and images too large to share a chunk (one image per chunk, the GEMM writes y directly).
    "one-image-per-im2col-chunk": ((3, 32, 64, 64), (8, 32, 3, 3), 1, 1),
    # grad_w vectorised over output channels (K >= one vector, any stride): partial vectors, a 7-wide
    # kernel split into row blocks, stride 2 with padding (the kernel copies padded images), and
    # images whose scratch (dy transposed: 2 MB budget when written) forces one image per chunk
    "grad-w-vector-rows-split": ((2, 3, 12, 13), (21, 3, 7, 7), 1, (3, 2)),
    "grad-w-vector-strided": ((3, 5, 15, 16), (40, 5, 3, 4), 2, 1),
    "grad-w-vector-chunks": ((3, 2, 100, 100), (48, 2, 3, 3), 1, 1),
    # the direct kernels vectorised over columns and blocked over 6 channels (wvec): the forward with a
    # partial channel block, stride_h 2, padding on both axes and rows ending mid-vector; grad_x (a
    # stride-1 convolution of grad_out) with two blocks of input channels, the second partial, padding
    # under kernel - 1, and rows wider than one register block (2 vectors)
    "w-vector-forward-partial-block": ((3, 2, 11, 21), (4, 2, 3, 4), (2, 1), (1, 2)),
    "w-vector-grad-x-two-blocks": ((2, 9, 10, 19), (7, 9, 3, 5), 1, (1, 2)),
    "w-vector-grad-x-wide-rows": ((2, 12, 6, 40), (5, 12, 3, 3), 1, 0),
    # im2col's grad_x by image, in blocks of output rows (a 192 KB column block when written): several
    # blocks per image, a partial last block and a block ending mid-panel, stride 1 and stride 2
    "grad-x-by-image-row-blocks": ((2, 40, 20, 21), (24, 40, 3, 3), 1, 1),
    "grad-x-by-image-row-blocks-strided": ((2, 40, 41, 41), (16, 40, 3, 3), 2, 1),
    # the fused im2col forward's panels (algo="im2col"; auto takes im2col on the first): stride 1 with
    # and without padding (whole-vector copies of runs of 8 and 5 columns), and stride_w 2, whose panels
    # read the image with each row's even columns first, over odd and even widths
    "im2col-forward-unpadded-runs": ((2, 9, 10, 10), (70, 9, 3, 3), 1, 0),
    "im2col-forward-padded-runs": ((2, 5, 7, 5), (70, 5, 3, 3), 1, 1),
    "im2col-forward-stride-w-2-odd-width": ((2, 5, 9, 31), (70, 5, 3, 3), (1, 2), 1),
    "im2col-forward-stride-2-even-width": ((2, 4, 12, 20), (70, 4, 3, 2), 2, (0, 1)),
    # ... with that copy padded (zeros written out): rows longer than two AVX-512 vectors (whole vectors,
    # then a masked tail), odd and even pad_w, and a pad wider than the split row's list of zeros holds
    "im2col-forward-stride-2-wide-rows": ((2, 3, 9, 70), (70, 3, 3, 3), 2, (1, 3)),
    "im2col-forward-stride-2-even-pad": ((3, 2, 8, 33), (70, 2, 3, 5), 2, 2),
    "im2col-forward-stride-2-wide-pad": ((2, 2, 6, 7), (70, 2, 3, 19), 2, (1, 9)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMED_SHAPES)
def test_named_shapes(name, dtype, numerics):
    x_shape, w_shape, stride, padding = NAMED_SHAPES[name]
    x, weight, bias = random_args(x_shape, w_shape)
    check_forward(numerics, x, weight, bias, stride, padding, dtype)
    check_backward(numerics, x, weight, stride, padding, dtype)


STRIDE_2_PADDINGS = [(1, 1), (0, 1), (2, 3), (1, 9)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding", STRIDE_2_PADDINGS)
def test_im2col_stride_2_padding_equals_a_padded_input_bitwise(padding, dtype, numerics):
    """The fused im2col forward writes stride-2 padding out in its copy of each image; the sums are
    those of the same convolution on an input padded beforehand, bit for bit, at every SIMD level and
    thread count (widths: whole AVX-512 vectors plus a masked tail, and odd)."""
    x, weight, bias = (as_dtype(a, dtype) for a in random_args((3, 5, 11, 37), (70, 5, 3, 5)))
    padded = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    threads = fc.get_num_threads()
    try:
        for level in SIMD_LEVELS:
            for count in (1, 2):
                fc.set_num_threads(count)
                with numerics.simd_env(level):
                    y = fc.conv2d(x, weight, bias, 2, padding, algo="im2col")
                    y_padded_input = fc.conv2d(padded, weight, bias, 2, 0, algo="im2col")
                np.testing.assert_array_equal(y, y_padded_input, err_msg=f"simd={level} threads={count}")
    finally:
        fc.set_num_threads(threads)


# ---- memory layouts and array-likes --------------------------------------------------------------

def layouts():
    """name -> (x, weight, bias, grad_out-shape transform) in unusual layouts; values as float64."""
    rng = np.random.default_rng(2)
    base_x, base_w = rng.standard_normal((2, 3, 14, 16)), rng.standard_normal((4, 3, 3, 5))
    bias = rng.standard_normal(4)
    return {
        "strided-slices": (base_x[:, :, ::2, ::2], base_w[:, :, :, ::2], bias[::1]),
        "transposed-views": (base_x.transpose(0, 1, 3, 2), base_w.transpose(0, 1, 3, 2), bias),
        "channel-reversed": (base_x[:, ::-1], base_w[::-1, ::-1], bias[::-1]),
        "fortran-order": (np.asfortranarray(base_x), np.asfortranarray(base_w), np.asfortranarray(bias)),
        "python-lists": (base_x.tolist(), base_w.tolist(), bias.tolist()),
    }


@pytest.mark.parametrize("name", list(layouts()))
def test_layouts_and_array_likes(name, numerics):
    x, weight, bias = layouts()[name]
    contiguous = [np.ascontiguousarray(a) for a in (x, weight, bias)]
    stride, padding = (1, 2), 1
    for algo in ALGOS:
        y = fc.conv2d(x, weight, bias, stride, padding, algo=algo)
        assert y.dtype == np.float64
        numerics.assert_close(y, ref.conv2d(*contiguous, stride, padding), label=f"{name} algo={algo}")
        # grad_out in the same unusual layout as x where it has one
        grad_out = np.asfortranarray(np.random.default_rng(3).standard_normal(y.shape))[..., ::-1]
        expected = ref.conv2d_backward(np.ascontiguousarray(grad_out), contiguous[0], contiguous[1], stride, padding)
        got = fc.conv2d_backward(grad_out, x, weight, stride, padding, algo=algo)
        for grad_name, g, want in zip(("gx", "gw", "gb"), got, expected):
            numerics.assert_close(g, want, label=f"{name} {grad_name} algo={algo}")


def test_other_operands_are_cast_to_x_dtype(numerics):
    x, weight, bias = random_args((2, 3, 6, 6), (4, 3, 3, 3))
    x32 = x.astype(np.float32)
    for algo in ALGOS:
        y = fc.conv2d(x32, weight, bias.tolist(), padding=1, algo=algo)
        assert y.dtype == np.float32
        numerics.assert_close(y, ref.conv2d(x32.astype(np.float64), weight.astype(np.float32), bias.astype(np.float32),
                                            padding=1), np.float32)
        grads = fc.conv2d_backward(np.ones(y.shape), x32, weight, padding=1, algo=algo)
        assert all(g.dtype == np.float32 for g in grads)


def test_inputs_are_not_modified():
    x, weight, bias = random_args((2, 3, 6, 6), (4, 3, 3, 3))
    grad_out = np.ones((2, 4, 6, 6))
    copies = [a.copy() for a in (x, weight, bias, grad_out)]
    for algo in ALGOS:
        fc.conv2d(x, weight, bias, 1, 1, algo=algo)
        fc.conv2d_backward(grad_out, x, weight, 1, 1, algo=algo)
    for original, copy in zip((x, weight, bias, grad_out), copies):
        np.testing.assert_array_equal(original, copy)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, w_shape, padding", [
    ((3, 1, 28, 28), (6, 1, 5, 5), 2),     # LeNet C1: a row of 28 ends inside a vector (wvgw's tail)
    ((2, 3, 13, 11), (4, 3, 3, 3), 1),
])
def test_inf_in_x_gives_the_references_inf_not_nan(x_shape, w_shape, padding, dtype, numerics):
    """An inf in x enters exactly the weight gradients whose sums multiply it: the same signed infs
    as the reference, and finite values elsewhere (no 0 * inf from lanes past the end of a row)."""
    x, weight, _ = random_args(x_shape, w_shape, with_bias=False, seed=3)
    x, weight = x.astype(dtype), weight.astype(dtype)
    x[0, 0, 0, -1] = np.inf      # the last column: read past the row's end by a vector's tail lanes
    x[-1, 0, -1, 0] = -np.inf
    out_shape = ref.conv2d(x, weight, None, 1, padding).shape
    grad_out = np.random.default_rng(4).standard_normal(out_shape).astype(dtype)
    with np.errstate(invalid="ignore"):   # the reference's grad_x meets inf * 0 too
        _, want, _ = ref.conv2d_backward(grad_out.astype(np.float64), x.astype(np.float64),
                                         weight.astype(np.float64), 1, padding)
    assert np.isinf(want).any() and np.isfinite(want).any()
    for algo in ALGOS:
        for level in SIMD_LEVELS:
            with numerics.simd_env(level):
                _, got, _ = fc.conv2d_backward(grad_out, x, weight, 1, padding, algo=algo)
            label = describe(x, weight, 1, padding, algo, level, dtype)
            np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want), err_msg=label)
            np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want), err_msg=label)
            finite = np.isfinite(want)
            numerics.assert_close(got[finite], want[finite], dtype, label)


# ---- gradients by finite differences (fastconv itself, float64) ----------------------------------

@pytest.mark.parametrize("algo", ALGOS)
def test_conv2d_backward_matches_finite_differences(algo, numerics):
    x, weight, bias = random_args((2, 2, 5, 4), (3, 2, 3, 2), seed=4)
    stride, padding = (2, 1), (1, 0)
    grad_out = np.random.default_rng(5).standard_normal(fc.conv2d(x, weight, bias, stride, padding).shape)

    def loss():
        return float(np.sum(fc.conv2d(x, weight, bias, stride, padding, algo=algo) * grad_out))

    grads = fc.conv2d_backward(grad_out, x, weight, stride, padding, algo=algo)
    for name, got, array in zip(("gx", "gw", "gb"), grads, (x, weight, bias)):
        np.testing.assert_allclose(got, numerics.numerical_gradient(loss, array), rtol=1e-6, atol=1e-7,
                                   err_msg=f"{name} algo={algo}")


def test_grad_x_by_image_row_blocks_match_finite_differences(numerics):
    """float64 grad_x of im2col's by-image form where an image's column matrix is cut into blocks of output
    rows (several blocks, the borders summed from two): central differences at positions on every input row."""
    x, weight, _ = random_args((2, 64, 8, 8), (8, 64, 3, 3), with_bias=False, seed=6)
    assert fc.conv2d_plan(x.shape, weight.shape, 1, 1, algo="im2col").grad_x == "im2col.by_image"
    grad_out = np.random.default_rng(7).standard_normal((2, 8, 8, 8))

    def loss():
        return float(np.sum(fc.conv2d(x, weight, None, 1, 1, algo="im2col") * grad_out))

    got = fc.conv2d_backward(grad_out, x, weight, 1, 1, algo="im2col")[0]
    rng = np.random.default_rng(8)
    positions = [(rng.integers(2), rng.integers(64), h, rng.integers(8)) for h in range(8) for _ in range(3)]
    numeric = numerics.numerical_gradient(loss, x, positions=positions)
    for position in positions:
        np.testing.assert_allclose(got[position], numeric[position], rtol=1e-6, atol=1e-7, err_msg=str(position))


# ---- empty batch ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algo", ALGOS)
def test_batch_size_zero_gives_empty_outputs(algo, dtype):
    x = np.zeros((0, 3, 7, 6), dtype)
    weight = np.ones((4, 3, 3, 2), dtype)
    y = fc.conv2d(x, weight, np.ones(4), stride=2, padding=1, algo=algo)
    assert y.shape == (0, 4, 4, 4) and y.dtype == dtype
    gx, gw, gb = fc.conv2d_backward(np.zeros(y.shape, dtype), x, weight, stride=2, padding=1, algo=algo)
    assert gx.shape == x.shape and gw.shape == weight.shape and gb.shape == (4,)
    assert gx.dtype == gw.dtype == gb.dtype == dtype
    # Nothing to sum over: the parameter gradients are zero, not garbage.
    assert not gw.any() and not gb.any()
