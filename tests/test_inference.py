"""The inference path of Sequential (forward(training=False), predict, evaluate): elementwise layers
work in place on the model's own intermediate arrays, with results identical to layer-by-layer
forward calls, and never touch the caller's input."""
import numpy as np
import pytest

import fastconv.functional as F
from fastconv import Sequential, layers, losses, models


def layer_by_layer(model, x):
    for layer in model.layers:
        x = layer.forward(x, training=False)
    return x


def activation_model(first, dtype):
    return Sequential([first, layers.Conv2D(3, 3, padding=1), layers.ReLU(), layers.Tanh(), layers.LeakyReLU(0.1),
                       layers.MaxPool2D(2), layers.Flatten(), layers.Dense(5), layers.LeakyReLU(0.3),
                       layers.Dropout(0.5), layers.ReLU(), layers.Dense(4)],
                      input_shape=(2, 6, 6), seed=0, dtype=dtype).build()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("first", [layers.ReLU, layers.Tanh, lambda: layers.LeakyReLU(0.2),
                                   lambda: layers.Dropout(0.3)], ids=["relu", "tanh", "leaky_relu", "dropout"])
def test_inference_equals_layer_by_layer_and_keeps_the_input(first, dtype):
    """The first layer sees the caller's array (it must not write to it); the later ones reuse buffers."""
    model = activation_model(first(), dtype)
    x = np.random.default_rng(1).normal(size=(9, 2, 6, 6)).astype(dtype)
    x[0, 0, 0, :3] = [np.nan, -0.0, np.inf]
    kept = x.copy()
    expected = layer_by_layer(model, x.copy())
    np.testing.assert_array_equal(model.forward(x), expected)
    np.testing.assert_array_equal(model.predict(x, batch_size=4), losses.softmax(expected))
    np.testing.assert_array_equal(x, kept)


def test_lenet5_predict_equals_layer_by_layer_softmax():
    model = models.lenet5(seed=5)
    x = np.random.default_rng(2).random((300, 1, 28, 28), dtype=np.float32)
    kept = x.copy()
    expected = np.concatenate([losses.softmax(layer_by_layer(model, x[i:i + 256])) for i in (0, 256)])
    np.testing.assert_array_equal(model.predict(x), expected)
    np.testing.assert_array_equal(x, kept)


def test_relu_writes_into_out():
    x = np.random.default_rng(3).normal(size=(4, 5)).astype(np.float32)
    expected = np.where(x < 0, np.float32(0), x)
    out = np.empty_like(x)
    assert F.relu(x, out=out) is out
    np.testing.assert_array_equal(out, expected)
    assert F.relu(x, out=x) is x
    np.testing.assert_array_equal(x, expected)
    for bad in (np.empty((5, 4), np.float32), np.empty((4, 5), np.float64), np.empty((4, 10), np.float32)[:, ::2]):
        with pytest.raises(ValueError, match="out must be a writeable C-contiguous array of shape"):
            F.relu(x, out=bad)
