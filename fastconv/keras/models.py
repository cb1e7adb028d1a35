"""keras.models: Sequential and load_model, built on fastconv.Sequential.

A fastconv.keras Sequential owns a fastconv.Sequential (the network) holding its layers, which are
fastconv layers with Keras's names and arguments (fastconv.keras.layers). Its fit, evaluate and
predict map Keras's arguments onto the network's fit, evaluate and predict: one training loop, one
set of kernels. What happens at the model's edges:

* channels-last models (every Conv2D/pooling layer with data_format 'channels_last', Keras's
  default): 4-D inputs are transposed to NCHW once per fit/evaluate/predict call, together with the
  one cast to the model's float type (float64 or uint8 arrays are accepted, as in Keras); 4-D
  outputs are transposed back.
* compile hands the output layer's softmax (or sigmoid) to the loss when the loss is
  categorical / sparse categorical (or binary) crossentropy: the network's last layer then yields
  logits, the loss is fastconv's fused, stable form, and predict applies the activation.
* the layers' kernel_regularizer / bias_regularizer penalties are added to the loss, and their
  gradients to the weights' gradients, by the network (_Network).

model.save(path) writes one .npz file (fastconv's format, not Keras's HDF5/.keras): the architecture
and compile settings as JSON, the weights, and the optimizer's state; load_model(path) restores all.
"""
import json
import math
import os

import numpy as np

from .. import callbacks as core_callbacks
from .._io import atomic_write, read_json_record, read_npz
from .. import losses as core_losses
from ..model import Sequential as CoreSequential
from . import backend
from . import callbacks as callbacks_module
from . import layers as layers_module
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from ._compat import reject_non_default, reject_unknown, unsupported

__all__ = ["Sequential", "Model", "load_model"]

CHECKPOINT_FORMAT = "fastconv.keras.Sequential"
CHECKPOINT_VERSION = 1
_CONFIG_KEY = "__keras_model__"

# Keras loss kind -> (output activation the fused loss absorbs, fastconv loss)
_FUSED = {"categorical": ("softmax", core_losses.SoftmaxCrossEntropy),
          "sparse_categorical": ("softmax", core_losses.SoftmaxCrossEntropy),
          "binary": ("sigmoid", core_losses.SigmoidBinaryCrossEntropy)}


class _Network(CoreSequential):
    """The fastconv.Sequential a Keras model trains: loss and gradients include the regularization penalties."""

    def penalty(self):
        return sum(layer.penalty() for layer in self.layers)

    def loss_and_gradients(self, x, y):
        loss, logits = super().loss_and_gradients(x, y)
        for layer in self.layers:
            layer.add_penalty_gradients()
        return loss + self.penalty(), logits

    def evaluate(self, x, y, batch_size=256, verbose=0, distribute=None):
        loss, accuracy = super().evaluate(x, y, batch_size, distribute=distribute)
        return loss + self.penalty(), accuracy


class _OutputsAreLogits:
    """A fused fastconv loss for a model whose outputs are the logits (Keras's from_logits=True): the
    loss is the same, but predict returns the outputs themselves, as Keras does."""

    def __init__(self, loss):
        self.loss, self.name = loss, loss.name
        self.check_targets, self.count_correct = loss.check_targets, loss.count_correct

    def __call__(self, logits, targets, return_grad=True):
        return self.loss(logits, targets, return_grad)

    @staticmethod
    def output_probabilities(outputs):
        return outputs


class _KerasLogs(core_callbacks.Callback):
    """Runs Keras callbacks from the network's fit hooks, with Keras's epoch numbers and log keys
    (batch logs: the epoch's running means, as Keras reports them)."""

    def __init__(self, model, callbacks, metric_names, initial_epoch, params):
        super().__init__()
        self.callbacks, self.metric_names, self.initial_epoch = callbacks, metric_names, initial_epoch
        for callback in callbacks:
            callback.set_model(model)
            if hasattr(callback, "set_params"):
                callback.set_params(params)
        self._sums = (0.0, 0.0, 0)

    def _call(self, hook, *args):
        for callback in self.callbacks:
            getattr(callback, hook)(*args)

    def keras_logs(self, loss, accuracy, prefix=""):
        logs = {prefix + "loss": float(loss)}
        logs.update((prefix + name, float(accuracy)) for name in self.metric_names)
        return logs

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", {})

    def on_epoch_begin(self, epoch, logs=None):
        self._sums = (0.0, 0.0, 0)
        self._call("on_epoch_begin", epoch + self.initial_epoch, {})

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, {})

    def on_train_batch_end(self, batch, logs=None):
        loss_sum, correct, seen = self._sums
        size = logs["size"]
        self._sums = (loss_sum + logs["loss"] * size, correct + logs["accuracy"] * size, seen + size)
        self._call("on_train_batch_end", batch, self.keras_logs(self._sums[0] / self._sums[2],
                                                                 self._sums[1] / self._sums[2]))

    def on_epoch_end(self, epoch, logs=None):
        keras_logs = self.keras_logs(logs["loss"], logs["accuracy"])
        if "val_loss" in logs:
            keras_logs.update(self.keras_logs(logs["val_loss"], logs["val_accuracy"], prefix="val_"))
        self._call("on_epoch_end", epoch + self.initial_epoch, keras_logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", {})


def _verbosity(verbose):
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return int(verbose)


class Sequential:
    """keras.Sequential: Sequential([layers...]) or model.add(layer); then compile, fit, evaluate, predict."""

    def __init__(self, layers=None, name=None, **kwargs):
        kwargs.pop("trainable", None)
        reject_unknown("Sequential", kwargs)
        self._network = _Network(name=name or "sequential", seed=backend.next_model_seed(), dtype=backend.floatx(),
                                 loss="mean_squared_error")
        self._shuffle_seeds = np.random.default_rng(self._network.seed)
        self._input_shape = None  # from an Input layer, in Keras's order
        self._channels_last = False
        self.optimizer, self.loss, self.compiled = None, None, False
        self._metrics = []
        self.history = None
        for layer in layers or ():
            self.add(layer)

    # ---- structure -----------------------------------------------------------------------------

    @property
    def name(self):
        return self._network.name

    @property
    def layers(self):
        return list(self._network.layers)

    @property
    def stop_training(self):
        return self._network.stop_training

    @stop_training.setter
    def stop_training(self, value):
        self._network.stop_training = bool(value)

    def add(self, layer):
        """Append a fastconv.keras layer (or set the input shape with keras.Input / InputLayer)."""
        if isinstance(layer, layers_module.InputLayer):
            if self._network.layers:
                raise ValueError("an Input must be the model's first layer")
            self._input_shape = layer.shape
            return
        if not isinstance(layer, layers_module.Layer):
            raise TypeError(f"Sequential.add expects a fastconv.keras.layers layer, got {type(layer).__module__}."
                            f"{type(layer).__name__} (fastconv.layers are channels-first core layers: use them "
                            f"with fastconv.Sequential)")
        self._network.add(layer)

    def pop(self):
        """Remove the last layer."""
        if not self._network.layers:
            raise TypeError("there are no layers in the model")
        self._network.layers.pop()
        self._network.built = False

    def get_layer(self, name=None, index=None):
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no such layer: {name!r}; the layers are {[layer.name for layer in self.layers]}")

    def _configure(self):
        """Fix the model's data format (its spatial layers must agree), each Flatten's order and the axes
        each Permute moves inside."""
        formats = {layer.data_format for layer in self.layers if layer.is_spatial}
        if len(formats) > 1:
            raise unsupported("a model whose layers mix channels_last and channels_first",
                              "give every Conv2D and pooling layer the same data_format")
        self._channels_last = formats == {"channels_last"}
        for layer in self.layers:
            if isinstance(layer, layers_module.Flatten):
                if self._channels_last and layer.data_format == "channels_first":
                    raise unsupported("Flatten(data_format='channels_first') after channels_last layers",
                                      "use Flatten() (it flattens channels-last maps in Keras's order)")
                layer.channels_to_end = self._channels_last or layer.data_format == "channels_first"
            if isinstance(layer, layers_module.Permute):
                layer.set_channels_last(self._channels_last)

    def _core_shape(self, shape):
        shape = tuple(shape)
        return (shape[2], shape[0], shape[1]) if self._channels_last and len(shape) == 3 else shape

    def _keras_shape(self, shape):
        shape = tuple(shape)
        return (shape[1], shape[2], shape[0]) if self._channels_last and len(shape) == 3 else shape

    def _prepare(self):
        """Before any computation: data format, the loss's hold on the output layer, and the build when
        the input shape is declared (else the network builds on its first batch)."""
        if not self._network.layers:
            raise ValueError("the model has no layers; add some first")
        self._configure()
        self._attach_loss()
        declared = self._input_shape or self.layers[0].keras_input_shape
        if declared is not None and not (self.built and self._network.input_shape == self._core_shape(declared)):
            self._network.build(self._core_shape(declared))

    def build(self, input_shape=None):
        """Create the weights for inputs of batch shape input_shape, e.g. (None, 28, 28, 1)."""
        if input_shape is not None:
            self._input_shape = tuple(int(v) for v in tuple(input_shape)[1:])
        self._prepare()
        if not self._network.built:
            raise ValueError("the input shape is unknown: give the first layer input_shape= or call "
                             "build((None, ...))")

    @property
    def built(self):
        return self._network.built

    @property
    def input_shape(self):
        return (None,) + self._keras_shape(self._network.input_shape) if self.built else None

    @property
    def output_shape(self):
        return (None,) + self._keras_shape(self._network.output_shape) if self.built else None

    def count_params(self):
        return self._network.count_params()

    # ---- data at the model's edges -------------------------------------------------------------

    def _to_network(self, x, what="x"):
        """x as the network takes it: NCHW for a channels-last model, C-contiguous, the model's float type
        (one copy at most)."""
        if x is None:
            raise ValueError(f"{what} is required")
        x = np.asarray(x)
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{what} must be a NumPy array of numbers (fastconv.keras takes no generators or "
                            f"datasets), got dtype {x.dtype}")
        if self._channels_last and x.ndim == 4:
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x, dtype=self._network.dtype)

    def _targets(self, y, what="y"):
        """y checked against Keras's rules for the loss (one-hot for categorical, indices for sparse)."""
        if y is None:
            raise ValueError(f"{what} is required")
        y = np.asarray(y)
        kind, name = self.loss.kind, self.loss.name
        if kind == "categorical" and y.ndim == 1:
            raise ValueError(f"{name} needs one-hot targets (N, classes), {what} has shape {y.shape}: convert it "
                             f"with utils.to_categorical, or use loss='sparse_categorical_crossentropy'")
        if kind == "sparse_categorical":
            if y.ndim == 2 and y.shape[1] != 1:
                raise ValueError(f"{name} needs class indices (N,), {what} has shape {y.shape}: use "
                                 f"loss='categorical_crossentropy' for one-hot targets")
            if y.dtype.kind == "f":
                if not np.array_equal(y, np.round(y)):
                    raise ValueError(f"{name} needs whole-number class indices in {what}")
                y = y.astype(np.int64)
        if self._channels_last and y.ndim == 4:
            y = y.transpose(0, 3, 1, 2)
        return y

    def _from_network(self, outputs):
        return outputs.transpose(0, 2, 3, 1) if self._channels_last and outputs.ndim == 4 else outputs

    # ---- compile -------------------------------------------------------------------------------

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, weighted_metrics=None,
                run_eagerly=None, steps_per_execution=None, jit_compile=None, **kwargs):
        """Choose the optimizer (a name or a fastconv.keras.optimizers object), the loss (a name, function or
        fastconv.keras.losses object) and metrics (['accuracy'] or none). run_eagerly, steps_per_execution and
        jit_compile change nothing here and are accepted."""
        reject_non_default("compile", {"loss_weights": (loss_weights, None),
                                       "weighted_metrics": (weighted_metrics, None)},
                           {"loss_weights": "a Sequential model has one output and one loss",
                            "weighted_metrics": "samples are weighted equally"})
        kwargs.pop("auto_scale_loss", None)
        reject_unknown("compile", kwargs)
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='categorical_crossentropy'")
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = losses_module.get(loss)
        self._metrics = metrics_module.accuracy_names(metrics)
        self.compiled = True
        if self._network.layers:
            self._prepare()

    @property
    def metrics_names(self):
        return ["loss"] + list(self._metrics)

    def _attach_loss(self):
        """Give the network the fastconv loss for the Keras one; a crossentropy takes over the output
        layer's softmax/sigmoid (fused form) unless from_logits=True."""
        if not self.compiled:
            return
        for layer in self.layers:
            if hasattr(layer, "activation_in_loss"):
                layer.activation_in_loss = False
        if self.loss.kind == "mse":
            self._network.loss = core_losses.MeanSquaredError()
            return
        activation, fused_loss = _FUSED[self.loss.kind]
        if self.loss.from_logits:
            self._network.loss = _OutputsAreLogits(fused_loss())
            return
        last = self.layers[-1]
        output = getattr(last, "activation", "linear")
        if output != activation:
            raise unsupported(f"{self.loss.name} after an output layer with activation {output!r}",
                              f"it computes {self.loss.name} from a {activation} output layer "
                              f"(activation='{activation}') or from logits with from_logits=True")
        last.activation_in_loss = True
        self._network.loss = fused_loss()

    def _require_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(f"You must compile your model before {what}: call model.compile(optimizer, loss)")

    # ---- training and inference ----------------------------------------------------------------

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1,
            max_queue_size=10, workers=1, use_multiprocessing=False):
        """Train; returns a History whose .history holds loss (and accuracy, val_loss, val_accuracy) per epoch.

        validation_split holds out the last fraction of x and y (before shuffling, as Keras);
        max_queue_size, workers, use_multiprocessing and validation_batch_size only matter for
        generators in Keras and change nothing here."""
        self._require_compiled("training")
        reject_non_default("fit", {"class_weight": (class_weight, None), "sample_weight": (sample_weight, None),
                                   "steps_per_epoch": (steps_per_epoch, None),
                                   "validation_steps": (validation_steps, None),
                                   "validation_freq": (validation_freq, 1)},
                           {"class_weight": "samples are weighted equally",
                            "sample_weight": "samples are weighted equally",
                            "steps_per_epoch": "an epoch is one pass over the arrays",
                            "validation_steps": "validation runs over all of validation_data",
                            "validation_freq": "it validates after every epoch (validation_freq=1)"})
        if shuffle not in (True, False):
            raise unsupported(f"fit(shuffle={shuffle!r})", "it supports shuffle=True or False")
        verbose = _verbosity(verbose)
        self._prepare()
        x, y = self._to_network(x), self._targets(y)
        validation = None
        if validation_data is not None:
            validation = self._validation_pair(validation_data)
        elif validation_split:
            x, y, validation = self._split(x, y, validation_split)
        batch_size = 32 if batch_size is None else batch_size
        if isinstance(initial_epoch, bool) or int(initial_epoch) != initial_epoch or not 0 <= initial_epoch <= epochs:
            raise ValueError(f"initial_epoch must be an int in [0, epochs], got {initial_epoch!r}")
        history = callbacks_module.History()
        keras_callbacks = (([callbacks_module.ProgbarLogger()] if verbose else []) + list(callbacks or [])
                           + [history])
        steps = math.ceil(len(x) / batch_size) if isinstance(batch_size, (int, np.integer)) and batch_size > 0 else 0
        logs = _KerasLogs(self, keras_callbacks, self._metrics, int(initial_epoch),
                          {"verbose": verbose, "epochs": epochs, "steps": steps})
        self._network.fit(x, y, epochs=epochs - int(initial_epoch), batch_size=batch_size, optimizer=self.optimizer,
                          validation_data=validation, shuffle=shuffle, seed=int(self._shuffle_seeds.integers(2**63)),
                          verbose=0, callbacks=[logs])
        self.history = history
        return history

    def _validation_pair(self, validation_data):
        data = tuple(validation_data)
        if len(data) == 3 and data[2] is not None:
            raise unsupported("validation_data with sample weights", "it takes validation_data=(x_val, y_val)")
        if len(data) not in (2, 3):
            raise ValueError(f"validation_data must be (x_val, y_val), got a sequence of {len(data)}")
        return self._to_network(data[0], "validation x"), self._targets(data[1], "validation y")

    @staticmethod
    def _split(x, y, validation_split):
        if not 0.0 < validation_split < 1.0:
            raise ValueError(f"validation_split must be in (0, 1), got {validation_split!r}")
        split_at = int(math.floor(len(x) * (1.0 - validation_split)))
        if split_at == 0 or split_at == len(x):
            raise ValueError(f"validation_split={validation_split} leaves no training or no validation samples "
                             f"out of {len(x)}")
        return x[:split_at], y[:split_at], (x[split_at:], y[split_at:])

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, max_queue_size=10, workers=1, use_multiprocessing=False, return_dict=False):
        """[loss, accuracy] (the loss alone without metrics; a dict with return_dict=True)."""
        self._require_compiled("evaluating")
        reject_non_default("evaluate", {"sample_weight": (sample_weight, None), "steps": (steps, None),
                                        "callbacks": (callbacks, None)},
                           {"sample_weight": "samples are weighted equally",
                            "steps": "it evaluates all of x", "callbacks": "evaluate runs no callbacks"})
        verbose = _verbosity(verbose)
        self._prepare()
        x, y = self._to_network(x), self._targets(y)
        batch_size = 32 if batch_size is None else batch_size
        bar = callbacks_module.Progbar(math.ceil(len(x) / batch_size), verbose) if verbose else None
        loss, accuracy = self._network.evaluate(x, y, batch_size=batch_size)
        logs = _KerasLogs(self, [], self._metrics, 0, {}).keras_logs(loss, accuracy)
        if bar is not None:
            bar.update(bar.target, logs, finalize=True)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None, max_queue_size=10,
                workers=1, use_multiprocessing=False):
        """The model's outputs (probabilities after a softmax output layer), in batches."""
        reject_non_default("predict", {"steps": (steps, None), "callbacks": (callbacks, None)},
                           {"steps": "it predicts all of x", "callbacks": "predict runs no callbacks"})
        verbose = _verbosity(verbose)
        self._prepare()
        x = self._to_network(x)
        batch_size = 32 if batch_size is None else batch_size
        bar = callbacks_module.Progbar(math.ceil(len(x) / batch_size), verbose) if verbose else None
        outputs = self._from_network(self._network.predict(x, batch_size=batch_size))
        if bar is not None:
            bar.update(bar.target, {}, finalize=True)
        return outputs

    def __call__(self, x, training=False):
        if training:
            raise unsupported("calling a model with training=True", "train with fit")
        return self.predict(x, verbose=0)

    # ---- weights -------------------------------------------------------------------------------

    def get_weights(self):
        """Every layer's weights in Keras's order and layouts (Conv2D kernels (kh, kw, in, out))."""
        self._prepare()
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        self._prepare()
        weights = list(weights)
        expected = sum(len(layer.params) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"the model has {expected} weight arrays, got {len(weights)}")
        for layer in self.layers:
            count = len(layer.params)
            layer.set_weights(weights[:count])
            weights = weights[count:]

    # ---- summary -------------------------------------------------------------------------------

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False, show_trainable=False,
                layer_range=None):
        """Print Keras's table: layer (type), output shape (in the model's data format), parameters, totals."""
        self._prepare()
        if not self.built:
            raise ValueError("This model has not yet been built: give the first layer input_shape= or call build()")
        line_length = line_length or 65
        positions = positions or [0.45, 0.85, 1.0]
        if positions[-1] <= 1:
            positions = [int(line_length * p) for p in positions]
        print_fn = print_fn or print
        print_fn(f'Model: "{self.name}"')
        print_fn("_" * line_length)
        _print_row(["Layer (type)", "Output Shape", "Param #"], positions, print_fn)
        print_fn("=" * line_length)
        for i, layer in enumerate(self.layers):
            shape = (None,) + self._keras_shape(layer.output_shape)
            _print_row([f"{layer.name} ({type(layer).__name__})", str(shape), layer.count_params()], positions,
                       print_fn)
            print_fn("=" * line_length if i == len(self.layers) - 1 else "_" * line_length)
        total = self.count_params()
        print_fn(f"Total params: {total:,}")
        print_fn(f"Trainable params: {total:,}")
        print_fn("Non-trainable params: 0")
        print_fn("_" * line_length)

    # ---- save / load ---------------------------------------------------------------------------

    def get_config(self):
        compiled = None
        if self.compiled:
            compiled = {"optimizer": optimizers_module.serialize(self.optimizer),
                        "loss": losses_module.serialize(self.loss), "metrics": list(self._metrics)}
        return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "name": self.name,
                "dtype": self._network.dtype.name, "seed": self._network.seed,
                "input_shape": list(self._keras_shape(self._network.input_shape)),
                "layers": [layers_module.serialize(layer) for layer in self.layers], "compile": compiled}

    def save(self, filepath, overwrite=True, include_optimizer=True, **kwargs):
        """Write architecture, weights, compile settings and optimizer state to one .npz file at
        `filepath` (that exact name), atomically. save_format is accepted and ignored: the file is
        always fastconv's format."""
        kwargs.pop("save_format", None)
        reject_unknown("save", kwargs)
        self.build()
        arrays = {_CONFIG_KEY: np.array(json.dumps(self.get_config()))}
        arrays.update(self._weight_arrays())
        if include_optimizer and self.optimizer is not None:
            arrays.update({f"optimizer.{key}": value for key, value in self.optimizer.state_arrays().items()})
        _write_npz(filepath, arrays, overwrite)

    def save_weights(self, filepath, overwrite=True, **kwargs):
        """Write the weights alone (a .npz file) for load_weights."""
        kwargs.pop("save_format", None)
        reject_unknown("save_weights", kwargs)
        self.build()
        _write_npz(filepath, self._weight_arrays(), overwrite)

    def load_weights(self, filepath, **kwargs):
        kwargs.pop("skip_mismatch", None)
        reject_unknown("load_weights", kwargs)
        self.build()
        self._restore_weights(read_npz(filepath, "fastconv.keras model file"), filepath)

    def _weight_arrays(self):
        return {f"layers.{i}.{key}": value
                for i, layer in enumerate(self.layers) for key, value in layer.params.items()}

    def _restore_weights(self, arrays, path):
        for name, current in self._weight_arrays().items():
            stored = arrays.get(name)
            if stored is None or stored.shape != current.shape:
                raise ValueError(f"{path}: no weights of shape {current.shape} for {name} (saved from another model?)")
            current[...] = stored


def _print_row(fields, positions, print_fn):
    """One row of Keras's summary table: each field in its column, wrapped onto more lines when too long."""
    left = [str(field) for field in fields]
    while any(left):
        line = ""
        for col, text in enumerate(left):
            start = positions[col - 1] if col else 0
            space = 2 if col != len(positions) - 1 else 0
            cutoff = positions[col] - start - space
            piece = text[:cutoff]
            breaks = [piece.find(mark) + len(mark) for mark in ("),", "},", "],", "',") if piece.find(mark) >= 0]
            if breaks:
                cutoff = min(breaks)
                piece = piece[:cutoff]
            line += (" " if col == 0 else "") + piece + " " * space
            left[col] = text[cutoff:]
            line += " " * (positions[col] - len(line))
        print_fn(line.rstrip())


def _write_npz(path, arrays, overwrite=True):
    path = os.fspath(path)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists and overwrite=False")
    with atomic_write(path) as handle:
        np.savez(handle, **arrays)


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):  # noqa: A002 - Keras's argument name
    """A Sequential saved by model.save, with its weights and (compile=True) its compile settings and
    optimizer state, so fit continues where it stopped."""
    reject_non_default("load_model", {"custom_objects": (custom_objects, None)},
                       {"custom_objects": "models hold fastconv.keras layers only"})
    arrays = read_npz(filepath, "fastconv.keras model file")
    config = _read_config(arrays, filepath)
    previous = backend.floatx()
    backend.set_floatx(config.get("dtype", "float32"))
    try:
        model = Sequential([layers_module.deserialize(record) for record in config["layers"]], name=config["name"])
    finally:
        backend.set_floatx(previous)
    model._network.seed = config.get("seed")
    model.build((None,) + tuple(config["input_shape"]))
    model._restore_weights(arrays, filepath)
    if compile and config.get("compile"):
        settings = config["compile"]
        model.compile(optimizer=optimizers_module.deserialize(settings["optimizer"]),
                      loss=losses_module.get(settings["loss"]), metrics=settings["metrics"])
        state = {key[len("optimizer."):]: value for key, value in arrays.items() if key.startswith("optimizer.")}
        model.optimizer.restore_state(state, model._network.parameters())
    return model


def _read_config(arrays, path):
    return read_json_record(arrays, _CONFIG_KEY, path, "fastconv.keras model file", CHECKPOINT_FORMAT,
                            CHECKPOINT_VERSION)


class Model:
    """keras.Model (the functional API and subclassed models) is not supported."""

    def __init__(self, *args, **kwargs):
        raise unsupported("keras.Model (the functional API and subclassed models)",
                          "it supports keras.Sequential models (a linear stack of layers)")

