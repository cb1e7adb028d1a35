"""The inference-only C paths: functional._conv_chain (convolution blocks carried through in one call)
and functional._max_pool2d_values (max pooling without indices, optionally of relu(x)), and the
Sequential inference that uses them.

Both must give the same bits as the unfused kernels (conv2d, relu, max_pool2d one after the other)
at every SIMD level and thread count, and the NumPy reference's values to the dtype's tolerance.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv as fc
import fastconv.functional as F
from fastconv import _inference, layers, losses, models
from fastconv import reference as ref

SIMD_LEVELS = tuple(fc.build_info()["simd_available"])
DTYPES = (np.float64, np.float32)
CHAIN_SETTINGS = settings(max_examples=60, deadline=None)


def with_specials(x):
    """x with NaN, -inf, -0.0 and +0.0 sprinkled in (the cases a max and a ReLU treat specially)."""
    x = x.copy()
    x.flat[::13] = np.nan
    x.flat[5::17] = -np.inf
    x.flat[2::7] = -0.0
    x.flat[4::9] = 0.0
    return x


def same_bits(actual, expected, msg=""):
    assert actual.shape == expected.shape and actual.dtype == expected.dtype, msg
    np.testing.assert_array_equal(actual, expected, err_msg=msg)
    np.testing.assert_array_equal(np.signbit(actual), np.signbit(expected), err_msg=msg)   # -0.0 stays -0.0


def unfused(module, x, blocks):
    """The blocks as separate conv2d, relu and max_pool2d calls of a kernel module."""
    for block in blocks:
        x = module.conv2d(x, block.weight, block.bias, block.stride, block.padding, algo=block.algo)
        if block.relu:
            x = module.relu(x)
        if block.pool is not None:
            x = module.max_pool2d(x, *block.pool)[0]
    return x


@st.composite
def chains(draw, dtype):
    """(x, blocks): 1-3 random blocks whose shapes chain, batch 0-7, every option of a block."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    channels, height, width = draw(st.integers(1, 4)), draw(st.integers(3, 14)), draw(st.integers(3, 14))
    x = rng.normal(size=(draw(st.integers(0, 7)), channels, height, width)).astype(dtype)
    blocks = []
    for _ in range(draw(st.integers(1, 3))):
        pad = draw(st.integers(0, 2))
        kernel = draw(st.integers(1, min(5, height + 2 * pad, width + 2 * pad)))
        stride = draw(st.integers(1, 2))
        filters = draw(st.sampled_from([1, 3, 6, 8, 16, 20]))
        height, width = (height + 2 * pad - kernel) // stride + 1, (width + 2 * pad - kernel) // stride + 1
        pool = None
        if draw(st.booleans()):
            size = draw(st.integers(1, min(3, height, width)))
            pool = (size, draw(st.sampled_from([None, 1, 2, 3])), draw(st.integers(0, size // 2)))
            step = pool[1] or size
            height = (height + 2 * pool[2] - size) // step + 1
            width = (width + 2 * pool[2] - size) // step + 1
        bias = rng.normal(size=filters).astype(dtype) if draw(st.booleans()) else None
        weight = rng.normal(size=(filters, channels, kernel, kernel)).astype(dtype)
        blocks.append(F._ConvBlock(weight, bias, stride, pad, draw(st.sampled_from(["auto", "direct", "im2col"])),
                                   draw(st.booleans()), pool))
        channels = filters
    return with_specials(x) if draw(st.booleans()) else x, blocks


@pytest.mark.parametrize("dtype", DTYPES)
@CHAIN_SETTINGS
@given(data=st.data())
def test_conv_chain_equals_the_unfused_kernels_and_the_reference(dtype, data, numerics):
    x, blocks = data.draw(chains(dtype))
    finite = np.isfinite(x).all()
    for level in SIMD_LEVELS:
        for threads in (1, 2):
            F.set_num_threads(threads)
            with numerics.simd_env(level):
                got = F._conv_chain(x, blocks)
                same_bits(got, unfused(F, x, blocks), f"simd={level} threads={threads} x{x.shape} {blocks}")
            if finite:   # NaN and inf go through the float sums in whatever order each side takes
                # normwise: an output near zero from terms that cancel keeps the rounding of its terms
                expected = unfused(ref, x, blocks)
                tolerance = 1e-10 if dtype == np.float64 else 2e-4
                scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
                np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance * scale)
    F.set_num_threads(F._default_num_threads())


@pytest.mark.parametrize("dtype", DTYPES)
@CHAIN_SETTINGS
@given(data=st.data())
def test_max_pool2d_values_equals_max_pool2d(dtype, data, strategies, numerics):
    case = data.draw(strategies.pool_case())
    x = with_specials(np.asarray(case.x, dtype)) if data.draw(st.booleans()) else np.asarray(case.x, dtype)
    args = (case.kernel_size, case.stride, case.padding)
    for level in SIMD_LEVELS:
        with numerics.simd_env(level):
            msg = f"x{x.shape} args={args} simd={level}"
            same_bits(F._max_pool2d_values(x, *args), F.max_pool2d(x, *args)[0], msg)
            same_bits(F._max_pool2d_values(x, *args, relu=True), F.max_pool2d(F.relu(x), *args)[0], msg)
        # (the reference's np.max does not keep the first of +0.0 and -0.0: values only)
        np.testing.assert_array_equal(F._max_pool2d_values(x, *args), ref.max_pool2d(x, *args)[0], err_msg=msg)


def test_relu_pool_keeps_the_sign_of_zero_of_the_first_candidate():
    """All-nonpositive windows: ReLU then pool keeps the first candidate's zero (-0.0 stays -0.0)."""
    rows = np.array([[[[-0.0, -1.0, -1.0, -0.0, 0.0, -0.0, -2.0, np.nan] * 2,
                       [-1.0, 0.0, -0.0, -3.0, -0.0, -0.0, -5.0, -1.0] * 2]]], np.float32)
    got = F._max_pool2d_values(rows, 2, relu=True)
    same_bits(got, F.max_pool2d(F.relu(rows), 2)[0])
    assert list(np.signbit(got[0, 0, 0, :4])) == [True, False, False, False]


# ---- the inference path of Sequential ------------------------------------------------------------

def test_lenet5_inference_runs_its_convolutions_as_one_chain(monkeypatch):
    model = models.lenet5(seed=3)
    names = [step.name for step in _inference.steps(model.layers)]
    assert names == ["conv2d+re_lu+max_pool2d+conv2d_1+re_lu_1+max_pool2d_1", "flatten", "dense", "re_lu_2",
                     "dense_1", "re_lu_3", "dense_2"]
    x = np.random.default_rng(4).random((70, 1, 28, 28), dtype=np.float32)
    expected = np.concatenate([losses.softmax(layer_by_layer(model, x[i:i + 32])) for i in (0, 32, 64)])
    calls = []
    chain = fc._kernels.conv_chain_forward
    monkeypatch.setattr(fc._kernels, "conv_chain_forward", lambda *args: calls.append(len(args[0])) or chain(*args))
    for layer_class in (layers.Conv2D, layers.ReLU, layers.MaxPool2D):
        monkeypatch.setattr(layer_class, "forward", refuse)
    got = model.predict(x, batch_size=32)
    assert calls == [2, 2, 2]          # one chain of two blocks per batch, no layer-by-layer convolution
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))


def refuse(*args, **kwargs):
    raise AssertionError("the fused inference path should not call a layer's forward")


def layer_by_layer(model, x):
    for layer in model.layers:
        x = layer.forward(x, training=False)
    return x


@pytest.mark.parametrize("name", ["keras_cnn", "keras_cnn_30_60", "deep_cnn", "lenet5_classic"])
def test_zoo_inference_equals_layer_by_layer(name):
    model = models.get(name, seed=1)
    x = np.random.default_rng(5).random((9,) + model.input_shape, dtype=np.float32)
    np.testing.assert_array_equal(model.forward(x), layer_by_layer(model, x))


def test_what_is_not_fused():
    """Asymmetric "same" padding, the reference backend and a lone pooling layer stay layer by layer."""
    same = fc.Sequential([layers.Conv2D(2, 4, padding="same"), layers.ReLU(), layers.MaxPool2D(2)],
                         input_shape=(1, 6, 6), seed=0).build()
    assert [step.name for step in _inference.steps(same.layers)] == ["conv2d", "re_lu", "max_pool2d"]
    pooled = fc.Sequential([layers.Conv2D(2, 3), layers.Tanh(), layers.MaxPool2D(2), layers.Conv2D(3, 1)],
                           input_shape=(1, 6, 6), seed=0).build()
    assert [step.name for step in _inference.steps(pooled.layers)] == ["conv2d", "tanh", "max_pool2d", "conv2d_1"]
    x = np.random.default_rng(6).normal(size=(5, 1, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(pooled.forward(x), layer_by_layer(pooled, x))
    pooled.backend = "reference"
    assert [step.name for step in _inference.steps(pooled.layers)] == ["conv2d", "tanh", "max_pool2d", "conv2d_1"]


def test_training_forward_does_not_take_the_fused_path(monkeypatch):
    model = models.lenet5(seed=2)
    monkeypatch.setattr(F, "_conv_chain", refuse)
    monkeypatch.setattr(F, "_max_pool2d_values", refuse)
    x = np.random.default_rng(7).random((4, 1, 28, 28), dtype=np.float32)
    loss, _ = model.loss_and_gradients(x, np.arange(4))
    assert np.isfinite(loss)


# ---- errors --------------------------------------------------------------------------------------

def test_conv_chain_rejects_bad_blocks():
    x = np.zeros((2, 3, 8, 8), np.float32)
    good = F._ConvBlock(np.ones((4, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match="blocks must be a non-empty list"):
        F._conv_chain(x, [])
    with pytest.raises(TypeError, match=r"blocks\[0\] must be a _ConvBlock"):
        F._conv_chain(x, [(np.ones((4, 3, 3, 3)),)])
    with pytest.raises(ValueError, match=r"blocks\[1\]: weight has 3 input channels .* x has 4"):
        F._conv_chain(x, [good, good])
    with pytest.raises(ValueError, match=r"blocks\[0\]: bias must have 4 entries"):
        F._conv_chain(x, [good._replace(bias=np.ones(3, np.float32))])
    with pytest.raises(TypeError, match=r"blocks\[0\]: relu must be a bool"):
        F._conv_chain(x, [good._replace(relu=1)])
    with pytest.raises(ValueError, match=r"blocks\[0\]: pool must be None or \(kernel_size, stride, padding\)"):
        F._conv_chain(x, [good._replace(pool=2)])
    with pytest.raises(ValueError, match=r"blocks\[0\]: kernel_size 7 is larger than the padded input"):
        F._conv_chain(x, [good._replace(pool=(7, None, 0))])
    with pytest.raises(ValueError, match=r"blocks\[0\]: algo must be one of"):
        F._conv_chain(x, [good._replace(algo="fft")])
    with pytest.raises(TypeError, match="x must have dtype float32 or float64"):
        F._conv_chain(x.astype(np.int32), [good])
    assert F._conv_chain(x[:0], [good._replace(pool=(2, None, 0))]).shape == (0, 4, 3, 3)


def test_max_pool2d_values_rejects_bad_input():
    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(TypeError, match="relu must be a bool"):
        F._max_pool2d_values(x, 2, relu="yes")
    with pytest.raises(ValueError, match="padding .* must be at most half of kernel_size"):
        F._max_pool2d_values(x, 2, padding=2)
    with pytest.raises(ValueError, match="x must be 4-D"):
        F._max_pool2d_values(x[0], 2)
