"""fastconv.layers: shape rules, forward results against independent computations, backward against
finite differences (float64), config round trips, dropout, and argument errors."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastconv import Sequential, layers, reference

FAST = settings(max_examples=25, deadline=None)


def built(layer, input_shape, dtype=np.float64, seed=0):
    layer.build(input_shape, np.random.default_rng(seed), dtype)
    return layer


def keras_same_pads(size, kernel, stride):
    """TensorFlow's "SAME" rule, written out independently of the layer code."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def naive_window_op(x, kernel, stride, pads, reduce):
    """reduce(window values) over every window of x padded with NaN (cells outside the input)."""
    n, c, h, w = x.shape
    (top, bottom), (left, right) = pads
    padded = np.full((n, c, h + top + bottom, w + left + right), np.nan)
    padded[:, :, top:top + h, left:left + w] = x
    out_h = (h + top + bottom - kernel[0]) // stride[0] + 1
    out_w = (w + left + right - kernel[1]) // stride[1] + 1
    y = np.empty((n, c, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            window = padded[:, :, i * stride[0]:i * stride[0] + kernel[0], j * stride[1]:j * stride[1] + kernel[1]]
            y[:, :, i, j] = reduce(window.reshape(n, c, -1))
    return y


def check_backward(layer, x, numerics, rng):
    """The layer's input and parameter gradients match central differences of sum(forward(x) * r)."""
    r = rng.standard_normal(layer.forward(x).shape)

    def loss():
        return float(np.sum(layer.forward(x) * r))

    layer.forward(x, training=True)
    grad_x = layer.backward(r)
    numerics.assert_close(grad_x, numerics.numerical_gradient(loss, x), dtype=np.float32, label="grad x")
    for key, value in layer.params.items():
        layer.forward(x, training=True)
        layer.backward(r)
        numerics.assert_close(layer.grads[key], numerics.numerical_gradient(loss, value),
                              dtype=np.float32, label=f"grad {key}")


# ---- shape rules ---------------------------------------------------------------------------------

padding_specs = st.sampled_from(["valid", "same"]) | st.tuples(st.integers(0, 2), st.integers(0, 2))


@FAST
@given(size=st.tuples(st.integers(5, 11), st.integers(5, 11)), kernel=st.integers(1, 4), stride=st.integers(1, 3),
       padding=padding_specs, channels=st.integers(1, 3), filters=st.integers(1, 3))
def test_conv2d_shape_rule_matches_forward(size, kernel, stride, padding, channels, filters):
    layer = built(layers.Conv2D(filters, kernel, strides=stride, padding=padding), (channels,) + size)
    x = np.random.default_rng(0).standard_normal((2, channels) + size)
    assert layer.forward(x).shape == (2,) + layer.compute_output_shape((channels,) + size) == (2,) + layer.output_shape


@FAST
@given(size=st.tuples(st.integers(4, 11), st.integers(4, 11)), pool=st.integers(1, 4),
       stride=st.none() | st.integers(1, 3), use_int_padding=st.booleans(), same=st.booleans(),
       kind=st.sampled_from([layers.MaxPool2D, layers.AvgPool2D]))
def test_pool_shape_rule_matches_forward(size, pool, stride, use_int_padding, same, kind):
    padding = pool // 2 if use_int_padding else ("same" if same else "valid")
    layer = built(kind(pool, strides=stride, padding=padding), (2,) + size)
    x = np.random.default_rng(1).standard_normal((3, 2) + size)
    assert layer.forward(x).shape == (3,) + layer.output_shape


def test_same_padding_keeps_the_size_at_stride_1_and_divides_it_by_the_stride():
    for height, stride in [(28, 1), (7, 2), (9, 3), (10, 4)]:
        layer = built(layers.Conv2D(2, 3, strides=stride, padding="same"), (1, height, height))
        assert layer.output_shape == (2, math.ceil(height / stride), math.ceil(height / stride))


def test_flatten_and_dense_shape_rules():
    assert layers.Flatten().compute_output_shape((16, 5, 5)) == (400,)
    assert layers.Dense(7).compute_output_shape((400,)) == (7,)
    with pytest.raises(ValueError, match="Flatten"):
        layers.Dense(7).compute_output_shape((16, 5, 5))


def test_kernel_larger_than_the_input_is_refused_at_build():
    with pytest.raises(ValueError, match="larger than the padded input"):
        built(layers.Conv2D(1, 5), (1, 3, 3))


# ---- forward against independent computations ----------------------------------------------------

@FAST
@given(kernel=st.integers(1, 4), stride=st.integers(1, 3), padding=st.integers(0, 2), bias=st.booleans())
def test_conv2d_forward_matches_the_reference(kernel, stride, padding, bias):
    layer = built(layers.Conv2D(3, kernel, strides=stride, padding=padding, use_bias=bias), (2, 8, 9))
    x = np.random.default_rng(2).standard_normal((2, 2, 8, 9))
    expected = reference.conv2d(x, layer.params["weight"], layer.params.get("bias"), stride, padding)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-10, atol=1e-10)


@FAST
@given(size=st.integers(4, 9), kernel=st.integers(1, 4), stride=st.integers(1, 3))
def test_conv2d_same_padding_matches_tensorflow_rule(size, kernel, stride):
    """Conv "same": zero padding split as TensorFlow does (odd pixel after), checked with naive loops."""
    layer = built(layers.Conv2D(2, kernel, strides=stride, padding="same", use_bias=False), (1, size, size))
    x = np.random.default_rng(3).standard_normal((2, 1, size, size))
    pads = (keras_same_pads(size, kernel, stride),) * 2
    weight = layer.params["weight"]
    expected = np.stack([naive_window_op(x, (kernel, kernel), (stride, stride), pads,
                                         lambda win, k=k: np.nansum(win * weight[k, 0].reshape(1, 1, -1), axis=-1))
                         for k in range(2)], axis=1)[:, :, 0]
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-10, atol=1e-12)


@FAST
@given(size=st.integers(3, 9), pool=st.integers(1, 4), stride=st.integers(1, 3))
def test_pool_same_padding_matches_keras(size, pool, stride):
    """Keras "same" pooling: padded cells never win a max and do not count in an average."""
    x = np.random.default_rng(4).standard_normal((2, 3, size, size))
    pads = (keras_same_pads(size, pool, stride),) * 2
    max_layer = built(layers.MaxPool2D(pool, strides=stride, padding="same"), (3, size, size))
    avg_layer = built(layers.AvgPool2D(pool, strides=stride, padding="same"), (3, size, size))
    np.testing.assert_allclose(max_layer.forward(x), naive_window_op(x, (pool, pool), (stride, stride), pads,
                                                                     lambda w: np.nanmax(w, axis=-1)))
    np.testing.assert_allclose(avg_layer.forward(x), naive_window_op(x, (pool, pool), (stride, stride), pads,
                                                                     lambda w: np.nanmean(w, axis=-1)), rtol=1e-12)


def test_avg_pool_int_padding_counts_the_zeros_like_pytorch():
    x = np.random.default_rng(5).standard_normal((1, 2, 6, 6))
    layer = built(layers.AvgPool2D(3, strides=2, padding=1), (2, 6, 6))
    np.testing.assert_allclose(layer.forward(x), reference.avg_pool2d(x, 3, 2, 1), rtol=1e-12)


@pytest.mark.parametrize("dims", [(1, 2, 3), (3, 1, 2), (2, 3, 1), (1, 3, 2), (3, 2, 1)])
def test_permute_moves_sample_axes_as_keras_does(dims):
    """Output axis i is input axis dims[i - 1]; the batch axis stays first."""
    layer = built(layers.Permute(dims), (2, 3, 4))
    x = np.random.default_rng(3).random((5, 2, 3, 4))
    y = layer.forward(x)
    assert y.shape == (5,) + layer.output_shape and y.flags.c_contiguous
    for n, i, j, k in np.ndindex(y.shape):
        source = [None, None, None]
        for out_axis, in_axis in enumerate(dims):
            source[in_axis - 1] = (i, j, k)[out_axis]
        assert y[n, i, j, k] == x[(n, *source)]


def test_permute_refuses_an_input_of_another_rank():
    with pytest.raises(ValueError, match=r"Permute\(dims=\(2, 1\)\) expects inputs with 2 axes per sample, "
                                         r"got \(3, 4, 5\)"):
        layers.Permute((2, 1)).compute_output_shape((3, 4, 5))
    with pytest.raises(ValueError, match=r"dims must be a permutation of 1..3 .* got \(0, 1, 2\)"):
        layers.Permute((0, 1, 2))


def test_dense_numpy_and_fastconv_gemm_agree_with_matmul():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 11))
    for gemm in ("numpy", "fastconv"):
        layer = built(layers.Dense(4, gemm=gemm), (11,))
        expected = x @ layer.params["weight"] + layer.params["bias"]
        np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12)


def test_activations_match_their_formulas_and_stay_finite():
    x = np.array([[-1000.0, -3.0, -0.5, 0.0, 0.5, 3.0, 1000.0]])
    np.testing.assert_array_equal(layers.ReLU().forward(x), np.maximum(x, 0))
    np.testing.assert_allclose(layers.LeakyReLU(0.1).forward(x), np.where(x > 0, x, 0.1 * x))
    sigmoid = layers.Sigmoid().forward(x)
    assert np.all(np.isfinite(sigmoid)) and sigmoid[0, 0] == 0.0 and sigmoid[0, -1] == 1.0
    np.testing.assert_allclose(sigmoid[0, 1:-1], 1 / (1 + np.exp(-x[0, 1:-1])), rtol=1e-14)
    np.testing.assert_allclose(layers.Tanh().forward(x), np.tanh(x))
    assert layers.Sigmoid().forward(x.astype(np.float32)).dtype == np.float32


# ---- backward against finite differences ---------------------------------------------------------

@pytest.mark.parametrize("make, input_shape", [
    (lambda: layers.Conv2D(3, 3, strides=2, padding=1), (2, 7, 6)),
    (lambda: layers.Conv2D(2, (2, 3), padding="same"), (2, 5, 6)),
    (lambda: layers.Conv2D(2, 3, strides=2, padding="same", use_bias=False), (1, 6, 6)),
    (lambda: layers.MaxPool2D(2), (2, 6, 6)),
    (lambda: layers.MaxPool2D(3, strides=2, padding=1), (2, 7, 7)),
    (lambda: layers.MaxPool2D(2, padding="same"), (2, 5, 5)),
    (lambda: layers.AvgPool2D(2), (2, 6, 6)),
    (lambda: layers.AvgPool2D(3, strides=2, padding="same"), (2, 6, 7)),
    (lambda: layers.AvgPool2D(3, strides=1, padding=1), (1, 5, 5)),
    (lambda: layers.ReLU(), (3, 4)),
    (lambda: layers.LeakyReLU(0.2), (3, 4)),
    (lambda: layers.Sigmoid(), (3, 4)),
    (lambda: layers.Tanh(), (3, 4)),
    (lambda: layers.Flatten(), (2, 3, 2)),
    (lambda: layers.Permute((3, 1, 2)), (2, 3, 4)),
    (lambda: layers.Permute((2, 3, 1)), (4, 2, 3)),
    (lambda: layers.Permute((2, 1)), (3, 5)),
    (lambda: layers.Dense(4), (6,)),
    (lambda: layers.Dense(3, gemm="fastconv", use_bias=False), (5,)),
])
def test_backward_matches_finite_differences(make, input_shape, numerics):
    rng = np.random.default_rng(7)
    layer = built(make(), input_shape)
    x = rng.standard_normal((2,) + input_shape)
    x[np.abs(x) < 1e-3] = 0.5  # keep ReLU-like kinks away from the finite-difference steps
    check_backward(layer, x, numerics, rng)


def test_channels_last_model_gradients_match_finite_differences(numerics):
    """A small channels-last model (Permute in, convolution, Permute back to (H, W, C) before the Flatten):
    the gradients of the loss in every parameter and in the input match central differences, float64."""
    model = Sequential([layers.Permute((3, 1, 2)), layers.Conv2D(3, 3), layers.Tanh(), layers.MaxPool2D(2),
                        layers.Permute((2, 3, 1)), layers.Flatten(), layers.Dense(4)],
                       input_shape=(6, 7, 2), seed=0, dtype=np.float64).build()
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((2, 6, 7, 2)), np.array([1, 3])

    def loss():
        return model.loss(model.forward(x), y, return_grad=False)

    _, grad_logits = model.loss(model.forward(x, training=True), y)
    grad_x = model.backward(grad_logits)
    numerics.assert_close(grad_x, numerics.numerical_gradient(loss, x), dtype=np.float32, label="grad x")
    for (name, param), grad in zip(model.named_parameters(), model.gradients()):
        numerics.assert_close(grad, numerics.numerical_gradient(loss, param), dtype=np.float32, label=name)


def test_backward_needs_a_training_forward():
    layer = built(layers.Conv2D(1, 3), (1, 5, 5))
    layer.forward(np.zeros((1, 1, 5, 5)), training=False)
    with pytest.raises(RuntimeError, match="training=True"):
        layer.backward(np.zeros((1, 1, 3, 3)))


def test_float32_layers_compute_in_float32():
    layer = built(layers.Conv2D(2, 3), (1, 6, 6), dtype=np.float32)
    x = np.ones((2, 1, 6, 6), dtype=np.float32)
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32 and layer.backward(np.ones_like(y)).dtype == np.float32
    assert layer.grads["weight"].dtype == np.float32


# ---- dropout -------------------------------------------------------------------------------------

def test_dropout_is_identity_at_inference_and_inverted_in_training():
    layer = built(layers.Dropout(0.25, seed=3), (1000,))
    x = np.random.default_rng(8).random((10, 1000)) + 1.0
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    y = layer.forward(x, training=True)
    dropped = y == 0
    assert 0.2 < dropped.mean() < 0.3
    np.testing.assert_allclose(y[~dropped], x[~dropped] / 0.75)
    grad = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(grad == 0, dropped)
    np.testing.assert_allclose(grad[~dropped], 1 / 0.75)


def test_dropout_with_a_seed_repeats():
    x = np.ones((4, 50))
    first = built(layers.Dropout(0.5, seed=11), (50,)).forward(x, training=True)
    second = built(layers.Dropout(0.5, seed=11), (50,)).forward(x, training=True)
    np.testing.assert_array_equal(first, second)


# ---- initialisation and config -------------------------------------------------------------------

@pytest.mark.parametrize("init, bound", [("pytorch", lambda fi, fo: 1 / math.sqrt(fi)),
                                         ("he_uniform", lambda fi, fo: math.sqrt(6 / fi)),
                                         ("glorot_uniform", lambda fi, fo: math.sqrt(6 / (fi + fo)))])
def test_uniform_initialisers_fill_their_range(init, bound):
    layer = built(layers.Conv2D(32, 3, kernel_initializer=init), (8, 5, 5))
    weight, limit = layer.params["weight"], bound(8 * 9, 32 * 9)
    assert np.abs(weight).max() <= limit and np.abs(weight).max() > 0.95 * limit
    assert abs(weight.std() - limit / math.sqrt(3)) < 0.05 * limit


def test_normal_initialisers_have_the_right_spread():
    dense = built(layers.Dense(400, kernel_initializer="he_normal", bias_initializer="zeros"), (300,))
    assert abs(dense.params["weight"].std() - math.sqrt(2 / 300)) < 0.02 * math.sqrt(2 / 300)
    assert not dense.params["bias"].any()
    glorot = built(layers.Dense(400, kernel_initializer="glorot_normal"), (300,))
    assert abs(glorot.params["weight"].std() - math.sqrt(2 / 700)) < 0.02 * math.sqrt(2 / 700)


@pytest.mark.parametrize("layer", [
    layers.Conv2D(4, (3, 5), strides=(1, 2), padding="same", use_bias=False, algo="im2col",
                  kernel_initializer="he_normal", bias_initializer="zeros", input_shape=(1, 9, 9), name="c"),
    layers.MaxPool2D(3, strides=2, padding=1), layers.AvgPool2D((2, 3), padding="same"),
    layers.Dense(5, gemm="fastconv", kernel_initializer="glorot_uniform"), layers.Dropout(0.3, seed=5),
    layers.LeakyReLU(0.2), layers.ReLU(), layers.Sigmoid(), layers.Tanh(), layers.Flatten(),
    layers.Permute((3, 1, 2), input_shape=(5, 6, 2), name="to_nchw"),
])
def test_config_round_trip(layer):
    record = layers.serialize(layer)
    rebuilt = layers.deserialize(record)
    assert type(rebuilt) is type(layer) and layers.serialize(rebuilt) == record


def test_deserialize_rejects_unknown_or_malformed_records():
    with pytest.raises(ValueError, match="unknown layer class"):
        layers.deserialize({"class_name": "Conv3D", "config": {}})
    with pytest.raises(ValueError, match="bad config"):
        layers.deserialize({"class_name": "Dense", "config": {"unitz": 3}})
    with pytest.raises(ValueError):
        layers.deserialize(["Dense"])


@pytest.mark.parametrize("make, error", [
    (lambda: layers.Conv2D(0, 3), ValueError),
    (lambda: layers.Conv2D(2, 3, padding="full"), ValueError),
    (lambda: layers.Conv2D(2, 3, padding=-1), ValueError),
    (lambda: layers.Conv2D(2, 3, strides=0), ValueError),
    (lambda: layers.Conv2D(2, 3.5), TypeError),
    (lambda: layers.Conv2D(2, 3, algo="fft"), ValueError),
    (lambda: layers.Conv2D(2, 3, kernel_initializer="ones"), ValueError),
    (lambda: layers.MaxPool2D(2, padding=2), ValueError),
    (lambda: layers.Dense(0), ValueError),
    (lambda: layers.Dense(3, gemm="blas"), ValueError),
    (lambda: layers.Dropout(1.0), ValueError),
    (lambda: layers.Permute((1, 2, 2)), ValueError),
    (lambda: layers.Permute((0, 1, 2)), ValueError),
    (lambda: layers.Permute((2, 3)), ValueError),
    (lambda: layers.Permute(()), ValueError),
    (lambda: layers.Permute((1.0, 2.0)), TypeError),
    (lambda: layers.Permute("312"), TypeError),
])
def test_bad_arguments_are_refused(make, error):
    with pytest.raises(error):
        make()
