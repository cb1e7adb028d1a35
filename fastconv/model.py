"""fastconv.Sequential: a stack of layers with Keras-like fit / evaluate / predict / summary / save.

The model's last layer produces logits; training minimises the model's loss (fastconv.losses; by
default the fused softmax cross-entropy, whose labels are class indices or one-hot rows) and predict
returns the loss's probabilities. Shapes are inferred before any data is
seen: from ``Sequential(input_shape=...)``, the first layer's ``input_shape``, or (lazily) the first
batch. A checkpoint is one .npz file: the architecture as a JSON string plus one array per
parameter, written to a temporary file and renamed, so a crash never leaves half a checkpoint.
"""
import json
import math
import os
import time

import numpy as np

from . import layers as layers_module
from . import _inference, _kernels, losses, optim
from ._io import ProgressBar, atomic_write, read_json_record, read_npz
from .callbacks import CallbackList

__all__ = ["Sequential", "TrainingDivergedError"]

CHECKPOINT_FORMAT = "fastconv.Sequential"
CHECKPOINT_VERSION = 1
_ARCHITECTURE_KEY = "__architecture__"


class TrainingDivergedError(FloatingPointError):
    """fit stopped because a batch's loss was not finite (NaN or inf): the learning rate is too high, or
    the data holds NaN/inf. `epoch` and `step` are 0-based (as the callbacks get them), `loss` the value.
    Raised before that batch's update, so the weights are those of the step before."""

    def __init__(self, epoch, step, loss, epochs=None, steps=None, reason=None):
        self.epoch, self.step, self.loss = epoch, step, loss
        of_epochs = f"/{epochs}" if epochs else ""
        of_steps = f"/{steps}" if steps else ""
        super().__init__(f"training diverged: {reason or f'the loss is {loss}'} at epoch {epoch + 1}{of_epochs}, "
                         f"step {step + 1}{of_steps}; lower the learning rate (or check the data for NaN/inf)")


class NonFiniteLoss(ArithmeticError):
    """A training step's loss is NaN or inf (raised before its update; fit turns it into
    TrainingDivergedError with the epoch and step)."""

    def __init__(self, loss):
        super().__init__(f"the loss is {loss}")
        self.loss = float(loss)


def check_finite_loss(loss):
    """Raise NonFiniteLoss unless loss is finite: every training step calls it before its update."""
    if not math.isfinite(loss):
        raise NonFiniteLoss(loss)


def _snake_case(name):
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper() and not name[i - 1].isdigit():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _training_order(layers):
    """The layers in the order a training step runs them: each ReLU directly before a MaxPool2D after it."""
    order = list(layers)
    for i in range(len(order) - 1):
        if type(order[i]) is layers_module.ReLU and type(order[i + 1]) is layers_module.MaxPool2D:
            order[i], order[i + 1] = order[i + 1], order[i]
    return order


def _backward_through(layers, grad, input_grad):
    """dL/d(input of layers[0]) from dL/d(output of layers[-1]), filling each layer's grads; with
    input_grad=False the first layer skips its input gradient and None is returned."""
    for i in range(len(layers) - 1, -1, -1):
        if i == 0 and not input_grad:
            layers[0].backward_params(grad)
            return None
        grad = layers[i].backward(grad)
    return grad


class Sequential:
    """A linear stack of layers (see fastconv.layers).

    input_shape: per-sample shape, e.g. (1, 28, 28); seed: weight initialisation (and the default
    shuffling seed of fit); dtype: float32 (default) or float64. backend: the kernels every layer
    computes with, "fastconv" (the C kernels, default) or "reference" (the NumPy oracle: slow, for
    checks and as the benchmarks' baseline); settable later (model.backend = ...), not saved.
    """

    def __init__(self, layers=None, input_shape=None, seed=None, dtype=np.float32, name="sequential",
                 loss="softmax_cross_entropy", backend="fastconv"):
        self._kernels = layers_module.kernel_module(backend)
        self._backend = backend
        self.layers = []
        self.input_shape = None if input_shape is None else tuple(int(v) for v in input_shape)
        self.seed = seed
        self.dtype = layers_module._float_dtype(dtype)
        self.name = name
        self.loss = losses.get(loss)
        self.optimizer = None
        self.built = False
        self.stop_training = False
        for layer in layers or ():
            self.add(layer)

    def __getstate__(self):  # the kernel module travels as its backend name (see Layer.__getstate__)
        return dict(self.__dict__, _kernels=self._backend)

    def __setstate__(self, state):
        self.__dict__.update(state, _kernels=layers_module.kernel_module(state["_backend"]))

    # ---- structure -----------------------------------------------------------------------------

    def add(self, layer):
        """Append a layer (it gets a unique Keras-style name if it has none)."""
        if not isinstance(layer, layers_module.Layer):
            raise TypeError(f"Sequential.add expects a fastconv.layers.Layer, got {type(layer).__name__}")
        if layer.name is None:
            layer.name = self._unique_name(_snake_case(type(layer).__name__))
        elif any(existing.name == layer.name for existing in self.layers):
            raise ValueError(f"the model already has a layer named {layer.name!r}")
        layer.kernels = self._kernels
        self.layers.append(layer)
        self.built = False
        return self

    @property
    def backend(self):
        """"fastconv" or "reference": the kernel module of every layer (see fastconv.layers.kernel_module)."""
        return self._backend

    @backend.setter
    def backend(self, name):
        self._kernels = layers_module.kernel_module(name)
        self._backend = name
        for layer in self.layers:
            layer.kernels = self._kernels

    def _unique_name(self, base):
        taken = {layer.name for layer in self.layers}
        if base not in taken:
            return base
        suffix = 1
        while f"{base}_{suffix}" in taken:
            suffix += 1
        return f"{base}_{suffix}"

    def _declared_input_shape(self):
        if self.input_shape is not None:
            return self.input_shape
        if self.layers and self.layers[0].declared_input_shape is not None:
            return self.layers[0].declared_input_shape
        return None

    def build(self, input_shape=None):
        """Infer every layer's shapes from the per-sample input shape and create the weights.

        Layers already built for the same shape keep their weights; the weights are drawn from
        np.random.default_rng(seed), layer after layer, so a seed gives the same model every time."""
        if not self.layers:
            raise ValueError("the model has no layers; add some first")
        shape = input_shape if input_shape is not None else self._declared_input_shape()
        if shape is None:
            raise ValueError("the input shape is unknown: pass Sequential(input_shape=...), give the first "
                             "layer an input_shape, or call build(input_shape)")
        shape = tuple(int(v) for v in shape)
        rng = np.random.default_rng(self.seed)
        self.input_shape = shape
        for layer in self.layers:
            try:
                layer.build(shape, rng, self.dtype)
            except ValueError as exc:
                raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}): {exc}") from None
            shape = layer.output_shape
        self.built = True
        return self

    def _ensure_built(self, sample_shape):
        if not self.built:
            self.build(self._declared_input_shape() or sample_shape)
        if tuple(sample_shape) != self.input_shape:
            raise ValueError(f"the model expects inputs of shape (N,) + {self.input_shape}, "
                             f"got (N,) + {tuple(sample_shape)}")

    @property
    def output_shape(self):
        """The per-sample output shape (the last layer's), or None before build."""
        return self.layers[-1].output_shape if self.built else None

    def astype(self, dtype):
        """Cast every parameter to float32/float64 (e.g. float64 for a gradient check); returns self."""
        self.dtype = layers_module._float_dtype(dtype)
        for layer in self.layers:
            layer.astype(self.dtype)
        if self.optimizer is not None:
            self.optimizer.reset()
        return self

    def parameters(self):
        """Every parameter array, layer by layer (the arrays themselves: updates are in place)."""
        return [p for layer in self.layers for p in layer.parameters()]

    def gradients(self):
        """The gradients of the last backward, in the order of parameters()."""
        return [g for layer in self.layers for g in layer.gradients()]

    def named_parameters(self):
        """[(f"{layer name}.{param name}", array)] in the order of parameters()."""
        return [(f"{layer.name}.{key}", value) for layer in self.layers for key, value in layer.params.items()]

    def count_params(self):
        """The number of trainable parameters of every layer together."""
        return sum(layer.count_params() for layer in self.layers)

    # ---- computation ---------------------------------------------------------------------------

    def _as_input(self, x):
        x = np.asarray(x)
        if x.dtype.kind not in "fiub":
            raise TypeError(f"x must hold numbers, got dtype {x.dtype}")
        if x.ndim < 2:
            raise ValueError(f"x must be a batch (N, ...) of samples, got shape {x.shape}")
        return x.astype(self.dtype, copy=False)

    def forward(self, x, training=False):
        """Logits for a batch; training=True keeps what backward needs."""
        x = self._as_input(x)
        self._ensure_built(x.shape[1:])
        if not training:
            return self._forward_inference(x)
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def _forward_inference(self, x):
        """forward(x, training=False), letting each layer reuse the buffer of the one before: every
        intermediate array is the model's own, only the caller's x (or a view of it) is kept intact."""
        source = x
        for step in _inference.steps(self.layers):   # runs of Conv2D [ReLU] [MaxPool2D] fused
            overwrite = x.flags.writeable and not np.may_share_memory(x, source)
            x = step.run(x, overwrite_input=overwrite)
        return x

    def backward(self, grad, input_grad=True):
        """Back-propagate dL/dlogits through every layer (fills each layer's grads); returns dL/dx,
        or None with input_grad=False (training needs no input gradient, and skipping the first
        layer's saves a whole convolution per step)."""
        return _backward_through(self.layers, grad, input_grad)

    def loss_and_gradients(self, x, y):
        """(mean loss, logits) for a batch after a full forward + backward: gradients() then holds dL/dparams.

        A ReLU followed by a MaxPool2D runs as the pooling then the ReLU: the same values and gradients
        (the max of ReLU'd values is the ReLU of the max, and both send the gradient to the same cell),
        with the ReLU over a quarter of the values."""
        logits = self._as_input(x)
        self._ensure_built(logits.shape[1:])
        layers = _training_order(self.layers)
        for layer in layers:
            logits = layer.forward(logits, training=True)
        loss, grad = self.loss(logits, y)
        _backward_through(layers, grad, input_grad=False)
        return loss, logits

    def clear_caches(self):
        """Drop what the last training forward kept for backward, in every layer."""
        for layer in self.layers:
            layer.clear_cache()

    # ---- Keras-like training API ---------------------------------------------------------------

    def _check_data(self, x, y, what="x"):
        x = self._as_input(x)
        y = np.asarray(y)
        if y.ndim == 0 or y.shape[0] != x.shape[0]:
            raise ValueError(f"{what} has {x.shape[0]} samples but its labels have shape {y.shape}")
        self._ensure_built(x.shape[1:])
        return x, self.loss.check_targets(y, self.output_shape, self.dtype)

    def fit(self, x, y, epochs=1, batch_size=32, optimizer=None, validation_data=None, shuffle=True,
            seed=None, verbose=1, lr_schedule=None, callbacks=None, initial_epoch=0, initial_step=0,
            distribute=None):
        """Train for `epochs` passes over (x, y) in mini-batches; returns the history dict.

        y: the targets the model's loss checks (loss.check_targets): for the default loss, integer
        class labels (N,) or one-hot rows (N, classes).

        optimizer: an optim.Optimizer (default: the last one used, else SGD(lr=0.01)).
        seed: shuffling and dropout (default: the model's seed). lr_schedule: optional
        callable(epoch index) -> learning rate, applied at the start of each epoch.
        verbose: 0 silent; otherwise a progress bar per epoch on a terminal, one line per epoch if not.
        callbacks: fastconv.callbacks.Callback objects whose hooks run at the start and end of training,
        of each epoch and of each batch; one of them setting ``model.stop_training`` ends training after
        the current batch (the history then holds the epochs that finished).
        initial_epoch, initial_step: continue a run stopped at that epoch index and batch of it (what
        fastconv.checkpoint saves), as Keras's initial_epoch: `epochs` stays the run's total, the shuffle
        order and lr_schedule are those the uninterrupted run would have had (the skipped epochs' shuffles
        are drawn again from the seed), so with the saved weights and optimizer state the result is the same.
        A batch whose loss is not finite stops training at once with TrainingDivergedError (before its update).
        distribute: a data-parallel strategy (fastconv.distributed.MPIStrategy) run by every process with the
        same data and seed: it is called as the first callback, and ``distribute.train_step(model, x, y)``
        replaces ``model.train_step(x, y)`` on each global batch, returning the loss and correct count
        over the whole global batch, so every process sees the same figures; ``distribute.evaluate(model,
        x, y)`` scores validation_data, each process its own part.
        History keys: loss, accuracy, seconds (training time of the epoch, without validation),
        images_per_second, lr, and val_loss / val_accuracy with validation_data.
        """
        x, y = self._check_data(x, y)
        if validation_data is not None:
            val_x, val_y = self._check_data(*validation_data, what="validation x")
        if isinstance(epochs, bool) or int(epochs) != epochs or epochs < 0:
            raise ValueError(f"epochs must be an int >= 0, got {epochs!r}")
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if x.shape[0] == 0:
            raise ValueError("x holds no samples")
        steps = -(-x.shape[0] // int(batch_size))
        _check_start(initial_epoch, initial_step, epochs, steps)
        self.optimizer = optimizer or self.optimizer or optim.SGD(lr=0.01)
        seed = self.seed if seed is None else seed
        rng = np.random.default_rng(seed)
        self._seed_stochastic_layers(rng)
        for _ in range(initial_epoch if shuffle else 0):
            rng.permutation(x.shape[0])  # the skipped epochs' draws, so the next shuffle is the one it would be
        callbacks = CallbackList(([distribute] if distribute is not None else []) + list(callbacks or ()), self)
        callbacks.set_params({"epochs": int(epochs), "steps": steps, "batch_size": int(batch_size),
                              "samples": int(x.shape[0]), "seed": seed, "shuffle": bool(shuffle),
                              "lr_schedule": lr_schedule, "initial_epoch": initial_epoch,
                              "initial_step": initial_step})
        train_step = self.train_step if distribute is None else lambda bx, by: distribute.train_step(self, bx, by)
        history = {"loss": [], "accuracy": [], "seconds": [], "images_per_second": [], "lr": []}
        if validation_data is not None:
            history.update(val_loss=[], val_accuracy=[])
        self.stop_training = False
        callbacks.call("on_train_begin", {})
        # every batch allocates the same arrays: reusing their memory saves their page faults
        with _kernels.cached_arrays():
            for epoch in range(initial_epoch, int(epochs)):
                if lr_schedule is not None:
                    self.optimizer.lr = float(lr_schedule(epoch))
                callbacks.call("on_epoch_begin", epoch, {})
                progress = _ProgressBar(epoch, int(epochs), x.shape[0], verbose)
                first_step = initial_step if epoch == initial_epoch else 0
                loss, accuracy, seconds, seen = self._train_epoch(x, y, int(batch_size), rng if shuffle else None,
                                                                  progress, callbacks, train_step,
                                                                  (epoch, int(epochs)), first_step)
                if seen == 0:
                    break  # stopped before the epoch's first batch finished
                record = {"loss": loss, "accuracy": accuracy, "seconds": seconds,
                          "images_per_second": seen / seconds if seconds > 0 else float("inf"),
                          "lr": self.optimizer.lr}
                if validation_data is not None:
                    record["val_loss"], record["val_accuracy"] = self.evaluate(val_x, val_y, distribute=distribute)
                for key, value in record.items():
                    history[key].append(value)
                progress.finish(record)
                callbacks.call("on_epoch_end", epoch, dict(record))
                if self.stop_training:
                    break
        self.clear_caches()
        callbacks.call("on_train_end", {})
        return history

    def _seed_stochastic_layers(self, rng):
        for layer in self.layers:
            if isinstance(layer, layers_module.Dropout) and layer.seed is None:
                layer.rng = np.random.default_rng(rng.integers(2**63))

    def train_step(self, x, y):
        """One optimizer step on a batch: (mean loss, number of samples classified correctly). A loss that
        is not finite raises NonFiniteLoss before the update, so the weights stay those of the last good step."""
        loss, logits = self.loss_and_gradients(x, y)
        check_finite_loss(loss)
        self.optimizer.step(self.parameters(), self.gradients())
        return loss, self.loss.count_correct(logits, y)

    def _train_epoch(self, x, y, batch_size, rng, progress, callbacks, train_step, epoch_of, first_step=0):
        """One pass over the data from batch first_step on, or up to a stop request: (mean loss, accuracy,
        seconds, images seen) of the batches that ran. epoch_of: (epoch index, epochs) for the error message."""
        count = x.shape[0]
        order = rng.permutation(count) if rng is not None else None
        steps = -(-count // batch_size)
        loss_sum, correct, seen = 0.0, 0, 0
        start = time.perf_counter()
        for step in range(first_step, steps):
            begin = step * batch_size
            if order is None:
                batch_x, batch_y = x[begin:begin + batch_size], y[begin:begin + batch_size]
            else:
                index = order[begin:begin + batch_size]
                batch_x, batch_y = x[index], y[index]
            if callbacks:
                callbacks.call("on_train_batch_begin", step, {"size": len(batch_y)})
            try:
                loss, batch_correct = train_step(batch_x, batch_y)
            except NonFiniteLoss as exc:
                raise TrainingDivergedError(epoch_of[0], step, exc.loss, epoch_of[1], steps) from None
            loss_sum += loss * len(batch_y)
            correct += batch_correct
            seen += len(batch_y)
            progress.update(begin + len(batch_y), seen, loss_sum / seen, correct / seen, time.perf_counter() - start)
            if callbacks:
                callbacks.call("on_train_batch_end", step, {"loss": float(loss), "size": len(batch_y),
                                                            "accuracy": batch_correct / len(batch_y)})
                if self.stop_training:
                    break
        seconds = time.perf_counter() - start
        if seen == 0:
            return None, None, seconds, 0
        return loss_sum / seen, correct / seen, seconds, seen

    def evaluate(self, x, y, batch_size=256, verbose=0, distribute=None):
        """(mean loss, accuracy) over (x, y), in batches, without keeping gradient buffers.

        With a dask.array x (or y): two lazy 0-d dask arrays, computed block by block (fastconv.dask).
        With ``distribute`` (the strategy given to fit), every process scores its shard of (x, y) and all
        get the figures over the whole of it."""
        if _is_dask_array(x) or _is_dask_array(y):
            from . import dask as dask_inference  # dask is imported only when given a dask array

            return dask_inference.evaluate(self, x, y, batch_size)
        x, y = self._check_data(x, y)
        if distribute is not None:
            loss, accuracy = distribute.evaluate(self, x, y, batch_size=batch_size)
        else:
            loss, accuracy = self._evaluate_local(x, y, batch_size)
        if verbose:
            print(f"loss {loss:.4f} - accuracy {accuracy:.4f}")
        return loss, accuracy

    def _evaluate_local(self, x, y, batch_size):
        loss_sum, correct = 0.0, 0
        for begin in range(0, x.shape[0], batch_size):
            logits = self.forward(x[begin:begin + batch_size], training=False)
            batch_y = y[begin:begin + batch_size]
            loss_sum += self.loss(logits, batch_y, return_grad=False) * len(batch_y)
            correct += self.loss.count_correct(logits, batch_y)
        count = max(x.shape[0], 1)
        return loss_sum / count, correct / count

    def predict(self, x, batch_size=256):
        """Class probabilities (N, classes), computed in batches with no gradient buffers kept.

        With a dask.array x: a lazy dask.array, computed block by block by the active Dask scheduler,
        the model shipped to each worker once (fastconv.dask)."""
        if _is_dask_array(x):
            from . import dask as dask_inference  # dask is imported only when given a dask array

            return dask_inference.predict(self, x, batch_size)
        x = self._as_input(x)
        self._ensure_built(x.shape[1:])
        outputs = [self.loss.output_probabilities(self.forward(x[begin:begin + batch_size], training=False))
                   for begin in range(0, x.shape[0], batch_size)]
        if not outputs:
            return np.zeros((0,) + tuple(self.output_shape), dtype=self.dtype)
        return np.concatenate(outputs)

    def predict_classes(self, x, batch_size=256):
        """The most probable class of each sample (N,), from predict."""
        return self.predict(x, batch_size).argmax(axis=1)

    # ---- summary -------------------------------------------------------------------------------

    def summary(self, print_fn=print, line_length=65):
        """Print a Keras-style table: layer (type), output shape, parameter count, totals."""
        if not self.built:
            self.build()
        columns = (28, 54, line_length)

        def row(fields):
            line = ""
            for field, end in zip(fields, columns):
                line = (line + str(field))[: end - 1].ljust(end)
            return line.rstrip()

        lines = [f'Model: "{self.name}"', "_" * line_length,
                 row([" Layer (type)", "Output Shape", "Param #"]), "=" * line_length]
        for i, layer in enumerate(self.layers):
            shape = "(None, " + ", ".join(str(v) for v in layer.output_shape) + ")"
            lines.append(row([f" {layer.name} ({type(layer).__name__})", shape, f"{layer.count_params():,}"]))
            lines.append("=" * line_length if i == len(self.layers) - 1 else "")
        total = self.count_params()
        lines += [f"Total params: {total:,}", f"Trainable params: {total:,}", "Non-trainable params: 0",
                  "_" * line_length]
        print_fn("\n".join(lines))

    # ---- checkpoints ---------------------------------------------------------------------------

    def get_config(self):
        """The architecture as a JSON-able dict (what save writes beside the weights)."""
        return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "name": self.name,
                "input_shape": list(self.input_shape), "dtype": self.dtype.name, "seed": self.seed,
                "loss": self.loss.name, "layers": [layers_module.serialize(layer) for layer in self.layers]}

    def save(self, path):
        """Write architecture + weights to one .npz at `path` (exactly that name), atomically."""
        with atomic_write(path) as handle:
            np.savez(handle, **self._checkpoint_arrays())

    def _checkpoint_arrays(self):
        """What save() writes: {architecture key: JSON, "layers.<i>.<name>": parameter array}."""
        if not self.built:
            self.build()
        arrays = {_ARCHITECTURE_KEY: np.array(json.dumps(self.get_config()))}
        for i, layer in enumerate(self.layers):
            for key, value in layer.params.items():
                arrays[f"layers.{i}.{key}"] = value
        return arrays

    @classmethod
    def load(cls, path):
        """A model from a checkpoint written by save(); ValueError if the file is not one (or is damaged)."""
        path = os.fspath(path)
        return cls._from_arrays(read_npz(path, "fastconv checkpoint", missing="checkpoint"), path)

    @classmethod
    def _from_arrays(cls, arrays, path):
        config = _read_architecture(arrays, path)
        try:
            model = cls([layers_module.deserialize(record) for record in config["layers"]],
                        input_shape=config["input_shape"], seed=config.get("seed"),
                        dtype=config.get("dtype", "float32"), name=config.get("name", "sequential"),
                        loss=config.get("loss", "softmax_cross_entropy"))
            model.build()
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{path}: the architecture record is invalid: {exc}") from None
        expected = set()
        for i, layer in enumerate(model.layers):
            for key, value in layer.params.items():
                name = f"layers.{i}.{key}"
                expected.add(name)
                if name not in arrays:
                    raise ValueError(f"{path}: the checkpoint has no weights for {layer.name}.{key} ({name})")
                stored = arrays[name]
                if stored.shape != value.shape or stored.dtype.kind != "f":
                    raise ValueError(f"{path}: {name} has shape {stored.shape} and dtype {stored.dtype}, "
                                     f"expected shape {value.shape} float")
                layer.params[key] = stored.astype(model.dtype)
        unexpected = sorted(set(arrays) - expected - {_ARCHITECTURE_KEY})
        if unexpected:
            raise ValueError(f"{path}: the checkpoint holds arrays no layer uses: {unexpected[:5]}")
        return model


def _check_start(initial_epoch, initial_step, epochs, steps):
    """ValueError unless (initial_epoch, initial_step) is a point of a run of `epochs` epochs of `steps` batches."""
    for name, value in (("initial_epoch", initial_epoch), ("initial_step", initial_step)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    if initial_epoch > epochs or (initial_epoch == epochs and initial_step):
        raise ValueError(f"initial_epoch {initial_epoch} (step {initial_step}) is past the run's {epochs} epochs")
    if initial_step >= steps:
        raise ValueError(f"initial_step must be < {steps}, the number of batches per epoch, got {initial_step}")


def _read_architecture(arrays, path):
    config = read_json_record(arrays, _ARCHITECTURE_KEY, path, "fastconv checkpoint", CHECKPOINT_FORMAT,
                              CHECKPOINT_VERSION)
    if not isinstance(config.get("layers"), list) or not isinstance(config.get("input_shape"), list):
        raise ValueError(f"{path}: the architecture record lacks its layer list or input shape")
    return config


class _ProgressBar:
    """Per-epoch progress: a live bar on a terminal, one line per epoch otherwise, nothing at verbose=0.
    The bar shows the position reached in the epoch (a resumed epoch starts past 0, a stop ends before
    the total); the rate counts only the images trained in this call."""

    def __init__(self, epoch, epochs, total, verbose, stream=None):
        self.enabled = bool(verbose)
        self.bar = ProgressBar(total, stream, enabled=verbose == 1)
        self.prefix = f"Epoch {epoch + 1}/{epochs}"
        self.total = total
        self.position = 0

    def update(self, position, seen, loss, accuracy, seconds):
        self.position = position
        self.bar.update(position, lambda: self._line(position, seen / seconds if seconds > 0 else 0.0,
                                                     loss, accuracy))

    def _line(self, position, rate, loss, accuracy):
        width = len(str(self.total))
        return (f"{self.prefix} {position:>{width}}/{self.total} [{self.bar.bar(position)}] loss {loss:.4f}"
                f" - acc {accuracy:.4f} - {rate:,.0f} img/s")

    def finish(self, record):
        if not self.enabled:
            return
        line = self._line(self.position, record["images_per_second"], record["loss"], record["accuracy"])
        line += f" - {record['seconds']:.1f}s"
        if "val_loss" in record:
            line += f" - val_loss {record['val_loss']:.4f} - val_acc {record['val_accuracy']:.4f}"
        self.bar.close(line)


def _is_dask_array(value):
    """True for a dask.array.Array, found without importing dask (which is an optional extra)."""
    return type(value).__module__.startswith("dask.array") and hasattr(value, "chunks")
