"""fastconv.callbacks: the hooks Sequential.fit calls, their order and logs, and stop_training."""
import numpy as np
import pytest

from fastconv import Sequential, callbacks, layers, optim


def tiny_data(count=50, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((count, 1, 4, 4)).astype(np.float32), rng.integers(0, 3, count)


def tiny_model(seed=0):
    return Sequential([layers.Flatten(), layers.Dense(3)], input_shape=(1, 4, 4), seed=seed)


class Recorder(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_begin(self, logs=None):
        self.events.append(("train_begin",))

    def on_train_end(self, logs=None):
        self.events.append(("train_end",))

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch, dict(logs)))

    def on_train_batch_begin(self, batch, logs=None):
        self.events.append(("batch_begin", batch, logs["size"]))

    def on_train_batch_end(self, batch, logs=None):
        self.events.append(("batch_end", batch, logs["size"], logs["loss"]))


def test_hooks_run_in_order_with_the_epoch_record_and_batch_sizes():
    x, y = tiny_data(50)
    model, recorder = tiny_model(), Recorder()
    history = model.fit(x, y, epochs=2, batch_size=20, optimizer=optim.SGD(lr=0.1), verbose=0, callbacks=[recorder])
    kinds = [event[0] for event in recorder.events]
    per_epoch = ["epoch_begin"] + ["batch_begin", "batch_end"] * 3 + ["epoch_end"]
    assert kinds == ["train_begin"] + per_epoch * 2 + ["train_end"]
    assert recorder.model is model
    sizes = [event[2] for event in recorder.events if event[0] == "batch_end"]
    assert sizes == [20, 20, 10] * 2
    epoch_ends = [event for event in recorder.events if event[0] == "epoch_end"]
    for epoch, (_, index, logs) in enumerate(epoch_ends):
        assert index == epoch
        assert logs["loss"] == history["loss"][epoch] and logs["accuracy"] == history["accuracy"][epoch]
        # the epoch's loss is the size-weighted mean of its batch losses
        batch = [event for event in recorder.events if event[0] == "batch_end"][3 * epoch:3 * epoch + 3]
        assert logs["loss"] == pytest.approx(sum(e[2] * e[3] for e in batch) / 50, rel=1e-12)


class StopAfter(callbacks.Callback):
    def __init__(self, batches):
        super().__init__()
        self.batches, self.seen = batches, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen >= self.batches:
            self.model.stop_training = True


def test_stop_training_ends_fit_after_the_current_batch():
    x, y = tiny_data(50)
    model, stopper = tiny_model(), StopAfter(4)   # epoch 0 has 3 batches: stop in epoch 1, after its first batch
    history = model.fit(x, y, epochs=5, batch_size=20, optimizer=optim.SGD(lr=0.1), verbose=0, callbacks=[stopper])
    assert stopper.seen == 4
    assert len(history["loss"]) == 2           # the finished epoch and the partial one
    assert history["images_per_second"][1] > 0
    # a new fit starts again (the flag is reset)
    again = model.fit(x, y, epochs=1, batch_size=20, verbose=0)
    assert len(again["loss"]) == 1


def test_the_weights_after_a_stop_equal_those_of_a_run_of_that_many_steps():
    x, y = tiny_data(40)
    stopped, plain = tiny_model(seed=1), tiny_model(seed=1)
    stopped.fit(x, y, epochs=3, batch_size=20, optimizer=optim.SGD(lr=0.1), verbose=0, seed=0,
                callbacks=[StopAfter(2)])
    plain.fit(x, y, epochs=1, batch_size=20, optimizer=optim.SGD(lr=0.1), verbose=0, seed=0)
    for a, b in zip(stopped.parameters(), plain.parameters()):
        np.testing.assert_array_equal(a, b)


def test_a_non_callback_is_a_type_error():
    x, y = tiny_data(10)
    with pytest.raises(TypeError, match="callbacks"):
        tiny_model().fit(x, y, verbose=0, callbacks=[object()])
