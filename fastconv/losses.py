"""Loss functions of the training API.

The classifier loss is softmax + cross-entropy fused: from raw scores (logits) straight to the mean
loss over the batch and its gradient, ``(softmax(logits) - onehot(labels)) / N``. The log-sum-exp is
taken after subtracting each row's maximum, so huge logits neither overflow nor lose the loss.
"""
import numpy as np

__all__ = ["softmax", "log_softmax", "softmax_cross_entropy", "SoftmaxCrossEntropy", "get"]


def log_softmax(logits):
    """log(softmax(logits)) along the last axis, stable for any finite logits."""
    logits = np.asarray(logits)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits):
    """Class probabilities along the last axis (rows sum to 1)."""
    logits = np.asarray(logits)
    exps = np.exp(logits - logits.max(axis=-1, keepdims=True))
    exps /= exps.sum(axis=-1, keepdims=True)
    return exps


def _check_labels(logits, labels):
    labels = np.asarray(labels)
    if logits.ndim != 2:
        raise ValueError(f"logits must be 2-D (N, classes), got shape {logits.shape}")
    if labels.shape != (logits.shape[0],):
        raise ValueError(f"labels must have shape ({logits.shape[0]},) to match logits, got {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"labels must be in [0, {logits.shape[1]}), got values in "
                         f"[{labels.min()}, {labels.max()}]")
    return labels


def softmax_cross_entropy(logits, labels, return_grad=True):
    """Mean cross-entropy of softmax(logits) against integer labels.

    Returns (loss, grad) with grad = dloss/dlogits in logits' dtype, or just loss when
    return_grad is False. The loss is a Python float (computed in at least float64 precision for
    the sum)."""
    logits = np.asarray(logits)
    labels = _check_labels(logits, labels)
    count = logits.shape[0]
    if count == 0:
        return (0.0, np.zeros_like(logits)) if return_grad else 0.0
    rows = np.arange(count)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exps = np.exp(shifted)
    sums = exps.sum(axis=1, keepdims=True)
    log_likelihood = shifted[rows, labels] - np.log(sums[:, 0])
    loss = -float(log_likelihood.sum(dtype=np.float64)) / count
    if not return_grad:
        return loss
    grad = exps
    grad /= sums
    grad[rows, labels] -= 1
    grad /= count
    return loss, grad


class SoftmaxCrossEntropy:
    """Callable form: loss_fn(logits, labels) -> (loss, grad); name used in configs."""

    name = "softmax_cross_entropy"

    def __call__(self, logits, labels, return_grad=True):
        return softmax_cross_entropy(logits, labels, return_grad)

    @staticmethod
    def output_probabilities(logits):
        """What Sequential.predict returns for this loss's logits."""
        return softmax(logits)


# Keras's name for the same loss on integer labels (with from_logits=True).
_LOSSES = {"softmax_cross_entropy": SoftmaxCrossEntropy, "sparse_categorical_crossentropy": SoftmaxCrossEntropy}


def get(name):
    """A loss object from its name (or the object itself)."""
    if not isinstance(name, str):
        return name
    try:
        return _LOSSES[name]()
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; known: {sorted(_LOSSES)}") from None
