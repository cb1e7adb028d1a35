"""Callbacks: code that `Sequential.fit` calls at fixed points of training, as in Keras.

A callback subclasses `Callback` and overrides the hooks it needs; `fit(..., callbacks=[...])` calls
them in list order. Each hook gets a `logs` dict: after a batch, that batch's "loss" and "size" (and
"accuracy"); at the end of an epoch, the epoch's history record (loss, accuracy, seconds, lr, and
val_loss / val_accuracy with validation data). Setting ``model.stop_training = True`` in any hook
ends `fit` after the current batch. Checkpointing, early stopping, learning-rate schedules and
distributed training are built on these hooks, never on a second training loop.
"""

__all__ = ["Callback", "CallbackList"]


class Callback:
    """Base class: every hook does nothing; `model` is the Sequential being trained."""

    def __init__(self):
        self.model = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass


class CallbackList:
    """Calls one hook on every callback of a list, in order."""

    HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
             "on_train_batch_end")

    def __init__(self, callbacks, model):
        self.callbacks = list(callbacks or ())
        for callback in self.callbacks:
            if not all(callable(getattr(callback, hook, None)) for hook in self.HOOKS):
                raise TypeError(f"callbacks must be fastconv.callbacks.Callback objects, got "
                                f"{type(callback).__name__}")
            callback.set_model(model)

    def __bool__(self):
        return bool(self.callbacks)

    def call(self, hook, *args):
        for callback in self.callbacks:
            getattr(callback, hook)(*args)
