"""fastconv.Sequential, fastconv.models and fastconv.losses: the LeNet-5 gradient check, summary,
fit / evaluate / predict, reproducibility, progress output, and checkpoints (save / load / damage)."""
import io
import json
import os
import zipfile

import numpy as np
import pytest

from fastconv import Sequential, layers, losses, models, optim


def lenet_float64(seed=0):
    return models.lenet5(seed=seed).astype(np.float64)


def blobs(count=240, seed=0):
    """A learnable 3-class problem of 1x8x8 images: each class lights up its own quadrant pattern."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    images = 0.3 * rng.standard_normal((count, 1, 8, 8))
    for cls, (rows, cols) in enumerate([(slice(0, 4), slice(0, 4)), (slice(4, 8), slice(4, 8)),
                                        (slice(2, 6), slice(2, 6))]):
        images[labels == cls, 0, rows, cols] += 1.0
    return images.astype(np.float32), labels


def small_cnn(seed=0):
    return Sequential([layers.Conv2D(4, 3, padding="same"), layers.ReLU(), layers.MaxPool2D(2),
                       layers.Flatten(), layers.Dropout(0.1), layers.Dense(3)], input_shape=(1, 8, 8), seed=seed)


# ---- LeNet-5 -------------------------------------------------------------------------------------

def test_lenet5_summary_counts_61706_parameters():
    model = models.lenet5(seed=0)
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Total params: 61,706" in text
    assert "(None, 6, 28, 28)" in text and "(None, 16, 5, 5)" in text and "(None, 10)" in text
    # An independent count from the architecture: conv weights K*C*R*S + K, dense in*out + out.
    expected = (6 * 25 + 6) + (16 * 6 * 25 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    assert model.count_params() == expected == sum(p.size for p in model.parameters())


def test_lenet5_gradient_check_float64():
    """Central differences (eps 1e-6) of the full LeNet-5 loss on 2 images, ~20 entries per parameter tensor."""
    rng = np.random.default_rng(0)
    model = lenet_float64()
    x = rng.random((2, 1, 28, 28))
    y = np.array([3, 7])
    model.loss_and_gradients(x, y)
    analytic = [g.copy() for g in model.gradients()]

    def loss():
        return model.loss(model.forward(x), y, return_grad=False)

    eps = 1e-6
    for (name, param), grad in zip(model.named_parameters(), analytic):
        flat, grad_flat = param.reshape(-1), grad.reshape(-1)
        scale = np.abs(grad_flat).max()
        for index in rng.choice(flat.size, size=min(20, flat.size), replace=False):
            saved = flat[index]
            flat[index] = saved + eps
            plus = loss()
            flat[index] = saved - eps
            minus = loss()
            flat[index] = saved
            numeric = (plus - minus) / (2 * eps)
            assert abs(numeric - grad_flat[index]) <= 1e-6 * scale + 1e-6 * abs(numeric), \
                f"{name}[{index}]: finite difference {numeric!r} vs backward {grad_flat[index]!r}"


def test_backward_without_input_gradient_gives_the_same_parameter_gradients():
    """Training skips the first layer's input gradient (Sequential.backward(input_grad=False)); the
    parameter gradients must not change, and the full backward's input gradient must match finite
    differences of the loss in x."""
    rng = np.random.default_rng(1)
    model = lenet_float64()
    x, y = rng.random((2, 1, 28, 28)), np.array([1, 4])
    logits = model.forward(x, training=True)
    _, grad = model.loss(logits, y)
    grad_x = model.backward(grad)
    full = [g.copy() for g in model.gradients()]
    assert model.backward(grad, input_grad=False) is None
    for a, b in zip(full, model.gradients()):
        np.testing.assert_array_equal(a, b)
    eps = 1e-6
    for index in [(0, 0, 14, 14), (1, 0, 9, 20), (0, 0, 0, 0)]:
        bumped = x.copy()
        bumped[index] += eps
        plus = model.loss(model.forward(bumped), y, return_grad=False)
        bumped[index] -= 2 * eps
        minus = model.loss(model.forward(bumped), y, return_grad=False)
        assert abs((plus - minus) / (2 * eps) - grad_x[index]) <= 1e-6 * np.abs(grad_x).max() + 1e-9


def test_lenet5_is_the_documented_architecture():
    model = models.lenet5()
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Conv2D", "ReLU", "MaxPool2D", "Conv2D", "ReLU", "MaxPool2D", "Flatten",
                     "Dense", "ReLU", "Dense", "ReLU", "Dense"]
    assert model.layers[0].padding == (2, 2) and model.layers[3].padding == "valid"
    assert model.output_shape == (10,)


def test_same_seed_same_weights_different_seed_different_weights():
    first, second, other = models.lenet5(seed=1), models.lenet5(seed=1), models.lenet5(seed=2)
    for a, b, c in zip(first.parameters(), second.parameters(), other.parameters()):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


# ---- the fused loss ------------------------------------------------------------------------------

def test_softmax_cross_entropy_matches_a_direct_computation_and_finite_differences(numerics):
    rng = np.random.default_rng(1)
    logits, labels = rng.standard_normal((5, 4)), np.array([0, 3, 1, 1, 2])
    loss, grad = losses.softmax_cross_entropy(logits, labels)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(probs[np.arange(5), labels])), rel=1e-12)
    numerics.assert_close(grad, numerics.numerical_gradient(
        lambda: losses.softmax_cross_entropy(logits, labels, return_grad=False), logits), dtype=np.float32)


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 1e4 - 2.0]], dtype=np.float32)
    loss, grad = losses.softmax_cross_entropy(logits, np.array([1, 2]))
    # row 0: log-sum-exp = 1e4, label 1 -> loss 1e4; row 1: -log(e^-2 / (1 + e^-2)) = 2 + log(1 + e^-2)
    assert loss == pytest.approx((1e4 + 2 + np.log1p(np.exp(-2))) / 2, rel=1e-6)
    assert np.all(np.isfinite(grad)) and grad.dtype == np.float32
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-6)


def test_loss_rejects_bad_labels():
    with pytest.raises(ValueError, match="labels must be in"):
        losses.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(TypeError):
        losses.softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0]))


# ---- fit / evaluate / predict --------------------------------------------------------------------

def test_fit_learns_a_separable_problem_and_returns_history():
    x, y = blobs()
    model = small_cnn()
    history = model.fit(x, y, epochs=4, batch_size=16, optimizer=optim.SGD(lr=0.1, momentum=0.9),
                        validation_data=blobs(90, seed=1), seed=0, verbose=0)
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "seconds", "images_per_second"}
    assert all(len(values) == 4 for values in history.values())
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["val_accuracy"][-1] > 0.9
    loss, accuracy = model.evaluate(*blobs(90, seed=1))
    assert loss == pytest.approx(history["val_loss"][-1]) and accuracy == history["val_accuracy"][-1]


def test_fit_is_reproducible_with_a_seed():
    x, y = blobs(120)
    runs = []
    for seed in (5, 5, 6):
        model = small_cnn(seed=0)
        history = model.fit(x, y, epochs=2, batch_size=10, optimizer=optim.SGD(lr=0.05, momentum=0.9),
                            seed=seed, verbose=0)
        runs.append((history["loss"], [p.copy() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][0] != runs[2][0]  # another shuffling / dropout seed gives another run


def test_evaluate_and_predict_agree_with_an_independent_computation():
    x, y = blobs(70)
    model = small_cnn()
    probs = model.predict(x, batch_size=16)
    assert probs.shape == (70, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(probs, model.predict(x, batch_size=1000), rtol=1e-6)
    loss, accuracy = model.evaluate(x, y, batch_size=32)
    assert loss == pytest.approx(-np.mean(np.log(probs[np.arange(70), y].astype(np.float64))), rel=1e-4)
    assert accuracy == np.mean(probs.argmax(axis=1) == y)


def test_predict_keeps_no_gradient_buffers():
    x, y = blobs(40)
    model = small_cnn()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.predict(x)
    model.evaluate(x, y)
    assert all(layer._cache is None for layer in model.layers)


def test_model_builds_lazily_from_the_first_batch():
    x, y = blobs(32)
    model = Sequential([layers.Flatten(), layers.Dense(8), layers.Tanh(), layers.Dense(3)])
    assert not model.built
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert model.input_shape == (1, 8, 8) and model.count_params() == 64 * 8 + 8 + 8 * 3 + 3
    with pytest.raises(ValueError, match="expects inputs of shape"):
        model.predict(np.zeros((2, 1, 9, 9)))


def test_fit_rejects_mismatched_data():
    x, y = blobs(20)
    model = small_cnn()
    with pytest.raises(ValueError, match="labels"):
        model.fit(x, y[:-1], verbose=0)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        model.fit(x, y + 3, verbose=0)
    with pytest.raises(TypeError):
        model.fit(x, y.astype(float), verbose=0)


def test_progress_is_silent_at_verbose_0_and_one_line_per_epoch_off_a_terminal(capsys):
    x, y = blobs(64)
    small_cnn().fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert capsys.readouterr().out == ""
    small_cnn().fit(x, y, epochs=3, batch_size=16, verbose=1, validation_data=(x, y))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.startswith(f"Epoch {i + 1}/3") for i, line in enumerate(lines))
    assert "\r" not in "".join(lines) and "img/s" in lines[0] and "val_acc" in lines[0]


def test_progress_line_shows_where_a_stopped_or_resumed_epoch_ended(capsys):
    from fastconv import callbacks

    class StopAfterThree(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2:
                self.model.stop_training = True

    x, y = blobs(64)
    small_cnn().fit(x, y, epochs=2, batch_size=16, verbose=2, callbacks=[StopAfterThree()])
    assert capsys.readouterr().out.splitlines()[0].startswith("Epoch 1/2 48/64 ")
    small_cnn().fit(x, y, epochs=1, batch_size=16, verbose=2, initial_step=2)
    assert capsys.readouterr().out.splitlines()[0].startswith("Epoch 1/1 64/64 ")


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_redraws_on_a_terminal(monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stdout", terminal)
    x, y = blobs(64)
    small_cnn().fit(x, y, epochs=2, batch_size=16, verbose=1)
    text = terminal.getvalue()
    assert text.count("\n") == 2 and text.count("\r") >= 2 and "loss" in text and "img/s" in text


# ---- checkpoints ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_predict_gives_identical_outputs(tmp_path, dtype):
    model = models.lenet5(seed=3).astype(dtype)
    x = np.random.default_rng(2).random((5, 1, 28, 28))
    path = tmp_path / "lenet.npz"
    model.save(path)
    loaded = Sequential.load(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.dtype == model.dtype and [type(a) for a in loaded.layers] == [type(a) for a in model.layers]
    assert os.listdir(tmp_path) == ["lenet.npz"]  # no temporary file left behind


def test_a_channels_last_model_trains_saves_and_loads(tmp_path):
    """A Permute first takes (H, W, C) images: fit learns through it, and a checkpoint keeps its dims."""
    x, y = blobs(96)
    x = x.transpose(0, 2, 3, 1).copy()
    model = Sequential([layers.Permute((3, 1, 2)), layers.Conv2D(4, 3, padding="same"), layers.ReLU(),
                        layers.MaxPool2D(2), layers.Flatten(), layers.Dense(3)], input_shape=(8, 8, 1), seed=0)
    history = model.fit(x, y, epochs=3, batch_size=16, optimizer=optim.SGD(lr=0.1, momentum=0.9), verbose=0)
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    model.save(tmp_path / "nhwc.npz")
    loaded = Sequential.load(tmp_path / "nhwc.npz")
    assert loaded.layers[0].dims == (3, 1, 2) and loaded.input_shape == (8, 8, 1)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_loaded_model_can_keep_training(tmp_path):
    x, y = blobs(48)
    model = small_cnn()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = Sequential.load(tmp_path / "m.npz")
    history = loaded.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history["loss"][0])


def test_truncated_checkpoint_raises_a_clear_error(tmp_path):
    path = tmp_path / "model.npz"
    models.lenet5(seed=0).save(path)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 30):
        damaged = tmp_path / f"cut{cut}.npz"
        damaged.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="not a readable fastconv checkpoint"):
            Sequential.load(damaged)


def test_corrupted_bytes_inside_a_checkpoint_are_detected(tmp_path):
    path = tmp_path / "model.npz"
    models.lenet5(seed=0).save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside a weight array: the zip CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checkpoint"):
        Sequential.load(path)


def test_foreign_files_are_refused_clearly(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    plain = tmp_path / "plain.npz"
    np.savez(plain, weights=np.zeros(3))
    for path, message in ((text, "not a readable fastconv checkpoint"), (plain, "not a fastconv checkpoint")):
        with pytest.raises(ValueError, match=message):
            Sequential.load(path)
    with pytest.raises(FileNotFoundError):
        Sequential.load(tmp_path / "missing.npz")


def tampered(tmp_path, change):
    """Save LeNet-5, let change(config, arrays) alter the checkpoint, write it back."""
    path = tmp_path / "model.npz"
    models.lenet5(seed=0).save(path)
    with np.load(path) as archive:
        arrays = dict(archive)
    config = json.loads(str(arrays["__architecture__"]))
    change(config, arrays)
    arrays["__architecture__"] = np.array(json.dumps(config))
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("change, message", [
    (lambda c, a: a.pop("layers.0.weight"), "no weights"),
    (lambda c, a: a.__setitem__("layers.7.weight", np.zeros((3, 3), np.float32)), "has shape"),
    (lambda c, a: a.__setitem__("stray", np.zeros(1)), "no layer uses"),
    (lambda c, a: c["layers"][0].__setitem__("class_name", "Conv9D"), "unknown layer class"),
    (lambda c, a: c.__setitem__("version", 99), "version"),
    (lambda c, a: c.__setitem__("format", "keras"), "not a fastconv"),
])
def test_inconsistent_checkpoints_are_refused(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        Sequential.load(tampered(tmp_path, change))


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    first = models.lenet5(seed=0)
    first.save(path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        models.lenet5(seed=1).save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.npz"]
    assert zipfile.is_zipfile(path)


def test_astype_float64_keeps_the_values():
    model = models.lenet5(seed=0)
    values = [p.copy() for p in model.parameters()]
    model.astype(np.float64)
    assert all(p.dtype == np.float64 for p in model.parameters())
    for p, v in zip(model.parameters(), values):
        np.testing.assert_array_equal(p, v.astype(np.float64))


def test_models_get_knows_its_models():
    assert models.get("lenet5", seed=0).count_params() == 61706
    assert models.get("mlp", hidden=(32,)).count_params() == 784 * 32 + 32 + 32 * 10 + 10
    with pytest.raises(ValueError, match="unknown model"):
        models.get("resnet50")


@pytest.mark.parametrize("backend", ["fastconv", "reference"])
def test_a_model_pickles_with_its_kernel_backend(backend):
    # models travel by pickle (Dask workers, multiprocessing); the kernel module goes as its name
    import copy
    import pickle

    model = models.lenet5(seed=0)
    model.backend = backend
    x = np.random.default_rng(0).random((6, 1, 28, 28), dtype=np.float32)
    for clone in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert clone.backend == backend and all(layer.kernels is model.layers[0].kernels for layer in clone.layers)
        np.testing.assert_array_equal(clone.predict(x), model.predict(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pool", [{"pool_size": 2}, {"pool_size": 3, "strides": 2, "padding": "same"}])
def test_a_training_step_pools_before_the_relu_with_the_gradients_of_the_layer_order(dtype, pool):
    """loss_and_gradients runs ReLU -> MaxPool2D as pool then ReLU; values and gradients are those of the
    layers in their order (model.forward + model.backward), bit for bit, windows of negatives included."""
    net = lambda: Sequential([layers.Conv2D(4, 3, padding="same"), layers.ReLU(), layers.MaxPool2D(**pool),  # noqa: E731
                              layers.Conv2D(3, 3), layers.ReLU(), layers.MaxPool2D(2), layers.Flatten(),
                              layers.Dense(5)], input_shape=(2, 12, 12), seed=4, dtype=dtype).build()
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((6, 2, 12, 12)).astype(dtype), rng.integers(0, 5, 6)
    swapped, plain = net(), net()
    loss, logits = swapped.loss_and_gradients(x, y)
    plain_logits = plain.forward(x, training=True)
    plain_loss, grad = plain.loss(plain_logits, y)
    plain.backward(grad, input_grad=False)
    np.testing.assert_array_equal(logits, plain_logits)
    assert loss == plain_loss
    for mine, theirs in zip(swapped.gradients(), plain.gradients()):
        np.testing.assert_array_equal(mine, theirs)
    assert swapped.layers[1]._cache.shape[1:] == swapped.layers[2].output_shape  # the ReLU ran after the pool
