"""Stateful layers of the Keras-like training API (reference: docs/api.md, "fastconv.layers").

Every layer works on a batch (N, ...) and follows one protocol:

* ``build(input_shape, rng=None, dtype=None)`` fixes the per-sample input shape (no batch axis),
  computes ``output_shape`` and creates the parameters. ``compute_output_shape(input_shape)`` is the
  shape rule alone, so a model infers every shape before it sees data.
* ``forward(x, training=False)``: with ``training=True`` the layer keeps what its backward needs;
  with ``training=False`` it keeps nothing (inference holds no gradient buffers).
* ``backward(grad) -> grad_input`` for the last training forward; it stores the parameter
  gradients in ``grads`` (overwritten by every backward, never accumulated).
* ``params`` / ``grads``: dicts name -> array, in a fixed order ("weight", then "bias").
* ``get_config()`` / ``from_config(config)`` rebuild the layer (the model's checkpoint format).

The heavy lifting is done by a kernel module, ``layer.kernels``: fastconv's functional kernels (C,
OpenMP) by default, or the NumPy reference (``kernel_module("reference")``, which a model selects
with ``Sequential(backend="reference")``: the benchmarks' baseline runs the same layers on it). Weights are (K, C, R, S) for Conv2D and
(in_features, units) for Dense, so a Dense forward is ``x @ weight + bias`` with no transpose.
"""
import math

import numpy as np

from . import functional as F

__all__ = [
    "Layer", "Conv2D", "MaxPool2D", "AvgPool2D", "ReLU", "LeakyReLU", "Sigmoid", "Tanh",
    "Flatten", "Permute", "Dense", "Dropout", "get", "serialize", "deserialize", "kernel_module", "BACKENDS",
]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
WEIGHT_INITIALIZERS = ("pytorch", "he_uniform", "he_normal", "glorot_uniform", "glorot_normal")
BIAS_INITIALIZERS = ("pytorch", "zeros")


# ---- helpers -------------------------------------------------------------------------------------

BACKENDS = ("fastconv", "reference")


def kernel_module(backend):
    """The module of kernels a layer computes with: "fastconv" (fastconv.functional, the C kernels)
    or "reference" (fastconv.reference, plain NumPy with the same signatures and results)."""
    if backend == "fastconv":
        return F
    if backend == "reference":
        from . import reference

        return reference
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def backend_name(module):
    """The name kernel_module() takes for a kernel module."""
    for name in BACKENDS:
        if kernel_module(name) is module:
            return name
    raise ValueError(f"{module!r} is not one of the kernel modules {BACKENDS}")


def _float_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in _FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def _positive_pair(name, value):
    """(h, w) of ints >= 1 from an int or a pair."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints (h, w), got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return (int(pair[0]), int(pair[1]))


def _padding_spec(value):
    """A padding argument as given: "valid", "same", or an (h, w) pair of ints >= 0."""
    if isinstance(value, str):
        if value.lower() not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid', 'same' or int(s) >= 0, got {value!r}")
        return value.lower()
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"padding must be 'valid', 'same', an int or a pair of ints, got {value!r}")
    if min(pair) < 0:
        raise ValueError(f"padding must be >= 0, got {value!r}")
    return (int(pair[0]), int(pair[1]))


def _axis_padding(spec, axis, size, kernel, stride):
    """(before, after) zero/-inf padding of one spatial axis for a padding spec.

    "same" follows Keras/TensorFlow: out = ceil(size / stride) and the total padding
    max((out - 1) * stride + kernel - size, 0) is split with the odd pixel AFTER (bottom/right).
    """
    if spec == "valid":
        return (0, 0)
    if spec == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        return (total // 2, total - total // 2)
    return (spec[axis], spec[axis])


def _resolve_padding(spec, in_hw, kernel, stride):
    """((top, bottom), (left, right)) for an input of spatial size in_hw."""
    return tuple(_axis_padding(spec, axis, in_hw[axis], kernel[axis], stride[axis]) for axis in (0, 1))


def _out_size(size, before, after, kernel, stride, what):
    padded = size + before + after
    if kernel > padded:
        raise ValueError(f"{what} {kernel} is larger than the padded input ({size} + {before} + {after})")
    return (padded - kernel) // stride + 1


def _spatial_input(name, input_shape):
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"{name} expects inputs of shape (C, H, W) per sample, got {tuple(input_shape)}")
    return shape


def _initial_weight(kind, shape, fan_in, fan_out, rng, dtype):
    """A new weight tensor drawn with `rng` (in float64, then cast, so both dtypes draw the same numbers)."""
    if kind == "pytorch":  # kaiming_uniform(a=sqrt(5)), PyTorch's default for Conv2d and Linear
        bound = 1.0 / math.sqrt(fan_in)
        values = rng.uniform(-bound, bound, shape)
    elif kind == "he_uniform":
        bound = math.sqrt(6.0 / fan_in)
        values = rng.uniform(-bound, bound, shape)
    elif kind == "he_normal":
        values = rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
    elif kind == "glorot_uniform":
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        values = rng.uniform(-bound, bound, shape)
    elif kind == "glorot_normal":
        values = rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), shape)
    else:
        raise ValueError(f"kernel_initializer must be one of {WEIGHT_INITIALIZERS}, got {kind!r}")
    return values.astype(dtype)


def _initial_bias(kind, size, fan_in, rng, dtype):
    if kind == "zeros":
        return np.zeros(size, dtype=dtype)
    if kind == "pytorch":
        bound = 1.0 / math.sqrt(fan_in)
        return rng.uniform(-bound, bound, size).astype(dtype)
    raise ValueError(f"bias_initializer must be one of {BIAS_INITIALIZERS}, got {kind!r}")


def _check_initializers(kernel_initializer, bias_initializer):
    if kernel_initializer not in WEIGHT_INITIALIZERS:
        raise ValueError(f"kernel_initializer must be one of {WEIGHT_INITIALIZERS}, got {kernel_initializer!r}")
    if bias_initializer not in BIAS_INITIALIZERS:
        raise ValueError(f"bias_initializer must be one of {BIAS_INITIALIZERS}, got {bias_initializer!r}")


# ---- base class ----------------------------------------------------------------------------------

class Layer:
    """Base class: shape bookkeeping, parameters, dtype, config. Subclasses override the hooks."""

    def __init__(self, input_shape=None, name=None):
        self.name = name
        self.declared_input_shape = None if input_shape is None else tuple(int(v) for v in input_shape)
        self.input_shape = None
        self.output_shape = None
        self.dtype = np.dtype(np.float32)
        self.params = {}
        self.grads = {}
        self.built = False
        self._cache = None
        self.kernels = F

    # A module does not pickle, so a pickled layer names its backend instead (models travel by pickle,
    # e.g. to Dask workers, and deepcopy goes the same way).
    def __getstate__(self):
        return dict(self.__dict__, kernels=backend_name(self.kernels))

    def __setstate__(self, state):
        self.__dict__.update(state, kernels=kernel_module(state["kernels"]))

    # -- shapes and parameters --
    def compute_output_shape(self, input_shape):
        """Per-sample output shape for a per-sample input shape (default: unchanged)."""
        return tuple(input_shape)

    def build(self, input_shape, rng=None, dtype=None):
        """Fix the input shape, compute the output shape, create the parameters (drawn from `rng`).

        Building again with the same input shape keeps the existing parameters."""
        input_shape = tuple(int(v) for v in input_shape)
        if dtype is not None:
            self.astype(dtype)
        if self.built and input_shape == self.input_shape:
            return
        self.output_shape = tuple(self.compute_output_shape(input_shape))
        self.input_shape = input_shape
        self.params, self.grads = {}, {}
        self._create_parameters(np.random.default_rng() if rng is None else rng)
        self.built = True

    def _create_parameters(self, rng):
        """Hook: fill self.params from self.input_shape (layers without parameters do nothing)."""

    def astype(self, dtype):
        """Cast the parameters to float32/float64 (in place on the layer); returns self."""
        self.dtype = _float_dtype(dtype)
        self.params = {key: value.astype(self.dtype) for key, value in self.params.items()}
        self.grads = {}
        return self

    def count_params(self):
        """The number of trainable parameters."""
        return sum(int(p.size) for p in self.params.values())

    def parameters(self):
        """The parameter arrays, in a fixed order (the optimizer updates them in place)."""
        return list(self.params.values())

    def gradients(self):
        """The gradients of the last backward, in the order of parameters()."""
        return [self.grads[key] for key in self.params]

    def clear_cache(self):
        """Drop what the last training forward kept for backward."""
        self._cache = None

    # -- computation (subclasses) --
    def forward(self, x, training=False):
        """The layer's output for the batch x; training=True keeps what backward needs."""
        raise NotImplementedError

    def backward(self, grad):
        """dL/d(input) from grad = dL/d(output) of the last training forward; fills self.grads."""
        raise NotImplementedError

    def backward_params(self, grad):
        """backward for a network's first layer: fills self.grads, skips dL/dinput (returns None).
        Layers whose input gradient costs real work (Conv2D) override it."""
        self.backward(grad)

    def forward_inference(self, x, overwrite_input=False):
        """forward(x, training=False); with overwrite_input=True the caller no longer needs x, and
        an elementwise layer writes its result into x (a fresh array per layer costs page faults)."""
        return self.forward(x, training=False)

    def __call__(self, x, training=False):
        return self.forward(x, training)

    def _cached(self):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward needs a forward(x, training=True) first")
        return self._cache

    # -- serialisation --
    def get_config(self):
        """JSON-able constructor arguments; from_config(get_config()) rebuilds an equal layer."""
        config = {"name": self.name}
        if self.declared_input_shape is not None:
            config["input_shape"] = list(self.declared_input_shape)
        return config

    @classmethod
    def from_config(cls, config):
        """The layer get_config() describes (new parameters: load a checkpoint to restore weights)."""
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


# ---- convolution ---------------------------------------------------------------------------------

class Conv2D(Layer):
    """2-D convolution, NCHW: (N, C, H, W) -> (N, filters, OH, OW), weight (filters, C, kh, kw).

    padding: "valid", "same" (Keras: out = ceil(in / stride), odd pixel at the bottom/right), or an
    int / (h, w) pair of symmetric zero padding as in PyTorch. algo: "auto", "direct", "im2col".
    kernel_initializer: "pytorch" (U(+-1/sqrt(fan_in)), PyTorch's default), "he_uniform",
    "he_normal", "glorot_uniform", "glorot_normal"; bias_initializer: "pytorch" or "zeros".
    connections: optional bool array (filters, in_channels), a channel-connection table as in
    LeNet-5's C3 (LeCun et al. 1998, Table I): filter k sees input channel c only where it is True.
    The weights of unconnected pairs are zero, get zero gradient (so they stay zero under any
    optimizer, weight decay and momentum included) and are not counted by count_params().
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", use_bias=True, algo="auto",
                 kernel_initializer="pytorch", bias_initializer="pytorch", connections=None, input_shape=None,
                 name=None):
        super().__init__(input_shape, name)
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters < 1:
            raise ValueError(f"filters must be an int >= 1, got {filters!r}")
        if algo not in ("auto", "direct", "im2col"):
            raise ValueError(f"algo must be one of ('auto', 'direct', 'im2col'), got {algo!r}")
        _check_initializers(kernel_initializer, bias_initializer)
        self.filters = int(filters)
        self.kernel_size = _positive_pair("kernel_size", kernel_size)
        self.strides = _positive_pair("strides", strides)
        self.padding = _padding_spec(padding)
        self.use_bias = bool(use_bias)
        self.algo = algo
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.connections = _connection_table(connections, self.filters)
        self._pads = None        # ((top, bottom), (left, right)), fixed by build
        self._kernel_pad = None  # symmetric padding handed to the kernel
        self._pre_pad = None     # explicit np.pad widths when the padding is asymmetric, else None

    def compute_output_shape(self, input_shape):
        channels, height, width = _spatial_input("Conv2D", input_shape)
        if self.connections is not None and self.connections.shape[1] != channels:
            raise ValueError(f"connections has shape {self.connections.shape}, expected "
                             f"({self.filters}, {channels}) for inputs with {channels} channels")
        pads = _resolve_padding(self.padding, (height, width), self.kernel_size, self.strides)
        out_h = _out_size(height, *pads[0], self.kernel_size[0], self.strides[0], "Conv2D kernel height")
        out_w = _out_size(width, *pads[1], self.kernel_size[1], self.strides[1], "Conv2D kernel width")
        return (self.filters, out_h, out_w)

    def _create_parameters(self, rng):
        channels, height, width = self.input_shape
        self._set_padding(_resolve_padding(self.padding, (height, width), self.kernel_size, self.strides))
        kh, kw = self.kernel_size
        fan_in, fan_out = channels * kh * kw, self.filters * kh * kw
        weight = _initial_weight(self.kernel_initializer, (self.filters, channels, kh, kw), fan_in, fan_out,
                                 rng, self.dtype)
        if self.connections is not None:
            # Scale each filter to its true fan-in (the bounds of every initializer go as 1/sqrt(fan_in),
            # exactly for pytorch/he, nearly for glorot), then zero the unconnected channels.
            connected = np.maximum(self.connections.sum(axis=1), 1)
            weight *= np.sqrt(channels / connected).astype(self.dtype)[:, None, None, None]
            weight *= self._weight_mask()
        self.params["weight"] = weight
        if self.use_bias:
            self.params["bias"] = _initial_bias(self.bias_initializer, self.filters, fan_in, rng, self.dtype)

    def _set_padding(self, pads):
        """Symmetric padding goes to the C kernel; an asymmetric one ("same") is applied with np.pad."""
        self._pads = pads
        if pads[0][0] == pads[0][1] and pads[1][0] == pads[1][1]:
            self._kernel_pad, self._pre_pad = (pads[0][0], pads[1][0]), None
        else:
            self._kernel_pad, self._pre_pad = (0, 0), ((0, 0), (0, 0)) + pads

    def _weight_mask(self):
        """The connection table broadcast to the weight's shape (K, C, 1, 1), in the weight's dtype."""
        return self.connections.astype(self.dtype)[:, :, None, None]

    # The weight the convolution uses and the gradient the optimizer sees are formed in these two
    # methods only; a channel-connection table multiplies both by its mask.
    def effective_weight(self):
        """The (K, C, kh, kw) weight the convolution applies (unconnected channels zeroed)."""
        weight = self.params["weight"]
        return weight if self.connections is None else weight * self._weight_mask()

    def weight_gradient(self, grad_weight):
        """dL/d(weight) from dL/d(effective weight): zero where there is no connection."""
        return grad_weight if self.connections is None else grad_weight * self._weight_mask()

    def count_params(self):
        """Parameters that take part: with a connection table, only the connected weights."""
        if self.connections is None or not self.params:
            return super().count_params()
        kh, kw = self.kernel_size
        return int(self.connections.sum()) * kh * kw + (self.filters if self.use_bias else 0)

    def forward(self, x, training=False):
        if self._pre_pad is not None:
            x = np.pad(x, self._pre_pad)
        y = self.kernels.conv2d(x, self.effective_weight(), self.params.get("bias"), self.strides,
                                self._kernel_pad, algo=self.algo)
        self._cache = x if training else None
        return y

    def backward(self, grad):
        return self._backward(grad, need_grad_x=True)

    def backward_params(self, grad):
        self._backward(grad, need_grad_x=False)

    def _backward(self, grad, need_grad_x):
        x = self._cached()
        grad_x, grad_w, grad_b = self.kernels._conv2d_backward(
            grad, x, self.effective_weight(), self.strides, self._kernel_pad, self.algo, need_grad_x)
        self.grads["weight"] = self.weight_gradient(grad_w)
        if self.use_bias:
            self.grads["bias"] = grad_b
        if grad_x is not None and self._pre_pad is not None:
            (top, bottom), (left, right) = self._pads
            grad_x = grad_x[:, :, top:grad_x.shape[2] - bottom, left:grad_x.shape[3] - right]
        return grad_x

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=list(self.kernel_size), strides=list(self.strides),
                      padding=self.padding if isinstance(self.padding, str) else list(self.padding),
                      use_bias=self.use_bias, algo=self.algo, kernel_initializer=self.kernel_initializer,
                      bias_initializer=self.bias_initializer)
        if self.connections is not None:
            config["connections"] = self.connections.tolist()
        return config


def _connection_table(connections, filters):
    """A connection table as a read-only bool array (filters, in_channels), or None."""
    if connections is None:
        return None
    table = np.array(connections)
    if table.ndim != 2 or table.shape[0] != filters or table.shape[1] < 1:
        raise ValueError(f"connections must be a bool array of shape (filters={filters}, in_channels), "
                         f"got shape {table.shape}")
    if table.dtype != bool:
        if table.dtype.kind not in "iuf" or not np.isin(table, (0, 1)).all():
            raise TypeError(f"connections must hold booleans (or the numbers 0 and 1), got {table.dtype} "
                            f"values {np.unique(table)[:5].tolist()}")
        table = table.astype(bool)
    table.flags.writeable = False
    return table


# ---- pooling -------------------------------------------------------------------------------------

class _Pool2D(Layer):
    """Shared shape logic of MaxPool2D and AvgPool2D."""

    def __init__(self, pool_size=2, strides=None, padding="valid", input_shape=None, name=None):
        super().__init__(input_shape, name)
        self.pool_size = _positive_pair("pool_size", pool_size)
        self.strides = self.pool_size if strides is None else _positive_pair("strides", strides)
        self.padding = _padding_spec(padding)
        if isinstance(self.padding, tuple) and (self.padding[0] > self.pool_size[0] // 2
                                                or self.padding[1] > self.pool_size[1] // 2):
            raise ValueError(f"padding {self.padding} must be at most half of pool_size {self.pool_size}")
        self._pads = None
        self._symmetric = True

    def compute_output_shape(self, input_shape):
        channels, height, width = _spatial_input(type(self).__name__, input_shape)
        pads = _resolve_padding(self.padding, (height, width), self.pool_size, self.strides)
        out_h = _out_size(height, *pads[0], self.pool_size[0], self.strides[0], "pool_size height")
        out_w = _out_size(width, *pads[1], self.pool_size[1], self.strides[1], "pool_size width")
        return (channels, out_h, out_w)

    def _create_parameters(self, rng):
        self._pads = _resolve_padding(self.padding, self.input_shape[1:], self.pool_size, self.strides)
        self._symmetric = self._pads[0][0] == self._pads[0][1] and self._pads[1][0] == self._pads[1][1]

    def _crop(self, grad_x):
        (top, bottom), (left, right) = self._pads
        return grad_x[:, :, top:grad_x.shape[2] - bottom, left:grad_x.shape[3] - right]

    def get_config(self):
        config = super().get_config()
        config.update(pool_size=list(self.pool_size), strides=list(self.strides),
                      padding=self.padding if isinstance(self.padding, str) else list(self.padding))
        return config


class MaxPool2D(_Pool2D):
    """Max pooling. padding: "valid", "same" (Keras; padded cells never win) or symmetric int(s)."""

    def forward(self, x, training=False):
        if self._symmetric:
            y, indices = self.kernels.max_pool2d(x, self.pool_size, self.strides,
                                                 (self._pads[0][0], self._pads[1][0]))
            padded_shape = x.shape
        else:  # asymmetric "same": pad with -inf explicitly, then pool without padding
            x = np.pad(x, ((0, 0), (0, 0)) + self._pads, constant_values=-np.inf)
            y, indices = self.kernels.max_pool2d(x, self.pool_size, self.strides, 0)
            padded_shape = x.shape
        self._cache = (indices, padded_shape) if training else None
        return y

    def forward_inference(self, x, overwrite_input=False):
        if self.kernels is not F or not self._symmetric:
            return self.forward(x)
        # no argmax indices at inference: the same values, without writing an int64 per output
        return F._max_pool2d_values(x, self.pool_size, self.strides, (self._pads[0][0], self._pads[1][0]))

    def backward(self, grad):
        indices, padded_shape = self._cached()
        grad_x = self.kernels.max_pool2d_backward(grad, indices, padded_shape)
        return grad_x if self._symmetric else self._crop(grad_x)


class AvgPool2D(_Pool2D):
    """Average pooling.

    Explicit int padding counts the zeros in the divisor (PyTorch's count_include_pad=True);
    "same" divides by the number of real input cells in each window, as Keras does.
    """

    def _create_parameters(self, rng):
        super()._create_parameters(rng)
        self._divisor_scale = None
        if self.padding == "same" and any(self._pads[0] + self._pads[1]):
            # fraction of each window that lies inside the input: mean over padded window / this = Keras mean
            ones = np.ones((1, 1) + tuple(self.input_shape[1:]))
            self._divisor_scale = self._pool(ones)[0, 0]

    def _pool(self, x):
        if self._symmetric:
            return self.kernels.avg_pool2d(x, self.pool_size, self.strides,
                                           (self._pads[0][0], self._pads[1][0]))
        return self.kernels.avg_pool2d(np.pad(x, ((0, 0), (0, 0)) + self._pads), self.pool_size, self.strides,
                                       0)

    def forward(self, x, training=False):
        y = self._pool(x)
        if self._divisor_scale is not None:
            y /= self._divisor_scale.astype(y.dtype)
        self._cache = x.shape if training else None
        return y

    def backward(self, grad):
        input_shape = self._cached()
        if self._divisor_scale is not None:
            grad = grad / self._divisor_scale.astype(grad.dtype)
        if self._symmetric:
            return self.kernels.avg_pool2d_backward(grad, input_shape, self.pool_size, self.strides,
                                         (self._pads[0][0], self._pads[1][0]))
        (top, bottom), (left, right) = self._pads
        padded_shape = input_shape[:2] + (input_shape[2] + top + bottom, input_shape[3] + left + right)
        grad_x = self.kernels.avg_pool2d_backward(grad, padded_shape, self.pool_size, self.strides, 0)
        return self._crop(grad_x)


# ---- activations and reshaping -------------------------------------------------------------------

class ReLU(Layer):
    """max(x, 0)."""

    def forward(self, x, training=False):
        y = self.kernels.relu(x)
        self._cache = y if training else None
        return y

    def forward_inference(self, x, overwrite_input=False):
        return self.kernels.relu(x, out=x) if overwrite_input and x.flags.c_contiguous else self.forward(x)

    def backward(self, grad):
        return self.kernels.relu_backward(grad, self._cached())


class LeakyReLU(Layer):
    """x for x > 0, negative_slope * x otherwise (default slope 0.01, PyTorch's)."""

    def __init__(self, negative_slope=0.01, input_shape=None, name=None):
        super().__init__(input_shape, name)
        self.negative_slope = float(negative_slope)

    def forward(self, x, training=False):
        positive = x > 0
        y = np.where(positive, x, x * np.asarray(self.negative_slope, x.dtype))
        self._cache = positive if training else None
        return y

    def forward_inference(self, x, overwrite_input=False):
        if not overwrite_input:
            return self.forward(x)
        # the same products as forward's np.where, written only where x is not positive (NaN included)
        return np.multiply(x, np.asarray(self.negative_slope, x.dtype), out=x, where=~(x > 0))

    def backward(self, grad):
        slope = np.where(self._cached(), grad.dtype.type(1), grad.dtype.type(self.negative_slope))
        return grad * slope

    def get_config(self):
        config = super().get_config()
        config["negative_slope"] = self.negative_slope
        return config


class Sigmoid(Layer):
    """1 / (1 + exp(-x)), computed without overflow for large |x|."""

    def forward(self, x, training=False):
        e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
        y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        self._cache = y if training else None
        return y

    def backward(self, grad):
        y = self._cached()
        return grad * y * (1 - y)


class Tanh(Layer):
    def forward(self, x, training=False):
        y = np.tanh(x)
        self._cache = y if training else None
        return y

    def forward_inference(self, x, overwrite_input=False):
        return np.tanh(x, out=x) if overwrite_input else self.forward(x)

    def backward(self, grad):
        y = self._cached()
        return grad * (1 - y * y)


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1*d2*...)."""

    def compute_output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def forward(self, x, training=False):
        self._cache = x.shape if training else None
        return x.reshape(x.shape[0], -1)

    def backward(self, grad):
        return grad.reshape(self._cached())


class Permute(Layer):
    """Reorder the sample axes, as keras.layers.Permute: dims is a permutation of 1..ndim (the batch axis 0
    stays first), and output axis i is input axis dims[i - 1]. E.g. Permute((3, 1, 2)) turns channels-last
    (N, H, W, C) images into the (N, C, H, W) the convolutions take. The backward is the inverse transpose."""

    def __init__(self, dims, input_shape=None, name=None):
        super().__init__(input_shape, name)
        self._set_dims(_permutation("dims", dims))

    def _set_dims(self, dims):
        self.dims = dims
        self._axes = (0,) + dims
        self._inverse_axes = tuple(int(axis) for axis in np.argsort(self._axes))

    def compute_output_shape(self, input_shape):
        if len(input_shape) != len(self.dims):
            raise ValueError(f"Permute(dims={self.dims}) expects inputs with {len(self.dims)} axes per sample, "
                             f"got {tuple(input_shape)}")
        return tuple(input_shape[axis - 1] for axis in self.dims)

    def forward(self, x, training=False):
        self._cache = self._inverse_axes if training else None
        # contiguous, because the kernels that follow read C-contiguous arrays (else each copies it)
        return np.ascontiguousarray(x.transpose(self._axes))

    def backward(self, grad):
        return np.ascontiguousarray(grad.transpose(self._cached()))

    def get_config(self):
        config = super().get_config()
        config["dims"] = list(self.dims)
        return config


def _permutation(name, dims):
    """dims as a tuple of ints that permutes 1..len(dims) (Keras's Permute convention)."""
    if isinstance(dims, (str, bytes)) or not hasattr(dims, "__len__"):
        raise TypeError(f"{name} must be a tuple of ints (a permutation of 1..ndim), got {dims!r}")
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in dims):
        raise TypeError(f"{name} must hold ints (a permutation of 1..ndim), got {dims!r}")
    dims = tuple(int(v) for v in dims)
    if not dims or sorted(dims) != list(range(1, len(dims) + 1)):
        raise ValueError(f"{name} must be a permutation of 1..{len(dims) or 'ndim'} (the sample axes; the batch "
                         f"axis 0 stays first), got {dims}")
    return dims


class Dense(Layer):
    """Fully connected: (N, in) -> (N, units), y = x @ weight + bias, weight (in, units).

    gemm: "fastconv" (default: the package's own C GEMM, the one im2col uses) or "numpy" (NumPy's BLAS).
    Why not NumPy's by default: after each call OpenBLAS's worker threads keep spinning on the cores
    that the next conv kernel's OpenMP threads need, and every kernel of the step then waits for them
    (docs/performance.md has the measurement). Initializers as in Conv2D (fan_in = in, fan_out = units).
    """

    def __init__(self, units, use_bias=True, kernel_initializer="pytorch", bias_initializer="pytorch",
                 gemm="fastconv", input_shape=None, name=None):
        super().__init__(input_shape, name)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"units must be an int >= 1, got {units!r}")
        if gemm not in ("numpy", "fastconv"):
            raise ValueError(f"gemm must be 'numpy' or 'fastconv', got {gemm!r}")
        _check_initializers(kernel_initializer, bias_initializer)
        self.units = int(units)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.gemm = gemm

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1 or input_shape[0] < 1:
            raise ValueError(f"Dense expects flat inputs (features,) per sample, got {tuple(input_shape)}; "
                             f"put a Flatten() layer before it")
        return (self.units,)

    def _create_parameters(self, rng):
        fan_in = self.input_shape[0]
        self.params["weight"] = _initial_weight(self.kernel_initializer, (fan_in, self.units), fan_in,
                                                self.units, rng, self.dtype)
        if self.use_bias:
            self.params["bias"] = _initial_bias(self.bias_initializer, self.units, fan_in, rng, self.dtype)

    def _matmul(self, a, b):
        return self.kernels.gemm(a, b) if self.gemm == "fastconv" else a @ b

    def forward(self, x, training=False):
        weight = self.params["weight"]
        y = self._matmul(x, weight.astype(x.dtype, copy=False))
        if self.use_bias:
            y += self.params["bias"]
        self._cache = x if training else None
        return y

    def backward(self, grad):
        x = self._cached()
        weight = self.params["weight"]
        self.grads["weight"] = self._matmul(x.T, grad).astype(weight.dtype, copy=False)
        if self.use_bias:
            self.grads["bias"] = grad.sum(axis=0, dtype=weight.dtype)
        return self._matmul(grad, weight.T.astype(grad.dtype, copy=False))

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, use_bias=self.use_bias, kernel_initializer=self.kernel_initializer,
                      bias_initializer=self.bias_initializer, gemm=self.gemm)
        return config


class Dropout(Layer):
    """Inverted dropout: in training, zero each value with probability `rate` and scale the rest by
    1 / (1 - rate); the identity at inference. Draws from the rng the model seeds (or `seed`)."""

    def __init__(self, rate, seed=None, input_shape=None, name=None):
        super().__init__(input_shape, name)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def _create_parameters(self, rng):
        if self.seed is None:
            self.rng = rng

    def forward(self, x, training=False):
        if not training or self.rate == 0.0:
            self._cache = None if not training else np.asarray(1, x.dtype)
            return x
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.rate
        scale = keep * x.dtype.type(1.0 / (1.0 - self.rate))
        self._cache = scale
        return x * scale

    def backward(self, grad):
        return grad * self._cached()

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed)
        return config


# ---- registry (used by save/load) ----------------------------------------------------------------

_REGISTRY = {cls.__name__: cls for cls in (Conv2D, MaxPool2D, AvgPool2D, ReLU, LeakyReLU, Sigmoid, Tanh,
                                           Flatten, Permute, Dense, Dropout)}


def get(class_name):
    """The layer class called `class_name` (ValueError if fastconv has none)."""
    try:
        return _REGISTRY[class_name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown layer class {class_name!r}; known: {sorted(_REGISTRY)}") from None


def register(cls):
    """Make a Layer subclass loadable from checkpoints (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register expects a Layer subclass, got {cls!r}")
    _REGISTRY[cls.__name__] = cls
    return cls


def serialize(layer):
    """{"class_name": ..., "config": layer.get_config()}: a layer's record in a checkpoint."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(record):
    """A layer from {"class_name": ..., "config": {...}} (ValueError on anything malformed)."""
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise ValueError(f"a layer record must be a dict with 'class_name' and 'config', got {record!r}")
    cls = get(record.get("class_name"))
    config = dict(record["config"])
    for key in ("kernel_size", "strides", "pool_size", "padding", "input_shape"):
        if isinstance(config.get(key), list):
            config[key] = tuple(config[key])
    try:
        return cls.from_config(config)
    except TypeError as exc:
        raise ValueError(f"bad config for {cls.__name__}: {exc}") from None
