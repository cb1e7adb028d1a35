"""The Keras example programs run unchanged on fastconv.keras, at a smoke size.

The examples are executed from their source with only their sizes lowered (training images, epochs):
every line that calls fastconv.keras is the example's own. The full-size runs and their accuracies
are in docs/keras.md.
"""
import pathlib
import re

import pytest

from fastconv import datasets
from fastconv.keras.datasets import mnist

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def run_example(name, replacements, monkeypatch, capsys, train_count):
    source = (EXAMPLES / name).read_text()
    for old, new in replacements:
        assert old in source, f"{name} no longer contains {old!r}"
        source = source.replace(old, new)
    monkeypatch.setenv("FASTCONV_DATA", datasets.SAMPLE_DIR)  # the sample bundled with fastconv
    full = mnist.load_data
    monkeypatch.setattr(mnist, "load_data", lambda: _subset(full(), train_count))
    exec(compile(source, str(EXAMPLES / name), "exec"), {"__name__": "__main__"})
    return capsys.readouterr().out


def _subset(data, train_count):
    (x_train, y_train), (x_test, y_test) = data
    return (x_train[::5000 // train_count][:train_count], y_train[::5000 // train_count][:train_count]), \
        (x_test[:200], y_test[:200])


def _accuracies(output, label):
    return [float(v) for v in re.findall(label + r"\s*([0-9.]+)", output)]


def test_lecture_dnn_vs_cnn_program(monkeypatch, capsys):
    out = run_example("keras_lecture_dnn_vs_cnn.py", [("number = 10000", "number = 500"), ("epochs=20", "epochs=3")],
                      monkeypatch, capsys, train_count=500)
    dnn, cnn = _accuracies(out, "DNN Test Acc:"), _accuracies(out, "CNN Test Acc:")
    assert len(dnn) == len(cnn) == 1
    assert dnn[0] > 0.5 and cnn[0] > 0.3  # chance is 0.1
    assert "Epoch 3/3" in out and 'Model: "sequential"' in out


def test_keras_cnn_30_60_program(monkeypatch, capsys):
    out = run_example("keras_cnn_30_60.py", [("epochs=10", "epochs=2")], monkeypatch, capsys, train_count=250)
    assert re.search(r"Epoch 2/2\n\d+/\d+ - \d+s - loss: [0-9.]+ - accuracy: [0-9.]+ - val_loss: [0-9.]+ - "
                     r"val_accuracy: [0-9.]+ - \d+\w+/epoch - \d+\w+/step", out)
    accuracy = _accuracies(out, "Test accuracy:")
    assert len(accuracy) == 1 and 0.0 <= accuracy[0] <= 1.0
    assert "Total params: 1,492,070" in out


@pytest.mark.parametrize("name", ["keras_lecture_dnn_vs_cnn.py", "keras_cnn_30_60.py"])
def test_examples_import_only_from_fastconv_keras(name):
    imports = [line for line in (EXAMPLES / name).read_text().splitlines() if line.startswith(("import", "from"))]
    assert imports and all(line.startswith("from fastconv.keras") for line in imports)
