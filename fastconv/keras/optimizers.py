"""keras.optimizers: SGD, Adam and RMSprop with Keras's argument names, defaults and update rules.

Each subclasses the fastconv.optim optimizer of the same name (its step loop, per-parameter state and
in-place updates) and replaces the update rule by Keras's where the two differ:
SGD keeps a velocity v = momentum * v - lr * g (PyTorch accumulates gradients instead: the same
steps at a fixed rate, not when the rate changes); Adam adds epsilon (1e-7) to sqrt(v) before the
bias correction; RMSprop divides by sqrt(mean square + epsilon). `learning_rate` and Keras 2's
`lr` both set the rate; Keras 2's `decay` divides it by 1 + decay * iterations.
"""
import numpy as np

from .. import optim
from ._compat import reject_non_default, reject_unknown, unsupported

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "get", "serialize", "deserialize"]


class Optimizer:
    """Mixin of the Keras optimizers: Keras's learning-rate arguments, config and state for save/load."""

    def _keras_options(self, owner, learning_rate, kwargs):
        """The learning rate (from learning_rate or lr) after checking Keras's common arguments."""
        lr = kwargs.pop("lr", None)
        self.decay = float(kwargs.pop("decay", 0.0) or 0.0)
        self.name = kwargs.pop("name", owner)
        for ignored in ("jit_compile", "loss_scale_factor"):  # compilation/mixed-precision settings: no effect here
            kwargs.pop(ignored, None)
        reject_non_default(owner, {key: (kwargs.pop(key, default), default) for key, default in (
            ("clipnorm", None), ("clipvalue", None), ("global_clipnorm", None), ("weight_decay", None),
            ("use_ema", False), ("gradient_accumulation_steps", None))},
            {"clipnorm": "gradient clipping is not implemented", "clipvalue": "gradient clipping is not implemented",
             "global_clipnorm": "gradient clipping is not implemented",
             "weight_decay": "add an L2 penalty with kernel_regularizer=regularizers.l2(...) instead",
             "use_ema": "it supports use_ema=False only",
             "gradient_accumulation_steps": "it steps after every batch"})
        reject_unknown(owner, kwargs)
        if self.decay < 0:
            raise ValueError(f"{owner}: decay must be >= 0, got {self.decay!r}")
        return learning_rate if lr is None else lr

    @property
    def learning_rate(self):
        return self.lr

    @learning_rate.setter
    def learning_rate(self, value):
        value = float(value)
        if not value >= 0.0:
            raise ValueError(f"learning_rate must be >= 0, got {value!r}")
        self.lr = value

    def _current_lr(self):
        """The rate of this step (iterations counts it already): Keras 2's decay, else learning_rate."""
        return self.lr / (1.0 + self.decay * (self.iterations - 1)) if self.decay else self.lr

    def keras_config(self):
        config = {"name": self.name, "learning_rate": self.lr}
        if self.decay:
            config["decay"] = self.decay
        return config

    def state_arrays(self):
        """{name: array} of the per-parameter state and the step count (empty before the first step)."""
        if self._state is None:
            return {}
        arrays = {"iterations": np.array(self.iterations)}
        for i, state in enumerate(self._state):
            arrays.update({f"{i}.{key}": value for key, value in state.items()})
        return arrays

    def restore_state(self, arrays, params):
        """Continue from state_arrays() saved for these parameters (ValueError if they do not match)."""
        if not arrays:
            return
        self._state = [self._new_state(p) for p in params]
        for i, state in enumerate(self._state):
            for key, value in state.items():
                stored = arrays.get(f"{i}.{key}")
                if stored is None or stored.shape != value.shape:
                    raise ValueError(f"the saved optimizer state does not match the model (slot {i}.{key})")
                value[...] = stored
        self._shapes = [(p.shape, p.dtype) for p in params]
        self.iterations = int(arrays["iterations"])


class SGD(Optimizer, optim.SGD):
    """keras.optimizers.SGD(learning_rate=0.01, momentum=0.0, nesterov=False)."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        learning_rate = self._keras_options("SGD", learning_rate, kwargs)
        optim.SGD.__init__(self, lr=learning_rate, momentum=momentum)
        self.nesterov = bool(nesterov)  # Keras allows nesterov without momentum (then it is plain SGD)

    def _new_state(self, p):
        return {"velocity": np.zeros_like(p)} if self.momentum else {}

    def _update(self, p, g, state):
        lr = self._current_lr()
        if not self.momentum:
            p -= lr * g
            return
        velocity = state["velocity"]
        velocity *= self.momentum
        velocity -= lr * g
        p += self.momentum * velocity - lr * g if self.nesterov else velocity

    def keras_config(self):
        return dict(super().keras_config(), momentum=self.momentum, nesterov=self.nesterov)


class Adam(Optimizer, optim.Adam):
    """keras.optimizers.Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False)."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, **kwargs):
        learning_rate = self._keras_options("Adam", learning_rate, kwargs)
        optim.Adam.__init__(self, lr=learning_rate, beta1=beta_1, beta2=beta_2, eps=epsilon)
        self.amsgrad = bool(amsgrad)

    def _new_state(self, p):
        state = {"m": np.zeros_like(p), "v": np.zeros_like(p)}
        if self.amsgrad:
            state["v_hat"] = np.zeros_like(p)
        return state

    def _update(self, p, g, state):
        m, v = state["m"], state["v"]
        m += (1.0 - self.beta1) * (g - m)
        v += (1.0 - self.beta2) * (g * g - v)
        if self.amsgrad:
            np.maximum(state["v_hat"], v, out=state["v_hat"])
            v = state["v_hat"]
        t = self.iterations
        alpha = self._current_lr() * np.sqrt(1.0 - self.beta2 ** t) / (1.0 - self.beta1 ** t)
        denom = np.sqrt(v)
        denom += self.eps
        p -= alpha * (m / denom)

    def keras_config(self):
        return dict(super().keras_config(), beta_1=self.beta1, beta_2=self.beta2, epsilon=self.eps,
                    amsgrad=self.amsgrad)


class RMSprop(Optimizer, optim.RMSprop):
    """keras.optimizers.RMSprop(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False)."""

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, **kwargs):
        learning_rate = self._keras_options("RMSprop", learning_rate, kwargs)
        optim.RMSprop.__init__(self, lr=learning_rate, alpha=rho, eps=epsilon, momentum=momentum)
        self.centered = bool(centered)

    def _new_state(self, p):
        state = optim.RMSprop._new_state(self, p)
        if self.centered:
            state["mean_grad"] = np.zeros_like(p)
        return state

    def _update(self, p, g, state):
        square_avg = state["square_avg"]
        square_avg *= self.alpha
        square_avg += (1.0 - self.alpha) * (g * g)
        denom = square_avg + self.eps
        if self.centered:
            mean_grad = state["mean_grad"]
            mean_grad *= self.alpha
            mean_grad += (1.0 - self.alpha) * g
            denom -= mean_grad * mean_grad
        increment = self._current_lr() * g / np.sqrt(denom)
        if self.momentum:
            buffer = state["buffer"]
            buffer *= self.momentum
            buffer += increment
            increment = buffer
        p -= increment

    def keras_config(self):
        return dict(super().keras_config(), rho=self.alpha, momentum=self.momentum, epsilon=self.eps,
                    centered=self.centered)


_CLASSES = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop}
_NOT_SUPPORTED = ("Adagrad", "Adadelta", "Adamax", "Nadam", "Ftrl", "AdamW", "Lion", "Adafactor", "LossScaleOptimizer")


def __getattr__(name):
    if name in _NOT_SUPPORTED:
        raise unsupported(f"the optimizer {name}", "it supports SGD, Adam and RMSprop")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get(identifier):
    """An optimizer from a Keras name ('sgd', 'adam', 'rmsprop', Keras's defaults) or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, optim.Optimizer):
        raise TypeError(f"compile needs a fastconv.keras.optimizers optimizer (Keras's arguments and update "
                        f"rules), got fastconv.optim.{type(identifier).__name__}")
    if isinstance(identifier, str) and identifier.lower() in _CLASSES:
        return _CLASSES[identifier.lower()]()
    raise unsupported(f"the optimizer {identifier!r}", "it supports 'sgd', 'adam' and 'rmsprop' "
                                                       "(or SGD, Adam, RMSprop objects)")


def serialize(optimizer):
    return {"class_name": type(optimizer).__name__, "config": optimizer.keras_config()}


def deserialize(record):
    try:
        return _CLASSES[record["class_name"].lower()](**record["config"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a fastconv.keras optimizer record: {record!r} ({exc})") from None
