"""fastconv.keras: Keras's Sequential API on fastconv (layouts, losses, metrics, regularizers, optimizers,
fit/evaluate/predict/summary, save/load, data, unmappable arguments).

The layout tests check against a NumPy NHWC oracle written from Keras's definitions; when Keras 3 is
installed (with the torch backend, for comparisons only) the same models are also checked against it.
"""
import io
import os
import re

import numpy as np
import pytest

from fastconv import keras
from fastconv import layers as core_layers
from fastconv.keras import backend, layers, losses, metrics, optimizers, regularizers, utils
from fastconv.keras.models import Sequential, load_model


@pytest.fixture(autouse=True)
def _seeded():
    utils.set_random_seed(0)
    yield
    backend.set_floatx("float32")


def small_cnn(data_format="channels_last", flatten_format=None, activation="softmax"):
    shape = (7, 7, 2) if data_format == "channels_last" else (2, 7, 7)
    return Sequential([
        layers.Conv2D(4, (3, 2), strides=(1, 2), padding="same", activation="relu", data_format=data_format,
                      input_shape=shape),
        layers.MaxPooling2D((2, 2), padding="same", data_format=data_format),
        layers.Conv2D(3, 2, activation="tanh", data_format=data_format),
        layers.AveragePooling2D(2, strides=1, padding="same", data_format=data_format),
        layers.Flatten(data_format=flatten_format),
        layers.Dense(5, activation="sigmoid"),
        layers.Dense(4, activation=activation)])


# ---- a NumPy oracle of the Keras computation, channels-last ---------------------------------------

def _same_pads(size, kernel, stride):
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _windows(x, kernel, stride, padding, fill):
    """(N, OH, OW, kh, kw, C) windows of an NHWC array, TensorFlow's 'same' padding."""
    (kh, kw), (sh, sw) = kernel, stride
    if padding == "same":
        x = np.pad(x, ((0, 0), _same_pads(x.shape[1], kh, sh), _same_pads(x.shape[2], kw, sw), (0, 0)),
                   constant_values=fill)
    out_h, out_w = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    return np.stack([np.stack([x[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :] for j in range(out_w)], 1)
                     for i in range(out_h)], 1)


def oracle_small_cnn(x, weights):
    k1, b1, k2, b2, d1, c1, d2, c2 = [w.astype(np.float64) for w in weights]
    h = np.maximum(np.einsum("nijhwc,hwck->nijk", _windows(x, (3, 2), (1, 2), "same", 0.0), k1) + b1, 0)
    h = _windows(h, (2, 2), (2, 2), "same", -np.inf).max(axis=(3, 4))
    h = np.tanh(np.einsum("nijhwc,hwck->nijk", _windows(h, (2, 2), (1, 1), "valid", 0.0), k2) + b2)
    sums = _windows(h, (2, 2), (1, 1), "same", 0.0).sum(axis=(3, 4))
    counts = _windows(np.ones_like(h), (2, 2), (1, 1), "same", 0.0).sum(axis=(3, 4))
    h = (sums / counts).reshape(len(x), -1)  # Keras flattens NHWC in (H, W, C) order
    h = 1 / (1 + np.exp(-(h @ d1 + c1)))
    z = h @ d2 + c2
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def test_channels_last_model_matches_the_nhwc_oracle():
    model = small_cnn()
    x = np.random.default_rng(1).random((3, 7, 7, 2))
    np.testing.assert_allclose(model.predict(x, verbose=0), oracle_small_cnn(x, model.get_weights()),
                               rtol=1e-5, atol=1e-6)
    assert [w.shape for w in model.get_weights()][:2] == [(3, 2, 2, 4), (4,)]  # Keras's (kh, kw, in, out)


def test_channels_first_model_with_the_same_weights_gives_the_same_outputs():
    x = np.random.default_rng(2).random((4, 7, 7, 2)).astype(np.float32)
    last = small_cnn()
    weights = last.get_weights()
    expected = last.predict(x, verbose=0)
    # Flatten(data_format='channels_first') flattens in (H, W, C) order too: the same weights map one to one
    first = small_cnn("channels_first", flatten_format="channels_first")
    first.set_weights(weights)
    np.testing.assert_allclose(first.predict(x.transpose(0, 3, 1, 2), verbose=0), expected, rtol=1e-5, atol=1e-7)
    # a plain Flatten after channels-first maps flattens (C, H, W): the dense kernel's rows move accordingly
    plain = small_cnn("channels_first")
    plain.build()
    channels, height, width = plain.layers[3].output_shape
    order = np.arange(height * width * channels).reshape(height, width, channels).transpose(2, 0, 1).ravel()
    moved = list(weights)
    moved[4] = weights[4][order]
    plain.set_weights(moved)
    np.testing.assert_allclose(plain.predict(x.transpose(0, 3, 1, 2), verbose=0), expected, rtol=1e-5, atol=1e-7)


def _convs(data_format, input_shape):
    return [layers.Conv2D(4, (3, 2), padding="same", activation="relu", data_format=data_format,
                          input_shape=input_shape), layers.MaxPooling2D(2, data_format=data_format)]


def test_permute_before_flatten_flattens_in_the_permuted_keras_order():
    """Permute((3, 1, 2)) turns Keras's (H, W, C) maps into (C, H, W): the Flatten after it takes the
    channels-first order, which a channels-first model's plain Flatten gives with the same weights."""
    x = np.random.default_rng(4).random((3, 8, 6, 2)).astype(np.float32)
    permuted = Sequential(_convs("channels_last", (8, 6, 2)) + [
        layers.Permute((3, 1, 2)), layers.Flatten(), layers.Dense(5, activation="softmax")])
    first = Sequential(_convs("channels_first", (2, 8, 6)) + [layers.Flatten(), layers.Dense(5, activation="softmax")])
    permuted.build()
    first.build()
    first.set_weights(permuted.get_weights())
    assert permuted.output_shape == (None, 5) and permuted.layers[2].output_shape == (3, 4, 4)  # Keras (4, 4, 3)
    np.testing.assert_array_equal(permuted.predict(x, verbose=0), first.predict(x.transpose(0, 3, 1, 2), verbose=0))


def test_permute_of_the_input_swaps_height_and_width_as_keras(tmp_path):
    x = np.random.default_rng(5).random((3, 6, 8, 2)).astype(np.float32)
    swapped = Sequential([layers.Permute((2, 1, 3), input_shape=(6, 8, 2))] + _convs("channels_last", None) + [
        layers.Flatten(), layers.Dense(5, activation="softmax")])
    plain = Sequential(_convs("channels_last", (8, 6, 2)) + [layers.Flatten(), layers.Dense(5, activation="softmax")])
    swapped.build()
    plain.build()
    plain.set_weights(swapped.get_weights())
    assert swapped.layers[0].dims == (1, 3, 2) and swapped.output_shape == (None, 5)  # (C, H, W) -> (C, W, H)
    expected = plain.predict(x.transpose(0, 2, 1, 3), verbose=0)
    np.testing.assert_array_equal(swapped.predict(x, verbose=0), expected)
    lines = []
    swapped.summary(print_fn=lines.append)
    assert "(None, 8, 6, 2)" in "\n".join(lines)  # Keras's shape after Permute((2, 1, 3))
    swapped.compile(loss="categorical_crossentropy")
    swapped.save(tmp_path / "swapped.keras")
    loaded = load_model(tmp_path / "swapped.keras")
    assert loaded.layers[0].keras_dims == (2, 1, 3)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    with pytest.raises(ValueError, match="dims must be a permutation"):
        layers.Permute((0, 1, 2))


def test_channels_last_training_equals_channels_first_training_step_for_step():
    rng = np.random.default_rng(3)
    x, y = rng.random((12, 7, 7, 2)).astype(np.float32), utils.to_categorical(rng.integers(0, 4, 12), 4)
    last, first = small_cnn(), small_cnn("channels_first", flatten_format="channels_first")
    first.set_weights(last.get_weights())
    for model, data in ((last, x), (first, x.transpose(0, 3, 1, 2))):
        model.compile(optimizer=optimizers.SGD(0.1, momentum=0.9), loss="categorical_crossentropy")
        model.fit(data, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(last.get_weights(), first.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_inputs_are_cast_once_float64_and_uint8_accepted():
    model = small_cnn()
    x8 = np.random.default_rng(4).integers(0, 256, (2, 7, 7, 2)).astype(np.uint8)
    expected = model.predict(x8.astype(np.float32), verbose=0)
    np.testing.assert_array_equal(model.predict(x8, verbose=0), expected)
    np.testing.assert_array_equal(model.predict(x8.astype(np.float64), verbose=0), expected)
    network_input = model._to_network(x8.astype(np.float64))
    assert network_input.dtype == np.float32 and network_input.flags.c_contiguous
    assert network_input.shape == (2, 2, 7, 7)
    with pytest.raises(TypeError, match="NumPy array of numbers"):
        model.predict(np.array([["a"]]), verbose=0)


# ---- losses and metrics --------------------------------------------------------------------------

def dense_model(activation="softmax", units=3):
    model = Sequential([layers.Dense(units, activation=activation, input_dim=2)])
    model.build()
    model.set_weights([np.array([[1.0, -1.0, 0.5], [0.0, 2.0, -1.0]])[:, :units], np.array([0.1, 0.0, -0.2])[:units]])
    return model


def test_categorical_crossentropy_and_accuracy_by_hand():
    model = dense_model()
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float32)
    # logits: [1.1, -1, 0.3], [0.1, 2, -1.2], [1.1, 1, -0.7]; the targets' log-probabilities by hand
    logits = np.array([[1.1, -1.0, 0.3], [0.1, 2.0, -1.2], [1.1, 1.0, -0.7]])
    log_z = np.log(np.exp(logits).sum(axis=1))
    expected_loss = np.mean([log_z[0] - 1.1, log_z[1] - 0.1, log_z[2] - 1.0])
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    assert accuracy == pytest.approx(1 / 3)  # argmaxes 0, 1, 0 against classes 0, 0, 1
    probabilities = model.predict(x, verbose=0)
    np.testing.assert_allclose(probabilities, np.exp(logits - log_z[:, None]), rtol=1e-6)
    assert losses.categorical_crossentropy(y, probabilities).mean() == pytest.approx(expected_loss, rel=1e-6)
    np.testing.assert_array_equal(metrics.categorical_accuracy(y, probabilities), [1, 0, 0])
    assert model.evaluate(x, y, verbose=0, return_dict=True) == {"loss": loss, "accuracy": accuracy}


def test_from_logits_losses_work_on_the_outputs_and_predict_returns_them():
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    logits = np.array([[1.1, -1.0, 0.3], [0.1, 2.0, -1.2]])
    model = dense_model(activation=None)
    model.compile(loss=losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    np.testing.assert_allclose(model.predict(x, verbose=0), logits, rtol=1e-6)
    log_z = np.log(np.exp(logits).sum(axis=1))
    assert model.evaluate(x, np.array([2, 1]), verbose=0) == pytest.approx(
        [np.mean([log_z[0] - 0.3, log_z[1] - 2.0]), 0.5], rel=1e-6)
    binary = dense_model(activation=None, units=1)
    binary.compile(loss=losses.BinaryCrossentropy(from_logits=True))
    np.testing.assert_allclose(binary.predict(x, verbose=0)[:, 0], [1.1, 0.1], rtol=1e-6)
    assert binary.evaluate(x, np.array([1.0, 1.0]), verbose=0) == pytest.approx(
        np.mean(losses.binary_crossentropy(np.ones((2, 1)), np.array([[1.1], [0.1]]), from_logits=True)), rel=1e-6)


def test_one_hot_and_sparse_targets_give_the_same_values_and_training():
    rng = np.random.default_rng(5)
    x, labels = rng.standard_normal((20, 2)), rng.integers(0, 3, 20)
    results = []
    for loss, y in (("categorical_crossentropy", utils.to_categorical(labels, 3)),
                    ("sparse_categorical_crossentropy", labels),
                    (losses.SparseCategoricalCrossentropy(), labels[:, None])):
        model = dense_model()
        model.compile(optimizer=optimizers.Adam(0.05), loss=loss, metrics=["accuracy"])
        history = model.fit(x, y, batch_size=5, epochs=3, shuffle=False, verbose=0).history
        results.append((history, model.evaluate(x, y, verbose=0), model.get_weights()))
    for history, evaluation, weights in results[1:]:
        np.testing.assert_allclose(history["loss"], results[0][0]["loss"], rtol=1e-6)
        assert history["accuracy"] == results[0][0]["accuracy"]
        np.testing.assert_allclose(evaluation, results[0][1], rtol=1e-6)
        for a, b in zip(weights, results[0][2]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_binary_crossentropy_after_sigmoid_and_mse_by_hand():
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    model = dense_model("sigmoid", units=1)  # logits 1.1 and 0.1
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
    p = 1 / (1 + np.exp(-np.array([1.1, 0.1])))
    y = np.array([1.0, 0.0])
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert loss == pytest.approx(-(np.log(p[0]) + np.log(1 - p[1])) / 2, rel=1e-6)
    assert accuracy == 0.5  # both predicted 1
    np.testing.assert_allclose(model.predict(x, verbose=0)[:, 0], p, rtol=1e-6)
    regression = dense_model(None, units=2)  # outputs [1.1, -1], [0.1, 2]
    regression.compile(optimizer="sgd", loss="mse")
    value = regression.evaluate(x, np.array([[1.0, 0.0], [0.0, 0.0]]), verbose=0)
    assert value == pytest.approx((0.01 + 1 + 0.01 + 4) / 4, rel=1e-6)  # a bare loss without metrics


def test_fused_crossentropy_is_stable_for_huge_logits():
    model = dense_model()
    model.set_weights([np.array([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]]), np.zeros(3)])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    loss = model.evaluate(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0, 0.0]]), verbose=0)
    assert loss == pytest.approx(2e4, rel=1e-6)  # not capped at -log(1e-7) nor inf
    history = model.fit(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0, 0.0]]), verbose=0)
    assert np.isfinite(history.history["loss"][0]) and all(np.isfinite(w).all() for w in model.get_weights())


# ---- regularizers --------------------------------------------------------------------------------

def test_regularizer_penalty_enters_the_loss_and_its_gradient(numerics):
    backend.set_floatx("float64")
    model = Sequential([
        layers.Conv2D(2, 2, activation="tanh", kernel_regularizer=regularizers.l2(0.3), input_shape=(4, 4, 1)),
        layers.Flatten(),
        layers.Dense(3, activation="softmax", kernel_regularizer=regularizers.l1_l2(l1=0.2, l2=0.1),
                     bias_regularizer="l2")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((5, 4, 4, 1)), utils.to_categorical(rng.integers(0, 3, 5), 3)
    conv, dense = model.layers[0], model.layers[2]
    penalty = (0.3 * np.sum(conv.params["weight"] ** 2) + 0.2 * np.abs(dense.params["weight"]).sum()
               + 0.1 * np.sum(dense.params["weight"] ** 2) + 0.01 * np.sum(dense.params["bias"] ** 2))
    unregularized = Sequential([layers.Conv2D(2, 2, activation="tanh", input_shape=(4, 4, 1)), layers.Flatten(),
                                layers.Dense(3, activation="softmax")])
    unregularized.set_weights(model.get_weights())
    unregularized.compile(optimizer="sgd", loss="categorical_crossentropy")
    assert model.evaluate(x, y, verbose=0) == pytest.approx(unregularized.evaluate(x, y, verbose=0) + penalty,
                                                            rel=1e-12)
    network = model._network
    network.loss_and_gradients(model._to_network(x), y)
    for parameter, gradient in zip(network.parameters(), network.gradients()):
        numeric = numerics.numerical_gradient(lambda: model.evaluate(x, y, verbose=0), parameter)
        numerics.assert_close(gradient, numeric, dtype=np.float32, label="regularized gradient")


# ---- optimizers ----------------------------------------------------------------------------------

def test_optimizers_take_keras_names_defaults_and_lr():
    assert optimizers.get("adam").keras_config() == {"name": "Adam", "learning_rate": 0.001, "beta_1": 0.9,
                                                     "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False}
    assert optimizers.get("rmsprop").keras_config()["rho"] == 0.9
    assert optimizers.get("sgd").learning_rate == 0.01
    assert optimizers.RMSprop(lr=1e-4).learning_rate == 1e-4
    sgd = optimizers.SGD(learning_rate=0.5, decay=1.0)
    w = np.array([1.0])
    for step in range(3):  # Keras 2's decay: lr / (1 + decay * iterations)
        sgd.step([w], [np.array([1.0])])
    assert w[0] == pytest.approx(1.0 - 0.5 - 0.25 - 0.5 / 3)


def test_sgd_momentum_follows_keras_velocity_when_the_rate_changes():
    sgd = optimizers.SGD(learning_rate=1.0, momentum=0.5)
    w = np.array([0.0])
    sgd.step([w], [np.array([1.0])])   # v = -1
    sgd.learning_rate = 0.1
    sgd.step([w], [np.array([1.0])])   # v = 0.5 * -1 - 0.1 = -0.6 (PyTorch's buffer form would give -0.15)
    assert w[0] == pytest.approx(-1.6)


# ---- fit, history, printing ----------------------------------------------------------------------

def blobs(count=60, seed=7):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    centres = np.array([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.0]])
    return (centres[labels] + 0.4 * rng.standard_normal((count, 2))).astype(np.float64), labels


def blob_model(metrics=("accuracy",)):
    model = Sequential([layers.Dense(8, activation="relu", input_shape=(2,)), layers.Dropout(0.1),
                        layers.Dense(3, activation="softmax")])
    model.compile(optimizer=optimizers.Adam(0.05), loss="sparse_categorical_crossentropy", metrics=list(metrics))
    return model


def test_history_holds_keras_keys_and_val_values_equal_evaluate():
    x, y = blobs()
    model = blob_model()
    history = model.fit(x, y, epochs=3, batch_size=16, validation_data=(x[:20], y[:20]), verbose=0)
    assert list(history.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert history.epoch == [0, 1, 2] and all(len(v) == 3 for v in history.history.values())
    assert history.history["val_loss"][-1] == pytest.approx(model.evaluate(x[:20], y[:20], verbose=0)[0])
    assert model.history is history and history.history["accuracy"][-1] > 0.8
    bare = blob_model(metrics=())
    assert list(bare.fit(x, y, epochs=1, validation_split=0.25, verbose=0).history) == ["loss", "val_loss"]
    acc = blob_model(metrics=("acc",))
    assert list(acc.fit(x, y, epochs=1, verbose=0).history) == ["loss", "acc"]


def test_validation_split_holds_out_the_last_samples_before_shuffling():
    x, y = blobs(40)
    model, twin = blob_model(), blob_model()
    twin.set_weights(model.get_weights())
    split = model.fit(x, y, epochs=1, validation_split=0.25, shuffle=False, verbose=0).history
    explicit = twin.fit(x[:30], y[:30], epochs=1, validation_data=(x[30:], y[30:]), shuffle=False, verbose=0).history
    assert split["val_loss"] == pytest.approx(explicit["val_loss"], rel=1e-5)


def test_verbose_2_prints_keras_epoch_lines_and_0_prints_nothing(capsys):
    x, y = blobs()
    blob_model().fit(x, y, epochs=2, batch_size=16, validation_data=(x, y), verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    pattern = (r"4/4 - \d+s - loss: \d\.\d{4} - accuracy: \d\.\d{4} - val_loss: \d\.\d{4} - val_accuracy: \d\.\d{4}"
               r" - \d+(s|ms|us)/epoch - \d+(s|ms|us)/step")
    assert re.fullmatch(pattern, lines[1]), lines[1]
    blob_model().fit(x, y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""
    blob_model().fit(x, y, epochs=1, batch_size=60, verbose=1)  # one epoch: no "Epoch" line, a bar off a terminal
    assert re.fullmatch(r"1/1 \[={30}\] - \d+s \d+(s|ms|us)/step - loss: \d\.\d{4} - accuracy: \d\.\d{4}",
                        capsys.readouterr().out.strip())


def test_progress_bar_redraws_in_place_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    bar = keras.callbacks.Progbar(3, 1, stream)
    bar._last_draw = -1.0
    bar.update(1, {"loss": 12.5, "accuracy": 0.25})
    bar.update(3, {"loss": 0.0001}, finalize=True)
    first, final = stream.getvalue().split("\r")[1:]
    assert first.startswith("1/3 [=========>....................] - ETA: ") and first.endswith(
        " - loss: 12.5000 - accuracy: 0.2500")
    assert re.fullmatch(r"3/3 \[={30}\] - \d+s \d+(s|ms|us)/step - loss: 1\.0000e-04 +\n", final)


def test_evaluate_returns_loss_then_metrics_and_predict_probabilities():
    x, y = blobs()
    model = blob_model()
    model.fit(x, y, epochs=2, verbose=0)
    result = model.evaluate(x, y, verbose=0)
    assert isinstance(result, list) and len(result) == 2 and model.metrics_names == ["loss", "accuracy"]
    probabilities = model.predict(x, verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    assert result[1] == pytest.approx(np.mean(probabilities.argmax(axis=1) == y))
    np.testing.assert_array_equal(model(x), probabilities)


def test_summary_is_keras_format_with_output_shapes_in_the_data_format():
    def table(model):
        lines = []
        model.summary(print_fn=lines.append)
        return lines

    model = Sequential([layers.Conv2D(30, (3, 3), activation="relu", input_shape=(28, 28, 1)),
                        layers.MaxPooling2D(pool_size=(2, 2), strides=2, padding="same"), layers.Flatten(),
                        layers.Dense(10, activation="softmax")])
    lines = table(model)
    assert lines[:5] == ['Model: "sequential"', "_" * 65,
                         " Layer (type)                Output Shape              Param #", "=" * 65,
                         " conv2d (Conv2D)             (None, 26, 26, 30)        300"]
    assert lines[6:8] == [" max_pooling2d (MaxPooling2D  (None, 13, 13, 30)       0", " )"]
    assert lines[-4:] == ["Total params: 51,010", "Trainable params: 51,010", "Non-trainable params: 0", "_" * 65]
    first = Sequential([layers.Conv2D(30, 3, data_format="channels_first", input_shape=(1, 28, 28))])
    assert "(None, 30, 26, 26)" in table(first)[4]


# ---- callbacks -----------------------------------------------------------------------------------

class Script(keras.callbacks.Callback):
    """Replaces the monitored value of each epoch by a scripted one and records the weights after each epoch."""

    def __init__(self, values, key="val_loss"):
        super().__init__()
        self.values, self.key, self.weights = values, key, []

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]
        self.weights.append(self.model.get_weights())


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    x, y = blobs()
    model, script = blob_model(), Script([1.0, 0.5, 0.6, 0.55, 0.7, 0.1])
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    history = model.fit(x, y, epochs=6, validation_data=(x, y), callbacks=[script, stop], verbose=0)
    assert history.epoch == [0, 1, 2, 3] and stop.stopped_epoch == 3 and stop.best == 0.5
    for restored, best in zip(model.get_weights(), script.weights[1]):
        np.testing.assert_array_equal(restored, best)
    model, script = blob_model(), Script([1.0, 0.5, 0.6])
    model.fit(x, y, epochs=3, validation_data=(x, y), verbose=0, callbacks=[
        script, keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)])
    for restored, best in zip(model.get_weights(), script.weights[1]):  # restored without an early stop too
        np.testing.assert_array_equal(restored, best)
    keep = keras.callbacks.EarlyStopping(monitor="accuracy", patience=1, min_delta=0.5)  # mode auto: max
    assert len(blob_model().fit(x, y, epochs=5, callbacks=[keep], verbose=0).epoch) == 2


def test_reduce_lr_on_plateau_and_learning_rate_scheduler_change_the_rate():
    x, y = blobs()
    model = blob_model()
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, cooldown=1, min_lr=0.01)
    history = model.fit(x, y, epochs=8, validation_data=(x, y), verbose=0,
                        callbacks=[Script([1.0] * 8), plateau]).history
    # no improvement after epoch 0: epochs 1, 2 wait, the rate halves at the end of epoch 2; epoch 3 is the
    # cooldown, 4 waits, halved at the end of 4 (the log holds the rate each epoch trained with); 0.01 at most
    assert history["learning_rate"] == pytest.approx([0.05, 0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125, 0.01])
    assert model.optimizer.learning_rate == pytest.approx(0.01)
    model = blob_model()
    scheduler = keras.callbacks.LearningRateScheduler(lambda epoch, rate: rate * 0.1 if epoch else rate)
    assert model.fit(x, y, epochs=3, callbacks=[scheduler], verbose=0).history["learning_rate"] == \
        pytest.approx([0.05, 0.005, 0.0005])
    one_argument = keras.callbacks.LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1))
    assert blob_model().fit(x, y, epochs=2, callbacks=[one_argument], verbose=0).history["learning_rate"] == \
        pytest.approx([0.1, 0.05])


def test_csv_logger_writes_keras_rows(tmp_path):
    x, y = blobs()
    path = tmp_path / "log.csv"
    history = blob_model().fit(x, y, epochs=2, validation_data=(x, y), verbose=0,
                               callbacks=[keras.callbacks.CSVLogger(str(path))]).history
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,accuracy,loss,val_accuracy,val_loss"
    for epoch, line in enumerate(lines[1:]):
        fields = line.split(",")
        assert int(fields[0]) == epoch
        assert [float(v) for v in fields[1:]] == pytest.approx(
            [history[k][epoch] for k in ("accuracy", "loss", "val_accuracy", "val_loss")])
    assert len(lines) == 3
    blob_model().fit(x, y, epochs=1, validation_data=(x, y), verbose=0,
                     callbacks=[keras.callbacks.CSVLogger(str(path), append=True)])
    assert len(path.read_text().splitlines()) == 4  # appended one row, no second header


def test_model_checkpoint_saves_only_improvements(tmp_path):
    x, y = blobs()
    model, script = blob_model(), Script([1.0, 0.5, 0.7])
    pattern = str(tmp_path / "model-{epoch:02d}.keras")
    best = str(tmp_path / "best.keras")
    model.fit(x, y, epochs=3, validation_data=(x, y), verbose=0, callbacks=[
        script, keras.callbacks.ModelCheckpoint(pattern, save_best_only=True),
        keras.callbacks.ModelCheckpoint(best, save_best_only=True)])
    assert sorted(os.listdir(tmp_path)) == ["best.keras", "model-01.keras", "model-02.keras"]
    for saved, expected in zip(load_model(best).get_weights(), script.weights[1]):
        np.testing.assert_array_equal(saved, expected)


def test_a_callback_can_stop_training():
    class StopAtSecondBatch(keras.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            self.seen = logs
            if batch == 1:
                self.model.stop_training = True

    x, y = blobs()
    stopper = StopAtSecondBatch()
    history = blob_model().fit(x, y, epochs=3, batch_size=10, callbacks=[stopper], verbose=0)
    assert history.epoch == [0] and set(stopper.seen) == {"loss", "accuracy"}


# ---- save / load ---------------------------------------------------------------------------------

def test_save_and_load_model_round_trip_with_compile_state(tmp_path):
    rng = np.random.default_rng(8)
    x, y = rng.random((16, 7, 7, 2)), utils.to_categorical(rng.integers(0, 4, 16), 4)
    model = small_cnn()
    model.layers[5].kernel_regularizer = regularizers.l2(0.01)
    model.compile(optimizer=optimizers.RMSprop(0.01, momentum=0.5), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.optimizer.keras_config() == model.optimizer.keras_config()
    assert loaded.loss.name == "categorical_crossentropy" and loaded.metrics_names == ["loss", "accuracy"]
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)  # the regularizer came along
    for trained in (model, loaded):  # the optimizer state came along too: training continues identically
        trained.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not load_model(path, compile=False).compiled
    weights = tmp_path / "w.npz"
    model.save_weights(weights)
    fresh = small_cnn()
    fresh.load_weights(weights)
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))
    (tmp_path / "junk").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a readable"):
        load_model(tmp_path / "junk")


# ---- data and utils ------------------------------------------------------------------------------

def test_mnist_load_data_returns_keras_uint8_arrays(monkeypatch):
    from fastconv import datasets

    monkeypatch.setenv("FASTCONV_DATA", datasets.SAMPLE_DIR)
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    assert x_train.shape == (5000, 28, 28) and x_test.shape == (2000, 28, 28)
    assert x_train.dtype == y_train.dtype == np.uint8 and y_test.shape == (2000,)
    raw = datasets.read_idx(os.path.join(datasets.SAMPLE_DIR, "train-images-idx3-ubyte.gz"))
    np.testing.assert_array_equal(x_train, raw)


def test_to_categorical():
    np.testing.assert_array_equal(utils.to_categorical([0, 2, 1]), np.eye(3)[[0, 2, 1]])
    assert utils.to_categorical(np.array([[1], [0]]), 4).shape == (2, 4)
    assert utils.np_utils.to_categorical([1], 3).dtype == np.float32
    with pytest.raises(ValueError, match="num_classes"):
        utils.to_categorical([3], 3)


# ---- what cannot be mapped -----------------------------------------------------------------------

def _unsupported_cases():
    model = Sequential([layers.Dense(3, input_dim=2)])
    mixed = Sequential([layers.Conv2D(2, 2, input_shape=(5, 5, 1)), layers.MaxPooling2D(data_format="channels_first")])
    return [
        (lambda: layers.Conv2D(2, 3, dilation_rate=2), "dilation_rate"),
        (lambda: layers.Conv2D(2, 3, groups=2), "groups"),
        (lambda: layers.Conv2D(2, 3, kernel_initializer="orthogonal"), "kernel_initializer"),
        (lambda: layers.Dense(2, activation="elu"), "activation 'elu'"),
        (lambda: layers.Dense(2, activity_regularizer=regularizers.l2()), "activity_regularizer"),
        (lambda: layers.Dense(2, kernel_constraint="max_norm"), "kernel_constraint"),
        (lambda: layers.Dense(2, trainable=False), "trainable"),
        (lambda: layers.Dense(2, dtype="float16"), "dtype"),
        (lambda: layers.Dropout(0.5, noise_shape=(1, 2)), "noise_shape"),
        (lambda: layers.ReLU(max_value=6), "max_value"),
        (lambda: layers.Softmax(axis=0), "axis"),
        (lambda: layers.Input(shape=(2,), sparse=True), "sparse"),
        (lambda: layers.Dense(2)(layers.Input(shape=(3,))), "functional API"),
        (lambda: getattr(layers, "BatchNormalization"), "BatchNormalization"),
        (lambda: getattr(keras.optimizers, "Adagrad"), "Adagrad"),
        (lambda: getattr(keras.callbacks, "TensorBoard"), "TensorBoard"),
        (lambda: optimizers.get("nadam"), "nadam"),
        (lambda: optimizers.Adam(clipnorm=1.0), "clipnorm"),
        (lambda: losses.get("hinge"), "hinge"),
        (lambda: losses.CategoricalCrossentropy(label_smoothing=0.1), "label_smoothing"),
        (lambda: model.compile(loss="mse", metrics=["mae"]), "metric 'mae'"),
        (lambda: model.compile(loss="mse", loss_weights=[1.0]), "loss_weights"),
        (lambda: (model.compile(loss="categorical_crossentropy"), model.predict(np.zeros((1, 2)))),
         "activation 'linear'"),
        (lambda: (model.compile(loss="mse"), model.fit(np.zeros((2, 2)), np.zeros((2, 3)), class_weight={0: 1})),
         "class_weight"),
        (lambda: (model.compile(loss="mse"), model.fit(np.zeros((2, 2)), np.zeros((2, 3)), shuffle="batch")),
         "shuffle"),
        (lambda: mixed.predict(np.zeros((1, 5, 5, 1))), "mix channels_last and channels_first"),
        (lambda: keras.Model(), "keras.Model"),
        (lambda: utils.plot_model(model), "plot_model"),
    ]


@pytest.mark.parametrize("index", range(len(_unsupported_cases())))
def test_what_cannot_be_mapped_raises_a_clear_error(index):
    action, name = _unsupported_cases()[index]
    with pytest.raises(keras.UnsupportedError, match=re.escape(name)) as caught:
        action()
    assert "fastconv.keras does not support" in str(caught.value) and ";" in str(caught.value)


def test_bad_input_raises_value_or_type_errors():
    with pytest.raises(TypeError, match="unexpected keyword"):
        layers.Dense(2, kernel_size=3)
    with pytest.raises(ValueError, match="padding"):
        layers.Conv2D(2, 3, padding="causal")
    with pytest.raises(RuntimeError, match="compile"):
        Sequential([layers.Dense(2, input_dim=2)]).fit(np.zeros((2, 2)), np.zeros(2))
    model = Sequential([layers.Dense(3, activation="softmax", input_dim=2)])
    model.compile(loss="categorical_crossentropy")
    with pytest.raises(ValueError, match="one-hot"):
        model.fit(np.zeros((2, 2)), np.array([0, 1]), verbose=0)
    model.compile(loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        model.fit(np.zeros((2, 2)), np.array([0, 3]), verbose=0)
    with pytest.raises(TypeError, match="fastconv.keras.layers"):
        model.add(core_layers.Dense(2))
    with pytest.raises(TypeError, match="fastconv.optim"):
        from fastconv import optim

        model.compile(optimizer=optim.SGD(), loss="mse")


# ---- the real Keras, when installed (comparisons only) -------------------------------------------

@pytest.fixture(scope="module")
def real_keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def _build(module, data_format):
    L = module.layers
    shape = (7, 7, 2) if data_format == "channels_last" else (2, 7, 7)
    return module.models.Sequential([
        L.Input(shape=shape),
        L.Conv2D(4, (3, 2), strides=(1, 2), padding="same", activation="relu", data_format=data_format,
                 kernel_regularizer=module.regularizers.l2(0.05)),
        L.MaxPooling2D((2, 2), padding="same", data_format=data_format),
        L.Conv2D(3, 2, activation="tanh", data_format=data_format),
        L.AveragePooling2D(2, strides=1, padding="same", data_format=data_format),
        L.Flatten(), L.Dense(5, activation="sigmoid", kernel_regularizer=module.regularizers.l1_l2(0.01, 0.02)),
        L.Dense(4, activation="softmax")])


@pytest.mark.parametrize("optimizer", ["SGD", "Adam", "RMSprop", "RMSprop-centered"])
def test_training_matches_keras(real_keras, optimizer):
    make = {"SGD": lambda m: m.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
            "Adam": lambda m: m.optimizers.Adam(0.01),
            "RMSprop": lambda m: m.optimizers.RMSprop(0.01, momentum=0.5),
            "RMSprop-centered": lambda m: m.optimizers.RMSprop(0.01, centered=True)}[optimizer]
    rng = np.random.default_rng(9)
    x, y = rng.random((16, 7, 7, 2)).astype(np.float32), np.eye(4, dtype=np.float32)[rng.integers(0, 4, 16)]
    reference, ours = _build(real_keras, "channels_last"), _build(keras, "channels_last")
    ours.set_weights(reference.get_weights())
    for model, module in ((reference, real_keras), (ours, keras)):
        model.compile(optimizer=make(module), loss="categorical_crossentropy", metrics=["accuracy"])
    expected = reference.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0).history
    history = ours.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0).history
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-5)
    assert history["accuracy"] == pytest.approx(expected["accuracy"])
    for a, b in zip(ours.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.predict(x, verbose=0), reference.predict(x, verbose=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), reference.evaluate(x, y, verbose=0), rtol=1e-5)


def test_permute_layers_match_keras(real_keras):
    """Permutes of Keras's channels-last tensors (H <-> W, to (C, H, W), back to (H, W, C)) between convolutions."""
    def build(module):
        L = module.layers
        return module.models.Sequential([
            L.Input(shape=(9, 7, 2)), L.Permute((2, 1, 3)), L.Conv2D(4, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2), L.Permute((3, 1, 2)), L.Conv2D(3, 2, activation="tanh"), L.Permute((2, 3, 1)),
            L.Flatten(), L.Dense(5, activation="softmax")])

    reference, ours = build(real_keras), build(keras)
    ours.set_weights(reference.get_weights())
    x = np.random.default_rng(11).random((6, 9, 7, 2)).astype(np.float32)
    np.testing.assert_allclose(ours.predict(x, verbose=0), reference.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert ours.output_shape == reference.output_shape == (None, 5)


def test_set_random_seed_makes_weights_and_training_reproducible():
    x, y = blobs()
    runs = []
    for _ in range(2):
        utils.set_random_seed(42)
        model = blob_model()
        runs.append((model.get_weights(), model.fit(x, y, epochs=2, verbose=0).history))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1]


def test_importing_fastconv_does_not_import_fastconv_keras():
    import subprocess
    import sys

    code = "import sys, fastconv; fastconv.conv2d; assert 'fastconv.keras' not in sys.modules; fastconv.keras.Sequential"
    # started outside the repository root, whose unbuilt fastconv/ would shadow the installed package
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("loss, activation, units", [("sparse_categorical_crossentropy", "softmax", 3),
                                                     ("binary_crossentropy", "sigmoid", 1), ("mse", "tanh", 3),
                                                     ("mse", None, 1)])
def test_losses_and_accuracy_match_keras(real_keras, loss, activation, units):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((20, 4)).astype(np.float32)
    y = rng.integers(0, 3, 20) if loss.startswith("sparse") else rng.integers(0, 2, (20, units)).astype(np.float32)

    def build(module):
        return module.models.Sequential([module.layers.Input(shape=(4,)), module.layers.Dense(6, activation="relu"),
                                         module.layers.Dense(units, activation=activation)])

    reference, ours = build(real_keras), build(keras)
    ours.set_weights(reference.get_weights())
    for model, module in ((reference, real_keras), (ours, keras)):
        model.compile(optimizer=module.optimizers.SGD(0.1), loss=loss, metrics=["accuracy"])
    expected = reference.fit(x, y, batch_size=5, epochs=2, shuffle=False, verbose=0).history
    history = ours.fit(x, y, batch_size=5, epochs=2, shuffle=False, verbose=0).history
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-5)
    assert history["accuracy"] == pytest.approx(expected["accuracy"])
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), reference.evaluate(x, y, verbose=0), rtol=1e-5)
    np.testing.assert_allclose(ours.predict(x, verbose=0), reference.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
