"""What the network learns: fastconv.analysis (numbers, NumPy only) and fastconv.viz (PNGs, matplotlib).

The numeric tests run without matplotlib (CI installs only .[test]); the pictures' tests skip when
it is missing. Models are small and trained for a few seconds at most on the bundled MNIST sample.
"""
import gzip
import os

import numpy as np
import pytest

import fastconv
from fastconv import Sequential, analysis, cli, datasets, layers, models, optim


def sample_subset(train=1000, test=200, seed=0):
    """Random subsets of the bundled real-MNIST sample (its files are sorted by label)."""
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist_sample()
    rng = np.random.default_rng(seed)
    i, j = rng.permutation(len(y_train))[:train], rng.permutation(len(y_test))[:test]
    return (x_train[i], y_train[i]), (x_test[j], y_test[j])


def small_cnn(seed=0, dtype=np.float32):
    return Sequential([layers.Conv2D(6, 5, padding=2), layers.ReLU(), layers.MaxPool2D(2), layers.Conv2D(8, 5),
                       layers.ReLU(), layers.MaxPool2D(2), layers.Flatten(), layers.Dense(10)],
                      input_shape=(1, 28, 28), seed=seed, dtype=dtype).build()


@pytest.fixture(scope="module")
def trained():
    """(small CNN trained one epoch on 1,000 digits, test images, test labels)."""
    (x_train, y_train), (x_test, y_test) = sample_subset()
    model = small_cnn()
    model.fit(x_train, y_train, epochs=1, batch_size=32, optimizer=optim.Adam(0.003), verbose=0)
    assert model.evaluate(x_test, y_test)[1] > 0.6
    return model, x_test, y_test


# ---- activation maximisation ---------------------------------------------------------------------

@pytest.mark.parametrize("layer", [1, 4], ids=["relu-after-conv1", "relu-after-conv2"])
def test_activation_maximization_beats_start_and_real_digits(trained, layer):
    model, x_test, _ = trained
    x, trace = analysis.maximize_filters(model, layer, steps=80)
    channels = model.layers[layer].output_shape[0]
    assert x.shape == (channels, 1, 28, 28) and trace.shape == (81, channels)
    assert x.min() >= 0.0 and x.max() <= 1.0
    real = np.stack([analysis.activation_and_input_gradient(model, x_test, layer, k)[0] for k in range(channels)])
    live = real.max(axis=1) > 0  # a filter no digit turns on is dead; nothing to compare
    assert live.sum() >= channels - 2
    final = trace[-1][live]
    assert np.all(final > 1.5 * trace[0][live])
    assert np.all(final > 3 * real.mean(axis=1)[live])
    assert np.all(final > 1.5 * real.max(axis=1)[live])


def test_class_maximization_beats_every_real_digit(trained):
    model, x_test, _ = trained
    x, trace = analysis.maximize_classes(model, steps=80, l1=0.3)
    logits = model.forward(x_test)
    assert x.shape == (10, 1, 28, 28)
    np.testing.assert_allclose(trace[-1], model.forward(x)[np.arange(10), np.arange(10)], rtol=1e-5)
    assert np.all(trace[-1] > logits.max(axis=0)) and np.all(trace[-1] > trace[0])


def test_l1_penalty_gives_fewer_lit_pixels(trained):
    model = trained[0]
    plain, _ = analysis.maximize_filters(model, 1, steps=60)
    sparse, _ = analysis.maximize_filters(model, 1, steps=60, l1=1.0)
    assert sparse.mean() < 0.8 * plain.mean()


def test_l2_bounds_keep_each_input_in_the_ball(trained):
    x, _ = analysis.maximize_filters(trained[0], 1, steps=10, bounds="l2", radius=5.0)
    assert np.all(np.sqrt((x.reshape(len(x), -1) ** 2).sum(axis=1)) <= 5.0 + 1e-4)
    with pytest.raises(ValueError, match="bounds"):
        analysis.maximize_filters(trained[0], 1, steps=1, bounds="box")


@pytest.mark.parametrize("build, layer, unit", [
    (lambda: models.lenet5(classic=True, seed=0, dtype=np.float64), "c3", 13),   # masked conv, tanh, avg pool
    (lambda: models.lenet5(classic=True, seed=0, dtype=np.float64), -1, 7),      # a class logit
    (lambda: small_cnn(dtype=np.float64), 4, 3),                                 # relu and max pool
], ids=["classic-c3", "classic-logit", "relu-maxpool"])
def test_input_gradient_matches_finite_differences_float64(build, layer, unit, numerics):
    model = build()
    x = np.random.default_rng(1).random((1, 1, 28, 28))
    activation, grad = analysis.activation_and_input_gradient(model, x, layer, unit)
    index = analysis.layer_index(model, layer)
    direct = analysis.forward_to(model, x, index)[0, unit].sum()
    assert activation[0] == pytest.approx(direct, rel=1e-12)
    numeric = numerics.numerical_gradient(lambda: analysis.forward_to(model, x, index)[0, unit].sum(), x)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7 * np.abs(numeric).max())


def test_layer_index_accepts_index_name_and_layer():
    model = small_cnn()
    assert analysis.layer_index(model, -1) == 7 == analysis.layer_index(model, model.layers[7].name)
    assert analysis.layer_index(model, model.layers[3]) == 3
    with pytest.raises(ValueError, match="no layer"):
        analysis.layer_index(model, "nope")
    with pytest.raises(ValueError, match="out of range"):
        analysis.layer_index(model, 8)


# ---- filters, feature maps, confusion matrix -----------------------------------------------------

def test_filters_and_feature_maps_have_the_layer_shapes():
    model = models.lenet5(classic=True, seed=0)
    assert analysis.first_conv_filters(model).shape == (6, 1, 5, 5)
    maps = analysis.feature_maps(model, np.zeros((1, 28, 28), np.float32))
    assert [(name, m.shape) for name, m in maps] == [("c1", (6, 28, 28)), ("s2", (6, 14, 14)),
                                                     ("c3", (16, 10, 10)), ("s4", (16, 5, 5)), ("c5", (120, 1, 1))]
    with pytest.raises(ValueError, match="no Conv2D"):
        analysis.first_conv_filters(models.dense_net())


def test_confusion_matrix_matches_hand_count():
    y_true = [0, 0, 1, 1, 1, 2, 2, 2, 2]
    y_pred = [0, 1, 1, 1, 2, 2, 2, 0, 2]
    expected = np.array([[1, 1, 0],
                         [0, 2, 1],
                         [1, 0, 3]])
    matrix = analysis.confusion_matrix(y_true, y_pred)
    np.testing.assert_array_equal(matrix, expected)
    assert matrix.sum() == 9 and np.trace(matrix) == 6
    assert analysis.confusion_matrix([1], [1], num_classes=4).shape == (4, 4)
    with pytest.raises(ValueError):
        analysis.confusion_matrix([0, 5], [0, 1], num_classes=3)


def test_model_confusion_matrix_agrees_with_evaluate(trained):
    model, x_test, y_test = trained
    matrix = analysis.model_confusion_matrix(model, x_test, y_test)
    assert matrix.shape == (10, 10) and matrix.sum() == len(y_test)
    np.testing.assert_array_equal(matrix.sum(axis=1), np.bincount(y_test, minlength=10))
    assert np.trace(matrix) / len(y_test) == pytest.approx(model.evaluate(x_test, y_test)[1])


# ---- pictures and the command line (matplotlib) --------------------------------------------------

def write_idx_dir(directory, train=300, test=100):
    """The four MNIST IDX files (gzipped) of a random subset of the bundled sample."""
    splits = dict(zip(("train", "t10k"), sample_subset(train, test)))
    for split, (images, labels) in splits.items():
        for kind, array in (("images-idx3", np.rint(images[:, 0] * 255)), ("labels-idx1", labels)):
            array = array.astype(np.uint8)
            header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
            (directory / f"{split}-{kind}-ubyte.gz").write_bytes(gzip.compress(header + array.tobytes()))


def is_png(path):
    with open(path, "rb") as handle:
        return handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_write_all_draws_every_picture(trained, tmp_path):
    pytest.importorskip("matplotlib")
    from fastconv import viz

    model, x_test, y_test = trained
    history = {"loss": [1.0, 0.5], "accuracy": [0.7, 0.9], "val_loss": [0.8, 0.6], "val_accuracy": [0.75, 0.85]}
    paths = viz.write_all(model, history, (x_test, y_test), tmp_path, steps=5)
    names = sorted(os.path.basename(p) for p in paths)
    assert names == sorted(["training_curves.png", "confusion_matrix.png", "class_maximization.png", "filters.png",
                            "feature_maps.png", "activation_maximization_conv2d.png",
                            "activation_maximization_conv2d_1.png"])
    assert all(is_png(p) for p in paths)


@pytest.fixture
def one_thread():
    """--threads 1 in the commands below (light on a shared machine), the thread count restored after."""
    saved = fastconv.get_num_threads()
    yield ["--threads", "1"]
    fastconv.set_num_threads(saved)


def test_train_plots_and_compare_commands(tmp_path, capsys, one_thread):
    pytest.importorskip("matplotlib")
    write_idx_dir(tmp_path)
    plots = tmp_path / "plots"
    assert cli.main(["train", "--data-dir", str(tmp_path), "--epochs", "1", "--verbose", "0",
                     "--plots", str(plots)] + one_thread) == 0
    assert {"training_curves.png", "filters.png", "feature_maps.png", "confusion_matrix.png",
            "class_maximization.png"} <= set(os.listdir(plots))
    capsys.readouterr()
    assert cli.main(["compare", "--data-dir", str(tmp_path), "--epochs", "1", "--verbose", "0"] + one_thread) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:2] == ["model", "parameters"]
    assert lines[1].startswith("dense_net") and "898,510" in lines[1] and "%" in lines[1]
    assert lines[2].startswith("keras_cnn") and "137,660" in lines[2]


def test_plots_without_matplotlib_name_the_extra(monkeypatch, tmp_path, capsys):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    assert cli.main(["train", "--epochs", "1", "--plots", str(tmp_path), "--data-dir", str(tmp_path)]) == 1
    assert "pip install fastconv[plot]" in capsys.readouterr().err
