"""keras.regularizers: L1 and L2 weight penalties for kernel_regularizer= / bias_regularizer=.

The penalty of every regularized weight is added to the training and evaluation loss, and its
gradient (l1 * sign(w) + 2 * l2 * w) to the weight's gradient before the optimizer step, as Keras does.
"""
import numpy as np

from ._compat import unsupported

__all__ = ["Regularizer", "L1L2", "L1", "L2", "l1", "l2", "l1_l2", "get"]


class Regularizer:
    """Base class: penalty(weights) via __call__, and its gradient."""

    def __call__(self, weights):
        raise NotImplementedError

    def gradient(self, weights):
        raise NotImplementedError


class L1L2(Regularizer):
    """l1 * sum(|w|) + l2 * sum(w^2)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = float(l1), float(l2)
        if not (self.l1 >= 0 and self.l2 >= 0):
            raise ValueError(f"l1 and l2 must be >= 0, got l1={l1!r}, l2={l2!r}")

    def __call__(self, weights):
        weights = np.asarray(weights, dtype=np.float64)
        return self.l1 * float(np.abs(weights).sum()) + self.l2 * float(np.square(weights).sum())

    def gradient(self, weights):
        grad = (2.0 * self.l2) * weights
        if self.l1:
            grad += self.l1 * np.sign(weights)
        return grad.astype(weights.dtype, copy=False)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}

    def __repr__(self):
        return f"L1L2(l1={self.l1!r}, l2={self.l2!r})"


def L1(l1=0.01):  # noqa: N802 - Keras's class name
    return L1L2(l1=l1)


def L2(l2=0.01):  # noqa: N802 - Keras's class name
    return L1L2(l2=l2)


l1, l2 = L1, L2


def l1_l2(l1=0.01, l2=0.01):  # noqa: F811 - Keras's signature
    return L1L2(l1=l1, l2=l2)


def get(identifier):
    """A regularizer from None, an instance, a name ('l1', 'l2', 'l1_l2' with Keras's 0.01) or a saved config."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict):
        return L1L2(**identifier.get("config", {}))
    names = {"l1": L1, "l2": L2, "l1_l2": l1_l2}
    if isinstance(identifier, str) and identifier.lower() in names:
        return names[identifier.lower()]()
    raise unsupported(f"regularizer {identifier!r}", "it supports regularizers.l1, l2 and l1_l2 (or their names)")
