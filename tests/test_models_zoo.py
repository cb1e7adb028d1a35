"""The model zoo (fastconv.models) and Conv2D's channel-connection table: LeNet-5 as published in 1998
(its C3 table, 1,516 C3 parameters), the seed tutorials' keras_cnn / dense_net, deep_cnn."""
import numpy as np
import pytest

from fastconv import Sequential, layers, models, optim, reference


def summary_text(model):
    lines = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


def masked_conv_model(dtype=np.float64, seed=0):
    """conv 4@3x3 over 3 channels with a connection table - tanh - flatten - dense 3."""
    mask = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [1, 1, 1]], dtype=bool)
    model = Sequential([layers.Conv2D(4, 3, padding=1, connections=mask), layers.Tanh(), layers.Flatten(),
                        layers.Dense(3)], input_shape=(3, 6, 6), seed=seed, dtype=dtype).build()
    return model, mask


# ---- LeNet-5, 1998 -------------------------------------------------------------------------------

def test_classic_lenet5_has_156_and_1516_parameters_in_c1_and_c3():
    model = models.lenet5(classic=True, seed=0)
    c1, c3 = model.layers[0], model.layers[3]
    assert c1.count_params() == 6 * 25 + 6 == 156
    assert c3.count_params() == 60 * 25 + 16 == 1516
    text = summary_text(model)
    assert "c1 (Conv2D)" in text and " 156" in text and "1,516" in text
    assert isinstance(model.layers[2], layers.AvgPool2D) and isinstance(model.layers[1], layers.Tanh)
    # C1 156 + C3 1,516 + C5 48,120 + F6 10,164 + output 850
    assert model.count_params() == 60806 and "Total params: 60,806" in text
    assert model.layers[0].padding == (2, 2) and model.layers[0].output_shape == (6, 28, 28)


def test_c3_table_is_lecun_1998_table_1():
    table = models.c3_connections()
    assert table.shape == (16, 6) and table.dtype == bool and table.sum() == 60
    sizes = table.sum(axis=1)
    assert sorted(sizes) == [3] * 6 + [4] * 9 + [6]
    for k in range(6):  # maps 0-5: 3 contiguous S2 maps, starting at map k
        assert set(np.flatnonzero(table[k])) == {k, (k + 1) % 6, (k + 2) % 6}
    for k in range(6, 12):  # maps 6-11: 4 contiguous
        assert set(np.flatnonzero(table[k])) == {(k - 6 + i) % 6 for i in range(4)}
    assert [set(np.flatnonzero(table[k])) for k in (12, 13, 14)] == [{0, 1, 3, 4}, {1, 2, 4, 5}, {0, 2, 3, 5}]
    assert table[15].all()
    # every S2 map feeds 10 C3 maps (the table is balanced)
    assert list(table.sum(axis=0)) == [10] * 6


def test_models_get_knows_every_zoo_name():
    for name in ("lenet5", "lenet5-classic", "keras_cnn", "keras_cnn_30_60", "dense_net", "deep_cnn", "mlp"):
        assert name in models.available()
    assert models.get("lenet5-classic", seed=0).count_params() == 60806


# ---- the connection table on Conv2D --------------------------------------------------------------

def test_masked_weights_start_at_zero_and_get_zero_gradient():
    model, mask = masked_conv_model(np.float32)
    conv = model.layers[0]
    assert np.all(conv.params["weight"][~mask] == 0)
    assert conv.count_params() == mask.sum() * 9 + 4
    rng = np.random.default_rng(1)
    model.loss_and_gradients(rng.random((5, 3, 6, 6)), rng.integers(0, 3, 5))
    assert np.all(conv.grads["weight"][~mask] == 0)
    assert np.any(conv.grads["weight"][mask] != 0)


@pytest.mark.parametrize("optimizer", [optim.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
                                       optim.Adam(lr=0.01, weight_decay=0.01),
                                       optim.RMSprop(lr=0.01, momentum=0.5, weight_decay=0.01)],
                         ids=["sgd-momentum-wd", "adam-wd", "rmsprop"])
def test_masked_weights_stay_zero_through_training(optimizer):
    model = models.lenet5(classic=True, seed=0)
    c3 = model.layers[3]
    before = c3.params["weight"].copy()
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 32)
    model.fit(x, y, epochs=3, batch_size=8, optimizer=optimizer, verbose=0)
    mask = models.c3_connections()
    assert np.all(c3.params["weight"][~mask] == 0)
    assert not np.allclose(c3.params["weight"][mask], before[mask])


def test_masked_forward_equals_reference_conv_with_masked_weight():
    model, mask = masked_conv_model()
    conv = model.layers[0]
    conv.params["weight"][...] = np.random.default_rng(2).standard_normal(conv.params["weight"].shape)
    x = np.random.default_rng(3).standard_normal((2, 3, 6, 6))
    expected = reference.conv2d(x, conv.params["weight"] * mask[:, :, None, None], conv.params["bias"], 1, 1)
    np.testing.assert_allclose(conv.forward(x), expected, rtol=1e-12, atol=1e-12)


def test_masked_conv_gradient_check_float64(numerics):
    """Central differences of the loss w.r.t. every weight of the masked conv and every input pixel."""
    model, mask = masked_conv_model()
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((2, 3, 6, 6)), np.array([0, 2])
    conv = model.layers[0]

    def loss():
        return model.loss(model.forward(x), y, return_grad=False)

    _, grad_logits = model.loss(model.forward(x, training=True), y)
    grad_x = model.backward(grad_logits)
    grad_weight = conv.grads["weight"].copy()
    numeric = numerics.numerical_gradient(loss, conv.params["weight"])
    np.testing.assert_allclose(grad_weight, numeric, rtol=1e-6, atol=1e-9)
    assert np.all(numeric[~mask] == 0)  # unconnected weights do not touch the loss at all
    np.testing.assert_allclose(grad_x, numerics.numerical_gradient(loss, x), rtol=1e-6, atol=1e-9)


def test_connections_round_trip_through_config_and_checkpoint(tmp_path):
    model, mask = masked_conv_model(np.float32)
    config = layers.serialize(model.layers[0])
    assert config["config"]["connections"] == mask.tolist()
    rebuilt = layers.deserialize(config)
    np.testing.assert_array_equal(rebuilt.connections, mask)
    path = tmp_path / "masked.npz"
    model.save(path)
    loaded = Sequential.load(path)
    np.testing.assert_array_equal(loaded.layers[0].connections, mask)
    assert loaded.count_params() == model.count_params()
    x = np.random.default_rng(5).random((3, 3, 6, 6))
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-6)


def test_connections_of_wrong_shape_or_type_are_refused():
    with pytest.raises(ValueError, match="connections"):
        layers.Conv2D(4, 3, connections=np.ones((3, 2), dtype=bool))
    with pytest.raises(TypeError, match="connections"):
        layers.Conv2D(2, 3, connections=[[0.5, 1], [1, 1]])
    with pytest.raises(ValueError, match="connections"):  # 2 input channels in the table, 3 in the data
        Sequential([layers.Conv2D(2, 3, connections=np.ones((2, 2)))], input_shape=(3, 8, 8)).build()


# ---- the seed tutorials' models and deep_cnn -----------------------------------------------------

def conv_params(k, c, r, s):
    return k * c * r * s + k


def dense_params(n_in, n_out):
    return n_in * n_out + n_out


HAND_COUNTS = {
    "keras_cnn": conv_params(25, 1, 3, 3) + conv_params(50, 25, 3, 3) + dense_params(50 * 5 * 5, 100)
    + dense_params(100, 10),
    "dense_net": dense_params(784, 500) + 2 * dense_params(500, 500) + dense_params(500, 10),
    "deep_cnn": conv_params(16, 1, 3, 3) + conv_params(32, 16, 3, 3) + conv_params(64, 32, 3, 3)
    + conv_params(128, 64, 3, 3) + dense_params(128 * 4 * 4, 1024) + dense_params(1024, 128)
    + dense_params(128, 10),
    "keras_cnn_30_60": conv_params(30, 1, 3, 3) + conv_params(60, 30, 3, 3) + dense_params(60 * 7 * 7, 500)
    + dense_params(500, 10),
}

# Output shape of every layer, from the tutorials' architectures (valid 3x3 conv: -2; pool 2: /2, "same": ceil).
LAYER_SHAPES = {
    "deep_cnn": [(16, 26, 26), (16, 26, 26), (32, 24, 24), (32, 24, 24), (32, 12, 12), (64, 10, 10),
                 (64, 10, 10), (128, 8, 8), (128, 8, 8), (128, 4, 4), (2048,), (1024,), (1024,), (128,), (128,),
                 (10,)],
    "keras_cnn_30_60": [(30, 26, 26), (30, 26, 26), (30, 13, 13), (60, 13, 13), (60, 13, 13), (60, 7, 7),
                        (2940,), (500,), (500,), (10,)],
}


@pytest.mark.parametrize("name", sorted(LAYER_SHAPES))
def test_tutorial_models_have_the_tutorials_layer_shapes(name):
    model = models.get(name, seed=0)
    assert [layer.output_shape for layer in model.layers] == LAYER_SHAPES[name]
    convs = [layer for layer in model.layers if isinstance(layer, layers.Conv2D)]
    assert all(layer.kernel_size == (3, 3) for layer in convs)
    # every conv and hidden dense layer is followed by a ReLU, the output layer is not
    for layer, following in zip(model.layers, model.layers[1:]):
        if isinstance(layer, (layers.Conv2D, layers.Dense)):
            assert isinstance(following, layers.ReLU), layer.name
    assert isinstance(model.layers[-1], layers.Dense)


def test_keras_cnn_30_60_pools_pad_same_and_keep_the_odd_row():
    model = models.keras_cnn_30_60(seed=0, dtype=np.float64)
    pools = [layer for layer in model.layers if isinstance(layer, layers.MaxPool2D)]
    assert [pool.padding for pool in pools] == ["same", "same"]
    # 13x13 -> 7x7: the last output row/column sees only the 13th input row/column (Keras pads after)
    x = np.random.default_rng(0).standard_normal((1, 60, 13, 13))
    out = pools[1].forward(x, training=False)
    assert out.shape == (1, 60, 7, 7)
    np.testing.assert_array_equal(out[0, :, 6, 6], x[0, :, 12, 12])
    np.testing.assert_array_equal(out[0, :, 0, 0], x[0, :, :2, :2].max(axis=(1, 2)))


@pytest.mark.parametrize("name", sorted(HAND_COUNTS))
def test_zoo_parameter_counts_and_forward(name):
    model = models.get(name, seed=0)
    assert model.count_params() == HAND_COUNTS[name]
    assert f"Total params: {HAND_COUNTS[name]:,}" in summary_text(model)
    logits = model.forward(np.random.default_rng(0).random((2, 1, 28, 28)))
    assert logits.shape == (2, 10) and np.all(np.isfinite(logits))


def test_zoo_docstrings_cite_their_parameter_counts():
    for factory, count in ((models.keras_cnn, 137660), (models.dense_net, 898510), (models.deep_cnn, 2327818),
                           (models.keras_cnn_30_60, 1492070), (models.lenet5_classic, 60806)):
        assert f"{count:,}" in factory.__doc__
    assert HAND_COUNTS == {"keras_cnn": 137660, "dense_net": 898510, "deep_cnn": 2327818,
                           "keras_cnn_30_60": 1492070}
