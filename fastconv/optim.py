"""Optimizers: SGD (momentum, Nesterov, weight decay), Adam, RMSprop; and a cosine learning-rate decay.

Same update rules and defaults as PyTorch's torch.optim (so a recipe carries over). An optimizer
is created without parameters, Keras-style, and handed to ``Sequential.fit``; ``step(params, grads)``
updates each parameter array IN PLACE (a C-contiguous float32 or float64 array, whose dtype is kept;
gradients are cast to it), one C call per parameter (src_c/optim.c). The per-parameter state (momentum
buffers, moments) is created on the first step and matched to parameters by position; it is reset if
the parameter shapes change.
"""
import math

import numpy as np

from . import _kernels, functional

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "get", "cosine_decay"]


def _non_negative(name, value):
    value = float(value)
    if not value >= 0.0:  # also refuses NaN
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def _checked_pair(index, p, g):
    """The gradient of params[index] as the C step takes it (C-contiguous, p's dtype), after checking
    that p is an array the step can update in place."""
    if not isinstance(p, np.ndarray) or p.dtype not in (np.float32, np.float64):
        raise TypeError(f"params[{index}] must be a float32 or float64 numpy array, got "
                        f"{getattr(p, 'dtype', type(p).__name__)}")
    if not (p.flags.c_contiguous and p.flags.writeable):
        raise ValueError(f"params[{index}] must be a writeable C-contiguous array (it is updated in place)")
    g = np.ascontiguousarray(g, dtype=p.dtype)
    if g.shape != p.shape:
        raise ValueError(f"gradient shape {g.shape} does not match parameter shape {p.shape}")
    return g


class Optimizer:
    """Base class: learning rate, weight decay, lazily created per-parameter state."""

    def __init__(self, lr, weight_decay=0.0):
        self.lr = _non_negative("lr", lr)
        self.weight_decay = _non_negative("weight_decay", weight_decay)
        self.iterations = 0
        self._state = None
        self._shapes = None

    def reset(self):
        """Forget all state (momentum buffers, moments, step count)."""
        self.iterations = 0
        self._state = None
        self._shapes = None

    def step(self, params, grads):
        """One update of every array in `params` (in place) from the matching `grads`."""
        params, grads = list(params), list(grads)
        if len(params) != len(grads):
            raise ValueError(f"step needs one gradient per parameter, got {len(params)} parameters "
                             f"and {len(grads)} gradients")
        grads = [_checked_pair(i, p, g) for i, (p, g) in enumerate(zip(params, grads))]
        shapes = [(p.shape, p.dtype) for p in params]
        if shapes != self._shapes:
            self._state = [self._new_state(p) for p in params]
            self._shapes = shapes
            self.iterations = 0
        self.iterations += 1
        for p, g, state in zip(params, grads, self._state):
            self._update(p, g, state)

    def state_arrays(self):
        """The per-parameter state as {"<parameter index>.<name>": array} (empty before the first step)."""
        return {f"{i}.{key}": value for i, state in enumerate(self._state or ()) for key, value in state.items()}

    def load_state(self, params, iterations, arrays):
        """Take over state saved by state_arrays() (and the step count) for `params`, so the next step is
        the one the saved optimizer would have made. ValueError if the arrays do not fit the parameters."""
        params = list(params)
        if not arrays and not iterations:  # saved before the first step
            self.reset()
            return
        state = [dict() for _ in params]
        for name, value in arrays.items():
            index, key = name.split(".", 1)
            index = int(index)
            if index >= len(params) or value.shape != params[index].shape:
                raise ValueError(f"optimizer state {name} (shape {value.shape}) does not fit the model's parameters")
            state[index][key] = np.ascontiguousarray(value, dtype=params[index].dtype)
        expected = [set(self._new_state(p)) for p in params]
        if [set(entry) for entry in state] != expected:
            raise ValueError(f"the optimizer state holds {sorted(arrays)[:4]}..., not the state of a "
                             f"{type(self).__name__} over these parameters")
        self._state = state
        self._shapes = [(p.shape, p.dtype) for p in params]
        self.iterations = int(iterations)

    def _new_state(self, p):
        return {}

    def _update(self, p, g, state):
        raise NotImplementedError

    def get_config(self):
        return {"lr": self.lr, "weight_decay": self.weight_decay}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """p -= lr * d, d = g (+ momentum buffer b = momentum * b + g; Nesterov: d = g + momentum * b)."""

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.momentum = _non_negative("momentum", momentum)
        if nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs a momentum > 0")
        self.nesterov = bool(nesterov)

    def _new_state(self, p):
        return {"buffer": np.zeros_like(p)} if self.momentum else {}

    def _update(self, p, g, state):
        _kernels.sgd_step(p, g, state.get("buffer"), self.lr, self.weight_decay, self.momentum, self.nesterov,
                          functional._num_threads)

    def get_config(self):
        return dict(super().get_config(), momentum=self.momentum, nesterov=self.nesterov)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, PyTorch's defaults."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ValueError(f"beta1 and beta2 must be in [0, 1), got {beta1!r}, {beta2!r}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), _non_negative("eps", eps)

    def _new_state(self, p):
        return {"m": np.zeros_like(p), "v": np.zeros_like(p)}

    def _update(self, p, g, state):
        t = self.iterations
        _kernels.adam_step(p, g, state["m"], state["v"], self.weight_decay, self.beta1, self.beta2, self.eps,
                           self.lr / (1.0 - self.beta1 ** t), 1.0 - self.beta2 ** t, functional._num_threads)

    def get_config(self):
        return dict(super().get_config(), beta1=self.beta1, beta2=self.beta2, eps=self.eps)


class RMSprop(Optimizer):
    """RMSprop: s = alpha * s + (1 - alpha) g^2; p -= lr * g / (sqrt(s) + eps) (optionally with momentum)."""

    def __init__(self, lr=0.01, alpha=0.99, eps=1e-8, momentum=0.0, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"alpha must be in [0, 1), got {alpha!r}")
        self.alpha, self.eps = float(alpha), _non_negative("eps", eps)
        self.momentum = _non_negative("momentum", momentum)

    def _new_state(self, p):
        state = {"square_avg": np.zeros_like(p)}
        if self.momentum:
            state["buffer"] = np.zeros_like(p)
        return state

    def _update(self, p, g, state):
        _kernels.rmsprop_step(p, g, state["square_avg"], state.get("buffer"), self.lr, self.weight_decay,
                              self.alpha, self.eps, self.momentum, functional._num_threads)

    def get_config(self):
        return dict(super().get_config(), alpha=self.alpha, eps=self.eps, momentum=self.momentum)


_OPTIMIZERS = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop}


def get(name, **kwargs):
    """An optimizer from its name ("sgd", "adam", "rmsprop") and keyword arguments."""
    try:
        cls = _OPTIMIZERS[name.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown optimizer {name!r}; known: {sorted(_OPTIMIZERS)}") from None
    return cls(**kwargs)


def cosine_decay(initial_lr, epochs, final_lr=0.0):
    """lr_schedule for Sequential.fit: epoch e of `epochs` trains at
    final_lr + (initial_lr - final_lr) * (1 + cos(pi * e / epochs)) / 2, so from initial_lr down towards final_lr.

    Why `fastconv train` uses it by default: at a constant lr 0.05 LeNet-5's test accuracy swings by about
    +-0.5% from epoch to epoch, and the last epoch lands anywhere in that band; the decay settles it at the top.
    """
    initial_lr, final_lr = _non_negative("initial_lr", initial_lr), _non_negative("final_lr", final_lr)
    if isinstance(epochs, bool) or int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
    epochs = int(epochs)

    def schedule(epoch):
        return final_lr + (initial_lr - final_lr) * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))

    return schedule
