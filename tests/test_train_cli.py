"""`fastconv train` end to end on small real-MNIST data, and the cosine learning-rate decay it uses.

The 97% accuracy target is a 15-epoch run, measured outside the test suite (see README); here the
command's plumbing is checked: data sources, the fallback line, --out, --json, the lr schedule.
"""
import gzip
import json
import math

import numpy as np
import pytest

from fastconv import Sequential, cli, datasets, optim

NAMES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def idx_bytes(array):
    """An IDX file's bytes for a uint8 array."""
    array = np.asarray(array, dtype=np.uint8)
    return bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes() + array.tobytes()


def small_real_mnist(train=320, test=160, seed=0):
    """A random subset of the bundled real-MNIST sample: {split: (uint8 images, uint8 labels)}."""
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist_sample()
    rng = np.random.default_rng(seed)
    pick_train, pick_test = rng.permutation(len(y_train))[:train], rng.permutation(len(y_test))[:test]
    as_uint8 = lambda x: np.rint(x[:, 0] * 255).astype(np.uint8)  # noqa: E731
    return {"train": (as_uint8(x_train[pick_train]), y_train[pick_train].astype(np.uint8)),
            "test": (as_uint8(x_test[pick_test]), y_test[pick_test].astype(np.uint8))}


def write_idx_dir(directory, splits):
    for split, (images, labels) in splits.items():
        image_name, label_name = NAMES[split]
        (directory / image_name).write_bytes(gzip.compress(idx_bytes(images)))
        (directory / label_name).write_bytes(gzip.compress(idx_bytes(labels)))


def test_train_reads_data_dir_and_writes_out_and_json(tmp_path, capsys):
    data_dir = tmp_path / "mnist"
    data_dir.mkdir()
    splits = small_real_mnist()
    write_idx_dir(data_dir, splits)
    out_dir, json_path = tmp_path / "run", tmp_path / "figures" / "r.json"
    code = cli.main(["train", "--data-dir", str(data_dir), "--epochs", "3", "--seed", "1", "--verbose", "0",
                     "--out", str(out_dir), "--json", str(json_path)])
    assert code == 0
    final_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert final_line.startswith("test accuracy") and "images/s" in final_line
    figures = json.loads(json_path.read_text())
    assert figures["epochs"] == 3 and figures["train_images"] == 320 and figures["test_images"] == 160
    assert 0.0 <= figures["test_accuracy"] <= 1.0 and figures["train_seconds"] > 0
    assert figures["images_per_second"] == pytest.approx(320 * 3 / figures["train_seconds"])
    # The default schedule decays from --lr: epoch e trains at 0.05 * (1 + cos(pi e / 3)) / 2.
    assert figures["history"]["lr"] == pytest.approx([0.05 * 0.5 * (1 + math.cos(math.pi * e / 3)) for e in range(3)])
    history = json.loads((out_dir / "history.json").read_text())
    assert len(history["loss"]) == 3 and len(history["val_accuracy"]) == 3
    # The saved model is the trained one: it reproduces the reported test accuracy.
    model = Sequential.load(str(out_dir / "model.npz"))
    images, labels = splits["test"]
    _, accuracy = model.evaluate(images[:, None].astype(np.float32) / 255, labels.astype(np.int64))
    assert accuracy == pytest.approx(figures["test_accuracy"])


def test_train_constant_schedule_keeps_the_lr(tmp_path):
    data_dir = tmp_path / "mnist"
    data_dir.mkdir()
    write_idx_dir(data_dir, small_real_mnist(train=128, test=64))
    json_path = tmp_path / "r.json"
    assert cli.main(["train", "--data-dir", str(data_dir), "--epochs", "2", "--lr", "0.02", "--schedule", "constant",
                     "--verbose", "0", "--json", str(json_path)]) == 0
    assert json.loads(json_path.read_text())["history"]["lr"] == [0.02, 0.02]


def test_train_falls_back_to_the_bundled_sample_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FASTCONV_DATA", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(datasets, "MIRRORS", ("http://127.0.0.1:9/",))  # nothing listens on the discard port
    subset = small_real_mnist(train=128, test=64)
    as_float = {split: (images[:, None].astype(np.float32) / 255, labels.astype(np.int64))
                for split, (images, labels) in subset.items()}
    monkeypatch.setattr(datasets, "load_mnist_sample", lambda: (as_float["train"], as_float["test"]))
    assert cli.main(["train", "--epochs", "1", "--verbose", "0"]) == 0
    fallback = [line for line in capsys.readouterr().out.splitlines() if "falling back" in line]
    assert len(fallback) == 1 and "bundled sample" in fallback[0]


def test_train_reports_a_bad_data_dir_as_an_error(tmp_path, capsys):
    assert cli.main(["train", "--data-dir", str(tmp_path / "missing"), "--epochs", "1"]) == 1
    assert "fastconv train: error" in capsys.readouterr().err


def test_cosine_decay_runs_from_the_initial_to_the_final_lr():
    schedule = optim.cosine_decay(0.1, 10, final_lr=0.01)
    values = [schedule(epoch) for epoch in range(11)]
    assert values[0] == pytest.approx(0.1) and values[10] == pytest.approx(0.01)
    assert values[5] == pytest.approx(0.055)
    assert all(a > b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("args", [(-0.1, 10), (0.1, 0), (0.1, 2.5), (0.1, True), (0.1, 10, -1.0)])
def test_cosine_decay_refuses_bad_settings(args):
    with pytest.raises(ValueError, match="lr|epochs"):
        optim.cosine_decay(*args)
