"""keras.callbacks on fastconv.callbacks: every class here subclasses fastconv.callbacks.Callback and
runs from the hooks of fastconv.Sequential.fit (Sequential.fit of fastconv.keras hands them to it).

`self.model` is the fastconv.keras Sequential; epoch logs hold Keras's keys (loss, accuracy,
val_loss, val_accuracy); batch logs hold the epoch's running means, as in Keras.
EarlyStopping, ModelCheckpoint, LearningRateScheduler, ReduceLROnPlateau and CSVLogger follow
Keras's rules (monitor, mode, min_delta, patience, cooldown, file format); History and
ProgbarLogger are the two that Keras's fit adds itself.
"""
import csv
import math
import os
import sys
import time

import numpy as np

from .. import callbacks as core_callbacks
from ._compat import reject_non_default, unsupported

__all__ = ["Callback", "History", "ProgbarLogger", "EarlyStopping", "ModelCheckpoint", "LearningRateScheduler",
           "ReduceLROnPlateau", "CSVLogger", "LambdaCallback", "TerminateOnNaN"]


class Callback(core_callbacks.Callback):
    """Keras's Callback: the core hooks plus params, on_batch_* aliases and the test/predict hooks
    (fastconv's evaluate and predict do not call callbacks)."""

    def __init__(self):
        super().__init__()
        self.params = {}

    def set_params(self, params):
        self.params = params

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs)

    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass


class History(Callback):
    """Records each epoch's logs: history[key] is a list with one value per epoch; epoch the indices."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


# ---- printing (Keras's progress bar) --------------------------------------------------------------

def _format_value(value):
    return f" {value:.4f}" if abs(value) > 1e-3 else f" {value:.4e}"


def _format_time(seconds, unit):
    if seconds >= 1 or seconds == 0:
        return f" {seconds:.0f}s/{unit}"
    if seconds >= 1e-3:
        return f" {seconds * 1e3:.0f}ms/{unit}"
    return f" {seconds * 1e6:.0f}us/{unit}"


class Progbar:
    """Keras's progress line: verbose=1 a bar (redrawn on a terminal, printed once at the end
    otherwise), verbose=2 one line when done ("469/469 - 5s - loss: ... - 5s/epoch - 11ms/step")."""

    WIDTH = 30

    def __init__(self, target, verbose=1, stream=None):
        self.target, self.verbose = target, verbose
        self.stream = stream or sys.stdout
        self.start = time.perf_counter()
        self.live = verbose == 1 and _is_tty(self.stream)
        self._last_draw = 0.0
        self._drawn_width = 0

    def update(self, current, values, finalize=False):
        now = time.perf_counter()
        if finalize:
            line = self._final_line(current, values, now - self.start)
            self.stream.write(("\r" + self._padded(line) if self.live else line) + "\n")
        elif self.live and now - self._last_draw >= 0.05:
            self._last_draw = now
            self.stream.write("\r" + self._padded(self._bar(current) + self._eta(current, now - self.start)
                                                   + self._values(values)))
        else:
            return
        self.stream.flush()

    def _padded(self, line):
        """The line, blank-padded over whatever longer line it redraws."""
        padded = line.ljust(self._drawn_width)
        self._drawn_width = len(line)
        return padded

    def _count(self, current):
        digits = int(math.log10(self.target)) + 1 if self.target > 0 else 1
        return f"{current:>{digits}}/{self.target}"

    def _bar(self, current):
        done = int(self.WIDTH * current / self.target) if self.target else self.WIDTH
        bar = "=" * max(done - 1, 0) + ((">" if current < self.target else "=") if done else "")
        return f"{self._count(current)} [{bar}{'.' * (self.WIDTH - done)}]"

    def _eta(self, current, elapsed):
        remaining = elapsed / current * (self.target - current) if current else 0.0
        return f" - ETA: {remaining:.0f}s"

    @staticmethod
    def _values(values):
        return "".join(f" - {key}:{_format_value(value)}" for key, value in values.items())

    def _final_line(self, current, values, elapsed):
        per_step = elapsed / max(current, 1)
        if self.verbose == 2:
            return (f"{self._count(current)} - {elapsed:.0f}s{self._values(values)} -"
                    f"{_format_time(elapsed, 'epoch')} -{_format_time(per_step, 'step')}")
        return f"{self._bar(current)} - {elapsed:.0f}s{_format_time(per_step, 'step')}{self._values(values)}"


def _is_tty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class ProgbarLogger(Callback):
    """Prints "Epoch i/n" (when n > 1) and Keras's progress line of each epoch."""

    def __init__(self, stream=None):
        super().__init__()
        self.stream = stream
        self._bar = None
        self._epoch_values = {}

    def on_epoch_begin(self, epoch, logs=None):
        stream = self.stream or sys.stdout
        if self.params.get("epochs", 1) > 1:
            stream.write(f"Epoch {epoch + 1}/{self.params['epochs']}\n")
            stream.flush()
        self._bar = Progbar(self.params.get("steps", 0), self.params.get("verbose", 1), stream)

    def on_train_batch_end(self, batch, logs=None):
        values = {k: v for k, v in (logs or {}).items() if k not in ("size", "batch")}
        self._bar.update(batch + 1, values)

    def on_epoch_end(self, epoch, logs=None):
        self._bar.update(self.params.get("steps", 0), dict(logs or {}), finalize=True)


# ---- monitoring helpers ---------------------------------------------------------------------------

def _monitor_is_better(owner, monitor, mode):
    """(is_better(a, b) before min_delta, initial best) for mode 'min' / 'max' / 'auto' (max for accuracy)."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "max" or (mode == "auto" and ("acc" in monitor or monitor.startswith("fmeasure"))):
        return np.greater, -np.inf
    return np.less, np.inf


def _warn_missing(owner, monitor, logs):
    print(f"{owner}: the metric {monitor!r} is not in the logs (available: {', '.join(sorted(logs or {}))}); "
          f"skipping", file=sys.stderr)


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by min_delta for `patience` epochs (Keras's rules); with
    restore_best_weights, training ends with the weights of the best epoch."""

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor, self.patience, self.verbose = monitor, int(patience), verbose
        self.baseline, self.restore_best_weights = baseline, restore_best_weights
        self.start_from_epoch = int(start_from_epoch)
        self.monitor_op, self._initial_best = _monitor_is_better("EarlyStopping", monitor, mode)
        self.min_delta = abs(min_delta) if self.monitor_op is np.greater else -abs(min_delta)

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best, self.best_weights = self._initial_best, None

    def _is_improvement(self, value, reference):
        return reference is None or self.monitor_op(value - self.min_delta, reference)

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None or epoch < self.start_from_epoch:
            if current is None:
                _warn_missing("EarlyStopping", self.monitor, logs)
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:  # stopped early or not, as Keras 3
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model (or its weights) after each epoch to filepath, formatted with the epoch
    (1-based) and the logs, e.g. "model-{epoch:02d}-{val_loss:.2f}.keras"; save_best_only keeps
    writing only when `monitor` improves."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__()
        reject_non_default("ModelCheckpoint", {"save_freq": (save_freq, "epoch")},
                           {"save_freq": "it saves at the end of epochs (save_freq='epoch')"})
        self.filepath, self.monitor, self.verbose = os.fspath(filepath), monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.monitor_op, initial = _monitor_is_better("ModelCheckpoint", monitor, mode)
        self.best = initial if initial_value_threshold is None else initial_value_threshold

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                _warn_missing("ModelCheckpoint", self.monitor, logs)
                return
            if not self.monitor_op(current, self.best):
                if self.verbose:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to {current:.5f}, "
                      f"saving model to {path}")
            self.best = current
        elif self.verbose:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class LearningRateScheduler(Callback):
    """At each epoch's start, learning_rate = schedule(epoch, current rate) (or schedule(epoch))."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        try:
            rate = self.schedule(epoch, optimizer.learning_rate)
        except TypeError:  # Keras 2's one-argument schedules
            rate = self.schedule(epoch)
        if not isinstance(rate, (float, int, np.floating, np.integer)):
            raise ValueError(f"the schedule must return a number, got {rate!r}")
        optimizer.learning_rate = float(rate)
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(rate)}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.learning_rate


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` after `patience` epochs without an improvement of
    `monitor` by min_delta, then wait `cooldown` epochs; never below min_lr (Keras's rules)."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0, **kwargs):
        super().__init__()
        if "epsilon" in kwargs:  # Keras 2's old name of min_delta
            min_delta = kwargs.pop("epsilon")
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau got unexpected keyword argument(s) {sorted(kwargs)}")
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1, got {factor!r}")
        self.monitor, self.factor, self.patience, self.verbose = monitor, float(factor), int(patience), verbose
        self.min_delta, self.cooldown, self.min_lr = float(min_delta), int(cooldown), float(min_lr)
        self.monitor_op, self._initial_best = _monitor_is_better("ReduceLROnPlateau", monitor, mode)

    def on_train_begin(self, logs=None):
        self.best, self.wait, self.cooldown_counter = self._initial_best, 0, 0

    def _improved(self, current):
        if self.monitor_op is np.less:
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        optimizer = self.model.optimizer
        logs["learning_rate"] = optimizer.learning_rate
        current = logs.get(self.monitor)
        if current is None:
            _warn_missing("ReduceLROnPlateau", self.monitor, logs)
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience and optimizer.learning_rate > np.float32(self.min_lr):
                new_rate = max(optimizer.learning_rate * self.factor, self.min_lr)
                optimizer.learning_rate = new_rate
                if self.verbose:
                    print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_rate}.")
                self.cooldown_counter, self.wait = self.cooldown, 0


class CSVLogger(Callback):
    """Write each epoch's logs to a CSV file: a header "epoch,<keys in sorted order>", then one row
    per epoch (epoch counted from 0, as Keras writes it); append=True continues an existing file."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.separator, self.append = os.fspath(filename), separator, append
        self._file, self._writer, self._keys = None, None, None

    def on_train_begin(self, logs=None):
        has_rows = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="", encoding="utf-8")
        self._writer, self._keys, self._write_header = None, None, not has_rows

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._keys is None:
            self._keys = sorted(logs)
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch"] + self._keys, delimiter=self.separator)
            if self._write_header:
                self._writer.writeheader()
        self._writer.writerow({"epoch": epoch, **{key: logs.get(key, "NA") for key in self._keys}})
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


class LambdaCallback(Callback):
    """A callback from functions: on_epoch_begin(epoch, logs), on_epoch_end(epoch, logs),
    on_batch_begin/on_batch_end(batch, logs), on_train_begin/on_train_end(logs)."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_batch_begin=None, on_batch_end=None,
                 on_train_begin=None, on_train_end=None, **kwargs):
        super().__init__()
        for hook, function in dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                                   on_batch_begin=on_batch_begin, on_batch_end=on_batch_end,
                                   on_train_begin=on_train_begin, on_train_end=on_train_end, **kwargs).items():
            if function is not None:
                setattr(self, hook, function)


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch's loss is NaN or infinite."""

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


_NOT_SUPPORTED = ("TensorBoard", "BackupAndRestore", "RemoteMonitor", "SwapEMAWeights")


def __getattr__(name):
    if name in _NOT_SUPPORTED:
        raise unsupported(f"the callback {name}", f"it supports {', '.join(__all__)}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
