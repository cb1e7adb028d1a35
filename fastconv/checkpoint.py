"""Training checkpoints: stop a run anywhere (Ctrl-C, a crash, a diverging loss) and continue it as if it
had never stopped.

A checkpoint is one .npz file, written atomically (temporary file, fsync, rename): the model (the
arrays of Sequential.save), the optimizer's state (momentum buffers / moments and its step count) and
a JSON record of where the run is: the next epoch and batch, the run's fit arguments (epochs,
batch_size, seed, shuffle), the learning rate of every epoch (the schedule), the dropout generators'
states and the history so far. With the seed, that is everything fit needs to continue identically:
the shuffle of each epoch is drawn again from the seed (Sequential.fit's initial_epoch/initial_step).

    model.fit(x, y, epochs=4, ..., callbacks=[TrainingCheckpoint("run")])  # run/checkpoint.npz, model.npz, best.npz
    history = fastconv.checkpoint.resume("run", x, y, validation_data=(x_test, y_test))

`TrainingCheckpoint(directory)` writes, at the start (the initial weights) and at the end of every
epoch: checkpoint.npz (to resume from), model.npz (the model alone, for Sequential.load) and best.npz
(the model of the epoch with the best val_accuracy, with validation data); when training stops inside
an epoch (stop_training, e.g. Ctrl-C in `fastconv train`), checkpoint.npz and model.npz at that batch.
It refuses to write weights holding NaN/inf (TrainingDivergedError), so a checkpoint is always usable.
`load(path)` reads a checkpoint; `resume(directory, x, y)` continues its run and returns the whole history.
"""
import json
import os

import numpy as np

from . import optim
from ._io import atomic_write, read_json_record, read_npz
from .callbacks import Callback
from .model import _ARCHITECTURE_KEY, Sequential, TrainingDivergedError

__all__ = ["TrainingCheckpoint", "Checkpoint", "load", "save", "resume", "CHECKPOINT_FILE"]

CHECKPOINT_FILE = "checkpoint.npz"
MODEL_FILE = "model.npz"
BEST_FILE = "best.npz"
FORMAT = "fastconv.checkpoint"
VERSION = 1
_STATE_KEY = "__training_state__"
_OPTIMIZER_PREFIX = "optimizer."


class Checkpoint:
    """A loaded checkpoint: `model` (a Sequential), `optimizer` (with its state), and `state`, the JSON
    record (epoch and step to continue from, epochs, steps, batch_size, samples, seed, shuffle,
    lr_schedule, history, best, extra)."""

    def __init__(self, model, optimizer, state):
        self.model, self.optimizer, self.state = model, optimizer, state

    @property
    def epoch(self):
        return self.state["epoch"]

    @property
    def step(self):
        return self.state["step"]

    @property
    def finished(self):
        return self.state["epoch"] >= self.state["epochs"]

    def lr_schedule(self):
        """The run's learning rate per epoch index as fit's lr_schedule (None if the run had none)."""
        table = self.state["lr_schedule"]
        return None if table is None else table.__getitem__


def _all_finite(arrays):
    return all(np.isfinite(value).all() for value in arrays if value.dtype.kind == "f")


def save(path, model, state):
    """Write model + model.optimizer's state + the JSON-able `state` to `path` atomically.
    TrainingDivergedError (nothing written) if a weight or optimizer value is NaN/inf."""
    optimizer = model.optimizer
    arrays = model._checkpoint_arrays()
    arrays.update({_OPTIMIZER_PREFIX + key: value for key, value in optimizer.state_arrays().items()})
    if not _all_finite(value for key, value in arrays.items() if key != _ARCHITECTURE_KEY):
        raise TrainingDivergedError(state["epoch"], state["step"], float("nan"), state.get("epochs"),
                                    state.get("steps"), reason="the weights hold NaN/inf")
    record = dict(state, format=FORMAT, version=VERSION,
                  optimizer={"class": type(optimizer).__name__, "config": optimizer.get_config(),
                             "iterations": optimizer.iterations})
    arrays[_STATE_KEY] = np.array(json.dumps(record))
    with atomic_write(path) as handle:
        np.savez(handle, **arrays)


def _read_state(arrays, path):
    return read_json_record(arrays, _STATE_KEY, path, "fastconv training checkpoint", FORMAT, VERSION,
                            missing_hint="; a model saved by Sequential.save loads with Sequential.load")


def _checkpoint_path(path):
    path = os.fspath(path)
    return os.path.join(path, CHECKPOINT_FILE) if os.path.isdir(path) else path


def load(path):
    """A Checkpoint from a checkpoint file or a directory holding checkpoint.npz.
    FileNotFoundError if there is none; ValueError if the file is not a (readable) training checkpoint."""
    path = _checkpoint_path(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no training checkpoint at {path}")
    arrays = read_npz(path, "fastconv training checkpoint")
    state = _read_state(arrays, path)
    model = Sequential._from_arrays({key: value for key, value in arrays.items()
                                     if key != _STATE_KEY and not key.startswith(_OPTIMIZER_PREFIX)}, path)
    record = state["optimizer"]
    try:
        optimizer = optim.get(record["class"], **record["config"])
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: the optimizer record is invalid: {exc}") from None
    optimizer.load_state(model.parameters(), record["iterations"],
                         {key[len(_OPTIMIZER_PREFIX):]: value for key, value in arrays.items()
                          if key.startswith(_OPTIMIZER_PREFIX)})
    model.optimizer = optimizer
    return Checkpoint(model, optimizer, state)


def _rng_states(model):
    """{layer index: bit generator state} of the layers that draw random numbers (Dropout)."""
    return {str(i): layer.rng.bit_generator.state for i, layer in enumerate(model.layers) if hasattr(layer, "rng")}


def _restore_rng_states(model, states):
    for index, state in states.items():
        generator = getattr(np.random, state["bit_generator"])()
        generator.state = state
        model.layers[int(index)].rng = np.random.Generator(generator)


class TrainingCheckpoint(Callback):
    """Checkpoints a fit into `directory` (see the module's docstring).

    every_epoch=False writes only when training stops inside an epoch (an interrupted run), nothing at
    the epoch ends. extra: JSON-able data kept in the checkpoint (`fastconv train` keeps its command
    line's recipe there). resume_from: the Checkpoint a resumed fit continues (its history and best
    score carry on, its dropout generators are restored).
    """

    def __init__(self, directory, every_epoch=True, extra=None, resume_from=None):
        super().__init__()
        self.directory = os.fspath(directory)
        self.every_epoch = every_epoch
        self.extra = extra
        self.resume_from = resume_from
        previous = resume_from.state if resume_from is not None else {}
        self.history = {key: list(values) for key, values in previous.get("history", {}).items()}
        self.best = previous.get("best")
        self.position = None  # (epoch, step) the model is at: the next batch to run
        self.saved_position = None

    @property
    def path(self):
        return os.path.join(self.directory, CHECKPOINT_FILE)

    def on_train_begin(self, logs=None):
        params = self.params
        self.position = (params["initial_epoch"], params["initial_step"])
        if self.resume_from is not None:
            _restore_rng_states(self.model, self.resume_from.state.get("rngs", {}))
            self.saved_position = (self.resume_from.epoch, self.resume_from.step)
        elif self.every_epoch:
            self._save()  # the initial weights: a run that diverges in its first epoch still leaves one

    def on_epoch_begin(self, epoch, logs=None):
        first_step = self.params["initial_step"] if epoch == self.params["initial_epoch"] else 0
        self.position = (epoch, first_step)

    def on_train_batch_end(self, batch, logs=None):
        self.position = (self.position[0], batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        if self.position[1] < self.params["steps"]:
            return  # stopped inside the epoch: not a finished epoch (on_train_end saves the position)
        self.position = (epoch + 1, 0)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        improved = "val_accuracy" in (logs or {}) and (self.best is None
                                                       or logs["val_accuracy"] > self.best["val_accuracy"])
        if improved:
            self.best = {"epoch": epoch + 1, "val_accuracy": logs["val_accuracy"]}
        if self.every_epoch:
            self._save(best=improved)

    def on_train_end(self, logs=None):
        stopped_early = self.position[0] < self.params["epochs"]
        if stopped_early and self.position != self.saved_position:
            self._save()

    def _state(self):
        params = self.params
        epochs = params["epochs"]
        schedule = params["lr_schedule"]
        return {"epoch": self.position[0], "step": self.position[1], "epochs": epochs, "steps": params["steps"],
                "batch_size": params["batch_size"], "samples": params["samples"], "seed": params["seed"],
                "shuffle": params["shuffle"], "lr": self.model.optimizer.lr,
                "lr_schedule": None if schedule is None else [float(schedule(e)) for e in range(epochs)],
                "rngs": _rng_states(self.model), "history": self.history, "best": self.best, "extra": self.extra}

    def _save(self, best=False):
        state = self._state()
        os.makedirs(self.directory, exist_ok=True)
        save(self.path, self.model, state)  # first: it checks the weights are finite
        self.model.save(os.path.join(self.directory, MODEL_FILE))
        if best:
            self.model.save(os.path.join(self.directory, BEST_FILE))
        self.saved_position = self.position


def resume(directory, x, y, validation_data=None, verbose=1, callbacks=None, lr_schedule=None):
    """Continue the run checkpointed in `directory` (or a checkpoint file) on the same data (x, y) to its
    last epoch, checkpointing on into the same directory; returns (model, history of the whole run).

    lr_schedule: only for a run whose schedule was not saved (None saved); by default the saved one.
    ValueError if x does not hold as many samples as the run was trained on."""
    checkpoint = load(directory)
    state = checkpoint.state
    if len(x) != state["samples"]:
        raise ValueError(f"the checkpointed run trained on {state['samples']} samples, x holds {len(x)}")
    directory = os.path.dirname(_checkpoint_path(directory)) or "."
    saver = TrainingCheckpoint(directory, extra=state.get("extra"), resume_from=checkpoint)
    checkpoint.model.fit(x, y, epochs=state["epochs"], batch_size=state["batch_size"], optimizer=checkpoint.optimizer,
                         validation_data=validation_data, shuffle=state["shuffle"], seed=state["seed"],
                         verbose=verbose, lr_schedule=checkpoint.lr_schedule() or lr_schedule,
                         callbacks=[saver] + list(callbacks or ()), initial_epoch=state["epoch"],
                         initial_step=state["step"])
    return checkpoint.model, saver.history
