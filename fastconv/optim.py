"""Optimizers: SGD (momentum, Nesterov, weight decay), Adam, RMSprop; and a cosine learning-rate decay.

Same update rules and defaults as PyTorch's torch.optim (so a recipe carries over). An optimizer
is created without parameters, Keras-style, and handed to ``Sequential.fit``; ``step(params, grads)``
updates each parameter array IN PLACE (its dtype, float32 or float64, is kept; gradients are cast to
it). The per-parameter state (momentum buffers, moments) is created on the first step and matched
to parameters by position; it is reset if the parameter shapes change.
"""
import math

import numpy as np

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "get", "cosine_decay"]


def _non_negative(name, value):
    value = float(value)
    if not value >= 0.0:  # also refuses NaN
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


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
        shapes = [(p.shape, p.dtype) for p in params]
        if shapes != self._shapes:
            self._state = [self._new_state(p) for p in params]
            self._shapes = shapes
            self.iterations = 0
        for p, g in zip(params, grads):
            if g.shape != p.shape:
                raise ValueError(f"gradient shape {g.shape} does not match parameter shape {p.shape}")
        self.iterations += 1
        for p, g, state in zip(params, grads, self._state):
            self._update(p, np.asarray(g, dtype=p.dtype), state)

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
            state[index][key] = value.astype(params[index].dtype)
        expected = [set(self._new_state(p)) for p in params]
        if [set(entry) for entry in state] != expected:
            raise ValueError(f"the optimizer state holds {sorted(arrays)[:4]}..., not the state of a "
                             f"{type(self).__name__} over these parameters")
        self._state = state
        self._shapes = [(p.shape, p.dtype) for p in params]
        self.iterations = int(iterations)

    def _decayed(self, p, g):
        """g + weight_decay * p (L2 penalty folded into the gradient, as torch.optim does)."""
        return g + self.weight_decay * p if self.weight_decay else g

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
        g = self._decayed(p, g)
        if self.momentum:
            buffer = state["buffer"]
            buffer *= self.momentum
            buffer += g
            g = g + self.momentum * buffer if self.nesterov else buffer
        p -= self.lr * g

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
        g = self._decayed(p, g)
        m, v = state["m"], state["v"]
        m *= self.beta1
        m += (1.0 - self.beta1) * g
        v *= self.beta2
        v += (1.0 - self.beta2) * (g * g)
        t = self.iterations
        step_size = self.lr / (1.0 - self.beta1 ** t)
        denom = np.sqrt(v / (1.0 - self.beta2 ** t))
        denom += self.eps
        p -= step_size * (m / denom)

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
        g = self._decayed(p, g)
        square_avg = state["square_avg"]
        square_avg *= self.alpha
        square_avg += (1.0 - self.alpha) * (g * g)
        denom = np.sqrt(square_avg)
        denom += self.eps
        if self.momentum:
            buffer = state["buffer"]
            buffer *= self.momentum
            buffer += g / denom
            p -= self.lr * buffer
        else:
            p -= self.lr * (g / denom)

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
