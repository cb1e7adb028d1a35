"""keras.layers on fastconv: each class is a fastconv.layers layer with Keras's name and arguments.

Dense, Conv2D, MaxPooling2D, AveragePooling2D, Flatten, Permute and Dropout subclass the core layers, so the
forward and backward are fastconv's kernels; ``activation=`` runs a core activation layer after the
layer's own computation. Inside a model every image tensor is NCHW (the core kernels' layout): the
model transposes channels-last inputs once, at its input, and a Flatten after channels-last maps
flattens in Keras's (H, W, C) order, so weights trained in Keras map one to one
(Sequential.set_weights takes Keras's kernel layouts). ``data_format`` defaults to
backend.image_data_format(), "channels_last" as in Keras.

A Keras layer or argument fastconv cannot reproduce raises UnsupportedError naming it.
"""
import numpy as np

from ... import layers as core_layers
from .. import activations, backend, regularizers
from .._compat import UnsupportedError, reject_non_default, reject_unknown, unsupported

__all__ = ["Layer", "Dense", "Conv2D", "Convolution2D", "MaxPooling2D", "MaxPool2D", "AveragePooling2D",
           "AvgPool2D", "Flatten", "Permute", "Dropout", "Activation", "ReLU", "LeakyReLU", "Softmax", "Input",
           "InputLayer", "get", "serialize", "deserialize"]

KERNEL_INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal")
BIAS_INITIALIZERS = ("zeros",)


def _common_kwargs(owner, kwargs):
    """(input shape in Keras's order or None, name) from the keyword arguments every Keras layer takes.

    Refuses what would change the result (trainable=False, initial weights=, another dtype) and
    keywords Keras does not know."""
    input_shape = kwargs.pop("input_shape", None)
    input_dim = kwargs.pop("input_dim", None)
    batch_input_shape = kwargs.pop("batch_input_shape", None)
    kwargs.pop("batch_size", None)  # fit's batch_size decides; a layer's declared one changes nothing
    name = kwargs.pop("name", None)
    dtype = kwargs.pop("dtype", None)
    trainable = kwargs.pop("trainable", True)
    weights = kwargs.pop("weights", None)
    reject_non_default(owner, {"trainable": (trainable, True), "weights": (weights, None)},
                       {"trainable": "every layer is trained (freezing layers is not supported)",
                        "weights": "set weights after building with model.set_weights or layer.set_weights"})
    if dtype is not None and np.dtype(dtype).name != backend.floatx():
        raise unsupported(f"{owner}(dtype={dtype!r})", f"every layer computes in the model's dtype "
                                                       f"{backend.floatx()!r} (backend.set_floatx)")
    reject_unknown(owner, kwargs)
    if input_shape is None and batch_input_shape is not None:
        input_shape = tuple(batch_input_shape)[1:]
    if input_shape is None and input_dim is not None:
        input_shape = (input_dim,)
    if input_shape is not None:
        input_shape = (input_shape,) if isinstance(input_shape, (int, np.integer)) else tuple(input_shape)
        if not all(isinstance(v, (int, np.integer)) and v >= 1 for v in input_shape):
            raise ValueError(f"{owner}: input_shape must hold ints >= 1 (no None: fastconv needs every size), "
                             f"got {input_shape!r}")
        input_shape = tuple(int(v) for v in input_shape)
    return input_shape, name


def _initializer(owner, argument, value, supported):
    name = value if isinstance(value, str) else getattr(value, "__name__", type(value).__name__)
    name = {"GlorotUniform": "glorot_uniform", "GlorotNormal": "glorot_normal", "HeUniform": "he_uniform",
            "HeNormal": "he_normal", "Zeros": "zeros"}.get(name, name)
    if not isinstance(name, str) or name.lower() not in supported:
        raise unsupported(f"{owner}({argument}={value!r})", f"it supports {argument} in {supported}")
    return name.lower()


def _padding(owner, padding):
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ValueError(f"{owner}: padding must be 'valid' or 'same', got {padding!r}")
    return padding.lower()


def _pair_list(value):
    return list(value) if isinstance(value, tuple) else value


# ---- shared behaviour ----------------------------------------------------------------------------

class Layer:
    """Mixin of every fastconv.keras layer (combined with a fastconv.layers class).

    keras_input_shape: the input shape given to the layer, in Keras's order; is_spatial: the layer
    works on image maps and has a data_format."""

    is_spatial = False
    keras_input_shape = None

    def _keras_setup(self, input_shape):
        self.keras_input_shape = input_shape

    def __call__(self, x, training=False):
        if isinstance(x, InputLayer):
            raise unsupported("the functional API (calling a layer on keras.Input)",
                              "it builds models with keras.Sequential and model.add")
        return super().__call__(x, training)

    def keras_weights_layout(self, arrays):
        """The core parameter arrays in Keras's layout (the identity, except for Conv2D's kernel)."""
        return arrays

    def core_weights_layout(self, arrays):
        return arrays

    def get_weights(self):
        """The layer's weights as Keras lists them (kernel, bias), in Keras's layouts."""
        return [np.array(a) for a in self.keras_weights_layout(list(self.params.values()))]

    def set_weights(self, weights):
        """Replace the weights (in place) from arrays in Keras's layouts, as get_weights returns them."""
        if not self.built:
            raise ValueError(f"layer {self.name!r} is not built yet: build the model first")
        expected = [w.shape for w in self.get_weights()]
        given = [np.shape(w) for w in weights]
        if given != expected:
            raise ValueError(f"layer {self.name!r} takes weights of shapes {expected} (Keras's layouts), got {given}")
        for current, new in zip(self.params.values(), self.core_weights_layout([np.asarray(w) for w in weights])):
            current[...] = new  # in place: the optimizer's state stays attached to the same arrays

    def keras_config(self):
        """Keras-style constructor arguments (the model's save format)."""
        config = {"name": self.name}
        if self.keras_input_shape is not None:
            config["input_shape"] = list(self.keras_input_shape)
        return config

    def penalty(self):
        """The regularization term this layer adds to the loss (0 without regularizers)."""
        return 0.0

    def add_penalty_gradients(self):
        """Add the regularizers' gradients to self.grads (nothing without regularizers)."""


class _Activated(Layer):
    """A layer followed by an activation (activation=); the model's compile may hand the output
    layer's softmax/sigmoid to the loss (activation_in_loss), which then computes the fused, stable
    crossentropy from the logits."""

    def _set_activation(self, activation, core_activation=None):
        self.activation = activations.get(activation)
        self._activation = core_activation if core_activation is not None else activations.core_layer(self.activation)
        self.activation_in_loss = False

    def _activation_runs(self):
        return self._activation is not None and not self.activation_in_loss

    def compute_output_shape(self, input_shape):
        shape = super().compute_output_shape(input_shape)
        if self._activation is not None:
            self._activation.compute_output_shape(shape)  # validates (softmax needs flat features)
        return shape

    def forward(self, x, training=False):
        y = super().forward(x, training)
        if not self._activation_runs():
            return y
        self._activation.kernels = self.kernels  # the model's backend (fastconv or reference) for both
        return self._activation.forward(y, training)

    def _activation_grad(self, grad):
        return self._activation.backward(grad) if self._activation_runs() else grad

    def backward(self, grad):
        return super().backward(self._activation_grad(grad))

    def clear_cache(self):
        super().clear_cache()
        if self._activation is not None:
            self._activation.clear_cache()

    def keras_config(self):
        return dict(super().keras_config(), activation=self.activation)


class _Regularized(_Activated):
    """kernel_regularizer= / bias_regularizer= on the layer's weight and bias."""

    def _set_regularizers(self, kernel_regularizer, bias_regularizer):
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def _regularized(self):
        pairs = (("weight", self.kernel_regularizer), ("bias", self.bias_regularizer))
        return [(key, regularizer) for key, regularizer in pairs if regularizer is not None and key in self.params]

    def penalty(self):
        return sum(regularizer(self.params[key]) for key, regularizer in self._regularized())

    def add_penalty_gradients(self):
        for key, regularizer in self._regularized():
            self.grads[key] = self.grads[key] + regularizer.gradient(self.params[key])

    def keras_config(self):
        config = super().keras_config()
        for argument, regularizer in (("kernel_regularizer", self.kernel_regularizer),
                                      ("bias_regularizer", self.bias_regularizer)):
            if regularizer is not None:
                config[argument] = {"class_name": "L1L2", "config": regularizer.get_config()}
        return config


def _check_weight_extras(owner, activity_regularizer, kernel_constraint, bias_constraint):
    reject_non_default(owner, {"activity_regularizer": (activity_regularizer, None),
                               "kernel_constraint": (kernel_constraint, None),
                               "bias_constraint": (bias_constraint, None)},
                       {"activity_regularizer": "it supports kernel_regularizer and bias_regularizer",
                        "kernel_constraint": "weight constraints are not implemented",
                        "bias_constraint": "weight constraints are not implemented"})


# ---- layers with weights -------------------------------------------------------------------------

class Dense(_Regularized, core_layers.Dense):
    """keras.layers.Dense: y = activation(x @ kernel + bias), kernel (input features, units)."""

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        input_shape, name = _common_kwargs("Dense", kwargs)
        _check_weight_extras("Dense", activity_regularizer, kernel_constraint, bias_constraint)
        super().__init__(units, use_bias=use_bias,
                         kernel_initializer=_initializer("Dense", "kernel_initializer", kernel_initializer,
                                                         KERNEL_INITIALIZERS),
                         bias_initializer=_initializer("Dense", "bias_initializer", bias_initializer,
                                                       BIAS_INITIALIZERS),
                         name=name)
        self._keras_setup(input_shape)
        self._set_activation(activation)
        self._set_regularizers(kernel_regularizer, bias_regularizer)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise unsupported(f"Dense on inputs of per-sample shape {tuple(input_shape)}",
                              "Dense takes flat (N, features) inputs: put a Flatten() layer before it")
        return super().compute_output_shape(input_shape)

    def backward_params(self, grad):
        core_layers.Dense.backward(self, self._activation_grad(grad))

    def keras_config(self):
        return dict(super().keras_config(), units=self.units, use_bias=self.use_bias,
                    kernel_initializer=self.kernel_initializer, bias_initializer=self.bias_initializer)


class Conv2D(_Regularized, core_layers.Conv2D):
    """keras.layers.Conv2D: Keras's kernel layout is (kh, kw, in channels, filters); fastconv keeps
    (filters, in channels, kh, kw) inside and converts in get_weights / set_weights."""

    is_spatial = True

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        input_shape, name = _common_kwargs("Conv2D", kwargs)
        _check_weight_extras("Conv2D", activity_regularizer, kernel_constraint, bias_constraint)
        reject_non_default("Conv2D", {"dilation_rate": (dilation_rate, (1, 1)), "groups": (groups, 1)},
                           {"dilation_rate": "it supports dilation_rate=1 only",
                            "groups": "it supports groups=1 only (a full convolution)"})
        super().__init__(filters, kernel_size, strides=strides, padding=_padding("Conv2D", padding),
                         use_bias=use_bias,
                         kernel_initializer=_initializer("Conv2D", "kernel_initializer", kernel_initializer,
                                                         KERNEL_INITIALIZERS),
                         bias_initializer=_initializer("Conv2D", "bias_initializer", bias_initializer,
                                                       BIAS_INITIALIZERS),
                         name=name)
        self.data_format = backend.check_data_format(data_format)
        self._keras_setup(input_shape)
        self._set_activation(activation)
        self._set_regularizers(kernel_regularizer, bias_regularizer)

    def backward_params(self, grad):
        core_layers.Conv2D.backward_params(self, self._activation_grad(grad))

    def keras_weights_layout(self, arrays):
        return [arrays[0].transpose(2, 3, 1, 0)] + arrays[1:]

    def core_weights_layout(self, arrays):
        if arrays and arrays[0].ndim == 4:
            arrays = [arrays[0].transpose(3, 2, 0, 1)] + arrays[1:]
        return arrays

    def keras_config(self):
        return dict(super().keras_config(), filters=self.filters, kernel_size=list(self.kernel_size),
                    strides=list(self.strides), padding=self.padding, data_format=self.data_format,
                    use_bias=self.use_bias, kernel_initializer=self.kernel_initializer,
                    bias_initializer=self.bias_initializer)


Convolution2D = Conv2D


# ---- pooling -------------------------------------------------------------------------------------

class _Pooling(Layer):
    is_spatial = True

    def _keras_pool_init(self, owner, pool_size, strides, padding, data_format, kwargs):
        input_shape, name = _common_kwargs(owner, kwargs)
        super().__init__(pool_size, strides, _padding(owner, padding), name=name)
        self.data_format = backend.check_data_format(data_format)
        self._keras_setup(input_shape)

    def keras_config(self):
        return dict(super().keras_config(), pool_size=list(self.pool_size), strides=list(self.strides),
                    padding=self.padding, data_format=self.data_format)


class MaxPooling2D(_Pooling, core_layers.MaxPool2D):
    """keras.layers.MaxPooling2D (strides default to pool_size; 'same' pads as TensorFlow does)."""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        self._keras_pool_init("MaxPooling2D", pool_size, strides, padding, data_format, kwargs)


class AveragePooling2D(_Pooling, core_layers.AvgPool2D):
    """keras.layers.AveragePooling2D ('same' divides by the real cells of each window, as Keras)."""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        self._keras_pool_init("AveragePooling2D", pool_size, strides, padding, data_format, kwargs)


MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D


# ---- reshaping and regularisation ----------------------------------------------------------------

class Flatten(Layer, core_layers.Flatten):
    """keras.layers.Flatten. The model sets channels_to_end: when Keras's tensor here is channels-last
    (or this Flatten has data_format='channels_first'), the values are flattened in (H, W, C) order,
    as Keras does, so the next Dense's kernel rows are Keras's."""

    def __init__(self, data_format=None, **kwargs):
        input_shape, name = _common_kwargs("Flatten", kwargs)
        super().__init__(name=name)
        self.data_format = backend.check_data_format(data_format)
        self.channels_to_end = False
        self._keras_setup(input_shape)

    def _permutation(self, ndim):
        return (0,) + tuple(range(2, ndim)) + (1,) if self.channels_to_end and ndim > 2 else None

    def forward(self, x, training=False):
        permutation = self._permutation(x.ndim)
        if permutation is not None:
            x = x.transpose(permutation)
        self._cache = (x.shape, permutation) if training else None
        return x.reshape(x.shape[0], -1)

    def backward(self, grad):
        shape, permutation = self._cached()
        grad = grad.reshape(shape)
        return grad if permutation is None else grad.transpose(np.argsort(permutation))

    def keras_config(self):
        return dict(super().keras_config(), data_format=self.data_format)


class Permute(Layer, core_layers.Permute):
    """keras.layers.Permute(dims): dims permutes the sample axes 1..ndim of Keras's tensor. In a
    channels-last model the model sets channels_last, and the permutation of an (H, W, C) tensor is
    carried out on the NCHW tensor that holds it inside (so what follows sees Keras's axis order)."""

    def __init__(self, dims, **kwargs):
        input_shape, name = _common_kwargs("Permute", kwargs)
        super().__init__(dims, name=name)
        self.keras_dims = self.dims
        self._keras_setup(input_shape)

    def set_channels_last(self, channels_last):
        """Permute the core NCHW tensor as Keras permutes its (H, W, C) one (channels_last), or as given."""
        dims = self.keras_dims
        if channels_last and len(dims) == 3:
            # core axis i holds Keras axis _NHWC_OF_CORE[i]; Keras axis j is core axis _CORE_OF_NHWC[j]
            dims = tuple(_CORE_OF_NHWC[dims[keras_axis] - 1] + 1 for keras_axis in _NHWC_OF_CORE)
        if dims != self.dims:
            self._set_dims(dims)
            self.built = False  # the output shape changes with the dims

    def keras_config(self):
        return dict(super().keras_config(), dims=list(self.keras_dims))


_NHWC_OF_CORE = (2, 0, 1)  # core (C, H, W) from Keras (H, W, C)
_CORE_OF_NHWC = (1, 2, 0)


class Dropout(Layer, core_layers.Dropout):
    """keras.layers.Dropout (inverted dropout, active in fit only)."""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        input_shape, name = _common_kwargs("Dropout", kwargs)
        reject_non_default("Dropout", {"noise_shape": (noise_shape, None)},
                           {"noise_shape": "it drops every value independently (noise_shape=None)"})
        super().__init__(rate, seed=seed, name=name)
        self._keras_setup(input_shape)

    def keras_config(self):
        return dict(super().keras_config(), rate=self.rate, seed=self.seed)


# ---- activations ---------------------------------------------------------------------------------

class _Identity(core_layers.Layer):
    def forward(self, x, training=False):
        return x

    def backward(self, grad):
        return grad


class Activation(_Activated, _Identity):
    """keras.layers.Activation(name): relu, sigmoid, tanh, softmax or linear."""

    def __init__(self, activation, **kwargs):
        input_shape, name = _common_kwargs(type(self).__name__, kwargs)
        super().__init__(name=name)
        self._keras_setup(input_shape)
        self._set_activation(activation)


class ReLU(Activation):
    """keras.layers.ReLU: max(x, 0), or a leaky slope below 0 with negative_slope."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        reject_non_default("ReLU", {"max_value": (max_value, None), "threshold": (threshold, 0.0)},
                           {"max_value": "it supports max_value=None only (no capped ReLU)",
                            "threshold": "it supports threshold=0 only"})
        super().__init__("relu", **kwargs)
        self.negative_slope = float(negative_slope)
        if self.negative_slope:
            self._set_activation("relu", core_layers.LeakyReLU(self.negative_slope))

    def keras_config(self):
        config = super().keras_config()
        del config["activation"]
        return dict(config, negative_slope=self.negative_slope)


class LeakyReLU(ReLU):
    """keras.layers.LeakyReLU: x for x > 0, alpha * x below (Keras 3 calls alpha negative_slope)."""

    def __init__(self, alpha=0.3, negative_slope=None, **kwargs):
        super().__init__(negative_slope=alpha if negative_slope is None else negative_slope, **kwargs)


class Softmax(Activation):
    """keras.layers.Softmax over the last axis of flat (N, features) inputs."""

    def __init__(self, axis=-1, **kwargs):
        if axis not in (-1, 1):
            raise unsupported(f"Softmax(axis={axis!r})", "it supports softmax over the features (axis=-1)")
        super().__init__("softmax", **kwargs)

    def keras_config(self):
        config = super().keras_config()
        del config["activation"]
        return config


# ---- input ---------------------------------------------------------------------------------------

class InputLayer:
    """The input of a Sequential model (its per-sample shape in Keras's order); not a computing layer."""

    def __init__(self, input_shape=None, batch_size=None, dtype=None, name=None, shape=None, **kwargs):
        shape = input_shape if shape is None else shape
        reject_non_default("Input", {"sparse": (kwargs.pop("sparse", None), None),
                                     "ragged": (kwargs.pop("ragged", None), None),
                                     "tensor": (kwargs.pop("tensor", None), None)},
                           {"sparse": "inputs are dense arrays", "ragged": "inputs are dense arrays",
                            "tensor": "inputs are NumPy arrays"})
        batch_shape = kwargs.pop("batch_shape", None) or kwargs.pop("batch_input_shape", None)
        reject_unknown("Input", kwargs)
        if shape is None and batch_shape is not None:
            shape = tuple(batch_shape)[1:]
        if shape is None:
            raise ValueError("Input needs a shape, e.g. Input(shape=(28, 28, 1))")
        self.shape, self.name = _common_kwargs("Input", {"input_shape": shape, "dtype": dtype})[0], name


def Input(shape=None, batch_size=None, name=None, dtype=None, **kwargs):  # noqa: N802 - Keras's name
    """keras.Input for a Sequential model: Sequential([Input(shape=(28, 28, 1)), Conv2D(...), ...])."""
    return InputLayer(shape=shape, batch_size=batch_size, name=name, dtype=dtype, **kwargs)


# ---- save format and the layers fastconv lacks ---------------------------------------------------

_CLASSES = {cls.__name__: cls for cls in (Dense, Conv2D, MaxPooling2D, AveragePooling2D, Flatten, Permute,
                                          Dropout, Activation, ReLU, LeakyReLU, Softmax)}

# Keras layers a Keras program may import; fastconv.keras names them in its error instead of a bare ImportError.
_NOT_SUPPORTED = ("BatchNormalization", "LayerNormalization", "Conv1D", "Conv3D", "Conv2DTranspose",
                  "SeparableConv2D", "DepthwiseConv2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
                  "ZeroPadding2D", "Cropping2D", "UpSampling2D", "Reshape", "RepeatVector",
                  "Embedding", "LSTM", "GRU", "SimpleRNN", "Bidirectional", "TimeDistributed", "Lambda",
                  "Concatenate", "Add", "Multiply", "Attention", "MultiHeadAttention", "SpatialDropout2D",
                  "GaussianNoise", "ELU", "PReLU", "ThresholdedReLU", "MaxPooling1D", "AveragePooling1D",
                  "MaxPooling3D", "Rescaling", "Normalization")


def __getattr__(name):
    if name in _NOT_SUPPORTED:
        raise unsupported(f"the layer {name}", f"it supports {', '.join(sorted(_CLASSES))}, Input")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def serialize(layer):
    return {"class_name": type(layer).__name__, "config": layer.keras_config()}


def deserialize(record):
    """A layer from serialize()'s record (ValueError if malformed)."""
    if not isinstance(record, dict) or record.get("class_name") not in _CLASSES:
        raise ValueError(f"not a fastconv.keras layer record: {record!r}")
    config = dict(record.get("config", {}))
    try:
        return _CLASSES[record["class_name"]](**config)
    except (TypeError, UnsupportedError) as exc:
        raise ValueError(f"bad config for {record['class_name']}: {exc}") from None


def get(name):
    """The layer class called `name`."""
    try:
        return _CLASSES[name]
    except KeyError:
        raise ValueError(f"unknown layer {name!r}; fastconv.keras has {sorted(_CLASSES)}") from None

