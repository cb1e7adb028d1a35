"""Training that never loses work: fastconv.checkpoint (save / load / resume), fit's initial_epoch and
initial_step, the divergence stop, and `fastconv train --out / --resume` with Ctrl-C (in a subprocess)."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import fastconv
from fastconv import Sequential, callbacks, checkpoint, cli, datasets, layers, optim

EPOCHS, BATCH = 4, 16


def tiny_data(count=72, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((count, 1, 8, 8), dtype=np.float32), rng.integers(0, 3, count)


def tiny_model():
    """Conv + pool + dropout + dense: weights, an optimizer state and a random generator to restore."""
    return Sequential([layers.Conv2D(4, 3), layers.ReLU(), layers.MaxPool2D(2), layers.Flatten(),
                       layers.Dropout(0.25), layers.Dense(3)], input_shape=(1, 8, 8), seed=3).build()


class StopAt(callbacks.Callback):
    """Sets stop_training after batch `step` of epoch `epoch` (0-based), as Ctrl-C does."""

    def __init__(self, epoch, step):
        super().__init__()
        self.at, self.epoch = (epoch, step), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            self.model.stop_training = True


def train(data, extra_callbacks=(), epochs=EPOCHS):
    x, y = data
    model = tiny_model()
    history = model.fit(x, y, epochs=epochs, batch_size=BATCH, optimizer=optim.Adam(lr=0.01),
                        validation_data=(x[:24], y[:24]), seed=7, verbose=0,
                        lr_schedule=optim.cosine_decay(0.01, epochs), callbacks=list(extra_callbacks))
    return model, history


def assert_same_weights(model, reference):
    for (name, got), (_, want) in zip(model.named_parameters(), reference.named_parameters()):
        np.testing.assert_array_equal(got, want, err_msg=name)


# ---- resume gives the uninterrupted run's weights, bit for bit -----------------------------------

@pytest.mark.parametrize("stop", [(1, 4), (2, 1), (0, 0), (3, 4)],
                         ids=["after-2-of-4-epochs", "mid-epoch-3", "after-the-first-step", "finished"])
def test_stopped_and_resumed_run_equals_the_uninterrupted_one(tmp_path, stop):
    data = tiny_data()
    reference, reference_history = train(data)
    assert -(-len(data[1]) // BATCH) == 5  # 5 steps per epoch: (1, 4) is the end of epoch 2
    stopped, _ = train(data, [checkpoint.TrainingCheckpoint(tmp_path), StopAt(*stop)])
    saved = checkpoint.load(tmp_path)
    assert (saved.epoch, saved.step) == ((stop[0] + 1, 0) if stop[1] == 4 else (stop[0], stop[1] + 1))
    assert_same_weights(saved.model, stopped)
    x, y = data
    model, history = checkpoint.resume(tmp_path, x, y, validation_data=(x[:24], y[:24]), verbose=0)
    assert_same_weights(model, reference)
    assert history["lr"] == reference_history["lr"]
    assert history["val_loss"] == reference_history["val_loss"]  # the same model after every epoch
    assert checkpoint.load(tmp_path).finished


def test_fit_initial_epoch_continues_a_run_with_the_same_shuffle_and_schedule():
    data = tiny_data()
    reference, _ = train(data)
    x, y = data
    kwargs = dict(batch_size=BATCH, validation_data=(x[:24], y[:24]), seed=7, verbose=0,
                  lr_schedule=optim.cosine_decay(0.01, EPOCHS))
    model = tiny_model()
    model.fit(x, y, epochs=EPOCHS, optimizer=optim.Adam(lr=0.01), callbacks=[StopAt(1, 4)], **kwargs)
    dropout_state = model.layers[4].rng.bit_generator.state  # fit seeds dropout afresh: put it back
    model.fit(x, y, epochs=EPOCHS, optimizer=model.optimizer, initial_epoch=2, callbacks=[RestoreRng(dropout_state)],
              **kwargs)
    assert_same_weights(model, reference)


class RestoreRng(callbacks.Callback):
    def __init__(self, state):
        super().__init__()
        self.state = state

    def on_train_begin(self, logs=None):
        self.model.layers[4].rng.bit_generator.state = self.state


@pytest.mark.parametrize("kwargs, message", [
    ({"initial_epoch": 5}, "past the run's 4 epochs"),
    ({"initial_epoch": 4, "initial_step": 1}, "past the run's 4 epochs"),
    ({"initial_step": 5}, "initial_step must be < 5"),
    ({"initial_epoch": -1}, "initial_epoch must be an int >= 0"),
    ({"initial_step": 1.5}, "initial_step must be an int >= 0"),
])
def test_fit_refuses_a_start_outside_the_run(kwargs, message):
    x, y = tiny_data()
    with pytest.raises(ValueError, match=message):
        tiny_model().fit(x, y, epochs=EPOCHS, batch_size=BATCH, verbose=0, **kwargs)


# ---- what a checkpoint holds ---------------------------------------------------------------------

class KeepWeights(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.after_epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.after_epoch.append([p.copy() for p in self.model.parameters()])


def test_checkpoint_holds_model_optimizer_position_schedule_and_history(tmp_path):
    data = tiny_data()
    keep = KeepWeights()
    model, history = train(data, [checkpoint.TrainingCheckpoint(tmp_path, extra={"note": "run 1"}), keep])
    assert sorted(os.listdir(tmp_path)) == ["best.npz", "checkpoint.npz", "model.npz"]
    saved = checkpoint.load(tmp_path / "checkpoint.npz")
    assert_same_weights(saved.model, model)
    assert type(saved.optimizer) is optim.Adam and saved.optimizer.iterations == model.optimizer.iterations == 20
    for key, value in model.optimizer.state_arrays().items():
        np.testing.assert_array_equal(saved.optimizer.state_arrays()[key], value)
    state = saved.state
    assert (state["epoch"], state["step"], state["epochs"], state["steps"]) == (EPOCHS, 0, EPOCHS, 5)
    assert (state["batch_size"], state["samples"], state["seed"], state["shuffle"]) == (BATCH, 72, 7, True)
    assert state["lr_schedule"] == [optim.cosine_decay(0.01, EPOCHS)(e) for e in range(EPOCHS)]
    assert state["history"] == history and state["extra"] == {"note": "run 1"}
    assert state["rngs"]["4"] == model.layers[4].rng.bit_generator.state
    # model.npz: the last model; best.npz: the epoch with the best validation accuracy (the first of ties)
    assert_same_weights(Sequential.load(tmp_path / "model.npz"), model)
    best_epoch = int(np.argmax(history["val_accuracy"]))
    assert state["best"] == {"epoch": best_epoch + 1, "val_accuracy": history["val_accuracy"][best_epoch]}
    for got, want in zip(Sequential.load(tmp_path / "best.npz").parameters(), keep.after_epoch[best_epoch]):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("optimizer", [optim.SGD(lr=0.1), optim.SGD(lr=0.1, momentum=0.9), optim.Adam(),
                                       optim.RMSprop(momentum=0.5)], ids=repr)
def test_optimizer_state_and_step_count_survive_a_checkpoint(tmp_path, optimizer):
    x, y = tiny_data()
    model = tiny_model()
    model.fit(x, y, epochs=1, batch_size=BATCH, optimizer=optimizer, verbose=0,
              callbacks=[checkpoint.TrainingCheckpoint(tmp_path)])
    saved = checkpoint.load(tmp_path)
    assert saved.optimizer.get_config() == optimizer.get_config() and saved.optimizer.iterations == 5
    assert saved.optimizer.state_arrays().keys() == optimizer.state_arrays().keys()
    for key, value in optimizer.state_arrays().items():
        np.testing.assert_array_equal(saved.optimizer.state_arrays()[key], value)


def test_checkpoint_with_nan_weights_is_refused_and_the_old_one_kept(tmp_path):
    data = tiny_data()
    saver = checkpoint.TrainingCheckpoint(tmp_path)
    model, _ = train(data, [saver])
    before = (tmp_path / "checkpoint.npz").read_bytes()
    model.layers[0].params["weight"][0, 0, 0, 0] = np.nan
    with pytest.raises(fastconv.TrainingDivergedError, match="NaN/inf"):
        checkpoint.save(tmp_path / "checkpoint.npz", model, saver._state())
    assert (tmp_path / "checkpoint.npz").read_bytes() == before
    assert [name for name in os.listdir(tmp_path) if name.endswith(".tmp")] == []


def test_load_refuses_what_is_not_a_training_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no training checkpoint"):
        checkpoint.load(tmp_path)
    tiny_model().save(tmp_path / "model.npz")
    with pytest.raises(ValueError, match="not a fastconv training checkpoint.*Sequential.load"):
        checkpoint.load(tmp_path / "model.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable"):
        checkpoint.load(tmp_path / "junk.npz")


def test_resume_refuses_other_data(tmp_path):
    x, y = tiny_data()
    train((x, y), [checkpoint.TrainingCheckpoint(tmp_path), StopAt(1, 2)])
    with pytest.raises(ValueError, match="72 samples, x holds 60"):
        checkpoint.resume(tmp_path, x[:60], y[:60], verbose=0)


# ---- a non-finite loss stops fit at once ---------------------------------------------------------

def test_non_finite_loss_stops_fit_before_the_update_naming_epoch_and_step():
    x, y = tiny_data()
    model = tiny_model()
    model.fit(x, y, epochs=1, batch_size=BATCH, optimizer=optim.SGD(lr=0.01), verbose=0, shuffle=False)
    x = x.copy()
    x[2 * BATCH + 1, 0, 3, 3] = np.nan  # the third batch of an unshuffled epoch
    before = [p.copy() for p in model.parameters()]
    seen = KeepWeights()

    class CountBatches(callbacks.Callback):
        batches = 0

        def on_train_batch_end(self, batch, logs=None):
            CountBatches.batches += 1

    with pytest.raises(fastconv.TrainingDivergedError) as info:
        model.fit(x, y, epochs=3, batch_size=BATCH, optimizer=optim.SGD(lr=0.0), verbose=0, shuffle=False,
                  callbacks=[seen, CountBatches()])
    error = info.value
    assert isinstance(error, FloatingPointError)
    assert (error.epoch, error.step) == (0, 2) and np.isnan(error.loss)
    assert "epoch 1/3, step 3/5" in str(error)
    assert CountBatches.batches == 2 and seen.after_epoch == []
    for got, want in zip(model.parameters(), before):  # lr 0: any change would be the NaN batch's update
        np.testing.assert_array_equal(got, want)


# ---- the command line ----------------------------------------------------------------------------

def sample_subset(directory, count):
    """The bundled sample's first `count` training images (and its test set) as IDX files in `directory`."""
    import gzip

    names = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
             "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist_sample()
    directory.mkdir()
    for split, (x, y) in (("train", (x_train[:count], y_train[:count])), ("test", (x_test[:500], y_test[:500]))):
        for name, array in zip(names[split], (np.rint(x[:, 0] * 255), y)):
            array = np.asarray(array, dtype=np.uint8)
            header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
            (directory / name).write_bytes(gzip.compress(header + array.tobytes()))
    return directory


def test_cli_uses_each_optimizers_default_lr_and_shows_it(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data_dir = sample_subset(tmp_path / "data", 200)
    for name, lr, momentum in (("adam", 0.001, None), ("rmsprop", 0.001, 0.0), ("sgd", 0.05, 0.9)):
        json_path = tmp_path / f"{name}.json"
        assert cli.main(["train", "--data-dir", str(data_dir), "--epochs", "1", "--optimizer", name,
                         "--model", "mlp", "--json", str(json_path)]) == 0
        header = capsys.readouterr().out.splitlines()[0]
        assert f"{name} lr {lr:g} (its default)" in header
        figures = fastconv_json(json_path)
        assert figures["lr"] == lr and figures["history"]["lr"] == [lr] and figures["momentum"] == momentum
    assert cli.main(["train", "--data-dir", str(data_dir), "--epochs", "1", "--optimizer", "adam", "--lr", "0.01",
                     "--model", "mlp"]) == 0
    assert "adam lr 0.01," in capsys.readouterr().out.splitlines()[0]
    assert sorted(os.listdir(tmp_path)) == ["adam.json", "data", "rmsprop.json", "sgd.json"]  # no --out: no files


def fastconv_json(path):
    import json

    return json.loads(path.read_text())


def test_cli_lr_50_exits_1_naming_the_step_and_keeps_a_finite_checkpoint(tmp_path, capsys):
    # at lr 50 the loss stays finite (NaN is fit's own stop, tested above) but passes 10^4 within epoch 1
    data_dir = sample_subset(tmp_path / "data", 640)
    out = tmp_path / "run"
    code = cli.main(["train", "--data-dir", str(data_dir), "--epochs", "3", "--lr", "50", "--out", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert "training diverged: the loss is " in err and "(over 10000) at epoch 1/3, step" in err
    assert "last good checkpoint" in err and "before the first step" in err
    model = Sequential.load(out / "model.npz")
    assert all(np.isfinite(p).all() for p in model.parameters())
    saved = checkpoint.load(out)
    assert (saved.epoch, saved.step) == (0, 0)
    assert_same_weights(saved.model, model)


def test_cli_resume_argument_errors(tmp_path, capsys):
    data_dir = sample_subset(tmp_path / "data", 64)
    run = tmp_path / "run"
    assert cli.main(["train", "--data-dir", str(data_dir), "--epochs", "1", "--model", "mlp", "--verbose", "0",
                     "--out", str(run)]) == 0
    capsys.readouterr()
    cases = [(["--resume", str(tmp_path / "nowhere")], "no training checkpoint"),
             (["--resume", str(run), "--lr", "0.1", "--epochs", "3"], "drop --epochs, --lr"),
             (["--resume", str(run / "model.npz")], "not a fastconv training checkpoint"),
             (["--resume", str(run), "--data-dir", str(sample_subset(tmp_path / "other", 80))],
              "trained on 64 images, the data has 80")]
    for argv, message in cases:
        assert cli.main(["train", "--verbose", "0"] + argv) == 1
        assert message in capsys.readouterr().err


def test_cli_resume_of_a_finished_run_only_evaluates(tmp_path, capsys):
    data_dir = sample_subset(tmp_path / "data", 64)
    run = tmp_path / "run"
    assert cli.main(["train", "--data-dir", str(data_dir), "--epochs", "2", "--model", "mlp", "--out", str(run)]) == 0
    accuracy = capsys.readouterr().out.splitlines()[-2].split(" - ")[0]
    before = Sequential.load(run / "model.npz")
    assert cli.main(["train", "--resume", str(run)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "resuming after epoch 2" in out[0] and out[-2].split(" - ")[0] == accuracy
    assert_same_weights(Sequential.load(run / "model.npz"), before)


def wait_for(path, process, seconds=120):
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.02)


def test_ctrl_c_saves_a_checkpoint_and_resume_reproduces_the_uninterrupted_run(tmp_path):
    data_dir = sample_subset(tmp_path / "data", 1000)
    recipe = ["--data-dir", str(data_dir), "--epochs", "2", "--batch-size", "32", "--seed", "5", "--threads", "1",
              "--verbose", "0"]
    command = [sys.executable, "-m", "fastconv", "train"]
    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen(command + recipe + ["--out", str(interrupted)], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(interrupted / "checkpoint.npz", process)  # written as training starts
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, (out, err)
    assert "Ctrl-C: stopping after the current step" in err
    assert f"continue it with: fastconv train --resume {interrupted}" in out
    saved = checkpoint.load(interrupted)
    assert 0 < saved.epoch * saved.state["steps"] + saved.step < 2 * saved.state["steps"]
    resumed = subprocess.run(command + ["--resume", str(interrupted), "--threads", "1"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after step" in resumed.stdout or "resuming after epoch 1" in resumed.stdout
    whole = tmp_path / "whole"
    assert cli.main(["train"] + recipe + ["--out", str(whole)]) == 0
    assert_same_weights(Sequential.load(interrupted / "model.npz"), Sequential.load(whole / "model.npz"))
    assert checkpoint.load(interrupted).state["history"]["val_loss"] == checkpoint.load(whole).state["history"]["val_loss"]


def test_ctrl_c_without_out_saves_in_fastconv_interrupted(tmp_path):
    data_dir = sample_subset(tmp_path / "data", 1000)
    process = subprocess.Popen([sys.executable, "-m", "fastconv", "train", "--data-dir", str(data_dir), "--epochs", "3",
                                "--model", "mlp", "--threads", "1"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    header = process.stdout.readline()
    assert header.startswith("training mlp"), process.communicate()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, (out, err)
    assert "continue it with: fastconv train --resume fastconv-interrupted" in out
    saved = checkpoint.load(tmp_path / "fastconv-interrupted")
    assert saved.state["extra"]["recipe"]["model"] == "mlp" and not saved.finished
    assert sorted(os.listdir(tmp_path / "fastconv-interrupted")) == ["checkpoint.npz", "model.npz"]
